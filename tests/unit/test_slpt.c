/* The second-level page-table engine against a reference model: long random sequences of
 * map and unmap (superpages included, partial unmaps that cut them) and injected table
 * allocation failures, in VT-d's format and in Arm's stage-1 format. After every step,
 * every touched IOVA translates as the model says, the tables' own entry counts are right,
 * and the pool holds exactly the table's pages. Then the exact bits each format writes. */
#include <stdlib.h>
#include <string.h>

#include "iommu/slpt.h"
#include "test_util.h"

#define POOL_PAGES 2048u
#define MAX_RANGES 4096
#define TOUCHED 8192u

struct range {
    uint64_t iova, size, pa;
    unsigned perm;
};

struct model {
    struct range r[MAX_RANGES];
    unsigned n;
};

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static const struct range *model_find(const struct model *m, uint64_t iova)
{
    for (unsigned i = 0; i < m->n; i++)
        if (iova >= m->r[i].iova && iova - m->r[i].iova < m->r[i].size)
            return &m->r[i];
    return NULL;
}

static bool model_overlaps(const struct model *m, uint64_t iova, uint64_t size)
{
    for (unsigned i = 0; i < m->n; i++)
        if (iova < m->r[i].iova + m->r[i].size && m->r[i].iova < iova + size)
            return true;
    return false;
}

static void model_unmap(struct model *m, uint64_t iova, uint64_t size)
{
    uint64_t end = iova + size;
    for (unsigned i = 0; i < m->n;) {
        struct range r = m->r[i];
        uint64_t r_end = r.iova + r.size;
        if (end <= r.iova || r_end <= iova) {
            i++;
            continue;
        }
        m->r[i] = m->r[--m->n]; /* remove, then put back what lies outside [iova, end) */
        if (r.iova < iova) {
            assert_true(m->n < MAX_RANGES);
            m->r[m->n++] = (struct range){r.iova, iova - r.iova, r.pa, r.perm};
        }
        if (end < r_end) {
            assert_true(m->n < MAX_RANGES);
            m->r[m->n++] = (struct range){end, r_end - end, r.pa + (end - r.iova), r.perm};
        }
    }
}

/* Every format the engine writes, for the tests that run in each. */
static const struct pt_format *const formats[] = {&pt_vtd_second_level, &pt_x86_supervisor, &pt_amd_nested,
                                                  &pt_arm_stage1};
#define N_FORMATS (sizeof formats / sizeof formats[0])

/* Whether entry e at 'level' of t points to a table, by t's format's own leaf test. */
static bool points_to_table(const struct slpt *t, uint64_t e, unsigned level)
{
    return level > 1 && (e & t->fmt.leaf_mask) != t->fmt.leaf_value;
}

/* Walks the real tables: counts pages and checks each table's recorded entry count. */
static unsigned walk(struct slpt *t, uint64_t *table, unsigned level)
{
    unsigned pages = 1, nonzero = 0;
    for (unsigned i = 0; i < 512; i++) {
        if (!table[i])
            continue;
        nonzero++;
        if (points_to_table(t, table[i], level))
            pages += walk(t, page_pool_va(t->pool, table[i] & SLPTE_ADDR), level - 1);
        else if (level > 1)
            assert_true(level <= 3); /* leaves above level 1 only at 2M and 1G */
    }
    const struct page_meta *m = page_pool_meta(t->pool, table);
    assert_int_equal(m->entries, nonzero);
    if (table != t->root)
        assert_true(nonzero > 0 || m->pins > 0); /* empty tables are freed unless pinned */
    return pages;
}

static void check_point(struct slpt *t, const struct model *m, uint64_t iova)
{
    uint64_t pa, leaf;
    unsigned perm;
    const struct range *r = model_find(m, iova);
    bool found = slpt_lookup(t, iova, &pa, &perm, &leaf);
    if (!r) {
        if (found)
            fail_msg("iova 0x%lx translates to 0x%lx but should be unmapped", (unsigned long)iova,
                     (unsigned long)pa);
        return;
    }
    if (!found)
        fail_msg("iova 0x%lx should map to 0x%lx", (unsigned long)iova, (unsigned long)(r->pa + iova - r->iova));
    assert_int_equal(pa, r->pa + (iova - r->iova));
    assert_int_equal(perm, r->perm);
}

/* A point inside model range r must translate to r's target. */
static void check_in_range(struct slpt *t, const struct range *r, uint64_t iova)
{
    uint64_t pa;
    unsigned perm;
    if (!slpt_lookup(t, iova, &pa, &perm, NULL))
        fail_msg("iova 0x%lx should map to 0x%lx", (unsigned long)iova, (unsigned long)(r->pa + iova - r->iova));
    assert_int_equal(pa, r->pa + (iova - r->iova));
    assert_int_equal(perm, r->perm);
}

/* After every step: the tables' structure and counters, both ends of every range, and the
 * points this step touched (and their neighbours). Every 'full' step also every point any
 * step ever touched and the outside neighbours of every range. */
static void check_all(struct slpt *t, const struct model *m, struct page_pool *pool, const uint64_t *touched,
                      unsigned n_touched, unsigned step_first, bool full)
{
    assert_int_equal(walk(t, t->root, t->levels), t->table_pages);
    /* pages in use: the tables that exist and the freed ones waiting to be released */
    assert_int_equal(pool->in_use, t->table_pages + (t->freed ? t->freed->count : 0));
    for (unsigned i = 0; i < m->n; i++) {
        check_in_range(t, &m->r[i], m->r[i].iova);
        check_in_range(t, &m->r[i], m->r[i].iova + m->r[i].size - PAGE_SIZE);
        if (full) {
            check_point(t, m, m->r[i].iova + m->r[i].size);
            if (m->r[i].iova >= PAGE_SIZE)
                check_point(t, m, m->r[i].iova - PAGE_SIZE);
        }
    }
    unsigned from = full ? (n_touched > TOUCHED ? n_touched - TOUCHED : 0) : step_first;
    for (unsigned i = from; i < n_touched; i++) {
        uint64_t iova = touched[i % TOUCHED];
        check_point(t, m, iova);
        if (!full) {
            check_point(t, m, iova + PAGE_SIZE);
            if (iova >= PAGE_SIZE)
                check_point(t, m, iova - PAGE_SIZE);
        }
    }
}

/* A random size and alignment that sometimes allows superpages. */
static void random_range(uint64_t *iova, uint64_t *size, uint64_t *pa, bool superpages)
{
    static const uint64_t units[] = {PAGE_SIZE, PAGE_SIZE, 2ull << 20, 1ull << 30};
    uint64_t unit = units[rnd() % 4];
    uint64_t window = 8ull << 30; /* IOVAs within 8 GiB keep ranges colliding */
    *iova = (rnd() % (window / unit)) * unit;
    if (rnd() % 3 == 0)
        *iova += (rnd() % 512) * PAGE_SIZE; /* misalign: forces 4K leaves at the ends */
    *size = (1 + rnd() % (unit == PAGE_SIZE ? 1024 : 3)) * unit;
    if (rnd() % 4 == 0)
        *size += (rnd() % 512) * PAGE_SIZE;
    /* Usually pa shares iova's offset within 1 GiB, so superpages fit; otherwise every leaf
     * is 4 KiB, and the size is kept small enough for the pool. */
    *pa = ((rnd() % 64) << 30) + (*iova & ((1ull << 30) - 1));
    if (rnd() % 3 == 0) {
        *pa += (1 + rnd() % 511) * PAGE_SIZE;
    }
    bool small_leaves = !superpages || (*pa & ((2ull << 20) - 1)) != (*iova & ((2ull << 20) - 1));
    if (small_leaves && *size > (16ull << 20))
        *size = (16ull << 20) - (rnd() % 512) * PAGE_SIZE;
    if (*iova + *size > window)
        *size = window - *iova;
}

#define MAX_PREPARED 64
struct prepared {
    uint64_t iova, size;
};

static bool inside_prepared(const struct prepared *p, unsigned n, uint64_t iova, uint64_t size)
{
    for (unsigned i = 0; i < n; i++)
        if (iova >= p[i].iova && iova + size <= p[i].iova + p[i].size)
            return true;
    return false;
}

/* Frames for a map_frames step: runs of contiguous frames, sometimes aligned so that a run
 * can use superpages. */
static uint64_t random_frames(uint64_t *frames, uint64_t max, uint64_t iova)
{
    uint64_t n = 1 + rnd() % max, i = 0;
    while (i < n) {
        uint64_t run = 1 + rnd() % (rnd() % 4 ? 16 : 1024);
        uint64_t base = (rnd() % (1u << 20)) * 512 + ((iova >> PAGE_SHIFT) + i) % 512; /* 2M-compatible */
        if (rnd() % 2)
            base += 1 + rnd() % 511; /* or not */
        for (uint64_t k = 0; k < run && i < n; k++)
            frames[i++] = base + k;
    }
    return n;
}

/* ---- a unit that does not snoop table walks (ECAP.C = 0): what memory holds ----
 *
 * The tables' memory as the unit sees it, kept apart from the CPU's view: it changes only
 * through the engine's write-back hook, one 64-byte line at a time, and starts as poison
 * (whatever was there before), so a table page the engine never wrote back reads as
 * garbage. With a deferred hook (sync_wait set) a line's write-back lands only at the next
 * sync_wait, with the line's contents as they were when it was started.
 *
 * Checked: when a line that publishes a new pointer to a table is written back, that table
 * is in memory exactly as the CPU sees it (so the unit can never walk into stale memory);
 * when an operation returns, nothing is left unfinished and every table the walk can reach
 * is in memory exactly as the CPU sees it (every entry written back after it last changed);
 * and every free page the pool calls clean is zero in memory. */
#define LINE 64u
#define POISON 0xa5

struct pending_line {
    size_t off;
    uint8_t data[LINE];
};

struct wb_model {
    const struct page_pool *pool;
    uint8_t *memory; /* what the unit reads: write-backs completed */
    uint8_t *queued; /* what it will read once the started ones complete */
    struct pending_line *pending;
    size_t n_pending, cap;
    uint64_t lines, waits;
    unsigned checks; /* pointers whose target was checked at publication */
};

static struct wb_model wb;

static size_t region_bytes(const struct page_pool *p)
{
    return (size_t)p->pages * PAGE_SIZE;
}

static void wb_init(const struct page_pool *p)
{
    wb = (struct wb_model){.pool = p, .memory = malloc(region_bytes(p)), .queued = malloc(region_bytes(p))};
    assert_non_null(wb.memory);
    assert_non_null(wb.queued);
    memset(wb.memory, POISON, region_bytes(p));
    memset(wb.queued, POISON, region_bytes(p));
}

static void wb_free(void)
{
    free(wb.memory);
    free(wb.queued);
    free(wb.pending);
    wb = (struct wb_model){0};
}

/* A pointer to a table just published in the line at 'off': the table must be in memory. */
static void wb_check_published(size_t off)
{
    const struct page_pool *p = wb.pool;
    const uint64_t *now = (const uint64_t *)(p->base_va + off);
    const uint64_t *old = (const uint64_t *)(wb.queued + off);
    for (unsigned i = 0; i < LINE / 8; i++) {
        uint64_t e = now[i], pa = e & SLPTE_ADDR;
        if (e == old[i] || !e || pa < p->base_pa || pa - p->base_pa >= region_bytes(p))
            continue; /* unchanged, cleared, or a leaf (the tests' leaves lie below the pool) */
        size_t target = (size_t)(pa - p->base_pa);
        wb.checks++;
        for (size_t k = 0; k < PAGE_SIZE; k += LINE)
            if (memcmp(wb.memory + target + k, p->base_va + target + k, LINE))
                fail_msg("a pointer to the table at 0x%llx reaches memory (entry at 0x%llx) while that table's "
                         "line %zu is not there: the unit would walk into stale memory",
                         (unsigned long long)pa, (unsigned long long)(p->base_pa + off + i * 8), k / LINE);
    }
}

static void wb_sync(void *ctx, const void *va, size_t len)
{
    bool deferred = ctx != NULL;
    const struct page_pool *p = wb.pool;
    const uint8_t *b = va;
    assert_true(len > 0 && b >= p->base_va && b + len <= p->base_va + region_bytes(p));
    size_t first = (size_t)(b - p->base_va) & ~(size_t)(LINE - 1), end = (size_t)(b - p->base_va) + len;
    for (size_t off = first; off < end; off += LINE) {
        wb_check_published(off);
        wb.lines++;
        memcpy(wb.queued + off, p->base_va + off, LINE);
        if (!deferred) {
            memcpy(wb.memory + off, p->base_va + off, LINE);
            continue;
        }
        if (wb.n_pending == wb.cap) {
            wb.cap = wb.cap ? 2 * wb.cap : 64;
            wb.pending = realloc(wb.pending, wb.cap * sizeof *wb.pending);
            assert_non_null(wb.pending);
        }
        wb.pending[wb.n_pending].off = off;
        memcpy(wb.pending[wb.n_pending++].data, p->base_va + off, LINE);
    }
}

static void wb_wait(void *ctx)
{
    (void)ctx;
    for (size_t i = 0; i < wb.n_pending; i++)
        memcpy(wb.memory + wb.pending[i].off, wb.pending[i].data, LINE);
    wb.n_pending = 0;
    wb.waits++;
}

/* Makes t a table of a unit that does not snoop, as the loader does: the write-back set
 * right after slpt_init and the root written back. */
static void wb_attach(struct slpt *t, bool deferred)
{
    assert_int_equal(slpt_set_write_back(t, wb_sync, deferred ? wb_wait : NULL, deferred ? &wb : NULL), IOMMU_OK);
}

static unsigned wb_check_table(const struct slpt *t, const uint64_t *table, unsigned level)
{
    const struct page_pool *p = wb.pool;
    size_t off = (size_t)((const uint8_t *)table - p->base_va);
    for (unsigned line = 0; line < PAGE_SIZE / LINE; line++)
        if (memcmp(wb.memory + off + line * LINE, (const uint8_t *)table + line * LINE, LINE)) {
            unsigned i = line * LINE / 8;
            while (i < (line + 1) * LINE / 8 && !memcmp(wb.memory + off + i * 8, &table[i], 8))
                i++;
            uint64_t in_memory;
            memcpy(&in_memory, wb.memory + off + i * 8, 8);
            fail_msg("level %u table at 0x%llx: entry %u is 0x%llx but memory holds 0x%llx (line %u not written "
                     "back after it changed)", level, (unsigned long long)(p->base_pa + off), i,
                     (unsigned long long)table[i], (unsigned long long)in_memory, line);
        }
    unsigned tables = 1;
    for (unsigned i = 0; i < 512 && level > 1; i++)
        if (table[i] && points_to_table(t, table[i], level))
            tables += wb_check_table(t, page_pool_va(p, table[i] & SLPTE_ADDR), level - 1);
    return tables;
}

/* Every free page the pool calls clean is zero in memory. */
static void wb_check_pool_clean(void)
{
    const struct page_pool *p = wb.pool;
    for (uint32_t i = p->first_usable; i < p->pages; i++) {
        if (p->meta[i].allocated || !p->meta[i].clean)
            continue;
        for (size_t k = 0; k < PAGE_SIZE; k++)
            if (wb.memory[(size_t)i * PAGE_SIZE + k])
                fail_msg("free page %u is called clean but memory holds 0x%02x at byte %zu", i,
                         wb.memory[(size_t)i * PAGE_SIZE + k], k);
    }
}

/* When an operation has returned: nothing pending, everything reachable in memory; with
 * 'pool_too', every clean free page zero in memory. */
static void wb_check(const struct slpt *t, bool pool_too)
{
    if (wb.n_pending)
        fail_msg("%zu line write-backs started and not waited for when the operation returned", wb.n_pending);
    assert_int_equal(wb_check_table(t, t->root, t->levels), t->table_pages);
    if (pool_too)
        wb_check_pool_clean();
}

enum coherence { COHERENT, NONCOHERENT, NONCOHERENT_DEFERRED };

/* collect: the tables the engine frees wait on a list (as a domain's do until its
 * invalidation), released at random steps; the pool balances with them counted. In a
 * format that cannot express a permission set (write-only, in Arm's), a map with it is
 * refused and changes nothing. */
static void run_sequence_in(const struct pt_format *fmt, unsigned levels, uint8_t superpages, uint64_t seed,
                            unsigned steps, enum coherence mode, bool collect)
{
    static struct page_list pending;
    pending = (struct page_list){0};
    unsigned releases = 0;
#define IN_USE (pool.in_use - pending.count) /* pages of tables that exist */
    static struct prepared prep[MAX_PREPARED];
    unsigned n_prep = 0, prepares = 0, prepared_ops = 0, frame_maps = 0;
    static uint64_t frames[4096];
    struct page_pool pool;
    /* above every physical address the tests' leaves use: an entry pointing into the pool
     * is a table pointer */
    test_pool_init(&pool, POOL_PAGES, 1ull << 44);
    struct slpt t;
    assert_int_equal(slpt_init(&t, &pool, levels, superpages), IOMMU_OK);
    assert_int_equal(slpt_set_format(&t, fmt), IOMMU_OK);
    if (collect)
        t.freed = &pending;
    if (mode != COHERENT) {
        wb_init(&pool);
        wb_attach(&t, mode == NONCOHERENT_DEFERRED);
    }
    static struct model m;
    m.n = 0;
    static uint64_t touched[TOUCHED]; /* a ring of the IOVAs steps touched */
    unsigned n_touched = 0;
    rng_state = seed;
    unsigned maps = 0, unmaps = 0, overlaps = 0, injected = 0, splits = 0, refused = 0;

    for (unsigned step = 0; step < steps; step++) {
        unsigned step_first = n_touched;
        uint64_t iova, size, pa;
        random_range(&iova, &size, &pa, superpages != 0);
        if (n_prep && rnd() % 3 == 0) { /* aim inside a prepared range */
            const struct prepared *pr = &prep[rnd() % n_prep];
            uint64_t pages = pr->size >> PAGE_SHIFT, first = rnd() % pages;
            iova = pr->iova + (first << PAGE_SHIFT);
            size = (1 + rnd() % (pages - first)) << PAGE_SHIFT;
        }
        touched[n_touched++ % TOUCHED] = iova;
        touched[n_touched++ % TOUCHED] = iova + size - PAGE_SIZE;
        unsigned op = rnd() % 14;
        uint64_t attempts_before = pool.attempts;
        uint32_t in_use_before = IN_USE;
        bool in_prepared = inside_prepared(prep, n_prep, iova, size);
        if (op >= 10 && op < 12) {
            /* map a list of frames */
            uint64_t count = random_frames(frames, sizeof frames / sizeof frames[0], iova);
            uint64_t fsize = count << PAGE_SHIFT;
            if (iova + fsize > (8ull << 30))
                continue;
            in_prepared = inside_prepared(prep, n_prep, iova, fsize);
            unsigned perm = 1 + rnd() % 3;
            bool inject = rnd() % 5 == 0;
            if (inject)
                pool.fail_at = pool.attempts + 1 + rnd() % 3;
            enum iommu_status st = slpt_map_frames(&t, iova, frames, count, perm);
            pool.fail_at = 0;
            if (!(fmt->perms >> perm & 1)) {
                assert_int_equal(st, IOMMU_EINVAL);
                assert_int_equal(IN_USE, in_use_before);
                assert_int_equal(pool.attempts, attempts_before);
                refused++;
            } else if (model_overlaps(&m, iova, fsize)) {
                assert_true(st == IOMMU_EEXIST || (inject && st == IOMMU_ENOMEM));
                assert_int_equal(IN_USE, in_use_before);
            } else if (st == IOMMU_ENOMEM) {
                assert_true(inject);
                assert_int_equal(IN_USE, in_use_before);
                injected++;
            } else {
                assert_int_equal(st, IOMMU_OK);
                for (uint64_t i = 0; i < count; i++) {
                    assert_true(m.n < MAX_RANGES);
                    /* one model range per run of contiguous frames */
                    if (i && frames[i] == frames[i - 1] + 1 && m.r[m.n - 1].iova + m.r[m.n - 1].size == iova + (i << PAGE_SHIFT))
                        m.r[m.n - 1].size += PAGE_SIZE;
                    else
                        m.r[m.n++] = (struct range){iova + (i << PAGE_SHIFT), PAGE_SIZE, frames[i] << PAGE_SHIFT, perm};
                }
                touched[n_touched++ % TOUCHED] = iova + fsize - PAGE_SIZE;
                frame_maps++;
                if (in_prepared) {
                    assert_int_equal(pool.attempts, attempts_before); /* the promise of a prepared range */
                    prepared_ops++;
                }
            }
        } else if (op == 12) {
            bool inject = rnd() % 4 == 0;
            if (inject)
                pool.fail_at = pool.attempts + 1 + rnd() % 3;
            if (size > (64ull << 20))
                size = 64ull << 20;
            enum iommu_status st = slpt_prepare(&t, iova, size);
            pool.fail_at = 0;
            if (st == IOMMU_OK) {
                if (n_prep == MAX_PREPARED) {
                    slpt_unprepare(&t, iova, size);
                } else {
                    prep[n_prep++] = (struct prepared){iova, size};
                    prepares++;
                }
            } else {
                assert_true(st == IOMMU_EEXIST || (inject && st == IOMMU_ENOMEM));
                assert_int_equal(IN_USE, in_use_before);
                if (st == IOMMU_EEXIST) {
                    bool superpage = false; /* a superpage covers part of the range */
                    for (uint64_t a = iova & ~((2ull << 20) - 1); a < iova + size && !superpage; a += 2ull << 20) {
                        uint64_t leaf;
                        superpage = slpt_lookup(&t, a, NULL, NULL, &leaf) && leaf > PAGE_SIZE;
                    }
                    assert_true(superpage);
                }
            }
        } else if (op == 13) {
            if (n_prep) {
                unsigned k = (unsigned)(rnd() % n_prep);
                slpt_unprepare(&t, prep[k].iova, prep[k].size);
                prep[k] = prep[--n_prep];
            }
        } else if (op < 5) {
            unsigned perm = 1 + rnd() % 3;
            bool inject = rnd() % 5 == 0;
            if (inject)
                pool.fail_at = pool.attempts + 1 + rnd() % 4;
            uint32_t before_pages = IN_USE;
            enum iommu_status s = slpt_map(&t, iova, pa, size, perm);
            pool.fail_at = 0;
            if (!(fmt->perms >> perm & 1)) {
                assert_int_equal(s, IOMMU_EINVAL);
                assert_int_equal(IN_USE, before_pages);
                assert_int_equal(pool.attempts, attempts_before);
                refused++;
            } else if (model_overlaps(&m, iova, size)) {
                /* Overlap is found before or after an injected failure, depending on order. */
                assert_true(s == IOMMU_EEXIST || (inject && s == IOMMU_ENOMEM));
                assert_int_equal(IN_USE, before_pages);
                overlaps++;
            } else if (s == IOMMU_ENOMEM) {
                if (!inject)
                    fail_msg("ENOMEM without injection at step %u: %u of %u pages in use", step, IN_USE,
                             pool.pages - pool.first_usable);
                assert_int_equal(IN_USE, before_pages);
                injected++;
            } else {
                assert_int_equal(s, IOMMU_OK);
                assert_true(m.n < MAX_RANGES);
                m.r[m.n++] = (struct range){iova, size, pa, perm};
                maps++;
                if (in_prepared) {
                    assert_int_equal(pool.attempts, attempts_before);
                    prepared_ops++;
                }
            }
        } else {
            bool inject = rnd() % 5 == 0;
            if (inject)
                pool.fail_at = pool.attempts + 1;
            struct slpt_unmapped u;
            uint32_t before_pages = IN_USE;
            enum iommu_status s = slpt_unmap(&t, iova, size, &u);
            pool.fail_at = 0;
            if (s == IOMMU_ENOMEM) {
                assert_true(inject);
                assert_true(IN_USE >= before_pages); /* a first split may have stayed */
                injected++;
            } else {
                assert_int_equal(s, IOMMU_OK);
                uint64_t expect = 0;
                for (unsigned i = 0; i < m.n; i++) {
                    uint64_t lo = m.r[i].iova > iova ? m.r[i].iova : iova;
                    uint64_t hi = m.r[i].iova + m.r[i].size < iova + size ? m.r[i].iova + m.r[i].size : iova + size;
                    if (lo < hi)
                        expect += hi - lo;
                }
                assert_int_equal(u.bytes, expect);
                if (expect) {
                    assert_true(u.first >= iova && u.last < iova + size);
                }
                if (IN_USE > before_pages)
                    splits++;
                if (in_prepared) { /* neither allocates nor frees */
                    assert_int_equal(pool.attempts, attempts_before);
                    assert_int_equal(IN_USE, in_use_before);
                    prepared_ops++;
                }
                model_unmap(&m, iova, size);
                unmaps++;
            }
        }
        check_all(&t, &m, &pool, touched, n_touched, step_first, step % 100 == 99 || step == steps - 1);
        if (collect && rnd() % 8 == 0) {
            releases += pending.count != 0;
            slpt_release_freed(&t, &pending);
            assert_int_equal(pool.in_use, t.table_pages);
        }
        if (mode != COHERENT)
            wb_check(&t, step % 100 == 99);
    }
    print_message("%s, levels %u superpages 0x%x: %u maps, %u frame-list maps, %u unmaps, %u prepares, %u "
                  "maps/unmaps inside prepared ranges, %u overlaps refused, %u injected failures, %u unmaps that "
                  "split, %u maps of a permission set the format cannot express refused; %u ranges, %u table pages "
                  "at the end\n",
                  fmt->name, levels, superpages, maps, frame_maps, unmaps, prepares, prepared_ops, overlaps, injected,
                  splits, refused, m.n, t.table_pages);
    assert_true(maps > steps / 20 && unmaps > steps / 20 && injected > 0 && frame_maps > 0 && prepares > 0);
    assert_true(fmt->perms >> SLPT_WRITE & 1 ? refused == 0 : refused > 0);
    /* Dropping every pin and unmapping everything leaves only the root. */
    while (n_prep) {
        n_prep--;
        slpt_unprepare(&t, prep[n_prep].iova, prep[n_prep].size);
    }
    assert_int_equal(slpt_unmap(&t, 0, slpt_iova_limit(&t), NULL), IOMMU_OK);
    assert_int_equal(t.table_pages, 1);
    if (mode != COHERENT) {
        wb_check(&t, true);
        print_message("%llu lines written back, %llu waits, %u pointers checked at publication\n",
                      (unsigned long long)wb.lines, (unsigned long long)wb.waits, wb.checks);
        assert_true(wb.checks > 100);
    }
    slpt_destroy(&t);
    assert_int_equal(IN_USE, 0);
    if (collect) {
        assert_true(releases > 10);
        assert_true(pending.count > 0); /* the destroyed tables wait too */
        slpt_release_freed(&t, &pending);
    }
    assert_int_equal(pool.in_use, 0);
#undef IN_USE
    if (mode != COHERENT) {
        wb_check_pool_clean(); /* destroy gives every page back clean: zero in memory */
        wb_free();
    }
    test_pool_free(&pool);
}

static void run_sequence(unsigned levels, uint8_t superpages, uint64_t seed, unsigned steps, enum coherence mode,
                         bool collect)
{
    run_sequence_in(&pt_vtd_second_level, levels, superpages, seed, steps, mode, collect);
}

static void test_random_3level_superpages(void **state)
{
    (void)state;
    run_sequence(3, SLPT_SUPERPAGE_2M | SLPT_SUPERPAGE_1G, 0x1234567, 3000, COHERENT, false);
}

static void test_random_4level_2m_only(void **state)
{
    (void)state;
    run_sequence(4, SLPT_SUPERPAGE_2M, 0xabcdef, 3000, COHERENT, false);
}

static void test_random_4k_only(void **state)
{
    (void)state;
    run_sequence(4, 0, 0x5eed, 1500, COHERENT, false);
}

/* The same random sequences on a unit that does not snoop: every change written back. */
static void test_random_noncoherent_deferred(void **state)
{
    (void)state;
    run_sequence(3, SLPT_SUPERPAGE_2M | SLPT_SUPERPAGE_1G, 0x1234567, 3000, NONCOHERENT_DEFERRED, false);
}

static void test_random_noncoherent(void **state)
{
    (void)state;
    run_sequence(4, SLPT_SUPERPAGE_2M, 0xabcdef, 2000, NONCOHERENT, false);
}

/* The same with the freed tables held for the caller's invalidation. */
static void test_random_collect_freed(void **state)
{
    (void)state;
    run_sequence(3, SLPT_SUPERPAGE_2M | SLPT_SUPERPAGE_1G, 0x1234567, 3000, COHERENT, true);
    run_sequence(4, 0, 0x5eed, 1500, COHERENT, true);
}

static void test_random_noncoherent_collect_freed(void **state)
{
    (void)state;
    run_sequence(3, SLPT_SUPERPAGE_2M | SLPT_SUPERPAGE_1G, 0x1234567, 3000, NONCOHERENT_DEFERRED, true);
    run_sequence(4, SLPT_SUPERPAGE_2M, 0xabcdef, 2000, NONCOHERENT, true);
}

static void test_random_noncoherent_4k_deferred(void **state)
{
    (void)state;
    run_sequence(4, 0, 0x5eed, 1500, NONCOHERENT_DEFERRED, false);
}

/* The same random sequences in Arm's stage-1 format: its leaf test (bits 1:0) and block
 * and page bits, through splits, frame lists, prepared ranges and write-backs. */
static void test_random_arm(void **state)
{
    (void)state;
    run_sequence_in(&pt_arm_stage1, 3, SLPT_SUPERPAGE_2M | SLPT_SUPERPAGE_1G, 0x1234567, 3000, COHERENT, false);
    run_sequence_in(&pt_arm_stage1, 4, SLPT_SUPERPAGE_2M, 0xabcdef, 2000, COHERENT, true);
    run_sequence_in(&pt_arm_stage1, 4, 0, 0x5eed, 1000, COHERENT, false);
}

static void test_random_arm_noncoherent(void **state)
{
    (void)state;
    run_sequence_in(&pt_arm_stage1, 3, SLPT_SUPERPAGE_2M | SLPT_SUPERPAGE_1G, 0x1234567, 3000, NONCOHERENT_DEFERRED,
                    true);
    run_sequence_in(&pt_arm_stage1, 4, SLPT_SUPERPAGE_2M, 0xabcdef, 2000, NONCOHERENT, false);
}

/* Every K from 1 to the number of allocations a map needs: the K-th fails, and nothing
 * changes. */
static void check_every_failure_point(const struct pt_format *fmt)
{
    struct page_pool pool;
    test_pool_init(&pool, 64, 0x10000000);
    struct slpt t;
    assert_int_equal(slpt_init(&t, &pool, 4, SLPT_SUPERPAGE_2M), IOMMU_OK);
    assert_int_equal(slpt_set_format(&t, fmt), IOMMU_OK);
    /* a neighbour so that some tables exist already */
    assert_int_equal(slpt_map(&t, 0x7fe00000, 0x1000, PAGE_SIZE, SLPT_READ), IOMMU_OK);
    uint32_t pages_before = pool.in_use;
    /* 4 KiB pieces at both ends around 2 MiB leaves, crossing a 1 GiB line: several tables */
    const uint64_t iova = 0x3ffff000 - 0x200000, size = 0x400000 + 0x2000;
    uint64_t start = pool.attempts;
    /* pa shares iova's offset within 2 MiB, so the middle gets 2 MiB leaves */
    const uint64_t pa = 0x80000000 + (iova & 0x1fffff);
    assert_int_equal(slpt_map(&t, iova, pa, size, SLPT_READ | SLPT_WRITE), IOMMU_OK);
    uint64_t needed = pool.attempts - start;
    assert_true(needed >= 3);
    assert_int_equal(slpt_unmap(&t, iova, size, NULL), IOMMU_OK);
    assert_int_equal(pool.in_use, pages_before);
    for (uint64_t k = 1; k <= needed; k++) {
        pool.fail_at = pool.attempts + k;
        assert_int_equal(slpt_map(&t, iova, pa, size, SLPT_READ | SLPT_WRITE), IOMMU_ENOMEM);
        pool.fail_at = 0;
        assert_int_equal(pool.in_use, pages_before);
        assert_false(slpt_lookup(&t, iova, NULL, NULL, NULL));
        assert_false(slpt_lookup(&t, iova + size - PAGE_SIZE, NULL, NULL, NULL));
        assert_true(slpt_lookup(&t, 0x7fe00000, NULL, NULL, NULL));
    }
    slpt_destroy(&t);
    test_pool_free(&pool);
}

static void test_every_failure_point(void **state)
{
    (void)state;
    for (unsigned f = 0; f < N_FORMATS; f++)
        check_every_failure_point(formats[f]);
}

static void check_leaf_choice_and_split(const struct pt_format *fmt)
{
    struct page_pool pool;
    test_pool_init(&pool, 64, 0x10000000);
    struct slpt t;
    assert_int_equal(slpt_init(&t, &pool, 3, SLPT_SUPERPAGE_2M | SLPT_SUPERPAGE_1G), IOMMU_OK);
    assert_int_equal(slpt_set_format(&t, fmt), IOMMU_OK);
    /* 1 GiB + 2 MiB + 4 KiB, all aligned: one leaf of each size */
    assert_int_equal(slpt_map(&t, 1ull << 30, 2ull << 30, (1ull << 30) + (2ull << 20) + PAGE_SIZE, SLPT_READ), IOMMU_OK);
    uint64_t pa, leaf;
    unsigned perm;
    assert_true(slpt_lookup(&t, (1ull << 30) + 12345, &pa, &perm, &leaf));
    assert_int_equal(leaf, 1ull << 30);
    assert_int_equal(pa, (2ull << 30) + 12345);
    assert_int_equal(perm, SLPT_READ);
    assert_true(slpt_lookup(&t, (2ull << 30) + 4096, NULL, NULL, &leaf));
    assert_int_equal(leaf, 2ull << 20);
    assert_true(slpt_lookup(&t, (2ull << 30) + (2ull << 20), NULL, NULL, &leaf));
    assert_int_equal(leaf, PAGE_SIZE);
    assert_int_equal(t.table_pages, 3); /* root, one 2M-level table, one 4K-level table */
    /* Unmapping one 4 KiB page in the middle of the 1 GiB leaf splits it twice. */
    struct slpt_unmapped u;
    assert_int_equal(slpt_unmap(&t, (1ull << 30) + (5ull << 20), PAGE_SIZE, &u), IOMMU_OK);
    assert_int_equal(u.bytes, PAGE_SIZE);
    assert_int_equal(u.first, (1ull << 30) + (5ull << 20));
    assert_int_equal(u.last, (1ull << 30) + (5ull << 20) + PAGE_SIZE - 1);
    assert_false(slpt_lookup(&t, (1ull << 30) + (5ull << 20), NULL, NULL, NULL));
    assert_true(slpt_lookup(&t, (1ull << 30) + (5ull << 20) + PAGE_SIZE, &pa, &perm, &leaf));
    assert_int_equal(pa, (2ull << 30) + (5ull << 20) + PAGE_SIZE);
    assert_int_equal(leaf, PAGE_SIZE);
    assert_int_equal(perm, SLPT_READ); /* the split kept the permissions */
    assert_true(slpt_lookup(&t, (1ull << 30) + (7ull << 20), NULL, NULL, &leaf));
    assert_int_equal(leaf, 2ull << 20);
    /* Overlap and bad arguments. */
    assert_int_equal(slpt_map(&t, (1ull << 30) + (100ull << 20), 0, PAGE_SIZE, SLPT_READ), IOMMU_EEXIST);
    assert_int_equal(slpt_map(&t, 0x1001, 0, PAGE_SIZE, SLPT_READ), IOMMU_EINVAL);
    assert_int_equal(slpt_map(&t, 0, 0, 0, SLPT_READ), IOMMU_EINVAL);
    assert_int_equal(slpt_map(&t, 0, 0, PAGE_SIZE, 0), IOMMU_EINVAL);
    assert_int_equal(slpt_map(&t, 0, 0, PAGE_SIZE, 4), IOMMU_EINVAL);
    assert_int_equal(slpt_map(&t, 1ull << 39, 0, PAGE_SIZE, SLPT_READ), IOMMU_EINVAL);
    assert_int_equal(slpt_map(&t, (1ull << 39) - PAGE_SIZE, 0, 2 * PAGE_SIZE, SLPT_READ), IOMMU_EINVAL);
    assert_int_equal(slpt_map(&t, 0, 1ull << 52, PAGE_SIZE, SLPT_READ), IOMMU_ERANGE);
    /* Unmapping everything frees every table but the root. */
    assert_int_equal(slpt_unmap(&t, 0, 1ull << 39, &u), IOMMU_OK);
    assert_int_equal(u.bytes, (1ull << 30) + (2ull << 20) + PAGE_SIZE - PAGE_SIZE);
    assert_int_equal(t.table_pages, 1);
    assert_int_equal(pool.in_use, 1);
    slpt_destroy(&t);
    assert_int_equal(pool.in_use, 0);
    test_pool_free(&pool);
}

static void test_leaf_choice_and_split(void **state)
{
    (void)state;
    for (unsigned f = 0; f < N_FORMATS; f++)
        check_leaf_choice_and_split(formats[f]);
}

/* Every entry on the walk to iova, from the root down to its leaf, has all of bits. */
static void assert_walk_has(const struct slpt *t, const struct page_pool *pool, uint64_t iova, uint64_t bits)
{
    const uint64_t *table = t->root;
    for (unsigned level = t->levels; level >= 1; level--) {
        uint64_t e = table[(iova >> (12 + 9 * (level - 1))) & 511];
        assert_true(e & SLPTE_R);
        if ((e & bits) != bits)
            fail_msg("level %u entry 0x%llx for 0x%llx lacks 0x%llx", level, (unsigned long long)e,
                     (unsigned long long)iova, (unsigned long long)bits);
        if (level == 1 || (e & SLPTE_PS))
            return;
        table = page_pool_va(pool, e & SLPTE_ADDR);
    }
}

/* Tables of another format (AMD nested page tables, pt_format.h) get that format's bits in
 * every entry: new tables, leaves of each size, tables made by a split, frame maps; and a
 * permission set the format cannot express is refused with nothing changed. */
static void test_entry_format(void **state)
{
    (void)state;
    struct page_pool pool;
    test_pool_init(&pool, 64, 0x10000000);
    struct slpt t;
    assert_int_equal(slpt_init(&t, &pool, 4, SLPT_SUPERPAGE_2M | SLPT_SUPERPAGE_1G), IOMMU_OK);
    assert_int_equal(slpt_set_format(&t, &pt_amd_nested), IOMMU_OK);
    /* write-only: the x86 walker would take the entry as not present */
    assert_int_equal(slpt_map(&t, 0x1000, 0x1000, PAGE_SIZE, SLPT_WRITE), IOMMU_EINVAL);
    assert_int_equal(t.table_pages, 1);
    assert_int_equal(slpt_map(&t, 0, 0, 4ull << 30, SLPT_READ | SLPT_WRITE), IOMMU_OK);
    assert_int_equal(slpt_set_format(&t, &pt_vtd_second_level), IOMMU_EINVAL); /* not once mapped */
    assert_walk_has(&t, &pool, 0x12345000, 0x4 | SLPTE_W);
    assert_int_equal(slpt_unmap(&t, 0x40201000, PAGE_SIZE, NULL), IOMMU_OK); /* splits 1G and 2M */
    assert_walk_has(&t, &pool, 0x40200000, 0x4 | SLPTE_W);
    assert_walk_has(&t, &pool, 0x40202000, 0x4 | SLPTE_W);
    assert_walk_has(&t, &pool, 0x40400000, 0x4 | SLPTE_W);
    uint64_t frames[3] = {0x500, 0x9, 0x77};
    assert_int_equal(slpt_map_frames(&t, 1ull << 40, frames, 3, SLPT_READ), IOMMU_OK);
    assert_walk_has(&t, &pool, (1ull << 40) + PAGE_SIZE, 0x4);
    assert_false(*slpt_leaf_entry(&t, (1ull << 40) + PAGE_SIZE) & SLPTE_W);
    slpt_destroy(&t);
    assert_int_equal(pool.in_use, 0);
    test_pool_free(&pool);
}

/* ---- Arm VMSAv8-64 stage 1 (pt_arm_stage1): the exact descriptors ----
 *
 * The bits are written out here from the architecture (Arm ARM D8.3), not taken from
 * pt_arm64.c, and the tables are walked by the architecture's rule (above the last level,
 * bits 1:0 = 0b11 is a table), not the engine's. */
#define ARM_OA 0x0000fffffffff000ull     /* output address, 48 bits */
#define ARM_TABLE_DESC 0x3ull            /* a table descriptor: this and its address, nothing else */
#define ARM_BLOCK_DESC 0x1ull
#define ARM_PAGE_DESC 0x3ull
#define ARM_ATTRS (0x3ull << 8 /* SH: inner shareable */ | 1ull << 10 /* AF */ | 1ull << 11 /* nG */ | \
                   1ull << 53 /* PXN */ | 1ull << 54 /* UXN */) /* AttrIndx (4:2) and NS (5) 0 */
#define ARM_AP_RW (0x1ull << 6) /* AP[2:1] = 0b01 */
#define ARM_AP_RO (0x3ull << 6) /* AP[2:1] = 0b11 */

/* The leaf we expect for pa at engine level 'level' with AP bits 'ap'. */
static uint64_t arm_leaf(uint64_t pa, unsigned level, uint64_t ap)
{
    return pa | (level == 1 ? ARM_PAGE_DESC : ARM_BLOCK_DESC) | ARM_ATTRS | ap;
}

/* Checks every table descriptor on the walk to iova (exactly an address in the pool and
 * 0b11) and returns the leaf, with its engine level, or 0 when there is none. */
static uint64_t arm_walk(const struct slpt *t, uint64_t iova, unsigned *leaf_level)
{
    const struct page_pool *p = t->pool;
    const uint64_t *table = t->root;
    for (unsigned level = t->levels;; level--) {
        uint64_t e = table[(iova >> (12 + 9 * (level - 1))) & 511];
        if (!e)
            return 0;
        if (level == 1 || (e & 3) != 3) {
            *leaf_level = level;
            return e;
        }
        uint64_t next = e & ARM_OA;
        if ((e & ~ARM_OA) != ARM_TABLE_DESC || next < p->base_pa || next - p->base_pa >= (uint64_t)p->pages * PAGE_SIZE)
            fail_msg("level %u table descriptor 0x%016llx for 0x%llx is not a pool page's address | 0b11", level,
                     (unsigned long long)e, (unsigned long long)iova);
        table = page_pool_va(p, next);
    }
}

/* The leaf translating iova is exactly arm_leaf(pa, level, ap). */
static void assert_arm_leaf(const struct slpt *t, uint64_t iova, uint64_t pa, unsigned level, uint64_t ap)
{
    unsigned at = 0;
    uint64_t e = arm_walk(t, iova, &at), want = arm_leaf(pa, level, ap);
    if (e != want || at != level)
        fail_msg("0x%llx: level %u leaf 0x%016llx, want level %u leaf 0x%016llx", (unsigned long long)iova, at,
                 (unsigned long long)e, level, (unsigned long long)want);
}

static void assert_dump_has(const struct slpt *t, const char *line)
{
    struct mem_sink out;
    mem_sink_init(&out);
    slpt_dump(t, &out.sink);
    if (!strstr(out.buf, line))
        fail_msg("dump lacks \"%s\":\n%s", line, out.buf);
    mem_sink_free(&out);
}

/* Pages, 2 MiB and 1 GiB blocks, read/write and read-only, the table descriptors above
 * them, what lookup and dump say of them, and what the format refuses. */
static void test_arm_descriptors(void **state)
{
    (void)state;
    struct page_pool pool;
    test_pool_init(&pool, 64, 0x10000000);
    struct slpt t;
    assert_int_equal(slpt_init(&t, &pool, 4, SLPT_SUPERPAGE_2M | SLPT_SUPERPAGE_1G), IOMMU_OK);
    assert_int_equal(slpt_set_format(&t, &pt_arm_stage1), IOMMU_OK);
    /* Write-only: a valid stage-1 leaf is always readable. Refused, nothing allocated. */
    uint64_t attempts = pool.attempts, frame = 0x9;
    assert_int_equal(slpt_map(&t, 0x1000, 0x1000, PAGE_SIZE, SLPT_WRITE), IOMMU_EINVAL);
    assert_int_equal(slpt_map_frames(&t, 0x1000, &frame, 1, SLPT_WRITE), IOMMU_EINVAL);
    assert_int_equal(pool.attempts, attempts);
    assert_int_equal(t.table_pages, 1);

    /* 1 GiB + 2 MiB + 4 KiB read/write: a block at the architecture's level 1, one at its
     * level 2, a page at its level 3. */
    const uint64_t rw = 1ull << 30, rw_pa = 3ull << 30;
    assert_int_equal(slpt_map(&t, rw, rw_pa, (1ull << 30) + (2ull << 20) + PAGE_SIZE, SLPT_READ | SLPT_WRITE),
                     IOMMU_OK);
    assert_arm_leaf(&t, rw + 0x12345, rw_pa, 3, ARM_AP_RW);
    assert_arm_leaf(&t, rw + (1ull << 30), rw_pa + (1ull << 30), 2, ARM_AP_RW);
    assert_arm_leaf(&t, rw + (1ull << 30) + (2ull << 20), rw_pa + (1ull << 30) + (2ull << 20), 1, ARM_AP_RW);
    /* The same sizes read-only. */
    const uint64_t ro = 8ull << 30, ro_pa = 5ull << 30;
    assert_int_equal(slpt_map(&t, ro, ro_pa, (1ull << 30) + (2ull << 20) + PAGE_SIZE, SLPT_READ), IOMMU_OK);
    assert_arm_leaf(&t, ro, ro_pa, 3, ARM_AP_RO);
    assert_arm_leaf(&t, ro + (1ull << 30) + 0x1000, ro_pa + (1ull << 30), 2, ARM_AP_RO);
    assert_arm_leaf(&t, ro + (1ull << 30) + (2ull << 20), ro_pa + (1ull << 30) + (2ull << 20), 1, ARM_AP_RO);
    /* The root's entry for both is a table descriptor, and so is every entry above a leaf
     * (arm_walk checked them); no entry holds anything else. */
    assert_int_equal(t.root[0] & ~ARM_OA, ARM_TABLE_DESC);

    /* Lookup gives each leaf's permissions and size; dump shows them. */
    uint64_t pa, size;
    unsigned perm;
    assert_true(slpt_lookup(&t, rw + 0x12345, &pa, &perm, &size));
    assert_int_equal(pa, rw_pa + 0x12345);
    assert_int_equal(perm, SLPT_READ | SLPT_WRITE);
    assert_int_equal(size, 1ull << 30);
    assert_true(slpt_lookup(&t, ro + (1ull << 30) + (2ull << 20) + 0x10, &pa, &perm, &size));
    assert_int_equal(pa, ro_pa + (1ull << 30) + (2ull << 20) + 0x10);
    assert_int_equal(perm, SLPT_READ);
    assert_int_equal(size, PAGE_SIZE);
    assert_true(slpt_lookup(&t, ro + (1ull << 30), NULL, &perm, &size));
    assert_int_equal(perm, SLPT_READ);
    assert_int_equal(size, 2ull << 20);
    assert_dump_has(&t, "L3[  1] 0x40000000-0x7fffffff -> 0xc0000000 RW superpage\n");
    assert_dump_has(&t, "L2[  0] 0x80000000-0x801fffff -> 0x100000000 RW superpage\n");
    assert_dump_has(&t, "L1[  0] 0x80200000-0x80200fff -> 0x100200000 RW\n");
    assert_dump_has(&t, "L3[  8] 0x200000000-0x23fffffff -> 0x140000000 R- superpage\n");
    assert_dump_has(&t, "L2[  0] 0x240000000-0x2401fffff -> 0x180000000 R- superpage\n");
    assert_dump_has(&t, "L1[  0] 0x240200000-0x240200fff -> 0x180200000 R-\n");

    /* Output addresses: 48 bits. The last page below 2^48 maps, with nothing in bits
     * 51:48; at or above 2^48 a map is refused, of a range or of a frame list, with nothing
     * left behind. */
    const uint64_t top = (1ull << 48) - PAGE_SIZE, far = 1ull << 40;
    uint32_t pages = t.table_pages;
    attempts = pool.attempts;
    assert_int_equal(slpt_map(&t, far, 1ull << 48, PAGE_SIZE, SLPT_READ), IOMMU_ERANGE);
    assert_int_equal(slpt_map(&t, far, top, 2 * PAGE_SIZE, SLPT_READ), IOMMU_ERANGE);
    assert_int_equal(slpt_map(&t, far, 1ull << 50, PAGE_SIZE, SLPT_READ | SLPT_WRITE), IOMMU_ERANGE);
    assert_int_equal(pool.attempts, attempts);
    uint64_t frames[2] = {0x1234, 1ull << 36};
    assert_int_equal(slpt_map_frames(&t, far, frames, 2, SLPT_READ), IOMMU_ERANGE);
    assert_int_equal(t.table_pages, pages);
    assert_false(slpt_lookup(&t, far, NULL, NULL, NULL));
    frames[1] = (1ull << 36) - 1;
    assert_int_equal(slpt_map_frames(&t, far, frames, 2, SLPT_READ | SLPT_WRITE), IOMMU_OK);
    assert_arm_leaf(&t, far + PAGE_SIZE, top, 1, ARM_AP_RW);
    assert_int_equal(slpt_unmap(&t, far, 2 * PAGE_SIZE, NULL), IOMMU_OK);
    assert_int_equal(slpt_map(&t, far, top, PAGE_SIZE, SLPT_READ), IOMMU_OK);
    assert_arm_leaf(&t, far, top, 1, ARM_AP_RO);
    assert_int_equal(slpt_set_format(&t, &pt_arm_stage1), IOMMU_EINVAL); /* not once mapped */
    slpt_destroy(&t);
    assert_int_equal(pool.in_use, 0);
    test_pool_free(&pool);
}

/* Stage 2 (Arm ARM D8.3, stage-2 attributes), written out here from the architecture:
 * MemAttr 0b1111 (Normal write-back), SH inner shareable, AF, no nG, executable; S2AP bit 6
 * read, bit 7 write. */
#define ARM_S2_ATTRS (0xfull << 2 /* MemAttr */ | 0x3ull << 8 /* SH */ | 1ull << 10 /* AF */)
#define ARM_S2AP_R (1ull << 6)
#define ARM_S2AP_W (1ull << 7)

static uint64_t arm_s2_leaf(uint64_t pa, unsigned level, uint64_t s2ap)
{
    return pa | (level == 1 ? ARM_PAGE_DESC : ARM_BLOCK_DESC) | ARM_S2_ATTRS | s2ap;
}

static void assert_arm_s2_leaf(const struct slpt *t, uint64_t ipa, uint64_t pa, unsigned level, uint64_t s2ap)
{
    unsigned at = 0;
    uint64_t e = arm_walk(t, ipa, &at), want = arm_s2_leaf(pa, level, s2ap);
    if (e != want || at != level)
        fail_msg("0x%llx: level %u leaf 0x%016llx, want level %u leaf 0x%016llx", (unsigned long long)ipa, at,
                 (unsigned long long)e, level, (unsigned long long)want);
}

/* Stage-2 leaves of each size and every permission set (write-only too: stage 2 can say
 * it), the table descriptors above them, lookup's permissions, and a split that keeps the
 * block's attributes in its pages. */
static void test_arm_stage2_descriptors(void **state)
{
    (void)state;
    struct page_pool pool;
    test_pool_init(&pool, 64, 0x10000000);
    struct slpt t;
    assert_int_equal(slpt_init(&t, &pool, 4, SLPT_SUPERPAGE_2M | SLPT_SUPERPAGE_1G), IOMMU_OK);
    assert_int_equal(slpt_set_format(&t, &pt_arm_stage2), IOMMU_OK);
    const uint64_t size = (1ull << 30) + (2ull << 20) + PAGE_SIZE;
    static const struct {
        unsigned perm;
        uint64_t s2ap;
    } sets[] = {{SLPT_READ, ARM_S2AP_R}, {SLPT_WRITE, ARM_S2AP_W}, {SLPT_READ | SLPT_WRITE, ARM_S2AP_R | ARM_S2AP_W}};
    for (unsigned i = 0; i < 3; i++) {
        uint64_t ipa = (4ull * i + 1) << 30, pa = (4ull * i + 2) << 30;
        assert_int_equal(slpt_map(&t, ipa, pa, size, sets[i].perm), IOMMU_OK);
        assert_arm_s2_leaf(&t, ipa + 0x10, pa, 3, sets[i].s2ap);
        assert_arm_s2_leaf(&t, ipa + (1ull << 30), pa + (1ull << 30), 2, sets[i].s2ap);
        assert_arm_s2_leaf(&t, ipa + (1ull << 30) + (2ull << 20), pa + (1ull << 30) + (2ull << 20), 1, sets[i].s2ap);
        unsigned perm = 0;
        uint64_t out = 0;
        assert_true(slpt_lookup(&t, ipa + (1ull << 30) + 0x123, &out, &perm, NULL));
        assert_int_equal(out, pa + (1ull << 30) + 0x123);
        assert_int_equal(perm, sets[i].perm);
    }
    assert_int_equal(t.root[0] & ~ARM_OA, ARM_TABLE_DESC);
    /* Unmapping one page out of the read/write 1 GiB block: the rest stays, as pages and
     * blocks with the same attributes and permissions. */
    const uint64_t ipa = 9ull << 30, pa = 10ull << 30;
    assert_int_equal(slpt_unmap(&t, ipa + (3ull << 20), PAGE_SIZE, NULL), IOMMU_OK);
    assert_false(slpt_lookup(&t, ipa + (3ull << 20), NULL, NULL, NULL));
    assert_arm_s2_leaf(&t, ipa + (3ull << 20) + PAGE_SIZE, pa + (3ull << 20) + PAGE_SIZE, 1, ARM_S2AP_R | ARM_S2AP_W);
    assert_arm_s2_leaf(&t, ipa + (4ull << 20), pa + (4ull << 20), 2, ARM_S2AP_R | ARM_S2AP_W);
    /* 48-bit output, as in stage 1. */
    assert_int_equal(slpt_map(&t, 1ull << 40, 1ull << 48, PAGE_SIZE, SLPT_READ), IOMMU_ERANGE);
    slpt_destroy(&t);
    assert_int_equal(pool.in_use, 0);
    test_pool_free(&pool);
}

/* An unmap that cuts blocks: the tables the split makes hold every other translation of the
 * block with the block's attributes and permissions, as 2 MiB blocks and 4 KiB pages, and
 * point to them with plain table descriptors. */
static void test_arm_split_keeps_attributes(void **state)
{
    (void)state;
    struct page_pool pool;
    test_pool_init(&pool, 64, 0x10000000);
    struct slpt t;
    assert_int_equal(slpt_init(&t, &pool, 3, SLPT_SUPERPAGE_2M | SLPT_SUPERPAGE_1G), IOMMU_OK);
    assert_int_equal(slpt_set_format(&t, &pt_arm_stage1), IOMMU_OK);
    const uint64_t pa = 7ull << 30;
    for (unsigned round = 0; round < 2; round++) {
        unsigned perm = round ? SLPT_READ | SLPT_WRITE : SLPT_READ;
        uint64_t ap = round ? ARM_AP_RW : ARM_AP_RO, iova = (1ull + round) << 30;
        assert_int_equal(slpt_map(&t, iova, pa, 1ull << 30, perm), IOMMU_OK);
        assert_arm_leaf(&t, iova, pa, 3, ap);
        /* cut one page out of the block's 3rd 2 MiB: 1 GiB -> 512 x 2 MiB -> 512 x 4 KiB */
        const uint64_t cut = iova + (2ull << 21) + 5 * PAGE_SIZE;
        struct slpt_unmapped u;
        assert_int_equal(slpt_unmap(&t, cut, PAGE_SIZE, &u), IOMMU_OK);
        assert_int_equal(u.bytes, PAGE_SIZE);
        assert_int_equal(u.first, cut);
        for (unsigned i = 0; i < 512; i++) {
            uint64_t a = iova + ((uint64_t)i << 21);
            if (i != 2) {
                assert_arm_leaf(&t, a, pa + ((uint64_t)i << 21), 2, ap);
                continue;
            }
            for (unsigned k = 0; k < 512; k++) {
                uint64_t b = a + (uint64_t)k * PAGE_SIZE;
                unsigned level;
                if (b == cut)
                    assert_int_equal(arm_walk(&t, b, &level), 0);
                else
                    assert_arm_leaf(&t, b, pa + (b - iova), 1, ap);
            }
        }
        unsigned got;
        assert_true(slpt_lookup(&t, cut + PAGE_SIZE, NULL, &got, NULL));
        assert_int_equal(got, perm);
        assert_true(slpt_lookup(&t, iova + (300ull << 21), NULL, &got, NULL));
        assert_int_equal(got, perm);
        assert_dump_has(&t, round ? "L1[  6] 0x80406000-0x80406fff -> 0x1c0406000 RW\n"
                                  : "L1[  6] 0x40406000-0x40406fff -> 0x1c0406000 R-\n");
    }
    slpt_destroy(&t);
    assert_int_equal(pool.in_use, 0);
    test_pool_free(&pool);
}

/* slpt_set_format takes only a format the engine can write: one of the leaf tests it knows,
 * permission sets it can tell apart, nothing but the address in bits 51:12, and tables that
 * fit the address field. */
static void test_set_format_checks(void **state)
{
    (void)state;
    struct page_pool pool;
    test_pool_init(&pool, 16, 0x10000000);
    struct slpt t;
    assert_int_equal(slpt_init(&t, &pool, 3, SLPT_SUPERPAGE_2M), IOMMU_OK);
    struct pt_format f = pt_arm_stage1;
    f.leaf_value = 0x3; /* a table descriptor would pass for a block */
    assert_int_equal(slpt_set_format(&t, &f), IOMMU_EINVAL);
    f = pt_arm_stage1;
    f.leaf_mask = 0x2; /* a test the engine was not compiled for */
    f.leaf_value = 0;
    assert_int_equal(slpt_set_format(&t, &f), IOMMU_EINVAL);
    f = pt_arm_stage1;
    f.perm[SLPT_READ] = f.perm[SLPT_READ | SLPT_WRITE]; /* read-only and read/write the same */
    assert_int_equal(slpt_set_format(&t, &f), IOMMU_EINVAL);
    f = pt_arm_stage1;
    f.page |= 1ull << 48; /* a bit the engine would read as part of the address */
    assert_int_equal(slpt_set_format(&t, &f), IOMMU_EINVAL);
    f = pt_arm_stage1;
    f.address = 0x0000fffffffff000ull & ~(1ull << 20); /* not one field */
    assert_int_equal(slpt_set_format(&t, &f), IOMMU_EINVAL);
    f = pt_arm_stage1;
    f.perm[SLPT_READ] |= ARM_ATTRS; /* permission bits that every leaf has anyway */
    assert_int_equal(slpt_set_format(&t, &f), IOMMU_EINVAL);
    assert_int_equal(t.fmt.leaf_mask, pt_vtd_second_level.leaf_mask); /* nothing changed */
    assert_int_equal(slpt_set_format(&t, &pt_arm_stage1), IOMMU_OK);
    assert_int_equal(slpt_set_format(&t, &pt_vtd_second_level), IOMMU_OK); /* still empty */
    slpt_destroy(&t);
    test_pool_free(&pool);
    /* Tables at or above 2^48 cannot be pointed to in Arm's format. */
    test_pool_init(&pool, 16, 1ull << 48);
    assert_int_equal(slpt_init(&t, &pool, 3, SLPT_SUPERPAGE_2M), IOMMU_OK);
    assert_int_equal(slpt_set_format(&t, &pt_arm_stage1), IOMMU_EINVAL);
    assert_int_equal(slpt_set_format(&t, &pt_amd_nested), IOMMU_OK);
    slpt_destroy(&t);
    test_pool_free(&pool);
}

static void check_prepared_range(const struct pt_format *fmt)
{
    struct page_pool pool;
    test_pool_init(&pool, 256, 0x10000000);
    struct slpt t;
    assert_int_equal(slpt_init(&t, &pool, 4, SLPT_SUPERPAGE_2M | SLPT_SUPERPAGE_1G), IOMMU_OK);
    assert_int_equal(slpt_set_format(&t, fmt), IOMMU_OK);
    const uint64_t base = 0x40000000, size = 64ull << 20; /* 32 tables of 4 KiB entries */
    assert_int_equal(slpt_prepare(&t, base, size), IOMMU_OK);
    assert_int_equal(t.table_pages, 1 + 1 + 1 + 32);
    uint64_t attempts = pool.attempts;
    uint32_t in_use = pool.in_use;
    /* 2 MiB-aligned: would be a superpage elsewhere; here 4 KiB leaves, no allocation */
    assert_int_equal(slpt_map(&t, base + (4ull << 20), 0x80000000, 4ull << 20, SLPT_READ | SLPT_WRITE), IOMMU_OK);
    uint64_t leaf;
    assert_true(slpt_lookup(&t, base + (5ull << 20), NULL, NULL, &leaf));
    assert_int_equal(leaf, PAGE_SIZE);
    assert_int_equal(slpt_unmap(&t, base, size, NULL), IOMMU_OK);
    assert_int_equal(pool.attempts, attempts);
    assert_int_equal(pool.in_use, in_use);
    /* A second prepare of an overlapping range; one unprepare keeps the overlap. */
    assert_int_equal(slpt_prepare(&t, base + (32ull << 20), 64ull << 20), IOMMU_OK);
    slpt_unprepare(&t, base, size);
    assert_int_equal(t.table_pages, 1 + 1 + 1 + 32);
    struct mem_sink out;
    mem_sink_init(&out);
    slpt_dump(&t, &out.sink);
    assert_non_null(strstr(out.buf, "4-level table at 0x10"));
    assert_non_null(strstr(out.buf, "L2[ 16] 0x42000000-0x421fffff table at 0x"));
    assert_non_null(strstr(out.buf, ", 0 entries, pinned\n"));
    mem_sink_free(&out);
    slpt_unprepare(&t, base + (32ull << 20), 64ull << 20);
    assert_int_equal(t.table_pages, 1);
    /* A superpage in the way: refused, nothing allocated. */
    assert_int_equal(slpt_map(&t, 0x200000, 0x200000, 2ull << 20, SLPT_READ), IOMMU_OK);
    in_use = pool.in_use;
    assert_int_equal(slpt_prepare(&t, 0, 8ull << 20), IOMMU_EEXIST);
    assert_int_equal(pool.in_use, in_use);
    mem_sink_init(&out);
    slpt_dump(&t, &out.sink);
    assert_non_null(strstr(out.buf, "L2[  1] 0x200000-0x3fffff -> 0x200000 R- superpage\n"));
    mem_sink_free(&out);
    slpt_destroy(&t);
    assert_int_equal(pool.in_use, 0);
    test_pool_free(&pool);
}

static void test_prepared_range(void **state)
{
    (void)state;
    for (unsigned f = 0; f < N_FORMATS; f++)
        check_prepared_range(formats[f]);
}

/* Frame-list maps: every failure point leaves nothing behind. */
static void check_frames_every_failure_point(const struct pt_format *fmt)
{
    struct page_pool pool;
    test_pool_init(&pool, 64, 0x10000000);
    struct slpt t;
    assert_int_equal(slpt_init(&t, &pool, 3, SLPT_SUPERPAGE_2M), IOMMU_OK);
    assert_int_equal(slpt_set_format(&t, fmt), IOMMU_OK);
    static uint64_t frames[1536];
    for (unsigned i = 0; i < 1536; i++) /* 512 scattered, 512 contiguous and 2M-aligned, 512 scattered */
        frames[i] = i >= 512 && i < 1024 ? 0x40000 + (i - 512) : 0x90000 + 7 * i;
    const uint64_t iova = 0x3fe00000; /* the three parts fall in three 2 MiB slots across 1 GiB */
    uint64_t start = pool.attempts;
    assert_int_equal(slpt_map_frames(&t, iova, frames, 1536, SLPT_READ), IOMMU_OK);
    uint64_t needed = pool.attempts - start;
    uint64_t pa, leaf;
    assert_true(slpt_lookup(&t, iova + (512u << PAGE_SHIFT), &pa, NULL, &leaf));
    assert_int_equal(leaf, 2u << 20);
    assert_int_equal(pa, 0x40000000);
    assert_true(slpt_lookup(&t, iova + (1100u << PAGE_SHIFT), &pa, NULL, &leaf));
    assert_int_equal(pa, (0x90000 + 7 * 1100ull) << PAGE_SHIFT);
    assert_int_equal(slpt_unmap(&t, iova, 1536u << PAGE_SHIFT, NULL), IOMMU_OK);
    assert_int_equal(t.table_pages, 1);
    assert_true(needed >= 4);
    for (uint64_t k = 1; k <= needed; k++) {
        pool.fail_at = pool.attempts + k;
        assert_int_equal(slpt_map_frames(&t, iova, frames, 1536, SLPT_READ), IOMMU_ENOMEM);
        pool.fail_at = 0;
        assert_int_equal(t.table_pages, 1);
        assert_int_equal(pool.in_use, 1);
    }
    assert_int_equal(slpt_map_frames(&t, iova, frames, 0, SLPT_READ), IOMMU_EINVAL);
    frames[3] = 1ull << 41; /* beyond 52 address bits */
    assert_int_equal(slpt_map_frames(&t, iova, frames, 8, SLPT_READ), IOMMU_ERANGE);
    slpt_destroy(&t);
    test_pool_free(&pool);
}

static void test_frames_every_failure_point(void **state)
{
    (void)state;
    for (unsigned f = 0; f < N_FORMATS; f++)
        check_frames_every_failure_point(formats[f]);
}

/* On a unit that does not snoop, each operation writes back the lines it changed and no
 * others (at most one more): new tables come clean from the pool, not written back whole. */
static uint8_t *cpu_before;

static void cpu_snapshot(const struct page_pool *p)
{
    memcpy(cpu_before, p->base_va, region_bytes(p));
}

/* Lines of table pages (metadata left out) that differ from the snapshot. */
static uint64_t cpu_changed_lines(const struct page_pool *p)
{
    uint64_t n = 0;
    for (size_t off = (size_t)p->first_usable * PAGE_SIZE; off < region_bytes(p); off += LINE)
        n += memcmp(cpu_before + off, p->base_va + off, LINE) != 0;
    return n;
}

struct op_cost {
    uint64_t written, changed;
};

static struct op_cost measure_op(struct slpt *t, int kind, uint64_t iova, uint64_t size, uint64_t pa)
{
    cpu_snapshot(t->pool);
    uint64_t lines = wb.lines;
    if (kind == 0)
        assert_int_equal(slpt_map(t, iova, pa, size, SLPT_READ | SLPT_WRITE), IOMMU_OK);
    else
        assert_int_equal(slpt_unmap(t, iova, size, NULL), IOMMU_OK);
    wb_check(t, false);
    struct op_cost c = {wb.lines - lines, cpu_changed_lines(t->pool)};
    if (c.written > c.changed + 1)
        fail_msg("%s of 0x%llx bytes at 0x%llx: %llu lines written back, %llu changed", kind ? "unmap" : "map",
                 (unsigned long long)size, (unsigned long long)iova, (unsigned long long)c.written,
                 (unsigned long long)c.changed);
    return c;
}

static void test_noncoherent_writes_back_only_changes(void **state)
{
    (void)state;
    struct page_pool pool;
    test_pool_init(&pool, 512, 1ull << 44);
    cpu_before = malloc(region_bytes(&pool));
    assert_non_null(cpu_before);
    wb_init(&pool);
    struct slpt t;
    assert_int_equal(slpt_init(&t, &pool, 3, SLPT_SUPERPAGE_2M | SLPT_SUPERPAGE_1G), IOMMU_OK);
    wb_attach(&t, true);
    rng_state = 0x77;
    for (unsigned i = 0; i < 64; i++) /* a populated lower half */
        slpt_map(&t, (rnd() % (1ull << 26)) << PAGE_SHIFT, 0x1000, PAGE_SIZE, SLPT_READ);
    /* Pages the pool has never seen written back cost a whole write-back, once. */
    uint64_t lines = wb.lines;
    assert_int_equal(slpt_map(&t, 1ull << 38, 0x1000, PAGE_SIZE, SLPT_READ), IOMMU_OK);
    assert_int_equal(slpt_unmap(&t, 1ull << 38, PAGE_SIZE, NULL), IOMMU_OK);
    uint64_t first = wb.lines - lines;
    /* Then single pages at random IOVAs of the upper half: two new tables each. */
    struct op_cost total = {0, 0};
    for (unsigned i = 0; i < 200; i++) {
        uint64_t iova = (1ull << 38) + ((rnd() % (1ull << 26)) << PAGE_SHIFT);
        struct op_cost m = measure_op(&t, 0, iova, PAGE_SIZE, 0x5000);
        struct op_cost u = measure_op(&t, 1, iova, PAGE_SIZE, 0);
        assert_int_equal(m.written, 3); /* the root's entry, the new table's entry, the leaf */
        assert_int_equal(u.written, 3);
        total.written += m.written + u.written;
        total.changed += m.changed + u.changed;
    }
    /* 256 pages in a table of their own, 2 MiB leaves, a sparse unmap, a split. */
    measure_op(&t, 0, (3ull << 30) + (5ull << 20), 1ull << 20, 0x80000000);
    measure_op(&t, 1, (3ull << 30) + (5ull << 20), 1ull << 20, 0);
    measure_op(&t, 0, 2ull << 30, 512ull << 20, 1ull << 30);
    measure_op(&t, 1, (2ull << 30) + (6ull << 20) + 0x3000, PAGE_SIZE, 0); /* splits a 2 MiB leaf */
    measure_op(&t, 1, 2ull << 30, 512ull << 20, 0);
    for (unsigned i = 0; i < 16; i++)
        measure_op(&t, 0, (5ull << 30) + i * 0x9000, PAGE_SIZE, 0x7000);
    struct op_cost sparse = measure_op(&t, 1, 5ull << 30, 1ull << 20, 0);
    assert_int_equal(sparse.written, 16 + 1 + 1); /* the leaves' lines, the table's entry, the root's */
    print_message("first map and unmap: %llu lines; then 200 single-page maps and unmaps: %llu lines written back, "
                  "%llu changed\n", (unsigned long long)first, (unsigned long long)total.written,
                  (unsigned long long)total.changed);
    assert_int_equal(total.written, total.changed);
    /* Destroyed with mappings in place: its pages go back clean, zero in memory. */
    assert_int_equal(slpt_map(&t, 7ull << 30, 0x80000000, 3ull << 20, SLPT_READ), IOMMU_OK);
    slpt_destroy(&t);
    assert_int_equal(pool.in_use, 0);
    wb_check_pool_clean();
    wb_free();
    free(cpu_before);
    test_pool_free(&pool);
}

/* A domain of a unit that snoops and one of a unit that does not, sharing one pool: pages
 * the first gives back are zero only in the caches, so the second writes them back whole
 * before publishing them; its own pages go back clean and are not written back again. */
static void test_noncoherent_shares_pool(void **state)
{
    (void)state;
    struct page_pool pool;
    test_pool_init(&pool, 256, 1ull << 44);
    wb_init(&pool);
    struct slpt c, n;
    assert_int_equal(slpt_init(&c, &pool, 3, SLPT_SUPERPAGE_2M), IOMMU_OK);
    assert_int_equal(slpt_init(&n, &pool, 3, SLPT_SUPERPAGE_2M), IOMMU_OK);
    wb_attach(&n, true);
    rng_state = 0x99;
    for (unsigned round = 0; round < 20; round++) {
        uint64_t iova[8];
        for (unsigned i = 0; i < 8; i++) {
            iova[i] = (rnd() % (1ull << 27)) << PAGE_SHIFT;
            slpt_map(&c, iova[i], 0x3000, 3 * PAGE_SIZE, SLPT_READ);
        }
        for (unsigned i = 0; i < 8; i++)
            assert_int_equal(slpt_unmap(&c, iova[i], 3 * PAGE_SIZE, NULL), IOMMU_OK);
        for (unsigned i = 0; i < 8; i++) {
            assert_int_equal(slpt_map(&n, iova[i] ^ (1ull << 38), 0x3000, 3 * PAGE_SIZE, SLPT_WRITE), IOMMU_OK);
            wb_check(&n, false);
        }
        for (unsigned i = 0; i < 8; i++) {
            assert_int_equal(slpt_unmap(&n, iova[i] ^ (1ull << 38), 3 * PAGE_SIZE, NULL), IOMMU_OK);
            wb_check(&n, false);
        }
        wb_check_pool_clean();
    }
    assert_true(wb.checks > 100);
    slpt_destroy(&c);
    slpt_destroy(&n);
    wb_check_pool_clean();
    wb_free();
    test_pool_free(&pool);
}

/* The write-back is set before the first map or not at all: afterwards the tables hold
 * changes nobody wrote back. */
static void test_write_back_only_on_fresh_tables(void **state)
{
    (void)state;
    struct page_pool pool;
    test_pool_init(&pool, 64, 1ull << 44);
    wb_init(&pool);
    struct slpt t;
    assert_int_equal(slpt_init(&t, &pool, 3, SLPT_SUPERPAGE_2M), IOMMU_OK);
    assert_int_equal(slpt_map(&t, 0x200000, 0x3000, PAGE_SIZE, SLPT_READ), IOMMU_OK);
    assert_int_equal(slpt_set_write_back(&t, wb_sync, wb_wait, &wb), IOMMU_EINVAL);
    assert_null(t.sync);
    assert_int_equal(wb.lines, 0);
    assert_int_equal(slpt_unmap(&t, 0x200000, PAGE_SIZE, NULL), IOMMU_OK);
    slpt_destroy(&t);
    /* Fresh: the root is written back whole, and waited for; a second call is refused. */
    assert_int_equal(slpt_init(&t, &pool, 3, SLPT_SUPERPAGE_2M), IOMMU_OK);
    assert_int_equal(slpt_set_write_back(&t, NULL, NULL, NULL), IOMMU_EINVAL);
    assert_int_equal(slpt_set_write_back(&t, wb_sync, wb_wait, &wb), IOMMU_OK);
    assert_int_equal(wb.lines, PAGE_SIZE / LINE);
    assert_int_equal(wb.n_pending, 0);
    assert_int_equal(slpt_set_write_back(&t, wb_sync, wb_wait, &wb), IOMMU_EINVAL);
    slpt_destroy(&t);
    wb_free();
    test_pool_free(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leaf_choice_and_split),
        cmocka_unit_test(test_every_failure_point),
        cmocka_unit_test(test_prepared_range),
        cmocka_unit_test(test_entry_format),
        cmocka_unit_test(test_arm_descriptors),
        cmocka_unit_test(test_arm_stage2_descriptors),
        cmocka_unit_test(test_arm_split_keeps_attributes),
        cmocka_unit_test(test_set_format_checks),
        cmocka_unit_test(test_frames_every_failure_point),
        cmocka_unit_test(test_random_3level_superpages),
        cmocka_unit_test(test_random_4level_2m_only),
        cmocka_unit_test(test_random_4k_only),
        cmocka_unit_test(test_random_noncoherent_deferred),
        cmocka_unit_test(test_random_noncoherent),
        cmocka_unit_test(test_random_noncoherent_4k_deferred),
        cmocka_unit_test(test_random_arm),
        cmocka_unit_test(test_random_arm_noncoherent),
        cmocka_unit_test(test_random_collect_freed),
        cmocka_unit_test(test_random_noncoherent_collect_freed),
        cmocka_unit_test(test_noncoherent_writes_back_only_changes),
        cmocka_unit_test(test_noncoherent_shares_pool),
        cmocka_unit_test(test_write_back_only_on_fresh_tables),
    };
    return cmocka_run_group_tests_name("slpt", tests, NULL, NULL);
}
