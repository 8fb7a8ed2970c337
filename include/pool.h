/*
 * pool.h - 3x3/2 max-pool with workspace (the ImageNet stem) and global
 * average pooling to (N, C) in plain layout for the classifier. Local.
 */
#ifndef RESNET_POOL_H
#define RESNET_POOL_H

#include "dnn.h"

typedef struct {
    int kernel, stride, pad, global; /* global: average over all of H x W */
    const Tensor *src;               /* (N, C, H, W) */
    Tensor dst;                      /* (N, C, OH, OW) in the layout pooling picks */
    Tensor workspace;                /* indices of the maxima */
    dnnl_primitive_t fwd, bwd;
    /* Global pooling: the (N, C) plain matrix the classifier reads, and its
     * gradient in the pooling layout (fast kernels want blocked outputs). */
    Tensor flat, diff_flat_view, diff_dst_blocked;
    Reorder to_flat, from_flat;
} PoolLayer;

void pool_max_init(PoolLayer *l, const Tensor *src, int kernel, int stride, int pad);
void pool_avg_global_init(PoolLayer *l, const Tensor *src);
void pool_forward(PoolLayer *l);
/* diff_dst in the dst layout (global: (N, C) plain, like flat);
 * diff_src in the src layout. */
void pool_backward(PoolLayer *l, const Tensor *diff_dst, Tensor *diff_src);
void pool_free(PoolLayer *l);

#endif
