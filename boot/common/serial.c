#include "common/serial.h"

#include <stdint.h>

#include "common/port_io.h"

#define COM1 0x3f8u
#define UART_LSR 5u
#define UART_LSR_THRE 0x20u
/* A UART that never drains (absent, or a broken emulation) must not hang the loader: give
 * up on a character after this many status reads. At 115200 baud a character takes
 * about 87 us, far fewer reads than this. */
#define THRE_POLL_LIMIT 1000000u


static void put_char(char c)
{
    for (uint32_t i = 0; i < THRE_POLL_LIMIT; i++)
        if (inb(COM1 + UART_LSR) & UART_LSR_THRE)
            break;
    outb(COM1, (uint8_t)c);
}

void serial_write(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n')
            put_char('\r');
        put_char(s[i]);
    }
}

static void serial_sink_write(void *ctx, const char *s, size_t n)
{
    (void)ctx;
    serial_write(s, n);
}

const struct sink serial_sink = {serial_sink_write, NULL};
