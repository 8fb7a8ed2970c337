/*
 * prep_idx.h - `resnet_prep idx`: MNIST-format IDX files (MNIST,
 * Fashion-MNIST, ...), gzipped or plain, to a raw dataset file [N, H, W, 1]
 * (or [N, H, W, C] for 4-d image files). The test set goes to /test; /val is
 * a copy of it, or with --val-split N the last N training images (then left
 * out of /train and of mean/std). Every rank reads the files (zlib reads
 * plain files too). Collective over MPI_COMM_WORLD; input errors exit 2.
 */
#ifndef RESNET_PREP_IDX_H
#define RESNET_PREP_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* An IDX file of unsigned bytes held in memory. */
typedef struct {
    int ndims;
    size_t dims[4];
    size_t count;    /* dims[0] */
    size_t item;     /* bytes per item: product of dims[1..] */
    uint8_t *data;   /* count * item bytes */
} IdxArray;

/* Reads and validates path (magic 0x0000 08 ndims, big-endian dims, exactly
 * the bytes the dims promise). flag names the option in messages. Local. */
int prep_idx_read(const char *flag, const char *path, IdxArray *out, Status *st);
void prep_idx_free(IdxArray *a);

/* argv[0] is "idx". Returns the exit code. */
int prep_idx_main(int argc, char **argv);

#endif
