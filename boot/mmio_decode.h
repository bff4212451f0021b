/* Decoding the one instruction a guest used for a memory-mapped register access the
 * hypervisor emulates (the local APIC page): MOV between a 32- or 64-bit register and
 * memory (89, 8B), or of a 32-bit immediate to memory (C7 /0), with REX, ModRM, SIB and
 * displacements. The nested page fault gives the address; the instruction gives its length,
 * the direction and the register or immediate. Freestanding. */
#ifndef BOOT_MMIO_DECODE_H
#define BOOT_MMIO_DECODE_H

#include <stdbool.h>
#include <stdint.h>

struct mmio_access {
    uint8_t length;   /* bytes of the instruction */
    bool write;
    uint8_t size;     /* 4 or 8 */
    bool immediate;   /* a write of 'value' rather than of register 'reg' */
    uint8_t reg;      /* 0 RAX, 1 RCX, 2 RDX, 3 RBX, 4 RSP, 5 RBP, 6 RSI, 7 RDI, 8-15 R8-R15 */
    uint32_t value;   /* the immediate */
};

/* False for anything else (the caller refuses the access). 'avail' bytes at 'code'. */
bool mmio_decode(const uint8_t *code, unsigned avail, struct mmio_access *out);

#endif
