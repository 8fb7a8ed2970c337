/*
 * augment.c - choosing each sample's crop (torchvision's rules, see
 * augment.h) and producing it: an exact copy of a window for centre and
 * padded crops, a separable antialiased bilinear resample for the resized
 * ones, then mirror and normalisation through the dataset's lookup table,
 * and last the random erasing rectangle.
 */
#include "augment.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* Keeps augmentation streams apart from the sampler's permutation stream. */
#define AUG_STREAM 0xa06a11c5ULL

static const char *g_aug_names[AUG_COUNT] = {"none", "rrc", "paper", "cifar"};

const char *augment_name(AugMode mode)
{
    return mode >= 0 && mode < AUG_COUNT ? g_aug_names[mode] : "?";
}

int augment_parse(const char *name, AugMode *mode)
{
    for (int m = 0; m < AUG_COUNT; m++) {
        if (strcmp(name, g_aug_names[m]) == 0) {
            *mode = (AugMode)m;
            return 0;
        }
    }
    return -1;
}

AugMode augment_default(int height, int width)
{
    int small = height > 0 && width > 0 && height <= AUG_SMALL_IMAGE && width <= AUG_SMALL_IMAGE;
    return small ? AUG_CIFAR : AUG_RRC;
}

void augment_rng(Rng *r, uint64_t seed, int64_t epoch, int64_t position)
{
    rng_seed(r, rng_hash(seed, AUG_STREAM, 0), (uint64_t)epoch, (uint64_t)position);
}

/* ------------------------------------------------------------------ */
/* choosing the box                                                    */

/* torchvision's CenterCrop offset: int(round((size - crop) / 2.0)) with
 * Python's halves-to-even; an image smaller than the crop is first padded by
 * (crop - size) // 2 on the top/left. */
static int centre_offset(int size, int crop)
{
    int diff = size - crop;
    if (diff < 0)
        return -((-diff) / 2);
    int half = diff / 2;
    return (diff % 2 == 1 && half % 2 == 1) ? half + 1 : half;
}

static void box_copy(AugBox *b, int top, int left, int crop)
{
    b->resample = 0;
    b->top = top;
    b->left = left;
    b->x0 = left;
    b->y0 = top;
    b->x1 = left + crop;
    b->y1 = top + crop;
}

/* torchvision.transforms.RandomResizedCrop.get_params: Python's round()
 * rounds halves to even, as nearbyint does. */
static void choose_rrc(int crop, int height, int width, Rng *r, AugBox *b)
{
    double area = (double)height * width;
    double log_lo = log(AUG_RRC_RATIO_MIN), log_hi = log(AUG_RRC_RATIO_MAX);
    int top = -1, left = 0, h = 0, w = 0;
    for (int attempt = 0; attempt < AUG_RRC_ATTEMPTS && top < 0; attempt++) {
        double target = area * (AUG_RRC_SCALE_MIN +
                                (AUG_RRC_SCALE_MAX - AUG_RRC_SCALE_MIN) * rng_uniform(r));
        double ratio = exp(log_lo + (log_hi - log_lo) * rng_uniform(r));
        w = (int)nearbyint(sqrt(target * ratio));
        h = (int)nearbyint(sqrt(target / ratio));
        if (w > 0 && w <= width && h > 0 && h <= height) {
            top = (int)rng_below(r, (uint64_t)(height - h + 1));
            left = (int)rng_below(r, (uint64_t)(width - w + 1));
        }
    }
    if (top < 0) { /* fallback: the centre, the ratio clamped to the range */
        double in_ratio = (double)width / height;
        w = width;
        h = height;
        if (in_ratio < AUG_RRC_RATIO_MIN)
            h = (int)nearbyint(w / AUG_RRC_RATIO_MIN);
        else if (in_ratio > AUG_RRC_RATIO_MAX)
            w = (int)nearbyint(h * AUG_RRC_RATIO_MAX);
        top = (height - h) / 2;
        left = (width - w) / 2;
    }
    if (h == crop && w == crop) {
        box_copy(b, top, left, crop); /* a resample at scale 1 is this copy */
        return;
    }
    b->resample = 1;
    b->crop_first = 1;
    b->top = top;
    b->left = left;
    b->x0 = left;
    b->y0 = top;
    b->x1 = left + w;
    b->y1 = top + h;
}

/* Resize(S) (shorter side S, the longer truncated as torchvision does) then
 * a random crop x crop window: in stored pixels, the window's edges scaled
 * back by the resize factor. */
static void choose_paper(int crop, int height, int width, Rng *r, AugBox *b)
{
    int s_min = (int)nearbyint((double)AUG_PAPER_SHORT_MIN * crop / 224.0);
    int s_max = (int)nearbyint((double)AUG_PAPER_SHORT_MAX * crop / 224.0);
    int s = s_min + (int)rng_below(r, (uint64_t)(s_max - s_min + 1));
    int new_w, new_h;
    if (width <= height) {
        new_w = s;
        new_h = (int)((int64_t)s * height / width);
    } else {
        new_h = s;
        new_w = (int)((int64_t)s * width / height);
    }
    int top = (int)rng_below(r, (uint64_t)(new_h > crop ? new_h - crop + 1 : 1));
    int left = (int)rng_below(r, (uint64_t)(new_w > crop ? new_w - crop + 1 : 1));
    double sx = (double)width / new_w, sy = (double)height / new_h;
    b->resample = 1;
    b->top = top;
    b->left = left;
    b->x0 = left * sx;
    b->x1 = (left + crop) * sx;
    b->y0 = top * sy;
    b->y1 = (top + crop) * sy;
}

/* RandomCrop(crop, padding=4): offsets uniform over the padded image. */
static void choose_cifar(int crop, int height, int width, Rng *r, AugBox *b)
{
    int room_h = height + 2 * AUG_CIFAR_PAD - crop, room_w = width + 2 * AUG_CIFAR_PAD - crop;
    int i = (int)rng_below(r, (uint64_t)(room_h > 0 ? room_h + 1 : 1));
    int j = (int)rng_below(r, (uint64_t)(room_w > 0 ? room_w + 1 : 1));
    box_copy(b, i - AUG_CIFAR_PAD, j - AUG_CIFAR_PAD, crop);
}

void augment_choose(AugMode mode, int crop, int height, int width, Rng *r, AugBox *box)
{
    CHECK(crop >= 1 && height >= 1 && width >= 1, "crop %d of a %dx%d image", crop, height,
          width);
    memset(box, 0, sizeof *box);
    switch (mode) {
    case AUG_RRC: choose_rrc(crop, height, width, r, box); break;
    case AUG_PAPER: choose_paper(crop, height, width, r, box); break;
    case AUG_CIFAR: choose_cifar(crop, height, width, r, box); break;
    case AUG_NONE:
        box_copy(box, centre_offset(height, crop), centre_offset(width, crop), crop);
        return; /* no flip, no draw */
    default: CHECK(0, "augmentation mode %d", (int)mode);
    }
    box->flip = rng_uniform(r) < 0.5;
}

/* torchvision.transforms.RandomErasing.get_params on a crop x crop tensor:
 * the area uniform in scale, the ratio h / w log-uniform in ratio, h and w
 * rounded halves to even, accepted when strictly smaller than the image. */
void augment_choose_erase(double p, int crop, Rng *r, AugBox *box)
{
    CHECK(p >= 0 && p <= 1 && crop >= 1, "erase probability %g, crop %d", p, crop);
    if (p == 0 || rng_uniform(r) >= p)
        return;
    double area = (double)crop * crop;
    double log_lo = log(AUG_ERASE_RATIO_MIN), log_hi = log(AUG_ERASE_RATIO_MAX);
    for (int attempt = 0; attempt < AUG_ERASE_ATTEMPTS; attempt++) {
        double target = area * (AUG_ERASE_SCALE_MIN +
                                (AUG_ERASE_SCALE_MAX - AUG_ERASE_SCALE_MIN) * rng_uniform(r));
        double aspect = exp(log_lo + (log_hi - log_lo) * rng_uniform(r));
        int h = (int)nearbyint(sqrt(target * aspect));
        int w = (int)nearbyint(sqrt(target / aspect));
        if (h < crop && w < crop) {
            box->erase_top = (int)rng_below(r, (uint64_t)(crop - h + 1));
            box->erase_left = (int)rng_below(r, (uint64_t)(crop - w + 1));
            box->erase_h = h;
            box->erase_w = w;
            return;
        }
    }
}

/* ------------------------------------------------------------------ */
/* producing the output                                                */

void augment_scratch_free(AugScratch *s)
{
    free(s->mid);
    free(s->first);
    free(s->count);
    free(s->weight);
    memset(s, 0, sizeof *s);
}

static float pixel_round(float v)
{
    return v <= 0.f ? 0.f : v >= 255.f ? 255.f : nearbyintf(v);
}

/* Copy path: out (C, crop, crop) from the window at (top, left), pixels
 * outside the image read as 0. */
static void apply_copy(const AugBox *b, const uint8_t *hwc, int height, int width, int channels,
                       int crop, const float (*lut)[256], float *out)
{
    for (int c = 0; c < channels; c++) {
        const float *l = lut[c];
        for (int y = 0; y < crop; y++) {
            float *dst = out + ((size_t)c * crop + y) * crop;
            int sy = b->top + y;
            if (sy < 0 || sy >= height) {
                for (int x = 0; x < crop; x++)
                    dst[x] = l[0];
                continue;
            }
            const uint8_t *row = hwc + (size_t)sy * width * channels + c;
            for (int x = 0; x < crop; x++) {
                int sx = b->left + (b->flip ? crop - 1 - x : x);
                dst[x] = sx >= 0 && sx < width ? l[row[(size_t)sx * channels]] : l[0];
            }
        }
    }
}

static double triangle(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* One axis of the resample: for each of the `out` outputs, the first source
 * index, how many follow and their weights (row of `taps`). Source pixels
 * outside [lo, hi) are never used (the weights are renormalised), which is
 * what resizing the [lo, hi) crop alone computes. Pillow's
 * precompute_coeffs and PyTorch's antialiased upsample build the same
 * table. Returns taps. */
static int kernel_build(double x0, double x1, int lo, int hi, int out, int *first, int *count,
                        float *weight, int taps_cap)
{
    double scale = (x1 - x0) / out;
    double fscale = scale > 1.0 ? scale : 1.0;
    double support = fscale; /* the triangle's support, 1, widened */
    int taps = (int)ceil(support) * 2 + 1;
    CHECK(taps <= taps_cap, "kernel of %d taps", taps);
    for (int i = 0; i < out; i++) {
        double centre = (x0 - lo) + (i + 0.5) * scale; /* relative to lo */
        int xmin = (int)(centre - support + 0.5), xmax = (int)(centre + support + 0.5);
        xmin = xmin < 0 ? 0 : xmin;
        xmax = xmax > hi - lo ? hi - lo : xmax;
        if (xmax - xmin > taps)
            xmax = xmin + taps;
        if (xmax <= xmin) { /* cannot happen for boxes inside [lo, hi]; stay safe */
            xmin = xmin >= hi - lo ? hi - lo - 1 : xmin;
            xmax = xmin + 1;
        }
        float *w = weight + (size_t)i * taps;
        double total = 0.0;
        for (int x = xmin; x < xmax; x++)
            total += triangle((x - centre + 0.5) / fscale);
        for (int x = xmin; x < xmax; x++) {
            double v = triangle((x - centre + 0.5) / fscale);
            w[x - xmin] = (float)(total > 0.0 ? v / total : 0.0);
        }
        first[i] = lo + xmin;
        count[i] = xmax - xmin;
    }
    return taps;
}

static void scratch_reserve(AugScratch *s, int crop, int taps_cap, size_t mid_floats)
{
    size_t need = 2 * (size_t)crop;
    if (s->kernel_cap < need) {
        s->first = xrealloc(s->first, need * sizeof *s->first);
        s->count = xrealloc(s->count, need * sizeof *s->count);
        s->kernel_cap = need;
    }
    size_t wneed = 2 * (size_t)crop * (size_t)taps_cap;
    if (s->weight_cap < wneed) {
        s->weight = xrealloc(s->weight, wneed * sizeof *s->weight);
        s->weight_cap = wneed;
    }
    if (s->mid_cap < mid_floats) {
        s->mid = xrealloc(s->mid, mid_floats * sizeof *s->mid);
        s->mid_cap = mid_floats;
    }
}

/* Horizontal pass: rows [y_lo, y_hi) of the image into mid (rows, crop, C). */
static void resample_rows(const uint8_t *hwc, int width, int channels, int y_lo, int y_hi,
                          int crop, const int *first, const int *count, const float *weight,
                          int taps, float *mid)
{
    for (int y = y_lo; y < y_hi; y++) {
        const uint8_t *row = hwc + (size_t)y * width * channels;
        float *dst = mid + (size_t)(y - y_lo) * crop * channels;
        for (int x = 0; x < crop; x++) {
            const float *w = weight + (size_t)x * taps;
            const uint8_t *p = row + (size_t)first[x] * channels;
            int n = count[x];
            if (channels == 3) {
                float r = 0.f, g = 0.f, bl = 0.f;
                for (int t = 0; t < n; t++, p += 3) {
                    r += w[t] * p[0];
                    g += w[t] * p[1];
                    bl += w[t] * p[2];
                }
                dst[3 * x] = r;
                dst[3 * x + 1] = g;
                dst[3 * x + 2] = bl;
            } else {
                for (int c = 0; c < channels; c++) {
                    float acc = 0.f;
                    for (int t = 0; t < n; t++)
                        acc += w[t] * p[(size_t)t * channels + c];
                    dst[x * channels + c] = acc;
                }
            }
        }
    }
}

/* Vertical pass, rounding, mirror and normalisation into out (C, crop, crop). */
static void resample_cols(const float *mid, int y_lo, int channels, int crop, const int *first,
                          const int *count, const float *weight, int taps, int flip,
                          const float (*lut)[256], float *acc, float *out)
{
    size_t stride = (size_t)crop * channels;
    for (int y = 0; y < crop; y++) {
        const float *w = weight + (size_t)y * taps;
        const float *src = mid + (size_t)(first[y] - y_lo) * stride;
        for (size_t i = 0; i < stride; i++)
            acc[i] = w[0] * src[i];
        for (int t = 1; t < count[y]; t++) {
            const float *s = src + (size_t)t * stride;
            for (size_t i = 0; i < stride; i++)
                acc[i] += w[t] * s[i];
        }
        for (size_t i = 0; i < stride; i++)
            acc[i] = pixel_round(acc[i]);
        for (int c = 0; c < channels; c++) {
            const float *l = lut[c];
            float *dst = out + ((size_t)c * crop + y) * crop;
            for (int x = 0; x < crop; x++) {
                int sx = flip ? crop - 1 - x : x;
                dst[x] = l[(int)acc[(size_t)sx * channels + c]];
            }
        }
    }
}

static void apply_resample(const AugBox *b, const uint8_t *hwc, int height, int width,
                           int channels, int crop, const float (*lut)[256], AugScratch *s,
                           float *out)
{
    int xlo = b->crop_first ? (int)b->x0 : 0, xhi = b->crop_first ? (int)b->x1 : width;
    int ylo = b->crop_first ? (int)b->y0 : 0, yhi = b->crop_first ? (int)b->y1 : height;
    double sx = (b->x1 - b->x0) / crop, sy = (b->y1 - b->y0) / crop;
    int taps_cap = (int)ceil(sx > sy ? sx : sy);
    taps_cap = (taps_cap < 1 ? 1 : taps_cap) * 2 + 1;
    scratch_reserve(s, crop, taps_cap, 0);
    int *fx = s->first, *fy = s->first + crop, *cx = s->count, *cy = s->count + crop;
    float *wx = s->weight, *wy = s->weight + (size_t)crop * taps_cap;
    int tx = kernel_build(b->x0, b->x1, xlo, xhi, crop, fx, cx, wx, taps_cap);
    int ty = kernel_build(b->y0, b->y1, ylo, yhi, crop, fy, cy, wy, taps_cap);
    int y_first = fy[0], y_end = fy[crop - 1] + cy[crop - 1];
    for (int y = 0; y < crop; y++) {
        y_first = fy[y] < y_first ? fy[y] : y_first;
        y_end = fy[y] + cy[y] > y_end ? fy[y] + cy[y] : y_end;
    }
    size_t stride = (size_t)crop * channels;
    scratch_reserve(s, crop, taps_cap, (size_t)(y_end - y_first + 1) * stride);
    float *acc = s->mid + (size_t)(y_end - y_first) * stride; /* the spare row */
    resample_rows(hwc, width, channels, y_first, y_end, crop, fx, cx, wx, tx, s->mid);
    resample_cols(s->mid, y_first, channels, crop, fy, cy, wy, ty, b->flip, lut, acc, out);
}

/* Value 0 after normalisation (the dataset mean) in the erase rectangle of
 * every channel of out (C, crop, crop). */
static void apply_erase(const AugBox *b, int channels, int crop, float *out)
{
    for (int c = 0; c < channels; c++)
        for (int y = b->erase_top; y < b->erase_top + b->erase_h; y++) {
            float *row = out + ((size_t)c * crop + y) * crop + b->erase_left;
            for (int x = 0; x < b->erase_w; x++)
                row[x] = 0.f;
        }
}

void augment_apply(const AugBox *box, const uint8_t *hwc, int height, int width, int channels,
                   int crop, const float (*lut)[256], AugScratch *s, float *out)
{
    if (box->resample)
        apply_resample(box, hwc, height, width, channels, crop, lut, s, out);
    else
        apply_copy(box, hwc, height, width, channels, crop, lut, out);
    apply_erase(box, channels, crop, out);
}

void augment_sample(AugMode mode, double erase, int crop, uint64_t seed, int64_t epoch,
                    int64_t position, const uint8_t *hwc, int height, int width, int channels,
                    const float (*lut)[256], AugScratch *s, float *out)
{
    Rng r;
    AugBox box;
    augment_rng(&r, seed, epoch, position);
    augment_choose(mode, crop, height, width, &r, &box);
    augment_choose_erase(erase, crop, &r, &box);
    augment_apply(&box, hwc, height, width, channels, crop, lut, s, out);
}
