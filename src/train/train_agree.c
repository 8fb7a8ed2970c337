/* train_agree.c - the ranks compare their datasets and step plans at start. */
#include "train_agree.h"

#include <stdio.h>

#include "dist.h"
#include "error.h"

enum { MAX_SETTINGS = 32 };

typedef struct {
    DistSetting item[MAX_SETTINGS];
    int n;
} Settings;

static void add_text(Settings *s, const char *name, const char *value)
{
    CHECK(s->n < MAX_SETTINGS, "too many settings to compare");
    s->item[s->n].name = name;
    snprintf(s->item[s->n].value, sizeof s->item[s->n].value, "%s", value);
    s->n++;
}

static void add(Settings *s, const char *name, long long value)
{
    char text[32];
    snprintf(text, sizeof text, "%lld", value);
    add_text(s, name, text);
}

/* Most telling first: a count says more than a fingerprint. */
static void add_dataset(Settings *s, const Trainer *t)
{
    static const char *const counts[SPLIT_COUNT] = {"train count", "val count", "test count"};
    /* the same items on every rank, data or not: the comparison gathers a fixed count */
    for (int split = 0; split < SPLIT_COUNT; split++)
        add(s, counts[split],
            t->res.have_data ? (long long)dataset_count(&t->res.data, (DatasetSplit)split) : 0);
    add(s, "classes", t->cfg.num_classes);
    add(s, "channels", t->cfg.channels);
    add(s, "crop", t->cfg.crop);
    add_text(s, "dataset fingerprint", t->cfg.fingerprint);
}

static void add_plan(Settings *s, const Trainer *t)
{
    const Options *o = &t->cfg.opt;
    add(s, "world size", t->cfg.dist.size);
    add(s, "global batch", o->batch_size);
    add(s, "local batch", t->cfg.local_batch);
    add(s, "epochs", o->epochs);
    add(s, "max steps", (long long)o->max_steps);
    add(s, "drop-last", o->drop_last);
    add(s, "seed", (long long)o->seed);
    add(s, "steps per epoch", (long long)t->cfg.steps_per_epoch);
    add(s, "total steps", (long long)t->cfg.total_steps);
    add(s, "val-every", o->val_every);
    add(s, "checkpoint-every", o->checkpoint_every);
    add(s, "check-every", o->check_every);
    add_text(s, "mode", o->eval_only ? "eval-only" : o->bench ? "bench"
                                    : o->dry_run ? "dry-run" : "train");
}

void trainer_agree_plan(const Trainer *t)
{
    Settings s = {.n = 0};
    add_dataset(&s, t);
    add_plan(&s, t);
    Status st = {0};
    dist_agree_settings(s.item, s.n, &st);
    status_agree(&st);
}
