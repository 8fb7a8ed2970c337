/*
 * predict.h - classifying image files with a checkpoint (resnet_predict).
 * The checkpoint's root attributes (docs/checkpoint-format.md) say how to
 * feed its model; each image file goes through the evaluation path's
 * operations, in its order and with its functions: decode (image_io,
 * JPEG/PNG, grey or RGB as the model's input channels), resize of the
 * shorter side to resize_size, a centre crop to resize_size x resize_size
 * (what resnet_prep stores), a centre crop to input_size, and mean/std
 * normalisation (normalise.h). An image stored by resnet_prep in a raw
 * dataset and the same file given here therefore reach the network as the
 * same bits.
 *
 * Local: one process, one thread.
 */
#ifndef RESNET_PREDICT_H
#define RESNET_PREDICT_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "error.h"
#include "image_io.h"
#include "normalise.h"
#include "params.h"
#include "resnet.h"

typedef struct {
    CheckpointSpec spec; /* with the class names, when the checkpoint has them */
    Params params;
    Net *net;
    int batch;
    Normaliser norm;
    ImageCodec *codec;
    Image decoded, resized, square, input;
    uint8_t *bytes;
    size_t bytes_cap;
    double *probs; /* (batch, num_classes) */
} Predictor;

/* Reads the checkpoint's description and weights and builds its network
 * for batches of `batch` images. The checkpoint must describe its input
 * (arch, num_classes, stem, input_size, resize_size, mean, std). Returns 0,
 * or st->code (EXIT_USAGE) naming the file and what is missing or wrong;
 * predictor_close either way. Calls dnn_init. */
int predictor_open(Predictor *p, const char *checkpoint, int batch, Status *st);
void predictor_close(Predictor *p);

/* Reads image file path into batch slot `slot`, preprocessed. Returns 0, or
 * -1 with a one-line reason in why (cannot open, not a regular file, not a
 * JPEG or PNG, damaged, too large). */
int predictor_load(Predictor *p, const char *path, int slot, char *why, size_t why_len);

/* Runs the network on slots [0, n) and returns their class probabilities
 * (softmax of the logits), (n, num_classes), valid until the next call. */
const double *predictor_run(Predictor *p, int n);

/* The k most probable classes of one row of probabilities, most probable
 * first (ties: the lower index first), into top[0..k). */
void predictor_top(const double *probs, int num_classes, int k, int *top);

#endif
