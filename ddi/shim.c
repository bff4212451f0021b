/* The guest shim: wdm routines as hypercalls. See ddi/include/ddi/shim.h and
 * docs/hypercall.md. Every routine builds its block on the stack, makes one hypercall, and
 * copies the outputs to the driver's pointers only when the call succeeded (where the
 * provider does the same). */
#include "ddi/shim.h"

#include "ddi/interface_tables.h"
#include "iommu/lock.h"

/* A token as drivers see it: the public part first, the hypervisor's id behind it. */
struct shim_token {
    IOMMU_DMA_LOGICAL_ADDRESS_TOKEN pub;
    uint64_t id;
    bool in_use;
};

/* A driver's callback or fault handler, known to the hypervisor by its cookie. */
enum registration_kind { REG_STATE_CHANGE = 1, REG_FAULT };

struct registration {
    enum registration_kind kind;   /* 0: free */
    uint16_t generation;
    uint64_t device;               /* state change: the DMA device handle */
    struct hc_device where;        /* fault: the PCI function */
    PDEVICE_OBJECT pdo;            /* fault: the caller's own PDO for it (ARM64 reports name it) */
    PIOMMU_INTERFACE_STATE_CHANGE_CALLBACK callback;
    PIOMMU_DEVICE_FAULT_HANDLER handler;
    PVOID context;
};

/* The shim's state: its configuration, the guest's tokens and handler registrations. */
static struct {
    struct shim_config cfg;
    /* Twice as many slots as live tokens, free ones reused in the order they were freed:
     * a freed token's pointer names no token for the next SHIM_MAX_TOKENS successful
     * reservations at least, whatever else is live (the provider's guarantee, docs/ddi.md). */
    struct shim_token tokens[SHIM_TOKEN_SLOTS];
    uint16_t free_slot[SHIM_TOKEN_SLOTS];
    unsigned free_first, free_count, live_tokens;
    struct registration regs[SHIM_MAX_REGISTRATIONS];
    /* A driver may call from several CPUs at once: the token slots and taking a
     * registration are done under it (never across a hypercall). */
    struct iommu_lock lock;
    uint64_t hypercalls;
    volatile bool polling;
} shim;

/* A cookie that names no registration: sent to unregister a callback that is not the one
 * registered, so that the hypervisor answers as for any mismatch. */
#define NO_REGISTRATION (~0ull)

static NTSTATUS call(enum hc_call c, void *block, uint64_t size)
{
    __atomic_fetch_add(&shim.hypercalls, 1, __ATOMIC_RELAXED); /* a driver may call from several CPUs */
    return (NTSTATUS)shim.cfg.hypercall(shim.cfg.ctx, hc_rax(c), shim.cfg.gpa_of(shim.cfg.ctx, block), size);
}

/* hc_NAME(block): one call with its own block, for every call of the ABI's table
 * (ddi/hypercall.h); the call id and the block's size come from the table. */
#define SHIM_CALL(id, name, block)                                                                              \
    static inline NTSTATUS hc_##name(struct block *b)                                                          \
    {                                                                                                          \
        return call(id, b, sizeof *b);                                                                         \
    }
HC_CALL_TABLE(SHIM_CALL)
#undef SHIM_CALL

static uint64_t gpa(const void *p)
{
    return p ? shim.cfg.gpa_of(shim.cfg.ctx, p) : 0;
}

static uint64_t handle_value(const void *h)
{
    return (uint64_t)(uintptr_t)h;
}

/* ---- arguments ---- */

static struct hc_device device_of(const DEVICE_OBJECT *pdo)
{
    if (!pdo)
        return (struct hc_device){0};
    return (struct hc_device){.present = 1, .bus = pdo->Bus, .device = pdo->Device, .function = pdo->Function,
                              .segment = pdo->Segment, .type = pdo->Type};
}

static struct hc_opt_u64 opt(const IOMMU_DMA_LOGICAL_ADDRESS *p)
{
    return p ? (struct hc_opt_u64){1, *p} : (struct hc_opt_u64){0, 0};
}

static struct hc_phys phys_of_mdl(const MDL *mdl)
{
    if (!mdl)
        return (struct hc_phys){.map_type = MapPhysicalAddressTypeMdl, .flags = HC_PHYS_MDL_NULL};
    /* The page numbers follow the MDL: the hypervisor reads them where they are. */
    return (struct hc_phys){.map_type = MapPhysicalAddressTypeMdl, .base = gpa(MmGetMdlPfnArray(mdl)),
                            .mdl_byte_count = mdl->ByteCount, .mdl_byte_offset = mdl->ByteOffset};
}

static struct hc_phys phys_of(const IOMMU_MAP_PHYSICAL_ADDRESS *d)
{
    if (!d)
        return (struct hc_phys){.map_type = HC_PHYS_NULL};
    switch (d->MapType) {
    case MapPhysicalAddressTypeMdl:
        return phys_of_mdl(d->Mdl.Mdl);
    case MapPhysicalAddressTypeContiguousRange:
        return (struct hc_phys){.map_type = d->MapType, .base = (uint64_t)d->ContiguousRange.Base.QuadPart,
                                .count = d->ContiguousRange.Size};
    case MapPhysicalAddressTypePfn:
        return (struct hc_phys){.map_type = d->MapType, .base = gpa(d->PfnArray.PageFrame),
                                .count = d->PfnArray.NumberOfPages};
    default:
        return (struct hc_phys){.map_type = (uint32_t)d->MapType}; /* for the provider to refuse */
    }
}

/* A V1 MDL argument: NULL is passed as NULL. */
static struct hc_phys phys_of_v1_mdl(const MDL *mdl)
{
    return mdl ? phys_of_mdl(mdl) : (struct hc_phys){.map_type = HC_PHYS_NULL};
}

/* The hypervisor's id of a token pointer a driver passes: 0 for NULL, and an id that names
 * no token for anything that is not a live token of this shim. */
static uint64_t token_id(const void *p)
{
    if (!p)
        return 0;
    uintptr_t a = (uintptr_t)p, base = (uintptr_t)&shim.tokens[0];
    if (a < base || a >= base + sizeof shim.tokens || (a - base) % sizeof shim.tokens[0])
        return NO_REGISTRATION;
    const struct shim_token *t = (const struct shim_token *)a;
    return t->in_use ? t->id : NO_REGISTRATION;
}

/* The free slot that has waited longest; NULL when SHIM_MAX_TOKENS are live. */
static struct shim_token *new_token(void)
{
    lock_acquire(&shim.lock);
    struct shim_token *t = NULL;
    /* Slots out of the queue: live tokens and those a reservation in flight holds. */
    if (SHIM_TOKEN_SLOTS - shim.free_count < SHIM_MAX_TOKENS) {
        t = &shim.tokens[shim.free_slot[shim.free_first]];
        shim.free_first = (shim.free_first + 1) % SHIM_TOKEN_SLOTS;
        shim.free_count--;
    }
    lock_release(&shim.lock);
    return t;
}

/* A slot taken by new_token now holds a live token. */
static void token_live(struct shim_token *t, const struct shim_token *value)
{
    lock_acquire(&shim.lock);
    *t = *value;
    shim.live_tokens++;
    lock_release(&shim.lock);
}

/* A slot back in the queue: at its end once its token is freed, at its front when the
 * reservation it was taken for failed (it named no token). */
static void release_token(struct shim_token *t, bool never_used)
{
    lock_acquire(&shim.lock);
    uint16_t i = (uint16_t)(t - shim.tokens);
    t->in_use = false;
    if (never_used) {
        shim.free_first = (shim.free_first + SHIM_TOKEN_SLOTS - 1) % SHIM_TOKEN_SLOTS;
        shim.free_slot[shim.free_first] = i;
    } else {
        shim.free_slot[(shim.free_first + shim.free_count) % SHIM_TOKEN_SLOTS] = i;
        shim.live_tokens--;
    }
    shim.free_count++;
    lock_release(&shim.lock);
}

static uint64_t cookie_of(const struct registration *r)
{
    return (uint64_t)r->generation << 32 | (uint64_t)(r - shim.regs + 1);
}

static struct registration *registration_of(uint64_t cookie)
{
    uint64_t index = (cookie & 0xffffffffu) - 1;
    if (index >= SHIM_MAX_REGISTRATIONS)
        return NULL;
    struct registration *r = &shim.regs[index];
    return r->kind && r->generation == (uint16_t)(cookie >> 32) ? r : NULL;
}

static struct registration *new_registration(enum registration_kind kind)
{
    struct registration *r = NULL;
    lock_acquire(&shim.lock);
    for (unsigned i = 0; i < SHIM_MAX_REGISTRATIONS && !r; i++)
        if (!shim.regs[i].kind) {
            uint16_t generation = (uint16_t)(shim.regs[i].generation + 1);
            shim.regs[i] = (struct registration){.kind = kind, .generation = generation ? generation : 1};
            r = &shim.regs[i];
        }
    lock_release(&shim.lock);
    return r;
}

static struct registration *fault_registration_of(const struct hc_device *where)
{
    for (unsigned i = 0; i < SHIM_MAX_REGISTRATIONS; i++) {
        struct registration *r = &shim.regs[i];
        if (r->kind == REG_FAULT && r->where.segment == where->segment && r->where.bus == where->bus &&
            r->where.device == where->device && r->where.function == where->function)
            return r;
    }
    return NULL;
}

/* ---- V1 routines (and those V2 shares) ---- */

static NTSTATUS NTAPI CreateDomain(BOOLEAN OsManagedPageTable, PIOMMU_DMA_DOMAIN *DomainOut)
{
    struct hc_create_domain_block b = {.os_managed = OsManagedPageTable != 0, .out_present = DomainOut != NULL};
    NTSTATUS st = hc_create_domain(&b);
    if (NT_SUCCESS(st))
        *DomainOut = (PIOMMU_DMA_DOMAIN)(uintptr_t)b.domain;
    return st;
}

static NTSTATUS NTAPI DeleteDomain(PIOMMU_DMA_DOMAIN Domain)
{
    struct hc_domain_block b = {handle_value(Domain)};
    return hc_delete_domain(&b);
}

static NTSTATUS NTAPI AttachDevice(PIOMMU_DMA_DOMAIN Domain, PDEVICE_OBJECT PhysicalDeviceObject,
                                   ULONG InputMappingIdBase, ULONG MappingCount)
{
    struct hc_attach_device_block b = {handle_value(Domain), device_of(PhysicalDeviceObject), InputMappingIdBase,
                                       MappingCount};
    return hc_attach_device(&b);
}

static NTSTATUS NTAPI DetachDevice(PIOMMU_DMA_DOMAIN Domain, PDEVICE_OBJECT PhysicalDeviceObject,
                                   ULONG InputMappingId)
{
    struct hc_detach_device_block b = {handle_value(Domain), device_of(PhysicalDeviceObject), InputMappingId, 0};
    return hc_detach_device(&b);
}

static NTSTATUS NTAPI FlushDomain(PIOMMU_DMA_DOMAIN Domain)
{
    struct hc_domain_block b = {handle_value(Domain)};
    return hc_flush_domain(&b);
}

static NTSTATUS NTAPI FlushDomainByVaList(PIOMMU_DMA_DOMAIN Domain, BOOLEAN LastLevel, ULONG Number, PVOID VaList)
{
    struct hc_flush_va_list_block b = {.domain = handle_value(Domain), .last_level = LastLevel != 0,
                                       .list_present = VaList != NULL, .number = Number, .list = gpa(VaList)};
    return hc_flush_va_list(&b);
}

static NTSTATUS NTAPI QueryInputMappings(PDEVICE_OBJECT PhysicalDeviceObject, PINPUT_MAPPING_ELEMENT Buffer,
                                         ULONG BufferLength, PULONG ReturnLength)
{
    struct hc_query_input_mappings_block b = {.device = device_of(PhysicalDeviceObject), .buffer_length = BufferLength,
                                              .buffer = Buffer ? gpa(Buffer) : 0};
    NTSTATUS st = hc_query_input_mappings(&b);
    if ((NT_SUCCESS(st) || st == STATUS_BUFFER_TOO_SMALL) && ReturnLength)
        *ReturnLength = b.return_length;
    return st;
}

static NTSTATUS NTAPI MapLogicalRange(PIOMMU_DMA_DOMAIN Domain, ULONG Permissions, PMDL Mdl, ULONGLONG LogicalAddress)
{
    struct hc_map_logical_block b = {.domain = handle_value(Domain), .permissions = Permissions,
                                     .mdl = phys_of_v1_mdl(Mdl), .logical_address = LogicalAddress};
    return hc_map_logical(&b);
}

static NTSTATUS NTAPI UnmapLogicalRange(PIOMMU_DMA_DOMAIN Domain, ULONGLONG LogicalAddress, ULONGLONG NumberOfPages)
{
    struct hc_unmap_logical_block b = {handle_value(Domain), LogicalAddress, NumberOfPages};
    return hc_unmap_logical(&b);
}

static NTSTATUS NTAPI MapIdentityRange(PIOMMU_DMA_DOMAIN Domain, ULONG Permissions, PMDL Mdl)
{
    struct hc_identity_block b = {.domain = handle_value(Domain), .permissions = Permissions,
                                  .phys = phys_of_v1_mdl(Mdl)};
    return hc_map_identity(&b);
}

static NTSTATUS NTAPI UnmapIdentityRange(PIOMMU_DMA_DOMAIN Domain, PMDL Mdl)
{
    struct hc_identity_block b = {.domain = handle_value(Domain), .phys = phys_of_v1_mdl(Mdl)};
    return hc_unmap_identity(&b);
}

static NTSTATUS NTAPI SetDeviceFaultReporting(PDEVICE_OBJECT PhysicalDeviceObject, ULONG InputMappingIdBase,
                                              BOOLEAN Enable, PDEVICE_FAULT_CONFIGURATION FaultConfig)
{
    struct hc_fault_reporting_block b = {.device = device_of(PhysicalDeviceObject),
                                         .input_mapping_id_base = InputMappingIdBase, .enable = Enable != 0,
                                         .config_present = FaultConfig != NULL,
                                         .handler_present = FaultConfig && FaultConfig->FaultHandler};
    /* One registration per PCI function, reused while reporting stays on. */
    struct registration *r = b.device.present ? fault_registration_of(&b.device) : NULL;
    bool made = false;
    if (!r && b.device.present && Enable) {
        r = new_registration(REG_FAULT);
        if (!r)
            return STATUS_INSUFFICIENT_RESOURCES;
        made = true;
    }
    b.cookie = r ? cookie_of(r) : 0;
    /* Complete before the call: a poll may deliver a fault as soon as it returns. */
    struct registration before = r ? *r : (struct registration){0};
    if (r && Enable && FaultConfig && FaultConfig->FaultHandler) {
        r->where = b.device;
        r->pdo = PhysicalDeviceObject;
        r->handler = FaultConfig->FaultHandler;
        r->context = FaultConfig->FaultContext;
    }
    NTSTATUS st = hc_fault_reporting(&b);
    if (!NT_SUCCESS(st)) {
        if (made)
            r->kind = 0;
        else if (r)
            *r = before;
        return st;
    }
    if (r && !Enable)
        r->kind = 0; /* F3: reporting off */
    return st;
}

static NTSTATUS NTAPI ConfigureDomain(PIOMMU_DMA_DOMAIN Domain, PDOMAIN_CONFIGURATION Configuration)
{
    struct hc_configure_domain_block b = {handle_value(Domain), Configuration != NULL,
                                          Configuration ? (uint32_t)Configuration->Type : 0};
    return hc_configure_domain(&b);
}

/* ---- V2 routines ---- */

static NTSTATUS NTAPI CreateDomainEx(IOMMU_DMA_DOMAIN_TYPE DomainType, IOMMU_DMA_DOMAIN_CREATION_FLAGS Flags,
                                     PIOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG LogicalAllocatorConfig,
                                     PIOMMU_DMA_RESERVED_REGION ReservedRegions, PIOMMU_DMA_DOMAIN *DomainOut)
{
    /* The list, flattened; a list longer than the hypervisor takes is cut one past its
     * bound, which is enough for the provider to refuse it (and ends a looped list). */
    struct hc_reserved_region regions[HC_MAX_REGIONS];
    uint32_t n = 0;
    for (PIOMMU_DMA_RESERVED_REGION r = ReservedRegions; r && n < HC_MAX_REGIONS; r = r->RegionNext, n++)
        regions[n] = (struct hc_reserved_region){.base = r->Base, .number_of_pages = r->NumberOfPages,
                                                 .should_map = r->ShouldMap != 0};
    struct hc_create_domain_ex_block b = {
        .domain_type = (uint32_t)DomainType, .flags = Flags.AsUlonglong,
        .allocator_present = LogicalAllocatorConfig != NULL, .out_present = DomainOut != NULL,
        .allocator_type = LogicalAllocatorConfig ? (uint32_t)LogicalAllocatorConfig->LogicalAllocatorType : 0,
        .address_width = LogicalAllocatorConfig ? LogicalAllocatorConfig->BuddyAllocatorConfig.AddressWidth : 0,
        .region_count = n, .regions = n ? gpa(regions) : 0};
    NTSTATUS st = hc_create_domain_ex(&b);
    if (NT_SUCCESS(st))
        *DomainOut = (PIOMMU_DMA_DOMAIN)(uintptr_t)b.domain;
    return st;
}

static NTSTATUS NTAPI AttachDeviceEx(PIOMMU_DMA_DOMAIN Domain, PIOMMU_DMA_DEVICE DmaDevice)
{
    struct hc_attach_device_ex_block b = {handle_value(Domain), handle_value(DmaDevice)};
    return hc_attach_device_ex(&b);
}

static NTSTATUS NTAPI DetachDeviceEx(PIOMMU_DMA_DEVICE DmaDevice)
{
    struct hc_device_handle_block b = {handle_value(DmaDevice)};
    return hc_detach_device_ex(&b);
}

static NTSTATUS NTAPI MapLogicalRangeEx(PIOMMU_DMA_DOMAIN Domain, ULONG Permissions,
                                        PIOMMU_MAP_PHYSICAL_ADDRESS PhysicalAddressToMap,
                                        PIOMMU_DMA_LOGICAL_ADDRESS ExplicitLogicalAddress,
                                        PIOMMU_DMA_LOGICAL_ADDRESS MinLogicalAddress,
                                        PIOMMU_DMA_LOGICAL_ADDRESS MaxLogicalAddress,
                                        PIOMMU_DMA_LOGICAL_ADDRESS LogicalAddressOut)
{
    struct hc_map_logical_ex_block b = {.domain = handle_value(Domain), .permissions = Permissions,
                                        .out_present = LogicalAddressOut != NULL,
                                        .phys = phys_of(PhysicalAddressToMap),
                                        .explicit_address = opt(ExplicitLogicalAddress),
                                        .min_address = opt(MinLogicalAddress), .max_address = opt(MaxLogicalAddress)};
    NTSTATUS st = hc_map_logical_ex(&b);
    if (NT_SUCCESS(st))
        *LogicalAddressOut = b.logical_address;
    return st;
}

static NTSTATUS NTAPI MapIdentityRangeEx(PIOMMU_DMA_DOMAIN Domain, ULONG Permissions,
                                         PIOMMU_MAP_PHYSICAL_ADDRESS PhysicalAddressToMap)
{
    struct hc_identity_block b = {.domain = handle_value(Domain), .permissions = Permissions,
                                  .phys = phys_of(PhysicalAddressToMap)};
    return hc_map_identity_ex(&b);
}

static NTSTATUS NTAPI UnmapIdentityRangeEx(PIOMMU_DMA_DOMAIN Domain, PIOMMU_MAP_PHYSICAL_ADDRESS MappedPhysicalAddress)
{
    struct hc_identity_block b = {.domain = handle_value(Domain), .phys = phys_of(MappedPhysicalAddress)};
    return hc_unmap_identity_ex(&b);
}

static NTSTATUS NTAPI SetDeviceFaultReportingEx(PIOMMU_DMA_DEVICE DmaDevice, ULONG InputMappingIdBase, BOOLEAN Enable,
                                                PDEVICE_FAULT_CONFIGURATION FaultConfig)
{
    struct hc_fault_reporting_ex_block b = {.device = handle_value(DmaDevice),
                                            .input_mapping_id_base = InputMappingIdBase, .enable = Enable != 0,
                                            .config_present = FaultConfig != NULL};
    return hc_fault_reporting_ex(&b);
}

static VOID NTAPI QueryAvailableDomainTypes(PIOMMU_DMA_DEVICE DmaDevice, PULONG AvailableDomains)
{
    struct hc_query_domain_types_block b = {.device = handle_value(DmaDevice), .out_present = AvailableDomains != NULL};
    if (NT_SUCCESS(hc_query_domain_types(&b)) && AvailableDomains)
        *AvailableDomains = b.available;
}

static struct registration *callback_registration_of(PIOMMU_DMA_DEVICE device,
                                                     PIOMMU_INTERFACE_STATE_CHANGE_CALLBACK cb)
{
    for (unsigned i = 0; i < SHIM_MAX_REGISTRATIONS; i++) {
        struct registration *r = &shim.regs[i];
        if (r->kind == REG_STATE_CHANGE && r->device == handle_value(device) && r->callback == cb)
            return r;
    }
    return NULL;
}

static NTSTATUS NTAPI RegisterInterfaceStateChangeCallback(PIOMMU_INTERFACE_STATE_CHANGE_CALLBACK StateChangeCallback,
                                                           PVOID Context, PIOMMU_DMA_DEVICE DmaDevice,
                                                           PIOMMU_INTERFACE_STATE_CHANGE_FIELDS StateFields)
{
    struct registration *r = StateChangeCallback ? new_registration(REG_STATE_CHANGE) : NULL;
    if (StateChangeCallback && !r)
        return STATUS_INSUFFICIENT_RESOURCES;
    if (r) { /* complete before the call: its first report may be delivered at once */
        r->device = handle_value(DmaDevice);
        r->callback = StateChangeCallback;
        r->context = Context;
    }
    struct hc_state_change_block b = {.device = handle_value(DmaDevice), .cookie = r ? cookie_of(r) : 0,
                                      .fields_present = StateFields != NULL,
                                      .fields = StateFields ? StateFields->AsULONG : 0};
    NTSTATUS st = hc_register_state_change(&b);
    if (!NT_SUCCESS(st)) {
        if (r)
            r->kind = 0;
        return st;
    }
    shim_poll(); /* S2: the first call, before this returns */
    return st;
}

static NTSTATUS NTAPI UnregisterInterfaceStateChangeCallback(PIOMMU_INTERFACE_STATE_CHANGE_CALLBACK StateChangeCallback,
                                                             PIOMMU_DMA_DEVICE DmaDevice)
{
    struct registration *r = StateChangeCallback ? callback_registration_of(DmaDevice, StateChangeCallback) : NULL;
    struct hc_state_change_block b = {.device = handle_value(DmaDevice),
                                      .cookie = !StateChangeCallback ? 0 : r ? cookie_of(r) : NO_REGISTRATION};
    NTSTATUS st = hc_unregister_state_change(&b);
    if (NT_SUCCESS(st) && r)
        r->kind = 0;
    return st;
}

static NTSTATUS NTAPI ReserveLogicalAddressRange(PIOMMU_DMA_DOMAIN Domain, SIZE_T Size,
                                                 PIOMMU_DMA_LOGICAL_ADDRESS ExplicitLogicalAddress,
                                                 PIOMMU_DMA_LOGICAL_ADDRESS MinLogicalAddress,
                                                 PIOMMU_DMA_LOGICAL_ADDRESS MaxLogicalAddress,
                                                 PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN *LogicalAddressToken)
{
    if (LogicalAddressToken)
        *LogicalAddressToken = NULL; /* R5 */
    struct shim_token *t = new_token();
    if (!t)
        return STATUS_INSUFFICIENT_RESOURCES;
    struct hc_reserve_block b = {.domain = handle_value(Domain), .size = Size,
                                 .explicit_address = opt(ExplicitLogicalAddress), .min_address = opt(MinLogicalAddress),
                                 .max_address = opt(MaxLogicalAddress), .out_present = LogicalAddressToken != NULL};
    NTSTATUS st = hc_reserve(&b);
    if (NT_SUCCESS(st)) {
        token_live(t, &(struct shim_token){.pub = {b.token_base, b.token_size}, .id = b.token, .in_use = true});
        *LogicalAddressToken = &t->pub;
    } else {
        release_token(t, true);
    }
    return st;
}

static NTSTATUS NTAPI FreeReservedLogicalAddressRange(PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN LogicalAddressToken)
{
    struct hc_token_block b = {token_id(LogicalAddressToken)};
    NTSTATUS st = hc_free_reserved(&b);
    if (NT_SUCCESS(st))
        release_token((struct shim_token *)LogicalAddressToken, false); /* it was live: the id matched */
    return st;
}

static NTSTATUS NTAPI MapReservedLogicalRange(PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN LogicalAddressToken, SIZE_T Offset,
                                              ULONG Permissions, PIOMMU_MAP_PHYSICAL_ADDRESS PhysicalAddressToMap,
                                              PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT MappedSegment)
{
    struct hc_map_reserved_block b = {.token = token_id(LogicalAddressToken), .offset = Offset,
                                      .permissions = Permissions, .segment_present = MappedSegment != NULL,
                                      .phys = phys_of(PhysicalAddressToMap)};
    NTSTATUS st = hc_map_reserved(&b);
    if (NT_SUCCESS(st)) {
        MappedSegment->OwningToken = LogicalAddressToken;
        MappedSegment->Offset = b.segment_offset;
        MappedSegment->Size = b.segment_size;
    }
    return st;
}

static NTSTATUS NTAPI UnmapReservedLogicalRange(PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT MappedSegment)
{
    struct hc_unmap_reserved_block b = {.segment_present = MappedSegment != NULL};
    if (MappedSegment) {
        b.token = token_id(MappedSegment->OwningToken);
        b.segment_offset = MappedSegment->Offset;
        b.segment_size = MappedSegment->Size;
    }
    NTSTATUS st = hc_unmap_reserved(&b);
    if (NT_SUCCESS(st)) {
        MappedSegment->Offset = b.segment_offset; /* R15: zero */
        MappedSegment->Size = b.segment_size;
    }
    return st;
}

static NTSTATUS NTAPI CreateDevice(PDEVICE_OBJECT DeviceObject, PIOMMU_DEVICE_CREATION_CONFIGURATION DeviceConfig,
                                   PIOMMU_DMA_DEVICE *DmaDeviceOut)
{
    struct hc_create_device_block b = {.device = device_of(DeviceObject), .config_present = DeviceConfig != NULL,
                                       .out_present = DmaDeviceOut != NULL};
    NTSTATUS st = hc_create_device(&b);
    if (NT_SUCCESS(st))
        *DmaDeviceOut = (PIOMMU_DMA_DEVICE)(uintptr_t)b.dma_device;
    return st;
}

static NTSTATUS NTAPI DeleteDevice(PIOMMU_DMA_DEVICE DmaDevice)
{
    struct hc_device_handle_block b = {handle_value(DmaDevice)};
    return hc_delete_device(&b);
}

/* ---- tables, retrieval and reports ---- */

static const DMA_IOMMU_INTERFACE_V1 shim_v1 = {
    CreateDomain, DeleteDomain, AttachDevice, DetachDevice, FlushDomain, FlushDomainByVaList, QueryInputMappings,
    MapLogicalRange, UnmapLogicalRange, MapIdentityRange, UnmapIdentityRange, SetDeviceFaultReporting,
    ConfigureDomain,
};

static const DMA_IOMMU_INTERFACE_V2 shim_v2 = {
    CreateDomainEx, DeleteDomain, AttachDeviceEx, DetachDeviceEx, FlushDomain, FlushDomainByVaList,
    QueryInputMappings, MapLogicalRangeEx, UnmapLogicalRange, MapIdentityRangeEx, UnmapIdentityRangeEx,
    SetDeviceFaultReportingEx, ConfigureDomain, QueryAvailableDomainTypes, RegisterInterfaceStateChangeCallback,
    UnregisterInterfaceStateChangeCallback, ReserveLogicalAddressRange, FreeReservedLogicalAddressRange,
    MapReservedLogicalRange, UnmapReservedLogicalRange, CreateDevice, DeleteDevice,
};

void shim_init(const struct shim_config *cfg)
{
    shim.cfg = *cfg;
    shim.hypercalls = 0;
    shim.polling = false;
    shim.free_first = 0, shim.free_count = SHIM_TOKEN_SLOTS, shim.live_tokens = 0;
    for (unsigned i = 0; i < SHIM_TOKEN_SLOTS; i++) {
        shim.tokens[i].in_use = false;
        shim.free_slot[i] = (uint16_t)i;
    }
    for (unsigned i = 0; i < SHIM_MAX_REGISTRATIONS; i++)
        shim.regs[i].kind = 0;
}

/* The checks are the hypervisor's (the provider's own); the tables are the shim's. */
NTSTATUS NTAPI ShimIoGetIommuInterface(ULONG Version, PDMA_IOMMU_INTERFACE InterfaceOut)
{
    struct hc_get_interface_block b = {.version = Version, .ex = 0, .out_present = InterfaceOut != NULL};
    NTSTATUS st = hc_get_interface(&b);
    if (NT_SUCCESS(st))
        ddi_write_interface(InterfaceOut, &shim_v1);
    return st;
}

NTSTATUS NTAPI ShimIoGetIommuInterfaceEx(ULONG Version, ULONGLONG Flags, PDMA_IOMMU_INTERFACE_EX InterfaceOut)
{
    struct hc_get_interface_block b = {.version = Version, .ex = 1, .out_present = InterfaceOut != NULL,
                                       .flags = Flags};
    NTSTATUS st = hc_get_interface(&b);
    if (NT_SUCCESS(st))
        ddi_write_interface_ex(InterfaceOut, Version, &shim_v1, &shim_v2);
    return st;
}

static unsigned deliver(const struct hc_report *rep)
{
    struct registration *r = registration_of(rep->cookie);
    if (!r)
        return 0; /* ended since it was queued */
    if (rep->kind == HC_REPORT_STATE_CHANGE && r->kind == REG_STATE_CHANGE) {
        IOMMU_INTERFACE_STATE_CHANGE change = {.AvailableDomainTypes = rep->available};
        change.PresentFields.AsULONG = rep->flags;
        r->callback(&change, r->context);
        return 1;
    }
    if (rep->kind == HC_REPORT_FAULT && r->kind == REG_FAULT) {
        FAULT_INFORMATION info = {.Type = FaultInformationX64};
        if (rep->flags & HC_FAULT_ARM64) {
            info.Type = FaultInformationArm64;
            info.Arm64.DomainHandle = (PVOID)(uintptr_t)rep->domain;
            info.Arm64.FaultAddress = (PVOID)(uintptr_t)rep->fault_address;
            info.Arm64.PhysicalDeviceObject = r->pdo;
            info.Arm64.InputMappingId = rep->input_mapping_id;
            info.Arm64.Flags.FaultAddressValid = (rep->flags & HC_FAULT_ADDRESS_VALID) != 0;
            info.Arm64.Flags.WriteNotRead = (rep->flags & HC_FAULT_WRITE) != 0;
            info.Arm64.Type = (FAULT_INFORMATION_ARM64_TYPE)rep->available;
            info.Arm64.IommuBaseAddress = rep->iommu_base;
        } else {
            info.X64.DomainHandle = (PVOID)(uintptr_t)rep->domain;
            info.X64.FaultAddress = (PVOID)(uintptr_t)rep->fault_address;
            info.X64.Flags.FaultAddressValid = (rep->flags & HC_FAULT_ADDRESS_VALID) != 0;
            info.X64.Type = (FAULT_INFORMATION_X64_TYPE)rep->available;
            info.X64.IommuBaseAddress = rep->iommu_base;
            info.X64.PciSegment = rep->pci_segment;
        }
        r->handler(r->context, &info);
        return 1;
    }
    return 0;
}

uint64_t shim_hypercalls(void)
{
    return __atomic_load_n(&shim.hypercalls, __ATOMIC_RELAXED);
}

unsigned shim_poll(void)
{
    if (shim.polling)
        return 0; /* a poll interrupted by another: the first one delivers */
    shim.polling = true;
    unsigned delivered = 0;
    struct hc_report reports[8];
    struct hc_poll_block b;
    do {
        b = (struct hc_poll_block){.buffer = gpa(reports), .capacity = sizeof reports / sizeof reports[0]};
        if (!NT_SUCCESS(hc_poll(&b)))
            break;
        for (uint32_t i = 0; i < b.count; i++)
            delivered += deliver(&reports[i]);
    } while (b.pending && b.count);
    shim.polling = false;
    return delivered;
}
