/* The VT-d model itself, programmed directly through its registers with tables in a test
 * memory arena. Expected values are the VT-d specification's and, where it leaves a
 * choice, QEMU 7.2's as measured (/work/shared/spec/qemu-probe-findings.md). */
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "vtd_model.h"

/* Register offsets; IVA/IOTLB and FRCD where QEMU's ECAP.IRO and CAP.FRO put them. */
enum {
    VER = 0x00, CAP = 0x08, ECAP = 0x10, GCMD = 0x18, GSTS = 0x1C, RTADDR = 0x20, CCMD = 0x28,
    FSTS = 0x34, FECTL = 0x38, FEDATA = 0x3C, FEADDR = 0x40, FEUADDR = 0x44,
    IQH = 0x80, IQT = 0x88, IQA = 0x90, ICS = 0x9C, IECTL = 0xA0, IEDATA = 0xA4, IEADDR = 0xA8,
    IVA = 0xF0, IOTLB = 0xF8, FRCD = 0x220,
};

#define TE (1u << 31)
#define SRTP (1u << 30)
#define QIE (1u << 26)
#define PERSISTENT_GSTS 0x96FFFFFFu /* GSTS bits to carry into a GCMD write */

#define PFO 0x1u
#define PPF 0x2u
#define IQE 0x10u
#define F (1ull << 63)
#define T_READ (1ull << 62)

#define R 1ull
#define W 2ull
#define RW 3ull
#define PS (1ull << 7)
#define SNP (1ull << 11)

#define EDU 0x0018   /* 00:03.0, as under QEMU */
#define EDU2 0x0020  /* 00:04.0 */
#define EDU_DID 1

#define ARENA_BASE 0x10000000ull
#define ARENA_SIZE (2u << 20)
#define NO_MEMORY 0x7000000000ull /* inside MGAW, outside the arena */

/* DMA targets: the model never touches them, so they need no memory. */
#define BUF_A 0x40000000ull
#define BUF_RO 0x40001000ull
#define BUF_C 0x40002000ull
#define BUF_D 0x40003000ull
#define BUF_SRC 0x40004000ull

struct fixture {
    uint8_t *arena;
    uint64_t next_page;
    unsigned msis;
    uint64_t msi_addr;
    uint32_t msi_data;

    struct vtd_model *m;
    unsigned levels; /* of edu's second-level tables */
    uint64_t root, ctx, top;
    uint64_t queue;
    unsigned tail; /* next free descriptor */
};

static bool arena_read(void *ctx, uint64_t pa, void *buf, size_t len)
{
    struct fixture *f = ctx;
    if (pa < ARENA_BASE || pa - ARENA_BASE > ARENA_SIZE || len > ARENA_SIZE - (pa - ARENA_BASE))
        return false;
    memcpy(buf, f->arena + (pa - ARENA_BASE), len);
    return true;
}

static bool arena_write(void *ctx, uint64_t pa, const void *buf, size_t len)
{
    struct fixture *f = ctx;
    if (pa < ARENA_BASE || pa - ARENA_BASE > ARENA_SIZE || len > ARENA_SIZE - (pa - ARENA_BASE))
        return false;
    memcpy(f->arena + (pa - ARENA_BASE), buf, len);
    return true;
}

static void arena_msi(void *ctx, uint64_t addr, uint32_t data)
{
    struct fixture *f = ctx;
    f->msis++;
    f->msi_addr = addr;
    f->msi_data = data;
}

static uint64_t alloc_page(struct fixture *f)
{
    uint64_t pa = f->next_page;
    assert_true(pa + 4096 <= ARENA_BASE + ARENA_SIZE);
    f->next_page += 4096;
    return pa;
}

static void put64(struct fixture *f, uint64_t pa, uint64_t v)
{
    for (unsigned b = 0; b < 8; b++)
        f->arena[pa - ARENA_BASE + b] = (uint8_t)(v >> (8 * b));
}

static uint64_t get64(struct fixture *f, uint64_t pa)
{
    uint64_t v = 0;
    for (unsigned b = 0; b < 8; b++)
        v |= (uint64_t)f->arena[pa - ARENA_BASE + b] << (8 * b);
    return v;
}

/* The address of the entry for iova at 'level' (1 = PTE) under top, creating the
 * intermediate tables (non-leaf entries RW) on the way. */
static uint64_t slpte_at(struct fixture *f, uint64_t top, unsigned levels, uint64_t iova, unsigned level)
{
    uint64_t table = top;
    for (unsigned l = levels;; l--) {
        uint64_t entry_pa = table + ((iova >> (12 + 9 * (l - 1))) & 0x1FF) * 8;
        if (l == level)
            return entry_pa;
        if (!(get64(f, entry_pa) & RW))
            put64(f, entry_pa, alloc_page(f) | RW);
        table = get64(f, entry_pa) & ~0xFFFull;
    }
}

static void map(struct fixture *f, uint64_t iova, uint64_t value)
{
    put64(f, slpte_at(f, f->top, f->levels, iova, 1), value);
}

static void set_context(struct fixture *f, uint16_t sid, uint64_t lo, uint64_t hi)
{
    put64(f, f->ctx + (sid & 0xFF) * 16, lo);
    put64(f, f->ctx + (sid & 0xFF) * 16 + 8, hi);
}

static uint64_t edu_context_hi(struct fixture *f)
{
    return (f->levels - 2) | EDU_DID << 8;
}

static uint32_t r32(struct fixture *f, uint32_t off)
{
    return vtd_model_read32(f->m, off);
}

static uint64_t r64(struct fixture *f, uint32_t off)
{
    return vtd_model_read64(f->m, off);
}

static void gcmd(struct fixture *f, uint32_t command)
{
    vtd_model_write32(f->m, GCMD, (r32(f, GSTS) & PERSISTENT_GSTS) | command);
}

static struct vtd_model_stats stats(struct fixture *f)
{
    return vtd_model_stats(f->m);
}

static void cc_global(struct fixture *f)
{
    vtd_model_write64(f->m, CCMD, 1ull << 63 | 1ull << 61);
}

static void cc_domain(struct fixture *f, uint16_t did)
{
    vtd_model_write64(f->m, CCMD, 1ull << 63 | 2ull << 61 | did);
}

static void cc_device(struct fixture *f, uint16_t sid, uint16_t did, unsigned fm)
{
    vtd_model_write64(f->m, CCMD, 1ull << 63 | 3ull << 61 | (uint64_t)fm << 32 | (uint64_t)sid << 16 | did);
}

static void iotlb_global(struct fixture *f)
{
    vtd_model_write64(f->m, IOTLB, 1ull << 63 | 1ull << 60);
}

static void iotlb_domain(struct fixture *f, uint16_t did)
{
    vtd_model_write64(f->m, IOTLB, 1ull << 63 | 2ull << 60 | (uint64_t)did << 32);
}

static void iotlb_page(struct fixture *f, uint16_t did, uint64_t iova, unsigned am)
{
    vtd_model_write64(f->m, IVA, iova | am);
    vtd_model_write64(f->m, IOTLB, 1ull << 63 | 3ull << 60 | (uint64_t)did << 32);
}

static void flush_all(struct fixture *f)
{
    cc_global(f);
    iotlb_global(f);
}

/* Creates the model with edu's root, context and top table in the arena, edu's mappings
 * from the probe (0x103000 and 0x200000 left unmapped) and translation off. */
static void start(struct fixture *f, struct vtd_model_config cfg, unsigned levels)
{
    struct vtd_model_memory mem = {.ctx = f, .read = arena_read, .write = arena_write, .msi = arena_msi};
    f->m = vtd_model_create(&cfg, &mem);
    assert_non_null(f->m);
    f->levels = levels;
    f->root = alloc_page(f);
    f->ctx = alloc_page(f);
    f->top = alloc_page(f);
    put64(f, f->root, f->ctx | 1);
    set_context(f, EDU, f->top | 1, edu_context_hi(f));
    map(f, 0x100000, BUF_A | RW);
    map(f, 0x101000, BUF_RO | R);
    map(f, 0x102000, BUF_C | RW);
    map(f, 0x104000, BUF_SRC | RW);
}

/* The probe's enable sequence, with the GSTS and command read-backs it measured. */
static void enable(struct fixture *f)
{
    vtd_model_write64(f->m, RTADDR, f->root);
    gcmd(f, SRTP);
    assert_int_equal(r32(f, GSTS), 0x40000000);
    cc_global(f);
    assert_int_equal(r64(f, CCMD), 0x2800000000000000ull);
    iotlb_global(f);
    assert_int_equal(r64(f, IOTLB), 0x1200000000000000ull);
    gcmd(f, TE);
    assert_int_equal(r32(f, GSTS), 0xC0000000);
}

static void start_enabled(struct fixture *f, struct vtd_model_config cfg, unsigned levels)
{
    start(f, cfg, levels);
    enable(f);
}

static void qi_enable(struct fixture *f)
{
    f->queue = alloc_page(f);
    f->tail = 0;
    vtd_model_write64(f->m, IQT, 0);
    vtd_model_write64(f->m, IQA, f->queue); /* DW=0, QS=0: 256 descriptors */
    gcmd(f, QIE);
    assert_true(r32(f, GSTS) & QIE);
}

/* Puts a descriptor at the tail without telling the unit. */
static void qi_put(struct fixture *f, uint64_t lo, uint64_t hi)
{
    put64(f, f->queue + f->tail * 16, lo);
    put64(f, f->queue + f->tail * 16 + 8, hi);
    f->tail = (f->tail + 1) % 256;
}

static void qi_submit(struct fixture *f, uint64_t lo, uint64_t hi)
{
    qi_put(f, lo, hi);
    vtd_model_write64(f->m, IQT, (uint64_t)f->tail << 4);
}

static uint64_t wait_sw(uint32_t data)
{
    return 0x5 | 1ull << 5 | (uint64_t)data << 32;
}

static uint64_t frcd_hi(uint16_t sid, uint8_t reason, bool write)
{
    return F | (write ? 0 : T_READ) | (uint64_t)reason << 32 | sid;
}

/* Clears record i as a fault handler does: F, then FSTS (W1C of what is set), which also
 * lets FECTL.IP clear. */
static void clear_fault(struct fixture *f, unsigned i)
{
    vtd_model_write64(f->m, FRCD + 16 * i + 8, F);
    vtd_model_write32(f->m, FSTS, r32(f, FSTS));
}

static struct vtd_model_result dma_ok(struct fixture *f, uint16_t sid, uint64_t iova, bool write, uint64_t pa)
{
    struct vtd_model_result r = vtd_model_dma(f->m, sid, iova, write);
    assert_true(r.ok);
    assert_int_equal(r.pa, pa);
    return r;
}

/* A fault recorded in FRCD0 (the only record under QEMU's CAP), checked and cleared. */
static void expect_fault(struct fixture *f, uint16_t sid, uint64_t iova, bool write, uint8_t reason)
{
    struct vtd_model_result r = vtd_model_dma(f->m, sid, iova, write);
    assert_false(r.ok);
    assert_int_equal(r.reason, reason);
    assert_true(r.recorded);
    assert_int_equal(r64(f, FRCD + 8), frcd_hi(sid, reason, write));
    assert_int_equal(r64(f, FRCD), iova & ~0xFFFull);
    assert_int_equal(r32(f, FSTS), PPF);
    clear_fault(f, 0);
    assert_int_equal(r32(f, FSTS), 0);
}

static struct vtd_model_config qemu39(void)
{
    return vtd_model_config_qemu(39);
}

/* The specification's choices everywhere QEMU has a flag. */
static struct vtd_model_config spec39(void)
{
    struct vtd_model_config c = {.ver = 0x10, .cap = 0x00D2008C22260206ull, .ecap = 0xF00F4A};
    return c;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->arena = calloc(1, ARENA_SIZE);
    assert_non_null(f->arena);
    f->next_page = ARENA_BASE;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    vtd_model_destroy(f->m);
    free(f->arena);
    free(f);
    return 0;
}

/* ---- Register file ----------------------------------------------------------------- */

static void test_reset_values(void **state)
{
    struct fixture *f = *state;
    start(f, qemu39(), 3);
    assert_int_equal(r32(f, VER), 0x10);
    assert_int_equal(r64(f, CAP), 0x00D2008C22260206ull);
    assert_int_equal(r32(f, CAP + 4), 0x00D2008C);
    assert_int_equal(r64(f, ECAP), 0xF00F4A);
    assert_int_equal(r32(f, GSTS), 0);
    assert_int_equal(r64(f, RTADDR), 0);
    assert_int_equal(r32(f, FSTS), 0);
    assert_int_equal(r32(f, FECTL), 0x80000000);
    assert_int_equal(r32(f, IECTL), 0x80000000);
    assert_int_equal(r32(f, GCMD), 0); /* write-only */
    /* A 64-bit read of two 32-bit registers gives both. */
    vtd_model_write32(f->m, FEDATA, 0x12345678);
    assert_int_equal(r64(f, FECTL), 0x0000567880000000ull); /* FEDATA keeps 16 bits without EIM */
    assert_int_equal(stats(f).misuse, 0);

    struct vtd_model_memory mem = {.ctx = f, .read = arena_read, .write = arena_write};
    struct vtd_model_config bad = qemu39();
    bad.cap |= 0x3FFull << 24; /* FRO beyond the register file */
    assert_null(vtd_model_create(&bad, &mem));
    bad = qemu39();
    bad.cap &= ~(0x1Full << 8); /* no SAGAW */
    assert_null(vtd_model_create(&bad, &mem));
    bad = qemu39();
    bad.ecap = (bad.ecap & ~(0x3FFull << 8)) | (0x22ull << 8); /* IVA over the fault record */
    assert_null(vtd_model_create(&bad, &mem));
    struct vtd_model_memory no_read = {.ctx = f, .write = arena_write};
    struct vtd_model_config good = qemu39();
    assert_null(vtd_model_create(&good, &no_read));
}

static void test_access_widths(void **state)
{
    struct fixture *f = *state;
    start(f, qemu39(), 3);
    /* 64-bit writes to 32-bit registers: QEMU aborts on FECTL, IECTL, IEADDR. Ignored. */
    vtd_model_write64(f->m, FECTL, 0);
    assert_int_equal(stats(f).misuse, 1);
    assert_non_null(strstr(stats(f).last_misuse, "FECTL"));
    assert_int_equal(r32(f, FECTL), 0x80000000);
    vtd_model_write64(f->m, IECTL, 0);
    vtd_model_write64(f->m, IEADDR, 0xFEE00000);
    assert_int_equal(stats(f).misuse, 3);
    assert_non_null(strstr(stats(f).last_misuse, "IEADDR"));
    assert_int_equal(r32(f, IEADDR), 0);
    vtd_model_write64(f->m, GCMD, SRTP);
    assert_int_equal(stats(f).misuse, 4);
    assert_int_equal(r32(f, GSTS), 0);
    /* Misaligned and out of range. */
    vtd_model_write32(f->m, FECTL + 2, 0);
    assert_int_equal(r64(f, FSTS), 0);
    assert_int_equal(r32(f, 0xFFE), 0);
    assert_int_equal(stats(f).misuse, 7);

    /* 64-bit registers take either half. */
    vtd_model_write32(f->m, RTADDR, 0x12345000);
    vtd_model_write32(f->m, RTADDR + 4, 0x7);
    assert_int_equal(r64(f, RTADDR), 0x712345000ull);
    /* CCMD: the low half only stores; the high half issues the command. */
    vtd_model_write32(f->m, CCMD, 0);
    assert_int_equal(stats(f).cc_global, 0);
    vtd_model_write32(f->m, CCMD + 4, 0xA0000000);
    assert_int_equal(stats(f).cc_global, 1);
    assert_int_equal(r64(f, CCMD), 0x2800000000000000ull);
    /* IOTLB likewise. */
    vtd_model_write32(f->m, IOTLB, 0);
    assert_int_equal(stats(f).iotlb_global, 0);
    vtd_model_write32(f->m, IOTLB + 4, 0x90000000);
    assert_int_equal(stats(f).iotlb_global, 1);
    assert_int_equal(r32(f, IOTLB + 4), 0x12000000);
    /* Read-only registers ignore writes. */
    vtd_model_write64(f->m, CAP, 0);
    vtd_model_write32(f->m, GSTS, 0xFFFFFFFF);
    assert_int_equal(r64(f, CAP), 0x00D2008C22260206ull);
    assert_int_equal(r32(f, GSTS), 0);
    assert_int_equal(stats(f).misuse, 7);
}

/* ---- GCMD -------------------------------------------------------------------------- */

static void test_enable_sequence(void **state)
{
    struct fixture *f = *state;
    start(f, qemu39(), 3);
    /* Translation off: untranslated. */
    dma_ok(f, EDU, 0x100000, true, 0x100000);
    enable(f);
    qi_enable(f);
    assert_int_equal(r32(f, GSTS), 0xC4000000);
    struct vtd_model_result r = dma_ok(f, EDU, 0x100010, true, BUF_A | 0x10);
    assert_false(r.from_cache);
    assert_false(r.context_from_cache);
    dma_ok(f, EDU, 0x101000, false, BUF_RO);
    dma_ok(f, EDU, 0x104FFF, false, BUF_SRC | 0xFFF);
    r = dma_ok(f, EDU, 0x100000, false, BUF_A);
    assert_true(r.from_cache);
    assert_int_equal(stats(f).misuse, 0);
}

static void test_gcmd_not_preserving_status(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, qemu39(), 3);
    /* Writing SRTP alone while TE=1 turns TE off (two commands in one write). */
    vtd_model_write32(f->m, GCMD, SRTP);
    assert_int_equal(r32(f, GSTS), 0x40000000);
    assert_int_equal(stats(f).misuse, 1);
    assert_non_null(strstr(stats(f).last_misuse, "several commands"));
    dma_ok(f, EDU, 0x200000, true, 0x200000);
    /* Preserving the status bits: one command each. */
    gcmd(f, TE);
    gcmd(f, SRTP);
    assert_int_equal(r32(f, GSTS), 0xC0000000);
    assert_int_equal(stats(f).misuse, 1);
}

static void test_te_without_root_table(void **state)
{
    struct fixture *f = *state;
    start(f, qemu39(), 3);
    gcmd(f, TE);
    assert_int_equal(r32(f, GSTS), 0x80000000);
    assert_int_equal(stats(f).misuse, 1);
    expect_fault(f, EDU, 0x100000, true, 1);
}

/* ---- Fault reasons ----------------------------------------------------------------- */

static void test_fault_reasons_paging(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, qemu39(), 3);
    /* The probe's T2/T2b/T2c/T3 and its FRCD hi values (PV left 0). */
    expect_fault(f, EDU, 0x200000, true, 5); /* no L2 entry */
    expect_fault(f, EDU, 0x103000, true, 5); /* PTE = 0 */
    expect_fault(f, EDU, 0x200000, false, 6);
    assert_int_equal(frcd_hi(EDU, 5, true), 0x8000000500000018ull);
    assert_int_equal(frcd_hi(EDU, 6, false), 0xC000000600000018ull);
    expect_fault(f, EDU, 0x101000, true, 5); /* read-only page, not in the IOTLB */
    /* T4: beyond the 39-bit AGAW. */
    expect_fault(f, EDU, 1ull << 39, false, 4);
    /* T6f: SNP in a leaf is reserved without ECAP.SC. */
    map(f, 0x105000, BUF_D | SNP | RW);
    expect_fault(f, EDU, 0x105000, true, 0xC);
    /* Address bits above MGAW are reserved, in a leaf and in a non-leaf entry. */
    map(f, 0x106000, (1ull << 39) | RW);
    expect_fault(f, EDU, 0x106000, false, 0xC);
    put64(f, slpte_at(f, f->top, 3, 0x80000000, 3), (1ull << 45) | RW);
    expect_fault(f, EDU, 0x80000000, false, 0xC);
    /* A table that cannot be read: 7 below the top level, 3 at the top (the context
     * entry's pointer). */
    put64(f, slpte_at(f, f->top, 3, 0xC0000000, 3), NO_MEMORY | RW);
    expect_fault(f, EDU, 0xC0000000, false, 7);
    set_context(f, EDU, NO_MEMORY | 1, edu_context_hi(f));
    flush_all(f);
    expect_fault(f, EDU, 0x100000, false, 3);
    /* A translation into the interrupt range. */
    set_context(f, EDU, f->top | 1, edu_context_hi(f));
    flush_all(f);
    map(f, 0x107000, 0xFEE00000 | RW);
    expect_fault(f, EDU, 0x107000, true, 0xE);
    assert_int_equal(stats(f).faults_recorded, 11);
    assert_int_equal(stats(f).misuse, 0);
}

static void test_fault_reasons_context(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, qemu39(), 3);
    /* T8: a device with no context entry. */
    expect_fault(f, EDU2, 0x100000, true, 2);
    /* T6c: AW not in SAGAW (AW=2 needs aw-bits=48). */
    set_context(f, EDU, f->top | 1, 2 | EDU_DID << 8);
    flush_all(f);
    expect_fault(f, EDU, 0x100000, true, 3);
    assert_int_equal(frcd_hi(EDU, 3, true), 0x8000000300000018ull);
    /* T6d: context hi bit 7. */
    set_context(f, EDU, f->top | 1, edu_context_hi(f) | 0x80);
    flush_all(f);
    expect_fault(f, EDU, 0x100000, true, 0xB);
    /* Context lo reserved bits 11:4, and a pointer above MGAW. */
    set_context(f, EDU, f->top | 0x10 | 1, edu_context_hi(f));
    flush_all(f);
    expect_fault(f, EDU, 0x100000, true, 0xB);
    set_context(f, EDU, (1ull << 40) | 1, edu_context_hi(f));
    flush_all(f);
    expect_fault(f, EDU, 0x100000, true, 0xB);
    /* T6e: TT=1 without ECAP.DT; TT=3 is reserved. */
    set_context(f, EDU, f->top | 1 << 2 | 1, edu_context_hi(f));
    flush_all(f);
    expect_fault(f, EDU, 0x100000, true, 3);
    set_context(f, EDU, f->top | 3 << 2 | 1, edu_context_hi(f));
    flush_all(f);
    expect_fault(f, EDU, 0x100000, true, 3);
    /* Root entry: reserved bits (hi must be 0), table reads that fail. */
    set_context(f, EDU, f->top | 1, edu_context_hi(f));
    put64(f, f->root + 8, 1);
    flush_all(f);
    expect_fault(f, EDU, 0x100000, true, 0xA);
    put64(f, f->root + 8, 0);
    put64(f, f->root, NO_MEMORY | 1);
    expect_fault(f, EDU, 0x100000, true, 9);
    /* T6g: the root entry for bus 0 cleared. */
    put64(f, f->root, 0);
    expect_fault(f, EDU, 0x100000, true, 1);
    /* A root table that cannot be read. */
    vtd_model_write64(f->m, RTADDR, NO_MEMORY);
    gcmd(f, SRTP);
    expect_fault(f, EDU, 0x100000, false, 8);
    assert_int_equal(stats(f).misuse, 0);
}

static void test_aw_not_in_sagaw_aw48(void **state)
{
    struct fixture *f = *state;
    /* With aw-bits=48 (SAGAW 0x6), AW=3 (5-level) is still not supported. */
    start_enabled(f, vtd_model_config_qemu(48), 4);
    set_context(f, EDU, f->top | 1, 3 | EDU_DID << 8);
    flush_all(f);
    expect_fault(f, EDU, 0x100000, true, 3);
}

static void test_four_level_aw48(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, vtd_model_config_qemu(48), 4);
    dma_ok(f, EDU, 0x100000, true, BUF_A);
    /* Above 2^39: only reachable with 4 levels. */
    map(f, 0x8000000000ull, BUF_D | RW);
    dma_ok(f, EDU, 0x8000000000ull, false, BUF_D);
    map(f, 0xFFFFFFFFF000ull, BUF_C | R);
    dma_ok(f, EDU, 0xFFFFFFFFFFFFull, false, BUF_C | 0xFFF);
    expect_fault(f, EDU, 1ull << 48, false, 4);
    /* A table address above 39 bits is fine with MGAW 48. */
    put64(f, slpte_at(f, f->top, 4, 0x10000000000ull, 1), (1ull << 45) | RW);
    dma_ok(f, EDU, 0x10000000000ull, true, 1ull << 45);
    /* The same unit with a 3-level context (AW=1) limits the IOVA to 39 bits. */
    uint64_t top3 = alloc_page(f);
    put64(f, slpte_at(f, top3, 3, 0x100000, 1), BUF_A | RW);
    set_context(f, EDU2, top3 | 1, 1 | 2 << 8);
    dma_ok(f, EDU2, 0x100000, true, BUF_A);
    expect_fault(f, EDU2, 1ull << 39, true, 4);
}

static void test_superpages(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, qemu39(), 3);
    /* 2 MiB at level 2, 1 GiB at level 3. */
    put64(f, slpte_at(f, f->top, 3, 0x400000, 2), 0x80000000ull | PS | RW);
    dma_ok(f, EDU, 0x412345, true, 0x80012345);
    struct vtd_model_result r = dma_ok(f, EDU, 0x5FFFFF, false, 0x801FFFFF);
    assert_true(r.from_cache); /* one IOTLB entry covers the whole superpage */
    put64(f, slpte_at(f, f->top, 3, 0x40000000, 3), 0x100000000ull | PS | R);
    expect_fault(f, EDU, 0x40000000, true, 5);
    dma_ok(f, EDU, 0x7FFFFFFF, false, 0x13FFFFFFF);
    /* A page-selective invalidation inside a superpage flushes it. */
    put64(f, slpte_at(f, f->top, 3, 0x400000, 2), 0x90000000ull | PS | RW);
    dma_ok(f, EDU, 0x400000, true, 0x80000000);
    iotlb_page(f, EDU_DID, 0x5FF000, 0);
    dma_ok(f, EDU, 0x400000, true, 0x90000000);
    /* The superpage's offset bits are reserved. */
    put64(f, slpte_at(f, f->top, 3, 0x600000, 2), 0xA0001000ull | PS | RW);
    expect_fault(f, EDU, 0x600000, true, 0xC);
    put64(f, slpte_at(f, f->top, 3, 0x80000000, 3), 0x140000000ull | 0x200000 | PS | RW);
    expect_fault(f, EDU, 0x80000000, true, 0xC);
}

static void test_superpages_unsupported(void **state)
{
    struct fixture *f = *state;
    struct vtd_model_config cfg = qemu39();
    cfg.cap &= ~(0xFull << 34); /* SLLPS = 0 */
    start_enabled(f, cfg, 3);
    put64(f, slpte_at(f, f->top, 3, 0x400000, 2), 0x80000000ull | PS | RW);
    expect_fault(f, EDU, 0x400000, true, 0xC);
    put64(f, slpte_at(f, f->top, 3, 0x40000000, 3), 0x100000000ull | PS | RW);
    expect_fault(f, EDU, 0x40000000, true, 0xC);
}

static void test_pass_through(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, qemu39(), 3);
    set_context(f, EDU2, 2 << 2 | 1, 1 | 2 << 8);
    struct vtd_model_result r = dma_ok(f, EDU2, 0x123456789ull, true, 0x123456789ull);
    assert_false(r.from_cache);
    r = dma_ok(f, EDU2, 0x123456789ull, false, 0x123456789ull);
    assert_false(r.from_cache);
    assert_true(r.context_from_cache);
    /* AW must be supported even for pass-through. */
    set_context(f, EDU2, 2 << 2 | 1, 2 | 2 << 8);
    cc_global(f);
    expect_fault(f, EDU2, 0x1000, true, 3);
}

static void test_pass_through_unsupported(void **state)
{
    struct fixture *f = *state;
    struct vtd_model_config cfg = qemu39();
    cfg.ecap &= ~(1ull << 6); /* pt=off */
    start_enabled(f, cfg, 3);
    set_context(f, EDU2, 2 << 2 | 1, 1 | 2 << 8);
    expect_fault(f, EDU2, 0x1000, true, 3);
}

static void test_interrupt_range_request(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, qemu39(), 3);
    struct vtd_model_result r = vtd_model_dma(f->m, EDU, 0xFEE00000, true);
    assert_false(r.ok);
    assert_int_equal(r.reason, 0);
    assert_false(r.recorded);
    assert_int_equal(stats(f).misuse, 1);
    assert_non_null(strstr(stats(f).last_misuse, "interrupt address range"));
}

/* ---- Fault recording --------------------------------------------------------------- */

static void test_fpd(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, qemu39(), 3);
    /* T6b: FPD=1 suppresses qualified faults... */
    set_context(f, EDU, f->top | 2 | 1, edu_context_hi(f));
    flush_all(f);
    struct vtd_model_result r = vtd_model_dma(f->m, EDU, 0x200000, true);
    assert_false(r.ok);
    assert_int_equal(r.reason, 5);
    assert_false(r.recorded);
    assert_int_equal(r32(f, FSTS), 0);
    /* ... the FPD of a context entry that is not present as well... */
    set_context(f, EDU2, 2, 0);
    r = vtd_model_dma(f->m, EDU2, 0x1000, true);
    assert_int_equal(r.reason, 2);
    assert_false(r.recorded);
    assert_int_equal(stats(f).faults_suppressed, 2);
    /* ... but not context reserved bits (FPD cannot be trusted) nor root faults. */
    set_context(f, EDU, f->top | 2 | 1, edu_context_hi(f) | 0x80);
    cc_global(f);
    expect_fault(f, EDU, 0x200000, true, 0xB);
    put64(f, f->root, 0);
    expect_fault(f, EDU, 0x200000, true, 1);
    assert_int_equal(stats(f).faults_suppressed, 2);
}

static void test_overflow_two_sids(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, qemu39(), 3);
    /* T8: the second SID faults while the first one's record is pending. */
    assert_true(vtd_model_dma(f->m, EDU, 0x200000, true).recorded);
    struct vtd_model_result r = vtd_model_dma(f->m, EDU2, 0x100000, true);
    assert_false(r.recorded);
    assert_int_equal(r.reason, 2);
    assert_int_equal(r32(f, FSTS), PPF | PFO);
    assert_int_equal(r64(f, FRCD + 8), frcd_hi(EDU, 5, true));
    /* With PFO set everything is dropped. */
    assert_false(vtd_model_dma(f->m, EDU2, 0x100000, true).recorded);
    assert_int_equal(stats(f).faults_overflowed, 2);
    /* After clearing F and PFO, edu#2 records FR=2 with SID 0x0020. */
    clear_fault(f, 0);
    assert_int_equal(r32(f, FSTS), 0);
    expect_fault(f, EDU2, 0x100000, true, 2);
    assert_int_equal(frcd_hi(EDU2, 2, true), 0x8000000200000020ull);
}

static void test_compression_same_sid(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, qemu39(), 3);
    assert_true(vtd_model_dma(f->m, EDU, 0x200000, true).recorded);
    struct vtd_model_result r = vtd_model_dma(f->m, EDU, 0x300000, false);
    assert_false(r.recorded);
    assert_int_equal(r.reason, 6);
    assert_int_equal(r32(f, FSTS), PPF); /* no PFO */
    assert_int_equal(r64(f, FRCD), 0x200000);
    assert_int_equal(stats(f).faults_compressed, 1);
    assert_int_equal(stats(f).faults_overflowed, 0);
}

static void test_no_compression_overflows(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, spec39(), 3);
    assert_true(vtd_model_dma(f->m, EDU, 0x200000, true).recorded);
    assert_false(vtd_model_dma(f->m, EDU, 0x300000, false).recorded);
    assert_int_equal(r32(f, FSTS), PPF | PFO);
    assert_int_equal(stats(f).faults_compressed, 0);
    assert_int_equal(stats(f).faults_overflowed, 1);
}

static void test_several_fault_records(void **state)
{
    struct fixture *f = *state;
    struct vtd_model_config cfg = qemu39();
    cfg.cap |= 3ull << 40; /* NFR: 4 records */
    start_enabled(f, cfg, 3);
    /* Devices on bus 1, which has no root entry. */
    for (uint16_t i = 0; i < 3; i++)
        assert_true(vtd_model_dma(f->m, 0x100 + i, 0x1000 * i, true).recorded);
    /* FRI names the first pending record. */
    assert_int_equal(r32(f, FSTS), PPF | 0 << 8);
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(r64(f, FRCD + 16 * i + 8), frcd_hi(0x100 + i, 1, true));
        assert_int_equal(r64(f, FRCD + 16 * i), 0x1000 * i);
    }
    /* Clearing F through the 32-bit high half of the high qword. */
    for (unsigned i = 0; i < 3; i++)
        vtd_model_write32(f->m, FRCD + 16 * i + 0xC, 0x80000000);
    vtd_model_write32(f->m, FSTS, 0);
    assert_int_equal(r32(f, FSTS), 0);
    /* Recording goes on at the next index and wraps. */
    assert_true(vtd_model_dma(f->m, 0x200, 0x5000, false).recorded);
    assert_int_equal(r32(f, FSTS), PPF | 3 << 8);
    assert_true(vtd_model_dma(f->m, 0x201, 0x6000, false).recorded);
    assert_int_equal(r32(f, FSTS), PPF | 3 << 8);
    assert_int_equal(r64(f, FRCD + 8), frcd_hi(0x201, 1, false));
    assert_int_equal(r64(f, FRCD + 3 * 16 + 8), frcd_hi(0x200, 1, false));
}

static void test_fault_event(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, qemu39(), 3);
    /* IM=1: IP stays set; clearing F alone leaves it (QEMU), an FSTS write clears it. */
    assert_true(vtd_model_dma(f->m, EDU, 0x200000, false).recorded);
    assert_int_equal(r32(f, FECTL), 0xC0000000);
    vtd_model_write64(f->m, FRCD + 8, F);
    assert_int_equal(r32(f, FSTS), 0);
    assert_int_equal(r32(f, FECTL), 0xC0000000);
    vtd_model_write32(f->m, FSTS, 0);
    assert_int_equal(r32(f, FECTL), 0x80000000);
    assert_int_equal(f->msis, 0);

    /* T9: unmasked, one message per recorded fault, IP clear after it. */
    vtd_model_write32(f->m, FEDATA, 0x70);
    vtd_model_write32(f->m, FEADDR, 0xFEE00000);
    vtd_model_write32(f->m, FECTL, 0);
    assert_true(vtd_model_dma(f->m, EDU, 0x200000, true).recorded);
    assert_int_equal(f->msis, 1);
    assert_int_equal(f->msi_addr, 0xFEE00000);
    assert_int_equal(f->msi_data, 0x70);
    assert_int_equal(r32(f, FECTL), 0);
    /* A fault while PPF is set: no new event. */
    vtd_model_dma(f->m, EDU2, 0x1000, true);
    assert_int_equal(f->msis, 1);
    clear_fault(f, 0);
    assert_true(vtd_model_dma(f->m, EDU, 0x200000, true).recorded);
    assert_int_equal(f->msis, 2);
    clear_fault(f, 0);

    /* Masked: pending in IP, sent when IM clears. */
    vtd_model_write32(f->m, FECTL, 0x80000000);
    assert_true(vtd_model_dma(f->m, EDU, 0x200000, true).recorded);
    assert_int_equal(f->msis, 2);
    assert_int_equal(r32(f, FECTL), 0xC0000000);
    vtd_model_write32(f->m, FECTL, 0);
    assert_int_equal(f->msis, 3);
    assert_int_equal(r32(f, FECTL), 0);
    assert_int_equal(stats(f).fault_msis, 3);
}

/* ---- Caches and invalidation ------------------------------------------------------- */

static void test_stale_iotlb(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, qemu39(), 3);
    /* T5: remapped without invalidation: the old page is still used until a PSI. */
    dma_ok(f, EDU, 0x102000, true, BUF_C);
    map(f, 0x102000, BUF_D | RW);
    struct vtd_model_result r = dma_ok(f, EDU, 0x102000, true, BUF_C);
    assert_true(r.from_cache);
    iotlb_page(f, EDU_DID, 0x102000, 0);
    assert_int_equal(r64(f, IOTLB), 0x3600000100000000ull);
    r = dma_ok(f, EDU, 0x102000, true, BUF_D);
    assert_false(r.from_cache);
    /* T5b: PTE = 0 without invalidation still works; after the PSI it faults. */
    map(f, 0x102000, 0);
    dma_ok(f, EDU, 0x102000, true, BUF_D);
    iotlb_page(f, EDU_DID, 0x102000, 0);
    expect_fault(f, EDU, 0x102000, true, 5);
    /* Domain-selective and global invalidations flush too. */
    dma_ok(f, EDU, 0x100000, true, BUF_A);
    map(f, 0x100000, BUF_D | RW);
    dma_ok(f, EDU, 0x100000, true, BUF_A);
    iotlb_domain(f, EDU_DID);
    assert_int_equal(r64(f, IOTLB), 0x2400000100000000ull);
    dma_ok(f, EDU, 0x100000, true, BUF_D);
    map(f, 0x100000, BUF_A | RW);
    dma_ok(f, EDU, 0x100000, true, BUF_D);
    iotlb_global(f);
    dma_ok(f, EDU, 0x100000, true, BUF_A);
    assert_int_equal(stats(f).iotlb_page, 2);
    assert_int_equal(stats(f).iotlb_domain, 1);
    assert_int_equal(stats(f).iotlb_global, 2);
}

static void test_psi_did_and_mask(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, qemu39(), 3);
    map(f, 0x103000, BUF_D | RW);
    dma_ok(f, EDU, 0x102000, true, BUF_C);
    dma_ok(f, EDU, 0x103000, true, BUF_D);
    dma_ok(f, EDU, 0x104000, true, BUF_SRC);
    /* T5c: a PSI with the wrong DID flushes nothing. */
    iotlb_page(f, 7, 0x102000, 0);
    assert_true(vtd_model_dma(f->m, EDU, 0x102000, true).from_cache);
    /* T5d: AM=1 at 0x102000 (IVA 0x102001) flushes the pair 0x102000-0x103FFF only. */
    iotlb_page(f, EDU_DID, 0x102000, 1);
    assert_false(vtd_model_dma(f->m, EDU, 0x102000, true).from_cache);
    assert_false(vtd_model_dma(f->m, EDU, 0x103000, true).from_cache);
    assert_true(vtd_model_dma(f->m, EDU, 0x104000, true).from_cache);
    /* The address bits under the mask are ignored: 0x105000 with AM=2 covers 0x104000. */
    iotlb_page(f, EDU_DID, 0x105000, 2);
    assert_false(vtd_model_dma(f->m, EDU, 0x104000, true).from_cache);
    /* AM above CAP.MAMV (18) fails: IAIG=0, nothing flushed. */
    iotlb_page(f, EDU_DID, 0, 19);
    assert_int_equal(r64(f, IOTLB), 0x3000000100000000ull);
    assert_true(vtd_model_dma(f->m, EDU, 0x104000, true).from_cache);
    /* IIRG=0 is reserved: IAIG=0. */
    vtd_model_write64(f->m, IOTLB, 1ull << 63);
    assert_int_equal(r64(f, IOTLB), 0);
    assert_true(vtd_model_dma(f->m, EDU, 0x104000, true).from_cache);
}

static void test_psi_unsupported_acts_as_dsi(void **state)
{
    struct fixture *f = *state;
    struct vtd_model_config cfg = qemu39();
    cfg.cap &= ~(1ull << 39); /* PSI = 0 */
    start_enabled(f, cfg, 3);
    dma_ok(f, EDU, 0x100000, true, BUF_A);
    iotlb_page(f, EDU_DID, 0x300000, 0);
    assert_int_equal(r64(f, IOTLB), 0x3400000100000000ull); /* IAIG = domain */
    assert_false(vtd_model_dma(f->m, EDU, 0x100000, true).from_cache);
}

static void test_context_change_needs_cc_and_iotlb(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, qemu39(), 3);
    dma_ok(f, EDU, 0x100000, true, BUF_A);
    /* T6: context P cleared + global IOTLB flush, no CC invalidation: still works. */
    set_context(f, EDU, 0, 0);
    iotlb_global(f);
    struct vtd_model_result r = dma_ok(f, EDU, 0x100000, true, BUF_A);
    assert_false(r.from_cache);
    assert_true(r.context_from_cache);
    /* Device-selective CC invalidation only: the IOTLB entry is still used. */
    cc_device(f, EDU, EDU_DID, 0);
    assert_int_equal(r64(f, CCMD) & 0xF800000000000000ull, 0x7800000000000000ull);
    r = dma_ok(f, EDU, 0x100000, true, BUF_A);
    assert_true(r.from_cache);
    /* Both: FR=2. */
    iotlb_domain(f, EDU_DID);
    expect_fault(f, EDU, 0x100000, true, 2);
    assert_int_equal(stats(f).cc_device, 1);
}

static void test_context_invalidation_granularity(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, spec39(), 3);
    dma_ok(f, EDU, 0x100000, true, BUF_A);
    set_context(f, EDU, 0, 0);
    iotlb_global(f);
    /* Domain-selective with another DID keeps edu's entry; CAIG reports domain. */
    cc_domain(f, 7);
    assert_int_equal(r64(f, CCMD), 0x5000000000000007ull);
    assert_true(vtd_model_dma(f->m, EDU, 0x100000, true).context_from_cache);
    iotlb_global(f);
    /* Device-selective needs the DID the entry was cached with... */
    cc_device(f, EDU, 7, 0);
    assert_true(vtd_model_dma(f->m, EDU, 0x100000, true).context_from_cache);
    iotlb_global(f);
    /* ... and the function mask widens the SID: FM=3 ignores function bits 2:0. */
    cc_device(f, EDU | 7, EDU_DID, 3);
    assert_int_equal(r64(f, CCMD), 0x78000003001F0001ull);
    struct vtd_model_result r = vtd_model_dma(f->m, EDU, 0x100000, true);
    assert_int_equal(r.reason, 2);
    assert_false(r.context_from_cache);
    /* Domain-selective with the right DID. */
    set_context(f, EDU, f->top | 1, edu_context_hi(f));
    clear_fault(f, 0);
    dma_ok(f, EDU, 0x100000, true, BUF_A);
    set_context(f, EDU, 0, 0);
    iotlb_global(f);
    cc_domain(f, EDU_DID);
    assert_int_equal(vtd_model_dma(f->m, EDU, 0x100000, true).reason, 2);
    /* CIRG=0 is reserved: CAIG=0. */
    vtd_model_write64(f->m, CCMD, 1ull << 63);
    assert_int_equal(r64(f, CCMD), 0);
    assert_int_equal(stats(f).cc_domain, 2);
    assert_int_equal(stats(f).cc_device, 2);
}

static void test_context_invalidation_coarse(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, qemu39(), 3);
    dma_ok(f, EDU, 0x100000, true, BUF_A);
    set_context(f, EDU, 0, 0);
    iotlb_global(f);
    /* QEMU: domain-selective acts as global whatever the DID; device-selective ignores it. */
    cc_domain(f, 7);
    assert_int_equal(r64(f, CCMD), 0x4800000000000007ull);
    assert_false(vtd_model_dma(f->m, EDU, 0x100000, true).context_from_cache);
    set_context(f, EDU, f->top | 1, edu_context_hi(f));
    clear_fault(f, 0);
    dma_ok(f, EDU, 0x100000, true, BUF_A);
    set_context(f, EDU, 0, 0);
    iotlb_global(f);
    cc_device(f, EDU, 7, 0);
    assert_int_equal(vtd_model_dma(f->m, EDU, 0x100000, true).reason, 2);
    assert_int_equal(stats(f).cc_global, 2);
    assert_int_equal(stats(f).cc_domain, 0);
    assert_int_equal(stats(f).cc_device, 1);
}

static void test_iotlb_permission_fault_silent(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, qemu39(), 3);
    /* T3c: a write to the RO page after a read cached it: dropped, no record. */
    dma_ok(f, EDU, 0x101000, false, BUF_RO);
    struct vtd_model_result r = vtd_model_dma(f->m, EDU, 0x101000, true);
    assert_false(r.ok);
    assert_true(r.from_cache);
    assert_false(r.recorded);
    assert_int_equal(r.reason, 5);
    assert_int_equal(r32(f, FSTS), 0);
    assert_int_equal(stats(f).iotlb_permission_drops, 1);
}

static void test_iotlb_permission_fault_recorded(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, spec39(), 3);
    dma_ok(f, EDU, 0x101000, false, BUF_RO);
    /* Upgraded to RW without invalidation: the cached permissions still apply. */
    map(f, 0x101000, BUF_RO | RW);
    struct vtd_model_result r = vtd_model_dma(f->m, EDU, 0x101000, true);
    assert_true(r.from_cache);
    assert_true(r.recorded);
    assert_int_equal(r64(f, FRCD + 8), frcd_hi(EDU, 5, true));
    clear_fault(f, 0);
    iotlb_page(f, EDU_DID, 0x101000, 0);
    dma_ok(f, EDU, 0x101000, true, BUF_RO);
}

static void test_no_negative_caching(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, qemu39(), 3);
    expect_fault(f, EDU, 0x103000, true, 5);
    expect_fault(f, EDU2, 0x1000, true, 2);
    map(f, 0x103000, BUF_D | RW);
    set_context(f, EDU2, f->top | 1, 1 | 2 << 8);
    dma_ok(f, EDU, 0x103000, true, BUF_D);
    dma_ok(f, EDU2, 0x103000, true, BUF_D);
}

static void test_srtp_keeps_caches(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, qemu39(), 3);
    dma_ok(f, EDU, 0x100000, true, BUF_A);
    /* A new (empty) root table: the spec requires global invalidations after SRTP. */
    uint64_t root2 = alloc_page(f);
    vtd_model_write64(f->m, RTADDR, root2);
    gcmd(f, SRTP);
    assert_true(vtd_model_dma(f->m, EDU, 0x100000, true).from_cache);
    assert_true(vtd_model_dma(f->m, EDU, 0x104000, true).context_from_cache);
    flush_all(f);
    expect_fault(f, EDU, 0x100000, true, 1);
}

/* ---- Queued invalidation ----------------------------------------------------------- */

static void test_qi(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, qemu39(), 3);
    qi_enable(f);
    uint64_t status = alloc_page(f);
    dma_ok(f, EDU, 0x102000, true, BUF_C);
    map(f, 0x102000, BUF_D | RW);
    dma_ok(f, EDU, 0x102000, true, BUF_C);
    /* PSI + wait with SW: processed at once, status written, IQH == IQT. */
    qi_put(f, 0x2 | 3 << 4 | EDU_DID << 16, 0x102000);
    qi_submit(f, wait_sw(0x1234), status);
    assert_int_equal(get64(f, status), 0x1234);
    assert_int_equal(r64(f, IQH), 2 << 4);
    assert_int_equal(r64(f, IQH), r64(f, IQT));
    dma_ok(f, EDU, 0x102000, true, BUF_D);
    /* Global CC and IOTLB descriptors; IEC is accepted. */
    set_context(f, EDU, 0, 0);
    qi_put(f, 0x1 | 1 << 4, 0);
    qi_put(f, 0x2 | 1 << 4, 0);
    qi_put(f, 0x4, 0);
    qi_submit(f, wait_sw(2), status);
    expect_fault(f, EDU, 0x102000, true, 2);
    /* Device-selective CC and domain-selective IOTLB. */
    set_context(f, EDU, f->top | 1, edu_context_hi(f));
    dma_ok(f, EDU, 0x102000, true, BUF_D);
    set_context(f, EDU, 0, 0);
    qi_put(f, 0x1 | 3 << 4 | EDU_DID << 16 | (uint64_t)EDU << 32, 0);
    qi_put(f, 0x2 | 2 << 4 | EDU_DID << 16, 0);
    qi_submit(f, wait_sw(3), status);
    expect_fault(f, EDU, 0x102000, true, 2);
    assert_int_equal(get64(f, status), 3);
    struct vtd_model_stats s = stats(f);
    assert_int_equal(s.waits, 3);
    assert_int_equal(s.iotlb_page, 1);
    assert_int_equal(s.cc_device, 1);
    assert_int_equal(s.iotlb_domain, 1);
    assert_int_equal(s.misuse, 0);
}

static void test_qi_wait_interrupt(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, qemu39(), 3);
    qi_enable(f);
    /* IF with IECTL.IM set: ICS.IWC and IECTL.IP. */
    qi_submit(f, 0x5 | 1 << 4, 0);
    assert_int_equal(r32(f, ICS), 1);
    assert_int_equal(r32(f, IECTL), 0xC0000000);
    assert_int_equal(f->msis, 0);
    /* Unmasking sends it. */
    vtd_model_write32(f->m, IEDATA, 0x71);
    vtd_model_write32(f->m, IEADDR, 0xFEE00000);
    vtd_model_write32(f->m, IECTL, 0);
    assert_int_equal(f->msis, 1);
    assert_int_equal(f->msi_data, 0x71);
    assert_int_equal(r32(f, IECTL), 0);
    /* While IWC is set no new event; after W1C of ICS, one per wait. */
    qi_submit(f, 0x5 | 1 << 4, 0);
    assert_int_equal(f->msis, 1);
    vtd_model_write32(f->m, ICS, 1);
    assert_int_equal(r32(f, ICS), 0);
    qi_submit(f, 0x5 | 1 << 4, 0);
    assert_int_equal(f->msis, 2);
    assert_int_equal(stats(f).inv_msis, 2);
}

static void test_qi_invalid_descriptor(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, qemu39(), 3);
    qi_enable(f);
    uint64_t status = alloc_page(f);
    qi_put(f, wait_sw(1), status);
    qi_put(f, 0xF, 0); /* unknown type */
    qi_submit(f, wait_sw(2), status);
    assert_int_equal(r32(f, FSTS), IQE);
    assert_int_equal(r64(f, IQH), 1 << 4); /* on the bad descriptor */
    assert_int_equal(get64(f, status), 1);
    assert_int_equal(r32(f, FECTL), 0xC0000000); /* a fault event */
    /* Clearing IQE alone does not resume. */
    put64(f, f->queue + 16, wait_sw(5));
    put64(f, f->queue + 24, status);
    vtd_model_write32(f->m, FSTS, IQE);
    assert_int_equal(r32(f, FSTS), 0);
    assert_int_equal(r32(f, FECTL), 0x80000000);
    assert_int_equal(r64(f, IQH), 1 << 4);
    /* Rewriting IQT does. */
    vtd_model_write64(f->m, IQT, (uint64_t)f->tail << 4);
    assert_int_equal(r64(f, IQH), 3 << 4);
    assert_int_equal(get64(f, status), 2);
}

static void expect_iqe(struct fixture *f, uint64_t lo, uint64_t hi)
{
    uint64_t head = r64(f, IQH);
    qi_submit(f, lo, hi);
    assert_int_equal(r32(f, FSTS), IQE);
    assert_int_equal(r64(f, IQH), head);
    /* Replace it with a harmless wait and resume. */
    put64(f, f->queue + head, 0x5 | 1 << 4);
    put64(f, f->queue + head + 8, 0);
    vtd_model_write32(f->m, FSTS, IQE);
    vtd_model_write64(f->m, IQT, (uint64_t)f->tail << 4);
    assert_int_equal(r64(f, IQH), r64(f, IQT));
    assert_int_equal(r32(f, FSTS), 0);
}

static void test_qi_invalid_descriptors(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, qemu39(), 3);
    qi_enable(f);
    uint64_t status = alloc_page(f);
    expect_iqe(f, 0x5 | 1 << 6, status);                     /* wait with FN only */
    expect_iqe(f, 0x5, status);                              /* wait with neither SW nor IF */
    expect_iqe(f, wait_sw(1), status | 2);                   /* status address not dword-aligned */
    expect_iqe(f, wait_sw(1), NO_MEMORY);                    /* status write fails */
    expect_iqe(f, 0x5 | 1 << 5 | 1 << 8, status);            /* wait reserved bit */
    expect_iqe(f, 0x1, 0);                                   /* CC granularity 0 */
    expect_iqe(f, 0x1 | 1 << 4 | 1 << 6, 0);                 /* CC reserved bit */
    expect_iqe(f, 0x1 | 1 << 4, 1);                          /* CC hi not 0 */
    expect_iqe(f, 0x2 | 3 << 4 | EDU_DID << 16, 19);          /* AM > MAMV */
    expect_iqe(f, 0x2 | 1 << 4 | 1 << 8, 0);                 /* IOTLB reserved bit */
    expect_iqe(f, 0x2 | 3 << 4, 1 << 7);                     /* IOTLB hi reserved bit */
    expect_iqe(f, 0x3, 0);                                   /* device-IOTLB without ECAP.DT */
    expect_iqe(f, 0x6, 0);                                   /* PASID-IOTLB: scalable mode only */
    /* DR/DW and IH are allowed. */
    qi_submit(f, 0x2 | 3 << 4 | 3 << 6 | EDU_DID << 16, 0x100000 | 1 << 6);
    assert_int_equal(r32(f, FSTS), 0);
    /* IQT beyond the queue (256 descriptors with QS=0). */
    vtd_model_write64(f->m, IQT, 256ull << 4 << 1);
    assert_int_equal(r32(f, FSTS), IQE);
    assert_int_equal(stats(f).misuse, 0);
}

static void test_qie_enable_disable(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, qemu39(), 3);
    qi_enable(f);
    uint64_t status = alloc_page(f);
    /* The last descriptor was not a wait: disable refused. */
    qi_submit(f, 0x2 | 1 << 4, 0);
    vtd_model_write32(f->m, GCMD, r32(f, GSTS) & PERSISTENT_GSTS & ~QIE);
    assert_int_equal(r32(f, GSTS), 0xC4000000);
    assert_int_equal(stats(f).misuse, 1);
    assert_non_null(strstr(stats(f).last_misuse, "not a wait"));
    /* After a wait it is allowed: IQH resets, IQT keeps its value (as QEMU). */
    qi_submit(f, wait_sw(1), status);
    vtd_model_write32(f->m, GCMD, r32(f, GSTS) & PERSISTENT_GSTS & ~QIE);
    assert_int_equal(r32(f, GSTS), 0xC0000000);
    assert_int_equal(r64(f, IQH), 0);
    assert_int_equal(r64(f, IQT), 2 << 4);
    /* Enabling again without IQT=0 processes the stale entries at once. */
    gcmd(f, QIE);
    assert_int_equal(stats(f).misuse, 2);
    assert_non_null(strstr(stats(f).last_misuse, "IQT"));
    assert_int_equal(r64(f, IQH), 2 << 4);
    /* A queue that is not empty (stalled): refused. */
    vtd_model_stall_invalidations(f->m, true);
    qi_put(f, wait_sw(2), status);
    vtd_model_write64(f->m, IQT, (uint64_t)f->tail << 4);
    vtd_model_write32(f->m, GCMD, r32(f, GSTS) & PERSISTENT_GSTS & ~QIE);
    assert_int_equal(r32(f, GSTS), 0xC4000000);
    assert_int_equal(stats(f).misuse, 3);
    assert_non_null(strstr(stats(f).last_misuse, "not empty"));
    vtd_model_stall_invalidations(f->m, false);
    assert_int_equal(get64(f, status), 2);
    /* IQA.DW=1 is scalable-mode only. */
    vtd_model_write64(f->m, IQA, f->queue | 1 << 11);
    assert_int_equal(r64(f, IQA), f->queue);
    assert_int_equal(stats(f).misuse, 4);
}

/* ---- Misuse and failure injection -------------------------------------------------- */

static void test_wait_sw_and_if(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, qemu39(), 3);
    qi_enable(f);
    uint64_t status = alloc_page(f);
    qi_submit(f, wait_sw(9) | 1 << 4, status);
    assert_int_equal(stats(f).misuse, 1);
    assert_non_null(strstr(stats(f).last_misuse, "SW and IF"));
    /* Carried out as the specification says: both. */
    assert_int_equal(get64(f, status), 9);
    assert_int_equal(r32(f, ICS), 1);
    assert_int_equal(r32(f, FSTS), 0);
}

static void test_register_invalidation_with_qi(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, qemu39(), 3);
    qi_enable(f);
    dma_ok(f, EDU, 0x102000, true, BUF_C);
    map(f, 0x102000, BUF_D | RW);
    /* QEMU: ignored, ICC/IVT stuck (Q3a), the stale entry still used. */
    cc_global(f);
    assert_int_equal(r64(f, CCMD), 0xA800000000000000ull);
    iotlb_global(f);
    assert_int_equal(r64(f, IOTLB), 0x9200000000000000ull);
    assert_int_equal(stats(f).misuse, 2);
    assert_non_null(strstr(stats(f).last_misuse, "queued invalidation enabled"));
    dma_ok(f, EDU, 0x102000, true, BUF_C);
    /* Still stuck after QIE=0, until the next register invalidation. */
    uint64_t status = alloc_page(f);
    qi_submit(f, wait_sw(1), status);
    vtd_model_write32(f->m, GCMD, r32(f, GSTS) & PERSISTENT_GSTS & ~QIE);
    assert_int_equal(r32(f, GSTS), 0xC0000000);
    assert_int_equal(r64(f, IOTLB), 0x9200000000000000ull);
    iotlb_global(f);
    assert_int_equal(r64(f, IOTLB), 0x1200000000000000ull);
    dma_ok(f, EDU, 0x102000, true, BUF_D);
    assert_int_equal(stats(f).misuse, 2);
}

static void test_register_invalidation_with_qi_carried_out(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, spec39(), 3);
    qi_enable(f);
    dma_ok(f, EDU, 0x102000, true, BUF_C);
    map(f, 0x102000, BUF_D | RW);
    iotlb_global(f);
    assert_int_equal(stats(f).misuse, 1);
    assert_int_equal(r64(f, IOTLB), 0x1200000000000000ull);
    dma_ok(f, EDU, 0x102000, true, BUF_D);
}

static void test_stall(void **state)
{
    struct fixture *f = *state;
    start_enabled(f, qemu39(), 3);
    dma_ok(f, EDU, 0x102000, true, BUF_C);
    map(f, 0x102000, BUF_D | RW);
    vtd_model_stall_invalidations(f->m, true);
    /* Register commands stay busy and take no effect. */
    iotlb_global(f);
    assert_int_equal(r64(f, IOTLB) >> 63, 1);
    dma_ok(f, EDU, 0x102000, true, BUF_C);
    cc_global(f);
    assert_int_equal(r64(f, CCMD) >> 63, 1);
    /* Writing a busy command register is misuse, ignored. */
    iotlb_domain(f, EDU_DID);
    assert_int_equal(stats(f).misuse, 1);
    assert_non_null(strstr(stats(f).last_misuse, "IVT=1"));
    vtd_model_stall_invalidations(f->m, false);
    assert_int_equal(r64(f, IOTLB), 0x1200000000000000ull);
    assert_int_equal(r64(f, CCMD), 0x2800000000000000ull);
    dma_ok(f, EDU, 0x102000, true, BUF_D);

    /* Queued: IQH does not move, no status written, until the stall ends. */
    qi_enable(f);
    uint64_t status = alloc_page(f);
    vtd_model_stall_invalidations(f->m, true);
    map(f, 0x102000, BUF_C | RW);
    qi_put(f, 0x2 | 1 << 4, 0);
    qi_submit(f, wait_sw(7), status);
    assert_int_equal(r64(f, IQH), 0);
    assert_int_equal(get64(f, status), 0);
    dma_ok(f, EDU, 0x102000, true, BUF_D);
    vtd_model_stall_invalidations(f->m, false);
    assert_int_equal(r64(f, IQH), 2 << 4);
    assert_int_equal(get64(f, status), 7);
    dma_ok(f, EDU, 0x102000, true, BUF_C);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_reset_values),
        T(test_access_widths),
        T(test_enable_sequence),
        T(test_gcmd_not_preserving_status),
        T(test_te_without_root_table),
        T(test_fault_reasons_paging),
        T(test_fault_reasons_context),
        T(test_aw_not_in_sagaw_aw48),
        T(test_four_level_aw48),
        T(test_superpages),
        T(test_superpages_unsupported),
        T(test_pass_through),
        T(test_pass_through_unsupported),
        T(test_interrupt_range_request),
        T(test_fpd),
        T(test_overflow_two_sids),
        T(test_compression_same_sid),
        T(test_no_compression_overflows),
        T(test_several_fault_records),
        T(test_fault_event),
        T(test_stale_iotlb),
        T(test_psi_did_and_mask),
        T(test_psi_unsupported_acts_as_dsi),
        T(test_context_change_needs_cc_and_iotlb),
        T(test_context_invalidation_granularity),
        T(test_context_invalidation_coarse),
        T(test_iotlb_permission_fault_silent),
        T(test_iotlb_permission_fault_recorded),
        T(test_no_negative_caching),
        T(test_srtp_keeps_caches),
        T(test_qi),
        T(test_qi_wait_interrupt),
        T(test_qi_invalid_descriptor),
        T(test_qi_invalid_descriptors),
        T(test_qie_enable_disable),
        T(test_wait_sw_and_if),
        T(test_register_invalidation_with_qi),
        T(test_register_invalidation_with_qi_carried_out),
        T(test_stall),
    };
#undef T
    return cmocka_run_group_tests_name("vtd_model", tests, NULL, NULL);
}
