/* version.h - the program version every binary reports with --version. Local. */
#ifndef RESNET_VERSION_H
#define RESNET_VERSION_H

#include <stddef.h>

#define RESNET_VERSION "0.1.0"

/* "resnet-dist 0.1.0 (oneDNN 2.6.3, Open MPI v4.1.4, HDF5 1.10.8)": for
 * --version, the start-up log and checkpoints. Allowed before MPI_Init. */
void version_string(char *out, size_t len);

#endif
