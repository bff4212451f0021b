/* See hypervisor/hv_channel.h: the channel's sink and its lock. Each architecture's half
 * writes the bytes (hv_channel_write_unlocked): svm/hv_channel_debugcon.c, el2/hv_channel_pl011.c. */
#include "hypervisor/hv_channel.h"

#include "iommu/lock.h"

/* The loader's and the hypervisor's report (boot/common/report.h) goes to the protected channel. */
const struct sink *const out = &hv_channel_sink;

static struct iommu_lock channel_lock;

void hv_channel_lock(void)
{
    lock_acquire(&channel_lock);
}

void hv_channel_unlock(void)
{
    lock_release(&channel_lock);
}

static void channel_write(void *ctx, const char *s, size_t n)
{
    (void)ctx;
    hv_channel_lock();
    hv_channel_write_unlocked(s, n);
    hv_channel_unlock();
}

const struct sink hv_channel_sink = {channel_write, NULL};
