/* train_ckpt.c - checkpoint names, pruning and cadence of a run. */
#include "train_ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "error.h"
#include "log.h"
#include "timer.h"
#include "train_report.h"
#include "version.h"
#include "watchdog.h"

int make_dirs(const char *path)
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

int trainer_checkpoint_due(const Trainer *t)
{
    return t->cfg.dist.rank == 0 && t->cfg.opt.checkpoint_minutes > 0 &&
           timer_now() - t->state.last_checkpoint_time >= 60.0 * t->cfg.opt.checkpoint_minutes;
}

/* Whether dir holds a finished checkpoint: a step-*.h5 or best.h5. Names
 * the first few in found. */
static int dir_has_checkpoints(const char *dir, char *found, size_t len)
{
    CheckpointFile *files;
    size_t n;
    found[0] = '\0';
    if (checkpoint_list(dir, &files, &n) != 0)
        return 0; /* missing: created later; unreadable: the resume or the write says so */
    char best[4096];
    snprintf(best, sizeof best, "%s/best.h5", dir);
    struct stat sb;
    int has_best = lstat(best, &sb) == 0;
    if (n)
        snprintf(found, len, "%s%s", files[0].name, n > 1 ? " and older step-*.h5" : "");
    if (has_best)
        snprintf(found + strlen(found), len - strlen(found), "%sbest.h5", n ? ", " : "");
    free(files);
    return n > 0 || has_best;
}

/* Removes the temporaries of checkpoint writes that were killed before
 * their rename; a symbolic link in their place is the user's to remove. */
static void remove_stale_temporaries(const char *dir, Status *st)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d)) != NULL && !st->code;) {
        if (!checkpoint_is_temporary(e->d_name))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode))
            status_set(st, EXIT_USAGE,
                       "%s is a symbolic link where a checkpoint's temporary file goes; remove it",
                       path);
        else if (unlink(path) == 0)
            log_info("removed %s, left by an interrupted checkpoint write", path);
        else if (errno != ENOENT)
            log_warn("cannot remove %s, left by an interrupted checkpoint write: %s", path,
                     strerror(errno));
    }
    closedir(d);
}

void trainer_prepare_checkpoint_dir(Trainer *t)
{
    const Options *o = &t->cfg.opt;
    Status st = {0};
    char found[256];
    if (o->overwrite && o->resume)
        status_set(&st, EXIT_USAGE, "--overwrite and --resume exclude each other");
    int writes = !o->eval_only && !o->bench;
    if (t->cfg.dist.rank == 0 && writes && !st.code && !o->resume &&
        dir_has_checkpoints(o->checkpoint_dir, found, sizeof found)) {
        if (o->overwrite)
            t->state.overwrite_pending = 1;
        else
            status_set(&st, EXIT_USAGE,
                       "--checkpoint-dir %s holds the checkpoints of an earlier run (%s): pass "
                       "--resume auto to continue it, another --checkpoint-dir, or --overwrite "
                       "to replace them", o->checkpoint_dir, found);
    }
    if (o->dry_run && st.code) { /* it writes nothing: a warning, and the plan */
        log_warn("%s; without --dry-run the run stops here (exit 2)", st.msg);
        st = (Status){0};
    }
    status_agree(&st);
    if (t->state.overwrite_pending)
        log_info("--overwrite: the checkpoints in %s (%s) are removed when this run writes its "
                 "first one", o->checkpoint_dir, found);
    if (t->cfg.dist.rank == 0 && writes && !o->dry_run)
        remove_stale_temporaries(o->checkpoint_dir, &st);
    status_agree(&st);
}

/* --overwrite, at this run's first checkpoint (just written as name): the
 * earlier run's step checkpoints and best.h5 go. */
static void remove_earlier_run(const char *dir, const char *name)
{
    CheckpointFile *files;
    size_t n;
    int removed = 0;
    char path[4096];
    if (checkpoint_list(dir, &files, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
            if (strcmp(files[i].name, name) == 0)
                continue;
            if (unlink(path) == 0)
                removed++;
            else
                log_warn("cannot remove %s of the earlier run: %s", path, strerror(errno));
        }
        free(files);
    }
    snprintf(path, sizeof path, "%s/best.h5", dir);
    if (strcmp(name, "best.h5") != 0 && unlink(path) == 0)
        removed++;
    log_info("--overwrite: removed %d checkpoint(s) of the earlier run from %s", removed, dir);
}

/* What evaluation and prediction need to feed the model without flags:
 * the stem the network has (CIFAR networks have the small one whatever
 * --stem says), its input size, and with a dataset (not --synthetic) how
 * its images were prepared and named. */
static void describe_input(CheckpointMeta *m, const Params *p, int small_stem, int input_size,
                           int resize_size, const Dataset *d)
{
    int conv1 = params_find(p, "conv1.weight");
    m->small_stem = conv1 >= 0 ? p->info[conv1].dims[3] == 3 : small_stem;
    m->input_size = input_size;
    if (!d)
        return;
    m->resize_size = resize_size;
    m->channels = d->channels;
    memcpy(m->mean, d->mean, sizeof m->mean);
    memcpy(m->std, d->std, sizeof m->std);
    m->num_class_names = d->num_class_names;
    m->class_names = (const char *const *)d->class_names;
    static int warned; /* once per run */
    if (m->num_class_names > CHECKPOINT_CLASS_NAMES_MAX && !warned++)
        log_warn("%s has %d class names, more than the %d a checkpoint stores: checkpoints "
                 "hold no class_names", d->path, m->num_class_names, CHECKPOINT_CLASS_NAMES_MAX);
}

/* Rank 0's part: the file and, once it is on disk, pruning. */
static int checkpoint_save(Trainer *t, const char *name, const char *why, Status *st)
{
    CheckpointMeta m;
    checkpoint_meta_init(&m);
    snprintf(m.arch, sizeof m.arch, "%s", t->cfg.opt.arch);
    m.num_classes = t->cfg.num_classes;
    m.step = t->state.step;
    m.epoch = t->state.step / t->cfg.steps_per_epoch;
    m.epoch_step = t->state.step % t->cfg.steps_per_epoch;
    m.lr = lr_schedule_plateau_active(&t->cfg.schedule, t->state.step) ? t->state.plateau_lr
                                                                         : t->state.lr;
    m.global_batch = t->cfg.opt.batch_size;
    m.seed = t->cfg.opt.seed;
    m.world_size = t->cfg.dist.size;
    m.best_metric = t->state.best_metric;
    snprintf(m.dataset_fingerprint, sizeof m.dataset_fingerprint, "%s", t->cfg.fingerprint);
    snprintf(m.command_line, sizeof m.command_line, "%s", t->cfg.opt.command_line);
    version_string(m.version, sizeof m.version);
    m.has_plateau = 1;
    m.plateau = t->state.plateau;
    m.validation_pending = name ? 0 : t->state.validation_pending;
    describe_input(&m, &t->res.params, t->cfg.opt.small_stem, t->cfg.crop, t->cfg.resize_size,
                   t->res.have_data ? &t->res.data : NULL);
    m.ema_decay = t->cfg.ema.decay;
    m.ema_every = t->cfg.ema.every;
    char path[4096], own[CHECKPOINT_NAME_MAX];
    if (name)
        snprintf(own, sizeof own, "%s", name);
    else
        snprintf(own, sizeof own, "step-%08lld.h5", (long long)t->state.step);
    const char *dir = t->cfg.opt.checkpoint_dir;
    CHECK((size_t)snprintf(path, sizeof path, "%s/%s", dir, own) < sizeof path,
          "checkpoint path too long in %s", dir);
    SYS_CHECK(make_dirs(t->cfg.opt.checkpoint_dir));
    if (checkpoint_write(path, &t->res.params, &m, st) != 0)
        return st->code;
    if (t->state.overwrite_pending) {
        remove_earlier_run(t->cfg.opt.checkpoint_dir, own);
        t->state.overwrite_pending = 0;
    } else if (!name) {
        checkpoint_prune(t->cfg.opt.checkpoint_dir, t->state.step, t->cfg.opt.keep);
    }
    log_info("checkpoint %s (%s)", path, why);
    metrics_begin(&t->res.metrics, "checkpoint");
    metrics_int(&t->res.metrics, "step", t->state.step);
    metrics_num(&t->res.metrics, "time", timer_unix_now());
    metrics_str(&t->res.metrics, "path", path);
    metrics_str(&t->res.metrics, "reason", why);
    metrics_end(&t->res.metrics);
    return 0;
}

int trainer_checkpoint(Trainer *t, const char *name, const char *why)
{
    t->state.last_checkpoint_time = timer_now();
    watchdog_phase(WATCHDOG_CHECKPOINT, t->state.step);
    Status st = {0};
    int code = t->cfg.dist.rank == 0 ? checkpoint_save(t, name, why, &st) : 0;
    MPI_CHECK(MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD));
    if (code)
        log_info("error: %s", st.msg);
    return code;
}
