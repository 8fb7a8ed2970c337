/*
 * sampler.h - which images each rank reads at each step (docs/design.md
 * invariant 2). Every epoch has one global permutation `perm` of the N
 * training images, a function of (seed, epoch) only. Global step s belongs to
 * epoch s / S and is batch b = s % S of it (S = steps per epoch); it covers
 * the epoch positions [b*B, (b+1)*B) (B = global batch), position p holding
 * image perm[p % N], and rank r of W takes its contiguous share
 * [r*B/W, (r+1)*B/W) of them. The order is therefore independent of W: a run
 * resumes at any step, on any number of ranks, and sees the same images.
 *
 * Uneven data is settled globally, the same on every rank:
 *   drop_last 1 (the training default): S = floor(N / B); the N % B images
 *     at the end of each permutation are skipped that epoch (a different
 *     set every epoch);
 *   drop_last 0: S = ceil(N / B); the last batch is padded by wrapping to
 *     the start of the same permutation, so every image is seen at least
 *     once and every rank still gets full batches.
 *
 * Validation and test use no sampler order: every image exactly once, rank r
 * takes the contiguous range [r*V/W, (r+1)*V/W) (sampler_eval_range).
 *
 * Local: no communication. A Sampler caches the current epoch's permutation
 * and is used by one thread at a time.
 */
#ifndef RESNET_SAMPLER_H
#define RESNET_SAMPLER_H

#include <stdint.h>

#include "error.h"

typedef struct {
    int64_t n;               /* images in the split */
    int64_t global_batch;    /* B */
    int rank, world;
    uint64_t seed;
    int drop_last;
    int64_t steps_per_epoch; /* S */
    int64_t local_first;     /* this rank's share of a batch: [local_first, +local_batch) */
    int local_batch;
    int64_t perm_epoch;      /* the epoch perm holds, -1 for none */
    int64_t *perm;           /* (n) */
} Sampler;

/* Steps per epoch for n images and global batch B: floor(n / B) with
 * drop_last, else ceil(n / B). 0 when drop_last and n < B. */
int64_t sampler_steps_for(int64_t n, int64_t global_batch, int drop_last);

/* Words a combination the sampler cannot serve (no image, a batch smaller
 * than the world so that some rank would get none, or drop_last with fewer
 * images than one batch) into st with code EXIT_USAGE; returns st->code.
 * Every rank finds the same answer: settle it with status_agree(). */
int sampler_check(int64_t n, int64_t global_batch, int world, int drop_last, Status *st);

/* Sets s up for rank of world; the arguments must pass sampler_check
 * (fails locally otherwise). No permutation is made until asked for. */
void sampler_init(Sampler *s, int64_t n, int64_t global_batch, int rank, int world, uint64_t seed,
                  int drop_last);
/* Accepts a zeroed or half-initialised Sampler. */
void sampler_free(Sampler *s);

int64_t sampler_steps_per_epoch(const Sampler *s);
/* Images this rank reads per step: (r+1)*B/W - r*B/W (B/W when W divides B). */
int sampler_local_batch(const Sampler *s);
/* The epoch of global step `step`: step / steps_per_epoch. */
int64_t sampler_epoch(const Sampler *s, int64_t step);
/* The epoch position of this rank's first image at global step `step`
 * (the rank's k-th image has position + k). Positions run over
 * [0, steps_per_epoch * B) within an epoch and, with the epoch, name a
 * sample slot independently of W: augmentation randomness is keyed by it. */
int64_t sampler_position(const Sampler *s, int64_t step);

/* The dataset indices of this rank's images at global step `step`, out
 * (local_batch). Makes the step's epoch permutation when it is not the one
 * cached (about 10 ms per million images). */
void sampler_step_indices(Sampler *s, int64_t step, int64_t *out);

/* Epoch `epoch`'s permutation of [0, n) into out (n): Fisher-Yates driven
 * by rng_seed(seed, epoch, 0x5a3d). A function of (seed, epoch, n) only. */
void sampler_permutation(uint64_t seed, int64_t epoch, int64_t n, int64_t *out);

/* Evaluation: rank's contiguous range [*first, *first + *count) of n images,
 * first = rank*n/world; the ranges of all ranks cover [0, n) exactly once. */
void sampler_eval_range(int64_t n, int rank, int world, int64_t *first, int64_t *count);

#endif
