/*
 * prep_output.c - --out checks, the exclusive temporary file, stale
 * temporary files of crashed runs, clean-up on signals, the final rename.
 */
#include "prep_output.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mpi.h>

#include "log.h"
#include "prep_file.h"

#define HOST_MAX 256

/* The folder and the last component of path (malloc'd both). */
static void path_split(const char *path, char **dir, char **base)
{
    char *a = xstrdup(path), *b = xstrdup(path);
    *dir = xstrdup(dirname(a));
    *base = xstrdup(basename(b));
    free(a);
    free(b);
}

static void check_on_rank0(const char *out_path, int force, Status *st)
{
    struct stat sb, lsb, dsb;
    char *dir, *base;
    path_split(out_path, &dir, &base);
    int exists = lstat(out_path, &lsb) == 0;
    int target = stat(out_path, &sb) == 0; /* what a symlink points to */
    if (target && S_ISDIR(sb.st_mode))
        status_set(st, EXIT_USAGE, "--out %s: is a directory, expected a file name", out_path);
    else if (stat(dir, &dsb) != 0 || !S_ISDIR(dsb.st_mode))
        status_set(st, EXIT_USAGE, "--out %s: directory %s does not exist", out_path, dir);
    else if (access(dir, W_OK) != 0)
        status_set(st, EXIT_USAGE, "--out %s: directory %s is not writable", out_path, dir);
    else if (exists && !force)
        status_set(st, EXIT_USAGE, "--out %s: already exists; pass --force to replace it",
                   out_path);
    else if (target && !S_ISREG(sb.st_mode))
        status_set(st, EXIT_USAGE, "--out %s: exists and is not a regular file (%s); "
                   "not replaced, even with --force", out_path, prep_file_kind(sb.st_mode));
    free(dir);
    free(base);
}

void prep_output_check(const char *out_path, int force)
{
    Status st = {0};
    if (log_rank_id() == 0)
        check_on_rank0(out_path, force, &st);
    status_agree(&st);
}

/* "<base>.tmp-<host>-": the name every temporary file of out_path on this
 * host starts with. */
static char *tmp_prefix(const char *base)
{
    char host[HOST_MAX] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        snprintf(host, sizeof host, "localhost");
    for (char *p = host; *p; p++)
        if (*p == '/')
            *p = '_';
    size_t n = strlen(base) + strlen(host) + 8;
    char *prefix = xmalloc(n);
    snprintf(prefix, n, "%s.tmp-%s-", base, host);
    return prefix;
}

/* The process id a temporary file name ends in, or -1 if name is not
 * prefix followed by digits only. */
static long tmp_pid(const char *name, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0 || !name[n] || strlen(name + n) > 10)
        return -1;
    for (const char *p = name + n; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    return strtol(name + n, NULL, 10);
}

/* A process of that id runs on this host (EPERM: it runs, as someone else).
 * Our own id is not a running writer: we have not created our file yet, so
 * a file with it is from an earlier process that had the same id. */
static int pid_alive(long pid)
{
    if (pid <= 0 || pid == (long)getpid())
        return 0;
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* Rank 0: removes the temporary files of out_path that crashed runs on this
 * host left. Only regular files of this user whose process is gone. */
static void stale_sweep(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d)
        return; /* the directory check already passed; nothing to sweep */
    struct dirent *e;
    while ((e = readdir(d))) {
        long pid = tmp_pid(e->d_name, prefix);
        if (pid < 0 || pid_alive(pid))
            continue;
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *full = xmalloc(n);
        snprintf(full, n, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(full, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_uid == geteuid() &&
            unlink(full) == 0)
            log_warn("removed %s: a temporary file left by an earlier run that did not finish "
                     "(process %ld is gone)", full, pid);
        free(full);
    }
    closedir(d);
}

char *prep_output_tmp_claim(const char *out_path)
{
    char *dir, *base;
    path_split(out_path, &dir, &base);
    char *prefix = tmp_prefix(base);
    /* Rank 0's host and id name the file: ranks on other hosts agree. */
    char name[PATH_MAX];
    int len = 0;
    if (log_rank_id() == 0)
        len = snprintf(name, sizeof name, "%s/%s%ld", dir, prefix, (long)getpid());
    MPI_CHECK(MPI_Bcast(&len, 1, MPI_INT, 0, MPI_COMM_WORLD));
    Status st = {0};
    if (len <= 0 || len >= (int)sizeof name) {
        if (log_rank_id() == 0)
            status_set(&st, EXIT_USAGE, "--out %s: path too long", out_path);
        len = 0;
    }
    MPI_CHECK(MPI_Bcast(name, len + 1, MPI_CHAR, 0, MPI_COMM_WORLD));
    if (log_rank_id() == 0 && !st.code) {
        stale_sweep(dir, prefix);
        struct stat sb;
        if (lstat(name, &sb) == 0)
            status_set(&st, EXIT_USAGE,
                       "--out %s: cannot create the temporary file %s: something is already "
                       "there (%s, owner uid %ld); remove it",
                       out_path, name, S_ISLNK(sb.st_mode) ? "a symlink"
                                       : S_ISREG(sb.st_mode) ? "a file"
                                                              : prep_file_kind(sb.st_mode),
                       (long)sb.st_uid);
    }
    free(prefix);
    free(dir);
    free(base);
    status_agree(&st);
    return xstrdup(name);
}

/* Signal clean-up: the name to remove and the actions to restore. */
static char g_tmp[PATH_MAX];
static volatile sig_atomic_t g_armed;
static const int g_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define NSIGNALS (sizeof g_signals / sizeof g_signals[0])
static struct sigaction g_old[NSIGNALS];

static void on_signal(int sig)
{
    if (g_armed)
        unlink(g_tmp); /* async-signal-safe */
    g_armed = 0;
    for (size_t i = 0; i < NSIGNALS; i++)
        if (g_signals[i] == sig)
            sigaction(sig, &g_old[i], NULL);
    raise(sig); /* now with the action it had before: usually death */
}

void prep_output_tmp_arm(const char *tmp_path)
{
    snprintf(g_tmp, sizeof g_tmp, "%s", tmp_path);
    g_armed = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NSIGNALS; i++)
        SYS_CHECK(sigaction(g_signals[i], &sa, &g_old[i]));
}

void prep_output_tmp_disarm(void)
{
    if (!g_armed)
        return;
    g_armed = 0;
    for (size_t i = 0; i < NSIGNALS; i++)
        SYS_CHECK(sigaction(g_signals[i], &g_old[i], NULL));
}

/* rename, but without force never over a file that appeared since the
 * start (file systems without RENAME_NOREPLACE get a plain rename). */
static int rename_into_place(const char *tmp_path, const char *out_path, int force)
{
    if (!force) {
        int rc = renameat2(AT_FDCWD, tmp_path, AT_FDCWD, out_path, RENAME_NOREPLACE);
        if (rc == 0 || (errno != EINVAL && errno != ENOSYS))
            return rc;
    }
    return rename(tmp_path, out_path);
}

int prep_output_commit(const char *tmp_path, const char *out_path, int force, Status *st)
{
    int fd = open(tmp_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0)
        status_set(st, EXIT_INTERNAL, "--out %s: cannot write %s to disk: %s", out_path,
                   tmp_path, strerror(errno));
    if (fd >= 0)
        close(fd);
    if (!st->code && rename_into_place(tmp_path, out_path, force) != 0) {
        if (errno == EEXIST)
            status_set(st, EXIT_USAGE, "--out %s: appeared while this run was writing; pass "
                       "--force to replace it", out_path);
        else
            status_set(st, EXIT_USAGE, "--out %s: cannot rename %s to it: %s", out_path,
                       tmp_path, strerror(errno));
    }
    if (st->code)
        unlink(tmp_path);
    prep_output_tmp_disarm();
    return st->code ? -1 : 0;
}
