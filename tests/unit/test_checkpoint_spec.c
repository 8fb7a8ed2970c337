/*
 * test_checkpoint_spec.c - the root attributes that describe a checkpoint's
 * model and input (stem, input_size, resize_size, mean, std, class_names):
 * written when known, read back by checkpoint_read_spec, each optional (a
 * file without them, as older versions wrote, still loads), each checked
 * when present; the class names fit an attribute up to the documented
 * count; and resnet_predict's ranking of classes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <hdf5.h>

#include "checkpoint.h"
#include "common/testutil.h"
#include "h5lock.h"
#include "predict.h"

static char g_dir[512];

static int group_setup(void **state)
{
    (void)state;
    h5_quiet();
    testutil_tmpdir(g_dir, sizeof g_dir, "checkpoint_spec");
    return 0;
}

static const char *const NAMES[] = {"T-shirt/top", "Trouser", "caf\xc3\xa9"};

static void meta_described(CheckpointMeta *m)
{
    checkpoint_meta_init(m);
    snprintf(m->arch, sizeof m->arch, "tiny");
    m->num_classes = 3;
    m->step = 40;
    m->epoch = 2;
    m->global_batch = 8;
    m->world_size = 1;
    m->small_stem = 1;
    m->input_size = 20;
    m->resize_size = 24;
    m->channels = 3;
    double mean[3] = {0.485, 0.456, 0.406}, std[3] = {0.229, 0.224, 0.225};
    memcpy(m->mean, mean, sizeof mean);
    memcpy(m->std, std, sizeof std);
    m->num_class_names = 3;
    m->class_names = NAMES;
}

static void write_file(const char *name, const CheckpointMeta *m, char *path, size_t len)
{
    Params p;
    testutil_params_tiny(&p, dnnl_oihw, 1);
    testutil_join(path, len, g_dir, name);
    Status st = {0};
    if (checkpoint_write(path, &p, m, &st) != 0)
        fail_msg("writing %s: %s", path, st.msg);
    params_free(&p);
}

static void read_spec_ok(const char *path, CheckpointSpec *s)
{
    Status st = {0};
    if (checkpoint_read_spec(path, s, &st) != 0)
        fail_msg("reading %s: %s", path, st.msg);
}

/* The file still loads for a resume and for weights only. */
static void loads_fully(const char *path)
{
    Params p;
    testutil_params_tiny(&p, dnnl_oihw, 2);
    CheckpointMeta m;
    Status st = {0};
    if (checkpoint_read(path, &p, &m, CKPT_FULL, &st) != 0)
        fail_msg("reading %s: %s", path, st.msg);
    params_free(&p);
}

static void test_round_trip(void **state)
{
    (void)state;
    CheckpointMeta m;
    char path[1024];
    meta_described(&m);
    write_file("described.h5", &m, path, sizeof path);
    CheckpointSpec s;
    read_spec_ok(path, &s);
    assert_string_equal(s.arch, "tiny");
    assert_int_equal(s.num_classes, 3);
    assert_int_equal(s.small_stem, 1);
    assert_int_equal(s.input_size, 20);
    assert_int_equal(s.resize_size, 24);
    assert_int_equal(s.channels, 3);
    assert_int_equal(s.step, 40);
    assert_int_equal(s.epoch, 1); /* written at the end of epoch 1: the next step is epoch 2's */
    for (int c = 0; c < 3; c++) {
        assert_true(s.mean[c] == m.mean[c]);
        assert_true(s.std[c] == m.std[c]);
    }
    assert_int_equal(s.num_class_names, 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(s.class_names[i], NAMES[i]);
    checkpoint_spec_free(&s);
    loads_fully(path);

    m.epoch_step = 5; /* mid-epoch: the last step and the next are in epoch 2 */
    write_file("mid_epoch.h5", &m, path, sizeof path);
    read_spec_ok(path, &s);
    assert_int_equal(s.epoch, 2);
    checkpoint_spec_free(&s);
}

/* Replaces (or with n < 0 deletes) root attribute name: n values of type
 * (n 0: a scalar). */
static void attr_replace(const char *path, const char *name, hid_t type, hid_t mem, int n,
                         const void *value)
{
    h5_lock();
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    if (H5Aexists(f, name) > 0)
        assert_true(H5Adelete(f, name) >= 0);
    if (n >= 0) {
        hsize_t dims = (hsize_t)n;
        hid_t space = n ? H5Screate_simple(1, &dims, NULL) : H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate2(f, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(a >= 0);
        assert_true(H5Awrite(a, mem, value) >= 0);
        H5Aclose(a);
        H5Sclose(space);
    }
    assert_true(H5Fclose(f) >= 0);
    h5_unlock();
}

static hid_t vlen_string(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    return t;
}

/* What older versions wrote (no description) and what a torchvision export
 * holds (no root attributes at all): every field reads as absent. */
static void test_absent_attributes(void **state)
{
    (void)state;
    CheckpointMeta m;
    char path[1024];
    meta_described(&m);
    m.input_size = m.resize_size = m.channels = m.num_class_names = 0;
    m.class_names = NULL;
    write_file("older.h5", &m, path, sizeof path);
    attr_replace(path, "stem", -1, -1, -1, NULL);
    CheckpointSpec s;
    read_spec_ok(path, &s);
    assert_string_equal(s.arch, "tiny");
    assert_int_equal(s.small_stem, -1);
    assert_int_equal(s.input_size, 0);
    assert_int_equal(s.resize_size, 0);
    assert_int_equal(s.channels, 0);
    assert_null(s.class_names);
    checkpoint_spec_free(&s);
    loads_fully(path);

    static const char *const all[] = {"format_version", "arch", "num_classes", "epoch",
                                      "epoch_step", "step", "lr", "global_batch", "seed",
                                      "world_size", "best_metric", "dataset_fingerprint",
                                      "version", "command_line", "validation_pending"};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        attr_replace(path, all[i], -1, -1, -1, NULL);
    read_spec_ok(path, &s);
    assert_string_equal(s.arch, "");
    assert_int_equal(s.num_classes, 0);
    assert_int_equal(s.step, -1);
    assert_int_equal(s.epoch, -1);
    checkpoint_spec_free(&s);
}

static void expect_spec_error(const char *path, const char *needle)
{
    CheckpointSpec s;
    Status st = {0};
    assert_int_equal(checkpoint_read_spec(path, &s, &st), EXIT_USAGE);
    checkpoint_spec_free(&s);
    print_message("    -> %s\n", st.msg);
    assert_non_null(strstr(st.msg, path));
    assert_null(strchr(st.msg, '\n'));
    if (!strstr(st.msg, needle))
        fail_msg("message \"%s\" lacks \"%s\"", st.msg, needle);
}

/* A present attribute must have its type and lie in its range. */
static void test_bad_attributes(void **state)
{
    (void)state;
    CheckpointMeta m;
    char path[1024];
    meta_described(&m);
    write_file("bad.h5", &m, path, sizeof path);
    hid_t str = vlen_string();
    const char *tiny = "tiny";
    attr_replace(path, "stem", str, str, 0, &tiny);
    expect_spec_error(path, "root attribute stem is \"tiny\", expected \"imagenet\" or \"small\"");
    const char *small = "small";
    attr_replace(path, "stem", str, str, 0, &small);

    int64_t zero = 0;
    attr_replace(path, "input_size", H5T_STD_I64LE, H5T_NATIVE_INT64, 0, &zero);
    expect_spec_error(path, "root attribute input_size is 0, expected an integer from 1 to");
    int64_t big = 32;
    attr_replace(path, "input_size", H5T_STD_I64LE, H5T_NATIVE_INT64, 0, &big);
    expect_spec_error(path, "input_size 32 is larger than resize_size 24");
    int64_t ok = 20;
    attr_replace(path, "input_size", H5T_STD_I64LE, H5T_NATIVE_INT64, 0, &ok);

    double two[2] = {0.5, 0.5}, negative[3] = {0.2, -1, 0.2};
    attr_replace(path, "mean", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, two);
    expect_spec_error(path, "root attributes mean and std have 2 and 3 values");
    attr_replace(path, "mean", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 3, m.mean);
    attr_replace(path, "std", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 3, negative);
    expect_spec_error(path, "std[1] = -1: expected finite values with std > 0");
    attr_replace(path, "std", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 3, m.std);

    attr_replace(path, "class_names", str, str, 2, NAMES);
    expect_spec_error(path, "root attribute class_names has 2 names, but num_classes is 3");
    attr_replace(path, "class_names", H5T_STD_I64LE, H5T_NATIVE_INT64, 0, &ok);
    expect_spec_error(path, "root attribute class_names has type int64");
    H5Tclose(str);
}

/* Up to CHECKPOINT_CLASS_NAMES_MAX names fit an attribute; more are left
 * out rather than failing the write. */
static void test_many_class_names(void **state)
{
    (void)state;
    int n = CHECKPOINT_CLASS_NAMES_MAX + 1;
    char **names = calloc((size_t)n, sizeof *names);
    for (int i = 0; i < n; i++) {
        names[i] = malloc(32);
        snprintf(names[i], 32, "n%08d a longer class name", i);
    }
    CheckpointMeta m;
    char path[1024];
    CheckpointSpec s;
    meta_described(&m);
    m.num_classes = m.num_class_names = n - 1;
    m.class_names = (const char *const *)names;
    write_file("names-max.h5", &m, path, sizeof path);
    read_spec_ok(path, &s);
    assert_int_equal(s.num_class_names, n - 1);
    assert_string_equal(s.class_names[n - 2], names[n - 2]);
    checkpoint_spec_free(&s);

    m.num_classes = m.num_class_names = n;
    write_file("names-over.h5", &m, path, sizeof path);
    read_spec_ok(path, &s);
    assert_null(s.class_names);
    assert_int_equal(s.num_classes, n);
    checkpoint_spec_free(&s);
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Most probable first; equal probabilities keep the lower index first. */
static void test_top_classes(void **state)
{
    (void)state;
    const double probs[6] = {0.1, 0.3, 0.05, 0.3, 0.2, 0.05};
    int top[6];
    predictor_top(probs, 6, 6, top);
    const int want[6] = {1, 3, 4, 0, 2, 5};
    for (int i = 0; i < 6; i++)
        assert_int_equal(top[i], want[i]);
    predictor_top(probs, 6, 1, top);
    assert_int_equal(top[0], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_absent_attributes),
        cmocka_unit_test(test_bad_attributes),
        cmocka_unit_test(test_many_class_names),
        cmocka_unit_test(test_top_classes),
    };
    return cmocka_run_group_tests_name("checkpoint_spec", tests, group_setup, NULL);
}
