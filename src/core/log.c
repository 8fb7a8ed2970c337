/* log.c - rank-aware printing. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static int g_rank;
static int g_world = 1;

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
