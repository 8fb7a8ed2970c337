/* mix.c - mixup and cutmix: the step's draw, the pixels and the targets. */
#include "mix.h"

#include <math.h>
#include <stddef.h>

/* This module's stream key, apart from augmentation's and the sampler's. */
#define MIX_STREAM 0x6d1c5u

/* Marsaglia and Tsang (2000) for shape >= 1: log of the draw. */
static double log_gamma_at_least_one(Rng *r, double shape)
{
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = rng_normal(r), v = 1.0 + c * x;
        if (v <= 0.0)
            continue;
        v = v * v * v;
        double u = 1.0 - rng_uniform(r); /* (0, 1]: log(u) is finite */
        if (u < 1.0 - 0.0331 * x * x * x * x || log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
            return log(d) + log(v);
    }
}

double mix_log_gamma_draw(Rng *r, double shape)
{
    if (shape >= 1.0)
        return log_gamma_at_least_one(r, shape);
    /* Gamma(shape) = Gamma(shape + 1) * U^(1/shape) */
    double g = log_gamma_at_least_one(r, shape + 1.0);
    return g + log(1.0 - rng_uniform(r)) / shape;
}

double mix_beta(Rng *r, double a, double b)
{
    double lx = mix_log_gamma_draw(r, a), ly = mix_log_gamma_draw(r, b);
    /* X / (X + Y) = 1 / (1 + exp(ly - lx)), finite for any magnitudes */
    return 1.0 / (1.0 + exp(ly - lx));
}

static int clamp_int(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

void mix_cutmix_box(MixChoice *c, int cx, int cy, int height, int width)
{
    double half = 0.5 * sqrt(1.0 - c->lam);
    int half_w = (int)(half * width), half_h = (int)(half * height);
    c->x1 = clamp_int(cx - half_w, 0, width);
    c->y1 = clamp_int(cy - half_h, 0, height);
    c->x2 = clamp_int(cx + half_w, 0, width);
    c->y2 = clamp_int(cy + half_h, 0, height);
    double area = (double)(c->x2 - c->x1) * (c->y2 - c->y1);
    c->own_weight = 1.0 - area / ((double)width * height);
}

MixChoice mix_choose(double mixup_alpha, double cutmix_alpha, uint64_t seed, int64_t step,
                     int height, int width)
{
    MixChoice c = {.mode = MIX_NONE, .lam = 1.0, .own_weight = 1.0};
    if (mixup_alpha <= 0 && cutmix_alpha <= 0)
        return c;
    Rng r;
    rng_seed(&r, rng_hash(seed, MIX_STREAM, 0), (uint64_t)step, 0);
    if (mixup_alpha > 0 && cutmix_alpha > 0)
        c.mode = rng_uniform(&r) < 0.5 ? MIX_MIXUP : MIX_CUTMIX;
    else
        c.mode = mixup_alpha > 0 ? MIX_MIXUP : MIX_CUTMIX;
    double alpha = c.mode == MIX_MIXUP ? mixup_alpha : cutmix_alpha;
    c.lam = mix_beta(&r, alpha, alpha);
    c.own_weight = c.lam;
    if (c.mode == MIX_CUTMIX) {
        int cx = (int)rng_below(&r, (uint64_t)width), cy = (int)rng_below(&r, (uint64_t)height);
        mix_cutmix_box(&c, cx, cy, height, width);
    }
    return c;
}

int mix_partner(int i)
{
    return i ^ 1;
}

/* a = lam a + (1 - lam) b and b = lam b + (1 - lam) a, in double. */
static void mixup_pair(float *a, float *b, size_t count, double lam)
{
    for (size_t j = 0; j < count; j++) {
        double va = a[j], vb = b[j];
        a[j] = (float)(lam * va + (1.0 - lam) * vb);
        b[j] = (float)(lam * vb + (1.0 - lam) * va);
    }
}

/* The box's pixels of every channel change places between a and b. */
static void cutmix_pair(const MixChoice *c, float *a, float *b, int channels, int height,
                        int width)
{
    for (int ch = 0; ch < channels; ch++)
        for (int y = c->y1; y < c->y2; y++) {
            size_t row = ((size_t)ch * height + y) * width;
            for (int x = c->x1; x < c->x2; x++) {
                float t = a[row + x];
                a[row + x] = b[row + x];
                b[row + x] = t;
            }
        }
}

void mix_apply(const MixChoice *c, float *x, int n, int channels, int height, int width)
{
    size_t image = (size_t)channels * height * width;
    for (int i = 0; i + 1 < n; i += 2) {
        float *a = x + (size_t)i * image, *b = x + (size_t)mix_partner(i) * image;
        if (c->mode == MIX_MIXUP)
            mixup_pair(a, b, image, c->lam);
        else if (c->mode == MIX_CUTMIX)
            cutmix_pair(c, a, b, channels, height, width);
    }
}

void mix_targets(const MixChoice *c, const int32_t *labels, int n, int32_t *partner_labels,
                 float *partner_weights)
{
    for (int i = 0; i < n; i++) {
        partner_labels[i] = labels[mix_partner(i)];
        partner_weights[i] = (float)(1.0 - c->own_weight);
    }
}
