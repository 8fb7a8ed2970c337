/* train_step.c - one training step: batch in, forward, backward, sums, update. */
#include "train_step.h"

#include <math.h>
#include <mpi.h>
#include <string.h>

#include "mix.h"
#include "timer.h"
#include "watchdog.h"

void trainer_read_train(Trainer *t)
{
    size_t pixels = (size_t)t->cfg.channels * t->cfg.crop * t->cfg.crop;
    if (!t->res.loader) { /* synthetic: the batch made at start stays, unmixed */
        if (t->res.synthetic_batch)
            memcpy(net_input(t->res.net), t->res.synthetic_batch,
                   (size_t)t->cfg.local_batch * pixels * sizeof(float));
        return;
    }
    float *images;
    int32_t *labels;
    t->state.times.wait_s += loader_next(t->res.loader, &images, &labels);
    memcpy(net_input(t->res.net), images, (size_t)t->cfg.local_batch * pixels * sizeof(float));
    memcpy(t->res.labels, labels, (size_t)t->cfg.local_batch * sizeof *labels);
}

/* Drop-path and dropout choices of step t->state.step derive from the epoch
 * and each sample's epoch position (sampler_position: the same for any
 * number of ranks). */
static void trainer_set_sample_keys(Trainer *t)
{
    int64_t first = t->state.step % t->cfg.steps_per_epoch * t->cfg.opt.batch_size +
                    (int64_t)t->cfg.dist.rank * t->cfg.local_batch;
    for (int i = 0; i < t->cfg.local_batch; i++)
        t->res.sample_index[i] = first + i;
    net_set_sample_keys(t->res.net, t->cfg.opt.seed, t->state.step / t->cfg.steps_per_epoch,
                        t->res.sample_index);
}

/* Mixup or cutmix of step t->state.step over the batch just read: the same
 * choice on every rank (keyed by the seed and the global step), pairs
 * within this rank's batch. NULL when neither is on. */
static const LossPartner *trainer_mix_batch(Trainer *t, LossPartner *partner)
{
    const Options *o = &t->cfg.opt;
    if (o->mixup_alpha <= 0 && o->cutmix_alpha <= 0)
        return NULL;
    MixChoice c = mix_choose(o->mixup_alpha, o->cutmix_alpha, o->seed, t->state.step,
                             t->cfg.crop, t->cfg.crop);
    mix_apply(&c, net_input(t->res.net), t->cfg.local_batch, t->cfg.channels, t->cfg.crop,
              t->cfg.crop);
    mix_targets(&c, t->res.labels, t->cfg.local_batch, t->res.partner_labels,
                t->res.partner_weights);
    *partner = (LossPartner){t->res.partner_labels, t->res.partner_weights};
    return partner;
}

void trainer_step(Trainer *t, StepRequests req, double out[STEP_NVALUES])
{
    double start = timer_now();
    watchdog_phase(WATCHDOG_COMPUTE, t->state.step + 1);
    trainer_set_sample_keys(t);
    LossPartner storage;
    const LossPartner *partner = trainer_mix_batch(t, &storage);
    net_forward(t->res.net, 1);
    LossStats ls = net_loss(t->res.net, t->res.labels, partner,
                            (float)t->cfg.opt.label_smoothing, 1, t->cfg.opt.batch_size);
    reducer_begin_step(t->res.reducer);
    net_backward(t->res.net);
    watchdog_phase(WATCHDOG_ALLREDUCE, t->state.step + 1);
    ReducerTimes rt = reducer_finish(t->res.reducer);
    t->state.times.exposed_s += rt.exposed_s;
    double local[STEP_NVALUES] = {
        [STEP_LOSS] = ls.loss_sum,          [STEP_TOP1] = (double)ls.top1,
        [STEP_TOP5] = (double)ls.top5,      [STEP_NONFINITE] = ls.nonfinite ? 1.0 : 0.0,
        [STEP_USR1] = req.usr1 ? 1.0 : 0.0, [STEP_TERM] = req.term ? 1.0 : 0.0,
        [STEP_CKPT_DUE] = req.ckpt_due ? 1.0 : 0.0};
    watchdog_phase(WATCHDOG_STEP_SUMS, t->state.step + 1);
    dist_allreduce(local, out, STEP_NVALUES, MPI_DOUBLE, MPI_SUM);
    if (out[STEP_NONFINITE] == 0.0 && isfinite(out[STEP_LOSS])) {
        sgd_step(&t->cfg.sgd, &t->res.params, t->state.lr);
        /* the weights and BN statistics are the same on every rank now */
        if (ema_due(&t->cfg.ema, t->state.step + 1))
            ema_update(&t->res.params, t->cfg.ema.decay);
    }
    t->state.times.step_s += timer_now() - start;
}
