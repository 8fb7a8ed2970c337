/* train_report.c - log lines, progress, metrics and MLPerf lines of a run. */
#include "train_report.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "timer.h"
#include "version.h"

void report_eval(Trainer *t, const char *kind, int64_t epoch, EvalTotals e)
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

void report_mllog(const Trainer *t, const char *key, double value, int64_t epoch)
{
    if (!t->opt.mllog || t->dist.rank != 0)
        return;
    printf(":::MLLOG {\"namespace\": \"\", \"time_ms\": %.0f, \"event_type\": \"POINT_IN_TIME\", "
           "\"key\": \"%s\", \"value\": %.6g, \"metadata\": {\"epoch_num\": %lld}}\n",
           1e3 * timer_unix_now(), key, value, (long long)epoch);
    fflush(stdout);
}

void report_lr_change(Trainer *t, double lr, const char *reason)
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

void report_progress(Trainer *t, double loss, double seconds, int64_t steps)
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

void report_train(Trainer *t, double loss, double top1, double seconds, int64_t steps)
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

static const char *schedule_name(ScheduleKind k)
{
    return k == SCHEDULE_PLATEAU ? "plateau" : k == SCHEDULE_STEP ? "step" : "cosine";
}

void report_plan(Trainer *t)
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

/* " from step 32 (epoch 4)", or what the checkpoint does not say. */
static void source_position(const Trainer *t, char *out, size_t len)
{
    const CheckpointSpec *s = &t->source;
    if (s->step < 0)
        snprintf(out, len, " (it records no step: not written by resnet_dist)");
    else if (s->epoch < 0)
        snprintf(out, len, " from step %lld", (long long)s->step);
    else
        snprintf(out, len, " from step %lld (epoch %lld)", (long long)s->step,
                 (long long)s->epoch);
}

/* --eval-only: the checkpoint and what is evaluated; nothing of training. */
static void report_eval_config(Trainer *t)
{
    const Options *o = &t->opt;
    char where[96];
    source_position(t, where, sizeof where);
    log_info("eval-only: checkpoint %s%s: %s, %s stem, %d classes, %dx%d input", o->init_from,
             where, o->arch, o->small_stem ? "small" : "imagenet", t->num_classes, t->crop,
             t->crop);
    log_info("eval-only: /%s of %s, batch %d, ranks %d x threads %d, %zu parameters, %.3f "
             "GMACs per image", o->split, o->data, o->batch_size, t->dist.size, o->threads,
             params_numel(&t->params), net_macs_per_image(t->net) / 1e9);
    metrics_begin(&t->metrics, "config");
    metrics_num(&t->metrics, "time", timer_unix_now());
    metrics_str(&t->metrics, "arch", o->arch);
    metrics_str(&t->metrics, "checkpoint", o->init_from);
    metrics_int(&t->metrics, "ranks", t->dist.size);
    metrics_int(&t->metrics, "threads", o->threads);
    metrics_int(&t->metrics, "global_batch", o->batch_size);
    metrics_str(&t->metrics, "command_line", o->command_line);
    metrics_end(&t->metrics);
}

void report_eval_only(Trainer *t, const char *kind, EvalTotals e)
{
    const CheckpointSpec *s = &t->source;
    double loss = e.loss_sum / e.count, top1 = e.top1 / e.count, top5 = e.top5 / e.count;
    log_info("%s: loss %.4f top-1 error %.2f%% top-5 error %.2f%% (%lld images)", kind, loss,
             100.0 * (1.0 - top1), 100.0 * (1.0 - top5), (long long)e.count);
    metrics_begin(&t->metrics, kind);
    if (s->step >= 0)
        metrics_int(&t->metrics, "step", s->step);
    if (s->epoch >= 0)
        metrics_int(&t->metrics, "epoch", s->epoch);
    metrics_str(&t->metrics, "checkpoint", t->opt.init_from);
    metrics_num(&t->metrics, "time", timer_unix_now());
    metrics_num(&t->metrics, "loss", loss);
    metrics_num(&t->metrics, "top1", top1);
    metrics_num(&t->metrics, "top5", top5);
    metrics_end(&t->metrics);
}

void report_config(Trainer *t)
{
    char version[512];
    version_string(version, sizeof version);
    log_info("%s", version);
    if (t->opt.eval_only && t->opt.init_from) {
        report_eval_config(t);
        return;
    }
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
