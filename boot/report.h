/* The loader's report: one sink (the serial console) and the counted check lines that
 * end in the RESULT line. */
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
