/*
 * test_train_window.c - the numbers of the training line from made-up
 * times: img/s from the steps' own seconds (a validation between steps is
 * not in them), waiting shares from the run's counters, the validations
 * still to come and the ETA that includes them, and the duration format.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "train_window.h"

static void test_window_stats(void **state)
{
    (void)state;
    TrainWindow w;
    window_begin(&w, (StepTimes){.wait_s = 1, .exposed_s = 2, .step_s = 10});
    /* four steps of 0.5 s; a 100 s validation after the second is not a step */
    window_add_step(&w, 2.0, 0.25, 0.5, 0.5);
    window_add_step(&w, 1.0, 0.75, 1.0, 0.5);
    window_add_step(&w, 2.0, 0.25, 0.5, 0.5);
    window_add_step(&w, 1.0, 0.75, 1.0, 0.5);
    TrainStats s = window_stats(&w, (StepTimes){.wait_s = 2, .exposed_s = 3, .step_s = 20}, 32);
    assert_int_equal(s.steps, 4);
    assert_true(fabs(s.loss - 1.5) < 1e-12);
    assert_true(fabs(s.top1 - 0.5) < 1e-12);
    assert_true(fabs(s.top5 - 0.75) < 1e-12);
    assert_true(fabs(s.img_per_s - 4 * 32 / 2.0) < 1e-9); /* 2 s of steps, not 102 */
    assert_true(fabs(s.compute_ms - 1e3 * 9 / 4) < 1e-9); /* 10 s in steps, 1 of it exposed */
    assert_true(fabs(s.data_wait - 1.0 / 11) < 1e-12);
    assert_true(fabs(s.comm - 1.0 / 11) < 1e-12);
    assert_true(s.eta_s < 0);
}

static void test_window_restarts(void **state)
{
    (void)state;
    TrainWindow w;
    window_begin(&w, (StepTimes){0});
    window_add_step(&w, 9, 1, 1, 30);
    window_begin(&w, (StepTimes){.wait_s = 5, .exposed_s = 5, .step_s = 30});
    window_add_step(&w, 1, 0, 0, 1);
    TrainStats s = window_stats(&w, (StepTimes){.wait_s = 5, .exposed_s = 5, .step_s = 31}, 8);
    assert_int_equal(s.steps, 1);
    assert_true(fabs(s.loss - 1) < 1e-12);
    assert_true(fabs(s.img_per_s - 8) < 1e-9);
    assert_true(s.data_wait == 0 && s.comm == 0);
    window_begin(&w, (StepTimes){0});
    TrainStats empty = window_stats(&w, (StepTimes){0}, 8);
    assert_int_equal(empty.steps, 0);
    assert_true(empty.img_per_s == 0);
}

static void test_validations_left(void **state)
{
    (void)state;
    /* 4 steps per epoch, 8 in total: validations after steps 4 and 8 */
    assert_int_equal(validations_left(1, 8, 4, 1), 2);
    assert_int_equal(validations_left(4, 8, 4, 1), 2);
    assert_int_equal(validations_left(5, 8, 4, 1), 1);
    assert_int_equal(validations_left(8, 8, 4, 1), 1);
    assert_int_equal(validations_left(9, 8, 4, 1), 0);
    /* every 2nd epoch, 10 steps (--max-steps): after step 8 and the last */
    assert_int_equal(validations_left(1, 10, 4, 2), 2);
    assert_int_equal(validations_left(9, 10, 4, 2), 1);
    /* the last step ending a validated epoch counts once */
    assert_int_equal(validations_left(1, 8, 4, 2), 1);
    /* no validation split */
    assert_int_equal(validations_left(1, 8, 4, 0), 0);
    /* the ResNet paper's run: 120 epochs of 5,004 steps */
    assert_int_equal(validations_left(1, 600480, 5004, 1), 120);
    assert_int_equal(validations_left(5005, 600480, 5004, 1), 119);
}

static void test_eta(void **state)
{
    (void)state;
    int has = -1;
    /* 100 steps of 0.5 s and 3 validations; 2 so far took 20 s */
    assert_true(fabs(eta_seconds(100, 0.5, 3, 2, 20.0, &has) - 80.0) < 1e-9);
    assert_int_equal(has, 1);
    /* before the first validation its time is unknown and said to be left out */
    assert_true(fabs(eta_seconds(100, 0.5, 3, 0, 0.0, &has) - 50.0) < 1e-9);
    assert_int_equal(has, 0);
    /* none left: nothing is missing */
    assert_true(fabs(eta_seconds(100, 0.5, 0, 0, 0.0, &has) - 50.0) < 1e-9);
    assert_int_equal(has, 1);
}

static void test_format_duration(void **state)
{
    (void)state;
    char s[32];
    format_duration(0, s, sizeof s);
    assert_string_equal(s, "0:00:00");
    format_duration(59.6, s, sizeof s);
    assert_string_equal(s, "0:01:00");
    format_duration(3661, s, sizeof s);
    assert_string_equal(s, "1:01:01");
    format_duration(100 * 3600.0 + 5, s, sizeof s);
    assert_string_equal(s, "100:00:05");
    format_duration(-1, s, sizeof s);
    assert_string_equal(s, "?");
    format_duration(NAN, s, sizeof s);
    assert_string_equal(s, "?");
    format_duration(INFINITY, s, sizeof s);
    assert_string_equal(s, "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_stats),
        cmocka_unit_test(test_window_restarts),
        cmocka_unit_test(test_validations_left),
        cmocka_unit_test(test_eta),
        cmocka_unit_test(test_format_duration),
    };
    return cmocka_run_group_tests_name("train_window", tests, NULL, NULL);
}
