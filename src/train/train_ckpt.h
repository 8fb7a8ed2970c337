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
/* Before anything is written, collectively: a fresh run (no --resume) in a
 * --checkpoint-dir that holds checkpoints stops with exit 2 unless
 * --overwrite (then they go at this run's first checkpoint; --dry-run only
 * warns); temporaries left by killed writes are removed. */
void trainer_prepare_checkpoint_dir(Trainer *t);
/* name: a file in the checkpoint directory, or NULL for the step's own
 * step-NNNNNNNN.h5 (older ones beyond --keep are deleted). why: for the
 * log. Returns 0, or on every rank EXIT_NONFINITE when a weight or momentum
 * value is not finite: then nothing is written and rank 0 says which. */
int trainer_checkpoint(Trainer *t, const char *name, const char *why);
/* Rank 0's clock decides --checkpoint-minutes; the step reduction tells everyone. */
int trainer_checkpoint_due(const Trainer *t);

#endif
