/* resnet.c - the architecture table, the blocks and the whole network. */
#include "resnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "add.h"
#include "batchnorm.h"
#include "conv.h"
#include "dropout.h"
#include "droppath.h"
#include "error.h"
#include "linear.h"
#include "pool.h"
#include "rng.h"
#include "shortcut.h"

typedef enum {
    FAMILY_RESNET,       /* torchvision resnet18-152 */
    FAMILY_CIFAR,        /* the ResNet paper's CIFAR networks, option-A shortcuts */
    FAMILY_RESNEXT,      /* torchvision resnext* */
    FAMILY_WIDE,         /* torchvision wide_resnet* */
    FAMILY_PREACT,       /* pre-activation, ImageNet stem and widths */
    FAMILY_PREACT_CIFAR, /* pre-activation, CIFAR stem and widths */
    FAMILY_WRN,          /* wrn-D-K */
} Family;

typedef struct {
    char name[32];
    Family family;
    int bottleneck;
    int groups;          /* of the bottleneck's 3x3 conv */
    int width_per_group; /* bottleneck width = planes * width_per_group / 64 * groups */
    int widen;           /* CIFAR pre-activation basic blocks: 16k, 32k, 64k channels */
    int blocks[4];
} ArchSpec;

/* name, family, bottleneck, groups, width per group, widen, blocks per stage */
static const ArchSpec ARCHS[] = {
    {"resnet18", FAMILY_RESNET, 0, 1, 64, 1, {2, 2, 2, 2}},
    {"resnet34", FAMILY_RESNET, 0, 1, 64, 1, {3, 4, 6, 3}},
    {"resnet50", FAMILY_RESNET, 1, 1, 64, 1, {3, 4, 6, 3}},
    {"resnet101", FAMILY_RESNET, 1, 1, 64, 1, {3, 4, 23, 3}},
    {"resnet152", FAMILY_RESNET, 1, 1, 64, 1, {3, 8, 36, 3}},
    {"resnet20", FAMILY_CIFAR, 0, 1, 64, 1, {3, 3, 3, 0}},
    {"resnet32", FAMILY_CIFAR, 0, 1, 64, 1, {5, 5, 5, 0}},
    {"resnet44", FAMILY_CIFAR, 0, 1, 64, 1, {7, 7, 7, 0}},
    {"resnet56", FAMILY_CIFAR, 0, 1, 64, 1, {9, 9, 9, 0}},
    {"resnet110", FAMILY_CIFAR, 0, 1, 64, 1, {18, 18, 18, 0}},
    {"resnet1202", FAMILY_CIFAR, 0, 1, 64, 1, {200, 200, 200, 0}},
    {"resnext50_32x4d", FAMILY_RESNEXT, 1, 32, 4, 1, {3, 4, 6, 3}},
    {"resnext101_32x8d", FAMILY_RESNEXT, 1, 32, 8, 1, {3, 4, 23, 3}},
    {"resnext101_64x4d", FAMILY_RESNEXT, 1, 64, 4, 1, {3, 4, 23, 3}},
    {"wide_resnet50_2", FAMILY_WIDE, 1, 1, 128, 1, {3, 4, 6, 3}},
    {"wide_resnet101_2", FAMILY_WIDE, 1, 1, 128, 1, {3, 4, 23, 3}},
    {"preact-resnet18", FAMILY_PREACT, 0, 1, 64, 1, {2, 2, 2, 2}},
    {"preact-resnet34", FAMILY_PREACT, 0, 1, 64, 1, {3, 4, 6, 3}},
    {"preact-resnet50", FAMILY_PREACT, 1, 1, 64, 1, {3, 4, 6, 3}},
    {"preact-resnet101", FAMILY_PREACT, 1, 1, 64, 1, {3, 4, 23, 3}},
    {"preact-resnet152", FAMILY_PREACT, 1, 1, 64, 1, {3, 8, 36, 3}},
    {"preact-resnet110", FAMILY_PREACT_CIFAR, 0, 1, 64, 1, {18, 18, 18, 0}},
    {"preact-resnet164", FAMILY_PREACT_CIFAR, 1, 1, 64, 1, {18, 18, 18, 0}},
    {"preact-resnet1001", FAMILY_PREACT_CIFAR, 1, 1, 64, 1, {111, 111, 111, 0}},
};
#define NARCHS (sizeof ARCHS / sizeof ARCHS[0])

/* The wrn-D-K instances --list-archs shows (the WRN paper's tables). */
static const char *const LISTED_WRN[] = {"wrn-16-4", "wrn-16-8", "wrn-22-8",
                                         "wrn-28-10", "wrn-40-2", "wrn-40-4"};

static int family_cifar(Family f)
{
    return f == FAMILY_CIFAR || f == FAMILY_PREACT_CIFAR || f == FAMILY_WRN;
}

static int family_preact(Family f)
{
    return f == FAMILY_PREACT || f == FAMILY_PREACT_CIFAR || f == FAMILY_WRN;
}

static const char *family_label(Family f)
{
    static const char *const labels[] = {"ResNet", "CIFAR ResNet", "ResNeXt", "Wide ResNet",
                                         "pre-act ResNet", "pre-act CIFAR", "WRN"};
    return labels[f];
}

enum { SHORTCUT_IDENTITY, SHORTCUT_CONV, SHORTCUT_A };

typedef struct {
    int preact, bottleneck, nconv, shortcut, has_dropout, has_droppath;
    size_t first_param;        /* flat-buffer offset of its first tensor */
    const Tensor *in;          /* (N, C, H, W) block input */
    Tensor *branch;            /* the residual branch's output; the add overwrites it */
    ConvLayer conv[3];
    /* post-activation: bn[i] follows conv[i] (ReLU fused but for the last);
     * pre-activation: bn[i] (with ReLU) precedes conv[i], bn[0] on the input */
    BatchNormLayer bn[3];
    DropoutLayer dropout;      /* pre-activation basic blocks: before conv[1] */
    DropPath drop_path;
    ConvLayer down_conv;       /* pre-activation: on bn[0]'s output */
    BatchNormLayer down_bn;    /* post-activation only */
    ShortcutA short_a;
    /* Where the shortcut's layout differs from the branch's (a grouped conv
     * can lead oneDNN to another channel blocking): its output reordered to
     * the branch layout, and the gradient back. NULL prims otherwise. */
    Reorder short_fwd, short_bwd;
    const Tensor *short_out;   /* the shortcut's output, before short_fwd */
    AddLayer add;
    SumOp sum;
    /* Gradient views over the scratch buffers X, A, B, planned at init:
     * the block's output and input gradients both live in X.
     * post-activation: d_branch[i] = d conv[i].dst;
     * pre-activation: d_src[i] = d conv[i].src (in place: d conv[i-1].dst). */
    Tensor d_out, d_in, d_branch[3], d_src[3], d_scaled, d_main, d_short;
} Block;

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

/* ---- the architecture table ---- */

/* wrn-D-K with D = 6n + 4 (n >= 1) and 1 <= K <= 64. */
static int wrn_parse(const char *name, ArchSpec *out)
{
    int d = 0, k = 0, used = 0;
    if (sscanf(name, "wrn-%d-%d%n", &d, &k, &used) != 2 || name[used] != '\0')
        return 0;
    if (d < 10 || d > 6004 || (d - 4) % 6 != 0 || k < 1 || k > 64)
        return 0;
    char canonical[32];
    snprintf(canonical, sizeof canonical, "wrn-%d-%d", d, k);
    if (strcmp(canonical, name) != 0) /* no leading zeros or signs */
        return 0;
    int n = (d - 4) / 6;
    *out = (ArchSpec){.family = FAMILY_WRN, .groups = 1, .width_per_group = 64, .widen = k,
                      .blocks = {n, n, n, 0}};
    snprintf(out->name, sizeof out->name, "%s", name);
    return 1;
}

static int arch_find(const char *name, ArchSpec *out)
{
    for (size_t i = 0; i < NARCHS; i++)
        if (strcmp(ARCHS[i].name, name) == 0) {
            *out = ARCHS[i];
            return 1;
        }
    return wrn_parse(name, out);
}

int arch_exists(const char *arch)
{
    ArchSpec s;
    return arch_find(arch, &s);
}

int arch_is_wrn(const char *arch)
{
    ArchSpec s;
    return arch_find(arch, &s) && s.family == FAMILY_WRN;
}

int arch_has_fixed_stem(const char *arch)
{
    ArchSpec s;
    return arch_find(arch, &s) && family_cifar(s.family);
}

void arch_names(char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < NARCHS && used < len; i++)
        used += (size_t)snprintf(out + used, len - used, "%s%s", i ? ", " : "", ARCHS[i].name);
    if (used < len)
        snprintf(out + used, len - used, ", wrn-D-K (D = 6n+4, e.g. wrn-28-10)");
}

static int num_stages(const ArchSpec *s)
{
    return family_cifar(s->family) ? 3 : 4;
}

/* The channels of a block of stage (0-based): width inside, out at the end. */
static void stage_channels(const ArchSpec *s, int stage, int *width, int *out)
{
    if (family_cifar(s->family)) {
        int planes = 16 << stage;
        if (s->bottleneck) {
            *width = planes;
            *out = planes * 4;
        } else {
            *width = *out = planes * s->widen;
        }
        return;
    }
    int planes = 64 << stage;
    if (s->bottleneck) {
        /* torchvision: int(planes * (base_width / 64.)) * groups */
        *width = planes * s->width_per_group / 64 * s->groups;
        *out = planes * 4;
    } else {
        *width = *out = planes;
    }
}

/* ---- blocks ---- */

static void track_scratch(Net *net, const Tensor *t)
{
    size_t b = dnn_md_bytes(&t->md);
    if (b > net->scratch_bytes)
        net->scratch_bytes = b;
}

/* Block `index` of the network (0-based) in stage (0-based). */
static void block_init(Net *net, Block *b, const Tensor *in, int stage, int stride, int index,
                       const char *prefix)
{
    Params *p = net->params;
    const ArchSpec *s = &net->spec;
    const NetConfig *c = &net->cfg;
    char name[PARAM_NAME_MAX];
    memset(b, 0, sizeof *b);
    b->in = in;
    b->preact = family_preact(s->family);
    b->bottleneck = s->bottleneck;
    b->nconv = s->bottleneck ? 3 : 2;
    int in_ch = (int)in->md.dims[1], width, out_ch;
    stage_channels(s, stage, &width, &out_ch);
    /* per conv: kernel, output channels, stride, groups */
    int kernel[3] = {3, 3}, outs[3] = {out_ch, out_ch}, strides[3] = {stride, 1},
        groups[3] = {1, 1};
    if (s->bottleneck) {
        kernel[0] = 1, kernel[1] = 3, kernel[2] = 1;
        outs[0] = width, outs[1] = width, outs[2] = out_ch;
        strides[0] = 1, strides[1] = stride, strides[2] = 1;
        groups[0] = 1, groups[1] = s->groups, groups[2] = 1;
    }

    const Tensor *x = in;
    for (int i = 0; i < b->nconv; i++) {
        int last = i == b->nconv - 1;
        if (b->preact) {
            snprintf(name, sizeof name, "%s.bn%d", prefix, i + 1);
            batchnorm_init(&b->bn[i], x, 1, p, name);
            x = &b->bn[i].dst;
            if (i == 1 && c->dropout > 0 && !s->bottleneck) {
                dropout_init(&b->dropout, x, c->dropout, index);
                b->has_dropout = 1;
                x = &b->dropout.dst;
            }
        }
        snprintf(name, sizeof name, "%s.conv%d", prefix, i + 1);
        ConvSpec cs = {outs[i], kernel[i], strides[i], kernel[i] / 2, groups[i], 1, c->conv_algo};
        conv_init(&b->conv[i], x, &cs, p, name);
        x = &b->conv[i].dst;
        if (!b->preact) {
            snprintf(name, sizeof name, "%s.bn%d", prefix, i + 1);
            batchnorm_init(&b->bn[i], x, !last, p, name);
            x = &b->bn[i].dst;
        }
    }
    b->branch = b->preact ? &b->conv[b->nconv - 1].dst : &b->bn[b->nconv - 1].dst;

    snprintf(name, sizeof name, "%s.%s.weight", prefix, b->preact ? "bn1" : "conv1");
    b->first_param = p->info[params_find(p, name)].offset;

    const Tensor *shortcut = in;
    ConvSpec down = {out_ch, 1, stride, 0, 1, 1, c->conv_algo};
    if (stride != 1 || in_ch != out_ch) {
        snprintf(name, sizeof name, "%s.downsample.0", prefix);
        if (b->preact) {
            /* projection of the pre-activated input, no BN (He et al. 2016) */
            b->shortcut = SHORTCUT_CONV;
            conv_init(&b->down_conv, &b->bn[0].dst, &down, p, name);
            shortcut = &b->down_conv.dst;
        } else if (s->family == FAMILY_CIFAR) {
            b->shortcut = SHORTCUT_A;
            shortcut_a_init(&b->short_a, in, &x->md, stride);
            shortcut = &b->short_a.dst;
        } else {
            b->shortcut = SHORTCUT_CONV;
            conv_init(&b->down_conv, in, &down, p, name);
            snprintf(name, sizeof name, "%s.downsample.1", prefix);
            batchnorm_init(&b->down_bn, &b->down_conv.dst, 0, p, name);
            shortcut = &b->down_bn.dst;
        }
    }
    b->short_out = shortcut;
    if (!dnn_md_equal(&shortcut->md, &b->branch->md)) {
        dnn_reorder_init(&b->short_fwd, &shortcut->md, &b->branch->md, 1);
        dnn_reorder_init(&b->short_bwd, &b->branch->md, &shortcut->md, 1);
        shortcut = &b->short_fwd.out;
    }
    if (c->drop_path > 0) {
        droppath_init(&b->drop_path, &b->branch->md, c->drop_path * (index + 1) / net->nblocks,
                      index);
        b->has_droppath = 1;
    }
    /* the branch output (a BN's or a conv's) feeds only the add, whose
     * backward needs neither: the sum can overwrite it */
    add_init_in_place(&b->add, b->branch, shortcut, !b->preact);
    add_sum_init(&b->sum, &in->md);
    track_scratch(net, in);
    for (int i = 0; i < b->nconv; i++) {
        track_scratch(net, &b->conv[i].dst);
        track_scratch(net, &b->bn[i].dst);
    }
}

/* Plans each gradient of the block onto the scratch buffers X, A, B. */
static void block_plan_diffs(Net *net, Block *b)
{
    float *X = net->scratch[0], *A = net->scratch[1], *B = net->scratch[2];
    int last = b->nconv - 1;
    tensor_view(&b->d_out, &b->add.dst.md, X);
    tensor_view(&b->d_in, &b->in->md, X);
    float *buf = A;
    if (!b->preact) {
        /* d_branch[i] alternates A, B from the end (drop-path scales d_out
         * into d_branch[last], then the last BN runs in place) */
        for (int i = last; i >= 0; i--) {
            tensor_view(&b->d_branch[i], &b->conv[i].dst.md, buf);
            buf = buf == A ? B : A;
        }
        /* conv1's input gradient goes to the buffer conv1's output gradient is not in */
        float *main_buf = b->d_branch[0].data == A ? B : A;
        tensor_view(&b->d_main, &b->in->md, main_buf);
        tensor_view(&b->d_short, &b->in->md, main_buf == A ? B : A);
        return;
    }
    /* d_src[i] alternates A, B from the end; the drop-path scaled output
     * gradient sits in B until conv[last] has read it. BN i runs in place
     * on d_src[i], turning it into d conv[i-1].dst. */
    tensor_view(&b->d_scaled, &b->conv[last].dst.md, B);
    for (int i = last; i >= 0; i--) {
        tensor_view(&b->d_src[i], &b->conv[i].src->md, buf);
        buf = buf == A ? B : A;
    }
    /* bn[0] backward leaves the branch's input gradient in d_src[0] (the
     * input's layout); the projection's gradient goes to the other buffer */
    tensor_view(&b->d_main, &b->in->md, b->d_src[0].data);
    tensor_view(&b->d_short, &b->in->md, b->d_src[0].data == A ? B : A);
}

static void block_forward(Net *net, Block *b, int training)
{
    for (int i = 0; i < b->nconv; i++) {
        if (b->preact) {
            batchnorm_forward(&b->bn[i], training);
            if (i == 1 && b->has_dropout)
                dropout_forward(&b->dropout, training, net->key_seed, net->key_epoch,
                                net->key_index);
        }
        conv_forward(&b->conv[i]);
        if (!b->preact)
            batchnorm_forward(&b->bn[i], training);
    }
    if (b->has_droppath && training) {
        droppath_draw(&b->drop_path, net->key_seed, net->key_epoch, net->key_index);
        dnn_wait();
        droppath_apply(&b->drop_path, b->branch, b->branch);
    }
    if (b->shortcut == SHORTCUT_CONV) {
        conv_forward(&b->down_conv);
        if (!b->preact)
            batchnorm_forward(&b->down_bn, training);
    } else if (b->shortcut == SHORTCUT_A) {
        shortcut_a_forward(&b->short_a);
    }
    if (b->short_fwd.prim)
        dnn_reorder_run_into(&b->short_fwd, b->short_out, &b->short_fwd.out);
    add_forward(&b->add);
}

/* The gradient of the shortcut's output (d_out, in its own layout). */
static Tensor *shortcut_grad(Block *b)
{
    if (!b->short_bwd.prim)
        return &b->d_out;
    dnn_reorder_run_into(&b->short_bwd, &b->d_out, &b->short_bwd.out);
    return &b->short_bwd.out;
}

/* Gradient of the block output in X in, gradient of the block input in X out. */
static void block_backward_post(Block *b)
{
    int last = b->nconv - 1;
    add_backward(&b->add, &b->d_out, &b->d_out);
    const Tensor *d = &b->d_out;
    if (b->has_droppath) {
        dnn_wait();
        droppath_apply(&b->drop_path, &b->d_out, &b->d_branch[last]);
        d = &b->d_branch[last];
    }
    for (int i = last; i >= 0; i--) {
        batchnorm_backward(&b->bn[i], d, &b->d_branch[i]);
        Tensor *below = i > 0 ? &b->d_branch[i - 1] : &b->d_main;
        conv_backward(&b->conv[i], &b->d_branch[i], below);
        d = below;
    }
    Tensor *g = shortcut_grad(b);
    switch (b->shortcut) {
    case SHORTCUT_IDENTITY:
        add_sum_run(&b->sum, &b->d_main, g, &b->d_in);
        break;
    case SHORTCUT_CONV:
        batchnorm_backward(&b->down_bn, g, g);
        conv_backward(&b->down_conv, g, &b->d_short);
        add_sum_run(&b->sum, &b->d_main, &b->d_short, &b->d_in);
        break;
    case SHORTCUT_A:
        shortcut_a_backward(&b->short_a, g, &b->d_short);
        add_sum_run(&b->sum, &b->d_main, &b->d_short, &b->d_in);
        break;
    }
}

static void block_backward_pre(Block *b)
{
    int last = b->nconv - 1;
    const Tensor *d = &b->d_out; /* the add has no ReLU: both inputs get d_out */
    if (b->has_droppath) {
        dnn_wait();
        droppath_apply(&b->drop_path, &b->d_out, &b->d_scaled);
        d = &b->d_scaled;
    }
    for (int i = last; i >= 0; i--) {
        conv_backward(&b->conv[i], d, &b->d_src[i]);
        if (i == 1 && b->has_dropout)
            dropout_backward(&b->dropout, &b->d_src[i], &b->d_src[i]);
        if (i > 0)
            batchnorm_backward(&b->bn[i], &b->d_src[i], &b->d_src[i]);
        d = &b->d_src[i];
    }
    Tensor *g = shortcut_grad(b);
    if (b->shortcut == SHORTCUT_CONV) {
        conv_backward(&b->down_conv, g, &b->d_short);
        add_sum_run(&b->sum, &b->d_main, &b->d_short, &b->d_main);
        batchnorm_backward(&b->bn[0], &b->d_main, &b->d_in);
    } else {
        batchnorm_backward(&b->bn[0], &b->d_main, &b->d_main);
        add_sum_run(&b->sum, &b->d_main, g, &b->d_in);
    }
}

static void block_free(Block *b)
{
    for (int i = 0; i < b->nconv; i++) {
        conv_free(&b->conv[i]);
        batchnorm_free(&b->bn[i]);
    }
    if (b->has_dropout)
        dropout_free(&b->dropout);
    if (b->has_droppath)
        droppath_free(&b->drop_path);
    if (b->shortcut == SHORTCUT_CONV) {
        conv_free(&b->down_conv);
        if (!b->preact)
            batchnorm_free(&b->down_bn);
    } else if (b->shortcut == SHORTCUT_A) {
        shortcut_a_free(&b->short_a);
    }
    dnn_reorder_free(&b->short_fwd);
    dnn_reorder_free(&b->short_bwd);
    add_free(&b->add);
    add_sum_free(&b->sum);
    Tensor *ts[] = {&b->d_out,    &b->d_in,     &b->d_branch[0], &b->d_branch[1],
                    &b->d_branch[2], &b->d_src[0], &b->d_src[1], &b->d_src[2],
                    &b->d_scaled, &b->d_main,   &b->d_short};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        if (ts[i]->mem)
            tensor_free(ts[i]);
}

/* ---- the network ---- */

/* conv1, then (but in pre-activation CIFAR networks, whose first block
 * normalises its input) bn1 with ReLU, then (ImageNet stem) the max-pool. */
static const Tensor *stem_init(Net *net)
{
    const NetConfig *c = &net->cfg;
    int cifar = family_cifar(net->spec.family), small = cifar || c->small_stem;
    int width = cifar ? 16 : 64;
    ConvSpec cs = {width, small ? 3 : 7, small ? 1 : 2, small ? 1 : 3, 1, 0, c->conv_algo};
    conv_init(&net->conv1, &net->input, &cs, net->params, "conv1");
    track_scratch(net, &net->conv1.dst);
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
    tensor_view(&net->d_logits, &net->fc.dst.md, net->diff_logits);
    tensor_alloc(&net->d_features, &net->fc.src.md);
    track_scratch(net, features);
}

static void net_plan_diffs(Net *net, const Tensor *features)
{
    for (int i = 0; i < 3; i++)
        net->scratch[i] = xaligned_alloc(net->scratch_bytes);
    float *X = net->scratch[0], *A = net->scratch[1];
    tensor_view(&net->d_gap, &features->md, X);
    for (int i = 0; i < net->nblocks; i++)
        block_plan_diffs(net, &net->blocks[i]);
    const Tensor *stem = net->stem_bn ? &net->bn1.dst : &net->conv1.dst;
    if (net->use_maxpool) {
        tensor_view(&net->d_pool, &net->maxpool.dst.md, X);
        tensor_view(&net->d_stem, &stem->md, A);
    } else {
        tensor_view(&net->d_stem, &stem->md, X);
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
    tensor_alloc(&net->input, &in_md);

    const Tensor *x = stem_init(net);
    int stages = num_stages(&net->spec);
    for (int stage = 0; stage < stages; stage++) {
        CHECK(stage_block_count(net, stage) >= 1, "%s: stage %d has no blocks", cfg->arch,
              stage + 1);
        net->nblocks += stage_block_count(net, stage);
    }
    net->blocks = xcalloc((size_t)net->nblocks, sizeof *net->blocks);
    int b = 0;
    for (int stage = 0; stage < stages; stage++) {
        for (int j = 0; j < stage_block_count(net, stage); j++, b++) {
            char prefix[32];
            snprintf(prefix, sizeof prefix, "layer%d.%d", stage + 1, j);
            block_init(net, &net->blocks[b], x, stage, (j == 0 && stage > 0) ? 2 : 1, b, prefix);
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
    if (net->stem_bn)
        batchnorm_free(&net->bn1);
    if (net->use_maxpool)
        pool_free(&net->maxpool);
    if (net->has_bn_final)
        batchnorm_free(&net->bn_final);
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
    /* Goyal et al.: each block starts as the identity. Post-activation: the
     * last BN's gamma = 0. Pre-activation: the last conv's weights = 0 (as
     * timm's ResNetV2; a zero gamma before a ReLU would get no gradient). */
    for (int i = 0; i < net->nblocks; i++) {
        Block *b = &net->blocks[i];
        Tensor *t = b->preact ? &b->conv[b->nconv - 1].weights : &b->bn[b->nconv - 1].scale;
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

void net_forward(Net *net, int training)
{
    if (training && net->random) {
        CHECK(net->keys_set, "%s with drop-path/dropout: net_set_sample_keys must precede "
              "every training forward", net->cfg.arch);
        net->keys_set = 0;
    }
    conv_forward(&net->conv1);
    if (net->stem_bn)
        batchnorm_forward(&net->bn1, training);
    if (net->use_maxpool)
        pool_forward(&net->maxpool);
    for (int i = 0; i < net->nblocks; i++)
        block_forward(net, &net->blocks[i], training);
    if (net->has_bn_final)
        batchnorm_forward(&net->bn_final, training);
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
    if (net->has_bn_final)
        batchnorm_backward(&net->bn_final, &net->d_gap, &net->d_gap);
    grads_ready(net, net->head_first_param);
    for (int i = net->nblocks - 1; i >= 0; i--) {
        Block *b = &net->blocks[i];
        if (b->preact)
            block_backward_pre(b);
        else
            block_backward_post(b);
        grads_ready(net, b->first_param);
    }
    if (net->use_maxpool)
        pool_backward(&net->maxpool, &net->d_pool, &net->d_stem);
    if (net->stem_bn)
        batchnorm_backward(&net->bn1, &net->d_stem, &net->d_stem);
    conv_backward(&net->conv1, &net->d_stem, NULL);
    grads_ready(net, 0);
}

void net_enable_sync_bn(Net *net, const BnSync *sync)
{
    if (net->stem_bn)
        batchnorm_enable_sync(&net->bn1, sync);
    for (int b = 0; b < net->nblocks; b++) {
        Block *blk = &net->blocks[b];
        for (int i = 0; i < blk->nconv; i++)
            batchnorm_enable_sync(&blk->bn[i], sync);
        if (blk->shortcut == SHORTCUT_CONV && !blk->preact)
            batchnorm_enable_sync(&blk->down_bn, sync);
    }
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

/* ---- --list-archs ---- */

static void thousands(char *out, size_t len, size_t v)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%zu", v), j = 0;
    for (int i = 0; i < n && (size_t)j + 2 < len; i++) {
        if (i && (n - i) % 3 == 0)
            out[j++] = ',';
        out[j++] = digits[i];
    }
    out[j] = '\0';
}

static void arch_list_one(FILE *out, const ArchSpec *s, int crop, int num_classes, int small)
{
    int cifar = family_cifar(s->family);
    NetConfig cfg = {.num_classes = num_classes ? num_classes : cifar ? 10 : 1000,
                     .in_channels = 3,
                     .image_size = crop ? crop : cifar ? 32 : 224,
                     .batch = 1,
                     .small_stem = small};
    snprintf(cfg.arch, sizeof cfg.arch, "%s", s->name);
    Params p;
    params_init(&p);
    Net *net = net_create(&cfg, &p); /* shapes only: the buffers are never allocated */
    double macs = net_macs_per_image(net);
    char count[32];
    thousands(count, sizeof count, params_numel(&p));
    fprintf(out, "%-18s %-15s %5d %7d %13s %9.3f %9.3f\n", s->name, family_label(s->family),
            cfg.image_size, cfg.num_classes, count, macs / 1e9, 2 * macs / 1e9);
    fflush(out);
    net_free(net);
    params_free(&p);
}

void arch_list(FILE *out, int crop, int num_classes, int small_stem)
{
    fprintf(out, "# parameters, and the cost of one forward pass per image: multiply-accumulates "
                 "(GMACs, the number\n# torchvision's tables call GFLOPS) and floating-point "
                 "operations (GFLOPs = 2 x GMACs)\n");
    fprintf(out, "%-18s %-15s %5s %7s %13s %9s %9s\n", "arch", "family", "input", "classes",
            "parameters", "GMACs", "GFLOPs");
    for (size_t i = 0; i < NARCHS; i++)
        arch_list_one(out, &ARCHS[i], crop, num_classes, small_stem);
    for (size_t i = 0; i < sizeof LISTED_WRN / sizeof LISTED_WRN[0]; i++) {
        ArchSpec s;
        wrn_parse(LISTED_WRN[i], &s);
        arch_list_one(out, &s, crop, num_classes, small_stem);
    }
}
