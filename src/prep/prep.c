/*
 * prep.c - resnet_prep's front door: MPI and HDF5 set-up, the subcommand
 * table, --help and --version.
 */
#include "prep.h"
#include "version.h"

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
#include "prep_flags.h"
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
    mpi_start(&argc, &argv);
    const char *first = argc > 1 ? argv[1] : NULL;
    if (!first)
        prep_usage_fail(NULL, "no command given");
    if (!strcmp(first, "-h") || !strcmp(first, "--help")) {
        if (log_rank_id() == 0)
            usage_print(stdout);
        exit_all(EXIT_OK);
    }
    if (!strcmp(first, "-V") || !strcmp(first, "--version")) {
        if (log_rank_id() == 0)
            version_print();
        exit_all(EXIT_OK);
    }
    if (first[0] == '-')
        prep_usage_fail(NULL, "unknown option '%s'", first);
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(first, g_commands[i].name) == 0)
            exit_all(g_commands[i].run(argc - 1, argv + 1));
    prep_usage_fail(NULL, "unknown command '%s' (commands: imagenet cifar10 cifar100 idx "
                          "synthetic inspect verify)",
                    first);
}
