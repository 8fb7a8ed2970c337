/*
 * test_pool.c - max-pool 3x3/2 pad 1 (the ImageNet stem) and global average
 * pooling, forward and backward, against the naive double reference: the
 * ResNet-50 stem shape 2x64x112x112 and its head 2x2048x7x7 in the blocked
 * layout the network feeds them, plus small plain ones where the padded
 * border is uneven or all values are negative (padding must never win).
 * Max-pool inputs are distinct values, so no tie can be broken differently.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../ref/ref_kernels.h"
#include "common/testutil.h"
#include "error.h"
#include "pool.h"

#define U (FLT_EPSILON / 2)

static double max_abs(const float *x, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(x[i]));
    return m;
}

static void run_maxpool(int n, int c, int h, int w, dnnl_format_tag_t tag, double lo, double hi,
                        uint64_t seed, const char *name)
{
    RefPool s = ref_pool_shape(n, c, h, w, 3, 2, 1);
    size_t nx = (size_t)n * c * h * w, ny = (size_t)n * c * s.oh * s.ow;
    char what[160];
    float *x = xmalloc(nx * sizeof(float));
    ref_fill_distinct(x, nx, seed, lo, hi);
    dnnl_dims_t dims = {n, c, h, w};
    dnnl_memory_desc_t md = dnn_md_make(4, dims, tag);
    Tensor src;
    ref_tensor_make(&src, &md, x);
    PoolLayer l;
    pool_max_init(&l, &src, 3, 2, 1);
    assert_int_equal(l.dst.md.dims[2], s.oh);
    assert_int_equal(l.dst.md.dims[3], s.ow);
    assert_non_null(l.workspace.mem);

    pool_forward(&l);
    dnn_wait();
    float *y = xmalloc(ny * sizeof(float));
    ref_tensor_to_plain(&l.dst, y);
    double *xd = ref_to_double(x, nx), *yd = xmalloc(ny * sizeof(double));
    ref_maxpool_forward(&s, xd, yd);
    float *yr = ref_to_float(yd, ny);
    snprintf(what, sizeof what, "%s maxpool dst", name);
    assert_close(y, yr, ny, 0.0, 0.0, what); /* a maximum is exact */

    float *dy = xmalloc(ny * sizeof(float));
    ref_fill_normal(dy, ny, seed + 1, 1.0);
    Tensor diff_dst, diff_src;
    ref_tensor_make(&diff_dst, &l.dst.md, dy);
    tensor_alloc(&diff_src, &src.md);
    memset(diff_src.data, 0x7f, dnn_md_bytes(&diff_src.md));
    pool_backward(&l, &diff_dst, &diff_src);
    dnn_wait();
    float *dx = xmalloc(nx * sizeof(float));
    ref_tensor_to_plain(&diff_src, dx);
    double *dyd = ref_to_double(dy, ny), *dxd = xmalloc(nx * sizeof(double));
    ref_maxpool_backward(&s, xd, dyd, dxd);
    float *dxr = ref_to_float(dxd, nx);
    /* an input is the maximum of at most 4 overlapping windows: at most 3
     * roundings of partial sums up to 4 max|dy| */
    snprintf(what, sizeof what, "%s maxpool diff_src", name);
    assert_close(dx, dxr, nx, ref_tol(4, max_abs(dy, ny)), 0.0, what);
    size_t routed = 0;
    for (size_t i = 0; i < nx; i++)
        routed += dxd[i] != 0.0;
    assert_true(routed > ny / 2); /* the gradient really went somewhere */

    free(x), free(y), free(yr), free(xd), free(yd), free(dy), free(dx), free(dyd), free(dxd);
    free(dxr);
    tensor_free(&diff_dst);
    tensor_free(&diff_src);
    pool_free(&l);
    tensor_free(&src);
}

/* The stem: bn1's output 2x64x112x112 -> 2x64x56x56, blocked. */
static void test_maxpool_stem(void **state)
{
    (void)state;
    run_maxpool(2, 64, 112, 112, dnnl_nChw16c, -3.0, 3.0, 10, "stem 2x64x112x112");
}

/* Odd size: the last window hangs over the padded border on one side only. */
static void test_maxpool_small_plain(void **state)
{
    (void)state;
    run_maxpool(2, 3, 7, 9, dnnl_nchw, -3.0, 3.0, 20, "2x3x7x9");
}

/* All values negative: a padded zero would win every border window. */
static void test_maxpool_negative(void **state)
{
    (void)state;
    run_maxpool(1, 16, 8, 8, dnnl_nChw16c, -5.0, -1.0, 30, "negative 1x16x8x8");
}

static void run_avgpool(int n, int c, int h, int w, dnnl_format_tag_t tag, uint64_t seed,
                        const char *name)
{
    int hw = h * w;
    size_t nx = (size_t)n * c * hw, ny = (size_t)n * c;
    char what[160];
    float *x = xmalloc(nx * sizeof(float));
    ref_fill_normal(x, nx, seed, 1.0);
    for (size_t i = 0; i < nx; i++)
        x[i] += 0.5f; /* post-ReLU features have a positive mean */
    dnnl_dims_t dims = {n, c, h, w};
    dnnl_memory_desc_t md = dnn_md_make(4, dims, tag);
    Tensor src;
    ref_tensor_make(&src, &md, x);
    PoolLayer l;
    pool_avg_global_init(&l, &src);
    /* flat is the plain (N, C) matrix the classifier reads; dst keeps the
     * layout pooling picked */
    dnnl_dims_t dd = {n, c, 1, 1};
    dnnl_memory_desc_t plain = dnn_md_make(4, dd, dnnl_nchw);
    assert_true(dnn_md_equal(&l.flat.md, &plain));
    assert_int_equal(l.dst.md.dims[2], 1);
    assert_int_equal(l.dst.md.dims[3], 1);

    memset(l.flat.data, 0x7f, dnn_md_bytes(&plain));
    pool_forward(&l);
    dnn_wait();
    double *xd = ref_to_double(x, nx), *yd = xmalloc(ny * sizeof(double));
    ref_avgpool_global_forward(xd, n, c, hw, yd);
    float *yr = ref_to_float(yd, ny), *y = xmalloc(ny * sizeof(float));
    /* a sum of HW values, then a division (one more rounding) */
    double atol = ref_tol((size_t)hw, ref_rms(yd, ny)), rtol = ref_tol((size_t)hw, 1.0) + 2 * U;
    snprintf(what, sizeof what, "%s avgpool flat", name);
    assert_close(l.flat.data, yr, ny, atol, rtol, what);
    ref_tensor_to_plain(&l.dst, y);
    snprintf(what, sizeof what, "%s avgpool dst", name);
    assert_close(y, l.flat.data, ny, 0.0, 0.0, what);

    /* backward from an (N, C) gradient, as the classifier hands it */
    float *dy = xmalloc(ny * sizeof(float));
    ref_fill_normal(dy, ny, seed + 1, 1.0);
    dnnl_dims_t d2 = {n, c};
    dnnl_memory_desc_t md2 = dnn_md_make(2, d2, dnnl_nc);
    Tensor diff_dst, diff_src;
    tensor_alloc(&diff_dst, &md2);
    memcpy(diff_dst.data, dy, ny * sizeof(float));
    tensor_alloc(&diff_src, &src.md);
    pool_backward(&l, &diff_dst, &diff_src);
    dnn_wait();
    float *dx = xmalloc(nx * sizeof(float));
    ref_tensor_to_plain(&diff_src, dx);
    double *dyd = ref_to_double(dy, ny), *dxd = xmalloc(nx * sizeof(double));
    ref_avgpool_global_backward(dyd, n, c, hw, dxd);
    float *dxr = ref_to_float(dxd, nx);
    /* dy / HW: one division, or a multiply by a rounded 1/HW */
    snprintf(what, sizeof what, "%s avgpool diff_src", name);
    assert_close(dx, dxr, nx, 0.0, 4 * U, what);

    free(x), free(xd), free(yd), free(yr), free(y), free(dy), free(dx), free(dyd), free(dxd);
    free(dxr);
    tensor_free(&diff_dst);
    tensor_free(&diff_src);
    pool_free(&l);
    tensor_free(&src);
}

/* ResNet-50's head: 2x2048x7x7 -> (2, 2048), blocked input. */
static void test_avgpool_resnet50(void **state)
{
    (void)state;
    run_avgpool(2, 2048, 7, 7, dnnl_nChw16c, 40, "2x2048x7x7");
}

/* The CIFAR ResNets' head: 2x64x8x8, plain. */
static void test_avgpool_cifar(void **state)
{
    (void)state;
    run_avgpool(2, 64, 8, 8, dnnl_nchw, 50, "2x64x8x8");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maxpool_small_plain),
        cmocka_unit_test(test_maxpool_negative),
        cmocka_unit_test(test_maxpool_stem),
        cmocka_unit_test(test_avgpool_cifar),
        cmocka_unit_test(test_avgpool_resnet50),
    };
    return cmocka_run_group_tests_name("pool", tests, testutil_dnn_setup, testutil_dnn_teardown);
}
