#include "iommu/ranges.h"

unsigned ranges_merge(struct addr_range *r, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        r[i].base &= ~(uint64_t)(PAGE_SIZE - 1);
        r[i].end = r[i].end > UINT64_MAX - (PAGE_SIZE - 1) ? UINT64_MAX & ~(uint64_t)(PAGE_SIZE - 1)
                                                          : (r[i].end + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1);
    }
    /* Insertion sort: a memory map has tens to a few hundred entries. */
    for (unsigned i = 1; i < n; i++) {
        struct addr_range key = r[i];
        unsigned j = i;
        for (; j > 0 && r[j - 1].base > key.base; j--)
            r[j] = r[j - 1];
        r[j] = key;
    }
    unsigned out = 0;
    for (unsigned i = 0; i < n; i++) {
        if (r[i].end <= r[i].base)
            continue;
        if (out && r[i].base <= r[out - 1].end) {
            if (r[i].end > r[out - 1].end)
                r[out - 1].end = r[i].end;
        } else {
            r[out++] = r[i];
        }
    }
    return out;
}

unsigned ranges_remove(struct addr_range *r, unsigned n, unsigned capacity, uint64_t base, uint64_t end)
{
    for (unsigned i = 0; i < n; i++) {
        if (end <= r[i].base || r[i].end <= base)
            continue;
        if (base > r[i].base && end < r[i].end) {
            if (n == capacity)
                return capacity + 1;
            for (unsigned j = n; j > i + 1; j--)
                r[j] = r[j - 1];
            r[i + 1] = (struct addr_range){end, r[i].end};
            r[i].end = base;
            return n + 1;
        }
        if (base <= r[i].base && end >= r[i].end) {
            for (unsigned j = i; j + 1 < n; j++)
                r[j] = r[j + 1];
            n--;
            i--;
        } else if (base <= r[i].base) {
            r[i].base = end;
        } else {
            r[i].end = base;
        }
    }
    return n;
}

enum iommu_status ranges_identity_map(struct slpt *t, const struct addr_range *r, unsigned n, unsigned perm)
{
    for (unsigned i = 0; i < n; i++) {
        enum iommu_status s = slpt_map(t, r[i].base, r[i].base, r[i].end - r[i].base, perm);
        if (s != IOMMU_OK) {
            while (i--)
                slpt_unmap(t, r[i].base, r[i].end - r[i].base, NULL);
            return s;
        }
    }
    return IOMMU_OK;
}
