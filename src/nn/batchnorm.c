/* batchnorm.c - BatchNorm (+ fused ReLU) forward/backward on oneDNN. */
#include "batchnorm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

static int bn_param(Params *p, const char *name, const char *suffix, ParamKind kind, int c)
{
    char key[PARAM_NAME_MAX];
    snprintf(key, sizeof key, "%s.%s", name, suffix);
    int64_t dims[1] = {c};
    dnnl_dim_t d = c;
    dnnl_memory_desc_t md = dnn_md_make(1, &d, dnnl_x);
    return params_add(p, key, kind, 1, dims, &md);
}

void batchnorm_init(BatchNormLayer *l, const Tensor *src, int fuse_relu, Params *p,
                    const char *name)
{
    memset(l, 0, sizeof *l);
    l->src = src;
    l->channels = (int)src->md.dims[1];
    l->fuse_relu = fuse_relu;
    l->count = (size_t)(src->md.dims[0] * src->md.dims[2] * src->md.dims[3]);

    int w = bn_param(p, name, "weight", PARAM_BN_WEIGHT, l->channels);
    int b = bn_param(p, name, "bias", PARAM_BN_BIAS, l->channels);
    params_bind(p, w, BUF_VALUE, &l->scale);
    params_bind(p, b, BUF_VALUE, &l->shift);
    params_bind(p, w, BUF_GRAD, &l->diff_scale);
    params_bind(p, b, BUF_GRAD, &l->diff_shift);
    l->state = params_bn_state_add(p, name, (size_t)l->channels);
    params_bn_state_bind(p, l->state, &l->running_mean, &l->running_var);

    unsigned base = dnnl_use_scale | dnnl_use_shift | (fuse_relu ? dnnl_fuse_norm_relu : 0);
    dnnl_batch_normalization_desc_t d;
    DNNL_CHECK(dnnl_batch_normalization_forward_desc_init(&d, dnnl_forward_training, &src->md,
                                                          BN_EPS, base));
    dnnl_primitive_desc_t train_pd = dnn_pd_create(&d, NULL, NULL);
    l->fwd_train = dnn_primitive_create(train_pd);
    dnnl_memory_desc_t stat_md = dnn_pd_md(train_pd, dnnl_query_dst_md, 1);
    tensor_alloc(&l->mean, &stat_md);
    tensor_alloc(&l->var, &stat_md);
    tensor_alloc(&l->dst, &src->md);
    if (fuse_relu) {
        dnnl_memory_desc_t ws = dnn_pd_md(train_pd, dnnl_query_workspace_md, 0);
        tensor_alloc(&l->workspace, &ws);
    }

    DNNL_CHECK(dnnl_batch_normalization_forward_desc_init(&d, dnnl_forward_inference, &src->md,
                                                          BN_EPS, base | dnnl_use_global_stats));
    dnnl_primitive_desc_t infer_pd = dnn_pd_create(&d, NULL, NULL);
    l->fwd_infer = dnn_primitive_create(infer_pd);
    dnn_pd_destroy(&infer_pd);

    DNNL_CHECK(dnnl_batch_normalization_backward_desc_init(&d, dnnl_backward, &src->md,
                                                           &src->md, BN_EPS, base));
    dnnl_primitive_desc_t bwd_pd = dnn_pd_create(&d, NULL, train_pd);
    l->bwd = dnn_primitive_create(bwd_pd);
    dnn_pd_destroy(&bwd_pd);
    dnn_pd_destroy(&train_pd);
}

void batchnorm_update_running(float *running_mean, float *running_var, const float *mean,
                              const float *var, size_t channels, size_t count)
{
    double unbias = count > 1 ? (double)count / (double)(count - 1) : 1.0;
    for (size_t c = 0; c < channels; c++) {
        running_mean[c] = (1.0f - BN_MOMENTUM) * running_mean[c] + BN_MOMENTUM * mean[c];
        running_var[c] =
            (1.0f - BN_MOMENTUM) * running_var[c] + BN_MOMENTUM * (float)(var[c] * unbias);
    }
}

static dnnl_primitive_t bn_primitive(const BatchNormLayer *l, dnnl_prop_kind_t kind,
                                     unsigned flags, const_dnnl_primitive_desc_t hint)
{
    dnnl_batch_normalization_desc_t d;
    if (kind == dnnl_backward)
        DNNL_CHECK(dnnl_batch_normalization_backward_desc_init(&d, kind, &l->src->md,
                                                               &l->src->md, BN_EPS, flags));
    else
        DNNL_CHECK(dnnl_batch_normalization_forward_desc_init(&d, kind, &l->src->md, BN_EPS,
                                                              flags));
    dnnl_primitive_desc_t pd = dnn_pd_create(&d, NULL, hint);
    dnnl_primitive_t p = dnn_primitive_create(pd);
    dnn_pd_destroy(&pd);
    return p;
}

/* The arguments of a BN forward that normalises src into dst with the given
 * statistics, then scales and shifts; the caller adds the workspace. */
static void bn_forward_args(DnnArgs *a, const Tensor *src, const Tensor *dst, const Tensor *scale,
                            const Tensor *shift, const Tensor *mean, const Tensor *var)
{
    dnn_args_clear(a);
    dnn_args_add(a, DNNL_ARG_SRC, src->mem);
    dnn_args_add(a, DNNL_ARG_DST, dst->mem);
    dnn_args_add(a, DNNL_ARG_SCALE, scale->mem);
    dnn_args_add(a, DNNL_ARG_SHIFT, shift->mem);
    dnn_args_add(a, DNNL_ARG_MEAN, mean->mem);
    dnn_args_add(a, DNNL_ARG_VARIANCE, var->mem);
}

/* The arguments of the layer's backward over its batch statistics, local
 * or synchronised. */
static void bn_backward_args(const BatchNormLayer *l, const Tensor *diff_dst,
                             const Tensor *diff_src, DnnArgs *a)
{
    dnn_args_clear(a);
    dnn_args_add(a, DNNL_ARG_SRC, l->src->mem);
    dnn_args_add(a, DNNL_ARG_MEAN, l->mean.mem);
    dnn_args_add(a, DNNL_ARG_VARIANCE, l->var.mem);
    dnn_args_add(a, DNNL_ARG_DIFF_DST, diff_dst->mem);
    dnn_args_add(a, DNNL_ARG_SCALE, l->scale.mem);
    dnn_args_add(a, DNNL_ARG_SHIFT, l->shift.mem); /* oneDNN 2.6 requires it, unused */
    dnn_args_add(a, DNNL_ARG_DIFF_SRC, diff_src->mem);
    dnn_args_add(a, DNNL_ARG_DIFF_SCALE, l->diff_scale.mem);
    dnn_args_add(a, DNNL_ARG_DIFF_SHIFT, l->diff_shift.mem);
    if (l->fuse_relu)
        dnn_args_add(a, DNNL_ARG_WORKSPACE, l->workspace.mem);
}

/* Where channel c of pixel (n, h, w) is: data + n*stride[0] +
 * (c / block)*stride[1] + h*stride[2] + w*stride[3] + c % block. Covers the
 * plain layouts (nchw: block 1; nhwc: one block of all channels) and those
 * that block only the channels (nChw8c, nChw16c). */
typedef struct {
    int64_t dims[4], stride[4];
    int block;
} ChannelWalk;

static ChannelWalk channel_walk(const dnnl_memory_desc_t *md)
{
    const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
    int blocked = b->inner_nblks == 1 && b->inner_idxs[0] == 1;
    if (md->format_kind != dnnl_blocked || md->ndims != 4 || md->offset0 != 0 ||
        (b->inner_nblks != 0 && !blocked))
        fail_local(__FILE__, __LINE__, "sync-bn",
                   "cannot read a BatchNorm input in this memory layout (format kind %d, %d "
                   "inner blocks); train without --sync-bn",
                   (int)md->format_kind, (int)b->inner_nblks);
    ChannelWalk g;
    for (int i = 0; i < 4; i++) {
        g.dims[i] = md->dims[i];
        g.stride[i] = b->strides[i];
    }
    g.block = blocked ? (int)b->inner_blks[0] : 1;
    if (!blocked && g.stride[1] == 1) /* channels innermost */
        g.block = (int)g.dims[1];
    return g;
}

void batchnorm_enable_sync(BatchNormLayer *l, const BnSync *sync)
{
    l->sync = sync;
    unsigned base = dnnl_use_scale | dnnl_use_shift | dnnl_use_global_stats;
    unsigned relu = l->fuse_relu ? dnnl_fuse_norm_relu : 0;
    dnnl_batch_normalization_desc_t d;
    DNNL_CHECK(dnnl_batch_normalization_forward_desc_init(&d, dnnl_forward_training,
                                                          &l->src->md, BN_EPS, base | relu));
    dnnl_primitive_desc_t fwd_pd = dnn_pd_create(&d, NULL, NULL);
    l->fwd_global = dnn_primitive_create(fwd_pd);
    l->bwd_global = bn_primitive(l, dnnl_backward, base | relu, fwd_pd);
    dnn_pd_destroy(&fwd_pd);
    /* correction = alpha xhat + beta: a BN with the batch statistics */
    l->affine = bn_primitive(l, dnnl_forward_inference, base, NULL);
    dnnl_binary_desc_t bd;
    DNNL_CHECK(dnnl_binary_desc_init(&bd, dnnl_binary_sub, &l->src->md, &l->src->md,
                                     &l->src->md));
    dnnl_primitive_desc_t sub_pd = dnn_pd_create(&bd, NULL, NULL);
    l->subtract = dnn_primitive_create(sub_pd);
    dnn_pd_destroy(&sub_pd);
    tensor_alloc(&l->correction, &l->src->md);
    tensor_alloc(&l->alpha, &l->mean.md);
    tensor_alloc(&l->beta, &l->mean.md);
    l->moments = xcalloc(2 * (size_t)l->channels, sizeof(double));
    channel_walk(&l->src->md); /* fails here, at set-up, on a layout it cannot walk */
}

/* Per-channel mean and M2 of this rank's input, in double around a per-channel
 * shift (the channel's first value), so nothing cancels and the sums do not
 * depend on how the batch is split. */
static void local_moments(const BatchNormLayer *l, double *mean, double *m2)
{
    ChannelWalk g = channel_walk(&l->src->md);
    const float *x = l->src->data;
    int channels = l->channels, nblocks = (channels + g.block - 1) / g.block;
    double *sum = xcalloc(2 * (size_t)channels, sizeof *sum), *sq = sum + channels;
#pragma omp parallel for schedule(static)
    for (int cb = 0; cb < nblocks; cb++) {
        int c0 = cb * g.block, c1 = c0 + g.block < channels ? c0 + g.block : channels;
        const float *xb = x + (size_t)cb * g.stride[1];
        for (int64_t n = 0; n < g.dims[0]; n++)
            for (int64_t h = 0; h < g.dims[2]; h++)
                for (int64_t w = 0; w < g.dims[3]; w++) {
                    const float *px = xb + n * g.stride[0] + h * g.stride[2] + w * g.stride[3];
                    for (int c = c0; c < c1; c++) {
                        double v = (double)px[c - c0] - (double)xb[c - c0];
                        sum[c] += v;
                        sq[c] += v * v;
                    }
                }
        for (int c = c0; c < c1; c++) {
            double shift = xb[c - c0], cnt = (double)l->count;
            mean[c] = shift + sum[c] / cnt;
            m2[c] = sq[c] - sum[c] * sum[c] / cnt;
            if (m2[c] < 0)
                m2[c] = 0;
        }
    }
    free(sum);
}

static void batchnorm_forward_sync(BatchNormLayer *l)
{
    int channels = l->channels;
    double *mean = l->moments, *m2 = l->moments + channels;
    dnn_wait(); /* the input is read on the host */
    local_moments(l, mean, m2);
    l->global_count = l->sync->combine(l->sync->ctx, mean, m2, channels, (double)l->count);
    for (int c = 0; c < channels; c++) {
        l->mean.data[c] = (float)mean[c];
        l->var.data[c] = (float)(m2[c] / l->global_count);
    }
    DnnArgs a;
    bn_forward_args(&a, l->src, &l->dst, &l->scale, &l->shift, &l->mean, &l->var);
    if (l->fuse_relu)
        dnn_args_add(&a, DNNL_ARG_WORKSPACE, l->workspace.mem);
    dnn_execute(l->fwd_global, &a);
    if (!l->skip_running_update)
        batchnorm_update_running(l->running_mean.data, l->running_var.data, l->mean.data,
                                 l->var.data, (size_t)channels, (size_t)l->global_count);
}

/* This rank's S1 = sum dy and S2' = sum dy (x - mean) per channel, in double
 * (S2 = S2' / sigma). With the ReLU fused, dy counts only where the output is
 * positive, as in oneDNN's backward: the output is still intact, as what
 * writes over a block's branch output after the forward (drop-path and the
 * in-place residual add) is given only BNs without a fused ReLU. */
static void local_grad_sums(const BatchNormLayer *l, const Tensor *diff_dst, double *s1,
                            double *s2)
{
    ChannelWalk g = channel_walk(&l->src->md);
    ChannelWalk gd = channel_walk(&diff_dst->md);
    CHECK(memcmp(g.stride, gd.stride, sizeof g.stride) == 0 && g.block == gd.block,
          "batchnorm: the output gradient is not in the input's layout");
    const float *x = l->src->data, *dy = diff_dst->data, *y = l->dst.data;
    int channels = l->channels, nblocks = (channels + g.block - 1) / g.block;
    int relu = l->fuse_relu;
#pragma omp parallel for schedule(static)
    for (int cb = 0; cb < nblocks; cb++) {
        int c0 = cb * g.block, c1 = c0 + g.block < channels ? c0 + g.block : channels;
        for (int c = c0; c < c1; c++)
            s1[c] = s2[c] = 0;
        for (int64_t n = 0; n < g.dims[0]; n++)
            for (int64_t h = 0; h < g.dims[2]; h++)
                for (int64_t w = 0; w < g.dims[3]; w++) {
                    size_t at = (size_t)(cb * g.stride[1] + n * g.stride[0] + h * g.stride[2] +
                                         w * g.stride[3]);
                    for (int c = c0; c < c1; c++) {
                        size_t i = at + (size_t)(c - c0);
                        if (relu && !(y[i] > 0.0f))
                            continue;
                        double d = dy[i];
                        s1[c] += d;
                        s2[c] += d * ((double)x[i] - (double)l->mean.data[c]);
                    }
                }
    }
}

/* With statistics over N values, dx = gamma/sigma (dy - S1/N - xhat S2/N),
 * S1 = sum dy, S2 = sum dy xhat over all ranks. oneDNN's constant-statistics
 * backward gives gamma/sigma dy; the correction is a BatchNorm of x with the
 * same statistics, scale gamma S2/(N sigma) and shift gamma S1/(N sigma), so
 * x - mean is formed before anything is scaled. */
static void batchnorm_backward_sync(BatchNormLayer *l, const Tensor *diff_dst, Tensor *diff_src)
{
    int channels = l->channels;
    double *s1 = l->moments, *s2 = l->moments + channels;
    dnn_wait(); /* dy is read on the host, before an in-place backward overwrites it */
    local_grad_sums(l, diff_dst, s1, s2);
    for (int c = 0; c < channels; c++)
        s2[c] /= sqrt((double)l->var.data[c] + BN_EPS);
    DnnArgs a;
    bn_backward_args(l, diff_dst, diff_src, &a);
    dnn_execute(l->bwd_global, &a);
    dnn_wait();
    /* The gradient buffers keep this rank's sums: the gradient allreduce adds them up. */
    for (int c = 0; c < channels; c++) {
        l->diff_scale.data[c] = (float)s2[c];
        l->diff_shift.data[c] = (float)s1[c];
    }
    l->sync->sum(l->sync->ctx, s1, s2, channels);
    double n = l->global_count;
    for (int c = 0; c < channels; c++) {
        double k = l->scale.data[c] / (n * sqrt((double)l->var.data[c] + BN_EPS));
        l->alpha.data[c] = (float)(k * s2[c]);
        l->beta.data[c] = (float)(k * s1[c]);
    }
    bn_forward_args(&a, l->src, &l->correction, &l->alpha, &l->beta, &l->mean, &l->var);
    dnn_execute(l->affine, &a);
    dnn_args_clear(&a);
    dnn_args_add(&a, DNNL_ARG_SRC_0, diff_src->mem);
    dnn_args_add(&a, DNNL_ARG_SRC_1, l->correction.mem);
    dnn_args_add(&a, DNNL_ARG_DST, diff_src->mem);
    dnn_execute(l->subtract, &a);
}

void batchnorm_forward(BatchNormLayer *l, int training)
{
    if (training && l->sync) {
        batchnorm_forward_sync(l);
        return;
    }
    DnnArgs a;
    if (!training) {
        bn_forward_args(&a, l->src, &l->dst, &l->scale, &l->shift, &l->running_mean,
                        &l->running_var);
        dnn_execute(l->fwd_infer, &a);
        return;
    }
    bn_forward_args(&a, l->src, &l->dst, &l->scale, &l->shift, &l->mean, &l->var);
    if (l->fuse_relu)
        dnn_args_add(&a, DNNL_ARG_WORKSPACE, l->workspace.mem);
    dnn_execute(l->fwd_train, &a);
    if (!l->skip_running_update)
        batchnorm_update_running(l->running_mean.data, l->running_var.data, l->mean.data,
                                 l->var.data, (size_t)l->channels, l->count);
}

void batchnorm_backward(BatchNormLayer *l, const Tensor *diff_dst, Tensor *diff_src)
{
    if (l->sync) {
        batchnorm_backward_sync(l, diff_dst, diff_src);
        return;
    }
    DnnArgs a;
    bn_backward_args(l, diff_dst, diff_src, &a);
    dnn_execute(l->bwd, &a);
}

void batchnorm_free(BatchNormLayer *l)
{
    dnn_primitive_destroy(&l->fwd_train);
    dnn_primitive_destroy(&l->fwd_infer);
    dnn_primitive_destroy(&l->bwd);
    dnn_primitive_destroy(&l->fwd_global);
    dnn_primitive_destroy(&l->bwd_global);
    dnn_primitive_destroy(&l->affine);
    dnn_primitive_destroy(&l->subtract);
    free(l->moments);
    Tensor *ts[] = {&l->dst, &l->scale, &l->shift, &l->diff_scale, &l->diff_shift, &l->mean,
                    &l->var, &l->running_mean, &l->running_var, &l->workspace, &l->correction,
                    &l->alpha, &l->beta};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        if (ts[i]->mem)
            tensor_free(ts[i]);
}
