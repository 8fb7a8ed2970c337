/* tensor.c - tensors over owned buffers or views of someone else's. */
#include "tensor.h"

#include <stdlib.h>
#include <string.h>

#include "dnn.h"
#include "error.h"

void tensor_view(Tensor *t, const dnnl_memory_desc_t *md, float *data)
{
    t->md = *md;
    t->data = data;
    t->owned = 0;
    DNNL_CHECK(dnnl_memory_create(&t->mem, &t->md, dnn_engine(),
                                  data ? (void *)data : DNNL_MEMORY_NONE));
}

void tensor_alloc(Tensor *t, const dnnl_memory_desc_t *md)
{
    tensor_view(t, md, xaligned_alloc(dnn_md_bytes(md)));
    t->owned = 1;
}

void tensor_set_data(Tensor *t, float *data)
{
    t->data = data;
    DNNL_CHECK(dnnl_memory_set_data_handle(t->mem, data));
}

void tensor_free(Tensor *t)
{
    if (t->mem)
        DNNL_CHECK(dnnl_memory_destroy(t->mem));
    if (t->owned)
        free(t->data);
    memset(t, 0, sizeof *t);
}
