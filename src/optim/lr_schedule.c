/*
 * lr_schedule.c - torch.optim.lr_scheduler.ReduceLROnPlateau for one
 * parameter group, rule for rule, so a run decides exactly as PyTorch would
 * from the same metrics. Local and deterministic: rank 0 calls it on
 * globally reduced metrics and broadcasts the result.
 */
#include "lr_schedule.h"

#include <math.h>

void plateau_init(Plateau *s, PlateauMode mode)
{
    s->mode = mode;
    s->factor = 0.1;
    s->patience = 10;
    s->threshold = 1e-4;
    s->threshold_mode = THRESHOLD_REL;
    s->cooldown = 0;
    s->min_lr = 0.0;
    s->eps = 1e-8;
    /* torch's _reset(): best starts at the worst value for the mode. */
    s->best = mode == PLATEAU_MIN ? INFINITY : -INFINITY;
    s->num_bad_epochs = 0;
    s->cooldown_counter = 0;
    s->last_epoch = 0;
}

/* The expressions are torch's, term for term, so rounding matches too
 * (a NaN metric is never better, as in Python). */
int plateau_is_better(const Plateau *s, double a, double best)
{
    if (s->mode == PLATEAU_MIN && s->threshold_mode == THRESHOLD_REL)
        return a < best * (1.0 - s->threshold);
    if (s->mode == PLATEAU_MIN)
        return a < best - s->threshold;
    if (s->threshold_mode == THRESHOLD_REL)
        return a > best * (s->threshold + 1.0);
    return a > best + s->threshold;
}

/* torch's _reduce_lr: a reduction smaller than eps is not worth applying.
 * Written as Python's max(a, b), which keeps a unless b > a. */
static double plateau_reduce(const Plateau *s, double lr)
{
    double reduced = lr * s->factor;
    if (s->min_lr > reduced)
        reduced = s->min_lr;
    return lr - reduced > s->eps ? reduced : lr;
}

double plateau_step(Plateau *s, double metric, double lr)
{
    s->last_epoch += 1;
    if (plateau_is_better(s, metric, s->best)) {
        s->best = metric;
        s->num_bad_epochs = 0;
    } else {
        s->num_bad_epochs += 1;
    }
    /* Bad epochs during cooldown do not count (checked before patience). */
    if (s->cooldown_counter > 0) {
        s->cooldown_counter -= 1;
        s->num_bad_epochs = 0;
    }
    if (s->num_bad_epochs > s->patience) {
        lr = plateau_reduce(s, lr);
        s->cooldown_counter = s->cooldown;
        s->num_bad_epochs = 0;
    }
    return lr;
}
