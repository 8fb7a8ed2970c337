/*
 * train_report.h - what a resnet_dist run tells its user: rank 0's log
 * lines, the live progress line on a terminal, the --metrics JSON lines and
 * the --mllog lines. Local; only rank 0 prints (log.h).
 */
#ifndef RESNET_TRAIN_REPORT_H
#define RESNET_TRAIN_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "trainer.h"

/* The start-up lines: version, the settings that decide the run, the
 * network's size and the plan. */
void report_config(Trainer *t);
/* The settings as "config: key=value ..." lines, each ending in a newline:
 * model, data, optimizer, schedule, checkpoints. plateau: the rule in
 * effect (on resume, the checkpoint's). Writes at most len bytes
 * (terminated when len > 0); returns the length the whole text needs. */
size_t report_format_config(const TrainConfig *c, const Plateau *plateau, char *out, size_t len);
/* --dry-run: what the run would do, after every check has passed. */
void report_plan(Trainer *t);
/* The evaluation of a split: the line of the evaluated weights (under
 * --model-ema-eval the average, marked so), with --tta flip a "tta" line,
 * and when ema is not NULL "ema" lines for the average besides; one
 * metrics record of kind with all the figures (docs/training.md). */
void report_eval_all(Trainer *t, const char *kind, int64_t epoch, const EvalTotals *e,
                     const EvalTotals *ema);
void report_lr_change(Trainer *t, double lr, const char *reason);
/* On a terminal: a live line for the current epoch, a few times a second. */
void report_progress(Trainer *t, const TrainWindow *w);
/* The training line (and metrics record) of the window that ended at the
 * current step, in the validation line's terms: epoch, global step,
 * top-1/top-5 error in percent. */
void report_train(Trainer *t, const TrainStats *s);
/* MLPerf logging convention: one JSON object per line behind ":::MLLOG". */
void report_mllog(const Trainer *t, const char *key, double value, int64_t epoch);

#endif
