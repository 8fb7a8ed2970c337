/*
 * test_loss.c - mean softmax cross-entropy (F.cross_entropy semantics, with
 * and without label smoothing): the summed loss and its gradient against
 * the naive double reference and against central differences, hand-worked
 * values, numerical stability, top-1/top-5 counting with ties (the lower
 * index wins, as loss.h states), and the non-finite flag. The two-view
 * (test-time augmentation) loss against a naive reference that stores
 * both softmaxes, averages them and ranks the label by sorting, a worked
 * example, and equal views giving the plain figures. Mixed targets (mixup,
 * cutmix: a partner label and weight per sample, with and without label
 * smoothing) against a float64 reference that writes out the soft target,
 * against central differences, a partner weight of 0 giving the plain loss
 * and gradient bit for bit, and top-1/top-5 counted against the label of
 * the larger weight.
 *
 * Both implementations work in double from the same float logits, so the
 * loss agrees to ~1e-15 relative (atol/rtol 1e-12 leave room for k = 1000
 * terms); the gradient is (softmax - target) / scale_n rounded to float, so
 * it agrees to one float ulp (rtol 2u) plus 1e-12 where it cancels to ~0.
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
#include "loss.h"
#include "rng.h"

#define U (FLT_EPSILON / 2)

static void make_batch(float *logits, int32_t *labels, int n, int k, uint64_t seed)
{
    ref_fill_normal(logits, (size_t)n * k, seed, 2.0);
    Rng r;
    rng_seed(&r, seed, 1, 0);
    for (int i = 0; i < n; i++)
        labels[i] = (int32_t)rng_below(&r, (uint64_t)k);
}

/* A partner per sample: the label of sample i ^ 1 (the last of an odd
 * batch: its own), weights spread over [0, 1]. */
static void make_partner(const int32_t *labels, int n, uint64_t seed, int32_t *plabel,
                         float *pweight)
{
    Rng r;
    rng_seed(&r, seed, 2, 0);
    for (int i = 0; i < n; i++) {
        plabel[i] = labels[(i ^ 1) < n ? i ^ 1 : i];
        pweight[i] = (float)rng_uniform(&r);
    }
}

/* The float64 reference: the soft target written out, -sum t log softmax
 * and softmax - t. */
static double ref_mixed_xent(const float *logits, const int32_t *labels, const int32_t *plabel,
                             const float *pweight, int n, int k, double eps, double *diff)
{
    double total = 0.0;
    double *t = xmalloc((size_t)k * sizeof(double));
    for (int i = 0; i < n; i++) {
        const float *x = logits + (size_t)i * k;
        for (int j = 0; j < k; j++)
            t[j] = 0.0;
        t[labels[i]] += 1.0 - pweight[i];
        t[plabel[i]] += pweight[i];
        double mx = x[0], z = 0.0;
        for (int j = 1; j < k; j++)
            mx = x[j] > mx ? x[j] : mx;
        for (int j = 0; j < k; j++)
            z += exp(x[j] - mx);
        for (int j = 0; j < k; j++) {
            double p = exp(x[j] - mx) / z, tj = (1.0 - eps) * t[j] + eps / k;
            total -= tj * log(p);
            diff[(size_t)i * k + j] = p - tj;
        }
    }
    free(t);
    return total;
}

/* mixed: with a partner per sample (make_partner) against ref_mixed_xent. */
static void check_against_ref(int n, int k, float eps, int scale_n, uint64_t seed, int mixed,
                              const char *name)
{
    size_t total = (size_t)n * k;
    char what[160];
    float *logits = xmalloc(total * sizeof(float)), *diff = xmalloc(total * sizeof(float));
    int32_t *labels = xmalloc((size_t)n * sizeof(int32_t));
    int32_t *plabel = xmalloc((size_t)n * sizeof(int32_t));
    float *pweight = xmalloc((size_t)n * sizeof(float));
    make_batch(logits, labels, n, k, seed);
    make_partner(labels, n, seed, plabel, pweight);
    LossPartner partner = {plabel, pweight}, *mix = mixed ? &partner : NULL;
    double *ld = ref_to_double(logits, total), *dd = xmalloc(total * sizeof(double));
    double ref = mixed ? ref_mixed_xent(logits, labels, plabel, pweight, n, k, eps, dd)
                       : ref_softmax_xent(ld, labels, n, k, eps, dd);
    LossStats st = loss_softmax_xent(logits, labels, mix, n, k, eps, diff, scale_n);
    assert_false(st.nonfinite);
    if (fabs(st.loss_sum - ref) > 1e-12 * (1.0 + fabs(ref)))
        fail_msg("%s: loss_sum %.17g vs reference %.17g", name, st.loss_sum, ref);
    for (size_t i = 0; i < total; i++)
        dd[i] /= scale_n;
    float *dr = ref_to_float(dd, total);
    snprintf(what, sizeof what, "%s gradient", name);
    assert_close(diff, dr, total, 1e-12, 2 * U, what);
    /* the gradient of each row sums to 0 (softmax and target both sum to 1) */
    for (int i = 0; i < n; i++) {
        double s = 0.0;
        for (int j = 0; j < k; j++)
            s += diff[(size_t)i * k + j];
        assert_true(fabs(s) < 2 * U * k / scale_n + 1e-12);
    }
    /* evaluation: no gradient, same statistics */
    LossStats ev = loss_softmax_xent(logits, labels, mix, n, k, eps, NULL, scale_n);
    assert_true(ev.loss_sum == st.loss_sum);
    assert_int_equal(ev.top1, st.top1);
    assert_int_equal(ev.top5, st.top5);
    free(logits), free(diff), free(labels), free(ld), free(dd), free(dr);
    free(plabel), free(pweight);
}

static void test_loss_vs_reference(void **state)
{
    (void)state;
    check_against_ref(8, 10, 0.0f, 8, 1, 0, "cifar 8x10");
    check_against_ref(8, 10, 0.1f, 8, 2, 0, "cifar 8x10 smoothing 0.1");
    check_against_ref(2, 1000, 0.0f, 2, 3, 0, "imagenet 2x1000");
    check_against_ref(2, 1000, 0.1f, 2, 4, 0, "imagenet 2x1000 smoothing 0.1");
    /* one rank's share of a global batch of 8 */
    check_against_ref(2, 10, 0.1f, 8, 5, 0, "2x10 of a global batch of 8");
}

/*
 * Central differences of loss_sum / scale_n with step h = 2^-10: the logits
 * lie in (-16, 16), so x +- h is exact in float; the O(h^2) error is below
 * h^2 / 6 * max|d^3 lse| < 1e-7 (the third derivative of log-sum-exp is at
 * most 1/(6 sqrt 3) per coordinate) and the double loss adds ~1e-13 / h.
 */
static void check_fd(int n, int k, float eps, int scale_n, uint64_t seed, int mixed,
                     const char *name)
{
    size_t total = (size_t)n * k;
    float *logits = xmalloc(total * sizeof(float)), *diff = xmalloc(total * sizeof(float));
    float *fd = xmalloc(total * sizeof(float));
    int32_t *labels = xmalloc((size_t)n * sizeof(int32_t));
    int32_t *plabel = xmalloc((size_t)n * sizeof(int32_t));
    float *pweight = xmalloc((size_t)n * sizeof(float));
    make_batch(logits, labels, n, k, seed);
    make_partner(labels, n, seed, plabel, pweight);
    LossPartner partner = {plabel, pweight}, *mix = mixed ? &partner : NULL;
    for (size_t i = 0; i < total; i++)
        assert_true(fabsf(logits[i]) < 16.0f);
    loss_softmax_xent(logits, labels, mix, n, k, eps, diff, scale_n);
    const float h = 0x1p-10f;
    for (size_t i = 0; i < total; i++) {
        float keep = logits[i];
        logits[i] = keep + h;
        double lp = loss_softmax_xent(logits, labels, mix, n, k, eps, NULL, scale_n).loss_sum;
        logits[i] = keep - h;
        double lm = loss_softmax_xent(logits, labels, mix, n, k, eps, NULL, scale_n).loss_sum;
        logits[i] = keep;
        fd[i] = (float)((lp - lm) / (2.0 * h) / scale_n);
    }
    assert_close(diff, fd, total, 1e-7, 2 * U, name);
    free(logits), free(diff), free(fd), free(labels), free(plabel), free(pweight);
}

static void test_loss_finite_differences(void **state)
{
    (void)state;
    check_fd(4, 10, 0.0f, 4, 10, 0, "gradient vs fd");
    check_fd(4, 10, 0.1f, 4, 11, 0, "gradient vs fd, smoothing 0.1");
    check_fd(3, 7, 0.25f, 6, 12, 0, "gradient vs fd, smoothing 0.25, scale 6");
}

/* Values worked by hand. */
static void test_loss_known_values(void **state)
{
    (void)state;
    /* equal logits: log K whatever the smoothing */
    float zeros[10] = {0};
    int32_t label = 3;
    for (int e = 0; e < 3; e++) {
        float eps = 0.1f * (float)e;
        LossStats st = loss_softmax_xent(zeros, &label, NULL, 1, 10, eps, NULL, 1);
        assert_true(fabs(st.loss_sum - log(10.0)) < 1e-14);
    }
    /* K = 2, logits (0, log 3): p = (1/4, 3/4); label 1, eps 0.2: target
     * (0.1, 0.9); loss -(0.1 log 1/4 + 0.9 log 3/4); gradient p - target =
     * (0.15, -0.15), over scale_n = 2 */
    float two[2] = {0.0f, (float)log(3.0)};
    int32_t one = 1;
    float diff[2];
    LossStats st = loss_softmax_xent(two, &one, NULL, 1, 2, 0.2f, diff, 2);
    double p1 = 1.0 / (1.0 + exp(-(double)two[1])); /* with the float logit */
    double eps = (double)0.2f, t0 = eps / 2, t1 = 1.0 - eps + eps / 2;
    double want = -(t0 * log(1.0 - p1) + t1 * log(p1));
    assert_true(fabs(st.loss_sum - want) < 1e-14);
    assert_true(fabs(want - (-(0.1 * log(0.25) + 0.9 * log(0.75)))) < 1e-7);
    float wd[2] = {(float)((1.0 - p1 - t0) / 2), (float)((p1 - t1) / 2)};
    assert_close(diff, wd, 2, 1e-12, 2 * U, "hand-worked gradient");
    assert_true(fabs(diff[0] - 0.075) < 1e-7);
    /* no smoothing, same logits: -log 3/4 */
    st = loss_softmax_xent(two, &one, NULL, 1, 2, 0.0f, NULL, 1);
    assert_true(fabs(st.loss_sum + log(p1)) < 1e-14);
}

/* Large logits neither overflow nor lose the answer. */
static void test_loss_stable(void **state)
{
    (void)state;
    float logits[3] = {1000.0f, 0.0f, -1000.0f};
    int32_t right = 0, wrong = 1;
    float diff[3];
    LossStats st = loss_softmax_xent(logits, &right, NULL, 1, 3, 0.0f, diff, 1);
    assert_false(st.nonfinite);
    assert_true(st.loss_sum >= 0.0 && st.loss_sum < 1e-12);
    assert_true(fabsf(diff[0]) < 1e-30f && diff[1] >= 0.0f && diff[1] < 1e-30f);
    st = loss_softmax_xent(logits, &wrong, NULL, 1, 3, 0.0f, diff, 1);
    assert_false(st.nonfinite);
    assert_true(fabs(st.loss_sum - 1000.0) < 1e-9);
    assert_true(fabsf(diff[0] - 1.0f) < 1e-7f && fabsf(diff[1] + 1.0f) < 1e-7f);
    /* with smoothing, the other logits cost eps/K (lse - x_j) each:
     * eps/K (1000 + 2000) */
    st = loss_softmax_xent(logits, &right, NULL, 1, 3, 0.3f, NULL, 1);
    assert_true(fabs(st.loss_sum - (double)0.3f / 3 * (1000.0 + 2000.0)) < 1e-9);
}

static void test_topk_counts(void **state)
{
    (void)state;
    const int k = 10;
    float rows[6][10];
    int32_t labels[6];
    /* 0: a clear winner, the label: top-1 */
    for (int j = 0; j < k; j++)
        rows[0][j] = (float)j;
    labels[0] = 9;
    /* 1: the label is 5th largest: top-5 only */
    memcpy(rows[1], rows[0], sizeof rows[0]);
    labels[1] = 5;
    /* 2: the label is 6th largest: neither */
    memcpy(rows[2], rows[0], sizeof rows[0]);
    labels[2] = 4;
    /* 3: all equal, label 4: indices 0-3 come first, so 5th: top-5 only */
    for (int j = 0; j < k; j++)
        rows[3][j] = 1.0f;
    labels[3] = 4;
    /* 4: all equal, label 5: 6th: neither */
    memcpy(rows[4], rows[3], sizeof rows[3]);
    labels[4] = 5;
    /* 5: the maximum tied at indices 2 and 7, label 2: the lower index wins */
    for (int j = 0; j < k; j++)
        rows[5][j] = 0.0f;
    rows[5][2] = rows[5][7] = 3.0f;
    labels[5] = 2;
    int64_t top1, top5;
    loss_topk(&rows[0][0], labels, 6, k, &top1, &top5);
    assert_int_equal(top1, 2); /* rows 0 and 5 */
    assert_int_equal(top5, 4); /* rows 0, 1, 3, 5 */
    /* the same row with label 7: 2nd, a top-5 hit only */
    labels[5] = 7;
    loss_topk(&rows[5][0], &labels[5], 1, k, &top1, &top5);
    assert_int_equal(top1, 0);
    assert_int_equal(top5, 1);
    /* fewer than 5 classes: every label is in the top 5 */
    float small[3] = {3.0f, 2.0f, 1.0f};
    int32_t last = 2;
    loss_topk(small, &last, 1, 3, &top1, &top5);
    assert_int_equal(top1, 0);
    assert_int_equal(top5, 1);
    /* loss_softmax_xent reports the same counts */
    labels[5] = 2;
    LossStats st = loss_softmax_xent(&rows[0][0], labels, NULL, 6, k, 0.0f, NULL, 6);
    assert_int_equal(st.top1, 2);
    assert_int_equal(st.top5, 4);
}

static void test_loss_nonfinite(void **state)
{
    (void)state;
    float row[4] = {0.5f, -1.0f, 2.0f, 0.0f};
    int32_t label = 2;
    float diff[4];
    assert_false(loss_softmax_xent(row, &label, NULL, 1, 4, 0.0f, diff, 1).nonfinite);
    /* any NaN or infinite logit, on the label or not, with or without
     * smoothing, is flagged (loss.h) */
    float cases[3] = {NAN, INFINITY, -INFINITY};
    for (int e = 0; e < 2; e++)
        for (int c = 0; c < 3; c++)
            for (int at = 0; at < 4; at++) {
                float bad[4];
                memcpy(bad, row, sizeof row);
                bad[at] = cases[c];
                LossStats st = loss_softmax_xent(bad, &label, NULL, 1, 4, 0.1f * (float)e, diff, 1);
                if (!st.nonfinite)
                    fail_msg("logit %d = %g (smoothing %d) not flagged (loss %g)", at,
                             (double)cases[c], e, st.loss_sum);
            }
    /* a second, healthy row does not hide the first */
    float two[8] = {NAN, 0, 0, 0, 1, 2, 3, 4};
    int32_t labels[2] = {0, 3};
    assert_true(loss_softmax_xent(two, labels, NULL, 2, 4, 0.0f, NULL, 2).nonfinite);
}

/* The label's place when row's classes are sorted by decreasing value,
 * ties by increasing index: a selection sort, as naive as it gets. */
static int naive_place(const double *row, int k, int label)
{
    int *order = xmalloc((size_t)k * sizeof(int)), place = -1;
    for (int j = 0; j < k; j++)
        order[j] = j;
    for (int i = 0; i < k; i++) {
        int best = i;
        for (int j = i + 1; j < k; j++)
            if (row[order[j]] > row[order[best]] ||
                (row[order[j]] == row[order[best]] && order[j] < order[best]))
                best = j;
        int tmp = order[i];
        order[i] = order[best];
        order[best] = tmp;
        if (order[i] == label)
            place = i;
    }
    free(order);
    return place;
}

static void softmax_naive(const float *x, int k, double *p)
{
    double mx = -INFINITY, z = 0.0;
    for (int j = 0; j < k; j++)
        mx = fmax(mx, x[j]);
    for (int j = 0; j < k; j++)
        z += p[j] = exp((double)x[j] - mx);
    for (int j = 0; j < k; j++)
        p[j] /= z;
}

static void test_mean_softmax_vs_naive(void **state)
{
    (void)state;
    const int n = 40, k = 7;
    float *a = xmalloc((size_t)n * k * sizeof(float)), *b = xmalloc((size_t)n * k * sizeof(float));
    int32_t labels[40];
    make_batch(a, labels, n, k, 11);
    ref_fill_normal(b, (size_t)n * k, 12, 2.0);
    double pa[7], pb[7], mean[7], loss = 0.0;
    int64_t top1 = 0, top5 = 0, plain1, plain5;
    for (int i = 0; i < n; i++) {
        softmax_naive(a + i * k, k, pa);
        softmax_naive(b + i * k, k, pb);
        for (int j = 0; j < k; j++)
            mean[j] = (pa[j] + pb[j]) / 2;
        loss -= log(mean[labels[i]]);
        int place = naive_place(mean, k, labels[i]);
        top1 += place < 1;
        top5 += place < 5;
    }
    LossStats st = loss_mean_softmax_xent(a, b, labels, n, k);
    assert_false(st.nonfinite);
    if (fabs(st.loss_sum - loss) > 1e-12 * (1.0 + fabs(loss)))
        fail_msg("two-view loss_sum %.17g vs naive %.17g", st.loss_sum, loss);
    assert_int_equal(st.top1, top1);
    assert_int_equal(st.top5, top5);
    /* the views disagree often enough that the mean decides some rows */
    loss_topk(a, labels, n, k, &plain1, &plain5);
    int64_t b1, b5;
    loss_topk(b, labels, n, k, &b1, &b5);
    assert_true(top1 != plain1 || top1 != b1);
    free(a), free(b);
}

/* a = (0, 0): p = (1/2, 1/2); b = (ln 3, 0): p = (3/4, 1/4); the mean is
 * (5/8, 3/8). Label 1: loss -ln(3/8), second place. Equal views: exactly
 * the plain loss's counts and (to rounding) its loss. */
static void test_mean_softmax_worked(void **state)
{
    (void)state;
    float a[2] = {0.0f, 0.0f}, b[2] = {(float)log(3.0), 0.0f};
    int32_t label = 1;
    LossStats st = loss_mean_softmax_xent(a, b, &label, 1, 2);
    assert_true(fabs(st.loss_sum + log(3.0 / 8.0)) < 1e-7);
    assert_int_equal(st.top1, 0);
    assert_int_equal(st.top5, 1);
    const int n = 30, k = 12;
    float *x = xmalloc((size_t)n * k * sizeof(float));
    int32_t labels[30];
    make_batch(x, labels, n, k, 5);
    x[3] = x[4]; /* a tie in row 0 */
    labels[0] = 4;
    LossStats same = loss_mean_softmax_xent(x, x, labels, n, k);
    LossStats plain = loss_softmax_xent(x, labels, NULL, n, k, 0.0f, NULL, n);
    assert_int_equal(same.top1, plain.top1);
    assert_int_equal(same.top5, plain.top5);
    assert_true(fabs(same.loss_sum - plain.loss_sum) <= 1e-12 * fabs(plain.loss_sum));
    float bad[2] = {NAN, 0.0f};
    assert_true(loss_mean_softmax_xent(a, bad, &label, 1, 2).nonfinite);
    free(x);
}

/* ---- mixed targets ---------------------------------------------------- */

static void test_mixed_vs_reference(void **state)
{
    (void)state;
    check_against_ref(8, 10, 0.0f, 8, 21, 1, "mixed 8x10");
    check_against_ref(8, 10, 0.1f, 8, 22, 1, "mixed 8x10 smoothing 0.1");
    check_against_ref(4, 1000, 0.1f, 4, 23, 1, "mixed 4x1000 smoothing 0.1");
    check_against_ref(2, 10, 0.2f, 8, 24, 1, "mixed 2x10 of a global batch of 8");
    check_fd(4, 10, 0.0f, 4, 25, 1, "mixed gradient vs fd");
    check_fd(3, 7, 0.25f, 6, 26, 1, "mixed gradient vs fd, smoothing 0.25, scale 6");
}

/* Partner weight 0 (lam = 1): the plain loss, gradient and counts, bit for
 * bit; weight 1: the plain loss of the partner's labels. */
static void test_mixed_extremes(void **state)
{
    (void)state;
    const int n = 6, k = 9;
    size_t total = (size_t)n * k;
    for (int e = 0; e < 2; e++) {
        float eps = e ? 0.1f : 0.0f;
        float logits[6 * 9], d_plain[6 * 9], d_mixed[6 * 9], weight[6];
        int32_t labels[6], plabel[6];
        make_batch(logits, labels, n, k, 31 + (uint64_t)e);
        make_partner(labels, n, 31, plabel, weight);
        for (int i = 0; i < n; i++)
            weight[i] = 0.0f;
        LossPartner partner = {plabel, weight};
        LossStats a = loss_softmax_xent(logits, labels, NULL, n, k, eps, d_plain, n);
        LossStats b = loss_softmax_xent(logits, labels, &partner, n, k, eps, d_mixed, n);
        assert_true(a.loss_sum == b.loss_sum);
        assert_memory_equal(d_plain, d_mixed, total * sizeof(float));
        assert_int_equal(a.top1, b.top1);
        assert_int_equal(a.top5, b.top5);
        for (int i = 0; i < n; i++)
            weight[i] = 1.0f;
        a = loss_softmax_xent(logits, plabel, NULL, n, k, eps, d_plain, n);
        b = loss_softmax_xent(logits, labels, &partner, n, k, eps, d_mixed, n);
        assert_true(fabs(a.loss_sum - b.loss_sum) <= 1e-12 * fabs(a.loss_sum));
        assert_close(d_mixed, d_plain, total, 1e-12, 2 * U, "partner weight 1");
        assert_int_equal(a.top1, b.top1);
    }
}

/* Top-1 counts against the own label while its weight is at least 1/2,
 * else against the partner's. */
static void test_mixed_topk_label(void **state)
{
    (void)state;
    float row[4] = {0.0f, 3.0f, 1.0f, 2.0f}; /* class 1 ranks first */
    int32_t own = 1, other = 3;
    float w;
    LossPartner partner = {&other, &w};
    w = 0.5f; /* a tie: the own label */
    assert_int_equal(loss_softmax_xent(row, &own, &partner, 1, 4, 0.0f, NULL, 1).top1, 1);
    w = 0.6f;
    assert_int_equal(loss_softmax_xent(row, &own, &partner, 1, 4, 0.0f, NULL, 1).top1, 0);
    int32_t own3 = 3, other1 = 1;
    partner.label = &other1;
    assert_int_equal(loss_softmax_xent(row, &own3, &partner, 1, 4, 0.0f, NULL, 1).top1, 1);
    w = 0.4f;
    assert_int_equal(loss_softmax_xent(row, &own3, &partner, 1, 4, 0.0f, NULL, 1).top1, 0);
    assert_int_equal(loss_softmax_xent(row, &own3, &partner, 1, 4, 0.0f, NULL, 1).top5, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_vs_reference),
        cmocka_unit_test(test_loss_finite_differences),
        cmocka_unit_test(test_loss_known_values),
        cmocka_unit_test(test_loss_stable),
        cmocka_unit_test(test_topk_counts),
        cmocka_unit_test(test_loss_nonfinite),
        cmocka_unit_test(test_mean_softmax_vs_naive),
        cmocka_unit_test(test_mean_softmax_worked),
        cmocka_unit_test(test_mixed_vs_reference),
        cmocka_unit_test(test_mixed_extremes),
        cmocka_unit_test(test_mixed_topk_label),
    };
    return cmocka_run_group_tests_name("loss", tests, NULL, NULL);
}
