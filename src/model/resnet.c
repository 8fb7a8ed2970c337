/* resnet.c - the depth table, the blocks and the whole network. */
#include "resnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "add.h"
#include "batchnorm.h"
#include "conv.h"
#include "error.h"
#include "linear.h"
#include "pool.h"
#include "rng.h"
#include "shortcut.h"

typedef struct {
    const char *name;
    int bottleneck;
    int cifar;          /* the paper's CIFAR network: 16-32-64 widths, option A */
    int blocks[4];
} ArchSpec;

static const ArchSpec ARCHS[] = {
    {"resnet18", 0, 0, {2, 2, 2, 2}},   {"resnet34", 0, 0, {3, 4, 6, 3}},
    {"resnet50", 1, 0, {3, 4, 6, 3}},   {"resnet101", 1, 0, {3, 4, 23, 3}},
    {"resnet152", 1, 0, {3, 8, 36, 3}}, {"resnet20", 0, 1, {3, 3, 3, 0}},
    {"resnet32", 0, 1, {5, 5, 5, 0}},   {"resnet44", 0, 1, {7, 7, 7, 0}},
    {"resnet56", 0, 1, {9, 9, 9, 0}},   {"resnet110", 0, 1, {18, 18, 18, 0}},
    {"resnet1202", 0, 1, {200, 200, 200, 0}},
};

enum { SHORTCUT_IDENTITY, SHORTCUT_CONV, SHORTCUT_A };

typedef struct {
    int bottleneck, shortcut, nconv;
    size_t first_param;        /* flat-buffer offset of its first tensor */
    const Tensor *in;
    ConvLayer conv[3];
    BatchNormLayer bn[3];
    ConvLayer down_conv;
    BatchNormLayer down_bn;
    ShortcutA short_a;
    AddLayer add;
    SumOp sum;
    /* Gradient views over the scratch buffers, planned at init. */
    Tensor d_out, d_in, d_branch[3], d_main, d_short;
} Block;

struct Net {
    NetConfig cfg;
    const ArchSpec *spec;
    Params *params;
    Tensor input;
    ConvLayer conv1;
    BatchNormLayer bn1;
    PoolLayer maxpool, gap;
    int use_maxpool;
    Block *blocks;
    int nblocks;
    LinearLayer fc;
    float *diff_logits;
    Tensor d_logits, d_features, d_gap, d_pool, d_stem;
    float *scratch[3]; /* X: block gradients; A, B: inside a block */
    size_t scratch_bytes;
    size_t head_first_param;
    GradReadyFn grad_hook;
    void *grad_ctx;
};

static const ArchSpec *arch_find(const char *name)
{
    for (size_t i = 0; i < sizeof ARCHS / sizeof ARCHS[0]; i++)
        if (strcmp(ARCHS[i].name, name) == 0)
            return &ARCHS[i];
    return NULL;
}

int arch_exists(const char *arch)
{
    return arch_find(arch) != NULL;
}

void arch_names(char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof ARCHS / sizeof ARCHS[0] && used < len; i++)
        used += (size_t)snprintf(out + used, len - used, "%s%s", i ? ", " : "", ARCHS[i].name);
}

static void track_scratch(Net *net, const Tensor *t)
{
    size_t b = md_bytes(&t->md);
    if (b > net->scratch_bytes)
        net->scratch_bytes = b;
}

static void block_init(Net *net, Block *b, const Tensor *in, int planes, int stride,
                       const char *prefix)
{
    Params *p = net->params;
    const ArchSpec *s = net->spec;
    char name[PARAM_NAME_MAX];
    memset(b, 0, sizeof *b);
    b->in = in;
    b->bottleneck = s->bottleneck;
    b->nconv = s->bottleneck ? 3 : 2;
    int in_ch = (int)in->md.dims[1];
    int out_ch = s->bottleneck ? planes * 4 : planes;

    const Tensor *x = in;
    for (int i = 0; i < b->nconv; i++) {
        int last = i == b->nconv - 1;
        int k = (s->bottleneck && i != 1) ? 1 : 3;
        int width = last ? out_ch : planes;
        int st = (s->bottleneck ? i == 1 : i == 0) ? stride : 1;
        snprintf(name, sizeof name, "%s.conv%d", prefix, i + 1);
        conv_init(&b->conv[i], x, width, k, st, k / 2, 1, 1, p, name);
        snprintf(name, sizeof name, "%s.bn%d", prefix, i + 1);
        batchnorm_init(&b->bn[i], &b->conv[i].dst, !last, p, name);
        x = &b->bn[i].dst;
        track_scratch(net, &b->conv[i].dst);
    }

    snprintf(name, sizeof name, "%s.conv1.weight", prefix);
    b->first_param = p->info[params_find(p, name)].offset;

    const Tensor *shortcut = in;
    if (stride != 1 || in_ch != out_ch) {
        if (s->cifar) {
            b->shortcut = SHORTCUT_A;
            shortcut_a_init(&b->short_a, in, &x->md, stride);
            shortcut = &b->short_a.dst;
        } else {
            b->shortcut = SHORTCUT_CONV;
            snprintf(name, sizeof name, "%s.downsample.0", prefix);
            conv_init(&b->down_conv, in, out_ch, 1, stride, 0, 1, 1, p, name);
            snprintf(name, sizeof name, "%s.downsample.1", prefix);
            batchnorm_init(&b->down_bn, &b->down_conv.dst, 0, p, name);
            shortcut = &b->down_bn.dst;
        }
    }
    /* the last BN output feeds only the add: the sum can overwrite it */
    add_init_in_place(&b->add, &b->bn[b->nconv - 1].dst, shortcut, 1);
    sum_init(&b->sum, &in->md);
    track_scratch(net, in);
}

/* Plans each gradient of the block onto the scratch buffers X, A, B:
 * the block's output and input gradients both live in X. */
static void block_plan_diffs(Net *net, Block *b)
{
    float *X = net->scratch[0], *A = net->scratch[1], *B = net->scratch[2];
    tensor_view(&b->d_out, &b->add.dst.md, X);
    tensor_view(&b->d_in, &b->in->md, X);
    /* d_branch[i]: gradient w.r.t. conv i's output, alternating A, B from the end */
    float *buf = A;
    for (int i = b->nconv - 1; i >= 0; i--) {
        tensor_view(&b->d_branch[i], &b->conv[i].dst.md, buf);
        buf = buf == A ? B : A;
    }
    /* conv1's input gradient goes to the buffer conv1's output gradient is not in */
    float *main_buf = b->d_branch[0].data == A ? B : A;
    tensor_view(&b->d_main, &b->in->md, main_buf);
    tensor_view(&b->d_short, &b->in->md, main_buf == A ? B : A);
}

static void block_forward(Block *b, int training)
{
    for (int i = 0; i < b->nconv; i++) {
        conv_forward(&b->conv[i]);
        batchnorm_forward(&b->bn[i], training);
    }
    if (b->shortcut == SHORTCUT_CONV) {
        conv_forward(&b->down_conv);
        batchnorm_forward(&b->down_bn, training);
    } else if (b->shortcut == SHORTCUT_A) {
        shortcut_a_forward(&b->short_a);
    }
    add_forward(&b->add);
}

/* Gradient of the block output in X in, gradient of the block input in X out. */
static void block_backward(Block *b)
{
    add_backward(&b->add, &b->d_out, &b->d_out);
    const Tensor *d = &b->d_out;
    for (int i = b->nconv - 1; i >= 0; i--) {
        batchnorm_backward(&b->bn[i], d, &b->d_branch[i]);
        Tensor *below = i > 0 ? &b->d_branch[i - 1] : &b->d_main;
        conv_backward(&b->conv[i], &b->d_branch[i], below);
        d = below;
    }
    switch (b->shortcut) {
    case SHORTCUT_IDENTITY:
        sum_run(&b->sum, &b->d_main, &b->d_in, &b->d_in);
        break;
    case SHORTCUT_CONV:
        batchnorm_backward(&b->down_bn, &b->d_out, &b->d_out);
        conv_backward(&b->down_conv, &b->d_out, &b->d_short);
        sum_run(&b->sum, &b->d_main, &b->d_short, &b->d_in);
        break;
    case SHORTCUT_A:
        shortcut_a_backward(&b->short_a, &b->d_out, &b->d_short);
        sum_run(&b->sum, &b->d_main, &b->d_short, &b->d_in);
        break;
    }
}

static void block_free(Block *b)
{
    for (int i = 0; i < b->nconv; i++) {
        conv_free(&b->conv[i]);
        batchnorm_free(&b->bn[i]);
    }
    if (b->shortcut == SHORTCUT_CONV) {
        conv_free(&b->down_conv);
        batchnorm_free(&b->down_bn);
    } else if (b->shortcut == SHORTCUT_A) {
        shortcut_a_free(&b->short_a);
    }
    add_free(&b->add);
    sum_free(&b->sum);
    Tensor *ts[] = {&b->d_out, &b->d_in, &b->d_branch[0], &b->d_branch[1], &b->d_branch[2],
                    &b->d_main, &b->d_short};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        if (ts[i]->mem)
            tensor_free(ts[i]);
}

static const Tensor *stem_init(Net *net)
{
    const NetConfig *c = &net->cfg;
    int cifar = net->spec->cifar, small = cifar || c->small_stem;
    int width = cifar ? 16 : 64;
    conv_init(&net->conv1, &net->input, width, small ? 3 : 7, small ? 1 : 2, small ? 1 : 3, 1, 0,
              net->params, "conv1");
    batchnorm_init(&net->bn1, &net->conv1.dst, 1, net->params, "bn1");
    track_scratch(net, &net->conv1.dst);
    net->use_maxpool = !small;
    if (!net->use_maxpool)
        return &net->bn1.dst;
    maxpool_init(&net->maxpool, &net->bn1.dst, 3, 2, 1);
    return &net->maxpool.dst;
}

static int net_block_count(const ArchSpec *s)
{
    int n = 0;
    for (int i = 0; i < 4; i++)
        n += s->blocks[i];
    return n;
}

static void head_init(Net *net, const Tensor *features)
{
    int channels = (int)features->md.dims[1], n = net->cfg.batch, k = net->cfg.num_classes;
    avgpool_global_init(&net->gap, features);
    linear_init(&net->fc, net->gap.flat.data, n, channels, k, net->params, "fc");
    net->head_first_param = net->params->info[params_find(net->params, "fc.weight")].offset;
    net->diff_logits = xaligned_alloc((size_t)n * k * sizeof(float));
    tensor_view(&net->d_logits, &net->fc.dst.md, net->diff_logits);
    tensor_alloc(&net->d_features, &net->fc.src.md);
}

static void net_plan_diffs(Net *net, const Tensor *features)
{
    for (int i = 0; i < 3; i++)
        net->scratch[i] = xaligned_alloc(net->scratch_bytes);
    float *X = net->scratch[0], *A = net->scratch[1];
    tensor_view(&net->d_gap, &features->md, X);
    for (int i = 0; i < net->nblocks; i++)
        block_plan_diffs(net, &net->blocks[i]);
    if (net->use_maxpool) {
        tensor_view(&net->d_pool, &net->maxpool.dst.md, X);
        tensor_view(&net->d_stem, &net->bn1.dst.md, A);
    } else {
        tensor_view(&net->d_stem, &net->bn1.dst.md, X);
    }
}

Net *net_create(const NetConfig *cfg, Params *params)
{
    const ArchSpec *spec = arch_find(cfg->arch);
    CHECK(spec != NULL, "unknown architecture %s", cfg->arch);
    Net *net = xcalloc(1, sizeof *net);
    net->cfg = *cfg;
    net->spec = spec;
    net->params = params;
    dnnl_dims_t in_dims = {cfg->batch, cfg->in_channels, cfg->image_size, cfg->image_size};
    dnnl_memory_desc_t in_md = md_make(4, in_dims, dnnl_nchw);
    tensor_alloc(&net->input, &in_md);

    const Tensor *x = stem_init(net);
    net->nblocks = net_block_count(spec);
    net->blocks = xcalloc((size_t)net->nblocks, sizeof *net->blocks);
    int b = 0;
    for (int stage = 0; stage < 4 && spec->blocks[stage]; stage++) {
        int planes = (spec->cifar ? 16 : 64) << stage;
        for (int j = 0; j < spec->blocks[stage]; j++, b++) {
            char prefix[32];
            snprintf(prefix, sizeof prefix, "layer%d.%d", stage + 1, j);
            block_init(net, &net->blocks[b], x, planes, (j == 0 && stage > 0) ? 2 : 1, prefix);
            x = &net->blocks[b].add.dst;
        }
    }
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
    batchnorm_free(&net->bn1);
    if (net->use_maxpool)
        pool_free(&net->maxpool);
    pool_free(&net->gap);
    linear_free(&net->fc);
    Tensor *ts[] = {&net->input, &net->d_logits, &net->d_features, &net->d_gap, &net->d_pool,
                    &net->d_stem};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        if (ts[i]->mem)
            tensor_free(ts[i]);
    free(net->diff_logits);
    for (int i = 0; i < 3; i++)
        free(net->scratch[i]);
    free(net);
}

static void init_tensor(Params *p, int index, uint64_t seed)
{
    const ParamInfo *info = &p->info[index];
    float *plain = xmalloc(info->numel * sizeof(float));
    Rng rng;
    rng_seed(&rng, seed, 0x5eed, (uint64_t)index);
    if (info->kind == PARAM_CONV_WEIGHT) {
        /* kaiming_normal_(mode="fan_out", nonlinearity="relu") */
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
    /* Goyal et al.: each block starts as the identity (last BN gamma = 0). */
    for (int i = 0; i < net->nblocks; i++) {
        Tensor *gamma = &net->blocks[i].bn[net->blocks[i].nconv - 1].scale;
        memset(gamma->data, 0, md_bytes(&gamma->md));
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

void net_forward(Net *net, int training)
{
    conv_forward(&net->conv1);
    batchnorm_forward(&net->bn1, training);
    if (net->use_maxpool)
        pool_forward(&net->maxpool);
    for (int i = 0; i < net->nblocks; i++)
        block_forward(&net->blocks[i], training);
    pool_forward(&net->gap);
    linear_forward(&net->fc);
    dnn_wait();
    if (training)
        net->params->num_batches_tracked++;
}

LossStats net_loss(Net *net, const int32_t *labels, float label_smoothing, int training,
                   int grad_scale_n)
{
    return loss_softmax_xent(net_logits(net), labels, net->cfg.batch, net->cfg.num_classes,
                             label_smoothing, training ? net->diff_logits : NULL, grad_scale_n);
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
    grads_ready(net, net->head_first_param);
    for (int i = net->nblocks - 1; i >= 0; i--) {
        block_backward(&net->blocks[i]);
        grads_ready(net, net->blocks[i].first_param);
    }
    if (net->use_maxpool) {
        pool_backward(&net->maxpool, &net->d_pool, &net->d_stem);
        batchnorm_backward(&net->bn1, &net->d_stem, &net->d_stem);
    } else {
        batchnorm_backward(&net->bn1, &net->d_stem, &net->d_stem);
    }
    conv_backward(&net->conv1, &net->d_stem, NULL);
    grads_ready(net, 0);
}

void net_enable_sync_bn(Net *net, const BnSync *sync)
{
    batchnorm_enable_sync(&net->bn1, sync);
    for (int b = 0; b < net->nblocks; b++) {
        Block *blk = &net->blocks[b];
        for (int i = 0; i < blk->nconv; i++)
            batchnorm_enable_sync(&blk->bn[i], sync);
        if (blk->shortcut == SHORTCUT_CONV)
            batchnorm_enable_sync(&blk->down_bn, sync);
    }
}

static double conv_macs(const ConvLayer *c)
{
    const dnnl_dim_t *d = c->dst.md.dims;
    return (double)d[1] * d[2] * d[3] * (c->ic / c->groups) * c->kernel * c->kernel;
}

double net_macs_per_image(const Net *net)
{
    double macs = conv_macs(&net->conv1) + (double)net->fc.in * net->fc.out;
    for (int b = 0; b < net->nblocks; b++) {
        const Block *blk = &net->blocks[b];
        for (int i = 0; i < blk->nconv; i++)
            macs += conv_macs(&blk->conv[i]);
        if (blk->shortcut == SHORTCUT_CONV)
            macs += conv_macs(&blk->down_conv);
    }
    return macs;
}

const NetConfig *net_config(const Net *net)
{
    return &net->cfg;
}
