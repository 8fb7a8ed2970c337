/*
 * test_variants.c - the residual network variants: ResNeXt, torchvision's
 * wide ResNets, pre-activation ResNets, wrn-D-K, stochastic depth and
 * dropout.
 *
 *  - parameter counts against the papers' tables (to their 0.1M precision;
 *    torchvision's exact counts are in test_resnet.c); state_dict names and shapes;
 *  - small instances of each block kind (pre-activation basic and
 *    bottleneck, the wrn block with dropout off and on, the ImageNet
 *    pre-activation stem, drop-path on post- and pre-activation blocks, a
 *    grouped bottleneck): the training forward against a naive float64
 *    network built from the same parameters (tests/ref), and gradients
 *    against central finite differences of that network's loss;
 *  - stochastic depth: per-block drop rates P l / L over many samples,
 *    decisions independent of how the batch is split over ranks, eval mode
 *    deterministic and unscaled;
 *  - dropout: rate and scale, layer forward/backward on a blocked layout,
 *    eval pass-through, masks keyed by epoch.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <mpi.h>

#include "../ref/ref_kernels.h"
#include "common/testutil.h"
#include "dropout.h"
#include "droppath.h"
#include "error.h"
#include "params.h"
#include "resnet.h"
#include "rng.h"

#define SEED 20160516ULL

static Net *build(Params *p, const NetConfig *cfg)
{
    params_init(p);
    Net *net = net_create(cfg, p);
    params_allocate(p);
    return net;
}

static NetConfig config(const char *arch, int classes, int size, int batch)
{
    NetConfig c = {.num_classes = classes, .in_channels = 3, .image_size = size, .batch = batch};
    snprintf(c.arch, sizeof c.arch, "%s", arch);
    return c;
}

/* The registry and network of an architecture at batch 1 without buffers:
 * enough for names, shapes and counts, with no memory for the weights of
 * the largest. */
static Net *declare_net(Params *p, const char *arch, int classes, int size)
{
    NetConfig cfg = config(arch, classes, size, 1);
    params_init(p);
    return net_create(&cfg, p);
}

static void free_net(Net *net, Params *p)
{
    net_free(net);
    params_free(p);
}

/* ---- sizes and names ---- */

typedef struct {
    const char *arch;
    int classes, size;
    double millions;  /* the paper's table, 0.1M precision */
    int weights_only; /* the table counts conv and fc weights, not BN */
} PaperRow;

static size_t count_weights(const Params *p)
{
    size_t n = 0;
    for (int i = 0; i < p->count; i++)
        if (p->info[i].kind != PARAM_BN_WEIGHT && p->info[i].kind != PARAM_BN_BIAS)
            n += p->info[i].numel;
    return n;
}

static void test_paper_counts(void **state)
{
    (void)state;
    /* Zagoruyko and Komodakis 2016 (CIFAR-10); He et al. 2016 (Identity
     * Mappings, Table 2; its 10.2M for ResNet-1001 counts weights only: with
     * BN parameters it is 10.33M); He et al. 2015 CIFAR; Xie et al. 2016 /
     * torchvision for ResNeXt and the wide ResNet. */
    static const PaperRow rows[] = {
        {.arch = "wrn-28-10", .classes = 10, .size = 32,
         .millions = 36.5, .weights_only = 0},
        {.arch = "wrn-40-4", .classes = 10, .size = 32,
         .millions = 8.9, .weights_only = 0},
        {.arch = "wrn-16-8", .classes = 10, .size = 32,
         .millions = 11.0, .weights_only = 0},
        {.arch = "preact-resnet164", .classes = 10, .size = 32,
         .millions = 1.7, .weights_only = 0},
        {.arch = "preact-resnet1001", .classes = 10, .size = 32,
         .millions = 10.2, .weights_only = 1},
        {.arch = "preact-resnet110", .classes = 10, .size = 32,
         .millions = 1.7, .weights_only = 0},
        {.arch = "resnet110", .classes = 10, .size = 32,
         .millions = 1.7, .weights_only = 0},
        {.arch = "resnet1202", .classes = 10, .size = 32,
         .millions = 19.4, .weights_only = 0},
        {.arch = "resnext50_32x4d", .classes = 1000, .size = 224,
         .millions = 25.0, .weights_only = 0},
        {.arch = "wide_resnet50_2", .classes = 1000, .size = 224,
         .millions = 68.9, .weights_only = 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        Params p;
        Net *net = declare_net(&p, rows[i].arch, rows[i].classes, rows[i].size);
        size_t all = params_numel(&p), weights = count_weights(&p);
        size_t n = rows[i].weights_only ? weights : all;
        print_message("%-18s %11zu parameters (%zu without BN)  %.1fM in the paper\n",
                      rows[i].arch, all, weights, rows[i].millions);
        assert_true(fabs(round((double)n / 1e5) / 10.0 - rows[i].millions) < 1e-9);
        free_net(net, &p);
    }
}

static void expect_dims(const Params *p, const char *name, int ndims, int64_t d0, int64_t d1,
                        int64_t d2, int64_t d3)
{
    int i = params_find(p, name);
    if (i < 0)
        fail_msg("no tensor %s", name);
    const ParamInfo *info = &p->info[i];
    int64_t want[4] = {d0, d1, d2, d3};
    assert_int_equal(info->ndims, ndims);
    for (int d = 0; d < ndims; d++)
        if (info->dims[d] != want[d])
            fail_msg("%s: dim %d is %lld, expected %lld", name, d, (long long)info->dims[d],
                     (long long)want[d]);
}

static void test_names(void **state)
{
    (void)state;
    Params p;
    Net *net = declare_net(&p, "resnext50_32x4d", 10, 32);
    expect_dims(&p, "layer1.0.conv2.weight", 4, 128, 4, 3, 3);
    expect_dims(&p, "layer4.2.conv2.weight", 4, 1024, 32, 3, 3);
    expect_dims(&p, "layer2.0.downsample.1.weight", 1, 512, 0, 0, 0);
    free_net(net, &p);

    net = declare_net(&p, "wide_resnet50_2", 10, 32);
    expect_dims(&p, "layer1.0.conv2.weight", 4, 128, 128, 3, 3);
    expect_dims(&p, "layer1.0.conv3.weight", 4, 256, 128, 1, 1);
    free_net(net, &p);

    /* pre-activation, ImageNet: bn1 of a block normalises its input; the
     * projection has no BN; bn_final before pooling */
    net = declare_net(&p, "preact-resnet50", 10, 32);
    expect_dims(&p, "conv1.weight", 4, 64, 3, 7, 7);
    expect_dims(&p, "bn1.weight", 1, 64, 0, 0, 0);
    expect_dims(&p, "layer1.0.bn1.weight", 1, 64, 0, 0, 0);
    expect_dims(&p, "layer1.1.bn1.weight", 1, 256, 0, 0, 0);
    expect_dims(&p, "layer1.0.bn3.weight", 1, 64, 0, 0, 0);
    expect_dims(&p, "layer1.0.conv3.weight", 4, 256, 64, 1, 1);
    expect_dims(&p, "layer3.0.downsample.0.weight", 4, 1024, 512, 1, 1);
    expect_dims(&p, "bn_final.weight", 1, 2048, 0, 0, 0);
    assert_true(params_find(&p, "layer1.0.downsample.1.weight") < 0);
    assert_true(params_find(&p, "layer1.1.downsample.0.weight") < 0);
    assert_true(params_bn_state_find(&p, "bn_final") >= 0);
    free_net(net, &p);

    /* pre-activation, CIFAR: the stem is one conv, no BN */
    net = declare_net(&p, "preact-resnet164", 10, 32);
    assert_true(params_find(&p, "bn1.weight") < 0);
    expect_dims(&p, "layer1.0.bn1.weight", 1, 16, 0, 0, 0);
    expect_dims(&p, "layer1.0.downsample.0.weight", 4, 64, 16, 1, 1);
    expect_dims(&p, "layer3.17.conv3.weight", 4, 256, 64, 1, 1);
    expect_dims(&p, "bn_final.weight", 1, 256, 0, 0, 0);
    free_net(net, &p);

    net = declare_net(&p, "wrn-28-10", 10, 32);
    assert_int_equal(net_block_count(net), 12);
    expect_dims(&p, "conv1.weight", 4, 16, 3, 3, 3);
    expect_dims(&p, "layer1.0.conv1.weight", 4, 160, 16, 3, 3);
    expect_dims(&p, "layer1.0.downsample.0.weight", 4, 160, 16, 1, 1);
    expect_dims(&p, "layer2.0.downsample.0.weight", 4, 320, 160, 1, 1);
    expect_dims(&p, "layer3.3.conv2.weight", 4, 640, 640, 3, 3);
    expect_dims(&p, "bn_final.weight", 1, 640, 0, 0, 0);
    expect_dims(&p, "fc.weight", 2, 10, 640, 0, 0);
    assert_true(params_find(&p, "layer1.1.downsample.0.weight") < 0);
    assert_true(params_find(&p, "layer1.0.bn3.weight") < 0);
    free_net(net, &p);
}

static void test_arch_names(void **state)
{
    (void)state;
    const char *good[] = {"wrn-28-10", "wrn-10-1", "wrn-40-4", "resnext101_64x4d",
                          "preact-resnet1001", "wide_resnet101_2"};
    const char *bad[] = {"wrn-27-10", "wrn-28-0", "wrn-028-10", "wrn-28-10x", "wrn-4-1",
                         "wrn-28", "preact-resnet20", "resnext50"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!arch_exists(good[i]))
            fail_msg("%s should be an architecture", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (arch_exists(bad[i]))
            fail_msg("%s should not be an architecture", bad[i]);
    assert_true(arch_is_wrn("wrn-16-8"));
    assert_false(arch_is_wrn("preact-resnet110"));
    char names[1024];
    arch_names(names, sizeof names);
    assert_non_null(strstr(names, "resnext50_32x4d"));
    assert_non_null(strstr(names, "preact-resnet1001"));
    assert_non_null(strstr(names, "wrn-D-K"));
}

static void test_zero_init_preact(void **state)
{
    (void)state;
    NetConfig cfg = config("preact-resnet164", 10, 8, 2);
    cfg.zero_init_residual = 1;
    cfg.stage_blocks[0] = cfg.stage_blocks[1] = cfg.stage_blocks[2] = 1;
    Params p;
    Net *net = build(&p, &cfg);
    net_init_weights(net, 3);
    int i = params_find(&p, "layer2.0.conv3.weight");
    float *w = xmalloc(p.info[i].numel * sizeof *w);
    params_get_plain(&p, i, BUF_VALUE, w);
    for (size_t j = 0; j < p.info[i].numel; j++)
        assert_true(w[j] == 0.0f);
    params_get_plain(&p, params_find(&p, "layer2.0.bn3.weight"), BUF_VALUE, w);
    assert_true(w[0] == 1.0f);
    free(w);
    free_net(net, &p);
}

/* ---- a float64 reference network from the registry ---- */

/* An activation (N, C, H, W). */
typedef struct {
    double *x;
    int c, h, w;
} Act;

typedef struct {
    const Params *p;
    double **w;         /* per registry index, plain PyTorch layout */
    int n, c, size, classes, imagenet_stem;
    const float *input; /* (N, C, S, S) */
    const int32_t *labels;
    /* per block: drop-path scales (NULL: none) and dropout masks (NULL: none) */
    const float **scale;
    const float **mask;
    double *logits;     /* (N, K) of the last forward */
    Act *cache;         /* inputs of each block and of the head */
} Ref;

static const double *ref_param(const Ref *r, int64_t *dims, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static const double *ref_param(const Ref *r, int64_t *dims, const char *fmt, ...)
{
    char name[PARAM_NAME_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    int i = params_find(r->p, name);
    if (i < 0)
        return NULL;
    if (dims)
        memcpy(dims, r->p->info[i].dims, sizeof r->p->info[i].dims);
    return r->w[i];
}

static Act act_new(int n, int c, int h, int w)
{
    Act a = {.x = xcalloc((size_t)n * c * h * w, sizeof(double)), .c = c, .h = h, .w = w};
    return a;
}

static size_t act_size(const Ref *r, const Act *a)
{
    return (size_t)r->n * a->c * a->h * a->w;
}

/* ref_conv_forward through im2col and a row-major product: the same sums
 * in another order, and fast on the 1x1 maps of small inputs, where the
 * finite differences below call it thousands of times. */
static void conv_im2col(const RefConv *s, const double *x, const double *w, double *y)
{
    int icg = s->ic / s->groups, ocg = s->oc / s->groups, k = s->k;
    size_t np = (size_t)s->oh * s->ow, rows = (size_t)icg * k * k;
    double *col = xmalloc(rows * np * sizeof *col);
    for (int n = 0; n < s->n; n++)
        for (int g = 0; g < s->groups; g++) {
            for (int c = 0; c < icg; c++) {
                const double *xp = x + ((size_t)n * s->ic + g * icg + c) * s->ih * s->iw;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        double *cr = col + ((size_t)(c * k + ky) * k + kx) * np;
                        for (int oy = 0; oy < s->oh; oy++)
                            for (int ox = 0; ox < s->ow; ox++) {
                                int iy = oy * s->stride - s->pad + ky;
                                int ix = ox * s->stride - s->pad + kx;
                                int in = iy >= 0 && iy < s->ih && ix >= 0 && ix < s->iw;
                                cr[oy * s->ow + ox] = in ? xp[(size_t)iy * s->iw + ix] : 0.0;
                            }
                    }
            }
            for (int o = 0; o < ocg; o++) {
                int oc = g * ocg + o;
                double *yr = y + ((size_t)n * s->oc + oc) * np;
                const double *wr = w + (size_t)oc * rows;
                memset(yr, 0, np * sizeof *yr);
                for (size_t rr = 0; rr < rows; rr++) {
                    const double a = wr[rr], *cr = col + rr * np;
                    for (size_t q = 0; q < np; q++)
                        yr[q] += a * cr[q];
                }
            }
        }
    free(col);
}

static Act ref_conv(const Ref *r, const Act *in, const char *name, int stride)
{
    int64_t d[4];
    const double *w = ref_param(r, d, "%s.weight", name);
    if (!w)
        fail_msg("reference: no %s.weight", name);
    int k = (int)d[2], groups = in->c / (int)d[1];
    RefConv s = ref_conv_shape(r->n, in->c, in->h, in->w, (int)d[0], k, stride, k / 2, groups);
    Act out = act_new(r->n, s.oc, s.oh, s.ow);
    conv_im2col(&s, in->x, w, out.x);
    return out;
}

static Act ref_bn(const Ref *r, const Act *in, const char *name, int relu)
{
    const double *g = ref_param(r, NULL, "%s.weight", name);
    const double *b = ref_param(r, NULL, "%s.bias", name);
    if (!g || !b)
        fail_msg("reference: no BN %s", name);
    Act out = act_new(r->n, in->c, in->h, in->w);
    double *mean = xmalloc((size_t)in->c * sizeof *mean), *var = xmalloc((size_t)in->c * sizeof *var);
    ref_bn_forward_train(in->x, g, b, r->n, in->c, in->h * in->w, BN_EPS, relu, out.x, mean, var);
    free(mean);
    free(var);
    return out;
}

static void act_replace(Act *a, Act b)
{
    free(a->x);
    *a = b;
}

static void ref_scale_samples(const Ref *r, Act *a, const float *scale)
{
    size_t m = (size_t)a->c * a->h * a->w;
    for (int i = 0; i < r->n; i++)
        for (size_t j = 0; j < m; j++)
            a->x[i * m + j] *= scale[i];
}

/* One block; returns its output, frees nothing of x. */
static Act ref_block(const Ref *r, const Act *x, int stage, int j, int index)
{
    char pre[32], name[48];
    snprintf(pre, sizeof pre, "layer%d.%d", stage, j);
    int stride = (j == 0 && stage > 1) ? 2 : 1;
    int nconv = ref_param(r, NULL, "%s.conv3.weight", pre) ? 3 : 2;
    /* pre-activation networks end with bn_final */
    int preact = ref_param(r, NULL, "bn_final.weight") != NULL;
    int conv_stride[3] = {nconv == 3 ? 1 : stride, nconv == 3 ? stride : 1, 1};
    Act h = {0}, pre_act = {0};
    if (!preact) {
        h = act_new(r->n, x->c, x->h, x->w);
        memcpy(h.x, x->x, act_size(r, x) * sizeof(double));
        for (int i = 0; i < nconv; i++) {
            snprintf(name, sizeof name, "%s.conv%d", pre, i + 1);
            act_replace(&h, ref_conv(r, &h, name, conv_stride[i]));
            snprintf(name, sizeof name, "%s.bn%d", pre, i + 1);
            act_replace(&h, ref_bn(r, &h, name, i != nconv - 1));
        }
    } else {
        snprintf(name, sizeof name, "%s.bn1", pre);
        pre_act = ref_bn(r, x, name, 1);
        h = act_new(r->n, x->c, x->h, x->w);
        memcpy(h.x, pre_act.x, act_size(r, x) * sizeof(double));
        for (int i = 0; i < nconv; i++) {
            if (i > 0) {
                snprintf(name, sizeof name, "%s.bn%d", pre, i + 1);
                act_replace(&h, ref_bn(r, &h, name, 1));
                if (i == 1 && r->mask && r->mask[index]) {
                    size_t m = act_size(r, &h);
                    for (size_t e = 0; e < m; e++)
                        h.x[e] *= r->mask[index][e];
                }
            }
            snprintf(name, sizeof name, "%s.conv%d", pre, i + 1);
            act_replace(&h, ref_conv(r, &h, name, conv_stride[i]));
        }
    }
    if (r->scale && r->scale[index])
        ref_scale_samples(r, &h, r->scale[index]);

    Act s;
    snprintf(name, sizeof name, "%s.downsample.0", pre);
    if (ref_param(r, NULL, "%s.weight", name)) {
        s = ref_conv(r, preact ? &pre_act : x, name, stride);
        snprintf(name, sizeof name, "%s.downsample.1", pre);
        if (ref_param(r, NULL, "%s.weight", name))
            act_replace(&s, ref_bn(r, &s, name, 0));
    } else if (h.c != x->c || stride != 1) {
        s = act_new(r->n, h.c, h.h, h.w);
        ref_shortcut_a_forward(x->x, r->n, x->c, x->h, x->w, h.c, h.h, h.w, stride,
                               (h.c - x->c) / 2, s.x);
    } else {
        s = act_new(r->n, x->c, x->h, x->w);
        memcpy(s.x, x->x, act_size(r, x) * sizeof(double));
    }
    Act out = act_new(r->n, h.c, h.h, h.w);
    ref_add_forward(h.x, s.x, act_size(r, &h), !preact, out.x);
    free(h.x);
    free(s.x);
    free(pre_act.x);
    return out;
}

/* Mean cross-entropy of the reference network in training mode, from
 * block `from` on (-1: from the input; nblocks: the head) with the block
 * inputs of the last recording run; record: keep this run's block inputs. */
static double ref_forward(Ref *r, int from, int record)
{
    Act x;
    if (from < 0) {
        x = act_new(r->n, r->c, r->size, r->size);
        for (size_t i = 0; i < act_size(r, &x); i++)
            x.x[i] = r->input[i];
        int64_t d[4];
        ref_param(r, d, "conv1.weight");
        act_replace(&x, ref_conv(r, &x, "conv1", d[2] == 7 ? 2 : 1));
        if (ref_param(r, NULL, "bn1.weight"))
            act_replace(&x, ref_bn(r, &x, "bn1", 1));
        if (r->imagenet_stem) {
            RefPool s = ref_pool_shape(r->n, x.c, x.h, x.w, 3, 2, 1);
            Act y = act_new(r->n, x.c, s.oh, s.ow);
            ref_maxpool_forward(&s, x.x, y.x);
            act_replace(&x, y);
        }
    } else {
        const Act *c = &r->cache[from];
        x = act_new(r->n, c->c, c->h, c->w);
        memcpy(x.x, c->x, act_size(r, c) * sizeof(double));
    }
    int index = 0;
    for (int stage = 1; stage <= 4; stage++)
        for (int j = 0; ref_param(r, NULL, "layer%d.%d.conv1.weight", stage, j); j++, index++) {
            if (index < from)
                continue;
            if (record) {
                free(r->cache[index].x);
                r->cache[index] = act_new(r->n, x.c, x.h, x.w);
                memcpy(r->cache[index].x, x.x, act_size(r, &x) * sizeof(double));
            }
            act_replace(&x, ref_block(r, &x, stage, j, index));
        }
    if (record) {
        free(r->cache[index].x);
        r->cache[index] = act_new(r->n, x.c, x.h, x.w);
        memcpy(r->cache[index].x, x.x, act_size(r, &x) * sizeof(double));
    }
    if (ref_param(r, NULL, "bn_final.weight"))
        act_replace(&x, ref_bn(r, &x, "bn_final", 1));
    double *pooled = xmalloc((size_t)r->n * x.c * sizeof *pooled);
    ref_avgpool_global_forward(x.x, r->n, x.c, x.h * x.w, pooled);
    ref_linear_forward(pooled, ref_param(r, NULL, "fc.weight"), ref_param(r, NULL, "fc.bias"),
                       r->n, x.c, r->classes, r->logits);
    free(pooled);
    free(x.x);
    return ref_softmax_xent(r->logits, r->labels, r->n, r->classes, 0.0, NULL) / r->n;
}

/* The first part of the network a parameter acts in: -1 the stem, b block
 * b (in forward order), nblocks the head. */
static int param_block(const char *name, const int *first_of_stage, int nblocks)
{
    int stage, j;
    if (sscanf(name, "layer%d.%d.", &stage, &j) == 2)
        return first_of_stage[stage - 1] + j;
    return strncmp(name, "fc.", 3) == 0 || strncmp(name, "bn_final.", 9) == 0 ? nblocks : -1;
}

/* The im2col convolution against tests/ref's, grouped, strided, padded. */
static void test_reference_conv(void **state)
{
    (void)state;
    RefConv shapes[] = {ref_conv_shape(2, 8, 7, 7, 12, 3, 2, 1, 4),
                        ref_conv_shape(1, 6, 5, 5, 4, 1, 1, 0, 1),
                        ref_conv_shape(2, 3, 9, 9, 5, 7, 2, 3, 1)};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        RefConv *s = &shapes[i];
        size_t nx = ref_conv_src_size(s), nw = ref_conv_weights_size(s), ny = ref_conv_dst_size(s);
        float *xf = xmalloc(nx * sizeof *xf), *wf = xmalloc(nw * sizeof *wf);
        ref_fill_normal(xf, nx, 1 + i, 1.0);
        ref_fill_normal(wf, nw, 7 + i, 1.0);
        double *x = ref_to_double(xf, nx), *w = ref_to_double(wf, nw);
        double *a = xmalloc(ny * sizeof *a), *b = xmalloc(ny * sizeof *b);
        ref_conv_forward(s, x, w, a);
        conv_im2col(s, x, w, b);
        for (size_t j = 0; j < ny; j++)
            assert_true(fabs(a[j] - b[j]) < 1e-12 * (1 + fabs(a[j])));
        free(xf), free(wf), free(x), free(w), free(a), free(b);
    }
}

/* ---- forward and finite differences on small instances ---- */

typedef struct {
    const char *arch;
    int size, batch, classes;
    int blocks[4];          /* 0: the architecture's */
    double drop_path, dropout;
} SmallCase;

/* Non-trivial BN parameters: gamma in [0.5, 1.5), beta in [-0.2, 0.2). */
static void randomise_bn(Params *p, uint64_t seed)
{
    for (int i = 0; i < p->count; i++) {
        const ParamInfo *info = &p->info[i];
        if (info->kind != PARAM_BN_WEIGHT && info->kind != PARAM_BN_BIAS)
            continue;
        float *v = xmalloc(info->numel * sizeof *v);
        if (info->kind == PARAM_BN_WEIGHT)
            ref_fill_uniform(v, info->numel, seed + (uint64_t)i, 0.5, 1.5);
        else
            ref_fill_uniform(v, info->numel, seed + (uint64_t)i, -0.2, 0.2);
        params_set_plain(p, i, BUF_VALUE, v);
        free(v);
    }
}

static void run_small(const SmallCase *sc)
{
    NetConfig cfg = config(sc->arch, sc->classes, sc->size, sc->batch);
    memcpy(cfg.stage_blocks, sc->blocks, sizeof cfg.stage_blocks);
    cfg.drop_path = sc->drop_path;
    cfg.dropout = sc->dropout;
    Params p;
    Net *net = build(&p, &cfg);
    net_init_weights(net, SEED);
    randomise_bn(&p, SEED + 1);
    int nb = net_block_count(net);

    size_t nin = (size_t)sc->batch * 3 * sc->size * sc->size;
    float *input = xmalloc(nin * sizeof *input);
    ref_fill_normal(input, nin, SEED + 2, 1.0);
    memcpy(net_input(net), input, nin * sizeof *input);
    int32_t *labels = xmalloc((size_t)sc->batch * sizeof *labels);
    int64_t *keys = xmalloc((size_t)sc->batch * sizeof *keys);
    for (int i = 0; i < sc->batch; i++) {
        labels[i] = i % sc->classes;
        keys[i] = 1000 + 7 * i;
    }
    const uint64_t seed = 11;
    const int64_t epoch = 3;
    net_set_sample_keys(net, seed, epoch, keys);
    net_forward(net, 1);
    LossStats ls = net_loss(net, labels, NULL, 0.0f, 1, sc->batch);
    net_backward(net);
    dnn_wait();

    /* The reference, with the same drop-path decisions and dropout masks. */
    Ref r = {.p = &p, .n = sc->batch, .c = 3, .size = sc->size, .classes = sc->classes,
             .imagenet_stem = params_find(&p, "bn1.weight") >= 0 && p.info[params_find(&p, "conv1.weight")].dims[2] == 7,
             .input = input, .labels = labels};
    r.w = xcalloc((size_t)p.count, sizeof *r.w);
    for (int i = 0; i < p.count; i++) {
        float *f = xmalloc(p.info[i].numel * sizeof *f);
        params_get_plain(&p, i, BUF_VALUE, f);
        r.w[i] = ref_to_double(f, p.info[i].numel);
        free(f);
    }
    r.logits = xmalloc((size_t)sc->batch * sc->classes * sizeof *r.logits);
    int dropped = 0, kept = 0;
    if (sc->drop_path > 0) {
        r.scale = xcalloc((size_t)nb, sizeof *r.scale);
        for (int b = 0; b < nb; b++) {
            r.scale[b] = net_drop_path_scales(net, b);
            for (int i = 0; i < sc->batch; i++) {
                if (r.scale[b][i] == 0.0f)
                    dropped++;
                else
                    kept++;
            }
        }
        assert_true(dropped > 0 && kept > 0);
    }
    float **masks = NULL;
    if (sc->dropout > 0) {
        /* wrn blocks: the dropout sits after bn2, whose output has conv1's shape */
        masks = xcalloc((size_t)nb, sizeof *masks);
        r.mask = xcalloc((size_t)nb, sizeof *r.mask);
        int b = 0;
        for (int stage = 1; stage <= 3; stage++)
            for (int j = 0;; j++, b++) {
                char name[64];
                snprintf(name, sizeof name, "layer%d.%d.bn2.weight", stage, j);
                if (params_find(&p, name) < 0)
                    break;
                int hw = sc->size >> (stage - 1);
                size_t per = (size_t)p.info[params_find(&p, name)].dims[0] * hw * hw;
                masks[b] = xmalloc(per * sc->batch * sizeof **masks);
                dropout_fill_mask(masks[b], sc->batch, per, sc->dropout, seed, epoch, keys, b);
                r.mask[b] = masks[b];
            }
        assert_int_equal(b, nb);
    }
    r.cache = xcalloc((size_t)nb + 1, sizeof *r.cache);
    double loss = ref_forward(&r, -1, 1);
    size_t nk = (size_t)sc->batch * sc->classes;
    double *ours = ref_to_double(net_logits(net), nk);
    double err = 0, scale = 0;
    for (size_t i = 0; i < nk; i++) {
        err = fmax(err, fabs(ours[i] - r.logits[i]));
        scale = fmax(scale, fabs(r.logits[i]));
    }
    free(ours);
    printf("  %-18s %3d blocks, %8zu params: logits err %.1e (of %.2f), loss %.6f vs %.6f\n",
           sc->arch, nb, params_numel(&p), err, scale, ls.loss_sum / sc->batch, loss);
    if (err > 1e-4 * scale)
        fail_msg("%s: logits differ from the float64 reference by %.3g", sc->arch, err);
    assert_true(fabs(ls.loss_sum / sc->batch - loss) < 1e-4 * fmax(1.0, loss));

    /* Every gradient tensor g against the central difference of the loss
     * along a random direction v: (L(w + hv) - L(w - hv)) / 2h = g.v up to
     * O(h^2); float32 rounding of g stays far below 1e-4 |g| |v|. */
    int first_of_stage[4] = {0}, failures = 0;
    for (int stage = 1, b = 0; stage <= 4; stage++) {
        first_of_stage[stage - 1] = b;
        for (int j = 0;; j++, b++) {
            char name[64];
            snprintf(name, sizeof name, "layer%d.%d.conv1.weight", stage, j);
            if (params_find(&p, name) < 0)
                break;
        }
    }
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < p.count; i++) {
        size_t n = p.info[i].numel;
        float *g = xmalloc(n * sizeof *g);
        double *v = xmalloc(n * sizeof *v), *w0 = xmalloc(n * sizeof *w0), *w = r.w[i];
        params_get_plain(&p, i, BUF_GRAD, g);
        Rng rng;
        rng_seed(&rng, SEED, 3, (uint64_t)i);
        double gv = 0, gg = 0, vv = 0;
        for (size_t j = 0; j < n; j++) {
            v[j] = rng_normal(&rng);
            gv += g[j] * v[j];
            gg += (double)g[j] * g[j];
            vv += v[j] * v[j];
        }
        memcpy(w0, w, n * sizeof *w0);
        const double h = 1e-8;
        int from = param_block(p.info[i].name, first_of_stage, nb);
        for (size_t j = 0; j < n; j++)
            w[j] = w0[j] + h * v[j];
        double lp = ref_forward(&r, from, 0);
        for (size_t j = 0; j < n; j++)
            w[j] = w0[j] - h * v[j];
        double lm = ref_forward(&r, from, 0);
        memcpy(w, w0, n * sizeof *w0);
        double fd = (lp - lm) / (2 * h), tol = 1e-4 * sqrt(gg * vv) + 1e-10;
        double e = fabs(gv - fd);
        if (e / tol > worst) {
            worst = e / tol;
            worst_name = p.info[i].name;
        }
        if (!(e <= tol)) {
            failures++;
            printf("    MISMATCH %-30s g.v %.8e, finite difference %.8e (|g||v| %.3e)\n",
                   p.info[i].name, gv, fd, sqrt(gg * vv));
        }
        free(g);
        free(v);
        free(w0);
    }
    printf("  %-18s %d gradient tensors vs finite differences, worst err/tol %.3f (%s)\n",
           sc->arch, p.count, worst, worst_name);
    for (int i = 0; i < p.count; i++)
        free(r.w[i]);
    free(r.w);
    free(r.logits);
    for (int b = 0; b <= nb; b++)
        free(r.cache[b].x);
    free(r.cache);
    free(r.scale);
    if (masks) {
        for (int b = 0; b < nb; b++)
            free(masks[b]);
        free(masks);
        free(r.mask);
    }
    free(input);
    free(labels);
    free(keys);
    free_net(net, &p);
    if (failures)
        fail_msg("%s: %d of %d gradient tensors differ from finite differences", sc->arch,
                 failures, p.count);
}

static const SmallCase SMALL[] = {
    /* pre-act basic */
    {.arch = "preact-resnet110", .size = 8, .batch = 4, .classes = 5, .blocks = {2, 1, 1, 0},
     .drop_path = 0, .dropout = 0},
    /* pre-act bottleneck */
    {.arch = "preact-resnet164", .size = 8, .batch = 4, .classes = 5, .blocks = {2, 1, 1, 0},
     .drop_path = 0, .dropout = 0},
    /* wrn block, dropout off */
    {.arch = "wrn-16-2", .size = 8, .batch = 4, .classes = 5, .blocks = {0},
     .drop_path = 0, .dropout = 0},
    /* wrn block, dropout on */
    {.arch = "wrn-10-2", .size = 8, .batch = 4, .classes = 5, .blocks = {0},
     .drop_path = 0, .dropout = 0.3},
    /* ImageNet pre-act stem */
    {.arch = "preact-resnet18", .size = 16, .batch = 4, .classes = 5, .blocks = {1, 1, 1, 1},
     .drop_path = 0, .dropout = 0},
    /* drop-path, post-act */
    {.arch = "resnet20", .size = 8, .batch = 4, .classes = 5, .blocks = {2, 2, 1, 0},
     .drop_path = 0.5, .dropout = 0},
    /* drop-path, pre-act */
    {.arch = "preact-resnet164", .size = 8, .batch = 4, .classes = 5, .blocks = {2, 1, 1, 0},
     .drop_path = 0.6, .dropout = 0},
    /* drop-path, grouped bottleneck */
    {.arch = "resnext50_32x4d", .size = 16, .batch = 4, .classes = 5, .blocks = {1, 1, 1, 1},
     .drop_path = 0.5, .dropout = 0},
};

static void test_small(void **state)
{
    double t0 = MPI_Wtime();
    run_small(*state);
    printf("  (%.1f s)\n", MPI_Wtime() - t0);
}

/* ---- stochastic depth ---- */

static void test_drop_path_rates(void **state)
{
    (void)state;
    const double P = 0.5;
    const int batch = 50, epochs = 80;
    NetConfig cfg = config("resnet20", 10, 8, batch);
    cfg.drop_path = P;
    Params p;
    Net *net = build(&p, &cfg);
    net_init_weights(net, 1);
    ref_fill_normal(net_input(net), (size_t)batch * 3 * 8 * 8, 5, 1.0);
    int L = net_block_count(net);
    assert_int_equal(L, 9);
    int64_t keys[50];
    long drops[9] = {0};
    for (int e = 0; e < epochs; e++) {
        for (int i = 0; i < batch; i++)
            keys[i] = (int64_t)e * 7919 + i;
        net_set_sample_keys(net, 42, e, keys);
        net_forward(net, 1);
        for (int b = 0; b < L; b++) {
            double pb = P * (b + 1) / L;
            assert_true(fabs(net_drop_path_prob(net, b) - pb) < 1e-12);
            const float *s = net_drop_path_scales(net, b);
            for (int i = 0; i < batch; i++) {
                int keep = droppath_keep(42, e, keys[i], b, pb);
                assert_true(s[i] == (keep ? (float)(1.0 / (1.0 - pb)) : 0.0f));
                drops[b] += !keep;
            }
        }
    }
    double m = (double)batch * epochs;
    for (int b = 0; b < L; b++) {
        double pb = P * (b + 1) / L, rate = drops[b] / m, sd = sqrt(pb * (1 - pb) / m);
        print_message("block %d: drop rate %.4f, expected %.4f (sd %.4f)\n", b + 1, rate, pb, sd);
        assert_true(fabs(rate - pb) < 4.5 * sd);
    }
    free_net(net, &p);
}

/* Two ranks with 4 samples each see the decisions one rank with all 8 sees. */
static void test_drop_path_split(void **state)
{
    (void)state;
    NetConfig cfg = config("preact-resnet110", 10, 8, 8);
    cfg.drop_path = 0.7;
    cfg.stage_blocks[0] = cfg.stage_blocks[1] = cfg.stage_blocks[2] = 2;
    Params p;
    Net *whole = build(&p, &cfg);
    cfg.batch = 4;
    Net *half = net_create(&cfg, &p);
    net_init_weights(whole, 1);
    int64_t keys[8] = {96, 97, 98, 99, 100, 101, 102, 103};
    net_set_sample_keys(whole, 9, 2, keys);
    net_forward(whole, 1);
    for (int part = 0; part < 2; part++) {
        net_set_sample_keys(half, 9, 2, keys + 4 * part);
        net_forward(half, 1);
        for (int b = 0; b < net_block_count(whole); b++)
            assert_memory_equal(net_drop_path_scales(half, b),
                                net_drop_path_scales(whole, b) + 4 * part, 4 * sizeof(float));
    }
    /* another epoch, other decisions */
    const float *s0 = net_drop_path_scales(whole, 5);
    float before[8];
    memcpy(before, s0, sizeof before);
    int differs = 0;
    for (int e = 3; e < 8 && !differs; e++) {
        net_set_sample_keys(whole, 9, e, keys);
        net_forward(whole, 1);
        differs = memcmp(before, net_drop_path_scales(whole, 5), sizeof before) != 0;
    }
    assert_true(differs);
    net_free(half);
    net_free(whole);
    params_free(&p);
}

/* Eval mode: no drops, no scaling, the same logits as without drop-path. */
static void test_drop_path_eval(void **state)
{
    (void)state;
    NetConfig cfg = config("resnet20", 10, 8, 6);
    cfg.stage_blocks[0] = cfg.stage_blocks[1] = cfg.stage_blocks[2] = 2;
    Params p;
    Net *plain = build(&p, &cfg);
    cfg.drop_path = 0.9;
    Net *dp = net_create(&cfg, &p);
    net_init_weights(plain, 4);
    randomise_bn(&p, 8);
    size_t nin = 6 * 3 * 8 * 8, nk = 6 * 10;
    float *x = xmalloc(nin * sizeof *x);
    ref_fill_normal(x, nin, 6, 1.0);
    /* a training forward first, so drop decisions are live */
    int64_t keys[6] = {0, 1, 2, 3, 4, 5};
    memcpy(net_input(dp), x, nin * sizeof *x);
    net_set_sample_keys(dp, 1, 0, keys);
    net_forward(dp, 1);
    float train_logits[60];
    memcpy(train_logits, net_logits(dp), sizeof train_logits);

    float a[60], b[60], c[60];
    memcpy(net_input(dp), x, nin * sizeof *x);
    net_forward(dp, 0);
    memcpy(a, net_logits(dp), sizeof a);
    net_forward(dp, 0);
    memcpy(b, net_logits(dp), sizeof b);
    memcpy(net_input(plain), x, nin * sizeof *x);
    net_forward(plain, 0);
    memcpy(c, net_logits(plain), sizeof c);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_equal(a, c, sizeof a);
    assert_true(memcmp(a, train_logits, nk * sizeof(float)) != 0);
    free(x);
    net_free(dp);
    net_free(plain);
    params_free(&p);
}

/* ---- dropout ---- */

static void test_dropout_mask(void **state)
{
    (void)state;
    const int n = 16;
    const size_t per = 4096;
    const double p = 0.3;
    int64_t keys[16];
    for (int i = 0; i < n; i++)
        keys[i] = 5 * i;
    float *m = xmalloc(n * per * sizeof *m), *m2 = xmalloc(per * sizeof *m2);
    dropout_fill_mask(m, n, per, p, 7, 1, keys, 3);
    size_t zeros = 0;
    for (size_t i = 0; i < n * per; i++) {
        assert_true(m[i] == 0.0f || m[i] == (float)(1.0 / 0.7));
        zeros += m[i] == 0.0f;
    }
    double rate = (double)zeros / (n * per), sd = sqrt(p * (1 - p) / (n * per));
    print_message("dropout rate %.4f, expected %.2f (sd %.4f)\n", rate, p, sd);
    assert_true(fabs(rate - p) < 4.5 * sd);
    /* a sample's mask depends on its own key only */
    dropout_fill_mask(m2, 1, per, p, 7, 1, keys + 9, 3);
    assert_memory_equal(m2, m + 9 * per, per * sizeof *m2);
    dropout_fill_mask(m2, 1, per, p, 7, 2, keys + 9, 3);
    assert_true(memcmp(m2, m + 9 * per, per * sizeof *m2) != 0);
    dropout_fill_mask(m2, 1, per, p, 7, 1, keys + 9, 4);
    assert_true(memcmp(m2, m + 9 * per, per * sizeof *m2) != 0);
    free(m);
    free(m2);
}

static void test_dropout_layer(void **state)
{
    (void)state;
    const int n = 3, c = 24, h = 5, w = 5;
    const double p = 0.4;
    size_t total = (size_t)n * c * h * w, per = (size_t)c * h * w;
    dnnl_dims_t dims = {n, c, h, w};
    dnnl_memory_desc_t md = dnn_md_make(4, dims, dnnl_nChw16c);
    float *x = xmalloc(total * sizeof *x), *dy = xmalloc(total * sizeof *dy);
    float *mask = xmalloc(total * sizeof *mask), *out = xmalloc(total * sizeof *out);
    ref_fill_normal(x, total, 1, 1.0);
    ref_fill_normal(dy, total, 2, 1.0);
    Tensor src, diff;
    ref_tensor_make(&src, &md, x);
    ref_tensor_make(&diff, &md, dy);
    DropoutLayer l;
    dropout_init(&l, &src, p, 6);
    int64_t keys[3] = {10, 11, 12};
    dropout_forward(&l, 1, 99, 4, keys);
    dnn_wait();
    dropout_fill_mask(mask, n, per, p, 99, 4, keys, 6);
    ref_tensor_to_plain(&l.dst, out);
    for (size_t i = 0; i < total; i++)
        assert_true(out[i] == x[i] * mask[i]);
    dropout_backward(&l, &diff, &diff); /* in place */
    dnn_wait();
    ref_tensor_to_plain(&diff, out);
    for (size_t i = 0; i < total; i++)
        assert_true(out[i] == dy[i] * mask[i]);
    dropout_forward(&l, 0, 0, 0, NULL);
    ref_tensor_to_plain(&l.dst, out);
    assert_memory_equal(out, x, total * sizeof *x);
    dropout_free(&l);
    tensor_free(&src);
    tensor_free(&diff);
    free(x);
    free(dy);
    free(mask);
    free(out);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    dnn_init();
    struct CMUnitTest tests[64];
    int n = 0;
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_paper_counts);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_names);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_arch_names);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_zero_init_preact);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_reference_conv);
    static char labels[sizeof SMALL / sizeof SMALL[0]][96];
    for (size_t i = 0; i < sizeof SMALL / sizeof SMALL[0]; i++) {
        const SmallCase *c = &SMALL[i];
        snprintf(labels[i], sizeof labels[i], "small %s%s%s", c->arch,
                 c->drop_path > 0 ? " drop-path" : "", c->dropout > 0 ? " dropout" : "");
        tests[n++] = (struct CMUnitTest){.name = labels[i], .test_func = test_small,
                                         .initial_state = (void *)c};
    }
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_drop_path_rates);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_drop_path_split);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_drop_path_eval);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_dropout_mask);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_dropout_layer);
    int failed = _cmocka_run_group_tests("variants", tests, (size_t)n, NULL, NULL);
    dnn_free();
    MPI_Finalize();
    return failed;
}
