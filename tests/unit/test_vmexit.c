/* The exit handler (boot/vmexit.c) on a VMCB in memory: each exit it handles, what the
 * guest sees afterwards (registers, RIP, injected events), and when it stops the guest. */
#include <stdlib.h>
#include <string.h>

#include "ddi/hypercall.h"
#include "test_util.h"
#include "vmexit.h"

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

static const struct hv_exit_ops ops = {NULL, fake_hypercall, fake_cpuid, fake_collect};

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

static void test_stops(void **state)
{
    (void)state;
    assert_int_equal(exit_with(SVM_EXIT_SHUTDOWN), HV_STOP);
    assert_int_equal(vcpu.stop_code, SVM_EXIT_SHUTDOWN);
    assert_int_equal(exit_with(0x00000000FFFFFFFFull), HV_STOP); /* VMEXIT_INVALID as QEMU stores it */
    assert_int_equal(vcpu.stop_code, SVM_EXIT_INVALID);
    assert_int_equal(exit_with(SVM_EXIT_HLT), HV_STOP); /* not intercepted: not expected */
    assert_int_equal(vcpu.exits, 3);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_vmmcall), T(test_cpuid), T(test_efer), T(test_svm_instructions_and_npf), T(test_stops),
    };
    return cmocka_run_group_tests_name("vmexit", tests, NULL, NULL);
}
