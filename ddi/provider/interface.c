/* The provider (ddi/provider/handles.c): The routine tables handed out, and the set-up. */
#include "provider_internal.h"

/* ---- the interface ---- */

static void fill_v1(DMA_IOMMU_INTERFACE_V1 *v)
{
    v->CreateDomain = provider_CreateDomain;
    v->DeleteDomain = provider_DeleteDomain;
    v->AttachDevice = provider_AttachDevice;
    v->DetachDevice = provider_DetachDevice;
    v->FlushDomain = provider_FlushDomain;
    v->FlushDomainByVaList = provider_FlushDomainByVaList;
    v->QueryInputMappings = provider_QueryInputMappings;
    v->MapLogicalRange = provider_MapLogicalRange;
    v->UnmapLogicalRange = provider_UnmapLogicalRange;
    v->MapIdentityRange = provider_MapIdentityRange;
    v->UnmapIdentityRange = provider_UnmapIdentityRange;
    v->SetDeviceFaultReporting = provider_SetDeviceFaultReporting;
    v->ConfigureDomain = provider_ConfigureDomain;
}

static void fill_v2(DMA_IOMMU_INTERFACE_V2 *v)
{
    v->CreateDomainEx = provider_CreateDomainEx;
    v->DeleteDomain = provider_DeleteDomain;
    v->AttachDeviceEx = provider_AttachDeviceEx;
    v->DetachDeviceEx = provider_DetachDeviceEx;
    v->FlushDomain = provider_FlushDomain;
    v->FlushDomainByVaList = provider_FlushDomainByVaList;
    v->QueryInputMappings = provider_QueryInputMappings;
    v->MapLogicalRangeEx = provider_MapLogicalRangeEx;
    v->UnmapLogicalRange = provider_UnmapLogicalRange;
    v->MapIdentityRangeEx = provider_MapIdentityRangeEx;
    v->UnmapIdentityRangeEx = provider_UnmapIdentityRangeEx;
    v->SetDeviceFaultReportingEx = provider_SetDeviceFaultReportingEx;
    v->ConfigureDomain = provider_ConfigureDomain;
    v->QueryAvailableDomainTypes = provider_QueryAvailableDomainTypes;
    v->RegisterInterfaceStateChangeCallback = provider_RegisterInterfaceStateChangeCallback;
    v->UnregisterInterfaceStateChangeCallback = provider_UnregisterInterfaceStateChangeCallback;
    v->ReserveLogicalAddressRange = provider_ReserveLogicalAddressRange;
    v->FreeReservedLogicalAddressRange = provider_FreeReservedLogicalAddressRange;
    v->MapReservedLogicalRange = provider_MapReservedLogicalRange;
    v->UnmapReservedLogicalRange = provider_UnmapReservedLogicalRange;
    v->CreateDevice = provider_CreateDevice;
    v->DeleteDevice = provider_DeleteDevice;
}

NTSTATUS NTAPI IoGetIommuInterface(ULONG Version, PDMA_IOMMU_INTERFACE InterfaceOut)
{
    if (Version != DMA_IOMMU_INTERFACE_VERSION_1)
        return STATUS_INVALID_PARAMETER_1; /* A6 */
    if (!InterfaceOut)
        return STATUS_INVALID_PARAMETER_2; /* A5 */
    if (!provider.ready)
        return STATUS_NOT_SUPPORTED;
    DMA_IOMMU_INTERFACE_V1 v;
    fill_v1(&v);
    ddi_write_interface(InterfaceOut, &v);
    return STATUS_SUCCESS;
}

NTSTATUS NTAPI IoGetIommuInterfaceEx(ULONG Version, ULONGLONG Flags, PDMA_IOMMU_INTERFACE_EX InterfaceOut)
{
    /* Version 3 (PASID) is not provided: outside 1..MAX like any other (A3). */
    if (Version < DMA_IOMMU_INTERFACE_EX_VERSION_1 || Version > DMA_IOMMU_INTERFACE_EX_VERSION_2)
        return STATUS_INVALID_PARAMETER_1;
    if (!InterfaceOut)
        return STATUS_INVALID_PARAMETER_2;
    if (Flags)
        return STATUS_INVALID_PARAMETER_3; /* A4 */
    if (!provider.ready)
        return STATUS_NOT_SUPPORTED;
    DMA_IOMMU_INTERFACE_V1 v1;
    DMA_IOMMU_INTERFACE_V2 v2;
    fill_v1(&v1);
    fill_v2(&v2);
    ddi_write_interface_ex(InterfaceOut, Version, &v1, &v2);
    return STATUS_SUCCESS;
}

/* ---- set-up ---- */

/* The platform's guest RAM as may_map searches it: each range rounded inwards to whole pages
 * (a partial page is not wholly RAM), then sorted and merged. Returns the count. */
static unsigned normalise_guest_ram(const struct addr_range *given, unsigned n, struct addr_range *out)
{
    const uint64_t mask = PAGE_SIZE - 1;
    unsigned kept = 0;
    for (unsigned i = 0; i < n; i++) {
        if (given[i].base > UINT64_MAX - mask)
            continue;
        uint64_t base = (given[i].base + mask) & ~mask, end = given[i].end & ~mask;
        if (base < end)
            out[kept++] = (struct addr_range){base, end};
    }
    return ranges_merge(out, kept); /* whole pages already: it only sorts and merges */
}

enum iommu_status ddi_provider_init(const struct ddi_platform *platform)
{
    if (!platform->pool || !platform->unit_count || platform->unit_count > 16 || !platform->first_domain_id ||
        platform->guest_ram_count > DDI_MAX_GUEST_RAM_RANGES)
        return IOMMU_EINVAL;
    unsigned levels = iommu_units_common_levels(platform->units, platform->unit_count);
    if (!levels)
        return IOMMU_ENODEV;
    for (unsigned i = 1; i < platform->unit_count; i++) /* one domain's tables serve every unit */
        if (platform->units[i]->table_format != platform->units[0]->table_format)
            return IOMMU_EINVAL;
    ddi_provider_reset();
    lock_acquire(&provider.lock);
    provider.plat = *platform;
    provider.ram_count = normalise_guest_ram(platform->guest_ram, platform->guest_ram_count, provider.ram);
    /* Every token slot is free after the reset, queued in index order. */
    for (unsigned i = 0; i < TOKEN_SLOTS; i++)
        provider.free_slot[i] = (uint16_t)i;
    provider.free_head = 0;
    provider.free_count = TOKEN_SLOTS;
    provider.live_tokens = 0;
    provider.levels = levels;
    provider.superpages = iommu_units_common_superpages(platform->units, platform->unit_count);
    provider.table_format = platform->units[0]->table_format;
    provider.tables_write_back = iommu_units_write_back(platform->units, platform->unit_count);
    uint32_t ids = UINT32_MAX;
    for (unsigned i = 0; i < platform->unit_count; i++)
        if (platform->units[i]->domain_ids < ids)
            ids = platform->units[i]->domain_ids;
    provider.max_domain_id = (uint16_t)(ids > 0xffff ? 0xffff : ids);
    provider.dma_guard = false;
    provider.ready = true;
    lock_release(&provider.lock);
    return IOMMU_OK;
}

void ddi_provider_reset(void)
{
    for (unsigned i = 0; i < DDI_MAX_DEVICES; i++)
        if (provider.device[i].in_use && provider.device[i].domain >= 0)
            detach_locked(&provider.device[i]);
    for (unsigned i = 0; i < DDI_MAX_DOMAINS; i++)
        if (provider.domain[i].in_use) {
            for (unsigned k = 0; k < TOKEN_SLOTS; k++)
                if (provider.token[k].in_use && provider.token[k].domain == (int)i)
                    provider.token[k].in_use = false;
            destroy_domain(&provider.domain[i]);
        }
    lock_acquire(&provider.lock);
    for (unsigned i = 0; i < DDI_MAX_DEVICES; i++)
        provider.device[i].in_use = false;
    provider.ready = false;
    provider.ram_count = 0;
    lock_release(&provider.lock);
}

struct ddi_counts ddi_provider_counts(void)
{
    struct ddi_counts c = {0};
    lock_acquire(&provider.lock);
    for (unsigned i = 0; i < DDI_MAX_DOMAINS; i++) {
        c.domains += provider.domain[i].in_use;
        /* Changed under the domain core's lock, which cannot be taken here (it ranks
         * below this one and maps hold it for long): a relaxed read is what a leak check
         * needs. */
        if (provider.domain[i].in_use && provider.domain[i].kind != KIND_PASSTHROUGH)
            c.table_pages += __atomic_load_n(&provider.domain[i].core.tables.table_pages, __ATOMIC_RELAXED);
    }
    for (unsigned i = 0; i < DDI_MAX_DEVICES; i++) {
        c.devices += provider.device[i].in_use;
        c.callbacks += provider.device[i].in_use && provider.device[i].callback;
    }
    for (unsigned i = 0; i < TOKEN_SLOTS; i++) {
        c.tokens += provider.token[i].in_use;
        c.mapped_segments += provider.token[i].in_use ? provider.token[i].segments : 0;
    }
    lock_release(&provider.lock);
    for (unsigned u = 0; u < provider.plat.unit_count; u++) {
        c.faults_recorded += (unsigned)provider.plat.units[u]->faults.recorded;
        c.fault_overflows += (unsigned)provider.plat.units[u]->faults.overflows;
    }
    return c;
}

bool ddi_inject_invalidation_timeouts(unsigned n)
{
    bool any = false;
    for (unsigned u = 0; u < provider.plat.unit_count; u++)
        any |= iommu_unit_inject_wait_timeouts(provider.plat.units[u], n);
    return any;
}
