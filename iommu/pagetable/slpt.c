#include "iommu/slpt.h"

#define ENTRIES 512u

static unsigned level_shift(unsigned level)
{
    return 12 + 9 * (level - 1);
}

static unsigned index_at(uint64_t iova, unsigned level)
{
    return (iova >> level_shift(level)) & (ENTRIES - 1);
}

/* Where every format keeps an entry's address (pt_format.h, checked by slpt_set_format): a
 * constant, so the loops that read entries while they store others need not reload it. A
 * format with a narrower address field has nothing else in these bits. */
#define ENTRY_ADDRESS 0x000ffffffffff000ull

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* The tests for a leaf above level 1 (pt_format.h's leaf_mask and leaf_value) the engine
 * knows, one per layout: x86's page-size bit (7) set, Arm's descriptor type (bits 1:0)
 * 0b01, a block. The functions with the hot loops are compiled once per layout with the
 * test a constant (function_x86, function_arm: the public entries choose by the table's
 * format), as fast as when the engine knew x86's layout alone. Read from the table's
 * struct instead, the test would be reloaded after every store into a table (which may
 * alias it), and kept in registers it takes two that the loops need: with it in locals,
 * map_256x4k and map_256x2m of iommu-bench took 20 to 25 % longer (docs/benchmark.md).
 * The rest of the engine takes the layout as a plain argument. */
enum layout { LAYOUT_X86, LAYOUT_ARM };
#define X86_LEAF_MASK 0x80ull /* page size */
#define X86_LEAF_VALUE 0x80ull
#define ARM_LEAF_MASK 0x3ull  /* descriptor type */
#define ARM_LEAF_VALUE 0x1ull /* block */

static ALWAYS_INLINE bool is_leaf(uint64_t e, unsigned level, enum layout L)
{
    if (L == LAYOUT_ARM)
        return level == 1 || (e & ARM_LEAF_MASK) == ARM_LEAF_VALUE;
    return level == 1 || (e & X86_LEAF_MASK) == X86_LEAF_VALUE;
}

/* slpt_set_format took only a format with one of these tests. */
static enum layout layout_of(const struct slpt *t)
{
    return t->fmt.leaf_mask == ARM_LEAF_MASK ? LAYOUT_ARM : LAYOUT_X86;
}

static uint64_t *table_va(const struct slpt *t, uint64_t e)
{
    return page_pool_va(t->pool, e & ENTRY_ADDRESS);
}

/* The bits that tell a leaf's permission set: every set's bits together. */
static uint64_t perm_mask(const struct pt_format *f)
{
    return f->perm[SLPT_READ] | f->perm[SLPT_WRITE] | f->perm[SLPT_READ | SLPT_WRITE];
}

/* The permission set of a leaf (SLPT_READ | SLPT_WRITE), 0 if its bits match none. */
static unsigned perm_of(const struct slpt *t, uint64_t e)
{
    uint64_t bits = e & perm_mask(&t->fmt);
    for (unsigned p = SLPT_READ; p <= (SLPT_READ | SLPT_WRITE); p++)
        if ((t->fmt.perms >> p & 1) && t->fmt.perm[p] == bits)
            return p;
    return 0;
}

static void sync(struct slpt *t, const void *va, size_t len)
{
    if (t->sync && len) {
        t->sync(t->sync_ctx, va, len);
        t->sync_pending = t->sync_wait != NULL;
    }
}

/* Waits for the write-backs started so far, then gives the pool the empty tables that
 * waited for them. */
static void sync_done(struct slpt *t)
{
    if (!t->sync_pending)
        return;
    t->sync_wait(t->sync_ctx);
    t->sync_pending = false;
    for (unsigned i = 0; i < t->deferred_count; i++)
        page_pool_free_clean(t->pool, t->deferred[i]);
    t->deferred_count = 0;
}

/* The cache line of an entry, and the lines of a table as bits of a mask: a table is 64
 * lines of 8 entries. */
#define LINE_ENTRIES 8u

static uint64_t line_bit(unsigned index)
{
    return 1ull << (index / LINE_ENTRIES);
}

/* The lines of entries [first, last] (last >= first). */
static uint64_t line_bits(unsigned first, unsigned last)
{
    unsigned lo = first / LINE_ENTRIES, hi = last / LINE_ENTRIES;
    return (hi == 63 ? ~0ull : (1ull << (hi + 1)) - 1) & ~((1ull << lo) - 1);
}

/* Writes back the lines of 'table' set in mask, one call per run of neighbouring lines. */
static void sync_lines(struct slpt *t, const uint64_t *table, uint64_t mask)
{
    while (mask) {
        unsigned lo = (unsigned)__builtin_ctzll(mask);
        uint64_t run = mask >> lo;
        unsigned n = run == ~0ull >> lo ? 64 - lo : (unsigned)__builtin_ctzll(~run);
        sync(t, table + lo * LINE_ENTRIES, (size_t)n * LINE_ENTRIES * sizeof *table);
        mask = n + lo >= 64 ? 0 : mask & ~(((1ull << n) - 1) << lo);
    }
}

/* Writes one entry the hardware may walk. */
static void set_entry(struct slpt *t, uint64_t *e, uint64_t value)
{
    *e = value;
    sync(t, e, sizeof *e);
}

/* Counts a change in one table's non-zero entries. */
static void count_entries(const struct slpt *t, uint64_t *table, int delta)
{
    struct page_meta *m = page_pool_meta(t->pool, table);
    m->entries = (uint16_t)(m->entries + delta);
}

/* A new, empty table. When the unit does not snoop, its zeroes must be in memory before a
 * pointer to it is: written back now unless the pool knows it clean, which it is when it
 * last left a table of an engine that wrote back every change (free_empty_table). */
static uint64_t *new_table(struct slpt *t, uint64_t *pa)
{
    bool clean = false;
    uint64_t *table = t->sync ? page_pool_alloc_clean(t->pool, pa, &clean) : page_pool_alloc(t->pool, pa);
    if (table) {
        t->table_pages++;
        if (!clean && t->sync) {
            sync(t, table, PAGE_SIZE);
            sync_done(t);
        }
    }
    return table;
}

/* Frees a table that holds nothing (so it goes back to the pool as it must: zeroed). With a
 * write-back, every change to it has been written back, so memory holds its zeroes too
 * once the write-backs started are done: until then it waits in t->deferred. */
static void free_empty_table(struct slpt *t, uint64_t *table)
{
    t->table_pages--;
    if (t->freed) { /* until the caller's invalidation: see slpt_release_freed */
        page_list_add(t->pool, t->freed, table);
        return;
    }
    if (!t->sync) {
        page_pool_free_zeroed(t->pool, table);
        return;
    }
    if (t->sync_pending && t->deferred_count == sizeof t->deferred / sizeof t->deferred[0])
        sync_done(t);
    if (t->sync_pending)
        t->deferred[t->deferred_count++] = table;
    else
        page_pool_free_clean(t->pool, table);
}

enum iommu_status slpt_init(struct slpt *t, struct page_pool *pool, unsigned levels, uint8_t superpages)
{
    if (levels < 3 || levels > 5)
        return IOMMU_EINVAL;
    *t = (struct slpt){.pool = pool, .levels = levels,
                       .superpages = superpages & (SLPT_SUPERPAGE_2M | SLPT_SUPERPAGE_1G),
                       .fmt = pt_vtd_second_level};
    t->root = new_table(t, &t->root_pa);
    return t->root ? IOMMU_OK : IOMMU_ENOMEM;
}

/* A format the engine can write (pt_format.h): an address field of bits 12 and up within
 * ENTRY_ADDRESS, and no other bit there; permission sets told apart by bits no other field
 * of a leaf uses; every entry non-zero whatever its address (zero means empty); blocks
 * pass the leaf test and table pointers fail it; and every page of the pool, where tables
 * live, within the address field. */
static bool format_ok(const struct pt_format *f, const struct page_pool *pool)
{
    const unsigned all = SLPT_READ | SLPT_WRITE;
    uint64_t perms_bits = perm_mask(f), leaf_others = f->page | f->block | f->leaf_mask;
    if (!(f->address & PAGE_SIZE) || ((f->address + PAGE_SIZE) & f->address) || (f->address & ~ENTRY_ADDRESS) ||
        ((perms_bits | leaf_others | f->table) & ENTRY_ADDRESS))
        return false;
    if (!f->perms || (f->perms & ~(1u << SLPT_READ | 1u << SLPT_WRITE | 1u << all)) || (perms_bits & leaf_others))
        return false;
    for (unsigned p = SLPT_READ; p <= all; p++) {
        if (!(f->perms >> p & 1))
            continue;
        if (!(f->perm[p] | f->page) || !(f->perm[p] | f->block))
            return false;
        for (unsigned q = p + 1; q <= all; q++)
            if ((f->perms >> q & 1) && f->perm[q] == f->perm[p])
                return false;
    }
    if (!f->table || (f->leaf_value & ~f->leaf_mask) || (f->block & f->leaf_mask) != f->leaf_value ||
        (f->table & f->leaf_mask) == f->leaf_value)
        return false;
    uint64_t last_pa = pool->base_pa + (uint64_t)pool->pages * PAGE_SIZE - 1;
    return last_pa <= (f->address | (PAGE_SIZE - 1));
}

enum iommu_status slpt_set_format(struct slpt *t, const struct pt_format *fmt)
{
    bool known_layout = (fmt->leaf_mask == X86_LEAF_MASK && fmt->leaf_value == X86_LEAF_VALUE) ||
                        (fmt->leaf_mask == ARM_LEAF_MASK && fmt->leaf_value == ARM_LEAF_VALUE);
    if (!t->root || t->table_pages != 1 || !known_layout || !format_ok(fmt, t->pool))
        return IOMMU_EINVAL;
    for (unsigned i = 0; i < ENTRIES; i++)
        if (t->root[i])
            return IOMMU_EINVAL;
    t->fmt = *fmt;
    return IOMMU_OK;
}

enum iommu_status slpt_set_write_back(struct slpt *t, void (*sync_fn)(void *ctx, const void *va, size_t len),
                                      void (*sync_wait)(void *ctx), void *ctx)
{
    if (!sync_fn || !t->root || t->table_pages != 1 || t->sync)
        return IOMMU_EINVAL;
    for (unsigned i = 0; i < ENTRIES; i++)
        if (t->root[i])
            return IOMMU_EINVAL;
    t->sync = sync_fn;
    t->sync_wait = sync_wait;
    t->sync_ctx = ctx;
    sync(t, t->root, PAGE_SIZE);
    sync_done(t);
    return IOMMU_OK;
}

static void destroy_level(struct slpt *t, uint64_t *table, unsigned level, enum layout L)
{
    if (level > 1)
        for (unsigned i = 0; i < ENTRIES; i++)
            if (table[i] && !is_leaf(table[i], level, L))
                destroy_level(t, table_va(t, table[i]), level - 1, L);
    if (!t->sync) {
        if (t->freed) { /* it waits: zeroed now, as it must go back */
            for (unsigned i = 0; i < ENTRIES; i++)
                table[i] = 0;
            free_empty_table(t, table);
            return;
        }
        page_pool_free(t->pool, table); /* not empty: the pool zeroes it */
        t->table_pages--;
        return;
    }
    /* Zeroed here, and the lines that held entries written back: the pool gets it clean. */
    uint64_t changed = 0;
    for (unsigned i = 0; i < ENTRIES; i++)
        if (table[i]) {
            table[i] = 0;
            changed |= line_bit(i);
        }
    sync_lines(t, table, changed);
    free_empty_table(t, table);
}

void slpt_destroy(struct slpt *t)
{
    if (t->root)
        destroy_level(t, t->root, t->levels, layout_of(t));
    sync_done(t);
    t->root = NULL;
}

/* Every page on the list is all zeroes; with a write-back hook, in memory too: the change
 * that freed it wrote back every store into it and waited before it returned. */
void slpt_release_freed(struct slpt *t, struct page_list *freed)
{
    page_pool_free_list(t->pool, freed, t->sync != NULL);
}

static bool range_ok(const struct slpt *t, uint64_t iova, uint64_t size)
{
    return size && !((iova | size) & (PAGE_SIZE - 1)) && iova < slpt_iova_limit(t) &&
           size <= slpt_iova_limit(t) - iova;
}

/* Why a walk or a placement stopped. */
enum place {
    PLACED,
    NEEDS_SMALLER, /* a table sits where a superpage would go: use smaller leaves there */
    OVERLAP,
    NO_MEMORY,
    BAD_ADDRESS,   /* a physical address beyond what an entry can hold */
};

/* The table at 'level' whose entry translates iova, creating the tables above it that are
 * missing. On failure the tables this call created are removed again. */
static ALWAYS_INLINE uint64_t *walk_create_in(struct slpt *t, uint64_t iova, unsigned level, enum place *why,
                                              enum layout L)
{
    uint64_t *created[5];    /* tables made by this call, top down */
    uint64_t *created_at[5]; /* the entry pointing at each */
    uint64_t *created_in[5]; /* the table holding that entry */
    unsigned n_created = 0;
    uint64_t *table = t->root;

    for (unsigned l = t->levels; l > level; l--) {
        uint64_t *e = &table[index_at(iova, l)];
        if (!*e) {
            uint64_t child_pa;
            uint64_t *child = new_table(t, &child_pa);
            if (!child) {
                *why = NO_MEMORY;
                goto undo;
            }
            set_entry(t, e, child_pa | t->fmt.table);
            count_entries(t, table, +1);
            created_at[n_created] = e;
            created_in[n_created] = table;
            created[n_created++] = child;
            table = child;
        } else if (is_leaf(*e, l, L)) {
            *why = OVERLAP;
            goto undo;
        } else {
            table = table_va(t, *e);
        }
    }
    return table;

undo:
    while (n_created--) {
        set_entry(t, created_at[n_created], 0);
        count_entries(t, created_in[n_created], -1);
        free_empty_table(t, created[n_created]);
    }
    return NULL;
}

static uint64_t *walk_create_x86(struct slpt *t, uint64_t iova, unsigned level, enum place *why)
{
    return walk_create_in(t, iova, level, why, LAYOUT_X86);
}

static uint64_t *walk_create_arm(struct slpt *t, uint64_t iova, unsigned level, enum place *why)
{
    return walk_create_in(t, iova, level, why, LAYOUT_ARM);
}

static ALWAYS_INLINE uint64_t *walk_create(struct slpt *t, uint64_t iova, unsigned level, enum place *why,
                                           enum layout L)
{
    return L == LAYOUT_ARM ? walk_create_arm(t, iova, level, why) : walk_create_x86(t, iova, level, why);
}

/* The largest leaf the unit allows for a mapping at iova -> pa with 'left' bytes to go. */
static unsigned choose_leaf(const struct slpt *t, uint64_t iova, uint64_t pa, uint64_t left, unsigned max_leaf)
{
    for (unsigned level = max_leaf < 3 ? max_leaf : 3; level >= 2; level--) {
        uint64_t span = 1ull << level_shift(level);
        bool allowed = t->superpages & (level == 3 ? SLPT_SUPERPAGE_1G : SLPT_SUPERPAGE_2M);
        if (allowed && !((iova | pa) & (span - 1)) && left >= span)
            return level;
    }
    return 1;
}

/* A leaf's bits besides its address: perm has passed perm_ok. */
static uint64_t leaf_bits(const struct slpt *t, unsigned perm, unsigned level)
{
    return t->fmt.perm[perm] | (level > 1 ? t->fmt.block : t->fmt.page);
}

/* Maps one physically contiguous run. Within one table, consecutive leaves are written in
 * one pass (the next leaf can only be larger at the table's end, where alignment to the
 * table's span starts). On failure *done says how far it got, with nothing half-made. */
static ALWAYS_INLINE enum place map_run_in(struct slpt *t, uint64_t iova, uint64_t pa, uint64_t size, unsigned perm,
                                           uint64_t *done, enum layout L)
{
    unsigned max_leaf = 3;
    *done = 0;
    while (*done < size) {
        uint64_t cur_iova = iova + *done, cur_pa = pa + *done, left = size - *done;
        unsigned leaf = choose_leaf(t, cur_iova, cur_pa, left, max_leaf);
        enum place why = PLACED;
        uint64_t *table = walk_create(t, cur_iova, leaf, &why, L);
        if (!table)
            return why;
        unsigned first = index_at(cur_iova, leaf);
        if (table[first]) {
            if (leaf > 1 && !is_leaf(table[first], leaf, L)) {
                max_leaf = leaf - 1; /* a table is in the way: smaller leaves for this slot */
                continue;
            }
            return OVERLAP;
        }
        uint64_t span = 1ull << level_shift(leaf), bits = leaf_bits(t, perm, leaf);
        uint64_t fit = left >> level_shift(leaf);
        unsigned n = ENTRIES - first < fit ? ENTRIES - first : (unsigned)fit, k = 0;
        uint64_t *e = &table[first], next_pa = cur_pa;
        if (page_pool_meta(t->pool, table)->entries == 0) { /* empty: nothing to overlap */
            for (; k < n; k++, next_pa += span)
                e[k] = next_pa | bits;
        } else {
            do {
                e[k] = next_pa | bits;
                next_pa += span;
            } while (++k < n && !e[k]);
        }
        sync(t, e, k * sizeof *e);
        count_entries(t, table, (int)k);
        *done += (uint64_t)k * span;
        max_leaf = 3;
    }
    return PLACED;
}

static enum place map_run_x86(struct slpt *t, uint64_t iova, uint64_t pa, uint64_t size, unsigned perm, uint64_t *done)
{
    return map_run_in(t, iova, pa, size, perm, done, LAYOUT_X86);
}

static enum place map_run_arm(struct slpt *t, uint64_t iova, uint64_t pa, uint64_t size, unsigned perm, uint64_t *done)
{
    return map_run_in(t, iova, pa, size, perm, done, LAYOUT_ARM);
}

static ALWAYS_INLINE enum place map_run(struct slpt *t, uint64_t iova, uint64_t pa, uint64_t size, unsigned perm,
                                        uint64_t *done, enum layout L)
{
    return L == LAYOUT_ARM ? map_run_arm(t, iova, pa, size, perm, done) : map_run_x86(t, iova, pa, size, perm, done);
}

static ALWAYS_INLINE enum iommu_status unmap_op(struct slpt *t, uint64_t iova, uint64_t size, struct slpt_unmapped *out,
                                                enum layout L);

static enum iommu_status place_status(enum place why)
{
    return why == OVERLAP ? IOMMU_EEXIST : why == BAD_ADDRESS ? IOMMU_ERANGE : IOMMU_ENOMEM;
}

/* A permission set the format can write as a present entry (a write-only map in the x86
 * formats would be an entry the walker takes as not present, and a valid Arm leaf is
 * always readable: refused in both). */
static bool perm_ok(const struct slpt *t, unsigned perm)
{
    return (perm & (SLPT_READ | SLPT_WRITE)) && !(perm & ~(SLPT_READ | SLPT_WRITE)) && (t->fmt.perms >> perm & 1);
}

static ALWAYS_INLINE enum iommu_status map_op_in(struct slpt *t, uint64_t iova, uint64_t pa, uint64_t size,
                                                 unsigned perm, enum layout L)
{
    if (!range_ok(t, iova, size) || (pa & (PAGE_SIZE - 1)) || !perm_ok(t, perm))
        return IOMMU_EINVAL;
    if (pa > t->fmt.address || size > t->fmt.address + PAGE_SIZE - pa)
        return IOMMU_ERANGE;
    uint64_t done;
    enum place why = map_run(t, iova, pa, size, perm, &done, L);
    if (why == PLACED)
        return IOMMU_OK;
    if (done)
        unmap_op(t, iova, done, NULL, L); /* cannot fail: it cuts no superpage */
    return place_status(why);
}

/* slpt_map for each layout: the change, then what it wrote back in memory. */
static enum iommu_status map_x86(struct slpt *t, uint64_t iova, uint64_t pa, uint64_t size, unsigned perm)
{
    enum iommu_status s = map_op_in(t, iova, pa, size, perm, LAYOUT_X86);
    sync_done(t);
    return s;
}

static enum iommu_status map_arm(struct slpt *t, uint64_t iova, uint64_t pa, uint64_t size, unsigned perm)
{
    enum iommu_status s = map_op_in(t, iova, pa, size, perm, LAYOUT_ARM);
    sync_done(t);
    return s;
}

/* Where frame i starts a 2 MiB table of its own: whether frames i.. form a run long and
 * aligned enough for a superpage there (then map_run places it). */
static bool superpage_run(const struct slpt *t, const uint64_t *frames, uint64_t i, uint64_t count)
{
    const uint64_t per_2m = ENTRIES;
    if (!(t->superpages & SLPT_SUPERPAGE_2M) || count - i < per_2m || (frames[i] & (per_2m - 1)))
        return false;
    for (uint64_t k = 1; k < per_2m; k++)
        if (frames[i + k] != frames[i] + k)
            return false;
    return true;
}

static ALWAYS_INLINE enum iommu_status map_frames_op_in(struct slpt *t, uint64_t iova, const uint64_t *frames,
                                                        uint64_t count, unsigned perm, enum layout L)
{
    if (!count || count > (slpt_iova_limit(t) >> PAGE_SHIFT) || !range_ok(t, iova, count << PAGE_SHIFT) ||
        !perm_ok(t, perm))
        return IOMMU_EINVAL;
    /* Frame numbers are checked as they are stored (a bad one undoes the map): a separate
     * pass over a long list would cost as much memory traffic as the map itself. */
    const uint64_t max_frame = t->fmt.address >> PAGE_SHIFT; /* a local: the stores below cannot change it */
    uint64_t bits = leaf_bits(t, perm, 1), i = 0;
    enum place why = PLACED;
    while (i < count) {
        uint64_t cur = iova + (i << PAGE_SHIFT);
        unsigned first = index_at(cur, 1);
        if (frames[i] > max_frame) {
            why = BAD_ADDRESS;
            break;
        }
        if (first == 0 && superpage_run(t, frames, i, count)) {
            /* a contiguous, aligned run: as large leaves as it allows */
            uint64_t run = ENTRIES;
            while (i + run < count && frames[i + run] == frames[i] + run)
                run++;
            run &= ~(uint64_t)(ENTRIES - 1);
            uint64_t done;
            why = map_run(t, cur, frames[i] << PAGE_SHIFT, run << PAGE_SHIFT, perm, &done, L);
            i += done >> PAGE_SHIFT;
            if (why != PLACED)
                break;
            continue;
        }
        /* Otherwise 4 KiB leaves to the end of this table, in one pass. */
        uint64_t *table = walk_create(t, cur, 1, &why, L);
        if (!table)
            break;
        unsigned n = ENTRIES - first < count - i ? ENTRIES - first : (unsigned)(count - i), k = 0;
        uint64_t *e = &table[first], seen = 0;
        if (page_pool_meta(t->pool, table)->entries == 0) { /* empty: nothing to overlap */
            for (; k < n; k++) {
                seen |= frames[i + k];
                e[k] = frames[i + k] << PAGE_SHIFT | bits;
            }
        } else {
            while (k < n && !e[k]) {
                seen |= frames[i + k];
                e[k] = frames[i + k] << PAGE_SHIFT | bits;
                k++;
            }
        }
        sync(t, e, k * sizeof *e);
        count_entries(t, table, (int)k);
        i += k;
        if (seen > max_frame) {
            why = BAD_ADDRESS;
            break;
        }
        if (k < n) {
            why = OVERLAP;
            break;
        }
    }
    if (why == PLACED)
        return IOMMU_OK;
    if (i)
        unmap_op(t, iova, i << PAGE_SHIFT, NULL, L);
    return place_status(why);
}

/* slpt_map_frames for each layout. */
static enum iommu_status map_frames_x86(struct slpt *t, uint64_t iova, const uint64_t *frames, uint64_t count,
                                        unsigned perm)
{
    enum iommu_status s = map_frames_op_in(t, iova, frames, count, perm, LAYOUT_X86);
    sync_done(t);
    return s;
}

static enum iommu_status map_frames_arm(struct slpt *t, uint64_t iova, const uint64_t *frames, uint64_t count,
                                        unsigned perm)
{
    enum iommu_status s = map_frames_op_in(t, iova, frames, count, perm, LAYOUT_ARM);
    sync_done(t);
    return s;
}

/* Makes 'iova' a leaf boundary: a superpage leaf that spans it is replaced by a table of
 * smaller leaves with the same translation, down to 4 KiB if need be. */
static ALWAYS_INLINE enum iommu_status split_at_in(struct slpt *t, uint64_t iova, enum layout L)
{
    uint64_t *table = t->root;
    for (unsigned level = t->levels; level > 1; level--) {
        uint64_t *e = &table[index_at(iova, level)];
        if (!*e)
            return IOMMU_OK;
        if (is_leaf(*e, level, L)) {
            uint64_t span = 1ull << level_shift(level);
            if (!(iova & (span - 1)))
                return IOMMU_OK; /* already a boundary */
            /* Every entry of the new table is written and written back below: what memory
             * held before does not matter, so the pool need not write it back first. */
            uint64_t child_pa;
            uint64_t *child = page_pool_alloc(t->pool, &child_pa);
            if (!child)
                return IOMMU_ENOMEM;
            t->table_pages++;
            uint64_t child_span = span / ENTRIES;
            /* the leaf's permission bits, with the other bits of a leaf of the smaller size:
             * the same translation with the same attributes */
            uint64_t base = *e & ENTRY_ADDRESS;
            uint64_t bits = (*e & perm_mask(&t->fmt)) | (level - 1 > 1 ? t->fmt.block : t->fmt.page);
            for (unsigned i = 0; i < ENTRIES; i++) /* bits in a local: the stores cannot change it */
                child[i] = (base + i * child_span) | bits;
            sync(t, child, PAGE_SIZE);
            sync_done(t); /* the new table in memory before the pointer to it */
            page_pool_meta(t->pool, child)->entries = ENTRIES;
            set_entry(t, e, child_pa | t->fmt.table);
        }
        table = table_va(t, *e);
    }
    return IOMMU_OK;
}

static enum iommu_status split_at_x86(struct slpt *t, uint64_t iova)
{
    return split_at_in(t, iova, LAYOUT_X86);
}

static enum iommu_status split_at_arm(struct slpt *t, uint64_t iova)
{
    return split_at_in(t, iova, LAYOUT_ARM);
}

static ALWAYS_INLINE enum iommu_status split_at(struct slpt *t, uint64_t iova, enum layout L)
{
    return L == LAYOUT_ARM ? split_at_arm(t, iova) : split_at_x86(t, iova);
}

static void note_removed(struct slpt_unmapped *out, uint64_t lo, uint64_t hi_incl, uint64_t bytes)
{
    if (!out->bytes || lo < out->first)
        out->first = lo;
    if (hi_incl > out->last)
        out->last = hi_incl;
    out->bytes += bytes;
}

static void clear_range_x86(struct slpt *t, uint64_t *table, unsigned level, uint64_t base, uint64_t start,
                            uint64_t end, struct slpt_unmapped *out);
static void clear_range_arm(struct slpt *t, uint64_t *table, unsigned level, uint64_t base, uint64_t start,
                            uint64_t end, struct slpt_unmapped *out);

static ALWAYS_INLINE void clear_range(struct slpt *t, uint64_t *table, unsigned level, uint64_t base, uint64_t start,
                                      uint64_t end, struct slpt_unmapped *out, enum layout L)
{
    if (L == LAYOUT_ARM)
        clear_range_arm(t, table, level, base, start, end, out);
    else
        clear_range_x86(t, table, level, base, start, end, out);
}

/* Clears [start, end) below 'table' (which maps from 'base'); frees tables that empty and
 * are not pinned. */
static ALWAYS_INLINE void clear_range_in(struct slpt *t, uint64_t *table, unsigned level, uint64_t base,
                                         uint64_t start, uint64_t end, struct slpt_unmapped *out, enum layout L)
{
    uint64_t span = 1ull << level_shift(level);
    unsigned first = index_at(start, level), last = index_at(end - 1, level);
    if (end - 1 - base >= span * ENTRIES)
        last = ENTRIES - 1;
    struct page_meta *meta = page_pool_meta(t->pool, table);
    if (level == 1 && first == 0 && last == ENTRIES - 1 && meta->entries) {
        /* The whole table goes: find its first and last leaf for the caller's invalidation,
         * then clear it in one sweep of wide stores. */
        unsigned lo = 0, hi = ENTRIES - 1;
        while (!table[lo])
            lo++;
        while (!table[hi])
            hi--;
        note_removed(out, base + (uint64_t)lo * span, base + (uint64_t)(hi + 1) * span - 1,
                     (uint64_t)meta->entries * span);
        if (!t->sync) {
            for (unsigned i = lo; i <= hi; i++)
                table[i] = 0;
        } else if (meta->entries == hi - lo + 1u) { /* dense: every line from lo to hi changes */
            for (unsigned i = lo; i <= hi; i++)
                table[i] = 0;
            sync_lines(t, table, line_bits(lo, hi));
        } else { /* sparse: only the lines that held entries */
            uint64_t changed = 0;
            for (unsigned i = lo; i <= hi; i++)
                if (table[i]) {
                    table[i] = 0;
                    changed |= line_bit(i);
                }
            sync_lines(t, table, changed);
        }
        meta->entries = 0;
        return;
    }
    /* The loops below are the unmap's hot path and were tuned with iommu-bench: 4 KiB
     * leaves get a loop of their own (nothing to descend into), and leaves are counted as
     * what was cleared less the tables freed, which are few, so that the loops keep their
     * values in registers (docs/benchmark.md). */
    unsigned cleared = 0, tables_freed = 0, leaf_lo = ENTRIES, leaf_hi = 0;
    uint64_t changed = 0; /* lines of this table cleared entries sit in */
    if (level == 1) {
        for (unsigned i = first; i <= last; i++) {
            if (!table[i])
                continue;
            table[i] = 0;
            leaf_lo = i < leaf_lo ? i : leaf_lo;
            leaf_hi = i;
            cleared++;
            changed |= line_bit(i);
        }
    } else {
        for (unsigned i = first; i <= last; i++) {
            uint64_t *e = &table[i];
            if (!*e)
                continue;
            if (is_leaf(*e, level, L)) {
                /* split_at made the ends leaf boundaries, so the leaf lies wholly inside */
                *e = 0;
                leaf_lo = i < leaf_lo ? i : leaf_lo;
                leaf_hi = i;
            } else {
                uint64_t entry_base = base + (uint64_t)i * span;
                uint64_t *child = table_va(t, *e);
                uint64_t from = start > entry_base ? start : entry_base;
                uint64_t to = end - entry_base < span ? end : entry_base + span;
                clear_range(t, child, level - 1, entry_base, from, to, out, L);
                struct page_meta *m = page_pool_meta(t->pool, child);
                if (m->entries || m->pins)
                    continue;
                *e = 0;
                free_empty_table(t, child);
                tables_freed++;
            }
            cleared++;
            changed |= line_bit(i);
        }
    }
    unsigned leaves = cleared - tables_freed;
    if (leaves)
        note_removed(out, base + (uint64_t)leaf_lo * span, base + (uint64_t)(leaf_hi + 1) * span - 1,
                     (uint64_t)leaves * span);
    if (cleared) {
        if (t->sync)
            sync_lines(t, table, changed);
        meta->entries = (uint16_t)(meta->entries - cleared);
    }
}

static void clear_range_x86(struct slpt *t, uint64_t *table, unsigned level, uint64_t base, uint64_t start,
                            uint64_t end, struct slpt_unmapped *out)
{
    clear_range_in(t, table, level, base, start, end, out, LAYOUT_X86);
}

static void clear_range_arm(struct slpt *t, uint64_t *table, unsigned level, uint64_t base, uint64_t start,
                            uint64_t end, struct slpt_unmapped *out)
{
    clear_range_in(t, table, level, base, start, end, out, LAYOUT_ARM);
}

static ALWAYS_INLINE enum iommu_status unmap_op_in(struct slpt *t, uint64_t iova, uint64_t size,
                                                   struct slpt_unmapped *out, enum layout L)
{
    struct slpt_unmapped ignored;
    if (!out)
        out = &ignored;
    *out = (struct slpt_unmapped){0};
    if (!range_ok(t, iova, size))
        return IOMMU_EINVAL;
    /* Only the two ends can cut a superpage. Splitting keeps every translation, so if the
     * second split fails the first one changed nothing that anyone can see. */
    enum iommu_status s = split_at(t, iova, L);
    if (s == IOMMU_OK && iova + size < slpt_iova_limit(t))
        s = split_at(t, iova + size, L);
    if (s != IOMMU_OK)
        return s;
    clear_range(t, t->root, t->levels, 0, iova, iova + size, out, L);
    return IOMMU_OK;
}

static enum iommu_status unmap_op_x86(struct slpt *t, uint64_t iova, uint64_t size, struct slpt_unmapped *out)
{
    return unmap_op_in(t, iova, size, out, LAYOUT_X86);
}

static enum iommu_status unmap_op_arm(struct slpt *t, uint64_t iova, uint64_t size, struct slpt_unmapped *out)
{
    return unmap_op_in(t, iova, size, out, LAYOUT_ARM);
}

static ALWAYS_INLINE enum iommu_status unmap_op(struct slpt *t, uint64_t iova, uint64_t size, struct slpt_unmapped *out,
                                                enum layout L)
{
    return L == LAYOUT_ARM ? unmap_op_arm(t, iova, size, out) : unmap_op_x86(t, iova, size, out);
}

/* Frees the tables in [start, end) below 'table' that are empty and unpinned. */
static void prune(struct slpt *t, uint64_t *table, unsigned level, uint64_t base, uint64_t start, uint64_t end,
                  enum layout L)
{
    uint64_t span = 1ull << level_shift(level);
    unsigned first = index_at(start, level), last = index_at(end - 1, level);
    if (end - 1 - base >= span * ENTRIES)
        last = ENTRIES - 1;
    for (unsigned i = first; i <= last && level > 1; i++) {
        if (!table[i] || is_leaf(table[i], level, L))
            continue;
        uint64_t entry_base = base + (uint64_t)i * span;
        uint64_t *child = table_va(t, table[i]);
        prune(t, child, level - 1, entry_base, start > entry_base ? start : entry_base,
              end - entry_base < span ? end : entry_base + span, L);
        struct page_meta *m = page_pool_meta(t->pool, child);
        if (m->entries == 0 && m->pins == 0) {
            set_entry(t, &table[i], 0);
            count_entries(t, table, -1);
            free_empty_table(t, child);
        }
    }
}

/* Adds delta to the pins of every 4 KiB-entry table in [iova, iova + size); the tables
 * above them need no pins, as they hold an entry for a pinned child. */
static void pin_range(struct slpt *t, uint64_t iova, uint64_t size, int delta, enum layout L)
{
    uint64_t span = 1ull << level_shift(2); /* one table of 4 KiB entries per 2 MiB */
    for (uint64_t cur = iova & ~(span - 1); cur < iova + size; cur += span) {
        const uint64_t *table = t->root;
        for (unsigned level = t->levels; level > 1 && table; level--) {
            uint64_t e = table[index_at(cur, level)];
            table = e && !is_leaf(e, level, L) ? table_va(t, e) : NULL;
        }
        if (table) {
            struct page_meta *m = page_pool_meta(t->pool, table);
            m->pins = (uint16_t)(m->pins + delta);
        }
    }
}

static enum iommu_status prepare_op(struct slpt *t, uint64_t iova, uint64_t size, enum layout L)
{
    if (!range_ok(t, iova, size))
        return IOMMU_EINVAL;
    uint64_t span = 1ull << level_shift(2);
    uint64_t cur = iova & ~(span - 1);
    for (; cur < iova + size; cur += span) {
        enum place why = PLACED;
        if (!walk_create(t, cur, 1, &why, L)) {
            /* Undo: tables made for [iova, cur) hold nothing and are not pinned yet. */
            if (cur > iova)
                prune(t, t->root, t->levels, 0, iova, cur, L);
            return place_status(why);
        }
    }
    pin_range(t, iova, size, +1, L);
    return IOMMU_OK;
}

static void unprepare_op(struct slpt *t, uint64_t iova, uint64_t size, enum layout L)
{
    if (!range_ok(t, iova, size))
        return;
    pin_range(t, iova, size, -1, L);
    prune(t, t->root, t->levels, 0, iova, iova + size, L);
}

/* Every change: what it wrote back is in memory before it returns. The hot ones run the
 * instantiation for their table's layout (is_leaf). */

enum iommu_status slpt_map(struct slpt *t, uint64_t iova, uint64_t pa, uint64_t size, unsigned perm)
{
    return layout_of(t) == LAYOUT_ARM ? map_arm(t, iova, pa, size, perm) : map_x86(t, iova, pa, size, perm);
}

enum iommu_status slpt_map_frames(struct slpt *t, uint64_t iova, const uint64_t *frames, uint64_t count,
                                  unsigned perm)
{
    return layout_of(t) == LAYOUT_ARM ? map_frames_arm(t, iova, frames, count, perm)
                                      : map_frames_x86(t, iova, frames, count, perm);
}

enum iommu_status slpt_unmap(struct slpt *t, uint64_t iova, uint64_t size, struct slpt_unmapped *out)
{
    enum iommu_status s = unmap_op(t, iova, size, out, layout_of(t));
    sync_done(t);
    return s;
}

enum iommu_status slpt_prepare(struct slpt *t, uint64_t iova, uint64_t size)
{
    enum iommu_status s = prepare_op(t, iova, size, layout_of(t));
    sync_done(t);
    return s;
}

void slpt_unprepare(struct slpt *t, uint64_t iova, uint64_t size)
{
    unprepare_op(t, iova, size, layout_of(t));
    sync_done(t);
}

/* The leaf entry translating iova and its level, or NULL. */
static uint64_t *find_leaf(const struct slpt *t, uint64_t iova, unsigned *leaf_level)
{
    if (iova >= slpt_iova_limit(t))
        return NULL;
    uint64_t *table = t->root;
    const enum layout L = layout_of(t);
    for (unsigned level = t->levels;; level--) {
        uint64_t *e = &table[index_at(iova, level)];
        if (!*e)
            return NULL;
        if (is_leaf(*e, level, L)) {
            *leaf_level = level;
            return e;
        }
        table = table_va(t, *e);
    }
}

uint64_t *slpt_leaf_entry(const struct slpt *t, uint64_t iova)
{
    unsigned level;
    return find_leaf(t, iova, &level);
}

bool slpt_lookup(const struct slpt *t, uint64_t iova, uint64_t *pa, unsigned *perm, uint64_t *leaf_size)
{
    unsigned level;
    const uint64_t *e = find_leaf(t, iova, &level);
    if (!e)
        return false;
    uint64_t span = 1ull << level_shift(level);
    if (pa)
        *pa = (*e & ENTRY_ADDRESS) + (iova & (span - 1));
    if (perm)
        *perm = perm_of(t, *e);
    if (leaf_size)
        *leaf_size = span;
    return true;
}

static void dump_table(const struct slpt *t, const uint64_t *table, unsigned level, uint64_t base,
                       const struct sink *out)
{
    uint64_t span = 1ull << level_shift(level);
    unsigned indent = 2 * (t->levels - level + 1);
    const enum layout L = layout_of(t);
    for (unsigned i = 0; i < ENTRIES; i++) {
        uint64_t e = table[i];
        if (!e)
            continue;
        uint64_t iova = base + (uint64_t)i * span;
        if (is_leaf(e, level, L)) {
            unsigned perm = perm_of(t, e);
            sink_printf(out, "%*sL%u[%3u] 0x%lx-0x%lx -> 0x%lx %c%c%s\n", indent, "", level, i, iova,
                        iova + span - 1, (uint64_t)(e & ENTRY_ADDRESS), perm & SLPT_READ ? 'R' : '-',
                        perm & SLPT_WRITE ? 'W' : '-',
                        level > 1 ? " superpage" : "");
        } else {
            const uint64_t *child = table_va(t, e);
            const struct page_meta *m = page_pool_meta(t->pool, child);
            sink_printf(out, "%*sL%u[%3u] 0x%lx-0x%lx table at 0x%lx, %u entries%s\n", indent, "", level, i, iova,
                        iova + span - 1, (uint64_t)(e & ENTRY_ADDRESS), m->entries, m->pins ? ", pinned" : "");
            dump_table(t, child, level - 1, iova, out);
        }
    }
}

void slpt_dump(const struct slpt *t, const struct sink *out)
{
    sink_printf(out, "%u-level table at 0x%lx, %u table pages\n", t->levels, t->root_pa, t->table_pages);
    dump_table(t, t->root, t->levels, 0, out);
}
