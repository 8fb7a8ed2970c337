/*
 * resnet.h - the residual network family as explicit code over the layers in
 * src/nn, with torchvision's state_dict names and initialisation:
 *   resnet18/34/50/101/152      torchvision (v1.5: stride on the bottleneck's 3x3)
 *   resnet20/32/44/56/110/1202  the ResNet paper's CIFAR networks (option-A shortcuts)
 *   resnext50_32x4d, resnext101_32x8d, resnext101_64x4d
 *                               torchvision's ResNeXt (grouped 3x3 convolutions)
 *   wide_resnet50_2, wide_resnet101_2
 *                               torchvision's wide bottlenecks (width per group 128)
 *   preact-resnet18/34/50/101/152, preact-resnet110/164/1001
 *                               pre-activation ResNets (He et al. 2016)
 *   wrn-D-K                     wide residual networks (Zagoruyko and Komodakis
 *                               2016): D = 6n + 4, widths 16K-32K-64K
 * Any of them can train with stochastic depth (NetConfig.drop_path), and
 * wrn-D-K with dropout between its convolutions (NetConfig.dropout).
 * docs/models.md describes each topology.
 *
 * A Net holds the primitives and activations for one batch size; several
 * Nets may share one Params registry. Local: the caller reduces gradients.
 */
#ifndef RESNET_RESNET_H
#define RESNET_RESNET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "batchnorm.h"
#include "conv.h"
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
    ConvAlgo conv_algo;
    /* Stochastic depth: block l of L (from 1) drops its residual branch per
     * sample with probability drop_path * l / L in training. [0, 1). */
    double drop_path;
    /* wrn-D-K only: dropout probability between a block's convolutions. [0, 1). */
    double dropout;
    /* Blocks per stage instead of the architecture's (all 0: the
     * architecture's); for small instances in tests and experiments. */
    int stage_blocks[4];
} NetConfig;

typedef struct Net Net;

/* Called during backward each time the gradients of every parameter at
 * flat-buffer offsets >= ready_from are final (they are registered in
 * forward order, so backward finishes them from the end of the buffer). */
typedef void (*GradReadyFn)(void *ctx, size_t ready_from);

/* Whether arch names a known architecture (wrn-D-K for any valid D, K). */
int arch_exists(const char *arch);
/* Whether arch is a wrn-D-K network (the only ones with dropout). */
int arch_is_wrn(const char *arch);
/* Whether arch is a CIFAR network (resnet20..., preact CIFAR, wrn-D-K),
 * whose stem is always the small one: --stem does not change it. */
int arch_has_fixed_stem(const char *arch);
/* Writes the known architecture names, separated by ", ". */
void arch_names(char *out, size_t len);
/* --list-archs: one line per architecture (wrn-D-K: the paper's instances)
 * with its parameters and cost per image at crop px (0: 224 for ImageNet
 * networks, 32 for CIFAR ones) and num_classes (0: 1000 or 10). Builds each
 * network once at batch 1 (needs dnn_init); local, rank 0 calls it. */
void arch_list(FILE *out, int crop, int num_classes, int small_stem);

Net *net_create(const NetConfig *cfg, Params *params);
void net_free(Net *net);
/* torchvision's initialisation, from the seed; call after params_allocate. */
void net_init_weights(Net *net, uint64_t seed);

/* (N, C, H, W) float, plain layout: the caller writes normalised images. */
float *net_input(Net *net);
/* What the random choices of the next training forward (drop-path,
 * dropout) derive from: the run's seed, the epoch and the global index of
 * each sample of the batch (N values: its position in the epoch's order,
 * the same whatever the number of ranks). Required before every training
 * forward of a net with drop_path or dropout; the values are copied. */
void net_set_sample_keys(Net *net, uint64_t seed, int64_t epoch, const int64_t *global_index);
void net_forward(Net *net, int training);
/* (N, K) plain logits of the last forward. */
const float *net_logits(const Net *net);
/* Loss of the last forward (partner: mixed targets, or NULL; loss.h); with
 * training set, also its gradient (scaled by 1/grad_scale_n, the global
 * batch) for net_backward. */
LossStats net_loss(Net *net, const int32_t *labels, const LossPartner *partner,
                   float label_smoothing, int training, int grad_scale_n);
/* Backward of the last (training) forward, with its drop-path and dropout
 * choices. */
void net_backward(Net *net);
void net_set_grad_hook(Net *net, GradReadyFn fn, void *ctx);

/* Every BatchNorm layer computes batch statistics over all ranks. */
void net_enable_sync_bn(Net *net, const BnSync *sync);

/* Multiply-accumulates of one forward pass per image. */
double net_macs_per_image(const Net *net);
/* With CONV_WINOGRAD: how many convolutions have a Winograd shape (3x3,
 * stride 1), and how many of them run Winograd in every pass on this CPU;
 * the others run direct. */
void net_winograd_convs(const Net *net, int *wanted, int *running);
const NetConfig *net_config(const Net *net);

/* Residual blocks, in forward order. */
int net_block_count(const Net *net);
/* Block i's drop-path probability (0 without drop-path). */
double net_drop_path_prob(const Net *net, int block);
/* Block i's per-sample branch scales (N) of the last training forward: 0
 * (dropped) or 1 / (1 - p). NULL without drop-path. */
const float *net_drop_path_scales(const Net *net, int block);

#endif
