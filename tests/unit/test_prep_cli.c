/*
 * test_prep_cli.c - resnet_prep end to end on small inputs this test makes:
 * an ImageNet-style folder tree with every quirk (greyscale, CMYK, a PNG
 * named .JPEG, a truncated JPEG, a non-image), both flat-val label formats,
 * tiny CIFAR-10/100 binaries, plain and gzipped IDX files. Runs the real
 * binary (build/bin/resnet_prep beside this test's build/tests/) and reads
 * the files back with HDF5. Scratch files go to build/tmp/test_prep_cli.
 *
 * `test_prep_cli --make-tree DIR` only writes the fixtures (DIR/train,
 * DIR/val, DIR/valflat + label files, DIR/cifar10, DIR/cifar100) for
 * tests/e2e/prep_*.sh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hdf5.h>
#include <png.h>
#include <turbojpeg.h>
#include <zlib.h>

/* Short enough that every path built from them fits a PATH_MAX buffer. */
static char g_bin[1024]; /* resnet_prep */
static char g_tmp[1024]; /* scratch root */

/* ---- fixture writers ---------------------------------------------------- */

static void file_write(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void mkdirs(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    mkdir(buf, 0755);
}

static void text_write(const char *path, const char *text)
{
    file_write(path, text, strlen(text));
}

/* A JPEG of w x h pixels in pixel format pf (TJPF_RGB, TJPF_GRAY or
 * TJPF_CMYK), every pixel = value[0..channels) or, with gradient set, a
 * diagonal ramp. Returns malloc'd bytes. */
static uint8_t *jpeg_make(int w, int h, int pf, const uint8_t *value, int gradient, size_t *size)
{
    int c = tjPixelSize[pf];
    uint8_t *px = malloc((size_t)w * h * c);
    for (int i = 0; i < w * h; i++)
        for (int ch = 0; ch < c; ch++)
            px[i * c + ch] = gradient ? (uint8_t)((i % w) * 255 / w + ch * 20) : value[ch];
    tjhandle tj = tjInitCompress();
    unsigned char *jpeg = NULL;
    unsigned long n = 0;
    int samp = pf == TJPF_GRAY ? TJSAMP_GRAY : TJSAMP_420;
    assert_int_equal(tjCompress2(tj, px, w, 0, h, pf, &jpeg, &n, samp, 95, 0), 0);
    uint8_t *out = malloc(n);
    memcpy(out, jpeg, n);
    tjFree(jpeg);
    tjDestroy(tj);
    free(px);
    *size = n;
    return out;
}

static void jpeg_file(const char *path, int w, int h, int pf, const uint8_t *value, int gradient)
{
    size_t n;
    uint8_t *jpeg = jpeg_make(w, h, pf, value, gradient, &n);
    file_write(path, jpeg, n);
    free(jpeg);
}

/* A PNG, constant colour, RGB or RGBA (format PNG_FORMAT_RGB/RGBA). */
static void png_file(const char *path, int w, int h, png_uint_32 format, const uint8_t *value)
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
    assert_true(png_image_write_to_file(&img, path, 0, px, 0, NULL));
    free(px);
}

static const uint8_t RED[3] = {200, 30, 40}, GREEN[3] = {20, 180, 60}, BLUE[3] = {30, 60, 210};
static const uint8_t GREY[1] = {90}, CMYK[4] = {200, 100, 50, 220};
static const uint8_t PNG_RGB[3] = {10, 200, 30}, PNG_RGBA[4] = {120, 140, 160, 7};

/* Expected train records of the tree, in ImageFolder order. */
typedef struct {
    const char *name;
    int label;
    int r, g, b; /* constant colour, -1 for the gradient */
} TreeImage;

/* CMYK stored values -> RGB with Adobe's inverted convention: C*K/255. */
#define CMYK_R ((200 * 220 + 127) / 255)
#define CMYK_G ((100 * 220 + 127) / 255)
#define CMYK_B ((50 * 220 + 127) / 255)

static const TreeImage g_train[] = {
    {"n01/a.JPEG", 0, 200, 30, 40},
    {"n01/b.jpg", 0, 90, 90, 90},
    {"n01/cmyk.JPEG", 0, CMYK_R, CMYK_G, CMYK_B},
    {"n01/sub/c.jpeg", 0, 20, 180, 60},
    {"n02/d.JPEG", 1, -1, -1, -1},
    {"n02/e.PNG", 1, 120, 140, 160},
    {"n02/png_named.JPEG", 1, 10, 200, 30},
    {"n03/f.JPEG", 2, 30, 60, 210},
    {"n03/g.JPEG", 2, 200, 30, 40},
};
#define NTRAIN (sizeof g_train / sizeof g_train[0])

/* train/<class>/... with every quirk; val/ as class folders; valflat/ with
 * LOC_val_solution.csv, ground_truth.txt and synsets.txt. */
static void tree_make(const char *root)
{
    char p[PATH_MAX];
#define P(...) (snprintf(p, sizeof p, __VA_ARGS__), p)
    mkdirs(P("%s/train/n01/sub", root));
    mkdirs(P("%s/train/n02", root));
    mkdirs(P("%s/train/n03", root));
    mkdirs(P("%s/train/.hidden", root));
    jpeg_file(P("%s/train/n01/a.JPEG", root), 64, 48, TJPF_RGB, RED, 0);
    jpeg_file(P("%s/train/n01/b.jpg", root), 50, 70, TJPF_GRAY, GREY, 0);
    jpeg_file(P("%s/train/n01/cmyk.JPEG", root), 60, 45, TJPF_CMYK, CMYK, 0);
    jpeg_file(P("%s/train/n01/sub/c.jpeg", root), 40, 40, TJPF_RGB, GREEN, 0);
    jpeg_file(P("%s/train/n02/d.JPEG", root), 100, 80, TJPF_RGB, NULL, 1);
    png_file(P("%s/train/n02/e.PNG", root), 30, 30, PNG_FORMAT_RGBA, PNG_RGBA);
    png_file(P("%s/train/n02/png_named.JPEG", root), 48, 64, PNG_FORMAT_RGB, PNG_RGB);
    text_write(P("%s/train/n02/notes.txt", root), "not an image, ignored by extension\n");
    jpeg_file(P("%s/train/n03/f.JPEG", root), 90, 60, TJPF_RGB, BLUE, 0);
    jpeg_file(P("%s/train/n03/g.JPEG", root), 33, 77, TJPF_RGB, RED, 0);
    text_write(P("%s/train/n03/html.JPEG", root), "<html><body>404 Not Found</body></html>\n");
    jpeg_file(P("%s/train/.hidden/x.JPEG", root), 40, 40, TJPF_RGB, RED, 0);
    size_t n;
    uint8_t *jpeg = jpeg_make(64, 64, TJPF_RGB, NULL, 1, &n);
    file_write(P("%s/train/n03/truncated.JPEG", root), jpeg, n / 2);
    free(jpeg);

    const uint8_t *val_colour[4] = {RED, GREEN, BLUE, BLUE};
    const char *val_class[4] = {"n01", "n02", "n03", "n03"};
    for (int i = 0; i < 4; i++) {
        mkdirs(P("%s/val/%s", root, val_class[i]));
        jpeg_file(P("%s/val/%s/v%d.JPEG", root, val_class[i], i), 50, 40, TJPF_RGB,
                  val_colour[i], 0);
    }
    /* Flat: file k (1-based) has class flat_class[k-1]. */
    const char *flat_class[4] = {"n02", "n01", "n03", "n01"};
    mkdirs(P("%s/valflat", root));
    for (int k = 1; k <= 4; k++)
        jpeg_file(P("%s/valflat/ILSVRC2012_val_%08d.JPEG", root, k), 40, 50, TJPF_RGB, GREEN, 0);
    text_write(P("%s/LOC_val_solution.csv", root),
               "ImageId,PredictionString\n"
               "ILSVRC2012_val_00000003,n03 10 20 30 40 n03 1 2 3 4\n"
               "ILSVRC2012_val_00000001,n02 5 5 9 9\n"
               "ILSVRC2012_val_00000004,n01 1 1 2 2\n"
               "ILSVRC2012_val_00000002,n01 7 7 8 8\n");
    /* IDs in devkit order, which is not sorted wnid order: 1 = n03, 2 = n01, 3 = n02. */
    text_write(P("%s/synsets.txt", root), "n03 third class\nn01 first class\nn02 second\n");
    text_write(P("%s/ground_truth.txt", root), "3\n2\n1\n2\n");
    (void)flat_class;
#undef P
}

/* ---- running the tool ---------------------------------------------------- */

/* Runs resnet_prep with args (stdout+stderr to *out if not NULL); returns
 * its exit code. */
static int prep_run(char **out, const char *fmt, ...)
{
    char args[8192], cmd[sizeof args + sizeof g_bin + 16];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", g_bin, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, len = 0, got;
    char *buf = malloc(cap);
    while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len < 2)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    int status = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void expect_exit(int want, const char *must_contain, const char *fmt, ...)
{
    char args[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    char *out;
    int rc = prep_run(&out, "%s", args);
    if (rc != want || (must_contain && !strstr(out, must_contain))) {
        fprintf(stderr, "resnet_prep %s\n-> exit %d (want %d), output:\n%s\n(wanted: %s)\n", args,
                rc, want, out, must_contain ? must_contain : "");
        free(out);
        fail();
    }
    free(out);
}

static char *tmp_path(const char *name)
{
    static char buf[4][PATH_MAX];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, PATH_MAX, "%s/%s", g_tmp, name);
    return p;
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* No FILE.tmp-* may be left behind in dir. */
static void assert_no_tmp_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp-")) {
            fprintf(stderr, "left behind: %s/%s\n", dir, e->d_name);
            fail();
        }
    closedir(d);
}

/* ---- reading results ------------------------------------------------------ */

/* Reads a whole dataset as memtype; dims to dims (up to 4), returns malloc'd. */
static void *h5_read(const char *file, const char *name, hid_t memtype, hsize_t *dims)
{
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0)
        fprintf(stderr, "%s: no dataset %s\n", file, name);
    assert_true(d >= 0);
    hid_t s = H5Dget_space(d);
    hsize_t dd[4] = {1, 1, 1, 1};
    int rank = H5Sget_simple_extent_dims(s, dd, NULL);
    size_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= dd[i];
    if (dims)
        memcpy(dims, dd, sizeof dd);
    void *buf = malloc(n * H5Tget_size(memtype) + 1);
    assert_true(H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    H5Sclose(s);
    H5Dclose(d);
    H5Fclose(f);
    return buf;
}

static void h5_attr(const char *file, const char *name, hid_t memtype, void *out)
{
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    assert_true(a >= 0);
    if (memtype == H5T_C_S1) { /* fixed-length string: read with its own type */
        hid_t t = H5Aget_type(a);
        memset(out, 0, H5Tget_size(t) + 1);
        assert_true(H5Aread(a, t, out) >= 0);
        H5Tclose(t);
    } else {
        assert_true(H5Aread(a, memtype, out) >= 0);
    }
    H5Aclose(a);
    H5Fclose(f);
}

/* Mean/std over /train/images computed here, directly in doubles. */
static void assert_stats_exact(const char *file)
{
    hsize_t dims[4];
    uint8_t *px = h5_read(file, "/train/images", H5T_NATIVE_UINT8, dims);
    int c = (int)dims[3];
    size_t npix = dims[0] * dims[1] * dims[2];
    double mean[4], std[4];
    h5_attr(file, "mean", H5T_NATIVE_DOUBLE, mean);
    h5_attr(file, "std", H5T_NATIVE_DOUBLE, std);
    for (int ch = 0; ch < c; ch++) {
        long double s = 0, s2 = 0;
        for (size_t i = 0; i < npix; i++) {
            long double v = px[i * c + ch] / 255.0L;
            s += v;
            s2 += v * v;
        }
        long double m = s / npix, sd = sqrtl(s2 / npix - m * m);
        assert_true(fabs(mean[ch] - (double)m) < 1e-12);
        assert_true(fabs(std[ch] - (double)sd) < 1e-9);
    }
    free(px);
}

/* Average colour of record i of a raw (N, H, W, 3) buffer. */
static void record_mean(const uint8_t *px, const hsize_t *dims, size_t i, double *rgb)
{
    size_t per = dims[1] * dims[2];
    for (int ch = 0; ch < 3; ch++) {
        double s = 0;
        for (size_t k = 0; k < per; k++)
            s += px[(i * per + k) * 3 + ch];
        rgb[ch] = s / per;
    }
}

/* ---- imagenet --------------------------------------------------------------- */

static void test_imagenet_raw(void **state)
{
    (void)state;
    const char *out = tmp_path("inet_raw.h5");
    char *log;
    int rc = prep_run(&log, "imagenet --train %s/tree/train --val %s/tree/val --out %s --size 32",
                      g_tmp, g_tmp, out);
    if (rc != 0)
        fprintf(stderr, "%s\n", log);
    assert_int_equal(rc, 0);
    /* Both bad files are named in a warning; the summary counts them. */
    assert_non_null(strstr(log, "html.JPEG: not a JPEG or PNG image"));
    assert_non_null(strstr(log, "truncated.JPEG: truncated or corrupt JPEG"));
    assert_non_null(strstr(log, "2 unreadable images were skipped"));
    assert_non_null(strstr(log, "ignored 1 files"));
    free(log);

    hsize_t dims[4], ldims[4];
    uint8_t *px = h5_read(out, "/train/images", H5T_NATIVE_UINT8, dims);
    int32_t *labels = h5_read(out, "/train/labels", H5T_NATIVE_INT32, ldims);
    assert_int_equal(dims[0], NTRAIN);
    assert_int_equal(dims[1], 32);
    assert_int_equal(dims[2], 32);
    assert_int_equal(dims[3], 3);
    assert_int_equal(ldims[0], NTRAIN);
    for (size_t i = 0; i < NTRAIN; i++) {
        assert_int_equal(labels[i], g_train[i].label);
        if (g_train[i].r < 0)
            continue;
        double rgb[3];
        record_mean(px, dims, i, rgb);
        int want[3] = {g_train[i].r, g_train[i].g, g_train[i].b};
        for (int ch = 0; ch < 3; ch++)
            if (fabs(rgb[ch] - want[ch]) > 3.0) {
                fprintf(stderr, "%s channel %d: %.1f, want %d\n", g_train[i].name, ch, rgb[ch],
                        want[ch]);
                fail();
            }
    }
    free(px);
    free(labels);

    /* Val from class folders: labels by name; /classes = sorted folder names. */
    int32_t *vl = h5_read(out, "/val/labels", H5T_NATIVE_INT32, ldims);
    assert_int_equal(ldims[0], 4);
    int want_val[4] = {0, 1, 2, 2};
    for (int i = 0; i < 4; i++)
        assert_int_equal(vl[i], want_val[i]);
    free(vl);
    hsize_t cdims[4];
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 4);
    char *classes = h5_read(out, "/classes", t, cdims);
    H5Tclose(t);
    assert_int_equal(cdims[0], 3);
    assert_string_equal(classes, "n01");
    assert_string_equal(classes + 8, "n03");
    free(classes);
    int version, num_classes;
    char enc[16];
    h5_attr(out, "resnet_dataset_version", H5T_NATIVE_INT, &version);
    h5_attr(out, "num_classes", H5T_NATIVE_INT, &num_classes);
    h5_attr(out, "encoding", H5T_C_S1, enc);
    assert_int_equal(version, 1);
    assert_int_equal(num_classes, 3);
    assert_string_equal(enc, "raw");
    assert_stats_exact(out);
    expect_exit(0, "OK", "verify %s", out);
    expect_exit(0, "/train        9 images", "inspect %s", out);
}

static void test_imagenet_jpeg(void **state)
{
    (void)state;
    const char *out = tmp_path("inet_jpeg.h5");
    expect_exit(0, "wrote", "imagenet --train %s/tree/train --val %s/tree/val --out %s --size 32 "
                "--encoding jpeg --quality 80 --limit-per-class 2", g_tmp, g_tmp, out);
    hsize_t jd[4], od[4], ld[4];
    uint8_t *jpeg = h5_read(out, "/train/jpeg", H5T_NATIVE_UINT8, jd);
    int64_t *off = h5_read(out, "/train/offsets", H5T_NATIVE_INT64, od);
    int32_t *labels = h5_read(out, "/train/labels", H5T_NATIVE_INT32, ld);
    /* --limit-per-class 2: first two candidates per class; n03's two bad
     * files are not among its first two. */
    assert_int_equal(ld[0], 6);
    assert_int_equal(od[0], 7);
    assert_int_equal(off[0], 0);
    assert_int_equal(off[6], (int64_t)jd[0]);
    int want_labels[6] = {0, 0, 1, 1, 2, 2};
    tjhandle tj = tjInitDecompress();
    for (int i = 0; i < 6; i++) {
        assert_int_equal(labels[i], want_labels[i]);
        assert_true(off[i + 1] > off[i]);
        int w, h, ss, cs;
        assert_int_equal(tjDecompressHeader3(tj, jpeg + off[i], (unsigned long)(off[i + 1] - off[i]),
                                             &w, &h, &ss, &cs), 0);
        assert_int_equal(w < h ? w : h, 32); /* shorter side = --size, aspect kept */
    }
    /* a.JPEG is 64x48 -> 42x32 as torchvision's Resize(32) truncates. */
    int w, h, ss, cs;
    tjDecompressHeader3(tj, jpeg, (unsigned long)off[1], &w, &h, &ss, &cs);
    assert_int_equal(w, 42);
    assert_int_equal(h, 32);
    tjDestroy(tj);
    char enc[16];
    h5_attr(out, "encoding", H5T_C_S1, enc);
    assert_string_equal(enc, "jpeg");
    free(jpeg);
    free(off);
    free(labels);
    expect_exit(0, "verify: /val: 4 records OK", "verify %s", out);
    expect_exit(0, "bytes/image", "inspect %s", out);
}

static void test_imagenet_strict(void **state)
{
    (void)state;
    const char *out = tmp_path("strict.h5");
    expect_exit(2, "html.JPEG: not a JPEG or PNG image", "imagenet --train %s/tree/train "
                "--val %s/tree/val --out %s --size 32 --strict", g_tmp, g_tmp, out);
    assert_false(exists(out));
    assert_no_tmp_files(g_tmp);
}

static void test_imagenet_val_kaggle(void **state)
{
    (void)state;
    const char *out = tmp_path("kaggle.h5");
    expect_exit(0, NULL, "imagenet --train %s/tree/train --val %s/tree/valflat --val-labels "
                "%s/tree/LOC_val_solution.csv --out %s --size 16", g_tmp, g_tmp, g_tmp, out);
    hsize_t ld[4];
    int32_t *l = h5_read(out, "/val/labels", H5T_NATIVE_INT32, ld);
    int want[4] = {1, 0, 2, 0}; /* n02 n01 n03 n01 in sorted file order */
    assert_int_equal(ld[0], 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(l[i], want[i]);
    free(l);
}

/* --full-decode changes only how pixels are made, not what is chosen. */
static void test_imagenet_full_decode(void **state)
{
    (void)state;
    const char *out = tmp_path("full.h5");
    expect_exit(0, NULL, "imagenet --train %s/tree/train --val %s/tree/val --out %s --size 32 "
                "--full-decode", g_tmp, g_tmp, out);
    hsize_t dims[4];
    uint8_t *px = h5_read(out, "/train/images", H5T_NATIVE_UINT8, dims);
    assert_int_equal(dims[0], NTRAIN);
    double rgb[3];
    record_mean(px, dims, 0, rgb); /* a.JPEG, red */
    assert_true(fabs(rgb[0] - 200) < 3 && fabs(rgb[1] - 30) < 3 && fabs(rgb[2] - 40) < 3);
    free(px);
}

/* An 8000x1 image would resize to 2048000x256: skipped, not allocated. */
static void test_imagenet_extreme_aspect(void **state)
{
    (void)state;
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/thin/train/c", g_tmp);
    mkdirs(p);
    snprintf(p, sizeof p, "%s/thin/train/c/ok.png", g_tmp);
    png_file(p, 20, 30, PNG_FORMAT_RGB, PNG_RGB);
    snprintf(p, sizeof p, "%s/thin/train/c/thin.png", g_tmp);
    png_file(p, 8000, 1, PNG_FORMAT_RGB, PNG_RGB);
    const char *out = tmp_path("thin.h5");
    expect_exit(0, "thin.png: aspect ratio too extreme (8000 x 1 would resize to 2048000 x 256)",
                "imagenet --train %s/thin/train --val %s/thin/train --out %s", g_tmp, g_tmp, out);
    hsize_t ld[4];
    int32_t *l = h5_read(out, "/train/labels", H5T_NATIVE_INT32, ld);
    assert_int_equal(ld[0], 1);
    free(l);
}

static void test_imagenet_val_ground_truth(void **state)
{
    (void)state;
    const char *out = tmp_path("gt.h5");
    expect_exit(0, NULL, "imagenet --train %s/tree/train --val %s/tree/valflat --val-labels "
                "%s/tree/ground_truth.txt --synsets %s/tree/synsets.txt --out %s --size 16",
                g_tmp, g_tmp, g_tmp, g_tmp, out);
    hsize_t ld[4];
    int32_t *l = h5_read(out, "/val/labels", H5T_NATIVE_INT32, ld);
    int want[4] = {1, 0, 2, 0}; /* IDs 3 2 1 2 -> n02 n01 n03 n01 */
    for (int i = 0; i < 4; i++)
        assert_int_equal(l[i], want[i]);
    free(l);
}

static void test_imagenet_bad_inputs(void **state)
{
    (void)state;
    const char *out = tmp_path("bad.h5");
    const char *t = g_tmp;
    expect_exit(2, "--synsets FILE", "imagenet --train %s/tree/train --val %s/tree/valflat "
                "--val-labels %s/tree/ground_truth.txt --out %s", t, t, t, out);
    expect_exit(2, "no_such_dir: cannot open folder", "imagenet --train %s/no_such_dir --val "
                "%s/tree/val --out %s", t, t, out);
    expect_exit(2, "needs --val-labels", "imagenet --train %s/tree/train --val %s/tree/valflat "
                "--out %s", t, t, out);
    char csv[PATH_MAX];
    snprintf(csv, sizeof csv, "%s/short.csv", t);
    text_write(csv, "ImageId,PredictionString\nILSVRC2012_val_00000002,n01 1 2 3 4\n");
    expect_exit(2, "short.csv: no row for image ILSVRC2012_val_00000001.JPEG", "imagenet "
                "--train %s/tree/train --val %s/tree/valflat --val-labels %s --out %s", t, t, csv,
                out);
    text_write(csv, "ImageId,PredictionString\nILSVRC2012_val_00000001,n07 1 2 3 4\n");
    expect_exit(2, "image ILSVRC2012_val_00000001.JPEG is labelled 'n07', which is not a class",
                "imagenet --train %s/tree/train --val %s/tree/valflat --val-labels %s --out %s", t,
                t, csv, out);
    snprintf(csv, sizeof csv, "%s/gt5.txt", t);
    text_write(csv, "1\n2\n3\n4\n");
    expect_exit(2, "gt5.txt line 4: class ID 4 has no line in --synsets", "imagenet --train "
                "%s/tree/train --val %s/tree/valflat --val-labels %s --synsets %s/tree/synsets.txt "
                "--out %s", t, t, csv, t, out);
    text_write(csv, "1\n2\n3\n");
    expect_exit(2, "has 3 labels but --val", "imagenet --train %s/tree/train --val "
                "%s/tree/valflat --val-labels %s --synsets %s/tree/synsets.txt --out %s", t, t,
                csv, t, out);
    expect_exit(2, "neither Kaggle", "imagenet --train %s/tree/train --val %s/tree/valflat "
                "--val-labels %s/tree/train/n02/notes.txt --out %s", t, t, t, out);
    expect_exit(2, "class folder 'sub' is not a class of --train", "imagenet --train "
                "%s/tree/train --val %s/tree/train/n01 --out %s", t, t, out);
    expect_exit(2, "--size abc: not an integer", "imagenet --train x --val y --out z --size abc");
    expect_exit(2, "--encoding png: expected raw or jpeg", "imagenet --train x --val y --out z "
                "--encoding png");
    expect_exit(2, "unknown option '--colour'", "imagenet --train x --val y --out z --colour");
    expect_exit(2, "--val is required", "imagenet --train x --out z");
    expect_exit(2, "directory /nonexistent_dir does not exist", "imagenet --train "
                "%s/tree/train --val %s/tree/val --out /nonexistent_dir/x.h5", t, t);
    assert_false(exists(out));
    assert_no_tmp_files(g_tmp);
}

/* ---- CIFAR ------------------------------------------------------------------ */

/* Record r of a CIFAR file: planes (3, 32, 32), value (r*7 + c*50 + i) & 255. */
static uint8_t cifar_pixel(int r, int c, int i)
{
    return (uint8_t)((r * 7 + c * 50 + i) & 255);
}

static void cifar_file(const char *path, int first, int n, int label_bytes, int bad_label)
{
    size_t rs = (size_t)label_bytes + 3072;
    uint8_t *buf = malloc(rs * n);
    for (int k = 0; k < n; k++) {
        uint8_t *rec = buf + rs * k;
        int r = first + k;
        rec[0] = (uint8_t)(r % 10);                  /* cifar10 label / cifar100 coarse */
        if (label_bytes == 2)
            rec[1] = (uint8_t)(99 - r % 100);        /* cifar100 fine */
        if (bad_label && k == n - 1)
            rec[label_bytes - 1] = 12;
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 1024; i++)
                rec[label_bytes + c * 1024 + i] = cifar_pixel(r, c, i);
    }
    file_write(path, buf, rs * n);
    free(buf);
}

/* cifar10/: 5 batches of 3 records (global records 0..14), test of 4
 * (records 100..103); cifar100/: train 6, test 2. */
static void cifar_make(const char *root)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/cifar10", root);
    mkdirs(p);
    for (int b = 1; b <= 5; b++) {
        snprintf(p, sizeof p, "%s/cifar10/data_batch_%d.bin", root, b);
        cifar_file(p, (b - 1) * 3, 3, 1, 0);
    }
    snprintf(p, sizeof p, "%s/cifar10/test_batch.bin", root);
    cifar_file(p, 100, 4, 1, 0);
    snprintf(p, sizeof p, "%s/cifar10/batches.meta.txt", root);
    text_write(p, "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n");
    snprintf(p, sizeof p, "%s/cifar100", root);
    mkdirs(p);
    snprintf(p, sizeof p, "%s/cifar100/train.bin", root);
    cifar_file(p, 0, 6, 2, 0);
    snprintf(p, sizeof p, "%s/cifar100/test.bin", root);
    cifar_file(p, 100, 2, 2, 0);
}

/* Checks records of a raw split against cifar_pixel for global records first.. */
static void assert_cifar_split(const char *file, const char *split, int first, int n,
                               int label_bytes)
{
    char name[64];
    hsize_t dims[4], ld[4];
    snprintf(name, sizeof name, "/%s/images", split);
    uint8_t *px = h5_read(file, name, H5T_NATIVE_UINT8, dims);
    snprintf(name, sizeof name, "/%s/labels", split);
    int32_t *l = h5_read(file, name, H5T_NATIVE_INT32, ld);
    assert_int_equal(dims[0], n);
    assert_int_equal(dims[1], 32);
    assert_int_equal(dims[3], 3);
    for (int k = 0; k < n; k++) {
        int r = first + k;
        assert_int_equal(l[k], label_bytes == 2 ? 99 - r % 100 : r % 10);
        for (int i = 0; i < 1024; i++)
            for (int c = 0; c < 3; c++)
                if (px[((size_t)k * 1024 + i) * 3 + c] != cifar_pixel(r, c, i)) {
                    fprintf(stderr, "/%s record %d pixel %d ch %d\n", split, k, i, c);
                    fail();
                }
    }
    free(px);
    free(l);
}

static void test_cifar10(void **state)
{
    (void)state;
    const char *out = tmp_path("c10.h5");
    expect_exit(0, NULL, "cifar10 --in %s/cifar10 --out %s", g_tmp, out);
    assert_cifar_split(out, "train", 0, 15, 1);
    assert_cifar_split(out, "val", 100, 4, 1); /* default: val = test */
    assert_cifar_split(out, "test", 100, 4, 1);
    assert_stats_exact(out);
    expect_exit(0, "airplane, automobile, bird", "inspect %s", out);

    const char *split = tmp_path("c10_split.h5");
    expect_exit(0, NULL, "cifar10 --in %s/cifar10 --out %s --val-split 4", g_tmp, split);
    assert_cifar_split(split, "train", 0, 11, 1); /* the last 4 training images ... */
    assert_cifar_split(split, "val", 11, 4, 1);   /* ... are /val */
    assert_cifar_split(split, "test", 100, 4, 1);
    assert_stats_exact(split); /* over the 11 kept training images */
    expect_exit(2, "--val-split 15: must be less than the 15 training images",
                "cifar10 --in %s/cifar10 --out %s --val-split 15", g_tmp,
                tmp_path("c10_bad.h5"));
}

static void test_cifar100(void **state)
{
    (void)state;
    const char *out = tmp_path("c100.h5");
    expect_exit(0, NULL, "cifar100 --in %s/cifar100 --out %s", g_tmp, out);
    assert_cifar_split(out, "train", 0, 6, 2);
    assert_cifar_split(out, "test", 100, 2, 2);
    int num_classes;
    h5_attr(out, "num_classes", H5T_NATIVE_INT, &num_classes);
    assert_int_equal(num_classes, 100);
    expect_exit(0, "OK", "verify %s", out);
}

static void test_cifar_bad(void **state)
{
    (void)state;
    char p[PATH_MAX];
    const char *out = tmp_path("cbad.h5");
    snprintf(p, sizeof p, "%s/cifar_bad", g_tmp);
    mkdirs(p);
    for (int b = 1; b <= 5; b++) {
        snprintf(p, sizeof p, "%s/cifar_bad/data_batch_%d.bin", g_tmp, b);
        if (b != 3)
            cifar_file(p, 0, 2, 1, b == 5);
    }
    snprintf(p, sizeof p, "%s/cifar_bad/test_batch.bin", g_tmp);
    cifar_file(p, 0, 2, 1, 0);
    expect_exit(2, "data_batch_3.bin: No such file", "cifar10 --in %s/cifar_bad --out %s", g_tmp,
                out);
    snprintf(p, sizeof p, "%s/cifar_bad/data_batch_3.bin", g_tmp);
    cifar_file(p, 0, 2, 1, 0);
    expect_exit(2, "data_batch_5.bin record 1: label 12 is outside [0, 10)",
                "cifar10 --in %s/cifar_bad --out %s", g_tmp, out);
    assert_false(exists(out));
    assert_no_tmp_files(g_tmp);
    text_write(p, "short");
    expect_exit(2, "data_batch_3.bin: 5 bytes is not a whole number of 3073-byte",
                "cifar10 --in %s/cifar_bad --out %s", g_tmp, out);
    expect_exit(2, "--in is required", "cifar100 --out %s", out);
}

/* ---- IDX ----------------------------------------------------------------- */

/* An IDX file; gz picks gzip. images: [n, 5, 4] value (k*11 + i) & 255;
 * labels [n] = k % 3. */
static void idx_file(const char *path, int images, int n, int gz)
{
    uint8_t head[16] = {0, 0, 8, (uint8_t)(images ? 3 : 1)};
    int dims[3] = {n, 5, 4}, nd = images ? 3 : 1;
    for (int i = 0; i < nd; i++) {
        head[4 + 4 * i] = (uint8_t)(dims[i] >> 24);
        head[5 + 4 * i] = (uint8_t)(dims[i] >> 16);
        head[6 + 4 * i] = (uint8_t)(dims[i] >> 8);
        head[7 + 4 * i] = (uint8_t)dims[i];
    }
    size_t item = images ? 20 : 1, hlen = 4 + 4 * (size_t)nd;
    uint8_t *data = malloc(item * n);
    for (int k = 0; k < n; k++)
        for (size_t i = 0; i < item; i++)
            data[k * item + i] = images ? (uint8_t)((k * 11 + (int)i) & 255) : (uint8_t)(k % 3);
    if (gz) {
        gzFile f = gzopen(path, "wb");
        assert_non_null(f);
        gzwrite(f, head, (unsigned)hlen);
        gzwrite(f, data, (unsigned)(item * n));
        assert_int_equal(gzclose(f), Z_OK);
    } else {
        uint8_t *all = malloc(hlen + item * n);
        memcpy(all, head, hlen);
        memcpy(all + hlen, data, item * n);
        file_write(path, all, hlen + item * n);
        free(all);
    }
    free(data);
}

static void idx_set(const char *dir, int gz)
{
    char p[PATH_MAX];
    mkdirs(dir);
    const char *ext = gz ? ".gz" : "";
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte%s", dir, ext);
    idx_file(p, 1, 7, gz);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte%s", dir, ext);
    idx_file(p, 0, 7, gz);
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte%s", dir, ext);
    idx_file(p, 1, 3, gz);
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte%s", dir, ext);
    idx_file(p, 0, 3, gz);
}

static void assert_idx_split(const char *file, const char *split, int first, int n)
{
    char name[64];
    hsize_t dims[4], ld[4];
    snprintf(name, sizeof name, "/%s/images", split);
    uint8_t *px = h5_read(file, name, H5T_NATIVE_UINT8, dims);
    snprintf(name, sizeof name, "/%s/labels", split);
    int32_t *l = h5_read(file, name, H5T_NATIVE_INT32, ld);
    assert_int_equal(dims[0], n);
    assert_int_equal(dims[1], 5); /* H */
    assert_int_equal(dims[2], 4); /* W */
    assert_int_equal(dims[3], 1);
    for (int k = 0; k < n; k++) {
        assert_int_equal(l[k], (first + k) % 3);
        for (int i = 0; i < 20; i++)
            assert_int_equal(px[k * 20 + i], ((first + k) * 11 + i) & 255);
    }
    free(px);
    free(l);
}

static void idx_run(const char *dir, const char *ext, const char *out, const char *extra)
{
    expect_exit(0, NULL, "idx --train-images %s/train-images-idx3-ubyte%s --train-labels "
                "%s/train-labels-idx1-ubyte%s --test-images %s/t10k-images-idx3-ubyte%s "
                "--test-labels %s/t10k-labels-idx1-ubyte%s --out %s %s", dir, ext, dir, ext,
                dir, ext, dir, ext, out, extra);
}

static void test_idx(void **state)
{
    (void)state;
    char plain[2048], gz[2048];
    snprintf(plain, sizeof plain, "%s/idx_plain", g_tmp);
    snprintf(gz, sizeof gz, "%s/idx_gz", g_tmp);
    idx_set(plain, 0);
    idx_set(gz, 1);
    const char *a = tmp_path("idx_plain.h5"), *b = tmp_path("idx_gz.h5");
    idx_run(plain, "", a, "");
    idx_run(gz, ".gz", b, "--val-split 2");
    assert_idx_split(a, "train", 0, 7);
    assert_idx_split(a, "val", 0, 3); /* copy of test */
    assert_idx_split(a, "test", 0, 3);
    assert_idx_split(b, "train", 0, 5);
    assert_idx_split(b, "val", 5, 2);
    assert_idx_split(b, "test", 0, 3);
    assert_stats_exact(a);
    assert_stats_exact(b);
    int num_classes;
    h5_attr(a, "num_classes", H5T_NATIVE_INT, &num_classes);
    assert_int_equal(num_classes, 3);
    expect_exit(0, "OK", "verify %s", b);
}

static void test_idx_bad(void **state)
{
    (void)state;
    char dir[2048], p[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/idx_bad", g_tmp);
    idx_set(dir, 1);
    const char *out = tmp_path("idx_bad.h5");
    /* Labels of a different count than the images. */
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte.gz", dir);
    idx_file(p, 0, 2, 1);
    expect_exit(2, "t10k-labels-idx1-ubyte.gz has 2 labels but --test-images", "idx "
                "--train-images %s/train-images-idx3-ubyte.gz --train-labels "
                "%s/train-labels-idx1-ubyte.gz --test-images %s/t10k-images-idx3-ubyte.gz "
                "--test-labels %s/t10k-labels-idx1-ubyte.gz --out %s", dir, dir, dir, dir, out);
    /* Not IDX at all. */
    snprintf(p, sizeof p, "%s/junk", dir);
    text_write(p, "hello world, not idx");
    expect_exit(2, "junk: not an IDX file", "idx --train-images %s --train-labels "
                "%s/train-labels-idx1-ubyte.gz --test-images %s/t10k-images-idx3-ubyte.gz "
                "--test-labels %s/t10k-labels-idx1-ubyte.gz --out %s", p, dir, dir, dir, out);
    /* A gzip file cut short. */
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(truncate(p, sb.st_size - 12), 0);
    expect_exit(2, "train-images-idx3-ubyte.gz", "idx --train-images %s --train-labels "
                "%s/train-labels-idx1-ubyte.gz --test-images %s/t10k-images-idx3-ubyte.gz "
                "--test-labels %s/t10k-labels-idx1-ubyte.gz --out %s", p, dir, dir, dir, out);
    expect_exit(2, "--test-labels is required", "idx --train-images a --train-labels b "
                "--test-images c --out %s", out);
    assert_false(exists(out));
}

/* ---- synthetic, inspect, verify ------------------------------------------ */

static int files_same_data(const char *a, const char *b, const char *name)
{
    hsize_t da[4], db[4];
    uint8_t *x = h5_read(a, name, H5T_NATIVE_UINT8, da);
    uint8_t *y = h5_read(b, name, H5T_NATIVE_UINT8, db);
    size_t n = da[0] * da[1] * da[2] * da[3];
    int same = memcmp(da, db, sizeof da) == 0 && memcmp(x, y, n) == 0;
    free(x);
    free(y);
    return same;
}

static void test_synthetic(void **state)
{
    (void)state;
    const char *a = tmp_path("syn_a.h5"), *b = tmp_path("syn_b.h5"), *c = tmp_path("syn_c.h5");
    const char *args = "--classes 4 --train 40 --val 12 --test 8 --size 12 --channels 1";
    expect_exit(0, NULL, "synthetic %s --seed 7 --out %s", args, a);
    expect_exit(0, NULL, "synthetic %s --seed 7 --out %s", args, b);
    expect_exit(0, NULL, "synthetic %s --seed 8 --out %s", args, c);
    assert_true(files_same_data(a, b, "/train/images"));
    assert_true(files_same_data(a, b, "/test/images"));
    assert_false(files_same_data(a, c, "/train/images"));
    hsize_t d[4];
    int32_t *l = h5_read(a, "/val/labels", H5T_NATIVE_INT32, d);
    for (int i = 0; i < 12; i++)
        assert_int_equal(l[i], i % 4);
    free(l);
    uint8_t *px = h5_read(a, "/train/images", H5T_NATIVE_UINT8, d);
    assert_int_equal(d[3], 1);
    free(px);
    assert_stats_exact(a);
    expect_exit(0, "/test         8 images", "inspect %s", a);
    expect_exit(2, "--channels 2: expected 1 or 3", "synthetic --channels 2 --out %s", a);
}

static void label_poke(const char *file, const char *dset, hsize_t index, int32_t value)
{
    hid_t f = H5Fopen(file, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, dset, H5P_DEFAULT);
    hid_t fs = H5Dget_space(d);
    hsize_t one = 1;
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &index, NULL, &one, NULL);
    hid_t ms = H5Screate_simple(1, &one, NULL);
    assert_true(H5Dwrite(d, H5T_NATIVE_INT32, ms, fs, H5P_DEFAULT, &value) >= 0);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
    H5Fclose(f);
}

static void copy_file(const char *from, const char *to)
{
    char cmd[2 * PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "cp %s %s", from, to);
    assert_int_equal(system(cmd), 0);
}

/* An existing --out is replaced only with --force; a refused run leaves it
 * as it was and exits 2 before reading any input. */
static void test_force(void **state)
{
    (void)state;
    const char *out = tmp_path("force.h5"), *copy = tmp_path("force_copy.h5");
    expect_exit(0, NULL, "synthetic --classes 2 --train 4 --val 2 --size 4 --out %s", out);
    copy_file(out, copy);
    expect_exit(2, "already exists; pass --force to replace it",
                "synthetic --classes 2 --train 6 --val 2 --size 4 --out %s", out);
    expect_exit(2, "already exists; pass --force to replace it",
                "cifar10 --in %s/no_such_dir --out %s", g_tmp, out);
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "cmp -s %s %s", out, copy);
    assert_int_equal(system(cmd), 0);
    expect_exit(0, NULL, "synthetic --classes 2 --train 6 --val 2 --size 4 --out %s --force",
                out);
    assert_int_not_equal(system(cmd), 0);
}

static void test_verify_bad(void **state)
{
    (void)state;
    const char *good = tmp_path("v_good.h5"), *bad = tmp_path("v_bad.h5");
    expect_exit(0, NULL, "synthetic --classes 3 --train 20 --val 5 --size 8 --out %s", good);
    copy_file(good, bad);
    label_poke(bad, "/train/labels", 13, 3);
    expect_exit(2, "/train/labels[13] = 3 is outside [0, 3)", "verify %s", bad);

    /* jpeg: offsets that go backwards, then bytes that are not a JPEG. */
    const char *jgood = tmp_path("inet_jpeg.h5"), *jbad = tmp_path("v_jbad.h5");
    copy_file(jgood, jbad);
    hid_t f = H5Fopen(jbad, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "/val/offsets", H5P_DEFAULT);
    hid_t space = H5Dget_space(d);
    assert_int_equal(H5Sget_simple_extent_npoints(space), 5); /* 4 val images */
    H5Sclose(space);
    int64_t off[5], broken[5];
    assert_true(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, off) >= 0);
    memcpy(broken, off, sizeof off);
    broken[1] = off[2];
    broken[2] = off[1];
    H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, broken);
    H5Dclose(d);
    H5Fclose(f);
    expect_exit(2, "/val/offsets[2]", "verify %s", jbad);
    copy_file(jgood, jbad);
    f = H5Fopen(jbad, H5F_ACC_RDWR, H5P_DEFAULT);
    d = H5Dopen2(f, "/val/jpeg", H5P_DEFAULT);
    hid_t fs = H5Dget_space(d);
    hsize_t start = (hsize_t)off[1], count = 64;
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL);
    hid_t ms = H5Screate_simple(1, &count, NULL);
    uint8_t zeros[64] = {0};
    H5Dwrite(d, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, zeros);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
    H5Fclose(f);
    expect_exit(2, "/val image 1", "verify %s", jbad);
}

static void test_inspect_bad(void **state)
{
    (void)state;
    const char *txt = tmp_path("not.h5"), *empty = tmp_path("empty.h5");
    text_write(txt, "plain text");
    expect_exit(2, "not.h5: not an HDF5 file", "inspect %s", txt);
    expect_exit(2, "nothing_here.h5: no such file", "verify %s/nothing_here.h5", g_tmp);
    hid_t f = H5Fcreate(empty, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(f);
    expect_exit(2, "root attribute resnet_dataset_version is missing", "inspect %s", empty);
    expect_exit(2, "expected exactly one FILE.h5", "inspect");
}

/* --help of the tool and of each subcommand lists every flag and default. */
static void test_help(void **state)
{
    (void)state;
    static const struct {
        const char *cmd, *flags[16];
    } cases[] = {
        {"imagenet", {"--train", "--val ", "--val-labels", "--synsets", "--out", "--size",
                      "--encoding", "--quality", "--limit-per-class", "--full-decode", "--strict",
                      "--force", "--help"}},
        {"cifar10", {"--in", "--out", "--val-split", "--force", "--help"}},
        {"cifar100", {"--in", "--out", "--val-split", "--force", "--help"}},
        {"idx", {"--train-images", "--train-labels", "--test-images", "--test-labels", "--out",
                 "--val-split", "--classes", "--force", "--help"}},
        {"synthetic", {"--classes", "--train", "--val", "--test", "--size", "--channels",
                       "--seed", "--out", "--force", "--help"}},
        {"inspect", {"--help"}},
        {"verify", {"--help"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out;
        assert_int_equal(prep_run(&out, "%s --help", cases[i].cmd), 0);
        for (int k = 0; k < 16 && cases[i].flags[k]; k++)
            if (!strstr(out, cases[i].flags[k])) {
                fprintf(stderr, "%s --help lacks %s\n", cases[i].cmd, cases[i].flags[k]);
                fail();
            }
        if (strcmp(cases[i].cmd, "inspect") && strcmp(cases[i].cmd, "verify"))
            assert_non_null(strstr(out, "(default: "));
        free(out);
    }
    expect_exit(0, "HDF5 1.10", "--version");
    expect_exit(0, "synthetic", "--help");
    expect_exit(2, "unknown command 'frobnicate'", "frobnicate");
    expect_exit(2, "unknown option '--frob'", "--frob");
}

/* ---- setup ---------------------------------------------------------------- */

static int rm_visit(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int group_setup(void **state)
{
    (void)state;
    char p[PATH_MAX];
    nftw(g_tmp, rm_visit, 16, FTW_DEPTH | FTW_PHYS);
    mkdirs(g_tmp);
    snprintf(p, sizeof p, "%s/tree", g_tmp);
    tree_make(p);
    cifar_make(g_tmp);
    return 0;
}

/* Paths next to this binary: BUILD/tests/test_prep_cli -> BUILD/bin, BUILD/tmp. */
static void paths_init(const char *argv0)
{
    char self[900];
    snprintf(self, sizeof self, "%s", argv0);
    char *dir = dirname(self);
    snprintf(g_bin, sizeof g_bin, "%s/../bin/resnet_prep", dir);
    snprintf(g_tmp, sizeof g_tmp, "%s/../tmp/test_prep_cli", dir);
}

int main(int argc, char **argv)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (argc == 3 && strcmp(argv[1], "--make-tree") == 0) {
        tree_make(argv[2]);
        cifar_make(argv[2]);
        return 0;
    }
    paths_init(argv[0]);
    if (access(g_bin, X_OK) != 0) {
        fprintf(stderr, "test_prep_cli: %s not built (make %s)\n", g_bin, g_bin);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_imagenet_raw),
        cmocka_unit_test(test_imagenet_jpeg),
        cmocka_unit_test(test_imagenet_strict),
        cmocka_unit_test(test_imagenet_val_kaggle),
        cmocka_unit_test(test_imagenet_val_ground_truth),
        cmocka_unit_test(test_imagenet_full_decode),
        cmocka_unit_test(test_imagenet_extreme_aspect),
        cmocka_unit_test(test_imagenet_bad_inputs),
        cmocka_unit_test(test_cifar10),
        cmocka_unit_test(test_cifar100),
        cmocka_unit_test(test_cifar_bad),
        cmocka_unit_test(test_idx),
        cmocka_unit_test(test_idx_bad),
        cmocka_unit_test(test_synthetic),
        cmocka_unit_test(test_force),
        cmocka_unit_test(test_verify_bad),
        cmocka_unit_test(test_inspect_bad),
    };
    return cmocka_run_group_tests_name("prep_cli", tests, group_setup, NULL);
}
