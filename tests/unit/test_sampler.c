/*
 * test_sampler.c - the data order of docs/design.md invariant 2: ranks take
 * disjoint, equal shares of each global batch; an epoch covers the images
 * (drop-last: each at most once; padded: each at least once, the padding
 * wrapping to the start of the permutation); the global order is the same
 * for any number of ranks and any resume step; it is a function of
 * (seed, epoch) and changes between epochs; evaluation ranges cover every
 * image exactly once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/testutil.h"
#include "sampler.h"

/* The global order of `steps` steps from step `first` as W ranks see it:
 * out (steps * B), each step the concatenation of the ranks' shares. */
static void global_order(int64_t n, int64_t b, int world, uint64_t seed, int drop_last,
                         int64_t first, int64_t steps, int64_t *out)
{
    Sampler s[8];
    for (int r = 0; r < world; r++)
        sampler_init(&s[r], n, b, r, world, seed, drop_last);
    int64_t *local = malloc((size_t)b * sizeof *local);
    for (int64_t k = 0; k < steps; k++) {
        int64_t *dst = out + k * b;
        for (int r = 0; r < world; r++) {
            sampler_step_indices(&s[r], first + k, local);
            int lb = sampler_local_batch(&s[r]);
            memcpy(dst, local, (size_t)lb * sizeof *local);
            dst += lb;
        }
        assert_int_equal(dst - out, (k + 1) * b); /* the shares fill the batch */
    }
    free(local);
    for (int r = 0; r < world; r++)
        sampler_free(&s[r]);
}

/* Concatenating the ranks' shares gives the one-rank order for W = 1..4,
 * whether or not W divides B, in both modes. */
static void test_independent_of_world(void **state)
{
    (void)state;
    const int64_t ns[] = {100, 37, 8};
    const int64_t bs[] = {8, 12, 5};
    for (size_t i = 0; i < 3; i++) {
        for (int drop = 0; drop <= 1; drop++) {
            int64_t n = ns[i], b = bs[i];
            int64_t steps = 3 * sampler_steps_for(n, b, drop) + 1; /* > 3 epochs */
            int64_t *want = malloc((size_t)(steps * b) * sizeof *want);
            int64_t *got = malloc((size_t)(steps * b) * sizeof *got);
            global_order(n, b, 1, 7, drop, 0, steps, want);
            for (int w = 2; w <= 4; w++) {
                global_order(n, b, w, 7, drop, 0, steps, got);
                assert_memory_equal(got, want, (size_t)(steps * b) * sizeof *got);
            }
            free(got);
            free(want);
        }
    }
}

/* Each rank's share is the contiguous [r*B/W, (r+1)*B/W); with W | B all
 * shares are B/W; within a batch no image is taken twice. */
static void test_shares_disjoint_and_equal(void **state)
{
    (void)state;
    const int64_t n = 1000, b = 24;
    for (int w = 1; w <= 8; w++) {
        int64_t total = 0;
        Sampler s[8];
        int64_t idx[8][24];
        for (int r = 0; r < w; r++) {
            sampler_init(&s[r], n, b, r, w, 3, 1);
            assert_int_equal(s[r].local_first, (int64_t)r * b / w);
            if (b % w == 0)
                assert_int_equal(sampler_local_batch(&s[r]), b / w);
            total += sampler_local_batch(&s[r]);
            sampler_step_indices(&s[r], 5, idx[r]);
        }
        assert_int_equal(total, b);
        char *seen = calloc((size_t)n, 1);
        for (int r = 0; r < w; r++) {
            for (int k = 0; k < sampler_local_batch(&s[r]); k++) {
                assert_in_range(idx[r][k], 0, n - 1);
                assert_int_equal(seen[idx[r][k]], 0);
                seen[idx[r][k]] = 1;
            }
            sampler_free(&s[r]);
        }
        free(seen);
    }
}

static void count_epoch(int64_t n, int64_t b, int drop, int64_t epoch, int *times)
{
    int64_t steps = sampler_steps_for(n, b, drop);
    int64_t *order = malloc((size_t)(steps * b) * sizeof *order);
    global_order(n, b, 3, 11, drop, epoch * steps, steps, order);
    memset(times, 0, (size_t)n * sizeof *times);
    for (int64_t i = 0; i < steps * b; i++)
        times[order[i]]++;
    free(order);
}

/* Drop-last: floor(N/B) steps, each image at most once, N % B left out,
 * and a different set each epoch. Padded: ceil(N/B) steps, every image at
 * least once, exactly the first (S*B - N) images of the permutation twice. */
static void test_epoch_complete(void **state)
{
    (void)state;
    const int64_t n = 103, b = 12;
    int times[103], times2[103];
    assert_int_equal(sampler_steps_for(n, b, 1), 8);
    assert_int_equal(sampler_steps_for(n, b, 0), 9);
    assert_int_equal(sampler_steps_for(96, 12, 0), 8);

    count_epoch(n, b, 1, 0, times);
    int once = 0;
    for (int64_t i = 0; i < n; i++) {
        assert_in_range(times[i], 0, 1);
        once += times[i];
    }
    assert_int_equal(once, 96);
    count_epoch(n, b, 1, 1, times2);
    assert_memory_not_equal(times, times2, sizeof times); /* other images dropped */

    count_epoch(n, b, 0, 2, times);
    int twice = 0;
    for (int64_t i = 0; i < n; i++) {
        assert_in_range(times[i], 1, 2);
        twice += times[i] == 2;
    }
    assert_int_equal(twice, 9 * 12 - 103);
    int64_t perm[103];
    sampler_permutation(11, 2, n, perm);
    for (int i = 0; i < twice; i++)
        assert_int_equal(times[perm[i]], 2); /* the wrap takes the first ones */

    /* a batch larger than the data wraps more than once */
    count_epoch(5, 12, 0, 0, times);
    for (int i = 0; i < 5; i++)
        assert_in_range(times[i], 2, 3);
}

/* The same (seed, epoch) gives the same permutation, another seed or epoch
 * another one; each is a permutation. */
static void test_deterministic(void **state)
{
    (void)state;
    enum { N = 500 };
    int64_t a[N], b[N], c[N], d[N];
    sampler_permutation(42, 3, N, a);
    sampler_permutation(42, 3, N, b);
    sampler_permutation(43, 3, N, c);
    sampler_permutation(42, 4, N, d);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    assert_memory_not_equal(a, d, sizeof a);
    char seen[N] = {0};
    for (int i = 0; i < N; i++) {
        assert_in_range(a[i], 0, N - 1);
        assert_int_equal(seen[a[i]], 0);
        seen[a[i]] = 1;
    }
    /* a sampler asked for steps out of order (resume, epoch changes) gives
     * what one walking through them gives */
    Sampler s1, s2;
    sampler_init(&s1, 100, 10, 1, 2, 9, 1);
    sampler_init(&s2, 100, 10, 1, 2, 9, 1);
    int64_t x[5], y[5];
    const int64_t order[] = {37, 3, 12, 37, 0, 29};
    for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
        for (int64_t k = 0; k <= order[i]; k++)
            sampler_step_indices(&s1, k, x);
        sampler_step_indices(&s2, order[i], y);
        assert_memory_equal(x, y, sizeof x);
    }
    assert_int_equal(sampler_epoch(&s1, 29), 2);
    assert_int_equal(sampler_position(&s1, 29), 9 * 10 + 5);
    sampler_free(&s1);
    sampler_free(&s2);
}

/* Each image lands first in a permutation about equally often. */
static void test_uniform(void **state)
{
    (void)state;
    enum { N = 6, EPOCHS = 6000 };
    int first[N] = {0};
    int64_t p[N];
    for (int e = 0; e < EPOCHS; e++) {
        sampler_permutation(5, e, N, p);
        first[p[0]]++;
    }
    for (int i = 0; i < N; i++) /* mean 1000, sd ~ 29 */
        assert_in_range(first[i], 850, 1150);
}

/* Every image once across ranks, contiguous, sizes differing by at most one. */
static void test_eval_range(void **state)
{
    (void)state;
    int64_t first, count;
    sampler_eval_range(10, 0, 3, &first, &count);
    assert_true(first == 0 && count == 3);
    sampler_eval_range(10, 1, 3, &first, &count);
    assert_true(first == 3 && count == 3);
    sampler_eval_range(10, 2, 3, &first, &count);
    assert_true(first == 6 && count == 4);
    for (int64_t v = 0; v <= 23; v++) {
        for (int w = 1; w <= 7; w++) {
            int64_t next = 0, lo = v, hi = 0;
            for (int r = 0; r < w; r++) {
                sampler_eval_range(v, r, w, &first, &count);
                assert_int_equal(first, next);
                next = first + count;
                lo = count < lo ? count : lo;
                hi = count > hi ? count : hi;
            }
            assert_int_equal(next, v);
            assert_true(hi - lo <= 1);
        }
    }
}

/* Combinations that cannot work are worded for the user. */
static void test_check(void **state)
{
    (void)state;
    Status st = {0};
    assert_int_equal(sampler_check(100, 32, 4, 1, &st), 0);
    assert_int_equal(sampler_check(10, 32, 4, 0, &st), 0);
    assert_int_equal(sampler_check(10, 32, 4, 1, &st), 2);
    assert_non_null(strstr(st.msg, "--drop-last"));
    memset(&st, 0, sizeof st);
    assert_int_equal(sampler_check(100, 3, 4, 1, &st), 2);
    assert_non_null(strstr(st.msg, "smaller than the 4 ranks"));
    memset(&st, 0, sizeof st);
    assert_int_equal(sampler_check(0, 3, 1, 0, &st), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_independent_of_world),
        cmocka_unit_test(test_shares_disjoint_and_equal),
        cmocka_unit_test(test_epoch_complete),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_uniform),
        cmocka_unit_test(test_eval_range),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests_name("sampler", tests, NULL, NULL);
}
