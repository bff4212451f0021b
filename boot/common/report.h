/* A report: one sink and the counted check lines that end in the RESULT line. The sink
 * is the image's own: the hypervisor's protected channel in BOOTX64.EFI
 * (boot/hypervisor/hv_channel.c), COM1 in the guest payloads (boot/guest/lib/guest_console.c). */
#ifndef BOOT_REPORT_H
#define BOOT_REPORT_H

#include <stdbool.h>

#include "iommu/fmt.h"

extern const struct sink *const out;

struct checks {
    unsigned run, failed;
};

/* Prints "check: PASS|FAIL what" and counts it; returns ok. */
bool check(struct checks *c, bool ok, const char *what);
bool checkf(struct checks *c, bool ok, const char *fmt, ...) IOMMU_PRINTF(3, 4);

#endif
