/* The self-test's 10,000 random hypercalls: random call numbers and versions, random block
 * sizes and addresses (its own buffer, the hypervisor's memory, MMIO, unaligned, beyond
 * RAM), random block contents with forged and mutated handles. Every one must be answered;
 * afterwards the hypervisor's books must balance (HC_STATS: the page pool holds what it held
 * plus the tables of the domains that now exist) and it must still serve.
 *
 * Returns how many hypercalls it made (the QEMU test counts them against QEMU's log).
 *
 * Guest addresses inside the random blocks are kept to the fuzz buffer or far beyond RAM,
 * so that what the hypervisor writes back (a poll's reports) cannot land on the firmware. */
#include <efi.h>
#include <efilib.h>

#include "ddi/hypercall.h"
#include "guest/lib/guest.h"
#include "iommu/prng.h"
#include "common/report.h"
#include "common/loader_handoff.h"

#define BUFFER_PAGES 16u
#define ROUNDS 10000u

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static uint64_t next(void)
{
    return prng_next(&rng);
}

static unsigned made;

static uint64_t vmmcall(uint64_t rax, uint64_t rcx, uint64_t rdx)
{
    made++;
    return guest_hypercall(rax, rcx, rdx);
}

static bool stats(struct hc_stats_block *s)
{
    made++;
    return guest_books(s);
}

unsigned selftest_random_hypercalls(const struct loader_handoff *o, struct checks *c)
{
    EFI_PHYSICAL_ADDRESS base = 0xffffffff;
    if (!check(c, !EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiBootServicesData,
                                               BUFFER_PAGES, &base)),
               "guest: random-hypercall buffer"))
        return made;
    uint8_t *buffer = (uint8_t *)(uintptr_t)base;
    uint64_t bytes = BUFFER_PAGES * 4096ull;
    /* Each call's block size, from the hypervisor: the one size it does not refuse as a
     * length mismatch (with an all-zero block, which every routine refuses). */
    /* The hypervisor's own calls are not the DDI's and are left out: HC_GUEST_EXIT would end
     * the machine, and the hostile payload exercises HC_AUDIT. */
    unsigned sizes[HC_CALLS];
    for (unsigned call = 0; call < HC_CALLS; call++) {
        sizes[call] = 0;
        for (unsigned size = 8; size <= 256 && !sizes[call] && call != HC_GUEST_EXIT && call != HC_AUDIT; size += 8) {
            __builtin_memset(buffer, 0, 256);
            if ((uint32_t)vmmcall(hc_rax(call), base, size) != (uint32_t)STATUS_INFO_LENGTH_MISMATCH)
                sizes[call] = size;
        }
    }
    struct hc_stats_block before, after;
    if (!check(c, stats(&before), "guest: HC_STATS before the random hypercalls"))
        return made;
    uint64_t handles[32] = {0};
    unsigned nhandles = 0, succeeded = 0;
    const uint64_t bad_blocks[] = {o->region_base, o->region_base + o->region_bytes - 8, o->image_base + 4096,
                                   o->iommu_base[0], 0, 1ull << 50, base + 4};
    for (unsigned i = 0; i < ROUNDS; i++) {
        unsigned call = next() % 8 ? (unsigned)(next() % HC_CALLS) : (unsigned)(next() % 0x10000);
        uint64_t rax = next() % 20 ? hc_rax((enum hc_call)call) : next();
        if ((rax & 0xFFFF) == HC_GUEST_EXIT || (rax & 0xFFFF) == HC_AUDIT)
            continue;
        uint64_t size = call < HC_CALLS && next() % 10 ? sizes[call] : next() % 300;
        uint64_t at = base + (next() % (bytes - 512) / 8) * 8;
        if (next() % 10 == 0)
            at = bad_blocks[next() % (sizeof bad_blocks / sizeof bad_blocks[0])];
        if (at >= base && at + 512 <= base + bytes) {
            uint64_t *w = (uint64_t *)(uintptr_t)at;
            for (unsigned k = 0; k < 40; k++) {
                switch (next() % 5) {
                case 0:
                    w[k] = next() % 4;
                    break;
                case 1:
                    w[k] = base + next() % bytes; /* an address in the buffer */
                    break;
                case 2:
                    w[k] = nhandles ? handles[next() % nhandles] : 0;
                    break;
                case 3:
                    w[k] = nhandles ? handles[next() % nhandles] ^ (1ull << (next() % 64)) : 0;
                    break;
                default:
                    w[k] = next() | 1ull << 62; /* far beyond RAM */
                    break;
                }
            }
        }
        uint64_t st = vmmcall(rax, at, size);
        if ((uint32_t)st == 0 && at >= base && at + 512 <= base + bytes) {
            succeeded++;
            const uint64_t *w = (const uint64_t *)(uintptr_t)at;
            for (unsigned k = 0; k < size / 8; k++)
                if (w[k] >> 48 && nhandles < 32)
                    handles[nhandles++] = w[k]; /* handles come back tagged in their top bits */
        }
    }
    bool ok = stats(&after);
    uint32_t baseline = before.pool_in_use - before.table_pages;
    checkf(c, ok && after.pool_in_use == baseline + after.table_pages && after.refused > before.refused,
           "guest: %u random hypercalls answered (%u succeeded, %lu refused before any routine); the hypervisor's "
           "books balance: %u pool pages = %u + %u in %u domains' tables",
           ROUNDS, succeeded, after.refused - before.refused, after.pool_in_use, baseline, after.table_pages,
           after.domains);
    /* Still serving: a DMA device for edu made and deleted, as the DDI flows do. */
    struct hc_create_device_block cd = {.device = {.present = 1, .bus = o->edu[0].bus, .device = o->edu[0].device,
                                                   .function = o->edu[0].function, .segment = o->edu[0].segment,
                                                   .type = IOMMU_PCI_DEVICE_OBJECT_TYPE},
                                        .out_present = 1};
    uint64_t created = vmmcall(hc_rax(HC_CREATE_DEVICE), (uint64_t)(uintptr_t)&cd, sizeof cd);
    struct hc_device_handle_block dd = {cd.dma_device};
    uint64_t deleted = created == 0 ? vmmcall(hc_rax(HC_DELETE_DEVICE), (uint64_t)(uintptr_t)&dd, sizeof dd) : created;
    checkf(c, o->edus == 0 || (created == 0 && deleted == 0),
           "guest: after them, valid calls still served: CreateDevice 0x%lx, DeleteDevice 0x%lx", created, deleted);
    uefi_call_wrapper(BS->FreePages, 2, base, BUFFER_PAGES);
    return made;
}
