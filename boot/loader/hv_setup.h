/* The loader's side of the hypervisor's start: what needs the firmware (the memory map for
 * guest RAM, the MP services for the CPUs and to launch the application processors),
 * around the hypervisor's own preparation (hypervisor/arch.h). */
#ifndef BOOT_LOADER_HV_SETUP_H
#define BOOT_LOADER_HV_SETUP_H

#include "loader/uefi_platform.h" /* first: gnu-efi's headers before the wdm ones */
#include "hypervisor/hv.h"

/* Checks the CPU (SVM, nested paging), sets up the DDI provider and hypercall server over
 * the remapping, builds the nested page tables and the MSR map, and each CPU's state. */
bool hv_prepare(struct hv *hv, struct uefi_platform *up, struct remapping *r, const struct pci_inventory *inv,
                const struct dmar_table *dmar, const void *image_base, uint64_t image_bytes, bool fault_injection,
                uint16_t pm_base, const struct madt_ioapics *ioapics, struct checks *c);

/* Runs every application processor as a guest: each resumes at ap_resume (0: straight back
 * to the firmware's AP loop, as if the procedure it was given had returned). False when
 * one could not be launched. */
bool hv_launch_aps(struct hv *hv, uint64_t ap_resume, struct checks *c);

#endif
