/*
 * options.h - resnet_dist's flags: one struct, one parser, one usage text.
 * Every rank parses the same command line; problems are returned in a
 * Status so that the caller settles them collectively (status_agree).
 */
#ifndef RESNET_OPTIONS_H
#define RESNET_OPTIONS_H

#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "lr_schedule.h"

typedef struct {
    /* model */
    char arch[32];
    int arch_given;       /* --arch was given (else the default) */
    int num_classes;      /* 0: from the dataset (synthetic: 1000) */
    int small_stem;
    int stem_given;       /* --stem was given */
    int zero_init_residual;
    int winograd;         /* --conv-algo winograd */
    int sync_bn;          /* batch statistics over all ranks */
    double drop_path;     /* stochastic depth: the last block's drop probability */
    double wrn_dropout;   /* wrn-D-K: dropout between a block's convolutions */
    /* data */
    const char *data;
    int crop;             /* 0: the stored image size (synthetic: 224) */
    int in_channels;      /* synthetic only: 1 or 3 */
    int synthetic;
    const char *split;    /* evaluated split for --eval-only: val or test */
    int64_t max_pixels;   /* --max-pixels; 0: image_io's default */
    int aug;              /* AugMode, or -1: by stored image size (resolved at set-up) */
    double random_erase;  /* training images erased with this probability; 0: off */
    int loader_threads;
    int drop_last;
    /* schedule */
    int batch_size;       /* global */
    int epochs;
    int64_t max_steps;    /* 0: no limit */
    double lr;            /* used as given */
    double base_lr;       /* > 0: lr = base_lr * batch / 256 */
    double momentum;
    int nesterov;
    double weight_decay;
    int no_bn_decay;
    double label_smoothing;
    double mixup_alpha;   /* mixup's Beta(alpha, alpha); 0: off */
    double cutmix_alpha;  /* cutmix's Beta(alpha, alpha); 0: off */
    int val_every;
    LrSchedule schedule;  /* kind, warmup, milestones; step counts filled by the driver */
    double warmup_epochs;
    double warmup_start_lr; /* < 0: lr x 256 / batch (Goyal et al.), at most lr */
    Plateau plateau;      /* settings only; state starts fresh */
    int plateau_on_loss;  /* metric val_loss (mode min) instead of val_top1 */
    /* weight averaging and test-time augmentation */
    double model_ema;     /* EMA decay; 0: no average kept */
    int model_ema_every;  /* update after every N-th optimizer step */
    int model_ema_eval;   /* validation, plateau rule and best.h5 on the average */
    int init_from_ema;    /* --init-from loads /model_ema into the weights */
    int tta_flip;         /* evaluation also averages each image with its mirror */
    uint64_t seed;
    int threads;          /* 0: OMP_NUM_THREADS, else cores / local ranks */
    /* checkpoints and logs */
    const char *init_from;
    const char *resume;   /* path or "auto" */
    const char *checkpoint_dir;
    int checkpoint_every; /* epochs; 0: only at the end and on request */
    double checkpoint_minutes; /* 0: off */
    int keep;             /* step checkpoints kept; 0: all */
    int overwrite;        /* a fresh run may replace the checkpoints in checkpoint_dir */
    double bucket_mb;
    int check_every;      /* steps between parameter checksums; 0: start and resume only */
    double stall_timeout; /* seconds without progress before the job is ended; 0: off */
    int mllog;
    int log_every;
    int progress;         /* live progress line: -1 auto, 1 bar, 0 lines only */
    const char *metrics;
    /* modes */
    int eval_only;
    int bench;
    int bench_steps, bench_warmup;
    int dry_run;
    int show_help, show_version;
    int list_archs;       /* print the architectures and exit */
    const char *command_line;
} Options;

void options_defaults(Options *o);
/* Parses and validates argv; sets st (code 2) on the first problem. */
void options_parse(Options *o, int argc, char **argv, Status *st);
void options_usage(FILE *out);

#endif
