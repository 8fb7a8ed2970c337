/*
 * params.h - the parameter registry: parameters, gradients and momentum each
 * in one flat aligned buffer, plus a state buffer for BatchNorm running
 * statistics, with a table of torchvision state_dict names, PyTorch shapes
 * and the layout each tensor has inside the buffers (oneDNN may block it).
 *
 * Layers register tensors while the model is built; params_allocate then
 * allocates the buffers and points every bound Tensor at its slice. A second
 * model over the same registry (another batch size) finds the tensors by
 * name. Local: nothing here talks to other ranks.
 */
#ifndef RESNET_PARAMS_H
#define RESNET_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "dnn.h"

#define PARAM_NAME_MAX 96

/* BUF_EMA: the weights' moving average, allocated only when a run keeps
 * one (params_allocate_ema; include/ema.h). */
typedef enum { BUF_VALUE, BUF_GRAD, BUF_MOMENTUM, BUF_EMA } ParamBuffer;

typedef enum {
    PARAM_CONV_WEIGHT,
    PARAM_BN_WEIGHT,
    PARAM_BN_BIAS,
    PARAM_FC_WEIGHT,
    PARAM_FC_BIAS,
} ParamKind;

typedef struct {
    char name[PARAM_NAME_MAX];
    ParamKind kind;
    int ndims;
    int64_t dims[4];       /* PyTorch shape, e.g. (OC, IC, KH, KW) */
    size_t numel;          /* elements of the PyTorch tensor */
    size_t offset;         /* floats from the start of each flat buffer */
    size_t span;           /* floats it occupies there (blocked layouts pad) */
    dnnl_memory_desc_t md; /* its layout inside the flat buffers */
} ParamInfo;

/* A BatchNorm layer's running statistics: name is the layer prefix
 * ("layer1.0.bn1"); running_mean then running_var, C floats each. */
typedef struct {
    char name[PARAM_NAME_MAX];
    size_t channels;
    size_t offset; /* floats from the start of the state buffer */
} BnStateInfo;

typedef struct ParamBinding ParamBinding;

typedef struct {
    ParamInfo *info;
    int count, cap;
    size_t total; /* floats in each flat buffer */
    float *value, *grad, *momentum;

    BnStateInfo *bn;
    int bn_count, bn_cap;
    size_t state_total;
    float *state;
    /* One counter serves every BN layer: all are updated on every step. */
    int64_t num_batches_tracked;
    /* The moving average of value and state (same layouts), or NULL. */
    float *ema, *ema_state;
    int64_t ema_num_batches_tracked;

    ParamBinding *bind;
    int bind_count, bind_cap;
    int allocated;
} Params;

void params_init(Params *p);
void params_free(Params *p);

/* Registers a tensor (or finds it by name); returns its index. A tensor that
 * exists already must have the same layout. */
int params_add(Params *p, const char *name, ParamKind kind, int ndims, const int64_t *dims,
               const dnnl_memory_desc_t *md);
int params_find(const Params *p, const char *name);
/* Creates t over the tensor's slice of buf (now or when allocated). */
void params_bind(Params *p, int index, ParamBuffer buf, Tensor *t);

int params_bn_state_add(Params *p, const char *prefix, size_t channels);
int params_bn_state_find(const Params *p, const char *prefix);
/* t_mean, t_var: 1-D (C) tensors over the running statistics. */
void params_bn_state_bind(Params *p, int index, Tensor *t_mean, Tensor *t_var);
float *params_bn_running_mean(const Params *p, int index);
float *params_bn_running_var(const Params *p, int index);

void params_allocate(Params *p);
/* Allocates the moving-average buffers (after params_allocate); params_free
 * releases them. */
void params_allocate_ema(Params *p);
float *params_buffer(const Params *p, ParamBuffer buf);

/* Elements of all tensors in PyTorch's count (no padding). */
size_t params_numel(const Params *p);

/* Copies between a buffer slice and a plain PyTorch-layout array (numel
 * floats). Start-up and checkpoint I/O only: a blocked layout needs a
 * reorder created for the one copy. */
void params_get_plain(const Params *p, int index, ParamBuffer buf, float *out);
void params_set_plain(Params *p, int index, ParamBuffer buf, const float *in);

/* Whether the tensor is a BN weight or bias or the classifier's bias: the
 * tensors that get no weight decay when BN and bias parameters are excluded
 * (--no-bn-decay). */
int params_is_bn_or_bias(const ParamInfo *info);

#endif
