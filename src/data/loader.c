/*
 * loader.c - worker threads filling a ring of batch buffers in step order
 * (see loader.h).
 *
 * Step k lives in slot k % depth. A worker claims the next unclaimed step
 * when its slot is free, fills it outside the mutex and marks it ready; the
 * consumer takes steps in order and frees the previous slot on its next
 * call. One mutex guards the ring and the sampler; workers wait on
 * `slot_free`, the consumer on `slot_ready`.
 */
#include "loader.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "sampler.h"
#include "timer.h"

typedef enum { SLOT_FREE, SLOT_FILLING, SLOT_READY } SlotState;

typedef struct {
    SlotState state;
    int64_t step;
    int n;
    int64_t epoch, position; /* TRAIN: the augmentation keys of image 0 */
    int64_t *index;          /* (local batch) dataset indices */
    float *images;           /* (local batch, C, crop, crop) */
    int32_t *labels;
    Status st;
} Slot;

typedef struct {
    Loader *l;
    pthread_t tid;
    int started;
    DatasetImage img;
    AugScratch aug;
} Worker;

struct Loader {
    LoaderConfig cfg;
    Dataset data;
    int data_open;
    Sampler sampler;           /* TRAIN */
    int64_t eval_first, eval_count;
    int local_batch;
    int64_t steps;             /* TRAIN: per epoch; EVAL: in total */
    size_t image_floats;       /* C x crop x crop */

    pthread_mutex_t mu;
    pthread_cond_t slot_ready, slot_free;
    int sync_made;
    int depth;
    Slot *slots;
    int64_t next_fill;         /* the next step a worker claims */
    int64_t next_take;         /* the next step the consumer takes */
    int holding;               /* the consumer holds step next_take - 1 */
    atomic_int stop;

    int nworkers;
    Worker *workers;
};

/* ------------------------------------------------------------------ */
/* workers                                                             */

/* Under the mutex: what step k holds. 0 when there is no step k (EVAL). */
static int step_plan(Loader *l, int64_t k, Slot *slot)
{
    if (l->cfg.mode == LOADER_EVAL) {
        if (k >= l->steps)
            return 0;
        int64_t first = l->eval_first + k * l->local_batch;
        int64_t left = l->eval_first + l->eval_count - first;
        slot->n = (int)(left < l->local_batch ? left : l->local_batch);
        for (int i = 0; i < slot->n; i++)
            slot->index[i] = first + i;
        slot->epoch = slot->position = 0;
        return 1;
    }
    sampler_step_indices(&l->sampler, k, slot->index);
    slot->n = l->local_batch;
    slot->epoch = sampler_epoch(&l->sampler, k);
    slot->position = sampler_position(&l->sampler, k);
    return 1;
}

/* Outside the mutex: reads, augments and normalises the slot's images. */
static void slot_fill(Loader *l, Worker *w, Slot *slot)
{
    const LoaderConfig *c = &l->cfg;
    const Dataset *d = &l->data;
    const int32_t *labels = dataset_labels(d, c->split);
    AugMode mode = c->mode == LOADER_TRAIN ? c->aug : AUG_NONE;
    double erase = c->mode == LOADER_TRAIN ? c->erase : 0.0;
    memset(&slot->st, 0, sizeof slot->st);
    for (int i = 0; i < slot->n && !atomic_load(&l->stop); i++) {
        if (dataset_read_image(&l->data, c->split, slot->index[i], &w->img, &slot->st) != 0)
            return;
        augment_sample(mode, erase, c->crop, c->seed, slot->epoch, slot->position + i,
                       w->img.px, w->img.h, w->img.w, w->img.c,
                       (const float (*)[256])d->norm.lut, &w->aug,
                       slot->images + (size_t)i * l->image_floats);
        slot->labels[i] = labels[slot->index[i]];
    }
}

static void *worker_main(void *arg)
{
    Worker *w = arg;
    Loader *l = w->l;
    pthread_mutex_lock(&l->mu);
    while (!atomic_load(&l->stop)) {
        int64_t k = l->next_fill;
        Slot *slot = &l->slots[k % l->depth];
        if (slot->state != SLOT_FREE) {
            pthread_cond_wait(&l->slot_free, &l->mu);
            continue;
        }
        if (!step_plan(l, k, slot))
            break; /* EVAL: past the end */
        slot->state = SLOT_FILLING;
        slot->step = k;
        l->next_fill++;
        pthread_mutex_unlock(&l->mu);
        slot_fill(l, w, slot);
        pthread_mutex_lock(&l->mu);
        slot->state = SLOT_READY;
        pthread_cond_broadcast(&l->slot_ready);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* set-up and tear-down                                                */

static int config_plan(Loader *l, Status *st)
{
    const LoaderConfig *c = &l->cfg;
    int64_t n = dataset_count(&l->data, c->split);
    if (c->mode == LOADER_TRAIN) {
        if (sampler_check(n, c->batch, c->world, c->drop_last, st) != 0)
            return st->code;
        sampler_init(&l->sampler, n, c->batch, c->rank, c->world, c->seed, c->drop_last);
        l->local_batch = sampler_local_batch(&l->sampler);
        l->steps = sampler_steps_per_epoch(&l->sampler);
        return 0;
    }
    sampler_eval_range(n, c->rank, c->world, &l->eval_first, &l->eval_count);
    l->local_batch = (int)c->batch;
    l->steps = (l->eval_count + c->batch - 1) / c->batch;
    return 0;
}

int loader_create(Loader **out, const LoaderConfig *cfg, Status *st)
{
    CHECK(cfg->crop >= 1 && cfg->batch >= 1 && cfg->batch <= INT32_MAX && cfg->world >= 1 &&
          cfg->rank >= 0 && cfg->rank < cfg->world && cfg->start_step >= 0 &&
          cfg->threads >= 0 && cfg->depth >= 0 && cfg->aug >= 0 && cfg->aug < AUG_COUNT &&
          cfg->erase >= 0 && cfg->erase <= 1,
          "crop %d batch %lld rank %d of %d start %lld threads %d depth %d aug %d erase %g",
          cfg->crop, (long long)cfg->batch, cfg->rank, cfg->world, (long long)cfg->start_step,
          cfg->threads, cfg->depth, (int)cfg->aug, cfg->erase);
    *out = NULL;
    Loader *l = xcalloc(1, sizeof *l);
    l->cfg = *cfg;
    l->cfg.threads = cfg->threads ? cfg->threads : 1;
    l->depth = cfg->depth > l->cfg.threads ? cfg->depth : l->cfg.threads + 1;
    l->cfg.depth = l->depth;
    l->cfg.cache_bytes = cfg->cache_bytes ? cfg->cache_bytes : LOADER_CACHE_DEFAULT;
    atomic_init(&l->stop, 0);
    if (dataset_open(&l->data, cfg->path, st) != 0)
        goto fail;
    l->data_open = 1;
    if (!l->data.part[cfg->split].present) {
        status_set(st, EXIT_USAGE, "%s: /%s is missing", cfg->path,
                   dataset_split_name(cfg->split));
        goto fail;
    }
    if (config_plan(l, st) != 0)
        goto fail;
    dataset_set_random_access(&l->data, cfg->split, l->cfg.cache_bytes);

    l->image_floats = (size_t)l->data.channels * cfg->crop * cfg->crop;
    l->slots = xcalloc((size_t)l->depth, sizeof *l->slots);
    for (int i = 0; i < l->depth; i++) {
        Slot *s = &l->slots[i];
        s->index = xmalloc((size_t)l->local_batch * sizeof *s->index);
        s->images = xaligned_alloc((size_t)l->local_batch * l->image_floats * sizeof(float));
        s->labels = xcalloc((size_t)l->local_batch, sizeof *s->labels);
    }
    l->next_fill = l->next_take = cfg->start_step;
    CHECK(pthread_mutex_init(&l->mu, NULL) == 0, "pthread_mutex_init");
    CHECK(pthread_cond_init(&l->slot_ready, NULL) == 0, "pthread_cond_init");
    CHECK(pthread_cond_init(&l->slot_free, NULL) == 0, "pthread_cond_init");
    l->sync_made = 1;
    l->workers = xcalloc((size_t)l->cfg.threads, sizeof *l->workers);
    for (int i = 0; i < l->cfg.threads; i++) {
        Worker *w = &l->workers[i];
        w->l = l;
        int err = pthread_create(&w->tid, NULL, worker_main, w);
        CHECK(err == 0, "pthread_create: %s", strerror(err));
        w->started = 1;
        l->nworkers++;
    }
    *out = l;
    return 0;
fail:
    loader_free(l);
    return st->code;
}

void loader_free(Loader *l)
{
    if (!l)
        return;
    if (l->sync_made) {
        pthread_mutex_lock(&l->mu);
        atomic_store(&l->stop, 1);
        pthread_cond_broadcast(&l->slot_free);
        pthread_cond_broadcast(&l->slot_ready);
        pthread_mutex_unlock(&l->mu);
    }
    for (int i = 0; i < l->nworkers; i++) {
        Worker *w = &l->workers[i];
        if (w->started)
            pthread_join(w->tid, NULL);
        dataset_image_free(&w->img);
        augment_scratch_free(&w->aug);
    }
    free(l->workers);
    if (l->sync_made) {
        pthread_cond_destroy(&l->slot_free);
        pthread_cond_destroy(&l->slot_ready);
        pthread_mutex_destroy(&l->mu);
    }
    for (int i = 0; l->slots && i < l->depth; i++) {
        free(l->slots[i].index);
        free(l->slots[i].images);
        free(l->slots[i].labels);
    }
    free(l->slots);
    sampler_free(&l->sampler);
    if (l->data_open)
        dataset_close(&l->data);
    free(l);
}

/* ------------------------------------------------------------------ */
/* the consumer                                                        */

int loader_next_batch(Loader *l, LoaderBatch *batch, Status *st)
{
    memset(batch, 0, sizeof *batch);
    pthread_mutex_lock(&l->mu);
    if (l->holding) {
        l->slots[(l->next_take - 1) % l->depth].state = SLOT_FREE;
        l->holding = 0;
        pthread_cond_broadcast(&l->slot_free);
    }
    int64_t k = l->next_take;
    batch->step = k;
    if (l->cfg.mode == LOADER_EVAL && k >= l->steps) {
        pthread_mutex_unlock(&l->mu);
        return 0; /* past the end: n = 0 */
    }
    Slot *slot = &l->slots[k % l->depth];
    double t0 = timer_now();
    while (!(slot->state == SLOT_READY && slot->step == k))
        pthread_cond_wait(&l->slot_ready, &l->mu);
    batch->wait = timer_now() - t0;
    l->next_take++;
    l->holding = 1;
    pthread_mutex_unlock(&l->mu);
    if (slot->st.code) {
        *st = slot->st;
        return st->code;
    }
    batch->images = slot->images;
    batch->labels = slot->labels;
    batch->n = slot->n;
    return 0;
}

double loader_next(Loader *l, float **images, int32_t **labels)
{
    LoaderBatch b;
    Status st = {0};
    if (loader_next_batch(l, &b, &st) != 0)
        fail_local(__FILE__, __LINE__, "loader_next", "%s", st.msg);
    *images = b.images;
    *labels = b.labels;
    return b.wait;
}

const Dataset *loader_dataset(const Loader *l)
{
    return &l->data;
}

int loader_local_batch(const Loader *l)
{
    return l->local_batch;
}

int64_t loader_steps(const Loader *l)
{
    return l->steps;
}
