/* DMAR (DMA Remapping Reporting) table parser, Intel VT-d specification chapter 8.
 *
 * dmar_parse validates the whole table once: every remapping structure and every device
 * scope is decoded with the same bounds-checked functions that the iterators use later,
 * so after a successful parse iteration cannot fail and reads nothing outside the table.
 * Nothing is copied: structures and scopes are decoded on demand from the caller's bytes,
 * which must stay valid while the dmar_table is used. */
#ifndef IOMMU_DMAR_H
#define IOMMU_DMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acpi.h"
#include "diag.h"

#define DMAR_STRUCTS_OFF 48u

enum dmar_struct_type {
    DMAR_TYPE_DRHD = 0, /* DMA remapping hardware unit */
    DMAR_TYPE_RMRR = 1, /* reserved memory region */
    DMAR_TYPE_ATSR = 2, /* root port ATS capability */
    DMAR_TYPE_RHSA = 3, /* remapping hardware static affinity */
    DMAR_TYPE_ANDD = 4, /* ACPI namespace device declaration */
    DMAR_TYPE_SATC = 5, /* SoC integrated address translation cache */
    DMAR_TYPE_SIDP = 6, /* SoC integrated device property */
};

/* DMAR table flags */
#define DMAR_FLAG_INTR_REMAP 0x1u
#define DMAR_FLAG_X2APIC_OPT_OUT 0x2u
#define DMAR_FLAG_DMA_CTRL_PLATFORM_OPT_IN 0x4u

#define DRHD_FLAG_INCLUDE_PCI_ALL 0x1u
#define ATSR_FLAG_ALL_PORTS 0x1u
#define SATC_FLAG_ATC_REQUIRED 0x1u

enum dmar_scope_type {
    DMAR_SCOPE_PCI_ENDPOINT = 1,
    DMAR_SCOPE_PCI_SUBHIERARCHY = 2,
    DMAR_SCOPE_IOAPIC = 3,
    DMAR_SCOPE_HPET = 4,
    DMAR_SCOPE_ACPI_NAMESPACE = 5,
};

#define DMAR_SCOPE_HEADER_LEN 6u

struct dmar_scope {
    uint32_t offset;        /* in the table */
    uint8_t type;
    uint8_t length;
    uint8_t flags;          /* byte 2: reserved before VT-d 4.0, per-scope flags in SIDP */
    uint8_t enumeration_id; /* IOAPIC id, HPET number or ANDD device number */
    uint8_t start_bus;
    uint8_t hops;           /* (device, function) pairs in path */
    const uint8_t *path;    /* path[2*i] = device, path[2*i+1] = function */
};

struct dmar_struct {
    uint32_t offset;
    uint16_t type;
    uint16_t length;
    uint8_t flags;             /* DRHD, ATSR, SATC */
    uint8_t size;              /* DRHD: register set is 2^size 4 KiB pages */
    uint16_t segment;          /* DRHD, RMRR, ATSR, SATC, SIDP */
    uint64_t register_base;    /* DRHD, RHSA */
    uint64_t base, limit;      /* RMRR, limit inclusive */
    uint32_t proximity_domain; /* RHSA */
    uint8_t device_number;     /* ANDD */
    const char *object_name;   /* ANDD; not NUL-terminated when it fills the structure */
    uint32_t object_name_len;
    bool has_scopes;
    uint32_t scopes_offset;    /* in the table; scopes run to offset + length */
};

struct dmar_table {
    const uint8_t *data;
    struct acpi_header header;
    uint8_t host_address_width; /* in bits: the stored field + 1 */
    uint8_t flags;
    uint32_t structs;           /* number of remapping structures */
    uint32_t drhd_count;
};

/* Validates the table held in 'avail' bytes (at least its header length). On failure 't'
 * is not usable and 'd' holds an error naming the offset and the problem. */
bool dmar_parse(struct dmar_table *t, const uint8_t *data, size_t avail, struct diag *d);

/* Iteration in table order: start with *cursor = 0; each call decodes the next structure
 * and returns false at the end.
 *   for (uint32_t c = 0; dmar_next_struct(t, &c, &s);) ... */
bool dmar_next_struct(const struct dmar_table *t, uint32_t *cursor, struct dmar_struct *s);
bool dmar_next_scope(const struct dmar_table *t, const struct dmar_struct *s, uint32_t *cursor,
                     struct dmar_scope *scope);

const char *dmar_struct_name(uint16_t type);  /* "DRHD", ..., or "unknown" */
const char *dmar_scope_type_name(uint8_t type); /* "endpoint", "bridge", ..., or "unknown" */

#endif
