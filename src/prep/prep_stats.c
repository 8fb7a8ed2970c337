/*
 * prep_stats.c - exact mean/std of the training pixels from per-channel
 * value histograms, so the result does not depend on the number of ranks.
 */
#include "prep_stats.h"

#include <math.h>
#include <string.h>

#include "error.h"

void prep_stats_init(PixelStats *stats, int channels)
{
    CHECK(channels >= 1 && channels <= PREP_MAX_CHANNELS, "channels %d", channels);
    memset(stats, 0, sizeof *stats);
    stats->channels = channels;
}

void prep_stats_add(PixelStats *stats, const uint8_t *px, size_t npix)
{
    int c = stats->channels;
    for (size_t i = 0; i < npix; i++)
        for (int ch = 0; ch < c; ch++)
            stats->hist[ch][px[i * c + ch]]++;
}

void prep_stats_reduce(PixelStats *stats, MPI_Comm comm)
{
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, stats->hist, PREP_MAX_CHANNELS * 256, MPI_UINT64_T,
                            MPI_SUM, comm));
}

uint64_t prep_stats_count(const PixelStats *stats)
{
    uint64_t n = 0;
    for (int v = 0; v < 256; v++)
        n += stats->hist[0][v];
    return n;
}

void prep_stats_mean_std(const PixelStats *stats, double *mean, double *std)
{
    for (int ch = 0; ch < stats->channels; ch++) {
        uint64_t n = 0, sum = 0;
        unsigned __int128 sumsq = 0;
        for (uint64_t v = 0; v < 256; v++) {
            uint64_t k = stats->hist[ch][v];
            n += k;
            sum += v * k;
            sumsq += (unsigned __int128)(v * v) * k;
        }
        if (n == 0) {
            mean[ch] = std[ch] = 0.0;
            continue;
        }
        /* n^2 var = n sum x^2 - (sum x)^2, exact in 128 bits, never negative. */
        unsigned __int128 num = (unsigned __int128)n * sumsq - (unsigned __int128)sum * sum;
        mean[ch] = (double)sum / (double)n / 255.0;
        std[ch] = sqrt((double)num) / (double)n / 255.0;
    }
}
