/*
 * add.h - the residual add (optionally followed by ReLU, fused as a oneDNN
 * post-op) and the plain sum used to merge gradients of two branches.
 * Local.
 *
 * Where the ReLU is: the network has no ReLU layer of its own. The ReLU
 * after a residual add is this add's post-op (relu set), and its gradient
 * is the ReLU backward inside add_backward, which reads dst. Every other
 * ReLU is fused into the BatchNorm before it (batchnorm.h).
 */
#ifndef RESNET_ADD_H
#define RESNET_ADD_H

#include "dnn.h"

typedef struct {
    int relu;
    const Tensor *a, *b;  /* (N, C, H, W), same layout */
    Tensor dst;           /* relu(a + b); a view of a when in place */
    dnnl_primitive_t fwd, relu_bwd;
} AddLayer;

void add_init(AddLayer *l, const Tensor *a, const Tensor *b, int relu);
/* The same, writing dst over a: for a branch output nothing else reads
 * (a convolution's, or a BN's without fused ReLU: their backward reads their
 * input, not their output), saving one activation. */
void add_init_in_place(AddLayer *l, Tensor *a, const Tensor *b, int relu);
void add_forward(AddLayer *l);
/* Gradient of the sum from the gradient of dst: the ReLU backward, done in
 * place when diff_sum and diff_dst are the same tensor. Both inputs of the
 * add receive this same gradient. */
void add_backward(AddLayer *l, const Tensor *diff_dst, Tensor *diff_sum);
void add_free(AddLayer *l);

/* dst = a + b for gradients of one shape and layout; dst may alias a. */
typedef struct {
    dnnl_primitive_t prim;
} SumOp;

void add_sum_init(SumOp *s, const dnnl_memory_desc_t *md);
void add_sum_run(SumOp *s, const Tensor *a, const Tensor *b, Tensor *dst);
void add_sum_free(SumOp *s);

#endif
