/*
 * ema.h - an exponential moving average of the weights, as torchvision's
 * ExponentialMovingAverage with use_buffers=True: every parameter and the
 * BatchNorm running statistics are averaged, num_batches_tracked is copied.
 * One update is
 *     ema = decay * ema + (1 - decay) * w
 * in float32, element by element over the flat buffers (params.h: value and
 * state into ema and ema_state), so the result does not depend on the
 * thread count. The driver updates after every N-th optimizer step; every
 * rank holds the same weights after the allreduce and so computes the same
 * average without communicating. Local.
 */
#ifndef RESNET_EMA_H
#define RESNET_EMA_H

#include <stdint.h>

#include "params.h"

typedef struct {
    double decay; /* 0: no average is kept */
    int every;    /* update after every N-th optimizer step */
} EmaConfig;

/* Whether the step that made `steps` optimizer steps done updates the average. */
int ema_due(const EmaConfig *cfg, int64_t steps);
/* The average starts as a copy of the weights (fresh start, --init-from,
 * or a resume from a checkpoint without one). */
void ema_reset(Params *p);
/* One update of ema and ema_state towards value and state. */
void ema_update(Params *p, double decay);
/* Exchanges the weights and their average (parameters, BN statistics and
 * counter), so that the network computes with the average; a second call
 * restores both bit for bit. */
void ema_swap(Params *p);

#endif
