/* Concurrent DDI calls on shared domains: the provider's locking, checked by what the callers
 * can see and, in the ThreadSanitizer build, by the race detector.
 *
 * Two threads work on the same two domains at once: a Buddy domain (allocated maps and
 * tokens) and one without allocator (explicit maps and tokens in one small window, so the
 * threads claim the same addresses). Every range a call reports as granted (a map, a token)
 * is entered in a shared registry, which fails the test if it overlaps a range the other
 * thread holds: the allocator must never hand out a range twice, and "this range is free"
 * must hold until the call that relied on it is done. At the end everything is given back
 * and the provider must be empty and the page pool back where it started.
 *
 * Built twice: calling the provider directly, and (DDI_THROUGH_HYPERCALLS) as two guest CPUs
 * do, through the shim and the hypercall server, each thread a CPU with its own staging in
 * the server (sim_set_cpu), so the shim's and the server's locking are checked too. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "test_util.h"

#ifdef DDI_THROUGH_HYPERCALLS
#include "ddi/shim.h"
#define GET_INTERFACE_EX ShimIoGetIommuInterfaceEx
#define USE_PATH(s) sim_use_hypercalls(s)
#else
#define GET_INTERFACE_EX IoGetIommuInterfaceEx
#define USE_PATH(s) ((void)(s))
#endif

#define ROUNDS 20000
#define WINDOW_BASE 0x400000ull
#define WINDOW_PAGES 64u
#define MAX_CLAIMS 256

struct claim {
    bool live;
    int domain;
    uint64_t base, end;
    int owner;
};

/* What the threads share: the platform, the two domains, the registry of granted ranges. */
static struct {
    struct sim *s;
    DMA_IOMMU_INTERFACE_V2 *v2;
    PIOMMU_DMA_DOMAIN domain[2]; /* 0: Buddy, 1: explicit addresses */
    pthread_mutex_t lock;
    pthread_barrier_t start;
    struct claim claims[MAX_CLAIMS];
    unsigned granted, refused;
    char failure[256];
} shared;

static void note_failure(const char *what, uint64_t a, uint64_t b)
{
    pthread_mutex_lock(&shared.lock);
    if (!shared.failure[0])
        snprintf(shared.failure, sizeof shared.failure, "%s: 0x%llx-0x%llx", what, (unsigned long long)a,
                 (unsigned long long)b);
    pthread_mutex_unlock(&shared.lock);
}

/* Records a granted range; a clash with a live one is the failure this test looks for. */
static int claim(int owner, int domain, uint64_t base, uint64_t size)
{
    pthread_mutex_lock(&shared.lock);
    int slot = -1;
    for (int i = 0; i < MAX_CLAIMS; i++) {
        struct claim *c = &shared.claims[i];
        if (c->live && c->domain == domain && base < c->end && c->base < base + size && !shared.failure[0])
            snprintf(shared.failure, sizeof shared.failure,
                     "domain %d: 0x%llx-0x%llx granted to thread %d over thread %d's range", domain,
                     (unsigned long long)base, (unsigned long long)(base + size), owner, c->owner);
        if (!c->live && slot < 0)
            slot = i;
    }
    if (slot >= 0)
        shared.claims[slot] = (struct claim){true, domain, base, base + size, owner};
    shared.granted++;
    pthread_mutex_unlock(&shared.lock);
    return slot;
}

static void release(int slot)
{
    pthread_mutex_lock(&shared.lock);
    if (slot >= 0)
        shared.claims[slot].live = false;
    pthread_mutex_unlock(&shared.lock);
}

static void count_refusal(void)
{
    pthread_mutex_lock(&shared.lock);
    shared.refused++;
    pthread_mutex_unlock(&shared.lock);
}

static IOMMU_MAP_PHYSICAL_ADDRESS ram(unsigned page, unsigned pages)
{
    IOMMU_MAP_PHYSICAL_ADDRESS m = {.MapType = MapPhysicalAddressTypeContiguousRange};
    m.ContiguousRange.Base.QuadPart = (LONGLONG)sim_ram_page(shared.s, page);
    m.ContiguousRange.Size = (SIZE_T)pages * PAGE_SIZE;
    return m;
}

static void *worker(void *arg)
{
    int me = (int)(intptr_t)arg;
    sim_set_cpu((unsigned)me);
    uint64_t rng = 0x243F6A8885A308D3ull * (uint64_t)(me + 1);
    pthread_barrier_wait(&shared.start); /* both threads in the loop at once */
    for (unsigned round = 0; round < ROUNDS && !shared.failure[0]; round++) {
        test_rand(&rng);
        unsigned pages = 1 + (unsigned)(rng % 4), what = (unsigned)(rng >> 8) % 4;
        int domain = (int)((rng >> 16) & 1);
        uint64_t at = WINDOW_BASE + ((rng >> 24) % WINDOW_PAGES) * PAGE_SIZE;
        IOMMU_DMA_LOGICAL_ADDRESS explicit_at = at, out = 0;
        IOMMU_MAP_PHYSICAL_ADDRESS m = ram((unsigned)(rng >> 32) % 1024, pages);
        if (what < 2) { /* map, then unmap */
            NTSTATUS st = shared.v2->MapLogicalRangeEx(shared.domain[domain], IOMMU_ACCESS_READ, &m,
                                                  domain ? &explicit_at : NULL, NULL, NULL, &out);
            if (st != STATUS_SUCCESS) {
                if (!domain || st != STATUS_RESOURCE_IN_USE)
                    note_failure("MapLogicalRangeEx refused", st, at);
                count_refusal();
                continue;
            }
            int slot = claim(me, domain, out, pages * PAGE_SIZE);
            release(slot); /* before the unmap: once unmapped, the other thread may take it */
            if (shared.v2->UnmapLogicalRange(shared.domain[domain], out, pages) != STATUS_SUCCESS)
                note_failure("UnmapLogicalRange refused", out, pages);
        } else { /* a token, a segment in it, and back */
            PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN token = NULL;
            NTSTATUS st = shared.v2->ReserveLogicalAddressRange(shared.domain[domain], (SIZE_T)pages * PAGE_SIZE,
                                                           domain ? &explicit_at : NULL, NULL, NULL, &token);
            if (st != STATUS_SUCCESS) {
                if (!domain || st != STATUS_RESOURCE_IN_USE)
                    note_failure("ReserveLogicalAddressRange refused", st, at);
                count_refusal();
                continue;
            }
            int slot = claim(me, domain, token->LogicalAddressBase, token->Size);
            IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT seg;
            if (shared.v2->MapReservedLogicalRange(token, 0, IOMMU_ACCESS_WRITE, &m, &seg) != STATUS_SUCCESS ||
                shared.v2->UnmapReservedLogicalRange(&seg) != STATUS_SUCCESS)
                note_failure("segment refused", token->LogicalAddressBase, token->Size);
            release(slot); /* before the free: once freed, the other thread may take it */
            if (shared.v2->FreeReservedLogicalAddressRange(token) != STATUS_SUCCESS)
                note_failure("FreeReservedLogicalAddressRange refused", 0, 0);
        }
    }
    return NULL;
}

static void test_two_threads_share_domains(void **state)
{
    (void)state;
    pthread_mutex_init(&shared.lock, NULL);
    pthread_barrier_init(&shared.start, NULL, 2);
    struct sim_config cfg = sim_default_config();
    shared.s = sim_create(&cfg);
    USE_PATH(shared.s);
    DMA_IOMMU_INTERFACE_EX ex;
    assert_int_equal(GET_INTERFACE_EX(2, 0, &ex), STATUS_SUCCESS);
    shared.v2 = &ex.V2;
    uint32_t baseline = sim_pool(shared.s)->in_use;
    IOMMU_DMA_DOMAIN_CREATION_FLAGS flags = {.AsUlonglong = 0};
    IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG buddy = {.LogicalAllocatorType = IommuDmaLogicalAllocatorBuddy,
                                                .BuddyAllocatorConfig = {.AddressWidth = 24}};
    assert_int_equal(shared.v2->CreateDomainEx(DomainTypeTranslate, flags, &buddy, NULL, &shared.domain[0]),
                     STATUS_SUCCESS);
    assert_int_equal(shared.v2->CreateDomainEx(DomainTypeTranslate, flags, NULL, NULL, &shared.domain[1]),
                     STATUS_SUCCESS);

    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    printf("ddi threads: %u ranges granted, %u claims refused as overlapping\n", shared.granted, shared.refused);
#ifdef DDI_THROUGH_HYPERCALLS
    assert_true(sim_hypercalls(shared.s) > ROUNDS); /* the calls did go the guests' way */
#endif
    if (shared.failure[0])
        fail_msg("%s", shared.failure);
    assert_true(shared.granted > ROUNDS / 2);

    struct ddi_counts c = ddi_provider_counts();
    assert_int_equal(c.tokens + c.mapped_segments, 0);
    assert_int_equal(c.table_pages, 2); /* everything unmapped: the roots alone */
    assert_int_equal(shared.v2->DeleteDomain(shared.domain[0]), STATUS_SUCCESS);
    assert_int_equal(shared.v2->DeleteDomain(shared.domain[1]), STATUS_SUCCESS);
    assert_int_equal(sim_pool(shared.s)->in_use, baseline);
    sim_destroy(shared.s);
    pthread_mutex_destroy(&shared.lock);
    pthread_barrier_destroy(&shared.start);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_two_threads_share_domains)};
    return cmocka_run_group_tests_name("ddi_threads", tests, NULL, NULL);
}
