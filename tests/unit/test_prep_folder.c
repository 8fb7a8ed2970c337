/*
 * test_prep_folder.c - prep_folder: ImageFolder's class and file order
 * (byte-sorted classes, files by (folder, name) with sub-folders after the
 * folder's own files), hidden entries and other extensions ignored, flat
 * listings, Kaggle CSV (with BOM and CRLF) and devkit ground truth labels,
 * the missing-synsets error, --limit-per-class, class-name files; symlink
 * loops walked once, FIFOs skipped in listings and refused (at once) as
 * inputs. Scanning never opens the images, so the tree holds empty files.
 * Scratch files go to build/tmp/test_prep_folder. A regression that hangs
 * (a FIFO read, an endless walk) is ended by alarm().
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "prep_file.h"
#include "prep_folder.h"

static char g_root[1024];

static void touch(const char *rel, const char *text)
{
    char p[PATH_MAX], dir[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", g_root, rel);
    snprintf(dir, sizeof dir, "%s", p);
    for (char *s = dir + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(dir, 0755);
            *s = '/';
        }
    if (!text) { /* a folder */
        mkdir(p, 0755);
        return;
    }
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static const char *path(const char *rel)
{
    static char buf[4][PATH_MAX];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, PATH_MAX, "%s/%s", g_root, rel);
    return p;
}

static void assert_file(const PrepFiles *f, size_t i, const char *rel, int label)
{
    const char *want = path(rel);
    if (strcmp(prep_files_path(f, i), want) != 0 || f->labels[i] != label) {
        fprintf(stderr, "file %zu: %s label %d, want %s label %d\n", i, prep_files_path(f, i),
                (int)f->labels[i], want, label);
        fail();
    }
}

static void test_imagefolder_order(void **state)
{
    (void)state;
    PrepClasses classes;
    PrepFiles files;
    Status st = {0};
    assert_int_equal(prep_classes_scan("--train", path("train"), &classes, &st), 0);
    assert_int_equal(classes.n, 4);
    assert_string_equal(classes.names[0], "C_upper"); /* byte order: 'C' < 'a' */
    assert_string_equal(classes.names[1], "a_cls");
    assert_string_equal(classes.names[2], "b_cls");
    assert_string_equal(classes.names[3], "empty_cls");
    assert_int_equal(prep_classes_find(&classes, "b_cls"), 2);
    assert_int_equal(prep_classes_find(&classes, "nope"), -1);

    assert_int_equal(prep_files_scan_classes("--train", path("train"), &classes, 0, &files, &st),
                     0);
    assert_int_equal(files.n, 6);
    assert_file(&files, 0, "train/C_upper/q.jpeg", 0);
    assert_file(&files, 1, "train/a_cls/1.jpg", 1);
    assert_file(&files, 2, "train/b_cls/a.png", 2);
    assert_file(&files, 3, "train/b_cls/z.JPG", 2); /* the folder's files first ... */
    assert_file(&files, 4, "train/b_cls/sub/m.jpeg", 2); /* ... then sub-folders */
    assert_file(&files, 5, "train/b_cls/sub2/deeper/k.jpg", 2);
    assert_int_equal(files.ignored, 1); /* x.gif */

    prep_files_limit(&files, 1, classes.n);
    assert_int_equal(files.n, 3);
    assert_file(&files, 2, "train/b_cls/a.png", 2);
    prep_files_free(&files);

    /* --strict: an empty class folder is an error naming it. */
    assert_int_equal(prep_files_scan_classes("--train", path("train"), &classes, 1, &files, &st),
                     -1);
    assert_int_equal(st.code, 2);
    assert_non_null(strstr(st.msg, "empty_cls: no .jpg/.jpeg/.png files (--strict)"));
    prep_files_free(&files);
    prep_classes_free(&classes);
}

static void test_scan_errors(void **state)
{
    (void)state;
    PrepClasses classes;
    PrepFiles files;
    Status st = {0};
    assert_int_equal(prep_classes_scan("--train", path("missing"), &classes, &st), -1);
    assert_non_null(strstr(st.msg, "--train "));
    assert_non_null(strstr(st.msg, "missing: cannot open folder: No such file or directory"));
    prep_classes_free(&classes);
    Status st2 = {0};
    assert_int_equal(prep_classes_scan("--train", path("valbad/zebra"), &classes, &st2), -1);
    assert_non_null(strstr(st2.msg, "no class folders inside"));
    prep_classes_free(&classes);
    /* A val class folder that train does not have. */
    Status st3 = {0};
    PrepClasses train;
    assert_int_equal(prep_classes_scan("--train", path("train"), &train, &st3), 0);
    assert_int_equal(prep_files_scan_classes("--val", path("valbad"), &train, 0, &files, &st3),
                     -1);
    assert_non_null(strstr(st3.msg, "class folder 'zebra' is not a class of --train"));
    prep_files_free(&files);
    prep_classes_free(&train);
}

static void flat_scan(PrepClasses *classes, PrepFiles *files)
{
    Status st = {0};
    assert_int_equal(prep_classes_scan("--train", path("train"), classes, &st), 0);
    assert_int_equal(prep_files_scan_flat("--val", path("valflat"), files, &st), 0);
    assert_int_equal(files->n, 3);
    assert_int_equal(files->ignored, 1); /* readme.txt; sub-folders are not looked into */
    assert_file(files, 0, "valflat/ILSVRC2012_val_00000001.JPEG", -1);
    assert_file(files, 2, "valflat/ILSVRC2012_val_00000003.JPEG", -1);
}

static void test_kaggle_csv(void **state)
{
    (void)state;
    PrepClasses classes;
    PrepFiles files;
    Status st = {0};
    flat_scan(&classes, &files);
    assert_int_equal(prep_files_label(&files, path("valflat"), path("kaggle.csv"), NULL, &classes,
                                      &st), 0);
    assert_int_equal(files.labels[0], 2); /* b_cls */
    assert_int_equal(files.labels[1], 0); /* C_upper */
    assert_int_equal(files.labels[2], 1); /* a_cls */
    prep_files_free(&files);
    prep_classes_free(&classes);
}

static void test_ground_truth(void **state)
{
    (void)state;
    PrepClasses classes;
    PrepFiles files;
    Status st = {0};
    flat_scan(&classes, &files);
    assert_int_equal(prep_files_label(&files, path("valflat"), path("gt.txt"),
                                      path("synsets.txt"), &classes, &st), 0);
    assert_int_equal(files.labels[0], 1); /* ID 2 -> a_cls */
    assert_int_equal(files.labels[1], 2); /* ID 3 -> b_cls */
    assert_int_equal(files.labels[2], 0); /* ID 1 -> C_upper */
    /* Without the synsets file the error says what is missing. */
    Status st2 = {0};
    assert_int_equal(prep_files_label(&files, path("valflat"), path("gt.txt"), NULL, &classes,
                                      &st2), -1);
    assert_int_equal(st2.code, 2);
    assert_non_null(strstr(st2.msg, "gt.txt holds ILSVRC2012 class IDs"));
    assert_non_null(strstr(st2.msg, "mapping from ID to class folder name is missing"));
    assert_non_null(strstr(st2.msg, "--synsets FILE"));
    prep_files_free(&files);
    prep_classes_free(&classes);
}

static void test_class_names_file(void **state)
{
    (void)state;
    PrepClasses names;
    Status st = {0};
    assert_int_equal(prep_classes_read("--classes", path("names.txt"), &names, &st), 0);
    assert_int_equal(names.n, 3);
    assert_string_equal(names.names[0], "T-shirt/top");
    assert_string_equal(names.names[2], "Pullover");
    prep_classes_free(&names);
    assert_int_equal(prep_classes_read("--classes", path("nothing.txt"), &names, &st), -1);
    assert_non_null(strstr(st.msg, "nothing.txt: No such file"));
}

/* Scans the class folders under rel, which must succeed; a walk that does
 * not end is stopped by the alarm. */
static void scan_ok(const char *rel, PrepClasses *classes, PrepFiles *files)
{
    Status st = {0};
    alarm(30);
    assert_int_equal(prep_classes_scan("--train", path(rel), classes, &st), 0);
    assert_int_equal(prep_files_scan_classes("--train", path(rel), classes, 0, files, &st), 0);
    alarm(0);
}

/* One self-link made every image appear 41 times (until the depth limit),
 * two made the walk endless: each folder is walked once, by identity. */
static void test_symlink_loops(void **state)
{
    (void)state;
    touch("loops/a/1.jpg", "");
    touch("loops/a/sub/2.jpg", "");
    touch("loops/b/3.jpg", "");
    touch("loops/c", NULL);
    assert_int_equal(symlink(".", path("loops/a/self")), 0);
    assert_int_equal(symlink(".", path("loops/b/l1")), 0);
    assert_int_equal(symlink("..", path("loops/b/l2")), 0); /* up to the classes */
    assert_int_equal(symlink("../../b", path("loops/a/sub/to_b")), 0);
    assert_int_equal(rmdir(path("loops/c")), 0);
    assert_int_equal(symlink("a", path("loops/c")), 0); /* a class that is a second link */
    PrepClasses classes;
    PrepFiles files;
    scan_ok("loops", &classes, &files);
    assert_int_equal(files.n, 3);
    assert_file(&files, 0, "loops/a/1.jpg", 0);
    assert_file(&files, 1, "loops/a/sub/2.jpg", 0);
    assert_file(&files, 2, "loops/b/3.jpg", 1); /* in its own class, not through a's link */
    prep_files_free(&files);
    prep_classes_free(&classes);
}

/* FIFOs are left out of listings (a read would block) and refused at once
 * as inputs, also when they bear an image or label file name. */
static void test_fifo_refused(void **state)
{
    (void)state;
    touch("fifo/a/1.jpg", "");
    assert_int_equal(mkfifo(path("fifo/a/pipe.jpg"), 0644), 0);
    assert_int_equal(mkfifo(path("fifo/names.txt"), 0644), 0);
    PrepClasses classes, names;
    PrepFiles files;
    scan_ok("fifo", &classes, &files);
    assert_int_equal(files.n, 1);
    Status st = {0};
    alarm(30);
    assert_file(&files, 0, "fifo/a/1.jpg", 0);
    assert_int_equal(prep_classes_read("--classes", path("fifo/names.txt"), &names, &st), -1);
    assert_non_null(strstr(st.msg, "names.txt: not a regular file (a FIFO)"));
    char why[256];
    assert_int_equal(prep_file_open(path("fifo/a/pipe.jpg"), why, sizeof why), -1);
    assert_string_equal(why, "not a regular file (a FIFO)");
    int fd = prep_file_open(path("fifo/a/1.jpg"), why, sizeof why);
    assert_true(fd >= 0);
    close(fd);
    alarm(0);
    prep_files_free(&files);
    prep_classes_free(&classes);
}

static int rm_visit(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    (void)state;
    nftw(g_root, rm_visit, 16, FTW_DEPTH | FTW_PHYS);
    touch("train/C_upper/q.jpeg", "");
    touch("train/a_cls/1.jpg", "");
    touch("train/b_cls/z.JPG", "");
    touch("train/b_cls/a.png", "");
    touch("train/b_cls/x.gif", "");
    touch("train/b_cls/.hid.jpg", "");
    touch("train/b_cls/sub/m.jpeg", "");
    touch("train/b_cls/sub2/deeper/k.jpg", "");
    touch("train/empty_cls", NULL);
    touch("train/.ipynb_checkpoints/y.jpg", "");
    touch("train/file_at_top.jpg", "");
    touch("valbad/zebra/z.jpg", "");
    touch("valflat/ILSVRC2012_val_00000002.JPEG", "");
    touch("valflat/ILSVRC2012_val_00000001.JPEG", "");
    touch("valflat/ILSVRC2012_val_00000003.JPEG", "");
    touch("valflat/readme.txt", "");
    touch("valflat/sub/ILSVRC2012_val_00000009.JPEG", "");
    touch("kaggle.csv", "\xef\xbb\xbfImageId,PredictionString\r\n"
                        "ILSVRC2012_val_00000003,a_cls 1 2 3 4\r\n"
                        "ILSVRC2012_val_00000001,b_cls 1 2 3 4 b_cls 5 6 7 8\r\n"
                        "ILSVRC2012_val_00000002,C_upper 0 0 1 1\r\n");
    touch("gt.txt", "2\n3 \n1\n\n");
    touch("synsets.txt", "C_upper first\na_cls second, with words\nb_cls\n");
    touch("names.txt", "T-shirt/top\nTrouser  \nPullover\n\n  \n");
    return 0;
}

int main(int argc, char **argv)
{
    (void)argc;
    char self[900];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(g_root, sizeof g_root, "%s/../tmp/test_prep_folder", dirname(self));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_imagefolder_order),
        cmocka_unit_test(test_scan_errors),
        cmocka_unit_test(test_kaggle_csv),
        cmocka_unit_test(test_ground_truth),
        cmocka_unit_test(test_class_names_file),
        cmocka_unit_test(test_symlink_loops),
        cmocka_unit_test(test_fifo_refused),
    };
    return cmocka_run_group_tests_name("prep_folder", tests, setup, NULL);
}
