/* syncbn.c - exact cross-rank BatchNorm statistics and channel sums. */
#include "syncbn.h"

#include <mpi.h>
#include <stdlib.h>

#include "error.h"

typedef struct {
    MPI_Comm comm;
    int size;
    double *gathered; /* (size, 1 + 2C): count, means, M2 */
    size_t cap;
} SyncComm;

static SyncComm g_sync;
static BnSync g_hooks;

/* Chan et al.'s pairwise update of (count, mean, M2), in rank order, in
 * double: exact up to double rounding however the batch is split. */
static double combine(void *ctx, double *mean, double *m2, int channels, double count)
{
    SyncComm *s = ctx;
    size_t row = 1 + 2 * (size_t)channels, need = (size_t)s->size * row;
    if (need > s->cap) {
        s->gathered = xrealloc(s->gathered, need * sizeof(double));
        s->cap = need;
    }
    double *mine = xmalloc(row * sizeof(double));
    mine[0] = count;
    for (int c = 0; c < channels; c++) {
        mine[1 + c] = mean[c];
        mine[1 + channels + c] = m2[c];
    }
    MPI_CHECK(MPI_Allgather(mine, (int)row, MPI_DOUBLE, s->gathered, (int)row, MPI_DOUBLE,
                            s->comm));
    free(mine);
    double total = 0;
    for (int r = 0; r < s->size; r++)
        total += s->gathered[(size_t)r * row];
    for (int c = 0; c < channels; c++) {
        double nn = 0, m = 0, q = 0;
        for (int r = 0; r < s->size; r++) {
            const double *g = s->gathered + (size_t)r * row;
            double nr = g[0], delta = g[1 + c] - m, n_new = nn + nr;
            if (nr == 0)
                continue;
            m += delta * nr / n_new;
            q += g[1 + channels + c] + delta * delta * nn * nr / n_new;
            nn = n_new;
        }
        mean[c] = m;
        m2[c] = q;
    }
    return total;
}

static void sum(void *ctx, double *a, double *b, int channels)
{
    SyncComm *s = ctx;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, a, channels, MPI_DOUBLE, MPI_SUM, s->comm));
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, b, channels, MPI_DOUBLE, MPI_SUM, s->comm));
}

const BnSync *syncbn_hooks(void)
{
    if (!g_hooks.ctx) {
        MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &g_sync.comm));
        MPI_CHECK(MPI_Comm_set_errhandler(g_sync.comm, MPI_ERRORS_RETURN));
        MPI_CHECK(MPI_Comm_size(g_sync.comm, &g_sync.size));
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
    g_sync = (SyncComm){0};
    g_hooks = (BnSync){0};
}
