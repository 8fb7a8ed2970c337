/*
 * test_augment.c - the augmentations of augment.h:
 *   - the resampler gives torchvision's antialiased resized_crop (rrc) and
 *     resize-then-crop (paper) pixels to within one 8-bit level, for
 *     shrinking by up to 7x, enlarging, odd ratios and one channel;
 *   - rrc boxes stay inside the image with area and ratio in range, and are
 *     distributed as torchvision's RandomResizedCrop.get_params draws them
 *     (two-sample Kolmogorov-Smirnov on area, ratio and position);
 *   - paper's shorter side and offsets, cifar's padded offsets (all of
 *     [0, 8]^2, about uniformly) and flip rates; none is the exact centre
 *     crop with torchvision's rounding and zero padding;
 *   - mirrored output is the mirror image; normalisation is exactly
 *     (v / 255 - mean) / std in float32; the per-sample stream depends
 *     only on (seed, epoch, position);
 *   - random erasing: the rectangle is the one torchvision's
 *     RandomErasing rules give for the same draws (a plain transcription
 *     below); P = 0 draws nothing and changes nothing; erased values are
 *     exactly 0 in every channel and nothing else changes; the erased
 *     fraction of images is about P and the erased area in [0.02, 0.33] of
 *     the crop; the same keys erase the same rectangle; rate, area, ratio
 *     and position are distributed as torchvision's RandomErasing makes
 *     them.
 * The torchvision side is made by a Python script written to build/tmp.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "augment.h"
#include "common/testutil.h"

static char g_dir[512];
static float g_identity[3][256]; /* lut[c][v] = v: outputs in pixel units */



static int group_setup(void **state)
{
    (void)state;
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++)
            g_identity[c][v] = (float)v;
    testutil_tmpdir(g_dir, sizeof g_dir, "augment");
    /* torchvision's side: tests/fixtures/gen_augment.py */
    if (testutil_run_fixture("numpy torch torchvision", "gen_augment.py", "'%s'", g_dir) != 0) {
        fprintf(stderr, "tests/fixtures/gen_augment.py failed\n");
        return -1;
    }
    return 0;
}

static void *load(const char *name, size_t bytes)
{
    char path[1024];
    testutil_join(path, sizeof path, g_dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    void *buf = malloc(bytes);
    size_t got = fread(buf, 1, bytes, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != bytes || extra)
        fail_msg("%s does not hold %zu bytes", path, bytes);
    return buf;
}

typedef struct {
    int h, w, c;
    uint8_t *px;
} TestImage;

static TestImage image_load(const char *kind)
{
    TestImage t = strcmp(kind, "rgb") == 0 ? (TestImage){37, 53, 3, NULL}
                                           : (TestImage){29, 31, 1, NULL};
    char name[64];
    snprintf(name, sizeof name, "%s.bin", kind);
    t.px = load(name, (size_t)t.h * t.w * t.c);
    return t;
}

/* out (C, crop, crop) in pixel units against torchvision's (crop, crop, C):
 * every pixel within one level, and at most 3% of them off at all. */
static void compare_pixels(const float *got, const uint8_t *want_hwc, int crop, int c,
                           const char *what)
{
    size_t n = (size_t)crop * crop * c, off = 0;
    float *want = malloc(n * sizeof *want);
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < crop; y++)
            for (int x = 0; x < crop; x++) {
                size_t i = ((size_t)ch * crop + y) * crop + x;
                want[i] = want_hwc[((size_t)y * crop + x) * c + ch];
                off += got[i] != want[i];
            }
    assert_close(got, want, n, 1.0, 0, what);
    print_message("%s: %zu of %zu values one level off\n", what, off, n);
    if (off * 100 > n * 3)
        fail_msg("%s: %zu of %zu pixels differ from torchvision by one level", what, off, n);
    free(want);
}

/* rrc boxes and paper's resize-then-crop against torchvision, both mirrors. */
static void test_resample_matches_torchvision(void **state)
{
    (void)state;
    char path[1024], line[256];
    testutil_join(path, sizeof path, g_dir, "cases.txt");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    AugScratch s = {0};
    int cases = 0;
    while (fgets(line, sizeof line, f)) {
        char kind[16], img_kind[16], file[64];
        int a, b, h, w, crop, nh, nw;
        AugBox box = {0};
        TestImage t;
        if (sscanf(line, "rrc %15s %d %d %d %d %d %63s", img_kind, &a, &b, &h, &w, &crop,
                   file) == 7) {
            snprintf(kind, sizeof kind, "rrc");
            box = (AugBox){.resample = 1, .crop_first = 1, .top = a, .left = b, .x0 = b,
                           .y0 = a, .x1 = b + w, .y1 = a + h};
        } else if (sscanf(line, "paper %15s %d %d %d %d %d %d %63s", img_kind, &h, &a, &b,
                          &crop, &nh, &nw, file) == 8) {
            snprintf(kind, sizeof kind, "paper");
            t = image_load(img_kind);
            double sx = (double)t.w / nw, sy = (double)t.h / nh;
            free(t.px);
            box = (AugBox){.resample = 1, .crop_first = 0, .x0 = b * sx, .x1 = (b + crop) * sx,
                           .y0 = a * sy, .y1 = (a + crop) * sy};
        } else {
            fail_msg("bad line in cases.txt: %s", line);
        }
        t = image_load(img_kind);
        uint8_t *want = load(file, (size_t)crop * crop * t.c);
        size_t n = (size_t)crop * crop * t.c;
        float *got = malloc(n * sizeof *got), *mirror = malloc(n * sizeof *mirror);
        augment_apply(&box, t.px, t.h, t.w, t.c, crop, (const float (*)[256])g_identity, &s, got);
        char what[128];
        snprintf(what, sizeof what, "%s %s", kind, file);
        compare_pixels(got, want, crop, t.c, what);
        box.flip = 1;
        augment_apply(&box, t.px, t.h, t.w, t.c, crop, (const float (*)[256])g_identity, &s,
                      mirror);
        for (size_t row = 0; row < (size_t)crop * t.c; row++)
            for (int x = 0; x < crop; x++)
                assert_true(mirror[row * crop + x] == got[row * crop + crop - 1 - x]);
        free(got);
        free(mirror);
        free(want);
        free(t.px);
        cases++;
    }
    fclose(f);
    assert_int_equal(cases, 12);
    augment_scratch_free(&s);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Two-sample Kolmogorov-Smirnov statistic (sorts both). */
static double ks(double *a, size_t na, double *b, size_t nb)
{
    qsort(a, na, sizeof *a, cmp_double);
    qsort(b, nb, sizeof *b, cmp_double);
    size_t i = 0, j = 0;
    double d = 0;
    while (i < na && j < nb) {
        double v = a[i] < b[j] ? a[i] : b[j];
        while (i < na && a[i] <= v)
            i++;
        while (j < nb && b[j] <= v)
            j++;
        double diff = fabs((double)i / na - (double)j / nb);
        d = diff > d ? diff : d;
    }
    return d;
}

enum { KS_OURS = 20000, KS_THEIRS = 10000 };

/* Area, log ratio and centre position of boxes (i, j, h, w) of an H x W image. */
static void box_stats(const int32_t *boxes, int n, int height, int width, double *area,
                      double *ratio, double *cy, double *cx)
{
    for (int k = 0; k < n; k++) {
        const int32_t *b = boxes + 4 * k;
        area[k] = (double)b[2] * b[3] / ((double)height * width);
        ratio[k] = log((double)b[3] / b[2]);
        cy[k] = (b[0] + b[2] / 2.0) / height;
        cx[k] = (b[1] + b[3] / 2.0) / width;
    }
}

/* Fails unless the area, log ratio and centre of our boxes (i, j, h, w) of
 * an H x W image are distributed as torchvision's: two-sample
 * Kolmogorov-Smirnov at alpha 0.001, critical value 1.95 sqrt((n + m) / nm). */
static void ks_boxes(const char *what, const int32_t *ours, int n, const int32_t *theirs, int m,
                     int height, int width)
{
    double *a = malloc(4 * ((size_t)n + m) * sizeof *a);
    double *st[8];
    for (int q = 0; q < 4; q++) {
        st[q] = a + (size_t)q * n;
        st[q + 4] = a + 4 * (size_t)n + (size_t)q * m;
    }
    box_stats(ours, n, height, width, st[0], st[1], st[2], st[3]);
    box_stats(theirs, m, height, width, st[4], st[5], st[6], st[7]);
    double crit = 1.95 * sqrt((double)(n + m) / ((double)n * m));
    const char *stat[4] = {"area", "log ratio", "centre y", "centre x"};
    for (int q = 0; q < 4; q++) {
        double d = ks(st[q], (size_t)n, st[q + 4], (size_t)m);
        print_message("%s %s: KS D = %.4f (critical %.4f)\n", what, stat[q], d, crit);
        if (d > crit)
            fail_msg("%s: %s distribution differs from torchvision's: KS D = %.4f", what,
                     stat[q], d);
    }
    free(a);
}

/* Our rrc boxes: inside the image, area and ratio within the limits (up to
 * the rounding of w and h) unless the fallback was taken, and distributed as
 * torchvision's. */
static void test_rrc_boxes(void **state)
{
    (void)state;
    const int sizes[][2] = {{256, 256}, {120, 360}, {20, 20}};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        int height = sizes[s][0], width = sizes[s][1];
        char name[64];
        snprintf(name, sizeof name, "boxes_%dx%d.bin", height, width);
        int32_t *theirs = load(name, (size_t)KS_THEIRS * 4 * sizeof(int32_t));
        int32_t *ours = malloc((size_t)KS_OURS * 4 * sizeof(int32_t));
        int flips = 0;
        for (int k = 0; k < KS_OURS; k++) {
            Rng r;
            AugBox b;
            augment_rng(&r, 17, 2, k);
            augment_choose(AUG_RRC, 224, height, width, &r, &b);
            int i = (int)b.y0, j = (int)b.x0, h = (int)(b.y1 - b.y0), w = (int)(b.x1 - b.x0);
            assert_true(b.y0 == i && b.x0 == j && b.y1 == i + h && b.x1 == j + w);
            assert_true(i >= 0 && j >= 0 && h >= 1 && w >= 1 && i + h <= height &&
                        j + w <= width);
            assert_true((b.resample == 1 && b.crop_first == 1) || (h == 224 && w == 224));
            int fallback = i == (height - h) / 2 && j == (width - w) / 2 &&
                           (w == width || h == height);
            double area = (double)h * w / ((double)height * width);
            double lr = fabs(log((double)w / h)), tol = 1.0 / w + 1.0 / h;
            if (!fallback) {
                assert_true(area <= 1.0);
                assert_true(area >= AUG_RRC_SCALE_MIN * (1 - 1.0 / w) * (1 - 1.0 / h) - 1e-9);
                assert_true(lr <= log(AUG_RRC_RATIO_MAX) + tol);
            } else {
                assert_true(lr <= log(AUG_RRC_RATIO_MAX) + tol || (w == width && h == height));
            }
            flips += b.flip;
            ours[4 * k] = i;
            ours[4 * k + 1] = j;
            ours[4 * k + 2] = h;
            ours[4 * k + 3] = w;
        }
        assert_in_range(flips, KS_OURS / 2 - 300, KS_OURS / 2 + 300); /* sd 71 */
        snprintf(name, sizeof name, "rrc %dx%d", height, width);
        ks_boxes(name, ours, KS_OURS, theirs, KS_THEIRS, height, width);
        free(ours);
        free(theirs);
    }
}

/* Shorter side S in [256, 480] x crop / 224, the crop inside the resized
 * image, every S reached, flips about half. */
static void test_paper_boxes(void **state)
{
    (void)state;
    const int crop = 112, height = 300, width = 400, n = 20000;
    int s_min = 128, s_max = 240, flips = 0;
    int *seen = calloc((size_t)s_max + 1, sizeof *seen);
    for (int k = 0; k < n; k++) {
        Rng r;
        AugBox b;
        augment_rng(&r, 1, 0, k);
        augment_choose(AUG_PAPER, crop, height, width, &r, &b);
        assert_true(b.resample == 1 && b.crop_first == 0);
        double scale = (b.y1 - b.y0) / crop; /* stored pixels per resized pixel */
        int s = (int)lround(height / scale);
        assert_in_range(s, s_min, s_max);
        int new_w = (int)((int64_t)s * width / height);
        assert_true(fabs((b.x1 - b.x0) / crop - (double)width / new_w) < 1e-12);
        assert_true(b.y0 >= 0 && b.x0 >= 0 && b.y1 <= height + 1e-9 && b.x1 <= width + 1e-9);
        assert_true(b.top >= 0 && b.top <= s - crop && b.left >= 0 && b.left <= new_w - crop);
        seen[s]++;
        flips += b.flip;
    }
    for (int s = s_min; s <= s_max; s++)
        assert_true(seen[s] > 0);
    assert_in_range(flips, n / 2 - 300, n / 2 + 300);
    free(seen);
}

/* pad 4 then a random 32 crop: offsets (top + 4, left + 4) cover [0, 8]^2
 * about uniformly; the output is the padded window exactly. */
static void test_cifar(void **state)
{
    (void)state;
    enum { S = 32, N = 16200 };
    int hist[9][9] = {{0}};
    uint8_t img[S * S * 3];
    for (int i = 0; i < S * S * 3; i++)
        img[i] = (uint8_t)(i * 7 + 1);
    float out[3 * S * S];
    AugScratch s = {0};
    for (int k = 0; k < N; k++) {
        Rng r;
        AugBox b;
        augment_rng(&r, 4, 1, k);
        augment_choose(AUG_CIFAR, S, S, S, &r, &b);
        assert_int_equal(b.resample, 0);
        assert_in_range(b.top + 4, 0, 8);
        assert_in_range(b.left + 4, 0, 8);
        hist[b.top + 4][b.left + 4]++;
        if (k < 50) {
            augment_apply(&b, img, S, S, 3, S, (const float (*)[256])g_identity, &s, out);
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < S; y++)
                    for (int x = 0; x < S; x++) {
                        int sy = b.top + y, sx = b.left + (b.flip ? S - 1 - x : x);
                        float want = sy < 0 || sy >= S || sx < 0 || sx >= S
                                         ? 0.f
                                         : img[(sy * S + sx) * 3 + c];
                        assert_true(out[(c * S + y) * S + x] == want);
                    }
        }
    }
    for (int i = 0; i < 9; i++)
        for (int j = 0; j < 9; j++) /* mean 200, sd 14 */
            assert_in_range(hist[i][j], 130, 270);
    augment_scratch_free(&s);
}

/* none: the exact centre crop, torchvision's rounding (halves to even) and
 * zero padding for images smaller than the crop; no randomness, no flip. */
static void test_none_centre(void **state)
{
    (void)state;
    /* (size, crop) -> offset */
    const int cases[][3] = {{11, 7, 2}, {9, 7, 1}, {8, 5, 2}, {10, 5, 2}, {6, 5, 0},
                            {7, 7, 0},  {5, 9, -2}, {4, 9, -2}, {8, 11, -1}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        AugBox b;
        augment_choose(AUG_NONE, cases[i][1], cases[i][0], cases[i][0], NULL, &b);
        assert_int_equal(b.top, cases[i][2]);
        assert_int_equal(b.left, cases[i][2]);
        assert_int_equal(b.flip, 0);
        assert_int_equal(b.resample, 0);
    }
    enum { H = 9, W = 11, CROP = 7 };
    uint8_t img[H * W];
    for (int i = 0; i < H * W; i++)
        img[i] = (uint8_t)(3 * i);
    AugBox b;
    augment_choose(AUG_NONE, CROP, H, W, NULL, &b);
    float out[CROP * CROP];
    AugScratch s = {0};
    augment_apply(&b, img, H, W, 1, CROP, (const float (*)[256])g_identity, &s, out);
    for (int y = 0; y < CROP; y++)
        for (int x = 0; x < CROP; x++)
            assert_true(out[y * CROP + x] == img[(y + 1) * W + x + 2]);
}

/* Through a real lookup table: (v / 255 - mean) / std in float32, as
 * torchvision's ToTensor and Normalize compute it. */
static void test_normalise_exact(void **state)
{
    (void)state;
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    float lut[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++)
            lut[c][v] = ((float)v / 255.0f - mean[c]) / std[c];
    enum { S = 16 };
    uint8_t img[S * S * 3];
    for (int i = 0; i < S * S * 3; i++)
        img[i] = (uint8_t)(i * 13);
    float out[3 * S * S];
    AugBox b;
    augment_choose(AUG_NONE, S, S, S, NULL, &b);
    AugScratch s = {0};
    augment_apply(&b, img, S, S, 3, S, (const float (*)[256])lut, &s, out);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < S * S; i++)
            assert_true(out[c * S * S + i] ==
                        ((float)img[i * 3 + c] / 255.0f - mean[c]) / std[c]);
    /* a resampled box lands on the same table: every value is lut[c][v] */
    Rng r;
    augment_rng(&r, 1, 1, 1);
    augment_choose(AUG_RRC, S, S, S, &r, &b);
    b.resample = 1;
    augment_apply(&b, img, S, S, 3, S, (const float (*)[256])lut, &s, out);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < S * S; i++) {
            int hit = 0;
            for (int v = 0; v < 256 && !hit; v++)
                hit = out[c * S * S + i] == lut[c][v];
            assert_true(hit);
        }
    augment_scratch_free(&s);
}

/* augment_sample depends on (seed, epoch, position) and nothing else. */
static void test_sample_keys(void **state)
{
    (void)state;
    enum { H = 40, W = 50, CROP = 24, N = 3 * CROP * CROP };
    uint8_t *img = malloc(H * W * 3);
    for (int i = 0; i < H * W * 3; i++)
        img[i] = (uint8_t)(i * 31 + i / 7);
    float *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    AugScratch s1 = {0}, s2 = {0};
    const float (*lut)[256] = (const float (*)[256])g_identity;
    for (int m = AUG_RRC; m < AUG_COUNT; m++) {
        augment_sample((AugMode)m, 0.0, CROP, 9, 3, 100, img, H, W, 3, lut, &s1, a);
        augment_sample(AUG_RRC, 0.0, CROP, 1, 1, 1, img, H, W, 3, lut, &s2, b); /* scratch reuse */
        augment_sample((AugMode)m, 0.0, CROP, 9, 3, 100, img, H, W, 3, lut, &s2, b);
        assert_memory_equal(a, b, N * sizeof *a);
        int differ = 0; /* another key gives another crop (for some of a few) */
        for (int k = 0; k < 4 && !differ; k++) {
            augment_sample((AugMode)m, 0.0, CROP, 9, 3 + (k & 1), 101 + k, img, H, W, 3, lut,
                           &s2, b);
            differ = memcmp(a, b, N * sizeof *a) != 0;
        }
        assert_true(differ);
    }
    free(a);
    free(b);
    free(img);
    augment_scratch_free(&s1);
    augment_scratch_free(&s2);
}

/* ------------------------------------------------------------------ */
/* random erasing                                                      */

/* Python's round(): halves to even. */
static int py_round(double x)
{
    double f = floor(x), d = x - f;
    if (d > 0.5 || (d == 0.5 && fmod(f, 2.0) != 0.0))
        f += 1.0;
    return (int)f;
}

typedef struct {
    int erased, i, j, h, w;
    int rejected; /* attempts that did not fit */
} EraseRef;

/* torchvision.transforms.RandomErasing(p, scale=(0.02, 0.33),
 * ratio=(0.3, 3.3)).forward and get_params on a crop x crop tensor, line by
 * line, torch's draws replaced by ours in the same order. */
static EraseRef erase_reference(double p, int crop, Rng *r)
{
    EraseRef e = {0};
    if (p == 0 || !(rng_uniform(r) < p)) /* torch.rand(1) < p */
        return e;
    int img_h = crop, img_w = crop;
    double area = (double)img_h * img_w;
    double log_ratio[2] = {log(0.3), log(3.3)};
    for (int attempt = 0; attempt < 10; attempt++) {
        double erase_area = area * (0.02 + (0.33 - 0.02) * rng_uniform(r));
        double aspect_ratio = exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * rng_uniform(r));
        int h = py_round(sqrt(erase_area * aspect_ratio));
        int w = py_round(sqrt(erase_area / aspect_ratio));
        if (!(h < img_h && w < img_w)) {
            e.rejected++;
            continue;
        }
        e.i = (int)rng_below(r, (uint64_t)(img_h - h + 1)); /* torch.randint(0, img_h - h + 1) */
        e.j = (int)rng_below(r, (uint64_t)(img_w - w + 1));
        e.h = h;
        e.w = w;
        e.erased = 1;
        return e;
    }
    return e; /* no attempt fitted: the image is returned as it is */
}

/* The box of (mode, crop, size) at key k, with erasing probability p. */
static AugBox erase_box(AugMode mode, double p, int crop, int size, int64_t k)
{
    Rng r;
    AugBox b;
    augment_rng(&r, 11, 4, k);
    augment_choose(mode, crop, size, size, &r, &b);
    augment_choose_erase(p, crop, &r, &b);
    return b;
}

/* Our rectangle is the reference's for the same stream (after the crop and
 * flip draws), for several modes, crops and P; the crop and flip are those
 * of plain augment_choose. Crops 1 and 2 take the paths where attempts do
 * not fit and where a fitting rectangle is 0 pixels high or wide. (That all
 * ten attempts fail is too rare, below 1e-16 per image at crops of 8 px or
 * more, to be met here.) */
static void test_erase_matches_rules(void **state)
{
    (void)state;
    const AugMode modes[] = {AUG_NONE, AUG_CIFAR, AUG_RRC, AUG_PAPER};
    const int crops[] = {1, 2, 8, 32, 224};
    const double ps[] = {0.25, 0.5, 1.0};
    int fitted = 0, rejected = 0, empty = 0;
    for (int m = 0; m < 4; m++)
        for (int c = 0; c < 5; c++)
            for (int q = 0; q < 3; q++)
                for (int64_t k = 0; k < 2000; k++) {
                    int crop = crops[c], size = crop + 9;
                    AugBox got = erase_box(modes[m], ps[q], crop, size, k);
                    Rng r;
                    AugBox plain;
                    augment_rng(&r, 11, 4, k);
                    augment_choose(modes[m], crop, size, size, &r, &plain);
                    EraseRef want = erase_reference(ps[q], crop, &r);
                    assert_int_equal(got.erase_top, want.i);
                    assert_int_equal(got.erase_left, want.j);
                    assert_int_equal(got.erase_h, want.h);
                    assert_int_equal(got.erase_w, want.w);
                    fitted += want.erased;
                    rejected += want.rejected;
                    empty += want.erased && want.h * want.w == 0;
                    got.erase_top = got.erase_left = got.erase_h = got.erase_w = 0;
                    assert_memory_equal(&got, &plain, sizeof got);
                }
    print_message("erase: %d rectangles (%d empty), %d attempts rejected\n", fitted, empty,
                  rejected);
    assert_true(fitted > 0 && rejected > 0 && empty > 0);
}

/* P = 0: no draw is taken and nothing changes, so the plain augmentation is
 * bitwise what it was; P > 0 does draw. */
static void test_erase_off(void **state)
{
    (void)state;
    for (int64_t k = 0; k < 200; k++) {
        Rng r, before;
        AugBox b, plain;
        augment_rng(&r, 3, 1, k);
        augment_choose(AUG_RRC, 24, 40, 50, &r, &b);
        plain = b;
        before = r;
        augment_choose_erase(0.0, 24, &r, &b);
        assert_memory_equal(&r, &before, sizeof r);
        assert_memory_equal(&b, &plain, sizeof b);
        augment_choose_erase(1e-9, 24, &r, &b); /* draws the coin, erases nothing */
        assert_true(memcmp(&r, &before, sizeof r) != 0);
        assert_int_equal(b.erase_h, 0);
        assert_int_equal(b.erase_w, 0);
    }
    enum { H = 40, W = 50, CROP = 24, N = 3 * CROP * CROP };
    uint8_t *img = malloc(H * W * 3);
    for (int i = 0; i < H * W * 3; i++)
        img[i] = (uint8_t)(i * 29 + i / 5);
    float *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    AugScratch s = {0};
    const float (*lut)[256] = (const float (*)[256])g_identity;
    for (int m = 0; m < AUG_COUNT; m++)
        for (int64_t k = 0; k < 20; k++) {
            Rng r;
            AugBox box;
            augment_rng(&r, 9, 2, k);
            augment_choose((AugMode)m, CROP, H, W, &r, &box);
            augment_apply(&box, img, H, W, 3, CROP, lut, &s, a);
            augment_sample((AugMode)m, 0.0, CROP, 9, 2, k, img, H, W, 3, lut, &s, b);
            assert_memory_equal(a, b, N * sizeof *a);
        }
    free(a);
    free(b);
    free(img);
    augment_scratch_free(&s);
}

/* augment_sample with P = 1 against P = 0 through a table without zeros:
 * exactly the rectangle of the chosen box is 0 in every channel, every other
 * value is unchanged; the same keys give the same output. */
static void test_erase_pixels(void **state)
{
    (void)state;
    enum { H = 37, W = 45, CROP = 32, C = 3, N = C * CROP * CROP };
    static float lut[C][256]; /* never 0: (v + 1) / 64 - mean-like offsets */
    for (int c = 0; c < C; c++)
        for (int v = 0; v < 256; v++)
            lut[c][v] = (float)(v + 1) / 64.0f + (float)c;
    uint8_t *img = malloc(H * W * C);
    for (int i = 0; i < H * W * C; i++)
        img[i] = (uint8_t)(i * 37 + i / 11);
    float *plain = malloc(N * sizeof *plain), *out = malloc(N * sizeof *out),
          *again = malloc(N * sizeof *again);
    AugScratch s = {0};
    const float (*l)[256] = (const float (*)[256])lut;
    int erased_images = 0;
    for (int m = 0; m < AUG_COUNT; m++)
        for (int64_t k = 0; k < 30; k++) {
            augment_sample((AugMode)m, 0.0, CROP, 5, 1, k, img, H, W, C, l, &s, plain);
            augment_sample((AugMode)m, 1.0, CROP, 5, 1, k, img, H, W, C, l, &s, out);
            augment_sample((AugMode)m, 1.0, CROP, 5, 1, k, img, H, W, C, l, &s, again);
            assert_memory_equal(out, again, N * sizeof *out);
            Rng r;
            AugBox b;
            augment_rng(&r, 5, 1, k);
            augment_choose((AugMode)m, CROP, H, W, &r, &b);
            augment_choose_erase(1.0, CROP, &r, &b);
            size_t zeros = 0;
            for (int c = 0; c < C; c++)
                for (int y = 0; y < CROP; y++)
                    for (int x = 0; x < CROP; x++) {
                        size_t i = ((size_t)c * CROP + y) * CROP + x;
                        int inside = y >= b.erase_top && y < b.erase_top + b.erase_h &&
                                     x >= b.erase_left && x < b.erase_left + b.erase_w;
                        if (inside)
                            assert_true(out[i] == 0.f);
                        else
                            assert_true(out[i] == plain[i]);
                        zeros += out[i] == 0.f;
                    }
            assert_int_equal(zeros, (size_t)C * b.erase_h * b.erase_w);
            erased_images += zeros > 0;
        }
    assert_true(erased_images > AUG_COUNT * 30 * 9 / 10); /* crop 32 nearly always fits */
    free(plain);
    free(out);
    free(again);
    free(img);
    augment_scratch_free(&s);
}

/* Over many keys: the fraction of erased images is P (within 4.5 standard
 * deviations), the rectangle lies inside the crop with its area within
 * [0.02, 0.33] of it and its ratio h / w within [0.3, 3.3] (up to the
 * rounding of h and w), and the mean area is about (0.02 + 0.33) / 2. */
static void test_erase_statistics(void **state)
{
    (void)state;
    enum { CROP = 224, N = 20000 };
    const double ps[] = {0.1, 0.25, 0.5};
    for (int q = 0; q < 3; q++) {
        double p = ps[q], area_sum = 0;
        int erased = 0;
        for (int64_t k = 0; k < N; k++) {
            AugBox b = erase_box(AUG_RRC, p, CROP, 256, k);
            if (b.erase_h == 0 && b.erase_w == 0)
                continue;
            int h = b.erase_h, w = b.erase_w;
            assert_true(h >= 1 && w >= 1 && h < CROP && w < CROP);
            assert_true(b.erase_top >= 0 && b.erase_left >= 0 && b.erase_top + h <= CROP &&
                        b.erase_left + w <= CROP);
            double frac = (double)h * w / ((double)CROP * CROP);
            double grow = ((double)h / (h - 0.5)) * ((double)w / (w - 0.5));
            double shrink = ((double)h / (h + 0.5)) * ((double)w / (w + 0.5));
            assert_true(frac >= AUG_ERASE_SCALE_MIN * shrink && frac <= AUG_ERASE_SCALE_MAX * grow);
            assert_true((double)h / w >= AUG_ERASE_RATIO_MIN * shrink * shrink / grow &&
                        (double)h / w <= AUG_ERASE_RATIO_MAX * grow * grow / shrink);
            area_sum += frac;
            erased++;
        }
        double rate = (double)erased / N, sd = sqrt(p * (1 - p) / N);
        double mean_area = area_sum / erased;
        print_message("erase P = %g: %.4f of images erased, mean area %.4f of the crop\n", p,
                      rate, mean_area);
        assert_true(fabs(rate - p) < 4.5 * sd);
        assert_true(fabs(mean_area - 0.175) < 0.01); /* sd of the mean < 0.002 */
    }
}

/* Against torchvision's RandomErasing(p=0.5) itself (the fixture's 10000
 * rectangles of a 224 x 224 tensor): the erased fraction agrees (two-sample
 * test of proportions) and area, log ratio and centre are distributed alike
 * (Kolmogorov-Smirnov). */
static void test_erase_torchvision(void **state)
{
    (void)state;
    enum { CROP = 224, OURS = 20000, THEIRS = 10000 };
    int32_t *theirs = load("erase_224.bin", (size_t)THEIRS * 4 * sizeof(int32_t));
    int32_t *ours = malloc((size_t)OURS * 4 * sizeof(int32_t));
    int n_ours = 0, n_theirs = 0;
    for (int k = 0; k < OURS; k++) {
        AugBox b = erase_box(AUG_CIFAR, 0.5, CROP, CROP, k);
        if (b.erase_h == 0)
            continue;
        int32_t *o = ours + 4 * n_ours++;
        o[0] = b.erase_top, o[1] = b.erase_left, o[2] = b.erase_h, o[3] = b.erase_w;
    }
    for (int k = 0; k < THEIRS; k++)
        if (theirs[4 * k] >= 0)
            memmove(theirs + 4 * n_theirs++, theirs + 4 * k, 4 * sizeof *theirs);
    double p1 = (double)n_ours / OURS, p2 = (double)n_theirs / THEIRS;
    double pooled = (double)(n_ours + n_theirs) / (OURS + THEIRS);
    double z = (p1 - p2) / sqrt(pooled * (1 - pooled) * (1.0 / OURS + 1.0 / THEIRS));
    print_message("erase rate: ours %.4f, torchvision %.4f (z = %.2f)\n", p1, p2, z);
    assert_true(fabs(z) < 4.0);
    ks_boxes("erase", ours, n_ours, theirs, n_theirs, CROP, CROP);
    free(ours);
    free(theirs);
}

static void test_names_and_default(void **state)
{
    (void)state;
    for (int m = 0; m < AUG_COUNT; m++) {
        AugMode got;
        assert_int_equal(augment_parse(augment_name((AugMode)m), &got), 0);
        assert_int_equal(got, m);
    }
    AugMode got;
    assert_int_equal(augment_parse("RandomResizedCrop", &got), -1);
    assert_int_equal(augment_default(32, 32), AUG_CIFAR);
    assert_int_equal(augment_default(28, 28), AUG_CIFAR);
    assert_int_equal(augment_default(64, 64), AUG_CIFAR);
    assert_int_equal(augment_default(64, 65), AUG_RRC);
    assert_int_equal(augment_default(256, 256), AUG_RRC);
    assert_int_equal(augment_default(0, 0), AUG_RRC); /* jpeg: sizes vary */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resample_matches_torchvision),
        cmocka_unit_test(test_rrc_boxes),
        cmocka_unit_test(test_paper_boxes),
        cmocka_unit_test(test_cifar),
        cmocka_unit_test(test_none_centre),
        cmocka_unit_test(test_normalise_exact),
        cmocka_unit_test(test_sample_keys),
        cmocka_unit_test(test_erase_matches_rules),
        cmocka_unit_test(test_erase_off),
        cmocka_unit_test(test_erase_pixels),
        cmocka_unit_test(test_erase_statistics),
        cmocka_unit_test(test_erase_torchvision),
        cmocka_unit_test(test_names_and_default),
    };
    return cmocka_run_group_tests_name("augment", tests, group_setup, NULL);
}
