/*
 * prep_writer.c - parallel HDF5 writer of prepared datasets: rounds of
 * loads, MPI_Exscan placement, collective extend + hyperslab writes, exact
 * mean/std, temporary file renamed at the end.
 */
#include "prep_writer.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <hdf5.h>
#include <mpi.h>

#include "error.h"
#include "h5lock.h"
#include "log.h"
#include "prep_output.h"
#include "prep_progress.h"
#include "prep_stats.h"

/* A round loads about this many decoded bytes per rank, bounding memory
 * while keeping the per-round collectives cheap for small images. */
#define ROUND_BYTES ((size_t)8 << 20)
#define ROUND_MIN 4
#define ROUND_MAX 4096
#define CHUNK_BYTES ((size_t)64 << 10) /* raw image chunks: one image or a few */
/* JPEG bytes: chunks larger than HDF5's default 1 MiB chunk cache are read
 * partially, so a reader fetching one image reads only its bytes. */
#define CHUNK_JPEG ((hsize_t)4 << 20)
#define CHUNK_ROWS ((hsize_t)4096) /* labels, offsets */

typedef struct {
    hid_t images; /* raw */
    hid_t jpeg;   /* jpeg */
    hid_t offsets;
    hid_t labels;
    hid_t group;
    uint64_t n, bytes, skipped;
} SplitSets;

typedef struct {
    char name[16];
    uint64_t n, bytes, skipped;
} SplitDone;

struct PrepWriter {
    PrepLayout layout;
    int strict, force;
    int rank, world;
    char *out_path, *tmp_path;
    hid_t file, xfer;
    size_t round; /* most candidates per rank per round (buffer size) */
    PrepRecord *recs;
    uint8_t *pack; /* contiguous bytes of one round for H5Dwrite */
    size_t pack_cap;
    int64_t *ends; /* jpeg: offsets[i+1] of this rank's records in a round */
    int32_t *labels;
    char *warn;    /* this rank's skip warnings of the current round */
    size_t warn_len, warn_cap;
    PixelStats stats;
    PrepProgress progress;
    uint64_t candidates_done;
    SplitDone done[3];
    int ndone;
    int closed;         /* the HDF5 file is closed */
    int io_failed;      /* a write to the temporary file failed on this rank */
    char io_call[48];   /* the HDF5 call that failed */
};

/* Writes to the temporary file can fail for reasons outside the program (a
 * full disk, a quota, an I/O error). Such a failure is recorded, not
 * aborted on: the ranks go on through the same collective calls, agree at
 * the end of the round, remove the temporary file and name the problem. */
static int64_t io_check(PrepWriter *w, int64_t ret, const char *call)
{
    if (ret < 0 && !w->io_failed) {
        w->io_failed = 1;
        snprintf(w->io_call, sizeof w->io_call, "%.*s", (int)strcspn(call, "("), call);
    }
    return ret;
}
#define IO_CHECK(w, call) io_check((w), (int64_t)(call), #call)

static void pack_reserve(PrepWriter *w, size_t bytes)
{
    if (bytes > w->pack_cap) {
        free(w->pack);
        w->pack = xmalloc(bytes);
        w->pack_cap = bytes;
    }
}

static size_t round_size(const PrepLayout *l)
{
    size_t per = (size_t)l->h * (size_t)l->w * (size_t)l->c;
    if (l->encoding == PREP_JPEG)
        per = per * 3 / 2; /* the longer side is longer */
    size_t n = ROUND_BYTES / (per ? per : 1);
    return n < ROUND_MIN ? ROUND_MIN : n > ROUND_MAX ? ROUND_MAX : n;
}

/* Collective. Exclusive creation: never through a symlink planted at the
 * name, never over another file (prep_output_tmp_claim checked the name is
 * free; this makes the check and the creation one step). */
static hid_t file_create(const char *out_path, const char *path)
{
    hid_t fapl = H5_CHECK(H5Pcreate(H5P_FILE_ACCESS));
    H5_CHECK(H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL));
    H5_CHECK(H5Pset_coll_metadata_write(fapl, 1));
    hid_t file = H5Fcreate(path, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
    H5_CHECK(H5Pclose(fapl));
    int bad = file < 0, any = 0;
    MPI_CHECK(MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    Status st = {0};
    if (any) {
        if (file >= 0)
            H5Fclose(file);
        /* Rank 0 created it (the others open what it made): then it is ours
         * to remove; if rank 0 failed, what is there belongs to someone else. */
        if (file >= 0 && log_rank_id() == 0)
            unlink(path);
        status_set(&st, EXIT_USAGE,
                   "--out %s: cannot create the temporary file %s with parallel HDF5 (it "
                   "appeared meanwhile, or the file system lacks locking or MPI-IO support)",
                   out_path, path);
    }
    status_agree(&st);
    return file;
}

PrepWriter *prep_writer_open(const char *out_path, const PrepLayout *layout, uint64_t total,
                             int strict, int force)
{
    prep_output_check(out_path, force);
    PrepWriter *w = xcalloc(1, sizeof *w);
    w->layout = *layout;
    w->strict = strict;
    w->force = force;
    w->rank = log_rank_id();
    w->world = log_world_size();
    w->out_path = xstrdup(out_path);
    w->tmp_path = prep_output_tmp_claim(out_path);
    w->round = round_size(layout);
    w->recs = xcalloc(w->round, sizeof *w->recs);
    w->ends = xmalloc(w->round * sizeof *w->ends);
    w->labels = xmalloc(w->round * sizeof *w->labels);
    prep_stats_init(&w->stats, layout->c);
    h5_lock();
    w->file = file_create(out_path, w->tmp_path);
    prep_output_tmp_arm(w->tmp_path);
    w->xfer = H5_CHECK(H5Pcreate(H5P_DATASET_XFER));
    H5_CHECK(H5Pset_dxpl_mpio(w->xfer, H5FD_MPIO_COLLECTIVE));
    h5_unlock();
    prep_progress_start(&w->progress, total);
    return w;
}

/* An extendible chunked dataset with `rank` dims: (0, row...) now, (unlimited,
 * row...) at most. Caller holds the h5 lock. */
static hid_t dataset_create(hid_t group, const char *name, hid_t type, int rank,
                            const hsize_t *row, hsize_t chunk_rows)
{
    hsize_t dims[4] = {0}, maxdims[4] = {H5S_UNLIMITED}, chunk[4] = {chunk_rows};
    for (int i = 1; i < rank; i++)
        dims[i] = maxdims[i] = chunk[i] = row[i - 1];
    hid_t space = H5_CHECK(H5Screate_simple(rank, dims, maxdims));
    hid_t dcpl = H5_CHECK(H5Pcreate(H5P_DATASET_CREATE));
    H5_CHECK(H5Pset_chunk(dcpl, rank, chunk));
    /* Every element is written exactly once; fill values would be wasted I/O. */
    H5_CHECK(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER));
    hid_t dset = H5_CHECK(H5Dcreate2(group, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT));
    H5_CHECK(H5Pclose(dcpl));
    H5_CHECK(H5Sclose(space));
    return dset;
}

/* Collective: grows dset to `total` rows and writes this rank's `count` rows
 * at `start` (count may be 0). Caller holds the h5 lock. */
static void rows_write(PrepWriter *w, hid_t dset, hid_t memtype, hsize_t total, hsize_t start,
                       hsize_t count, const void *buf)
{
    hsize_t dims[4];
    hid_t fspace = H5_CHECK(H5Dget_space(dset));
    int rank = H5_CHECK(H5Sget_simple_extent_dims(fspace, dims, NULL));
    H5_CHECK(H5Sclose(fspace));
    dims[0] = total;
    IO_CHECK(w, H5Dset_extent(dset, dims));
    fspace = H5_CHECK(H5Dget_space(dset));
    hsize_t off[4] = {start, 0, 0, 0}, cnt[4];
    memcpy(cnt, dims, sizeof cnt);
    cnt[0] = count;
    hid_t mspace = H5_CHECK(H5Screate_simple(rank, cnt, NULL));
    if (count) {
        H5_CHECK(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, off, NULL, cnt, NULL));
    } else {
        H5_CHECK(H5Sselect_none(fspace));
        H5_CHECK(H5Sselect_none(mspace));
    }
    static const uint8_t none; /* HDF5 wants a buffer even for an empty selection */
    IO_CHECK(w, H5Dwrite(dset, memtype, mspace, fspace, w->xfer, count ? buf : &none));
    H5_CHECK(H5Sclose(mspace));
    H5_CHECK(H5Sclose(fspace));
}

static void split_create(PrepWriter *w, const char *name, SplitSets *s)
{
    memset(s, 0, sizeof *s);
    const PrepLayout *l = &w->layout;
    h5_lock();
    s->group = H5_CHECK(H5Gcreate2(w->file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    if (l->encoding == PREP_RAW) {
        hsize_t row[3] = {(hsize_t)l->h, (hsize_t)l->w, (hsize_t)l->c};
        size_t per = (size_t)l->h * l->w * l->c;
        hsize_t k = per >= CHUNK_BYTES ? 1 : CHUNK_BYTES / per;
        s->images = dataset_create(s->group, "images", H5T_STD_U8LE, 4, row, k);
    } else {
        s->jpeg = dataset_create(s->group, "jpeg", H5T_STD_U8LE, 1, NULL, CHUNK_JPEG);
        s->offsets = dataset_create(s->group, "offsets", H5T_STD_I64LE, 1, NULL, CHUNK_ROWS);
        int64_t zero = 0; /* offsets[0]: rank 0 writes it, the others join empty */
        rows_write(w, s->offsets, H5T_NATIVE_INT64, 1, 0, w->rank == 0 ? 1 : 0, &zero);
    }
    s->labels = dataset_create(s->group, "labels", H5T_STD_I32LE, 1, NULL, CHUNK_ROWS);
    h5_unlock();
}

static void split_close(SplitSets *s)
{
    h5_lock();
    hid_t ids[] = {s->images, s->jpeg, s->offsets, s->labels};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i] > 0)
            H5_CHECK(H5Dclose(ids[i]));
    H5_CHECK(H5Gclose(s->group));
    h5_unlock();
}

/* Closes every object of the file and the file, ignoring failures, as the
 * file is deleted anyway. Collective (the closes of the MPI-IO driver are).
 * After a failed write (failed: on any rank) rank 0 first cuts the file to
 * nothing: on a full disk that frees the room HDF5 needs to write its last
 * metadata, for an HDF5 file whose close fails is left half torn down and
 * crashes the library's own clean-up at exit. */
static void file_close_quietly(PrepWriter *w, int failed)
{
    if (w->closed)
        return;
    if (failed && w->rank == 0)
        (void)truncate(w->tmp_path, 0);
    if (failed)
        MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
    h5_lock();
    H5E_BEGIN_TRY
    {
        /* The MPI-IO driver refuses to close a file with objects still open.
         * Every rank opened the same ones in the same order, so closing them
         * by id keeps the (collective) closes matched. */
        unsigned types = H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_LOCAL;
        ssize_t n = H5Fget_obj_count(w->file, types);
        hid_t *ids = xmalloc((size_t)(n > 0 ? n : 1) * sizeof *ids);
        n = n > 0 ? H5Fget_obj_ids(w->file, types, (size_t)n, ids) : 0;
        for (ssize_t i = 0; i < n; i++)
            H5Oclose(ids[i]);
        free(ids);
        if (w->xfer >= 0)
            H5Pclose(w->xfer);
        w->xfer = -1;
        H5Fclose(w->file);
    }
    H5E_END_TRY;
    h5_unlock();
    w->closed = 1;
}

/* Collective: closes and deletes the temporary file, then every rank exits
 * with the error of the lowest failing rank (the earliest candidate). */
static _Noreturn void writer_abort(PrepWriter *w, const Status *st, int io_failed)
{
    prep_progress_clear(&w->progress);
    file_close_quietly(w, io_failed);
    MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
    if (w->rank == 0)
        unlink(w->tmp_path);
    prep_output_tmp_disarm();
    status_agree(st);
    exit_all(EXIT_INTERNAL); /* status_agree returns only if nobody failed */
}

/* Why a write failed, as far as can be told: HDF5 keeps no errno, so a full
 * file system is recognised by its free space. */
static const char *io_reason(const PrepWriter *w)
{
    char *copy = xstrdup(w->tmp_path);
    struct statvfs vfs;
    int full = statvfs(dirname(copy), &vfs) == 0 &&
               (uint64_t)vfs.f_bavail * vfs.f_frsize < ((uint64_t)1 << 20);
    free(copy);
    return full ? "the file system is full" : "an I/O error; see the lines above";
}

/* Collective: if a write failed on any rank, ends the run (the lowest such
 * rank's failure is reported). */
static void io_agree(PrepWriter *w)
{
    int mine = w->io_failed, any = 0;
    MPI_CHECK(MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    if (!any)
        return;
    Status st = {0};
    if (w->io_failed)
        status_set(&st, EXIT_INTERNAL,
                   "--out %s: writing %s failed (%s: %s); it was removed and %s is unchanged",
                   w->out_path, w->tmp_path, w->io_call, io_reason(w), w->out_path);
    writer_abort(w, &st, 1);
}

static void warn_append(PrepWriter *w, const char *why)
{
    size_t n = strlen(why) + 20;
    if (w->warn_len + n > w->warn_cap) {
        w->warn_cap = (w->warn_len + n) * 2;
        w->warn = xrealloc(w->warn, w->warn_cap);
    }
    w->warn_len += (size_t)snprintf(w->warn + w->warn_len, n, "warning: skipped %s\n", why);
}

/* Collective: rank 0 prints every rank's warnings of this round in rank
 * order, i.e. in file order. */
static void warn_flush(PrepWriter *w)
{
    int len = (int)w->warn_len, *lens = NULL, *displs = NULL, total = 0;
    char *all = NULL;
    if (w->rank == 0) {
        lens = xmalloc((size_t)w->world * sizeof *lens);
        displs = xmalloc((size_t)w->world * sizeof *displs);
    }
    MPI_CHECK(MPI_Gather(&len, 1, MPI_INT, lens, 1, MPI_INT, 0, MPI_COMM_WORLD));
    if (w->rank == 0) {
        for (int r = 0; r < w->world; r++) {
            displs[r] = total;
            total += lens[r];
        }
        all = xmalloc((size_t)total + 1);
    }
    MPI_CHECK(MPI_Gatherv(w->warn, len, MPI_CHAR, all, lens, displs, MPI_CHAR, 0,
                          MPI_COMM_WORLD));
    if (w->rank == 0) {
        all[total] = '\0';
        prep_progress_clear(&w->progress);
        fputs(all, stderr);
        fflush(stderr);
    }
    free(all);
    free(displs);
    free(lens);
    w->warn_len = 0;
}

/* Loads this rank's candidates [lo, hi); returns how many records are good.
 * A fatal problem is left in st. */
static size_t round_load(PrepWriter *w, const PrepSplit *sp, size_t lo, size_t hi, Status *st,
                         uint64_t *bytes, uint64_t *skipped)
{
    size_t good = 0;
    char why[1024];
    for (size_t i = lo; i < hi && !st->code; i++) {
        PrepRecord *rec = &w->recs[good];
        why[0] = '\0';
        PrepLoad res = sp->load(sp->ctx, i, rec, why, sizeof why);
        if (res == PREP_LOAD_OK) {
            const Image *im = &rec->image;
            if (w->layout.encoding == PREP_RAW)
                CHECK(im->h == w->layout.h && im->w == w->layout.w && im->c == w->layout.c,
                      "/%s record %zu is %dx%dx%d", sp->name, i, im->h, im->w, im->c);
            CHECK(rec->label >= 0 && rec->label < w->layout.num_classes, "/%s record %zu label %d",
                  sp->name, i, (int)rec->label);
            if (sp->is_train)
                prep_stats_add(&w->stats, im->px, (size_t)im->w * im->h);
            *bytes += rec->jpeg_size;
            good++;
        } else if (res == PREP_LOAD_SKIP && !w->strict) {
            warn_append(w, why);
            (*skipped)++;
        } else {
            status_set(st, EXIT_USAGE, "%s%s", why,
                       res == PREP_LOAD_SKIP ? " (--strict: bad images are errors)" : "");
        }
    }
    return good;
}

/* Copies the good records of a round into one contiguous buffer. */
static void round_pack(PrepWriter *w, size_t good, uint64_t bytes, uint64_t byte_base)
{
    if (w->layout.encoding == PREP_RAW) {
        size_t per = (size_t)w->layout.h * w->layout.w * w->layout.c;
        pack_reserve(w, good * per);
        for (size_t i = 0; i < good; i++)
            memcpy(w->pack + i * per, w->recs[i].image.px, per);
    } else {
        pack_reserve(w, bytes);
        size_t at = 0;
        for (size_t i = 0; i < good; i++) {
            memcpy(w->pack + at, w->recs[i].jpeg, w->recs[i].jpeg_size);
            at += w->recs[i].jpeg_size;
            w->ends[i] = (int64_t)(byte_base + at);
        }
    }
    for (size_t i = 0; i < good; i++) {
        w->labels[i] = w->recs[i].label;
        free(w->recs[i].jpeg);
        w->recs[i].jpeg = NULL;
        w->recs[i].jpeg_size = 0;
    }
}

static void round_run(PrepWriter *w, const PrepSplit *sp, SplitSets *s, size_t first,
                      size_t share)
{
    size_t lo = first + (size_t)w->rank * share, hi = lo + share;
    lo = lo > sp->count ? sp->count : lo;
    hi = hi > sp->count ? sp->count : hi;
    Status st = {0};
    uint64_t bytes = 0, skipped = 0;
    size_t good = round_load(w, sp, lo, hi, &st, &bytes, &skipped);

    /* mine: good, bytes, skipped, failed -> job-wide sums; base: my place. */
    uint64_t mine[4] = {good, bytes, skipped, st.code != 0}, sum[4], base[2] = {0, 0};
    MPI_CHECK(MPI_Allreduce(mine, sum, 4, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD));
    if (sum[3])
        writer_abort(w, &st, 0);
    if (sum[2])
        warn_flush(w);
    MPI_CHECK(MPI_Exscan(mine, base, 2, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD));
    if (w->rank == 0)
        base[0] = base[1] = 0; /* MPI_Exscan leaves rank 0's result undefined */

    round_pack(w, good, bytes, s->bytes + base[1]);
    h5_lock();
    if (w->layout.encoding == PREP_RAW) {
        rows_write(w, s->images, H5T_NATIVE_UINT8, s->n + sum[0], s->n + base[0], good, w->pack);
    } else {
        rows_write(w, s->jpeg, H5T_NATIVE_UINT8, s->bytes + sum[1], s->bytes + base[1], bytes,
                   w->pack);
        rows_write(w, s->offsets, H5T_NATIVE_INT64, s->n + sum[0] + 1, s->n + base[0] + 1, good,
                   w->ends);
    }
    rows_write(w, s->labels, H5T_NATIVE_INT32, s->n + sum[0], s->n + base[0], good, w->labels);
    h5_unlock();
    io_agree(w);
    s->n += sum[0];
    s->bytes += sum[1];
    s->skipped += sum[2];
}

void prep_writer_split(PrepWriter *w, const PrepSplit *sp)
{
    CHECK(w->ndone < 3, "more than 3 splits");
    SplitSets s;
    split_create(w, sp->name, &s);
    prep_progress_phase(&w->progress, sp->name);
    /* A split smaller than a full round is still spread over all ranks. */
    size_t even = (sp->count + (size_t)w->world - 1) / (size_t)w->world;
    size_t share = even < w->round ? (even ? even : 1) : w->round;
    size_t per_round = share * (size_t)w->world;
    for (size_t first = 0; first < sp->count; first += per_round) {
        round_run(w, sp, &s, first, share);
        size_t seen = first + per_round < sp->count ? first + per_round : sp->count;
        prep_progress_update(&w->progress, w->candidates_done + seen);
    }
    w->candidates_done += sp->count;
    split_close(&s);
    if (s.n == 0) {
        Status st = {0};
        status_set(&st, EXIT_USAGE, "/%s: none of its %zu images could be read, nothing to write",
                   sp->name, sp->count);
        writer_abort(w, &st, 0);
    }
    SplitDone *d = &w->done[w->ndone++];
    snprintf(d->name, sizeof d->name, "%s", sp->name);
    d->n = s.n;
    d->bytes = s.bytes;
    d->skipped = s.skipped;
}

/* Caller holds the h5 lock. A fixed-length, NUL-terminated ASCII string
 * type: h5py reads it as bytes, C readers get a terminated string. */
static hid_t string_type(size_t max_len)
{
    hid_t t = H5_CHECK(H5Tcopy(H5T_C_S1));
    H5_CHECK(H5Tset_size(t, max_len + 1));
    H5_CHECK(H5Tset_strpad(t, H5T_STR_NULLTERM));
    H5_CHECK(H5Tset_cset(t, H5T_CSET_ASCII));
    return t;
}

static void attr_write(PrepWriter *w, hid_t obj, const char *name, hid_t file_type,
                       hid_t mem_type, int n, const void *value)
{
    hsize_t dims[1] = {(hsize_t)n};
    hid_t space = H5_CHECK(n ? H5Screate_simple(1, dims, NULL) : H5Screate(H5S_SCALAR));
    hid_t attr = H5_CHECK(H5Acreate2(obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT));
    IO_CHECK(w, H5Awrite(attr, mem_type, value));
    H5_CHECK(H5Aclose(attr));
    H5_CHECK(H5Sclose(space));
}

/* Collective; every rank passes the same values, as parallel HDF5 requires. */
static void root_attrs_write(PrepWriter *w, const double *mean, const double *std)
{
    int version = 1, classes = w->layout.num_classes;
    const char *enc = w->layout.encoding == PREP_RAW ? "raw" : "jpeg";
    h5_lock();
    attr_write(w, w->file, "resnet_dataset_version", H5T_STD_I32LE, H5T_NATIVE_INT, 0, &version);
    attr_write(w, w->file, "num_classes", H5T_STD_I32LE, H5T_NATIVE_INT, 0, &classes);
    attr_write(w, w->file, "mean", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, w->layout.c, mean);
    attr_write(w, w->file, "std", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, w->layout.c, std);
    hid_t st = string_type(strlen(enc));
    attr_write(w, w->file, "encoding", st, st, 0, enc);
    H5_CHECK(H5Tclose(st));
    h5_unlock();
}

/* Collective: /classes as fixed-length strings; rank 0 writes the data. */
static void classes_write(PrepWriter *w)
{
    const PrepLayout *l = &w->layout;
    if (!l->classes)
        return;
    size_t len = 1;
    for (int i = 0; i < l->num_classes; i++)
        len = strlen(l->classes[i]) > len ? strlen(l->classes[i]) : len;
    char *buf = xcalloc((size_t)l->num_classes, len + 1);
    for (int i = 0; i < l->num_classes; i++)
        memcpy(buf + (size_t)i * (len + 1), l->classes[i], strlen(l->classes[i]));
    h5_lock();
    hid_t type = string_type(len);
    hsize_t dims[1] = {(hsize_t)l->num_classes};
    hid_t space = H5_CHECK(H5Screate_simple(1, dims, NULL));
    hid_t dset = H5_CHECK(
        H5Dcreate2(w->file, "classes", type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    hid_t mspace = H5_CHECK(H5Screate_simple(1, dims, NULL));
    if (w->rank != 0) {
        H5_CHECK(H5Sselect_none(space));
        H5_CHECK(H5Sselect_none(mspace));
    }
    IO_CHECK(w, H5Dwrite(dset, type, mspace, space, w->xfer, buf));
    H5_CHECK(H5Sclose(mspace));
    H5_CHECK(H5Dclose(dset));
    H5_CHECK(H5Sclose(space));
    H5_CHECK(H5Tclose(type));
    h5_unlock();
    free(buf);
}

/* Collective, after every rank closed the file: rank 0 makes the bytes
 * durable and gives the file its final name in one atomic step. */
static void commit_rename(PrepWriter *w)
{
    Status st = {0};
    if (w->rank == 0)
        prep_output_commit(w->tmp_path, w->out_path, w->force, &st);
    prep_output_tmp_disarm();
    status_agree(&st);
}

static void summary_print(PrepWriter *w, const double *mean, const double *std)
{
    const PrepLayout *l = &w->layout;
    struct stat sb;
    double mib = stat(w->out_path, &sb) == 0 ? (double)sb.st_size / (1 << 20) : 0.0;
    if (l->encoding == PREP_RAW)
        log_info("wrote %s: raw %dx%dx%d images, %d classes, %.1f MiB, %.1f s", w->out_path,
                 l->h, l->w, l->c, l->num_classes, mib, prep_progress_elapsed(&w->progress));
    else
        log_info("wrote %s: jpeg images (shorter side %d), %d classes, %.1f MiB, %.1f s",
                 w->out_path, l->h, l->num_classes, mib, prep_progress_elapsed(&w->progress));
    uint64_t skipped = 0;
    for (int i = 0; i < w->ndone; i++) {
        const SplitDone *d = &w->done[i];
        skipped += d->skipped;
        log_info("  /%-5s %10llu images, %llu skipped", d->name, (unsigned long long)d->n,
                 (unsigned long long)d->skipped);
    }
    char m[128] = "", s[128] = "";
    for (int ch = 0; ch < l->c; ch++) {
        size_t ml = strlen(m), sl = strlen(s);
        snprintf(m + ml, sizeof m - ml, " %.6f", mean[ch]);
        snprintf(s + sl, sizeof s - sl, " %.6f", std[ch]);
    }
    log_info("  mean%s  std%s (pixel/255, training images)", m, s);
    if (skipped)
        log_info("  %llu unreadable images were skipped (warnings above name them)",
                 (unsigned long long)skipped);
}

void prep_writer_finish(PrepWriter *w)
{
    double mean[PREP_MAX_CHANNELS], std[PREP_MAX_CHANNELS];
    prep_stats_reduce(&w->stats, MPI_COMM_WORLD);
    prep_stats_mean_std(&w->stats, mean, std);
    root_attrs_write(w, mean, std);
    classes_write(w);
    h5_lock();
    H5_CHECK(H5Pclose(w->xfer));
    w->xfer = -1;
    /* Closing flushes what HDF5 still holds: a full disk can show here. */
    w->closed = IO_CHECK(w, H5Fclose(w->file)) >= 0;
    h5_unlock();
    io_agree(w);
    commit_rename(w);
    prep_progress_finish(&w->progress);
    summary_print(w, mean, std);
    for (size_t i = 0; i < w->round; i++)
        image_free(&w->recs[i].image);
    free(w->recs);
    free(w->ends);
    free(w->labels);
    free(w->pack);
    free(w->warn);
    free(w->tmp_path);
    free(w->out_path);
    free(w);
}
