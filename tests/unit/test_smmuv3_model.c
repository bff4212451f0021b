/* The SMMUv3 model itself, programmed directly through its registers with stream tables,
 * context descriptors, page tables and queues built by hand in a test memory arena.
 * Expected values are the SMMUv3 specification's (IHI 0070) and, with the qemu_* flags,
 * QEMU 7.2's hw/arm/smmuv3.c (docs/smmuv3-model.md). */
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "smmuv3_model.h"

#define ARENA_BASE 0x40000000ull
#define ARENA_SIZE (4u << 20)
#define NO_MEMORY 0x0000070000000000ull /* inside the 44-bit OAS, outside the arena */
#define DOORBELL 0x08090040ull          /* an interrupt controller's MSI doorbell: not memory */

#define DEV 0x10  /* edu on QEMU's virt machine */
#define DEV2 0x08 /* the virtio disk */

/* Commands. */
#define M_CMD_PREFETCH_CONFIG 0x01ull
#define M_CMD_CFGI_STE 0x03ull
#define M_CMD_CFGI_STE_RANGE 0x04ull
#define M_CMD_CFGI_CD 0x05ull
#define M_CMD_CFGI_CD_ALL 0x06ull
#define M_CMD_TLBI_NH_ALL 0x10ull
#define M_CMD_TLBI_NH_ASID 0x11ull
#define M_CMD_TLBI_NH_VA 0x12ull
#define M_CMD_TLBI_NH_VAA 0x13ull
#define M_CMD_TLBI_EL2_ALL 0x20ull
#define M_CMD_TLBI_NSNH_ALL 0x30ull
#define M_CMD_SYNC 0x46ull
#define M_SID(s) ((uint64_t)(s) << 32)
#define M_ASID(a) ((uint64_t)(a) << 48)
#define M_CS_IRQ (1ull << 12)

#define M_CR0_SMMUEN 1u
#define M_CR0_EVENTQEN 4u
#define M_CR0_CMDQEN 8u
#define M_GBPA_UPDATE (1u << 31)
#define M_GBPA_ABORT (1u << 20)
#define M_GERROR_CMDQ_ERR 1u
#define M_GERROR_EVENTQ_ABT 4u
#define M_OVF (1u << 31)

/* STE, CD and descriptor bits. */
#define M_STE_V 1ull
#define M_STE_ABORT 0ull
#define M_STE_BYPASS (4ull << 1 | M_STE_V)
#define M_STE_S1 (5ull << 1 | M_STE_V)
#define M_CD_EPD1 (1ull << 30)
#define M_CD_V (1ull << 31)
#define M_CD_IPS(n) ((uint64_t)(n) << 32)
#define M_CD_AFFD (1ull << 35)
#define M_CD_PAN (1ull << 40)
#define M_CD_AA64 (1ull << 41)
#define M_CD_HA (1ull << 43)
#define M_CD_S (1ull << 44)
#define M_CD_R (1ull << 45)
#define M_CD_A (1ull << 46)
#define M_PTE_TABLE 3ull
#define M_PTE_PAGE 3ull
#define M_PTE_BLOCK 1ull
#define M_AP_USER (1ull << 6)
#define M_AP_RO (1ull << 7)
#define M_AF (1ull << 10)
#define M_NG (1ull << 11)
#define M_APTABLE_RO (1ull << 62)
#define M_LEAF (M_AF | M_AP_USER | M_NG) /* what a driver's leaf should carry for unprivileged DMA */

/* Event record fields. */
#define M_EVT_TYPE(r) ((unsigned)((r)[0] & 0xFF))
#define M_EVT_SID(r) ((uint32_t)((r)[0] >> 32))
#define M_EVT_RNW(r) (((r)[1] >> 35) & 1)
#define M_EVT_PNU(r) (((r)[1] >> 33) & 1)
#define M_EVT_S2(r) (((r)[1] >> 39) & 1)
#define M_EVT_CLASS(r) ((unsigned)((r)[1] >> 40) & 3)

struct fixture {
    uint8_t *arena;
    uint64_t next;
    struct smmuv3_model *m;
    struct smmuv3_model_config cfg;
    uint64_t strtab, cmdq, eventq;
    unsigned strtab_log2, cmdq_log2, eventq_log2;
    uint32_t prod, evcons;
    unsigned msis;
    uint64_t msi_addr;
    uint32_t msi_data;
};

struct dom { /* one context descriptor and its tables */
    uint64_t cd, ttb;
    unsigned t0sz;
    uint16_t asid;
};

static bool in_arena(uint64_t pa, size_t len)
{
    return pa >= ARENA_BASE && pa - ARENA_BASE <= ARENA_SIZE && len <= ARENA_SIZE - (pa - ARENA_BASE);
}

static bool arena_read(void *ctx, uint64_t pa, void *buf, size_t len)
{
    struct fixture *f = ctx;
    if (!in_arena(pa, len))
        return false;
    memcpy(buf, f->arena + (pa - ARENA_BASE), len);
    return true;
}

static bool arena_write(void *ctx, uint64_t pa, const void *buf, size_t len)
{
    struct fixture *f = ctx;
    if (!in_arena(pa, len))
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

static uint64_t alloc(struct fixture *f, uint64_t size, uint64_t align)
{
    uint64_t pa = (f->next + align - 1) & ~(align - 1);
    assert_true(pa + size <= ARENA_BASE + ARENA_SIZE);
    f->next = pa + size;
    memset(f->arena + (pa - ARENA_BASE), 0, size);
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

static uint32_t r32(struct fixture *f, uint32_t off)
{
    return smmuv3_model_read32(f->m, off);
}

static void w32(struct fixture *f, uint32_t off, uint32_t v)
{
    smmuv3_model_write32(f->m, off, v);
}

static void w64(struct fixture *f, uint32_t off, uint64_t v)
{
    smmuv3_model_write64(f->m, off, v);
}

static struct smmuv3_model_stats stats(struct fixture *f)
{
    return smmuv3_model_stats(f->m);
}

static unsigned misuse(struct fixture *f)
{
    return stats(f).misuse;
}

/* Queues one command and moves CMDQ_PROD past it, as a driver does. */
static void cmd_put(struct fixture *f, uint64_t c0, uint64_t c1)
{
    uint32_t size = 1u << f->cmdq_log2;
    uint64_t at = f->cmdq + (uint64_t)(f->prod & (size - 1)) * 16;
    put64(f, at, c0);
    put64(f, at + 8, c1);
    f->prod = (f->prod + 1) & ((2u << f->cmdq_log2) - 1);
}

static void cmd(struct fixture *f, uint64_t c0, uint64_t c1)
{
    cmd_put(f, c0, c1);
    w32(f, SMMUV3_CMDQ_PROD, f->prod);
}

static void sync(struct fixture *f)
{
    cmd(f, M_CMD_SYNC, 0);
}

static uint32_t cons_index(struct fixture *f)
{
    return r32(f, SMMUV3_CMDQ_CONS) & ((2u << f->cmdq_log2) - 1);
}

/* True when the unit has consumed everything queued. */
static bool cmdq_drained(struct fixture *f)
{
    return cons_index(f) == f->prod;
}

static void set_ste(struct fixture *f, uint64_t table, uint32_t index, uint64_t d0, uint64_t d1)
{
    for (unsigned i = 0; i < 8; i++)
        put64(f, table + index * 64ull + i * 8, 0);
    put64(f, table + index * 64ull, d0);
    put64(f, table + index * 64ull + 8, d1);
}

static uint64_t cd0(uint16_t asid, unsigned t0sz)
{
    return t0sz | M_CD_EPD1 | M_CD_V | M_CD_IPS(4) | M_CD_AA64 | M_CD_R | M_CD_A | M_ASID(asid);
}

/* A CD with a 4 KiB-granule TTB0 of 2^(64 - t0sz) bytes and an empty top table. */
static struct dom dom_new(struct fixture *f, uint16_t asid, unsigned t0sz)
{
    struct dom d = {.asid = asid, .t0sz = t0sz};
    d.ttb = alloc(f, 4096, 4096);
    d.cd = alloc(f, 64, 64);
    put64(f, d.cd, cd0(asid, t0sz));
    put64(f, d.cd + 8, d.ttb);
    put64(f, d.cd + 24, 0xFF); /* MAIR0: attribute 0 normal write-back */
    return d;
}

static unsigned start_level(unsigned t0sz)
{
    return 4 - (64 - t0sz - 12 + 8) / 9;
}

/* The address of the descriptor for va at 'level' under d, creating the tables above it. */
static uint64_t pte_at(struct fixture *f, const struct dom *d, uint64_t va, unsigned level)
{
    uint64_t table = d->ttb;
    for (unsigned l = start_level(d->t0sz);; l++) {
        unsigned shift = 12 + 9 * (3 - l);
        uint64_t at = table + ((va >> shift) & 0x1FF) * 8;
        if (l == level)
            return at;
        if (!(get64(f, at) & 1))
            put64(f, at, alloc(f, 4096, 4096) | M_PTE_TABLE);
        table = get64(f, at) & 0x0000FFFFFFFFF000ull;
    }
}

static void map(struct fixture *f, const struct dom *d, uint64_t va, uint64_t desc, unsigned level)
{
    put64(f, pte_at(f, d, va, level), desc);
}

static void map4k(struct fixture *f, const struct dom *d, uint64_t va, uint64_t pa)
{
    map(f, d, va, pa | M_PTE_PAGE | M_LEAF, 3);
}

static void attach(struct fixture *f, uint32_t sid, const struct dom *d)
{
    set_ste(f, f->strtab, sid, M_STE_S1 | d->cd, 0);
}

/* Reads the next event record, if any, and consumes it. */
static bool next_event(struct fixture *f, uint64_t rec[4])
{
    uint32_t wm = (2u << f->eventq_log2) - 1;
    uint32_t prod = r32(f, SMMUV3_EVENTQ_PROD);
    if (((prod ^ f->evcons) & wm) == 0)
        return false;
    uint64_t at = f->eventq + (uint64_t)(f->evcons & ((1u << f->eventq_log2) - 1)) * 32;
    for (unsigned i = 0; i < 4; i++)
        rec[i] = get64(f, at + i * 8);
    f->evcons = (f->evcons & M_OVF) | ((f->evcons + 1) & wm);
    w32(f, SMMUV3_EVENTQ_CONS, f->evcons);
    return true;
}

static unsigned pending_events(struct fixture *f)
{
    uint32_t wm = (2u << f->eventq_log2) - 1;
    return (r32(f, SMMUV3_EVENTQ_PROD) - f->evcons) & wm;
}

static struct smmuv3_model_result dma(struct fixture *f, uint32_t sid, uint64_t iova, bool write)
{
    return smmuv3_model_dma(f->m, sid, iova, write);
}

static void dma_ok(struct fixture *f, uint32_t sid, uint64_t iova, bool write, uint64_t pa)
{
    struct smmuv3_model_result r = dma(f, sid, iova, write);
    assert_true(r.ok);
    assert_int_equal(r.pa, pa);
}

/* A transaction that fails with 'event', recorded; returns the record. */
static void dma_event(struct fixture *f, uint32_t sid, uint64_t iova, bool write, unsigned event, uint64_t rec[4])
{
    struct smmuv3_model_result r = dma(f, sid, iova, write);
    assert_false(r.ok);
    assert_int_equal(r.event, event);
    assert_true(r.recorded);
    assert_true(next_event(f, rec));
    assert_int_equal(M_EVT_TYPE(rec), event);
    assert_int_equal(M_EVT_SID(rec), sid);
}

/* Creates the unit on the arena without programming it. */
static void create(struct fixture *f, const struct smmuv3_model_config *cfg)
{
    struct smmuv3_model_memory mem = {.ctx = f, .read = arena_read, .write = arena_write, .msi = arena_msi};
    smmuv3_model_destroy(f->m);
    f->next = ARENA_BASE;
    f->prod = f->evcons = 0;
    f->msis = 0;
    f->cfg = *cfg;
    f->m = smmuv3_model_create(cfg, &mem);
    assert_non_null(f->m);
}

/* A driver's bounded poll of CR0ACK. */
static void poll_cr0ack(struct fixture *f, uint32_t want)
{
    unsigned tries = 0;
    while (r32(f, SMMUV3_CR0ACK) != want)
        assert_true(++tries < 16);
}

/* Programs the queues and a linear stream table the way a driver does, without SMMUEN. */
static void program(struct fixture *f, unsigned strtab_log2, unsigned cmdq_log2, unsigned eventq_log2)
{
    f->strtab_log2 = strtab_log2;
    f->cmdq_log2 = cmdq_log2;
    f->eventq_log2 = eventq_log2;
    f->strtab = alloc(f, 64ull << strtab_log2, 64ull << strtab_log2);
    f->cmdq = alloc(f, 16ull << cmdq_log2, 16ull << cmdq_log2 < 32 ? 32 : 16ull << cmdq_log2);
    f->eventq = alloc(f, 32ull << eventq_log2, 32ull << eventq_log2);
    w64(f, SMMUV3_STRTAB_BASE, f->strtab | 1ull << 62);
    w32(f, SMMUV3_STRTAB_BASE_CFG, strtab_log2);
    w64(f, SMMUV3_CMDQ_BASE, f->cmdq | 1ull << 62 | cmdq_log2);
    w32(f, SMMUV3_CMDQ_PROD, 0);
    w32(f, SMMUV3_CMDQ_CONS, 0);
    w64(f, SMMUV3_EVENTQ_BASE, f->eventq | 1ull << 62 | eventq_log2);
    w32(f, SMMUV3_EVENTQ_PROD, 0);
    w32(f, SMMUV3_EVENTQ_CONS, 0);
    w32(f, SMMUV3_CR1, 0xD75);
    w32(f, SMMUV3_CR2, 2); /* RECINVSID */
    w32(f, SMMUV3_CR0, M_CR0_EVENTQEN | M_CR0_CMDQEN);
    poll_cr0ack(f, M_CR0_EVENTQEN | M_CR0_CMDQEN);
}

static void invalidate_all(struct fixture *f)
{
    cmd(f, M_CMD_CFGI_STE_RANGE, 31);
    cmd(f, M_CMD_TLBI_NSNH_ALL, 0);
    sync(f);
    assert_true(cmdq_drained(f));
}

static void enable(struct fixture *f)
{
    invalidate_all(f);
    w32(f, SMMUV3_CR0, M_CR0_SMMUEN | M_CR0_EVENTQEN | M_CR0_CMDQEN);
    poll_cr0ack(f, M_CR0_SMMUEN | M_CR0_EVENTQEN | M_CR0_CMDQEN);
}

/* The unit enabled with a 256-STE linear table, a 64-command queue and a 16-event queue. */
static void start(struct fixture *f, const struct smmuv3_model_config *cfg)
{
    create(f, cfg);
    program(f, 8, 6, 4);
    enable(f);
    assert_int_equal(misuse(f), 0);
}

static struct smmuv3_model_config msi_config(bool qemu)
{
    struct smmuv3_model_config c = qemu ? smmuv3_model_config_qemu() : smmuv3_model_config_spec();
    c.idr[0] |= 1u << 13; /* MSI */
    return c;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->arena = calloc(1, ARENA_SIZE);
    assert_non_null(f->arena);
    struct smmuv3_model_config cfg = smmuv3_model_config_spec();
    start(f, &cfg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    smmuv3_model_destroy(f->m);
    free(f->arena);
    free(f);
    return 0;
}

/* ---- Configuration and registers ---------------------------------------------------------- */

static void test_qemu_id_registers(void **state)
{
    struct fixture *f = *state;
    struct smmuv3_model_config q = smmuv3_model_config_qemu();
    create(f, &q);
    assert_int_equal(r32(f, SMMUV3_IDR0), 0x0D40101A);
    assert_int_equal(r32(f, SMMUV3_IDR1), 0x02730010);
    assert_int_equal(r32(f, SMMUV3_IDR2), 0);
    assert_int_equal(r32(f, SMMUV3_IDR3), 0x1404);
    assert_int_equal(r32(f, SMMUV3_IDR4), 0);
    assert_int_equal(r32(f, SMMUV3_IDR5), 0x74);
    assert_int_equal(r32(f, SMMUV3_IIDR), 0);
    assert_int_equal(r32(f, SMMUV3_AIDR), 1);
    assert_true(q.qemu_gbpa && q.qemu_page_alias && q.qemu_invalidation && q.qemu_walk && q.qemu_commands &&
                q.qemu_structures && q.qemu_event_queue);
    struct smmuv3_model_config s = smmuv3_model_config_spec();
    assert_memory_equal(s.idr, q.idr, sizeof s.idr);
    assert_false(s.qemu_gbpa || s.qemu_page_alias || s.qemu_invalidation || s.qemu_walk || s.qemu_commands ||
                 s.qemu_structures || s.qemu_event_queue);
    /* Reset: disabled, queues at their largest size, GBPA bypass (RAZ in QEMU). */
    assert_int_equal(r32(f, SMMUV3_CR0ACK), 0);
    assert_int_equal(smmuv3_model_read64(f->m, SMMUV3_CMDQ_BASE) & 0x1F, 19);
    assert_int_equal(r32(f, SMMUV3_GBPA), 0);
    assert_int_equal(misuse(f), 0);
}

static void test_create_refuses(void **state)
{
    struct fixture *f = *state;
    struct smmuv3_model_memory mem = {.ctx = f, .read = arena_read, .write = arena_write};
    struct smmuv3_model_config c = smmuv3_model_config_spec();
    c.idr[0] |= 1; /* stage 2 */
    assert_null(smmuv3_model_create(&c, &mem));
    c = smmuv3_model_config_spec();
    c.idr[5] &= ~0x10u; /* no 4 KiB granule */
    assert_null(smmuv3_model_create(&c, &mem));
    c = smmuv3_model_config_spec();
    mem.write = NULL;
    assert_null(smmuv3_model_create(&c, &mem));
}

static void test_access_widths(void **state)
{
    struct fixture *f = *state;
    /* 64-bit registers: whole or by halves. */
    w32(f, SMMUV3_CR0, M_CR0_EVENTQEN | M_CR0_CMDQEN);
    assert_int_equal(misuse(f), 0);
    uint64_t b = smmuv3_model_read64(f->m, SMMUV3_STRTAB_BASE);
    assert_int_equal(b, f->strtab | 1ull << 62);
    assert_int_equal(r32(f, SMMUV3_STRTAB_BASE), (uint32_t)b);
    assert_int_equal(r32(f, SMMUV3_STRTAB_BASE + 4), (uint32_t)(b >> 32));
    w32(f, SMMUV3_STRTAB_BASE, (uint32_t)f->strtab);
    w32(f, SMMUV3_STRTAB_BASE + 4, 0);
    assert_int_equal(smmuv3_model_read64(f->m, SMMUV3_STRTAB_BASE), f->strtab);
    assert_int_equal(misuse(f), 0);
    /* Page 1 holds EVENTQ_PROD/CONS. */
    assert_int_equal(r32(f, SMMUV3_EVENTQ_PROD), 0);
    assert_int_equal(misuse(f), 0);
    /* Misuse: 64-bit access to 32-bit registers, misaligned, unknown, read-only, page-0 alias. */
    assert_int_equal(smmuv3_model_read64(f->m, SMMUV3_IDR0), 0);
    assert_int_equal(misuse(f), 1);
    assert_int_equal(r32(f, SMMUV3_CR0 + 2), 0);
    assert_int_equal(misuse(f), 2);
    assert_int_equal(r32(f, 0x30), 0);
    assert_int_equal(misuse(f), 3);
    w32(f, SMMUV3_IDR0, 0);
    assert_int_equal(misuse(f), 4);
    assert_int_equal(r32(f, SMMUV3_IDR0), 0x0D40101A);
    w64(f, SMMUV3_CR0, 0);
    assert_int_equal(misuse(f), 5);
    assert_int_equal(r32(f, SMMUV3_CR0), M_CR0_EVENTQEN | M_CR0_CMDQEN);
    assert_int_equal(r32(f, 0xA8), 0); /* EVENTQ_PROD's page-0 offset: RAZ here */
    assert_int_equal(misuse(f), 6);
    assert_non_null(strstr(stats(f).last_misuse, "page 1"));
    r32(f, SMMUV3_MMIO_SIZE);
    assert_int_equal(misuse(f), 7);
}

static void test_page_alias_qemu(void **state)
{
    struct fixture *f = *state;
    struct smmuv3_model_config q = smmuv3_model_config_qemu();
    start(f, &q);
    struct dom d = dom_new(f, 1, 25);
    attach(f, DEV, &d);
    dma(f, DEV, 0x1000, false); /* one event */
    assert_int_equal(r32(f, 0xA8), 1); /* QEMU aliases page 0 and page 1 */
    assert_int_equal(misuse(f), 1);
    assert_int_equal(r32(f, 0x10000 + SMMUV3_CR0ACK), M_CR0_SMMUEN | M_CR0_EVENTQEN | M_CR0_CMDQEN);
    assert_int_equal(misuse(f), 2);
}

static void test_gbpa(void **state)
{
    struct fixture *f = *state;
    struct smmuv3_model_config c = smmuv3_model_config_spec();
    c.ack_delay = 2;
    create(f, &c);
    dma_ok(f, DEV, 0x123456, true, 0x123456); /* disabled, GBPA resets to bypass */
    w32(f, SMMUV3_GBPA, M_GBPA_ABORT | M_GBPA_UPDATE);
    dma_ok(f, DEV, 0x1000, false, 0x1000); /* the update has not completed */
    assert_int_equal(r32(f, SMMUV3_GBPA), M_GBPA_ABORT | M_GBPA_UPDATE);
    w32(f, SMMUV3_GBPA, M_GBPA_UPDATE); /* while Update is 1: ignored */
    assert_int_equal(misuse(f), 1);
    assert_int_equal(r32(f, SMMUV3_GBPA), M_GBPA_ABORT);
    struct smmuv3_model_result r = dma(f, DEV, 0x1000, false);
    assert_false(r.ok);
    assert_int_equal(r.event, 0);
    assert_false(r.recorded);
    w32(f, SMMUV3_GBPA, 0); /* without Update: ignored */
    assert_int_equal(misuse(f), 2);
    assert_false(dma(f, DEV, 0x1000, false).ok);
    /* A default-deny unit. */
    c.gbpa_reset = M_GBPA_ABORT;
    create(f, &c);
    assert_int_equal(r32(f, SMMUV3_GBPA), M_GBPA_ABORT);
    assert_false(dma(f, DEV, 0x1000, false).ok);
    /* QEMU 7.2 has no GBPA: it reads 0 and the unit always bypasses when disabled. */
    struct smmuv3_model_config q = smmuv3_model_config_qemu();
    create(f, &q);
    w32(f, SMMUV3_GBPA, M_GBPA_ABORT | M_GBPA_UPDATE);
    assert_int_equal(r32(f, SMMUV3_GBPA), 0);
    dma_ok(f, DEV, 0x1000, true, 0x1000);
    assert_int_equal(misuse(f), 0);
}

static void test_cr0ack_delay(void **state)
{
    struct fixture *f = *state;
    struct smmuv3_model_config c = smmuv3_model_config_spec();
    c.ack_delay = 3;
    create(f, &c);
    program(f, 8, 6, 4); /* polls CR0ACK: the third read shows the queues enabled */
    invalidate_all(f);
    w32(f, SMMUV3_CR0, M_CR0_SMMUEN | M_CR0_EVENTQEN | M_CR0_CMDQEN);
    assert_int_equal(r32(f, SMMUV3_CR0), M_CR0_SMMUEN | M_CR0_EVENTQEN | M_CR0_CMDQEN);
    assert_int_equal(r32(f, SMMUV3_CR0ACK), M_CR0_EVENTQEN | M_CR0_CMDQEN);
    dma_ok(f, DEV, 0x5000, false, 0x5000); /* SMMUEN not yet in effect */
    /* Changing SMMUEN again before CR0ACK caught up. */
    w32(f, SMMUV3_CR0, M_CR0_EVENTQEN | M_CR0_CMDQEN);
    assert_int_equal(misuse(f), 1);
    assert_non_null(strstr(stats(f).last_misuse, "CR0ACK"));
    /* IRQ_CTRL acknowledges the same way. */
    w32(f, SMMUV3_IRQ_CTRL, 5);
    assert_int_equal(r32(f, SMMUV3_IRQ_CTRLACK), 0);
    assert_int_equal(r32(f, SMMUV3_IRQ_CTRLACK), 0);
    assert_int_equal(r32(f, SMMUV3_IRQ_CTRLACK), 5);
}

static void test_enable_without_invalidation(void **state)
{
    struct fixture *f = *state;
    struct smmuv3_model_config c = smmuv3_model_config_spec();
    create(f, &c);
    program(f, 8, 6, 4);
    cmd(f, M_CMD_CFGI_STE_RANGE, 31);
    cmd(f, M_CMD_TLBI_NSNH_ALL, 0); /* no M_CMD_SYNC: not known to be complete */
    w32(f, SMMUV3_CR0, M_CR0_SMMUEN | M_CR0_EVENTQEN | M_CR0_CMDQEN);
    assert_int_equal(misuse(f), 1);
    assert_non_null(strstr(stats(f).last_misuse, "SMMUEN"));
}

/* ---- Translation ---------------------------------------------------------------------------- */

static void test_translate_sizes(void **state)
{
    struct fixture *f = *state;
    struct dom d = dom_new(f, 1, 25); /* 39 bits: the walk starts at level 1 */
    attach(f, DEV, &d);
    map4k(f, &d, 0x1000, 0x80005000);
    map(f, &d, 0x40200000, 0x80600000 | M_PTE_BLOCK | M_LEAF, 2);   /* 2 MiB */
    map(f, &d, 0x4000000000ull >> 1, 0xC0000000 | M_PTE_BLOCK | M_LEAF, 1); /* 1 GiB at 0x20_0000_0000 */
    dma_ok(f, DEV, 0x1234, true, 0x80005234);
    dma_ok(f, DEV, 0x40200000 + 0x1ABCDE, false, 0x80600000 + 0x1ABCDE);
    dma_ok(f, DEV, 0x2000000000ull + 0x3FFFFFFF, false, 0xFFFFFFFF);
    struct smmuv3_model_result r = dma(f, DEV, 0x1FF8, false);
    assert_true(r.ok && r.from_cache && r.config_from_cache);
    assert_int_equal(r.pa, 0x80005FF8);
    assert_int_equal(stats(f).tlb_fills, 3);
    assert_int_equal(pending_events(f), 0);
    assert_int_equal(misuse(f), 0);
}

static void test_translate_48bit(void **state)
{
    struct fixture *f = *state;
    struct dom d = dom_new(f, 2, 16); /* 48 bits: level 0 */
    attach(f, DEV, &d);
    map4k(f, &d, 0xFFFFFFFFF000ull, 0x9000);
    map4k(f, &d, 0x800000000000ull, 0xA000);
    dma_ok(f, DEV, 0xFFFFFFFFF010ull, true, 0x9010);
    dma_ok(f, DEV, 0x800000000008ull, true, 0xA008);
    /* 30 bits (T0SZ 34): the walk starts at level 2 with a 4-entry table (32 bytes). */
    struct dom s = dom_new(f, 3, 34);
    attach(f, DEV2, &s);
    map4k(f, &s, 0x3FFFF000, 0xB000);
    dma_ok(f, DEV2, 0x3FFFF004, false, 0xB004);
    assert_int_equal(misuse(f), 0);
}

static void test_translate_ttb1(void **state)
{
    struct fixture *f = *state;
    struct dom d = dom_new(f, 4, 25);
    uint64_t ttb1 = alloc(f, 4096, 4096);
    struct dom hi = {.cd = d.cd, .ttb = ttb1, .t0sz = 25, .asid = 4};
    /* T1SZ 25, TG1 4 KiB (0b10), EPD1 clear. */
    put64(f, d.cd, (cd0(4, 25) & ~M_CD_EPD1) | 25ull << 16 | 2ull << 22);
    put64(f, d.cd + 16, ttb1);
    attach(f, DEV, &d);
    map4k(f, &hi, 0xFFFFFF8000001000ull, 0x7000);
    map4k(f, &d, 0x1000, 0x6000);
    dma_ok(f, DEV, 0xFFFFFF8000001008ull, true, 0x7008);
    dma_ok(f, DEV, 0x1008, true, 0x6008);
    uint64_t rec[4];
    /* Between the two regions: a translation fault. */
    dma_event(f, DEV, 0x0000800000000000ull, false, SMMUV3_EVT_F_TRANSLATION, rec);
    assert_int_equal(misuse(f), 0);
}

static void test_bypass_and_abort(void **state)
{
    struct fixture *f = *state;
    set_ste(f, f->strtab, DEV, M_STE_BYPASS, 0);
    dma_ok(f, DEV, 0x12345678, true, 0x12345678);
    set_ste(f, f->strtab, DEV2, M_STE_V | M_STE_ABORT, 0);
    struct smmuv3_model_result r = dma(f, DEV2, 0x1000, true);
    assert_false(r.ok);
    assert_int_equal(r.event, 0); /* Config abort: no event */
    assert_false(r.recorded);
    assert_int_equal(pending_events(f), 0);
    /* Stage 1 bypassed: an address beyond the OAS (44 bits) is an address size fault. */
    uint64_t rec[4];
    dma_event(f, DEV, 1ull << 44, true, SMMUV3_EVT_F_ADDR_SIZE, rec);
    assert_int_equal(M_EVT_CLASS(rec), 2);
    assert_int_equal(misuse(f), 0);
}

static void test_fault_translation_record(void **state)
{
    struct fixture *f = *state;
    struct dom d = dom_new(f, 1, 25);
    attach(f, DEV, &d);
    map4k(f, &d, 0x100000, 0x80000000);
    uint64_t rec[4];
    dma_event(f, DEV, 0x200010, false, SMMUV3_EVT_F_TRANSLATION, rec);
    assert_int_equal(M_EVT_RNW(rec), 1);
    assert_int_equal(M_EVT_PNU(rec), 0);
    assert_int_equal(M_EVT_S2(rec), 0);
    assert_int_equal(M_EVT_CLASS(rec), 2); /* IN */
    assert_int_equal(rec[0] >> 8 & 0xFFFFFF, 0); /* no SubstreamID */
    assert_int_equal(rec[2], 0x200010);
    assert_int_equal(rec[3], 0);
    dma_event(f, DEV, 0x200020, true, SMMUV3_EVT_F_TRANSLATION, rec);
    assert_int_equal(M_EVT_RNW(rec), 0);
    /* Beyond T0SZ (39 bits), even where the low bits are mapped. */
    dma_ok(f, DEV, 0x100000, true, 0x80000000);
    dma_event(f, DEV, 1ull << 39 | 0x100000, true, SMMUV3_EVT_F_TRANSLATION, rec);
    assert_int_equal(rec[2], 1ull << 39 | 0x100000);
    /* TTB1 region with EPD1. */
    dma_event(f, DEV, 0xFFFFFFFFFFFFF000ull, false, SMMUV3_EVT_F_TRANSLATION, rec);
    assert_int_equal(stats(f).events_written, 4);
    assert_false(dma(f, DEV, 0x200010, false).from_cache); /* faults are not cached */
    /* QEMU: the same record but CLASS 0. */
    struct smmuv3_model_config q = smmuv3_model_config_qemu();
    start(f, &q);
    d = dom_new(f, 1, 25);
    attach(f, DEV, &d);
    dma_event(f, DEV, 0x200010, false, SMMUV3_EVT_F_TRANSLATION, rec);
    assert_int_equal(M_EVT_RNW(rec), 1);
    assert_int_equal(M_EVT_CLASS(rec), 0);
    assert_int_equal(rec[2], 0x200010);
}

static void test_fault_permission(void **state)
{
    struct fixture *f = *state;
    struct dom d = dom_new(f, 1, 25);
    attach(f, DEV, &d);
    map(f, &d, 0x3000, 0x83000 | M_PTE_PAGE | M_LEAF | M_AP_RO, 3);
    dma_ok(f, DEV, 0x3010, false, 0x83010);
    uint64_t rec[4];
    dma_event(f, DEV, 0x3010, true, SMMUV3_EVT_F_PERMISSION, rec);
    assert_int_equal(M_EVT_RNW(rec), 0);
    assert_int_equal(rec[2], 0x3010);
    /* From the TLB too. */
    struct smmuv3_model_result r = dma(f, DEV, 0x3020, true);
    assert_false(r.ok);
    assert_true(r.from_cache);
    assert_int_equal(r.event, SMMUV3_EVT_F_PERMISSION);
    assert_true(next_event(f, rec));
    /* A valid translation that faulted is cached: made writable, it needs a TLBI. */
    map(f, &d, 0x6000, 0x86000 | M_PTE_PAGE | M_LEAF | M_AP_RO, 3);
    dma_event(f, DEV, 0x6000, true, SMMUV3_EVT_F_PERMISSION, rec);
    map4k(f, &d, 0x6000, 0x86000);
    r = dma(f, DEV, 0x6000, true);
    assert_true(!r.ok && r.from_cache);
    assert_true(next_event(f, rec));
    cmd(f, M_CMD_TLBI_NH_VA | M_ASID(1), 0x6000);
    sync(f);
    dma_ok(f, DEV, 0x6000, true, 0x86000);
    /* A page without AP[1] is for privileged accesses: PCIe DMA is unprivileged. */
    map(f, &d, 0x4000, 0x84000 | M_PTE_PAGE | M_AF | M_NG, 3);
    dma_event(f, DEV, 0x4000, false, SMMUV3_EVT_F_PERMISSION, rec);
    /* APTable[1] makes everything below read-only. */
    map4k(f, &d, 0x40000000, 0x90000000);
    uint64_t l1 = pte_at(f, &d, 0x40000000, 1);
    put64(f, l1, get64(f, l1) | M_APTABLE_RO);
    dma_ok(f, DEV, 0x40000000, false, 0x90000000);
    dma_event(f, DEV, 0x40000000, true, SMMUV3_EVT_F_PERMISSION, rec);
    assert_int_equal(misuse(f), 0);
}

static void test_permission_qemu(void **state)
{
    struct fixture *f = *state;
    struct smmuv3_model_config q = smmuv3_model_config_qemu();
    start(f, &q);
    struct dom d = dom_new(f, 1, 25);
    attach(f, DEV, &d);
    uint64_t rec[4];
    /* QEMU takes every request as privileged: AP[1] does not matter. */
    map(f, &d, 0x4000, 0x84000 | M_PTE_PAGE | M_AF, 3);
    dma_ok(f, DEV, 0x4000, true, 0x84000);
    /* APTable[1]: a write walk faults, but a read caches the leaf's RW permission... */
    map4k(f, &d, 0x40000000, 0x90000000);
    uint64_t l1 = pte_at(f, &d, 0x40000000, 1);
    put64(f, l1, get64(f, l1) | M_APTABLE_RO);
    dma_event(f, DEV, 0x40000000, true, SMMUV3_EVT_F_PERMISSION, rec);
    dma_ok(f, DEV, 0x40000000, false, 0x90000000);
    /* ... and the next write passes from the TLB. */
    struct smmuv3_model_result r = dma(f, DEV, 0x40000000, true);
    assert_true(r.ok && r.from_cache);
    /* A walk that faulted is not cached: made writable, the page works at once. */
    map(f, &d, 0x6000, 0x86000 | M_PTE_PAGE | M_LEAF | M_AP_RO, 3);
    dma_event(f, DEV, 0x6000, true, SMMUV3_EVT_F_PERMISSION, rec);
    map4k(f, &d, 0x6000, 0x86000);
    dma_ok(f, DEV, 0x6000, true, 0x86000);
}

static void test_fault_access_flag(void **state)
{
    struct fixture *f = *state;
    struct dom d = dom_new(f, 1, 25);
    attach(f, DEV, &d);
    map(f, &d, 0x5000, 0x85000 | M_PTE_PAGE | M_AP_USER | M_NG, 3); /* M_AF = 0 */
    uint64_t rec[4];
    dma_event(f, DEV, 0x5008, true, SMMUV3_EVT_F_ACCESS, rec);
    assert_int_equal(rec[2], 0x5008);
    assert_int_equal(M_EVT_CLASS(rec), 2);
    assert_false(dma(f, DEV, 0x5008, false).from_cache); /* not cached */
    assert_true(next_event(f, rec));
    /* CD.AFFD: M_AF taken as 1. */
    put64(f, d.cd, cd0(1, 25) | M_CD_AFFD);
    cmd(f, M_CMD_CFGI_CD | M_SID(DEV), 1);
    sync(f);
    dma_ok(f, DEV, 0x5008, true, 0x85008);
    /* QEMU never checks M_AF. */
    struct smmuv3_model_config q = smmuv3_model_config_qemu();
    start(f, &q);
    d = dom_new(f, 1, 25);
    attach(f, DEV, &d);
    map(f, &d, 0x5000, 0x85000 | M_PTE_PAGE | M_AP_USER | M_NG, 3);
    dma_ok(f, DEV, 0x5008, true, 0x85008);
}

static void test_fault_address_size(void **state)
{
    struct fixture *f = *state;
    struct dom d = dom_new(f, 1, 25);
    put64(f, d.cd, (cd0(1, 25) & ~M_CD_IPS(7)) | M_CD_IPS(0)); /* 32-bit output */
    attach(f, DEV, &d);
    map4k(f, &d, 0x6000, 0x100000000ull);
    map4k(f, &d, 0x7000, 0xFFFFF000ull);
    uint64_t rec[4];
    dma_event(f, DEV, 0x6000, false, SMMUV3_EVT_F_ADDR_SIZE, rec);
    assert_int_equal(rec[2], 0x6000);
    dma_ok(f, DEV, 0x7FFC, false, 0xFFFFFFFCull);
    /* A table address beyond the IPS. */
    uint64_t l1 = pte_at(f, &d, 0x80000000, 1);
    put64(f, l1, 0x200000000ull | M_PTE_TABLE);
    dma_event(f, DEV, 0x80000000, false, SMMUV3_EVT_F_ADDR_SIZE, rec);
    /* Descriptor bits 51:48 are not an address with the 4 KiB granule: also a fault. */
    put64(f, d.cd, cd0(1, 25));
    cmd(f, M_CMD_CFGI_CD | M_SID(DEV), 1);
    sync(f);
    map4k(f, &d, 0x8000, 0x0001000000000000ull);
    dma_event(f, DEV, 0x8000, false, SMMUV3_EVT_F_ADDR_SIZE, rec);
    /* QEMU has no address size check: bits 51:48 are dropped. */
    struct smmuv3_model_config q = smmuv3_model_config_qemu();
    start(f, &q);
    d = dom_new(f, 1, 25);
    put64(f, d.cd, (cd0(1, 25) & ~M_CD_IPS(7)) | M_CD_IPS(0));
    attach(f, DEV, &d);
    map4k(f, &d, 0x6000, 0x100000000ull);
    map4k(f, &d, 0x8000, 0x0001000000009000ull);
    dma_ok(f, DEV, 0x6000, false, 0x100000000ull);
    dma_ok(f, DEV, 0x8000, false, 0x9000);
}

static void test_level0_block(void **state)
{
    struct fixture *f = *state;
    struct dom d = dom_new(f, 1, 16);
    attach(f, DEV, &d);
    put64(f, d.ttb, 0 | M_PTE_BLOCK | M_LEAF);
    uint64_t rec[4];
    dma_event(f, DEV, 0x1000, false, SMMUV3_EVT_F_TRANSLATION, rec);
    struct smmuv3_model_config q = smmuv3_model_config_qemu();
    start(f, &q);
    d = dom_new(f, 1, 16);
    attach(f, DEV, &d);
    put64(f, d.ttb, 0 | M_PTE_BLOCK | M_LEAF);
    dma_ok(f, DEV, 0x7FFFFFFFFFull, false, 0x7FFFFFFFFFull); /* a 512 GiB block */
}

static void test_record_suppressed(void **state)
{
    struct fixture *f = *state;
    struct dom d = dom_new(f, 1, 25);
    put64(f, d.cd, cd0(1, 25) & ~M_CD_R);
    attach(f, DEV, &d);
    struct smmuv3_model_result r = dma(f, DEV, 0x9000, true);
    assert_false(r.ok);
    assert_int_equal(r.event, SMMUV3_EVT_F_TRANSLATION);
    assert_false(r.recorded);
    assert_int_equal(pending_events(f), 0);
    assert_int_equal(stats(f).events_suppressed, 1);
    /* An external abort on the walk is recorded whatever R says. */
    put64(f, d.cd + 8, NO_MEMORY);
    cmd(f, M_CMD_CFGI_CD | M_SID(DEV), 1);
    sync(f);
    uint64_t rec[4];
    dma_event(f, DEV, 0x9000, true, SMMUV3_EVT_F_WALK_EABT, rec);
    assert_int_equal(M_EVT_CLASS(rec), 1); /* TT */
    assert_int_equal(rec[2], 0x9000);
    assert_int_equal(rec[3], NO_MEMORY); /* the level-1 descriptor's address */
}

static void test_privileged_streams(void **state)
{
    struct fixture *f = *state;
    struct smmuv3_model_config c = smmuv3_model_config_spec();
    c.idr[1] |= 1u << 26; /* ATTR_PERMS_OVR: STE.PRIVCFG is honoured */
    start(f, &c);
    struct dom d = dom_new(f, 1, 25);
    set_ste(f, f->strtab, DEV, M_STE_S1 | d.cd, 3ull << 48); /* PRIVCFG privileged */
    map(f, &d, 0x4000, 0x84000 | M_PTE_PAGE | M_AF | M_NG, 3);
    dma_ok(f, DEV, 0x4000, false, 0x84000);
    /* PAN: a privileged access to a user page faults. */
    map4k(f, &d, 0x5000, 0x85000);
    put64(f, d.cd, cd0(1, 25) | M_CD_PAN);
    cmd(f, M_CMD_CFGI_CD | M_SID(DEV), 1);
    cmd(f, M_CMD_TLBI_NH_ASID | M_ASID(1), 0);
    sync(f);
    uint64_t rec[4];
    dma_event(f, DEV, 0x5000, false, SMMUV3_EVT_F_PERMISSION, rec);
    assert_int_equal(M_EVT_PNU(rec), 1);
}

/* ---- Structures ------------------------------------------------------------------------------ */

static void test_bad_ste(void **state)
{
    struct fixture *f = *state;
    struct dom d = dom_new(f, 1, 25);
    uint64_t rec[4];
    unsigned sid = 0x20;
    const uint64_t bad[][2] = {
        {M_STE_S1 & ~M_STE_V, 0},                 /* V = 0 */
        {6ull << 1 | M_STE_V, 0},               /* stage 2 */
        {M_STE_S1, 1ull << 27},                 /* S1STALLD without the stall model */
        {M_STE_S1 | 1ull << 56, 0},             /* reserved */
        {M_STE_S1, 2ull << 30},                 /* STRW EL2 without Hyp (RES0) */
    };
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++, sid++) {
        set_ste(f, f->strtab, sid, bad[i][0] | (bad[i][0] & 2 ? d.cd : 0), bad[i][1]);
        dma_event(f, sid, 0x1000, false, SMMUV3_EVT_C_BAD_STE, rec);
        assert_int_equal(rec[1] | rec[2] | rec[3], 0);
    }
    assert_int_equal(misuse(f), 2); /* the reserved bits */
    /* S1ContextPtr beyond the OAS. */
    set_ste(f, f->strtab, sid, M_STE_S1 | 1ull << 50, 0);
    dma_event(f, sid, 0x1000, false, SMMUV3_EVT_C_BAD_STE, rec);
    /* With SSIDSIZE 0, S1CDMax is IGNORED: one CD. */
    attach(f, DEV, &d);
    put64(f, f->strtab + DEV * 64, M_STE_S1 | d.cd | 5ull << 59);
    map4k(f, &d, 0x1000, 0x81000);
    dma_ok(f, DEV, 0x1000, false, 0x81000);
}

static void test_bad_ste_qemu(void **state)
{
    struct fixture *f = *state;
    struct smmuv3_model_config q = smmuv3_model_config_qemu();
    start(f, &q);
    struct dom d = dom_new(f, 1, 25);
    map4k(f, &d, 0x1000, 0x81000);
    uint64_t rec[4];
    /* QEMU refuses S1CDMax != 0 ... */
    set_ste(f, f->strtab, DEV, M_STE_S1 | d.cd | 5ull << 59, 0);
    dma_event(f, DEV, 0x1000, false, SMMUV3_EVT_C_BAD_STE, rec);
    /* ... and ignores reserved bits (still misuse). */
    set_ste(f, f->strtab, DEV2, M_STE_S1 | d.cd | 1ull << 56, 0);
    dma_ok(f, DEV2, 0x1000, false, 0x81000);
    assert_int_equal(misuse(f), 1);
}

static void test_bad_cd(void **state)
{
    struct fixture *f = *state;
    uint64_t rec[4];
    const uint64_t good = cd0(1, 25);
    const uint64_t bad[] = {
        good & ~M_CD_V,
        good & ~M_CD_A,                   /* TERM_MODEL 1: A must be 1 */
        good | M_CD_S,                    /* no stall model */
        good & ~M_CD_AA64,                /* no VMSAv8-32 tables */
        good | M_CD_HA,                   /* no HTTU */
        (good & ~0x3Full) | 40,         /* T0SZ beyond 39 */
        (good & ~0x3Full) | 15,         /* T0SZ below 16 */
        good | 3ull << 6,               /* TG0 reserved */
        good | 1ull << 15,              /* big-endian */
    };
    unsigned sid = 0x40;
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++, sid++) {
        struct dom d = dom_new(f, 1, 25);
        put64(f, d.cd, bad[i]);
        attach(f, sid, &d);
        dma_event(f, sid, 0x1000, true, SMMUV3_EVT_C_BAD_CD, rec);
    }
    assert_int_equal(misuse(f), 0);
    /* TTB0 beyond the IPS (32 bits). */
    struct dom d = dom_new(f, 1, 25);
    put64(f, d.cd, (good & ~M_CD_IPS(7)) | M_CD_IPS(0));
    put64(f, d.cd + 8, 0x100000000ull);
    attach(f, sid, &d);
    dma_event(f, sid++, 0x1000, true, SMMUV3_EVT_C_BAD_CD, rec);
    /* The 64 KiB granule: supported by the unit (IDR5), not by the model. */
    d = dom_new(f, 1, 25);
    put64(f, d.cd, good | 1ull << 6);
    attach(f, sid, &d);
    dma_event(f, sid++, 0x1000, true, SMMUV3_EVT_C_BAD_CD, rec);
    assert_int_equal(misuse(f), 1);
    assert_non_null(strstr(stats(f).last_misuse, "not modelled"));
    /* Reserved bits. */
    d = dom_new(f, 1, 25);
    put64(f, d.cd + 48, 1);
    attach(f, sid, &d);
    dma_event(f, sid++, 0x1000, true, SMMUV3_EVT_C_BAD_CD, rec);
    assert_int_equal(misuse(f), 2);
    /* A misaligned TTB0: the unit aligns it (misuse). */
    d = dom_new(f, 1, 25);
    put64(f, d.cd + 8, d.ttb + 0x800);
    map4k(f, &d, 0x1000, 0x81000);
    attach(f, sid, &d);
    dma_ok(f, sid, 0x1000, false, 0x81000);
    assert_int_equal(misuse(f), 3);
    assert_non_null(strstr(stats(f).last_misuse, "TTB0"));
}

static void test_bad_streamid(void **state)
{
    struct fixture *f = *state;
    uint64_t rec[4];
    dma_event(f, 0x100, 0x1000, false, SMMUV3_EVT_C_BAD_STREAMID, rec); /* table of 256 */
    assert_int_equal(M_EVT_SID(rec), 0x100);
    /* Without CR2.RECINVSID the transaction aborts silently. */
    w32(f, SMMUV3_CR2, 0);
    struct smmuv3_model_result r = dma(f, 0x100, 0x1000, false);
    assert_false(r.ok);
    assert_int_equal(r.event, SMMUV3_EVT_C_BAD_STREAMID);
    assert_false(r.recorded);
    /* QEMU ignores RECINVSID. */
    struct smmuv3_model_config q = smmuv3_model_config_qemu();
    start(f, &q);
    w32(f, SMMUV3_CR2, 0);
    dma_event(f, 0x100, 0x1000, false, SMMUV3_EVT_C_BAD_STREAMID, rec);
}

static void test_fetch_aborts(void **state)
{
    struct fixture *f = *state;
    uint64_t rec[4];
    set_ste(f, f->strtab, DEV, M_STE_S1 | (NO_MEMORY & ~0x3Full), 0);
    dma_event(f, DEV, 0x1000, false, SMMUV3_EVT_F_CD_FETCH, rec);
    assert_int_equal(rec[3], NO_MEMORY); /* FetchAddr */
    assert_int_equal(rec[2], 0);
    /* The stream table itself where there is no memory. */
    struct smmuv3_model_config c = smmuv3_model_config_spec();
    create(f, &c);
    program(f, 8, 6, 4);
    w64(f, SMMUV3_STRTAB_BASE, NO_MEMORY);
    enable(f);
    dma_event(f, 3, 0x1000, false, SMMUV3_EVT_F_STE_FETCH, rec);
    assert_int_equal(rec[3], NO_MEMORY + 3 * 64);
    /* QEMU puts the CD's address in the InputAddr field. */
    struct smmuv3_model_config q = smmuv3_model_config_qemu();
    start(f, &q);
    set_ste(f, f->strtab, DEV, M_STE_S1 | (NO_MEMORY & ~0x3Full), 0);
    dma_event(f, DEV, 0x1000, false, SMMUV3_EVT_F_CD_FETCH, rec);
    assert_int_equal(rec[2], NO_MEMORY);
}

/* A 2-level table: SPLIT 6 (64 STEs per level-2 table), 2^16 streams. */
static uint64_t two_level(struct fixture *f, const struct smmuv3_model_config *cfg)
{
    create(f, cfg);
    program(f, 0, 6, 4);
    uint64_t l1 = alloc(f, 8 << 10, 8 << 10);
    w64(f, SMMUV3_STRTAB_BASE, l1);
    w32(f, SMMUV3_STRTAB_BASE_CFG, 1u << 16 | 6u << 6 | 16);
    enable(f);
    return l1;
}

static void test_two_level(void **state)
{
    struct fixture *f = *state;
    struct smmuv3_model_config c = smmuv3_model_config_spec();
    uint64_t l1 = two_level(f, &c);
    struct dom d = dom_new(f, 1, 25);
    map4k(f, &d, 0x1000, 0x81000);
    uint64_t l2 = alloc(f, 64 * 64, 4096);
    put64(f, l1 + 0x12 * 8, l2 | 7); /* Span 7: 64 STEs, streams 0x480..0x4BF */
    set_ste(f, l2, 0x3, M_STE_S1 | d.cd, 0);
    dma_ok(f, 0x483, 0x1000, false, 0x81000);
    assert_int_equal(misuse(f), 0);
    uint64_t rec[4];
    dma_event(f, 0x4C3, 0x1000, false, SMMUV3_EVT_C_BAD_STREAMID, rec); /* L1STD 0x13: Span 0 */
    /* Span 2: two STEs; the third stream of the span is invalid. */
    uint64_t small = alloc(f, 128, 128);
    put64(f, l1 + 0x20 * 8, small | 2);
    set_ste(f, small, 1, M_STE_BYPASS, 0);
    dma_ok(f, 0x801, 0x1234, true, 0x1234);
    dma_event(f, 0x802, 0x1234, true, SMMUV3_EVT_C_BAD_STREAMID, rec);
    /* A level-2 table not aligned to its size. */
    uint64_t odd = alloc(f, 256, 64);
    if (!(odd & 0x7F))
        odd += 64;
    put64(f, l1 + 0x30 * 8, odd | 2);
    set_ste(f, odd & ~0x7Full, 0, M_STE_BYPASS, 0);
    dma_ok(f, 0xC00, 0x1000, false, 0x1000);
    assert_int_equal(misuse(f), 1);
    assert_non_null(strstr(stats(f).last_misuse, "level-2"));
    /* QEMU: Span n holds 2^n STEs and a stream past it is C_BAD_STE. */
    struct smmuv3_model_config q = smmuv3_model_config_qemu();
    l1 = two_level(f, &q);
    small = alloc(f, 256, 128);
    put64(f, l1 + 0x20 * 8, small | 2);
    set_ste(f, small, 2, M_STE_BYPASS, 0);
    dma_ok(f, 0x802, 0x1234, true, 0x1234);
    set_ste(f, small, 3, M_STE_BYPASS, 0);
    dma_ok(f, 0x803, 0x1234, true, 0x1234);
    dma_event(f, 0x804, 0x1234, true, SMMUV3_EVT_C_BAD_STE, rec);
}

static void test_l1std_cached(void **state)
{
    struct fixture *f = *state;
    struct smmuv3_model_config c = smmuv3_model_config_spec();
    uint64_t l1 = two_level(f, &c);
    uint64_t rec[4];
    dma_event(f, 0x45, 0x1000, false, SMMUV3_EVT_C_BAD_STREAMID, rec); /* caches L1STD 1 (Span 0) */
    uint64_t l2 = alloc(f, 64 * 64, 4096);
    set_ste(f, l2, 5, M_STE_BYPASS, 0);
    put64(f, l1 + 8, l2 | 7);
    cmd(f, M_CMD_CFGI_STE | M_SID(0x45), 1); /* the leaf form leaves the L1STD cached */
    sync(f);
    dma_event(f, 0x45, 0x1000, false, SMMUV3_EVT_C_BAD_STREAMID, rec);
    cmd(f, M_CMD_CFGI_STE | M_SID(0x45), 0);
    sync(f);
    dma_ok(f, 0x45, 0x1000, false, 0x1000);
    /* QEMU caches no L1STD and no failed lookup. */
    struct smmuv3_model_config q = smmuv3_model_config_qemu();
    l1 = two_level(f, &q);
    dma_event(f, 0x45, 0x1000, false, SMMUV3_EVT_C_BAD_STREAMID, rec);
    l2 = alloc(f, 64 * 64, 4096);
    set_ste(f, l2, 5, M_STE_BYPASS, 0);
    put64(f, l1 + 8, l2 | 7);
    dma_ok(f, 0x45, 0x1000, false, 0x1000);
}

static void test_strtab_format_qemu_sticky(void **state)
{
    struct fixture *f = *state;
    struct smmuv3_model_config q = smmuv3_model_config_qemu();
    two_level(f, &q);
    w32(f, SMMUV3_CR0, M_CR0_EVENTQEN | M_CR0_CMDQEN);
    uint64_t table = alloc(f, 64 << 8, 64 << 8);
    set_ste(f, table, DEV, M_STE_BYPASS, 0);
    w64(f, SMMUV3_STRTAB_BASE, table);
    w32(f, SMMUV3_STRTAB_BASE_CFG, 8); /* linear again */
    assert_int_equal(misuse(f), 1);
    w32(f, SMMUV3_CR0, M_CR0_SMMUEN | M_CR0_EVENTQEN | M_CR0_CMDQEN);
    uint64_t rec[4];
    /* QEMU reads the linear table as level-1 descriptors: DEV's "L1STD" is zero. */
    dma_event(f, DEV, 0x1000, false, SMMUV3_EVT_C_BAD_STREAMID, rec);
}

/* ---- Caches ---------------------------------------------------------------------------------- */

static void test_stale_tlb(void **state)
{
    struct fixture *f = *state;
    struct dom d = dom_new(f, 7, 25);
    attach(f, DEV, &d);
    map4k(f, &d, 0x10000, 0x90000);
    dma_ok(f, DEV, 0x10000, true, 0x90000);
    map(f, &d, 0x10000, 0, 3); /* unmapped without invalidation */
    struct smmuv3_model_result r = dma(f, DEV, 0x10040, true);
    assert_true(r.ok && r.from_cache);
    assert_int_equal(r.pa, 0x90040);
    /* The TLBI alone is not known to be complete before a M_CMD_SYNC. */
    cmd(f, M_CMD_TLBI_NH_VA | M_ASID(7), 0x10000 | 1); /* Leaf */
    assert_true(dma(f, DEV, 0x10040, true).ok);
    sync(f);
    uint64_t rec[4];
    dma_event(f, DEV, 0x10040, true, SMMUV3_EVT_F_TRANSLATION, rec);
    /* Another M_ASID's invalidation does not help. */
    map4k(f, &d, 0x11000, 0x91000);
    dma_ok(f, DEV, 0x11000, false, 0x91000);
    map4k(f, &d, 0x11000, 0x92000);
    cmd(f, M_CMD_TLBI_NH_VA | M_ASID(8), 0x11000);
    sync(f);
    dma_ok(f, DEV, 0x11000, false, 0x91000);
    cmd(f, M_CMD_TLBI_NH_ASID | M_ASID(7), 0);
    sync(f);
    dma_ok(f, DEV, 0x11000, false, 0x92000);
    /* TLBI_NH_VAA for every M_ASID, TLBI_NH_ALL and TLBI_NSNH_ALL for everything. */
    map4k(f, &d, 0x11000, 0x93000);
    cmd(f, M_CMD_TLBI_NH_VAA, 0x11000);
    sync(f);
    dma_ok(f, DEV, 0x11000, false, 0x93000);
    map4k(f, &d, 0x11000, 0x94000);
    cmd(f, M_CMD_TLBI_NH_ALL, 0);
    sync(f);
    dma_ok(f, DEV, 0x11000, false, 0x94000);
    map4k(f, &d, 0x11000, 0x95000);
    cmd(f, M_CMD_TLBI_NSNH_ALL, 0);
    sync(f);
    dma_ok(f, DEV, 0x11000, false, 0x95000);
    assert_int_equal(misuse(f), 0);
    /* QEMU completes the TLBI when it is consumed. */
    struct smmuv3_model_config q = smmuv3_model_config_qemu();
    start(f, &q);
    d = dom_new(f, 7, 25);
    attach(f, DEV, &d);
    map4k(f, &d, 0x10000, 0x90000);
    dma_ok(f, DEV, 0x10000, true, 0x90000);
    map(f, &d, 0x10000, 0, 3);
    assert_true(dma(f, DEV, 0x10000, true).from_cache);
    cmd(f, M_CMD_TLBI_NH_VA | M_ASID(7), 0x10000);
    assert_false(dma(f, DEV, 0x10000, true).ok);
}

static void test_tlbi_block_and_range(void **state)
{
    struct fixture *f = *state;
    struct dom d = dom_new(f, 7, 25);
    attach(f, DEV, &d);
    map(f, &d, 0x200000, 0x400000 | M_PTE_BLOCK | M_LEAF, 2);
    dma_ok(f, DEV, 0x3FF000, false, 0x5FF000);
    map(f, &d, 0x200000, 0x600000 | M_PTE_BLOCK | M_LEAF, 2);
    /* An address inside the block invalidates it. */
    cmd(f, M_CMD_TLBI_NH_VA | M_ASID(7), 0x3FF000);
    sync(f);
    dma_ok(f, DEV, 0x3FF000, false, 0x7FF000);
    /* Range: TG 4 KiB, NUM 3, SCALE 1: 8 pages from 0x20000. */
    for (uint64_t va = 0x1E000; va < 0x2A000; va += 0x1000)
        map4k(f, &d, va, 0x100000 + va);
    for (uint64_t va = 0x1E000; va < 0x2A000; va += 0x1000)
        dma_ok(f, DEV, va, false, 0x100000 + va);
    for (uint64_t va = 0x1E000; va < 0x2A000; va += 0x1000)
        map4k(f, &d, va, 0x200000 + va);
    cmd(f, M_CMD_TLBI_NH_VA | M_ASID(7) | 3ull << 12 | 1ull << 20, 0x20000 | 1ull << 10);
    sync(f);
    for (uint64_t va = 0x1E000; va < 0x2A000; va += 0x1000)
        dma_ok(f, DEV, va, false, (va >= 0x20000 && va < 0x28000 ? 0x200000 : 0x100000) + va);
    /* TTL 2 (level 2) leaves the level-3 entries. */
    cmd(f, M_CMD_TLBI_NH_VA | M_ASID(7), 0x28000 | 1ull << 10 | 2ull << 8);
    sync(f);
    dma_ok(f, DEV, 0x28000, false, 0x128000);
    /* TG without range or TTL is reserved: CERROR_ILL. */
    cmd(f, M_CMD_TLBI_NH_VA | M_ASID(7), 0x28000 | 1ull << 10);
    assert_int_equal(r32(f, SMMUV3_CMDQ_CONS) >> 24, 1);
    assert_int_equal(stats(f).tlbi, 4); /* with enable()'s TLBI_NSNH_ALL; not the refused one */
}

static void test_global_entries(void **state)
{
    struct fixture *f = *state;
    struct dom a = dom_new(f, 1, 25), b = dom_new(f, 2, 25);
    attach(f, DEV, &a);
    attach(f, DEV2, &b);
    map(f, &a, 0x1000, 0x81000 | M_PTE_PAGE | M_AF | M_AP_USER, 3); /* nG = 0: global */
    map4k(f, &b, 0x1000, 0x82000);
    dma_ok(f, DEV, 0x1000, true, 0x81000);
    /* The global entry matches every M_ASID: DEV2 reaches DEV's page. */
    struct smmuv3_model_result r = dma(f, DEV2, 0x1000, true);
    assert_true(r.ok && r.from_cache);
    assert_int_equal(r.pa, 0x81000);
    cmd(f, M_CMD_TLBI_NH_ASID | M_ASID(1), 0); /* not for global entries */
    sync(f);
    dma_ok(f, DEV2, 0x1000, true, 0x81000);
    cmd(f, M_CMD_TLBI_NH_VA | M_ASID(2), 0x1000); /* by VA: global entries too */
    sync(f);
    dma_ok(f, DEV2, 0x1000, true, 0x82000);
    /* QEMU tags every entry with its M_ASID. */
    struct smmuv3_model_config q = smmuv3_model_config_qemu();
    start(f, &q);
    a = dom_new(f, 1, 25);
    b = dom_new(f, 2, 25);
    attach(f, DEV, &a);
    attach(f, DEV2, &b);
    map(f, &a, 0x1000, 0x81000 | M_PTE_PAGE | M_AF | M_AP_USER, 3);
    map4k(f, &b, 0x1000, 0x82000);
    dma_ok(f, DEV, 0x1000, true, 0x81000);
    dma_ok(f, DEV2, 0x1000, true, 0x82000);
}

static void test_stale_config(void **state)
{
    struct fixture *f = *state;
    struct dom d = dom_new(f, 1, 25);
    attach(f, DEV, &d);
    map4k(f, &d, 0x1000, 0x81000);
    dma_ok(f, DEV, 0x1000, false, 0x81000);
    /* The STE changed to abort: still translating until CFGI_STE and M_CMD_SYNC. */
    set_ste(f, f->strtab, DEV, M_STE_V | M_STE_ABORT, 0);
    struct smmuv3_model_result r = dma(f, DEV, 0x1000, false);
    assert_true(r.ok && r.config_from_cache);
    cmd(f, M_CMD_CFGI_STE | M_SID(DEV), 1);
    assert_true(dma(f, DEV, 0x1000, false).ok);
    sync(f);
    assert_false(dma(f, DEV, 0x1000, false).ok);
    /* An invalid STE is cached too: made valid, it needs CFGI_STE. */
    uint64_t rec[4];
    set_ste(f, f->strtab, DEV2, 0, 0);
    dma_event(f, DEV2, 0x1000, false, SMMUV3_EVT_C_BAD_STE, rec);
    attach(f, DEV2, &d);
    dma_event(f, DEV2, 0x1000, false, SMMUV3_EVT_C_BAD_STE, rec);
    cmd(f, M_CMD_CFGI_STE | M_SID(DEV2), 1);
    sync(f);
    dma_ok(f, DEV2, 0x1000, false, 0x81000);
    /* A CD change needs CFGI_CD (or CFGI_STE, which takes the CDs along) ... */
    struct dom e = dom_new(f, 2, 25);
    map4k(f, &e, 0x1000, 0x83000);
    memcpy(f->arena + (d.cd - ARENA_BASE), f->arena + (e.cd - ARENA_BASE), 64);
    dma_ok(f, DEV2, 0x1000, false, 0x81000);
    cmd(f, M_CMD_CFGI_CD_ALL | M_SID(DEV2), 0);
    sync(f);
    dma_ok(f, DEV2, 0x1000, false, 0x83000);
    /* ... but CFGI_CD does not refresh a changed STE. */
    struct dom g = dom_new(f, 3, 25);
    map4k(f, &g, 0x1000, 0x84000);
    attach(f, DEV2, &g);
    cmd(f, M_CMD_CFGI_CD | M_SID(DEV2), 1);
    sync(f);
    dma_ok(f, DEV2, 0x1000, false, 0x83000);
    /* A range: 16 streams from 0x10 (the low bits of the M_SID ignored), not DEV2 (0x08). */
    attach(f, DEV, &g);
    cmd(f, M_CMD_CFGI_STE_RANGE | M_SID(DEV + 5), 3);
    sync(f);
    dma_ok(f, DEV, 0x1000, false, 0x84000);
    dma_ok(f, DEV2, 0x1000, false, 0x83000);
    /* CFGI_ALL covers everything. */
    cmd(f, M_CMD_CFGI_STE_RANGE, 31);
    sync(f);
    dma_ok(f, DEV2, 0x1000, false, 0x84000);
    assert_int_equal(stats(f).cfgi, 7); /* with enable()'s CFGI_ALL */
    assert_int_equal(misuse(f), 0);
}

static void test_stale_config_qemu(void **state)
{
    struct fixture *f = *state;
    struct smmuv3_model_config q = smmuv3_model_config_qemu();
    start(f, &q);
    struct dom d = dom_new(f, 1, 25);
    map4k(f, &d, 0x1000, 0x81000);
    uint64_t rec[4];
    /* An invalid STE is not cached: made valid, it works at once. */
    dma_event(f, DEV, 0x1000, false, SMMUV3_EVT_C_BAD_STE, rec);
    attach(f, DEV, &d);
    dma_ok(f, DEV, 0x1000, false, 0x81000);
    /* The valid configuration is cached: a changed STE needs invalidation ... */
    set_ste(f, f->strtab, DEV, M_STE_BYPASS, 0);
    dma_ok(f, DEV, 0x1000, false, 0x81000);
    /* ... which CFGI_CD gives, at once, in QEMU. */
    cmd(f, M_CMD_CFGI_CD | M_SID(DEV), 1);
    dma_ok(f, DEV, 0x1000, false, 0x1000);
}

static void test_prefetch_config(void **state)
{
    struct fixture *f = *state;
    set_ste(f, f->strtab, DEV, M_STE_BYPASS, 0);
    cmd(f, M_CMD_PREFETCH_CONFIG | M_SID(DEV), 0);
    sync(f);
    assert_true(cmdq_drained(f));
    assert_int_equal(stats(f).prefetch, 1);
    set_ste(f, f->strtab, DEV, M_STE_V | M_STE_ABORT, 0);
    struct smmuv3_model_result r = dma(f, DEV, 0x1000, false); /* prefetched: stale */
    assert_true(r.ok && r.config_from_cache);
}

/* ---- Command queue ------------------------------------------------------------------------- */

static void test_command_error(void **state)
{
    struct fixture *f = *state;
    struct dom d = dom_new(f, 1, 25);
    attach(f, DEV, &d);
    map4k(f, &d, 0x1000, 0x81000);
    dma_ok(f, DEV, 0x1000, false, 0x81000);
    map(f, &d, 0x1000, 0, 3);
    uint32_t before = cons_index(f);
    cmd_put(f, 0x07, 0); /* CMD_CFGI_VMS_PIDM: the unit has no MPAM */
    cmd_put(f, M_CMD_TLBI_NH_ALL, 0);
    cmd(f, M_CMD_SYNC, 0);
    assert_int_equal(cons_index(f), before); /* stopped on the bad command */
    assert_int_equal(r32(f, SMMUV3_CMDQ_CONS) >> 24, 1); /* CERROR_ILL */
    assert_int_equal(r32(f, SMMUV3_GERROR) ^ r32(f, SMMUV3_GERRORN), M_GERROR_CMDQ_ERR);
    assert_true(dma(f, DEV, 0x1000, false).ok); /* the TLBI did not run */
    /* More commands wait while the error is active. */
    cmd(f, M_CMD_SYNC, 0);
    assert_int_equal(cons_index(f), before);
    /* Software replaces the command with a M_CMD_SYNC and acknowledges. */
    put64(f, f->cmdq + (before & 63) * 16, M_CMD_SYNC);
    w32(f, SMMUV3_GERRORN, r32(f, SMMUV3_GERROR));
    assert_true(cmdq_drained(f));
    assert_false(dma(f, DEV, 0x1000, false).ok);
    assert_int_equal(stats(f).command_errors, 1);
    assert_int_equal(stats(f).gerrors, 1);
    /* An acknowledgement of an inactive error is misuse. */
    w32(f, SMMUV3_GERRORN, r32(f, SMMUV3_GERROR) ^ M_GERROR_EVENTQ_ABT);
    assert_int_equal(misuse(f), 1);
}

static void test_malformed_commands(void **state)
{
    struct fixture *f = *state;
    const uint64_t bad[][2] = {
        {M_CMD_SYNC | 3ull << 12, 0},           /* CS 0b11 reserved */
        {M_CMD_CFGI_STE | M_SID(DEV), 1ull << 8}, /* reserved bits */
        {M_CMD_CFGI_STE | 1ull << 10, 0},       /* SSec on the non-secure queue */
        {M_CMD_TLBI_EL2_ALL, 0},                /* no Hyp */
        {0x28, 0},                            /* TLBI_S12_VMALL: no stage 2 */
        {0x40, 0},                            /* ATC_INV: no ATS */
        {0x44, 0},                            /* RESUME: no stall model */
        {0x00, 0},
    };
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t at = cons_index(f);
        cmd(f, bad[i][0], bad[i][1]);
        assert_int_equal(cons_index(f), at);
        assert_int_equal(r32(f, SMMUV3_CMDQ_CONS) >> 24, 1);
        put64(f, f->cmdq + (at & 63) * 16, M_CMD_SYNC);
        put64(f, f->cmdq + (at & 63) * 16 + 8, 0);
        w32(f, SMMUV3_GERRORN, r32(f, SMMUV3_GERROR));
        assert_true(cmdq_drained(f));
    }
    assert_int_equal(stats(f).command_errors, 8);
    assert_int_equal(misuse(f), 1); /* the reserved bits */
    /* QEMU takes them all but the opcode 0 (each still misuse). */
    struct smmuv3_model_config q = smmuv3_model_config_qemu();
    start(f, &q);
    for (unsigned i = 0; i + 1 < sizeof bad / sizeof bad[0]; i++) {
        if (bad[i][0] & 1ull << 10)
            continue; /* QEMU refuses SSec too */
        cmd(f, bad[i][0], bad[i][1]);
        assert_true(cmdq_drained(f));
    }
    assert_int_equal(stats(f).command_errors, 0);
    assert_int_equal(misuse(f), 6);
}

static void test_cmd_sync_msi(void **state)
{
    struct fixture *f = *state;
    struct smmuv3_model_config c = msi_config(false);
    start(f, &c);
    uint64_t word = alloc(f, 8, 8);
    put64(f, word, 0);
    cmd(f, M_CMD_SYNC | M_CS_IRQ | 0x1234ABCDull << 32, word);
    assert_int_equal(get64(f, word), 0x1234ABCD); /* the driver polls this word */
    assert_int_equal(stats(f).msis, 1);
    /* SIG_NONE and SIG_SEV write nothing. */
    put64(f, word, 0);
    cmd(f, M_CMD_SYNC | 0x55ull << 32, word);
    cmd(f, M_CMD_SYNC | 2ull << 12 | 0x55ull << 32, word);
    assert_int_equal(get64(f, word), 0);
    /* An MSI to a doorbell (not memory) goes to the interrupt controller. */
    cmd(f, M_CMD_SYNC | M_CS_IRQ | 0x77ull << 32, DOORBELL);
    assert_int_equal(f->msis, 1);
    assert_int_equal(f->msi_addr, DOORBELL);
    assert_int_equal(f->msi_data, 0x77);
    assert_int_equal(stats(f).syncs, 5);
    /* QEMU 7.2 has no MSIs: SIG_IRQ raises the wired M_CMD_SYNC interrupt only. */
    struct smmuv3_model_config q = smmuv3_model_config_qemu();
    start(f, &q);
    word = alloc(f, 8, 8);
    unsigned wired = stats(f).wired_irqs;
    cmd(f, M_CMD_SYNC | M_CS_IRQ | 0x1234ABCDull << 32, word);
    assert_int_equal(get64(f, word), 0);
    assert_int_equal(stats(f).wired_irqs, wired + 1);
    assert_int_equal(stats(f).msis, 0);
}

static void test_queue_wrap(void **state)
{
    struct fixture *f = *state;
    /* 200 commands through a 64-entry queue: PROD and CONS wrap three times. */
    for (unsigned i = 0; i < 200; i++) {
        sync(f);
        assert_true(cmdq_drained(f));
    }
    assert_int_equal(cons_index(f), (3 + 200) % 128);
    assert_int_equal(stats(f).syncs, 201);
    /* A PROD more than a queue ahead of CONS is misuse. */
    smmuv3_model_stall_commands(f->m, true);
    w32(f, SMMUV3_CMDQ_PROD, (cons_index(f) + 65) & 127);
    assert_int_equal(misuse(f), 1);
    assert_non_null(strstr(stats(f).last_misuse, "beyond the queue"));
}

static void test_stall(void **state)
{
    struct fixture *f = *state;
    struct dom d = dom_new(f, 1, 25);
    attach(f, DEV, &d);
    map4k(f, &d, 0x1000, 0x81000);
    dma_ok(f, DEV, 0x1000, false, 0x81000);
    map(f, &d, 0x1000, 0, 3);
    smmuv3_model_stall_commands(f->m, true);
    uint32_t at = cons_index(f);
    cmd(f, M_CMD_TLBI_NH_ASID | M_ASID(1), 0);
    sync(f);
    for (unsigned i = 0; i < 100; i++) /* a driver's bounded poll */
        assert_int_equal(cons_index(f), at);
    assert_true(dma(f, DEV, 0x1000, false).ok);
    smmuv3_model_stall_commands(f->m, false);
    assert_true(cmdq_drained(f));
    assert_false(dma(f, DEV, 0x1000, false).ok);
}

/* ---- Event queue ----------------------------------------------------------------------------- */

static void test_event_overflow(void **state)
{
    struct fixture *f = *state;
    struct smmuv3_model_config c = smmuv3_model_config_spec();
    create(f, &c);
    program(f, 8, 6, 2); /* 4 events */
    enable(f);
    struct dom d = dom_new(f, 1, 25);
    attach(f, DEV, &d);
    for (unsigned i = 0; i < 6; i++)
        assert_int_equal(dma(f, DEV, 0x1000 * i, false).recorded, i < 4);
    assert_int_equal(stats(f).events_written, 4);
    assert_int_equal(stats(f).events_lost, 2);
    uint32_t prod = r32(f, SMMUV3_EVENTQ_PROD);
    assert_int_equal(prod & M_OVF, M_OVF); /* toggled once */
    assert_int_equal(prod & 7, 4);
    assert_int_equal(r32(f, SMMUV3_GERROR), 0);
    uint64_t rec[4];
    assert_true(next_event(f, rec));
    assert_int_equal(rec[2], 0);
    /* Acknowledge the overflow while consuming; a later overflow toggles again. */
    f->evcons |= M_OVF;
    w32(f, SMMUV3_EVENTQ_CONS, f->evcons);
    assert_true(dma(f, DEV, 0x9000, false).recorded);
    assert_false(dma(f, DEV, 0xA000, false).recorded);
    assert_int_equal(r32(f, SMMUV3_EVENTQ_PROD) & M_OVF, 0);
    /* QEMU: a full queue raises GERROR.EVENTQ_ABT_ERR instead, never OVFLG. */
    struct smmuv3_model_config q = smmuv3_model_config_qemu();
    create(f, &q);
    program(f, 8, 6, 2);
    enable(f);
    d = dom_new(f, 1, 25);
    attach(f, DEV, &d);
    for (unsigned i = 0; i < 6; i++)
        dma(f, DEV, 0x1000 * i, false);
    assert_int_equal(r32(f, SMMUV3_EVENTQ_PROD) & M_OVF, 0);
    assert_int_equal(r32(f, SMMUV3_GERROR), M_GERROR_EVENTQ_ABT);
    assert_int_equal(stats(f).events_lost, 2);
}

static void test_event_queue_disabled(void **state)
{
    struct fixture *f = *state;
    w32(f, SMMUV3_CR0, M_CR0_SMMUEN | M_CR0_CMDQEN);
    struct dom d = dom_new(f, 1, 25);
    attach(f, DEV, &d);
    struct smmuv3_model_result r = dma(f, DEV, 0x1000, false);
    assert_false(r.ok);
    assert_false(r.recorded);
    assert_int_equal(stats(f).events_discarded, 1);
    assert_int_equal(r32(f, SMMUV3_EVENTQ_PROD), 0);
}

static void test_event_interrupts(void **state)
{
    struct fixture *f = *state;
    struct smmuv3_model_config c = msi_config(false);
    start(f, &c);
    struct dom d = dom_new(f, 1, 25);
    attach(f, DEV, &d);
    w64(f, SMMUV3_EVENTQ_IRQ_CFG0, DOORBELL);
    w32(f, SMMUV3_EVENTQ_IRQ_CFG1, 0x99);
    w64(f, SMMUV3_GERROR_IRQ_CFG0, DOORBELL + 4);
    w32(f, SMMUV3_GERROR_IRQ_CFG1, 0x98);
    w32(f, SMMUV3_IRQ_CTRL, 5);
    assert_int_equal(r32(f, SMMUV3_IRQ_CTRLACK), 5);
    dma(f, DEV, 0x1000, false);
    assert_int_equal(f->msis, 1);
    assert_int_equal(f->msi_data, 0x99);
    dma(f, DEV, 0x2000, false); /* the queue was not empty: no new interrupt */
    assert_int_equal(f->msis, 1);
    uint64_t rec[4];
    while (next_event(f, rec))
        ;
    dma(f, DEV, 0x3000, false);
    assert_int_equal(f->msis, 2);
    /* A command error raises the GERROR interrupt. */
    cmd(f, 0x00, 0);
    assert_int_equal(f->msis, 3);
    assert_int_equal(f->msi_addr, DOORBELL + 4);
    assert_int_equal(f->msi_data, 0x98);
    /* The MSI configuration is guarded by its enable. */
    w64(f, SMMUV3_EVENTQ_IRQ_CFG0, 0);
    assert_int_equal(misuse(f), 1);
    assert_int_equal(smmuv3_model_read64(f->m, SMMUV3_EVENTQ_IRQ_CFG0), DOORBELL);
    /* QEMU (no MSIs) raises the wired interrupt for every record. */
    struct smmuv3_model_config q = smmuv3_model_config_qemu();
    start(f, &q);
    d = dom_new(f, 1, 25);
    attach(f, DEV, &d);
    w32(f, SMMUV3_IRQ_CTRL, 4);
    unsigned wired = stats(f).wired_irqs;
    dma(f, DEV, 0x1000, false);
    dma(f, DEV, 0x2000, false);
    assert_int_equal(stats(f).wired_irqs, wired + 2);
}

/* ---- Misuse ------------------------------------------------------------------------------------- */

static void test_alignment_misuse(void **state)
{
    struct fixture *f = *state;
    struct smmuv3_model_config c = smmuv3_model_config_spec();
    create(f, &c);
    /* A 256-STE table (16 KiB) at a 4 KiB boundary: the unit uses the 16 KiB boundary below. */
    uint64_t table = alloc(f, 32 << 10, 16 << 10) + 0x1000;
    program(f, 8, 6, 4);
    w64(f, SMMUV3_STRTAB_BASE, table);
    set_ste(f, table, 1, M_STE_BYPASS, 0);
    set_ste(f, table - 0x1000, 1, M_STE_V | M_STE_ABORT, 0);
    enable(f);
    assert_int_equal(misuse(f), 1);
    assert_non_null(strstr(stats(f).last_misuse, "STRTAB_BASE"));
    assert_false(dma(f, 1, 0x1000, false).ok); /* read from the aligned address */
    /* Queues: the unit reads and writes them at the aligned base (QEMU as written). */
    for (unsigned qemu = 0; qemu < 2; qemu++) {
        struct smmuv3_model_config qc = qemu ? smmuv3_model_config_qemu() : c;
        create(f, &qc);
        program(f, 8, 6, 4);
        enable(f);
        w32(f, SMMUV3_CR0, M_CR0_SMMUEN);
        w64(f, SMMUV3_CMDQ_BASE, (f->cmdq + 0x200) | 6);
        w64(f, SMMUV3_EVENTQ_BASE, (f->eventq + 0x100) | 4);
        w32(f, SMMUV3_CMDQ_PROD, 0);
        w32(f, SMMUV3_CMDQ_CONS, 0);
        w32(f, SMMUV3_CR0, M_CR0_SMMUEN | M_CR0_CMDQEN | M_CR0_EVENTQEN);
        assert_int_equal(misuse(f), 2);
        put64(f, f->cmdq, M_CMD_SYNC);
        put64(f, f->cmdq + 0x200, 0x00); /* an illegal command where the driver thinks its queue is */
        w32(f, SMMUV3_CMDQ_PROD, 1);
        assert_int_equal(r32(f, SMMUV3_CMDQ_CONS), qemu ? 1u << 24 : 1);
        dma(f, 0x100, 0, false); /* C_BAD_STREAMID */
        assert_int_equal(get64(f, (qemu ? f->eventq + 0x100 : f->eventq)) & 0xFF, 2);
    }
}

static void test_guarded_writes(void **state)
{
    struct fixture *f = *state;
    uint64_t base = smmuv3_model_read64(f->m, SMMUV3_STRTAB_BASE);
    w64(f, SMMUV3_STRTAB_BASE, base + 0x10000);
    w32(f, SMMUV3_STRTAB_BASE_CFG, 4);
    w64(f, SMMUV3_CMDQ_BASE, 0);
    w32(f, SMMUV3_CMDQ_CONS, 0);
    w64(f, SMMUV3_EVENTQ_BASE, 0);
    w32(f, SMMUV3_EVENTQ_PROD, 3);
    assert_int_equal(misuse(f), 6);
    assert_int_equal(smmuv3_model_read64(f->m, SMMUV3_STRTAB_BASE), base);
    assert_int_equal(r32(f, SMMUV3_STRTAB_BASE_CFG), 8);
    assert_int_equal(r32(f, SMMUV3_EVENTQ_PROD), 0);
    sync(f);
    assert_true(cmdq_drained(f)); /* the queue still works */
    /* Disabled, they take the writes. */
    w32(f, SMMUV3_CR0, 0);
    w64(f, SMMUV3_STRTAB_BASE, base + 0x10000);
    assert_int_equal(smmuv3_model_read64(f->m, SMMUV3_STRTAB_BASE), base + 0x10000);
    assert_int_equal(misuse(f), 6);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_qemu_id_registers),
        T(test_create_refuses),
        T(test_access_widths),
        T(test_page_alias_qemu),
        T(test_gbpa),
        T(test_cr0ack_delay),
        T(test_enable_without_invalidation),
        T(test_translate_sizes),
        T(test_translate_48bit),
        T(test_translate_ttb1),
        T(test_bypass_and_abort),
        T(test_fault_translation_record),
        T(test_fault_permission),
        T(test_permission_qemu),
        T(test_fault_access_flag),
        T(test_fault_address_size),
        T(test_level0_block),
        T(test_record_suppressed),
        T(test_privileged_streams),
        T(test_bad_ste),
        T(test_bad_ste_qemu),
        T(test_bad_cd),
        T(test_bad_streamid),
        T(test_fetch_aborts),
        T(test_two_level),
        T(test_l1std_cached),
        T(test_strtab_format_qemu_sticky),
        T(test_stale_tlb),
        T(test_tlbi_block_and_range),
        T(test_global_entries),
        T(test_stale_config),
        T(test_stale_config_qemu),
        T(test_prefetch_config),
        T(test_command_error),
        T(test_malformed_commands),
        T(test_cmd_sync_msi),
        T(test_queue_wrap),
        T(test_stall),
        T(test_event_overflow),
        T(test_event_queue_disabled),
        T(test_event_interrupts),
        T(test_alignment_misuse),
        T(test_guarded_writes),
    };
#undef T
    return cmocka_run_group_tests_name("smmuv3_model", tests, NULL, NULL);
}
