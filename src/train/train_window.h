/*
 * train_window.h - the numbers of a training line: the steps since the
 * previous line (a window), their pace and shares of waiting, and the time
 * left in the run. Pure arithmetic on times the caller measured, so that
 * it can be tested with made-up times. Local.
 */
#ifndef RESNET_TRAIN_WINDOW_H
#define RESNET_TRAIN_WINDOW_H

#include <stddef.h>
#include <stdint.h>

/* Seconds the step functions spent, summed since the process started. */
typedef struct {
    double wait_s;    /* waiting for the loader's next batch */
    double exposed_s; /* waiting for gradient allreduces that backward did not hide */
    double step_s;    /* in trainer_step: forward, backward, allreduce, sums, update */
} StepTimes;

/* The steps since the previous training line. */
typedef struct {
    int64_t steps;
    double loss, top1, top5; /* sums of each step's global means (top-k as fractions) */
    double seconds;          /* wall time of these steps alone: what happens between
                              * steps (validation, checkpoints) is not in it */
    StepTimes start;         /* the run's counters when the window began */
} TrainWindow;

/* What a training line says about a window. */
typedef struct {
    int64_t steps;
    double loss;
    double top1, top5;    /* accuracy, fractions (the metrics records' top1/top5) */
    double img_per_s;     /* global */
    double compute_ms;    /* per step: trainer_step without the exposed allreduce wait */
    double data_wait;     /* shares of the steps' time */
    double comm;
    double eta_s;         /* to the end of the run; < 0: not known */
    int eta_has_validation; /* whether eta_s includes the validations still to come */
} TrainStats;

void window_begin(TrainWindow *w, StepTimes now);
/* One step: its global mean loss and top-k fractions, and how long it took. */
void window_add_step(TrainWindow *w, double loss, double top1, double top5, double seconds);
/* now: the run's counters at the end of the window. The ETA is left unknown. */
TrainStats window_stats(const TrainWindow *w, StepTimes now, int global_batch);

/* How many validations run at steps in [from, total_steps]: one after
 * every val_every-th epoch and one at the last step (val_every 0: none). */
int64_t validations_left(int64_t from, int64_t total_steps, int64_t steps_per_epoch, int val_every);
/* Seconds until the end: steps_left at step_s each, plus validations_left
 * at the mean of the validations done so far (validations_done of them
 * took validation_s in all). Sets *has_validation to whether the
 * validations are in the estimate: they cannot be before the first one
 * (nor need to be when none is left). */
double eta_seconds(int64_t steps_left, double step_s, int64_t validations_left,
                   int validations_done, double validation_s, int *has_validation);
/* "H:MM:SS" (hours grow as needed), or "?" for a negative or non-finite time. */
void format_duration(double seconds, char *out, size_t len);

#endif
