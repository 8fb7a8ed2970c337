/* predict.c - image files through the evaluation path to class probabilities. */
#include "predict.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dnn.h"
#include "prep_file.h"

/* What prediction needs from the checkpoint; NULL when everything is there. */
static const char *spec_missing(const CheckpointSpec *s)
{
    return !s->arch[0]          ? "arch"
           : !s->num_classes    ? "num_classes"
           : s->small_stem < 0  ? "stem"
           : !s->input_size     ? "input_size"
           : !s->resize_size    ? "resize_size"
           : !s->channels       ? "mean"
                                : NULL;
}

int predictor_open(Predictor *p, const char *checkpoint, int batch, Status *st)
{
    memset(p, 0, sizeof *p);
    params_init(&p->params);
    if (checkpoint_read_spec(checkpoint, &p->spec, st) != 0)
        return st->code;
    const char *missing = spec_missing(&p->spec);
    if (missing) {
        status_set(st, EXIT_USAGE, "%s: root attribute %s is missing: resnet_predict needs a "
                   "checkpoint that describes its input (written by this version of "
                   "resnet_dist; see docs/checkpoint-format.md)", checkpoint, missing);
        return st->code;
    }
    if (!arch_exists(p->spec.arch)) {
        status_set(st, EXIT_USAGE, "%s: root attribute arch is %s, an architecture this "
                   "program does not have", checkpoint, p->spec.arch);
        return st->code;
    }
    dnn_init();
    NetConfig cfg = {.num_classes = p->spec.num_classes, .in_channels = p->spec.channels,
                     .image_size = p->spec.input_size, .batch = batch,
                     .small_stem = p->spec.small_stem, .conv_algo = CONV_DIRECT};
    snprintf(cfg.arch, sizeof cfg.arch, "%s", p->spec.arch);
    p->batch = batch;
    p->net = net_create(&cfg, &p->params);
    params_allocate(&p->params);
    if (checkpoint_read(checkpoint, &p->params, NULL, CKPT_WEIGHTS_ONLY, st) != 0)
        return st->code;
    normaliser_init(&p->norm, p->spec.channels, p->spec.mean, p->spec.std);
    p->codec = image_codec_new();
    p->probs = xcalloc((size_t)batch * (size_t)p->spec.num_classes, sizeof *p->probs);
    return 0;
}

void predictor_close(Predictor *p)
{
    if (p->net) {
        net_free(p->net);
        dnn_free();
    }
    params_free(&p->params);
    checkpoint_spec_free(&p->spec);
    image_codec_free(p->codec);
    image_free(&p->decoded);
    image_free(&p->resized);
    image_free(&p->square);
    image_free(&p->input);
    free(p->bytes);
    free(p->probs);
    memset(p, 0, sizeof *p);
}

/* The whole file into p->bytes; its size, or -1 with why. Only regular
 * files are read (prep_file_open), so a FIFO never blocks. */
static long long file_read(Predictor *p, const char *path, char *why, size_t len)
{
    int fd = prep_file_open(path, why, len);
    if (fd < 0)
        return -1;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        snprintf(why, len, "%s", strerror(errno));
        close(fd);
        return -1;
    }
    size_t size = (size_t)sb.st_size;
    if (size + 1 > p->bytes_cap) {
        p->bytes_cap = size + 1;
        p->bytes = xrealloc(p->bytes, p->bytes_cap);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, p->bytes + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(why, len, "read failed: %s", n < 0 ? strerror(errno) : "file shrank");
            close(fd);
            return -1;
        }
        got += (size_t)n;
    }
    close(fd);
    return (long long)got;
}

int predictor_load(Predictor *p, const char *path, int slot, char *why, size_t why_len)
{
    const CheckpointSpec *s = &p->spec;
    long long size = file_read(p, path, why, why_len);
    if (size < 0)
        return -1;
    /* as resnet_prep decodes: a JPEG at the smallest scale still >= resize_size */
    if (image_decode_to(p->codec, p->bytes, (size_t)size, s->resize_size, s->channels,
                        &p->decoded, why, why_len) != 0)
        return -1;
    int w, h;
    image_resized_dims(p->decoded.w, p->decoded.h, s->resize_size, &w, &h);
    if ((size_t)w * (size_t)h > IMAGE_MAX_PIXELS) {
        snprintf(why, why_len, "aspect ratio too extreme (%d x %d would resize to %d x %d)",
                 p->decoded.w, p->decoded.h, w, h);
        return -1;
    }
    image_resize(&p->decoded, w, h, &p->resized);
    image_center_crop(&p->resized, s->resize_size, s->resize_size, &p->square);
    image_center_crop(&p->square, s->input_size, s->input_size, &p->input);
    size_t image = (size_t)s->channels * s->input_size * s->input_size;
    normaliser_apply(&p->norm, p->input.px, s->input_size, 0, 0, s->input_size,
                     net_input(p->net) + (size_t)slot * image);
    return 0;
}

const double *predictor_run(Predictor *p, int n)
{
    const CheckpointSpec *s = &p->spec;
    size_t image = (size_t)s->channels * s->input_size * s->input_size;
    /* unused slots hold zeros; evaluation-mode BN keeps images independent */
    memset(net_input(p->net) + (size_t)n * image, 0, (size_t)(p->batch - n) * image * sizeof(float));
    net_forward(p->net, 0);
    const float *logits = net_logits(p->net);
    int k = s->num_classes;
    for (int i = 0; i < n; i++) {
        const float *row = logits + (size_t)i * k;
        double *out = p->probs + (size_t)i * k, mx = row[0], z = 0;
        for (int j = 1; j < k; j++)
            mx = row[j] > mx ? row[j] : mx;
        for (int j = 0; j < k; j++)
            z += out[j] = exp((double)row[j] - mx);
        for (int j = 0; j < k; j++)
            out[j] /= z;
    }
    return p->probs;
}

typedef struct {
    double prob;
    int index;
} Ranked;

/* Most probable first; ties: the lower index first, as torch.topk. */
static int ranked_cmp(const void *a, const void *b)
{
    const Ranked *x = a, *y = b;
    if (x->prob != y->prob)
        return x->prob < y->prob ? 1 : -1;
    return (x->index > y->index) - (x->index < y->index);
}

void predictor_top(const double *probs, int num_classes, int k, int *top)
{
    Ranked *r = xmalloc((size_t)num_classes * sizeof *r);
    for (int j = 0; j < num_classes; j++)
        r[j] = (Ranked){probs[j], j};
    qsort(r, (size_t)num_classes, sizeof *r, ranked_cmp);
    for (int q = 0; q < k; q++)
        top[q] = r[q].index;
    free(r);
}
