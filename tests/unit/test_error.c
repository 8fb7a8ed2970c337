/*
 * test_error.c - the one error format and the exit paths: a local failure
 * prints "[rank R] file:line: call: what" and aborts; a Status keeps the
 * first error; status_agree exits with the status's code; H5_CHECK names
 * the HDF5 function and the object that failed; a failure context (the
 * checkpoint writer's) rewords the message before the abort. Each failing path runs in a
 * child process whose stderr and end are captured.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <hdf5.h>

#include "error.h"
#include "h5lock.h"

typedef struct {
    char err[2048]; /* what the child wrote to stderr */
    int exited, code, signal;
} Outcome;

/* Runs fn in a child with stderr on a pipe and reports how it ended. */
static Outcome run_child(void (*fn)(void))
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        fn();
        _exit(0);
    }
    close(fds[1]);
    Outcome o = {.exited = 0};
    size_t used = 0;
    ssize_t n;
    while ((n = read(fds[0], o.err + used, sizeof o.err - 1 - used)) > 0)
        used += (size_t)n;
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    o.exited = WIFEXITED(status);
    o.code = o.exited ? WEXITSTATUS(status) : -1;
    o.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    return o;
}

static void child_check_fails(void) { CHECK(1 + 1 == 3, "arithmetic is off by %d", 1); }

static void test_check_format(void **state)
{
    (void)state;
    Outcome o = run_child(child_check_fails);
    assert_int_equal(o.signal, SIGABRT);
    assert_non_null(strstr(o.err, "[rank 0] "));
    assert_non_null(strstr(o.err, "test_error.c:"));
    assert_non_null(strstr(o.err, ": 1 + 1 == 3: arithmetic is off by 1\n"));
}

static void child_sys_fails(void) { SYS_CHECK(open("/nonexistent/dir/file", O_RDONLY)); }

static void test_sys_check_names_errno(void **state)
{
    (void)state;
    Outcome o = run_child(child_sys_fails);
    assert_int_equal(o.signal, SIGABRT);
    assert_non_null(strstr(o.err, "open(\"/nonexistent/dir/file\", O_RDONLY): "));
    assert_non_null(strstr(o.err, strerror(ENOENT)));
}

/* A failure context rewords the message with the errno of the failed call
 * and runs before the abort; it is cleared once used, and a context cleared
 * beforehand changes nothing. */
static void reword_naming_errno(const FailContext *context, char *what, size_t len)
{
    (void)context;
    char was[256];
    snprintf(was, sizeof was, "%s", what);
    snprintf(what, len, "writing out.h5 failed: %s [%s]", strerror(errno), was);
}

static void child_context_rewords(void)
{
    static const FailContext context = {.reword = reword_naming_errno};
    fail_context_set(&context);
    SYS_CHECK(open("/nonexistent/dir/file", O_RDONLY));
}

static void child_context_cleared(void)
{
    static const FailContext context = {.reword = reword_naming_errno};
    fail_context_set(&context);
    fail_context_set(NULL);
    SYS_CHECK(open("/nonexistent/dir/file", O_RDONLY));
}

static void test_fail_context(void **state)
{
    (void)state;
    Outcome o = run_child(child_context_rewords);
    assert_int_equal(o.signal, SIGABRT);
    char want[256];
    snprintf(want, sizeof want, "O_RDONLY): writing out.h5 failed: %s [%s]\n", strerror(ENOENT),
             strerror(ENOENT));
    assert_non_null(strstr(o.err, want));
    o = run_child(child_context_cleared);
    assert_int_equal(o.signal, SIGABRT);
    assert_null(strstr(o.err, "writing out.h5"));
}

static void child_h5_fails(void)
{
    h5_quiet();
    H5_CHECK(H5Fopen("/nonexistent/data.h5", H5F_ACC_RDONLY, H5P_DEFAULT));
}

/* The HDF5 line names the API function and what went wrong inside it,
 * including the file name, rather than only "HDF5 call failed". */
static void test_h5_check_names_call_and_object(void **state)
{
    (void)state;
    Outcome o = run_child(child_h5_fails);
    assert_int_equal(o.signal, SIGABRT);
    assert_non_null(strstr(o.err, "H5Fopen(\"/nonexistent/data.h5\""));
    assert_non_null(strstr(o.err, "HDF5: H5Fopen() unable to open file"));
    assert_non_null(strstr(o.err, "/nonexistent/data.h5"));
}

/* The system's reason is taken from what HDF5's file driver recorded. */
static void test_h5_system_reason(void **state)
{
    (void)state;
    h5_quiet();
    char why[160] = "x";
    assert_true(H5Fopen("/nonexistent/data.h5", H5F_ACC_RDONLY, H5P_DEFAULT) < 0);
    h5_system_reason(why, sizeof why);
    assert_string_equal(why, strerror(ENOENT));
    H5Eclear2(H5E_DEFAULT);
    h5_system_reason(why, sizeof why);
    assert_string_equal(why, "");
}

static void child_status_agree(void)
{
    Status st = {0};
    status_set(&st, EXIT_USAGE, "data.h5: /train/labels has 3 values, expected 4");
    status_set(&st, EXIT_INTERNAL, "a later error that must not replace the first");
    status_agree(&st);
    _exit(99); /* status_agree must not return with an error set */
}

/* Without MPI, status_agree prints "error: <first message>" and exits with
 * the first error's code. */
static void test_status_keeps_first_and_exits(void **state)
{
    (void)state;
    Outcome o = run_child(child_status_agree);
    assert_true(o.exited);
    assert_int_equal(o.code, EXIT_USAGE);
    assert_string_equal(o.err, "error: data.h5: /train/labels has 3 values, expected 4\n");
}

static void child_status_ok(void)
{
    Status st = {0};
    status_agree(&st);
    _exit(7);
}

static void test_status_ok_returns(void **state)
{
    (void)state;
    Outcome o = run_child(child_status_ok);
    assert_true(o.exited);
    assert_int_equal(o.code, 7);
    assert_string_equal(o.err, "");
}

/* The exit codes are part of the interface: Slurm scripts and users test them. */
static void test_exit_codes(void **state)
{
    (void)state;
    assert_int_equal(EXIT_OK, 0);
    assert_int_equal(EXIT_INTERNAL, 1);
    assert_int_equal(EXIT_USAGE, 2);
    assert_int_equal(EXIT_REQUEUE, 3);
    assert_int_equal(EXIT_STOPPED, 4);
    assert_int_equal(EXIT_NONFINITE, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_format),
        cmocka_unit_test(test_sys_check_names_errno),
        cmocka_unit_test(test_fail_context),
        cmocka_unit_test(test_h5_check_names_call_and_object),
        cmocka_unit_test(test_h5_system_reason),
        cmocka_unit_test(test_status_keeps_first_and_exits),
        cmocka_unit_test(test_status_ok_returns),
        cmocka_unit_test(test_exit_codes),
    };
    return cmocka_run_group_tests_name("error", tests, NULL, NULL);
}
