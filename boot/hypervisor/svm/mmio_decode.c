/* See boot/hypervisor/svm/mmio_decode.h. */
#include "hypervisor/svm/mmio_decode.h"

#define MAX_INSN 15u

static bool is_segment_prefix(uint8_t b)
{
    return b == 0x26 || b == 0x2E || b == 0x36 || b == 0x3E || b == 0x64 || b == 0x65;
}

/* The bytes a memory operand adds after the ModRM byte (SIB, displacement), or -1 when they
 * do not fit in 'left' bytes; mod is never 3 here. */
static int modrm_tail(const uint8_t *p, unsigned left, unsigned mod, unsigned rm, bool addr16)
{
    unsigned n = 0;
    if (addr16) {
        if (mod == 0 && rm == 6)
            n = 2; /* disp16, no base */
        else if (mod == 1)
            n = 1;
        else if (mod == 2)
            n = 2;
    } else {
        if (rm == 4) { /* SIB */
            if (left < 1)
                return -1;
            if (mod == 0 && (p[0] & 7) == 5)
                n = 4; /* no base: disp32 */
            n += 1;
        }
        if (mod == 0 && rm == 5)
            n = 4; /* RIP-relative (64-bit mode) or absolute disp32 */
        else if (mod == 1)
            n += 1;
        else if (mod == 2)
            n += 4;
    }
    return n <= left ? (int)n : -1;
}

bool mmio_decode_mov(const uint8_t *code, unsigned avail, enum mmio_cpu_mode mode, struct mmio_access *out)
{
    if (!code || !out || (mode != MMIO_MODE_64 && mode != MMIO_MODE_32 && mode != MMIO_MODE_16))
        return false;
    if (avail > MAX_INSN)
        avail = MAX_INSN;
    unsigned i = 0;
    bool opsize = false, addrsize = false;
    uint8_t segment = 0, rex = 0, b;
    for (;;) { /* legacy prefixes; the 15-byte bound ends the loop */
        if (i >= avail)
            return false;
        b = code[i];
        if (b == 0x66)
            opsize = true;
        else if (b == 0x67)
            addrsize = true;
        else if (is_segment_prefix(b))
            segment = b;
        else if (b == 0xF0 || b == 0xF2 || b == 0xF3)
            return false; /* LOCK, REPNE, REP */
        else
            break;
        i++;
    }
    if (mode == MMIO_MODE_64 && (b & 0xF0) == 0x40) {
        rex = b;
        if (++i >= avail)
            return false;
        b = code[i]; /* must be the opcode: another REX or prefix after a REX is refused */
    }
    i++; /* past the opcode's first byte */

    unsigned opsz; /* the operand size of the non-byte forms */
    if (rex & 0x8)
        opsz = 8;
    else if (mode == MMIO_MODE_16)
        opsz = opsize ? 4 : 2;
    else
        opsz = opsize ? 2 : 4;
    bool addr16 = mode == MMIO_MODE_16 ? !addrsize : mode == MMIO_MODE_32 && addrsize;

    bool write = false, imm = false, byte_reg = false;
    unsigned size, reg_size, imm_size = 0;
    uint8_t extend = MMIO_EXTEND_NONE;
    if (b >= 0xA0 && b <= 0xA3) { /* MOV AL/eAX <-> moffs: the address is in the instruction */
        unsigned offset = mode == MMIO_MODE_64 ? (addrsize ? 4 : 8) : addr16 ? 2 : 4;
        if (offset > avail - i)
            return false;
        size = (b & 1) ? opsz : 1;
        *out = (struct mmio_access){
            .length = (uint8_t)(i + offset),
            .write = b >= 0xA2,
            .size = (uint8_t)size,
            .reg = 0,
            .reg_size = (uint8_t)size,
            .segment = segment,
            .addr_prefix = addrsize,
        };
        return true;
    }
    switch (b) {
    case 0x88: /* MOV r/m8, r8 */
        write = byte_reg = true;
        size = reg_size = 1;
        break;
    case 0x89: /* MOV r/m, r */
        write = true;
        size = reg_size = opsz;
        break;
    case 0x8A: /* MOV r8, r/m8 */
        byte_reg = true;
        size = reg_size = 1;
        break;
    case 0x8B: /* MOV r, r/m */
        size = reg_size = opsz;
        break;
    case 0xC6: /* MOV r/m8, imm8 */
        write = imm = true;
        size = imm_size = 1;
        reg_size = 0;
        break;
    case 0xC7: /* MOV r/m, imm16/imm32 */
        write = imm = true;
        size = opsz;
        imm_size = opsz == 2 ? 2 : 4;
        reg_size = 0;
        break;
    case 0x0F: /* MOVZX, MOVSX */
        if (i >= avail)
            return false;
        b = code[i++];
        if (b != 0xB6 && b != 0xB7 && b != 0xBE && b != 0xBF)
            return false;
        size = (b & 1) ? 2 : 1;
        reg_size = opsz;
        extend = (b & 8) ? MMIO_EXTEND_SIGN : MMIO_EXTEND_ZERO;
        break;
    default:
        return false;
    }

    if (i >= avail)
        return false;
    uint8_t modrm = code[i++];
    unsigned mod = modrm >> 6, regf = (modrm >> 3) & 7, rm = modrm & 7;
    if (mod == 3)
        return false; /* register to register: no memory access */
    if (imm && regf != 0)
        return false; /* C6/C7 /1-/7 are not MOV */
    int tail = modrm_tail(code + i, avail - i, mod, rm, addr16);
    if (tail < 0)
        return false;
    i += (unsigned)tail;
    if (imm_size > avail - i)
        return false;

    struct mmio_access a = {
        .write = write,
        .size = (uint8_t)size,
        .immediate = imm,
        .reg_size = (uint8_t)reg_size,
        .extend = extend,
        .segment = segment,
        .addr_prefix = addrsize,
    };
    if (imm) {
        uint32_t v = 0;
        for (unsigned k = 0; k < imm_size; k++)
            v |= (uint32_t)code[i + k] << (8 * k);
        i += imm_size;
        a.value = v;
        a.imm = v;
        if (size == 8 && (v & 0x80000000u))
            a.imm = (uint64_t)v | 0xFFFFFFFF00000000ull;
    } else {
        unsigned r = regf | ((rex & 0x4) ? 8u : 0u);
        if (byte_reg && !rex && r >= 4) { /* AH, CH, DH, BH */
            a.high_byte = true;
            r -= 4;
        }
        a.reg = (uint8_t)r;
    }
    a.length = (uint8_t)i;
    *out = a;
    return true;
}

static uint64_t low_bytes(uint64_t v, unsigned n)
{
    return n >= 8 ? v : v & ((1ull << (8 * n)) - 1);
}

uint64_t mmio_store_value(const struct mmio_access *a, uint64_t reg_value)
{
    if (a->immediate)
        return low_bytes(a->imm, a->size);
    if (a->high_byte)
        return (reg_value >> 8) & 0xFF;
    return low_bytes(reg_value, a->size);
}

uint64_t mmio_load_result(const struct mmio_access *a, uint64_t old_reg, uint64_t data)
{
    unsigned size = a->size >= 1 && a->size <= 8 ? a->size : 8;
    uint64_t v = low_bytes(data, size);
    if (a->extend == MMIO_EXTEND_SIGN && size < 8 && (v >> (8 * size - 1)) & 1)
        v |= ~0ull << (8 * size);
    switch (a->reg_size) {
    case 1:
        if (a->high_byte)
            return (old_reg & ~0xFF00ull) | (v & 0xFF) << 8;
        return (old_reg & ~0xFFull) | (v & 0xFF);
    case 2:
        return (old_reg & ~0xFFFFull) | (v & 0xFFFF);
    case 4:
        return v & 0xFFFFFFFFull; /* a 32-bit destination clears the upper half */
    default:
        return v;
    }
}

bool mmio_decode(const uint8_t *code, unsigned avail, enum mmio_cpu_mode mode, struct mmio_access *out)
{
    struct mmio_access a;
    if (!mmio_decode_mov(code, avail, mode, &a) || a.size < 4 || a.extend != MMIO_EXTEND_NONE)
        return false;
    *out = a;
    return true;
}
