/*
 * prep_cifar.c - CIFAR-10/100 binary version to a raw dataset file. Every
 * rank opens the batch files and preads only the records it converts.
 */
#include "prep_cifar.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "prep_file.h"
#include "prep_flags.h"
#include "prep_folder.h"
#include "prep_output.h"
#include "prep_writer.h"

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_MAX_FILES 5

/* What differs between the two CIFAR binary versions. */
typedef struct {
    const char *cmd;
    int num_classes;
    int label_bytes;  /* cifar10: label; cifar100: coarse, fine */
    const char *train[CIFAR_MAX_FILES];
    int ntrain;
    const char *test;
    const char *names; /* class names, used when present */
} CifarKind;

static const CifarKind g_cifar10 = {
    "cifar10", 10, 1,
    {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
     "data_batch_5.bin"},
    5, "test_batch.bin", "batches.meta.txt",
};

static const CifarKind g_cifar100 = {
    "cifar100", 100, 2, {"train.bin"}, 1, "test.bin", "fine_label_names.txt",
};

/* The records of one or more batch files, seen as one array. */
typedef struct {
    const CifarKind *kind;
    int nfiles;
    int fd[CIFAR_MAX_FILES];
    char *path[CIFAR_MAX_FILES];
    size_t first[CIFAR_MAX_FILES + 1]; /* record index where each file starts */
} CifarPart;

/* A view [base, base + n) of a part: /val may be the tail of train. */
typedef struct {
    CifarPart *part;
    size_t base;
} CifarView;

typedef struct {
    const char *in, *out;
    long val_split;
    int force;
} CifarOptions;

static size_t record_size(const CifarKind *k)
{
    return (size_t)k->label_bytes + 3 * CIFAR_PIXELS;
}

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Every rank opens the same files, so every rank sees the same errors. */
static int part_open(CifarPart *p, const CifarKind *k, const char *dir, const char *const *names,
                     int n, Status *st)
{
    memset(p, 0, sizeof *p);
    p->kind = k;
    size_t rs = record_size(k);
    for (int i = 0; i < n; i++) {
        p->path[i] = path_join(dir, names[i]);
        char why[256];
        p->fd[i] = prep_file_open(p->path[i], why, sizeof why);
        p->nfiles = i + 1;
        struct stat sb;
        int opened = p->fd[i] >= 0 && fstat(p->fd[i], &sb) == 0;
        if (p->fd[i] >= 0 && !opened)
            snprintf(why, sizeof why, "%s", strerror(errno));
        if (!opened) {
            status_set(st, EXIT_USAGE, "--in %s: %s: %s (expected the %s binary version)", dir,
                       names[i], why, k->cmd);
            return -1;
        }
        if (sb.st_size == 0 || (size_t)sb.st_size % rs != 0) {
            status_set(st, EXIT_USAGE,
                       "%s: %lld bytes is not a whole number of %zu-byte %s records "
                       "(expected the binary version, not the python or matlab one)",
                       p->path[i], (long long)sb.st_size, rs, k->cmd);
            return -1;
        }
        p->first[i + 1] = p->first[i] + (size_t)sb.st_size / rs;
    }
    return 0;
}

static void part_close(CifarPart *p)
{
    for (int i = 0; i < p->nfiles; i++) {
        if (p->fd[i] >= 0)
            close(p->fd[i]);
        free(p->path[i]);
    }
}

static size_t part_count(const CifarPart *p)
{
    return p->first[p->nfiles];
}

/* PrepLoadFn: one record, label checked, CHW planes to HWC. */
static PrepLoad cifar_load(void *ctx, size_t index, PrepRecord *rec, char *why, size_t len)
{
    const CifarView *v = ctx;
    const CifarPart *p = v->part;
    const CifarKind *k = p->kind;
    size_t at = v->base + index, rs = record_size(k);
    int f = 0;
    while (at >= p->first[f + 1])
        f++;
    size_t r = at - p->first[f];
    uint8_t buf[2 + 3 * CIFAR_PIXELS];
    ssize_t got = pread(p->fd[f], buf, rs, (off_t)(r * rs));
    if (got != (ssize_t)rs) {
        snprintf(why, len, "%s: cannot read record %zu: %s", p->path[f], r,
                 got < 0 ? strerror(errno) : "file shrank");
        return PREP_LOAD_ERROR;
    }
    int label = buf[k->label_bytes - 1]; /* cifar100: the fine label */
    if (label >= k->num_classes) {
        snprintf(why, len, "%s record %zu: label %d is outside [0, %d) (not %s data?)", p->path[f],
                 r, label, k->num_classes, k->cmd);
        return PREP_LOAD_ERROR;
    }
    image_reserve(&rec->image, CIFAR_SIDE, CIFAR_SIDE, 3);
    const uint8_t *planes = buf + k->label_bytes; /* (3, 32, 32) */
    for (int i = 0; i < CIFAR_PIXELS; i++)
        for (int ch = 0; ch < 3; ch++)
            rec->image.px[3 * i + ch] = planes[ch * CIFAR_PIXELS + i];
    rec->label = label;
    return PREP_LOAD_OK;
}

static const PrepFlag g_flags[] = {
    {.name = "in", .kind = FLAG_TEXT, .offset = offsetof(CifarOptions, in), .metavar = "DIR",
     .required = 1, .help = "the extracted binary version"},
    PREP_FLAG_OUT(CifarOptions),
    PREP_FLAG_FORCE(CifarOptions),
    PREP_FLAG_VAL_SPLIT(CifarOptions),
};

static void options_parse(const CifarKind *k, int argc, char **argv, CifarOptions *o)
{
    char intro[1024];
    snprintf(intro, sizeof intro,
             "usage: resnet_prep %s --in DIR --out FILE.h5 [--val-split N] [--force]\n"
             "\n"
             "Converts the %s binary version in DIR to raw 32x32x3 RGB images:\n"
             "  training:    %s%s\n"
             "  test:        %s (goes to /test)\n"
             "  class names: %s, when present\n"
             "%s"
             "\n",
             k->cmd, k->cmd, k->train[0], k->ntrain > 1 ? " .. data_batch_5.bin" : "", k->test,
             k->names, k->label_bytes == 2 ? "Labels are the 100 fine labels (not the 20 coarse).\n"
                                           : "");
    PrepCommandLine cli = {.cmd = k->cmd, .intro = intro, .flags = g_flags,
                           .nflags = PREP_NFLAGS(g_flags)};
    prep_flags_parse(&cli, argc, argv, o);
}

/* Class names when the names file exists; a wrong count is an error. */
static void names_read(const CifarKind *k, const char *dir, PrepClasses *names, Status *st)
{
    char *path = path_join(dir, k->names);
    memset(names, 0, sizeof *names);
    if (access(path, F_OK) == 0 && prep_classes_read("--in", path, names, st) == 0 &&
        names->n != k->num_classes)
        status_set(st, EXIT_USAGE, "%s: %d class names, expected %d", path, names->n,
                   k->num_classes);
    free(path);
}

static void convert(const CifarKind *k, const CifarOptions *o, CifarPart *train,
                    CifarPart *test, const PrepClasses *names)
{
    size_t ntrain = part_count(train), ntest = part_count(test);
    size_t nval = (size_t)o->val_split, keep = ntrain - nval;
    PrepLayout layout = {PREP_RAW, CIFAR_SIDE, CIFAR_SIDE, 3, k->num_classes,
                         names->n ? (const char *const *)names->names : NULL};
    PrepWriter *w = prep_writer_open(o->out, &layout, ntrain + (nval ? 0 : ntest) + ntest, 1,
                                     o->force);
    CifarView tr = {train, 0}, va = {train, keep}, te = {test, 0};
    prep_writer_split(w, &(PrepSplit){"train", keep, 1, cifar_load, &tr});
    if (nval)
        prep_writer_split(w, &(PrepSplit){"val", nval, 0, cifar_load, &va});
    else
        prep_writer_split(w, &(PrepSplit){"val", ntest, 0, cifar_load, &te});
    prep_writer_split(w, &(PrepSplit){"test", ntest, 0, cifar_load, &te});
    prep_writer_finish(w);
}

static int cifar_main(const CifarKind *k, int argc, char **argv)
{
    CifarOptions o;
    options_parse(k, argc, argv, &o);
    prep_output_check(o.out, o.force);
    CifarPart train, test;
    PrepClasses names = {0};
    Status st = {0};
    if (part_open(&train, k, o.in, k->train, k->ntrain, &st) == 0 &&
        part_open(&test, k, o.in, &k->test, 1, &st) == 0)
        names_read(k, o.in, &names, &st);
    status_agree(&st);
    if ((size_t)o.val_split >= part_count(&train))
        prep_usage_fail(k->cmd, "--val-split %ld: must be less than the %zu training images",
                        o.val_split, part_count(&train));
    log_info("%s: %zu train, %zu test images from %s, %d rank%s, val = %s", k->cmd,
             part_count(&train), part_count(&test), o.in, log_world_size(),
             log_world_size() > 1 ? "s" : "",
             o.val_split ? "last --val-split training images" : "copy of test");
    /* Every record is a plain array: nothing to skip, so --strict is moot. */
    convert(k, &o, &train, &test, &names);
    prep_classes_free(&names);
    part_close(&train);
    part_close(&test);
    return EXIT_OK;
}

int prep_cifar10_main(int argc, char **argv)
{
    return cifar_main(&g_cifar10, argc, argv);
}

int prep_cifar100_main(int argc, char **argv)
{
    return cifar_main(&g_cifar100, argc, argv);
}
