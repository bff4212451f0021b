/* The project's pseudo-random numbers (xorshift64): for tests, the benchmark and the
 * self-test's random hypercalls. The same sequence on every host, so that a seed replays;
 * the state is the caller's (never 0), one per thread. Not for anything secret. */
#ifndef IOMMU_PRNG_H
#define IOMMU_PRNG_H

#include <stdint.h>

static inline uint64_t prng_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

#endif
