/* The hypervisor's channel on x86 (see hypervisor/hv_channel.h): QEMU's debug console. */
#include <stdint.h>

#include "common/port_io.h"
#include "hypervisor/hv_channel.h"

void hv_channel_write_unlocked(const char *s, size_t n)
{
    /* One byte per OUT: the debug console takes bytes, and a string instruction would not
     * be faster under emulation. */
    for (size_t i = 0; i < n; i++)
        outb(HV_CHANNEL_PORT, (uint8_t)s[i]);
}
