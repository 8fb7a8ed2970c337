/*
 * droppath.h - stochastic depth (Huang et al. 2016), per sample: in
 * training, the output of a residual branch is zeroed for a whole sample
 * with probability p, and the branches of the other samples are scaled by
 * 1 / (1 - p), so inference needs no change. The network gives block l of L
 * (counting from 1) the probability P * l / L.
 *
 * Each decision is a function of (seed, epoch, global sample index, block)
 * only, through rng.h: the same on any number of ranks, in any batch split,
 * and after a resume. Used by the residual blocks, src/model/blocks.c. Local.
 */
#ifndef RESNET_DROPPATH_H
#define RESNET_DROPPATH_H

#include <stddef.h>
#include <stdint.h>

#include "tensor.h"

typedef struct {
    double p;             /* drop probability of this branch */
    int block;            /* the block's index in the network: a key of the decisions */
    int n;                /* samples per batch */
    size_t sample_floats; /* floats of one sample in the branch output's layout */
    float *scale;         /* (N) 0 or 1 / (1 - p): this step's decisions */
} DropPath;

/* md: the branch output (N, C, H, W); its layout must keep each sample in
 * one contiguous range (every activation layout oneDNN picks for f32 does;
 * a layout that does not is a local error). 0 <= p < 1. */
void droppath_init(DropPath *d, const dnnl_memory_desc_t *md, double p, int block);
/* Whether the branch of the sample with this global index is kept. */
int droppath_keep(uint64_t seed, int64_t epoch, int64_t global_index, int block, double p);
/* This step's decisions for the samples of the batch: global_index (N). */
void droppath_draw(DropPath *d, uint64_t seed, int64_t epoch, const int64_t *global_index);
/* dst = src scaled per sample by this step's decisions (forward: the branch
 * output; backward: the gradient that flows into the branch). src and dst
 * have the layout given at init and may be the same tensor. */
void droppath_apply(const DropPath *d, const Tensor *src, Tensor *dst);
/* Accepts a zeroed or half-initialised DropPath. */
void droppath_free(DropPath *d);

#endif
