/*
 * prep_flags.h - the command lines of resnet_prep's subcommands, each
 * described by one table: a flag's name, kind, field, range, default and
 * help text live in one row, so the parser and --help cannot disagree.
 *
 * Collective over MPI_COMM_WORLD: all ranks parse the same argv, so a bad
 * flag is seen by all of them; rank 0 prints one line and every rank exits
 * with code 2.
 */
#ifndef RESNET_PREP_FLAGS_H
#define RESNET_PREP_FLAGS_H

#include <limits.h>
#include <stddef.h>
#include <stdio.h>

typedef enum {
    FLAG_TEXT,   /* const char * field: the value as given */
    FLAG_INT,    /* int field: a decimal integer in [lo, hi], default def */
    FLAG_LONG,   /* long field: the same */
    FLAG_SWITCH, /* int field: 1 when given, else 0 */
    FLAG_CHOICE, /* int field: the index of the value in choices, default def */
} PrepFlagKind;

typedef struct {
    const char *name; /* without the leading "--" */
    PrepFlagKind kind;
    size_t offset;    /* of the field in the subcommand's options struct */
    const char *metavar;
    long lo, hi, def;
    const char *const *choices; /* FLAG_CHOICE: NULL-terminated */
    int required;               /* FLAG_TEXT */
    const char *help;           /* lines separated by '\n'; the default is appended */
} PrepFlag;

typedef struct {
    const char *cmd;      /* the subcommand's name */
    const char *intro;    /* usage line(s) and description, ending in a blank line */
    const PrepFlag *flags;
    size_t nflags;
    const char *positional_name; /* the one non-option argument it takes ("FILE.h5"), or
                                  * NULL for none */
} PrepCommandLine;

#define PREP_NFLAGS(table) (sizeof(table) / sizeof(table)[0])

/* The rows several subcommands share, for an options struct T with fields
 * `out` (const char *), `force` (int) and `val_split` (long). */
#define PREP_FLAG_OUT(T)                                                                      \
    {.name = "out", .kind = FLAG_TEXT, .offset = offsetof(T, out), .metavar = "FILE.h5",      \
     .required = 1, .help = "output file"}
#define PREP_FLAG_FORCE(T)                                                                    \
    {.name = "force", .kind = FLAG_SWITCH, .offset = offsetof(T, force),                      \
     .help = "replace --out if it exists (without it: refuse)"}
#define PREP_FLAG_VAL_SPLIT(T)                                                                \
    {.name = "val-split", .kind = FLAG_LONG, .offset = offsetof(T, val_split), .metavar = "N", \
     .lo = 0, .hi = LONG_MAX, .def = 0,                                                       \
     .help = "hold out the last N training images as /val, left out of\n/train and of "      \
             "mean/std; 0 makes /val a copy of the test\nset, as published benchmarks do"}

/* Sets every field to its default, parses argv (argv[0] = the subcommand)
 * into opts, prints --help and exits 0, and exits 2 naming the flag for an
 * unknown flag, a missing or bad value, a missing required flag or a wrong
 * number of positional arguments. Returns the index of the first positional
 * argument. */
int prep_flags_parse(const PrepCommandLine *cl, int argc, char **argv, void *opts);

/* The --help text: intro, one entry per flag with its default, and -h. */
void prep_flags_help(const PrepCommandLine *cl, FILE *out);

/* "resnet_prep CMD: <message> (see resnet_prep CMD --help)", exit 2; cmd
 * NULL for the top level. */
_Noreturn void prep_usage_fail(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
