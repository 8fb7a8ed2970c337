/*
 * prep_inspect.c - the format check shared by inspect and verify, and the
 * `inspect` printout. Accepts what any tool may write: fixed- or
 * variable-length strings, any chunking or none.
 */
#include "prep_inspect.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "h5lock.h"
#include "h5util.h"
#include "image_io.h"
#include "log.h"
#include "prep_flags.h"
#include "prep_file.h"

static const char *const g_split_names[PREP_SPLITS] = {"train", "val", "test"};

/* More records, names or name bytes than these are taken for a damaged or
 * crafted file rather than allocated. */
#define INSPECT_MAX_RECORDS ((uint64_t)INT32_MAX)
#define INSPECT_MAX_CLASSES (1 << 24)
#define INSPECT_MAX_NAME 4096
/* Largest H x W of a raw image, as the image reader allows. */
#define INSPECT_MAX_PIXELS ((uint64_t)IMAGE_MAX_PIXELS)

/* One line for an attribute h5util could not read as expected. */
static void attr_problem(const char *path, const char *name, const H5utilFound *f,
                         const char *expect, const char *missing_hint, Status *st)
{
    if (f->problem == H5UTIL_MISSING)
        status_set(st, EXIT_USAGE, "%s: root attribute %s is missing (expected %s%s)", path, name,
                   expect, missing_hint);
    else if (f->problem == H5UTIL_WRONG_TYPE)
        status_set(st, EXIT_USAGE, "%s: root attribute %s is %s with %lld elements, expected %s",
                   path, name, f->type, (long long)f->npoints, expect);
    else
        status_set(st, EXIT_USAGE, "%s: root attribute %s cannot be read (damaged file?)", path,
                   name);
}

/* A scalar integer attribute of the root group (one value, any shape). */
static int attr_int(const char *path, hid_t file, const char *name, int *value, Status *st)
{
    H5utilFound f;
    if (h5util_attr_read(file, name, H5T_INTEGER, 1, H5T_NATIVE_INT, value, &f) == 0)
        return 0;
    attr_problem(path, name, &f, "a scalar int", "; is this a resnet_prep dataset file?", st);
    return -1;
}

/* A float vector attribute of the root group: 1 to 4 values into v[4]. */
static int attr_doubles(const char *path, hid_t file, const char *name, double *v, int *n,
                        Status *st)
{
    H5utilFound f;
    *n = 0;
    if (h5util_attr_read(file, name, H5T_FLOAT, 4, H5T_NATIVE_DOUBLE, v, &f) == 0) {
        *n = (int)f.npoints;
        return 0;
    }
    attr_problem(path, name, &f, f.problem == H5UTIL_MISSING ? "float64 [C]"
                                 : "float64 [C] with C = 1 or 3", "", st);
    return -1;
}

/* A string attribute (one value, fixed- or variable-length). */
static int attr_string(const char *path, hid_t file, const char *name, char *buf, size_t len,
                       Status *st)
{
    H5utilFound f;
    if (h5util_attr_read_string(file, name, buf, len, &f) == 0)
        return 0;
    attr_problem(path, name, &f, "a string", "", st);
    return -1;
}

/* The link name under loc is a hard or soft link inside this file: a split
 * or /classes reached through an external link would read another file. */
static int link_is_local(hid_t loc, const char *name)
{
    H5L_info_t li;
    herr_t rc;
    H5E_BEGIN_TRY { rc = H5Lget_info(loc, name, &li, H5P_DEFAULT); }
    H5E_END_TRY;
    return rc >= 0 && (li.type == H5L_TYPE_HARD || li.type == H5L_TYPE_SOFT);
}

/* Opens /<split>/<name> through h5util (type checked there, external
 * storage refused) and checks its rank; dims filled. */
static hid_t dataset_check(const char *path, hid_t group, const char *split, const char *name,
                           size_t bytes, int is_signed, int rank, uint64_t *dims,
                           const char *expect, Status *st)
{
    H5utilType want = {H5T_INTEGER, bytes, is_signed ? H5T_SGN_2 : H5T_SGN_NONE};
    H5utilFound f;
    hid_t d = h5util_dataset_open(group, name, want, &f);
    char shape[H5UTIL_DESC_MAX];
    if (f.problem == H5UTIL_MISSING) {
        status_set(st, EXIT_USAGE, "%s: /%s/%s is missing (expected %s)", path, split, name,
                   expect);
    } else if (f.problem == H5UTIL_WRONG_TYPE) {
        status_set(st, EXIT_USAGE, "%s: /%s/%s is %s with %d dims, expected %s", path, split,
                   name, f.type, f.rank, expect);
    } else if (d < 0) {
        status_set(st, EXIT_USAGE, "%s: /%s/%s is not a dataset (expected %s)", path, split,
                   name, expect);
    } else if (f.rank != rank) {
        h5util_shape_string(shape, sizeof shape, f.rank, f.dims);
        status_set(st, EXIT_USAGE, "%s: /%s/%s has shape %s, expected %s", path, split, name,
                   shape, expect);
        h5util_dataset_close(&d);
    }
    for (int i = 0; d >= 0 && i < rank; i++)
        dims[i] = (uint64_t)f.dims[i];
    return d;
}

/* The shape checks of a split once its datasets opened: counts agree, no
 * zero or absurd dimension (a zero H would divide by zero downstream). */
static void split_dims_check(const char *path, const PrepInfo *info, const PrepSplitInfo *sp,
                             uint64_t offsets_n, Status *st)
{
    const uint64_t *d = sp->dims;
    if (sp->n > INSPECT_MAX_RECORDS)
        status_set(st, EXIT_USAGE, "%s: /%s/labels has %llu records, more than this program "
                   "reads (%llu)", path, sp->name, (unsigned long long)sp->n,
                   (unsigned long long)INSPECT_MAX_RECORDS);
    else if (info->raw && d[0] != sp->n)
        status_set(st, EXIT_USAGE, "%s: /%s/images has %llu images but /%s/labels %llu labels",
                   path, sp->name, (unsigned long long)d[0], sp->name,
                   (unsigned long long)sp->n);
    else if (info->raw && (d[1] < 1 || d[2] < 1 || d[1] * d[2] > INSPECT_MAX_PIXELS))
        status_set(st, EXIT_USAGE, "%s: /%s/images are %llux%llu: expected H and W >= 1 and "
                   "H x W <= %llu", path, sp->name, (unsigned long long)d[1],
                   (unsigned long long)d[2], (unsigned long long)INSPECT_MAX_PIXELS);
    else if (info->raw && d[3] != (uint64_t)info->channels)
        status_set(st, EXIT_USAGE, "%s: /%s/images has C = %llu channels but mean/std have %d "
                   "(expected [N, H, W, C] with C = len(mean))", path, sp->name,
                   (unsigned long long)d[3], info->channels);
    else if (!info->raw && offsets_n != sp->n + 1)
        status_set(st, EXIT_USAGE, "%s: /%s/offsets has %llu entries, expected N + 1 = %llu",
                   path, sp->name, (unsigned long long)offsets_n, (unsigned long long)sp->n + 1);
}

static int split_read(const char *path, hid_t file, const PrepInfo *info, PrepSplitInfo *sp,
                      Status *st)
{
    hid_t g = -1;
    if (link_is_local(file, sp->name))
        H5E_BEGIN_TRY { g = H5Gopen2(file, sp->name, H5P_DEFAULT); }
        H5E_END_TRY;
    if (g < 0) {
        status_set(st, EXIT_USAGE, "%s: /%s is not a group (or is a link to another file)", path,
                   sp->name);
        return -1;
    }
    uint64_t ldims[1] = {0}, odims[1] = {0};
    hid_t labels = dataset_check(path, g, sp->name, "labels", 4, 1, 1, ldims, "int32 [N]", st);
    hid_t data = -1, offsets = -1;
    if (labels >= 0 && info->raw)
        data = dataset_check(path, g, sp->name, "images", 1, 0, 4, sp->dims,
                             "uint8 [N, H, W, C]", st);
    else if (labels >= 0) {
        data = dataset_check(path, g, sp->name, "jpeg", 1, 0, 1, sp->dims, "uint8 [total_bytes]",
                             st);
        if (data >= 0)
            offsets = dataset_check(path, g, sp->name, "offsets", 8, 1, 1, odims,
                                    "int64 [N + 1]", st);
    }
    sp->n = ldims[0];
    if (!st->code)
        split_dims_check(path, info, sp, odims[0], st);
    if (!info->raw)
        sp->jpeg_bytes = sp->dims[0];
    h5util_dataset_close(&offsets);
    h5util_dataset_close(&data);
    h5util_dataset_close(&labels);
    H5_CHECK(H5Gclose(g));
    return st->code ? -1 : 0;
}

/* Reads the n names of an open /classes string dataset into info. */
static int class_names_read(hid_t d, hid_t t, int64_t n, PrepInfo *info)
{
    info->class_names = xcalloc((size_t)n, sizeof *info->class_names);
    info->nclass_names = (int)n;
    int rc;
    if (H5Tis_variable_str(t) > 0) {
        char **v = xcalloc((size_t)n, sizeof *v);
        hid_t mt = H5_CHECK(H5Tcopy(t)); /* HDF5 does not convert ASCII <-> UTF-8 */
        rc = h5util_dataset_read(d, mt, v);
        for (int64_t i = 0; i < n; i++) {
            info->class_names[i] = xstrdup(rc == 0 && v[i] ? v[i] : "");
            if (v[i])
                H5free_memory(v[i]);
        }
        H5_CHECK(H5Tclose(mt));
        free(v);
    } else {
        size_t len = H5Tget_size(t);
        char *buf = xcalloc((size_t)n, len);
        rc = h5util_dataset_read(d, t, buf);
        for (int64_t i = 0; i < n; i++) {
            info->class_names[i] = xcalloc(len + 1, 1);
            if (rc == 0)
                memcpy(info->class_names[i], buf + (size_t)i * len, len);
        }
        free(buf);
    }
    return rc;
}

/* /classes: strings, fixed- or variable-length, num_classes of them. */
static int classes_read(const char *path, hid_t file, PrepInfo *info, Status *st)
{
    if (!h5util_link_exists(file, "classes"))
        return 0;
    H5utilFound f;
    hid_t d = link_is_local(file, "classes")
                  ? h5util_dataset_open(file, "classes", (H5utilType){H5T_STRING, 0, 0}, &f)
                  : -1;
    hid_t t = -1;
    if (d >= 0)
        H5E_BEGIN_TRY { t = H5Dget_type(d); }
        H5E_END_TRY;
    int rc = -1;
    if (d < 0 || t < 0 || f.rank != 1) {
        status_set(st, EXIT_USAGE, "%s: /classes is not a 1-d string dataset", path);
    } else if (f.dims[0] != info->num_classes) {
        status_set(st, EXIT_USAGE, "%s: /classes has %lld names but num_classes is %d", path,
                   (long long)f.dims[0], info->num_classes);
    } else if (f.dims[0] > INSPECT_MAX_CLASSES ||
               (H5Tis_variable_str(t) <= 0 && H5Tget_size(t) > INSPECT_MAX_NAME)) {
        status_set(st, EXIT_USAGE, "%s: /classes holds more than %d names or names longer than "
                   "%d bytes", path, INSPECT_MAX_CLASSES, INSPECT_MAX_NAME);
    } else if (class_names_read(d, t, f.dims[0], info) != 0) {
        status_set(st, EXIT_USAGE, "%s: reading /classes failed (damaged file?)", path);
    } else {
        rc = 0;
    }
    if (t >= 0)
        H5_CHECK(H5Tclose(t));
    h5util_dataset_close(&d);
    return rc;
}

static int root_read(const char *path, hid_t file, PrepInfo *info, Status *st)
{
    char enc[32];
    int nstd = 0;
    if (attr_int(path, file, "resnet_dataset_version", &info->version, st) != 0)
        return -1;
    if (info->version != 1) {
        status_set(st, EXIT_USAGE, "%s: resnet_dataset_version is %d, this program reads 1",
                   path, info->version);
        return -1;
    }
    if (attr_int(path, file, "num_classes", &info->num_classes, st) != 0 ||
        attr_string(path, file, "encoding", enc, sizeof enc, st) != 0 ||
        attr_doubles(path, file, "mean", info->mean, &info->channels, st) != 0 ||
        attr_doubles(path, file, "std", info->std, &nstd, st) != 0)
        return -1;
    if (info->num_classes < 1)
        status_set(st, EXIT_USAGE, "%s: num_classes is %d, expected >= 1", path,
                   info->num_classes);
    else if (strcmp(enc, "raw") != 0 && strcmp(enc, "jpeg") != 0)
        status_set(st, EXIT_USAGE, "%s: encoding is '%s', expected \"raw\" or \"jpeg\"", path,
                   enc);
    else if (nstd != info->channels || info->channels == 2 || info->channels == 4)
        status_set(st, EXIT_USAGE, "%s: mean has %d and std %d elements, expected C each with "
                   "C = 1 or 3", path, info->channels, nstd);
    for (int c = 0; !st->code && c < info->channels; c++)
        if (!isfinite(info->mean[c]) || !isfinite(info->std[c]) || info->std[c] <= 0)
            status_set(st, EXIT_USAGE, "%s: mean[%d] = %g, std[%d] = %g: expected finite values, "
                       "std > 0", path, c, info->mean[c], c, info->std[c]);
    info->raw = strcmp(enc, "raw") == 0;
    return st->code ? -1 : 0;
}

static int splits_read(const char *path, hid_t file, PrepInfo *info, Status *st)
{
    for (int i = 0; i < PREP_SPLITS; i++) {
        PrepSplitInfo *sp = &info->split[i];
        sp->name = g_split_names[i];
        sp->present = H5Lexists(file, sp->name, H5P_DEFAULT) > 0;
        if (!sp->present && i < 2) {
            status_set(st, EXIT_USAGE, "%s: /%s is missing (a dataset needs /train and /val)",
                       path, sp->name);
            return -1;
        }
        if (sp->present && split_read(path, file, info, sp, st) != 0)
            return -1;
    }
    for (int i = 1; info->raw && i < PREP_SPLITS; i++) {
        const PrepSplitInfo *a = &info->split[0], *b = &info->split[i];
        if (b->present && (a->dims[1] != b->dims[1] || a->dims[2] != b->dims[2])) {
            status_set(st, EXIT_USAGE, "%s: /%s/images are %llux%llu but /train/images %llux%llu",
                       path, b->name, (unsigned long long)b->dims[1],
                       (unsigned long long)b->dims[2], (unsigned long long)a->dims[1],
                       (unsigned long long)a->dims[2]);
            return -1;
        }
    }
    return 0;
}

hid_t prep_info_file_open(const char *path, Status *st)
{
    char why[256], name[64];
    int fd = prep_file_open(path, why, sizeof why);
    if (fd < 0) {
        if (access(path, F_OK) != 0)
            status_set(st, EXIT_USAGE, "%s: no such file", path);
        else
            status_set(st, EXIT_USAGE, "%s: cannot read: %s", path, why);
        return -1;
    }
    /* HDF5 opens by name: handing it the checked descriptor's name means a
     * FIFO swapped in after the check cannot make it block. */
    snprintf(name, sizeof name, "/proc/self/fd/%d", fd);
    int is_h5 = 0;
    hid_t file = h5util_file_open(access(name, R_OK) == 0 ? name : path, &is_h5);
    close(fd);
    if (file < 0 && !is_h5)
        status_set(st, EXIT_USAGE, "%s: not an HDF5 file", path);
    else if (file < 0)
        status_set(st, EXIT_USAGE, "%s: cannot open (unreadable, or locked: see "
                   "HDF5_USE_FILE_LOCKING)", path);
    return file;
}

int prep_info_read(const char *path, PrepInfo *info, Status *st)
{
    memset(info, 0, sizeof *info);
    h5_lock();
    int rc = -1;
    hid_t file = prep_info_file_open(path, st);
    if (file >= 0 && root_read(path, file, info, st) == 0 &&
        splits_read(path, file, info, st) == 0 && classes_read(path, file, info, st) == 0)
        rc = 0;
    h5util_file_close(&file);
    h5_unlock();
    return rc;
}

void prep_info_free(PrepInfo *info)
{
    for (int i = 0; i < info->nclass_names; i++)
        free(info->class_names[i]);
    free(info->class_names);
    memset(info, 0, sizeof *info);
}

/* Rank 0 prints: what a user checks before training. */
static void info_print(const char *path, const PrepInfo *info)
{
    printf("file          %s\n", path);
    printf("format        resnet dataset version %d, encoding %s\n", info->version,
           info->raw ? "raw" : "jpeg");
    printf("num_classes   %d\n", info->num_classes);
    if (info->nclass_names) {
        printf("classes      ");
        int shown = info->nclass_names < 8 ? info->nclass_names : 8;
        for (int i = 0; i < shown; i++)
            printf(" %s%s", info->class_names[i], i + 1 < shown ? "," : "");
        printf("%s\n", shown < info->nclass_names ? ", ..." : "");
    } else {
        printf("classes       (no /classes)\n");
    }
    printf("mean         ");
    for (int c = 0; c < info->channels; c++)
        printf(" %.6f", info->mean[c]);
    printf("\nstd          ");
    for (int c = 0; c < info->channels; c++)
        printf(" %.6f", info->std[c]);
    printf("\n");
    for (int i = 0; i < PREP_SPLITS; i++) {
        const PrepSplitInfo *sp = &info->split[i];
        if (!sp->present)
            continue;
        unsigned long long n = sp->n;
        if (info->raw)
            printf("/%-12s %llu images: images uint8 [%llu, %llu, %llu, %llu], labels int32 "
                   "[%llu]\n", sp->name, n, n, (unsigned long long)sp->dims[1],
                   (unsigned long long)sp->dims[2], (unsigned long long)sp->dims[3], n);
        else
            printf("/%-12s %llu images: jpeg uint8 [%llu] (%.0f bytes/image), offsets int64 "
                   "[%llu], labels int32 [%llu]\n", sp->name, n,
                   (unsigned long long)sp->jpeg_bytes, n ? (double)sp->jpeg_bytes / n : 0.0,
                   n + 1, n);
    }
    fflush(stdout);
}

int prep_inspect_main(int argc, char **argv)
{
    static const PrepCommandLine cli = {
        .cmd = "inspect",
        .intro = "usage: resnet_prep inspect FILE.h5\n"
                 "\n"
                 "Prints what a dataset file holds: format version, encoding, classes (first\n"
                 "few), mean/std and per split the record count and dataset shapes. Checks\n"
                 "the layout (attributes, dtypes, shapes) but reads no records: see verify.\n"
                 "\n",
        .positional_name = "FILE.h5",
    };
    const char *path = argv[prep_flags_parse(&cli, argc, argv, NULL)];
    Status st = {0};
    PrepInfo info;
    if (log_rank_id() == 0 && prep_info_read(path, &info, &st) == 0) {
        info_print(path, &info);
        prep_info_free(&info);
    }
    status_agree(&st);
    return EXIT_OK;
}
