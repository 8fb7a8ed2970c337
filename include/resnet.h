/*
 * resnet.h - the ResNet family as explicit code over the layers in src/nn:
 * torchvision's resnet18/34/50/101/152 (v1.5: stride on the bottleneck's 3x3)
 * and the ResNet paper's CIFAR networks resnet20/32/44/56/110/1202 (option-A
 * shortcuts), with torchvision's state_dict names and initialisation.
 *
 * A Net holds the primitives and activations for one batch size; several
 * Nets may share one Params registry. Local: the caller reduces gradients.
 */
#ifndef RESNET_RESNET_H
#define RESNET_RESNET_H

#include <stddef.h>
#include <stdint.h>

#include "batchnorm.h"
#include "dnn.h"
#include "loss.h"
#include "params.h"

typedef struct {
    char arch[32];
    int num_classes;
    int in_channels;     /* 1 or 3 */
    int image_size;      /* H = W of the network input */
    int batch;           /* images per forward on this rank */
    int small_stem;      /* 3x3 stride-1 stem conv and no max-pool (28-64 px) */
    int zero_init_residual;
} NetConfig;

typedef struct Net Net;

/* Called during backward each time the gradients of every parameter at
 * flat-buffer offsets >= ready_from are final (they are registered in
 * forward order, so backward finishes them from the end of the buffer). */
typedef void (*GradReadyFn)(void *ctx, size_t ready_from);

int arch_exists(const char *arch);
/* Writes the known architecture names, separated by ", ". */
void arch_names(char *out, size_t len);

Net *net_create(const NetConfig *cfg, Params *params);
void net_free(Net *net);
/* torchvision's initialisation, from the seed; call after params_allocate. */
void net_init_weights(Net *net, uint64_t seed);

/* (N, C, H, W) float, plain layout: the caller writes normalised images. */
float *net_input(Net *net);
void net_forward(Net *net, int training);
/* (N, K) plain logits of the last forward. */
const float *net_logits(const Net *net);
/* Loss of the last forward; with training set, also its gradient (scaled by
 * 1/grad_scale_n, the global batch) for net_backward. */
LossStats net_loss(Net *net, const int32_t *labels, float label_smoothing, int training,
                   int grad_scale_n);
void net_backward(Net *net);
void net_set_grad_hook(Net *net, GradReadyFn fn, void *ctx);

/* Every BatchNorm layer computes batch statistics over all ranks. */
void net_enable_sync_bn(Net *net, const BnSync *sync);

/* Multiply-accumulates of one forward pass per image. */
double net_macs_per_image(const Net *net);
const NetConfig *net_config(const Net *net);

#endif
