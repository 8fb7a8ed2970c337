/*
 * test_rng.c - the deterministic generator: xoshiro256** matches its
 * published reference output, streams are reproducible and depend on every
 * key, uniform values lie in [0, 1), rng_below stays in range and is
 * unbiased (including for an n where plain modulo would be badly biased),
 * and normal values have mean 0 and variance 1. Statistical checks use fixed
 * seeds and bounds of 5 standard errors or p = 1e-4, so they are
 * deterministic and fail only for a real defect.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/testutil.h"
#include "rng.h"

/* xoshiro256** from state {1, 2, 3, 4} (Blackman and Vigna's reference
 * implementation, prng.di.unimi.it). */
static void test_rng_reference_output(void **state)
{
    (void)state;
    Rng r = {{1, 2, 3, 4}};
    const uint64_t want[4] = {11520ULL, 0ULL, 1509978240ULL, 1215971899390074240ULL};
    for (int i = 0; i < 4; i++)
        assert_true(rng_next(&r) == want[i]);
}

static void test_rng_deterministic(void **state)
{
    (void)state;
    Rng a, b;
    rng_seed(&a, 42, 7, 3);
    rng_seed(&b, 42, 7, 3);
    for (int i = 0; i < 1000; i++)
        assert_true(rng_next(&a) == rng_next(&b));
    assert_true(rng_hash(1, 2, 3) == rng_hash(1, 2, 3));

    /* every key, and its position, changes the stream */
    const uint64_t keys[][3] = {{42, 7, 3}, {43, 7, 3}, {42, 8, 3}, {42, 7, 4},
                                {7, 42, 3}, {42, 3, 7}, {0, 0, 0}, {0, 0, 1}};
    size_t nk = sizeof keys / sizeof keys[0];
    uint64_t first[8][4];
    for (size_t k = 0; k < nk; k++) {
        Rng r;
        rng_seed(&r, keys[k][0], keys[k][1], keys[k][2]);
        for (int i = 0; i < 4; i++)
            first[k][i] = rng_next(&r);
        assert_false(r.s[0] == 0 && r.s[1] == 0 && r.s[2] == 0 && r.s[3] == 0);
    }
    for (size_t i = 0; i < nk; i++)
        for (size_t j = i + 1; j < nk; j++)
            assert_true(memcmp(first[i], first[j], sizeof first[i]) != 0);
    assert_true(rng_hash(1, 2, 3) != rng_hash(1, 3, 2));
    assert_true(rng_hash(0, 0, 0) != rng_hash(0, 0, 1));
}

/* rng_hash mixes well: flipping one input bit flips about half the output
 * bits (mean 32 of 64 over 64 x 3 flips, each ~ Binomial(64, 1/2)). */
static void test_rng_hash_avalanche(void **state)
{
    (void)state;
    uint64_t base = rng_hash(123, 456, 789);
    double flips = 0.0;
    int trials = 0;
    for (int word = 0; word < 3; word++)
        for (int bit = 0; bit < 64; bit++) {
            uint64_t k[3] = {123, 456, 789};
            k[word] ^= 1ULL << bit;
            flips += __builtin_popcountll(base ^ rng_hash(k[0], k[1], k[2]));
            trials++;
        }
    double mean = flips / trials; /* standard error 4 / sqrt(192) = 0.29 */
    assert_true(fabs(mean - 32.0) < 5 * 4.0 / sqrt((double)trials));
}

static void test_rng_uniform(void **state)
{
    (void)state;
    Rng r;
    rng_seed(&r, 1, 2, 3);
    const int n = 200000;
    double sum = 0.0, sq = 0.0;
    int bins[10] = {0};
    for (int i = 0; i < n; i++) {
        double u = rng_uniform(&r);
        assert_true(u >= 0.0 && u < 1.0);
        sum += u;
        sq += u * u;
        bins[(int)(u * 10)]++;
    }
    double mean = sum / n, var = sq / n - mean * mean;
    assert_true(fabs(mean - 0.5) < 5 * sqrt(1.0 / 12 / n));
    assert_true(fabs(var - 1.0 / 12) < 5 * sqrt(1.0 / 180 / n));
    double chi2 = 0.0, e = n / 10.0;
    for (int b = 0; b < 10; b++)
        chi2 += (bins[b] - e) * (bins[b] - e) / e;
    assert_true(chi2 < 33.72); /* chi-square, 9 dof, p = 1e-4 */
}

static void test_rng_below(void **state)
{
    (void)state;
    Rng r;
    rng_seed(&r, 5, 6, 7);
    /* n = 1 always gives 0 */
    for (int i = 0; i < 100; i++)
        assert_true(rng_below(&r, 1) == 0);
    /* in range for small, odd and huge n */
    const uint64_t ns[] = {2, 3, 7, 10, 1000, 1ULL << 32, (1ULL << 63) + 1, UINT64_MAX};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
        for (int i = 0; i < 2000; i++)
            assert_true(rng_below(&r, ns[k]) < ns[k]);

    /* uniform over 7 values: chi-square, 6 dof, p = 1e-4 */
    const int n = 140000;
    int bins[7] = {0};
    for (int i = 0; i < n; i++)
        bins[rng_below(&r, 7)]++;
    double chi2 = 0.0, e = n / 7.0;
    for (int b = 0; b < 7; b++)
        chi2 += (bins[b] - e) * (bins[b] - e) / e;
    assert_true(chi2 < 27.86);

    /* n = 3 * 2^62: x % n on a raw 64-bit value would land below 2^62 half
     * of the time instead of a third */
    const uint64_t big = 3ULL << 62;
    const int m = 60000;
    int low = 0;
    for (int i = 0; i < m; i++)
        low += rng_below(&r, big) < (1ULL << 62);
    double frac = (double)low / m, se = sqrt(2.0 / 9.0 / m);
    assert_true(fabs(frac - 1.0 / 3.0) < 5 * se);
}

static void test_rng_normal(void **state)
{
    (void)state;
    Rng r;
    rng_seed(&r, 11, 12, 13);
    const int n = 200000;
    double sum = 0.0, sq = 0.0, cube = 0.0, quad = 0.0;
    int within1 = 0;
    for (int i = 0; i < n; i++) {
        double z = rng_normal(&r);
        assert_true(isfinite(z));
        sum += z;
        sq += z * z;
        cube += z * z * z;
        quad += z * z * z * z;
        within1 += fabs(z) < 1.0;
    }
    double mean = sum / n, var = sq / n - mean * mean;
    assert_true(fabs(mean) < 5 / sqrt((double)n));
    assert_true(fabs(var - 1.0) < 5 * sqrt(2.0 / n));
    assert_true(fabs(cube / n) < 5 * sqrt(15.0 / n));        /* E z^3 = 0, var 15 */
    assert_true(fabs(quad / n - 3.0) < 5 * sqrt(96.0 / n)); /* E z^4 = 3, var 96 */
    double p1 = 0.6826894921370859; /* P(|z| < 1) */
    assert_true(fabs((double)within1 / n - p1) < 5 * sqrt(p1 * (1 - p1) / n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_reference_output),
        cmocka_unit_test(test_rng_deterministic),
        cmocka_unit_test(test_rng_hash_avalanche),
        cmocka_unit_test(test_rng_uniform),
        cmocka_unit_test(test_rng_below),
        cmocka_unit_test(test_rng_normal),
    };
    return cmocka_run_group_tests_name("rng", tests, NULL, NULL);
}
