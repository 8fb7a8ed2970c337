/*
 * prep.c - resnet_prep's front door: MPI and HDF5 set-up, the subcommand
 * table, --help and --version, and shared option parsing.
 */
#include "prep.h"
#include "version.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>
#include <zlib.h>

#include "error.h"
#include "h5lock.h"
#include "image_io.h"
#include "log.h"
#include "prep_cifar.h"
#include "prep_idx.h"
#include "prep_imagenet.h"
#include "prep_inspect.h"
#include "prep_verify.h"
#include "prep_synthetic.h"


typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} PrepCommand;

static const PrepCommand g_commands[] = {
    {"imagenet", prep_imagenet_main, "class folders of JPEG/PNG images (ImageNet and alike)"},
    {"cifar10", prep_cifar10_main, "CIFAR-10 binary version"},
    {"cifar100", prep_cifar100_main, "CIFAR-100 binary version (fine labels)"},
    {"idx", prep_idx_main, "MNIST-format IDX files, gzipped or not (MNIST, Fashion-MNIST)"},
    {"synthetic", prep_synthetic_main, "random images with learnable class structure"},
    {"inspect", prep_inspect_main, "print what a dataset file holds"},
    {"verify", prep_verify_main, "read every record of a dataset file and check it"},
};
#define NCOMMANDS (sizeof g_commands / sizeof g_commands[0])

static void usage_print(FILE *out)
{
    fprintf(out,
            "usage: resnet_prep COMMAND [OPTIONS]      (also under mpirun -np N)\n"
            "       resnet_prep COMMAND --help\n"
            "       resnet_prep --help | --version\n\n"
            "Prepares HDF5 dataset files for resnet_dist (format: docs/dataset-format.md).\n"
            "Under mpirun the ranks split the images and write one file with parallel HDF5.\n\n"
            "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", g_commands[i].name, g_commands[i].summary);
    fprintf(out, "\noptions:\n"
                 "  -h, --help     this text\n"
                 "  -V, --version  program and library versions\n");
}

static void version_print(void)
{
    char v[512];
    version_string(v, sizeof v);
    printf("resnet_prep: %s\n", v);
    printf("%s, zlib %s\n", image_library_versions(), zlibVersion());
}

_Noreturn void prep_help(const char *text)
{
    if (log_rank_id() == 0)
        fputs(text, stdout);
    exit_all(EXIT_OK);
}

_Noreturn void prep_usage_fail(const char *cmd, const char *fmt, ...)
{
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    Status st = {0};
    if (cmd)
        status_set(&st, EXIT_USAGE, "resnet_prep %s: %s (see resnet_prep %s --help)", cmd, what,
                   cmd);
    else
        status_set(&st, EXIT_USAGE, "resnet_prep: %s (see resnet_prep --help)", what);
    status_agree(&st);
    exit_all(EXIT_INTERNAL); /* not reached: st is set on every rank */
}

int prep_getopt(const char *cmd, int argc, char **argv, const char *shortopts,
                const struct option *longopts)
{
    /* A ':' after any '+' makes getopt return ':' for a missing value; with
     * opterr 0 it prints nothing, so rank 0 alone reports. */
    char spec[64];
    int plus = shortopts[0] == '+';
    snprintf(spec, sizeof spec, "%s:%s", plus ? "+" : "", shortopts + plus);
    opterr = 0;
    int c = getopt_long(argc, argv, spec, longopts, NULL);
    if (c == '?') {
        if (optopt && optopt < 256 && argv[optind - 1][1] != '-')
            prep_usage_fail(cmd, "unknown option '-%c'", optopt);
        prep_usage_fail(cmd, "unknown option '%s'", argv[optind - 1]);
    }
    if (c == ':')
        prep_usage_fail(cmd, "option '%s' needs a value", argv[optind - 1]);
    return c;
}

long prep_parse_long(const char *cmd, const char *flag, const char *arg, long lo, long hi)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || end == arg || *end != '\0')
        prep_usage_fail(cmd, "%s %s: not an integer", flag, arg);
    if (v < lo || v > hi)
        prep_usage_fail(cmd, "%s %s: must be in [%ld, %ld]", flag, arg, lo, hi);
    return v;
}

void prep_require(const char *cmd, const char *flag, const char *value)
{
    if (!value)
        prep_usage_fail(cmd, "%s is required", flag);
}

static void mpi_start(int *argc, char ***argv)
{
    MPI_CHECK(MPI_Init(argc, argv));
    MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    int rank, size;
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
    log_set_rank(rank, size);
    h5_quiet();
}

_Noreturn void prep_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    mpi_start(&argc, &argv);
    int c;
    /* '+': stop at the subcommand, whose options are its own. */
    while ((c = prep_getopt(NULL, argc, argv, "+hV", opts)) != -1) {
        if (c == 'h') {
            if (log_rank_id() == 0)
                usage_print(stdout);
            exit_all(EXIT_OK);
        }
        if (log_rank_id() == 0)
            version_print();
        exit_all(EXIT_OK);
    }
    if (optind >= argc)
        prep_usage_fail(NULL, "no command given");
    const char *name = argv[optind];
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(name, g_commands[i].name) == 0) {
            char **sub = argv + optind;
            int subc = argc - optind;
            optind = 0; /* 0 makes GNU getopt start afresh on the new argv */
            exit_all(g_commands[i].run(subc, sub));
        }
    }
    prep_usage_fail(NULL, "unknown command '%s' (commands: imagenet cifar10 cifar100 idx "
                          "synthetic inspect verify)",
                    name);
}
