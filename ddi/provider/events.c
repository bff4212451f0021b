/* The provider (ddi/provider/handles.c): Caller-managed flushes and fault reporting. */
#include "provider_internal.h"

/* ---- caller-managed domains, flushes, and what x64 does not have ---- */

NTSTATUS NTAPI provider_ConfigureDomain(PIOMMU_DMA_DOMAIN Domain, PDOMAIN_CONFIGURATION Configuration)
{
    struct ddi_domain *d = domain_get(Domain);
    if (!d)
        return STATUS_INVALID_PARAMETER_1;
    NTSTATUS st;
    if (d->kind != KIND_V1_CALLER_MANAGED)
        st = STATUS_INVALID_PARAMETER_1; /* C1, C2 */
    else if (!Configuration || (unsigned)Configuration->Type >= DomainConfigurationInvalid)
        st = STATUS_INVALID_PARAMETER_2; /* C5 */
    else
        st = STATUS_NOT_SUPPORTED; /* C3 (X64, reserved for the system); ARM64 tables on x64 */
    domain_put(d);
    return st;
}

static NTSTATUS flush_caller_managed(struct ddi_domain *d)
{
    if (d->kind != KIND_V1_CALLER_MANAGED)
        return STATUS_INVALID_PARAMETER_1; /* C7: OS-managed domains flush themselves */
    for (unsigned i = 0; i < d->core.unit_count; i++)
        iommu_unit_invalidate_domain(d->core.units[i], domain_id(d));
    return STATUS_SUCCESS;
}

NTSTATUS NTAPI provider_FlushDomain(PIOMMU_DMA_DOMAIN Domain)
{
    struct ddi_domain *d = domain_get(Domain);
    if (!d)
        return STATUS_INVALID_PARAMETER_1;
    NTSTATUS st = flush_caller_managed(d);
    domain_put(d);
    return st;
}

NTSTATUS NTAPI provider_FlushDomainByVaList(PIOMMU_DMA_DOMAIN Domain, BOOLEAN LastLevel, ULONG Number, PVOID VaList)
{
    (void)LastLevel;
    struct ddi_domain *d = domain_get(Domain);
    if (!d)
        return STATUS_INVALID_PARAMETER_1;
    NTSTATUS st;
    if (d->kind != KIND_V1_CALLER_MANAGED)
        st = STATUS_INVALID_PARAMETER_1;
    else if (Number > DDI_MAX_FLUSH_VAS)
        st = STATUS_INVALID_PARAMETER_3;
    else if (Number && !VaList)
        st = STATUS_INVALID_PARAMETER_4;
    else
        st = flush_caller_managed(d); /* a domain-selective flush covers every address listed */
    domain_put(d);
    return st;
}

/* ARM64 only (A11): a PCI function's one input mapping ID, the stream ID its unit sees (the
 * IORT's mapping of its requester ID). BufferLength and *ReturnLength count bytes. */
NTSTATUS NTAPI provider_QueryInputMappings(PDEVICE_OBJECT PhysicalDeviceObject, PINPUT_MAPPING_ELEMENT Buffer,
                                           ULONG BufferLength, PULONG ReturnLength)
{
    if (provider.plat.arch != DDI_ARCH_ARM64)
        return STATUS_NOT_SUPPORTED;
    uint16_t segment, sid;
    const struct pci_function *f = NULL;
    if (pdo_location(PhysicalDeviceObject, &segment, &sid))
        for (uint32_t i = 0; provider.plat.pci && i < provider.plat.pci->count && !f; i++) {
            const struct pci_function *c = &provider.plat.pci->fn[i];
            if (c->segment == segment && (uint16_t)(c->bus << 8 | c->dev << 3 | c->fn) == sid && c->unit >= 0)
                f = c;
        }
    if (!f)
        return STATUS_UNSUCCESSFUL; /* no function behind a unit: nothing to tell */
    ULONG need = (ULONG)sizeof(INPUT_MAPPING_ELEMENT);
    if (ReturnLength)
        *ReturnLength = need;
    if (!Buffer || BufferLength < need)
        return STATUS_BUFFER_TOO_SMALL;
    Buffer[0].InputMappingId = f->stream_id;
    return STATUS_SUCCESS;
}

NTSTATUS NTAPI provider_SetDeviceFaultReportingEx(PIOMMU_DMA_DEVICE DmaDevice, ULONG InputMappingIdBase, BOOLEAN Enable,
                                                  PDEVICE_FAULT_CONFIGURATION FaultConfig)
{
    (void)DmaDevice;
    (void)InputMappingIdBase;
    (void)Enable;
    (void)FaultConfig;
    return STATUS_NOT_IMPLEMENTED; /* A10, F1 */
}

/* ---- fault reporting (V1) ---- */

NTSTATUS NTAPI provider_SetDeviceFaultReporting(PDEVICE_OBJECT PhysicalDeviceObject, ULONG InputMappingIdBase,
                                                BOOLEAN Enable, PDEVICE_FAULT_CONFIGURATION FaultConfig)
{
    uint16_t segment, sid;
    if (!pdo_location(PhysicalDeviceObject, &segment, &sid))
        return STATUS_INVALID_PARAMETER_1;
    if (InputMappingIdBase != 0)
        return STATUS_INVALID_PARAMETER_2;
    if (Enable && (!FaultConfig || !FaultConfig->FaultHandler))
        return STATUS_INVALID_PARAMETER_4;
    lock_acquire(&provider.lock);
    struct ddi_device *dev = provider.ready ? device_at(segment, sid) : NULL;
    NTSTATUS st = STATUS_SUCCESS;
    if (!dev || dev->domain < 0)
        st = STATUS_INVALID_PARAMETER_1; /* only for a device a domain holds */
    else {
        dev->fault_reporting = Enable;
        if (Enable) {
            dev->fault_config = *FaultConfig; /* F3: ignored when disabling */
            dev->pdo = PhysicalDeviceObject;  /* ARM64 reports name it */
        }
    }
    lock_release(&provider.lock);
    return st;
}

/* A unit's fault as the wdm fault type (docs/ddi.md). */
static FAULT_INFORMATION_X64_TYPE fault_type(enum iommu_fault_kind kind)
{
    switch (kind) {
    case IOMMU_FAULT_ADDRESS_SIZE:
        return AddressSizeFault;
    case IOMMU_FAULT_TRANSLATION:
        return TranslationFault;
    case IOMMU_FAULT_TABLE:
        return ExternalFault;
    default:
        return UnsupportedUpstreamTransaction;
    }
}

unsigned ddi_dispatch_faults(void)
{
    unsigned delivered = 0;
    for (unsigned u = 0; u < provider.plat.unit_count; u++) {
        struct iommu_unit *unit = provider.plat.units[u];
        iommu_unit_drain_faults(unit);
        struct iommu_fault_record f;
        while (iommu_unit_take_fault(unit, &f)) {
            if (provider.plat.fault_seen)
                provider.plat.fault_seen(provider.plat.fault_ctx, unit, &f);
            lock_acquire(&provider.lock);
            struct ddi_device *dev = device_at(unit->segment, f.sid);
            DEVICE_FAULT_CONFIGURATION cfg = {0};
            FAULT_INFORMATION info = {0};
            if (dev && dev->unit == u && dev->fault_reporting && dev->domain >= 0) {
                cfg = dev->fault_config;
                struct ddi_domain *d = &provider.domain[dev->domain];
                PVOID handle = make_handle(TAG_DOMAIN, d->generation, (unsigned)dev->domain);
                info.IsStage1 = FALSE;
                if (provider.plat.arch == DDI_ARCH_ARM64) {
                    info.Type = FaultInformationArm64;
                    info.IsStage1 = TRUE; /* the SMMU translates DMA with stage 1 */
                    info.Arm64.DomainHandle = handle;
                    info.Arm64.FaultAddress = (PVOID)(uintptr_t)f.address;
                    info.Arm64.PhysicalDeviceObject = dev->pdo;
                    info.Arm64.InputMappingId = f.sid;
                    info.Arm64.Flags.FaultAddressValid = 1;
                    info.Arm64.Flags.WriteNotRead = f.write;
                    info.Arm64.Type = (FAULT_INFORMATION_ARM64_TYPE)fault_type(f.kind);
                    info.Arm64.IommuBaseAddress = unit->register_base;
                } else {
                    info.Type = FaultInformationX64;
                    info.X64.DomainHandle = handle;
                    info.X64.FaultAddress = (PVOID)(uintptr_t)f.address;
                    info.X64.Flags.FaultAddressValid = 1;
                    info.X64.Type = fault_type(f.kind);
                    info.X64.IommuBaseAddress = unit->register_base;
                    info.X64.PciSegment = unit->segment;
                }
            }
            lock_release(&provider.lock);
            if (cfg.FaultHandler) {
                cfg.FaultHandler(cfg.FaultContext, &info);
                delivered++;
            }
        }
    }
    return delivered;
}
