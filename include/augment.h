/*
 * augment.h - training-time augmentation of one stored image into a
 * normalised float (C, crop, crop) tensor, as torchvision's transforms
 * followed by ToTensor and Normalize compute it (`--aug`):
 *
 *   rrc    RandomResizedCrop(crop, scale=(0.08, 1), ratio=(3/4, 4/3)) with
 *          torchvision's rules (10 attempts with the area uniform in scale
 *          and the aspect ratio log-uniform in ratio, then a centre crop with
 *          the ratio clamped), antialiased bilinear resize, then
 *          RandomHorizontalFlip(0.5). The ImageNet default.
 *   paper  He et al. 2015's scale augmentation: Resize(S) with the shorter
 *          side S uniform in [256, 480] x crop / 224 (rounded), a random
 *          crop x crop window, flip.
 *   cifar  RandomCrop(crop, padding=4) (zero pixels around the image), flip.
 *   none   CenterCrop(crop): no randomness. Validation and test always use
 *          this: the centre crop of the stored image (the loader's evaluation
 *          mode; resnet_prep stores ImageNet with the shorter side at the
 *          prep size, e.g. 256, so this is torchvision's Resize(256) +
 *          CenterCrop(224)). Like torchvision's CenterCrop, an image smaller
 *          than the crop is padded with zero pixels.
 *
 * Resampling convention (rrc, paper): pixel centres sit at +0.5 (PyTorch's
 * align_corners=False); each output pixel is a triangle-filter average of the
 * source pixels around its centre, the filter widened by the shrink factor
 * when shrinking (so shrinking by k averages over about 2k source pixels:
 * antialiased, never aliasing), weights renormalised at the image edges. This
 * is Pillow's BILINEAR and torchvision's antialias=True; the result is
 * rounded to 8 bits (half to even) before normalising, as an 8-bit image
 * would be.
 *
 * Random erasing (`--random-erase P`, with any mode) is torchvision's
 * RandomErasing(p=P, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0) placed
 * after Normalize: with probability P a rectangle of the output, in all
 * channels, is set to 0, the dataset mean once normalised.
 *
 * Randomness: each sample draws from its own stream augment_rng(seed, epoch,
 * position) (position = the sample's slot in the epoch, see sampler.h), so
 * the augmentation of a sample is independent of the rank count and of which
 * thread computes it. The erasing draws come after the crop and flip draws.
 *
 * Local; thread-compatible with one AugScratch per thread.
 */
#ifndef RESNET_AUGMENT_H
#define RESNET_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"

typedef enum { AUG_NONE, AUG_RRC, AUG_PAPER, AUG_CIFAR, AUG_COUNT } AugMode;

#define AUG_RRC_SCALE_MIN 0.08
#define AUG_RRC_SCALE_MAX 1.0
#define AUG_RRC_RATIO_MIN (3.0 / 4.0)
#define AUG_RRC_RATIO_MAX (4.0 / 3.0)
#define AUG_RRC_ATTEMPTS 10
#define AUG_PAPER_SHORT_MIN 256 /* at crop 224; scaled by crop / 224 */
#define AUG_PAPER_SHORT_MAX 480
#define AUG_CIFAR_PAD 4
#define AUG_ERASE_SCALE_MIN 0.02
#define AUG_ERASE_SCALE_MAX 0.33
#define AUG_ERASE_RATIO_MIN 0.3
#define AUG_ERASE_RATIO_MAX 3.3
#define AUG_ERASE_ATTEMPTS 10
/* augment_default picks cifar for stored images at most this many pixels. */
#define AUG_SMALL_IMAGE 64

/* "none", "rrc", "paper", "cifar". */
const char *augment_name(AugMode mode);
/* 0 and *mode set, or -1 for any other name. */
int augment_parse(const char *name, AugMode *mode);
/* The default for stored images of height x width: cifar when both are at
 * most AUG_SMALL_IMAGE, else rrc (also for JPEG splits, whose size varies:
 * pass 0 x 0). */
AugMode augment_default(int height, int width);

/* Which part of the stored image becomes the output, and whether it is
 * mirrored. */
typedef struct {
    int resample;          /* 0: copy; 1: resample the box */
    int top, left;         /* copy: the crop x crop window's corner; it may
                            * stick out of the image (padding): those pixels are 0.
                            * rrc: the box's corner; paper: the crop's corner in
                            * the resized image */
    double x0, y0, x1, y1; /* resample: the box's edges in stored pixels
                            * (integers for rrc: left, top, left + w, top + h) */
    int crop_first;        /* resample: 1 crops the box, then resizes it (rrc:
                            * pixels outside are not used); 0 resizes the whole
                            * image, then crops (paper: neighbours count at the edges) */
    int flip;              /* mirror left-right after cropping */
    int erase_top, erase_left; /* random erasing: this erase_h x erase_w */
    int erase_h, erase_w;  /* rectangle of the output is set to 0; 0 x 0: none */
} AugBox;

/* The stream of the sample at `position` of `epoch`. */
void augment_rng(Rng *r, uint64_t seed, int64_t epoch, int64_t position);

/* Chooses mode's box for a height x width image (both >= 1), drawing from r
 * (AUG_NONE draws nothing). */
void augment_choose(AugMode mode, int crop, int height, int width, Rng *r, AugBox *box);

/* Random erasing of the crop x crop output, called after augment_choose with
 * the same r: with probability p (in [0, 1]) chooses the rectangle with
 * torchvision's rules (up to AUG_ERASE_ATTEMPTS tries; none fitting erases
 * nothing) into box's erase fields. p = 0 draws nothing and leaves box as it
 * is. */
void augment_choose_erase(double p, int crop, Rng *r, AugBox *box);

/* Per-thread buffers, grown on demand; zero-initialise, release with
 * augment_scratch_free. */
typedef struct {
    float *mid;     /* rows x crop x C, the horizontally resampled rows */
    size_t mid_cap;
    int *first;     /* kernel tables of both axes */
    int *count;
    float *weight;
    size_t kernel_cap;
    size_t weight_cap;
} AugScratch;

void augment_scratch_free(AugScratch *s);

/* Applies box to hwc, an interleaved (height, width, channels) uint8 image,
 * writing out (channels, crop, crop) = lut[c][pixel], where lut[c][v] is the
 * normalised value of pixel value v in channel c (Dataset.lut), then 0 in
 * box's erase rectangle. */
void augment_apply(const AugBox *box, const uint8_t *hwc, int height, int width, int channels,
                   int crop, const float (*lut)[256], AugScratch *s, float *out);

/* augment_choose and augment_choose_erase(erase, ...) with augment_rng(seed,
 * epoch, position), then augment_apply. erase = 0: no random erasing. */
void augment_sample(AugMode mode, double erase, int crop, uint64_t seed, int64_t epoch,
                    int64_t position, const uint8_t *hwc, int height, int width, int channels,
                    const float (*lut)[256], AugScratch *s, float *out);

#endif
