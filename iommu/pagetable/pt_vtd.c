/* Intel VT-d second-level paging entries (VT-d specification 9.8): bit 0 read, bit 1 write,
 * bit 7 page size, bits 51:12 the address. Bit 2 (execute) is not used: no request with
 * PASID reaches second-level tables here. */
#include "iommu/pt_format.h"

#include "iommu/slpt.h"

const struct pt_format pt_vtd_second_level = {
    .name = "VT-d second-level",
    .perm = {[SLPT_READ] = SLPTE_R, [SLPT_WRITE] = SLPTE_W, [SLPT_READ | SLPT_WRITE] = SLPTE_R | SLPTE_W},
    .perms = 1u << SLPT_READ | 1u << SLPT_WRITE | 1u << (SLPT_READ | SLPT_WRITE),
    .page = 0,
    .block = SLPTE_PS,
    .leaf_mask = SLPTE_PS,
    .leaf_value = SLPTE_PS,
    .table = SLPTE_R | SLPTE_W, /* a table pointer allows both: the leaves decide */
    .address = SLPTE_ADDR,
};
