/* log.c - rank-aware printing. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int g_rank;
static int g_world = 1;
static int g_live_open; /* a live status line is on the terminal */

/* Clears the live status line before ordinary output. */
static void live_clear(void)
{
    if (!g_live_open)
        return;
    fputs("\r\033[K", stdout);
    fflush(stdout);
    g_live_open = 0;
}

static int g_live_mode = -1;

void log_set_live(int mode)
{
    g_live_mode = mode;
}

int log_is_tty(void)
{
    if (g_rank != 0 || g_live_mode == 0)
        return 0;
    if (g_live_mode == 1)
        return 1;
    int relayed = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("SLURM_JOB_ID");
    return !relayed && isatty(STDOUT_FILENO);
}

void log_live(const char *fmt, ...)
{
    if (!log_is_tty())
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("\r\033[K", stdout);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
    g_live_open = 1;
}

void log_set_rank(int rank, int world_size)
{
    g_rank = rank;
    g_world = world_size;
}

int log_rank_id(void) { return g_rank; }
int log_world_size(void) { return g_world; }

void log_info(const char *fmt, ...)
{
    if (g_rank != 0)
        return;
    live_clear();
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

void log_warn(const char *fmt, ...)
{
    if (g_rank != 0)
        return;
    live_clear();
    va_list ap;
    va_start(ap, fmt);
    fputs("warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

void log_rank(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[rank %d] ", g_rank);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}
