/*
 * trainer.h - the state of one resnet_dist run, shared by the driver's
 * files: set-up and restore (trainer.c), the step functions (train_step.h),
 * the step loop (train.c), what the run reports (train_report.h), its
 * checkpoints (train_ckpt.h) and --bench (train_bench.h). A Trainer holds
 * three parts: what the run was configured to do (fixed once set-up ends),
 * what it allocated (freed by trainer_free) and what it counts as it goes
 * (the step, the schedule's state, time spent; saved in checkpoints where it
 * decides the rest of the run). Collective: every rank calls these in the
 * same order.
 */
#ifndef RESNET_TRAINER_H
#define RESNET_TRAINER_H

#include <stdint.h>

#include "checkpoint.h"
#include "dataset.h"
#include "dist.h"
#include "ema.h"
#include "loader.h"
#include "lr_schedule.h"
#include "metrics.h"
#include "options.h"
#include "params.h"
#include "reducer.h"
#include "resnet.h"
#include "sgd.h"
#include "train_window.h"

/* The flags and what set-up resolved from them, the dataset and the ranks. */
typedef struct {
    Options opt;
    DistInfo dist;
    int channels, crop, num_classes, local_batch;
    char fingerprint[256];
    int64_t steps_per_epoch, total_steps;
    LrSchedule schedule; /* step counts filled in from the plan */
    SgdConfig sgd;
    int resize_size;       /* shorter side of the stored images, for checkpoints */
    CheckpointSpec source; /* --eval-only: what the checkpoint says (no class names) */
    char crop_from[4200];  /* what set --crop, for messages: "" (the flag) or the checkpoint */
    EmaConfig ema; /* decay 0: no moving average */
} TrainConfig;

/* What the run allocated and trainer_free releases. */
typedef struct {
    Dataset data;
    int have_data;
    Params params;
    Net *net;
    Net *eval_rest; /* for a split's last partial batch on this rank; made once */
    Reducer *reducer;
    Loader *loader; /* training batches, prefetched */
    Metrics metrics;
    int32_t *labels;       /* (local_batch) of the current step */
    int64_t *sample_index; /* (local_batch) epoch positions of this step's local samples */
    /* --mixup-alpha/--cutmix-alpha: (local_batch) each sample's partner label
     * and its weight in the target, of the current step */
    int32_t *partner_labels;
    float *partner_weights;
    float *synthetic_batch; /* --synthetic with mixing: the batch as made, mixed afresh each step */
} TrainResources;

/* Where the run is. Only the step loop and the functions it calls change it. */
typedef struct {
    int64_t step;      /* optimizer steps done */
    double lr;         /* rate of the next step */
    double plateau_lr; /* the plateau rule's rate, used after warmup */
    Plateau plateau;   /* settings (from the checkpoint on resume) and state */
    double best_metric;
    int validation_pending; /* the epoch that ended at step has not been validated yet */
    int overwrite_pending;  /* --overwrite: the earlier run's files go at the first checkpoint */
    double last_checkpoint_time;
    StepTimes times;        /* since this process started; never reset */
    int validations;        /* done by this process, and their seconds: for the ETA */
    double validation_s;
} TrainState;

typedef struct {
    TrainConfig cfg;
    TrainResources res;
    TrainState state;
} Trainer;

/* Sums over every rank's share of a split; the tta_ sums with --tta flip
 * (zero without). Doubles only: summed over the ranks as one array. */
typedef struct {
    double loss_sum;
    double top1, top5, count;
    double tta_loss_sum, tta_top1, tta_top5;
} EvalTotals;

/* From parsed options to a network ready to run: threads, dataset, output
 * folders, metrics file, plan, resume, and the start-up log. Errors in the
 * user's input end the job with the same code on every rank. */
void trainer_setup(Trainer *t);
/* Training inputs: the loader thread, or one random batch (--synthetic). */
void trainer_start_inputs(Trainer *t);
void trainer_free(Trainer *t);

#endif
