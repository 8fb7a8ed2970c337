/* train_report.c - log lines, progress, metrics and MLPerf lines of a run. */
#include "train_report.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "augment.h"
#include "log.h"
#include "timer.h"
#include "version.h"

/* --eval-only with --init-from: the position is the checkpoint's, not the
 * run's own. */
static int eval_of_checkpoint(const Trainer *t)
{
    return t->cfg.opt.eval_only && t->cfg.opt.init_from;
}

/* One evaluation line: "<kind> epoch E step S: loss ... (N images<note>)";
 * an --eval-only run of a checkpoint names the step once, before, so its
 * lines are "<kind>: loss ...". */
static void eval_line(const Trainer *t, const char *kind, int64_t epoch, double loss_sum,
                      double top1, double top5, double count, const char *note)
{
    char where[64] = "";
    if (!eval_of_checkpoint(t))
        snprintf(where, sizeof where, " epoch %lld step %lld", (long long)epoch,
                 (long long)t->state.step);
    log_info("%s%s: loss %.4f top-1 error %.2f%% top-5 error %.2f%% (%lld images%s)", kind,
             where, loss_sum / count, 100.0 * (1.0 - top1 / count), 100.0 * (1.0 - top5 / count),
             (long long)count, note);
}

/* loss, top1, top5 of e (the tta_ sums when tta) as "<prefix>loss" etc. */
static void eval_fields(Trainer *t, const char *prefix, const EvalTotals *e, int tta)
{
    char key[32];
    double sums[3] = {e->loss_sum, e->top1, e->top5};
    if (tta)
        sums[0] = e->tta_loss_sum, sums[1] = e->tta_top1, sums[2] = e->tta_top5;
    static const char *names[3] = {"loss", "top1", "top5"};
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof key, "%s%s", prefix, names[i]);
        metrics_num(&t->res.metrics, key, sums[i] / e->count);
    }
}

void report_eval_all(Trainer *t, const char *kind, int64_t epoch, const EvalTotals *e,
                     const EvalTotals *ema)
{
    int tta = t->cfg.opt.tta_flip, averaged = t->cfg.opt.model_ema_eval;
    char k[64];
    eval_line(t, kind, epoch, e->loss_sum, e->top1, e->top5, e->count,
              averaged ? ", averaged weights" : "");
    snprintf(k, sizeof k, "%s tta", kind);
    if (tta)
        eval_line(t, k, epoch, e->tta_loss_sum, e->tta_top1, e->tta_top5, e->count,
                  averaged ? ", averaged weights, flip" : ", flip");
    snprintf(k, sizeof k, "%s ema", kind);
    if (ema)
        eval_line(t, k, epoch, ema->loss_sum, ema->top1, ema->top5, ema->count, "");
    snprintf(k, sizeof k, "%s ema tta", kind);
    if (ema && tta)
        eval_line(t, k, epoch, ema->tta_loss_sum, ema->tta_top1, ema->tta_top5, ema->count,
                  ", flip");
    metrics_begin(&t->res.metrics, kind);
    if (eval_of_checkpoint(t)) {
        const CheckpointSpec *s = &t->cfg.source;
        if (s->step >= 0)
            metrics_int(&t->res.metrics, "step", s->step);
        if (s->epoch >= 0)
            metrics_int(&t->res.metrics, "epoch", s->epoch);
        metrics_str(&t->res.metrics, "checkpoint", t->cfg.opt.init_from);
    } else {
        metrics_int(&t->res.metrics, "step", t->state.step);
        metrics_int(&t->res.metrics, "epoch", epoch);
    }
    metrics_num(&t->res.metrics, "time", timer_unix_now());
    eval_fields(t, "", e, 0);
    if (averaged)
        metrics_str(&t->res.metrics, "weights", "ema");
    if (tta)
        eval_fields(t, "tta_", e, 1);
    if (ema)
        eval_fields(t, "ema_", ema, 0);
    if (ema && tta)
        eval_fields(t, "ema_tta_", ema, 1);
    metrics_end(&t->res.metrics);
}

void report_mllog(const Trainer *t, const char *key, double value, int64_t epoch)
{
    if (!t->cfg.opt.mllog || t->cfg.dist.rank != 0)
        return;
    printf(":::MLLOG {\"namespace\": \"\", \"time_ms\": %.0f, \"event_type\": \"POINT_IN_TIME\", "
           "\"key\": \"%s\", \"value\": %.6g, \"metadata\": {\"epoch_num\": %lld}}\n",
           1e3 * timer_unix_now(), key, value, (long long)epoch);
    fflush(stdout);
}

void report_lr_change(Trainer *t, double lr, const char *reason)
{
    log_info("lr %g -> %g at step %lld: %s", t->state.lr, lr, (long long)t->state.step, reason);
    metrics_begin(&t->res.metrics, "lr");
    metrics_int(&t->res.metrics, "step", t->state.step);
    metrics_int(&t->res.metrics, "epoch", t->state.step / t->cfg.steps_per_epoch);
    metrics_num(&t->res.metrics, "time", timer_unix_now());
    metrics_num(&t->res.metrics, "lr", lr);
    metrics_str(&t->res.metrics, "reason", reason);
    metrics_end(&t->res.metrics);
}

void report_progress(Trainer *t, const TrainWindow *w)
{
    static double last;
    double now = timer_now();
    if (!log_is_tty() || w->steps == 0 || now - last < 0.25)
        return;
    last = now;
    int64_t in_epoch = (t->state.step - 1) % t->cfg.steps_per_epoch + 1;
    char bar[31], eta[32];
    int filled = (int)(30 * in_epoch / t->cfg.steps_per_epoch);
    for (int i = 0; i < 30; i++)
        bar[i] = i < filled ? '=' : ' ';
    bar[30] = '\0';
    double per_step = w->seconds / (double)w->steps;
    format_duration((double)(t->cfg.steps_per_epoch - in_epoch) * per_step, eta, sizeof eta);
    log_live("epoch %lld [%s] %lld/%lld loss %.4f %.1f img/s epoch eta %s",
             (long long)((t->state.step - 1) / t->cfg.steps_per_epoch), bar, (long long)in_epoch,
             (long long)t->cfg.steps_per_epoch, w->loss / (double)w->steps,
             t->cfg.opt.batch_size / per_step, eta);
}

void report_train(Trainer *t, const TrainStats *s)
{
    int64_t epoch = (t->state.step - 1) / t->cfg.steps_per_epoch;
    char eta[32];
    format_duration(s->eta_s, eta, sizeof eta);
    log_info("train epoch %lld step %lld/%lld: loss %.4f top-1 error %.2f%% top-5 error %.2f%% "
             "lr %.5g img/s %.1f (%.1f per rank) compute %.0f ms/step data-wait %.1f%% "
             "comm %.1f%% eta %s%s",
             (long long)epoch, (long long)t->state.step, (long long)t->cfg.total_steps, s->loss,
             100.0 * (1.0 - s->top1), 100.0 * (1.0 - s->top5), t->state.lr, s->img_per_s,
             s->img_per_s / t->cfg.dist.size, s->compute_ms, 100 * s->data_wait, 100 * s->comm,
             eta, s->eta_has_validation ? "" : " + validations");
    Metrics *m = &t->res.metrics;
    metrics_begin(m, "train");
    metrics_int(m, "step", t->state.step);
    metrics_int(m, "epoch", epoch);
    metrics_num(m, "time", timer_unix_now());
    metrics_num(m, "loss", s->loss);
    metrics_num(m, "top1", s->top1);
    metrics_num(m, "top5", s->top5);
    metrics_num(m, "lr", t->state.lr);
    metrics_num(m, "img_per_s", s->img_per_s);
    metrics_num(m, "data_wait", s->data_wait);
    metrics_num(m, "comm_exposed", s->comm);
    metrics_num(m, "compute_ms", s->compute_ms);
    metrics_end(m);
}

static const char *schedule_name(ScheduleKind k)
{
    return k == SCHEDULE_PLATEAU ? "plateau" : k == SCHEDULE_STEP ? "step" : "cosine";
}

void report_plan(Trainer *t)
{
    const LrSchedule *s = &t->cfg.schedule;
    log_info("dry run: flags, dataset, checkpoint directory and resume point are fine");
    log_info("plan: %lld step%s per epoch of %d images (%d per rank), steps %lld to %lld, "
             "checkpoints in %s", (long long)t->cfg.steps_per_epoch,
             t->cfg.steps_per_epoch == 1 ? "" : "s", t->cfg.opt.batch_size, t->cfg.local_batch, (long long)t->state.step, (long long)t->cfg.total_steps,
             t->cfg.opt.checkpoint_dir);
    if (s->warmup_steps > 0)
        log_info("plan: warmup steps 0-%lld, lr %g rising linearly to %g",
                 (long long)s->warmup_steps - 1, s->warmup_start_lr, s->lr);
    log_info("plan: then %s schedule from lr %g", schedule_name(s->kind),
             lr_schedule_at(s, s->warmup_steps, t->state.plateau_lr));
    if (s->kind == SCHEDULE_STEP)
        for (int i = 0; i < s->n_milestones; i++) {
            int64_t step = (int64_t)s->milestones[i] * t->cfg.steps_per_epoch;
            if (step < t->cfg.total_steps)
                log_info("plan: epoch %d (step %lld): lr %g", s->milestones[i], (long long)step,
                         lr_schedule_at(s, step, t->state.plateau_lr));
        }
    if (s->kind == SCHEDULE_COSINE)
        log_info("plan: cosine down to %g at step %lld", s->min_lr, (long long)t->cfg.total_steps);
    if (s->kind == SCHEDULE_PLATEAU)
        log_info("plan: plateau on %s, factor %g, patience %d, threshold %g (%s), cooldown %d, "
                 "min lr %g", t->state.plateau.mode == PLATEAU_MIN ? "val_loss" : "val_top1",
                 t->state.plateau.factor, t->state.plateau.patience, t->state.plateau.threshold,
                 t->state.plateau.threshold_mode == THRESHOLD_REL ? "rel" : "abs",
                 t->state.plateau.cooldown, t->state.plateau.min_lr);
}

/* A bounded text buffer: what does not fit is dropped, the length needed
 * is still counted. */
typedef struct {
    char *s;
    size_t len, used;
} Text;

static void put(Text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(Text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = t->used < t->len ? t->len - t->used : 0;
    int n = vsnprintf(room ? t->s + t->used : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->used += (size_t)n;
}

static void put_model(Text *x, const Options *o)
{
    put(x, "config: arch=%s", o->arch);
    if (!arch_has_fixed_stem(o->arch))
        put(x, " stem=%s", o->small_stem ? "small" : "imagenet");
    put(x, " num_classes=%d crop=%d", o->num_classes, o->crop);
    if (o->synthetic)
        put(x, " in_channels=%d", o->in_channels);
    put(x, " zero_init_residual=%d drop_path=%g", o->zero_init_residual, o->drop_path);
    if (arch_is_wrn(o->arch))
        put(x, " wrn_dropout=%g", o->wrn_dropout);
    put(x, " conv_algo=%s sync_bn=%d precision=fp32\n", o->winograd ? "winograd" : "direct",
        o->sync_bn);
}

static void put_data(Text *x, const Options *o)
{
    if (o->synthetic) {
        put(x, "config: data=synthetic (one random batch per rank, no augmentation)\n");
        return;
    }
    put(x, "config: data=%s aug=%s", o->data,
        o->aug >= 0 ? augment_name((AugMode)o->aug) : "default");
    if (o->random_erase > 0)
        put(x, " random_erase=%g", o->random_erase);
    put(x, " drop_last=%d loader_threads=%d\n", o->drop_last, o->loader_threads);
}

static void put_optimizer(Text *x, const TrainConfig *c)
{
    const Options *o = &c->opt;
    put(x, "config: batch_size=%d local_batch=%d lr=%g", o->batch_size, c->local_batch, o->lr);
    if (o->base_lr > 0)
        put(x, " base_lr=%g", o->base_lr);
    put(x, " momentum=%g nesterov=%d weight_decay=%g no_bn_decay=%d label_smoothing=%g",
        o->momentum, o->nesterov, o->weight_decay, o->no_bn_decay, o->label_smoothing);
    if (o->mixup_alpha > 0 || o->cutmix_alpha > 0)
        put(x, " mixup_alpha=%g cutmix_alpha=%g", o->mixup_alpha, o->cutmix_alpha);
    put(x, " seed=%llu\n", (unsigned long long)o->seed);
}

static void put_schedule(Text *x, const TrainConfig *c, const Plateau *p)
{
    const Options *o = &c->opt;
    const LrSchedule *s = &c->schedule;
    put(x, "config: schedule=%s epochs=%d", schedule_name(s->kind), o->epochs);
    if (o->max_steps)
        put(x, " max_steps=%lld", (long long)o->max_steps);
    put(x, " warmup_epochs=%g", o->warmup_epochs);
    if (o->warmup_epochs > 0)
        put(x, " warmup_start_lr=%g", o->warmup_start_lr);
    if (s->kind == SCHEDULE_PLATEAU)
        put(x, " plateau_metric=%s plateau_factor=%g plateau_patience=%d plateau_threshold=%g "
               "plateau_threshold_mode=%s plateau_cooldown=%d min_lr=%g",
            p->mode == PLATEAU_MIN ? "val_loss" : "val_top1", p->factor, p->patience, p->threshold,
            p->threshold_mode == THRESHOLD_REL ? "rel" : "abs", p->cooldown, p->min_lr);
    if (s->kind == SCHEDULE_STEP) {
        put(x, " lr_steps=");
        for (int i = 0; i < s->n_milestones; i++)
            put(x, "%s%d", i ? "," : "", s->milestones[i]);
        put(x, " lr_gamma=%g", s->gamma);
    }
    if (s->kind == SCHEDULE_COSINE)
        put(x, " min_lr=%g", s->min_lr);
    put(x, " val_every=%d\n", o->val_every);
}

static void put_checkpoints(Text *x, const Options *o)
{
    put(x, "config: checkpoint_dir=%s checkpoint_every=%d", o->checkpoint_dir,
        o->checkpoint_every);
    if (o->checkpoint_minutes > 0)
        put(x, " checkpoint_minutes=%g", o->checkpoint_minutes);
    else
        put(x, " checkpoint_minutes=off");
    if (o->keep)
        put(x, " keep=%d", o->keep);
    else
        put(x, " keep=all");
    if (o->resume)
        put(x, " resume=%s", o->resume);
    if (o->init_from)
        put(x, " init_from=%s", o->init_from);
    put(x, " bucket_mb=%g\n", o->bucket_mb);
}

static void put_averaging(Text *x, const Options *o)
{
    if (o->model_ema > 0)
        put(x, "config: model_ema=%g model_ema_every=%d model_ema_eval=%d", o->model_ema,
            o->model_ema_every, o->model_ema_eval);
    else
        put(x, "config: model_ema=off");
    if (o->init_from_ema)
        put(x, " init_from_ema=1");
    put(x, " tta=%s\n", o->tta_flip ? "flip" : "none");
}

size_t report_format_config(const TrainConfig *c, const Plateau *plateau, char *out, size_t len)
{
    Text x = {out, len, 0};
    if (len)
        out[0] = '\0';
    put_model(&x, &c->opt);
    put_data(&x, &c->opt);
    put_optimizer(&x, c);
    put_schedule(&x, c, plateau);
    put_checkpoints(&x, &c->opt);
    put_averaging(&x, &c->opt);
    return x.used;
}

static const char *plural(long long n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

/* " from step 32 (epoch 4)", or what the checkpoint does not say. */
static void source_position(const Trainer *t, char *out, size_t len)
{
    const CheckpointSpec *s = &t->cfg.source;
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
    const Options *o = &t->cfg.opt;
    char where[96];
    source_position(t, where, sizeof where);
    log_info("eval-only: checkpoint %s%s: %s, %s stem, %d classes, %dx%d input", o->init_from,
             where, o->arch, o->small_stem ? "small" : "imagenet", t->cfg.num_classes, t->cfg.crop,
             t->cfg.crop);
    log_info("eval-only: /%s of %s, batch %d, ranks %d x threads %d, %zu parameters, %.3f "
             "GMACs per image", o->split, o->data, o->batch_size, t->cfg.dist.size, o->threads,
             params_numel(&t->res.params), net_macs_per_image(t->res.net) / 1e9);
    metrics_begin(&t->res.metrics, "config");
    metrics_num(&t->res.metrics, "time", timer_unix_now());
    metrics_str(&t->res.metrics, "arch", o->arch);
    metrics_str(&t->res.metrics, "checkpoint", o->init_from);
    metrics_int(&t->res.metrics, "ranks", t->cfg.dist.size);
    metrics_int(&t->res.metrics, "threads", o->threads);
    metrics_int(&t->res.metrics, "global_batch", o->batch_size);
    metrics_str(&t->res.metrics, "command_line", o->command_line);
    metrics_end(&t->res.metrics);
}


/* --conv-algo winograd: how many convolutions got it. oneDNN 2.6 has
 * Winograd kernels only for AVX-512, so elsewhere the flag changes nothing
 * and the user should hear it. Returns the count that runs Winograd. */
static int report_winograd(const Trainer *t)
{
    int wanted, running;
    net_winograd_convs(t->res.net, &wanted, &running);
    if (running < wanted)
        log_warn("--conv-algo winograd: %d of the %d 3x3 stride-1 convolutions have no Winograd "
                 "implementation in oneDNN on this CPU and run direct (oneDNN 2.6 has Winograd "
                 "only on AVX-512 CPUs, and there not for every shape)",
                 wanted - running, wanted);
    else
        log_info("conv_algo: Winograd for all %d 3x3 stride-1 convolutions", wanted);
    return running;
}

void report_config(Trainer *t)
{
    char version[512], config[4096];
    version_string(version, sizeof version);
    log_info("%s", version);
    int winograd_convs = t->cfg.opt.winograd ? report_winograd(t) : 0;
    if (t->cfg.opt.eval_only && t->cfg.opt.init_from) {
        report_eval_config(t);
        return;
    }
    report_format_config(&t->cfg, &t->state.plateau, config, sizeof config);
    for (char *line = config, *end; *line; line = end + 1) {
        end = strchr(line, '\n');
        if (!end)
            break;
        *end = '\0';
        log_info("%s", line);
    }
    int ranks = t->cfg.dist.size, threads = t->cfg.opt.threads;
    long long per_epoch = t->cfg.steps_per_epoch, total = t->cfg.total_steps;
    log_info("%d %s x %d %s, %s: %zu parameters, %.3f GMACs per %dx%d image; %lld %s per "
             "epoch, %lld %s in total",
             ranks, plural(ranks, "rank", "ranks"), threads, plural(threads, "thread", "threads"),
             t->cfg.opt.arch, params_numel(&t->res.params), net_macs_per_image(t->res.net) / 1e9,
             t->cfg.crop, t->cfg.crop, per_epoch, plural(per_epoch, "step", "steps"), total,
             plural(total, "step", "steps"));
    Metrics *m = &t->res.metrics;
    metrics_begin(m, "config");
    metrics_num(m, "time", timer_unix_now());
    metrics_str(m, "arch", t->cfg.opt.arch);
    metrics_int(m, "ranks", t->cfg.dist.size);
    metrics_int(m, "threads", t->cfg.opt.threads);
    metrics_int(m, "global_batch", t->cfg.opt.batch_size);
    metrics_num(m, "lr", t->state.lr);
    metrics_int(m, "steps_per_epoch", t->cfg.steps_per_epoch);
    metrics_int(m, "total_steps", t->cfg.total_steps);
    if (t->cfg.opt.winograd)
        metrics_int(m, "winograd_convs", winograd_convs);
    metrics_str(m, "command_line", t->cfg.opt.command_line);
    metrics_end(m);
}
