/* ema.c - exponential moving average of the weights and BN statistics. */
#include "ema.h"

#include <string.h>

#include "error.h"

int ema_due(const EmaConfig *cfg, int64_t steps)
{
    return cfg->decay > 0 && steps > 0 && steps % cfg->every == 0;
}

void ema_reset(Params *p)
{
    CHECK(p->ema && p->ema_state, "ema_reset without moving-average buffers");
    memcpy(p->ema, p->value, p->total * sizeof(float));
    memcpy(p->ema_state, p->state, p->state_total * sizeof(float));
    p->ema_num_batches_tracked = p->num_batches_tracked;
}

/* avg = d * avg + c * x: each element on its own, whatever the threads. */
static void average_into(float *avg, const float *x, size_t n, float d, float c)
{
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        avg[i] = d * avg[i] + c * x[i];
}

void ema_update(Params *p, double decay)
{
    CHECK(p->ema && p->ema_state, "ema_update without moving-average buffers");
    float d = (float)decay, c = (float)(1.0 - decay);
    average_into(p->ema, p->value, p->total, d, c);
    average_into(p->ema_state, p->state, p->state_total, d, c);
    p->ema_num_batches_tracked = p->num_batches_tracked;
}

static void swap_floats(float *a, float *b, size_t n)
{
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float t = a[i];
        a[i] = b[i];
        b[i] = t;
    }
}

void ema_swap(Params *p)
{
    CHECK(p->ema && p->ema_state, "ema_swap without moving-average buffers");
    swap_floats(p->value, p->ema, p->total);
    swap_floats(p->state, p->ema_state, p->state_total);
    int64_t n = p->num_batches_tracked;
    p->num_batches_tracked = p->ema_num_batches_tracked;
    p->ema_num_batches_tracked = n;
}
