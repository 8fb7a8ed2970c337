/*
 * test_h5util.c - the shared HDF5 reading helpers on a file written here
 * with the HDF5 C API: shapes and types as text, attributes and datasets
 * of the right and wrong kinds, and what each kind of problem reports,
 * and the refusal of data stored outside the file (external links,
 * external raw storage, virtual datasets) and of paths that are not regular
 * files. The targets that would block are FIFOs; alarm() bounds a
 * regression that reads them.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <hdf5.h>

#include "common/testutil.h"
#include "h5lock.h"
#include "h5util.h"

static char g_path[1024];
static char g_dir[512];

static void attr_put(hid_t loc, const char *name, hid_t type, int n, const void *value)
{
    hsize_t dim = (hsize_t)n;
    hid_t space = n ? H5Screate_simple(1, &dim, NULL) : H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(attr >= 0);
    assert_true(H5Awrite(attr, type, value) >= 0);
    H5Aclose(attr);
    H5Sclose(space);
}

/* (2, 3) float32 "x", a dangling soft link "dangling", and root
 * attributes: i int64, v 3 doubles, s variable and fs fixed strings. */
static int group_setup(void **state)
{
    (void)state;
    h5_quiet();
    testutil_tmpdir(g_dir, sizeof g_dir, "h5util");
    testutil_join(g_path, sizeof g_path, g_dir, "fixture.h5");
    h5_lock();
    hid_t f = H5Fcreate(g_path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[2] = {2, 3};
    float x[6] = {0, 1, 2, 3, 4, 5};
    hid_t space = H5Screate_simple(2, dims, NULL);
    hid_t ds = H5Dcreate2(f, "x", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
    H5Dclose(ds);
    H5Sclose(space);
    H5Lcreate_soft("/nowhere", f, "dangling", H5P_DEFAULT, H5P_DEFAULT);
    int64_t i = 42;
    double v[3] = {0.5, 1.5, 2.5};
    attr_put(f, "i", H5T_NATIVE_INT64, 0, &i);
    attr_put(f, "v", H5T_NATIVE_DOUBLE, 3, v);
    hid_t vstr = H5Tcopy(H5T_C_S1), fstr = H5Tcopy(H5T_C_S1);
    H5Tset_size(vstr, H5T_VARIABLE);
    H5Tset_size(fstr, 4);
    const char *s = "hello";
    attr_put(f, "s", vstr, 0, &s);
    attr_put(f, "fs", fstr, 0, "jpeg");
    H5Tclose(vstr);
    H5Tclose(fstr);
    int ok = H5Fclose(f) >= 0;
    h5_unlock();
    return ok ? 0 : -1;
}

static hid_t fixture_open(void)
{
    int is_h5 = 0;
    h5_lock();
    hid_t f = h5util_file_open(g_path, &is_h5);
    h5_unlock();
    assert_true(f >= 0);
    assert_int_equal(is_h5, 1);
    return f;
}

static void fixture_close(hid_t f)
{
    h5_lock();
    h5util_file_close(&f);
    h5_unlock();
    assert_true(f == -1);
}

static void test_shape_string(void **state)
{
    (void)state;
    char s[H5UTIL_DESC_MAX];
    int64_t dims[4] = {16, 8, 3, 3};
    h5util_shape_string(s, sizeof s, 4, dims);
    assert_string_equal(s, "(16, 8, 3, 3)");
    h5util_shape_string(s, sizeof s, 1, dims);
    assert_string_equal(s, "(16,)");
    h5util_shape_string(s, sizeof s, 0, NULL);
    assert_string_equal(s, "()");
}

static void test_type_string(void **state)
{
    (void)state;
    char s[H5UTIL_DESC_MAX];
    h5_lock();
    h5util_type_string(s, sizeof s, H5T_STD_U8LE);
    assert_string_equal(s, "uint8");
    h5util_type_string(s, sizeof s, H5T_STD_I64BE);
    assert_string_equal(s, "int64");
    h5util_type_string(s, sizeof s, H5T_IEEE_F32LE);
    assert_string_equal(s, "float32");
    h5util_type_string(s, sizeof s, H5T_C_S1);
    assert_string_equal(s, "string");
    hid_t compound = H5Tcreate(H5T_COMPOUND, 8);
    H5Tinsert(compound, "r", 0, H5T_NATIVE_FLOAT);
    H5Tinsert(compound, "i", 4, H5T_NATIVE_FLOAT);
    h5util_type_string(s, sizeof s, compound);
    H5Tclose(compound);
    h5_unlock();
    assert_string_equal(s, "a non-numeric type");
}

static void test_file_open(void **state)
{
    (void)state;
    char text[1024];
    testutil_join(text, sizeof text, g_dir, "text.h5");
    FILE *t = fopen(text, "w");
    assert_non_null(t);
    fputs("not HDF5\n", t);
    fclose(t);
    int is_h5 = 1;
    h5_lock();
    hid_t f = h5util_file_open(text, &is_h5);
    h5_unlock();
    assert_true(f < 0);
    assert_int_equal(is_h5, 0);
    fixture_close(fixture_open());
}

static void test_attr_read(void **state)
{
    (void)state;
    hid_t f = fixture_open();
    H5utilFound found;
    int64_t i = 0;
    double v[3] = {0};
    char s[16];
    h5_lock();
    assert_int_equal(h5util_attr_read(f, "i", H5T_INTEGER, 1, H5T_NATIVE_INT64, &i, &found), 0);
    assert_int_equal(i, 42);
    assert_int_equal(h5util_attr_read(f, "v", H5T_FLOAT, 3, H5T_NATIVE_DOUBLE, v, &found), 0);
    assert_int_equal(found.npoints, 3);
    assert_true(v[2] == 2.5);
    assert_int_equal(h5util_attr_read_string(f, "s", s, sizeof s, &found), 0);
    assert_string_equal(s, "hello");
    assert_int_equal(h5util_attr_read_string(f, "fs", s, 3, &found), 0);
    assert_string_equal(s, "jp"); /* truncated to len */

    assert_int_equal(h5util_attr_read(f, "v", H5T_FLOAT, 1, H5T_NATIVE_DOUBLE, v, &found), -1);
    assert_int_equal(found.problem, H5UTIL_WRONG_TYPE);
    assert_int_equal(found.npoints, 3);
    assert_string_equal(found.type, "float64");
    assert_int_equal(h5util_attr_read(f, "i", H5T_FLOAT, 1, H5T_NATIVE_DOUBLE, v, &found), -1);
    assert_int_equal(found.problem, H5UTIL_WRONG_TYPE);
    assert_int_equal(found.cls, H5T_INTEGER);
    assert_int_equal(h5util_attr_read_string(f, "i", s, sizeof s, &found), -1);
    assert_int_equal(found.problem, H5UTIL_WRONG_TYPE);
    assert_int_equal(h5util_attr_read(f, "nope", H5T_FLOAT, 1, H5T_NATIVE_DOUBLE, v, &found),
                     -1);
    assert_int_equal(found.problem, H5UTIL_MISSING);
    h5_unlock();
    fixture_close(f);
}

static void test_dataset_open(void **state)
{
    (void)state;
    static const H5utilType float32 = {.cls = H5T_FLOAT, .size = 4};
    static const H5utilType any_int = {.cls = H5T_INTEGER};
    static const H5utilType float64 = {.cls = H5T_FLOAT, .size = 8};
    hid_t f = fixture_open();
    H5utilFound found;
    float x[6] = {0};
    h5_lock();
    assert_int_equal(h5util_link_exists(f, "x"), 1);
    assert_int_equal(h5util_link_exists(f, "no/such/x"), 0);
    hid_t ds = h5util_dataset_open(f, "x", float32, &found);
    assert_true(ds >= 0);
    assert_int_equal(found.problem, H5UTIL_OK);
    assert_int_equal(found.rank, 2);
    assert_int_equal(found.dims[0], 2);
    assert_int_equal(found.dims[1], 3);
    assert_int_equal(found.npoints, 6);
    assert_int_equal(h5util_dataset_read(ds, H5T_NATIVE_FLOAT, x), 0);
    assert_true(x[5] == 5.0f);
    h5util_dataset_close(&ds);
    assert_true(ds == -1);

    assert_true(h5util_dataset_open(f, "x", any_int, &found) < 0);
    assert_int_equal(found.problem, H5UTIL_WRONG_TYPE);
    assert_string_equal(found.type, "float32");
    assert_true(h5util_dataset_open(f, "x", float64, &found) < 0);
    assert_int_equal(found.problem, H5UTIL_WRONG_TYPE);
    assert_true(h5util_dataset_open(f, "y", float32, &found) < 0);
    assert_int_equal(found.problem, H5UTIL_MISSING);
    assert_true(h5util_dataset_open(f, "dangling", float32, &found) < 0);
    assert_int_equal(found.problem, H5UTIL_UNOPENABLE);
    h5_unlock();
    fixture_close(f);
}

/* A 1-D uint8 dataset of 8 values created with dcpl. */
static void dataset_put(hid_t f, const char *name, hid_t dcpl)
{
    hsize_t dim = 8;
    hid_t space = H5Screate_simple(1, &dim, NULL);
    hid_t ds = H5Dcreate2(f, name, H5T_STD_U8LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    assert_true(ds >= 0);
    H5Dclose(ds);
    H5Sclose(space);
}

/* refuse.h5: "elink" -> pipe.h5:/x and group link "eg" -> pipe.h5:/, where
 * pipe.h5 is a FIFO; "ext" with external raw storage in a FIFO; "virt" a
 * virtual dataset over other.h5:/x. */
static void refuse_fixture(char *path, size_t len)
{
    char other[1024], pipe_h5[1024], raw[1024];
    testutil_join(other, sizeof other, g_dir, "other.h5");
    testutil_join(pipe_h5, sizeof pipe_h5, g_dir, "pipe.h5");
    testutil_join(raw, sizeof raw, g_dir, "raw.bin");
    testutil_join(path, len, g_dir, "refuse.h5");
    h5_lock();
    hid_t o = H5Fcreate(other, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    dataset_put(o, "x", H5P_DEFAULT);
    H5Fclose(o);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(H5Lcreate_external(pipe_h5, "/x", f, "elink", H5P_DEFAULT, H5P_DEFAULT) >= 0);
    assert_true(H5Lcreate_external(pipe_h5, "/", f, "eg", H5P_DEFAULT, H5P_DEFAULT) >= 0);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    assert_true(H5Pset_external(dcpl, raw, 0, 8) >= 0);
    dataset_put(f, "ext", dcpl);
    H5Pclose(dcpl);
    hsize_t dim = 8;
    hid_t vspace = H5Screate_simple(1, &dim, NULL), sspace = H5Screate_simple(1, &dim, NULL);
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    assert_true(H5Pset_virtual(dcpl, vspace, other, "/x", sspace) >= 0);
    dataset_put(f, "virt", dcpl);
    H5Pclose(dcpl);
    H5Sclose(vspace);
    H5Sclose(sspace);
    assert_true(H5Fclose(f) >= 0);
    h5_unlock();
    unlink(pipe_h5);
    unlink(raw);
    assert_int_equal(mkfifo(pipe_h5, 0600), 0);
    assert_int_equal(mkfifo(raw, 0600), 0);
}

static void test_refused_storage(void **state)
{
    (void)state;
    static const H5utilType u8 = {H5T_INTEGER, 1, H5T_SGN_NONE};
    char path[1024];
    refuse_fixture(path, sizeof path);
    alarm(60); /* a regression would block on a FIFO: fail, do not hang */
    int is_h5 = 0;
    h5_lock();
    hid_t f = h5util_file_open(path, &is_h5);
    assert_true(f >= 0);
    static const struct {
        const char *name, *storage;
    } cases[] = {{"elink", "an external link"}, {"eg/x", "an external link"},
                 {"/eg/x", "an external link"}, {"ext", "external raw storage"},
                 {"virt", "a virtual dataset"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        H5utilFound found;
        hid_t ds = h5util_dataset_open(f, cases[i].name, u8, &found);
        if (ds >= 0 || found.problem != H5UTIL_REFUSED_STORAGE) {
            fprintf(stderr, "%s: opened (%d), problem %d\n", cases[i].name, ds >= 0,
                    (int)found.problem);
            fail();
        }
        assert_string_equal(found.storage, cases[i].storage);
    }
    h5util_file_close(&f);
    h5_unlock();
    alarm(0);
}

/* A FIFO or a directory is refused before anything opens it. */
static void test_file_open_not_regular(void **state)
{
    (void)state;
    char fifo[1024];
    testutil_join(fifo, sizeof fifo, g_dir, "fifo.h5");
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(60);
    const char *paths[] = {fifo, g_dir};
    for (int i = 0; i < 2; i++) {
        int is_h5 = 0;
        h5_lock();
        hid_t f = h5util_file_open(paths[i], &is_h5);
        h5_unlock();
        assert_true(f < 0);
        assert_int_equal(is_h5, H5UTIL_NOT_REGULAR);
    }
    alarm(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_string),
        cmocka_unit_test(test_type_string),
        cmocka_unit_test(test_file_open),
        cmocka_unit_test(test_attr_read),
        cmocka_unit_test(test_dataset_open),
        cmocka_unit_test(test_refused_storage),
        cmocka_unit_test(test_file_open_not_regular),
    };
    return cmocka_run_group_tests_name("h5util", tests, group_setup, NULL);
}
