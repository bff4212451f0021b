/* See boot/hv.h. Runs in the loader before launch (UEFI boot services available) and, from
 * hv_exit on, as the host (no firmware calls: only the reserved region, the loader image,
 * the serial port and the IOMMU). */
#include "hv.h"

#include <efilib.h>

#include "ddi/hc_server.h"
#include "ddi/provider.h"
#include "mp_services.h"
#include "iommu/ranges.h"

#define MAX_RANGES 512
#define NPT_MIN_TOP (64ull << 30) /* covers q35's 32-bit and 64-bit PCI windows */
#define NPT_USER 0x4ull           /* every nested entry: the walk is a user access */

static inline void cpuid(uint32_t leaf, uint32_t subleaf, uint32_t r[4])
{
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(subleaf));
}

static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return (uint64_t)hi << 32 | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

/* ---- the host's side of the exit handler ---- */

static struct hv *the_hv;

static uint64_t host_hypercall(void *ctx, uint64_t rax, uint64_t rcx, uint64_t rdx)
{
    (void)ctx;
    return hc_dispatch(rax, rcx, rdx);
}

static void host_cpuid(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t out[4])
{
    (void)ctx;
    cpuid(leaf, subleaf, out);
}

static void host_collect_faults(void *ctx)
{
    (void)ctx;
    hc_collect_faults();
}

/* ---- the local APIC, which the guest reaches only through the exit handler ---- */

static uint32_t host_apic_read(void *ctx, uint32_t offset)
{
    (void)ctx;
    return *(volatile uint32_t *)(uintptr_t)(the_hv->apic_base + offset);
}

static void host_apic_write(void *ctx, uint32_t offset, uint32_t value)
{
    (void)ctx;
    *(volatile uint32_t *)(uintptr_t)(the_hv->apic_base + offset) = value;
}

/* Guest-physical pages the host will read for the guest: not the hypervisor's own. */
static bool guest_page_ok(uint64_t pa)
{
    return pa < the_hv->region_pa || pa >= the_hv->region_pa + the_hv->region_bytes;
}

static bool host_fetch(void *ctx, const struct vmcb *vmcb, uint64_t linear, uint8_t *buf, unsigned len)
{
    (void)ctx;
    for (unsigned i = 0; i < len; i++) {
        uint64_t va = linear + i, pa = va;
        if (vmcb->save.cr0 & (1u << 31)) { /* paging: the guest's 4-level tables */
            uint64_t table = vmcb->save.cr3 & 0x000FFFFFFFFFF000ull, e = 0;
            for (int level = 4; level >= 1; level--) {
                uint64_t at = table + ((va >> (12 + 9 * (level - 1))) & 511) * 8;
                if (!guest_page_ok(at))
                    return false;
                e = *(const volatile uint64_t *)(uintptr_t)at;
                if (!(e & 1))
                    return false;
                if (level == 1 || (level <= 3 && (e & 0x80))) {
                    uint64_t span = 1ull << (12 + 9 * (level - 1));
                    pa = (e & 0x000FFFFFFFFFF000ull & ~(span - 1)) | (va & (span - 1));
                    break;
                }
                table = e & 0x000FFFFFFFFFF000ull;
            }
        }
        if (!guest_page_ok(pa))
            return false;
        buf[i] = *(const volatile uint8_t *)(uintptr_t)pa;
    }
    return true;
}

/* An INIT or SIPI the guest sent: the target CPUs are guests, and a real INIT would take
 * them out of guest mode (QEMU's TCG cannot intercept it), so it is emulated. INIT marks
 * them; a SIPI after it is left for them, and an NMI makes them exit and take it. */
static void host_init_sipi(void *ctx, uint32_t icr_low, uint32_t icr_high)
{
    (void)ctx;
    unsigned mode = (icr_low >> 8) & 7, shorthand = (icr_low >> 18) & 3;
    uint32_t dest = icr_high >> 24, self = (uint32_t)(host_apic_read(NULL, 0x20) >> 24);
    bool assert_level = icr_low & (1u << 14);
    for (unsigned i = 0; i < the_hv->cpus; i++) {
        struct hv_cpu *cpu = &the_hv->cpu[i];
        bool named = shorthand == 0 ? (dest == 0xFF || dest == cpu->apic_id)
                   : shorthand == 1 ? cpu->apic_id == self
                   : shorthand == 2 ? true
                                    : cpu->apic_id != self;
        if (!named || cpu->apic_id == self || !cpu->launched)
            continue;
        if (mode == 5 && assert_level) {
            cpu->vcpu.init_pending = true;
        } else if (mode == 6 && cpu->vcpu.init_pending) {
            cpu->vcpu.sipi_vector = (uint8_t)icr_low;
            cpu->vcpu.init_pending = false;
            __atomic_store_n(&cpu->vcpu.sipi_pending, true, __ATOMIC_RELEASE); /* its HLT exit takes it */
        }
    }
}

/* An AP parked in the firmware's HLT loop waits here, on its host, for an emulated SIPI:
 * up to a millisecond at a time, then back to the guest's HLT (and here again). */
static bool host_wait_for_sipi(void *ctx, struct hv_vcpu *v)
{
    (void)ctx;
    uint64_t start = the_hv->plat->now_ns(the_hv->plat->ctx), spins = 0;
    while (!__atomic_load_n(&v->sipi_pending, __ATOMIC_ACQUIRE)) {
        __asm__ volatile("pause");
        if (++spins % 1024 == 0 && the_hv->plat->now_ns(the_hv->plat->ctx) - start > 1000000)
            return false;
    }
    return true;
}

static struct hv_exit_ops host_ops = {.hypercall = host_hypercall, .cpuid = host_cpuid,
                                      .collect_faults = host_collect_faults, .apic_read = host_apic_read,
                                      .apic_write = host_apic_write, .fetch = host_fetch,
                                      .init_sipi = host_init_sipi, .wait_for_sipi = host_wait_for_sipi};

int hv_exit(struct hv_cpu *cpu, struct guest_regs *regs)
{
    uint64_t npf_before = cpu->vcpu.npf_count, sipis = cpu->vcpu.sipis;
    enum hv_exit_result r = hv_handle_exit(cpu->vmcb, regs, &cpu->vcpu, &host_ops);
    if (cpu->vcpu.npf_count != npf_before)
        sink_printf(out, "hv: cpu %u: guest access to 0x%lx (error code 0x%lx) at rip 0x%lx refused: #GP\n",
                    cpu->index, cpu->vcpu.npf_gpa, cpu->vcpu.npf_info, cpu->vcpu.npf_rip);
    if (cpu->vcpu.sipis != sipis)
        sink_printf(out, "hv: cpu %u: emulated INIT-SIPI, starts as a guest at %04x:0000\n", cpu->index,
                    cpu->vmcb->save.cs.selector);
    if (r == HV_STOP)
        sink_printf(out, "hv: cpu %u: guest stopped by exit 0x%lx at rip 0x%lx\n", cpu->index,
                    cpu->vcpu.stop_code, cpu->vmcb->save.rip);
    return r == HV_STOP;
}

/* ---- preparing ---- */

static bool svm_supported(bool *one_gib)
{
    uint32_t r[4];
    cpuid(0x80000000u, 0, r);
    if (r[0] < 0x8000000Au)
        return false;
    cpuid(0x80000001u, 0, r);
    bool svm = r[2] & (1u << 2);
    *one_gib = r[3] & (1u << 26);
    cpuid(0x8000000Au, 0, r);
    return svm && (r[3] & 1) && r[1] >= 2; /* nested paging, and an ASID besides 0 */
}

static bool is_ram(UINT32 type)
{
    return type == EfiLoaderCode || type == EfiLoaderData || type == EfiBootServicesCode ||
           type == EfiBootServicesData || type == EfiRuntimeServicesCode || type == EfiRuntimeServicesData ||
           type == EfiConventionalMemory || type == EfiACPIReclaimMemory || type == EfiACPIMemoryNVS;
}

/* Guest RAM for the hypercall server: the memory map's RAM without the hypervisor's (the
 * reserved region and the loader image). */
static void guest_ram(struct hc_server_config *cfg, const struct remapping *r, uint64_t image_base,
                      uint64_t image_end, uint64_t *top)
{
    static struct addr_range ranges[MAX_RANGES + 1];
    unsigned n = 0;
    UINTN entries, key, size;
    UINT32 version;
    EFI_MEMORY_DESCRIPTOR *map = LibMemoryMap(&entries, &key, &size, &version);
    *top = 0;
    for (UINTN i = 0; map && i < entries; i++) {
        const EFI_MEMORY_DESCRIPTOR *d = (const EFI_MEMORY_DESCRIPTOR *)((const UINT8 *)map + i * size);
        uint64_t end = d->PhysicalStart + d->NumberOfPages * PAGE_SIZE;
        if (end > *top)
            *top = end;
        if (is_ram(d->Type) && n < MAX_RANGES)
            ranges[n++] = (struct addr_range){d->PhysicalStart, end};
    }
    if (map)
        FreePool(map);
    n = ranges_merge(ranges, n);
    n = ranges_remove(ranges, n, MAX_RANGES + 1, r->region_pa, r->region_pa + r->region_bytes);
    n = ranges_remove(ranges, n, MAX_RANGES + 1, image_base, image_end);
    cfg->ram_count = 0;
    for (unsigned i = 0; i < n && i < MAX_RANGES && cfg->ram_count < HC_MAX_RAM_RANGES; i++)
        cfg->ram[cfg->ram_count++] = (struct hc_ram_range){ranges[i].base, ranges[i].end - ranges[i].base};
}

static void guest_read(void *ctx, uint64_t gpa, void *buf, size_t len)
{
    (void)ctx;
    __builtin_memcpy(buf, (const void *)(uintptr_t)gpa, len);
}

static void guest_write(void *ctx, uint64_t gpa, const void *buf, size_t len)
{
    (void)ctx;
    __builtin_memcpy((void *)(uintptr_t)gpa, buf, len);
}

/* Every DMA fault the host collects goes to the console, reported to the guest or not. */
static void log_fault(void *ctx, const struct vtd_unit *unit, const struct vtd_fault *fault)
{
    (void)ctx;
    remap_print_fault(unit, fault);
}

static bool start_ddi(struct remapping *r, const struct pci_inventory *inv, struct hc_server_config *cfg,
                      struct checks *c)
{
    struct ddi_platform p = {.pool = &r->pool, .unit_count = r->units, .pci = inv, .protected_base = r->region_pa,
                             .protected_size = r->region_bytes, .has_default_context = true,
                             .default_context = {VTD_TRANSLATE, DEFAULT_DOMAIN_ID, r->default_domain.root_pa, r->levels},
                             .first_domain_id = DEFAULT_DOMAIN_ID + 1, .fault_seen = log_fault};
    for (unsigned i = 0; i < r->units; i++)
        p.units[i] = &r->unit[i];
    enum iommu_status st = ddi_provider_init(&p);
    if (!checkf(c, st == IOMMU_OK, "DDI provider over %u units (%s)", r->units, iommu_status_name(st)))
        return false;
    cfg->read = guest_read;
    cfg->write = guest_write;
    cfg->pool = &r->pool;
    st = hc_server_init(cfg);
    return checkf(c, st == IOMMU_OK, "hypercall server: %u guest RAM ranges (%s)", cfg->ram_count, iommu_status_name(st));
}

/* The guest's physical address space, one to one, without the hypervisor's region and the
 * IOMMU's registers. */
static bool build_npt(struct hv *hv, struct remapping *r, const struct dmar_table *dmar, uint64_t top,
                      uint64_t image_base, uint64_t image_end, struct checks *c)
{
    hv->npt_top = top > NPT_MIN_TOP ? (top + (1ull << 30) - 1) & ~((1ull << 30) - 1) : NPT_MIN_TOP;
    static struct addr_range ranges[2 * REMAP_MAX_UNITS + 2];
    unsigned n = 1, cap = 2 * REMAP_MAX_UNITS + 2;
    ranges[0] = (struct addr_range){0, hv->npt_top};
    n = ranges_remove(ranges, n, cap, r->region_pa, r->region_pa + r->region_bytes);
    /* The loader image is the hypervisor's code and data: the guest never runs it again. */
    n = ranges_remove(ranges, n, cap, image_base, image_end);
    /* The local APIC: every guest access to it is emulated (INIT and SIPI must not reach a
     * CPU that runs as a guest: boot/vmexit.h). */
    n = ranges_remove(ranges, n, cap, hv->apic_base, hv->apic_base + PAGE_SIZE);
    struct dmar_struct s;
    unsigned holes = 0;
    for (uint32_t cur = 0; dmar_next_struct(dmar, &cur, &s) && n <= cap;) {
        if (s.type != DMAR_TYPE_DRHD)
            continue;
        uint64_t bytes = (uint64_t)PAGE_SIZE << s.size; /* 2^size pages */
        n = ranges_remove(ranges, n, cap, s.register_base, s.register_base + bytes);
        holes++;
    }
    enum iommu_status st = n <= cap ? slpt_init(&hv->npt, &r->pool, 4, SLPT_SUPERPAGE_2M |
                                                                           (hv->one_gib_pages ? SLPT_SUPERPAGE_1G : 0))
                                    : IOMMU_ERANGE;
    if (st == IOMMU_OK) {
        hv->npt.entry_bits = NPT_USER;
        st = ranges_identity_map(&hv->npt, ranges, n, SLPT_READ | SLPT_WRITE);
    }
    return checkf(c, st == IOMMU_OK,
                  "nested page tables: [0, %lu GiB) one to one in %u pages, without the reserved region, the "
                  "loader image and %u IOMMU register ranges (%s)",
                  hv->npt_top >> 30, hv->npt.table_pages, holes, iommu_status_name(st));
}

static void *region_pages(struct remapping *r, unsigned pages, uint64_t *pa)
{
    /* The pool hands out single pages; these are taken at start-up, in order, so a run of
     * them is contiguous (checked). */
    uint64_t first = 0, got;
    void *va = NULL;
    for (unsigned i = 0; i < pages; i++) {
        void *p = page_pool_alloc(&r->pool, &got);
        if (!p || (i && got != first + (uint64_t)i * PAGE_SIZE))
            return NULL;
        if (!i) {
            first = got;
            va = p;
        }
    }
    *pa = first;
    return va;
}

bool hv_prepare(struct hv *hv, struct uefi_platform *up, struct remapping *r, const struct pci_inventory *inv,
                const struct dmar_table *dmar, const void *image_base, uint64_t image_bytes, bool fault_injection,
                struct checks *c)
{
    if (!check(c, svm_supported(&hv->one_gib_pages), "CPU has SVM with nested paging and ASIDs"))
        return false;
    uint64_t apic = rdmsr(0x1B); /* IA32_APIC_BASE */
    hv->apic_base = apic & 0x000FFFFFFFFFF000ull;
    if (!checkf(c, (apic & (1u << 11)) && !(apic & (1u << 10)), "local APIC enabled in xAPIC mode at 0x%lx",
                hv->apic_base))
        return false;
    hv->region_pa = r->region_pa, hv->region_bytes = r->region_bytes;
    hv->plat = &up->ops;
    host_ops.apic_base = hv->apic_base;
    host_ops.apic_base_msr = apic & ~(1ull << 8); /* without the BSP bit, which differs per CPU */
    static struct hc_server_config cfg;
    uint64_t top, image = (uint64_t)(uintptr_t)image_base & ~(uint64_t)(PAGE_SIZE - 1);
    uint64_t image_end = ((uint64_t)(uintptr_t)image_base + image_bytes + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1);
    guest_ram(&cfg, r, image, image_end, &top);
    cfg.inject_pool = fault_injection ? &r->pool : NULL;
    if (fault_injection)
        sink_printf(out, "hv: fault injection on: the guest may make the hypervisor fail (HC_INJECT)\n");
    if (!start_ddi(r, inv, &cfg, c) || !build_npt(hv, r, dmar, top, image, image_end, c))
        return false;
    hv->msrpm = region_pages(r, MSRPM_BYTES / PAGE_SIZE, &hv->msrpm_pa);
    if (!check(c, hv->msrpm != NULL, "MSR permission map in the reserved region"))
        return false;
    /* EFER (0xC0000080): second block at 0x800, two bits per MSR, read then write. */
    hv->msrpm[0x800 + (0x80 * 2) / 8] |= 0x3 << ((0x80 * 2) % 8);
    /* IA32_APIC_BASE (0x1B), first block: writes only (reads show the real value). */
    hv->msrpm[(0x1B * 2) / 8] |= 0x2 << ((0x1B * 2) % 8);
    /* Every logical CPU the firmware knows (one when it has no MP services). */
    EFI_GUID mp_guid = MP_SERVICES_PROTOCOL_GUID;
    struct mp_services_protocol *mp = NULL;
    UINTN total = 1, enabled = 1;
    if (EFI_ERROR(uefi_call_wrapper(BS->LocateProtocol, 3, &mp_guid, NULL, (void **)&mp)) ||
        EFI_ERROR(mp->get_number_of_processors(mp, &total, &enabled)))
        mp = NULL, total = enabled = 1;
    if (!checkf(c, total <= HV_MAX_CPUS && enabled == total, "%lu logical CPUs, all enabled", (uint64_t)total))
        return false;
    hv->cpus = (unsigned)total;
    hv->mp = mp;
    for (unsigned i = 0; i < hv->cpus; i++) {
        struct hv_cpu *cpu = &hv->cpu[i];
        uint64_t stack_pa;
        cpu->index = i;
        struct mp_processor_information info = {0};
        if (mp && !EFI_ERROR(mp->get_processor_info(mp, i, &info)))
            cpu->apic_id = (uint32_t)info.processor_id;
        cpu->vmcb = region_pages(r, 1, &cpu->vmcb_pa);
        uint8_t *hsave = region_pages(r, 1, &cpu->hsave_pa);
        uint8_t *stack = region_pages(r, HV_STACK_PAGES, &stack_pa);
        if (!checkf(c, cpu->vmcb && hsave && stack, "cpu %u: VMCB, host-save area and stack", i))
            return false;
        cpu->stack_top = stack + HV_STACK_PAGES * PAGE_SIZE;
    }
    the_hv = hv;
    return true;
}

/* ---- launching ---- */

struct descriptor_table {
    uint16_t limit;
    uint64_t base;
} __attribute__((packed));

/* A segment register as the VMCB holds it, from the live GDT. */
static void segment_from_gdt(struct vmcb_segment *s, uint16_t selector, const struct descriptor_table *gdt)
{
    s->selector = selector;
    if (!(selector & ~7u) || (selector | 7u) > gdt->limit) {
        s->attrib = 0, s->limit = 0, s->base = 0;
        return;
    }
    uint64_t d = *(const uint64_t *)(uintptr_t)(gdt->base + (selector & ~7u));
    s->attrib = (uint16_t)(((d >> 40) & 0xFF) | ((d >> 52) & 0xF) << 8);
    uint32_t limit = (uint32_t)((d & 0xFFFF) | ((d >> 48) & 0xF) << 16);
    s->limit = (d & (1ull << 55)) ? limit << 12 | 0xFFF : limit;
    s->base = (uint32_t)(((d >> 16) & 0xFFFFFF) | ((d >> 56) & 0xFF) << 24);
}

#define READ_SEG(name, var) __asm__ volatile("mov %%" name ", %0" : "=r"(var))

/* This CPU's VMCB from its state now, all but RIP, RSP, RFLAGS and RAX (hv_entry.S sets
 * those where the guest resumes). */
static void setup_this_cpu(struct hv *hv, struct hv_cpu *cpu)
{
    struct vmcb *v = cpu->vmcb;
    wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SVME);
    wrmsr(MSR_VM_HSAVE_PA, cpu->hsave_pa);

    v->control.intercept_misc1 = SVM_INTERCEPT1_CPUID | SVM_INTERCEPT1_MSR | SVM_INTERCEPT1_SHUTDOWN |
                                 (cpu->index ? SVM_INTERCEPT1_HLT : 0); /* APs wait there for a SIPI */
    v->control.intercept_misc2 = SVM_INTERCEPT2_VMRUN | SVM_INTERCEPT2_VMMCALL | SVM_INTERCEPT2_VMLOAD |
                                 SVM_INTERCEPT2_VMSAVE | SVM_INTERCEPT2_STGI | SVM_INTERCEPT2_CLGI |
                                 SVM_INTERCEPT2_SKINIT;
    v->control.msrpm_base_pa = hv->msrpm_pa;
    v->control.asid = 1;
    v->control.tlb_control = 1; /* flush everything at each VMRUN: edits to the tables show */
    v->control.np_enable = 1;
    v->control.n_cr3 = hv->npt.root_pa;

    struct descriptor_table gdt, idt;
    __asm__ volatile("sgdt %0" : "=m"(gdt));
    __asm__ volatile("sidt %0" : "=m"(idt));
    uint16_t cs, ss, ds, es, fs, gs;
    READ_SEG("cs", cs);
    READ_SEG("ss", ss);
    READ_SEG("ds", ds);
    READ_SEG("es", es);
    READ_SEG("fs", fs);
    READ_SEG("gs", gs);
    segment_from_gdt(&v->save.cs, cs, &gdt);
    segment_from_gdt(&v->save.ss, ss, &gdt);
    segment_from_gdt(&v->save.ds, ds, &gdt);
    segment_from_gdt(&v->save.es, es, &gdt);
    v->save.gdtr.base = gdt.base, v->save.gdtr.limit = gdt.limit;
    v->save.idtr.base = idt.base, v->save.idtr.limit = idt.limit;
    uint64_t cr0, cr3, cr4;
    __asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
    __asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
    __asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
    v->save.cr0 = cr0, v->save.cr3 = cr3, v->save.cr4 = cr4;
    v->save.efer = rdmsr(MSR_EFER);
    cpu->vcpu.guest_efer = v->save.efer & ~EFER_SVME;
    v->save.g_pat = rdmsr(0x277);
    v->save.dr7 = 0x400, v->save.dr6 = 0xFFFF0FF0;
    v->save.cpl = 0;
    /* FS, GS, TR, LDTR and the syscall MSRs: what VMLOAD gives the guest, as they are now. */
    (void)fs;
    (void)gs;
    __asm__ volatile("vmsave %%rax" : : "a"(cpu->vmcb_pa) : "memory");
    cpu->launched = true;
}

void hv_launch_this_cpu(struct hv *hv, unsigned index, uint64_t resume)
{
    setup_this_cpu(hv, &hv->cpu[index]);
    hv_enter(&hv->cpu[index], resume);
}

struct hv_cpu *hv_prepare_this_ap(struct hv *hv)
{
    uint32_t r[4];
    cpuid(1, 0, r);
    uint32_t apic_id = r[1] >> 24;
    for (unsigned i = 1; i < hv->cpus; i++)
        if (hv->cpu[i].apic_id == apic_id && !hv->cpu[i].launched) {
            setup_this_cpu(hv, &hv->cpu[i]);
            return &hv->cpu[i];
        }
    return NULL; /* unknown to the loader: it stays on bare metal, and the check says so */
}

extern void hv_ap_procedure(void *hv);

bool hv_launch_aps(struct hv *hv, uint64_t ap_resume, struct checks *c)
{
    struct mp_services_protocol *mp = hv->mp;
    if (hv->cpus == 1)
        return true;
    for (unsigned i = 1; i < hv->cpus; i++)
        hv->cpu[i].resume = ap_resume;
    /* One at a time; each is back in the firmware's AP loop, as a guest, before the next. */
    EFI_STATUS st = mp->startup_all_aps(mp, (MP_AP_PROCEDURE)hv_ap_procedure, TRUE, NULL, 10 * 1000 * 1000, hv, NULL);
    unsigned launched = 0;
    for (unsigned i = 1; i < hv->cpus; i++)
        launched += hv->cpu[i].launched;
    return checkf(c, !EFI_ERROR(st) && launched == hv->cpus - 1, "%u application processors run as guests (status %lu)",
                  launched, (uint64_t)st);
}
