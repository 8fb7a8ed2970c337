/*
 * blocks.h - the residual blocks of the model module (private to
 * src/model). Five block families, each written in blocks.c as its paper
 * draws it:
 *   basic              He et al. 2015: conv3x3-BN-ReLU, conv3x3-BN, add, ReLU
 *                      (resnet18/34 and the paper's CIFAR networks)
 *   bottleneck         the same with conv1x1, conv3x3 (stride, groups), conv1x1
 *                      (resnet50-152, ResNeXt, torchvision's wide ResNets)
 *   preact_basic       He et al. 2016: BN-ReLU-conv3x3 twice, add (no ReLU)
 *                      (preact-resnet18/34/110, wrn-D-K without dropout)
 *   preact_bottleneck  BN-ReLU-conv1x1, BN-ReLU-conv3x3, BN-ReLU-conv1x1, add
 *                      (preact-resnet50-152/164/1001)
 *   wide_dropout       Zagoruyko and Komodakis 2016: preact_basic with
 *                      dropout before the second conv (wrn-D-K --wrn-dropout)
 * and three shortcuts: the identity, a 1x1 projection where the shape
 * changes (followed by BN in post-activation blocks, reading bn1's output in
 * pre-activation ones), and option A (zero-padded subsampling) in the
 * paper's CIFAR networks. Each block may drop its branch per sample
 * (stochastic depth). resnet.c calls a block through its family's table.
 * Local.
 */
#ifndef RESNET_MODEL_BLOCKS_H
#define RESNET_MODEL_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

#include "add.h"
#include "batchnorm.h"
#include "conv.h"
#include "dnn.h"
#include "dropout.h"
#include "droppath.h"
#include "params.h"
#include "shortcut.h"

/* Tensors a struct owns, allocations and views alike, freed in one loop. */
#define OWNED_MAX 8
typedef struct {
    Tensor *t[OWNED_MAX];
    int n;
} OwnedTensors;

void owned_alloc(OwnedTensors *o, Tensor *t, const dnnl_memory_desc_t *md);
void owned_view(OwnedTensors *o, Tensor *t, const dnnl_memory_desc_t *md, float *data);
void owned_free(OwnedTensors *o);

typedef enum {
    BLOCK_BASIC,
    BLOCK_BOTTLENECK,
    BLOCK_PREACT_BASIC,
    BLOCK_PREACT_BOTTLENECK,
    BLOCK_WIDE_DROPOUT,
} BlockKind;

typedef enum {
    SHORTCUT_IDENTITY,
    SHORTCUT_PROJECTION,        /* post-activation: 1x1 conv (stride) + BN */
    SHORTCUT_PREACT_PROJECTION, /* pre-activation: 1x1 conv on bn1's output, no BN */
    SHORTCUT_ZERO_PAD,          /* option A: subsample, zero-pad the new channels */
} ShortcutKind;

/* What the network asks of one block. */
typedef struct {
    BlockKind kind;
    int width;             /* bottleneck: channels of its 1x1 and 3x3 convs */
    int out;               /* output channels */
    int stride;            /* of the block's strided conv and of its shortcut */
    int groups;            /* of the bottleneck's 3x3 conv */
    int zero_pad_shortcut; /* option A where the shape changes (post-activation only) */
    double dropout;        /* wide_dropout: probability, in (0, 1) */
    double drop_path;      /* this block's drop probability; 0: no stochastic depth */
    int index;             /* 0-based place in the network: a key of its random choices */
    ConvAlgo conv_algo;
    const char *prefix;    /* state_dict prefix, e.g. "layer2.0" */
} BlockSpec;

/* One forward pass: training or not, and what its random choices (drop-path,
 * dropout) derive from: net_set_sample_keys's values. */
typedef struct {
    int training;
    uint64_t seed;
    int64_t epoch;
    const int64_t *sample_keys; /* (N) */
} ForwardPass;

typedef struct BlockFamily BlockFamily;

typedef struct {
    const BlockFamily *family;
    ShortcutKind shortcut;
    char prefix[32];
    size_t first_param;        /* flat-buffer offset of its first tensor */
    const Tensor *in;          /* (N, C, H, W) block input */
    Tensor *branch;            /* the residual branch's output; the add overwrites it */
    /* What --zero-init-residual zeroes so that the block starts as the
     * identity: the last BN's gamma, or (pre-activation) the last conv's
     * weights. */
    Tensor *zero_init;

    /* The layers, named as in the state_dict; a family uses those it needs. */
    ConvLayer conv1, conv2, conv3;
    BatchNormLayer bn1, bn2, bn3;
    DropoutLayer dropout;      /* wide_dropout: before conv2 */
    int has_droppath;
    DropPath drop_path;
    ConvLayer down_conv;       /* downsample.0 */
    BatchNormLayer down_bn;    /* downsample.1 (post-activation) */
    ShortcutA short_a;
    /* Where the shortcut's layout differs from the branch's (a grouped conv
     * can lead oneDNN to another channel blocking): its output reordered to
     * the branch layout, and the gradient back. NULL prims otherwise. */
    Reorder short_fwd, short_bwd;
    const Tensor *short_out;   /* the shortcut's output, before short_fwd */
    AddLayer add;
    SumOp sum;

    /* The convolutions and BNs it owns (branch, then shortcut), in the
     * order their parameters were registered: for the loops that treat
     * them alike (cost, synchronised BN, freeing). */
    ConvLayer *convs[4];
    BatchNormLayer *bns[4];
    int nconvs, nbns;

    /* Gradient views over the network's scratch buffers X, A, B, planned
     * at init: the block's output and input gradients both live in X.
     * d_bnK holds the gradient at BN K's output, then (BN backward runs in
     * place) at its input. */
    Tensor d_out, d_in, d_bn1, d_bn2, d_bn3;
    Tensor d_main;   /* post-activation: the branch's input gradient */
    Tensor d_short;  /* the shortcut's input gradient */
    Tensor d_scaled; /* pre-activation: drop-path's scaled output gradient */
    OwnedTensors views;
} Block;

struct BlockFamily {
    const char *name;
    /* Creates the layers over b->in and registers their parameters. */
    void (*init)(Block *b, const BlockSpec *s, Params *p);
    /* The gradient views inside the block over the scratch buffers A, B. */
    void (*plan)(Block *b, float *A, float *B);
    void (*forward)(Block *b, const ForwardPass *f);
    /* Gradient of the block output in d_out (X) in, of its input in d_in (X) out. */
    void (*backward)(Block *b);
};

void block_init(Block *b, const Tensor *in, const BlockSpec *s, Params *p);
/* Bytes of the largest activation whose gradient the scratch buffers hold. */
size_t block_scratch_bytes(const Block *b);
/* Plans every gradient of the block onto the scratch buffers X, A, B. */
void block_plan_diffs(Block *b, float *X, float *A, float *B);
void block_free(Block *b);

#endif
