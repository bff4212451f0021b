/* The hypervisor's architecture-neutral half (see boot/hypervisor/hv.h): the audit and the
 * verdict, the refusal lines, the DDI provider and hypercall server over the remapping, and
 * the region's pages. Freestanding: no firmware call (the build gives it no UEFI headers);
 * what only the CPU architecture can do, it asks of hypervisor/arch.h. */
#include "hypervisor/hv.h"

#include "ddi/hc_server.h"
#include "ddi/provider.h"
#include "hypervisor/arch.h"
#include "iommu/ranges.h"

struct hv *the_hv;

/* ---- the audit and the verdict (docs/security.md) ---- */

static uint64_t canary_word(unsigned i)
{
    return the_hv->secret ^ (0x9E3779B97F4A7C15ull * (i + 1));
}

static uint64_t code_hash(void)
{
    uint64_t h = 0xCBF29CE484222325ull; /* FNV-1a */
    for (uint64_t i = 0; i < the_hv->code_bytes; i++)
        h = (h ^ the_hv->code[i]) * 0x100000001B3ull;
    return h;
}

/* Checks everything the guest must not have reached and prints one line on the channel;
 * returns the HC_AUDIT_* bits that hold. */
static uint32_t audit(const char *name, uint64_t claimed_secret)
{
    struct hv *hv = the_hv;
    uint32_t intact = 0;
    if (claimed_secret != hv->secret)
        intact |= HC_AUDIT_SECRET_KEPT;
    unsigned changed = 0;
    for (unsigned i = 1; i < PAGE_SIZE / 8; i++)
        changed += hv->canary[i] != canary_word(i);
    if (!changed && hv->canary[0] == hv->secret)
        intact |= HC_AUDIT_CANARY;
    if (code_hash() == hv->code_hash)
        intact |= HC_AUDIT_CODE;
    bool units = true;
    uint32_t status = 0, other;
    const struct iommu_unit *first = hv->remap->unit_ptr[0];
    for (unsigned i = 0; i < hv->remap->units; i++)
        units = iommu_unit_intact(hv->remap->unit_ptr[i], i ? &other : &status) && units;
    if (units)
        intact |= HC_AUDIT_IOMMU;
    /* A CPU still in guest mode exits when kicked (an NMI, which its intercept turns into an
     * exit even while it halts); one taken out of guest mode makes none. Each gets 100 ms
     * to make its next. */
    unsigned guests = 0, launched = 0, self = hv_arch_this_cpu();
    uint64_t since[HV_MAX_CPUS];
    for (unsigned i = 0; i < hv->cpus; i++)
        since[i] = __atomic_load_n(&hv->cpu[i].vcpu.exits, __ATOMIC_RELAXED);
    for (unsigned i = 0; i < hv->cpus; i++)
        if (i != self && hv->cpu[i].launched) {
            __atomic_add_fetch(&hv->cpu[i].vcpu.kicks, 1, __ATOMIC_RELEASE);
            hv_arch_kick(&hv->cpu[i]);
        }
    uint64_t start = hv->plat->now_ns(hv->plat->ctx);
    for (unsigned i = 0; i < hv->cpus; i++) {
        struct hv_cpu *cpu = &hv->cpu[i];
        if (!cpu->launched)
            continue;
        launched++;
        bool exited = i == self;
        while (!exited && hv->plat->now_ns(hv->plat->ctx) - start < 100000000ull) {
            /* One in the middle of a short exit (waiting for this audit's lock, say) is a
             * guest; one that has been in its exit for a second is not (a CPU ejected
             * while in the host stays "in" its exit for ever). */
            uint64_t now = hv->plat->now_ns(hv->plat->ctx);
            exited = __atomic_load_n(&cpu->vcpu.exits, __ATOMIC_RELAXED) != since[i] ||
                     (__atomic_load_n(&cpu->in_exit, __ATOMIC_ACQUIRE) &&
                      now - __atomic_load_n(&cpu->exit_started_ns, __ATOMIC_RELAXED) < 1000000000ull);
            hv_arch_relax();
        }
        guests += exited;
    }
    if (guests == launched)
        intact |= HC_AUDIT_CPUS;
    (void)other;
    hv->audits++;
    hv->audits_failed += intact != HC_AUDIT_ALL;
    sink_printf(out,
                "hv: audit %u (%s) on cpu %u: secret %s, canary %s, code %s, iommu %s (%s[0] %s 0x%x), %u of %u "
                "cpus still guests: %s\n",
                hv->audits, name, self, intact & HC_AUDIT_SECRET_KEPT ? "kept" : "LEAKED",
                intact & HC_AUDIT_CANARY ? "intact" : "CHANGED", intact & HC_AUDIT_CODE ? "intact" : "CHANGED",
                units ? "intact" : "CHANGED", first->name, first->ops->status_name, status, guests, launched, intact == HC_AUDIT_ALL ? "PASS" : "FAIL");
    return intact;
}

/* The machine's end, on the channel: a last audit, then the verdict, which counts the
 * loader's checks, the payload's status (when it reported one) and every audit. */
void hv_verdict(const char *how, bool payload_ok)
{
    struct hv *hv = the_hv;
    hc_collect_faults(); /* every fault recorded so far is on the channel before the verdict */
    audit("final", 0);
    for (unsigned i = 0; i < hv->cpus; i++)
        hv_arch_print_cpu_counts(&hv->cpu[i]);
    bool pass = !hv->loader_failed && payload_ok && !hv->audits_failed;
    sink_printf(out, "hv: %s\n", how);
    sink_printf(out, "RESULT: %s (%u loader checks, %u failed; payload %s; %u audits, %u failed)\n",
                pass ? "PASS" : "FAIL", hv->loader_checks, hv->loader_failed, payload_ok ? "ok" : "FAILED",
                hv->audits, hv->audits_failed);
}

static unsigned server_this_cpu(void *ctx)
{
    (void)ctx;
    return hv_arch_this_cpu();
}

/* HC_AUDIT and HC_GUEST_EXIT, with their blocks already copied in by the server. */
static NTSTATUS host_call(void *ctx, uint32_t call, void *block)
{
    (void)ctx;
    if (call == HC_AUDIT) {
        struct hc_audit_block *b = block;
        char name[HC_AUDIT_NAME_BYTES + 1];
        unsigned n = 0;
        for (; n < HC_AUDIT_NAME_BYTES && b->name[n]; n++) {
            char ch = b->name[n];
            bool plain = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
            name[n] = plain ? ch : '?'; /* the channel carries no character the guest chose */
        }
        name[n] = 0;
        b->intact = audit(n ? name : "unnamed", b->claimed_secret);
        b->sequence = the_hv->audits;
        return STATUS_SUCCESS;
    }
    if (call == HC_GUEST_EXIT) {
        const struct hc_guest_exit_block *b = block;
        char how[96];
        fmt_format(how, sizeof how, "the payload returned status 0x%lx; the hypervisor powers the machine off",
                   b->status);
        hv_verdict(how, b->status == 0);
        hv_arch_power_off();
    }
    return STATUS_INVALID_SYSTEM_SERVICE;
}

/* Every refusal is counted; each CPU prints the first of each kind, address and value (up
 * to HV_REFUSALS_SHOWN different ones), then every 1000th of that kind of refusal (count),
 * so that what a guest tried is on the channel without the guest being able to flood it. */
bool hv_refusal_shown(struct hv_cpu *cpu, uint64_t key, uint64_t count)
{
    key *= 0x9E3779B97F4A7C15ull;
    bool seen = false;
    for (unsigned i = 0; i < cpu->refusals_shown && !seen; i++)
        seen = cpu->refusal_shown[i] == key;
    if (!seen && cpu->refusals_shown < HV_REFUSALS_SHOWN) {
        cpu->refusal_shown[cpu->refusals_shown++] = key;
        return true;
    }
    return count % 1000 == 0;
}

void hv_log_refusal(struct hv_cpu *cpu)
{
    const struct hv_vcpu *v = &cpu->vcpu;
    if (!hv_refusal_shown(cpu, (uint64_t)v->refused << 56 ^ v->refused_what << 16 ^ v->refused_value, v->refusals))
        return;
    const char *what = hv_arch_refusal_name(v->refused);
    sink_printf(out, "hv: cpu %u: %s 0x%lx (value 0x%lx) refused (refusal %lu)\n", cpu->index, what, v->refused_what,
                v->refused_value, v->refusals);
}

static void guest_read(void *ctx, uint64_t gpa, void *buf, size_t len)
{
    (void)ctx;
    __builtin_memcpy(buf, (const void *)(uintptr_t)gpa, len);
}

static void guest_write(void *ctx, uint64_t gpa, const void *buf, size_t len)
{
    (void)ctx;
    __builtin_memcpy((void *)(uintptr_t)gpa, buf, len);
}

/* Every DMA fault the host collects goes to the console, reported to the guest or not. */
static void log_fault(void *ctx, const struct iommu_unit *unit, const struct iommu_fault_record *fault)
{
    (void)ctx;
    remap_print_fault(unit, fault);
}

static bool start_ddi(struct remapping *r, const struct pci_inventory *inv, struct hc_server_config *cfg,
                      struct checks *c)
{
    struct ddi_platform p = {.pool = &r->pool, .unit_count = r->units, .pci = inv, .protected_base = r->region_pa,
#if defined(__aarch64__)
                             .arch = DDI_ARCH_ARM64,
#endif
                             .protected_size = r->region_bytes, .has_default_context = true,
                             .default_context = {IOMMU_TRANSLATE, DEFAULT_DOMAIN_ID, r->default_domain.root_pa, r->levels},
                             .first_domain_id = DEFAULT_DOMAIN_ID + 1, .fault_seen = log_fault};
    for (unsigned i = 0; i < r->units; i++)
        p.units[i] = r->unit_ptr[i];
    /* What a DDI domain may map: guest RAM alone (docs/security.md, docs/ddi.md). */
    for (unsigned i = 0; i < cfg->ram_count && i < DDI_MAX_GUEST_RAM_RANGES; i++)
        p.guest_ram[p.guest_ram_count++] =
            (struct addr_range){cfg->ram[i].base, cfg->ram[i].base + cfg->ram[i].size};
    enum iommu_status st = ddi_provider_init(&p);
    if (!checkf(c, st == IOMMU_OK, "DDI provider over %u units (%s)", r->units, iommu_status_name(st)))
        return false;
    cfg->read = guest_read;
    cfg->write = guest_write;
    cfg->pool = &r->pool;
    st = hc_server_init(cfg);
    return checkf(c, st == IOMMU_OK, "hypercall server: %u guest RAM ranges (%s)", cfg->ram_count, iommu_status_name(st));
}

void *hv_region_pages(struct remapping *r, unsigned pages, uint64_t *pa)
{
    /* The pool hands out single pages; these are taken at start-up, in order, so a run of
     * them is contiguous (checked). */
    uint64_t first = 0, got;
    void *va = NULL;
    for (unsigned i = 0; i < pages; i++) {
        void *p = page_pool_alloc(&r->pool, &got);
        if (!p || (i && got != first + (uint64_t)i * PAGE_SIZE))
            return NULL;
        if (!i) {
            first = got;
            va = p;
        }
    }
    *pa = first;
    return va;
}

extern const uint8_t _text[], _etext[]; /* the image's code (gnu-efi's linker script) */

/* What the audit compares against: the secret and canary page, the code's hash. */
bool hv_prepare_audit(struct hv *hv, struct checks *c)
{
    hv->canary = hv_region_pages(hv->remap, 1, &hv->canary_pa);
    if (!check(c, hv->canary != NULL, "audit: a secret and a canary page in the reserved region"))
        return false;
    hv->secret = hv_arch_random64() | 1; /* never 0, which a guest that read nothing claims */
    hv->canary[0] = hv->secret;
    for (unsigned i = 1; i < PAGE_SIZE / 8; i++)
        hv->canary[i] = canary_word(i);
    hv->code = _text;
    hv->code_bytes = (uint64_t)(_etext - _text);
    hv->code_hash = code_hash();
    return checkf(c, hv->code_bytes > 0, "audit: the canary at 0x%lx, %lu bytes of code hashed", hv->canary_pa,
                  hv->code_bytes);
}


void hv_init(struct hv *hv, const struct hv_setup *s)
{
    the_hv = hv;
    hv->remap = s->remap;
    hv->region_pa = s->remap->region_pa, hv->region_bytes = s->remap->region_bytes;
    hv->plat = s->plat;
    hv->pci = s->pci;
}

bool hv_start_ddi(const struct hv_setup *s, struct checks *c)
{
    struct hc_server_config cfg = {.host_call = host_call, .this_cpu = server_this_cpu};
    for (unsigned i = 0; i < s->ram_count && i < HC_MAX_RAM_RANGES; i++)
        cfg.ram[cfg.ram_count++] = s->ram[i];
    cfg.inject_pool = s->fault_injection ? &s->remap->pool : NULL;
    if (s->fault_injection)
        sink_printf(out, "hv: fault injection on: the guest may make the hypervisor fail (HC_INJECT)\n");
    return start_ddi(s->remap, s->pci, &cfg, c);
}
