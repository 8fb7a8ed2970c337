/* ref_kernels.c - naive double-precision reference kernels and test glue. */
#include "ref_kernels.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "rng.h"

/* ---- convolution ---------------------------------------------------------- */

RefConv ref_conv_shape(int n, int ic, int ih, int iw, int oc, int k, int stride, int pad,
                       int groups)
{
    RefConv s = {n, ic, ih, iw, oc, (ih + 2 * pad - k) / stride + 1,
                 (iw + 2 * pad - k) / stride + 1, k, stride, pad, groups};
    return s;
}

size_t ref_conv_src_size(const RefConv *s)
{
    return (size_t)s->n * s->ic * s->ih * s->iw;
}

size_t ref_conv_dst_size(const RefConv *s)
{
    return (size_t)s->n * s->oc * s->oh * s->ow;
}

size_t ref_conv_weights_size(const RefConv *s)
{
    return (size_t)s->oc * (s->ic / s->groups) * s->k * s->k;
}

/* The output columns [lo, hi) whose input column ow * stride - pad + kx lies
 * inside [0, iw). */
static void conv_col_range(int ow, int iw, int stride, int pad, int kx, int *lo, int *hi)
{
    int a = 0;
    while (a < ow && a * stride - pad + kx < 0)
        a++;
    int b = ow;
    while (b > a && (b - 1) * stride - pad + kx >= iw)
        b--;
    *lo = a;
    *hi = b;
}

/*
 * One loop nest serves all three passes: for every (n, oc, ic, ky, kx) and
 * output pixel it pairs dst[n, oc, oy, ox] with src[n, ic, iy, ix] and
 * weights[oc, ic % (IC/G), ky, kx].
 *   mode 0: dst += w * src;  mode 1: diff_src += w * diff_dst;
 *   mode 2: diff_w += diff_dst * src.
 */
static void conv_loops(const RefConv *s, int mode, double *x, double *w, double *y)
{
    int icg = s->ic / s->groups, ocg = s->oc / s->groups, k = s->k;
    for (int n = 0; n < s->n; n++)
        for (int oc = 0; oc < s->oc; oc++) {
            int g = oc / ocg;
            double *yp = y + ((size_t)n * s->oc + oc) * s->oh * s->ow;
            for (int j = 0; j < icg; j++) {
                int ic = g * icg + j;
                double *xp = x + ((size_t)n * s->ic + ic) * s->ih * s->iw;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        double *wp = w + (((size_t)oc * icg + j) * k + ky) * k + kx;
                        int lo, hi;
                        conv_col_range(s->ow, s->iw, s->stride, s->pad, kx, &lo, &hi);
                        double acc = 0.0;
                        for (int oy = 0; oy < s->oh; oy++) {
                            int iy = oy * s->stride - s->pad + ky;
                            if (iy < 0 || iy >= s->ih)
                                continue;
                            /* src column of output column ox: base + ox * stride */
                            ptrdiff_t base = (ptrdiff_t)iy * s->iw - s->pad + kx;
                            double *yr = yp + (size_t)oy * s->ow;
                            if (mode == 0)
                                for (int ox = lo; ox < hi; ox++)
                                    yr[ox] += *wp * xp[base + (ptrdiff_t)ox * s->stride];
                            else if (mode == 1)
                                for (int ox = lo; ox < hi; ox++)
                                    xp[base + (ptrdiff_t)ox * s->stride] += *wp * yr[ox];
                            else
                                for (int ox = lo; ox < hi; ox++)
                                    acc += yr[ox] * xp[base + (ptrdiff_t)ox * s->stride];
                        }
                        if (mode == 2)
                            *wp += acc;
                    }
            }
        }
}

void ref_conv_forward(const RefConv *s, const double *src, const double *weights, double *dst)
{
    memset(dst, 0, ref_conv_dst_size(s) * sizeof *dst);
    conv_loops(s, 0, (double *)src, (double *)weights, dst);
}

void ref_conv_backward_data(const RefConv *s, const double *diff_dst, const double *weights,
                            double *diff_src)
{
    memset(diff_src, 0, ref_conv_src_size(s) * sizeof *diff_src);
    conv_loops(s, 1, diff_src, (double *)weights, (double *)diff_dst);
}

void ref_conv_backward_weights(const RefConv *s, const double *src, const double *diff_dst,
                               double *diff_weights)
{
    memset(diff_weights, 0, ref_conv_weights_size(s) * sizeof *diff_weights);
    conv_loops(s, 2, (double *)src, diff_weights, (double *)diff_dst);
}

/* ---- batch normalisation ------------------------------------------------- */

void ref_bn_forward_train(const double *src, const double *gamma, const double *beta, int n,
                          int c, int hw, double eps, int relu, double *dst, double *mean,
                          double *var)
{
    double m = (double)n * hw;
    for (int ch = 0; ch < c; ch++) {
        double sum = 0.0;
        for (int i = 0; i < n; i++)
            for (int p = 0; p < hw; p++)
                sum += src[((size_t)i * c + ch) * hw + p];
        double mu = sum / m, sq = 0.0;
        for (int i = 0; i < n; i++)
            for (int p = 0; p < hw; p++) {
                double d = src[((size_t)i * c + ch) * hw + p] - mu;
                sq += d * d;
            }
        mean[ch] = mu;
        var[ch] = sq / m;
    }
    ref_bn_forward_infer(src, gamma, beta, mean, var, n, c, hw, eps, relu, dst);
}

void ref_bn_forward_infer(const double *src, const double *gamma, const double *beta,
                          const double *mean, const double *var, int n, int c, int hw,
                          double eps, int relu, double *dst)
{
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++) {
            double inv = 1.0 / sqrt(var[ch] + eps);
            const double *x = src + ((size_t)i * c + ch) * hw;
            double *y = dst + ((size_t)i * c + ch) * hw;
            for (int p = 0; p < hw; p++) {
                double v = gamma[ch] * (x[p] - mean[ch]) * inv + beta[ch];
                y[p] = relu && v < 0.0 ? 0.0 : v;
            }
        }
}

void ref_bn_backward(const double *src, const double *diff_dst, const double *gamma,
                     const double *mean, const double *var, const double *relu_dst, int n,
                     int c, int hw, double eps, double *diff_src, double *diff_gamma,
                     double *diff_beta)
{
    double m = (double)n * hw;
    for (int ch = 0; ch < c; ch++) {
        double inv = 1.0 / sqrt(var[ch] + eps), dg = 0.0, db = 0.0;
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < n; i++) {
                size_t at = ((size_t)i * c + ch) * hw;
                for (int p = 0; p < hw; p++) {
                    /* dy: the gradient at the BN output, before the ReLU */
                    double dy = relu_dst && !(relu_dst[at + p] > 0.0) ? 0.0 : diff_dst[at + p];
                    double xhat = (src[at + p] - mean[ch]) * inv;
                    if (pass == 0) {
                        dg += dy * xhat;
                        db += dy;
                    } else {
                        diff_src[at + p] = gamma[ch] * inv * (dy - db / m - xhat * dg / m);
                    }
                }
            }
        diff_gamma[ch] = dg;
        diff_beta[ch] = db;
    }
}

void ref_bn_update_running(double *running_mean, double *running_var, const double *mean,
                           const double *var, int c, size_t count, double momentum)
{
    for (int ch = 0; ch < c; ch++) {
        double unbiased = var[ch] * (double)count / (double)(count - 1);
        running_mean[ch] = (1.0 - momentum) * running_mean[ch] + momentum * mean[ch];
        running_var[ch] = (1.0 - momentum) * running_var[ch] + momentum * unbiased;
    }
}

/* ---- ReLU and the residual add ----------------------------------------- */

void ref_add_forward(const double *a, const double *b, size_t n, int relu, double *dst)
{
    for (size_t i = 0; i < n; i++) {
        double v = a[i] + b[i];
        dst[i] = relu && v < 0.0 ? 0.0 : v;
    }
}

void ref_relu_backward_from_dst(const double *dst, const double *diff_dst, size_t n,
                                double *diff_src)
{
    for (size_t i = 0; i < n; i++)
        diff_src[i] = dst[i] > 0.0 ? diff_dst[i] : 0.0;
}

/* ---- pooling ---------------------------------------------------------------- */

RefPool ref_pool_shape(int n, int c, int ih, int iw, int k, int stride, int pad)
{
    RefPool s = {n, c, ih, iw, (ih + 2 * pad - k) / stride + 1, (iw + 2 * pad - k) / stride + 1,
                 k, stride, pad};
    return s;
}

/* Index (within the plane) of the first maximum of the window at (oy, ox). */
static size_t maxpool_argmax(const RefPool *s, const double *plane, int oy, int ox)
{
    size_t best = (size_t)-1;
    double v = -INFINITY;
    for (int ky = 0; ky < s->k; ky++)
        for (int kx = 0; kx < s->k; kx++) {
            int iy = oy * s->stride - s->pad + ky, ix = ox * s->stride - s->pad + kx;
            if (iy < 0 || iy >= s->ih || ix < 0 || ix >= s->iw)
                continue;
            size_t at = (size_t)iy * s->iw + ix;
            if (best == (size_t)-1 || plane[at] > v) {
                best = at;
                v = plane[at];
            }
        }
    return best;
}

void ref_maxpool_forward(const RefPool *s, const double *src, double *dst)
{
    for (size_t pl = 0; pl < (size_t)s->n * s->c; pl++) {
        const double *x = src + pl * s->ih * s->iw;
        for (int oy = 0; oy < s->oh; oy++)
            for (int ox = 0; ox < s->ow; ox++)
                dst[(pl * s->oh + oy) * s->ow + ox] = x[maxpool_argmax(s, x, oy, ox)];
    }
}

void ref_maxpool_backward(const RefPool *s, const double *src, const double *diff_dst,
                          double *diff_src)
{
    memset(diff_src, 0, (size_t)s->n * s->c * s->ih * s->iw * sizeof *diff_src);
    for (size_t pl = 0; pl < (size_t)s->n * s->c; pl++) {
        const double *x = src + pl * s->ih * s->iw;
        double *dx = diff_src + pl * s->ih * s->iw;
        for (int oy = 0; oy < s->oh; oy++)
            for (int ox = 0; ox < s->ow; ox++)
                dx[maxpool_argmax(s, x, oy, ox)] += diff_dst[(pl * s->oh + oy) * s->ow + ox];
    }
}

void ref_avgpool_global_forward(const double *src, int n, int c, int hw, double *dst)
{
    for (size_t pl = 0; pl < (size_t)n * c; pl++) {
        double sum = 0.0;
        for (int p = 0; p < hw; p++)
            sum += src[pl * hw + p];
        dst[pl] = sum / hw;
    }
}

void ref_avgpool_global_backward(const double *diff_dst, int n, int c, int hw,
                                 double *diff_src)
{
    for (size_t pl = 0; pl < (size_t)n * c; pl++)
        for (int p = 0; p < hw; p++)
            diff_src[pl * hw + p] = diff_dst[pl] / hw;
}

/* ---- fully connected ------------------------------------------------------ */

void ref_linear_forward(const double *src, const double *weights, const double *bias, int n,
                        int in, int out, double *dst)
{
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double sum = bias[o];
            for (int j = 0; j < in; j++)
                sum += src[(size_t)i * in + j] * weights[(size_t)o * in + j];
            dst[(size_t)i * out + o] = sum;
        }
}

void ref_linear_backward(const double *src, const double *weights, const double *diff_dst,
                         int n, int in, int out, double *diff_src, double *diff_weights,
                         double *diff_bias)
{
    if (diff_src)
        for (int i = 0; i < n; i++)
            for (int j = 0; j < in; j++) {
                double sum = 0.0;
                for (int o = 0; o < out; o++)
                    sum += diff_dst[(size_t)i * out + o] * weights[(size_t)o * in + j];
                diff_src[(size_t)i * in + j] = sum;
            }
    if (diff_weights)
        for (int o = 0; o < out; o++)
            for (int j = 0; j < in; j++) {
                double sum = 0.0;
                for (int i = 0; i < n; i++)
                    sum += diff_dst[(size_t)i * out + o] * src[(size_t)i * in + j];
                diff_weights[(size_t)o * in + j] = sum;
            }
    if (diff_bias)
        for (int o = 0; o < out; o++) {
            double sum = 0.0;
            for (int i = 0; i < n; i++)
                sum += diff_dst[(size_t)i * out + o];
            diff_bias[o] = sum;
        }
}

/* ---- loss ----------------------------------------------------------------- */

double ref_softmax_xent(const double *logits, const int32_t *labels, int n, int k, double eps,
                        double *diff)
{
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        const double *x = logits + (size_t)i * k;
        double mx = x[0];
        for (int j = 1; j < k; j++)
            if (x[j] > mx)
                mx = x[j];
        double z = 0.0;
        for (int j = 0; j < k; j++)
            z += exp(x[j] - mx);
        for (int j = 0; j < k; j++) {
            double p = exp(x[j] - mx) / z;
            double t = (j == labels[i] ? 1.0 - eps : 0.0) + eps / k;
            total -= t * log(p);
            if (diff)
                diff[(size_t)i * k + j] = p - t;
        }
    }
    return total;
}

/* ---- option-A shortcut ------------------------------------------------ */

void ref_shortcut_a_forward(const double *src, int n, int c, int ih, int iw, int c_out, int oh,
                            int ow, int stride, int pad_before, double *dst)
{
    for (int i = 0; i < n; i++)
        for (int co = 0; co < c_out; co++)
            for (int y = 0; y < oh; y++)
                for (int x = 0; x < ow; x++) {
                    int ci = co - pad_before;
                    double v = 0.0;
                    if (ci >= 0 && ci < c)
                        v = src[(((size_t)i * c + ci) * ih + (size_t)y * stride) * iw +
                                (size_t)x * stride];
                    dst[(((size_t)i * c_out + co) * oh + y) * ow + x] = v;
                }
}

void ref_shortcut_a_backward(const double *diff_dst, int n, int c, int ih, int iw, int c_out,
                             int oh, int ow, int stride, int pad_before, double *diff_src)
{
    memset(diff_src, 0, (size_t)n * c * ih * iw * sizeof *diff_src);
    for (int i = 0; i < n; i++)
        for (int ci = 0; ci < c; ci++)
            for (int y = 0; y < oh; y++)
                for (int x = 0; x < ow; x++)
                    diff_src[(((size_t)i * c + ci) * ih + (size_t)y * stride) * iw +
                             (size_t)x * stride] +=
                        diff_dst[(((size_t)i * c_out + ci + pad_before) * oh + y) * ow + x];
}

/* ---- test glue ------------------------------------------------------------ */

void ref_fill_normal(float *x, size_t n, uint64_t seed, double scale)
{
    Rng r;
    rng_seed(&r, seed, 0x7e57, 0);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(scale * rng_normal(&r));
}

void ref_fill_distinct(float *x, size_t n, uint64_t seed, double lo, double hi)
{
    Rng r;
    rng_seed(&r, seed, 0x7e57, 2);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(lo + (hi - lo) * ((double)i + 0.5) / (double)n);
    for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
        size_t j = (size_t)rng_below(&r, i);
        float t = x[i - 1];
        x[i - 1] = x[j];
        x[j] = t;
    }
}

void ref_fill_uniform(float *x, size_t n, uint64_t seed, double lo, double hi)
{
    Rng r;
    rng_seed(&r, seed, 0x7e57, 1);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(lo + (hi - lo) * rng_uniform(&r));
}

double *ref_to_double(const float *x, size_t n)
{
    double *d = xmalloc((n ? n : 1) * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

float *ref_to_float(const double *x, size_t n)
{
    float *f = xmalloc((n ? n : 1) * sizeof *f);
    for (size_t i = 0; i < n; i++)
        f[i] = (float)x[i];
    return f;
}

double ref_rms(const double *x, size_t n)
{
    double sq = 0.0;
    for (size_t i = 0; i < n; i++)
        sq += x[i] * x[i];
    return n ? sqrt(sq / (double)n) : 0.0;
}

double ref_rms_nonzero(const double *x, size_t n)
{
    double sq = 0.0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (x[i] != 0.0) {
            sq += x[i] * x[i];
            k++;
        }
    return k ? sqrt(sq / (double)k) : 0.0;
}

double ref_tol(size_t len, double scale)
{
    double u = FLT_EPSILON / 2;
    return 6.0 * u * sqrt((double)(len ? len : 1)) * scale;
}

dnnl_memory_desc_t ref_plain_md(int ndims, const dnnl_dim_t *dims)
{
    static const dnnl_format_tag_t tags[] = {dnnl_format_tag_undef, dnnl_a, dnnl_ab, dnnl_abc,
                                             dnnl_abcd, dnnl_abcde};
    CHECK(ndims >= 1 && ndims <= 5, "no plain tag for %d dimensions", ndims);
    return dnn_md_make(ndims, dims, tags[ndims]);
}

static void plain_copy(const Tensor *t, float *plain, int to_plain)
{
    dnnl_memory_desc_t pmd = ref_plain_md(t->md.ndims, t->md.dims);
    Tensor p;
    tensor_view(&p, &pmd, plain);
    Reorder r;
    if (to_plain) {
        dnn_reorder_init(&r, &t->md, &pmd, 0);
        dnn_reorder_run_into(&r, t, &p);
    } else {
        dnn_reorder_init(&r, &pmd, &t->md, 0);
        dnn_reorder_run_into(&r, &p, t);
    }
    dnn_wait();
    dnn_reorder_free(&r);
    tensor_free(&p);
}

void ref_tensor_to_plain(const Tensor *t, float *out)
{
    plain_copy(t, out, 1);
}

void ref_tensor_from_plain(Tensor *t, const float *in)
{
    plain_copy(t, (float *)in, 0);
}

void ref_tensor_make(Tensor *t, const dnnl_memory_desc_t *md, const float *plain)
{
    tensor_alloc(t, md);
    ref_tensor_from_plain(t, plain);
}
