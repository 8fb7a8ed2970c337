/*
 * prep_file.h - opening prep's input files without ever blocking: only
 * regular files are read. A FIFO, socket or device in an image folder or
 * given as a label/data file would make read() (or even open()) wait
 * forever, so such an entry is refused with a reason instead. Local.
 */
#ifndef RESNET_PREP_FILE_H
#define RESNET_PREP_FILE_H

#include <stddef.h>
#include <sys/stat.h>

/* "a FIFO", "a socket", "a character device", "a block device", "a folder"
 * or "not a regular file": what a file of this mode is, for messages. */
const char *prep_file_kind(mode_t mode);

/* Opens path read-only. The open itself cannot block (O_NONBLOCK), and the
 * opened file is checked with fstat, so a file swapped for a FIFO after a
 * listing saw it is caught too. Returns the descriptor (blocking mode
 * restored), or -1 with why = strerror's reason or "not a regular file (a
 * FIFO)". */
int prep_file_open(const char *path, char *why, size_t len);

#endif
