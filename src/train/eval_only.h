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

#include <stddef.h>

#include "checkpoint.h"
#include "dataset.h"
#include "dist.h"
#include "options.h"

/* Before the dataset is opened: reads o->init_from's description into
 * source (without class names) and sets o's arch, stem and crop from it;
 * crop_from then names what set the crop, for messages ("" when the
 * checkpoint has no input_size). */
void eval_only_adopt_checkpoint(Options *o, const DistInfo *dist, CheckpointSpec *source,
                                char *crop_from, size_t crop_from_len);
/* After the dataset is opened: its classes (num_classes) must be the
 * checkpoint's; a different mean/std is a warning (the dataset's are used). */
void eval_only_check_data(const Options *o, const CheckpointSpec *source, const Dataset *data,
                          int num_classes);

#endif
