/* The EL2 half of the hypervisor (Arm; see boot/hypervisor/hv.h and arch.h): stage 2 over
 * the guest's physical address space, each CPU's EL2 configuration, the firmware's demotion
 * to EL1, the CPUs PSCI CPU_ON starts, and the host side of every trap (el2_trap.c makes
 * the decisions). Freestanding: the loader makes the firmware calls.
 *
 * EL2 runs with its own stage 1 off (SCTLR_EL2.M = 0): every address it uses is the
 * physical one, so no table the guest could write decides what the hypervisor sees. Its
 * data accesses are then Device-nGnRnE, which is why everything it runs is built with
 * -mstrict-align; QEMU models no caches, and on hardware the guest's hypercall blocks would
 * need cleaning to the point of coherency first (docs/design.md). */
#include "hypervisor/hv.h"

#include "ddi/hc_server.h"
#include "hypervisor/arch.h"
#include "hypervisor/el2/el2_trap.h"
#include "hypervisor/hv_channel.h"
#include "iommu/pt_format.h"
#include "iommu/ranges.h"

_Static_assert(__builtin_offsetof(struct hv_cpu, arch) + __builtin_offsetof(struct hv_arch_cpu, stack_top) == 0,
               "el2_vectors.S finds the stack top at the start of struct hv_cpu");

#define SYSREG_READ(name) ({ uint64_t v_; __asm__ volatile("mrs %0, " name : "=r"(v_)); v_; })
#define SYSREG_WRITE(name, v) __asm__ volatile("msr " name ", %0" : : "r"((uint64_t)(v)) : "memory")

/* HCR_EL2: stage 2 on (VM), SMC trapped (TSC), WFI trapped (TWI: an idle CPU still exits,
 * for the audit; the hypervisor waits in its place), EL1 in AArch64 (RW), pointer
 * authentication not trapped
 * (API, APK: the firmware signs its return addresses). Interrupts (IMO, FMO, AMO clear) go
 * to the guest directly. */
#define HCR_VM (1ull << 0)
#define HCR_TWI (1ull << 13)
#define HCR_TSC (1ull << 19)
#define HCR_RW (1ull << 31)
#define HCR_APK (1ull << 40)
#define HCR_API (1ull << 41)
#define GUEST_HCR (HCR_VM | HCR_TWI | HCR_TSC | HCR_RW | HCR_APK | HCR_API)

/* VTCR_EL2 for a 48-bit IPA space: T0SZ 16, start at level 0 (SL0 2), 4 KiB granule,
 * inner-shareable write-back walks, PS 48 bits; bit 31 RES1. */
#define VTCR_48BIT (16ull | 2ull << 6 | 1ull << 8 | 1ull << 10 | 3ull << 12 | 5ull << 16 | 1ull << 31)
#define STAGE2_LEVELS 4u
#define IPA_BITS 48u
#define VMID 1ull
/* The guest's space is at least QEMU virt's whole map (its high PCIe window ends at 1 TiB). */
#define IPA_MIN_TOP (1ull << 40)

/* CPTR_EL2: nothing trapped (FP/SIMD and SVE are the guest's; the hypervisor uses neither);
 * its RES1 bits set. CNTHCTL_EL2: the physical counter and timer reachable from EL1. */
#define CPTR_EL2_RES1 0x32FFull
#define CNTHCTL_EL1PCTEN_EL1PCEN 3ull
#define MDCR_TDE (1ull << 8)
#define ICC_SRE_EL2_SRE_ENABLE 0x9ull /* system register interface, and EL1 may use it */
#define ICC_SRE_EL1_ALL 0x7ull
#define CPACR_FPEN_ZEN (3ull << 20 | 3ull << 16)
/* SCTLR_EL1's RES1 bits (29, 28, 23, 22, 20, 11), and the bits SCTLR_EL2 shares with it
 * (M, A, C, SA, I, WXN, EE), which the firmware's state at EL2 decides. */
#define SCTLR_EL1_RES1 0x30D00800ull
#define SCTLR_SHARED_WITH_EL2 (1ull << 0 | 1ull << 1 | 1ull << 2 | 1ull << 3 | 1ull << 12 | 1ull << 19 | 1ull << 25)
#define SPSR_EL1H 0x5ull
#define SPSR_DAIF 0x3C0ull

extern const uint8_t el2_vectors[];
extern void el2_secondary_entry(void);
extern _Noreturn void el2_resume_guest(struct el2_frame *f);
extern uint64_t el2_smc(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3);

static struct hv_cpu *this_cpu(void)
{
    return (struct hv_cpu *)(uintptr_t)SYSREG_READ("tpidr_el2");
}

/* The GIC's ITS writes to memory its tables and commands name (its device, collection and
 * interrupt translation tables) and makes the redistributors set LPI pending bits in the
 * pending tables they name, none of it through the SMMU: a guest that programs it can write
 * into the region (docs/security.md). So each ITS is turned off here, before the guest runs,
 * and its control frame (CTLR, CBASER, CWRITER, BASERn) is out of stage 2; with no ITS there
 * is no LPI, and the redistributors' LPI tables are only read. Off: GITS_CTLR.Enabled clear,
 * then Quiescent within 10 ms. */
#define GITS_CTLR 0x0u
#define GITS_CTLR_ENABLED 1u
#define GITS_CTLR_QUIESCENT (1u << 31)
#define GITS_CONTROL_FRAME 0x10000ull

static bool its_off(const struct hv *hv, uint64_t base)
{
    volatile uint32_t *ctlr = (volatile uint32_t *)(uintptr_t)(base + GITS_CTLR);
    *ctlr = *ctlr & ~GITS_CTLR_ENABLED;
    uint64_t start = hv->plat->now_ns(hv->plat->ctx);
    while (!(*ctlr & GITS_CTLR_QUIESCENT))
        if (hv->plat->now_ns(hv->plat->ctx) - start > 10000000ull)
            return false;
    return true;
}

/* ---- stage 2 ---- */

/* The guest's physical address space, one to one, without the region, the SMMUs' register
 * pages and the console's page (emulated). */
static bool build_stage2(struct hv *hv, const struct hv_setup *s, struct checks *c)
{
    struct remapping *r = hv->remap;
    uint64_t top = s->top > IPA_MIN_TOP ? (s->top + (1ull << 30) - 1) & ~((1ull << 30) - 1) : IPA_MIN_TOP;
    static struct addr_range ranges[REMAP_MAX_UNITS + 8];
    unsigned n = 1, cap = REMAP_MAX_UNITS + 8;
    ranges[0] = (struct addr_range){0, top};
    n = ranges_remove(ranges, n, cap, r->region_pa, r->region_pa + r->region_bytes);
    for (unsigned i = 0; i < r->units; i++)
        n = ranges_remove(ranges, n, cap, r->unit_ptr[i]->register_base,
                          r->unit_ptr[i]->register_base + SMMUV3_REGISTER_BYTES);
    n = ranges_remove(ranges, n, cap, hv->arch.console_base, hv->arch.console_base + PAGE_SIZE);
    for (unsigned i = 0; i < hv->arch.its_count; i++)
        n = ranges_remove(ranges, n, cap, hv->arch.its_base[i], hv->arch.its_base[i] + GITS_CONTROL_FRAME);
    enum iommu_status st = n <= cap && top <= 1ull << IPA_BITS
                               ? slpt_init(&hv->npt, &r->pool, STAGE2_LEVELS, SLPT_SUPERPAGE_2M | SLPT_SUPERPAGE_1G)
                               : IOMMU_ERANGE;
    if (st == IOMMU_OK)
        st = slpt_set_format(&hv->npt, &pt_arm_stage2);
    if (st == IOMMU_OK)
        st = ranges_identity_map(&hv->npt, ranges, n, SLPT_READ | SLPT_WRITE);
    hv->npt_top = top;
    hv->arch.ipa_top = top;
    return checkf(c, st == IOMMU_OK,
                  "stage 2: [0, %lu GiB) in %u pages of %s tables, less the region, %u SMMU register ranges, the "
                  "console's page and %u ITS control frames (%s)", top >> 30, hv->npt.table_pages, pt_arm_stage2.name,
                  r->units, hv->arch.its_count, iommu_status_name(st));
}

/* ---- each CPU's EL2 state ---- */

/* What every CPU's EL2 gets, the boot CPU's before its demotion and each CPU_ON'd one's. */
static void configure_el2(const struct hv *hv, struct hv_cpu *cpu)
{
    SYSREG_WRITE("vbar_el2", (uint64_t)(uintptr_t)el2_vectors);
    SYSREG_WRITE("tpidr_el2", (uint64_t)(uintptr_t)cpu);
    SYSREG_WRITE("vtcr_el2", hv->arch.vtcr);
    SYSREG_WRITE("vttbr_el2", hv->arch.vttbr);
    SYSREG_WRITE("cptr_el2", hv->arch.cptr);
    SYSREG_WRITE("cnthctl_el2", hv->arch.cnthctl);
    SYSREG_WRITE("cntvoff_el2", 0);
    /* Debug exceptions stay the guest's (MDCR_EL2.TDE clear): a breakpoint or watchpoint the
     * guest sets never fires at EL2, whatever the firmware left there. */
    SYSREG_WRITE("mdcr_el2", SYSREG_READ("mdcr_el2") & ~MDCR_TDE);
    /* The guest reads its own identity (ID registers are not trapped). */
    SYSREG_WRITE("vpidr_el2", SYSREG_READ("midr_el1"));
    SYSREG_WRITE("vmpidr_el2", SYSREG_READ("mpidr_el1"));
    SYSREG_WRITE("s3_4_c12_c9_5", SYSREG_READ("s3_4_c12_c9_5") | ICC_SRE_EL2_SRE_ENABLE); /* ICC_SRE_EL2 */
    __asm__ volatile("isb");
    SYSREG_WRITE("s3_0_c12_c12_5", ICC_SRE_EL1_ALL); /* ICC_SRE_EL1 */
    SYSREG_WRITE("cpacr_el1", CPACR_FPEN_ZEN);
    SYSREG_WRITE("hcr_el2", hv->arch.hcr);
    __asm__ volatile("isb; tlbi vmalls12e1; dsb nsh; isb" ::: "memory");
}

/* EL2's own translation off: from here every address the hypervisor uses is physical. */
static void el2_stage1_off(void)
{
    uint64_t sctlr = SYSREG_READ("sctlr_el2");
    SYSREG_WRITE("sctlr_el2", sctlr & ~(1ull << 0 | 1ull << 2));
    __asm__ volatile("isb; tlbi alle2; dsb nsh; isb" ::: "memory");
}

/* A frame at the CPU's stack top that enters the guest at EL1 (SP_EL1), entry(x0), with the
 * interrupt masks daif (SPSR's bits 9:6). */
static struct el2_frame *first_frame(struct hv_cpu *cpu, uint64_t entry, uint64_t x0, uint64_t daif)
{
    struct el2_frame *f = (struct el2_frame *)(cpu->arch.stack_top - EL2_FRAME_BYTES);
    *f = (struct el2_frame){.elr = entry, .spsr = SPSR_EL1H | (daif & SPSR_DAIF)};
    f->x[0] = x0;
    return f;
}

void hv_launch_el1(struct hv *hv, unsigned index, uint64_t entry, uint64_t arg, uint64_t stack)
{
    struct hv_cpu *cpu = &hv->cpu[index];
    /* The firmware's masks go on as they were, in the guest. From here on the hypervisor
     * takes no interrupt itself: one taken at EL2 (QEMU delivers the firmware's timer there
     * while PSTATE.I is clear) would land in the hypervisor's vectors as its own fault. */
    uint64_t daif = SYSREG_READ("daif");
    __asm__ volatile("msr daifset, #0xf; isb" ::: "memory");
    /* The firmware's translation and vectors at EL2 become the guest's at EL1: the same
     * tables (TTBR0 and MAIR), TCR's fields in EL1's places (TTBR1 walks off), the same
     * SCTLR bits. */
    uint64_t tcr = SYSREG_READ("tcr_el2");
    uint64_t tcr_el1 = (tcr & 0xFFFFull) | 1ull << 23 /* EPD1 */ | ((tcr >> 16) & 7ull) << 32 /* IPS from PS */ |
                       ((tcr >> 20) & 1ull) << 37 /* TBI0 */;
    SYSREG_WRITE("mair_el1", SYSREG_READ("mair_el2"));
    SYSREG_WRITE("ttbr0_el1", SYSREG_READ("ttbr0_el2"));
    SYSREG_WRITE("ttbr1_el1", 0);
    SYSREG_WRITE("tcr_el1", tcr_el1);
    SYSREG_WRITE("vbar_el1", SYSREG_READ("vbar_el2"));
    __asm__ volatile("isb");
    SYSREG_WRITE("sctlr_el1", SCTLR_EL1_RES1 | (SYSREG_READ("sctlr_el2") & SCTLR_SHARED_WITH_EL2));
    SYSREG_WRITE("sp_el1", stack);
    el2_stage1_off();
    configure_el2(hv, cpu);
    cpu->launched = true;
    el2_resume_guest(first_frame(cpu, entry, arg, daif));
}

/* A CPU the guest asked PSCI to start comes up here (el2_vectors.S), at EL2 with its MMU
 * off, on its own stack: the EL2 configuration, then the guest's entry point at EL1 with
 * the MMU off, as PSCI's CPU_ON promises. */
_Noreturn void el2_secondary_start(struct hv_cpu *cpu);
_Noreturn void el2_secondary_start(struct hv_cpu *cpu)
{
    SYSREG_WRITE("sctlr_el1", SCTLR_EL1_RES1);
    configure_el2(the_hv, cpu);
    __atomic_store_n(&cpu->launched, true, __ATOMIC_RELEASE);
    __atomic_store_n(&cpu->arch.starting, false, __ATOMIC_RELEASE);
    sink_printf(out, "hv: cpu %u (mpidr 0x%lx) starts as a guest at 0x%lx (PSCI CPU_ON)\n", cpu->index,
                cpu->arch.mpidr, cpu->arch.guest_entry);
    el2_resume_guest(first_frame(cpu, cpu->arch.guest_entry, cpu->arch.guest_context, SPSR_DAIF));
}

/* ---- the host side of each trap ---- */

static uint64_t host_hypercall(void *ctx, uint64_t rax, uint64_t rcx, uint64_t rdx)
{
    (void)ctx;
    return hc_dispatch(rax, rcx, rdx);
}

static uint64_t host_psci(void *ctx, uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3)
{
    (void)ctx;
    return el2_smc(fn, a1, a2, a3);
}

static uint64_t host_cpu_on(void *ctx, uint64_t mpidr, uint64_t entry, uint64_t context)
{
    (void)ctx;
    struct hv *hv = the_hv;
    struct hv_cpu *cpu = NULL;
    for (unsigned i = 0; i < hv->cpus && !cpu; i++)
        if ((hv->cpu[i].arch.mpidr & 0xFF00FFFFFFull) == (mpidr & 0xFF00FFFFFFull))
            cpu = &hv->cpu[i];
    if (!cpu)
        return PSCI_INVALID_PARAMETERS;
    /* PSCI's answer for an entry point the caller may not run: the CPU would start at EL1
     * there, take the abort at a vector it has not set, and never come back. */
    if (!hc_in_guest_ram(entry, 4))
        return PSCI_INVALID_ADDRESS;
    bool idle = false;
    if (!__atomic_compare_exchange_n(&cpu->arch.starting, &idle, true, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return (uint64_t)-4; /* ALREADY_ON: a start is under way */
    cpu->arch.guest_entry = entry;
    cpu->arch.guest_context = context;
    uint64_t st = el2_smc(PSCI_CPU_ON | PSCI_SMC64, cpu->arch.mpidr, (uint64_t)(uintptr_t)el2_secondary_entry,
                          (uint64_t)(uintptr_t)cpu);
    if (st)
        __atomic_store_n(&cpu->arch.starting, false, __ATOMIC_RELEASE);
    return st;
}

static uint64_t host_cpu_off(void *ctx)
{
    (void)ctx;
    struct hv_cpu *cpu = this_cpu();
    sink_printf(out, "hv: cpu %u leaves the guest: PSCI CPU_OFF\n", cpu->index);
    __atomic_store_n(&cpu->launched, false, __ATOMIC_RELEASE);
    __atomic_store_n(&cpu->in_exit, false, __ATOMIC_RELEASE);
    uint64_t st = el2_smc(PSCI_CPU_OFF, 0, 0, 0);
    __atomic_store_n(&cpu->launched, true, __ATOMIC_RELEASE); /* it did not go */
    return st;
}

static void host_machine_off(void *ctx, bool reset)
{
    (void)ctx;
    hv_verdict(reset ? "the guest reset the machine; the hypervisor powers it off"
                     : "the guest powered the machine off; the hypervisor does it",
               true);
    hv_arch_power_off();
}

static uint32_t host_console_read(void *ctx, unsigned offset)
{
    (void)ctx;
    return *(volatile uint32_t *)(uintptr_t)(the_hv->arch.console_base + offset);
}

static void host_console_write(void *ctx, unsigned offset, uint32_t value)
{
    (void)ctx;
    if (offset == PL011_DR) {
        char ch = (char)value;
        hv_channel_guest_write(&ch, 1);
    } else {
        *(volatile uint32_t *)(uintptr_t)(the_hv->arch.console_base + offset) = value;
    }
}

/* The guest's WFI, done here: a pending interrupt wakes the CPU wherever it is routed. */
static void host_wait(void *ctx)
{
    (void)ctx;
    __asm__ volatile("dsb sy; wfi" ::: "memory");
}

static uint64_t host_vbar_el1(void *ctx)
{
    (void)ctx;
    return SYSREG_READ("vbar_el1");
}

static void host_set_el1_exception(void *ctx, uint64_t esr, uint64_t far, uint64_t elr, uint64_t spsr)
{
    (void)ctx;
    SYSREG_WRITE("esr_el1", esr);
    SYSREG_WRITE("far_el1", far);
    SYSREG_WRITE("elr_el1", elr);
    SYSREG_WRITE("spsr_el1", spsr);
}

static struct el2_trap_ops host_ops = {.hypercall = host_hypercall, .psci = host_psci, .cpu_on = host_cpu_on,
                                       .cpu_off = host_cpu_off, .machine_off = host_machine_off,
                                       .console_read = host_console_read, .console_write = host_console_write,
                                       .wait = host_wait, .vbar_el1 = host_vbar_el1, .set_el1_exception = host_set_el1_exception};

/* For el2_vectors.S: one trap from the guest. */
void el2_trap(struct el2_frame *f, uint64_t kind);
void el2_trap(struct el2_frame *f, uint64_t kind)
{
    struct hv_cpu *cpu = this_cpu();
    struct el2_syndrome s = {SYSREG_READ("esr_el2"), SYSREG_READ("far_el2"), SYSREG_READ("hpfar_el2")};
    if (kind != 0) /* an IRQ, FIQ or SError routed here, or an AArch32 guest: none is configured */
        s.esr = 0;
    uint64_t refusals = cpu->vcpu.refusals;
    __atomic_store_n(&cpu->exit_started_ns, the_hv->plat->now_ns(the_hv->plat->ctx), __ATOMIC_RELAXED);
    __atomic_store_n(&cpu->in_exit, true, __ATOMIC_RELEASE);
    el2_handle_trap(f, &s, &cpu->vcpu, &host_ops);
    const struct hv_vcpu *v = &cpu->vcpu;
    if (v->refusals != refusals && v->refused != HV_REFUSED_ABORT)
        hv_log_refusal(cpu);
    else if (v->refusals != refusals &&
             hv_refusal_shown(cpu, (uint64_t)HV_REFUSED_ABORT << 56 ^ v->refused_what << 2 ^ v->refused_value,
                              v->refusals))
        sink_printf(out, "hv: cpu %u: guest %s 0x%lx at pc 0x%lx refused: abort injected (refusal %lu)\n", cpu->index,
                    v->refused_value == 2 ? "fetch from" : v->refused_value ? "write to" : "read of", v->refused_what,
                    SYSREG_READ("elr_el1"), v->refusals);
    hc_collect_faults_unless_busy();
    __atomic_store_n(&cpu->in_exit, false, __ATOMIC_RELEASE);
}

/* For el2_vectors.S: an exception in the hypervisor itself. No CPU may go on in an unknown
 * state, and none may be handed back to the guest: the machine ends, with the verdict. */
_Noreturn void el2_host_fault(struct el2_frame *f, uint64_t kind);
_Noreturn void el2_host_fault(struct el2_frame *f, uint64_t kind)
{
    char line[160];
    size_t n = fmt_format(line, sizeof line, "hv: exception %lu in the hypervisor: ESR_EL2 0x%lx at 0x%lx, FAR 0x%lx\n",
                          kind, SYSREG_READ("esr_el2"), f->elr, SYSREG_READ("far_el2"));
    hv_channel_write_unlocked(line, n);
    hv_arch_power_off();
}

/* ---- what hypervisor/arch.h asks of the architecture ---- */

unsigned hv_arch_this_cpu(void)
{
    struct hv_cpu *cpu = this_cpu();
    return cpu ? cpu->index : 0;
}

/* A CPU in the guest exits on its next WFI or WFE (trapped), trap or hypercall: there is
 * no interrupt the hypervisor can send it without taking the guest's GIC (docs/security.md:
 * a CPU spinning in the guest without any of those is reported as gone by the audit). */
void hv_arch_kick(const struct hv_cpu *cpu)
{
    (void)cpu;
    __asm__ volatile("dsb ish; sev" ::: "memory");
}

void hv_arch_relax(void)
{
    __asm__ volatile("yield");
}

static const char *const refusal_names[] = {
    [HV_REFUSED_ABORT] = "access to", [HV_REFUSED_SMC] = "SMC function", [HV_REFUSED_HVC] = "HVC function",
    [HV_REFUSED_CONSOLE] = "console register write at", [HV_REFUSED_TRAP] = "trap with ESR",
};

const char *hv_arch_refusal_name(unsigned kind)
{
    return kind < sizeof refusal_names / sizeof refusal_names[0] && refusal_names[kind] ? refusal_names[kind]
                                                                                         : "access";
}

void hv_arch_print_cpu_counts(const struct hv_cpu *cpu)
{
    const struct hv_vcpu *v = &cpu->vcpu;
    sink_printf(out,
                "hv: cpu %u: %lu exits: %lu hypercalls, %lu SMC (%lu CPU_ON), %lu aborts (%lu console accesses), "
                "%lu WFI, %lu injected, %lu refusals\n",
                cpu->index, v->exits, v->hypercalls, v->smcs, v->psci_cpu_on, v->aborts, v->console_accesses, v->wfx,
                v->injected, v->refusals);
}

/* RNDR (FEAT_RNG) where the CPU has it, else the counter stirred. */
uint64_t hv_arch_random64(void)
{
    uint64_t v = 0;
    if (SYSREG_READ("id_aa64isar0_el1") >> 60) {
        uint64_t ok = 0;
        for (unsigned i = 0; i < 10 && !ok; i++)
            __asm__ volatile("mrs %0, s3_3_c2_c4_0; cset %1, ne" : "=r"(v), "=r"(ok)::"cc");
    }
    uint64_t z = v ^ SYSREG_READ("cntpct_el0") ^ 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

_Noreturn void hv_arch_power_off(void)
{
    el2_smc(PSCI_SYSTEM_OFF, 0, 0, 0);
    for (;;)
        __asm__ volatile("wfi");
}

/* ---- preparing ---- */

bool hv_arch_prepare(struct hv *hv, const struct hv_setup *s, struct checks *c)
{
    uint64_t mmfr0 = SYSREG_READ("id_aa64mmfr0_el1");
    unsigned parange = (unsigned)(mmfr0 & 0xF), vmid16 = (unsigned)(SYSREG_READ("id_aa64mmfr1_el1") >> 4 & 0xF);
    if (!checkf(c, parange >= 5 && (mmfr0 >> 40 & 0xF) != 1 /* TGran4_2 */,
                "CPU at EL2 with stage 2: PARange %u (48 bits or more), 4 KiB stage-2 granule (VMID bits field %u)",
                parange, vmid16))
        return false;
    hv->arch.hcr = GUEST_HCR;
    hv->arch.vtcr = VTCR_48BIT;
    hv->arch.cptr = CPTR_EL2_RES1;
    hv->arch.cnthctl = CNTHCTL_EL1PCTEN_EL1PCEN;
    hv->arch.console_base = s->console_base;
    hv->arch.its_count = s->its_count < 4 ? s->its_count : 4;
    for (unsigned i = 0; i < hv->arch.its_count; i++) {
        hv->arch.its_base[i] = s->its_base[i];
        if (!checkf(c, its_off(hv, s->its_base[i]), "GIC ITS at 0x%lx off and withheld from the guest (no LPI reaches "
                    "memory)", s->its_base[i]))
            return false;
    }
    hv->arch.psci_version = el2_smc(PSCI_VERSION, 0, 0, 0);
    if (!hv_start_ddi(s, c) || !build_stage2(hv, s, c) || !hv_prepare_audit(hv, c))
        return false;
    hv->arch.vttbr = hv->npt.root_pa | VMID << 48;
    host_ops.console_base = hv->arch.console_base;
    return checkf(c, hv->arch.psci_version != PSCI_NOT_SUPPORTED,
                  "PSCI %lu.%lu from the firmware, over SMC: CPU_ON and CPU_OFF are the hypervisor's",
                  hv->arch.psci_version >> 16, hv->arch.psci_version & 0xFFFF);
}

bool hv_arch_prepare_cpu(struct hv *hv, struct hv_cpu *cpu, struct checks *c)
{
    uint64_t stack_pa;
    uint8_t *stack = hv_region_pages(hv->remap, HV_STACK_PAGES, &stack_pa);
    if (!checkf(c, stack != NULL, "cpu %u (mpidr 0x%lx): a stack in the reserved region", cpu->index, cpu->arch.mpidr))
        return false;
    cpu->arch.stack_top = stack + HV_STACK_PAGES * PAGE_SIZE;
    return true;
}
