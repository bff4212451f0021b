/* The serial console of Arm machines: polled output on an Arm PL011 UART, the console
 * QEMU's virt machine gives `-serial` (at 0x09000000, which its SPCR table names). Like the
 * 16550 version (serial.c) it uses no firmware service and leaves the line settings the
 * firmware programmed. */
#include <stdint.h>

#include "common/serial.h"

#define PL011_DR 0x00u
#define PL011_FR 0x18u
#define PL011_FR_TXFF 0x20u /* transmit FIFO full */
/* A UART that never drains must not hang the loader: give up on a character after this
 * many status reads (a character takes about 87 us at 115200 baud). */
#define TXFF_POLL_LIMIT 1000000u

static uint64_t uart_base = 0x09000000u;

void serial_set_base(uint64_t base)
{
    uart_base = base;
}

uint64_t serial_base(void)
{
    return uart_base;
}

static void put_char(char c)
{
    volatile uint32_t *fr = (volatile uint32_t *)(uintptr_t)(uart_base + PL011_FR);
    for (uint32_t i = 0; i < TXFF_POLL_LIMIT; i++)
        if (!(*fr & PL011_FR_TXFF))
            break;
    *(volatile uint32_t *)(uintptr_t)(uart_base + PL011_DR) = (uint8_t)c;
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
