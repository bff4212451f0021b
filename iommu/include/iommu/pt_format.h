/* The entry formats the page-table engine (slpt.h) writes: which bits make a leaf and a
 * pointer to a table, and which permission sets a format can express. The engine reads
 * the format it was given as plain data (no calls), so its hot loops stay as they were.
 *
 * Every format here has 4 KiB tables of 512 eight-byte entries, the x86 layout for the
 * "leaf at this level" bit (7) and the address (bits 51:12), which the engine takes as
 * constants in its loops (slpt_set_format refuses another layout: a format of another
 * layout, Arm's, needs the engine to learn it), and an entry that is either all zero or
 * present: a permission set the format cannot express with a present entry is refused
 * (slpt_map: IOMMU_EINVAL). */
#ifndef IOMMU_PT_FORMAT_H
#define IOMMU_PT_FORMAT_H

#include <stdint.h>

struct pt_format {
    const char *name;
    uint64_t read, write; /* a leaf's permission bits */
    uint64_t leaf_size;   /* at levels above 1: the entry is a leaf (a superpage) */
    uint64_t table;       /* the bits of an entry that points to the next table */
    uint64_t always;      /* set in every entry the engine writes */
    uint64_t address;     /* the output-address field */
    uint8_t perms;        /* bit p set: the permission set p (SLPT_READ | SLPT_WRITE) can be mapped */
};

/* Intel VT-d second-level tables (iommu/pagetable/pt_vtd.c): R, W, PS; every permission set. */
extern const struct pt_format pt_vtd_second_level;
/* x86 long-mode paging as the host's own tables use it (iommu/pagetable/pt_x86.c): P (which also means
 * readable), R/W, PS, supervisor only; no write-only mapping. */
extern const struct pt_format pt_x86_supervisor;
/* AMD nested page tables (iommu/pagetable/pt_x86.c): the x86 format with the user bit in every entry
 * (a nested walk is a user access); no write-only mapping. */
extern const struct pt_format pt_amd_nested;

#endif
