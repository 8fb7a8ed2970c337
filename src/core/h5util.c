/* h5util.c - HDF5 reading helpers shared by the checkpoint and dataset
 * readers. Callers hold h5_lock(). */
#include "h5util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"

void h5util_shape_string(char *out, size_t len, int ndims, const int64_t *dims)
{
    size_t used = (size_t)snprintf(out, len, "(");
    for (int d = 0; d < ndims && used < len; d++)
        used += (size_t)snprintf(out + used, len - used, d ? ", %lld" : "%lld",
                                 (long long)dims[d]);
    if (used < len)
        snprintf(out + used, len - used, ndims == 1 ? ",)" : ")");
}

void h5util_type_string(char *out, size_t len, hid_t type)
{
    size_t bits = 8 * H5Tget_size(type);
    switch (H5Tget_class(type)) {
    case H5T_INTEGER:
        snprintf(out, len, "%sint%zu", H5Tget_sign(type) == H5T_SGN_NONE ? "u" : "", bits);
        break;
    case H5T_FLOAT: snprintf(out, len, "float%zu", bits); break;
    case H5T_STRING: snprintf(out, len, "string"); break;
    case H5T_ENUM: snprintf(out, len, "enum (bool?)"); break;
    default: snprintf(out, len, "a non-numeric type"); break;
    }
}

int h5util_link_exists(hid_t loc, const char *name)
{
    htri_t yes;
    H5E_BEGIN_TRY { yes = H5Lexists(loc, name, H5P_DEFAULT); }
    H5E_END_TRY;
    return yes > 0;
}

hid_t h5util_file_open(const char *path, int *is_h5)
{
    hid_t file = -1;
    htri_t yes = -1;
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        *is_h5 = H5UTIL_NOT_REGULAR;
        return -1;
    }
    H5E_BEGIN_TRY
    {
        yes = H5Fis_hdf5(path);
        if (yes > 0)
            file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    }
    H5E_END_TRY;
    *is_h5 = yes > 0;
    return file;
}

void h5util_file_close(hid_t *file)
{
    if (*file < 0)
        return;
    H5E_BEGIN_TRY { H5Fclose(*file); }
    H5E_END_TRY;
    *file = -1;
}

/* ------------------------------------------------------------------ */
/* opening with checks                                                 */

static void found_init(H5utilFound *f)
{
    memset(f, 0, sizeof *f);
    f->problem = H5UTIL_OK;
    f->cls = H5T_NO_CLASS;
}

/* Records an opened object's element type and shape. */
static void found_describe(H5utilFound *f, hid_t type, hid_t space)
{
    hsize_t hd[H5S_MAX_RANK];
    f->cls = H5Tget_class(type);
    h5util_type_string(f->type, sizeof f->type, type);
    f->npoints = (int64_t)H5Sget_simple_extent_npoints(space);
    f->rank = H5Sget_simple_extent_dims(space, hd, NULL);
    for (int d = 0; d < f->rank; d++)
        f->dims[d] = (int64_t)hd[d];
}

static int type_matches(hid_t type, H5utilType want)
{
    if (H5Tget_class(type) != want.cls)
        return 0;
    if (want.size == 0)
        return 1;
    return H5Tget_size(type) == want.size &&
           (want.cls != H5T_INTEGER || H5Tget_sign(type) == want.sign);
}

/* Records what an open found and closes type and space; 1 when the object
 * id is open and passed the check, 0 when the caller must close it. */
static int found_settle(H5utilFound *f, hid_t id, hid_t type, hid_t space, int type_ok)
{
    if (f->problem == H5UTIL_OK && (id < 0 || type < 0 || space < 0))
        f->problem = H5UTIL_UNOPENABLE;
    if (f->problem == H5UTIL_OK) {
        found_describe(f, type, space);
        if (!type_ok)
            f->problem = H5UTIL_WRONG_TYPE;
    }
    H5E_BEGIN_TRY
    {
        H5Tclose(type);
        H5Sclose(space);
    }
    H5E_END_TRY;
    return f->problem == H5UTIL_OK;
}

/* HDF5 calls this before it opens the file an external link points to;
 * failing makes the traversal fail, so the other file is never opened. */
static herr_t refuse_external_link(const char *parent_file, const char *parent_group,
                                   const char *child_file, const char *child_object,
                                   unsigned *acc_flags, hid_t fapl, void *op_data)
{
    (void)parent_file, (void)parent_group, (void)child_file, (void)child_object;
    (void)acc_flags, (void)fapl;
    *(int *)op_data = 1;
    return -1;
}

/* The reason an opened dataset's data lives outside its file, or NULL. */
static const char *storage_outside(hid_t ds)
{
    const char *why = NULL;
    H5E_BEGIN_TRY
    {
        hid_t dcpl = H5Dget_create_plist(ds);
        if (dcpl < 0)
            why = "unknown storage";
        else if (H5Pget_layout(dcpl) == H5D_VIRTUAL)
            why = "a virtual dataset";
        else if (H5Pget_external_count(dcpl) != 0)
            why = "external raw storage";
        H5Pclose(dcpl);
    }
    H5E_END_TRY;
    return why;
}

hid_t h5util_dataset_open(hid_t loc, const char *name, H5utilType want, H5utilFound *found)
{
    hid_t ds = -1, type = -1, space = -1;
    int external = 0;
    found_init(found);
    H5E_BEGIN_TRY
    {
        hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS); /* a link access list too */
        if (dapl < 0 || H5Pset_elink_cb(dapl, refuse_external_link, &external) < 0)
            found->problem = H5UTIL_UNOPENABLE;
        else if (H5Lexists(loc, name, dapl) <= 0 && !external)
            found->problem = H5UTIL_MISSING;
        else if (!external)
            ds = H5Dopen2(loc, name, dapl);
        H5Pclose(dapl);
        if (ds >= 0) {
            type = H5Dget_type(ds);
            space = H5Dget_space(ds);
        }
    }
    H5E_END_TRY;
    if (external) {
        found->problem = H5UTIL_REFUSED_STORAGE;
        found->storage = "an external link";
    } else if (ds >= 0 && (found->storage = storage_outside(ds)) != NULL) {
        found->problem = H5UTIL_REFUSED_STORAGE;
    }
    if (!found_settle(found, ds, type, space, type >= 0 && type_matches(type, want)))
        h5util_dataset_close(&ds);
    return ds;
}

int h5util_dataset_read(hid_t ds, hid_t mem_type, void *out)
{
    herr_t ret;
    H5E_BEGIN_TRY { ret = H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out); }
    H5E_END_TRY;
    return ret < 0 ? -1 : 0;
}

void h5util_dataset_close(hid_t *ds)
{
    if (*ds < 0)
        return;
    H5E_BEGIN_TRY { H5Dclose(*ds); }
    H5E_END_TRY;
    *ds = -1;
}

/* Opens attribute name of loc if it holds 1 to max values of class cls. */
static hid_t attr_open(hid_t loc, const char *name, H5T_class_t cls, int64_t max,
                       H5utilFound *f)
{
    hid_t attr = -1, type = -1, space = -1;
    found_init(f);
    H5E_BEGIN_TRY
    {
        if (H5Aexists(loc, name) <= 0)
            f->problem = H5UTIL_MISSING;
        else
            attr = H5Aopen(loc, name, H5P_DEFAULT);
        if (attr >= 0) {
            type = H5Aget_type(attr);
            space = H5Aget_space(attr);
        }
    }
    H5E_END_TRY;
    int type_ok = 0;
    if (type >= 0 && space >= 0) {
        hssize_t n = H5Sget_simple_extent_npoints(space);
        type_ok = H5Tget_class(type) == cls && n >= 1 && n <= max;
    }
    if (found_settle(f, attr, type, space, type_ok))
        return attr;
    H5E_BEGIN_TRY { H5Aclose(attr); }
    H5E_END_TRY;
    return -1;
}

int h5util_attr_read(hid_t loc, const char *name, H5T_class_t cls, int64_t max, hid_t mem_type,
                     void *out, H5utilFound *found)
{
    hid_t attr = attr_open(loc, name, cls, max, found);
    if (attr < 0)
        return -1;
    herr_t ret;
    H5E_BEGIN_TRY
    {
        ret = H5Aread(attr, mem_type, out);
        H5Aclose(attr);
    }
    H5E_END_TRY;
    if (ret < 0)
        found->problem = H5UTIL_READ_FAILED;
    return ret < 0 ? -1 : 0;
}

int h5util_attr_read_string(hid_t loc, const char *name, char *out, size_t len,
                            H5utilFound *found)
{
    hid_t attr = attr_open(loc, name, H5T_STRING, 1, found);
    if (attr < 0)
        return -1;
    herr_t ret = -1;
    H5E_BEGIN_TRY
    {
        hid_t ftype = H5Aget_type(attr);
        hid_t mtype = H5Tcopy(ftype); /* HDF5 does not convert ASCII <-> UTF-8 */
        if (H5Tis_variable_str(ftype) > 0) {
            char *s = NULL;
            ret = H5Aread(attr, mtype, &s);
            if (ret >= 0)
                snprintf(out, len, "%s", s ? s : "");
            if (s)
                H5free_memory(s);
        } else {
            size_t n = H5Tget_size(ftype);
            char *buf = xcalloc(n + 1, 1);
            ret = H5Aread(attr, mtype, buf);
            if (ret >= 0)
                snprintf(out, len, "%s", buf);
            free(buf);
        }
        H5Tclose(mtype);
        H5Tclose(ftype);
        H5Aclose(attr);
    }
    H5E_END_TRY;
    if (ret < 0)
        found->problem = H5UTIL_READ_FAILED;
    return ret < 0 ? -1 : 0;
}

/* n strings of obj (an attribute when is_attr, else a dataset) of file type
 * ftype into out[0..n), each malloc'd (empty when the read fails); 0 or -1.
 * Fixed-length strings declaring more than H5UTIL_STRINGS_MAX_BYTES in all
 * are refused before anything is allocated. */
static int strings_read(hid_t obj, int is_attr, hid_t ftype, int64_t n, char **out)
{
    herr_t ret = -1;
    int var = H5Tis_variable_str(ftype) > 0;
    size_t len = var ? sizeof(char *) : H5Tget_size(ftype);
    if (len == 0 || (uint64_t)n > H5UTIL_STRINGS_MAX_BYTES / len)
        return -1;
    char *buf = xcalloc((size_t)n, len);
    hid_t mtype = H5Tcopy(ftype); /* HDF5 does not convert ASCII <-> UTF-8 */
    if (mtype >= 0)
        ret = is_attr ? H5Aread(obj, mtype, buf)
                      : H5Dread(obj, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    for (int64_t i = 0; i < n; i++) {
        if (var) {
            char *s = ((char **)(void *)buf)[i];
            out[i] = xstrdup(ret >= 0 && s ? s : "");
            if (ret >= 0 && s)
                H5free_memory(s);
        } else {
            out[i] = xcalloc(len + 1, 1);
            if (ret >= 0)
                memcpy(out[i], buf + (size_t)i * len, len);
        }
    }
    if (mtype >= 0)
        H5Tclose(mtype);
    free(buf);
    return ret < 0 ? -1 : 0;
}

int h5util_attr_read_strings(hid_t loc, const char *name, int64_t max, char ***out, int64_t *n,
                             H5utilFound *found)
{
    *out = NULL;
    *n = 0;
    hid_t attr = attr_open(loc, name, H5T_STRING, max, found);
    if (attr < 0)
        return -1;
    int ret = -1;
    H5E_BEGIN_TRY
    {
        hid_t ftype = H5Aget_type(attr);
        *n = found->npoints;
        *out = xcalloc((size_t)*n, sizeof **out);
        ret = strings_read(attr, 1, ftype, *n, *out);
        H5Tclose(ftype);
        H5Aclose(attr);
    }
    H5E_END_TRY;
    if (ret < 0)
        found->problem = H5UTIL_READ_FAILED;
    return ret;
}

int h5util_dataset_read_strings(hid_t ds, int64_t n, char **out)
{
    int ret = -1;
    H5E_BEGIN_TRY
    {
        hid_t ftype = H5Dget_type(ds);
        if (ftype >= 0 && H5Tget_class(ftype) == H5T_STRING)
            ret = strings_read(ds, 0, ftype, n, out);
        else
            for (int64_t i = 0; i < n; i++)
                out[i] = xstrdup("");
        H5Tclose(ftype);
    }
    H5E_END_TRY;
    return ret;
}

void h5util_strings_free(char **s, int64_t n)
{
    for (int64_t i = 0; s && i < n; i++)
        free(s[i]);
    free(s);
}
