/* hash.c - FNV-1a 64 (see hash.h). */
#include "hash.h"

uint64_t hash_fnv1a(uint64_t h, const void *data, size_t n)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}
