/*
 * prep_imagenet.h - `resnet_prep imagenet`: class folders of JPEG/PNG images
 * (ImageNet or any ImageFolder layout) to a dataset file, raw (resized and
 * centre-cropped) or jpeg (resized, re-encoded). Rank 0 scans the folders and
 * label files and broadcasts the lists; all ranks decode their share.
 * Collective over MPI_COMM_WORLD; input errors exit 2 on every rank.
 */
#ifndef RESNET_PREP_IMAGENET_H
#define RESNET_PREP_IMAGENET_H

/* argv[0] is "imagenet". Returns the exit code. */
int prep_imagenet_main(int argc, char **argv);

#endif
