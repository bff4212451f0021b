/* The bound of one poll loop on a unit's registers or memory it writes: every driver's
 * wait ends, with IOMMU_ETIMEDOUT, when the hardware does not answer in time. The clock
 * starts at the first miss: most waits are over at the first look, and reading the clock
 * is not free. */
#ifndef IOMMU_POLL_H
#define IOMMU_POLL_H

#include <stdbool.h>
#include <stdint.h>

#include "platform.h"

struct poll_bound {
    bool started;
    uint64_t start;
};

/* Whether timeout_ns have passed since the first call for b (which starts the clock). */
static inline bool poll_bound_expired(const struct platform *p, struct poll_bound *b, uint64_t timeout_ns)
{
    uint64_t t = p->now_ns(p->ctx);
    if (!b->started) {
        b->started = true;
        b->start = t;
        return false;
    }
    return t - b->start > timeout_ns;
}

#endif
