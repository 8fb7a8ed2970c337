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
#include "prep_flags.h"
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
    int classes, size, channels;
    long seed, train, val, test;
    const char *out;
    int force;
} SynthOptions;

#define OPT(f) offsetof(SynthOptions, f)
static const PrepFlag g_flags[] = {
    {.name = "classes", .kind = FLAG_INT, .offset = OPT(classes), .metavar = "K", .lo = 1,
     .hi = 1 << 20, .def = 10, .help = "number of classes"},
    {.name = "train", .kind = FLAG_LONG, .offset = OPT(train), .metavar = "N", .lo = 1,
     .hi = LONG_MAX, .def = 1000, .help = "training images"},
    {.name = "val", .kind = FLAG_LONG, .offset = OPT(val), .metavar = "M", .lo = 1,
     .hi = LONG_MAX, .def = 200, .help = "validation images"},
    {.name = "test", .kind = FLAG_LONG, .offset = OPT(test), .metavar = "T", .lo = 0,
     .hi = LONG_MAX, .def = 0, .help = "test images, 0 = no /test"},
    {.name = "size", .kind = FLAG_INT, .offset = OPT(size), .metavar = "S", .lo = 1, .hi = 4096,
     .def = 32, .help = "images are S x S"},
    {.name = "channels", .kind = FLAG_INT, .offset = OPT(channels), .metavar = "1|3", .lo = 1,
     .hi = 3, .def = 3, .help = "grey or RGB"},
    {.name = "seed", .kind = FLAG_LONG, .offset = OPT(seed), .metavar = "X", .lo = 0,
     .hi = LONG_MAX, .def = 0, .help = "random seed"},
    PREP_FLAG_OUT(SynthOptions),
    PREP_FLAG_FORCE(SynthOptions),
};
#undef OPT

static const PrepCommandLine g_cli = {
    .cmd = "synthetic",
    .intro = "usage: resnet_prep synthetic --out FILE.h5 [options]\n"
             "\n"
             "Writes random images with learnable class structure: each class has its own\n"
             "colour and stripe direction, each image a random stripe phase and pixel\n"
             "noise. Label of image i = i mod classes. Deterministic given the seed, for\n"
             "any number of ranks.\n"
             "\n",
    .flags = g_flags,
    .nflags = PREP_NFLAGS(g_flags),
};

static SynthSpec options_parse(int argc, char **argv, SynthOptions *o)
{
    prep_flags_parse(&g_cli, argc, argv, o);
    if (o->channels == 2)
        prep_usage_fail(g_cli.cmd, "--channels 2: expected 1 or 3");
    return (SynthSpec){.classes = o->classes, .size = o->size, .channels = o->channels,
                       .seed = (uint64_t)o->seed};
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
    SynthSpec spec = options_parse(argc, argv, &o);
    const SynthSpec *sp = &spec;
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
