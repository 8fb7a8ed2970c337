/*
 * ref_kernels.h - naive reference kernels that the unit tests compare the
 * oneDNN layers against. Everything is plain row-major (NCHW activations,
 * OIHW weights with PyTorch's grouped shape (OC, IC/G, K, K), (N, C) and
 * (K, C) matrices) and computed in double, straight from the definitions,
 * so a reference result carries no rounding error worth speaking of next to
 * float32 results. Gradients are overwritten, never accumulated.
 *
 * A second, small section is test glue: deterministic random fills,
 * float <-> double copies, the float32 tolerance rule, and plain <-> oneDNN
 * tensor copies so a test can feed and read layers in any layout.
 */
#ifndef RESNET_REF_KERNELS_H
#define RESNET_REF_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "dnn.h"

/* ---- convolution (no bias) ---------------------------------------------- */

typedef struct {
    int n, ic, ih, iw;  /* src (N, IC, IH, IW) */
    int oc, oh, ow;     /* dst (N, OC, OH, OW) */
    int k, stride, pad, groups;
} RefConv;

/* Fills in OH and OW as PyTorch computes them: (I + 2 pad - K) / stride + 1. */
RefConv ref_conv_shape(int n, int ic, int ih, int iw, int oc, int k, int stride, int pad,
                       int groups);
size_t ref_conv_src_size(const RefConv *s);     /* N*IC*IH*IW */
size_t ref_conv_dst_size(const RefConv *s);     /* N*OC*OH*OW */
size_t ref_conv_weights_size(const RefConv *s); /* OC*(IC/G)*K*K */

/* dst (N, OC, OH, OW) = sum over (IC/G, K, K) of src * weights. */
void ref_conv_forward(const RefConv *s, const double *src, const double *weights, double *dst);
/* diff_src (N, IC, IH, IW) from diff_dst (N, OC, OH, OW). */
void ref_conv_backward_data(const RefConv *s, const double *diff_dst, const double *weights,
                            double *diff_src);
/* diff_weights (OC, IC/G, K, K) from src and diff_dst. */
void ref_conv_backward_weights(const RefConv *s, const double *src, const double *diff_dst,
                               double *diff_weights);

/* ---- batch normalisation, src (N, C, HW) ------------------------------- */

/* Training: batch mean and biased variance per channel; dst = gamma (x -
 * mean) / sqrt(var + eps) + beta, then max(0, .) when relu is set. */
void ref_bn_forward_train(const double *src, const double *gamma, const double *beta, int n,
                          int c, int hw, double eps, int relu, double *dst, double *mean,
                          double *var);
/* Inference with given (running) statistics. */
void ref_bn_forward_infer(const double *src, const double *gamma, const double *beta,
                          const double *mean, const double *var, int n, int c, int hw,
                          double eps, int relu, double *dst);
/* Backward of ref_bn_forward_train with the batch statistics. relu_dst:
 * NULL without the fused ReLU, else the forward's dst, whose positive
 * entries are exactly where the pre-activation was positive (taking the
 * mask from the layer under test keeps a pre-activation within rounding of
 * 0 from flipping it; the forward check covers dst itself). */
void ref_bn_backward(const double *src, const double *diff_dst, const double *gamma,
                     const double *mean, const double *var, const double *relu_dst, int n,
                     int c, int hw, double eps, double *diff_src, double *diff_gamma,
                     double *diff_beta);
/* PyTorch: running = (1 - momentum) running + momentum batch, with the
 * unbiased variance var * count / (count - 1). */
void ref_bn_update_running(double *running_mean, double *running_var, const double *mean,
                           const double *var, int c, size_t count, double momentum);

/* ---- ReLU and the residual add ----------------------------------------- */

/* dst = a + b, then max(0, .) when relu is set. */
void ref_add_forward(const double *a, const double *b, size_t n, int relu, double *dst);
/* diff_src = diff_dst where dst > 0, else 0. */
void ref_relu_backward_from_dst(const double *dst, const double *diff_dst, size_t n,
                                double *diff_src);

/* ---- pooling ------------------------------------------------------------ */

typedef struct {
    int n, c, ih, iw, oh, ow;
    int k, stride, pad;
} RefPool;

RefPool ref_pool_shape(int n, int c, int ih, int iw, int k, int stride, int pad);
/* Max over the window, padding excluded (it never wins). */
void ref_maxpool_forward(const RefPool *s, const double *src, double *dst);
/* The gradient goes to the first maximum of each window in row-major window
 * order; windows that overlap add up. */
void ref_maxpool_backward(const RefPool *s, const double *src, const double *diff_dst,
                          double *diff_src);
/* (N, C, HW) -> (N, C) mean, and its backward diff_dst / HW everywhere. */
void ref_avgpool_global_forward(const double *src, int n, int c, int hw, double *dst);
void ref_avgpool_global_backward(const double *diff_dst, int n, int c, int hw,
                                 double *diff_src);

/* ---- fully connected ----------------------------------------------------- */

/* dst (N, K) = src (N, C) weights^T (C, K) + bias (K). */
void ref_linear_forward(const double *src, const double *weights, const double *bias, int n,
                        int in, int out, double *dst);
/* Any output pointer may be NULL. */
void ref_linear_backward(const double *src, const double *weights, const double *diff_dst,
                         int n, int in, int out, double *diff_src, double *diff_weights,
                         double *diff_bias);

/* ---- loss ----------------------------------------------------------------- */

/* Summed softmax cross-entropy over n rows of k logits against the target
 * (1 - eps) onehot + eps / k; diff (may be NULL) receives d(sum)/d(logits)
 * = softmax - target. */
double ref_softmax_xent(const double *logits, const int32_t *labels, int n, int k, double eps,
                        double *diff);

/* ---- option-A shortcut ------------------------------------------------ */

/* dst (N, C', OH, OW) holds src[:, :, ::stride, ::stride] at channels
 * [pad_before, pad_before + C) and zeros elsewhere. */
void ref_shortcut_a_forward(const double *src, int n, int c, int ih, int iw, int c_out, int oh,
                            int ow, int stride, int pad_before, double *dst);
void ref_shortcut_a_backward(const double *diff_dst, int n, int c, int ih, int iw, int c_out,
                             int oh, int ow, int stride, int pad_before, double *diff_src);

/* ---- test glue ------------------------------------------------------------ */

/* Deterministic N(0, scale^2) / U[lo, hi) values from the project's rng. */
void ref_fill_normal(float *x, size_t n, uint64_t seed, double scale);
void ref_fill_uniform(float *x, size_t n, uint64_t seed, double lo, double hi);
/* n distinct values evenly spread over (lo, hi), shuffled: no ties for
 * max-pool to break differently (needs n well below 2^24). */
void ref_fill_distinct(float *x, size_t n, uint64_t seed, double lo, double hi);
/* Fresh xmalloc'd copies (free with free()). */
double *ref_to_double(const float *x, size_t n);
float *ref_to_float(const double *x, size_t n);
double ref_rms(const double *x, size_t n);
/* The rms of the non-zero entries (0 if none): the scale of a result some
 * of whose entries are structurally zero, e.g. the pixels a strided 1x1
 * convolution skips. */
double ref_rms_nonzero(const double *x, size_t n);

/*
 * Tolerance of a float32 result y = sum of `len` terms against an exact
 * reference. Rounding each partial sum contributes about u |partial| (unit
 * roundoff u = FLT_EPSILON / 2); with random-signed terms the partials grow
 * like sqrt(i) and the errors add in quadrature, giving a standard deviation
 * of about u sqrt(len / 6) rms(y). The maximum over up to ~10^7 outputs
 * stays within 6 standard deviations, so 6 u sqrt(len) scale bounds it with
 * a margin of about 2.5 (blocked and FMA summation only do better). Tests
 * pass ref_tol(len, rms of the exact result) as atol and ref_tol(len, 1) as
 * rtol: the partial sums of an unusually large output are about as large as
 * the output itself, so its rounding grows with |y| too. len >= 1.
 */
double ref_tol(size_t len, double scale);

/* Plain float arrays <-> a Tensor in any layout (a one-off reorder). */
void ref_tensor_to_plain(const Tensor *t, float *out);
void ref_tensor_from_plain(Tensor *t, const float *in);
/* A tensor of md's dims in md's layout, filled from plain values. */
void ref_tensor_make(Tensor *t, const dnnl_memory_desc_t *md, const float *plain);
/* dnn_md_make with the plain row-major tag for ndims (1-5). */
dnnl_memory_desc_t ref_plain_md(int ndims, const dnnl_dim_t *dims);

#endif
