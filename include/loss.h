/*
 * loss.h - mean softmax cross-entropy over the batch (torch's
 * F.cross_entropy, optional label smoothing), its gradient, and top-1/top-5
 * hits. Plain (N, K) logits. Local.
 */
#ifndef RESNET_LOSS_H
#define RESNET_LOSS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    double loss_sum; /* summed over the samples (mean = loss_sum / n) */
    int64_t top1, top5;
    int nonfinite;   /* a logit or the loss was NaN or infinite */
} LossStats;

/* A second label per sample (mixup, cutmix): sample i's target is
 * (1 - weight[i]) onehot(labels[i]) + weight[i] onehot(partner label[i]),
 * before label smoothing; top-1/top-5 count against the label of the larger weight
 * (the own label on a tie). */
typedef struct {
    const int32_t *label;  /* (n) */
    const float *weight;   /* (n) in [0, 1] */
} LossPartner;

/* logits (n, k); diff (n, k) receives d(mean loss)/d(logits) scaled by
 * 1/scale_n (scale_n: the global batch, so per-rank gradients sum to the
 * global mean); diff may be NULL for evaluation. The target is
 * (1 - label_smoothing) t + label_smoothing / k, t the one-hot label or,
 * with a partner (NULL: none), the mixed one; the gradient is softmax -
 * target. */
LossStats loss_softmax_xent(const float *logits, const int32_t *labels,
                            const LossPartner *partner, int n, int k, float label_smoothing,
                            float *diff, int scale_n);
/* Top-1 and top-5 hits only. */
void loss_topk(const float *logits, const int32_t *labels, int n, int k, int64_t *top1,
               int64_t *top5);

/* Test-time augmentation over two views of each image (a: as read, b: its
 * mirror): each sample's class probabilities are the mean of softmax(a) and
 * softmax(b); the loss is -log of the label's mean probability and top-1/
 * top-5 rank the mean probabilities (ties to the lower index). logits_a,
 * logits_b: (n, k). No gradient: evaluation only. */
LossStats loss_mean_softmax_xent(const float *logits_a, const float *logits_b,
                                 const int32_t *labels, int n, int k);

#endif
