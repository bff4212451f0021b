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

NTSTATUS NTAPI provider_QueryInputMappings(PDEVICE_OBJECT PhysicalDeviceObject, PINPUT_MAPPING_ELEMENT Buffer,
                                           ULONG BufferLength, PULONG ReturnLength)
{
    (void)PhysicalDeviceObject;
    (void)Buffer;
    (void)BufferLength;
    (void)ReturnLength;
    return STATUS_NOT_SUPPORTED; /* A11: ARM64 only */
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
        if (Enable)
            dev->fault_config = *FaultConfig; /* F3: ignored when disabling */
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
                info.Type = FaultInformationX64;
                info.IsStage1 = FALSE;
                info.X64.DomainHandle = make_handle(TAG_DOMAIN, d->generation, (unsigned)dev->domain);
                info.X64.FaultAddress = (PVOID)(uintptr_t)f.address;
                info.X64.Flags.FaultAddressValid = 1;
                info.X64.Type = fault_type(f.kind);
                info.X64.IommuBaseAddress = unit->register_base;
                info.X64.PciSegment = unit->segment;
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
