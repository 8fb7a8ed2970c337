/*
 * hash.h - FNV-1a 64, the one hash for identities that every rank and every
 * machine must compute alike: dataset fingerprints, command lines and
 * parameter checksums. Not for security. Local, pure.
 */
#ifndef RESNET_HASH_H
#define RESNET_HASH_H

#include <stddef.h>
#include <stdint.h>

/* The FNV-1a 64 offset basis: the h to start a hash with. */
#define HASH_FNV1A_START 0xcbf29ce484222325ULL

/* h extended by the n bytes at data. */
uint64_t hash_fnv1a(uint64_t h, const void *data, size_t n);

#endif
