/* version.c - the program and library versions, one line. */
#include "version.h"

#include <dnnl.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "h5lock.h"

void version_string(char *out, size_t len)
{
    const dnnl_version_t *dv = dnnl_version();
    unsigned maj = 0, min = 0, rel = 0;
    h5_lock();
    H5_CHECK(H5get_libversion(&maj, &min, &rel));
    h5_unlock();
    char mpi[MPI_MAX_LIBRARY_VERSION_STRING];
    int n = 0;
    MPI_CHECK(MPI_Get_library_version(mpi, &n));
    mpi[strcspn(mpi, ",\n")] = '\0'; /* keep "Open MPI v4.1.4" */
    snprintf(out, len, "resnet-dist %s (oneDNN %d.%d.%d, %.128s, HDF5 %u.%u.%u)", RESNET_VERSION,
             dv->major, dv->minor, dv->patch, mpi, maj, min, rel);
}
