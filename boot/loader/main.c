/* BOOTX64.EFI: finds the platform IOMMU from ACPI, reports what it found, takes over DMA
 * remapping with a protecting default domain and demonstrates it with QEMU's edu device.
 *
 * The report goes to the serial port, one fact per line, in sections. It ends with the
 * checks that must hold on any platform this loader supports and a RESULT line, then the
 * loader powers the machine off so that scripts/run.sh sees QEMU exit. */
#include <efi.h>
#include <efilib.h>

#include "iommu/acpi.h"
#include "iommu/acpi_report.h"
#include "iommu/dmar.h"
#include "iommu/pci.h"
#include "iommu/vtd_cap.h"
#include "loader/edu_demo.h"
#include "ddi/hypercall.h"
#include "loader/config.h"
#include "loader/discovery.h"
#include "loader/hv_setup.h"
#include "loader/relocate.h"
#include "common/loader_handoff.h"
#include "loader/remap_setup.h"
#include "common/report.h"
#include "common/serial.h"
#include "loader/uefi_platform.h"

#define LOADER_VERSION "0.1"

static void report_memory_map(const struct uefi_platform *up, struct checks *c)
{
    static const char *const type_names[] = {
        "reserved", "loader code", "loader data", "boot services code", "boot services data",
        "runtime services code", "runtime services data", "conventional", "unusable",
        "ACPI reclaim", "ACPI NVS", "MMIO", "MMIO port space", "PAL code", "persistent"};
    enum { TYPES = sizeof type_names / sizeof type_names[0] };
    uint64_t pages[TYPES + 1] = {0};
    uint64_t highest_ram = 0;
    for (UINTN i = 0; i < up->memory_map_entries; i++) {
        const EFI_MEMORY_DESCRIPTOR *d = uefi_memory_descriptor(up, i);
        unsigned t = d->Type < TYPES ? d->Type : TYPES;
        pages[t] += d->NumberOfPages;
        uint64_t end = d->PhysicalStart + d->NumberOfPages * PAGE_SIZE;
        if (d->Type != EfiMemoryMappedIO && d->Type != EfiMemoryMappedIOPortSpace &&
            d->Type != EfiReservedMemoryType && end > highest_ram)
            highest_ram = end;
    }
    sink_printf(out, "memmap: %lu descriptors of %lu bytes, RAM up to 0x%lx\n",
                (uint64_t)up->memory_map_entries, (uint64_t)up->descriptor_size, highest_ram);
    for (unsigned t = 0; t <= TYPES; t++)
        if (pages[t])
            sink_printf(out, "memmap: %-22s %8lu pages %6lu MiB\n", t < TYPES ? type_names[t] : "other",
                        pages[t], pages[t] * PAGE_SIZE >> 20);
    check(c, up->memory_map_entries > 0 && pages[EfiConventionalMemory] > 0,
          "memory map read, conventional memory present");
}

/* Reads and reports every DRHD's registers; returns the number of units. */
static unsigned report_units(const struct platform *plat, const struct dmar_table *dmar,
                             struct checks *c)
{
    unsigned unit = 0;
    struct dmar_struct s;
    for (uint32_t cur = 0; dmar_next_struct(dmar, &cur, &s);) {
        if (s.type != DMAR_TYPE_DRHD)
            continue;
        char prefix[16];
        fmt_format(prefix, sizeof prefix, "vtd[%u]: ", unit);
        sink_printf(out, "%ssegment %u register base 0x%lx%s\n", prefix, s.segment, s.register_base,
                    s.flags & DRHD_FLAG_INCLUDE_PCI_ALL ? " INCLUDE_PCI_ALL" : "");
        struct vtd_caps caps;
        bool alive = vtd_caps_read(plat, s.register_base, &caps);
        if (alive)
            vtd_caps_report(&caps, prefix, out);
        if (checkf(c, alive, "unit %u at 0x%lx answers (VER/CAP not all ones)", unit, s.register_base))
            checkf(c, vtd_sagaw_levels(caps.sagaw, caps.mgaw_bits) != 0,
                   "unit %u offers a second-level table depth for its %u-bit MGAW", unit, caps.mgaw_bits);
        unit++;
    }
    return unit;
}

/* Parses and reports the DMAR and its units; returns NULL when there is no usable DMAR. */
static const struct dmar_table *discover_dmar(const struct platform *plat, const struct acpi_tables *tables,
                                              unsigned *units, struct checks *c)
{
    static struct dmar_table dmar;
    const struct acpi_table_ref *ref = acpi_find(tables, "DMAR");
    if (!check(c, ref != NULL, "DMAR table present"))
        return NULL;
    const uint8_t *bytes = acpi_map_table(plat, ref);
    struct diag d;
    diag_clear(&d);
    bool ok = bytes && dmar_parse(&dmar, bytes, ref->length, &d);
    diag_print(&d, "dmar", out);
    if (!check(c, ok, "DMAR parsed"))
        return NULL;
    discovery_dump_table("DMAR", bytes, ref->length);
    sink_printf(out, "--- DMAR ---\n");
    dmar_report_text(&dmar, out);
    check(c, dmar.drhd_count > 0, "DMAR describes at least one remapping unit");
    sink_printf(out, "--- remapping units ---\n");
    *units = report_units(plat, &dmar, c);
    return &dmar;
}

/* Set by the first stage, before it copies the image: the copy starts with them. */
static struct loader_config cfg;
static struct {
    uint64_t region_pa, region_bytes; /* the reserved region, the image copy at its start */
    uint64_t image_bytes;
} boot;

/* The guest resumes in a copy of boot/loader/guest_trampoline.S in the firmware's memory. */
extern const uint8_t guest_trampoline_start[], guest_ap_trampoline[], guest_trampoline_data[], guest_trampoline_end[];
struct trampoline_data {
    void *start_image, *reset_system, *image;
    uint64_t ap_rax;     /* the APs' hypercall */
    uint32_t ap_ok, pad; /* APs whose hypercall succeeded */
    uint64_t ap_block[3];
    uint64_t exit_rax;   /* HC_GUEST_EXIT, with the payload's status */
    uint64_t exit_block[1];
};

/* Where a loaded image lies, printed in its check line: scripts/run.sh names the image a
 * hung CPU is in by it. */
static void image_extent(EFI_HANDLE h, uint64_t *base, uint64_t *bytes)
{
    EFI_LOADED_IMAGE *li = NULL;
    *base = *bytes = 0;
    if (h && !EFI_ERROR(uefi_call_wrapper(BS->HandleProtocol, 3, h, &LoadedImageProtocol, (void **)&li)) && li) {
        *base = (uint64_t)(uintptr_t)li->ImageBase;
        *bytes = li->ImageSize;
    }
}

/* An image from the loader's own directory on the boot disk; NULL when it is not there. */
static EFI_HANDLE load_image(EFI_HANDLE image, const EFI_LOADED_IMAGE *loaded, CHAR16 *path, const char *name,
                             struct checks *c)
{
    EFI_DEVICE_PATH *dp = FileDevicePath(loaded->DeviceHandle, path);
    EFI_HANDLE h = NULL;
    EFI_STATUS st = dp ? uefi_call_wrapper(BS->LoadImage, 6, FALSE, image, dp, NULL, 0, &h) : EFI_NOT_FOUND;
    uint64_t base, bytes;
    image_extent(EFI_ERROR(st) ? NULL : h, &base, &bytes);
    checkf(c, !EFI_ERROR(st), "%s loaded at 0x%lx, %lu bytes (status %lu)", name, base, bytes, (uint64_t)st);
    return EFI_ERROR(st) ? NULL : h;
}

/* The guest's wdm interface: DDISHIM.EFI installs it as a protocol and stays resident. It
 * makes no hypercall until the firmware runs as a guest. */
static bool start_shim_driver(EFI_HANDLE image, const EFI_LOADED_IMAGE *loaded, struct checks *c)
{
    EFI_HANDLE h = load_image(image, loaded, L"\\EFI\\BOOT\\DDISHIM.EFI", "DDISHIM.EFI, the guest's DDI shim,", c);
    EFI_STATUS st = h ? uefi_call_wrapper(BS->StartImage, 3, h, NULL, NULL) : EFI_NOT_FOUND;
    return h && checkf(c, !EFI_ERROR(st), "DDI protocol installed for the guest (status %lu)", (uint64_t)st);
}

/* The firmware's own UEFI shell, from its firmware volume (OVMF builds it in). */
static EFI_HANDLE load_shell(EFI_HANDLE image, struct checks *c)
{
    static EFI_GUID fv2 = {0x220e73b6, 0x6bdb, 0x4413, {0x84, 0x05, 0xb9, 0x74, 0xb1, 0x08, 0x61, 0x9a}};
    static const EFI_GUID shell = {0x7c04a583, 0x9e3e, 0x4f1c, {0xad, 0x65, 0xe0, 0x52, 0x68, 0xd0, 0xb4, 0xd1}};
    struct {
        EFI_DEVICE_PATH header;
        EFI_GUID file;
    } __attribute__((packed)) node = {{MEDIA_DEVICE_PATH, 6 /* PIWG firmware file */, {20, 0}}, shell};
    UINTN n = 0;
    EFI_HANDLE *fvs = NULL, h = NULL;
    if (EFI_ERROR(uefi_call_wrapper(BS->LocateHandleBuffer, 5, ByProtocol, &fv2, NULL, &n, &fvs)))
        n = 0;
    for (UINTN i = 0; i < n && !h; i++) {
        EFI_DEVICE_PATH *dp = DevicePathFromHandle(fvs[i]);
        EFI_DEVICE_PATH *file = dp ? AppendDevicePathNode(dp, &node.header) : NULL;
        if (file && EFI_ERROR(uefi_call_wrapper(BS->LoadImage, 6, FALSE, image, file, NULL, 0, &h)))
            h = NULL;
        if (file)
            FreePool(file);
    }
    if (fvs)
        FreePool(fvs);
    uint64_t base, bytes;
    image_extent(h, &base, &bytes);
    checkf(c, h != NULL, "payload: the firmware's UEFI shell loaded at 0x%lx, %lu bytes, from one of its %lu firmware volumes",
           base, bytes, (uint64_t)n);
    return h;
}

static EFI_HANDLE load_payload(EFI_HANDLE image, const EFI_LOADED_IMAGE *loaded, const struct loader_config *cfg,
                               struct checks *c)
{
    if (cfg->payload == PAYLOAD_SHELL)
        return load_shell(image, c);
    if (cfg->payload == PAYLOAD_FAULTINJECT)
        return load_image(image, loaded, L"\\EFI\\BOOT\\FAULTINJ.EFI", "payload FAULTINJ.EFI", c);
    if (cfg->payload == PAYLOAD_HOSTILE)
        return load_image(image, loaded, L"\\EFI\\BOOT\\HOSTILE.EFI", "payload HOSTILE.EFI", c);
    if (cfg->payload == PAYLOAD_PATH) {
        CHAR16 path[CONFIG_PATH_MAX];
        unsigned i = 0;
        for (; cfg->payload_path[i]; i++)
            path[i] = (CHAR16)(unsigned char)cfg->payload_path[i];
        path[i] = 0;
        return load_image(image, loaded, path, "payload from the configuration", c);
    }
    return load_image(image, loaded, L"\\EFI\\BOOT\\SELFTEST.EFI", "payload SELFTEST.EFI", c);
}

/* What the loader tells the self-test, in its LoadOptions (boot/common/loader_handoff.h). */
static bool give_loader_handoff(EFI_HANDLE payload, const struct remapping *r, const struct hv *hv,
                                const struct pci_inventory *inv, struct loader_handoff **options, struct checks *c)
{
    EFI_LOADED_IMAGE *pl = NULL;
    struct loader_handoff *o = AllocatePool(sizeof *o);
    EFI_STATUS st = uefi_call_wrapper(BS->HandleProtocol, 3, payload, &LoadedImageProtocol, (void **)&pl);
    if (!check(c, !EFI_ERROR(st) && o, "payload options in the firmware's memory"))
        return false;
    *o = (struct loader_handoff){.magic = LOADER_HANDOFF_MAGIC, .iommu_units = r->units,
                                 .region_base = r->region_pa, .region_bytes = r->region_bytes,
                                 .image_base = boot.region_pa, .image_bytes = boot.image_bytes,
                                 .canary_pa = hv->canary_pa, .pm_base = hv->arch.pm_base};
    for (unsigned i = 0; i < r->units && i < 4; i++)
        o->iommu_base[i] = r->unit[i].unit.register_base;
    for (uint32_t i = 0; i < inv->count && o->edus < 2; i++) { /* edu devices, for the payload's DMA */
        const struct pci_function *f = &inv->fn[i];
        if (f->vendor == EDU_VENDOR && f->device == EDU_DEVICE && f->unit >= 0)
            o->edu[o->edus++] = (struct handoff_edu){
                .bar = pci_memory_bar(hv->plat, f, 0),
                .segment = f->segment, .bus = f->bus, .device = f->dev, .function = f->fn};
    }
    pl->LoadOptions = o;
    pl->LoadOptionsSize = sizeof *o;
    *options = o;
    return true;
}

/* The configuration's payload_options as the payload's command line (its LoadOptions, UCS-2,
 * in the firmware's memory): what an OS loader such as Linux's EFI stub reads. */
static bool give_payload_options(EFI_HANDLE payload, const struct loader_config *cfg, struct checks *c)
{
    size_t n = 0;
    while (cfg->payload_options[n])
        n++;
    if (!n)
        return true;
    EFI_LOADED_IMAGE *pl = NULL;
    CHAR16 *text = NULL;
    EFI_STATUS st = uefi_call_wrapper(BS->HandleProtocol, 3, payload, &LoadedImageProtocol, (void **)&pl);
    if (!EFI_ERROR(st))
        st = uefi_call_wrapper(BS->AllocatePool, 3, EfiLoaderData, (n + 1) * sizeof(CHAR16), (void **)&text);
    if (!EFI_ERROR(st)) {
        for (size_t i = 0; i < n; i++)
            text[i] = (CHAR16)(unsigned char)cfg->payload_options[i];
        text[n] = 0;
        pl->LoadOptions = text;
        pl->LoadOptionsSize = (UINT32)((n + 1) * sizeof(CHAR16));
    }
    return checkf(c, !EFI_ERROR(st), "payload command line from the configuration: %lu characters (status %lu)",
                  (uint64_t)n, (uint64_t)st);
}

/* Loads the payload and prepares where the guest resumes; returns that address, or 0. The
 * self-test gets its options (*options; NULL for other payloads). */
static uint64_t prepare_payload(EFI_HANDLE image, const EFI_LOADED_IMAGE *loaded, const struct remapping *r,
                                const struct hv *hv, const struct pci_inventory *inv, const struct loader_config *cfg,
                                struct loader_handoff **options, struct checks *c)
{
    EFI_HANDLE payload = load_payload(image, loaded, cfg, c);
    if (!payload || !give_payload_options(payload, cfg, c) ||
        ((cfg->payload == PAYLOAD_SELFTEST || cfg->payload == PAYLOAD_FAULTINJECT || cfg->payload == PAYLOAD_HOSTILE) &&
         !give_loader_handoff(payload, r, hv, inv, options, c)))
        return 0;
    /* The trampoline, in a page of its own the firmware gives out as code. */
    EFI_PHYSICAL_ADDRESS page = 0xffffffff;
    EFI_STATUS st = uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiBootServicesCode, 1, &page);
    if (!check(c, !EFI_ERROR(st), "guest resume page"))
        return 0;
    size_t bytes = (size_t)(guest_trampoline_end - guest_trampoline_start);
    __builtin_memcpy((void *)(uintptr_t)page, guest_trampoline_start, bytes);
    struct trampoline_data *d = (struct trampoline_data *)(uintptr_t)(page + (guest_trampoline_data - guest_trampoline_start));
    *d = (struct trampoline_data){.start_image = (void *)BS->StartImage, .reset_system = (void *)RT->ResetSystem,
                                  .image = payload, .ap_rax = hc_rax(HC_VERSION), .exit_rax = hc_rax(HC_GUEST_EXIT)};
    return page;
}

/* The hypervisor, started under the firmware; the firmware goes on as its guest and runs
 * the payload. Returns only when the hypervisor could not start. */
/* The guest must not find the IOMMU and fight the hypervisor for it: the DMAR leaves the
 * XSDT (and the RSDT) the firmware hands on; the table itself stays where it is. */
static void hide_dmar(const struct uefi_platform *up, const struct acpi_tables *tables, struct checks *c)
{
    struct diag d;
    diag_clear(&d);
    const uint8_t *rsdp = (const uint8_t *)(uintptr_t)tables->rsdp_pa;
    uint8_t *xsdt = (uint8_t *)(uintptr_t)tables->xsdt_pa;
    int from_xsdt = acpi_root_remove(xsdt, *(const uint32_t *)(xsdt + 4), 8, &up->ops, "DMAR", &d);
    uint32_t rsdt_pa = *(const uint32_t *)(rsdp + 16);
    uint8_t *rsdt = (uint8_t *)(uintptr_t)rsdt_pa;
    int from_rsdt = rsdt ? acpi_root_remove(rsdt, *(const uint32_t *)(rsdt + 4), 4, &up->ops, "DMAR", &d) : 0;
    diag_print(&d, "acpi", out);
    checkf(c, from_xsdt == 1 && from_rsdt >= 0, "DMAR hidden from the guest: %d XSDT and %d RSDT entries removed",
           from_xsdt, from_rsdt);
}

/* The chipset's ACPI PM I/O block, from the FADT's PM1a_EVT_BLK (0 when not found). */
static uint16_t pm_base(const struct platform *plat, const struct acpi_tables *tables)
{
    const struct acpi_table_ref *ref = acpi_find(tables, "FACP");
    const uint8_t *fadt = ref && ref->length >= 60 ? acpi_map_table(plat, ref) : NULL;
    if (!fadt)
        return 0;
    uint32_t blk = (uint32_t)fadt[56] | (uint32_t)fadt[57] << 8 | (uint32_t)fadt[58] << 16 | (uint32_t)fadt[59] << 24;
    return blk && blk < 0x10000 ? (uint16_t)blk : 0;
}

/* The I/O APICs the MADT lists (none when it cannot be read). */
static const struct madt_ioapics *ioapics(const struct platform *plat, const struct acpi_tables *tables)
{
    static struct madt_ioapics found;
    const struct acpi_table_ref *ref = acpi_find(tables, "APIC");
    const uint8_t *madt = ref ? acpi_map_table(plat, ref) : NULL;
    struct diag d;
    diag_clear(&d);
    if (!madt || !madt_ioapics_parse(madt, ref->length, &found, &d))
        found.count = 0;
    diag_print(&d, "madt", out);
    return &found;
}

static void start_hypervisor(struct uefi_platform *up, EFI_HANDLE image, struct remapping *r,
                             const struct pci_inventory *inv, const struct dmar_table *dmar,
                             const struct acpi_tables *tables, const struct loader_config *cfg, struct checks *c)
{
    sink_printf(out, "--- hypervisor ---\n");
    static struct hv hv;
    EFI_LOADED_IMAGE *loaded = NULL;
    EFI_STATUS st = uefi_call_wrapper(BS->HandleProtocol, 3, image, &LoadedImageProtocol, (void **)&loaded);
    if (!check(c, !EFI_ERROR(st) && loaded, "loader image located"))
        return;
    /* The hypervisor's code and data: the copy this runs from (boot/loader/relocate.h). */
    if (!hv_prepare(&hv, up, r, inv, dmar, (void *)(uintptr_t)boot.region_pa, boot.image_bytes, cfg->fault_injection,
                    pm_base(&up->ops, tables), ioapics(&up->ops, tables), c))
        return;
    struct loader_handoff *options = NULL;
    if (!start_shim_driver(image, loaded, c))
        return;
    uint64_t resume = prepare_payload(image, loaded, r, &hv, inv, cfg, &options, c);
    hide_dmar(up, tables, c);
    if (!resume || c->failed)
        return; /* a failed loader check ends the run here, with its RESULT line */
    const struct trampoline_data *d =
        (const struct trampoline_data *)(uintptr_t)(resume + (guest_trampoline_data - guest_trampoline_start));
    if (!hv_launch_aps(&hv, resume + (guest_ap_trampoline - guest_trampoline_start), c) ||
        !checkf(c, d->ap_ok == hv.cpus - 1, "%u of %u application processors made a hypercall as guests", d->ap_ok,
                hv.cpus - 1))
        return;
    if (options) {
        check(c, true, "cpu 0 goes on as a guest: the payload reports from here");
        options->loader_checks = c->run;
        options->loader_failed = c->failed;
    } else {
        check(c, true, "cpu 0 goes on as a guest: the payload runs from here");
    }
    /* The verdict is the hypervisor's, on its channel, when the machine ends. */
    hv.loader_checks = c->run;
    hv.loader_failed = c->failed;
    hv_launch_this_cpu(&hv, 0, resume);
}

/* Discovery, then DMA remapping and its demonstration when the platform has an IOMMU. */
static void run(struct uefi_platform *up, EFI_HANDLE image, const struct loader_config *cfg, struct checks *c)
{
    const struct platform *plat = &up->ops;
    EFI_GUID acpi20 = ACPI_20_TABLE_GUID;
    void *rsdp = NULL;
    if (LibGetSystemConfigurationTable(&acpi20, &rsdp) != EFI_SUCCESS)
        rsdp = NULL;
    static struct acpi_tables tables;
    if (!discovery_acpi(plat, rsdp, &tables, c))
        return;

    unsigned units = 0;
    const struct dmar_table *dmar = discover_dmar(plat, &tables, &units, c);
    const struct pci_inventory *inv = discovery_pci(plat, &tables, dmar, NULL, units, "vtd", c);
    if (!dmar || !inv)
        return;

    sink_printf(out, "--- DMA remapping ---\n");
    static struct remapping r;
    if (!remap_setup(up, dmar, inv, boot.region_pa, boot.region_bytes, boot.region_pa + boot.image_bytes, &r, c))
        return;
    remap_check_firmware_dma(up, image, c);
    /* A fault-injection run keeps QEMU's fault trace to the scenario's own DMA. */
    if (cfg->payload != PAYLOAD_FAULTINJECT) {
        sink_printf(out, "--- edu demo ---\n");
        edu_demo(up, &r, inv, c);
    }
    start_hypervisor(up, image, &r, inv, dmar, &tables, cfg, c);
}

/* \EFI\BOOT\IOMMUHV.CFG from the boot disk, over the defaults; false on a bad file. */
static bool read_config_file(const EFI_LOADED_IMAGE *loaded, struct loader_config *cfg, struct checks *c)
{
    EFI_FILE_HANDLE root = NULL, file = NULL;
    if (!(root = LibOpenRoot(loaded->DeviceHandle)) ||
        EFI_ERROR(uefi_call_wrapper(root->Open, 5, root, &file, L"\\EFI\\BOOT\\IOMMUHV.CFG", EFI_FILE_MODE_READ, 0))) {
        sink_printf(out, "config: no \\EFI\\BOOT\\IOMMUHV.CFG, defaults\n");
        return true;
    }
    static char text[4096];
    UINTN size = sizeof text;
    EFI_STATUS st = uefi_call_wrapper(file->Read, 3, file, &size, text);
    uefi_call_wrapper(file->Close, 1, file);
    char error[96] = "";
    bool ok = !EFI_ERROR(st) && size < sizeof text && config_parse(cfg, text, size, error, sizeof error);
    return checkf(c, ok, "configuration \\EFI\\BOOT\\IOMMUHV.CFG read%s%s", ok ? "" : ": ", error);
}

/* The defaults, then the file, then the command line's key=value words. */
static bool read_config(const EFI_LOADED_IMAGE *loaded, struct loader_config *cfg, struct checks *c)
{
    config_defaults(cfg);
    if (!read_config_file(loaded, cfg, c))
        return false;
    static char text[1024];
    size_t n = config_from_command_line(loaded->LoadOptions, loaded->LoadOptionsSize / sizeof(CHAR16), text,
                                        sizeof text);
    if (!n)
        return true;
    char error[96] = "";
    bool ok = config_parse(cfg, text, n, error, sizeof error);
    return checkf(c, ok, "configuration from the command line%s%s", ok ? "" : ": ", error);
}

/* The second stage, run in the copy of the image inside the reserved region. */
static void loader_main(EFI_HANDLE image, struct checks *c)
{
    static struct uefi_platform up;
    if (check(c, uefi_platform_init(&up), "UEFI memory map and TSC calibration")) {
        sink_printf(out, "--- memory map ---\n");
        report_memory_map(&up, c);
        sink_printf(out, "--- ACPI ---\n");
        run(&up, image, &cfg, c);
    }
    if (c->failed)
        sink_printf(out, "RESULT: FAIL (%u of %u checks failed)\n", c->failed, c->run);
    else
        sink_printf(out, "RESULT: PASS (%u checks)\n", c->run);
    uefi_call_wrapper(RT->ResetSystem, 4, EfiResetShutdown, c->failed ? EFI_ABORTED : EFI_SUCCESS, 0, NULL);
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
    InitializeLib(image, systab);
    static const char pointer[] = "iommu-hv: the loader's and the hypervisor's report are on the debug console (I/O "
                                  "port 0xE9); this console (COM1) is the guest's\n";
    serial_write(pointer, sizeof pointer - 1);
    sink_printf(out, "\n=== iommu-hv loader %s: discovery and DMA remapping ===\n", LOADER_VERSION);

    struct checks c = {0};
    EFI_LOADED_IMAGE *loaded = NULL;
    uefi_call_wrapper(BS->HandleProtocol, 3, image, &LoadedImageProtocol, (void **)&loaded);
    if (check(&c, loaded != NULL, "loader image located") && read_config(loaded, &cfg, &c)) {
        sink_printf(out, "config: payload %s, reserved region %u MiB\n",
                    cfg.payload == PAYLOAD_SHELL         ? "shell"
                    : cfg.payload == PAYLOAD_PATH        ? cfg.payload_path
                    : cfg.payload == PAYLOAD_FAULTINJECT ? "faultinject"
                    : cfg.payload == PAYLOAD_HOSTILE     ? "hostile"
                                                         : "selftest",
                    cfg.region_mib);
        /* The region, with room for this image at its start; then on in the copy there. */
        boot.image_bytes = (loaded->ImageSize + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1);
        boot.region_bytes = ((uint64_t)cfg.region_mib << 20) + boot.image_bytes;
        boot.region_pa = remap_reserve_region(boot.region_bytes);
        const uint8_t *base = loaded->ImageBase;
        uint8_t *copy = (uint8_t *)(uintptr_t)boot.region_pa;
        if (checkf(&c, copy && image_copy_relocated(copy, base, loaded->ImageSize),
                   "reserved %lu MiB below 4 GiB for everything the hypervisor owns; the loader goes on in its copy "
                   "at 0x%lx", boot.region_bytes >> 20, boot.region_pa)) {
            void (*in_copy)(EFI_HANDLE, struct checks *) = image_in_copy((const void *)loader_main, base, copy);
            in_copy(image, &c);
        }
    }
    sink_printf(out, "RESULT: FAIL (%u of %u checks failed)\n", c.failed, c.run);
    uefi_call_wrapper(RT->ResetSystem, 4, EfiResetShutdown, EFI_ABORTED, 0, NULL);
    return EFI_ABORTED;
}
