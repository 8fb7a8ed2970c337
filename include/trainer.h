/*
 * trainer.h - the state of one resnet_dist run, shared by the driver's
 * files: set-up and restore (trainer.c), the step loop (train.c), what the
 * run reports (train_report.h), its checkpoints (train_ckpt.h) and --bench
 * (train_bench.h). Collective: every rank calls these in the same order.
 */
#ifndef RESNET_TRAINER_H
#define RESNET_TRAINER_H

#include <stdint.h>

#include "checkpoint.h"
#include "dataset.h"
#include "dist.h"
#include "loader.h"
#include "lr_schedule.h"
#include "metrics.h"
#include "options.h"
#include "params.h"
#include "reducer.h"
#include "resnet.h"
#include "sgd.h"

typedef struct {
    Options opt;
    DistInfo dist;
    Dataset data;
    int have_data;
    int channels, crop, num_classes, local_batch;
    Params params;
    Net *net;
    Metrics metrics;
    SgdConfig sgd;
    Reducer *reducer;
    Loader *loader; /* training batches, prefetched */
    Net *eval_rest; /* for a split's last partial batch on this rank; made once */
    LrSchedule schedule;
    double lr;         /* rate of the next step */
    double plateau_lr; /* the plateau rule's rate, used after warmup */
    int64_t step, steps_per_epoch, total_steps;
    Plateau plateau;
    double best_metric;
    double last_checkpoint_time;
    int overwrite_pending;  /* --overwrite: the earlier run's files go at the first checkpoint */
    int validation_pending; /* the epoch that ended at step has not been validated yet */
    /* accumulated since the last progress line */
    double wait_s, exposed_s, step_s;
    char fingerprint[256];
    int32_t *labels;
    int64_t *sample_index; /* epoch positions of this step's local samples */
    int resize_size;       /* shorter side of the stored images, for checkpoints */
    CheckpointSpec source; /* --eval-only: what the checkpoint says (no class names) */
    char crop_from[4200];  /* what set --crop, for messages: "" (the flag) or the checkpoint */
} Trainer;

/* Sums over every rank's share of a split. */
typedef struct {
    double loss_sum;
    double top1, top5, count;
} EvalTotals;

/* What trainer_step reduces over the ranks each step. */
enum { STEP_LOSS, STEP_TOP1, STEP_NONFINITE, STEP_USR1, STEP_TERM, STEP_CKPT_DUE, STEP_NVALUES };

/* From parsed options to a network ready to run: threads, dataset, output
 * folders, metrics file, plan, resume, and the start-up log. Errors in the
 * user's input end the job with the same code on every rank. */
void trainer_setup(Trainer *t);
/* Training inputs: the loader thread, or one random batch (--synthetic). */
void trainer_start_inputs(Trainer *t);
void trainer_free(Trainer *t);

/* The next training batch into the network input (train.c). */
void trainer_read_train(Trainer *t);
/* One optimizer step. out: the global loss sum and top-1 hits, and how many
 * ranks saw a non-finite loss, a SIGUSR1 or a SIGTERM/SIGINT (train.c). */
void trainer_step(Trainer *t, double out[STEP_NVALUES]);

#endif
