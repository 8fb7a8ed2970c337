/*
 * prep_flags.c - one table-driven parser and help printer for every
 * resnet_prep subcommand (prep_flags.h).
 */
#include "prep_flags.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"

#define MAX_FLAGS 32
#define HELP_WIDTH 80

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

static void *field(void *opts, const PrepFlag *f)
{
    return (char *)opts + f->offset;
}

static void defaults_set(const PrepCommandLine *cl, void *opts)
{
    for (size_t i = 0; i < cl->nflags; i++) {
        const PrepFlag *f = &cl->flags[i];
        switch (f->kind) {
        case FLAG_TEXT: *(const char **)field(opts, f) = NULL; break;
        case FLAG_INT: *(int *)field(opts, f) = (int)f->def; break;
        case FLAG_LONG: *(long *)field(opts, f) = f->def; break;
        case FLAG_SWITCH: *(int *)field(opts, f) = 0; break;
        case FLAG_CHOICE: *(int *)field(opts, f) = (int)f->def; break;
        }
    }
}

static long long_parse(const PrepCommandLine *cl, const PrepFlag *f, const char *arg)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || end == arg || *end != '\0')
        prep_usage_fail(cl->cmd, "--%s %s: not an integer", f->name, arg);
    if (v < f->lo || v > f->hi)
        prep_usage_fail(cl->cmd, "--%s %s: must be in [%ld, %ld]", f->name, arg, f->lo, f->hi);
    return v;
}

static int choice_parse(const PrepCommandLine *cl, const PrepFlag *f, const char *arg)
{
    char list[256] = "";
    for (int k = 0; f->choices[k]; k++) {
        if (strcmp(arg, f->choices[k]) == 0)
            return k;
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%s", k ? " or " : "", f->choices[k]);
    }
    prep_usage_fail(cl->cmd, "--%s %s: expected %s", f->name, arg, list);
}

static void value_store(const PrepCommandLine *cl, const PrepFlag *f, const char *arg,
                        void *opts)
{
    switch (f->kind) {
    case FLAG_TEXT: *(const char **)field(opts, f) = arg; break;
    case FLAG_INT: *(int *)field(opts, f) = (int)long_parse(cl, f, arg); break;
    case FLAG_LONG: *(long *)field(opts, f) = long_parse(cl, f, arg); break;
    case FLAG_SWITCH: *(int *)field(opts, f) = 1; break;
    case FLAG_CHOICE: *(int *)field(opts, f) = choice_parse(cl, f, arg); break;
    }
}

/* The metavariable shown in --help: a choice lists its values. */
static void metavar(const PrepFlag *f, char *out, size_t len)
{
    out[0] = '\0';
    if (f->kind == FLAG_SWITCH)
        return;
    if (f->kind != FLAG_CHOICE) {
        snprintf(out, len, " %s", f->metavar);
        return;
    }
    for (int k = 0; f->choices[k]; k++) {
        size_t used = strlen(out);
        snprintf(out + used, len - used, "%s%s", k ? "|" : " ", f->choices[k]);
    }
}

static void default_text(const PrepFlag *f, char *out, size_t len)
{
    out[0] = '\0';
    if (f->kind == FLAG_TEXT && f->required)
        snprintf(out, len, "(required)");
    else if (f->kind == FLAG_INT || f->kind == FLAG_LONG)
        snprintf(out, len, "(default: %ld)", f->def);
    else if (f->kind == FLAG_CHOICE)
        snprintf(out, len, "(default: %s)", f->choices[f->def]);
}

/* One flag's entry: the flag and its metavariable in a column of width
 * `column`, the help lines beside it, the default after the last line (or
 * on a line of its own when it would not fit). */
static void flag_print(const PrepFlag *f, int column, FILE *out)
{
    char head[128], dflt[96];
    char mv[96];
    metavar(f, mv, sizeof mv);
    snprintf(head, sizeof head, "  --%s%s", f->name, mv);
    default_text(f, dflt, sizeof dflt);
    const char *line = f->help;
    int first = 1;
    for (;;) {
        const char *nl = strchr(line, '\n');
        int n = nl ? (int)(nl - line) : (int)strlen(line);
        fprintf(out, "%-*s%.*s", column, first ? head : "", n, line);
        if (!nl) {
            if (dflt[0] && column + n + 1 + (int)strlen(dflt) <= HELP_WIDTH)
                fprintf(out, " %s\n", dflt);
            else if (dflt[0])
                fprintf(out, "\n%-*s%s\n", column, "", dflt);
            else
                fputc('\n', out);
            return;
        }
        fputc('\n', out);
        line = nl + 1;
        first = 0;
    }
}

void prep_flags_help(const PrepCommandLine *cl, FILE *out)
{
    int column = (int)strlen("  -h, --help") + 2;
    for (size_t i = 0; i < cl->nflags; i++) {
        char mv[96];
        metavar(&cl->flags[i], mv, sizeof mv);
        int w = (int)(strlen("  --") + strlen(cl->flags[i].name) + strlen(mv)) + 2;
        if (w > column)
            column = w;
    }
    fputs(cl->intro, out);
    for (size_t i = 0; i < cl->nflags; i++)
        flag_print(&cl->flags[i], column, out);
    fprintf(out, "%-*sthis text\n", column, "  -h, --help");
}

/* getopt_long's table from the flag table; 'h' is --help. */
static void longopts_make(const PrepCommandLine *cl, struct option *o)
{
    CHECK(cl->nflags < MAX_FLAGS, "%s has %zu flags", cl->cmd, cl->nflags);
    for (size_t i = 0; i < cl->nflags; i++)
        o[i] = (struct option){.name = cl->flags[i].name,
                               .has_arg = cl->flags[i].kind == FLAG_SWITCH ? no_argument
                                                                           : required_argument,
                               .val = 256 + (int)i};
    o[cl->nflags] = (struct option){.name = "help", .has_arg = no_argument, .val = 'h'};
    o[cl->nflags + 1] = (struct option){0};
}

int prep_flags_parse(const PrepCommandLine *cl, int argc, char **argv, void *opts)
{
    struct option longopts[MAX_FLAGS + 2];
    longopts_make(cl, longopts);
    defaults_set(cl, opts);
    opterr = 0; /* rank 0 alone reports, through prep_usage_fail */
    optind = 0; /* start afresh on this argv */
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (c == 'h') {
            if (log_rank_id() == 0)
                prep_flags_help(cl, stdout);
            exit_all(EXIT_OK);
        }
        if (c == ':')
            prep_usage_fail(cl->cmd, "option '%s' needs a value", argv[optind - 1]);
        if (c == '?') {
            if (optopt && optopt < 256 && argv[optind - 1][1] != '-')
                prep_usage_fail(cl->cmd, "unknown option '-%c'", optopt);
            prep_usage_fail(cl->cmd, "unknown option '%s'", argv[optind - 1]);
        }
        value_store(cl, &cl->flags[c - 256], optarg, opts);
    }
    if (!cl->positional_name && optind < argc)
        prep_usage_fail(cl->cmd, "unexpected argument '%s'", argv[optind]);
    if (cl->positional_name && argc - optind != 1)
        prep_usage_fail(cl->cmd, "expected exactly one %s", cl->positional_name);
    for (size_t i = 0; i < cl->nflags; i++) {
        const PrepFlag *f = &cl->flags[i];
        if (f->required && !*(const char **)field(opts, f))
            prep_usage_fail(cl->cmd, "--%s is required", f->name);
    }
    return optind;
}
