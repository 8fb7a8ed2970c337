/*
 * sampler.c - per-epoch global permutations and each rank's share of a
 * global step (see sampler.h). Pure arithmetic on (seed, epoch, position);
 * nothing here depends on the number of ranks except which slice is taken.
 */
#include "sampler.h"

#include <stdlib.h>

#include "rng.h"

/* The permutation's stream: distinct from the augmentation's keys. */
#define SAMPLER_STREAM 0x5a3d

int64_t sampler_steps_for(int64_t n, int64_t global_batch, int drop_last)
{
    if (n <= 0 || global_batch <= 0)
        return 0;
    return drop_last ? n / global_batch : (n + global_batch - 1) / global_batch;
}

int sampler_check(int64_t n, int64_t global_batch, int world, int drop_last, Status *st)
{
    if (n < 1)
        status_set(st, EXIT_USAGE, "the training split has no images");
    else if (global_batch < world)
        status_set(st, EXIT_USAGE, "--batch-size %lld is smaller than the %d ranks: every rank "
                   "needs at least one image per step", (long long)global_batch, world);
    else if (drop_last && n < global_batch)
        status_set(st, EXIT_USAGE, "--batch-size %lld is larger than the %lld training images "
                   "and --drop-last leaves no step (turn it off to pad the batch)",
                   (long long)global_batch, (long long)n);
    return st->code;
}

void sampler_init(Sampler *s, int64_t n, int64_t global_batch, int rank, int world, uint64_t seed,
                  int drop_last)
{
    Status st = {0};
    CHECK(sampler_check(n, global_batch, world, drop_last, &st) == 0, "%s", st.msg);
    CHECK(rank >= 0 && rank < world, "rank %d of %d", rank, world);
    s->n = n;
    s->global_batch = global_batch;
    s->rank = rank;
    s->world = world;
    s->seed = seed;
    s->drop_last = drop_last != 0;
    s->steps_per_epoch = sampler_steps_for(n, global_batch, drop_last);
    s->local_first = (int64_t)rank * global_batch / world;
    s->local_batch = (int)((int64_t)(rank + 1) * global_batch / world - s->local_first);
    s->perm_epoch = -1;
    s->perm = xmalloc((size_t)n * sizeof *s->perm);
}

void sampler_free(Sampler *s)
{
    free(s->perm);
    s->perm = NULL;
    s->perm_epoch = -1;
}

int64_t sampler_steps_per_epoch(const Sampler *s)
{
    return s->steps_per_epoch;
}

int sampler_local_batch(const Sampler *s)
{
    return s->local_batch;
}

int64_t sampler_epoch(const Sampler *s, int64_t step)
{
    return step / s->steps_per_epoch;
}

int64_t sampler_position(const Sampler *s, int64_t step)
{
    return (step % s->steps_per_epoch) * s->global_batch + s->local_first;
}

void sampler_permutation(uint64_t seed, int64_t epoch, int64_t n, int64_t *out)
{
    Rng r;
    rng_seed(&r, seed, (uint64_t)epoch, SAMPLER_STREAM);
    for (int64_t i = 0; i < n; i++)
        out[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)rng_below(&r, (uint64_t)i + 1);
        int64_t t = out[i];
        out[i] = out[j];
        out[j] = t;
    }
}

void sampler_step_indices(Sampler *s, int64_t step, int64_t *out)
{
    CHECK(step >= 0, "step %lld", (long long)step);
    int64_t epoch = sampler_epoch(s, step);
    if (epoch != s->perm_epoch) {
        sampler_permutation(s->seed, epoch, s->n, s->perm);
        s->perm_epoch = epoch;
    }
    int64_t p = sampler_position(s, step);
    for (int k = 0; k < s->local_batch; k++)
        out[k] = s->perm[(p + k) % s->n]; /* padding wraps to the start */
}

void sampler_eval_range(int64_t n, int rank, int world, int64_t *first, int64_t *count)
{
    *first = (int64_t)rank * n / world;
    *count = (int64_t)(rank + 1) * n / world - *first;
}
