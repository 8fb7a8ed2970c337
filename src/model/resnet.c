/* resnet.c - the whole network: stem, residual blocks (blocks.c), head;
 * forward, loss and backward; initialisation. */
#include "resnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "batchnorm.h"
#include "blocks.h"
#include "conv.h"
#include "error.h"
#include "linear.h"
#include "pool.h"
#include "rng.h"

struct Net {
    NetConfig cfg;
    ArchSpec spec;
    Params *params;
    Tensor input;
    ConvLayer conv1;
    BatchNormLayer bn1;
    int stem_bn, use_maxpool, has_bn_final;
    PoolLayer maxpool, gap;
    Block *blocks;
    int nblocks;
    BatchNormLayer bn_final;   /* pre-activation: BN-ReLU before pooling */
    LinearLayer fc;
    float *diff_logits;
    Tensor d_logits, d_features, d_gap, d_pool, d_stem;
    OwnedTensors tensors;      /* input and the gradient tensors above */
    float *scratch[3]; /* X: block gradients; A, B: inside a block */
    size_t scratch_bytes;
    size_t head_first_param;
    GradReadyFn grad_hook;
    void *grad_ctx;
    /* net_set_sample_keys: consumed by the next training forward */
    int random, keys_set;
    uint64_t key_seed;
    int64_t key_epoch;
    int64_t *key_index;
};

static void track_scratch(Net *net, size_t bytes)
{
    if (bytes > net->scratch_bytes)
        net->scratch_bytes = bytes;
}

/* conv1, then (but in pre-activation CIFAR networks, whose first block
 * normalises its input) bn1 with ReLU, then (ImageNet stem) the max-pool. */
static const Tensor *stem_init(Net *net)
{
    const NetConfig *c = &net->cfg;
    int cifar = family_cifar(net->spec.family), small = cifar || c->small_stem;
    ConvSpec cs = {.oc = cifar ? 16 : 64,
                   .kernel = small ? 3 : 7,
                   .stride = small ? 1 : 2,
                   .pad = small ? 1 : 3,
                   .groups = 1,
                   .need_diff_src = 0,
                   .algo = c->conv_algo};
    conv_init(&net->conv1, &net->input, &cs, net->params, "conv1");
    track_scratch(net, dnn_md_bytes(&net->conv1.dst.md));
    const Tensor *x = &net->conv1.dst;
    net->stem_bn = !(cifar && family_preact(net->spec.family));
    if (net->stem_bn) {
        batchnorm_init(&net->bn1, x, 1, net->params, "bn1");
        x = &net->bn1.dst;
    }
    net->use_maxpool = !small;
    if (net->use_maxpool) {
        pool_max_init(&net->maxpool, x, 3, 2, 1);
        x = &net->maxpool.dst;
    }
    return x;
}

static int stage_block_count(const Net *net, int stage)
{
    return net->cfg.stage_blocks[0] ? net->cfg.stage_blocks[stage] : net->spec.blocks[stage];
}

/* The block family of the architecture's blocks. A wrn-D-K block without
 * dropout is a pre-activation basic block. */
static BlockKind block_kind(const ArchSpec *s, const NetConfig *c)
{
    if (!family_preact(s->family))
        return s->bottleneck ? BLOCK_BOTTLENECK : BLOCK_BASIC;
    if (s->bottleneck)
        return BLOCK_PREACT_BOTTLENECK;
    return c->dropout > 0 ? BLOCK_WIDE_DROPOUT : BLOCK_PREACT_BASIC;
}

/* The residual stages: block j of stage s is layer<s+1>.<j>; the first
 * block of every stage but the first halves the size. */
static const Tensor *blocks_init(Net *net, const Tensor *x)
{
    const NetConfig *c = &net->cfg;
    int stages = arch_stages(&net->spec);
    for (int stage = 0; stage < stages; stage++) {
        CHECK(stage_block_count(net, stage) >= 1, "%s: stage %d has no blocks", c->arch,
              stage + 1);
        net->nblocks += stage_block_count(net, stage);
    }
    net->blocks = xcalloc((size_t)net->nblocks, sizeof *net->blocks);
    int b = 0;
    for (int stage = 0; stage < stages; stage++) {
        int width, out;
        arch_stage_channels(&net->spec, stage, &width, &out);
        for (int j = 0; j < stage_block_count(net, stage); j++, b++) {
            char prefix[32];
            snprintf(prefix, sizeof prefix, "layer%d.%d", stage + 1, j);
            BlockSpec s = {
                .kind = block_kind(&net->spec, c),
                .width = width,
                .out = out,
                .stride = (j == 0 && stage > 0) ? 2 : 1,
                .groups = net->spec.groups,
                .zero_pad_shortcut = net->spec.family == FAMILY_CIFAR,
                .dropout = c->dropout,
                /* block l of L (from 1): P * l / L */
                .drop_path = c->drop_path * (b + 1) / net->nblocks,
                .index = b,
                .conv_algo = c->conv_algo,
                .prefix = prefix,
            };
            block_init(&net->blocks[b], x, &s, net->params);
            track_scratch(net, block_scratch_bytes(&net->blocks[b]));
            x = &net->blocks[b].add.dst;
        }
    }
    return x;
}

/* Pre-activation networks: bn_final with ReLU; then pooling and fc. */
static void head_init(Net *net, const Tensor *features)
{
    int n = net->cfg.batch, k = net->cfg.num_classes;
    Params *p = net->params;
    net->has_bn_final = family_preact(net->spec.family);
    if (net->has_bn_final) {
        batchnorm_init(&net->bn_final, features, 1, p, "bn_final");
        features = &net->bn_final.dst;
    }
    int channels = (int)features->md.dims[1];
    pool_avg_global_init(&net->gap, features);
    linear_init(&net->fc, net->gap.flat.data, n, channels, k, p, "fc");
    net->head_first_param =
        p->info[params_find(p, net->has_bn_final ? "bn_final.weight" : "fc.weight")].offset;
    net->diff_logits = xaligned_alloc((size_t)n * k * sizeof(float));
    owned_view(&net->tensors, &net->d_logits, &net->fc.dst.md, net->diff_logits);
    owned_alloc(&net->tensors, &net->d_features, &net->fc.src.md);
    track_scratch(net, dnn_md_bytes(&features->md));
}

static void net_plan_diffs(Net *net, const Tensor *features)
{
    for (int i = 0; i < 3; i++)
        net->scratch[i] = xaligned_alloc(net->scratch_bytes);
    float *X = net->scratch[0], *A = net->scratch[1], *B = net->scratch[2];
    owned_view(&net->tensors, &net->d_gap, &features->md, X);
    for (int i = 0; i < net->nblocks; i++)
        block_plan_diffs(&net->blocks[i], X, A, B);
    const Tensor *stem = net->stem_bn ? &net->bn1.dst : &net->conv1.dst;
    if (net->use_maxpool) {
        owned_view(&net->tensors, &net->d_pool, &net->maxpool.dst.md, X);
        owned_view(&net->tensors, &net->d_stem, &stem->md, A);
    } else {
        owned_view(&net->tensors, &net->d_stem, &stem->md, X);
    }
}

Net *net_create(const NetConfig *cfg, Params *params)
{
    Net *net = xcalloc(1, sizeof *net);
    CHECK(arch_find(cfg->arch, &net->spec), "unknown architecture %s", cfg->arch);
    CHECK(cfg->drop_path >= 0 && cfg->drop_path < 1, "drop-path %g is not in [0, 1)",
          cfg->drop_path);
    CHECK(cfg->dropout == 0 || (net->spec.family == FAMILY_WRN && cfg->dropout > 0 &&
                                cfg->dropout < 1),
          "dropout %g: only wrn-D-K networks have dropout, with a probability in [0, 1)",
          cfg->dropout);
    net->cfg = *cfg;
    net->params = params;
    net->random = cfg->drop_path > 0 || cfg->dropout > 0;
    net->key_index = xcalloc((size_t)cfg->batch, sizeof *net->key_index);
    dnnl_dims_t in_dims = {cfg->batch, cfg->in_channels, cfg->image_size, cfg->image_size};
    dnnl_memory_desc_t in_md = dnn_md_make(4, in_dims, dnnl_nchw);
    owned_alloc(&net->tensors, &net->input, &in_md);

    const Tensor *x = stem_init(net);
    x = blocks_init(net, x);
    head_init(net, x);
    net_plan_diffs(net, x);
    return net;
}

void net_free(Net *net)
{
    if (!net)
        return;
    for (int i = 0; i < net->nblocks; i++)
        block_free(&net->blocks[i]);
    free(net->blocks);
    conv_free(&net->conv1);
    if (net->stem_bn)
        batchnorm_free(&net->bn1);
    if (net->use_maxpool)
        pool_free(&net->maxpool);
    if (net->has_bn_final)
        batchnorm_free(&net->bn_final);
    pool_free(&net->gap);
    linear_free(&net->fc);
    owned_free(&net->tensors);
    free(net->diff_logits);
    for (int i = 0; i < 3; i++)
        free(net->scratch[i]);
    free(net->key_index);
    free(net);
}

static void init_tensor(Params *p, int index, uint64_t seed)
{
    const ParamInfo *info = &p->info[index];
    float *plain = xmalloc(info->numel * sizeof(float));
    Rng rng;
    rng_seed(&rng, seed, 0x5eed, (uint64_t)index);
    if (info->kind == PARAM_CONV_WEIGHT) {
        /* kaiming_normal_(mode="fan_out", nonlinearity="relu"); fan_out is
         * OC x K x K for grouped convolutions too, as in PyTorch */
        double std = sqrt(2.0 / (double)(info->dims[0] * info->dims[2] * info->dims[3]));
        for (size_t i = 0; i < info->numel; i++)
            plain[i] = (float)(std * rng_normal(&rng));
    } else if (info->kind == PARAM_FC_WEIGHT || info->kind == PARAM_FC_BIAS) {
        /* nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both */
        int idx = info->kind == PARAM_FC_WEIGHT ? index : index - 1;
        double bound = 1.0 / sqrt((double)p->info[idx].dims[1]);
        for (size_t i = 0; i < info->numel; i++)
            plain[i] = (float)(bound * (2.0 * rng_uniform(&rng) - 1.0));
    } else {
        float v = info->kind == PARAM_BN_WEIGHT ? 1.0f : 0.0f;
        for (size_t i = 0; i < info->numel; i++)
            plain[i] = v;
    }
    params_set_plain(p, index, BUF_VALUE, plain);
    free(plain);
}

void net_init_weights(Net *net, uint64_t seed)
{
    Params *p = net->params;
    for (int i = 0; i < p->count; i++)
        init_tensor(p, i, seed);
    if (!net->cfg.zero_init_residual)
        return;
    /* Goyal et al.: each block starts as the identity; the block names the
     * tensor to zero (its last BN's gamma, or pre-activation its last conv). */
    for (int i = 0; i < net->nblocks; i++) {
        Tensor *t = net->blocks[i].zero_init;
        memset(t->data, 0, dnn_md_bytes(&t->md));
    }
}

float *net_input(Net *net)
{
    return net->input.data;
}

const float *net_logits(const Net *net)
{
    return net->fc.dst.data;
}

void net_set_sample_keys(Net *net, uint64_t seed, int64_t epoch, const int64_t *global_index)
{
    net->key_seed = seed;
    net->key_epoch = epoch;
    memcpy(net->key_index, global_index, (size_t)net->cfg.batch * sizeof *global_index);
    net->keys_set = 1;
}

/* Where the ReLUs are: none runs as a layer of its own; each is fused into
 * the layer before it. After a BN (the stem's bn1, bn_final, and every BN
 * in a block but the last of a post-activation branch and a projection's)
 * it is part of batchnorm_forward, and batchnorm_backward masks the
 * gradient from the BN's workspace. After a post-activation block's
 * residual add it is a post-op of add_forward, and add_backward masks the
 * gradient by the add's output. The block families in blocks.c mark each
 * one. */
void net_forward(Net *net, int training)
{
    if (training && net->random) {
        CHECK(net->keys_set, "%s with drop-path/dropout: net_set_sample_keys must precede "
              "every training forward", net->cfg.arch);
        net->keys_set = 0;
    }
    ForwardPass pass = {.training = training,
                        .seed = net->key_seed,
                        .epoch = net->key_epoch,
                        .sample_keys = net->key_index};
    conv_forward(&net->conv1);
    if (net->stem_bn)
        batchnorm_forward(&net->bn1, training); /* ReLU fused into the BN */
    if (net->use_maxpool)
        pool_forward(&net->maxpool);
    for (int i = 0; i < net->nblocks; i++)
        net->blocks[i].family->forward(&net->blocks[i], &pass);
    if (net->has_bn_final) /* ReLU fused into the BN */
        batchnorm_forward(&net->bn_final, training);
    pool_forward(&net->gap);
    linear_forward(&net->fc);
    dnn_wait();
    if (training)
        net->params->num_batches_tracked++;
}

LossStats net_loss(Net *net, const int32_t *labels, const LossPartner *partner,
                   float label_smoothing, int training, int grad_scale_n)
{
    return loss_softmax_xent(net_logits(net), labels, partner, net->cfg.batch,
                             net->cfg.num_classes, label_smoothing,
                             training ? net->diff_logits : NULL, grad_scale_n);
}

void net_set_grad_hook(Net *net, GradReadyFn fn, void *ctx)
{
    net->grad_hook = fn;
    net->grad_ctx = ctx;
}

static void grads_ready(Net *net, size_t from)
{
    if (!net->grad_hook)
        return;
    dnn_wait();
    net->grad_hook(net->grad_ctx, from);
}

void net_backward(Net *net)
{
    linear_backward(&net->fc, &net->d_logits, &net->d_features);
    pool_backward(&net->gap, &net->d_features, &net->d_gap);
    if (net->has_bn_final) /* and its ReLU, from BN's workspace */
        batchnorm_backward(&net->bn_final, &net->d_gap, &net->d_gap);
    grads_ready(net, net->head_first_param);
    for (int i = net->nblocks - 1; i >= 0; i--) {
        Block *b = &net->blocks[i];
        b->family->backward(b);
        grads_ready(net, b->first_param);
    }
    if (net->use_maxpool)
        pool_backward(&net->maxpool, &net->d_pool, &net->d_stem);
    if (net->stem_bn) /* and its ReLU, from BN's workspace */
        batchnorm_backward(&net->bn1, &net->d_stem, &net->d_stem);
    conv_backward(&net->conv1, &net->d_stem, NULL);
    grads_ready(net, 0);
}

void net_enable_sync_bn(Net *net, const BnSync *sync)
{
    if (net->stem_bn)
        batchnorm_enable_sync(&net->bn1, sync);
    for (int b = 0; b < net->nblocks; b++)
        for (int i = 0; i < net->blocks[b].nbns; i++)
            batchnorm_enable_sync(net->blocks[b].bns[i], sync);
    if (net->has_bn_final)
        batchnorm_enable_sync(&net->bn_final, sync);
}

static double conv_macs(const ConvLayer *c)
{
    const dnnl_dim_t *d = c->dst.md.dims;
    return (double)d[1] * d[2] * d[3] * (c->ic / c->groups) * c->kernel * c->kernel;
}

double net_macs_per_image(const Net *net)
{
    double macs = conv_macs(&net->conv1) + (double)net->fc.in * net->fc.out;
    for (int b = 0; b < net->nblocks; b++)
        for (int i = 0; i < net->blocks[b].nconvs; i++)
            macs += conv_macs(net->blocks[b].convs[i]);
    return macs;
}

static void count_winograd(const ConvLayer *c, int *wanted, int *running)
{
    *wanted += c->winograd_wanted;
    *running += conv_runs_winograd(c);
}

void net_winograd_convs(const Net *net, int *wanted, int *running)
{
    *wanted = *running = 0;
    count_winograd(&net->conv1, wanted, running);
    for (int b = 0; b < net->nblocks; b++)
        for (int i = 0; i < net->blocks[b].nconvs; i++)
            count_winograd(net->blocks[b].convs[i], wanted, running);
}

const NetConfig *net_config(const Net *net)
{
    return &net->cfg;
}

int net_block_count(const Net *net)
{
    return net->nblocks;
}

double net_drop_path_prob(const Net *net, int block)
{
    CHECK(block >= 0 && block < net->nblocks, "block %d of %d", block, net->nblocks);
    return net->blocks[block].has_droppath ? net->blocks[block].drop_path.p : 0.0;
}

const float *net_drop_path_scales(const Net *net, int block)
{
    CHECK(block >= 0 && block < net->nblocks, "block %d of %d", block, net->nblocks);
    return net->blocks[block].has_droppath ? net->blocks[block].drop_path.scale : NULL;
}
