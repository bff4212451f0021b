/* The edu demonstrations' check of what a DMA left in the units' fault logs, the same on
 * both loaders (edu_demo.c, arm64/edu_demo.c). */
#ifndef BOOT_LOADER_EXPECTED_FAULTS_H
#define BOOT_LOADER_EXPECTED_FAULTS_H

#include <stdbool.h>
#include <stdint.h>

#include "iommu/unit.h"

struct fault_count {
    unsigned expected, seen, unexpected;
};

/* Drains every unit, prints each fault with print, and returns whether the faults were
 * exactly one from 'unit' for stream sid with this reason, direction and the page of iova
 * (reason 0: none at all). Counts into *count. */
bool expect_faults(struct iommu_unit *const *units, unsigned n,
                   void (*print)(const struct iommu_unit *u, const struct iommu_fault_record *f),
                   const struct iommu_unit *unit, uint32_t sid, uint8_t reason, bool write, uint64_t iova,
                   struct fault_count *count);

#endif
