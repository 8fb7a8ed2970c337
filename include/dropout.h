/*
 * dropout.h - element-wise dropout (Srivastava et al. 2014) as the wide
 * residual networks use it between the two convolutions of a block: in
 * training each activation is zeroed with probability p and the others are
 * scaled by 1 / (1 - p); inference passes the input through.
 *
 * The mask of a sample is a function of (seed, epoch, global sample index,
 * layer key) only, drawn in plain (C, H, W) order through rng.h and then
 * reordered to the activation layout: the same on any number of ranks, on
 * any CPU (whatever layout oneDNN picks) and after a resume. Used by
 * src/model/blocks.c. Local.
 */
#ifndef RESNET_DROPOUT_H
#define RESNET_DROPOUT_H

#include <stddef.h>
#include <stdint.h>

#include "dnn.h"

typedef struct {
    double p;
    int key;                /* distinguishes the layers of one network */
    const Tensor *src;      /* (N, C, H, W) */
    Tensor dst;             /* same layout */
    Tensor mask_plain;      /* (N, C, H, W) plain: 0 or 1 / (1 - p) */
    Reorder to_layout;      /* mask_plain -> src layout (NULL prim when the same) */
    const Tensor *mask;     /* the mask in src layout, of the last training forward */
    dnnl_primitive_t mul;   /* dst = src0 * src1 */
} DropoutLayer;

/* 0 <= p < 1. */
void dropout_init(DropoutLayer *l, const Tensor *src, double p, int key);
/* Fills mask (n samples of per_sample floats, plain order) with 0 or
 * 1 / (1 - p): the masks dropout_forward applies. */
void dropout_fill_mask(float *mask, int n, size_t per_sample, double p, uint64_t seed,
                       int64_t epoch, const int64_t *global_index, int key);
/* Training: draws the masks of the samples global_index (N) and applies
 * them; inference (training 0, global_index may be NULL): dst = src. */
void dropout_forward(DropoutLayer *l, int training, uint64_t seed, int64_t epoch,
                     const int64_t *global_index);
/* diff_src = diff_dst * mask of the last training forward; both in the src
 * layout, and they may be the same tensor. */
void dropout_backward(DropoutLayer *l, const Tensor *diff_dst, Tensor *diff_src);
/* Accepts a zeroed or half-initialised layer. */
void dropout_free(DropoutLayer *l);

#endif
