/* The platform interface (iommu/platform.h) for UEFI boot services: physical memory is
 * identity mapped, so a physical address is its own pointer once it is known to lie in
 * the firmware's memory map. */
#ifndef BOOT_UEFI_PLATFORM_H
#define BOOT_UEFI_PLATFORM_H

#include <stdbool.h>

#include <efi.h>

#include "iommu/platform.h"

struct uefi_platform {
    struct platform ops;
    EFI_MEMORY_DESCRIPTOR *memory_map;
    UINTN memory_map_entries;
    UINTN descriptor_size;
    UINT32 descriptor_version;
    uint64_t tsc_per_us;
};

/* Takes a snapshot of the memory map and calibrates the TSC; false when the memory map
 * cannot be read. */
bool uefi_platform_init(struct uefi_platform *up);
/* How ops.flush_cache writes table memory back for units that do not snoop: for the report. */
const char *uefi_platform_write_back_name(const struct uefi_platform *up);

static inline const EFI_MEMORY_DESCRIPTOR *uefi_memory_descriptor(const struct uefi_platform *up, UINTN i)
{
    return (const EFI_MEMORY_DESCRIPTOR *)((const UINT8 *)up->memory_map + i * up->descriptor_size);
}

/* Whether memory of this type is RAM (usable by the OS, or the firmware's own RAM);
 * persistent memory is not counted (remap_setup.c adds it for the default domain). */
bool uefi_memory_is_ram(UINT32 type);

#endif
