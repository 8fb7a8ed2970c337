/*
 * image_io.c - JPEG/PNG decode to RGB, antialiased resize, centre crop and
 * JPEG encode for the dataset prep tool and the trainer's dataset reader.
 * The codecs are libraries (TurboJPEG, libpng); only the resampling filter
 * and the header peek are ours.
 */
#include "image_io.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>
#include <turbojpeg.h>
#if __has_include(<jconfig.h>)
#include <jconfig.h>
#endif

#include "error.h"

struct ImageCodec {
    tjhandle dec;
    tjhandle enc;
    uint8_t *scratch; /* CMYK or RGBA pixels before conversion to RGB */
    size_t scratch_cap;
};

static size_t g_max_pixels = IMAGE_DEFAULT_MAX_PIXELS;

void image_set_max_pixels(size_t max_pixels)
{
    CHECK(max_pixels >= 1, "pixel limit %zu", max_pixels);
    g_max_pixels = max_pixels;
}

size_t image_max_pixels(void)
{
    return g_max_pixels;
}

static tjhandle decoder_new(void)
{
    tjhandle dec = tjInitDecompress();
    CHECK(dec != NULL, "tjInitDecompress: %s", tjGetErrorStr2(NULL));
    return dec;
}

/* TurboJPEG 2.1 leaves a decompressor whose tjDecompressHeader3 failed in
 * the middle of reading a header (it returns from libjpeg's error without
 * aborting it), so the next image's markers would be read as the rest of the
 * broken one ("missing SOS marker" for a good file). A fresh handle after
 * any failure makes every decode independent of the one before. */
static void decoder_reset(ImageCodec *codec)
{
    tjDestroy(codec->dec);
    codec->dec = decoder_new();
}

ImageCodec *image_codec_new(void)
{
    ImageCodec *codec = xcalloc(1, sizeof *codec);
    codec->dec = decoder_new();
    codec->enc = tjInitCompress();
    CHECK(codec->enc != NULL, "tjInitCompress: %s", tjGetErrorStr2(NULL));
    return codec;
}

void image_codec_free(ImageCodec *codec)
{
    if (!codec)
        return;
    if (codec->enc)
        tjDestroy(codec->enc);
    if (codec->dec)
        tjDestroy(codec->dec);
    free(codec->scratch);
    free(codec);
}

void image_reserve(Image *img, int w, int h, int c)
{
    size_t need = (size_t)w * (size_t)h * (size_t)c;
    if (need > img->cap) {
        free(img->px);
        img->px = xmalloc(need);
        img->cap = need;
    }
    img->w = w;
    img->h = h;
    img->c = c;
}

void image_free(Image *img)
{
    free(img->px);
    memset(img, 0, sizeof *img);
}

static uint8_t *codec_scratch(ImageCodec *codec, size_t bytes)
{
    if (bytes > codec->scratch_cap) {
        free(codec->scratch);
        codec->scratch = xmalloc(bytes);
        codec->scratch_cap = bytes;
    }
    return codec->scratch;
}

/* The smallest IDCT scaling (<= 1) that keeps the shorter side >= min_short. */
static tjscalingfactor jpeg_pick_scale(int w, int h, int min_short)
{
    tjscalingfactor best = {1, 1};
    int n = 0;
    tjscalingfactor *sf = tjGetScalingFactors(&n);
    int shorter = w < h ? w : h;
    if (!sf || min_short <= 0)
        return best;
    for (int i = 0; i < n; i++) {
        if (sf[i].num > sf[i].denom)
            continue;
        int s = TJSCALED(shorter, sf[i]);
        if (s >= min_short && s < TJSCALED(shorter, best))
            best = sf[i];
    }
    return best;
}

/* Adobe CMYK JPEGs store inverted inks; Pillow reads them as "CMYK;I" and
 * converts with R = (255-C)(255-K)/255, which on the stored values is C*K/255. */
static void cmyk_to_rgb(const uint8_t *cmyk, size_t npix, uint8_t *rgb)
{
    for (size_t i = 0; i < npix; i++) {
        unsigned k = cmyk[4 * i + 3];
        for (int ch = 0; ch < 3; ch++)
            rgb[3 * i + ch] = (uint8_t)((cmyk[4 * i + ch] * k + 127) / 255);
    }
}

/* A decode "warning" from libjpeg still yields a full image; only running out
 * of data means pixels are missing (Pillow rejects those files too). */
static int jpeg_warning_is_fatal(tjhandle dec)
{
    if (tjGetErrorCode(dec) != TJERR_WARNING)
        return 1;
    return strstr(tjGetErrorStr2(dec), "Premature end of JPEG file") != NULL;
}

/* Pillow's RGB -> L: L = R * 299/1000 + G * 587/1000 + B * 114/1000,
 * in fixed point and rounded. */
static void rgb_to_grey(const uint8_t *rgb, size_t npix, uint8_t *grey)
{
    for (size_t i = 0; i < npix; i++)
        grey[i] = (uint8_t)((rgb[3 * i] * 19595u + rgb[3 * i + 1] * 38470u +
                             rgb[3 * i + 2] * 7471u + 0x8000u) >> 16);
}

/* Declared w x h against the pixel limit, before anything is allocated. */
static int too_large(const char *format, int64_t w, int64_t h, char *why, size_t why_len)
{
    if ((uint64_t)w * (uint64_t)h <= g_max_pixels)
        return 0;
    snprintf(why, why_len, "%s too large (%lld x %lld, more than the limit of %zu pixels; "
             "see --max-pixels)", format, (long long)w, (long long)h, g_max_pixels);
    return 1;
}

static int jpeg_failed(ImageCodec *codec, char *why, size_t why_len)
{
    snprintf(why, why_len, "truncated or corrupt JPEG (%s)", tjGetErrorStr2(codec->dec));
    decoder_reset(codec);
    return -1;
}

static int decode_jpeg(ImageCodec *codec, const uint8_t *buf, size_t size, int min_short,
                       int channels, Image *out, char *why, size_t why_len)
{
    int w = 0, h = 0, subsamp = 0, cs = 0; /* not written on some failures */
    /* A header cut short can "succeed" with a warning and no size. */
    if (tjDecompressHeader3(codec->dec, buf, (unsigned long)size, &w, &h, &subsamp, &cs) != 0 ||
        w < 1 || h < 1)
        return jpeg_failed(codec, why, why_len);
    if (too_large("JPEG", w, h, why, why_len))
        return -1;
    tjscalingfactor sf = jpeg_pick_scale(w, h, min_short);
    int sw = TJSCALED(w, sf), sh = TJSCALED(h, sf);
    size_t npix = (size_t)sw * (size_t)sh;
    image_reserve(out, sw, sh, channels);
    /* CMYK/YCCK JPEGs decode only to CMYK pixels (TurboJPEG has no CMS). */
    int cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
    int pf = cmyk ? TJPF_CMYK : channels == 1 ? TJPF_GRAY : TJPF_RGB;
    uint8_t *dst = cmyk ? codec_scratch(codec, npix * (channels == 1 ? 7 : 4)) : out->px;
    int flags = 0;
#ifdef TJFLAG_LIMITSCANS
    flags |= TJFLAG_LIMITSCANS; /* at most IMAGE_MAX_JPEG_SCANS (TurboJPEG's 500) */
#endif
    int rc = tjDecompress2(codec->dec, buf, (unsigned long)size, dst, sw, 0, sh, pf, flags);
    if (rc != 0 && jpeg_warning_is_fatal(codec->dec))
        return jpeg_failed(codec, why, why_len);
    if (rc != 0)
        decoder_reset(codec);
    if (cmyk && channels == 3)
        cmyk_to_rgb(dst, npix, out->px);
    if (cmyk && channels == 1) {
        cmyk_to_rgb(dst, npix, dst + npix * 4);
        rgb_to_grey(dst + npix * 4, npix, out->px);
    }
    return 0;
}

static int decode_png(ImageCodec *codec, const uint8_t *buf, size_t size, int channels,
                      Image *out, char *why, size_t why_len)
{
    png_image png;
    memset(&png, 0, sizeof png);
    png.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&png, buf, size)) {
        snprintf(why, why_len, "corrupt PNG (%s)", png.message);
        png_image_free(&png);
        return -1;
    }
    if (too_large("PNG", png.width, png.height, why, why_len)) {
        png_image_free(&png);
        return -1;
    }
    /* Read with alpha and drop it, as Pillow's convert("RGB") does, rather
     * than letting libpng composite onto a background. */
    png.format = PNG_FORMAT_RGBA;
    size_t npix = (size_t)png.width * png.height;
    uint8_t *rgba = codec_scratch(codec, npix * 4);
    if (!png_image_finish_read(&png, NULL, rgba, 0, NULL)) {
        snprintf(why, why_len, "truncated or corrupt PNG (%s)", png.message);
        png_image_free(&png);
        return -1;
    }
    image_reserve(out, (int)png.width, (int)png.height, channels);
    for (size_t i = 0; i < npix; i++)
        memmove(rgba + 3 * i, rgba + 4 * i, 3); /* in place: destination trails */
    if (channels == 1)
        rgb_to_grey(rgba, npix, out->px);
    else
        memcpy(out->px, rgba, npix * 3);
    png_image_free(&png);
    return 0;
}

static const uint8_t g_png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static int is_jpeg(const uint8_t *buf, size_t size)
{
    return size >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff;
}

static int is_png(const uint8_t *buf, size_t size)
{
    return size >= 8 && memcmp(buf, g_png_magic, 8) == 0;
}

int image_is_jpeg_or_png(const uint8_t *buf, size_t size)
{
    return is_jpeg(buf, size) || is_png(buf, size);
}

int image_decode(ImageCodec *codec, const uint8_t *buf, size_t size, int min_short,
                 Image *out, char *why, size_t why_len)
{
    return image_decode_to(codec, buf, size, min_short, 3, out, why, why_len);
}

int image_decode_to(ImageCodec *codec, const uint8_t *buf, size_t size, int min_short,
                    int channels, Image *out, char *why, size_t why_len)
{
    CHECK(channels == 1 || channels == 3, "decode to %d channels", channels);
    if (is_jpeg(buf, size))
        return decode_jpeg(codec, buf, size, min_short, channels, out, why, why_len);
    if (is_png(buf, size))
        return decode_png(codec, buf, size, channels, out, why, why_len);
    if (size == 0)
        snprintf(why, why_len, "empty file");
    else
        snprintf(why, why_len, "not a JPEG or PNG image (starts with %02x %02x %02x %02x)",
                 buf[0], size > 1 ? buf[1] : 0, size > 2 ? buf[2] : 0, size > 3 ? buf[3] : 0);
    return -1;
}

static int read_be16(const uint8_t *p)
{
    return (p[0] << 8) | p[1];
}

/* SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share
 * the range but are not frames. */
static int is_sof(int marker)
{
    return marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 &&
           marker != 0xcc;
}

/* Walks the marker segments up to the first SOF: (FF, marker, 16-bit length
 * counting itself, payload); fill bytes (FF FF) and the standalone markers
 * carry no length. A scan or the end before any frame is malformed. */
static int peek_jpeg(const uint8_t *buf, size_t size, int *w, int *h)
{
    size_t pos = 2;
    for (;;) {
        if (pos + 4 > size)
            return 0;
        if (buf[pos] != 0xff)
            return -1;
        int marker = buf[pos + 1];
        if (marker == 0xff) {
            pos++;
            continue;
        }
        if (marker == 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
            pos += 2;
            continue;
        }
        if (marker == 0xd9 || marker == 0xda)
            return -1;
        int len = read_be16(buf + pos + 2);
        if (len < 2)
            return -1;
        if (is_sof(marker)) {
            if (pos + 9 > size)
                return 0;
            *h = read_be16(buf + pos + 5);
            *w = read_be16(buf + pos + 7);
            return 1;
        }
        pos += 2 + (size_t)len;
    }
}

int image_peek_size(const uint8_t *buf, size_t size, int *w, int *h)
{
    static const uint8_t jpeg_magic[3] = {0xff, 0xd8, 0xff};
    if (size < 3 && memcmp(buf, jpeg_magic, size) == 0)
        return 0;
    if (is_jpeg(buf, size))
        return peek_jpeg(buf, size, w, h);
    if (size < 8)
        return memcmp(buf, g_png_magic, size) == 0 ? 0 : -1;
    if (!is_png(buf, size))
        return -1;
    /* Signature, then IHDR first: length (4), "IHDR", width, height (BE32). */
    if (size < 24)
        return 0;
    if (memcmp(buf + 12, "IHDR", 4) != 0)
        return -1;
    uint32_t pw = ((uint32_t)buf[16] << 24) | ((uint32_t)buf[17] << 16) |
                  ((uint32_t)buf[18] << 8) | buf[19];
    uint32_t ph = ((uint32_t)buf[20] << 24) | ((uint32_t)buf[21] << 16) |
                  ((uint32_t)buf[22] << 8) | buf[23];
    if (pw > INT_MAX || ph > INT_MAX)
        return -1;
    *w = (int)pw;
    *h = (int)ph;
    return 1;
}

void image_resized_dims(int w, int h, int size, int *out_w, int *out_h)
{
    int64_t longer = w <= h ? (int64_t)size * h / w : (int64_t)size * w / h;
    int clamped = longer > INT_MAX ? INT_MAX : (int)longer;
    *out_w = w <= h ? size : clamped;
    *out_h = w <= h ? clamped : size;
}

/* Per output position: the first input index, how many inputs contribute
 * and their normalised weights. */
typedef struct {
    int taps;      /* row length of weight */
    int *first;
    int *count;
    float *weight; /* (out, taps) */
} Kernel;

static double triangle(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Pillow's resampling coefficients: the filter is stretched by the
 * downscale factor so every input pixel contributes (antialiasing). */
static void kernel_build(int in, int out, Kernel *k)
{
    double scale = (double)in / out;
    double fscale = scale > 1.0 ? scale : 1.0;
    double support = fscale; /* triangle support 1, stretched */
    k->taps = (int)ceil(support) * 2 + 1;
    k->first = xmalloc((size_t)out * sizeof *k->first);
    k->count = xmalloc((size_t)out * sizeof *k->count);
    k->weight = xcalloc((size_t)out * (size_t)k->taps, sizeof *k->weight);
    for (int i = 0; i < out; i++) {
        double center = (i + 0.5) * scale;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        lo = lo < 0 ? 0 : lo;
        hi = hi > in ? in : hi;
        if (hi - lo > k->taps)
            hi = lo + k->taps;
        float *w = k->weight + (size_t)i * k->taps;
        double total = 0.0;
        for (int x = lo; x < hi; x++)
            total += triangle((x - center + 0.5) / fscale);
        for (int x = lo; x < hi; x++)
            w[x - lo] = (float)(triangle((x - center + 0.5) / fscale) / total);
        k->first[i] = lo;
        k->count[i] = hi - lo;
    }
}

static void kernel_free(Kernel *k)
{
    free(k->first);
    free(k->count);
    free(k->weight);
}

/* Round half up; v is never negative by more than rounding noise. */
static uint8_t clamp_u8(float v)
{
    return (uint8_t)(v <= 0.f ? 0 : v >= 254.5f ? 255 : (int)(v + 0.5f));
}

/* (H, W, C) -> (H, out_w, C): each output pixel a weighted sum of a few
 * neighbouring input pixels of its row. */
static void resize_rows(const Image *src, const Kernel *kx, int out_w, float *mid)
{
    int c = src->c;
    float acc[4];
    for (int y = 0; y < src->h; y++) {
        const uint8_t *row = src->px + (size_t)y * src->w * c;
        float *out = mid + (size_t)y * out_w * c;
        for (int x = 0; x < out_w; x++) {
            const float *w = kx->weight + (size_t)x * kx->taps;
            const uint8_t *p = row + (size_t)kx->first[x] * c;
            if (c == 3) { /* RGB, the common case, spelled out for the compiler */
                float r = 0.f, g = 0.f, b = 0.f;
                for (int t = 0; t < kx->count[x]; t++, p += 3) {
                    r += w[t] * p[0];
                    g += w[t] * p[1];
                    b += w[t] * p[2];
                }
                out[(size_t)x * 3] = r;
                out[(size_t)x * 3 + 1] = g;
                out[(size_t)x * 3 + 2] = b;
                continue;
            }
            for (int ch = 0; ch < c; ch++)
                acc[ch] = 0.f;
            for (int t = 0; t < kx->count[x]; t++, p += c)
                for (int ch = 0; ch < c; ch++)
                    acc[ch] += w[t] * p[ch];
            for (int ch = 0; ch < c; ch++)
                out[(size_t)x * c + ch] = acc[ch];
        }
    }
}

/* (H, out_w, C) -> (out_h, out_w, C): whole rows at a time, so the inner
 * loop runs over contiguous memory and vectorises. */
static void resize_cols(const float *mid, const Kernel *ky, int out_h, size_t stride,
                        uint8_t *dst)
{
    float *acc = xmalloc(stride * sizeof *acc);
    for (int y = 0; y < out_h; y++) {
        const float *w = ky->weight + (size_t)y * ky->taps;
        memset(acc, 0, stride * sizeof *acc);
        for (int t = 0; t < ky->count[y]; t++) {
            const float *in = mid + (size_t)(ky->first[y] + t) * stride;
            for (size_t i = 0; i < stride; i++)
                acc[i] += w[t] * in[i];
        }
        uint8_t *out = dst + (size_t)y * stride;
        for (size_t i = 0; i < stride; i++)
            out[i] = clamp_u8(acc[i]);
    }
    free(acc);
}

void image_resize(const Image *src, int out_w, int out_h, Image *dst)
{
    int c = src->c;
    CHECK(c >= 1 && c <= 4, "image with %d channels", c);
    image_reserve(dst, out_w, out_h, c);
    if (out_w == src->w && out_h == src->h) {
        memcpy(dst->px, src->px, (size_t)out_w * out_h * c);
        return;
    }
    Kernel kx, ky;
    kernel_build(src->w, out_w, &kx);
    kernel_build(src->h, out_h, &ky);
    float *mid = xmalloc((size_t)out_w * src->h * c * sizeof *mid);
    resize_rows(src, &kx, out_w, mid);
    resize_cols(mid, &ky, out_h, (size_t)out_w * c, dst->px);
    free(mid);
    kernel_free(&kx);
    kernel_free(&ky);
}

/* Python's round((d) / 2.0): halves go to the even neighbour. */
static int half_round_even(int d)
{
    int k = d / 2;
    return (d % 2 == 1 && k % 2 == 1) ? k + 1 : k;
}

void image_center_crop(const Image *src, int w, int h, Image *dst)
{
    CHECK(w <= src->w && h <= src->h, "crop %dx%d larger than image %dx%d", w, h, src->w,
          src->h);
    int top = half_round_even(src->h - h), left = half_round_even(src->w - w);
    image_reserve(dst, w, h, src->c);
    size_t row = (size_t)w * src->c;
    for (int y = 0; y < h; y++)
        memcpy(dst->px + (size_t)y * row,
               src->px + ((size_t)(top + y) * src->w + left) * src->c, row);
}

int image_encode_jpeg(ImageCodec *codec, const Image *img, int quality, uint8_t **out,
                      size_t *out_size, char *why, size_t why_len)
{
    unsigned char *jpeg = NULL;
    unsigned long size = 0;
    int pf = img->c == 1 ? TJPF_GRAY : TJPF_RGB;
    int samp = img->c == 1 ? TJSAMP_GRAY : TJSAMP_420;
    if (tjCompress2(codec->enc, img->px, img->w, 0, img->h, pf, &jpeg, &size, samp, quality,
                    0) != 0) {
        snprintf(why, why_len, "JPEG encode failed (%s)", tjGetErrorStr2(codec->enc));
        tjFree(jpeg);
        return -1;
    }
    *out = xmalloc(size);
    memcpy(*out, jpeg, size);
    *out_size = size;
    tjFree(jpeg);
    return 0;
}

#define IMAGE_STR2(x) #x
#define IMAGE_STR(x) IMAGE_STR2(x)

const char *image_library_versions(void)
{
    static char buf[128];
#ifdef LIBJPEG_TURBO_VERSION
    snprintf(buf, sizeof buf, "libjpeg-turbo %s (TurboJPEG), libpng %s",
             IMAGE_STR(LIBJPEG_TURBO_VERSION), png_get_libpng_ver(NULL));
#else
    snprintf(buf, sizeof buf, "TurboJPEG (libjpeg-turbo), libpng %s", png_get_libpng_ver(NULL));
#endif
    return buf;
}
