/*
 * prep_verify.c - `resnet_prep verify`: read every record of a dataset file
 * and check it; ranks split the records of each split.
 */
#include "prep_verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "error.h"
#include "h5lock.h"
#include "h5util.h"
#include "image_io.h"
#include "log.h"
#include "prep_flags.h"
#include "prep_inspect.h"

#define VERIFY_LABEL_BLOCK ((hsize_t)1 << 16)
#define VERIFY_IMAGE_BYTES ((size_t)8 << 20)
#define VERIFY_MAX_JPEG ((int64_t)1 << 28) /* one record's bytes: more is a broken offset */

typedef struct {
    const char *path;
    const PrepInfo *info;
    const PrepSplitInfo *sp;
    hid_t group;
    uint64_t lo, hi; /* this rank's records */
    ImageCodec *codec;
} Verify;

/* Reads count elements from start of a 1-d dataset, or rows of a 4-d one.
 * Caller holds the h5 lock. */
static int rows_read(hid_t group, const char *name, hid_t memtype, hsize_t start, hsize_t count,
                     void *buf)
{
    hid_t d = H5_CHECK(H5Dopen2(group, name, H5P_DEFAULT));
    hid_t fs = H5_CHECK(H5Dget_space(d));
    hsize_t dims[4], off[4] = {start, 0, 0, 0};
    int rank = H5_CHECK(H5Sget_simple_extent_dims(fs, dims, NULL));
    dims[0] = count;
    H5_CHECK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, dims, NULL));
    hid_t ms = H5_CHECK(H5Screate_simple(rank, dims, NULL));
    herr_t rc = H5Dread(d, memtype, ms, fs, H5P_DEFAULT, buf);
    H5_CHECK(H5Sclose(ms));
    H5_CHECK(H5Sclose(fs));
    H5_CHECK(H5Dclose(d));
    return rc < 0 ? -1 : 0;
}

static void labels_check(const Verify *v, Status *st)
{
    int32_t *lab = xmalloc(VERIFY_LABEL_BLOCK * sizeof *lab);
    for (uint64_t at = v->lo; at < v->hi && !st->code; at += VERIFY_LABEL_BLOCK) {
        hsize_t n = v->hi - at < VERIFY_LABEL_BLOCK ? v->hi - at : VERIFY_LABEL_BLOCK;
        if (rows_read(v->group, "labels", H5T_NATIVE_INT32, at, n, lab) != 0) {
            status_set(st, EXIT_USAGE, "%s: /%s/labels[%llu..%llu]: read failed (corrupt file?)",
                       v->path, v->sp->name, (unsigned long long)at,
                       (unsigned long long)(at + n - 1));
            break;
        }
        for (hsize_t i = 0; i < n; i++)
            if (lab[i] < 0 || lab[i] >= v->info->num_classes) {
                status_set(st, EXIT_USAGE, "%s: /%s/labels[%llu] = %d is outside [0, %d)",
                           v->path, v->sp->name, (unsigned long long)(at + i), (int)lab[i],
                           v->info->num_classes);
                break;
            }
    }
    free(lab);
}

/* Raw images: every byte value is valid, so "check" means "reads back". */
static void images_check(const Verify *v, Status *st)
{
    const uint64_t *d = v->sp->dims;
    size_t per = (size_t)(d[1] * d[2] * d[3]);
    size_t block = VERIFY_IMAGE_BYTES / per ? VERIFY_IMAGE_BYTES / per : 1;
    uint8_t *buf = xmalloc(block * per);
    for (uint64_t at = v->lo; at < v->hi && !st->code; at += block) {
        hsize_t n = v->hi - at < block ? v->hi - at : block;
        if (rows_read(v->group, "images", H5T_NATIVE_UINT8, at, n, buf) != 0)
            status_set(st, EXIT_USAGE, "%s: /%s/images[%llu..%llu]: read failed (corrupt file?)",
                       v->path, v->sp->name, (unsigned long long)at,
                       (unsigned long long)(at + n - 1));
    }
    free(buf);
}

/* Checks offsets[at .. at + n] (off holds them): from 0, strictly
 * increasing, each image at most VERIFY_MAX_JPEG bytes, ending at the byte
 * count of /<split>/jpeg. */
static int offsets_check(const Verify *v, uint64_t at, uint64_t n, const int64_t *off,
                         Status *st)
{
    const char *p = v->path, *s = v->sp->name;
    if (at == 0 && off[0] != 0) {
        status_set(st, EXIT_USAGE, "%s: /%s/offsets[0] = %lld, expected 0", p, s,
                   (long long)off[0]);
        return -1;
    }
    for (uint64_t i = at; i < at + n; i++) {
        int64_t a = off[i - at], b = off[i - at + 1];
        if (a < 0 || b <= a || (uint64_t)b > v->sp->jpeg_bytes) {
            status_set(st, EXIT_USAGE, "%s: /%s/offsets[%llu] = %lld after offsets[%llu] = %lld: "
                       "expected strictly increasing offsets up to the %llu bytes of /%s/jpeg",
                       p, s, (unsigned long long)i + 1, (long long)b, (unsigned long long)i,
                       (long long)a, (unsigned long long)v->sp->jpeg_bytes, s);
            return -1;
        }
        if (b - a > VERIFY_MAX_JPEG) {
            status_set(st, EXIT_USAGE, "%s: /%s image %llu is %lld bytes (offsets %lld..%lld), "
                       "more than the %lld a JPEG may have here", p, s, (unsigned long long)i,
                       (long long)(b - a), (long long)a, (long long)b, (long long)VERIFY_MAX_JPEG);
            return -1;
        }
    }
    if (at + n == v->sp->n && (uint64_t)off[n] != v->sp->jpeg_bytes) {
        status_set(st, EXIT_USAGE, "%s: /%s/offsets[%llu] = %lld but /%s/jpeg has %llu bytes", p,
                   s, (unsigned long long)(at + n), (long long)off[n], s,
                   (unsigned long long)v->sp->jpeg_bytes);
        return -1;
    }
    return 0;
}

/* Decodes the n images starting at record `at` whose offsets are in off. */
static void jpeg_block_check(const Verify *v, uint64_t at, uint64_t n, const int64_t *off,
                             uint8_t **buf, size_t *cap, Image *img, Status *st)
{
    char why[512];
    for (uint64_t i = at; i < at + n && !st->code; i++) {
        int64_t a = off[i - at];
        size_t len = (size_t)(off[i - at + 1] - a);
        if (len > *cap) {
            free(*buf);
            *buf = xmalloc(*cap = len);
        }
        if (rows_read(v->group, "jpeg", H5T_NATIVE_UINT8, (hsize_t)a, len, *buf) != 0)
            status_set(st, EXIT_USAGE, "%s: /%s image %llu: read failed (corrupt file?)",
                       v->path, v->sp->name, (unsigned long long)i);
        else if (image_decode(v->codec, *buf, len, 0, img, why, sizeof why) != 0)
            status_set(st, EXIT_USAGE, "%s: /%s image %llu (jpeg bytes %lld..%lld) does not "
                       "decode: %s", v->path, v->sp->name, (unsigned long long)i,
                       (long long)a, (long long)(a + (int64_t)len), why);
    }
}

/* This rank's records in blocks, so memory stays bounded whatever N is. */
static void jpegs_check(const Verify *v, Status *st)
{
    int64_t *off = xmalloc((VERIFY_LABEL_BLOCK + 1) * sizeof *off);
    uint8_t *buf = NULL;
    size_t cap = 0;
    Image img = {0};
    for (uint64_t at = v->lo; at < v->hi && !st->code; at += VERIFY_LABEL_BLOCK) {
        uint64_t n = v->hi - at < VERIFY_LABEL_BLOCK ? v->hi - at : VERIFY_LABEL_BLOCK;
        if (rows_read(v->group, "offsets", H5T_NATIVE_INT64, at, n + 1, off) != 0)
            status_set(st, EXIT_USAGE, "%s: /%s/offsets: read failed (corrupt file?)", v->path,
                       v->sp->name);
        else if (offsets_check(v, at, n, off, st) == 0)
            jpeg_block_check(v, at, n, off, &buf, &cap, &img, st);
    }
    image_free(&img);
    free(buf);
    free(off);
}

/* Collective: this rank's share of one split, then agreement; the lowest
 * failing rank holds the earliest bad record. */
static void split_verify(const char *path, hid_t file, const PrepInfo *info,
                         const PrepSplitInfo *sp, ImageCodec *codec)
{
    int r = log_rank_id(), w = log_world_size();
    Verify v = {path, info, sp, -1, sp->n * (uint64_t)r / (uint64_t)w,
                sp->n * (uint64_t)(r + 1) / (uint64_t)w, codec};
    Status st = {0};
    h5_lock();
    v.group = H5_CHECK(H5Gopen2(file, sp->name, H5P_DEFAULT));
    labels_check(&v, &st);
    if (!st.code && info->raw)
        images_check(&v, &st);
    else if (!st.code && v.hi > v.lo)
        jpegs_check(&v, &st);
    H5_CHECK(H5Gclose(v.group));
    h5_unlock();
    status_agree(&st);
    log_info("verify: /%s: %llu records OK", sp->name, (unsigned long long)sp->n);
}

int prep_verify_main(int argc, char **argv)
{
    static const PrepCommandLine cli = {
        .cmd = "verify",
        .intro = "usage: resnet_prep verify FILE.h5      (also under mpirun -np N)\n"
                 "\n"
                 "Checks the layout as inspect does, then reads every record: labels within\n"
                 "[0, num_classes), raw images readable, jpeg offsets strictly increasing\n"
                 "from 0 to the byte count and every JPEG decodable. Exits 2 naming the first\n"
                 "bad split and index; 0 when everything is fine.\n"
                 "\n",
        .positional_name = "FILE.h5",
    };
    const char *path = argv[prep_flags_parse(&cli, argc, argv, NULL)];
    Status st = {0};
    PrepInfo info;
    prep_info_read(path, &info, &st); /* every rank: all see the same file */
    status_agree(&st);
    h5_lock();
    hid_t file = prep_info_file_open(path, &st); /* the same checks, on every rank */
    h5_unlock();
    status_agree(&st);
    ImageCodec *codec = image_codec_new();
    for (int i = 0; i < PREP_SPLITS; i++)
        if (info.split[i].present)
            split_verify(path, file, &info, &info.split[i], codec);
    h5_lock();
    h5util_file_close(&file);
    h5_unlock();
    image_codec_free(codec);
    prep_info_free(&info);
    log_info("verify: %s OK", path);
    return EXIT_OK;
}
