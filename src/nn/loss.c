/* loss.c - softmax cross-entropy with label smoothing, and accuracy. */
#include "loss.h"

#include <math.h>

/* How many logits beat the label's logit; ties go to the lower index, as
 * torch.topk reports them. */
static int label_rank(const float *row, int k, int label)
{
    float v = row[label];
    int rank = 0;
    for (int j = 0; j < k; j++)
        if (row[j] > v || (row[j] == v && j < label))
            rank++;
    return rank;
}

void loss_topk(const float *logits, const int32_t *labels, int n, int k, int64_t *top1,
               int64_t *top5)
{
    int64_t h1 = 0, h5 = 0;
    for (int i = 0; i < n; i++) {
        int r = label_rank(logits + (size_t)i * k, k, labels[i]);
        h1 += r < 1;
        h5 += r < 5;
    }
    *top1 = h1;
    *top5 = h5;
}

/* log sum_j exp(row[j]), shifted by the largest logit. */
static double log_sum_exp(const float *row, int k)
{
    double mx = row[0];
    for (int j = 1; j < k; j++)
        mx = row[j] > mx ? row[j] : mx;
    double z = 0.0;
    for (int j = 0; j < k; j++)
        z += exp((double)row[j] - mx);
    return mx + log(z);
}

/* Sample i's target for class j: with a partner, off + (1 - eps) times the
 * mixed one-hot weight (a partner weight of 0 gives on and off bit for bit);
 * without, on for the label and off elsewhere. */
static double target_of(int j, int label, const LossPartner *partner, int i, double eps,
                        double on, double off)
{
    if (!partner)
        return j == label ? on : off;
    double w = partner->weight[i];
    double mixed = (j == label ? 1.0 - w : 0.0) + (j == partner->label[i] ? w : 0.0);
    return off + (1.0 - eps) * mixed;
}

/* The label top-1/top-5 count against: the one of the larger target weight. */
static int32_t counted_label(const int32_t *labels, const LossPartner *partner, int i)
{
    return partner && partner->weight[i] > 0.5f ? partner->label[i] : labels[i];
}

LossStats loss_softmax_xent(const float *logits, const int32_t *labels,
                            const LossPartner *partner, int n, int k, float label_smoothing,
                            float *diff, int scale_n)
{
    LossStats st = {0};
    double eps = label_smoothing, off = eps / k, on = 1.0 - eps + off;
    for (int i = 0; i < n; i++) {
        const float *row = logits + (size_t)i * k;
        double logz = log_sum_exp(row, k);
        /* -sum_j target_j log p_j */
        double l = 0.0;
        for (int j = 0; j < k; j++)
            l -= target_of(j, labels[i], partner, i, eps, on, off) * ((double)row[j] - logz);
        st.loss_sum += l;
        if (diff)
            for (int j = 0; j < k; j++)
                diff[(size_t)i * k + j] =
                    (float)((exp((double)row[j] - logz) -
                             target_of(j, labels[i], partner, i, eps, on, off)) /
                            scale_n);
        int r = label_rank(row, k, counted_label(labels, partner, i));
        st.top1 += r < 1;
        st.top5 += r < 5;
    }
    st.nonfinite = !isfinite(st.loss_sum);
    return st;
}

LossStats loss_mean_softmax_xent(const float *logits_a, const float *logits_b,
                                 const int32_t *labels, int n, int k)
{
    LossStats st = {0};
    for (int i = 0; i < n; i++) {
        const float *a = logits_a + (size_t)i * k, *b = logits_b + (size_t)i * k;
        double za = log_sum_exp(a, k), zb = log_sum_exp(b, k);
        /* every probability is computed by the same expression, so equal
         * views give equal values and ties rank as in loss_topk */
#define MEAN_PROB(j) (0.5 * (exp((double)a[j] - za) + exp((double)b[j] - zb)))
        int label = labels[i];
        double pl = MEAN_PROB(label);
        st.loss_sum -= log(pl);
        int rank = 0;
        for (int j = 0; j < k; j++) {
            double pj = MEAN_PROB(j);
            rank += pj > pl || (pj == pl && j < label);
        }
#undef MEAN_PROB
        st.top1 += rank < 1;
        st.top5 += rank < 5;
    }
    st.nonfinite = !isfinite(st.loss_sum);
    return st;
}
