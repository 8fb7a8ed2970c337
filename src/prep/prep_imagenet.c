/*
 * prep_imagenet.c - `resnet_prep imagenet`: options, folder scan on rank 0,
 * and the per-image load (read, decode, resize, crop or re-encode).
 */
#include "prep_imagenet.h"

#include <errno.h>
#include <stddef.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "image_io.h"
#include "log.h"
#include "prep_file.h"
#include "prep_flags.h"
#include "prep_folder.h"
#include "prep_output.h"
#include "prep_writer.h"

typedef struct {
    const char *train, *val, *val_labels, *synsets, *out;
    int size, quality, limit, strict, full_decode, force;
    long max_pixels;
    int encoding; /* PrepEncoding: the index in g_encodings */
} ImagenetOptions;

static const char *const g_encodings[] = {"raw", "jpeg", NULL}; /* PREP_RAW, PREP_JPEG */

#define OPT(f) offsetof(ImagenetOptions, f)
static const PrepFlag g_flags[] = {
    {.name = "train", .kind = FLAG_TEXT, .offset = OPT(train), .metavar = "DIR", .required = 1,
     .help = "training images, one sub-folder per class"},
    {.name = "val", .kind = FLAG_TEXT, .offset = OPT(val), .metavar = "DIR", .required = 1,
     .help = "validation images: class folders, or one flat folder\nlabelled by --val-labels"},
    {.name = "val-labels", .kind = FLAG_TEXT, .offset = OPT(val_labels), .metavar = "FILE",
     .help = "labels of a flat --val folder: Kaggle's\nLOC_val_solution.csv or the devkit's\n"
             "ILSVRC2012_validation_ground_truth.txt"},
    {.name = "synsets", .kind = FLAG_TEXT, .offset = OPT(synsets), .metavar = "FILE",
     .help = "line i = wnid of ILSVRC2012 class ID i; needed with the\ndevkit ground truth"},
    PREP_FLAG_OUT(ImagenetOptions),
    PREP_FLAG_FORCE(ImagenetOptions),
    {.name = "size", .kind = FLAG_INT, .offset = OPT(size), .metavar = "N", .lo = 8, .hi = 4096,
     .def = 256,
     .help = "shorter side after resizing; raw images are then\ncentre-cropped to N x N"},
    {.name = "encoding", .kind = FLAG_CHOICE, .offset = OPT(encoding), .choices = g_encodings,
     .def = PREP_RAW,
     .help = "raw: uint8 [N, size, size, 3]; jpeg: re-encoded JPEGs\nkeeping the aspect ratio"},
    {.name = "quality", .kind = FLAG_INT, .offset = OPT(quality), .metavar = "Q", .lo = 1,
     .hi = 100, .def = 90, .help = "JPEG quality for --encoding jpeg"},
    {.name = "limit-per-class", .kind = FLAG_INT, .offset = OPT(limit), .metavar = "N",
     .lo = 0, .hi = INT_MAX, .def = 0,
     .help = "keep the first N images of each class, in train and\nval; 0 keeps all"},
    {.name = "full-decode", .kind = FLAG_SWITCH, .offset = OPT(full_decode),
     .help = "decode JPEGs at full size before resizing, as Pillow\ndoes (slower); otherwise "
             "TurboJPEG decodes at the\nsmallest 1/8-step scale that keeps the shorter side\n"
             ">= --size"},
    {.name = "max-pixels", .kind = FLAG_LONG, .offset = OPT(max_pixels), .metavar = "N",
     .lo = 1, .hi = LONG_MAX, .def = (long)IMAGE_DEFAULT_MAX_PIXELS,
     .help = "skip (with a warning) images whose header declares more\nthan N pixels, width x "
             "height: decompression bombs"},
    {.name = "strict", .kind = FLAG_SWITCH, .offset = OPT(strict),
     .help = "unreadable images and empty class folders are errors\n(exit 2) instead of "
             "warnings"},
};
#undef OPT

static const PrepCommandLine g_cli = {
    .cmd = "imagenet",
    .intro = "usage: resnet_prep imagenet --train DIR --val DIR --out FILE.h5 [options]\n"
             "\n"
             "Converts class folders of .jpg/.jpeg/.png images (any case; the format is\n"
             "detected from the content, so a PNG named .JPEG works) to a dataset file.\n"
             "Class index = position of the class folder name in sorted order, as in\n"
             "torchvision's ImageFolder; /classes holds the names. Greyscale and CMYK\n"
             "images become RGB. Unreadable files are skipped with a warning.\n"
             "\n",
    .flags = g_flags,
    .nflags = PREP_NFLAGS(g_flags),
};

static void options_parse(int argc, char **argv, ImagenetOptions *o)
{
    prep_flags_parse(&g_cli, argc, argv, o);
    image_set_max_pixels((size_t)o->max_pixels);
    if (o->synsets && !o->val_labels)
        prep_usage_fail(g_cli.cmd,
                        "--synsets is used only with --val-labels (devkit ground truth)");
}

/* A flat --val folder without --val-labels gets a hint rather than only
 * "no class folders". */
static int scan_val_classes(const ImagenetOptions *o, const PrepClasses *classes,
                            PrepFiles *val, Status *st)
{
    PrepClasses probe;
    Status probe_st = {0};
    if (prep_classes_scan("--val", o->val, &probe, &probe_st) == 0) {
        prep_classes_free(&probe);
        return prep_files_scan_classes("--val", o->val, classes, o->strict, val, st);
    }
    if (probe.names) /* the folder opened, it just has no sub-folders */
        status_set(st, EXIT_USAGE,
                   "--val %s: no class folders inside; a flat folder of validation images "
                   "needs --val-labels FILE (LOC_val_solution.csv or "
                   "ILSVRC2012_validation_ground_truth.txt)",
                   o->val);
    else
        *st = probe_st;
    prep_classes_free(&probe);
    return -1;
}

/* Rank 0: every listing and label file, in the order a user would fix them. */
static void scan_all(const ImagenetOptions *o, PrepClasses *classes, PrepFiles *train,
                     PrepFiles *val, Status *st)
{
    if (prep_classes_scan("--train", o->train, classes, st) != 0 ||
        prep_files_scan_classes("--train", o->train, classes, o->strict, train, st) != 0)
        return;
    if (o->val_labels) {
        if (prep_files_scan_flat("--val", o->val, val, st) != 0 ||
            prep_files_label(val, o->val, o->val_labels, o->synsets, classes, st) != 0)
            return;
    } else if (scan_val_classes(o, classes, val, st) != 0) {
        return;
    }
    prep_files_limit(train, o->limit, classes->n);
    prep_files_limit(val, o->limit, classes->n);
}

typedef struct {
    const ImagenetOptions *opt;
    const PrepFiles *files;
    ImageCodec *codec;
    uint8_t *buf; /* the file's bytes */
    size_t cap;
    Image decoded, resized;
} ImagenetSource;

static int file_read(ImagenetSource *s, const char *path, size_t *size, char *why, size_t len)
{
    char reason[256];
    int fd = prep_file_open(path, reason, sizeof reason);
    struct stat sb;
    if (fd < 0) {
        snprintf(why, len, "%s: cannot read: %s", path, reason);
        return -1;
    }
    if (fstat(fd, &sb) != 0) {
        snprintf(why, len, "%s: cannot read: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if ((size_t)sb.st_size > s->cap) {
        free(s->buf);
        s->cap = (size_t)sb.st_size;
        s->buf = xmalloc(s->cap);
    }
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t n = read(fd, s->buf + got, (size_t)sb.st_size - got);
        if (n <= 0) {
            snprintf(why, len, "%s: cannot read: %s", path, n ? strerror(errno) : "file shrank");
            close(fd);
            return -1;
        }
        got += (size_t)n;
    }
    close(fd);
    *size = got;
    return 0;
}

/* PrepLoadFn: file -> RGB -> shorter side = size -> crop (raw) or encode. */
static PrepLoad imagenet_load(void *ctx, size_t index, PrepRecord *rec, char *why, size_t len)
{
    ImagenetSource *s = ctx;
    const ImagenetOptions *o = s->opt;
    const char *path = prep_files_path(s->files, index);
    size_t size;
    char reason[512];
    if (file_read(s, path, &size, why, len) != 0)
        return PREP_LOAD_SKIP;
    int min_short = o->full_decode ? 0 : o->size;
    if (image_decode(s->codec, s->buf, size, min_short, &s->decoded, reason, sizeof reason) != 0) {
        snprintf(why, len, "%s: %s", path, reason);
        return PREP_LOAD_SKIP;
    }
    int w, h;
    image_resized_dims(s->decoded.w, s->decoded.h, o->size, &w, &h);
    if ((size_t)w * (size_t)h > IMAGE_MAX_PIXELS) {
        snprintf(why, len, "%s: aspect ratio too extreme (%d x %d would resize to %d x %d)",
                 path, s->decoded.w, s->decoded.h, w, h);
        return PREP_LOAD_SKIP;
    }
    /* libjpeg's JPEG_MAX_DIMENSION: a longer side cannot be encoded. */
    if (o->encoding == PREP_JPEG && (w > 65500 || h > 65500)) {
        snprintf(why, len, "%s: aspect ratio too extreme for --encoding jpeg (%d x %d would "
                 "resize to %d x %d; JPEG allows at most 65500 per side)",
                 path, s->decoded.w, s->decoded.h, w, h);
        return PREP_LOAD_SKIP;
    }
    if (o->encoding == PREP_RAW) {
        image_resize(&s->decoded, w, h, &s->resized);
        image_center_crop(&s->resized, o->size, o->size, &rec->image);
    } else {
        image_resize(&s->decoded, w, h, &rec->image);
        if (image_encode_jpeg(s->codec, &rec->image, o->quality, &rec->jpeg, &rec->jpeg_size,
                              reason, sizeof reason) != 0)
            fail_local(__FILE__, __LINE__, "image_encode_jpeg", "%s: %s", path, reason);
    }
    rec->label = s->files->labels[index];
    return PREP_LOAD_OK;
}

static void convert(const ImagenetOptions *o, const PrepClasses *classes,
                    const PrepFiles *train, const PrepFiles *val)
{
    PrepLayout layout = {
        .encoding = o->encoding,
        .h = o->size,
        .w = o->size,
        .c = 3,
        .num_classes = classes->n,
        .classes = (const char *const *)classes->names,
    };
    PrepWriter *w = prep_writer_open(o->out, &layout, train->n + val->n, o->strict,
                                     o->force);
    ImagenetSource src = {.opt = o, .codec = image_codec_new()};
    src.files = train;
    prep_writer_split(w, &(PrepSplit){"train", train->n, 1, imagenet_load, &src});
    src.files = val;
    prep_writer_split(w, &(PrepSplit){"val", val->n, 0, imagenet_load, &src});
    prep_writer_finish(w);
    image_free(&src.decoded);
    image_free(&src.resized);
    image_codec_free(src.codec);
    free(src.buf);
}

int prep_imagenet_main(int argc, char **argv)
{
    ImagenetOptions o;
    options_parse(argc, argv, &o);
    prep_output_check(o.out, o.force); /* before a scan that can take minutes */
    PrepClasses classes = {0};
    PrepFiles train = {0}, val = {0};
    Status st = {0};
    if (log_rank_id() == 0)
        scan_all(&o, &classes, &train, &val, &st);
    status_agree(&st);
    prep_classes_bcast(&classes, 0);
    prep_files_bcast(&train, 0);
    prep_files_bcast(&val, 0);
    log_info("imagenet: %d classes, %zu train images (%s), %zu val images (%s), %d rank%s, "
             "%s encoding, size %d",
             classes.n, train.n, o.train, val.n, o.val, log_world_size(),
             log_world_size() > 1 ? "s" : "", o.encoding == PREP_RAW ? "raw" : "jpeg", o.size);
    if (train.ignored + val.ignored)
        log_info("  ignored %llu files whose names do not end in .jpg/.jpeg/.png",
                 (unsigned long long)(train.ignored + val.ignored));
    convert(&o, &classes, &train, &val);
    prep_files_free(&train);
    prep_files_free(&val);
    prep_classes_free(&classes);
    return EXIT_OK;
}
