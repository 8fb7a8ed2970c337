/*
 * test_mix.c - mixup and cutmix of mix.h:
 *   - the Beta sampler's mean and variance against the closed form
 *     (a / (a + b), ab / ((a + b)^2 (a + b + 1))) for shapes below and
 *     above 1, and finite draws in [0, 1] for tiny shapes;
 *   - mixup's pixels against a naive double recomputation, pairs (0,1),
 *     (2,3), ... and nothing else;
 *   - cutmix: the pixels taken from the partner number exactly
 *     (1 - own weight) * H * W per channel, own and partner weights add to
 *     1, boxes at the image's edges are clamped;
 *   - the step's choice depends on (seed, step) only; with both alphas
 *     each mode is picked about half the time, with one only that one.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/testutil.h"
#include "error.h"
#include "mix.h"

/* Sample mean and variance of count Beta(a, b) draws against the closed
 * form, within 5 standard errors (the variance's from the fourth moment). */
static void check_beta_moments(double a, double b, uint64_t seed)
{
    const int count = 200000;
    double *v = xmalloc(count * sizeof(double));
    Rng r;
    rng_seed(&r, seed, 0, 0);
    double mean = 0.0;
    for (int i = 0; i < count; i++) {
        v[i] = mix_beta(&r, a, b);
        if (!(v[i] >= 0.0 && v[i] <= 1.0))
            fail_msg("Beta(%g, %g) drew %g", a, b, v[i]);
        mean += v[i];
    }
    mean /= count;
    double var = 0.0, m4 = 0.0;
    for (int i = 0; i < count; i++) {
        double d = (v[i] - mean) * (v[i] - mean);
        var += d;
        m4 += d * d;
    }
    var /= count - 1;
    m4 /= count;
    double want_mean = a / (a + b), want_var = a * b / ((a + b) * (a + b) * (a + b + 1));
    double se_mean = sqrt(want_var / count), se_var = sqrt((m4 - var * var) / count);
    if (fabs(mean - want_mean) > 5 * se_mean || fabs(var - want_var) > 5 * se_var)
        fail_msg("Beta(%g, %g): mean %.5f var %.5f, closed form %.5f %.5f (se %.5f %.5f)", a, b,
                 mean, var, want_mean, want_var, se_mean, se_var);
    free(v);
}

static void test_beta_moments(void **state)
{
    (void)state;
    check_beta_moments(0.2, 0.2, 1);
    check_beta_moments(1.0, 1.0, 2);
    check_beta_moments(2.0, 2.0, 3);
    check_beta_moments(0.5, 3.0, 4);
    check_beta_moments(8.0, 0.7, 5);
    Rng r;
    rng_seed(&r, 6, 0, 0);
    for (int i = 0; i < 1000; i++) {
        double x = mix_beta(&r, 1e-3, 1e-3);
        assert_true(x >= 0.0 && x <= 1.0);
    }
}

enum { N = 6, C = 3, H = 7, W = 5 };
#define IMAGE ((size_t)C * H * W)

static void fill_batch(float *x, uint32_t seed)
{
    testutil_fill(x, N * IMAGE, seed);
}

static void test_mixup_values(void **state)
{
    (void)state;
    static float x[N * IMAGE], orig[N * IMAGE], want[N * IMAGE];
    for (int64_t step = 0; step < 5; step++) {
        MixChoice c = mix_choose(0.4, 0.0, 9, step, H, W);
        assert_int_equal(c.mode, MIX_MIXUP);
        assert_true(c.own_weight == c.lam);
        fill_batch(orig, (uint32_t)step + 1);
        memcpy(x, orig, sizeof x);
        mix_apply(&c, x, N, C, H, W);
        for (int i = 0; i < N; i++) {
            int p = i % 2 ? i - 1 : i + 1; /* the pair (0,1), (2,3), ... */
            assert_int_equal(mix_partner(i), p);
            for (size_t j = 0; j < IMAGE; j++) {
                double own = orig[i * IMAGE + j], other = orig[p * IMAGE + j];
                want[i * IMAGE + j] = (float)(other + c.lam * (own - other));
            }
        }
        assert_close(x, want, N * IMAGE, 1e-6, 1e-6, "mixup pixels");
    }
}

/* Each sample's pixels are its index + 1: the pixels that changed are the
 * partner's. */
static void check_cutmix(const MixChoice *c)
{
    static float x[N * IMAGE];
    for (int i = 0; i < N; i++)
        for (size_t j = 0; j < IMAGE; j++)
            x[i * IMAGE + j] = (float)(i + 1);
    mix_apply(c, x, N, C, H, W);
    double want = (1.0 - c->own_weight) * H * W;
    for (int i = 0; i < N; i++)
        for (int ch = 0; ch < C; ch++) {
            int taken = 0;
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++) {
                    float v = x[i * IMAGE + ((size_t)ch * H + y) * W + xx];
                    int inside = xx >= c->x1 && xx < c->x2 && y >= c->y1 && y < c->y2;
                    assert_true(v == (float)((inside ? mix_partner(i) : i) + 1));
                    taken += inside;
                }
            if (fabs(taken - want) > 1e-9)
                fail_msg("sample %d channel %d: %d pixels from the partner, (1 - %.6f) H W = %g",
                         i, ch, taken, c->own_weight, want);
        }
    int32_t labels[N] = {3, 1, 4, 1, 5, 9}, plabel[N];
    float pweight[N];
    mix_targets(c, labels, N, plabel, pweight);
    for (int i = 0; i < N; i++) {
        assert_int_equal(plabel[i], labels[i ^ 1]);
        assert_true(fabs(c->own_weight + pweight[i] - 1.0) < 1e-7);
    }
}

static void test_cutmix_box(void **state)
{
    (void)state;
    int seen_partial = 0;
    for (int64_t step = 0; step < 200; step++) {
        MixChoice c = mix_choose(0.0, 1.0, 4, step, H, W);
        assert_int_equal(c.mode, MIX_CUTMIX);
        assert_true(0 <= c.x1 && c.x1 <= c.x2 && c.x2 <= W);
        assert_true(0 <= c.y1 && c.y1 <= c.y2 && c.y2 <= H);
        seen_partial += c.own_weight > 0.0 && c.own_weight < 1.0;
        check_cutmix(&c);
    }
    assert_true(seen_partial > 100);
}

static void test_cutmix_edges(void **state)
{
    (void)state;
    MixChoice c = {.mode = MIX_CUTMIX, .lam = 0.5};
    /* r = 0.5 sqrt(0.5) = 0.354: half widths int(0.354 * 5) = 1, int(0.354 * 7) = 2 */
    mix_cutmix_box(&c, 0, 0, H, W);
    assert_int_equal(c.x1, 0), assert_int_equal(c.x2, 1);
    assert_int_equal(c.y1, 0), assert_int_equal(c.y2, 2);
    assert_true(c.own_weight == 1.0 - 2.0 / 35.0);
    check_cutmix(&c);
    mix_cutmix_box(&c, W - 1, H - 1, H, W);
    assert_int_equal(c.x1, 3), assert_int_equal(c.x2, 5);
    assert_int_equal(c.y1, 4), assert_int_equal(c.y2, 7);
    assert_true(c.own_weight == 1.0 - 6.0 / 35.0);
    check_cutmix(&c);
    c.lam = 0.0; /* r = 0.5: the whole image from the centre */
    mix_cutmix_box(&c, 2, 3, H, W);
    assert_int_equal(c.x1, 0), assert_int_equal(c.x2, 4);
    assert_int_equal(c.y1, 0), assert_int_equal(c.y2, 6);
    check_cutmix(&c);
    c.lam = 1.0; /* an empty box: the own image */
    mix_cutmix_box(&c, 2, 3, H, W);
    assert_true(c.own_weight == 1.0);
    check_cutmix(&c);
}

static void test_choice_keys(void **state)
{
    (void)state;
    int differs = 0;
    for (int64_t step = 0; step < 50; step++) {
        MixChoice a = mix_choose(0.2, 1.0, 7, step, 32, 32);
        MixChoice b = mix_choose(0.2, 1.0, 7, step, 32, 32);
        assert_memory_equal(&a, &b, sizeof a);
        MixChoice other = mix_choose(0.2, 1.0, 8, step, 32, 32);
        differs += other.lam != a.lam;
    }
    assert_true(differs > 45);
    MixChoice none = mix_choose(0.0, 0.0, 7, 3, 32, 32);
    assert_int_equal(none.mode, MIX_NONE);
    assert_true(none.own_weight == 1.0);
}

static void test_choice_modes(void **state)
{
    (void)state;
    int mixup = 0, cutmix = 0;
    const int steps = 400;
    for (int64_t step = 0; step < steps; step++) {
        MixChoice c = mix_choose(0.2, 1.0, 11, step, 32, 32);
        mixup += c.mode == MIX_MIXUP;
        cutmix += c.mode == MIX_CUTMIX;
        assert_int_equal(mix_choose(0.2, 0.0, 11, step, 32, 32).mode, MIX_MIXUP);
        assert_int_equal(mix_choose(0.0, 1.0, 11, step, 32, 32).mode, MIX_CUTMIX);
    }
    assert_int_equal(mixup + cutmix, steps);
    /* Binomial(400, 1/2): sd 10; 140 is 6 sd away */
    if (mixup < 140 || cutmix < 140)
        fail_msg("mixup %d and cutmix %d of %d steps", mixup, cutmix, steps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_beta_moments),  cmocka_unit_test(test_mixup_values),
        cmocka_unit_test(test_cutmix_box),    cmocka_unit_test(test_cutmix_edges),
        cmocka_unit_test(test_choice_keys),   cmocka_unit_test(test_choice_modes),
    };
    return cmocka_run_group_tests_name("mix", tests, NULL, NULL);
}
