/*
 * lr_schedule.h - learning-rate schedules: linear warmup (Goyal et al.),
 * then PyTorch's ReduceLROnPlateau with its exact rules (the ResNet paper's
 * "divide by 10 when the error plateaus"), step decay at given epochs, or
 * cosine decay. Plateau decisions are taken on rank 0 from globally reduced
 * metrics and broadcast by the caller; everything here is local and
 * deterministic, so step-based rates agree on every rank by construction.
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

typedef enum { SCHEDULE_PLATEAU, SCHEDULE_STEP, SCHEDULE_COSINE } ScheduleKind;

#define LR_MAX_MILESTONES 16

typedef struct {
    ScheduleKind kind;
    double lr;              /* the peak rate, reached after warmup */
    double warmup_start_lr; /* rate of the first warmup step */
    int64_t warmup_steps;
    int64_t steps_per_epoch, total_steps;
    int milestones[LR_MAX_MILESTONES]; /* step schedule: epochs where lr *= gamma */
    int n_milestones;
    double gamma;
    double min_lr;          /* cosine floor */
} LrSchedule;

/* Rate for global step `step` (0-based). plateau_lr is the plateau rule's
 * current rate, used after warmup by SCHEDULE_PLATEAU. */
double lr_schedule_at(const LrSchedule *s, int64_t step, double plateau_lr);
/* Whether the plateau rule may act at this step (never during warmup). */
int lr_schedule_plateau_active(const LrSchedule *s, int64_t step);
/* Parses "30,60,80" into milestones; returns 0 on a malformed list. */
int lr_schedule_parse_milestones(LrSchedule *s, const char *text);

#endif
