/*
 * dataset.c - open, validate and read the HDF5 dataset format (docs/design.md
 * section 5). A file of the documented shape written by any tool (h5py,
 * resnet_prep) must work; anything else gets one line naming the file, the
 * dataset and the expected type and shape. Local; every HDF5 call runs
 * under h5_lock() with HDF5's own error printing suppressed, because the
 * failures here are the user's to read in our words.
 */
#include "dataset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5lock.h"
#include "h5util.h"
#include "hash.h"

static const char *g_split_names[SPLIT_COUNT] = {"train", "val", "test"};

const char *dataset_split_name(DatasetSplit split)
{
    return g_split_names[split];
}

/* ------------------------------------------------------------------ */
/* root attributes                                                     */

/* Words what h5util found wrong with root attribute name; 0 when nothing,
 * else -1 with st set ("expect" says what was wanted). */
static int attr_problem(const Dataset *d, const char *name, const char *expect,
                        const H5utilFound *f, Status *st)
{
    switch (f->problem) {
    case H5UTIL_OK: return 0;
    case H5UTIL_WRONG_TYPE:
        status_set(st, EXIT_USAGE, "%s: root attribute %s is %lld x %s, expected %s", d->path,
                   name, (long long)f->npoints, f->type, expect);
        return -1;
    case H5UTIL_READ_FAILED:
        status_set(st, EXIT_USAGE, "%s: cannot read root attribute %s (expected %s)", d->path,
                   name, expect);
        return -1;
    default:
        status_set(st, EXIT_USAGE, "%s: root attribute %s is missing (expected %s)", d->path,
                   name, expect);
        return -1;
    }
}

/* Reads root attribute name, 1 to max values of class cls, as mem_type;
 * returns how many, or -1. */
static int attr_read(const Dataset *d, const char *name, H5T_class_t cls, int max,
                     const char *expect, hid_t mem_type, void *out, Status *st)
{
    H5utilFound f;
    h5_lock();
    h5util_attr_read(d->file, name, cls, max, mem_type, out, &f);
    h5_unlock();
    return attr_problem(d, name, expect, &f, st) < 0 ? -1 : (int)f.npoints;
}

/* Fixed- or variable-length, ASCII or UTF-8: whatever the writer chose. */
static int attr_read_string(const Dataset *d, const char *name, char *out, size_t len,
                            Status *st)
{
    H5utilFound f;
    h5_lock();
    h5util_attr_read_string(d->file, name, out, len, &f);
    h5_unlock();
    if (f.problem != H5UTIL_READ_FAILED)
        return attr_problem(d, name, "a string", &f, st);
    status_set(st, EXIT_USAGE, "%s: cannot read root attribute %s", d->path, name);
    return -1;
}

static int root_read_stats(Dataset *d, Status *st)
{
    const char *expect = "mean and std: 1 or 3 floats, one per channel, in pixel/255 units";
    int nm = attr_read(d, "mean", H5T_FLOAT, DATASET_MAX_CHANNELS, expect, H5T_NATIVE_DOUBLE,
                       d->mean, st);
    if (nm < 0)
        return -1;
    int ns = attr_read(d, "std", H5T_FLOAT, DATASET_MAX_CHANNELS, expect, H5T_NATIVE_DOUBLE,
                       d->std, st);
    if (ns < 0)
        return -1;
    if (nm != ns || nm == 2) {
        status_set(st, EXIT_USAGE, "%s: root attributes mean and std have %d and %d values, "
                   "expected 1 or 3 each (one per channel)", d->path, nm, ns);
        return -1;
    }
    d->channels = nm;
    for (int c = 0; c < nm; c++) {
        if (!isfinite(d->mean[c]) || !isfinite(d->std[c]) || d->std[c] <= 0) {
            status_set(st, EXIT_USAGE, "%s: root attributes mean[%d] = %g, std[%d] = %g: "
                       "expected finite values with std > 0", d->path, c, d->mean[c], c,
                       d->std[c]);
            return -1;
        }
    }
    return 0;
}

static int root_read(Dataset *d, Status *st)
{
    int64_t version = 0, classes = 0;
    if (attr_read(d, "resnet_dataset_version", H5T_INTEGER, 1, "the integer 1",
                  H5T_NATIVE_INT64, &version, st) < 0)
        return -1;
    if (version != DATASET_VERSION) {
        status_set(st, EXIT_USAGE, "%s: resnet_dataset_version is %lld, this program reads %d",
                   d->path, (long long)version, DATASET_VERSION);
        return -1;
    }
    if (attr_read(d, "num_classes", H5T_INTEGER, 1, "an integer >= 1", H5T_NATIVE_INT64,
                  &classes, st) < 0)
        return -1;
    if (classes < 1 || classes > INT32_MAX) {
        status_set(st, EXIT_USAGE, "%s: root attribute num_classes is %lld, expected >= 1",
                   d->path, (long long)classes);
        return -1;
    }
    d->num_classes = (int)classes;
    if (root_read_stats(d, st) < 0)
        return -1;
    char enc[32];
    if (attr_read_string(d, "encoding", enc, sizeof enc, st) < 0)
        return -1;
    if (strcmp(enc, "raw") != 0 && strcmp(enc, "jpeg") != 0) {
        status_set(st, EXIT_USAGE, "%s: root attribute encoding is \"%s\", expected \"raw\" or "
                   "\"jpeg\"", d->path, enc);
        return -1;
    }
    d->encoding = strcmp(enc, "jpeg") == 0 ? ENCODING_JPEG : ENCODING_RAW;
    return 0;
}

/* ------------------------------------------------------------------ */
/* split datasets                                                      */

static const H5utilType T_UINT8 = {H5T_INTEGER, 1, H5T_SGN_NONE};
static const H5utilType T_INT32 = {H5T_INTEGER, 4, H5T_SGN_2};
static const H5utilType T_INT64 = {H5T_INTEGER, 8, H5T_SGN_2};

/* Opens dataset name and checks its element type; its shape is left in f.
 * -1 with st set ("expect" says what was wanted). */
static hid_t dataset_checked(const Dataset *d, const char *name, H5utilType want,
                             const char *expect, H5utilFound *f, Status *st)
{
    h5_lock();
    hid_t ds = h5util_dataset_open(d->file, name, want, f);
    h5_unlock();
    if (f->problem == H5UTIL_MISSING)
        status_set(st, EXIT_USAGE, "%s: %s is missing (expected %s)", d->path, name, expect);
    else if (f->problem == H5UTIL_UNOPENABLE)
        status_set(st, EXIT_USAGE, "%s: %s is not a readable dataset (expected %s)", d->path,
                   name, expect);
    else if (f->problem == H5UTIL_WRONG_TYPE)
        status_set(st, EXIT_USAGE, "%s: %s has type %s, expected %s", d->path, name, f->type,
                   expect);
    else if (f->problem == H5UTIL_REFUSED_STORAGE)
        status_set(st, EXIT_USAGE, "%s: %s is refused: its data is not stored in the file (%s); "
                   "a dataset must hold its own data", d->path, name, f->storage);
    return ds;
}

static int shape_error(const Dataset *d, const char *name, const H5utilFound *f,
                       const char *expect, Status *st)
{
    char got[H5UTIL_DESC_MAX];
    h5util_shape_string(got, sizeof got, f->rank, f->dims);
    status_set(st, EXIT_USAGE, "%s: %s has shape %s, expected %s", d->path, name, got, expect);
    return -1;
}

/* Reads all of dataset ds as mem_type. */
static int dataset_read_all(const Dataset *d, hid_t ds, const char *name, hid_t mem_type,
                            void *out, Status *st)
{
    h5_lock();
    int ret = h5util_dataset_read(ds, mem_type, out);
    h5_unlock();
    if (ret < 0)
        status_set(st, EXIT_USAGE, "%s: reading %s failed (damaged file?)", d->path, name);
    return ret;
}

static void dataset_close_id(hid_t *ds)
{
    h5_lock();
    h5util_dataset_close(ds);
    h5_unlock();
}

/* ------------------------------------------------------------------ */
/* declared sizes                                                      */

/* Deflate, the compression every HDF5 build has (and the one resnet_prep and
 * h5py's "gzip" use), shrinks data at most about 1032 to 1. */
#define DEFLATE_MAX_RATIO 1032

static uint64_t machine_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : UINT64_MAX;
}

/* The product of f's dims times elem bytes, saturating instead of wrapping. */
static uint64_t declared_bytes(const H5utilFound *f, size_t elem)
{
    uint64_t bytes = elem;
    for (int i = 0; i < f->rank; i++)
        if (__builtin_mul_overflow(bytes, (uint64_t)f->dims[i], &bytes))
            return UINT64_MAX;
    return bytes;
}

static int is_filtered(hid_t ds)
{
    int n = 0;
    h5_lock();
    H5E_BEGIN_TRY
    {
        hid_t dcpl = H5Dget_create_plist(ds);
        n = dcpl < 0 ? 0 : H5Pget_nfilters(dcpl);
        H5Pclose(dcpl);
    }
    H5E_END_TRY;
    h5_unlock();
    return n > 0;
}

/* A header can declare any shape; before anything is allocated or read,
 * the declared size must be one the file can hold and, for arrays read
 * whole (labels, offsets; read_whole 1), one this machine can hold.
 *   - Unfiltered data takes at least its own size in the file, so it must
 *     not declare more bytes than the file has. (Chunks never written read
 *     as zeros; no writer leaves a split's chunks unwritten.)
 *   - Filtered (compressed) data may be much smaller than declared, but
 *     not by more than deflate's best ratio: more than that times the file
 *     size can only be a damaged or hand-made header. (Other HDF5 filters
 *     are used on top of deflate, e.g. shuffle, or not at all for this
 *     format.)
 *   - Arrays read whole must fit in half of the physical memory, leaving
 *     room for the model: else the read would abort without naming the file.
 * -1 with st naming the dataset and its shape. */
static int size_check(const Dataset *d, hid_t ds, const char *name, const H5utilFound *f,
                      size_t elem, int read_whole, Status *st)
{
    uint64_t bytes = declared_bytes(f, elem), file = (uint64_t)d->file_bytes;
    int filtered = is_filtered(ds);
    uint64_t room = filtered ? file * DEFLATE_MAX_RATIO : file;
    uint64_t memory = machine_memory() / 2;
    char shape[H5UTIL_DESC_MAX];
    h5util_shape_string(shape, sizeof shape, f->rank, f->dims);
    if (bytes > room) {
        status_set(st, EXIT_USAGE, "%s: %s declares shape %s (%llu bytes), more than the "
                   "%llu-byte file can hold%s (damaged file?)", d->path, name, shape,
                   (unsigned long long)bytes, (unsigned long long)file,
                   filtered ? " even compressed" : "");
        return -1;
    }
    if (read_whole && bytes > memory) {
        status_set(st, EXIT_USAGE, "%s: %s declares shape %s (%llu bytes), more than half of "
                   "this machine's %llu bytes of memory, and it is read whole", d->path, name,
                   shape, (unsigned long long)bytes, (unsigned long long)memory * 2);
        return -1;
    }
    return 0;
}

/* The optional /classes: num_classes strings, index = label. */
static int classes_read(Dataset *d, Status *st)
{
    const char *expect = "one string per class (num_classes of them)";
    h5_lock();
    int present = h5util_link_exists(d->file, "classes");
    h5_unlock();
    if (!present)
        return 0;
    H5utilFound f;
    hid_t ds = dataset_checked(d, "classes", (H5utilType){H5T_STRING, 0, 0}, expect, &f, st);
    if (ds < 0)
        return -1;
    int ret = -1;
    if (f.rank != 1 || f.dims[0] != d->num_classes) {
        shape_error(d, "classes", &f, expect, st);
    } else {
        d->class_names = xcalloc((size_t)d->num_classes, sizeof *d->class_names);
        d->num_class_names = d->num_classes;
        h5_lock();
        ret = h5util_dataset_read_strings(ds, d->num_classes, d->class_names);
        h5_unlock();
        if (ret < 0)
            status_set(st, EXIT_USAGE, "%s: reading /classes failed (damaged file?)", d->path);
    }
    dataset_close_id(&ds);
    return ret;
}

/* One stored image's H x W against the pixel limit the decoder uses too. */
static int pixels_check(const Dataset *d, const char *name, int64_t h, int64_t w, Status *st)
{
    if ((uint64_t)h * (uint64_t)w <= image_max_pixels())
        return 0;
    status_set(st, EXIT_USAGE, "%s: %s declares images of %lld x %lld pixels, more than the "
               "limit of %zu pixels (see --max-pixels)", d->path, name, (long long)h,
               (long long)w, image_max_pixels());
    return -1;
}

/* /<split>/labels: int32 (N), each in [0, num_classes). */
static int labels_read(Dataset *d, DatasetSplit split, Status *st)
{
    DatasetPart *part = &d->part[split];
    char name[64];
    snprintf(name, sizeof name, "/%s/labels", g_split_names[split]);
    H5utilFound f;
    hid_t ds = dataset_checked(d, name, T_INT32, "int32 [N]", &f, st);
    if (ds < 0)
        return -1;
    int ok = f.rank == 1 || shape_error(d, name, &f, "int32 [N]", st) == 0;
    ok = ok && size_check(d, ds, name, &f, sizeof *part->labels, 1, st) == 0;
    if (ok) {
        part->count = f.dims[0];
        part->labels = xmalloc((size_t)part->count * sizeof *part->labels);
        ok = dataset_read_all(d, ds, name, H5T_NATIVE_INT32, part->labels, st) == 0;
    }
    dataset_close_id(&ds);
    for (int64_t i = 0; ok && i < part->count; i++) {
        if (part->labels[i] < 0 || part->labels[i] >= d->num_classes) {
            status_set(st, EXIT_USAGE, "%s: %s[%lld] = %d is outside [0, %d)", d->path, name,
                       (long long)i, part->labels[i], d->num_classes);
            ok = 0;
        }
    }
    return ok ? 0 : -1;
}

/* /<split>/images: uint8 (N, H, W, C) with the labels' N and the stats' C. */
static int raw_open(Dataset *d, DatasetSplit split, Status *st)
{
    DatasetPart *part = &d->part[split];
    const char *expect = "uint8 [N,H,W,C]";
    char name[64];
    snprintf(name, sizeof name, "/%s/images", g_split_names[split]);
    H5utilFound f;
    part->images = dataset_checked(d, name, T_UINT8, expect, &f, st);
    if (part->images < 0)
        return -1;
    const int64_t *dims = f.dims;
    if (f.rank != 4 || dims[1] < 1 || dims[2] < 1 || dims[1] > INT32_MAX || dims[2] > INT32_MAX)
        return shape_error(d, name, &f, expect, st);
    if (dims[3] != d->channels) {
        status_set(st, EXIT_USAGE, "%s: %s has %lld channels (the last of [N,H,W,C]), but root "
                   "attributes mean and std have %d values", d->path, name, (long long)dims[3],
                   d->channels);
        return -1;
    }
    if (dims[0] != part->count) {
        status_set(st, EXIT_USAGE, "%s: %s has %lld images but /%s/labels has %lld", d->path,
                   name, (long long)dims[0], g_split_names[split], (long long)part->count);
        return -1;
    }
    if (pixels_check(d, name, dims[1], dims[2], st) < 0 ||
        size_check(d, part->images, name, &f, 1, 0, st) < 0)
        return -1;
    part->height = (int)dims[1];
    part->width = (int)dims[2];
    return 0;
}

/* /<split>/offsets int64 (N + 1): non-decreasing, each image non-empty,
 * all inside /<split>/jpeg. */
static int offsets_check(const Dataset *d, DatasetSplit split, const char *name, Status *st)
{
    const DatasetPart *part = &d->part[split];
    const int64_t *o = part->offsets;
    if (o[0] < 0 || o[part->count] > part->jpeg_bytes) {
        status_set(st, EXIT_USAGE, "%s: %s runs from %lld to %lld, outside /%s/jpeg (%lld bytes)",
                   d->path, name, (long long)o[0], (long long)o[part->count],
                   g_split_names[split], (long long)part->jpeg_bytes);
        return -1;
    }
    for (int64_t i = 0; i < part->count; i++) {
        if (o[i + 1] <= o[i]) {
            status_set(st, EXIT_USAGE, "%s: %s[%lld] = %lld and [%lld] = %lld: image %lld is empty "
                       "(offsets must increase)", d->path, name, (long long)i, (long long)o[i],
                       (long long)(i + 1), (long long)o[i + 1], (long long)i);
            return -1;
        }
    }
    return 0;
}

static int jpeg_open(Dataset *d, DatasetSplit split, Status *st)
{
    DatasetPart *part = &d->part[split];
    const char *sn = g_split_names[split];
    char name[64], oname[64];
    H5utilFound f;
    snprintf(name, sizeof name, "/%s/jpeg", sn);
    part->jpeg = dataset_checked(d, name, T_UINT8, "uint8 [total_bytes]", &f, st);
    if (part->jpeg < 0)
        return -1;
    if (f.rank != 1)
        return shape_error(d, name, &f, "uint8 [total_bytes]", st);
    if (size_check(d, part->jpeg, name, &f, 1, 0, st) < 0)
        return -1;
    part->jpeg_bytes = f.dims[0];

    snprintf(oname, sizeof oname, "/%s/offsets", sn);
    hid_t ds = dataset_checked(d, oname, T_INT64, "int64 [N+1]", &f, st);
    if (ds < 0)
        return -1;
    int ok = f.rank == 1 || shape_error(d, oname, &f, "int64 [N+1]", st) == 0;
    if (ok && f.dims[0] != part->count + 1) {
        status_set(st, EXIT_USAGE, "%s: %s has %lld entries, expected N+1 = %lld (/%s/labels "
                   "has %lld)", d->path, oname, (long long)f.dims[0], (long long)part->count + 1,
                   sn, (long long)part->count);
        ok = 0;
    }
    ok = ok && size_check(d, ds, oname, &f, sizeof *part->offsets, 1, st) == 0;
    if (ok) {
        part->offsets = xmalloc((size_t)(part->count + 1) * sizeof *part->offsets);
        ok = dataset_read_all(d, ds, oname, H5T_NATIVE_INT64, part->offsets, st) == 0 &&
             offsets_check(d, split, oname, st) == 0;
    }
    dataset_close_id(&ds);
    return ok ? 0 : -1;
}

static int part_open(Dataset *d, DatasetSplit split, Status *st)
{
    DatasetPart *part = &d->part[split];
    const char *sn = g_split_names[split];
    h5_lock();
    int present = h5util_link_exists(d->file, sn);
    h5_unlock();
    if (!present) {
        if (split == SPLIT_TEST)
            return 0;
        status_set(st, EXIT_USAGE, "%s: /%s is missing (a dataset has /train, /val and "
                   "optionally /test)", d->path, sn);
        return -1;
    }
    part->present = 1;
    if (labels_read(d, split, st) < 0)
        return -1;
    if (part->count == 0 && split != SPLIT_TEST) {
        status_set(st, EXIT_USAGE, "%s: /%s has no images", d->path, sn);
        return -1;
    }
    return d->encoding == ENCODING_RAW ? raw_open(d, split, st) : jpeg_open(d, split, st);
}

static void dataset_reset(Dataset *d)
{
    memset(d, 0, sizeof *d);
    d->file = -1;
    for (int s = 0; s < SPLIT_COUNT; s++)
        d->part[s].images = d->part[s].jpeg = -1;
}

int dataset_open(Dataset *d, const char *path, Status *st)
{
    dataset_reset(d);
    if ((size_t)snprintf(d->path, sizeof d->path, "%s", path) >= sizeof d->path) {
        status_set(st, EXIT_USAGE, "dataset path too long: %s", path);
        return st->code;
    }
    if (access(path, R_OK) != 0) {
        status_set(st, EXIT_USAGE, "%s: cannot read: %s", path, sys_error_string());
        return st->code;
    }
    struct stat sb;
    d->file_bytes = stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
    int is_h5;
    h5_lock();
    d->file = h5util_file_open(path, &is_h5);
    h5_unlock();
    if (d->file < 0) {
        status_set(st, EXIT_USAGE, is_h5 == H5UTIL_NOT_REGULAR
                                       ? "%s: not a regular file (a FIFO, device or directory)"
                                   : is_h5 ? "%s: cannot open as HDF5 (truncated or damaged?)"
                                           : "%s: not an HDF5 file", path);
        return st->code;
    }
    int bad = root_read(d, st) < 0 || classes_read(d, st) < 0;
    for (int s = 0; s < SPLIT_COUNT && !bad; s++)
        bad = part_open(d, (DatasetSplit)s, st) < 0;
    if (bad) {
        dataset_close(d);
        return st->code;
    }
    d->height = d->part[SPLIT_TRAIN].height;
    d->width = d->part[SPLIT_TRAIN].width;
    normaliser_init(&d->norm, d->channels, d->mean, d->std);
    return 0;
}

void dataset_close(Dataset *d)
{
    for (int s = 0; s < SPLIT_COUNT; s++) {
        dataset_close_id(&d->part[s].images);
        dataset_close_id(&d->part[s].jpeg);
        free(d->part[s].offsets);
        free(d->part[s].labels);
    }
    h5_lock();
    h5util_file_close(&d->file);
    h5_unlock();
    h5util_strings_free(d->class_names, d->num_class_names);
    free(d->bytes);
    dataset_reset(d);
}

int64_t dataset_count(const Dataset *d, DatasetSplit split)
{
    return d->part[split].present ? d->part[split].count : 0;
}

const int32_t *dataset_labels(const Dataset *d, DatasetSplit split)
{
    return d->part[split].labels;
}

/* ------------------------------------------------------------------ */
/* reading: one hyperslab path, one decoder                            */

static void *grow(void *buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return buf;
    *cap = need;
    return xrealloc(buf, need);
}

/* Every read of image data: the uint8 hyperslab start..start+count of ds
 * (rank 4 for raw images, 1 for jpeg bytes) into buf; 0 or -1. */
static int hyperslab_read(hid_t ds, int rank, const hsize_t *start, const hsize_t *count,
                          void *buf)
{
    herr_t ret = -1;
    h5_lock();
    H5E_BEGIN_TRY
    {
        hid_t fspace = H5Dget_space(ds);
        hid_t mspace = H5Screate_simple(rank, count, NULL);
        if (fspace >= 0 && mspace >= 0 &&
            H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) >= 0)
            ret = H5Dread(ds, H5T_NATIVE_UINT8, mspace, fspace, H5P_DEFAULT, buf);
        H5Sclose(mspace);
        H5Sclose(fspace);
    }
    H5E_END_TRY;
    h5_unlock();
    return ret < 0 ? -1 : 0;
}

/* Bytes [lo, hi) of /<split>/jpeg into *buf (grown as needed). */
static int jpeg_bytes_read(const Dataset *d, DatasetSplit split, int64_t lo, int64_t hi,
                           uint8_t **buf, size_t *cap, Status *st)
{
    hsize_t start = (hsize_t)lo, count = (hsize_t)(hi - lo);
    *buf = grow(*buf, cap, (size_t)count);
    if (hyperslab_read(d->part[split].jpeg, 1, &start, &count, *buf) == 0)
        return 0;
    status_set(st, EXIT_USAGE, "%s: reading /%s/jpeg bytes [%lld, %lld) failed (damaged file?)",
               d->path, g_split_names[split], (long long)lo, (long long)hi);
    return -1;
}

/* Decodes record index (buf, size) with image_io into out, with the file's
 * channels (RGB, or grey for C = 1). */
static int record_decode(const Dataset *d, DatasetSplit split, int64_t index, ImageCodec *codec,
                         const uint8_t *buf, size_t size, Image *out, Status *st)
{
    char why[512];
    if (image_decode_to(codec, buf, size, 0, d->channels, out, why, sizeof why) == 0)
        return 0;
    status_set(st, EXIT_USAGE, "%s: /%s/jpeg image %lld %s: %s", d->path, g_split_names[split],
               (long long)index,
               image_is_jpeg_or_png(buf, size) ? "does not decode" : "is not a JPEG", why);
    return -1;
}

static int crop_too_large(const Dataset *d, DatasetSplit split, int crop, Status *st)
{
    const DatasetPart *part = &d->part[split];
    if (crop <= part->height && crop <= part->width)
        return 0;
    status_set(st, EXIT_USAGE, "%s: crop %d is larger than the /%s images (%dx%d)", d->path,
               crop, g_split_names[split], part->height, part->width);
    return 1;
}

/* ------------------------------------------------------------------ */
/* fingerprint                                                         */

/* Labels hashed as little-endian int32, so every machine agrees. */
static uint64_t labels_hash(uint64_t h, const DatasetPart *part)
{
    for (int64_t i = 0; i < part->count; i++) {
        uint32_t v = (uint32_t)part->labels[i];
        uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
        h = hash_fnv1a(h, le, sizeof le);
    }
    int64_t count = part->count; /* split boundaries count too */
    uint8_t sep[8];
    for (int b = 0; b < 8; b++)
        sep[b] = (uint8_t)((uint64_t)count >> (8 * b));
    return hash_fnv1a(h, sep, sizeof sep);
}

void dataset_fingerprint(const Dataset *d, char *out, size_t len)
{
    uint64_t h = HASH_FNV1A_START;
    size_t used = (size_t)snprintf(out, len, "v%d %s classes=%d C=%d", DATASET_VERSION,
                                   d->encoding == ENCODING_RAW ? "raw" : "jpeg", d->num_classes,
                                   d->channels);
    for (int s = 0; s < SPLIT_COUNT && used < len; s++) {
        const DatasetPart *part = &d->part[s];
        if (d->encoding == ENCODING_RAW)
            used += (size_t)snprintf(out + used, len - used, " %s=%lldx%dx%d", g_split_names[s],
                                     (long long)dataset_count(d, (DatasetSplit)s), part->height,
                                     part->width);
        else
            used += (size_t)snprintf(out + used, len - used, " %s=%lld/%lldB", g_split_names[s],
                                     (long long)dataset_count(d, (DatasetSplit)s),
                                     (long long)part->jpeg_bytes);
        h = labels_hash(h, part);
    }
    if (used < len)
        snprintf(out + used, len - used, " labels=fnv1a64:%016llx", (unsigned long long)h);
}

/* ------------------------------------------------------------------ */
/* one image at a time (the training loader)                           */

void dataset_image_free(DatasetImage *img)
{
    image_codec_free(img->codec);
    free(img->px);
    free(img->bytes);
    memset(img, 0, sizeof *img);
}

static int image_read_raw(Dataset *d, DatasetSplit split, int64_t index, DatasetImage *img,
                          Status *st)
{
    const DatasetPart *part = &d->part[split];
    img->h = part->height;
    img->w = part->width;
    img->c = d->channels;
    img->px = grow(img->px, &img->px_cap, (size_t)img->h * img->w * img->c);
    hsize_t start[4] = {(hsize_t)index, 0, 0, 0};
    hsize_t count[4] = {1, (hsize_t)img->h, (hsize_t)img->w, (hsize_t)img->c};
    if (hyperslab_read(part->images, 4, start, count, img->px) < 0) {
        status_set(st, EXIT_USAGE, "%s: reading /%s/images[%lld] failed (damaged file?)",
                   d->path, g_split_names[split], (long long)index);
        return -1;
    }
    return 0;
}

static int image_read_jpeg(Dataset *d, DatasetSplit split, int64_t index, DatasetImage *img,
                           Status *st)
{
    const int64_t *o = d->part[split].offsets;
    if (jpeg_bytes_read(d, split, o[index], o[index + 1], &img->bytes, &img->bytes_cap, st) < 0)
        return -1;
    if (!img->codec)
        img->codec = image_codec_new();
    /* The decoder grows img's own buffer. */
    Image out = {.px = img->px, .cap = img->px_cap};
    int ret = record_decode(d, split, index, img->codec, img->bytes,
                            (size_t)(o[index + 1] - o[index]), &out, st);
    img->px = out.px;
    img->px_cap = out.cap;
    if (ret < 0)
        return -1;
    img->h = out.h;
    img->w = out.w;
    img->c = out.c;
    return 0;
}

int dataset_read_image(Dataset *d, DatasetSplit split, int64_t index, DatasetImage *img,
                       Status *st)
{
    const DatasetPart *part = &d->part[split];
    CHECK(part->present && index >= 0 && index < part->count,
          "image %lld requested from /%s with %lld", (long long)index, g_split_names[split],
          (long long)dataset_count(d, split));
    int ret = d->encoding == ENCODING_RAW ? image_read_raw(d, split, index, img, st)
                                          : image_read_jpeg(d, split, index, img, st);
    return ret < 0 ? st->code : 0;
}

static int is_prime(uint64_t n)
{
    if (n < 2)
        return 0;
    for (uint64_t k = 2; k * k <= n; k++)
        if (n % k == 0)
            return 0;
    return 1;
}

/* HDF5's advice: a prime number of hash slots, about 100 per cached chunk. */
static size_t cache_slots(size_t chunks)
{
    uint64_t n = (uint64_t)chunks * 100 + 1;
    n = n < 521 ? 521 : n > 1000003 ? 1000003 : n;
    while (!is_prime(n))
        n++;
    return (size_t)n;
}

/* Cache bytes for random single-image reads of a chunked dataset (see
 * dataset.h); *chunk_bytes is one chunk's size. */
static size_t cache_bytes_for(const Dataset *d, const DatasetPart *part, hid_t dcpl,
                              size_t budget, size_t *chunk_bytes)
{
    hsize_t chunk[4] = {1, 1, 1, 1};
    int rank = H5Pget_chunk(dcpl, 4, chunk);
    int raw = d->encoding == ENCODING_RAW;
    size_t bytes = 1;
    for (int i = 0; i < rank; i++)
        bytes *= (size_t)chunk[i];
    *chunk_bytes = bytes;
    if (H5Pget_nfilters(dcpl) <= 0)
        return 0;
    size_t per_image, total;
    if (raw) {
        per_image = 1;
        for (int i = 1; i < rank; i++) {
            hsize_t extent = i == 1 ? (hsize_t)part->height : i == 2 ? (hsize_t)part->width
                                                                     : (hsize_t)d->channels;
            per_image *= (size_t)((extent + chunk[i] - 1) / chunk[i]);
        }
        total = (size_t)part->count * part->height * part->width * d->channels;
    } else {
        size_t mean = part->count ? (size_t)(part->jpeg_bytes / part->count) : 1;
        per_image = mean / bytes + 2;
        total = (size_t)part->jpeg_bytes;
    }
    size_t few = 4 * per_image * bytes, all = total + bytes;
    size_t want = budget > few ? budget : few;
    return want < all ? want : all;
}

size_t dataset_set_random_access(Dataset *d, DatasetSplit split, size_t budget)
{
    DatasetPart *part = &d->part[split];
    if (!part->present)
        return 0;
    int raw = d->encoding == ENCODING_RAW;
    hid_t *ds = raw ? &part->images : &part->jpeg;
    char name[64];
    snprintf(name, sizeof name, "/%s/%s", g_split_names[split], raw ? "images" : "jpeg");
    h5_lock();
    hid_t dcpl = (hid_t)H5_CHECK(H5Dget_create_plist(*ds));
    size_t nbytes = 0, chunk_bytes = 0;
    if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
        nbytes = cache_bytes_for(d, part, dcpl, budget, &chunk_bytes);
        hid_t dapl = (hid_t)H5_CHECK(H5Pcreate(H5P_DATASET_ACCESS));
        /* w0 = 1: a chunk read in full is evicted first; one pass in random
         * order does not come back to it this epoch. */
        H5_CHECK(H5Pset_chunk_cache(dapl, cache_slots(nbytes / chunk_bytes), nbytes, 1.0));
        hid_t fresh = (hid_t)H5_CHECK(H5Dopen2(d->file, name, dapl));
        H5_CHECK(H5Pclose(dapl));
        H5_CHECK(H5Dclose(*ds));
        *ds = fresh;
    }
    H5_CHECK(H5Pclose(dcpl));
    h5_unlock();
    return nbytes;
}

/* ------------------------------------------------------------------ */
/* start-up size check                                                 */

/* Enough for the markers before the frame header of nearly every JPEG
 * (EXIF with a thumbnail can be longer: then the whole record is read). */
#define HEADER_PEEK_BYTES 4096

/* Image index's declared size from the first bytes of its record; -1 with
 * st set when no JPEG or PNG header is found. */
static int record_peek(const Dataset *d, DatasetSplit split, int64_t index, uint8_t **buf,
                       size_t *cap, int *w, int *h, Status *st)
{
    const int64_t *o = d->part[split].offsets;
    int64_t len = o[index + 1] - o[index];
    int64_t want = len < HEADER_PEEK_BYTES ? len : HEADER_PEEK_BYTES;
    for (;;) {
        if (jpeg_bytes_read(d, split, o[index], o[index] + want, buf, cap, st) < 0)
            return -1;
        int found = image_peek_size(*buf, (size_t)want, w, h);
        if (found > 0 && *w >= 1 && *h >= 1)
            return 0;
        if (found < 0 || want == len)
            break;
        want = len;
    }
    status_set(st, EXIT_USAGE, "%s: /%s/jpeg image %lld has no readable JPEG or PNG header",
               d->path, g_split_names[split], (long long)index);
    return -1;
}

static int jpeg_sizes_check(Dataset *d, DatasetSplit split, int min_size, int64_t first,
                            int64_t end, Status *st)
{
    const char *sn = g_split_names[split];
    int w = 0, h = 0;
    for (int64_t i = first; i < end; i++) {
        if (record_peek(d, split, i, &d->bytes, &d->bytes_cap, &w, &h, st) < 0)
            return -1;
        if ((uint64_t)w * (uint64_t)h > image_max_pixels()) {
            status_set(st, EXIT_USAGE, "%s: /%s/jpeg image %lld declares %d x %d pixels, more "
                       "than the limit of %zu (see --max-pixels)", d->path, sn, (long long)i, w,
                       h, image_max_pixels());
            return -1;
        }
        if (w < min_size || h < min_size) {
            status_set(st, EXIT_USAGE, "%s: /%s/jpeg image %lld is %dx%d, smaller than the crop "
                       "%d", d->path, sn, (long long)i, w, h, min_size);
            return -1;
        }
    }
    return 0;
}

int dataset_check_image_sizes(Dataset *d, DatasetSplit split, int min_size, int rank,
                              int nranks, Status *st)
{
    const DatasetPart *part = &d->part[split];
    CHECK(rank >= 0 && rank < nranks, "rank %d of %d", rank, nranks);
    if (!part->present || part->count == 0)
        return 0;
    if (d->encoding == ENCODING_RAW)
        return crop_too_large(d, split, min_size, st) ? st->code : 0;
    int64_t first = part->count * rank / nranks, end = part->count * (rank + 1) / nranks;
    /* A compressed chunk holds many records: cache a few chunks so that each
     * is inflated once, not once per header read from it. */
    dataset_set_random_access(d, split, 0);
    return jpeg_sizes_check(d, split, min_size, first, end, st) < 0 ? st->code : 0;
}
