/* iommu-hv guest SDK: the hypercall ABI under the protocol (VMMCALL, CPUID leaves
 * 0x40000000/1, the call blocks; docs/hypercall.md). A payload that uses the protocol
 * (iommu_hv/ddi_protocol.h) never needs it; it is here for those writing their own shim.
 * The declarations live in ddi/include/ddi/hypercall.h, shared with the hypervisor. */
#include "ddi/hypercall.h"
