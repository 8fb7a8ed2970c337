/*
 * prep_output.h - the output file of a prep run: checks on --out, the
 * temporary file beside it, and its removal however a run ends early.
 *
 * A run writes OUT.tmp-<host>-<pid of rank 0> and renames it to OUT when it
 * is complete, so OUT is always either what was there before or the whole
 * new file. An existing OUT is replaced only with --force. The temporary
 * file is created exclusively (never through a symlink or over someone's
 * file) and removed when the run fails: an input error, a failed write (a
 * full disk), SIGINT, SIGTERM or SIGHUP. One left behind by a run that could
 * not clean up (SIGKILL, a crash, a power cut) is removed by the next run
 * with the same --out on the same host, once its process is gone.
 */
#ifndef RESNET_PREP_OUTPUT_H
#define RESNET_PREP_OUTPUT_H

#include "error.h"

/* Collective: exit 2 with one line unless out_path can be written: its
 * folder exists and is writable, and out_path does not exist (or, with
 * force, is a regular file to replace). */
void prep_output_check(const char *out_path, int force);

/* Collective: the temporary name for out_path (malloc'd, same on every
 * rank). Rank 0 first removes stale temporary files of out_path (this
 * host's, of processes that are gone, owned by this user, regular files
 * only) and refuses (exit 2) if anything else is at the name. */
char *prep_output_tmp_claim(const char *out_path);

/* Local: from now on SIGINT, SIGTERM and SIGHUP remove tmp_path before the
 * process dies of them. Call once the file is created; disarm after. */
void prep_output_tmp_arm(const char *tmp_path);
void prep_output_tmp_disarm(void);

/* Rank 0, after every rank closed it: makes tmp_path durable and renames it
 * to out_path (without force, never over a file that appeared meanwhile).
 * 0, or -1 with st set and tmp_path removed. Disarms. */
int prep_output_commit(const char *tmp_path, const char *out_path, int force, Status *st);

#endif
