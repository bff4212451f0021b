/* Translating a guest's linear address through the guest's own page tables, in software, to
 * read the guest's code (the instruction at its RIP, to emulate it). Every table entry and
 * every byte is read through callbacks the hypervisor supplies, which refuse any physical
 * address that is not guest RAM: the walk then fails cleanly. Nothing here dereferences a
 * guest address. Freestanding.
 *
 * The paging mode is the guest's, from its CR0, CR4 and EFER as x86 defines it:
 *   CR0.PG = 0                        no paging: physical = linear (32 bits)
 *   CR0.PG = 1, CR4.PAE = 0           32-bit paging: 2 levels of 4-byte entries, 4 KiB pages,
 *                                     4 MiB pages when CR4.PSE and PDE.PS (PSE-36: PA bits
 *                                     32-39 from PDE bits 13-20)
 *   CR0.PG = 1, CR4.PAE = 1, LMA = 0  PAE: CR3 bits 5-31 locate 4 PDPTEs, then PD, PT;
 *                                     2 MiB pages at the PD
 *   CR0.PG = 1, EFER.LMA = 1          4-level: PML4, PDPT (1 GiB pages), PD (2 MiB), PT
 *   ... and CR4.LA57 = 1              5-level: a PML5 above the PML4
 * In the legacy modes the linear address is 32 bits (higher bits dropped, as the CPU wraps).
 * In long mode a non-canonical address fails (48 or 57 bits).
 *
 * What a walk checks: the present bit at every level; reserved bits that decide the walk:
 * physical-address bits from maxphyaddr up to 51 in any entry or CR3 (long mode; bits 52-62
 * of an entry are the software's) or up to 62 (PAE, where they are reserved), PS at the
 * PML5/PML4 levels and in a PAE PDPTE, PS at the PDPT level when 1 GiB pages are absent, the
 * reserved low bits of large pages (2 MiB: 13-20; 1 GiB: 13-29; 4 MiB: bit 21), PAE PDPTE bits
 * 1-2 and 5-8, and bit 63 (XD) when EFER.NXE = 0. It does not check permissions (they are
 * reported) and never sets accessed or dirty bits. A PAE guest's PDPTEs are read from memory,
 * not from what the CPU loaded at the last MOV CR3. */
#ifndef BOOT_GUEST_WALK_H
#define BOOT_GUEST_WALK_H

#include <stdbool.h>
#include <stdint.h>

#define GW_CR0_PG (1ull << 31)
#define GW_CR4_PSE (1ull << 4)
#define GW_CR4_PAE (1ull << 5)
#define GW_CR4_LA57 (1ull << 12)
#define GW_EFER_LMA (1ull << 10)
#define GW_EFER_NXE (1ull << 11)

/* The guest's paging state, plain inputs (from the VMCB: cr0, cr3, cr4, the guest's EFER). */
struct guest_paging {
    uint64_t cr0, cr3, cr4, efer;
    uint8_t maxphyaddr; /* the guest's physical-address width, 32..52; 0 means 52 */
    bool no_1g_pages;   /* the CPU has no 1 GiB pages: PS in a PDPTE is reserved */
};

/* The hypervisor's access to guest-physical memory. Each returns false, and the walk or
 * read fails, for an address that is not guest RAM (or for any reason).
 *   read_entry: one table entry of 'size' bytes (4 or 8) at 'pa', aligned to 'size'; the
 *               value goes to *out (little-endian, zero-extended).
 *   read_bytes: 'len' bytes (1..15) at 'pa', all in one 4 KiB page, to 'dst'. */
struct guest_mem_ops {
    void *ctx;
    bool (*read_entry)(void *ctx, uint64_t pa, unsigned size, uint64_t *out);
    bool (*read_bytes)(void *ctx, uint64_t pa, void *dst, unsigned len);
};

enum guest_walk_status {
    GW_OK = 0,
    GW_NOT_PRESENT,   /* an entry's present bit is clear */
    GW_RESERVED,      /* a reserved bit or a size rule broken (CR3 itself at level 0) */
    GW_READ_REFUSED,  /* the callback refused to read an entry or the final bytes */
    GW_NON_CANONICAL, /* long mode, linear address not canonical (level 0) */
    GW_BAD_ARGS,      /* null pointers, a length over 15 */
};

/* The levels are numbered from the page: 1 = PTE, 2 = PDE, 3 = PDPTE (PAE's 4 included),
 * 4 = PML4E, 5 = PML5E; 0 = before any table (no paging, the address, CR3, the final bytes). */
struct guest_walk_result {
    enum guest_walk_status status;
    uint8_t level;       /* where it stopped: the failing level, or the level of the leaf */
    uint64_t linear;     /* the linear address walked (32 bits in legacy modes) */
    uint64_t pa;         /* the physical address, when GW_OK */
    uint64_t page_size;  /* 4 KiB, 2 MiB, 4 MiB or 1 GiB, when GW_OK (4 KiB without paging) */
    uint64_t entry;      /* the last entry read (the failing one, or the leaf) */
    bool writable, user, executable; /* the combined permissions, when paging is on */
};

/* Translates 'linear'; true when res->status == GW_OK. */
bool guest_walk(const struct guest_paging *p, const struct guest_mem_ops *ops, uint64_t linear,
                struct guest_walk_result *res);

/* Copies n bytes (0..15) at 'linear' to 'dst', translating each 4 KiB page separately (the
 * bytes may cross into the next page, which is translated on its own) and reading through
 * ops->read_bytes. On failure, false and *res says why and where (res->linear is the page
 * that failed; GW_READ_REFUSED at level 0 when read_bytes refused); 'dst' may then hold
 * some of the bytes. res may be NULL. */
bool guest_read_linear(const struct guest_paging *p, const struct guest_mem_ops *ops, uint64_t linear, void *dst,
                       unsigned n, struct guest_walk_result *res);

#endif
