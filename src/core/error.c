/* error.c - local aborts and collective agreement on user-input errors. */
#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>
#include <mpi.h>
#include <oneapi/dnnl/dnnl_debug.h>

#include "log.h"

static int mpi_running(void)
{
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    return init && !fin;
}

static _Thread_local const FailContext *g_fail_context;

void fail_context_set(const FailContext *context)
{
    g_fail_context = context;
}

void fail_local(const char *file, int line, const char *call, const char *fmt, ...)
{
    int err = errno;
    char what[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const FailContext *context = g_fail_context;
    if (context) {
        g_fail_context = NULL; /* a failure inside reword fails plainly */
        errno = err;
        context->reword(context, what, sizeof what);
    }
    fprintf(stderr, "[rank %d] %s:%d: %s: %s\n", log_rank_id(), file, line, call, what);
    fflush(stderr);
    if (mpi_running())
        MPI_Abort(MPI_COMM_WORLD, EXIT_INTERNAL);
    abort();
}

void status_set(Status *st, int code, const char *fmt, ...)
{
    if (st->code)
        return; /* keep the first error: it is the cause */
    st->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->msg, sizeof st->msg, fmt, ap);
    va_end(ap);
}

_Noreturn void exit_all(int code)
{
    fflush(stdout);
    fflush(stderr);
    if (mpi_running())
        MPI_Finalize();
    exit(code);
}

void status_agree(const Status *st)
{
    if (!mpi_running()) {
        if (st->code) {
            fprintf(stderr, "error: %s\n", st->msg);
            exit(st->code);
        }
        return;
    }
    int rank, size;
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
    int mine = st->code ? rank : size, first;
    MPI_CHECK(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    if (first == size)
        return;
    Status shared = *st;
    MPI_CHECK(MPI_Bcast(&shared, sizeof shared, MPI_BYTE, first, MPI_COMM_WORLD));
    if (rank == 0) {
        fprintf(stderr, "error: %s\n", shared.msg);
        fflush(stderr);
    }
    exit_all(shared.code);
}

const char *dnnl_error_string(int status)
{
    return dnnl_status2str((dnnl_status_t)status);
}

const char *mpi_error_string(int err)
{
    static char buf[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(err, buf, &len) != MPI_SUCCESS)
        snprintf(buf, sizeof buf, "MPI error %d", err);
    return buf;
}

const char *sys_error_string(void)
{
    return strerror(errno);
}

/* Collects from the HDF5 error stack its outermost (API-level) and innermost
 * descriptions, which together say what failed and on which object (what
 * HDF5's own printing, switched off so that users see one line, would
 * have said), and the system's reason that HDF5's POSIX driver embeds as
 * "error message = '...'" (e.g. "No space left on device"). */
typedef struct {
    char outer[256], inner[256], system[160];
} H5Reason;

static herr_t h5_reason_walk(unsigned n, const H5E_error2_t *e, void *data)
{
    H5Reason *r = data;
    const char *desc = e->desc ? e->desc : "";
    if (n == 0)
        snprintf(r->outer, sizeof r->outer, "%s() %s", e->func_name, desc);
    snprintf(r->inner, sizeof r->inner, "%s", desc);
    const char *key = "error message = '";
    const char *at = strstr(desc, key);
    if (at && !r->system[0]) {
        at += strlen(key);
        snprintf(r->system, sizeof r->system, "%.*s", (int)strcspn(at, "'"), at);
    }
    return 0;
}

static H5Reason h5_reason(void)
{
    H5Reason r = {"", "", ""};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, h5_reason_walk, &r);
    return r;
}

void h5_system_reason(char *out, size_t len)
{
    snprintf(out, len, "%s", h5_reason().system);
}

int64_t h5_checked(int64_t ret, const char *file, int line, const char *call)
{
    if (ret >= 0)
        return ret;
    H5Reason r = h5_reason();
    if (!r.outer[0])
        fail_local(file, line, call, "HDF5 call failed (no HDF5 error recorded)");
    if (!strcmp(strchr(r.outer, ' ') + 1, r.inner))
        fail_local(file, line, call, "HDF5: %s", r.outer);
    fail_local(file, line, call, "HDF5: %s: %s", r.outer, r.inner);
}

void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        fail_local(__FILE__, __LINE__, "malloc", "out of memory allocating %zu bytes", size);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        fail_local(__FILE__, __LINE__, "calloc", "out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (!q)
        fail_local(__FILE__, __LINE__, "realloc", "out of memory allocating %zu bytes", size);
    return q;
}

void *xaligned_alloc(size_t size)
{
    size_t rounded = (size + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p)
        fail_local(__FILE__, __LINE__, "aligned_alloc", "out of memory allocating %zu bytes", size);
    memset(p, 0, rounded ? rounded : 64);
    return p;
}

char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}
