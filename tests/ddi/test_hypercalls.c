/* The hypercall layer on its own: the ABI's refusals, the checks on every guest address, the
 * bounds on lists, one hypercall per DDI call, and 10,000 hypercalls with random numbers,
 * blocks and handles, after which the hypervisor still serves valid calls and its state is
 * consistent.
 *
 * Most tests use the harness's hypercall path (guest memory = the test's memory). The random
 * calls need a guest memory that random addresses cannot escape, so they get their own: a
 * 1 MiB buffer standing for guest RAM at GUEST_BASE, nothing else. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ddi/hc_server.h"
#include "ddi/shim.h"
#include "sim.h"
#include "test_util.h"

static struct sim *s;
static DMA_IOMMU_INTERFACE_EX ex;
static DMA_IOMMU_INTERFACE_V2 *v2;

static int setup(void **state)
{
    (void)state;
    struct sim_config cfg = sim_default_config();
    s = sim_create(&cfg);
    sim_use_hypercalls(s);
    assert_int_equal(ShimIoGetIommuInterfaceEx(2, 0, &ex), STATUS_SUCCESS);
    v2 = &ex.V2;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sim_destroy(s);
    return 0;
}

#define OK(call) assert_int_equal((call), STATUS_SUCCESS)

/* A hypercall as the guest sees it: RAX back as an NTSTATUS. */
static NTSTATUS hc(uint64_t rax, uint64_t rcx, uint64_t rdx)
{
    return (NTSTATUS)hc_dispatch(rax, rcx, rdx);
}

static NTSTATUS raw(uint64_t rax, const void *block, uint64_t size)
{
    return hc(rax, (uint64_t)(uintptr_t)block, size);
}

static void test_abi_refusals(void **state)
{
    (void)state;
    struct hc_version_block v;
    OK(raw(hc_rax(HC_VERSION), &v, sizeof v));
    assert_int_equal(v.abi_version, HC_ABI_VERSION);
    assert_int_equal(v.max_frames, HC_MAX_FRAMES);
    assert_int_equal(raw((uint64_t)(HC_ABI_VERSION + 1) << 16 | HC_VERSION, &v, sizeof v), STATUS_REVISION_MISMATCH);
    assert_int_equal(raw(1ull << 40 | hc_rax(HC_VERSION), &v, sizeof v), STATUS_REVISION_MISMATCH);
    assert_int_equal(raw(hc_rax(HC_CALLS), &v, sizeof v), STATUS_INVALID_SYSTEM_SERVICE);
    assert_int_equal(raw(hc_rax(0xffff), &v, sizeof v), STATUS_INVALID_SYSTEM_SERVICE);
    assert_int_equal(raw(hc_rax(HC_VERSION), &v, sizeof v - 8), STATUS_INFO_LENGTH_MISMATCH);
    assert_int_equal(raw(hc_rax(HC_VERSION), &v, 1ull << 40), STATUS_INFO_LENGTH_MISMATCH);
    /* blocks the guest may not name: unaligned, page 0, the hypervisor's memory, the top */
    uint64_t words[8] = {0};
    assert_int_equal(raw(hc_rax(HC_VERSION), (uint8_t *)words + 4, sizeof v), STATUS_ACCESS_VIOLATION);
    assert_int_equal(hc(hc_rax(HC_VERSION), 0, sizeof v), STATUS_ACCESS_VIOLATION);
    assert_int_equal(raw(hc_rax(HC_VERSION), sim_hypervisor_memory(s), sizeof v), STATUS_ACCESS_VIOLATION);
    assert_int_equal(raw(hc_rax(HC_VERSION), (const uint8_t *)sim_hypervisor_memory(s) - 8, sizeof v),
                     STATUS_ACCESS_VIOLATION); /* straddles into it */
    assert_int_equal(hc(hc_rax(HC_VERSION), ~7ull, sizeof v), STATUS_ACCESS_VIOLATION);
    struct hc_server_stats st = hc_server_stats();
    assert_int_equal(st.refused_before_routine, 11); /* every call above but the first */
    struct hc_stats_block books;
    OK(raw(hc_rax(HC_STATS), &books, sizeof books));
    assert_int_equal(books.pool_in_use, sim_pool(s)->in_use);
    assert_int_equal(books.refused, 11);
    assert_int_equal(books.calls, 14); /* the set-up's HC_GET_INTERFACE, the 12 above, and this one */
    assert_int_equal(books.domains + books.devices + books.tokens, 0);
}

/* Failures on purpose: refused unless the server was given a pool to inject into. */
static void test_inject(void **state)
{
    (void)state;
    struct hc_inject_block i = {.kind = HC_INJECT_POOL_FAIL, .value = 1};
    assert_int_equal(raw(hc_rax(HC_INJECT), &i, sizeof i), STATUS_ACCESS_DENIED);
    sim_allow_injection(s);
    OK(raw(hc_rax(HC_INJECT), &i, sizeof i));
    IOMMU_DMA_DOMAIN_CREATION_FLAGS zero = {.AsUlonglong = 0};
    PIOMMU_DMA_DOMAIN d;
    uint32_t pages = sim_pool(s)->in_use;
    assert_int_equal(v2->CreateDomainEx(DomainTypeTranslate, zero, NULL, NULL, &d), STATUS_INSUFFICIENT_RESOURCES);
    assert_int_equal(sim_pool(s)->in_use, pages);
    OK(v2->CreateDomainEx(DomainTypeTranslate, zero, NULL, NULL, &d)); /* only that one allocation */
    OK(v2->DeleteDomain(d));
    i = (struct hc_inject_block){.kind = HC_INJECT_DMA_GUARD, .value = 1};
    OK(raw(hc_rax(HC_INJECT), &i, sizeof i));
    PIOMMU_DMA_DEVICE dev;
    DEVICE_OBJECT pdo;
    sim_device_object(s, 0, &pdo);
    OK(v2->CreateDevice(&pdo, NULL, &dev));
    ULONG types = 0;
    v2->QueryAvailableDomainTypes(dev, &types);
    assert_int_equal(types, 1); /* PassThrough withdrawn */
    i.value = 2;
    assert_int_equal(raw(hc_rax(HC_INJECT), &i, sizeof i), STATUS_INVALID_PARAMETER);
    i = (struct hc_inject_block){.kind = 99};
    assert_int_equal(raw(hc_rax(HC_INJECT), &i, sizeof i), STATUS_NOT_SUPPORTED);
    OK(v2->DeleteDevice(dev));

    /* An invalidation timeout: the unmap says it failed, the domain owes a flush, and the
     * unmap succeeds once the unit answers again. */
    i = (struct hc_inject_block){.kind = HC_INJECT_INVALIDATION_TIMEOUT, .value = 17};
    assert_int_equal(raw(hc_rax(HC_INJECT), &i, sizeof i), STATUS_INVALID_PARAMETER);
    sim_unit(s, 0)->poll_timeout_ns = 10000000; /* 10 ms of fake time */
    OK(v2->CreateDomainEx(DomainTypeTranslate, zero, NULL, NULL, &d));
    sim_device_object(s, 0, &pdo);
    OK(v2->CreateDevice(&pdo, NULL, &dev));
    OK(v2->AttachDeviceEx(d, dev));
    IOMMU_MAP_PHYSICAL_ADDRESS m = {.MapType = MapPhysicalAddressTypeContiguousRange};
    m.ContiguousRange.Base.QuadPart = (LONGLONG)sim_ram_page(s, 3);
    m.ContiguousRange.Size = 4096;
    IOMMU_DMA_LOGICAL_ADDRESS at = 0x200000, out = 0;
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, &m, &at, NULL, NULL, &out));
    assert_int_equal(sim_dma(s, 0, 0x200000, true).ok, true);
    i.value = 1;
    OK(raw(hc_rax(HC_INJECT), &i, sizeof i));
    uint64_t timeouts = sim_unit(s, 0)->stats.timeouts;
    assert_int_equal(v2->UnmapLogicalRange(d, 0x200000, 1), STATUS_UNSUCCESSFUL);
    assert_int_equal(sim_unit(s, 0)->stats.timeouts, timeouts + 1);
    OK(v2->UnmapLogicalRange(d, 0x200000, 1)); /* the owed flush completes now */
    assert_int_equal(sim_dma(s, 0, 0x200000, true).reason, 5);

    /* The books count the fault records taken from the unit. */
    struct hc_stats_block books;
    shim_poll();
    OK(raw(hc_rax(HC_STATS), &books, sizeof books));
    assert_true(books.faults_recorded >= 1);
    assert_int_equal(books.fault_overflows, sim_unit(s, 0)->unit.faults.overflows);
    OK(v2->DetachDeviceEx(dev));
    OK(v2->DeleteDevice(dev));
    OK(v2->DeleteDomain(d));
}

/* Lists a block points to are checked like the block: the hypervisor's memory is refused,
 * and nothing is done. */
static void test_lists_are_checked(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN d;
    IOMMU_DMA_DOMAIN_CREATION_FLAGS zero = {.AsUlonglong = 0};
    OK(v2->CreateDomainEx(DomainTypeTranslate, zero, NULL, NULL, &d));
    uint32_t pages = sim_pool(s)->in_use;
    const uint8_t *hv = sim_hypervisor_memory(s);
    uint8_t before[64];
    memcpy(before, hv, sizeof before);

    struct hc_map_logical_ex_block m = {.domain = (uint64_t)(uintptr_t)d, .permissions = IOMMU_ACCESS_READ,
                                        .out_present = 1, .explicit_address = {1, 0x100000}};
    m.phys = (struct hc_phys){.map_type = MapPhysicalAddressTypePfn, .base = (uint64_t)(uintptr_t)hv, .count = 4};
    assert_int_equal(raw(hc_rax(HC_MAP_LOGICAL_RANGE_EX), &m, sizeof m), STATUS_ACCESS_VIOLATION);
    m.phys.map_type = MapPhysicalAddressTypeMdl; /* an MDL's frames too */
    m.phys.mdl_byte_count = 4 * PAGE_SIZE;
    assert_int_equal(raw(hc_rax(HC_MAP_LOGICAL_RANGE_EX), &m, sizeof m), STATUS_ACCESS_VIOLATION);
    m.phys = (struct hc_phys){.map_type = MapPhysicalAddressTypePfn, .base = (uint64_t)(uintptr_t)before,
                              .count = HC_MAX_FRAMES + 1};
    assert_int_equal(raw(hc_rax(HC_MAP_LOGICAL_RANGE_EX), &m, sizeof m), STATUS_INSUFFICIENT_RESOURCES);
    /* a frame list that is fine, naming the hypervisor's memory as frames: the policy says no */
    PFN_NUMBER frame = sim_protected_base(s) >> PAGE_SHIFT;
    m.phys = (struct hc_phys){.map_type = MapPhysicalAddressTypePfn, .base = (uint64_t)(uintptr_t)&frame, .count = 1};
    assert_int_equal(raw(hc_rax(HC_MAP_LOGICAL_RANGE_EX), &m, sizeof m), STATUS_ACCESS_DENIED);
    /* and so does a descriptor naming the IOMMU's own registers: not guest RAM */
    m.phys = (struct hc_phys){.map_type = MapPhysicalAddressTypeContiguousRange, .base = sim_unit_registers(s, 0),
                              .count = PAGE_SIZE};
    assert_int_equal(raw(hc_rax(HC_MAP_LOGICAL_RANGE_EX), &m, sizeof m), STATUS_ACCESS_DENIED);

    struct hc_create_domain_ex_block c = {.domain_type = DomainTypeTranslate, .out_present = 1, .region_count = 2,
                                          .regions = (uint64_t)(uintptr_t)hv};
    assert_int_equal(raw(hc_rax(HC_CREATE_DOMAIN_EX), &c, sizeof c), STATUS_ACCESS_VIOLATION);
    ULONGLONG vas[2] = {0x1000, 0x2000};
    struct hc_flush_va_list_block f = {.domain = (uint64_t)(uintptr_t)d, .list_present = 1, .number = 2,
                                       .list = (uint64_t)(uintptr_t)hv};
    assert_int_equal(raw(hc_rax(HC_FLUSH_DOMAIN_VA_LIST), &f, sizeof f), STATUS_ACCESS_VIOLATION);
    f.list = (uint64_t)(uintptr_t)vas; /* fine, but the domain is OS-managed (C7) */
    assert_int_equal(raw(hc_rax(HC_FLUSH_DOMAIN_VA_LIST), &f, sizeof f), STATUS_INVALID_PARAMETER_1);
    /* a report buffer in the hypervisor's memory is refused even when nothing waits */
    struct hc_poll_block p = {.buffer = (uint64_t)(uintptr_t)hv, .capacity = 4};
    assert_int_equal(raw(hc_rax(HC_POLL), &p, sizeof p), STATUS_ACCESS_VIOLATION);
    assert_int_equal(p.count, 0);
    p.capacity = 0; /* no buffer offered: nothing to check */
    OK(raw(hc_rax(HC_POLL), &p, sizeof p));

    assert_memory_equal(hv, before, sizeof before);
    assert_int_equal(sim_pool(s)->in_use, pages);
    assert_int_equal(ddi_provider_counts().domains, 1);
    OK(v2->DeleteDomain(d));
}

/* A token is an id on the hypervisor's side and a structure of the shim's on the guest's:
 * no pointer into the hypervisor reaches the guest. */
static void test_tokens_are_ids(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN d;
    IOMMU_DMA_DOMAIN_CREATION_FLAGS zero = {.AsUlonglong = 0};
    OK(v2->CreateDomainEx(DomainTypeTranslate, zero, NULL, NULL, &d));
    struct hc_reserve_block r = {.domain = (uint64_t)(uintptr_t)d, .size = 4 * PAGE_SIZE,
                                 .explicit_address = {1, 0x200000}, .out_present = 1};
    OK(raw(hc_rax(HC_RESERVE_LOGICAL_RANGE), &r, sizeof r));
    assert_int_equal(r.token_base, 0x200000);
    assert_int_equal(r.token_size, 4 * PAGE_SIZE);
    assert_int_equal(ddi_token_by_id(r.token)->LogicalAddressBase, 0x200000);
    const uint8_t *hv = sim_hypervisor_memory(s);
    assert_false(r.token >= (uint64_t)(uintptr_t)hv && r.token < (uint64_t)(uintptr_t)hv + SIM_POOL_BYTES);
    struct hc_token_block t = {r.token};
    OK(raw(hc_rax(HC_FREE_RESERVED_LOGICAL_RANGE), &t, sizeof t));
    assert_int_equal(raw(hc_rax(HC_FREE_RESERVED_LOGICAL_RANGE), &t, sizeof t), STATUS_INVALID_PARAMETER_1);
    OK(raw(hc_rax(HC_RESERVE_LOGICAL_RANGE), &r, sizeof r)); /* the slot again: a new id */
    assert_int_not_equal(r.token, t.token);
    assert_int_equal(raw(hc_rax(HC_FREE_RESERVED_LOGICAL_RANGE), &t, sizeof t), STATUS_INVALID_PARAMETER_1);
    t.token = r.token;
    OK(raw(hc_rax(HC_FREE_RESERVED_LOGICAL_RANGE), &t, sizeof t));
    OK(v2->DeleteDomain(d));
}

/* One exit per DDI call, however long the page list. */
static void test_one_hypercall_per_call(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN d;
    IOMMU_DMA_DOMAIN_CREATION_FLAGS zero = {.AsUlonglong = 0};
    OK(v2->CreateDomainEx(DomainTypeTranslate, zero, NULL, NULL, &d));
    PIOMMU_DMA_DEVICE dev;
    DEVICE_OBJECT pdo;
    sim_device_object(s, 0, &pdo);
    OK(v2->CreateDevice(&pdo, NULL, &dev));
    OK(v2->AttachDeviceEx(d, dev));
    unsigned pages[256];
    for (unsigned i = 0; i < 256; i++)
        pages[i] = (i * 7) % SIM_RAM_PAGES; /* scattered: a real page list */
    MDL *mdl = sim_mdl(s, pages, 256);
    IOMMU_MAP_PHYSICAL_ADDRESS m = {.MapType = MapPhysicalAddressTypeMdl, .Mdl = {mdl}};
    IOMMU_DMA_LOGICAL_ADDRESS at = 0x1000000, out;
    uint64_t before = sim_hypercalls(s);
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, &m, &at, NULL, NULL, &out));
    assert_int_equal(sim_hypercalls(s) - before, 1);
    printf("hypercalls: a map of 256 pages took %llu hypercall\n", (unsigned long long)(sim_hypercalls(s) - before));
    for (unsigned i = 0; i < 256; i += 51) {
        struct vtd_model_result r = sim_dma(s, 0, at + i * PAGE_SIZE + 8, true);
        assert_true(r.ok);
        assert_int_equal(r.pa, sim_ram_page(s, pages[i]) + 8);
    }
    before = sim_hypercalls(s);
    OK(v2->UnmapLogicalRange(d, at, 256));
    assert_int_equal(sim_hypercalls(s) - before, 1);
    assert_false(sim_dma(s, 0, at, false).ok);
    free(mdl);
    OK(v2->DetachDeviceEx(dev));
    OK(v2->DeleteDevice(dev));
    OK(v2->DeleteDomain(d));
}

/* ---- the hypervisor's own calls (HC_AUDIT, HC_GUEST_EXIT) ---- */

/* What the host saw of each call. */
static struct host_seen {
    unsigned calls;
    uint32_t call;
    const void *block;                 /* where the server put its copy */
    struct hc_audit_block audit;       /* the block as it arrived */
    struct hc_guest_exit_block guest_exit;
    NTSTATUS reply;
} host;

static NTSTATUS host_call(void *ctx, uint32_t call, void *block)
{
    assert_ptr_equal(ctx, &host);
    host.calls++;
    host.call = call;
    host.block = block;
    if (call == HC_AUDIT) {
        struct hc_audit_block *a = block;
        host.audit = *a;
        a->intact = HC_AUDIT_ALL & ~HC_AUDIT_CANARY; /* what the host found */
        a->sequence = host.calls;
    } else if (call == HC_GUEST_EXIT) {
        struct hc_guest_exit_block *e = block;
        host.guest_exit = *e;
        e->status = 0x600df00d; /* written back like any output */
    } else
        fail_msg("host_call reached with call %u", call);
    return host.reply;
}

static void test_host_calls_refused_without_host_call(void **state)
{
    (void)state;
    struct hc_audit_block a = {.name = "probe", .claimed_secret = 0x1234};
    struct hc_audit_block before = a;
    struct hc_guest_exit_block e = {.status = 5};
    assert_int_equal(raw(hc_rax(HC_AUDIT), &a, sizeof a), STATUS_INVALID_SYSTEM_SERVICE);
    assert_int_equal(raw(hc_rax(HC_GUEST_EXIT), &e, sizeof e), STATUS_INVALID_SYSTEM_SERVICE);
    assert_memory_equal(&a, &before, sizeof a); /* nothing written back */
    assert_int_equal(e.status, 5);
    assert_int_equal(hc_server_stats().refused_before_routine, 2);
    /* a server that had one and was given none again refuses them too */
    host = (struct host_seen){0};
    sim_set_host_call(s, host_call, &host);
    OK(raw(hc_rax(HC_GUEST_EXIT), &e, sizeof e));
    sim_set_host_call(s, NULL, NULL);
    assert_int_equal(raw(hc_rax(HC_AUDIT), &a, sizeof a), STATUS_INVALID_SYSTEM_SERVICE);
    assert_int_equal(host.calls, 1);
}

static void test_host_calls_served(void **state)
{
    (void)state;
    host = (struct host_seen){.reply = STATUS_SUCCESS};
    sim_set_host_call(s, host_call, &host);
    struct hc_audit_block a = {.name = "dma-to-vtd-regs", .claimed_secret = 0x5ec7e7};
    OK(raw(hc_rax(HC_AUDIT), &a, sizeof a));
    assert_int_equal(host.calls, 1);
    assert_int_equal(host.call, HC_AUDIT);
    assert_ptr_not_equal(host.block, &a); /* the server's copy, not the guest's memory */
    assert_string_equal(host.audit.name, "dma-to-vtd-regs");
    assert_int_equal(host.audit.claimed_secret, 0x5ec7e7);
    assert_int_equal(a.intact, HC_AUDIT_ALL & ~HC_AUDIT_CANARY); /* the host's answer reached the guest */
    assert_int_equal(a.sequence, 1);
    assert_string_equal(a.name, "dma-to-vtd-regs");

    /* the host's status is the guest's, and the block is written back whatever it is */
    struct hc_guest_exit_block e = {.status = 0x8000000000000005ull};
    host.reply = STATUS_UNSUCCESSFUL;
    assert_int_equal(raw(hc_rax(HC_GUEST_EXIT), &e, sizeof e), STATUS_UNSUCCESSFUL);
    assert_int_equal(host.calls, 2);
    assert_int_equal(host.call, HC_GUEST_EXIT);
    assert_int_equal(host.guest_exit.status, 0x8000000000000005ull);
    assert_int_equal(e.status, 0x600df00d);

    /* refused before the host is called: a wrong size, a block outside guest RAM */
    host.reply = STATUS_SUCCESS;
    uint64_t words[8] = {0};
    assert_int_equal(raw(hc_rax(HC_AUDIT), &a, sizeof a - 8), STATUS_INFO_LENGTH_MISMATCH);
    assert_int_equal(raw(hc_rax(HC_AUDIT), words, sizeof a + 8), STATUS_INFO_LENGTH_MISMATCH);
    assert_int_equal(raw(hc_rax(HC_GUEST_EXIT), &e, 0), STATUS_INFO_LENGTH_MISMATCH);
    assert_int_equal(raw(hc_rax(HC_GUEST_EXIT), &a, sizeof a), STATUS_INFO_LENGTH_MISMATCH);
    const uint8_t *hv = sim_hypervisor_memory(s);
    uint8_t before[64];
    memcpy(before, hv, sizeof before);
    assert_int_equal(raw(hc_rax(HC_AUDIT), hv, sizeof a), STATUS_ACCESS_VIOLATION);
    assert_int_equal(raw(hc_rax(HC_GUEST_EXIT), hv, sizeof e), STATUS_ACCESS_VIOLATION);
    assert_int_equal(raw(hc_rax(HC_AUDIT), hv - 8, sizeof a), STATUS_ACCESS_VIOLATION); /* straddles into it */
    assert_int_equal(hc(hc_rax(HC_AUDIT), 0, sizeof a), STATUS_ACCESS_VIOLATION);
    assert_int_equal(raw(hc_rax(HC_GUEST_EXIT), (uint8_t *)words + 4, sizeof e), STATUS_ACCESS_VIOLATION);
    assert_memory_equal(hv, before, sizeof before);
    assert_int_equal(raw((uint64_t)(HC_ABI_VERSION + 1) << 16 | HC_AUDIT, &a, sizeof a), STATUS_REVISION_MISMATCH);
    assert_int_equal(host.calls, 2); /* none of these reached it */
    assert_int_equal(hc_server_stats().refused_before_routine, 10);

    /* and the DDI is served as before */
    PIOMMU_DMA_DOMAIN d;
    IOMMU_DMA_DOMAIN_CREATION_FLAGS zero = {.AsUlonglong = 0};
    OK(v2->CreateDomainEx(DomainTypeTranslate, zero, NULL, NULL, &d));
    OK(v2->DeleteDomain(d));
    assert_int_equal(host.calls, 2);
}

/* ---- random hypercalls ---- */

#define GUEST_BASE 0x100000ull
#define GUEST_BYTES (1ull << 20)
static uint8_t *guest;

static void guest_read(void *ctx, uint64_t gpa, void *buf, size_t len)
{
    (void)ctx;
    assert_true(gpa >= GUEST_BASE && gpa - GUEST_BASE + len <= GUEST_BYTES); /* the server checked */
    memcpy(buf, guest + (gpa - GUEST_BASE), len);
}

static void guest_write(void *ctx, uint64_t gpa, const void *buf, size_t len)
{
    (void)ctx;
    assert_true(gpa >= GUEST_BASE && gpa - GUEST_BASE + len <= GUEST_BYTES);
    memcpy(guest + (gpa - GUEST_BASE), buf, len);
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next(void)
{
    return test_rand(&rng);
}

/* A value a random block field gets: mostly small or address-like, sometimes a live or
 * nearly-live handle, sometimes anything. */
static uint64_t field(const uint64_t *handles, unsigned nhandles)
{
    switch (next() % 6) {
    case 0:
        return next() % 4;
    case 1:
        return GUEST_BASE + next() % GUEST_BYTES;
    case 2:
        return nhandles ? handles[next() % nhandles] : 0;
    case 3:
        return nhandles ? handles[next() % nhandles] ^ (1ull << (next() % 64)) : 1;
    case 4:
        return (next() % 64) * PAGE_SIZE;
    default:
        return next();
    }
}

static unsigned block_size(enum hc_call c)
{
    /* The sizes, from what the server accepts: the one size that is not refused as a
     * length mismatch. */
    for (unsigned size = 8; size <= 256; size += 8)
        if (hc(hc_rax(c), GUEST_BASE, size) != STATUS_INFO_LENGTH_MISMATCH)
            return size;
    return 0;
}

static void test_random_hypercalls(void **state)
{
    (void)state;
    guest = calloc(1, GUEST_BYTES);
    struct hc_server_config cfg = {.read = guest_read, .write = guest_write, .ram_count = 1};
    cfg.ram[0] = (struct hc_ram_range){GUEST_BASE, GUEST_BYTES};
    assert_int_equal(hc_server_init(&cfg), IOMMU_OK);
    unsigned sizes[HC_CALLS];
    for (unsigned c = 0; c < HC_CALLS; c++) {
        sizes[c] = block_size(c);
        assert_true(sizes[c] > 0);
    }
    assert_int_equal(hc_server_init(&cfg), IOMMU_OK); /* counting from here */
    uint32_t baseline = sim_pool(s)->in_use;
    uint64_t handles[64];
    unsigned nhandles = 0, ok = 0;
    for (unsigned i = 0; i < 10000; i++) {
        unsigned c = next() % 8 ? (unsigned)(next() % HC_CALLS) : (unsigned)(next() % 0x10000);
        unsigned size = c < HC_CALLS && next() % 10 ? sizes[c] : (unsigned)(next() % 300);
        uint64_t at = next() % 10 ? GUEST_BASE + (next() % (GUEST_BYTES / 8)) * 8 : next();
        /* the block: random words, handles among them */
        uint64_t words[40];
        for (unsigned k = 0; k < 40; k++)
            words[k] = field(handles, nhandles);
        if (at >= GUEST_BASE && at + sizeof words <= GUEST_BASE + GUEST_BYTES)
            memcpy(guest + (at - GUEST_BASE), words, sizeof words);
        uint64_t rax = next() % 20 ? hc_rax(c) : next();
        NTSTATUS st = hc(rax, at, size);
        if (NT_SUCCESS(st)) {
            ok++;
            /* whatever handle came back is a handle to try again */
            if (at >= GUEST_BASE && at + sizeof words <= GUEST_BASE + GUEST_BYTES)
                for (unsigned k = 0; k < size / 8; k++) {
                    uint64_t w;
                    memcpy(&w, guest + (at - GUEST_BASE) + 8 * k, 8);
                    if (w >> 48)
                        handles[nhandles++ % 64] = w;
                }
            if (nhandles > 64)
                nhandles = 64;
        }
        /* after every call: the hypervisor's books balance */
        struct ddi_counts counts = ddi_provider_counts();
        if (sim_pool(s)->in_use != baseline + counts.table_pages)
            fail_msg("call %u: pool has %u pages in use, %u + %u expected", i, sim_pool(s)->in_use, baseline,
                     counts.table_pages);
    }
    struct hc_server_stats st = hc_server_stats();
    struct hc_stats_block books;
    memcpy(guest, &(struct hc_stats_block){0}, sizeof books);
    assert_int_equal(hc(hc_rax(HC_STATS), GUEST_BASE, sizeof books), STATUS_SUCCESS);
    memcpy(&books, guest, sizeof books);
    struct ddi_counts now = ddi_provider_counts();
    assert_int_equal(books.domains, now.domains);
    assert_int_equal(books.table_pages, now.table_pages);
    assert_int_equal(books.pool_in_use, 0); /* this server was given no pool */
    assert_int_equal(books.calls, st.calls + 1);
    printf("hypercalls: 10000 random, %u succeeded, %llu refused before any routine, %u handles seen\n", ok,
           (unsigned long long)st.refused_before_routine, nhandles);
    assert_true(st.refused_before_routine > 1000 && st.refused_before_routine < 9000);

    /* And it still serves: the guest's way, through the shim, a whole flow with DMA. */
    sim_use_hypercalls(s);
    assert_int_equal(ShimIoGetIommuInterfaceEx(2, 0, &ex), STATUS_SUCCESS);
    PIOMMU_DMA_DOMAIN d;
    IOMMU_DMA_DOMAIN_CREATION_FLAGS zero = {.AsUlonglong = 0};
    NTSTATUS created = v2->CreateDomainEx(DomainTypeTranslate, zero, NULL, NULL, &d);
    assert_true(created == STATUS_SUCCESS || created == STATUS_INSUFFICIENT_RESOURCES);
    if (created == STATUS_SUCCESS) {
        PIOMMU_DMA_DEVICE dev;
        DEVICE_OBJECT pdo;
        sim_device_object(s, 1, &pdo);
        if (v2->CreateDevice(&pdo, NULL, &dev) == STATUS_SUCCESS && v2->AttachDeviceEx(d, dev) == STATUS_SUCCESS) {
            IOMMU_MAP_PHYSICAL_ADDRESS m = {.MapType = MapPhysicalAddressTypeContiguousRange};
            m.ContiguousRange.Base.QuadPart = (LONGLONG)sim_ram_page(s, 77);
            m.ContiguousRange.Size = PAGE_SIZE;
            IOMMU_DMA_LOGICAL_ADDRESS at = 0x3000000, out;
            OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &m, &at, NULL, NULL, &out));
            assert_int_equal(sim_dma(s, 1, at + 4, false).pa, sim_ram_page(s, 77) + 4);
            OK(v2->UnmapLogicalRange(d, at, 1));
            OK(v2->DetachDeviceEx(dev));
            OK(v2->DeleteDevice(dev));
        }
        OK(v2->DeleteDomain(d));
    }
    struct ddi_counts counts = ddi_provider_counts();
    assert_int_equal(sim_pool(s)->in_use, baseline + counts.table_pages);
    free(guest);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_abi_refusals),           T(test_lists_are_checked), T(test_tokens_are_ids),
        T(test_one_hypercall_per_call), T(test_random_hypercalls), T(test_inject),
        T(test_host_calls_refused_without_host_call), T(test_host_calls_served),
    };
    return cmocka_run_group_tests_name("hypercalls", tests, NULL, NULL);
}
