/*
 * mpi_train.c - data-parallel training of a real network under mpirun (run
 * at 2, 3 and 4 ranks): resnet20 with the small stem at 16 px, SGD with
 * momentum and weight decay, gradients through the bucketed reducer.
 *
 * (a) After several steps on different random data per rank, parameters
 *     and BN statistics are bitwise identical on every rank (docs/design.md
 *     invariant 6, by dist_params_hash over MPI_Allgather); one step that
 *     skips the reducer makes them differ, so the check is not vacuous.
 * (b) W ranks with b = B/W images each make the same update as one process
 *     with the global batch B. BatchNorm in training mode normalises by
 *     per-rank batch statistics, so this holds in two forms:
 *     1. different data per rank: the reference, on every rank, runs the
 *        W slices of the global batch one after another on a net of batch b
 *        (each slice with its own batch statistics, as on its rank), sums
 *        the gradients, averages the BN running statistics, then steps SGD;
 *     2. the global batch made of W copies of b images: every slice then has
 *        the batch statistics of the whole batch, and the reference is a net
 *        of batch B on all of it. Running variances differ only by the
 *        unbiasing factor n/(n-1) (n = batch x H x W of that layer), which
 *        the check accounts for.
 *     Each reference has its own Params registry, initialised from the same
 *     seed; nothing is shared with the distributed net.
 *     (Evaluation-mode BN cannot be used here: net_backward after
 *     net_forward(net, 0) is not supported; batchnorm_backward always uses
 *     the training primitive with the last training batch's statistics.)
 * (c) Validation totals over a split that does not divide over the ranks
 *     are checked end to end in tests/e2e/dist_eval.sh (--eval-only).
 *
 * Tolerances: (b1) differs from the distributed sum only in the order the
 * W per-slice gradients are added (MPI's tree vs. a loop), a few float
 * roundings of |g| each, times lr: atol 1e-6 on weights and momentum
 * (|g| < 10), rtol 1e-6 on BN statistics. (b2) also differs in how oneDNN
 * reduces the batch statistics over b vs. B images (float sums of up to
 * 4096 terms), which moves activations by ~1e-6 relative and gradients by
 * ~1e-5 relative: atol 2e-5 + rtol 1e-4 (seen: 2.4e-6 on momentum). Each
 * step is compared from the same starting point (the reference is then set
 * to the distributed state), so rounding cannot build up or flip a ReLU in
 * a later step.
 *
 * Every assertion is on numbers reduced over all ranks, so all ranks pass
 * or fail together; the process exits non-zero on every rank on failure.
 */
#include <mpi.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../unit/common/testutil.h"
#include "batchnorm.h"
#include "dist.h"
#include "dnn.h"
#include "error.h"
#include "params.h"
#include "reducer.h"
#include "resnet.h"
#include "sgd.h"

#define SIZE 16
#define CHANNELS 3
#define CLASSES 10
#define LOCAL_BATCH 4
#define SEED 7
#define LR 0.1
#define COMPARE_STEPS 3 /* each compared from the same starting point */

static int g_rank, g_size;
static const SgdConfig SGD = {0.9, 1e-4, 0, 0};

static Net *make_net(Params *p, int batch)
{
    NetConfig cfg = {.num_classes = CLASSES, .in_channels = CHANNELS, .image_size = SIZE,
                     .batch = batch, .small_stem = 1};
    snprintf(cfg.arch, sizeof cfg.arch, "resnet20");
    params_init(p);
    Net *net = net_create(&cfg, p);
    params_allocate(p);
    net_init_weights(net, SEED);
    return net;
}

static void free_net(Net *net, Params *p)
{
    net_free(net);
    params_free(p);
}

/* A reducer with buckets of bucket_mb that net's backward hands its
 * gradients to as they become ready, as in training. */
static Reducer *attach_reducer(Net *net, Params *p, double bucket_mb)
{
    Reducer *r = reducer_create(p, bucket_mb);
    net_set_grad_hook(net, reducer_grads_ready, r);
    return r;
}

static size_t image_floats(void)
{
    return (size_t)CHANNELS * SIZE * SIZE;
}

/* A global batch of n images and labels, the same on every rank. */
static void make_batch(float *x, int32_t *labels, int n, uint32_t seed)
{
    testutil_fill(x, (size_t)n * image_floats(), seed);
    for (int i = 0; i < n; i++)
        labels[i] = (int32_t)((i * 7 + seed * 3) % CLASSES);
}

/* One distributed step on this rank's images. */
static void dist_step(Net *net, Params *p, Reducer *r, const float *x, const int32_t *labels,
                      int global_batch)
{
    int b = net_config(net)->batch;
    memcpy(net_input(net), x, (size_t)b * image_floats() * sizeof(float));
    net_forward(net, 1);
    LossStats ls = net_loss(net, labels, NULL, 0.0f, 1, global_batch);
    CHECK(!ls.nonfinite, "non-finite loss in a test step");
    if (r)
        reducer_begin_step(r);
    net_backward(net);
    if (r)
        reducer_finish(r);
    sgd_step(&SGD, p, LR);
}

static int ranks_failing(int bad)
{
    int mine = bad != 0, all = 0;
    MPI_CHECK(MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
    return all;
}

/* How many ranks hold parameters and BN statistics that differ from rank 0's. */
static int ranks_differing(const Params *p)
{
    uint64_t mine = dist_params_hash(p);
    uint64_t *all = xmalloc((size_t)g_size * sizeof *all);
    MPI_CHECK(MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD));
    int differ = 0;
    for (int r = 1; r < g_size; r++)
        differ += all[r] != all[0];
    free(all);
    return differ;
}

/* (a) */
static void test_params_identical(void **state)
{
    (void)state;
    Params p;
    Net *net = make_net(&p, LOCAL_BATCH);
    Reducer *r = attach_reducer(net, &p, 0.05); /* ~13k floats: many buckets */
    assert_true(reducer_bucket_count(r) > 4);
    uint64_t initial = dist_params_hash(&p);
    assert_int_equal(ranks_differing(&p), 0);

    float *x = xmalloc(LOCAL_BATCH * image_floats() * sizeof *x);
    int32_t labels[LOCAL_BATCH];
    for (int step = 0; step < 5; step++) {
        /* different images and labels on every rank */
        make_batch(x, labels, LOCAL_BATCH, 1000u + 31u * (uint32_t)g_rank + (uint32_t)step);
        for (int i = 0; i < LOCAL_BATCH; i++)
            labels[i] = (int32_t)((labels[i] + g_rank * 3 + step) % CLASSES);
        dist_step(net, &p, r, x, labels, LOCAL_BATCH * g_size);
    }
    int changed = dist_params_hash(&p) != initial;
    int differ = ranks_differing(&p);
    int64_t nbt = p.num_batches_tracked, nbt_min, nbt_max;
    MPI_CHECK(MPI_Allreduce(&nbt, &nbt_min, 1, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD));
    MPI_CHECK(MPI_Allreduce(&nbt, &nbt_max, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD));
    if (g_rank == 0)
        print_message("after 5 steps: %d of %d ranks differ from rank 0\n", differ, g_size);
    assert_true(ranks_failing(!changed) == 0);
    assert_int_equal(differ, 0);
    assert_true(nbt_min == 5 && nbt_max == 5);
    dist_check_params(&p, "in mpi_train"); /* exits 1 on every rank on a mismatch */

    /* A step without the reducer: each rank keeps its own gradients and
     * BN statistics, and the check must see it. */
    make_batch(x, labels, LOCAL_BATCH, 5000u + 17u * (uint32_t)g_rank);
    net_set_grad_hook(net, NULL, NULL);
    dist_step(net, &p, NULL, x, labels, LOCAL_BATCH * g_size);
    differ = ranks_differing(&p);
    if (g_rank == 0)
        print_message("after a step without the reducer: %d of %d ranks differ\n", differ,
                      g_size);
    assert_int_equal(differ, g_size - 1);

    free(x);
    reducer_free(r);
    free_net(net, &p);
}

/* Largest |x - y| - (atol + rtol |y|) over n floats, with the first
 * element where it is reached in *where and the largest |x - y| (or the
 * last that is not finite) in *max_diff. */
static double array_excess(const float *x, const float *y, size_t n, double atol, double rtol,
                           double *max_diff, size_t *where)
{
    double worst = -INFINITY;
    *max_diff = 0.0;
    for (size_t k = 0; k < n; k++) {
        double d = fabs((double)x[k] - y[k]);
        double e = isfinite(d) ? d - (atol + rtol * fabs((double)y[k])) : INFINITY;
        if (d > *max_diff || !isfinite(d))
            *max_diff = d;
        if (e > worst) {
            worst = e;
            *where = k;
        }
    }
    return worst;
}

/* The same over every tensor of a buffer, in PyTorch layout (the
 * registries may block tensors differently). */
static double worst_excess(const Params *a, const Params *b, ParamBuffer buf, double atol,
                           double rtol, double *max_diff, char *where, size_t wlen)
{
    double worst = -INFINITY;
    *max_diff = 0.0;
    assert_int_equal(a->count, b->count);
    for (int i = 0; i < a->count; i++) {
        int j = params_find(b, a->info[i].name);
        assert_true(j >= 0);
        size_t n = a->info[i].numel, k = 0;
        float *x = xmalloc(n * sizeof *x), *y = xmalloc(n * sizeof *y);
        params_get_plain(a, i, buf, x);
        params_get_plain(b, j, buf, y);
        double diff;
        double e = array_excess(x, y, n, atol, rtol, &diff, &k);
        if (diff > *max_diff || !isfinite(diff))
            *max_diff = diff;
        if (e > worst) {
            worst = e;
            snprintf(where, wlen, "%s[%zu]: %.9g vs %.9g", a->info[i].name, k, x[k], y[k]);
        }
        free(x);
        free(y);
    }
    return worst;
}

/* Compares values and momentum of the distributed registry with the
 * reference; fails on every rank if any rank is out of tolerance. */
static void compare_params(const Params *dist, const Params *ref, double atol, double rtol,
                           const char *what)
{
    char where[2][256];
    double diff[2];
    double e0 = worst_excess(dist, ref, BUF_VALUE, atol, rtol, &diff[0], where[0], sizeof where[0]);
    double e1 = worst_excess(dist, ref, BUF_MOMENTUM, atol, rtol, &diff[1], where[1],
                             sizeof where[1]);
    int bad = e0 > 0 || e1 > 0;
    if (bad)
        print_error("[rank %d] %s: weights worst %s (max |diff| %.3g); momentum worst %s "
                    "(max |diff| %.3g)\n", g_rank, what, where[0], diff[0], where[1], diff[1]);
    double mine[2] = {diff[0], diff[1]}, most[2];
    MPI_CHECK(MPI_Allreduce(mine, most, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
    if (g_rank == 0)
        print_message("%s: largest |diff| weights %.3g, momentum %.3g (atol %g rtol %g)\n", what,
                      most[0], most[1], atol, rtol);
    int failing = ranks_failing(bad);
    if (failing)
        fail_msg("%s: %d ranks out of tolerance", what, failing);
}

static void compare_state(const Params *dist, const float *want, double atol, double rtol,
                          const char *what)
{
    double diff;
    size_t k = 0;
    double e = array_excess(dist->state, want, dist->state_total, atol, rtol, &diff, &k);
    int bad = e > 0;
    if (bad)
        print_error("[rank %d] %s: BN state[%zu] %.9g vs %.9g\n", g_rank, what, k,
                    dist->state[k], want[k]);
    double most;
    MPI_CHECK(MPI_Allreduce(&diff, &most, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
    if (g_rank == 0)
        print_message("%s: largest |diff| BN state %.3g (atol %g rtol %g)\n", what, most, atol,
                      rtol);
    int failing = ranks_failing(bad);
    if (failing)
        fail_msg("%s: %d ranks out of tolerance", what, failing);
}

/* Makes ref hold exactly dist's weights, momentum and BN statistics, so
 * that each step is compared from the same starting point: otherwise a
 * rounding difference of one step can flip a ReLU whose input is within
 * 1e-7 of zero in the next, which changes gradients by far more than
 * rounding (seen at 4 ranks: 3e-4 on a momentum of 0.27). */
static void sync_params(const Params *dist, Params *ref)
{
    for (int i = 0; i < dist->count; i++) {
        int j = params_find(ref, dist->info[i].name);
        float *x = xmalloc(dist->info[i].numel * sizeof *x);
        params_get_plain(dist, i, BUF_VALUE, x);
        params_set_plain(ref, j, BUF_VALUE, x);
        params_get_plain(dist, i, BUF_MOMENTUM, x);
        params_set_plain(ref, j, BUF_MOMENTUM, x);
        free(x);
    }
    memcpy(ref->state, dist->state, dist->state_total * sizeof(float));
    ref->num_batches_tracked = dist->num_batches_tracked;
}

/* (b1) */
static void test_same_update_as_sequential_slices(void **state)
{
    (void)state;
    const int b = LOCAL_BATCH, B = LOCAL_BATCH * g_size;
    Params pd, pr;
    Net *nd = make_net(&pd, b), *nr = make_net(&pr, b);
    Reducer *r = attach_reducer(nd, &pd, 0.02);
    size_t img = image_floats(), total = pr.total, ns = pr.state_total;
    float *x = xmalloc((size_t)B * img * sizeof *x);
    int32_t *labels = xmalloc((size_t)B * sizeof *labels);
    float *grad_sum = xmalloc(total * sizeof *grad_sum);
    float *state0 = xmalloc(ns * sizeof *state0), *state_sum = xmalloc(ns * sizeof *state_sum);

    for (int step = 0; step < COMPARE_STEPS; step++) {
        make_batch(x, labels, B, 77u + (uint32_t)step);
        dist_step(nd, &pd, r, x + (size_t)g_rank * b * img, labels + g_rank * b, B);

        /* the reference: W slices in turn, each from the same BN state */
        memcpy(state0, pr.state, ns * sizeof *state0);
        int64_t nbt0 = pr.num_batches_tracked;
        memset(grad_sum, 0, total * sizeof *grad_sum);
        memset(state_sum, 0, ns * sizeof *state_sum);
        for (int s = 0; s < g_size; s++) {
            memcpy(pr.state, state0, ns * sizeof *state0);
            memcpy(net_input(nr), x + (size_t)s * b * img, (size_t)b * img * sizeof(float));
            net_forward(nr, 1);
            net_loss(nr, labels + s * b, NULL, 0.0f, 1, B);
            net_backward(nr);
            for (size_t k = 0; k < total; k++)
                grad_sum[k] += pr.grad[k];
            for (size_t k = 0; k < ns; k++)
                state_sum[k] += pr.state[k];
        }
        memcpy(pr.grad, grad_sum, total * sizeof *grad_sum);
        float inv = 1.0f / (float)g_size;
        for (size_t k = 0; k < ns; k++)
            pr.state[k] = state_sum[k] * inv;
        pr.num_batches_tracked = nbt0 + 1;
        sgd_step(&SGD, &pr, LR);

        compare_params(&pd, &pr, 1e-6, 0.0, "different data per rank vs. slices in turn");
        compare_state(&pd, pr.state, 1e-7, 1e-6, "different data per rank vs. slices in turn");
        assert_true(pd.num_batches_tracked == pr.num_batches_tracked);
        sync_params(&pd, &pr);
    }

    free(x);
    free(labels);
    free(grad_sum);
    free(state0);
    free(state_sum);
    reducer_free(r);
    free_net(nd, &pd);
    free_net(nr, &pr);
}

/* Elements per channel that a BN layer of resnet20 (small stem) normalises
 * over for one image at SIZE px: stage 1 keeps the input size, each later
 * stage halves it. */
static size_t bn_pixels(const char *name)
{
    int stage = 1;
    if (strncmp(name, "layer", 5) == 0)
        stage = name[5] - '0';
    size_t side = (size_t)SIZE >> (stage - 1);
    return side * side;
}

/* The running variance a net of batch b would hold, given what the net of
 * batch B holds: the same batch variance v, unbiased by n/(n-1) with that
 * net's n, from its own previous value. */
static void predict_running_var(const Params *ref, const float *ref_prev, const float *dist_prev,
                                int b, int B, float *out)
{
    memcpy(out, ref->state, ref->state_total * sizeof *out);
    for (int i = 0; i < ref->bn_count; i++) {
        const BnStateInfo *bn = &ref->bn[i];
        double nb = (double)b * bn_pixels(bn->name), nB = (double)B * bn_pixels(bn->name);
        size_t var = bn->offset + bn->channels; /* running_var follows running_mean */
        for (size_t c = 0; c < bn->channels; c++) {
            double v = (ref->state[var + c] - (1.0 - BN_MOMENTUM) * ref_prev[var + c]) /
                       (BN_MOMENTUM * nB / (nB - 1.0));
            out[var + c] = (float)((1.0 - BN_MOMENTUM) * dist_prev[var + c] +
                                   BN_MOMENTUM * v * nb / (nb - 1.0));
        }
    }
}

/* (b2) */
static void test_same_update_as_global_batch(void **state)
{
    (void)state;
    const int b = LOCAL_BATCH, B = LOCAL_BATCH * g_size;
    Params pd, pr;
    Net *nd = make_net(&pd, b), *nr = make_net(&pr, B);
    Reducer *r = attach_reducer(nd, &pd, 0.02);
    assert_true(pd.state_total == pr.state_total);
    size_t img = image_floats(), ns = pr.state_total;
    float *x = xmalloc((size_t)B * img * sizeof *x);
    int32_t *labels = xmalloc((size_t)B * sizeof *labels);
    float *ref_prev = xmalloc(ns * sizeof(float)), *dist_prev = xmalloc(ns * sizeof(float));
    float *want = xmalloc(ns * sizeof(float));

    for (int step = 0; step < COMPARE_STEPS; step++) {
        make_batch(x, labels, b, 300u + (uint32_t)step);
        for (int s = 1; s < g_size; s++) {
            memcpy(x + (size_t)s * b * img, x, (size_t)b * img * sizeof *x);
            memcpy(labels + s * b, labels, (size_t)b * sizeof *labels);
        }
        memcpy(ref_prev, pr.state, ns * sizeof(float));
        memcpy(dist_prev, pd.state, ns * sizeof(float));
        dist_step(nd, &pd, r, x + (size_t)g_rank * b * img, labels + g_rank * b, B);
        memcpy(net_input(nr), x, (size_t)B * img * sizeof(float));
        net_forward(nr, 1);
        net_loss(nr, labels, NULL, 0.0f, 1, B);
        net_backward(nr);
        sgd_step(&SGD, &pr, LR);
        predict_running_var(&pr, ref_prev, dist_prev, b, B, want);
        compare_state(&pd, want, 1e-5, 1e-4, "W ranks x b vs. one net of batch B");
        compare_params(&pd, &pr, 2e-5, 1e-4, "W ranks x b vs. one net of batch B");
        assert_true(pd.num_batches_tracked == pr.num_batches_tracked);
        sync_params(&pd, &pr);
    }

    free(x);
    free(labels);
    free(ref_prev);
    free(dist_prev);
    free(want);
    reducer_free(r);
    free_net(nd, &pd);
    free_net(nr, &pr);
}

int main(int argc, char **argv)
{
    DistInfo d;
    dist_init(&argc, &argv, &d);
    g_rank = d.rank;
    g_size = d.size;
    alarm(180); /* a hang becomes a failure, not a stuck test run */
    dnn_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_identical),
        cmocka_unit_test(test_same_update_as_sequential_slices),
        cmocka_unit_test(test_same_update_as_global_batch),
    };
    int failed = testutil_mpi_run_group("mpi_train", tests);
    dnn_free();
    dist_finalize();
    return failed;
}
