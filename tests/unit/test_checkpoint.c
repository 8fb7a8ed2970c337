/*
 * test_checkpoint.c - HDF5 checkpoints: a registry with a blocked layout
 * round-trips through plain PyTorch tensors; every kind of bad file gives a
 * Status naming the file and the tensor; writes replace files only by
 * rename; find_latest skips damaged files; torchvision state_dicts load and
 * our files load into torch (tests/fixtures/ckpt_interop.py).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <hdf5.h>
#include <omp.h>

#include "checkpoint.h"
#include "common/testutil.h"
#include "h5lock.h"

static char g_dir[512];

static int group_setup(void **state)
{
    (void)state;
    h5_quiet();
    testutil_tmpdir(g_dir, sizeof g_dir, "checkpoint");
    return 0;
}

static void write_ok(const char *path, const Params *p, const CheckpointMeta *m)
{
    Status st = {0};
    if (checkpoint_write(path, p, m, &st) != 0)
        fail_msg("writing %s: %s", path, st.msg);
}

static void meta_example(CheckpointMeta *m)
{
    checkpoint_meta_init(m);
    snprintf(m->arch, sizeof m->arch, "tiny");
    m->num_classes = 10;
    m->epoch = 3;
    m->epoch_step = 17;
    m->step = 1234;
    m->lr = 0.0125;
    m->global_batch = 256;
    m->seed = 18446744073709551557ull; /* above INT64_MAX: stored as uint64 */
    m->world_size = 4;
    m->best_metric = 0.625;
    snprintf(m->dataset_fingerprint, sizeof m->dataset_fingerprint, "train=100 labels=abc");
    snprintf(m->command_line, sizeof m->command_line, "resnet_dist --arch \"tiny\" --lr 0.1");
    m->has_plateau = 1;
    plateau_init(&m->plateau, PLATEAU_MAX);
    m->plateau.patience = 3;
    m->plateau.threshold_mode = THRESHOLD_ABS;
    m->plateau.cooldown = 2;
    m->plateau.min_lr = 1e-5;
    m->plateau.num_bad_epochs = 1;
    m->plateau.cooldown_counter = 1;
    m->plateau.last_epoch = 3;
    /* best stays -inf: the state before any validation must survive too */
}

static void write_example(const char *name, char *path, size_t len, uint32_t seed)
{
    Params p;
    CheckpointMeta m;
    testutil_params_tiny(&p, dnnl_OIhw16i16o, seed);
    meta_example(&m);
    testutil_join(path, len, g_dir, name);
    write_ok(path, &p, &m);
    params_free(&p);
}

/* Reads path into a fresh tiny registry and expects a code-2 Status whose
 * message names the file and contains every needle. */
static void expect_error(const char *path, Params *p, CheckpointPart what, const char *needle1,
                         const char *needle2)
{
    Status st = {0};
    CheckpointMeta m;
    int rc = checkpoint_read(path, p, &m, what, &st);
    print_message("    -> %s\n", st.msg);
    assert_int_equal(rc, EXIT_USAGE);
    assert_int_equal(st.code, EXIT_USAGE);
    assert_non_null(strstr(st.msg, path));
    assert_null(strchr(st.msg, '\n'));
    if (needle1 && !strstr(st.msg, needle1))
        fail_msg("message \"%s\" lacks \"%s\"", st.msg, needle1);
    if (needle2 && !strstr(st.msg, needle2))
        fail_msg("message \"%s\" lacks \"%s\"", st.msg, needle2);
}

static void expect_error_tiny(const char *path, CheckpointPart what, const char *needle1,
                              const char *needle2)
{
    Params p;
    testutil_params_tiny(&p, dnnl_oihw, 0);
    expect_error(path, &p, what, needle1, needle2);
    params_free(&p);
}

static void expect_ok(const char *path, Params *p, CheckpointMeta *m, CheckpointPart what)
{
    Status st = {0};
    int rc = checkpoint_read(path, p, m, what, &st);
    if (rc != 0)
        fail_msg("reading %s: %s", path, st.msg);
}

static void expect_ok_tiny(const char *path, CheckpointPart what)
{
    Params p;
    testutil_params_tiny(&p, dnnl_oihw, 0);
    expect_ok(path, &p, NULL, what);
    params_free(&p);
}

/* ---- file surgery with the HDF5 API, as a user's tool might do ---- */

static hid_t h5_open_rw(const char *path)
{
    h5_lock();
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    h5_unlock();
    assert_true(f >= 0);
    return f;
}

static void h5_close(hid_t f)
{
    h5_lock();
    assert_true(H5Fclose(f) >= 0);
    h5_unlock();
}

static void h5_unlink(const char *path, const char *name)
{
    hid_t f = h5_open_rw(path);
    h5_lock();
    assert_true(H5Ldelete(f, name, H5P_DEFAULT) >= 0);
    h5_unlock();
    h5_close(f);
}

static void h5_attr_delete(const char *path, const char *obj, const char *name)
{
    hid_t f = h5_open_rw(path);
    h5_lock();
    assert_true(H5Adelete_by_name(f, obj, name, H5P_DEFAULT) >= 0);
    h5_unlock();
    h5_close(f);
}

/* Replaces dataset name by a float64 one of the same shape. */
static void h5_make_float64(const char *path, const char *name)
{
    hid_t f = h5_open_rw(path);
    h5_lock();
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t space = H5Dget_space(ds);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    double *data = calloc((size_t)n, sizeof *data);
    H5Dclose(ds);
    assert_true(H5Ldelete(f, name, H5P_DEFAULT) >= 0);
    ds = H5Dcreate2(f, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(ds >= 0);
    assert_true(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    H5Dclose(ds);
    H5Sclose(space);
    h5_unlock();
    free(data);
    h5_close(f);
}

static void file_truncate_half(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(truncate(path, sb.st_size / 2), 0);
}

static void file_write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* ---- round trip ---- */

static void params_compare(const Params *a, const Params *b)
{
    assert_int_equal(a->count, b->count);
    for (int i = 0; i < a->count; i++) {
        size_t n = a->info[i].numel;
        float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
        for (int buf = BUF_VALUE; buf <= BUF_MOMENTUM; buf += BUF_MOMENTUM - BUF_VALUE) {
            params_get_plain(a, i, (ParamBuffer)buf, x);
            params_get_plain(b, i, (ParamBuffer)buf, y);
            assert_close(y, x, n, 0, 0, a->info[i].name);
        }
        free(x);
        free(y);
    }
    assert_int_equal(a->bn_count, b->bn_count);
    for (int i = 0; i < a->bn_count; i++) {
        size_t c = a->bn[i].channels;
        assert_close(params_bn_running_mean(b, i), params_bn_running_mean(a, i), c, 0, 0, "running_mean");
        assert_close(params_bn_running_var(b, i), params_bn_running_var(a, i), c, 0, 0, "running_var");
    }
    assert_int_equal(a->num_batches_tracked, b->num_batches_tracked);
}

static void meta_compare(const CheckpointMeta *a, const CheckpointMeta *b)
{
    assert_string_equal(a->arch, b->arch);
    assert_int_equal(a->num_classes, b->num_classes);
    assert_int_equal(a->epoch, b->epoch);
    assert_int_equal(a->epoch_step, b->epoch_step);
    assert_int_equal(a->step, b->step);
    assert_true(a->lr == b->lr);
    assert_int_equal(a->global_batch, b->global_batch);
    assert_true(a->seed == b->seed);
    assert_int_equal(a->world_size, b->world_size);
    assert_true(a->best_metric == b->best_metric);
    assert_string_equal(a->dataset_fingerprint, b->dataset_fingerprint);
    assert_string_equal(a->command_line, b->command_line);
    assert_int_equal(a->has_plateau, b->has_plateau);
    assert_memory_equal(&a->plateau, &b->plateau, sizeof a->plateau);
}

static void test_round_trip_blocked(void **state)
{
    (void)state;
    Params a, b, c;
    CheckpointMeta m, back;
    testutil_params_tiny(&a, dnnl_OIhw16i16o, 5);
    int conv = params_find(&a, "layer1.0.conv1.weight");
    /* (16, 8, 3, 3) blocked by 16 input channels: padded, not plain */
    assert_true(a.info[conv].span > a.info[conv].numel);
    meta_example(&m);
    char path[1024];
    testutil_join(path, sizeof path, g_dir, "roundtrip.h5");
    write_ok(path, &a, &m);

    testutil_params_tiny(&b, dnnl_OIhw16i16o, 0);
    expect_ok(path, &b, &back, CKPT_FULL);
    params_compare(&a, &b);
    meta_compare(&m, &back);
    assert_true(back.version[0] != '\0'); /* filled in with the library versions */
    assert_non_null(strstr(back.version, "oneDNN"));

    /* the same file into a plain-layout registry: layouts do not leak */
    testutil_params_tiny(&c, dnnl_oihw, 0);
    expect_ok(path, &c, NULL, CKPT_FULL);
    params_compare(&a, &c);
    params_free(&a);
    params_free(&b);
    params_free(&c);
}

/* The weight average: written as /model_ema when the registry keeps one,
 * loaded back on a full read into a registry with EMA buffers (has_ema),
 * skipped by one without; CKPT_EMA_WEIGHTS loads it into the weights; a
 * file without it reads fully (has_ema 0) but refuses CKPT_EMA_WEIGHTS. */
/* Buffer bx of b holds what buffer ax of a holds, tensor by tensor. */
static void tensors_equal(const Params *a, ParamBuffer ax, const Params *b, ParamBuffer bx)
{
    float x[2048], y[2048];
    for (int i = 0; i < a->count; i++) {
        params_get_plain(a, i, ax, x);
        params_get_plain(b, i, bx, y);
        assert_close(y, x, a->info[i].numel, 0, 0, a->info[i].name);
    }
}

static void test_ema_round_trip(void **state)
{
    (void)state;
    Params a, b, c;
    CheckpointMeta m, back;
    testutil_params_tiny(&a, dnnl_OIhw16i16o, 5);
    params_allocate_ema(&a);
    float plain[2048];
    for (int i = 0; i < a.count; i++) {
        params_get_plain(&a, i, BUF_VALUE, plain);
        for (size_t k = 0; k < a.info[i].numel; k++)
            plain[k] = 0.5f * plain[k] + 0.125f;
        params_set_plain(&a, i, BUF_EMA, plain);
    }
    for (size_t k = 0; k < a.state_total; k++)
        a.ema_state[k] = 0.5f * a.state[k] + 0.25f;
    a.ema_num_batches_tracked = a.num_batches_tracked + 7;
    meta_example(&m);
    m.ema_decay = 0.999;
    m.ema_every = 4;
    char path[1024];
    testutil_join(path, sizeof path, g_dir, "ema.h5");
    write_ok(path, &a, &m);

    testutil_params_tiny(&b, dnnl_oihw, 0);
    params_allocate_ema(&b);
    expect_ok(path, &b, &back, CKPT_FULL);
    assert_int_equal(back.has_ema, 1);
    params_compare(&a, &b);
    tensors_equal(&a, BUF_EMA, &b, BUF_EMA);
    assert_close(b.ema_state, a.ema_state, a.state_total, 0, 0, "averaged BN statistics");
    assert_int_equal(b.ema_num_batches_tracked, a.ema_num_batches_tracked);
    params_free(&b);

    testutil_params_tiny(&c, dnnl_oihw, 0); /* no --model-ema: /model only */
    expect_ok(path, &c, &back, CKPT_FULL);
    assert_int_equal(back.has_ema, 0);
    params_compare(&a, &c);
    params_free(&c);

    testutil_params_tiny(&c, dnnl_oihw, 0); /* --init-from-ema */
    expect_ok(path, &c, NULL, CKPT_EMA_WEIGHTS);
    tensors_equal(&a, BUF_EMA, &c, BUF_VALUE);
    assert_close(c.state, a.ema_state, a.state_total, 0, 0, "BN statistics from /model_ema");
    assert_int_equal(c.num_batches_tracked, a.ema_num_batches_tracked);
    params_free(&c);
    params_free(&a);

    char old[1024];
    write_example("no-ema.h5", old, sizeof old, 3);
    testutil_params_tiny(&b, dnnl_oihw, 0);
    params_allocate_ema(&b);
    expect_ok(old, &b, &back, CKPT_FULL);
    assert_int_equal(back.has_ema, 0);
    params_free(&b);
    expect_error_tiny(old, CKPT_EMA_WEIGHTS, "has no /model_ema group", "--init-from-ema");
}

/* The file itself holds plain OIHW float32 data, PyTorch's shapes, and
 * num_batches_tracked as an int64 scalar. */
static void test_file_is_plain_pytorch(void **state)
{
    (void)state;
    Params a;
    char path[1024];
    testutil_params_tiny(&a, dnnl_OIhw16i16o, 9);
    CheckpointMeta m;
    meta_example(&m);
    testutil_join(path, sizeof path, g_dir, "plain.h5");
    write_ok(path, &a, &m);

    int conv = params_find(&a, "layer1.0.conv1.weight");
    float want[16 * 8 * 3 * 3], got[16 * 8 * 3 * 3];
    params_get_plain(&a, conv, BUF_VALUE, want);
    h5_lock();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = H5Dopen2(f, "/model/layer1.0.conv1.weight", H5P_DEFAULT);
    hid_t space = H5Dget_space(ds), type = H5Dget_type(ds);
    hsize_t dims[4];
    assert_int_equal(H5Sget_simple_extent_dims(space, dims, NULL), 4);
    assert_int_equal(dims[0], 16);
    assert_int_equal(dims[1], 8);
    assert_int_equal(dims[2], 3);
    assert_int_equal(dims[3], 3);
    assert_true(H5Tequal(type, H5T_IEEE_F32LE) > 0);
    assert_true(H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, got) >= 0);
    H5Tclose(type);
    H5Sclose(space);
    H5Dclose(ds);
    ds = H5Dopen2(f, "/model/layer1.0.bn1.num_batches_tracked", H5P_DEFAULT);
    space = H5Dget_space(ds);
    type = H5Dget_type(ds);
    assert_int_equal(H5Sget_simple_extent_type(space), H5S_SCALAR);
    assert_true(H5Tequal(type, H5T_STD_I64LE) > 0);
    int64_t nbt = 0;
    assert_true(H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &nbt) >= 0);
    H5Tclose(type);
    H5Sclose(space);
    H5Dclose(ds);
    assert_true(H5Lexists(f, "/optimizer/momentum/fc.bias", H5P_DEFAULT) > 0);
    assert_true(H5Aexists_by_name(f, "/scheduler", "threshold_mode", H5P_DEFAULT) > 0);
    H5Fclose(f);
    h5_unlock();
    assert_close(got, want, 16 * 8 * 3 * 3, 0, 0, "file layer1.0.conv1.weight");
    assert_int_equal(nbt, a.num_batches_tracked);
    params_free(&a);
}

/* ---- bad files ---- */

static void test_missing_tensor(void **state)
{
    (void)state;
    char path[1024];
    write_example("missing.h5", path, sizeof path, 1);
    h5_unlink(path, "/model/layer1.0.bn1.running_var");
    expect_error_tiny(path, CKPT_WEIGHTS_ONLY, "/model/layer1.0.bn1.running_var is missing",
                      "tiny with 10 classes");
    expect_error_tiny(path, CKPT_FULL, "/model/layer1.0.bn1.running_var is missing", NULL);
}

static void test_missing_momentum(void **state)
{
    (void)state;
    char path[1024];
    write_example("nomomentum.h5", path, sizeof path, 1);
    h5_unlink(path, "/optimizer/momentum/fc.bias");
    expect_error_tiny(path, CKPT_FULL, "/optimizer/momentum/fc.bias is missing", NULL);
    expect_ok_tiny(path, CKPT_WEIGHTS_ONLY); /* weights need no momentum */
}

static void test_wrong_shape(void **state)
{
    (void)state;
    char path[1024];
    write_example("shape.h5", path, sizeof path, 1);
    Params p;
    params_init(&p);
    int64_t dims[4] = {16, 8, 1, 1};
    testutil_param_plain(&p, "layer1.0.conv1.weight", PARAM_CONV_WEIGHT, 4, dims);
    params_allocate(&p);
    expect_error(path, &p, CKPT_WEIGHTS_ONLY,
                 "/model/layer1.0.conv1.weight has shape (16, 8, 3, 3), the model expects "
                 "(16, 8, 1, 1)",
                 NULL);
    params_free(&p);

    /* a BN layer of another width: the 1-D shapes read like Python's */
    params_init(&p);
    params_bn_state_add(&p, "bn1", 12);
    params_allocate(&p);
    expect_error(path, &p, CKPT_WEIGHTS_ONLY, "/model/bn1.running_mean has shape (8,)",
                 "expects (12,)");
    params_free(&p);
}

static void test_wrong_dtype(void **state)
{
    (void)state;
    char path[1024];
    write_example("dtype.h5", path, sizeof path, 1);
    h5_make_float64(path, "/model/fc.weight");
    expect_error_tiny(path, CKPT_WEIGHTS_ONLY, "/model/fc.weight has type float64",
                      "expected float32");

    write_example("dtype_nbt.h5", path, sizeof path, 1);
    h5_make_float64(path, "/model/bn1.num_batches_tracked");
    expect_error_tiny(path, CKPT_WEIGHTS_ONLY, "/model/bn1.num_batches_tracked has type float64",
                      "expected int64");
}

static void test_truncated_file(void **state)
{
    (void)state;
    char path[1024];
    write_example("truncated.h5", path, sizeof path, 1);
    assert_true(checkpoint_is_valid(path));
    file_truncate_half(path);
    assert_false(checkpoint_is_valid(path));
    expect_error_tiny(path, CKPT_FULL, "truncated", NULL);
    expect_error_tiny(path, CKPT_WEIGHTS_ONLY, "truncated", NULL);
}

static void test_not_hdf5(void **state)
{
    (void)state;
    char path[1024];
    testutil_join(path, sizeof path, g_dir, "text.h5");
    file_write_text(path, "this is not an HDF5 file\n");
    assert_false(checkpoint_is_valid(path));
    expect_error_tiny(path, CKPT_FULL, "not an HDF5 file", NULL);

    testutil_join(path, sizeof path, g_dir, "does-not-exist.h5");
    expect_error_tiny(path, CKPT_WEIGHTS_ONLY, "cannot read", "No such file");
}

static void test_missing_attributes(void **state)
{
    (void)state;
    char path[1024];
    write_example("noattr.h5", path, sizeof path, 1);
    h5_attr_delete(path, "/", "step");
    expect_error_tiny(path, CKPT_FULL, "root attribute step is missing", NULL);
    expect_ok_tiny(path, CKPT_WEIGHTS_ONLY); /* weights need no attributes */

    write_example("nosched.h5", path, sizeof path, 1);
    h5_attr_delete(path, "/scheduler", "patience");
    expect_error_tiny(path, CKPT_FULL, "attribute patience of /scheduler is missing", NULL);

    write_example("nomodel.h5", path, sizeof path, 1);
    h5_unlink(path, "/model");
    expect_error_tiny(path, CKPT_WEIGHTS_ONLY, "no /model group", NULL);
}

/* A torchvision export has a counter per BN layer; a hand-made state_dict
 * may have none, which is fine for weights but not for a resume. */
static void test_num_batches_tracked_optional(void **state)
{
    (void)state;
    char path[1024];
    write_example("nonbt.h5", path, sizeof path, 2);
    h5_unlink(path, "/model/bn1.num_batches_tracked");
    h5_unlink(path, "/model/layer1.0.bn1.num_batches_tracked");
    Params p;
    testutil_params_tiny(&p, dnnl_oihw, 0);
    p.num_batches_tracked = 77;
    expect_ok(path, &p, NULL, CKPT_WEIGHTS_ONLY);
    assert_int_equal(p.num_batches_tracked, 77);
    params_free(&p);
    expect_error_tiny(path, CKPT_FULL, "/model/bn1.num_batches_tracked is missing", NULL);
}

/* ---- atomic replacement ---- */

static int64_t step_of(const char *path)
{
    Params p;
    CheckpointMeta m;
    testutil_params_tiny(&p, dnnl_oihw, 0);
    expect_ok(path, &p, &m, CKPT_FULL);
    params_free(&p);
    return m.step;
}

/* Runs checkpoint_write(path) in a child, with file size limited to
 * max_bytes when not 0 (writes past it fail as on a full disk); whether it
 * succeeded. */
static int write_in_child(const char *path, const Params *p, const CheckpointMeta *m,
                          rlim_t max_bytes)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr))
            _exit(2);
        if (max_bytes) {
            signal(SIGXFSZ, SIG_IGN); /* then a write past the limit fails with EFBIG */
            struct rlimit lim = {max_bytes, max_bytes};
            setrlimit(RLIMIT_FSIZE, &lim);
        }
        Status st = {0};
        checkpoint_write(path, p, m, &st);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* A tiny registry and a checkpoint of it at g_dir/name; path and its
 * temporary's name (tmp) set. Returns the step written. */
static int64_t written_example(const char *name, Params *p, CheckpointMeta *m, char *path,
                               size_t len, char *tmp, size_t tmplen)
{
    testutil_params_tiny(p, dnnl_OIhw16i16o, 4);
    meta_example(m);
    testutil_join(path, len, g_dir, name);
    snprintf(tmp, tmplen, "%s.tmp", path);
    write_ok(path, p, m);
    return step_of(path);
}

static void test_write_replaces_by_rename(void **state)
{
    (void)state;
    Params p;
    CheckpointMeta m;
    char path[1024], tmp[1100];
    testutil_params_tiny(&p, dnnl_OIhw16i16o, 4);
    meta_example(&m);
    testutil_join(path, sizeof path, g_dir, "atomic.h5");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    m.epoch = m.epoch_step = 0; /* within the steps below */
    m.step = 1;
    write_ok(path, &p, &m);
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);

    file_write_text(tmp, "left over by a writer that was killed\n");
    m.step = 2;
    write_ok(path, &p, &m);
    assert_int_equal(stat(path, &after), 0);
    assert_int_not_equal(before.st_ino, after.st_ino); /* a new file renamed in */
    assert_int_not_equal(access(tmp, F_OK), 0);
    assert_int_equal(step_of(path), 2);

    /* A writer that fails (here: path.tmp cannot be created) dies before it
     * touches the good file. */
    assert_int_equal(mkdir(tmp, 0755), 0);
    m.step = 3;
    assert_false(write_in_child(path, &p, &m, 0));
    assert_int_equal(step_of(path), 2);
    rmdir(tmp);
    params_free(&p);
}

/* ---- the latest checkpoint in a directory ---- */

static void write_step(const char *dir, int64_t step)
{
    Params p;
    CheckpointMeta m;
    char path[1024];
    testutil_params_tiny(&p, dnnl_oihw, 1);
    meta_example(&m);
    m.step = step;
    m.epoch = m.epoch_step = 0;
    checkpoint_path(path, sizeof path, dir, step);
    write_ok(path, &p, &m);
    params_free(&p);
}

static void test_find_latest(void **state)
{
    (void)state;
    char dir[1024], path[1100], out[1100];
    Status st = {0};
    testutil_join(dir, sizeof dir, g_dir, "run");
    assert_int_equal(checkpoint_find_latest(dir, out, sizeof out, &st), 0); /* no dir yet */
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(checkpoint_find_latest(dir, out, sizeof out, &st), 0); /* empty */
    assert_int_equal(st.code, 0);

    write_step(dir, 10);
    write_step(dir, 200);
    write_step(dir, 30);
    write_step(dir, 400);
    checkpoint_path(path, sizeof path, dir, 400);
    file_truncate_half(path); /* the newest is damaged: skipped with a warning */
    testutil_join(path, sizeof path, dir, "step-00000500.h5.tmp");
    file_write_text(path, "half written");
    testutil_join(path, sizeof path, dir, "step-0000060x.h5");
    file_write_text(path, "not a step name");
    testutil_join(path, sizeof path, dir, "best.h5");
    file_write_text(path, "not a step name either");

    assert_int_equal(checkpoint_find_latest(dir, out, sizeof out, &st), 1);
    checkpoint_path(path, sizeof path, dir, 200);
    assert_string_equal(out, path);
    assert_int_equal(step_of(out), 200);

    /* a file where the directory should be is the user's error */
    testutil_join(path, sizeof path, dir, "step-00000010.h5");
    assert_int_equal(checkpoint_find_latest(path, out, sizeof out, &st), EXIT_USAGE);
    assert_non_null(strstr(st.msg, path));
}

static void test_checkpoint_path(void **state)
{
    (void)state;
    char out[128];
    checkpoint_path(out, sizeof out, "runs/a", 1234);
    assert_string_equal(out, "runs/a/step-00001234.h5");
    checkpoint_path(out, sizeof out, "d", 0);
    assert_string_equal(out, "d/step-00000000.h5");
    checkpoint_path(out, sizeof out, "d", 123456789);
    assert_string_equal(out, "d/step-123456789.h5");
}

/* ---- values: non-finite tensors and attributes out of range ---- */

/* Sets element index of float dataset name to v. */
static void h5_set_float(const char *path, const char *name, hsize_t index, float v)
{
    hid_t f = h5_open_rw(path);
    h5_lock();
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t space = H5Dget_space(ds);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    float *data = calloc((size_t)n, sizeof *data);
    assert_true(H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    data[index] = v;
    assert_true(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    free(data);
    H5Sclose(space);
    H5Dclose(ds);
    h5_unlock();
    h5_close(f);
}

static void test_nonfinite_refused_on_load(void **state)
{
    (void)state;
    char path[1024];
    write_example("nan_weight.h5", path, sizeof path, 1);
    h5_set_float(path, "/model/fc.weight", 3, NAN);
    expect_error_tiny(path, CKPT_WEIGHTS_ONLY, "/model/fc.weight holds NaN at index 3", NULL);
    expect_error_tiny(path, CKPT_FULL, "/model/fc.weight holds NaN at index 3", NULL);

    write_example("inf_momentum.h5", path, sizeof path, 1);
    h5_set_float(path, "/optimizer/momentum/layer1.0.conv1.weight", 0, -INFINITY);
    expect_error_tiny(path, CKPT_FULL, "/optimizer/momentum/layer1.0.conv1.weight holds -inf",
                      NULL);
    expect_ok_tiny(path, CKPT_WEIGHTS_ONLY); /* momentum is not read for weights */

    write_example("inf_var.h5", path, sizeof path, 1);
    h5_set_float(path, "/model/bn1.running_var", 1, INFINITY);
    expect_error_tiny(path, CKPT_WEIGHTS_ONLY, "/model/bn1.running_var holds inf at index 1",
                      NULL);
    write_example("negative_var.h5", path, sizeof path, 1);
    h5_set_float(path, "/model/bn1.running_var", 2, -0.5f);
    expect_error_tiny(path, CKPT_WEIGHTS_ONLY, "/model/bn1.running_var holds the negative",
                      "index 2");
}

/* A diverged run's state is never written: the previous file stays as it
 * was and no temporary is left. */
static void test_nonfinite_not_written(void **state)
{
    (void)state;
    Params p;
    CheckpointMeta m;
    char path[1024], tmp[1100];
    int64_t before = written_example("diverged.h5", &p, &m, path, sizeof path, tmp, sizeof tmp);

    p.momentum[p.info[params_find(&p, "fc.bias")].offset + 1] = NAN;
    m.step++;
    Status st = {0};
    assert_int_equal(checkpoint_write(path, &p, &m, &st), EXIT_NONFINITE);
    print_message("    -> %s\n", st.msg);
    assert_int_equal(st.code, EXIT_NONFINITE);
    assert_non_null(strstr(st.msg, path));
    assert_non_null(strstr(st.msg, "/optimizer/momentum/fc.bias holds NaN at index 1"));
    assert_int_equal(step_of(path), before);
    assert_int_not_equal(access(tmp, F_OK), 0);

    p.momentum[p.info[params_find(&p, "fc.bias")].offset + 1] = 0;
    params_bn_running_mean(&p, 0)[0] = INFINITY;
    Status st2 = {0};
    assert_int_equal(checkpoint_write(path, &p, &m, &st2), EXIT_NONFINITE);
    assert_non_null(strstr(st2.msg, "/model/bn1.running_mean holds inf at index 0"));
    assert_int_equal(step_of(path), before);
    params_free(&p);
}

typedef enum { SET_I64, SET_U64, SET_F64, SET_STR } AttrKind;

/* Replaces attribute name of obj by one of the given type and value. */
static void h5_attr_set(const char *path, const char *obj, const char *name, AttrKind kind,
                        int64_t i, uint64_t u, double d, const char *str)
{
    hid_t f = h5_open_rw(path);
    h5_lock();
    hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
    assert_true(o >= 0);
    if (H5Aexists(o, name) > 0)
        assert_true(H5Adelete(o, name) >= 0);
    hid_t space = H5Screate(H5S_SCALAR), type;
    const void *value;
    switch (kind) {
    case SET_I64: type = H5Tcopy(H5T_STD_I64LE); value = &i; break;
    case SET_U64: type = H5Tcopy(H5T_STD_U64LE); value = &u; break;
    case SET_F64: type = H5Tcopy(H5T_IEEE_F64LE); value = &d; break;
    default:
        type = H5Tcopy(H5T_C_S1);
        H5Tset_size(type, H5T_VARIABLE);
        value = &str;
    }
    hid_t mem = kind == SET_I64   ? H5T_NATIVE_INT64
                : kind == SET_U64 ? H5T_NATIVE_UINT64
                : kind == SET_F64 ? H5T_NATIVE_DOUBLE
                                  : type;
    hid_t a = H5Acreate2(o, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0);
    assert_true(H5Awrite(a, mem, value) >= 0);
    H5Aclose(a);
    H5Tclose(type);
    H5Sclose(space);
    H5Oclose(o);
    h5_unlock();
    h5_close(f);
}

typedef struct {
    const char *obj, *name;
    AttrKind kind;
    int64_t i;
    uint64_t u;
    double d;
    const char *str, *needle;
} BadAttr;

/* Every attribute is checked for its type and range, and 64-bit values
 * are never cut to a narrower type: each bad value is refused naming the
 * file and the attribute. */
static void test_attribute_ranges(void **state)
{
    (void)state;
    static const BadAttr cases[] = {
        {"/", "step", SET_I64, -5, 0, 0, NULL, "root attribute step is -5, expected an integer from 0"},
        {"/", "step", SET_F64, 0, 0, 12.0, NULL, "root attribute step has type float64"},
        {"/", "num_classes", SET_I64, (1LL << 32) + 4, 0, 0, NULL, "root attribute num_classes is 4294967300"},
        {"/", "num_classes", SET_I64, 0, 0, 0, NULL, "root attribute num_classes is 0"},
        {"/", "epoch", SET_I64, -1, 0, 0, NULL, "root attribute epoch is -1"},
        {"/", "epoch", SET_I64, 1235, 0, 0, NULL, "root attribute epoch is 1235, expected an integer from 0 to 1234"},
        {"/", "epoch_step", SET_I64, -3, 0, 0, NULL, "root attribute epoch_step is -3"},
        {"/", "global_batch", SET_U64, 0, UINT64_MAX, 0, NULL, "root attribute global_batch is 18446744073709551615"},
        {"/", "world_size", SET_I64, 0, 0, 0, NULL, "root attribute world_size is 0"},
        {"/", "world_size", SET_I64, (1LL << 32) + 2, 0, 0, NULL, "root attribute world_size is 4294967298"},
        {"/", "lr", SET_F64, 0, 0, NAN, NULL, "root attribute lr is nan"},
        {"/", "lr", SET_F64, 0, 0, -0.1, NULL, "root attribute lr is -0.1"},
        {"/", "lr", SET_F64, 0, 0, INFINITY, NULL, "root attribute lr is inf"},
        {"/", "best_metric", SET_F64, 0, 0, -INFINITY, NULL, "root attribute best_metric is -inf"},
        {"/", "seed", SET_I64, -3, 0, 0, NULL, "root attribute seed is -3"},
        {"/", "arch", SET_STR, 0, 0, 0, "resnet50-with-a-name-longer-than-thirty-one", "root attribute arch is longer than 31 characters"},
        {"/", "validation_pending", SET_I64, 2, 0, 0, NULL, "root attribute validation_pending is 2"},
        {"/scheduler", "type", SET_STR, 0, 0, 0, "StepLR", "attribute type of /scheduler is StepLR"},
        {"/scheduler", "patience", SET_I64, 1LL << 31, 0, 0, NULL, "attribute patience of /scheduler is 2147483648"},
        {"/scheduler", "cooldown", SET_I64, -1, 0, 0, NULL, "attribute cooldown of /scheduler is -1"},
        {"/scheduler", "num_bad_epochs", SET_I64, -1, 0, 0, NULL, "attribute num_bad_epochs of /scheduler is -1"},
        {"/scheduler", "num_bad_epochs", SET_I64, 4, 0, 0, NULL, "num_bad_epochs of /scheduler is 4, expected an integer from 0 to 3"},
        {"/scheduler", "cooldown_counter", SET_I64, 3, 0, 0, NULL, "cooldown_counter of /scheduler is 3"},
        {"/scheduler", "last_epoch", SET_I64, -2, 0, 0, NULL, "attribute last_epoch of /scheduler is -2"},
        {"/scheduler", "factor", SET_F64, 0, 0, 1.5, NULL, "attribute factor of /scheduler is 1.5"},
        {"/scheduler", "factor", SET_F64, 0, 0, 0.0, NULL, "attribute factor of /scheduler is 0"},
        {"/scheduler", "threshold", SET_F64, 0, 0, NAN, NULL, "attribute threshold of /scheduler is nan"},
        {"/scheduler", "min_lr", SET_F64, 0, 0, -1.0, NULL, "attribute min_lr of /scheduler is -1"},
        {"/scheduler", "eps", SET_F64, 0, 0, INFINITY, NULL, "attribute eps of /scheduler is inf"},
        {"/scheduler", "best", SET_F64, 0, 0, NAN, NULL, "attribute best of /scheduler is nan"},
    };
    char path[1024];
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const BadAttr *c = &cases[k];
        write_example("attr.h5", path, sizeof path, 1);
        h5_attr_set(path, c->obj, c->name, c->kind, c->i, c->u, c->d, c->str);
        expect_error_tiny(path, CKPT_FULL, c->needle, NULL);
        expect_ok_tiny(path, CKPT_WEIGHTS_ONLY); /* weights read no attributes */
    }

    /* in range: a uint64 seed above INT64_MAX, +-inf plateau best, NaN best_metric */
    write_example("attr_ok.h5", path, sizeof path, 1);
    h5_attr_set(path, "/", "best_metric", SET_F64, 0, 0, NAN, NULL);
    h5_attr_set(path, "/scheduler", "best", SET_F64, 0, 0, INFINITY, NULL);
    Params p;
    CheckpointMeta m;
    testutil_params_tiny(&p, dnnl_oihw, 0);
    expect_ok(path, &p, &m, CKPT_FULL);
    assert_true(m.seed == 18446744073709551557ull);
    assert_true(isnan(m.best_metric) && isinf(m.plateau.best));
    assert_int_equal(m.validation_pending, 0);
    /* absent in files written before it existed */
    h5_attr_delete(path, "/", "validation_pending");
    expect_ok(path, &p, &m, CKPT_FULL);
    params_free(&p);
}

/* ---- leftovers, links, ordering ---- */

/* A write that fails part-way (here: a file size limit, as a full disk
 * would) removes its temporary and leaves the previous checkpoint. */
static void test_failed_write_leaves_nothing(void **state)
{
    (void)state;
    Params p;
    CheckpointMeta m;
    char path[1024], tmp[1100];
    int64_t before = written_example("full.h5", &p, &m, path, sizeof path, tmp, sizeof tmp);
    m.step++;
    assert_false(write_in_child(path, &p, &m, 4096));
    assert_int_not_equal(access(tmp, F_OK), 0);
    assert_int_equal(step_of(path), before);
    params_free(&p);
}

/* The temporary is created exclusively: a symbolic link planted in its
 * place is refused, and nothing is written through it, whether it points
 * nowhere yet or to an existing file. */
static void test_tmp_symlink_refused(void **state)
{
    (void)state;
    Params p;
    CheckpointMeta m;
    char path[1024], tmp[1100], target[2048];
    struct stat sb;
    testutil_params_tiny(&p, dnnl_oihw, 4);
    meta_example(&m);
    testutil_join(path, sizeof path, g_dir, "linked.h5");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);

    /* absolute: a relative link resolves from the link's own folder */
    char cwd[1000];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(target, sizeof target, "%s/%s/planted.h5", cwd, g_dir);
    unlink(tmp);
    assert_int_equal(symlink(target, tmp), 0);
    assert_false(write_in_child(path, &p, &m, 0));
    assert_int_not_equal(access(target, F_OK), 0);
    assert_int_not_equal(access(path, F_OK), 0);

    write_example("precious.h5", path, sizeof path, 2);
    snprintf(target, sizeof target, "%s/%s/precious.h5", cwd, g_dir);
    testutil_join(path, sizeof path, g_dir, "linked.h5");
    assert_int_equal(stat(target, &sb), 0);
    off_t size = sb.st_size;
    unlink(tmp);
    assert_int_equal(symlink(target, tmp), 0);
    assert_false(write_in_child(path, &p, &m, 0));
    assert_int_equal(stat(target, &sb), 0);
    assert_int_equal(sb.st_size, size);
    assert_int_equal(step_of(target), 1234);
    assert_int_not_equal(access(path, F_OK), 0);
    unlink(tmp);
    params_free(&p);
}

/* Order is by step number: 100000000 has more digits than the padding and
 * sorts before 99999999 by name. */
static void test_prune_by_step_number(void **state)
{
    (void)state;
    char dir[1024], path[1100], out[1100];
    Status st = {0};
    testutil_join(dir, sizeof dir, g_dir, "prune");
    assert_int_equal(mkdir(dir, 0755), 0);
    static const int64_t steps[] = {99999998, 99999999, 100000000, 100000001};
    for (size_t i = 0; i < 4; i++)
        write_step(dir, steps[i]);
    assert_int_equal(checkpoint_find_latest(dir, out, sizeof out, &st), 1);
    checkpoint_path(path, sizeof path, dir, 100000001);
    assert_string_equal(out, path);

    checkpoint_prune(dir, 100000001, 2);
    for (size_t i = 0; i < 4; i++) {
        checkpoint_path(path, sizeof path, dir, steps[i]);
        if ((access(path, F_OK) == 0) != (i >= 2))
            fail_msg("after pruning to 2, %s is %s", path, i >= 2 ? "gone" : "still there");
    }

    /* a later step (left by a run resumed from an earlier one) is not
     * counted, and the one just written is always kept */
    checkpoint_prune(dir, 100000000, 1);
    checkpoint_path(path, sizeof path, dir, 100000000);
    assert_int_equal(access(path, F_OK), 0);
    checkpoint_path(path, sizeof path, dir, 100000001);
    assert_int_equal(access(path, F_OK), 0);

    CheckpointFile *files;
    size_t n;
    assert_int_equal(checkpoint_list(dir, &files, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(files[0].step, 100000001);
    assert_string_equal(files[1].name, "step-100000000.h5");
    free(files);
}

static void test_temporary_names(void **state)
{
    (void)state;
    assert_true(checkpoint_is_temporary("step-00000012.h5.tmp"));
    assert_true(checkpoint_is_temporary("step-100000000.h5.tmp"));
    assert_true(checkpoint_is_temporary("best.h5.tmp"));
    assert_false(checkpoint_is_temporary("step-00000012.h5"));
    assert_false(checkpoint_is_temporary("notes.tmp"));
    assert_false(checkpoint_is_temporary("step-x.h5.tmp"));
    assert_false(checkpoint_is_temporary(".tmp"));
}

/* ---- torchvision interop ---- */

/* torch -> h5py state_dict -> our blocked registry -> our checkpoint ->
 * torchvision load_state_dict(strict=True), every tensor bit-identical. */
static void test_torch_interop(void **state)
{
    (void)state;
    char export[1024], ours[1024];
    testutil_join(export, sizeof export, g_dir, "torch_export.h5");
    testutil_join(ours, sizeof ours, g_dir, "from_torch.h5");
    assert_int_equal(testutil_run_fixture("h5py numpy torch torchvision", "ckpt_interop.py",
                                          "export --arch tiny --seed 3 --extra-key '%s'", export),
                     0);
    Params p;
    CheckpointMeta m;
    testutil_params_tiny(&p, dnnl_OIhw16i16o, 0);
    expect_ok(export, &p, NULL, CKPT_WEIGHTS_ONLY); /* warns about aux_head.weight */
    assert_int_equal(p.num_batches_tracked, 1003);
    meta_example(&m);
    write_ok(ours, &p, &m);
    assert_int_equal(testutil_run_fixture("h5py numpy torch torchvision", "ckpt_interop.py",
                                          "load --arch tiny --expect '%s' '%s'", export, ours),
                     0);
    params_free(&p);
}

typedef struct {
    Params *p;
    hid_t model;
} RegistryBuild;

/* Registers /model/<name> the way the model builder would: BN statistics
 * by prefix, 4-D convs blocked (OIhw16i16o pads small channel counts),
 * everything else plain. */
static herr_t registry_visit(hid_t group, const char *name, const H5L_info_t *info, void *data)
{
    (void)info;
    RegistryBuild *rb = data;
    size_t n = strlen(name);
    const char *mean = ".running_mean";
    if (n > strlen(mean) && strcmp(name + n - strlen(mean), mean) == 0) {
        char prefix[PARAM_NAME_MAX];
        snprintf(prefix, sizeof prefix, "%.*s", (int)(n - strlen(mean)), name);
        hid_t ds = H5Dopen2(group, name, H5P_DEFAULT);
        hid_t space = H5Dget_space(ds);
        hsize_t c;
        H5Sget_simple_extent_dims(space, &c, NULL);
        params_bn_state_add(rb->p, prefix, (size_t)c);
        H5Sclose(space);
        H5Dclose(ds);
        return 0;
    }
    if (strstr(name, ".running_var") || strstr(name, ".num_batches_tracked"))
        return 0;
    hid_t ds = H5Dopen2(group, name, H5P_DEFAULT);
    hid_t space = H5Dget_space(ds);
    hsize_t hd[4];
    int nd = H5Sget_simple_extent_dims(space, hd, NULL);
    int64_t dims[4];
    dnnl_dim_t dd[4];
    for (int d = 0; d < nd; d++)
        dims[d] = dd[d] = (int64_t)hd[d];
    if (nd == 4) {
        dnnl_memory_desc_t md = dnn_md_make(4, dd, dnnl_OIhw16i16o);
        params_add(rb->p, name, PARAM_CONV_WEIGHT, 4, dims, &md);
    } else {
        ParamKind kind = strncmp(name, "fc.", 3) == 0
                             ? (nd == 2 ? PARAM_FC_WEIGHT : PARAM_FC_BIAS)
                             : (strstr(name, ".weight") ? PARAM_BN_WEIGHT : PARAM_BN_BIAS);
        testutil_param_plain(rb->p, name, kind, nd, dims);
    }
    H5Sclose(space);
    H5Dclose(ds);
    return 0;
}

static void registry_from_file(const char *path, Params *p)
{
    params_init(p);
    h5_lock();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    RegistryBuild rb = {p, H5Gopen2(f, "model", H5P_DEFAULT)};
    assert_true(H5Literate(rb.model, H5_INDEX_NAME, H5_ITER_INC, NULL, registry_visit, &rb) >= 0);
    H5Gclose(rb.model);
    H5Fclose(f);
    h5_unlock();
    params_allocate(p);
}

/* The same with torchvision's real resnet18 names and shapes (stem 7x7
 * conv, downsample.0/1, fc), registered in blocked layouts. */
static void test_torchvision_resnet18_interop(void **state)
{
    (void)state;
    char export[1024], ours[1024];
    testutil_join(export, sizeof export, g_dir, "resnet18_export.h5");
    testutil_join(ours, sizeof ours, g_dir, "resnet18_ours.h5");
    assert_int_equal(testutil_run_fixture("h5py numpy torch torchvision", "ckpt_interop.py",
                                          "export --arch resnet18 --seed 7 '%s'", export),
                     0);
    Params p;
    CheckpointMeta m;
    registry_from_file(export, &p);
    assert_int_equal(p.count, 62);    /* torchvision resnet18 parameters */
    assert_int_equal(p.bn_count, 20); /* and BatchNorm layers */
    expect_ok(export, &p, NULL, CKPT_WEIGHTS_ONLY);
    meta_example(&m);
    snprintf(m.arch, sizeof m.arch, "resnet18");
    write_ok(ours, &p, &m);
    assert_int_equal(testutil_run_fixture("h5py numpy torch torchvision", "ckpt_interop.py",
                                          "load --arch resnet18 --expect '%s' '%s'", export, ours),
                     0);
    params_free(&p);
}

int main(void)
{
    /* write_in_child forks, and the child runs oneDNN reorders: with an
     * OpenMP thread pool in the parent the child would wait forever for
     * pool threads that fork did not copy. One thread never starts a pool. */
    omp_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_blocked),
        cmocka_unit_test(test_ema_round_trip),
        cmocka_unit_test(test_file_is_plain_pytorch),
        cmocka_unit_test(test_missing_tensor),
        cmocka_unit_test(test_missing_momentum),
        cmocka_unit_test(test_wrong_shape),
        cmocka_unit_test(test_wrong_dtype),
        cmocka_unit_test(test_truncated_file),
        cmocka_unit_test(test_not_hdf5),
        cmocka_unit_test(test_missing_attributes),
        cmocka_unit_test(test_num_batches_tracked_optional),
        cmocka_unit_test(test_write_replaces_by_rename),
        cmocka_unit_test(test_find_latest),
        cmocka_unit_test(test_checkpoint_path),
        cmocka_unit_test(test_nonfinite_refused_on_load),
        cmocka_unit_test(test_nonfinite_not_written),
        cmocka_unit_test(test_attribute_ranges),
        cmocka_unit_test(test_failed_write_leaves_nothing),
        cmocka_unit_test(test_tmp_symlink_refused),
        cmocka_unit_test(test_prune_by_step_number),
        cmocka_unit_test(test_temporary_names),
        cmocka_unit_test(test_torch_interop),
        cmocka_unit_test(test_torchvision_resnet18_interop),
    };
    return cmocka_run_group_tests_name("checkpoint", tests, group_setup, NULL);
}
