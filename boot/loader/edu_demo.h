/* DMA remapping shown with QEMU's edu device: real DMA through real tables, faults that
 * the unit records, and invalidations proven by QEMU's stale translations. */
#ifndef BOOT_EDU_DEMO_H
#define BOOT_EDU_DEMO_H

#include "common/edu.h"
#include "loader/remap_setup.h"

void edu_demo(struct uefi_platform *up, struct remapping *r, const struct pci_inventory *inv, struct checks *c);

#endif
