/*
 * test_shortcut.c - the option-A shortcut of the CIFAR ResNets (subsample by
 * the stride, zero-pad the new channels evenly on both sides) forward and
 * backward against the naive reference, on the two down-sampling shapes of
 * resnet20/56/110 (16 -> 32 at 32x32, 32 -> 64 at 16x16), an odd size
 * (PyTorch's x[:, :, ::2, ::2] keeps ceil(H/2) rows), plain and blocked
 * layouts. Only copies and zeros are involved, so results must be exact.
 */
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
#include "shortcut.h"

static void run_case(int n, int c, int h, int w, int c_out, int stride,
                     dnnl_format_tag_t in_tag, dnnl_format_tag_t out_tag, uint64_t seed,
                     const char *name)
{
    int oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride;
    size_t nx = (size_t)n * c * h * w, ny = (size_t)n * c_out * oh * ow;
    int pad_before = (c_out - c) / 2;
    char what[160];
    float *x = xmalloc(nx * sizeof(float));
    ref_fill_normal(x, nx, seed, 1.0);
    dnnl_dims_t in_dims = {n, c, h, w}, out_dims = {n, c_out, oh, ow};
    dnnl_memory_desc_t in_md = dnn_md_make(4, in_dims, in_tag);
    dnnl_memory_desc_t out_md = dnn_md_make(4, out_dims, out_tag);
    Tensor src;
    ref_tensor_make(&src, &in_md, x);
    ShortcutA l;
    shortcut_a_init(&l, &src, &out_md, stride);
    assert_int_equal(l.pad_before, pad_before);
    assert_true(dnn_md_equal(&l.dst.md, &out_md));

    memset(l.dst.data, 0x7f, dnn_md_bytes(&out_md)); /* the zeros must be written */
    shortcut_a_forward(&l);
    dnn_wait();
    float *y = xmalloc(ny * sizeof(float));
    ref_tensor_to_plain(&l.dst, y);
    double *xd = ref_to_double(x, nx), *yd = xmalloc(ny * sizeof(double));
    ref_shortcut_a_forward(xd, n, c, h, w, c_out, oh, ow, stride, pad_before, yd);
    float *yr = ref_to_float(yd, ny);
    snprintf(what, sizeof what, "%s forward", name);
    assert_close(y, yr, ny, 0.0, 0.0, what);

    float *dy = xmalloc(ny * sizeof(float));
    ref_fill_normal(dy, ny, seed + 1, 1.0);
    Tensor diff_dst, diff_src;
    ref_tensor_make(&diff_dst, &out_md, dy);
    tensor_alloc(&diff_src, &in_md);
    memset(diff_src.data, 0x7f, dnn_md_bytes(&in_md)); /* the skipped pixels get 0 */
    shortcut_a_backward(&l, &diff_dst, &diff_src);
    dnn_wait();
    float *dx = xmalloc(nx * sizeof(float));
    ref_tensor_to_plain(&diff_src, dx);
    double *dyd = ref_to_double(dy, ny), *dxd = xmalloc(nx * sizeof(double));
    ref_shortcut_a_backward(dyd, n, c, h, w, c_out, oh, ow, stride, pad_before, dxd);
    float *dxr = ref_to_float(dxd, nx);
    snprintf(what, sizeof what, "%s backward", name);
    assert_close(dx, dxr, nx, 0.0, 0.0, what);

    /* a second pass gives the same (no state left over) */
    shortcut_a_forward(&l);
    dnn_wait();
    ref_tensor_to_plain(&l.dst, y);
    snprintf(what, sizeof what, "%s forward again", name);
    assert_close(y, yr, ny, 0.0, 0.0, what);

    free(x), free(y), free(xd), free(yd), free(yr), free(dy), free(dx), free(dyd), free(dxd);
    free(dxr);
    tensor_free(&diff_dst);
    tensor_free(&diff_src);
    shortcut_a_free(&l);
    tensor_free(&src);
}

static void test_shortcut_stage2(void **state)
{
    (void)state;
    run_case(2, 16, 32, 32, 32, 2, dnnl_nchw, dnnl_nchw, 1, "16->32 @32 plain");
    run_case(2, 16, 32, 32, 32, 2, dnnl_nChw16c, dnnl_nChw16c, 2, "16->32 @32 blocked");
}

static void test_shortcut_stage3(void **state)
{
    (void)state;
    run_case(2, 32, 16, 16, 64, 2, dnnl_nChw16c, dnnl_nChw16c, 3, "32->64 @16 blocked");
    run_case(2, 32, 16, 16, 64, 2, dnnl_nchw, dnnl_nChw8c, 4, "32->64 @16 plain->nChw8c");
}

static void test_shortcut_odd(void **state)
{
    (void)state;
    run_case(1, 4, 7, 5, 12, 2, dnnl_nchw, dnnl_nhwc, 5, "4->12 @7x5");
}

/* Stride 1 and equal widths: the identity. */
static void test_shortcut_identity(void **state)
{
    (void)state;
    run_case(2, 16, 6, 6, 16, 1, dnnl_nChw16c, dnnl_nChw16c, 6, "identity");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shortcut_stage2),
        cmocka_unit_test(test_shortcut_stage3),
        cmocka_unit_test(test_shortcut_odd),
        cmocka_unit_test(test_shortcut_identity),
    };
    return cmocka_run_group_tests_name("shortcut", tests, testutil_dnn_setup,
                                       testutil_dnn_teardown);
}
