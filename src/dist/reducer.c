/* reducer.c - bucketed, overlapped gradient allreduce on a communication thread. */
#include "reducer.h"

#include <mpi.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist.h"
#include "error.h"
#include "timer.h"

typedef struct {
    float *data;
    size_t count;
    MPI_Request req;
} Bucket;

struct Reducer {
    Params *params;
    int world;
    /* bucket 0 is the BN state; buckets 1.. cut the gradient buffer from its end */
    Bucket *bucket;
    size_t *begin; /* flat offset where each gradient bucket starts */
    int count;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int queued;   /* buckets handed to the thread this step */
    int finished; /* buckets completed this step */
    int started;  /* buckets the thread has started (thread-private progress) */
    int stop;
    int draining; /* backward is over: the cores are free, poll promptly */
    double first_start, last_done;
};

/* Between tests of outstanding requests the thread sleeps on the condition
 * variable (new buckets, or the end of backward, wake it): during backward
 * long enough to leave the cores to oneDNN; after it, longer each time
 * nothing finished (up to 1 ms), so a peer that never arrives costs no core. */
static const long BACKWARD_PAUSE_NS = 50 * 1000;

static void bucket_start(Reducer *r, int i)
{
    Bucket *b = &r->bucket[i];
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, b->data, (int)b->count, MPI_FLOAT, MPI_SUM,
                             MPI_COMM_WORLD, &b->req));
}

/* Starts what is queued and tests what is in flight; returns how many
 * buckets are complete. Runs on the communication thread without the lock. */
static int progress(Reducer *r, int queued, int *started, int done)
{
    while (*started < queued) {
        if (*started == 0)
            r->first_start = timer_now();
        bucket_start(r, (*started)++);
    }
    while (done < *started) {
        int flag = 0;
        MPI_CHECK(MPI_Test(&r->bucket[done].req, &flag, MPI_STATUS_IGNORE));
        if (!flag)
            break;
        done++;
    }
    return done;
}

static struct timespec deadline_after_ns(long ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += ns;
    ts.tv_sec += ts.tv_nsec / 1000000000;
    ts.tv_nsec %= 1000000000;
    return ts;
}

/* The pause after a test that completed nothing: backward is running, or,
 * once it is over, a few immediate tests (the last bucket is usually just
 * about to finish) before backing off. */
static long next_pause(long pause_ns, int draining, int *idle_polls)
{
    if (!draining)
        return BACKWARD_PAUSE_NS;
    return ++*idle_polls <= DIST_SPIN_POLLS ? 0 : dist_pause_next(pause_ns);
}

static void *comm_thread(void *arg)
{
    Reducer *r = arg;
    long pause_ns = 0;
    int idle_polls = 0;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->stop && r->queued == r->finished)
            pthread_cond_wait(&r->cv, &r->mu);
        if (r->stop)
            break;
        int queued = r->queued, done = r->finished, draining = r->draining;
        pthread_mutex_unlock(&r->mu);
        int now = progress(r, queued, &r->started, done);
        pthread_mutex_lock(&r->mu);
        if (now != r->finished) {
            r->finished = now;
            if (now == r->count)
                r->last_done = timer_now();
            pthread_cond_broadcast(&r->cv);
            pause_ns = idle_polls = 0;
        } else if (now < queued) {
            pause_ns = next_pause(pause_ns, draining, &idle_polls);
            if (pause_ns > 0 && r->queued == queued && r->draining == draining) {
                struct timespec until = deadline_after_ns(pause_ns);
                pthread_cond_timedwait(&r->cv, &r->mu, &until);
            }
        }
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* The first tensors' gradients are ready last, so their bucket is still to
 * be summed when backward ends: it is cut at 1/25 of the limit (1 MB of the
 * default 25 MB, like DDP's small first bucket at the other end), which
 * leaves the early buckets the rest of backward to finish in. */
static size_t tail_end(const Params *p, size_t limit)
{
    int k = 1; /* the tail holds tensors [0, k), at least one */
    while (k < p->count && (k + 1 < p->count ? p->info[k + 1].offset : p->total) <= limit / 25)
        k++;
    return k < p->count ? p->info[k].offset : p->total;
}

static void reducer_cut(Reducer *r, double bucket_mb)
{
    const Params *p = r->params;
    size_t limit = (size_t)(bucket_mb * 1024 * 1024 / sizeof(float));
    if (limit < 1)
        limit = 1;
    size_t tail = tail_end(p, limit);
    r->bucket = xcalloc((size_t)p->count + 1, sizeof *r->bucket);
    r->begin = xcalloc((size_t)p->count + 1, sizeof *r->begin);
    r->bucket[0] = (Bucket){p->state, p->state_total, MPI_REQUEST_NULL};
    r->count = 1;
    size_t end = p->total;
    for (int i = p->count - 1; i >= 0; i--) {
        size_t begin = p->info[i].offset;
        if (end - begin >= limit || begin == tail || i == 0) {
            r->begin[r->count] = begin;
            r->bucket[r->count++] = (Bucket){p->grad + begin, end - begin, MPI_REQUEST_NULL};
            end = begin;
        }
    }
}

Reducer *reducer_create(Params *p, double bucket_mb)
{
    Reducer *r = xcalloc(1, sizeof *r);
    r->params = p;
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &r->world));
    reducer_cut(r, bucket_mb);
    CHECK(pthread_mutex_init(&r->mu, NULL) == 0, "pthread_mutex_init failed");
    pthread_condattr_t attr;
    CHECK(pthread_condattr_init(&attr) == 0, "pthread_condattr_init failed");
    CHECK(pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0, "pthread_condattr_setclock failed");
    CHECK(pthread_cond_init(&r->cv, &attr) == 0, "pthread_cond_init failed");
    pthread_condattr_destroy(&attr);
    CHECK(pthread_create(&r->thread, NULL, comm_thread, r) == 0, "pthread_create failed");
    return r;
}

void reducer_free(Reducer *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r->bucket);
    free(r->begin);
    free(r);
}

int reducer_bucket_count(const Reducer *r)
{
    return r->count - 1;
}

size_t reducer_bucket_floats(const Reducer *r, int i)
{
    return r->bucket[i + 1].count;
}

static void queue_upto(Reducer *r, int n)
{
    pthread_mutex_lock(&r->mu);
    if (n > r->queued) {
        r->queued = n;
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
}

void reducer_begin_step(Reducer *r)
{
    pthread_mutex_lock(&r->mu);
    CHECK(r->queued == r->finished, "reducer step begun while buckets are in flight");
    r->queued = r->finished = r->started = r->draining = 0;
    r->first_start = r->last_done = 0;
    pthread_mutex_unlock(&r->mu);
    queue_upto(r, 1); /* the BN statistics are final after forward */
}

void reducer_grads_ready(void *reducer, size_t ready_from)
{
    Reducer *r = reducer;
    int n = 1;
    while (n < r->count && r->begin[n] >= ready_from)
        n++;
    queue_upto(r, n);
}

ReducerTimes reducer_finish(Reducer *r)
{
    double end_backward = timer_now();
    pthread_mutex_lock(&r->mu);
    r->draining = 1;
    r->queued = r->count;
    pthread_cond_broadcast(&r->cv);
    while (r->finished < r->count)
        pthread_cond_wait(&r->cv, &r->mu);
    ReducerTimes t = {r->last_done > end_backward ? r->last_done - end_backward : 0.0,
                      r->last_done - r->first_start};
    pthread_mutex_unlock(&r->mu);
    float inv = 1.0f / (float)r->world;
    float *state = r->params->state;
    for (size_t i = 0; i < r->params->state_total; i++)
        state[i] *= inv;
    return t;
}
