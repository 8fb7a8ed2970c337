/*
 * train_report.h - what a resnet_dist run tells its user: rank 0's log
 * lines, the live progress line on a terminal, the --metrics JSON lines and
 * the --mllog lines. Local; only rank 0 prints (log.h).
 */
#ifndef RESNET_TRAIN_REPORT_H
#define RESNET_TRAIN_REPORT_H

#include <stdint.h>

#include "trainer.h"

void report_config(Trainer *t);
/* --dry-run: what the run would do, after every check has passed. */
void report_plan(Trainer *t);
void report_eval(Trainer *t, const char *kind, int64_t epoch, EvalTotals e);
/* --eval-only's result: the metrics record carries the checkpoint's step. */
void report_eval_only(Trainer *t, const char *kind, EvalTotals e);
void report_lr_change(Trainer *t, double lr, const char *reason);
/* On a terminal: a live line for the current epoch, a few times a second. */
void report_progress(Trainer *t, double loss, double seconds, int64_t steps);
/* The periodic progress line over the last `steps` steps (`seconds` long). */
void report_train(Trainer *t, double loss, double top1, double seconds, int64_t steps);
/* MLPerf logging convention: one JSON object per line behind ":::MLLOG". */
void report_mllog(const Trainer *t, const char *key, double value, int64_t epoch);

#endif
