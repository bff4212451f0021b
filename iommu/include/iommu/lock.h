/* A spinlock for the freestanding core. Holders never sleep and never call out to code
 * that may take a lock of a lower rank. Ranks, outermost first:
 *   domain lock  >  unit lock (invalidation)  >  page pool lock
 * so a domain may invalidate on a unit and take table pages while it holds its own lock. */
#ifndef IOMMU_LOCK_H
#define IOMMU_LOCK_H

#include <stdbool.h>
#include <stdint.h>

struct iommu_lock {
    uint32_t held;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("pause");
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static inline void lock_acquire(struct iommu_lock *l)
{
    while (__atomic_exchange_n(&l->held, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&l->held, __ATOMIC_RELAXED))
            cpu_relax();
}

/* Takes the lock only if it is free: false, and nothing taken, when another holds it. */
static inline bool lock_try_acquire(struct iommu_lock *l)
{
    return !__atomic_load_n(&l->held, __ATOMIC_RELAXED) && !__atomic_exchange_n(&l->held, 1, __ATOMIC_ACQUIRE);
}

static inline void lock_release(struct iommu_lock *l)
{
    __atomic_store_n(&l->held, 0, __ATOMIC_RELEASE);
}

#endif
