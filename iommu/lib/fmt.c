/* Freestanding formatter; see fmt.h for the supported subset. */
#include "iommu/fmt.h"

#include <stdbool.h>

_Static_assert(sizeof(long) == 8, "the 'l' length modifier is taken as 64 bits (LP64 targets only)");

/* Formatter output: either a caller's buffer (truncating, like vsnprintf) or a sink, fed
 * through a small chunk buffer so that output of any length reaches the sink intact. */
struct out {
    char *buf;
    size_t size;
    size_t len; /* characters the full output has so far */
    const struct sink *sink;
    size_t chunk_used;
    char chunk[FMT_SINK_ONE_WRITE]; /* a whole line of the reports, in one write */
};

static void put(struct out *o, char c)
{
    if (o->sink) {
        o->chunk[o->chunk_used++] = c;
        if (o->chunk_used == sizeof o->chunk) {
            o->sink->write(o->sink->ctx, o->chunk, o->chunk_used);
            o->chunk_used = 0;
        }
    } else if (o->len + 1 < o->size) {
        o->buf[o->len] = c;
    }
    o->len++;
}

static void put_padded(struct out *o, const char *s, size_t n, size_t width, bool left, char pad)
{
    size_t fill = width > n ? width - n : 0;
    if (!left)
        while (fill--)
            put(o, pad);
    for (size_t i = 0; i < n; i++)
        put(o, s[i]);
    if (left)
        while (fill--)
            put(o, ' ');
}

static size_t str_len_max(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n])
        n++;
    return n;
}

static void format(struct out *o, const char *fmt, va_list ap)
{
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            put(o, *p);
            continue;
        }
        p++;
        bool left = false;
        char pad = ' ';
        for (;; p++) {
            if (*p == '-')
                left = true;
            else if (*p == '0')
                pad = '0';
            else
                break;
        }
        size_t width = 0;
        if (*p == '*') {
            int w = va_arg(ap, int);
            if (w < 0) {
                left = true;
                w = -w;
            }
            width = (size_t)w;
            p++;
        }
        while (*p >= '0' && *p <= '9')
            width = width * 10 + (size_t)(*p++ - '0');
        size_t precision = (size_t)-1;
        if (*p == '.') {
            p++;
            if (*p == '*') {
                int prec = va_arg(ap, int);
                precision = prec < 0 ? (size_t)-1 : (size_t)prec;
                p++;
            } else {
                precision = 0;
                while (*p >= '0' && *p <= '9')
                    precision = precision * 10 + (size_t)(*p++ - '0');
            }
        }
        int longs = 0;
        bool size_mod = false;
        while (*p == 'l') {
            longs++;
            p++;
        }
        if (*p == 'z') {
            size_mod = true;
            p++;
        }

        char digits[24];
        size_t n = 0;
        switch (*p) {
        case '%':
            put(o, '%');
            break;
        case 'c': {
            char c = (char)va_arg(ap, int);
            put_padded(o, &c, 1, width, left, ' ');
            break;
        }
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            put_padded(o, s, str_len_max(s, precision), width, left, ' ');
            break;
        }
        case 'd':
        case 'i': {
            int64_t v = longs || size_mod ? va_arg(ap, int64_t) : va_arg(ap, int);
            uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
            do {
                digits[sizeof digits - 1 - n++] = (char)('0' + mag % 10);
                mag /= 10;
            } while (mag);
            if (v < 0)
                digits[sizeof digits - 1 - n++] = '-';
            put_padded(o, digits + sizeof digits - n, n, width, left, pad == '0' && v >= 0 ? '0' : ' ');
            break;
        }
        case 'u':
        case 'x':
        case 'X':
        case 'p': {
            uint64_t v;
            if (*p == 'p') {
                v = (uint64_t)(uintptr_t)va_arg(ap, void *);
                put(o, '0');
                put(o, 'x');
            } else {
                v = longs || size_mod ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int);
            }
            unsigned base = *p == 'u' ? 10 : 16;
            const char *set = *p == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
            do {
                digits[sizeof digits - 1 - n++] = set[v % base];
                v /= base;
            } while (v);
            put_padded(o, digits + sizeof digits - n, n, width, left, pad);
            break;
        }
        case '\0':
            p--; /* a lone '%' at the end: stop at the terminator */
            break;
        default:
            put(o, '%');
            put(o, *p);
            break;
        }
    }
}

size_t fmt_vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct out o = {.buf = buf, .size = size};
    format(&o, fmt, ap);
    if (size)
        buf[o.len < size ? o.len : size - 1] = '\0';
    return o.len;
}

void sink_vprintf(const struct sink *out, const char *fmt, va_list ap)
{
    struct out o = {.sink = out};
    format(&o, fmt, ap);
    if (o.chunk_used)
        out->write(out->ctx, o.chunk, o.chunk_used);
}

size_t fmt_format(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = fmt_vformat(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

void sink_write(const struct sink *out, const char *s, size_t n)
{
    if (n)
        out->write(out->ctx, s, n);
}

void sink_puts(const struct sink *out, const char *s)
{
    sink_write(out, s, str_len_max(s, (size_t)-1));
}

void sink_printf(const struct sink *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sink_vprintf(out, fmt, ap);
    va_end(ap);
}

static void buffer_sink_write(void *ctx, const char *s, size_t n)
{
    struct buffer_sink *b = ctx;
    for (size_t i = 0; i < n; i++) {
        if (b->used + 1 < b->size)
            b->buf[b->used++] = s[i];
        else
            b->overflow++;
    }
    if (b->size)
        b->buf[b->used] = '\0';
}

void buffer_sink_init(struct buffer_sink *b, char *buf, size_t size)
{
    b->sink.write = buffer_sink_write;
    b->sink.ctx = b;
    b->buf = buf;
    b->size = size;
    b->used = 0;
    b->overflow = 0;
    if (size)
        buf[0] = '\0';
}
