/*
 * error.h - the one family of checks for oneDNN, MPI, HDF5 and system calls.
 *
 * Two error paths (docs/design.md invariant 3):
 *   - local failures (a library call fails, allocation, one rank's I/O) print
 *     "[rank R] file:line: call: what" and MPI_Abort the whole job;
 *   - errors in the user's input are collected in a Status on every rank and
 *     settled collectively by status_agree(): rank 0 prints one line and all
 *     ranks exit with the same code.
 */
#ifndef RESNET_ERROR_H
#define RESNET_ERROR_H

#include <stddef.h>
#include <stdint.h>

/* Exit codes shared by every binary (docs/design.md section 5). */
enum {
    EXIT_OK = 0,
    EXIT_INTERNAL = 1,
    EXIT_USAGE = 2,
    EXIT_REQUEUE = 3,
    EXIT_STOPPED = 4,
    EXIT_NONFINITE = 5,
};

/* A user-input error found on this rank: code 0 means none. */
typedef struct {
    int code;
    char msg[1024];
} Status;

_Noreturn void fail_local(const char *file, int line, const char *call,
                          const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* What a writer does when one of its checks fails (the checkpoint writer:
 * remove the partial file, say which file it was writing). While a context
 * is set on a thread, fail_local on that thread first lets it reword the
 * message (errno as the failed call left it), then prints and aborts as
 * always; so a writer uses the same checks as everyone else. */
typedef struct FailContext FailContext;
struct FailContext {
    void (*reword)(const FailContext *context, char *what, size_t len);
};
/* Sets this thread's context; NULL clears it. */
void fail_context_set(const FailContext *context);

void status_set(Status *st, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Collective over MPI_COMM_WORLD: if any rank's status is set, rank 0 prints
 * the message of the lowest failing rank and every rank exits with that
 * rank's code. Returns only when no rank failed. */
void status_agree(const Status *st);

/* Collective: every rank calls it with the same code. Flushes stdout and
 * stderr, finalises MPI (when it is running) and exits; prints nothing, so
 * whatever should be said is said before. */
_Noreturn void exit_all(int code);

const char *dnnl_error_string(int status);
const char *mpi_error_string(int err);

#define DNNL_CHECK(call)                                                      \
    do {                                                                      \
        int st_ = (int)(call);                                                \
        if (st_ != 0)                                                         \
            fail_local(__FILE__, __LINE__, #call, "%s",                       \
                       dnnl_error_string(st_));                               \
    } while (0)

#define MPI_CHECK(call)                                                       \
    do {                                                                      \
        int err_ = (call);                                                    \
        if (err_ != 0)                                                        \
            fail_local(__FILE__, __LINE__, #call, "%s",                       \
                       mpi_error_string(err_));                               \
    } while (0)

/* HDF5 calls return a negative value on failure; hid_t and herr_t both fit
 * in int64_t, so the macro yields the call's value for assignment. */
int64_t h5_checked(int64_t ret, const char *file, int line, const char *call);
#define H5_CHECK(call) h5_checked((int64_t)(call), __FILE__, __LINE__, #call)
/* The operating system's reason that HDF5's file driver recorded on the
 * current HDF5 error stack ("No space left on device"), or "" when it
 * recorded none. Callers hold h5_lock(). */
void h5_system_reason(char *out, size_t len);

/* System calls that return -1 and set errno. */
#define SYS_CHECK(call)                                                       \
    do {                                                                      \
        if ((call) == -1)                                                     \
            fail_local(__FILE__, __LINE__, #call, "%s", sys_error_string());  \
    } while (0)
const char *sys_error_string(void);

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond))                                                          \
            fail_local(__FILE__, __LINE__, #cond, __VA_ARGS__);               \
    } while (0)

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
/* 64-byte aligned, zeroed; release with free(). */
void *xaligned_alloc(size_t size);
char *xstrdup(const char *s);

#endif
