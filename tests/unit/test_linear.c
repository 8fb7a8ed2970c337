/*
 * test_linear.c - the classifier (torch.nn.Linear) forward and backward
 * (data, weights, bias) against the naive double reference on ResNet-50's
 * fc, 2x2048 -> 1000, and the CIFAR one, 2x64 -> 10; finite differences of
 * sum(r * dst) on a tiny layer; the registry entries it makes.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../ref/ref_kernels.h"
#include "common/testutil.h"
#include "error.h"
#include "linear.h"

typedef struct {
    int n, in, out;
    Params p;
    LinearLayer l;
    int widx, bidx;
    float *x, *w, *b; /* (N, C), (K, C), (K) */
} LinFixture;

static void fixture_init(LinFixture *f, int n, int in, int out, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    f->n = n, f->in = in, f->out = out;
    size_t nx = (size_t)n * in, nw = (size_t)out * in;
    f->x = xmalloc(nx * sizeof(float));
    f->w = xmalloc(nw * sizeof(float));
    f->b = xmalloc((size_t)out * sizeof(float));
    ref_fill_normal(f->x, nx, seed, 1.0);
    for (size_t i = 0; i < nx; i++)
        f->x[i] += 0.5f; /* pooled post-ReLU features */
    double bound = 1.0 / sqrt((double)in); /* PyTorch's default init */
    ref_fill_uniform(f->w, nw, seed + 1, -bound, bound);
    ref_fill_uniform(f->b, (size_t)out, seed + 2, -bound, bound);
    params_init(&f->p);
    linear_init(&f->l, f->x, n, in, out, &f->p, "fc");
    params_allocate(&f->p);
    f->widx = params_find(&f->p, "fc.weight");
    f->bidx = params_find(&f->p, "fc.bias");
    assert_true(f->widx >= 0 && f->bidx >= 0);
    params_set_plain(&f->p, f->widx, BUF_VALUE, f->w);
    params_set_plain(&f->p, f->bidx, BUF_VALUE, f->b);
}

static void fixture_free(LinFixture *f)
{
    linear_free(&f->l);
    params_free(&f->p);
    free(f->x);
    free(f->w);
    free(f->b);
}

/* The gradients of one backward, plain (nc): diff_dst (N, K) holding dy,
 * and diff_src (N, C) for the layer to write. */
static void fixture_diffs(const LinFixture *f, const float *dy, Tensor *diff_dst,
                          Tensor *diff_src)
{
    dnnl_dims_t dd = {f->n, f->out}, sd = {f->n, f->in};
    dnnl_memory_desc_t dmd = dnn_md_make(2, dd, dnnl_nc), smd = dnn_md_make(2, sd, dnnl_nc);
    tensor_alloc(diff_dst, &dmd);
    memcpy(diff_dst->data, dy, (size_t)f->n * f->out * sizeof(float));
    tensor_alloc(diff_src, &smd);
}

static void run_case(int n, int in, int out, uint64_t seed, const char *name)
{
    LinFixture f;
    fixture_init(&f, n, in, out, seed);
    size_t nx = (size_t)n * in, ny = (size_t)n * out, nw = (size_t)out * in;
    char what[160];

    linear_forward(&f.l);
    dnn_wait();
    double *xd = ref_to_double(f.x, nx), *wd = ref_to_double(f.w, nw);
    double *bd = ref_to_double(f.b, (size_t)out), *yd = xmalloc(ny * sizeof(double));
    ref_linear_forward(xd, wd, bd, n, in, out, yd);
    float *yr = ref_to_float(yd, ny);
    /* a dot product of length C plus the bias */
    snprintf(what, sizeof what, "%s forward dst", name);
    assert_close(f.l.dst.data, yr, ny, ref_tol((size_t)in + 1, ref_rms(yd, ny)),
                 ref_tol((size_t)in + 1, 1.0), what);

    float *dy = xmalloc(ny * sizeof(float));
    ref_fill_normal(dy, ny, seed + 3, 1.0);
    Tensor diff_dst, diff_src;
    fixture_diffs(&f, dy, &diff_dst, &diff_src);
    memset(params_buffer(&f.p, BUF_GRAD), 0x7f, f.p.total * sizeof(float));
    linear_backward(&f.l, &diff_dst, &diff_src);
    dnn_wait();

    double *dyd = ref_to_double(dy, ny), *dxd = xmalloc(nx * sizeof(double));
    double *dwd = xmalloc(nw * sizeof(double)), *dbd = xmalloc((size_t)out * sizeof(double));
    ref_linear_backward(xd, wd, dyd, n, in, out, dxd, dwd, dbd);

    float *r = ref_to_float(dxd, nx);
    snprintf(what, sizeof what, "%s backward diff_src", name);
    assert_close(diff_src.data, r, nx, ref_tol((size_t)out, ref_rms(dxd, nx)),
                 ref_tol((size_t)out, 1.0), what);
    free(r);

    float *got = xmalloc(nw * sizeof(float));
    params_get_plain(&f.p, f.widx, BUF_GRAD, got);
    r = ref_to_float(dwd, nw);
    snprintf(what, sizeof what, "%s backward diff_weights", name);
    assert_close(got, r, nw, ref_tol((size_t)n, ref_rms(dwd, nw)), ref_tol((size_t)n, 1.0), what);
    free(r);
    params_get_plain(&f.p, f.bidx, BUF_GRAD, got);
    r = ref_to_float(dbd, (size_t)out);
    snprintf(what, sizeof what, "%s backward diff_bias", name);
    assert_close(got, r, (size_t)out, ref_tol((size_t)n, ref_rms(dbd, (size_t)out)),
                 ref_tol((size_t)n, 1.0), what);
    free(r);

    free(got), free(xd), free(wd), free(bd), free(yd), free(yr), free(dy), free(dyd), free(dxd);
    free(dwd), free(dbd);
    tensor_free(&diff_dst);
    tensor_free(&diff_src);
    fixture_free(&f);
}

static void test_linear_resnet50(void **state)
{
    (void)state;
    run_case(2, 2048, 1000, 100, "fc 2x2048->1000");
}

static void test_linear_cifar(void **state)
{
    (void)state;
    run_case(2, 64, 10, 200, "fc 2x64->10");
}

/* torchvision's names, PyTorch shapes, plain layouts, and the kinds that
 * decide weight decay. */
static void test_linear_registry(void **state)
{
    (void)state;
    LinFixture f;
    fixture_init(&f, 2, 6, 4, 300);
    assert_int_equal(f.p.count, 2);
    const ParamInfo *w = &f.p.info[f.widx], *b = &f.p.info[f.bidx];
    assert_int_equal(w->kind, PARAM_FC_WEIGHT);
    assert_int_equal(w->ndims, 2);
    assert_int_equal(w->dims[0], 4);
    assert_int_equal(w->dims[1], 6);
    assert_int_equal(w->numel, 24);
    assert_int_equal(b->kind, PARAM_FC_BIAS);
    assert_int_equal(b->ndims, 1);
    assert_int_equal(b->dims[0], 4);
    assert_false(params_is_bn_or_bias(w));
    assert_true(params_is_bn_or_bias(b));
    /* plain: the weights sit in the buffer exactly as PyTorch lays them out */
    assert_memory_equal(f.p.value + w->offset, f.w, 24 * sizeof(float));
    assert_ptr_equal(f.l.weights.data, f.p.value + w->offset);
    assert_ptr_equal(f.l.diff_bias.data, f.p.grad + b->offset);
    fixture_free(&f);
}

/*
 * Central differences of L = sum r * dst (double sum of the float dst) for
 * every input, weight and bias of a 3x5 -> 4 layer. L is linear in each, so
 * with step h the error is the rounding of the dst values a coordinate
 * touches (A of them, within ref_tol(C + 1, max|dst|) each, max over the
 * perturbed runs too, weighted by |r| <= rmax, at both ends) over 2h.
 */
static void test_linear_finite_differences(void **state)
{
    (void)state;
    const int n = 3, in = 5, out = 4;
    LinFixture f;
    fixture_init(&f, n, in, out, 400);
    size_t ny = (size_t)n * out;
    float *r = xmalloc(ny * sizeof(float));
    ref_fill_normal(r, ny, 401, 1.0);
    Tensor diff_dst, diff_src;
    fixture_diffs(&f, r, &diff_dst, &diff_src);
    linear_forward(&f.l);
    linear_backward(&f.l, &diff_dst, &diff_src);
    dnn_wait();
    double rmax = 0.0, ymax = 0.0;
    for (size_t i = 0; i < ny; i++) {
        rmax = fmax(rmax, fabs(r[i]));
        ymax = fmax(ymax, fabs(f.l.dst.data[i]));
    }
    float dw[20], db[4];
    params_get_plain(&f.p, f.widx, BUF_GRAD, dw);
    params_get_plain(&f.p, f.bidx, BUF_GRAD, db);
    const float h = 0.5f;
    /* the value each coordinate lives in, and how many dst values it feeds */
    struct {
        float *v;
        size_t count;
        int param; /* -1: the input, else the registry index to write back */
        const float *grad;
        int outputs;
    } groups[] = {
        {.v = f.x, .count = (size_t)n * in, .param = -1, .grad = diff_src.data, .outputs = out},
        {.v = f.w, .count = (size_t)out * in, .param = f.widx, .grad = dw, .outputs = n},
        {.v = f.b, .count = (size_t)out, .param = f.bidx, .grad = db, .outputs = n},
    };
    const char *names[] = {"diff_src vs fd", "diff_weights vs fd", "diff_bias vs fd"};
    for (int g = 0; g < 3; g++) {
        float fd[20];
        double tol = 0.0;
        for (size_t i = 0; i < groups[g].count; i++) {
            float keep = groups[g].v[i];
            float vs[2] = {keep + h, keep - h};
            double l[2];
            for (int e = 0; e < 2; e++) {
                groups[g].v[i] = vs[e];
                if (groups[g].param >= 0)
                    params_set_plain(&f.p, groups[g].param, BUF_VALUE, groups[g].v);
                linear_forward(&f.l);
                dnn_wait();
                l[e] = 0.0;
                for (size_t j = 0; j < ny; j++) {
                    l[e] += (double)r[j] * f.l.dst.data[j];
                    ymax = fmax(ymax, fabs(f.l.dst.data[j]));
                }
            }
            groups[g].v[i] = keep;
            if (groups[g].param >= 0)
                params_set_plain(&f.p, groups[g].param, BUF_VALUE, groups[g].v);
            fd[i] = (float)((l[0] - l[1]) / ((double)vs[0] - vs[1]));
            tol = fmax(tol, sqrt(2.0 * groups[g].outputs) * ref_tol((size_t)in + 1, ymax) * rmax /
                                ((double)vs[0] - vs[1]));
        }
        assert_close(groups[g].grad, fd, groups[g].count, tol, 0.0, names[g]);
    }
    free(r);
    tensor_free(&diff_dst);
    tensor_free(&diff_src);
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_registry),
        cmocka_unit_test(test_linear_finite_differences),
        cmocka_unit_test(test_linear_cifar),
        cmocka_unit_test(test_linear_resnet50),
    };
    return cmocka_run_group_tests_name("linear", tests, testutil_dnn_setup, testutil_dnn_teardown);
}
