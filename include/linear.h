/*
 * linear.h - the fully connected classifier (torch.nn.Linear): y = x W^T + b
 * with W (K, C) kept in PyTorch's plain layout. Local.
 */
#ifndef RESNET_LINEAR_H
#define RESNET_LINEAR_H

#include "tensor.h"
#include "params.h"

typedef struct {
    int in, out;
    Tensor src;                   /* (N, C) plain view of the input */
    Tensor dst;                   /* (N, K) plain */
    Tensor weights, bias, diff_weights, diff_bias;
    dnnl_primitive_t fwd, bwd_data, bwd_weights;
} LinearLayer;

/* src_data: (N, C) floats in plain layout, owned by the layer before. */
void linear_init(LinearLayer *l, float *src_data, int n, int in, int out, Params *p,
                 const char *name);
void linear_forward(LinearLayer *l);
/* diff_dst (N, K) plain; diff_src (N, C) plain. */
void linear_backward(LinearLayer *l, const Tensor *diff_dst, Tensor *diff_src);
void linear_free(LinearLayer *l);

#endif
