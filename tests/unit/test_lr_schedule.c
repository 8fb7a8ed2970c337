/*
 * test_lr_schedule.c - the plateau scheduler against torch's
 * ReduceLROnPlateau. tests/fixtures/gen_plateau_table.py runs the real torch
 * scheduler over a table of metric sequences and settings (patience,
 * cooldown, min_lr, eps, thresholds in every mode) into build/tmp; every
 * step's learning rate and state must match it exactly.
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
#include "lr_schedule.h"

typedef struct {
    char name[64];
    Plateau settings;
    double lr0;
    int steps;
} PlateauCase;

static char g_table[1024];

static int table_generate(void **state)
{
    (void)state;
    char dir[512];
    testutil_tmpdir(dir, sizeof dir, "lr_schedule");
    testutil_join(g_table, sizeof g_table, dir, "plateau_table.txt");
    int rc = testutil_run_fixture("torch", "gen_plateau_table.py", "--out '%s'", g_table);
    if (rc != 0) {
        fprintf(stderr, "gen_plateau_table.py exited with %d\n", rc);
        return -1;
    }
    return 0;
}

/* Python's repr spells the non-finite values inf, -inf and nan; strtod
 * reads all three. */
static int case_parse(const char *line, PlateauCase *c)
{
    char mode[8], tmode[8], factor[32], threshold[32], min_lr[32], eps[32], lr0[32];
    int patience, cooldown;
    if (sscanf(line, "case %63s %7s %7s %31s %d %31s %d %31s %31s %31s %d", c->name, mode,
               tmode, factor, &patience, threshold, &cooldown, min_lr, eps, lr0,
               &c->steps) != 11)
        return -1;
    Plateau *s = &c->settings;
    plateau_init(s, strcmp(mode, "max") == 0 ? PLATEAU_MAX : PLATEAU_MIN);
    s->threshold_mode = strcmp(tmode, "abs") == 0 ? THRESHOLD_ABS : THRESHOLD_REL;
    s->factor = strtod(factor, NULL);
    s->patience = patience;
    s->threshold = strtod(threshold, NULL);
    s->cooldown = cooldown;
    s->min_lr = strtod(min_lr, NULL);
    s->eps = strtod(eps, NULL);
    c->lr0 = strtod(lr0, NULL);
    return 0;
}

static int same(double a, double b)
{
    return a == b || (isnan(a) && isnan(b));
}

/* Runs one case's steps from the file against our scheduler. */
static void case_run(FILE *f, const PlateauCase *c)
{
    Plateau s = c->settings;
    double lr = c->lr0;
    char line[512], metric[32], want_lr[32], best[32];
    int bad, cool;
    long long last;
    for (int i = 0; i < c->steps; i++) {
        assert_non_null(fgets(line, sizeof line, f));
        assert_int_equal(sscanf(line, "step %31s %31s %31s %d %d %lld", metric, want_lr, best,
                                &bad, &cool, &last),
                         6);
        lr = plateau_step(&s, strtod(metric, NULL), lr);
        if (!same(lr, strtod(want_lr, NULL)) || !same(s.best, strtod(best, NULL)) ||
            s.num_bad_epochs != bad || s.cooldown_counter != cool || s.last_epoch != last)
            fail_msg("%s step %d (metric %s): got lr %.17g best %.17g bad %d cooldown %d "
                     "epoch %lld; torch: lr %s best %s bad %d cooldown %d epoch %lld",
                     c->name, i + 1, metric, lr, s.best, s.num_bad_epochs, s.cooldown_counter,
                     (long long)s.last_epoch, want_lr, best, bad, cool, last);
    }
}

static void test_plateau_matches_torch(void **state)
{
    (void)state;
    FILE *f = fopen(g_table, "r");
    assert_non_null(f);
    char line[512];
    int cases = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        PlateauCase c;
        if (case_parse(line, &c) != 0)
            fail_msg("%s: cannot parse line: %s", g_table, line);
        case_run(f, &c);
        cases++;
    }
    fclose(f);
    assert_true(cases >= 20);
}

/* The "defaults_*" cases were made with torch's defaults: plateau_init must
 * produce exactly those settings. */
static void test_plateau_defaults(void **state)
{
    (void)state;
    FILE *f = fopen(g_table, "r");
    assert_non_null(f);
    char line[512];
    int seen = 0;
    while (fgets(line, sizeof line, f)) {
        PlateauCase c;
        if (strncmp(line, "case defaults_", 14) != 0 || case_parse(line, &c) != 0)
            continue;
        Plateau d;
        plateau_init(&d, c.settings.mode);
        assert_true(d.factor == c.settings.factor);
        assert_int_equal(d.patience, c.settings.patience);
        assert_true(d.threshold == c.settings.threshold);
        assert_int_equal(d.threshold_mode, c.settings.threshold_mode);
        assert_int_equal(d.cooldown, c.settings.cooldown);
        assert_true(d.min_lr == c.settings.min_lr);
        assert_true(d.eps == c.settings.eps);
        assert_true(isinf(d.best) && (d.best > 0) == (d.mode == PLATEAU_MIN));
        assert_int_equal(d.num_bad_epochs, 0);
        assert_int_equal(d.cooldown_counter, 0);
        assert_int_equal(d.last_epoch, 0);
        seen++;
    }
    fclose(f);
    assert_int_equal(seen, 2);
}

/* A restored state continues exactly where the saved one stopped (what a
 * resume from a checkpoint relies on). */
static void test_plateau_state_resumes(void **state)
{
    (void)state;
    static const double metrics[] = {3, 3, 3, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1};
    Plateau whole, first, second;
    plateau_init(&whole, PLATEAU_MIN);
    whole.patience = 1;
    whole.cooldown = 2;
    first = whole;
    double lr_whole = 0.1, lr = 0.1;
    size_t n = sizeof metrics / sizeof *metrics;
    for (size_t i = 0; i < n; i++)
        lr_whole = plateau_step(&whole, metrics[i], lr_whole);
    for (size_t i = 0; i < n / 2; i++)
        lr = plateau_step(&first, metrics[i], lr);
    second = first; /* what a checkpoint stores and reads back */
    for (size_t i = n / 2; i < n; i++)
        lr = plateau_step(&second, metrics[i], lr);
    assert_true(lr == lr_whole);
    assert_memory_equal(&second, &whole, sizeof whole);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plateau_matches_torch),
        cmocka_unit_test(test_plateau_defaults),
        cmocka_unit_test(test_plateau_state_resumes),
    };
    return cmocka_run_group_tests_name("lr_schedule", tests, table_generate, NULL);
}
