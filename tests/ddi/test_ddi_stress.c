/* Random DDI calls against a model of what they should do.
 *
 * Each step picks a V2 routine (and now and then a V1 one or the DMA-protection policy) and
 * arguments that are valid or broken in one chosen way: stale and forged handles, bad
 * permissions and descriptors, overlaps with mappings and tokens, segment records that name
 * no one segment, identity unmaps over logical mappings, memory that is not guest
 * RAM (the project's own, the IOMMU's registers, the MSI window, past the end of RAM, or one
 * such frame in a list), and page-pool exhaustion injected at a random allocation. The model
 * predicts the status. It follows each Buddy domain's allocator (the blocks it holds, ranges
 * an unmap cut into included), so the address of every allocated map and token is predicted
 * too, and a freed token's pointer may not name a new token within DDI_MAX_TOKENS
 * reservations. After every call the test checks
 *   - the status is the predicted one (an injected allocation failure may turn a success
 *     into STATUS_INSUFFICIENT_RESOURCES, and then nothing may have changed),
 *   - the provider's counts of domains, devices, tokens, segments and callbacks are the
 *     model's (no handle leaks),
 *   - the page pool's counters agree with its pages, and every page it has given out is a
 *     table page of a live domain (or was in use before the run),
 *   - every device translates as the model says: each mapped page (a sample of them when
 *     there are many) with exactly its permissions, probes of unmapped pages fault, and
 *     devices in no domain reach RAM through the platform's default domain.
 * At the end everything is torn down through the DDI and the pool must be back where it
 * started.
 *
 * DDI_STRESS_SEED and DDI_STRESS_STEPS (environment) choose the run; the seed is printed so
 * that a failure can be replayed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "test_util.h"

#define MAX_DOMAINS 8
#define MAX_DEVICES 5
#define MAX_TOKENS 12
#define MAX_SEGMENTS 6
#define MAX_PAGES 512      /* mapped pages the model keeps per domain */
#define MAX_ALLOCS 128     /* allocator ranges the model keeps per buddy domain */
#define ALLOCATOR_LIVE 768 /* blocks a domain's allocator holds at most (docs/ddi.md, Limits) */
#define MAX_DEAD 32        /* stale handles kept for reuse as bad arguments */
#define WINDOW_BASE 0x200000ull /* explicit maps and tokens land in 256 pages from here ... */
#define WINDOW_PAGES 256u
#define RAM_WINDOW_PAGES 512u   /* ... or in the first RAM pages, where identity maps go */
#define CHECK_SAMPLE 48u        /* pages checked per device and step */

enum kind { EXPLICIT, BUDDY, PASSTHROUGH };

struct page {
    uint64_t iova, pa;
    ULONG perm;
};

struct alloc_range {
    uint64_t base, pages;
};

/* A block the domain's allocator has handed out and not taken back: a map's or a token's. */
struct held_block {
    uint64_t base, size;
    bool token;
};

struct m_domain {
    bool live;
    PIOMMU_DMA_DOMAIN h;
    enum kind kind;
    unsigned devices, tokens;
    unsigned npages;
    struct page pages[MAX_PAGES];
    unsigned nallocs;
    struct alloc_range allocs[MAX_ALLOCS];
    /* Buddy: the allocator as the model sees it, every block it holds, including ranges an
     * unmap cut into and so left allocated (docs/ddi.md, M18). */
    unsigned width;
    unsigned nheld;
    struct held_block held[ALLOCATOR_LIVE];
};

struct m_segment {
    bool live;
    IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT seg;
};

struct m_token {
    bool live;
    PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN h;
    int domain;
    bool buddy;       /* its range is an allocator block */
    uint64_t base, size;
    struct m_segment segs[MAX_SEGMENTS];
};

struct m_device {
    bool live;
    PIOMMU_DMA_DEVICE h;
    int domain; /* -1: the platform's default domain */
    bool callback;
};

/* The platform, and the model of what every live object should be. */
static struct {
    struct sim *s;
    DMA_IOMMU_INTERFACE_EX ex;
    DMA_IOMMU_INTERFACE_V2 *v2;
    DMA_IOMMU_INTERFACE v1;
    uint64_t rng;
    unsigned functions;        /* PCI functions of the platform; the last is behind no unit */
    struct m_domain dom[MAX_DOMAINS];
    struct m_device dev[MAX_DEVICES];
    struct m_token tok[MAX_TOKENS];
    void *dead_domains[MAX_DEAD], *dead_devices[MAX_DEAD], *dead_tokens[MAX_DEAD];
    unsigned ndead_domains, ndead_devices, ndead_tokens;
    unsigned dead_token_at[MAX_DEAD]; /* reservations made when each dead token was freed */
    unsigned reservations;            /* successful ones */
    IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT unmapped; /* the last segment unmapped, as it was */
    bool guard;
    bool injecting;            /* an allocation failure is armed for this step */
    uint32_t pool_baseline;
    unsigned step;
    unsigned calls, refusals, injected_failures;
    struct {
        const char *routine;
        unsigned ok, refused;
    } tally[32];
} model;

/* ---- randomness ---- */

static uint64_t next(void)
{
    return test_rand(&model.rng);
}

static unsigned below(unsigned n)
{
    return (unsigned)(next() % n);
}

static bool chance(unsigned percent)
{
    return below(100) < percent;
}

/* ---- the model ---- */

static struct page *find_page(struct m_domain *d, uint64_t iova)
{
    for (unsigned i = 0; i < d->npages; i++)
        if (d->pages[i].iova == iova)
            return &d->pages[i];
    return NULL;
}

static bool any_page_in(struct m_domain *d, uint64_t base, uint64_t pages)
{
    for (unsigned i = 0; i < d->npages; i++)
        if (d->pages[i].iova >= base && d->pages[i].iova < base + pages * PAGE_SIZE)
            return true;
    return false;
}

static void add_page(struct m_domain *d, uint64_t iova, uint64_t pa, ULONG perm)
{
    assert_true(d->npages < MAX_PAGES);
    d->pages[d->npages++] = (struct page){iova, pa, perm};
}

static void remove_pages(struct m_domain *d, uint64_t base, uint64_t pages)
{
    for (unsigned i = 0; i < d->npages;)
        if (d->pages[i].iova >= base && d->pages[i].iova < base + pages * PAGE_SIZE)
            d->pages[i] = d->pages[--d->npages];
        else
            i++;
}

/* The allocator's block for a range of bytes: a power of two, 4 KiB at least. */
static uint64_t block_of(uint64_t bytes)
{
    uint64_t b = PAGE_SIZE;
    while (b < bytes)
        b <<= 1;
    return b;
}

static const struct held_block *held_in(const struct m_domain *d, uint64_t base, uint64_t size)
{
    for (unsigned i = 0; i < d->nheld; i++)
        if (d->held[i].base < base + size && base < d->held[i].base + d->held[i].size)
            return &d->held[i];
    return NULL;
}

/* What the buddy allocator does with a request (iommu/iova.h): the lowest naturally aligned
 * block in [min, max] that no held block overlaps (free buddies are always joined, so such a
 * range is one free block); MIX when the window cannot hold an aligned block at all,
 * STATUS_INSUFFICIENT_RESOURCES when every block that fits is taken or the allocator holds
 * as many as it can. */
static NTSTATUS predict_alloc(const struct m_domain *d, uint64_t bytes, uint64_t min, uint64_t max, uint64_t *at)
{
    uint64_t b = block_of(bytes), last = (1ull << d->width) - 1;
    if (min > last || max < min)
        return STATUS_INVALID_PARAMETER_MIX;
    uint64_t hi = max < last ? max : last, x = (min + b - 1) & ~(b - 1);
    if (x < min || x > hi || hi - x < b - 1)
        return STATUS_INVALID_PARAMETER_MIX;
    if (d->nheld == ALLOCATOR_LIVE)
        return STATUS_INSUFFICIENT_RESOURCES;
    for (;;) {
        const struct held_block *h = held_in(d, x, b);
        if (!h) {
            *at = x;
            return STATUS_SUCCESS;
        }
        uint64_t next = (h->base + h->size + b - 1) & ~(b - 1);
        if (next <= x || next > hi || hi - next < b - 1)
            return STATUS_INSUFFICIENT_RESOURCES;
        x = next;
    }
}

static void hold(struct m_domain *d, uint64_t base, uint64_t bytes, bool token)
{
    assert_true(d->nheld < ALLOCATOR_LIVE);
    d->held[d->nheld++] = (struct held_block){base, block_of(bytes), token};
}

static void release_held(struct m_domain *d, uint64_t base)
{
    for (unsigned i = 0; i < d->nheld; i++)
        if (d->held[i].base == base) {
            d->held[i] = d->held[--d->nheld];
            return;
        }
    fail_msg("step %u: the model holds no block at 0x%llx", model.step, (unsigned long long)base);
}

static int domain_index_of(const struct m_domain *d)
{
    return (int)(d - model.dom);
}

static bool token_in(int domain, uint64_t base, uint64_t pages)
{
    for (unsigned i = 0; i < MAX_TOKENS; i++) {
        const struct m_token *t = &model.tok[i];
        if (t->live && t->domain == domain && base < t->base + t->size && t->base < base + pages * PAGE_SIZE)
            return true;
    }
    return false;
}

static struct m_domain *pick_domain(bool (*want)(const struct m_domain *))
{
    unsigned start = below(MAX_DOMAINS);
    for (unsigned k = 0; k < MAX_DOMAINS; k++) {
        struct m_domain *d = &model.dom[(start + k) % MAX_DOMAINS];
        if (d->live && (!want || want(d)))
            return d;
    }
    return NULL;
}

static struct m_device *pick_device(void)
{
    unsigned start = below(MAX_DEVICES);
    for (unsigned k = 0; k < MAX_DEVICES; k++) {
        struct m_device *v = &model.dev[(start + k) % MAX_DEVICES];
        if (v->live)
            return v;
    }
    return NULL;
}

static struct m_token *pick_token(void)
{
    unsigned start = below(MAX_TOKENS);
    for (unsigned k = 0; k < MAX_TOKENS; k++) {
        struct m_token *t = &model.tok[(start + k) % MAX_TOKENS];
        if (t->live)
            return t;
    }
    return NULL;
}

static unsigned live_segments(const struct m_token *t)
{
    unsigned n = 0;
    for (unsigned i = 0; i < MAX_SEGMENTS; i++)
        n += t->segs[i].live;
    return n;
}

static void remember(void **list, unsigned *n, void *h)
{
    list[*n % MAX_DEAD] = h;
    (*n)++;
}

static void *dead_or_forged(void **list, unsigned n)
{
    static const uintptr_t forged[] = {0, 1, 0x1000, 0xffffffffffffffffull, 0xd0d0000000000007ull};
    if (n && chance(60))
        return list[below(n < MAX_DEAD ? n : MAX_DEAD)];
    return (void *)forged[below(sizeof forged / sizeof forged[0])];
}

/* ---- arguments ---- */

static ULONG valid_perm(void)
{
    static const ULONG p[] = {IOMMU_ACCESS_READ, IOMMU_ACCESS_WRITE, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE};
    return p[below(3)];
}

/* Physical pages to map, given one of the three ways. frames[] holds the pages either way
 * for the model; the descriptor points into the static storage below. */
struct phys_arg {
    IOMMU_MAP_PHYSICAL_ADDRESS desc;
    uint64_t frames[16];
    unsigned pages;
    bool not_ram;          /* some page is not guest RAM: every map must be refused */
    MDL *mdl;
};

static PFN_NUMBER pfn_storage[16];

/* Memory that is not guest RAM, pages long: the project's own, the IOMMU's registers, the
 * MSI window, or a range past or straddling the end of RAM. */
static uint64_t not_ram_range(unsigned pages)
{
    switch (below(5)) {
    case 0:
        return sim_protected_base(model.s) + (uint64_t)below(16) * PAGE_SIZE;
    case 1:
        return SIM_UNIT_BASE;
    case 2:
        return SIM_MSI_BASE;
    case 3:
        return SIM_RAM_END - (uint64_t)(pages - 1) * PAGE_SIZE; /* its last page is past the end */
    default:
        return SIM_RAM_END + (uint64_t)below(16) * PAGE_SIZE;
    }
}

static void make_phys(struct phys_arg *a, unsigned pages, bool not_ram)
{
    memset(a, 0, sizeof *a);
    a->pages = pages;
    a->not_ram = not_ram;
    /* not RAM: a whole range, or a list of RAM frames with one frame that is not */
    bool whole = not_ram && chance(50);
    uint64_t first = whole ? not_ram_range(pages) : sim_ram_page(model.s, below(SIM_RAM_PAGES - 16));
    unsigned how = below(3);
    if (how == 0 || whole) {
        if (not_ram && !whole)
            first = not_ram_range(pages);
        a->desc.MapType = MapPhysicalAddressTypeContiguousRange;
        a->desc.ContiguousRange.Base.QuadPart = (LONGLONG)first;
        a->desc.ContiguousRange.Size = (SIZE_T)pages * PAGE_SIZE;
        for (unsigned i = 0; i < pages; i++)
            a->frames[i] = first + (uint64_t)i * PAGE_SIZE;
        return;
    }
    unsigned ram[16];
    for (unsigned i = 0; i < pages; i++) {
        ram[i] = below(SIM_RAM_PAGES);
        a->frames[i] = sim_ram_page(model.s, ram[i]);
    }
    if (not_ram)
        a->frames[below(pages)] = not_ram_range(1);
    if (how == 1) {
        for (unsigned i = 0; i < pages; i++)
            pfn_storage[i] = a->frames[i] >> PAGE_SHIFT;
        a->desc.MapType = MapPhysicalAddressTypePfn;
        a->desc.PfnArray.PageFrame = pfn_storage;
        a->desc.PfnArray.NumberOfPages = pages;
    } else {
        a->mdl = sim_mdl(model.s, ram, pages);
        for (unsigned i = 0; i < pages; i++)
            MmGetMdlPfnArray(a->mdl)[i] = a->frames[i] >> PAGE_SHIFT;
        a->desc.MapType = MapPhysicalAddressTypeMdl;
        a->desc.Mdl.Mdl = a->mdl;
    }
}

static void free_phys(struct phys_arg *a)
{
    free(a->mdl);
    a->mdl = NULL;
}

/* A broken descriptor: what each routine reports as its descriptor parameter. */
static void break_phys(struct phys_arg *a)
{
    switch (below(3)) {
    case 0:
        a->desc.MapType = MapPhysicalAddressTypeContiguousRange;
        a->desc.ContiguousRange.Base.QuadPart = (LONGLONG)sim_ram_page(model.s, 3) + 0x80;
        a->desc.ContiguousRange.Size = PAGE_SIZE;
        break;
    case 1:
        a->desc.MapType = MapPhysicalAddressTypePfn;
        a->desc.PfnArray.PageFrame = NULL;
        a->desc.PfnArray.NumberOfPages = 1;
        break;
    default:
        a->desc.MapType = (IOMMU_MAP_PHYSICAL_ADDRESS_TYPE)17;
        break;
    }
}

static uint64_t window_address(void)
{
    if (chance(70))
        return WINDOW_BASE + (uint64_t)below(WINDOW_PAGES) * PAGE_SIZE;
    return sim_ram_page(model.s, below(RAM_WINDOW_PAGES));
}

/* ---- the checks after every call ---- */

static void check_counts(void)
{
    unsigned domains = 0, devices = 0, tokens = 0, segments = 0, callbacks = 0;
    for (unsigned i = 0; i < MAX_DOMAINS; i++)
        domains += model.dom[i].live;
    for (unsigned i = 0; i < MAX_DEVICES; i++) {
        devices += model.dev[i].live;
        callbacks += model.dev[i].live && model.dev[i].callback;
    }
    for (unsigned i = 0; i < MAX_TOKENS; i++)
        if (model.tok[i].live) {
            tokens++;
            segments += live_segments(&model.tok[i]);
        }
    struct ddi_counts c = ddi_provider_counts();
    if (c.domains != domains || c.devices != devices || c.tokens != tokens || c.mapped_segments != segments ||
        c.callbacks != callbacks)
        fail_msg("step %u: provider holds %u domains, %u devices, %u tokens, %u segments, %u callbacks; "
                 "the model %u, %u, %u, %u, %u",
                 model.step, c.domains, c.devices, c.tokens, c.mapped_segments, c.callbacks, domains, devices, tokens,
                 segments, callbacks);
    /* The pool's own counters against its pages, and every page it gave out accounted for. */
    struct page_pool *pool = sim_pool(model.s);
    uint32_t allocated = 0;
    for (uint32_t i = pool->first_usable; i < pool->pages; i++)
        allocated += pool->meta[i].allocated != 0;
    if (allocated != pool->in_use)
        fail_msg("step %u: pool says %u pages in use, its pages say %u", model.step, pool->in_use, allocated);
    if (pool->in_use != model.pool_baseline + c.table_pages)
        fail_msg("step %u: pool has %u pages in use: %u before the run + %u in live domains' tables", model.step,
                 pool->in_use, model.pool_baseline, c.table_pages);
}

static void expect_dma(unsigned fn, uint64_t iova, bool write, bool ok, uint64_t pa)
{
    struct vtd_model_result r = sim_dma(model.s, fn, iova, write);
    if (r.ok != ok || (ok && r.pa != pa))
        fail_msg("step %u: function %u %s at 0x%llx %s 0x%llx (fault reason %u); the model says %s 0x%llx", model.step,
                 fn, write ? "write" : "read", (unsigned long long)iova, r.ok ? "reached" : "faulted",
                 (unsigned long long)r.pa, r.reason, ok ? "reach" : "fault", (unsigned long long)pa);
}

static void check_translation(bool all_pages)
{
    for (unsigned i = 0; i < MAX_DEVICES; i++) {
        const struct m_device *v = &model.dev[i];
        if (!v->live)
            continue;
        if (v->domain < 0) { /* the default domain: RAM one to one */
            uint64_t pa = sim_ram_page(model.s, below(SIM_RAM_PAGES)) + 8;
            expect_dma(i, pa, chance(50), true, pa);
            continue;
        }
        struct m_domain *d = &model.dom[v->domain];
        if (d->kind == PASSTHROUGH) {
            uint64_t pa = sim_ram_page(model.s, below(SIM_RAM_PAGES)) + 16;
            expect_dma(i, pa, chance(50), true, pa);
            continue;
        }
        unsigned n = all_pages || d->npages <= CHECK_SAMPLE ? d->npages : CHECK_SAMPLE;
        for (unsigned k = 0; k < n; k++) {
            const struct page *p = &d->pages[n == d->npages ? k : below(d->npages)];
            uint64_t off = 8u * below(PAGE_SIZE / 8);
            expect_dma(i, p->iova + off, false, p->perm & IOMMU_ACCESS_READ, p->pa + off);
            expect_dma(i, p->iova + off, true, p->perm & IOMMU_ACCESS_WRITE, p->pa + off);
        }
        for (unsigned k = 0; k < 4; k++) { /* probes: unmapped pages fault */
            uint64_t iova = window_address();
            if (!find_page(d, iova))
                expect_dma(i, iova + 4, chance(50), false, 0);
        }
    }
    ddi_dispatch_faults(); /* drain what the probes left in the units' fault records */
}

/* ---- the calls ---- */

static void count_call(const char *what, bool ok)
{
    model.calls++;
    model.refusals += !ok;
    for (unsigned i = 0; i < sizeof model.tally / sizeof model.tally[0]; i++)
        if (!model.tally[i].routine || !strcmp(model.tally[i].routine, what)) {
            model.tally[i].routine = what;
            model.tally[i].ok += ok;
            model.tally[i].refused += !ok;
            return;
        }
}

static void expect(NTSTATUS got, NTSTATUS want, const char *what)
{
    count_call(what, want == STATUS_SUCCESS);
    if (got == want)
        return;
    fail_msg("step %u: %s returned 0x%08x, the model says 0x%08x", model.step, what, (unsigned)got, (unsigned)want);
}

/* A success the model predicts may be turned into this by the injected allocation failure;
 * the caller then changes nothing in the model, and the checks that follow see whether the
 * provider changed nothing as well. */
static bool failed_by_injection(NTSTATUS got, NTSTATUS want)
{
    if (model.injecting && want == STATUS_SUCCESS && got == STATUS_INSUFFICIENT_RESOURCES) {
        count_call("(failed by injection)", false);
        model.injected_failures++;
        return true;
    }
    return false;
}

static bool translates(const struct m_domain *d)
{
    return d->kind != PASSTHROUGH;
}

static void op_create_domain(void)
{
    struct m_domain *slot = NULL;
    for (unsigned i = 0; i < MAX_DOMAINS && !slot; i++)
        if (!model.dom[i].live)
            slot = &model.dom[i];
    IOMMU_DMA_DOMAIN_CREATION_FLAGS flags = {.AsUlonglong = chance(4) ? 1ull << below(64) : 0};
    IOMMU_DMA_DOMAIN_TYPE type = chance(50) ? DomainTypeTranslate : DomainTypePassThrough;
    if (chance(4))
        type = (IOMMU_DMA_DOMAIN_TYPE)(DomainTypeMax + below(5));
    if (!slot) { /* the model is full: a refused call instead */
        type = DomainTypeTranslate;
        flags.AsUlonglong = 1;
    }
    bool buddy = type == DomainTypeTranslate && chance(50);
    IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG cfg = {.LogicalAllocatorType = IommuDmaLogicalAllocatorBuddy,
                                              .BuddyAllocatorConfig = {.AddressWidth = 24 + below(16)}};
    PIOMMU_DMA_DOMAIN h = (PIOMMU_DMA_DOMAIN)0x5a5a;
    NTSTATUS want = (unsigned)type >= DomainTypeMax ? STATUS_INVALID_PARAMETER_1
                  : flags.AsUlonglong                ? STATUS_INVALID_PARAMETER_2
                                                     : STATUS_SUCCESS;
    NTSTATUS got = model.v2->CreateDomainEx(type, flags, buddy ? &cfg : NULL, NULL, &h);
    if (failed_by_injection(got, want) || (expect(got, want, "CreateDomainEx"), want != STATUS_SUCCESS)) {
        assert_ptr_equal(h, (PIOMMU_DMA_DOMAIN)0x5a5a);
        return;
    }
    *slot = (struct m_domain){.live = true, .h = h, .kind = type == DomainTypePassThrough ? PASSTHROUGH
                                                           : buddy                         ? BUDDY
                                                                                           : EXPLICIT,
                                .width = cfg.BuddyAllocatorConfig.AddressWidth}; /* <= the tables' 39 bits */
}

static void op_delete_domain(void)
{
    struct m_domain *d = chance(85) ? pick_domain(NULL) : NULL;
    if (!d) {
        expect(model.v2->DeleteDomain(dead_or_forged(model.dead_domains, model.ndead_domains)),
               STATUS_INVALID_PARAMETER_1, "DeleteDomain (stale)");
        return;
    }
    NTSTATUS want = d->devices || d->tokens ? STATUS_RESOURCE_IN_USE : STATUS_SUCCESS;
    expect(model.v2->DeleteDomain(d->h), want, "DeleteDomain");
    if (want == STATUS_SUCCESS) {
        remember(model.dead_domains, &model.ndead_domains, d->h);
        d->live = false;
    }
}

static void op_create_device(void)
{
    unsigned fn = below(model.functions);
    DEVICE_OBJECT pdo;
    sim_device_object(model.s, fn, &pdo);
    PIOMMU_DMA_DEVICE h = (PIOMMU_DMA_DEVICE)0x5a5a;
    bool behind_unit = fn < MAX_DEVICES;
    NTSTATUS want = !behind_unit ? STATUS_NOT_FOUND : model.dev[fn].live ? STATUS_RESOURCE_IN_USE : STATUS_SUCCESS;
    expect(model.v2->CreateDevice(&pdo, NULL, &h), want, "CreateDevice");
    if (want == STATUS_SUCCESS)
        model.dev[fn] = (struct m_device){.live = true, .h = h, .domain = -1};
}

static void op_delete_device(void)
{
    struct m_device *v = chance(85) ? pick_device() : NULL;
    if (!v) {
        expect(model.v2->DeleteDevice(dead_or_forged(model.dead_devices, model.ndead_devices)),
               STATUS_INVALID_PARAMETER_1, "DeleteDevice (stale)");
        return;
    }
    NTSTATUS want = v->domain >= 0 || v->callback ? STATUS_RESOURCE_IN_USE : STATUS_SUCCESS;
    expect(model.v2->DeleteDevice(v->h), want, "DeleteDevice");
    if (want == STATUS_SUCCESS) {
        remember(model.dead_devices, &model.ndead_devices, v->h);
        v->live = false;
    }
}

static void op_attach(void)
{
    struct m_device *v = pick_device();
    struct m_domain *d = pick_domain(NULL);
    if (!v || !d || chance(5)) {
        /* The domain is checked first. */
        if (!d || chance(50)) {
            PIOMMU_DMA_DEVICE dev = v ? v->h : dead_or_forged(model.dead_devices, model.ndead_devices);
            expect(model.v2->AttachDeviceEx(dead_or_forged(model.dead_domains, model.ndead_domains), dev),
                   STATUS_INVALID_PARAMETER_1, "AttachDeviceEx (stale domain)");
        } else {
            expect(model.v2->AttachDeviceEx(d->h, dead_or_forged(model.dead_devices, model.ndead_devices)),
                   STATUS_INVALID_PARAMETER_2, "AttachDeviceEx (stale device)");
        }
        return;
    }
    int index = domain_index_of(d);
    NTSTATUS want = d->kind == PASSTHROUGH && model.guard ? STATUS_ACCESS_DENIED
                  : v->domain == index             ? STATUS_SUCCESS
                  : v->domain >= 0                 ? STATUS_INVALID_PARAMETER
                                                   : STATUS_SUCCESS;
    NTSTATUS got = model.v2->AttachDeviceEx(d->h, v->h);
    if (failed_by_injection(got, want))
        return;
    expect(got, want, "AttachDeviceEx");
    if (want == STATUS_SUCCESS && v->domain != index) {
        v->domain = index;
        d->devices++;
    }
}

static void op_detach(void)
{
    struct m_device *v = chance(90) ? pick_device() : NULL;
    if (!v) {
        expect(model.v2->DetachDeviceEx(dead_or_forged(model.dead_devices, model.ndead_devices)),
               STATUS_INVALID_PARAMETER_1, "DetachDeviceEx (stale)");
        return;
    }
    expect(model.v2->DetachDeviceEx(v->h), v->domain >= 0 ? STATUS_SUCCESS : STATUS_INVALID_PARAMETER_1,
           "DetachDeviceEx");
    if (v->domain >= 0) {
        model.dom[v->domain].devices--;
        v->domain = -1;
    }
}

/* MapLogicalRangeEx (and V1 MapLogicalRange) with one thing wrong, or nothing. */
static void op_map_logical(void)
{
    struct m_domain *d = pick_domain(NULL);
    if (!d)
        return;
    unsigned pages = 1 + below(8);
    struct phys_arg a;
    make_phys(&a, pages, chance(3));
    ULONG perm = chance(5) ? (chance(50) ? 0 : 0x80 | IOMMU_ACCESS_READ) : valid_perm();
    bool broken = chance(4);
    if (broken)
        break_phys(&a);
    uint64_t at = window_address();
    bool give_explicit = d->kind == BUDDY ? chance(5) : !chance(3);
    uint64_t min = 0, max = 0;
    bool window = d->kind == BUDDY && chance(30);
    if (window) {
        min = (uint64_t)below(1u << 12) * PAGE_SIZE;
        max = min + (uint64_t)(64 + below(64)) * PAGE_SIZE - 1;
    }
    if (d->npages + pages > MAX_PAGES || (d->kind == BUDDY && d->nallocs == MAX_ALLOCS))
        perm = 0; /* the model is full: a refused call instead */
    bool v1 = d->kind == EXPLICIT && a.mdl && !broken && give_explicit && chance(50);

    NTSTATUS want;
    uint64_t predicted = 0;
    if (d->kind == PASSTHROUGH)
        want = STATUS_INVALID_PARAMETER_1;
    else if (!perm || (perm & ~(IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE)))
        want = STATUS_INVALID_PARAMETER_2;
    else if (broken)
        want = STATUS_INVALID_PARAMETER_3;
    else if (d->kind == BUDDY)
        want = give_explicit ? STATUS_NOT_SUPPORTED
             : a.not_ram     ? STATUS_ACCESS_DENIED
                             : predict_alloc(d, pages * PAGE_SIZE, min, window ? max : UINT64_MAX, &predicted);
    else if (!give_explicit)
        want = STATUS_NOT_SUPPORTED;
    else if (a.not_ram)
        want = STATUS_ACCESS_DENIED;
    else if (token_in(domain_index_of(d), at, pages) || any_page_in(d, at, pages))
        want = STATUS_RESOURCE_IN_USE;
    else
        want = STATUS_SUCCESS;

    IOMMU_DMA_LOGICAL_ADDRESS explicit_at = at, out = 0x5a5a;
    NTSTATUS got = v1 ? model.v1.MapLogicalRange(d->h, perm, a.mdl, at)
                      : model.v2->MapLogicalRangeEx(d->h, perm, &a.desc, give_explicit ? &explicit_at : NULL,
                                                window ? &min : NULL, window ? &max : NULL, &out);
    const char *what = v1 ? "MapLogicalRange" : "MapLogicalRangeEx";
    if (failed_by_injection(got, want)) {
        free_phys(&a);
        return;
    }
    expect(got, want, what);
    if (want == STATUS_SUCCESS) {
        uint64_t base = d->kind == BUDDY ? out : at;
        if (d->kind == BUDDY) {
            if (base & (PAGE_SIZE - 1) || (window && (base < min || base + pages * PAGE_SIZE - 1 > max)))
                fail_msg("step %u: allocator gave 0x%llx outside its window", model.step, (unsigned long long)base);
            if (any_page_in(d, base, pages) || token_in(domain_index_of(d), base, pages))
                fail_msg("step %u: allocator gave 0x%llx, which is in use", model.step, (unsigned long long)base);
            if (base != predicted)
                fail_msg("step %u: allocator gave 0x%llx, the model says 0x%llx", model.step, (unsigned long long)base,
                         (unsigned long long)predicted);
            d->allocs[d->nallocs++] = (struct alloc_range){base, pages};
            hold(d, base, pages * PAGE_SIZE, false);
        } else if (!v1) {
            assert_int_equal(out, at);
        }
        for (unsigned i = 0; i < pages; i++)
            add_page(d, base + (uint64_t)i * PAGE_SIZE, a.frames[i], perm);
    } else if (!v1) {
        assert_int_equal(out, 0x5a5a); /* M13: written only on success */
    }
    free_phys(&a);
}

static void op_unmap_logical(void)
{
    struct m_domain *d = pick_domain(NULL);
    if (!d)
        return;
    uint64_t base, pages;
    unsigned alloc = 0;
    bool whole_alloc = false;
    if (d->kind == BUDDY && d->nallocs && chance(85)) {
        alloc = below(d->nallocs);
        base = d->allocs[alloc].base;
        pages = d->allocs[alloc].pages;
        whole_alloc = true;
    } else if (d->npages && chance(70)) {
        base = d->pages[below(d->npages)].iova;
        pages = 1 + below(8);
    } else {
        base = window_address();
        pages = 1 + below(8);
    }
    NTSTATUS want = d->kind == PASSTHROUGH                          ? STATUS_INVALID_PARAMETER_1
                  : token_in(domain_index_of(d), base, pages)       ? STATUS_RESOURCE_IN_USE
                                                                    : STATUS_SUCCESS;
    expect(model.v2->UnmapLogicalRange(d->h, base, pages), want, "UnmapLogicalRange");
    if (want != STATUS_SUCCESS)
        return;
    remove_pages(d, base, pages);
    if (whole_alloc)
        d->allocs[alloc] = d->allocs[--d->nallocs];
    /* M17: every allocation the unmap covered whole goes back: its block starts in the range
     * and none of it is mapped now. */
    for (unsigned i = 0; i < d->nheld;) {
        const struct held_block *h = &d->held[i];
        if (!h->token && h->base >= base && h->base < base + pages * PAGE_SIZE &&
            !any_page_in(d, h->base, h->size / PAGE_SIZE))
            d->held[i] = d->held[--d->nheld];
        else
            i++;
    }
    /* An allocator range cut into by another unmap is forgotten by the model once none of it
     * is mapped: the allocator keeps it (docs/ddi.md), and the model only needs it for its
     * pages. */
    for (unsigned i = 0; i < d->nallocs;)
        if (!any_page_in(d, d->allocs[i].base, d->allocs[i].pages))
            d->allocs[i] = d->allocs[--d->nallocs];
        else
            i++;
}

static void op_identity(void)
{
    struct m_domain *d = pick_domain(NULL);
    if (!d)
        return;
    bool map = chance(60);
    unsigned pages = 1 + below(4);
    struct phys_arg a;
    make_phys(&a, pages, map && chance(3));
    if (!a.not_ram && a.desc.MapType == MapPhysicalAddressTypeContiguousRange) {
        /* near the other maps, so that overlaps happen */
        uint64_t first = sim_ram_page(model.s, below(RAM_WINDOW_PAGES));
        a.desc.ContiguousRange.Base.QuadPart = (LONGLONG)first;
        for (unsigned i = 0; i < pages; i++)
            a.frames[i] = first + (uint64_t)i * PAGE_SIZE;
    }
    ULONG perm = valid_perm();
    if (d->npages + pages > MAX_PAGES)
        map = false;
    bool overlap = false;
    for (unsigned i = 0; i < pages && !overlap; i++) {
        overlap = token_in(domain_index_of(d), a.frames[i], 1) || (map && find_page(d, a.frames[i]));
        for (unsigned k = 0; k < i && map; k++)
            overlap |= a.frames[k] == a.frames[i];
    }
    bool tokens = false;
    for (unsigned i = 0; i < pages; i++) {
        tokens |= token_in(domain_index_of(d), a.frames[i], 1);
        /* an identity unmap may not take a logical mapping of another page (docs/ddi.md) */
        const struct page *p = map ? NULL : find_page(d, a.frames[i]);
        tokens |= p && p->pa != a.frames[i];
    }
    NTSTATUS want = d->kind == PASSTHROUGH ? STATUS_SUCCESS /* I1 */
                  : d->kind == BUDDY        ? STATUS_NOT_SUPPORTED
                  : a.not_ram      ? STATUS_ACCESS_DENIED
                  : tokens || overlap       ? STATUS_RESOURCE_IN_USE
                                            : STATUS_SUCCESS;
    NTSTATUS got =
        map ? model.v2->MapIdentityRangeEx(d->h, perm, &a.desc) : model.v2->UnmapIdentityRangeEx(d->h, &a.desc);
    if (!failed_by_injection(got, want)) {
        expect(got, want, map ? "MapIdentityRangeEx" : "UnmapIdentityRangeEx");
        if (want == STATUS_SUCCESS && d->kind == EXPLICIT)
            for (unsigned i = 0; i < pages; i++) {
                if (map)
                    add_page(d, a.frames[i], a.frames[i], perm);
                else
                    remove_pages(d, a.frames[i], 1);
            }
    }
    free_phys(&a);
}

static void op_reserve(void)
{
    struct m_domain *d = pick_domain(NULL);
    struct m_token *slot = NULL;
    for (unsigned i = 0; i < MAX_TOKENS && !slot; i++)
        if (!model.tok[i].live)
            slot = &model.tok[i];
    if (!d || !slot)
        return;
    uint64_t pages = 1 + below(16), at = window_address();
    SIZE_T size = chance(4) ? pages * PAGE_SIZE + 0x10 : pages * PAGE_SIZE;
    PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN h = (PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN)0x5a5a;
    IOMMU_DMA_LOGICAL_ADDRESS explicit_at = at;
    bool give_explicit = d->kind == EXPLICIT;
    uint64_t predicted = 0;
    NTSTATUS want = size & (PAGE_SIZE - 1)   ? STATUS_INVALID_PARAMETER_2
                    : d->kind == PASSTHROUGH ? STATUS_INVALID_PARAMETER_1
                    : d->kind == BUDDY       ? predict_alloc(d, size, 0, UINT64_MAX, &predicted)
                    : token_in(domain_index_of(d), at, pages) || any_page_in(d, at, pages) ? STATUS_RESOURCE_IN_USE
                                                                                           : STATUS_SUCCESS;
    NTSTATUS got =
        model.v2->ReserveLogicalAddressRange(d->h, size, give_explicit ? &explicit_at : NULL, NULL, NULL, &h);
    if (failed_by_injection(got, want)) {
        assert_null(h); /* R5 */
        return;
    }
    expect(got, want, "ReserveLogicalAddressRange");
    if (want != STATUS_SUCCESS) {
        assert_null(h);
        return;
    }
    uint64_t base = h->LogicalAddressBase;
    assert_int_equal(h->Size, size);
    if (d->kind == EXPLICIT)
        assert_int_equal(base, at);
    else if (any_page_in(d, base, pages) || token_in(domain_index_of(d), base, pages))
        fail_msg("step %u: token at 0x%llx covers pages in use", model.step, (unsigned long long)base);
    else if (base != predicted)
        fail_msg("step %u: token at 0x%llx, the model says 0x%llx", model.step, (unsigned long long)base,
                 (unsigned long long)predicted);
    else
        hold(d, base, size, true);
    model.reservations++;
    /* A token handle is a pointer into the provider's table: a freed token's slot comes round
     * again DDI_MAX_TOKENS reservations later at the earliest (docs/ddi.md); from then on the
     * old handle is a live one, so it is no longer a stale one here. */
    for (unsigned i = 0; i < MAX_DEAD; i++)
        if (model.dead_tokens[i] == h) {
            if (model.reservations - model.dead_token_at[i] <= DDI_MAX_TOKENS)
                fail_msg("step %u: a token freed %u reservations ago has its slot used again", model.step,
                         model.reservations - model.dead_token_at[i]);
            model.dead_tokens[i] = (void *)1;
        }
    *slot = (struct m_token){.live = true, .h = h, .domain = domain_index_of(d), .buddy = d->kind == BUDDY,
                             .base = base, .size = size};
    d->tokens++;
}

static void op_free_token(void)
{
    struct m_token *t = chance(85) ? pick_token() : NULL;
    if (!t) {
        expect(model.v2->FreeReservedLogicalAddressRange(dead_or_forged(model.dead_tokens, model.ndead_tokens)),
               STATUS_INVALID_PARAMETER_1, "FreeReservedLogicalAddressRange (stale)");
        return;
    }
    NTSTATUS want = live_segments(t) ? STATUS_RESOURCE_IN_USE : STATUS_SUCCESS;
    expect(model.v2->FreeReservedLogicalAddressRange(t->h), want, "FreeReservedLogicalAddressRange");
    if (want == STATUS_SUCCESS) {
        model.dead_token_at[model.ndead_tokens % MAX_DEAD] = model.reservations;
        remember(model.dead_tokens, &model.ndead_tokens, t->h);
        model.dom[t->domain].tokens--;
        if (t->buddy)
            release_held(&model.dom[t->domain], t->base); /* R18 */
        t->live = false;
    }
}

static void op_map_reserved(void)
{
    struct m_token *t = pick_token();
    if (!t)
        return;
    struct m_segment *slot = NULL;
    for (unsigned i = 0; i < MAX_SEGMENTS && !slot; i++)
        if (!t->segs[i].live)
            slot = &t->segs[i];
    struct m_domain *d = &model.dom[t->domain];
    uint64_t token_pages = t->size / PAGE_SIZE;
    uint64_t offset = below((unsigned)token_pages) * PAGE_SIZE;
    unsigned pages = 1 + below((unsigned)(token_pages - offset / PAGE_SIZE) + (chance(10) ? 2 : 0));
    if (pages > 16)
        pages = 16;
    struct phys_arg a;
    make_phys(&a, pages, chance(3));
    ULONG perm = chance(4) ? 0 : valid_perm();
    if (!slot || d->npages + pages > MAX_PAGES)
        perm = 0;
    NTSTATUS want = !perm                                             ? STATUS_INVALID_PARAMETER_3
                  : offset + pages * PAGE_SIZE > t->size              ? STATUS_INVALID_PARAMETER_4
                  : a.not_ram                                ? STATUS_ACCESS_DENIED
                  : any_page_in(d, t->base + offset, pages)           ? STATUS_RESOURCE_IN_USE
                                                                      : STATUS_SUCCESS;
    IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT seg = {0};
    /* R13: mapping inside a token allocates nothing, so an injected failure cannot matter */
    expect(model.v2->MapReservedLogicalRange(t->h, offset, perm, &a.desc, &seg), want, "MapReservedLogicalRange");
    if (want == STATUS_SUCCESS) {
        assert_ptr_equal(seg.OwningToken, t->h);
        assert_int_equal(seg.Offset, offset);
        assert_int_equal(seg.Size, pages * PAGE_SIZE);
        *slot = (struct m_segment){.live = true, .seg = seg};
        for (unsigned i = 0; i < pages; i++)
            add_page(d, t->base + offset + (uint64_t)i * PAGE_SIZE, a.frames[i], perm);
    }
    free_phys(&a);
}

static bool is_live_segment(const struct m_token *t, uint64_t offset, uint64_t size)
{
    for (unsigned i = 0; i < MAX_SEGMENTS; i++)
        if (t->segs[i].live && t->segs[i].seg.Offset == offset && t->segs[i].seg.Size == size)
            return true;
    return false;
}

/* A record that names no one segment of t mapped now: two segments and what lies between,
 * a part of one, or one unmapped already. False when t has none of these to offer. */
static bool wrong_record(const struct m_token *t, IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT *r)
{
    const struct m_segment *a = NULL, *b = NULL;
    for (unsigned i = 0; i < MAX_SEGMENTS; i++)
        if (t->segs[i].live) {
            if (!a)
                a = &t->segs[i];
            else if (!b)
                b = &t->segs[i];
        }
    *r = (IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT){t->h, 0, 0};
    switch (below(3)) {
    case 0: /* two segments at once */
        if (!b)
            return false;
        r->Offset = a->seg.Offset < b->seg.Offset ? a->seg.Offset : b->seg.Offset;
        uint64_t end_a = a->seg.Offset + a->seg.Size, end_b = b->seg.Offset + b->seg.Size;
        r->Size = (end_a > end_b ? end_a : end_b) - r->Offset;
        return true;
    case 1: /* a part of one */
        if (!a || a->seg.Size < 2 * PAGE_SIZE)
            return false;
        r->Offset = a->seg.Offset + (chance(50) ? PAGE_SIZE : 0);
        r->Size = a->seg.Size - PAGE_SIZE;
        return true;
    default: /* one unmapped already (unless the same extent is mapped again) */
        if (model.unmapped.OwningToken != t->h || is_live_segment(t, model.unmapped.Offset, model.unmapped.Size))
            return false;
        *r = model.unmapped;
        return true;
    }
}

static void op_unmap_reserved(void)
{
    struct m_token *t = pick_token();
    if (!t)
        return;
    IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT wrong;
    if (chance(40) && wrong_record(t, &wrong)) {
        /* R14: refused, and nothing changes (the checks after the step see the pages) */
        IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT copy = wrong;
        expect(model.v2->UnmapReservedLogicalRange(&copy), STATUS_INVALID_PARAMETER,
               "UnmapReservedLogicalRange (wrong record)");
        assert_int_equal(copy.Offset, wrong.Offset);
        assert_int_equal(copy.Size, wrong.Size);
        return;
    }
    unsigned start = below(MAX_SEGMENTS);
    for (unsigned k = 0; k < MAX_SEGMENTS; k++) {
        struct m_segment *g = &t->segs[(start + k) % MAX_SEGMENTS];
        if (!g->live)
            continue;
        uint64_t offset = g->seg.Offset, size = g->seg.Size;
        model.unmapped = g->seg;
        expect(model.v2->UnmapReservedLogicalRange(&g->seg), STATUS_SUCCESS, "UnmapReservedLogicalRange");
        assert_int_equal(g->seg.Size, 0); /* R15 */
        remove_pages(&model.dom[t->domain], t->base + offset, size / PAGE_SIZE);
        g->live = false;
        /* the same record again: now it names nothing (R14) */
        expect(model.v2->UnmapReservedLogicalRange(&g->seg), STATUS_INVALID_PARAMETER,
               "UnmapReservedLogicalRange (again)");
        return;
    }
}

static ULONG callback_calls;
static VOID NTAPI on_state_change(PIOMMU_INTERFACE_STATE_CHANGE change, PVOID context)
{
    (void)change;
    (void)context;
    callback_calls++;
}

static void op_callback(void)
{
    struct m_device *v = pick_device();
    if (!v)
        return;
    IOMMU_INTERFACE_STATE_CHANGE_FIELDS watch = {.AsULONG = 1};
    if (!v->callback) {
        ULONG before = callback_calls;
        expect(model.v2->RegisterInterfaceStateChangeCallback(on_state_change, NULL, v->h, &watch), STATUS_SUCCESS,
               "RegisterInterfaceStateChangeCallback");
        assert_int_equal(callback_calls, before + 1); /* S2: called once at registration */
        v->callback = true;
    } else {
        expect(model.v2->UnregisterInterfaceStateChangeCallback(on_state_change, v->h), STATUS_SUCCESS,
               "UnregisterInterfaceStateChangeCallback");
        v->callback = false;
    }
}

static void op_guard(void)
{
    unsigned watching = 0;
    for (unsigned i = 0; i < MAX_DEVICES; i++)
        watching += model.dev[i].live && model.dev[i].callback;
    ULONG before = callback_calls;
    bool next_guard = chance(50);
    ddi_set_dma_guard(next_guard);
    /* S6: every watcher hears of a change of the available types, and only of a change */
    assert_int_equal(callback_calls, before + (next_guard != model.guard ? watching : 0));
    model.guard = next_guard;
    /* Devices already in a PassThrough domain stay: the policy is applied at attach. */
}

static void op_v1_flush(void)
{
    /* OS-managed domains flush themselves; the caller-managed-only routines refuse them (C7). */
    struct m_domain *d = pick_domain(translates);
    if (!d)
        return;
    expect(model.v1.FlushDomain(d->h), STATUS_INVALID_PARAMETER_1, "FlushDomain");
}

/* ---- the run ---- */

static void step(void)
{
    static void (*const ops[])(void) = {
        op_create_domain, op_create_domain, op_delete_domain, op_create_device, op_delete_device,
        op_attach,        op_attach,        op_detach,        op_map_logical,   op_map_logical,
        op_map_logical,   op_map_logical,   op_unmap_logical, op_unmap_logical, op_unmap_logical,
        op_identity,      op_identity,      op_reserve,       op_free_token,    op_map_reserved,
        op_map_reserved,  op_unmap_reserved, op_callback,     op_guard,         op_v1_flush,
    };
    struct page_pool *pool = sim_pool(model.s);
    model.injecting = chance(8);
    pool->fail_at = model.injecting ? pool->attempts + 1 + below(3) : 0;
    ops[below(sizeof ops / sizeof ops[0])]();
    pool->fail_at = 0;
    check_counts();
    check_translation(model.step % 256 == 0);
}

static void teardown_all(void)
{
    for (unsigned i = 0; i < MAX_TOKENS; i++) {
        struct m_token *t = &model.tok[i];
        for (unsigned k = 0; t->live && k < MAX_SEGMENTS; k++)
            if (t->segs[k].live) {
                expect(model.v2->UnmapReservedLogicalRange(&t->segs[k].seg), STATUS_SUCCESS,
                       "UnmapReservedLogicalRange");
                t->segs[k].live = false;
            }
        if (t->live) {
            expect(model.v2->FreeReservedLogicalAddressRange(t->h), STATUS_SUCCESS, "FreeReservedLogicalAddressRange");
            model.dom[t->domain].tokens--;
            t->live = false;
        }
    }
    for (unsigned i = 0; i < MAX_DEVICES; i++) {
        struct m_device *v = &model.dev[i];
        if (v->live && v->domain >= 0)
            expect(model.v2->DetachDeviceEx(v->h), STATUS_SUCCESS, "DetachDeviceEx");
        if (v->live && v->callback)
            expect(model.v2->UnregisterInterfaceStateChangeCallback(on_state_change, v->h), STATUS_SUCCESS,
                   "UnregisterInterfaceStateChangeCallback");
        if (v->live)
            expect(model.v2->DeleteDevice(v->h), STATUS_SUCCESS, "DeleteDevice");
        v->live = false;
    }
    /* Unmapping everything leaves each translating domain with its root table alone. */
    unsigned translating = 0;
    for (unsigned i = 0; i < MAX_DOMAINS; i++) {
        struct m_domain *d = &model.dom[i];
        if (!d->live || d->kind == PASSTHROUGH)
            continue;
        translating++;
        while (d->npages) {
            uint64_t iova = d->pages[0].iova;
            expect(model.v2->UnmapLogicalRange(d->h, iova, 1), STATUS_SUCCESS, "UnmapLogicalRange");
            remove_pages(d, iova, 1);
        }
    }
    assert_int_equal(ddi_provider_counts().table_pages, translating);
    for (unsigned i = 0; i < MAX_DOMAINS; i++)
        if (model.dom[i].live) {
            expect(model.v2->DeleteDomain(model.dom[i].h), STATUS_SUCCESS, "DeleteDomain");
            model.dom[i].live = false;
        }
    struct ddi_counts c = ddi_provider_counts();
    assert_int_equal(c.domains + c.devices + c.tokens + c.callbacks + c.mapped_segments + c.table_pages, 0);
    assert_int_equal(sim_pool(model.s)->in_use, model.pool_baseline);
}

static unsigned env_number(const char *name, unsigned fallback)
{
    const char *v = getenv(name);
    return v && *v ? (unsigned)strtoul(v, NULL, 0) : fallback;
}

static void test_random_calls(void **state)
{
    (void)state;
    memset(&model, 0, sizeof model);
    unsigned seed = env_number("DDI_STRESS_SEED", 20261121);
    unsigned steps = env_number("DDI_STRESS_STEPS", 20000);
    model.rng = 0x9E3779B97F4A7C15ull ^ seed;
    printf("ddi stress: seed %u, %u steps (DDI_STRESS_SEED, DDI_STRESS_STEPS)%s\n", seed, steps,
           env_number("DDI_STRESS_CACHE_MODEL", 0) ? ", caches modelled (DDI_STRESS_CACHE_MODEL)" : "");

    /* Two units, the second with 48-bit tables; five functions behind them and one behind
     * none, all on bus 0 so that no call needs a new context table. */
    struct sim_config cfg = sim_default_config();
    cfg.units = 2;
    cfg.unit[1] = vtd_model_config_qemu(48);
    /* DDI_STRESS_CACHE_MODEL=1: the first unit does not snoop its table walks (QEMU's ECAP.C
     * = 0) and sees only what was written back; the second snoops (ECAP.C = 1). */
    cfg.cache_model = env_number("DDI_STRESS_CACHE_MODEL", 0) != 0;
    if (cfg.cache_model)
        cfg.unit[1].ecap |= 1;
    cfg.functions = MAX_DEVICES + 1;
    for (unsigned i = 0; i < cfg.functions; i++)
        cfg.function[i] = (struct sim_function){0, 0, (uint8_t)(3 + i), 0, i < 3 ? 0 : i < MAX_DEVICES ? 1 : -1};
    model.functions = cfg.functions;
    model.s = sim_create(&cfg);
    assert_non_null(model.s);
    assert_int_equal(IoGetIommuInterfaceEx(2, 0, &model.ex), STATUS_SUCCESS);
    model.v2 = &model.ex.V2;
    assert_int_equal(IoGetIommuInterface(1, &model.v1), STATUS_SUCCESS);
    model.pool_baseline = sim_pool(model.s)->in_use;

    for (model.step = 1; model.step <= steps; model.step++)
        step();
    printf("ddi stress: %u calls, %u refused as predicted, %u failed by injected allocation failures\n", model.calls,
           model.refusals, model.injected_failures);
    for (unsigned i = 0; i < sizeof model.tally / sizeof model.tally[0] && model.tally[i].routine; i++)
        printf("  %-44s %6u succeeded %6u refused\n", model.tally[i].routine, model.tally[i].ok,
               model.tally[i].refused);
    teardown_all();
    sim_destroy(model.s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_random_calls)};
    return cmocka_run_group_tests_name("ddi_stress", tests, NULL, NULL);
}
