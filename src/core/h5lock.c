/* h5lock.c - one recursive mutex for all HDF5 calls in the process. */
#include "h5lock.h"

#include <hdf5.h>
#include <pthread.h>

static pthread_mutex_t g_h5_mutex;
static pthread_once_t g_h5_once = PTHREAD_ONCE_INIT;

static void h5_mutex_init(void)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    /* Recursive: a reader holding the lock may call helpers that take it. */
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&g_h5_mutex, &attr);
    pthread_mutexattr_destroy(&attr);
}

void h5_lock(void)
{
    pthread_once(&g_h5_once, h5_mutex_init);
    pthread_mutex_lock(&g_h5_mutex);
}

void h5_unlock(void)
{
    pthread_mutex_unlock(&g_h5_mutex);
}

void h5_quiet(void)
{
    h5_lock();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    h5_unlock();
}
