/* syncbn.c - exact cross-rank BatchNorm statistics and channel sums. */
#include "syncbn.h"

#include <mpi.h>
#include <stdlib.h>

#include "error.h"

typedef struct {
    MPI_Comm comm;
    int size;
    float *gathered; /* (size, 2, C) means and variances */
    int64_t *counts;
    size_t cap;
} SyncComm;

static SyncComm g_sync;
static BnSync g_hooks;

/* Chan et al.'s pairwise update, in rank order, in double: raw sums of
 * squares would cancel in float32. */
static double combine(void *ctx, float *mean, float *var, int channels, size_t count)
{
    SyncComm *s = ctx;
    size_t need = (size_t)s->size * 2 * (size_t)channels;
    if (need > s->cap) {
        s->gathered = xrealloc(s->gathered, need * sizeof(float));
        s->cap = need;
    }
    float *mine = xmalloc(2 * (size_t)channels * sizeof(float));
    for (int c = 0; c < channels; c++) {
        mine[c] = mean[c];
        mine[channels + c] = var[c];
    }
    int64_t n = (int64_t)count;
    MPI_CHECK(MPI_Allgather(&n, 1, MPI_INT64_T, s->counts, 1, MPI_INT64_T, s->comm));
    MPI_CHECK(MPI_Allgather(mine, 2 * channels, MPI_FLOAT, s->gathered, 2 * channels, MPI_FLOAT,
                            s->comm));
    free(mine);
    double total = 0;
    for (int r = 0; r < s->size; r++)
        total += (double)s->counts[r];
    for (int c = 0; c < channels; c++) {
        double nn = 0, m = 0, m2 = 0;
        for (int r = 0; r < s->size; r++) {
            const float *g = s->gathered + (size_t)r * 2 * channels;
            double nr = (double)s->counts[r], mr = g[c], m2r = (double)g[channels + c] * nr;
            double delta = mr - m, n_new = nn + nr;
            m += delta * nr / n_new;
            m2 += m2r + delta * delta * nn * nr / n_new;
            nn = n_new;
        }
        mean[c] = (float)m;
        var[c] = (float)(m2 / nn);
    }
    return total;
}

static void sum(void *ctx, float *a, float *b, int channels)
{
    SyncComm *s = ctx;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, a, channels, MPI_FLOAT, MPI_SUM, s->comm));
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, b, channels, MPI_FLOAT, MPI_SUM, s->comm));
}

const BnSync *syncbn_hooks(void)
{
    if (!g_hooks.ctx) {
        MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &g_sync.comm));
        MPI_CHECK(MPI_Comm_set_errhandler(g_sync.comm, MPI_ERRORS_RETURN));
        MPI_CHECK(MPI_Comm_size(g_sync.comm, &g_sync.size));
        g_sync.counts = xcalloc((size_t)g_sync.size, sizeof *g_sync.counts);
        g_hooks = (BnSync){combine, sum, &g_sync};
    }
    return &g_hooks;
}

void syncbn_free(void)
{
    if (!g_hooks.ctx)
        return;
    MPI_CHECK(MPI_Comm_free(&g_sync.comm));
    free(g_sync.gathered);
    free(g_sync.counts);
    g_sync = (SyncComm){0};
    g_hooks = (BnSync){0};
}
