/* See boot/hypervisor/svm/guest_walk.h. */
#include "hypervisor/svm/guest_walk.h"

#include <stddef.h>

#define PTE_P (1ull << 0)
#define PTE_W (1ull << 1)
#define PTE_U (1ull << 2)
#define PTE_PS (1ull << 7)
#define PTE_XD (1ull << 63)
#define PAGE_4K 0x1000ull
#define PAGE_2M 0x200000ull
#define PAGE_4M 0x400000ull
#define PAGE_1G 0x40000000ull

static bool legacy_linear(const struct guest_paging *p)
{
    return !(p->cr0 & GW_CR0_PG) || !(p->efer & GW_EFER_LMA);
}

static unsigned maxphyaddr(const struct guest_paging *p)
{
    unsigned m = p->maxphyaddr;
    if (m == 0 || m > 52)
        return 52;
    return m < 32 ? 32 : m;
}

static bool fail(struct guest_walk_result *r, enum guest_walk_status status, unsigned level)
{
    r->status = status;
    r->level = (uint8_t)level;
    return false;
}

static bool read_entry(const struct guest_mem_ops *ops, uint64_t pa, unsigned size, uint64_t *out)
{
    uint64_t v = 0;
    if (!ops->read_entry(ops->ctx, pa, size, &v))
        return false;
    *out = size == 4 ? v & 0xFFFFFFFFull : v;
    return true;
}

static bool done(struct guest_walk_result *r, unsigned level, uint64_t pa, uint64_t page_size)
{
    r->status = GW_OK;
    r->level = (uint8_t)level;
    r->pa = pa;
    r->page_size = page_size;
    return true;
}

/* The 8-byte-entry levels shared by PAE (from level 2) and long mode (from level 4 or 5),
 * starting with the table at 'table'. */
static bool walk64(const struct guest_paging *p, const struct guest_mem_ops *ops, uint64_t la, uint64_t table,
                   unsigned level, struct guest_walk_result *r)
{
    unsigned maxpa = maxphyaddr(p);
    uint64_t addr_mask = ((1ull << maxpa) - 1) & ~(PAGE_4K - 1);
    /* Reserved: bits maxphyaddr..51 in long mode (52-62 are the software's), maxphyaddr..62
     * with PAE; bit 63 is XD, reserved without NXE. */
    bool long_mode = (p->efer & GW_EFER_LMA) != 0;
    uint64_t rsvd = (~0ull << maxpa) & (long_mode ? (1ull << 52) - 1 : ~PTE_XD);
    if (!(p->efer & GW_EFER_NXE))
        rsvd |= PTE_XD;
    for (; level >= 1; level--) {
        uint64_t e;
        unsigned shift = 12 + 9 * (level - 1);
        if (!read_entry(ops, table + ((la >> shift) & 0x1FF) * 8, 8, &e))
            return fail(r, GW_READ_REFUSED, level);
        r->entry = e;
        if (!(e & PTE_P))
            return fail(r, GW_NOT_PRESENT, level);
        if (e & rsvd)
            return fail(r, GW_RESERVED, level);
        r->writable = r->writable && (e & PTE_W);
        r->user = r->user && (e & PTE_U);
        r->executable = r->executable && !(e & PTE_XD);
        if (level == 1)
            return done(r, 1, (e & addr_mask) | (la & (PAGE_4K - 1)), PAGE_4K);
        if (e & PTE_PS) {
            uint64_t page = level == 3 ? PAGE_1G : PAGE_2M;
            if (level > 3 || (level == 3 && p->no_1g_pages))
                return fail(r, GW_RESERVED, level); /* no large pages there */
            /* bits 13 .. log2(page)-1 are reserved (bit 12 is PAT) */
            if (e & (page - 1) & ~(PAGE_4K * 2 - 1))
                return fail(r, GW_RESERVED, level);
            return done(r, level, (e & addr_mask & ~(page - 1)) | (la & (page - 1)), page);
        }
        table = e & addr_mask;
    }
    return fail(r, GW_RESERVED, 0); /* not reached: level 1 always ends the loop */
}

bool guest_walk(const struct guest_paging *p, const struct guest_mem_ops *ops, uint64_t linear,
                struct guest_walk_result *res)
{
    if (!res)
        return false;
    *res = (struct guest_walk_result){.linear = linear, .writable = true, .user = true, .executable = true};
    if (!p || !ops || !ops->read_entry)
        return fail(res, GW_BAD_ARGS, 0);
    if (legacy_linear(p))
        res->linear = linear &= 0xFFFFFFFFull;

    if (!(p->cr0 & GW_CR0_PG))
        return done(res, 0, linear, PAGE_4K);

    if (!(p->cr4 & GW_CR4_PAE)) { /* 32-bit paging: 4-byte entries */
        uint64_t pde, pte;
        if (!read_entry(ops, (p->cr3 & 0xFFFFF000ull) | (linear >> 22) << 2, 4, &pde))
            return fail(res, GW_READ_REFUSED, 2);
        res->entry = pde;
        if (!(pde & PTE_P))
            return fail(res, GW_NOT_PRESENT, 2);
        res->writable = pde & PTE_W;
        res->user = pde & PTE_U;
        if ((p->cr4 & GW_CR4_PSE) && (pde & PTE_PS)) { /* 4 MiB page */
            uint64_t high = ((pde >> 13) & 0xFF) << 32; /* PSE-36: PA bits 32-39 */
            if ((pde & (1ull << 21)) || (high >> maxphyaddr(p)))
                return fail(res, GW_RESERVED, 2);
            return done(res, 2, (pde & 0xFFC00000ull) | high | (linear & (PAGE_4M - 1)), PAGE_4M);
        }
        if (!read_entry(ops, (pde & 0xFFFFF000ull) | ((linear >> 12) & 0x3FF) << 2, 4, &pte))
            return fail(res, GW_READ_REFUSED, 1);
        res->entry = pte;
        if (!(pte & PTE_P))
            return fail(res, GW_NOT_PRESENT, 1);
        res->writable = res->writable && (pte & PTE_W);
        res->user = res->user && (pte & PTE_U);
        return done(res, 1, (pte & 0xFFFFF000ull) | (linear & (PAGE_4K - 1)), PAGE_4K);
    }

    unsigned maxpa = maxphyaddr(p);
    if (!(p->efer & GW_EFER_LMA)) { /* PAE: 4 PDPTEs at CR3 bits 5-31 */
        uint64_t pdpte;
        if (!read_entry(ops, (p->cr3 & 0xFFFFFFE0ull) + (linear >> 30) * 8, 8, &pdpte))
            return fail(res, GW_READ_REFUSED, 3);
        res->entry = pdpte;
        if (!(pdpte & PTE_P))
            return fail(res, GW_NOT_PRESENT, 3);
        /* bits 1-2, 5-8 (PS among them) and maxphyaddr-63 are reserved */
        if (pdpte & (0x1E6ull | ~0ull << maxpa))
            return fail(res, GW_RESERVED, 3);
        return walk64(p, ops, linear, pdpte & ((1ull << maxpa) - 1) & ~(PAGE_4K - 1), 2, res);
    }

    /* Long mode: 4 or 5 levels, canonical addresses only. */
    unsigned levels = (p->cr4 & GW_CR4_LA57) ? 5 : 4, bits = 12 + 9 * levels; /* 48 or 57 */
    uint64_t top = linear >> (bits - 1);
    if (top != 0 && top != (~0ull >> (bits - 1)))
        return fail(res, GW_NON_CANONICAL, 0);
    if (p->cr3 & (((1ull << 52) - 1) & (~0ull << maxpa)))
        return fail(res, GW_RESERVED, 0); /* CR3 points beyond the physical address width */
    return walk64(p, ops, linear, p->cr3 & ((1ull << maxpa) - 1) & ~(PAGE_4K - 1), levels, res);
}

bool guest_read_linear(const struct guest_paging *p, const struct guest_mem_ops *ops, uint64_t linear, void *dst,
                       unsigned n, struct guest_walk_result *res)
{
    struct guest_walk_result local;
    if (!res)
        res = &local;
    *res = (struct guest_walk_result){.linear = linear};
    if (!p || !ops || !ops->read_bytes || !ops->read_entry || n > 15 || (n && !dst))
        return fail(res, GW_BAD_ARGS, 0);
    uint64_t mask = legacy_linear(p) ? 0xFFFFFFFFull : ~0ull;
    uint8_t *out = dst;
    unsigned copied = 0;
    linear &= mask;
    while (copied < n) {
        if (!guest_walk(p, ops, linear, res))
            return false;
        uint64_t left_in_page = PAGE_4K - (res->pa & (PAGE_4K - 1));
        unsigned chunk = n - copied;
        if (chunk > left_in_page)
            chunk = (unsigned)left_in_page;
        if (!ops->read_bytes(ops->ctx, res->pa, out + copied, chunk))
            return fail(res, GW_READ_REFUSED, 0);
        copied += chunk;
        linear = (linear + chunk) & mask;
    }
    if (n == 0) /* nothing to read: only the arguments are checked */
        res->status = GW_OK;
    return true;
}
