/*
 * h5util.h - HDF5 reading helpers shared by the checkpoint and dataset
 * readers: a type or shape as text for error messages, and files, datasets
 * and attributes opened, checked and read with HDF5's own error printing
 * suppressed. The helpers say what they found (H5utilFound); each caller
 * words the message for its user, because the two formats explain
 * themselves differently.
 *
 * Local. Nothing here takes the HDF5 lock: callers hold h5_lock()
 * (h5lock.h) around every call, as they do around their own HDF5 calls.
 */
#ifndef RESNET_H5UTIL_H
#define RESNET_H5UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <hdf5.h>

/* Room for h5util_type_string and for a shape of a few dimensions. */
#define H5UTIL_DESC_MAX 96

/* "(16, 8, 3, 3)", "(8,)", "()": a shape as Python prints a tuple. */
void h5util_shape_string(char *out, size_t len, int ndims, const int64_t *dims);

/* "float32", "uint8", "int64", "string", "enum (bool?)" or "a non-numeric
 * type": an element type for messages. */
void h5util_type_string(char *out, size_t len, hid_t type);

/* 1 when the link name exists under loc; 0 when not, also when a group on
 * the way to it does not. */
int h5util_link_exists(hid_t loc, const char *name);

/* Opens path read-only: the file, or -1 with *is_h5 0 when path is not an
 * HDF5 file at all, 1 when it is one that HDF5 cannot open, and
 * H5UTIL_NOT_REGULAR when path is not a regular file (a FIFO, device or
 * directory: refused before anything opens it, since opening a FIFO blocks
 * until someone writes to it). */
#define H5UTIL_NOT_REGULAR (-1)
hid_t h5util_file_open(const char *path, int *is_h5);
/* Closes *file unless it is negative, and sets it to -1. */
void h5util_file_close(hid_t *file);

typedef enum {
    H5UTIL_OK,
    H5UTIL_MISSING,    /* no dataset or attribute of that name */
    H5UTIL_UNOPENABLE, /* it exists, but it, its type or its dataspace cannot be opened */
    H5UTIL_WRONG_TYPE, /* another element type, or (attributes) too many or no values */
    H5UTIL_READ_FAILED,
    H5UTIL_REFUSED_STORAGE, /* its data lives outside this file: found->storage says how */
} H5utilProblem;

/* What an open or a read found; the fields after problem are set once the
 * object was opened (problem H5UTIL_OK, H5UTIL_WRONG_TYPE, H5UTIL_READ_FAILED). */
typedef struct {
    H5utilProblem problem;
    H5T_class_t cls;             /* the element type's class */
    char type[H5UTIL_DESC_MAX];  /* the element type, from h5util_type_string */
    int64_t npoints;             /* how many values */
    int rank;                    /* the shape (rank 0: a scalar) */
    int64_t dims[H5S_MAX_RANK];
    const char *storage;         /* H5UTIL_REFUSED_STORAGE: "an external link", "external
                                  * raw storage" or "a virtual dataset" */
} H5utilFound;

/* An element type to accept. size 0 accepts any size and signedness of
 * class cls; otherwise size must match and, for integers, sign too. */
typedef struct {
    H5T_class_t cls;
    size_t size;
    H5T_sign_t sign;
} H5utilType;

/* Opens dataset name under loc and checks its element type against want:
 * the dataset with found's shape set, or -1 with found->problem saying why.
 * Data that lives outside the file is refused (H5UTIL_REFUSED_STORAGE)
 * before any of it is read: an external link anywhere on the path (refused
 * before HDF5 opens the other file), external raw storage, and virtual
 * datasets. Such data can point at a FIFO (a read that never returns) or at
 * files that change under a run, and no writer of our formats makes it. */
hid_t h5util_dataset_open(hid_t loc, const char *name, H5utilType want, H5utilFound *found);
/* Reads all of ds as mem_type into out; 0, or -1 when HDF5 cannot. */
int h5util_dataset_read(hid_t ds, hid_t mem_type, void *out);
/* Closes *ds unless it is negative, and sets it to -1. */
void h5util_dataset_close(hid_t *ds);

/* Reads attribute name of loc, which must hold 1 to max values of class
 * cls, as mem_type into out; 0 with found->npoints values read, or -1 with
 * found->problem saying why. */
int h5util_attr_read(hid_t loc, const char *name, H5T_class_t cls, int64_t max, hid_t mem_type,
                     void *out, H5utilFound *found);

/* Reads string attribute name of loc (one value: fixed or variable length,
 * ASCII or UTF-8, whatever the writer chose) into out, truncated to len;
 * 0, or -1 with found->problem saying why. */
int h5util_attr_read_string(hid_t loc, const char *name, char *out, size_t len,
                            H5utilFound *found);

/* Arrays of strings (fixed or variable length, ASCII or UTF-8): at most
 * this many bytes of fixed-length strings are read at once. */
#define H5UTIL_STRINGS_MAX_BYTES ((uint64_t)64 << 20)

/* Reads string attribute name of loc, holding 1 to max strings, into *out:
 * *n malloc'd strings (free with h5util_strings_free, also after a failed
 * read). 0, or -1 with found->problem saying why. */
int h5util_attr_read_strings(hid_t loc, const char *name, int64_t max, char ***out, int64_t *n,
                             H5utilFound *found);
/* Reads the n strings of a string dataset (opened with h5util_dataset_open,
 * n its number of values) into out[0..n), each malloc'd (empty after a
 * failure); 0 or -1. */
int h5util_dataset_read_strings(hid_t ds, int64_t n, char **out);
void h5util_strings_free(char **s, int64_t n);

#endif
