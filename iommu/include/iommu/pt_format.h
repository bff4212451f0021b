/* The entry formats the page-table engine (slpt.h) writes, described as data: what a leaf
 * carries for each permission set, what every leaf of the last level and every leaf above
 * it carries besides, how a leaf above the last level is told from a pointer to a table,
 * what a table pointer carries, and the output-address field.
 *
 * Every format has 4 KiB tables of 512 eight-byte entries and an address in bits 51:12 at
 * most (the engine reads addresses out of entries through bits 51:12 whatever the format,
 * so no other bit of the format may lie there); the x86 formats use all of it, Arm's
 * stage 1 bits 47:12. An entry is either all zero (nothing there) or present, and non-zero
 * whatever its address: a permission set the format cannot express with a present entry
 * is refused (slpt_map:
 * IOMMU_EINVAL), and so is a physical address beyond the format's address field
 * (IOMMU_ERANGE).
 *
 * The engine copies the format into the table's struct. Its loops store into tables
 * (uint64_t), which could alias the format's fields, so a field read inside a loop would be
 * reloaded after every store: the bits a loop writes are taken into locals before it, and
 * the leaf test is a compile-time constant, the loops being compiled once for each test the
 * engine knows: x86's page-size bit (7) set, and Arm's descriptor type (bits 1:0) 0b01.
 * slpt_set_format checks a format for all this before it takes it. */
#ifndef IOMMU_PT_FORMAT_H
#define IOMMU_PT_FORMAT_H

#include <stdint.h>

struct pt_format {
    const char *name;
    /* A leaf's permission bits, by permission set (SLPT_READ | SLPT_WRITE, 1 to 3); the
     * sets the format can express are those in 'perms'. They are told apart by these bits
     * alone (slpt_lookup), so they differ, and no other field of a leaf uses them. */
    uint64_t perm[4];
    uint8_t perms; /* bit p set: the permission set p can be mapped */
    uint64_t page;  /* every leaf of the last level (4 KiB) carries these besides */
    uint64_t block; /* every leaf above it (2 MiB, 1 GiB) carries these besides */
    /* Above the last level an entry e is a leaf when (e & leaf_mask) == leaf_value, and a
     * pointer to a table otherwise; at the last level every entry is a leaf. */
    uint64_t leaf_mask, leaf_value;
    uint64_t table;   /* a pointer to the next table: its address and these bits */
    uint64_t address; /* the output-address field: bits 12 up to the highest it holds */
};

/* Intel VT-d second-level tables (iommu/pagetable/pt_vtd.c): R, W, PS; every permission set. */
extern const struct pt_format pt_vtd_second_level;
/* x86 long-mode paging as the host's own tables use it (iommu/pagetable/pt_x86.c): P (which also means
 * readable), R/W, PS, supervisor only; no write-only mapping. */
extern const struct pt_format pt_x86_supervisor;
/* AMD nested page tables (iommu/pagetable/pt_x86.c): the x86 format with the user bit in every entry
 * (a nested walk is a user access); no write-only mapping. */
extern const struct pt_format pt_amd_nested;
/* Arm VMSAv8-64 stage 1 with the 4 KiB granule (iommu/pagetable/pt_arm64.c), as an SMMUv3
 * walks it for a context descriptor: tables 0b11, blocks 0b01, pages 0b11; every leaf with
 * AF, inner shareable, AttrIndx 0 (the context descriptor's MAIR must make attribute 0
 * Normal write-back memory: the SMMUv3 driver sets MAIR attr0 = 0xFF), nG (TLB entries
 * tagged with the ASID) and UXN/PXN (no instruction fetch); AP[2:1] 0b01 read/write, 0b11
 * read-only (a valid leaf is always readable: no write-only mapping); 48-bit output
 * addresses. */
extern const struct pt_format pt_arm_stage1;
/* Arm VMSAv8-64 stage 2 with the 4 KiB granule (iommu/pagetable/pt_arm64.c), for an EL2
 * hypervisor's guest: S2AP read and write bits (every permission set), MemAttr Normal
 * write-back, executable. */
extern const struct pt_format pt_arm_stage2;

#endif
