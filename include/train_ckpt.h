/*
 * train_ckpt.h - when and where a run writes its checkpoints: step-NNNNNNNN.h5
 * with --keep pruning, best.h5, and the --checkpoint-minutes clock. Rank 0
 * writes; every rank calls at the same step.
 */
#ifndef RESNET_TRAIN_CKPT_H
#define RESNET_TRAIN_CKPT_H

#include "trainer.h"

/* mkdir -p; returns 0 or -1 with errno set. */
int make_dirs(const char *path);
/* name: a file in the checkpoint directory, or NULL for the step's own
 * step-NNNNNNNN.h5 (older ones beyond --keep are deleted). why: for the log. */
void trainer_checkpoint(Trainer *t, const char *name, const char *why);
/* Rank 0's clock decides --checkpoint-minutes; the step reduction tells everyone. */
double trainer_checkpoint_due(const Trainer *t);

#endif
