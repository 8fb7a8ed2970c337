/*
 * eval_only.h - `resnet_dist --eval-only --init-from CKPT`: the model and
 * its input come from the checkpoint's root attributes
 * (docs/checkpoint-format.md), so --arch, --stem, --num-classes and --crop
 * are not needed; a flag given anyway must agree with the checkpoint, and
 * the dataset must have the checkpoint's classes. Older checkpoints and
 * torchvision exports lack some attributes: the flags (or their defaults)
 * stand in for those. Collective: every rank calls these at the same point
 * of the set-up; rank 0 reads the file and reports problems.
 */
#ifndef RESNET_EVAL_ONLY_H
#define RESNET_EVAL_ONLY_H

#include "trainer.h"

/* Before the dataset is opened: reads the checkpoint's description into
 * t->source and sets arch, stem and crop from it. */
void eval_only_adopt_checkpoint(Trainer *t);
/* After the dataset is opened: its classes must be the checkpoint's; a
 * different mean/std is a warning (the dataset's are used). */
void eval_only_check_data(Trainer *t);

#endif
