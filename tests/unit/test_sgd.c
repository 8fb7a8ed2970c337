/*
 * test_sgd.c - sgd_step against torch.optim.SGD's rule (docs/design.md §4,
 * dampening 0), computed in double over three steps with a changing learning
 * rate: g = grad + wd w; buf = g on the first step, then momentum buf + g;
 * g = nesterov ? g + momentum buf : buf; w -= lr g. Covers momentum, Nesterov,
 * weight decay, plain SGD, and no_bn_decay, which must exempt BN weights and
 * biases and the fc bias but not conv or fc weights. One conv weight is kept
 * blocked (OIhw16i16o with padded channels): its padding must stay zero.
 *
 * Tolerance: each step does about five float operations per element, each
 * rounding by at most u times the largest intermediate S (|w|, |grad|,
 * |buf|, |g|, tracked in the reference); momentum below 1 does not amplify
 * earlier errors, so 3 steps stay within 32 u S.
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
#include "sgd.h"

#define U (FLT_EPSILON / 2)

/* A registry with one tensor of every kind; conv2 is blocked. */
static void make_params(Params *p)
{
    params_init(p);
    int64_t conv1[4] = {8, 3, 3, 3}, bn[1] = {8}, conv2[4] = {20, 24, 3, 3};
    int64_t fcw[2] = {10, 20}, fcb[1] = {10};
    testutil_param_plain(p, "conv1.weight", PARAM_CONV_WEIGHT, 4, conv1);
    testutil_param_plain(p, "bn1.weight", PARAM_BN_WEIGHT, 1, bn);
    testutil_param_plain(p, "bn1.bias", PARAM_BN_BIAS, 1, bn);
    dnnl_dims_t d2 = {20, 24, 3, 3};
    dnnl_memory_desc_t md = dnn_md_make(4, d2, dnnl_OIhw16i16o);
    params_add(p, "layer1.0.conv1.weight", PARAM_CONV_WEIGHT, 4, conv2, &md);
    testutil_param_plain(p, "fc.weight", PARAM_FC_WEIGHT, 2, fcw);
    testutil_param_plain(p, "fc.bias", PARAM_FC_BIAS, 1, fcb);
    params_bn_state_add(p, "bn1", 8);
    params_allocate(p);
}

static double sum_sq(const float *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return s;
}

static void run_case(const SgdConfig *cfg, const char *name)
{
    Params p;
    make_params(&p);
    const double lrs[3] = {0.1, 0.05, 0.1};
    int count = p.count;
    double **w = xmalloc((size_t)count * sizeof *w), **buf = xmalloc((size_t)count * sizeof *buf);
    float *plain = xmalloc(4320 * sizeof(float));
    double s = 0.0; /* the largest intermediate */
    for (int t = 0; t < count; t++) {
        size_t n = p.info[t].numel;
        ref_fill_normal(plain, n, 100 + (uint64_t)t, 1.0);
        params_set_plain(&p, t, BUF_VALUE, plain);
        w[t] = ref_to_double(plain, n);
        buf[t] = xcalloc(n, sizeof(double));
    }
    float *state_before = xmalloc(p.state_total * sizeof(float));
    memcpy(state_before, p.state, p.state_total * sizeof(float));

    for (int step = 0; step < 3; step++) {
        for (int t = 0; t < count; t++) {
            const ParamInfo *info = &p.info[t];
            size_t n = info->numel;
            ref_fill_normal(plain, n, 1000 + 10 * (uint64_t)step + (uint64_t)t, 0.1);
            params_set_plain(&p, t, BUF_GRAD, plain);
            double wd = cfg->no_bn_decay && (info->kind == PARAM_BN_WEIGHT ||
                                             info->kind == PARAM_BN_BIAS ||
                                             info->kind == PARAM_FC_BIAS)
                            ? 0.0
                            : cfg->weight_decay;
            for (size_t i = 0; i < n; i++) {
                double g = plain[i] + wd * w[t][i];
                buf[t][i] = step == 0 ? g : cfg->momentum * buf[t][i] + g;
                double upd = cfg->nesterov ? g + cfg->momentum * buf[t][i] : buf[t][i];
                s = fmax(s, fmax(fmax(fabs(w[t][i]), fabs(plain[i])), fmax(fabs(g), fabs(upd))));
                w[t][i] -= lrs[step] * upd;
            }
        }
        sgd_step(cfg, &p, lrs[step]);
    }

    char what[160];
    for (int t = 0; t < count; t++) {
        const ParamInfo *info = &p.info[t];
        size_t n = info->numel;
        float *want = ref_to_float(w[t], n);
        params_get_plain(&p, t, BUF_VALUE, plain);
        snprintf(what, sizeof what, "%s: %s after 3 steps", name, info->name);
        assert_close(plain, want, n, 32 * U * s, 0.0, what);
        free(want);
        want = ref_to_float(buf[t], n);
        params_get_plain(&p, t, BUF_MOMENTUM, plain);
        snprintf(what, sizeof what, "%s: %s momentum buffer", name, info->name);
        assert_close(plain, want, n, 32 * U * s, 0.0, what);
        /* block and alignment padding stay zero: the slice holds nothing
         * but the tensor's values */
        params_get_plain(&p, t, BUF_VALUE, plain);
        double in_slice = sum_sq(p.value + info->offset, info->span);
        double in_tensor = sum_sq(plain, n);
        assert_true(fabs(in_slice - in_tensor) <= 1e-12 * in_tensor);
        free(want);
    }
    /* BN running statistics are not parameters */
    assert_memory_equal(p.state, state_before, p.state_total * sizeof(float));

    for (int t = 0; t < count; t++) {
        free(w[t]);
        free(buf[t]);
    }
    free(w), free(buf), free(plain), free(state_before);
    params_free(&p);
}

static void test_sgd_momentum_decay(void **state)
{
    (void)state;
    SgdConfig cfg = {.momentum = 0.9, .weight_decay = 0.05, .nesterov = 0, .no_bn_decay = 0};
    run_case(&cfg, "momentum 0.9, wd 0.05");
}

static void test_sgd_nesterov(void **state)
{
    (void)state;
    SgdConfig cfg = {.momentum = 0.9, .weight_decay = 0.05, .nesterov = 1, .no_bn_decay = 0};
    run_case(&cfg, "nesterov");
}

static void test_sgd_no_bn_decay(void **state)
{
    (void)state;
    SgdConfig cfg = {.momentum = 0.9, .weight_decay = 0.05, .nesterov = 0, .no_bn_decay = 1};
    run_case(&cfg, "no_bn_decay");
    cfg.nesterov = 1;
    run_case(&cfg, "no_bn_decay nesterov");
}

static void test_sgd_plain(void **state)
{
    (void)state;
    SgdConfig cfg = {.momentum = 0.0, .weight_decay = 0.0, .nesterov = 0, .no_bn_decay = 0};
    run_case(&cfg, "plain sgd");
}

/* One step by hand: w 1, grad 0.5, wd 0.1, lr 0.1, momentum 0.9: g = 0.6,
 * buf = 0.6, w = 0.94 (Nesterov: g + 0.9 * 0.6 = 1.14, w = 0.886); the
 * second step with the same gradient: g = 0.5 + 0.094 = 0.594, buf = 0.54 +
 * 0.594 = 1.134, w = 0.94 - 0.1134 = 0.8266. */
static void test_sgd_by_hand(void **state)
{
    (void)state;
    for (int nesterov = 0; nesterov < 2; nesterov++) {
        Params p;
        params_init(&p);
        int64_t d[1] = {1};
        testutil_param_plain(&p, "conv.weight", PARAM_CONV_WEIGHT, 1, d);
        params_allocate(&p);
        p.value[0] = 1.0f;
        p.grad[0] = 0.5f;
        SgdConfig cfg = {.momentum = 0.9, .weight_decay = 0.1, .nesterov = nesterov};
        sgd_step(&cfg, &p, 0.1);
        assert_true(fabsf(p.momentum[0] - 0.6f) < 1e-6f);
        assert_true(fabsf(p.value[0] - (nesterov ? 0.886f : 0.94f)) < 1e-6f);
        if (!nesterov) {
            sgd_step(&cfg, &p, 0.1);
            assert_true(fabsf(p.momentum[0] - 1.134f) < 1e-6f);
            assert_true(fabsf(p.value[0] - 0.8266f) < 1e-6f);
        }
        params_free(&p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_by_hand),
        cmocka_unit_test(test_sgd_momentum_decay),
        cmocka_unit_test(test_sgd_nesterov),
        cmocka_unit_test(test_sgd_no_bn_decay),
        cmocka_unit_test(test_sgd_plain),
    };
    return cmocka_run_group_tests_name("sgd", tests, testutil_dnn_setup, testutil_dnn_teardown);
}
