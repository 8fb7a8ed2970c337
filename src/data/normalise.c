/* normalise.c - pixels to network input through a per-channel table. */
#include "normalise.h"

#include <stddef.h>

#include "error.h"

/* The same float32 operations in the same order as torchvision, so the
 * same bits. */
void normaliser_init(Normaliser *n, int channels, const double *mean, const double *std)
{
    CHECK(channels >= 1 && channels <= NORMALISE_MAX_CHANNELS, "%d channels", channels);
    n->channels = channels;
    for (int c = 0; c < channels; c++) {
        float m = (float)mean[c], s = (float)std[c];
        for (int v = 0; v < 256; v++)
            n->lut[c][v] = ((float)v / 255.0f - m) / s;
    }
}

void normaliser_apply(const Normaliser *n, const uint8_t *hwc, int width, int top, int left,
                      int crop, float *dst)
{
    int c_n = n->channels;
    for (int c = 0; c < c_n; c++) {
        const float *lut = n->lut[c];
        for (int y = 0; y < crop; y++) {
            const uint8_t *row = hwc + ((size_t)(top + y) * (size_t)width + (size_t)left) * c_n;
            float *out = dst + ((size_t)c * crop + y) * crop;
            for (int x = 0; x < crop; x++)
                out[x] = lut[row[(size_t)x * c_n + c]];
        }
    }
}
