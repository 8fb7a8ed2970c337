/* resnet_predict - classify image files with a checkpoint; see --help. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dist.h"
#include "error.h"
#include "h5lock.h"
#include "log.h"
#include "metrics.h"
#include "predict.h"
#include "prep_folder.h"
#include "version.h"

#define USAGE_LINE "usage: resnet_predict --checkpoint CKPT [--top K] [--json] [--batch N] FILE|DIR..."

static void usage(FILE *out)
{
    fprintf(out,
            USAGE_LINE "\n\n"
            "Classifies JPEG and PNG files with a checkpoint written by resnet_dist. Folders\n"
            "are searched recursively for .jpg/.jpeg/.png files, in sorted order; files\n"
            "named directly may have any name (the format is read from the content).\n"
            "Each image is prepared as evaluation prepares the images of a dataset: decoded\n"
            "to grey or RGB as the model expects, its shorter side resized to the\n"
            "checkpoint's resize_size, centre-cropped to resize_size x resize_size, then to\n"
            "input_size x input_size, and normalised with the checkpoint's mean and std\n"
            "(docs/checkpoint-format.md).\n\n"
            "  --checkpoint CKPT  a resnet_dist checkpoint, e.g. runs/x/best.h5 (required)\n"
            "  --top K            the K most probable classes per image [5, at most the\n"
            "                     number of classes]\n"
            "  --json             one JSON object per line and image instead of text:\n"
            "                     {\"file\": ..., \"top\": [{\"index\": i, \"class\": name or\n"
            "                     null, \"prob\": p}, ...]}\n"
            "  --batch N          images per forward pass [16]\n"
            "  --help, --version\n\n"
            "Text output: the file's name, then one line per class: probability, class\n"
            "name (the index when the checkpoint stores no class names) and index.\n"
            "A file that cannot be read or decoded is skipped with a warning on stderr.\n"
            "Exit codes: 0 at least one image classified, 1 internal error, 2 bad usage, a\n"
            "bad checkpoint, or no image could be read.\n");
}

typedef struct {
    const char *checkpoint;
    int top, json, batch;
} PredictOptions;

/* After an "error: ..." line on stderr: the usage line, exit 2. */
static _Noreturn void usage_exit(void)
{
    fprintf(stderr, "%s (see --help)\n", USAGE_LINE);
    exit_all(EXIT_USAGE);
}

static int parse_count(const char *flag, const char *s, int hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > hi) {
        fprintf(stderr, "error: %s: '%s' is not a whole number in [1, %d]\n", flag, s, hi);
        usage_exit();
    }
    return (int)v;
}

/* Returns optind: the first input. */
static int parse_flags(int argc, char **argv, PredictOptions *o)
{
    enum { OPT_CKPT = 1000, OPT_TOP, OPT_JSON, OPT_BATCH, OPT_HELP, OPT_VERSION };
    static const struct option opts[] = {
        {"checkpoint", required_argument, NULL, OPT_CKPT},
        {"top", required_argument, NULL, OPT_TOP},
        {"json", no_argument, NULL, OPT_JSON},
        {"batch", required_argument, NULL, OPT_BATCH},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0}};
    *o = (PredictOptions){.top = 5, .batch = 16};
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case OPT_CKPT: o->checkpoint = optarg; break;
        case OPT_TOP: o->top = parse_count("--top", optarg, 1 << 20); break;
        case OPT_JSON: o->json = 1; break;
        case OPT_BATCH: o->batch = parse_count("--batch", optarg, 4096); break;
        case OPT_HELP: usage(stdout); exit_all(EXIT_OK);
        case OPT_VERSION: {
            char v[512];
            version_string(v, sizeof v);
            printf("resnet_predict: %s\n", v);
            exit_all(EXIT_OK);
        }
        case ':':
            fprintf(stderr, "error: flag '%s' needs a value\n", argv[optind - 1]);
            usage_exit();
        default:
            fprintf(stderr, "error: unknown flag '%s'\n", argv[optind - 1]);
            usage_exit();
        }
    }
    if (!o->checkpoint) {
        fprintf(stderr, "error: --checkpoint CKPT is required\n");
        usage_exit();
    }
    if (optind >= argc) {
        fprintf(stderr, "error: give at least one image file or folder\n");
        usage_exit();
    }
    return optind;
}

/* The image files the arguments name, folders expanded; what cannot be
 * listed is skipped with a warning. */
static void collect_inputs(int n, char **args, PrepFiles *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < n; i++) {
        struct stat sb;
        if (stat(args[i], &sb) == 0 && S_ISDIR(sb.st_mode)) {
            PrepFiles tree;
            Status st = {0};
            if (prep_files_scan_tree("folder", args[i], &tree, &st) != 0)
                log_warn("%s; skipped", st.msg);
            else if (tree.n == 0)
                log_warn("%s: no .jpg/.jpeg/.png files in this folder; skipped", args[i]);
            for (size_t k = 0; k < tree.n; k++)
                prep_files_push(out, prep_files_path(&tree, k), -1);
            prep_files_free(&tree);
        } else {
            prep_files_push(out, args[i], -1); /* unreadable: said when it is read */
        }
    }
}

static void print_result(const Predictor *p, const PredictOptions *o, const char *file,
                         const double *probs, int *top)
{
    const CheckpointSpec *s = &p->spec;
    int k = o->top < s->num_classes ? o->top : s->num_classes;
    predictor_top(probs, s->num_classes, k, top);
    if (o->json) {
        fputs("{\"file\": ", stdout);
        json_print_string(stdout, file);
        fputs(", \"top\": [", stdout);
        for (int q = 0; q < k; q++) {
            printf("%s{\"index\": %d, \"class\": ", q ? ", " : "", top[q]);
            if (s->class_names)
                json_print_string(stdout, s->class_names[top[q]]);
            else
                fputs("null", stdout);
            printf(", \"prob\": %.6g}", probs[top[q]]);
        }
        fputs("]}\n", stdout);
        return;
    }
    printf("%s\n", file);
    for (int q = 0; q < k; q++) {
        if (s->class_names)
            printf("  %.4f  %s (%d)\n", probs[top[q]], s->class_names[top[q]], top[q]);
        else
            printf("  %.4f  class %d\n", probs[top[q]], top[q]);
    }
}

/* Classifies the files in batches; returns how many could be read. */
static size_t classify(Predictor *p, const PredictOptions *o, const PrepFiles *files)
{
    const char **names = xcalloc((size_t)o->batch, sizeof *names);
    int *top = xcalloc((size_t)p->spec.num_classes, sizeof *top);
    size_t done = 0;
    int n = 0;
    for (size_t i = 0; i <= files->n; i++) {
        if (n == o->batch || (i == files->n && n > 0)) {
            const double *probs = predictor_run(p, n);
            for (int j = 0; j < n; j++)
                print_result(p, o, names[j], probs + (size_t)j * p->spec.num_classes, top);
            fflush(stdout);
            done += (size_t)n;
            n = 0;
        }
        if (i == files->n)
            break;
        char why[512];
        const char *path = prep_files_path(files, i);
        if (predictor_load(p, path, n, why, sizeof why) != 0)
            log_warn("%s: skipped: %s", path, why);
        else
            names[n++] = path;
    }
    free(names);
    free(top);
    return done;
}

int main(int argc, char **argv)
{
    DistInfo dist;
    dist_init(&argc, &argv, &dist);
    h5_quiet();
    PredictOptions o;
    int first = parse_flags(argc, argv, &o);
    Status st = {0};
    if (dist.size > 1)
        status_set(&st, EXIT_USAGE, "resnet_predict runs as one process, not %d (mpirun -np 1, "
                   "or no mpirun)", dist.size);
    status_agree(&st);
    Predictor p;
    predictor_open(&p, o.checkpoint, o.batch, &st);
    status_agree(&st);
    PrepFiles files;
    collect_inputs(argc - first, argv + first, &files);
    size_t done = classify(&p, &o, &files);
    if (done == 0)
        status_set(&st, EXIT_USAGE, "none of the %zu image file(s) could be read", files.n);
    prep_files_free(&files);
    predictor_close(&p);
    status_agree(&st);
    exit_all(EXIT_OK);
}
