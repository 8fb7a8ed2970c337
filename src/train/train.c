/* train.c - resnet_dist's driver: the step loop, validation, stop requests. */
#include "train.h"

#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "h5lock.h"
#include "loss.h"
#include "log.h"
#include "syncbn.h"
#include "timer.h"
#include "train_bench.h"
#include "train_ckpt.h"
#include "train_report.h"
#include "train_step.h"
#include "trainer.h"
#include "version.h"
#include "watchdog.h"

/* Set by the signal handlers; read at step boundaries, where the ranks
 * agree on it through the per-step reduction. */
static volatile sig_atomic_t g_got_usr1, g_got_term;
/* When the first stop signal came (monotonic seconds). A repeat sooner than
 * STOP_REPEAT_S after it is the same request delivered twice (Slurm signals
 * every process of a job, and the job script forwards what it gets). */
static volatile sig_atomic_t g_first_stop_s;
enum { STOP_REPEAT_S = 5 };

/* write(2) of text, prefixed "[rank R] " when rank >= 0: async-signal-safe. */
static void say(int rank, const char *text, size_t len)
{
    char prefix[32] = "[rank ", digits[12];
    size_t n = 6, d = 0;
    if (rank >= 0) {
        do
            digits[d++] = (char)('0' + rank % 10);
        while ((rank /= 10) > 0);
        while (d > 0)
            prefix[n++] = digits[--d];
        prefix[n++] = ']', prefix[n++] = ' ';
        ssize_t w = write(STDERR_FILENO, prefix, n);
        (void)w;
    }
    ssize_t w = write(STDERR_FILENO, text, len);
    (void)w;
}

#define SAY(rank, literal) say(rank, literal, sizeof literal - 1)

static sig_atomic_t monotonic_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* async-signal-safe */
    return (sig_atomic_t)ts.tv_sec;
}

/* The first stop signal is a request, acted on after the current step,
 * with a checkpoint. A second one, of either kind and at least STOP_REPEAT_S
 * later, ends the process at once: the way out of a step that never ends
 * (a hung read, a stopped peer) before the stall timeout. */
static void on_stop_signal(int sig)
{
    int repeat = g_got_usr1 || g_got_term, term = sig != SIGUSR1 || g_got_term;
    if (repeat && monotonic_s() - g_first_stop_s >= STOP_REPEAT_S) {
        if (term)
            SAY(log_rank_id(), "second stop signal: exiting at once, without a checkpoint (exit 4)\n");
        else
            SAY(log_rank_id(), "second stop signal: exiting at once, without a checkpoint (exit 3)\n");
        _exit(term ? EXIT_STOPPED : EXIT_REQUEUE);
    }
    if (!repeat)
        g_first_stop_s = monotonic_s();
    if (sig == SIGUSR1)
        g_got_usr1 = 1;
    else
        g_got_term = 1;
    if (!repeat && log_rank_id() == 0)
        SAY(-1, "stop requested by a signal: stopping with a checkpoint after this step "
                "(a second signal, 5 s or more later, stops at once)\n");
}

static void install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop_signal;
    SYS_CHECK(sigaction(SIGUSR1, &sa, NULL));
    SYS_CHECK(sigaction(SIGTERM, &sa, NULL));
    SYS_CHECK(sigaction(SIGINT, &sa, NULL));
}

/* The net for a batch of n images: the training net, or for the rank's last
 * shorter batch one built for that size (kept while the size repeats). */
static Net *eval_net_for(Trainer *t, int n)
{
    TrainResources *res = &t->res;
    if (n == t->cfg.local_batch)
        return res->net;
    if (res->eval_rest && net_config(res->eval_rest)->batch != n) {
        net_free(res->eval_rest); /* another split, another remainder */
        res->eval_rest = NULL;
    }
    if (!res->eval_rest) {
        NetConfig cfg = *net_config(res->net);
        cfg.batch = n;
        res->eval_rest = net_create(&cfg, &res->params);
    }
    return res->eval_rest;
}

/* The batch (n, c, h, w) in place, each image mirrored left to right. */
static void mirror_batch(float *x, int n, int c, int h, int w)
{
    for (size_t row = 0; row < (size_t)n * c * h; row++) {
        float *r = x + row * w;
        for (int i = 0, j = w - 1; i < j; i++, j--) {
            float v = r[i];
            r[i] = r[j];
            r[j] = v;
        }
    }
}

/* Every image of the split exactly once across ranks, through the loader in
 * evaluation mode (the same reads, decode and centre crop as training's
 * loader): rank r evaluates its contiguous share in batches of the local
 * training batch, the last one shorter, so nothing is padded or dropped.
 * With --tta flip each batch runs a second time mirrored, and the mean of
 * the two softmaxes gives the tta_ sums. With the weights in the network. */
static EvalTotals trainer_evaluate(Trainer *t, DatasetSplit split)
{
    const TrainConfig *c = &t->cfg;
    watchdog_phase(WATCHDOG_VALIDATION, t->state.step);
    LoaderConfig lc = {.path = c->opt.data, .split = split, .mode = LOADER_EVAL,
                       .crop = c->crop, .batch = c->local_batch, .rank = c->dist.rank,
                       .world = c->dist.size, .threads = c->opt.loader_threads};
    Loader *loader;
    Status st = {0};
    if (loader_create(&loader, &lc, &st) != 0) /* the file was open a moment ago */
        fail_local(__FILE__, __LINE__, "loader_create", "%s", st.msg);
    EvalTotals tot = {0};
    LoaderBatch b;
    float *plain_logits =
        c->opt.tta_flip ? xmalloc((size_t)c->local_batch * c->num_classes * sizeof(float)) : NULL;
    while (loader_next_batch(loader, &b, &st) == 0 && b.n > 0) {
        Net *net = eval_net_for(t, b.n);
        memcpy(net_input(net), b.images,
               (size_t)b.n * c->channels * c->crop * c->crop * sizeof(float));
        net_forward(net, 0);
        LossStats ls = net_loss(net, b.labels, NULL, 0.0f, 0, b.n);
        tot.loss_sum += ls.loss_sum;
        tot.top1 += (double)ls.top1;
        tot.top5 += (double)ls.top5;
        tot.count += b.n;
        if (plain_logits) {
            memcpy(plain_logits, net_logits(net), (size_t)b.n * c->num_classes * sizeof(float));
            mirror_batch(net_input(net), b.n, c->channels, c->crop, c->crop);
            net_forward(net, 0);
            ls = loss_mean_softmax_xent(plain_logits, net_logits(net), b.labels, b.n,
                                        c->num_classes);
            tot.tta_loss_sum += ls.loss_sum;
            tot.tta_top1 += (double)ls.top1;
            tot.tta_top5 += (double)ls.top5;
        }
        watchdog_progress();
    }
    if (st.code != 0)
        fail_local(__FILE__, __LINE__, "loader_next_batch", "%s", st.msg);
    loader_free(loader);
    free(plain_logits);
    EvalTotals sum;
    dist_allreduce(&tot, &sum, (int)(sizeof tot / sizeof(double)), MPI_DOUBLE, MPI_SUM);
    int64_t total = dataset_count(&t->res.data, split);
    CHECK((int64_t)sum.count == total, "validation saw %lld of %lld images",
          (long long)sum.count, (long long)total);
    return sum;
}

/* trainer_evaluate with the moving average in the network, then the
 * weights back, bit for bit. */
static EvalTotals trainer_evaluate_ema(Trainer *t, DatasetSplit split)
{
    ema_swap(&t->res.params);
    EvalTotals e = trainer_evaluate(t, split);
    ema_swap(&t->res.params);
    return e;
}

/* Evaluates split and reports it as kind: the weights (the average under
 * --model-ema-eval), and a kept average besides. Returns the figures the
 * plateau rule and best.h5 follow. */
static EvalTotals trainer_evaluate_report(Trainer *t, DatasetSplit split, const char *kind,
                                          int64_t epoch)
{
    int averaged = t->cfg.opt.model_ema_eval && t->res.params.ema;
    EvalTotals e = averaged ? trainer_evaluate_ema(t, split) : trainer_evaluate(t, split);
    EvalTotals ema;
    int besides = t->res.params.ema && !averaged;
    if (besides)
        ema = trainer_evaluate_ema(t, split);
    report_eval_all(t, kind, epoch, &e, besides ? &ema : NULL);
    return e;
}

/* The rate of the coming step from the schedule; logged where a phase or a
 * step decay changes it (warmup and cosine move every step, silently). */
static void trainer_update_lr(Trainer *t)
{
    double lr = lr_schedule_at(&t->cfg.schedule, t->state.step, t->state.plateau_lr);
    const LrSchedule *s = &t->cfg.schedule;
    if (t->state.step > 0 && t->state.step == s->warmup_steps)
        report_lr_change(t, lr, "end of warmup");
    else if (s->kind == SCHEDULE_STEP && t->state.step > s->warmup_steps &&
             lr_schedule_at(s, t->state.step - 1, t->state.plateau_lr) != lr)
        report_lr_change(t, lr, "step schedule milestone");
    t->state.lr = lr;
}

/* Rank 0 steps the plateau rule; everyone applies the broadcast result.
 * Returns -1, or the exit code when best.h5 could not be written. */
static int trainer_validate(Trainer *t, int64_t epoch)
{
    double start = timer_now();
    t->state.validation_pending = 0;
    EvalTotals e = trainer_evaluate_report(t, SPLIT_VAL, "val", epoch);
    report_mllog(t, "eval_accuracy", e.top1 / e.count, epoch + 1);
    double metric = t->state.plateau.mode == PLATEAU_MIN ? e.loss_sum / e.count : e.top1 / e.count;
    int improved = isnan(t->state.best_metric) ||
                   plateau_is_better(&t->state.plateau, metric, t->state.best_metric);
    if (lr_schedule_plateau_active(&t->cfg.schedule, t->state.step)) {
        double lr = t->state.plateau_lr;
        if (t->cfg.dist.rank == 0)
            lr = plateau_step(&t->state.plateau, metric, t->state.plateau_lr);
        MPI_CHECK(MPI_Bcast(&lr, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD));
        MPI_CHECK(MPI_Bcast(&t->state.plateau, sizeof t->state.plateau, MPI_BYTE, 0,
                            MPI_COMM_WORLD));
        if (lr != t->state.plateau_lr) {
            char why[128];
            snprintf(why, sizeof why, "validation %s did not improve for %d validations",
                     t->state.plateau.mode == PLATEAU_MIN ? "loss" : "top-1",
                     t->cfg.opt.plateau.patience + 1);
            report_lr_change(t, lr, why);
            t->state.plateau_lr = t->state.lr = lr;
        }
    }
    int code = -1;
    if (improved) {
        t->state.best_metric = metric;
        code = trainer_checkpoint(t, "best.h5", "best validation so far") ? EXIT_NONFINITE : -1;
    }
    t->state.validations++;
    t->state.validation_s += timer_now() - start;
    return code;
}

/* After a step: validation, checkpoints and stop requests, all decided from
 * values every rank holds. Returns an exit code to stop with, or -1. */
static int trainer_after_step(Trainer *t, const double g[STEP_NVALUES], int have_val)
{
    const Options *o = &t->cfg.opt;
    int last = t->state.step == t->cfg.total_steps;
    int epoch_end = t->state.step % t->cfg.steps_per_epoch == 0;
    int64_t epoch = (t->state.step - 1) / t->cfg.steps_per_epoch;
    int stop = !last && (g[STEP_USR1] > 0 || g[STEP_TERM] > 0);
    /* The checkpoint comes before the validation, so that a failure there
     * does not lose the epoch; it says the validation is still due, and a
     * run resumed from it validates first (a stopping run leaves it so). */
    t->state.validation_pending =
        have_val && (last || (epoch_end && (epoch + 1) % o->val_every == 0));
    const char *why = last   ? "end of training"
                      : stop ? "stop requested by a signal"
                      : epoch_end && o->checkpoint_every && (epoch + 1) % o->checkpoint_every == 0
                          ? "end of epoch"
                      : g[STEP_CKPT_DUE] > 0 ? "--checkpoint-minutes elapsed"
                                             : NULL;
    if (why && trainer_checkpoint(t, NULL, why) != 0)
        return EXIT_NONFINITE;
    if (t->state.validation_pending && !stop) {
        int code = trainer_validate(t, epoch);
        if (code >= 0)
            return code;
    }
    if (o->check_every && t->state.step % o->check_every == 0) {
        watchdog_phase(WATCHDOG_CHECKSUM, t->state.step);
        dist_check_params(&t->res.params, "during training");
    }
    if (!stop)
        return -1;
    int code = g[STEP_TERM] > 0 ? EXIT_STOPPED : EXIT_REQUEUE;
    log_info("stopping at step %lld on %s (exit %d)", (long long)t->state.step,
             code == EXIT_STOPPED ? "SIGTERM/SIGINT" : "SIGUSR1", code);
    return code;
}

/* The training line's numbers for the window just ended, with the time
 * left: the remaining steps at this window's pace and the remaining
 * validations (the one due at this step included) at their mean so far. */
static TrainStats trainer_window_stats(const Trainer *t, const TrainWindow *w, int have_val)
{
    TrainStats s = window_stats(w, t->state.times, t->cfg.opt.batch_size);
    int64_t vals = validations_left(t->state.step, t->cfg.total_steps, t->cfg.steps_per_epoch,
                                    have_val ? t->cfg.opt.val_every : 0);
    s.eta_s = eta_seconds(t->cfg.total_steps - t->state.step, w->seconds / (double)w->steps, vals,
                          t->state.validations, t->state.validation_s, &s.eta_has_validation);
    return s;
}

/* The stop signals and the --checkpoint-minutes clock, for the step's sums. */
static StepRequests trainer_requests(const Trainer *t)
{
    return (StepRequests){.usr1 = g_got_usr1, .term = g_got_term,
                          .ckpt_due = trainer_checkpoint_due(t)};
}

static int trainer_run(Trainer *t)
{
    const Options *o = &t->cfg.opt;
    int have_val = t->res.have_data && dataset_count(&t->res.data, SPLIT_VAL) > 0;
    TrainWindow w;
    t->state.last_checkpoint_time = timer_now();
    report_mllog(t, "run_start", 0, t->state.step / t->cfg.steps_per_epoch);
    if (t->state.validation_pending && have_val) {
        int code = trainer_validate(t, (t->state.step - 1) / t->cfg.steps_per_epoch);
        if (code >= 0)
            return code;
    }
    window_begin(&w, t->state.times);
    while (t->state.step < t->cfg.total_steps) {
        double start = timer_now();
        trainer_update_lr(t);
        watchdog_phase(WATCHDOG_DATA, t->state.step + 1);
        trainer_read_train(t);
        double g[STEP_NVALUES];
        trainer_step(t, trainer_requests(t), g);
        if (g[STEP_NONFINITE] != 0.0 || !isfinite(g[STEP_LOSS])) {
            log_info("error: loss is not finite at step %lld (lr %g); stopping, the last "
                     "checkpoint is kept", (long long)t->state.step + 1, t->state.lr);
            return EXIT_NONFINITE;
        }
        t->state.step++;
        window_add_step(&w, g[STEP_LOSS] / o->batch_size, g[STEP_TOP1] / o->batch_size,
                        g[STEP_TOP5] / o->batch_size, timer_now() - start);
        report_progress(t, &w);
        if (t->state.step % o->log_every == 0 || t->state.step == t->cfg.total_steps) {
            TrainStats s = trainer_window_stats(t, &w, have_val);
            report_train(t, &s);
            window_begin(&w, t->state.times);
        }
        /* validation and checkpoints fall between windows' steps: not in img/s */
        int code = trainer_after_step(t, g, have_val);
        if (code >= 0)
            return code;
    }
    report_mllog(t, "run_stop", 1, t->state.step / t->cfg.steps_per_epoch);
    return EXIT_OK;
}

static int trainer_eval_only(Trainer *t)
{
    DatasetSplit split = strcmp(t->cfg.opt.split, "test") == 0 ? SPLIT_TEST : SPLIT_VAL;
    Status st = {0};
    if (dataset_count(&t->res.data, split) == 0)
        status_set(&st, EXIT_USAGE, "%s has no /%s split to evaluate", t->cfg.opt.data,
                   t->cfg.opt.split);
    status_agree(&st);
    trainer_evaluate_report(t, split, split == SPLIT_TEST ? "test" : "val",
                            t->state.step / (t->cfg.steps_per_epoch ? t->cfg.steps_per_epoch : 1));
    return EXIT_OK;
}

/* argv as one line; the value `hide` (a flag's value inside argv, may be
 * NULL) is replaced by "<hidden>". */
static char *join_argv_hiding(int argc, char **argv, const char *hide)
{
    size_t len = 1 + sizeof "<hidden>";
    for (int i = 0; i < argc; i++)
        len += strlen(argv[i]) + 1;
    char *s = xcalloc(len, 1);
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(argv[i]);
        if (hide && hide >= argv[i] && hide <= argv[i] + n) {
            /* "--data=X" reads as "--data X" does */
            size_t flag = hide > argv[i] ? (size_t)(hide - argv[i]) - 1 : 0;
            strncat(s, argv[i], flag);
            strcat(s, flag ? " <hidden>" : "<hidden>");
        } else {
            strcat(s, argv[i]);
        }
        if (i + 1 < argc)
            strcat(s, " ");
    }
    return s;
}

static char *join_argv(int argc, char **argv)
{
    return join_argv_hiding(argc, argv, NULL);
}

int train_main(int argc, char **argv)
{
    Trainer *t = xcalloc(1, sizeof *t);
    dist_init(&argc, &argv, &t->cfg.dist);
    h5_quiet();
    Status st = {0};
    options_defaults(&t->cfg.opt);
    options_parse(&t->cfg.opt, argc, argv, &st);
    char *cmd = join_argv(argc, argv);
    t->cfg.opt.command_line = cmd;
    if (t->cfg.opt.show_help && t->cfg.dist.rank == 0)
        options_usage(stdout);
    if (t->cfg.opt.show_version && t->cfg.dist.rank == 0) {
        char v[512];
        version_string(v, sizeof v);
        printf("%s\n", v);
    }
    if (t->cfg.opt.show_help || t->cfg.opt.show_version)
        exit_all(EXIT_OK);
    status_agree(&st);
    if (t->cfg.opt.list_archs) {
        if (t->cfg.dist.rank == 0) {
            dnn_init();
            arch_list(stdout, t->cfg.opt.crop, t->cfg.opt.num_classes, t->cfg.opt.small_stem);
            dnn_free();
        }
        exit_all(EXIT_OK);
    }
    watchdog_start(t->cfg.opt.stall_timeout);
    /* The --data path may differ between nodes (a copy staged to each
     * node's disk); what it holds is compared once it is open. */
    char *compared = join_argv_hiding(argc, argv, t->cfg.opt.data);
    dist_check_same_config(compared);
    free(compared);

    log_set_live(t->cfg.opt.progress);
    install_signal_handlers();
    trainer_setup(t);
    int code = EXIT_OK;
    if (t->cfg.opt.dry_run)
        report_plan(t);
    else if (t->cfg.opt.eval_only)
        code = trainer_eval_only(t);
    else {
        trainer_start_inputs(t);
        code = t->cfg.opt.bench ? trainer_bench(t) : trainer_run(t);
    }
    watchdog_phase(WATCHDOG_SHUTDOWN, t->state.step);
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &code, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    trainer_free(t);
    free(cmd);
    free(t);
    exit_all(code);
}
