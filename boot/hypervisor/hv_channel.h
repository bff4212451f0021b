/* The hypervisor's own output channel (docs/security.md). The loader's report, every line
 * the hypervisor prints after the launch, and the machine's verdict go here, so nothing on
 * it can pass for the guest's. Lines are written whole, under a lock, so lines from several
 * CPUs never interleave.
 *
 * x86 (svm/hv_channel_debugcon.c): QEMU's debug console (isa-debugcon) at I/O port 0xE9, which the I/O
 * permission map keeps from the guest; the guest keeps COM1 for itself.
 * Arm (el2/hv_channel_pl011.c): QEMU's virt has one UART, the PL011, and the hypervisor
 * keeps it: its page is out of stage 2, and every byte the guest writes there reaches it
 * through hv_channel_guest_write, which starts each of the guest's lines with
 * HV_CHANNEL_GUEST_PREFIX. A line without it is the hypervisor's. */
#ifndef BOOT_HV_CHANNEL_H
#define BOOT_HV_CHANNEL_H

#include <stddef.h>

#include "iommu/fmt.h"

#define HV_CHANNEL_PORT 0xE9u
#define HV_CHANNEL_GUEST_PREFIX "guest: "

extern const struct sink hv_channel_sink;

/* The architecture's device: writes without taking the lock (the one path that may run while
 * it is held is a fault in host code). */
void hv_channel_write_unlocked(const char *s, size_t n);

/* The channel's lock, for a writer of its own (the Arm guest's console). */
void hv_channel_lock(void);
void hv_channel_unlock(void);

#if defined(__aarch64__)
/* The guest's console output (its writes to the PL011's data register), marked as the
 * guest's at the start of each of its lines. */
void hv_channel_guest_write(const char *s, size_t n);
#endif

#endif
