/* linear.c - inner product forward/backward on oneDNN, plain layouts. */
#include "linear.h"

#include <stdio.h>
#include <string.h>

#include "dnn.h"
#include "error.h"

static int linear_param(Params *p, const char *name, const char *suffix, ParamKind kind,
                        int ndims, const dnnl_dim_t *dims, dnnl_format_tag_t tag)
{
    char key[PARAM_NAME_MAX];
    snprintf(key, sizeof key, "%s.%s", name, suffix);
    int64_t pt[2] = {dims[0], ndims > 1 ? dims[1] : 0};
    dnnl_memory_desc_t md = dnn_md_make(ndims, dims, tag);
    return params_add(p, key, kind, ndims, pt, &md);
}

void linear_init(LinearLayer *l, float *src_data, int n, int in, int out, Params *p,
                 const char *name)
{
    memset(l, 0, sizeof *l);
    l->in = in;
    l->out = out;
    dnnl_dims_t src_dims = {n, in}, w_dims = {out, in}, b_dims = {out}, dst_dims = {n, out};
    dnnl_memory_desc_t src_md = dnn_md_make(2, src_dims, dnnl_nc);
    dnnl_memory_desc_t dst_md = dnn_md_make(2, dst_dims, dnnl_nc);
    tensor_view(&l->src, &src_md, src_data);
    tensor_alloc(&l->dst, &dst_md);

    int w = linear_param(p, name, "weight", PARAM_FC_WEIGHT, 2, w_dims, dnnl_oi);
    int b = linear_param(p, name, "bias", PARAM_FC_BIAS, 1, b_dims, dnnl_x);
    params_bind(p, w, BUF_VALUE, &l->weights);
    params_bind(p, b, BUF_VALUE, &l->bias);
    params_bind(p, w, BUF_GRAD, &l->diff_weights);
    params_bind(p, b, BUF_GRAD, &l->diff_bias);

    dnnl_inner_product_desc_t d;
    DNNL_CHECK(dnnl_inner_product_forward_desc_init(&d, dnnl_forward_training, &src_md,
                                                    &l->weights.md, &l->bias.md, &dst_md));
    dnnl_primitive_desc_t fwd_pd = dnn_pd_create(&d, NULL, NULL);
    l->fwd = dnn_primitive_create(fwd_pd);
    DNNL_CHECK(dnnl_inner_product_backward_data_desc_init(&d, &src_md, &l->weights.md, &dst_md));
    dnnl_primitive_desc_t pd = dnn_pd_create(&d, NULL, fwd_pd);
    l->bwd_data = dnn_primitive_create(pd);
    dnn_pd_destroy(&pd);
    DNNL_CHECK(dnnl_inner_product_backward_weights_desc_init(&d, &src_md, &l->weights.md,
                                                             &l->bias.md, &dst_md));
    pd = dnn_pd_create(&d, NULL, fwd_pd);
    l->bwd_weights = dnn_primitive_create(pd);
    dnn_pd_destroy(&pd);
    dnn_pd_destroy(&fwd_pd);
}

void linear_forward(LinearLayer *l)
{
    DnnArgs a;
    dnn_args_clear(&a);
    dnn_args_add(&a, DNNL_ARG_SRC, l->src.mem);
    dnn_args_add(&a, DNNL_ARG_WEIGHTS, l->weights.mem);
    dnn_args_add(&a, DNNL_ARG_BIAS, l->bias.mem);
    dnn_args_add(&a, DNNL_ARG_DST, l->dst.mem);
    dnn_execute(l->fwd, &a);
}

void linear_backward(LinearLayer *l, const Tensor *diff_dst, Tensor *diff_src)
{
    DnnArgs a;
    dnn_args_clear(&a);
    dnn_args_add(&a, DNNL_ARG_DIFF_DST, diff_dst->mem);
    dnn_args_add(&a, DNNL_ARG_WEIGHTS, l->weights.mem);
    dnn_args_add(&a, DNNL_ARG_DIFF_SRC, diff_src->mem);
    dnn_execute(l->bwd_data, &a);
    dnn_args_clear(&a);
    dnn_args_add(&a, DNNL_ARG_SRC, l->src.mem);
    dnn_args_add(&a, DNNL_ARG_DIFF_DST, diff_dst->mem);
    dnn_args_add(&a, DNNL_ARG_DIFF_WEIGHTS, l->diff_weights.mem);
    dnn_args_add(&a, DNNL_ARG_DIFF_BIAS, l->diff_bias.mem);
    dnn_execute(l->bwd_weights, &a);
}

void linear_free(LinearLayer *l)
{
    dnn_primitive_destroy(&l->fwd);
    dnn_primitive_destroy(&l->bwd_data);
    dnn_primitive_destroy(&l->bwd_weights);
    Tensor *ts[] = {&l->src, &l->dst, &l->weights, &l->bias, &l->diff_weights, &l->diff_bias};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        if (ts[i]->mem)
            tensor_free(ts[i]);
}
