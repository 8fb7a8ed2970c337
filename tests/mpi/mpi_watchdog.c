/*
 * mpi_watchdog.c - the stall watchdog (watchdog.h) under mpirun (run at 2,
 * 3 and 4 ranks), with a stall callback in place of MPI_Abort:
 *   (a) ranks that keep reporting progress more often than the timeout
 *       never stall, though they call no MPI in between;
 *   (b) rank 0 stops the last rank with SIGSTOP and then waits in a phase
 *       of its own: its stall line names that phase and the stopped rank as
 *       the only one not heard from (the ranks in between keep their
 *       heartbeats going though they make no progress either).
 * (b) needs every rank on one node (it signals by PID); otherwise it is
 * skipped. Every assertion is on values shared by all ranks, so all ranks
 * pass or fail together.
 */
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../unit/common/testutil.h"
#include "dist.h"
#include "watchdog.h"

static DistInfo g_dist;
static volatile int g_stalls;
static char g_line[2048];

static void record_stall(const char *line)
{
    snprintf(g_line, sizeof g_line, "%s", line);
    g_stalls++;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static void test_progress_keeps_it_quiet(void **state)
{
    (void)state;
    g_stalls = 0;
    watchdog_start(1.0); /* fed every 0.1 s for 2.5 s */
    for (int i = 0; i < 25; i++) {
        watchdog_phase(WATCHDOG_COMPUTE, i + 1);
        sleep_s(0.1);
    }
    watchdog_stop();
    int stalls = g_stalls, total = 0;
    MPI_CHECK(MPI_Allreduce(&stalls, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
    assert_int_equal(total, 0);
}

static void test_stopped_rank_is_named(void **state)
{
    (void)state;
    if (g_dist.local_size != g_dist.size) {
        print_message("skipped: the ranks are on several nodes\n");
        return;
    }
    int victim = g_dist.size - 1, pid = (int)getpid(), victim_pid = 0;
    if (g_dist.rank == victim)
        victim_pid = pid;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &victim_pid, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    g_stalls = 0;
    g_line[0] = '\0';
    watchdog_start(3.0); /* ranks not heard from for 1.5 s are silent */
    MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
    int ok = 1;
    if (g_dist.rank == 0) {
        kill(victim_pid, SIGSTOP);
        watchdog_phase(WATCHDOG_ALLREDUCE, 7);
        for (int i = 0; i < 200 && !g_stalls; i++)
            sleep_s(0.1);
        kill(victim_pid, SIGCONT);
        char silent[64];
        snprintf(silent, sizeof silent, "s or more: rank %d;", victim);
        ok = g_stalls == 1 && strstr(g_line, "[rank 0] stall: no progress for ") &&
             strstr(g_line, "in step 7 (gradient allreduce); not heard from for ") &&
             strstr(g_line, silent);
        print_message("rank 0's stall line: %s\n", g_line);
    }
    MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
    watchdog_stop();
    MPI_CHECK(MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD));
    assert_true(ok);
}

int main(int argc, char **argv)
{
    dist_init(&argc, &argv, &g_dist);
    alarm(120); /* a hang becomes a failure, not a stuck test run */
    watchdog_on_stall(record_stall);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_progress_keeps_it_quiet),
        cmocka_unit_test(test_stopped_rank_is_named),
    };
    int failed = testutil_mpi_run_group("mpi_watchdog", tests);
    dist_finalize();
    return failed;
}
