/* Diagnostics from table parsers: the first error and the first few warnings.
 *
 * Messages name the byte offset in the table and what is wrong with it, for example
 * "offset 0x4a: device scope length 5 is shorter than its 6-byte header". A parser that
 * fails leaves the error here and its output untouched. */
#ifndef IOMMU_DIAG_H
#define IOMMU_DIAG_H

#include <stdbool.h>
#include <stdint.h>

#include "fmt.h"

#define DIAG_MSG_MAX 160
#define DIAG_WARN_MAX 8

struct diag {
    bool failed;
    uint32_t error_offset;
    char error[DIAG_MSG_MAX];
    unsigned warnings;          /* total count, may exceed DIAG_WARN_MAX */
    char warning[DIAG_WARN_MAX][DIAG_MSG_MAX];
};

void diag_clear(struct diag *d);
/* Both accept d == NULL and then record nothing (decoding that was validated before).
 * diag_error records the first error only; later ones are dropped so the root cause stays visible. */
void diag_error(struct diag *d, uint32_t offset, const char *fmt, ...) IOMMU_PRINTF(3, 4);
void diag_warn(struct diag *d, uint32_t offset, const char *fmt, ...) IOMMU_PRINTF(3, 4);

/* Prints "warning: NAME: message" for each warning kept (and a count of the rest), then
 * "error: NAME: message" when the parse failed. */
void diag_print(const struct diag *d, const char *name, const struct sink *out);

#endif
