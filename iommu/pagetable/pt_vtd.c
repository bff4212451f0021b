/* Intel VT-d second-level paging entries (VT-d specification 9.8): bit 0 read, bit 1 write,
 * bit 7 page size, bits 51:12 the address. Bit 2 (execute) is not used: no request with
 * PASID reaches second-level tables here. */
#include "iommu/pt_format.h"

#include "iommu/slpt.h"

const struct pt_format pt_vtd_second_level = {
    .name = "VT-d second-level",
    .read = SLPTE_R,
    .write = SLPTE_W,
    .leaf_size = SLPTE_PS,
    .table = SLPTE_R | SLPTE_W, /* a table pointer allows both: the leaves decide */
    .always = 0,
    .address = SLPTE_ADDR,
    .perms = 1u << SLPT_READ | 1u << SLPT_WRITE | 1u << (SLPT_READ | SLPT_WRITE),
};
