/* pool.c - max and global-average pooling on oneDNN. */
#include "pool.h"

#include <string.h>

#include "error.h"

static void pool_create(PoolLayer *l, dnnl_alg_kind_t alg, const dnnl_memory_desc_t *dst_md)
{
    dnnl_dims_t strides = {l->stride, l->stride}, kernel = {l->kernel, l->kernel};
    dnnl_dims_t pad = {l->pad, l->pad};
    if (l->global) {
        kernel[0] = l->src->md.dims[2];
        kernel[1] = l->src->md.dims[3];
        strides[0] = strides[1] = 1;
    }
    dnnl_pooling_desc_t d;
    DNNL_CHECK(dnnl_pooling_forward_desc_init(&d, dnnl_forward_training, alg, &l->src->md,
                                              dst_md, strides, kernel, pad, pad));
    dnnl_primitive_desc_t fwd_pd = dnn_pd_create(&d, NULL, NULL);
    l->fwd = dnn_primitive_create(fwd_pd);
    dnnl_memory_desc_t dst = dnn_pd_md(fwd_pd, dnnl_query_dst_md, 0);
    tensor_alloc(&l->dst, &dst);
    const dnnl_memory_desc_t *ws = dnnl_primitive_desc_query_md(fwd_pd, dnnl_query_workspace_md, 0);
    if (ws && ws->ndims > 0)
        tensor_alloc(&l->workspace, ws);

    DNNL_CHECK(dnnl_pooling_backward_desc_init(&d, alg, &l->src->md, &dst, strides, kernel, pad,
                                               pad));
    dnnl_primitive_desc_t bwd_pd = dnn_pd_create(&d, NULL, fwd_pd);
    l->bwd = dnn_primitive_create(bwd_pd);
    dnn_pd_destroy(&bwd_pd);
    dnn_pd_destroy(&fwd_pd);
}

void pool_max_init(PoolLayer *l, const Tensor *src, int kernel, int stride, int pad)
{
    memset(l, 0, sizeof *l);
    l->src = src;
    l->kernel = kernel;
    l->stride = stride;
    l->pad = pad;
    const dnnl_dim_t *s = src->md.dims;
    dnnl_dims_t dims = {s[0], s[1], (s[2] + 2 * pad - kernel) / stride + 1,
                        (s[3] + 2 * pad - kernel) / stride + 1};
    /* Format any: oneDNN gives the output the input's layout, so nothing
     * around the pooling needs a reorder. */
    dnnl_memory_desc_t dst_any = dnn_md_any(4, dims);
    pool_create(l, dnnl_pooling_max, &dst_any);
}

void pool_avg_global_init(PoolLayer *l, const Tensor *src)
{
    memset(l, 0, sizeof *l);
    l->src = src;
    l->global = 1;
    dnnl_dims_t dims = {src->md.dims[0], src->md.dims[1], 1, 1};
    dnnl_memory_desc_t dst_any = dnn_md_any(4, dims);
    pool_create(l, dnnl_pooling_avg_exclude_padding, &dst_any);
    /* Plain (N, C, 1, 1) is the (N, C) matrix the classifier reads. */
    dnnl_memory_desc_t flat = dnn_md_make(4, dims, dnnl_nchw);
    tensor_alloc(&l->flat, &flat);
    tensor_view(&l->diff_flat_view, &flat, NULL);
    tensor_alloc(&l->diff_dst_blocked, &l->dst.md);
    dnn_reorder_init(&l->to_flat, &l->dst.md, &flat, 0);
    dnn_reorder_init(&l->from_flat, &flat, &l->dst.md, 0);
}

void pool_forward(PoolLayer *l)
{
    DnnArgs a;
    dnn_args_clear(&a);
    dnn_args_add(&a, DNNL_ARG_SRC, l->src->mem);
    dnn_args_add(&a, DNNL_ARG_DST, l->dst.mem);
    if (l->workspace.mem)
        dnn_args_add(&a, DNNL_ARG_WORKSPACE, l->workspace.mem);
    dnn_execute(l->fwd, &a);
    if (l->global)
        dnn_reorder_run_into(&l->to_flat, &l->dst, &l->flat);
}

void pool_backward(PoolLayer *l, const Tensor *diff_dst, Tensor *diff_src)
{
    dnnl_memory_t dd = diff_dst->mem;
    if (l->global) {
        tensor_set_data(&l->diff_flat_view, diff_dst->data);
        dnn_reorder_run_into(&l->from_flat, &l->diff_flat_view, &l->diff_dst_blocked);
        dd = l->diff_dst_blocked.mem;
    }
    DnnArgs a;
    dnn_args_clear(&a);
    dnn_args_add(&a, DNNL_ARG_DIFF_DST, dd);
    dnn_args_add(&a, DNNL_ARG_DIFF_SRC, diff_src->mem);
    if (l->workspace.mem)
        dnn_args_add(&a, DNNL_ARG_WORKSPACE, l->workspace.mem);
    dnn_execute(l->bwd, &a);
}

void pool_free(PoolLayer *l)
{
    dnn_primitive_destroy(&l->fwd);
    dnn_primitive_destroy(&l->bwd);
    dnn_reorder_free(&l->to_flat);
    dnn_reorder_free(&l->from_flat);
    Tensor *ts[] = {&l->dst, &l->workspace, &l->flat, &l->diff_flat_view, &l->diff_dst_blocked};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        if (ts[i]->mem)
            tensor_free(ts[i]);
}
