/* The Arm self-test: what the guest checks from its side once the firmware runs at EL1
 * under the EL2 hypervisor. BOOTAA64.EFI's image as the firmware loaded it runs this (the
 * copy in the region is the hypervisor's); its console lines reach the hypervisor's channel
 * marked as the guest's, and its end is HC_GUEST_EXIT, whose status the verdict takes.
 *
 *   - it runs at EL1, and hypercalls work (HVC), with a null one's round trip measured
 *     against a plain call;
 *   - what the hypervisor keeps is out of its reach: reads and writes of the region (the
 *     audit's canary among it) and of the SMMU's registers end in an abort the hypervisor
 *     injects, at the address probed;
 *   - what the hypervisor refuses is refused: an HVC of no call, an SMC outside PSCI,
 *     PSCI CPU_SUSPEND;
 *   - every other CPU starts as a guest through PSCI CPU_ON (selftest_arm64_traps.S), makes
 *     a hypercall at EL1 and leaves with CPU_OFF;
 *   - the hypervisor's audit holds, named "arm-selftest". */
#include "common/arm64_cpus.h"
#include "common/loader_handoff.h"
#include "common/report.h"
#include "ddi/hypercall.h"
#include "guest/lib/guest.h"

_Static_assert(ARM64_CPU_CYCLE_CALL == 0xC6000000u + (HC_ABI_VERSION << 8) + HC_VERSION,
               "common/arm64_cpus.S makes HC_VERSION's call of this ABI");

#define PSCI_VERSION 0x84000000u
#define PSCI_CPU_SUSPEND 0x84000001u
#define SMCCC_SIP_CALL 0xC2000000u /* a silicon provider's call: no firmware here serves one */
#define SMCCC_NOT_SUPPORTED ((uint64_t)-1)
#define EC_DABT_SAME 0x25u
#define EC_IABT_SAME 0x21u

/* What selftest_arm64_traps.S records. */
struct selftest_arm64_trap {
    uint64_t count, esr, far, elr;
};
struct selftest_arm64_trap selftest_arm64_trap;
extern const uint8_t selftest_arm64_vectors[];

/* Every HVC this CPU makes, for the check against QEMU's own log of HVC exceptions
 * (tests/qemu/arm64_checks.py hvc_exits). */
static unsigned hvcs_made;

static uint64_t hvc(enum hc_call call, const void *block, uint64_t bytes)
{
    hvcs_made++;
    return guest_hypercall(hc_rax(call), (uint64_t)(uintptr_t)block, bytes);
}

static uint64_t hvc_raw(uint64_t fn)
{
    hvcs_made++;
    register uint64_t x0 __asm__("x0") = fn, x1 __asm__("x1") = 0, x2 __asm__("x2") = 0;
    __asm__ volatile("hvc #0" : "+r"(x0), "+r"(x1), "+r"(x2) : : "x3", "memory");
    return x0;
}

/* As a hypercall would be, without the HVC: what the exit costs on top. */
__attribute__((noinline)) static uint64_t plain_call(uint64_t x0, uint64_t x1, uint64_t x2)
{
    __asm__ volatile("" : "+r"(x0) : "r"(x1), "r"(x2) : "memory");
    return x0;
}

/* The firmware's own interrupts reach it at EL1 without the hypervisor (HCR_EL2.IMO clear):
 * 30 ms with IRQs unmasked, in which its timer ticks (tests/qemu/arm64_checks.py counts the
 * IRQs QEMU delivered from EL1 to EL1). */
static void let_interrupts_in(void)
{
    uint64_t daif, hz = tsc_hz(), t0 = tsc_read();
    __asm__ volatile("mrs %0, daif; msr daifclr, #2" : "=r"(daif));
    while (tsc_read() - t0 < hz * 30 / 1000)
        __asm__ volatile("wfi");
    __asm__ volatile("msr daif, %0" : : "r"(daif));
}

static void check_hypercalls(struct checks *c)
{
    uint64_t el;
    __asm__ volatile("mrs %0, CurrentEL" : "=r"(el));
    checkf(c, (el >> 2) == 1, "guest: the firmware runs at EL%lu", el >> 2);
    struct hc_version_block v = {0};
    uint64_t st = hvc(HC_VERSION, &v, sizeof v);
    checkf(c, st == 0 && v.abi_version == HC_ABI_VERSION, "guest: hypercall HC_VERSION by HVC: status 0x%lx, ABI %u",
           st, v.abi_version);
    enum { ROUNDS = 1000 };
    uint64_t t0 = tsc_read();
    for (unsigned i = 0; i < ROUNDS; i++)
        hvc(HC_VERSION, &v, sizeof v);
    uint64_t t1 = tsc_read();
    for (unsigned i = 0; i < ROUNDS; i++)
        plain_call(hc_smccc_function(HC_VERSION), (uint64_t)(uintptr_t)&v, sizeof v);
    uint64_t t2 = tsc_read(), hz = tsc_hz();
    sink_printf(out, "selftest: null hypercall round trip %lu ns, plain call %lu ns (mean of %u; counter at %lu Hz)\n",
                (t1 - t0) * (uint64_t)1000000000 / hz / ROUNDS, (t2 - t1) * (uint64_t)1000000000 / hz / ROUNDS, ROUNDS, hz);
}

/* ---- what the hypervisor keeps ---- */

static uint64_t vectors_install(void)
{
    uint64_t old;
    __asm__ volatile("mrs %0, vbar_el1" : "=r"(old));
    __asm__ volatile("msr vbar_el1, %0; isb" : : "r"((uint64_t)(uintptr_t)selftest_arm64_vectors));
    return old;
}

static void vectors_restore(uint64_t old)
{
    __asm__ volatile("msr vbar_el1, %0; isb" : : "r"(old));
}

/* A read (write false) or write of 8 bytes at pa must end in one abort at pa. */
static bool probe(uint64_t pa, bool write)
{
    uint64_t before = selftest_arm64_trap.count;
    volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)pa;
    if (write)
        *p = 0x5A5A5A5A5A5A5A5Aull;
    else
        (void)*p;
    __asm__ volatile("isb" ::: "memory");
    return selftest_arm64_trap.count == before + 1 && (selftest_arm64_trap.esr >> 26) == EC_DABT_SAME &&
           selftest_arm64_trap.far == pa;
}

static void check_protections(const struct loader_handoff *o, struct checks *c)
{
    uint64_t old = vectors_install();
    bool canary = probe(o->canary_pa, false), canary_w = probe(o->canary_pa + 8, true);
    bool start = probe(o->region_base, false), code = probe(o->image_base, true);
    bool end = probe(o->region_base + o->region_bytes - 8, false);
    bool smmu = o->iommu_units > 0 && probe(o->iommu_base[0], false) && probe(o->iommu_base[0] + 0x20, true);
    /* A branch into the hypervisor's code: an instruction abort, back at the caller. */
    uint64_t before = selftest_arm64_trap.count;
    ((void (*)(void))(uintptr_t)o->image_base)();
    bool fetch = selftest_arm64_trap.count == before + 1 && (selftest_arm64_trap.esr >> 26) == EC_IABT_SAME;
    vectors_restore(old);
    checkf(c, canary && canary_w, "guest: the audit's canary at 0x%lx: read and write abort", o->canary_pa);
    checkf(c, start && end && code,
           "guest: the region [0x%lx, 0x%lx) and the hypervisor's code in it at 0x%lx: reads and writes abort",
           o->region_base, o->region_base + o->region_bytes, o->image_base);
    checkf(c, fetch, "guest: a branch to the hypervisor's code takes an instruction abort");
    checkf(c, smmu, "guest: the SMMU's registers at 0x%lx: a read and a write abort", o->iommu_base[0]);
}

static void check_refusals(struct checks *c)
{
    /* Another version of this ABI reaches the server, which names the mismatch; a function
     * ID outside it (PSCI's, over the conduit it does not use) is no call at all. */
    uint64_t other_version = hvc_raw(0xC6000000u | (HC_ABI_VERSION + 1u) << 8), psci_hvc = hvc_raw(PSCI_VERSION);
    uint64_t sip = arm64_smc(SMCCC_SIP_CALL, 0, 0, 0), suspend = arm64_smc(PSCI_CPU_SUSPEND, 0, 0, 0);
    uint64_t version = arm64_smc(PSCI_VERSION, 0, 0, 0);
    checkf(c, other_version == (uint32_t)STATUS_REVISION_MISMATCH && psci_hvc == SMCCC_NOT_SUPPORTED,
           "guest: an HVC of another ABI version: 0x%lx (STATUS_REVISION_MISMATCH); PSCI_VERSION by HVC: 0x%lx "
           "(NOT_SUPPORTED)", other_version, psci_hvc);
    checkf(c, sip == SMCCC_NOT_SUPPORTED && suspend == SMCCC_NOT_SUPPORTED,
           "guest: an SMC to the silicon provider 0x%lx, PSCI CPU_SUSPEND 0x%lx (both NOT_SUPPORTED)", sip, suspend);
    checkf(c, version != SMCCC_NOT_SUPPORTED && (version >> 16 >= 1 || (version & 0xFFFF) >= 2),
           "guest: PSCI_VERSION passed on: %lu.%lu", version >> 16, version & 0xFFFF);
}

/* ---- every CPU ---- */

static unsigned secondary_hvcs;

static void check_secondaries(const struct loader_handoff *o, struct checks *c)
{
    for (unsigned i = 0; i < o->cpus && i < LOADER_HANDOFF_MAX_CPUS; i++) {
        struct arm64_cpu_cycle cpu;
        bool ok = arm64_cpu_cycle(o->secondary_mpidr[i], &cpu);
        secondary_hvcs += cpu.alive != 0;
        checkf(c, ok && cpu.status == (uint32_t)STATUS_INFO_LENGTH_MISMATCH,
               "guest: cpu with mpidr 0x%lx started by PSCI CPU_ON (0x%lx): ran at EL%lu, its hypercall answered "
               "0x%lx, then off (AFFINITY_INFO %lu)",
               o->secondary_mpidr[i], cpu.cpu_on, cpu.el, cpu.status, cpu.affinity);
    }
}

static void check_audit(struct checks *c)
{
    struct hc_audit_block b = {.name = "arm-selftest"};
    uint64_t st = hvc(HC_AUDIT, &b, sizeof b);
    checkf(c, st == 0 && b.intact == HC_AUDIT_ALL, "guest: the hypervisor's audit %u: intact 0x%x of 0x%x",
           b.sequence, b.intact, HC_AUDIT_ALL);
}

_Noreturn void selftest_arm64_main(const struct loader_handoff *o)
{
    struct checks c = {0};
    sink_printf(out, "--- self-test (guest, EL1) ---\n");
    if (checkf(&c, o && o->magic == LOADER_HANDOFF_MAGIC, "guest: started by the loader, with its handoff")) {
        check_hypercalls(&c);
        let_interrupts_in();
        check_protections(o, &c);
        check_refusals(&c);
        check_secondaries(o, &c);
        check_audit(&c);
        c.run += o->loader_checks;
        c.failed += o->loader_failed;
    }
    sink_printf(out, "RESULT: %s (%u checks, %u failed)\n", c.failed ? "FAIL" : "PASS", c.run, c.failed);
    sink_printf(out, "selftest: %u HVCs made on this CPU and %u on the others, before HC_GUEST_EXIT\n", hvcs_made,
                secondary_hvcs);
    struct hc_guest_exit_block b = {.status = c.failed ? 0x8000000000000015ull : 0};
    hvc(HC_GUEST_EXIT, &b, sizeof b);
    for (;;)
        __asm__ volatile("wfi");
}
