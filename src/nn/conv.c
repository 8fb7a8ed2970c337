/* conv.c - convolution forward and backward on oneDNN 2.6 (direct or Winograd). */
#include "conv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* Buffers a layer needs only while it runs (its inputs and outputs in a
 * primitive's own layout when that differs from its neighbours', and the
 * weights in backward-data's layout) are shared by every layer, one buffer
 * per role, sized for the largest user: layers run one at a time, and each
 * reorders into the buffer right before the primitive that reads it. */
typedef enum { SCRATCH_WEIGHTS, SCRATCH_SRC, SCRATCH_DIFF_DST, SCRATCH_OUT, SCRATCH_ROLES } Role;

static struct {
    float *data;
    size_t bytes;
    int users;
} g_scratch[SCRATCH_ROLES];

/* t becomes a view of role r's buffer (bound when used: it may still grow). */
static void scratch_view(Role r, Tensor *t, const dnnl_memory_desc_t *md)
{
    size_t bytes = dnn_md_bytes(md);
    if (bytes > g_scratch[r].bytes) {
        free(g_scratch[r].data);
        g_scratch[r].data = xaligned_alloc(bytes);
        g_scratch[r].bytes = bytes;
    }
    g_scratch[r].users++;
    tensor_view(t, md, NULL);
}

static Tensor *scratch_bind(Role r, Tensor *t)
{
    if (t->data != g_scratch[r].data)
        tensor_set_data(t, g_scratch[r].data);
    return t;
}

static void scratch_free(Role r, Tensor *t)
{
    if (!t->mem)
        return;
    tensor_free(t);
    if (--g_scratch[r].users > 0)
        return;
    free(g_scratch[r].data);
    g_scratch[r].data = NULL;
    g_scratch[r].bytes = 0;
}

/* A reorder whose output is role r's buffer; no buffer when none is needed. */
static void reorder_init_scratch(Reorder *o, const dnnl_memory_desc_t *from,
                                 const dnnl_memory_desc_t *to, Role r)
{
    dnn_reorder_init(o, from, to, 0);
    if (o->prim)
        scratch_view(r, &o->out, to);
}

static const Tensor *reorder_run_scratch(Reorder *o, Role r, const Tensor *in)
{
    if (o->prim)
        scratch_bind(r, &o->out);
    return dnn_reorder_run(o, in);
}

static void reorder_free_scratch(Reorder *o, Role r)
{
    scratch_free(r, &o->out);
    dnn_reorder_free(o);
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

/* The primitive for a pair of descriptors (explicit layouts preferred) in
 * their algorithm; a Winograd pair without an implementation for this shape
 * or machine falls back to direct convolution, and the layer counts it so
 * that the trainer can say so (oneDNN 2.6 has Winograd only on AVX-512). */
static dnnl_primitive_desc_t conv_pd(ConvLayer *l, dnnl_convolution_desc_t *explicit_desc,
                                     dnnl_convolution_desc_t *any_desc,
                                     const_dnnl_primitive_desc_t hint)
{
    if (explicit_desc->alg_kind == dnnl_convolution_winograd) {
        dnnl_primitive_desc_t pd = dnn_pd_try(explicit_desc, NULL, hint);
        if (!pd)
            pd = dnn_pd_try(any_desc, NULL, hint);
        if (pd)
            return pd;
        explicit_desc->alg_kind = any_desc->alg_kind = dnnl_convolution_direct;
        l->winograd_fallbacks++;
    }
    return dnn_pd_prefer(explicit_desc, any_desc, NULL, hint);
}

static dnnl_primitive_desc_t conv_forward_pd(ConvLayer *l, const dnnl_memory_desc_t *dst_any,
                                             const dnnl_memory_desc_t *weights_md)
{
    dnnl_dims_t strides, pad, wdims;
    conv_geometry(l, strides, pad);
    int wnd = conv_weights_dims(l, wdims);
    dnnl_memory_desc_t w_any = dnn_md_any(wnd, wdims);
    const dnnl_memory_desc_t *w = weights_md ? weights_md : &w_any;
    dnnl_memory_desc_t src_any = dnn_md_any(4, l->src->md.dims);
    dnnl_convolution_desc_t d_explicit, d_any;
    DNNL_CHECK(dnnl_convolution_forward_desc_init(&d_explicit, dnnl_forward_training, l->alg,
                                                  &l->src->md, w, NULL, dst_any, strides, pad,
                                                  pad));
    DNNL_CHECK(dnnl_convolution_forward_desc_init(&d_any, dnnl_forward_training, l->alg, &src_any,
                                                  w, NULL, dst_any, strides, pad, pad));
    dnnl_primitive_desc_t pd = conv_pd(l, &d_explicit, &d_any, NULL);
    l->alg = d_explicit.alg_kind;
    return pd;
}

static void conv_init_backward(ConvLayer *l, const_dnnl_primitive_desc_t fwd_pd)
{
    dnnl_dims_t strides, pad, wdims;
    conv_geometry(l, strides, pad);
    int wnd = conv_weights_dims(l, wdims);
    dnnl_memory_desc_t w_any = dnn_md_any(wnd, wdims);
    dnnl_memory_desc_t src_any = dnn_md_any(4, l->src->md.dims);
    dnnl_memory_desc_t dst_any = dnn_md_any(4, l->dst.md.dims);
    dnnl_convolution_desc_t d_explicit, d_any;

    DNNL_CHECK(dnnl_convolution_backward_weights_desc_init(&d_explicit, l->alg, &l->src->md,
                                                           &l->weights.md, NULL, &l->dst.md,
                                                           strides, pad, pad));
    DNNL_CHECK(dnnl_convolution_backward_weights_desc_init(&d_any, l->alg, &src_any, &w_any, NULL,
                                                           &dst_any, strides, pad, pad));
    dnnl_primitive_desc_t pd = conv_pd(l, &d_explicit, &d_any, fwd_pd);
    l->bwd_weights = dnn_primitive_create(pd);
    dnnl_memory_desc_t bsrc = dnn_pd_md(pd, dnnl_query_src_md, 0);
    dnnl_memory_desc_t bdiff_dst = dnn_pd_md(pd, dnnl_query_diff_dst_md, 0);
    dnnl_memory_desc_t bdiff_w = dnn_pd_md(pd, dnnl_query_diff_weights_md, 0);
    reorder_init_scratch(&l->src_bwd, &l->src->md, &bsrc, SCRATCH_SRC);
    reorder_init_scratch(&l->diff_dst_weights, &l->dst.md, &bdiff_dst, SCRATCH_DIFF_DST);
    dnn_reorder_init(&l->diff_weights_out, &bdiff_w, &l->weights.md, 0);
    if (l->diff_weights_out.prim)
        tensor_alloc(&l->diff_weights_inner, &bdiff_w);
    dnn_pd_destroy(&pd);

    if (!l->need_diff_src)
        return;
    DNNL_CHECK(dnnl_convolution_backward_data_desc_init(&d_explicit, l->alg, &l->src->md,
                                                        &l->weights.md, &l->dst.md, strides, pad,
                                                        pad));
    DNNL_CHECK(dnnl_convolution_backward_data_desc_init(&d_any, l->alg, &src_any, &w_any,
                                                        &dst_any, strides, pad, pad));
    pd = conv_pd(l, &d_explicit, &d_any, fwd_pd);
    l->bwd_data = dnn_primitive_create(pd);
    dnnl_memory_desc_t bw = dnn_pd_md(pd, dnnl_query_weights_md, 0);
    dnnl_memory_desc_t bdst = dnn_pd_md(pd, dnnl_query_diff_dst_md, 0);
    dnnl_memory_desc_t bdiff_src = dnn_pd_md(pd, dnnl_query_diff_src_md, 0);
    reorder_init_scratch(&l->weights_bwd, &l->weights.md, &bw, SCRATCH_WEIGHTS);
    reorder_init_scratch(&l->diff_dst_data, &l->dst.md, &bdst, SCRATCH_DIFF_DST);
    dnn_reorder_init(&l->diff_src_out, &bdiff_src, &l->src->md, 0);
    if (l->diff_src_out.prim)
        scratch_view(SCRATCH_OUT, &l->diff_src_inner, &bdiff_src);
    dnn_pd_destroy(&pd);
}

/* Grouped convolutions with few channels per group run in a narrow
 * blocking (4 or 8 channels) that batch norm and the 1x1 convolutions have
 * no fast kernels for; their output goes back to the input's layout so the
 * narrow blocking stays inside this layer. */
static dnnl_memory_desc_t conv_output_md(const ConvLayer *l, const dnnl_memory_desc_t *dst_md,
                                         const dnnl_dim_t *dst_dims)
{
    static const dnnl_format_tag_t tags[] = {dnnl_aBcd16b, dnnl_aBcd8b, dnnl_acdb, dnnl_abcd};
    if (l->groups == 1)
        return *dst_md;
    for (size_t i = 0; i < sizeof tags / sizeof *tags; i++) {
        dnnl_memory_desc_t in = dnn_md_make(4, l->src->md.dims, tags[i]);
        if (dnn_md_equal(&in, &l->src->md))
            return dnn_md_make(4, dst_dims, tags[i]);
    }
    return *dst_md;
}

void conv_init(ConvLayer *l, const Tensor *src, const ConvSpec *spec, Params *p,
               const char *name)
{
    int oc = spec->oc, kernel = spec->kernel, stride = spec->stride, pad = spec->pad,
        groups = spec->groups;
    memset(l, 0, sizeof *l);
    l->src = src;
    l->ic = (int)src->md.dims[1];
    l->oc = oc;
    l->kernel = kernel;
    l->stride = stride;
    l->pad = pad;
    l->groups = groups;
    l->need_diff_src = spec->need_diff_src;
    l->winograd_wanted = spec->algo == CONV_WINOGRAD && kernel == 3 && stride == 1 && groups == 1;
    l->alg = l->winograd_wanted ? dnnl_convolution_winograd : dnnl_convolution_direct;
    CHECK(l->ic % groups == 0 && oc % groups == 0, "%s: channels %d -> %d not divisible by %d groups",
          name, l->ic, oc, groups);

    dnnl_dim_t n = src->md.dims[0], h = src->md.dims[2], w = src->md.dims[3];
    dnnl_dims_t dst_dims = {n, oc, (h + 2 * pad - kernel) / stride + 1,
                            (w + 2 * pad - kernel) / stride + 1};
    dnnl_memory_desc_t dst_any = dnn_md_any(4, dst_dims);

    char key[PARAM_NAME_MAX];
    snprintf(key, sizeof key, "%s.weight", name);
    int existing = params_find(p, key);
    dnnl_primitive_desc_t pd =
        conv_forward_pd(l, &dst_any, existing >= 0 ? &p->info[existing].md : NULL);
    dnnl_memory_desc_t wmd = dnn_pd_md(pd, dnnl_query_weights_md, 0);
    int64_t pt_dims[4] = {oc, l->ic / groups, kernel, kernel};
    int index = params_add(p, key, PARAM_CONV_WEIGHT, 4, pt_dims, &wmd);
    params_bind(p, index, BUF_VALUE, &l->weights);
    params_bind(p, index, BUF_GRAD, &l->diff_weights);

    l->fwd = dnn_primitive_create(pd);
    dnnl_memory_desc_t fsrc = dnn_pd_md(pd, dnnl_query_src_md, 0);
    reorder_init_scratch(&l->src_fwd, &src->md, &fsrc, SCRATCH_SRC);
    dnnl_memory_desc_t dst_md = dnn_pd_md(pd, dnnl_query_dst_md, 0);
    dnnl_memory_desc_t out_md = conv_output_md(l, &dst_md, dst_dims);
    tensor_alloc(&l->dst, &out_md);
    dnn_reorder_init(&l->dst_out, &dst_md, &out_md, 0);
    if (l->dst_out.prim)
        scratch_view(SCRATCH_OUT, &l->dst_inner, &dst_md);
    conv_init_backward(l, pd);
    dnn_pd_destroy(&pd);
}

void conv_forward(ConvLayer *l)
{
    DnnArgs a;
    dnn_args_clear(&a);
    dnn_args_add(&a, DNNL_ARG_SRC, reorder_run_scratch(&l->src_fwd, SCRATCH_SRC, l->src)->mem);
    dnn_args_add(&a, DNNL_ARG_WEIGHTS, l->weights.mem);
    dnn_args_add(&a, DNNL_ARG_DST,
             (l->dst_out.prim ? scratch_bind(SCRATCH_OUT, &l->dst_inner) : &l->dst)->mem);
    dnn_execute(l->fwd, &a);
    if (l->dst_out.prim)
        dnn_reorder_run_into(&l->dst_out, &l->dst_inner, &l->dst);
}

static void conv_backward_weights(ConvLayer *l, const Tensor *diff_dst)
{
    const Tensor *diff_w = l->diff_weights_out.prim ? &l->diff_weights_inner : &l->diff_weights;
    DnnArgs a;
    dnn_args_clear(&a);
    dnn_args_add(&a, DNNL_ARG_SRC, reorder_run_scratch(&l->src_bwd, SCRATCH_SRC, l->src)->mem);
    dnn_args_add(&a, DNNL_ARG_DIFF_DST,
             reorder_run_scratch(&l->diff_dst_weights, SCRATCH_DIFF_DST, diff_dst)->mem);
    dnn_args_add(&a, DNNL_ARG_DIFF_WEIGHTS, diff_w->mem);
    dnn_execute(l->bwd_weights, &a);
    if (l->diff_weights_out.prim)
        dnn_reorder_run_into(&l->diff_weights_out, diff_w, &l->diff_weights);
}

static void conv_backward_data(ConvLayer *l, const Tensor *diff_dst, Tensor *diff_src)
{
    const Tensor *out =
        l->diff_src_out.prim ? scratch_bind(SCRATCH_OUT, &l->diff_src_inner) : diff_src;
    DnnArgs a;
    dnn_args_clear(&a);
    dnn_args_add(&a, DNNL_ARG_DIFF_DST,
             reorder_run_scratch(&l->diff_dst_data, SCRATCH_DIFF_DST, diff_dst)->mem);
    dnn_args_add(&a, DNNL_ARG_WEIGHTS,
             reorder_run_scratch(&l->weights_bwd, SCRATCH_WEIGHTS, &l->weights)->mem);
    dnn_args_add(&a, DNNL_ARG_DIFF_SRC, out->mem);
    dnn_execute(l->bwd_data, &a);
    if (l->diff_src_out.prim)
        dnn_reorder_run_into(&l->diff_src_out, out, diff_src);
}

void conv_backward(ConvLayer *l, const Tensor *diff_dst, Tensor *diff_src)
{
    /* The order is free: the CPU stream runs the two one after the other,
     * and the network hands gradients to the reducer only after a whole
     * block's backward has returned, so neither order starts a bucket
     * sooner. */
    if (l->need_diff_src)
        conv_backward_data(l, diff_dst, diff_src);
    conv_backward_weights(l, diff_dst);
}

int conv_runs_winograd(const ConvLayer *l)
{
    return l->winograd_wanted && l->winograd_fallbacks == 0;
}

void conv_free(ConvLayer *l)
{
    dnn_primitive_destroy(&l->fwd);
    dnn_primitive_destroy(&l->bwd_data);
    dnn_primitive_destroy(&l->bwd_weights);
    reorder_free_scratch(&l->src_fwd, SCRATCH_SRC);
    reorder_free_scratch(&l->src_bwd, SCRATCH_SRC);
    reorder_free_scratch(&l->weights_bwd, SCRATCH_WEIGHTS);
    reorder_free_scratch(&l->diff_dst_data, SCRATCH_DIFF_DST);
    reorder_free_scratch(&l->diff_dst_weights, SCRATCH_DIFF_DST);
    dnn_reorder_free(&l->diff_src_out);
    dnn_reorder_free(&l->diff_weights_out);
    dnn_reorder_free(&l->dst_out);
    scratch_free(SCRATCH_OUT, &l->dst_inner);
    scratch_free(SCRATCH_OUT, &l->diff_src_inner);
    if (l->diff_weights_inner.mem)
        tensor_free(&l->diff_weights_inner);
    if (l->dst.mem)
        tensor_free(&l->dst);
    if (l->weights.mem)
        tensor_free(&l->weights);
    if (l->diff_weights.mem)
        tensor_free(&l->diff_weights);
}
