/* See el2_trap.h: the decisions on each trap from the guest. */
#include "hypervisor/el2/el2_trap.h"

#include "ddi/hypercall.h"

#define ESR_EC(esr) ((uint32_t)((esr) >> 26) & 0x3Fu)
#define ESR_IL (1u << 25)
#define ISS_ISV (1u << 24)
#define ISS_SAS(iss) (((iss) >> 22) & 3u)
#define ISS_SSE (1u << 21)
#define ISS_SRT(iss) (((iss) >> 16) & 0x1Fu)
#define ISS_SF (1u << 15)
#define ISS_WNR (1u << 6)
#define DFSC_SYNC_EXTERNAL 0x10u

#define SPSR_EL_MASK 0xCu
#define SPSR_EL1 0x4u
#define SPSR_SPX 1u
#define SPSR_EL1H_MASKED 0x3C5u /* EL1 with SP_EL1, D, A, I and F masked: an exception's entry */
#define VECTOR_SAME_SP0 0x000u
#define VECTOR_SAME_SPX 0x200u
#define VECTOR_LOWER_A64 0x400u

static void refuse(struct hv_vcpu *v, enum hv_refusal kind, uint64_t what, uint64_t value)
{
    v->refusals++;
    v->refused = kind;
    v->refused_what = what;
    v->refused_value = value;
}

/* Takes the guest to its own synchronous exception vector, as if the CPU had raised the
 * exception there: ec is the class the guest's EL sees (the "same EL" form from EL1,
 * "lower EL" from EL0), iss the syndrome's low bits, far the address for aborts. */
static void inject(struct el2_frame *f, struct hv_vcpu *v, const struct el2_trap_ops *ops, uint32_t ec_same,
                   uint32_t ec_lower, uint32_t iss, uint64_t far)
{
    bool from_el1 = (f->spsr & SPSR_EL_MASK) == SPSR_EL1;
    uint32_t ec = from_el1 ? ec_same : ec_lower;
    uint64_t offset = !from_el1 ? VECTOR_LOWER_A64 : (f->spsr & SPSR_SPX) ? VECTOR_SAME_SPX : VECTOR_SAME_SP0;
    ops->set_el1_exception(ops->ctx, (uint64_t)ec << 26 | ESR_IL | iss, far, f->elr, f->spsr);
    f->elr = ops->vbar_el1(ops->ctx) + offset;
    f->spsr = SPSR_EL1H_MASKED;
    v->injected++;
}

static void inject_undefined(struct el2_frame *f, struct hv_vcpu *v, const struct el2_trap_ops *ops)
{
    inject(f, v, ops, EC_UNKNOWN, EC_UNKNOWN, 0, 0);
}

static uint64_t reg_read(const struct el2_frame *f, unsigned r)
{
    return r == 31 ? 0 : f->x[r]; /* register 31 is XZR in a load or store */
}

static void reg_write(struct el2_frame *f, unsigned r, uint64_t value)
{
    if (r != 31)
        f->x[r] = value;
}

/* A load or store to the console's page, from a syndrome that describes it (ISV set). */
static void console_access(struct el2_frame *f, uint32_t iss, unsigned offset, struct hv_vcpu *v,
                           const struct el2_trap_ops *ops)
{
    unsigned bytes = 1u << ISS_SAS(iss), r = ISS_SRT(iss);
    v->console_accesses++;
    if (iss & ISS_WNR) {
        uint32_t value = (uint32_t)reg_read(f, r);
        if (offset == PL011_DR || offset == PL011_IMSC || offset == PL011_ICR)
            ops->console_write(ops->ctx, offset, value);
        else
            refuse(v, HV_REFUSED_CONSOLE, offset, value); /* the line settings are the hypervisor's */
    } else {
        uint64_t value = ops->console_read(ops->ctx, offset & ~3u) >> (8 * (offset & 3u));
        if (bytes < 8)
            value &= (1ull << (8 * bytes)) - 1;
        if ((iss & ISS_SSE) && bytes < 8 && (value >> (8 * bytes - 1) & 1))
            value |= ~0ull << (8 * bytes);
        if (!(iss & ISS_SF))
            value &= 0xFFFFFFFFull;
        reg_write(f, r, value);
    }
    f->elr += 4;
}

static void data_abort(struct el2_frame *f, const struct el2_syndrome *s, struct hv_vcpu *v,
                       const struct el2_trap_ops *ops)
{
    uint32_t iss = (uint32_t)s->esr & 0x1FFFFFFu;
    uint64_t ipa = el2_fault_ipa(s);
    v->aborts++;
    if (ops->console_base && ipa - ops->console_base < 0x1000 && (iss & ISS_ISV)) {
        console_access(f, iss, (unsigned)(ipa - ops->console_base), v, ops);
        return;
    }
    refuse(v, HV_REFUSED_ABORT, ipa, iss & ISS_WNR ? 1 : 0);
    inject(f, v, ops, EC_DABT_SAME, EC_DABT_LOWER, (iss & ISS_WNR) | DFSC_SYNC_EXTERNAL, s->far);
}

static bool psci_passed(uint32_t fn)
{
    return fn == PSCI_VERSION || fn == PSCI_AFFINITY_INFO || fn == (PSCI_AFFINITY_INFO | PSCI_SMC64) ||
           fn == PSCI_MIGRATE_INFO_TYPE;
}

static bool psci_served(uint32_t fn)
{
    return psci_passed(fn) || fn == PSCI_CPU_ON || fn == (PSCI_CPU_ON | PSCI_SMC64) || fn == PSCI_CPU_OFF ||
           fn == PSCI_SYSTEM_OFF || fn == PSCI_SYSTEM_RESET || fn == PSCI_FEATURES;
}

static void smc(struct el2_frame *f, struct hv_vcpu *v, const struct el2_trap_ops *ops)
{
    uint64_t fn64 = f->x[0];
    uint32_t fn = (uint32_t)fn64;
    v->smcs++;
    f->elr += 4; /* a trapped SMC returns to itself */
    if (fn64 >> 32) {
        refuse(v, HV_REFUSED_SMC, fn64, 0);
        f->x[0] = PSCI_NOT_SUPPORTED;
    } else if (psci_passed(fn)) {
        f->x[0] = ops->psci(ops->ctx, fn, f->x[1], f->x[2], f->x[3]);
    } else if (fn == PSCI_CPU_ON || fn == (PSCI_CPU_ON | PSCI_SMC64)) {
        v->psci_cpu_on++;
        uint64_t entry = fn == PSCI_CPU_ON ? (uint32_t)f->x[2] : f->x[2];
        uint64_t context = fn == PSCI_CPU_ON ? (uint32_t)f->x[3] : f->x[3];
        f->x[0] = ops->cpu_on(ops->ctx, f->x[1], entry, context);
    } else if (fn == PSCI_CPU_OFF) {
        f->x[0] = ops->cpu_off(ops->ctx);
    } else if (fn == PSCI_SYSTEM_OFF || fn == PSCI_SYSTEM_RESET) {
        ops->machine_off(ops->ctx, fn == PSCI_SYSTEM_RESET);
        f->x[0] = PSCI_NOT_SUPPORTED; /* not reached */
    } else if (fn == PSCI_FEATURES) {
        f->x[0] = psci_served((uint32_t)f->x[1]) ? 0 : PSCI_NOT_SUPPORTED;
    } else {
        refuse(v, HV_REFUSED_SMC, fn, 0);
        f->x[0] = PSCI_NOT_SUPPORTED;
    }
}

static void hvc(struct el2_frame *f, struct hv_vcpu *v, const struct el2_trap_ops *ops)
{
    uint64_t rax;
    if (hc_rax_from_smccc(f->x[0], &rax)) {
        v->hypercalls++;
        f->x[0] = ops->hypercall(ops->ctx, rax, f->x[1], f->x[2]);
    } else {
        refuse(v, HV_REFUSED_HVC, f->x[0], 0);
        f->x[0] = PSCI_NOT_SUPPORTED;
    }
}

enum el2_trap_result el2_handle_trap(struct el2_frame *f, const struct el2_syndrome *s, struct hv_vcpu *v,
                                     const struct el2_trap_ops *ops)
{
    v->exits++;
    switch (ESR_EC(s->esr)) {
    case EC_HVC64:
        hvc(f, v, ops);
        break;
    case EC_SMC64:
        smc(f, v, ops);
        break;
    case EC_DABT_LOWER:
        data_abort(f, s, v, ops);
        break;
    case EC_IABT_LOWER:
        v->aborts++;
        refuse(v, HV_REFUSED_ABORT, el2_fault_ipa(s), 2);
        inject(f, v, ops, EC_IABT_SAME, EC_IABT_LOWER, DFSC_SYNC_EXTERNAL, s->far);
        break;
    case EC_WFX: /* only WFI traps (TWI) */
        v->wfx++;
        ops->wait(ops->ctx);
        f->elr += 4;
        break;
    default:
        refuse(v, HV_REFUSED_TRAP, s->esr, f->elr);
        inject_undefined(f, v, ops);
        break;
    }
    return EL2_RESUME;
}
