/*
 * prep_folder.c - ImageFolder-compatible listing of class folders and the
 * ImageNet validation label files (Kaggle CSV, devkit ground truth).
 */
#include "prep_folder.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mpi.h>

#include "log.h"
#include "prep_file.h"

/* Deeper nesting than this inside a class folder is taken for a symlink loop. */
#define WALK_MAX_DEPTH 64

const char *prep_files_path(const PrepFiles *files, size_t i)
{
    return files->paths + files->off[i];
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_image_ext(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 ||
                   strcasecmp(dot, ".png") == 0);
}

static char *path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = xmalloc(a + b + 2);
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

/* 'd' folder, 'f' file (or a name stat cannot follow, e.g. a broken link,
 * which then fails to load and is reported by name), 's' anything else: a
 * FIFO, socket or device, whose reading could block. mode gets its type. */
static char entry_kind(const char *dir, const struct dirent *e, mode_t *mode)
{
    *mode = 0;
    if (e->d_type == DT_DIR)
        return 'd';
    if (e->d_type == DT_REG)
        return 'f';
    char *full = path_join(dir, e->d_name);
    struct stat sb;
    int known = stat(full, &sb) == 0;
    free(full);
    if (!known)
        return 'f';
    *mode = sb.st_mode;
    return S_ISDIR(sb.st_mode) ? 'd' : S_ISREG(sb.st_mode) ? 'f' : 's';
}

/* Sorted names of the non-hidden entries of one kind in dir. Listing the
 * files ('f') also names every FIFO, socket or device in a warning: prep
 * reads regular files only. */
static int list_dir(const char *flag, const char *dir, char kind, char ***names, int *n,
                    Status *st)
{
    DIR *d = opendir(dir);
    if (!d) {
        status_set(st, EXIT_USAGE, "%s %s: cannot open folder: %s", flag, dir, strerror(errno));
        return -1;
    }
    int cap = 16;
    *names = xmalloc((size_t)cap * sizeof **names);
    *n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        mode_t mode;
        char got = e->d_name[0] == '.' ? '.' : entry_kind(dir, e, &mode);
        if (got == 's' && kind == 'f') {
            char *full = path_join(dir, e->d_name);
            log_warn("skipped %s: not a regular file (%s)", full, prep_file_kind(mode));
            free(full);
        }
        if (got != kind)
            continue;
        if (*n == cap) {
            cap *= 2;
            *names = xrealloc(*names, (size_t)cap * sizeof **names);
        }
        (*names)[(*n)++] = xstrdup(e->d_name);
    }
    closedir(d);
    qsort(*names, (size_t)*n, sizeof **names, cmp_str);
    return 0;
}

static void names_free(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int prep_classes_scan(const char *flag, const char *dir, PrepClasses *out, Status *st)
{
    memset(out, 0, sizeof *out);
    if (list_dir(flag, dir, 'd', &out->names, &out->n, st) != 0)
        return -1;
    if (out->n == 0) {
        status_set(st, EXIT_USAGE,
                   "%s %s: no class folders inside (expected one sub-folder of images per "
                   "class, as torchvision's ImageFolder)",
                   flag, dir);
        return -1;
    }
    return 0;
}

int prep_classes_find(const PrepClasses *classes, const char *name)
{
    char **hit = bsearch(&name, classes->names, (size_t)classes->n, sizeof *classes->names,
                         cmp_str);
    return hit ? (int)(hit - classes->names) : -1;
}

void prep_classes_free(PrepClasses *classes)
{
    names_free(classes->names, classes->n);
    memset(classes, 0, sizeof *classes);
}

static void files_push_path(PrepFiles *f, const char *path, int32_t label)
{
    size_t len = strlen(path) + 1;
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 1024;
        f->off = xrealloc(f->off, f->cap * sizeof *f->off);
        f->labels = xrealloc(f->labels, f->cap * sizeof *f->labels);
    }
    if (f->paths_len + len > f->paths_cap) {
        f->paths_cap = 2 * (f->paths_len + len) + 4096;
        f->paths = xrealloc(f->paths, f->paths_cap);
    }
    f->off[f->n] = f->paths_len;
    f->labels[f->n] = label;
    memcpy(f->paths + f->paths_len, path, len);
    f->paths_len += len;
    f->n++;
}

void prep_files_push(PrepFiles *files, const char *path, int32_t label)
{
    files_push_path(files, path, label);
}

static void files_push(PrepFiles *f, const char *dir, const char *name, int32_t label)
{
    char *path = path_join(dir, name);
    files_push_path(f, path, label);
    free(path);
}

/* Files found under one class folder, before sorting: `dir` is shared by
 * the files of one folder. */
typedef struct {
    const char *dir;
    char *name;
} WalkEntry;

/* A folder already walked, by identity rather than name: a symlink back to
 * it (a loop) or a second link to it is walked once. */
typedef struct {
    dev_t dev;
    ino_t ino;
    char *path; /* as first reached, for the warning */
} WalkSeen;

typedef struct {
    WalkSeen *v;
    size_t n, cap;
} WalkVisited;

typedef struct {
    WalkEntry *v;
    size_t n, cap;
    char **dirs;
    size_t ndirs, dcap;
    uint64_t ignored;
    WalkVisited *visited; /* shared by every class folder of one scan */
} Walk;

/* 1 when dir was walked before (a warning names both paths), else records it
 * and returns 0. A folder stat cannot read is left to list_dir to report. */
static int visited_check(WalkVisited *vis, const char *flag, const char *dir)
{
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return 0;
    for (size_t i = 0; i < vis->n; i++)
        if (vis->v[i].dev == sb.st_dev && vis->v[i].ino == sb.st_ino) {
            log_warn("%s %s: skipped: the same folder as %s (a symlink loop, or a second "
                     "link to it): its images are taken once",
                     flag, dir, vis->v[i].path);
            return 1;
        }
    if (vis->n == vis->cap) {
        vis->cap = vis->cap ? 2 * vis->cap : 64;
        vis->v = xrealloc(vis->v, vis->cap * sizeof *vis->v);
    }
    vis->v[vis->n++] = (WalkSeen){sb.st_dev, sb.st_ino, xstrdup(dir)};
    return 0;
}

static void visited_free(WalkVisited *vis)
{
    for (size_t i = 0; i < vis->n; i++)
        free(vis->v[i].path);
    free(vis->v);
    memset(vis, 0, sizeof *vis);
}

static int walk_cmp(const void *a, const void *b)
{
    const WalkEntry *x = a, *y = b;
    int c = strcmp(x->dir, y->dir);
    return c ? c : strcmp(x->name, y->name);
}

static int walk_dir(const char *flag, Walk *wk, const char *dir, int depth, Status *st)
{
    if (depth > WALK_MAX_DEPTH) {
        status_set(st, EXIT_USAGE, "%s %s: folders nested more than %d deep (a symlink loop?)",
                   flag, dir, WALK_MAX_DEPTH);
        return -1;
    }
    if (depth > 0 && visited_check(wk->visited, flag, dir))
        return 0; /* class folders were recorded before any walk */
    char **files, **subdirs;
    int nf, nd;
    if (list_dir(flag, dir, 'f', &files, &nf, st) != 0)
        return -1;
    if (wk->ndirs == wk->dcap) {
        wk->dcap = wk->dcap ? 2 * wk->dcap : 64;
        wk->dirs = xrealloc(wk->dirs, wk->dcap * sizeof *wk->dirs);
    }
    const char *shared = wk->dirs[wk->ndirs++] = xstrdup(dir);
    for (int i = 0; i < nf; i++) {
        if (!has_image_ext(files[i])) {
            wk->ignored++;
            free(files[i]);
            continue;
        }
        if (wk->n == wk->cap) {
            wk->cap = wk->cap ? 2 * wk->cap : 1024;
            wk->v = xrealloc(wk->v, wk->cap * sizeof *wk->v);
        }
        wk->v[wk->n++] = (WalkEntry){shared, files[i]};
    }
    free(files);
    if (list_dir(flag, dir, 'd', &subdirs, &nd, st) != 0)
        return -1;
    int rc = 0;
    for (int i = 0; i < nd && rc == 0; i++) {
        char *sub = path_join(dir, subdirs[i]);
        rc = walk_dir(flag, wk, sub, depth + 1, st);
        free(sub);
    }
    names_free(subdirs, nd);
    return rc;
}

static void walk_free(Walk *wk)
{
    for (size_t i = 0; i < wk->n; i++)
        free(wk->v[i].name);
    for (size_t i = 0; i < wk->ndirs; i++)
        free(wk->dirs[i]);
    free(wk->v);
    free(wk->dirs);
}

/* Appends the images of one class folder in ImageFolder order; returns how
 * many, or -1. */
static long class_collect(const char *flag, const char *dir, int32_t label, PrepFiles *out,
                          WalkVisited *visited, Status *st)
{
    Walk wk = {.visited = visited};
    if (walk_dir(flag, &wk, dir, 0, st) != 0) {
        walk_free(&wk);
        return -1;
    }
    if (wk.n) /* qsort wants a buffer even for nothing */
        qsort(wk.v, wk.n, sizeof *wk.v, walk_cmp);
    for (size_t i = 0; i < wk.n; i++)
        files_push(out, wk.v[i].dir, wk.v[i].name, label);
    out->ignored += wk.ignored;
    long n = (long)wk.n;
    walk_free(&wk);
    return n;
}

int prep_files_scan_classes(const char *flag, const char *dir, const PrepClasses *classes,
                            int strict, PrepFiles *out, Status *st)
{
    memset(out, 0, sizeof *out);
    PrepClasses here;
    if (prep_classes_scan(flag, dir, &here, st) != 0)
        return -1;
    int rc = 0;
    /* The folder and every class folder are recorded first, so that a link
     * into another class from inside one is skipped and the images keep
     * their own class; a class folder that is a second link to another is
     * empty. */
    WalkVisited visited = {0};
    visited_check(&visited, flag, dir); /* a link up to it holds no class images */
    char *dup = xcalloc((size_t)here.n, 1);
    for (int i = 0; i < here.n; i++) {
        char *sub = path_join(dir, here.names[i]);
        dup[i] = (char)visited_check(&visited, flag, sub);
        free(sub);
    }
    for (int i = 0; i < here.n && rc == 0; i++) {
        int label = prep_classes_find(classes, here.names[i]);
        if (label < 0) {
            status_set(st, EXIT_USAGE, "%s %s: class folder '%s' is not a class of --train",
                       flag, dir, here.names[i]);
            rc = -1;
            break;
        }
        char *sub = path_join(dir, here.names[i]);
        long n = dup[i] ? 0 : class_collect(flag, sub, label, out, &visited, st);
        if (n == 0 && strict)
            status_set(st, EXIT_USAGE, "%s %s: no .jpg/.jpeg/.png files (--strict)", flag, sub);
        else if (n == 0)
            log_warn("%s %s: class folder has no .jpg/.jpeg/.png files", flag, sub);
        rc = n < 0 || st->code ? -1 : 0;
        free(sub);
    }
    free(dup);
    visited_free(&visited);
    prep_classes_free(&here);
    if (rc == 0 && out->n == 0) {
        status_set(st, EXIT_USAGE, "%s %s: no .jpg/.jpeg/.png files in its class folders", flag,
                   dir);
        rc = -1;
    }
    return rc;
}

int prep_files_scan_tree(const char *flag, const char *dir, PrepFiles *out, Status *st)
{
    memset(out, 0, sizeof *out);
    WalkVisited visited = {0};
    visited_check(&visited, flag, dir); /* a link back up to it is walked once */
    long n = class_collect(flag, dir, -1, out, &visited, st);
    visited_free(&visited);
    return n < 0 ? -1 : 0;
}

int prep_files_scan_flat(const char *flag, const char *dir, PrepFiles *out, Status *st)
{
    memset(out, 0, sizeof *out);
    char **names;
    int n;
    if (list_dir(flag, dir, 'f', &names, &n, st) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        if (has_image_ext(names[i]))
            files_push(out, dir, names[i], -1);
        else
            out->ignored++;
    }
    names_free(names, n);
    if (out->n == 0) {
        status_set(st, EXIT_USAGE,
                   "%s %s: no .jpg/.jpeg/.png files directly inside (with --val-labels the "
                   "validation images sit in one flat folder)",
                   flag, dir);
        return -1;
    }
    return 0;
}

/* Reads a whole text file; NULL with st set if it cannot be read. */
static char *text_read(const char *flag, const char *path, Status *st)
{
    char why[256];
    int fd = prep_file_open(path, why, sizeof why);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "rb");
    if (!f) {
        if (fd >= 0)
            close(fd);
        status_set(st, EXIT_USAGE, "%s %s: %s", flag, path, fd < 0 ? why : strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, len = 0, got;
    char *buf = xmalloc(cap);
    while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 2) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        status_set(st, EXIT_USAGE, "%s %s: %s", flag, path, strerror(errno));
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

/* Splits text into lines in place (handles \r\n), skipping a UTF-8 BOM. */
static char **text_lines(char *text, size_t *n)
{
    if ((unsigned char)text[0] == 0xef && (unsigned char)text[1] == 0xbb &&
        (unsigned char)text[2] == 0xbf)
        text += 3;
    size_t cap = 1024;
    char **lines = xmalloc(cap * sizeof *lines);
    *n = 0;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        size_t len = strlen(p);
        if (len && p[len - 1] == '\r')
            p[len - 1] = '\0';
        if (*n == cap) {
            cap *= 2;
            lines = xrealloc(lines, cap * sizeof *lines);
        }
        lines[(*n)++] = p;
        if (!nl)
            break;
        p = nl + 1;
    }
    while (*n && lines[*n - 1][0] == '\0') /* trailing empty lines */
        (*n)--;
    return lines;
}

/* The first whitespace-separated token of s, cut in place. */
static char *first_token(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s;
    while (*end && !isspace((unsigned char)*end))
        end++;
    *end = '\0';
    return s;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* "name.JPEG" -> "name" in buf. */
static void stem(const char *path, char *buf, size_t len)
{
    snprintf(buf, len, "%s", base_name(path));
    char *dot = strrchr(buf, '.');
    if (dot)
        *dot = '\0';
}

static int label_by_wnid(PrepFiles *files, size_t i, const char *wnid, const char *where,
                         const PrepClasses *classes, Status *st)
{
    int label = prep_classes_find(classes, wnid);
    if (label < 0) {
        status_set(st, EXIT_USAGE,
                   "%s: image %s is labelled '%s', which is not a class folder of --train",
                   where, base_name(prep_files_path(files, i)), wnid);
        return -1;
    }
    files->labels[i] = label;
    return 0;
}

/* Kaggle LOC_val_solution.csv: "ImageId,PredictionString" then one row per
 * image, e.g. "ILSVRC2012_val_00008726,n02119789 255 142 454 329 ...". */
static int label_kaggle(PrepFiles *files, const char *path, char **lines, size_t nlines,
                        const PrepClasses *classes, Status *st)
{
    char **ids = xmalloc((nlines ? nlines : 1) * sizeof *ids); /* "id\0wnid" pairs */
    size_t n = 0;
    for (size_t i = 1; i < nlines; i++) {
        char *comma = strchr(lines[i], ',');
        if (!lines[i][0])
            continue;
        if (!comma) {
            status_set(st, EXIT_USAGE, "--val-labels %s line %zu: expected ImageId,PredictionString",
                       path, i + 1);
            free(ids);
            return -1;
        }
        *comma = '\0';
        char *wnid = first_token(comma + 1);
        memmove(comma + 1, wnid, strlen(wnid) + 1);
        ids[n++] = lines[i];
    }
    qsort(ids, n, sizeof *ids, cmp_str);
    int rc = 0;
    char key[PATH_MAX];
    for (size_t i = 0; i < files->n && rc == 0; i++) {
        stem(prep_files_path(files, i), key, sizeof key);
        const char *k = key;
        char **hit = bsearch(&k, ids, n, sizeof *ids, cmp_str);
        if (!hit) {
            status_set(st, EXIT_USAGE, "--val-labels %s: no row for image %s", path,
                       base_name(prep_files_path(files, i)));
            rc = -1;
            break;
        }
        rc = label_by_wnid(files, i, *hit + strlen(*hit) + 1, path, classes, st);
    }
    free(ids);
    return rc;
}

/* Synsets file: line i (1-based) holds the wnid of ILSVRC2012 ID i as its
 * first token ("n01440764" or "n01440764 tench, Tinca tinca"). */
static char **synsets_load(const char *path, char **text, size_t *n, Status *st)
{
    *text = text_read("--synsets", path, st);
    if (!*text)
        return NULL;
    char **lines = text_lines(*text, n);
    for (size_t i = 0; i < *n; i++)
        lines[i] = first_token(lines[i]);
    return lines;
}

static int parse_id(const char *s, long *id)
{
    char *end;
    errno = 0;
    *id = strtol(s, &end, 10);
    while (isspace((unsigned char)*end))
        end++;
    return errno == 0 && end != s && *end == '\0';
}

/* Devkit ILSVRC2012_validation_ground_truth.txt: line k = ID of the k-th
 * validation image in sorted file order. */
static int label_ground_truth(PrepFiles *files, const char *dir, const char *path, char **lines,
                              size_t nlines, const char *synsets_path,
                              const PrepClasses *classes, Status *st)
{
    if (!synsets_path) {
        status_set(st, EXIT_USAGE,
                   "--val-labels %s holds ILSVRC2012 class IDs (1..1000), not class names; "
                   "the mapping from ID to class folder name is missing: pass --synsets FILE "
                   "with the wnid of ID i on line i (see datasets/README.md)",
                   path);
        return -1;
    }
    if (nlines != files->n) {
        status_set(st, EXIT_USAGE,
                   "--val-labels %s has %zu labels but --val %s has %zu images (one label per "
                   "image, in sorted file order)",
                   path, nlines, dir, files->n);
        return -1;
    }
    char *text;
    size_t nsyn;
    char **syn = synsets_load(synsets_path, &text, &nsyn, st);
    if (!syn)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < files->n && rc == 0; i++) {
        long id;
        char where[PATH_MAX + 64];
        snprintf(where, sizeof where, "--val-labels %s line %zu", path, i + 1);
        parse_id(lines[i], &id);
        if (id < 1 || (size_t)id > nsyn || !syn[id - 1][0]) {
            status_set(st, EXIT_USAGE, "%s: class ID %ld has no line in --synsets %s (%zu lines)",
                       where, id, synsets_path, nsyn);
            rc = -1;
            break;
        }
        rc = label_by_wnid(files, i, syn[id - 1], where, classes, st);
    }
    free(syn);
    free(text);
    return rc;
}

static int all_ids(char **lines, size_t n)
{
    long id;
    for (size_t i = 0; i < n; i++)
        if (!parse_id(lines[i], &id))
            return 0;
    return n > 0;
}

int prep_files_label(PrepFiles *files, const char *dir, const char *labels_path,
                     const char *synsets_path, const PrepClasses *classes, Status *st)
{
    char *text = text_read("--val-labels", labels_path, st);
    if (!text)
        return -1;
    size_t n;
    char **lines = text_lines(text, &n);
    int rc;
    if (n && strncmp(lines[0], "ImageId,", 8) == 0) {
        rc = label_kaggle(files, labels_path, lines, n, classes, st);
    } else if (all_ids(lines, n)) {
        rc = label_ground_truth(files, dir, labels_path, lines, n, synsets_path, classes, st);
    } else {
        status_set(st, EXIT_USAGE,
                   "--val-labels %s: neither Kaggle's LOC_val_solution.csv (header "
                   "ImageId,PredictionString) nor ILSVRC2012_validation_ground_truth.txt (one "
                   "class ID per line)",
                   labels_path);
        rc = -1;
    }
    free(lines);
    free(text);
    return rc;
}

int prep_classes_read(const char *flag, const char *path, PrepClasses *out, Status *st)
{
    memset(out, 0, sizeof *out);
    char *text = text_read(flag, path, st);
    if (!text)
        return -1;
    size_t n;
    char **lines = text_lines(text, &n);
    out->n = (int)n;
    out->names = xmalloc((n ? n : 1) * sizeof *out->names);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(lines[i]);
        while (len && isspace((unsigned char)lines[i][len - 1]))
            lines[i][--len] = '\0';
        out->names[i] = xstrdup(lines[i]);
    }
    while (out->n && !out->names[out->n - 1][0]) /* lines of blanks at the end */
        free(out->names[--out->n]);
    free(lines);
    free(text);
    return 0;
}

void prep_files_limit(PrepFiles *files, int limit, int num_classes)
{
    if (limit <= 0)
        return;
    PrepFiles kept = {0};
    size_t *seen = xcalloc((size_t)num_classes, sizeof *seen);
    for (size_t i = 0; i < files->n; i++) {
        int32_t l = files->labels[i];
        if (seen[l]++ < (size_t)limit)
            files_push_path(&kept, prep_files_path(files, i), l);
    }
    kept.ignored = files->ignored;
    free(seen);
    prep_files_free(files);
    *files = kept;
}

void prep_files_free(PrepFiles *files)
{
    free(files->paths);
    free(files->off);
    free(files->labels);
    memset(files, 0, sizeof *files);
}

/* MPI counts are int: large buffers go in pieces. */
static void bcast_bytes(void *buf, size_t n, int root)
{
    const size_t piece = (size_t)1 << 30;
    for (size_t at = 0; at < n; at += piece) {
        size_t len = n - at < piece ? n - at : piece;
        MPI_CHECK(MPI_Bcast((char *)buf + at, (int)len, MPI_BYTE, root, MPI_COMM_WORLD));
    }
}

void prep_files_bcast(PrepFiles *files, int root)
{
    int rank;
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    uint64_t head[3] = {files->n, files->paths_len, files->ignored};
    MPI_CHECK(MPI_Bcast(head, 3, MPI_UINT64_T, root, MPI_COMM_WORLD));
    if (rank != root) {
        memset(files, 0, sizeof *files);
        files->n = files->cap = head[0];
        files->paths_len = files->paths_cap = head[1];
        files->ignored = head[2];
        files->paths = xmalloc(head[1]);
        files->off = xmalloc(head[0] * sizeof *files->off);
        files->labels = xmalloc(head[0] * sizeof *files->labels);
    }
    bcast_bytes(files->paths, files->paths_len, root);
    bcast_bytes(files->off, files->n * sizeof *files->off, root);
    bcast_bytes(files->labels, files->n * sizeof *files->labels, root);
}

void prep_classes_bcast(PrepClasses *classes, int root)
{
    int rank;
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    size_t len = 0;
    for (int i = 0; rank == root && i < classes->n; i++)
        len += strlen(classes->names[i]) + 1;
    uint64_t head[2] = {(uint64_t)classes->n, len};
    MPI_CHECK(MPI_Bcast(head, 2, MPI_UINT64_T, root, MPI_COMM_WORLD));
    char *blob = xmalloc(head[1] ? head[1] : 1);
    size_t at = 0;
    for (int i = 0; rank == root && i < classes->n; i++) {
        size_t n = strlen(classes->names[i]) + 1;
        memcpy(blob + at, classes->names[i], n);
        at += n;
    }
    bcast_bytes(blob, head[1], root);
    if (rank != root) {
        classes->n = (int)head[0];
        classes->names = xmalloc((size_t)classes->n * sizeof *classes->names);
        for (size_t i = 0, at = 0; i < head[0]; i++) {
            classes->names[i] = xstrdup(blob + at);
            at += strlen(blob + at) + 1;
        }
    }
    free(blob);
}
