/*
 * h5lock.h - the process-wide lock around every HDF5 call. Debian's parallel
 * HDF5 is built without thread safety, and the loader thread and the
 * checkpoint writer both use it. Local.
 */
#ifndef RESNET_H5LOCK_H
#define RESNET_H5LOCK_H

void h5_lock(void);
void h5_unlock(void);

/* Turns off HDF5's automatic error stack printing (we report our own). */
void h5_quiet(void);

#endif
