/* train_window.c - pace, waiting shares and ETA of the training lines. */
#include "train_window.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void window_begin(TrainWindow *w, StepTimes now)
{
    memset(w, 0, sizeof *w);
    w->start = now;
}

void window_add_step(TrainWindow *w, double loss, double top1, double top5, double seconds)
{
    w->steps++;
    w->loss += loss;
    w->top1 += top1;
    w->top5 += top5;
    w->seconds += seconds;
}

TrainStats window_stats(const TrainWindow *w, StepTimes now, int global_batch)
{
    TrainStats s = {.steps = w->steps, .eta_s = -1};
    if (w->steps == 0)
        return s;
    double n = (double)w->steps;
    double wait = now.wait_s - w->start.wait_s, exposed = now.exposed_s - w->start.exposed_s;
    double step = now.step_s - w->start.step_s, busy = wait + step;
    s.loss = w->loss / n;
    s.top1 = w->top1 / n;
    s.top5 = w->top5 / n;
    s.img_per_s = w->seconds > 0 ? n * global_batch / w->seconds : 0;
    s.compute_ms = 1e3 * (step - exposed) / n;
    s.data_wait = busy > 0 ? wait / busy : 0;
    s.comm = busy > 0 ? exposed / busy : 0;
    return s;
}

/* Steps in [1, k] that end a validated epoch. */
static int64_t validated_epoch_ends(int64_t k, int64_t steps_per_epoch, int val_every)
{
    return k < 1 ? 0 : k / (steps_per_epoch * val_every);
}

int64_t validations_left(int64_t from, int64_t total_steps, int64_t steps_per_epoch, int val_every)
{
    if (val_every <= 0 || steps_per_epoch <= 0 || from > total_steps)
        return 0;
    if (from < 1)
        from = 1;
    int64_t n = validated_epoch_ends(total_steps, steps_per_epoch, val_every) -
                validated_epoch_ends(from - 1, steps_per_epoch, val_every);
    /* the last step validates whether or not it ends such an epoch */
    return n + (total_steps % (steps_per_epoch * val_every) != 0);
}

double eta_seconds(int64_t steps_left, double step_s, int64_t validations_left,
                   int validations_done, double validation_s, int *has_validation)
{
    double eta = (double)steps_left * step_s;
    *has_validation = validations_left == 0 || validations_done > 0;
    if (validations_left > 0 && validations_done > 0)
        eta += (double)validations_left * validation_s / validations_done;
    return eta;
}

void format_duration(double seconds, char *out, size_t len)
{
    if (!(seconds >= 0) || !isfinite(seconds)) {
        snprintf(out, len, "?");
        return;
    }
    long long s = llround(seconds);
    snprintf(out, len, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
}
