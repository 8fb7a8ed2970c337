/*
 * test_watchdog.c - the pure parts of the stall watchdog (watchdog.h): how
 * a phase reads in the stall line, and which ranks count as not heard
 * from. The thread, the heartbeats and a stopped rank are tested under
 * mpirun in tests/mpi/mpi_watchdog.c and end to end in
 * tests/e2e/dist_stall.sh.
 */
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "watchdog.h"

static void test_describe_phases(void **state)
{
    (void)state;
    char out[128];
    watchdog_describe(out, sizeof out, WATCHDOG_ALLREDUCE, 1234);
    assert_string_equal(out, "step 1234 (gradient allreduce)");
    watchdog_describe(out, sizeof out, WATCHDOG_DATA, 1);
    assert_string_equal(out, "step 1 (data read)");
    watchdog_describe(out, sizeof out, WATCHDOG_VALIDATION, 40);
    assert_string_equal(out, "validation after step 40");
    watchdog_describe(out, sizeof out, WATCHDOG_CHECKPOINT, 40);
    assert_string_equal(out, "checkpoint after step 40");
    watchdog_describe(out, sizeof out, WATCHDOG_STARTUP, 0);
    assert_string_equal(out, "start-up");
    watchdog_describe(out, sizeof out, WATCHDOG_NPHASES, 3);
    assert_string_equal(out, "unknown phase");
    watchdog_describe(out, 8, WATCHDOG_ALLREDUCE, 1234); /* truncated, terminated */
    assert_string_equal(out, "step 12");
}

static void test_silent_ranks(void **state)
{
    (void)state;
    char out[64];
    /* now 100 s, stale after 10 s: ranks 2 and 4 last heard at 80 and 89.9 s */
    const double heard[5] = {100, 95, 80, 90, 89.9};
    assert_int_equal(watchdog_silent_ranks(out, sizeof out, heard, 5, 0, 100, 10), 2);
    assert_string_equal(out, "2,4");
    /* a rank never lists itself, however old its own entry */
    assert_int_equal(watchdog_silent_ranks(out, sizeof out, heard, 5, 2, 100, 10), 1);
    assert_string_equal(out, "4");
    /* exactly at the limit is still heard from */
    assert_int_equal(watchdog_silent_ranks(out, sizeof out, heard, 4, 0, 100, 10), 1);
    assert_string_equal(out, "2");
    assert_int_equal(watchdog_silent_ranks(out, sizeof out, heard, 2, 0, 100, 10), 0);
    assert_string_equal(out, "");
    /* a short buffer still counts every silent rank */
    assert_int_equal(watchdog_silent_ranks(out, 2, heard, 5, 0, 100, 10), 2);
    assert_string_equal(out, "2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_describe_phases),
        cmocka_unit_test(test_silent_ranks),
    };
    return cmocka_run_group_tests_name("watchdog", tests, NULL, NULL);
}
