/* The loaders' discovery report, the same on every architecture (BOOTX64.EFI and
 * BOOTAA64.EFI): the ACPI tables the firmware lists, raw table dumps, and the PCI functions
 * found through the MCFG's ECAM windows with the remapping unit each one is assigned to.
 * Firmware-neutral: the platform's struct platform reads the tables and devices. */
#ifndef BOOT_LOADER_DISCOVERY_H
#define BOOT_LOADER_DISCOVERY_H

#include "common/report.h"
#include "iommu/acpi.h"
#include "iommu/dmar.h"
#include "iommu/iort.h"
#include "iommu/pci.h"

/* "dump: SIG OFFS: bytes", 32 per line, so that tests can decode the live table with other
 * tools (iasl). */
void discovery_dump_table(const char *signature, const uint8_t *p, uint32_t len);

/* Validates the RSDP the firmware gave (rsdp: NULL when its configuration table has none)
 * and the XSDT, records every table into *tables and prints the "acpi: ..." lines (the
 * RSDP, the XSDT and every table with its checksum), with their checks. */
bool discovery_acpi(const struct platform *plat, const void *rsdp, struct acpi_tables *tables, struct checks *c);

/* Enumerates PCI through the MCFG's ECAM windows and assigns each function its unit from
 * the DMAR (x86) or the IORT (Arm), whichever is given, then prints the "pci: ..." lines,
 * naming units "<unit_name>[N]". units: how many units the table describes. Returns the
 * inventory, or NULL without ECAM. */
const struct pci_inventory *discovery_pci(const struct platform *plat, const struct acpi_tables *tables,
                                          const struct dmar_table *dmar, const struct iort_table *iort,
                                          unsigned units, const char *unit_name, struct checks *c);

#endif
