/*
 * prep.h - the resnet_prep command line: MPI start-up, the subcommand table,
 * --help/--version, and the option helpers every subcommand uses.
 *
 * Every function here is collective over MPI_COMM_WORLD: all ranks parse the
 * same argv, so a bad flag is seen by all of them; rank 0 prints one line
 * and every rank exits with code 2.
 */
#ifndef RESNET_PREP_H
#define RESNET_PREP_H

#include <getopt.h>

/* Entry point of resnet_prep: initialises MPI, runs the subcommand, exits
 * every rank with the same code. */
_Noreturn void prep_main(int argc, char **argv);

/* Runs getopt_long over a subcommand's argv (argv[0] = subcommand name) with
 * its own error reporting: returns the next option, -1 at the end; an unknown
 * option or a missing argument exits 2 naming it. */
int prep_getopt(const char *cmd, int argc, char **argv, const char *shortopts,
                const struct option *longopts);

/* Prints text to stdout on rank 0 and exits every rank with 0. */
_Noreturn void prep_help(const char *text);

/* "resnet_prep CMD: <message> (see resnet_prep CMD --help)", exit 2. */
_Noreturn void prep_usage_fail(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parses a decimal integer flag value in [lo, hi] or exits 2 naming flag. */
long prep_parse_long(const char *cmd, const char *flag, const char *arg, long lo, long hi);

/* Exits 2 unless value is non-NULL: a required flag was not given. */
void prep_require(const char *cmd, const char *flag, const char *value);

#endif
