/* Decoding the one instruction a guest used for a memory-mapped register access the
 * hypervisor emulates (the local APIC page, the ECAM pages of bridges it write-protects).
 * The nested page fault gives the guest-physical address; the instruction gives its length,
 * the direction, the width and the register or immediate. Freestanding: the bytes come from
 * the guest and are never trusted; nothing is read outside code[0 .. min(avail, 15) - 1].
 *
 * Accepted: the plain MOV forms that touch memory, and nothing else:
 *
 *   stores  88 /r        MOV r/m8, r8
 *           89 /r        MOV r/m16/32/64, r16/32/64 (66: 16, REX.W: 64)
 *           C6 /0 ib     MOV r/m8, imm8
 *           C7 /0 iw/id  MOV r/m16/32/64, imm16/imm32 (REX.W: imm32 sign-extended to 64)
 *           A2, A3       MOV moffs, AL / AX/EAX/RAX
 *   loads   8A /r        MOV r8, r/m8
 *           8B /r        MOV r16/32/64, r/m16/32/64
 *           0F B6 /r     MOVZX r16/32/64, r/m8       0F B7 /r  MOVZX r16/32/64, r/m16
 *           0F BE /r     MOVSX r16/32/64, r/m8       0F BF /r  MOVSX r16/32/64, r/m16
 *           A0, A1       MOV AL / AX/EAX/RAX, moffs
 *
 * The ModRM forms need a memory operand (mod != 3) and take every ModRM, SIB and
 * displacement form, RIP-relative (mod 00, rm 101) and SIB without base (mod 00, base 101)
 * included. The moffs forms carry the address itself, as many bytes as the address size
 * (8 in 64-bit mode, 4 with 67 there).
 *
 * Prefixes, in any order and any number, before the opcode: 66 (operand size), 67 (address
 * size: changes only the layout of the ModRM or the moffs, never the access, whose address
 * the caller takes from the fault), the segment overrides 26 2E 36 3E 64 65 (reported in
 * 'segment', nothing else: the caller uses the fault's address). In 64-bit mode a REX prefix
 * (40-4F) is accepted only immediately before the opcode and only one: a REX followed by a
 * prefix (which makes the CPU ignore it) or by a second REX is refused.
 *
 * Refused: LOCK (F0); REP/REPNE (F2/F3: F3 before a MOV store is XRELEASE); every other
 * opcode (string moves, MOV to or from segment or control registers, MOVSXD, MOVBE, MOVNTI,
 * SSE moves, ...); a register operand (mod 3); C6/C7 with ModRM.reg != 0; an instruction
 * longer than 15 bytes or than the 'avail' bytes given.
 *
 * The CPU mode decides the defaults: 64-bit mode (CS.L = 1 with EFER.LMA): operand size 32,
 * REX; 32-bit (CS.D = 1): operand size 32, no REX (40-4F are other instructions: refused),
 * 67 selects 16-bit addressing; 16-bit (real mode, CS.D = 0): operand size 16 (66 makes it
 * 32), 16-bit addressing (67 makes it 32-bit). */
#ifndef BOOT_MMIO_DECODE_H
#define BOOT_MMIO_DECODE_H

#include <stdbool.h>
#include <stdint.h>

enum mmio_cpu_mode {
    MMIO_MODE_64 = 0, /* long mode, 64-bit code segment */
    MMIO_MODE_32 = 1, /* protected or compatibility mode, CS.D = 1 */
    MMIO_MODE_16 = 2, /* real mode, virtual-8086 mode, or a 16-bit code segment (CS.D = 0) */
};

enum mmio_extend {
    MMIO_EXTEND_NONE = 0, /* a plain MOV: size == reg_size */
    MMIO_EXTEND_ZERO = 1, /* MOVZX: the 'size' bytes read are zero-extended to reg_size */
    MMIO_EXTEND_SIGN = 2, /* MOVSX: the 'size' bytes read are sign-extended to reg_size */
};

/* What the caller does with it:
 * - advance the guest's RIP by 'length' (the hypervisor resumes after the instruction);
 * - write: store the low 'size' bytes of mmio_store_value() (little-endian) at the fault's
 *   address; load: read 'size' bytes there and set the register to mmio_load_result();
 * - 'reg' names a 64-bit register, and the part of it that is the operand is given by
 *   reg_size and high_byte: high_byte means bits 8-15 (AH, CH, DH, BH: reg is then 0-3 for
 *   RAX, RCX, RDX, RBX); otherwise the low reg_size bytes (with a REX prefix, 8-bit operands
 *   4-7 are SPL, BPL, SIL, DIL and 8-15 are R8B-R15B, all low bytes).
 * - A load with reg_size 4 sets the whole 64-bit register (the upper half cleared); with
 *   reg_size 1 or 2 the rest of the register keeps its value; mmio_load_result() does this. */
struct mmio_access {
    uint8_t length;   /* bytes of the instruction, prefixes included: 1..15 */
    bool write;       /* store to memory; otherwise a load into register 'reg' */
    uint8_t size;     /* bytes of memory accessed: 1, 2, 4 or 8 */
    bool immediate;   /* a write of the immediate rather than of register 'reg' */
    uint8_t reg;      /* 0 RAX, 1 RCX, 2 RDX, 3 RBX, 4 RSP, 5 RBP, 6 RSI, 7 RDI, 8-15 R8-R15;
                         0 when 'immediate' */
    uint32_t value;   /* the immediate as encoded (imm8, imm16 or imm32), zero-extended */
    /* Added with the 8/16-bit and MOVZX/MOVSX forms: */
    bool high_byte;   /* the operand is bits 8-15 of reg (AH, CH, DH, BH) */
    uint8_t reg_size; /* bytes of the register operand: the source of a store, the
                         destination of a load (2, 4 or 8 for MOVZX/MOVSX); 0 if immediate */
    uint8_t extend;   /* enum mmio_extend, for loads */
    uint8_t segment;  /* 0, or the last segment override prefix (26 2E 36 3E 64 65) */
    bool addr_prefix; /* a 67 prefix was seen (it changed only the ModRM's layout) */
    uint64_t imm;     /* the immediate as the 'size' bytes stored: REX.W C7's imm32
                         sign-extended to 64 bits, otherwise == value */
};

/* Decodes the instruction at 'code' ('avail' bytes there; only the first 15 are ever read)
 * for a guest in 'mode'. False, with *out unspecified, for anything but the forms above. */
bool mmio_decode_mov(const uint8_t *code, unsigned avail, enum mmio_cpu_mode mode, struct mmio_access *out);

/* The value a store writes: the immediate, or the operand's part of the register (bits 8-15
 * when high_byte), in the low 'size' bytes, the rest zero. */
uint64_t mmio_store_value(const struct mmio_access *a, uint64_t reg_value);

/* A load's result: the register's new 64-bit value from its old value and the 'size' bytes
 * read from the device (little-endian in the low bytes of 'data'; higher bits ignored). */
uint64_t mmio_load_result(const struct mmio_access *a, uint64_t old_reg, uint64_t data);

/* The local APIC's subset (boot/hypervisor/svm/vmexit.c): mmio_decode_mov in the guest's mode, refusing what is
 * not a MOV of 32 or 64 bits between a register and memory (89, 8B, A1, A3) or of an
 * immediate to memory (C7 /0): so size is 4 or 8, high_byte false, extend NONE, and 'reg'
 * is the whole register. 8/16-bit forms and MOVZX/MOVSX are refused. */
bool mmio_decode(const uint8_t *code, unsigned avail, enum mmio_cpu_mode mode, struct mmio_access *out);

#endif
