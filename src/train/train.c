/* train.c - the training driver: set-up, the step loop, validation. */
#include "train.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "checkpoint.h"
#include "dataset.h"
#include "dist.h"
#include "error.h"
#include "h5lock.h"
#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "options.h"
#include "reducer.h"
#include "resnet.h"
#include "rng.h"
#include "sampler.h"
#include "sgd.h"
#include "syncbn.h"
#include "timer.h"
#include "version.h"


typedef struct {
    Options opt;
    DistInfo dist;
    Dataset data;
    int have_data;
    int channels, crop, num_classes, local_batch;
    Params params;
    Net *net;
    Metrics metrics;
    SgdConfig sgd;
    Reducer *reducer;
    Loader *loader; /* training batches, prefetched */
    Net *eval_rest; /* for a split's last partial batch on this rank; made once */
    LrSchedule schedule;
    double lr;         /* rate of the next step */
    double plateau_lr; /* the plateau rule's rate, used after warmup */
    int64_t step, steps_per_epoch, total_steps;
    Plateau plateau;
    double best_metric;
    double last_checkpoint_time;
    /* accumulated since the last progress line */
    double wait_s, exposed_s, step_s;
    char fingerprint[256];
    int32_t *labels;
    int64_t *sample_index; /* epoch positions of this step's local samples */
} Trainer;

typedef struct {
    double loss_sum;
    double top1, top5, count;
} EvalTotals;

/* Set by the signal handlers; read at step boundaries, where the ranks
 * agree on it through the per-step reduction. */
static volatile sig_atomic_t g_got_usr1, g_got_term;

static void on_usr1(int sig)
{
    (void)sig;
    g_got_usr1 = 1;
}

static void on_term(int sig)
{
    (void)sig;
    g_got_term = 1;
}

static void install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_usr1;
    SYS_CHECK(sigaction(SIGUSR1, &sa, NULL));
    sa.sa_handler = on_term;
    SYS_CHECK(sigaction(SIGTERM, &sa, NULL));
    SYS_CHECK(sigaction(SIGINT, &sa, NULL));
}

void train_version_string(char *out, unsigned long len)
{
    const dnnl_version_t *dv = dnnl_version();
    unsigned maj, min, rel;
    H5get_libversion(&maj, &min, &rel);
    char mpi[MPI_MAX_LIBRARY_VERSION_STRING];
    int n = 0;
    MPI_Get_library_version(mpi, &n);
    char *nl = strchr(mpi, ','); /* keep "Open MPI v4.1.4" */
    if (nl)
        *nl = '\0';
    snprintf(out, len, "resnet-dist %s (oneDNN %d.%d.%d, %s, HDF5 %u.%u.%u)", RESNET_VERSION,
             dv->major, dv->minor, dv->patch, mpi, maj, min, rel);
}

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
                status_set(&st, EXIT_USAGE, "--crop %d is larger than the %dx%d images of %s",
                           t->crop, t->data.height, t->data.width, o->data);
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
    status_agree(&st);
}

/* mkdir -p; returns 0 or -1 with errno set. */
static int make_dirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
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

/* The next training batch from the loader thread, into the network input. */
static void trainer_read_train(Trainer *t)
{
    if (!t->loader)
        return; /* synthetic: the batch made at start stays */
    float *images;
    int32_t *labels;
    t->wait_s += loader_next(t->loader, &images, &labels);
    memcpy(net_input(t->net), images,
           (size_t)t->local_batch * t->channels * t->crop * t->crop * sizeof(float));
    memcpy(t->labels, labels, (size_t)t->local_batch * sizeof *labels);
}

static void trainer_start_loader(Trainer *t)
{
    if (!t->have_data)
        return;
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

/* Rank 0's clock decides --checkpoint-minutes; the step reduction tells everyone. */
static double checkpoint_due(const Trainer *t)
{
    return t->dist.rank == 0 && t->opt.checkpoint_minutes > 0 &&
           timer_now() - t->last_checkpoint_time >= 60.0 * t->opt.checkpoint_minutes;
}

enum { STEP_LOSS, STEP_TOP1, STEP_NONFINITE, STEP_USR1, STEP_TERM, STEP_CKPT_DUE, STEP_NVALUES };

/* Drop-path and dropout choices of step t->step derive from the epoch and
 * each sample's epoch position (sampler_position: the same for any number
 * of ranks). */
static void trainer_set_sample_keys(Trainer *t)
{
    int64_t first = t->step % t->steps_per_epoch * t->opt.batch_size +
                    (int64_t)t->dist.rank * t->local_batch;
    for (int i = 0; i < t->local_batch; i++)
        t->sample_index[i] = first + i;
    net_set_sample_keys(t->net, t->opt.seed, t->step / t->steps_per_epoch, t->sample_index);
}

/* One optimizer step. out: the global loss sum and top-1 hits, and how many
 * ranks saw a non-finite loss, a SIGUSR1 or a SIGTERM/SIGINT. */
static void trainer_step(Trainer *t, double out[STEP_NVALUES])
{
    double start = timer_now();
    trainer_set_sample_keys(t);
    net_forward(t->net, 1);
    LossStats ls = net_loss(t->net, t->labels, (float)t->opt.label_smoothing, 1,
                            t->opt.batch_size);
    reducer_begin_step(t->reducer);
    net_backward(t->net);
    ReducerTimes rt = reducer_finish(t->reducer);
    t->exposed_s += rt.exposed_s;
    double local[STEP_NVALUES] = {ls.loss_sum, (double)ls.top1, ls.nonfinite ? 1.0 : 0.0,
                                  g_got_usr1, g_got_term, checkpoint_due(t)};
    MPI_CHECK(MPI_Allreduce(local, out, STEP_NVALUES, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
    if (out[STEP_NONFINITE] == 0.0 && isfinite(out[STEP_LOSS]))
        sgd_step(&t->sgd, &t->params, t->lr);
    t->step_s += timer_now() - start;
}

static void eval_batches(Net *net, Trainer *t, DatasetSplit split, int64_t first, int64_t n,
                         EvalTotals *tot)
{
    int b = net_config(net)->batch;
    int32_t *labels = xcalloc((size_t)b, sizeof *labels);
    for (int64_t i = 0; i + b <= n; i += b) {
        Status st = {0};
        if (dataset_read_batch(&t->data, split, first + i, b, t->crop, net_input(net), labels,
                               &st) != 0)
            fail_local(__FILE__, __LINE__, "dataset_read_batch", "%s", st.msg);
        net_forward(net, 0);
        LossStats ls = net_loss(net, labels, 0.0f, 0, b);
        tot->loss_sum += ls.loss_sum;
        tot->top1 += (double)ls.top1;
        tot->top5 += (double)ls.top5;
        tot->count += b;
    }
    free(labels);
}

/* Every image of the split exactly once across ranks: rank r evaluates
 * its contiguous share; the last partial batch runs on a net built for
 * that size, so nothing is padded or dropped. */
static EvalTotals trainer_evaluate(Trainer *t, DatasetSplit split)
{
    EvalTotals tot = {0};
    int64_t total = dataset_count(&t->data, split), w = t->dist.size, r = t->dist.rank;
    int64_t first = total * r / w, n = total * (r + 1) / w - first;
    int64_t full = n / t->local_batch * t->local_batch;
    eval_batches(t->net, t, split, first, full, &tot);
    if (n > full) {
        if (t->eval_rest && net_config(t->eval_rest)->batch != n - full) {
            net_free(t->eval_rest); /* another split, another remainder */
            t->eval_rest = NULL;
        }
        if (!t->eval_rest) {
            NetConfig cfg = *net_config(t->net);
            cfg.batch = (int)(n - full);
            t->eval_rest = net_create(&cfg, &t->params);
        }
        eval_batches(t->eval_rest, t, split, first + full, n - full, &tot);
    }
    EvalTotals sum;
    MPI_CHECK(MPI_Allreduce(&tot, &sum, 4, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
    CHECK((int64_t)sum.count == total, "validation saw %lld of %lld images",
          (long long)sum.count, (long long)total);
    return sum;
}

static void log_eval(Trainer *t, const char *kind, int64_t epoch, EvalTotals e)
{
    double loss = e.loss_sum / e.count, top1 = e.top1 / e.count, top5 = e.top5 / e.count;
    log_info("%s epoch %lld step %lld: loss %.4f top-1 error %.2f%% top-5 error %.2f%% (%lld images)",
             kind, (long long)epoch, (long long)t->step, loss, 100.0 * (1.0 - top1),
             100.0 * (1.0 - top5), (long long)e.count);
    metrics_begin(&t->metrics, kind);
    metrics_int(&t->metrics, "step", t->step);
    metrics_int(&t->metrics, "epoch", epoch);
    metrics_num(&t->metrics, "time", timer_unix_now());
    metrics_num(&t->metrics, "loss", loss);
    metrics_num(&t->metrics, "top1", top1);
    metrics_num(&t->metrics, "top5", top5);
    metrics_end(&t->metrics);
}

/* MLPerf logging convention: one JSON object per line behind ":::MLLOG". */
static void mllog(const Trainer *t, const char *key, double value, int64_t epoch)
{
    if (!t->opt.mllog || t->dist.rank != 0)
        return;
    printf(":::MLLOG {\"namespace\": \"\", \"time_ms\": %.0f, \"event_type\": \"POINT_IN_TIME\", "
           "\"key\": \"%s\", \"value\": %.6g, \"metadata\": {\"epoch_num\": %lld}}\n",
           1e3 * timer_unix_now(), key, value, (long long)epoch);
    fflush(stdout);
}

static void log_lr_change(Trainer *t, double lr, const char *reason)
{
    log_info("lr %g -> %g at step %lld: %s", t->lr, lr, (long long)t->step, reason);
    metrics_begin(&t->metrics, "lr");
    metrics_int(&t->metrics, "step", t->step);
    metrics_int(&t->metrics, "epoch", t->step / t->steps_per_epoch);
    metrics_num(&t->metrics, "time", timer_unix_now());
    metrics_num(&t->metrics, "lr", lr);
    metrics_str(&t->metrics, "reason", reason);
    metrics_end(&t->metrics);
}

/* The rate of the coming step from the schedule; logged where a phase or a
 * step decay changes it (warmup and cosine move every step, silently). */
static void trainer_update_lr(Trainer *t)
{
    double lr = lr_schedule_at(&t->schedule, t->step, t->plateau_lr);
    const LrSchedule *s = &t->schedule;
    if (t->step > 0 && t->step == s->warmup_steps)
        log_lr_change(t, lr, "end of warmup");
    else if (s->kind == SCHEDULE_STEP && t->step > s->warmup_steps &&
             lr_schedule_at(s, t->step - 1, t->plateau_lr) != lr)
        log_lr_change(t, lr, "step schedule milestone");
    t->lr = lr;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Deletes all but the newest `keep` step checkpoints (names sort by step). */
static void prune_checkpoints(const char *dir, int keep)
{
    DIR *d = opendir(dir);
    if (!d || keep <= 0) {
        if (d)
            closedir(d);
        return;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "step-", 5) == 0 && len > 3 && strcmp(e->d_name + len - 3, ".h5") == 0) {
            names = xrealloc(names, (n + 1) * sizeof *names);
            names[n++] = xstrdup(e->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i + (size_t)keep < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (unlink(path) != 0)
            log_warn("cannot remove old checkpoint %s: %s", path, strerror(errno));
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static void trainer_checkpoint(Trainer *t, const char *name, const char *why)
{
    t->last_checkpoint_time = timer_now();
    if (t->dist.rank != 0)
        return;
    CheckpointMeta m;
    checkpoint_meta_init(&m);
    snprintf(m.arch, sizeof m.arch, "%s", t->opt.arch);
    m.num_classes = t->num_classes;
    m.step = t->step;
    m.epoch = t->step / t->steps_per_epoch;
    m.epoch_step = t->step % t->steps_per_epoch;
    m.lr = lr_schedule_plateau_active(&t->schedule, t->step) ? t->plateau_lr : t->lr;
    m.global_batch = t->opt.batch_size;
    m.seed = t->opt.seed;
    m.world_size = t->dist.size;
    m.best_metric = t->best_metric;
    snprintf(m.dataset_fingerprint, sizeof m.dataset_fingerprint, "%s", t->fingerprint);
    snprintf(m.command_line, sizeof m.command_line, "%s", t->opt.command_line);
    train_version_string(m.version, sizeof m.version);
    m.has_plateau = 1;
    m.plateau = t->plateau;
    char path[4096];
    if (name)
        snprintf(path, sizeof path, "%s/%s", t->opt.checkpoint_dir, name);
    else
        checkpoint_path(path, sizeof path, t->opt.checkpoint_dir, t->step);
    SYS_CHECK(make_dirs(t->opt.checkpoint_dir));
    checkpoint_write(path, &t->params, &m);
    if (!name)
        prune_checkpoints(t->opt.checkpoint_dir, t->opt.keep);
    log_info("checkpoint %s (%s)", path, why);
    metrics_begin(&t->metrics, "checkpoint");
    metrics_int(&t->metrics, "step", t->step);
    metrics_num(&t->metrics, "time", timer_unix_now());
    metrics_str(&t->metrics, "path", path);
    metrics_str(&t->metrics, "reason", why);
    metrics_end(&t->metrics);
}

/* Rank 0 steps the plateau rule; everyone applies the broadcast result. */
static void trainer_validate(Trainer *t, int64_t epoch)
{
    EvalTotals e = trainer_evaluate(t, SPLIT_VAL);
    log_eval(t, "val", epoch, e);
    mllog(t, "eval_accuracy", e.top1 / e.count, epoch + 1);
    double metric = t->plateau.mode == PLATEAU_MIN ? e.loss_sum / e.count : e.top1 / e.count;
    int improved = isnan(t->best_metric) || plateau_is_better(&t->plateau, metric, t->best_metric);
    if (lr_schedule_plateau_active(&t->schedule, t->step)) {
        double lr = t->plateau_lr;
        if (t->dist.rank == 0)
            lr = plateau_step(&t->plateau, metric, t->plateau_lr);
        MPI_CHECK(MPI_Bcast(&lr, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD));
        MPI_CHECK(MPI_Bcast(&t->plateau, sizeof t->plateau, MPI_BYTE, 0, MPI_COMM_WORLD));
        if (lr != t->plateau_lr) {
            char why[128];
            snprintf(why, sizeof why, "validation %s did not improve for %d validations",
                     t->plateau.mode == PLATEAU_MIN ? "loss" : "top-1", t->opt.plateau.patience + 1);
            log_lr_change(t, lr, why);
            t->plateau_lr = t->lr = lr;
        }
    }
    if (improved) {
        t->best_metric = metric;
        trainer_checkpoint(t, "best.h5", "best validation so far");
    }
}

/* On a terminal: a live line for the current epoch, a few times a second. */
static void progress_tick(Trainer *t, double loss, double seconds, int64_t steps)
{
    static double last;
    double now = timer_now();
    if (!log_is_tty() || steps == 0 || now - last < 0.25)
        return;
    last = now;
    int64_t in_epoch = (t->step - 1) % t->steps_per_epoch + 1;
    char bar[31];
    int filled = (int)(30 * in_epoch / t->steps_per_epoch);
    for (int i = 0; i < 30; i++)
        bar[i] = i < filled ? '=' : ' ';
    bar[30] = '\0';
    double per_step = seconds / (double)steps;
    double eta = (double)(t->steps_per_epoch - in_epoch) * per_step;
    log_live("epoch %lld [%s] %lld/%lld loss %.4f %.1f img/s epoch eta %d:%02d",
             (long long)((t->step - 1) / t->steps_per_epoch), bar, (long long)in_epoch,
             (long long)t->steps_per_epoch, loss, t->opt.batch_size / per_step, (int)eta / 60,
             (int)eta % 60);
}

static void log_train(Trainer *t, double loss, double top1, double seconds, int64_t steps)
{
    int64_t epoch = (t->step - 1) / t->steps_per_epoch;
    int64_t in_epoch = (t->step - 1) % t->steps_per_epoch + 1;
    double img_per_s = (double)steps * t->opt.batch_size / seconds;
    double busy = t->wait_s + t->step_s;
    double wait = busy > 0 ? t->wait_s / busy : 0, comm = busy > 0 ? t->exposed_s / busy : 0;
    double eta_min = (double)(t->total_steps - t->step) * seconds / (double)steps / 60.0;
    double compute_ms = 1e3 * (t->step_s - t->exposed_s) / (double)steps;
    log_info("epoch %lld step %lld/%lld loss %.4f top-1 %.3f lr %.5g img/s %.1f (%.1f per rank) "
             "compute %.0f ms/step data-wait %.1f%% comm %.1f%% eta %.1f min",
             (long long)epoch, (long long)in_epoch, (long long)t->steps_per_epoch, loss, top1,
             t->lr, img_per_s, img_per_s / t->dist.size, compute_ms, 100 * wait, 100 * comm,
             eta_min);
    metrics_begin(&t->metrics, "train");
    metrics_int(&t->metrics, "step", t->step);
    metrics_int(&t->metrics, "epoch", epoch);
    metrics_num(&t->metrics, "time", timer_unix_now());
    metrics_num(&t->metrics, "loss", loss);
    metrics_num(&t->metrics, "top1", top1);
    metrics_num(&t->metrics, "lr", t->lr);
    metrics_num(&t->metrics, "img_per_s", img_per_s);
    metrics_num(&t->metrics, "data_wait", wait);
    metrics_num(&t->metrics, "comm_exposed", comm);
    metrics_num(&t->metrics, "compute_ms", compute_ms);
    metrics_end(&t->metrics);
    t->wait_s = t->exposed_s = t->step_s = 0;
}

/* After a step: validation, checkpoints and stop requests, all decided from
 * values every rank holds. Returns an exit code to stop with, or -1. */
static int trainer_after_step(Trainer *t, const double g[STEP_NVALUES], int have_val)
{
    const Options *o = &t->opt;
    int last = t->step == t->total_steps, epoch_end = t->step % t->steps_per_epoch == 0;
    int64_t epoch = (t->step - 1) / t->steps_per_epoch;
    int stop = !last && (g[STEP_USR1] > 0 || g[STEP_TERM] > 0);
    if (have_val && (last || (epoch_end && (epoch + 1) % o->val_every == 0)))
        trainer_validate(t, epoch);
    if (last)
        trainer_checkpoint(t, NULL, "end of training");
    else if (stop)
        trainer_checkpoint(t, NULL, "stop requested by a signal");
    else if (epoch_end && o->checkpoint_every && (epoch + 1) % o->checkpoint_every == 0)
        trainer_checkpoint(t, NULL, "end of epoch");
    else if (g[STEP_CKPT_DUE] > 0)
        trainer_checkpoint(t, NULL, "--checkpoint-minutes elapsed");
    if (o->check_every && t->step % o->check_every == 0)
        dist_check_params(&t->params, "during training");
    if (!stop)
        return -1;
    int code = g[STEP_TERM] > 0 ? EXIT_STOPPED : EXIT_REQUEUE;
    log_info("stopping at step %lld on %s (exit %d)", (long long)t->step,
             code == EXIT_STOPPED ? "SIGTERM/SIGINT" : "SIGUSR1", code);
    return code;
}

static int trainer_run(Trainer *t)
{
    const Options *o = &t->opt;
    int have_val = t->have_data && dataset_count(&t->data, SPLIT_VAL) > 0;
    double t0 = timer_now(), loss_acc = 0, top1_acc = 0;
    int64_t since_log = 0;
    t->last_checkpoint_time = t0;
    mllog(t, "run_start", 0, t->step / t->steps_per_epoch);
    while (t->step < t->total_steps) {
        trainer_update_lr(t);
        trainer_read_train(t);
        double g[STEP_NVALUES];
        trainer_step(t, g);
        if (g[STEP_NONFINITE] != 0.0 || !isfinite(g[STEP_LOSS])) {
            log_info("error: loss is not finite at step %lld (lr %g); stopping, the last "
                     "checkpoint is kept", (long long)t->step + 1, t->lr);
            return EXIT_NONFINITE;
        }
        t->step++;
        loss_acc += g[STEP_LOSS] / o->batch_size;
        top1_acc += g[STEP_TOP1] / o->batch_size;
        since_log++;
        progress_tick(t, loss_acc / since_log, timer_now() - t0, since_log);
        if (t->step % o->log_every == 0 || t->step == t->total_steps) {
            double now = timer_now();
            log_train(t, loss_acc / since_log, top1_acc / since_log, now - t0, since_log);
            t0 = now, loss_acc = top1_acc = 0, since_log = 0;
        }
        int code = trainer_after_step(t, g, have_val);
        if (code >= 0)
            return code;
    }
    mllog(t, "run_stop", 1, t->step / t->steps_per_epoch);
    return EXIT_OK;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    SYS_CHECK(getrusage(RUSAGE_SELF, &ru));
    return (double)ru.ru_maxrss / 1024.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int trainer_bench(Trainer *t)
{
    const Options *o = &t->opt;
    double *ms = xcalloc((size_t)o->bench_steps, sizeof *ms), g[STEP_NVALUES];
    for (int i = 0; i < o->bench_warmup; i++) {
        trainer_read_train(t);
        trainer_step(t, g);
    }
    t->exposed_s = 0;
    double start = timer_now();
    for (int i = 0; i < o->bench_steps; i++) {
        double s = timer_now();
        trainer_read_train(t);
        trainer_step(t, g);
        ms[i] = 1e3 * (timer_now() - s);
    }
    double elapsed = timer_now() - start;
    double exposed_ms = 1e3 * t->exposed_s / o->bench_steps;
    /* The same allreduces with no backward to hide behind. */
    double alone = timer_now();
    for (int i = 0; i < o->bench_steps; i++) {
        reducer_begin_step(t->reducer);
        reducer_finish(t->reducer);
    }
    double alone_ms = 1e3 * (timer_now() - alone) / o->bench_steps;
    /* With one rank there is nothing to hide: the fraction is undefined. */
    char hidden[32] = "null";
    if (t->dist.size > 1 && alone_ms > 0)
        snprintf(hidden, sizeof hidden, "%.3f", 1.0 - exposed_ms / alone_ms);
    qsort(ms, (size_t)o->bench_steps, sizeof *ms, cmp_double);
    double rss = peak_rss_mb(), rss_max;
    MPI_CHECK(MPI_Reduce(&rss, &rss_max, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD));
    if (t->dist.rank == 0)
        printf("{\"arch\":\"%s\",\"batch\":%d,\"crop\":%d,\"ranks\":%d,\"threads\":%d,"
               "\"img_per_s\":%.2f,\"step_ms_median\":%.2f,\"peak_rss_mb\":%.1f,"
               "\"gmacs_per_image\":%.4f,\"buckets\":%d,\"comm_exposed_ms\":%.3f,"
               "\"comm_alone_ms\":%.3f,\"hidden_fraction\":%s}\n",
               o->arch, o->batch_size, t->crop, t->dist.size, o->threads,
               o->bench_steps * o->batch_size / elapsed, ms[o->bench_steps / 2], rss_max,
               net_macs_per_image(t->net) / 1e9, reducer_bucket_count(t->reducer), exposed_ms,
               alone_ms, hidden);
    fflush(stdout);
    free(ms);
    return EXIT_OK;
}

static int trainer_eval_only(Trainer *t)
{
    DatasetSplit split = strcmp(t->opt.split, "test") == 0 ? SPLIT_TEST : SPLIT_VAL;
    Status st = {0};
    if (dataset_count(&t->data, split) == 0)
        status_set(&st, EXIT_USAGE, "%s has no /%s split to evaluate", t->opt.data, t->opt.split);
    status_agree(&st);
    EvalTotals e = trainer_evaluate(t, split);
    log_eval(t, split == SPLIT_TEST ? "test" : "val", t->step / (t->steps_per_epoch ? t->steps_per_epoch : 1), e);
    return EXIT_OK;
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

static const char *schedule_name(ScheduleKind k)
{
    return k == SCHEDULE_PLATEAU ? "plateau" : k == SCHEDULE_STEP ? "step" : "cosine";
}

/* --dry-run: what the run would do, after every check has passed. */
static void trainer_print_plan(Trainer *t)
{
    const LrSchedule *s = &t->schedule;
    log_info("dry run: flags, dataset, checkpoint directory and resume point are fine");
    log_info("plan: %lld steps per epoch of %d images (%d per rank), steps %lld to %lld, "
             "checkpoints in %s", (long long)t->steps_per_epoch, t->opt.batch_size,
             t->local_batch, (long long)t->step, (long long)t->total_steps, t->opt.checkpoint_dir);
    if (s->warmup_steps > 0)
        log_info("plan: warmup steps 0-%lld, lr %g rising linearly to %g",
                 (long long)s->warmup_steps - 1, s->warmup_start_lr, s->lr);
    log_info("plan: then %s schedule from lr %g", schedule_name(s->kind),
             lr_schedule_at(s, s->warmup_steps, t->plateau_lr));
    if (s->kind == SCHEDULE_STEP)
        for (int i = 0; i < s->n_milestones; i++) {
            int64_t step = (int64_t)s->milestones[i] * t->steps_per_epoch;
            if (step < t->total_steps)
                log_info("plan: epoch %d (step %lld): lr %g", s->milestones[i], (long long)step,
                         lr_schedule_at(s, step, t->plateau_lr));
        }
    if (s->kind == SCHEDULE_COSINE)
        log_info("plan: cosine down to %g at step %lld", s->min_lr, (long long)t->total_steps);
    if (s->kind == SCHEDULE_PLATEAU)
        log_info("plan: plateau on %s, factor %g, patience %d, threshold %g (%s), cooldown %d, "
                 "min lr %g", t->plateau.mode == PLATEAU_MIN ? "val_loss" : "val_top1",
                 t->plateau.factor, t->plateau.patience, t->plateau.threshold,
                 t->plateau.threshold_mode == THRESHOLD_REL ? "rel" : "abs", t->plateau.cooldown,
                 t->plateau.min_lr);
}

static void trainer_log_config(Trainer *t)
{
    char version[512];
    train_version_string(version, sizeof version);
    log_info("%s", version);
    if (t->dist.rank == 0)
        options_print(&t->opt, stdout);
    log_info("ranks %d x threads %d, %s: %zu parameters, %.3f GMACs per %dx%d image; %lld steps "
             "per epoch, %lld steps in total",
             t->dist.size, t->opt.threads, t->opt.arch, params_numel(&t->params),
             net_macs_per_image(t->net) / 1e9, t->crop, t->crop, (long long)t->steps_per_epoch,
             (long long)t->total_steps);
    metrics_begin(&t->metrics, "config");
    metrics_num(&t->metrics, "time", timer_unix_now());
    metrics_str(&t->metrics, "arch", t->opt.arch);
    metrics_int(&t->metrics, "ranks", t->dist.size);
    metrics_int(&t->metrics, "threads", t->opt.threads);
    metrics_int(&t->metrics, "global_batch", t->opt.batch_size);
    metrics_num(&t->metrics, "lr", t->lr);
    metrics_int(&t->metrics, "steps_per_epoch", t->steps_per_epoch);
    metrics_int(&t->metrics, "total_steps", t->total_steps);
    metrics_str(&t->metrics, "command_line", t->opt.command_line);
    metrics_end(&t->metrics);
}

static char *join_argv(int argc, char **argv)
{
    size_t len = 1;
    for (int i = 0; i < argc; i++)
        len += strlen(argv[i]) + 1;
    char *s = xcalloc(len, 1);
    for (int i = 0; i < argc; i++) {
        strcat(s, argv[i]);
        if (i + 1 < argc)
            strcat(s, " ");
    }
    return s;
}

int train_main(int argc, char **argv)
{
    Trainer *t = xcalloc(1, sizeof *t);
    dist_init(&argc, &argv, &t->dist);
    h5_quiet();
    Status st = {0};
    options_defaults(&t->opt);
    options_parse(&t->opt, argc, argv, &st);
    char *cmd = join_argv(argc, argv);
    t->opt.command_line = cmd;
    if (t->opt.show_help && t->dist.rank == 0)
        options_usage(stdout);
    if (t->opt.show_version && t->dist.rank == 0) {
        char v[512];
        train_version_string(v, sizeof v);
        printf("%s\n", v);
    }
    if (t->opt.show_help || t->opt.show_version)
        exit_all(EXIT_OK);
    status_agree(&st);
    if (t->opt.list_archs) {
        if (t->dist.rank == 0) {
            dnn_init();
            arch_list(stdout, t->opt.crop, t->opt.num_classes, t->opt.small_stem);
            dnn_free();
        }
        exit_all(EXIT_OK);
    }
    dist_check_same_config(cmd);

    log_set_live(t->opt.progress);
    install_signal_handlers();
    trainer_set_threads(t);
    dnn_init();
    trainer_open_data(t);
    trainer_build(t);
    trainer_make_output_dirs(t);
    if (t->dist.rank == 0)
        metrics_open(&t->metrics, t->opt.metrics, &st);
    status_agree(&st);
    trainer_plan(t);
    trainer_restore(t);
    dist_broadcast_state(&t->params);
    dist_check_params(&t->params, "at start");
    trainer_log_config(t);

    int code = EXIT_OK;
    if (t->opt.dry_run)
        trainer_print_plan(t);
    else if (t->opt.eval_only)
        code = trainer_eval_only(t);
    else {
        if (!t->have_data)
            fill_synthetic(t);
        trainer_start_loader(t);
        code = t->opt.bench ? trainer_bench(t) : trainer_run(t);
    }
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &code, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
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
    free(cmd);
    free(t);
    exit_all(code);
}
