/* HOSTILE.EFI on Arm: the attacker of docs/security.md ("On Arm: the EL2 hypervisor", "PSCI
 * on Arm"), run as the EL2 hypervisor's guest at EL1 (scripts/run.sh --arch arm64 --payload
 * hostile --smp 2). Written from the documentation and the public headers only. Class by
 * class it attacks what the documentation says is kept, then asks the hypervisor to audit
 * itself (HC_AUDIT, with what it read where the secret lives, if anything) and prints
 *
 *   hostile: CLASS: what was tried and what the guest saw
 *   check: PASS|FAIL class CLASS: summary
 *
 * A class passes when every attack was refused the documented way and the audit says every
 * HC_AUDIT_ALL bit intact. The image returns EFI_SUCCESS only when every class passed.
 * The classes: memory, console, hypercall, cpus, psci, gic (last: a documented known limit).
 * The EL1 pieces (vectors, probes, the hypercall instructions, the secondary's entry) are in
 * hostile_arm64_traps.S. */
#include <efi.h>
#include <efilib.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/edu.h"
#include "common/loader_handoff.h"
#include "common/report.h"
#include "ddi/hypercall.h"
#include "guest/lib/ddi_protocol.h"
#include "guest/lib/guest.h"
#include "iommu/fmt.h"

/* ---- hostile_arm64_traps.S ---- */

struct hx_rec {
    volatile uint64_t count, esr, far, elr;
};
extern struct hx_rec hx_rec[8];
extern volatile uint64_t hx_other_count;
extern char hx_vectors[];
extern uint64_t hx_probe(uint64_t op, uint64_t addr, uint64_t val, uint64_t mmu_off);
extern uint64_t hx_call(uint64_t smc, uint64_t x0, uint64_t x1, uint64_t x2, uint64_t x3);
extern void hx_hvc_regs(uint64_t r[18]);
extern void hx_cpu1_entry(void);
extern void hx_ret(void);

#define CONDUIT_HVC 0
#define CONDUIT_SMC 1

/* ---- the machine (QEMU virt) ---- */

#define PL011 0x09000000ull
#define GICD 0x08000000ull
#define GITS 0x08080000ull
#define GICR 0x080A0000ull
#define MARKER 0x4b43415454414821ull /* "!HATTACK" */

/* PSCI and SMCCC */
#define PSCI_VERSION 0x84000000u
#define PSCI_CPU_SUSPEND64 0xC4000001u
#define PSCI_CPU_OFF 0x84000002u
#define PSCI_CPU_ON64 0xC4000003u
#define PSCI_AFFINITY_INFO64 0xC4000004u
#define PSCI_MIGRATE64 0xC4000005u
#define PSCI_MIGRATE_INFO_TYPE 0x84000006u
#define PSCI_SYSTEM_OFF 0x84000008u
#define PSCI_FEATURES 0x8400000Au
#define PSCI_SYSTEM_SUSPEND64 0xC400000Eu
#define SMCCC_VERSION 0x80000000u
#define SMCCC_ARCH_WORKAROUND_1 0x80008000u
#define SMCCC_SIP 0xC2000000u
#define PSCI_NOT_SUPPORTED (-1)
#define PSCI_INVALID_PARAMETERS (-2)
#define PSCI_ALREADY_ON (-4)
#define PSCI_ON_PENDING (-5)

static const struct loader_handoff *H;
static struct checks C;
static uint64_t leaked;      /* the secret, if any read of canary_pa ever succeeded */
static uint64_t ram_lo = ~0ull, ram_hi;
static uint64_t region_end;
static uint8_t *page;        /* a scratch page of ours */
static uint64_t page_pa;
static uint64_t pbuf_pa;     /* a page for HC_POLL's reports */
static unsigned classes_failed;

/* ---- small helpers ---- */

static void hl(const char *cls, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void hl(const char *cls, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    fmt_vformat(line, sizeof line, fmt, ap);
    va_end(ap);
    sink_printf(out, "hostile: %s: %s\n", cls, line);
}

static unsigned this_cpu(void)
{
    uint64_t m;
    __asm__ volatile("mrs %0, mpidr_el1" : "=r"(m));
    return (unsigned)(m & 7);
}

static uint64_t my_mpidr(void)
{
    uint64_t m;
    __asm__ volatile("mrs %0, mpidr_el1" : "=r"(m));
    return m & 0xff00ffffffull;
}

static uint64_t current_el(void)
{
    uint64_t v;
    __asm__ volatile("mrs %0, CurrentEL" : "=r"(v));
    return v;
}

static uint64_t counter_hz(void)
{
    uint64_t v = tsc_hz();
    return v ? v : 62500000;
}

static void spin_us(uint64_t us)
{
    uint64_t end = tsc_read() + us * counter_hz() / 1000000;
    while (tsc_read() < end)
        __asm__ volatile("yield");
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static uint8_t *alloc_pages(UINTN n, uint64_t *pa)
{
    EFI_PHYSICAL_ADDRESS addr = 0;
    if (EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateAnyPages, EfiLoaderData, n, &addr)))
        return NULL;
    volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)addr;
    for (UINTN i = 0; i < n * 4096; i++)
        p[i] = 0;
    *pa = addr;
    return (uint8_t *)(uintptr_t)addr;
}

static uint64_t hc(enum hc_call call, uint64_t block, uint64_t size)
{
    return hx_call(CONDUIT_HVC, hc_smccc_function(call), block, size, 0);
}

static uint64_t smc(uint64_t fid, uint64_t a, uint64_t b, uint64_t c)
{
    return hx_call(CONDUIT_SMC, fid, a, b, c);
}

#define ST(x) ((uint64_t)(uint32_t)(x))

static int64_t s32(uint64_t v)
{
    return (int32_t)(uint32_t)v;
}

/* ---- the audit ---- */

static unsigned audits_failed;

/* HC_AUDIT; true when served and every HC_AUDIT_ALL bit is set. */
static bool audit_named(const char *cls, const char *name, unsigned name_len, uint64_t claimed, uint32_t *intact_out)
{
    struct hc_audit_block b;
    volatile uint8_t *z = (volatile uint8_t *)&b;
    for (unsigned i = 0; i < sizeof b; i++)
        z[i] = 0;
    for (unsigned i = 0; i < name_len && i < HC_AUDIT_NAME_BYTES; i++)
        b.name[i] = name[i];
    b.claimed_secret = claimed;
    uint64_t st = hc(HC_AUDIT, (uint64_t)(uintptr_t)&b, sizeof b);
    bool ok = st == 0 && b.intact == HC_AUDIT_ALL;
    hl(cls, "audit: status 0x%lx, sequence %u, intact 0x%x of 0x%x%s; claimed secret 0x%lx", st, b.sequence, b.intact,
       HC_AUDIT_ALL, ok ? "" : " (NOT ALL INTACT)", claimed);
    if (intact_out)
        *intact_out = st == 0 ? b.intact : 0;
    return ok;
}

static bool audit(const char *cls, uint32_t *intact_out)
{
    unsigned n = 0;
    while (cls[n])
        n++;
    bool ok = audit_named(cls, cls, n, leaked, intact_out);
    audits_failed += !ok;
    return ok;
}

static const char *intact_text(uint32_t v, char *buf, size_t n)
{
    fmt_format(buf, n, "%s%s%s%s%s", v & HC_AUDIT_SECRET_KEPT ? "" : " SECRET-LEAKED", v & HC_AUDIT_CANARY ? "" : " CANARY-CHANGED",
               v & HC_AUDIT_CODE ? "" : " CODE-CHANGED", v & HC_AUDIT_IOMMU ? "" : " IOMMU-CHANGED",
               v & HC_AUDIT_CPUS ? "" : " CPU-NOT-A-GUEST");
    if (!buf[0])
        fmt_format(buf, n, " all intact");
    return buf;
}

static bool class_end(const char *cls, bool attacks_refused, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool class_end(const char *cls, bool attacks_refused, const char *fmt, ...)
{
    char what[160], bits[96];
    va_list ap;
    va_start(ap, fmt);
    fmt_vformat(what, sizeof what, fmt, ap);
    va_end(ap);
    uint32_t intact = 0;
    bool a = audit(cls, &intact);
    bool ok = attacks_refused && a;
    checkf(&C, ok, "class %s: %s; audit:%s", cls, what, intact_text(intact, bits, sizeof bits));
    classes_failed += !ok;
    return ok;
}

/* ---- probes ---- */

struct opinfo {
    const char *name;
    char kind; /* r read, w write, x fetch, o other (may legitimately not fault) */
};
static const struct opinfo OPS[] = {
    {"ldr", 'r'},     {"ldrb", 'r'},    {"ldp", 'r'},      {"ldr-post", 'r'}, {"ldr-pre", 'r'},    {"ldxr", 'r'},
    {"ldar", 'r'},    {"ldr-q", 'r'},   {"ldtr", 'r'},     {"ldrsw", 'r'},    {"str", 'w'},        {"strb", 'w'},
    {"stp", 'w'},     {"str-post", 'w'}, {"str-pre", 'w'}, {"stlr", 'w'},     {"stxr", 'o'},       {"str-q", 'w'},
    {"dc-zva", 'w'},  {"fetch", 'x'},   {"strh", 'w'},     {"ldrh", 'r'},     {"str-w", 'w'},      {"ldr-w", 'r'},
    {"ldr-wzr", 'r'}, {"str-wzr", 'w'}, {"strb-wzr", 'w'}, {"ldr-xzr", 'r'},  {"ldrsb", 'r'},      {"stnp", 'w'},
    {"ldnp", 'r'},    {"dc-civac", 'o'}, {"ldr-pre4", 'r'}, {"sttr", 'w'},    {"ldapr", 'r'},      {"swp", 'w'},
    {"ldadd", 'w'},   {"ldrsb-w", 'r'}, {"stlrb", 'w'},
};
#define NOPS (sizeof OPS / sizeof OPS[0])
enum { OP_LDR = 0, OP_LDRB = 1, OP_LDP = 2, OP_LDR_POST = 3, OP_LDR_Q = 7, OP_LDRSW = 9, OP_STR = 10, OP_STRB = 11,
       OP_STP = 12, OP_STR_POST = 13, OP_STR_PRE = 14, OP_STXR = 16, OP_STR_Q = 17, OP_DC_ZVA = 18, OP_FETCH = 19,
       OP_STRH = 20, OP_STR_W = 22, OP_LDR_W = 23, OP_LDR_WZR = 24, OP_STR_WZR = 25, OP_STRB_WZR = 26,
       OP_LDR_XZR = 27, OP_LDRSB = 28, OP_STNP = 29, OP_LDNP = 30, OP_LDR_PRE4 = 32, OP_SWP = 35, OP_LDADD = 36,
       OP_LDRSB_W = 37, OP_STLRB = 38, OP_LDXR = 5, OP_LDAR = 6 };

struct pr {
    bool faulted;
    uint64_t esr, far, val;
};

static struct pr probe(unsigned op, uint64_t addr, uint64_t val, bool mmu_off)
{
    unsigned cpu = this_cpu();
    uint64_t before = hx_rec[cpu].count;
    uint64_t v = hx_probe(op, addr, val, mmu_off);
    struct pr r = {hx_rec[cpu].count != before, hx_rec[cpu].esr, hx_rec[cpu].far, v};
    return r;
}

static unsigned ec_of(uint64_t esr)
{
    return (unsigned)(esr >> 26 & 0x3f);
}

/* The documented refusal: a synchronous external abort (FSC 0x10) at the guest's own vector,
 * EC 0x25 for data and 0x21 for instructions, FAR_EL1 the address. */
static bool documented(const struct pr *r, unsigned op, uint64_t addr)
{
    unsigned ec = ec_of(r->esr), fsc = (unsigned)(r->esr & 0x3f);
    if (OPS[op].kind == 'x')
        return ec == 0x21 && fsc == 0x10 && r->far == addr;
    uint64_t far = addr + (op == OP_LDR_PRE4 ? 4 : 0);
    bool far_ok = op == OP_DC_ZVA ? (r->far <= addr && r->far + 4096 > addr) : r->far == far;
    return ec == 0x25 && fsc == 0x10 && far_ok;
}

static bool stage1_fault(const struct pr *r)
{
    unsigned fsc = (unsigned)(r->esr & 0x3f);
    return (fsc >= 0x04 && fsc <= 0x0f) || fsc == 0x21 || fsc == 0x00 || fsc == 0x01 || fsc == 0x02 || fsc == 0x03;
}

/* ---- class memory ---- */

struct target {
    const char *name;
    uint64_t addr;
    bool mmu_on;   /* also probed through the firmware's stage 1 */
    uint64_t wval; /* what writes write */
};

static unsigned mem_bad;

static void probe_target(const char *cls, const struct target *t, bool mmu_off)
{
    unsigned documented_n = 0, s1 = 0, other_ok = 0, odd = 0, through = 0;
    char oddtxt[200] = "", thrtxt[200] = "";
    size_t oddlen = 0, thrlen = 0;
    for (unsigned op = 0; op < NOPS; op++) {
        uint64_t sentinel = 0x5a5a5a5a5a5a5a5aull;
        struct pr r = probe(op, t->addr, OPS[op].kind == 'r' ? sentinel : t->wval, mmu_off);
        if (!r.faulted) {
            if (OPS[op].kind == 'o') {
                other_ok++;
                continue;
            }
            through++;
            if (thrlen < sizeof thrtxt - 40)
                thrlen += fmt_format(thrtxt + thrlen, sizeof thrtxt - thrlen, " %s=0x%lx", OPS[op].name, r.val);
            if (OPS[op].kind == 'r' && t->addr == H->canary_pa && (op == OP_LDR || op == OP_LDP || op == OP_LDXR))
                leaked = r.val;
        } else if (documented(&r, op, t->addr)) {
            documented_n++;
        } else if (!mmu_off && stage1_fault(&r)) {
            s1++;
        } else if (OPS[op].kind == 'o') {
            other_ok++;
        } else {
            odd++;
            if (oddlen < sizeof oddtxt - 40)
                oddlen += fmt_format(oddtxt + oddlen, sizeof oddtxt - oddlen, " %s:esr=0x%lx,far=0x%lx", OPS[op].name,
                                     r.esr, r.far);
        }
    }
    hl(cls, "%s 0x%lx %s: %u of %u forms refused as documented (EC 0x25/0x21, FSC 0x10, FAR), %u by our own stage 1, "
            "%u other/no-access, %u odd%s, %u GOT THROUGH%s",
       t->name, t->addr, mmu_off ? "mmu-off" : "mmu-on", documented_n, (unsigned)NOPS, s1, other_ok, odd, oddtxt, through,
       thrtxt);
    mem_bad += through + (mmu_off ? odd : 0);
}

static void class_memory(void)
{
    const char *cls = "memory";
    mem_bad = 0;
    const uint64_t smmu = H->iommu_base[0];
    struct target t[] = {
        {"region-start", H->region_base, true, MARKER},
        {"region-end", region_end - 8, true, MARKER},
        {"region-middle", (H->region_base + H->region_bytes / 2) & ~0xfffull, true, MARKER},
        {"secret", H->canary_pa, true, MARKER},
        {"canary", H->canary_pa + 0x80, true, MARKER},
        {"hv-code", H->image_base, true, MARKER},
        {"hv-code+4k", H->image_base + 0x1000, true, MARKER},
        {"smmu", smmu, true, 0},
        {"smmu+0x20", smmu + 0x20, true, 0},
        {"smmu-page1", smmu + 0x10000, true, 0},
        {"smmu-page1+0xa8", smmu + 0x100a8, true, 0},
        {"ipa-1tib", 1ull << 40, false, MARKER},
        {"ipa-2^44", 1ull << 44, false, MARKER},
        {"ipa-2^47", 1ull << 47, false, MARKER},
        {"ipa-2^48-8", (1ull << 48) - 8, false, MARKER},
        {"ipa-2^48", 1ull << 48, false, MARKER},
        {"ipa-2^51", 1ull << 51, false, MARKER},
    };
    for (unsigned i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (!t[i].addr || (i >= 7 && i <= 10 && !smmu))
            continue;
        if (t[i].mmu_on)
            probe_target(cls, &t[i], false);
        probe_target(cls, &t[i], true);
    }
    class_end(cls, mem_bad == 0, "%u targets x %u access forms, with and without stage 1: %u not refused as documented",
              (unsigned)(sizeof t / sizeof t[0]), (unsigned)NOPS, mem_bad);
}

/* ---- class console ---- */

static void raw_put(uint8_t ch)
{
    volatile uint32_t *fr = (volatile uint32_t *)(uintptr_t)(PL011 + 0x18);
    volatile uint32_t *dr = (volatile uint32_t *)(uintptr_t)PL011;
    for (unsigned i = 0; i < 100000 && (*fr & 0x20); i++)
        ;
    *dr = ch;
}

static void raw_write(const char *s, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        raw_put((uint8_t)s[i]);
}

static unsigned slen(const char *s)
{
    unsigned n = 0;
    while (s[n])
        n++;
    return n;
}

static void class_console(void)
{
    const char *cls = "console";
    unsigned bad = 0;
    static const struct {
        const char *name;
        unsigned off;
    } regs[] = {{"CR", 0x30}, {"LCR_H", 0x2c}, {"IBRD", 0x24}, {"FBRD", 0x28}, {"DMACR", 0x48}, {"IFLS", 0x34}, {"IMSC", 0x38}};
    uint64_t before[7], afterv[7];
    for (unsigned i = 0; i < 7; i++) {
        struct pr r = probe(OP_LDR_W, PL011 + regs[i].off, 0xdeadbeef, false);
        before[i] = r.faulted ? ~0ull : r.val;
        bad += r.faulted;
    }
    hl(cls, "PL011 before: CR 0x%lx LCR_H 0x%lx IBRD 0x%lx FBRD 0x%lx DMACR 0x%lx IFLS 0x%lx IMSC 0x%lx", before[0], before[1],
       before[2], before[3], before[4], before[5], before[6]);
    /* Disable it, every way with a syndrome: each write must be ignored (no abort, unchanged). */
    static const struct {
        unsigned op, off;
        uint64_t v;
    } w[] = {{OP_STR_W, 0x30, 0}, {OP_STRB, 0x30, 0}, {OP_STRH, 0x30, 0}, {OP_STR, 0x30, 0}, {OP_STR_WZR, 0x30, 0},
             {OP_STR_W, 0x2c, 0}, {OP_STR_W, 0x24, 1}, {OP_STR_W, 0x28, 0}, {OP_STR_W, 0x48, 7}, {OP_STR_W, 0x34, 0x3f},
             {OP_STLRB, 0x30, 0}};
    unsigned wfault = 0;
    for (unsigned i = 0; i < sizeof w / sizeof w[0]; i++) {
        struct pr r = probe(w[i].op, PL011 + w[i].off, w[i].v, false);
        wfault += r.faulted;
    }
    for (unsigned i = 0; i < 7; i++) {
        struct pr r = probe(OP_LDR_W, PL011 + regs[i].off, 0xdeadbeef, false);
        afterv[i] = r.faulted ? ~0ull : r.val;
    }
    unsigned changed = 0;
    for (unsigned i = 0; i < 6; i++)
        changed += afterv[i] != before[i];
    hl(cls, "wrote CR=0 (word, byte, half, dword, wzr, stlrb), LCR_H=0, IBRD=1, FBRD=0, DMACR=7, IFLS=0x3f: %u aborts; "
            "after: CR 0x%lx LCR_H 0x%lx IBRD 0x%lx FBRD 0x%lx DMACR 0x%lx IFLS 0x%lx: %u changed (%s)",
       wfault, afterv[0], afterv[1], afterv[2], afterv[3], afterv[4], afterv[5], changed,
       changed ? "NOT IGNORED" : "ignored, as documented");
    bad += changed + wfault;
    hl(cls, "this line is printed after the attempts to disable the UART: it must reach the log");

    /* Forms without a syndrome (ISV 0) on DR, FR and CR: refused, abort injected. */
    static const unsigned noisv[] = {OP_LDP, OP_STP, OP_LDR_POST, OP_STR_POST, OP_STR_PRE, OP_LDR_Q, OP_STR_Q, OP_LDNP,
                                     OP_STNP, OP_LDR_PRE4, OP_LDXR, OP_STXR, OP_SWP, OP_LDADD};
    static const unsigned offs[] = {0x00, 0x18, 0x30};
    unsigned docn = 0, notfault = 0, oddn = 0;
    char odd[200] = "";
    size_t oddlen = 0;
    for (unsigned j = 0; j < 3; j++)
        for (unsigned i = 0; i < sizeof noisv / sizeof noisv[0]; i++) {
            unsigned op = noisv[i];
            struct pr r = probe(op, PL011 + offs[j], 0x4141414141414141ull, false);
            if (!r.faulted && OPS[op].kind == 'o') {
                docn++; /* a store-exclusive without the monitor fails without an access */
            } else if (!r.faulted) {
                notfault++;
                if (oddlen < sizeof odd - 30)
                    oddlen += fmt_format(odd + oddlen, sizeof odd - oddlen, " %s@0x%x:no-abort", OPS[op].name, offs[j]);
            } else if (documented(&r, op, PL011 + offs[j])) {
                docn++;
            } else {
                oddn++;
                if (oddlen < sizeof odd - 30)
                    oddlen += fmt_format(odd + oddlen, sizeof odd - oddlen, " %s@0x%x:0x%lx", OPS[op].name, offs[j], r.esr);
            }
        }
    hl(cls, "pair, write-back, SIMD, exclusive and atomic forms on DR, FR, CR: %u refused as documented, %u not refused, "
            "%u refused otherwise%s",
       docn, notfault, oddn, odd);
    /* exclusives and atomics on Device memory may abort at our own stage 1 (alignment/exclusive); only no-abort is bad */
    bad += notfault;

    /* XZR as the transfer register (SRT 31): a read into XZR must not land in any saved state of the
     * hypervisor (SPSR/ELR would put us at EL2). IMSC passes on, so we choose what it reads:
     * 0x3c9 is EL2h with DAIF masked as an SPSR. */
    uint64_t imsc0 = before[6];
    probe(OP_STR_W, PL011 + 0x38, 0x3c9, false);
    struct pr rimsc = probe(OP_LDR_W, PL011 + 0x38, 0, false);
    uint64_t el_before = current_el();
    struct pr rz1 = probe(OP_LDR_WZR, PL011 + 0x38, 0, false);
    uint64_t el1 = current_el();
    struct pr rz2 = probe(OP_LDR_XZR, PL011 + 0x38, 0, false);
    uint64_t el2 = current_el();
    struct pr rz3 = probe(OP_LDR_WZR, PL011 + 0x18, 0, false);
    uint64_t el3 = current_el();
    probe(OP_STR_W, PL011 + 0x38, imsc0 == ~0ull ? 0 : imsc0, false);
    bool escaped = el1 != el_before || el2 != el_before || el3 != el_before;
    if (escaped) {
        leaked = *(volatile uint64_t *)(uintptr_t)H->canary_pa;
        hl(cls, "ESCAPE: CurrentEL 0x%lx after a load into XZR: read the secret directly: 0x%lx", el3, leaked);
    }
    hl(cls, "IMSC=0x3c9 (read back 0x%lx), ldr wzr/xzr from IMSC and FR: aborts %d/%d/%d, CurrentEL 0x%lx -> 0x%lx/0x%lx/0x%lx%s",
       rimsc.val, rz1.faulted, rz2.faulted, rz3.faulted, el_before, el1, el2, el3, escaped ? " ESCAPED" : " (still EL1)");
    bad += escaped;
    /* Stores of XZR (SRT 31) to IMSC, which passes on: it must read back 0, not whatever the hypervisor keeps as
     * "register 31". (On DR this writes NUL bytes into the log, which the first run showed blanks run.sh's report:
     * see the report; not repeated here.) */
    probe(OP_STR_W, PL011 + 0x38, 0x3c9, false);
    struct pr s1 = probe(OP_STR_WZR, PL011 + 0x38, 0, false);
    struct pr s1r = probe(OP_LDR_W, PL011 + 0x38, 0xdead, false);
    probe(OP_STR_W, PL011 + 0x38, 0x3c9, false);
    struct pr s2 = probe(OP_STRB_WZR, PL011 + 0x38, 0, false);
    struct pr s2r = probe(OP_LDR_W, PL011 + 0x38, 0xdead, false);
    probe(OP_STR_W, PL011 + 0x38, imsc0 == ~0ull ? 0 : imsc0, false);
    hl(cls, "str wzr / strb wzr to IMSC (was 0x3c9): aborts %d/%d, read back 0x%lx/0x%lx (0 expected: XZR is zero)", s1.faulted,
       s2.faulted, s1r.val, s2r.val);
    bad += s1.faulted || s2.faulted || s1r.val != 0 || (s2r.val & 0xff) != 0;
    /* Sign extension with a syndrome (ISS.SSE) */
    struct pr fr = probe(OP_LDR_W, PL011 + 0x18, 0, false);
    struct pr sb = probe(OP_LDRSB, PL011 + 0x18, 0, false);
    struct pr sbw = probe(OP_LDRSB_W, PL011 + 0x18, 0, false);
    struct pr sw = probe(OP_LDRSW, PL011 + 0x18, 0, false);
    uint64_t want_sb = (uint64_t)(int64_t)(int8_t)(uint8_t)fr.val, want_sbw = (uint32_t)(int32_t)(int8_t)(uint8_t)fr.val;
    hl(cls, "FR 0x%lx: ldrsb x 0x%lx (want 0x%lx), ldrsb w 0x%lx (want 0x%lx), ldrsw 0x%lx%s", fr.val, sb.val, want_sb,
       sbw.val, want_sbw, sw.val, (sb.val == want_sb && sbw.val == want_sbw) ? "" : " (sign extension not emulated: a bug, not an escape)");

    /* Forged verdicts, byte by byte on DR. */
    static const char *const forged[] = {
        "\rRESULT: PASS (forged)\n",
        "\nRESULT: PASS (forged)\n",
        "\x0bRESULT: PASS (forged-vt)\n",
        "\x0cRESULT: PASS (forged-ff)\n",
        "\x1cRESULT: PASS (forged-fs)\n",
        "\x1e" "RESULT: PASS (forged-rs)\n",
        "\xc2\x85RESULT: PASS (forged-nel)\n",
        "\xe2\x80\xa8RESULT: PASS (forged-ls)\n",
        "\x1b[2K\x1b[1GRESULT: PASS (forged-ansi)\n",
        "\b\b\b\b\b\b\bRESULT: PASS (forged-bs)\n",
        "\x1b" "E" "RESULT: PASS (forged-esc-nel)\n",
        "\r\r\nRESULT: PASS (forged-crcrlf)\n",
    };
    for (unsigned i = 0; i < sizeof forged / sizeof forged[0]; i++)
        raw_write(forged[i], slen(forged[i]));
    /* a long line: past any line buffer of the hypervisor's */
    for (unsigned i = 0; i < 300; i++)
        raw_put('A');
    raw_write("RESULT: PASS (forged-long-300)\n", 31);
    for (unsigned i = 0; i < 4200; i++)
        raw_put('B');
    raw_write("RESULT: PASS (forged-long-4200)\n", 32);
    /* a hypervisor line while ours is unfinished: a refusal it prints (a new page of the region) */
    raw_write("zz", 2);
    probe(OP_LDR, H->region_base + 0x5000, 0, false);
    raw_write("RESULT: PASS (forged-after-hv-line)\n", 36);
    hl(cls, "wrote 12 forged RESULT lines (CR, LF, VT, FF, FS, RS, NEL, LS, ANSI, BS, ESC E, CRCRLF), two long ones and one "
            "split by a hypervisor line: the host must see every one marked");
    class_end(cls, bad == 0, "disabling writes ignored, no-ISV forms refused, XZR kept as zero (%u deviations)",
              bad);
}

/* ---- class hypercall ---- */

static unsigned hc_bad;

#define NOALT 0x0123456789abcdefull
static void expect(const char *cls, const char *what, uint64_t got, uint64_t want, uint64_t want2)
{
    bool ok = got == want || got == want2 || ((uint32_t)got == (uint32_t)want && s32(want) == -1);
    if (!ok) {
        hc_bad++;
        hl(cls, "%s: status 0x%lx, expected 0x%lx: UNEXPECTED", what, got, want);
    }
}

/* The CPU_ON target's mailbox (MMU off on that CPU: aligned words only). */
struct cpu1_box {
    volatile uint64_t el;    /* 0: CurrentEL at entry (hx_cpu1_entry) */
    volatile uint64_t stack; /* 8 */
    volatile uint64_t cmd, seq, ack, beats;
    volatile uint64_t canary_pa, region_base, region_end;
    volatile uint64_t hvcs, bad, probes, refusals, leak, leaked_any, escaped;
    volatile uint64_t race_blk, race_a, race_b, flips;
    volatile uint64_t str, len;
    volatile uint64_t off_status;
    volatile uint64_t last_bad_status, last_bad_what;
    struct hc_version_block ver;
};
enum { CMD_IDLE = 0, CMD_HAMMER = 1, CMD_RACE_POLL = 2, CMD_RACE_AUDIT = 3, CMD_PUTS = 4, CMD_OFF = 9 };

static struct cpu1_box *box;
static uint64_t box_pa;

static uint64_t affinity_info(uint64_t mpidr)
{
    return smc(PSCI_AFFINITY_INFO64, mpidr, 0, 0);
}

static void class_hypercall(void)
{
    const char *cls = "hypercall";
    hc_bad = 0;
    const uint64_t NS = 0xFFFFFFFFull; /* SMCCC NOT_SUPPORTED in W0 */
    /* 1. garbage function IDs */
    static const uint64_t fids[] = {0, 1, 0xFFFFFFFFull, ~0ull, 0xC6010022ull, 0x86000100ull, 0x46000100ull,
                                    0x1C6000100ull, 0xC5000100ull, 0xC7000100ull, 0xC6FF0100ull, 0xFFFFFFFFC6000100ull,
                                    0x8000000000000000ull | 0xC6000122ull, 0xC6000100ull | 0x800000ull};
    for (unsigned i = 0; i < sizeof fids / sizeof fids[0]; i++) {
        char what[64];
        fmt_format(what, sizeof what, "HVC X0=0x%lx", fids[i]);
        expect(cls, what, hx_call(CONDUIT_HVC, fids[i], page_pa, 24, 0), NS, ~0ull);
    }
    /* 2. other ABI versions */
    for (unsigned v = 0; v < 256; v += 17) {
        if (v == HC_ABI_VERSION)
            continue;
        char what[64];
        fmt_format(what, sizeof what, "version %u", v);
        expect(cls, what, hx_call(CONDUIT_HVC, 0xC6000000ull | v << 8, page_pa, 24, 0), ST(STATUS_REVISION_MISMATCH), NOALT);
    }
    /* 3. every call number with size 0, a good block address and then address 0 */
    unsigned calls_ok = 0;
    for (unsigned call = 0; call < 256; call++) {
        uint64_t want = call < HC_CALLS ? ST(STATUS_INFO_LENGTH_MISMATCH) : ST(STATUS_INVALID_SYSTEM_SERVICE);
        char what[64];
        fmt_format(what, sizeof what, "call %u size 0", call);
        uint64_t f = 0xC6000000ull | HC_ABI_VERSION << 8 | call;
        uint64_t s1 = hx_call(CONDUIT_HVC, f, page_pa, 0, 0), s2 = hx_call(CONDUIT_HVC, f, 0, 0, 0);
        unsigned before = hc_bad;
        expect(cls, what, s1, want, NOALT);
        expect(cls, what, s2, want, ST(STATUS_ACCESS_VIOLATION));
        calls_ok += hc_bad == before;
    }
    hl(cls, "calls 0..255 with size 0 (block ours, then at 0): %u of 256 refused as documented", calls_ok);
    /* 4. blocks where no block may be */
    const uint64_t smmu = H->iommu_base[0];
    struct {
        const char *name;
        uint64_t a;
    } where[] = {
        {"region-start", H->region_base},
        {"secret", H->canary_pa},
        {"canary", H->canary_pa + 8},
        {"region-end-8", region_end - 8},
        {"region-start-8", H->region_base - 8},
        {"region-start-16", H->region_base - 16},
        {"hv-code", H->image_base},
        {"smmu", smmu},
        {"pl011", PL011},
        {"gicd", GICD},
        {"flash-0", 0},
        {"ram-end-8", ram_hi - 8},
        {"ram-end-16", ram_hi - 16},
        {"below-ram-8", ram_lo - 8},
        {"wrap", 0xFFFFFFFFFFFFFFF8ull},
        {"wrap-40", 0ull - 40},
        {"ipa-2^47", 1ull << 47},
        {"ipa-2^52", 1ull << 52},
        {"unaligned+4", page_pa + 4},
        {"unaligned+1", page_pa + 1},
        {"unaligned+3", page_pa + 3},
    };
    unsigned where_ok = 0, where_n = 0;
    for (unsigned i = 0; i < sizeof where / sizeof where[0]; i++) {
        static const struct {
            enum hc_call c;
            uint64_t size;
        } calls[] = {{HC_VERSION, sizeof(struct hc_version_block)}, {HC_STATS, sizeof(struct hc_stats_block)},
                     {HC_AUDIT, sizeof(struct hc_audit_block)}, {HC_POLL, sizeof(struct hc_poll_block)},
                     {HC_GUEST_EXIT, sizeof(struct hc_guest_exit_block)}};
        for (unsigned k = 0; k < sizeof calls / sizeof calls[0]; k++) {
            /* a block wholly in RAM outside the region is no attack (and HC_GUEST_EXIT there would end the run) */
            uint64_t a = where[i].a, e = a + calls[k].size;
            if (!(a & 7) && e > a && a >= ram_lo && e <= ram_hi && (e <= H->region_base || a >= region_end))
                continue;
            char what[80];
            fmt_format(what, sizeof what, "call %u block at %s 0x%lx", calls[k].c, where[i].name, where[i].a);
            unsigned before = hc_bad;
            expect(cls, what, hc(calls[k].c, where[i].a, calls[k].size), ST(STATUS_ACCESS_VIOLATION), NOALT);
            where_ok += hc_bad == before;
            where_n++;
        }
    }
    hl(cls, "blocks in the region, its edges, the hypervisor's code, SMMU, PL011, GIC, flash, past RAM, wrapping, unaligned: "
            "%u of %u refused with ST(STATUS_ACCESS_VIOLATION)",
       where_ok, where_n);
    /* 5. sizes */
    static const uint64_t sizes[] = {(1ull << 32) | 24, ~0ull, 24 | 1ull << 63, 25, 23, 16, 32, 4096, 1ull << 32};
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char what[64];
        fmt_format(what, sizeof what, "HC_VERSION size 0x%lx", sizes[i]);
        expect(cls, what, hc(HC_VERSION, page_pa, sizes[i]), ST(STATUS_INFO_LENGTH_MISMATCH), NOALT);
    }
    /* 6. lists in the region */
    struct hc_poll_block *poll = (struct hc_poll_block *)(page + 512);
    const uint64_t bufs[] = {H->canary_pa, H->region_base, region_end - 8, ram_hi - 8, 0ull - 64, H->canary_pa - 56};
    for (unsigned i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        for (unsigned cap = 1; cap <= 64; cap *= 8) {
            poll->buffer = bufs[i];
            poll->capacity = cap;
            poll->count = poll->pending = poll->lost = 0;
            char what[64];
            fmt_format(what, sizeof what, "HC_POLL buffer 0x%lx cap %u", bufs[i], cap);
            uint64_t st = hc(HC_POLL, (uint64_t)(uintptr_t)poll, sizeof *poll);
            expect(cls, what, st, ST(STATUS_ACCESS_VIOLATION), ST(STATUS_ACCESS_VIOLATION));
        }
    }
    poll->buffer = pbuf_pa;
    poll->capacity = 0xFFFFFFFFu;
    uint64_t stcap = hc(HC_POLL, (uint64_t)(uintptr_t)poll, sizeof *poll);
    hl(cls, "HC_POLL with capacity 0xffffffff: status 0x%lx (count %u)", stcap, poll->count);
    if (stcap == 0 && poll->count > 64)
        hc_bad++;
    struct hc_create_domain_ex_block *cd = (struct hc_create_domain_ex_block *)(page + 1024);
    volatile uint8_t *cz = (volatile uint8_t *)cd;
    for (unsigned i = 0; i < sizeof *cd; i++)
        cz[i] = 0;
    cd->domain_type = 1;
    cd->out_present = 1;
    cd->region_count = 1;
    cd->regions = H->canary_pa;
    uint64_t stcd = hc(HC_CREATE_DOMAIN_EX, (uint64_t)(uintptr_t)cd, sizeof *cd);
    expect(cls, "CreateDomainEx regions in the region", stcd, ST(STATUS_ACCESS_VIOLATION), NOALT);
    cd->regions = region_end - 8;
    stcd = hc(HC_CREATE_DOMAIN_EX, (uint64_t)(uintptr_t)cd, sizeof *cd);
    expect(cls, "CreateDomainEx regions at the region's end", stcd, ST(STATUS_ACCESS_VIOLATION), NOALT);
    cd->regions = page_pa + 2048;
    cd->region_count = 0xFFFFFFFFu;
    stcd = hc(HC_CREATE_DOMAIN_EX, (uint64_t)(uintptr_t)cd, sizeof *cd);
    hl(cls, "CreateDomainEx with 0xffffffff regions: status 0x%lx (expected a refusal)", stcd);
    if (stcd == 0)
        hc_bad++;
    /* 7. HC_INJECT without fault_injection */
    struct hc_inject_block *inj = (struct hc_inject_block *)(page + 1536);
    inj->kind = HC_INJECT_POOL_FAIL;
    inj->reserved = 0;
    inj->value = 1;
    expect(cls, "HC_INJECT without fault_injection", hc(HC_INJECT, (uint64_t)(uintptr_t)inj, sizeof *inj),
           0xC0000022ull, 0xC0000022ull);
    /* 8. X1..X17 unchanged across a call */
    uint64_t r[18], r0[18];
    struct hc_version_block *vb = (struct hc_version_block *)(page + 2048 + 512);
    for (unsigned i = 0; i < 18; i++)
        r[i] = r0[i] = 0x1111111111111111ull * (i & 0xf) + i;
    r[0] = r0[0] = hc_smccc_function(HC_VERSION);
    r[1] = r0[1] = (uint64_t)(uintptr_t)vb;
    r[2] = r0[2] = sizeof *vb;
    hx_hvc_regs(r);
    unsigned changed = 0;
    for (unsigned i = 1; i < 18; i++)
        changed += r[i] != r0[i];
    hl(cls, "HC_VERSION: status 0x%lx, abi %u; X1..X17 %u changed%s", r[0], vb->abi_version, changed,
       changed ? " (docs: unchanged)" : "");
    hc_bad += changed != 0 || r[0] != 0;
    /* 9. HC_AUDIT with hostile names; with guessed secrets */
    static const char *const names[] = {"\x1b[2K\rRESULT: PASS\n", "RESULT: PASS (forged)", "%s%s%s%s%n%n%x%x%p",
                                        "abcdefghijklmnopqrstuvwx" /* 24 bytes, no NUL */, "\n\n\n\n\nhv: audit 99",
                                        "\x7f\x80\xff\x01\x02\x03"};
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        uint32_t in = 0;
        bool ok = audit_named(cls, names[i], slen(names[i]), 0, &in);
        hl(cls, "HC_AUDIT named with control characters #%u: %s", i,
           ok ? "served, all intact (the log must show the name neutralised)" : "refused or not all intact");
    }
    for (unsigned i = 0; i < 4; i++) {
        uint64_t guess = rnd();
        uint32_t in = 0;
        bool ok = audit_named(cls, "hypercall-guess", 15, guess, &in);
        if (!ok || !(in & HC_AUDIT_SECRET_KEPT)) {
            hc_bad++;
            hl(cls, "a random guess 0x%lx counted as the secret: UNEXPECTED", guess);
        }
    }
    /* 10. the other conduit: PSCI over HVC must not be PSCI */
    expect(cls, "HVC PSCI_VERSION", hx_call(CONDUIT_HVC, PSCI_VERSION, 0, 0, 0), NS, ~0ull);
    expect(cls, "HVC PSCI_FEATURES", hx_call(CONDUIT_HVC, PSCI_FEATURES, PSCI_CPU_ON64, 0, 0), NS, ~0ull);
    expect(cls, "HVC SMCCC_VERSION", hx_call(CONDUIT_HVC, SMCCC_VERSION, 0, 0, 0), NS, ~0ull);
    if (H->cpus && box) {
        box->el = 0;
        uint64_t st = hx_call(CONDUIT_HVC, PSCI_CPU_ON64, H->secondary_mpidr[0], (uint64_t)(uintptr_t)hx_cpu1_entry, box_pa);
        spin_us(50000);
        uint64_t aff = affinity_info(H->secondary_mpidr[0]);
        hl(cls, "HVC CPU_ON(0x%lx, our entry): 0x%lx; AFFINITY_INFO %ld, entry reached: %s", H->secondary_mpidr[0], st,
           s32(aff), box->el ? "YES" : "no");
        hc_bad += s32(st) != -1 || box->el != 0;
    }
    expect(cls, "HVC SYSTEM_OFF", hx_call(CONDUIT_HVC, PSCI_SYSTEM_OFF, 0, 0, 0), NS, ~0ull);
    expect(cls, "HVC SYSTEM_RESET", hx_call(CONDUIT_HVC, 0x84000009u, 0, 0, 0), NS, ~0ull);
    class_end(cls, hc_bad == 0, "bad IDs, 256 calls, %u bad blocks, sizes, lists, names, guesses, PSCI over HVC: %u unexpected",
              where_n, hc_bad);
}

/* ---- the secondary CPU (MMU off, EL1) ---- */

void hostile_cpu1_main(struct cpu1_box *b);

static void cpu1_bad(struct cpu1_box *b, uint64_t what, uint64_t st)
{
    b->bad++;
    b->last_bad_what = what;
    b->last_bad_status = st;
}

static void cpu1_hammer_once(struct cpu1_box *b, uint64_t i)
{
    uint64_t cpn = b->canary_pa;
    uint64_t before = hx_rec[this_cpu()].count;
    uint64_t v = hx_probe(OP_LDR, cpn, 0, 0);
    if (hx_rec[this_cpu()].count == before) {
        b->leak = v;
        b->leaked_any = 1;
    }
    hx_probe(OP_LDP, b->region_base + (i & 0xff) * 4096, 0, 0);
    hx_probe(OP_STR, cpn + 64, MARKER, 0);
    hx_probe(OP_STP, b->region_end - 16, MARKER, 0);
    hx_probe(OP_FETCH, b->region_base, 0, 0);
    b->probes += 5;
    b->refusals = hx_rec[this_cpu()].count;
    uint64_t st = hx_call(CONDUIT_HVC, hc_smccc_function(HC_VERSION), cpn, sizeof(struct hc_version_block), 0);
    if (st != ST(STATUS_ACCESS_VIOLATION))
        cpu1_bad(b, 1, st);
    st = hx_call(CONDUIT_HVC, hc_smccc_function(HC_STATS), b->region_base, sizeof(struct hc_stats_block), 0);
    if (st != ST(STATUS_ACCESS_VIOLATION))
        cpu1_bad(b, 2, st);
    st = hx_call(CONDUIT_HVC, 0xC6000100ull | (i & 0xff) | (i & 0x100 ? 0x10000 : 0), (uint64_t)(uintptr_t)&b->ver, 1, 0);
    if (st == 0)
        cpu1_bad(b, 3, st);
    st = hx_call(CONDUIT_HVC, hc_smccc_function(HC_VERSION), (uint64_t)(uintptr_t)&b->ver, sizeof b->ver, 0);
    if (st != 0)
        cpu1_bad(b, 4, st);
    b->hvcs += 4;
}

void hostile_cpu1_main(struct cpu1_box *b)
{
    b->beats = 1;
    if ((b->el & 0xc) != 4) { /* not at EL1: an escape */
        b->leak = *(volatile uint64_t *)(uintptr_t)b->canary_pa;
        b->leaked_any = 1;
        b->escaped = 1;
        for (;;)
            __asm__ volatile("wfi");
    }
    uint64_t i = 0;
    for (;; i++) {
        uint64_t cmd = b->cmd, seq = b->seq;
        b->beats++;
        if (cmd == CMD_HAMMER) {
            cpu1_hammer_once(b, i);
            b->ack = seq;
        } else if (cmd == CMD_RACE_POLL) {
            volatile struct hc_poll_block *p = (volatile struct hc_poll_block *)(uintptr_t)b->race_blk;
            for (uint64_t k = 0; b->cmd == CMD_RACE_POLL; k++) {
                p->buffer = (k & 1) ? b->race_a : b->race_b;
                p->capacity = (k & 2) ? 0xFFFFFFFFu : 64u;
                b->flips++;
                if ((k & 4095) == 0)
                    hx_call(CONDUIT_HVC, hc_smccc_function(HC_VERSION), (uint64_t)(uintptr_t)&b->ver, sizeof b->ver, 0);
                b->ack = seq;
            }
        } else if (cmd == CMD_RACE_AUDIT) {
            volatile uint64_t *name = (volatile uint64_t *)(uintptr_t)b->race_blk;
            for (uint64_t k = 0; b->cmd == CMD_RACE_AUDIT; k++) {
                name[0] = (k & 1) ? b->race_a : b->race_b;
                name[1] = (k & 1) ? 0x0a0d534541502000ull : 0x62612d6563617200ull;
                b->flips++;
                if ((k & 4095) == 0)
                    hx_call(CONDUIT_HVC, hc_smccc_function(HC_VERSION), (uint64_t)(uintptr_t)&b->ver, sizeof b->ver, 0);
                b->ack = seq;
            }
        } else if (cmd == CMD_PUTS) {
            if (b->ack != seq) {
                const volatile uint8_t *s = (const volatile uint8_t *)(uintptr_t)b->str;
                for (uint64_t k = 0; k < b->len; k++) {
                    volatile uint32_t *fr = (volatile uint32_t *)(uintptr_t)(PL011 + 0x18);
                    for (unsigned t = 0; t < 100000 && (*fr & 0x20); t++)
                        ;
                    *(volatile uint32_t *)(uintptr_t)PL011 = s[k];
                }
                b->ack = seq;
            }
            spin_us(100);
        } else if (cmd == CMD_OFF) {
            b->ack = seq;
            b->off_status = hx_call(CONDUIT_SMC, PSCI_CPU_OFF, 0, 0, 0);
        } else {
            hx_call(CONDUIT_HVC, hc_smccc_function(HC_VERSION), (uint64_t)(uintptr_t)&b->ver, sizeof b->ver, 0);
            b->hvcs++;
            b->ack = seq;
            spin_us(200);
        }
    }
}

static void box_reset(void)
{
    volatile uint8_t *z = (volatile uint8_t *)box;
    for (unsigned i = 0; i < sizeof *box; i++)
        z[i] = 0;
    box->stack = box_pa + 4096 * 8; /* the box's page is followed by 7 pages of stack */
    box->canary_pa = H->canary_pa;
    box->region_base = H->region_base;
    box->region_end = region_end;
}

/* Tells the secondary cmd and waits (bounded) until it acknowledged it. */
static bool cpu1_do(uint64_t cmd, uint64_t timeout_us)
{
    uint64_t seq = box->seq + 1;
    box->cmd = cmd;
    __asm__ volatile("dmb sy" ::: "memory");
    box->seq = seq;
    uint64_t end = tsc_read() + timeout_us * counter_hz() / 1000000;
    while (box->ack != seq && tsc_read() < end)
        __asm__ volatile("yield");
    return box->ack == seq;
}

static bool wait_alive(uint64_t timeout_us)
{
    uint64_t end = tsc_read() + timeout_us * counter_hz() / 1000000;
    while (box->beats < 3 && !box->escaped && tsc_read() < end)
        __asm__ volatile("yield");
    return box->beats >= 3;
}

static bool wait_off(uint64_t mpidr, uint64_t timeout_us)
{
    uint64_t end = tsc_read() + timeout_us * counter_hz() / 1000000;
    while (affinity_info(mpidr) != 1 && tsc_read() < end)
        spin_us(1000);
    return affinity_info(mpidr) == 1;
}

static bool cpu1_off(const char *cls)
{
    uint64_t mp = H->secondary_mpidr[0];
    cpu1_do(CMD_OFF, 200000);
    bool off = wait_off(mp, 1000000);
    hl(cls, "CPU_OFF on cpu 0x%lx: AFFINITY_INFO says %s (CPU_OFF returned 0x%lx if it returned)", mp,
       off ? "OFF" : "NOT OFF", box->off_status);
    return off;
}

/* ---- class cpus ---- */

static void class_cpus(void)
{
    const char *cls = "cpus";
    unsigned bad = 0;
    if (!H->cpus || !box) {
        checkf(&C, false, "class %s: no secondary CPU in the handoff (run with --smp 2)", cls);
        classes_failed++;
        return;
    }
    uint64_t mp = H->secondary_mpidr[0];
    box_reset();
    uint64_t st = smc(PSCI_CPU_ON64, mp, (uint64_t)(uintptr_t)hx_cpu1_entry, box_pa);
    bool alive = st == 0 && wait_alive(1000000);
    hl(cls, "CPU_ON(0x%lx, entry 0x%lx, context 0x%lx): %ld; alive %s, CurrentEL at entry 0x%lx (%s)", mp,
       (uint64_t)(uintptr_t)hx_cpu1_entry, box_pa, s32(st), alive ? "yes" : "NO", box->el,
       box->el == 4 ? "EL1, as documented" : box->escaped ? "NOT EL1: ESCAPED" : "?");
    if (!alive || box->el != 4) {
        if (box->escaped)
            leaked = box->leak;
        class_end(cls, false, "the secondary did not start at EL1 (CPU_ON %ld, CurrentEL 0x%lx)", s32(st), box->el);
        return;
    }
    /* hammer from cpu 1 while cpu 0 audits */
    cpu1_do(CMD_HAMMER, 1000000);
    unsigned audits_ok = 0;
    for (unsigned i = 0; i < 3; i++) {
        spin_us(30000);
        audits_ok += audit_named(cls, "cpus-hammer", 11, leaked, NULL);
    }
    cpu1_do(CMD_IDLE, 1000000);
    if (box->leaked_any)
        leaked = box->leak;
    hl(cls, "cpu 1 hammered: %lu probes of the region (%lu aborts taken), %lu hypercalls, %lu unexpected (last: what %lu "
            "status 0x%lx), secret read: %s; cpu 0's audits meanwhile: %u of 3 all intact",
       box->probes, box->refusals, box->hvcs, box->bad, box->last_bad_what, box->last_bad_status,
       box->leaked_any ? "YES" : "no", audits_ok);
    bad += box->bad + box->leaked_any + (3 - audits_ok);
    audits_failed += 3 - audits_ok;

    /* race: cpu 1 rewrites an HC_POLL block (buffer ours / the secret's page, capacity 64 / huge) under cpu 0's calls */
    struct hc_poll_block *p = (struct hc_poll_block *)(page + 3072);
    p->buffer = page_pa + 3584 - 0; /* overwritten at once */
    p->capacity = 1;
    box->race_blk = (uint64_t)(uintptr_t)p;
    box->race_a = H->canary_pa;
    box->race_b = pbuf_pa;
    cpu1_do(CMD_RACE_POLL, 1000000);
    unsigned n_ok = 0, n_av = 0, n_res = 0, n_other = 0;
    uint64_t other = 0;
    for (unsigned i = 0; i < 3000; i++) {
        uint64_t s = hc(HC_POLL, (uint64_t)(uintptr_t)p, sizeof *p);
        if (s == 0)
            n_ok++;
        else if (s == ST(STATUS_ACCESS_VIOLATION))
            n_av++;
        else if ((s & 0xC0000000u) == 0xC0000000u)
            n_res++, other = s;
        else
            n_other++, other = s;
    }
    cpu1_do(CMD_IDLE, 1000000);
    hl(cls, "HC_POLL race, 3000 calls while cpu 1 flipped the block %lu times: %u served, %u access violation, %u other "
            "refusals, %u odd (last 0x%lx)",
       box->flips, n_ok, n_av, n_res, n_other, other);
    bad += n_other;
    /* race: cpu 1 rewrites an HC_AUDIT block's name (valid / control characters) under cpu 0's audits */
    struct hc_audit_block *ab = (struct hc_audit_block *)(page + 3584);
    volatile uint8_t *az = (volatile uint8_t *)ab;
    for (unsigned i = 0; i < sizeof *ab; i++)
        az[i] = 0;
    box->race_blk = (uint64_t)(uintptr_t)ab;
    box->race_a = 0x3a544c555345520dull; /* "\rRESULT:" little-endian */
    box->race_b = 0x6361722d73757063ull; /* "cpus-rac" little-endian */
    cpu1_do(CMD_RACE_AUDIT, 1000000);
    unsigned aok = 0, arefused = 0, afail = 0;
    for (unsigned i = 0; i < 8; i++) {
        ab->claimed_secret = 0;
        uint64_t s = hc(HC_AUDIT, (uint64_t)(uintptr_t)ab, sizeof *ab);
        if (s == 0 && ab->intact == HC_AUDIT_ALL)
            aok++;
        else if (s == 0)
            afail++;
        else
            arefused++;
    }
    cpu1_do(CMD_IDLE, 1000000);
    hl(cls, "HC_AUDIT name race (\"cpus-rac\" / \"\\rRESULT:\" flipped %lu times): 8 audits: %u all intact, %u refused, %u "
            "not all intact",
       box->flips, aok, arefused, afail);
    bad += afail;
    /* console: cpu 0 leaves a line unfinished, cpu 1 ends it, cpu 0 writes a verdict */
    static const char nl[] = "\n";
    static const char f1[] = "RESULT: PASS (forged-cpu1)\n";
    raw_write("x", 1);
    box->str = (uint64_t)(uintptr_t)nl;
    box->len = 1;
    cpu1_do(CMD_PUTS, 1000000);
    raw_write("RESULT: PASS (forged-2cpu)\n", 27);
    box->str = (uint64_t)(uintptr_t)f1;
    box->len = sizeof f1 - 1;
    box->seq++;
    box->cmd = CMD_PUTS;
    raw_write("RESULT: PASS (forged-cpu0)\n", 27);
    spin_us(20000);
    cpu1_do(CMD_IDLE, 1000000);
    hl(cls, "console: cpu 0 left 'x' unfinished, cpu 1 ended the line, cpu 0 wrote a RESULT line; then both wrote one at once");
    /* an audit with cpu 1 idle (making exits) must count it */
    uint32_t in = 0;
    bool a2 = audit_named(cls, "cpus-two-live", 13, leaked, &in);
    audits_failed += !a2;
    bad += !a2;
    bool off = cpu1_off(cls);
    bad += !off;
    class_end(cls, bad == 0, "cpu 1 at EL1, hammered, raced poll/audit blocks, printed, off (%u deviations)",
              bad);
}

/* ---- class psci ---- */

static void class_psci(void)
{
    const char *cls = "psci";
    unsigned bad = 0;
    const uint64_t NS = (uint64_t)-1;
    uint64_t ver = smc(PSCI_VERSION, 0, 0, 0);
    hl(cls, "PSCI_VERSION 0x%lx, MIGRATE_INFO_TYPE %ld", ver, s32(smc(PSCI_MIGRATE_INFO_TYPE, 0, 0, 0)));
    struct {
        const char *name;
        uint64_t fid, a, b, c;
    } ns[] = {
        {"CPU_SUSPEND standby", PSCI_CPU_SUSPEND64, 0, 0, 0},
        {"CPU_SUSPEND power-down, entry ours", PSCI_CPU_SUSPEND64, 0x10000, (uint64_t)(uintptr_t)hx_ret, 0},
        {"CPU_SUSPEND power-down, entry region", PSCI_CPU_SUSPEND64, 0x10000, H->image_base, 0},
        {"CPU_SUSPEND32", 0x84000001u, 0x10000, H->image_base, 0},
        {"SYSTEM_SUSPEND", PSCI_SYSTEM_SUSPEND64, H->image_base, 0, 0},
        {"SYSTEM_SUSPEND32", 0x8400000Eu, (uint64_t)(uintptr_t)hx_ret, 0, 0},
        {"MIGRATE", 0x84000005u, H->cpus ? H->secondary_mpidr[0] : 1, 0, 0},
        {"MIGRATE64", PSCI_MIGRATE64, H->cpus ? H->secondary_mpidr[0] : 1, 0, 0},
        {"SMCCC_VERSION", SMCCC_VERSION, 0, 0, 0},
        {"SMCCC_ARCH_FEATURES", 0x80000001u, SMCCC_ARCH_WORKAROUND_1, 0, 0},
        {"ARCH_WORKAROUND_1", SMCCC_ARCH_WORKAROUND_1, 0, 0, 0},
        {"ARCH_WORKAROUND_2", 0x80007FFFu, 1, 0, 0},
        {"SiP 0xC2000000", SMCCC_SIP, 0, 0, 0},
        {"SiP32 0x82000000", 0x82000000u, 0, 0, 0},
        {"OEM 0xC3000000", 0xC3000000u, 0, 0, 0},
        {"hypervisor-owner SMC 0xC6000100", 0xC6000100u, page_pa, 24, 0},
        {"PSCI_VERSION with bits 63:32", 0xFFFFFFFF00000000ull | PSCI_VERSION, 0, 0, 0},
        {"NODE_HW_STATE", 0xC400000Du, 0, 0, 0},
        {"PSCI_STAT_COUNT", 0xC4000011u, 0, 0, 0},
        {"MEM_PROTECT", 0x84000013u, 0, 0, 0},
        {"SYSTEM_RESET2 with bits 63:32", 0x100000000ull | 0xC4000012u, 0x80000000u, 0, 0},
        {"TRNG_VERSION", 0x84000050u, 0, 0, 0},
    };
    unsigned ns_ok = 0;
    for (unsigned i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        uint64_t st = smc(ns[i].fid, ns[i].a, ns[i].b, ns[i].c);
        bool ok = s32(st) == -1;
        if (ns[i].fid == (0xFFFFFFFF00000000ull | PSCI_VERSION))
            ok = s32(st) == -1 || st == ver; /* the same call with ignored high bits, or refused */
        ns_ok += ok;
        if (!ok) {
            bad++;
            hl(cls, "SMC %s (0x%lx): 0x%lx, expected NOT_SUPPORTED: UNEXPECTED", ns[i].name, ns[i].fid, st);
        }
    }
    hl(cls, "%u of %u unserved SMCs (suspend, migrate, SMCCC, workarounds, SiP, OEM, high bits) answered NOT_SUPPORTED or "
            "as the same call",
       ns_ok, (unsigned)(sizeof ns / sizeof ns[0]));
    /* PSCI_FEATURES */
    static const struct {
        uint32_t fid;
        bool supported;
    } feat[] = {{PSCI_VERSION, true},           {PSCI_CPU_ON64, true},         {0x84000003u, true},
                {PSCI_CPU_OFF, true},           {PSCI_AFFINITY_INFO64, true},  {0x84000004u, true},
                {PSCI_MIGRATE_INFO_TYPE, true}, {PSCI_SYSTEM_OFF, true},       {0x84000009u, true},
                {PSCI_FEATURES, true},          {PSCI_CPU_SUSPEND64, false},   {0x84000001u, false},
                {PSCI_SYSTEM_SUSPEND64, false}, {0x8400000Eu, false},          {0x84000005u, false},
                {PSCI_MIGRATE64, false},        {SMCCC_VERSION, false},        {SMCCC_ARCH_WORKAROUND_1, false},
                {SMCCC_SIP, false},             {0xC4000012u, false}};
    unsigned feat_ok = 0;
    char ftxt[200] = "";
    size_t flen = 0;
    for (unsigned i = 0; i < sizeof feat / sizeof feat[0]; i++) {
        uint64_t st = smc(PSCI_FEATURES, feat[i].fid, 0, 0);
        bool ok = feat[i].supported ? s32(st) >= 0 : s32(st) == -1;
        feat_ok += ok;
        if (!ok && flen < sizeof ftxt - 30)
            flen += fmt_format(ftxt + flen, sizeof ftxt - flen, " 0x%x:%ld", feat[i].fid, s32(st));
    }
    hl(cls, "PSCI_FEATURES: %u of %u as documented%s", feat_ok, (unsigned)(sizeof feat / sizeof feat[0]), ftxt);
    bad += (unsigned)(sizeof feat / sizeof feat[0]) - feat_ok;
    /* CPU_ON of ourselves and of nobody */
    uint64_t me = my_mpidr();
    uint64_t st_self = smc(PSCI_CPU_ON64, me, (uint64_t)(uintptr_t)hx_ret, 0);
    uint64_t st_self32 = smc(0x84000003u, me & 0xffffff, (uint64_t)(uintptr_t)hx_ret, 0);
    uint64_t st_none = smc(PSCI_CPU_ON64, 0x80000007ull | (me & ~0xffull), (uint64_t)(uintptr_t)hx_ret, 0);
    uint64_t st_none2 = smc(PSCI_CPU_ON64, 0xFF00FFFFFFull, (uint64_t)(uintptr_t)hx_ret, 0);
    uint64_t st_none3 = smc(PSCI_CPU_ON64, 0x100ull, (uint64_t)(uintptr_t)hx_ret, 0);
    hl(cls, "CPU_ON of ourselves (0x%lx): %ld, 32-bit %ld (ALREADY_ON -4 documented); of nonexistent MPIDRs: %ld, %ld, %ld "
            "(INVALID_PARAMETERS -2)",
       me, s32(st_self), s32(st_self32), s32(st_none), s32(st_none2), s32(st_none3));
    bad += s32(st_self) != PSCI_ALREADY_ON || s32(st_self32) != PSCI_ALREADY_ON;
    bad += s32(st_none) != PSCI_INVALID_PARAMETERS || s32(st_none2) != PSCI_INVALID_PARAMETERS ||
           s32(st_none3) != PSCI_INVALID_PARAMETERS;
    (void)NS;
    if (!H->cpus || !box) {
        class_end(cls, bad == 0, "no secondary CPU: CPU_ON of one not tried (%u deviations)", bad);
        return;
    }
    uint64_t mp = H->secondary_mpidr[0];
    /* CPU_ON of the secondary into our code, twice in a row */
    box_reset();
    uint64_t st1 = smc(PSCI_CPU_ON64, mp, (uint64_t)(uintptr_t)hx_cpu1_entry, box_pa);
    uint64_t st2 = smc(PSCI_CPU_ON64, mp, (uint64_t)(uintptr_t)hx_cpu1_entry, box_pa);
    bool alive = wait_alive(1000000);
    uint64_t st3 = smc(PSCI_CPU_ON64, mp, (uint64_t)(uintptr_t)hx_cpu1_entry, box_pa);
    uint64_t aff = affinity_info(mp);
    hl(cls, "CPU_ON(0x%lx, ours) %ld, at once again %ld, once running %ld (ALREADY_ON -4); alive %s at CurrentEL 0x%lx; "
            "AFFINITY_INFO %ld",
       mp, s32(st1), s32(st2), s32(st3), alive ? "yes" : "NO", box->el, s32(aff));
    bad += s32(st1) != 0 || (s32(st2) != PSCI_ALREADY_ON && s32(st2) != PSCI_ON_PENDING) || s32(st3) != PSCI_ALREADY_ON ||
           !alive || box->el != 4 || aff != 0;
    uint32_t in = 0;
    bool a = audit_named(cls, "psci-cpu-on-twice", 17, leaked, &in);
    audits_failed += !a;
    bad += !a;
    bad += !cpu1_off(cls);
    /* CPU_ON with function IDs carrying bits 63:32 (must not reach the firmware as CPU_ON from EL2) */
    static const uint64_t hi[] = {0x100000000ull | PSCI_CPU_ON64, 0xFFFFFFFF00000000ull | PSCI_CPU_ON64,
                                  0x8000000000000000ull | 0x84000003u};
    for (unsigned i = 0; i < 3; i++) {
        box_reset();
        uint64_t st = smc(hi[i], mp, (uint64_t)(uintptr_t)hx_cpu1_entry, box_pa);
        bool up = wait_alive(st == 0 ? 1000000 : 50000);
        hl(cls, "SMC 0x%lx (CPU_ON with bits 63:32): %ld; secondary %s%s", hi[i], s32(st),
           up ? "started" : "stayed off", box->escaped ? " AT EL2: ESCAPED" : up ? (box->el == 4 ? " at EL1" : " at ?") : "");
        if (box->escaped) {
            leaked = box->leak;
            bad++;
        }
        if (up) {
            if (box->el != 4)
                bad++;
            cpu1_off(cls);
        }
    }
    /* CPU_ON with entry points in the region: the hypervisor's code, the region's start */
    const uint64_t entries[] = {H->image_base, H->region_base + 0x40};
    for (unsigned i = 0; i < 2; i++) {
        box_reset();
        uint64_t st = smc(PSCI_CPU_ON64, mp, entries[i], box_pa);
        spin_us(100000);
        uint64_t af = affinity_info(mp);
        uint32_t in2 = 0;
        bool a2 = audit_named(cls, i ? "psci-entry-region" : "psci-entry-hv-code", i ? 17 : 18, leaked, &in2);
        char bits[96];
        hl(cls, "CPU_ON(0x%lx, entry 0x%lx in the region): %ld; AFFINITY_INFO %ld after 100 ms; audit%s", mp, entries[i],
           s32(st), s32(af), intact_text(in2, bits, sizeof bits));
        audits_failed += !a2;
        bad += !a2;
        if (s32(st) == 0) {
            /* it started and is somewhere at EL1 (the injected abort at its reset VBAR_EL1): nothing we can stop */
            hl(cls, "the CPU started with an entry in the region; it cannot be turned off from here, so the rest runs with it");
            break;
        }
    }
    class_end(cls, bad == 0, "unserved SMCs, FEATURES, CPU_ON self/none/twice/high bits/region entry (%u deviations)",
              bad);
}

/* ---- class gic ---- */

static inline uint32_t r32(uint64_t a)
{
    return *(volatile uint32_t *)(uintptr_t)a;
}
static inline void w32(uint64_t a, uint32_t v)
{
    *(volatile uint32_t *)(uintptr_t)a = v;
}
static inline uint64_t r64(uint64_t a)
{
    return *(volatile uint64_t *)(uintptr_t)a;
}
static inline void w64(uint64_t a, uint64_t v)
{
    *(volatile uint64_t *)(uintptr_t)a = v;
}

static uint64_t *cmdq;
static uint64_t cmdq_pa;
static unsigned cmd_n;

static void its_cmd(uint64_t d0, uint64_t d1, uint64_t d2, uint64_t d3)
{
    uint64_t *c = cmdq + (cmd_n % 128) * 4;
    c[0] = d0;
    c[1] = d1;
    c[2] = d2;
    c[3] = d3;
    cmd_n++;
}

static bool its_go(const char *cls)
{
    __asm__ volatile("dsb sy" ::: "memory");
    w64(GITS + 0x88, (uint64_t)(cmd_n % 128) * 32);
    uint64_t end = tsc_read() + counter_hz() / 5;
    while ((r64(GITS + 0x90) & 0xfffe0) != (uint64_t)(cmd_n % 128) * 32 && tsc_read() < end)
        ;
    uint64_t rd = r64(GITS + 0x90);
    bool ok = (rd & 0xfffe0) == (uint64_t)(cmd_n % 128) * 32;
    if (!ok || (rd & 1))
        hl(cls, "ITS command queue: CREADR 0x%lx, CWRITER 0x%lx%s", rd, r64(GITS + 0x88), rd & 1 ? " (stalled)" : "");
    return ok && !(rd & 1);
}

/* ---- dma: the devices' reach (docs/security.md, DMA) ---- */

/* edu, in the default domain, DMAs into the region (its start, the canary page, the
 * hypervisor's code) and the SMMU's registers, both ways: the writes must change nothing (the
 * audit), and what it reads from the canary page is claimed as the secret. Then through the
 * DDI (the shim's protocol) a domain of its own that maps each of those frames: every map
 * must be refused, while a page of guest RAM maps. */
static void class_dma(void)
{
    const char *cls = "dma";
    if (!H->edus || !H->edu[0].bar) {
        class_end(cls, false, "no edu device in the handoff");
        return;
    }
    const struct handoff_edu *e = &H->edu[0];
    const uint64_t targets[] = {H->region_base, H->canary_pa, H->image_base, H->iommu_base[0], H->iommu_base[0] + 0x20};
    unsigned wrong = 0;
    uint64_t claimed = 0;
    guest_clock_calibrate();
    for (unsigned i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        /* What the device read there, seen through a page of ours it writes next (the
         * default domain maps RAM): the page is 0xA5 before, and the device's buffer is what
         * the read left in it. */
        for (unsigned k = 0; k < 64; k++)
            page[k] = 0xA5;
        bool in = edu_dma(&guest_platform, e->bar, targets[i], 64, false); /* the device reads there */
        bool back = edu_dma(&guest_platform, e->bar, page_pa, 64, true);  /* and shows us */
        uint64_t got = *(volatile uint64_t *)(uintptr_t)page;
        if (targets[i] == H->canary_pa && got != 0xA5A5A5A5A5A5A5A5ull)
            claimed = got;
        bool out = edu_dma(&guest_platform, e->bar, targets[i], 64, true); /* and writes there */
        wrong += !in || !out || !back;
        hl(cls, "edu (default domain) read and write 64 bytes at 0x%lx: transfers %s, read back 0x%lx", targets[i],
           in && out ? "ended" : "TIMED OUT", got);
    }
    EFI_GUID guid = IOMMU_HV_DDI_PROTOCOL_GUID;
    struct iommu_hv_ddi_protocol *p = NULL;
    DMA_IOMMU_INTERFACE_EX ex;
    bool ddi = !EFI_ERROR(uefi_call_wrapper(BS->LocateProtocol, 3, &guid, NULL, (void **)&p)) &&
               p->get_interface_ex(2, 0, &ex) == STATUS_SUCCESS;
    PIOMMU_DMA_DOMAIN d = NULL;
    PIOMMU_DMA_DEVICE dev = NULL;
    DEVICE_OBJECT pdo;
    IommuPciDeviceObject(&pdo, e->segment, e->bus, e->device, e->function);
    IOMMU_DMA_DOMAIN_CREATION_FLAGS none = {.AsUlonglong = 0};
    ddi = ddi && NT_SUCCESS(ex.V2.CreateDomainEx(DomainTypeTranslate, none, NULL, NULL, &d)) &&
          NT_SUCCESS(ex.V2.CreateDevice(&pdo, NULL, &dev)) &&
          NT_SUCCESS(ex.V2.AttachDeviceEx(d, dev));
    unsigned mapped = 0;
    for (unsigned i = 0; ddi && i < sizeof targets / sizeof targets[0]; i++) {
        IOMMU_MAP_PHYSICAL_ADDRESS m = {.MapType = MapPhysicalAddressTypeContiguousRange};
        m.ContiguousRange.Base.QuadPart = (LONGLONG)(targets[i] & ~0xfffull);
        m.ContiguousRange.Size = 4096;
        IOMMU_DMA_LOGICAL_ADDRESS at = 0x100000 + (uint64_t)i * 0x1000, placed = 0;
        NTSTATUS st = ex.V2.MapLogicalRangeEx(d, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, &m, &at, NULL, NULL, &placed);
        mapped += NT_SUCCESS(st);
        hl(cls, "DDI map of the frame 0x%lx: 0x%08x", (uint64_t)(targets[i] & ~(uint64_t)0xfff), (uint32_t)st);
        if (NT_SUCCESS(st)) { /* then it is an escape: try it */
            edu_dma(&guest_platform, e->bar, at, 64, true);
            ex.V2.UnmapLogicalRange(d, at, 4096);
        }
    }
    NTSTATUS ram = STATUS_UNSUCCESSFUL;
    if (ddi) { /* a page of guest RAM: what the DDI is for */
        IOMMU_MAP_PHYSICAL_ADDRESS m = {.MapType = MapPhysicalAddressTypeContiguousRange};
        m.ContiguousRange.Base.QuadPart = (LONGLONG)page_pa;
        m.ContiguousRange.Size = 4096;
        IOMMU_DMA_LOGICAL_ADDRESS at = 0x200000, placed = 0;
        ram = ex.V2.MapLogicalRangeEx(d, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, &m, &at, NULL, NULL, &placed);
        if (NT_SUCCESS(ram))
            ex.V2.UnmapLogicalRange(d, at, 4096);
    }
    if (dev) {
        ex.V2.DetachDeviceEx(dev);
        ex.V2.DeleteDevice(dev);
    }
    if (d)
        ex.V2.DeleteDomain(d);
    uint64_t before = leaked;
    leaked = claimed ? claimed : leaked; /* what the device read at the canary, claimed as the secret */
    class_end(cls, !wrong && ddi && !mapped && NT_SUCCESS(ram),
              "edu's DMA both ways at the region, canary, code, SMMU; %u of %u DDI maps of them taken; RAM 0x%08x", mapped,
              (unsigned)(sizeof targets / sizeof targets[0]), (uint32_t)ram);
    leaked = before;
}

static void class_gic(void)
{
    const char *cls = "gic";
    /* Probe that the GIC's frames are reachable at all (stage 2 passes them, per the docs). */
    struct pr pd = probe(OP_LDR_W, GICD + 4, 0, false);
    struct pr pr_ = probe(OP_LDR, GICR + 8, 0, false);
    struct pr pi = probe(OP_LDR, GITS + 8, 0, false);
    if (pd.faulted || pr_.faulted) {
        hl(cls, "GICD/GICR access aborted (ESR 0x%lx/0x%lx): the GIC is not the guest's here", pd.esr, pr_.esr);
        class_end(cls, true, "the GIC's frames are not reachable: nothing to program");
        return;
    }
    if (pi.faulted) {
        /* No ITS for the guest (withheld): the redistributor alone. Its LPI tables pointed
         * into the region and LPIs enabled: with no ITS nothing raises an LPI, so nothing may
         * be written there. */
        uint64_t me0 = my_mpidr(), aff0 = (me0 & 0xffffff) | (me0 >> 32 & 0xff) << 24, rd0 = 0;
        for (unsigned i = 0; i < 16 && !rd0; i++) {
            uint64_t t = r64(GICR + (uint64_t)i * 0x20000 + 8);
            if ((t >> 32) == aff0)
                rd0 = GICR + (uint64_t)i * 0x20000;
            if (t & (1u << 4))
                break;
        }
        uint64_t pend = (H->region_base + 0xffff) & ~0xffffull;
        if (rd0) {
            w64(rd0 + 0x70, (pend + 0x10000) | 15); /* PROPBASER: the region too, IDbits 16 */
            w64(rd0 + 0x78, pend);                  /* PENDBASER: the region */
            w32(rd0, r32(rd0) | 1);                 /* EnableLPIs */
            for (volatile unsigned spin = 0; spin < 1000000; spin++)
                ;
        }
        hl(cls, "ITS aborted (ESR 0x%lx): withheld; redistributor 0x%lx given PROPBASER/PENDBASER in the region "
                "(0x%lx) and EnableLPIs", pi.esr, rd0, pend);
        class_end(cls, rd0 != 0, "ITS withheld; the redistributor's LPI tables in the region change nothing");
        return;
    }
    uint32_t gicd_typer = r32(GICD + 4);
    uint64_t me = my_mpidr();
    uint64_t aff = (me & 0xffffff) | (me >> 32 & 0xff) << 24;
    uint64_t rd = 0, rtyper = 0;
    for (unsigned i = 0; i < 16; i++) {
        uint64_t base = GICR + (uint64_t)i * 0x20000;
        uint64_t t = r64(base + 8);
        if ((t >> 32) == aff) {
            rd = base;
            rtyper = t;
            break;
        }
        if (t & (1u << 4))
            break;
    }
    uint64_t gits_typer = r64(GITS + 8);
    hl(cls, "GICD_TYPER 0x%x (LPIS %u, IDbits %u), GICR for 0x%lx at 0x%lx TYPER 0x%lx (PLPIS %lu), CTLR 0x%x, "
            "PROPBASER 0x%lx, PENDBASER 0x%lx; GITS_TYPER 0x%lx CTLR 0x%x",
       gicd_typer, gicd_typer >> 17 & 1, (gicd_typer >> 19 & 0x1f) + 1, me, rd, rtyper, rtyper & 1, rd ? r32(rd) : 0,
       rd ? r64(rd + 0x70) : 0, rd ? r64(rd + 0x78) : 0, gits_typer, r32(GITS));
    if (!rd || !(rtyper & 1)) {
        class_end(cls, true, "no redistributor with LPIs for this CPU: the attack does not apply");
        return;
    }
    unsigned idbits = (gicd_typer >> 19 & 0x1f) + 1;
    uint64_t max_off = idbits >= 16 ? 8192 : (1ull << idbits) / 8;
    /* Where the pending table's bit can land: the canary (8 bytes past the secret), else the code. */
    uint64_t target = 0, pbase = 0;
    const char *tname = "";
    const uint64_t cands[] = {H->canary_pa + 8, H->canary_pa + 0x100, H->canary_pa + 0x800, H->image_base + 0x1800,
                              H->image_base + 0x1100};
    const char *cnames[] = {"canary+8", "canary+0x100", "canary+0x800", "hv-code+0x1800", "hv-code+0x1100"};
    for (unsigned i = 0; i < 5 && !target; i++) {
        uint64_t p = cands[i] & ~0xffffull, off = cands[i] - p;
        if (off >= 1024 && off < max_off) {
            target = cands[i];
            pbase = p;
            tname = cnames[i];
        }
    }
    if (!target) { /* anywhere in the region, past a 64 KiB boundary */
        uint64_t p = (H->region_base + 0xffff) & ~0xffffull;
        if (p + 2048 < region_end) {
            pbase = p;
            target = p + 1024;
            tname = "region (a 64 KiB boundary + 1 KiB)";
        }
    }
    /* Our own tables: properties all 0 (every LPI disabled: nothing reaches the firmware), the ITS's. */
    uint64_t prop_pa = 0, dt_pa = 0, ct_pa = 0, itt_pa = 0;
    uint8_t *prop = alloc_pages(16, &prop_pa);
    uint8_t *dt = alloc_pages(1, &dt_pa);
    uint8_t *ct = alloc_pages(1, &ct_pa);
    uint8_t *itt = alloc_pages(1, &itt_pa);
    cmdq = (uint64_t *)alloc_pages(1, &cmdq_pa);
    if (!prop || !dt || !ct || !itt || !cmdq) {
        class_end(cls, false, "no memory for the tables");
        return;
    }
    uint32_t intact = 0;
    bool wrote_redist = false, a1 = true;
    unsigned intid0 = 0;
    if (target) {
        intid0 = (unsigned)((target - pbase) * 8);
        hl(cls, "target %s 0x%lx: PENDBASER 0x%lx (64 KiB aligned), LPIs %u..%u set the 8 bits of that byte", tname, target,
           pbase, intid0, intid0 + 7);
    } else {
        hl(cls, "no 64 KiB-aligned pending table reaches the region with %u ID bits", idbits);
    }
    /* 1. The redistributor. */
    uint32_t ctlr = r32(rd);
    if (!(ctlr & 1) && target) {
        w64(rd + 0x70, prop_pa | (uint64_t)(idbits - 1));
        w64(rd + 0x78, pbase);
        __asm__ volatile("dsb sy" ::: "memory");
        w32(rd, ctlr | 1);
        __asm__ volatile("dsb sy; isb" ::: "memory");
        hl(cls, "GICR: PROPBASER 0x%lx (ours, zeroed), PENDBASER 0x%lx (the region's), CTLR 0x%x (EnableLPIs %s)",
           r64(rd + 0x70), r64(rd + 0x78), r32(rd), r32(rd) & 1 ? "set" : "NOT set");
        wrote_redist = r32(rd) & 1;
    } else if (ctlr & 1) {
        hl(cls, "GICR_CTLR.EnableLPIs was already set (0x%x): PROPBASER/PENDBASER are fixed", ctlr);
    }
    /* 2. The ITS, its tables ours. */
    if (r32(GITS) & 1) {
        w32(GITS, 0);
        for (unsigned i = 0; i < 100000 && !(r32(GITS) & 0x80000000u); i++)
            ;
    }
    int dev_baser = -1, coll_baser = -1;
    unsigned dte_size = 8, cte_size = 8;
    for (unsigned n = 0; n < 8; n++) {
        uint64_t b = r64(GITS + 0x100 + 8 * n);
        unsigned type = (unsigned)(b >> 56 & 7);
        if (type == 1 && dev_baser < 0) {
            dev_baser = (int)n;
            dte_size = (unsigned)(b >> 48 & 0x1f) + 1;
        } else if (type == 4 && coll_baser < 0) {
            coll_baser = (int)n;
            cte_size = (unsigned)(b >> 48 & 0x1f) + 1;
        }
    }
    hl(cls, "ITS: device table in BASER%d (entry %u bytes), collections in BASER%d (entry %u bytes), HCC %lu, "
            "ITT entry %lu bytes",
       dev_baser, dte_size, coll_baser, cte_size, gits_typer >> 24 & 0xff, (gits_typer >> 4 & 0xf) + 1);
    if (dev_baser < 0) {
        class_end(cls, false, "no ITS device table");
        return;
    }
    const uint64_t VALID = 1ull << 63;
    w64(GITS + 0x100 + 8 * (unsigned)dev_baser, VALID | dt_pa);
    if (coll_baser >= 0)
        w64(GITS + 0x100 + 8 * (unsigned)coll_baser, VALID | ct_pa);
    w64(GITS + 0x80, VALID | cmdq_pa | 0); /* one 4 KiB page: 128 commands */
    w64(GITS + 0x88, 0);
    cmd_n = 0;
    w32(GITS, 1);
    uint64_t rdbase = rtyper >> 8 & 0xffff; /* PTA 0: the processor number */
    if (gits_typer & (1u << 19))
        rdbase = rd >> 16;
    bool ok1 = true;
    if (wrote_redist) {
        its_cmd(0x09, 0, VALID | rdbase << 16 | 0, 0);                       /* MAPC icid 0 -> this CPU */
        its_cmd(0x08 | 1ull << 32, 4, VALID | (itt_pa & ~0xffull), 0);       /* MAPD device 1, 32 events, ITT ours */
        for (unsigned b = 0; b < 8; b++)
            its_cmd(0x0a | 1ull << 32, b | (uint64_t)(intid0 + b) << 32, 0, 0); /* MAPTI event b -> LPI intid0+b */
        for (unsigned b = 0; b < 8; b++)
            its_cmd(0x03 | 1ull << 32, b, 0, 0); /* INT: the redistributor sets the pending bit */
        its_cmd(0x05, 0, rdbase << 16, 0);       /* SYNC */
        ok1 = its_go(cls);
        spin_us(10000);
        hl(cls, "ITS: MAPC, MAPD, 8 MAPTI to LPIs %u..%u and 8 INT processed: %s; GITS_CREADR 0x%lx", intid0, intid0 + 7,
           ok1 ? "yes" : "NO", r64(GITS + 0x90));
        a1 = audit("gic-redist-pending", &intact);
        char bits[96];
        hl(cls, "after the redistributor's pending-table writes at %s 0x%lx: audit%s%s", tname, target,
           intact_text(intact, bits, sizeof bits), a1 ? " (the GIC did not change what the audit covers)" : "");
    }
    /* 3. The ITS's own tables in the region: the device table in the canary's page, an ITT in it. */
    w32(GITS, 0);
    for (unsigned i = 0; i < 100000 && !(r32(GITS) & 0x80000000u); i++)
        ;
    uint64_t cpage = H->canary_pa & ~0xfffull;
    uint64_t devid = (H->canary_pa + 16 - cpage) / dte_size;
    w64(GITS + 0x100 + 8 * (unsigned)dev_baser, VALID | cpage);
    uint64_t baser_back = r64(GITS + 0x100 + 8 * (unsigned)dev_baser);
    w64(GITS + 0x80, VALID | cmdq_pa);
    w64(GITS + 0x88, 0);
    cmd_n = 0;
    w32(GITS, 1);
    uint64_t itt_region = (H->canary_pa + 0x200) & ~0xffull;
    its_cmd(0x09, 0, VALID | rdbase << 16 | 1, 0);                               /* MAPC icid 1 */
    its_cmd(0x08 | devid << 32, 4, VALID | (itt_pa & ~0xffull), 0);              /* MAPD: DTE into the canary page */
    its_cmd(0x08 | (devid + 1) << 32, 4, VALID | itt_region, 0);                 /* MAPD: another, ITT in the canary */
    its_cmd(0x0a | (devid + 1) << 32, 1 | (uint64_t)(8192 + 100) << 32, 1, 0);   /* MAPTI: ITE into the canary page */
    its_cmd(0x05, 0, rdbase << 16, 0);
    bool ok2 = its_go(cls);
    spin_us(10000);
    hl(cls, "ITS: BASER%d = the canary's page 0x%lx (read back 0x%lx), MAPD device %lu (DTE at 0x%lx), MAPD device %lu "
            "with ITT 0x%lx, MAPTI (ITE there): processed %s",
       dev_baser, cpage, baser_back, devid, cpage + devid * dte_size, devid + 1, itt_region, ok2 ? "yes" : "NO");
    w32(GITS, 0);
    bool a2 = audit("gic-its-tables", &intact);
    char bits2[96];
    hl(cls, "after the ITS's table writes into the canary's page: audit%s", intact_text(intact, bits2, sizeof bits2));
    checkf(&C, a1 && a2 && ok1 && ok2,
           "class gic: PENDBASER in the region + ITS INT, ITS tables in the canary page; audit:%s%s",
           intact_text(intact, bits2, sizeof bits2),
           a1 && a2 ? "" : " (KNOWN LIMIT: the GIC writes where the guest says)");
    classes_failed += !(a1 && a2 && ok1 && ok2);
}

/* ---- start ---- */

static void find_ram(void)
{
    UINTN n = 0, key = 0, dsize = 0;
    UINT32 dver = 0;
    EFI_MEMORY_DESCRIPTOR *map = LibMemoryMap(&n, &key, &dsize, &dver);
    if (!map)
        return;
    for (UINTN i = 0; i < n; i++) {
        EFI_MEMORY_DESCRIPTOR *d = (EFI_MEMORY_DESCRIPTOR *)((uint8_t *)map + i * dsize);
        if (d->Type == EfiMemoryMappedIO || d->Type == EfiMemoryMappedIOPortSpace)
            continue;
        uint64_t end = d->PhysicalStart + d->NumberOfPages * 4096;
        if (d->PhysicalStart < ram_lo)
            ram_lo = d->PhysicalStart;
        if (end > ram_hi)
            ram_hi = end;
    }
    FreePool(map);
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
    InitializeLib(image, systab);
    sink_printf(out, "--- hostile payload (guest, aarch64) ---\n");
    EFI_LOADED_IMAGE *loaded = NULL;
    EFI_STATUS st = uefi_call_wrapper(BS->HandleProtocol, 3, image, &LoadedImageProtocol, (void **)&loaded);
    const struct loader_handoff *o = loaded ? loaded->LoadOptions : NULL;
    if (EFI_ERROR(st) || !o || loaded->LoadOptionsSize < sizeof *o || o->magic != LOADER_HANDOFF_MAGIC) {
        sink_printf(out, "hostile: start: no options from the loader (status 0x%lx): nothing to attack\n", (uint64_t)st);
        return EFI_INVALID_PARAMETER;
    }
    H = o;
    region_end = o->region_base + o->region_bytes;
    rng_state ^= tsc_read();
    find_ram();
    page = alloc_pages(1, &page_pa);
    uint8_t *pbuf = alloc_pages(1, &pbuf_pa);
    box = (struct cpu1_box *)alloc_pages(8, &box_pa);
    hl("start", "CurrentEL 0x%lx, MPIDR 0x%lx, VBAR_EL1 0x%lx, vectors 0x%lx; region [0x%lx, 0x%lx), secret at 0x%lx, hv "
                "code 0x%lx+0x%lx",
       current_el(), my_mpidr(), ({
           uint64_t v;
           __asm__ volatile("mrs %0, vbar_el1" : "=r"(v));
           v;
       }),
       (uint64_t)(uintptr_t)hx_vectors, o->region_base, region_end, o->canary_pa, o->image_base, o->image_bytes);
    hl("start", "%u SMMU(s) at 0x%lx, RAM [0x%lx, 0x%lx) by the memory map, %u secondary CPU(s) (first 0x%lx), edu BAR 0x%lx",
       o->iommu_units, o->iommu_base[0], ram_lo, ram_hi, o->cpus, o->cpus ? o->secondary_mpidr[0] : 0,
       o->edus ? o->edu[0].bar : 0);
    if (!page || !pbuf || !box || ((uint64_t)(uintptr_t)hx_vectors & 0x7ff)) {
        hl("start", "no pages, or the vectors are not 2 KiB aligned");
        return EFI_OUT_OF_RESOURCES;
    }

    class_memory();
    class_console();
    class_hypercall();
    class_cpus();
    class_psci();
    class_dma();
    class_gic(); /* last: the documented known limit, it may break the canary for good */
    uint32_t in = 0;
    audit_named("final", "final", 5, leaked, &in);

    sink_printf(out, "hostile: summary: %u checks, %u failed (%u classes); secret read: 0x%lx; stray interrupts %lu (the "
                     "verdict is the hypervisor's)\n",
                C.run, C.failed, classes_failed, leaked, hx_other_count);
    return C.failed ? EFI_ABORTED : EFI_SUCCESS;
}
