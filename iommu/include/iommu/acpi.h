/* ACPI system description tables: common header, RSDP and XSDT walk, MCFG.
 *
 * Everything read from firmware is untrusted: lengths are checked against what is
 * actually mapped before any field past them is read, and a bad checksum is reported as a
 * warning (real firmware ships such tables) while the table is still used. */
#ifndef IOMMU_ACPI_H
#define IOMMU_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "platform.h"

#define ACPI_HEADER_LEN 36u

struct acpi_header {
    char signature[5];
    uint32_t length;
    uint8_t revision;
    uint8_t checksum;
    bool checksum_ok;
    char oem_id[7];
    char oem_table_id[9];
    uint32_t oem_revision;
    char creator_id[5];
    uint32_t creator_revision;
};

/* Sum of bytes modulo 256; a valid ACPI structure sums to zero. */
uint8_t acpi_checksum(const uint8_t *p, size_t len);

/* Validates and decodes the header of a table held in 'avail' bytes at 'data':
 * the header fits, its length is at least the header and at most 'avail', and, when
 * 'signature' is not NULL, the signature matches. A wrong checksum is a warning. */
bool acpi_header_parse(const uint8_t *data, size_t avail, const char *signature,
                       struct acpi_header *hdr, struct diag *d);

/* One table listed by the XSDT. */
struct acpi_table_ref {
    char signature[5];
    uint64_t pa;
    uint32_t length;
    uint8_t revision;
    bool checksum_ok;
};

#define ACPI_MAX_TABLES 64

struct acpi_tables {
    uint64_t rsdp_pa;
    uint8_t rsdp_revision;
    uint64_t xsdt_pa;
    uint32_t count;       /* entries in 'table' */
    uint32_t xsdt_entries; /* entries the XSDT lists, may exceed ACPI_MAX_TABLES */
    struct acpi_table_ref table[ACPI_MAX_TABLES];
};

/* Validates the ACPI 2.0+ RSDP at rsdp_pa, then walks the XSDT, recording every table it
 * lists. Entries that point at unmappable memory or at a header whose length is invalid
 * are warnings and left out; a missing or malformed RSDP or XSDT is an error (offsets in
 * the diagnostics are relative to the structure named in the message). */
bool acpi_discover(const struct platform *plat, uint64_t rsdp_pa, struct acpi_tables *out,
                   struct diag *d);

/* The first table with this signature, or NULL. */
const struct acpi_table_ref *acpi_find(const struct acpi_tables *t, const char *signature);

/* Removes from a root table (the XSDT, with 8-byte entries, or the RSDT, with 4-byte ones),
 * held writable at 'root' with 'avail' bytes there, every entry whose table has
 * 'signature' (read through plat; an entry it cannot read stays). The table is shortened,
 * the freed tail zeroed and the checksum fixed. Returns how many entries went, or -1 when the
 * root table's header is invalid (nothing is changed then). The hypervisor uses it to take
 * the DMAR out of what the guest sees. */
int acpi_root_remove(uint8_t *root, size_t avail, unsigned entry_size, const struct platform *plat,
                     const char *signature, struct diag *d);

/* Maps a table found by acpi_discover, whole. */
const uint8_t *acpi_map_table(const struct platform *plat, const struct acpi_table_ref *ref);

/* MCFG: PCI Express memory-mapped configuration space (ECAM) windows. */
struct mcfg_window {
    uint64_t base;      /* ECAM address of bus 0 of this segment, even when start_bus > 0 */
    uint16_t segment;
    uint8_t start_bus;
    uint8_t end_bus;
};

#define MCFG_MAX_WINDOWS 16

struct mcfg {
    uint32_t count;
    struct mcfg_window window[MCFG_MAX_WINDOWS];
};

bool mcfg_parse(const uint8_t *data, size_t avail, struct mcfg *out, struct diag *d);

/* The MADT's I/O APICs (entry type 1): their register base addresses. */
#define MADT_MAX_IOAPICS 8

struct madt_ioapics {
    uint32_t count;
    uint64_t base[MADT_MAX_IOAPICS];
};

/* Walks every interrupt controller structure; an entry whose length is under 2 or runs past
 * the table is an error, more I/O APICs than MADT_MAX_IOAPICS a warning. */
bool madt_ioapics_parse(const uint8_t *data, size_t avail, struct madt_ioapics *out, struct diag *d);

/* The MADT's enabled GIC CPU interfaces (entry type 0xB): each CPU's MPIDR, in table order
 * (the first is the boot CPU on QEMU's virt), and the GIC ITSs' register bases. A GICC entry
 * under 76 bytes or an ITS entry under 20 is an error, more than MADT_MAX_GICCS or
 * MADT_MAX_ITS a warning. */
#define MADT_MAX_GICCS 64
#define MADT_MAX_ITS 4

struct madt_giccs {
    uint32_t count;
    uint64_t mpidr[MADT_MAX_GICCS];
    uint32_t its_count;            /* the GIC ITS entries (type 0xF): their register bases */
    uint64_t its_base[MADT_MAX_ITS];
};

bool madt_giccs_parse(const uint8_t *data, size_t avail, struct madt_giccs *out, struct diag *d);

/* Removes every interrupt controller structure of that type from the MADT in place (later
 * entries move down, the length and checksum are fixed, the freed tail is zeroed); returns
 * how many went, or -1 (nothing changed) when an entry's length does not fit. */
int madt_remove_type(uint8_t *madt, size_t avail, uint8_t type);

#endif
