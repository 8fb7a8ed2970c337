/*
 * test_dataset.c - the HDF5 dataset reader on files written by h5py
 * (tests/fixtures/gen_dataset.py): raw RGB, grey and JPEG files open and
 * read to exactly what torchvision's to_tensor + center_crop + normalize
 * make of them; each kind of broken file gives a code-2 Status naming the
 * file and the dataset; the fingerprint follows the data, not the path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/testutil.h"
#include "dataset.h"
#include "loader.h"
#include "h5lock.h"

static char g_dir[512];

static int group_setup(void **state)
{
    (void)state;
    h5_quiet();
    testutil_tmpdir(g_dir, sizeof g_dir, "dataset");
    int rc = testutil_run_fixture("h5py numpy torch torchvision PIL", "gen_dataset.py", "'%s'",
                                  g_dir);
    if (rc != 0) {
        fprintf(stderr, "gen_dataset.py exited with %d\n", rc);
        return -1;
    }
    return 0;
}

static void fixture(char *out, size_t len, const char *name)
{
    testutil_join(out, len, g_dir, name);
}

static void open_ok(Dataset *d, const char *name)
{
    char path[1024];
    Status st = {0};
    fixture(path, sizeof path, name);
    if (dataset_open(d, path, &st) != 0)
        fail_msg("%s: %s", name, st.msg);
}

/* torchvision's output for (n, C, crop, crop), float32 from the fixture. */
static float *expected_load(const char *stem, const char *split, int crop, size_t n)
{
    char name[256], path[1024];
    snprintf(name, sizeof name, "expected_%s_%s_c%d.bin", stem, split, crop);
    fixture(path, sizeof path, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    float *x = malloc(n * sizeof *x);
    size_t got = fread(x, sizeof *x, n, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != n || extra)
        fail_msg("%s does not hold %zu floats", path, n);
    return x;
}

/* Reads all of split through the loader's evaluation mode (centre crop and
 * normalisation, as validation does) in two uneven batches and compares
 * with torchvision. */
static void read_and_compare(Dataset *d, const char *stem, DatasetSplit split, int crop,
                             double atol)
{
    int64_t count = dataset_count(d, split);
    size_t image = (size_t)d->channels * crop * crop;
    size_t n = (size_t)count * image;
    float *got = malloc(n * sizeof *got);
    int32_t *labels = malloc((size_t)count * sizeof *labels);
    Status st = {0};
    LoaderConfig cfg = {.path = d->path, .split = split, .mode = LOADER_EVAL, .crop = crop,
                        .batch = count / 2 + 1, .rank = 0, .world = 1}; /* two uneven batches */
    Loader *l;
    assert_int_equal(loader_create(&l, &cfg, &st), 0);
    int64_t done = 0;
    LoaderBatch b;
    while (loader_next_batch(l, &b, &st) == 0 && b.n > 0) {
        memcpy(got + (size_t)done * image, b.images, (size_t)b.n * image * sizeof *got);
        memcpy(labels + done, b.labels, (size_t)b.n * sizeof *labels);
        done += b.n;
    }
    assert_int_equal(st.code, 0);
    assert_int_equal(done, count);
    loader_free(l);
    float *want = expected_load(stem, dataset_split_name(split), crop, n);
    char name[128];
    snprintf(name, sizeof name, "%s /%s crop %d", stem, dataset_split_name(split), crop);
    assert_close(got, want, n, atol, 0, name);
    assert_memory_equal(labels, dataset_labels(d, split), (size_t)count * sizeof *labels);
    free(want);
    free(labels);
    free(got);
}

static void test_open_raw(void **state)
{
    (void)state;
    Dataset d;
    open_ok(&d, "good_raw.h5");
    assert_int_equal(d.encoding, ENCODING_RAW);
    assert_int_equal(d.num_classes, 10);
    assert_int_equal(d.channels, 3);
    assert_int_equal(d.height, 9);
    assert_int_equal(d.width, 11);
    assert_int_equal(dataset_count(&d, SPLIT_TRAIN), 20);
    assert_int_equal(dataset_count(&d, SPLIT_VAL), 6);
    assert_int_equal(dataset_count(&d, SPLIT_TEST), 4);
    assert_true(d.mean[1] == 0.456 && d.std[2] == 0.225);
    dataset_close(&d);
}

/* Crops with every rounding case of torchvision's centre: offsets (1, 2),
 * (0, 1), none, and 3/2 rounded half-to-even to 2. */
static void test_read_raw_matches_torchvision(void **state)
{
    (void)state;
    Dataset d;
    open_ok(&d, "good_raw.h5");
    read_and_compare(&d, "good_raw", SPLIT_TRAIN, 7, 0);
    read_and_compare(&d, "good_raw", SPLIT_TRAIN, 9, 0);
    read_and_compare(&d, "good_raw", SPLIT_VAL, 8, 0);
    read_and_compare(&d, "good_raw", SPLIT_TEST, 5, 0);
    dataset_close(&d);
}

/* One channel; mean as a scalar attribute and encoding as fixed-length
 * bytes, as a user's h5py script may write them; no /test. */
static void test_read_grey(void **state)
{
    (void)state;
    Dataset d;
    open_ok(&d, "good_grey.h5");
    assert_int_equal(d.channels, 1);
    assert_int_equal(dataset_count(&d, SPLIT_TEST), 0);
    read_and_compare(&d, "good_grey", SPLIT_TRAIN, 5, 0);
    dataset_close(&d);
}

/* libturbojpeg and PIL both use libjpeg-turbo's accurate DCT and fancy
 * upsampling, so the decoded pixels agree. */
static void test_read_jpeg(void **state)
{
    (void)state;
    Dataset d;
    open_ok(&d, "good_jpeg.h5");
    assert_int_equal(d.encoding, ENCODING_JPEG);
    assert_int_equal(dataset_count(&d, SPLIT_TRAIN), 5);
    read_and_compare(&d, "good_jpeg", SPLIT_TRAIN, 12, 0);
    read_and_compare(&d, "good_jpeg", SPLIT_VAL, 12, 0);

    Status st = {0};
    /* image 3 is 13x13 */
    assert_int_equal(dataset_check_image_sizes(&d, SPLIT_TRAIN, 14, 0, 1, &st), EXIT_USAGE);
    print_message("    -> %s\n", st.msg);
    assert_non_null(strstr(st.msg, "good_jpeg.h5: /train/jpeg image 3 is 13x13"));
    dataset_close(&d);
}

static void test_crop_too_large(void **state)
{
    (void)state;
    Dataset d;
    Status st = {0};
    open_ok(&d, "good_raw.h5");
    assert_int_equal(dataset_check_image_sizes(&d, SPLIT_TRAIN, 10, 0, 1, &st), EXIT_USAGE);
    print_message("    -> %s\n", st.msg);
    assert_non_null(strstr(st.msg, "good_raw.h5: crop 10 is larger than the /train images (9x11)"));
    dataset_close(&d);
}

typedef struct {
    const char *file;
    const char *needle;
} BadCase;

static void test_bad_inputs(void **state)
{
    (void)state;
    static const BadCase cases[] = {
        {"bad_dtype.h5", "/train/images has type float32, expected uint8 [N,H,W,C]"},
        {"bad_rank.h5", "/train/images has shape (20, 9, 11), expected uint8 [N,H,W,C]"},
        {"bad_count.h5", "/train/images has 20 images but /train/labels has 19"},
        {"bad_label.h5", "/train/labels[17] = 12 is outside [0, 10)"},
        {"bad_negative_label.h5", "/val/labels[2] = -1 is outside [0, 10)"},
        {"bad_labels_dtype.h5", "/train/labels has type int64, expected int32 [N]"},
        {"bad_channels.h5", "/val/images has 1 channels"},
        {"bad_version.h5", "resnet_dataset_version is 2, this program reads 1"},
        {"bad_encoding.h5", "encoding is \"png\", expected \"raw\" or \"jpeg\""},
        {"bad_std.h5", "std[1] = 0"},
        {"missing_attr.h5", "root attribute num_classes is missing"},
        {"missing_val.h5", "/val is missing"},
        {"missing_images.h5", "/test/images is missing (expected uint8 [N,H,W,C])"},
        {"bad_offsets.h5", "/train/offsets[2]"},
        {"not_hdf5.h5", "not an HDF5 file"},
        {"no_such_file.h5", "cannot read: No such file"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char path[1024];
        Dataset d;
        Status st = {0};
        fixture(path, sizeof path, cases[i].file);
        int rc = dataset_open(&d, path, &st);
        print_message("    -> %s\n", st.msg);
        if (rc != EXIT_USAGE || st.code != EXIT_USAGE)
            fail_msg("%s: dataset_open returned %d, expected %d", cases[i].file, rc, EXIT_USAGE);
        if (strncmp(st.msg, path, strlen(path)) != 0 || !strstr(st.msg, cases[i].needle))
            fail_msg("%s: message \"%s\" lacks \"%s: ... %s\"", cases[i].file, st.msg, path,
                     cases[i].needle);
        assert_null(strchr(st.msg, '\n'));
        assert_int_equal(d.file, -1); /* closed again */
    }
}

static void fingerprint_of(const char *name, char *out, size_t len)
{
    Dataset d;
    open_ok(&d, name);
    dataset_fingerprint(&d, out, len);
    dataset_close(&d);
}

static void test_fingerprint(void **state)
{
    (void)state;
    char a[256], b[256], c[256], j[256];
    fingerprint_of("good_raw.h5", a, sizeof a);
    fingerprint_of("same_raw.h5", b, sizeof b);
    fingerprint_of("relabel_raw.h5", c, sizeof c);
    fingerprint_of("good_jpeg.h5", j, sizeof j);
    print_message("    %s\n    %s\n", a, j);
    assert_string_equal(a, b); /* another path, the same data */
    assert_string_not_equal(a, c);
    assert_non_null(strstr(a, "raw classes=10 C=3 train=20x9x11 val=6x8x8 test=4x8x8"));
    assert_non_null(strstr(j, "jpeg classes=10 C=3 train=5/"));
    assert_non_null(strstr(a, "labels=fnv1a64:"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_raw),
        cmocka_unit_test(test_read_raw_matches_torchvision),
        cmocka_unit_test(test_read_grey),
        cmocka_unit_test(test_read_jpeg),
        cmocka_unit_test(test_crop_too_large),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_fingerprint),
    };
    return cmocka_run_group_tests_name("dataset", tests, group_setup, NULL);
}
