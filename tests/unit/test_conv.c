/*
 * test_conv.c - ConvLayer forward, backward data and backward weights
 * against the naive double reference on real ResNet-50 layer shapes (batch
 * 1-2, some with fewer pixels), grouped convolutions as in ResNeXt, plain and
 * blocked inputs; and finite differences on a tiny grouped, strided, padded
 * shape, both of the reference itself and of the oneDNN layer.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../ref/ref_kernels.h"
#include "common/testutil.h"
#include "conv.h"
#include "error.h"

typedef struct {
    const char *name;
    int n, ic, h, w, oc, k, stride, pad, groups;
    int need_diff_src;
    dnnl_format_tag_t src_tag; /* the input's layout: plain, or blocked as in the net */
} ConvCase;

/* A layer over a fresh input: everything one case needs. */
typedef struct {
    RefConv s;
    Tensor src;
    Params p;
    ConvLayer l;
    int widx;
    float *x, *w;         /* plain src (N, IC, H, W), weights (OC, IC/G, K, K) */
} ConvFixture;

static void fixture_init_algo(ConvFixture *f, const ConvCase *c, ConvAlgo algo, uint64_t seed)
{
    f->s = ref_conv_shape(c->n, c->ic, c->h, c->w, c->oc, c->k, c->stride, c->pad, c->groups);
    size_t nx = ref_conv_src_size(&f->s), nw = ref_conv_weights_size(&f->s);
    f->x = xmalloc(nx * sizeof(float));
    f->w = xmalloc(nw * sizeof(float));
    ref_fill_normal(f->x, nx, seed, 1.0);
    /* Kaiming-like scale keeps dst near unit size whatever the fan-in. */
    double fan_in = (double)(c->ic / c->groups) * c->k * c->k;
    ref_fill_normal(f->w, nw, seed + 1, sqrt(2.0 / fan_in));

    dnnl_dims_t dims = {c->n, c->ic, c->h, c->w};
    dnnl_memory_desc_t md = dnn_md_make(4, dims, c->src_tag);
    ref_tensor_make(&f->src, &md, f->x);
    params_init(&f->p);
    ConvSpec spec = {.oc = c->oc, .kernel = c->k, .stride = c->stride, .pad = c->pad,
                     .groups = c->groups, .need_diff_src = c->need_diff_src, .algo = algo};
    conv_init(&f->l, &f->src, &spec, &f->p, "c");
    params_allocate(&f->p);
    f->widx = params_find(&f->p, "c.weight");
    assert_true(f->widx >= 0);
    assert_int_equal(f->p.info[f->widx].numel, nw);
    params_set_plain(&f->p, f->widx, BUF_VALUE, f->w);
}

static void fixture_init(ConvFixture *f, const ConvCase *c, uint64_t seed)
{
    fixture_init_algo(f, c, CONV_DIRECT, seed);
}

static void fixture_free(ConvFixture *f)
{
    conv_free(&f->l);
    params_free(&f->p);
    tensor_free(&f->src);
    free(f->x);
    free(f->w);
}

static void check_dst_dims(const ConvFixture *f)
{
    const dnnl_dim_t *d = f->l.dst.md.dims;
    assert_int_equal(d[0], f->s.n);
    assert_int_equal(d[1], f->s.oc);
    assert_int_equal(d[2], f->s.oh);
    assert_int_equal(d[3], f->s.ow);
}

static void run_case_algo(const ConvCase *c, ConvAlgo algo, uint64_t seed)
{
    ConvFixture f;
    fixture_init_algo(&f, c, algo, seed);
    check_dst_dims(&f);
    const RefConv *s = &f.s;
    size_t nx = ref_conv_src_size(s), ny = ref_conv_dst_size(s), nw = ref_conv_weights_size(s);
    int icg = s->ic / s->groups, ocg = s->oc / s->groups;
    char what[160];

    /* forward */
    conv_forward(&f.l);
    dnn_wait();
    float *y = xmalloc(ny * sizeof(float));
    ref_tensor_to_plain(&f.l.dst, y);
    double *xd = ref_to_double(f.x, nx), *wd = ref_to_double(f.w, nw);
    double *yd = xmalloc(ny * sizeof(double));
    ref_conv_forward(s, xd, wd, yd);
    float *yr = ref_to_float(yd, ny);
    snprintf(what, sizeof what, "%s forward dst", c->name);
    size_t len = (size_t)icg * s->k * s->k;
    assert_close(y, yr, ny, ref_tol(len, ref_rms_nonzero(yd, ny)), ref_tol(len, 1.0),
                 what);

    /* backward: diff_dst in the layer's dst layout */
    float *dy = xmalloc(ny * sizeof(float));
    ref_fill_normal(dy, ny, seed + 2, 1.0);
    Tensor diff_dst, diff_src;
    ref_tensor_make(&diff_dst, &f.l.dst.md, dy);
    if (c->need_diff_src) {
        tensor_alloc(&diff_src, &f.src.md);
        memset(diff_src.data, 0x7f, dnn_md_bytes(&diff_src.md)); /* must be overwritten */
    }
    memset(params_buffer(&f.p, BUF_GRAD), 0x7f, f.p.total * sizeof(float));
    conv_backward(&f.l, &diff_dst, c->need_diff_src ? &diff_src : NULL);
    dnn_wait();
    double *dyd = ref_to_double(dy, ny);

    if (c->need_diff_src) {
        float *dx = xmalloc(nx * sizeof(float));
        ref_tensor_to_plain(&diff_src, dx);
        double *dxd = xmalloc(nx * sizeof(double));
        ref_conv_backward_data(s, dyd, wd, dxd);
        float *dxr = ref_to_float(dxd, nx);
        /* each diff_src sums at most OC/G * K * K products */
        snprintf(what, sizeof what, "%s backward diff_src", c->name);
        len = (size_t)ocg * s->k * s->k;
        assert_close(dx, dxr, nx, ref_tol(len, ref_rms_nonzero(dxd, nx)),
                     ref_tol(len, 1.0), what);
        free(dx);
        free(dxd);
        free(dxr);
        tensor_free(&diff_src);
    }

    float *dw = xmalloc(nw * sizeof(float));
    params_get_plain(&f.p, f.widx, BUF_GRAD, dw);
    double *dwd = xmalloc(nw * sizeof(double));
    ref_conv_backward_weights(s, xd, dyd, dwd);
    float *dwr = ref_to_float(dwd, nw);
    snprintf(what, sizeof what, "%s backward diff_weights", c->name);
    len = (size_t)s->n * s->oh * s->ow;
    assert_close(dw, dwr, nw, ref_tol(len, ref_rms_nonzero(dwd, nw)), ref_tol(len, 1.0),
                 what);

    free(dw);
    free(dwd);
    free(dwr);
    free(dyd);
    free(dy);
    tensor_free(&diff_dst);
    free(y);
    free(yr);
    free(yd);
    free(xd);
    free(wd);
    fixture_free(&f);
}

static void run_case(const ConvCase *c, uint64_t seed)
{
    run_case_algo(c, CONV_DIRECT, seed);
}

/* layer1.0.conv3: 1x1 64 -> 256 at 56x56, batch 2. */
static void test_conv_1x1_expand(void **state)
{
    (void)state;
    ConvCase c = {.name = "1x1 64->256 @56", .n = 2, .ic = 64, .h = 56, .w = 56, .oc = 256, .k = 1,
                  .stride = 1, .pad = 0, .groups = 1, .need_diff_src = 1, .src_tag = dnnl_nchw};
    run_case(&c, 100);
}

/* layer2.0.conv2 (torchvision v1.5: the stride on the 3x3): 128 -> 128,
 * 56x56 -> 28x28, batch 1, blocked input as the network feeds it. */
static void test_conv_3x3_stride2(void **state)
{
    (void)state;
    ConvCase c = {.name = "3x3/2 128->128 @56", .n = 1, .ic = 128, .h = 56, .w = 56, .oc = 128,
                  .k = 3, .stride = 2, .pad = 1, .groups = 1, .need_diff_src = 1,
                  .src_tag = dnnl_nChw16c};
    run_case(&c, 200);
}

/* conv1: 7x7/2 pad 3, 3 -> 64 at 224, batch 1; the image needs no gradient. */
static void test_conv_stem(void **state)
{
    (void)state;
    ConvCase c = {.name = "stem 7x7/2 3->64 @224", .n = 1, .ic = 3, .h = 224, .w = 224, .oc = 64,
                  .k = 7, .stride = 2, .pad = 3, .groups = 1, .need_diff_src = 0,
                  .src_tag = dnnl_nchw};
    run_case(&c, 300);
}

/* layer2.0.downsample.0: 1x1/2 256 -> 512, 56x56 -> 28x28, batch 2. */
static void test_conv_downsample(void **state)
{
    (void)state;
    ConvCase c = {.name = "1x1/2 256->512 @56", .n = 2, .ic = 256, .h = 56, .w = 56, .oc = 512,
                  .k = 1, .stride = 2, .pad = 0, .groups = 1, .need_diff_src = 1,
                  .src_tag = dnnl_nChw16c};
    run_case(&c, 400);
}

/* layer1.0.conv1 of a basic block (resnet18/34): 3x3, 64 -> 64, at 15x15
 * instead of 56x56 to stay fast (odd, so the padded border is uneven). */
static void test_conv_3x3_basic(void **state)
{
    (void)state;
    ConvCase c = {.name = "3x3 64->64 @15", .n = 2, .ic = 64, .h = 15, .w = 15, .oc = 64, .k = 3,
                  .stride = 1, .pad = 1, .groups = 1, .need_diff_src = 1, .src_tag = dnnl_nchw};
    run_case(&c, 500);
}

/* The same layer in Winograd F(4x4, 3x3), on the 16-channel blocked input
 * it has in the network. oneDNN implements it on AVX-512, where it meets
 * the same error bound as direct convolution; below AVX-512 the layer must
 * run direct and report that it does (the trainer's warning counts on it). */
static void test_conv_3x3_winograd(void **state)
{
    (void)state;
    ConvCase c = {.name = "3x3 64->64 @15, winograd", .n = 2, .ic = 64, .h = 15, .w = 15, .oc = 64,
                  .k = 3, .stride = 1, .pad = 1, .groups = 1, .need_diff_src = 1,
                  .src_tag = dnnl_aBcd16b};
    int has_winograd = dnnl_get_effective_cpu_isa() >= dnnl_cpu_isa_avx512_core;
    if (has_winograd)
        run_case_algo(&c, CONV_WINOGRAD, 550);
    ConvFixture f;
    fixture_init_algo(&f, &c, CONV_WINOGRAD, 550);
    assert_true(f.l.winograd_wanted);
    assert_int_equal(f.l.alg, has_winograd ? dnnl_convolution_winograd : dnnl_convolution_direct);
    assert_int_equal(conv_runs_winograd(&f.l), has_winograd);
    fixture_free(&f);
    /* A stride-2 layer never asks for Winograd, so nothing falls back. */
    c.stride = 2;
    fixture_init_algo(&f, &c, CONV_WINOGRAD, 550);
    assert_false(f.l.winograd_wanted);
    assert_int_equal(f.l.winograd_fallbacks, 0);
    fixture_free(&f);
}

/* resnext50_32x4d layer1.0.conv2: 3x3, 128 -> 128 in 32 groups of 4, at 14x14
 * (reduced from 56), stride 2 as in the first block of a later stage. */
static void test_conv_grouped32(void **state)
{
    (void)state;
    ConvCase c = {.name = "grouped 32 3x3/2 128->128 @14", .n = 2, .ic = 128, .h = 14, .w = 14,
                  .oc = 128, .k = 3, .stride = 2, .pad = 1, .groups = 32, .need_diff_src = 1,
                  .src_tag = dnnl_nchw};
    run_case(&c, 600);
}

static void test_conv_grouped4(void **state)
{
    (void)state;
    ConvCase c = {.name = "grouped 4 3x3 16->32 @9", .n = 2, .ic = 16, .h = 9, .w = 9, .oc = 32,
                  .k = 3, .stride = 1, .pad = 1, .groups = 4, .need_diff_src = 1,
                  .src_tag = dnnl_nchw};
    run_case(&c, 700);
}

/* In a network the grouped convolution's input is 16-channel blocked; its
 * output keeps that blocking whatever narrower layout its primitive picks,
 * so batch norm after it runs its fast kernels. */
static void test_conv_grouped_keeps_layout(void **state)
{
    (void)state;
    ConvCase c = {.name = "grouped 32 3x3 128->128 @8, blocked", .n = 2, .ic = 128, .h = 8, .w = 8,
                  .oc = 128, .k = 3, .stride = 1, .pad = 1, .groups = 32, .need_diff_src = 1,
                  .src_tag = dnnl_aBcd16b};
    run_case(&c, 800);
    ConvFixture f;
    fixture_init(&f, &c, 800);
    dnnl_memory_desc_t want = dnn_md_make(4, f.l.dst.md.dims, dnnl_aBcd16b);
    assert_true(dnn_md_equal(&f.l.dst.md, &want));
    fixture_free(&f);
}

/* ---- finite differences on a tiny shape -------------------------------- */

static const ConvCase TINY = {.name = "tiny", .n = 2, .ic = 4, .h = 5, .w = 5, .oc = 6, .k = 3,
                               .stride = 2, .pad = 1, .groups = 2, .need_diff_src = 1,
                               .src_tag = dnnl_nchw};

/* L = sum r * dst in double. */
static double dot(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* L = sum r * conv(x, w) of the reference (y is scratch). */
typedef struct {
    const RefConv *s;
    const double *x, *w, *r;
    double *y;
} RefConvLoss;

static double ref_conv_loss(void *ctx)
{
    const RefConvLoss *l = ctx;
    ref_conv_forward(l->s, l->x, l->w, l->y);
    return testutil_dot(l->r, l->y, ref_conv_dst_size(l->s));
}

/* The reference backward is the gradient of the reference forward: central
 * differences of L = sum r * conv(x, w) over every coordinate. L is linear
 * in each, so the differences are exact up to double rounding. */
static void test_conv_ref_finite_differences(void **state)
{
    (void)state;
    RefConv s = ref_conv_shape(TINY.n, TINY.ic, TINY.h, TINY.w, TINY.oc, TINY.k, TINY.stride,
                               TINY.pad, TINY.groups);
    size_t nx = ref_conv_src_size(&s), ny = ref_conv_dst_size(&s), nw = ref_conv_weights_size(&s);
    float *xf = xmalloc(nx * sizeof(float)), *wf = xmalloc(nw * sizeof(float));
    float *rf = xmalloc(ny * sizeof(float));
    ref_fill_normal(xf, nx, 1, 1.0);
    ref_fill_normal(wf, nw, 2, 0.5);
    ref_fill_normal(rf, ny, 3, 1.0);
    double *x = ref_to_double(xf, nx), *w = ref_to_double(wf, nw), *r = ref_to_double(rf, ny);
    double *y = xmalloc(ny * sizeof(double)), *dx = xmalloc(nx * sizeof(double));
    double *dw = xmalloc(nw * sizeof(double));
    ref_conv_backward_data(&s, r, w, dx);
    ref_conv_backward_weights(&s, x, r, dw);
    float *fd = xmalloc((nx > nw ? nx : nw) * sizeof(float));
    float *an = xmalloc((nx > nw ? nx : nw) * sizeof(float));
    const double h = 0.5;
    RefConvLoss loss = {.s = &s, .x = x, .w = w, .r = r, .y = y};
    int nonzero = 0;
    for (size_t i = 0; i < nx; i++) {
        fd[i] = (float)testutil_central_difference(ref_conv_loss, &loss, x, i, h);
        an[i] = (float)dx[i];
        nonzero += dx[i] != 0.0;
    }
    assert_close(an, fd, nx, 1e-6, 0.0, "reference diff_src vs finite differences");
    /* With stride 2 and pad 1 on 5x5 every input pixel is used. */
    assert_int_equal(nonzero, (int)nx);
    for (size_t i = 0; i < nw; i++) {
        fd[i] = (float)testutil_central_difference(ref_conv_loss, &loss, w, i, h);
        an[i] = (float)dw[i];
    }
    assert_close(an, fd, nw, 1e-6, 0.0, "reference diff_weights vs finite differences");
    free(xf), free(wf), free(rf), free(x), free(w), free(r), free(y), free(dx), free(dw);
    free(fd), free(an);
}

/* Which of the layer's inputs a finite difference perturbs. */
typedef enum { PERTURB_SRC, PERTURB_WEIGHTS } Perturbed;

/* Hands the fixture's plain x or w to the layer after a change. */
static void fixture_reload(ConvFixture *f, Perturbed which)
{
    if (which == PERTURB_SRC)
        ref_tensor_from_plain(&f->src, f->x);
    else
        params_set_plain(&f->p, f->widx, BUF_VALUE, f->w);
}

/* L = sum r * dst of the layer's forward (summed in double; y is scratch). */
static double layer_loss(ConvFixture *f, const float *r, float *y)
{
    conv_forward(&f->l);
    dnn_wait();
    ref_tensor_to_plain(&f->l.dst, y);
    return dot(r, y, ref_conv_dst_size(&f->s));
}

/* (L(v + h) - L(v - h)) / step for coordinate i of the layer's src or
 * weights, where step is the float distance between v + h and v - h as
 * rounded (returned in *step for the tolerance); v is left as it was. */
static double layer_central_difference(ConvFixture *f, Perturbed which, size_t i, float h,
                                       const float *r, float *y, double *step)
{
    float *v = which == PERTURB_SRC ? f->x : f->w;
    float keep = v[i], vp = keep + h, vm = keep - h;
    v[i] = vp;
    fixture_reload(f, which);
    double lp = layer_loss(f, r, y);
    v[i] = vm;
    fixture_reload(f, which);
    double lm = layer_loss(f, r, y);
    v[i] = keep;
    fixture_reload(f, which);
    *step = (double)vp - vm;
    return (lp - lm) / *step;
}

/*
 * The oneDNN layer's backward is the gradient of its own forward: central
 * differences of L = sum r * dst (summed in double) for every src and
 * weight coordinate, with diff_dst = r. L is linear, so the only error is
 * float rounding of the dst values the perturbation changes (A of them, each
 * within ref_tol of its exact value, weighted by |r| <= rmax, at both ends),
 * divided by the step: sqrt(2 A) ref_tol(len, rms dst) rmax / (2 h).
 */
static void test_conv_finite_differences(void **state)
{
    (void)state;
    ConvFixture f;
    fixture_init(&f, &TINY, 40);
    const RefConv *s = &f.s;
    size_t nx = ref_conv_src_size(s), ny = ref_conv_dst_size(s), nw = ref_conv_weights_size(s);
    int icg = s->ic / s->groups, ocg = s->oc / s->groups;
    float *r = xmalloc(ny * sizeof(float)), *y = xmalloc(ny * sizeof(float));
    ref_fill_normal(r, ny, 41, 1.0);
    double rmax = 0.0;
    for (size_t i = 0; i < ny; i++)
        rmax = fmax(rmax, fabs(r[i]));

    Tensor diff_dst, diff_src;
    ref_tensor_make(&diff_dst, &f.l.dst.md, r);
    tensor_alloc(&diff_src, &f.src.md);
    conv_backward(&f.l, &diff_dst, &diff_src);
    dnn_wait();
    float *dx = xmalloc(nx * sizeof(float)), *dw = xmalloc(nw * sizeof(float));
    ref_tensor_to_plain(&diff_src, dx);
    params_get_plain(&f.p, f.widx, BUF_GRAD, dw);

    conv_forward(&f.l);
    dnn_wait();
    ref_tensor_to_plain(&f.l.dst, y);
    double yrms = 0.0;
    for (size_t i = 0; i < ny; i++)
        yrms += (double)y[i] * y[i];
    yrms = sqrt(yrms / ny);
    double per_out = ref_tol((size_t)icg * s->k * s->k, yrms) * rmax;

    const float h = 0.5f;
    float *fd = xmalloc(nx * sizeof(float));
    double worst_tol = 0.0;
    for (size_t i = 0; i < nx; i++) {
        double step;
        fd[i] = (float)layer_central_difference(&f, PERTURB_SRC, i, h, r, y, &step);
        /* A: the outputs of its image and group whose windows cover it */
        double a = (double)ocg * ((s->k + s->stride - 1) / s->stride) *
                   ((s->k + s->stride - 1) / s->stride);
        worst_tol = fmax(worst_tol, sqrt(2 * a) * per_out / step);
    }
    assert_close(dx, fd, nx, worst_tol, 0.0, "layer diff_src vs finite differences");

    float *wfd = xmalloc(nw * sizeof(float));
    worst_tol = 0.0;
    for (size_t i = 0; i < nw; i++) {
        double step;
        wfd[i] = (float)layer_central_difference(&f, PERTURB_WEIGHTS, i, h, r, y, &step);
        /* A: every output pixel of that output channel */
        double a = (double)s->n * s->oh * s->ow;
        worst_tol = fmax(worst_tol, sqrt(2 * a) * per_out / step);
    }
    assert_close(dw, wfd, nw, worst_tol, 0.0, "layer diff_weights vs finite differences");

    free(r), free(y), free(dx), free(dw), free(fd), free(wfd);
    tensor_free(&diff_dst);
    tensor_free(&diff_src);
    fixture_free(&f);
}

/* A second layer over the same registry (another batch size) reuses the
 * weights by name and computes with them. */
static void test_conv_shared_weights(void **state)
{
    (void)state;
    ConvFixture f;
    fixture_init(&f, &TINY, 50);
    dnnl_dims_t dims = {1, TINY.ic, TINY.h, TINY.w};
    dnnl_memory_desc_t md = dnn_md_make(4, dims, dnnl_nchw);
    Tensor src1;
    ref_tensor_make(&src1, &md, f.x); /* the first image of the batch */
    ConvLayer l1;
    int before = f.p.count;
    ConvSpec spec = {.oc = TINY.oc, .kernel = TINY.k, .stride = TINY.stride, .pad = TINY.pad,
                     .groups = TINY.groups, .need_diff_src = 1, .algo = CONV_DIRECT};
    conv_init(&l1, &src1, &spec, &f.p, "c");
    assert_int_equal(f.p.count, before);
    assert_ptr_equal(l1.weights.data, f.l.weights.data);
    conv_forward(&f.l);
    conv_forward(&l1);
    dnn_wait();
    size_t per_image = ref_conv_dst_size(&f.s) / TINY.n;
    float *y = xmalloc(ref_conv_dst_size(&f.s) * sizeof(float));
    float *y1 = xmalloc(per_image * sizeof(float));
    ref_tensor_to_plain(&f.l.dst, y);
    ref_tensor_to_plain(&l1.dst, y1);
    /* With several threads oneDNN may split the sums of the two batch sizes
     * differently: rounding differences only, far below what other weights
     * would change. */
    assert_close(y1, y, per_image, 1e-6, 1e-5, "batch-1 layer over shared weights");
    free(y), free(y1);
    conv_free(&l1);
    tensor_free(&src1);
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_ref_finite_differences),
        cmocka_unit_test(test_conv_finite_differences),
        cmocka_unit_test(test_conv_1x1_expand),
        cmocka_unit_test(test_conv_3x3_stride2),
        cmocka_unit_test(test_conv_stem),
        cmocka_unit_test(test_conv_downsample),
        cmocka_unit_test(test_conv_3x3_basic),
        cmocka_unit_test(test_conv_3x3_winograd),
        cmocka_unit_test(test_conv_grouped32),
        cmocka_unit_test(test_conv_grouped4),
        cmocka_unit_test(test_conv_grouped_keeps_layout),
        cmocka_unit_test(test_conv_shared_weights),
    };
    return cmocka_run_group_tests_name("conv", tests, testutil_dnn_setup, testutil_dnn_teardown);
}
