/*
 * tensor.h - a tensor: a oneDNN memory descriptor, the floats it describes
 * and the dnnl_memory_t over them that primitives take as an argument.
 * Layers own the tensors they write and hold pointers to their inputs.
 * Local: nothing here talks to other ranks.
 */
#ifndef RESNET_TENSOR_H
#define RESNET_TENSOR_H

#include <oneapi/dnnl/dnnl.h>

typedef struct {
    dnnl_memory_desc_t md;
    float *data;
    dnnl_memory_t mem;
    int owned; /* data was allocated by tensor_alloc */
} Tensor;

/* A new 64-byte aligned, zeroed buffer of md's size; tensor_free releases it. */
void tensor_alloc(Tensor *t, const dnnl_memory_desc_t *md);
/* A view of data, which stays the caller's; data may be NULL until
 * tensor_set_data points the view somewhere. */
void tensor_view(Tensor *t, const dnnl_memory_desc_t *md, float *data);
void tensor_set_data(Tensor *t, float *data);
/* Destroys the memory object and frees owned data; zeroes t. */
void tensor_free(Tensor *t);

#endif
