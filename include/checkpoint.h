/*
 * checkpoint.h - checkpoints as HDF5 files that PyTorch users can read
 * (docs/checkpoint-format.md): /model/<name> with torchvision's state_dict
 * keys, PyTorch shapes and plain layouts, /optimizer/momentum/<name>, the
 * weights' moving average as /model_ema/<name> when the run keeps one, the
 * training position as root attributes and the plateau scheduler's state
 * in /scheduler. Called by the training loop (write, resume) and by the
 * tools (--eval-only, fine-tuning from a torchvision export).
 *
 * Every function here is local. Rank 0 writes; a local I/O failure while
 * writing aborts the job (fail_local). Any rank may read: problems with the
 * user's file never abort, they are returned in a Status (code EXIT_USAGE)
 * for the caller to settle collectively with status_agree().
 */
#ifndef RESNET_CHECKPOINT_H
#define RESNET_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "lr_schedule.h"
#include "params.h"

#define CHECKPOINT_FORMAT_VERSION 1

typedef enum {
    CKPT_WEIGHTS_ONLY, /* /model only (also torchvision exports); meta untouched */
    CKPT_FULL,         /* /model, /optimizer/momentum, root attributes, /scheduler, and
                          /model_ema when the file has it and p has EMA buffers */
    CKPT_EMA_WEIGHTS,  /* /model_ema into the weights (--init-from-ema); meta untouched */
} CheckpointPart;

/* Everything besides tensors that a resume needs, plus provenance. */
typedef struct {
    char arch[32];
    int num_classes;
    int64_t epoch;      /* the epoch the next step belongs to (0-based) */
    int64_t epoch_step; /* steps of that epoch already done */
    int64_t step;       /* global optimizer steps done */
    double lr;          /* learning rate for the next step */
    int64_t global_batch;
    uint64_t seed;
    int world_size;     /* ranks that wrote it; a resume may use another count */
    double best_metric; /* best validation metric so far (best.h5); NaN: none yet */
    char dataset_fingerprint[256];
    char version[256];  /* program and libraries; empty: checkpoint_write fills it */
    char command_line[2048];
    int has_plateau;    /* whether /scheduler is written / was found */
    Plateau plateau;
    int validation_pending; /* written at an epoch's end before its validation ran */
    /* The model's input, for evaluation and prediction without flags
     * (docs/checkpoint-format.md, "The model and its input"). */
    int small_stem;
    int input_size;   /* the centre crop the network sees; 0: not written */
    int resize_size;  /* shorter side before the centre crops; 0: not written */
    int channels;     /* length of mean and std; 0: not written (synthetic data) */
    double mean[3], std[3]; /* pixel/255 units, as the dataset's */
    int num_class_names;    /* 0: none written */
    const char *const *class_names; /* written only: label -> name */
    double ema_decay;   /* written as /model_ema attributes (information only) */
    int ema_every;
    int has_ema;        /* read: /model_ema was loaded into p's EMA buffers */
} CheckpointMeta;

/* What a checkpoint says about its model and input: the root attributes
 * that describe it, each optional (older checkpoints and torchvision
 * exports lack some or all of them). */
typedef struct {
    char arch[32];          /* "" when absent */
    int num_classes;        /* 0 when absent */
    int small_stem;         /* -1 when absent */
    int input_size, resize_size, channels; /* 0 when absent */
    double mean[3], std[3];
    int64_t step;           /* -1 when absent */
    int64_t epoch;          /* of the last step done, 0-based as the training lines count
                             * (the `epoch` attribute names the next step's); -1 when absent */
    int num_class_names;    /* 0 when absent */
    char **class_names;     /* label -> name; NULL when absent */
} CheckpointSpec;

/* Class names beyond this many are not written: an HDF5 attribute holds at
 * most 64 KiB, 16 bytes per variable-length string. */
#define CHECKPOINT_CLASS_NAMES_MAX 4000

/* Zeroes m; best_metric NaN, no plateau. */
void checkpoint_meta_init(CheckpointMeta *m);

/* Writes path atomically (with /model_ema when p has EMA buffers): path.tmp is created exclusively (a stale one is
 * removed first, a symbolic link refused), written, flushed, closed and
 * fsynced, then renamed over path. Returns 0, or EXIT_NONFINITE with st set
 * and nothing written when a weight, BN statistic or momentum value is NaN
 * or infinite. Local (rank 0); aborts on I/O failure after removing the
 * partial path.tmp. */
int checkpoint_write(const char *path, const Params *p, const CheckpointMeta *m, Status *st);

/* Loads what into p (and m for CKPT_FULL; m may be NULL for weights only).
 * Every tensor the model has must be present with its PyTorch shape and
 * float32 type (num_batches_tracked: an integer scalar, optional for
 * weights only) and hold finite values (running variances >= 0); tensors
 * the model lacks are ignored with a warning. For CKPT_FULL every
 * attribute must have its type and lie in its range
 * (docs/checkpoint-format.md).
 * Returns 0, or st->code with one line in st->msg naming the file, the
 * tensor or attribute and both shapes/types. On failure p may be partly
 * loaded. Local. */
int checkpoint_read(const char *path, Params *p, CheckpointMeta *m, CheckpointPart what,
                    Status *st);

/* Reads the attributes that describe the model and its input (arch,
 * num_classes, stem, input_size, resize_size, mean, std, class_names, step,
 * epoch), each only when present; nothing else is read. A present
 * attribute must have its type and lie in its range. Returns 0, or st->code
 * naming the file and the attribute; free s with checkpoint_spec_free
 * either way. Local. */
int checkpoint_read_spec(const char *path, CheckpointSpec *s, Status *st);
void checkpoint_spec_free(CheckpointSpec *s);

/* Cheap test used by --resume auto: opens as HDF5 (a truncated file does
 * not) and has the root attributes and the /model group. Local. */
int checkpoint_is_valid(const char *path);

/* A step checkpoint in a directory. */
#define CHECKPOINT_NAME_MAX 32
typedef struct {
    int64_t step;
    char name[CHECKPOINT_NAME_MAX]; /* step-NNNNNNNN.h5 as found */
} CheckpointFile;

/* The step-<digits>.h5 files of dir, highest step first (by number: the
 * zero padding stops at 8 digits). 0 with *files to free, or -1 with errno
 * set when dir cannot be read. Local. */
int checkpoint_list(const char *dir, CheckpointFile **files, size_t *count);

/* Deletes all but the newest keep step checkpoints of dir up to step (the
 * one just written), ordered by step number. Files of later steps (left by
 * a run resumed from an earlier checkpoint) are not counted: the run
 * overwrites them when it gets there. keep 0 keeps all. Local. */
void checkpoint_prune(const char *dir, int64_t step, int keep);

/* Whether name is a checkpoint's temporary: step-<digits>.h5.tmp or best.h5.tmp. */
int checkpoint_is_temporary(const char *name);

/* Finds the valid dir/step-NNNNNNNN.h5 with the highest step, skipping
 * invalid ones with a warning that names them. Returns 1 and the path in
 * out; 0 when there is none (also when dir does not exist); or st->code when
 * dir cannot be read. Local. */
int checkpoint_find_latest(const char *dir, char *out, size_t outlen, Status *st);

/* dir/step-00001234.h5 */
void checkpoint_path(char *out, size_t len, const char *dir, int64_t step);

#endif
