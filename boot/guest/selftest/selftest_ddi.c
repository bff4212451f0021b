/* The self-test's DDI flows: what a guest driver does with the wdm interface, through the
 * protocol DDISHIM.EFI installs (one hypercall per call), checked with real edu DMA. */
#include <efi.h>
#include <efilib.h>

#include "guest/lib/ddi_protocol.h"
#include "common/edu.h"
#include "guest/lib/guest.h"
#include "common/report.h"
#include "common/loader_handoff.h"

#define XFER 256u

static void fill(uint8_t *p, uint8_t seed)
{
    for (unsigned i = 0; i < XFER; i++)
        p[i] = (uint8_t)(seed + i * 7);
}

static bool filled_with(const uint8_t *p, uint8_t seed)
{
    for (unsigned i = 0; i < XFER; i++)
        if (p[i] != (uint8_t)(seed + i * 7))
            return false;
    return true;
}

static uint8_t *pages(UINTN n, uint64_t *pa)
{
    EFI_PHYSICAL_ADDRESS addr = 0xffffffff;
    if (EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiBootServicesData, n, &addr)))
        return NULL;
    *pa = addr;
    return (uint8_t *)(uintptr_t)addr;
}

/* ---- handlers ---- */

static struct {
    unsigned calls;
    ULONG types;
    PVOID context;
} change;

static VOID NTAPI on_change(PIOMMU_INTERFACE_STATE_CHANGE c, PVOID context)
{
    change.calls++;
    change.types = c->AvailableDomainTypes;
    change.context = context;
}

static struct {
    unsigned calls;
    FAULT_INFORMATION last;
    PVOID context;
} fault;

static VOID NTAPI on_fault(PVOID context, PFAULT_INFORMATION info)
{
    fault.calls++;
    fault.last = *info;
    fault.context = context;
}

/* The fault of a DMA reaches the handler by the next poll (the shim's timer, or this one). */
static bool wait_for_fault(struct iommu_hv_ddi_protocol *p, unsigned before)
{
    for (unsigned i = 0; i < 100 && fault.calls == before; i++) {
        p->poll();
        uefi_call_wrapper(BS->Stall, 1, 1000);
    }
    return fault.calls == before + 1;
}

static IOMMU_MAP_PHYSICAL_ADDRESS contiguous(uint64_t pa, uint64_t bytes)
{
    IOMMU_MAP_PHYSICAL_ADDRESS m = {.MapType = MapPhysicalAddressTypeContiguousRange};
    m.ContiguousRange.Base.QuadPart = (LONGLONG)pa;
    m.ContiguousRange.Size = bytes;
    return m;
}

void selftest_ddi(const struct loader_handoff *o, struct checks *c)
{
    guest_clock_calibrate();

    EFI_GUID guid = IOMMU_HV_DDI_PROTOCOL_GUID;
    struct iommu_hv_ddi_protocol *p = NULL;
    DMA_IOMMU_INTERFACE_EX ex;
    DMA_IOMMU_INTERFACE v1;
    EFI_STATUS est = uefi_call_wrapper(BS->LocateProtocol, 3, &guid, NULL, (void **)&p);
    if (!check(c, !EFI_ERROR(est) && p && p->revision == IOMMU_HV_DDI_PROTOCOL_REVISION &&
                      p->get_interface_ex(2, 0, &ex) == STATUS_SUCCESS && ex.Size == DMA_IOMMU_INTERFACE_EX_V2_SIZE &&
                      p->get_interface(1, &v1) == STATUS_SUCCESS,
               "guest: DDI protocol found, IoGetIommuInterfaceEx(2) and IoGetIommuInterface(1) through it"))
        return;
    if (!check(c, o->edus > 0, "guest: edu, translated by a unit, to test with"))
        return;
    DMA_IOMMU_INTERFACE_V2 *v2 = &ex.V2;
    DEVICE_OBJECT pdo;
    IommuPciDeviceObject(&pdo, o->edu[0].segment, o->edu[0].bus, o->edu[0].device, o->edu[0].function);

    /* A DMA device, its domain types, and a state-change callback (called once at once). */
    PIOMMU_DMA_DEVICE dev = NULL;
    NTSTATUS st = v2->CreateDevice(&pdo, NULL, &dev);
    ULONG types = 0;
    if (NT_SUCCESS(st))
        v2->QueryAvailableDomainTypes(dev, &types);
    checkf(c, NT_SUCCESS(st) && types == 0x3, "guest: CreateDevice for edu: status 0x%x, domain types 0x%x",
           (unsigned)st, (unsigned)types);
    IOMMU_INTERFACE_STATE_CHANGE_FIELDS watch = {.AsULONG = 1};
    st = v2->RegisterInterfaceStateChangeCallback(on_change, &change, dev, &watch);
    checkf(c, NT_SUCCESS(st) && change.calls == 1 && change.types == 0x3 && change.context == &change,
           "guest: state-change callback called once at registration, types 0x%x", (unsigned)change.types);

    /* A translated domain with the Buddy allocator; edu in it; fault reporting on. */
    IOMMU_DMA_DOMAIN_CREATION_FLAGS none = {.AsUlonglong = 0};
    IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG buddy = {.LogicalAllocatorType = IommuDmaLogicalAllocatorBuddy,
                                                .BuddyAllocatorConfig = {.AddressWidth = 39}};
    PIOMMU_DMA_DOMAIN d = NULL;
    st = v2->CreateDomainEx(DomainTypeTranslate, none, &buddy, NULL, &d);
    NTSTATUS attach = NT_SUCCESS(st) ? v2->AttachDeviceEx(d, dev) : st;
    DEVICE_FAULT_CONFIGURATION fc = {on_fault, &fault};
    NTSTATUS report = NT_SUCCESS(attach) ? v1.SetDeviceFaultReporting(&pdo, 0, TRUE, &fc) : attach;
    if (!checkf(c, NT_SUCCESS(report), "guest: Translate domain with the Buddy allocator, edu attached, "
                                       "fault reporting on (0x%x)", (unsigned)report))
        return;

    /* DMA through mappings the allocator placed. */
    uint64_t src_pa = 0, dst_pa = 0;
    uint8_t *src = pages(1, &src_pa), *dst = pages(1, &dst_pa);
    if (!check(c, src && dst, "guest: DMA buffers allocated"))
        return;
    IOMMU_MAP_PHYSICAL_ADDRESS ms = contiguous(src_pa, 4096), md = contiguous(dst_pa, 4096);
    IOMMU_DMA_LOGICAL_ADDRESS iova_src = 0, iova_dst = 0;
    st = v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &ms, NULL, NULL, NULL, &iova_src);
    if (NT_SUCCESS(st))
        st = v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, &md, NULL, NULL, NULL, &iova_dst);
    fill(src, 0x21);
    fill(dst, 0xe0);
    bool ok = NT_SUCCESS(st) && edu_dma(&guest_platform, o->edu[0].bar, iova_src, XFER, false) &&
              edu_dma(&guest_platform, o->edu[0].bar, iova_dst, XFER, true);
    checkf(c, ok && filled_with(dst, 0x21) && fault.calls == 0,
           "guest: edu DMA through the DDI: read at IOVA 0x%lx, written at IOVA 0x%lx, arrived", iova_src, iova_dst);

    /* A 256-page map is one hypercall. */
    uint64_t big_pa = 0;
    uint8_t *big = pages(256, &big_pa);
    static PFN_NUMBER frames[256];
    for (unsigned i = 0; i < 256; i++)
        frames[i] = (big_pa >> 12) + (i * 37) % 256; /* every page once, scattered */
    IOMMU_MAP_PHYSICAL_ADDRESS mb = {.MapType = MapPhysicalAddressTypePfn, .PfnArray = {frames, 256}};
    IOMMU_DMA_LOGICAL_ADDRESS iova_big = 0;
    /* The shim's poll timer runs at TPL_CALLBACK: held off here, so that only the map counts. */
    EFI_TPL tpl = uefi_call_wrapper(BS->RaiseTPL, 1, TPL_NOTIFY);
    UINT64 h0 = p->hypercalls();
    st = big ? v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, &mb, NULL, NULL, NULL, &iova_big)
             : STATUS_INSUFFICIENT_RESOURCES;
    UINT64 map_calls = p->hypercalls() - h0;
    uefi_call_wrapper(BS->RestoreTPL, 1, tpl);
    uint8_t *last = big ? big + ((255 * 37) % 256) * 4096 : NULL; /* where the 256th logical page lands */
    if (last)
        fill(last, 0x00);
    ok = NT_SUCCESS(st) && edu_dma(&guest_platform, o->edu[0].bar, iova_big + 255 * 4096, XFER, true);
    sink_printf(out, "selftest: a 256-page map through the DDI took %lu hypercall(s)\n", map_calls);
    checkf(c, ok && map_calls == 1 && filled_with(last, 0x21), "guest: 256-page frame-list map in %lu hypercall, "
                                                                "DMA to its last page arrived",
           map_calls);
    if (NT_SUCCESS(st))
        v2->UnmapLogicalRange(d, iova_big, 256);

    /* Unmapped: the DMA faults, and the fault reaches the handler. */
    st = v2->UnmapLogicalRange(d, iova_dst, 1);
    fill(dst, 0x77);
    unsigned before = fault.calls;
    ok = NT_SUCCESS(st) && edu_dma(&guest_platform, o->edu[0].bar, iova_dst, XFER, true) && wait_for_fault(p, before);
    checkf(c, ok && filled_with(dst, 0x77) && fault.context == &fault &&
                  fault.last.Type == FaultInformationX64 && (uint64_t)(uintptr_t)fault.last.X64.FaultAddress == iova_dst &&
                  fault.last.X64.Type == TranslationFault && fault.last.X64.IommuBaseAddress == o->iommu_base[0],
           "guest: DMA to an unmapped IOVA: fault handler called (address 0x%lx, type %u), memory unchanged",
           (uint64_t)(uintptr_t)fault.last.X64.FaultAddress, (unsigned)fault.last.X64.Type);

    /* The hypervisor's memory: never mappable, never reachable. */
    IOMMU_MAP_PHYSICAL_ADDRESS mh = contiguous(o->region_base, 4096);
    IOMMU_DMA_LOGICAL_ADDRESS iova_h = 0;
    st = v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, &mh, NULL, NULL, NULL, &iova_h);
    checkf(c, st == STATUS_ACCESS_DENIED && iova_h == 0, "guest: mapping the hypervisor's region refused: 0x%x",
           (unsigned)st);
    before = fault.calls;
    ok = edu_dma(&guest_platform, o->edu[0].bar, o->region_base, XFER, true) && wait_for_fault(p, before);
    checkf(c, ok, "guest: edu DMA to the region's address from the translated domain faults");

    /* Back in the default domain: RAM reachable, the hypervisor's region not. */
    v1.SetDeviceFaultReporting(&pdo, 0, FALSE, NULL);
    st = v2->DetachDeviceEx(dev);
    fill(src, 0x44);
    fill(dst, 0x55);
    ok = NT_SUCCESS(st) && edu_dma(&guest_platform, o->edu[0].bar, src_pa, XFER, false) &&
         edu_dma(&guest_platform, o->edu[0].bar, dst_pa, XFER, true);
    checkf(c, ok && filled_with(dst, 0x44), "guest: detached, edu reaches RAM one to one through the default domain");
    ok = edu_dma(&guest_platform, o->edu[0].bar, o->region_base, XFER, true);
    checkf(c, ok && fault.calls == before + 1,
           "guest: edu DMA into the hypervisor's region from the default domain: dropped, no report (no domain)");

    /* Everything given back. */
    v2->UnmapLogicalRange(d, iova_src, 1);
    NTSTATUS u = v2->UnregisterInterfaceStateChangeCallback(on_change, dev);
    NTSTATUS dd = v2->DeleteDevice(dev), dm = v2->DeleteDomain(d);
    checkf(c, NT_SUCCESS(u) && NT_SUCCESS(dd) && NT_SUCCESS(dm),
           "guest: callback unregistered, device and domain deleted (%lu hypercalls in all)", p->hypercalls());
}
