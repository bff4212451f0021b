/* VT-d second-level page tables (VT-d specification 9.8 / 3.7): 3, 4 or 5 levels of
 * 512-entry tables, with 4 KiB leaves and, where the unit allows them, 2 MiB and 1 GiB
 * leaves.
 *
 * Every change is all or nothing: a map that fails (no table memory, overlap with an
 * existing mapping) leaves the tables exactly as they were and returns every page it took;
 * an unmap that cannot split a superpage changes nothing. Tables are taken from and given
 * back to a page_pool.
 *
 * A table that becomes empty (an unmap, an unprepare, the undo of a failed map) and every
 * table of slpt_destroy is freed at once, unless 'freed' is set. A unit may cache
 * paging-structure entries until they are invalidated, so a page that left a table walked
 * by a unit must not go back to the pool (where another domain can take it and fill it with
 * its own entries) before the invalidation covering its removal has completed: callers with
 * units set 'freed' for their change, invalidate, and then call slpt_release_freed. Callers
 * whose tables no unit walks yet (or ever) leave it NULL.
 *
 * Locking: none inside. A domain serialises changes to its own tables (see domain.h). */
#ifndef IOMMU_SLPT_H
#define IOMMU_SLPT_H

#include <stdbool.h>
#include <stdint.h>

#include "fmt.h"
#include "page_pool.h"
#include "pt_format.h"
#include "status.h"

#define SLPT_READ 0x1u
#define SLPT_WRITE 0x2u

#define SLPT_SUPERPAGE_2M 0x1u /* CAP.SLLPS bit 0 */
#define SLPT_SUPERPAGE_1G 0x2u /* CAP.SLLPS bit 1 */

/* The VT-d second-level format's bits (pt_vtd_second_level), the engine's default format. */
#define SLPTE_R 0x1ull
#define SLPTE_W 0x2ull
#define SLPTE_PS 0x80ull
#define SLPTE_ADDR 0x000ffffffffff000ull

struct slpt {
    struct page_pool *pool;
    unsigned levels;       /* 3: 39-bit, 4: 48-bit, 5: 57-bit IOVA space */
    uint8_t superpages;    /* SLPT_SUPERPAGE_* the unit supports */
    uint64_t *root;
    uint64_t root_pa;
    uint32_t table_pages;  /* pages this table holds, root included */
    /* When the unit's walks are not cache coherent (ECAP.C = 0): writes [va, va + len) back
     * from the CPU's caches to memory, every cache line (64 bytes) the range touches. NULL
     * otherwise. The engine calls it for exactly the lines it changed, after changing them
     * and before the operation returns, and a new table's zeroes reach memory before any
     * pointer to it: tables come from the pool with page_pool_alloc_clean and go back with
     * page_pool_free_clean, so a page that stays clean is never written back again.
     * Set it with slpt_set_write_back right after slpt_init, before the first map; the
     * engine relies on every change since being written back. */
    void (*sync)(void *ctx, const void *va, size_t len);
    void *sync_ctx;
    /* The entry format (pt_format.h): VT-d second-level unless slpt_set_format chose
     * another before the first map. A copy, read as plain data; its leaf test picks which
     * of the engine's per-layout copies of its hot loops runs (slpt.c). */
    struct pt_format fmt;
    /* Optional, with sync: when set, sync may only start the write-backs (clflush without a
     * fence) and sync_wait(sync_ctx) waits until every one started so far is in memory
     * (mfence). The engine calls it once before an operation that wrote anything back
     * returns, and wherever it needs a write-back complete before going on (a new table's
     * contents before the pointer to it is stored; a table going back to the pool clean).
     * When NULL, each sync call must itself complete before it returns. */
    void (*sync_wait)(void *ctx);
    /* The engine's own, with sync_wait: write-backs started and not waited for, and the
     * empty tables that go back to the pool clean once they are. */
    bool sync_pending;
    uint8_t deferred_count;
    uint64_t *deferred[15]; /* 15, not 16: 'freed' below keeps the struct's size */
    /* When set: the tables the engine frees go on this list instead of back to the pool,
     * and stay allocated (in_use) until slpt_release_freed. They no longer count in
     * table_pages. Set and cleared by the caller, typically around one change. */
    struct page_list *freed;
};

/* What an unmap removed, so the caller can invalidate exactly that. */
struct slpt_unmapped {
    uint64_t bytes;        /* bytes that had been mapped in the range */
    uint64_t first, last;  /* lowest and highest IOVA whose translation was removed */
};

enum iommu_status slpt_init(struct slpt *t, struct page_pool *pool, unsigned levels, uint8_t superpages);
/* Tables of another entry format (pt_format.h): only right after slpt_init; IOMMU_EINVAL,
 * with nothing changed, once anything is mapped, for a format the engine cannot write (one
 * that breaks a rule of pt_format.h) or one whose address field cannot hold every page of
 * t's pool. */
enum iommu_status slpt_set_format(struct slpt *t, const struct pt_format *fmt);
/* For tables a unit walks without snooping the CPU's caches: sets sync, sync_wait (may be
 * NULL) and their context, and writes the root back whole. Only right after slpt_init:
 * IOMMU_EINVAL, with nothing changed, once anything is mapped. */
enum iommu_status slpt_set_write_back(struct slpt *t, void (*sync)(void *ctx, const void *va, size_t len),
                                      void (*sync_wait)(void *ctx), void *ctx);
/* Frees every table page, root included (onto t->freed when set; zeroed first). */
void slpt_destroy(struct slpt *t);

/* Gives the pages of a list t->freed collected back to the pool: call it once the
 * invalidation that covers their removal (and its wait) has completed on every unit that
 * may walk t, never before. The list is left empty. */
void slpt_release_freed(struct slpt *t, struct page_list *freed);

static inline uint64_t slpt_iova_limit(const struct slpt *t)
{
    return 1ull << (12 + 9 * t->levels);
}

/* Maps [iova, iova + size) to [pa, pa + size) with perm (SLPT_READ and/or SLPT_WRITE),
 * choosing the largest leaves that alignment and the unit allow. All page aligned. */
enum iommu_status slpt_map(struct slpt *t, uint64_t iova, uint64_t pa, uint64_t size, unsigned perm);

/* Maps count 4 KiB page frames (frame numbers, pa >> 12) to consecutive IOVAs from iova.
 * Runs of contiguous frames get superpages where alignment allows. All or nothing. */
enum iommu_status slpt_map_frames(struct slpt *t, uint64_t iova, const uint64_t *frames, uint64_t count,
                                  unsigned perm);

/* Removes every translation in [iova, iova + size), splitting superpages cut by the range
 * ends. Unmapped parts of the range are fine. 'out' may be NULL. */
enum iommu_status slpt_unmap(struct slpt *t, uint64_t iova, uint64_t size, struct slpt_unmapped *out);

/* Pre-populates [iova, iova + size): allocates every table the range can ever need (down to
 * the tables of 4 KiB entries) and pins them. Until slpt_unprepare, maps inside the range
 * use 4 KiB leaves and neither maps nor unmaps there allocate or free a page. Fails with
 * IOMMU_EEXIST where a superpage already covers part of the range. All or nothing;
 * ranges may be prepared more than once (pins are counted). */
enum iommu_status slpt_prepare(struct slpt *t, uint64_t iova, uint64_t size);
/* Drops one pin from each table of the range and frees tables left empty and unpinned. */
void slpt_unprepare(struct slpt *t, uint64_t iova, uint64_t size);

/* The translation of one IOVA: physical address, permissions and the size of the leaf. */
bool slpt_lookup(const struct slpt *t, uint64_t iova, uint64_t *pa, unsigned *perm, uint64_t *leaf_size);

/* The leaf entry that translates iova, or NULL: for tools that measure or inspect the tables
 * (the benchmark stores into the very entries a map writes). Writing through it bypasses
 * the engine's bookkeeping. */
uint64_t *slpt_leaf_entry(const struct slpt *t, uint64_t iova);

/* Every non-empty entry, one line each, indented by level: tables with their physical
 * address, entry count and pins; leaves as IOVA range -> physical range and permissions. */
void slpt_dump(const struct slpt *t, const struct sink *out);

#endif
