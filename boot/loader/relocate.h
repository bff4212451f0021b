/* Running the loader from a copy of itself inside the reserved region.
 *
 * The firmware loads BOOTX64.EFI as loader memory, which an operating system started later
 * may take for its own; the hypervisor's code and data must live where nothing else will:
 * the reserved region (EfiReservedMemoryType). So the loader copies its whole image there
 * first thing and goes on in the copy, after giving the copy's absolute addresses (the
 * image's R_X86_64_RELATIVE relocations, the only kind gnu-efi images have) their new
 * base. Everything made later (tables, pointers between structures) is made by the copy. */
#ifndef BOOT_RELOCATE_H
#define BOOT_RELOCATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Copies the image (bytes from its base, which the firmware relocated for) to 'to' and
 * relocates the copy for 'to'. False, with the copy unusable, on a relocation of another
 * kind or one outside the image. */
bool image_copy_relocated(uint8_t *to, const uint8_t *base, size_t bytes);

/* The copy's address of something in the running image. */
static inline void *image_in_copy(const void *p, const uint8_t *base, uint8_t *to)
{
    return to + ((const uint8_t *)p - base);
}

#endif
