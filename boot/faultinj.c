/* FAULTINJ.EFI: the fault-injection driver. The firmware runs it as the hypervisor's guest;
 * it reads \EFI\BOOT\SCENARIO.TXT (docs/scenarios.md), runs the steps through the DDI
 * protocol (one hypercall per call) and real edu DMA, and prints one line per step:
 *
 *   step LINE VERB: PASS|FAIL what happened
 *   dma LINE: sid 0xSID read|write 0xADDR len N expect ok|fault [reason R]: PASS|FAIL ...
 *
 * then "scenario NAME: N steps, M failed; faults expected E, reported R" and the RESULT
 * line. The runner (scripts/fault-inject.sh) checks the dma lines against QEMU's trace. */
#include <efi.h>
#include <efilib.h>

#include "ddi/hypercall.h"
#include "ddi_protocol.h"
#include "edu.h"
#include "report.h"
#include "scenario.h"
#include "selftest.h"

#define MAX_OBJECTS SCENARIO_MAX_NAMES

enum object_kind { OBJ_DOMAIN = 1, OBJ_DEVICE, OBJ_BUFFER, OBJ_TOKEN, OBJ_MAPPING };

struct object {
    enum object_kind kind;
    char name[SCENARIO_WORD];
    union {
        struct {
            PIOMMU_DMA_DOMAIN handle;
            bool v1;
        } domain;
        struct {
            PIOMMU_DMA_DEVICE handle;
            unsigned edu;
            int domain; /* object index, or -1 */
        } device;
        struct {
            uint8_t *va;
            uint64_t pa;
            unsigned pages;
        } buffer;
        struct {
            PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN token;
            IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT segment;
        } token;
        struct {
            uint64_t iova;
            unsigned pages;
            int domain, buffer;
        } mapping;
    };
};

static struct {
    const struct selftest_options *o;
    struct iommu_hv_ddi_protocol *p;
    DMA_IOMMU_INTERFACE_EX ex;
    DMA_IOMMU_INTERFACE v1;
    struct object obj[MAX_OBJECTS];
    unsigned objects;
    unsigned reports, reports_at_last_check, faults_expected;
    uint64_t last_report_address;
    uint64_t tsc_per_ms;
    struct checks c;
} F;

static uint64_t vmmcall(uint64_t rax, uint64_t rcx, uint64_t rdx)
{
    __asm__ volatile("vmmcall" : "+a"(rax) : "c"(rcx), "d"(rdx) : "memory");
    return rax;
}

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

/* ---- edu from the guest ---- */

static uint32_t mmio_read32(void *ctx, uint64_t pa)
{
    (void)ctx;
    return *(volatile uint32_t *)(uintptr_t)pa;
}

static void mmio_write32(void *ctx, uint64_t pa, uint32_t v)
{
    (void)ctx;
    *(volatile uint32_t *)(uintptr_t)pa = v;
}

static void mmio_write64(void *ctx, uint64_t pa, uint64_t v)
{
    (void)ctx;
    *(volatile uint64_t *)(uintptr_t)pa = v;
}

static uint64_t now_ns(void *ctx)
{
    (void)ctx;
    return rdtsc() / F.tsc_per_ms * 1000000;
}

static const struct platform guest = {.mmio_read32 = mmio_read32, .mmio_write32 = mmio_write32,
                                      .mmio_write64 = mmio_write64, .now_ns = now_ns};

/* ---- objects ---- */

static struct object *find(const char *name)
{
    for (unsigned i = 0; i < F.objects; i++) {
        const char *a = F.obj[i].name, *b = name;
        while (*a && *a == *b)
            a++, b++;
        if (*a == *b)
            return &F.obj[i];
    }
    return NULL;
}

static struct object *add(enum object_kind kind, const char *name)
{
    struct object *o = &F.obj[F.objects++];
    *o = (struct object){.kind = kind};
    for (unsigned i = 0; name[i] && i + 1 < SCENARIO_WORD; i++)
        o->name[i] = name[i];
    return o;
}

static int index_of(const struct object *o)
{
    return o ? (int)(o - F.obj) : -1;
}

static VOID NTAPI on_fault(PVOID context, PFAULT_INFORMATION info)
{
    (void)context;
    F.reports++;
    F.last_report_address = (uint64_t)(uintptr_t)info->X64.FaultAddress;
}

static ULONG permissions(const char *p)
{
    ULONG v = 0;
    for (; p && *p; p++)
        v |= *p == 'r' ? IOMMU_ACCESS_READ : *p == 'w' ? IOMMU_ACCESS_WRITE : 0;
    return v;
}

static IOMMU_MAP_PHYSICAL_ADDRESS range(uint64_t pa, uint64_t pages)
{
    IOMMU_MAP_PHYSICAL_ADDRESS m = {.MapType = MapPhysicalAddressTypeContiguousRange};
    m.ContiguousRange.Base.QuadPart = (LONGLONG)pa;
    m.ContiguousRange.Size = pages * 4096;
    return m;
}

static bool words_equal(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

/* ---- the steps ---- */

/* A DDI step's status against the one the scenario wants (success unless it says). */
static void ddi_result(const struct scenario_step *s, NTSTATUS got, const char *what)
{
    uint32_t want = 0;
    const char *w = scenario_option(s, "status");
    if (w)
        scenario_status(w, &want);
    checkf(&F.c, (uint32_t)got == want, "step %u %s: %s returned 0x%08x, want 0x%08x", s->line, scenario_verb(s->kind),
           what, (uint32_t)got, want);
}

static void step_domain(const struct scenario_step *s)
{
    const char *type = s->arg[1];
    struct object *o = add(OBJ_DOMAIN, s->arg[0]);
    PIOMMU_DMA_DOMAIN d = NULL;
    NTSTATUS st;
    IOMMU_DMA_DOMAIN_CREATION_FLAGS none = {.AsUlonglong = 0};
    if (words_equal(type, "v1-os-managed") || words_equal(type, "v1-caller-managed")) {
        st = F.v1.CreateDomain(words_equal(type, "v1-os-managed"), &d);
        o->domain.v1 = true;
    } else {
        IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG buddy = {
            .LogicalAllocatorType = IommuDmaLogicalAllocatorBuddy,
            .BuddyAllocatorConfig = {.AddressWidth = (ULONG)scenario_number(s, "width", 39)}};
        IOMMU_DMA_DOMAIN_TYPE t = words_equal(type, "passthrough")    ? DomainTypePassThrough
                                : words_equal(type, "unmanaged")      ? DomainTypeUnmanaged
                                : words_equal(type, "translate-s1")   ? DomainTypeTranslateS1
                                                                      : DomainTypeTranslate;
        st = F.ex.V2.CreateDomainEx(t, none, words_equal(type, "translate-buddy") ? &buddy : NULL, NULL, &d);
    }
    o->domain.handle = NT_SUCCESS(st) ? d : NULL;
    ddi_result(s, st, "CreateDomain");
}

static void step_dma(const struct scenario_step *s)
{
    struct object *dev = find(s->arg[0]);
    bool write = words_equal(s->arg[1], "write");
    const char *at = scenario_option(s, "at");
    uint64_t len = scenario_number(s, "len", 0), addr = 0, offset = 0;
    const struct object *backing = NULL; /* the buffer behind the address, when known */
    static const char buffer_prefix[] = "buffer:";
    bool is_buffer = true;
    for (unsigned i = 0; i < sizeof buffer_prefix - 1; i++)
        is_buffer = is_buffer && at[i] == buffer_prefix[i];
    if (words_equal(at, "region")) {
        addr = F.o->region_base;
    } else if (is_buffer) {
        backing = find(at + sizeof buffer_prefix - 1);
        addr = backing->buffer.pa;
    } else {
        char base[SCENARIO_WORD];
        unsigned i = 0;
        for (; at[i] && at[i] != '+'; i++)
            base[i] = at[i];
        base[i] = 0;
        const struct object *m = find(base);
        if (m && m->kind == OBJ_MAPPING) {
            if (at[i] == '+')
                scenario_parse_number(at + i + 1, &offset);
            addr = m->mapping.iova + offset;
            backing = &F.obj[m->mapping.buffer];
        } else {
            scenario_parse_number(at, &addr);
        }
    }
    const struct selftest_edu *e = &F.o->edu[dev->device.edu];
    bool expect_fault = words_equal(scenario_option(s, "expect"), "fault");
    uint16_t sid = (uint16_t)(e->bus << 8 | e->device << 3 | e->function);
    uint8_t before[16] = {0}, *target = backing ? backing->buffer.va + offset : NULL;
    if (target)
        __builtin_memcpy(before, target, 16);
    unsigned reports = F.reports;
    bool done = edu_dma(&guest, e->bar, addr, (uint32_t)len, write);
    /* The fault report, if reporting is on, comes with the next poll. */
    for (unsigned i = 0; i < 50 && expect_fault && F.reports == reports; i++) {
        F.p->poll();
        uefi_call_wrapper(BS->Stall, 1, 1000);
    }
    F.p->poll();
    bool changed = target && __builtin_memcmp(before, target, 16) != 0;
    bool ok = done && (!expect_fault || !write || !target || !changed);
    if (expect_fault)
        F.faults_expected++;
    const char *reason = scenario_option(s, "reason");
    sink_printf(out, "dma %u: sid 0x%04x %s 0x%lx len %lu expect %s%s%s: %s, %u report(s)\n", s->line, sid,
                write ? "write" : "read", addr, len, expect_fault ? "fault" : "ok", reason ? " reason " : "",
                reason ? reason : "", ok ? "PASS" : "FAIL", F.reports - reports);
    checkf(&F.c, ok, "step %u dma: %s 0x%lx %s%s", s->line, write ? "write" : "read", addr,
           done ? "completed" : "timed out", expect_fault && write && changed ? ", memory changed" : "");
    const char *want_address = scenario_option(s, "address");
    if (want_address && F.reports > reports) {
        uint64_t a = scenario_number(s, "address", 0);
        checkf(&F.c, F.last_report_address == a, "step %u dma: reported address 0x%lx, want 0x%lx", s->line,
               F.last_report_address, a);
    }
}

static void run_step(const struct scenario_step *s)
{
    DMA_IOMMU_INTERFACE_V2 *v2 = &F.ex.V2;
    struct object *a = s->args ? find(s->arg[0]) : NULL, *b = s->args > 1 ? find(s->arg[1]) : NULL;
    NTSTATUS st = STATUS_SUCCESS;
    switch (s->kind) {
    case STEP_DOMAIN:
        step_domain(s);
        return;
    case STEP_DELETE_DOMAIN:
        st = v2->DeleteDomain(a->domain.handle);
        ddi_result(s, st, "DeleteDomain");
        return;
    case STEP_DEVICE: {
        struct object *o = add(OBJ_DEVICE, s->arg[0]);
        o->device.edu = (unsigned)(s->arg[1][3] - '0');
        o->device.domain = -1;
        const struct selftest_edu *e = &F.o->edu[o->device.edu];
        DEVICE_OBJECT pdo;
        IommuPciDeviceObject(&pdo, e->segment, e->bus, e->device, e->function);
        st = o->device.edu < F.o->edus ? v2->CreateDevice(&pdo, NULL, &o->device.handle) : STATUS_NOT_FOUND;
        ddi_result(s, st, "CreateDevice");
        return;
    }
    case STEP_DELETE_DEVICE:
        ddi_result(s, v2->DeleteDevice(a->device.handle), "DeleteDevice");
        return;
    case STEP_ATTACH:
        st = v2->AttachDeviceEx(a->domain.handle, b->device.handle);
        if (NT_SUCCESS(st))
            b->device.domain = index_of(a);
        ddi_result(s, st, "AttachDeviceEx");
        return;
    case STEP_DETACH:
        st = v2->DetachDeviceEx(a->device.handle);
        if (NT_SUCCESS(st))
            a->device.domain = -1;
        ddi_result(s, st, "DetachDeviceEx");
        return;
    case STEP_BUFFER: {
        struct object *o = add(OBJ_BUFFER, s->arg[0]);
        o->buffer.pages = (unsigned)scenario_number(s, "pages", 1);
        EFI_PHYSICAL_ADDRESS pa = 0xffffffff;
        bool ok = !EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiBootServicesData,
                                               o->buffer.pages, &pa));
        o->buffer.pa = pa;
        o->buffer.va = (uint8_t *)(uintptr_t)pa;
        if (ok)
            __builtin_memset(o->buffer.va, (int)scenario_number(s, "fill", 0), o->buffer.pages * 4096ull);
        checkf(&F.c, ok, "step %u buffer: %u pages at 0x%lx", s->line, o->buffer.pages, o->buffer.pa);
        return;
    }
    case STEP_MAP: {
        uint64_t pages = scenario_number(s, "pages", b->buffer.pages);
        IOMMU_MAP_PHYSICAL_ADDRESS m = range(b->buffer.pa, pages);
        const char *iova = scenario_option(s, "iova");
        IOMMU_DMA_LOGICAL_ADDRESS at = scenario_number(s, "iova", 0), placed = 0;
        st = v2->MapLogicalRangeEx(a->domain.handle, permissions(scenario_option(s, "perm")), &m,
                                   words_equal(iova, "alloc") ? NULL : &at, NULL, NULL, &placed);
        const char *as = scenario_option(s, "as");
        if (as) {
            struct object *o = add(OBJ_MAPPING, as);
            o->mapping.iova = NT_SUCCESS(st) ? placed : at;
            o->mapping.pages = (unsigned)pages;
            o->mapping.domain = index_of(a);
            o->mapping.buffer = index_of(b);
        }
        ddi_result(s, st, "MapLogicalRangeEx");
        if (NT_SUCCESS(st))
            sink_printf(out, "step %u map: IOVA 0x%lx, %lu pages\n", s->line, placed, pages);
        return;
    }
    case STEP_UNMAP: {
        const char *iova = scenario_option(s, "iova");
        const struct object *m = find(iova);
        uint64_t at = m && m->kind == OBJ_MAPPING ? m->mapping.iova : scenario_number(s, "iova", 0);
        ddi_result(s, v2->UnmapLogicalRange(a->domain.handle, at, scenario_number(s, "pages", 1)),
                   "UnmapLogicalRange");
        return;
    }
    case STEP_MAP_IDENTITY: {
        IOMMU_MAP_PHYSICAL_ADDRESS m = range(b->buffer.pa, b->buffer.pages);
        ddi_result(s, v2->MapIdentityRangeEx(a->domain.handle, permissions(scenario_option(s, "perm")), &m),
                   "MapIdentityRangeEx");
        return;
    }
    case STEP_UNMAP_IDENTITY: {
        IOMMU_MAP_PHYSICAL_ADDRESS m = range(b->buffer.pa, b->buffer.pages);
        ddi_result(s, v2->UnmapIdentityRangeEx(a->domain.handle, &m), "UnmapIdentityRangeEx");
        return;
    }
    case STEP_RESERVE: {
        struct object *o = add(OBJ_TOKEN, s->arg[0]);
        IOMMU_DMA_LOGICAL_ADDRESS at = scenario_number(s, "iova", 0);
        st = v2->ReserveLogicalAddressRange(b->domain.handle, scenario_number(s, "pages", 1) * 4096,
                                            scenario_option(s, "iova") ? &at : NULL, NULL, NULL, &o->token.token);
        ddi_result(s, st, "ReserveLogicalAddressRange");
        return;
    }
    case STEP_MAP_RESERVED: {
        IOMMU_MAP_PHYSICAL_ADDRESS m = range(b->buffer.pa, scenario_number(s, "pages", b->buffer.pages));
        st = v2->MapReservedLogicalRange(a->token.token, scenario_number(s, "offset", 0),
                                         permissions(scenario_option(s, "perm")), &m, &a->token.segment);
        ddi_result(s, st, "MapReservedLogicalRange");
        return;
    }
    case STEP_UNMAP_RESERVED:
        ddi_result(s, v2->UnmapReservedLogicalRange(&a->token.segment), "UnmapReservedLogicalRange");
        return;
    case STEP_FREE_RESERVED:
        ddi_result(s, v2->FreeReservedLogicalAddressRange(a->token.token), "FreeReservedLogicalAddressRange");
        return;
    case STEP_REPORTING: {
        const struct selftest_edu *e = &F.o->edu[a->device.edu];
        DEVICE_OBJECT pdo;
        IommuPciDeviceObject(&pdo, e->segment, e->bus, e->device, e->function);
        DEVICE_FAULT_CONFIGURATION fc = {on_fault, NULL};
        bool on = words_equal(s->arg[1], "on");
        ddi_result(s, F.v1.SetDeviceFaultReporting(&pdo, 0, on, on ? &fc : NULL), "SetDeviceFaultReporting");
        return;
    }
    case STEP_GUARD: {
        struct hc_inject_block i = {.kind = HC_INJECT_DMA_GUARD, .value = words_equal(s->arg[0], "on")};
        uint64_t r = vmmcall(hc_rax(HC_INJECT), (uint64_t)(uintptr_t)&i, sizeof i);
        checkf(&F.c, r == 0, "step %u guard %s: 0x%lx", s->line, s->arg[0], r);
        return;
    }
    case STEP_DMA:
        step_dma(s);
        return;
    case STEP_INJECT: {
        bool pool = words_equal(s->arg[0], "pool-fail");
        struct hc_inject_block i = {.kind = pool ? HC_INJECT_POOL_FAIL : 99, .value = scenario_number(s, "at", 1)};
        uint64_t r = vmmcall(hc_rax(HC_INJECT), (uint64_t)(uintptr_t)&i, sizeof i);
        checkf(&F.c, r == 0, "step %u inject %s: 0x%lx%s", s->line, s->arg[0], r,
               pool ? "" : " (invalidation timeouts cannot be injected yet)");
        return;
    }
    case STEP_HYPERCALL: {
        uint32_t want = 0;
        scenario_status(scenario_option(s, "status"), &want);
        uint64_t r;
        if (words_equal(s->arg[0], "garbage")) {
            uint64_t junk[8] = {0xdeadbeef, ~0ull, 7, 0, 0x5a5a5a5a5a5a5a5aull, 1, 2, 3};
            r = vmmcall(hc_rax(HC_CALLS + 7), (uint64_t)(uintptr_t)junk, sizeof junk);
        } else if (words_equal(s->arg[0], "bad-address")) {
            r = vmmcall(hc_rax(HC_VERSION), F.o->region_base, sizeof(struct hc_version_block));
        } else {
            r = (uint32_t)v2->DeleteDomain((PIOMMU_DMA_DOMAIN)(uintptr_t)0xd0d0000000770001ull);
        }
        checkf(&F.c, (uint32_t)r == want, "step %u hypercall %s: 0x%08x, want 0x%08x", s->line, s->arg[0],
               (uint32_t)r, want);
        return;
    }
    case STEP_EXPECT_REPORTS: {
        F.p->poll();
        unsigned got = F.reports - F.reports_at_last_check;
        F.reports_at_last_check = F.reports;
        uint64_t want = scenario_number(s, "count", 0);
        checkf(&F.c, got == want, "step %u expect-reports: %u fault reports reached the handler, want %lu", s->line,
               got, want);
        return;
    }
    case STEP_KINDS:
        break;
    }
}

static bool read_scenario(EFI_HANDLE image, char *text, UINTN *size)
{
    EFI_LOADED_IMAGE *loaded = NULL;
    EFI_FILE_HANDLE root = NULL, file = NULL;
    if (EFI_ERROR(uefi_call_wrapper(BS->HandleProtocol, 3, image, &LoadedImageProtocol, (void **)&loaded)) ||
        !(root = LibOpenRoot(loaded->DeviceHandle)) ||
        EFI_ERROR(uefi_call_wrapper(root->Open, 5, root, &file, L"\\EFI\\BOOT\\SCENARIO.TXT", EFI_FILE_MODE_READ, 0)))
        return false;
    EFI_STATUS st = uefi_call_wrapper(file->Read, 3, file, size, text);
    uefi_call_wrapper(file->Close, 1, file);
    return !EFI_ERROR(st);
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
    InitializeLib(image, systab);
    sink_printf(out, "--- fault injection (guest) ---\n");
    uint64_t t0 = rdtsc();
    uefi_call_wrapper(BS->Stall, 1, 10000);
    F.tsc_per_ms = (rdtsc() - t0) / 10 + 1;
    EFI_LOADED_IMAGE *loaded = NULL;
    uefi_call_wrapper(BS->HandleProtocol, 3, image, &LoadedImageProtocol, (void **)&loaded);
    F.o = loaded ? loaded->LoadOptions : NULL;
    static char text[65536];
    static struct scenario sc;
    UINTN size = sizeof text - 1;
    char error[160] = "";
    EFI_GUID guid = IOMMU_HV_DDI_PROTOCOL_GUID;
    bool ready = check(&F.c, F.o && loaded->LoadOptionsSize == sizeof *F.o && F.o->magic == SELFTEST_OPTIONS_MAGIC,
                       "guest: started by the loader, with its options") &&
                 check(&F.c, read_scenario(image, text, &size) && size < sizeof text - 1, "guest: scenario read") &&
                 checkf(&F.c, scenario_parse(text, size, &sc, error, sizeof error), "guest: scenario parsed%s%s",
                        error[0] ? ": " : "", error) &&
                 check(&F.c, !EFI_ERROR(uefi_call_wrapper(BS->LocateProtocol, 3, &guid, NULL, (void **)&F.p)) &&
                                 F.p->get_interface_ex(2, 0, &F.ex) == STATUS_SUCCESS &&
                                 F.p->get_interface(1, &F.v1) == STATUS_SUCCESS,
                       "guest: DDI protocol");
    unsigned before = F.c.failed;
    if (ready) {
        sink_printf(out, "scenario %s: %s\n", sc.name, sc.description);
        for (unsigned i = 0; i < sc.steps; i++)
            run_step(&sc.step[i]);
    }
    sink_printf(out, "scenario %s: %u steps, %u failed; faults expected %u, reported %u\n", sc.name, sc.steps,
                F.c.failed - before, F.faults_expected, F.reports);
    unsigned run = F.c.run + (F.o ? F.o->loader_checks : 0), failed = F.c.failed + (F.o ? F.o->loader_failed : 0);
    if (failed)
        sink_printf(out, "RESULT: FAIL (%u of %u checks failed)\n", failed, run);
    else
        sink_printf(out, "RESULT: PASS (%u checks)\n", run);
    return failed ? EFI_ABORTED : EFI_SUCCESS;
}
