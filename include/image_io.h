/*
 * image_io.h - decode, resize, crop and encode 8-bit images for the dataset
 * prep tool. JPEG goes through TurboJPEG and PNG through libpng; the format is
 * chosen by the file's magic bytes, never by its name, because real image
 * folders hold PNGs named .JPEG. Every decoded image is RGB, (H, W, 3):
 * greyscale is replicated and CMYK JPEGs are converted with Adobe's inverted
 * convention as Pillow does. Used by prep_imagenet and prep_inspect (verify).
 * Local, never collective; thread-compatible with one ImageCodec per thread.
 */
#ifndef RESNET_IMAGE_IO_H
#define RESNET_IMAGE_IO_H

#include <stddef.h>
#include <stdint.h>

/* An interleaved 8-bit image, (H, W, C); px holds cap bytes and is reused. */
typedef struct {
    int w, h, c;
    uint8_t *px;
    size_t cap;
} Image;

/* Largest image handled, decoded or resized: 2^28 pixels (768 MiB of RGB),
 * a guard against decompression bombs and absurd aspect ratios. */
#define IMAGE_MAX_PIXELS ((size_t)1 << 28)

/* Codec handles created once and reused for every image. */
typedef struct ImageCodec ImageCodec;

ImageCodec *image_codec_new(void);
void image_codec_free(ImageCodec *codec);

/* Makes img w x h x c, growing its buffer if needed (contents undefined). */
void image_reserve(Image *img, int w, int h, int c);
void image_free(Image *img);

/* Decodes a JPEG or PNG held in buf into RGB. For JPEG, TurboJPEG's scaled
 * decode is used with the smallest scaling factor whose shorter side is still
 * >= min_short (0: full size), so that the later resize only ever shrinks a
 * little. Returns 0, or -1 with a one-line reason in why (not-an-image,
 * truncated, corrupt, too large). */
int image_decode(ImageCodec *codec, const uint8_t *buf, size_t size, int min_short,
                 Image *out, char *why, size_t why_len);

/* Output size that makes the shorter side `size` and keeps the aspect ratio,
 * truncating the longer side as torchvision's Resize(int) does (clamped to
 * INT_MAX for absurd ratios; callers compare with IMAGE_MAX_PIXELS). */
void image_resized_dims(int w, int h, int size, int *out_w, int *out_h);

/* Resamples src to out_w x out_h with a triangle (bilinear) filter widened by
 * the downscale factor, i.e. antialiased like Pillow's BILINEAR. */
void image_resize(const Image *src, int out_w, int out_h, Image *dst);

/* Crops the centre w x h region, offsets rounded as torchvision's CenterCrop. */
void image_center_crop(const Image *src, int w, int h, Image *dst);

/* Encodes an RGB image as a baseline JPEG, 4:2:0 chroma, at quality 1..100.
 * On success *out is malloc'd and owned by the caller. Returns 0 or -1. */
int image_encode_jpeg(ImageCodec *codec, const Image *img, int quality, uint8_t **out,
                      size_t *out_size, char *why, size_t why_len);

/* "libjpeg-turbo 2.1.5, libpng 1.6.39" for --version. */
const char *image_library_versions(void);

#endif
