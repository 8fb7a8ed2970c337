/*
 * test_prep_flags.c - resnet_prep's table-driven command line: every field
 * starts at its table default, values land in their fields, and --help
 * prints each flag with the default of the same row. The error paths exit
 * the process and are tested through the binary (test_prep_cli.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prep_flags.h"

typedef struct {
    const char *in, *out, *note;
    int size, force, mode;
    long count;
} Opts;

static const char *const g_modes[] = {"fast", "slow", "exact", NULL};

static const PrepFlag g_flags[] = {
    {.name = "in", .kind = FLAG_TEXT, .offset = offsetof(Opts, in), .metavar = "DIR",
     .required = 1, .help = "input"},
    PREP_FLAG_OUT(Opts),
    PREP_FLAG_FORCE(Opts),
    {.name = "note", .kind = FLAG_TEXT, .offset = offsetof(Opts, note), .metavar = "TEXT",
     .help = "a note"},
    {.name = "size", .kind = FLAG_INT, .offset = offsetof(Opts, size), .metavar = "N", .lo = 8,
     .hi = 512, .def = 224, .help = "the size,\nover two lines"},
    {.name = "mode", .kind = FLAG_CHOICE, .offset = offsetof(Opts, mode), .choices = g_modes,
     .def = 1, .help = "how"},
    {.name = "count", .kind = FLAG_LONG, .offset = offsetof(Opts, count), .metavar = "K",
     .lo = 0, .hi = 1L << 40, .def = 1L << 33, .help = "how many"},
};

static const PrepCommandLine g_cli = {.cmd = "demo", .intro = "usage: demo\n\n",
                                      .flags = g_flags, .nflags = PREP_NFLAGS(g_flags)};

static int parse(Opts *o, const char *line)
{
    static char buf[512];
    static char *argv[32];
    snprintf(buf, sizeof buf, "demo %s", line);
    int argc = 0;
    for (char *t = strtok(buf, " "); t && argc < 31; t = strtok(NULL, " "))
        argv[argc++] = t;
    argv[argc] = NULL;
    memset(o, 0x5a, sizeof *o); /* garbage: every field must be set */
    return prep_flags_parse(&g_cli, argc, argv, o);
}

static void test_defaults(void **state)
{
    (void)state;
    Opts o;
    assert_int_equal(parse(&o, "--in a --out b.h5"), 5);
    assert_string_equal(o.in, "a");
    assert_string_equal(o.out, "b.h5");
    assert_null(o.note);
    assert_int_equal(o.size, 224);
    assert_int_equal(o.force, 0);
    assert_int_equal(o.mode, 1);
    assert_true(o.count == 1L << 33);
}

static void test_values(void **state)
{
    (void)state;
    Opts o;
    parse(&o, "--size 8 --mode exact --force --out=x --count 1099511627776 --in d --note hi");
    assert_string_equal(o.in, "d");
    assert_string_equal(o.out, "x");
    assert_string_equal(o.note, "hi");
    assert_int_equal(o.size, 8);
    assert_int_equal(o.force, 1);
    assert_int_equal(o.mode, 2);
    assert_true(o.count == 1L << 40);
}

/* Each flag once, with its metavariable, and the default of its own row. */
static void test_help(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    prep_flags_help(&g_cli, f);
    fclose(f);
    print_message("%s", text);
    static const char *const want[] = {
        "usage: demo\n\n",
        "  --in DIR                input (required)\n",
        "  --out FILE.h5           output file (required)\n",
        "  --force                 replace --out if it exists (without it: refuse)\n",
        "  --note TEXT             a note\n",
        "  --size N                the size,\n                          over two lines (default: 224)\n",
        "  --mode fast|slow|exact  how (default: slow)\n",
        "  --count K               how many (default: 8589934592)\n",
        "  -h, --help              this text\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(text, want[i]))
            fail_msg("help lacks \"%s\"", want[i]);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_help),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
