/* The UEFI memory types (UEFI specification, EFI_MEMORY_TYPE) as numbers, and which of them
 * is RAM: one rule for both loaders, whichever UEFI headers they are built with. */
#ifndef BOOT_LOADER_UEFI_MEMORY_H
#define BOOT_LOADER_UEFI_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

/* RAM: usable by the OS, or the firmware's own RAM (code, data, ACPI tables). Persistent
 * memory is not counted: the default domains add it (devices reach it) where they need it. */
static inline bool uefi_memory_type_is_ram(uint32_t type)
{
    /* loader code/data (1, 2), boot and runtime services code/data (3-6), conventional (7),
     * ACPI reclaim (9) and NVS (10) */
    return (type >= 1 && type <= 7) || type == 9 || type == 10;
}

#endif
