/*
 * dataset.h - the HDF5 dataset format (docs/design.md section 5, version 1):
 * opening and validating a file, reading labels, and reading one image at
 * a time (dataset_read_image; the loader crops, augments and normalises for
 * training and evaluation alike). Raw uint8 [N, H, W, C] images and
 * JPEG-encoded splits (decoded by image_io, the one decoder, under its pixel
 * limit) are both read.
 *
 * Local: each rank opens its own read-only handle. A Dataset is used by one
 * thread at a time; HDF5 calls are serialised by h5_lock() against the other
 * threads' HDF5 use. Problems with the user's file are returned in a Status
 * (code EXIT_USAGE) naming the file, the dataset and what was expected; the
 * caller settles them collectively with status_agree().
 */
#ifndef RESNET_DATASET_H
#define RESNET_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include <hdf5.h>

#include "error.h"
#include "image_io.h"
#include "normalise.h"

#define DATASET_VERSION 1
#define DATASET_MAX_CHANNELS 3

typedef enum { SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST, SPLIT_COUNT } DatasetSplit;
typedef enum { ENCODING_RAW, ENCODING_JPEG } DatasetEncoding;

typedef struct {
    int present;
    int64_t count;
    int height, width;    /* raw: every image's size; jpeg: 0 (sizes vary) */
    int64_t jpeg_bytes;   /* jpeg: length of /<split>/jpeg */
    hid_t images;         /* raw: /<split>/images (N, H, W, C) uint8 */
    hid_t jpeg;           /* jpeg: /<split>/jpeg (total_bytes) uint8 */
    int64_t *offsets;     /* jpeg: (N + 1) byte offsets, validated */
    int32_t *labels;      /* (N), each in [0, num_classes) */
} DatasetPart;

typedef struct {
    char path[4096];
    hid_t file;
    int num_classes;
    int channels;          /* 1 (grey) or 3 (RGB) */
    int height, width;     /* the training split's raw size; 0 for jpeg */
    DatasetEncoding encoding;
    double mean[DATASET_MAX_CHANNELS], std[DATASET_MAX_CHANNELS]; /* pixel/255 units */
    DatasetPart part[SPLIT_COUNT];
    char **class_names;    /* /classes, label -> name; NULL when the file has none */
    int num_class_names;   /* num_classes, or 0 */
    Normaliser norm;       /* pixels to network input with mean and std */
    int64_t file_bytes;    /* the file's size, for bounding declared sizes */
    uint8_t *bytes;        /* header reads of the size check, grown on demand */
    size_t bytes_cap;
} Dataset;

/* Opens path and validates everything: version, num_classes, mean/std of
 * length C with std > 0, encoding, /train and /val (and /test if present)
 * with their types and shapes, and every label. Refuses (via h5util)
 * external links, external raw storage and virtual datasets, and declared
 * sizes the file or the machine cannot hold (see dataset.c). Returns 0, or
 * st->code with d closed. Local. */
int dataset_open(Dataset *d, const char *path, Status *st);
void dataset_close(Dataset *d);

/* "train", "val", "test" */
const char *dataset_split_name(DatasetSplit split);
/* Images in split (0 when an optional split is absent). */
int64_t dataset_count(const Dataset *d, DatasetSplit split);
/* The labels of split, (N), already validated. */
const int32_t *dataset_labels(const Dataset *d, DatasetSplit split);

/* Start-up check that every image of split is at least min_size x min_size
 * and within the pixel limit, so that reading it later cannot fail on its
 * size: raw splits by their shape, JPEG splits by each record's header (a
 * few KB read per image, nothing decoded). Ranks share the work: this rank
 * checks its contiguous share [rank*N/nranks, (rank+1)*N/nranks), so after
 * status_agree (lowest failing rank) the message names the first offending
 * index. Returns 0, or st->code naming the file, split and index. Local. */
int dataset_check_image_sizes(Dataset *d, DatasetSplit split, int min_size, int rank,
                              int nranks, Status *st);

/* A cheap identity for checkpoints: encoding, classes, channels, counts,
 * sizes and an FNV-1a 64 hash of every split's labels. Moving or renaming
 * the file keeps it; changing the data or its order does not. Local. */
void dataset_fingerprint(const Dataset *d, char *out, size_t len);

/* ------------------------------------------------------------------ */
/* one image at a time (the training loader)                           */

/* One stored image as uint8 (h, w, c) interleaved, with the buffers and the
 * JPEG decoder that read it. One per thread; zero-initialise, release with
 * dataset_image_free. */
typedef struct {
    int h, w, c;
    uint8_t *px;      /* (h, w, c) */
    size_t px_cap;
    uint8_t *bytes;   /* jpeg: the compressed record */
    size_t bytes_cap;
    ImageCodec *codec; /* made on first use */
} DatasetImage;

/* Reads image `index` of split into img: the stored pixels (raw) or the
 * decoded JPEG record (RGB or grey, as the file's channels say). Several
 * threads may call this at once on one Dataset, each with its own img: the
 * Dataset is only read and HDF5 calls take h5_lock(). Returns 0, or
 * st->code (EXIT_USAGE) with a message naming the file, the split and the
 * index when the read fails or the record does not decode. Local. */
int dataset_read_image(Dataset *d, DatasetSplit split, int64_t index, DatasetImage *img,
                       Status *st);
void dataset_image_free(DatasetImage *img);

/* Reopens split's image data (raw images or jpeg bytes) with a chunk cache
 * for reading single images in random order, and returns its size in bytes:
 *   - unfiltered chunks: 0, so HDF5 reads exactly the requested bytes
 *     (the operating system's page cache does the caching);
 *   - filtered (compressed) chunks: budget, but at least the chunks of a
 *     few images and at most the whole dataset, so a chunk holding several
 *     images is decompressed once while it stays in the cache (w0 = 1:
 *     chunks read in full go first).
 * Not thread-safe: call before readers start. Local; fails locally. */
size_t dataset_set_random_access(Dataset *d, DatasetSplit split, size_t budget);

#endif
