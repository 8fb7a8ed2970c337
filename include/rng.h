/*
 * rng.h - deterministic random numbers. Streams are derived from integers
 * (seed, epoch, global sample index, tensor index) by hashing, so results do
 * not depend on the number of ranks or on the order of calls. Local.
 */
#ifndef RESNET_RNG_H
#define RESNET_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} Rng;

/* A well-mixed 64-bit value from up to three keys. */
uint64_t rng_hash(uint64_t a, uint64_t b, uint64_t c);
void rng_seed(Rng *r, uint64_t a, uint64_t b, uint64_t c);
uint64_t rng_next(Rng *r);
double rng_uniform(Rng *r);              /* [0, 1) */
double rng_normal(Rng *r);               /* N(0, 1) */
uint64_t rng_below(Rng *r, uint64_t n);  /* uniform in [0, n) without bias */

#endif
