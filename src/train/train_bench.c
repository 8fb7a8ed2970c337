/* train_bench.c - resnet_dist --bench: step times, memory and allreduce overlap. */
#include "train_bench.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "error.h"
#include "timer.h"
#include "train_step.h"

static double peak_rss_mb(void)
{
    struct rusage ru;
    SYS_CHECK(getrusage(RUSAGE_SELF, &ru));
    return (double)ru.ru_maxrss / 1024.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int trainer_bench(Trainer *t)
{
    const Options *o = &t->cfg.opt;
    double *ms = xcalloc((size_t)o->bench_steps, sizeof *ms), g[STEP_NVALUES];
    StepRequests no_requests = {0}; /* a bench runs its steps to the end */
    for (int i = 0; i < o->bench_warmup; i++) {
        trainer_read_train(t);
        trainer_step(t, no_requests, g);
    }
    /* A rank whose backward ends early also waits for the others' backward:
     * that is skew between ranks, not communication left unhidden, so the
     * exposed time is the last rank's (the smallest), and the skew apart. */
    double exposed_s = 0, skew_s = 0, start = timer_now();
    for (int i = 0; i < o->bench_steps; i++) {
        double s = timer_now(), before = t->state.times.exposed_s;
        trainer_read_train(t);
        trainer_step(t, no_requests, g);
        ms[i] = 1e3 * (timer_now() - s);
        double after = t->state.times.exposed_s;
        double mine[2] = {after - before, before - after}, least[2];
        MPI_CHECK(MPI_Allreduce(mine, least, 2, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD));
        exposed_s += least[0];
        skew_s += -least[1] - least[0];
    }
    double elapsed = timer_now() - start;
    double exposed_ms = 1e3 * exposed_s / o->bench_steps;
    /* The same allreduces with no backward to hide behind. */
    double alone = timer_now();
    for (int i = 0; i < o->bench_steps; i++) {
        reducer_begin_step(t->res.reducer);
        reducer_finish(t->res.reducer);
    }
    double alone_ms = 1e3 * (timer_now() - alone) / o->bench_steps;
    /* With one rank there is nothing to hide: the fraction is undefined. */
    char hidden[32] = "null";
    if (t->cfg.dist.size > 1 && alone_ms > 0)
        snprintf(hidden, sizeof hidden, "%.3f", 1.0 - exposed_ms / alone_ms);
    qsort(ms, (size_t)o->bench_steps, sizeof *ms, cmp_double);
    double rss = peak_rss_mb(), rss_max;
    MPI_CHECK(MPI_Reduce(&rss, &rss_max, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD));
    if (t->cfg.dist.rank == 0)
        printf("{\"arch\":\"%s\",\"batch\":%d,\"crop\":%d,\"ranks\":%d,\"threads\":%d,"
               "\"img_per_s\":%.2f,\"step_ms_median\":%.2f,\"peak_rss_mb\":%.1f,"
               "\"gmacs_per_image\":%.4f,\"buckets\":%d,\"comm_exposed_ms\":%.3f,"
               "\"comm_alone_ms\":%.3f,\"rank_skew_ms\":%.3f,\"hidden_fraction\":%s}\n",
               o->arch, o->batch_size, t->cfg.crop, t->cfg.dist.size, o->threads,
               o->bench_steps * o->batch_size / elapsed, ms[o->bench_steps / 2], rss_max,
               net_macs_per_image(t->res.net) / 1e9, reducer_bucket_count(t->res.reducer),
               exposed_ms, alone_ms, 1e3 * skew_s / o->bench_steps, hidden);
    fflush(stdout);
    free(ms);
    return EXIT_OK;
}
