/* The hypervisor's own output channel (docs/security.md): QEMU's debug console
 * (isa-debugcon) at I/O port 0xE9, which the I/O permission map keeps from the guest. The
 * loader's report, every line the hypervisor prints after the launch, and the machine's
 * verdict go here and nowhere else, so nothing on it can come from the guest; the guest
 * keeps COM1 for itself. Lines are written whole, under a lock, so lines from several
 * CPUs never interleave. */
#ifndef BOOT_HV_CHANNEL_H
#define BOOT_HV_CHANNEL_H

#include <stddef.h>

#include "iommu/fmt.h"

#define HV_CHANNEL_PORT 0xE9u

extern const struct sink hv_channel_sink;

/* For the one path that may run while the lock is held (a fault in host code): writes
 * without taking it. */
void hv_channel_write_unlocked(const char *s, size_t n);

#endif
