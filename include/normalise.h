/*
 * normalise.h - uint8 pixels to the network's float input, as torchvision's
 * ToTensor + Normalize(mean, std) compute it: (pixel / 255 - mean[c]) /
 * std[c] in float32, through a table of the 256 values per channel. Used by
 * the dataset reader (dataset.c) and by resnet_predict, so an image file and
 * the same image stored in a dataset give the same input bits. Local.
 */
#ifndef RESNET_NORMALISE_H
#define RESNET_NORMALISE_H

#include <stdint.h>

#define NORMALISE_MAX_CHANNELS 3

typedef struct {
    int channels; /* 1 (grey) or 3 (RGB) */
    float lut[NORMALISE_MAX_CHANNELS][256]; /* normalised value of each pixel value */
} Normaliser;

/* mean and std in pixel/255 units, one per channel; std > 0. */
void normaliser_init(Normaliser *n, int channels, const double *mean, const double *std);

/* The crop x crop window at (top, left) of an interleaved (H, W, C) image
 * `width` pixels wide into dst (C, crop, crop). */
void normaliser_apply(const Normaliser *n, const uint8_t *hwc, int width, int top, int left,
                      int crop, float *dst);

#endif
