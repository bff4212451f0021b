/* See boot/mmio_decode.h. */
#include "mmio_decode.h"

bool mmio_decode(const uint8_t *code, unsigned avail, struct mmio_access *out)
{
    unsigned i = 0;
    uint8_t rex = 0;
    if (avail > 15)
        avail = 15;
    if (i < avail && (code[i] & 0xF0) == 0x40)
        rex = code[i++];
    if (i + 2 > avail)
        return false;
    uint8_t opcode = code[i++], modrm = code[i++];
    unsigned mod = modrm >> 6, reg = (modrm >> 3) & 7, rm = modrm & 7;
    if (mod == 3)
        return false; /* register to register: no memory access */
    if (rm == 4) {    /* SIB */
        if (i >= avail)
            return false;
        uint8_t sib = code[i++];
        if (mod == 0 && (sib & 7) == 5)
            i += 4; /* no base: disp32 */
    }
    if (mod == 0 && rm == 5)
        i += 4; /* RIP-relative disp32 */
    else if (mod == 1)
        i += 1;
    else if (mod == 2)
        i += 4;
    *out = (struct mmio_access){.size = (rex & 0x8) ? 8 : 4, .reg = (uint8_t)(reg | ((rex & 0x4) ? 8 : 0))};
    switch (opcode) {
    case 0x89: /* MOV r/m, reg */
        out->write = true;
        break;
    case 0x8B: /* MOV reg, r/m */
        break;
    case 0xC7: /* MOV r/m, imm32 */
        if (reg != 0 || i + 4 > avail)
            return false;
        out->write = out->immediate = true;
        out->value = (uint32_t)code[i] | (uint32_t)code[i + 1] << 8 | (uint32_t)code[i + 2] << 16 |
                     (uint32_t)code[i + 3] << 24;
        i += 4;
        break;
    default:
        return false;
    }
    if (i > avail)
        return false;
    out->length = (uint8_t)i;
    return true;
}
