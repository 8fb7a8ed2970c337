/*
 * plot.h - training curves from a metrics file (JSON lines, docs/design.md §5)
 * to a PNG through gnuplot: train, validation and test loss and error over
 * epochs (steps on a second axis), and the learning rate, with every LR
 * change marked. Local.
 */
#ifndef RESNET_PLOT_H
#define RESNET_PLOT_H

#include "error.h"

/* Reads metrics_path, writes png_path; returns 0, or sets st (code 2 for a
 * bad or empty metrics file, 1 when gnuplot fails). keep_dir: NULL, or a
 * folder where the gnuplot script (plot.gp) and its data files are written
 * and kept. */
int plot_metrics(const char *metrics_path, const char *png_path, const char *title,
                 const char *keep_dir, Status *st);

/* A number field of one flat JSON object; 0 when absent or null. */
int json_field_num(const char *line, const char *key, double *out);
/* A string field; 0 when absent. */
int json_field_str(const char *line, const char *key, char *out, size_t len);

#endif
