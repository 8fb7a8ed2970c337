/*
 * prep_cifar.h - `resnet_prep cifar10` and `resnet_prep cifar100`: the
 * binary versions of CIFAR to a raw dataset file (32x32x3 HWC RGB uint8).
 * The test set goes to /test; /val is a copy of it, or with --val-split N
 * the last N training images (then left out of /train and of mean/std).
 * Collective over MPI_COMM_WORLD; input errors exit 2 on every rank.
 */
#ifndef RESNET_PREP_CIFAR_H
#define RESNET_PREP_CIFAR_H

/* argv[0] is the subcommand name. Return the exit code. */
int prep_cifar10_main(int argc, char **argv);
int prep_cifar100_main(int argc, char **argv);

#endif
