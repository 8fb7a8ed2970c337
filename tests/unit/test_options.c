/*
 * test_options.c - resnet_dist's command line: defaults, every flag's
 * validation, flags that exclude each other, derived settings, and the
 * --help text (each flag listed once, each default in brackets being the
 * value the parser really starts from).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "options.h"

#define MAX_ARGS 16

/* Parses "resnet_dist" followed by the given arguments (NULL-terminated). */
static Status parse_args(Options *o, const char *first, ...)
{
    char *argv[MAX_ARGS] = {"resnet_dist"};
    int argc = 1;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < MAX_ARGS; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    Status st = {0};
    options_defaults(o);
    options_parse(o, argc, argv, &st);
    return st;
}

static void expect_error(Status st, const char *fragment)
{
    if (st.code != EXIT_USAGE || !strstr(st.msg, fragment))
        fail_msg("expected exit 2 with '%s', got code %d: %s", fragment, st.code, st.msg);
}

static void test_defaults(void **state)
{
    (void)state;
    Options o;
    Status st = parse_args(&o, "--synthetic", NULL);
    assert_int_equal(st.code, 0);
    assert_string_equal(o.arch, "resnet50");
    assert_int_equal(o.batch_size, 256);
    assert_int_equal(o.epochs, 90);
    assert_true(o.lr == 0.1 && o.momentum == 0.9 && o.weight_decay == 1e-4);
    assert_int_equal(o.schedule.kind, SCHEDULE_PLATEAU);
    assert_int_equal(o.drop_last, 1);
    assert_int_equal(o.keep, 3);
    assert_string_equal(o.checkpoint_dir, "checkpoints");
    /* Goyal et al.: warmup starts at lr x 256 / batch, never above lr */
    assert_true(o.warmup_start_lr == 0.1);
    /* no weight average, no test-time augmentation */
    assert_true(o.model_ema == 0 && o.model_ema_every == 1 && !o.model_ema_eval);
    assert_false(o.tta_flip);
}

static void test_ema_and_tta_flags(void **state)
{
    (void)state;
    Options o;
    Status st = parse_args(&o, "--synthetic", "--model-ema", "0.9999", "--model-ema-every", "32",
                           "--model-ema-eval", "--tta", "flip", NULL);
    assert_int_equal(st.code, 0);
    assert_true(o.model_ema == 0.9999 && o.model_ema_every == 32 && o.model_ema_eval);
    assert_true(o.tta_flip);
    assert_int_equal(parse_args(&o, "--synthetic", "--tta", "none", NULL).code, 0);
    assert_false(o.tta_flip);
    expect_error(parse_args(&o, "--synthetic", "--model-ema", "1", NULL), "below 1");
    expect_error(parse_args(&o, "--synthetic", "--model-ema", "-0.5", NULL), "--model-ema: '-0.5'");
    expect_error(parse_args(&o, "--synthetic", "--model-ema-every", "0", NULL),
                 "--model-ema-every: '0'");
    expect_error(parse_args(&o, "--synthetic", "--tta", "crop", NULL), "neither none nor flip");
    expect_error(parse_args(&o, "--synthetic", "--model-ema-eval", NULL), "needs --model-ema DECAY");
    expect_error(parse_args(&o, "--synthetic", "--init-from-ema", NULL), "needs --init-from CKPT");
    st = parse_args(&o, "--data", "d.h5", "--eval-only", "--init-from", "c.h5", "--init-from-ema",
                    NULL);
    assert_int_equal(st.code, 0);
    assert_true(o.init_from_ema);
}

/* --random-erase P: off by default, P in [0, 1] with both ends allowed. */
static void test_random_erase_flag(void **state)
{
    (void)state;
    Options o;
    assert_int_equal(parse_args(&o, "--synthetic", NULL).code, 0);
    assert_true(o.random_erase == 0);
    const char *good[] = {"0", "0.25", "1"};
    const double want[] = {0, 0.25, 1};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(parse_args(&o, "--synthetic", "--random-erase", good[i], NULL).code, 0);
        assert_true(o.random_erase == want[i]);
    }
    expect_error(parse_args(&o, "--synthetic", "--random-erase", "1.0001", NULL),
                 "--random-erase: '1.0001' is not a number in [0, 1]");
    expect_error(parse_args(&o, "--synthetic", "--random-erase", "-0.1", NULL),
                 "--random-erase: '-0.1' is not a number in [0, 1]");
    expect_error(parse_args(&o, "--synthetic", "--random-erase", "nan", NULL), "--random-erase");
}

static void test_numbers_checked(void **state)
{
    (void)state;
    Options o;
    expect_error(parse_args(&o, "--synthetic", "--batch-size", "ten", NULL), "not a whole number");
    expect_error(parse_args(&o, "--synthetic", "--batch-size", "0", NULL), "--batch-size: '0'");
    expect_error(parse_args(&o, "--synthetic", "--batch-size", "16x", NULL), "not a whole number");
    expect_error(parse_args(&o, "--synthetic", "--epochs", "99999999999999999999", NULL),
                 "--epochs");
    expect_error(parse_args(&o, "--synthetic", "--lr", "nan", NULL), "--lr: 'nan' is not a number");
    expect_error(parse_args(&o, "--synthetic", "--lr", "inf", NULL), "--lr: 'inf'");
    expect_error(parse_args(&o, "--synthetic", "--lr", "-0.1", NULL), "--lr: '-0.1'");
    expect_error(parse_args(&o, "--synthetic", "--momentum", "1.5", NULL), "--momentum");
    expect_error(parse_args(&o, "--synthetic", "--label-smoothing", "1", NULL),
                 "--label-smoothing");
    expect_error(parse_args(&o, "--synthetic", "--in-channels", "2", NULL), "must be 1 or 3");
    expect_error(parse_args(&o, "--synthetic", "--crop", "4", NULL), "--crop: '4'");
    expect_error(parse_args(&o, "--synthetic", "--seed", "-1", NULL), "--seed: '-1'");
}

static void test_choices_checked(void **state)
{
    (void)state;
    Options o;
    expect_error(parse_args(&o, "--synthetic", "--arch", "resnet7", NULL), "unknown architecture");
    expect_error(parse_args(&o, "--synthetic", "--stem", "tiny", NULL), "neither imagenet nor small");
    expect_error(parse_args(&o, "--synthetic", "--conv-algo", "fast", NULL),
                 "neither direct nor winograd");
    expect_error(parse_args(&o, "--synthetic", "--lr-schedule", "linear", NULL),
                 "not plateau, step or cosine");
    expect_error(parse_args(&o, "--synthetic", "--lr-steps", "60,30", NULL), "rising list");
    expect_error(parse_args(&o, "--synthetic", "--aug", "mixup", NULL), "not rrc, paper, cifar");
    expect_error(parse_args(&o, "--synthetic", "--split", "train", NULL), "neither val nor test");
    expect_error(parse_args(&o, "--synthetic", "--progress", "fancy", NULL), "neither bar nor lines");
    expect_error(parse_args(&o, "--synthetic", "--plateau-threshold-mode", "pct", NULL),
                 "neither rel nor abs");
}

static void test_command_line_shape(void **state)
{
    (void)state;
    Options o;
    expect_error(parse_args(&o, "--synthetic", "--no-such-flag", NULL), "unknown flag '--no-such-flag'");
    expect_error(parse_args(&o, "--synthetic", "--lr", NULL), "flag '--lr' needs a value");
    expect_error(parse_args(&o, "--synthetic", "extra", NULL), "unexpected argument 'extra'");
    /* the first problem is the one reported */
    expect_error(parse_args(&o, "--synthetic", "--epochs", "x", "--lr", "y", NULL), "--epochs");
}

static void test_exclusions(void **state)
{
    (void)state;
    Options o;
    expect_error(parse_args(&o, NULL), "no dataset");
    expect_error(parse_args(&o, "--synthetic", "--data", "d.h5", NULL), "exclude each other");
    expect_error(parse_args(&o, "--data", "d.h5", "--eval-only", NULL), "needs weights");
    expect_error(parse_args(&o, "--synthetic", "--eval-only", "--init-from", "c.h5", NULL),
                 "--eval-only needs --data");
    expect_error(parse_args(&o, "--data", "d.h5", "--eval-only", "--bench", "--init-from", "c.h5",
                            NULL),
                 "--eval-only and --bench exclude each other");
    expect_error(parse_args(&o, "--data", "d.h5", "--init-from", "a.h5", "--resume", "b.h5", NULL),
                 "--init-from and --resume exclude each other");
    expect_error(parse_args(&o, "--synthetic", "--resume", "auto", "--checkpoint-dir", "", NULL),
                 "--resume auto needs --checkpoint-dir");
    expect_error(parse_args(&o, "--synthetic", "--wrn-dropout", "0.3", NULL), "not a wrn-D-K");
    /* --help needs nothing else */
    assert_int_equal(parse_args(&o, "--help", NULL).code, 0);
    assert_int_equal(o.show_help, 1);
}

static void test_derived_settings(void **state)
{
    (void)state;
    Options o;
    assert_int_equal(parse_args(&o, "--synthetic", "--base-lr", "0.1", "--batch-size", "1024", NULL).code, 0);
    assert_true(o.lr == 0.4 && o.schedule.lr == 0.4);
    assert_true(o.warmup_start_lr == 0.1); /* 0.4 x 256 / 1024 */
    assert_int_equal(parse_args(&o, "--synthetic", "--plateau-metric", "val_loss", NULL).code, 0);
    assert_int_equal(o.plateau.mode, PLATEAU_MIN);
    assert_int_equal(parse_args(&o, "--synthetic", "--no-drop-last", "--drop-last", NULL).code, 0);
    assert_int_equal(o.drop_last, 1);
    assert_int_equal(parse_args(&o, "--synthetic", "--drop-last", "--no-drop-last", NULL).code, 0);
    assert_int_equal(o.drop_last, 0);
    assert_int_equal(parse_args(&o, "--synthetic", "--min-lr", "0.001", NULL).code, 0);
    assert_true(o.schedule.min_lr == 0.001);
}

/* Words in brackets that describe a default rather than give a value. */
static int descriptive(const char *dflt)
{
    static const char *const words[] = {"none", "off", "on", "unset", "dropped"};
    if (strpbrk(dflt, " ;"))
        return 1;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (!strcmp(dflt, words[i]))
            return 1;
    return 0;
}

/* Points o's strings that equal base's at base's copies, so that memcmp
 * compares their text rather than where they are stored. */
static void share_equal_strings(Options *o, const Options *base)
{
    const char **mine[] = {&o->data, &o->split, &o->init_from, &o->resume, &o->checkpoint_dir,
                           &o->metrics, &o->command_line};
    const char *const theirs[] = {base->data, base->split, base->init_from, base->resume,
                                  base->checkpoint_dir, base->metrics, base->command_line};
    for (size_t i = 0; i < sizeof mine / sizeof mine[0]; i++)
        if (*mine[i] && theirs[i] && !strcmp(*mine[i], theirs[i]))
            *mine[i] = theirs[i];
}

/* Every flag is listed once in --help with a default in brackets, and that
 * default, given on the command line, changes nothing: help text and
 * parser cannot drift apart. */
static void test_help_defaults_are_real(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    options_usage(mem);
    fclose(mem);
    Options base;
    assert_int_equal(parse_args(&base, "--synthetic", NULL).code, 0);
    int flags = 0, checked = 0;
    char seen[4096] = " ";
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char flag[64], arg[32] = "";
        if (sscanf(line, "  --%63s %31s", flag, arg) < 1 || line[2] != '-')
            continue;
        flags++;
        char key[80];
        snprintf(key, sizeof key, " %s ", flag);
        if (strstr(seen, key))
            fail_msg("--%s is listed twice in --help", flag);
        strncat(seen, key + 1, sizeof seen - strlen(seen) - 1);
        if (!strcmp(flag, "help") || !strcmp(flag, "version"))
            continue;
        char *open = strrchr(line, '['), *close = strrchr(line, ']');
        if (!open || !close || close < open || close[1])
            fail_msg("--%s: its help line ends without a [default]: %s", flag, line);
        int has_value = arg[0] >= 'A' && arg[0] <= 'Z';
        if (!has_value)
            continue;
        char dflt[64];
        snprintf(dflt, sizeof dflt, "%.*s", (int)(close - open - 1), open + 1);
        if (descriptive(dflt))
            continue;
        char opt[80];
        snprintf(opt, sizeof opt, "--%s", flag);
        Options o;
        Status st = parse_args(&o, "--synthetic", opt, dflt, NULL);
        if (st.code)
            fail_msg("--%s: its default [%s] is refused by the parser: %s", flag, dflt, st.msg);
        share_equal_strings(&o, &base);
        o.arch_given = base.arch_given; /* that a flag was given is no default */
        o.stem_given = base.stem_given;
        if (memcmp(&o, &base, sizeof o))
            fail_msg("--%s: its help says [%s], but the real default differs", flag, dflt);
        checked++;
    }
    free(text);
    assert_true(flags >= 60);
    assert_true(checked >= 30);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_ema_and_tta_flags),
        cmocka_unit_test(test_random_erase_flag),
        cmocka_unit_test(test_numbers_checked),
        cmocka_unit_test(test_choices_checked),
        cmocka_unit_test(test_command_line_shape),
        cmocka_unit_test(test_exclusions),
        cmocka_unit_test(test_derived_settings),
        cmocka_unit_test(test_help_defaults_are_real),
    };
    return cmocka_run_group_tests_name("options", tests, NULL, NULL);
}
