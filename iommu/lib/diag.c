#include "iommu/diag.h"

void diag_clear(struct diag *d)
{
    d->failed = false;
    d->error_offset = 0;
    d->error[0] = '\0';
    d->warnings = 0;
}

static void diag_message(char *dst, uint32_t offset, const char *fmt, va_list ap)
{
    size_t n = fmt_format(dst, DIAG_MSG_MAX, "offset 0x%x: ", (unsigned)offset);
    if (n < DIAG_MSG_MAX)
        fmt_vformat(dst + n, DIAG_MSG_MAX - n, fmt, ap);
}

void diag_error(struct diag *d, uint32_t offset, const char *fmt, ...)
{
    if (!d || d->failed)
        return;
    d->failed = true;
    d->error_offset = offset;
    va_list ap;
    va_start(ap, fmt);
    diag_message(d->error, offset, fmt, ap);
    va_end(ap);
}

void diag_warn(struct diag *d, uint32_t offset, const char *fmt, ...)
{
    if (!d)
        return;
    if (d->warnings < DIAG_WARN_MAX) {
        va_list ap;
        va_start(ap, fmt);
        diag_message(d->warning[d->warnings], offset, fmt, ap);
        va_end(ap);
    }
    d->warnings++;
}

void diag_print(const struct diag *d, const char *name, const struct sink *out)
{
    unsigned shown = d->warnings < DIAG_WARN_MAX ? d->warnings : DIAG_WARN_MAX;
    for (unsigned i = 0; i < shown; i++)
        sink_printf(out, "warning: %s: %s\n", name, d->warning[i]);
    if (d->warnings > shown)
        sink_printf(out, "warning: %s: %u more warnings\n", name, d->warnings - shown);
    if (d->failed)
        sink_printf(out, "error: %s: %s\n", name, d->error);
}
