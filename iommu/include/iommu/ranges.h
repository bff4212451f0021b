/* Physical address ranges: the memory a default domain maps one to one.
 *
 * The loader collects RAM from the UEFI memory map and RMRR regions from the DMAR,
 * merges them, removes the memory the project reserved for itself, and identity-maps
 * the rest. */
#ifndef IOMMU_RANGES_H
#define IOMMU_RANGES_H

#include <stdint.h>

#include "slpt.h"
#include "status.h"

struct addr_range {
    uint64_t base, end; /* [base, end) */
};

/* Rounds each range out to whole pages, sorts, and merges overlapping or touching ones;
 * empty ranges disappear. Returns the new count. */
unsigned ranges_merge(struct addr_range *r, unsigned n);

/* Removes [base, end) from merged ranges. One range may split in two, so the array must
 * have room for one more; returns the new count, or 'capacity' + 1 when it had none. */
unsigned ranges_remove(struct addr_range *r, unsigned n, unsigned capacity, uint64_t base, uint64_t end);

/* Maps every range to itself with perm. All or nothing. */
enum iommu_status ranges_identity_map(struct slpt *t, const struct addr_range *r, unsigned n, unsigned perm);

#endif
