/* droppath.c - per-sample stochastic depth on a branch output in any layout. */
#include "droppath.h"

#include <stdlib.h>
#include <string.h>

#include "dnn.h"
#include "error.h"
#include "rng.h"

/* Separates these decisions from every other stream made from the seed. */
#define DROPPATH_STREAM 0xd209a7e5ULL

void droppath_init(DropPath *d, const dnnl_memory_desc_t *md, double p, int block)
{
    memset(d, 0, sizeof *d);
    CHECK(p >= 0.0 && p < 1.0, "drop-path probability %g is not in [0, 1)", p);
    const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
    size_t total = dnn_md_floats(md);
    d->p = p;
    d->block = block;
    d->n = (int)md->dims[0];
    d->sample_floats = total / (size_t)d->n;
    int blocked_n = 0;
    for (int i = 0; i < b->inner_nblks; i++)
        blocked_n |= b->inner_idxs[i] == 0;
    CHECK(md->format_kind == dnnl_blocked && !blocked_n && md->offset0 == 0 &&
              md->padded_dims[0] == md->dims[0] && (size_t)b->strides[0] == d->sample_floats,
          "drop-path: the branch output's layout interleaves samples");
    d->scale = xcalloc((size_t)d->n, sizeof *d->scale);
    for (int i = 0; i < d->n; i++)
        d->scale[i] = 1.0f;
}

int droppath_keep(uint64_t seed, int64_t epoch, int64_t global_index, int block, double p)
{
    Rng r;
    rng_seed(&r, rng_hash(seed, DROPPATH_STREAM, (uint64_t)epoch), (uint64_t)global_index,
             (uint64_t)block);
    return rng_uniform(&r) >= p;
}

void droppath_draw(DropPath *d, uint64_t seed, int64_t epoch, const int64_t *global_index)
{
    float keep = (float)(1.0 / (1.0 - d->p));
    for (int i = 0; i < d->n; i++)
        d->scale[i] = droppath_keep(seed, epoch, global_index[i], d->block, d->p) ? keep : 0.0f;
}

void droppath_apply(const DropPath *d, const Tensor *src, Tensor *dst)
{
    size_t m = d->sample_floats;
    const float *x = src->data;
    float *y = dst->data;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < d->n; i++) {
        float s = d->scale[i];
        const float *xi = x + (size_t)i * m;
        float *yi = y + (size_t)i * m;
        if (s == 0.0f)
            memset(yi, 0, m * sizeof *yi);
        else
            for (size_t j = 0; j < m; j++)
                yi[j] = s * xi[j];
    }
}

void droppath_free(DropPath *d)
{
    free(d->scale);
    d->scale = NULL;
}
