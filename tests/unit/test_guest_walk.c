/* The guest page-table walker (boot/hypervisor/svm/guest_walk.c): real page tables built in a simulated guest
 * memory for each paging mode, translations checked against a list of the mappings made (the
 * independent model), and the failures: not present at each level, reserved bits, refused
 * table pages (nothing read after), non-canonical addresses, reads across pages. */
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "hypervisor/svm/guest_walk.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define P 0x1ull
#define W 0x2ull
#define U 0x4ull
#define PS 0x80ull
#define XD (1ull << 63)
#define K4 0x1000ull
#define M2 0x200000ull
#define M4 0x400000ull
#define G1 0x40000000ull

/* Guest memory: 4 KiB pages at chosen guest-physical addresses; anything else is not RAM. */
#define MAX_PAGES 512
#define MAX_LOG 64
struct gmem {
    unsigned n;
    uint64_t pa[MAX_PAGES];
    uint8_t *data[MAX_PAGES];
    uint64_t refused[4]; /* pages the callback refuses though they are there (0: none) */
    unsigned nlog;
    uint64_t log[MAX_LOG]; /* every address read, entries and bytes */
    unsigned entry_reads, byte_reads;
};

static uint8_t *gm_find(struct gmem *g, uint64_t pa)
{
    for (unsigned r = 0; r < COUNT(g->refused); r++)
        if (g->refused[r] && (pa & ~(K4 - 1)) == g->refused[r])
            return NULL;
    for (unsigned i = 0; i < g->n; i++)
        if (g->pa[i] == (pa & ~(K4 - 1)))
            return g->data[i] + (pa & (K4 - 1));
    return NULL;
}

static uint8_t *gm_page(struct gmem *g, uint64_t pa)
{
    assert_int_equal(pa & (K4 - 1), 0);
    for (unsigned i = 0; i < g->n; i++)
        if (g->pa[i] == pa)
            return g->data[i];
    assert_true(g->n < MAX_PAGES);
    g->pa[g->n] = pa;
    g->data[g->n] = calloc(1, K4);
    assert_non_null(g->data[g->n]);
    return g->data[g->n++];
}

static void gm_free(struct gmem *g)
{
    for (unsigned i = 0; i < g->n; i++)
        free(g->data[i]);
    memset(g, 0, sizeof *g);
}

static void gm_log(struct gmem *g, uint64_t pa)
{
    if (g->nlog < MAX_LOG)
        g->log[g->nlog] = pa;
    g->nlog++;
}

static bool cb_entry(void *ctx, uint64_t pa, unsigned size, uint64_t *out)
{
    struct gmem *g = ctx;
    assert_true(size == 4 || size == 8);
    assert_int_equal(pa % size, 0); /* the walker promises aligned entries */
    g->entry_reads++;
    gm_log(g, pa);
    uint8_t *p = gm_find(g, pa);
    if (!p)
        return false;
    uint64_t v = 0;
    memcpy(&v, p, size);
    *out = v;
    return true;
}

static bool cb_bytes(void *ctx, uint64_t pa, void *dst, unsigned len)
{
    struct gmem *g = ctx;
    assert_true(len >= 1 && len <= 15);
    assert_int_equal(pa >> 12, (pa + len - 1) >> 12); /* one page */
    g->byte_reads++;
    gm_log(g, pa);
    uint8_t *p = gm_find(g, pa);
    if (!p)
        return false;
    memcpy(dst, p, len);
    return true;
}

/* The paging modes as the tests build them. */
enum mode { M_OFF, M_32, M_PAE, M_LONG4, M_LONG5 };

struct mapping {
    uint64_t la, pa, size;
};

struct builder {
    enum mode mode;
    struct gmem g;
    struct guest_paging p;
    struct guest_mem_ops ops;
    uint64_t next_table; /* where the next table page goes */
    unsigned nmap;
    struct mapping map[256];
};

static void put(struct builder *b, uint64_t pa, unsigned size, uint64_t v)
{
    uint8_t *page = gm_page(&b->g, pa & ~(K4 - 1));
    memcpy(page + (pa & (K4 - 1)), &v, size);
}

static uint64_t get(struct builder *b, uint64_t pa, unsigned size)
{
    uint64_t v = 0;
    memcpy(&v, gm_page(&b->g, pa & ~(K4 - 1)) + (pa & (K4 - 1)), size);
    return v;
}

static uint64_t new_table(struct builder *b)
{
    uint64_t pa = b->next_table;
    b->next_table += K4;
    gm_page(&b->g, pa);
    return pa;
}

static void builder_init(struct builder *b, enum mode mode, uint64_t table_base)
{
    memset(b, 0, sizeof *b);
    b->mode = mode;
    b->next_table = table_base;
    b->ops = (struct guest_mem_ops){&b->g, cb_entry, cb_bytes};
    switch (mode) {
    case M_OFF:
        b->p.cr0 = 0x11;
        break;
    case M_32:
        b->p.cr0 = GW_CR0_PG | 1;
        b->p.cr4 = GW_CR4_PSE;
        b->p.cr3 = new_table(b);
        break;
    case M_PAE:
        b->p.cr0 = GW_CR0_PG | 1;
        b->p.cr4 = GW_CR4_PAE;
        b->p.cr3 = new_table(b) + 0x40; /* the PDPT: 32 bytes inside a page */
        break;
    case M_LONG4:
    case M_LONG5:
        b->p.cr0 = GW_CR0_PG | 1;
        b->p.cr4 = GW_CR4_PAE | (mode == M_LONG5 ? GW_CR4_LA57 : 0);
        b->p.efer = GW_EFER_LMA | (1ull << 8) | GW_EFER_NXE;
        b->p.cr3 = new_table(b) | 0x18; /* PWT, PCD: ignored */
        break;
    }
}

/* The entry address at 'level' for la, creating tables down to it; 0 when a leaf is in the way. */
static uint64_t slot(struct builder *b, uint64_t la, unsigned level)
{
    if (b->mode == M_32) {
        uint64_t pde = (b->p.cr3 & 0xFFFFF000) + ((la >> 22) & 0x3FF) * 4;
        if (level == 2)
            return pde;
        uint64_t e = get(b, pde, 4);
        if (!(e & P)) {
            e = new_table(b) | P | W | U;
            put(b, pde, 4, e);
        }
        return (e & 0xFFFFF000) + ((la >> 12) & 0x3FF) * 4;
    }
    unsigned top = b->mode == M_PAE ? 3 : b->mode == M_LONG4 ? 4 : 5;
    uint64_t addr;
    if (b->mode == M_PAE)
        addr = (b->p.cr3 & 0xFFFFFFE0) + ((la >> 30) & 3) * 8;
    else
        addr = (b->p.cr3 & 0x000FFFFFFFFFF000ull) + ((la >> (12 + 9 * (top - 1))) & 511) * 8;
    for (unsigned l = top; l > level; l--) {
        uint64_t e = get(b, addr, 8);
        if (!(e & P)) {
            e = new_table(b) | P | (b->mode == M_PAE && l == 3 ? 0 : W | U);
            put(b, addr, 8, e);
        }
        addr = (e & 0x000FFFFFFFFFF000ull) + ((la >> (12 + 9 * (l - 2))) & 511) * 8;
    }
    return addr;
}

static void map(struct builder *b, uint64_t la, uint64_t pa, uint64_t size, uint64_t flags)
{
    assert_int_equal(la & (size - 1), 0);
    assert_int_equal(pa & (size - 1), 0);
    if (b->mode == M_32) {
        if (size == M4)
            put(b, slot(b, la, 2), 4, (pa & 0xFFC00000) | ((pa >> 32) & 0xFF) << 13 | PS | P | flags);
        else
            put(b, slot(b, la, 1), 4, pa | P | flags);
    } else {
        unsigned level = size == K4 ? 1 : size == M2 ? 2 : 3;
        put(b, slot(b, la, level), 8, pa | P | flags | (level > 1 ? PS : 0));
    }
    assert_true(b->nmap < COUNT(b->map));
    b->map[b->nmap++] = (struct mapping){la, pa, size};
}

/* The model: the list of mappings. */
static bool model(const struct builder *b, uint64_t la, uint64_t *pa, uint64_t *size)
{
    if (b->mode == M_OFF) {
        *pa = la & 0xFFFFFFFF;
        *size = K4;
        return true;
    }
    if (b->mode == M_32 || b->mode == M_PAE)
        la &= 0xFFFFFFFF;
    for (unsigned i = 0; i < b->nmap; i++)
        if (la - b->map[i].la < b->map[i].size) {
            *pa = b->map[i].pa + (la - b->map[i].la);
            *size = b->map[i].size;
            return true;
        }
    return false;
}

static bool canonical(const struct builder *b, uint64_t la)
{
    unsigned bits = b->mode == M_LONG5 ? 57 : b->mode == M_LONG4 ? 48 : 64;
    if (bits == 64)
        return true;
    uint64_t top = la >> (bits - 1);
    return top == 0 || top == (~0ull >> (bits - 1));
}

static struct guest_walk_result walk(struct builder *b, uint64_t la)
{
    struct guest_walk_result r;
    b->g.nlog = 0;
    b->g.entry_reads = 0;
    bool ok = guest_walk(&b->p, &b->ops, la, &r);
    assert_int_equal(ok, r.status == GW_OK);
    return r;
}

static void expect_pa(struct builder *b, uint64_t la, uint64_t pa, uint64_t size)
{
    struct guest_walk_result r = walk(b, la);
    if (r.status != GW_OK || r.pa != pa || r.page_size != size) {
        print_error("mode %d la %#llx: status %d level %u pa %#llx size %#llx, want pa %#llx size %#llx\n", b->mode,
                    (unsigned long long)la, r.status, r.level, (unsigned long long)r.pa,
                    (unsigned long long)r.page_size, (unsigned long long)pa, (unsigned long long)size);
        fail();
    }
}

static void expect_fail(struct builder *b, uint64_t la, enum guest_walk_status st, unsigned level)
{
    struct guest_walk_result r = walk(b, la);
    if (r.status != st || r.level != level) {
        print_error("mode %d la %#llx: status %d level %u, want status %d level %u\n", b->mode,
                    (unsigned long long)la, r.status, r.level, st, level);
        fail();
    }
}

/* Many addresses against the model: in, at the edges of, and around every mapping, and random. */
static void check_against_model(struct builder *b, uint64_t *seed, unsigned randoms, uint64_t random_mask)
{
    unsigned checked = 0;
    for (unsigned i = 0; i < b->nmap; i++) {
        const struct mapping *m = &b->map[i];
        uint64_t probes[] = {m->la, m->la + m->size - 1, m->la + (test_rand(seed) % m->size), m->la - 1,
                             m->la + m->size, m->la + m->size / 2 + 0x123};
        for (unsigned k = 0; k < COUNT(probes); k++) {
            uint64_t la = probes[k], pa, size;
            if (!canonical(b, la)) {
                expect_fail(b, la, GW_NON_CANONICAL, 0);
            } else if (model(b, la, &pa, &size)) {
                expect_pa(b, la, pa, size);
            } else {
                struct guest_walk_result r = walk(b, la);
                assert_int_equal(r.status, GW_NOT_PRESENT);
                assert_true(r.level >= 1);
            }
            checked++;
        }
    }
    for (unsigned i = 0; i < randoms; i++) {
        uint64_t la = test_rand(seed) & random_mask, pa, size;
        if (i & 1) /* near a mapping, where the tables exist */
            la = b->map[i % b->nmap].la ^ (test_rand(seed) & 0x3FFFFF);
        if (!canonical(b, la)) {
            expect_fail(b, la, GW_NON_CANONICAL, 0);
        } else if (model(b, la, &pa, &size)) {
            expect_pa(b, la, pa, size);
        } else {
            struct guest_walk_result r = walk(b, la);
            assert_int_equal(r.status, GW_NOT_PRESENT);
        }
        checked++;
    }
    assert_true(checked > 100);
}

static void test_paging_off(void **state)
{
    (void)state;
    struct builder b;
    builder_init(&b, M_OFF, 0x100000);
    uint64_t seed = 1;
    expect_pa(&b, 0x1234, 0x1234, K4);
    expect_pa(&b, 0xFFFFFFFF, 0xFFFFFFFF, K4);
    expect_pa(&b, 0x100001234ull, 0x1234, K4); /* 32-bit linear addresses */
    for (unsigned i = 0; i < 1000; i++) {
        uint64_t la = test_rand(&seed);
        expect_pa(&b, la, la & 0xFFFFFFFF, K4);
        assert_int_equal(b.g.entry_reads, 0);
    }
    /* LME without PG is still no paging */
    b.p.efer = 1ull << 8;
    expect_pa(&b, 0xABCDE, 0xABCDE, K4);
    gm_free(&b.g);
}

static void test_32bit(void **state)
{
    (void)state;
    struct builder b;
    uint64_t seed = 32;
    builder_init(&b, M_32, 0x200000);
    map(&b, 0x00400000, 0x00800000, M4, W);
    map(&b, 0xFFC00000, 0x12C00000, M4, 0);
    map(&b, 0x00001000, 0x00005000, K4, W | U);
    map(&b, 0x00002000, 0x7FFFF000, K4, 0);
    map(&b, 0x00800000, 0x1200400000ull, M4, U); /* PSE-36: PA bits 32-39 */
    map(&b, 0xC0000000, 0xFFFFF000, K4, W);
    for (unsigned i = 0; i < 64; i++)
        map(&b, 0x10000000 + i * K4 * 3, 0x40000000 + i * K4 * 7, K4, W);
    check_against_model(&b, &seed, 4000, 0xFFFFFFFF);
    /* the upper half of a linear address is dropped */
    expect_pa(&b, 0xFFFFFFFF00401234ull, 0x00801234, M4);
    struct guest_walk_result r = walk(&b, 0x1ABC);
    assert_true(r.writable && r.user && r.executable);
    assert_int_equal(r.level, 1);
    r = walk(&b, 0x2ABC);
    assert_false(r.writable || r.user);
    /* without CR4.PSE, PDE.PS is ignored: the PDE points to a page table */
    b.p.cr4 = 0;
    uint64_t pde = slot(&b, 0x00400000, 2);
    uint64_t pt = new_table(&b);
    put(&b, pde, 4, pt | PS | P | W);
    put(&b, pt + 3 * 4, 4, 0x00ABC000 | P);
    expect_pa(&b, 0x00403456, 0x00ABC456, K4);
    expect_fail(&b, 0x00404000, GW_NOT_PRESENT, 1);
    b.p.cr4 = GW_CR4_PSE;
    put(&b, pde, 4, 0x00800000 | PS | P | W);
    /* bit 21 of a 4 MiB PDE is reserved; PSE-36 bits beyond MAXPHYADDR too */
    put(&b, pde, 4, 0x00800000 | (1u << 21) | PS | P);
    expect_fail(&b, 0x00400000, GW_RESERVED, 2);
    put(&b, pde, 4, 0x00800000 | PS | P);
    b.p.maxphyaddr = 36;
    expect_fail(&b, 0x00800000, GW_RESERVED, 2); /* maps 0x12_0040_0000: bit 36 */
    b.p.maxphyaddr = 40;
    expect_pa(&b, 0x00800010, 0x1200400010ull, M4);
    /* CR3's upper bits and low bits are not part of the table's address */
    b.p.cr3 |= 0xFFFFFFFF00000018ull;
    expect_pa(&b, 0x00001010, 0x00005010, K4);
    gm_free(&b.g);
}

static void test_pae(void **state)
{
    (void)state;
    struct builder b;
    uint64_t seed = 3;
    builder_init(&b, M_PAE, 0x300000);
    map(&b, 0x00000000, 0x00000000, M2, W);
    map(&b, 0x40200000, 0x500000000ull, M2, W | U); /* above 4 GiB */
    map(&b, 0x80001000, 0x12345000, K4, 0);
    map(&b, 0xFFFFF000, 0xFFFFFFFFF000ull, K4, W); /* the last page, to a 48-bit PA */
    for (unsigned i = 0; i < 40; i++)
        map(&b, 0xC0000000 + i * K4 * 5, 0x7000000 + i * K4, K4, W);
    for (unsigned i = 0; i < 8; i++)
        map(&b, 0x60000000 + i * M2 * 3, 0x1000000000ull + i * M2, M2, 0);
    check_against_model(&b, &seed, 4000, 0xFFFFFFFF);
    expect_pa(&b, 0x1234567840201234ull, 0x500001234ull, M2); /* 32-bit linear */
    /* PDPTE: not present, then its reserved bits (W, U, PS, bit 63) */
    uint64_t pdpte_addr = (b.p.cr3 & 0xFFFFFFE0) + 2 * 8, pdpte = get(&b, pdpte_addr, 8);
    put(&b, pdpte_addr, 8, pdpte & ~P);
    expect_fail(&b, 0x80001000, GW_NOT_PRESENT, 3);
    static const uint64_t bad[] = {W, U, PS, 1ull << 63, 1ull << 52, 1ull << 5, 1ull << 8};
    for (unsigned i = 0; i < COUNT(bad); i++) {
        put(&b, pdpte_addr, 8, pdpte | bad[i]);
        expect_fail(&b, 0x80001000, GW_RESERVED, 3);
    }
    put(&b, pdpte_addr, 8, pdpte | (1ull << 9) | (1ull << 3));
    expect_pa(&b, 0x80001ABC, 0x12345ABC, K4); /* PWT and an available bit are fine */
    put(&b, pdpte_addr, 8, pdpte);
    /* XD: reserved without EFER.NXE, reported with it */
    uint64_t pde_addr = slot(&b, 0x40200000, 2), pde = get(&b, pde_addr, 8);
    put(&b, pde_addr, 8, pde | XD);
    expect_fail(&b, 0x40200000, GW_RESERVED, 2);
    b.p.efer = GW_EFER_NXE;
    struct guest_walk_result r = walk(&b, 0x40200000);
    assert_int_equal(r.status, GW_OK);
    assert_false(r.executable);
    assert_true(r.writable && r.user);
    b.p.efer = 0;
    /* a 2 MiB page with bits 13-20 set is reserved; bit 12 (PAT) is not an address bit */
    put(&b, pde_addr, 8, pde | (1ull << 13));
    expect_fail(&b, 0x40200000, GW_RESERVED, 2);
    put(&b, pde_addr, 8, pde | (1ull << 12));
    expect_pa(&b, 0x40200000, 0x500000000ull, M2);
    /* with PAE, bits 52-62 of a PDE or PTE are reserved (unlike long mode) */
    uint64_t pte_addr = slot(&b, 0x80001000, 1), pte = get(&b, pte_addr, 8);
    put(&b, pte_addr, 8, pte | (1ull << 58));
    expect_fail(&b, 0x80001000, GW_RESERVED, 1);
    put(&b, pte_addr, 8, pte);
    put(&b, pde_addr, 8, pde | (1ull << 52));
    expect_fail(&b, 0x40200000, GW_RESERVED, 2);
    put(&b, pde_addr, 8, pde);
    /* beyond MAXPHYADDR */
    b.p.maxphyaddr = 34;
    expect_fail(&b, 0x40200000, GW_RESERVED, 2); /* maps 0x5_0000_0000: bit 34 */
    expect_fail(&b, 0xFFFFF000, GW_RESERVED, 1);
    b.p.maxphyaddr = 35;
    expect_pa(&b, 0x40200000, 0x500000000ull, M2);
    gm_free(&b.g);
}

static void fill_long(struct builder *b)
{
    map(b, 0x0, 0x0, G1, W);
    map(b, 0x40000000, 0x4000000000ull, G1, U);
    map(b, 0x80200000, 0x80000000, M2, W);
    map(b, 0x80400000, 0xFFFFE00000ull, M2, 0);
    map(b, 0x7FFFFFFFF000ull, 0x9000, K4, W);
    map(b, 0xFFFF800000000000ull, 0xC00000, M2, W);
    map(b, 0xFFFFFFFFFFFFF000ull, 0xFFFFFFFFFF000ull, K4, 0); /* the last page, the highest PA */
    map(b, 0x0000123456789000ull, 0x0000000ABCDEF000ull, K4, W | U);
    for (unsigned i = 0; i < 64; i++)
        map(b, 0x00007F0000000000ull + i * K4 * 513, 0x20000000 + i * K4, K4, W);
    for (unsigned i = 0; i < 16; i++)
        map(b, 0x0000400000000000ull + i * G1 * 3, 0x10000000000ull + i * G1, G1, 0);
}

static void test_long4(void **state)
{
    (void)state;
    struct builder b;
    uint64_t seed = 4;
    builder_init(&b, M_LONG4, 0x1123400000ull); /* tables above 4 GiB */
    fill_long(&b);
    check_against_model(&b, &seed, 6000, ~0ull);
    check_against_model(&b, &seed, 2000, 0x0000FFFFFFFFFFFFull);
    /* non-canonical: refused before any table is read */
    static const uint64_t nc[] = {0x0000800000000000ull, 0xFFFF7FFFFFFFFFFFull, 0x8000000000000000ull,
                                  0x0012345678000000ull, 0x00FF800000000000ull};
    for (unsigned i = 0; i < COUNT(nc); i++) {
        expect_fail(&b, nc[i], GW_NON_CANONICAL, 0);
        assert_int_equal(b.g.nlog, 0);
    }
    /* 1 GiB pages absent: PS at the PDPT level is reserved */
    b.p.no_1g_pages = true;
    expect_fail(&b, 0x40000000, GW_RESERVED, 3);
    b.p.no_1g_pages = false;
    /* PS in a PML4E is reserved */
    uint64_t pml4e_addr = slot(&b, 0, 4), pml4e = get(&b, pml4e_addr, 8);
    put(&b, pml4e_addr, 8, pml4e | PS);
    expect_fail(&b, 0x1000, GW_RESERVED, 4);
    put(&b, pml4e_addr, 8, pml4e);
    /* reserved low bits of large pages; PAT bits are fine */
    uint64_t e3 = slot(&b, 0x40000000, 3), v3 = get(&b, e3, 8);
    put(&b, e3, 8, v3 | (1ull << 29));
    expect_fail(&b, 0x40000000, GW_RESERVED, 3);
    put(&b, e3, 8, v3 | (1ull << 13));
    expect_fail(&b, 0x40000000, GW_RESERVED, 3);
    put(&b, e3, 8, v3 | (1ull << 12));
    expect_pa(&b, 0x40000123, 0x4000000123ull, G1);
    put(&b, e3, 8, v3);
    uint64_t e1 = slot(&b, 0x7FFFFFFFF000ull, 1), v1 = get(&b, e1, 8);
    put(&b, e1, 8, v1 | PS); /* bit 7 of a PTE is PAT */
    expect_pa(&b, 0x7FFFFFFFF123ull, 0x9123, K4);
    /* bits 52-62 belong to the software in long mode, at every level; 48-51 are reserved
     * with a 48-bit MAXPHYADDR */
    b.p.maxphyaddr = 48;
    for (unsigned level = 1; level <= 4; level++) {
        uint64_t e = slot(&b, 0x7FFFFFFFF000ull, level), v = get(&b, e, 8);
        put(&b, e, 8, v | 0x7FF0000000000000ull);
        expect_pa(&b, 0x7FFFFFFFF123ull, 0x9123, K4);
        put(&b, e, 8, v | (1ull << 51));
        expect_fail(&b, 0x7FFFFFFFF123ull, GW_RESERVED, level);
        put(&b, e, 8, v | (1ull << 48));
        expect_fail(&b, 0x7FFFFFFFF123ull, GW_RESERVED, level);
        put(&b, e, 8, v);
    }
    b.p.maxphyaddr = 0;
    /* physical-address bits beyond MAXPHYADDR */
    b.p.maxphyaddr = 38;
    expect_fail(&b, 0x40000000, GW_RESERVED, 3); /* maps 0x40_0000_0000: bit 38 */
    b.p.maxphyaddr = 39;
    expect_pa(&b, 0x40000000, 0x4000000000ull, G1);
    gm_free(&b.g);
}

static void test_long4_maxphyaddr(void **state)
{
    (void)state;
    struct builder b;
    builder_init(&b, M_LONG4, 0x100000);
    map(&b, 0x1000, 0x8000000000ull, K4, W); /* bit 39 */
    map(&b, 0x200000, 0x4000000000ull, M2, W); /* bit 38 */
    b.p.maxphyaddr = 39;
    expect_fail(&b, 0x1000, GW_RESERVED, 1);
    expect_pa(&b, 0x200000, 0x4000000000ull, M2);
    b.p.maxphyaddr = 40;
    expect_pa(&b, 0x1000, 0x8000000000ull, K4);
    /* a table beyond MAXPHYADDR: the PDE's pointer */
    uint64_t pde = slot(&b, 0x1000, 2), v = get(&b, pde, 8);
    put(&b, pde, 8, v | (1ull << 45));
    expect_fail(&b, 0x1000, GW_RESERVED, 2);
    put(&b, pde, 8, v);
    /* CR3 beyond MAXPHYADDR */
    b.p.cr3 |= 1ull << 44;
    expect_fail(&b, 0x1000, GW_RESERVED, 0);
    assert_int_equal(b.g.nlog, 0);
    b.p.cr3 &= ~(1ull << 44);
    /* XD without NXE */
    b.p.efer &= ~GW_EFER_NXE;
    put(&b, pde, 8, v | XD);
    expect_fail(&b, 0x1000, GW_RESERVED, 2);
    b.p.efer |= GW_EFER_NXE;
    struct guest_walk_result r = walk(&b, 0x1000);
    assert_int_equal(r.status, GW_OK);
    assert_false(r.executable);
    /* a PML4E pointing at the PML4 itself: the walk still ends */
    uint64_t pml4 = b.p.cr3 & ~0xFFFull;
    put(&b, pml4 + 511 * 8, 8, pml4 | P | W);
    r = walk(&b, 0xFFFFFFFFFFFFF000ull);
    assert_int_equal(r.status, GW_OK); /* the PML4 read as the PT: its last entry maps itself */
    assert_int_equal(r.pa, pml4);
    assert_int_equal(b.g.entry_reads, 4);
    gm_free(&b.g);
}

static void test_long5(void **state)
{
    (void)state;
    struct builder b;
    uint64_t seed = 5;
    builder_init(&b, M_LONG5, 0x100000);
    fill_long(&b);
    /* addresses only 5-level paging has */
    map(&b, 0x0012345678000000ull, 0x3000000, K4, W);
    map(&b, 0x00FFFFFFFFE00000ull, 0x4000000, M2, W);
    map(&b, 0xFF00000000000000ull, 0x140000000ull, G1, W);
    map(&b, 0xFFFF000000000000ull, 0x6000000, K4, W);
    map(&b, 0x0100000000000000ull - 2 * G1, 0x80000000, G1, 0); /* near the top of the lower half */
    check_against_model(&b, &seed, 6000, ~0ull);
    check_against_model(&b, &seed, 3000, 0x01FFFFFFFFFFFFFFull);
    expect_pa(&b, 0x0012345678000ABCull, 0x3000ABC, K4);
    expect_pa(&b, 0xFF00000000000123ull, 0x140000123ull, G1);
    static const uint64_t nc[] = {0x0100000000000000ull, 0xFEFFFFFFFFFFFFFFull, 0x8000000000000000ull};
    for (unsigned i = 0; i < COUNT(nc); i++) {
        expect_fail(&b, nc[i], GW_NON_CANONICAL, 0);
        assert_int_equal(b.g.nlog, 0);
    }
    struct guest_walk_result r = walk(&b, 0x0012345678000000ull);
    assert_int_equal(b.g.entry_reads, 5);
    assert_int_equal(r.level, 1);
    /* PS in a PML5E is reserved */
    uint64_t e5 = slot(&b, 0x1000, 5), v5 = get(&b, e5, 8);
    put(&b, e5, 8, v5 | PS);
    expect_fail(&b, 0x1000, GW_RESERVED, 5);
    put(&b, e5, 8, v5 & ~P);
    expect_fail(&b, 0x1000, GW_NOT_PRESENT, 5);
    put(&b, e5, 8, v5);
    /* the same tables read as 4-level (LA57 clear) translate differently or not at all */
    b.p.cr4 &= ~GW_CR4_LA57;
    expect_fail(&b, 0x0012345678000000ull, GW_NON_CANONICAL, 0);
    expect_fail(&b, 0x40000123, GW_NOT_PRESENT, 3); /* PML5[0] read as the PML4, the PML4 as a PDPT */
    gm_free(&b.g);
}

/* Not present at each level of each mode: the walk stops there, having read one entry per
 * level above it and that one. */
static void test_not_present_each_level(void **state)
{
    (void)state;
    static const struct {
        enum mode mode;
        unsigned top;
        uint64_t la;
    } cases[] = {{M_32, 2, 0x12345000}, {M_PAE, 3, 0x92345000}, {M_LONG4, 4, 0x00007ABCDEF12000ull},
                 {M_LONG5, 5, 0xFF7ABCDEF1234000ull}};
    for (unsigned c = 0; c < COUNT(cases); c++) {
        for (unsigned level = 1; level <= cases[c].top; level++) {
            struct builder b;
            builder_init(&b, cases[c].mode, 0x200000);
            map(&b, cases[c].la, 0x777000, K4, W);
            expect_pa(&b, cases[c].la + 0x10, 0x777010, K4);
            uint64_t e = slot(&b, cases[c].la, level);
            unsigned size = cases[c].mode == M_32 ? 4 : 8;
            uint64_t v = get(&b, e, size);
            put(&b, e, size, v & ~P);
            expect_fail(&b, cases[c].la, GW_NOT_PRESENT, level);
            assert_int_equal(b.g.entry_reads, cases[c].top - level + 1);
            assert_int_equal(b.g.log[b.g.nlog - 1], e);
            gm_free(&b.g);
        }
    }
}

/* The callback refuses a table page: the walk fails at that level, having read nothing in or
 * after it (exactly one attempted read of the refused page). CR3 outside RAM likewise. */
static void test_refused_table_page(void **state)
{
    (void)state;
    static const struct {
        enum mode mode;
        unsigned top;
        uint64_t la;
    } cases[] = {{M_32, 2, 0x12345000}, {M_PAE, 3, 0x92345000}, {M_LONG4, 4, 0x00007ABCDEF12000ull},
                 {M_LONG5, 5, 0xFF7ABCDEF1234000ull}};
    for (unsigned c = 0; c < COUNT(cases); c++) {
        for (unsigned level = 1; level <= cases[c].top; level++) {
            struct builder b;
            builder_init(&b, cases[c].mode, 0x200000);
            map(&b, cases[c].la, 0x777000, K4, W);
            uint64_t e = slot(&b, cases[c].la, level);
            b.g.refused[0] = e & ~(K4 - 1);
            expect_fail(&b, cases[c].la, GW_READ_REFUSED, level);
            assert_int_equal(b.g.entry_reads, cases[c].top - level + 1);
            for (unsigned i = 0; i + 1 < b.g.nlog; i++)
                assert_true((b.g.log[i] & ~(K4 - 1)) != b.g.refused[0]);
            assert_int_equal(b.g.log[b.g.nlog - 1], e);
            /* and reading bytes there fails the same way, without reading any byte */
            uint8_t buf[15];
            struct guest_walk_result r;
            b.g.byte_reads = 0;
            assert_false(guest_read_linear(&b.p, &b.ops, cases[c].la, buf, 15, &r));
            assert_int_equal(r.status, GW_READ_REFUSED);
            assert_int_equal(r.level, level);
            assert_int_equal(b.g.byte_reads, 0);
            gm_free(&b.g);
        }
    }
    /* CR3 pointing outside guest RAM */
    struct builder b;
    builder_init(&b, M_LONG4, 0x200000);
    b.p.cr3 = 0x7FFF000;
    expect_fail(&b, 0x1000, GW_READ_REFUSED, 4);
    assert_int_equal(b.g.entry_reads, 1);
    gm_free(&b.g);
}

static void fill_bytes(struct builder *b, uint64_t pa, uint8_t seed)
{
    uint8_t *p = gm_page(&b->g, pa & ~(K4 - 1));
    for (unsigned i = 0; i < K4; i++)
        p[i] = (uint8_t)(seed + i * 7);
}

/* Copying an instruction's bytes: within a page, across pages mapped anywhere, into an
 * unmapped or refused page, wrapping in legacy modes, into non-canonical space. */
static void test_read_linear(void **state)
{
    (void)state;
    struct builder b;
    struct guest_walk_result r;
    uint8_t buf[16];
    builder_init(&b, M_LONG4, 0x200000);
    map(&b, 0x400000, 0x900000, K4, W);
    map(&b, 0x401000, 0x500000, K4, W); /* the next linear page, at a lower physical page */
    map(&b, 0x600000, 0xA00000, M2, W);
    map(&b, 0x7FFFFFFFF000ull, 0xB00000, K4, W);
    fill_bytes(&b, 0x900000, 1);
    fill_bytes(&b, 0x500000, 100);
    fill_bytes(&b, 0xA00000, 50);
    fill_bytes(&b, 0xA01000, 60);
    fill_bytes(&b, 0xB00000, 70);
    /* within a page */
    memset(buf, 0, sizeof buf);
    assert_true(guest_read_linear(&b.p, &b.ops, 0x400010, buf, 15, &r));
    for (unsigned i = 0; i < 15; i++)
        assert_int_equal(buf[i], (uint8_t)(1 + (0x10 + i) * 7));
    /* across the boundary, at every split */
    for (unsigned before = 1; before < 15; before++) {
        b.g.byte_reads = 0;
        memset(buf, 0, sizeof buf);
        assert_true(guest_read_linear(&b.p, &b.ops, 0x401000 - before, buf, 15, &r));
        for (unsigned i = 0; i < 15; i++) {
            uint8_t want = i < before ? (uint8_t)(1 + (K4 - before + i) * 7) : (uint8_t)(100 + (i - before) * 7);
            assert_int_equal(buf[i], want);
        }
        assert_int_equal(b.g.byte_reads, 2);
    }
    /* inside a 2 MiB page, across a 4 KiB boundary: still two translations */
    b.g.byte_reads = 0;
    assert_true(guest_read_linear(&b.p, &b.ops, 0x600FFA, buf, 12, &r));
    assert_int_equal(b.g.byte_reads, 2);
    assert_int_equal(buf[5], (uint8_t)(50 + 0xFFF * 7));
    assert_int_equal(buf[6], 60);
    /* into an unmapped page: fails on the second page, which res names */
    b.g.byte_reads = 0;
    assert_false(guest_read_linear(&b.p, &b.ops, 0x401FF8, buf, 15, &r));
    assert_int_equal(r.status, GW_NOT_PRESENT);
    assert_int_equal(r.linear, 0x402000);
    assert_int_equal(b.g.byte_reads, 1);
    /* into a page whose bytes the callback refuses */
    b.g.refused[0] = 0x500000;
    assert_false(guest_read_linear(&b.p, &b.ops, 0x400FF8, buf, 15, &r));
    assert_int_equal(r.status, GW_READ_REFUSED);
    assert_int_equal(r.level, 0);
    assert_int_equal(r.linear, 0x401000);
    b.g.refused[0] = 0;
    /* to the end of the lower half and beyond: non-canonical */
    assert_true(guest_read_linear(&b.p, &b.ops, 0x7FFFFFFFFFF0ull, buf, 15, &r));
    assert_false(guest_read_linear(&b.p, &b.ops, 0x7FFFFFFFFFFAull, buf, 15, &r));
    assert_int_equal(r.status, GW_NON_CANONICAL);
    assert_int_equal(r.linear, 0x800000000000ull);
    /* arguments */
    assert_false(guest_read_linear(&b.p, &b.ops, 0x400000, buf, 16, &r));
    assert_int_equal(r.status, GW_BAD_ARGS);
    assert_true(guest_read_linear(&b.p, &b.ops, 0x12345, buf, 0, &r));
    assert_false(guest_read_linear(&b.p, &b.ops, 0x400000, NULL, 4, &r));
    assert_false(guest_read_linear(NULL, &b.ops, 0x400000, buf, 4, &r));
    assert_false(guest_walk(&b.p, NULL, 0x400000, &r));
    assert_int_equal(r.status, GW_BAD_ARGS);
    assert_true(guest_read_linear(&b.p, &b.ops, 0x400000, buf, 4, NULL));
    gm_free(&b.g);

    /* 32-bit paging: the linear address wraps at 4 GiB */
    builder_init(&b, M_32, 0x200000);
    map(&b, 0xFFFFF000, 0x300000, K4, 0);
    map(&b, 0x0, 0x301000, K4, 0);
    fill_bytes(&b, 0x300000, 9);
    fill_bytes(&b, 0x301000, 200);
    assert_true(guest_read_linear(&b.p, &b.ops, 0xFFFFFFFC, buf, 8, &r));
    assert_int_equal(buf[3], (uint8_t)(9 + 0xFFF * 7));
    assert_int_equal(buf[4], 200);
    gm_free(&b.g);

    /* no paging: across the 4 GiB wrap, the callback deciding what is RAM */
    builder_init(&b, M_OFF, 0x200000);
    fill_bytes(&b, 0xFFFFF000, 3);
    fill_bytes(&b, 0x0, 4);
    assert_true(guest_read_linear(&b.p, &b.ops, 0xFFFFFFFE, buf, 4, &r));
    assert_int_equal(buf[1], (uint8_t)(3 + 0xFFF * 7));
    assert_int_equal(buf[2], 4);
    assert_false(guest_read_linear(&b.p, &b.ops, 0x1FFE, buf, 4, &r)); /* 0x1000 is not RAM */
    assert_int_equal(r.status, GW_READ_REFUSED);
    gm_free(&b.g);
}

/* Random page tables in each mode, random addresses, against the model. */
static void test_random_tables(void **state)
{
    (void)state;
    uint64_t seed = 0x7ab1e5;
    for (unsigned round = 0; round < 40; round++) {
        enum mode mode = (enum mode)(M_32 + round % 4);
        struct builder b;
        builder_init(&b, mode, 0x100000);
        uint64_t la_mask = mode == M_32 || mode == M_PAE ? 0xFFFFFFFFull
                           : mode == M_LONG4             ? 0x0000FFFFFFFFFFFFull
                                                         : 0x01FFFFFFFFFFFFFFull;
        for (unsigned i = 0; i < 60; i++) {
            uint64_t r = test_rand(&seed);
            uint64_t size = mode == M_32 ? ((r & 3) ? K4 : M4) : (r & 3) == 0 ? M2 : (r & 15) == 1 ? G1 : K4;
            if (mode == M_PAE && size == G1)
                size = M2;
            uint64_t la = test_rand(&seed) & la_mask & ~(size - 1);
            if (mode == M_LONG4 && (la >> 47))
                la |= 0xFFFF000000000000ull;
            if (mode == M_LONG5 && (la >> 56))
                la |= 0xFE00000000000000ull;
            uint64_t pa = (test_rand(&seed) & (mode == M_32 ? 0xFFFFFFFFFFull : 0xFFFFFFFFFFFFFull)) & ~(size - 1);
            if (mode == M_32 && size == K4)
                pa &= 0xFFFFFFFF;
            /* skip overlaps with what is there (the model is a plain list) */
            bool clash = false;
            for (unsigned k = 0; k < b.nmap; k++) {
                uint64_t big = b.map[k].size > size ? b.map[k].size : size;
                if (b.map[k].size == K4 && size == K4)
                    clash |= b.map[k].la == la;
                else /* a large page and anything else in its region */
                    clash |= (b.map[k].la & ~(big - 1)) == (la & ~(big - 1));
            }
            if (!clash)
                map(&b, la, pa, size, (r >> 8) & (W | U));
        }
        check_against_model(&b, &seed, 2000, ~0ull);
        gm_free(&b.g);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paging_off),
        cmocka_unit_test(test_32bit),
        cmocka_unit_test(test_pae),
        cmocka_unit_test(test_long4),
        cmocka_unit_test(test_long4_maxphyaddr),
        cmocka_unit_test(test_long5),
        cmocka_unit_test(test_not_present_each_level),
        cmocka_unit_test(test_refused_table_page),
        cmocka_unit_test(test_read_linear),
        cmocka_unit_test(test_random_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
