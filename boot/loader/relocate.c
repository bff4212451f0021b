/* See boot/loader/relocate.h. */
#include "loader/relocate.h"

/* The ELF dynamic section gnu-efi's linker script keeps in the image (_DYNAMIC). */
struct elf64_dyn {
    int64_t tag;
    uint64_t value;
};

struct elf64_rela {
    uint64_t offset, info;
    int64_t addend;
};

#define DT_NULL 0
#define DT_RELA 7
#define DT_RELASZ 8
#define DT_RELAENT 9
#define R_X86_64_NONE 0
#define R_X86_64_RELATIVE 8

extern const struct elf64_dyn _DYNAMIC[];

bool image_copy_relocated(uint8_t *to, const uint8_t *base, size_t bytes)
{
    for (size_t i = 0; i < bytes; i++)
        to[i] = base[i];
    uint64_t rela = 0, size = 0, entry = sizeof(struct elf64_rela);
    for (const struct elf64_dyn *d = _DYNAMIC; d->tag != DT_NULL; d++) {
        if (d->tag == DT_RELA)
            rela = d->value; /* offsets from the image base: the section itself is not relocated */
        else if (d->tag == DT_RELASZ)
            size = d->value;
        else if (d->tag == DT_RELAENT)
            entry = d->value;
    }
    if (entry < sizeof(struct elf64_rela) || rela > bytes || size > bytes - rela)
        return false;
    for (uint64_t at = 0; at + sizeof(struct elf64_rela) <= size; at += entry) {
        const struct elf64_rela *r = (const struct elf64_rela *)(base + rela + at);
        uint32_t type = (uint32_t)r->info;
        if (type == R_X86_64_NONE)
            continue;
        if (type != R_X86_64_RELATIVE || r->offset > bytes - 8)
            return false;
        *(uint64_t *)(to + r->offset) = (uint64_t)(uintptr_t)to + (uint64_t)r->addend;
    }
    return true;
}
