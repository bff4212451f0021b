/* BOOTAA64.EFI: the loader on Arm. It finds the SMMUv3 through the IORT, reports what it
 * found in the x86 loader's form, takes over DMA remapping with a protecting default
 * domain (stage-1 tables identity-mapping RAM minus the loader's reserved region) and
 * demonstrates it with QEMU's edu device. Then it powers the machine off, so that
 * scripts/run.sh sees QEMU exit. Running the firmware as a guest at EL1 under an EL2
 * hypervisor is not done here (docs/design.md). */
#include "common/report.h"
#include "common/serial.h"
#include "iommu/acpi_report.h"
#include "iommu/iort.h"
#include "iommu/smmuv3.h"
#include "loader/arm64/remap_setup.h"
#include "loader/arm64/uefi_arm64.h"
#include "loader/discovery.h"
#include "loader/uefi_memory.h"

#define LOADER_VERSION "0.1"

const struct sink *const out = &serial_sink;

efi_status efi_main(efi_handle image, struct efi_system_table *st);

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
    static struct arm_remapping r;
    if (!arm_remap_setup(up, iort, inv, &r, c))
        return;
    check_firmware_dma(up, image, c);
    sink_printf(out, "--- edu demo ---\n");
    arm_edu_demo(up, &r, inv, c);
    arm_remap_report(&r);
}

efi_status efi_main(efi_handle image, struct efi_system_table *st)
{
    static struct uefi_arm64 up;
    uefi_arm64_init(&up, st);
    /* The firmware's watchdog would reset the machine in the middle of a long run. */
    up.bs->set_watchdog_timer(0, 0, 0, NULL);
    sink_printf(out, "\n=== iommu-hv loader %s (aarch64): discovery and DMA remapping ===\n", LOADER_VERSION);
    struct checks c = {0};
    unsigned el = uefi_arm64_current_el();
    sink_printf(out, "cpu: AArch64 at EL%u, generic timer %lu Hz\n", el, up.timer_hz);
    sink_printf(out, "--- memory map ---\n");
    report_memory_map(&up, &c);
    sink_printf(out, "--- ACPI ---\n");
    run(&up, image, &c);
    if (c.failed)
        sink_printf(out, "RESULT: FAIL (%u of %u checks failed)\n", c.failed, c.run);
    else
        sink_printf(out, "RESULT: PASS (%u checks)\n", c.run);
    st->runtime_services->reset_system(EFI_RESET_SHUTDOWN, c.failed ? EFI_NOT_FOUND : EFI_SUCCESS, 0, NULL);
    return EFI_SUCCESS;
}
