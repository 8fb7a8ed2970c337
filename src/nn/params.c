/* params.c - flat parameter, gradient, momentum and BN state buffers. */
#include "params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* Each tensor starts on a 64-byte boundary, as blocked kernels want. */
#define PARAM_ALIGN_FLOATS 16

struct ParamBinding {
    int index; /* tensor index, or BN state index when state is set */
    int state; /* 0: tensor slice; 1: running mean; 2: running var */
    ParamBuffer buf;
    Tensor *t;
};

void params_init(Params *p)
{
    memset(p, 0, sizeof *p);
}

void params_free(Params *p)
{
    free(p->info);
    free(p->bn);
    free(p->bind);
    free(p->value);
    free(p->grad);
    free(p->momentum);
    free(p->state);
    free(p->ema);
    free(p->ema_state);
    memset(p, 0, sizeof *p);
}

int params_find(const Params *p, const char *name)
{
    for (int i = 0; i < p->count; i++)
        if (strcmp(p->info[i].name, name) == 0)
            return i;
    return -1;
}

int params_add(Params *p, const char *name, ParamKind kind, int ndims, const int64_t *dims,
               const dnnl_memory_desc_t *md)
{
    int found = params_find(p, name);
    if (found >= 0) {
        CHECK(dnn_md_equal(&p->info[found].md, md),
              "tensor %s registered twice with different layouts", name);
        return found;
    }
    CHECK(!p->allocated, "tensor %s registered after the buffers were allocated", name);
    CHECK(strlen(name) < PARAM_NAME_MAX, "tensor name too long: %s", name);
    if (p->count == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 64;
        p->info = xrealloc(p->info, (size_t)p->cap * sizeof *p->info);
    }
    ParamInfo *info = &p->info[p->count];
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%s", name);
    info->kind = kind;
    info->ndims = ndims;
    info->numel = 1;
    for (int d = 0; d < ndims; d++) {
        info->dims[d] = dims[d];
        info->numel *= (size_t)dims[d];
    }
    info->md = *md;
    info->span =
        (dnn_md_floats(md) + PARAM_ALIGN_FLOATS - 1) / PARAM_ALIGN_FLOATS * PARAM_ALIGN_FLOATS;
    info->offset = p->total;
    p->total += info->span;
    return p->count++;
}

static void binding_add(Params *p, int index, int state, ParamBuffer buf, Tensor *t)
{
    if (p->bind_count == p->bind_cap) {
        p->bind_cap = p->bind_cap ? 2 * p->bind_cap : 128;
        p->bind = xrealloc(p->bind, (size_t)p->bind_cap * sizeof *p->bind);
    }
    p->bind[p->bind_count++] = (ParamBinding){.index = index, .state = state, .buf = buf, .t = t};
}

float *params_buffer(const Params *p, ParamBuffer buf)
{
    switch (buf) {
    case BUF_VALUE: return p->value;
    case BUF_GRAD: return p->grad;
    case BUF_MOMENTUM: return p->momentum;
    case BUF_EMA: return p->ema;
    }
    return NULL;
}

static float *binding_data(const Params *p, const ParamBinding *b)
{
    if (b->state == 1)
        return params_bn_running_mean(p, b->index);
    if (b->state == 2)
        return params_bn_running_var(p, b->index);
    return params_buffer(p, b->buf) + p->info[b->index].offset;
}

void params_bind(Params *p, int index, ParamBuffer buf, Tensor *t)
{
    tensor_view(t, &p->info[index].md, NULL);
    binding_add(p, index, 0, buf, t);
    if (p->allocated)
        tensor_set_data(t, binding_data(p, &p->bind[p->bind_count - 1]));
}

int params_bn_state_find(const Params *p, const char *prefix)
{
    for (int i = 0; i < p->bn_count; i++)
        if (strcmp(p->bn[i].name, prefix) == 0)
            return i;
    return -1;
}

int params_bn_state_add(Params *p, const char *prefix, size_t channels)
{
    int found = params_bn_state_find(p, prefix);
    if (found >= 0) {
        CHECK(p->bn[found].channels == channels, "BN %s registered twice with different widths",
              prefix);
        return found;
    }
    CHECK(!p->allocated, "BN %s registered after the buffers were allocated", prefix);
    if (p->bn_count == p->bn_cap) {
        p->bn_cap = p->bn_cap ? 2 * p->bn_cap : 64;
        p->bn = xrealloc(p->bn, (size_t)p->bn_cap * sizeof *p->bn);
    }
    BnStateInfo *s = &p->bn[p->bn_count];
    snprintf(s->name, sizeof s->name, "%s", prefix);
    s->channels = channels;
    s->offset = p->state_total;
    p->state_total += 2 * channels;
    return p->bn_count++;
}

float *params_bn_running_mean(const Params *p, int index)
{
    return p->state + p->bn[index].offset;
}

float *params_bn_running_var(const Params *p, int index)
{
    return p->state + p->bn[index].offset + p->bn[index].channels;
}

void params_bn_state_bind(Params *p, int index, Tensor *t_mean, Tensor *t_var)
{
    dnnl_dim_t c = (dnnl_dim_t)p->bn[index].channels;
    dnnl_memory_desc_t md = dnn_md_make(1, &c, dnnl_x);
    tensor_view(t_mean, &md, NULL);
    binding_add(p, index, 1, BUF_VALUE, t_mean);
    tensor_view(t_var, &md, NULL);
    binding_add(p, index, 2, BUF_VALUE, t_var);
    if (p->allocated) {
        tensor_set_data(t_mean, params_bn_running_mean(p, index));
        tensor_set_data(t_var, params_bn_running_var(p, index));
    }
}

void params_allocate(Params *p)
{
    CHECK(!p->allocated, "parameter buffers allocated twice");
    size_t bytes = p->total * sizeof(float);
    p->value = xaligned_alloc(bytes);
    p->grad = xaligned_alloc(bytes);
    p->momentum = xaligned_alloc(bytes);
    p->state = xaligned_alloc(p->state_total * sizeof(float));
    for (int i = 0; i < p->bn_count; i++) {
        float *var = params_bn_running_var(p, i);
        for (size_t c = 0; c < p->bn[i].channels; c++)
            var[c] = 1.0f; /* PyTorch's initial running_var */
    }
    p->allocated = 1;
    for (int i = 0; i < p->bind_count; i++)
        tensor_set_data(p->bind[i].t, binding_data(p, &p->bind[i]));
}

void params_allocate_ema(Params *p)
{
    CHECK(p->allocated && !p->ema, "moving-average buffers allocated before the weights or twice");
    p->ema = xaligned_alloc(p->total * sizeof(float));
    p->ema_state = xaligned_alloc(p->state_total * sizeof(float));
}

size_t params_numel(const Params *p)
{
    size_t n = 0;
    for (int i = 0; i < p->count; i++)
        n += p->info[i].numel;
    return n;
}

/* PyTorch's row-major layout of the same tensor. Grouped convolution weights
 * are 5-D in oneDNN, (G, OC/G, IC/G, K, K); row-major that is the same memory
 * as PyTorch's (OC, IC/G, K, K). */
static dnnl_memory_desc_t plain_md(const ParamInfo *info)
{
    static const dnnl_format_tag_t tags[] = {dnnl_format_tag_undef, dnnl_a, dnnl_ab, dnnl_abc,
                                             dnnl_abcd, dnnl_abcde};
    return dnn_md_make(info->md.ndims, info->md.dims, tags[info->md.ndims]);
}

static void plain_copy(const Params *p, int index, ParamBuffer buf, float *plain, int to_plain)
{
    const ParamInfo *info = &p->info[index];
    float *slice = params_buffer(p, buf) + info->offset;
    dnnl_memory_desc_t pmd = plain_md(info);
    if (dnn_md_equal(&pmd, &info->md)) {
        if (to_plain)
            memcpy(plain, slice, info->numel * sizeof(float));
        else
            memcpy(slice, plain, info->numel * sizeof(float));
        return;
    }
    Tensor inner, outer;
    tensor_view(&inner, &info->md, slice);
    tensor_view(&outer, &pmd, plain);
    if (to_plain)
        dnn_copy(inner.mem, outer.mem);
    else
        dnn_copy(outer.mem, inner.mem);
    tensor_free(&inner);
    tensor_free(&outer);
}

void params_get_plain(const Params *p, int index, ParamBuffer buf, float *out)
{
    plain_copy(p, index, buf, out, 1);
}

void params_set_plain(Params *p, int index, ParamBuffer buf, const float *in)
{
    plain_copy(p, index, buf, (float *)in, 0);
}

int params_is_bn_or_bias(const ParamInfo *info)
{
    return info->kind == PARAM_BN_WEIGHT || info->kind == PARAM_BN_BIAS ||
           info->kind == PARAM_FC_BIAS;
}
