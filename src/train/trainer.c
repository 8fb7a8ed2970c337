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

#include "augment.h"
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
    int threads = t->cfg.opt.threads;
    const char *env = getenv("OMP_NUM_THREADS");
    if (!threads && env && atoi(env) > 0)
        threads = atoi(env);
    if (!threads) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = (int)(cores / t->cfg.dist.local_size);
        if (threads < 1)
            threads = 1;
    }
    t->cfg.opt.threads = threads;
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
    Options *o = &t->cfg.opt;
    if (o->synthetic) {
        t->cfg.channels = o->in_channels;
        t->cfg.crop = o->crop ? o->crop : 224;
        t->cfg.num_classes = o->num_classes ? o->num_classes : 1000;
        snprintf(t->cfg.fingerprint, sizeof t->cfg.fingerprint, "synthetic");
    } else {
        if (o->max_pixels)
            image_set_max_pixels((size_t)o->max_pixels);
        t->res.have_data = dataset_open(&t->res.data, o->data, &st) == 0;
        if (t->res.have_data) {
            t->cfg.channels = t->res.data.channels;
            t->cfg.crop = o->crop ? o->crop : t->res.data.height;
            t->cfg.num_classes = t->res.data.num_classes;
            if (o->num_classes && o->num_classes != t->res.data.num_classes)
                status_set(&st, EXIT_USAGE, "--num-classes %d, but %s has %d classes",
                           o->num_classes, o->data, t->res.data.num_classes);
            if (!t->cfg.crop)
                status_set(&st, EXIT_USAGE, "%s stores JPEG images of varying size: give --crop",
                           o->data);
            else if (t->res.data.height &&
                     (t->cfg.crop > t->res.data.height || t->cfg.crop > t->res.data.width))
                status_set(&st, EXIT_USAGE, "%s %d is larger than the %dx%d images of %s",
                           t->cfg.crop_from[0] ? t->cfg.crop_from : "--crop", t->cfg.crop,
                           t->res.data.height, t->res.data.width, o->data);
            dataset_fingerprint(&t->res.data, t->cfg.fingerprint, sizeof t->cfg.fingerprint);
            if (o->aug < 0) /* resolved, for the start-up log */
                o->aug = (int)augment_default(t->res.data.height, t->res.data.width);
        }
    }
    if (o->batch_size % t->cfg.dist.size)
        status_set(&st, EXIT_USAGE, "--batch-size %d does not divide over %d ranks",
                   o->batch_size, t->cfg.dist.size);
    t->cfg.local_batch = o->batch_size / t->cfg.dist.size;
    o->num_classes = t->cfg.num_classes; /* resolved, for the start-up log */
    o->crop = t->cfg.crop;
    if (t->res.have_data && !o->eval_only && !st.code &&
        sampler_check(dataset_count(&t->res.data, SPLIT_TRAIN), o->batch_size, t->cfg.dist.size,
                      o->drop_last, &st) != 0)
        snprintf(st.msg + strlen(st.msg), sizeof st.msg - strlen(st.msg), " (%s)", o->data);
    if ((o->mixup_alpha > 0 || o->cutmix_alpha > 0) && !o->eval_only && t->cfg.local_batch % 2)
        status_set(&st, EXIT_USAGE,
                   "--mixup-alpha/--cutmix-alpha mix the samples of a rank's batch in pairs: "
                   "the local batch %d (--batch-size %d over %d ranks) must be even",
                   t->cfg.local_batch, o->batch_size, t->cfg.dist.size);
    /* The evaluated split is read centre-cropped: check its images now, not
     * after an epoch (training crops pad or resize images of any size). */
    DatasetSplit eval = o->eval_only && !strcmp(o->split, "test") ? SPLIT_TEST : SPLIT_VAL;
    if (t->res.have_data && t->cfg.crop && !st.code)
        dataset_check_image_sizes(&t->res.data, eval, t->cfg.crop, t->cfg.dist.rank,
                                  t->cfg.dist.size, &st);
    status_agree(&st);
    if (t->res.have_data)
        t->cfg.resize_size = stored_short_side(&t->res.data);
}

/* Rank 0 creates the checkpoint directory and the metrics file's folder up
 * front, so a bad path is a usage error at start, not a failure mid-run. */
static void trainer_make_output_dirs(Trainer *t)
{
    Status st = {0};
    const Options *o = &t->cfg.opt;
    int training = !o->eval_only && !o->bench && !o->dry_run;
    if (t->cfg.dist.rank == 0 && training && make_dirs(o->checkpoint_dir) != 0)
        status_set(&st, EXIT_USAGE, "--checkpoint-dir %s: cannot create it: %s", o->checkpoint_dir,
                   strerror(errno));
    if (t->cfg.dist.rank == 0 && o->metrics && strchr(o->metrics, '/')) {
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
    NetConfig cfg = {.num_classes = t->cfg.num_classes, .in_channels = t->cfg.channels,
                     .image_size = t->cfg.crop, .batch = t->cfg.local_batch,
                     .small_stem = t->cfg.opt.small_stem,
                     .zero_init_residual = t->cfg.opt.zero_init_residual,
                     .conv_algo = t->cfg.opt.winograd ? CONV_WINOGRAD : CONV_DIRECT,
                     .drop_path = t->cfg.opt.drop_path, .dropout = t->cfg.opt.wrn_dropout};
    snprintf(cfg.arch, sizeof cfg.arch, "%s", t->cfg.opt.arch);
    params_init(&t->res.params);
    t->res.net = net_create(&cfg, &t->res.params);
    params_allocate(&t->res.params);
    net_init_weights(t->res.net, t->cfg.opt.seed);
    t->cfg.ema = (EmaConfig){t->cfg.opt.model_ema, t->cfg.opt.model_ema_every};
    if (t->cfg.ema.decay > 0) {
        params_allocate_ema(&t->res.params);
        ema_reset(&t->res.params);
    }
    t->res.labels = xcalloc((size_t)t->cfg.local_batch, sizeof *t->res.labels);
    t->res.sample_index = xcalloc((size_t)t->cfg.local_batch, sizeof *t->res.sample_index);
    t->res.partner_labels = xcalloc((size_t)t->cfg.local_batch, sizeof *t->res.partner_labels);
    t->res.partner_weights = xcalloc((size_t)t->cfg.local_batch, sizeof *t->res.partner_weights);
    t->cfg.sgd = (SgdConfig){t->cfg.opt.momentum, t->cfg.opt.weight_decay, t->cfg.opt.nesterov,
                         t->cfg.opt.no_bn_decay};
    if (t->cfg.opt.sync_bn) {
        Status st = {0};
        if (t->cfg.dist.thread_level < MPI_THREAD_MULTIPLE)
            status_set(&st, EXIT_USAGE, "--sync-bn needs an MPI library with MPI_THREAD_MULTIPLE");
        status_agree(&st);
        net_enable_sync_bn(t->res.net, syncbn_hooks());
    }
    t->res.reducer = reducer_create(&t->res.params, t->cfg.opt.bucket_mb);
    net_set_grad_hook(t->res.net, reducer_grads_ready, t->res.reducer);
    t->state.lr = t->state.plateau_lr = t->cfg.opt.lr;
    t->state.plateau = t->cfg.opt.plateau;
    t->state.best_metric = NAN;
}

/* Rank 0 reads the checkpoint and broadcasts what it found. */
static void trainer_load(Trainer *t, const char *path, CheckpointPart part)
{
    Status st = {0};
    CheckpointMeta meta;
    checkpoint_meta_init(&meta);
    if (t->cfg.dist.rank == 0)
        checkpoint_read(path, &t->res.params, &meta, part, &st);
    status_agree(&st);
    MPI_CHECK(MPI_Bcast(&meta, sizeof meta, MPI_BYTE, 0, MPI_COMM_WORLD));
    dist_broadcast_state(&t->res.params);
    if (part != CKPT_FULL) {
        if (t->res.params.ema)
            ema_reset(&t->res.params); /* the average starts from the loaded weights */
        if (!t->cfg.opt.eval_only) /* eval-only names it with its step (report_config) */
            log_info("initialised weights from %s%s", path,
                     part == CKPT_EMA_WEIGHTS ? " (its averaged weights, /model_ema)" : "");
        return;
    }
    if (t->res.params.ema && !meta.has_ema) {
        ema_reset(&t->res.params);
        log_info("%s holds no weight average (/model_ema): --model-ema starts it from the "
                 "checkpoint's weights", path);
    }
    if (strcmp(meta.arch, t->cfg.opt.arch) != 0 || meta.num_classes != t->cfg.num_classes)
        status_set(&st, EXIT_USAGE, "%s holds %s with %d classes; this run is %s with %d", path,
                   meta.arch, meta.num_classes, t->cfg.opt.arch, t->cfg.num_classes);
    else if (strcmp(meta.dataset_fingerprint, t->cfg.fingerprint) != 0)
        status_set(&st, EXIT_USAGE,
                   "%s was trained on another dataset (fingerprint '%s', this run '%s')", path,
                   meta.dataset_fingerprint, t->cfg.fingerprint);
    else if (meta.global_batch != t->cfg.opt.batch_size)
        status_set(&st, EXIT_USAGE, "%s was trained with global batch %lld; this run has %d",
                   path, (long long)meta.global_batch, t->cfg.opt.batch_size);
    status_agree(&st);
    t->state.step = meta.step;
    t->state.lr = meta.lr;
    /* meta.lr is a warmup rate while warming up; the plateau rate is then the peak */
    t->state.plateau_lr = lr_schedule_plateau_active(&t->cfg.schedule, t->state.step)
                              ? meta.lr
                              : t->cfg.schedule.lr;
    t->state.best_metric = meta.best_metric;
    t->state.validation_pending = meta.validation_pending;
    if (meta.has_plateau)
        t->state.plateau = meta.plateau;
    log_info("resumed from %s at step %lld (lr %g)", path, (long long)t->state.step, t->state.lr);
}

static void trainer_restore(Trainer *t)
{
    const Options *o = &t->cfg.opt;
    if (o->init_from) {
        trainer_load(t, o->init_from, o->init_from_ema ? CKPT_EMA_WEIGHTS : CKPT_WEIGHTS_ONLY);
        return;
    }
    if (!o->resume)
        return;
    char path[4096];
    snprintf(path, sizeof path, "%s", o->resume);
    if (strcmp(o->resume, "auto") == 0) {
        Status st = {0};
        int found = 0;
        if (t->cfg.dist.rank == 0)
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
    const Options *o = &t->cfg.opt;
    int64_t train_n = t->res.have_data ? dataset_count(&t->res.data, SPLIT_TRAIN) : o->batch_size;
    t->cfg.steps_per_epoch = sampler_steps_for(train_n, o->batch_size, o->drop_last);
    if (t->cfg.steps_per_epoch < 1)
        t->cfg.steps_per_epoch = 1;
    t->cfg.total_steps = t->cfg.steps_per_epoch * o->epochs;
    if (o->max_steps && o->max_steps < t->cfg.total_steps)
        t->cfg.total_steps = o->max_steps;
    t->cfg.schedule = o->schedule;
    t->cfg.schedule.steps_per_epoch = t->cfg.steps_per_epoch;
    t->cfg.schedule.total_steps = t->cfg.total_steps;
    t->cfg.schedule.warmup_steps =
        (int64_t)llround(o->warmup_epochs * (double)t->cfg.steps_per_epoch);
    t->cfg.schedule.warmup_start_lr = o->warmup_start_lr;
}

static void trainer_start_loader(Trainer *t)
{
    const Options *o = &t->cfg.opt;
    LoaderConfig cfg = {
        .path = o->data, .split = SPLIT_TRAIN, .mode = LOADER_TRAIN, .crop = t->cfg.crop,
        .aug = (AugMode)o->aug, .batch = o->batch_size, .rank = t->cfg.dist.rank,
        .world = t->cfg.dist.size, .seed = o->seed, .drop_last = o->drop_last,
        .erase = o->random_erase,
        .start_step = t->state.step, .threads = o->loader_threads};
    Status st = {0};
    loader_create(&t->res.loader, &cfg, &st);
    status_agree(&st);
    if (cfg.aug == AUG_NONE)
        log_info("training data: no augmentation, %d loader %s", o->loader_threads,
                 o->loader_threads == 1 ? "thread" : "threads");
    else
        log_info("training data: %s augmentation, %d loader %s", augment_name(cfg.aug),
                 o->loader_threads, o->loader_threads == 1 ? "thread" : "threads");
}

static void fill_synthetic(Trainer *t)
{
    Rng rng;
    rng_seed(&rng, t->cfg.opt.seed, 0x5917, (uint64_t)t->cfg.dist.rank);
    size_t n = (size_t)t->cfg.local_batch * t->cfg.channels * t->cfg.crop * t->cfg.crop;
    float *x = net_input(t->res.net);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(2.0 * rng_uniform(&rng) - 1.0);
    for (int i = 0; i < t->cfg.local_batch; i++)
        t->res.labels[i] = (int32_t)rng_below(&rng, (uint64_t)t->cfg.num_classes);
    if (t->cfg.opt.mixup_alpha > 0 || t->cfg.opt.cutmix_alpha > 0) {
        t->res.synthetic_batch = xmalloc(n * sizeof *x);
        memcpy(t->res.synthetic_batch, x, n * sizeof *x);
    }
}

void trainer_start_inputs(Trainer *t)
{
    if (t->res.have_data)
        trainer_start_loader(t);
    else
        fill_synthetic(t);
}

void trainer_setup(Trainer *t)
{
    Status st = {0};
    trainer_set_threads(t);
    dnn_init();
    if (t->cfg.opt.eval_only)
        eval_only_adopt_checkpoint(&t->cfg.opt, &t->cfg.dist, &t->cfg.source, t->cfg.crop_from,
                                   sizeof t->cfg.crop_from);
    trainer_open_data(t);
    if (t->cfg.opt.eval_only)
        eval_only_check_data(&t->cfg.opt, &t->cfg.source, t->res.have_data ? &t->res.data : NULL,
                             t->cfg.num_classes);
    trainer_build(t);
    trainer_plan(t);
    trainer_agree_plan(t);
    trainer_restore(t);
    trainer_prepare_checkpoint_dir(t);
    trainer_make_output_dirs(t);
    if (t->cfg.dist.rank == 0)
        metrics_open(&t->res.metrics, t->cfg.opt.metrics, &st);
    status_agree(&st);
    dist_broadcast_state(&t->res.params);
    dist_check_params(&t->res.params, "at start");
    report_config(t);
}

void trainer_free(Trainer *t)
{
    metrics_close(&t->res.metrics);
    loader_free(t->res.loader);
    reducer_free(t->res.reducer);
    net_free(t->res.eval_rest);
    net_free(t->res.net);
    syncbn_free();
    params_free(&t->res.params);
    if (t->res.have_data)
        dataset_close(&t->res.data);
    dnn_free();
    free(t->res.labels);
    free(t->res.sample_index);
    free(t->res.partner_labels);
    free(t->res.partner_weights);
    free(t->res.synthetic_batch);
}
