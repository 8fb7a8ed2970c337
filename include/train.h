/*
 * train.h - resnet_dist's driver: data-parallel training with validation,
 * the plateau schedule and checkpoints; also --eval-only, --bench and
 * --dry-run. Collective: every rank calls train_main with the same argv.
 */
#ifndef RESNET_TRAIN_H
#define RESNET_TRAIN_H

/* Returns the process exit code (identical on every rank). */
int train_main(int argc, char **argv);

#endif
