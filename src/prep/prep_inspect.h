/*
 * prep_inspect.h - reads what a dataset file (docs/design.md section 5) holds and
 * checks that its attributes, groups, dtypes and shapes are the documented
 * ones; `resnet_prep inspect` prints it. The reader is local and reports the
 * first mismatch in a Status naming the file, the object and what was
 * expected; prep_inspect_main is collective (rank 0 reads and prints).
 */
#ifndef RESNET_PREP_INSPECT_H
#define RESNET_PREP_INSPECT_H

#include <stdint.h>

#include <hdf5.h>

#include "error.h"

#define PREP_SPLITS 3 /* train, val, test */

typedef struct {
    int present;
    const char *name;   /* "train", "val", "test" */
    uint64_t n;         /* records */
    uint64_t dims[4];   /* raw: /<split>/images shape (N, H, W, C) */
    uint64_t jpeg_bytes; /* jpeg: length of /<split>/jpeg */
} PrepSplitInfo;

typedef struct {
    int version, num_classes;
    int raw;            /* encoding "raw", else "jpeg" */
    int channels;       /* length of mean and std */
    double mean[4], std[4];
    int nclass_names;   /* 0 when there is no /classes */
    char **class_names;
    PrepSplitInfo split[PREP_SPLITS];
} PrepInfo;

/* Opens path read-only and fills info; -1 with st set on the first
 * deviation from the format. Local; takes the h5 lock. */
int prep_info_read(const char *path, PrepInfo *info, Status *st);
/* Opens path read-only with HDF5, regular files only (never blocks on a
 * FIFO); -1 with st set ("no such file", "not an HDF5 file", ...). Local;
 * the caller holds the h5 lock. */
hid_t prep_info_file_open(const char *path, Status *st);
void prep_info_free(PrepInfo *info);

/* argv[0] is "inspect". Returns the exit code. */
int prep_inspect_main(int argc, char **argv);

#endif
