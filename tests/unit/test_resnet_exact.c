/*
 * test_resnet_exact.c - one training step of whole networks against PyTorch
 * (docs/design.md section 4: loss, gradients and updated weights match torch to
 * float32 tolerance).
 *
 * For resnet18, resnet50, the CIFAR resnet20, resnext50_32x4d and
 * wide_resnet50_2, tests/fixtures/gen_reference.py writes seeded weights, a
 * batch and torch's float64 results to build/fixtures
 * (run at start-up when a fixture is missing or older than the script; see
 * tests/fixtures/README.md). We load the weights into our Net and compare,
 * tensor by tensor: training-mode logits and loss, every gradient, the BN
 * running statistics, the weights after one SGD step and the update itself,
 * the label-smoothed loss and its classifier gradients, and eval-mode logits
 * and loss.
 *
 * A tensor's error is max|ours - torch64| / max|torch64|. Its tolerance is
 * TOL_FACTOR x torch's own float32 error on the same tensor (measured by the
 * script, worst of two kernels), at least TOL_FLOOR: genuine cancellation
 * (BN bias gradients whose upstream gradient sums to zero through a 1x1 conv
 * and a BN) costs any float32 implementation the same. The script keeps ReLU
 * inputs and the stem max-pool's top two values clear of float32's rounding
 * error, so no branch differs between float32 and float64 and what is left to
 * compare is rounding. Each group prints one line: the worst error, ours and
 * torch's, and the worst ratio to the tolerance (RESNET_EXACT_VERBOSE=1 prints
 * every tensor). Any tensor over its tolerance fails the test.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <hdf5.h>
#include <mpi.h>

#include "dnn.h"
#include "error.h"
#include "h5lock.h"
#include "loss.h"
#include "params.h"
#include "resnet.h"
#include "sgd.h"

/* tolerance = max(TOL_FACTOR x torch32_err, TOL_FLOOR); measured ours/tol <= 0.15 */
#define TOL_FACTOR 10.0
#define TOL_FLOOR 1e-4
#define SCRIPT "tests/fixtures/gen_reference.py"

typedef struct {
    const char *arch;
    int size, batch, seed;
} Case;

static const Case CASES[] = {
    /* layer3 3x3 -> layer4 2x2: odd sizes */
    {.arch = "resnet18", .size = 48, .batch = 4, .seed = 1},
    {.arch = "resnet50", .size = 64, .batch = 2, .seed = 1},
    {.arch = "resnet20", .size = 32, .batch = 4, .seed = 1},
    /* grouped 3x3 convolutions */
    {.arch = "resnext50_32x4d", .size = 64, .batch = 2, .seed = 1},
    {.arch = "wide_resnet50_2", .size = 64, .batch = 2, .seed = 1},
};

static void fixture_path(const Case *c, char *out, size_t len)
{
    const char *build = getenv("BUILD");
    snprintf(out, len, "%s/fixtures/%s-%dpx-b%d-s%d.h5", build && *build ? build : "build",
             c->arch, c->size, c->batch, c->seed);
}

/* Runs the generator when the fixture is missing or older than the script.
 * Before MPI_Init: Open MPI dislikes fork() in an MPI process. */
static void fixture_make(const Case *c)
{
    char path[512], cmd[2048];
    fixture_path(c, path, sizeof path);
    struct stat fs, ss;
    if (stat(path, &fs) == 0 && (stat(SCRIPT, &ss) != 0 || fs.st_mtime >= ss.st_mtime))
        return;
    const char *py = getenv("PYTHON");
    snprintf(cmd, sizeof cmd, "'%s' " SCRIPT " --arch %s --size %d --batch %d --seed %d --out '%s'",
             py && *py ? py : "python3", c->arch, c->size, c->batch, c->seed, path);
    printf("[ gen      ] %s\n", cmd);
    fflush(stdout);
    if (system(cmd) != 0)
        printf("[ gen      ] failed: %s will be missing\n", path);
}

/* ---- reading the fixture ---- */

static int fx_exists(hid_t f, const char *path)
{
    char prefix[512];
    for (const char *s = strchr(path + 1, '/');; s = strchr(s + 1, '/')) {
        size_t len = s ? (size_t)(s - path) : strlen(path);
        snprintf(prefix, sizeof prefix, "%.*s", (int)len, path);
        if (H5Lexists(f, prefix, H5P_DEFAULT) <= 0)
            return 0;
        if (!s)
            return 1;
    }
}

static double fx_attr_double(hid_t obj, const char *name)
{
    double v = 0.0;
    if (H5Aexists(obj, name) <= 0)
        return 0.0;
    hid_t a = (hid_t)H5_CHECK(H5Aopen(obj, name, H5P_DEFAULT));
    H5_CHECK(H5Aread(a, H5T_NATIVE_DOUBLE, &v));
    H5_CHECK(H5Aclose(a));
    return v;
}

static double fx_dataset_attr(hid_t f, const char *path, const char *name)
{
    hid_t d = (hid_t)H5_CHECK(H5Dopen2(f, path, H5P_DEFAULT));
    double v = fx_attr_double(d, name);
    H5_CHECK(H5Dclose(d));
    return v;
}

/* The dataset as doubles (n elements); err32 (may be NULL) receives its
 * torch32_err attribute (0 when absent). Fails the test when it is missing. */
static double *fx_read(hid_t f, const char *path, size_t *n, double *err32)
{
    if (!fx_exists(f, path))
        fail_msg("fixture has no dataset %s", path);
    hid_t d = (hid_t)H5_CHECK(H5Dopen2(f, path, H5P_DEFAULT));
    hid_t s = (hid_t)H5_CHECK(H5Dget_space(d));
    *n = (size_t)H5_CHECK(H5Sget_simple_extent_npoints(s));
    double *out = xmalloc((*n ? *n : 1) * sizeof *out);
    H5_CHECK(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out));
    if (err32)
        *err32 = fx_attr_double(d, "torch32_err");
    H5_CHECK(H5Sclose(s));
    H5_CHECK(H5Dclose(d));
    return out;
}

static double *fx_readf(hid_t f, size_t *n, double *err32, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static double *fx_readf(hid_t f, size_t *n, double *err32, const char *fmt, ...)
{
    char path[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    return fx_read(f, path, n, err32);
}

static int fx_attr_int(hid_t f, const char *name)
{
    int v = 0;
    hid_t a = (hid_t)H5_CHECK(H5Aopen(f, name, H5P_DEFAULT));
    H5_CHECK(H5Aread(a, H5T_NATIVE_INT, &v));
    H5_CHECK(H5Aclose(a));
    return v;
}

typedef struct {
    char (*name)[PARAM_NAME_MAX];
    int count, cap;
} NameList;

static herr_t name_collect(hid_t g, const char *name, const H5L_info_t *info, void *ctx)
{
    (void)g, (void)info;
    NameList *l = ctx;
    if (l->count == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->name = xrealloc(l->name, (size_t)l->cap * sizeof *l->name);
    }
    snprintf(l->name[l->count++], PARAM_NAME_MAX, "%s", name);
    return 0;
}

static NameList fx_names(hid_t f, const char *group)
{
    NameList l = {0};
    hid_t g = (hid_t)H5_CHECK(H5Gopen2(f, group, H5P_DEFAULT));
    H5_CHECK(H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, name_collect, &l));
    H5_CHECK(H5Gclose(g));
    return l;
}

/* ---- comparing ---- */

typedef struct {
    const char *label;
    int tensors, failed;
    double worst, worst_torch, worst_ratio;
    char worst_name[PARAM_NAME_MAX];
} Group;

static int g_verbose; /* RESNET_EXACT_VERBOSE=1: a line for every tensor */

static void group_begin(Group *g, const char *label)
{
    memset(g, 0, sizeof *g);
    g->label = label;
}

/* max|a - ref| / max|ref|; NaN counts as infinite. */
static double rel_err(const double *a, const double *ref, size_t n)
{
    double d = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(a[i] - ref[i]);
        if (!(e <= d))
            d = isnan(e) ? INFINITY : e;
        if (fabs(ref[i]) > scale)
            scale = fabs(ref[i]);
    }
    return d == 0.0 ? 0.0 : d / (scale > 1e-30 ? scale : 1e-30);
}

static void check(Group *g, const char *name, const double *ours, const double *ref, size_t n,
                  double err32)
{
    double err = rel_err(ours, ref, n), tol = fmax(TOL_FACTOR * err32, TOL_FLOOR);
    double ratio = err / tol;
    g->tensors++;
    if (!(ratio <= 1.0))
        g->failed++;
    if (!(ratio <= 1.0) || g_verbose)
        printf("    %-8s %-36s ours %.2e  torch32 %.2e  tol %.2e\n",
               ratio <= 1.0 ? "" : "MISMATCH", name, err, err32, tol);
    if (!(ratio <= g->worst_ratio) || g->tensors == 1) {
        g->worst_ratio = ratio;
        snprintf(g->worst_name, sizeof g->worst_name, "%s", name);
    }
    g->worst = fmax(g->worst, err);
    g->worst_torch = fmax(g->worst_torch, err32);
}

/* One line per group; returns its failures. */
static int group_end(const Group *g)
{
    printf("  %-17s %4d  %8.1e  %8.1e  %6.3f  %-32s %s\n", g->label, g->tensors, g->worst,
           g->worst_torch, g->worst_ratio, g->worst_name, g->failed ? "FAIL" : "ok");
    return g->failed;
}

static double *to_double(const float *x, size_t n)
{
    double *d = xmalloc((n ? n : 1) * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

/* Parameter i of the registry, plain PyTorch layout, as doubles. */
static double *param_plain(const Params *p, int i, ParamBuffer buf)
{
    float *f = xmalloc(p->info[i].numel * sizeof *f);
    params_get_plain(p, i, buf, f);
    double *d = to_double(f, p->info[i].numel);
    free(f);
    return d;
}

/* ---- one architecture ---- */

typedef struct {
    char name[PARAM_NAME_MAX];
    float *v; /* PyTorch layout, exactly as stored */
    size_t n;
} InitTensor;

typedef struct {
    const Case *c;
    hid_t file;
    Params p;
    Net *net;
    InitTensor *init; /* the fixture's /init, read once */
    int ninit;
    float *input;
    int32_t *labels;
    int failed;
} Exact;

static int ends_with(const char *s, const char *suffix, size_t *stem)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    if (ls < lx || strcmp(s + ls - lx, suffix) != 0)
        return 0;
    *stem = ls - lx;
    return 1;
}

static float *read_floats(hid_t f, const char *path, size_t *n)
{
    double *d = fx_read(f, path, n, NULL);
    float *v = xmalloc((*n ? *n : 1) * sizeof *v);
    for (size_t i = 0; i < *n; i++)
        v[i] = (float)d[i];
    free(d);
    return v;
}

static void read_init(Exact *x)
{
    NameList names = fx_names(x->file, "/init");
    char path[PARAM_NAME_MAX + 16];
    x->ninit = names.count;
    x->init = xcalloc((size_t)names.count, sizeof *x->init);
    for (int k = 0; k < names.count; k++) {
        InitTensor *t = &x->init[k];
        snprintf(t->name, sizeof t->name, "%s", names.name[k]);
        snprintf(path, sizeof path, "/init/%s", t->name);
        t->v = read_floats(x->file, path, &t->n);
    }
    free(names.name);
}

static const InitTensor *init_find(const Exact *x, const char *name)
{
    for (int k = 0; k < x->ninit; k++)
        if (strcmp(x->init[k].name, name) == 0)
            return &x->init[k];
    fail_msg("fixture has no /init/%s", name);
    return NULL;
}

/* Loads the initial parameters, running statistics, num_batches_tracked
 * and the input batch into the net; checks that the fixture and our
 * registry name the same tensors with the same sizes. */
static void load_init(Exact *x)
{
    Params *p = &x->p;
    int nparam = 0, nmean = 0, nvar = 0, ntracked = 0;
    for (int k = 0; k < x->ninit; k++) {
        const InitTensor *t = &x->init[k];
        const char *name = t->name;
        char prefix[PARAM_NAME_MAX];
        size_t stem;
        int is_mean = ends_with(name, ".running_mean", &stem);
        int is_var = !is_mean && ends_with(name, ".running_var", &stem);
        int is_tracked = !is_mean && !is_var && ends_with(name, ".num_batches_tracked", &stem);
        if (is_mean || is_var || is_tracked) {
            snprintf(prefix, sizeof prefix, "%.*s", (int)stem, name);
            int s = params_bn_state_find(p, prefix);
            if (s < 0)
                fail_msg("fixture tensor %s: no BN layer %s in our %s", name, prefix, x->c->arch);
            if (is_tracked) {
                p->num_batches_tracked = (int64_t)t->v[0];
                ntracked++;
                continue;
            }
            if (t->n != p->bn[s].channels)
                fail_msg("%s: %zu values, ours has %zu channels", name, t->n, p->bn[s].channels);
            memcpy(is_mean ? params_bn_running_mean(p, s) : params_bn_running_var(p, s), t->v,
                   t->n * sizeof(float));
            nmean += is_mean;
            nvar += is_var;
        } else {
            int i = params_find(p, name);
            if (i < 0)
                fail_msg("fixture tensor %s is not in our %s registry", name, x->c->arch);
            if (t->n != p->info[i].numel)
                fail_msg("%s: %zu values in the fixture, %zu in ours", name, t->n,
                         p->info[i].numel);
            params_set_plain(p, i, BUF_VALUE, t->v);
            nparam++;
        }
    }
    /* Every fixture name matched one of ours; equal counts make it a bijection. */
    if (nparam != p->count || nmean != p->bn_count || nvar != p->bn_count ||
        ntracked != p->bn_count)
        fail_msg("%s: fixture has %d params, %d/%d/%d BN buffers; ours %d params, %d BN layers",
                 x->c->arch, nparam, nmean, nvar, ntracked, p->count, p->bn_count);
    const NetConfig *cfg = net_config(x->net);
    memcpy(net_input(x->net), x->input,
           (size_t)cfg->batch * cfg->in_channels * cfg->image_size * cfg->image_size *
               sizeof(float));
}

static void check_outputs(Exact *x, const char *grp, const LossStats *ls, const char *label)
{
    Group g;
    char name[64];
    group_begin(&g, label);
    const NetConfig *cfg = net_config(x->net);
    size_t n, nk = (size_t)cfg->batch * cfg->num_classes;
    double err32;
    double *ref = fx_readf(x->file, &n, &err32, "/%s/logits", grp);
    assert_int_equal(n, nk);
    double *ours = to_double(net_logits(x->net), nk);
    snprintf(name, sizeof name, "%s/logits", grp);
    check(&g, name, ours, ref, nk, err32);
    free(ours);
    free(ref);
    ref = fx_readf(x->file, &n, &err32, "/%s/loss", grp);
    double loss = ls->loss_sum / cfg->batch;
    snprintf(name, sizeof name, "%s/loss", grp);
    check(&g, name, &loss, ref, 1, err32);
    free(ref);
    x->failed += group_end(&g);
}

/* Gradients of every parameter (or those the fixture has, for grp train_ls). */
static void check_grads(Exact *x, const char *grp, int all, const char *label)
{
    Group g;
    group_begin(&g, label);
    char path[256];
    for (int i = 0; i < x->p.count; i++) {
        const ParamInfo *info = &x->p.info[i];
        snprintf(path, sizeof path, "/%s/grad/%s", grp, info->name);
        if (!all && !fx_exists(x->file, path))
            continue;
        size_t n;
        double err32;
        double *ref = fx_read(x->file, path, &n, &err32);
        assert_int_equal(n, info->numel);
        double *ours = param_plain(&x->p, i, BUF_GRAD);
        check(&g, info->name, ours, ref, n, err32);
        free(ours);
        free(ref);
    }
    x->failed += group_end(&g);
}

static void check_running_stats(Exact *x, int64_t tracked_before)
{
    Group g;
    group_begin(&g, "running stats");
    char name[PARAM_NAME_MAX + 16];
    for (int s = 0; s < x->p.bn_count; s++) {
        for (int var = 0; var < 2; var++) {
            snprintf(name, sizeof name, "%s.%s", x->p.bn[s].name,
                     var ? "running_var" : "running_mean");
            size_t n;
            double err32;
            double *ref = fx_readf(x->file, &n, &err32, "/train/buffers/%s", name);
            assert_int_equal(n, x->p.bn[s].channels);
            double *ours = to_double(var ? params_bn_running_var(&x->p, s) : params_bn_running_mean(&x->p, s), n);
            check(&g, name, ours, ref, n, err32);
            free(ours);
            free(ref);
        }
    }
    x->failed += group_end(&g);
    if (x->p.num_batches_tracked != tracked_before + 1) {
        printf("    MISMATCH num_batches_tracked %lld, torch %lld\n",
               (long long)x->p.num_batches_tracked, (long long)tracked_before + 1);
        x->failed++;
    }
}

/* After sgd_step: the weights (torch's = init + its update) and the update. */
static void check_step(Exact *x)
{
    Group gw, gu;
    group_begin(&gw, "sgd weights");
    group_begin(&gu, "sgd update");
    for (int i = 0; i < x->p.count; i++) {
        const ParamInfo *info = &x->p.info[i];
        size_t n, m;
        double err32;
        const InitTensor *t = init_find(x, info->name);
        double *init = to_double(t->v, t->n);
        double *upd = fx_readf(x->file, &m, &err32, "/train/update/%s", info->name);
        n = t->n;
        assert_int_equal(n, info->numel);
        assert_int_equal(m, info->numel);
        char path[256];
        snprintf(path, sizeof path, "/train/update/%s", info->name);
        double step_err32 = fx_dataset_attr(x->file, path, "torch32_step_err");

        double *w = param_plain(&x->p, i, BUF_VALUE);
        double *ref_w = xmalloc(n * sizeof *ref_w), *ours_u = xmalloc(n * sizeof *ours_u);
        for (size_t j = 0; j < n; j++) {
            ref_w[j] = init[j] + upd[j];
            ours_u[j] = w[j] - init[j];
        }
        check(&gw, info->name, w, ref_w, n, step_err32);
        check(&gu, info->name, ours_u, upd, n, err32);
        free(init);
        free(upd);
        free(w);
        free(ref_w);
        free(ours_u);
    }
    x->failed += group_end(&gw);
    x->failed += group_end(&gu);
}

static void check_smoothed_loss(Exact *x, const LossStats *ls)
{
    Group g;
    group_begin(&g, "smoothed loss");
    size_t n;
    double err32, *ref = fx_read(x->file, "/train_ls/loss", &n, &err32);
    double loss = ls->loss_sum / x->c->batch;
    check(&g, "train_ls/loss", &loss, ref, 1, err32);
    free(ref);
    x->failed += group_end(&g);
}

static void exact_run(const Case *c)
{
    Exact x = {.c = c};
    char path[512];
    fixture_path(c, path, sizeof path);
    struct stat st;
    if (stat(path, &st) != 0)
        fail_msg("no fixture %s (is python3-torch installed? see %s)", path, SCRIPT);
    x.file = (hid_t)H5_CHECK(H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT));
    assert_int_equal(fx_attr_int(x.file, "size"), c->size);
    assert_int_equal(fx_attr_int(x.file, "batch"), c->batch);

    NetConfig cfg = {.num_classes = fx_attr_int(x.file, "num_classes"),
                     .in_channels = fx_attr_int(x.file, "channels"),
                     .image_size = c->size,
                     .batch = c->batch};
    snprintf(cfg.arch, sizeof cfg.arch, "%s", c->arch);
    params_init(&x.p);
    x.net = net_create(&cfg, &x.p);
    params_allocate(&x.p);

    size_t n;
    read_init(&x);
    x.input = read_floats(x.file, "/input", &n);
    assert_int_equal(n, (size_t)c->batch * cfg.in_channels * c->size * c->size);
    float *lab = read_floats(x.file, "/labels", &n);
    assert_int_equal(n, (size_t)c->batch);
    x.labels = xmalloc(n * sizeof *x.labels);
    for (size_t i = 0; i < n; i++)
        x.labels[i] = (int32_t)lab[i];
    free(lab);

    printf("%s, %d px, batch %d, %d classes, %d tensors, %zu parameters\n", c->arch, c->size,
           c->batch, cfg.num_classes, x.p.count, params_numel(&x.p));
    printf("  %-17s %4s  %8s  %8s  %6s  %s\n", "group", "n", "ours", "torch32", "/tol",
           "worst tensor (by ours/tol)");

    /* Training step: forward, loss, backward, running stats, SGD. */
    load_init(&x);
    int64_t tracked = x.p.num_batches_tracked;
    net_forward(x.net, 1);
    LossStats ls = net_loss(x.net, x.labels, NULL, 0.0f, 1, c->batch);
    net_backward(x.net);
    dnn_wait();
    check_outputs(&x, "train", &ls, "train logits+loss");
    check_grads(&x, "train", 1, "gradients");
    check_running_stats(&x, tracked);
    SgdConfig sc = {.momentum = 0.9, .weight_decay = 1e-4};
    sgd_step(&sc, &x.p, 0.1);
    check_step(&x);

    /* The same forward with label smoothing 0.1. */
    load_init(&x);
    net_forward(x.net, 1);
    ls = net_loss(x.net, x.labels, NULL, 0.1f, 1, c->batch);
    net_backward(x.net);
    dnn_wait();
    check_smoothed_loss(&x, &ls);
    check_grads(&x, "train_ls", 0, "smoothed grads");

    /* Eval mode with the initial weights and running statistics. */
    load_init(&x);
    net_forward(x.net, 0);
    ls = net_loss(x.net, x.labels, NULL, 0.0f, 0, c->batch);
    check_outputs(&x, "eval", &ls, "eval logits+loss");

    for (int k = 0; k < x.ninit; k++)
        free(x.init[k].v);
    free(x.init);
    free(x.input);
    free(x.labels);
    net_free(x.net);
    params_free(&x.p);
    H5_CHECK(H5Fclose(x.file));
    if (x.failed)
        fail_msg("%s: %d tensors differ from PyTorch beyond tolerance", c->arch, x.failed);
}

static void test_exact(void **state)
{
    exact_run(*state);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* the tables interleave with cmocka's stderr */
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++)
        fixture_make(&CASES[i]);
    MPI_Init(&argc, &argv);
    dnn_init();
    h5_quiet();
    const char *verbose = getenv("RESNET_EXACT_VERBOSE");
    g_verbose = verbose && *verbose && strcmp(verbose, "0") != 0;
    struct CMUnitTest tests[sizeof CASES / sizeof CASES[0]];
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++)
        tests[i] = (struct CMUnitTest){.name = CASES[i].arch, .test_func = test_exact,
                                       .initial_state = (void *)&CASES[i]};
    int rc = cmocka_run_group_tests_name("resnet_exact", tests, NULL, NULL);
    dnn_free();
    MPI_Finalize();
    return rc;
}
