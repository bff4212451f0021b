/* The exit handler (boot/hypervisor/svm/vmexit.c) on a VMCB in memory: each exit it handles, what the
 * guest sees afterwards (registers, RIP, injected events), and when it stops the guest. */
#include <stdlib.h>
#include <string.h>

#include "ddi/hypercall.h"
#include "test_util.h"
#include "hypervisor/svm/mmio_decode.h"
#include "hypervisor/svm/vmexit.h"


static struct vmcb *vmcb;
static struct guest_regs regs;
static struct hv_vcpu vcpu;
static unsigned collected, hypercalls;
static uint64_t last_rax, last_rcx, last_rdx;

static uint64_t fake_hypercall(void *ctx, uint64_t rax, uint64_t rcx, uint64_t rdx)
{
    (void)ctx;
    hypercalls++;
    last_rax = rax, last_rcx = rcx, last_rdx = rdx;
    return 0xC00000EFu;
}

static void fake_cpuid(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t out[4])
{
    (void)ctx;
    out[0] = leaf ^ 0x1000;
    out[1] = subleaf;
    out[2] = 0xFFFFFFFFu; /* every feature, so the handler's edits show */
    out[3] = 0x12345678;
}

static void fake_collect(void *ctx)
{
    (void)ctx;
    collected++;
}

/* A local APIC of 1 KiB of registers, and guest code at linear 0x1000.. */
#define APIC_BASE 0xFEE00000ull
static uint32_t apic[0x400 / 4];
static uint8_t code[64];
static unsigned init_sipis;
static uint32_t last_icr_low, last_icr_high;

static uint32_t fake_apic_read(void *ctx, uint32_t offset)
{
    (void)ctx;
    return apic[offset / 4];
}

static void fake_apic_write(void *ctx, uint32_t offset, uint32_t value)
{
    (void)ctx;
    apic[offset / 4] = value;
}

static unsigned fake_fetch(void *ctx, const struct vmcb *v, uint64_t linear, uint8_t *buf, unsigned len)
{
    (void)ctx;
    (void)v;
    if (linear < 0x1000 || linear >= 0x1000 + sizeof code)
        return 0;
    unsigned n = (unsigned)(0x1000 + sizeof code - linear);
    n = n < len ? n : len;
    memcpy(buf, code + (linear - 0x1000), n);
    return n;
}

static void fake_init_sipi(void *ctx, uint32_t low, uint32_t high)
{
    (void)ctx;
    init_sipis++;
    last_icr_low = low, last_icr_high = high;
}

/* Ports, PCI configuration and the machine's power, as the host would do them. */
#define PM_BASE 0x600
#define ECAM_HOST_BRIDGE 0xB0000000ull
static unsigned port_ins, port_outs, pci_reads, pci_writes, machine_offs, mmio_writes;
static uint16_t last_port;
static uint32_t last_value, last_pci_address;
static bool last_reset;
static uint64_t last_mmio_pa;

static uint32_t fake_port_in(void *ctx, uint16_t port, unsigned size)
{
    (void)ctx;
    port_ins++;
    last_port = port;
    return 0xA5A5A5A5u >> (32 - 8 * size);
}

static void fake_port_out(void *ctx, uint16_t port, unsigned size, uint32_t value)
{
    (void)ctx;
    (void)size;
    port_outs++;
    last_port = port, last_value = value;
}

static uint32_t fake_pci_read(void *ctx, uint32_t address, unsigned byte, unsigned size)
{
    (void)ctx;
    (void)size;
    pci_reads++;
    last_pci_address = address + byte;
    return 0x12345678u;
}

static void fake_pci_write(void *ctx, uint32_t address, unsigned byte, unsigned size, uint32_t value)
{
    (void)ctx;
    (void)size;
    pci_writes++;
    last_pci_address = address + byte, last_value = value;
}

/* The host bridge (0:0.0) is the chipset's: nothing past its header may be written. */
static bool fake_pci_write_allowed(void *ctx, uint8_t bus, uint8_t dev, uint8_t fn, unsigned reg, unsigned size)
{
    (void)ctx;
    (void)size;
    return !(bus == 0 && dev == 0 && fn == 0 && reg >= 0x40);
}

static void fake_machine_off(void *ctx, struct hv_vcpu *v, bool reset)
{
    (void)ctx;
    (void)v;
    machine_offs++;
    last_reset = reset;
}

static bool fake_config_page(void *ctx, uint64_t gpa, uint8_t *bus, uint8_t *dev, uint8_t *fn)
{
    (void)ctx;
    *bus = *dev = *fn = 0;
    return (gpa & ~0xFFFull) == ECAM_HOST_BRIDGE;
}

static void fake_mmio_write(void *ctx, uint64_t pa, unsigned size, uint64_t value)
{
    (void)ctx;
    (void)size;
    mmio_writes++;
    last_mmio_pa = pa, last_value = (uint32_t)value;
}

/* One I/O APIC at 0xFEC00000: its registers behind IOREGSEL, as the host keeps them. */
#define IOAPIC_BASE 0xFEC00000ull
static uint32_t ioapic_select, ioapic_regs[0x40];

static bool fake_ioapic_page(void *ctx, uint64_t gpa, unsigned *ioapic)
{
    (void)ctx;
    *ioapic = 0;
    return (gpa & ~0xFFFull) == IOAPIC_BASE;
}

static uint32_t fake_ioapic_read(void *ctx, unsigned ioapic, unsigned offset)
{
    (void)ctx;
    (void)ioapic;
    return offset == 0 ? ioapic_select : ioapic_regs[ioapic_select & 0x3F];
}

static bool fake_ioapic_write(void *ctx, unsigned ioapic, unsigned offset, uint32_t value, uint32_t *select)
{
    (void)ctx;
    (void)ioapic;
    *select = ioapic_select;
    if (offset == 0)
        ioapic_select = value;
    else if (hv_ioapic_write_allowed(ioapic_select, value))
        ioapic_regs[ioapic_select & 0x3F] = value;
    else
        return false;
    return true;
}

static const struct hv_exit_ops ops = {.hypercall = fake_hypercall, .cpuid = fake_cpuid,
                                       .collect_faults = fake_collect, .apic_base = APIC_BASE,
                                       .region_base = 0x123456789000ull, .region_bytes = 0x1100000,
                                       .apic_base_msr = APIC_BASE | 0x800,
                                       .apic_read = fake_apic_read, .apic_write = fake_apic_write,
                                       .fetch = fake_fetch, .init_sipi = fake_init_sipi,
                                       .port_in = fake_port_in, .port_out = fake_port_out, .pci_read = fake_pci_read,
                                       .pci_write = fake_pci_write, .pci_write_allowed = fake_pci_write_allowed,
                                       .machine_off = fake_machine_off, .pm_base = PM_BASE,
                                       .config_page = fake_config_page, .mmio_write = fake_mmio_write,
                                       .ioapic_page = fake_ioapic_page, .ioapic_read = fake_ioapic_read,
                                       .ioapic_write = fake_ioapic_write};

static int setup(void **state)
{
    (void)state;
    vmcb = aligned_alloc(4096, sizeof *vmcb);
    memset(vmcb, 0, sizeof *vmcb);
    memset(&regs, 0, sizeof regs);
    memset(&vcpu, 0, sizeof vcpu);
    collected = hypercalls = 0;
    port_ins = port_outs = pci_reads = pci_writes = machine_offs = mmio_writes = 0;
    vmcb->save.rip = 0x1000;
    vmcb->save.efer = 0x1D00 | EFER_SVME; /* long mode, NX, SVME */
    vmcb->save.cr0 = 0x80000011;          /* paging, protection */
    vmcb->save.cs.attrib = 0x29B;         /* a 64-bit code segment (L) */
    vcpu.guest_efer = 0xD00;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(vmcb);
    return 0;
}

static enum hv_exit_result exit_with(uint64_t code)
{
    vmcb->control.exit_code = code;
    vmcb->control.event_inject = 0;
    return hv_handle_exit(vmcb, &regs, &vcpu, &ops);
}

static void assert_injected(unsigned vector, bool error_code)
{
    uint64_t e = vmcb->control.event_inject;
    assert_true(e & SVM_EVENT_VALID);
    assert_int_equal(e & 0xff, vector);
    assert_int_equal((e >> 8) & 7, 3); /* exception */
    assert_int_equal(!!(e & SVM_EVENT_ERROR_VALID), error_code);
    assert_int_equal(e >> 32, 0);
}

static void test_vmmcall(void **state)
{
    (void)state;
    vmcb->save.rax = hc_rax(HC_VERSION);
    regs.rcx = 0x5000, regs.rdx = 24;
    assert_int_equal(exit_with(SVM_EXIT_VMMCALL), HV_RESUME);
    assert_int_equal(hypercalls, 1);
    assert_int_equal(last_rax, hc_rax(HC_VERSION));
    assert_int_equal(last_rcx, 0x5000);
    assert_int_equal(last_rdx, 24);
    assert_int_equal(vmcb->save.rax, 0xC00000EFu);
    assert_int_equal(vmcb->save.rip, 0x1003);
    assert_int_equal(vmcb->control.event_inject, 0);
    assert_int_equal(collected, 1); /* the IOMMU's faults, on every exit */
    /* from user mode: #UD, no call, RIP unchanged */
    vmcb->save.cpl = 3;
    assert_int_equal(exit_with(SVM_EXIT_VMMCALL), HV_RESUME);
    assert_int_equal(hypercalls, 1);
    assert_int_equal(vmcb->save.rip, 0x1003);
    assert_injected(X86_UD, false);
}

static void test_cpuid(void **state)
{
    (void)state;
    vmcb->save.rax = 0x40000000;
    assert_int_equal(exit_with(SVM_EXIT_CPUID), HV_RESUME);
    assert_int_equal(vmcb->save.rax, 0x40000002);
    char signature[13] = {0};
    uint32_t words[3] = {(uint32_t)regs.rbx, (uint32_t)regs.rcx, (uint32_t)regs.rdx};
    memcpy(signature, words, 12);
    assert_string_equal(signature, "iommu-hv-ddi");
    assert_int_equal(vmcb->save.rip, 0x1002);
    vmcb->save.rax = 0x40000001;
    exit_with(SVM_EXIT_CPUID);
    assert_int_equal(vmcb->save.rax, HC_ABI_VERSION);
    vmcb->save.rax = 0x40000002; /* the region: base in EAX:EBX, size in ECX:EDX */
    exit_with(SVM_EXIT_CPUID);
    assert_int_equal(vmcb->save.rax, 0x56789000);
    assert_int_equal(regs.rbx, 0x1234);
    assert_int_equal(regs.rcx, 0x1100000);
    assert_int_equal(regs.rdx, 0);
    vmcb->save.rax = 0x40000080;
    exit_with(SVM_EXIT_CPUID);
    assert_int_equal(vmcb->save.rax | regs.rbx | regs.rcx | regs.rdx, 0);
    /* passed through, with the hypervisor bit set and SVM hidden */
    vmcb->save.rax = 1, regs.rcx = 7;
    exit_with(SVM_EXIT_CPUID);
    assert_int_equal(vmcb->save.rax, 1 ^ 0x1000);
    assert_int_equal(regs.rbx, 7);
    assert_true(regs.rcx & (1u << 31));
    assert_false(regs.rcx & (1u << 21)); /* no x2APIC */
    assert_int_equal(regs.rdx, 0x12345678 & ~(1u << 7 | 1u << 14)); /* no MCE, no MCA */
    vmcb->save.rax = 0x80000001;
    exit_with(SVM_EXIT_CPUID);
    assert_false(regs.rcx & (1u << 2));
    assert_false(regs.rdx & (1u << 7 | 1u << 14));
    vmcb->save.rax = 0x8000000A;
    exit_with(SVM_EXIT_CPUID);
    assert_int_equal(vmcb->save.rax | regs.rbx | regs.rcx | regs.rdx, 0);
    assert_int_equal(vcpu.cpuids, 7);
    assert_int_equal(vmcb->save.rip, 0x1000 + 7 * 2);
}

static void test_efer(void **state)
{
    (void)state;
    regs.rcx = MSR_EFER;
    vmcb->control.exit_info_1 = 0; /* read: the guest's own view */
    exit_with(SVM_EXIT_MSR);
    assert_int_equal(vmcb->save.rax, 0xD00);
    assert_int_equal(regs.rdx, 0);
    assert_int_equal(vmcb->save.rip, 0x1002);
    /* the guest clears SVME (and NXE): SVME stays set underneath, LMA is the CPU's */
    vmcb->control.exit_info_1 = 1;
    vmcb->save.rax = 0x100, regs.rdx = 0;
    exit_with(SVM_EXIT_MSR);
    assert_int_equal(vcpu.guest_efer, 0x100);
    assert_int_equal(vmcb->save.efer, 0x100 | 0x400 | EFER_SVME);
    assert_int_equal(vmcb->save.rip, 0x1004);
    vmcb->control.exit_info_1 = 0;
    exit_with(SVM_EXIT_MSR);
    assert_int_equal(vmcb->save.rax, 0x100);
    /* reserved bits: #GP, nothing changes */
    vmcb->control.exit_info_1 = 1;
    vmcb->save.rax = 0x100, regs.rdx = 1;
    exit_with(SVM_EXIT_MSR);
    assert_injected(X86_GP, true);
    assert_int_equal(vcpu.guest_efer, 0x100);
    assert_int_equal(vmcb->save.rip, 0x1006);
    /* IA32_APIC_BASE: the same value (BSP bit or not) is fine; x2APIC or a move: #GP */
    regs.rcx = MSR_APIC_BASE;
    vmcb->save.rax = (uint32_t)(APIC_BASE | 0x900), regs.rdx = 0;
    exit_with(SVM_EXIT_MSR);
    assert_int_equal(vmcb->control.event_inject, 0);
    assert_int_equal(vmcb->save.rip, 0x1008);
    vmcb->save.rax = (uint32_t)(APIC_BASE | 0xC00); /* EXTD: x2APIC mode */
    exit_with(SVM_EXIT_MSR);
    assert_injected(X86_GP, true);
    vmcb->save.rax = 0xFEC00000u | 0x800; /* elsewhere */
    exit_with(SVM_EXIT_MSR);
    assert_injected(X86_GP, true);
    assert_int_equal(vmcb->save.rip, 0x1008);
    vmcb->save.rip = 0x1006;
    /* another MSR that exits (outside the permission map's ranges): #GP */
    regs.rcx = 0x40000000;
    exit_with(SVM_EXIT_MSR);
    assert_injected(X86_GP, true);
    assert_int_equal(vmcb->save.rip, 0x1006);
}

static void test_svm_instructions_and_npf(void **state)
{
    (void)state;
    const uint64_t codes[] = {SVM_EXIT_VMRUN, SVM_EXIT_VMLOAD, SVM_EXIT_VMSAVE,
                              SVM_EXIT_STGI, SVM_EXIT_CLGI, SVM_EXIT_SKINIT};
    for (unsigned i = 0; i < 6; i++) {
        assert_int_equal(exit_with(codes[i]), HV_RESUME);
        assert_injected(X86_UD, false);
        assert_int_equal(vmcb->save.rip, 0x1000);
    }
    vmcb->control.exit_info_1 = 0x100000007; /* write, user, present, final address */
    vmcb->control.exit_info_2 = 0x7e000123;
    vmcb->save.rip = 0x2222;
    assert_int_equal(exit_with(SVM_EXIT_NPF), HV_RESUME);
    assert_injected(X86_GP, true);
    assert_int_equal(vcpu.npf_count, 1);
    assert_int_equal(vcpu.npf_gpa, 0x7e000123);
    assert_int_equal(vcpu.npf_info, 0x100000007);
    assert_int_equal(vcpu.npf_rip, 0x2222);
    assert_int_equal(vmcb->save.rip, 0x2222);
    assert_int_equal(vcpu.injected, 7);
}

static void test_mmio_decode(void **state)
{
    (void)state;
    struct mmio_access a;
    static const struct {
        uint8_t bytes[12];
        unsigned n, length;
        bool write, immediate;
        unsigned size, reg;
        uint32_t value;
    } cases[] = {
        {{0x8B, 0x01}, 2, 2, false, false, 4, 0, 0},                     /* mov (%rcx),%eax */
        {{0x89, 0x11}, 2, 2, true, false, 4, 2, 0},                      /* mov %edx,(%rcx) */
        {{0x44, 0x89, 0x41, 0x10}, 4, 4, true, false, 4, 8, 0},          /* mov %r8d,0x10(%rcx) */
        {{0x8B, 0x84, 0x24, 0, 3, 0, 0}, 7, 7, false, false, 4, 0, 0},   /* mov 0x300(%rsp),%eax */
        {{0x8B, 0x05, 1, 2, 3, 4}, 6, 6, false, false, 4, 0, 0},         /* mov disp32(%rip),%eax */
        {{0xC7, 0x40, 0xB0, 0, 0, 0, 0}, 7, 7, true, true, 4, 0, 0},     /* movl $0,-0x50(%rax) */
        {{0xC7, 0x00, 0x00, 0x05, 0x0C, 0x00}, 6, 6, true, true, 4, 0, 0xC0500}, /* movl $0xc0500,(%rax) */
        {{0x48, 0x8B, 0x3F}, 3, 3, false, false, 8, 7, 0},               /* mov (%rdi),%rdi */
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_true(mmio_decode(cases[i].bytes, cases[i].n, MMIO_MODE_64, &a));
        assert_int_equal(a.length, cases[i].length);
        assert_int_equal(a.write, cases[i].write);
        assert_int_equal(a.immediate, cases[i].immediate);
        assert_int_equal(a.size, cases[i].size);
        assert_int_equal(a.reg, cases[i].reg);
        assert_int_equal(a.value, cases[i].value);
        assert_false(mmio_decode(cases[i].bytes, cases[i].length - 1, MMIO_MODE_64, &a)); /* cut short */
    }
    static const uint8_t refused[][3] = {{0x8B, 0xC1}, {0x0F, 0xB6, 0x01}, {0xC7, 0x08}, {0x88, 0x01}};
    for (unsigned i = 0; i < 4; i++)
        assert_false(mmio_decode(refused[i], 3, MMIO_MODE_64, &a));
}

static void test_apic_emulation(void **state)
{
    (void)state;
    memset(apic, 0, sizeof apic);
    init_sipis = 0;
    apic[0x20 / 4] = 0x01000000; /* APIC ID 1 */
    /* mov 0x20(%rcx),%eax: a read into RAX, upper half cleared, RIP past it */
    memcpy(code, (uint8_t[]){0x8B, 0x41, 0x20}, 3);
    vmcb->save.rip = 0x1000;
    vmcb->save.rax = ~0ull;
    vmcb->control.exit_info_2 = APIC_BASE + 0x20;
    assert_int_equal(exit_with(SVM_EXIT_NPF), HV_RESUME);
    assert_int_equal(vmcb->save.rax, 0x01000000);
    assert_int_equal(vmcb->save.rip, 0x1003);
    assert_int_equal(vmcb->control.event_inject, 0);
    /* mov %edx,(%rcx) to the EOI register: written through */
    memcpy(code + 3, (uint8_t[]){0x89, 0x11}, 2);
    regs.rdx = 0x12345678;
    vmcb->control.exit_info_2 = APIC_BASE + 0xB0;
    exit_with(SVM_EXIT_NPF);
    assert_int_equal(apic[0xB0 / 4], 0x12345678);
    assert_int_equal(vmcb->save.rip, 0x1005);
    /* ICR: a fixed IPI goes out; INIT and SIPI are handed over with the destination */
    apic[0x310 / 4] = 0x02000000;
    memcpy(code + 5, (uint8_t[]){0x89, 0x11, 0x89, 0x11, 0x89, 0x11}, 6);
    vmcb->control.exit_info_2 = APIC_BASE + 0x300;
    regs.rdx = 0x4030; /* fixed, vector 0x30 */
    exit_with(SVM_EXIT_NPF);
    assert_int_equal(apic[0x300 / 4], 0x4030);
    assert_int_equal(init_sipis, 0);
    regs.rdx = 0x4500; /* INIT, assert */
    exit_with(SVM_EXIT_NPF);
    regs.rdx = 0x4620; /* SIPI, vector 0x20 */
    exit_with(SVM_EXIT_NPF);
    assert_int_equal(init_sipis, 2);
    assert_int_equal(last_icr_low, 0x4620);
    assert_int_equal(last_icr_high, 0x02000000);
    assert_int_equal(apic[0x300 / 4], 0x4030); /* neither reached the real ICR */
    assert_int_equal(vmcb->save.rip, 0x100B);
    assert_int_equal(vcpu.apic_accesses, 5);
    /* code it cannot decode, or not in guest memory: refused as any other access */
    vmcb->save.rip = 0x5000;
    assert_int_equal(exit_with(SVM_EXIT_NPF), HV_RESUME);
    assert_injected(X86_GP, true);
    assert_int_equal(vcpu.npf_count, 1);
}

static void test_nmi_kick_and_sipi(void **state)
{
    (void)state;
    /* an NMI with no kick counted is the guest's own: given back to it, nothing else */
    assert_int_equal(exit_with(SVM_EXIT_NMI), HV_RESUME);
    assert_int_equal(vmcb->control.event_inject, X86_NMI | SVM_EVENT_NMI | SVM_EVENT_VALID);
    assert_int_equal(vcpu.guest_nmis, 1);
    assert_int_equal(vmcb->save.rip, 0x1000);
    /* a SIPI left without a kick (its NMI still on the way) is not taken by another exit */
    vmcb->control.event_inject = 0;
    vcpu.sipi_pending = true;
    vcpu.sipi_vector = 0x9F;
    vmcb->save.rax = 0;
    exit_with(SVM_EXIT_CPUID);
    assert_true(vcpu.sipi_pending);
    assert_int_equal(vcpu.sipis, 0);
    /* the kick's NMI: real mode at vector << 12, not passed to the guest */
    vcpu.kicks = 2; /* two kicks whose NMIs merged: both taken by this exit */
    regs.rbx = 77;
    assert_int_equal(exit_with(SVM_EXIT_NMI), HV_RESUME);
    assert_false(vcpu.sipi_pending);
    assert_int_equal(vcpu.kicks, 0);
    assert_int_equal(vcpu.guest_nmis, 1);
    assert_int_equal(vmcb->control.event_inject, 0);
    assert_int_equal(vmcb->save.cs.selector, 0x9F00);
    assert_int_equal(vmcb->save.cs.base, 0x9F000);
    assert_int_equal(vmcb->save.cs.limit, 0xFFFF);
    assert_int_equal(vmcb->save.rip, 0);
    assert_int_equal(vmcb->save.cr0 & 1, 0); /* real mode */
    assert_int_equal(vmcb->save.efer, EFER_SVME);
    assert_int_equal(vcpu.guest_efer, 0);
    assert_int_equal(regs.rbx, 0);
    assert_int_equal(vcpu.sipis, 1);
}

static void test_stops(void **state)
{
    (void)state;
    assert_int_equal(exit_with(SVM_EXIT_SHUTDOWN), HV_STOP);
    assert_int_equal(vcpu.stop_code, SVM_EXIT_SHUTDOWN);
    assert_int_equal(exit_with(0x00000000FFFFFFFFull), HV_STOP); /* VMEXIT_INVALID as QEMU stores it */
    assert_int_equal(vcpu.stop_code, SVM_EXIT_INVALID);
    /* An SMI or INIT that reached a CPU in guest mode: never let it be taken */
    assert_int_equal(exit_with(SVM_EXIT_SMI), HV_STOP);
    assert_int_equal(vcpu.stop_code, SVM_EXIT_SMI);
    assert_int_equal(exit_with(SVM_EXIT_INIT), HV_STOP);
    assert_int_equal(vcpu.stop_code, SVM_EXIT_INIT);
    assert_int_equal(vcpu.exits, 4);
}

/* The MSR permission map: every MSR exits but the listed ones, and the SVM block exits. */
static bool msrpm_intercepts(const uint8_t *map, uint32_t msr, bool write)
{
    uint32_t block = msr < 0x2000u ? 0 : msr - 0xC0000000u < 0x2000u ? 1 : 2;
    uint32_t base = block == 0 ? 0 : block == 1 ? 0xC0000000u : 0xC0010000u;
    uint32_t bit = block * 0x4000u + (msr - base) * 2 + write;
    return map[bit / 8] & (1u << (bit % 8));
}

static void test_msr_policy(void **state)
{
    (void)state;
    static uint8_t map[MSRPM_BYTES];
    hv_msrpm_build(map);
    const uint32_t denied[] = {0xC0010117u, 0xC0010114u, 0xC0010110u, 0xC001011Fu, 0xC0010010u, 0xC0010112u,
                               0xC0010113u, 0xC0010015u, MSR_EFER, 0x830u, 0x1D9u, 0x3Au, 0x8Bu};
    for (unsigned i = 0; i < sizeof denied / sizeof denied[0]; i++) {
        assert_true(msrpm_intercepts(map, denied[i], false));
        assert_true(msrpm_intercepts(map, denied[i], true));
        assert_false(hv_msr_passes(denied[i], false) || hv_msr_passes(denied[i], true));
    }
    /* the guest's own state and read-only facts pass; a TSC or APIC_BASE write does not */
    const uint32_t both[] = {0xC0000100u, 0xC0000102u, 0xC0000082u, 0x174u, 0x277u, 0x200u, 0x2FFu, 0x6E0u};
    for (unsigned i = 0; i < sizeof both / sizeof both[0]; i++)
        assert_false(msrpm_intercepts(map, both[i], false) || msrpm_intercepts(map, both[i], true));
    assert_false(msrpm_intercepts(map, MSR_TSC, false));
    assert_true(msrpm_intercepts(map, MSR_TSC, true));
    assert_false(msrpm_intercepts(map, MSR_APIC_BASE, false));
    assert_true(msrpm_intercepts(map, MSR_APIC_BASE, true));
    unsigned passed = 0; /* and nothing else anywhere in the three blocks */
    for (uint32_t n = 0; n < 0x2000u; n++)
        passed += !msrpm_intercepts(map, n, false) + !msrpm_intercepts(map, 0xC0000000u + n, false) +
                  !msrpm_intercepts(map, 0xC0010000u + n, false);
    assert_int_equal(passed, 48); /* the read column of msr_passes, counted by hand */

    /* the exits: VM_HSAVE_PA refused both ways, VM_CR reads as disabled and locked */
    regs.rcx = MSR_VM_HSAVE_PA, regs.rdx = 0, vmcb->save.rax = 0x5000;
    vmcb->control.exit_info_1 = 1;
    assert_int_equal(exit_with(SVM_EXIT_MSR), HV_RESUME);
    assert_injected(X86_GP, true);
    assert_int_equal(vcpu.refused, HV_REFUSED_MSR_WRITE);
    assert_int_equal(vcpu.refused_what, MSR_VM_HSAVE_PA);
    assert_int_equal(vcpu.refused_value, 0x5000);
    vmcb->control.exit_info_1 = 0;
    exit_with(SVM_EXIT_MSR);
    assert_injected(X86_GP, true);
    assert_int_equal(vcpu.refused, HV_REFUSED_MSR_READ);
    regs.rcx = MSR_VM_CR;
    exit_with(SVM_EXIT_MSR);
    assert_int_equal(vmcb->control.event_inject, 0);
    assert_int_equal(vmcb->save.rax, VM_CR_LOCK | VM_CR_SVMDIS);
    assert_int_equal(regs.rdx, 0);
    assert_int_equal(vmcb->save.rip, 0x1002);
    vmcb->control.exit_info_1 = 1;
    exit_with(SVM_EXIT_MSR);
    assert_injected(X86_GP, true);
    assert_int_equal(vcpu.refusals, 3);
}

static bool iopm_intercepts(const uint8_t *map, unsigned port)
{
    return map[port / 8] & (1u << (port % 8));
}

/* One IN or OUT of size bytes at port: the exit as SVM describes it (next RIP 0x1010). */
static enum hv_exit_result io(bool in, uint16_t port, unsigned size, uint32_t value)
{
    vmcb->control.exit_info_1 = (uint64_t)port << 16 | (size == 4 ? 0x40u : size == 2 ? 0x20u : 0x10u) | (in ? 1u : 0u);
    vmcb->control.exit_info_2 = 0x1010;
    vmcb->save.rip = 0x1000;
    vmcb->save.rax = value;
    return exit_with(SVM_EXIT_IOIO);
}

static void test_port_policy(void **state)
{
    (void)state;
    static uint8_t map[IOPM_BYTES];
    hv_iopm_build(map, PM_BASE);
    const unsigned intercepted[] = {0xE9, 0xB2, 0xB3, 0xCF8, 0xCF9, 0xCFC, 0xCFF, 0x60, 0x64, 0x92, 0x00, 0x0F,
                                    0x81, 0x8F, 0xC0, 0xDF, 0x514, 0x51B, PM_BASE + 4, PM_BASE + 5, PM_BASE + 0x30,
                                    PM_BASE + 0x37, PM_BASE + 0x60, PM_BASE + 0x7F, 0xCD8, 0xCDC, 0xCF7, 0xA00, 0xA17,
                                    0x70, 0x71};
    for (unsigned i = 0; i < sizeof intercepted / sizeof intercepted[0]; i++)
        assert_true(iopm_intercepts(map, intercepted[i]));
    const unsigned passed[] = {0x3F8, 0x3FD, 0x2F8, 0x72, 0x80, 0x510, 0x511, 0x402, PM_BASE, PM_BASE + 8,
                               PM_BASE + 0x20, 0xCD7, 0xA18, 0xD00, 0xFFFF};
    for (unsigned i = 0; i < sizeof passed / sizeof passed[0]; i++)
        assert_false(iopm_intercepts(map, passed[i]));

    /* the hypervisor's channel: writes dropped, reads float high */
    assert_int_equal(io(false, 0xE9, 1, 'R'), HV_RESUME);
    assert_int_equal(port_outs, 0);
    assert_int_equal(vcpu.refused, HV_REFUSED_PORT_OUT);
    assert_int_equal(vmcb->save.rip, 0x1010);
    io(true, 0xE9, 1, 0x1234);
    assert_int_equal(vmcb->save.rax, 0x12FF);
    assert_int_equal(port_ins, 0);
    /* a software SMI and SMI_EN: dropped; their reads pass */
    io(false, 0xB2, 1, 0x42);
    io(false, PM_BASE + 0x30, 4, 0x21);
    assert_int_equal(port_outs, 0);
    assert_int_equal(vcpu.refused_what, PM_BASE + 0x30);
    io(true, 0xB2, 1, 0);
    assert_int_equal(port_ins, 1);
    assert_int_equal(vmcb->save.rax, 0xA5);
    /* the reset control without its reset bit passes; with it the hypervisor resets */
    io(false, 0xCF9, 1, 0x02);
    assert_int_equal(port_outs, 1);
    unsigned outs;
    assert_int_equal(machine_offs, 0);
    io(false, 0xCF9, 1, 0x06);
    assert_int_equal(machine_offs, 1);
    assert_true(last_reset);
    assert_int_equal(port_outs, 1);
    io(false, 0x64, 1, 0xFE); /* the keyboard controller's reset pulse */
    assert_int_equal(machine_offs, 2);
    io(false, 0x64, 1, 0xD1); /* its output port, then bit 0 clear */
    io(false, 0x60, 1, 0xDF);
    assert_int_equal(machine_offs, 2);
    io(false, 0x64, 1, 0xD1);
    io(false, 0x60, 1, 0xDE);
    assert_int_equal(machine_offs, 3);
    /* a command without a data byte in between leaves the output-port write pending, as the
     * 8042 does (0xFF pulses nothing) */
    io(false, 0x64, 1, 0xD1);
    io(false, 0x64, 1, 0xFF);
    io(false, 0x64, 1, 0xAE);
    io(false, 0x60, 1, 0xFE);
    assert_int_equal(machine_offs, 4);
    io(false, 0x64, 1, 0xD1); /* and another CPU's data byte counts as well: the state is the device's */
    struct hv_vcpu mine = vcpu;
    vcpu = (struct hv_vcpu){0};
    io(false, 0x60, 1, 0x00);
    vcpu = mine;
    assert_int_equal(machine_offs, 5);
    io(false, 0x60, 1, 0x00); /* consumed: a plain data byte again */
    assert_int_equal(machine_offs, 5);
    machine_offs = 3;
    /* CMOS: the shutdown status byte (0x0F) is not the guest's; the others are, and so are reads */
    outs = port_outs;
    io(false, 0x70, 1, 0x8F); /* index 0x0F, NMI masked */
    io(false, 0x71, 1, 0xFE);
    assert_int_equal(port_outs, outs + 1);
    assert_int_equal(vcpu.refused_what, 0x71);
    assert_int_equal(vcpu.refused_value, 0x0FFE);
    io(true, 0x71, 1, 0);
    assert_int_equal(vmcb->save.rax, 0xA5);
    io(false, 0x70, 1, 0x0B);
    io(false, 0x71, 1, 0x02);
    assert_int_equal(port_outs, outs + 3);
    assert_int_equal(last_port, 0x71);
    /* QEMU's CPU hotplug block: an eject would take a CPU away from the hypervisor */
    outs = port_outs;
    io(false, 0xCDC, 1, 8);
    assert_int_equal(port_outs, outs);
    assert_int_equal(vcpu.refused_what, 0xCDC);
    io(true, 0xCDC, 1, 0);
    assert_int_equal(vmcb->save.rax, 0xA5);
    /* S5 powers off through the hypervisor; S3 is refused; SCI_EN passes */
    io(false, PM_BASE + 4, 2, 0x2000);
    assert_int_equal(machine_offs, 4);
    assert_false(last_reset);
    outs = port_outs;
    io(false, PM_BASE + 4, 2, 0x2400);
    assert_int_equal(machine_offs, 4);
    assert_int_equal(vcpu.refused, HV_REFUSED_SLEEP);
    io(false, PM_BASE + 4, 2, 0x0001);
    assert_int_equal(port_outs, outs + 1);
    /* PCI configuration: a per-CPU CONFIG_ADDRESS; the host bridge's registers past the
     * header are the chipset's */
    io(false, 0xCF8, 4, 0x80000060u);
    assert_int_equal(vcpu.pci_address, 0x80000060u);
    io(true, 0xCF8, 4, 0);
    assert_int_equal(vmcb->save.rax, 0x80000060u);
    io(true, 0xCFE, 2, 0);
    assert_int_equal(pci_reads, 1);
    assert_int_equal(last_pci_address, 0x80000062u);
    assert_int_equal(vmcb->save.rax, 0x5678);
    io(false, 0xCFC, 4, 0xFED90001u);
    assert_int_equal(pci_writes, 0);
    assert_int_equal(vcpu.refused, HV_REFUSED_PCI_CONFIG);
    assert_int_equal(vcpu.refused_what, 0x60);
    io(false, 0xCF8, 4, 0x80000004u); /* the header's command register */
    io(false, 0xCFC, 2, 0x0006);
    assert_int_equal(pci_writes, 1);
    io(false, 0xCF8, 4, 0x80001860u); /* another function's device-specific register */
    io(false, 0xCFC, 4, 0x1);
    assert_int_equal(pci_writes, 2);
    /* with CONFIG_ADDRESS's enable bit clear, the data port is nothing: never the real one,
     * whose CONFIG_ADDRESS still selects what the host last accessed for someone */
    io(false, 0xCF8, 4, 0x00000060u);
    outs = port_outs;
    unsigned ins = port_ins;
    io(false, 0xCFC, 4, 0xFED90001u);
    io(true, 0xCFC, 4, 0);
    assert_int_equal(port_outs, outs);
    assert_int_equal(port_ins, ins);
    assert_int_equal(pci_writes, 2);
    assert_int_equal(vmcb->save.rax, 0xFFFFFFFFu);
    /* string I/O to an intercepted port */
    vmcb->control.exit_info_1 = 0xE9u << 16 | 0x10 | 0x4;
    exit_with(SVM_EXIT_IOIO);
    assert_injected(X86_GP, true);
    assert_int_equal(vcpu.refused, HV_REFUSED_STRING_IO);
}

static void test_apic_filters(void **state)
{
    (void)state;
    memset(apic, 0, sizeof apic);
    init_sipis = 0;
    /* mov %edx,(%rcx), each at 0x1000 */
    memcpy(code, (uint8_t[]){0x89, 0x11}, 2);
    struct {
        uint32_t offset, value;
        bool allowed;
    } writes[] = {
        {0x300, 0x4200, false}, /* ICR: SMI */
        {0x300, 0x4700, false}, /* ICR: ExtINT */
        {0x300, 0x4300, false}, /* ICR: reserved */
        {0x300, 0x4400, true},  /* ICR: NMI */
        {0x300, 0x4130, true},  /* ICR: lowest priority */
        {0x350, 0x0200, false}, /* LINT0: SMI */
        {0x350, 0x0500, false}, /* LINT0: INIT */
        {0x350, 0x0700, true},  /* LINT0: ExtINT (virtual wire) */
        {0x360, 0x0400, true},  /* LINT1: NMI */
        {0x320, 0x0200, false}, /* timer: SMI */
        {0x320, 0x0400, false}, /* timer: NMI */
        {0x320, 0x20030, true}, /* timer: periodic, fixed */
        {0x370, 0x0500, false}, /* error: INIT */
        {0x340, 0x0400, true},  /* performance counters: NMI */
        {0x2F0, 0x0200, false}, /* CMCI: SMI */
        {0x000, 0x0500, false}, /* offsets 0x000-0x00F: QEMU takes a write there as an interrupt message */
        {0x020, 0x05000000, false}, /* the APIC ID */
        {0x3F0, 0x0500, false}, /* reserved */
        {0x080, 0x0010, true},  /* TPR */
        {0x0F0, 0x01FF, true},  /* SVR */
        {0x380, 0x1000, true},  /* the timer's initial count */
    };
    for (unsigned i = 0; i < sizeof writes / sizeof writes[0]; i++) {
        apic[writes[i].offset / 4] = 0xDEAD;
        vmcb->save.rip = 0x1000;
        regs.rdx = writes[i].value;
        vmcb->control.exit_info_2 = APIC_BASE + writes[i].offset;
        uint64_t refusals = vcpu.refusals;
        assert_int_equal(exit_with(SVM_EXIT_NPF), HV_RESUME);
        assert_int_equal(vmcb->control.event_inject, 0);
        assert_int_equal(vmcb->save.rip, 0x1002);
        assert_int_equal(apic[writes[i].offset / 4], writes[i].allowed ? writes[i].value : 0xDEAD);
        assert_int_equal(vcpu.refusals, refusals + !writes[i].allowed);
        if (!writes[i].allowed)
            assert_int_equal(vcpu.refused, writes[i].offset == 0x300 ? HV_REFUSED_APIC_ICR : HV_REFUSED_APIC_REGISTER);
    }
    assert_int_equal(init_sipis, 0);
    /* past the register page, the rest of the APIC's window (the MSI range) is not emulated:
     * a refused access like any other */
    vmcb->save.rip = 0x1000;
    vmcb->control.exit_info_2 = APIC_BASE + 0x1000;
    regs.rdx = 0x500;
    assert_int_equal(exit_with(SVM_EXIT_NPF), HV_RESUME);
    assert_injected(X86_GP, true);
    assert_int_equal(vcpu.npf_count, 1);
}

/* The APIC's accesses are decoded in the guest's own mode: a real-mode AP's `66 89 11` is a
 * 32-bit store of EDX through [BX+DI] (in 64-bit mode it would be a 16-bit one). */
static void test_apic_in_real_mode(void **state)
{
    (void)state;
    memset(apic, 0, sizeof apic);
    memcpy(code, (uint8_t[]){0x66, 0x89, 0x11}, 3);
    vmcb->save.cr0 = 0x10;             /* real mode */
    vmcb->save.efer = EFER_SVME;
    vmcb->save.cs.attrib = 0x9B;       /* 16-bit code */
    regs.rdx = 0x12345678;
    vmcb->control.exit_info_2 = APIC_BASE + 0xB0;
    assert_int_equal(exit_with(SVM_EXIT_NPF), HV_RESUME);
    assert_int_equal(vmcb->control.event_inject, 0);
    assert_int_equal(apic[0xB0 / 4], 0x12345678);
    assert_int_equal(vmcb->save.rip, 0x1003);
}

/* The I/O APIC: IOREGSEL and IOWIN emulated; no redirection entry may ask for SMI or INIT
 * (QEMU lets compatibility-format interrupts through even with remapping on). */
static void test_ioapic(void **state)
{
    (void)state;
    memset(ioapic_regs, 0, sizeof ioapic_regs);
    ioapic_select = 0;
    vmcb->save.cs.attrib = 0x29B;
    /* mov %edx,(%rcx) five times, then mov 0x10(%rcx),%eax */
    memcpy(code, (uint8_t[]){0x89, 0x11, 0x89, 0x11, 0x89, 0x11, 0x89, 0x11, 0x89, 0x11, 0x8B, 0x41, 0x10}, 13);
    struct {
        uint32_t offset, value;
        bool allowed;
    } steps[] = {
        {0x00, 0x14, true},    /* select entry 2's low half */
        {0x10, 0x10500, false}, /* INIT, masked or not: refused */
        {0x10, 0x00200, false}, /* SMI */
        {0x10, 0x00031, true},  /* fixed, vector 0x31 */
        {0x00, 0x15, true},    /* entry 2's high half: the destination */
    };
    for (unsigned i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        regs.rdx = steps[i].value;
        vmcb->control.exit_info_2 = IOAPIC_BASE + steps[i].offset;
        uint64_t refusals = vcpu.refusals;
        assert_int_equal(exit_with(SVM_EXIT_NPF), HV_RESUME);
        assert_int_equal(vmcb->control.event_inject, 0);
        assert_int_equal(vmcb->save.rip, 0x1000 + 2 * (i + 1));
        assert_int_equal(vcpu.refusals, refusals + !steps[i].allowed);
    }
    assert_int_equal(ioapic_regs[0x14], 0x31);
    assert_int_equal(vcpu.refused, HV_REFUSED_IOAPIC_RTE);
    assert_int_equal(vcpu.refused_what, 0x14);
    assert_int_equal(vcpu.refused_value, 0x200);
    ioapic_select = 0x14;
    vmcb->control.exit_info_2 = IOAPIC_BASE + 0x10;
    exit_with(SVM_EXIT_NPF);
    assert_int_equal(vmcb->save.rax, 0x31);
    assert_int_equal(vmcb->save.rip, 0x100D);
    assert_true(hv_ioapic_write_allowed(0x01, 0x500)); /* not an entry */
    assert_true(hv_ioapic_write_allowed(0x15, 0x500)); /* a destination half */
    assert_true(hv_ioapic_write_allowed(0x3E, 0x700)); /* ExtINT */
    assert_false(hv_ioapic_write_allowed(0x3E, 0x600)); /* reserved */
    assert_false(hv_ioapic_write_allowed(0x3E, 0x300));
}

/* Writes to a chipset function's ECAM page (mapped read-only): done, unless to a register
 * the guest may not write. */
static void test_config_page_writes(void **state)
{
    (void)state;
    /* mov %al,(%rcx); movw $0x6,(%rcx); mov %edx,(%rcx) */
    memcpy(code, (uint8_t[]){0x88, 0x01, 0x66, 0xC7, 0x01, 0x06, 0x00, 0x89, 0x11}, 9);
    vmcb->save.cs.attrib = 0x29B; /* 64-bit code */
    vmcb->save.rax = 0x1234;
    vmcb->control.exit_info_1 = 0x100000007; /* a write */
    vmcb->control.exit_info_2 = ECAM_HOST_BRIDGE + 0x9D; /* SMRAM */
    assert_int_equal(exit_with(SVM_EXIT_NPF), HV_RESUME);
    assert_int_equal(mmio_writes, 0);
    assert_int_equal(vcpu.refused, HV_REFUSED_PCI_CONFIG);
    assert_int_equal(vcpu.refused_what, 0x9D);
    assert_int_equal(vcpu.refused_value, 0x34);
    assert_int_equal(vmcb->save.rip, 0x1002);
    assert_int_equal(vmcb->control.event_inject, 0);
    vmcb->control.exit_info_2 = ECAM_HOST_BRIDGE + 0x04; /* the command register */
    exit_with(SVM_EXIT_NPF);
    assert_int_equal(mmio_writes, 1);
    assert_int_equal(last_mmio_pa, ECAM_HOST_BRIDGE + 4);
    assert_int_equal(last_value, 6);
    assert_int_equal(vmcb->save.rip, 0x1007);
    regs.rdx = 0xE0000001u;
    vmcb->control.exit_info_2 = ECAM_HOST_BRIDGE + 0x60; /* PCIEXBAR */
    exit_with(SVM_EXIT_NPF);
    assert_int_equal(mmio_writes, 1);
    assert_int_equal(vcpu.refused_value, 0xE0000001u);
    assert_int_equal(vcpu.npf_count, 0);
    /* a read fault there, or a write elsewhere, is a refused access as before */
    vmcb->save.rip = 0x1000;
    vmcb->control.exit_info_1 = 0x100000005;
    exit_with(SVM_EXIT_NPF);
    assert_injected(X86_GP, true);
    assert_int_equal(vcpu.npf_count, 1);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_vmmcall), T(test_cpuid), T(test_efer), T(test_svm_instructions_and_npf), T(test_stops),
        T(test_mmio_decode), T(test_apic_emulation), T(test_nmi_kick_and_sipi), T(test_msr_policy),
        T(test_port_policy), T(test_apic_filters), T(test_config_page_writes), T(test_ioapic),
        T(test_apic_in_real_mode),
    };
    return cmocka_run_group_tests_name("vmexit", tests, NULL, NULL);
}
