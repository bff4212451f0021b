/* The SVM half's preparation and launch (see boot/hypervisor/hv.h): the CPU's checks, the
 * nested page tables, the permission maps, the host's environment, each CPU's VMCB, and
 * VMRUN. Called by the loader (loader/hv_setup.c) before the firmware becomes a guest, but
 * freestanding like the rest of the hypervisor: the loader makes the firmware calls. */
#include "hypervisor/hv.h"

#include "common/cpuid.h"
#include "hypervisor/arch.h"
#include "hypervisor/svm/svm_host.h"
#include "iommu/ranges.h"

#define NPT_MIN_TOP (64ull << 30) /* when the CPU does not say its physical width */
/* The nested tables map the guest's whole physical address space, up to the CPU's
 * physical width: firmware and OS place PCI windows anywhere in it (OVMF puts q35's 64-bit
 * window at 0xE0_0000_0000 with 40 bits). At most 2^46 (64 TiB): 64 Ki entries of 1 GiB,
 * 512 KiB of tables for the nested and as much for the host's, out of the region. */
#define NPT_MAX_BITS 46u
#define APIC_WINDOW_BYTES (1ull << 20) /* the local APIC's window, the MSI address range */

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

static bool svm_supported(bool *one_gib, uint8_t *phys_bits)
{
    uint32_t r[4];
    cpuid(0x80000000u, 0, r);
    if (r[0] < 0x8000000Au)
        return false;
    cpuid(0x80000001u, 0, r);
    bool svm = r[2] & (1u << 2);
    *one_gib = r[3] & (1u << 26);
    cpuid(0x80000008u, 0, r);
    *phys_bits = (uint8_t)r[0];
    cpuid(0x8000000Au, 0, r);
    return svm && (r[3] & 1) && r[1] >= 2; /* nested paging, and an ASID besides 0 */
}

/* The guest's physical address space, one to one, without the hypervisor's region and the
 * IOMMU's registers. */
static bool build_npt(struct hv *hv, struct remapping *r, const struct dmar_table *dmar, uint64_t top,
                      uint64_t image_base, uint64_t image_end, struct checks *c)
{
    unsigned bits = hv->arch.phys_bits; /* svm_supported read it */
    uint64_t space = bits ? 1ull << (bits < NPT_MAX_BITS ? bits : NPT_MAX_BITS) : NPT_MIN_TOP;
    hv->npt_top = top > space ? (top + (1ull << 30) - 1) & ~((1ull << 30) - 1) : space;
    static struct addr_range ranges[2 * REMAP_MAX_UNITS + MADT_MAX_IOAPICS + 8];
    unsigned n = 1, cap = 2 * REMAP_MAX_UNITS + MADT_MAX_IOAPICS + 8;
    ranges[0] = (struct addr_range){0, hv->npt_top};
    n = ranges_remove(ranges, n, cap, r->region_pa, r->region_pa + r->region_bytes);
    /* The loader image is the hypervisor's code and data: the guest never runs it again. */
    n = ranges_remove(ranges, n, cap, image_base, image_end);
    /* The local APIC: every guest access to it is emulated (INIT and SIPI must not reach a
     * CPU that runs as a guest: boot/hypervisor/svm/vmexit.h). */
    /* QEMU's APIC answers the whole 1 MiB from there, and takes a CPU's write past the
     * register page as an interrupt message of the guest's own making (INIT included): all
     * of it is out, and only the register page is emulated. */
    n = ranges_remove(ranges, n, cap, hv->arch.apic_base, hv->arch.apic_base + APIC_WINDOW_BYTES);
    /* The I/O APICs: emulated, so that no redirection entry sends SMI or INIT (QEMU's
     * interrupt remapping lets compatibility-format messages through: docs/security.md). */
    for (unsigned i = 0; i < hv->arch.ioapics.count; i++)
        n = ranges_remove(ranges, n, cap, hv->arch.ioapics.base[i], hv->arch.ioapics.base[i] + PAGE_SIZE);
    /* The chipset functions' configuration pages: read-only, their writes emulated. */
    unsigned config_pages = 0;
    for (uint32_t i = 0; hv->pci && i < hv->pci->count; i++) {
        const struct pci_function *f = &hv->pci->fn[i];
        if (svm_chipset_function(f->bus, f->dev, f->fn)) {
            n = ranges_remove(ranges, n, cap, f->config_pa, f->config_pa + PAGE_SIZE);
            config_pages++;
        }
    }
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
                                                                           (hv->arch.one_gib_pages ? SLPT_SUPERPAGE_1G : 0))
                                    : IOMMU_ERANGE;
    if (st == IOMMU_OK)
        st = slpt_set_format(&hv->npt, &pt_amd_nested);
    if (st == IOMMU_OK)
        st = ranges_identity_map(&hv->npt, ranges, n, SLPT_READ | SLPT_WRITE);
    for (uint32_t i = 0; st == IOMMU_OK && hv->pci && i < hv->pci->count; i++) {
        const struct pci_function *f = &hv->pci->fn[i];
        if (svm_chipset_function(f->bus, f->dev, f->fn))
            st = slpt_map(&hv->npt, f->config_pa, f->config_pa, PAGE_SIZE, SLPT_READ);
    }
    return checkf(c, st == IOMMU_OK,
                  "nested page tables: [0, %lu GiB) (%u-bit physical addresses) in %u pages, less the region and %u "
                  "IOMMU register ranges; %u chipset config pages read-only (%s)",
                  hv->npt_top >> 30, bits, hv->npt.table_pages, holes, config_pages, iommu_status_name(st));
}

static const char *const refusal_names[] = {
    [HV_REFUSED_MSR_READ] = "rdmsr", [HV_REFUSED_MSR_WRITE] = "wrmsr", [HV_REFUSED_PORT_IN] = "in from port",
    [HV_REFUSED_PORT_OUT] = "out to port", [HV_REFUSED_STRING_IO] = "string I/O at port",
    [HV_REFUSED_APIC_ICR] = "APIC ICR delivery mode", [HV_REFUSED_APIC_REGISTER] = "APIC register",
    [HV_REFUSED_PCI_CONFIG] = "PCI configuration write", [HV_REFUSED_SLEEP] = "sleep state",
    [HV_REFUSED_IOAPIC_RTE] = "I/O APIC register",
};

const char *hv_arch_refusal_name(unsigned kind)
{
    return kind < sizeof refusal_names / sizeof refusal_names[0] && refusal_names[kind] ? refusal_names[kind]
                                                                                         : "access";
}

void hv_arch_relax(void)
{
    __asm__ volatile("pause");
}

/* A random 64-bit value: RDRAND where the CPU has it, else the TSC stirred. */
uint64_t hv_arch_random64(void)
{
    uint32_t r[4];
    cpuid(1, 0, r);
    uint64_t v = 0;
    unsigned char ok = 0;
    for (unsigned i = 0; i < 10 && !ok && (r[2] & (1u << 30)); i++)
        __asm__ volatile("rdrand %0; setc %1" : "=r"(v), "=qm"(ok));
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    uint64_t z = v ^ ((uint64_t)hi << 32 | lo) ^ 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ---- preparing ---- */

/* The platform's interrupt messages go through VT-d's interrupt remapping: on every unit,
 * no entry present, compatibility format blocked (docs/security.md). */
static void enable_interrupt_remapping(struct hv *hv, struct checks *c)
{
    struct remapping *r = hv->remap;
    for (unsigned i = 0; i < r->units; i++) {
        enum iommu_status st = vtd_enable_interrupt_remapping(&r->unit[i]);
        checkf(c, st == IOMMU_OK,
               "vtd[%u]: interrupt remapping on, no entry present, compatibility format blocked (%s)", i,
               iommu_status_name(st));
    }
}


bool hv_arch_prepare(struct hv *hv, const struct hv_setup *s, struct checks *c)
{
    struct remapping *r = s->remap;
    if (!check(c, svm_supported(&hv->arch.one_gib_pages, &hv->arch.phys_bits), "CPU has SVM with nested paging and ASIDs"))
        return false;
    uint64_t apic = rdmsr(MSR_APIC_BASE);
    hv->arch.apic_base = apic & 0x000FFFFFFFFFF000ull;
    if (!checkf(c, (apic & (1u << 11)) && !(apic & (1u << 10)), "local APIC enabled in xAPIC mode at 0x%lx",
                hv->arch.apic_base))
        return false;
    hv->arch.pm_base = s->pm_base;
    hv->arch.ioapics = *s->ioapics;
    for (unsigned i = 0; i < s->ioapics->count; i++)
        hv->arch.ioapic_select[i] = *(volatile uint32_t *)(uintptr_t)s->ioapics->base[i] & 0xFF;
    svm_host_configure(hv, apic & ~(1ull << 8)); /* without the BSP bit, which differs per CPU */
    if (!hv_start_ddi(s, c) || !build_npt(hv, r, s->dmar, s->top, s->image_base, s->image_end, c))
        return false;
    hv->arch.msrpm = hv_region_pages(r, MSRPM_BYTES / PAGE_SIZE, &hv->arch.msrpm_pa);
    hv->arch.iopm = hv_region_pages(r, IOPM_BYTES / PAGE_SIZE, &hv->arch.iopm_pa);
    if (!check(c, hv->arch.msrpm && hv->arch.iopm, "MSR and I/O permission maps in the reserved region"))
        return false;
    hv_msrpm_build(hv->arch.msrpm);        /* every MSR exits but a listed few (docs/security.md) */
    hv_iopm_build(hv->arch.iopm, s->pm_base); /* the chipset's sensitive ports exit */
    if (!checkf(c, s->pm_base != 0, "chipset PM block at port 0x%x: its SMI and sleep controls are the hypervisor's",
                s->pm_base) ||
        !checkf(c, s->ioapics->count > 0, "%u I/O APIC(s), the first at 0x%lx, emulated for the guest",
                s->ioapics->count, s->ioapics->count ? s->ioapics->base[0] : 0) ||
        !hv_prepare_audit(hv, c))
        return false;
    if (!checkf(c, host_env_prepare(&r->pool, hv->npt_top, hv->arch.one_gib_pages, (uint16_t)(s->pm_base + 4)),
                "host page tables ([0, %lu GiB) for the host alone), GDT, TSS and IDT in the reserved region",
                hv->npt_top >> 30))
        return false;
    enable_interrupt_remapping(hv, c);
    return true;
}

bool hv_arch_prepare_cpu(struct hv *hv, struct hv_cpu *cpu, struct checks *c)
{
    struct remapping *r = hv->remap;
    uint64_t stack_pa, ist_pa;
    cpu->arch.vmcb = hv_region_pages(r, 1, &cpu->arch.vmcb_pa);
    uint8_t *hsave = hv_region_pages(r, 1, &cpu->arch.hsave_pa);
    uint8_t *stack = hv_region_pages(r, HV_STACK_PAGES, &stack_pa);
    uint8_t *host_state = hv_region_pages(r, 1, &cpu->arch.host_state_pa), *ist = hv_region_pages(r, 1, &ist_pa);
    if (!checkf(c, cpu->arch.vmcb && hsave && stack && host_state && ist, "cpu %u: VMCB, host-save area, host state, stacks",
                cpu->index))
        return false;
    cpu->arch.stack_top = stack + HV_STACK_PAGES * PAGE_SIZE;
    host_env_cpu_init(&cpu->arch.env, ist + PAGE_SIZE, cpu->arch.host_state_pa);
    return true;
}

/* ---- launching ---- */

#define READ_SEG(name, var) __asm__ volatile("mov %%" name ", %0" : "=r"(var))

/* This CPU's VMCB from its state now, all but RIP, RSP, RFLAGS and RAX (hv_entry.S sets
 * those where the guest resumes). */
static void setup_this_cpu(struct hv *hv, struct hv_cpu *cpu)
{
    struct vmcb *v = cpu->arch.vmcb;
    wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SVME);
    wrmsr(MSR_VM_HSAVE_PA, cpu->arch.hsave_pa);

    /* SMI and INIT must never be taken in guest mode (docs/security.md): intercepted, they
     * stop the machine instead. NMIs are the guest's own and are not intercepted. */
    /* NMI: another CPU's kick (an emulated SIPI for this one) comes as an NMI. HLT and
     * MWAIT are not intercepted: an idle guest CPU really waits, and a kick wakes it. */
    v->control.intercept_misc1 = SVM_INTERCEPT1_CPUID | SVM_INTERCEPT1_MSR | SVM_INTERCEPT1_IOIO |
                                 SVM_INTERCEPT1_NMI | SVM_INTERCEPT1_SMI | SVM_INTERCEPT1_INIT |
                                 SVM_INTERCEPT1_SHUTDOWN;
    v->control.intercept_misc2 = SVM_INTERCEPT2_VMRUN | SVM_INTERCEPT2_VMMCALL | SVM_INTERCEPT2_VMLOAD |
                                 SVM_INTERCEPT2_VMSAVE | SVM_INTERCEPT2_STGI | SVM_INTERCEPT2_CLGI |
                                 SVM_INTERCEPT2_SKINIT;
    v->control.msrpm_base_pa = hv->arch.msrpm_pa;
    v->control.iopm_base_pa = hv->arch.iopm_pa;
    v->control.asid = 1;
    v->control.tlb_control = 1; /* flush everything at each VMRUN: edits to the tables show */
    v->control.np_enable = 1;
    v->control.n_cr3 = hv->npt.root_pa;

    struct x86_descriptor_pointer gdt, idt;
    __asm__ volatile("sgdt %0" : "=m"(gdt));
    __asm__ volatile("sidt %0" : "=m"(idt));
    uint16_t cs, ss, ds, es, fs, gs;
    READ_SEG("cs", cs);
    READ_SEG("ss", ss);
    READ_SEG("ds", ds);
    READ_SEG("es", es);
    READ_SEG("fs", fs);
    READ_SEG("gs", gs);
    svm_segment_from_gdt(&v->save.cs, cs, &gdt);
    svm_segment_from_gdt(&v->save.ss, ss, &gdt);
    svm_segment_from_gdt(&v->save.ds, ds, &gdt);
    svm_segment_from_gdt(&v->save.es, es, &gdt);
    v->save.gdtr.base = gdt.base, v->save.gdtr.limit = gdt.limit;
    v->save.idtr.base = idt.base, v->save.idtr.limit = idt.limit;
    uint64_t cr0, cr3, cr4;
    __asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
    __asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
    __asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
    v->save.cr0 = cr0, v->save.cr3 = cr3, v->save.cr4 = cr4;
    v->save.efer = rdmsr(MSR_EFER);
    cpu->vcpu.guest_efer = v->save.efer & ~EFER_SVME;
    v->save.g_pat = rdmsr(MSR_PAT);
    v->save.dr7 = 0x400, v->save.dr6 = 0xFFFF0FF0;
    v->save.cpl = 0;
    /* FS, GS, TR, LDTR and the syscall MSRs: what VMLOAD gives the guest, as they are now. */
    (void)fs;
    (void)gs;
    __asm__ volatile("vmsave %%rax" : : "a"(cpu->arch.vmcb_pa) : "memory");
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

