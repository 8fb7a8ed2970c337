/*
 * prep_progress.h - progress of a prep run on stderr: count, rate and ETA, as
 * a redrawn bar when stderr is a terminal and as a plain line every few
 * seconds when it is not (log files, mpirun). Only rank 0 prints; callers
 * pass job-wide counts. Local.
 */
#ifndef RESNET_PREP_PROGRESS_H
#define RESNET_PREP_PROGRESS_H

#include <stdint.h>

typedef struct {
    uint64_t total;   /* images the whole job will look at */
    uint64_t done;
    double start;     /* timer_now() at prep_progress_start */
    double last;      /* time of the last print */
    int tty;          /* stderr is a terminal: redraw one line */
    int drawn;        /* a bar is on screen and must be cleared before other output */
    char what[32];    /* e.g. "train" */
} PrepProgress;

void prep_progress_start(PrepProgress *p, uint64_t total);
/* Names the part being processed, e.g. the split. */
void prep_progress_phase(PrepProgress *p, const char *what);
/* Records that `done` images are finished job-wide; prints if it is time. */
void prep_progress_update(PrepProgress *p, uint64_t done);
/* Erases a drawn bar so that a warning can be printed on a clean line. */
void prep_progress_clear(PrepProgress *p);
/* Final line with the total count, elapsed time and average rate. */
void prep_progress_finish(PrepProgress *p);
double prep_progress_elapsed(const PrepProgress *p);

#endif
