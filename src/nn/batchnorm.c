/* batchnorm.c - BatchNorm (+ fused ReLU) forward/backward on oneDNN. */
#include "batchnorm.h"

#include <stdio.h>
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

void batchnorm_forward(BatchNormLayer *l, int training)
{
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
    Tensor *ts[] = {&l->dst, &l->scale, &l->shift, &l->diff_scale, &l->diff_shift, &l->mean,
                    &l->var, &l->running_mean, &l->running_var, &l->workspace};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        if (ts[i]->mem)
            tensor_free(ts[i]);
}
