/*
 * prep_folder.h - lists image files the way torchvision's ImageFolder does,
 * and labels a flat validation folder from ImageNet's label files.
 *
 * - Classes are the sub-folders of the training folder in sorted (byte)
 *   order; class index = position. Hidden entries (".name") are ignored.
 * - Inside a class folder every file whose name ends in .jpg, .jpeg or .png
 *   (any case) is taken, recursing into sub-folders and following symlinks,
 *   ordered by (folder path, file name) as sorted(os.walk(...)) gives.
 * - A flat folder is labelled by Kaggle's LOC_val_solution.csv
 *   (ImageId,PredictionString; the first token of the string is the wnid) or
 *   by the devkit's ILSVRC2012_validation_ground_truth.txt (one ILSVRC2012
 *   ID per line in sorted file order), whose IDs need a synsets file (line i
 *   = the wnid of ID i; the first token of each line is used).
 *
 * The scanning functions are local (run them on rank 0) and report user
 * errors in a Status; prep_files_bcast/prep_classes_bcast are collective.
 */
#ifndef RESNET_PREP_FOLDER_H
#define RESNET_PREP_FOLDER_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct {
    int n;
    char **names; /* sorted */
} PrepClasses;

/* Image files with their labels, in dataset order. */
typedef struct {
    size_t n;
    char *paths;   /* n NUL-terminated paths, back to back */
    size_t *off;   /* path i starts at paths + off[i] */
    int32_t *labels;
    size_t paths_len, cap, paths_cap;
    uint64_t ignored; /* files skipped for their extension */
} PrepFiles;

const char *prep_files_path(const PrepFiles *files, size_t i);
/* Appends one path with its label. */
void prep_files_push(PrepFiles *files, const char *path, int32_t label);

/* In the scanning functions `flag` ("--train", "--val") names the user's
 * option in error messages. */

/* The class folders of dir. Error if dir is missing or has none. */
int prep_classes_scan(const char *flag, const char *dir, PrepClasses *out, Status *st);
/* Class names from a text file, one per line in label order (trailing
 * blanks and trailing empty lines dropped), for sets whose names come with
 * them. Such a list is not sorted: do not prep_classes_find in it. */
int prep_classes_read(const char *flag, const char *path, PrepClasses *out, Status *st);
/* Index of name in sorted classes, or -1. */
int prep_classes_find(const PrepClasses *classes, const char *name);
void prep_classes_free(PrepClasses *classes);

/* Every image under dir/<class>/ for the sub-folders of dir. Each sub-folder
 * must be one of `classes` (its label). A class folder without images is a
 * warning, or an error if strict. */
int prep_files_scan_classes(const char *flag, const char *dir, const PrepClasses *classes,
                            int strict, PrepFiles *out, Status *st);

/* Every image under dir, recursing as in a class folder and in the same
 * order, labels unset (-1); none is not an error. */
int prep_files_scan_tree(const char *flag, const char *dir, PrepFiles *out, Status *st);

/* The images directly inside dir, sorted by name, labels unset (-1). */
int prep_files_scan_flat(const char *flag, const char *dir, PrepFiles *out, Status *st);

/* Labels a flat listing from labels_path (format detected from its content:
 * Kaggle CSV or devkit ground truth, the latter mapped by synsets_path). */
int prep_files_label(PrepFiles *files, const char *dir, const char *labels_path,
                     const char *synsets_path, const PrepClasses *classes, Status *st);

/* Keeps the first `limit` files of each label, in order (limit 0: all). */
void prep_files_limit(PrepFiles *files, int limit, int num_classes);
void prep_files_free(PrepFiles *files);

/* Collective: rank root's list/classes are copied to every rank. */
void prep_files_bcast(PrepFiles *files, int root);
void prep_classes_bcast(PrepClasses *classes, int root);

#endif
