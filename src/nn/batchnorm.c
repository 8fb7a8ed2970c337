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
    dnnl_memory_desc_t md = md_make(1, &d, dnnl_x);
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
    l->state = bn_state_add(p, name, (size_t)l->channels);
    bn_state_bind(p, l->state, &l->running_mean, &l->running_var);

    unsigned base = dnnl_use_scale | dnnl_use_shift | (fuse_relu ? dnnl_fuse_norm_relu : 0);
    dnnl_batch_normalization_desc_t d;
    DNNL_CHECK(dnnl_batch_normalization_forward_desc_init(&d, dnnl_forward_training, &src->md,
                                                          BN_EPS, base));
    dnnl_primitive_desc_t train_pd = dnn_pd(&d, NULL, NULL);
    l->fwd_train = dnn_primitive(train_pd);
    dnnl_memory_desc_t stat_md = pd_md(train_pd, dnnl_query_dst_md, 1);
    tensor_alloc(&l->mean, &stat_md);
    tensor_alloc(&l->var, &stat_md);
    tensor_alloc(&l->dst, &src->md);
    if (fuse_relu) {
        dnnl_memory_desc_t ws = pd_md(train_pd, dnnl_query_workspace_md, 0);
        tensor_alloc(&l->workspace, &ws);
    }

    DNNL_CHECK(dnnl_batch_normalization_forward_desc_init(&d, dnnl_forward_inference, &src->md,
                                                          BN_EPS, base | dnnl_use_global_stats));
    dnnl_primitive_desc_t infer_pd = dnn_pd(&d, NULL, NULL);
    l->fwd_infer = dnn_primitive(infer_pd);
    pd_destroy(&infer_pd);

    DNNL_CHECK(dnnl_batch_normalization_backward_desc_init(&d, dnnl_backward, &src->md,
                                                           &src->md, BN_EPS, base));
    dnnl_primitive_desc_t bwd_pd = dnn_pd(&d, NULL, train_pd);
    l->bwd = dnn_primitive(bwd_pd);
    pd_destroy(&bwd_pd);
    pd_destroy(&train_pd);
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
    dnnl_primitive_desc_t pd = dnn_pd(&d, NULL, hint);
    dnnl_primitive_t p = dnn_primitive(pd);
    pd_destroy(&pd);
    return p;
}

void batchnorm_enable_sync(BatchNormLayer *l, const BnSync *sync)
{
    l->sync = sync;
    unsigned base = dnnl_use_scale | dnnl_use_shift | dnnl_use_global_stats;
    unsigned relu = l->fuse_relu ? dnnl_fuse_norm_relu : 0;
    dnnl_batch_normalization_desc_t d;
    DNNL_CHECK(dnnl_batch_normalization_forward_desc_init(&d, dnnl_forward_training,
                                                          &l->src->md, BN_EPS, base | relu));
    dnnl_primitive_desc_t fwd_pd = dnn_pd(&d, NULL, NULL);
    l->fwd_global = dnn_primitive(fwd_pd);
    l->bwd_global = bn_primitive(l, dnnl_backward, base | relu, fwd_pd);
    pd_destroy(&fwd_pd);
    /* correction = alpha * x + beta, as a BN with mean 0 and variance 1 - eps */
    l->affine = bn_primitive(l, dnnl_forward_inference, base, NULL);
    dnnl_binary_desc_t bd;
    DNNL_CHECK(dnnl_binary_desc_init(&bd, dnnl_binary_sub, &l->src->md, &l->src->md,
                                     &l->src->md));
    dnnl_primitive_desc_t sub_pd = dnn_pd(&bd, NULL, NULL);
    l->subtract = dnn_primitive(sub_pd);
    pd_destroy(&sub_pd);
    tensor_alloc(&l->correction, &l->src->md);
    Tensor *chan[] = {&l->alpha, &l->beta, &l->zero_mean, &l->unit_var};
    for (int i = 0; i < 4; i++)
        tensor_alloc(chan[i], &l->mean.md);
    for (int c = 0; c < l->channels; c++)
        l->unit_var.data[c] = 1.0f - BN_EPS;
    l->sum_dy = xcalloc((size_t)l->channels, sizeof(float));
    l->sum_dy_xhat = xcalloc((size_t)l->channels, sizeof(float));
}

static void batchnorm_forward_sync(BatchNormLayer *l)
{
    DnnArgs a;
    args_clear(&a);
    args_add(&a, DNNL_ARG_SRC, l->src->mem);
    args_add(&a, DNNL_ARG_DST, l->dst.mem);
    args_add(&a, DNNL_ARG_SCALE, l->scale.mem);
    args_add(&a, DNNL_ARG_SHIFT, l->shift.mem);
    args_add(&a, DNNL_ARG_MEAN, l->mean.mem);
    args_add(&a, DNNL_ARG_VARIANCE, l->var.mem);
    if (l->fuse_relu)
        args_add(&a, DNNL_ARG_WORKSPACE, l->workspace.mem);
    dnn_execute(l->fwd_train, &a); /* this rank's statistics */
    dnn_wait();
    l->global_count = l->sync->combine(l->sync->ctx, l->mean.data, l->var.data, l->channels,
                                       l->count);
    dnn_execute(l->fwd_global, &a);
    if (!l->skip_running_update)
        batchnorm_update_running(l->running_mean.data, l->running_var.data, l->mean.data,
                                 l->var.data, (size_t)l->channels, (size_t)l->global_count);
}

/* With statistics over N values, dx = gamma/sigma (dy - S1/N - xhat S2/N),
 * S1 = sum dy, S2 = sum dy xhat over all ranks. oneDNN's constant-statistics
 * backward gives gamma/sigma dy and this rank's S1, S2; the rest is affine
 * in x: alpha x + beta. */
static void batchnorm_backward_sync(BatchNormLayer *l, const Tensor *diff_dst, Tensor *diff_src)
{
    DnnArgs a;
    args_clear(&a);
    args_add(&a, DNNL_ARG_SRC, l->src->mem);
    args_add(&a, DNNL_ARG_MEAN, l->mean.mem);
    args_add(&a, DNNL_ARG_VARIANCE, l->var.mem);
    args_add(&a, DNNL_ARG_DIFF_DST, diff_dst->mem);
    args_add(&a, DNNL_ARG_SCALE, l->scale.mem);
    args_add(&a, DNNL_ARG_SHIFT, l->shift.mem);
    args_add(&a, DNNL_ARG_DIFF_SRC, diff_src->mem);
    args_add(&a, DNNL_ARG_DIFF_SCALE, l->diff_scale.mem);
    args_add(&a, DNNL_ARG_DIFF_SHIFT, l->diff_shift.mem);
    if (l->fuse_relu)
        args_add(&a, DNNL_ARG_WORKSPACE, l->workspace.mem);
    dnn_execute(l->bwd_global, &a);
    dnn_wait();
    /* The gradient buffer keeps this rank's sums: the gradient allreduce adds them up. */
    size_t bytes = (size_t)l->channels * sizeof(float);
    memcpy(l->sum_dy_xhat, l->diff_scale.data, bytes);
    memcpy(l->sum_dy, l->diff_shift.data, bytes);
    l->sync->sum(l->sync->ctx, l->sum_dy_xhat, l->sum_dy, l->channels);
    double n = l->global_count;
    for (int c = 0; c < l->channels; c++) {
        double sigma = sqrt((double)l->var.data[c] + BN_EPS), gamma = l->scale.data[c];
        double alpha = gamma * l->sum_dy_xhat[c] / (n * sigma * sigma);
        l->alpha.data[c] = (float)alpha;
        l->beta.data[c] = (float)(gamma * l->sum_dy[c] / (n * sigma) - alpha * l->mean.data[c]);
    }
    args_clear(&a);
    args_add(&a, DNNL_ARG_SRC, l->src->mem);
    args_add(&a, DNNL_ARG_DST, l->correction.mem);
    args_add(&a, DNNL_ARG_SCALE, l->alpha.mem);
    args_add(&a, DNNL_ARG_SHIFT, l->beta.mem);
    args_add(&a, DNNL_ARG_MEAN, l->zero_mean.mem);
    args_add(&a, DNNL_ARG_VARIANCE, l->unit_var.mem);
    dnn_execute(l->affine, &a);
    args_clear(&a);
    args_add(&a, DNNL_ARG_SRC_0, diff_src->mem);
    args_add(&a, DNNL_ARG_SRC_1, l->correction.mem);
    args_add(&a, DNNL_ARG_DST, diff_src->mem);
    dnn_execute(l->subtract, &a);
}

void batchnorm_forward(BatchNormLayer *l, int training)
{
    if (training && l->sync) {
        batchnorm_forward_sync(l);
        return;
    }
    DnnArgs a;
    args_clear(&a);
    args_add(&a, DNNL_ARG_SRC, l->src->mem);
    args_add(&a, DNNL_ARG_DST, l->dst.mem);
    args_add(&a, DNNL_ARG_SCALE, l->scale.mem);
    args_add(&a, DNNL_ARG_SHIFT, l->shift.mem);
    if (!training) {
        args_add(&a, DNNL_ARG_MEAN, l->running_mean.mem);
        args_add(&a, DNNL_ARG_VARIANCE, l->running_var.mem);
        dnn_execute(l->fwd_infer, &a);
        return;
    }
    args_add(&a, DNNL_ARG_MEAN, l->mean.mem);
    args_add(&a, DNNL_ARG_VARIANCE, l->var.mem);
    if (l->fuse_relu)
        args_add(&a, DNNL_ARG_WORKSPACE, l->workspace.mem);
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
    args_clear(&a);
    args_add(&a, DNNL_ARG_SRC, l->src->mem);
    args_add(&a, DNNL_ARG_MEAN, l->mean.mem);
    args_add(&a, DNNL_ARG_VARIANCE, l->var.mem);
    args_add(&a, DNNL_ARG_DIFF_DST, diff_dst->mem);
    args_add(&a, DNNL_ARG_SCALE, l->scale.mem);
    args_add(&a, DNNL_ARG_SHIFT, l->shift.mem); /* oneDNN 2.6 requires it, unused */
    args_add(&a, DNNL_ARG_DIFF_SRC, diff_src->mem);
    args_add(&a, DNNL_ARG_DIFF_SCALE, l->diff_scale.mem);
    args_add(&a, DNNL_ARG_DIFF_SHIFT, l->diff_shift.mem);
    if (l->fuse_relu)
        args_add(&a, DNNL_ARG_WORKSPACE, l->workspace.mem);
    dnn_execute(l->bwd, &a);
}

void batchnorm_free(BatchNormLayer *l)
{
    primitive_destroy(&l->fwd_train);
    primitive_destroy(&l->fwd_infer);
    primitive_destroy(&l->bwd);
    primitive_destroy(&l->fwd_global);
    primitive_destroy(&l->bwd_global);
    primitive_destroy(&l->affine);
    primitive_destroy(&l->subtract);
    free(l->sum_dy);
    free(l->sum_dy_xhat);
    Tensor *ts[] = {&l->dst, &l->scale, &l->shift, &l->diff_scale, &l->diff_shift, &l->mean,
                    &l->var, &l->running_mean, &l->running_var, &l->workspace, &l->correction,
                    &l->alpha, &l->beta, &l->zero_mean, &l->unit_var};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        if (ts[i]->mem)
            tensor_free(ts[i]);
}
