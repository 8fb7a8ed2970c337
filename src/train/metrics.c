/*
 * metrics.c - JSON-lines metrics log. Each record is built in memory and
 * written with one fwrite + fflush, so a line is never interleaved or left
 * half-built by a later record. Local: only rank 0 writes.
 */
#include "metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

int metrics_open(Metrics *m, const char *path, Status *st)
{
    memset(m, 0, sizeof *m);
    /* One writer per file: other ranks would interleave their lines. */
    if (!path || !*path || log_rank_id() != 0)
        return 0;
    if ((size_t)snprintf(m->path, sizeof m->path, "%s", path) >= sizeof m->path) {
        status_set(st, EXIT_USAGE, "metrics path too long: %s", path);
        return st->code;
    }
    m->f = fopen(path, "a");
    if (!m->f) {
        status_set(st, EXIT_USAGE, "%s: cannot open the metrics file for appending: %s", path,
                   sys_error_string());
        return st->code;
    }
    return 0;
}

void metrics_close(Metrics *m)
{
    if (m->f && fclose(m->f) != 0)
        fail_local(__FILE__, __LINE__, "fclose", "%s: %s", m->path, sys_error_string());
    free(m->line);
    memset(m, 0, sizeof *m);
}

int metrics_enabled(const Metrics *m)
{
    return m->f != NULL;
}

static void append(Metrics *m, const char *s, size_t n)
{
    if (m->len + n + 1 > m->cap) {
        m->cap = 2 * (m->len + n + 1) + 256;
        m->line = xrealloc(m->line, m->cap);
    }
    memcpy(m->line + m->len, s, n);
    m->len += n;
    m->line[m->len] = '\0';
}

static void appendf(Metrics *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void appendf(Metrics *m, const char *fmt, ...)
{
    char buf[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    append(m, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static int is_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs,
 * no surrogates, at most U+10FFFF), or 0. */
static int utf8_length(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return is_cont(s[1]) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return s[1] >= lo && s[1] <= hi && is_cont(s[2]) ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return s[1] >= lo && s[1] <= hi && is_cont(s[2]) && is_cont(s[3]) ? 4 : 0;
    }
    return 0;
}

/* A JSON string. Bytes that are not UTF-8 (a file name in another
 * encoding) become U+FFFD, so every line stays parseable. */
static void append_string(Metrics *m, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    append(m, "\"", 1);
    while (*s) {
        int n = utf8_length(s);
        if (n == 0) {
            append(m, "\\ufffd", 6);
            s++;
        } else if (*s == '"' || *s == '\\') {
            char esc[2] = {'\\', (char)*s};
            append(m, esc, 2);
            s++;
        } else if (*s < 0x20) {
            static const char *named[] = {['\b'] = "\\b", ['\f'] = "\\f", ['\n'] = "\\n",
                                          ['\r'] = "\\r", ['\t'] = "\\t"};
            if (*s < sizeof named / sizeof *named && named[*s])
                append(m, named[*s], 2);
            else
                appendf(m, "\\u%04x", *s);
            s++;
        } else {
            append(m, (const char *)s, (size_t)n);
            s += n;
        }
    }
    append(m, "\"", 1);
}

void json_print_string(FILE *out, const char *s)
{
    Metrics m = {0};
    append_string(&m, s);
    fputs(m.line, out);
    free(m.line);
}

static void append_key(Metrics *m, const char *key)
{
    CHECK(m->open, "metrics field %s outside metrics_begin/metrics_end", key);
    append(m, ",", 1);
    append_string(m, key);
    append(m, ":", 1);
}

/* The shortest %g that reads back as the same double (0.1, not
 * 0.10000000000000001), with ".0" on whole numbers so readers see a float
 * every time; JSON has no inf or nan, so those are null. */
static void append_number(Metrics *m, double v)
{
    if (!isfinite(v)) {
        append(m, "null", 4);
        return;
    }
    char buf[32];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    append(m, buf, strlen(buf));
    if (!strpbrk(buf, ".e"))
        append(m, ".0", 2);
}

void metrics_begin(Metrics *m, const char *kind)
{
    if (!m->f)
        return;
    CHECK(!m->open, "metrics record %s begun inside another", kind);
    m->open = 1;
    m->len = 0;
    append(m, "{\"kind\":", 8);
    append_string(m, kind);
}

void metrics_int(Metrics *m, const char *key, int64_t v)
{
    if (!m->f)
        return;
    append_key(m, key);
    appendf(m, "%lld", (long long)v);
}

void metrics_num(Metrics *m, const char *key, double v)
{
    if (!m->f)
        return;
    append_key(m, key);
    append_number(m, v);
}

void metrics_str(Metrics *m, const char *key, const char *s)
{
    if (!m->f)
        return;
    append_key(m, key);
    if (s)
        append_string(m, s);
    else
        append(m, "null", 4);
}

void metrics_end(Metrics *m)
{
    if (!m->f)
        return;
    CHECK(m->open, "metrics_end without metrics_begin");
    append(m, "}\n", 2);
    m->open = 0;
    if (fwrite(m->line, 1, m->len, m->f) != m->len || fflush(m->f) != 0)
        fail_local(__FILE__, __LINE__, "fwrite", "%s: %s", m->path, sys_error_string());
}
