#include "hypervisor/hv_channel.h"

#include <stdint.h>

#include "iommu/lock.h"
#include "common/port_io.h"

/* The loader's and the hypervisor's report (boot/common/report.h) goes to the protected channel. */
const struct sink *const out = &hv_channel_sink;

static struct iommu_lock channel_lock;

void hv_channel_write_unlocked(const char *s, size_t n)
{
    /* One byte per OUT: the debug console takes bytes, and a string instruction would not
     * be faster under emulation. */
    for (size_t i = 0; i < n; i++)
        outb(HV_CHANNEL_PORT, (uint8_t)s[i]);
}

static void channel_write(void *ctx, const char *s, size_t n)
{
    (void)ctx;
    lock_acquire(&channel_lock);
    hv_channel_write_unlocked(s, n);
    lock_release(&channel_lock);
}

const struct sink hv_channel_sink = {channel_write, NULL};
