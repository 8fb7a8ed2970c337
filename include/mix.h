/*
 * mix.h - mixup and cutmix of a training batch, as torchvision's reference
 * recipe applies them (docs/training.md, "Mixup and CutMix"). Each optimizer
 * step draws one mode and one lambda from a stream keyed by (seed, global
 * step), so every rank, any rank count and a resumed run make the same
 * choice. Sample i of a rank's batch is mixed with sample i ^ 1 (pairs
 * (0,1), (2,3), ...), so the local batch must be even and a pair never spans
 * two ranks. Local.
 */
#ifndef RESNET_MIX_H
#define RESNET_MIX_H

#include <stdint.h>

#include "rng.h"

typedef enum { MIX_NONE, MIX_MIXUP, MIX_CUTMIX } MixMode;

/* One step's choice. */
typedef struct {
    MixMode mode;
    double lam;         /* the Beta(alpha, alpha) draw */
    int x1, y1, x2, y2; /* cutmix: the box [x1, x2) x [y1, y2) taken from the partner */
    double own_weight;  /* weight of each sample's own label: mixup lam; cutmix
                         * 1 - box area / image area; MIX_NONE 1 */
} MixChoice;

/* Gamma(shape, 1) by Marsaglia and Tsang (shape < 1: boosted by U^(1/shape)),
 * returned as its logarithm so that small shapes do not underflow. */
double mix_log_gamma_draw(Rng *r, double shape);
/* Beta(a, b) from two Gamma draws. a, b > 0. */
double mix_beta(Rng *r, double a, double b);

/* The choice of global step `step` for height x width images: mixup or cutmix
 * with probability 1/2 each when both alphas are above 0, else the one above
 * 0; MIX_NONE when both are 0. */
MixChoice mix_choose(double mixup_alpha, double cutmix_alpha, uint64_t seed, int64_t step,
                     int height, int width);
/* The cutmix box of a centre (cx, cy) and lam, clamped to the image. */
void mix_cutmix_box(MixChoice *c, int cx, int cy, int height, int width);

/* The sample that sample i is mixed with. */
int mix_partner(int i);
/* Mixes x (n, channels, height, width), n even, in place. */
void mix_apply(const MixChoice *c, float *x, int n, int channels, int height, int width);
/* Each sample's partner label and the partner's weight in its target
 * (1 - own_weight). */
void mix_targets(const MixChoice *c, const int32_t *labels, int n, int32_t *partner_labels,
                 float *partner_weights);

#endif
