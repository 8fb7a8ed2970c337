/*
 * test_metrics.c - the JSON-lines metrics log: records written, appended
 * after a reopen, and read back by Python's strict json parser (no NaN or
 * Infinity) with every value and escape intact; disabled logs do nothing.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/testutil.h"
#include "log.h"
#include "metrics.h"
#include "timer.h"

static char g_dir[512];

static int group_setup(void **state)
{
    (void)state;
    testutil_tmpdir(g_dir, sizeof g_dir, "metrics");
    return 0;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void write_records(const char *path)
{
    Metrics m;
    Status st = {0};
    assert_int_equal(metrics_open(&m, path, &st), 0);
    assert_true(metrics_enabled(&m));
    metrics_begin(&m, "config");
    metrics_num(&m, "time", timer_unix_now());
    metrics_str(&m, "command_line",
                "resnet_dist --data \"a b\\c.h5\"\n\ttab\x01 caf\xc3\xa9 \xff!");
    metrics_int(&m, "world_size", 4);
    metrics_end(&m);
    metrics_begin(&m, "train");
    metrics_int(&m, "step", 12);
    metrics_int(&m, "epoch", 0);
    metrics_num(&m, "time", timer_unix_now());
    metrics_num(&m, "loss", 2.3);
    metrics_num(&m, "lr", 0.1);
    metrics_num(&m, "img_per_s", 1234.5);
    metrics_num(&m, "data_wait", 1.0 / 3.0);
    metrics_num(&m, "comm_exposed", 0.0);
    metrics_end(&m);
    metrics_begin(&m, "val");
    metrics_int(&m, "step", 100);
    metrics_num(&m, "time", timer_unix_now());
    metrics_num(&m, "loss", NAN);
    metrics_num(&m, "top1", INFINITY);
    metrics_num(&m, "top5", -INFINITY);
    metrics_end(&m);
    metrics_close(&m);
}

static void test_records_parse_as_json(void **state)
{
    (void)state;
    char path[1024], canon[1024];
    testutil_join(path, sizeof path, g_dir, "metrics.jsonl");
    testutil_join(canon, sizeof canon, g_dir, "canonical.txt");
    write_records(path);

    /* reopening appends: a resumed run continues the same file */
    Metrics m;
    Status st = {0};
    assert_int_equal(metrics_open(&m, path, &st), 0);
    metrics_begin(&m, "lr");
    metrics_int(&m, "step", 200);
    metrics_num(&m, "time", timer_unix_now());
    metrics_num(&m, "lr", 0.010000000000000002);
    metrics_str(&m, "reason", "plateau");
    metrics_end(&m);
    metrics_begin(&m, "checkpoint");
    metrics_int(&m, "step", 200);
    metrics_num(&m, "time", timer_unix_now());
    metrics_str(&m, "path", "runs/x/step-00000200.h5");
    metrics_int(&m, "big", INT64_MIN);
    metrics_end(&m);
    metrics_close(&m);

    /* each record with sorted keys and ASCII escapes, checked as strict JSON */
    assert_int_equal(testutil_run_fixture("json", "canonical_metrics.py", "'%s' '%s'", path, canon),
                     0);
    const char *want =
        "{\"command_line\": \"resnet_dist --data \\\"a b\\\\c.h5\\\"\\n\\ttab\\u0001 "
        "caf\\u00e9 \\ufffd!\", \"kind\": \"config\", \"world_size\": 4}\n"
        "{\"comm_exposed\": 0.0, \"data_wait\": 0.3333333333333333, \"epoch\": 0, "
        "\"img_per_s\": 1234.5, \"kind\": \"train\", \"loss\": 2.3, \"lr\": 0.1, \"step\": 12}\n"
        "{\"kind\": \"val\", \"loss\": null, \"step\": 100, \"top1\": null, \"top5\": null}\n"
        "{\"kind\": \"lr\", \"lr\": 0.010000000000000002, \"reason\": \"plateau\", "
        "\"step\": 200}\n"
        "{\"big\": -9223372036854775808, \"kind\": \"checkpoint\", "
        "\"path\": \"runs/x/step-00000200.h5\", \"step\": 200}\n";
    assert_string_equal(read_file(canon), want);
}

/* The text itself: compact, one object per line, shortest numbers. */
static void test_record_text(void **state)
{
    (void)state;
    char path[1024];
    testutil_join(path, sizeof path, g_dir, "text.jsonl");
    Metrics m;
    Status st = {0};
    assert_int_equal(metrics_open(&m, path, &st), 0);
    metrics_begin(&m, "train");
    metrics_int(&m, "step", 12);
    metrics_num(&m, "time", 1764180000.125);
    metrics_num(&m, "loss", 2.3);
    metrics_num(&m, "lr", NAN);
    metrics_num(&m, "top1", 1.0);
    metrics_end(&m);
    metrics_close(&m);
    const char *text = read_file(path);
    assert_string_equal(text, "{\"kind\":\"train\",\"step\":12,\"time\":1764180000.125,"
                              "\"loss\":2.3,\"lr\":null,\"top1\":1.0}\n");
    assert_ptr_equal(strchr(text, '\n'), text + strlen(text) - 1); /* one line */
}

static void test_disabled(void **state)
{
    (void)state;
    Metrics m;
    Status st = {0};
    assert_int_equal(metrics_open(&m, NULL, &st), 0);
    assert_false(metrics_enabled(&m));
    metrics_begin(&m, "train"); /* all no-ops */
    metrics_int(&m, "step", 1);
    metrics_num(&m, "loss", 1);
    metrics_str(&m, "reason", "x");
    metrics_end(&m);
    metrics_close(&m);
    assert_int_equal(metrics_open(&m, "", &st), 0);
    assert_false(metrics_enabled(&m));

    /* only rank 0 writes the file */
    char path[1024];
    testutil_join(path, sizeof path, g_dir, "rank1.jsonl");
    log_set_rank(1, 2);
    assert_int_equal(metrics_open(&m, path, &st), 0);
    log_set_rank(0, 1);
    assert_false(metrics_enabled(&m));
    metrics_begin(&m, "train");
    metrics_end(&m);
    metrics_close(&m);
    FILE *f = fopen(path, "r");
    assert_null(f);
}

static void test_open_failure(void **state)
{
    (void)state;
    char path[1024];
    testutil_join(path, sizeof path, g_dir, "no/such/dir/m.jsonl");
    Metrics m;
    Status st = {0};
    assert_int_equal(metrics_open(&m, path, &st), EXIT_USAGE);
    print_message("    -> %s\n", st.msg);
    assert_non_null(strstr(st.msg, path));
    assert_non_null(strstr(st.msg, "No such file"));
    assert_false(metrics_enabled(&m));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_parse_as_json),
        cmocka_unit_test(test_record_text),
        cmocka_unit_test(test_disabled),
        cmocka_unit_test(test_open_failure),
    };
    return cmocka_run_group_tests_name("metrics", tests, group_setup, NULL);
}
