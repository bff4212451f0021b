/* BOOTAA64.EFI: the loader on Arm. It reserves the hypervisor's region and goes on in its
 * own copy there; finds the SMMUv3 through the IORT, reports what it found in the x86
 * loader's form, takes over DMA remapping with a protecting default domain (stage-1 tables
 * identity-mapping RAM minus the region) and demonstrates it with QEMU's edu device. Then it
 * starts the EL2 hypervisor (boot/hypervisor/el2/): the firmware goes on at EL1 under stage
 * 2, in the original image, with the Arm self-test (boot/guest/selftest/selftest_arm64.c),
 * whose end is the hypervisor's verdict (docs/design.md). */
#include "common/edu.h"
#include "common/loader_handoff.h"
#include "common/report.h"
#include "common/serial.h"
#include "hypervisor/arch.h"
#include "hypervisor/hv.h"
#include "iommu/ranges.h"
#include "iommu/acpi_report.h"
#include "iommu/iort.h"
#include "iommu/smmuv3.h"
#include "loader/arm64/guest_resume.h"
#include "loader/arm64/remap_setup.h"
#include "loader/config.h"
#include "loader/arm64/uefi_arm64.h"
#include "loader/discovery.h"
#include "loader/uefi_memory.h"

#define LOADER_VERSION "0.1"

efi_status efi_main(efi_handle image, struct efi_system_table *st);

/* Where the two images are: the firmware's (the guest runs it again) and the copy in the
 * region (the hypervisor's). */
static struct {
    uint8_t *original, *copy;
    uint64_t image_bytes;
    uint64_t region_bytes; /* the SMMUs' static blocks, the copy, and region_mib for tables */
    efi_handle image;
    efi_handle device; /* the boot volume */
} boot;

static struct loader_config cfg;

static void report_memory_map(const struct uefi_arm64 *up, struct checks *c)
{
    static uint8_t map[64 * 1024];
    uint64_t entries = 0, size = 0;
    if (!check(c, uefi_arm64_memory_map(up, map, sizeof map, &entries, &size), "UEFI memory map read"))
        return;
    uint64_t ram_pages = 0, mmio_pages = 0, conventional = 0, highest_ram = 0;
    for (uint64_t i = 0; i < entries; i++) {
        const struct efi_memory_descriptor *d = (const void *)(map + i * size);
        if (uefi_memory_type_is_ram(d->type)) {
            ram_pages += d->pages;
            if (d->physical_start + d->pages * PAGE_SIZE > highest_ram)
                highest_ram = d->physical_start + d->pages * PAGE_SIZE;
        } else if (d->type == EFI_MEMORY_MAPPED_IO) {
            mmio_pages += d->pages;
        }
        if (d->type == EFI_CONVENTIONAL_MEMORY)
            conventional += d->pages;
    }
    sink_printf(out, "memmap: %lu descriptors of %lu bytes, RAM up to 0x%lx\n", entries, size, highest_ram);
    sink_printf(out, "memmap: RAM %lu pages %lu MiB, of which conventional %lu MiB; MMIO %lu pages\n", ram_pages,
                ram_pages * PAGE_SIZE >> 20, conventional * PAGE_SIZE >> 20, mmio_pages);
    check(c, entries > 0 && conventional > 0, "memory map read, conventional memory present");
}

/* Parses and reports the IORT and reads every SMMUv3 it lists; returns NULL without one. */
static const struct iort_table *discover_iort(const struct platform *plat, const struct acpi_tables *tables,
                                              unsigned *units, struct checks *c)
{
    static struct iort_table iort;
    const struct acpi_table_ref *ref = acpi_find(tables, "IORT");
    if (!check(c, ref != NULL, "IORT table present"))
        return NULL;
    const uint8_t *bytes = acpi_map_table(plat, ref);
    struct diag d;
    diag_clear(&d);
    bool ok = bytes && iort_parse(&iort, bytes, ref->length, &d);
    diag_print(&d, "iort", out); /* names the ID-count quirk where the firmware has it */
    if (!check(c, ok, "IORT parsed"))
        return NULL;
    discovery_dump_table("IORT", bytes, ref->length);
    sink_printf(out, "--- IORT ---\n");
    iort_report_text(&iort, out);
    sink_printf(out, "--- remapping units ---\n");
    struct iort_cursor cur = {0};
    struct iort_node n;
    unsigned found = 0;
    while (iort_next_node(&iort, &cur, &n)) {
        if (n.type != IORT_NODE_SMMUV3)
            continue;
        char prefix[16];
        fmt_format(prefix, sizeof prefix, "smmu[%u]: ", found);
        sink_printf(out, "%sSMMUv3 node at offset 0x%x, register base 0x%lx, model %u\n", prefix, n.offset,
                    n.base_address, n.model);
        struct smmuv3_caps caps;
        bool alive = smmuv3_caps_read(plat, n.base_address, &caps);
        if (alive)
            smmuv3_caps_report(&caps, prefix, out);
        const char *why = alive ? smmuv3_caps_unusable(&caps) : "no answer";
        if (checkf(c, alive, "unit %u at 0x%lx answers (IDR0/IDR1 not all ones)", found, n.base_address))
            checkf(c, !why, "unit %u can translate for this driver%s%s", found, why ? ": " : "", why ? why : "");
        found++;
    }
    *units = found;
    check(c, found > 0, "IORT describes at least one SMMUv3");
    return &iort;
}

/* The firmware's disk read, through the default domain, once translation is on: the boot
 * disk is a virtio disk behind the SMMU (scripts/run.sh starts it with iommu_platform=on). */
static void check_firmware_dma(struct uefi_arm64 *up, efi_handle image, struct checks *c)
{
    static const struct efi_guid loaded_guid = EFI_LOADED_IMAGE_PROTOCOL_GUID, bio_guid = EFI_BLOCK_IO_PROTOCOL_GUID;
    struct efi_loaded_image *loaded = NULL;
    struct efi_block_io *bio = NULL;
    efi_status st = up->bs->handle_protocol(image, &loaded_guid, (void **)&loaded);
    if (!efi_failed(st))
        st = up->bs->handle_protocol(loaded->device_handle, &bio_guid, (void **)&bio);
    if (!check(c, !efi_failed(st) && bio, "the boot disk's BlockIo is there"))
        return;
    uint64_t block = 0;
    uint32_t size = bio->media->block_size <= PAGE_SIZE ? bio->media->block_size : 0;
    void *buf = size ? up->ops.alloc_pages(up->ops.ctx, 1, ~0ull, &block) : NULL;
    uint64_t t0 = up->ops.now_ns(up->ops.ctx);
    st = buf ? bio->read_blocks(bio, bio->media->media_id, 0, size, buf) : EFI_NOT_FOUND;
    uint64_t ms = (up->ops.now_ns(up->ops.ctx) - t0) / 1000000;
    if (buf)
        up->ops.free_pages(up->ops.ctx, buf, 1);
    checkf(c, !efi_failed(st) && ms < 2000, "firmware disk read after translation is on: status 0x%lx in %lu ms", st,
           ms);
}

/* Guest RAM for the hypercall server (the memory map's RAM without the region), and the end
 * of the highest range. */
static void guest_ram(const struct uefi_arm64 *up, struct hv_setup *s)
{
    static uint8_t map[64 * 1024];
    static struct addr_range ranges[HC_MAX_RAM_RANGES + 2];
    uint64_t entries = 0, size = 0;
    unsigned n = 0;
    s->top = 0;
    if (!uefi_arm64_memory_map(up, map, sizeof map, &entries, &size))
        entries = 0;
    for (uint64_t i = 0; i < entries; i++) {
        const struct efi_memory_descriptor *d = (const void *)(map + i * size);
        uint64_t end = d->physical_start + d->pages * PAGE_SIZE;
        s->top = end > s->top ? end : s->top;
        if (uefi_memory_type_is_ram(d->type) && n < HC_MAX_RAM_RANGES)
            ranges[n++] = (struct addr_range){d->physical_start, end};
    }
    n = ranges_merge(ranges, n);
    n = ranges_remove(ranges, n, HC_MAX_RAM_RANGES + 2, s->remap->region_pa, s->remap->region_pa + s->remap->region_bytes);
    s->ram_count = 0;
    for (unsigned i = 0; i < n && s->ram_count < HC_MAX_RAM_RANGES; i++)
        s->ram[s->ram_count++] = (struct hc_ram_range){ranges[i].base, ranges[i].end - ranges[i].base};
}

/* The guest must not find the SMMU and fight the hypervisor for it: the IORT is rewritten in
 * place without its SMMU nodes, the root complex's IDs going straight to the ITS. */
static void hide_smmus(const struct platform *plat, const struct acpi_tables *tables, const struct iort_table *iort,
                       struct checks *c)
{
    static uint8_t rewritten[64 * 1024];
    const struct acpi_table_ref *ref = acpi_find(tables, "IORT");
    struct diag d;
    diag_clear(&d);
    size_t n = iort_hide_smmus(iort, rewritten, sizeof rewritten, &d);
    diag_print(&d, "iort", out);
    uint8_t *table = ref ? (uint8_t *)(uintptr_t)acpi_map_table(plat, ref) : NULL;
    bool fits = table && n && n <= ref->length;
    if (fits) {
        __builtin_memcpy(table, rewritten, n);
        __builtin_memset(table + n, 0, ref->length - n);
    }
    checkf(c, fits, "IORT rewritten for the guest without its SMMUs: %lu of %u bytes", (uint64_t)n,
           ref ? ref->length : 0);
}

/* The ITSs the hypervisor withholds leave the guest's MADT, so an OS does not probe them. */
static void hide_its(const struct platform *plat, const struct acpi_tables *tables, struct checks *c)
{
    const struct acpi_table_ref *ref = acpi_find(tables, "APIC");
    uint8_t *madt = ref ? (uint8_t *)(uintptr_t)acpi_map_table(plat, ref) : NULL;
    int removed = madt ? madt_remove_type(madt, ref->length, 0xF /* GIC ITS */) : -1;
    checkf(c, removed >= 0, "MADT for the guest without its GIC ITS entries: %d removed", removed);
}

/* The CPUs the MADT lists, the boot CPU found among them by its MPIDR, and its GIC ITSs
 * (for s); false without the boot CPU. */
static bool list_cpus(const struct platform *plat, const struct acpi_tables *tables, struct hv *hv, unsigned *bsp,
                      struct hv_setup *s, struct checks *c)
{
    static struct madt_giccs giccs;
    const struct acpi_table_ref *ref = acpi_find(tables, "APIC");
    const uint8_t *madt = ref ? acpi_map_table(plat, ref) : NULL;
    struct diag d;
    diag_clear(&d);
    bool ok = madt && madt_giccs_parse(madt, ref->length, &giccs, &d);
    diag_print(&d, "madt", out);
    uint64_t self;
    __asm__ volatile("mrs %0, mpidr_el1" : "=r"(self));
    *bsp = HV_MAX_CPUS;
    for (unsigned i = 0; ok && i < giccs.count && i < HV_MAX_CPUS; i++) {
        hv->cpu[i].index = i;
        hv->cpu[i].arch.mpidr = giccs.mpidr[i];
        hv->cpu[i].apic_id = (uint32_t)giccs.mpidr[i];
        if ((giccs.mpidr[i] & 0xFF00FFFFFFull) == (self & 0xFF00FFFFFFull))
            *bsp = i;
    }
    hv->cpus = ok ? giccs.count : 0;
    s->its_count = ok ? giccs.its_count : 0;
    for (unsigned i = 0; i < s->its_count && i < 4; i++)
        s->its_base[i] = giccs.its_base[i];
    return checkf(c, ok && *bsp < hv->cpus, "MADT: %u CPUs (GICC entries), the boot CPU (mpidr 0x%lx) among them",
                  hv->cpus, (uint64_t)(self & 0xFF00FFFFFFull));
}

/* What the Arm self-test is told, in the firmware's memory (the guest's). */
static struct loader_handoff *guest_handoff(struct uefi_arm64 *up, const struct hv *hv,
                                            const struct pci_inventory *inv, unsigned bsp)
{
    struct loader_handoff *o = NULL;
    if (efi_failed(up->bs->allocate_pool(EFI_LOADER_DATA, sizeof *o, (void **)&o)))
        return NULL;
    const struct remapping *r = hv->remap;
    *o = (struct loader_handoff){.magic = LOADER_HANDOFF_MAGIC, .iommu_units = r->units,
                                 .region_base = r->region_pa, .region_bytes = r->region_bytes,
                                 .image_base = (uint64_t)(uintptr_t)boot.copy, .image_bytes = boot.image_bytes,
                                 .canary_pa = hv->canary_pa};
    for (unsigned i = 0; i < r->units && i < 4; i++)
        o->iommu_base[i] = r->unit_ptr[i]->register_base;
    for (uint32_t i = 0; i < inv->count && o->edus < 2; i++) {
        const struct pci_function *f = &inv->fn[i];
        if (f->vendor == EDU_VENDOR && f->device == EDU_DEVICE && f->unit >= 0) {
            edu_enable(&up->ops, f->config_pa); /* the payload drives it from the guest */
            o->edu[o->edus++] = (struct handoff_edu){.bar = pci_memory_bar(&up->ops, f, 0), .segment = f->segment,
                                                     .bus = f->bus, .device = f->dev, .function = f->fn};
        }
    }
    for (unsigned i = 0; i < hv->cpus && o->cpus < LOADER_HANDOFF_MAX_CPUS; i++)
        if (i != bsp)
            o->secondary_mpidr[o->cpus++] = hv->cpu[i].arch.mpidr;
    return o;
}

/* An image of the boot disk's \EFI\BOOT, loaded (NULL when it is not there). */
static efi_handle load_image(struct uefi_arm64 *up, const uint16_t *path, const char *name, struct checks *c)
{
    efi_handle h = NULL;
    efi_status st = uefi_arm64_load_image(up, boot.image, boot.device, path, &h);
    checkf(c, !efi_failed(st), "%s loaded (status 0x%lx)", name, st);
    return efi_failed(st) ? NULL : h;
}

/* DDISHIM.EFI (the guest's wdm interface, resident: it makes no hypercall until it runs at
 * EL1), then the payload, loaded with its options, and what the guest's first code starts. */
static struct arm64_resume *start_payload(struct uefi_arm64 *up, struct loader_handoff *handoff, struct checks *c)
{
    static const struct efi_guid loaded_guid = EFI_LOADED_IMAGE_PROTOCOL_GUID;
    static const uint16_t shim_path[] = u"\\EFI\\BOOT\\DDISHIM.EFI", faultinj_path[] = u"\\EFI\\BOOT\\FAULTINJ.EFI",
                          hostile_path[] = u"\\EFI\\BOOT\\HOSTILE.EFI";
    efi_handle shim = load_image(up, shim_path, "DDISHIM.EFI, the guest's DDI shim,", c);
    efi_status st = shim ? up->bs->start_image(shim, NULL, NULL) : EFI_NOT_FOUND;
    if (!checkf(c, !efi_failed(st), "DDI protocol installed for the guest (status 0x%lx)", st))
        return NULL;
    efi_handle payload = NULL;
    if (cfg.payload == PAYLOAD_FAULTINJECT) {
        payload = load_image(up, faultinj_path, "payload FAULTINJ.EFI", c);
    } else if (cfg.payload == PAYLOAD_HOSTILE) {
        payload = load_image(up, hostile_path, "payload HOSTILE.EFI", c);
    } else if (cfg.payload == PAYLOAD_PATH) {
        static uint16_t path[CONFIG_PATH_MAX];
        unsigned i = 0;
        for (; cfg.payload_path[i] && i + 1 < CONFIG_PATH_MAX; i++)
            path[i] = (uint8_t)cfg.payload_path[i];
        path[i] = 0;
        payload = load_image(up, path, "payload from the configuration", c);
    } else {
        checkf(c, false, "payload shell: not on Arm yet (selftest, faultinject, hostile or a path)");
    }
    struct efi_loaded_image *li = NULL;
    struct arm64_resume *resume = NULL;
    if (!payload || efi_failed(up->bs->handle_protocol(payload, &loaded_guid, (void **)&li)) ||
        efi_failed(up->bs->allocate_pool(EFI_LOADER_DATA, sizeof *resume, (void **)&resume)))
        return NULL;
    if (cfg.payload == PAYLOAD_FAULTINJECT || cfg.payload == PAYLOAD_HOSTILE) {
        li->load_options = handoff;
        li->load_options_size = sizeof *handoff;
    }
    *resume = (struct arm64_resume){.boot_services = up->bs, .payload = payload, .cpus = handoff->cpus};
    for (unsigned i = 0; i < handoff->cpus && i < LOADER_HANDOFF_MAX_CPUS; i++)
        resume->mpidr[i] = handoff->secondary_mpidr[i];
    return resume;
}

/* The hypervisor, started under the firmware; the firmware goes on as its guest at EL1, in
 * the original image, with the self-test. Returns only when the hypervisor could not start. */
static void start_hypervisor(struct uefi_arm64 *up, struct remapping *r, const struct pci_inventory *inv,
                             const struct acpi_tables *tables, const struct iort_table *iort, struct checks *c)
{
    sink_printf(out, "--- hypervisor ---\n");
    static struct hv hv;
    static struct hv_setup s;
    s = (struct hv_setup){.plat = &up->ops, .remap = r, .pci = inv, .console_base = serial_base(),
                          .fault_injection = cfg.fault_injection,
                          .image_base = (uint64_t)(uintptr_t)boot.copy,
                          .image_end = (uint64_t)(uintptr_t)boot.copy + boot.image_bytes};
    guest_ram(up, &s);
    hv_init(&hv, &s);
    unsigned bsp = 0;
    if (!list_cpus(&up->ops, tables, &hv, &bsp, &s, c) || !hv_arch_prepare(&hv, &s, c))
        return;
    for (unsigned i = 0; i < hv.cpus; i++)
        if (!hv_arch_prepare_cpu(&hv, &hv.cpu[i], c))
            return;
    struct loader_handoff *handoff = guest_handoff(up, &hv, inv, bsp);
    if (!check(c, handoff != NULL, "the payload's handoff in the firmware's memory"))
        return;
    /* The guest's first code runs in the firmware's image of the loader, which the guest may
     * run: the copy this runs from is the hypervisor's. */
    uint64_t entry = (uint64_t)(uintptr_t)selftest_arm64_main, arg = (uint64_t)(uintptr_t)handoff;
    if (cfg.payload != PAYLOAD_SELFTEST) {
        struct arm64_resume *resume = start_payload(up, handoff, c);
        if (!resume)
            return;
        entry = (uint64_t)(uintptr_t)arm64_guest_resume, arg = (uint64_t)(uintptr_t)resume;
    }
    entry = entry - (uint64_t)(uintptr_t)boot.copy + (uint64_t)(uintptr_t)boot.original;
    hide_smmus(&up->ops, tables, iort, c);
    hide_its(&up->ops, tables, c);
    if (c->failed)
        return;
    check(c, true, cfg.payload == PAYLOAD_SELFTEST ? "cpu 0 goes on as a guest at EL1: the self-test reports from here"
                                                  : "cpu 0 goes on as a guest at EL1: the payload reports from here");
    handoff->loader_checks = c->run;
    handoff->loader_failed = c->failed;
    hv.loader_checks = c->run;
    hv.loader_failed = c->failed;
    uint64_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    hv_launch_el1(&hv, bsp, entry, arg, (sp - 256) & ~15ull);
}

static void run(struct uefi_arm64 *up, efi_handle image, struct checks *c)
{
    const struct platform *plat = &up->ops;
    static const struct efi_guid acpi20 = EFI_ACPI_20_TABLE_GUID;
    static struct acpi_tables tables;
    if (!discovery_acpi(plat, uefi_arm64_config_table(up, &acpi20), &tables, c))
        return;

    unsigned units = 0;
    const struct iort_table *iort = discover_iort(plat, &tables, &units, c);
    const struct pci_inventory *inv = discovery_pci(plat, &tables, NULL, iort, units, "smmu", c);
    if (!iort || !inv || c->failed)
        return;

    sink_printf(out, "--- DMA remapping ---\n");
    static struct remapping r;
    r.region_pa = (uint64_t)(uintptr_t)boot.copy - ARM_REGION_MAX_SMMUS * SMMUV3_STATIC_BYTES;
    r.region_bytes = boot.region_bytes;
    if (!arm_remap_setup(up, iort, inv, (uint64_t)(uintptr_t)boot.copy + boot.image_bytes, cfg.smmu_input_bits, &r, c))
        return;
    check_firmware_dma(up, image, c);
    /* A fault-injection run keeps QEMU's fault trace to the scenario's own DMA. */
    if (cfg.payload != PAYLOAD_FAULTINJECT) {
        sink_printf(out, "--- edu demo ---\n");
        arm_edu_demo(up, &r, inv, c);
    }
    arm_remap_report(&r);
    start_hypervisor(up, &r, inv, &tables, iort, c);
}

/* The second stage, in the copy of the image inside the region. */
static void loader_main(efi_handle image, struct efi_system_table *st)
{
    static struct uefi_arm64 up;
    uefi_arm64_init(&up, st);
    struct checks c = {0};
    check(&c, true, "loader image located");
    checkf(&c, true, "reserved %lu MiB for everything the hypervisor owns; the loader goes on in its copy at 0x%lx",
           boot.region_bytes >> 20,
           (uint64_t)(uintptr_t)boot.copy);
    unsigned el = uefi_arm64_current_el();
    sink_printf(out, "cpu: AArch64 at EL%u, generic timer %lu Hz\n", el, up.timer_hz);
    if (checkf(&c, el == 2, "the loader runs at EL2 (QEMU's virtualization=on): the hypervisor can start")) {
        sink_printf(out, "--- memory map ---\n");
        report_memory_map(&up, &c);
        sink_printf(out, "--- ACPI ---\n");
        run(&up, image, &c);
    }
    /* Here only when the hypervisor did not start. */
    sink_printf(out, "RESULT: FAIL (%u of %u checks failed; the hypervisor did not start)\n", c.failed, c.run);
    st->runtime_services->reset_system(EFI_RESET_SHUTDOWN, EFI_NOT_FOUND, 0, NULL);
}

/* \EFI\BOOT\IOMMUHV.CFG from the boot disk over the defaults, then the command line's
 * key=value words (boot/loader/config.h); false, after the RESULT line, on a bad one. */
static bool read_config(struct uefi_arm64 *up, const struct efi_loaded_image *loaded)
{
    static const uint16_t path[] = u"\\EFI\\BOOT\\IOMMUHV.CFG";
    static char text[4096], words[1024];
    char error[96] = "";
    config_defaults(&cfg);
    int64_t n = uefi_arm64_read_file(up, loaded->device_handle, path, text, sizeof text);
    bool ok = n < 0 || config_parse(&cfg, text, (size_t)n, error, sizeof error);
    size_t w = ok ? config_from_command_line(loaded->load_options, loaded->load_options_size / 2, words, sizeof words) : 0;
    ok = ok && (!w || config_parse(&cfg, words, w, error, sizeof error));
    if (!ok) {
        sink_printf(out, "check: FAIL configuration read: %s\nRESULT: FAIL (the configuration)\n", error);
        return false;
    }
    sink_printf(out, "config: %s, payload %s\n", n < 0 ? "no \\EFI\\BOOT\\IOMMUHV.CFG, defaults" : "\\EFI\\BOOT\\IOMMUHV.CFG read",
                cfg.payload == PAYLOAD_FAULTINJECT ? "faultinject" : cfg.payload == PAYLOAD_PATH ? cfg.payload_path
                : cfg.payload == PAYLOAD_SELFTEST ? "selftest" : cfg.payload == PAYLOAD_SHELL ? "shell" : "hostile");
    return true;
}

extern const uint8_t _DYNAMIC[], __image_base[], _text[], _etext[];
void self_relocate(uint8_t *base, const void *dyn);

efi_status efi_main(efi_handle image, struct efi_system_table *st)
{
    static struct uefi_arm64 up;
    uefi_arm64_init(&up, st);
    /* The firmware's watchdog would reset the machine in the middle of a long run. */
    up.bs->set_watchdog_timer(0, 0, 0, NULL);
    sink_printf(out, "\n=== iommu-hv loader %s (aarch64): discovery and DMA remapping ===\n", LOADER_VERSION);
    static const struct efi_guid loaded_guid = EFI_LOADED_IMAGE_PROTOCOL_GUID;
    struct efi_loaded_image *loaded = NULL;
    if (efi_failed(up.bs->handle_protocol(image, &loaded_guid, (void **)&loaded)) || !loaded) {
        sink_printf(out, "RESULT: FAIL (the loader's own image not found)\n");
        return EFI_NOT_FOUND;
    }
    /* The region: the SMMUs' static blocks, this image's copy, the page pool. The copy gets
     * its own relocations again (self_relocate.c), for its new base. */
    boot.original = loaded->image_base;
    boot.image = image;
    boot.device = loaded->device_handle;
    if (!read_config(&up, loaded))
        return EFI_ABORTED;
    boot.image_bytes = (loaded->image_size + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1);
    uint64_t statics = ARM_REGION_MAX_SMMUS * SMMUV3_STATIC_BYTES;
    boot.region_bytes = statics + boot.image_bytes + ((uint64_t)cfg.region_mib << 20);
    uint64_t region = arm_region_reserve(&up, boot.region_bytes);
    if (!region) {
        sink_printf(out, "RESULT: FAIL (no reserved region from the firmware)\n");
        return EFI_OUT_OF_RESOURCES;
    }
    boot.copy = (uint8_t *)(uintptr_t)(region + statics);
    __builtin_memcpy(boot.copy, boot.original, loaded->image_size);
    self_relocate(boot.copy, boot.copy + (_DYNAMIC - __image_base));
    if (!uefi_arm64_make_executable((uint64_t)(uintptr_t)boot.copy + (_text - __image_base), (uint64_t)(_etext - _text))) {
        sink_printf(out, "RESULT: FAIL (the firmware's tables would not let the copy in the region run)\n");
        return EFI_ABORTED;
    }
    void (*in_copy)(efi_handle, struct efi_system_table *) =
        (void (*)(efi_handle, struct efi_system_table *))(uintptr_t)(boot.copy + ((const uint8_t *)loader_main -
                                                                                  boot.original));
    in_copy(image, st);
    return EFI_ABORTED;
}
