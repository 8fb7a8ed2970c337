/*
 * prep_writer.h - writes a dataset file (docs/design.md section 5, version 1) with
 * parallel HDF5 from every rank of MPI_COMM_WORLD, for all prep converters.
 *
 * A converter describes each split as `count` candidate records and a load
 * callback; the writer walks the candidates in rounds. In every round rank r
 * loads its contiguous share of the round's candidates, the good records'
 * positions come from MPI_Exscan of counts and byte sizes, the datasets are
 * extended collectively and each rank writes its hyperslab. So records land
 * in candidate order minus skipped ones, whatever the number of ranks, and
 * memory stays bounded by one round. Mean/std come from exact histograms of
 * the training pixels (prep_stats). The file is written as a temporary file
 * (prep_output.h) and renamed to OUT by rank 0 only after every rank
 * closed it.
 *
 * Every function here is collective over MPI_COMM_WORLD. Input errors that a
 * load callback reports (and skipped images under --strict) remove the
 * temporary file and exit all ranks with code 2 and one message on rank 0; a
 * failed write (a full disk) does the same with code 1.
 */
#ifndef RESNET_PREP_WRITER_H
#define RESNET_PREP_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "image_io.h"

typedef enum { PREP_RAW, PREP_JPEG } PrepEncoding;

typedef struct {
    PrepEncoding encoding;
    /* raw: the stored image shape (H, W, C). jpeg: h = w = the shorter side
     * of the stored images (sizes the rounds), c = channels for mean/std. */
    int h, w, c;
    int num_classes;
    const char *const *classes; /* NULL, or num_classes names, index = label */
} PrepLayout;

/* One record produced by a load callback. image holds the pixels exactly as
 * stored (raw) or as encoded (jpeg), used for mean/std; its buffer belongs to
 * the writer and is reused. jpeg is malloc'd by the callback, freed here. */
typedef struct {
    int32_t label;
    Image image;
    uint8_t *jpeg;
    size_t jpeg_size;
} PrepRecord;

typedef enum {
    PREP_LOAD_OK,    /* rec filled */
    PREP_LOAD_SKIP,  /* unusable image: left out with a warning (error under --strict) */
    PREP_LOAD_ERROR, /* input wrong in a way that stops the run (exit 2) */
} PrepLoad;

/* Loads candidate `index` (0-based within the split). On SKIP or ERROR, why
 * gets one line naming the input file and what is wrong with it. Runs on
 * the rank that owns the candidate; must not call collectives. */
typedef PrepLoad (*PrepLoadFn)(void *ctx, size_t index, PrepRecord *rec, char *why,
                               size_t why_len);

typedef struct {
    const char *name; /* "train", "val" or "test" */
    size_t count;     /* candidates */
    int is_train;     /* its pixels make mean/std */
    PrepLoadFn load;
    void *ctx;
} PrepSplit;

typedef struct PrepWriter PrepWriter;

/* Checks that OUT can be created (exit 2 if not; an existing OUT only with
 * force), creates the temporary file and starts the progress report over
 * `total` candidates. */
PrepWriter *prep_writer_open(const char *out_path, const PrepLayout *layout, uint64_t total,
                             int strict, int force);

/* Converts one split into /<name>. Exit 2 if no record survives. */
void prep_writer_split(PrepWriter *w, const PrepSplit *split);

/* Writes the root attributes and /classes, closes, renames to OUT, prints
 * the summary on rank 0 and frees w. */
void prep_writer_finish(PrepWriter *w);

#endif
