/* conv.c - convolution forward and backward on oneDNN 2.6 (direct algorithm). */
#include "conv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* Weights in backward-data's layout are needed only while one layer runs
 * backward-data, so every layer shares one buffer, sized for the largest. */
static struct {
    float *data;
    size_t bytes;
    int users;
} g_weights_scratch;

static void weights_scratch_use(size_t bytes)
{
    if (bytes > g_weights_scratch.bytes) {
        free(g_weights_scratch.data);
        g_weights_scratch.data = xaligned_alloc(bytes);
        g_weights_scratch.bytes = bytes;
    }
    g_weights_scratch.users++;
}

static void weights_scratch_release(void)
{
    if (--g_weights_scratch.users > 0)
        return;
    free(g_weights_scratch.data);
    g_weights_scratch.data = NULL;
    g_weights_scratch.bytes = 0;
}

static void conv_geometry(const ConvLayer *l, dnnl_dims_t strides, dnnl_dims_t pad)
{
    strides[0] = strides[1] = l->stride;
    pad[0] = pad[1] = l->pad;
}

/* (OC, IC, K, K), or (G, OC/G, IC/G, K, K) for grouped convolution. */
static int conv_weights_dims(const ConvLayer *l, dnnl_dims_t dims)
{
    if (l->groups == 1) {
        dims[0] = l->oc, dims[1] = l->ic, dims[2] = dims[3] = l->kernel;
        return 4;
    }
    dims[0] = l->groups, dims[1] = l->oc / l->groups, dims[2] = l->ic / l->groups;
    dims[3] = dims[4] = l->kernel;
    return 5;
}

static dnnl_primitive_desc_t conv_forward_pd(ConvLayer *l, const dnnl_memory_desc_t *dst_any,
                                             const dnnl_memory_desc_t *weights_md)
{
    dnnl_dims_t strides, pad, wdims;
    conv_geometry(l, strides, pad);
    int wnd = conv_weights_dims(l, wdims);
    dnnl_memory_desc_t w_any = md_any(wnd, wdims);
    const dnnl_memory_desc_t *w = weights_md ? weights_md : &w_any;
    dnnl_memory_desc_t src_any = md_any(4, l->src->md.dims);
    dnnl_convolution_desc_t d_explicit, d_any;
    DNNL_CHECK(dnnl_convolution_forward_desc_init(&d_explicit, dnnl_forward_training,
                                                  dnnl_convolution_direct, &l->src->md, w, NULL,
                                                  dst_any, strides, pad, pad));
    DNNL_CHECK(dnnl_convolution_forward_desc_init(&d_any, dnnl_forward_training,
                                                  dnnl_convolution_direct, &src_any, w, NULL,
                                                  dst_any, strides, pad, pad));
    return dnn_pd_prefer(&d_explicit, &d_any, NULL, NULL);
}

static void conv_init_backward(ConvLayer *l, const_dnnl_primitive_desc_t fwd_pd)
{
    dnnl_dims_t strides, pad, wdims;
    conv_geometry(l, strides, pad);
    int wnd = conv_weights_dims(l, wdims);
    dnnl_memory_desc_t w_any = md_any(wnd, wdims);
    dnnl_memory_desc_t src_any = md_any(4, l->src->md.dims);
    dnnl_memory_desc_t dst_any = md_any(4, l->dst.md.dims);
    dnnl_convolution_desc_t d_explicit, d_any;

    DNNL_CHECK(dnnl_convolution_backward_weights_desc_init(
        &d_explicit, dnnl_convolution_direct, &l->src->md, &l->weights.md, NULL, &l->dst.md,
        strides, pad, pad));
    DNNL_CHECK(dnnl_convolution_backward_weights_desc_init(
        &d_any, dnnl_convolution_direct, &src_any, &w_any, NULL, &dst_any, strides, pad, pad));
    dnnl_primitive_desc_t pd = dnn_pd_prefer(&d_explicit, &d_any, NULL, fwd_pd);
    l->bwd_weights = dnn_primitive(pd);
    dnnl_memory_desc_t bsrc = pd_md(pd, dnnl_query_src_md, 0);
    dnnl_memory_desc_t bdiff_dst = pd_md(pd, dnnl_query_diff_dst_md, 0);
    dnnl_memory_desc_t bdiff_w = pd_md(pd, dnnl_query_diff_weights_md, 0);
    reorder_init(&l->src_bwd, &l->src->md, &bsrc, 1);
    reorder_init(&l->diff_dst_weights, &l->dst.md, &bdiff_dst, 1);
    reorder_init(&l->diff_weights_out, &bdiff_w, &l->weights.md, 0);
    if (l->diff_weights_out.prim)
        tensor_alloc(&l->diff_weights_inner, &bdiff_w);
    pd_destroy(&pd);

    if (!l->need_diff_src)
        return;
    DNNL_CHECK(dnnl_convolution_backward_data_desc_init(&d_explicit, dnnl_convolution_direct,
                                                        &l->src->md, &l->weights.md, &l->dst.md,
                                                        strides, pad, pad));
    DNNL_CHECK(dnnl_convolution_backward_data_desc_init(&d_any, dnnl_convolution_direct, &src_any,
                                                        &w_any, &dst_any, strides, pad, pad));
    pd = dnn_pd_prefer(&d_explicit, &d_any, NULL, fwd_pd);
    l->bwd_data = dnn_primitive(pd);
    dnnl_memory_desc_t bw = pd_md(pd, dnnl_query_weights_md, 0);
    dnnl_memory_desc_t bdst = pd_md(pd, dnnl_query_diff_dst_md, 0);
    dnnl_memory_desc_t bdiff_src = pd_md(pd, dnnl_query_diff_src_md, 0);
    reorder_init(&l->weights_bwd, &l->weights.md, &bw, 0);
    if (l->weights_bwd.prim) {
        weights_scratch_use(md_bytes(&bw));
        tensor_view(&l->weights_bwd.out, &bw, NULL);
    }
    reorder_init(&l->diff_dst_data, &l->dst.md, &bdst, 1);
    reorder_init(&l->diff_src_out, &bdiff_src, &l->src->md, 0);
    if (l->diff_src_out.prim)
        tensor_alloc(&l->diff_src_inner, &bdiff_src);
    pd_destroy(&pd);
}

void conv_init(ConvLayer *l, const Tensor *src, int oc, int kernel, int stride, int pad,
               int groups, int need_diff_src, Params *p, const char *name)
{
    memset(l, 0, sizeof *l);
    l->src = src;
    l->ic = (int)src->md.dims[1];
    l->oc = oc;
    l->kernel = kernel;
    l->stride = stride;
    l->pad = pad;
    l->groups = groups;
    l->need_diff_src = need_diff_src;
    CHECK(l->ic % groups == 0 && oc % groups == 0, "%s: channels %d -> %d not divisible by %d groups",
          name, l->ic, oc, groups);

    dnnl_dim_t n = src->md.dims[0], h = src->md.dims[2], w = src->md.dims[3];
    dnnl_dims_t dst_dims = {n, oc, (h + 2 * pad - kernel) / stride + 1,
                            (w + 2 * pad - kernel) / stride + 1};
    dnnl_memory_desc_t dst_any = md_any(4, dst_dims);

    char key[PARAM_NAME_MAX];
    snprintf(key, sizeof key, "%s.weight", name);
    int existing = params_find(p, key);
    dnnl_primitive_desc_t pd =
        conv_forward_pd(l, &dst_any, existing >= 0 ? &p->info[existing].md : NULL);
    dnnl_memory_desc_t wmd = pd_md(pd, dnnl_query_weights_md, 0);
    int64_t pt_dims[4] = {oc, l->ic / groups, kernel, kernel};
    int index = params_add(p, key, PARAM_CONV_WEIGHT, 4, pt_dims, &wmd);
    params_bind(p, index, BUF_VALUE, &l->weights);
    params_bind(p, index, BUF_GRAD, &l->diff_weights);

    l->fwd = dnn_primitive(pd);
    dnnl_memory_desc_t fsrc = pd_md(pd, dnnl_query_src_md, 0);
    reorder_init(&l->src_fwd, &src->md, &fsrc, 1);
    dnnl_memory_desc_t dst_md = pd_md(pd, dnnl_query_dst_md, 0);
    tensor_alloc(&l->dst, &dst_md);
    conv_init_backward(l, pd);
    pd_destroy(&pd);
}

void conv_forward(ConvLayer *l)
{
    DnnArgs a;
    args_clear(&a);
    args_add(&a, DNNL_ARG_SRC, reorder_run(&l->src_fwd, l->src)->mem);
    args_add(&a, DNNL_ARG_WEIGHTS, l->weights.mem);
    args_add(&a, DNNL_ARG_DST, l->dst.mem);
    dnn_execute(l->fwd, &a);
}

static void conv_backward_weights(ConvLayer *l, const Tensor *diff_dst)
{
    const Tensor *diff_w = l->diff_weights_out.prim ? &l->diff_weights_inner : &l->diff_weights;
    DnnArgs a;
    args_clear(&a);
    args_add(&a, DNNL_ARG_SRC, reorder_run(&l->src_bwd, l->src)->mem);
    args_add(&a, DNNL_ARG_DIFF_DST, reorder_run(&l->diff_dst_weights, diff_dst)->mem);
    args_add(&a, DNNL_ARG_DIFF_WEIGHTS, diff_w->mem);
    dnn_execute(l->bwd_weights, &a);
    if (l->diff_weights_out.prim)
        reorder_run_into(&l->diff_weights_out, diff_w, &l->diff_weights);
}

static void conv_backward_data(ConvLayer *l, const Tensor *diff_dst, Tensor *diff_src)
{
    const Tensor *out = l->diff_src_out.prim ? &l->diff_src_inner : diff_src;
    DnnArgs a;
    args_clear(&a);
    args_add(&a, DNNL_ARG_DIFF_DST, reorder_run(&l->diff_dst_data, diff_dst)->mem);
    if (l->weights_bwd.prim && l->weights_bwd.out.data != g_weights_scratch.data)
        tensor_set_data(&l->weights_bwd.out, g_weights_scratch.data);
    args_add(&a, DNNL_ARG_WEIGHTS, reorder_run(&l->weights_bwd, &l->weights)->mem);
    args_add(&a, DNNL_ARG_DIFF_SRC, out->mem);
    dnn_execute(l->bwd_data, &a);
    if (l->diff_src_out.prim)
        reorder_run_into(&l->diff_src_out, out, diff_src);
}

void conv_backward(ConvLayer *l, const Tensor *diff_dst, Tensor *diff_src)
{
    /* Data first: the layer below can start while the weights are computed
     * only if streams ran asynchronously; on CPU the order is free, and
     * computing the weight gradient last lets its bucket launch sooner. */
    if (l->need_diff_src)
        conv_backward_data(l, diff_dst, diff_src);
    conv_backward_weights(l, diff_dst);
}

void conv_free(ConvLayer *l)
{
    primitive_destroy(&l->fwd);
    primitive_destroy(&l->bwd_data);
    primitive_destroy(&l->bwd_weights);
    reorder_free(&l->src_fwd);
    reorder_free(&l->src_bwd);
    if (l->weights_bwd.prim)
        weights_scratch_release();
    reorder_free(&l->weights_bwd);
    reorder_free(&l->diff_dst_data);
    reorder_free(&l->diff_dst_weights);
    reorder_free(&l->diff_src_out);
    reorder_free(&l->diff_weights_out);
    if (l->diff_src_inner.mem)
        tensor_free(&l->diff_src_inner);
    if (l->diff_weights_inner.mem)
        tensor_free(&l->diff_weights_inner);
    if (l->dst.mem)
        tensor_free(&l->dst);
    if (l->weights.mem)
        tensor_free(&l->weights);
    if (l->diff_weights.mem)
        tensor_free(&l->diff_weights);
}
