/*
 * test_batchnorm.c - BatchNormLayer against the naive double reference with
 * PyTorch's semantics: training normalises with the batch mean and biased
 * variance (eps 1e-5); running statistics follow momentum 0.1 with the
 * unbiased variance; inference uses the running statistics; backward gives
 * diff_src, diff gamma and diff beta, with and without the fused ReLU. Shapes
 * include ResNet-50's layer1 (2x64x56x56 and 2x256x56x56, blocked as the
 * network keeps them) and tiny ones where biased vs unbiased variance differ
 * by percents; finite differences of sum(r * dst) on a tiny shape check both
 * the reference and the layer.
 *
 * Tolerances. The batch statistics sum M = N*H*W values and get the
 * summation tolerance of ref_tol (see ref_kernels.h). Everything after them
 * is checked against the reference evaluated with the layer's own float
 * statistics, so each value only carries a few roundings (8u times the size
 * of its largest intermediate) plus, in backward, the error of the M-term
 * gradient sums, which again get ref_tol.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../ref/ref_kernels.h"
#include "batchnorm.h"
#include "common/testutil.h"
#include "error.h"

#define U (FLT_EPSILON / 2)

typedef struct {
    int n, c, h, w;
    size_t total, m;   /* all values; values per channel */
    Tensor src;
    Params p;
    BatchNormLayer l;
    int gidx, bidx;
    float *x, *gamma, *beta; /* plain (N, C, H, W), (C), (C) */
} BnFixture;

/* x[:, c] = mu_c + sigma_c z with mu_c in [-1, 1], sigma_c in [0.5, 2]. */
static void fill_channels(float *x, int n, int c, int hw, uint64_t seed)
{
    float *mu = xmalloc((size_t)c * sizeof(float)), *sd = xmalloc((size_t)c * sizeof(float));
    ref_fill_uniform(mu, (size_t)c, seed, -1.0, 1.0);
    ref_fill_uniform(sd, (size_t)c, seed + 1, 0.5, 2.0);
    ref_fill_normal(x, (size_t)n * c * hw, seed + 2, 1.0);
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < hw; p++) {
                float *v = &x[((size_t)i * c + ch) * hw + p];
                *v = mu[ch] + sd[ch] * *v;
            }
    free(mu);
    free(sd);
}

static void fixture_init(BnFixture *f, int n, int c, int h, int w, dnnl_format_tag_t tag,
                         int relu, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    f->n = n, f->c = c, f->h = h, f->w = w;
    f->m = (size_t)n * h * w;
    f->total = f->m * c;
    f->x = xmalloc(f->total * sizeof(float));
    f->gamma = xmalloc((size_t)c * sizeof(float));
    f->beta = xmalloc((size_t)c * sizeof(float));
    fill_channels(f->x, n, c, h * w, seed);
    ref_fill_uniform(f->gamma, (size_t)c, seed + 10, 0.5, 1.5);
    ref_fill_uniform(f->beta, (size_t)c, seed + 11, -0.5, 0.5);
    f->gamma[0] = -f->gamma[0]; /* a negative scale flips the ReLU mask */

    dnnl_dims_t dims = {n, c, h, w};
    dnnl_memory_desc_t md = dnn_md_make(4, dims, tag);
    ref_tensor_make(&f->src, &md, f->x);
    params_init(&f->p);
    batchnorm_init(&f->l, &f->src, relu, &f->p, "bn");
    params_allocate(&f->p);
    f->gidx = params_find(&f->p, "bn.weight");
    f->bidx = params_find(&f->p, "bn.bias");
    assert_true(f->gidx >= 0 && f->bidx >= 0);
    assert_int_equal(f->p.info[f->gidx].kind, PARAM_BN_WEIGHT);
    assert_int_equal(f->p.info[f->bidx].kind, PARAM_BN_BIAS);
    params_set_plain(&f->p, f->gidx, BUF_VALUE, f->gamma);
    params_set_plain(&f->p, f->bidx, BUF_VALUE, f->beta);
    assert_true(dnn_md_equal(&f->l.dst.md, &f->src.md));
    assert_int_equal(f->l.count, f->m);
}

static void fixture_free(BnFixture *f)
{
    batchnorm_free(&f->l);
    params_free(&f->p);
    tensor_free(&f->src);
    free(f->x);
    free(f->gamma);
    free(f->beta);
}

static double max_abs(const double *x, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(x[i]));
    return m;
}

/* max |xhat| over all values given the statistics. */
static double max_xhat(const double *x, const double *mean, const double *var, int n, int c,
                       int hw)
{
    double m = 0.0;
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < hw; p++)
                m = fmax(m, fabs(x[((size_t)i * c + ch) * hw + p] - mean[ch]) /
                                sqrt(var[ch] + BN_EPS));
    return m;
}

/* Bound on the size of every intermediate of gamma (x - mean) / sigma + beta:
 * a few roundings of it are all a float evaluation may add. */
static double affine_scale(const double *x, const double *gamma, const double *beta,
                           const double *mean, const double *var, int n, int c, int hw)
{
    double m = 0.0;
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++) {
            double inv = fabs(gamma[ch]) / sqrt(var[ch] + BN_EPS);
            for (int p = 0; p < hw; p++) {
                double v = x[((size_t)i * c + ch) * hw + p];
                m = fmax(m, inv * (fabs(v) + fabs(mean[ch])) + fabs(beta[ch]));
            }
        }
    return m;
}

static double *tensor_double(const Tensor *t, size_t n)
{
    float *f = xmalloc(n * sizeof(float));
    ref_tensor_to_plain(t, f);
    double *d = ref_to_double(f, n);
    free(f);
    return d;
}

/*
 * Training forward for two batches (running statistics after each), then
 * backward. The batch statistics are checked against the exact ones with the
 * summation tolerance; dst, the running statistics and the backward are then
 * checked against the reference evaluated with the layer's own statistics,
 * which leaves only a few roundings per value (and the gradient sums).
 */
/* Synchronised BatchNorm's hooks for one process: the rank's statistics and
 * sums are already the batch's. */
static double one_process_combine(void *ctx, double *mean, double *m2, int channels,
                                  double count)
{
    (void)ctx, (void)mean, (void)m2, (void)channels;
    return count;
}

static void one_process_sum(void *ctx, double *a, double *b, int channels)
{
    (void)ctx, (void)a, (void)b, (void)channels;
}

static const BnSync one_process = {one_process_combine, one_process_sum, NULL};

/* sync: through the synchronised path (its own statistics and gradient sums
 * in double, walking the layout on the host) with the one-process hooks. */
static void run_case(int n, int c, int h, int w, dnnl_format_tag_t tag, int relu, int sync,
                     uint64_t seed, const char *name)
{
    BnFixture f;
    fixture_init(&f, n, c, h, w, tag, relu, seed);
    if (sync)
        batchnorm_enable_sync(&f.l, &one_process);
    int hw = h * w;
    size_t total = f.total, m = f.m, cs = (size_t)c;
    char what[160];
    double *gd = ref_to_double(f.gamma, cs), *bd = ref_to_double(f.beta, cs);
    double *mean = xmalloc(cs * sizeof(double)), *var = xmalloc(cs * sizeof(double));
    double *yd = xmalloc(total * sizeof(double));
    double *rmean = xcalloc(cs, sizeof(double)), *rvar = xmalloc(cs * sizeof(double));
    float *y = xmalloc(total * sizeof(float));
    float *fc = xmalloc(cs * sizeof(float));
    for (int ch = 0; ch < c; ch++) {
        rvar[ch] = 1.0; /* PyTorch's initial running_var */
        assert_true(params_bn_running_var(&f.p, f.l.state)[ch] == 1.0f);
        assert_true(params_bn_running_mean(&f.p, f.l.state)[ch] == 0.0f);
    }
    double *xd = NULL, *lmean = NULL, *lvar = NULL;

    for (int step = 0; step < 2; step++) {
        if (step == 1) { /* a second batch through the same layer */
            fill_channels(f.x, n, c, hw, seed + 50);
            ref_tensor_from_plain(&f.src, f.x);
        }
        free(xd);
        xd = ref_to_double(f.x, total);
        double rm_before = max_abs(rmean, cs), rv_before = max_abs(rvar, cs);
        batchnorm_forward(&f.l, 1);
        dnn_wait();

        /* batch statistics against the exact ones: the mean sums M values
         * that drift by the channel mean and scatter by sigma; the biased
         * variance sums M positive values */
        ref_bn_forward_train(xd, gd, bd, n, c, hw, BN_EPS, relu, yd, mean, var);
        float *mr = ref_to_float(mean, cs), *vr = ref_to_float(var, cs);
        snprintf(what, sizeof what, "%s step %d batch mean", name, step);
        assert_close(f.l.mean.data, mr, cs,
                     ref_tol(m, max_abs(mean, cs)) + ref_tol(1, sqrt(max_abs(var, cs))), 0.0,
                     what);
        snprintf(what, sizeof what, "%s step %d batch variance (biased)", name, step);
        assert_close(f.l.var.data, vr, cs, 0.0, ref_tol(m, 1.0), what);
        free(mr), free(vr);

        /* dst from the layer's statistics */
        free(lmean), free(lvar);
        lmean = ref_to_double(f.l.mean.data, cs);
        lvar = ref_to_double(f.l.var.data, cs);
        ref_bn_forward_infer(xd, gd, bd, lmean, lvar, n, c, hw, BN_EPS, relu, yd);
        ref_tensor_to_plain(&f.l.dst, y);
        float *yr = ref_to_float(yd, total);
        snprintf(what, sizeof what, "%s step %d dst", name, step);
        assert_close(y, yr, total, 8 * U * affine_scale(xd, gd, bd, lmean, lvar, n, c, hw), 0.0,
                     what);
        free(yr);

        /* running statistics: PyTorch's rule on the layer's statistics, the
         * unbiased variance; a few roundings of the two terms of each sum */
        ref_bn_update_running(rmean, rvar, lmean, lvar, c, m, 0.1);
        float *rmr = ref_to_float(rmean, cs), *rvr = ref_to_float(rvar, cs);
        double unbias = (double)m / (double)(m - 1);
        snprintf(what, sizeof what, "%s step %d running_mean", name, step);
        assert_close(params_bn_running_mean(&f.p, f.l.state), rmr, cs,
                     4 * U * (rm_before + 0.1 * max_abs(lmean, cs)), 0.0, what);
        snprintf(what, sizeof what, "%s step %d running_var", name, step);
        assert_close(params_bn_running_var(&f.p, f.l.state), rvr, cs,
                     4 * U * (rv_before + 0.1 * unbias * max_abs(lvar, cs)), 0.0, what);
        free(rmr), free(rvr);
    }

    /* backward, diff_dst in the src layout; diff_src a separate tensor */
    float *dy = xmalloc(total * sizeof(float));
    ref_fill_normal(dy, total, seed + 20, 1.0);
    Tensor diff_dst, diff_src;
    ref_tensor_make(&diff_dst, &f.src.md, dy);
    tensor_alloc(&diff_src, &f.src.md);
    memset(params_buffer(&f.p, BUF_GRAD), 0x7f, f.p.total * sizeof(float));
    batchnorm_backward(&f.l, &diff_dst, &diff_src);
    dnn_wait();

    double *dyd = ref_to_double(dy, total), *dxd = xmalloc(total * sizeof(double));
    double *dg = xmalloc(cs * sizeof(double)), *db = xmalloc(cs * sizeof(double));
    /* the ReLU mask comes from the layer's own dst (see ref_bn_backward) */
    double *ydl = relu ? tensor_double(&f.l.dst, total) : NULL;
    ref_bn_backward(xd, dyd, gd, lmean, lvar, ydl, n, c, hw, BN_EPS, dxd, dg, db);

    /* diff gamma, diff beta: sums over M as in convolution */
    params_get_plain(&f.p, f.gidx, BUF_GRAD, fc);
    float *r = ref_to_float(dg, cs);
    snprintf(what, sizeof what, "%s diff gamma", name);
    assert_close(fc, r, cs, ref_tol(m, ref_rms(dg, cs)), ref_tol(m, 1.0), what);
    free(r);
    params_get_plain(&f.p, f.bidx, BUF_GRAD, fc);
    r = ref_to_float(db, cs);
    snprintf(what, sizeof what, "%s diff beta", name);
    assert_close(fc, r, cs, ref_tol(m, ref_rms(db, cs)), ref_tol(m, 1.0), what);
    free(r);

    /* diff_src = gamma/sigma (dy - dbeta/M - xhat dgamma/M): a few roundings
     * of each term, and the sums' error divided by M */
    double xh = max_xhat(xd, lmean, lvar, n, c, hw), inv_max = 0.0;
    for (int ch = 0; ch < c; ch++)
        inv_max = fmax(inv_max, fabs(gd[ch]) / sqrt(lvar[ch] + BN_EPS));
    double terms = max_abs(dyd, total) + (max_abs(db, cs) + xh * max_abs(dg, cs)) / (double)m;
    double sums = ref_tol(m, ref_rms(db, cs) + xh * ref_rms(dg, cs)) / (double)m;
    float *dx = xmalloc(total * sizeof(float));
    ref_tensor_to_plain(&diff_src, dx);
    r = ref_to_float(dxd, total);
    snprintf(what, sizeof what, "%s diff_src", name);
    assert_close(dx, r, total, inv_max * (8 * U * terms + sums), 0.0, what);
    free(r);

    /* in place (diff_src == diff_dst), as the network runs it */
    batchnorm_backward(&f.l, &diff_dst, &diff_dst);
    dnn_wait();
    float *dx2 = xmalloc(total * sizeof(float));
    ref_tensor_to_plain(&diff_dst, dx2);
    snprintf(what, sizeof what, "%s diff_src in place", name);
    assert_close(dx2, dx, total, 0.0, 0.0, what);

    free(dx), free(dx2), free(dy), free(dyd), free(dxd), free(dg), free(db), free(ydl);
    tensor_free(&diff_dst);
    tensor_free(&diff_src);
    free(gd), free(bd), free(mean), free(var), free(yd), free(rmean), free(rvar), free(y);
    free(fc), free(xd), free(lmean), free(lvar);
    fixture_free(&f);
}

static void run_train_case(int n, int c, int h, int w, dnnl_format_tag_t tag, int relu,
                           uint64_t seed, const char *name)
{
    run_case(n, c, h, w, tag, relu, 0, seed, name);
}

/* layer1.x.bn1/bn2: 64 channels at 56x56 with the fused ReLU. */
static void test_bn_resnet50_relu(void **state)
{
    (void)state;
    run_train_case(2, 64, 56, 56, dnnl_nChw16c, 1, 1000, "2x64x56x56 relu");
}

/* layer1.x.bn3 / downsample.1: 256 channels at 56x56, no ReLU (the add
 * follows). */
static void test_bn_resnet50_plain(void **state)
{
    (void)state;
    run_train_case(2, 256, 56, 56, dnnl_nChw16c, 0, 2000, "2x256x56x56");
}

/* M = 18 values per channel: the unbiased running variance differs from the
 * biased one by 6%, and normalising by the wrong one shows at once. */
static void test_bn_tiny_plain_layout(void **state)
{
    (void)state;
    run_train_case(2, 5, 3, 3, dnnl_nchw, 0, 3000, "2x5x3x3");
    run_train_case(2, 5, 3, 3, dnnl_nchw, 1, 3100, "2x5x3x3 relu");
    run_train_case(2, 32, 7, 7, dnnl_nhwc, 1, 3200, "2x32x7x7 nhwc relu");
}

/* The synchronised path reads the input and the output gradient on the host
 * in every layout a convolution may leave: plain, channels last, and blocked
 * by 8 or 16 channels with padding (5 and 40 channels). */
static void test_bn_sync_layouts(void **state)
{
    (void)state;
    run_case(2, 5, 3, 3, dnnl_nchw, 1, 1, 4000, "sync 2x5x3x3 relu");
    run_case(2, 32, 7, 7, dnnl_nhwc, 1, 1, 4100, "sync 2x32x7x7 nhwc relu");
    run_case(2, 5, 3, 3, dnnl_nChw8c, 0, 1, 4200, "sync 2x5x3x3 nChw8c");
    run_case(3, 24, 9, 9, dnnl_nChw8c, 1, 1, 4300, "sync 3x24x9x9 nChw8c relu");
    run_case(2, 40, 6, 6, dnnl_nChw16c, 1, 1, 4400, "sync 2x40x6x6 nChw16c relu");
    run_case(2, 64, 28, 28, dnnl_nChw16c, 0, 1, 4500, "sync 2x64x28x28 nChw16c");
}

/* Inference normalises with the running statistics and leaves them alone. */
static void test_bn_inference(void **state)
{
    (void)state;
    for (int relu = 0; relu < 2; relu++) {
        BnFixture f;
        fixture_init(&f, 2, 32, 7, 7, relu ? dnnl_nChw16c : dnnl_nchw, relu, 4000 + relu);
        int c = f.c, hw = f.h * f.w;
        float *rm = params_bn_running_mean(&f.p, f.l.state);
        float *rv = params_bn_running_var(&f.p, f.l.state);
        ref_fill_uniform(rm, (size_t)c, 4010, -1.0, 1.0);
        ref_fill_uniform(rv, (size_t)c, 4011, 0.25, 4.0);
        float *rm0 = xmalloc((size_t)c * sizeof(float)), *rv0 = xmalloc((size_t)c * sizeof(float));
        memcpy(rm0, rm, (size_t)c * sizeof(float));
        memcpy(rv0, rv, (size_t)c * sizeof(float));

        batchnorm_forward(&f.l, 0);
        dnn_wait();
        double *xd = ref_to_double(f.x, f.total), *yd = xmalloc(f.total * sizeof(double));
        double *gd = ref_to_double(f.gamma, (size_t)c), *bd = ref_to_double(f.beta, (size_t)c);
        double *md = ref_to_double(rm, (size_t)c), *vd = ref_to_double(rv, (size_t)c);
        ref_bn_forward_infer(xd, gd, bd, md, vd, f.n, c, hw, BN_EPS, relu, yd);
        float *y = xmalloc(f.total * sizeof(float)), *yr = ref_to_float(yd, f.total);
        ref_tensor_to_plain(&f.l.dst, y);
        /* no reduction: a handful of roundings of values up to |gamma| (|x| +
         * |mean|) / sigma + |beta| */
        double scale = 0.0;
        for (int ch = 0; ch < c; ch++)
            scale = fmax(scale, fabs(gd[ch]) * (fabs(md[ch]) + 8.0) / sqrt(vd[ch] + BN_EPS) + 0.5);
        assert_close(y, yr, f.total, 8 * U * scale, 0.0, relu ? "inference relu" : "inference");
        assert_memory_equal(rm, rm0, (size_t)c * sizeof(float));
        assert_memory_equal(rv, rv0, (size_t)c * sizeof(float));
        /* the batch statistics would give something else entirely */
        double *bm = xmalloc((size_t)c * sizeof(double)), *bv = xmalloc((size_t)c * sizeof(double));
        double *yb = xmalloc(f.total * sizeof(double));
        ref_bn_forward_train(xd, gd, bd, f.n, c, hw, BN_EPS, relu, yb, bm, bv);
        double far = 0.0;
        for (size_t i = 0; i < f.total; i++)
            far = fmax(far, fabs(yb[i] - y[i]));
        assert_true(far > 0.1);
        free(bm), free(bv), free(yb);
        free(rm0), free(rv0), free(xd), free(yd), free(gd), free(bd), free(md), free(vd), free(y);
        free(yr);
        fixture_free(&f);
    }
}

/* skip_running_update: a training forward leaves the running statistics alone. */
static void test_bn_skip_running_update(void **state)
{
    (void)state;
    BnFixture f;
    fixture_init(&f, 2, 16, 5, 5, dnnl_nchw, 0, 5000);
    f.l.skip_running_update = 1;
    batchnorm_forward(&f.l, 1);
    dnn_wait();
    for (int ch = 0; ch < f.c; ch++) {
        assert_true(params_bn_running_mean(&f.p, f.l.state)[ch] == 0.0f);
        assert_true(params_bn_running_var(&f.p, f.l.state)[ch] == 1.0f);
    }
    /* batchnorm_update_running is the rule the layer applies */
    float rm[3] = {1.0f, -2.0f, 0.5f}, rv[3] = {1.0f, 2.0f, 3.0f};
    const float mean[3] = {0.5f, 0.0f, -1.0f}, var[3] = {2.0f, 0.5f, 1.5f};
    batchnorm_update_running(rm, rv, mean, var, 3, 5);
    const float em[3] = {0.95f, -1.8f, 0.35f};
    const float ev[3] = {0.9f + 0.1f * 2.0f * 1.25f, 1.8f + 0.1f * 0.5f * 1.25f,
                         2.7f + 0.1f * 1.5f * 1.25f};
    assert_close(rm, em, 3, 0.0, 4 * U, "batchnorm_update_running mean");
    assert_close(rv, ev, 3, 0.0, 4 * U, "batchnorm_update_running var");
    fixture_free(&f);
}

/* ---- finite differences of L = sum r * dst ------------------------------- */

/* L = sum r * dst of the reference training forward (y is scratch). */
typedef struct {
    const double *x, *g, *b, *r;
    double *y;
    int n, c, hw, relu;
} RefBnLoss;

static double ref_bn_loss(void *ctx)
{
    const RefBnLoss *l = ctx;
    double *mean = xmalloc((size_t)l->c * sizeof(double));
    double *var = xmalloc((size_t)l->c * sizeof(double));
    ref_bn_forward_train(l->x, l->g, l->b, l->n, l->c, l->hw, BN_EPS, l->relu, l->y, mean, var);
    free(mean), free(var);
    return testutil_dot(l->r, l->y, (size_t)l->n * l->c * l->hw);
}

/* The reference backward is the gradient of the reference forward (with the
 * batch statistics depending on x), ReLU included, in double: central
 * differences with step 1e-5 are exact to O(h^2) ~ 1e-9; both sides are
 * then rounded to float for the comparison (rtol 1e-6 covers that). */
static void test_bn_ref_finite_differences(void **state)
{
    (void)state;
    const int n = 2, c = 3, hw = 9;
    size_t total = (size_t)n * c * hw;
    float *xf = xmalloc(total * sizeof(float)), *rf = xmalloc(total * sizeof(float));
    float gf[3] = {1.3f, -0.7f, 0.9f}, bf[3] = {0.2f, 0.1f, -0.3f};
    fill_channels(xf, n, c, hw, 6000);
    ref_fill_normal(rf, total, 6001, 1.0);
    double *x = ref_to_double(xf, total), *r = ref_to_double(rf, total);
    double *g = ref_to_double(gf, 3), *b = ref_to_double(bf, 3);
    double *y = xmalloc(total * sizeof(double)), *dx = xmalloc(total * sizeof(double));
    double mean[3], var[3], dg[3], db[3];
    float *fd = xmalloc(total * sizeof(float)), *an = xmalloc(total * sizeof(float));
    const double h = 1e-5;

    for (int relu = 0; relu < 2; relu++) {
        ref_bn_forward_train(x, g, b, n, c, hw, BN_EPS, relu, y, mean, var);
        double *ycopy = relu ? xmalloc(total * sizeof(double)) : NULL;
        if (relu) {
            memcpy(ycopy, y, total * sizeof(double));
            /* no pre-activation within reach of the kink (a step moves it by
             * about h |gamma| / sigma < 1e-4) */
            double *pre = xmalloc(total * sizeof(double)), m3[3], v3[3];
            ref_bn_forward_train(x, g, b, n, c, hw, BN_EPS, 0, pre, m3, v3);
            for (size_t i = 0; i < total; i++)
                assert_true(fabs(pre[i]) > 1e-3);
            free(pre);
        }
        ref_bn_backward(x, r, g, mean, var, ycopy, n, c, hw, BN_EPS, dx, dg, db);
        RefBnLoss loss = {.x = x, .g = g, .b = b, .r = r, .y = y, .n = n, .c = c, .hw = hw,
                          .relu = relu};
        for (size_t i = 0; i < total; i++) {
            fd[i] = (float)testutil_central_difference(ref_bn_loss, &loss, x, i, h);
            an[i] = (float)dx[i];
        }
        assert_close(an, fd, total, 1e-7, 1e-6,
                     relu ? "ref diff_src relu vs fd" : "ref diff_src vs fd");
        float fdg[3], fdb[3], ang[3], anb[3];
        for (int ch = 0; ch < c; ch++) {
            fdg[ch] = (float)testutil_central_difference(ref_bn_loss, &loss, g, (size_t)ch, h);
            fdb[ch] = (float)testutil_central_difference(ref_bn_loss, &loss, b, (size_t)ch, h);
            ang[ch] = (float)dg[ch];
            anb[ch] = (float)db[ch];
        }
        assert_close(ang, fdg, 3, 1e-7, 1e-6, "ref diff gamma vs fd");
        assert_close(anb, fdb, 3, 1e-7, 1e-6, "ref diff beta vs fd");
        free(ycopy);
    }
    free(xf), free(rf), free(x), free(r), free(g), free(b), free(y), free(dx), free(fd), free(an);
}

/*
 * The layer's backward against differences of its own float forward, for
 * every input of a 2x3x3x3 batch. Richardson extrapolation of central
 * differences with steps h = 0.05 and h/2 cancels the h^2 term, leaving
 * O(h^4) ~ 1e-5; rounding L = sum r * dst (54 float values near 1, ~1e-6 in
 * all) contributes about (4/3) 1e-6 / (h/2 * 2) + (1/3) 1e-6 / (2h) ~ 3e-5.
 * Hence atol 2e-4 against gradients of order 1.
 */
static void test_bn_finite_differences(void **state)
{
    (void)state;
    BnFixture f;
    fixture_init(&f, 2, 3, 3, 3, dnnl_nchw, 0, 7000);
    size_t total = f.total;
    float *r = xmalloc(total * sizeof(float)), *y = xmalloc(total * sizeof(float));
    ref_fill_normal(r, total, 7001, 1.0);
    batchnorm_forward(&f.l, 1);
    Tensor diff_dst, diff_src;
    ref_tensor_make(&diff_dst, &f.src.md, r);
    tensor_alloc(&diff_src, &f.src.md);
    batchnorm_backward(&f.l, &diff_dst, &diff_src);
    dnn_wait();
    float *dx = xmalloc(total * sizeof(float)), *fd = xmalloc(total * sizeof(float));
    ref_tensor_to_plain(&diff_src, dx);
    const double h = 0.05;
    for (size_t i = 0; i < total; i++) {
        float keep = f.x[i];
        double d[2];
        for (int k = 0; k < 2; k++) {
            float xp = (float)(keep + h / (1 << k)), xm = (float)(keep - h / (1 << k));
            double l[2];
            float xs[2] = {xp, xm};
            for (int e = 0; e < 2; e++) {
                f.x[i] = xs[e];
                ref_tensor_from_plain(&f.src, f.x);
                batchnorm_forward(&f.l, 1);
                dnn_wait();
                ref_tensor_to_plain(&f.l.dst, y);
                l[e] = 0.0;
                for (size_t j = 0; j < total; j++)
                    l[e] += (double)r[j] * y[j];
            }
            d[k] = (l[0] - l[1]) / ((double)xp - xm);
        }
        f.x[i] = keep;
        ref_tensor_from_plain(&f.src, f.x);
        fd[i] = (float)((4 * d[1] - d[0]) / 3);
    }
    assert_close(dx, fd, total, 2e-4, 0.0, "layer diff_src vs finite differences");
    free(r), free(y), free(dx), free(fd);
    tensor_free(&diff_dst);
    tensor_free(&diff_src);
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bn_ref_finite_differences),
        cmocka_unit_test(test_bn_finite_differences),
        cmocka_unit_test(test_bn_tiny_plain_layout),
        cmocka_unit_test(test_bn_sync_layouts),
        cmocka_unit_test(test_bn_inference),
        cmocka_unit_test(test_bn_skip_running_update),
        cmocka_unit_test(test_bn_resnet50_relu),
        cmocka_unit_test(test_bn_resnet50_plain),
    };
    return cmocka_run_group_tests_name("batchnorm", tests, testutil_dnn_setup,
                                       testutil_dnn_teardown);
}
