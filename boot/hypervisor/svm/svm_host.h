/* Between the SVM half's two files: the host's exit callbacks (svm_host.c) and its
 * preparation (svm_launch.c). */
#ifndef BOOT_HYPERVISOR_SVM_SVM_HOST_H
#define BOOT_HYPERVISOR_SVM_SVM_HOST_H

#include <stdbool.h>
#include <stdint.h>

#include "hypervisor/hv.h"

/* The chipset's own functions: the host bridge (class 06 00) and the ISA/LPC bridge
 * (06 01) on bus 0, whose registers past the standard header the guest may read, not write. */
bool svm_chipset_function(uint8_t bus, uint8_t dev, uint8_t fn);

/* What the exit handler must know of the machine: the APIC, the region, the PM block, and
 * the APIC base MSR as the guest reads it. */
void svm_host_configure(const struct hv *hv, uint64_t apic_base_msr);

#endif
