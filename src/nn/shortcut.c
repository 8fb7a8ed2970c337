/* shortcut.c - option-A identity shortcut with subsampling and zero padding. */
#include "shortcut.h"

#include <string.h>

#include "error.h"

void shortcut_a_init(ShortcutA *l, const Tensor *src, const dnnl_memory_desc_t *out_md,
                     int stride)
{
    memset(l, 0, sizeof *l);
    l->src = src;
    l->stride = stride;
    int c_in = (int)src->md.dims[1], c_out = (int)out_md->dims[1];
    CHECK(c_out >= c_in && (c_out - c_in) % 2 == 0, "shortcut from %d to %d channels", c_in,
          c_out);
    l->pad_before = (c_out - c_in) / 2;
    dnnl_memory_desc_t in_plain = dnn_md_make(4, src->md.dims, dnnl_nchw);
    dnnl_memory_desc_t out_plain = dnn_md_make(4, out_md->dims, dnnl_nchw);
    tensor_alloc(&l->plain_in, &in_plain);
    tensor_alloc(&l->plain_out, &out_plain);
    tensor_alloc(&l->dst, out_md);
    dnn_reorder_init(&l->to_plain_in, &src->md, &in_plain, 0);
    dnn_reorder_init(&l->from_plain_out, &out_plain, out_md, 0);
    dnn_reorder_init(&l->to_plain_out, out_md, &out_plain, 0);
    dnn_reorder_init(&l->from_plain_in, &in_plain, &src->md, 0);
}

/* forward: gather=1 copies in -> out; backward: gather=0 copies out -> in. */
static void shortcut_a_map(ShortcutA *l, int gather)
{
    const dnnl_dim_t *di = l->plain_in.md.dims, *d = l->plain_out.md.dims;
    dnnl_dim_t n = d[0], c_out = d[1], h = d[2], w = d[3], c_in = di[1], hi = di[2], wi = di[3];
    float *in = l->plain_in.data, *out = l->plain_out.data;
    if (gather)
        memset(out, 0, dnn_md_bytes(&l->plain_out.md));
    else
        memset(in, 0, dnn_md_bytes(&l->plain_in.md));
#pragma omp parallel for collapse(2)
    for (dnnl_dim_t i = 0; i < n; i++)
        for (dnnl_dim_t c = 0; c < c_in; c++)
            for (dnnl_dim_t y = 0; y < h; y++)
                for (dnnl_dim_t x = 0; x < w; x++) {
                    size_t o = (size_t)(((i * c_out + c + l->pad_before) * h + y) * w + x);
                    size_t s = (size_t)(((i * c_in + c) * hi + y * l->stride) * wi + x * l->stride);
                    if (gather)
                        out[o] = in[s];
                    else
                        in[s] = out[o];
                }
}

void shortcut_a_forward(ShortcutA *l)
{
    dnn_reorder_run_into(&l->to_plain_in, l->src, &l->plain_in);
    shortcut_a_map(l, 1);
    dnn_reorder_run_into(&l->from_plain_out, &l->plain_out, &l->dst);
}

void shortcut_a_backward(ShortcutA *l, const Tensor *diff_dst, Tensor *diff_src)
{
    dnn_reorder_run_into(&l->to_plain_out, diff_dst, &l->plain_out);
    shortcut_a_map(l, 0);
    dnn_reorder_run_into(&l->from_plain_in, &l->plain_in, diff_src);
}

void shortcut_a_free(ShortcutA *l)
{
    dnn_reorder_free(&l->to_plain_in);
    dnn_reorder_free(&l->from_plain_out);
    dnn_reorder_free(&l->to_plain_out);
    dnn_reorder_free(&l->from_plain_in);
    Tensor *ts[] = {&l->dst, &l->plain_in, &l->plain_out};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        if (ts[i]->mem)
            tensor_free(ts[i]);
}
