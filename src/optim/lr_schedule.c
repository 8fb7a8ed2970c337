/*
 * lr_schedule.c - torch.optim.lr_scheduler.ReduceLROnPlateau for one
 * parameter group, rule for rule, so a run decides exactly as PyTorch would
 * from the same metrics; and the step-based schedules (warmup, step decay,
 * cosine). Local and deterministic: rank 0 calls the plateau rule on
 * globally reduced metrics and broadcasts the result.
 */
#include "lr_schedule.h"

#include <math.h>
#include <stdlib.h>

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

double lr_schedule_at(const LrSchedule *s, int64_t step, double plateau_lr)
{
    if (step < s->warmup_steps)
        return s->warmup_start_lr +
               (s->lr - s->warmup_start_lr) * (double)step / (double)s->warmup_steps;
    switch (s->kind) {
    case SCHEDULE_PLATEAU:
        return plateau_lr;
    case SCHEDULE_STEP: {
        double lr = s->lr;
        int64_t epoch = step / s->steps_per_epoch;
        for (int i = 0; i < s->n_milestones; i++)
            if (epoch >= s->milestones[i])
                lr *= s->gamma;
        return lr;
    }
    case SCHEDULE_COSINE: {
        int64_t span = s->total_steps - s->warmup_steps;
        double t = span > 0 ? (double)(step - s->warmup_steps) / (double)span : 1.0;
        return s->min_lr + (s->lr - s->min_lr) * 0.5 * (1.0 + cos(M_PI * t));
    }
    }
    return s->lr;
}

int lr_schedule_plateau_active(const LrSchedule *s, int64_t step)
{
    return s->kind == SCHEDULE_PLATEAU && step >= s->warmup_steps;
}

int lr_schedule_parse_milestones(LrSchedule *s, const char *text)
{
    s->n_milestones = 0;
    const char *p = text;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 1000000 || s->n_milestones == LR_MAX_MILESTONES)
            return 0;
        if (s->n_milestones && v <= s->milestones[s->n_milestones - 1])
            return 0;
        s->milestones[s->n_milestones++] = (int)v;
        if (*end == ',')
            end++;
        else if (*end)
            return 0;
        p = end;
    }
    return s->n_milestones > 0;
}
