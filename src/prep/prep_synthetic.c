/*
 * prep_synthetic.c - deterministic synthetic datasets for smoke tests and
 * benchmarks: integer-only generation so every rank and machine agrees.
 */
#include "prep_synthetic.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "error.h"
#include "log.h"
#include "prep.h"
#include "prep_writer.h"

/* splitmix64: a tiny counter-based generator, good enough for pixels. */
static uint64_t mix_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* What makes a class recognisable: a base colour, a stripe direction and
 * the sign of the stripes in each channel. */
typedef struct {
    int base[3], sign[3];
    int fx, fy;
} ClassLook;

static ClassLook class_look(const SynthSpec *spec, int k)
{
    uint64_t s = spec->seed ^ (0x5eedc1a55ull + (uint64_t)k * 0x100000001b3ull);
    ClassLook look;
    for (int ch = 0; ch < 3; ch++) {
        uint64_t r = mix_next(&s);
        look.base[ch] = 64 + (int)(r % 128);
        look.sign[ch] = (r >> 32) & 1 ? 1 : -1;
    }
    uint64_t r = mix_next(&s);
    look.fx = 1 + (int)(r % 3);        /* 1..3 stripes across */
    look.fy = (int)((r >> 8) % 5) - 2; /* -2..2 stripes down */
    return look;
}

int prep_synthetic_image(const SynthSpec *spec, int split, size_t index, Image *img)
{
    int label = (int)(index % (size_t)spec->classes), n = spec->size, c = spec->channels;
    ClassLook look = class_look(spec, label);
    uint64_t s = spec->seed ^ ((uint64_t)split << 56) ^ ((uint64_t)index * 0xd1b54a32d192ed03ull);
    int phase = (int)(mix_next(&s) % 256);
    image_reserve(img, n, n, c);
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++) {
            /* A triangle wave in [-64, 63] along the class's direction; the
             * offset keeps the argument non-negative. */
            int t = ((look.fx * x + look.fy * y + 2 * n) * 512 / n + phase) & 255;
            int tri = abs(t - 128) - 64;
            uint64_t r = mix_next(&s);
            for (int ch = 0; ch < c; ch++) {
                int noise = (int)((r >> (16 * ch)) % 49) - 24;
                int v = look.base[ch] + look.sign[ch] * tri * 3 / 4 + noise;
                img->px[((size_t)y * n + x) * c + ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    return label;
}

typedef struct {
    SynthSpec spec;
    long train, val, test;
    const char *out;
    int force;
} SynthOptions;

static const char g_help[] =
    "usage: resnet_prep synthetic --out FILE.h5 [options]\n"
    "\n"
    "Writes random images with learnable class structure: each class has its own\n"
    "colour and stripe direction, each image a random stripe phase and pixel\n"
    "noise. Label of image i = i mod classes. Deterministic given the seed, for\n"
    "any number of ranks.\n"
    "\n"
    "  --classes K     number of classes (default: 10)\n"
    "  --train N       training images (default: 1000)\n"
    "  --val M         validation images (default: 200)\n"
    "  --test T        test images, 0 = no /test (default: 0)\n"
    "  --size S        images are S x S (default: 32)\n"
    "  --channels 1|3  grey or RGB (default: 3)\n"
    "  --seed X        random seed (default: 0)\n"
    "  --out FILE.h5   output file (required)\n"
    "  --force         replace --out if it exists (default: refuse)\n"
    "  -h, --help      this text\n";

static void options_parse(int argc, char **argv, SynthOptions *o)
{
    enum { OPT_CLASSES = 256, OPT_TRAIN, OPT_VAL, OPT_TEST, OPT_SIZE, OPT_CHANNELS, OPT_SEED,
           OPT_OUT, OPT_FORCE };
    static const struct option opts[] = {
        {"classes", required_argument, NULL, OPT_CLASSES},
        {"train", required_argument, NULL, OPT_TRAIN},
        {"val", required_argument, NULL, OPT_VAL},
        {"test", required_argument, NULL, OPT_TEST},
        {"size", required_argument, NULL, OPT_SIZE},
        {"channels", required_argument, NULL, OPT_CHANNELS},
        {"seed", required_argument, NULL, OPT_SEED},
        {"out", required_argument, NULL, OPT_OUT},
        {"force", no_argument, NULL, OPT_FORCE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "synthetic";
    *o = (SynthOptions){.spec = {10, 32, 3, 0}, .train = 1000, .val = 200};
    int c;
    while ((c = prep_getopt(cmd, argc, argv, "h", opts)) != -1) {
        switch (c) {
        case OPT_CLASSES:
            o->spec.classes = (int)prep_parse_long(cmd, "--classes", optarg, 1, 1 << 20);
            break;
        case OPT_TRAIN: o->train = prep_parse_long(cmd, "--train", optarg, 1, LONG_MAX); break;
        case OPT_VAL: o->val = prep_parse_long(cmd, "--val", optarg, 1, LONG_MAX); break;
        case OPT_TEST: o->test = prep_parse_long(cmd, "--test", optarg, 0, LONG_MAX); break;
        case OPT_SIZE: o->spec.size = (int)prep_parse_long(cmd, "--size", optarg, 1, 4096); break;
        case OPT_SEED:
            o->spec.seed = (uint64_t)prep_parse_long(cmd, "--seed", optarg, 0, LONG_MAX);
            break;
        case OPT_CHANNELS:
            o->spec.channels = (int)prep_parse_long(cmd, "--channels", optarg, 1, 3);
            if (o->spec.channels == 2)
                prep_usage_fail(cmd, "--channels 2: expected 1 or 3");
            break;
        case OPT_OUT: o->out = optarg; break;
        case OPT_FORCE: o->force = 1; break;
        default: prep_help(g_help);
        }
    }
    if (optind < argc)
        prep_usage_fail(cmd, "unexpected argument '%s'", argv[optind]);
    prep_require(cmd, "--out", o->out);
}

typedef struct {
    const SynthSpec *spec;
    int split;
} SynthSource;

/* PrepLoadFn: generate, never fails. */
static PrepLoad synthetic_load(void *ctx, size_t index, PrepRecord *rec, char *why, size_t len)
{
    (void)why;
    (void)len;
    const SynthSource *s = ctx;
    rec->label = prep_synthetic_image(s->spec, s->split, index, &rec->image);
    return PREP_LOAD_OK;
}

int prep_synthetic_main(int argc, char **argv)
{
    SynthOptions o;
    options_parse(argc, argv, &o);
    const SynthSpec *sp = &o.spec;
    char **names = xmalloc((size_t)sp->classes * sizeof *names);
    for (int k = 0; k < sp->classes; k++) {
        char buf[32];
        snprintf(buf, sizeof buf, "class_%d", k);
        names[k] = xstrdup(buf);
    }
    log_info("synthetic: %d classes, %ld train, %ld val, %ld test images of %dx%dx%d, seed %llu",
             sp->classes, o.train, o.val, o.test, sp->size, sp->size, sp->channels,
             (unsigned long long)sp->seed);
    PrepLayout layout = {PREP_RAW, sp->size, sp->size, sp->channels, sp->classes,
                         (const char *const *)names};
    PrepWriter *w = prep_writer_open(o.out, &layout, (uint64_t)(o.train + o.val + o.test), 1,
                                     o.force);
    SynthSource src[3] = {{sp, 0}, {sp, 1}, {sp, 2}};
    prep_writer_split(w, &(PrepSplit){"train", (size_t)o.train, 1, synthetic_load, &src[0]});
    prep_writer_split(w, &(PrepSplit){"val", (size_t)o.val, 0, synthetic_load, &src[1]});
    if (o.test)
        prep_writer_split(w, &(PrepSplit){"test", (size_t)o.test, 0, synthetic_load, &src[2]});
    prep_writer_finish(w);
    for (int k = 0; k < sp->classes; k++)
        free(names[k]);
    free(names);
    return EXIT_OK;
}
