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

#include <hdf5.h>

#include "h5lock.h"
#include "log.h"
#include "prep.h"

static const char *const g_split_names[PREP_SPLITS] = {"train", "val", "test"};

/* "uint8", "int32", "float64", "string", ... for messages. */
static const char *type_name(hid_t type)
{
    static char buf[32];
    H5T_class_t cls = H5Tget_class(type);
    size_t bits = 8 * H5Tget_size(type);
    if (cls == H5T_INTEGER)
        snprintf(buf, sizeof buf, "%sint%zu", H5Tget_sign(type) == H5T_SGN_NONE ? "u" : "", bits);
    else if (cls == H5T_FLOAT)
        snprintf(buf, sizeof buf, "float%zu", bits);
    else if (cls == H5T_STRING)
        snprintf(buf, sizeof buf, "string");
    else
        snprintf(buf, sizeof buf, "HDF5 type class %d", (int)cls);
    return buf;
}

static int type_is_int(hid_t type, size_t bytes, int is_signed)
{
    return H5Tget_class(type) == H5T_INTEGER && H5Tget_size(type) == bytes &&
           (H5Tget_sign(type) == H5T_SGN_2) == is_signed;
}

/* Memory type for reading variable-length strings of file type t: HDF5
 * will not convert between ASCII and UTF-8 (h5py writes UTF-8). */
static hid_t vlen_string_type(hid_t t)
{
    hid_t mt = H5_CHECK(H5Tcopy(H5T_C_S1));
    H5_CHECK(H5Tset_size(mt, H5T_VARIABLE));
    H5_CHECK(H5Tset_cset(mt, H5Tget_cset(t)));
    return mt;
}

/* Reads a scalar integer attribute of the root group. */
static int attr_int(const char *path, hid_t file, const char *name, int *value, Status *st)
{
    if (H5Aexists(file, name) <= 0) {
        status_set(st, EXIT_USAGE,
                   "%s: root attribute %s is missing (expected a scalar int; is this a "
                   "resnet_prep dataset file?)",
                   path, name);
        return -1;
    }
    hid_t a = H5_CHECK(H5Aopen(file, name, H5P_DEFAULT));
    hid_t t = H5_CHECK(H5Aget_type(a)), s = H5_CHECK(H5Aget_space(a));
    int ok = H5Tget_class(t) == H5T_INTEGER && H5Sget_simple_extent_npoints(s) == 1;
    if (!ok)
        status_set(st, EXIT_USAGE, "%s: root attribute %s is %s with %lld elements, expected a "
                   "scalar int", path, name, type_name(t), (long long)H5Sget_simple_extent_npoints(s));
    else
        H5_CHECK(H5Aread(a, H5T_NATIVE_INT, value));
    H5_CHECK(H5Sclose(s));
    H5_CHECK(H5Tclose(t));
    H5_CHECK(H5Aclose(a));
    return ok ? 0 : -1;
}

/* Reads a float64 vector attribute of the root group (1..4 elements). */
static int attr_doubles(const char *path, hid_t file, const char *name, double *v, int *n,
                        Status *st)
{
    if (H5Aexists(file, name) <= 0) {
        status_set(st, EXIT_USAGE, "%s: root attribute %s is missing (expected float64 [C])",
                   path, name);
        return -1;
    }
    hid_t a = H5_CHECK(H5Aopen(file, name, H5P_DEFAULT));
    hid_t t = H5_CHECK(H5Aget_type(a)), s = H5_CHECK(H5Aget_space(a));
    hssize_t k = H5Sget_simple_extent_npoints(s);
    int ok = H5Tget_class(t) == H5T_FLOAT && k >= 1 && k <= 4;
    if (!ok)
        status_set(st, EXIT_USAGE, "%s: root attribute %s is %s with %lld elements, expected "
                   "float64 [C] with C = 1 or 3", path, name, type_name(t), (long long)k);
    else
        H5_CHECK(H5Aread(a, H5T_NATIVE_DOUBLE, v));
    *n = (int)k;
    H5_CHECK(H5Sclose(s));
    H5_CHECK(H5Tclose(t));
    H5_CHECK(H5Aclose(a));
    return ok ? 0 : -1;
}

/* Reads a string attribute, fixed- or variable-length. */
static int attr_string(const char *path, hid_t file, const char *name, char *buf, size_t len,
                       Status *st)
{
    if (H5Aexists(file, name) <= 0) {
        status_set(st, EXIT_USAGE, "%s: root attribute %s is missing (expected a string)", path,
                   name);
        return -1;
    }
    hid_t a = H5_CHECK(H5Aopen(file, name, H5P_DEFAULT));
    hid_t t = H5_CHECK(H5Aget_type(a));
    int rc = 0;
    if (H5Tget_class(t) != H5T_STRING) {
        status_set(st, EXIT_USAGE, "%s: root attribute %s is %s, expected a string", path, name,
                   type_name(t));
        rc = -1;
    } else if (H5Tis_variable_str(t) > 0) {
        char *s = NULL;
        hid_t mt = vlen_string_type(t);
        H5_CHECK(H5Aread(a, mt, &s));
        snprintf(buf, len, "%s", s ? s : "");
        H5free_memory(s);
        H5_CHECK(H5Tclose(mt));
    } else {
        size_t n = H5Tget_size(t);
        char *tmp = xcalloc(n + 1, 1);
        H5_CHECK(H5Aread(a, t, tmp));
        snprintf(buf, len, "%s", tmp);
        free(tmp);
    }
    H5_CHECK(H5Tclose(t));
    H5_CHECK(H5Aclose(a));
    return rc;
}

/* Opens /<split>/<name> and checks its dtype and rank; dims filled. */
static hid_t dataset_check(const char *path, hid_t group, const char *split, const char *name,
                           size_t bytes, int is_signed, int rank, uint64_t *dims,
                           const char *expect, Status *st)
{
    if (H5Lexists(group, name, H5P_DEFAULT) <= 0) {
        status_set(st, EXIT_USAGE, "%s: /%s/%s is missing (expected %s)", path, split, name,
                   expect);
        return -1;
    }
    hid_t d = H5Dopen2(group, name, H5P_DEFAULT);
    if (d < 0) {
        status_set(st, EXIT_USAGE, "%s: /%s/%s is not a dataset (expected %s)", path, split,
                   name, expect);
        return -1;
    }
    hid_t t = H5_CHECK(H5Dget_type(d)), s = H5_CHECK(H5Dget_space(d));
    hsize_t hd[H5S_MAX_RANK];
    int r = H5Sget_simple_extent_dims(s, hd, NULL);
    if (!type_is_int(t, bytes, is_signed) || r != rank) {
        status_set(st, EXIT_USAGE, "%s: /%s/%s is %s with %d dims, expected %s", path, split,
                   name, type_name(t), r, expect);
        H5_CHECK(H5Dclose(d));
        d = -1;
    }
    for (int i = 0; i < r && i < 4; i++)
        dims[i] = hd[i];
    H5_CHECK(H5Sclose(s));
    H5_CHECK(H5Tclose(t));
    return d;
}

static int split_read(const char *path, hid_t file, const PrepInfo *info, PrepSplitInfo *sp,
                      Status *st)
{
    hid_t g = H5Gopen2(file, sp->name, H5P_DEFAULT);
    if (g < 0) {
        status_set(st, EXIT_USAGE, "%s: /%s is not a group", path, sp->name);
        return -1;
    }
    uint64_t ldims[4] = {0}, odims[4] = {0};
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
    if (!st->code && info->raw && sp->dims[0] != sp->n)
        status_set(st, EXIT_USAGE, "%s: /%s/images has %llu images but /%s/labels %llu labels",
                   path, sp->name, (unsigned long long)sp->dims[0], sp->name,
                   (unsigned long long)sp->n);
    if (!st->code && info->raw && sp->dims[3] != (uint64_t)info->channels)
        status_set(st, EXIT_USAGE, "%s: /%s/images has C = %llu channels but mean/std have %d "
                   "(expected [N, H, W, C] with C = len(mean))", path, sp->name,
                   (unsigned long long)sp->dims[3], info->channels);
    if (!st->code && !info->raw && odims[0] != sp->n + 1)
        status_set(st, EXIT_USAGE, "%s: /%s/offsets has %llu entries, expected N + 1 = %llu",
                   path, sp->name, (unsigned long long)odims[0], (unsigned long long)sp->n + 1);
    if (!info->raw)
        sp->jpeg_bytes = sp->dims[0];
    if (offsets >= 0)
        H5_CHECK(H5Dclose(offsets));
    if (data >= 0)
        H5_CHECK(H5Dclose(data));
    if (labels >= 0)
        H5_CHECK(H5Dclose(labels));
    H5_CHECK(H5Gclose(g));
    return st->code ? -1 : 0;
}

/* /classes: strings, fixed- or variable-length, num_classes of them. */
static int classes_read(const char *path, hid_t file, PrepInfo *info, Status *st)
{
    if (H5Lexists(file, "classes", H5P_DEFAULT) <= 0)
        return 0;
    hid_t d = H5Dopen2(file, "classes", H5P_DEFAULT);
    hid_t t = d >= 0 ? H5_CHECK(H5Dget_type(d)) : -1;
    hid_t s = d >= 0 ? H5_CHECK(H5Dget_space(d)) : -1;
    hssize_t n = s >= 0 ? H5Sget_simple_extent_npoints(s) : 0;
    int rc = -1;
    if (d < 0 || H5Tget_class(t) != H5T_STRING || H5Sget_simple_extent_ndims(s) != 1) {
        status_set(st, EXIT_USAGE, "%s: /classes is not a 1-d string dataset", path);
    } else if (n != info->num_classes) {
        status_set(st, EXIT_USAGE, "%s: /classes has %lld names but num_classes is %d", path,
                   (long long)n, info->num_classes);
    } else {
        info->nclass_names = (int)n;
        info->class_names = xcalloc((size_t)n, sizeof *info->class_names);
        if (H5Tis_variable_str(t) > 0) {
            char **v = xcalloc((size_t)n, sizeof *v);
            hid_t mt = vlen_string_type(t);
            H5_CHECK(H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v));
            for (hssize_t i = 0; i < n; i++)
                info->class_names[i] = xstrdup(v[i] ? v[i] : "");
            H5_CHECK(H5Dvlen_reclaim(mt, s, H5P_DEFAULT, v));
            H5_CHECK(H5Tclose(mt));
            free(v);
        } else {
            size_t len = H5Tget_size(t);
            char *buf = xcalloc((size_t)n, len);
            H5_CHECK(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf));
            for (hssize_t i = 0; i < n; i++) {
                info->class_names[i] = xcalloc(len + 1, 1);
                memcpy(info->class_names[i], buf + (size_t)i * len, len);
            }
            free(buf);
        }
        rc = 0;
    }
    if (s >= 0)
        H5_CHECK(H5Sclose(s));
    if (t >= 0)
        H5_CHECK(H5Tclose(t));
    if (d >= 0)
        H5_CHECK(H5Dclose(d));
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

int prep_info_read(const char *path, PrepInfo *info, Status *st)
{
    memset(info, 0, sizeof *info);
    h5_lock();
    int rc = -1;
    hid_t file = -1;
    if (H5Fis_hdf5(path) <= 0) {
        FILE *f = fopen(path, "rb");
        status_set(st, EXIT_USAGE, "%s: %s", path, f ? "not an HDF5 file" : "no such file");
        if (f)
            fclose(f);
    } else if ((file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0) {
        status_set(st, EXIT_USAGE, "%s: cannot open (unreadable, or locked: see "
                   "HDF5_USE_FILE_LOCKING)", path);
    } else if (root_read(path, file, info, st) == 0 && splits_read(path, file, info, st) == 0 &&
               classes_read(path, file, info, st) == 0) {
        rc = 0;
    }
    if (file >= 0)
        H5_CHECK(H5Fclose(file));
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
    static const char help[] =
        "usage: resnet_prep inspect FILE.h5\n"
        "\n"
        "Prints what a dataset file holds: format version, encoding, classes (first\n"
        "few), mean/std and per split the record count and dataset shapes. Checks\n"
        "the layout (attributes, dtypes, shapes) but reads no records: see verify.\n"
        "\n"
        "  -h, --help  this text\n";
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    while (prep_getopt("inspect", argc, argv, "h", opts) != -1)
        prep_help(help);
    if (optind != argc - 1)
        prep_usage_fail("inspect", "expected exactly one FILE.h5");
    const char *path = argv[optind];
    Status st = {0};
    PrepInfo info;
    if (log_rank_id() == 0 && prep_info_read(path, &info, &st) == 0) {
        info_print(path, &info);
        prep_info_free(&info);
    }
    status_agree(&st);
    return EXIT_OK;
}
