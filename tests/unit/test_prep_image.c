/*
 * test_prep_image.c - image_io: decode by content (JPEG RGB/grey/CMYK, PNG
 * with and without alpha), the scaled-decode choice, rejection of truncated
 * and non-image data, torchvision's resize/crop geometry, the antialiased
 * filter and the JPEG encoder. Everything in memory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>
#include <turbojpeg.h>

#include "image_io.h"

/* A constant-colour (or, with value NULL, gradient) JPEG in pixel format pf,
 * encoded with TurboJPEG flags (e.g. TJFLAG_PROGRESSIVE). */
static uint8_t *jpeg_make_flags(int w, int h, int pf, const uint8_t *value, int flags,
                                size_t *size)
{
    int c = tjPixelSize[pf];
    uint8_t *px = malloc((size_t)w * h * c);
    for (int i = 0; i < w * h; i++)
        for (int ch = 0; ch < c; ch++)
            px[i * c + ch] = value ? value[ch] : (uint8_t)((i % w) * 255 / w);
    tjhandle tj = tjInitCompress();
    unsigned char *jpeg = NULL;
    unsigned long n = 0;
    assert_int_equal(tjCompress2(tj, px, w, 0, h, pf, &jpeg, &n,
                                 pf == TJPF_GRAY ? TJSAMP_GRAY : TJSAMP_420, 95, flags), 0);
    uint8_t *out = malloc(n);
    memcpy(out, jpeg, n);
    tjFree(jpeg);
    tjDestroy(tj);
    free(px);
    *size = n;
    return out;
}

static uint8_t *jpeg_make(int w, int h, int pf, const uint8_t *value, size_t *size)
{
    return jpeg_make_flags(w, h, pf, value, 0, size);
}

static uint8_t *png_make(int w, int h, png_uint_32 format, const uint8_t *value, size_t *size)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = format;
    int c = PNG_IMAGE_PIXEL_CHANNELS(format);
    uint8_t *px = malloc((size_t)w * h * c);
    for (int i = 0; i < w * h; i++)
        memcpy(px + i * c, value, (size_t)c);
    png_alloc_size_t n = 0;
    assert_true(png_image_write_to_memory(&img, NULL, &n, 0, px, 0, NULL));
    uint8_t *out = malloc(n);
    assert_true(png_image_write_to_memory(&img, out, &n, 0, px, 0, NULL));
    free(px);
    *size = n;
    return out;
}

static void assert_colour(const Image *img, int r, int g, int b, int tol)
{
    assert_int_equal(img->c, 3);
    for (int i = 0; i < img->w * img->h; i++) {
        int want[3] = {r, g, b};
        for (int ch = 0; ch < 3; ch++)
            if (abs(img->px[i * 3 + ch] - want[ch]) > tol) {
                fprintf(stderr, "pixel %d channel %d: %d, want %d +- %d\n", i, ch,
                        img->px[i * 3 + ch], want[ch], tol);
                fail();
            }
    }
}

static void test_decode_rgb_grey_cmyk(void **state)
{
    (void)state;
    ImageCodec *codec = image_codec_new();
    Image img = {0};
    char why[256];
    size_t n;
    const uint8_t rgb[3] = {200, 30, 40}, grey[1] = {90}, cmyk[4] = {200, 100, 50, 220};

    uint8_t *j = jpeg_make(40, 24, TJPF_RGB, rgb, &n);
    assert_int_equal(image_decode(codec, j, n, 0, &img, why, sizeof why), 0);
    assert_int_equal(img.w, 40);
    assert_int_equal(img.h, 24);
    assert_colour(&img, 200, 30, 40, 3);
    free(j);

    j = jpeg_make(16, 16, TJPF_GRAY, grey, &n);
    assert_int_equal(image_decode(codec, j, n, 0, &img, why, sizeof why), 0);
    assert_colour(&img, 90, 90, 90, 1);
    free(j);

    /* Stored CMYK is Adobe-inverted: RGB = C*K/255 on the stored values. */
    j = jpeg_make(16, 16, TJPF_CMYK, cmyk, &n);
    assert_int_equal(image_decode(codec, j, n, 0, &img, why, sizeof why), 0);
    assert_colour(&img, 173, 86, 43, 3);
    free(j);
    image_free(&img);
    image_codec_free(codec);
}

static void test_decode_png_by_content(void **state)
{
    (void)state;
    ImageCodec *codec = image_codec_new();
    Image img = {0};
    char why[256];
    size_t n;
    const uint8_t rgb[3] = {10, 200, 30}, rgba[4] = {120, 140, 160, 7}, grey[1] = {77};
    uint8_t *p = png_make(9, 5, PNG_FORMAT_RGB, rgb, &n);
    assert_int_equal(image_decode(codec, p, n, 0, &img, why, sizeof why), 0);
    assert_int_equal(img.w, 9);
    assert_int_equal(img.h, 5);
    assert_colour(&img, 10, 200, 30, 0); /* lossless */
    free(p);
    /* Alpha is dropped, not composited (as Pillow's convert("RGB")). */
    p = png_make(4, 4, PNG_FORMAT_RGBA, rgba, &n);
    assert_int_equal(image_decode(codec, p, n, 0, &img, why, sizeof why), 0);
    assert_colour(&img, 120, 140, 160, 0);
    free(p);
    p = png_make(4, 4, PNG_FORMAT_GRAY, grey, &n);
    assert_int_equal(image_decode(codec, p, n, 0, &img, why, sizeof why), 0);
    assert_colour(&img, 77, 77, 77, 0);
    /* Truncated PNG. */
    assert_int_equal(image_decode(codec, p, n - 20, 0, &img, why, sizeof why), -1);
    assert_non_null(strstr(why, "PNG"));
    free(p);
    image_free(&img);
    image_codec_free(codec);
}

static void test_decode_rejects(void **state)
{
    (void)state;
    ImageCodec *codec = image_codec_new();
    Image img = {0};
    char why[256];
    size_t n;
    uint8_t *j = jpeg_make(256, 256, TJPF_RGB, NULL, &n);
    /* Cut inside the scan: libjpeg pads and warns, we reject. */
    assert_int_equal(image_decode(codec, j, n * 3 / 4, 0, &img, why, sizeof why), -1);
    assert_non_null(strstr(why, "truncated or corrupt JPEG (Premature end of JPEG file)"));
    /* Cut inside the header. */
    assert_int_equal(image_decode(codec, j, 10, 0, &img, why, sizeof why), -1);
    assert_non_null(strstr(why, "truncated or corrupt JPEG"));
    free(j);
    const char *html = "<html>not found</html>";
    assert_int_equal(image_decode(codec, (const uint8_t *)html, strlen(html), 0, &img, why,
                                  sizeof why), -1);
    assert_string_equal(why, "not a JPEG or PNG image (starts with 3c 68 74 6d)");
    assert_int_equal(image_decode(codec, (const uint8_t *)"", 0, 0, &img, why, sizeof why), -1);
    assert_string_equal(why, "empty file");
    image_free(&img);
    image_codec_free(codec);
}

/* A failed decode must not leak into the next image on the same codec: a
 * JPEG cut inside its header, then a good one. */
static void test_decode_after_failure(void **state)
{
    (void)state;
    ImageCodec *codec = image_codec_new();
    Image img = {0};
    char why[256];
    size_t n;
    static const uint8_t grey[3] = {90, 90, 90};
    uint8_t *j = jpeg_make(64, 48, TJPF_RGB, grey, &n);
    size_t cuts[] = {300 < n ? 300 : n / 2, 20, n * 3 / 4};
    for (size_t k = 0; k < sizeof cuts / sizeof *cuts; k++) {
        assert_int_equal(image_decode(codec, j, cuts[k], 0, &img, why, sizeof why), -1);
        if (image_decode(codec, j, n, 0, &img, why, sizeof why) != 0) {
            fprintf(stderr, "after a cut at %zu bytes: %s\n", cuts[k], why);
            fail();
        }
        assert_int_equal(img.w, 64);
        assert_int_equal(img.h, 48);
        assert_colour(&img, 90, 90, 90, 2);
    }
    free(j);
    image_free(&img);
    image_codec_free(codec);
}

/* A progressive w x h JPEG of a gradient. */
static uint8_t *jpeg_progressive(int w, int h, size_t *size)
{
    return jpeg_make_flags(w, h, TJPF_RGB, NULL, TJFLAG_PROGRESSIVE, size);
}

/* Offset of the first marker FF m in j, or fail. */
static size_t marker_at(const uint8_t *j, size_t n, uint8_t m)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (j[i] == 0xff && j[i + 1] == m)
            return i;
    fail();
    return 0;
}

/* A few KB whose frame header (SOF2) claims 40000 x 40000: refused from the
 * header, before any pixel memory exists. */
static void test_decompression_bomb(void **state)
{
    (void)state;
    ImageCodec *codec = image_codec_new();
    Image img = {0};
    char why[256];
    size_t n;
    uint8_t *j = jpeg_progressive(64, 64, &n);
    size_t sof = marker_at(j, n, 0xc2);
    j[sof + 5] = j[sof + 7] = 40000 >> 8;
    j[sof + 6] = j[sof + 8] = 40000 & 0xff;
    assert_int_equal(image_decode(codec, j, n, 32, &img, why, sizeof why), -1);
    assert_non_null(strstr(why, "JPEG too large (40000 x 40000, more than the limit of 67108864"));
    assert_null(img.px);
    int w = 0, h = 0;
    assert_int_equal(image_peek_size(j, n, &w, &h), 1);
    assert_int_equal(w, 40000);
    assert_int_equal(h, 40000);
    free(j);
    image_codec_free(codec);
}

/* One limit for JPEG and PNG, settable; the default is 64 Mpixel. */
static void test_pixel_limit(void **state)
{
    (void)state;
    ImageCodec *codec = image_codec_new();
    Image img = {0};
    char why[256];
    size_t nj, np;
    static const uint8_t rgb[3] = {10, 20, 30}, rgba[4] = {10, 20, 30, 255};
    uint8_t *j = jpeg_make(64, 48, TJPF_RGB, rgb, &nj);
    uint8_t *p = png_make(64, 48, PNG_FORMAT_RGBA, rgba, &np);
    assert_int_equal(image_max_pixels(), (size_t)1 << 26);
    image_set_max_pixels(64 * 48 - 1);
    assert_int_equal(image_decode(codec, j, nj, 0, &img, why, sizeof why), -1);
    assert_non_null(strstr(why, "JPEG too large (64 x 48"));
    assert_int_equal(image_decode(codec, p, np, 0, &img, why, sizeof why), -1);
    assert_non_null(strstr(why, "PNG too large (64 x 48"));
    image_set_max_pixels(64 * 48);
    assert_int_equal(image_decode(codec, j, nj, 0, &img, why, sizeof why), 0);
    assert_int_equal(image_decode(codec, p, np, 0, &img, why, sizeof why), 0);
    image_set_max_pixels(IMAGE_DEFAULT_MAX_PIXELS);
    free(j);
    free(p);
    image_free(&img);
    image_codec_free(codec);
}

/* A progressive JPEG whose last scan is repeated hundreds of times: each
 * repeat only warns in libjpeg, so only the scan limit stops it. */
static void test_scan_limit(void **state)
{
    (void)state;
    ImageCodec *codec = image_codec_new();
    Image img = {0};
    char why[256];
    size_t n;
    uint8_t *j = jpeg_progressive(32, 32, &n);
    size_t last = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (j[i] == 0xff && j[i + 1] == 0xda)
            last = i;
    size_t scan = n - 2 - last, repeats = IMAGE_MAX_JPEG_SCANS + 100;
    size_t big_n = last + scan * repeats + 2;
    uint8_t *big = malloc(big_n);
    memcpy(big, j, last);
    for (size_t r = 0; r < repeats; r++)
        memcpy(big + last + r * scan, j + last, scan);
    big[big_n - 2] = 0xff;
    big[big_n - 1] = 0xd9;
    assert_int_equal(image_decode(codec, big, big_n, 0, &img, why, sizeof why), -1);
    assert_non_null(strstr(why, "more than 500 scans"));
    /* The unrepeated file decodes. */
    assert_int_equal(image_decode(codec, j, n, 0, &img, why, sizeof why), 0);
    free(big);
    free(j);
    image_free(&img);
    image_codec_free(codec);
}

/* Header sizes without decoding: JPEG SOF, PNG IHDR, and "read more". */
static void test_peek_size(void **state)
{
    (void)state;
    size_t nj, np;
    static const uint8_t rgb[3] = {1, 2, 3}, rgba[4] = {1, 2, 3, 4};
    uint8_t *j = jpeg_make(64, 48, TJPF_RGB, rgb, &nj);
    uint8_t *p = png_make(20, 10, PNG_FORMAT_RGBA, rgba, &np);
    int w = 0, h = 0;
    assert_int_equal(image_peek_size(j, nj, &w, &h), 1);
    assert_int_equal(w, 64);
    assert_int_equal(h, 48);
    assert_int_equal(image_peek_size(j, marker_at(j, nj, 0xc0) + 4, &w, &h), 0);
    assert_int_equal(image_peek_size(j, 2, &w, &h), 0);
    assert_int_equal(image_peek_size(p, np, &w, &h), 1);
    assert_int_equal(w, 20);
    assert_int_equal(h, 10);
    assert_int_equal(image_peek_size(p, 20, &w, &h), 0);
    assert_int_equal(image_peek_size((const uint8_t *)"<html>", 6, &w, &h), -1);
    /* A scan before any frame header is malformed. */
    static const uint8_t no_sof[] = {0xff, 0xd8, 0xff, 0xda, 0x00, 0x02, 0xff, 0xd9};
    assert_int_equal(image_peek_size(no_sof, sizeof no_sof, &w, &h), -1);
    free(j);
    free(p);
}

/* Grey datasets: a colour JPEG decoded to one channel is libjpeg's luma,
 * exactly what TurboJPEG's TJPF_GRAY gives. */
static void test_decode_grey(void **state)
{
    (void)state;
    ImageCodec *codec = image_codec_new();
    Image img = {0};
    char why[256];
    size_t n;
    uint8_t *j = jpeg_make(40, 24, TJPF_RGB, NULL, &n);
    assert_int_equal(image_decode_to(codec, j, n, 0, 1, &img, why, sizeof why), 0);
    assert_int_equal(img.c, 1);
    uint8_t want[40 * 24];
    tjhandle tj = tjInitDecompress();
    assert_int_equal(tjDecompress2(tj, j, n, want, 40, 0, 24, TJPF_GRAY, 0), 0);
    tjDestroy(tj);
    assert_memory_equal(img.px, want, sizeof want);
    free(j);
    image_free(&img);
    image_codec_free(codec);
}

/* 800x600 with min_short 256: 1/2 gives 300 >= 256, 3/8 gives 225 < 256. */
static void test_scaled_decode(void **state)
{
    (void)state;
    ImageCodec *codec = image_codec_new();
    Image img = {0};
    char why[256];
    size_t n;
    uint8_t *j = jpeg_make(800, 600, TJPF_RGB, NULL, &n);
    assert_int_equal(image_decode(codec, j, n, 256, &img, why, sizeof why), 0);
    assert_int_equal(img.w, 400);
    assert_int_equal(img.h, 300);
    assert_int_equal(image_decode(codec, j, n, 0, &img, why, sizeof why), 0);
    assert_int_equal(img.w, 800);
    assert_int_equal(image_decode(codec, j, n, 1000, &img, why, sizeof why), 0);
    assert_int_equal(img.w, 800); /* never upscaled by the decoder */
    free(j);
    image_free(&img);
    image_codec_free(codec);
}

static void test_resize_geometry(void **state)
{
    (void)state;
    int w, h;
    image_resized_dims(500, 375, 256, &w, &h); /* torchvision: int(256 * 500 / 375) */
    assert_int_equal(w, 341);
    assert_int_equal(h, 256);
    image_resized_dims(375, 500, 256, &w, &h);
    assert_int_equal(w, 256);
    assert_int_equal(h, 341);
    image_resized_dims(100, 100, 256, &w, &h); /* upscaling too */
    assert_int_equal(w, 256);
    assert_int_equal(h, 256);

    /* CenterCrop: left = round((W - w) / 2) with halves to even. */
    Image src = {0}, dst = {0};
    image_reserve(&src, 7, 1, 1);
    for (int x = 0; x < 7; x++)
        src.px[x] = (uint8_t)x;
    image_center_crop(&src, 4, 1, &dst); /* (7-4)/2 = 1.5 -> 2 */
    assert_int_equal(dst.px[0], 2);
    image_reserve(&src, 5, 1, 1);
    for (int x = 0; x < 5; x++)
        src.px[x] = (uint8_t)x;
    image_center_crop(&src, 2, 1, &dst); /* (5-2)/2 = 1.5 -> 2 */
    assert_int_equal(dst.px[0], 2);
    image_reserve(&src, 6, 1, 1);
    for (int x = 0; x < 6; x++)
        src.px[x] = (uint8_t)x;
    image_center_crop(&src, 1, 1, &dst); /* 2.5 -> 2 */
    assert_int_equal(dst.px[0], 2);
    image_free(&src);
    image_free(&dst);
}

static void test_resize_filter(void **state)
{
    (void)state;
    Image src = {0}, dst = {0};
    /* A constant image stays exactly constant at any size. */
    image_reserve(&src, 37, 23, 3);
    for (int i = 0; i < 37 * 23 * 3; i++)
        src.px[i] = (uint8_t)(i % 3 == 0 ? 17 : i % 3 == 1 ? 128 : 250);
    image_resize(&src, 13, 9, &dst);
    assert_int_equal(dst.w, 13);
    assert_int_equal(dst.h, 9);
    assert_colour(&dst, 17, 128, 250, 0);
    image_resize(&src, 80, 50, &dst);
    assert_colour(&dst, 17, 128, 250, 0);

    /* Halving averages pixel pairs: the antialiased triangle spans 4 inputs
     * with weights 1/8 3/8 3/8 1/8; on a linear ramp that is the pair mean. */
    image_reserve(&src, 16, 1, 1);
    for (int x = 0; x < 16; x++)
        src.px[x] = (uint8_t)(10 * x);
    image_resize(&src, 8, 1, &dst);
    for (int x = 1; x < 7; x++)
        assert_int_equal(dst.px[x], 20 * x + 5);

    /* Alternating columns average out to grey when downscaled 4x. */
    image_reserve(&src, 64, 2, 1);
    for (int i = 0; i < 128; i++)
        src.px[i] = (uint8_t)(i % 2 ? 255 : 0);
    image_resize(&src, 16, 2, &dst);
    for (int x = 1; x < 15; x++)
        assert_in_range(dst.px[x], 126, 129);
    image_free(&src);
    image_free(&dst);
}

static void test_encode_roundtrip(void **state)
{
    (void)state;
    ImageCodec *codec = image_codec_new();
    Image img = {0}, back = {0};
    char why[256];
    image_reserve(&img, 33, 21, 3);
    for (int i = 0; i < 33 * 21; i++) {
        img.px[3 * i] = 40;
        img.px[3 * i + 1] = 90;
        img.px[3 * i + 2] = 160;
    }
    uint8_t *jpeg;
    size_t n;
    assert_int_equal(image_encode_jpeg(codec, &img, 90, &jpeg, &n, why, sizeof why), 0);
    assert_true(n > 0);
    assert_int_equal(image_decode(codec, jpeg, n, 0, &back, why, sizeof why), 0);
    assert_int_equal(back.w, 33);
    assert_int_equal(back.h, 21);
    assert_colour(&back, 40, 90, 160, 3);
    free(jpeg);
    image_free(&img);
    image_free(&back);
    image_codec_free(codec);
    assert_non_null(strstr(image_library_versions(), "libpng"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_rgb_grey_cmyk),
        cmocka_unit_test(test_decode_png_by_content),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_decode_after_failure),
        cmocka_unit_test(test_decompression_bomb),
        cmocka_unit_test(test_pixel_limit),
        cmocka_unit_test(test_scan_limit),
        cmocka_unit_test(test_peek_size),
        cmocka_unit_test(test_decode_grey),
        cmocka_unit_test(test_scaled_decode),
        cmocka_unit_test(test_resize_geometry),
        cmocka_unit_test(test_resize_filter),
        cmocka_unit_test(test_encode_roundtrip),
    };
    return cmocka_run_group_tests_name("prep_image", tests, NULL, NULL);
}
