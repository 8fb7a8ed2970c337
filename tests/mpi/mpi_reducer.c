/*
 * mpi_reducer.c - the bucketed, overlapped gradient allreduce (reducer.h)
 * under mpirun (run at 2, 3 and 4 ranks): after reducer_finish the flat
 * gradient buffer must equal a plain MPI_Allreduce sum of every rank's
 * gradients and the BN state their average, bit for bit, for registries
 * with odd tensor sizes, a blocked (padded) layout, and bucket sizes from
 * one tensor per bucket to one bucket for everything, with limits that
 * fall just below, on and just above tensor sizes. Backward is imitated:
 * tensors are written from the end of the buffer to the start and
 * reducer_grads_ready is told intermediate offsets (block starts, offsets
 * inside a tensor, repeats), over several consecutive steps. Values not
 * yet written hold a poison value, so a bucket started before its tensors
 * were final shows up as a wrong sum.
 *
 * Exactness: every value is a small integer stored in a float, so each sum
 * is exact whatever order MPI adds in, and the reducer's result must match
 * MPI_Allreduce exactly; the BN average is that exact sum times 1.0f / W,
 * as the reducer computes it.
 *
 * Every rank runs the same CMocka group; every assertion is on numbers
 * already reduced over all ranks, so all ranks pass or fail together and
 * no rank leaves a collective early. The process exits non-zero on every
 * rank when any rank failed.
 */
#include <mpi.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../unit/common/testutil.h"
#include "dist.h"
#include "dnn.h"
#include "error.h"
#include "params.h"
#include "reducer.h"

#define STEPS 4
#define POISON 1.0e6f /* integer valued, far from any real value */

static int g_rank, g_size;

/* Rank r's gradient (or state) element i at a step: an integer in
 * [-512, 511], different per rank, step and element. */
static float rank_value(int rank, int step, int salt, size_t i)
{
    uint32_t h = (uint32_t)i * 2654435761u ^ (uint32_t)(rank + 1) * 40503u ^
                 (uint32_t)(step + 1) * 97u ^ (uint32_t)salt * 7919u;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    return (float)((int)(h % 1024u) - 512);
}

/* Number of ranks where `bad` is non-zero. */
static int ranks_failing(int bad)
{
    int mine = bad != 0, all = 0;
    MPI_CHECK(MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
    return all;
}

/* Counts elements that differ in their bits; reports the first. */
static size_t count_mismatch(const float *got, const float *want, size_t n, const char *what,
                             int step)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0) {
            if (!bad)
                print_error("[rank %d] step %d: %s[%zu] = %.9g, expected %.9g\n", g_rank, step,
                            what, i, got[i], want[i]);
            bad++;
        }
    if (bad)
        print_error("[rank %d] step %d: %s: %zu of %zu elements wrong\n", g_rank, step, what, bad,
                    n);
    return bad;
}

static void sleep_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

/* End of tensor i's region in the flat buffers: the next tensor's start,
 * so alignment gaps are written (and reduced) too. */
static size_t region_end(const Params *p, int i)
{
    return i + 1 < p->count ? p->info[i + 1].offset : p->total;
}

/* One imitated backward: tensors written last to first; the reducer is
 * told about every `every`-th tensor start, plus an offset inside a tensor
 * and a repeat, as a network's blocks would. */
static void fake_backward(Params *p, Reducer *r, int step, int every, long pause_us)
{
    reducer_grads_ready(r, p->total); /* nothing is final yet */
    for (int i = p->count - 1; i >= 0; i--) {
        for (size_t j = p->info[i].offset; j < region_end(p, i); j++)
            p->grad[j] = rank_value(g_rank, step, 1, j);
        if (pause_us)
            sleep_us(pause_us);
        if (i % every == 0) {
            reducer_grads_ready(r, p->info[i].offset + p->info[i].span / 2);
            reducer_grads_ready(r, p->info[i].offset);
            reducer_grads_ready(r, p->info[i].offset); /* a repeat changes nothing */
        }
    }
}

/* Runs STEPS steps through a reducer and compares every step with
 * MPI_Allreduce; returns after all ranks agreed on the outcome. */
static void check_reducer(Params *p, double bucket_mb, int every, long pause_us, const char *name)
{
    Reducer *r = reducer_create(p, bucket_mb);
    int buckets = reducer_bucket_count(r);
    size_t n = p->total, ns = p->state_total;
    float *want = xmalloc(n * sizeof *want), *want_state = xmalloc((ns ? ns : 1) * sizeof(float));
    float *value = xmalloc(n * sizeof *value), *momentum = xmalloc(n * sizeof *momentum);
    for (size_t j = 0; j < n; j++) {
        p->value[j] = value[j] = rank_value(g_rank, 99, 3, j);
        p->momentum[j] = momentum[j] = rank_value(g_rank, 99, 4, j);
    }
    size_t bad = 0;
    for (int step = 0; step < STEPS; step++) {
        for (size_t j = 0; j < n; j++) {
            p->grad[j] = POISON;
            want[j] = rank_value(g_rank, step, 1, j);
        }
        for (size_t j = 0; j < ns; j++)
            p->state[j] = want_state[j] = rank_value(g_rank, step, 2, j);
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, want, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, want_state, (int)ns, MPI_FLOAT, MPI_SUM,
                                MPI_COMM_WORLD));
        float inv = 1.0f / (float)g_size;
        for (size_t j = 0; j < ns; j++)
            want_state[j] *= inv;

        reducer_begin_step(r);
        fake_backward(p, r, step, every, step % 2 ? pause_us : 0);
        ReducerTimes t = reducer_finish(r);

        bad += count_mismatch(p->grad, want, n, "grad", step);
        bad += count_mismatch(p->state, want_state, ns, "BN state", step);
        if (!(t.exposed_s >= 0.0 && t.comm_s >= 0.0 && isfinite(t.comm_s))) {
            print_error("[rank %d] step %d: times exposed %g comm %g\n", g_rank, step,
                        t.exposed_s, t.comm_s);
            bad++;
        }
    }
    bad += count_mismatch(p->value, value, n, "value (must be untouched)", STEPS);
    bad += count_mismatch(p->momentum, momentum, n, "momentum (must be untouched)", STEPS);
    reducer_free(r);
    free(want);
    free(want_state);
    free(value);
    free(momentum);
    int failing = ranks_failing(bad != 0);
    if (g_rank == 0)
        print_message("%s: bucket_mb %g -> %d buckets over %d tensors (%zu floats)\n", name,
                      bucket_mb, buckets, p->count, n);
    if (failing)
        fail_msg("%s, bucket_mb %g: %d of %d ranks got a result that differs from "
                 "MPI_Allreduce", name, bucket_mb, failing, g_size);
}

/* Odd sizes around the 262-float limit of --bucket-mb 0.001, a tensor far
 * above it, single elements, and a blocked conv weight whose padding
 * (20 -> 32 channels) is part of its span. */
static void make_odd(Params *p)
{
    static const int64_t sizes[] = {1, 7, 300, 13, 1021, 2, 263, 262, 261, 5000, 3, 97, 259, 1};
    dnn_init();
    params_init(p);
    char name[64];
    int k = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        snprintf(name, sizeof name, "layer1.%zu.bn1.weight", i);
        testutil_param_plain(p, name, PARAM_BN_WEIGHT, 1, &sizes[i]);
        if (i == 5) {
            int64_t d4[4] = {20, 24, 3, 3};
            dnnl_dims_t dd = {20, 24, 3, 3};
            dnnl_memory_desc_t md = dnn_md_make(4, dd, dnnl_OIhw16i16o);
            params_add(p, "layer1.0.conv1.weight", PARAM_CONV_WEIGHT, 4, d4, &md);
        }
        if (i % 4 == 0) {
            snprintf(name, sizeof name, "layer1.%zu.bn1", i);
            params_bn_state_add(p, name, (size_t)(3 + k++ * 5));
        }
    }
    int64_t fcw[2] = {10, 17}, fcb[1] = {10};
    testutil_param_plain(p, "fc.weight", PARAM_FC_WEIGHT, 2, fcw);
    testutil_param_plain(p, "fc.bias", PARAM_FC_BIAS, 1, fcb);
    params_allocate(p);
}

/* The largest span in floats. */
static size_t largest_region(const Params *p)
{
    size_t most = 0;
    for (int i = 0; i < p->count; i++) {
        size_t len = region_end(p, i) - p->info[i].offset;
        most = len > most ? len : most;
    }
    return most;
}

static void test_one_tensor_per_bucket(void **state)
{
    (void)state;
    Params p;
    make_odd(&p);
    Reducer *r = reducer_create(&p, 1e-9); /* limit below one float */
    assert_int_equal(reducer_bucket_count(r), p.count);
    reducer_free(r);
    check_reducer(&p, 1e-9, 1, 300, "one tensor per bucket");
    params_free(&p);
}

static void test_one_bucket(void **state)
{
    (void)state;
    Params p;
    make_odd(&p);
    Reducer *r = reducer_create(&p, 25.0);
    assert_int_equal(reducer_bucket_count(r), 1);
    reducer_free(r);
    check_reducer(&p, 25.0, 3, 0, "one bucket");
    params_free(&p);
}

/* Limits of 262, 523 and 1048 floats cut inside the run of odd sizes:
 * every bucket but the last two to be ready (the small tail holding the
 * first tensors, and the one before it) holds at least the limit, and none
 * more than the limit plus one tensor. */
static void test_many_buckets(void **state)
{
    (void)state;
    const double mbs[] = {0.001, 0.002, 0.004};
    for (size_t k = 0; k < sizeof mbs / sizeof *mbs; k++) {
        Params p;
        make_odd(&p);
        size_t limit = (size_t)(mbs[k] * 1024 * 1024 / sizeof(float));
        Reducer *r = reducer_create(&p, mbs[k]);
        int buckets = reducer_bucket_count(r);
        assert_true(buckets > 1 && buckets < p.count);
        assert_true((size_t)buckets <= p.total / limit + 2);
        assert_true((size_t)buckets >= p.total / (limit + largest_region(&p)));
        size_t tail = reducer_bucket_floats(r, buckets - 1);
        assert_true(tail <= limit / 25 || tail == p.info[1].offset);
        reducer_free(r);
        check_reducer(&p, mbs[k], 2, k == 0 ? 200 : 0, "odd sizes");
        params_free(&p);
    }
}

/* The shared tiny registry (torchvision names, blocked layer1 conv). */
static void test_tiny_registry(void **state)
{
    (void)state;
    Params p;
    testutil_params_tiny(&p, dnnl_OIhw16i16o, 5);
    check_reducer(&p, 0.0005, 1, 100, "tiny registry");
    params_free(&p);
    testutil_params_tiny(&p, dnnl_oihw, 6);
    check_reducer(&p, 0.001, 2, 0, "tiny registry, plain");
    params_free(&p);
}

/* Backward that hands over nothing until the end: reducer_finish must
 * still start and complete every bucket. */
static void test_no_early_ready(void **state)
{
    (void)state;
    Params p;
    make_odd(&p);
    check_reducer(&p, 0.001, 1 << 30, 0, "ready only at finish");
    params_free(&p);
}

int main(int argc, char **argv)
{
    DistInfo d;
    dist_init(&argc, &argv, &d);
    g_rank = d.rank;
    g_size = d.size;
    alarm(120); /* a hang becomes a failure, not a stuck test run */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_tensor_per_bucket),
        cmocka_unit_test(test_one_bucket),
        cmocka_unit_test(test_many_buckets),
        cmocka_unit_test(test_tiny_registry),
        cmocka_unit_test(test_no_early_ready),
    };
    int failed = testutil_mpi_run_group("mpi_reducer", tests);
    dnn_free();
    dist_finalize();
    return failed;
}
