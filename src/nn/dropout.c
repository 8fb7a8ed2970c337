/* dropout.c - dropout with masks keyed by (seed, epoch, sample, layer). */
#include "dropout.h"

#include <string.h>

#include "error.h"
#include "rng.h"

/* Separates these masks from every other stream made from the seed. */
#define DROPOUT_STREAM 0xd7039a75ULL

static dnnl_primitive_t binary_mul(const dnnl_memory_desc_t *md)
{
    dnnl_binary_desc_t d;
    DNNL_CHECK(dnnl_binary_desc_init(&d, dnnl_binary_mul, md, md, md));
    dnnl_primitive_desc_t pd = dnn_pd_create(&d, NULL, NULL);
    dnnl_primitive_t p = dnn_primitive_create(pd);
    dnn_pd_destroy(&pd);
    return p;
}

void dropout_init(DropoutLayer *l, const Tensor *src, double p, int key)
{
    memset(l, 0, sizeof *l);
    CHECK(p >= 0.0 && p < 1.0, "dropout probability %g is not in [0, 1)", p);
    l->p = p;
    l->key = key;
    l->src = src;
    tensor_alloc(&l->dst, &src->md);
    dnnl_memory_desc_t plain = dnn_md_make(4, src->md.dims, dnnl_nchw);
    tensor_alloc(&l->mask_plain, &plain);
    dnn_reorder_init(&l->to_layout, &plain, &src->md, 1);
    l->mul = binary_mul(&src->md);
}

void dropout_fill_mask(float *mask, int n, size_t per_sample, double p, uint64_t seed,
                       int64_t epoch, const int64_t *global_index, int key)
{
    float keep = (float)(1.0 / (1.0 - p));
    uint64_t stream = rng_hash(seed, DROPOUT_STREAM, (uint64_t)epoch);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        Rng r;
        rng_seed(&r, stream, (uint64_t)global_index[i], (uint64_t)key);
        float *m = mask + (size_t)i * per_sample;
        for (size_t j = 0; j < per_sample; j++)
            m[j] = rng_uniform(&r) >= p ? keep : 0.0f;
    }
}

static void multiply(DropoutLayer *l, const Tensor *a, const Tensor *mask, Tensor *dst)
{
    DnnArgs args;
    dnn_args_clear(&args);
    dnn_args_add(&args, DNNL_ARG_SRC_0, a->mem);
    dnn_args_add(&args, DNNL_ARG_SRC_1, mask->mem);
    dnn_args_add(&args, DNNL_ARG_DST, dst->mem);
    dnn_execute(l->mul, &args);
}

void dropout_forward(DropoutLayer *l, int training, uint64_t seed, int64_t epoch,
                     const int64_t *global_index)
{
    if (!training) {
        dnn_wait();
        memcpy(l->dst.data, l->src->data, dnn_md_bytes(&l->src->md));
        return;
    }
    const dnnl_dim_t *d = l->src->md.dims;
    dropout_fill_mask(l->mask_plain.data, (int)d[0], (size_t)(d[1] * d[2] * d[3]), l->p, seed,
                      epoch, global_index, l->key);
    l->mask = dnn_reorder_run(&l->to_layout, &l->mask_plain);
    multiply(l, l->src, l->mask, &l->dst);
}

void dropout_backward(DropoutLayer *l, const Tensor *diff_dst, Tensor *diff_src)
{
    CHECK(l->mask != NULL, "dropout backward without a training forward");
    multiply(l, diff_dst, l->mask, diff_src);
}

void dropout_free(DropoutLayer *l)
{
    dnn_primitive_destroy(&l->mul);
    dnn_reorder_free(&l->to_layout);
    if (l->mask_plain.mem)
        tensor_free(&l->mask_plain);
    if (l->dst.mem)
        tensor_free(&l->dst);
    l->mask = NULL;
}
