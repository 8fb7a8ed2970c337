/*
 * dist.h - MPI set-up and the whole-buffer collectives of data-parallel
 * training: state broadcast, configuration and parameter checksums. (The
 * overlapped gradient reduction is in reducer.h.) Every function here is collective over MPI_COMM_WORLD unless
 * it says otherwise.
 */
#ifndef RESNET_DIST_H
#define RESNET_DIST_H

#include <stdint.h>

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

/* Rank 0's parameters, momentum, BN statistics and step counter to all. */
void dist_broadcast_state(Params *p);
/* Every rank must run the same configuration: compares a hash of the
 * command line; a difference is a usage error (exit 2 on all ranks). */
void dist_check_same_config(const char *command_line);
/* FNV-1a hash of the parameter and BN state bytes; local. */
uint64_t dist_params_hash(const Params *p);
/* Compares the hash across ranks; on a mismatch rank 0 reports the ranks
 * that differ from rank 0 and every rank exits with code 1. */
void dist_check_params(const Params *p, const char *when);

#endif
