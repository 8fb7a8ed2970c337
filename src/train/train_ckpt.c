/* train_ckpt.c - checkpoint names, pruning and cadence of a run. */
#include "train_ckpt.h"

#include <dirent.h>
#include <errno.h>
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

double trainer_checkpoint_due(const Trainer *t)
{
    return t->dist.rank == 0 && t->opt.checkpoint_minutes > 0 &&
           timer_now() - t->last_checkpoint_time >= 60.0 * t->opt.checkpoint_minutes;
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

void trainer_checkpoint(Trainer *t, const char *name, const char *why)
{
    t->last_checkpoint_time = timer_now();
    if (t->dist.rank != 0)
        return;
    watchdog_phase(WATCHDOG_CHECKPOINT, t->step);
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
    version_string(m.version, sizeof m.version);
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
