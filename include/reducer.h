/*
 * reducer.h - the gradient allreduce, overlapped with backward: the flat
 * gradient buffer is cut into contiguous buckets (about --bucket-mb each,
 * on tensor boundaries, from the end of the buffer, where backward starts;
 * the first tensors, ready last, get a small bucket of their own);
 * a communication thread starts a non-blocking allreduce for each bucket as
 * soon as backward has finished its tensors, and progresses them while
 * sleeping between tests, so it never spins on a core that compute needs.
 * The BN running statistics ride along and are averaged.
 *
 * Collective: every rank calls begin/finish in the same steps. Between
 * reducer_begin_step and reducer_finish only the communication thread calls
 * MPI (MPI_THREAD_SERIALIZED).
 */
#ifndef RESNET_REDUCER_H
#define RESNET_REDUCER_H

#include <stddef.h>

#include "params.h"

typedef struct Reducer Reducer;

typedef struct {
    double exposed_s; /* from the end of backward until every bucket finished */
    double comm_s;    /* from the first start until the last completion */
} ReducerTimes;

Reducer *reducer_create(Params *p, double bucket_mb);
void reducer_free(Reducer *r);
int reducer_bucket_count(const Reducer *r);
/* Floats in gradient bucket i, 0 the first to be ready (the end of the buffer). */
size_t reducer_bucket_floats(const Reducer *r, int i);

/* After forward (BN statistics final), before backward. */
void reducer_begin_step(Reducer *r);
/* GradReadyFn for net_set_grad_hook: tensors at offsets >= ready_from are final. */
void reducer_grads_ready(void *reducer, size_t ready_from);
/* After backward: waits for every bucket; gradients are then summed over
 * ranks and the BN statistics averaged. */
ReducerTimes reducer_finish(Reducer *r);

#endif
