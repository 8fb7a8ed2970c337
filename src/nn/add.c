/* add.c - residual add with fused ReLU, and gradient sums, on oneDNN. */
#include "add.h"

#include <string.h>

#include "error.h"

static dnnl_primitive_t binary_add(const dnnl_memory_desc_t *md, int relu)
{
    dnnl_binary_desc_t d;
    DNNL_CHECK(dnnl_binary_desc_init(&d, dnnl_binary_add, md, md, md));
    dnnl_primitive_attr_t attr = NULL;
    if (relu) {
        dnnl_post_ops_t ops;
        DNNL_CHECK(dnnl_post_ops_create(&ops));
        DNNL_CHECK(dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
        DNNL_CHECK(dnnl_primitive_attr_create(&attr));
        DNNL_CHECK(dnnl_primitive_attr_set_post_ops(attr, ops));
        DNNL_CHECK(dnnl_post_ops_destroy(ops));
    }
    dnnl_primitive_desc_t pd = dnn_pd_create(&d, attr, NULL);
    dnnl_primitive_t p = dnn_primitive_create(pd);
    dnn_pd_destroy(&pd);
    if (attr)
        DNNL_CHECK(dnnl_primitive_attr_destroy(attr));
    return p;
}

static void add_setup(AddLayer *l, const Tensor *a, const Tensor *b, int relu, int in_place)
{
    memset(l, 0, sizeof *l);
    CHECK(dnn_md_equal(&a->md, &b->md), "residual add of tensors with different layouts");
    l->a = a;
    l->b = b;
    l->relu = relu;
    if (in_place)
        tensor_view(&l->dst, &a->md, a->data);
    else
        tensor_alloc(&l->dst, &a->md);
    l->fwd = binary_add(&a->md, relu);
    if (!relu)
        return;
    dnnl_eltwise_desc_t fd, bd;
    DNNL_CHECK(dnnl_eltwise_forward_desc_init(&fd, dnnl_forward_training,
                                              dnnl_eltwise_relu_use_dst_for_bwd, &a->md, 0.f, 0.f));
    dnnl_primitive_desc_t fwd_pd = dnn_pd_create(&fd, NULL, NULL);
    DNNL_CHECK(dnnl_eltwise_backward_desc_init(&bd, dnnl_eltwise_relu_use_dst_for_bwd, &a->md,
                                               &a->md, 0.f, 0.f));
    dnnl_primitive_desc_t bwd_pd = dnn_pd_create(&bd, NULL, fwd_pd);
    l->relu_bwd = dnn_primitive_create(bwd_pd);
    dnn_pd_destroy(&bwd_pd);
    dnn_pd_destroy(&fwd_pd);
}

void add_init(AddLayer *l, const Tensor *a, const Tensor *b, int relu)
{
    add_setup(l, a, b, relu, 0);
}

void add_init_in_place(AddLayer *l, Tensor *a, const Tensor *b, int relu)
{
    add_setup(l, a, b, relu, 1);
}

void add_forward(AddLayer *l)
{
    DnnArgs a;
    dnn_args_clear(&a);
    dnn_args_add(&a, DNNL_ARG_SRC_0, l->a->mem);
    dnn_args_add(&a, DNNL_ARG_SRC_1, l->b->mem);
    dnn_args_add(&a, DNNL_ARG_DST, l->dst.mem);
    dnn_execute(l->fwd, &a);
}

void add_backward(AddLayer *l, const Tensor *diff_dst, Tensor *diff_sum)
{
    if (!l->relu) {
        if (diff_sum->data != diff_dst->data)
            memcpy(diff_sum->data, diff_dst->data, dnn_md_bytes(&diff_dst->md));
        return;
    }
    DnnArgs a;
    dnn_args_clear(&a);
    dnn_args_add(&a, DNNL_ARG_DST, l->dst.mem);
    dnn_args_add(&a, DNNL_ARG_DIFF_DST, diff_dst->mem);
    dnn_args_add(&a, DNNL_ARG_DIFF_SRC, diff_sum->mem);
    dnn_execute(l->relu_bwd, &a);
}

void add_free(AddLayer *l)
{
    dnn_primitive_destroy(&l->fwd);
    dnn_primitive_destroy(&l->relu_bwd);
    if (l->dst.mem)
        tensor_free(&l->dst);
}

void add_sum_init(SumOp *s, const dnnl_memory_desc_t *md)
{
    s->prim = binary_add(md, 0);
}

void add_sum_run(SumOp *s, const Tensor *a, const Tensor *b, Tensor *dst)
{
    DnnArgs args;
    dnn_args_clear(&args);
    dnn_args_add(&args, DNNL_ARG_SRC_0, a->mem);
    dnn_args_add(&args, DNNL_ARG_SRC_1, b->mem);
    dnn_args_add(&args, DNNL_ARG_DST, dst->mem);
    dnn_execute(s->prim, &args);
}

void add_sum_free(SumOp *s)
{
    dnn_primitive_destroy(&s->prim);
}
