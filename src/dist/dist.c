/* dist.c - MPI start-up and whole-buffer collectives. */
#include "dist.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"

void dist_init(int *argc, char ***argv, DistInfo *d)
{
    int provided = 0;
    /* The gradient reducer needs SERIALIZED (its thread and the step loop
     * take turns); synchronised BatchNorm talks during backward while the
     * reducer's thread is busy, which needs MULTIPLE. */
    MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided));
    d->thread_level = provided;
    MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &d->rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &d->size));
    MPI_Comm node;
    MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL,
                                  &node));
    MPI_CHECK(MPI_Comm_rank(node, &d->local_rank));
    MPI_CHECK(MPI_Comm_size(node, &d->local_size));
    MPI_CHECK(MPI_Comm_free(&node));
    log_set_rank(d->rank, d->size);
    CHECK(provided >= MPI_THREAD_SERIALIZED, "MPI provides thread level %d, need SERIALIZED",
          provided);
}

void dist_finalize(void)
{
    MPI_CHECK(MPI_Finalize());
}

/* Large buffers go in pieces: MPI counts are int. */
static void bcast_floats(float *buf, size_t n)
{
    const size_t piece = (size_t)1 << 30;
    for (size_t off = 0; off < n; off += piece) {
        int count = (int)(n - off < piece ? n - off : piece);
        MPI_CHECK(MPI_Bcast(buf + off, count, MPI_FLOAT, 0, MPI_COMM_WORLD));
    }
}

void dist_broadcast_state(Params *p)
{
    bcast_floats(p->value, p->total);
    bcast_floats(p->momentum, p->total);
    bcast_floats(p->state, p->state_total);
    MPI_CHECK(MPI_Bcast(&p->num_batches_tracked, 1, MPI_INT64_T, 0, MPI_COMM_WORLD));
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

void dist_check_same_config(const char *command_line)
{
    uint64_t h = fnv1a(0xcbf29ce484222325ULL, command_line, strlen(command_line)), lo, hi;
    MPI_CHECK(MPI_Allreduce(&h, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD));
    MPI_CHECK(MPI_Allreduce(&h, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD));
    Status st = {0};
    if (lo != hi)
        status_set(&st, EXIT_USAGE, "the ranks were started with different command lines");
    status_agree(&st);
}

uint64_t dist_params_hash(const Params *p)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv1a(h, p->value, p->total * sizeof(float));
    h = fnv1a(h, p->state, p->state_total * sizeof(float));
    return h;
}

void dist_check_params(const Params *p, const char *when)
{
    int rank, size;
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
    if (size == 1)
        return;
    uint64_t mine = dist_params_hash(p);
    uint64_t *all = xmalloc((size_t)size * sizeof *all);
    MPI_CHECK(MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD));
    int bad = 0;
    char ranks[256] = "";
    size_t used = 0;
    for (int r = 1; r < size; r++)
        if (all[r] != all[0]) {
            if (used < sizeof ranks - 16)
                used += (size_t)snprintf(ranks + used, sizeof ranks - used, "%s%d", bad ? "," : "", r);
            bad++;
        }
    free(all);
    if (!bad)
        return;
    if (rank == 0)
        fprintf(stderr, "error: parameters differ across ranks %s: rank(s) %s disagree with rank 0\n",
                when, ranks);
    exit_all(EXIT_INTERNAL);
}
