/* rng — a small, seedable random generator (xoshiro256** seeded by
 * splitmix64), so a --seed reproduces the same city. Header-only: every
 * function is a few arithmetic operations. Not for secrets. */
#ifndef CITYSIM_RNG_H
#define CITYSIM_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} rng;

static inline uint64_t rng__splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline void rng_seed(rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = rng__splitmix(&seed);
}

static inline uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t x = s[1] * 5, result = ((x << 7) | (x >> 57)) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}

/* Uniform in [0, 1). */
static inline double rng_unit(rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

static inline double rng_range(rng *r, double lo, double hi)
{
    return lo + (hi - lo) * rng_unit(r);
}

/* Uniform in [0, n); n > 0. */
static inline uint64_t rng_below(rng *r, uint64_t n)
{
    return rng_next(r) % n;
}

/* Standard normal (Box-Muller). */
static inline double rng_normal(rng *r)
{
    double u = rng_unit(r), v = rng_unit(r);
    return sqrt(-2.0 * log(u > 0 ? u : 1e-300)) * cos(6.283185307179586 * v);
}

#endif
