/*
 * lr_schedule.h - PyTorch's ReduceLROnPlateau with its exact rules, the
 * ResNet paper's "divide by 10 when the error plateaus". Decided on rank 0
 * from globally reduced metrics and broadcast by the caller; the functions
 * here are local and deterministic.
 */
#ifndef RESNET_LR_SCHEDULE_H
#define RESNET_LR_SCHEDULE_H

#include <stdint.h>

typedef enum { PLATEAU_MIN, PLATEAU_MAX } PlateauMode;
typedef enum { THRESHOLD_REL, THRESHOLD_ABS } ThresholdMode;

/* torch.optim.lr_scheduler.ReduceLROnPlateau, one parameter group. */
typedef struct {
    /* settings */
    PlateauMode mode;
    double factor;     /* 0.1 */
    int patience;      /* 10 */
    double threshold;  /* 1e-4 */
    ThresholdMode threshold_mode;
    int cooldown;      /* 0 */
    double min_lr;     /* 0 */
    double eps;        /* 1e-8 */
    /* state, saved in checkpoints */
    double best;
    int num_bad_epochs;
    int cooldown_counter;
    int64_t last_epoch;
} Plateau;

/* PyTorch's defaults for the given mode. */
void plateau_init(Plateau *s, PlateauMode mode);
/* One scheduler step on a validation metric; returns the new learning rate
 * (equal to lr when unchanged). */
double plateau_step(Plateau *s, double metric, double lr);
int plateau_is_better(const Plateau *s, double a, double best);

#endif
