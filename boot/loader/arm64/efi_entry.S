/* The PE entry point of BOOTAA64.EFI: efi_entry(ImageHandle in x0, SystemTable in x1).
 *
 * The image is a position-independent ELF linked at 0 (image.lds) and converted to PE32+ by
 * objcopy. The firmware loads it anywhere and applies PE base relocations, but objcopy
 * makes none from the ELF's: the image applies its own R_AARCH64_RELATIVE relocations
 * (self_relocate.c) before any C code reads a pointer stored in data. */
    .text
    .globl efi_entry
    .type efi_entry, %function
efi_entry:
    stp     x29, x30, [sp, #-32]!
    mov     x29, sp
    stp     x0, x1, [sp, #16]
    adrp    x0, __image_base
    add     x0, x0, :lo12:__image_base
    adrp    x1, _DYNAMIC
    add     x1, x1, :lo12:_DYNAMIC
    bl      self_relocate
    ldp     x0, x1, [sp, #16]
    bl      efi_main
    ldp     x29, x30, [sp], #32
    ret
    .size efi_entry, . - efi_entry

/* A base relocation directory with one block of two no-op (ABSOLUTE) entries: the firmware
 * refuses to load an image away from its preferred base (0) when the directory is absent
 * or empty, and this one asks it to change nothing. */
    .section .reloc, "a"
    .long   0       /* page RVA */
    .long   12      /* block size: this header and two entries */
    .short  0
    .short  0
