/*
 * testutil.c - helpers shared by the unit tests (see testutil.h). Local;
 * failures end the running CMocka test, never the process.
 */
#include "testutil.h"

#include <ftw.h>
#include <math.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stddef.h>
#include <cmocka.h>

#include "dnn.h"
#include "error.h"

void assert_close(const float *a, const float *b, size_t n, double atol, double rtol,
                  const char *name)
{
    size_t bad = 0, worst = 0;
    double worst_excess = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        double x = a[i], y = b[i];
        double tol = atol + rtol * fabs(y);
        double excess;
        if (isnan(x) || isnan(y))
            excess = isnan(x) && isnan(y) ? -INFINITY : INFINITY;
        else if (x == y)
            excess = -tol; /* equal infinities too */
        else
            excess = fabs(x - y) - tol;
        if (excess > 0)
            bad++;
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
    }
    if (bad == 0)
        return;
    double x = a[worst], y = b[worst];
    fail_msg("%s: %zu of %zu elements differ; worst [%zu]: %.9g vs %.9g (|diff| %.3g > "
             "atol %.3g + rtol %.3g * |b|)",
             name, bad, n, worst, x, y, fabs(x - y), atol, rtol);
}

static int rmtree_visit(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void testutil_rmtree(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) == 0)
        nftw(path, rmtree_visit, 16, FTW_DEPTH | FTW_PHYS);
}

static void mkdir_p(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *s = buf + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        mkdir(buf, 0755);
        *s = '/';
    }
    if (mkdir(buf, 0755) != 0 && access(buf, W_OK) != 0)
        fail_msg("cannot create directory %s", buf);
}

void testutil_join(char *out, size_t len, const char *dir, const char *file)
{
    if ((size_t)snprintf(out, len, "%s/%s", dir, file) >= len)
        fail_msg("path too long: %s/%s", dir, file);
}

void testutil_tmpdir(char *out, size_t len, const char *name)
{
    const char *build = getenv("BUILD");
    char base[1024];
    snprintf(base, sizeof base, "%s/tmp", build && *build ? build : "build");
    testutil_join(out, len, base, name);
    testutil_rmtree(out);
    mkdir_p(out);
}

/* Finds the modules without importing them (importing torch takes seconds). */
static void probe_line(char *out, size_t len, const char *modules)
{
    snprintf(out, len,
             "import importlib.util as u, sys; "
             "sys.exit(0 if all(u.find_spec(m) for m in \"%s\".split()) else 1)",
             modules);
}

const char *testutil_python(const char *modules)
{
    static struct {
        char modules[256];
        char python[512];
    } cache[8];
    static int cached;
    for (int i = 0; i < cached; i++)
        if (strcmp(cache[i].modules, modules) == 0)
            return cache[i].python;

    const char *candidates[] = {getenv("PYTHON"), "python3", "/usr/bin/python3"};
    char probe[512], cmd[1200];
    probe_line(probe, sizeof probe, modules);
    for (size_t c = 0; c < sizeof candidates / sizeof *candidates; c++) {
        if (!candidates[c] || !*candidates[c])
            continue;
        snprintf(cmd, sizeof cmd, "%s -c '%s' >/dev/null 2>&1", candidates[c], probe);
        if (system(cmd) != 0)
            continue;
        if (cached < (int)(sizeof cache / sizeof *cache)) {
            snprintf(cache[cached].modules, sizeof cache[cached].modules, "%s", modules);
            snprintf(cache[cached].python, sizeof cache[cached].python, "%s", candidates[c]);
            return cache[cached++].python;
        }
        return candidates[c];
    }
    fail_msg("no python3 has all of: %s (install the Debian python3-* packages or set PYTHON)",
             modules);
    return NULL;
}

int testutil_run_fixture(const char *modules, const char *script, const char *args_fmt, ...)
{
    char path[512], args[4096], cmd[8192];
    snprintf(path, sizeof path, "tests/fixtures/%s", script);
    if (access(path, R_OK) != 0)
        fail_msg("%s not found: run the tests from the repository root", path);
    va_list ap;
    va_start(ap, args_fmt);
    vsnprintf(args, sizeof args, args_fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s %s %s", testutil_python(modules), path, args);
    int ret = system(cmd);
    if (ret == -1 || !WIFEXITED(ret))
        fail_msg("`%s` did not run to completion", cmd);
    return WEXITSTATUS(ret);
}

void testutil_fill(float *x, size_t n, uint32_t seed)
{
    uint32_t s = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((double)(s >> 8) / (double)(1u << 23) - 1.0);
    }
}

double testutil_dot(const double *a, const double *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

double testutil_central_difference(double (*loss)(void *ctx), void *ctx, double *v, size_t i,
                                   double h)
{
    double keep = v[i];
    v[i] = keep + h;
    double lp = loss(ctx);
    v[i] = keep - h;
    double lm = loss(ctx);
    v[i] = keep;
    return (lp - lm) / (2 * h);
}

int testutil_param_plain(Params *p, const char *name, ParamKind kind, int ndims,
                         const int64_t *dims)
{
    static const dnnl_format_tag_t tags[] = {dnnl_format_tag_undef, dnnl_a, dnnl_ab, dnnl_abc,
                                             dnnl_abcd};
    if (ndims < 1 || ndims > 4)
        fail_msg("%s: %d dimensions; PyTorch tensors here have 1 to 4", name, ndims);
    dnnl_dim_t d[4];
    for (int i = 0; i < ndims; i++)
        d[i] = dims[i];
    dnnl_memory_desc_t md = dnn_md_make(ndims, d, tags[ndims]);
    return params_add(p, name, kind, ndims, dims, &md);
}

static void tiny_fill(Params *p, uint32_t seed)
{
    size_t most = 1;
    for (int i = 0; i < p->count; i++)
        most = p->info[i].numel > most ? p->info[i].numel : most;
    float *plain = malloc(most * sizeof(float));
    for (int i = 0; i < p->count; i++) {
        testutil_fill(plain, p->info[i].numel, seed * 31u + (uint32_t)i);
        params_set_plain(p, i, BUF_VALUE, plain);
        testutil_fill(plain, p->info[i].numel, seed * 131u + (uint32_t)i);
        params_set_plain(p, i, BUF_MOMENTUM, plain);
    }
    for (int i = 0; i < p->bn_count; i++) {
        size_t c = p->bn[i].channels;
        float *var = params_bn_running_var(p, i);
        testutil_fill(params_bn_running_mean(p, i), c, seed * 17u + (uint32_t)i);
        testutil_fill(var, c, seed * 19u + (uint32_t)i);
        for (size_t k = 0; k < c; k++)
            var[k] = 0.5f + fabsf(var[k]);
    }
    p->num_batches_tracked = (int64_t)seed * 7 + 3;
    free(plain);
}

void testutil_params_tiny(Params *p, dnnl_format_tag_t conv_tag, uint32_t seed)
{
    static const struct {
        const char *name;
        ParamKind kind;
        int ndims;
        int64_t dims[4];
    } tiny[] = {
        {"conv1.weight", PARAM_CONV_WEIGHT, 4, {8, 3, 3, 3}},
        {"bn1.weight", PARAM_BN_WEIGHT, 1, {8}},
        {"bn1.bias", PARAM_BN_BIAS, 1, {8}},
        {"layer1.0.conv1.weight", PARAM_CONV_WEIGHT, 4, {16, 8, 3, 3}},
        {"layer1.0.bn1.weight", PARAM_BN_WEIGHT, 1, {16}},
        {"layer1.0.bn1.bias", PARAM_BN_BIAS, 1, {16}},
        {"fc.weight", PARAM_FC_WEIGHT, 2, {10, 16}},
        {"fc.bias", PARAM_FC_BIAS, 1, {10}},
    };
    dnn_init();
    params_init(p);
    for (size_t i = 0; i < sizeof tiny / sizeof *tiny; i++) {
        if (strcmp(tiny[i].name, "layer1.0.conv1.weight") == 0) {
            dnnl_dim_t d[4] = {16, 8, 3, 3};
            dnnl_memory_desc_t md = dnn_md_make(4, d, conv_tag);
            params_add(p, tiny[i].name, tiny[i].kind, 4, tiny[i].dims, &md);
        } else {
            testutil_param_plain(p, tiny[i].name, tiny[i].kind, tiny[i].ndims, tiny[i].dims);
        }
    }
    params_bn_state_add(p, "bn1", 8);
    params_bn_state_add(p, "layer1.0.bn1", 16);
    params_allocate(p);
    if (seed)
        tiny_fill(p, seed);
}

int testutil_dnn_setup(void **state)
{
    (void)state;
    dnn_init();
    return 0;
}

int testutil_dnn_teardown(void **state)
{
    (void)state;
    dnn_free();
    return 0;
}

int testutil_mpi_any_failed(int failed)
{
    int mine = failed != 0, any = 0;
    MPI_CHECK(MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    return any;
}

int testutil_mpi_run_group_n(const char *name, const struct CMUnitTest *tests, size_t count)
{
    int rank, size;
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
    char group[128];
    snprintf(group, sizeof group, "%s rank %d of %d", name, rank, size);
    return testutil_mpi_any_failed(_cmocka_run_group_tests(group, tests, count, NULL, NULL));
}
