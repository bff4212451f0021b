/* The DDI hypercall server. See ddi/include/ddi/hc_server.h and docs/hypercall.md.
 *
 * Each call has a handler that turns its block (already copied into the calling CPU's
 * staging) into the routine's arguments, in the server's memory, and calls the provider
 * through the same interface tables a driver gets, so every status a routine returns is
 * the provider's own. The lists a block points to are copied into the staging's fixed
 * buffers, bounded first. */
#include "ddi/hc_server.h"

#include "ddi/provider.h"
#include "iommu/lock.h"
#include "iommu/page_pool.h"

/* An MDL as the provider reads it: the header, then its page numbers. */
struct mdl_with_frames {
    MDL mdl;
    PFN_NUMBER frames[HC_MAX_FRAMES];
};
_Static_assert(__builtin_offsetof(struct mdl_with_frames, frames) == sizeof(MDL), "frames follow the MDL");

/* The guest's names for its callbacks and fault handlers. The provider calls the server's
 * trampolines with one of these as context; they never leave the server. */
struct callback_registration {
    bool in_use;
    uint64_t device;  /* DMA device handle */
    uint64_t cookie;
    struct hc_device where;
};

struct fault_registration {
    bool in_use;
    uint64_t cookie;
    struct hc_device where;
};

union any_block {
    struct hc_version_block version;
    struct hc_get_interface_block get_interface;
    struct hc_create_domain_block create_domain;
    struct hc_domain_block domain;
    struct hc_attach_device_block attach;
    struct hc_detach_device_block detach;
    struct hc_flush_va_list_block flush_va;
    struct hc_query_input_mappings_block query_input;
    struct hc_map_logical_block map_logical;
    struct hc_unmap_logical_block unmap_logical;
    struct hc_identity_block identity;
    struct hc_fault_reporting_block fault_reporting;
    struct hc_configure_domain_block configure;
    struct hc_create_domain_ex_block create_domain_ex;
    struct hc_attach_device_ex_block attach_ex;
    struct hc_device_handle_block device_handle;
    struct hc_map_logical_ex_block map_logical_ex;
    struct hc_fault_reporting_ex_block fault_reporting_ex;
    struct hc_query_domain_types_block query_types;
    struct hc_state_change_block state_change;
    struct hc_reserve_block reserve;
    struct hc_token_block token;
    struct hc_map_reserved_block map_reserved;
    struct hc_unmap_reserved_block unmap_reserved;
    struct hc_create_device_block create_device;
    struct hc_poll_block poll;
    struct hc_stats_block stats;
    struct hc_inject_block inject;
    struct hc_audit_block audit;
    struct hc_guest_exit_block guest_exit;
};

/* Where one CPU's call lives while it is served: the block and the lists it points to,
 * copied in once and used only from here. */
struct staging {
    union any_block block; /* first: a handler's block pointer is its staging's */
    struct mdl_with_frames phys;                        /* frames of the call's descriptor */
    IOMMU_DMA_RESERVED_REGION regions[HC_MAX_REGIONS];
    ULONGLONG vas[HC_MAX_FLUSH_VAS];
};
_Static_assert(__builtin_offsetof(struct staging, block) == 0, "staging_of");

static struct staging *staging_of(union any_block *b)
{
    return (struct staging *)(void *)b;
}

/* The server's state. Locks, outermost first, none held while waiting for another:
 *   registrations (the handlers that change callbacks[] and faults[]: rare)
 *   > collect (one CPU drains the units' faults at a time)
 *   > the provider's own locks
 *   > queue (the report queue, held for a few stores).
 * dispatch is held for a whole call only when the configuration gives no this_cpu. */
static struct server {
    struct iommu_lock dispatch, registrations, collect, queue_lock;
    bool ready;
    struct hc_server_config cfg;
    DMA_IOMMU_INTERFACE_EX ex1, ex; /* versions 1 and 2 */
    struct staging staging[HC_MAX_CPUS];
    struct callback_registration callbacks[DDI_MAX_DEVICES];
    struct fault_registration faults[DDI_MAX_DEVICES];
    struct hc_report queue[HC_REPORT_QUEUE];
    unsigned queue_first, queue_count, lost;
    struct hc_server_stats stats; /* counted atomically */
} server;

/* ---- guest memory ---- */

bool hc_in_guest_ram(uint64_t gpa, uint64_t len)
{
    if (!len || gpa + len < gpa)
        return false;
    for (unsigned i = 0; i < server.cfg.ram_count; i++) {
        const struct hc_ram_range *r = &server.cfg.ram[i];
        if (gpa >= r->base && gpa - r->base < r->size && len <= r->size - (gpa - r->base))
            return true;
    }
    return false;
}

/* Copies count items of size bytes from the guest; false if any byte is not guest RAM. */
static bool copy_in(void *to, uint64_t gpa, uint64_t count, size_t size)
{
    if (!count)
        return true;
    if (!hc_in_guest_ram(gpa, count * size))
        return false;
    server.cfg.read(server.cfg.ctx, gpa, to, count * size);
    return true;
}

/* ---- the reports queue ---- */

static void queue_report(const struct hc_report *r)
{
    lock_acquire(&server.queue_lock);
    if (server.queue_count == HC_REPORT_QUEUE)
        server.lost++;
    else
        server.queue[(server.queue_first + server.queue_count++) % HC_REPORT_QUEUE] = *r;
    lock_release(&server.queue_lock);
}

static VOID NTAPI state_change_trampoline(PIOMMU_INTERFACE_STATE_CHANGE change, PVOID context)
{
    const struct callback_registration *c = context;
    struct hc_report r = {.kind = HC_REPORT_STATE_CHANGE,
                          .available = change->AvailableDomainTypes,
                          .cookie = c->cookie,
                          .flags = change->PresentFields.AsULONG,
                          .segment = c->where.segment,
                          .bus = c->where.bus,
                          .device = c->where.device,
                          .function = c->where.function};
    queue_report(&r);
}

static VOID NTAPI fault_trampoline(PVOID context, PFAULT_INFORMATION info)
{
    const struct fault_registration *f = context;
    struct hc_report r = {.kind = HC_REPORT_FAULT, .cookie = f->cookie, .segment = f->where.segment,
                          .bus = f->where.bus, .device = f->where.device, .function = f->where.function};
    if (info->Type == FaultInformationArm64) {
        r.available = (uint32_t)info->Arm64.Type;
        r.domain = (uint64_t)(uintptr_t)info->Arm64.DomainHandle;
        r.fault_address = (uint64_t)(uintptr_t)info->Arm64.FaultAddress;
        r.iommu_base = info->Arm64.IommuBaseAddress;
        r.pci_segment = f->where.segment;
        r.input_mapping_id = info->Arm64.InputMappingId;
        r.flags = HC_FAULT_ARM64 | (info->Arm64.Flags.FaultAddressValid ? HC_FAULT_ADDRESS_VALID : 0) |
                  (info->Arm64.Flags.WriteNotRead ? HC_FAULT_WRITE : 0);
    } else {
        r.available = (uint32_t)info->X64.Type;
        r.domain = (uint64_t)(uintptr_t)info->X64.DomainHandle;
        r.fault_address = (uint64_t)(uintptr_t)info->X64.FaultAddress;
        r.iommu_base = info->X64.IommuBaseAddress;
        r.pci_segment = info->X64.PciSegment;
        r.flags = info->X64.Flags.FaultAddressValid ? HC_FAULT_ADDRESS_VALID : 0;
    }
    queue_report(&r);
}

/* ---- turning block fields into routine arguments ---- */

static PDEVICE_OBJECT device_object(const struct hc_device *d, DEVICE_OBJECT *storage)
{
    if (!d->present)
        return NULL;
    IommuPciDeviceObject(storage, d->segment, d->bus, d->device, d->function);
    storage->Type = d->type; /* a wrong one is for the provider to refuse */
    return storage;
}

static PIOMMU_DMA_LOGICAL_ADDRESS opt(const struct hc_opt_u64 *o, IOMMU_DMA_LOGICAL_ADDRESS *storage)
{
    if (!o->present)
        return NULL;
    *storage = o->value;
    return storage;
}

static void *handle(uint64_t h)
{
    return (void *)(uintptr_t)h;
}

/* The MDL of an hc_phys of type Mdl, in phys (the call's staging); *out is NULL for a NULL
 * MDL. */
static NTSTATUS load_mdl(const struct hc_phys *p, struct mdl_with_frames *phys, PMDL *out)
{
    *out = NULL;
    if (p->map_type == HC_PHYS_NULL || (p->flags & HC_PHYS_MDL_NULL))
        return STATUS_SUCCESS;
    uint64_t frames = ((uint64_t)p->mdl_byte_offset + p->mdl_byte_count + PAGE_SIZE - 1) / PAGE_SIZE;
    if (frames > HC_MAX_FRAMES)
        return STATUS_INSUFFICIENT_RESOURCES;
    if (!copy_in(phys->frames, p->base, frames, sizeof(PFN_NUMBER)))
        return STATUS_ACCESS_VIOLATION;
    phys->mdl =
        (MDL){.Size = (CSHORT)sizeof(MDL), .ByteCount = p->mdl_byte_count, .ByteOffset = p->mdl_byte_offset};
    *out = &phys->mdl;
    return STATUS_SUCCESS;
}

/* The descriptor of an hc_phys, in the server's memory; *out is NULL for a NULL one. */
static NTSTATUS load_descriptor(const struct hc_phys *p, struct mdl_with_frames *phys,
                                IOMMU_MAP_PHYSICAL_ADDRESS *storage, PIOMMU_MAP_PHYSICAL_ADDRESS *out)
{
    *out = NULL;
    if (p->map_type == HC_PHYS_NULL)
        return STATUS_SUCCESS;
    *storage = (IOMMU_MAP_PHYSICAL_ADDRESS){.MapType = (IOMMU_MAP_PHYSICAL_ADDRESS_TYPE)p->map_type};
    *out = storage;
    switch (p->map_type) {
    case MapPhysicalAddressTypeMdl:
        return load_mdl(p, phys, &storage->Mdl.Mdl);
    case MapPhysicalAddressTypeContiguousRange:
        storage->ContiguousRange.Base.QuadPart = (LONGLONG)p->base;
        storage->ContiguousRange.Size = p->count;
        return STATUS_SUCCESS;
    case MapPhysicalAddressTypePfn:
        storage->PfnArray.NumberOfPages = p->count;
        if (!p->base)
            return STATUS_SUCCESS; /* a NULL array, for the provider to refuse */
        if (p->count > HC_MAX_FRAMES)
            return STATUS_INSUFFICIENT_RESOURCES;
        if (!copy_in(phys->frames, p->base, p->count, sizeof(PFN_NUMBER)))
            return STATUS_ACCESS_VIOLATION;
        storage->PfnArray.PageFrame = phys->frames;
        return STATUS_SUCCESS;
    default:
        return STATUS_SUCCESS; /* an unknown type, for the provider to refuse */
    }
}

/* V1 routines take an MDL and nothing else. */
static NTSTATUS load_v1_mdl(const struct hc_phys *p, struct mdl_with_frames *phys, PMDL *out)
{
    if (p->map_type != HC_PHYS_NULL && p->map_type != MapPhysicalAddressTypeMdl)
        return STATUS_INVALID_PARAMETER;
    return load_mdl(p, phys, out);
}

/* ---- the handlers ---- */

static NTSTATUS call_version(union any_block *b)
{
    b->version = (struct hc_version_block){HC_ABI_VERSION, HC_MAX_FRAMES, HC_MAX_REGIONS, HC_MAX_FLUSH_VAS,
                                           HC_MAX_POLL, 0};
    return STATUS_SUCCESS;
}

static NTSTATUS call_get_interface(union any_block *b)
{
    /* The checks are the provider's; the guest's tables are the shim's own. */
    const struct hc_get_interface_block *g = &b->get_interface;
    DMA_IOMMU_INTERFACE_EX ex;
    DMA_IOMMU_INTERFACE v1; /* filled and dropped */
    if (g->ex)
        return IoGetIommuInterfaceEx(g->version, g->flags, g->out_present ? &ex : NULL);
    return IoGetIommuInterface(g->version, g->out_present ? &v1 : NULL);
}

static NTSTATUS call_create_domain(union any_block *b)
{
    struct hc_create_domain_block *c = &b->create_domain;
    PIOMMU_DMA_DOMAIN d = NULL;
    NTSTATUS st = server.ex1.V1.CreateDomain(c->os_managed, c->out_present ? &d : NULL);
    c->domain = (uint64_t)(uintptr_t)d;
    return st;
}

static NTSTATUS call_delete_domain(union any_block *b)
{
    return server.ex.V2.DeleteDomain(handle(b->domain.domain));
}

static NTSTATUS call_attach_device(union any_block *b)
{
    DEVICE_OBJECT pdo;
    const struct hc_attach_device_block *a = &b->attach;
    return server.ex1.V1.AttachDevice(handle(a->domain), device_object(&a->device, &pdo), a->input_mapping_id_base,
                                a->mapping_count);
}

static NTSTATUS call_detach_device(union any_block *b)
{
    DEVICE_OBJECT pdo;
    const struct hc_detach_device_block *a = &b->detach;
    return server.ex1.V1.DetachDevice(handle(a->domain), device_object(&a->device, &pdo), a->input_mapping_id);
}

static NTSTATUS call_flush_domain(union any_block *b)
{
    return server.ex.V2.FlushDomain(handle(b->domain.domain));
}

static NTSTATUS call_flush_va_list(union any_block *b)
{
    const struct hc_flush_va_list_block *f = &b->flush_va;
    ULONGLONG *vas = staging_of(b)->vas;
    /* Beyond the bound the provider refuses the count before it reads the list. */
    if (f->list_present && f->number <= HC_MAX_FLUSH_VAS && !copy_in(vas, f->list, f->number, sizeof vas[0]))
        return STATUS_ACCESS_VIOLATION;
    return server.ex.V2.FlushDomainByVaList(handle(f->domain), f->last_level, f->number,
                                            f->list_present ? vas : NULL);
}

static NTSTATUS call_query_input_mappings(union any_block *b)
{
    struct hc_query_input_mappings_block *q = &b->query_input;
    DEVICE_OBJECT pdo;
    ULONG length = 0;
    /* The IDs land in the server's own buffer first; the guest's gets them only when it lies
     * in guest RAM, and never more than it said it holds. */
    INPUT_MAPPING_ELEMENT ids[HC_MAX_INPUT_MAPPINGS];
    ULONG room = q->buffer_length < sizeof ids ? q->buffer_length : (ULONG)sizeof ids;
    if (q->buffer && (q->buffer & 3 || !hc_in_guest_ram(q->buffer, q->buffer_length)))
        return STATUS_ACCESS_VIOLATION;
    NTSTATUS st = server.ex.V2.QueryInputMappings(device_object(&q->device, &pdo), q->buffer ? ids : NULL,
                                                  q->buffer ? room : 0, &length);
    q->return_length = length;
    if (NT_SUCCESS(st) && q->buffer && length <= room)
        server.cfg.write(server.cfg.ctx, q->buffer, ids, length);
    return st;
}

static NTSTATUS call_map_logical(union any_block *b)
{
    const struct hc_map_logical_block *m = &b->map_logical;
    PMDL mdl;
    NTSTATUS st = load_v1_mdl(&m->mdl, &staging_of(b)->phys, &mdl);
    return st ? st : server.ex1.V1.MapLogicalRange(handle(m->domain), m->permissions, mdl, m->logical_address);
}

static NTSTATUS call_unmap_logical(union any_block *b)
{
    const struct hc_unmap_logical_block *u = &b->unmap_logical;
    return server.ex.V2.UnmapLogicalRange(handle(u->domain), u->logical_address, u->number_of_pages);
}

static NTSTATUS call_map_identity(union any_block *b)
{
    PMDL mdl;
    NTSTATUS st = load_v1_mdl(&b->identity.phys, &staging_of(b)->phys, &mdl);
    return st ? st : server.ex1.V1.MapIdentityRange(handle(b->identity.domain), b->identity.permissions, mdl);
}

static NTSTATUS call_unmap_identity(union any_block *b)
{
    PMDL mdl;
    NTSTATUS st = load_v1_mdl(&b->identity.phys, &staging_of(b)->phys, &mdl);
    return st ? st : server.ex1.V1.UnmapIdentityRange(handle(b->identity.domain), mdl);
}

static struct fault_registration *fault_registration_for(const struct hc_device *where)
{
    struct fault_registration *free_one = NULL;
    for (unsigned i = 0; i < DDI_MAX_DEVICES; i++) {
        struct fault_registration *f = &server.faults[i];
        if (f->in_use && f->where.segment == where->segment && f->where.bus == where->bus &&
            f->where.device == where->device && f->where.function == where->function)
            return f;
        if (!f->in_use && !free_one)
            free_one = f;
    }
    return free_one;
}

static NTSTATUS call_fault_reporting(union any_block *b)
{
    const struct hc_fault_reporting_block *r = &b->fault_reporting;
    DEVICE_OBJECT pdo;
    lock_acquire(&server.registrations);
    struct fault_registration *f = r->device.present ? fault_registration_for(&r->device) : NULL;
    NTSTATUS st = STATUS_INSUFFICIENT_RESOURCES;
    if (!r->device.present || f) {
        DEVICE_FAULT_CONFIGURATION config = {r->handler_present ? fault_trampoline : NULL, f};
        st = server.ex1.V1.SetDeviceFaultReporting(device_object(&r->device, &pdo), r->input_mapping_id_base,
                                                   r->enable, r->config_present ? &config : NULL);
    }
    if (NT_SUCCESS(st) && f) {
        /* Reports name the registration by the guest's cookie; disabling ends it. */
        *f = (struct fault_registration){.in_use = r->enable, .cookie = r->cookie, .where = r->device};
    }
    lock_release(&server.registrations);
    return st;
}

static NTSTATUS call_configure_domain(union any_block *b)
{
    const struct hc_configure_domain_block *c = &b->configure;
    /* Only the type matters: no configuration is ever taken on x64. */
    DOMAIN_CONFIGURATION config = {.Type = (DOMAIN_CONFIGURATION_ARCH)c->type};
    return server.ex.V2.ConfigureDomain(handle(c->domain), c->config_present ? &config : NULL);
}

static NTSTATUS call_create_domain_ex(union any_block *b)
{
    struct hc_create_domain_ex_block *c = &b->create_domain_ex;
    IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG allocator = {
        .LogicalAllocatorType = (IOMMU_DMA_LOGICAL_ALLOCATOR_TYPE)c->allocator_type,
        .BuddyAllocatorConfig = {.AddressWidth = c->address_width}};
    /* The list as the guest linked it, rebuilt here; one entry past the DDI's bound is
     * enough for the provider to refuse a longer one. */
    uint32_t n = c->region_count < HC_MAX_REGIONS ? c->region_count : HC_MAX_REGIONS;
    struct hc_reserved_region regions[HC_MAX_REGIONS];
    if (!copy_in(regions, c->regions, n, sizeof regions[0]))
        return STATUS_ACCESS_VIOLATION;
    IOMMU_DMA_RESERVED_REGION *list = staging_of(b)->regions;
    for (uint32_t i = 0; i < n; i++)
        list[i] = (IOMMU_DMA_RESERVED_REGION){i + 1 < n ? &list[i + 1] : NULL, regions[i].base,
                                              regions[i].number_of_pages, regions[i].should_map != 0};
    IOMMU_DMA_DOMAIN_CREATION_FLAGS flags = {.AsUlonglong = c->flags};
    PIOMMU_DMA_DOMAIN d = NULL;
    NTSTATUS st = server.ex.V2.CreateDomainEx((IOMMU_DMA_DOMAIN_TYPE)c->domain_type, flags,
                                         c->allocator_present ? &allocator : NULL, n ? list : NULL,
                                         c->out_present ? &d : NULL);
    c->domain = (uint64_t)(uintptr_t)d;
    return st;
}

static NTSTATUS call_attach_device_ex(union any_block *b)
{
    return server.ex.V2.AttachDeviceEx(handle(b->attach_ex.domain), handle(b->attach_ex.device));
}

static NTSTATUS call_detach_device_ex(union any_block *b)
{
    return server.ex.V2.DetachDeviceEx(handle(b->device_handle.device));
}

static NTSTATUS call_map_logical_ex(union any_block *b)
{
    struct hc_map_logical_ex_block *m = &b->map_logical_ex;
    IOMMU_MAP_PHYSICAL_ADDRESS storage;
    PIOMMU_MAP_PHYSICAL_ADDRESS desc;
    NTSTATUS st = load_descriptor(&m->phys, &staging_of(b)->phys, &storage, &desc);
    if (st)
        return st;
    IOMMU_DMA_LOGICAL_ADDRESS at, min, max, out = m->logical_address;
    st = server.ex.V2.MapLogicalRangeEx(handle(m->domain), m->permissions, desc, opt(&m->explicit_address, &at),
                                   opt(&m->min_address, &min), opt(&m->max_address, &max),
                                   m->out_present ? &out : NULL);
    m->logical_address = out;
    return st;
}

static NTSTATUS call_map_identity_ex(union any_block *b)
{
    IOMMU_MAP_PHYSICAL_ADDRESS storage;
    PIOMMU_MAP_PHYSICAL_ADDRESS desc;
    NTSTATUS st = load_descriptor(&b->identity.phys, &staging_of(b)->phys, &storage, &desc);
    return st ? st : server.ex.V2.MapIdentityRangeEx(handle(b->identity.domain), b->identity.permissions, desc);
}

static NTSTATUS call_unmap_identity_ex(union any_block *b)
{
    IOMMU_MAP_PHYSICAL_ADDRESS storage;
    PIOMMU_MAP_PHYSICAL_ADDRESS desc;
    NTSTATUS st = load_descriptor(&b->identity.phys, &staging_of(b)->phys, &storage, &desc);
    return st ? st : server.ex.V2.UnmapIdentityRangeEx(handle(b->identity.domain), desc);
}

static NTSTATUS call_fault_reporting_ex(union any_block *b)
{
    const struct hc_fault_reporting_ex_block *r = &b->fault_reporting_ex;
    DEVICE_FAULT_CONFIGURATION config = {fault_trampoline, NULL};
    return server.ex.V2.SetDeviceFaultReportingEx(handle(r->device), r->input_mapping_id_base, r->enable,
                                             r->config_present ? &config : NULL);
}

static NTSTATUS call_query_domain_types(union any_block *b)
{
    struct hc_query_domain_types_block *q = &b->query_types;
    ULONG available = 0;
    server.ex.V2.QueryAvailableDomainTypes(handle(q->device), q->out_present ? &available : NULL);
    q->available = available;
    return STATUS_SUCCESS;
}

static struct callback_registration *callback_registration_of(uint64_t device)
{
    for (unsigned i = 0; i < DDI_MAX_DEVICES; i++)
        if (server.callbacks[i].in_use && server.callbacks[i].device == device)
            return &server.callbacks[i];
    return NULL;
}

static NTSTATUS call_register_state_change(union any_block *b)
{
    struct hc_state_change_block *r = &b->state_change;
    struct callback_registration *c = NULL;
    lock_acquire(&server.registrations);
    for (unsigned i = 0; i < DDI_MAX_DEVICES && !c; i++)
        if (!server.callbacks[i].in_use)
            c = &server.callbacks[i];
    NTSTATUS st = STATUS_INSUFFICIENT_RESOURCES;
    if (c) {
        *c = (struct callback_registration){.device = r->device, .cookie = r->cookie};
        IOMMU_INTERFACE_STATE_CHANGE_FIELDS fields = {.AsULONG = r->fields};
        /* The first call (S2) is queued like every later one; the shim polls right after. */
        st = server.ex.V2.RegisterInterfaceStateChangeCallback(r->cookie ? state_change_trampoline : NULL, c,
                                                               handle(r->device), r->fields_present ? &fields : NULL);
        c->in_use = NT_SUCCESS(st);
    }
    lock_release(&server.registrations);
    return st;
}

static NTSTATUS call_unregister_state_change(union any_block *b)
{
    const struct hc_state_change_block *r = &b->state_change;
    lock_acquire(&server.registrations);
    struct callback_registration *c = callback_registration_of(r->device);
    /* The provider knows only the server's trampoline; which guest callback is registered
     * is known here, by its cookie (S4). */
    NTSTATUS st = STATUS_UNSUCCESSFUL;
    if (!(c && r->cookie && r->cookie != c->cookie))
        st = server.ex.V2.UnregisterInterfaceStateChangeCallback(r->cookie ? state_change_trampoline : NULL,
                                                                 handle(r->device));
    if (NT_SUCCESS(st) && c)
        c->in_use = false;
    lock_release(&server.registrations);
    return st;
}

static NTSTATUS call_reserve(union any_block *b)
{
    struct hc_reserve_block *r = &b->reserve;
    IOMMU_DMA_LOGICAL_ADDRESS at, min, max;
    PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN token = NULL;
    NTSTATUS st = server.ex.V2.ReserveLogicalAddressRange(handle(r->domain), r->size, opt(&r->explicit_address, &at),
                                                     opt(&r->min_address, &min), opt(&r->max_address, &max),
                                                     r->out_present ? &token : NULL);
    r->token = token ? ddi_token_id(token) : 0;
    r->token_base = token ? token->LogicalAddressBase : 0;
    r->token_size = token ? token->Size : 0;
    return st;
}

/* A token id as the routines want it: NULL for 0, and for a stale or forged id a value the
 * provider recognises as no token. */
static PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN token_of_id(uint64_t id)
{
    static const IOMMU_DMA_LOGICAL_ADDRESS_TOKEN no_token;
    if (!id)
        return NULL;
    PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN t = ddi_token_by_id(id);
    return t ? t : (PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN)&no_token;
}

static NTSTATUS call_free_reserved(union any_block *b)
{
    return server.ex.V2.FreeReservedLogicalAddressRange(token_of_id(b->token.token));
}

static NTSTATUS call_map_reserved(union any_block *b)
{
    struct hc_map_reserved_block *m = &b->map_reserved;
    IOMMU_MAP_PHYSICAL_ADDRESS storage;
    PIOMMU_MAP_PHYSICAL_ADDRESS desc;
    NTSTATUS st = load_descriptor(&m->phys, &staging_of(b)->phys, &storage, &desc);
    if (st)
        return st;
    IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT segment = {0};
    st = server.ex.V2.MapReservedLogicalRange(token_of_id(m->token), m->offset, m->permissions, desc,
                                         m->segment_present ? &segment : NULL);
    if (NT_SUCCESS(st)) {
        m->segment_offset = segment.Offset;
        m->segment_size = segment.Size;
    }
    return st;
}

static NTSTATUS call_unmap_reserved(union any_block *b)
{
    struct hc_unmap_reserved_block *u = &b->unmap_reserved;
    IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT segment = {token_of_id(u->token), u->segment_offset,
                                                             u->segment_size};
    NTSTATUS st = server.ex.V2.UnmapReservedLogicalRange(u->segment_present ? &segment : NULL);
    u->segment_offset = segment.Offset;
    u->segment_size = segment.Size;
    return st;
}

static NTSTATUS call_create_device(union any_block *b)
{
    struct hc_create_device_block *c = &b->create_device;
    DEVICE_OBJECT pdo;
    /* Any configuration is refused on x64 (E2): its contents never matter. */
    IOMMU_DEVICE_CREATION_CONFIGURATION config = {.ConfigType = IommuDeviceCreationConfigTypeAcpi};
    PIOMMU_DMA_DEVICE dev = NULL;
    NTSTATUS st = server.ex.V2.CreateDevice(device_object(&c->device, &pdo), c->config_present ? &config : NULL,
                                       c->out_present ? &dev : NULL);
    c->dma_device = (uint64_t)(uintptr_t)dev;
    return st;
}

static NTSTATUS call_delete_device(union any_block *b)
{
    return server.ex.V2.DeleteDevice(handle(b->device_handle.device));
}

static NTSTATUS call_poll(union any_block *b)
{
    struct hc_poll_block *p = &b->poll;
    hc_collect_faults();
    uint32_t n = p->capacity < HC_MAX_POLL ? p->capacity : HC_MAX_POLL;
    /* The whole buffer the guest offers is checked, whether or not reports wait. */
    if (n && !hc_in_guest_ram(p->buffer, (uint64_t)n * sizeof(struct hc_report)))
        return STATUS_ACCESS_VIOLATION;
    lock_acquire(&server.queue_lock);
    if (n > server.queue_count)
        n = server.queue_count;
    for (uint32_t i = 0; i < n; i++) {
        server.cfg.write(server.cfg.ctx, p->buffer + i * sizeof(struct hc_report), &server.queue[server.queue_first],
                         sizeof server.queue[0]);
        server.queue_first = (server.queue_first + 1) % HC_REPORT_QUEUE;
        server.queue_count--;
    }
    p->count = n;
    p->pending = server.queue_count;
    p->lost = server.lost;
    server.lost = 0;
    lock_release(&server.queue_lock);
    return STATUS_SUCCESS;
}

static NTSTATUS call_stats(union any_block *b)
{
    struct ddi_counts c = ddi_provider_counts();
    const struct page_pool *pool = server.cfg.pool;
    lock_acquire(&server.queue_lock);
    unsigned queued = server.queue_count, lost = server.lost;
    lock_release(&server.queue_lock);
    b->stats = (struct hc_stats_block){c.domains, c.devices, c.tokens, c.callbacks, c.mapped_segments,
                                       c.table_pages, pool ? pool->in_use : 0,
                                       pool ? pool->pages - pool->first_usable : 0, queued, lost,
                                       c.faults_recorded, c.fault_overflows,
                                       __atomic_load_n(&server.stats.calls, __ATOMIC_RELAXED),
                                       __atomic_load_n(&server.stats.refused_before_routine, __ATOMIC_RELAXED)};
    return STATUS_SUCCESS;
}

static NTSTATUS call_inject(union any_block *b)
{
    const struct hc_inject_block *i = &b->inject;
    if (!server.cfg.inject_pool)
        return STATUS_ACCESS_DENIED;
    switch (i->kind) {
    case HC_INJECT_POOL_FAIL:
        if (!i->value || i->value > 1000000)
            return STATUS_INVALID_PARAMETER;
        server.cfg.inject_pool->fail_at = server.cfg.inject_pool->attempts + i->value;
        return STATUS_SUCCESS;
    case HC_INJECT_DMA_GUARD:
        if (i->value > 1)
            return STATUS_INVALID_PARAMETER;
        ddi_set_dma_guard(i->value == 1); /* under the server lock, as hc_set_dma_guard */
        return STATUS_SUCCESS;
    case HC_INJECT_INVALIDATION_TIMEOUT:
        if (!i->value || i->value > 16)
            return STATUS_INVALID_PARAMETER;
        return ddi_inject_invalidation_timeouts((unsigned)i->value) ? STATUS_SUCCESS : STATUS_NOT_SUPPORTED;
    default:
        return STATUS_NOT_SUPPORTED;
    }
}

/* Each call's block size and function, from the ABI's table (ddi/hypercall.h). The
 * hypervisor's own calls (HC_AUDIT, HC_GUEST_EXIT) have none here: their blocks are checked
 * and copied like the others, then served by cfg.host_call. */
#define call_audit NULL
#define call_guest_exit NULL
#define SERVER_ENTRY(id, name, block) [id] = {sizeof(struct block), call_##name},
static const struct {
    uint32_t size;
    NTSTATUS (*handler)(union any_block *b);
} calls[HC_CALLS] = {HC_CALL_TABLE(SERVER_ENTRY)};
#undef SERVER_ENTRY
#undef call_audit
#undef call_guest_exit

/* ---- entry points ---- */

enum iommu_status hc_server_init(const struct hc_server_config *cfg)
{
    if (!cfg->read || !cfg->write || cfg->ram_count > HC_MAX_RAM_RANGES)
        return IOMMU_EINVAL;
    lock_acquire(&server.dispatch);
    server.cfg = *cfg;
    server.queue_first = server.queue_count = server.lost = 0;
    server.stats = (struct hc_server_stats){0};
    for (unsigned i = 0; i < DDI_MAX_DEVICES; i++)
        server.callbacks[i].in_use = server.faults[i].in_use = false;
    bool ok = IoGetIommuInterfaceEx(1, 0, &server.ex1) == STATUS_SUCCESS &&
              IoGetIommuInterfaceEx(2, 0, &server.ex) == STATUS_SUCCESS;
    server.ready = ok;
    lock_release(&server.dispatch);
    return ok ? IOMMU_OK : IOMMU_ENODEV;
}

uint64_t hc_dispatch(uint64_t rax, uint64_t rcx, uint64_t rdx)
{
    /* Each CPU's call in its own staging, when the CPUs are told apart; else one at a time. */
    bool serial = !server.cfg.this_cpu;
    unsigned cpu = serial ? 0 : server.cfg.this_cpu(server.cfg.ctx);
    if (serial || cpu >= HC_MAX_CPUS) {
        serial = true;
        cpu = 0;
    }
    if (serial)
        lock_acquire(&server.dispatch);
    union any_block *block = &server.staging[cpu].block;
    __atomic_add_fetch(&server.stats.calls, 1, __ATOMIC_RELAXED);
    NTSTATUS st;
    uint64_t call = rax & 0xffff;
    if (!server.ready)
        st = STATUS_NOT_SUPPORTED;
    else if (rax >> 16 != HC_ABI_VERSION)
        st = STATUS_REVISION_MISMATCH;
    else if (call >= HC_CALLS || (!calls[call].handler && !server.cfg.host_call))
        st = STATUS_INVALID_SYSTEM_SERVICE;
    else if (rdx != calls[call].size)
        st = STATUS_INFO_LENGTH_MISMATCH;
    else if ((rcx & 7) || !copy_in(block, rcx, 1, rdx))
        st = STATUS_ACCESS_VIOLATION;
    else
        st = STATUS_SUCCESS;
    if (st == STATUS_SUCCESS) {
        st = calls[call].handler ? calls[call].handler(block)
                                 : server.cfg.host_call(server.cfg.ctx, (uint32_t)call, block);
        server.cfg.write(server.cfg.ctx, rcx, block, rdx); /* checked when it was read */
    } else {
        __atomic_add_fetch(&server.stats.refused_before_routine, 1, __ATOMIC_RELAXED);
    }
    if (serial)
        lock_release(&server.dispatch);
    return (uint32_t)st;
}

void hc_collect_faults(void)
{
    lock_acquire(&server.collect);
    if (server.ready)
        ddi_dispatch_faults();
    lock_release(&server.collect);
}

void hc_collect_faults_unless_busy(void)
{
    if (!lock_try_acquire(&server.collect))
        return;
    if (server.ready)
        ddi_dispatch_faults();
    lock_release(&server.collect);
}

void hc_set_dma_guard(bool blocking)
{
    ddi_set_dma_guard(blocking);
}

struct hc_server_stats hc_server_stats(void)
{
    lock_acquire(&server.registrations);
    lock_acquire(&server.queue_lock);
    struct hc_server_stats s = server.stats;
    s.queued = server.queue_count;
    s.lost = server.lost;
    for (unsigned i = 0; i < DDI_MAX_DEVICES; i++) {
        s.fault_registrations += server.faults[i].in_use;
        s.callback_registrations += server.callbacks[i].in_use;
    }
    lock_release(&server.queue_lock);
    lock_release(&server.registrations);
    return s;
}
