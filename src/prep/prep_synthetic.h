/*
 * prep_synthetic.h - `resnet_prep synthetic`: random images whose class can
 * be learned (a per-class colour and stripe pattern under per-image phase
 * and noise). Every pixel is an integer function of (seed, split, index),
 * so the file is the same for any number of ranks and on any machine.
 * Collective over MPI_COMM_WORLD; bad flags exit 2.
 */
#ifndef RESNET_PREP_SYNTHETIC_H
#define RESNET_PREP_SYNTHETIC_H

#include <stddef.h>
#include <stdint.h>

#include "image_io.h"

typedef struct {
    int classes, size, channels;
    uint64_t seed;
} SynthSpec;

/* Image `index` of split `split` (0 train, 1 val, 2 test) into img (size x
 * size x channels); returns its label, index % classes. Local. */
int prep_synthetic_image(const SynthSpec *spec, int split, size_t index, Image *img);

/* argv[0] is "synthetic". Returns the exit code. */
int prep_synthetic_main(int argc, char **argv);

#endif
