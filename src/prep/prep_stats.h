/*
 * prep_stats.h - exact per-channel pixel statistics of the training images
 * for the dataset's `mean` and `std` attributes. Each rank counts pixel
 * values in a 256-bin histogram per channel (uint64, so exact and
 * independent of how images are split over ranks); prep_stats_reduce sums
 * the histograms over ranks. Local except prep_stats_reduce (collective).
 */
#ifndef RESNET_PREP_STATS_H
#define RESNET_PREP_STATS_H

#include <stddef.h>
#include <stdint.h>

#include <mpi.h>

#define PREP_MAX_CHANNELS 4

typedef struct {
    int channels;
    uint64_t hist[PREP_MAX_CHANNELS][256];
} PixelStats;

void prep_stats_init(PixelStats *stats, int channels);

/* Adds npix interleaved pixels (npix * channels bytes, HWC order). */
void prep_stats_add(PixelStats *stats, const uint8_t *px, size_t npix);

/* Collective: replaces every rank's histograms by their sum over comm. */
void prep_stats_reduce(PixelStats *stats, MPI_Comm comm);

/* Pixels counted per channel. */
uint64_t prep_stats_count(const PixelStats *stats);

/* Per channel, in pixel/255 units: mean = sum x / n, std = the population
 * standard deviation sqrt(sum x^2 / n - mean^2), both from exact integer
 * sums. All zero when no pixel was counted. */
void prep_stats_mean_std(const PixelStats *stats, double *mean, double *std);

#endif
