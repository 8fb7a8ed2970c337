/* trainer.c - a run's set-up: threads, dataset, network, output folders, resume. */
#include "trainer.h"

#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "error.h"
#include "eval_only.h"
#include "log.h"
#include "rng.h"
#include "sampler.h"
#include "syncbn.h"
#include "train_agree.h"
#include "train_ckpt.h"
#include "train_report.h"

static void trainer_set_threads(Trainer *t)
{
    int threads = t->opt.threads;
    const char *env = getenv("OMP_NUM_THREADS");
    if (!threads && env && atoi(env) > 0)
        threads = atoi(env);
    if (!threads) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = (int)(cores / t->dist.local_size);
        if (threads < 1)
            threads = 1;
    }
    t->opt.threads = threads;
    omp_set_num_threads(threads);
}

/* The shorter side of the stored images, the size an image is resized to
 * before the centre crop (written to checkpoints for prediction): raw, the
 * shape; JPEG, the first evaluated record's (resnet_prep gives every record
 * the same shorter side). 0 when unknown. */
static int stored_short_side(Dataset *d)
{
    if (d->encoding == ENCODING_RAW)
        return d->height < d->width ? d->height : d->width;
    DatasetSplit split = dataset_count(d, SPLIT_VAL) ? SPLIT_VAL : SPLIT_TRAIN;
    DatasetImage img = {0};
    Status st = {0};
    int side = 0;
    if (dataset_count(d, split) && dataset_read_image(d, split, 0, &img, &st) == 0)
        side = img.h < img.w ? img.h : img.w;
    dataset_image_free(&img);
    return side;
}

static void trainer_open_data(Trainer *t)
{
    Status st = {0};
    Options *o = &t->opt;
    if (o->synthetic) {
        t->channels = o->in_channels;
        t->crop = o->crop ? o->crop : 224;
        t->num_classes = o->num_classes ? o->num_classes : 1000;
        snprintf(t->fingerprint, sizeof t->fingerprint, "synthetic");
    } else {
        if (o->max_pixels)
            image_set_max_pixels((size_t)o->max_pixels);
        t->have_data = dataset_open(&t->data, o->data, &st) == 0;
        if (t->have_data) {
            t->channels = t->data.channels;
            t->crop = o->crop ? o->crop : t->data.height;
            t->num_classes = t->data.num_classes;
            if (o->num_classes && o->num_classes != t->data.num_classes)
                status_set(&st, EXIT_USAGE, "--num-classes %d, but %s has %d classes",
                           o->num_classes, o->data, t->data.num_classes);
            if (!t->crop)
                status_set(&st, EXIT_USAGE, "%s stores JPEG images of varying size: give --crop",
                           o->data);
            else if (t->data.height && (t->crop > t->data.height || t->crop > t->data.width))
                status_set(&st, EXIT_USAGE, "%s %d is larger than the %dx%d images of %s",
                           t->crop_from[0] ? t->crop_from : "--crop", t->crop, t->data.height,
                           t->data.width, o->data);
            dataset_fingerprint(&t->data, t->fingerprint, sizeof t->fingerprint);
        }
    }
    if (o->batch_size % t->dist.size)
        status_set(&st, EXIT_USAGE, "--batch-size %d does not divide over %d ranks",
                   o->batch_size, t->dist.size);
    t->local_batch = o->batch_size / t->dist.size;
    o->num_classes = t->num_classes; /* resolved, for the start-up log */
    o->crop = t->crop;
    if (t->have_data && !o->eval_only &&
        sampler_check(dataset_count(&t->data, SPLIT_TRAIN), o->batch_size, t->dist.size,
                      o->drop_last, &st) != 0)
        snprintf(st.msg + strlen(st.msg), sizeof st.msg - strlen(st.msg), " (%s)", o->data);
    /* The evaluated split is read centre-cropped: check its images now, not
     * after an epoch (training crops pad or resize images of any size). */
    DatasetSplit eval = o->eval_only && !strcmp(o->split, "test") ? SPLIT_TEST : SPLIT_VAL;
    if (t->have_data && t->crop && !st.code)
        dataset_check_image_sizes(&t->data, eval, t->crop, t->dist.rank, t->dist.size, &st);
    status_agree(&st);
    if (t->have_data)
        t->resize_size = stored_short_side(&t->data);
}

/* Rank 0 creates the checkpoint directory and the metrics file's folder up
 * front, so a bad path is a usage error at start, not a failure mid-run. */
static void trainer_make_output_dirs(Trainer *t)
{
    Status st = {0};
    const Options *o = &t->opt;
    int training = !o->eval_only && !o->bench && !o->dry_run;
    if (t->dist.rank == 0 && training && make_dirs(o->checkpoint_dir) != 0)
        status_set(&st, EXIT_USAGE, "--checkpoint-dir %s: cannot create it: %s", o->checkpoint_dir,
                   strerror(errno));
    if (t->dist.rank == 0 && o->metrics && strchr(o->metrics, '/')) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", o->metrics);
        *strrchr(dir, '/') = '\0';
        if (dir[0] && make_dirs(dir) != 0)
            status_set(&st, EXIT_USAGE, "--metrics %s: cannot create its folder: %s", o->metrics,
                       strerror(errno));
    }
    status_agree(&st);
}

static void trainer_build(Trainer *t)
{
    NetConfig cfg = {.num_classes = t->num_classes, .in_channels = t->channels,
                     .image_size = t->crop, .batch = t->local_batch,
                     .small_stem = t->opt.small_stem,
                     .zero_init_residual = t->opt.zero_init_residual,
                     .conv_algo = t->opt.winograd ? CONV_WINOGRAD : CONV_DIRECT,
                     .drop_path = t->opt.drop_path, .dropout = t->opt.wrn_dropout};
    snprintf(cfg.arch, sizeof cfg.arch, "%s", t->opt.arch);
    params_init(&t->params);
    t->net = net_create(&cfg, &t->params);
    params_allocate(&t->params);
    net_init_weights(t->net, t->opt.seed);
    t->labels = xcalloc((size_t)t->local_batch, sizeof *t->labels);
    t->sample_index = xcalloc((size_t)t->local_batch, sizeof *t->sample_index);
    t->sgd = (SgdConfig){t->opt.momentum, t->opt.weight_decay, t->opt.nesterov,
                         t->opt.no_bn_decay};
    if (t->opt.sync_bn) {
        Status st = {0};
        if (t->dist.thread_level < MPI_THREAD_MULTIPLE)
            status_set(&st, EXIT_USAGE, "--sync-bn needs an MPI library with MPI_THREAD_MULTIPLE");
        status_agree(&st);
        net_enable_sync_bn(t->net, syncbn_hooks());
    }
    t->reducer = reducer_create(&t->params, t->opt.bucket_mb);
    net_set_grad_hook(t->net, reducer_grads_ready, t->reducer);
    t->lr = t->plateau_lr = t->opt.lr;
    t->plateau = t->opt.plateau;
    t->best_metric = NAN;
}

/* Rank 0 reads the checkpoint and broadcasts what it found. */
static void trainer_load(Trainer *t, const char *path, CheckpointPart part)
{
    Status st = {0};
    CheckpointMeta meta;
    checkpoint_meta_init(&meta);
    if (t->dist.rank == 0)
        checkpoint_read(path, &t->params, &meta, part, &st);
    status_agree(&st);
    MPI_CHECK(MPI_Bcast(&meta, sizeof meta, MPI_BYTE, 0, MPI_COMM_WORLD));
    dist_broadcast_state(&t->params);
    if (part == CKPT_WEIGHTS_ONLY) {
        if (!t->opt.eval_only) /* eval-only names it with its step (report_config) */
            log_info("initialised weights from %s", path);
        return;
    }
    if (strcmp(meta.arch, t->opt.arch) != 0 || meta.num_classes != t->num_classes)
        status_set(&st, EXIT_USAGE, "%s holds %s with %d classes; this run is %s with %d", path,
                   meta.arch, meta.num_classes, t->opt.arch, t->num_classes);
    else if (strcmp(meta.dataset_fingerprint, t->fingerprint) != 0)
        status_set(&st, EXIT_USAGE,
                   "%s was trained on another dataset (fingerprint '%s', this run '%s')", path,
                   meta.dataset_fingerprint, t->fingerprint);
    else if (meta.global_batch != t->opt.batch_size)
        status_set(&st, EXIT_USAGE, "%s was trained with global batch %lld; this run has %d",
                   path, (long long)meta.global_batch, t->opt.batch_size);
    status_agree(&st);
    t->step = meta.step;
    t->lr = meta.lr;
    /* meta.lr is a warmup rate while warming up; the plateau rate is then the peak */
    t->plateau_lr = lr_schedule_plateau_active(&t->schedule, t->step) ? meta.lr : t->schedule.lr;
    t->best_metric = meta.best_metric;
    t->validation_pending = meta.validation_pending;
    if (meta.has_plateau)
        t->plateau = meta.plateau;
    log_info("resumed from %s at step %lld (lr %g)", path, (long long)t->step, t->lr);
}

static void trainer_restore(Trainer *t)
{
    const Options *o = &t->opt;
    if (o->init_from) {
        trainer_load(t, o->init_from, CKPT_WEIGHTS_ONLY);
        return;
    }
    if (!o->resume)
        return;
    char path[4096];
    snprintf(path, sizeof path, "%s", o->resume);
    if (strcmp(o->resume, "auto") == 0) {
        Status st = {0};
        int found = 0;
        if (t->dist.rank == 0)
            found = checkpoint_find_latest(o->checkpoint_dir, path, sizeof path, &st) > 0;
        status_agree(&st);
        MPI_CHECK(MPI_Bcast(&found, 1, MPI_INT, 0, MPI_COMM_WORLD));
        MPI_CHECK(MPI_Bcast(path, sizeof path, MPI_CHAR, 0, MPI_COMM_WORLD));
        if (!found) {
            log_info("--resume auto: no checkpoint in %s, starting fresh", o->checkpoint_dir);
            return;
        }
    }
    trainer_load(t, path, CKPT_FULL);
}

static void trainer_plan(Trainer *t)
{
    const Options *o = &t->opt;
    int64_t train_n = t->have_data ? dataset_count(&t->data, SPLIT_TRAIN) : o->batch_size;
    t->steps_per_epoch = sampler_steps_for(train_n, o->batch_size, o->drop_last);
    if (t->steps_per_epoch < 1)
        t->steps_per_epoch = 1;
    t->total_steps = t->steps_per_epoch * o->epochs;
    if (o->max_steps && o->max_steps < t->total_steps)
        t->total_steps = o->max_steps;
    t->schedule = o->schedule;
    t->schedule.steps_per_epoch = t->steps_per_epoch;
    t->schedule.total_steps = t->total_steps;
    t->schedule.warmup_steps = (int64_t)llround(o->warmup_epochs * (double)t->steps_per_epoch);
    t->schedule.warmup_start_lr = o->warmup_start_lr;
}

static void trainer_start_loader(Trainer *t)
{
    const Options *o = &t->opt;
    LoaderConfig cfg = {
        .path = o->data, .split = SPLIT_TRAIN, .mode = LOADER_TRAIN, .crop = t->crop,
        .aug = o->aug >= 0 ? (AugMode)o->aug : augment_default(t->data.height, t->data.width),
        .batch = o->batch_size, .rank = t->dist.rank, .world = t->dist.size, .seed = o->seed,
        .drop_last = o->drop_last, .start_step = t->step, .threads = o->loader_threads};
    Status st = {0};
    loader_create(&t->loader, &cfg, &st);
    status_agree(&st);
    log_info("training data: %s augmentation, %d loader thread(s)", augment_name(cfg.aug),
             o->loader_threads);
}

static void fill_synthetic(Trainer *t)
{
    Rng rng;
    rng_seed(&rng, t->opt.seed, 0x5917, (uint64_t)t->dist.rank);
    size_t n = (size_t)t->local_batch * t->channels * t->crop * t->crop;
    float *x = net_input(t->net);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(2.0 * rng_uniform(&rng) - 1.0);
    for (int i = 0; i < t->local_batch; i++)
        t->labels[i] = (int32_t)rng_below(&rng, (uint64_t)t->num_classes);
}

void trainer_start_inputs(Trainer *t)
{
    if (t->have_data)
        trainer_start_loader(t);
    else
        fill_synthetic(t);
}

void trainer_setup(Trainer *t)
{
    Status st = {0};
    trainer_set_threads(t);
    dnn_init();
    if (t->opt.eval_only)
        eval_only_adopt_checkpoint(&t->opt, &t->dist, &t->source, t->crop_from,
                                   sizeof t->crop_from);
    trainer_open_data(t);
    if (t->opt.eval_only)
        eval_only_check_data(&t->opt, &t->source, t->have_data ? &t->data : NULL,
                             t->num_classes);
    trainer_build(t);
    trainer_plan(t);
    trainer_agree_plan(t);
    trainer_restore(t);
    trainer_prepare_checkpoint_dir(t);
    trainer_make_output_dirs(t);
    if (t->dist.rank == 0)
        metrics_open(&t->metrics, t->opt.metrics, &st);
    status_agree(&st);
    dist_broadcast_state(&t->params);
    dist_check_params(&t->params, "at start");
    report_config(t);
}

void trainer_free(Trainer *t)
{
    metrics_close(&t->metrics);
    loader_free(t->loader);
    reducer_free(t->reducer);
    net_free(t->eval_rest);
    net_free(t->net);
    syncbn_free();
    params_free(&t->params);
    if (t->have_data)
        dataset_close(&t->data);
    dnn_free();
    free(t->labels);
    free(t->sample_index);
}
