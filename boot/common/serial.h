/* Polled output on the 16550 UART at COM1 (I/O port 0x3f8), the console QEMU's
 * `-serial` captures. It uses no firmware service, so it keeps working once the firmware
 * runs as a guest. OVMF has already programmed the line (115200 8N1); it is left as is. */
#ifndef BOOT_SERIAL_H
#define BOOT_SERIAL_H

#include <stddef.h>

#include "iommu/fmt.h"

/* Writes n bytes, turning "\n" into "\r\n". */
void serial_write(const char *s, size_t n);

extern const struct sink serial_sink;

#endif
