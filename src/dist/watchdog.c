/* watchdog.c - ends a job that has stopped making progress (--stall-timeout). */
#include "watchdog.h"

#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "timer.h"

enum { BEAT_TAG = 7411, BEAT_LEN = 2 }; /* a heartbeat: phase, step */

typedef struct {
    WatchdogPhase phase;
    int64_t step;
    double since; /* when the rank last made progress */
} Position;

static struct {
    int on;
    double timeout, tick, stale;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    Position at; /* under mu */
    int reported;
    double frozen_at, frozen_s; /* the last time this process itself was frozen */
    WatchdogStallFn on_stall;
    int keyval;
    /* heartbeats, used by the watchdog thread only */
    int beats;
    MPI_Comm comm;
    int rank, size;
    double *heard;            /* (size) when each rank was last heard from */
    Position *seen;           /* (size) where each rank said it was */
    MPI_Request *send;        /* (size) the heartbeat in flight to each rank */
    int64_t (*outbox)[BEAT_LEN]; /* (size) its buffer */
} g;

static const char *const PHASE_NAMES[WATCHDOG_NPHASES] = {
    "start-up", "data read", "forward and backward", "gradient allreduce",
    "loss and signal sums", "validation", "checkpoint", "parameter checksum", "shutdown",
};

void watchdog_describe(char *out, size_t len, WatchdogPhase phase, int64_t step)
{
    const char *name = phase < WATCHDOG_NPHASES ? PHASE_NAMES[phase] : "unknown phase";
    switch (phase) {
    case WATCHDOG_DATA:
    case WATCHDOG_COMPUTE:
    case WATCHDOG_ALLREDUCE:
    case WATCHDOG_STEP_SUMS:
        snprintf(out, len, "step %lld (%s)", (long long)step, name);
        break;
    case WATCHDOG_VALIDATION:
    case WATCHDOG_CHECKPOINT:
    case WATCHDOG_CHECKSUM:
        snprintf(out, len, "%s after step %lld", name, (long long)step);
        break;
    default:
        snprintf(out, len, "%s", name);
    }
}

int watchdog_silent_ranks(char *out, size_t len, const double *heard, int size, int self,
                          double now, double stale_s)
{
    int count = 0;
    size_t used = 0;
    if (len)
        out[0] = '\0';
    for (int r = 0; r < size; r++) {
        if (r == self || now - heard[r] <= stale_s)
            continue;
        if (used < len)
            used += (size_t)snprintf(out + used, len - used, "%s%d", count ? "," : "", r);
        count++;
    }
    return count;
}

static struct timespec deadline_after(double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long ns = ts.tv_nsec + (long long)(seconds * 1e9);
    ts.tv_sec += (time_t)(ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    return ts;
}

/* One heartbeat to `to`, unless the last one is still in flight: a peer
 * that takes none gets no pile of them. */
static void beat_send(int to, const Position *at)
{
    if (g.send[to] != MPI_REQUEST_NULL) {
        int done = 0;
        MPI_CHECK(MPI_Test(&g.send[to], &done, MPI_STATUS_IGNORE));
        if (!done)
            return;
    }
    g.outbox[to][0] = at->phase;
    g.outbox[to][1] = at->step;
    MPI_CHECK(MPI_Isend(g.outbox[to], BEAT_LEN, MPI_INT64_T, to, BEAT_TAG, g.comm, &g.send[to]));
}

/* Takes every heartbeat that has arrived, oldest first, so what is kept is
 * the newest (a rank that was stopped finds a backlog). Each peer sends at
 * most one a tick; the bound only guards the thread's own clock. */
static void beat_receive(double now)
{
    for (int n = 0; n < 1000 * g.size; n++) {
        int flag = 0;
        MPI_Status st;
        MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, BEAT_TAG, g.comm, &flag, &st));
        if (!flag)
            return;
        int64_t beat[BEAT_LEN];
        MPI_CHECK(MPI_Recv(beat, BEAT_LEN, MPI_INT64_T, st.MPI_SOURCE, BEAT_TAG, g.comm,
                           MPI_STATUS_IGNORE));
        g.heard[st.MPI_SOURCE] = now;
        g.seen[st.MPI_SOURCE] = (Position){(WatchdogPhase)beat[0], beat[1], now};
    }
}

static void heartbeat(const Position *at)
{
    if (g.rank == 0) {
        for (int r = 1; r < g.size; r++)
            beat_send(r, at);
    } else {
        beat_send(0, at);
    }
    beat_receive(timer_now());
}

/* Where the others are, as far as this rank knows: rank 0 hears from
 * everyone, the other ranks from rank 0. */
static size_t describe_peers(char *out, size_t len, const Position *at, double now)
{
    if (!g.beats)
        return (size_t)snprintf(out, len, g.size > 1 ? "; the silent ranks are unknown (MPI "
                                "without MPI_THREAD_MULTIPLE sends no heartbeats)" : "");
    char silent[256], where[128];
    int n = watchdog_silent_ranks(silent, sizeof silent, g.heard, g.rank == 0 ? g.size : 1,
                                  g.rank, now, g.stale);
    size_t used = 0;
    if (n)
        used = (size_t)snprintf(out, len, "; not heard from for %g s or more: %s %s", g.stale,
                                n == 1 ? "rank" : "ranks", silent);
    else if (g.rank == 0)
        used = (size_t)snprintf(out, len, "; every rank was heard from");
    int listed = 0;
    for (int r = 0; r < (g.rank == 0 ? g.size : 1) && used < len; r++) {
        const Position *p = &g.seen[r];
        if (r == g.rank || now - g.heard[r] > g.stale ||
            (p->phase == at->phase && p->step == at->step))
            continue;
        if (listed++ == 4) {
            used += (size_t)snprintf(out + used, len - used, "; more ranks elsewhere");
            break;
        }
        watchdog_describe(where, sizeof where, p->phase, p->step);
        used += (size_t)snprintf(out + used, len - used, "; rank %d is in %s", r, where);
    }
    return used;
}

static void stall(const Position *at, double now)
{
    char line[2048], where[128];
    watchdog_describe(where, sizeof where, at->phase, at->step);
    size_t used = (size_t)snprintf(line, sizeof line, "[rank %d] stall: no progress for %.0f s in %s",
                                   g.rank, now - at->since, where);
    if (used < sizeof line)
        used += describe_peers(line + used, sizeof line - used, at, now);
    if (used < sizeof line && now - g.frozen_at < g.stale) /* what it heard may be old */
        used += (size_t)snprintf(line + used, sizeof line - used, "; this rank itself was "
                                 "frozen (stopped, or not scheduled) for %.0f s", g.frozen_s);
    if (used < sizeof line)
        snprintf(line + used, sizeof line - used, "; ending the job (exit %d, --stall-timeout %g)",
                 EXIT_INTERNAL, g.timeout);
    fprintf(stderr, "%s\n", line);
    fflush(stderr);
    g.reported = 1;
    if (g.on_stall) {
        g.on_stall(line);
        return;
    }
    if (g.rank != 0) { /* rank 0, if alive, aborts first with the fuller line */
        struct timespec grace = {(time_t)(2 * g.tick), (long)(2 * g.tick * 1e9) % 1000000000};
        nanosleep(&grace, NULL);
    }
    MPI_Abort(MPI_COMM_WORLD, EXIT_INTERNAL);
}

static void *watchdog_main(void *arg)
{
    (void)arg;
    double woke = timer_now();
    pthread_mutex_lock(&g.mu);
    while (!g.stop) {
        struct timespec until = deadline_after(g.tick);
        pthread_cond_timedwait(&g.cv, &g.mu, &until);
        if (g.stop)
            break;
        double slept = timer_now() - woke;
        woke += slept;
        if (slept > 3 * g.tick + 0.5) /* a tick came far too late: this process was frozen */
            g.frozen_at = woke, g.frozen_s = slept;
        Position at = g.at;
        pthread_mutex_unlock(&g.mu);
        if (g.beats)
            heartbeat(&at);
        double now = timer_now();
        if (!g.reported && now - at.since >= g.timeout)
            stall(&at, now);
        pthread_mutex_lock(&g.mu);
    }
    pthread_mutex_unlock(&g.mu);
    return NULL;
}

static void watchdog_shutdown(void)
{
    if (!g.on)
        return;
    pthread_mutex_lock(&g.mu);
    g.stop = 1;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    pthread_join(g.thread, NULL);
    if (g.beats) {
        for (int r = 0; r < g.size; r++)
            if (g.send[r] != MPI_REQUEST_NULL)
                MPI_CHECK(MPI_Request_free(&g.send[r])); /* it completes on its own */
        beat_receive(timer_now());
        MPI_CHECK(MPI_Comm_free(&g.comm));
    }
    pthread_cond_destroy(&g.cv);
    pthread_mutex_destroy(&g.mu);
    free(g.heard);
    free(g.seen);
    free(g.send);
    free(g.outbox);
    g.on = 0;
}

/* MPI_Finalize deletes MPI_COMM_SELF's attributes first, while MPI still
 * works: the place to stop a thread that calls MPI, whichever path ends
 * the run. */
static int at_finalize(MPI_Comm comm, int keyval, void *value, void *extra)
{
    (void)comm, (void)keyval, (void)value, (void)extra;
    watchdog_shutdown();
    return MPI_SUCCESS;
}

static void watchdog_start_beats(void)
{
    int level = MPI_THREAD_SINGLE;
    MPI_CHECK(MPI_Query_thread(&level));
    MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &g.comm));
    MPI_CHECK(MPI_Comm_rank(g.comm, &g.rank));
    MPI_CHECK(MPI_Comm_size(g.comm, &g.size));
    g.beats = level >= MPI_THREAD_MULTIPLE && g.size > 1;
    if (!g.beats)
        MPI_CHECK(MPI_Comm_free(&g.comm));
    double now = timer_now();
    g.heard = xcalloc((size_t)g.size, sizeof *g.heard);
    g.seen = xcalloc((size_t)g.size, sizeof *g.seen);
    g.send = xcalloc((size_t)g.size, sizeof *g.send);
    g.outbox = xcalloc((size_t)g.size, sizeof *g.outbox);
    for (int r = 0; r < g.size; r++) {
        g.heard[r] = now;
        g.seen[r] = (Position){WATCHDOG_STARTUP, 0, now};
        g.send[r] = MPI_REQUEST_NULL;
    }
}

void watchdog_start(double timeout_s)
{
    if (timeout_s <= 0 || g.on)
        return;
    WatchdogStallFn on_stall = g.on_stall;
    memset(&g, 0, sizeof g);
    g.on_stall = on_stall;
    g.frozen_at = -1e30;
    g.timeout = timeout_s;
    g.tick = timeout_s / 10 < 0.05 ? 0.05 : timeout_s / 10 > 1.0 ? 1.0 : timeout_s / 10;
    g.stale = timeout_s / 2 > 3 * g.tick ? timeout_s / 2 : 3 * g.tick;
    watchdog_start_beats();
    g.at = (Position){WATCHDOG_STARTUP, 0, timer_now()};
    pthread_condattr_t attr;
    CHECK(pthread_condattr_init(&attr) == 0, "pthread_condattr_init failed");
    CHECK(pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0, "pthread_condattr_setclock failed");
    CHECK(pthread_cond_init(&g.cv, &attr) == 0, "pthread_cond_init failed");
    pthread_condattr_destroy(&attr);
    CHECK(pthread_mutex_init(&g.mu, NULL) == 0, "pthread_mutex_init failed");
    CHECK(pthread_create(&g.thread, NULL, watchdog_main, NULL) == 0, "pthread_create failed");
    g.on = 1;
    MPI_CHECK(MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, at_finalize, &g.keyval, NULL));
    MPI_CHECK(MPI_Comm_set_attr(MPI_COMM_SELF, g.keyval, NULL));
}

void watchdog_stop(void)
{
    if (!g.on)
        return;
    MPI_CHECK(MPI_Comm_delete_attr(MPI_COMM_SELF, g.keyval)); /* runs at_finalize */
    MPI_CHECK(MPI_Comm_free_keyval(&g.keyval));
}

void watchdog_phase(WatchdogPhase phase, int64_t step)
{
    if (!g.on)
        return;
    pthread_mutex_lock(&g.mu);
    g.at = (Position){phase, step, timer_now()};
    pthread_mutex_unlock(&g.mu);
}

void watchdog_progress(void)
{
    if (!g.on)
        return;
    pthread_mutex_lock(&g.mu);
    g.at.since = timer_now();
    pthread_mutex_unlock(&g.mu);
}

void watchdog_on_stall(WatchdogStallFn fn)
{
    g.on_stall = fn;
}
