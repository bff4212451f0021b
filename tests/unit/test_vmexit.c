/* The exit handler (boot/vmexit.c) on a VMCB in memory: each exit it handles, what the
 * guest sees afterwards (registers, RIP, injected events), and when it stops the guest. */
#include <stdlib.h>
#include <string.h>

#include "ddi/hypercall.h"
#include "test_util.h"
#include "mmio_decode.h"
#include "vmexit.h"

#define SVM_EXIT_SMI_FOR_TEST 0x62

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

static bool fake_fetch(void *ctx, const struct vmcb *v, uint64_t linear, uint8_t *buf, unsigned len)
{
    (void)ctx;
    (void)v;
    if (linear < 0x1000 || linear + len > 0x1000 + sizeof code)
        return false;
    memcpy(buf, code + (linear - 0x1000), len);
    return true;
}

static void fake_init_sipi(void *ctx, uint32_t low, uint32_t high)
{
    (void)ctx;
    init_sipis++;
    last_icr_low = low, last_icr_high = high;
}

static bool fake_wait_for_sipi(void *ctx, struct hv_vcpu *v)
{
    (void)ctx;
    return v->sipi_pending;
}

static const struct hv_exit_ops ops = {.wait_for_sipi = fake_wait_for_sipi, .hypercall = fake_hypercall, .cpuid = fake_cpuid,
                                       .collect_faults = fake_collect, .apic_base = APIC_BASE,
                                       .apic_base_msr = APIC_BASE | 0x800,
                                       .apic_read = fake_apic_read, .apic_write = fake_apic_write,
                                       .fetch = fake_fetch, .init_sipi = fake_init_sipi};

static int setup(void **state)
{
    (void)state;
    vmcb = aligned_alloc(4096, sizeof *vmcb);
    memset(vmcb, 0, sizeof *vmcb);
    memset(&regs, 0, sizeof regs);
    memset(&vcpu, 0, sizeof vcpu);
    collected = hypercalls = 0;
    vmcb->save.rip = 0x1000;
    vmcb->save.efer = 0x1D00 | EFER_SVME; /* long mode, NX, SVME */
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
    assert_int_equal(vmcb->save.rax, HV_CPUID_VERSION_LEAF);
    char signature[13] = {0};
    uint32_t words[3] = {(uint32_t)regs.rbx, (uint32_t)regs.rcx, (uint32_t)regs.rdx};
    memcpy(signature, words, 12);
    assert_string_equal(signature, "iommu-hv-ddi");
    assert_int_equal(vmcb->save.rip, 0x1002);
    vmcb->save.rax = 0x40000001;
    exit_with(SVM_EXIT_CPUID);
    assert_int_equal(vmcb->save.rax, HC_ABI_VERSION);
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
    assert_int_equal(regs.rdx, 0x12345678);
    vmcb->save.rax = 0x80000001;
    exit_with(SVM_EXIT_CPUID);
    assert_false(regs.rcx & (1u << 2));
    vmcb->save.rax = 0x8000000A;
    exit_with(SVM_EXIT_CPUID);
    assert_int_equal(vmcb->save.rax | regs.rbx | regs.rcx | regs.rdx, 0);
    assert_int_equal(vcpu.cpuids, 6);
    assert_int_equal(vmcb->save.rip, 0x1000 + 6 * 2);
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
        assert_true(mmio_decode(cases[i].bytes, cases[i].n, &a));
        assert_int_equal(a.length, cases[i].length);
        assert_int_equal(a.write, cases[i].write);
        assert_int_equal(a.immediate, cases[i].immediate);
        assert_int_equal(a.size, cases[i].size);
        assert_int_equal(a.reg, cases[i].reg);
        assert_int_equal(a.value, cases[i].value);
        assert_false(mmio_decode(cases[i].bytes, cases[i].length - 1, &a)); /* cut short */
    }
    static const uint8_t refused[][3] = {{0x8B, 0xC1}, {0x0F, 0xB6, 0x01}, {0xC7, 0x08}, {0x88, 0x01}};
    for (unsigned i = 0; i < 4; i++)
        assert_false(mmio_decode(refused[i], 3, &a));
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

static void test_hlt_and_sipi(void **state)
{
    (void)state;
    /* interrupts on: the HLT is over at once */
    vmcb->save.rflags = 0x202;
    assert_int_equal(exit_with(SVM_EXIT_HLT), HV_RESUME);
    assert_int_equal(vmcb->save.rip, 0x1001);
    /* interrupts off, no SIPI came: back to the same HLT */
    vmcb->save.rflags = 0x2;
    exit_with(SVM_EXIT_HLT);
    assert_int_equal(vmcb->save.rip, 0x1001);
    assert_int_equal(vcpu.sipis, 0);
    /* a SIPI came (another CPU's emulated INIT-SIPI): real mode at vector << 12 */
    vcpu.sipi_pending = true;
    vcpu.sipi_vector = 0x9F;
    regs.rbx = 77;
    assert_int_equal(exit_with(SVM_EXIT_HLT), HV_RESUME);
    assert_false(vcpu.sipi_pending);
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
    assert_int_equal(exit_with(SVM_EXIT_SMI_FOR_TEST), HV_STOP); /* not intercepted: not expected */
    assert_int_equal(vcpu.exits, 3);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_vmmcall), T(test_cpuid), T(test_efer), T(test_svm_instructions_and_npf), T(test_stops),
        T(test_mmio_decode), T(test_apic_emulation), T(test_hlt_and_sipi),
    };
    return cmocka_run_group_tests_name("vmexit", tests, NULL, NULL);
}
