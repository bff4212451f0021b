/* HOSTILE.EFI: the attacker of docs/security.md, run as the hypervisor's guest
 * (scripts/run.sh --payload hostile). At CPL 0 on every CPU, knowing the hypervisor's design
 * and addresses, it tries every way out it knows, class by class (boot/guest/hostile/hostile.h); after
 * each class it makes every AP answer a hypercall and asks the hypervisor to audit itself
 * (HC_AUDIT, with the secret it managed to read, if any), which prints its verdict on its
 * own channel. The tests judge from that channel only; the lines here, on COM1, say what was
 * tried and what the guest saw:
 *
 *   hostile: CLASS: what: result
 *
 * It keeps going when an attempt fails, restores what it changed where it can, and bounds
 * every wait. */
#include "guest/hostile/hostile.h"

#include "common/cpuid.h"
#include "common/x86_tables.h"

#include <stdarg.h>

#include "common/edu.h"
#include "guest/lib/guest.h"
#include "common/report.h"

uint64_t hostile_tsc_per_us = 1;

/* ---- console ---- */

void hl(struct hostile *h, const char *cls, const char *fmt, ...)
{
    (void)h;
    char line[400];
    va_list ap;
    va_start(ap, fmt);
    fmt_vformat(line, sizeof line, fmt, ap);
    va_end(ap);
    sink_printf(out, "hostile: %s: %s\n", cls, line);
}

void attempt(struct hostile *h, const char *cls, bool got_through, const char *fmt, ...)
{
    char line[400];
    va_list ap;
    va_start(ap, fmt);
    fmt_vformat(line, sizeof line, fmt, ap);
    va_end(ap);
    h->attempts++;
    if (got_through) {
        h->got_through++;
        bool listed = false;
        for (unsigned i = 0; i < h->nworked; i++) {
            unsigned k = 0;
            while (k < 23 && cls[k] && h->worked[i][k] == cls[k])
                k++;
            listed |= h->worked[i][k] == cls[k] || k == 23;
        }
        if (!listed && h->nworked < sizeof h->worked / sizeof h->worked[0]) {
            unsigned n = 0;
            while (cls[n] && n < 23) {
                h->worked[h->nworked][n] = cls[n];
                n++;
            }
            h->worked[h->nworked++][n] = 0;
        }
    } else {
        h->refused++;
    }
    sink_printf(out, "hostile: %s: %s: %s\n", cls, line, got_through ? "GOT THROUGH" : "refused");
}

/* ---- memory ---- */

uint8_t *hostile_pages(UINTN n, uint64_t *pa)
{
    EFI_PHYSICAL_ADDRESS addr = 0xffffffff;
    if (EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiBootServicesData, n, &addr)))
        return NULL;
    __builtin_memset((void *)(uintptr_t)addr, 0, n * 4096);
    *pa = addr;
    return (uint8_t *)(uintptr_t)addr;
}

void hostile_free(uint64_t pa, UINTN n)
{
    if (pa)
        uefi_call_wrapper(BS->FreePages, 2, pa, n);
}

void stall_us(UINTN us)
{
    uefi_call_wrapper(BS->Stall, 1, us);
}

uint64_t read_cr(int n)
{
    uint64_t v = 0;
    switch (n) {
    case 0:
        __asm__ volatile("mov %%cr0, %0" : "=r"(v));
        break;
    case 3:
        __asm__ volatile("mov %%cr3, %0" : "=r"(v));
        break;
    case 4:
        __asm__ volatile("mov %%cr4, %0" : "=r"(v));
        break;
    }
    return v;
}

/* ---- the #GP handler (hostile_traps.S) in the IDT, shared by every CPU ---- */

static struct x86_idt_gate saved_gp, saved_ud;
static unsigned gp_depth;

/* #GP and #UD both go to the counting handler (a hypercall without EFER.SVME is a #UD). */
void install_gp(bool on)
{
    struct x86_idt_gate *gp = &x86_current_idt()[13], *ud = &x86_current_idt()[6];
    if (on) {
        if (gp_depth++)
            return;
        saved_gp = *gp;
        saved_ud = *ud;
        uint16_t cs;
        __asm__ volatile("mov %%cs, %0" : "=r"(cs));
        *gp = x86_interrupt_gate((uint64_t)(uintptr_t)hostile_gp_handler, cs, 0);
        *ud = x86_interrupt_gate((uint64_t)(uintptr_t)hostile_ud_handler, cs, 0);
    } else if (gp_depth && !--gp_depth) {
        *gp = saved_gp;
        *ud = saved_ud;
    }
}

uint64_t gp_count(void)
{
    return __atomic_load_n(&hostile_gp_count, __ATOMIC_SEQ_CST);
}

/* ---- edu ---- */

/* One edu DMA of the device's buffer from or to iova; false when it did not finish in time. */
bool edu_move(struct hostile *h, uint64_t iova, uint32_t len, bool to_ram)
{
    if (!h->o->edus)
        return false;
    return edu_dma(&guest_platform, h->o->edu[0].bar, iova, len, to_ram);
}

/* ---- every CPU still a guest ---- */

struct ap_call {
    volatile uint64_t status;
    volatile uint32_t signature_ok;
};

static VOID EFIAPI ap_hypercall(VOID *argument)
{
    struct ap_call *a = argument;
    uint32_t r[4];
    cpuid(0x40000000u, 0, r);
    a->signature_ok = r[1] == 0x6d6d6f69u; /* "iomm" */
    struct hc_version_block v = {0};
    a->status = hvmcall(hc_rax(HC_VERSION), (uint64_t)(uintptr_t)&v, sizeof v);
}

/* Every AP makes one hypercall (HC_VERSION) through MP services, with a timeout. */
bool every_ap_answers(struct hostile *h, const char *cls, const char *after)
{
    bool all = true;
    for (UINTN i = 1; h->mp && i < h->cpus; i++) {
        struct ap_call a = {.status = ~0ull};
        EFI_STATUS st = h->mp->startup_this_ap(h->mp, ap_hypercall, i, NULL, 2 * 1000 * 1000, &a, NULL);
        bool ok = !EFI_ERROR(st) && a.status == 0 && a.signature_ok;
        all &= ok;
        hl(h, cls, "cpu %lu after %s: StartupThisAP 0x%lx, CPUID signature %s, HC_VERSION 0x%lx: %s", (uint64_t)i, after,
           (uint64_t)st, a.signature_ok ? "ours" : "missing", a.status, ok ? "still a guest" : "NOT ANSWERING");
    }
    return all;
}

void audit(struct hostile *h, const char *cls, uint64_t claimed)
{
    if (h->cpus > 1)
        every_ap_answers(h, cls, "the class");
    struct hc_audit_block b = {0};
    for (unsigned i = 0; cls[i] && i < HC_AUDIT_NAME_BYTES - 1; i++)
        b.name[i] = cls[i];
    b.claimed_secret = claimed;
    uint64_t st = hvmcall(hc_rax(HC_AUDIT), (uint64_t)(uintptr_t)&b, sizeof b);
    h->classes++;
    if (claimed)
        h->leaked = claimed;
    if ((uint32_t)st == (uint32_t)STATUS_INVALID_SYSTEM_SERVICE)
        hl(h, cls, "audit: HC_AUDIT not served yet (0x%lx); claimed secret 0x%lx", st, claimed);
    else
        hl(h, cls, "audit: status 0x%lx, sequence %u, intact bits 0x%x; claimed secret 0x%lx", st, b.sequence, b.intact,
           claimed);
}

/* ---- start ---- */

static void find_cpus(struct hostile *h)
{
    EFI_GUID guid = MP_SERVICES_PROTOCOL_GUID;
    UINTN total = 1, enabled = 1;
    h->cpus = 1;
    if (EFI_ERROR(uefi_call_wrapper(BS->LocateProtocol, 3, &guid, NULL, (void **)&h->mp)) || !h->mp ||
        EFI_ERROR(h->mp->get_number_of_processors(h->mp, &total, &enabled))) {
        h->mp = NULL;
        return;
    }
    h->cpus = total;
    for (UINTN i = 0; i < total && i < 8; i++) {
        struct mp_processor_information info = {0};
        if (!EFI_ERROR(h->mp->get_processor_info(h->mp, i, &info)))
            h->apic_id[i] = (uint32_t)info.processor_id;
    }
}

static void find_ddi(struct hostile *h)
{
    EFI_GUID guid = IOMMU_HV_DDI_PROTOCOL_GUID;
    h->have_ddi = !EFI_ERROR(uefi_call_wrapper(BS->LocateProtocol, 3, &guid, NULL, (void **)&h->ddi)) && h->ddi &&
                  h->ddi->get_interface_ex(2, 0, &h->ex) == STATUS_SUCCESS &&
                  h->ddi->get_interface(1, &h->v1) == STATUS_SUCCESS;
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
    InitializeLib(image, systab);
    sink_printf(out, "--- hostile payload (guest) ---\n");
    static struct hostile hs;
    struct hostile *h = &hs;
    EFI_LOADED_IMAGE *loaded = NULL;
    EFI_STATUS st = uefi_call_wrapper(BS->HandleProtocol, 3, image, &LoadedImageProtocol, (void **)&loaded);
    const struct loader_handoff *o = loaded ? loaded->LoadOptions : NULL;
    if (EFI_ERROR(st) || !o || loaded->LoadOptionsSize < sizeof *o || o->magic != LOADER_HANDOFF_MAGIC) {
        sink_printf(out, "hostile: start: no options from the loader (status 0x%lx): nothing to attack\n", (uint64_t)st);
        return EFI_INVALID_PARAMETER;
    }
    h->o = o;
    h->region_end = o->region_base + o->region_bytes;
    h->canary_known = o->canary_pa != 0;
    /* Until the loader names the canary, the region's first page stands in: the loader
     * image's header, whose first bytes ("MZ") show a read got through; the marker at +8
     * lands in the DOS header, which nothing uses at run time. */
    h->target_pa = h->canary_known ? o->canary_pa : o->region_base;
    h->pm_base = o->pm_base ? (uint16_t)o->pm_base : HOSTILE_PM_BASE_DEFAULT;
    hostile_tsc_per_us = guest_clock_calibrate();
    find_cpus(h);
    find_ddi(h);
    h->page = hostile_pages(1, &h->page_pa);
    h->dma = hostile_pages(1, &h->dma_pa);
    hl(h, "start", "region [0x%lx, 0x%lx), loader image 0x%lx+0x%lx, %u IOMMU unit(s) at 0x%lx, %u edu(s), BAR 0x%lx",
       o->region_base, h->region_end, o->image_base, o->image_bytes, o->iommu_units, o->iommu_base[0], o->edus,
       o->edus ? o->edu[0].bar : 0);
    hl(h, "start", "secret page 0x%lx (%s), PM base 0x%x%s, %lu CPU(s), DDI protocol %s", h->target_pa,
       h->canary_known ? "the loader's canary_pa" : "canary_pa is 0: the region's first page, the image header, stands in",
       (unsigned)h->pm_base, o->pm_base ? "" : " (pm_base is 0: q35's)", (uint64_t)h->cpus,
       h->have_ddi ? "found" : "MISSING");
    if (!h->page || !h->dma) {
        hl(h, "start", "no memory for the attack pages");
        return EFI_OUT_OF_RESOURCES;
    }

    class_msr(h);
    class_host_state(h);
    class_ddi_map(h);
    class_smi(h);
    class_init(h);
    class_pci_config(h);
    class_ports(h);
    class_hypercall(h);
    class_toctou(h);
    class_dma(h);
    class_nmi(h);
    class_flood(h); /* last: it uses up the hypervisor's budget of refusal lines for cpu 0 */
    audit(h, "final", h->leaked);

    sink_printf(out, "hostile: summary: %u classes audited, %u attempts: %u refused, %u got through%s", h->classes,
                h->attempts, h->refused, h->got_through, h->nworked ? " (in" : "");
    for (unsigned i = 0; i < h->nworked; i++)
        sink_printf(out, " %s", h->worked[i]);
    sink_printf(out, "%s; secret read: 0x%lx (the verdict is the hypervisor's, on its own channel)\n",
                h->nworked ? ")" : "", h->leaked);
    return EFI_SUCCESS;
}
