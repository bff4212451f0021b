#include "loader/expected_faults.h"

bool expect_faults(struct iommu_unit *const *units, unsigned n,
                   void (*print)(const struct iommu_unit *u, const struct iommu_fault_record *f),
                   const struct iommu_unit *unit, uint32_t sid, uint8_t reason, bool write, uint64_t iova,
                   struct fault_count *count)
{
    unsigned matching = 0, other = 0;
    for (unsigned i = 0; i < n; i++) {
        iommu_unit_drain_faults(units[i]);
        struct iommu_fault_record f;
        while (iommu_unit_take_fault(units[i], &f)) {
            print(units[i], &f);
            count->seen++;
            if (reason && units[i] == unit && f.sid == sid && f.reason == reason && f.write == write &&
                f.address == (iova & ~(uint64_t)(PAGE_SIZE - 1)))
                matching++;
            else
                other++;
        }
    }
    if (reason)
        count->expected++;
    count->unexpected += other;
    return other == 0 && matching == (reason ? 1u : 0u);
}
