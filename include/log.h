/*
 * log.h - logging by role. log_info and log_warn print on rank 0 only (the
 * job's voice); log_rank prints on every rank with a "[rank R]" prefix.
 * Local, never collective.
 */
#ifndef RESNET_LOG_H
#define RESNET_LOG_H

/* Set once after MPI_Init; before that every process acts as rank 0. */
void log_set_rank(int rank, int world_size);
int log_rank_id(void);
int log_world_size(void);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_rank(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Live progress: 1 on, 0 off, -1 auto (rank 0's standard output is a
 * terminal and no MPI launcher or batch system relays it: under mpirun the
 * ranks see a pseudo-terminal even when mpirun's output goes to a file). */
void log_set_live(int mode);
/* Whether live progress lines are shown. */
int log_is_tty(void);
/* Rank 0 on a terminal: rewrites one status line in place; the next
 * log_info/log_warn clears it first. Does nothing elsewhere, so batch logs
 * never see control characters. */
void log_live(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
