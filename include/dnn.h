/*
 * dnn.h - the oneDNN engine and stream, memory and primitive descriptors,
 * primitives, argument lists and reorders (tensors are in tensor.h).
 * Every layer in src/nn uses it. Local: nothing here talks to other ranks.
 */
#ifndef RESNET_DNN_H
#define RESNET_DNN_H

#include <stddef.h>
#include <oneapi/dnnl/dnnl.h>

#include "tensor.h"

/* Up to DNN_MAX_ARGS (argument kind, memory) pairs for one execution. */
#define DNN_MAX_ARGS 12
typedef struct {
    int n;
    dnnl_exec_arg_t a[DNN_MAX_ARGS];
} DnnArgs;

/* A reorder between two layouts where two primitives disagree. When the
 * layouts already match, prim is NULL: dnn_reorder_run passes the input on
 * and dnn_reorder_run_into copies it. */
typedef struct {
    dnnl_primitive_t prim;
    Tensor out; /* owned output buffer (only when allocated at init) */
} Reorder;

void dnn_init(void);
void dnn_free(void);
dnnl_engine_t dnn_engine(void);
dnnl_stream_t dnn_stream(void);
/* Waits for queued primitives (CPU streams run in order; this is cheap). */
void dnn_wait(void);

dnnl_memory_desc_t dnn_md_make(int ndims, const dnnl_dim_t *dims, dnnl_format_tag_t tag);
dnnl_memory_desc_t dnn_md_any(int ndims, const dnnl_dim_t *dims);
size_t dnn_md_bytes(const dnnl_memory_desc_t *md);
size_t dnn_md_floats(const dnnl_memory_desc_t *md);
int dnn_md_equal(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b);
dnnl_memory_desc_t dnn_pd_md(const_dnnl_primitive_desc_t pd, dnnl_query_t what, int index);

/* Creates the primitive descriptor for an op descriptor (hint: the forward
 * pd for backward ops, or NULL); dnn_primitive_create makes the primitive. */
dnnl_primitive_desc_t dnn_pd_create(const void *op_desc, const_dnnl_primitive_attr_t attr,
                             const_dnnl_primitive_desc_t hint);
/* Like dnn_pd_create but returns NULL when oneDNN has no implementation. */
dnnl_primitive_desc_t dnn_pd_try(const void *op_desc, const_dnnl_primitive_attr_t attr,
                                 const_dnnl_primitive_desc_t hint);
dnnl_primitive_t dnn_primitive_create(const_dnnl_primitive_desc_t pd);

void dnn_args_clear(DnnArgs *a);
void dnn_args_add(DnnArgs *a, int arg, dnnl_memory_t mem);
void dnn_execute(dnnl_primitive_t prim, const DnnArgs *a);

/* alloc_out: give the reorder its own output buffer for dnn_reorder_run. */
void dnn_reorder_init(Reorder *r, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                  int alloc_out);
/* Returns in itself when no reorder is needed, else the reordered copy. */
const Tensor *dnn_reorder_run(Reorder *r, const Tensor *in);
/* Reorders in into out; when no reorder is needed, copies in to out, or does
 * nothing when both are the same memory. */
void dnn_reorder_run_into(Reorder *r, const Tensor *in, const Tensor *out);
void dnn_reorder_free(Reorder *r);

/* Picks the implementation for an op: the descriptor with explicit layouts
 * first, then the one with format "any" when the first has no fast
 * (non-reference) implementation. Either descriptor may be NULL. */
dnnl_primitive_desc_t dnn_pd_prefer(const void *explicit_desc, const void *any_desc,
                                    const_dnnl_primitive_attr_t attr,
                                    const_dnnl_primitive_desc_t hint);
const char *dnn_pd_impl_name(const_dnnl_primitive_desc_t pd);

/* One-off reorder between two memories (start-up and checkpoint I/O only). */
void dnn_copy(dnnl_memory_t from, dnnl_memory_t to);

void dnn_primitive_destroy(dnnl_primitive_t *p);
void dnn_pd_destroy(dnnl_primitive_desc_t *pd);

#endif
