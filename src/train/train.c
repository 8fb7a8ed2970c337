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
#include "log.h"
#include "syncbn.h"
#include "timer.h"
#include "train_bench.h"
#include "train_ckpt.h"
#include "train_report.h"
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

void trainer_read_train(Trainer *t)
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

void trainer_step(Trainer *t, double out[STEP_NVALUES])
{
    double start = timer_now();
    watchdog_phase(WATCHDOG_COMPUTE, t->step + 1);
    trainer_set_sample_keys(t);
    net_forward(t->net, 1);
    LossStats ls = net_loss(t->net, t->labels, (float)t->opt.label_smoothing, 1,
                            t->opt.batch_size);
    reducer_begin_step(t->reducer);
    net_backward(t->net);
    watchdog_phase(WATCHDOG_ALLREDUCE, t->step + 1);
    ReducerTimes rt = reducer_finish(t->reducer);
    t->exposed_s += rt.exposed_s;
    double local[STEP_NVALUES] = {ls.loss_sum, (double)ls.top1, ls.nonfinite ? 1.0 : 0.0,
                                  g_got_usr1, g_got_term, trainer_checkpoint_due(t)};
    watchdog_phase(WATCHDOG_STEP_SUMS, t->step + 1);
    dist_allreduce(local, out, STEP_NVALUES, MPI_DOUBLE, MPI_SUM);
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
        watchdog_progress();
    }
    free(labels);
}

/* Every image of the split exactly once across ranks: rank r evaluates
 * its contiguous share; the last partial batch runs on a net built for
 * that size, so nothing is padded or dropped. */
static EvalTotals trainer_evaluate(Trainer *t, DatasetSplit split)
{
    watchdog_phase(WATCHDOG_VALIDATION, t->step);
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
    dist_allreduce(&tot, &sum, 4, MPI_DOUBLE, MPI_SUM);
    CHECK((int64_t)sum.count == total, "validation saw %lld of %lld images",
          (long long)sum.count, (long long)total);
    return sum;
}

/* The rate of the coming step from the schedule; logged where a phase or a
 * step decay changes it (warmup and cosine move every step, silently). */
static void trainer_update_lr(Trainer *t)
{
    double lr = lr_schedule_at(&t->schedule, t->step, t->plateau_lr);
    const LrSchedule *s = &t->schedule;
    if (t->step > 0 && t->step == s->warmup_steps)
        report_lr_change(t, lr, "end of warmup");
    else if (s->kind == SCHEDULE_STEP && t->step > s->warmup_steps &&
             lr_schedule_at(s, t->step - 1, t->plateau_lr) != lr)
        report_lr_change(t, lr, "step schedule milestone");
    t->lr = lr;
}

/* Rank 0 steps the plateau rule; everyone applies the broadcast result.
 * Returns -1, or the exit code when best.h5 could not be written. */
static int trainer_validate(Trainer *t, int64_t epoch)
{
    t->validation_pending = 0;
    EvalTotals e = trainer_evaluate(t, SPLIT_VAL);
    report_eval(t, "val", epoch, e);
    report_mllog(t, "eval_accuracy", e.top1 / e.count, epoch + 1);
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
            report_lr_change(t, lr, why);
            t->plateau_lr = t->lr = lr;
        }
    }
    if (!improved)
        return -1;
    t->best_metric = metric;
    return trainer_checkpoint(t, "best.h5", "best validation so far") ? EXIT_NONFINITE : -1;
}

/* After a step: validation, checkpoints and stop requests, all decided from
 * values every rank holds. Returns an exit code to stop with, or -1. */
static int trainer_after_step(Trainer *t, const double g[STEP_NVALUES], int have_val)
{
    const Options *o = &t->opt;
    int last = t->step == t->total_steps, epoch_end = t->step % t->steps_per_epoch == 0;
    int64_t epoch = (t->step - 1) / t->steps_per_epoch;
    int stop = !last && (g[STEP_USR1] > 0 || g[STEP_TERM] > 0);
    /* The checkpoint comes before the validation, so that a failure there
     * does not lose the epoch; it says the validation is still due, and a
     * run resumed from it validates first (a stopping run leaves it so). */
    t->validation_pending = have_val && (last || (epoch_end && (epoch + 1) % o->val_every == 0));
    const char *why = last   ? "end of training"
                      : stop ? "stop requested by a signal"
                      : epoch_end && o->checkpoint_every && (epoch + 1) % o->checkpoint_every == 0
                          ? "end of epoch"
                      : g[STEP_CKPT_DUE] > 0 ? "--checkpoint-minutes elapsed"
                                             : NULL;
    if (why && trainer_checkpoint(t, NULL, why) != 0)
        return EXIT_NONFINITE;
    if (t->validation_pending && !stop) {
        int code = trainer_validate(t, epoch);
        if (code >= 0)
            return code;
    }
    if (o->check_every && t->step % o->check_every == 0) {
        watchdog_phase(WATCHDOG_CHECKSUM, t->step);
        dist_check_params(&t->params, "during training");
    }
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
    report_mllog(t, "run_start", 0, t->step / t->steps_per_epoch);
    if (t->validation_pending && have_val) {
        int code = trainer_validate(t, (t->step - 1) / t->steps_per_epoch);
        if (code >= 0)
            return code;
    }
    while (t->step < t->total_steps) {
        trainer_update_lr(t);
        watchdog_phase(WATCHDOG_DATA, t->step + 1);
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
        report_progress(t, loss_acc / since_log, timer_now() - t0, since_log);
        if (t->step % o->log_every == 0 || t->step == t->total_steps) {
            double now = timer_now();
            report_train(t, loss_acc / since_log, top1_acc / since_log, now - t0, since_log);
            t0 = now, loss_acc = top1_acc = 0, since_log = 0;
        }
        int code = trainer_after_step(t, g, have_val);
        if (code >= 0)
            return code;
    }
    report_mllog(t, "run_stop", 1, t->step / t->steps_per_epoch);
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
    if (t->opt.init_from)
        report_eval_only(t, split == SPLIT_TEST ? "test" : "val", e);
    else /* --resume: the run's own position */
        report_eval(t, split == SPLIT_TEST ? "test" : "val", t->step / (t->steps_per_epoch ? t->steps_per_epoch : 1), e);
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
        version_string(v, sizeof v);
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
    watchdog_start(t->opt.stall_timeout);
    /* The --data path may differ between nodes (a copy staged to each
     * node's disk); what it holds is compared once it is open. */
    char *compared = join_argv_hiding(argc, argv, t->opt.data);
    dist_check_same_config(compared);
    free(compared);

    log_set_live(t->opt.progress);
    install_signal_handlers();
    trainer_setup(t);
    int code = EXIT_OK;
    if (t->opt.dry_run)
        report_plan(t);
    else if (t->opt.eval_only)
        code = trainer_eval_only(t);
    else {
        trainer_start_inputs(t);
        code = t->opt.bench ? trainer_bench(t) : trainer_run(t);
    }
    watchdog_phase(WATCHDOG_SHUTDOWN, t->step);
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &code, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    trainer_free(t);
    free(cmd);
    free(t);
    exit_all(code);
}
