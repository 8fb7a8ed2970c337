/*
 * prep.h - resnet_prep, the dataset preparation tool (docs/dataset-format.md):
 * MPI start-up, the subcommand table, --help and --version. Each
 * subcommand's command line is a table of its own (src/prep/prep_flags.h).
 */
#ifndef RESNET_PREP_H
#define RESNET_PREP_H

/* Entry point of resnet_prep: initialises MPI, runs the subcommand, exits
 * every rank with the same code. */
_Noreturn void prep_main(int argc, char **argv);

#endif
