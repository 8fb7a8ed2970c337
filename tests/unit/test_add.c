/*
 * test_add.c - the residual add with fused ReLU (forward; backward masks the
 * gradient where dst is not positive) and the gradient sum, against the
 * naive reference on ResNet-50's layer1 output (2x256x56x56, blocked) and a
 * small plain shape. One float addition of two floats is correctly rounded
 * and the ReLU and its mask do no arithmetic, so every result must match the
 * reference rounded to float exactly.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../ref/ref_kernels.h"
#include "add.h"
#include "common/testutil.h"
#include "error.h"

static void make_inputs(float *a, float *b, size_t n, uint64_t seed)
{
    ref_fill_normal(a, n, seed, 1.0);
    ref_fill_normal(b, n, seed + 1, 1.0);
    /* some sums exactly 0: the ReLU's boundary, where the gradient is 0 */
    for (size_t i = 0; i < n; i += 97)
        b[i] = -a[i];
}

static void run_add(int n, int c, int h, int w, dnnl_format_tag_t tag, int relu, uint64_t seed,
                    const char *name)
{
    size_t total = (size_t)n * c * h * w;
    char what[160];
    float *a = xmalloc(total * sizeof(float)), *b = xmalloc(total * sizeof(float));
    make_inputs(a, b, total, seed);
    dnnl_dims_t dims = {n, c, h, w};
    dnnl_memory_desc_t md = dnn_md_make(4, dims, tag);
    Tensor ta, tb;
    ref_tensor_make(&ta, &md, a);
    ref_tensor_make(&tb, &md, b);
    AddLayer l;
    add_init(&l, &ta, &tb, relu);
    assert_true(dnn_md_equal(&l.dst.md, &md));

    add_forward(&l);
    dnn_wait();
    float *y = xmalloc(total * sizeof(float));
    ref_tensor_to_plain(&l.dst, y);
    double *ad = ref_to_double(a, total), *bd = ref_to_double(b, total);
    double *yd = xmalloc(total * sizeof(double));
    ref_add_forward(ad, bd, total, relu, yd);
    float *yr = ref_to_float(yd, total);
    snprintf(what, sizeof what, "%s dst", name);
    assert_close(y, yr, total, 0.0, 0.0, what);
    size_t zeros = 0, positive = 0;
    for (size_t i = 0; i < total; i++) {
        zeros += yr[i] == 0.0f;
        positive += yr[i] > 0.0f;
    }
    assert_true(zeros >= total / 97);
    assert_true(positive > total / 4 && positive < total * 3 / 4);

    float *dy = xmalloc(total * sizeof(float));
    ref_fill_normal(dy, total, seed + 2, 1.0);
    double *dyd = ref_to_double(dy, total), *dsd = xmalloc(total * sizeof(double));
    if (relu)
        ref_relu_backward_from_dst(yd, dyd, total, dsd);
    else
        memcpy(dsd, dyd, total * sizeof(double));
    float *dsr = ref_to_float(dsd, total), *ds = xmalloc(total * sizeof(float));

    Tensor diff_dst, diff_sum;
    ref_tensor_make(&diff_dst, &md, dy);
    tensor_alloc(&diff_sum, &md);
    memset(diff_sum.data, 0x7f, dnn_md_bytes(&md));
    add_backward(&l, &diff_dst, &diff_sum);
    dnn_wait();
    ref_tensor_to_plain(&diff_sum, ds);
    snprintf(what, sizeof what, "%s diff_sum", name);
    assert_close(ds, dsr, total, 0.0, 0.0, what);

    /* in place, as the network runs it */
    add_backward(&l, &diff_dst, &diff_dst);
    dnn_wait();
    ref_tensor_to_plain(&diff_dst, ds);
    snprintf(what, sizeof what, "%s diff_sum in place", name);
    assert_close(ds, dsr, total, 0.0, 0.0, what);

    free(a), free(b), free(y), free(ad), free(bd), free(yd), free(yr), free(dy), free(dyd);
    free(dsd), free(dsr), free(ds);
    tensor_free(&diff_dst);
    tensor_free(&diff_sum);
    add_free(&l);
    tensor_free(&ta);
    tensor_free(&tb);
}

/* layer1's output: relu(bn3 + shortcut), 2x256x56x56 blocked. */
static void test_add_relu_resnet50(void **state)
{
    (void)state;
    run_add(2, 256, 56, 56, dnnl_nChw16c, 1, 10, "add relu 2x256x56x56");
}

static void test_add_relu_plain(void **state)
{
    (void)state;
    run_add(2, 16, 9, 7, dnnl_nchw, 1, 20, "add relu 2x16x9x7");
}

/* Pre-activation blocks add without a ReLU. */
static void test_add_no_relu(void **state)
{
    (void)state;
    run_add(2, 32, 8, 8, dnnl_nChw16c, 0, 30, "add 2x32x8x8");
}

/* add_sum_run merges two branches' gradients, also into one of its inputs. */
static void test_sum_run(void **state)
{
    (void)state;
    dnnl_dims_t dims = {2, 64, 14, 14};
    size_t total = 2 * 64 * 14 * 14;
    float *a = xmalloc(total * sizeof(float)), *b = xmalloc(total * sizeof(float));
    float *s = xmalloc(total * sizeof(float));
    make_inputs(a, b, total, 40);
    double *ad = ref_to_double(a, total), *bd = ref_to_double(b, total);
    double *sd = xmalloc(total * sizeof(double));
    ref_add_forward(ad, bd, total, 0, sd);
    float *sr = ref_to_float(sd, total);
    dnnl_format_tag_t tags[] = {dnnl_nchw, dnnl_nChw16c};
    for (int t = 0; t < 2; t++) {
        dnnl_memory_desc_t md = dnn_md_make(4, dims, tags[t]);
        Tensor ta, tb, td;
        ref_tensor_make(&ta, &md, a);
        ref_tensor_make(&tb, &md, b);
        tensor_alloc(&td, &md);
        SumOp op;
        add_sum_init(&op, &md);
        add_sum_run(&op, &ta, &tb, &td);
        dnn_wait();
        ref_tensor_to_plain(&td, s);
        assert_close(s, sr, total, 0.0, 0.0, t ? "sum blocked" : "sum plain");
        add_sum_run(&op, &ta, &tb, &ta); /* dst aliases a */
        dnn_wait();
        ref_tensor_to_plain(&ta, s);
        assert_close(s, sr, total, 0.0, 0.0, t ? "sum in place blocked" : "sum in place plain");
        ref_tensor_to_plain(&tb, s);
        assert_close(s, b, total, 0.0, 0.0, "sum leaves b alone");
        add_sum_free(&op);
        tensor_free(&ta);
        tensor_free(&tb);
        tensor_free(&td);
    }
    free(a), free(b), free(s), free(ad), free(bd), free(sd), free(sr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_relu_plain),
        cmocka_unit_test(test_add_no_relu),
        cmocka_unit_test(test_add_relu_resnet50),
        cmocka_unit_test(test_sum_run),
    };
    return cmocka_run_group_tests_name("add", tests, testutil_dnn_setup, testutil_dnn_teardown);
}
