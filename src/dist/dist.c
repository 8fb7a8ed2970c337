/* dist.c - MPI start-up and whole-buffer collectives. */
#include "dist.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "hash.h"
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

long dist_pause_next(long pause_ns)
{
    const long first = 2000, most = 1000000;
    return pause_ns < first ? first : pause_ns >= most / 2 ? most : 2 * pause_ns;
}

void dist_wait(MPI_Request *req)
{
    long pause_ns = 0;
    for (int polls = 0;; polls++) {
        int done = 0;
        MPI_CHECK(MPI_Test(req, &done, MPI_STATUS_IGNORE));
        if (done)
            return;
        if (polls >= DIST_SPIN_POLLS) {
            pause_ns = dist_pause_next(pause_ns);
            struct timespec pause = {0, pause_ns};
            nanosleep(&pause, NULL);
        }
    }
}

void dist_allreduce(const void *send, void *recv, int count, MPI_Datatype type, MPI_Op op)
{
    MPI_Request req;
    MPI_CHECK(MPI_Iallreduce(send, recv, count, type, op, MPI_COMM_WORLD, &req));
    dist_wait(&req);
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
    if (p->ema) { /* every rank keeps the average, or none does */
        bcast_floats(p->ema, p->total);
        bcast_floats(p->ema_state, p->state_total);
        MPI_CHECK(MPI_Bcast(&p->ema_num_batches_tracked, 1, MPI_INT64_T, 0, MPI_COMM_WORLD));
    }
}

/* The first rank, other than rank 0, whose value of each item's hash
 * differs from rank 0's: items in order, then ranks; -1 when all agree.
 * Every rank finds the same one. Collective. */
static int first_disagreement(const uint64_t *mine, int n, int *item, int *others)
{
    int rank, size, found = -1;
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
    uint64_t *all = xmalloc((size_t)size * (size_t)n * sizeof *all);
    MPI_CHECK(MPI_Allgather(mine, n, MPI_UINT64_T, all, n, MPI_UINT64_T, MPI_COMM_WORLD));
    *others = 0;
    for (int i = 0; i < n && found < 0; i++)
        for (int r = 1; r < size; r++)
            if (all[(size_t)r * n + i] != all[i]) {
                if (found < 0)
                    found = r, *item = i;
                ++*others;
            }
    free(all);
    return found;
}

/* Rank `from`'s text, to every rank. Collective. */
static void share_text(char *text, size_t len, int from)
{
    MPI_CHECK(MPI_Bcast(text, (int)len, MPI_CHAR, from, MPI_COMM_WORLD));
    text[len - 1] = '\0';
}

static void also_others(Status *st, int others)
{
    size_t used = strlen(st->msg);
    if (others > 1 && used < sizeof st->msg)
        snprintf(st->msg + used, sizeof st->msg - used, " (%d ranks differ from rank 0)", others);
}

void dist_agree_settings(const DistSetting *items, int n, Status *st)
{
    uint64_t *hash = xmalloc((size_t)n * sizeof *hash);
    for (int i = 0; i < n; i++)
        hash[i] = hash_fnv1a(HASH_FNV1A_START, items[i].value, strlen(items[i].value));
    int item = 0, others = 0, r = first_disagreement(hash, n, &item, &others);
    free(hash);
    if (r < 0)
        return;
    char theirs[sizeof items[0].value];
    snprintf(theirs, sizeof theirs, "%s", items[item].value);
    share_text(theirs, sizeof theirs, r);
    status_set(st, EXIT_USAGE, "the ranks disagree: rank %d has %s %s, rank 0 has %s", r,
               items[item].name, theirs, items[item].value);
    also_others(st, others);
}

/* Word k of s (space-separated) into out; "" past the end. */
static void word_at(const char *s, int k, char *out, size_t len)
{
    while (k-- > 0 && (s = strchr(s, ' ')) != NULL)
        s++;
    size_t n = s ? strcspn(s, " ") : 0;
    snprintf(out, len, "%.*s", (int)n, s ? s : "");
}

/* The index of the first word where a and b differ. */
static int first_differing_word(const char *a, const char *b)
{
    int k = 0;
    for (size_t i = 0; a[i] == b[i] && a[i]; i++)
        if (a[i] == ' ')
            k++;
    return k;
}

void dist_check_same_config(const char *command_line)
{
    uint64_t h = hash_fnv1a(HASH_FNV1A_START, command_line, strlen(command_line));
    int unused = 0, others = 0, r = first_disagreement(&h, 1, &unused, &others);
    if (r < 0)
        return;
    char theirs[4096], mine[256], other[256], flag[256];
    snprintf(theirs, sizeof theirs, "%s", command_line);
    share_text(theirs, sizeof theirs, r);
    /* the differing word, with the flag before it when it is a flag's value */
    int k = first_differing_word(command_line, theirs);
    word_at(command_line, k, mine, sizeof mine);
    word_at(theirs, k, other, sizeof other);
    word_at(command_line, k - 1, flag, sizeof flag);
    if (k == 0 || strncmp(flag, "--", 2) != 0 || strncmp(mine, "--", 2) == 0)
        flag[0] = '\0';
    Status st = {0};
    status_set(&st, EXIT_USAGE, "the ranks were started with different command lines: rank %d "
               "has '%s%s%s', rank 0 has '%s%s%s'", r, flag, flag[0] ? " " : "", other, flag,
               flag[0] ? " " : "", mine);
    also_others(&st, others);
    status_agree(&st);
}

uint64_t dist_params_hash(const Params *p)
{
    uint64_t h = HASH_FNV1A_START;
    h = hash_fnv1a(h, p->value, p->total * sizeof(float));
    h = hash_fnv1a(h, p->state, p->state_total * sizeof(float));
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
