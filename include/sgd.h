/*
 * sgd.h - torch.optim.SGD (dampening 0) as one loop over the flat buffers:
 * g = grad + wd * w; buf = momentum * buf + g; g = nesterov ? g + momentum *
 * buf : buf; w -= lr * g. Optionally no weight decay on BN and bias tensors
 * (Goyal et al.). Local: gradients must already be reduced.
 */
#ifndef RESNET_SGD_H
#define RESNET_SGD_H

#include "params.h"

typedef struct {
    double momentum;
    double weight_decay;
    int nesterov;
    int no_bn_decay; /* exclude BN weights/biases and the fc bias from decay */
} SgdConfig;

void sgd_step(const SgdConfig *cfg, Params *p, double lr);

#endif
