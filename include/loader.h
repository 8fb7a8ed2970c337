/*
 * loader.h - the background data loader (docs/design.md sections 2 and 6): one or
 * more plain pthreads read this rank's images, augment and normalise them
 * into a ring of batch buffers ahead of the step loop, which takes them in
 * order with loader_next.
 *
 *   LOADER_TRAIN: global step s, s = start_step, start_step + 1, ...: the
 *     rank's share of the sampler's batch (sampler.h) augmented with
 *     cfg.aug and cfg.erase keyed by (seed, epoch, position) (augment.h).
 *     The batches are the same for any number of threads and, concatenated
 *     over ranks, for any number of ranks; a resumed run passes the step it
 *     resumes at.
 *   LOADER_EVAL: the rank's contiguous range of the split
 *     (sampler_eval_range), centre-cropped, in batches of cfg.batch images;
 *     the last one may be shorter, after it loader_next_batch gives n = 0.
 *
 * The loader opens its own handle on the file (a Dataset is used by one
 * thread at a time) with a chunk cache set for random single-image reads
 * (dataset_set_random_access). Every HDF5 call takes h5_lock(); decoding and
 * augmentation run outside it. Idle threads sleep on condition variables;
 * nothing spins, and no OpenMP is used, so the threads only take a core
 * while they work.
 *
 * Errors: a record that cannot be read or decoded is recorded by the thread
 * that met it (file, split, index) and returned by the loader_next_batch
 * call that reaches that batch; loader_next turns it into fail_local, which
 * aborts the whole job, so a bad record never leaves the other ranks
 * waiting in a collective. The threads make no MPI calls; only an internal
 * failure (allocation, a failed HDF5 call on a validated file) would
 * fail_local from one of them. Local, never collective.
 */
#ifndef RESNET_LOADER_H
#define RESNET_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "augment.h"
#include "dataset.h"
#include "error.h"

typedef enum { LOADER_TRAIN, LOADER_EVAL } LoaderMode;

/* Chunk-cache budget for compressed image data when cache_bytes is 0. */
#define LOADER_CACHE_DEFAULT ((size_t)64 << 20)

typedef struct {
    const char *path;    /* the dataset file */
    DatasetSplit split;
    LoaderMode mode;
    int crop;            /* output crop x crop */
    AugMode aug;         /* TRAIN only; EVAL always centre-crops */
    double erase;        /* TRAIN only: random erasing probability in [0, 1]; 0: off */
    int64_t batch;       /* TRAIN: the global batch; EVAL: images per batch on this rank */
    int rank, world;
    uint64_t seed;       /* TRAIN: order and augmentation */
    int drop_last;       /* TRAIN: see sampler.h */
    int64_t start_step;  /* TRAIN: the first global step delivered; EVAL: first batch */
    int threads;         /* loader threads; 0: 1 */
    int depth;           /* batch buffers in the ring, at least threads + 1; 0: threads + 1 */
    size_t cache_bytes;  /* 0: LOADER_CACHE_DEFAULT */
} LoaderConfig;

/* One batch, valid until the next loader_next_batch / loader_next call. */
typedef struct {
    float *images;   /* (n, C, crop, crop), 64-byte aligned */
    int32_t *labels; /* (n) */
    int n;           /* TRAIN: the local batch; EVAL: fewer in the last batch, 0 past the end */
    int64_t step;    /* TRAIN: the global step; EVAL: the batch index */
    double wait;     /* seconds this call waited for the batch */
} LoaderBatch;

typedef struct Loader Loader;

/* Opens cfg->path (its problems go to st, code EXIT_USAGE, for the caller to
 * settle with status_agree: every rank opens the same file), checks the
 * sampler arguments (sampler_check) and starts the threads, which begin
 * filling at once. Returns 0 with *out set, or st->code. Local. */
int loader_create(Loader **out, const LoaderConfig *cfg, Status *st);

/* Takes the next batch in order, waiting for it if it is not ready, and
 * gives back the previous one's buffer. Returns 0, or st->code when the
 * batch could not be made (st names the file, split and image index). */
int loader_next_batch(Loader *l, LoaderBatch *batch, Status *st);

/* The step loop's call: loader_next_batch, failing locally (MPI_Abort) on
 * an error. Returns the seconds it waited. */
double loader_next(Loader *l, float **images, int32_t **labels);

/* Stops and joins the threads (a thread mid-image finishes that image) and
 * closes the file; accepts NULL. Not to be called while this thread holds
 * h5_lock(): a thread waiting for it could not finish. */
void loader_free(Loader *l);

/* The loader's open dataset (channels, counts, labels); read-only. */
const Dataset *loader_dataset(const Loader *l);
/* Images per batch on this rank (TRAIN: sampler_local_batch; EVAL: cfg.batch). */
int loader_local_batch(const Loader *l);
/* TRAIN: steps per epoch; EVAL: batches in the rank's range. */
int64_t loader_steps(const Loader *l);

#endif
