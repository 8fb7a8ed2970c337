/*
 * conv.h - 2-D convolution on oneDNN (no bias; torchvision's ResNets have
 * none): forward, backward data and backward weights. Weights live in the
 * flat parameter buffers in the layout oneDNN picks. Local.
 */
#ifndef RESNET_CONV_H
#define RESNET_CONV_H

#include "dnn.h"
#include "params.h"

/* CONV_WINOGRAD runs 3x3 stride-1 ungrouped convolutions with oneDNN's
 * Winograd F(4x4, 3x3) where it has an implementation (about twice as
 * fast there on AVX-512; it rounds differently from direct convolution,
 * docs/performance.md compares the training curves); every other shape,
 * and every shape without an implementation, runs direct. */
typedef enum { CONV_DIRECT, CONV_WINOGRAD } ConvAlgo;

typedef struct {
    int oc, kernel, stride, pad, groups;
    int need_diff_src; /* 0 for the first layer: its input is the image */
    ConvAlgo algo;
} ConvSpec;

typedef struct {
    int ic, oc, kernel, stride, pad, groups;
    dnnl_alg_kind_t alg; /* the algorithm oneDNN runs for this layer */
    int winograd_wanted;    /* CONV_WINOGRAD and a 3x3 stride-1 ungrouped shape */
    int winograd_fallbacks; /* passes that wanted Winograd but run direct */
    int need_diff_src; /* 0 for the first layer: its input is the image */
    const Tensor *src; /* (N, IC, H, W), owned by the layer before */
    Tensor dst;        /* (N, OC, OH, OW) */
    Tensor weights, diff_weights; /* (OC, IC/G, K, K) views into the flat buffers */
    dnnl_primitive_t fwd, bwd_data, bwd_weights;
    /* Where two primitives disagree on a layout (rare; NULL prims otherwise). */
    Reorder src_fwd, src_bwd, weights_bwd, diff_dst_data, diff_dst_weights;
    Reorder diff_src_out, diff_weights_out, dst_out;
    Tensor diff_src_inner, diff_weights_inner, dst_inner;
} ConvLayer;

/* name: the state_dict prefix, e.g. "layer1.0.conv1" (adds ".weight"). */
void conv_init(ConvLayer *l, const Tensor *src, const ConvSpec *spec, Params *p,
               const char *name);
void conv_forward(ConvLayer *l);
/* diff_dst in l->dst.md layout; diff_src (may be NULL when need_diff_src is
 * 0) receives the gradient in l->src->md layout. Writes the weight gradient
 * into the flat gradient buffer. */
void conv_backward(ConvLayer *l, const Tensor *diff_dst, Tensor *diff_src);
void conv_free(ConvLayer *l);
/* 1 when every pass of the layer (forward and backward) runs Winograd. */
int conv_runs_winograd(const ConvLayer *l);

#endif
