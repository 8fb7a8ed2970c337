/* mpi_syncbn.c - synchronised BatchNorm on W ranks, each holding a slice of
 * the batch, equals plain BatchNorm on one rank holding the whole batch:
 * batch statistics, output, running statistics, input gradient, and the
 * gamma/beta gradients summed over ranks; and, for inputs whose mean is 100
 * standard deviations from zero, equals a double-precision evaluation of the
 * whole batch, and does not depend on the split: the statistics and the
 * input gradient are those of the same layer on one process to within a
 * rounding. Run under mpirun -np 2..4. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <mpi.h>

#include "batchnorm.h"
#include "../unit/common/testutil.h"
#include "syncbn.h"

enum { N = 12, C = 32, H = 5, W = 6 };

static int g_rank, g_size;

static void init_layer(BatchNormLayer *l, Params *p, Tensor *src, int n, const float *gamma,
                       const float *beta)
{
    dnnl_dims_t dims = {n, C, H, W};
    dnnl_memory_desc_t md = dnn_md_make(4, dims, dnnl_nchw);
    tensor_alloc(src, &md);
    params_init(p);
    batchnorm_init(l, src, 1, p, "bn");
    params_allocate(p);
    memcpy(l->scale.data, gamma, C * sizeof(float));
    memcpy(l->shift.data, beta, C * sizeof(float));
}

/* The whole batch on this process (plain BatchNorm, or synchronised with
 * whole_sync) beside this rank's slice of it through synchronised BatchNorm
 * over all ranks; the slice starts at element `first` of the whole. */
typedef struct {
    BatchNormLayer whole, part;
    Params pw, pp;
    Tensor xw, xp, dyw, dyp, dxw, dxp;
    size_t total, first, local;
} Pair;

static void pair_init(Pair *q, const float *x, const float *gamma, const float *beta,
                      const BnSync *whole_sync)
{
    size_t per = (size_t)C * H * W;
    int n_local = N / g_size;
    q->total = (size_t)N * per;
    q->first = (size_t)g_rank * n_local * per;
    q->local = (size_t)n_local * per;
    init_layer(&q->whole, &q->pw, &q->xw, N, gamma, beta);
    init_layer(&q->part, &q->pp, &q->xp, n_local, gamma, beta);
    if (whole_sync)
        batchnorm_enable_sync(&q->whole, whole_sync);
    batchnorm_enable_sync(&q->part, syncbn_hooks());
    memcpy(q->xw.data, x, q->total * sizeof *x);
    memcpy(q->xp.data, x + q->first, q->local * sizeof *x);
    tensor_alloc(&q->dyw, &q->xw.md);
    tensor_alloc(&q->dxw, &q->xw.md);
    tensor_alloc(&q->dyp, &q->xp.md);
    tensor_alloc(&q->dxp, &q->xp.md);
}

static void pair_forward(Pair *q)
{
    batchnorm_forward(&q->whole, 1);
    batchnorm_forward(&q->part, 1);
    dnn_wait();
}

static void pair_backward(Pair *q, const float *dy)
{
    memcpy(q->dyw.data, dy, q->total * sizeof *dy);
    memcpy(q->dyp.data, dy + q->first, q->local * sizeof *dy);
    batchnorm_backward(&q->whole, &q->dyw, &q->dxw);
    batchnorm_backward(&q->part, &q->dyp, &q->dxp);
    dnn_wait();
}

/* The gamma and beta gradients of the slices, summed over ranks. */
static void pair_param_grads(const Pair *q, float *dgamma, float *dbeta)
{
    MPI_Allreduce(q->part.diff_scale.data, dgamma, C, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(q->part.diff_shift.data, dbeta, C, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}

static void pair_free(Pair *q)
{
    Tensor *ts[] = {&q->dyw, &q->dyp, &q->dxw, &q->dxp, &q->xw, &q->xp};
    for (int i = 0; i < 6; i++)
        tensor_free(ts[i]);
    batchnorm_free(&q->whole);
    batchnorm_free(&q->part);
    params_free(&q->pw);
    params_free(&q->pp);
}

static void test_sync_equals_whole_batch(void **state)
{
    (void)state;
    size_t total = (size_t)N * C * H * W;
    float *x = malloc(total * sizeof *x), *dy = malloc(total * sizeof *dy);
    float gamma[C], beta[C];
    testutil_fill(x, total, 11);
    testutil_fill(dy, total, 12);
    testutil_fill(gamma, C, 13);
    testutil_fill(beta, C, 14);
    for (size_t i = 0; i < total; i++)
        x[i] = 3.0f + 2.0f * x[i]; /* an offset that would expose cancellation */

    Pair q;
    pair_init(&q, x, gamma, beta, NULL);
    pair_forward(&q);
    const BatchNormLayer *ref = &q.whole, *syn = &q.part;
    assert_close(syn->mean.data, ref->mean.data, C, 1e-6, 1e-5, "batch mean");
    assert_close(syn->var.data, ref->var.data, C, 1e-6, 1e-5, "batch variance");
    assert_close(syn->dst.data, ref->dst.data + q.first, q.local, 1e-5, 1e-4, "output");
    assert_close(syn->running_var.data, ref->running_var.data, C, 1e-6, 1e-5,
                 "running variance");

    pair_backward(&q, dy);
    assert_close(q.dxp.data, q.dxw.data + q.first, q.local, 1e-5, 1e-3, "input gradient");
    float dgamma[C], dbeta[C];
    pair_param_grads(&q, dgamma, dbeta);
    assert_close(dgamma, ref->diff_scale.data, C, 1e-4, 1e-4, "gamma gradient");
    assert_close(dbeta, ref->diff_shift.data, C, 1e-4, 1e-4, "beta gradient");

    pair_free(&q);
    free(x);
    free(dy);
}

/* The whole batch (N, C, H, W, nchw) through BatchNorm + ReLU in training
 * mode, forward and backward, in double: the statistics, output, running
 * variance, input gradient and gamma/beta gradients. */
typedef struct {
    double mean[C], var[C], running_var[C], dgamma[C], dbeta[C];
    double *y, *dx;
} Exact;

static void exact_batchnorm(Exact *e, const float *x, const float *dy, const float *gamma,
                            const float *beta)
{
    size_t per = (size_t)H * W, n = (size_t)N * per;
    e->y = malloc(n * C * sizeof *e->y);
    e->dx = malloc(n * C * sizeof *e->dx);
    for (int c = 0; c < C; c++) {
        double sum = 0, sq = 0, s1 = 0, s2 = 0;
        for (int b = 0; b < N; b++)
            for (size_t i = 0; i < per; i++)
                sum += x[((size_t)b * C + c) * per + i];
        double mean = sum / (double)n;
        for (int b = 0; b < N; b++)
            for (size_t i = 0; i < per; i++) {
                double d = x[((size_t)b * C + c) * per + i] - mean;
                sq += d * d;
            }
        double var = sq / (double)n, sigma = sqrt(var + BN_EPS);
        for (int b = 0; b < N; b++)
            for (size_t i = 0; i < per; i++) {
                size_t at = ((size_t)b * C + c) * per + i;
                double xhat = (x[at] - mean) / sigma, y = gamma[c] * xhat + beta[c];
                double g = y > 0 ? dy[at] : 0.0;
                e->y[at] = y > 0 ? y : 0.0;
                s1 += g;
                s2 += g * xhat;
            }
        for (int b = 0; b < N; b++)
            for (size_t i = 0; i < per; i++) {
                size_t at = ((size_t)b * C + c) * per + i;
                double xhat = (x[at] - mean) / sigma;
                double g = e->y[at] > 0 ? dy[at] : 0.0;
                e->dx[at] = gamma[c] / sigma * (g - s1 / (double)n - xhat * s2 / (double)n);
            }
        e->mean[c] = mean;
        e->var[c] = var;
        e->running_var[c] = (1 - BN_MOMENTUM) + BN_MOMENTUM * var * (double)n / (double)(n - 1);
        e->dgamma[c] = s2;
        e->dbeta[c] = s1;
    }
}

static void to_float(float *out, const double *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (float)in[i];
}

/* Inputs 100 standard deviations from zero: per-rank float sums around a
 * local mean, or a correction formed as alpha x + beta, lose the digits that
 * carry the answer; the layer must still agree with the exact evaluation to
 * float32 rounding. */
static void test_offset_input_equals_exact(void **state)
{
    (void)state;
    size_t total = (size_t)N * C * H * W;
    float *x = malloc(total * sizeof *x), *dy = malloc(total * sizeof *dy);
    float *got = malloc(total * sizeof *got), gamma[C], beta[C];
    testutil_fill(x, total, 21);
    testutil_fill(dy, total, 22);
    testutil_fill(gamma, C, 23);
    testutil_fill(beta, C, 24);
    const double sd = 1.0 / sqrt(3.0); /* of the uniform values in [-1, 1) */
    for (size_t i = 0; i < total; i++)
        x[i] = (float)(100.0 * sd + x[i]);
    for (int c = 0; c < C; c++)
        gamma[c] = 0.5f + 0.5f * gamma[c] * gamma[c]; /* away from 0: every channel counts */
    Exact e;
    exact_batchnorm(&e, x, dy, gamma, beta);

    Pair q;
    pair_init(&q, x, gamma, beta, NULL);
    pair_forward(&q);
    const BatchNormLayer *syn = &q.part;
    float want[C];
    to_float(want, e.mean, C);
    assert_close(syn->mean.data, want, C, 1e-5, 1e-6, "batch mean");
    to_float(want, e.var, C);
    assert_close(syn->var.data, want, C, 1e-6, 1e-5, "batch variance");
    to_float(want, e.running_var, C);
    assert_close(syn->running_var.data, want, C, 1e-6, 1e-5, "running variance");
    to_float(got, e.y + q.first, q.local);
    assert_close(syn->dst.data, got, q.local, 2e-5, 1e-5, "output");

    pair_backward(&q, dy);
    to_float(got, e.dx + q.first, q.local);
    assert_close(q.dxp.data, got, q.local, 2e-5, 1e-4, "input gradient");
    float dgamma[C], dbeta[C];
    pair_param_grads(&q, dgamma, dbeta);
    to_float(want, e.dgamma, C);
    assert_close(dgamma, want, C, 1e-4, 1e-4, "gamma gradient");
    to_float(want, e.dbeta, C);
    assert_close(dbeta, want, C, 1e-4, 1e-4, "beta gradient");

    pair_free(&q);
    free(e.y);
    free(e.dx);
    free(x);
    free(dy);
    free(got);
}

/* The hooks of a single process holding the whole batch. */
static double whole_combine(void *ctx, double *mean, double *m2, int channels, double count)
{
    (void)ctx, (void)mean, (void)m2, (void)channels;
    return count;
}

static void whole_sum(void *ctx, double *a, double *b, int channels)
{
    (void)ctx, (void)a, (void)b, (void)channels;
}

/* A ReLU whose input is within a rounding of zero flips when the statistics
 * move by one, and the gradients below it part ways: synchronised BatchNorm
 * on W ranks must compute the statistics the single process computes, to the
 * last bit or one rounding of double sums, and the output and input gradient
 * with them. */
static void test_split_does_not_change_result(void **state)
{
    (void)state;
    static const BnSync whole = {whole_combine, whole_sum, NULL};
    size_t total = (size_t)N * C * H * W;
    float *x = malloc(total * sizeof *x), *dy = malloc(total * sizeof *dy), gamma[C], beta[C];
    testutil_fill(x, total, 31);
    testutil_fill(dy, total, 32);
    testutil_fill(gamma, C, 33);
    testutil_fill(beta, C, 34);
    for (size_t i = 0; i < total; i++)
        x[i] = 5.0f + 0.25f * x[i];

    Pair q;
    pair_init(&q, x, gamma, beta, &whole);
    pair_forward(&q);
    const BatchNormLayer *one = &q.whole, *syn = &q.part;
    const double ulp = 2.4e-7; /* one rounding of a float, relative */
    assert_close(syn->mean.data, one->mean.data, C, 0, ulp, "batch mean");
    assert_close(syn->var.data, one->var.data, C, 0, ulp, "batch variance");
    assert_close(syn->running_var.data, one->running_var.data, C, 0, ulp, "running variance");
    assert_close(syn->dst.data, one->dst.data + q.first, q.local, 1e-7, ulp, "output");

    pair_backward(&q, dy);
    assert_close(q.dxp.data, q.dxw.data + q.first, q.local, 1e-6, 4 * ulp, "input gradient");

    pair_free(&q);
    free(x);
    free(dy);
}

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    dnn_init();
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_sync_equals_whole_batch),
                                       cmocka_unit_test(test_offset_input_equals_exact),
                                       cmocka_unit_test(test_split_does_not_change_result)};
    int failed = testutil_mpi_any_failed(cmocka_run_group_tests_name("syncbn", tests, NULL, NULL));
    syncbn_free();
    dnn_free();
    MPI_Finalize();
    return failed;
}
