/* mpi_syncbn.c - synchronised BatchNorm on W ranks, each holding a slice of
 * the batch, equals plain BatchNorm on one rank holding the whole batch:
 * batch statistics, output, running statistics, input gradient, and the
 * gamma/beta gradients summed over ranks. Run under mpirun -np 2..4. */
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
    dnnl_memory_desc_t md = md_make(4, dims, dnnl_nchw);
    tensor_alloc(src, &md);
    params_init(p);
    batchnorm_init(l, src, 1, p, "bn");
    params_allocate(p);
    memcpy(l->scale.data, gamma, C * sizeof(float));
    memcpy(l->shift.data, beta, C * sizeof(float));
}

static void test_sync_equals_whole_batch(void **state)
{
    (void)state;
    size_t per = (size_t)C * H * W, total = (size_t)N * per;
    int n_local = N / g_size;
    size_t first = (size_t)g_rank * n_local * per, local = (size_t)n_local * per;
    float *x = malloc(total * sizeof *x), *dy = malloc(total * sizeof *dy);
    float gamma[C], beta[C];
    testutil_fill(x, total, 11);
    testutil_fill(dy, total, 12);
    testutil_fill(gamma, C, 13);
    testutil_fill(beta, C, 14);
    for (size_t i = 0; i < total; i++)
        x[i] = 3.0f + 2.0f * x[i]; /* an offset that would expose cancellation */

    BatchNormLayer ref, syn;
    Params pr, ps;
    Tensor xr, xs;
    init_layer(&ref, &pr, &xr, N, gamma, beta);
    init_layer(&syn, &ps, &xs, n_local, gamma, beta);
    batchnorm_enable_sync(&syn, syncbn_hooks());
    memcpy(xr.data, x, total * sizeof *x);
    memcpy(xs.data, x + first, local * sizeof *x);

    batchnorm_forward(&ref, 1);
    batchnorm_forward(&syn, 1);
    dnn_wait();
    assert_close(syn.mean.data, ref.mean.data, C, 1e-6, 1e-5, "batch mean");
    assert_close(syn.var.data, ref.var.data, C, 1e-6, 1e-5, "batch variance");
    assert_close(syn.dst.data, ref.dst.data + first, local, 1e-5, 1e-4, "output");
    assert_close(syn.running_var.data, ref.running_var.data, C, 1e-6, 1e-5, "running variance");

    Tensor dyr, dys, dxr, dxs;
    tensor_alloc(&dyr, &xr.md);
    tensor_alloc(&dys, &xs.md);
    tensor_alloc(&dxr, &xr.md);
    tensor_alloc(&dxs, &xs.md);
    memcpy(dyr.data, dy, total * sizeof *dy);
    memcpy(dys.data, dy + first, local * sizeof *dy);
    batchnorm_backward(&ref, &dyr, &dxr);
    batchnorm_backward(&syn, &dys, &dxs);
    dnn_wait();
    assert_close(dxs.data, dxr.data + first, local, 1e-5, 1e-3, "input gradient");
    float dgamma[C], dbeta[C];
    MPI_Allreduce(syn.diff_scale.data, dgamma, C, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(syn.diff_shift.data, dbeta, C, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    assert_close(dgamma, ref.diff_scale.data, C, 1e-4, 1e-4, "gamma gradient");
    assert_close(dbeta, ref.diff_shift.data, C, 1e-4, 1e-4, "beta gradient");

    Tensor *ts[] = {&dyr, &dys, &dxr, &dxs, &xr, &xs};
    for (int i = 0; i < 6; i++)
        tensor_free(ts[i]);
    batchnorm_free(&ref);
    batchnorm_free(&syn);
    params_free(&pr);
    params_free(&ps);
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
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_sync_equals_whole_batch)};
    int failed = testutil_mpi_any_failed(cmocka_run_group_tests_name("syncbn", tests, NULL, NULL));
    syncbn_free();
    dnn_free();
    MPI_Finalize();
    return failed;
}
