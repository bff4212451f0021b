/* SELFTEST.EFI: the default payload. The firmware starts it as a guest of the hypervisor;
 * it checks, from the guest's side, what the hypervisor promises, and ends the run with the
 * RESULT line (counting the loader's checks, passed in its LoadOptions).
 *
 *   - CPUID shows the hypervisor's leaves;
 *   - hypercalls work, and a null one's round trip is measured against a plain call;
 *   - the hypervisor's memory (the reserved region, the loader image) and the IOMMU's
 *     registers are out of reach: each read and write raises #GP, caught here;
 *   - a hypercall naming the hypervisor's memory as its parameter block is refused;
 *   - the ACPI tables the guest finds list no DMAR, and are well formed. */
#include <efi.h>
#include <efilib.h>

#include "common/cpuid.h"
#include "ddi/hypercall.h"
#include "guest/lib/ddi_protocol.h"
#include "guest/lib/guest.h"
#include "iommu/acpi.h"
#include "common/mp_services.h"
#include "common/report.h"
#include "common/loader_handoff.h"
#include "common/x86_tables.h"

void selftest_ddi(const struct loader_handoff *o, struct checks *c);              /* selftest_ddi.c */
unsigned selftest_random_hypercalls(const struct loader_handoff *o, struct checks *c); /* selftest_fuzz.c */
extern void selftest_gp_handler(void);
extern volatile uint64_t selftest_gp_count;

static unsigned hypercalls;

static uint64_t vmmcall(uint64_t rax, uint64_t rcx, uint64_t rdx)
{
    hypercalls++;
    return guest_hypercall(rax, rcx, rdx);
}

static __attribute__((noinline)) uint64_t plain_call(uint64_t rax, uint64_t rcx, uint64_t rdx)
{
    __asm__ volatile("" : "+r"(rax) : "r"(rcx), "r"(rdx));
    return rax;
}

static void check_cpuid(struct checks *c)
{
    uint32_t r[4];
    cpuid(0x40000000u, 0, r);
    char signature[13] = {0};
    __builtin_memcpy(signature, &r[1], 12);
    uint32_t max = r[0];
    cpuid(0x40000001u, 0, r);
    checkf(c, max >= 0x40000001u && r[0] == HC_ABI_VERSION && signature[0] == 'i',
           "guest: CPUID 0x40000000 says \"%s\", leaf 0x40000001 ABI %u", signature, r[0]);
}

static void check_hypercalls(struct checks *c)
{
    struct hc_version_block v = {0};
    uint64_t st = vmmcall(hc_rax(HC_VERSION), (uint64_t)(uintptr_t)&v, sizeof v);
    checkf(c, st == 0 && v.abi_version == HC_ABI_VERSION, "guest: hypercall HC_VERSION: status 0x%lx, ABI %u", st,
           v.abi_version);
    enum { ROUNDS = 1000 };
    uint64_t t0 = tsc_read();
    for (unsigned i = 0; i < ROUNDS; i++)
        vmmcall(hc_rax(HC_VERSION), (uint64_t)(uintptr_t)&v, sizeof v);
    uint64_t t1 = tsc_read();
    for (unsigned i = 0; i < ROUNDS; i++)
        plain_call(hc_rax(HC_VERSION), (uint64_t)(uintptr_t)&v, sizeof v);
    uint64_t t2 = tsc_read(), per_us = tsc_ticks_per_us(); /* the rate, for a figure beside the Arm one */
    sink_printf(out, "hv: null hypercall round trip %lu TSC cycles, plain call %lu (mean of %u); %lu ns at %lu MHz\n",
                (t1 - t0) / ROUNDS, (t2 - t1) / ROUNDS, ROUNDS, (t1 - t0) * 1000 / per_us / ROUNDS, per_us);
}

/* ---- every CPU a guest ---- */

struct ap_probe {
    uint64_t status;
    char signature[13];
};

/* Run on an AP by the firmware's MP services, which first wake it with INIT-SIPI-SIPI: the
 * hypervisor emulates those, so the AP is still a guest here. */
static VOID EFIAPI ap_probe(VOID *argument)
{
    struct ap_probe *p = argument;
    uint32_t r[4];
    cpuid(0x40000000u, 0, r);
    __builtin_memcpy(p->signature, &r[1], 12);
    struct hc_version_block v = {0};
    p->status = vmmcall(hc_rax(HC_VERSION), (uint64_t)(uintptr_t)&v, sizeof v);
    if (p->status == 0 && v.abi_version != HC_ABI_VERSION)
        p->status = 1;
}

static void check_every_cpu(struct checks *c)
{
    EFI_GUID guid = MP_SERVICES_PROTOCOL_GUID;
    struct mp_services_protocol *mp = NULL;
    UINTN total = 1, enabled = 1;
    if (EFI_ERROR(uefi_call_wrapper(BS->LocateProtocol, 3, &guid, NULL, (void **)&mp)) ||
        EFI_ERROR(mp->get_number_of_processors(mp, &total, &enabled)))
        total = 1;
    for (UINTN i = 1; i < total; i++) {
        struct ap_probe p = {.status = ~0ull};
        EFI_STATUS st = mp->startup_this_ap(mp, ap_probe, i, NULL, 5 * 1000 * 1000, &p, NULL);
        checkf(c, !EFI_ERROR(st) && p.status == 0 && p.signature[0] == 'i',
               "guest: cpu %lu, woken by the firmware with INIT-SIPI: CPUID says \"%s\", hypercall status 0x%lx",
               (uint64_t)i, p.signature, p.status);
    }
}

/* ---- what the guest must not find ---- */

static const void *identity(void *ctx, uint64_t pa, size_t len)
{
    (void)ctx;
    (void)len;
    return (const void *)(uintptr_t)pa;
}

static void check_acpi(struct checks *c)
{
    EFI_GUID acpi20 = ACPI_20_TABLE_GUID;
    void *rsdp = NULL;
    struct acpi_tables tables;
    struct diag d;
    diag_clear(&d);
    struct platform plat = {.map_phys = identity};
    bool ok = LibGetSystemConfigurationTable(&acpi20, &rsdp) == EFI_SUCCESS && rsdp &&
              acpi_discover(&plat, (uint64_t)(uintptr_t)rsdp, &tables, &d);
    diag_print(&d, "guest acpi", out);
    checkf(c, ok && !d.warnings && !acpi_find(&tables, "DMAR") && acpi_find(&tables, "FACP"),
           "guest: the XSDT lists %u tables, no DMAR among them, all checksums right", ok ? tables.count : 0);
}

/* ---- what the guest must not reach ---- */

static uint8_t read_byte(uint64_t addr)
{
    uint8_t v = 0;
    __asm__ volatile(".byte 0x8a, 0x07" : "+a"(v) : "D"(addr) : "memory"); /* mov (%rdi), %al */
    return v;
}

static void write_byte(uint64_t addr, uint8_t v)
{
    __asm__ volatile(".byte 0x88, 0x07" : : "a"(v), "D"(addr) : "memory"); /* mov %al, (%rdi) */
}

/* One read and one write at addr: each must raise #GP. */
static void check_refused(struct checks *c, const char *what, uint64_t addr)
{
    uint64_t before = selftest_gp_count;
    read_byte(addr);
    uint64_t after_read = selftest_gp_count;
    write_byte(addr, 0x5a);
    uint64_t after_write = selftest_gp_count;
    checkf(c, after_read == before + 1 && after_write == before + 2,
           "guest: %s at 0x%lx: read and write each refused with #GP", what, addr);
}

static void check_isolation(const struct loader_handoff *o, struct checks *c)
{
    struct x86_idt_gate *gate = &x86_current_idt()[13];
    struct x86_idt_gate saved = *gate;
    uint16_t cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    *gate = x86_interrupt_gate((uint64_t)(uintptr_t)selftest_gp_handler, cs, 0);

    check_refused(c, "the hypervisor's reserved region", o->region_base);
    check_refused(c, "the end of the reserved region", o->region_base + o->region_bytes - 1);
    check_refused(c, "the hypervisor's code (the loader's copy in the region)", o->image_base + 0x1000);
    for (unsigned i = 0; i < o->iommu_units && i < 4; i++)
        check_refused(c, "the IOMMU's registers", o->iommu_base[i]);
    *gate = saved;

    /* The hypervisor's memory is not guest RAM for the hypercalls either. */
    uint64_t st = vmmcall(hc_rax(HC_VERSION), o->region_base, sizeof(struct hc_version_block));
    checkf(c, (NTSTATUS)st == STATUS_ACCESS_VIOLATION, "guest: hypercall block in the reserved region refused: 0x%lx",
           st);
    st = vmmcall(hc_rax(HC_VERSION), o->image_base + 0x1000, sizeof(struct hc_version_block));
    checkf(c, (NTSTATUS)st == STATUS_ACCESS_VIOLATION, "guest: hypercall block in the loader's copy refused: 0x%lx", st);
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
    InitializeLib(image, systab);
    sink_printf(out, "--- self-test (guest) ---\n");
    struct checks c = {0};
    EFI_LOADED_IMAGE *loaded = NULL;
    EFI_STATUS st = uefi_call_wrapper(BS->HandleProtocol, 3, image, &LoadedImageProtocol, (void **)&loaded);
    const struct loader_handoff *o = loaded ? loaded->LoadOptions : NULL;
    if (check(&c, !EFI_ERROR(st) && o && loaded->LoadOptionsSize == sizeof *o && o->magic == LOADER_HANDOFF_MAGIC,
              "guest: started by the loader, with its options")) {
        check_cpuid(&c);
        check_hypercalls(&c);
        check_every_cpu(&c);
        check_acpi(&c);
        check_isolation(o, &c);
        selftest_ddi(o, &c);
        hypercalls += selftest_random_hypercalls(o, &c);
    }
    /* Last, so that the count covers every call of the run but the shim timer's later polls. */
    EFI_GUID guid = IOMMU_HV_DDI_PROTOCOL_GUID;
    struct iommu_hv_ddi_protocol *p = NULL;
    uefi_call_wrapper(BS->LocateProtocol, 3, &guid, NULL, (void **)&p);
    sink_printf(out, "selftest: %u hypercalls made, %lu more through the DDI shim\n", hypercalls,
                p ? p->hypercalls() : 0);
    unsigned run = c.run + (o ? o->loader_checks : 0), failed = c.failed + (o ? o->loader_failed : 0);
    if (failed)
        sink_printf(out, "RESULT: FAIL (%u of %u checks failed)\n", failed, run);
    else
        sink_printf(out, "RESULT: PASS (%u checks)\n", run);
    return failed ? EFI_ABORTED : EFI_SUCCESS;
}
