/*
 * train_step.h - one training step: the next batch into the network, then
 * forward, loss, backward with the overlapped gradient allreduce, the
 * step's global sums, the SGD update and the weights' moving average. Used by the step loop (train.c)
 * and --bench (train_bench.c). Collective: every rank calls them in step.
 */
#ifndef RESNET_TRAIN_STEP_H
#define RESNET_TRAIN_STEP_H

#include "trainer.h"

/* What trainer_step sums over the ranks each step. */
enum {
    STEP_LOSS,      /* loss sum over the global batch */
    STEP_TOP1,      /* top-1 and top-5 hits */
    STEP_TOP5,
    STEP_NONFINITE, /* ranks that saw a non-finite loss */
    STEP_USR1,      /* ranks with a SIGUSR1, a SIGTERM/SIGINT, a due checkpoint */
    STEP_TERM,
    STEP_CKPT_DUE,
    STEP_NVALUES
};

/* What this rank adds to the sums besides its share of the batch. */
typedef struct {
    int usr1, term; /* a stop signal arrived */
    int ckpt_due;   /* --checkpoint-minutes elapsed (rank 0's clock) */
} StepRequests;

/* The next training batch into the network input; its wait goes to
 * t->state.times.wait_s. */
void trainer_read_train(Trainer *t);
/* One optimizer step at t->state.lr, then the moving average when due;
 * both are skipped when a rank saw a non-finite loss. out: the global sums
 * above. */
void trainer_step(Trainer *t, StepRequests req, double out[STEP_NVALUES]);

#endif
