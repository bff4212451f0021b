/* Applies the image's own relocations once, at entry (efi_entry.S). It runs before the
 * relocations are done, so it reads only what is PC-relative: its two arguments, found
 * with adrp, and the dynamic section's offsets, which are relative to the image base. */
#include <stdint.h>

#define DT_NULL 0
#define DT_RELA 7
#define DT_RELASZ 8
#define DT_RELAENT 9
#define R_AARCH64_RELATIVE 1027u

struct elf_dyn {
    int64_t tag;
    uint64_t value;
};

struct elf_rela {
    uint64_t offset, info;
    int64_t addend;
};

void self_relocate(uint8_t *base, const struct elf_dyn *dyn);

void self_relocate(uint8_t *base, const struct elf_dyn *dyn)
{
    uint64_t rela = 0, bytes = 0, entry = sizeof(struct elf_rela);
    for (; dyn->tag != DT_NULL; dyn++) {
        if (dyn->tag == DT_RELA)
            rela = dyn->value;
        else if (dyn->tag == DT_RELASZ)
            bytes = dyn->value;
        else if (dyn->tag == DT_RELAENT)
            entry = dyn->value;
    }
    /* The link (image.lds, -z text, no symbols) leaves relative relocations only; any other
     * kind would be a link error, not something to resolve here. */
    for (uint64_t off = 0; rela && entry && off + entry <= bytes; off += entry) {
        const struct elf_rela *r = (const struct elf_rela *)(base + rela + off);
        if ((uint32_t)r->info == R_AARCH64_RELATIVE)
            *(uint64_t *)(base + r->offset) = (uint64_t)(base + r->addend);
    }
}
