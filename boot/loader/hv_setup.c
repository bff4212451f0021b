/* See boot/loader/hv_setup.h: the hypervisor's preparation and launch as far as they need
 * the firmware (the memory map, the MP services); the rest is the hypervisor's own. */
#include "loader/hv_setup.h"

#include <efilib.h>

#include "common/mp_services.h"
#include "hypervisor/arch.h"
#include "iommu/ranges.h"

#define MAX_RANGES 512

/* Guest RAM for the hypercall server: the memory map's RAM without the hypervisor's (the
 * reserved region and the loader image); and the end of the highest range. */
static void guest_ram(struct hv_setup *s)
{
    static struct addr_range ranges[MAX_RANGES + 1];
    unsigned n = 0;
    UINTN entries, key, size;
    UINT32 version;
    EFI_MEMORY_DESCRIPTOR *map = LibMemoryMap(&entries, &key, &size, &version);
    s->top = 0;
    for (UINTN i = 0; map && i < entries; i++) {
        const EFI_MEMORY_DESCRIPTOR *d = (const EFI_MEMORY_DESCRIPTOR *)((const UINT8 *)map + i * size);
        uint64_t end = d->PhysicalStart + d->NumberOfPages * PAGE_SIZE;
        if (end > s->top)
            s->top = end;
        if (uefi_memory_is_ram(d->Type) && n < MAX_RANGES)
            ranges[n++] = (struct addr_range){d->PhysicalStart, end};
    }
    if (map)
        FreePool(map);
    const struct remapping *r = s->remap;
    n = ranges_merge(ranges, n);
    n = ranges_remove(ranges, n, MAX_RANGES + 1, r->region_pa, r->region_pa + r->region_bytes);
    n = ranges_remove(ranges, n, MAX_RANGES + 1, s->image_base, s->image_end);
    s->ram_count = 0;
    for (unsigned i = 0; i < n && i < MAX_RANGES && s->ram_count < HC_MAX_RAM_RANGES; i++)
        s->ram[s->ram_count++] = (struct hc_ram_range){ranges[i].base, ranges[i].end - ranges[i].base};
}

bool hv_prepare(struct hv *hv, struct uefi_platform *up, struct remapping *r, const struct pci_inventory *inv,
                const struct dmar_table *dmar, const void *image_base, uint64_t image_bytes, bool fault_injection,
                uint16_t pm_base, const struct madt_ioapics *ioapics, struct checks *c)
{
    static struct hv_setup s;
    s = (struct hv_setup){.plat = &up->ops, .remap = r, .pci = inv, .dmar = dmar,
                          .fault_injection = fault_injection, .pm_base = pm_base, .ioapics = ioapics};
    s.image_base = (uint64_t)(uintptr_t)image_base & ~(uint64_t)(PAGE_SIZE - 1);
    s.image_end = ((uint64_t)(uintptr_t)image_base + image_bytes + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1);
    guest_ram(&s);
    hv_init(hv, &s);
    if (!hv_arch_prepare(hv, &s, c))
        return false;
    /* Every logical CPU the firmware knows (one when it has no MP services). */
    EFI_GUID mp_guid = MP_SERVICES_PROTOCOL_GUID;
    struct mp_services_protocol *mp = NULL;
    UINTN total = 1, enabled = 1;
    if (EFI_ERROR(uefi_call_wrapper(BS->LocateProtocol, 3, &mp_guid, NULL, (void **)&mp)) ||
        EFI_ERROR(mp->get_number_of_processors(mp, &total, &enabled)))
        mp = NULL, total = enabled = 1;
    if (!checkf(c, total <= HV_MAX_CPUS && enabled == total, "%lu logical CPUs, all enabled", (uint64_t)total))
        return false;
    hv->cpus = (unsigned)total;
    hv->mp = mp;
    for (unsigned i = 0; i < hv->cpus; i++) {
        struct hv_cpu *cpu = &hv->cpu[i];
        cpu->index = i;
        struct mp_processor_information info = {0};
        if (mp && !EFI_ERROR(mp->get_processor_info(mp, i, &info)))
            cpu->apic_id = (uint32_t)info.processor_id;
        if (!hv_arch_prepare_cpu(hv, cpu, c))
            return false;
    }
    return true;
}

extern void hv_ap_procedure(void *hv);

bool hv_launch_aps(struct hv *hv, uint64_t ap_resume, struct checks *c)
{
    struct mp_services_protocol *mp = hv->mp;
    if (hv->cpus == 1)
        return true;
    for (unsigned i = 1; i < hv->cpus; i++)
        hv->cpu[i].arch.resume = ap_resume;
    /* One at a time; each is back in the firmware's AP loop, as a guest, before the next. */
    EFI_STATUS st = mp->startup_all_aps(mp, (MP_AP_PROCEDURE)hv_ap_procedure, TRUE, NULL, 10 * 1000 * 1000, hv, NULL);
    unsigned launched = 0;
    for (unsigned i = 1; i < hv->cpus; i++)
        launched += hv->cpu[i].launched;
    return checkf(c, !EFI_ERROR(st) && launched == hv->cpus - 1, "%u application processors run as guests (status %lu)",
                  launched, (uint64_t)st);
}
