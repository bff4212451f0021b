/* The provider (ddi/provider/handles.c): Domains, devices and their attachment, and the state-change callbacks. */
#include "provider_internal.h"

/* ---- domains ---- */

static NTSTATUS new_domain(enum domain_kind kind, struct ddi_domain **out)
{
    lock_acquire(&provider.lock);
    struct ddi_domain *d = NULL;
    for (unsigned i = 0; i < DDI_MAX_DOMAINS && !d; i++)
        if (!provider.domain[i].in_use && provider.plat.first_domain_id + i < provider.max_domain_id)
            d = &provider.domain[i];
    if (d) {
        uint16_t generation = (uint16_t)(d->generation + 1);
        *d = (struct ddi_domain){.in_use = true, .generation = generation ? generation : 1, .kind = kind,
                                 .busy = 1};
    }
    lock_release(&provider.lock);
    if (!d)
        return STATUS_INSUFFICIENT_RESOURCES;
    if (kind != KIND_PASSTHROUGH) {
        enum iommu_status s = domain_init(&d->core, domain_id(d), provider.plat.pool, provider.levels,
                                          provider.superpages, provider.table_format, NULL,
                                          provider.tables_write_back);
        if (s != IOMMU_OK) {
            lock_acquire(&provider.lock);
            d->in_use = false;
            lock_release(&provider.lock);
            return STATUS_INSUFFICIENT_RESOURCES;
        }
    }
    *out = d;
    return STATUS_SUCCESS;
}

/* Tears a domain down: domain_destroy makes the units forget its id (a flush of the whole
 * domain on each) before its tables go back to the pool; should that flush fail, the tables
 * are never given back, so no other domain can be handed a page a unit may still walk. */
void destroy_domain(struct ddi_domain *d)
{
    if (d->kind != KIND_PASSTHROUGH)
        (void)domain_destroy(&d->core);
    lock_acquire(&provider.lock);
    d->in_use = false;
    lock_release(&provider.lock);
}

NTSTATUS NTAPI provider_CreateDomain(BOOLEAN OsManagedPageTable, PIOMMU_DMA_DOMAIN *DomainOut)
{
    if (!DomainOut)
        return STATUS_INVALID_PARAMETER_2;
    struct ddi_domain *d;
    NTSTATUS st = new_domain(OsManagedPageTable ? KIND_V1_OS_MANAGED : KIND_V1_CALLER_MANAGED, &d);
    if (NT_SUCCESS(st)) {
        *DomainOut = make_handle(TAG_DOMAIN, d->generation, domain_index(d));
        domain_put(d);
    }
    return st;
}

static unsigned allocator_width(ULONG requested)
{
    unsigned table_bits = 12 + 9 * provider.levels;
    return requested < table_bits ? requested : table_bits;
}

/* Reserves (and maps, when asked) the regions given at creation; undoes them on failure. */
static NTSTATUS reserve_regions(struct ddi_domain *d, PIOMMU_DMA_RESERVED_REGION regions)
{
    unsigned n = 0;
    NTSTATUS st = STATUS_SUCCESS;
    PIOMMU_DMA_RESERVED_REGION r = regions;
    for (; r && NT_SUCCESS(st); r = r->RegionNext, n++) {
        uint64_t base = r->Base, size = r->NumberOfPages * PAGE_SIZE;
        if (n == DDI_MAX_RESERVED_REGIONS || (base & (PAGE_SIZE - 1)) || !r->NumberOfPages ||
            r->NumberOfPages > DDI_MAX_MAP_PAGES || base + size < base ||
            base + size > slpt_iova_limit(&d->core.tables)) {
            st = STATUS_INVALID_PARAMETER_4;
            break;
        }
        if (r->ShouldMap && !may_map(base, size)) {
            st = STATUS_ACCESS_DENIED;
            break;
        }
        if (d->has_allocator && iova_reserve(&d->iova, base, size) != IOMMU_OK) {
            st = STATUS_INVALID_PARAMETER_4;
            break;
        }
        if (r->ShouldMap) {
            enum iommu_status s = domain_map(&d->core, base, base, size, SLPT_READ | SLPT_WRITE);
            if (s != IOMMU_OK) {
                if (d->has_allocator)
                    iova_unreserve(&d->iova, base, size);
                st = s == IOMMU_EEXIST ? STATUS_INVALID_PARAMETER_4 : status_of(s);
            }
        }
    }
    /* On failure the caller destroys the domain, which takes the regions mapped so far with
     * its tables (D10). */
    return st;
}

NTSTATUS NTAPI provider_CreateDomainEx(IOMMU_DMA_DOMAIN_TYPE DomainType, IOMMU_DMA_DOMAIN_CREATION_FLAGS Flags,
                                       PIOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG LogicalAllocatorConfig,
                                       PIOMMU_DMA_RESERVED_REGION ReservedRegions, PIOMMU_DMA_DOMAIN *DomainOut)
{
    if ((unsigned)DomainType >= DomainTypeMax)
        return STATUS_INVALID_PARAMETER_1;
    if (Flags.AsUlonglong)
        return STATUS_INVALID_PARAMETER_2;
    if (!DomainOut)
        return STATUS_INVALID_PARAMETER_5;
    if (DomainType == DomainTypeUnmanaged || DomainType == DomainTypeTranslateS1)
        return STATUS_NOT_SUPPORTED;
    bool buddy = false;
    if (LogicalAllocatorConfig) {
        if ((unsigned)LogicalAllocatorConfig->LogicalAllocatorType >= IommuDmaLogicalAllocatorMax)
            return STATUS_INVALID_PARAMETER_1;
        buddy = LogicalAllocatorConfig->LogicalAllocatorType == IommuDmaLogicalAllocatorBuddy;
        if (buddy && DomainType != DomainTypeTranslate)
            return STATUS_INVALID_PARAMETER;
        if (buddy && (LogicalAllocatorConfig->BuddyAllocatorConfig.AddressWidth <= 12 ||
                      LogicalAllocatorConfig->BuddyAllocatorConfig.AddressWidth > 63))
            return STATUS_INVALID_PARAMETER_3;
    }
    if (ReservedRegions && DomainType != DomainTypeTranslate)
        return STATUS_INVALID_PARAMETER_4;
    struct ddi_domain *d;
    NTSTATUS st = new_domain(DomainType == DomainTypeTranslate ? KIND_TRANSLATE : KIND_PASSTHROUGH, &d);
    if (!NT_SUCCESS(st))
        return st;
    if (buddy) {
        unsigned width = allocator_width(LogicalAllocatorConfig->BuddyAllocatorConfig.AddressWidth);
        d->has_allocator =
            width > 12 && iova_init(&d->iova, width, provider.allocator_mem[domain_index(d)], ALLOCATOR_BYTES);
        if (!d->has_allocator)
            st = STATUS_INVALID_PARAMETER_3;
        /* The allocator is the provider's, under the layout lock; the core's allocating
         * maps are not used, so core.iova stays NULL. */
    }
    if (NT_SUCCESS(st) && ReservedRegions)
        st = reserve_regions(d, ReservedRegions);
    if (!NT_SUCCESS(st)) {
        destroy_domain(d); /* the regions mapped so far go with the tables */
        return st;
    }
    *DomainOut = make_handle(TAG_DOMAIN, d->generation, domain_index(d));
    domain_put(d);
    return STATUS_SUCCESS;
}

NTSTATUS NTAPI provider_DeleteDomain(PIOMMU_DMA_DOMAIN Domain)
{
    lock_acquire(&provider.lock);
    struct ddi_domain *d = provider.ready ? domain_of(Domain) : NULL;
    NTSTATUS st = STATUS_SUCCESS;
    if (!d)
        st = STATUS_INVALID_PARAMETER_1;
    else if (d->devices || d->tokens || d->busy)
        st = STATUS_RESOURCE_IN_USE;
    else
        d->busy = 1; /* ours now: nothing else can pin it */
    lock_release(&provider.lock);
    if (NT_SUCCESS(st))
        destroy_domain(d);
    return st;
}

/* ---- devices ---- */

static int find_unit_for(uint16_t segment, uint16_t sid)
{
    const struct pci_inventory *inv = provider.plat.pci;
    for (uint32_t i = 0; inv && i < inv->count; i++)
        if (inv->fn[i].segment == segment && pci_sid(&inv->fn[i]) == sid)
            return inv->fn[i].unit;
    return -1;
}

struct ddi_device *device_at(uint16_t segment, uint16_t sid)
{
    for (unsigned i = 0; i < DDI_MAX_DEVICES; i++)
        if (provider.device[i].in_use && provider.device[i].segment == segment && provider.device[i].sid == sid)
            return &provider.device[i];
    return NULL;
}

/* Makes a device record; with the provider lock held. */
static struct ddi_device *new_device(uint16_t segment, uint16_t sid, int unit, bool from_v1)
{
    for (unsigned i = 0; i < DDI_MAX_DEVICES; i++) {
        struct ddi_device *dev = &provider.device[i];
        if (dev->in_use)
            continue;
        uint16_t generation = (uint16_t)(dev->generation + 1);
        *dev = (struct ddi_device){.in_use = true, .generation = generation ? generation : 1, .from_v1 = from_v1,
                                   .segment = segment, .sid = sid, .unit = (unsigned)unit, .domain = -1};
        dev->last_types = available_types(dev);
        return dev;
    }
    return NULL;
}

NTSTATUS NTAPI provider_CreateDevice(PDEVICE_OBJECT DeviceObject, PIOMMU_DEVICE_CREATION_CONFIGURATION DeviceConfig,
                                     PIOMMU_DMA_DEVICE *DmaDeviceOut)
{
    uint16_t segment, sid;
    if (!pdo_location(DeviceObject, &segment, &sid))
        return STATUS_INVALID_PARAMETER_1;
    if (DeviceConfig)
        return STATUS_INVALID_PARAMETER_2; /* x64 PCI: no configuration (E2; no PASID yet) */
    if (!DmaDeviceOut)
        return STATUS_INVALID_PARAMETER_3;
    lock_acquire(&provider.lock);
    int unit = provider.ready ? find_unit_for(segment, sid) : -1;
    NTSTATUS st = STATUS_SUCCESS;
    struct ddi_device *dev = NULL;
    if (unit < 0 || (unsigned)unit >= provider.plat.unit_count)
        st = STATUS_NOT_FOUND;
    else if (device_at(segment, sid))
        st = STATUS_RESOURCE_IN_USE; /* one DMA device per PCI function */
    else if (!(dev = new_device(segment, sid, unit, false)))
        st = STATUS_INSUFFICIENT_RESOURCES;
    if (dev)
        *DmaDeviceOut = make_handle(TAG_DEVICE, dev->generation, (unsigned)(dev - provider.device));
    lock_release(&provider.lock);
    return st;
}

NTSTATUS NTAPI provider_DeleteDevice(PIOMMU_DMA_DEVICE DmaDevice)
{
    lock_acquire(&provider.lock);
    struct ddi_device *dev = provider.ready ? device_of(DmaDevice) : NULL;
    NTSTATUS st = STATUS_SUCCESS;
    if (!dev)
        st = STATUS_INVALID_PARAMETER_1;
    else if (dev->domain >= 0 || dev->callback)
        st = STATUS_RESOURCE_IN_USE; /* E9, E10 */
    else
        dev->in_use = false;
    lock_release(&provider.lock);
    return st;
}

/* Points the device's context entry at the domain (or back where it came from). Called with
 * the provider lock held: context changes are rare and short. */
static enum iommu_status program_context(struct ddi_device *dev, struct ddi_domain *d)
{
    struct iommu_unit *u = provider.plat.units[dev->unit];
    if (!d)
        return iommu_unit_set_translation(u, dev->sid,
                                          provider.plat.has_default_context ? &provider.plat.default_context : NULL);
    /* PassThrough is not the unit's pass-through, which would let the device reach the
     * memory no domain may map: it is the platform's identity domain, all RAM one to one
     * but the project's own (available_types offers it only when there is one). */
    if (d->kind == KIND_PASSTHROUGH)
        return iommu_unit_set_translation(u, dev->sid, &provider.plat.default_context);
    struct iommu_translation t = {IOMMU_TRANSLATE, domain_id(d), d->core.tables.root_pa, provider.levels};
    enum iommu_status s = iommu_unit_set_translation(u, dev->sid, &t);
    if (s == IOMMU_OK)
        s = domain_add_unit(&d->core, u);
    return s;
}

/* Attach with the provider lock held; the caller checked the handles. */
static NTSTATUS attach_locked(struct ddi_domain *d, struct ddi_device *dev, bool check_policy)
{
    if (check_policy && !(available_types(dev) & domain_type_bit(d)))
        return STATUS_ACCESS_DENIED; /* E4: checked first */
    if (dev->domain == (int)domain_index(d))
        return STATUS_SUCCESS; /* E6 */
    if (dev->domain >= 0)
        return STATUS_INVALID_PARAMETER; /* E5 */
    enum iommu_status s = program_context(dev, d);
    if (s != IOMMU_OK) {
        program_context(dev, NULL);
        return status_of(s);
    }
    dev->domain = (int)domain_index(d);
    d->devices++;
    return STATUS_SUCCESS;
}

void detach_locked(struct ddi_device *dev)
{
    program_context(dev, NULL);
    provider.domain[dev->domain].devices--;
    dev->domain = -1;
    dev->fault_reporting = false;
}

NTSTATUS NTAPI provider_AttachDeviceEx(PIOMMU_DMA_DOMAIN Domain, PIOMMU_DMA_DEVICE DmaDevice)
{
    lock_acquire(&provider.lock);
    struct ddi_domain *d = provider.ready ? domain_of(Domain) : NULL;
    struct ddi_device *dev = provider.ready ? device_of(DmaDevice) : NULL;
    NTSTATUS st = !d ? STATUS_INVALID_PARAMETER_1 : !dev ? STATUS_INVALID_PARAMETER_2 : attach_locked(d, dev, true);
    lock_release(&provider.lock);
    return st;
}

NTSTATUS NTAPI provider_DetachDeviceEx(PIOMMU_DMA_DEVICE DmaDevice)
{
    lock_acquire(&provider.lock);
    struct ddi_device *dev = provider.ready ? device_of(DmaDevice) : NULL;
    NTSTATUS st = STATUS_SUCCESS;
    if (!dev || dev->domain < 0)
        st = STATUS_INVALID_PARAMETER_1; /* E7 */
    else
        detach_locked(dev);
    lock_release(&provider.lock);
    return st;
}

NTSTATUS NTAPI provider_AttachDevice(PIOMMU_DMA_DOMAIN Domain, PDEVICE_OBJECT PhysicalDeviceObject,
                                     ULONG InputMappingIdBase, ULONG MappingCount)
{
    uint16_t segment, sid;
    lock_acquire(&provider.lock);
    struct ddi_domain *d = provider.ready ? domain_of(Domain) : NULL;
    NTSTATUS st = STATUS_SUCCESS;
    int unit = -1;
    if (!d)
        st = STATUS_INVALID_PARAMETER_1;
    else if (!pdo_location(PhysicalDeviceObject, &segment, &sid) ||
             (unit = find_unit_for(segment, sid)) < 0 || (unsigned)unit >= provider.plat.unit_count)
        st = STATUS_INVALID_PARAMETER_2;
    else if (InputMappingIdBase != 0)
        st = STATUS_INVALID_PARAMETER_3; /* E14: no stream ids on x64 */
    else if (MappingCount != 1)
        st = STATUS_INVALID_PARAMETER_4;
    if (NT_SUCCESS(st)) {
        struct ddi_device *dev = device_at(segment, sid);
        bool made = false;
        if (!dev) {
            dev = new_device(segment, sid, unit, true);
            made = dev != NULL;
        }
        st = !dev ? STATUS_INSUFFICIENT_RESOURCES : attach_locked(d, dev, true);
        if (!NT_SUCCESS(st) && made)
            dev->in_use = false;
    }
    lock_release(&provider.lock);
    return st;
}

NTSTATUS NTAPI provider_DetachDevice(PIOMMU_DMA_DOMAIN Domain, PDEVICE_OBJECT PhysicalDeviceObject, ULONG InputMappingId)
{
    uint16_t segment, sid;
    lock_acquire(&provider.lock);
    struct ddi_domain *d = provider.ready ? domain_of(Domain) : NULL;
    struct ddi_device *dev = NULL;
    NTSTATUS st = STATUS_SUCCESS;
    if (!d)
        st = STATUS_INVALID_PARAMETER_1;
    else if (!pdo_location(PhysicalDeviceObject, &segment, &sid) || !(dev = device_at(segment, sid)) ||
             dev->domain != (int)domain_index(d))
        st = STATUS_INVALID_PARAMETER_2;
    else if (InputMappingId != 0)
        st = STATUS_INVALID_PARAMETER_3;
    if (NT_SUCCESS(st)) {
        detach_locked(dev);
        if (dev->from_v1)
            dev->in_use = false;
    }
    lock_release(&provider.lock);
    return st;
}

VOID NTAPI provider_QueryAvailableDomainTypes(PIOMMU_DMA_DEVICE DmaDevice, PULONG AvailableDomains)
{
    if (!AvailableDomains)
        return;
    lock_acquire(&provider.lock);
    struct ddi_device *dev = provider.ready ? device_of(DmaDevice) : NULL;
    *AvailableDomains = dev ? available_types(dev) : 0;
    lock_release(&provider.lock);
}

/* ---- state-change callbacks ---- */

NTSTATUS NTAPI provider_RegisterInterfaceStateChangeCallback(PIOMMU_INTERFACE_STATE_CHANGE_CALLBACK StateChangeCallback,
                                                             PVOID Context, PIOMMU_DMA_DEVICE DmaDevice,
                                                             PIOMMU_INTERFACE_STATE_CHANGE_FIELDS StateFields)
{
    if (!StateFields || !StateFields->AsULONG || (StateFields->AsULONG & ~1u))
        return STATUS_INVALID_PARAMETER_4; /* S1, checked first; reserved bits refused */
    if (!StateChangeCallback)
        return STATUS_INVALID_PARAMETER_1;
    lock_acquire(&provider.lock);
    struct ddi_device *dev = provider.ready ? device_of(DmaDevice) : NULL;
    NTSTATUS st = STATUS_SUCCESS;
    IOMMU_INTERFACE_STATE_CHANGE change = {0};
    if (!dev)
        st = STATUS_INVALID_PARAMETER_3;
    else if (dev->callback)
        st = STATUS_UNSUCCESSFUL; /* S3 */
    else {
        dev->callback = StateChangeCallback;
        dev->callback_context = Context;
        dev->watched = StateFields->AsULONG;
        dev->last_types = available_types(dev);
        change.PresentFields.AsULONG = StateFields->AsULONG;
        change.AvailableDomainTypes = dev->last_types;
    }
    lock_release(&provider.lock);
    if (NT_SUCCESS(st))
        StateChangeCallback(&change, Context); /* S2: once, before returning, no lock held */
    return st;
}

NTSTATUS NTAPI provider_UnregisterInterfaceStateChangeCallback(PIOMMU_INTERFACE_STATE_CHANGE_CALLBACK StateChangeCallback,
                                                               PIOMMU_DMA_DEVICE DmaDevice)
{
    lock_acquire(&provider.lock);
    struct ddi_device *dev = provider.ready ? device_of(DmaDevice) : NULL;
    NTSTATUS st = STATUS_SUCCESS;
    if (!dev)
        st = STATUS_INVALID_PARAMETER_2;
    else if (!dev->callback || dev->callback != StateChangeCallback)
        st = STATUS_UNSUCCESSFUL; /* S4 */
    else
        dev->callback = NULL;
    lock_release(&provider.lock);
    return st;
}

void ddi_set_dma_guard(bool blocking)
{
    /* Notify outside the lock, one device at a time (S6). */
    lock_acquire(&provider.lock);
    provider.dma_guard = blocking;
    lock_release(&provider.lock);
    for (unsigned i = 0; i < DDI_MAX_DEVICES; i++) {
        lock_acquire(&provider.lock);
        struct ddi_device *dev = &provider.device[i];
        PIOMMU_INTERFACE_STATE_CHANGE_CALLBACK cb = NULL;
        PVOID ctx = NULL;
        IOMMU_INTERFACE_STATE_CHANGE change = {0};
        if (dev->in_use && dev->callback && (dev->watched & 1) && available_types(dev) != dev->last_types) {
            dev->last_types = available_types(dev);
            cb = dev->callback;
            ctx = dev->callback_context;
            change.PresentFields.AsULONG = 1;
            change.AvailableDomainTypes = dev->last_types;
        }
        lock_release(&provider.lock);
        if (cb)
            cb(&change, ctx);
    }
}
