/*
 * shortcut.h - the parameter-free "option A" shortcut of the ResNet paper's
 * CIFAR networks: subsample by the stride and zero-pad the new channels,
 * split evenly before and after the existing ones (as the widely used
 * PyTorch CIFAR implementations do). Local.
 */
#ifndef RESNET_SHORTCUT_H
#define RESNET_SHORTCUT_H

#include "dnn.h"

typedef struct {
    int stride, pad_before;
    const Tensor *src;       /* (N, C, H, W) */
    Tensor dst;              /* (N, C', H/s, W/s) in the layout out_md gives */
    Tensor plain_in, plain_out;
    Reorder to_plain_in, from_plain_out, to_plain_out, from_plain_in;
} ShortcutA;

void shortcut_a_init(ShortcutA *l, const Tensor *src, const dnnl_memory_desc_t *out_md,
                     int stride);
void shortcut_a_forward(ShortcutA *l);
void shortcut_a_backward(ShortcutA *l, const Tensor *diff_dst, Tensor *diff_src);
void shortcut_a_free(ShortcutA *l);

#endif
