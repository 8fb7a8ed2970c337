/*
 * test_train_report.c - the start-up "config:" lines: every setting that
 * decides a run, with the schedule's own parameters (the plateau rule in
 * effect, which a resumed run takes from its checkpoint), and none that
 * would mislead (a --stem that the CIFAR networks ignore, a --max-steps
 * that was never given); a buffer too small keeps a terminated prefix.
 */
#include <stdio.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "augment.h"
#include "train_report.h"

static char text[4096];

/* Formats c with its own plateau settings; every line starts "config: ". */
static const char *format(const TrainConfig *c)
{
    size_t n = report_format_config(c, &c->opt.plateau, text, sizeof text);
    assert_int_equal(n, strlen(text));
    assert_true(n > 0 && text[n - 1] == '\n');
    for (const char *line = text; *line; line = strchr(line, '\n') + 1)
        assert_memory_equal(line, "config: ", 8);
    return text;
}

static void has(const char *s, const char *what)
{
    assert_non_null(s); /* and tells GCC's sanitizer build that s is no null argument */
    if (!strstr(s, what))
        fail_msg("'%s' not in:\n%s", what, s);
}

static void lacks(const char *s, const char *what)
{
    assert_non_null(s);
    if (strstr(s, what))
        fail_msg("'%s' should not be in:\n%s", what, s);
}

/* resnet50 on a dataset with the defaults, resolved as set-up does. */
static TrainConfig base_config(void)
{
    TrainConfig c;
    memset(&c, 0, sizeof c);
    options_defaults(&c.opt);
    c.opt.data = "imagenet.h5";
    c.opt.num_classes = 1000;
    c.opt.crop = 224;
    c.opt.aug = AUG_RRC;
    c.opt.schedule.lr = c.opt.lr;
    c.opt.plateau.min_lr = 0;
    c.local_batch = 32;
    c.schedule = c.opt.schedule;
    return c;
}

static void test_defaults_say_everything(void **state)
{
    (void)state;
    TrainConfig c = base_config();
    const char *s = format(&c);
    has(s, "config: arch=resnet50 stem=imagenet num_classes=1000 crop=224 ");
    has(s, " conv_algo=direct sync_bn=0 precision=fp32\n");
    has(s, "config: data=imagenet.h5 aug=rrc drop_last=1 loader_threads=1\n");
    has(s, " batch_size=256 local_batch=32 lr=0.1 momentum=0.9 nesterov=0 weight_decay=0.0001 "
           "no_bn_decay=0 label_smoothing=0 seed=0\n");
    has(s, "config: schedule=plateau epochs=90 warmup_epochs=0 plateau_metric=val_top1 "
           "plateau_factor=0.1 plateau_patience=10 plateau_threshold=0.0001 "
           "plateau_threshold_mode=rel plateau_cooldown=0 min_lr=0 val_every=1\n");
    has(s, "config: checkpoint_dir=checkpoints checkpoint_every=1 checkpoint_minutes=off keep=3 "
           "bucket_mb=25\n");
    has(s, "config: model_ema=off tta=none\n");
    lacks(s, "max_steps");
    lacks(s, "warmup_start_lr");
    lacks(s, "wrn_dropout");
    lacks(s, "lr_steps");
}

static void test_no_misleading_settings(void **state)
{
    (void)state;
    TrainConfig c = base_config();
    snprintf(c.opt.arch, sizeof c.opt.arch, "resnet20");
    c.opt.aug = AUG_NONE;
    c.opt.max_steps = 64000;
    c.opt.keep = 0;
    c.opt.checkpoint_minutes = 30;
    const char *s = format(&c);
    lacks(s, "stem=");
    has(s, " aug=none ");
    has(s, " epochs=90 max_steps=64000 ");
    has(s, " checkpoint_minutes=30 keep=all ");
    snprintf(c.opt.arch, sizeof c.opt.arch, "wrn-28-10");
    c.opt.wrn_dropout = 0.3;
    s = format(&c);
    lacks(s, "stem=");
    has(s, " wrn_dropout=0.3 ");
}

static void test_ema_and_tta(void **state)
{
    (void)state;
    TrainConfig c = base_config();
    c.opt.model_ema = 0.9998;
    c.opt.model_ema_every = 32;
    c.opt.model_ema_eval = 1;
    c.opt.tta_flip = 1;
    const char *s = format(&c);
    has(s, "config: model_ema=0.9998 model_ema_every=32 model_ema_eval=1 tta=flip\n");
    c.opt.init_from = "ema.h5";
    c.opt.init_from_ema = 1;
    s = format(&c);
    has(s, " model_ema_eval=1 init_from_ema=1 tta=flip\n");
}

static void test_schedules(void **state)
{
    (void)state;
    TrainConfig c = base_config();
    c.schedule.kind = SCHEDULE_STEP;
    c.opt.warmup_epochs = 5;
    c.opt.warmup_start_lr = 0.1;
    c.opt.base_lr = 0.1;
    c.opt.lr = 0.8;
    const char *s = format(&c);
    has(s, " lr=0.8 base_lr=0.1 ");
    has(s, "config: schedule=step epochs=90 warmup_epochs=5 warmup_start_lr=0.1 "
           "lr_steps=30,60,80 lr_gamma=0.1 val_every=1\n");
    lacks(s, "plateau_");
    c.schedule.kind = SCHEDULE_COSINE;
    c.schedule.min_lr = 1e-5;
    s = format(&c);
    has(s, " schedule=cosine ");
    has(s, " min_lr=1e-05 val_every=1\n");
    lacks(s, "lr_gamma");
}

/* A resumed run follows its checkpoint's plateau rule: that is what is shown. */
static void test_plateau_in_effect(void **state)
{
    (void)state;
    TrainConfig c = base_config();
    Plateau p = c.opt.plateau;
    p.mode = PLATEAU_MIN;
    p.factor = 0.5;
    p.patience = 5;
    p.threshold = 0.001;
    p.threshold_mode = THRESHOLD_ABS;
    p.cooldown = 2;
    p.min_lr = 1e-4;
    report_format_config(&c, &p, text, sizeof text);
    has(text, " plateau_metric=val_loss plateau_factor=0.5 plateau_patience=5 "
              "plateau_threshold=0.001 plateau_threshold_mode=abs plateau_cooldown=2 "
              "min_lr=0.0001 ");
}

static void test_other_settings(void **state)
{
    (void)state;
    TrainConfig c = base_config();
    c.opt.sync_bn = 1;
    c.opt.winograd = 1;
    c.opt.label_smoothing = 0.1;
    c.opt.bucket_mb = 50;
    c.opt.resume = "auto";
    c.opt.loader_threads = 4;
    c.opt.drop_last = 0;
    c.opt.random_erase = 0.25;
    const char *s = format(&c);
    has(s, " conv_algo=winograd sync_bn=1 ");
    has(s, " label_smoothing=0.1 ");
    has(s, " aug=rrc random_erase=0.25 drop_last=0 loader_threads=4\n");
    has(s, " resume=auto bucket_mb=50\n");
    c.opt.synthetic = 1;
    c.opt.data = NULL;
    s = format(&c);
    has(s, " in_channels=3 ");
    has(s, "config: data=synthetic ");
    lacks(s, "aug=");
    lacks(s, "random_erase");
}

static void test_small_buffer(void **state)
{
    (void)state;
    TrainConfig c = base_config();
    char whole[4096], small[40];
    size_t n = report_format_config(&c, &c.opt.plateau, whole, sizeof whole);
    memset(small, 'x', sizeof small);
    assert_int_equal(report_format_config(&c, &c.opt.plateau, small, sizeof small), n);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_memory_equal(small, whole, sizeof small - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_say_everything),
        cmocka_unit_test(test_no_misleading_settings),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_ema_and_tta),
        cmocka_unit_test(test_plateau_in_effect),
        cmocka_unit_test(test_other_settings),
        cmocka_unit_test(test_small_buffer),
    };
    return cmocka_run_group_tests_name("train_report", tests, NULL, NULL);
}
