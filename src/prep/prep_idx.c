/*
 * prep_idx.c - MNIST-format IDX files (plain or gzipped, read with zlib) to
 * a raw dataset file.
 */
#include "prep_idx.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "log.h"
#include "prep_file.h"
#include "prep_flags.h"
#include "prep_folder.h"
#include "prep_output.h"
#include "prep_writer.h"

/* Refuse absurd dims before allocating: 64 GiB of pixels. */
#define IDX_MAX_BYTES ((size_t)1 << 36)

/* gzread takes an unsigned int count: read in pieces. Returns bytes read,
 * or -1 on a zlib error. */
static long long gz_read_all(gzFile gz, uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        size_t want = n - got < (1u << 30) ? n - got : (1u << 30);
        int r = gzread(gz, buf + got, (unsigned)want);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (long long)got;
}

static const char *gz_why(gzFile gz)
{
    int err = 0;
    const char *msg = gzerror(gz, &err);
    return err == Z_ERRNO ? strerror(errno) : msg;
}

static int idx_header(const char *flag, const char *path, gzFile gz, IdxArray *a, Status *st)
{
    uint8_t head[4 + 4 * 4];
    long long got = gz_read_all(gz, head, 4);
    if (got != 4 || head[0] || head[1] || head[2] != 0x08 || head[3] < 1 || head[3] > 4) {
        if (got < 0)
            status_set(st, EXIT_USAGE, "%s %s: %s", flag, path, gz_why(gz));
        else
            status_set(st, EXIT_USAGE,
                       "%s %s: not an IDX file of unsigned bytes (expected magic 00 00 08 "
                       "<ndims>)",
                       flag, path);
        return -1;
    }
    a->ndims = head[3];
    if (gz_read_all(gz, head + 4, 4 * (size_t)a->ndims) != 4 * a->ndims) {
        status_set(st, EXIT_USAGE, "%s %s: truncated IDX header", flag, path);
        return -1;
    }
    a->item = 1;
    for (int i = 0; i < a->ndims; i++) {
        const uint8_t *d = head + 4 + 4 * i;
        a->dims[i] = (size_t)d[0] << 24 | (size_t)d[1] << 16 | (size_t)d[2] << 8 | d[3];
        if (i > 0)
            a->item *= a->dims[i];
    }
    a->count = a->dims[0];
    if (a->count == 0 || a->item == 0 || a->count > IDX_MAX_BYTES / a->item) {
        status_set(st, EXIT_USAGE, "%s %s: implausible IDX dims (%zu items of %zu bytes)", flag,
                   path, a->count, a->item);
        return -1;
    }
    return 0;
}

int prep_idx_read(const char *flag, const char *path, IdxArray *out, Status *st)
{
    memset(out, 0, sizeof *out);
    char why[256];
    int fd = prep_file_open(path, why, sizeof why);
    gzFile gz = fd < 0 ? NULL : gzdopen(fd, "rb");
    if (!gz) {
        if (fd >= 0) {
            snprintf(why, sizeof why, "%s", strerror(errno));
            close(fd);
        }
        status_set(st, EXIT_USAGE, "%s %s: %s", flag, path, why);
        return -1;
    }
    if (idx_header(flag, path, gz, out, st) != 0) {
        gzclose(gz);
        return -1;
    }
    size_t n = out->count * out->item;
    /* Bound the declared size by what the file can hold before allocating:
     * a plain file holds at most its size, a gzip stream at most 1032 times
     * it (deflate's largest ratio). */
    struct stat sb;
    SYS_CHECK(fstat(fd, &sb));
    size_t cap = (size_t)sb.st_size * (gzdirect(gz) ? 1 : 1032);
    if (n > cap) {
        status_set(st, EXIT_USAGE,
                   "%s %s: the header declares %zu items of %zu bytes, more than the %lld-byte "
                   "file can hold (truncated or damaged?)",
                   flag, path, out->count, out->item, (long long)sb.st_size);
        gzclose(gz);
        return -1;
    }
    out->data = xmalloc(n);
    long long got = gz_read_all(gz, out->data, n);
    uint8_t extra;
    int rc = -1;
    long long more = got < 0 || (size_t)got < n ? 0 : gz_read_all(gz, &extra, 1);
    if (got < 0 || more < 0)
        status_set(st, EXIT_USAGE, "%s %s: %s", flag, path, gz_why(gz));
    else if ((size_t)got < n)
        status_set(st, EXIT_USAGE, "%s %s: truncated: its header promises %zu bytes of data, "
                   "found %lld", flag, path, n, got);
    else if (more > 0)
        status_set(st, EXIT_USAGE, "%s %s: more data than its header's dims promise", flag, path);
    else
        rc = 0;
    gzclose(gz);
    if (rc != 0)
        prep_idx_free(out);
    return rc;
}

void prep_idx_free(IdxArray *a)
{
    free(a->data);
    memset(a, 0, sizeof *a);
}

typedef struct {
    const char *train_images, *train_labels, *test_images, *test_labels, *out, *classes;
    long val_split;
    int force;
} IdxOptions;

#define OPT(f) offsetof(IdxOptions, f)
static const PrepFlag g_flags[] = {
    {.name = "train-images", .kind = FLAG_TEXT, .offset = OPT(train_images), .metavar = "F",
     .required = 1, .help = "IDX images, e.g. train-images-idx3-ubyte.gz"},
    {.name = "train-labels", .kind = FLAG_TEXT, .offset = OPT(train_labels), .metavar = "F",
     .required = 1, .help = "IDX labels, e.g. train-labels-idx1-ubyte.gz"},
    {.name = "test-images", .kind = FLAG_TEXT, .offset = OPT(test_images), .metavar = "F",
     .required = 1, .help = "IDX images, e.g. t10k-images-idx3-ubyte.gz"},
    {.name = "test-labels", .kind = FLAG_TEXT, .offset = OPT(test_labels), .metavar = "F",
     .required = 1, .help = "IDX labels, e.g. t10k-labels-idx1-ubyte.gz"},
    PREP_FLAG_OUT(IdxOptions),
    PREP_FLAG_FORCE(IdxOptions),
    PREP_FLAG_VAL_SPLIT(IdxOptions),
    {.name = "classes", .kind = FLAG_TEXT, .offset = OPT(classes), .metavar = "F",
     .help = "class names, one per line in label order, stored as\n/classes; num_classes is "
             "then their count (without it:\nnum_classes = largest label + 1)"},
};
#undef OPT

static const PrepCommandLine g_cli = {
    .cmd = "idx",
    .intro = "usage: resnet_prep idx --train-images F --train-labels F --test-images F\n"
             "                       --test-labels F --out FILE.h5 [--val-split N] [--classes F]\n"
             "                       [--force]\n"
             "\n"
             "Converts MNIST-format IDX files (MNIST, Fashion-MNIST, ...), gzipped (.gz) or\n"
             "plain, to raw images [N, H, W, 1]. The test set goes to /test.\n"
             "\n",
    .flags = g_flags,
    .nflags = PREP_NFLAGS(g_flags),
};

/* Images and labels of one part (train or test), checked against each other. */
typedef struct {
    IdxArray images, labels;
} IdxPart;

static int part_read(const char *iflag, const char *ipath, const char *lflag, const char *lpath,
                     IdxPart *p, Status *st)
{
    if (prep_idx_read(iflag, ipath, &p->images, st) != 0 ||
        prep_idx_read(lflag, lpath, &p->labels, st) != 0)
        return -1;
    const IdxArray *im = &p->images;
    if (im->ndims < 3 || (im->ndims == 4 && im->dims[3] != 1 && im->dims[3] != 3)) {
        status_set(st, EXIT_USAGE, "%s %s: expected images [N, H, W] or [N, H, W, 1|3], got %d dims",
                   iflag, ipath, im->ndims);
        return -1;
    }
    if (p->labels.ndims != 1) {
        status_set(st, EXIT_USAGE, "%s %s: expected labels [N], got %d dims", lflag, lpath,
                   p->labels.ndims);
        return -1;
    }
    if (p->labels.count != im->count) {
        status_set(st, EXIT_USAGE, "%s %s has %zu labels but %s %s has %zu images", lflag, lpath,
                   p->labels.count, iflag, ipath, im->count);
        return -1;
    }
    return 0;
}

static void part_free(IdxPart *p)
{
    prep_idx_free(&p->images);
    prep_idx_free(&p->labels);
}

static int channels(const IdxArray *im)
{
    return im->ndims == 4 ? (int)im->dims[3] : 1;
}

/* num_classes from the names if given, else the largest label + 1; every
 * label must be below it. */
static int classes_settle(const IdxOptions *o, const IdxPart *train, const IdxPart *test,
                          const PrepClasses *names, Status *st)
{
    const IdxPart *parts[2] = {train, test};
    const char *flags[2] = {"--train-labels", "--test-labels"};
    const char *paths[2] = {o->train_labels, o->test_labels};
    int max = 0;
    for (int p = 0; p < 2; p++)
        for (size_t i = 0; i < parts[p]->labels.count; i++) {
            int l = parts[p]->labels.data[i];
            if (names->n && l >= names->n) {
                status_set(st, EXIT_USAGE, "%s %s: label %d of item %zu is not below the %d "
                           "names in --classes %s", flags[p], paths[p], l, i, names->n,
                           o->classes);
                return -1;
            }
            max = l > max ? l : max;
        }
    return names->n ? names->n : max + 1;
}

typedef struct {
    const IdxPart *part;
    size_t base;
} IdxView;

/* PrepLoadFn: a copy of item base + index. */
static PrepLoad idx_load(void *ctx, size_t index, PrepRecord *rec, char *why, size_t len)
{
    (void)why;
    (void)len;
    const IdxView *v = ctx;
    const IdxArray *im = &v->part->images;
    size_t at = v->base + index;
    image_reserve(&rec->image, (int)im->dims[2], (int)im->dims[1], channels(im));
    memcpy(rec->image.px, im->data + at * im->item, im->item);
    rec->label = v->part->labels.data[at];
    return PREP_LOAD_OK;
}

static void convert(const IdxOptions *o, const IdxPart *train, const IdxPart *test,
                    int num_classes, const PrepClasses *names)
{
    const IdxArray *im = &train->images;
    size_t ntrain = im->count, ntest = test->images.count;
    size_t nval = (size_t)o->val_split, keep = ntrain - nval;
    PrepLayout layout = {PREP_RAW, (int)im->dims[1], (int)im->dims[2], channels(im), num_classes,
                         names->n ? (const char *const *)names->names : NULL};
    PrepWriter *w = prep_writer_open(o->out, &layout, ntrain + (nval ? 0 : ntest) + ntest, 1,
                                     o->force);
    IdxView tr = {train, 0}, va = {train, keep}, te = {test, 0};
    prep_writer_split(w, &(PrepSplit){"train", keep, 1, idx_load, &tr});
    if (nval)
        prep_writer_split(w, &(PrepSplit){"val", nval, 0, idx_load, &va});
    else
        prep_writer_split(w, &(PrepSplit){"val", ntest, 0, idx_load, &te});
    prep_writer_split(w, &(PrepSplit){"test", ntest, 0, idx_load, &te});
    prep_writer_finish(w);
}

static void parts_check(const IdxOptions *o, const IdxPart *train, const IdxPart *test,
                        Status *st)
{
    const IdxArray *a = &train->images, *b = &test->images;
    if (a->dims[1] != b->dims[1] || a->dims[2] != b->dims[2] || channels(a) != channels(b))
        status_set(st, EXIT_USAGE, "--test-images %s: images are %zux%zux%d but --train-images "
                   "%s are %zux%zux%d", o->test_images, b->dims[1], b->dims[2], channels(b),
                   o->train_images, a->dims[1], a->dims[2], channels(a));
    else if (a->dims[1] > 65535 || a->dims[2] > 65535)
        status_set(st, EXIT_USAGE, "--train-images %s: %zux%zu images are too large", o->train_images,
                   a->dims[1], a->dims[2]);
}

int prep_idx_main(int argc, char **argv)
{
    IdxOptions o;
    prep_flags_parse(&g_cli, argc, argv, &o);
    prep_output_check(o.out, o.force);
    IdxPart train = {0}, test = {0};
    PrepClasses names = {0};
    Status st = {0};
    int num_classes = 0;
    if (part_read("--train-images", o.train_images, "--train-labels", o.train_labels, &train,
                  &st) == 0 &&
        part_read("--test-images", o.test_images, "--test-labels", o.test_labels, &test, &st) == 0)
        parts_check(&o, &train, &test, &st);
    if (!st.code && o.classes)
        prep_classes_read("--classes", o.classes, &names, &st);
    if (!st.code)
        num_classes = classes_settle(&o, &train, &test, &names, &st);
    status_agree(&st);
    if ((size_t)o.val_split >= train.images.count)
        prep_usage_fail("idx", "--val-split %ld: must be less than the %zu training images",
                        o.val_split, train.images.count);
    log_info("idx: %zu train, %zu test images of %zux%zux%d, %d classes, %d rank%s, val = %s",
             train.images.count, test.images.count, train.images.dims[1], train.images.dims[2],
             channels(&train.images), num_classes, log_world_size(),
             log_world_size() > 1 ? "s" : "",
             o.val_split ? "last --val-split training images" : "copy of test");
    convert(&o, &train, &test, num_classes, &names);
    prep_classes_free(&names);
    part_free(&train);
    part_free(&test);
    return EXIT_OK;
}
