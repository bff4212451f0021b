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

static bool is_leaf(uint64_t e, unsigned level)
{
    return level == 1 || (e & SLPTE_PS);
}

static uint64_t *table_va(const struct slpt *t, uint64_t e)
{
    return page_pool_va(t->pool, e & SLPTE_ADDR);
}

static void sync(const struct slpt *t, const void *va, size_t len)
{
    if (t->sync)
        t->sync(t->sync_ctx, va, len);
}

/* Writes one entry the hardware may walk. */
static void set_entry(const struct slpt *t, uint64_t *e, uint64_t value)
{
    *e = value;
    sync(t, e, sizeof *e);
}

/* Counts a change in one table's non-zero entries. */
static void count_entry(const struct slpt *t, uint64_t *table, int delta)
{
    struct page_meta *m = page_pool_meta(t->pool, table);
    m->entries = (uint16_t)(m->entries + delta);
}

static uint64_t *new_table(struct slpt *t, uint64_t *pa)
{
    uint64_t *table = page_pool_alloc(t->pool, pa);
    if (table) {
        t->table_pages++;
        sync(t, table, PAGE_SIZE); /* the zeroes must reach memory before a pointer to them */
    }
    return table;
}

static void free_table(struct slpt *t, uint64_t *table)
{
    page_pool_free(t->pool, table);
    t->table_pages--;
}

enum iommu_status slpt_init(struct slpt *t, struct page_pool *pool, unsigned levels, uint8_t superpages)
{
    if (levels < 3 || levels > 5)
        return IOMMU_EINVAL;
    *t = (struct slpt){.pool = pool, .levels = levels,
                       .superpages = superpages & (SLPT_SUPERPAGE_2M | SLPT_SUPERPAGE_1G)};
    t->root = new_table(t, &t->root_pa);
    return t->root ? IOMMU_OK : IOMMU_ENOMEM;
}

static void destroy_level(struct slpt *t, uint64_t *table, unsigned level)
{
    if (level > 1)
        for (unsigned i = 0; i < ENTRIES; i++)
            if (table[i] && !is_leaf(table[i], level))
                destroy_level(t, table_va(t, table[i]), level - 1);
    free_table(t, table);
}

void slpt_destroy(struct slpt *t)
{
    if (t->root)
        destroy_level(t, t->root, t->levels);
    t->root = NULL;
}

/* Result of placing one leaf. */
enum place {
    PLACED,
    NEEDS_SMALLER, /* a table sits where a superpage would go: use smaller leaves there */
    OVERLAP,
    NO_MEMORY,
};

/* Puts one leaf of 'leaf_level' for iova -> pa, creating the tables on the way. On
 * failure, tables created by this call are removed again. */
static enum place place_leaf(struct slpt *t, uint64_t iova, uint64_t pa, unsigned leaf_level, unsigned perm)
{
    uint64_t *created[5];      /* tables made by this call, top down */
    uint64_t *created_at[5];   /* the entry pointing at each */
    uint64_t *created_in[5];   /* the table holding that entry */
    unsigned n_created = 0;
    uint64_t *table = t->root;
    enum place result = PLACED;

    for (unsigned level = t->levels; level > leaf_level; level--) {
        uint64_t *e = &table[index_at(iova, level)];
        if (!*e) {
            uint64_t child_pa;
            uint64_t *child = new_table(t, &child_pa);
            if (!child) {
                result = NO_MEMORY;
                goto undo;
            }
            set_entry(t, e, child_pa | SLPTE_R | SLPTE_W);
            count_entry(t, table, +1);
            created_at[n_created] = e;
            created_in[n_created] = table;
            created[n_created++] = child;
            table = child;
        } else if (is_leaf(*e, level)) {
            result = OVERLAP;
            goto undo;
        } else {
            table = table_va(t, *e);
        }
    }
    uint64_t *e = &table[index_at(iova, leaf_level)];
    if (*e) {
        result = leaf_level > 1 && !is_leaf(*e, leaf_level) ? NEEDS_SMALLER : OVERLAP;
        goto undo;
    }
    set_entry(t, e, pa | (perm & SLPT_READ ? SLPTE_R : 0) | (perm & SLPT_WRITE ? SLPTE_W : 0) |
                        (leaf_level > 1 ? SLPTE_PS : 0));
    count_entry(t, table, +1);
    return PLACED;

undo:
    /* Tables created here hold nothing yet; remove them deepest first. */
    while (n_created--) {
        set_entry(t, created_at[n_created], 0);
        count_entry(t, created_in[n_created], -1);
        free_table(t, created[n_created]);
    }
    return result;
}

static bool range_ok(const struct slpt *t, uint64_t iova, uint64_t size)
{
    return size && !((iova | size) & (PAGE_SIZE - 1)) && iova < slpt_iova_limit(t) &&
           size <= slpt_iova_limit(t) - iova;
}

enum iommu_status slpt_map(struct slpt *t, uint64_t iova, uint64_t pa, uint64_t size, unsigned perm)
{
    if (!range_ok(t, iova, size) || (pa & (PAGE_SIZE - 1)) || !(perm & (SLPT_READ | SLPT_WRITE)) ||
        (perm & ~(SLPT_READ | SLPT_WRITE)))
        return IOMMU_EINVAL;
    if (pa > SLPTE_ADDR || size > SLPTE_ADDR + PAGE_SIZE - pa)
        return IOMMU_ERANGE;

    uint64_t done = 0;
    while (done < size) {
        uint64_t cur_iova = iova + done, cur_pa = pa + done, left = size - done;
        unsigned leaf = 1;
        for (unsigned level = 3; level >= 2; level--) {
            uint64_t span = 1ull << level_shift(level);
            bool allowed = t->superpages & (level == 3 ? SLPT_SUPERPAGE_1G : SLPT_SUPERPAGE_2M);
            if (allowed && !((cur_iova | cur_pa) & (span - 1)) && left >= span) {
                leaf = level;
                break;
            }
        }
        enum place r;
        while ((r = place_leaf(t, cur_iova, cur_pa, leaf, perm)) == NEEDS_SMALLER)
            leaf--;
        if (r != PLACED) {
            if (done)
                slpt_unmap(t, iova, done, NULL); /* cannot fail: no superpage is cut */
            return r == OVERLAP ? IOMMU_EEXIST : IOMMU_ENOMEM;
        }
        done += 1ull << level_shift(leaf);
    }
    return IOMMU_OK;
}

/* Makes 'iova' a leaf boundary: a superpage leaf that spans it is replaced by a table of
 * smaller leaves with the same translation, down to 4 KiB if need be. */
static enum iommu_status split_at(struct slpt *t, uint64_t iova)
{
    uint64_t *table = t->root;
    for (unsigned level = t->levels; level > 1; level--) {
        uint64_t *e = &table[index_at(iova, level)];
        if (!*e)
            return IOMMU_OK;
        if (is_leaf(*e, level)) {
            uint64_t span = 1ull << level_shift(level);
            if (!(iova & (span - 1)))
                return IOMMU_OK; /* already a boundary */
            uint64_t child_pa;
            uint64_t *child = new_table(t, &child_pa);
            if (!child)
                return IOMMU_ENOMEM;
            uint64_t child_span = span / ENTRIES;
            uint64_t base = *e & SLPTE_ADDR, perm = *e & (SLPTE_R | SLPTE_W);
            for (unsigned i = 0; i < ENTRIES; i++)
                child[i] = (base + i * child_span) | perm | (level - 1 > 1 ? SLPTE_PS : 0);
            sync(t, child, PAGE_SIZE);
            page_pool_meta(t->pool, child)->entries = ENTRIES;
            set_entry(t, e, child_pa | SLPTE_R | SLPTE_W);
        }
        table = table_va(t, *e);
    }
    return IOMMU_OK;
}

/* Clears [start, end) below 'table' (which maps from 'base'); frees tables that empty. */
static void clear_range(struct slpt *t, uint64_t *table, unsigned level, uint64_t base, uint64_t start,
                        uint64_t end, struct slpt_unmapped *out)
{
    uint64_t span = 1ull << level_shift(level);
    for (unsigned i = index_at(start, level);; i++) {
        uint64_t lo = base + (uint64_t)i * span;
        if (i >= ENTRIES || lo >= end)
            break;
        uint64_t *e = &table[i];
        if (!*e)
            continue;
        uint64_t from = start > lo ? start : lo, to = end < lo + span ? end : lo + span;
        if (is_leaf(*e, level)) {
            /* split_at made the ends leaf boundaries, so the leaf lies wholly inside */
            set_entry(t, e, 0);
            count_entry(t, table, -1);
            if (!out->bytes || lo < out->first)
                out->first = lo;
            if (lo + span - 1 > out->last)
                out->last = lo + span - 1;
            out->bytes += span;
            continue;
        }
        uint64_t *child = table_va(t, *e);
        clear_range(t, child, level - 1, lo, from, to, out);
        struct page_meta *m = page_pool_meta(t->pool, child);
        if (m->entries == 0 && !m->pinned) {
            set_entry(t, e, 0);
            count_entry(t, table, -1);
            free_table(t, child);
        }
    }
}

enum iommu_status slpt_unmap(struct slpt *t, uint64_t iova, uint64_t size, struct slpt_unmapped *out)
{
    struct slpt_unmapped ignored;
    if (!out)
        out = &ignored;
    *out = (struct slpt_unmapped){0};
    if (!range_ok(t, iova, size))
        return IOMMU_EINVAL;
    /* Only the two ends can cut a superpage. Splitting keeps every translation, so if the
     * second split fails the first one changed nothing that anyone can see. */
    enum iommu_status s = split_at(t, iova);
    if (s == IOMMU_OK && iova + size < slpt_iova_limit(t))
        s = split_at(t, iova + size);
    if (s != IOMMU_OK)
        return s;
    clear_range(t, t->root, t->levels, 0, iova, iova + size, out);
    return IOMMU_OK;
}

bool slpt_lookup(const struct slpt *t, uint64_t iova, uint64_t *pa, unsigned *perm, uint64_t *leaf_size)
{
    if (iova >= slpt_iova_limit(t))
        return false;
    const uint64_t *table = t->root;
    for (unsigned level = t->levels;; level--) {
        uint64_t e = table[index_at(iova, level)];
        if (!e)
            return false;
        if (is_leaf(e, level)) {
            uint64_t span = 1ull << level_shift(level);
            if (pa)
                *pa = (e & SLPTE_ADDR) + (iova & (span - 1));
            if (perm)
                *perm = (e & SLPTE_R ? SLPT_READ : 0) | (e & SLPTE_W ? SLPT_WRITE : 0);
            if (leaf_size)
                *leaf_size = span;
            return true;
        }
        table = table_va(t, e);
    }
}
