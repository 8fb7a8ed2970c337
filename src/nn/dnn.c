/* dnn.c - oneDNN engine, stream, descriptors, primitives and reorders. */
#include "dnn.h"

#include <string.h>

#include <oneapi/dnnl/dnnl_debug.h>

#include "error.h"

static dnnl_engine_t g_engine;
static dnnl_stream_t g_stream;

void dnn_init(void)
{
    if (g_engine)
        return;
    DNNL_CHECK(dnnl_engine_create(&g_engine, dnnl_cpu, 0));
    DNNL_CHECK(dnnl_stream_create(&g_stream, g_engine, dnnl_stream_default_flags));
}

void dnn_free(void)
{
    if (g_stream)
        DNNL_CHECK(dnnl_stream_destroy(g_stream));
    if (g_engine)
        DNNL_CHECK(dnnl_engine_destroy(g_engine));
    g_stream = NULL;
    g_engine = NULL;
}

dnnl_engine_t dnn_engine(void) { return g_engine; }
dnnl_stream_t dnn_stream(void) { return g_stream; }

void dnn_wait(void)
{
    DNNL_CHECK(dnnl_stream_wait(g_stream));
}

dnnl_memory_desc_t dnn_md_make(int ndims, const dnnl_dim_t *dims, dnnl_format_tag_t tag)
{
    dnnl_memory_desc_t md;
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&md, ndims, dims, dnnl_f32, tag));
    return md;
}

dnnl_memory_desc_t dnn_md_any(int ndims, const dnnl_dim_t *dims)
{
    return dnn_md_make(ndims, dims, dnnl_format_tag_any);
}

size_t dnn_md_bytes(const dnnl_memory_desc_t *md)
{
    return dnnl_memory_desc_get_size(md);
}

size_t dnn_md_floats(const dnnl_memory_desc_t *md)
{
    return dnn_md_bytes(md) / sizeof(float);
}

int dnn_md_equal(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b)
{
    return dnnl_memory_desc_equal(a, b);
}

dnnl_memory_desc_t dnn_pd_md(const_dnnl_primitive_desc_t pd, dnnl_query_t what, int index)
{
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, what, index);
    CHECK(md != NULL, "primitive has no memory descriptor for query %d", (int)what);
    return *md;
}

dnnl_primitive_desc_t dnn_pd_try(const void *op_desc, const_dnnl_primitive_attr_t attr,
                                 const_dnnl_primitive_desc_t hint)
{
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_primitive_desc_create(&pd, (const_dnnl_op_desc_t)op_desc, attr,
                                                  g_engine, hint);
    if (st == dnnl_unimplemented)
        return NULL;
    DNNL_CHECK(st);
    return pd;
}

dnnl_primitive_desc_t dnn_pd_create(const void *op_desc, const_dnnl_primitive_attr_t attr,
                             const_dnnl_primitive_desc_t hint)
{
    dnnl_primitive_desc_t pd = NULL;
    DNNL_CHECK(dnnl_primitive_desc_create(&pd, (const_dnnl_op_desc_t)op_desc, attr, g_engine,
                                          hint));
    return pd;
}

dnnl_primitive_t dnn_primitive_create(const_dnnl_primitive_desc_t pd)
{
    dnnl_primitive_t p = NULL;
    DNNL_CHECK(dnnl_primitive_create(&p, pd));
    return p;
}

void dnn_args_clear(DnnArgs *a)
{
    a->n = 0;
}

void dnn_args_add(DnnArgs *a, int arg, dnnl_memory_t mem)
{
    CHECK(a->n < DNN_MAX_ARGS, "too many arguments for one primitive");
    a->a[a->n].arg = arg;
    a->a[a->n].memory = mem;
    a->n++;
}

/* Names the first argument whose layout the primitive did not expect, so a
 * failed execution says more than "invalid_arguments". */
static int mismatched_arg(dnnl_primitive_t prim, const DnnArgs *a)
{
    const_dnnl_primitive_desc_t pd = NULL;
    if (dnnl_primitive_get_primitive_desc(prim, &pd) != dnnl_success)
        return -1;
    for (int i = 0; i < a->n; i++) {
        const dnnl_memory_desc_t *want =
            dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, a->a[i].arg);
        const dnnl_memory_desc_t *have = NULL;
        if (dnnl_memory_get_memory_desc(a->a[i].memory, &have) != dnnl_success)
            return a->a[i].arg;
        if (!want || !dnnl_memory_desc_equal(want, have))
            return a->a[i].arg;
    }
    return -1;
}

void dnn_execute(dnnl_primitive_t prim, const DnnArgs *a)
{
    dnnl_status_t st = dnnl_primitive_execute(prim, g_stream, a->n, a->a);
    if (st != dnnl_success)
        fail_local(__FILE__, __LINE__, "dnnl_primitive_execute", "%s (argument %d)",
                   dnnl_status2str(st), mismatched_arg(prim, a));
}

void dnn_reorder_init(Reorder *r, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                  int alloc_out)
{
    memset(r, 0, sizeof *r);
    if (dnn_md_equal(from, to))
        return;
    dnnl_primitive_desc_t pd = NULL;
    DNNL_CHECK(dnnl_reorder_primitive_desc_create(&pd, from, g_engine, to, g_engine, NULL));
    r->prim = dnn_primitive_create(pd);
    dnn_pd_destroy(&pd);
    if (alloc_out)
        tensor_alloc(&r->out, to);
}

void dnn_reorder_run_into(Reorder *r, const Tensor *in, const Tensor *out)
{
    if (!r->prim) {
        if (in->data != out->data)
            memcpy(out->data, in->data, dnn_md_bytes(&in->md));
        return;
    }
    DnnArgs a;
    dnn_args_clear(&a);
    dnn_args_add(&a, DNNL_ARG_FROM, in->mem);
    dnn_args_add(&a, DNNL_ARG_TO, out->mem);
    dnn_execute(r->prim, &a);
}

const Tensor *dnn_reorder_run(Reorder *r, const Tensor *in)
{
    if (!r->prim)
        return in;
    dnn_reorder_run_into(r, in, &r->out);
    return &r->out;
}

void dnn_reorder_free(Reorder *r)
{
    dnn_primitive_destroy(&r->prim);
    if (r->out.mem)
        tensor_free(&r->out);
}

const char *dnn_pd_impl_name(const_dnnl_primitive_desc_t pd)
{
    const char *name = "";
    DNNL_CHECK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name));
    return name;
}

dnnl_primitive_desc_t dnn_pd_prefer(const void *explicit_desc, const void *any_desc,
                                    const_dnnl_primitive_attr_t attr,
                                    const_dnnl_primitive_desc_t hint)
{
    dnnl_primitive_desc_t pd = explicit_desc ? dnn_pd_try(explicit_desc, attr, hint) : NULL;
    if (pd && (!any_desc || strncmp(dnn_pd_impl_name(pd), "ref", 3) != 0))
        return pd;
    if (!any_desc) {
        CHECK(pd != NULL, "oneDNN has no implementation for this operation");
        return pd;
    }
    dnnl_primitive_desc_t alt = dnn_pd_try(any_desc, attr, hint);
    if (!alt) {
        CHECK(pd != NULL, "oneDNN has no implementation for this operation");
        return pd;
    }
    dnn_pd_destroy(&pd);
    return alt;
}

void dnn_copy(dnnl_memory_t from, dnnl_memory_t to)
{
    const dnnl_memory_desc_t *src_md, *dst_md;
    DNNL_CHECK(dnnl_memory_get_memory_desc(from, &src_md));
    DNNL_CHECK(dnnl_memory_get_memory_desc(to, &dst_md));
    dnnl_primitive_desc_t pd = NULL;
    DNNL_CHECK(dnnl_reorder_primitive_desc_create(&pd, src_md, g_engine, dst_md, g_engine, NULL));
    dnnl_primitive_t p = dnn_primitive_create(pd);
    DnnArgs a;
    dnn_args_clear(&a);
    dnn_args_add(&a, DNNL_ARG_FROM, from);
    dnn_args_add(&a, DNNL_ARG_TO, to);
    dnn_execute(p, &a);
    dnn_wait();
    dnn_primitive_destroy(&p);
    dnn_pd_destroy(&pd);
}

void dnn_primitive_destroy(dnnl_primitive_t *p)
{
    if (*p)
        DNNL_CHECK(dnnl_primitive_destroy(*p));
    *p = NULL;
}

void dnn_pd_destroy(dnnl_primitive_desc_t *pd)
{
    if (*pd)
        DNNL_CHECK(dnnl_primitive_desc_destroy(*pd));
    *pd = NULL;
}
