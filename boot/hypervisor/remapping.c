/* See boot/hypervisor/remapping.h. Runs in the loader and in the host alike. */
#include "hypervisor/remapping.h"

#include "common/report.h"

void remap_print_fault(const struct iommu_unit *u, const struct iommu_fault_record *f)
{
#if defined(__aarch64__)
    char merged[48] = "";
    if (f->records > 1)
        fmt_format(merged, sizeof merged, ", %u events of one transfer", f->records);
    sink_printf(out, "fault: %s[%u] stream 0x%04x %s 0x%lx event 0x%02x (%s)%s\n", u->name, u->index, f->sid,
                f->write ? "write" : "read", f->address, f->reason, u->ops->fault_reason_name(f->reason), merged);
#else
    sink_printf(out, "fault: %s[%u] sid %02x:%02x.%x %s 0x%lx reason %u (%s)\n", u->name, u->index, f->sid >> 8,
                (f->sid >> 3) & 0x1f, f->sid & 7, f->write ? "write" : "read", f->address, f->reason,
                u->ops->fault_reason_name(f->reason));
#endif
}

void remap_drain_faults(struct remapping *r)
{
    for (unsigned i = 0; i < r->units; i++)
        iommu_unit_drain_faults(r->unit_ptr[i]);
}
