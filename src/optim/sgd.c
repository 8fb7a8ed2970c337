/* sgd.c - momentum SGD with weight decay over the flat parameter buffers. */
#include "sgd.h"

static void sgd_update_slice(float *w, const float *grad, float *buf, size_t n, float lr,
                             float momentum, float wd, int nesterov)
{
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = grad[i] + wd * w[i];
        float b = momentum * buf[i] + g;
        buf[i] = b;
        w[i] -= lr * (nesterov ? g + momentum * b : b);
    }
}

void sgd_step(const SgdConfig *cfg, Params *p, double lr)
{
    for (int i = 0; i < p->count; i++) {
        const ParamInfo *info = &p->info[i];
        float wd = (cfg->no_bn_decay && params_is_bn_or_bias(info)) ? 0.0f
                                                                     : (float)cfg->weight_decay;
        size_t off = info->offset;
        sgd_update_slice(p->value + off, p->grad + off, p->momentum + off, info->span, (float)lr,
                         (float)cfg->momentum, wd, cfg->nesterov);
    }
}
