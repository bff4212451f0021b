#include "sim.h"

#include "ddi/hc_server.h"
#include "ddi/shim.h"

#include <stdlib.h>
#include <string.h>

#include "iommu/pci.h"
#include "iommu/ranges.h"

#define UNIT_STRIDE 0x1000ull
#define LINE 64u
#define POOL_LINES (SIM_POOL_BYTES / LINE)

struct sim;
/* What one unit's memory accesses see: with the cache model, a unit that does not snoop
 * reads the pool from memory (pool_memory), not from the CPU's view. */
struct unit_view {
    struct sim *s;
    bool snoops;
};

struct sim {
    struct sim_config cfg;
    uint8_t *pool_mem;       /* at pool_pa: the CPU's view */
    uint64_t pool_pa;
    /* cache_model: the pool as memory holds it, and the lines whose write-back has been
     * started (a bit per line) */
    uint8_t *pool_memory;
    uint64_t pending[POOL_LINES / 64];
    uint64_t lines_pending, lines_written_back;
    struct unit_view view[SIM_MAX_UNITS];
    uint8_t *ram;            /* at SIM_RAM_BASE */
    struct vtd_model *model[SIM_MAX_UNITS];
    struct vtd_unit unit[SIM_MAX_UNITS];
    struct platform plat;
    struct page_pool pool;
    struct pci_inventory inv;
    struct slpt default_tables;
    uint64_t clock_ns;
    uint64_t hypercalls;
    NTSTATUS (*host_call)(void *ctx, uint32_t call, void *block);
    void *host_ctx;
};

static bool in_pool(const struct sim *s, uint64_t pa, size_t len)
{
    return pa >= s->pool_pa && pa - s->pool_pa < SIM_POOL_BYTES && len <= SIM_POOL_BYTES - (pa - s->pool_pa);
}

static uint8_t *host_of(struct sim *s, uint64_t pa, size_t len)
{
    if (in_pool(s, pa, len))
        return s->pool_mem + (pa - s->pool_pa);
    uint64_t ram_bytes = (uint64_t)SIM_RAM_PAGES * PAGE_SIZE;
    if (pa >= SIM_RAM_BASE && pa - SIM_RAM_BASE < ram_bytes && len <= ram_bytes - (pa - SIM_RAM_BASE))
        return s->ram + (pa - SIM_RAM_BASE);
    return NULL;
}

static bool mem_read(void *ctx, uint64_t pa, void *buf, size_t len)
{
    const struct unit_view *v = ctx;
    if (v->s->pool_memory && !v->snoops && in_pool(v->s, pa, len)) {
        memcpy(buf, v->s->pool_memory + (pa - v->s->pool_pa), len);
        return true;
    }
    uint8_t *p = host_of(v->s, pa, len);
    if (p)
        memcpy(buf, p, len);
    return p != NULL;
}

/* A unit's writes (invalidation wait status) reach memory, and the CPU sees them too. */
static bool mem_write(void *ctx, uint64_t pa, const void *buf, size_t len)
{
    const struct unit_view *v = ctx;
    uint8_t *p = host_of(v->s, pa, len);
    if (p)
        memcpy(p, buf, len);
    if (p && v->s->pool_memory && in_pool(v->s, pa, len))
        memcpy(v->s->pool_memory + (pa - v->s->pool_pa), buf, len);
    return p != NULL;
}

/* The platform's write-back (cache_model): starts it for every line [va, va + len) touches. */
static void start_write_back(void *ctx, const void *va, size_t len)
{
    struct sim *s = ctx;
    const uint8_t *b = va;
    if (b < s->pool_mem || b + len > s->pool_mem + SIM_POOL_BYTES || !len)
        abort(); /* the project writes back nothing but its tables */
    for (size_t line = (size_t)(b - s->pool_mem) / LINE; line <= (size_t)(b + len - 1 - s->pool_mem) / LINE; line++)
        if (!(s->pending[line / 64] >> (line % 64) & 1)) {
            s->pending[line / 64] |= 1ull << (line % 64);
            s->lines_pending++;
        }
}

static void wait_write_back(void *ctx)
{
    struct sim *s = ctx;
    for (size_t w = 0; w < POOL_LINES / 64 && s->lines_pending; w++)
        while (s->pending[w]) {
            size_t line = w * 64 + (size_t)__builtin_ctzll(s->pending[w]);
            memcpy(s->pool_memory + line * LINE, s->pool_mem + line * LINE, LINE);
            s->pending[w] &= s->pending[w] - 1;
            s->lines_pending--;
            s->lines_written_back++;
        }
}

uint64_t sim_lines_pending(const struct sim *s)
{
    return s->lines_pending;
}

uint64_t sim_lines_written_back(const struct sim *s)
{
    return s->lines_written_back;
}

static struct vtd_model *model_at(struct sim *s, uint64_t pa, uint32_t *off)
{
    unsigned u = (unsigned)((pa - SIM_UNIT_BASE) / UNIT_STRIDE);
    if (pa < SIM_UNIT_BASE || u >= s->cfg.units)
        abort(); /* the driver touched an address no unit decodes */
    *off = (uint32_t)(pa - SIM_UNIT_BASE - u * UNIT_STRIDE);
    return s->model[u];
}

static uint32_t rd32(void *ctx, uint64_t pa)
{
    uint32_t off;
    struct vtd_model *m = model_at(ctx, pa, &off);
    return vtd_model_read32(m, off);
}
static uint64_t rd64(void *ctx, uint64_t pa)
{
    uint32_t off;
    struct vtd_model *m = model_at(ctx, pa, &off);
    return vtd_model_read64(m, off);
}
static void wr32(void *ctx, uint64_t pa, uint32_t v)
{
    uint32_t off;
    struct vtd_model *m = model_at(ctx, pa, &off);
    vtd_model_write32(m, off, v);
}
static void wr64(void *ctx, uint64_t pa, uint64_t v)
{
    uint32_t off;
    struct vtd_model *m = model_at(ctx, pa, &off);
    vtd_model_write64(m, off, v);
}
static uint64_t now_ns(void *ctx)
{
    struct sim *s = ctx;
    return __atomic_add_fetch(&s->clock_ns, 1000, __ATOMIC_RELAXED);
}

struct sim_config sim_default_config(void)
{
    struct sim_config c = {.units = 1, .unit = {vtd_model_config_qemu(39)}, .functions = 3, .default_domain = true};
    c.function[0] = (struct sim_function){0, 0, 3, 0, 0};
    c.function[1] = (struct sim_function){0, 0, 4, 0, 0};
    c.function[2] = (struct sim_function){0, 0, 5, 0, -1};
    return c;
}

struct sim *sim_create(const struct sim_config *cfg)
{
    if (!cfg->units || cfg->units > SIM_MAX_UNITS || cfg->functions > SIM_MAX_FUNCTIONS ||
        (cfg->custom_guest_ram && cfg->guest_ram_count > SIM_MAX_GUEST_RAM))
        return NULL;
    struct sim *s = calloc(1, sizeof *s);
    s->cfg = *cfg;
    s->pool_mem = aligned_alloc(PAGE_SIZE, SIM_POOL_BYTES);
    s->ram = aligned_alloc(PAGE_SIZE, (size_t)SIM_RAM_PAGES * PAGE_SIZE);
    memset(s->ram, 0, (size_t)SIM_RAM_PAGES * PAGE_SIZE);
    s->pool_pa = 0x40000000;
    s->plat = (struct platform){.ctx = s, .mmio_read32 = rd32, .mmio_read64 = rd64, .mmio_write32 = wr32,
                                .mmio_write64 = wr64, .now_ns = now_ns};
    if (cfg->cache_model) {
        s->pool_memory = malloc(SIM_POOL_BYTES);
        memset(s->pool_memory, 0xA5, SIM_POOL_BYTES);
        s->plat.flush_cache = start_write_back;
        s->plat.flush_cache_wait = wait_write_back;
    }
    if (!page_pool_init(&s->pool, s->pool_mem, s->pool_pa, SIM_POOL_BYTES))
        abort();
    struct ddi_platform dp = {.pool = &s->pool, .arch = cfg->arm64 ? DDI_ARCH_ARM64 : DDI_ARCH_X64,
                              .unit_count = cfg->units, .pci = &s->inv,
                              .protected_base = s->pool_pa, .protected_size = SIM_POOL_BYTES,
                              .first_domain_id = 2};
    /* Guest RAM is the simulated RAM and nothing else: the pool, the units' registers and
     * every MMIO address of sim.h lie outside it. */
    if (cfg->custom_guest_ram) {
        for (unsigned i = 0; i < cfg->guest_ram_count; i++)
            dp.guest_ram[i] = cfg->guest_ram[i];
        dp.guest_ram_count = cfg->guest_ram_count;
    } else {
        dp.guest_ram[0] = (struct addr_range){SIM_RAM_BASE, SIM_RAM_END};
        dp.guest_ram_count = 1;
    }
    for (unsigned u = 0; u < cfg->units; u++) {
        s->view[u] = (struct unit_view){s, cfg->unit[u].ecap & 1};
        struct vtd_model_memory mem = {.ctx = &s->view[u], .read = mem_read, .write = mem_write};
        s->model[u] = vtd_model_create(&cfg->unit[u], &mem);
        if (!s->model[u] || vtd_unit_init(&s->unit[u], &s->plat, &s->pool, SIM_UNIT_BASE + u * UNIT_STRIDE, 0, u) != IOMMU_OK)
            abort();
        dp.units[u] = &s->unit[u].unit;
    }
    for (unsigned i = 0; i < cfg->functions; i++) {
        const struct sim_function *f = &cfg->function[i];
        s->inv.fn[s->inv.count++] = (struct pci_function){.segment = f->segment, .bus = f->bus, .dev = f->dev,
                                                           .fn = f->fn, .vendor = 0x1234, .device = 0x11e8,
                                                           .unit = f->unit,
                                                           .stream_id = (uint32_t)(f->bus << 8 | f->dev << 3 | f->fn)};
    }
    unsigned levels = iommu_units_common_levels(dp.units, cfg->units);
    if (cfg->default_domain) {
        /* The platform's default domain: RAM one to one, as the loader builds it. */
        if (iommu_units_tables_init(&s->default_tables, &s->pool, dp.units, cfg->units) != IOMMU_OK ||
            slpt_map(&s->default_tables, SIM_RAM_BASE, SIM_RAM_BASE, (uint64_t)SIM_RAM_PAGES * PAGE_SIZE,
                     SLPT_READ | SLPT_WRITE) != IOMMU_OK)
            abort();
        dp.has_default_context = true;
        dp.default_context = (struct iommu_translation){IOMMU_TRANSLATE, 1, s->default_tables.root_pa, levels};
    }
    for (unsigned i = 0; i < cfg->functions; i++) {
        const struct pci_function *f = &s->inv.fn[i];
        if (cfg->default_domain && f->unit >= 0 &&
            vtd_set_context(&s->unit[f->unit], pci_sid(f), &dp.default_context) != IOMMU_OK)
            abort();
    }
    for (unsigned u = 0; u < cfg->units; u++)
        if (vtd_unit_enable(&s->unit[u]) != IOMMU_OK)
            abort();
    if (ddi_provider_init(&dp) != IOMMU_OK)
        abort();
    return s;
}

void sim_destroy(struct sim *s)
{
    ddi_provider_reset();
    if (s->cfg.default_domain)
        slpt_destroy(&s->default_tables);
    for (unsigned u = 0; u < s->cfg.units; u++)
        vtd_model_destroy(s->model[u]);
    free(s->pool_mem);
    free(s->pool_memory);
    free(s->ram);
    free(s);
}

void sim_device_object(const struct sim *s, unsigned function, DEVICE_OBJECT *pdo)
{
    const struct sim_function *f = &s->cfg.function[function];
    IommuPciDeviceObject(pdo, f->segment, f->bus, f->dev, f->fn);
}

struct vtd_model_result sim_dma(struct sim *s, unsigned function, uint64_t iova, bool write)
{
    const struct sim_function *f = &s->cfg.function[function];
    if (f->unit < 0)
        return (struct vtd_model_result){.ok = true, .pa = iova};
    uint16_t sid = (uint16_t)(f->bus << 8 | f->dev << 3 | f->fn);
    struct vtd_model_result r = vtd_model_dma(s->model[f->unit], sid, iova, write);
    uint8_t *p = r.ok ? host_of(s, r.pa, 1) : NULL;
    if (p && write)
        *p = 0xa5; /* what the device wrote */
    return r;
}

uint64_t sim_ram_page(const struct sim *s, unsigned n)
{
    (void)s;
    return SIM_RAM_BASE + (uint64_t)n * PAGE_SIZE;
}

uint8_t *sim_ram(struct sim *s, uint64_t pa)
{
    return host_of(s, pa, 1);
}

uint64_t sim_protected_base(const struct sim *s)
{
    return s->pool_pa;
}

uint64_t sim_unit_registers(const struct sim *s, unsigned u)
{
    return s->unit[u].unit.register_base;
}

MDL *sim_mdl(const struct sim *s, const unsigned *pages, unsigned count)
{
    MDL *mdl = calloc(1, sizeof *mdl + count * sizeof(PFN_NUMBER));
    mdl->ByteCount = count * PAGE_SIZE;
    mdl->ByteOffset = 0;
    PFN_NUMBER *pfn = MmGetMdlPfnArray(mdl);
    for (unsigned i = 0; i < count; i++)
        pfn[i] = sim_ram_page(s, pages[i]) >> PAGE_SHIFT;
    return mdl;
}

struct vtd_model *sim_unit_model(struct sim *s, unsigned u)
{
    return s->model[u];
}

struct vtd_unit *sim_unit(struct sim *s, unsigned u)
{
    return &s->unit[u];
}

struct page_pool *sim_pool(struct sim *s)
{
    return &s->pool;
}

/* ---- the hypercall path ---- */

/* Guest memory is the test's own: a guest-physical address is a host address. */
static void guest_read(void *ctx, uint64_t gpa, void *buf, size_t len)
{
    (void)ctx;
    memcpy(buf, (const void *)(uintptr_t)gpa, len);
}

static void guest_write(void *ctx, uint64_t gpa, const void *buf, size_t len)
{
    (void)ctx;
    memcpy((void *)(uintptr_t)gpa, buf, len);
}

static uint64_t hypercall(void *ctx, uint64_t rax, uint64_t rcx, uint64_t rdx)
{
    struct sim *s = ctx;
    __atomic_add_fetch(&s->hypercalls, 1, __ATOMIC_RELAXED); /* from several threads at once */
    return hc_dispatch(rax, rcx, rdx);
}

static uint64_t gpa_of(void *ctx, const void *p)
{
    (void)ctx;
    return (uint64_t)(uintptr_t)p;
}

/* The server's ctx is the sim; the test's host_call gets its own. */
static NTSTATUS host_call(void *ctx, uint32_t call, void *block)
{
    struct sim *s = ctx;
    return s->host_call(s->host_ctx, call, block);
}

/* Which "CPU" a thread is, for the server's per-CPU staging (sim_set_cpu). */
static _Thread_local unsigned thread_cpu;

void sim_set_cpu(unsigned cpu)
{
    thread_cpu = cpu;
}

static unsigned this_cpu(void *ctx)
{
    (void)ctx;
    return thread_cpu;
}

/* The hypercall server over the provider, guest RAM being everything but the first page
 * and the pool (which stands for the hypervisor's own memory). */
static void start_server(struct sim *s, bool allow_injection)
{
    uint64_t pool = (uint64_t)(uintptr_t)s->pool_mem, top = 1ull << 47;
    struct hc_server_config cfg = {.ctx = s, .read = guest_read, .write = guest_write, .ram_count = 2,
                                   .pool = &s->pool, .inject_pool = allow_injection ? &s->pool : NULL,
                                   .host_call = s->host_call ? host_call : NULL, .this_cpu = this_cpu};
    cfg.ram[0] = (struct hc_ram_range){PAGE_SIZE, pool - PAGE_SIZE};
    cfg.ram[1] = (struct hc_ram_range){pool + SIM_POOL_BYTES, top - (pool + SIM_POOL_BYTES)};
    if (hc_server_init(&cfg) != IOMMU_OK)
        abort();
}

void sim_use_hypercalls(struct sim *s)
{
    start_server(s, false);
    struct shim_config shim = {.ctx = s, .hypercall = hypercall, .gpa_of = gpa_of};
    shim_init(&shim);
}

void sim_allow_injection(struct sim *s)
{
    start_server(s, true);
}

void sim_set_host_call(struct sim *s, NTSTATUS (*fn)(void *ctx, uint32_t call, void *block), void *ctx)
{
    s->host_call = fn;
    s->host_ctx = ctx;
    start_server(s, false);
}

uint64_t sim_hypercalls(const struct sim *s)
{
    return s->hypercalls;
}

const void *sim_hypervisor_memory(const struct sim *s)
{
    return s->pool_mem;
}
