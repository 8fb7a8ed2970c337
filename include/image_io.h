/*
 * image_io.h - decode, resize, crop and encode 8-bit images for the dataset
 * prep tool. JPEG goes through TurboJPEG and PNG through libpng; the format is
 * chosen by the file's magic bytes, never by its name, because real image
 * folders hold PNGs named .JPEG. Every decoded image is RGB, (H, W, 3):
 * greyscale is replicated and CMYK JPEGs are converted with Adobe's inverted
 * convention as Pillow does. Used by prep_imagenet, prep_verify and the
 * trainer's dataset reader (dataset.c), so every image goes through one decoder.
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

/* Largest image decoded, as width x height declared in the file's header,
 * checked before any pixel memory is allocated: a guard against
 * decompression bombs (a few KB of JPEG that claims 40000 x 40000) and
 * absurd aspect ratios. The default, 64 Mpixel (2^26), fits any real photo;
 * --max-pixels sets it once at start-up, before threads decode. The same
 * limit bounds prep's resized images and the trainer's stored images. */
#define IMAGE_DEFAULT_MAX_PIXELS ((size_t)1 << 26)
void image_set_max_pixels(size_t max_pixels);
size_t image_max_pixels(void);
#define IMAGE_MAX_PIXELS (image_max_pixels())

/* Progressive JPEGs with more scans than this are refused (TurboJPEG's scan
 * limit): each scan revisits the whole image, so thousands of tiny scans
 * cost minutes of CPU for one small file. */
#define IMAGE_MAX_JPEG_SCANS 500

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
 * truncated, corrupt, too large). Every call is independent of the ones
 * before it, also after a failure. */
int image_decode(ImageCodec *codec, const uint8_t *buf, size_t size, int min_short,
                 Image *out, char *why, size_t why_len);

/* image_decode into `channels` channels: 3 (RGB, as image_decode) or 1
 * (grey: a JPEG's luma as libjpeg computes it; CMYK and PNG are converted
 * to RGB first and then to grey with Pillow's "L" weights). */
int image_decode_to(ImageCodec *codec, const uint8_t *buf, size_t size, int min_short,
                    int channels, Image *out, char *why, size_t why_len);

/* 1 when buf starts as a JPEG or PNG file does (magic bytes), else 0. */
int image_is_jpeg_or_png(const uint8_t *buf, size_t size);

/* The width and height a JPEG (its first SOF marker) or PNG (IHDR) header
 * declares, from the first bytes of the file only: 1 with *w, *h set, 0 when
 * buf ends before the header does (read more), -1 when buf is not a JPEG
 * or PNG or its header is malformed. Nothing is decoded. */
int image_peek_size(const uint8_t *buf, size_t size, int *w, int *h);

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
