/*
 * prep_progress.c - the progress bar / periodic progress line of resnet_prep.
 */
#include "prep_progress.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "timer.h"

/* Seconds between lines when stderr is not a terminal, and between redraws
 * of the bar when it is. */
#define PROGRESS_LINE_EVERY 5.0
#define PROGRESS_BAR_EVERY 0.2
#define PROGRESS_BAR_WIDTH 30

void prep_progress_start(PrepProgress *p, uint64_t total)
{
    memset(p, 0, sizeof *p);
    p->total = total;
    p->start = p->last = timer_now();
    p->tty = isatty(STDERR_FILENO);
}

void prep_progress_phase(PrepProgress *p, const char *what)
{
    snprintf(p->what, sizeof p->what, "%s", what);
}

double prep_progress_elapsed(const PrepProgress *p)
{
    return timer_now() - p->start;
}

static void format_duration(double s, char *buf, size_t len)
{
    long t = s < 0 ? 0 : (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
}

static void progress_print(PrepProgress *p, double now)
{
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)p->done / elapsed : 0.0;
    double frac = p->total ? (double)p->done / (double)p->total : 1.0;
    char eta[32];
    format_duration(rate > 0 ? (double)(p->total - p->done) / rate : 0.0, eta, sizeof eta);
    if (p->tty) {
        char bar[PROGRESS_BAR_WIDTH + 1];
        int fill = (int)(frac * PROGRESS_BAR_WIDTH);
        for (int i = 0; i < PROGRESS_BAR_WIDTH; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[PROGRESS_BAR_WIDTH] = '\0';
        fprintf(stderr, "\r\033[K%-5s [%s] %5.1f%% %llu/%llu  %.0f img/s  ETA %s", p->what,
                bar, 100.0 * frac, (unsigned long long)p->done, (unsigned long long)p->total,
                rate, eta);
        p->drawn = 1;
    } else {
        fprintf(stderr, "progress: %s %llu/%llu images (%.1f%%), %.0f img/s, ETA %s\n", p->what,
                (unsigned long long)p->done, (unsigned long long)p->total, 100.0 * frac, rate,
                eta);
    }
    fflush(stderr);
    p->last = now;
}

void prep_progress_update(PrepProgress *p, uint64_t done)
{
    p->done = done;
    if (log_rank_id() != 0)
        return;
    double now = timer_now();
    if (now - p->last >= (p->tty ? PROGRESS_BAR_EVERY : PROGRESS_LINE_EVERY))
        progress_print(p, now);
}

void prep_progress_clear(PrepProgress *p)
{
    if (log_rank_id() != 0 || !p->drawn)
        return;
    fputs("\r\033[K", stderr);
    p->drawn = 0;
}

void prep_progress_finish(PrepProgress *p)
{
    if (log_rank_id() != 0)
        return;
    prep_progress_clear(p);
    double elapsed = timer_now() - p->start;
    char took[32];
    format_duration(elapsed, took, sizeof took);
    fprintf(stderr, "progress: done, %llu images in %s (%.0f img/s)\n",
            (unsigned long long)p->done, took, elapsed > 0 ? (double)p->done / elapsed : 0.0);
    fflush(stderr);
}
