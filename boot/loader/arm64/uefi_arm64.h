/* The loader's platform on AArch64 under UEFI, before ExitBootServices: the struct platform
 * the freestanding iommu/ code runs on (device registers, the identity-mapped memory the
 * firmware set up, page allocation from the firmware, the generic timer), and the few
 * firmware services the loader itself calls. */
#ifndef BOOT_LOADER_ARM64_UEFI_ARM64_H
#define BOOT_LOADER_ARM64_UEFI_ARM64_H

#include "iommu/platform.h"
#include "loader/arm64/uefi_abi.h"

struct uefi_arm64 {
    struct platform ops;
    struct efi_system_table *st;
    struct efi_boot_services *bs;
    uint64_t timer_hz;       /* CNTFRQ_EL0 */
    unsigned cache_line;     /* smallest data cache line (CTR_EL0.DminLine) */
};

void uefi_arm64_init(struct uefi_arm64 *p, struct efi_system_table *st);
/* The UEFI configuration table entry with that GUID, or NULL. */
void *uefi_arm64_config_table(const struct uefi_arm64 *p, const struct efi_guid *guid);
/* The firmware's memory map into buf (entries, each descriptor_size bytes); false on error. */
bool uefi_arm64_memory_map(const struct uefi_arm64 *p, void *buf, uint64_t bytes, uint64_t *entries,
                           uint64_t *descriptor_size);
/* Lets the CPU execute [base, base + bytes) at EL2: clears the execute-never bits of the
 * firmware's own translation tables (TTBR0_EL2) on the way to each of its pages. The
 * firmware maps reserved memory execute-never, and the loader's copy of itself in the
 * region must run. False when a page is not mapped or the tables are not 4 KiB-granule. */
bool uefi_arm64_make_executable(uint64_t base, uint64_t bytes);
/* A file of the boot volume (device) into buf; its size, or -1 when it cannot be read or
 * does not fit (bytes). */
int64_t uefi_arm64_read_file(const struct uefi_arm64 *p, efi_handle device, const uint16_t *path, void *buf,
                             uint64_t bytes);
/* Loads an image from a file of the boot volume (its device path: device's, then the file),
 * so that the image's own LoadedImage names the device it came from. */
efi_status uefi_arm64_load_image(const struct uefi_arm64 *p, efi_handle parent, efi_handle device,
                                 const uint16_t *path, efi_handle *image);
/* The exception level the loader runs at (2 with virtualization=on). */
unsigned uefi_arm64_current_el(void);

#endif
