/* The protecting default domain's mappings, the same on both loaders: RAM (and whatever
 * else the caller lists) one to one, minus the project's reserved region. */
#ifndef BOOT_LOADER_IDENTITY_MAP_H
#define BOOT_LOADER_IDENTITY_MAP_H

#include "iommu/ranges.h"
#include "iommu/slpt.h"

/* Merges ranges[0, n) (capacity entries, n < capacity), cuts [region_pa, region_pa +
 * region_bytes) out, maps what is left read/write one to one into t, and prints each range
 * ("remap: identity [a, b)") and the region left out. *bytes gets the bytes mapped. */
enum iommu_status identity_map_without_region(struct slpt *t, struct addr_range *ranges, unsigned n,
                                              unsigned capacity, uint64_t region_pa, uint64_t region_bytes,
                                              uint64_t *bytes);

#endif
