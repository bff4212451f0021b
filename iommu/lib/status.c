#include "iommu/status.h"

const char *iommu_status_name(enum iommu_status s)
{
    static const char *const names[] = {"ok", "invalid argument", "out of range", "overlaps a mapping",
                                        "out of table memory", "timed out", "no such device",
                                        "busy", "hardware error", "window cannot hold the block"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown status";
}
