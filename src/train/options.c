/* options.c - getopt_long table, defaults, validation and --help text. */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "resnet.h"

enum {
    OPT_ARCH = 1000, OPT_NUM_CLASSES, OPT_STEM, OPT_ZERO_INIT, OPT_DATA, OPT_CROP,
    OPT_IN_CHANNELS, OPT_SYNTHETIC, OPT_SPLIT, OPT_BATCH, OPT_EPOCHS, OPT_MAX_STEPS, OPT_LR,
    OPT_BASE_LR, OPT_MOMENTUM, OPT_NESTEROV, OPT_WD, OPT_NO_BN_DECAY, OPT_SMOOTHING,
    OPT_VAL_EVERY, OPT_PLATEAU_METRIC, OPT_PLATEAU_FACTOR, OPT_PLATEAU_PATIENCE,
    OPT_PLATEAU_THRESHOLD, OPT_PLATEAU_THRESHOLD_MODE, OPT_PLATEAU_COOLDOWN, OPT_MIN_LR,
    OPT_SEED, OPT_THREADS, OPT_INIT_FROM, OPT_RESUME, OPT_CKPT_DIR, OPT_LOG_EVERY, OPT_METRICS,
    OPT_EVAL_ONLY, OPT_BENCH, OPT_LR_SCHEDULE, OPT_LR_STEPS, OPT_LR_GAMMA, OPT_WARMUP_EPOCHS,
    OPT_WARMUP_START_LR, OPT_CKPT_EVERY, OPT_CKPT_MINUTES, OPT_KEEP, OPT_BUCKET_MB,
    OPT_CHECK_EVERY, OPT_MLLOG, OPT_SYNC_BN, OPT_PROGRESS, OPT_AUG, OPT_LOADER_THREADS,
    OPT_NO_DROP_LAST, OPT_BENCH_STEPS, OPT_BENCH_WARMUP, OPT_DRY_RUN, OPT_HELP,
    OPT_VERSION, OPT_WRN_DROPOUT, OPT_DROP_PATH, OPT_LIST_ARCHS, OPT_CONV_ALGO, OPT_DROP_LAST,
    OPT_MAX_PIXELS, OPT_OVERWRITE, OPT_STALL_TIMEOUT, OPT_MODEL_EMA, OPT_MODEL_EMA_EVERY,
    OPT_MODEL_EMA_EVAL, OPT_INIT_FROM_EMA, OPT_TTA,
    OPT_RANDOM_ERASE,
    OPT_MIXUP_ALPHA, OPT_CUTMIX_ALPHA,
};

typedef struct {
    const char *name;
    int has_arg;
    int id;
    const char *metavar;
    const char *help; /* ends with the default in brackets where there is one */
    const char *group;
} OptionSpec;

static const OptionSpec SPECS[] = {
    {"arch", 1, OPT_ARCH, "NAME", "network architecture (see --help list below) [resnet50]", "Model"},
    {"num-classes", 1, OPT_NUM_CLASSES, "K", "classifier outputs [from the dataset; synthetic: 1000]", "Model"},
    {"stem", 1, OPT_STEM, "KIND", "imagenet (7x7/2 conv + max-pool) or small (3x3/1 conv, no pool; 28-64 px) [imagenet]", "Model"},
    {"zero-init-residual", 0, OPT_ZERO_INIT, NULL, "start each residual block as the identity (Goyal et al.): its last BN gamma at 0; pre-activation blocks: its last conv's weights [off]", "Model"},
    {"conv-algo", 1, OPT_CONV_ALGO, "KIND", "direct, or winograd for 3x3 stride-1 convolutions (faster on AVX-512, rounds differently; docs/performance.md) [direct]", "Model"},
    {"sync-bn", 0, OPT_SYNC_BN, NULL, "BatchNorm statistics over the global batch instead of per rank [off]", "Model"},
    {"drop-path", 1, OPT_DROP_PATH, "P", "stochastic depth: in training, block l of L skips its residual branch per sample with probability P*l/L [0]", "Model"},
    {"wrn-dropout", 1, OPT_WRN_DROPOUT, "P", "wrn-D-K only: dropout probability between the two convolutions of each block [0]", "Model"},
    {"data", 1, OPT_DATA, "FILE.h5", "dataset in the resnet-dist HDF5 format [none]", "Data"},
    {"crop", 1, OPT_CROP, "S", "S x S network input: the training crop (--aug) and the centre crop evaluated; needed for JPEG datasets [stored size; synthetic: 224]", "Data"},
    {"in-channels", 1, OPT_IN_CHANNELS, "C", "input channels with --synthetic: 1 or 3 [3]", "Data"},
    {"synthetic", 0, OPT_SYNTHETIC, NULL, "train on random tensors, no dataset file [off]", "Data"},
    {"aug", 1, OPT_AUG, "KIND", "training augmentation: rrc, paper, cifar or none [cifar up to 64 px, else rrc]", "Data"},
    {"random-erase", 1, OPT_RANDOM_ERASE, "P", "random erasing in training (torchvision's RandomErasing after Normalize): with probability P a rectangle of 2-33% of the crop, aspect 0.3-3.3, is set to the dataset mean in all channels; any --aug; 0: off [0]", "Data"},
    {"loader-threads", 1, OPT_LOADER_THREADS, "N", "threads decoding and augmenting ahead of the step [1]", "Data"},
    {"drop-last", 0, OPT_DROP_LAST, NULL, "drop the last partial training batch of an epoch, as PyTorch's drop_last=True [on]", "Data"},
    {"no-drop-last", 0, OPT_NO_DROP_LAST, NULL, "keep the last partial batch of an epoch, padded from its start [dropped]", "Data"},
    {"max-pixels", 1, OPT_MAX_PIXELS, "N", "refuse images whose header declares more than N pixels (width x height; decompression bombs) [67108864 = 64 Mpixel]", "Data"},
    {"split", 1, OPT_SPLIT, "NAME", "split evaluated by --eval-only: val or test [val]", "Data"},
    {"batch-size", 1, OPT_BATCH, "B", "global batch size, split evenly over ranks [256]", "Optimisation"},
    {"epochs", 1, OPT_EPOCHS, "N", "epochs to train [90]", "Optimisation"},
    {"max-steps", 1, OPT_MAX_STEPS, "N", "stop after N global optimizer steps in total [no limit]", "Optimisation"},
    {"lr", 1, OPT_LR, "X", "learning rate, used as given [0.1]", "Optimisation"},
    {"base-lr", 1, OPT_BASE_LR, "X", "instead of --lr: X * global batch / 256 (linear scaling) [unset]", "Optimisation"},
    {"momentum", 1, OPT_MOMENTUM, "X", "SGD momentum [0.9]", "Optimisation"},
    {"nesterov", 0, OPT_NESTEROV, NULL, "Nesterov momentum [off]", "Optimisation"},
    {"weight-decay", 1, OPT_WD, "X", "L2 weight decay added to the gradient [1e-4]", "Optimisation"},
    {"no-bn-decay", 0, OPT_NO_BN_DECAY, NULL, "no weight decay on BN parameters and biases [off]", "Optimisation"},
    {"label-smoothing", 1, OPT_SMOOTHING, "X", "label smoothing epsilon [0]", "Optimisation"},
    {"mixup-alpha", 1, OPT_MIXUP_ALPHA, "A", "mixup: each training batch blends sample pairs (2i, 2i+1) of a rank's batch with weight lam ~ Beta(A, A), labels alike; needs an even batch per rank; 0: off [0]", "Optimisation"},
    {"cutmix-alpha", 1, OPT_CUTMIX_ALPHA, "A", "cutmix: pastes a box of area (1 - lam) ~ Beta(A, A) from the pair partner, labels weighted by area; with --mixup-alpha one of the two per step, each with probability 1/2; 0: off [0]", "Optimisation"},
    {"seed", 1, OPT_SEED, "N", "seed of the initial weights, the data order, augmentation, mixup/cutmix, drop-path/dropout and synthetic data [0]", "Optimisation"},
    {"lr-schedule", 1, OPT_LR_SCHEDULE, "KIND", "after warmup: plateau, step or cosine [plateau]", "Schedule"},
    {"warmup-epochs", 1, OPT_WARMUP_EPOCHS, "E", "linear warmup over E epochs (fractions allowed) [0]", "Schedule"},
    {"warmup-start-lr", 1, OPT_WARMUP_START_LR, "X", "rate of the first warmup step [lr x 256 / batch, at most lr]", "Schedule"},
    {"lr-steps", 1, OPT_LR_STEPS, "E1,E2,..", "step schedule: epochs where the rate is multiplied by --lr-gamma [30,60,80]", "Schedule"},
    {"lr-gamma", 1, OPT_LR_GAMMA, "X", "step schedule multiplier [0.1]", "Schedule"},
    {"val-every", 1, OPT_VAL_EVERY, "N", "validate every N epochs and at the end [1]", "Schedule"},
    {"plateau-metric", 1, OPT_PLATEAU_METRIC, "M", "val_top1 (mode max) or val_loss (mode min) [val_top1]", "Schedule"},
    {"plateau-factor", 1, OPT_PLATEAU_FACTOR, "X", "LR multiplier on a plateau [0.1]", "Schedule"},
    {"plateau-patience", 1, OPT_PLATEAU_PATIENCE, "N", "validations without improvement before a cut [10]", "Schedule"},
    {"plateau-threshold", 1, OPT_PLATEAU_THRESHOLD, "X", "smallest change that counts as improvement [1e-4]", "Schedule"},
    {"plateau-threshold-mode", 1, OPT_PLATEAU_THRESHOLD_MODE, "M", "rel or abs [rel]", "Schedule"},
    {"plateau-cooldown", 1, OPT_PLATEAU_COOLDOWN, "N", "validations to wait after a cut [0]", "Schedule"},
    {"min-lr", 1, OPT_MIN_LR, "X", "lower bound of the learning rate [0]", "Schedule"},
    {"model-ema", 1, OPT_MODEL_EMA, "DECAY", "keep an exponential moving average of the weights and BN statistics, ema = DECAY * ema + (1 - DECAY) * w; validation reports it too; 0: off [0]", "Averaging and evaluation"},
    {"model-ema-every", 1, OPT_MODEL_EMA_EVERY, "N", "update the average after every N-th optimizer step (DECAY is used as given) [1]", "Averaging and evaluation"},
    {"model-ema-eval", 0, OPT_MODEL_EMA_EVAL, NULL, "validate the averaged weights only: the plateau rule and best.h5 follow them [off]", "Averaging and evaluation"},
    {"init-from-ema", 0, OPT_INIT_FROM_EMA, NULL, "--init-from loads the checkpoint's /model_ema (averaged) weights instead of /model [off]", "Averaging and evaluation"},
    {"tta", 1, OPT_TTA, "KIND", "test-time augmentation in validation and --eval-only: none, or flip (mean softmax of each image and its mirror, reported besides the plain figures) [none]", "Averaging and evaluation"},
    {"threads", 1, OPT_THREADS, "N", "OpenMP threads per rank [OMP_NUM_THREADS, else cores / ranks per node]", "Run"},
    {"init-from", 1, OPT_INIT_FROM, "CKPT", "initialise weights from a checkpoint's /model group [none]", "Checkpoints"},
    {"resume", 1, OPT_RESUME, "PATH|auto", "resume from a checkpoint, or the newest valid one in --checkpoint-dir [none]", "Checkpoints"},
    {"checkpoint-dir", 1, OPT_CKPT_DIR, "DIR", "where step-NNNNNNNN.h5 and best.h5 go [checkpoints]", "Checkpoints"},
    {"checkpoint-every", 1, OPT_CKPT_EVERY, "N", "checkpoint every N epochs; 0: only at the end and on signals [1]", "Checkpoints"},
    {"checkpoint-minutes", 1, OPT_CKPT_MINUTES, "M", "also checkpoint when M minutes passed since the last one [off]", "Checkpoints"},
    {"overwrite", 0, OPT_OVERWRITE, NULL, "start afresh in a --checkpoint-dir holding an earlier run's checkpoints (without it, such a run stops); they are removed at this run's first checkpoint [off]", "Checkpoints"},
    {"keep", 1, OPT_KEEP, "N", "keep the N newest step checkpoints (best.h5 is separate); 0: all [3]", "Checkpoints"},
    {"bucket-mb", 1, OPT_BUCKET_MB, "MB", "gradient allreduce bucket size [25]", "Run"},
    {"check-every", 1, OPT_CHECK_EVERY, "N", "compare a parameter checksum across ranks every N steps; 0: at start and resume only [1000]", "Run"},
    {"stall-timeout", 1, OPT_STALL_TIMEOUT, "SEC", "end the job (exit 1) when a rank's step, validation or checkpoint makes no progress for SEC seconds, naming the phase and the ranks not heard from; 0: off [600]", "Run"},
    {"progress", 1, OPT_PROGRESS, "MODE", "live progress line on rank 0 between the log lines: bar (always), lines (never), auto (when stdout is a terminal outside mpirun, srun and Slurm jobs) [auto]", "Logging"},
    {"mllog", 0, OPT_MLLOG, NULL, "also print MLPerf-style :::MLLOG lines [off]", "Logging"},
    {"log-every", 1, OPT_LOG_EVERY, "N", "progress line every N steps [10]", "Logging"},
    {"metrics", 1, OPT_METRICS, "FILE", "append JSON-lines metrics records to FILE [none]", "Logging"},
    {"eval-only", 0, OPT_EVAL_ONLY, NULL, "evaluate --split once with the weights of --init-from and exit; the model (arch, stem, classes, input size) comes from the checkpoint, and a flag that contradicts it is an error [off]", "Modes"},
    {"bench", 0, OPT_BENCH, NULL, "time training steps, print one JSON line [off]", "Modes"},
    {"bench-steps", 1, OPT_BENCH_STEPS, "N", "timed steps for --bench [20]", "Modes"},
    {"bench-warmup", 1, OPT_BENCH_WARMUP, "N", "untimed warm-up steps for --bench [3]", "Modes"},
    {"dry-run", 0, OPT_DRY_RUN, NULL, "check flags, dataset and checkpoints, print the plan, exit [off]", "Modes"},
    {"list-archs", 0, OPT_LIST_ARCHS, NULL, "print every architecture's parameters and GMACs/GFLOPs per image at --crop (224 ImageNet, 32 CIFAR) and --num-classes (1000, 10), exit [off]", "Modes"},
    {"help", 0, OPT_HELP, NULL, "this text", "Modes"},
    {"version", 0, OPT_VERSION, NULL, "program and library versions", "Modes"},
};
#define NSPECS (sizeof SPECS / sizeof SPECS[0])

void options_defaults(Options *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->arch, sizeof o->arch, "resnet50");
    o->split = "val";
    o->batch_size = 256;
    o->epochs = 90;
    o->lr = 0.1;
    o->momentum = 0.9;
    o->weight_decay = 1e-4;
    o->val_every = 1;
    o->schedule.kind = SCHEDULE_PLATEAU;
    o->schedule.gamma = 0.1;
    lr_schedule_parse_milestones(&o->schedule, "30,60,80");
    o->warmup_start_lr = -1;
    o->checkpoint_every = 1;
    o->keep = 3;
    o->bucket_mb = 25;
    o->check_every = 1000;
    o->stall_timeout = 600;
    plateau_init(&o->plateau, PLATEAU_MAX);
    o->checkpoint_dir = "checkpoints";
    o->log_every = 10;
    o->progress = -1;
    o->aug = -1;
    o->loader_threads = 1;
    o->drop_last = 1;
    o->in_channels = 3;
    o->bench_steps = 20;
    o->bench_warmup = 3;
    o->model_ema_every = 1;
}

void options_usage(FILE *out)
{
    char archs[1024];
    arch_names(archs, sizeof archs);
    fprintf(out, "usage: resnet_dist [flags]   (run under mpirun or srun for several ranks)\n");
    const char *group = "";
    for (size_t i = 0; i < NSPECS; i++) {
        const OptionSpec *s = &SPECS[i];
        if (strcmp(group, s->group) != 0) {
            group = s->group;
            fprintf(out, "\n%s:\n", group);
        }
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", s->name, s->metavar ? " " : "",
                 s->metavar ? s->metavar : "");
        fprintf(out, "  %-30s %s\n", left, s->help);
    }
    fprintf(out, "\narchitectures: %s\n", archs);
    fprintf(out, "exit codes: 0 done, 1 internal error, 2 bad usage or input, 3 stopped on SIGUSR1 "
                 "(requeue), 4 stopped on SIGTERM/SIGINT, 5 non-finite loss\n");
}

static int parse_int(const char *flag, const char *s, long long lo, long long hi, long long *out,
                     Status *st)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        status_set(st, EXIT_USAGE, "--%s: '%s' is not a whole number in [%lld, %lld]", flag, s, lo,
                   hi);
        return 0;
    }
    *out = v;
    return 1;
}

static int parse_num(const char *flag, const char *s, double lo, double hi, double *out,
                     Status *st)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        status_set(st, EXIT_USAGE, "--%s: '%s' is not a number in [%g, %g]", flag, s, lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}

static int parse_choice(const char *flag, const char *s, const char *a, const char *b, Status *st)
{
    if (strcmp(s, a) == 0)
        return 0;
    if (strcmp(s, b) == 0)
        return 1;
    status_set(st, EXIT_USAGE, "--%s: '%s' is neither %s nor %s", flag, s, a, b);
    return 0;
}

static void apply_option(Options *o, int id, const char *flag, const char *v, Status *st)
{
    long long i = 0;
    double d = 0;
    switch (id) {
    case OPT_ARCH:
        if (!arch_exists(v))
            status_set(st, EXIT_USAGE, "--arch: unknown architecture '%s' (see --help)", v);
        snprintf(o->arch, sizeof o->arch, "%s", v);
        o->arch_given = 1;
        break;
    case OPT_NUM_CLASSES: if (parse_int(flag, v, 1, 1 << 20, &i, st)) o->num_classes = (int)i; break;
    case OPT_STEM:
        o->small_stem = parse_choice(flag, v, "imagenet", "small", st);
        o->stem_given = 1;
        break;
    case OPT_ZERO_INIT: o->zero_init_residual = 1; break;
    case OPT_CONV_ALGO: o->winograd = parse_choice(flag, v, "direct", "winograd", st); break;
    case OPT_DATA: o->data = v; break;
    case OPT_CROP: if (parse_int(flag, v, 8, 4096, &i, st)) o->crop = (int)i; break;
    case OPT_IN_CHANNELS:
        if (parse_int(flag, v, 1, 3, &i, st) && i == 2)
            status_set(st, EXIT_USAGE, "--in-channels: must be 1 or 3");
        o->in_channels = (int)i;
        break;
    case OPT_SYNTHETIC: o->synthetic = 1; break;
    case OPT_MAX_PIXELS: if (parse_int(flag, v, 1, INT64_MAX / 2, &i, st)) o->max_pixels = i; break;
    case OPT_SPLIT: o->split = parse_choice(flag, v, "val", "test", st) ? "test" : "val"; break;
    case OPT_BATCH: if (parse_int(flag, v, 1, 1 << 24, &i, st)) o->batch_size = (int)i; break;
    case OPT_EPOCHS: if (parse_int(flag, v, 1, 1 << 20, &i, st)) o->epochs = (int)i; break;
    case OPT_MAX_STEPS: if (parse_int(flag, v, 1, INT64_MAX / 2, &i, st)) o->max_steps = i; break;
    case OPT_LR: if (parse_num(flag, v, 0, 1e3, &d, st)) o->lr = d; break;
    case OPT_BASE_LR: if (parse_num(flag, v, 1e-12, 1e3, &d, st)) o->base_lr = d; break;
    case OPT_MOMENTUM: if (parse_num(flag, v, 0, 1, &d, st)) o->momentum = d; break;
    case OPT_NESTEROV: o->nesterov = 1; break;
    case OPT_WD: if (parse_num(flag, v, 0, 1, &d, st)) o->weight_decay = d; break;
    case OPT_NO_BN_DECAY: o->no_bn_decay = 1; break;
    case OPT_SMOOTHING: if (parse_num(flag, v, 0, 0.999, &d, st)) o->label_smoothing = d; break;
    case OPT_MIXUP_ALPHA: if (parse_num(flag, v, 0, 100, &d, st)) o->mixup_alpha = d; break;
    case OPT_CUTMIX_ALPHA: if (parse_num(flag, v, 0, 100, &d, st)) o->cutmix_alpha = d; break;
    case OPT_SEED: if (parse_int(flag, v, 0, INT64_MAX, &i, st)) o->seed = (uint64_t)i; break;
    case OPT_VAL_EVERY: if (parse_int(flag, v, 1, 1 << 20, &i, st)) o->val_every = (int)i; break;
    case OPT_PLATEAU_METRIC: o->plateau_on_loss = parse_choice(flag, v, "val_top1", "val_loss", st); break;
    case OPT_PLATEAU_FACTOR: if (parse_num(flag, v, 1e-9, 0.999999, &d, st)) o->plateau.factor = d; break;
    case OPT_PLATEAU_PATIENCE: if (parse_int(flag, v, 0, 1 << 20, &i, st)) o->plateau.patience = (int)i; break;
    case OPT_PLATEAU_THRESHOLD: if (parse_num(flag, v, 0, 1e9, &d, st)) o->plateau.threshold = d; break;
    case OPT_PLATEAU_THRESHOLD_MODE:
        o->plateau.threshold_mode = parse_choice(flag, v, "rel", "abs", st) ? THRESHOLD_ABS : THRESHOLD_REL;
        break;
    case OPT_PLATEAU_COOLDOWN: if (parse_int(flag, v, 0, 1 << 20, &i, st)) o->plateau.cooldown = (int)i; break;
    case OPT_MIN_LR: if (parse_num(flag, v, 0, 1e3, &d, st)) o->plateau.min_lr = d; break;
    case OPT_MODEL_EMA:
        if (parse_num(flag, v, 0, 1, &d, st) && d == 1)
            status_set(st, EXIT_USAGE, "--model-ema: the decay must be below 1 (0 turns the average off)");
        o->model_ema = d;
        break;
    case OPT_MODEL_EMA_EVERY: if (parse_int(flag, v, 1, 1 << 30, &i, st)) o->model_ema_every = (int)i; break;
    case OPT_MODEL_EMA_EVAL: o->model_ema_eval = 1; break;
    case OPT_INIT_FROM_EMA: o->init_from_ema = 1; break;
    case OPT_TTA: o->tta_flip = parse_choice(flag, v, "none", "flip", st); break;
    case OPT_THREADS: if (parse_int(flag, v, 1, 4096, &i, st)) o->threads = (int)i; break;
    case OPT_INIT_FROM: o->init_from = v; break;
    case OPT_RESUME: o->resume = v; break;
    case OPT_CKPT_DIR: o->checkpoint_dir = v; break;
    case OPT_LOG_EVERY: if (parse_int(flag, v, 1, 1 << 30, &i, st)) o->log_every = (int)i; break;
    case OPT_METRICS: o->metrics = v; break;
    case OPT_EVAL_ONLY: o->eval_only = 1; break;
    case OPT_OVERWRITE: o->overwrite = 1; break;
    case OPT_BENCH: o->bench = 1; break;
    case OPT_BENCH_STEPS: if (parse_int(flag, v, 1, 1 << 20, &i, st)) o->bench_steps = (int)i; break;
    case OPT_BENCH_WARMUP: if (parse_int(flag, v, 0, 1 << 20, &i, st)) o->bench_warmup = (int)i; break;
    case OPT_DRY_RUN: o->dry_run = 1; break;
    case OPT_LR_SCHEDULE:
        if (strcmp(v, "plateau") == 0)
            o->schedule.kind = SCHEDULE_PLATEAU;
        else if (strcmp(v, "step") == 0)
            o->schedule.kind = SCHEDULE_STEP;
        else if (strcmp(v, "cosine") == 0)
            o->schedule.kind = SCHEDULE_COSINE;
        else
            status_set(st, EXIT_USAGE, "--lr-schedule: '%s' is not plateau, step or cosine", v);
        break;
    case OPT_LR_STEPS:
        if (!lr_schedule_parse_milestones(&o->schedule, v))
            status_set(st, EXIT_USAGE, "--lr-steps: '%s' is not a rising list of epochs like 30,60,80", v);
        break;
    case OPT_LR_GAMMA: if (parse_num(flag, v, 1e-9, 1, &d, st)) o->schedule.gamma = d; break;
    case OPT_WARMUP_EPOCHS: if (parse_num(flag, v, 0, 1e6, &d, st)) o->warmup_epochs = d; break;
    case OPT_WARMUP_START_LR: if (parse_num(flag, v, 0, 1e3, &d, st)) o->warmup_start_lr = d; break;
    case OPT_CKPT_EVERY: if (parse_int(flag, v, 0, 1 << 20, &i, st)) o->checkpoint_every = (int)i; break;
    case OPT_CKPT_MINUTES: if (parse_num(flag, v, 0, 1e7, &d, st)) o->checkpoint_minutes = d; break;
    case OPT_KEEP: if (parse_int(flag, v, 0, 1 << 20, &i, st)) o->keep = (int)i; break;
    case OPT_BUCKET_MB: if (parse_num(flag, v, 0.001, 1e5, &d, st)) o->bucket_mb = d; break;
    case OPT_CHECK_EVERY: if (parse_int(flag, v, 0, 1 << 30, &i, st)) o->check_every = (int)i; break;
    case OPT_STALL_TIMEOUT: if (parse_num(flag, v, 0, 1e7, &d, st)) o->stall_timeout = d; break;
    case OPT_MLLOG: o->mllog = 1; break;
    case OPT_SYNC_BN: o->sync_bn = 1; break;
    case OPT_DROP_PATH: if (parse_num(flag, v, 0, 0.99, &d, st)) o->drop_path = d; break;
    case OPT_WRN_DROPOUT: if (parse_num(flag, v, 0, 0.99, &d, st)) o->wrn_dropout = d; break;
    case OPT_LIST_ARCHS: o->list_archs = 1; break;
    case OPT_AUG: {
        AugMode mode;
        if (augment_parse(v, &mode) != 0)
            status_set(st, EXIT_USAGE, "--aug: '%s' is not rrc, paper, cifar or none", v);
        o->aug = (int)mode;
        break;
    }
    case OPT_RANDOM_ERASE: if (parse_num(flag, v, 0, 1, &d, st)) o->random_erase = d; break;
    case OPT_LOADER_THREADS: if (parse_int(flag, v, 1, 64, &i, st)) o->loader_threads = (int)i; break;
    case OPT_DROP_LAST: o->drop_last = 1; break;
    case OPT_NO_DROP_LAST: o->drop_last = 0; break;
    case OPT_PROGRESS:
        if (strcmp(v, "auto") == 0)
            o->progress = -1;
        else
            o->progress = !parse_choice(flag, v, "bar", "lines", st);
        break;
    case OPT_HELP: o->show_help = 1; break;
    case OPT_VERSION: o->show_version = 1; break;
    }
}

static void options_validate(Options *o, Status *st)
{
    if (o->show_help || o->show_version || o->list_archs)
        return;
    if (o->wrn_dropout > 0 && !arch_is_wrn(o->arch))
        status_set(st, EXIT_USAGE, "--wrn-dropout: %s is not a wrn-D-K network", o->arch);
    if (o->synthetic && o->data)
        status_set(st, EXIT_USAGE, "--synthetic and --data exclude each other");
    if (!o->synthetic && !o->data)
        status_set(st, EXIT_USAGE, "no dataset: give --data FILE.h5 or --synthetic");
    if (o->eval_only && o->bench)
        status_set(st, EXIT_USAGE, "--eval-only and --bench exclude each other");
    if (o->eval_only && o->synthetic)
        status_set(st, EXIT_USAGE, "--eval-only needs --data");
    if (o->eval_only && !o->init_from && !o->resume)
        status_set(st, EXIT_USAGE, "--eval-only needs weights: give --init-from CKPT");
    if (o->init_from && o->resume)
        status_set(st, EXIT_USAGE, "--init-from and --resume exclude each other");
    if (o->model_ema_eval && o->model_ema == 0)
        status_set(st, EXIT_USAGE, "--model-ema-eval needs --model-ema DECAY (above 0)");
    if (o->init_from_ema && !o->init_from)
        status_set(st, EXIT_USAGE, "--init-from-ema needs --init-from CKPT");
    if (o->resume && strcmp(o->resume, "auto") == 0 && !o->checkpoint_dir[0])
        status_set(st, EXIT_USAGE, "--resume auto needs --checkpoint-dir");
    if (o->plateau_on_loss)
        o->plateau.mode = PLATEAU_MIN;
    o->plateau.best = o->plateau.mode == PLATEAU_MIN ? INFINITY : -INFINITY;
    if (o->base_lr > 0)
        o->lr = o->base_lr * o->batch_size / 256.0;
    o->schedule.lr = o->lr;
    o->schedule.min_lr = o->plateau.min_lr;
    if (o->warmup_start_lr < 0)
        o->warmup_start_lr = fmin(o->lr, o->lr * 256.0 / o->batch_size);
}

void options_parse(Options *o, int argc, char **argv, Status *st)
{
    struct option longopts[NSPECS + 1];
    for (size_t i = 0; i < NSPECS; i++)
        longopts[i] = (struct option){SPECS[i].name, SPECS[i].has_arg ? required_argument : no_argument,
                                      NULL, SPECS[i].id};
    memset(&longopts[NSPECS], 0, sizeof longopts[NSPECS]);
    opterr = 0;
    optind = 1;
    int c, index = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, &index)) != -1) {
        if (c == '?') {
            status_set(st, EXIT_USAGE, "unknown flag '%s' (see --help)", argv[optind - 1]);
            continue;
        }
        if (c == ':') {
            status_set(st, EXIT_USAGE, "flag '%s' needs a value", argv[optind - 1]);
            continue;
        }
        const char *name = "";
        for (size_t i = 0; i < NSPECS; i++)
            if (SPECS[i].id == c)
                name = SPECS[i].name;
        apply_option(o, c, name, optarg, st);
    }
    if (optind < argc)
        status_set(st, EXIT_USAGE, "unexpected argument '%s' (flags start with --)", argv[optind]);
    options_validate(o, st);
}
