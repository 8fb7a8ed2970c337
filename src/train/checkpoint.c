/*
 * checkpoint.c - HDF5 checkpoints with torchvision state_dict names
 * (docs/checkpoint-format.md). Tensors leave the flat buffers through
 * params_get_plain/params_set_plain, so oneDNN's blocked layouts never reach
 * a file. Local: rank 0 writes, any rank reads. Every HDF5 call runs under
 * h5_lock(), taken per small group of calls so that the loader thread is not
 * stalled for a whole write.
 */
#include "checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "h5lock.h"
#include "h5util.h"
#include "log.h"
#include "version.h"

/* "/optimizer/momentum/" + a tensor name + ".num_batches_tracked" */
#define TENSOR_PATH_MAX (PARAM_NAME_MAX + 64)
#define DESC_MAX 96
#define EXTRA_NAMES_SHOWN 5
/* Ranges of the integers a checkpoint may hold: those of the matching flags
 * (--num-classes, --batch-size, --max-steps, --plateau-patience/cooldown). */
#define CKPT_CLASSES_MAX (1 << 20)
#define CKPT_BATCH_MAX (1 << 24)
#define CKPT_WORLD_MAX (1 << 24)
#define CKPT_STEP_MAX (INT64_MAX / 2)
#define CKPT_PLATEAU_MAX (1 << 20)
/* input_size and resize_size: JPEG's largest side */
#define CKPT_IMAGE_SIZE_MIN 1
#define CKPT_IMAGE_SIZE_MAX 65535

/* ------------------------------------------------------------------ */
/* writing: every failure is local I/O and aborts, naming the file     */

/* A checkpoint being written: the final name and the temporary it is
 * written under until the rename. While it is written, the Target is the
 * thread's failure context (error.h): a failed check removes the partial
 * temporary, so that a full disk is not kept full by it, and its message
 * names the checkpoint. */
typedef struct {
    FailContext context; /* first: fail_local hands it back as the Target */
    const char *path;
    const char *tmp;
} Target;

static void write_failed(const FailContext *context, char *what, size_t len)
{
    const Target *w = (const Target *)context;
    char cause[160];
    int err = errno;
    h5_lock();
    h5_system_reason(cause, sizeof cause);
    h5_unlock();
    if (!cause[0] && err)
        snprintf(cause, sizeof cause, "%s", strerror(err));
    int removed = unlink(w->tmp) == 0 || errno == ENOENT;
    snprintf(what, len,
             "writing checkpoint %s failed: %s (disk full, quota or I/O error?); %s %s; the "
             "previous checkpoints are kept",
             w->path, cause[0] ? cause : "unknown reason",
             removed ? "removed the partial" : "could not remove the partial", w->tmp);
}

static hid_t group_create(hid_t loc, const char *name)
{
    h5_lock();
    hid_t g = H5_CHECK(H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    h5_unlock();
    return g;
}

static void object_close(hid_t id)
{
    h5_lock();
    H5_CHECK(H5Oclose(id));
    h5_unlock();
}

/* ndims 0 writes a scalar (0-dim) dataset, as h5py does for a 0-dim array. */
static void dataset_write(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, int ndims,
                          const int64_t *dims, const void *data)
{
    hsize_t hdims[4];
    for (int d = 0; d < ndims; d++)
        hdims[d] = (hsize_t)dims[d];
    h5_lock();
    hid_t space = H5_CHECK(ndims ? H5Screate_simple(ndims, hdims, NULL)
                                      : H5Screate(H5S_SCALAR));
    hid_t ds = H5_CHECK(H5Dcreate2(loc, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT,
                                        H5P_DEFAULT));
    H5_CHECK(H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
    H5_CHECK(H5Dclose(ds));
    H5_CHECK(H5Sclose(space));
    h5_unlock();
}

/* n values of an array attribute (n 0: a scalar). */
static void attr_write_n(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, int n,
                         const void *value)
{
    hsize_t dims = (hsize_t)n;
    h5_lock();
    hid_t space = H5_CHECK(n ? H5Screate_simple(1, &dims, NULL) : H5Screate(H5S_SCALAR));
    hid_t attr = H5_CHECK(H5Acreate2(loc, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT));
    H5_CHECK(H5Awrite(attr, mem_type, value));
    H5_CHECK(H5Aclose(attr));
    H5_CHECK(H5Sclose(space));
    h5_unlock();
}

static void attr_write(hid_t loc, const char *name, hid_t file_type, hid_t mem_type,
                       const void *value)
{
    attr_write_n(loc, name, file_type, mem_type, 0, value);
}

static void attr_write_i64(hid_t loc, const char *name, int64_t v)
{
    attr_write(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}

static void attr_write_f64(hid_t loc, const char *name, double v)
{
    attr_write(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

/* n variable-length UTF-8 strings (n 0: one, as a scalar), which h5py
 * returns as str. */
static void attr_write_strs(hid_t loc, const char *name, int n, const char *const *s)
{
    h5_lock();
    hid_t type = H5_CHECK(H5Tcopy(H5T_C_S1));
    H5_CHECK(H5Tset_size(type, H5T_VARIABLE));
    H5_CHECK(H5Tset_cset(type, H5T_CSET_UTF8));
    attr_write_n(loc, name, type, type, n, s);
    H5_CHECK(H5Tclose(type));
    h5_unlock();
}

static void attr_write_str(hid_t loc, const char *name, const char *s)
{
    attr_write_strs(loc, name, 0, &s);
}

static size_t largest_tensor(const Params *p)
{
    size_t n = 1;
    for (int i = 0; i < p->count; i++)
        if (p->info[i].numel > n)
            n = p->info[i].numel;
    return n;
}

/* A state_dict group: the tensors of buf, then each BN layer's statistics
 * from state (the layout of p->state) and the counter nbt. */
static void model_write(hid_t file, const Params *p, const char *group, ParamBuffer buf,
                        const float *state, int64_t nbt, hid_t *out)
{
    float *plain = xmalloc(largest_tensor(p) * sizeof(float));
    hid_t g = group_create(file, group);
    for (int i = 0; i < p->count; i++) {
        const ParamInfo *info = &p->info[i];
        params_get_plain(p, i, buf, plain);
        dataset_write(g, info->name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, info->ndims, info->dims,
                      plain);
    }
    char name[TENSOR_PATH_MAX];
    for (int i = 0; i < p->bn_count; i++) {
        int64_t c = (int64_t)p->bn[i].channels; /* (C) */
        const float *mean = state + p->bn[i].offset, *var = mean + p->bn[i].channels;
        snprintf(name, sizeof name, "%s.running_mean", p->bn[i].name);
        dataset_write(g, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, &c, mean);
        snprintf(name, sizeof name, "%s.running_var", p->bn[i].name);
        dataset_write(g, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, &c, var);
        snprintf(name, sizeof name, "%s.num_batches_tracked", p->bn[i].name);
        dataset_write(g, name, H5T_STD_I64LE, H5T_NATIVE_INT64, 0, NULL, &nbt);
    }
    free(plain);
    if (out)
        *out = g;
    else
        object_close(g);
}

/* /model_ema: the moving average, named and shaped as /model. */
static void ema_write(hid_t file, const Params *p, const CheckpointMeta *m)
{
    hid_t g;
    model_write(file, p, "model_ema", BUF_EMA, p->ema_state, p->ema_num_batches_tracked, &g);
    attr_write_f64(g, "decay", m->ema_decay);
    attr_write_i64(g, "every", m->ema_every);
    object_close(g);
}

static void momentum_write(hid_t file, const Params *p)
{
    float *plain = xmalloc(largest_tensor(p) * sizeof(float));
    hid_t opt = group_create(file, "optimizer");
    hid_t g = group_create(opt, "momentum");
    for (int i = 0; i < p->count; i++) {
        const ParamInfo *info = &p->info[i];
        params_get_plain(p, i, BUF_MOMENTUM, plain);
        dataset_write(g, info->name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, info->ndims, info->dims,
                      plain);
    }
    object_close(g);
    object_close(opt);
    free(plain);
}

/* What evaluation and prediction need to feed the model without flags. */
static void model_input_write(hid_t file, const CheckpointMeta *m)
{
    attr_write_str(file, "stem", m->small_stem ? "small" : "imagenet");
    if (m->input_size)
        attr_write_i64(file, "input_size", m->input_size);
    if (m->resize_size)
        attr_write_i64(file, "resize_size", m->resize_size);
    if (m->channels) {
        attr_write_n(file, "mean", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, m->channels, m->mean);
        attr_write_n(file, "std", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, m->channels, m->std);
    }
    if (m->num_class_names > 0 && m->num_class_names <= CHECKPOINT_CLASS_NAMES_MAX)
        attr_write_strs(file, "class_names", m->num_class_names, m->class_names);
}

static void meta_write(hid_t file, const CheckpointMeta *m)
{
    char version[sizeof m->version];
    if (m->version[0])
        snprintf(version, sizeof version, "%s", m->version);
    else
        version_string(version, sizeof version);
    uint64_t seed = m->seed;
    attr_write_i64(file, "format_version", CHECKPOINT_FORMAT_VERSION);
    attr_write_str(file, "arch", m->arch);
    attr_write_i64(file, "num_classes", m->num_classes);
    attr_write_i64(file, "epoch", m->epoch);
    attr_write_i64(file, "epoch_step", m->epoch_step);
    attr_write_i64(file, "step", m->step);
    attr_write_f64(file, "lr", m->lr);
    attr_write_i64(file, "global_batch", m->global_batch);
    attr_write(file, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, &seed);
    attr_write_i64(file, "world_size", m->world_size);
    attr_write_f64(file, "best_metric", m->best_metric);
    attr_write_str(file, "dataset_fingerprint", m->dataset_fingerprint);
    attr_write_str(file, "version", version);
    attr_write_str(file, "command_line", m->command_line);
    attr_write_i64(file, "validation_pending", m->validation_pending);
    model_input_write(file, m);
}

/* torch's state_dict spelling: mode "min"/"max", threshold_mode "rel"/"abs". */
static void scheduler_write(hid_t file, const Plateau *s)
{
    hid_t g = group_create(file, "scheduler");
    attr_write_str(g, "type", "ReduceLROnPlateau");
    attr_write_str(g, "mode", s->mode == PLATEAU_MIN ? "min" : "max");
    attr_write_f64(g, "factor", s->factor);
    attr_write_i64(g, "patience", s->patience);
    attr_write_f64(g, "threshold", s->threshold);
    attr_write_str(g, "threshold_mode", s->threshold_mode == THRESHOLD_REL ? "rel" : "abs");
    attr_write_i64(g, "cooldown", s->cooldown);
    attr_write_f64(g, "min_lr", s->min_lr);
    attr_write_f64(g, "eps", s->eps);
    attr_write_f64(g, "best", s->best);
    attr_write_i64(g, "num_bad_epochs", s->num_bad_epochs);
    attr_write_i64(g, "cooldown_counter", s->cooldown_counter);
    attr_write_i64(g, "last_epoch", s->last_epoch);
    object_close(g);
}

/* The data must be on disk before the rename makes it the checkpoint. */
static void file_sync(const char *tmp)
{
    int fd = open(tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0)
        fail_local(__FILE__, __LINE__, "fsync", "%s", sys_error_string());
    close(fd);
}

/* Makes the rename durable. Some file systems cannot fsync a directory
 * (EINVAL); the rename is still atomic there, so that is not an error. */
static void dir_sync(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return;
    if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
        fail_local(__FILE__, __LINE__, "fsync", "directory %s: %s", dir, sys_error_string());
    close(fd);
}

/* Makes room for an exclusive create of the temporary: a stale one (a
 * writer killed before its rename) is removed; a symbolic link is refused,
 * so that a checkpoint is never written through a link someone planted. */
static void tmp_clear(const Target *w)
{
    struct stat sb;
    if (lstat(w->tmp, &sb) != 0) {
        if (errno != ENOENT)
            fail_local(__FILE__, __LINE__, "lstat", "%s: %s", w->tmp, sys_error_string());
        return;
    }
    if (S_ISLNK(sb.st_mode))
        fail_local(__FILE__, __LINE__, "lstat",
                   "refusing to write checkpoint %s: its temporary %s is a symbolic link "
                   "(remove it)", w->path, w->tmp);
    if (unlink(w->tmp) != 0)
        fail_local(__FILE__, __LINE__, "unlink", "cannot remove the stale temporary %s: %s",
                   w->tmp, sys_error_string());
}

void checkpoint_meta_init(CheckpointMeta *m)
{
    memset(m, 0, sizeof *m);
    m->best_metric = NAN;
}

/* "NaN", "inf" or "-inf" for messages. */
static const char *nonfinite_name(float x)
{
    return isnan(x) ? "NaN" : x > 0 ? "inf" : "-inf";
}

/* Index of the first NaN or infinity in x[0..n), or n. */
static size_t first_nonfinite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return i;
    return n;
}

/* Sets what to "/model/<name> holds NaN at index i" for the first
 * non-finite value of the weights, BN statistics or momentum; 0 when all
 * are finite. */
static int params_nonfinite(const Params *p, char *what, size_t len)
{
    float *plain = xmalloc(largest_tensor(p) * sizeof(float));
    int found = 0;
    for (int b = 0; b < 2 && !found; b++) {
        ParamBuffer buf = b ? BUF_MOMENTUM : BUF_VALUE;
        for (int i = 0; i < p->count && !found; i++) {
            params_get_plain(p, i, buf, plain);
            size_t at = first_nonfinite(plain, p->info[i].numel);
            if ((found = at < p->info[i].numel))
                snprintf(what, len, "%s%s holds %s at index %zu",
                         b ? "/optimizer/momentum/" : "/model/", p->info[i].name,
                         nonfinite_name(plain[at]), at);
        }
    }
    for (int i = 0; i < p->bn_count && !found; i++) {
        for (int v = 0; v < 2 && !found; v++) {
            const float *x = v ? params_bn_running_var(p, i) : params_bn_running_mean(p, i);
            size_t at = first_nonfinite(x, p->bn[i].channels);
            if ((found = at < p->bn[i].channels))
                snprintf(what, len, "/model/%s.%s holds %s at index %zu", p->bn[i].name,
                         v ? "running_var" : "running_mean", nonfinite_name(x[at]), at);
        }
    }
    free(plain);
    return found;
}

int checkpoint_write(const char *path, const Params *p, const CheckpointMeta *m, Status *st)
{
    char tmp[4096], what[TENSOR_PATH_MAX + 64];
    CHECK((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) < sizeof tmp,
          "checkpoint path too long: %s", path);
    if (params_nonfinite(p, what, sizeof what)) {
        status_set(st, EXIT_NONFINITE,
                   "not writing checkpoint %s: %s (training diverged); the previous "
                   "checkpoints are kept", path, what);
        return st->code;
    }
    Target w = {.context = {.reword = write_failed}, .path = path, .tmp = tmp};
    tmp_clear(&w);
    h5_lock();
    hid_t file;
    /* exclusive: fails on anything that appeared at tmp since tmp_clear */
    H5E_BEGIN_TRY { file = H5Fcreate(tmp, H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT); }
    H5E_END_TRY;
    h5_unlock();
    if (file < 0) {
        if (errno != EEXIST)
            unlink(tmp); /* created by this call before it failed */
        fail_local(__FILE__, __LINE__, "H5Fcreate",
                   "cannot create checkpoint %s (directory missing or not writable? on a file "
                   "system without locks set HDF5_USE_FILE_LOCKING=FALSE)", tmp);
    }

    fail_context_set(&w.context);
    model_write(file, p, "model", BUF_VALUE, p->state, p->num_batches_tracked, NULL);
    if (p->ema)
        ema_write(file, p, m);
    momentum_write(file, p);
    meta_write(file, m);
    if (m->has_plateau)
        scheduler_write(file, &m->plateau);

    h5_lock();
    H5_CHECK(H5Fflush(file, H5F_SCOPE_GLOBAL));
    H5_CHECK(H5Fclose(file));
    h5_unlock();
    file_sync(tmp);
    SYS_CHECK(rename(tmp, path));
    fail_context_set(NULL);
    dir_sync(path);
    return 0;
}

void checkpoint_path(char *out, size_t len, const char *dir, int64_t step)
{
    CHECK((size_t)snprintf(out, len, "%s/step-%08lld.h5", dir, (long long)step) < len,
          "checkpoint path too long in %s", dir);
}

/* ------------------------------------------------------------------ */
/* reading: the file is the user's input, so every problem is a Status */

typedef struct {
    const char *path; /* as the user gave it: messages name it */
    hid_t file;
    Status *st;
    float *plain; /* scratch for one tensor in PyTorch layout */
} Reader;

/* Opens path for reading; -1 with st set when it is not a readable HDF5 file. */
static hid_t file_open(const char *path, Status *st)
{
    if (access(path, R_OK) != 0) {
        if (st)
            status_set(st, EXIT_USAGE, "%s: cannot read: %s", path, sys_error_string());
        return -1;
    }
    int is_h5;
    h5_lock();
    hid_t file = h5util_file_open(path, &is_h5);
    h5_unlock();
    if (file < 0 && st) {
        if (is_h5 == H5UTIL_NOT_REGULAR)
            status_set(st, EXIT_USAGE, "%s: not a regular file (a FIFO, device or directory)",
                       path);
        else if (!is_h5)
            status_set(st, EXIT_USAGE, "%s: not an HDF5 file", path);
        else
            status_set(st, EXIT_USAGE, "%s: cannot open as HDF5 (truncated or damaged file?)",
                       path);
    }
    return file;
}

static int link_exists(hid_t loc, const char *name)
{
    h5_lock();
    int yes = h5util_link_exists(loc, name);
    h5_unlock();
    return yes;
}

static int attr_exists(hid_t loc, const char *name)
{
    h5_lock();
    htri_t yes;
    H5E_BEGIN_TRY { yes = H5Aexists(loc, name); }
    H5E_END_TRY;
    h5_unlock();
    return yes > 0;
}

/* The element type found, as text. A PyTorch complex tensor reaches HDF5
 * as a compound type, so checkpoints name that case. */
static const char *type_desc(const H5utilFound *f)
{
    return f->cls == H5T_COMPOUND ? "compound (complex?)" : f->type;
}

/* Words what h5util found wrong with attribute name on where ("/" or
 * "/scheduler"), expected to be one want_desc; 0 when nothing, else -1. */
static int attr_problem(Reader *r, const char *where, const char *name, const char *want_desc,
                        const H5utilFound *f)
{
    const char *kind = strcmp(where, "/") == 0 ? "root attribute" : "attribute";
    const char *of = strcmp(where, "/") == 0 ? "" : " of ";
    const char *grp = strcmp(where, "/") == 0 ? "" : where;
    if (f->problem == H5UTIL_OK)
        return 0;
    if (f->problem == H5UTIL_MISSING || f->problem == H5UTIL_UNOPENABLE)
        status_set(r->st, EXIT_USAGE, "%s: %s %s%s%s is missing (not a resnet-dist checkpoint?)",
                   r->path, kind, name, of, grp);
    else if (f->problem == H5UTIL_WRONG_TYPE)
        status_set(r->st, EXIT_USAGE, "%s: %s %s%s%s has type %s with %lld values, expected one %s",
                   r->path, kind, name, of, grp, type_desc(f), (long long)f->npoints, want_desc);
    else
        status_set(r->st, EXIT_USAGE, "%s: cannot read attribute %s of %s", r->path, name, where);
    return -1;
}

/* Reads attribute name on loc: one value of class cls, as mem_type. */
static int attr_read(Reader *r, hid_t loc, const char *where, const char *name,
                     H5T_class_t cls, const char *desc, hid_t mem_type, void *out)
{
    H5utilFound f;
    h5_lock();
    h5util_attr_read(loc, name, cls, 1, mem_type, out, &f);
    h5_unlock();
    return attr_problem(r, where, name, desc, &f);
}

/* "root attribute step" or "attribute patience of /scheduler" */
static void attr_label(char *out, size_t len, const char *where, const char *name)
{
    if (strcmp(where, "/") == 0)
        snprintf(out, len, "root attribute %s", name);
    else
        snprintf(out, len, "attribute %s of %s", name, where);
}

static int attr_out_of_range(Reader *r, const char *where, const char *name, const char *got,
                             const char *expected)
{
    char label[PARAM_NAME_MAX];
    attr_label(label, sizeof label, where, name);
    status_set(r->st, EXIT_USAGE, "%s: %s is %s, expected %s", r->path, label, got, expected);
    return -1;
}

/* An integer attribute within [lo, hi]. HDF5 saturates a value that does
 * not fit the memory type, so the attribute is read as int64 and as uint64:
 * the two agree only when the stored value is a 64-bit signed integer, and
 * nothing is ever truncated on the way to a narrower C type. */
static int attr_i64_in(Reader *r, hid_t loc, const char *where, const char *name, int64_t lo,
                       int64_t hi, int64_t *out)
{
    int64_t v = 0;
    uint64_t u = 0;
    if (attr_read(r, loc, where, name, H5T_INTEGER, "integer", H5T_NATIVE_INT64, &v) < 0 ||
        attr_read(r, loc, where, name, H5T_INTEGER, "integer", H5T_NATIVE_UINT64, &u) < 0)
        return -1;
    int fits = v >= 0 ? (uint64_t)v == u : u == 0;
    if (fits && v >= lo && v <= hi) {
        *out = v;
        return 0;
    }
    char got[32], expected[80];
    if (fits)
        snprintf(got, sizeof got, "%lld", (long long)v);
    else if (v >= 0)
        snprintf(got, sizeof got, "%llu", (unsigned long long)u);
    else
        snprintf(got, sizeof got, "below %lld", (long long)INT64_MIN);
    snprintf(expected, sizeof expected, "an integer from %lld to %lld", (long long)lo,
             (long long)hi);
    return attr_out_of_range(r, where, name, got, expected);
}

static int attr_int_in(Reader *r, hid_t loc, const char *where, const char *name, int lo, int hi,
                       int *out)
{
    int64_t v;
    if (attr_i64_in(r, loc, where, name, lo, hi, &v) < 0)
        return -1;
    *out = (int)v; /* within [lo, hi], so within int */
    return 0;
}

static int attr_f64(Reader *r, hid_t loc, const char *where, const char *name, double *out)
{
    return attr_read(r, loc, where, name, H5T_FLOAT, "float", H5T_NATIVE_DOUBLE, out);
}

/* A float attribute within [lo, hi] (infinite bounds admit infinities);
 * NaN only when nan_ok. */
static int attr_f64_in(Reader *r, hid_t loc, const char *where, const char *name, double lo,
                       double hi, int nan_ok, double *out)
{
    if (attr_f64(r, loc, where, name, out) < 0)
        return -1;
    if (isnan(*out) ? nan_ok : *out >= lo && *out <= hi)
        return 0;
    char got[32], expected[80];
    snprintf(got, sizeof got, "%g", *out);
    if (isinf(hi) && isinf(lo))
        snprintf(expected, sizeof expected, "a number (not NaN)");
    else if (lo == -DBL_MAX && hi == DBL_MAX)
        snprintf(expected, sizeof expected, "a finite number%s", nan_ok ? " or NaN" : "");
    else if (hi == DBL_MAX)
        snprintf(expected, sizeof expected, "a finite number of at least %g%s", lo,
                 nan_ok ? " or NaN" : "");
    else
        snprintf(expected, sizeof expected, "a number from %g to %g%s", lo, hi,
                 nan_ok ? " or NaN" : "");
    return attr_out_of_range(r, where, name, got, expected);
}

/* Fixed-length or variable-length strings, as h5py may write either. */
static int attr_str(Reader *r, hid_t loc, const char *where, const char *name, char *out,
                    size_t len)
{
    H5utilFound f;
    h5_lock();
    h5util_attr_read_string(loc, name, out, len, &f);
    h5_unlock();
    return attr_problem(r, where, name, "string", &f);
}

/* A string attribute that must fit out whole: a longer one would be
 * compared cut short. */
static int attr_str_whole(Reader *r, hid_t loc, const char *where, const char *name, char *out,
                          size_t len)
{
    char *whole = xmalloc(len + 1);
    int ret = attr_str(r, loc, where, name, whole, len + 1);
    if (ret == 0 && strlen(whole) >= len) {
        char got[64];
        snprintf(got, sizeof got, "longer than %zu characters", len - 1);
        ret = attr_out_of_range(r, where, name, got, "a shorter string");
    } else if (ret == 0) {
        memcpy(out, whole, len);
    }
    free(whole);
    return ret;
}

/* Reads a string attribute that must be one of two words; returns 0 or 1. */
static int attr_choice(Reader *r, hid_t loc, const char *name, const char *w0, const char *w1,
                       int *out)
{
    char s[32];
    if (attr_str(r, loc, "/scheduler", name, s, sizeof s) < 0)
        return -1;
    if (strcmp(s, w0) != 0 && strcmp(s, w1) != 0) {
        status_set(r->st, EXIT_USAGE,
                   "%s: attribute %s of /scheduler is \"%s\", expected \"%s\" or \"%s\"",
                   r->path, name, s, w0, w1);
        return -1;
    }
    *out = strcmp(s, w1) == 0;
    return 0;
}

/* The seed is a uint64; a negative value stored signed is refused rather
 * than saturated to 0. */
static int attr_seed(Reader *r, hid_t loc, uint64_t *out)
{
    int64_t v = 0;
    if (attr_read(r, loc, "/", "seed", H5T_INTEGER, "integer", H5T_NATIVE_INT64, &v) < 0 ||
        attr_read(r, loc, "/", "seed", H5T_INTEGER, "integer", H5T_NATIVE_UINT64, out) < 0)
        return -1;
    if (v >= 0)
        return 0;
    char got[32];
    snprintf(got, sizeof got, "%lld", (long long)v);
    return attr_out_of_range(r, "/", "seed", got, "an unsigned 64-bit integer");
}

/* Absent in files written before it existed: then 0. */
static int attr_validation_pending(Reader *r, int *out)
{
    *out = 0;
    if (!attr_exists(r->file, "validation_pending"))
        return 0;
    return attr_int_in(r, r->file, "/", "validation_pending", 0, 1, out);
}

static int meta_read(Reader *r, CheckpointMeta *m)
{
    const char *root = "/";
    hid_t f = r->file;
    int64_t format = 0;
    if (attr_i64_in(r, f, root, "format_version", INT64_MIN, INT64_MAX, &format) < 0)
        return -1;
    if (format != CHECKPOINT_FORMAT_VERSION) {
        status_set(r->st, EXIT_USAGE, "%s: format_version is %lld, this program reads %d",
                   r->path, (long long)format, CHECKPOINT_FORMAT_VERSION);
        return -1;
    }
    if (attr_str_whole(r, f, root, "arch", m->arch, sizeof m->arch) < 0 ||
        attr_int_in(r, f, root, "num_classes", 1, CKPT_CLASSES_MAX, &m->num_classes) < 0 ||
        attr_i64_in(r, f, root, "step", 0, CKPT_STEP_MAX, &m->step) < 0 ||
        attr_i64_in(r, f, root, "epoch", 0, m->step, &m->epoch) < 0 ||
        attr_i64_in(r, f, root, "epoch_step", 0, m->step, &m->epoch_step) < 0 ||
        attr_f64_in(r, f, root, "lr", 0, DBL_MAX, 0, &m->lr) < 0 ||
        attr_i64_in(r, f, root, "global_batch", 1, CKPT_BATCH_MAX, &m->global_batch) < 0 ||
        attr_seed(r, f, &m->seed) < 0 ||
        attr_int_in(r, f, root, "world_size", 1, CKPT_WORLD_MAX, &m->world_size) < 0 ||
        attr_f64_in(r, f, root, "best_metric", -DBL_MAX, DBL_MAX, 1, &m->best_metric) < 0 ||
        attr_str_whole(r, f, root, "dataset_fingerprint", m->dataset_fingerprint,
                       sizeof m->dataset_fingerprint) < 0 ||
        attr_str(r, f, root, "version", m->version, sizeof m->version) < 0 ||
        attr_str(r, f, root, "command_line", m->command_line, sizeof m->command_line) < 0 ||
        attr_validation_pending(r, &m->validation_pending) < 0)
        return -1;
    return 0;
}

/* The settings within the ranges of the --plateau-* flags; the state
 * within what the rule itself produces. */
static int plateau_read(Reader *r, hid_t g, Plateau *s)
{
    const char *w = "/scheduler";
    char type[32];
    int is_max = 0, is_abs = 0;
    if (attr_str(r, g, w, "type", type, sizeof type) < 0)
        return -1;
    if (strcmp(type, "ReduceLROnPlateau") != 0)
        return attr_out_of_range(r, w, "type", type, "ReduceLROnPlateau");
    int bad = attr_choice(r, g, "mode", "min", "max", &is_max) < 0 ||
              attr_f64_in(r, g, w, "factor", 1e-9, 0.999999, 0, &s->factor) < 0 ||
              attr_int_in(r, g, w, "patience", 0, CKPT_PLATEAU_MAX, &s->patience) < 0 ||
              attr_f64_in(r, g, w, "threshold", 0, 1e9, 0, &s->threshold) < 0 ||
              attr_choice(r, g, "threshold_mode", "rel", "abs", &is_abs) < 0 ||
              attr_int_in(r, g, w, "cooldown", 0, CKPT_PLATEAU_MAX, &s->cooldown) < 0 ||
              attr_f64_in(r, g, w, "min_lr", 0, DBL_MAX, 0, &s->min_lr) < 0 ||
              attr_f64_in(r, g, w, "eps", 0, DBL_MAX, 0, &s->eps) < 0 ||
              attr_f64_in(r, g, w, "best", -INFINITY, INFINITY, 0, &s->best) < 0 ||
              attr_int_in(r, g, w, "num_bad_epochs", 0, s->patience, &s->num_bad_epochs) < 0 ||
              attr_int_in(r, g, w, "cooldown_counter", 0, s->cooldown, &s->cooldown_counter) < 0 ||
              attr_i64_in(r, g, w, "last_epoch", 0, CKPT_STEP_MAX, &s->last_epoch) < 0;
    s->mode = is_max ? PLATEAU_MAX : PLATEAU_MIN;
    s->threshold_mode = is_abs ? THRESHOLD_ABS : THRESHOLD_REL;
    return bad ? -1 : 0;
}

static int scheduler_read(Reader *r, CheckpointMeta *m)
{
    m->has_plateau = link_exists(r->file, "scheduler");
    if (!m->has_plateau)
        return 0;
    h5_lock();
    hid_t g;
    H5E_BEGIN_TRY { g = H5Gopen2(r->file, "scheduler", H5P_DEFAULT); }
    H5E_END_TRY;
    h5_unlock();
    if (g < 0) {
        status_set(r->st, EXIT_USAGE, "%s: /scheduler is not a group", r->path);
        return -1;
    }
    int ret = plateau_read(r, g, &m->plateau);
    h5_lock();
    H5Oclose(g);
    h5_unlock();
    return ret;
}

/* " (the checkpoint is resnet50 with 1000 classes)" when the file says, to
 * explain a missing tensor or a wrong shape. */
static void file_hint(const Reader *r, char *out, size_t len)
{
    Status quiet = {0};
    Reader q = *r;
    q.st = &quiet;
    char arch[32];
    int classes;
    out[0] = '\0';
    if (attr_str(&q, r->file, "/", "arch", arch, sizeof arch) == 0 &&
        attr_int_in(&q, r->file, "/", "num_classes", 1, CKPT_CLASSES_MAX, &classes) == 0)
        snprintf(out, len, " (the checkpoint is %s with %d classes)", arch, classes);
}

/* Whether found's shape is (dims), or with ndims -1 any single value. */
static int shape_matches(const H5utilFound *f, int ndims, const int64_t *dims)
{
    int same = ndims < 0 ? f->npoints == 1 : f->rank == ndims;
    for (int d = 0; same && ndims > 0 && d < ndims; d++)
        same = f->dims[d] == dims[d];
    return same;
}

/* Checks that the dataset name exists with the given shape (ndims -1: any
 * single value) and type class, and reads it into out when out is not NULL.
 * Returns 1 when done, 0 when absent and optional, -1 with st set. */
static int tensor_io(Reader *r, const char *name, int ndims, const int64_t *dims, int is_int,
                     int optional, void *out)
{
    static const H5utilType any_int = {.cls = H5T_INTEGER};
    static const H5utilType float32 = {.cls = H5T_FLOAT, .size = 4};
    char got[DESC_MAX], want[DESC_MAX], hint[DESC_MAX];
    H5utilFound f;
    int ret = -1;
    size_t at;
    h5_lock();
    hid_t ds = h5util_dataset_open(r->file, name, is_int ? any_int : float32, &f);
    if (f.problem == H5UTIL_MISSING && optional) {
        ret = 0;
    } else if (f.problem == H5UTIL_MISSING) {
        file_hint(r, hint, sizeof hint);
        status_set(r->st, EXIT_USAGE, "%s: %s is missing%s", r->path, name, hint);
    } else if (f.problem == H5UTIL_UNOPENABLE) {
        status_set(r->st, EXIT_USAGE, "%s: %s is not a readable dataset", r->path, name);
    } else if (f.problem == H5UTIL_REFUSED_STORAGE) {
        status_set(r->st, EXIT_USAGE,
                   "%s: %s is refused: its data is not stored in the file (%s); a checkpoint "
                   "must hold its own tensors",
                   r->path, name, f.storage);
    } else if (f.problem == H5UTIL_WRONG_TYPE) {
        status_set(r->st, EXIT_USAGE, "%s: %s has type %s, expected %s", r->path, name,
                   type_desc(&f), is_int ? "int64" : "float32");
    } else if (!shape_matches(&f, ndims, dims)) {
        h5util_shape_string(got, sizeof got, f.rank, f.dims);
        if (ndims < 0)
            snprintf(want, sizeof want, "a single value");
        else
            h5util_shape_string(want, sizeof want, ndims, dims);
        file_hint(r, hint, sizeof hint);
        status_set(r->st, EXIT_USAGE, "%s: %s has shape %s, the model expects %s%s", r->path,
                   name, got, want, hint);
    } else if (out &&
               h5util_dataset_read(ds, is_int ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT, out) < 0) {
        status_set(r->st, EXIT_USAGE, "%s: reading %s failed (damaged file?)", r->path, name);
    } else if (out && !is_int &&
               (at = first_nonfinite(out, (size_t)f.npoints)) < (size_t)f.npoints) {
        status_set(r->st, EXIT_USAGE,
                   "%s: %s holds %s at index %zu; a checkpoint must hold finite values (saved "
                   "from a diverged run?)", r->path, name, nonfinite_name(((float *)out)[at]), at);
    } else {
        ret = 1;
    }
    h5util_dataset_close(&ds);
    h5_unlock();
    return ret;
}

/* One parameter tensor under prefix ("/model/" or "/optimizer/momentum/"):
 * checked, and when load is set read and stored into buffer buf. */
static int param_io(Reader *r, Params *p, int i, const char *prefix, ParamBuffer buf, int load)
{
    const ParamInfo *info = &p->info[i];
    char name[TENSOR_PATH_MAX];
    snprintf(name, sizeof name, "%s%s", prefix, info->name);
    if (tensor_io(r, name, info->ndims, info->dims, 0, 0, load ? r->plain : NULL) < 0)
        return -1;
    if (load)
        params_set_plain(p, i, buf, r->plain);
    return 0;
}

/* BN layer i's running statistics and counter under group ("/model/" or
 * "/model_ema/"), into state (laid out as p->state) and *nbt_out; the
 * counter may be absent in weights-only loads. One counter serves all
 * layers, so the first one found wins. */
static int bn_io(Reader *r, Params *p, int i, const char *group, float *state, int64_t *nbt_out,
                 int nbt_optional, int load, int *nbt_seen)
{
    const BnStateInfo *bn = &p->bn[i];
    int64_t c = (int64_t)bn->channels;
    float *mean = state + bn->offset, *var = mean + bn->channels;
    char name[TENSOR_PATH_MAX];
    snprintf(name, sizeof name, "%s%s.running_mean", group, bn->name);
    if (tensor_io(r, name, 1, &c, 0, 0, load ? mean : NULL) < 0)
        return -1;
    snprintf(name, sizeof name, "%s%s.running_var", group, bn->name);
    if (tensor_io(r, name, 1, &c, 0, 0, load ? var : NULL) < 0)
        return -1;
    for (int64_t k = 0; load && k < c; k++)
        if (var[k] < 0) {
            status_set(r->st, EXIT_USAGE, "%s: %s holds the negative variance %g at index %lld",
                       r->path, name, var[k], (long long)k);
            return -1;
        }
    snprintf(name, sizeof name, "%s%s.num_batches_tracked", group, bn->name);
    int64_t nbt = 0;
    int found = tensor_io(r, name, -1, NULL, 1, nbt_optional, load ? &nbt : NULL);
    if (found < 0)
        return -1;
    if (found && load && nbt < 0) {
        status_set(r->st, EXIT_USAGE, "%s: %s is %lld, expected a count of at least 0", r->path,
                   name, (long long)nbt);
        return -1;
    }
    if (found && load && !*nbt_seen) {
        *nbt_out = nbt;
        *nbt_seen = 1;
    }
    return 0;
}

/* One state_dict group's tensors into buf, state and *nbt. */
static int group_io(Reader *r, Params *p, const char *group, ParamBuffer buf, float *state,
                    int64_t *nbt, int nbt_optional, int load)
{
    int nbt_seen = 0;
    for (int i = 0; i < p->count; i++)
        if (param_io(r, p, i, group, buf, load) < 0)
            return -1;
    for (int i = 0; i < p->bn_count; i++)
        if (bn_io(r, p, i, group, state, nbt, nbt_optional, load, &nbt_seen) < 0)
            return -1;
    return 0;
}

/* Checks (load 0) or loads (load 1) every tensor the model needs; with_ema:
 * also /model_ema into the EMA buffers. */
static int tensors_io(Reader *r, Params *p, CheckpointPart what, int with_ema, int load)
{
    const char *model = what == CKPT_EMA_WEIGHTS ? "/model_ema/" : "/model/";
    if (group_io(r, p, model, BUF_VALUE, p->state, &p->num_batches_tracked,
                 what != CKPT_FULL, load) < 0)
        return -1;
    if (with_ema && group_io(r, p, "/model_ema/", BUF_EMA, p->ema_state,
                             &p->ema_num_batches_tracked, 0, load) < 0)
        return -1;
    if (what == CKPT_FULL)
        for (int i = 0; i < p->count; i++)
            if (param_io(r, p, i, "/optimizer/momentum/", BUF_MOMENTUM, load) < 0)
                return -1;
    return 0;
}

static int ends_with(const char *s, const char *suffix, size_t *stem)
{
    size_t n = strlen(s), k = strlen(suffix);
    if (n < k || strcmp(s + n - k, suffix) != 0)
        return 0;
    *stem = n - k;
    return 1;
}

static int model_has_key(const Params *p, const char *key)
{
    static const char *suffixes[] = {".running_mean", ".running_var", ".num_batches_tracked"};
    if (params_find(p, key) >= 0)
        return 1;
    for (size_t s = 0; s < sizeof suffixes / sizeof *suffixes; s++) {
        size_t stem;
        char prefix[PARAM_NAME_MAX];
        if (ends_with(key, suffixes[s], &stem) && stem < sizeof prefix) {
            memcpy(prefix, key, stem);
            prefix[stem] = '\0';
            if (params_bn_state_find(p, prefix) >= 0)
                return 1;
        }
    }
    return 0;
}

typedef struct {
    const Params *p;
    int count;
    char names[256];
} ExtraKeys;

static herr_t extra_key_visit(hid_t group, const char *name, const H5L_info_t *info, void *data)
{
    (void)group;
    (void)info;
    ExtraKeys *x = data;
    if (model_has_key(x->p, name))
        return 0;
    if (x->count < EXTRA_NAMES_SHOWN) {
        size_t used = strlen(x->names);
        snprintf(x->names + used, sizeof x->names - used, "%s%s", x->count ? ", " : "", name);
    }
    x->count++;
    return 0;
}

/* Tensors in the file that the model does not have (e.g. a torchvision
 * head on a model with another one) are ignored, but said. */
static void warn_extra_keys(const Reader *r, const Params *p)
{
    ExtraKeys x = {.p = p};
    h5_lock();
    H5E_BEGIN_TRY
    {
        hid_t g = H5Gopen2(r->file, "model", H5P_DEFAULT);
        if (g >= 0) {
            H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, extra_key_visit, &x);
            H5Gclose(g);
        }
    }
    H5E_END_TRY;
    h5_unlock();
    if (x.count)
        log_warn("%s: ignoring %d tensor(s) in /model that the model does not have: %s%s", r->path,
                 x.count, x.names, x.count > EXTRA_NAMES_SHOWN ? ", ..." : "");
}

int checkpoint_read(const char *path, Params *p, CheckpointMeta *m, CheckpointPart what,
                    Status *st)
{
    Reader r = {.path = path, .st = st};
    r.file = file_open(path, st);
    if (r.file < 0)
        return st->code;
    CheckpointMeta meta;
    checkpoint_meta_init(&meta);
    if (what == CKPT_FULL && (meta_read(&r, &meta) < 0 || scheduler_read(&r, &meta) < 0))
        goto done;
    if (!link_exists(r.file, "model")) {
        status_set(st, EXIT_USAGE, "%s: has no /model group (expected /model/<state_dict key>)",
                   path);
        goto done;
    }
    if (what == CKPT_EMA_WEIGHTS && !link_exists(r.file, "model_ema")) {
        status_set(st, EXIT_USAGE, "%s: has no /model_ema group (saved by a run without "
                   "--model-ema); drop --init-from-ema to load /model", path);
        goto done;
    }
    meta.has_ema = what == CKPT_FULL && p->ema && link_exists(r.file, "model_ema");
    /* Check everything first, so a bad file usually leaves p untouched. */
    r.plain = xmalloc(largest_tensor(p) * sizeof(float));
    if (tensors_io(&r, p, what, meta.has_ema, 0) < 0 ||
        tensors_io(&r, p, what, meta.has_ema, 1) < 0)
        goto done;
    warn_extra_keys(&r, p);
    if (what == CKPT_FULL && m)
        *m = meta;
done:
    free(r.plain);
    h5_lock();
    h5util_file_close(&r.file);
    h5_unlock();
    return st->code;
}

/* ------------------------------------------------------------------ */
/* the model and its input: every attribute optional                   */

/* Each reader below leaves its field as it is when the attribute is absent. */

static int spec_stem(Reader *r, CheckpointSpec *s)
{
    char stem[32];
    if (!attr_exists(r->file, "stem"))
        return 0;
    if (attr_str(r, r->file, "/", "stem", stem, sizeof stem) < 0)
        return -1;
    if (strcmp(stem, "imagenet") != 0 && strcmp(stem, "small") != 0) {
        char got[48];
        snprintf(got, sizeof got, "\"%s\"", stem);
        return attr_out_of_range(r, "/", "stem", got, "\"imagenet\" or \"small\"");
    }
    s->small_stem = strcmp(stem, "small") == 0;
    return 0;
}

static int spec_int(Reader *r, const char *name, int lo, int hi, int *out)
{
    return attr_exists(r->file, name) ? attr_int_in(r, r->file, "/", name, lo, hi, out) : 0;
}

/* mean and std: one value per input channel (1 or 3 each), finite, std > 0. */
static int spec_mean_std(Reader *r, CheckpointSpec *s)
{
    int has_mean = attr_exists(r->file, "mean"), has_std = attr_exists(r->file, "std");
    if (!has_mean && !has_std)
        return 0;
    H5utilFound fm = {0}, fs = {0};
    h5_lock();
    if (has_mean)
        h5util_attr_read(r->file, "mean", H5T_FLOAT, 3, H5T_NATIVE_DOUBLE, s->mean, &fm);
    if (has_std)
        h5util_attr_read(r->file, "std", H5T_FLOAT, 3, H5T_NATIVE_DOUBLE, s->std, &fs);
    h5_unlock();
    const char *want = "1 or 3 floats (one per input channel)";
    if (attr_problem(r, "/", "mean", want, &fm) < 0 || attr_problem(r, "/", "std", want, &fs) < 0)
        return -1;
    if (fm.npoints != fs.npoints || fm.npoints == 2) {
        status_set(r->st, EXIT_USAGE, "%s: root attributes mean and std have %lld and %lld "
                   "values, expected 1 or 3 each (one per input channel)", r->path,
                   (long long)fm.npoints, (long long)fs.npoints);
        return -1;
    }
    for (int c = 0; c < fm.npoints; c++)
        if (!isfinite(s->mean[c]) || !isfinite(s->std[c]) || s->std[c] <= 0) {
            status_set(r->st, EXIT_USAGE, "%s: root attributes mean[%d] = %g, std[%d] = %g: "
                       "expected finite values with std > 0", r->path, c, s->mean[c], c,
                       s->std[c]);
            return -1;
        }
    s->channels = (int)fm.npoints;
    return 0;
}

/* class_names: one string per class, when num_classes is known as many. */
static int spec_class_names(Reader *r, CheckpointSpec *s)
{
    if (!attr_exists(r->file, "class_names"))
        return 0;
    H5utilFound f;
    int64_t n = 0;
    h5_lock();
    h5util_attr_read_strings(r->file, "class_names", CKPT_CLASSES_MAX, &s->class_names, &n, &f);
    h5_unlock();
    s->num_class_names = (int)n;
    if (attr_problem(r, "/", "class_names", "string per class", &f) < 0)
        return -1;
    if (s->num_classes && n != s->num_classes) {
        status_set(r->st, EXIT_USAGE, "%s: root attribute class_names has %lld names, but "
                   "num_classes is %d", r->path, (long long)n, s->num_classes);
        return -1;
    }
    return 0;
}

static int spec_read(Reader *r, CheckpointSpec *s)
{
    if (attr_exists(r->file, "arch") &&
        attr_str_whole(r, r->file, "/", "arch", s->arch, sizeof s->arch) < 0)
        return -1;
    if (attr_exists(r->file, "step") &&
        attr_i64_in(r, r->file, "/", "step", 0, CKPT_STEP_MAX, &s->step) < 0)
        return -1;
    if (attr_exists(r->file, "epoch") &&
        attr_i64_in(r, r->file, "/", "epoch", 0, s->step < 0 ? CKPT_STEP_MAX : s->step,
                    &s->epoch) < 0)
        return -1;
    int64_t epoch_step = -1;
    if (attr_exists(r->file, "epoch_step") &&
        attr_i64_in(r, r->file, "/", "epoch_step", 0, CKPT_STEP_MAX, &epoch_step) < 0)
        return -1;
    if (s->epoch > 0 && s->step > 0 && epoch_step == 0)
        s->epoch--; /* written at an epoch's end: its last step is in the epoch before */
    if (spec_int(r, "num_classes", 1, CKPT_CLASSES_MAX, &s->num_classes) < 0 ||
        spec_stem(r, s) < 0 ||
        spec_int(r, "input_size", CKPT_IMAGE_SIZE_MIN, CKPT_IMAGE_SIZE_MAX, &s->input_size) < 0 ||
        spec_int(r, "resize_size", CKPT_IMAGE_SIZE_MIN, CKPT_IMAGE_SIZE_MAX, &s->resize_size) < 0 ||
        spec_mean_std(r, s) < 0 || spec_class_names(r, s) < 0)
        return -1;
    if (s->input_size && s->resize_size && s->input_size > s->resize_size) {
        status_set(r->st, EXIT_USAGE, "%s: root attribute input_size %d is larger than "
                   "resize_size %d", r->path, s->input_size, s->resize_size);
        return -1;
    }
    return 0;
}

int checkpoint_read_spec(const char *path, CheckpointSpec *s, Status *st)
{
    memset(s, 0, sizeof *s);
    s->small_stem = -1;
    s->step = s->epoch = -1;
    Reader r = {.path = path, .st = st};
    r.file = file_open(path, st);
    if (r.file < 0)
        return st->code;
    spec_read(&r, s);
    h5_lock();
    h5util_file_close(&r.file);
    h5_unlock();
    return st->code;
}

void checkpoint_spec_free(CheckpointSpec *s)
{
    h5util_strings_free(s->class_names, s->num_class_names);
    s->class_names = NULL;
    s->num_class_names = 0;
}

int checkpoint_is_valid(const char *path)
{
    hid_t file = file_open(path, NULL);
    if (file < 0)
        return 0;
    int ok = 0;
    h5_lock();
    H5E_BEGIN_TRY
    {
        ok = H5Aexists(file, "format_version") > 0 && H5Aexists(file, "step") > 0 &&
             H5Lexists(file, "model", H5P_DEFAULT) > 0;
    }
    H5E_END_TRY;
    h5util_file_close(&file);
    h5_unlock();
    return ok;
}

/* step-<digits>.h5 exactly: not .tmp leftovers, not best.h5. */
static int parse_step_name(const char *name, int64_t *step)
{
    if (strncmp(name, "step-", 5) != 0)
        return 0;
    const char *s = name + 5;
    size_t digits = strspn(s, "0123456789");
    if (digits == 0 || digits > 18 || strcmp(s + digits, ".h5") != 0)
        return 0;
    *step = strtoll(s, NULL, 10);
    return 1;
}

int checkpoint_is_temporary(const char *name)
{
    int64_t step;
    size_t n = strlen(name), k = strlen(".tmp");
    char stem[CHECKPOINT_NAME_MAX];
    if (n <= k || n - k >= sizeof stem || strcmp(name + n - k, ".tmp") != 0)
        return 0;
    memcpy(stem, name, n - k);
    stem[n - k] = '\0';
    return strcmp(stem, "best.h5") == 0 || parse_step_name(stem, &step);
}

/* Newest first: by the step number, not by the name, whose zero padding
 * stops at 8 digits. */
static int step_desc(const void *a, const void *b)
{
    int64_t x = ((const CheckpointFile *)a)->step, y = ((const CheckpointFile *)b)->step;
    return (x < y) - (x > y);
}

int checkpoint_list(const char *dir, CheckpointFile **files, size_t *count)
{
    *files = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    size_t cap = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        int64_t step;
        if (!parse_step_name(e->d_name, &step))
            continue;
        if (*count == cap) {
            cap = cap ? 2 * cap : 16;
            *files = xrealloc(*files, cap * sizeof **files);
        }
        CheckpointFile *f = &(*files)[(*count)++];
        f->step = step;
        memcpy(f->name, e->d_name, strlen(e->d_name) + 1); /* "step-" 18 digits ".h5" fit */
    }
    closedir(d);
    if (*count > 1)
        qsort(*files, *count, sizeof **files, step_desc);
    return 0;
}

int checkpoint_find_latest(const char *dir, char *out, size_t outlen, Status *st)
{
    CheckpointFile *files;
    size_t n;
    if (checkpoint_list(dir, &files, &n) != 0) {
        if (errno == ENOENT)
            return 0;
        status_set(st, EXIT_USAGE, "%s: cannot read checkpoint directory: %s", dir,
                   sys_error_string());
        return st->code;
    }
    int found = 0;
    for (size_t i = 0; i < n && !found; i++) {
        CHECK((size_t)snprintf(out, outlen, "%s/%s", dir, files[i].name) < outlen,
              "checkpoint path too long in %s", dir);
        found = checkpoint_is_valid(out);
        if (!found)
            log_warn("skipping %s: not a valid checkpoint (truncated or damaged)", out);
    }
    free(files);
    if (!found && outlen)
        out[0] = '\0';
    return found;
}

void checkpoint_prune(const char *dir, int64_t step, int keep)
{
    CheckpointFile *files;
    size_t n;
    if (keep <= 0 || checkpoint_list(dir, &files, &n) != 0)
        return;
    int kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (files[i].step > step || kept++ < keep)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
        if (unlink(path) != 0)
            log_warn("cannot remove old checkpoint %s: %s", path, strerror(errno));
    }
    free(files);
}
