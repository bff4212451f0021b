/* The wdm DMA IOMMU interface over the IOMMU core. See ddi/include/ddi/provider.h, and
 * docs/ddi.md for the status codes chosen where the reference leaves them open.
 *
 * Objects live in fixed tables. Domain and device handles are not pointers but encoded
 * (tag, generation, index) values, checked against the tables before anything is touched, so a
 * stale or forged handle is an error, not a crash. Tokens are pointers (callers read their
 * public fields) into the token table, and are accepted only if they point at a live entry.
 *
 * Locking: the provider lock covers the object tables and is held briefly; a routine that
 * changes page tables pins its domain (busy count) under the provider lock and then works
 * under the domain's layout lock and its core lock (iommu/domain.c), so maps in different
 * domains run in parallel and a domain cannot be deleted while a routine works on it. Ranks,
 * outermost first: layout lock, provider lock (an attach adds the unit to the domain core
 * under it), domain core lock, unit lock, page pool lock.
 * Callbacks and fault handlers are called with no lock held. */
#include "ddi/provider.h"

#include "ddi/interface_tables.h"
#include "iommu/domain.h"
#include "iommu/iova.h"
#include "iommu/lock.h"
#include "iommu/ranges.h"
#include "iommu/slpt.h"

#define ALLOCATOR_BYTES (32u << 10) /* per domain: 768 live allocations, 512 free blocks */
#define HANDLE_TAG_SHIFT 48
#define TAG_DOMAIN 0xd0d0ull
#define TAG_DEVICE 0xde71ull
#define TAG_TOKEN 0x70c3ull

/* The device object a driver passes: a PCI function (see wdm_iommu.h). */
static bool pdo_location(const DEVICE_OBJECT *pdo, uint16_t *segment, uint16_t *sid)
{
    if (!pdo || pdo->Type != IOMMU_PCI_DEVICE_OBJECT_TYPE)
        return false;
    *segment = pdo->Segment;
    *sid = (uint16_t)(pdo->Bus << 8 | (pdo->Device & 0x1f) << 3 | (pdo->Function & 7));
    return pdo->Device < 32 && pdo->Function < 8;
}

enum domain_kind {
    KIND_V1_OS_MANAGED,     /* CreateDomain(TRUE): like Translate */
    KIND_V1_CALLER_MANAGED, /* CreateDomain(FALSE): can never be configured here, blocks DMA */
    KIND_TRANSLATE,
    KIND_PASSTHROUGH,
};

struct ddi_domain {
    bool in_use;
    uint16_t generation;
    enum domain_kind kind;
    unsigned busy;                /* routines working on it right now */
    unsigned devices;             /* attached */
    unsigned tokens;              /* live */
    bool has_allocator;
    struct iova_allocator iova;
    struct iommu_domain core;     /* tables (caller-managed: empty, so every DMA faults) */
    /* Held by the routines that decide which logical addresses a map or unmap may touch
     * (explicit and identity maps, unmaps, reserving and freeing tokens), so that "no token
     * covers this range" and the change that relies on it are one step. Ranks above the
     * domain core's lock; the provider lock is taken inside it. */
    struct iommu_lock layout_lock;
};

struct ddi_device {
    bool in_use;
    uint16_t generation;
    bool from_v1;                 /* made by a V1 attach: no handle was given out */
    uint16_t segment, sid;
    unsigned unit;
    int domain;                   /* index, or -1 */
    PIOMMU_INTERFACE_STATE_CHANGE_CALLBACK callback;
    PVOID callback_context;
    ULONG watched;
    ULONG last_types;             /* the mask callbacks were last told about */
    bool fault_reporting;
    DEVICE_FAULT_CONFIGURATION fault_config;
};

/* A segment mapped into a token, in pages from the token's base. */
struct ddi_segment {
    uint32_t first, pages;
};

struct ddi_token {
    IOMMU_DMA_LOGICAL_ADDRESS_TOKEN pub; /* first: callers read it */
    bool in_use;
    uint16_t generation;          /* for ddi_token_id */
    bool from_allocator;
    int domain;
    unsigned segments;            /* mapped now: seg[0 .. segments) */
    struct ddi_segment seg[DDI_MAX_TOKEN_SEGMENTS];
};

/* Token slots: twice as many as live tokens, reused in the order they were freed (below). */
#define TOKEN_SLOTS (2 * DDI_MAX_TOKENS)

/* The provider's state: the platform, the object tables, the token slots. */
static struct provider {
    struct iommu_lock lock;
    bool ready;
    bool dma_guard;
    struct ddi_platform plat;
    unsigned levels;
    uint8_t superpages;
    const struct platform *tables_write_back; /* NULL: every unit snoops its table walks */
    uint16_t max_domain_id;
    struct ddi_domain domain[DDI_MAX_DOMAINS];
    struct ddi_device device[DDI_MAX_DEVICES];
    /* A token handle is a pointer callers read, so it cannot carry a generation. There are
     * TOKEN_SLOTS slots for at most DDI_MAX_TOKENS live tokens, and free slots are queued in
     * the order they were freed (free_slot, a ring of free_count indices from free_head).
     * When a token is freed at least TOKEN_SLOTS - DDI_MAX_TOKENS = DDI_MAX_TOKENS other
     * slots are free, all queued ahead of it, so its pointer is refused for the next
     * DDI_MAX_TOKENS successful reservations at least, however many tokens are live. */
    struct ddi_token token[TOKEN_SLOTS];
    uint16_t free_slot[TOKEN_SLOTS];
    unsigned free_head, free_count;
    unsigned live_tokens;
    uint64_t allocator_mem[DDI_MAX_DOMAINS][ALLOCATOR_BYTES / 8];
    /* The platform's guest RAM in whole pages, sorted and merged (set at init, then only
     * read), so that memory that is RAM throughout lies in exactly one range. */
    struct addr_range ram[DDI_MAX_GUEST_RAM_RANGES];
    unsigned ram_count;
} provider;

/* ---- handles ---- */

static void *make_handle(uint64_t tag, uint16_t generation, unsigned index)
{
    return (void *)(uintptr_t)(tag << HANDLE_TAG_SHIFT | (uint64_t)generation << 16 | (index + 1));
}

static struct ddi_domain *domain_of(PIOMMU_DMA_DOMAIN h)
{
    uint64_t v = (uint64_t)(uintptr_t)h;
    unsigned index = (unsigned)(v & 0xffff) - 1;
    if (v >> HANDLE_TAG_SHIFT != TAG_DOMAIN || index >= DDI_MAX_DOMAINS)
        return NULL;
    struct ddi_domain *d = &provider.domain[index];
    return d->in_use && d->generation == (uint16_t)(v >> 16) ? d : NULL;
}

static struct ddi_device *device_of(PIOMMU_DMA_DEVICE h)
{
    uint64_t v = (uint64_t)(uintptr_t)h;
    unsigned index = (unsigned)(v & 0xffff) - 1;
    if (v >> HANDLE_TAG_SHIFT != TAG_DEVICE || index >= DDI_MAX_DEVICES)
        return NULL;
    struct ddi_device *dev = &provider.device[index];
    return dev->in_use && !dev->from_v1 && dev->generation == (uint16_t)(v >> 16) ? dev : NULL;
}

/* A token pointer is accepted only if it is one of ours and live. */
static struct ddi_token *token_of(const void *p)
{
    uintptr_t a = (uintptr_t)p, base = (uintptr_t)&provider.token[0];
    if (a < base || a >= base + sizeof provider.token || (a - base) % sizeof provider.token[0])
        return NULL;
    struct ddi_token *t = (struct ddi_token *)a;
    return t->in_use ? t : NULL;
}

static unsigned domain_index(const struct ddi_domain *d)
{
    return (unsigned)(d - provider.domain);
}

static uint16_t domain_id(const struct ddi_domain *d)
{
    return (uint16_t)(provider.plat.first_domain_id + domain_index(d));
}

/* Pins a domain for the length of a routine; NULL if the handle is not a live domain. */
static struct ddi_domain *domain_get(PIOMMU_DMA_DOMAIN h)
{
    lock_acquire(&provider.lock);
    struct ddi_domain *d = provider.ready ? domain_of(h) : NULL;
    if (d)
        d->busy++;
    lock_release(&provider.lock);
    return d;
}

static void domain_put(struct ddi_domain *d)
{
    lock_acquire(&provider.lock);
    d->busy--;
    lock_release(&provider.lock);
}

/* ---- policy: the one place that says what is allowed ---- */

static bool behind_unit(const struct ddi_device *dev)
{
    return dev->unit < provider.plat.unit_count;
}

/* The domain types a device may use now, as QueryAvailableDomainTypes reports them. */
static ULONG available_types(const struct ddi_device *dev)
{
    if (!behind_unit(dev))
        return 0;
    ULONG mask = 1u << DomainTypeTranslate;
    /* PassThrough is the platform's identity domain, which there must be (see
     * program_context), and DMA Guard withdraws it. */
    if (!provider.dma_guard && provider.plat.has_default_context)
        mask |= 1u << DomainTypePassThrough;
    return mask; /* Unmanaged and TranslateS1 are never offered (docs/ddi.md) */
}

static ULONG domain_type_bit(const struct ddi_domain *d)
{
    switch (d->kind) {
    case KIND_TRANSLATE:
    case KIND_V1_OS_MANAGED:
        return 1u << DomainTypeTranslate;
    case KIND_PASSTHROUGH:
        return 1u << DomainTypePassThrough;
    default:
        return 1u << DomainTypeUnmanaged;
    }
}

/* Whether [pa, pa + size) lies wholly inside one guest-RAM range: a binary search for the
 * last range starting at or below pa (the ranges are sorted and merged, so RAM that spans
 * two given ranges is one range here). */
static bool in_guest_ram(uint64_t pa, uint64_t size)
{
    if (!size || pa + size < pa)
        return false;
    unsigned lo = 0, hi = provider.ram_count;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (provider.ram[mid].base <= pa)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo && pa + size <= provider.ram[lo - 1].end;
}

/* What a domain may map: guest RAM only, deny by default (ddi/provider.h), and never the
 * project's own memory. A page the guest does not own as RAM (the IOMMU's registers, the
 * MSI window, another device's BAR) would let a device undo the isolation. */
static bool may_map(uint64_t pa, uint64_t size)
{
    uint64_t end = provider.plat.protected_base + provider.plat.protected_size;
    bool protected_memory = provider.plat.protected_size && pa < end && pa + size > provider.plat.protected_base;
    return !protected_memory && in_guest_ram(pa, size);
}

static bool os_managed(const struct ddi_domain *d)
{
    return d->kind == KIND_TRANSLATE || d->kind == KIND_V1_OS_MANAGED;
}

static bool perm_valid(ULONG perm)
{
    return perm && !(perm & ~(ULONG)(IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE));
}

static unsigned slpt_perm(ULONG perm)
{
    return (perm & IOMMU_ACCESS_READ ? SLPT_READ : 0) | (perm & IOMMU_ACCESS_WRITE ? SLPT_WRITE : 0);
}

/* ---- physical descriptors ---- */

/* What a caller asked to map: one contiguous range, or a list of page frames. */
struct phys {
    bool contiguous;
    uint64_t base;          /* contiguous */
    const uint64_t *frames; /* otherwise */
    uint64_t pages;
};

static bool phys_from_mdl(const MDL *mdl, struct phys *out)
{
    if (!mdl || (mdl->ByteOffset & (PAGE_SIZE - 1)) || (mdl->ByteCount & (PAGE_SIZE - 1)) || !mdl->ByteCount)
        return false;
    *out = (struct phys){.frames = (const uint64_t *)MmGetMdlPfnArray(mdl), .pages = mdl->ByteCount / PAGE_SIZE};
    return out->pages <= DDI_MAX_MAP_PAGES;
}

static bool phys_from_descriptor(const IOMMU_MAP_PHYSICAL_ADDRESS *d, struct phys *out)
{
    if (!d)
        return false;
    switch (d->MapType) {
    case MapPhysicalAddressTypeMdl:
        return phys_from_mdl(d->Mdl.Mdl, out);
    case MapPhysicalAddressTypeContiguousRange: {
        uint64_t base = (uint64_t)d->ContiguousRange.Base.QuadPart, size = d->ContiguousRange.Size;
        if ((base | size) & (PAGE_SIZE - 1) || !size || size / PAGE_SIZE > DDI_MAX_MAP_PAGES || base + size < base)
            return false;
        *out = (struct phys){.contiguous = true, .base = base, .pages = size / PAGE_SIZE};
        return true;
    }
    case MapPhysicalAddressTypePfn:
        if (!d->PfnArray.PageFrame || !d->PfnArray.NumberOfPages || d->PfnArray.NumberOfPages > DDI_MAX_MAP_PAGES)
            return false;
        *out = (struct phys){.frames = (const uint64_t *)d->PfnArray.PageFrame, .pages = d->PfnArray.NumberOfPages};
        return true;
    default:
        return false;
    }
}

/* Every page of the descriptor, one may_map per run of consecutive frames, so a long list
 * costs a pass over it and a search per run. */
static bool phys_may_map(const struct phys *ph)
{
    if (ph->contiguous)
        return may_map(ph->base, ph->pages * PAGE_SIZE);
    for (uint64_t i = 0; i < ph->pages;) {
        /* A frame number too large for an address would wrap round to some other page. */
        if (ph->frames[i] > UINT64_MAX >> PAGE_SHIFT)
            return false;
        uint64_t run = 1;
        while (i + run < ph->pages && ph->frames[i + run] == ph->frames[i] + run)
            run++;
        if (!may_map(ph->frames[i] << PAGE_SHIFT, run * PAGE_SIZE))
            return false;
        i += run;
    }
    return true;
}

static NTSTATUS status_of(enum iommu_status s)
{
    switch (s) {
    case IOMMU_OK:
        return STATUS_SUCCESS;
    case IOMMU_EEXIST:
        return STATUS_RESOURCE_IN_USE; /* the reference's "STATUS_IN_USE" (section 5.1) */
    case IOMMU_ENOMEM:
        return STATUS_INSUFFICIENT_RESOURCES;
    default:
        return STATUS_UNSUCCESSFUL;
    }
}

/* Whether a live token of d covers any of [base, base + size); with the provider lock held. */
static bool overlaps_token(const struct ddi_domain *d, uint64_t base, uint64_t size)
{
    for (unsigned i = 0; i < TOKEN_SLOTS; i++) {
        const struct ddi_token *t = &provider.token[i];
        if (t->in_use && t->domain == (int)domain_index(d) && base < t->pub.LogicalAddressBase + t->pub.Size &&
            t->pub.LogicalAddressBase < base + size)
            return true;
    }
    return false;
}


static bool any_mapped(const struct ddi_domain *d, uint64_t base, uint64_t size)
{
    for (uint64_t a = base; a < base + size; a += PAGE_SIZE)
        if (slpt_lookup(&d->core.tables, a, NULL, NULL, NULL))
            return true;
    return false;
}

/* A token's range belongs to its token alone: explicit and identity maps may not land in it,
 * and unmaps other than the token's own may not take its pages (docs/ddi.md). With the
 * domain's layout lock held, so no token can appear between this check and the change. */
static bool range_has_token(const struct ddi_domain *d, uint64_t base, uint64_t size)
{
    lock_acquire(&provider.lock);
    bool hit = overlaps_token(d, base, size);
    lock_release(&provider.lock);
    return hit;
}

static bool phys_has_token(const struct ddi_domain *d, const struct phys *ph)
{
    if (ph->contiguous)
        return range_has_token(d, ph->base, ph->pages * PAGE_SIZE);
    for (uint64_t i = 0; i < ph->pages; i++)
        if (range_has_token(d, ph->frames[i] << PAGE_SHIFT, PAGE_SIZE))
            return true;
    return false;
}

/* Maps ph at iova in the domain (all or nothing). */
static enum iommu_status map_phys(struct ddi_domain *d, uint64_t iova, const struct phys *ph, ULONG perm)
{
    if (ph->contiguous)
        return domain_map(&d->core, iova, ph->base, ph->pages * PAGE_SIZE, slpt_perm(perm));
    return domain_map_frames(&d->core, iova, ph->frames, ph->pages, slpt_perm(perm));
}

/* Identity: each run of contiguous frames maps to itself; all or nothing. */
static enum iommu_status map_identity(struct ddi_domain *d, const struct phys *ph, ULONG perm)
{
    if (ph->contiguous)
        return domain_map(&d->core, ph->base, ph->base, ph->pages * PAGE_SIZE, slpt_perm(perm));
    for (uint64_t i = 0; i < ph->pages;) {
        uint64_t run = 1;
        while (i + run < ph->pages && ph->frames[i + run] == ph->frames[i] + run)
            run++;
        uint64_t pa = ph->frames[i] << PAGE_SHIFT;
        enum iommu_status s = domain_map(&d->core, pa, pa, run * PAGE_SIZE, slpt_perm(perm));
        if (s != IOMMU_OK) {
            for (uint64_t k = 0; k < i;) { /* undo the runs mapped before */
                uint64_t r = 1;
                while (k + r < i && ph->frames[k + r] == ph->frames[k] + r)
                    r++;
                domain_unmap(&d->core, ph->frames[k] << PAGE_SHIFT, r * PAGE_SIZE);
                k += r;
            }
            return s;
        }
        i += run;
    }
    return IOMMU_OK;
}

/* Whether some page P of ph is mapped at logical P to another page (a logical map made
 * there): an identity unmap may not take it (docs/ddi.md). */
static bool phys_maps_other(const struct ddi_domain *d, const struct phys *ph)
{
    for (uint64_t i = 0; i < ph->pages; i++) {
        uint64_t p = ph->contiguous ? ph->base + i * PAGE_SIZE : ph->frames[i] << PAGE_SHIFT, pa;
        if (slpt_lookup(&d->core.tables, p, &pa, NULL, NULL) && pa != p)
            return true;
    }
    return false;
}

static void unmap_identity(struct ddi_domain *d, const struct phys *ph)
{
    if (ph->contiguous) {
        domain_unmap(&d->core, ph->base, ph->pages * PAGE_SIZE);
        return;
    }
    for (uint64_t i = 0; i < ph->pages;) {
        uint64_t run = 1;
        while (i + run < ph->pages && ph->frames[i + run] == ph->frames[i] + run)
            run++;
        domain_unmap(&d->core, ph->frames[i] << PAGE_SHIFT, run * PAGE_SIZE);
        i += run;
    }
}

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
                                          provider.superpages, NULL, provider.tables_write_back);
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
static void destroy_domain(struct ddi_domain *d)
{
    if (d->kind != KIND_PASSTHROUGH)
        (void)domain_destroy(&d->core);
    lock_acquire(&provider.lock);
    d->in_use = false;
    lock_release(&provider.lock);
}

static NTSTATUS NTAPI CreateDomain(BOOLEAN OsManagedPageTable, PIOMMU_DMA_DOMAIN *DomainOut)
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

static NTSTATUS NTAPI CreateDomainEx(IOMMU_DMA_DOMAIN_TYPE DomainType, IOMMU_DMA_DOMAIN_CREATION_FLAGS Flags,
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

static NTSTATUS NTAPI DeleteDomain(PIOMMU_DMA_DOMAIN Domain)
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

static struct ddi_device *device_at(uint16_t segment, uint16_t sid)
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

static NTSTATUS NTAPI CreateDevice(PDEVICE_OBJECT DeviceObject, PIOMMU_DEVICE_CREATION_CONFIGURATION DeviceConfig,
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

static NTSTATUS NTAPI DeleteDevice(PIOMMU_DMA_DEVICE DmaDevice)
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
    struct vtd_unit *u = provider.plat.units[dev->unit];
    if (!d) {
        if (provider.plat.has_default_context)
            return vtd_set_context(u, dev->sid, &provider.plat.default_context);
        return vtd_clear_context(u, dev->sid);
    }
    /* PassThrough is not the unit's pass-through, which would let the device reach the
     * memory no domain may map: it is the platform's identity domain, all RAM one to one
     * but the project's own (available_types offers it only when there is one). */
    if (d->kind == KIND_PASSTHROUGH)
        return vtd_set_context(u, dev->sid, &provider.plat.default_context);
    struct vtd_context ctx = {VTD_TRANSLATE, domain_id(d), d->core.tables.root_pa, provider.levels};
    enum iommu_status s = vtd_set_context(u, dev->sid, &ctx);
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

static void detach_locked(struct ddi_device *dev)
{
    program_context(dev, NULL);
    provider.domain[dev->domain].devices--;
    dev->domain = -1;
    dev->fault_reporting = false;
}

static NTSTATUS NTAPI AttachDeviceEx(PIOMMU_DMA_DOMAIN Domain, PIOMMU_DMA_DEVICE DmaDevice)
{
    lock_acquire(&provider.lock);
    struct ddi_domain *d = provider.ready ? domain_of(Domain) : NULL;
    struct ddi_device *dev = provider.ready ? device_of(DmaDevice) : NULL;
    NTSTATUS st = !d ? STATUS_INVALID_PARAMETER_1 : !dev ? STATUS_INVALID_PARAMETER_2 : attach_locked(d, dev, true);
    lock_release(&provider.lock);
    return st;
}

static NTSTATUS NTAPI DetachDeviceEx(PIOMMU_DMA_DEVICE DmaDevice)
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

static NTSTATUS NTAPI AttachDevice(PIOMMU_DMA_DOMAIN Domain, PDEVICE_OBJECT PhysicalDeviceObject,
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

static NTSTATUS NTAPI DetachDevice(PIOMMU_DMA_DOMAIN Domain, PDEVICE_OBJECT PhysicalDeviceObject, ULONG InputMappingId)
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

static VOID NTAPI QueryAvailableDomainTypes(PIOMMU_DMA_DEVICE DmaDevice, PULONG AvailableDomains)
{
    if (!AvailableDomains)
        return;
    lock_acquire(&provider.lock);
    struct ddi_device *dev = provider.ready ? device_of(DmaDevice) : NULL;
    *AvailableDomains = dev ? available_types(dev) : 0;
    lock_release(&provider.lock);
}

/* ---- state-change callbacks ---- */

static NTSTATUS NTAPI RegisterInterfaceStateChangeCallback(PIOMMU_INTERFACE_STATE_CHANGE_CALLBACK StateChangeCallback,
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

static NTSTATUS NTAPI UnregisterInterfaceStateChangeCallback(PIOMMU_INTERFACE_STATE_CHANGE_CALLBACK StateChangeCallback,
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

/* ---- logical and identity mappings ---- */

/* Maps ph at iova unless a token holds any of it; with the layout lock held. */
static NTSTATUS map_unclaimed(struct ddi_domain *d, uint64_t iova, const struct phys *ph, ULONG perm)
{
    if (range_has_token(d, iova, ph->pages * PAGE_SIZE))
        return STATUS_RESOURCE_IN_USE;
    enum iommu_status s = map_phys(d, iova, ph, perm);
    return s == IOMMU_EINVAL || s == IOMMU_ERANGE ? STATUS_INVALID_PARAMETER_4 : status_of(s);
}

static NTSTATUS NTAPI MapLogicalRange(PIOMMU_DMA_DOMAIN Domain, ULONG Permissions, PMDL Mdl, ULONGLONG LogicalAddress)
{
    struct ddi_domain *d = domain_get(Domain);
    if (!d)
        return STATUS_INVALID_PARAMETER_1;
    struct phys ph;
    NTSTATUS st = STATUS_SUCCESS;
    if (!os_managed(d))
        st = STATUS_INVALID_PARAMETER_1;
    else if (!perm_valid(Permissions))
        st = STATUS_INVALID_PARAMETER_2;
    else if (!phys_from_mdl(Mdl, &ph))
        st = STATUS_INVALID_PARAMETER_3; /* M1 */
    else if (LogicalAddress & (PAGE_SIZE - 1) || LogicalAddress >= slpt_iova_limit(&d->core.tables))
        st = STATUS_INVALID_PARAMETER_4; /* M2 */
    else if (d->has_allocator)
        st = STATUS_NOT_SUPPORTED; /* the buddy allocator takes no explicit addresses (M6) */
    else if (!phys_may_map(&ph))
        st = STATUS_ACCESS_DENIED;
    else {
        lock_acquire(&d->layout_lock);
        st = map_unclaimed(d, LogicalAddress, &ph, Permissions);
        lock_release(&d->layout_lock);
    }
    domain_put(d);
    return st;
}

static NTSTATUS NTAPI MapLogicalRangeEx(PIOMMU_DMA_DOMAIN Domain, ULONG Permissions,
                                        PIOMMU_MAP_PHYSICAL_ADDRESS PhysicalAddressToMap,
                                        PIOMMU_DMA_LOGICAL_ADDRESS ExplicitLogicalAddress,
                                        PIOMMU_DMA_LOGICAL_ADDRESS MinLogicalAddress,
                                        PIOMMU_DMA_LOGICAL_ADDRESS MaxLogicalAddress,
                                        PIOMMU_DMA_LOGICAL_ADDRESS LogicalAddressOut)
{
    struct ddi_domain *d = domain_get(Domain);
    if (!d)
        return STATUS_INVALID_PARAMETER_1;
    struct phys ph;
    NTSTATUS st = STATUS_SUCCESS;
    if (!os_managed(d))
        st = STATUS_INVALID_PARAMETER_1; /* M3 */
    else if (!perm_valid(Permissions))
        st = STATUS_INVALID_PARAMETER_2;
    else if (!phys_from_descriptor(PhysicalAddressToMap, &ph))
        st = STATUS_INVALID_PARAMETER_3; /* M4 */
    else if (!LogicalAddressOut)
        st = STATUS_INVALID_PARAMETER_7;
    else if (d->has_allocator && ExplicitLogicalAddress)
        st = STATUS_NOT_SUPPORTED; /* M6, documented code */
    else if (!d->has_allocator && !ExplicitLogicalAddress)
        st = STATUS_NOT_SUPPORTED; /* M5 */
    else if (!d->has_allocator && ((*ExplicitLogicalAddress & (PAGE_SIZE - 1)) ||
                                   *ExplicitLogicalAddress >= slpt_iova_limit(&d->core.tables)))
        st = STATUS_INVALID_PARAMETER_4; /* M7, documented code; M8: Min/Max ignored */
    if (NT_SUCCESS(st) && !phys_may_map(&ph))
        st = STATUS_ACCESS_DENIED;
    if (!NT_SUCCESS(st)) {
        domain_put(d);
        return st;
    }
    uint64_t iova = 0, size = ph.pages * PAGE_SIZE;
    lock_acquire(&d->layout_lock);
    if (d->has_allocator) {
        uint64_t min = MinLogicalAddress ? *MinLogicalAddress : 0;
        uint64_t max = MaxLogicalAddress ? *MaxLogicalAddress : UINT64_MAX;
        enum iommu_status s = iova_alloc(&d->iova, size, min, max, &iova);
        st = s == IOMMU_OK ? STATUS_SUCCESS
           : s == IOMMU_EINVAL ? STATUS_INVALID_PARAMETER_3
           : s == IOMMU_ENOMEM ? STATUS_INSUFFICIENT_RESOURCES
                               : STATUS_INVALID_PARAMETER_MIX; /* M10, documented code */
    } else
        iova = *ExplicitLogicalAddress;
    if (NT_SUCCESS(st)) {
        st = map_unclaimed(d, iova, &ph, Permissions);
        if (!NT_SUCCESS(st) && d->has_allocator)
            iova_free(&d->iova, iova, size); /* M15 */
    }
    lock_release(&d->layout_lock);
    if (NT_SUCCESS(st))
        *LogicalAddressOut = iova; /* M13: only on success */
    domain_put(d);
    return st;
}

/* After an unmap of [base, base + size) on a domain with an allocator (layout lock held):
 * every allocation the unmap covered whole goes back (M17). A range the allocator gave is its
 * block's head, mapped from the start of the block, the rest of the block never mapped; so an
 * allocation was covered whole when its block starts inside the unmapped range and nothing
 * of the block is mapped now. One whose start lies outside, or whose pages go on past the
 * end, stays allocated (docs/ddi.md, M18). No token's block can start inside: the unmap was
 * refused if a token covered any of the range.
 *
 * The blocks handed out are the allocator's record, an open-addressed table whose slots hold
 * address | order, 0 when empty (iommu/iova.h): read here, freed through iova_free. A free
 * moves later members of its probe run back into the slot it empties, never past it, so the
 * slot is looked at again and the walk still sees every member once at least. */
static void free_covered_allocations(struct ddi_domain *d, uint64_t base, uint64_t size)
{
    const struct iova_table *held = &d->iova.allocated;
    const uint64_t order_bits = PAGE_SIZE - 1, end = base + size;
    for (uint32_t i = 0; i <= held->mask;) {
        uint64_t r = held->slots[i], addr = r & ~order_bits;
        uint64_t block = r ? 1ull << (r & order_bits) : 0;
        if (r && addr >= base && addr < end && (addr + block <= end || !any_mapped(d, end, addr + block - end)) &&
            iova_free(&d->iova, addr, block) == IOMMU_OK)
            continue; /* slot i may hold another block now */
        i++;
    }
}

static NTSTATUS NTAPI UnmapLogicalRange(PIOMMU_DMA_DOMAIN Domain, ULONGLONG LogicalAddress, ULONGLONG NumberOfPages)
{
    struct ddi_domain *d = domain_get(Domain);
    if (!d)
        return STATUS_INVALID_PARAMETER_1;
    NTSTATUS st = STATUS_SUCCESS;
    if (!os_managed(d))
        st = STATUS_INVALID_PARAMETER_1; /* M16 */
    else if (LogicalAddress & (PAGE_SIZE - 1) || LogicalAddress >= slpt_iova_limit(&d->core.tables))
        st = STATUS_INVALID_PARAMETER_2;
    else if (!NumberOfPages || NumberOfPages > DDI_MAX_MAP_PAGES ||
             NumberOfPages > (slpt_iova_limit(&d->core.tables) - LogicalAddress) / PAGE_SIZE)
        st = STATUS_INVALID_PARAMETER_3;
    else {
        uint64_t size = NumberOfPages * PAGE_SIZE;
        lock_acquire(&d->layout_lock);
        st = range_has_token(d, LogicalAddress, size)
                 ? STATUS_RESOURCE_IN_USE
                 : status_of(domain_unmap(&d->core, LogicalAddress, size)); /* M17 */
        if (NT_SUCCESS(st) && d->has_allocator)
            free_covered_allocations(d, LogicalAddress, size);
        lock_release(&d->layout_lock);
    }
    domain_put(d);
    return st;
}

/* Identity maps, V1 (MDL) and Ex (descriptor): bad_descriptor is the status for a descriptor
 * that cannot be used, which differs between map and unmap. */
static NTSTATUS identity(PIOMMU_DMA_DOMAIN Domain, ULONG Permissions, bool map, bool have_phys, const struct phys *ph,
                         NTSTATUS bad_descriptor)
{
    struct ddi_domain *d = domain_get(Domain);
    if (!d)
        return STATUS_INVALID_PARAMETER_1;
    NTSTATUS st = STATUS_SUCCESS;
    if (d->kind == KIND_PASSTHROUGH)
        st = STATUS_SUCCESS; /* I1: nothing to do */
    else if (!os_managed(d))
        st = STATUS_INVALID_PARAMETER_1; /* I2 */
    else if (map && !perm_valid(Permissions))
        st = STATUS_INVALID_PARAMETER_2;
    else if (!have_phys)
        st = bad_descriptor; /* I3 */
    else if (d->has_allocator)
        st = STATUS_NOT_SUPPORTED; /* I4 */
    else if (map && !phys_may_map(ph))
        st = STATUS_ACCESS_DENIED;
    else {
        lock_acquire(&d->layout_lock);
        if (phys_has_token(d, ph) || (!map && phys_maps_other(d, ph)))
            st = STATUS_RESOURCE_IN_USE;
        else if (map) {
            enum iommu_status s = map_identity(d, ph, Permissions);
            st = s == IOMMU_EINVAL || s == IOMMU_ERANGE ? bad_descriptor : status_of(s); /* I5 */
        } else
            unmap_identity(d, ph);
        lock_release(&d->layout_lock);
    }
    domain_put(d);
    return st;
}

static NTSTATUS NTAPI MapIdentityRange(PIOMMU_DMA_DOMAIN Domain, ULONG Permissions, PMDL Mdl)
{
    struct phys ph;
    bool ok = phys_from_mdl(Mdl, &ph);
    return identity(Domain, Permissions, true, ok, &ph, STATUS_INVALID_PARAMETER_3);
}

static NTSTATUS NTAPI UnmapIdentityRange(PIOMMU_DMA_DOMAIN Domain, PMDL Mdl)
{
    struct phys ph;
    bool ok = phys_from_mdl(Mdl, &ph);
    return identity(Domain, 0, false, ok, &ph, STATUS_INVALID_PARAMETER_2);
}

static NTSTATUS NTAPI MapIdentityRangeEx(PIOMMU_DMA_DOMAIN Domain, ULONG Permissions,
                                         PIOMMU_MAP_PHYSICAL_ADDRESS PhysicalAddressToMap)
{
    struct phys ph;
    bool ok = phys_from_descriptor(PhysicalAddressToMap, &ph);
    return identity(Domain, Permissions, true, ok, &ph, STATUS_INVALID_PARAMETER_3);
}

static NTSTATUS NTAPI UnmapIdentityRangeEx(PIOMMU_DMA_DOMAIN Domain, PIOMMU_MAP_PHYSICAL_ADDRESS MappedPhysicalAddress)
{
    struct phys ph;
    bool ok = phys_from_descriptor(MappedPhysicalAddress, &ph);
    return identity(Domain, 0, false, ok, &ph, STATUS_INVALID_PARAMETER_2);
}

/* ---- reserved logical ranges (tokens) ---- */

/* The free token slot that has waited longest, marked in use; NULL when DDI_MAX_TOKENS are
 * live. With the provider lock held. */
static struct ddi_token *token_slot_take(void)
{
    if (provider.live_tokens == DDI_MAX_TOKENS || !provider.free_count)
        return NULL;
    struct ddi_token *t = &provider.token[provider.free_slot[provider.free_head]];
    provider.free_head = (provider.free_head + 1) % TOKEN_SLOTS;
    provider.free_count--;
    provider.live_tokens++;
    t->in_use = true;
    return t;
}

/* Frees a token's slot: queued last, or, for a token that was never handed out, first again
 * (so a failed reservation moves no stale token's slot nearer its reuse). With the provider
 * lock held. */
static void token_slot_put(struct ddi_token *t, bool unused)
{
    uint16_t index = (uint16_t)(t - provider.token);
    t->in_use = false;
    t->segments = 0;
    provider.live_tokens--;
    if (unused) {
        provider.free_head = (provider.free_head + TOKEN_SLOTS - 1) % TOKEN_SLOTS;
        provider.free_slot[provider.free_head] = index;
    } else {
        provider.free_slot[(provider.free_head + provider.free_count) % TOKEN_SLOTS] = index;
    }
    provider.free_count++;
}

static NTSTATUS NTAPI ReserveLogicalAddressRange(PIOMMU_DMA_DOMAIN Domain, SIZE_T Size,
                                                 PIOMMU_DMA_LOGICAL_ADDRESS ExplicitLogicalAddress,
                                                 PIOMMU_DMA_LOGICAL_ADDRESS MinLogicalAddress,
                                                 PIOMMU_DMA_LOGICAL_ADDRESS MaxLogicalAddress,
                                                 PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN *LogicalAddressToken)
{
    if (LogicalAddressToken)
        *LogicalAddressToken = NULL; /* R5 */
    if (!Size || (Size & (PAGE_SIZE - 1)) || Size / PAGE_SIZE > DDI_MAX_MAP_PAGES)
        return STATUS_INVALID_PARAMETER_2; /* R2: before the domain */
    struct ddi_domain *d = domain_get(Domain);
    if (!d)
        return STATUS_INVALID_PARAMETER_1;
    NTSTATUS st = STATUS_SUCCESS;
    if (!os_managed(d))
        st = STATUS_INVALID_PARAMETER_1; /* R1 */
    else if (!LogicalAddressToken)
        st = STATUS_INVALID_PARAMETER_6;
    else if (d->has_allocator && ExplicitLogicalAddress)
        st = STATUS_NOT_SUPPORTED; /* R4 */
    else if (!d->has_allocator && !ExplicitLogicalAddress)
        st = STATUS_NOT_SUPPORTED;
    else if (!d->has_allocator && ((*ExplicitLogicalAddress & (PAGE_SIZE - 1)) ||
                                   *ExplicitLogicalAddress >= slpt_iova_limit(&d->core.tables) ||
                                   Size > slpt_iova_limit(&d->core.tables) - *ExplicitLogicalAddress))
        st = STATUS_INVALID_PARAMETER_3; /* R3 */
    if (!NT_SUCCESS(st)) {
        domain_put(d);
        return st;
    }
    uint64_t base = 0;
    bool allocated = false;
    struct ddi_token *t = NULL;
    lock_acquire(&d->layout_lock);
    if (d->has_allocator) {
        uint64_t min = MinLogicalAddress ? *MinLogicalAddress : 0;
        uint64_t max = MaxLogicalAddress ? *MaxLogicalAddress : UINT64_MAX;
        enum iommu_status s = iova_alloc(&d->iova, Size, min, max, &base);
        st = s == IOMMU_OK ? STATUS_SUCCESS
           : s == IOMMU_EINVAL ? STATUS_INVALID_PARAMETER_2
           : s == IOMMU_ENOMEM ? STATUS_INSUFFICIENT_RESOURCES
                               : STATUS_INVALID_PARAMETER_MIX;
        allocated = s == IOMMU_OK;
    } else {
        base = *ExplicitLogicalAddress;
        if (range_has_token(d, base, Size) || any_mapped(d, base, Size))
            st = STATUS_RESOURCE_IN_USE; /* R6 */
    }
    if (NT_SUCCESS(st)) {
        lock_acquire(&provider.lock);
        t = token_slot_take();
        if (t) {
            uint16_t generation = (uint16_t)(t->generation + 1);
            *t = (struct ddi_token){.pub = {base, Size}, .in_use = true, .from_allocator = allocated,
                                    .domain = (int)domain_index(d), .generation = generation ? generation : 1};
            d->tokens++;
        }
        lock_release(&provider.lock);
        if (!t)
            st = STATUS_INSUFFICIENT_RESOURCES;
    }
    if (t) {
        enum iommu_status s = domain_prepare(&d->core, base, Size); /* every table, now */
        if (s != IOMMU_OK) {
            st = s == IOMMU_EEXIST ? STATUS_RESOURCE_IN_USE : status_of(s);
            lock_acquire(&provider.lock);
            token_slot_put(t, true); /* never handed out: back where it was in the queue */
            d->tokens--;
            lock_release(&provider.lock);
        }
    }
    if (!NT_SUCCESS(st) && allocated)
        iova_free(&d->iova, base, Size);
    lock_release(&d->layout_lock);
    if (NT_SUCCESS(st))
        *LogicalAddressToken = &t->pub;
    domain_put(d);
    return st;
}

static NTSTATUS NTAPI FreeReservedLogicalAddressRange(PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN LogicalAddressToken)
{
    lock_acquire(&provider.lock);
    struct ddi_token *t = provider.ready ? token_of(LogicalAddressToken) : NULL;
    struct ddi_domain *d = t ? &provider.domain[t->domain] : NULL;
    NTSTATUS st = STATUS_SUCCESS;
    if (!t)
        st = STATUS_INVALID_PARAMETER_1;
    else if (t->segments)
        st = STATUS_RESOURCE_IN_USE; /* R16 */
    else
        d->busy++; /* keeps the domain while the token goes */
    lock_release(&provider.lock);
    if (!NT_SUCCESS(st))
        return st;
    lock_acquire(&d->layout_lock);
    lock_acquire(&provider.lock);
    /* Checked again: another free of the same token, or a map on it, may have come first. */
    bool still = token_of(LogicalAddressToken) == t && !t->segments;
    st = still ? STATUS_SUCCESS : token_of(LogicalAddressToken) ? STATUS_RESOURCE_IN_USE : STATUS_INVALID_PARAMETER_1;
    struct ddi_token gone = *t;
    if (still)
        token_slot_put(t, false); /* from here no map can start on it; the slot waits its turn */
    lock_release(&provider.lock);
    if (still) {
        /* The tables it empties go back to the pool only once the units have forgotten them. */
        (void)domain_unprepare(&d->core, gone.pub.LogicalAddressBase, gone.pub.Size);
        if (gone.from_allocator)
            iova_free(&d->iova, gone.pub.LogicalAddressBase, gone.pub.Size); /* R18 */
    }
    lock_release(&d->layout_lock);
    lock_acquire(&provider.lock);
    if (still)
        d->tokens--;
    d->busy--;
    lock_release(&provider.lock);
    return st;
}

uint64_t ddi_token_id(PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN token)
{
    lock_acquire(&provider.lock);
    struct ddi_token *t = provider.ready ? token_of(token) : NULL;
    uint64_t id = t ? (uint64_t)(uintptr_t)make_handle(TAG_TOKEN, t->generation, (unsigned)(t - provider.token)) : 0;
    lock_release(&provider.lock);
    return id;
}

PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN ddi_token_by_id(uint64_t id)
{
    unsigned index = (unsigned)(id & 0xffff) - 1;
    if (id >> HANDLE_TAG_SHIFT != TAG_TOKEN || index >= TOKEN_SLOTS)
        return NULL;
    lock_acquire(&provider.lock);
    struct ddi_token *t = &provider.token[index];
    bool live = provider.ready && t->in_use && t->generation == (uint16_t)(id >> 16);
    lock_release(&provider.lock);
    return live ? &t->pub : NULL;
}

/* Pins the token's domain; NULL if the token is not live. */
static struct ddi_domain *token_domain_get(const void *token, struct ddi_token **out)
{
    lock_acquire(&provider.lock);
    struct ddi_token *t = provider.ready ? token_of(token) : NULL;
    struct ddi_domain *d = t ? &provider.domain[t->domain] : NULL;
    if (d)
        d->busy++;
    lock_release(&provider.lock);
    *out = t;
    return d;
}

/* The token's domain, pinned and with its layout lock held, so the token cannot be freed
 * while a segment is mapped or unmapped in it; NULL if the token is not live. */
static struct ddi_domain *token_lock(const void *token, struct ddi_token **out)
{
    struct ddi_domain *d = token_domain_get(token, out);
    if (!d)
        return NULL;
    lock_acquire(&d->layout_lock);
    lock_acquire(&provider.lock);
    /* It may have been freed, and its slot given to another domain's token, meanwhile. */
    bool live = token_of(token) == *out && (*out)->domain == (int)domain_index(d);
    lock_release(&provider.lock);
    if (live)
        return d;
    lock_release(&d->layout_lock);
    domain_put(d);
    return NULL;
}

static void token_unlock(struct ddi_domain *d)
{
    lock_release(&d->layout_lock);
    domain_put(d);
}

static NTSTATUS NTAPI MapReservedLogicalRange(PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN LogicalAddressToken, SIZE_T Offset,
                                              ULONG Permissions, PIOMMU_MAP_PHYSICAL_ADDRESS PhysicalAddressToMap,
                                              PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT MappedSegment)
{
    struct ddi_token *t;
    struct ddi_domain *d = token_lock(LogicalAddressToken, &t);
    if (!d)
        return LogicalAddressToken ? STATUS_UNSUCCESSFUL : STATUS_INVALID_PARAMETER_1; /* R17: gone or going */
    struct phys ph;
    NTSTATUS st = STATUS_SUCCESS;
    if (Offset & (PAGE_SIZE - 1) || Offset >= t->pub.Size)
        st = STATUS_INVALID_PARAMETER_2; /* R7 */
    else if (!perm_valid(Permissions))
        st = STATUS_INVALID_PARAMETER_3;
    else if (!phys_from_descriptor(PhysicalAddressToMap, &ph) || ph.pages > (t->pub.Size - Offset) / PAGE_SIZE)
        st = STATUS_INVALID_PARAMETER_4; /* R8, R9: Offset + size <= token.Size */
    else if (!MappedSegment)
        st = STATUS_INVALID_PARAMETER_5;
    else if (!phys_may_map(&ph))
        st = STATUS_ACCESS_DENIED;
    else if (t->segments == DDI_MAX_TOKEN_SEGMENTS)
        st = STATUS_INSUFFICIENT_RESOURCES; /* a count, never memory: R13 holds (docs/ddi.md) */
    else {
        /* The tables are all there (the range is prepared): this allocates nothing (R13). */
        enum iommu_status s = map_phys(d, t->pub.LogicalAddressBase + Offset, &ph, Permissions);
        st = s == IOMMU_OK ? STATUS_SUCCESS : STATUS_RESOURCE_IN_USE; /* R10 */
    }
    if (NT_SUCCESS(st)) {
        /* Recorded under the layout lock (held), which every routine that reads or changes a
         * token's segments holds; the provider lock for the counts. */
        lock_acquire(&provider.lock);
        t->seg[t->segments++] = (struct ddi_segment){(uint32_t)(Offset / PAGE_SIZE), (uint32_t)ph.pages};
        lock_release(&provider.lock);
        MappedSegment->OwningToken = &t->pub;
        MappedSegment->Offset = Offset;
        MappedSegment->Size = ph.pages * PAGE_SIZE; /* R12 */
    }
    token_unlock(d);
    return st;
}

static NTSTATUS NTAPI UnmapReservedLogicalRange(PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT MappedSegment)
{
    if (!MappedSegment)
        return STATUS_INVALID_PARAMETER;
    struct ddi_token *t;
    struct ddi_domain *d = token_lock(MappedSegment->OwningToken, &t);
    if (!d)
        return STATUS_INVALID_PARAMETER;
    NTSTATUS st = STATUS_SUCCESS;
    uint64_t off = MappedSegment->Offset, size = MappedSegment->Size;
    /* Exactly one segment mapped now: a record spanning two, a part of one, or one unmapped
     * already names none (R14), and changes nothing. */
    unsigned i = 0;
    while (i < t->segments &&
           !((uint64_t)t->seg[i].first * PAGE_SIZE == off && (uint64_t)t->seg[i].pages * PAGE_SIZE == size))
        i++;
    if (i == t->segments)
        st = STATUS_INVALID_PARAMETER; /* R14 */
    else {
        /* The tables stay (pinned): this frees nothing (R13). */
        domain_unmap(&d->core, t->pub.LogicalAddressBase + off, size);
        lock_acquire(&provider.lock);
        t->seg[i] = t->seg[--t->segments];
        lock_release(&provider.lock);
        MappedSegment->Offset = 0; /* R15 */
        MappedSegment->Size = 0;
    }
    token_unlock(d);
    return st;
}

/* ---- caller-managed domains, flushes, and what x64 does not have ---- */

static NTSTATUS NTAPI ConfigureDomain(PIOMMU_DMA_DOMAIN Domain, PDOMAIN_CONFIGURATION Configuration)
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
        vtd_flush_domain(d->core.units[i], domain_id(d));
    return STATUS_SUCCESS;
}

static NTSTATUS NTAPI FlushDomain(PIOMMU_DMA_DOMAIN Domain)
{
    struct ddi_domain *d = domain_get(Domain);
    if (!d)
        return STATUS_INVALID_PARAMETER_1;
    NTSTATUS st = flush_caller_managed(d);
    domain_put(d);
    return st;
}

static NTSTATUS NTAPI FlushDomainByVaList(PIOMMU_DMA_DOMAIN Domain, BOOLEAN LastLevel, ULONG Number, PVOID VaList)
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

static NTSTATUS NTAPI QueryInputMappings(PDEVICE_OBJECT PhysicalDeviceObject, PINPUT_MAPPING_ELEMENT Buffer,
                                         ULONG BufferLength, PULONG ReturnLength)
{
    (void)PhysicalDeviceObject;
    (void)Buffer;
    (void)BufferLength;
    (void)ReturnLength;
    return STATUS_NOT_SUPPORTED; /* A11: ARM64 only */
}

static NTSTATUS NTAPI SetDeviceFaultReportingEx(PIOMMU_DMA_DEVICE DmaDevice, ULONG InputMappingIdBase, BOOLEAN Enable,
                                                PDEVICE_FAULT_CONFIGURATION FaultConfig)
{
    (void)DmaDevice;
    (void)InputMappingIdBase;
    (void)Enable;
    (void)FaultConfig;
    return STATUS_NOT_IMPLEMENTED; /* A10, F1 */
}

/* ---- fault reporting (V1) ---- */

static NTSTATUS NTAPI SetDeviceFaultReporting(PDEVICE_OBJECT PhysicalDeviceObject, ULONG InputMappingIdBase,
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
        struct vtd_unit *unit = provider.plat.units[u];
        vtd_drain_faults(unit);
        struct vtd_fault f;
        while (vtd_fault_take(unit, &f)) {
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
                info.X64.IommuBaseAddress = unit->base;
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

/* ---- the interface ---- */

static void fill_v1(DMA_IOMMU_INTERFACE_V1 *v)
{
    v->CreateDomain = CreateDomain;
    v->DeleteDomain = DeleteDomain;
    v->AttachDevice = AttachDevice;
    v->DetachDevice = DetachDevice;
    v->FlushDomain = FlushDomain;
    v->FlushDomainByVaList = FlushDomainByVaList;
    v->QueryInputMappings = QueryInputMappings;
    v->MapLogicalRange = MapLogicalRange;
    v->UnmapLogicalRange = UnmapLogicalRange;
    v->MapIdentityRange = MapIdentityRange;
    v->UnmapIdentityRange = UnmapIdentityRange;
    v->SetDeviceFaultReporting = SetDeviceFaultReporting;
    v->ConfigureDomain = ConfigureDomain;
}

static void fill_v2(DMA_IOMMU_INTERFACE_V2 *v)
{
    v->CreateDomainEx = CreateDomainEx;
    v->DeleteDomain = DeleteDomain;
    v->AttachDeviceEx = AttachDeviceEx;
    v->DetachDeviceEx = DetachDeviceEx;
    v->FlushDomain = FlushDomain;
    v->FlushDomainByVaList = FlushDomainByVaList;
    v->QueryInputMappings = QueryInputMappings;
    v->MapLogicalRangeEx = MapLogicalRangeEx;
    v->UnmapLogicalRange = UnmapLogicalRange;
    v->MapIdentityRangeEx = MapIdentityRangeEx;
    v->UnmapIdentityRangeEx = UnmapIdentityRangeEx;
    v->SetDeviceFaultReportingEx = SetDeviceFaultReportingEx;
    v->ConfigureDomain = ConfigureDomain;
    v->QueryAvailableDomainTypes = QueryAvailableDomainTypes;
    v->RegisterInterfaceStateChangeCallback = RegisterInterfaceStateChangeCallback;
    v->UnregisterInterfaceStateChangeCallback = UnregisterInterfaceStateChangeCallback;
    v->ReserveLogicalAddressRange = ReserveLogicalAddressRange;
    v->FreeReservedLogicalAddressRange = FreeReservedLogicalAddressRange;
    v->MapReservedLogicalRange = MapReservedLogicalRange;
    v->UnmapReservedLogicalRange = UnmapReservedLogicalRange;
    v->CreateDevice = CreateDevice;
    v->DeleteDevice = DeleteDevice;
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
    unsigned levels = vtd_common_levels(platform->units, platform->unit_count);
    if (!levels)
        return IOMMU_ENODEV;
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
    provider.superpages = vtd_common_superpages(platform->units, platform->unit_count);
    provider.tables_write_back = vtd_tables_write_back(platform->units, platform->unit_count);
    uint32_t ids = UINT32_MAX;
    for (unsigned i = 0; i < platform->unit_count; i++)
        if (platform->units[i]->caps.domains < ids)
            ids = platform->units[i]->caps.domains;
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
        any |= vtd_inject_wait_timeouts(provider.plat.units[u], n);
    return any;
}
