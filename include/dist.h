/*
 * dist.h - MPI set-up and the whole-buffer collectives of data-parallel
 * training: state broadcast, configuration and parameter checksums. (The
 * overlapped gradient reduction is in reducer.h.) Every function here is collective over MPI_COMM_WORLD unless
 * it says otherwise.
 */
#ifndef RESNET_DIST_H
#define RESNET_DIST_H

#include <stdint.h>

#include <mpi.h>

#include "error.h"
#include "params.h"

typedef struct {
    int rank, size;             /* in MPI_COMM_WORLD */
    int local_rank, local_size; /* on this node */
    int thread_level;           /* MPI_THREAD_* provided */
} DistInfo;

/* MPI_Init_thread with errors returned (checked by MPI_CHECK), rank-aware
 * logging set up. */
void dist_init(int *argc, char ***argv, DistInfo *d);
void dist_finalize(void);

/* Waiting without holding a core. Open MPI's blocking calls poll flat out:
 * that takes a core from compute, and while a peer is stopped it burns one
 * until the stall watchdog ends the job. These test a few times, then sleep
 * between tests, from 2 us doubling to 1 ms (dist_pause_next). */
enum { DIST_SPIN_POLLS = 64 };
long dist_pause_next(long pause_ns);
/* MPI_Wait that sleeps between tests; local. */
void dist_wait(MPI_Request *req);
/* MPI_Allreduce on MPI_COMM_WORLD through dist_wait (send may be
 * MPI_IN_PLACE). Collective. */
void dist_allreduce(const void *send, void *recv, int count, MPI_Datatype type, MPI_Op op);

/* Rank 0's parameters, momentum, BN statistics and step counter to all,
 * and their moving average when p keeps one. */
void dist_broadcast_state(Params *p);
/* Every rank must run the same configuration: compares a hash of the
 * command line; a difference is a usage error (exit 2 on all ranks) that
 * names a differing rank and the first differing word, e.g.
 * "rank 1 has '--lr 0.2', rank 0 has '--lr 0.1'". */
void dist_check_same_config(const char *command_line);

/* One value that every rank must share, as text. */
typedef struct {
    const char *name; /* "train images", "global batch", ... */
    char value[256];
} DistSetting;
/* Compares each item across ranks (by hash); on the first item where a
 * rank differs from rank 0, sets st (EXIT_USAGE) to "the ranks disagree:
 * rank R has <name> <its value>, rank 0 has <value>" on every rank, for
 * the caller's status_agree. Collective. */
void dist_agree_settings(const DistSetting *items, int n, Status *st);
/* FNV-1a hash of the parameter and BN state bytes; local. */
uint64_t dist_params_hash(const Params *p);
/* Compares the hash across ranks; on a mismatch rank 0 reports the ranks
 * that differ from rank 0 and every rank exits with code 1. */
void dist_check_params(const Params *p, const char *when);

#endif
