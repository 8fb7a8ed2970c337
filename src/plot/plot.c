/* plot.c - metrics JSON lines -> gnuplot data and script -> PNG. */
#include "plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Finds `"key":` in a flat object and returns where its value starts. */
static const char *json_value(const char *line, const char *key)
{
    char pat[96];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    return p;
}

int json_field_num(const char *line, const char *key, double *out)
{
    const char *v = json_value(line, key);
    if (!v || strncmp(v, "null", 4) == 0)
        return 0;
    char *end;
    double d = strtod(v, &end);
    /* JSON has no inf or nan (strtod would take them), and gnuplot counts
     * numbers near the ends of double as undefined points */
    if (end == v || !isfinite(d) || fabs(d) > 1e300)
        return 0;
    *out = d;
    return 1;
}

int json_field_str(const char *line, const char *key, char *out, size_t len)
{
    const char *v = json_value(line, key);
    if (!v || *v != '"' || len == 0)
        return 0;
    size_t n = 0;
    for (v++; *v && *v != '"' && n + 1 < len; v++) {
        if (*v == '\\' && v[1])
            v++;
        out[n++] = *v;
    }
    out[n] = '\0';
    return 1;
}

typedef struct {
    FILE *train, *val, *lr, *marks;
    int n_train, n_val, n_lr, n_marks;
    int n_loss_positive, n_top1; /* points the log-scale loss and the error panels can show */
    double lr_min, lr_max;
} PlotData;

static void note_lr(PlotData *d, double step, double lr)
{
    fprintf(d->lr, "%g %g\n", step, lr);
    if (d->n_lr++ == 0 || lr < d->lr_min)
        d->lr_min = lr;
    if (d->n_lr == 1 || lr > d->lr_max)
        d->lr_max = lr;
}

static void plot_record(PlotData *d, const char *line)
{
    char kind[32];
    double step, v1, v2, v3;
    if (!json_field_str(line, "kind", kind, sizeof kind) || !json_field_num(line, "step", &step))
        return;
    if (strcmp(kind, "train") == 0 && json_field_num(line, "loss", &v1)) {
        d->n_loss_positive += v1 > 0;
        if (json_field_num(line, "top1", &v2)) {
            fprintf(d->train, "%g %g %g\n", step, v1, 100 * (1 - v2));
            d->n_top1++;
        } else
            fprintf(d->train, "%g %g NaN\n", step, v1);
        if (json_field_num(line, "lr", &v3))
            note_lr(d, step, v3);
        d->n_train++;
    } else if (strcmp(kind, "val") == 0 && json_field_num(line, "top1", &v1) &&
               json_field_num(line, "top5", &v2) && json_field_num(line, "loss", &v3)) {
        fprintf(d->val, "%g %g %g %g\n", step, 100 * (1 - v1), 100 * (1 - v2), v3);
        d->n_loss_positive += v3 > 0;
        d->n_top1++;
        d->n_val++;
    } else if (strcmp(kind, "lr") == 0 && json_field_num(line, "lr", &v1)) {
        fprintf(d->marks, "%g %g\n", step, v1);
        note_lr(d, step, v1);
        d->n_marks++;
    }
}

/* The last line gnuplot printed, for an error message. */
static void last_line(const char *path, char *out, size_t len)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (line[0] != '\n')
            snprintf(out, len, "%s", line);
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
}

/* gnuplot's own chatter (range warnings on short runs) goes to a log that
 * is shown only when it fails. The output path, the title and the folder of
 * the data files reach gnuplot as the script's arguments (ARG1..ARG3 of
 * `gnuplot -c`): gnuplot stores those as string variables without parsing
 * them, so no quote, backquote, `@` or newline in them is ever read as
 * gnuplot commands. */
static int run_gnuplot(const char *script, const char *log, const char *png, const char *title,
                       const char *dir, Status *st)
{
    pid_t pid = fork();
    if (pid < 0) {
        status_set(st, EXIT_INTERNAL, "cannot start gnuplot: fork failed");
        return -1;
    }
    if (pid == 0) {
        if (!freopen(log, "w", stderr))
            _exit(126);
        execlp("gnuplot", "gnuplot", "-c", script, png, title, dir, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char why[512];
        last_line(log, why, sizeof why);
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        status_set(st, EXIT_INTERNAL, "gnuplot failed (exit %d%s): %s", code,
                   code == 127 ? ", is gnuplot installed?" : "", why);
        return -1;
    }
    return 0;
}

/* The script refers to the output, title and data folder only through
 * ARG1, ARG2 and ARG3 (see run_gnuplot); every literal in it is ours. */
static void write_script(FILE *f, const char *dir, const PlotData *d)
{
    fprintf(f, "set terminal pngcairo size 1200,900 font ',10'\n"
               "set termoption noenhanced\n" /* `_` and `^` in a title are just text */
               "set output ARG1\n"
               "train = ARG3.'/train.dat'\nval = ARG3.'/val.dat'\nlr = ARG3.'/lr.dat'\n");
    fprintf(f, "set multiplot layout 3,1 title ARG2\nset grid\nset key top right\n");
    fprintf(f, "set xlabel 'step'\n");
    /* LR changes as dashed vertical lines on the loss and error panels */
    FILE *m = NULL;
    char marks[300];
    snprintf(marks, sizeof marks, "%s/marks.dat", dir);
    if (d->n_marks && (m = fopen(marks, "r"))) {
        double step, lr;
        while (fscanf(m, "%lf %lf", &step, &lr) == 2)
            fprintf(f, "set arrow from %g, graph 0 to %g, graph 1 nohead dashtype 2 lc rgb 'red'\n",
                    step, step);
        fclose(m);
    }
    /* gnuplot fails on a panel without a single point it can draw (a log
     * scale drops losses <= 0); such a panel gets a linear or fixed axis */
    fprintf(f, "set ylabel 'loss'\n%s\nset format y '%%g'\n",
            d->n_loss_positive ? "set logscale y" : "unset logscale y");
    fprintf(f, "plot train using 1:2 with lines title 'train loss'");
    if (d->n_val)
        fprintf(f, ", val using 1:4 with linespoints title 'val loss'");
    fprintf(f, "\n");
    fprintf(f, "set ylabel 'error (%%)'\nunset logscale y\n%s", d->n_top1 ? "" : "set yrange [0:100]\n");
    fprintf(f, "plot train using 1:3 with lines title 'train top-1 error (batches)'");
    if (d->n_val)
        fprintf(f, ", val using 1:2 with linespoints title 'val top-1 error', "
                   "val using 1:3 with linespoints title 'val top-5 error'");
    fprintf(f, "\n");
    fprintf(f, "set ylabel 'learning rate'\nset logscale y\n");
    fprintf(f, "set title 'learning rate (dashed red lines: LR changes)'\n");
    if (!d->n_lr) { /* gnuplot refuses to plot an empty file */
        fprintf(f, "unset logscale y\nset yrange [0:1]\n"
                   "set label 'no learning-rate records' at graph 0.5, graph 0.5 center\n"
                   "plot -1 notitle\n");
    } else if (d->lr_min >= 1e-300 && isfinite(d->lr_max * 2)) {
        /* a range gnuplot need not guess: the rate may be constant */
        fprintf(f, "set yrange [%g:%g]\n", d->lr_min / 2, d->lr_max * 2);
        fprintf(f, "plot lr using 1:2 with steps title 'lr'\n");
    } else { /* rates <= 0 or at the ends of double: nothing a log scale can show */
        fprintf(f, "unset logscale y\n");
        fprintf(f, "plot lr using 1:2 with steps title 'lr'\n");
    }
    fprintf(f, "unset multiplot\n");
}

int plot_metrics(const char *metrics_path, const char *png_path, const char *title, Status *st)
{
    FILE *in = fopen(metrics_path, "r");
    if (!in) {
        status_set(st, EXIT_USAGE, "%s: cannot open metrics file", metrics_path);
        return -1;
    }
    /* A private folder under $TMPDIR; mkdtemp replaces the six trailing Xs. */
    const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char dir[200];
    int len = snprintf(dir, sizeof dir - 7, "%s/resnet_plot.", tmp);
    if (len < 0 || (size_t)len >= sizeof dir - 7)
        len = snprintf(dir, sizeof dir - 7, "/tmp/resnet_plot.");
    memset(dir + len, 'X', 6);
    dir[len + 6] = '\0';
    if (!mkdtemp(dir)) {
        fclose(in);
        status_set(st, EXIT_INTERNAL, "cannot create a temporary folder in %s (set TMPDIR?): %s",
                   tmp, strerror(errno));
        return -1;
    }
    char path[4][256];
    const char *names[4] = {"train.dat", "val.dat", "lr.dat", "marks.dat"};
    FILE *files[4];
    for (int i = 0; i < 4; i++) {
        snprintf(path[i], sizeof path[i], "%s/%s", dir, names[i]);
        files[i] = fopen(path[i], "w");
        CHECK(files[i] != NULL, "cannot write %s", path[i]);
    }
    PlotData d = {files[0], files[1], files[2], files[3], 0, 0, 0, 0, 0, 0, 0, 0};
    char line[8192];
    while (fgets(line, sizeof line, in))
        plot_record(&d, line);
    fclose(in);
    for (int i = 0; i < 4; i++)
        SYS_CHECK(fclose(files[i])); /* a full disk shows here, not as a short plot */
    int rc = 0;
    if (d.n_train == 0) {
        status_set(st, EXIT_USAGE, "%s: no training records (kind \"train\") to plot", metrics_path);
        rc = -1;
    } else {
        char script[256];
        snprintf(script, sizeof script, "%s/plot.gp", dir);
        FILE *f = fopen(script, "w");
        CHECK(f != NULL, "cannot write %s", script);
        write_script(f, dir, &d);
        SYS_CHECK(fclose(f));
        char log[256];
        snprintf(log, sizeof log, "%s/gnuplot.log", dir);
        rc = run_gnuplot(script, log, png_path, title, dir, st);
        unlink(script);
        unlink(log);
    }
    for (int i = 0; i < 4; i++)
        unlink(path[i]);
    rmdir(dir);
    return rc;
}
