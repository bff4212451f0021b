/* Polled output on the serial console QEMU's `-serial` captures: the 16550 UART at COM1
 * (I/O port 0x3f8) on x86 (serial.c), a PL011 on Arm (serial_pl011.c). It uses no firmware
 * service, so it keeps working once the firmware runs as a guest. The firmware has already
 * programmed the line (115200 8N1); it is left as is. */
#ifndef BOOT_SERIAL_H
#define BOOT_SERIAL_H

#include <stddef.h>

#include "iommu/fmt.h"

/* Writes n bytes, turning "\n" into "\r\n". */
void serial_write(const char *s, size_t n);

extern const struct sink serial_sink;

#if defined(__aarch64__)
#include <stdint.h>
/* Where the PL011 is (the SPCR's address; QEMU virt's 0x09000000 until told). */
void serial_set_base(uint64_t base);
uint64_t serial_base(void);
#endif

#endif
