/* plot.c - metrics JSON lines -> gnuplot data and script -> PNG. */
#include "plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* One metrics record the plot uses. */
typedef enum { REC_TRAIN, REC_VAL, REC_TEST, REC_LR } RecordKind;
typedef struct {
    RecordKind kind;
    double step, loss, top1, top5, lr; /* NAN when absent */
    double spe;                        /* steps per epoch of the run that wrote it, 0 unknown */
    size_t order;                      /* line number: ties in step keep the file's order */
} Record;

typedef struct {
    Record *rec;
    size_t n, cap;
    double spe; /* of the latest config record */
} Records;

static double field_or_nan(const char *line, const char *key)
{
    double v;
    return json_field_num(line, key, &v) ? v : NAN;
}

static void read_record(Records *rs, const char *line)
{
    char kind[32];
    double step;
    if (!json_field_str(line, "kind", kind, sizeof kind))
        return;
    if (strcmp(kind, "config") == 0) {
        double spe;
        rs->spe = json_field_num(line, "steps_per_epoch", &spe) && spe >= 1 ? spe : 0;
        return;
    }
    if (!json_field_num(line, "step", &step))
        return;
    Record r = {.step = step, .spe = rs->spe, .order = rs->n};
    r.loss = field_or_nan(line, "loss");
    r.top1 = field_or_nan(line, "top1");
    r.top5 = field_or_nan(line, "top5");
    r.lr = field_or_nan(line, "lr");
    if (strcmp(kind, "train") == 0 && !isnan(r.loss))
        r.kind = REC_TRAIN;
    else if ((strcmp(kind, "val") == 0 || strcmp(kind, "test") == 0) && !isnan(r.loss) &&
             !isnan(r.top1) && !isnan(r.top5))
        r.kind = kind[0] == 'v' ? REC_VAL : REC_TEST;
    else if (strcmp(kind, "lr") == 0 && !isnan(r.lr))
        r.kind = REC_LR;
    else
        return;
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? 2 * rs->cap : 256;
        rs->rec = xrealloc(rs->rec, rs->cap * sizeof *rs->rec);
    }
    rs->rec[rs->n++] = r;
}

/* By step, then by position in the file: a resumed run appends records for
 * steps the first attempt had already logged past its last checkpoint, and
 * in file order its curves would run backwards there. */
static int by_step(const void *a, const void *b)
{
    const Record *x = a, *y = b;
    if (x->step != y->step)
        return x->step < y->step ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* What the script needs to know about the data. */
typedef struct {
    double spe; /* steps per epoch of the training records: x in epochs; 0: x in steps */
    int n_train, n_val, n_test, n_lr;
    int n_loss_positive, n_top1; /* points the log-scale loss and the error panels can show */
    int top5;                    /* whether any top-5 error is above 0 */
    double loss_min, loss_max;   /* of the losses > 0 */
    double lr_min, lr_max, x_min, x_max;
    Record test; /* the last test record */
} Summary;

static void widen(double *lo, double *hi, double v, int first)
{
    if (first || v < *lo)
        *lo = v;
    if (first || v > *hi)
        *hi = v;
}

static double err(double fraction) { return 100 * (1 - fraction); }

/* Writes the data files (x first: epochs or steps, then the step) and sums
 * up what they hold. */
static void write_data(FILE *const f[4], const Records *rs, Summary *s)
{
    memset(s, 0, sizeof *s);
    double last_train = 0;
    for (size_t i = 0; i < rs->n; i++)
        if (rs->rec[i].kind == REC_TRAIN) {
            s->spe = rs->rec[i].spe; /* the run's, not that of a later --eval-only */
            last_train = rs->rec[i].step;
        }
    int n_x = 0;
    for (size_t i = 0; i < rs->n; i++) {
        Record r = rs->rec[i];
        /* an --eval-only test of the final weights knows no step: the end of training */
        if (r.kind == REC_TEST && r.step <= 0)
            r.step = last_train;
        double x = s->spe > 0 ? r.step / s->spe : r.step;
        widen(&s->x_min, &s->x_max, x, n_x++ == 0);
        if (r.kind != REC_LR && r.loss > 0)
            widen(&s->loss_min, &s->loss_max, r.loss, s->n_loss_positive++ == 0);
        if (r.kind == REC_TRAIN) {
            fprintf(f[0], "%.17g %g %g ", x, r.step, r.loss);
            fprintf(f[0], isnan(r.top1) ? "NaN\n" : "%g\n", err(r.top1));
            s->n_top1 += !isnan(r.top1);
            s->n_train++;
        } else if (r.kind == REC_VAL || r.kind == REC_TEST) {
            fprintf(f[r.kind == REC_VAL ? 1 : 2], "%.17g %g %g %g %g\n", x, r.step, err(r.top1),
                    err(r.top5), r.loss);
            s->top5 |= r.top5 < 1;
            s->n_top1++;
            if (r.kind == REC_VAL)
                s->n_val++;
            else {
                s->n_test++;
                s->test = r;
            }
        }
        if ((r.kind == REC_TRAIN || r.kind == REC_LR) && !isnan(r.lr)) {
            fprintf(f[3], "%.17g %g %g\n", x, r.step, r.lr);
            widen(&s->lr_min, &s->lr_max, r.lr, s->n_lr++ == 0);
        }
    }
    if (s->spe > 0 && s->x_min > 0 && s->x_min < 1)
        s->x_min = 0; /* epochs count from 0 */
    if (!(s->x_max > s->x_min)) { /* a single point: gnuplot needs a range */
        s->x_min -= 0.5;
        s->x_max += 0.5;
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

/* The three panels share the left and right edges (fixed screen margins)
 * and the x range, so that one epoch lies at the same x in each; from the
 * top: loss, error, and a narrow learning-rate panel. */
static void panel(FILE *f, double top, double bottom, int last)
{
    fprintf(f, "set tmargin at screen %g\nset bmargin at screen %g\n", top, bottom);
    if (!last)
        fprintf(f, "set format x ''\nunset xlabel\n");
}

/* Labelled tics for a log axis over less than two decades, where gnuplot
 * would label one power of ten or none: 1-2-5 steps, or finer below one
 * decade. */
static void log_tics(FILE *f, double lo, double hi)
{
    static const double coarse[] = {1, 2, 5}, fine[] = {1, 1.5, 2, 3, 4, 5, 6, 8};
    double decades = log10(hi / lo);
    if (!(decades < 2))
        return;
    const double *m = decades < 1 ? fine : coarse;
    int n = decades < 1 ? 8 : 3;
    int any = 0;
    for (double p = pow(10, floor(log10(lo))); p <= hi; p *= 10)
        for (int i = 0; i < n; i++)
            if (m[i] * p >= lo && m[i] * p <= hi)
                fprintf(f, "%s%.6g", any++ ? ", " : "set ytics (", m[i] * p);
    if (any)
        fprintf(f, ")\n");
}

/* The script refers to the output, title and data folder only through
 * ARG1, ARG2 and ARG3 (see run_gnuplot); every literal in it is ours. */
static void write_script(FILE *f, const Records *rs, const Summary *s)
{
    fprintf(f, "set terminal pngcairo size 1200,900 font ',10'\n"
               "set termoption noenhanced\n" /* `_` and `^` in a title are just text */
               "set output ARG1\n"
               "train = ARG3.'/train.dat'\nval = ARG3.'/val.dat'\ntest = ARG3.'/test.dat'\n"
               "lr = ARG3.'/lr.dat'\n");
    fprintf(f, "set multiplot title ARG2\nset grid\nset key top right\n");
    fprintf(f, "set lmargin at screen 0.08\nset rmargin at screen 0.97\n");
    fprintf(f, "set xrange [%.17g:%.17g]\n", s->x_min, s->x_max);
    /* LR changes as dashed vertical lines on every panel (once per step: a
     * resumed run may log the same change again) */
    double last = NAN;
    for (size_t i = 0; i < rs->n; i++)
        if (rs->rec[i].kind == REC_LR && rs->rec[i].step != last) {
            last = rs->rec[i].step;
            double x = s->spe > 0 ? last / s->spe : last;
            fprintf(f, "set arrow from %.17g, graph 0 to %.17g, graph 1 nohead dashtype 2 lc rgb 'red'\n",
                    x, x);
        }
    /* Epochs below, steps on the top edge of the first panel. */
    if (s->spe > 0)
        fprintf(f, "set x2tics\nset link x2 via x*%.17g inverse x/%.17g\nset x2label 'step'\n",
                s->spe, s->spe);

    /* Loss: a log scale over the data's own range, no empty decades. gnuplot
     * fails on a panel without a single point it can draw (a log scale drops
     * losses <= 0); such a panel gets a linear axis. */
    panel(f, 0.90, 0.57, 0);
    fprintf(f, "set ylabel 'loss'\nset format y '%%g'\n");
    if (s->n_loss_positive) {
        double lo = s->loss_min / 1.1, hi = s->loss_max * 1.1;
        fprintf(f, "set logscale y\nset yrange [%.17g:%.17g]\n", lo, hi);
        log_tics(f, lo, hi);
    }
    fprintf(f, "plot train using 1:3 with lines title 'train loss'");
    if (s->n_val)
        fprintf(f, ", val using 1:5 with linespoints title 'val loss'");
    if (s->n_test)
        fprintf(f, ", test using 1:5 with points pt 7 ps 1.5 lc rgb 'black' title 'test loss %.4g'",
                s->test.loss);
    fprintf(f, "\n");
    if (s->spe > 0)
        fprintf(f, "unset x2tics\nunset x2label\nunset link x2\n");

    /* Error: top-5 only where it says something (not with 5 classes or fewer,
     * where it is always 0). */
    panel(f, 0.55, 0.22, 0);
    fprintf(f, "set ylabel 'error (%%)'\nunset logscale y\nset ytics autofreq\n%s",
            s->n_top1 ? "set autoscale y\n" : "set yrange [0:100]\n");
    fprintf(f, "plot train using 1:4 with lines title 'train top-1 error (batches)'");
    if (s->n_val)
        fprintf(f, ", val using 1:3 with linespoints title 'val top-1 error'");
    if (s->n_val && s->top5)
        fprintf(f, ", val using 1:4 with linespoints title 'val top-5 error'");
    if (s->n_test) {
        fprintf(f, ", test using 1:3 with points pt 7 ps 1.5 lc rgb 'black' title 'test top-1 error %.2f%%'",
                err(s->test.top1));
        if (s->top5)
            fprintf(f, ", test using 1:4 with points pt 5 ps 1.5 lc rgb 'black' "
                       "title 'test top-5 error %.2f%%'", err(s->test.top5));
    }
    fprintf(f, "\n");

    /* Learning rate: narrow, log scale. */
    panel(f, 0.20, 0.08, 1);
    fprintf(f, "set format x '%%g'\nset xlabel '%s'\n", s->spe > 0 ? "epoch" : "step");
    fprintf(f, "set ylabel 'learning rate'\nset logscale y\nset format y '%%.0e'\nset ytics 10\n");
    if (!s->n_lr) { /* gnuplot refuses to plot an empty file */
        fprintf(f, "unset logscale y\nset yrange [0:1]\n"
                   "set label 'no learning-rate records' at graph 0.5, graph 0.5 center\n"
                   "plot -1 notitle\n");
    } else if (s->lr_min >= 1e-300 && isfinite(s->lr_max * 2)) {
        /* a range gnuplot need not guess: the rate may be constant */
        fprintf(f, "set yrange [%.17g:%.17g]\n", s->lr_min / 2, s->lr_max * 2);
        fprintf(f, "plot lr using 1:3 with steps title 'learning rate (red dashes: LR changes)'\n");
    } else { /* rates <= 0 or at the ends of double: nothing a log scale can show */
        fprintf(f, "unset logscale y\nset format y '%%g'\nset autoscale y\nset ytics autofreq\n");
        fprintf(f, "plot lr using 1:3 with steps title 'learning rate (red dashes: LR changes)'\n");
    }
    fprintf(f, "unset multiplot\n");
}

/* The folder for the script and its data: keep_dir (created if missing,
 * kept), or a private one under $TMPDIR (removed afterwards). */
static int make_dir(const char *keep_dir, char *dir, size_t size, Status *st)
{
    if (keep_dir) {
        if ((mkdir(keep_dir, 0777) != 0 && errno != EEXIST) || access(keep_dir, W_OK | X_OK) != 0) {
            status_set(st, EXIT_USAGE, "%s: cannot write into the --gnuplot-dir folder: %s", keep_dir,
                       strerror(errno));
            return -1;
        }
        if ((size_t)snprintf(dir, size, "%s", keep_dir) >= size) {
            status_set(st, EXIT_USAGE, "%s: --gnuplot-dir path too long", keep_dir);
            return -1;
        }
        return 0;
    }
    /* mkdtemp replaces the six trailing Xs */
    const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    int len = snprintf(dir, size - 7, "%s/resnet_plot.", tmp);
    if (len < 0 || (size_t)len >= size - 7)
        len = snprintf(dir, size - 7, "/tmp/resnet_plot.");
    memset(dir + len, 'X', 6);
    dir[len + 6] = '\0';
    if (!mkdtemp(dir)) {
        status_set(st, EXIT_INTERNAL, "cannot create a temporary folder in %s (set TMPDIR?): %s",
                   tmp, strerror(errno));
        return -1;
    }
    return 0;
}

enum { N_DATA = 4 };
static const char *const data_names[N_DATA] = {"train.dat", "val.dat", "test.dat", "lr.dat"};

int plot_metrics(const char *metrics_path, const char *png_path, const char *title,
                 const char *keep_dir, Status *st)
{
    FILE *in = fopen(metrics_path, "r");
    if (!in) {
        status_set(st, EXIT_USAGE, "%s: cannot open metrics file", metrics_path);
        return -1;
    }
    Records rs = {0};
    char line[8192];
    while (fgets(line, sizeof line, in))
        read_record(&rs, line);
    fclose(in);
    if (rs.n)
        qsort(rs.rec, rs.n, sizeof *rs.rec, by_step);
    Summary s;
    int n_train = 0;
    for (size_t i = 0; i < rs.n; i++)
        n_train += rs.rec[i].kind == REC_TRAIN;
    if (n_train == 0) {
        free(rs.rec);
        status_set(st, EXIT_USAGE, "%s: no training records (kind \"train\") to plot", metrics_path);
        return -1;
    }
    char dir[1024];
    if (make_dir(keep_dir, dir, sizeof dir, st) != 0) {
        free(rs.rec);
        return -1;
    }
    char path[N_DATA + 2][1100];
    FILE *files[N_DATA];
    for (int i = 0; i < N_DATA; i++) {
        snprintf(path[i], sizeof path[i], "%s/%s", dir, data_names[i]);
        files[i] = fopen(path[i], "w");
        CHECK(files[i] != NULL, "cannot write %s", path[i]);
    }
    write_data(files, &rs, &s);
    for (int i = 0; i < N_DATA; i++)
        SYS_CHECK(fclose(files[i])); /* a full disk shows here, not as a short plot */
    char *script = path[N_DATA], *log = path[N_DATA + 1];
    snprintf(script, sizeof path[0], "%s/plot.gp", dir);
    snprintf(log, sizeof path[0], "%s/gnuplot.log", dir);
    FILE *f = fopen(script, "w");
    CHECK(f != NULL, "cannot write %s", script);
    write_script(f, &rs, &s);
    SYS_CHECK(fclose(f));
    free(rs.rec);
    int rc = run_gnuplot(script, log, png_path, title, dir, st);
    if (!keep_dir) {
        for (int i = 0; i < N_DATA + 2; i++)
            unlink(path[i]);
        rmdir(dir);
    }
    return rc;
}
