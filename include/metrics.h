/*
 * metrics.h - the metrics log (--metrics FILE): one JSON object per line,
 * appended and flushed per record so a crashed or requeued run keeps what
 * it wrote and `tail -f` works. docs/design.md section 5 names the kinds
 * (config, train, val, test, lr, checkpoint) and fields (step, epoch,
 * loss, top1, top5, lr, img_per_s, data_wait, comm_exposed, reason, path).
 *
 *     metrics_begin(m, "train");                  writes "kind" first
 *     metrics_int(m, "step", 12);
 *     metrics_num(m, "time", timer_unix_now());   unix seconds; every record has it
 *     metrics_num(m, "loss", 2.3);                 non-finite numbers become null
 *     metrics_end(m);                              one line, flushed
 *
 * Local: only rank 0 opens a file; on other ranks, and with a NULL path,
 * every call does nothing. A failing write is a local I/O failure and
 * aborts the job.
 */
#ifndef RESNET_METRICS_H
#define RESNET_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"

typedef struct {
    FILE *f;
    char path[4096];
    char *line; /* the record being built */
    size_t len, cap;
    int open;   /* inside begin ... end */
} Metrics;

/* Opens path for appending (NULL or "": disabled). Returns 0, or st->code
 * when the file cannot be opened (the user's path). */
int metrics_open(Metrics *m, const char *path, Status *st);
void metrics_close(Metrics *m);
int metrics_enabled(const Metrics *m);

void metrics_begin(Metrics *m, const char *kind);
void metrics_int(Metrics *m, const char *key, int64_t v);
void metrics_num(Metrics *m, const char *key, double v);
void metrics_str(Metrics *m, const char *key, const char *s); /* JSON-escaped */
void metrics_end(Metrics *m);

/* s as a JSON string, escaped as in the metrics records, to out. */
void json_print_string(FILE *out, const char *s);

#endif
