/* blocks.c - the residual block families, each forward and backward a
 * straight sequence of layer calls in the order of its paper's figure. */
#include "blocks.h"

#include <stdio.h>
#include <string.h>

#include "error.h"

/* ---- owned tensors ---- */

static void owned_add(OwnedTensors *o, Tensor *t)
{
    CHECK(o->n < OWNED_MAX, "more than %d owned tensors", OWNED_MAX);
    o->t[o->n++] = t;
}

void owned_alloc(OwnedTensors *o, Tensor *t, const dnnl_memory_desc_t *md)
{
    tensor_alloc(t, md);
    owned_add(o, t);
}

void owned_view(OwnedTensors *o, Tensor *t, const dnnl_memory_desc_t *md, float *data)
{
    tensor_view(t, md, data);
    owned_add(o, t);
}

void owned_free(OwnedTensors *o)
{
    for (int i = 0; i < o->n; i++)
        tensor_free(o->t[i]);
    o->n = 0;
}

/* ---- helpers shared by the families ---- */

/* A convolution inside a block: "same" padding, input gradient wanted. */
static ConvSpec conv_spec(int oc, int kernel, int stride, int groups, ConvAlgo algo)
{
    return (ConvSpec){.oc = oc,
                      .kernel = kernel,
                      .stride = stride,
                      .pad = kernel / 2,
                      .groups = groups,
                      .need_diff_src = 1,
                      .algo = algo};
}

/* The block's first layer holds the lowest offset of its parameters. */
static void note_first_param(Block *b, Params *p, const char *layer)
{
    if (b->nconvs + b->nbns > 0)
        return;
    char name[PARAM_NAME_MAX];
    snprintf(name, sizeof name, "%s.weight", layer);
    b->first_param = p->info[params_find(p, name)].offset;
}

/* conv_init of the block's convolution prefix.name. */
static void own_conv(Block *b, ConvLayer *l, const Tensor *src, ConvSpec spec, Params *p,
                     const char *name)
{
    char full[64];
    snprintf(full, sizeof full, "%s.%s", b->prefix, name);
    conv_init(l, src, &spec, p, full);
    note_first_param(b, p, full);
    CHECK(b->nconvs < 4, "%s: a fifth convolution", b->prefix);
    b->convs[b->nconvs++] = l;
}

enum { NO_RELU, RELU };

/* batchnorm_init of the block's BN prefix.name; relu: ReLU fused into it. */
static void own_bn(Block *b, BatchNormLayer *l, const Tensor *src, int relu, Params *p,
                   const char *name)
{
    char full[64];
    snprintf(full, sizeof full, "%s.%s", b->prefix, name);
    batchnorm_init(l, src, relu, p, full);
    note_first_param(b, p, full);
    CHECK(b->nbns < 4, "%s: a fifth BatchNorm", b->prefix);
    b->bns[b->nbns++] = l;
}

static int changes_shape(const Block *b, const BlockSpec *s)
{
    return s->stride != 1 || (int)b->in->md.dims[1] != s->out;
}

/* The shortcut's output in the branch's layout; drop-path on the branch;
 * the add (relu: with the ReLU fused) and the sum of the two input
 * gradients. The branch output (a BN's or a conv's) feeds only the add,
 * whose backward needs neither input: the sum can overwrite it. */
static void join_init(Block *b, const Tensor *shortcut, const BlockSpec *s, int relu)
{
    b->short_out = shortcut;
    if (!dnn_md_equal(&shortcut->md, &b->branch->md)) {
        dnn_reorder_init(&b->short_fwd, &shortcut->md, &b->branch->md, 1);
        dnn_reorder_init(&b->short_bwd, &b->branch->md, &shortcut->md, 1);
        shortcut = &b->short_fwd.out;
    }
    if (s->drop_path > 0) {
        droppath_init(&b->drop_path, &b->branch->md, s->drop_path, s->index);
        b->has_droppath = 1;
    }
    add_init_in_place(&b->add, b->branch, shortcut, relu);
    add_sum_init(&b->sum, &b->in->md);
}

/* Post-activation: the branch ends in last_bn (no ReLU); the shortcut is
 * the identity, option A, or torchvision's downsample (1x1 conv + BN); the
 * add fuses the block's last ReLU. */
static void post_join_init(Block *b, const BlockSpec *s, Params *p, BatchNormLayer *last_bn)
{
    b->branch = &last_bn->dst;
    b->zero_init = &last_bn->scale;
    const Tensor *shortcut = b->in;
    b->shortcut = SHORTCUT_IDENTITY;
    if (changes_shape(b, s) && s->zero_pad_shortcut) {
        b->shortcut = SHORTCUT_ZERO_PAD;
        shortcut_a_init(&b->short_a, b->in, &b->branch->md, s->stride);
        shortcut = &b->short_a.dst;
    } else if (changes_shape(b, s)) {
        b->shortcut = SHORTCUT_PROJECTION;
        own_conv(b, &b->down_conv, b->in, conv_spec(s->out, 1, s->stride, 1, s->conv_algo), p,
                 "downsample.0");
        own_bn(b, &b->down_bn, &b->down_conv.dst, NO_RELU, p, "downsample.1");
        shortcut = &b->down_bn.dst;
    }
    join_init(b, shortcut, s, RELU);
}

/* Pre-activation: the branch ends in last_conv; where the shape changes
 * the shortcut projects the pre-activated input (bn1's output) with a 1x1
 * conv and no BN (He et al. 2016); the add has no ReLU. */
static void preact_join_init(Block *b, const BlockSpec *s, Params *p, ConvLayer *last_conv)
{
    b->branch = &last_conv->dst;
    /* a zero gamma before a ReLU would get no gradient (timm's ResNetV2
     * zeroes the last conv too) */
    b->zero_init = &last_conv->weights;
    const Tensor *shortcut = b->in;
    b->shortcut = SHORTCUT_IDENTITY;
    if (changes_shape(b, s)) {
        b->shortcut = SHORTCUT_PREACT_PROJECTION;
        own_conv(b, &b->down_conv, &b->bn1.dst, conv_spec(s->out, 1, s->stride, 1, s->conv_algo),
                 p, "downsample.0");
        shortcut = &b->down_conv.dst;
    }
    join_init(b, shortcut, s, NO_RELU);
}

/* Stochastic depth in training: this step's per-sample decisions scale the
 * branch output. */
static void drop_path_forward(Block *b, const ForwardPass *f)
{
    if (!b->has_droppath || !f->training)
        return;
    droppath_draw(&b->drop_path, f->seed, f->epoch, f->sample_keys);
    dnn_wait();
    droppath_apply(&b->drop_path, b->branch, b->branch);
}

/* The gradient that flows into the branch: d_out, or (drop-path) d_out
 * scaled by the forward's decisions into `scaled`. */
static const Tensor *drop_path_backward(Block *b, Tensor *scaled)
{
    if (!b->has_droppath)
        return &b->d_out;
    dnn_wait();
    droppath_apply(&b->drop_path, &b->d_out, scaled);
    return scaled;
}

/* The shortcut's output, in the branch's layout for the add. */
static void shortcut_forward(Block *b, int training)
{
    switch (b->shortcut) {
    case SHORTCUT_IDENTITY:
        break;
    case SHORTCUT_PROJECTION:
        conv_forward(&b->down_conv);
        batchnorm_forward(&b->down_bn, training);
        break;
    case SHORTCUT_PREACT_PROJECTION:
        conv_forward(&b->down_conv);
        break;
    case SHORTCUT_ZERO_PAD:
        shortcut_a_forward(&b->short_a);
        break;
    }
    if (b->short_fwd.prim)
        dnn_reorder_run_into(&b->short_fwd, b->short_out, &b->short_fwd.out);
}

/* The gradient of the shortcut's output (d_out, in its own layout). */
static Tensor *shortcut_grad(Block *b)
{
    if (!b->short_bwd.prim)
        return &b->d_out;
    dnn_reorder_run_into(&b->short_bwd, &b->d_out, &b->short_bwd.out);
    return &b->short_bwd.out;
}

/* Post-activation: d_in = d_main (through the branch) + the shortcut's
 * input gradient. */
static void post_shortcut_backward(Block *b)
{
    Tensor *g = shortcut_grad(b);
    switch (b->shortcut) {
    case SHORTCUT_IDENTITY:
        add_sum_run(&b->sum, &b->d_main, g, &b->d_in);
        return;
    case SHORTCUT_PROJECTION:
        batchnorm_backward(&b->down_bn, g, g);
        conv_backward(&b->down_conv, g, &b->d_short);
        break;
    case SHORTCUT_ZERO_PAD:
        shortcut_a_backward(&b->short_a, g, &b->d_short);
        break;
    case SHORTCUT_PREACT_PROJECTION:
        CHECK(0, "%s: a pre-activation shortcut in a post-activation block", b->prefix);
    }
    add_sum_run(&b->sum, &b->d_main, &b->d_short, &b->d_in);
}

/* Pre-activation, with the branch's gradient at bn1's output in d_bn1:
 * bn1 (and its ReLU) and the shortcut, into d_in. A projection reads bn1's
 * output, so its gradient joins before bn1's backward; the identity reads
 * the block input, so its gradient joins after. */
static void preact_input_backward(Block *b)
{
    Tensor *g = shortcut_grad(b);
    if (b->shortcut == SHORTCUT_PREACT_PROJECTION) {
        conv_backward(&b->down_conv, g, &b->d_short);
        add_sum_run(&b->sum, &b->d_bn1, &b->d_short, &b->d_bn1);
        batchnorm_backward(&b->bn1, &b->d_bn1, &b->d_in);
    } else {
        batchnorm_backward(&b->bn1, &b->d_bn1, &b->d_bn1);
        add_sum_run(&b->sum, &b->d_bn1, g, &b->d_in);
    }
}

/* ---- basic: conv3x3-BN-ReLU, conv3x3-BN, + shortcut, ReLU ---- */

static void basic_init(Block *b, const BlockSpec *s, Params *p)
{
    own_conv(b, &b->conv1, b->in, conv_spec(s->out, 3, s->stride, 1, s->conv_algo), p, "conv1");
    own_bn(b, &b->bn1, &b->conv1.dst, RELU, p, "bn1");
    own_conv(b, &b->conv2, &b->bn1.dst, conv_spec(s->out, 3, 1, 1, s->conv_algo), p, "conv2");
    own_bn(b, &b->bn2, &b->conv2.dst, NO_RELU, p, "bn2");
    post_join_init(b, s, p, &b->bn2);
}

/* Drop-path scales d_out into A; the BNs then run in place. */
static void basic_plan(Block *b, float *A, float *B)
{
    owned_view(&b->views, &b->d_bn2, &b->bn2.dst.md, A);
    owned_view(&b->views, &b->d_bn1, &b->bn1.dst.md, B);
    owned_view(&b->views, &b->d_main, &b->in->md, A);
    owned_view(&b->views, &b->d_short, &b->in->md, B);
}

static void basic_forward(Block *b, const ForwardPass *f)
{
    conv_forward(&b->conv1);
    batchnorm_forward(&b->bn1, f->training); /* ReLU fused into the BN */
    conv_forward(&b->conv2);
    batchnorm_forward(&b->bn2, f->training);
    drop_path_forward(b, f);
    shortcut_forward(b, f->training);
    add_forward(&b->add); /* ReLU fused into the add */
}

static void basic_backward(Block *b)
{
    add_backward(&b->add, &b->d_out, &b->d_out); /* the add's ReLU, from its output */
    const Tensor *d = drop_path_backward(b, &b->d_bn2);
    batchnorm_backward(&b->bn2, d, &b->d_bn2);
    conv_backward(&b->conv2, &b->d_bn2, &b->d_bn1);
    batchnorm_backward(&b->bn1, &b->d_bn1, &b->d_bn1); /* and its ReLU, from BN's workspace */
    conv_backward(&b->conv1, &b->d_bn1, &b->d_main);
    post_shortcut_backward(b);
}

/* ---- bottleneck: conv1x1-BN-ReLU, conv3x3-BN-ReLU, conv1x1-BN, + shortcut, ReLU ---- */

/* torchvision v1.5: the stride is on the 3x3, which carries the groups (ResNeXt). */
static void bottleneck_init(Block *b, const BlockSpec *s, Params *p)
{
    own_conv(b, &b->conv1, b->in, conv_spec(s->width, 1, 1, 1, s->conv_algo), p, "conv1");
    own_bn(b, &b->bn1, &b->conv1.dst, RELU, p, "bn1");
    own_conv(b, &b->conv2, &b->bn1.dst,
             conv_spec(s->width, 3, s->stride, s->groups, s->conv_algo), p, "conv2");
    own_bn(b, &b->bn2, &b->conv2.dst, RELU, p, "bn2");
    own_conv(b, &b->conv3, &b->bn2.dst, conv_spec(s->out, 1, 1, 1, s->conv_algo), p, "conv3");
    own_bn(b, &b->bn3, &b->conv3.dst, NO_RELU, p, "bn3");
    post_join_init(b, s, p, &b->bn3);
}

static void bottleneck_plan(Block *b, float *A, float *B)
{
    owned_view(&b->views, &b->d_bn3, &b->bn3.dst.md, A);
    owned_view(&b->views, &b->d_bn2, &b->bn2.dst.md, B);
    owned_view(&b->views, &b->d_bn1, &b->bn1.dst.md, A);
    owned_view(&b->views, &b->d_main, &b->in->md, B);
    owned_view(&b->views, &b->d_short, &b->in->md, A);
}

static void bottleneck_forward(Block *b, const ForwardPass *f)
{
    conv_forward(&b->conv1);
    batchnorm_forward(&b->bn1, f->training); /* ReLU fused into the BN */
    conv_forward(&b->conv2);
    batchnorm_forward(&b->bn2, f->training); /* ReLU fused into the BN */
    conv_forward(&b->conv3);
    batchnorm_forward(&b->bn3, f->training);
    drop_path_forward(b, f);
    shortcut_forward(b, f->training);
    add_forward(&b->add); /* ReLU fused into the add */
}

static void bottleneck_backward(Block *b)
{
    add_backward(&b->add, &b->d_out, &b->d_out); /* the add's ReLU, from its output */
    const Tensor *d = drop_path_backward(b, &b->d_bn3);
    batchnorm_backward(&b->bn3, d, &b->d_bn3);
    conv_backward(&b->conv3, &b->d_bn3, &b->d_bn2);
    batchnorm_backward(&b->bn2, &b->d_bn2, &b->d_bn2); /* and its ReLU, from BN's workspace */
    conv_backward(&b->conv2, &b->d_bn2, &b->d_bn1);
    batchnorm_backward(&b->bn1, &b->d_bn1, &b->d_bn1); /* and its ReLU, from BN's workspace */
    conv_backward(&b->conv1, &b->d_bn1, &b->d_main);
    post_shortcut_backward(b);
}

/* ---- preact_basic: BN-ReLU-conv3x3, BN-ReLU-conv3x3, + shortcut ---- */

static void preact_basic_init(Block *b, const BlockSpec *s, Params *p)
{
    own_bn(b, &b->bn1, b->in, RELU, p, "bn1");
    own_conv(b, &b->conv1, &b->bn1.dst, conv_spec(s->out, 3, s->stride, 1, s->conv_algo), p,
             "conv1");
    own_bn(b, &b->bn2, &b->conv1.dst, RELU, p, "bn2");
    own_conv(b, &b->conv2, &b->bn2.dst, conv_spec(s->out, 3, 1, 1, s->conv_algo), p, "conv2");
    preact_join_init(b, s, p, &b->conv2);
}

/* The drop-path scaled output gradient sits in B until conv2 has read it;
 * d_bn1 is also the gradient at the block input (bn1 keeps its layout). */
static void preact_basic_plan(Block *b, float *A, float *B)
{
    owned_view(&b->views, &b->d_scaled, &b->conv2.dst.md, B);
    owned_view(&b->views, &b->d_bn2, &b->conv2.src->md, A);
    owned_view(&b->views, &b->d_bn1, &b->conv1.src->md, B);
    owned_view(&b->views, &b->d_short, &b->in->md, A);
}

static void preact_basic_forward(Block *b, const ForwardPass *f)
{
    batchnorm_forward(&b->bn1, f->training); /* ReLU fused into the BN */
    conv_forward(&b->conv1);
    batchnorm_forward(&b->bn2, f->training); /* ReLU fused into the BN */
    conv_forward(&b->conv2);
    drop_path_forward(b, f);
    shortcut_forward(b, f->training);
    add_forward(&b->add);
}

static void preact_basic_backward(Block *b)
{
    const Tensor *d = drop_path_backward(b, &b->d_scaled); /* the add has no ReLU */
    conv_backward(&b->conv2, d, &b->d_bn2);
    batchnorm_backward(&b->bn2, &b->d_bn2, &b->d_bn2); /* and its ReLU, from BN's workspace */
    conv_backward(&b->conv1, &b->d_bn2, &b->d_bn1);
    preact_input_backward(b);
}

/* ---- preact_bottleneck: BN-ReLU-conv1x1, BN-ReLU-conv3x3, BN-ReLU-conv1x1, + shortcut ---- */

static void preact_bottleneck_init(Block *b, const BlockSpec *s, Params *p)
{
    own_bn(b, &b->bn1, b->in, RELU, p, "bn1");
    own_conv(b, &b->conv1, &b->bn1.dst, conv_spec(s->width, 1, 1, 1, s->conv_algo), p, "conv1");
    own_bn(b, &b->bn2, &b->conv1.dst, RELU, p, "bn2");
    own_conv(b, &b->conv2, &b->bn2.dst,
             conv_spec(s->width, 3, s->stride, s->groups, s->conv_algo), p, "conv2");
    own_bn(b, &b->bn3, &b->conv2.dst, RELU, p, "bn3");
    own_conv(b, &b->conv3, &b->bn3.dst, conv_spec(s->out, 1, 1, 1, s->conv_algo), p, "conv3");
    preact_join_init(b, s, p, &b->conv3);
}

static void preact_bottleneck_plan(Block *b, float *A, float *B)
{
    owned_view(&b->views, &b->d_scaled, &b->conv3.dst.md, B);
    owned_view(&b->views, &b->d_bn3, &b->conv3.src->md, A);
    owned_view(&b->views, &b->d_bn2, &b->conv2.src->md, B);
    owned_view(&b->views, &b->d_bn1, &b->conv1.src->md, A);
    owned_view(&b->views, &b->d_short, &b->in->md, B);
}

static void preact_bottleneck_forward(Block *b, const ForwardPass *f)
{
    batchnorm_forward(&b->bn1, f->training); /* ReLU fused into the BN */
    conv_forward(&b->conv1);
    batchnorm_forward(&b->bn2, f->training); /* ReLU fused into the BN */
    conv_forward(&b->conv2);
    batchnorm_forward(&b->bn3, f->training); /* ReLU fused into the BN */
    conv_forward(&b->conv3);
    drop_path_forward(b, f);
    shortcut_forward(b, f->training);
    add_forward(&b->add);
}

static void preact_bottleneck_backward(Block *b)
{
    const Tensor *d = drop_path_backward(b, &b->d_scaled); /* the add has no ReLU */
    conv_backward(&b->conv3, d, &b->d_bn3);
    batchnorm_backward(&b->bn3, &b->d_bn3, &b->d_bn3); /* and its ReLU, from BN's workspace */
    conv_backward(&b->conv2, &b->d_bn3, &b->d_bn2);
    batchnorm_backward(&b->bn2, &b->d_bn2, &b->d_bn2); /* and its ReLU, from BN's workspace */
    conv_backward(&b->conv1, &b->d_bn2, &b->d_bn1);
    preact_input_backward(b);
}

/* ---- wide_dropout: BN-ReLU-conv3x3, BN-ReLU-dropout-conv3x3, + shortcut ---- */

static void wide_dropout_init(Block *b, const BlockSpec *s, Params *p)
{
    own_bn(b, &b->bn1, b->in, RELU, p, "bn1");
    own_conv(b, &b->conv1, &b->bn1.dst, conv_spec(s->out, 3, s->stride, 1, s->conv_algo), p,
             "conv1");
    own_bn(b, &b->bn2, &b->conv1.dst, RELU, p, "bn2");
    dropout_init(&b->dropout, &b->bn2.dst, s->dropout, s->index);
    own_conv(b, &b->conv2, &b->dropout.dst, conv_spec(s->out, 3, 1, 1, s->conv_algo), p,
             "conv2");
    preact_join_init(b, s, p, &b->conv2);
}

static void wide_dropout_forward(Block *b, const ForwardPass *f)
{
    batchnorm_forward(&b->bn1, f->training); /* ReLU fused into the BN */
    conv_forward(&b->conv1);
    batchnorm_forward(&b->bn2, f->training); /* ReLU fused into the BN */
    dropout_forward(&b->dropout, f->training, f->seed, f->epoch, f->sample_keys);
    conv_forward(&b->conv2);
    drop_path_forward(b, f);
    shortcut_forward(b, f->training);
    add_forward(&b->add);
}

static void wide_dropout_backward(Block *b)
{
    const Tensor *d = drop_path_backward(b, &b->d_scaled); /* the add has no ReLU */
    conv_backward(&b->conv2, d, &b->d_bn2);
    dropout_backward(&b->dropout, &b->d_bn2, &b->d_bn2);
    batchnorm_backward(&b->bn2, &b->d_bn2, &b->d_bn2); /* and its ReLU, from BN's workspace */
    conv_backward(&b->conv1, &b->d_bn2, &b->d_bn1);
    preact_input_backward(b);
}

static const BlockFamily FAMILIES[] = {
    [BLOCK_BASIC] = {.name = "basic",
                     .init = basic_init,
                     .plan = basic_plan,
                     .forward = basic_forward,
                     .backward = basic_backward},
    [BLOCK_BOTTLENECK] = {.name = "bottleneck",
                          .init = bottleneck_init,
                          .plan = bottleneck_plan,
                          .forward = bottleneck_forward,
                          .backward = bottleneck_backward},
    [BLOCK_PREACT_BASIC] = {.name = "preact_basic",
                            .init = preact_basic_init,
                            .plan = preact_basic_plan,
                            .forward = preact_basic_forward,
                            .backward = preact_basic_backward},
    [BLOCK_PREACT_BOTTLENECK] = {.name = "preact_bottleneck",
                                 .init = preact_bottleneck_init,
                                 .plan = preact_bottleneck_plan,
                                 .forward = preact_bottleneck_forward,
                                 .backward = preact_bottleneck_backward},
    /* its gradient views are preact_basic's: conv2's input is dropout's
     * output, in bn2's layout */
    [BLOCK_WIDE_DROPOUT] = {.name = "wide_dropout",
                            .init = wide_dropout_init,
                            .plan = preact_basic_plan,
                            .forward = wide_dropout_forward,
                            .backward = wide_dropout_backward},
};

/* ---- the block ---- */

void block_init(Block *b, const Tensor *in, const BlockSpec *s, Params *p)
{
    memset(b, 0, sizeof *b);
    CHECK((size_t)s->kind < sizeof FAMILIES / sizeof FAMILIES[0], "block kind %d", (int)s->kind);
    b->family = &FAMILIES[s->kind];
    b->in = in;
    snprintf(b->prefix, sizeof b->prefix, "%s", s->prefix);
    b->family->init(b, s, p);
}

size_t block_scratch_bytes(const Block *b)
{
    size_t bytes = dnn_md_bytes(&b->in->md);
    for (int i = 0; i < b->nconvs; i++)
        if (dnn_md_bytes(&b->convs[i]->dst.md) > bytes)
            bytes = dnn_md_bytes(&b->convs[i]->dst.md);
    for (int i = 0; i < b->nbns; i++)
        if (dnn_md_bytes(&b->bns[i]->dst.md) > bytes)
            bytes = dnn_md_bytes(&b->bns[i]->dst.md);
    return bytes;
}

void block_plan_diffs(Block *b, float *X, float *A, float *B)
{
    owned_view(&b->views, &b->d_out, &b->add.dst.md, X);
    owned_view(&b->views, &b->d_in, &b->in->md, X);
    b->family->plan(b, A, B);
}

void block_free(Block *b)
{
    for (int i = 0; i < b->nconvs; i++)
        conv_free(b->convs[i]);
    for (int i = 0; i < b->nbns; i++)
        batchnorm_free(b->bns[i]);
    dropout_free(&b->dropout);
    droppath_free(&b->drop_path);
    if (b->shortcut == SHORTCUT_ZERO_PAD)
        shortcut_a_free(&b->short_a);
    dnn_reorder_free(&b->short_fwd);
    dnn_reorder_free(&b->short_bwd);
    add_free(&b->add);
    add_sum_free(&b->sum);
    owned_free(&b->views);
}
