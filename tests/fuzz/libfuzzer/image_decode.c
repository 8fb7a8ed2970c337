/*
 * libFuzzer harness for the JPEG/PNG decoder of resnet_prep (image_io.c):
 * decode at a scale chosen by the first byte, then resize and centre-crop
 * as prep does. Built and run by `make fuzz-image` (clang's libFuzzer).
 * Decoding the same codec over and over also checks that no error state
 * from one image leaks into the next.
 */
#include <stddef.h>
#include <stdint.h>

#include "image_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ImageCodec *codec;
    if (!codec)
        codec = image_codec_new();
    if (size < 1)
        return 0;
    static const int shorts[4] = {0, 1, 16, 64};
    int min_short = shorts[data[0] & 3];
    Image img = {0}, small = {0}, crop = {0};
    char why[256];
    if (image_decode(codec, data + 1, size - 1, min_short, &img, why, sizeof why) == 0) {
        int w, h;
        image_resized_dims(img.w, img.h, 8, &w, &h);
        if ((size_t)w * (size_t)h <= IMAGE_MAX_PIXELS) {
            image_resize(&img, w, h, &small);
            image_center_crop(&small, 8, 8, &crop);
        }
    }
    image_free(&img);
    image_free(&small);
    image_free(&crop);
    return 0;
}
