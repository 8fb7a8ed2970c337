/*
 * watchdog.h - the stall watchdog (--stall-timeout): one thread per rank
 * that ends the whole job when this rank has made no progress for the
 * timeout, instead of letting it wait forever for a peer that is stopped,
 * frozen or stuck in I/O.
 *
 * The step loop tells the watchdog where it is (a phase and a step) at each
 * phase boundary; any such call, and watchdog_progress(), counts as
 * progress. The watchdog threads also send each other a heartbeat once a
 * tick on a communicator of their own (every rank to rank 0, rank 0 to
 * every rank), which needs no help from the main threads, so a rank that
 * is stopped or frozen as a whole is the one that is "not heard from".
 *
 * On a stall the rank prints one line, e.g.
 *   [rank 0] stall: no progress for 600 s in step 1234 (gradient allreduce);
 *   not heard from for 300 s or more: rank 1; ending the job (exit 1)
 * and calls MPI_Abort(MPI_COMM_WORLD, 1). Rank 0 knows every rank's
 * heartbeat; the other ranks know rank 0's and wait a little longer before
 * aborting, so that rank 0's line, the complete one, comes first.
 *
 * Heartbeats need MPI_THREAD_MULTIPLE (the watchdog thread calls MPI while
 * the others do); without it the watchdog still ends a stalled job but
 * cannot say which ranks were silent.
 */
#ifndef RESNET_WATCHDOG_H
#define RESNET_WATCHDOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    WATCHDOG_STARTUP,    /* options, dataset, network, resume */
    WATCHDOG_DATA,       /* step s: waiting for the training batch */
    WATCHDOG_COMPUTE,    /* step s: forward and backward */
    WATCHDOG_ALLREDUCE,  /* step s: waiting for the gradient buckets */
    WATCHDOG_STEP_SUMS,  /* step s: the loss, signal and checkpoint sums */
    WATCHDOG_VALIDATION, /* after step s */
    WATCHDOG_CHECKPOINT, /* after step s */
    WATCHDOG_CHECKSUM,   /* after step s: the parameter checksum */
    WATCHDOG_SHUTDOWN,   /* the exit code, freeing, MPI_Finalize */
    WATCHDOG_NPHASES
} WatchdogPhase;

/* Called instead of MPI_Abort when set (tests): receives the stall line,
 * after which the watchdog reports nothing more. */
typedef void (*WatchdogStallFn)(const char *line);

/* Collective over MPI_COMM_WORLD (duplicates it for the heartbeats).
 * timeout_s 0 turns the watchdog off: nothing is started and every other
 * call does nothing. The thread stops by itself at MPI_Finalize. */
void watchdog_start(double timeout_s);
/* Local and cheap: this rank has entered phase at step. */
void watchdog_phase(WatchdogPhase phase, int64_t step);
/* Local and cheap: the current phase moved forward (e.g. one more
 * validation batch), so its clock starts again. */
void watchdog_progress(void);
/* Local: stops the thread; the watchdog can be started again. */
void watchdog_stop(void);
void watchdog_on_stall(WatchdogStallFn fn);

/* "step 1234 (gradient allreduce)", "validation after step 40", ... */
void watchdog_describe(char *out, size_t len, WatchdogPhase phase, int64_t step);
/* "1,3,7" for the ranks r (r != self) whose last heartbeat, heard[r]
 * seconds on the same clock as now, is older than stale_s; "" if none.
 * Returns how many. Pure. */
int watchdog_silent_ranks(char *out, size_t len, const double *heard, int size, int self,
                          double now, double stale_s);

#endif
