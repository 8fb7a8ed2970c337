/*
 * test_ema.c - the weights' moving average (include/ema.h) against a
 * float64 recomputation: seven steps of changing weights and BN statistics
 * with an update after every 3rd step (steps 3 and 6), decay 0.9, so the
 * average must be w0 -> 0.9 a + 0.1 w3 -> 0.9 a + 0.1 w6, for a plain and a
 * blocked (OIhw16i16o, padded) tensor, the BN running statistics and the
 * counter (copied at each update). Also: ema_due's rule, ema_swap twice is
 * the identity bit for bit, and one swap exchanges weights and average.
 *
 * Tolerance: an update does three float operations per element, each
 * rounding by at most u of the largest magnitude S (values are in [-3, 3]);
 * a decay below 1 does not amplify earlier errors: 2 updates stay within
 * 8 u S.
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
#include "ema.h"
#include "error.h"

#define U (FLT_EPSILON / 2)
#define STEPS 7
#define MAXN 4320

static void make_params(Params *p)
{
    params_init(p);
    int64_t conv1[4] = {8, 3, 3, 3}, bn[1] = {8}, conv2[4] = {20, 24, 3, 3}, fcb[1] = {10};
    testutil_param_plain(p, "conv1.weight", PARAM_CONV_WEIGHT, 4, conv1);
    testutil_param_plain(p, "bn1.weight", PARAM_BN_WEIGHT, 1, bn);
    dnnl_dims_t d2 = {20, 24, 3, 3};
    dnnl_memory_desc_t md = dnn_md_make(4, d2, dnnl_OIhw16i16o);
    params_add(p, "layer1.0.conv1.weight", PARAM_CONV_WEIGHT, 4, conv2, &md);
    testutil_param_plain(p, "fc.bias", PARAM_FC_BIAS, 1, fcb);
    params_bn_state_add(p, "bn1", 8);
    params_bn_state_add(p, "layer1.0.bn1", 20);
    params_allocate(p);
    params_allocate_ema(p);
}

/* New weights and statistics for step s, as training would leave them. */
static void set_weights(Params *p, int s, float *plain)
{
    for (int t = 0; t < p->count; t++) {
        ref_fill_normal(plain, p->info[t].numel, 100 + 10 * (uint64_t)s + (uint64_t)t, 1.0);
        params_set_plain(p, t, BUF_VALUE, plain);
    }
    ref_fill_normal(p->state, p->state_total, 900 + (uint64_t)s, 1.0);
    p->num_batches_tracked = 5 + s;
}

static void test_ema_due(void **state)
{
    (void)state;
    EmaConfig every3 = {.decay = 0.9, .every = 3}, every1 = {.decay = 0.5, .every = 1};
    EmaConfig off = {.decay = 0, .every = 1};
    assert_false(ema_due(&every3, 0));
    assert_false(ema_due(&every3, 2));
    assert_true(ema_due(&every3, 3));
    assert_true(ema_due(&every3, 6));
    assert_false(ema_due(&every3, 7));
    assert_true(ema_due(&every1, 1));
    assert_false(ema_due(&off, 1));
}

static void test_ema_against_float64(void **state)
{
    (void)state;
    Params p;
    make_params(&p);
    EmaConfig cfg = {.decay = 0.9, .every = 3};
    float *plain = xmalloc(MAXN * sizeof(float));
    double **ref = xmalloc((size_t)p.count * sizeof *ref);
    double *ref_state = xmalloc(p.state_total * sizeof(double));
    int64_t ref_nbt = 0;

    set_weights(&p, 0, plain);
    ema_reset(&p);
    for (int t = 0; t < p.count; t++) {
        params_get_plain(&p, t, BUF_VALUE, plain);
        ref[t] = ref_to_double(plain, p.info[t].numel);
    }
    for (size_t i = 0; i < p.state_total; i++)
        ref_state[i] = p.state[i];
    ref_nbt = p.num_batches_tracked;
    int updates = 0;
    for (int s = 1; s <= STEPS; s++) {
        set_weights(&p, s, plain);
        if (!ema_due(&cfg, s))
            continue;
        ema_update(&p, cfg.decay);
        updates++;
        for (int t = 0; t < p.count; t++) {
            params_get_plain(&p, t, BUF_VALUE, plain);
            for (size_t i = 0; i < p.info[t].numel; i++)
                ref[t][i] = 0.9 * ref[t][i] + 0.1 * plain[i];
        }
        for (size_t i = 0; i < p.state_total; i++)
            ref_state[i] = 0.9 * ref_state[i] + 0.1 * p.state[i];
        ref_nbt = p.num_batches_tracked;
    }
    assert_int_equal(updates, 2);

    double tol = 8 * U * 3.0 * updates;
    char what[160];
    for (int t = 0; t < p.count; t++) {
        size_t n = p.info[t].numel;
        float *want = ref_to_float(ref[t], n);
        params_get_plain(&p, t, BUF_EMA, plain);
        snprintf(what, sizeof what, "EMA of %s after %d steps, every 3", p.info[t].name, STEPS);
        assert_close(plain, want, n, tol, 0.0, what);
        free(want);
        free(ref[t]);
    }
    float *want = ref_to_float(ref_state, p.state_total);
    assert_close(p.ema_state, want, p.state_total, tol, 0.0, "EMA of the BN statistics");
    assert_int_equal(p.ema_num_batches_tracked, ref_nbt);
    assert_int_equal(ref_nbt, 5 + 6); /* copied at the step-6 update, not step 7's */
    free(want);
    free(ref), free(ref_state), free(plain);
    params_free(&p);
}

/* p's weights, average and their BN statistics are the given bytes. */
static void assert_holds(const Params *p, const float *value, const float *ema, const float *state,
                         const float *ema_state)
{
    assert_memory_equal(p->value, value, p->total * sizeof(float));
    assert_memory_equal(p->ema, ema, p->total * sizeof(float));
    assert_memory_equal(p->state, state, p->state_total * sizeof(float));
    assert_memory_equal(p->ema_state, ema_state, p->state_total * sizeof(float));
}

static void test_ema_swap(void **state)
{
    (void)state;
    Params p;
    make_params(&p);
    float *plain = xmalloc(MAXN * sizeof(float));
    set_weights(&p, 0, plain);
    ema_reset(&p);
    set_weights(&p, 1, plain);
    ema_update(&p, 0.5);
    size_t vb = p.total * sizeof(float), sb = p.state_total * sizeof(float);
    float *v = xmalloc(vb), *e = xmalloc(vb), *s = xmalloc(sb), *es = xmalloc(sb);
    memcpy(v, p.value, vb), memcpy(e, p.ema, vb);
    memcpy(s, p.state, sb), memcpy(es, p.ema_state, sb);
    p.ema_num_batches_tracked = 3;
    ema_swap(&p);
    assert_holds(&p, e, v, es, s);
    assert_int_equal(p.num_batches_tracked, 3);
    ema_swap(&p);
    assert_holds(&p, v, e, s, es);
    assert_int_equal(p.num_batches_tracked, 6);
    assert_int_equal(p.ema_num_batches_tracked, 3);
    free(v), free(e), free(s), free(es), free(plain);
    params_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ema_due),
        cmocka_unit_test(test_ema_against_float64),
        cmocka_unit_test(test_ema_swap),
    };
    return cmocka_run_group_tests_name("ema", tests, testutil_dnn_setup, testutil_dnn_teardown);
}
