/* iommu-bench: the page-table engine and the logical address allocator, measured against
 * the physical limit of the same work on the same memory.
 *
 * For each case it prints
 *   BENCH case=NAME pages=N ns_per_page=X limit_ns_per_page=Y ratio=X/Y table_pages=T invalidations=I
 * X is the median over repeated samples of the operation's time per 4 KiB page. Y is measured
 * in the same run: the time to store the same number of 8-byte entries, at the very
 * addresses the operation writes, into tables that already exist (a map stores each leaf, an
 * unmap clears it). T is the domain's table pages while the mapping exists; I the IOTLB
 * invalidations per unmap, issued through the real VT-d driver on a unit whose registers
 * complete at once.
 *
 * The cases named *_noncoherent run the same work on a domain whose unit does not snoop table
 * walks (ECAP.C = 0): every line the engine writes back goes through a hook that does what
 * the loader's does (CLWB per line where the CPU has it, else CLFLUSHOPT, else CLFLUSH; then
 * one fence: boot/loader/uefi_platform.c), and the line also prints
 *   lines_written_back=W lines_changed=C coherent_ratio=R
 * W: lines written back per operation; C: 64-byte lines of table memory whose contents the
 * operation changed (measured by comparing the pool before and after a few operations); R:
 * X over the X of the coherent case of the same name in this run.
 *
 * The cases named *_arm run the same work on the same kind of domain in Arm's stage-1
 * format (pt_arm_stage1) instead of VT-d's: what the format costs the engine. Their
 * invalidations go through the same VT-d driver, so that cost is the same on both sides.
 * See docs/benchmark.md. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "iommu/iova.h"
#include "iommu/prng.h"
#include "iommu/slpt.h"
#include "iommu/vtd.h"

#define POOL_BYTES (160u << 20)
#define SAMPLES 15

static uint64_t now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void)
{
    return prng_next(&rng);
}

/* ---- a VT-d unit whose invalidations complete at once ---- */

static uint32_t unit_read32(void *ctx, uint64_t pa) { (void)ctx; (void)pa; return 0; }
static uint64_t unit_read64(void *ctx, uint64_t pa)
{
    (void)ctx;
    switch (pa & 0xfff) {
    case 0x08: return 0x00D2008C22260206ull; /* QEMU's CAP: PSI, MAMV 18, 2M and 1G pages */
    case 0x10: return 0xF00F48ull;           /* its ECAP without queued invalidation */
    default: return 0;                       /* busy bits read as done */
    }
}
static void unit_write32(void *ctx, uint64_t pa, uint32_t v) { (void)ctx; (void)pa; (void)v; }
static void unit_write64(void *ctx, uint64_t pa, uint64_t v) { (void)ctx; (void)pa; (void)v; }
static uint64_t unit_now(void *ctx) { (void)ctx; return now(); }

static struct page_pool pool;
static struct vtd_unit unit;

/* ---- the write-back of a unit that does not snoop table walks ---- */

#define LINE 64u
static uint64_t lines_written;

/* The write-back instruction the loader would pick on this CPU (boot/loader/uefi_platform.c). */
enum write_back_insn { WB_CLFLUSH, WB_CLFLUSHOPT, WB_CLWB };
static enum write_back_insn wb_insn = WB_CLFLUSH;
static const char *const wb_names[] = {"clflush+mfence", "clflushopt+sfence", "clwb+sfence"};

static void pick_write_back(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d))
        wb_insn = b >> 24 & 1 ? WB_CLWB : b >> 23 & 1 ? WB_CLFLUSHOPT : WB_CLFLUSH;
#endif
}

static void fence(void)
{
#if defined(__x86_64__) || defined(__i386__)
    if (wb_insn == WB_CLFLUSH)
        __asm__ volatile("mfence" : : : "memory");
    else
        __asm__ volatile("sfence" : : : "memory");
#endif
}

static void flush_line(uintptr_t p)
{
#if defined(__x86_64__) || defined(__i386__)
    if (wb_insn == WB_CLWB)
        __asm__ volatile("clwb (%0)" : : "r"(p) : "memory");
    else if (wb_insn == WB_CLFLUSHOPT)
        __asm__ volatile("clflushopt (%0)" : : "r"(p) : "memory");
    else
        __asm__ volatile("clflush (%0)" : : "r"(p) : "memory");
#else
    (void)p;
#endif
}

/* The engine's sync: starts the write-back of every line the range touches; wait_back
 * (its sync_wait) waits for them. */
static void write_back(void *ctx, const void *va, size_t len)
{
    (void)ctx;
    uintptr_t p = (uintptr_t)va & ~(uintptr_t)(LINE - 1), end = (uintptr_t)va + len;
    for (; p < end; p += LINE) {
        flush_line(p);
        lines_written++;
    }
}

static void wait_back(void *ctx)
{
    (void)ctx;
    fence();
}

/* A sync that completes each write-back itself, as the loader's does (boot/loader/remap_setup.c): one
 * fence per call, no sync_wait. */
static void write_back_fenced(void *ctx, const void *va, size_t len)
{
    write_back(ctx, va, len);
    fence();
}

/* Lines of table memory an operation changes: the pool's pages (metadata left out) before
 * and after. The pool hands out its lowest pages first and reuses the last freed, so every
 * page ever used lies below first_usable + high_water; 'extra' pages past that are compared
 * too, for what the operation may take. */
static uint8_t *snapshot_mem;
static size_t snapshot_bytes;

static void snapshot(uint32_t extra)
{
    uint64_t pages = (uint64_t)pool.first_usable + pool.high_water + extra;
    if (pages > pool.pages)
        pages = pool.pages;
    snapshot_bytes = (size_t)(pages - pool.first_usable) * PAGE_SIZE;
    memcpy(snapshot_mem, pool.base_va + (size_t)pool.first_usable * PAGE_SIZE, snapshot_bytes);
}

static uint64_t changed_lines(void)
{
    const uint8_t *now_mem = pool.base_va + (size_t)pool.first_usable * PAGE_SIZE;
    uint64_t n = 0;
    for (size_t off = 0; off < snapshot_bytes; off += LINE)
        n += memcmp(now_mem + off, snapshot_mem + off, LINE) != 0;
    return n;
}

static uint64_t invalidations(void)
{
    return unit.stats.iotlb_page + unit.stats.iotlb_domain + unit.stats.iotlb_global;
}

/* Unmaps and invalidates, as a domain does. */
static void unmap_flush(struct slpt *t, uint64_t iova, uint64_t size)
{
    struct slpt_unmapped u;
    if (slpt_unmap(t, iova, size, &u) != IOMMU_OK) {
        fprintf(stderr, "iommu-bench: unmap failed\n");
        exit(1);
    }
    if (u.bytes)
        vtd_flush_range(&unit, 1, u.first, u.last);
}

static void must(enum iommu_status s, const char *what)
{
    if (s != IOMMU_OK) {
        fprintf(stderr, "iommu-bench: %s: %s\n", what, iommu_status_name(s));
        exit(1);
    }
}

/* ---- the limit: storing and clearing the same entries ---- */

static uint64_t **entries;
static size_t n_entries;

/* The entries grouped into runs that are consecutive in memory (one run per table, or less),
 * so the limit is plain sequential stores, as cheap as storing can be. */
struct run {
    uint64_t *first;
    size_t count;
};
static struct run *runs;
static size_t n_runs;

/* Records the leaf entries of [iova, iova + size) while they are mapped. */
static void collect_entries(const struct slpt *t, uint64_t iova, uint64_t size)
{
    n_entries = 0;
    for (uint64_t a = iova; a < iova + size;) {
        uint64_t leaf = PAGE_SIZE;
        uint64_t *e = slpt_leaf_entry(t, a);
        if (e) {
            slpt_lookup(t, a, NULL, NULL, &leaf);
            entries[n_entries++] = e;
        }
        a += leaf;
    }
}

static void make_runs(void)
{
    n_runs = 0;
    for (size_t i = 0; i < n_entries; i++) {
        if (n_runs && runs[n_runs - 1].first + runs[n_runs - 1].count == entries[i])
            runs[n_runs - 1].count++;
        else
            runs[n_runs++] = (struct run){entries[i], 1};
    }
}

/* 'reps' times one store and one clear per entry, as a map and an unmap do; returns ns. */
static double limit_passes(int reps)
{
    uint64_t value = 0x80000000ull | SLPTE_R | SLPTE_W;
    uint64_t t0 = now();
    for (int r = 0; r < reps; r++) {
        for (size_t k = 0; k < n_runs; k++)
            for (size_t i = 0; i < runs[k].count; i++)
                runs[k].first[i] = value + (i << 12);
        __asm__ volatile("" ::: "memory");
        for (size_t k = 0; k < n_runs; k++)
            for (size_t i = 0; i < runs[k].count; i++)
                runs[k].first[i] = 0;
        __asm__ volatile("" ::: "memory");
    }
    return (double)(now() - t0);
}

/* As limit_passes, and each pass's lines written back with one fence after the stores and
 * one after the clears: the least a map and an unmap on a unit that does not snoop must do. */
static double limit_passes_written_back(int reps)
{
    uint64_t value = 0x80000000ull | SLPTE_R | SLPTE_W;
    uint64_t t0 = now();
    for (int r = 0; r < reps; r++) {
        for (int clear = 0; clear <= 1; clear++) {
            for (size_t k = 0; k < n_runs; k++) {
                for (size_t i = 0; i < runs[k].count; i++)
                    runs[k].first[i] = clear ? 0 : value + (i << 12);
                uintptr_t p = (uintptr_t)runs[k].first & ~(uintptr_t)(LINE - 1);
                for (; p < (uintptr_t)(runs[k].first + runs[k].count); p += LINE)
                    flush_line(p);
            }
            fence();
        }
    }
    return (double)(now() - t0);
}

struct result {
    const char *name;
    uint64_t pages;
    double ns, limit_ns; /* per operation */
    uint32_t table_pages;
    double invalidations;
    bool noncoherent;
    double lines_written, lines_changed; /* per operation, non-coherent cases */
    double writeback_limit_ns;
};

/* The coherent cases' X, by name, for the non-coherent cases' coherent_ratio. */
static struct {
    char name[32];
    double ns_per_page;
} coherent[16];
static unsigned n_coherent;

static void print(const struct result *r)
{
    double x = r->ns / (double)r->pages, y = r->limit_ns / (double)r->pages;
    printf("BENCH case=%s pages=%lu ns_per_page=%.4g limit_ns_per_page=%.4g ratio=%.2f table_pages=%u "
           "invalidations=%.2f",
           r->name, (unsigned long)r->pages, x, y, x / y, r->table_pages, r->invalidations);
    if (!r->noncoherent) {
        if (n_coherent < sizeof coherent / sizeof coherent[0]) {
            snprintf(coherent[n_coherent].name, sizeof coherent[0].name, "%s_noncoherent", r->name);
            /* matches its _noncoherent and _noncoherent_fenced forms */
            coherent[n_coherent++].ns_per_page = x;
        }
    } else {
        printf(" lines_written_back=%.2f lines_changed=%.2f writeback_limit_ns_per_page=%.4g write_back=%s",
               r->lines_written, r->lines_changed, r->writeback_limit_ns / (double)r->pages, wb_names[wb_insn]);
        for (unsigned i = 0; i < n_coherent; i++)
            if (!strncmp(coherent[i].name, r->name, strlen(coherent[i].name)))
                printf(" coherent_ratio=%.2f", x / coherent[i].ns_per_page);
    }
    printf("\n");
    fflush(stdout);
}

/* Lines changed per map-then-unmap of [iova, iova + size), over 'ops' of them. */
static double lines_changed_per_op(struct slpt *t, const uint64_t *iovas, uint64_t pa, uint64_t size, int ops,
                                   uint32_t extra)
{
    uint64_t n = 0;
    for (int i = 0; i < ops; i++) {
        snapshot(extra);
        slpt_map(t, iovas[i], pa, size, SLPT_READ | SLPT_WRITE);
        n += changed_lines();
        snapshot(extra);
        unmap_flush(t, iovas[i], size);
        n += changed_lines();
    }
    return (double)n / ops;
}

/* Measures the limit for the entries of a mapping that is in place, leaving it in place;
 * with wb, also the limit with the write-back (into *wb). */
static double measure_limit_wb(int reps, double *wb)
{
    /* The entries hold the mapping: save and restore them around the passes. */
    uint64_t *saved = malloc(n_entries * sizeof *saved);
    for (size_t i = 0; i < n_entries; i++)
        saved[i] = *entries[i];
    make_runs();
    double s[SAMPLES];
    if (wb) {
        for (int k = 0; k < SAMPLES; k++)
            s[k] = limit_passes_written_back(reps) / reps;
        *wb = median(s, SAMPLES);
    }
    for (int k = 0; k < SAMPLES; k++)
        s[k] = limit_passes(reps) / reps;
    for (size_t i = 0; i < n_entries; i++)
        *entries[i] = saved[i];
    free(saved);
    return median(s, SAMPLES);
}


/* map_then_unmap cases over one fixed range */
static void bench_range(const char *name, struct slpt *t, uint64_t iova, uint64_t pa, uint64_t size, int reps)
{
    struct result r = {.name = name, .pages = size >> PAGE_SHIFT, .noncoherent = t->sync != NULL};
    must(slpt_map(t, iova, pa, size, SLPT_READ | SLPT_WRITE), name);
    r.table_pages = t->table_pages;
    collect_entries(t, iova, size);
    r.limit_ns = measure_limit_wb(reps, r.noncoherent ? &r.writeback_limit_ns : NULL);
    unmap_flush(t, iova, size);
    slpt_map(t, iova, pa, size, SLPT_READ | SLPT_WRITE); /* warm-up, untimed */
    unmap_flush(t, iova, size);
    if (r.noncoherent)
        r.lines_changed = lines_changed_per_op(t, &iova, pa, size, 1, (uint32_t)(size >> 21) + 8);
    uint64_t inv0 = invalidations(), unmaps = 0, lines0 = lines_written;
    double s[SAMPLES];
    for (int k = 0; k < SAMPLES; k++) {
        uint64_t t0 = now();
        for (int i = 0; i < reps; i++) {
            slpt_map(t, iova, pa, size, SLPT_READ | SLPT_WRITE);
            unmap_flush(t, iova, size);
        }
        s[k] = (double)(now() - t0) / reps;
        unmaps += (uint64_t)reps;
    }
    r.ns = median(s, SAMPLES);
    r.invalidations = (double)(invalidations() - inv0) / (double)unmaps;
    r.lines_written = (double)(lines_written - lines0) / (double)unmaps;
    print(&r);
}

/* The range cases run in [2 GiB, 16 GiB); the domain's other mappings stay out of it. */
#define RANGE_AREA_START (2ull << 30)
#define RANGE_AREA_END (16ull << 30)

/* A domain holding 10,000 single-page mappings at random IOVAs below 2^38, outside the
 * area the range cases use. */
static void populate(struct slpt *t, uint64_t *used_iova, unsigned n)
{
    for (unsigned i = 0; i < n;) {
        uint64_t iova = (rnd() % ((1ull << 38) >> PAGE_SHIFT)) << PAGE_SHIFT;
        if (iova >= RANGE_AREA_START && iova < RANGE_AREA_END)
            continue;
        if (slpt_map(t, iova, (rnd() % (1u << 24)) << PAGE_SHIFT, PAGE_SIZE, SLPT_READ) == IOMMU_OK)
            used_iova[i++] = iova;
    }
}

static void bench_map_4k(struct slpt *t, const char *name)
{
    enum { reps = 2000 };
    struct result r = {.name = name, .pages = 1, .noncoherent = t->sync != NULL};
    static uint64_t iovas[reps];
    for (int i = 0; i < reps; i++) /* above the populated half: never taken */
        iovas[i] = (1ull << 38) + ((rnd() % ((1ull << 38) >> PAGE_SHIFT)) << PAGE_SHIFT);
    must(slpt_map(t, iovas[0], 0x1000, PAGE_SIZE, SLPT_READ), "map_4k");
    r.table_pages = t->table_pages;
    collect_entries(t, iovas[0], PAGE_SIZE);
    r.limit_ns = measure_limit_wb(reps, r.noncoherent ? &r.writeback_limit_ns : NULL);
    unmap_flush(t, iovas[0], PAGE_SIZE);
    if (r.noncoherent)
        r.lines_changed = lines_changed_per_op(t, iovas, 0x1000, PAGE_SIZE, 8, 8);
    uint64_t inv0 = invalidations(), lines0 = lines_written;
    double s[SAMPLES];
    for (int k = 0; k < SAMPLES; k++) {
        uint64_t t0 = now();
        for (int i = 0; i < reps; i++) {
            slpt_map(t, iovas[i], 0x1000, PAGE_SIZE, SLPT_READ | SLPT_WRITE);
            unmap_flush(t, iovas[i], PAGE_SIZE);
        }
        s[k] = (double)(now() - t0) / reps;
    }
    r.ns = median(s, SAMPLES);
    r.invalidations = (double)(invalidations() - inv0) / (double)(SAMPLES * reps);
    r.lines_written = (double)(lines_written - lines0) / (double)(SAMPLES * reps);
    print(&r);
}

static void bench_scattered(struct slpt *t, const char *name)
{
    const uint64_t count = 262144, iova = 4ull << 30;
    uint64_t *frames = malloc(count * sizeof *frames);
    for (uint64_t i = 0; i < count; i++) /* no two neighbours contiguous */
        frames[i] = (rnd() % (1u << 26)) * 2 + 1;
    struct result r = {.name = name, .pages = count,
                       .noncoherent = t->sync != NULL};
    must(slpt_map_frames(t, iova, frames, count, SLPT_READ | SLPT_WRITE), r.name);
    r.table_pages = t->table_pages;
    collect_entries(t, iova, count << PAGE_SHIFT);
    r.limit_ns = measure_limit_wb(3, r.noncoherent ? &r.writeback_limit_ns : NULL);
    unmap_flush(t, iova, count << PAGE_SHIFT);
    slpt_map_frames(t, iova, frames, count, SLPT_READ | SLPT_WRITE); /* warm-up, untimed */
    unmap_flush(t, iova, count << PAGE_SHIFT);
    if (r.noncoherent) {
        snapshot(1024);
        slpt_map_frames(t, iova, frames, count, SLPT_READ | SLPT_WRITE);
        r.lines_changed = (double)changed_lines();
        snapshot(1024);
        unmap_flush(t, iova, count << PAGE_SHIFT);
        r.lines_changed += (double)changed_lines();
    }
    uint64_t inv0 = invalidations(), lines0 = lines_written;
    double s[SAMPLES];
    for (int k = 0; k < SAMPLES; k++) {
        uint64_t t0 = now();
        slpt_map_frames(t, iova, frames, count, SLPT_READ | SLPT_WRITE);
        unmap_flush(t, iova, count << PAGE_SHIFT);
        s[k] = (double)(now() - t0);
    }
    r.ns = median(s, SAMPLES);
    r.invalidations = (double)(invalidations() - inv0) / SAMPLES;
    r.lines_written = (double)(lines_written - lines0) / SAMPLES;
    free(frames);
    print(&r);
}

static void bench_split(struct slpt *t, const char *name)
{
    /* 256 2 MiB leaves; each repetition cuts one 4 KiB page out of a different one. */
    const uint64_t base = 8ull << 30, leaves = 256;
    struct result r = {.name = name, .pages = 1,
                       .noncoherent = t->sync != NULL};
    must(slpt_map(t, base, 0x40000000, leaves << 21, SLPT_READ | SLPT_WRITE), r.name);
    /* The split writes the 512 entries of the new table and clears one of them. */
    must(slpt_unmap(t, base + 0x1000, PAGE_SIZE, NULL), r.name);
    r.table_pages = t->table_pages;
    collect_entries(t, base, 2ull << 20);
    double wb = 0;
    r.limit_ns = measure_limit_wb(200, r.noncoherent ? &wb : NULL) * 513.0 / (2.0 * (double)n_entries);
    /* the split writes back the 512 entries (64 lines) and then the cleared one */
    r.writeback_limit_ns = wb * 65.0 / (2.0 * ((double)n_entries + 7) / 8);    unmap_flush(t, base, leaves << 21);
    if (r.noncoherent) {
        must(slpt_map(t, base, 0x40000000, leaves << 21, SLPT_READ | SLPT_WRITE), r.name);
        for (uint64_t i = 0; i < 8; i++) {
            snapshot(8);
            unmap_flush(t, base + (i << 21) + 0x5000, PAGE_SIZE);
            r.lines_changed += (double)changed_lines() / 8;
        }
        unmap_flush(t, base, leaves << 21);
    }
    uint64_t inv0 = invalidations(), lines_split = 0;
    double s[SAMPLES];
    for (int k = 0; k < SAMPLES; k++) {
        must(slpt_map(t, base, 0x40000000, leaves << 21, SLPT_READ | SLPT_WRITE), r.name);
        uint64_t t0 = now(), lines0 = lines_written;
        for (uint64_t i = 0; i < leaves; i++)
            unmap_flush(t, base + (i << 21) + 0x5000, PAGE_SIZE);
        s[k] = (double)(now() - t0) / (double)leaves;
        lines_split += lines_written - lines0;
        unmap_flush(t, base, leaves << 21);
    }
    r.ns = median(s, SAMPLES);
    r.invalidations = (double)(invalidations() - inv0 - SAMPLES) / (double)(SAMPLES * leaves);
    r.lines_written = (double)lines_split / (double)(SAMPLES * leaves);
    print(&r);
}

static void bench_iova(void)
{
    const unsigned live = 1024, pairs = 200000, nodes = 1u << 16;
    struct iova_node *node_mem = malloc(nodes * sizeof *node_mem);
    struct iova_allocator a;
    if (!iova_init(&a, 39, node_mem, nodes * sizeof *node_mem))
        exit(1);
    uint64_t *addr = malloc(live * sizeof *addr), *size = malloc(live * sizeof *size);
    uint64_t *sizes = malloc(pairs * sizeof *sizes);
    unsigned *victim = malloc(pairs * sizeof *victim);
    for (unsigned i = 0; i < pairs; i++) {
        sizes[i] = (1 + rnd() % 256) << PAGE_SHIFT; /* 4 KiB to 1 MiB */
        victim[i] = (unsigned)(rnd() % live);
    }
    for (unsigned i = 0; i < live; i++) {
        size[i] = sizes[i];
        must(iova_alloc(&a, size[i], 0, UINT64_MAX, &addr[i]), "iova_alloc");
    }
    double s[SAMPLES];
    for (int k = 0; k < SAMPLES; k++) {
        uint64_t t0 = now();
        for (unsigned i = 0; i < pairs; i++) {
            unsigned v = victim[i];
            iova_free(&a, addr[v], size[v]);
            size[v] = sizes[i];
            iova_alloc(&a, size[v], 0, UINT64_MAX, &addr[v]);
        }
        s[k] = (double)(now() - t0) / pairs;
    }
    double ns = median(s, SAMPLES);
    printf("BENCH case=iova_alloc pages=%u ns_per_page=%.3f limit_ns_per_page=n/a ratio=n/a table_pages=0 "
           "invalidations=0 pairs_per_second=%.0f live_blocks=%u\n", pairs, ns, 1e9 / ns, live);
    free(node_mem);
    free(addr);
    free(size);
    free(sizes);
    free(victim);
}

/* The domain a set of cases runs on: VT-d's format on a unit that snoops table walks or
 * on one that does not (with a deferred or a fenced write-back), or Arm's stage-1 format
 * on a unit that snoops. */
enum coherence { COHERENT, NONCOHERENT, NONCOHERENT_FENCED, ARM_STAGE1 };
static const char *const suffixes[] = {"", "_noncoherent", "_noncoherent_fenced", "_arm"};

static bool selected(const char *only, const char *name, enum coherence mode)
{
    if (!only) {
        if (mode == ARM_STAGE1) /* the runs of 4 KiB and 2 MiB leaves, and the split */
            return strcmp(name, "map_1g_scattered") != 0;
        return mode != NONCOHERENT_FENCED || !strcmp(name, "map_4k");
    }
    size_t n = strlen(name);
    return !strncmp(only, name, n) && !strcmp(only + n, suffixes[mode]);
}

/* The cases on a domain holding 10,000 random single-page mappings. */
static void domain_cases(const char *only, enum coherence mode)
{
    static const char *const names[] = {"map_4k", "map_256x4k", "map_256x2m", "map_1g_scattered", "split_2m"};
    bool any = false;
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
        any = any || selected(only, names[i], mode);
    if (!any)
        return;
    if (mode != COHERENT)
        rng = 0x2545f4914f6cdd1dull; /* the same mappings and IOVAs as the coherent domain */
    struct slpt t;
    must(slpt_init(&t, &pool, 3, SLPT_SUPERPAGE_2M | SLPT_SUPERPAGE_1G), "domain");
    if (mode == ARM_STAGE1) {
        must(slpt_set_format(&t, &pt_arm_stage1), "Arm format");
    } else if (mode != COHERENT) {
        /* as the loader does: the write-back set before the first map, the root written back */
        must(slpt_set_write_back(&t, mode == NONCOHERENT ? write_back : write_back_fenced,
                                 mode == NONCOHERENT ? wait_back : NULL, NULL),
             "write-back");
    }
    static uint64_t used[10000];
    populate(&t, used, 10000);
    /* One mapping elsewhere in the GiB of map_256x4k: like any busy domain, the upper tables
     * exist and the case allocates (and frees) only its own table of 4 KiB entries. */
    must(slpt_map(&t, (3ull << 30) + (512ull << 20), 0x1000, PAGE_SIZE, SLPT_READ), "anchor");
    char name[48];
    if (selected(only, "map_4k", mode)) {
        snprintf(name, sizeof name, "map_4k%s", suffixes[mode]);
        bench_map_4k(&t, name);
    }
    if (selected(only, "map_256x4k", mode)) {
        snprintf(name, sizeof name, "map_256x4k%s", suffixes[mode]);
        bench_range(name, &t, (3ull << 30) + (5ull << 20), 0x80000000, 1ull << 20, 2000);
    }
    if (selected(only, "map_256x2m", mode)) {
        snprintf(name, sizeof name, "map_256x2m%s", suffixes[mode]);
        bench_range(name, &t, 2ull << 30, 1ull << 30, 512ull << 20, 1000);
    }
    if (selected(only, "map_1g_scattered", mode)) {
        snprintf(name, sizeof name, "map_1g_scattered%s", suffixes[mode]);
        bench_scattered(&t, name);
    }
    if (selected(only, "split_2m", mode)) {
        snprintf(name, sizeof name, "split_2m%s", suffixes[mode]);
        bench_split(&t, name);
    }
    slpt_destroy(&t);
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;
    pick_write_back();
    void *mem = aligned_alloc(PAGE_SIZE, POOL_BYTES);
    entries = malloc(300000 * sizeof *entries);
    snapshot_mem = malloc(POOL_BYTES);
    runs = malloc(300000 * sizeof *runs);
    static const struct platform plat = {.mmio_read32 = unit_read32, .mmio_read64 = unit_read64,
                                         .mmio_write32 = unit_write32, .mmio_write64 = unit_write64,
                                         .now_ns = unit_now};
    if (!mem || !entries || !runs || !snapshot_mem || !page_pool_init(&pool, mem, 0x100000000ull, POOL_BYTES) ||
        vtd_unit_init(&unit, &plat, &pool, 0xfed90000, 0, 0) != IOMMU_OK) {
        fprintf(stderr, "iommu-bench: set-up failed\n");
        return 1;
    }
    unit.enabled = true; /* the registers are not real; invalidations go through the driver */
    printf("# iommu-bench: median of %d samples; limit = storing and clearing the same entries in place\n", SAMPLES);

    domain_cases(only, COHERENT);
    for (unsigned levels = 3; levels <= 4 && (!only || !strcmp(only, "identity_4g")); levels++) {
        struct slpt id;
        must(slpt_init(&id, &pool, levels, SLPT_SUPERPAGE_2M | SLPT_SUPERPAGE_1G), "identity");
        char name[32];
        snprintf(name, sizeof name, levels == 3 ? "identity_4g" : "identity_4g_4level");
        bench_range(name, &id, 0, 0, 4ull << 30, 20000);
        slpt_destroy(&id);
    }
    if (!only || !strcmp(only, "iova_alloc"))
        bench_iova();
    /* The same domain again, on a unit that does not snoop table walks: its write-back set
     * before the first map, as the loader does. */
    domain_cases(only, NONCOHERENT);
    domain_cases(only, NONCOHERENT_FENCED);
    /* Last, so that every case before runs exactly as it did before the Arm cases existed. */
    domain_cases(only, ARM_STAGE1);
    return 0;
}
