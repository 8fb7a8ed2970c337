/*
 * test_prep_stats.c - prep_stats: mean/std from histograms equal a direct
 * double computation, in pixel/255 units, per channel; adding in pieces
 * equals adding at once (so the split over ranks cannot matter).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prep_stats.h"

static void direct(const uint8_t *px, size_t npix, int c, double *mean, double *std)
{
    for (int ch = 0; ch < c; ch++) {
        long double s = 0, s2 = 0;
        for (size_t i = 0; i < npix; i++) {
            long double v = px[i * c + ch] / 255.0L;
            s += v;
            s2 += v * v;
        }
        long double m = s / npix;
        mean[ch] = (double)m;
        std[ch] = (double)sqrtl(s2 / npix - m * m);
    }
}

static void test_matches_direct(void **state)
{
    (void)state;
    const size_t npix = 100003;
    uint8_t *px = malloc(npix * 3);
    uint32_t x = 12345;
    for (size_t i = 0; i < npix * 3; i++) {
        x = x * 1664525u + 1013904223u;
        px[i] = (uint8_t)((x >> 24) % (i % 3 == 0 ? 256 : i % 3 == 1 ? 100 : 7));
    }
    PixelStats st;
    prep_stats_init(&st, 3);
    prep_stats_add(&st, px, 40000); /* in two pieces */
    prep_stats_add(&st, px + 40000 * 3, npix - 40000);
    assert_int_equal(prep_stats_count(&st), npix);
    double mean[3], std[3], m[3], s[3];
    prep_stats_mean_std(&st, mean, std);
    direct(px, npix, 3, m, s);
    for (int c = 0; c < 3; c++) {
        assert_true(fabs(mean[c] - m[c]) < 1e-12);
        assert_true(fabs(std[c] - s[c]) < 1e-9);
    }
    free(px);
}

static void test_constant_and_empty(void **state)
{
    (void)state;
    uint8_t px[10];
    memset(px, 51, sizeof px);
    PixelStats st;
    prep_stats_init(&st, 1);
    double mean, std;
    prep_stats_mean_std(&st, &mean, &std);
    assert_true(mean == 0.0 && std == 0.0);
    prep_stats_add(&st, px, 10);
    prep_stats_mean_std(&st, &mean, &std);
    assert_true(fabs(mean - 0.2) < 1e-15); /* 51 / 255 */
    assert_true(std == 0.0);               /* exact: no cancellation error */
}

static void test_extremes(void **state)
{
    (void)state;
    uint8_t px[4] = {0, 255, 0, 255};
    PixelStats st;
    prep_stats_init(&st, 1);
    prep_stats_add(&st, px, 4);
    double mean, std;
    prep_stats_mean_std(&st, &mean, &std);
    assert_true(fabs(mean - 0.5) < 1e-15);
    assert_true(fabs(std - 0.5) < 1e-15);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_direct),
        cmocka_unit_test(test_constant_and_empty),
        cmocka_unit_test(test_extremes),
    };
    return cmocka_run_group_tests_name("prep_stats", tests, NULL, NULL);
}
