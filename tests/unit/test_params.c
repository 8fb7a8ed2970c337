/*
 * test_params.c - the parameter registry: registration order, offsets and
 * 64-byte alignment, lookup by name, re-registration, PyTorch-layout copies
 * into and out of blocked layouts (values land where the blocked layout says
 * and the padding is zero), grouped weights, BN running statistics (mean 0,
 * var 1 as PyTorch starts them), tensors bound before and after the buffers
 * exist, and the errors a misuse must raise.
 */
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../ref/ref_kernels.h"
#include "common/testutil.h"
#include "error.h"
#include "params.h"

#define ALIGN_FLOATS 16 /* 64 bytes */

static int add_blocked(Params *p, const char *name, int64_t o, int64_t i, int64_t k,
                       dnnl_format_tag_t tag)
{
    int64_t dims[4] = {o, i, k, k};
    dnnl_dims_t d = {o, i, k, k};
    dnnl_memory_desc_t md = dnn_md_make(4, d, tag);
    return params_add(p, name, PARAM_CONV_WEIGHT, 4, dims, &md);
}

static void test_params_layout(void **state)
{
    (void)state;
    Params p;
    params_init(&p);
    int64_t c1[4] = {8, 3, 7, 7}, bn[1] = {8}, fcw[2] = {10, 8}, fcb[1] = {10};
    assert_int_equal(testutil_param_plain(&p, "conv1.weight", PARAM_CONV_WEIGHT, 4, c1), 0);
    assert_int_equal(testutil_param_plain(&p, "bn1.weight", PARAM_BN_WEIGHT, 1, bn), 1);
    assert_int_equal(testutil_param_plain(&p, "bn1.bias", PARAM_BN_BIAS, 1, bn), 2);
    assert_int_equal(add_blocked(&p, "layer1.0.conv1.weight", 20, 24, 3, dnnl_OIhw16i16o), 3);
    assert_int_equal(testutil_param_plain(&p, "fc.weight", PARAM_FC_WEIGHT, 2, fcw), 4);
    assert_int_equal(testutil_param_plain(&p, "fc.bias", PARAM_FC_BIAS, 1, fcb), 5);
    assert_int_equal(p.count, 6);

    const size_t numel[6] = {8 * 3 * 49, 8, 8, 20 * 24 * 9, 80, 10};
    size_t expect_offset = 0, total_numel = 0;
    for (int i = 0; i < p.count; i++) {
        const ParamInfo *info = &p.info[i];
        assert_int_equal(info->numel, numel[i]);
        assert_int_equal(info->offset, expect_offset);
        assert_int_equal(info->offset % ALIGN_FLOATS, 0);
        assert_int_equal(info->span % ALIGN_FLOATS, 0);
        assert_true(info->span >= dnn_md_floats(&info->md));
        assert_true(info->span < dnn_md_floats(&info->md) + ALIGN_FLOATS);
        expect_offset += info->span;
        total_numel += info->numel;
    }
    assert_int_equal(p.total, expect_offset);
    assert_int_equal(params_numel(&p), total_numel);
    /* the blocked tensor is padded to 32 x 32 channels */
    assert_int_equal(dnn_md_floats(&p.info[3].md), 32 * 32 * 9);
    assert_int_equal(p.info[3].dims[0], 20);
    assert_int_equal(p.info[3].dims[1], 24);

    /* lookup, and re-registration finds the same tensor */
    assert_int_equal(params_find(&p, "layer1.0.conv1.weight"), 3);
    assert_int_equal(params_find(&p, "fc.bias"), 5);
    assert_int_equal(params_find(&p, "fc"), -1);
    assert_int_equal(params_find(&p, "layer1.0.conv1.weigh"), -1);
    assert_int_equal(add_blocked(&p, "layer1.0.conv1.weight", 20, 24, 3, dnnl_OIhw16i16o), 3);
    assert_int_equal(p.count, 6);

    /* which tensors weight decay may skip */
    const int bn_or_bias[6] = {0, 1, 1, 0, 0, 1};
    for (int i = 0; i < p.count; i++)
        assert_int_equal(params_is_bn_or_bias(&p.info[i]), bn_or_bias[i]);

    params_allocate(&p);
    ParamBuffer bufs[3] = {BUF_VALUE, BUF_GRAD, BUF_MOMENTUM};
    for (int b = 0; b < 3; b++) {
        float *base = params_buffer(&p, bufs[b]);
        assert_non_null(base);
        for (int i = 0; i < p.count; i++)
            assert_int_equal((uintptr_t)(base + p.info[i].offset) % 64, 0);
        for (size_t k = 0; k < p.total; k++)
            assert_true(base[k] == 0.0f); /* zeroed: momentum starts at 0 */
    }
    assert_ptr_not_equal(p.value, p.grad);
    assert_ptr_not_equal(p.grad, p.momentum);
    params_free(&p);
}

/* dnnl_OIhw16i16o: element (o, i, y, x) sits at
 * ((o/16 * IB + i/16) * K*K + y*K + x) * 256 + (i%16) * 16 + o%16, with IB the
 * number of 16-blocks of input channels. */
static size_t oihw16i16o_at(int64_t o, int64_t i, int64_t y, int64_t x, int64_t ic, int64_t k)
{
    int64_t ib = (ic + 15) / 16;
    return (size_t)((((o / 16) * ib + i / 16) * k * k + y * k + x) * 256 + (i % 16) * 16 +
                    o % 16);
}

static void test_params_blocked_round_trip(void **state)
{
    (void)state;
    Params p;
    params_init(&p);
    const int64_t oc = 20, ic = 24, k = 3;
    int idx = add_blocked(&p, "w", oc, ic, k, dnnl_OIhw16i16o);
    params_allocate(&p);
    size_t n = (size_t)(oc * ic * k * k);
    float *in = xmalloc(n * sizeof(float)), *out = xmalloc(n * sizeof(float));
    ParamBuffer bufs[3] = {BUF_VALUE, BUF_GRAD, BUF_MOMENTUM};
    for (int b = 0; b < 3; b++) {
        ref_fill_normal(in, n, 10 + (uint64_t)b, 1.0);
        params_set_plain(&p, idx, bufs[b], in);
        memset(out, 0, n * sizeof(float));
        params_get_plain(&p, idx, bufs[b], out);
        assert_memory_equal(out, in, n * sizeof(float));
        /* every value sits where the blocked layout puts it */
        const float *slice = params_buffer(&p, bufs[b]) + p.info[idx].offset;
        double in_sum = 0.0, slice_sum = 0.0;
        for (int64_t o = 0; o < oc; o++)
            for (int64_t i = 0; i < ic; i++)
                for (int64_t y = 0; y < k; y++)
                    for (int64_t x = 0; x < k; x++) {
                        float v = in[((o * ic + i) * k + y) * k + x];
                        assert_true(slice[oihw16i16o_at(o, i, y, x, ic, k)] == v);
                        in_sum += fabs(v);
                    }
        /* and nothing else is in the slice: the padding is zero */
        for (size_t s = 0; s < p.info[idx].span; s++)
            slice_sum += fabs(slice[s]);
        assert_true(fabs(slice_sum - in_sum) <= 1e-12 * in_sum);
    }
    free(in);
    free(out);
    params_free(&p);
}

/* Grouped weights are 5-D in oneDNN, (G, OC/G, IC/G, K, K); row-major that
 * is PyTorch's (OC, IC/G, K, K), and a blocked grouped layout round-trips. */
static void test_params_grouped(void **state)
{
    (void)state;
    Params p;
    params_init(&p);
    const int64_t g = 4, oc = 32, icg = 8, k = 3;
    int64_t pt[4] = {oc, icg, k, k};
    dnnl_dims_t d5 = {g, oc / g, icg, k, k};
    dnnl_memory_desc_t plain = dnn_md_make(5, d5, dnnl_goihw);
    dnnl_memory_desc_t blocked = dnn_md_make(5, d5, dnnl_gOIhw16i16o);
    int a = params_add(&p, "plain.weight", PARAM_CONV_WEIGHT, 4, pt, &plain);
    int b = params_add(&p, "blocked.weight", PARAM_CONV_WEIGHT, 4, pt, &blocked);
    params_allocate(&p);
    size_t n = (size_t)(oc * icg * k * k);
    assert_int_equal(p.info[a].numel, n);
    float *in = xmalloc(n * sizeof(float)), *out = xmalloc(n * sizeof(float));
    ref_fill_normal(in, n, 20, 1.0);
    params_set_plain(&p, a, BUF_VALUE, in);
    assert_memory_equal(p.value + p.info[a].offset, in, n * sizeof(float));
    params_set_plain(&p, b, BUF_VALUE, in);
    params_get_plain(&p, b, BUF_VALUE, out);
    assert_memory_equal(out, in, n * sizeof(float));
    /* the blocked copy really is another layout */
    assert_true(memcmp(p.value + p.info[b].offset, in, n * sizeof(float)) != 0);
    free(in);
    free(out);
    params_free(&p);
}

static void *handle_of(const Tensor *t)
{
    void *h = NULL;
    assert_int_equal(dnnl_memory_get_data_handle(t->mem, &h), dnnl_success);
    return h;
}

static void test_params_binding(void **state)
{
    (void)state;
    Params p;
    params_init(&p);
    int64_t d[4] = {16, 8, 3, 3};
    int w = testutil_param_plain(&p, "conv.weight", PARAM_CONV_WEIGHT, 4, d);
    int64_t c[1] = {16};
    int gamma = testutil_param_plain(&p, "bn.weight", PARAM_BN_WEIGHT, 1, c);
    int s0 = params_bn_state_add(&p, "bn0", 4);
    int s1 = params_bn_state_add(&p, "bn", 16);
    assert_int_equal(params_bn_state_add(&p, "bn", 16), s1); /* found again */
    assert_int_equal(params_bn_state_find(&p, "bn"), s1);
    assert_int_equal(params_bn_state_find(&p, "bn0"), s0);
    assert_int_equal(params_bn_state_find(&p, "b"), -1);
    assert_int_equal(p.state_total, 2 * (4 + 16));

    /* bound before allocation: no data yet */
    Tensor before_v, before_g, before_m, rm, rv;
    params_bind(&p, w, BUF_VALUE, &before_v);
    params_bind(&p, w, BUF_GRAD, &before_g);
    params_bind(&p, gamma, BUF_MOMENTUM, &before_m);
    params_bn_state_bind(&p, s1, &rm, &rv);
    assert_null(before_v.data);
    assert_null(rm.data);
    assert_true(dnn_md_equal(&before_v.md, &p.info[w].md));
    assert_int_equal(rv.md.dims[0], 16);

    params_allocate(&p);
    assert_ptr_equal(before_v.data, p.value + p.info[w].offset);
    assert_ptr_equal(before_g.data, p.grad + p.info[w].offset);
    assert_ptr_equal(before_m.data, p.momentum + p.info[gamma].offset);
    assert_ptr_equal(handle_of(&before_v), before_v.data);
    assert_ptr_equal(handle_of(&before_g), before_g.data);
    assert_ptr_equal(rm.data, params_bn_running_mean(&p, s1));
    assert_ptr_equal(rv.data, params_bn_running_var(&p, s1));
    assert_ptr_equal(handle_of(&rv), rv.data);
    assert_ptr_equal(params_bn_running_var(&p, s1), params_bn_running_mean(&p, s1) + 16);

    /* PyTorch's initial running statistics */
    for (int s = 0; s < p.bn_count; s++)
        for (size_t k = 0; k < p.bn[s].channels; k++) {
            assert_true(params_bn_running_mean(&p, s)[k] == 0.0f);
            assert_true(params_bn_running_var(&p, s)[k] == 1.0f);
        }

    /* bound after allocation: data at once */
    Tensor after_v, rm2, rv2;
    params_bind(&p, w, BUF_VALUE, &after_v);
    params_bn_state_bind(&p, s0, &rm2, &rv2);
    assert_ptr_equal(after_v.data, before_v.data);
    assert_ptr_equal(handle_of(&after_v), before_v.data);
    assert_ptr_equal(rm2.data, params_bn_running_mean(&p, s0));
    assert_ptr_equal(handle_of(&rv2), params_bn_running_var(&p, s0));

    /* writes through one view show in the others and in the plain copy */
    before_v.data[5] = 2.5f;
    float plain[16 * 8 * 9];
    params_get_plain(&p, w, BUF_VALUE, plain);
    assert_true(plain[5] == 2.5f && after_v.data[5] == 2.5f);

    Tensor *ts[] = {&before_v, &before_g, &before_m, &rm, &rv, &after_v, &rm2, &rv2};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++)
        tensor_free(ts[i]);
    params_free(&p);
}

/* Misuse fails the process loudly (fail_local aborts outside MPI). Runs in
 * a child so the test survives; the child's stderr is discarded. */
static int dies(void (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        FILE *devnull = freopen("/dev/null", "w", stderr);
        (void)devnull;
        fn();
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void twice_different_layout(void)
{
    Params p;
    params_init(&p);
    add_blocked(&p, "w", 16, 16, 3, dnnl_oihw);
    add_blocked(&p, "w", 16, 16, 3, dnnl_OIhw16i16o);
}

static void add_after_allocate(void)
{
    Params p;
    params_init(&p);
    add_blocked(&p, "w", 16, 16, 3, dnnl_oihw);
    params_allocate(&p);
    add_blocked(&p, "v", 16, 16, 3, dnnl_oihw);
}

static void bn_after_allocate(void)
{
    Params p;
    params_init(&p);
    params_allocate(&p);
    params_bn_state_add(&p, "bn", 8);
}

static void allocate_twice(void)
{
    Params p;
    params_init(&p);
    add_blocked(&p, "w", 16, 16, 3, dnnl_oihw);
    params_allocate(&p);
    params_allocate(&p);
}

static void still_fine(void)
{
    Params p;
    params_init(&p);
    add_blocked(&p, "w", 16, 16, 3, dnnl_oihw);
    add_blocked(&p, "w", 16, 16, 3, dnnl_oihw);
    params_allocate(&p);
    params_free(&p);
}

static void test_params_misuse(void **state)
{
    (void)state;
    assert_false(dies(still_fine)); /* the harness itself can tell */
    assert_true(dies(twice_different_layout));
    assert_true(dies(add_after_allocate));
    assert_true(dies(bn_after_allocate));
    assert_true(dies(allocate_twice));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_layout),
        cmocka_unit_test(test_params_blocked_round_trip),
        cmocka_unit_test(test_params_grouped),
        cmocka_unit_test(test_params_binding),
        cmocka_unit_test(test_params_misuse),
    };
    return cmocka_run_group_tests_name("params", tests, testutil_dnn_setup, testutil_dnn_teardown);
}
