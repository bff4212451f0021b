#include "loader/identity_map.h"

#include "common/report.h"

enum iommu_status identity_map_without_region(struct slpt *t, struct addr_range *ranges, unsigned n,
                                              unsigned capacity, uint64_t region_pa, uint64_t region_bytes,
                                              uint64_t *bytes)
{
    n = ranges_merge(ranges, n);
    n = ranges_remove(ranges, n, capacity, region_pa, region_pa + region_bytes);
    enum iommu_status st = n < capacity ? ranges_identity_map(t, ranges, n, SLPT_READ | SLPT_WRITE) : IOMMU_ENOMEM;
    *bytes = 0;
    for (unsigned i = 0; i < n && n < capacity; i++) {
        *bytes += ranges[i].end - ranges[i].base;
        sink_printf(out, "remap: identity [0x%lx, 0x%lx)\n", ranges[i].base, ranges[i].end);
    }
    sink_printf(out, "remap: reserved region [0x%lx, 0x%lx) left out of the default domain\n", region_pa,
                region_pa + region_bytes);
    return st;
}
