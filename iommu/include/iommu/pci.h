/* PCI functions found through ECAM, and which DMA-remapping unit translates each.
 *
 * Assignment follows the VT-d specification (8.3.1, 8.3.2): a DRHD's endpoint scope names
 * one function, a bridge (sub-hierarchy) scope covers the bridge and every bus behind it,
 * and a DRHD with INCLUDE_PCI_ALL takes every function of its segment that no other DRHD
 * on that segment names. Scope paths are followed hop by hop through the secondary bus
 * numbers of the bridges actually found, as the firmware programmed them. */
#ifndef IOMMU_PCI_H
#define IOMMU_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "acpi.h"
#include "diag.h"
#include "dmar.h"
#include "iort.h"
#include "platform.h"

#define PCI_MAX_FUNCTIONS 512
#define PCI_HEADER_BRIDGE 1u /* configuration header type of a PCI-to-PCI bridge */

enum pci_unit_match {
    PCI_UNIT_NONE = 0,       /* no DRHD covers it: DMA is not translated */
    PCI_UNIT_ENDPOINT,       /* named by an endpoint scope */
    PCI_UNIT_BRIDGE,         /* the bridge of a sub-hierarchy scope, or behind it */
    PCI_UNIT_INCLUDE_ALL,    /* taken by the segment's INCLUDE_PCI_ALL unit */
    PCI_UNIT_IORT,           /* its root complex's IORT ID mapping leads to an SMMU */
};

struct pci_function {
    uint16_t segment;
    uint8_t bus, dev, fn;
    uint16_t vendor, device;
    uint32_t class_code;     /* base class, subclass, programming interface */
    uint8_t header_type;     /* without the multi-function bit */
    uint8_t secondary_bus;   /* bridges (header type 1) */
    uint8_t subordinate_bus;
    uint16_t command;
    uint64_t config_pa;      /* ECAM address of its configuration space */
    int unit;                /* index of its unit, or -1: the DRHD among the DRHDs in table
                              * order (DMAR), the SMMU among the SMMU nodes (IORT) */
    enum pci_unit_match match;
    uint32_t stream_id;      /* the ID its unit sees: the requester ID under VT-d, the
                              * stream ID the IORT maps it to under an SMMU */
};

struct pci_inventory {
    uint32_t count;
    bool truncated;          /* more functions exist than PCI_MAX_FUNCTIONS */
    struct pci_function fn[PCI_MAX_FUNCTIONS];
};

static inline uint16_t pci_sid(const struct pci_function *f)
{
    return (uint16_t)(f->bus << 8 | f->dev << 3 | f->fn);
}

/* Scans every bus of every ECAM window for functions. */
void pci_enumerate(const struct platform *plat, const struct mcfg *mcfg, struct pci_inventory *inv);

/* Where memory BAR n (0-5) of a function points, 32 or 64 bits wide, read through the
 * platform's ECAM accesses; 0 when BAR n is an I/O BAR, not there, or not programmed. */
uint64_t pci_memory_bar(const struct platform *plat, const struct pci_function *f, unsigned n);

const struct pci_function *pci_find(const struct pci_inventory *inv, uint16_t segment, uint8_t bus,
                                    uint8_t dev, uint8_t fn);

/* Follows a scope's path through the inventory's bridges. On success stores the bus and
 * device/function the path ends at; fails when a hop before the last is not a bridge that
 * exists (the firmware did not enumerate that part of the hierarchy). */
bool pci_scope_resolve(const struct pci_inventory *inv, uint16_t segment, const struct dmar_scope *sc,
                       uint8_t *bus, uint8_t *dev, uint8_t *fn);

/* Sets unit and match of every function from the DMAR's DRHD scopes. */
void pci_assign_units(struct pci_inventory *inv, const struct dmar_table *dmar);

/* The same from an IORT (Arm): each function's requester ID goes through the ID mappings of
 * the root complex node of its segment (iort_map_id, the count quirk resolved); where that
 * leads to an SMMU (v1/v2 or v3) node, that SMMU translates it, with the stream ID the
 * mapping gives. A mapping straight to an ITS, or none, leaves it untranslated. */
void pci_assign_units_iort(struct pci_inventory *inv, const struct iort_table *iort);

const char *pci_unit_match_name(enum pci_unit_match m);

#endif
