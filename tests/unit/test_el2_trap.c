/* The EL2 trap handler's decisions (boot/hypervisor/el2/el2_trap.c) on a saved frame and a
 * syndrome: what the guest sees afterwards (registers, ELR, an injected exception), what the
 * host was asked to do, and what was refused. */
#include <string.h>

#include "ddi/hypercall.h"
#include "hypervisor/el2/el2_trap.h"
#include "test_util.h"

#define CONSOLE 0x09000000ull
#define VBAR 0x7C000000ull
#define GUEST_PC 0x7C012340ull
#define SPSR_EL1H 0x5u
#define SPSR_EL1T 0x4u
#define SPSR_EL0 0x0u

static struct el2_frame f;
static struct hv_vcpu v;
static struct {
    unsigned hypercalls, psci, cpu_on, cpu_off, off, waits, console_writes, injected;
    uint64_t rax, rcx, rdx, fn, a[3], console_offset, console_value, esr, far, elr, spsr;
    bool reset;
} seen;

static uint64_t fake_hypercall(void *ctx, uint64_t rax, uint64_t rcx, uint64_t rdx)
{
    (void)ctx;
    seen.hypercalls++, seen.rax = rax, seen.rcx = rcx, seen.rdx = rdx;
    return 0xC00000EFu;
}

static uint64_t fake_psci(void *ctx, uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3)
{
    (void)ctx;
    seen.psci++, seen.fn = fn, seen.a[0] = a1, seen.a[1] = a2, seen.a[2] = a3;
    return 0x10001;
}

static uint64_t fake_cpu_on(void *ctx, uint64_t mpidr, uint64_t entry, uint64_t context)
{
    (void)ctx;
    seen.cpu_on++, seen.a[0] = mpidr, seen.a[1] = entry, seen.a[2] = context;
    return 0;
}

static uint64_t fake_cpu_off(void *ctx)
{
    (void)ctx;
    seen.cpu_off++;
    return (uint64_t)-3; /* DENIED */
}

static void fake_machine_off(void *ctx, bool reset)
{
    (void)ctx;
    seen.off++, seen.reset = reset;
}

static uint32_t fake_console_read(void *ctx, unsigned offset)
{
    (void)ctx;
    return 0x80000000u | offset << 8 | 0x90; /* a value whose top bits and sign show */
}

static void fake_console_write(void *ctx, unsigned offset, uint32_t value)
{
    (void)ctx;
    seen.console_writes++, seen.console_offset = offset, seen.console_value = value;
}

static void fake_wait(void *ctx)
{
    (void)ctx;
    seen.waits++;
}

static uint64_t fake_vbar(void *ctx)
{
    (void)ctx;
    return VBAR;
}

static void fake_set_el1(void *ctx, uint64_t esr, uint64_t far, uint64_t elr, uint64_t spsr)
{
    (void)ctx;
    seen.injected++, seen.esr = esr, seen.far = far, seen.elr = elr, seen.spsr = spsr;
}

static const struct el2_trap_ops ops = {.hypercall = fake_hypercall, .psci = fake_psci, .cpu_on = fake_cpu_on,
                                        .cpu_off = fake_cpu_off, .machine_off = fake_machine_off,
                                        .console_base = CONSOLE, .console_read = fake_console_read,
                                        .console_write = fake_console_write, .wait = fake_wait,
                                        .vbar_el1 = fake_vbar, .set_el1_exception = fake_set_el1};

static int reset_state(void **state)
{
    (void)state;
    memset(&f, 0, sizeof f);
    memset(&v, 0, sizeof v);
    memset(&seen, 0, sizeof seen);
    for (unsigned i = 0; i < 31; i++)
        f.x[i] = 0x1000 + i;
    f.elr = GUEST_PC;
    f.spsr = SPSR_EL1H;
    return 0;
}

static void trap(uint32_t ec, uint32_t iss, uint64_t far, uint64_t ipa)
{
    struct el2_syndrome s = {(uint64_t)ec << 26 | 1u << 25 | iss, far, (ipa >> 12) << 4};
    assert_int_equal(el2_handle_trap(&f, &s, &v, &ops), EL2_RESUME);
}

/* A data abort's ISS: valid syndrome, access size log2, sign extension, register, 64-bit
 * register, write. */
static uint32_t dabt_iss(unsigned sas, bool sse, unsigned srt, bool sf, bool write)
{
    return 1u << 24 | sas << 22 | (sse ? 1u << 21 : 0) | srt << 16 | (sf ? 1u << 15 : 0) | (write ? 1u << 6 : 0) | 0x07;
}

static void test_hvc_of_the_abi_reaches_the_server(void **state)
{
    (void)state;
    f.x[0] = hc_smccc_function(HC_MAP_LOGICAL_RANGE);
    f.x[1] = 0x7E000000, f.x[2] = 48;
    trap(EC_HVC64, 0, 0, 0);
    assert_int_equal(seen.hypercalls, 1);
    assert_int_equal(seen.rax, hc_rax(HC_MAP_LOGICAL_RANGE));
    assert_int_equal(seen.rcx, 0x7E000000);
    assert_int_equal(seen.rdx, 48);
    assert_int_equal(f.x[0], 0xC00000EFu);
    assert_int_equal(f.elr, GUEST_PC); /* an HVC's ELR is already the next instruction */
    assert_int_equal(f.x[3], 0x1003);  /* nothing else changes */
    assert_int_equal(v.hypercalls, 1);
    assert_int_equal(v.refusals, 0);
}

static void test_hvc_of_no_call_is_not_supported(void **state)
{
    (void)state;
    uint64_t ids[] = {0x84000000u /* PSCI over HVC */, 0x80000000u /* SMCCC_VERSION */, 0xC5000100u /* another owner */,
                      0x86000100u /* SMC32 form */, 0xC6010000ull | 1u << 8, 1ull << 32 | hc_smccc_function(HC_VERSION)};
    for (unsigned i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        f.x[0] = ids[i];
        trap(EC_HVC64, 0, 0, 0);
        assert_int_equal(f.x[0], (uint64_t)-1);
        assert_int_equal(v.refused, HV_REFUSED_HVC);
        assert_int_equal(v.refused_what, ids[i]);
    }
    assert_int_equal(seen.hypercalls, 0);
    assert_int_equal(v.refusals, sizeof ids / sizeof ids[0]);
}

static void test_smc_passes_only_the_listed_psci_calls(void **state)
{
    (void)state;
    uint32_t passed[] = {0x84000000u, 0x84000004u, 0xC4000004u, 0x84000006u};
    for (unsigned i = 0; i < 4; i++) {
        f.x[0] = passed[i], f.elr = GUEST_PC;
        trap(EC_SMC64, 0, 0, 0);
        assert_int_equal(seen.psci, i + 1);
        assert_int_equal(seen.fn, passed[i]);
        assert_int_equal(f.x[0], 0x10001);
        assert_int_equal(f.elr, GUEST_PC + 4); /* a trapped SMC returns to itself */
    }
    uint64_t refused[] = {0x84000001u /* CPU_SUSPEND */, 0xC4000001u, 0x84000005u /* MIGRATE */, 0x8400000Eu
                          /* SYSTEM_SUSPEND */, 0xC2000000u /* SiP */, 0x80000000u /* SMCCC_VERSION */,
                          0x80008000u /* ARCH_WORKAROUND_1 */, 1ull << 32 | 0x84000000u /* upper bits set */};
    for (unsigned i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        f.x[0] = refused[i];
        trap(EC_SMC64, 0, 0, 0);
        assert_int_equal(f.x[0], (uint64_t)-1);
        assert_int_equal(v.refused, HV_REFUSED_SMC);
        assert_int_equal(v.refused_what, refused[i]);
    }
    assert_int_equal(seen.psci, 4);
    assert_int_equal(v.refusals, sizeof refused / sizeof refused[0]);
    assert_int_equal(seen.cpu_on + seen.cpu_off + seen.off, 0);
}

static void test_cpu_on_is_the_hypervisors(void **state)
{
    (void)state;
    f.x[0] = 0xC4000003u, f.x[1] = 0x101, f.x[2] = 0x1234567890ull, f.x[3] = 0xABCDEF0123ull;
    trap(EC_SMC64, 0, 0, 0);
    assert_int_equal(seen.cpu_on, 1);
    assert_int_equal(seen.a[0], 0x101);
    assert_int_equal(seen.a[1], 0x1234567890ull);
    assert_int_equal(seen.a[2], 0xABCDEF0123ull);
    assert_int_equal(f.x[0], 0);
    /* The SMC32 form takes 32-bit arguments. */
    f.x[0] = 0x84000003u, f.x[2] = 0xFFFFFFFF00001000ull, f.x[3] = 0x1FFFFFFFFull;
    trap(EC_SMC64, 0, 0, 0);
    assert_int_equal(seen.cpu_on, 2);
    assert_int_equal(seen.a[1], 0x1000);
    assert_int_equal(seen.a[2], 0xFFFFFFFFu);
    assert_int_equal(seen.psci, 0);
    assert_int_equal(v.psci_cpu_on, 2);
}

static void test_cpu_off_system_off_and_features(void **state)
{
    (void)state;
    f.x[0] = 0x84000002u;
    trap(EC_SMC64, 0, 0, 0);
    assert_int_equal(seen.cpu_off, 1);
    assert_int_equal(f.x[0], (uint64_t)-3);
    f.x[0] = 0x84000009u;
    trap(EC_SMC64, 0, 0, 0);
    assert_int_equal(seen.off, 1);
    assert_true(seen.reset);
    f.x[0] = 0x84000008u;
    trap(EC_SMC64, 0, 0, 0);
    assert_int_equal(seen.off, 2);
    assert_false(seen.reset);
    f.x[0] = 0x8400000Au, f.x[1] = 0xC4000003u;
    trap(EC_SMC64, 0, 0, 0);
    assert_int_equal(f.x[0], 0);
    f.x[0] = 0x8400000Au, f.x[1] = 0x84000001u;
    trap(EC_SMC64, 0, 0, 0);
    assert_int_equal(f.x[0], (uint64_t)-1);
    assert_int_equal(seen.psci, 0);
}

static void test_console_data_register_write_is_passed(void **state)
{
    (void)state;
    f.x[5] = 0xFFFFFF41; /* "A", with bits above the register's */
    trap(EC_DABT_LOWER, dabt_iss(2, false, 5, false, true), 0x09000000, CONSOLE);
    assert_int_equal(seen.console_writes, 1);
    assert_int_equal(seen.console_offset, 0);
    assert_int_equal(seen.console_value, 0xFFFFFF41);
    assert_int_equal(f.elr, GUEST_PC + 4);
    assert_int_equal(v.console_accesses, 1);
    assert_int_equal(v.refusals + seen.injected, 0);
}

static void test_console_reads_as_the_instruction_asks(void **state)
{
    (void)state;
    /* LDR W7, [FR]: 32 bits, zero-extended. */
    trap(EC_DABT_LOWER, dabt_iss(2, false, 7, false, false), 0x09000018, CONSOLE + 0x18);
    assert_int_equal(f.x[7], 0x80001890u);
    /* LDRSB X8, [FR]: one byte, sign-extended to 64 bits. */
    trap(EC_DABT_LOWER, dabt_iss(0, true, 8, true, false), 0x09000018, CONSOLE + 0x18);
    assert_int_equal(f.x[8], 0xFFFFFFFFFFFFFF90ull);
    /* LDRSH W9, [FR + 2]: the upper half, sign-extended within 32 bits. */
    trap(EC_DABT_LOWER, dabt_iss(1, true, 9, false, false), 0x0900001A, CONSOLE + 0x1A);
    assert_int_equal(f.x[9], 0xFFFF8000u);
    /* A load into XZR changes no register. */
    trap(EC_DABT_LOWER, dabt_iss(2, false, 31, false, false), 0x09000018, CONSOLE + 0x18);
    for (unsigned i = 10; i < 31; i++)
        assert_int_equal(f.x[i], 0x1000 + i);
    assert_int_equal(f.elr, GUEST_PC + 16);
    assert_int_equal(v.refusals + seen.injected, 0);
}

static void test_console_settings_are_the_hypervisors(void **state)
{
    (void)state;
    unsigned offsets[] = {0x24 /* IBRD */, 0x28 /* FBRD */, 0x2C /* LCR_H */, 0x30 /* CR */, 0x48 /* DMACR */};
    for (unsigned i = 0; i < 5; i++) {
        trap(EC_DABT_LOWER, dabt_iss(2, false, 0, false, true), CONSOLE + offsets[i], CONSOLE + offsets[i]);
        assert_int_equal(v.refused, HV_REFUSED_CONSOLE);
        assert_int_equal(v.refused_what, offsets[i]);
    }
    assert_int_equal(seen.console_writes, 0);
    /* IMSC and ICR (the guest's own interrupts) pass. */
    trap(EC_DABT_LOWER, dabt_iss(2, false, 3, false, true), CONSOLE + 0x38, CONSOLE + 0x38);
    trap(EC_DABT_LOWER, dabt_iss(2, false, 4, false, true), CONSOLE + 0x44, CONSOLE + 0x44);
    assert_int_equal(seen.console_writes, 2);
    assert_int_equal(seen.console_offset, 0x44);
    assert_int_equal(seen.console_value, 0x1004);
    assert_int_equal(seen.injected, 0);
}

static void test_abort_on_a_protected_page_is_injected(void **state)
{
    (void)state;
    uint64_t far = 0x7AA10008, ipa = 0x7AA10008;
    trap(EC_DABT_LOWER, dabt_iss(3, false, 2, true, true), far, ipa);
    assert_int_equal(seen.injected, 1);
    assert_int_equal(seen.esr >> 26, EC_DABT_SAME);
    assert_true(seen.esr & 1u << 25);    /* IL */
    assert_true(seen.esr & 1u << 6);     /* WnR, as the guest wrote */
    assert_int_equal(seen.esr & 0x3F, 0x10); /* synchronous external abort */
    assert_int_equal(seen.far, far);
    assert_int_equal(seen.elr, GUEST_PC); /* the faulting instruction */
    assert_int_equal(seen.spsr, SPSR_EL1H);
    assert_int_equal(f.elr, VBAR + 0x200);   /* current EL with SP_ELx, synchronous */
    assert_int_equal(f.spsr, 0x3C5);         /* EL1h, DAIF masked */
    assert_int_equal(f.x[2], 0x1002);
    assert_int_equal(v.refused, HV_REFUSED_ABORT);
    assert_int_equal(v.refused_what, ipa);
    assert_int_equal(v.refused_value, 1);
    assert_int_equal(seen.console_writes, 0);
}

static void test_injection_follows_the_guests_el_and_stack(void **state)
{
    (void)state;
    f.spsr = SPSR_EL1T;
    trap(EC_DABT_LOWER, dabt_iss(2, false, 1, false, false), 0x9050000, 0x9050000);
    assert_int_equal(f.elr, VBAR + 0x000);
    assert_int_equal(seen.esr >> 26, EC_DABT_SAME);
    assert_false(seen.esr & 1u << 6);
    f.spsr = SPSR_EL0, f.elr = 0x400000;
    trap(EC_DABT_LOWER, dabt_iss(2, false, 1, false, false), 0x9050000, 0x9050000);
    assert_int_equal(f.elr, VBAR + 0x400);
    assert_int_equal(seen.esr >> 26, EC_DABT_LOWER);
    assert_int_equal(seen.elr, 0x400000);
    assert_int_equal(seen.spsr, SPSR_EL0);
    assert_int_equal(v.injected, 2);
}

static void test_console_access_without_syndrome_is_refused(void **state)
{
    (void)state;
    /* An LDP or a write-back store gives no register in the syndrome: nothing to emulate. */
    trap(EC_DABT_LOWER, 1u << 6 | 0x07, CONSOLE, CONSOLE);
    assert_int_equal(seen.console_writes, 0);
    assert_int_equal(seen.injected, 1);
    assert_int_equal(v.refused, HV_REFUSED_ABORT);
    assert_int_equal(f.elr, VBAR + 0x200);
}

static void test_instruction_abort_and_others(void **state)
{
    (void)state;
    trap(EC_IABT_LOWER, 0x07, 0x7AA10000, 0x7AA10000);
    assert_int_equal(seen.esr >> 26, EC_IABT_SAME);
    assert_int_equal(seen.far, 0x7AA10000);
    assert_int_equal(v.refused_value, 2);
    f.elr = GUEST_PC, f.spsr = SPSR_EL1H;
    trap(0x18, 0x12345, 0, 0); /* a system register trap nothing configured */
    assert_int_equal(seen.esr >> 26, EC_UNKNOWN);
    assert_int_equal(seen.elr, GUEST_PC);
    assert_int_equal(f.elr, VBAR + 0x200);
    assert_int_equal(v.refused, HV_REFUSED_TRAP);
    assert_int_equal(v.injected, 2);
}

static void test_wfi_waits_then_steps_over(void **state)
{
    (void)state;
    trap(EC_WFX, 0, 0, 0);
    assert_int_equal(seen.waits, 1);
    assert_int_equal(f.elr, GUEST_PC + 4);
    assert_int_equal(v.wfx, 1);
    assert_int_equal(v.exits, 1);
    assert_int_equal(v.refusals + seen.injected, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_hvc_of_the_abi_reaches_the_server, reset_state),
        cmocka_unit_test_setup(test_hvc_of_no_call_is_not_supported, reset_state),
        cmocka_unit_test_setup(test_smc_passes_only_the_listed_psci_calls, reset_state),
        cmocka_unit_test_setup(test_cpu_on_is_the_hypervisors, reset_state),
        cmocka_unit_test_setup(test_cpu_off_system_off_and_features, reset_state),
        cmocka_unit_test_setup(test_console_data_register_write_is_passed, reset_state),
        cmocka_unit_test_setup(test_console_reads_as_the_instruction_asks, reset_state),
        cmocka_unit_test_setup(test_console_settings_are_the_hypervisors, reset_state),
        cmocka_unit_test_setup(test_abort_on_a_protected_page_is_injected, reset_state),
        cmocka_unit_test_setup(test_injection_follows_the_guests_el_and_stack, reset_state),
        cmocka_unit_test_setup(test_console_access_without_syndrome_is_refused, reset_state),
        cmocka_unit_test_setup(test_instruction_abort_and_others, reset_state),
        cmocka_unit_test_setup(test_wfi_waits_then_steps_over, reset_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
