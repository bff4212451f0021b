/* Freestanding text formatting and output sinks.
 *
 * The parsers and reports in iommu/ run both inside the UEFI image (output to the serial
 * port) and in host tools and tests (output to stdio or a buffer), so they write through a
 * sink instead of a libc stream.
 *
 * fmt_vformat implements the printf subset the project uses: %% %c %s %.*s %d %i %u %x %X
 * %p with the flags '-' and '0', a field width (digits or *), and the length modifiers l, ll
 * and z.
 * 'l' means 64 bits: the project targets LP64 (x86-64 and AArch64). */
#ifndef IOMMU_FMT_H
#define IOMMU_FMT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define IOMMU_PRINTF(fmt_arg, first_vararg) __attribute__((format(printf, fmt_arg, first_vararg)))

/* Writes at most size - 1 characters and a NUL (when size > 0). Returns the length the
 * full output would have had, like vsnprintf. */
size_t fmt_vformat(char *buf, size_t size, const char *fmt, va_list ap);
size_t fmt_format(char *buf, size_t size, const char *fmt, ...) IOMMU_PRINTF(3, 4);

struct sink {
    void (*write)(void *ctx, const char *s, size_t n);
    void *ctx;
};

/* sink_printf output of up to this many characters reaches the sink in one write, so a sink
 * that serialises its writes (the hypervisor's channel, shared by every CPU) keeps each
 * line of the reports whole. Longer output arrives in order, in pieces of this size. */
#define FMT_SINK_ONE_WRITE 256

void sink_write(const struct sink *out, const char *s, size_t n);
void sink_puts(const struct sink *out, const char *s);
void sink_printf(const struct sink *out, const char *fmt, ...) IOMMU_PRINTF(2, 3);
void sink_vprintf(const struct sink *out, const char *fmt, va_list ap);

/* A sink that collects output into a fixed buffer, always NUL-terminated; output past
 * the end is dropped and counted in 'overflow'. */
struct buffer_sink {
    struct sink sink;
    char *buf;
    size_t size;
    size_t used;
    size_t overflow;
};

void buffer_sink_init(struct buffer_sink *b, char *buf, size_t size);

#endif
