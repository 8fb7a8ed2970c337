/*
 * batchnorm.h - batch normalisation on oneDNN with PyTorch's semantics:
 * training normalises with the batch mean and biased variance (eps 1e-5) and
 * updates the running statistics with momentum 0.1 and the unbiased
 * variance; inference uses the running statistics. A following ReLU can be
 * fused (oneDNN keeps its mask in a workspace). Local.
 *
 * Where the ReLU is: with fuse_relu the BN forward itself writes relu(y)
 * (oneDNN's fuse_norm_relu flag, not a post-op) and keeps where y > 0 in
 * the workspace; the BN backward zeroes the gradient outside that mask.
 * Synchronised BN does the same, and its gradient sums skip the values the
 * ReLU cut. The ReLU after a residual add is the add's (add.h).
 */
#ifndef RESNET_BATCHNORM_H
#define RESNET_BATCHNORM_H

#include "dnn.h"
#include "params.h"

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

/* Synchronised BatchNorm: statistics over the whole global batch. The layer
 * does the arithmetic; the caller supplies the communication, so this module
 * stays local. Both reductions are in double: the result must not depend on
 * how the batch is split over ranks, or a ReLU whose input is within float
 * rounding of zero flips and the gradients part ways. */
typedef struct {
    /* Replaces this rank's per-channel mean and sum of squared deviations
     * (M2) over count values by those of the whole batch; returns the
     * global count. */
    double (*combine)(void *ctx, double *mean, double *m2, int channels, double count);
    /* Sums two channel vectors over all ranks, in place. */
    void (*sum)(void *ctx, double *a, double *b, int channels);
    void *ctx;
} BnSync;

typedef struct {
    int channels, fuse_relu;
    size_t count;                 /* N*H*W values per channel */
    const Tensor *src;            /* (N, C, H, W) */
    Tensor dst;                   /* (N, C, H, W), same layout */
    Tensor scale, shift;          /* gamma, beta: (C) views into the flat buffers */
    Tensor diff_scale, diff_shift;
    Tensor mean, var;             /* batch statistics of the last training forward */
    Tensor running_mean, running_var; /* (C) views into the state buffer */
    Tensor workspace;             /* ReLU mask when fused */
    int state;                    /* index of the running statistics in Params */
    dnnl_primitive_t fwd_train, fwd_infer, bwd;
    /* When set, a training forward (local or synchronised) leaves the
     * running statistics alone; the network never sets it, tests do. */
    int skip_running_update;
    /* Synchronised mode (batchnorm_enable_sync); NULL otherwise. */
    const BnSync *sync;
    double global_count;
    dnnl_primitive_t fwd_global, bwd_global, affine, subtract;
    Tensor correction, alpha, beta;
    double *moments;              /* (2, C): mean and M2, then sum dy and sum dy xhat */
} BatchNormLayer;

/* name: state_dict prefix, e.g. "layer1.0.bn1". */
void batchnorm_init(BatchNormLayer *l, const Tensor *src, int fuse_relu, Params *p,
                    const char *name);
void batchnorm_forward(BatchNormLayer *l, int training);
/* diff_dst and diff_src in the src layout; they may be the same tensor. */
void batchnorm_backward(BatchNormLayer *l, const Tensor *diff_dst, Tensor *diff_src);
/* running = (1 - m) running + m batch, with the unbiased variance. */
void batchnorm_update_running(float *running_mean, float *running_var, const float *mean,
                              const float *var, size_t channels, size_t count);
/* Switches the layer to batch statistics over all ranks: forward combines
 * per-rank (count, mean, M2), each computed in double; backward sums the two
 * channel reductions in double and corrects oneDNN's constant-statistics
 * gradient. */
void batchnorm_enable_sync(BatchNormLayer *l, const BnSync *sync);
void batchnorm_free(BatchNormLayer *l);

#endif
