/* The rules of section 4 of the DDI reference (../shared/spec/ddi-reference.md) that apply to
 * V1 and V2, one test per rule or group of rules, named by their numbers. Each checks the
 * status and the state afterwards; translations and faults are checked with DMA through the
 * simulated VT-d units (tests/ddi/sim.h). Where the reference leaves a code open, the test
 * checks the choice recorded in docs/ddi.md. */
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "test_util.h"

/* Built three times: calling the provider directly, (DDI_THROUGH_HYPERCALLS) as a guest
 * driver does, through the shim, one hypercall per call, and the hypervisor's server, and
 * (DDI_CACHE_MODEL) directly on units that do not snoop their table walks, so every
 * translation checked is what the project wrote back to memory (sim.h cache_model). */
#ifdef DDI_THROUGH_HYPERCALLS
#include "ddi/hc_server.h"
#include "ddi/shim.h"
#define GET_INTERFACE_EX ShimIoGetIommuInterfaceEx
#define GET_INTERFACE ShimIoGetIommuInterface
#define DELIVER_FAULTS() shim_poll()
#define SET_DMA_GUARD(on) (hc_set_dma_guard(on), shim_poll())
#define USE_PATH(s) sim_use_hypercalls(s)
#else
#define GET_INTERFACE_EX IoGetIommuInterfaceEx
#define GET_INTERFACE IoGetIommuInterface
#define DELIVER_FAULTS() ddi_dispatch_faults()
#define SET_DMA_GUARD(on) ddi_set_dma_guard(on)
#define USE_PATH(s) ((void)(s))
#endif

static struct sim *s;
static DMA_IOMMU_INTERFACE_EX ex;
static DMA_IOMMU_INTERFACE_V2 *v2;
static DMA_IOMMU_INTERFACE v1;

/* The platform every test starts from (and the one a test changes). */
static struct sim_config base_config(void)
{
    struct sim_config cfg = sim_default_config();
#ifdef DDI_CACHE_MODEL
    cfg.cache_model = true;
#endif
    return cfg;
}

static int setup(void **state)
{
    (void)state;
    struct sim_config cfg = base_config();
    s = sim_create(&cfg);
    USE_PATH(s);
    assert_int_equal(GET_INTERFACE_EX(2, 0, &ex), STATUS_SUCCESS);
    v2 = &ex.V2;
    assert_int_equal(GET_INTERFACE(1, &v1), STATUS_SUCCESS);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    /* Every test cleans up after itself: nothing may be left behind. */
    struct ddi_counts c = ddi_provider_counts();
#ifdef DDI_THROUGH_HYPERCALLS
    assert_true(sim_hypercalls(s) > 0); /* the calls did go the guest's way */
#endif
#ifdef DDI_CACHE_MODEL
    /* Every call waited for the write-backs it started; there were some. */
    assert_int_equal(sim_lines_pending(s), 0);
    assert_true(sim_lines_written_back(s) > 0);
#endif
    sim_destroy(s);
    assert_int_equal(c.domains + c.devices + c.tokens + c.callbacks, 0);
    return 0;
}

#define OK(call) assert_int_equal((call), STATUS_SUCCESS)

static PIOMMU_DMA_DOMAIN translate(bool buddy)
{
    IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG cfg = {.LogicalAllocatorType = IommuDmaLogicalAllocatorBuddy, .BuddyAllocatorConfig = {.AddressWidth = 39}};
    IOMMU_DMA_DOMAIN_CREATION_FLAGS flags = {0};
    PIOMMU_DMA_DOMAIN d = NULL;
    OK(v2->CreateDomainEx(DomainTypeTranslate, flags, buddy ? &cfg : NULL, NULL, &d));
    assert_non_null(d);
    return d;
}

static PIOMMU_DMA_DEVICE device(unsigned function)
{
    DEVICE_OBJECT pdo;
    sim_device_object(s, function, &pdo);
    PIOMMU_DMA_DEVICE dev = NULL;
    OK(v2->CreateDevice(&pdo, NULL, &dev));
    return dev;
}

static IOMMU_MAP_PHYSICAL_ADDRESS range(uint64_t pa, uint64_t size)
{
    IOMMU_MAP_PHYSICAL_ADDRESS m = {.MapType = MapPhysicalAddressTypeContiguousRange};
    m.ContiguousRange.Base.QuadPart = (LONGLONG)pa;
    m.ContiguousRange.Size = size;
    return m;
}

static void dma_reaches(unsigned fn, uint64_t iova, bool write, uint64_t pa)
{
    struct vtd_model_result r = sim_dma(s, fn, iova, write);
    if (!r.ok || r.pa != pa)
        fail_msg("function %u %s 0x%lx: %s 0x%lx (reason %u), want 0x%lx", fn, write ? "write" : "read",
                 (unsigned long)iova, r.ok ? "reached" : "faulted", (unsigned long)r.pa, r.reason, (unsigned long)pa);
}

static void dma_faults(unsigned fn, uint64_t iova, bool write)
{
    struct vtd_model_result r = sim_dma(s, fn, iova, write);
    if (r.ok)
        fail_msg("function %u %s 0x%lx reached 0x%lx, want a fault", fn, write ? "write" : "read",
                 (unsigned long)iova, (unsigned long)r.pa);
    DELIVER_FAULTS(); /* clears the unit's record for the next fault */
}

/* ---- 4.1 interface acquisition ---- */

static void test_A1_A2_A7_sizes_and_canary(void **state)
{
    (void)state;
    for (ULONG version = 1; version <= 2; version++) {
        uint8_t buf[sizeof(DMA_IOMMU_INTERFACE_EX) + 16];
        memset(buf, 0xcc, sizeof buf);
        PDMA_IOMMU_INTERFACE_EX e = (PDMA_IOMMU_INTERFACE_EX)buf;
        OK(GET_INTERFACE_EX(version, 0, e));
        size_t size = version == 1 ? DMA_IOMMU_INTERFACE_EX_V1_SIZE : DMA_IOMMU_INTERFACE_EX_V2_SIZE;
        assert_int_equal(e->Size, size);
        assert_int_equal(e->Version, version);
        for (size_t i = size; i < sizeof buf; i++) /* A2: nothing beyond the version's size */
            assert_int_equal(buf[i], 0xcc);
        void *const *slot = (void *const *)&e->V1;
        for (size_t i = 0; i < (size - offsetof(DMA_IOMMU_INTERFACE_EX, V1)) / sizeof(void *); i++)
            assert_non_null(slot[i]);
        assert_int_equal(*(ULONG *)(buf + offsetof(DMA_IOMMU_INTERFACE_EX, Version) + 4), 0);
    }
    /* A7: the V1 table is the legacy one without Version */
    assert_ptr_equal(ex.V2.DeleteDomain, v1.DeleteDomain);
    DMA_IOMMU_INTERFACE_EX e1;
    OK(GET_INTERFACE_EX(1, 0, &e1));
    assert_memory_equal(&e1.V1, &v1.CreateDomain, sizeof e1.V1);
}

static void test_A3_A4_A5_A6_bad_requests(void **state)
{
    (void)state;
    DMA_IOMMU_INTERFACE_EX e;
    memset(&e, 0x5a, sizeof e);
    DMA_IOMMU_INTERFACE_EX before = e;
    assert_int_equal(GET_INTERFACE_EX(0, 0, &e), STATUS_INVALID_PARAMETER_1);
    assert_int_equal(GET_INTERFACE_EX(3, 0, &e), STATUS_INVALID_PARAMETER_1); /* no PASID yet */
    assert_int_equal(GET_INTERFACE_EX(4, 0, &e), STATUS_INVALID_PARAMETER_1);
    assert_int_equal(GET_INTERFACE_EX(2, 1, &e), STATUS_INVALID_PARAMETER_3);
    assert_memory_equal(&e, &before, sizeof e);
    assert_int_equal(GET_INTERFACE_EX(2, 0, NULL), STATUS_INVALID_PARAMETER_2);
    DMA_IOMMU_INTERFACE l;
    assert_int_equal(GET_INTERFACE(2, &l), STATUS_INVALID_PARAMETER_1);
    assert_int_equal(GET_INTERFACE(1, NULL), STATUS_INVALID_PARAMETER_2);
    assert_int_equal(v1.Version, 1);
}

static void test_A10_F1_A11_not_on_x64(void **state)
{
    (void)state;
    PIOMMU_DMA_DEVICE dev = device(0);
    DEVICE_FAULT_CONFIGURATION cfg = {0};
    assert_int_equal(v2->SetDeviceFaultReportingEx(dev, 0, TRUE, &cfg), STATUS_NOT_IMPLEMENTED);
    assert_int_equal(v2->SetDeviceFaultReportingEx(NULL, 7, FALSE, NULL), STATUS_NOT_IMPLEMENTED);
    DEVICE_OBJECT pdo;
    sim_device_object(s, 0, &pdo);
    INPUT_MAPPING_ELEMENT buf[4];
    ULONG len = 0;
    assert_int_equal(v2->QueryInputMappings(&pdo, buf, sizeof buf, &len), STATUS_NOT_SUPPORTED);
    OK(v2->DeleteDevice(dev));
}

/* ---- 4.2 domains ---- */

static void test_D1_C6_D11_v1_domains(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN os, caller;
    OK(v1.CreateDomain(TRUE, &os));
    OK(v1.CreateDomain(FALSE, &caller));
    MDL *mdl = sim_mdl(s, (unsigned[]){7}, 1);
    OK(v1.MapLogicalRange(os, IOMMU_ACCESS_READ, mdl, 0x10000));
    assert_int_equal(v1.MapLogicalRange(caller, IOMMU_ACCESS_READ, mdl, 0x10000), STATUS_INVALID_PARAMETER_1);
    assert_int_equal(v1.UnmapLogicalRange(caller, 0x10000, 1), STATUS_INVALID_PARAMETER_1);
    assert_int_equal(v1.MapIdentityRange(caller, IOMMU_ACCESS_READ, mdl), STATUS_INVALID_PARAMETER_1);
    assert_int_equal(v1.UnmapIdentityRange(caller, mdl), STATUS_INVALID_PARAMETER_1);
    assert_int_equal(v1.FlushDomain(os), STATUS_INVALID_PARAMETER_1);
    OK(v1.FlushDomain(caller));
    DEVICE_OBJECT pdo;
    sim_device_object(s, 0, &pdo);
    OK(v1.AttachDevice(os, &pdo, 0, 1));
    dma_reaches(0, 0x10008, false, sim_ram_page(s, 7) + 8);
    dma_faults(0, 0x10008, true); /* read-only */
    OK(v1.DetachDevice(os, &pdo, 0));
    OK(v1.UnmapLogicalRange(os, 0x10000, 1));
    free(mdl);
    OK(v1.DeleteDomain(os));
    OK(v1.DeleteDomain(caller)); /* D11 */
}

static void test_D2_D5_D6_D8_create_ex_arguments(void **state)
{
    (void)state;
    IOMMU_DMA_DOMAIN_CREATION_FLAGS zero = {0}, one = {.AsUlonglong = 1};
    PIOMMU_DMA_DOMAIN d = (PIOMMU_DMA_DOMAIN)0x1;
    assert_int_equal(v2->CreateDomainEx(DomainTypeMax, zero, NULL, NULL, &d), STATUS_INVALID_PARAMETER_1);
    assert_int_equal(v2->CreateDomainEx((IOMMU_DMA_DOMAIN_TYPE)77, zero, NULL, NULL, &d), STATUS_INVALID_PARAMETER_1);
    assert_int_equal(v2->CreateDomainEx(DomainTypeTranslate, one, NULL, NULL, &d), STATUS_INVALID_PARAMETER_2);
    IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG bad = {.LogicalAllocatorType = IommuDmaLogicalAllocatorMax, .BuddyAllocatorConfig = {.AddressWidth = 39}};
    assert_int_equal(v2->CreateDomainEx(DomainTypeTranslate, zero, &bad, NULL, &d), STATUS_INVALID_PARAMETER_1);
    IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG narrow = {.LogicalAllocatorType = IommuDmaLogicalAllocatorBuddy, .BuddyAllocatorConfig = {.AddressWidth = 12}};
    assert_int_equal(v2->CreateDomainEx(DomainTypeTranslate, zero, &narrow, NULL, &d), STATUS_INVALID_PARAMETER_3);
    assert_int_equal(v2->CreateDomainEx(DomainTypeTranslate, zero, NULL, NULL, NULL), STATUS_INVALID_PARAMETER_5);
    assert_ptr_equal(d, (PIOMMU_DMA_DOMAIN)0x1); /* untouched on failure */
    assert_int_equal(ddi_provider_counts().domains, 0);
    OK(v2->CreateDomainEx(DomainTypeTranslate, zero, NULL, NULL, &d)); /* D2 */
    OK(v2->DeleteDomain(d));
}

static void test_D3_D7_types_not_offered(void **state)
{
    (void)state;
    IOMMU_DMA_DOMAIN_CREATION_FLAGS zero = {.AsUlonglong = 0};
    PIOMMU_DMA_DOMAIN d;
    assert_int_equal(v2->CreateDomainEx(DomainTypeUnmanaged, zero, NULL, NULL, &d), STATUS_NOT_SUPPORTED);
    assert_int_equal(v2->CreateDomainEx(DomainTypeTranslateS1, zero, NULL, NULL, &d), STATUS_NOT_SUPPORTED);
    IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG buddy = {.LogicalAllocatorType = IommuDmaLogicalAllocatorBuddy, .BuddyAllocatorConfig = {.AddressWidth = 39}};
    assert_int_equal(v2->CreateDomainEx(DomainTypePassThrough, zero, &buddy, NULL, &d), STATUS_INVALID_PARAMETER);
    IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG none = {.LogicalAllocatorType = IommuDmaLogicalAllocatorNone, .BuddyAllocatorConfig = {.AddressWidth = 0}};
    OK(v2->CreateDomainEx(DomainTypePassThrough, zero, &none, NULL, &d));
    OK(v2->DeleteDomain(d));
}

static void test_D9_D10_reserved_regions(void **state)
{
    (void)state;
    IOMMU_DMA_DOMAIN_CREATION_FLAGS zero = {.AsUlonglong = 0};
    IOMMU_DMA_RESERVED_REGION second = {NULL, sim_ram_page(s, 20), 2, FALSE};
    IOMMU_DMA_RESERVED_REGION first = {&second, sim_ram_page(s, 10), 3, TRUE};
    IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG buddy = {.LogicalAllocatorType = IommuDmaLogicalAllocatorBuddy, .BuddyAllocatorConfig = {.AddressWidth = 39}};
    PIOMMU_DMA_DOMAIN d;
    OK(v2->CreateDomainEx(DomainTypeTranslate, zero, &buddy, &first, &d));
    PIOMMU_DMA_DEVICE dev = device(0);
    OK(v2->AttachDeviceEx(d, dev));
    dma_reaches(0, sim_ram_page(s, 12) + 5, true, sim_ram_page(s, 12) + 5); /* mapped RW, identity */
    dma_faults(0, sim_ram_page(s, 20), false);                              /* only reserved */
    /* the allocator never hands out reserved ranges */
    IOMMU_MAP_PHYSICAL_ADDRESS m = range(sim_ram_page(s, 1), 1u << 20);
    IOMMU_DMA_LOGICAL_ADDRESS min = sim_ram_page(s, 8), max = sim_ram_page(s, 24) - 1, out = 0;
    assert_int_equal(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &m, NULL, &min, &max, &out),
                     STATUS_INVALID_PARAMETER_MIX);
    OK(v2->DetachDeviceEx(dev));
    OK(v2->DeleteDevice(dev));
    OK(v2->DeleteDomain(d));
    /* D10: a bad region fails the creation and leaves nothing */
    uint32_t pages = sim_pool(s)->in_use;
    IOMMU_DMA_RESERVED_REGION bad = {NULL, sim_ram_page(s, 30) + 1, 1, TRUE};
    first.RegionNext = &bad;
    assert_int_equal(v2->CreateDomainEx(DomainTypeTranslate, zero, NULL, &first, &d), STATUS_INVALID_PARAMETER_4);
    assert_int_equal(ddi_provider_counts().domains, 0);
    assert_int_equal(sim_pool(s)->in_use, pages);
    /* and the project's memory can never be a region to map */
    IOMMU_DMA_RESERVED_REGION mine = {NULL, sim_protected_base(s), 1, TRUE};
    assert_int_equal(v2->CreateDomainEx(DomainTypeTranslate, zero, NULL, &mine, &d), STATUS_ACCESS_DENIED);
}

static void test_D12_D13_D14_delete(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN d = translate(false);
    PIOMMU_DMA_DEVICE dev = device(0);
    OK(v2->AttachDeviceEx(d, dev));
    assert_int_equal(v2->DeleteDomain(d), STATUS_RESOURCE_IN_USE); /* D12 */
    IOMMU_MAP_PHYSICAL_ADDRESS m = range(sim_ram_page(s, 3), PAGE_SIZE);
    IOMMU_DMA_LOGICAL_ADDRESS at = 0x5000, out;
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &m, &at, NULL, NULL, &out));
    dma_reaches(0, 0x5000, false, sim_ram_page(s, 3)); /* intact after the refusal */
    OK(v2->DetachDeviceEx(dev));
    PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN token;
    IOMMU_DMA_LOGICAL_ADDRESS tat = 0x100000;
    OK(v2->ReserveLogicalAddressRange(d, 0x10000, &tat, NULL, NULL, &token));
    assert_int_equal(v2->DeleteDomain(d), STATUS_RESOURCE_IN_USE); /* D14: a token is alive */
    OK(v2->FreeReservedLogicalAddressRange(token));
    uint32_t before = sim_pool(s)->in_use;
    OK(v2->DeleteDomain(d)); /* D13: with a live mapping */
    assert_true(sim_pool(s)->in_use < before);
    assert_int_equal(v2->DeleteDomain(d), STATUS_INVALID_PARAMETER_1); /* stale */
    OK(v2->DeleteDevice(dev));
}

/* D4: out of domain slots, or out of table memory, gives STATUS_INSUFFICIENT_RESOURCES and
 * leaves nothing behind. */
static void test_D4_out_of_resources(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN made[DDI_MAX_DOMAINS + 1];
    IOMMU_DMA_DOMAIN_CREATION_FLAGS zero = {.AsUlonglong = 0};
    unsigned n = 0;
    NTSTATUS st;
    while ((st = v2->CreateDomainEx(DomainTypePassThrough, zero, NULL, NULL, &made[n])) == STATUS_SUCCESS)
        assert_true(++n <= DDI_MAX_DOMAINS);
    assert_int_equal(st, STATUS_INSUFFICIENT_RESOURCES);
    assert_true(n > 0);
    assert_int_equal(ddi_provider_counts().domains, n);
    OK(v2->DeleteDomain(made[--n])); /* a freed slot can be used again */
    OK(v2->CreateDomainEx(DomainTypePassThrough, zero, NULL, NULL, &made[n++]));
    while (n)
        OK(v2->DeleteDomain(made[--n]));

    uint32_t pages = sim_pool(s)->in_use;
    PIOMMU_DMA_DOMAIN d = (PIOMMU_DMA_DOMAIN)0x1;
    sim_pool(s)->fail_at = sim_pool(s)->attempts + 1; /* the root table */
    assert_int_equal(v2->CreateDomainEx(DomainTypeTranslate, zero, NULL, NULL, &d), STATUS_INSUFFICIENT_RESOURCES);
    sim_pool(s)->fail_at = sim_pool(s)->attempts + 1;
    assert_int_equal(v1.CreateDomain(TRUE, &d), STATUS_INSUFFICIENT_RESOURCES);
    sim_pool(s)->fail_at = 0;
    assert_ptr_equal(d, (PIOMMU_DMA_DOMAIN)0x1);
    assert_int_equal(ddi_provider_counts().domains, 0);
    assert_int_equal(sim_pool(s)->in_use, pages);
}

/* ---- 4.3 caller-managed ---- */

static void test_C1_C2_C3_C4_C5_C7_configure_and_flush(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN os, caller, ext = translate(false);
    OK(v1.CreateDomain(TRUE, &os));
    OK(v1.CreateDomain(FALSE, &caller));
    DOMAIN_CONFIGURATION x64 = {.Type = DomainConfigurationX64};
    DOMAIN_CONFIGURATION invalid = {.Type = DomainConfigurationInvalid};
    assert_int_equal(v1.ConfigureDomain(os, &x64), STATUS_INVALID_PARAMETER_1);
    assert_int_equal(v2->ConfigureDomain(ext, &x64), STATUS_INVALID_PARAMETER_1);
    assert_int_equal(v1.ConfigureDomain(caller, &x64), STATUS_NOT_SUPPORTED);
    assert_int_equal(v1.ConfigureDomain(caller, &invalid), STATUS_INVALID_PARAMETER_2);
    assert_int_equal(v1.ConfigureDomain(caller, NULL), STATUS_INVALID_PARAMETER_2);
    /* C4: never configured, so a device in it reaches nothing */
    DEVICE_OBJECT pdo;
    sim_device_object(s, 1, &pdo);
    assert_int_equal(v1.AttachDevice(caller, &pdo, 0, 1), STATUS_ACCESS_DENIED); /* Unmanaged is not offered */
    assert_int_equal(v2->FlushDomainByVaList(caller, TRUE, 2, NULL), STATUS_INVALID_PARAMETER_4);
    ULONGLONG vas[2] = {0x1000, 0x2000};
    OK(v2->FlushDomainByVaList(caller, TRUE, 2, vas));
    assert_int_equal(v2->FlushDomainByVaList(os, TRUE, 2, vas), STATUS_INVALID_PARAMETER_1);
    /* C7: on an OS-managed domain the flushes are refused and the mappings stay */
    MDL *mdl = sim_mdl(s, (unsigned[]){9}, 1);
    OK(v1.MapLogicalRange(os, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, mdl, 0x20000));
    OK(v1.AttachDevice(os, &pdo, 0, 1));
    assert_int_equal(v1.FlushDomain(os), STATUS_INVALID_PARAMETER_1);
    assert_int_equal(v2->FlushDomainByVaList(os, FALSE, 2, vas), STATUS_INVALID_PARAMETER_1);
    dma_reaches(1, 0x20010, true, sim_ram_page(s, 9) + 0x10);
    OK(v1.DetachDevice(os, &pdo, 0));
    OK(v1.UnmapLogicalRange(os, 0x20000, 1));
    free(mdl);
    OK(v1.DeleteDomain(os));
    OK(v1.DeleteDomain(caller));
    OK(v2->DeleteDomain(ext));
}

/* ---- 4.4 logical mapping ---- */

static void test_M1_M2_M16_v1_arguments(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN d;
    OK(v1.CreateDomain(TRUE, &d));
    /* Three frames: a two-page buffer that starts 0x10 into a page spans three. */
    MDL *mdl = sim_mdl(s, (unsigned[]){4, 5, 6}, 3);
    mdl->ByteCount = 0x2000;
    mdl->ByteOffset = 0x10;
    assert_int_equal(v1.MapLogicalRange(d, IOMMU_ACCESS_READ, mdl, 0x1000), STATUS_INVALID_PARAMETER_3);
    mdl->ByteOffset = 0;
    mdl->ByteCount = 0x1800;
    assert_int_equal(v1.MapLogicalRange(d, IOMMU_ACCESS_READ, mdl, 0x1000), STATUS_INVALID_PARAMETER_3);
    mdl->ByteCount = 0x2000;
    assert_int_equal(v1.MapLogicalRange(d, IOMMU_ACCESS_READ, mdl, 0x1010), STATUS_INVALID_PARAMETER_4);
    assert_int_equal(v1.MapLogicalRange(d, 4, mdl, 0x1000), STATUS_INVALID_PARAMETER_2); /* M19 choice */
    assert_int_equal(v1.MapLogicalRange(d, 0, mdl, 0x1000), STATUS_INVALID_PARAMETER_2);
    OK(v1.MapLogicalRange(d, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, mdl, 0x1000));
    assert_int_equal(v1.UnmapLogicalRange(d, 0x1010, 2), STATUS_INVALID_PARAMETER_2);
    PIOMMU_DMA_DOMAIN pt;
    IOMMU_DMA_DOMAIN_CREATION_FLAGS zero = {.AsUlonglong = 0};
    OK(v2->CreateDomainEx(DomainTypePassThrough, zero, NULL, NULL, &pt));
    assert_int_equal(v1.UnmapLogicalRange(pt, 0x1000, 2), STATUS_INVALID_PARAMETER_1); /* M16 */
    assert_int_equal(v1.MapLogicalRange(pt, IOMMU_ACCESS_READ, mdl, 0x1000), STATUS_INVALID_PARAMETER_1);
    OK(v1.UnmapLogicalRange(d, 0x1000, 2));
    free(mdl);
    OK(v1.DeleteDomain(d));
    OK(v1.DeleteDomain(pt));
}

static void test_M3_M4_M5_M7_M8_M13_ex_explicit(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN d = translate(false), pt;
    IOMMU_DMA_DOMAIN_CREATION_FLAGS zero = {.AsUlonglong = 0};
    OK(v2->CreateDomainEx(DomainTypePassThrough, zero, NULL, NULL, &pt));
    IOMMU_MAP_PHYSICAL_ADDRESS m = range(sim_ram_page(s, 9), 2 * PAGE_SIZE);
    IOMMU_DMA_LOGICAL_ADDRESS at = 0x40000, min = 0x80000000, max = 0x80001fff, out = 0xdead;
    assert_int_equal(v2->MapLogicalRangeEx(pt, IOMMU_ACCESS_READ, &m, &at, NULL, NULL, &out), STATUS_INVALID_PARAMETER_1);
    IOMMU_MAP_PHYSICAL_ADDRESS bad = range(sim_ram_page(s, 9) + 8, PAGE_SIZE);
    assert_int_equal(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &bad, &at, NULL, NULL, &out), STATUS_INVALID_PARAMETER_3);
    bad = range(sim_ram_page(s, 9), 0);
    assert_int_equal(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &bad, &at, NULL, NULL, &out), STATUS_INVALID_PARAMETER_3);
    bad.MapType = MapPhysicalAddressTypeMax;
    assert_int_equal(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &bad, &at, NULL, NULL, &out), STATUS_INVALID_PARAMETER_3);
    assert_int_equal(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &m, NULL, NULL, NULL, &out), STATUS_NOT_SUPPORTED); /* M5 */
    IOMMU_DMA_LOGICAL_ADDRESS odd = 0x40010;
    assert_int_equal(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &m, &odd, NULL, NULL, &out), STATUS_INVALID_PARAMETER_4);
    assert_int_equal(out, 0xdead); /* M13 */
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &m, &at, &min, &max, &out)); /* M8: ignored */
    assert_int_equal(out, at);
    PIOMMU_DMA_DEVICE dev = device(1);
    OK(v2->AttachDeviceEx(d, dev));
    dma_reaches(1, 0x41004, false, sim_ram_page(s, 10) + 4);
    OK(v2->DetachDeviceEx(dev));
    OK(v2->DeleteDevice(dev));
    OK(v2->UnmapLogicalRange(d, at, 2));
    OK(v2->DeleteDomain(d));
    OK(v2->DeleteDomain(pt));
}

static void test_M6_M9_M10_M11_M12_M15_M17_buddy(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN d = translate(true);
    PIOMMU_DMA_DEVICE dev = device(0);
    OK(v2->AttachDeviceEx(d, dev));
    IOMMU_MAP_PHYSICAL_ADDRESS m12 = range(sim_ram_page(s, 40), 3 * PAGE_SIZE);
    IOMMU_DMA_LOGICAL_ADDRESS at = 0x40000, out = 0, prev = 0;
    assert_int_equal(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &m12, &at, NULL, NULL, &out), STATUS_NOT_SUPPORTED);
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &m12, NULL, NULL, NULL, &out));
    assert_int_equal(out % 0x4000, 0); /* M11: 12 KiB -> a 16 KiB-aligned block */
    IOMMU_DMA_LOGICAL_ADDRESS first = out;
    IOMMU_MAP_PHYSICAL_ADDRESS m4 = range(sim_ram_page(s, 50), PAGE_SIZE);
    for (int i = 0; i < 4; i++) {
        OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_WRITE, &m4, NULL, NULL, NULL, &out));
        assert_true(out > prev && out < (1u << 20)); /* low, ascending */
        prev = out;
    }
    IOMMU_DMA_LOGICAL_ADDRESS min = 0x7000000, max = 0x7003fff;
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &m12, NULL, &min, &max, &out)); /* M9 */
    assert_true(out >= min && out + 0x4000 - 1 <= max);
    max = 0x7004fff;
    min = 0x7001000;
    assert_int_equal(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &m12, NULL, &min, &max, &out),
                     STATUS_INVALID_PARAMETER_MIX); /* M10: too small once aligned */
    min = 1ull << 39;
    max = UINT64_MAX;
    assert_int_equal(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &m4, NULL, &min, &max, &out),
                     STATUS_INVALID_PARAMETER_MIX); /* M12: beyond the width */
    /* M15: a failed map gives its block back */
    IOMMU_MAP_PHYSICAL_ADDRESS mine = range(sim_protected_base(s), PAGE_SIZE);
    assert_int_equal(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &mine, NULL, NULL, NULL, &out), STATUS_ACCESS_DENIED);
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &m4, NULL, NULL, NULL, &out));
    assert_int_equal(out, prev + PAGE_SIZE);
    /* M17: after unmap DMA faults and the address is handed out again */
    dma_reaches(0, first + 0x2010, false, sim_ram_page(s, 42) + 0x10);
    OK(v2->UnmapLogicalRange(d, first, 3));
    dma_faults(0, first + 0x2010, false);
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &m12, NULL, NULL, NULL, &out));
    assert_int_equal(out, first);
    OK(v2->DetachDeviceEx(dev));
    OK(v2->DeleteDevice(dev));
    OK(v2->DeleteDomain(d));
}

static void test_M14_overlap_changes_nothing(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN d = translate(false);
    PIOMMU_DMA_DEVICE dev = device(0);
    OK(v2->AttachDeviceEx(d, dev));
    IOMMU_MAP_PHYSICAL_ADDRESS a = range(sim_ram_page(s, 60), 2 * PAGE_SIZE), b = range(sim_ram_page(s, 70), 4 * PAGE_SIZE);
    IOMMU_DMA_LOGICAL_ADDRESS at = 0x202000, over = 0x200000, out;
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &a, &at, NULL, NULL, &out));
    uint32_t pages = sim_pool(s)->in_use;
    NTSTATUS st = v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &b, &over, NULL, NULL, &out);
    assert_false(NT_SUCCESS(st));
    assert_int_equal(st, STATUS_RESOURCE_IN_USE); /* docs/ddi.md: for the reference's STATUS_IN_USE */
    assert_int_equal(sim_pool(s)->in_use, pages);
    dma_faults(0, 0x200000, false); /* no partial new mapping */
    dma_reaches(0, 0x202000, false, sim_ram_page(s, 60));
    OK(v2->DetachDeviceEx(dev));
    OK(v2->DeleteDevice(dev));
    OK(v2->DeleteDomain(d));
}

/* M18 leaves unmapping what was never mapped, or part of an allocator range, open. Choice
 * (docs/ddi.md): pages that are not mapped are skipped and the call succeeds; a part of an
 * allocator range unmaps exactly those pages, and the range goes back to the allocator only
 * when the whole of it has been unmapped. */
static void test_M18_unmap_unmapped_and_part(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN d = translate(true);
    PIOMMU_DMA_DEVICE dev = device(0);
    OK(v2->AttachDeviceEx(d, dev));
    uint32_t pages = sim_pool(s)->in_use;
    OK(v2->UnmapLogicalRange(d, 0x40000000, 4)); /* never mapped */
    assert_int_equal(sim_pool(s)->in_use, pages);
    IOMMU_MAP_PHYSICAL_ADDRESS m = range(sim_ram_page(s, 40), 4 * PAGE_SIZE);
    IOMMU_DMA_LOGICAL_ADDRESS out = 0;
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &m, NULL, NULL, NULL, &out));
    OK(v2->UnmapLogicalRange(d, out + PAGE_SIZE, 1)); /* the second page only */
    dma_reaches(0, out, false, sim_ram_page(s, 40));
    dma_faults(0, out + PAGE_SIZE, false);
    dma_reaches(0, out + 2 * PAGE_SIZE, false, sim_ram_page(s, 42));
    /* the allocator has not taken the range back: a new map lands elsewhere */
    IOMMU_DMA_LOGICAL_ADDRESS other = 0;
    IOMMU_MAP_PHYSICAL_ADDRESS one = range(sim_ram_page(s, 50), PAGE_SIZE);
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &one, NULL, NULL, NULL, &other));
    assert_true(other < out || other >= out + 4 * PAGE_SIZE);
    dma_reaches(0, out + 3 * PAGE_SIZE, false, sim_ram_page(s, 43));
    OK(v2->UnmapLogicalRange(d, other, 1));
    OK(v2->UnmapLogicalRange(d, out, 4)); /* the rest, with the hole in it */
    dma_faults(0, out, false);
    dma_faults(0, out + 3 * PAGE_SIZE, false);
    OK(v2->DetachDeviceEx(dev));
    OK(v2->DeleteDevice(dev));
    OK(v2->DeleteDomain(d));
}

static void test_M19_permissions(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN d = translate(false);
    PIOMMU_DMA_DEVICE dev = device(0);
    OK(v2->AttachDeviceEx(d, dev));
    IOMMU_MAP_PHYSICAL_ADDRESS m = range(sim_ram_page(s, 80), PAGE_SIZE);
    IOMMU_DMA_LOGICAL_ADDRESS r = 0x300000, w = 0x301000, out;
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &m, &r, NULL, NULL, &out));
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_WRITE, &m, &w, NULL, NULL, &out));
    dma_reaches(0, r, false, sim_ram_page(s, 80));
    dma_faults(0, r + 0x100, true);
    dma_reaches(0, w, true, sim_ram_page(s, 80));
    dma_faults(0, w + 0x100, false);
    IOMMU_DMA_LOGICAL_ADDRESS z = 0x302000;
    assert_int_equal(v2->MapLogicalRangeEx(d, 0x8, &m, &z, NULL, NULL, &out), STATUS_INVALID_PARAMETER_2);
    OK(v2->DetachDeviceEx(dev));
    OK(v2->DeleteDevice(dev));
    OK(v2->DeleteDomain(d));
}

/* ---- 4.5 identity ---- */

static void test_I1_I2_I3_I4_I5_I6_identity(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN d = translate(false), buddy = translate(true), pt, caller;
    IOMMU_DMA_DOMAIN_CREATION_FLAGS zero = {.AsUlonglong = 0};
    OK(v2->CreateDomainEx(DomainTypePassThrough, zero, NULL, NULL, &pt));
    OK(v1.CreateDomain(FALSE, &caller));
    IOMMU_MAP_PHYSICAL_ADDRESS m = range(sim_ram_page(s, 90), 2 * PAGE_SIZE), bad = range(sim_ram_page(s, 90), 100);
    OK(v2->MapIdentityRangeEx(pt, IOMMU_ACCESS_READ, &m)); /* I1 */
    OK(v2->UnmapIdentityRangeEx(pt, &m));
    assert_int_equal(v2->MapIdentityRangeEx(caller, IOMMU_ACCESS_READ, &m), STATUS_INVALID_PARAMETER_1); /* I2 */
    assert_int_equal(v2->MapIdentityRangeEx(d, IOMMU_ACCESS_READ, &bad), STATUS_INVALID_PARAMETER_3);    /* I3 */
    assert_int_equal(v2->UnmapIdentityRangeEx(d, &bad), STATUS_INVALID_PARAMETER_2);
    assert_int_equal(v2->MapIdentityRangeEx(buddy, IOMMU_ACCESS_READ, &m), STATUS_NOT_SUPPORTED); /* I4 */
    assert_int_equal(v2->UnmapIdentityRangeEx(buddy, &m), STATUS_NOT_SUPPORTED);
    OK(v2->MapIdentityRangeEx(d, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, &m));
    assert_false(NT_SUCCESS(v2->MapIdentityRangeEx(d, IOMMU_ACCESS_READ, &m))); /* I5 */
    PIOMMU_DMA_DEVICE dev = device(0);
    OK(v2->AttachDeviceEx(d, dev));
    dma_reaches(0, sim_ram_page(s, 91) + 9, true, sim_ram_page(s, 91) + 9); /* I6 */
    OK(v2->UnmapIdentityRangeEx(d, &m));
    dma_faults(0, sim_ram_page(s, 91), false);
    /* V1 forms, with an MDL of scattered pages */
    MDL *mdl = sim_mdl(s, (unsigned[]){95, 97}, 2);
    OK(v1.MapIdentityRange(d, IOMMU_ACCESS_READ, mdl));
    dma_reaches(0, sim_ram_page(s, 97), false, sim_ram_page(s, 97));
    OK(v1.UnmapIdentityRange(d, mdl));
    dma_faults(0, sim_ram_page(s, 95), false);
    mdl->ByteCount = 5;
    assert_int_equal(v1.MapIdentityRange(d, IOMMU_ACCESS_READ, mdl), STATUS_INVALID_PARAMETER_3);
    assert_int_equal(v1.UnmapIdentityRange(d, mdl), STATUS_INVALID_PARAMETER_2);
    free(mdl);
    IOMMU_MAP_PHYSICAL_ADDRESS mine = range(sim_protected_base(s), PAGE_SIZE);
    assert_int_equal(v2->MapIdentityRangeEx(d, IOMMU_ACCESS_READ, &mine), STATUS_ACCESS_DENIED);
    OK(v2->DetachDeviceEx(dev));
    OK(v2->DeleteDevice(dev));
    OK(v2->DeleteDomain(d));
    OK(v2->DeleteDomain(buddy));
    OK(v2->DeleteDomain(pt));
    OK(v1.DeleteDomain(caller));
}

/* ---- 4.6 tokens ---- */

static void test_R1_to_R6_reserve(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN d = translate(false), buddy = translate(true), pt;
    IOMMU_DMA_DOMAIN_CREATION_FLAGS zero = {.AsUlonglong = 0};
    OK(v2->CreateDomainEx(DomainTypePassThrough, zero, NULL, NULL, &pt));
    PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN t = (PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN)0x1;
    IOMMU_DMA_LOGICAL_ADDRESS at = 0x400000, odd = 0x400010;
    assert_int_equal(v2->ReserveLogicalAddressRange(pt, 0x3000, &at, NULL, NULL, &t), STATUS_INVALID_PARAMETER_1);
    assert_null(t); /* R5: NULL on failure */
    assert_int_equal(v2->ReserveLogicalAddressRange(pt, 0x3001, &at, NULL, NULL, &t), STATUS_INVALID_PARAMETER_2);
    assert_int_equal(v2->ReserveLogicalAddressRange(d, 0, &at, NULL, NULL, &t), STATUS_INVALID_PARAMETER_2);
    assert_int_equal(v2->ReserveLogicalAddressRange(d, 0x3000, &odd, NULL, NULL, &t), STATUS_INVALID_PARAMETER_3);
    assert_int_equal(v2->ReserveLogicalAddressRange(d, 0x3000, NULL, NULL, NULL, &t), STATUS_NOT_SUPPORTED);
    assert_int_equal(v2->ReserveLogicalAddressRange(buddy, 0x3000, &at, NULL, NULL, &t), STATUS_NOT_SUPPORTED);
    IOMMU_DMA_LOGICAL_ADDRESS min = 0x1000, max = 0x2fff;
    assert_int_equal(v2->ReserveLogicalAddressRange(buddy, 0x4000, NULL, &min, &max, &t), STATUS_INVALID_PARAMETER_MIX);
    OK(v2->ReserveLogicalAddressRange(d, 0x3000, &at, NULL, NULL, &t));
    assert_int_equal(t->LogicalAddressBase, at);
    assert_int_equal(t->Size, 0x3000);
    PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN t2;
    IOMMU_DMA_LOGICAL_ADDRESS inside = 0x402000;
    assert_int_equal(v2->ReserveLogicalAddressRange(d, 0x1000, &inside, NULL, NULL, &t2), STATUS_RESOURCE_IN_USE); /* R6 */
    IOMMU_MAP_PHYSICAL_ADDRESS m = range(sim_ram_page(s, 2), PAGE_SIZE);
    IOMMU_DMA_LOGICAL_ADDRESS mapped = 0x500000, out;
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &m, &mapped, NULL, NULL, &out));
    assert_int_equal(v2->ReserveLogicalAddressRange(d, 0x2000, &mapped, NULL, NULL, &t2), STATUS_RESOURCE_IN_USE);
    OK(v2->ReserveLogicalAddressRange(buddy, 0x5000, NULL, NULL, NULL, &t2));
    assert_int_equal(t2->LogicalAddressBase % 0x8000, 0);
    OK(v2->FreeReservedLogicalAddressRange(t2));
    OK(v2->FreeReservedLogicalAddressRange(t));
    OK(v2->UnmapLogicalRange(d, mapped, 1));
    OK(v2->DeleteDomain(d));
    OK(v2->DeleteDomain(buddy));
    OK(v2->DeleteDomain(pt));
}

static void test_R7_to_R18_segments(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN d = translate(false);
    PIOMMU_DMA_DEVICE dev = device(0);
    OK(v2->AttachDeviceEx(d, dev));
    PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN t;
    IOMMU_DMA_LOGICAL_ADDRESS at = 0x600000;
    OK(v2->ReserveLogicalAddressRange(d, 0x8000, &at, NULL, NULL, &t));
    IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT seg1, seg2, seg3;
    IOMMU_MAP_PHYSICAL_ADDRESS two = range(sim_ram_page(s, 100), 2 * PAGE_SIZE), one = range(sim_ram_page(s, 110), PAGE_SIZE);
    IOMMU_MAP_PHYSICAL_ADDRESS bad = range(sim_ram_page(s, 100) + 4, PAGE_SIZE);
    assert_int_equal(v2->MapReservedLogicalRange(t, 0x800, IOMMU_ACCESS_READ, &two, &seg1), STATUS_INVALID_PARAMETER_2);
    assert_int_equal(v2->MapReservedLogicalRange(t, 0, IOMMU_ACCESS_READ, &bad, &seg1), STATUS_INVALID_PARAMETER_4);
    assert_int_equal(v2->MapReservedLogicalRange(t, 0x7000, IOMMU_ACCESS_READ, &two, &seg1), STATUS_INVALID_PARAMETER_4); /* R9 */
    /* R13: no allocation, even when the pool would refuse every one */
    sim_pool(s)->fail_at = sim_pool(s)->attempts + 1;
    uint64_t attempts = sim_pool(s)->attempts;
    OK(v2->MapReservedLogicalRange(t, 0x1000, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, &two, &seg1));
    OK(v2->MapReservedLogicalRange(t, 0x4000, IOMMU_ACCESS_READ, &one, &seg2)); /* R11 */
    assert_int_equal(sim_pool(s)->attempts, attempts);
    assert_ptr_equal(seg1.OwningToken, t); /* R12 */
    assert_int_equal(seg1.Offset, 0x1000);
    assert_int_equal(seg1.Size, 0x2000);
    dma_reaches(0, at + 0x2004, true, sim_ram_page(s, 101) + 4);
    dma_reaches(0, at + 0x4000, false, sim_ram_page(s, 110));
    assert_int_equal(v2->MapReservedLogicalRange(t, 0x2000, IOMMU_ACCESS_READ, &one, &seg3), STATUS_RESOURCE_IN_USE); /* R10 */
    dma_reaches(0, at + 0x2004, true, sim_ram_page(s, 101) + 4);
    assert_int_equal(v2->FreeReservedLogicalAddressRange(t), STATUS_RESOURCE_IN_USE); /* R16 */
    uint32_t pages = sim_pool(s)->in_use;
    OK(v2->UnmapReservedLogicalRange(&seg1));
    assert_int_equal(sim_pool(s)->in_use, pages); /* R13: nothing freed */
    assert_int_equal(seg1.Offset, 0);
    assert_int_equal(seg1.Size, 0);
    dma_faults(0, at + 0x2004, true); /* R15 */
    assert_int_equal(v2->UnmapReservedLogicalRange(&seg1), STATUS_INVALID_PARAMETER); /* R14 */
    OK(v2->MapReservedLogicalRange(t, 0x1000, IOMMU_ACCESS_READ, &two, &seg1));
    sim_pool(s)->fail_at = 0;
    OK(v2->UnmapReservedLogicalRange(&seg1));
    OK(v2->UnmapReservedLogicalRange(&seg2));
    OK(v2->FreeReservedLogicalAddressRange(t));
    /* R17/R18: the token is gone; its range can be used again */
    assert_int_equal(v2->MapReservedLogicalRange(t, 0, IOMMU_ACCESS_READ, &one, &seg3), STATUS_UNSUCCESSFUL);
    assert_int_equal(v2->FreeReservedLogicalAddressRange(t), STATUS_INVALID_PARAMETER_1);
    IOMMU_DMA_LOGICAL_ADDRESS out;
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &one, &at, NULL, NULL, &out));
    OK(v2->UnmapLogicalRange(d, at, 1));
    /* a forged token */
    IOMMU_DMA_LOGICAL_ADDRESS_TOKEN fake = {at, 0x8000};
    assert_int_equal(v2->FreeReservedLogicalAddressRange(&fake), STATUS_INVALID_PARAMETER_1);
    seg3.OwningToken = &fake;
    seg3.Offset = 0;
    seg3.Size = PAGE_SIZE;
    assert_int_equal(v2->UnmapReservedLogicalRange(&seg3), STATUS_INVALID_PARAMETER);
    OK(v2->DetachDeviceEx(dev));
    OK(v2->DeleteDevice(dev));
    OK(v2->DeleteDomain(d));
}

static void test_R19_reserve_out_of_memory(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN d = translate(false);
    PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN t = NULL;
    IOMMU_DMA_LOGICAL_ADDRESS at = 0x40000000;
    uint32_t pages = sim_pool(s)->in_use;
    sim_pool(s)->fail_at = sim_pool(s)->attempts + 2;
    assert_int_equal(v2->ReserveLogicalAddressRange(d, 16u << 20, &at, NULL, NULL, &t), STATUS_INSUFFICIENT_RESOURCES);
    sim_pool(s)->fail_at = 0;
    assert_null(t);
    assert_int_equal(sim_pool(s)->in_use, pages);
    assert_int_equal(ddi_provider_counts().tokens, 0);
    OK(v2->DeleteDomain(d));
}

/* ---- 4.7 devices ---- */

static void test_E1_E2_E3_create_device(void **state)
{
    (void)state;
    DEVICE_OBJECT pdo;
    PIOMMU_DMA_DEVICE dev;
    sim_device_object(s, 2, &pdo); /* behind no unit */
    assert_int_equal(v2->CreateDevice(&pdo, NULL, &dev), STATUS_NOT_FOUND);
    sim_device_object(s, 0, &pdo);
    /* E3: an ACPI configuration has no meaning for a PCI function on x64 */
    IOMMU_DEVICE_CREATION_CONFIGURATION cfg = {.ConfigType = IommuDeviceCreationConfigTypeAcpi};
    assert_int_equal(v2->CreateDevice(&pdo, &cfg, &dev), STATUS_INVALID_PARAMETER_2);
    DEVICE_OBJECT junk;
    memset(&junk, 0x77, sizeof junk);
    assert_int_equal(v2->CreateDevice(&junk, NULL, &dev), STATUS_INVALID_PARAMETER_1);
    assert_int_equal(v2->CreateDevice(NULL, NULL, &dev), STATUS_INVALID_PARAMETER_1);
    OK(v2->CreateDevice(&pdo, NULL, &dev));
    PIOMMU_DMA_DEVICE again;
    assert_int_equal(v2->CreateDevice(&pdo, NULL, &again), STATUS_RESOURCE_IN_USE); /* one per function */
    OK(v2->DeleteDevice(dev));
    assert_int_equal(v2->DeleteDevice(dev), STATUS_INVALID_PARAMETER_1); /* stale */
}

static void test_E4_E5_E6_E7_E8_E12_E13_D15_attach(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN a = translate(false), b = translate(false);
    PIOMMU_DMA_DEVICE dev = device(0), other = device(1);
    IOMMU_MAP_PHYSICAL_ADDRESS m = range(sim_ram_page(s, 120), PAGE_SIZE);
    IOMMU_DMA_LOGICAL_ADDRESS at = 0x700000, out;
    OK(v2->MapLogicalRangeEx(a, IOMMU_ACCESS_READ, &m, &at, NULL, NULL, &out));
    assert_int_equal(v2->DetachDeviceEx(dev), STATUS_INVALID_PARAMETER_1); /* E7 */
    OK(v2->AttachDeviceEx(a, dev));
    OK(v2->AttachDeviceEx(a, dev));                                         /* E6 */
    assert_int_equal(v2->AttachDeviceEx(b, dev), STATUS_INVALID_PARAMETER); /* E5 */
    dma_reaches(0, at, false, sim_ram_page(s, 120));
    dma_faults(0, at + 0x1000, false); /* E13 */
    OK(v2->DetachDeviceEx(dev));
    dma_reaches(0, sim_ram_page(s, 5), true, sim_ram_page(s, 5)); /* back in the default domain */
    OK(v2->AttachDeviceEx(b, dev));                               /* E8 */
    dma_faults(0, at, false);
    OK(v2->DetachDeviceEx(dev));
    OK(v2->AttachDeviceEx(a, other)); /* E12: the mappings stayed */
    dma_reaches(1, at, false, sim_ram_page(s, 120));
    OK(v2->DetachDeviceEx(other));
    /* E4, D15: under DMA Guard PassThrough is withdrawn; creating the domain is not
     * device-specific and still succeeds, the attach is what is refused. */
    PIOMMU_DMA_DOMAIN pt;
    IOMMU_DMA_DOMAIN_CREATION_FLAGS zero = {.AsUlonglong = 0};
    SET_DMA_GUARD(true);
    OK(v2->CreateDomainEx(DomainTypePassThrough, zero, NULL, NULL, &pt));
    dma_reaches(0, sim_ram_page(s, 5), true, sim_ram_page(s, 5)); /* refused attach left it where it was */
    assert_int_equal(v2->AttachDeviceEx(pt, dev), STATUS_ACCESS_DENIED);
    SET_DMA_GUARD(false);
    OK(v2->AttachDeviceEx(pt, dev));
    dma_reaches(0, sim_ram_page(s, 9), true, sim_ram_page(s, 9)); /* RAM one to one */
    dma_faults(0, sim_protected_base(s), true);                    /* but never the project's own */
    OK(v2->DetachDeviceEx(dev));
    assert_int_equal(v2->AttachDeviceEx((PIOMMU_DMA_DOMAIN)0x1234, dev), STATUS_INVALID_PARAMETER_1);
    assert_int_equal(v2->AttachDeviceEx(a, (PIOMMU_DMA_DEVICE)0xdead), STATUS_INVALID_PARAMETER_2);
    OK(v2->UnmapLogicalRange(a, at, 1));
    OK(v2->DeleteDevice(dev));
    OK(v2->DeleteDevice(other));
    OK(v2->DeleteDomain(a));
    OK(v2->DeleteDomain(b));
    OK(v2->DeleteDomain(pt));
}

static ULONG last_types;
static unsigned calls;
static PVOID last_context;
static ULONG last_present;
static VOID NTAPI on_change(PIOMMU_INTERFACE_STATE_CHANGE change, PVOID context)
{
    calls++;
    last_types = change->AvailableDomainTypes;
    last_present = change->PresentFields.AsULONG;
    last_context = context;
}

static VOID NTAPI on_change_other(PIOMMU_INTERFACE_STATE_CHANGE change, PVOID context)
{
    (void)change;
    (void)context;
}

static void test_E9_E10_E16_S1_to_S6_S8_callbacks(void **state)
{
    (void)state;
    PIOMMU_DMA_DEVICE dev = device(0);
    ULONG mask = 0;
    v2->QueryAvailableDomainTypes(dev, &mask);
    assert_int_equal(mask, 0x3); /* E16: Translate and PassThrough; nothing else */
    IOMMU_INTERFACE_STATE_CHANGE_FIELDS none = {.AsULONG = 0}, watch = {.AsULONG = 1};
    assert_int_equal(v2->RegisterInterfaceStateChangeCallback(on_change, &calls, dev, &none), STATUS_INVALID_PARAMETER_4);
    calls = 0;
    OK(v2->RegisterInterfaceStateChangeCallback(on_change, &calls, dev, &watch));
    assert_int_equal(calls, 1); /* S2 */
    assert_int_equal(last_types, 0x3);
    assert_int_equal(last_present, 1);
    assert_ptr_equal(last_context, &calls);
    assert_int_equal(v2->RegisterInterfaceStateChangeCallback(on_change_other, NULL, dev, &watch), STATUS_UNSUCCESSFUL);
    assert_int_equal(v2->DeleteDevice(dev), STATUS_RESOURCE_IN_USE); /* E10 */
    SET_DMA_GUARD(true); /* S6 */
    assert_int_equal(calls, 2);
    assert_int_equal(last_types, 0x1);
    v2->QueryAvailableDomainTypes(dev, &mask);
    assert_int_equal(mask, 0x1);
    SET_DMA_GUARD(true); /* no change, no call */
    assert_int_equal(calls, 2);
    assert_int_equal(v2->UnregisterInterfaceStateChangeCallback(on_change_other, dev), STATUS_UNSUCCESSFUL); /* S4 */
    OK(v2->UnregisterInterfaceStateChangeCallback(on_change, dev));
    SET_DMA_GUARD(false);
    assert_int_equal(calls, 2); /* S5 */
    PIOMMU_DMA_DOMAIN d = translate(false);
    OK(v2->AttachDeviceEx(d, dev));
    assert_int_equal(v2->DeleteDevice(dev), STATUS_RESOURCE_IN_USE); /* E9 */
    OK(v2->DetachDeviceEx(dev));
    OK(v2->DeleteDevice(dev));
    OK(v2->DeleteDomain(d));
    mask = 0xff;
    v2->QueryAvailableDomainTypes(dev, &mask); /* stale device: nothing available */
    assert_int_equal(mask, 0);
}

static void test_E14_v1_attach_ids(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN d;
    OK(v1.CreateDomain(TRUE, &d));
    DEVICE_OBJECT pdo, none;
    sim_device_object(s, 0, &pdo);
    sim_device_object(s, 2, &none);
    assert_int_equal(v1.AttachDevice(d, &pdo, 1, 1), STATUS_INVALID_PARAMETER_3);
    assert_int_equal(v1.AttachDevice(d, &pdo, 0, 2), STATUS_INVALID_PARAMETER_4);
    assert_int_equal(v1.AttachDevice(d, &none, 0, 1), STATUS_INVALID_PARAMETER_2);
    OK(v1.AttachDevice(d, &pdo, 0, 1));
    assert_int_equal(v1.DetachDevice(d, &pdo, 1), STATUS_INVALID_PARAMETER_3);
    OK(v1.DetachDevice(d, &pdo, 0));
    assert_int_equal(v1.DetachDevice(d, &pdo, 0), STATUS_INVALID_PARAMETER_2);
    OK(v1.DeleteDomain(d));
}

/* ---- 4.9 fault reporting ---- */

static unsigned faults;
static FAULT_INFORMATION last_fault;
static PVOID fault_context;
static VOID NTAPI on_fault(PVOID context, PFAULT_INFORMATION info)
{
    faults++;
    last_fault = *info;
    fault_context = context;
}

static void test_F2_F3_fault_handler(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN d;
    OK(v1.CreateDomain(TRUE, &d));
    DEVICE_OBJECT pdo;
    sim_device_object(s, 0, &pdo);
    DEVICE_FAULT_CONFIGURATION cfg = {on_fault, &faults};
    assert_int_equal(v1.SetDeviceFaultReporting(&pdo, 0, TRUE, &cfg), STATUS_INVALID_PARAMETER_1); /* not attached */
    OK(v1.AttachDevice(d, &pdo, 0, 1));
    assert_int_equal(v1.SetDeviceFaultReporting(&pdo, 0, TRUE, NULL), STATUS_INVALID_PARAMETER_4);
    OK(v1.SetDeviceFaultReporting(&pdo, 0, TRUE, &cfg));
    faults = 0;
    assert_false(sim_dma(s, 0, 0x9000, true).ok);
    assert_int_equal(DELIVER_FAULTS(), 1);
    assert_int_equal(faults, 1);
    assert_ptr_equal(fault_context, &faults);
    assert_int_equal(last_fault.Type, FaultInformationX64);
    assert_ptr_equal(last_fault.X64.FaultAddress, (PVOID)0x9000);
    assert_int_equal(last_fault.X64.Flags.FaultAddressValid, 1);
    assert_int_equal(last_fault.X64.Type, TranslationFault);
    assert_int_equal(last_fault.X64.IommuBaseAddress, sim_unit(s, 0)->unit.register_base);
    assert_non_null(last_fault.X64.DomainHandle);
    /* another device of the same domain, without reporting: its faults reach no handler */
    DEVICE_OBJECT quiet;
    sim_device_object(s, 1, &quiet);
    OK(v1.AttachDevice(d, &quiet, 0, 1));
    assert_false(sim_dma(s, 1, 0x9000, false).ok);
    assert_int_equal(DELIVER_FAULTS(), 0);
    assert_int_equal(faults, 1);
    OK(v1.DetachDevice(d, &quiet, 0));
    /* every fault of the reporting device is delivered, reads as well as writes. Like QEMU's,
     * the unit drops a fault from a source that still has one waiting to be drained (fault
     * compression), so each DMA here is drained before the next. */
    assert_false(sim_dma(s, 0, 0xb000, false).ok);
    assert_int_equal(DELIVER_FAULTS(), 1);
    assert_false(sim_dma(s, 0, 0xc000, true).ok);
    assert_int_equal(DELIVER_FAULTS(), 1);
    assert_int_equal(faults, 3);
    assert_ptr_equal(last_fault.X64.FaultAddress, (PVOID)0xc000);
    uint64_t compressed = vtd_model_stats(sim_unit_model(s, 0)).faults_compressed;
    assert_false(sim_dma(s, 0, 0xd000, false).ok);
    assert_false(sim_dma(s, 0, 0xe000, false).ok);
    assert_int_equal(DELIVER_FAULTS(), 1);
    assert_ptr_equal(last_fault.X64.FaultAddress, (PVOID)0xd000);
    assert_int_equal(vtd_model_stats(sim_unit_model(s, 0)).faults_compressed, compressed + 1);
    OK(v1.SetDeviceFaultReporting(&pdo, 0, FALSE, NULL)); /* F3 */
    assert_false(sim_dma(s, 0, 0xa000, false).ok);
    assert_int_equal(DELIVER_FAULTS(), 0);
    assert_int_equal(faults, 4); /* none since F3 */
    OK(v1.DetachDevice(d, &pdo, 0));
    OK(v1.DeleteDomain(d));
}

static void test_stale_and_forged_handles(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN d = translate(false);
    OK(v2->DeleteDomain(d));
    PIOMMU_DMA_DOMAIN again = translate(false); /* may reuse the slot: the old handle stays dead */
    IOMMU_MAP_PHYSICAL_ADDRESS m = range(sim_ram_page(s, 1), PAGE_SIZE);
    IOMMU_DMA_LOGICAL_ADDRESS at = 0x1000, out;
    assert_int_equal(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &m, &at, NULL, NULL, &out), STATUS_INVALID_PARAMETER_1);
    const uintptr_t junk[] = {0, 1, 0xffffffffffffffff, 0xd0d0000000000000, 0xd0d000000000ffff, (uintptr_t)&m};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        assert_int_equal(v2->DeleteDomain((PIOMMU_DMA_DOMAIN)junk[i]), STATUS_INVALID_PARAMETER_1);
        assert_int_equal(v2->UnmapLogicalRange((PIOMMU_DMA_DOMAIN)junk[i], 0, 1), STATUS_INVALID_PARAMETER_1);
        assert_int_equal(v2->DetachDeviceEx((PIOMMU_DMA_DEVICE)junk[i]), STATUS_INVALID_PARAMETER_1);
        assert_int_equal(v2->FreeReservedLogicalAddressRange((PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN)junk[i]),
                         STATUS_INVALID_PARAMETER_1);
    }
    OK(v2->DeleteDomain(again));
}

/* ---- guest RAM only (docs/ddi.md: what a domain may map) ---- */

/* Not one of these may be mapped into any domain: the platform's guest RAM is the simulated
 * RAM, [SIM_RAM_BASE, SIM_RAM_END), and nothing else. */
struct not_ram {
    const char *what;
    uint64_t pa, size;
    uint64_t frame; /* a page of it that is not RAM, for frame lists */
};

static unsigned not_ram_list(struct not_ram *out)
{
    unsigned n = 0;
    out[n++] = (struct not_ram){"the VT-d register page", sim_unit_registers(s, 0), PAGE_SIZE, 0};
    out[n++] = (struct not_ram){"the local APIC / MSI window", SIM_MSI_BASE, PAGE_SIZE, 0};
    out[n++] = (struct not_ram){"the IOAPIC", SIM_IOAPIC_BASE, PAGE_SIZE, 0};
    out[n++] = (struct not_ram){"an ECAM page", SIM_ECAM_BASE + 0x18000, PAGE_SIZE, 0}; /* 00:03.0's */
    out[n++] = (struct not_ram){"a PCI BAR (peer to peer)", SIM_BAR_BASE, 4 * PAGE_SIZE, 0};
    out[n++] = (struct not_ram){"the project's memory", sim_protected_base(s), PAGE_SIZE, 0};
    out[n++] = (struct not_ram){"the page past the end of RAM", SIM_RAM_END, PAGE_SIZE, 0};
    out[n++] = (struct not_ram){"a range straddling the end of RAM", SIM_RAM_END - PAGE_SIZE, 2 * PAGE_SIZE, SIM_RAM_END};
    out[n++] = (struct not_ram){"a range straddling the start of RAM", SIM_RAM_BASE - PAGE_SIZE, 2 * PAGE_SIZE, 0};
    out[n++] = (struct not_ram){"page 0", 0, PAGE_SIZE, 0};
    out[n++] = (struct not_ram){"an address far past the end of RAM", 1ull << 46, PAGE_SIZE, 0};
    for (unsigned i = 0; i < n; i++)
        if (!out[i].frame)
            out[i].frame = out[i].pa;
    return n;
}

/* What a refused call must leave as it was. */
struct books {
    struct ddi_counts counts;
    uint32_t pool_pages;
};

static struct books books_now(void)
{
    return (struct books){ddi_provider_counts(), sim_pool(s)->in_use};
}

static void books_unchanged(const struct books *before, const char *what)
{
    struct books now = books_now();
    if (now.counts.domains != before->counts.domains || now.counts.devices != before->counts.devices ||
        now.counts.tokens != before->counts.tokens || now.counts.mapped_segments != before->counts.mapped_segments ||
        now.counts.table_pages != before->counts.table_pages || now.pool_pages != before->pool_pages)
        fail_msg("%s: books changed: domains %u->%u tokens %u->%u segments %u->%u table pages %u->%u pool %u->%u",
                 what, before->counts.domains, now.counts.domains, before->counts.tokens, now.counts.tokens,
                 before->counts.mapped_segments, now.counts.mapped_segments, before->counts.table_pages,
                 now.counts.table_pages, before->pool_pages, now.pool_pages);
}

static void expect_denied(NTSTATUS st, const char *routine, const char *what)
{
    if (st != STATUS_ACCESS_DENIED)
        fail_msg("%s of %s: 0x%08x, want STATUS_ACCESS_DENIED", routine, what, (unsigned)st);
}

/* The frames of RAM pages first_page, first_page + 1, ..., but the middle one is middle_pa's
 * (a page that is not RAM, for a list to be refused). */
static void frames_with_middle(PFN_NUMBER *frames, unsigned count, unsigned first_page, uint64_t middle_pa)
{
    for (unsigned i = 0; i < count; i++)
        frames[i] = sim_ram_page(s, first_page + i) >> PAGE_SHIFT;
    frames[count / 2] = middle_pa >> PAGE_SHIFT;
}

static IOMMU_MAP_PHYSICAL_ADDRESS pfn_list(PFN_NUMBER *frames, unsigned count)
{
    IOMMU_MAP_PHYSICAL_ADDRESS m = {.MapType = MapPhysicalAddressTypePfn};
    m.PfnArray.PageFrame = frames;
    m.PfnArray.NumberOfPages = count;
    return m;
}

/* Logical maps, V1 and V2, every descriptor, explicit and allocated: each refused, nothing
 * mapped, no table taken, the allocator's range given back; then a valid map still works. */
static void test_guest_ram_only_logical_maps(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN d = translate(false), buddy = translate(true), v1d;
    OK(v1.CreateDomain(TRUE, &v1d));
    PIOMMU_DMA_DEVICE dev = device(0), other = device(1);
    OK(v2->AttachDeviceEx(d, dev));
    OK(v2->AttachDeviceEx(buddy, other));
    /* where the allocator puts the next page: it must be there again after the refusals */
    IOMMU_MAP_PHYSICAL_ADDRESS good = range(sim_ram_page(s, 200), PAGE_SIZE);
    IOMMU_DMA_LOGICAL_ADDRESS next = 0, out;
    OK(v2->MapLogicalRangeEx(buddy, IOMMU_ACCESS_READ, &good, NULL, NULL, NULL, &next));
    OK(v2->UnmapLogicalRange(buddy, next, 1));
    const IOMMU_DMA_LOGICAL_ADDRESS at = 0x800000;
    struct books before = books_now();

    struct not_ram bad[16];
    unsigned n = not_ram_list(bad);
    for (unsigned i = 0; i < n; i++) {
        IOMMU_MAP_PHYSICAL_ADDRESS m = range(bad[i].pa, bad[i].size);
        IOMMU_DMA_LOGICAL_ADDRESS explicit_at = at;
        out = 0x5a5a;
        expect_denied(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, &m, &explicit_at, NULL, NULL, &out),
                      "MapLogicalRangeEx (explicit)", bad[i].what);
        expect_denied(v2->MapLogicalRangeEx(buddy, IOMMU_ACCESS_READ, &m, NULL, NULL, NULL, &out),
                      "MapLogicalRangeEx (allocated)", bad[i].what);
        assert_int_equal(out, 0x5a5a); /* M13: nothing written */
        PFN_NUMBER frames[5];
        frames_with_middle(frames, 5, 300, bad[i].frame);
        IOMMU_MAP_PHYSICAL_ADDRESS list = pfn_list(frames, 5);
        expect_denied(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &list, &explicit_at, NULL, NULL, &out),
                      "MapLogicalRangeEx (PFN list)", bad[i].what);
        expect_denied(v2->MapLogicalRangeEx(buddy, IOMMU_ACCESS_READ, &list, NULL, NULL, NULL, &out),
                      "MapLogicalRangeEx (PFN list, allocated)", bad[i].what);
        MDL *mdl = sim_mdl(s, (unsigned[]){310, 311, 312, 313, 314}, 5);
        MmGetMdlPfnArray(mdl)[2] = bad[i].frame >> PAGE_SHIFT;
        IOMMU_MAP_PHYSICAL_ADDRESS md = {.MapType = MapPhysicalAddressTypeMdl, .Mdl = {mdl}};
        expect_denied(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &md, &explicit_at, NULL, NULL, &out),
                      "MapLogicalRangeEx (MDL)", bad[i].what);
        expect_denied(v1.MapLogicalRange(v1d, IOMMU_ACCESS_READ, mdl, at), "V1 MapLogicalRange (MDL)", bad[i].what);
        MmGetMdlPfnArray(mdl)[2] = sim_ram_page(s, 312) >> PAGE_SHIFT;
        MmGetMdlPfnArray(mdl)[4] = bad[i].frame >> PAGE_SHIFT; /* the last frame */
        expect_denied(v1.MapLogicalRange(v1d, IOMMU_ACCESS_READ, mdl, at), "V1 MapLogicalRange (MDL, last frame)",
                      bad[i].what);
        free(mdl);
        books_unchanged(&before, bad[i].what);
    }
    /* a frame number too large for an address is no way round the rule */
    PFN_NUMBER wraps[1] = {(SIM_RAM_BASE >> PAGE_SHIFT) | 1ull << 52};
    IOMMU_MAP_PHYSICAL_ADDRESS wrap = pfn_list(wraps, 1);
    IOMMU_DMA_LOGICAL_ADDRESS explicit_at = at;
    expect_denied(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &wrap, &explicit_at, NULL, NULL, &out),
                  "MapLogicalRangeEx", "a frame number past 2^52");
    books_unchanged(&before, "a frame number past 2^52");

    /* nothing was mapped, not even the good pages before or after the bad one */
    for (unsigned k = 0; k < 5; k++) {
        dma_faults(0, at + k * PAGE_SIZE, false);
        dma_faults(1, next + k * PAGE_SIZE, false);
    }
    /* and valid maps still work: at the address the refused ones would have taken, with the
     * allocator handing out the same range as before the refusals */
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &good, &explicit_at, NULL, NULL, &out));
    dma_reaches(0, at + 8, false, sim_ram_page(s, 200) + 8);
    OK(v2->MapLogicalRangeEx(buddy, IOMMU_ACCESS_READ, &good, NULL, NULL, NULL, &out));
    assert_int_equal(out, next);
    dma_reaches(1, next + 8, false, sim_ram_page(s, 200) + 8);
    /* the last page of RAM is RAM: the boundary is exact */
    IOMMU_MAP_PHYSICAL_ADDRESS last = range(SIM_RAM_END - PAGE_SIZE, PAGE_SIZE);
    IOMMU_DMA_LOGICAL_ADDRESS at2 = at + PAGE_SIZE;
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_WRITE, &last, &at2, NULL, NULL, &out));
    dma_reaches(0, at2 + 16, true, SIM_RAM_END - PAGE_SIZE + 16);
    MDL *mdl = sim_mdl(s, (unsigned[]){310, 311}, 2);
    OK(v1.MapLogicalRange(v1d, IOMMU_ACCESS_READ, mdl, at));
    OK(v1.UnmapLogicalRange(v1d, at, 2));
    free(mdl);
    OK(v2->UnmapLogicalRange(d, at, 2));
    OK(v2->UnmapLogicalRange(buddy, next, 1));
    OK(v2->DetachDeviceEx(dev));
    OK(v2->DetachDeviceEx(other));
    OK(v2->DeleteDevice(dev));
    OK(v2->DeleteDevice(other));
    OK(v2->DeleteDomain(d));
    OK(v2->DeleteDomain(buddy));
    OK(v1.DeleteDomain(v1d));
}

/* Identity maps, V1 (MDL) and V2 (every descriptor): refused, no part made. */
static void test_guest_ram_only_identity_maps(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN d = translate(false);
    PIOMMU_DMA_DEVICE dev = device(0);
    OK(v2->AttachDeviceEx(d, dev));
    struct books before = books_now();
    struct not_ram bad[16];
    unsigned n = not_ram_list(bad);
    for (unsigned i = 0; i < n; i++) {
        IOMMU_MAP_PHYSICAL_ADDRESS m = range(bad[i].pa, bad[i].size);
        expect_denied(v2->MapIdentityRangeEx(d, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, &m), "MapIdentityRangeEx",
                      bad[i].what);
        PFN_NUMBER frames[3];
        frames_with_middle(frames, 3, 400, bad[i].frame);
        IOMMU_MAP_PHYSICAL_ADDRESS list = pfn_list(frames, 3);
        expect_denied(v2->MapIdentityRangeEx(d, IOMMU_ACCESS_READ, &list), "MapIdentityRangeEx (PFN list)", bad[i].what);
        MDL *mdl = sim_mdl(s, (unsigned[]){410, 411, 412}, 3);
        MmGetMdlPfnArray(mdl)[1] = bad[i].frame >> PAGE_SHIFT;
        expect_denied(v1.MapIdentityRange(d, IOMMU_ACCESS_READ, mdl), "V1 MapIdentityRange (MDL)", bad[i].what);
        IOMMU_MAP_PHYSICAL_ADDRESS md = {.MapType = MapPhysicalAddressTypeMdl, .Mdl = {mdl}};
        expect_denied(v2->MapIdentityRangeEx(d, IOMMU_ACCESS_READ, &md), "MapIdentityRangeEx (MDL)", bad[i].what);
        free(mdl);
        books_unchanged(&before, bad[i].what);
    }
    /* none of it reaches anything: the bad pages, and the good ones beside them */
    dma_faults(0, SIM_RAM_END, false);
    dma_faults(0, SIM_RAM_END - PAGE_SIZE, false);
    dma_faults(0, sim_unit_registers(s, 0), true);
    dma_faults(0, SIM_MSI_BASE, true);
    dma_faults(0, sim_ram_page(s, 400), false);
    dma_faults(0, sim_ram_page(s, 402), false);
    dma_faults(0, sim_ram_page(s, 410), false);
    dma_faults(0, sim_ram_page(s, 412), false);
    /* a valid identity map still works, up to the last page of RAM */
    IOMMU_MAP_PHYSICAL_ADDRESS last = range(SIM_RAM_END - 2 * PAGE_SIZE, 2 * PAGE_SIZE);
    OK(v2->MapIdentityRangeEx(d, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, &last));
    dma_reaches(0, SIM_RAM_END - 8, true, SIM_RAM_END - 8);
    dma_faults(0, SIM_RAM_END, true);
    OK(v2->UnmapIdentityRangeEx(d, &last));
    OK(v2->DetachDeviceEx(dev));
    OK(v2->DeleteDevice(dev));
    OK(v2->DeleteDomain(d));
}

/* MapReservedLogicalRange: a segment naming memory that is not RAM is refused, and the token
 * is as it was (no segment counted, nothing mapped in its range). */
static void test_guest_ram_only_token_segments(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN d = translate(false);
    PIOMMU_DMA_DEVICE dev = device(0);
    OK(v2->AttachDeviceEx(d, dev));
    PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN t;
    IOMMU_DMA_LOGICAL_ADDRESS at = 0x900000;
    OK(v2->ReserveLogicalAddressRange(d, 0x8000, &at, NULL, NULL, &t));
    struct books before = books_now();
    struct not_ram bad[16];
    unsigned n = not_ram_list(bad);
    for (unsigned i = 0; i < n; i++) {
        IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT seg = {NULL, 0x1234, 0x5678};
        IOMMU_MAP_PHYSICAL_ADDRESS m = range(bad[i].pa, bad[i].size);
        expect_denied(v2->MapReservedLogicalRange(t, 0, IOMMU_ACCESS_READ, &m, &seg), "MapReservedLogicalRange",
                      bad[i].what);
        PFN_NUMBER frames[3];
        frames_with_middle(frames, 3, 500, bad[i].frame);
        IOMMU_MAP_PHYSICAL_ADDRESS list = pfn_list(frames, 3);
        expect_denied(v2->MapReservedLogicalRange(t, 0x1000, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, &list, &seg),
                      "MapReservedLogicalRange (PFN list)", bad[i].what);
        MDL *mdl = sim_mdl(s, (unsigned[]){510, 511, 512}, 3);
        MmGetMdlPfnArray(mdl)[1] = bad[i].frame >> PAGE_SHIFT;
        IOMMU_MAP_PHYSICAL_ADDRESS md = {.MapType = MapPhysicalAddressTypeMdl, .Mdl = {mdl}};
        expect_denied(v2->MapReservedLogicalRange(t, 0x4000, IOMMU_ACCESS_READ, &md, &seg),
                      "MapReservedLogicalRange (MDL)", bad[i].what);
        free(mdl);
        assert_null(seg.OwningToken); /* the segment is not filled in */
        assert_int_equal(seg.Offset, 0x1234);
        assert_int_equal(seg.Size, 0x5678);
        books_unchanged(&before, bad[i].what);
    }
    for (unsigned k = 0; k < 8; k++)
        dma_faults(0, at + k * PAGE_SIZE, false);
    OK(v2->FreeReservedLogicalAddressRange(t)); /* no segment was counted: R16 would refuse */
    OK(v2->ReserveLogicalAddressRange(d, 0x8000, &at, NULL, NULL, &t));
    /* a valid segment still works */
    IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT seg;
    PFN_NUMBER frames[3];
    frames_with_middle(frames, 3, 500, sim_ram_page(s, 520));
    IOMMU_MAP_PHYSICAL_ADDRESS list = pfn_list(frames, 3);
    OK(v2->MapReservedLogicalRange(t, 0x1000, IOMMU_ACCESS_READ, &list, &seg));
    dma_reaches(0, at + 0x2008, false, sim_ram_page(s, 520) + 8);
    dma_reaches(0, at + 0x3008, false, sim_ram_page(s, 502) + 8);
    OK(v2->UnmapReservedLogicalRange(&seg));
    OK(v2->FreeReservedLogicalAddressRange(t));
    OK(v2->DetachDeviceEx(dev));
    OK(v2->DeleteDevice(dev));
    OK(v2->DeleteDomain(d));
}

/* CreateDomainEx: a region to map (ShouldMap) outside RAM fails the creation, with nothing
 * left behind, wherever it is in the list. A region only reserved maps nothing and may be
 * anywhere the tables reach. */
static void test_guest_ram_only_reserved_regions(void **state)
{
    (void)state;
    IOMMU_DMA_DOMAIN_CREATION_FLAGS zero = {.AsUlonglong = 0};
    IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG buddy = {.LogicalAllocatorType = IommuDmaLogicalAllocatorBuddy,
                                                .BuddyAllocatorConfig = {.AddressWidth = 39}};
    struct books before = books_now();
    struct not_ram bad[16];
    unsigned n = not_ram_list(bad);
    for (unsigned i = 0; i < n; i++) {
        if (bad[i].pa + bad[i].size > 1ull << 39)
            continue; /* beyond the tables: refused as a bad region before the policy (D9) */
        IOMMU_DMA_RESERVED_REGION outside = {NULL, bad[i].pa, bad[i].size / PAGE_SIZE, TRUE};
        IOMMU_DMA_RESERVED_REGION ram = {&outside, sim_ram_page(s, 600), 4, TRUE}; /* good, mapped first */
        for (int with_allocator = 0; with_allocator < 2; with_allocator++) {
            PIOMMU_DMA_DOMAIN d = (PIOMMU_DMA_DOMAIN)0x1;
            expect_denied(v2->CreateDomainEx(DomainTypeTranslate, zero, with_allocator ? &buddy : NULL, &outside, &d),
                          "CreateDomainEx (ShouldMap)", bad[i].what);
            expect_denied(v2->CreateDomainEx(DomainTypeTranslate, zero, with_allocator ? &buddy : NULL, &ram, &d),
                          "CreateDomainEx (ShouldMap, second region)", bad[i].what);
            assert_ptr_equal(d, (PIOMMU_DMA_DOMAIN)0x1);
            books_unchanged(&before, bad[i].what);
        }
    }
    /* only reserved, not mapped: allowed, and a device reaches nothing there */
    IOMMU_DMA_RESERVED_REGION msi = {NULL, SIM_MSI_BASE, 1, FALSE};
    IOMMU_DMA_RESERVED_REGION ram = {&msi, sim_ram_page(s, 600), 4, TRUE};
    PIOMMU_DMA_DOMAIN d;
    OK(v2->CreateDomainEx(DomainTypeTranslate, zero, &buddy, &ram, &d));
    PIOMMU_DMA_DEVICE dev = device(0);
    OK(v2->AttachDeviceEx(d, dev));
    dma_reaches(0, sim_ram_page(s, 603) + 4, true, sim_ram_page(s, 603) + 4);
    dma_faults(0, SIM_MSI_BASE, true);
    OK(v2->DetachDeviceEx(dev));
    OK(v2->DeleteDevice(dev));
    OK(v2->DeleteDomain(d));
}

/* Replaces the test's platform with another, on the same path (direct or hypercalls). */
static void use_platform(const struct sim_config *cfg)
{
    sim_destroy(s);
    s = sim_create(cfg);
    assert_non_null(s);
    USE_PATH(s);
    OK(GET_INTERFACE_EX(2, 0, &ex));
    v2 = &ex.V2;
    OK(GET_INTERFACE(1, &v1));
}

/* The list is the platform's, not the simulated memory: ranges given out of order, touching,
 * with a partial page and a hole. With no list nothing at all can be mapped, and a list
 * longer than the provider keeps is refused. */
static void test_guest_ram_only_the_platform_list(void **state)
{
    (void)state;
    /* RAM pages 0-99 (the range given ends mid-page 100), then 110-4095 as two touching
     * ranges, given out of order */
    struct sim_config cfg = base_config();
    cfg.custom_guest_ram = true;
    cfg.guest_ram_count = 3;
    cfg.guest_ram[0] = (struct addr_range){sim_ram_page(s, 2000), SIM_RAM_END};
    cfg.guest_ram[1] = (struct addr_range){SIM_RAM_BASE, sim_ram_page(s, 100) + 0x800}; /* page 100 partly */
    cfg.guest_ram[2] = (struct addr_range){sim_ram_page(s, 110), sim_ram_page(s, 2000)};
    use_platform(&cfg);
    PIOMMU_DMA_DOMAIN d = translate(false);
    PIOMMU_DMA_DEVICE dev = device(0);
    OK(v2->AttachDeviceEx(d, dev));
    struct books before = books_now();
    IOMMU_DMA_LOGICAL_ADDRESS at = 0x100000, out;
    IOMMU_MAP_PHYSICAL_ADDRESS hole = range(sim_ram_page(s, 105), PAGE_SIZE);
    IOMMU_MAP_PHYSICAL_ADDRESS partial = range(sim_ram_page(s, 100), PAGE_SIZE);
    IOMMU_MAP_PHYSICAL_ADDRESS across_hole = range(sim_ram_page(s, 99), 12 * PAGE_SIZE);
    expect_denied(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &hole, &at, NULL, NULL, &out), "a map", "a hole in RAM");
    expect_denied(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &partial, &at, NULL, NULL, &out), "a map",
                  "a page only partly RAM");
    expect_denied(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &across_hole, &at, NULL, NULL, &out), "a map",
                  "a range across a hole");
    books_unchanged(&before, "the platform's list");
    dma_faults(0, at, false);
    /* RAM that is given as two touching ranges is RAM throughout */
    IOMMU_MAP_PHYSICAL_ADDRESS across = range(sim_ram_page(s, 1998), 4 * PAGE_SIZE);
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &across, &at, NULL, NULL, &out));
    dma_reaches(0, at + 3 * PAGE_SIZE, false, sim_ram_page(s, 2001));
    IOMMU_MAP_PHYSICAL_ADDRESS edge = range(sim_ram_page(s, 99), PAGE_SIZE);
    IOMMU_DMA_LOGICAL_ADDRESS at2 = 0x200000;
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &edge, &at2, NULL, NULL, &out));
    OK(v2->UnmapLogicalRange(d, at, 4));
    OK(v2->UnmapLogicalRange(d, at2, 1));
    OK(v2->DetachDeviceEx(dev));
    OK(v2->DeleteDevice(dev));
    OK(v2->DeleteDomain(d));

    /* no guest RAM given: nothing can be mapped, by any routine */
    cfg.guest_ram_count = 0;
    use_platform(&cfg);
    d = translate(false);
    before = books_now();
    IOMMU_MAP_PHYSICAL_ADDRESS page = range(sim_ram_page(s, 5), PAGE_SIZE);
    expect_denied(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &page, &at, NULL, NULL, &out), "MapLogicalRangeEx",
                  "RAM when no RAM was given");
    expect_denied(v2->MapIdentityRangeEx(d, IOMMU_ACCESS_READ, &page), "MapIdentityRangeEx", "RAM when no RAM was given");
    MDL *mdl = sim_mdl(s, (unsigned[]){5}, 1);
    expect_denied(v1.MapIdentityRange(d, IOMMU_ACCESS_READ, mdl), "MapIdentityRange", "RAM when no RAM was given");
    free(mdl);
    PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN t;
    OK(v2->ReserveLogicalAddressRange(d, 0x2000, &at, NULL, NULL, &t));
    struct books reserved = books_now();
    IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT seg;
    expect_denied(v2->MapReservedLogicalRange(t, 0, IOMMU_ACCESS_READ, &page, &seg), "MapReservedLogicalRange",
                  "RAM when no RAM was given");
    books_unchanged(&reserved, "no RAM: a segment");
    OK(v2->FreeReservedLogicalAddressRange(t));
    IOMMU_DMA_DOMAIN_CREATION_FLAGS zero = {.AsUlonglong = 0};
    IOMMU_DMA_RESERVED_REGION region = {NULL, sim_ram_page(s, 5), 1, TRUE};
    PIOMMU_DMA_DOMAIN d2;
    expect_denied(v2->CreateDomainEx(DomainTypeTranslate, zero, NULL, &region, &d2), "CreateDomainEx",
                  "RAM when no RAM was given");
    books_unchanged(&before, "no RAM");
    OK(v2->DeleteDomain(d));

    /* more ranges than the provider keeps: refused, and the provider it had stays as it was */
    struct ddi_platform too_many = {.pool = sim_pool(s), .units = {&sim_unit(s, 0)->unit}, .unit_count = 1,
                                    .first_domain_id = 2, .guest_ram_count = DDI_MAX_GUEST_RAM_RANGES + 1};
    assert_int_equal(ddi_provider_init(&too_many), IOMMU_EINVAL);
    d = translate(false);
    OK(v2->DeleteDomain(d));
}

/* ---- issue 11: bookkeeping users found wrong, and the statuses they had to guess ---- */

/* M17 when one unmap covers several allocations: every allocation it covers whole goes back
 * to the allocator, so the whole range can be handed out again. An allocation it covers only
 * in part stays allocated (M18, docs/ddi.md). */
static void test_M17_one_unmap_gives_back_every_allocation(void **state)
{
    (void)state;
    /* a 16-page allocator */
    IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG cfg = {.LogicalAllocatorType = IommuDmaLogicalAllocatorBuddy,
                                              .BuddyAllocatorConfig = {.AddressWidth = 16}};
    IOMMU_DMA_DOMAIN_CREATION_FLAGS zero = {.AsUlonglong = 0};
    PIOMMU_DMA_DOMAIN d;
    OK(v2->CreateDomainEx(DomainTypeTranslate, zero, &cfg, NULL, &d));
    PIOMMU_DMA_DEVICE dev = device(0);
    OK(v2->AttachDeviceEx(d, dev));
    IOMMU_MAP_PHYSICAL_ADDRESS one = range(sim_ram_page(s, 20), PAGE_SIZE);
    IOMMU_DMA_LOGICAL_ADDRESS out = 0x5a5a;
    /* the example: two one-page maps, one unmap over both */
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &one, NULL, NULL, NULL, &out));
    assert_int_equal(out, 0);
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &one, NULL, NULL, NULL, &out));
    assert_int_equal(out, 0x1000);
    OK(v2->UnmapLogicalRange(d, 0, 2));
    dma_faults(0, 0x10, false);
    dma_faults(0, 0x1010, false);
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &one, NULL, NULL, NULL, &out));
    assert_int_equal(out, 0);
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &one, NULL, NULL, NULL, &out));
    assert_int_equal(out, 0x1000);
    OK(v2->UnmapLogicalRange(d, 0, 2));
    /* fill the allocator with one-page maps, then unmap all sixteen in one call */
    for (unsigned round = 0; round < 2; round++) {
        for (unsigned i = 0; i < 16; i++) {
            OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &one, NULL, NULL, NULL, &out));
            assert_int_equal(out, (uint64_t)i * PAGE_SIZE);
        }
        assert_int_equal(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &one, NULL, NULL, NULL, &out),
                         STATUS_INSUFFICIENT_RESOURCES);
        OK(v2->UnmapLogicalRange(d, 0, 16));
        dma_faults(0, 0xf000, false);
    }
    /* the whole space is one free block again */
    IOMMU_MAP_PHYSICAL_ADDRESS sixteen = range(sim_ram_page(s, 100), 16 * PAGE_SIZE);
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &sixteen, NULL, NULL, NULL, &out));
    assert_int_equal(out, 0);
    dma_reaches(0, 0xf008, false, sim_ram_page(s, 115) + 8);
    OK(v2->UnmapLogicalRange(d, 0, 16));
    /* 3 pages (a 4-page block at 0), 2 pages at 0x4000, 1 page at 0x6000; an unmap of
     * [0, 0x5000) covers the first whole and the second in part */
    IOMMU_MAP_PHYSICAL_ADDRESS three = range(sim_ram_page(s, 30), 3 * PAGE_SIZE), two = range(sim_ram_page(s, 40), 2 * PAGE_SIZE);
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &three, NULL, NULL, NULL, &out));
    assert_int_equal(out, 0);
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &two, NULL, NULL, NULL, &out));
    assert_int_equal(out, 0x4000);
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &one, NULL, NULL, NULL, &out));
    assert_int_equal(out, 0x6000);
    OK(v2->UnmapLogicalRange(d, 0, 5));
    dma_faults(0, 0x4000, false);
    dma_reaches(0, 0x5000, false, sim_ram_page(s, 41));
    dma_reaches(0, 0x6000, false, sim_ram_page(s, 20));
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &three, NULL, NULL, NULL, &out));
    assert_int_equal(out, 0); /* the 3-page allocation went back */
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &two, NULL, NULL, NULL, &out));
    assert_int_equal(out, 0x8000); /* the 2-page one did not: 0x4000 is still taken */
    /* one unmap over everything gives everything back */
    OK(v2->UnmapLogicalRange(d, 0, 16));
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &sixteen, NULL, NULL, NULL, &out));
    assert_int_equal(out, 0);
    OK(v2->UnmapLogicalRange(d, 0, 16));
    OK(v2->DetachDeviceEx(dev));
    OK(v2->DeleteDevice(dev));
    OK(v2->DeleteDomain(d));
}

/* R11, R14: a token keeps every segment mapped into it, and UnmapReservedLogicalRange takes
 * exactly one live segment: a record spanning two, a part of one, or one already unmapped is
 * refused with nothing changed; each genuine record still unmaps its own segment, and once
 * they are all gone the token can be freed and its domain deleted. */
static void test_R11_R14_each_segment_on_its_own(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN d = translate(false);
    PIOMMU_DMA_DEVICE dev = device(0);
    OK(v2->AttachDeviceEx(d, dev));
    PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN t;
    IOMMU_DMA_LOGICAL_ADDRESS at = 0x600000;
    OK(v2->ReserveLogicalAddressRange(d, 0x6000, &at, NULL, NULL, &t));
    IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT seg0, seg1, seg2;
    IOMMU_MAP_PHYSICAL_ADDRESS p0 = range(sim_ram_page(s, 120), PAGE_SIZE), p1 = range(sim_ram_page(s, 121), PAGE_SIZE);
    IOMMU_MAP_PHYSICAL_ADDRESS p2 = range(sim_ram_page(s, 130), 2 * PAGE_SIZE);
    OK(v2->MapReservedLogicalRange(t, 0, IOMMU_ACCESS_READ, &p0, &seg0));
    OK(v2->MapReservedLogicalRange(t, 0x1000, IOMMU_ACCESS_READ, &p1, &seg1));
    OK(v2->MapReservedLogicalRange(t, 0x3000, IOMMU_ACCESS_READ, &p2, &seg2));
    assert_int_equal(ddi_provider_counts().mapped_segments, 3);
    IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT stale0 = seg0;
    const IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT wrong[] = {
        {t, 0, 0x2000},      /* segments 0 and 1 together */
        {t, 0, 0x5000},      /* all three and the hole between */
        {t, 0x3000, 0x1000}, /* the first page of segment 2 */
        {t, 0x4000, 0x1000}, /* its last page */
        {t, 0x2000, 0x1000}, /* the hole */
        {t, 0x1000, 0x3000}, /* segment 1 and on into segment 2 */
        {t, 0x800, 0x1000},  /* not on a page */
        {t, 0, 0},
    };
    struct books before = books_now();
    for (unsigned i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT w = wrong[i];
        assert_int_equal(v2->UnmapReservedLogicalRange(&w), STATUS_INVALID_PARAMETER);
        assert_int_equal(w.Offset, wrong[i].Offset); /* the record is left as it was */
        assert_int_equal(w.Size, wrong[i].Size);
        books_unchanged(&before, "a record that is not one segment");
        dma_reaches(0, at + 8, false, sim_ram_page(s, 120) + 8);
        dma_reaches(0, at + 0x1008, false, sim_ram_page(s, 121) + 8);
        dma_reaches(0, at + 0x4008, false, sim_ram_page(s, 131) + 8);
    }
    /* the first of several segments unmaps on its own */
    OK(v2->UnmapReservedLogicalRange(&seg0));
    dma_faults(0, at + 8, false);
    dma_reaches(0, at + 0x1008, false, sim_ram_page(s, 121) + 8);
    assert_int_equal(ddi_provider_counts().mapped_segments, 2);
    /* a copy of it, now stale, names nothing */
    assert_int_equal(v2->UnmapReservedLogicalRange(&stale0), STATUS_INVALID_PARAMETER);
    assert_int_equal(ddi_provider_counts().mapped_segments, 2);
    assert_int_equal(v2->FreeReservedLogicalAddressRange(t), STATUS_RESOURCE_IN_USE);
    assert_int_equal(v2->DeleteDomain(d), STATUS_RESOURCE_IN_USE);
    OK(v2->UnmapReservedLogicalRange(&seg2));
    dma_faults(0, at + 0x3008, false);
    dma_reaches(0, at + 0x1008, false, sim_ram_page(s, 121) + 8);
    OK(v2->UnmapReservedLogicalRange(&seg1));
    dma_faults(0, at + 0x1008, false);
    assert_int_equal(ddi_provider_counts().mapped_segments, 0);
    OK(v2->FreeReservedLogicalAddressRange(t));
    /* A token holds at most DDI_MAX_TOKEN_SEGMENTS segments: one more is refused with nothing
     * changed, whatever the page pool has (docs/ddi.md, Limits). */
    OK(v2->ReserveLogicalAddressRange(d, (DDI_MAX_TOKEN_SEGMENTS + 1) * PAGE_SIZE, &at, NULL, NULL, &t));
    static IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT many[DDI_MAX_TOKEN_SEGMENTS + 1];
    for (unsigned i = 0; i < DDI_MAX_TOKEN_SEGMENTS; i++)
        OK(v2->MapReservedLogicalRange(t, i * PAGE_SIZE, IOMMU_ACCESS_READ, &p0, &many[i]));
    before = books_now();
    assert_int_equal(v2->MapReservedLogicalRange(t, DDI_MAX_TOKEN_SEGMENTS * PAGE_SIZE, IOMMU_ACCESS_READ, &p0,
                                                 &many[DDI_MAX_TOKEN_SEGMENTS]),
                     STATUS_INSUFFICIENT_RESOURCES);
    books_unchanged(&before, "one segment too many");
    dma_faults(0, at + DDI_MAX_TOKEN_SEGMENTS * PAGE_SIZE, false);
    for (unsigned i = DDI_MAX_TOKEN_SEGMENTS; i-- > 0;) /* in any order */
        OK(v2->UnmapReservedLogicalRange(&many[(i * 7) % DDI_MAX_TOKEN_SEGMENTS]));
    OK(v2->FreeReservedLogicalAddressRange(t));
    OK(v2->DetachDeviceEx(dev));
    OK(v2->DeleteDevice(dev));
    OK(v2->DeleteDomain(d));
}

/* docs/ddi.md, stale token pointer: a freed token is refused for the next DDI_MAX_TOKENS
 * reservations at least, however many tokens are live; the case is 127 of 128 live.
 * Through hypercalls the guest shim's own token table decides, with the same guarantee. */
static void test_stale_token_refused_for_128_reservations(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN d = translate(false);
    static PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN t[DDI_MAX_TOKENS];
    for (unsigned i = 0; i < DDI_MAX_TOKENS; i++) {
        IOMMU_DMA_LOGICAL_ADDRESS at = 0x1000000 + (uint64_t)i * PAGE_SIZE;
        OK(v2->ReserveLogicalAddressRange(d, PAGE_SIZE, &at, NULL, NULL, &t[i]));
    }
    PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN extra;
    IOMMU_DMA_LOGICAL_ADDRESS at = 0x2000000;
    assert_int_equal(v2->ReserveLogicalAddressRange(d, PAGE_SIZE, &at, NULL, NULL, &extra),
                     STATUS_INSUFFICIENT_RESOURCES); /* the limit of live tokens */
    PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN stale = t[5];
    OK(v2->FreeReservedLogicalAddressRange(stale));
    t[5] = NULL;
    IOMMU_MAP_PHYSICAL_ADDRESS one = range(sim_ram_page(s, 7), PAGE_SIZE);
    for (unsigned k = 0; k < DDI_MAX_TOKENS; k++) {
        at = 0x3000000 + (uint64_t)k * PAGE_SIZE;
        OK(v2->ReserveLogicalAddressRange(d, PAGE_SIZE, &at, NULL, NULL, &extra));
        if (extra == stale)
            fail_msg("reservation %u after the free reused the freed token's slot", k + 1);
        IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT seg = {NULL, 0x1234, 0x5678};
        assert_int_equal(v2->MapReservedLogicalRange(stale, 0, IOMMU_ACCESS_READ, &one, &seg), STATUS_UNSUCCESSFUL);
        assert_int_equal(seg.Size, 0x5678);
        assert_int_equal(v2->FreeReservedLogicalAddressRange(stale), STATUS_INVALID_PARAMETER_1);
        OK(v2->FreeReservedLogicalAddressRange(extra));
    }
    for (unsigned i = 0; i < DDI_MAX_TOKENS; i++)
        if (t[i])
            OK(v2->FreeReservedLogicalAddressRange(t[i]));
    OK(v2->DeleteDomain(d));
}

/* UnmapIdentityRange(Ex) of P removes only an identity mapping: when logical P maps another
 * page (a logical map made there), the call is refused with STATUS_RESOURCE_IN_USE and
 * nothing changes, as an identity unmap over a token's range is (docs/ddi.md). Pages not
 * mapped at all are skipped (M18). */
static void test_I7_identity_unmap_takes_only_identity(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN d = translate(false);
    PIOMMU_DMA_DEVICE dev = device(0);
    OK(v2->AttachDeviceEx(d, dev));
    uint64_t p = sim_ram_page(s, 200), q = sim_ram_page(s, 201), p2 = sim_ram_page(s, 202);
    IOMMU_MAP_PHYSICAL_ADDRESS mq = range(q, PAGE_SIZE), mp2 = range(p2, PAGE_SIZE);
    IOMMU_DMA_LOGICAL_ADDRESS at = p, out;
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &mq, &at, NULL, NULL, &out)); /* logical P -> Q */
    OK(v2->MapIdentityRangeEx(d, IOMMU_ACCESS_READ, &mp2));                      /* P2 -> P2 */
    struct books before = books_now();
    IOMMU_MAP_PHYSICAL_ADDRESS mp = range(p, PAGE_SIZE), all = range(p, 3 * PAGE_SIZE);
    assert_int_equal(v2->UnmapIdentityRangeEx(d, &mp), STATUS_RESOURCE_IN_USE);
    assert_int_equal(v2->UnmapIdentityRangeEx(d, &all), STATUS_RESOURCE_IN_USE);
    MDL *mdl = sim_mdl(s, (unsigned[]){202, 200}, 2);
    assert_int_equal(v1.UnmapIdentityRange(d, mdl), STATUS_RESOURCE_IN_USE);
    free(mdl);
    books_unchanged(&before, "identity unmap over a logical mapping");
    dma_reaches(0, p + 8, false, q + 8);
    dma_reaches(0, p2 + 8, false, p2 + 8);
    /* an identity mapping made by a logical map of P at P is an identity mapping */
    OK(v2->UnmapIdentityRangeEx(d, &mp2));
    dma_faults(0, p2 + 8, false);
    OK(v2->UnmapLogicalRange(d, p, 1));
    at = p;
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &mp, &at, NULL, NULL, &out));
    OK(v2->UnmapIdentityRangeEx(d, &all)); /* P -> P goes; Q and P2 are not mapped: skipped */
    dma_faults(0, p + 8, false);
    OK(v2->DetachDeviceEx(dev));
    OK(v2->DeleteDevice(dev));
    OK(v2->DeleteDomain(d));
}

/* The statuses docs/ddi.md records where users had to guess: a map at or across 2^aw (the
 * tables' reach) -> _4; a segment Offset at or past the token's end -> _2 (R7) and one
 * reaching past it -> _4 (R9); an unaligned reserve -> _3; an unmap that must split a
 * superpage and cannot get a table -> STATUS_INSUFFICIENT_RESOURCES, nothing changed. */
static void test_statuses_users_had_to_guess(void **state)
{
    (void)state;
    PIOMMU_DMA_DOMAIN d = translate(false); /* 39-bit tables */
    PIOMMU_DMA_DEVICE dev = device(0);
    OK(v2->AttachDeviceEx(d, dev));
    struct books before = books_now();
    IOMMU_MAP_PHYSICAL_ADDRESS m1 = range(sim_ram_page(s, 210), PAGE_SIZE), m2 = range(sim_ram_page(s, 210), 2 * PAGE_SIZE);
    IOMMU_DMA_LOGICAL_ADDRESS limit = 1ull << 39, across = (1ull << 39) - PAGE_SIZE, out = 0x5a5a;
    assert_int_equal(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &m1, &limit, NULL, NULL, &out), STATUS_INVALID_PARAMETER_4);
    assert_int_equal(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &m2, &across, NULL, NULL, &out), STATUS_INVALID_PARAMETER_4);
    assert_int_equal(out, 0x5a5a);
    MDL *mdl = sim_mdl(s, (unsigned[]){210, 211}, 2);
    assert_int_equal(v1.MapLogicalRange(d, IOMMU_ACCESS_READ, mdl, limit), STATUS_INVALID_PARAMETER_4);
    assert_int_equal(v1.MapLogicalRange(d, IOMMU_ACCESS_READ, mdl, across), STATUS_INVALID_PARAMETER_4);
    free(mdl);
    dma_faults(0, across, false);
    books_unchanged(&before, "a map at or across 2^aw");
    /* tokens */
    PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN t = NULL;
    IOMMU_DMA_LOGICAL_ADDRESS odd = 0x600800, at = 0x600000;
    assert_int_equal(v2->ReserveLogicalAddressRange(d, 0x2000, &odd, NULL, NULL, &t), STATUS_INVALID_PARAMETER_3);
    assert_null(t);
    OK(v2->ReserveLogicalAddressRange(d, 0x2000, &at, NULL, NULL, &t));
    before = books_now();
    IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT seg = {NULL, 0x1234, 0x5678};
    assert_int_equal(v2->MapReservedLogicalRange(t, 0x2000, IOMMU_ACCESS_READ, &m1, &seg), STATUS_INVALID_PARAMETER_2);
    assert_int_equal(v2->MapReservedLogicalRange(t, 0x5000, IOMMU_ACCESS_READ, &m1, &seg), STATUS_INVALID_PARAMETER_2);
    assert_int_equal(v2->MapReservedLogicalRange(t, 0x1000, IOMMU_ACCESS_READ, &m2, &seg), STATUS_INVALID_PARAMETER_4);
    assert_int_equal(seg.Size, 0x5678);
    books_unchanged(&before, "a segment at or past the token's end");
    dma_faults(0, at + 0x1000, false);
    OK(v2->FreeReservedLogicalAddressRange(t));
    /* a 2 MiB superpage, then an unmap of one of its pages with no table to split it into */
    IOMMU_MAP_PHYSICAL_ADDRESS big = range(sim_ram_page(s, 0), 512 * PAGE_SIZE);
    IOMMU_DMA_LOGICAL_ADDRESS sp = 0x40000000;
    OK(v2->MapLogicalRangeEx(d, IOMMU_ACCESS_READ, &big, &sp, NULL, NULL, &out));
    before = books_now();
    uint64_t attempts = sim_pool(s)->attempts;
    sim_pool(s)->fail_at = attempts + 1;
    assert_int_equal(v2->UnmapLogicalRange(d, sp + PAGE_SIZE, 1), STATUS_INSUFFICIENT_RESOURCES);
    sim_pool(s)->fail_at = 0;
    assert_int_equal(sim_pool(s)->attempts, attempts + 1); /* it did ask for a table */
    books_unchanged(&before, "an unmap that cannot split its superpage");
    dma_reaches(0, sp + PAGE_SIZE + 8, false, sim_ram_page(s, 1) + 8); /* nothing changed */
    OK(v2->UnmapLogicalRange(d, sp + PAGE_SIZE, 1)); /* with memory, it splits */
    dma_faults(0, sp + PAGE_SIZE + 8, false);
    dma_reaches(0, sp + 2 * PAGE_SIZE, false, sim_ram_page(s, 2));
    OK(v2->UnmapLogicalRange(d, sp, 512));
    OK(v2->DetachDeviceEx(dev));
    OK(v2->DeleteDevice(dev));
    OK(v2->DeleteDomain(d));
}

/* On ARM64 (A11, F2): QueryInputMappings gives a PCI function's stream ID, in bytes of
 * INPUT_MAPPING_ELEMENT, BUFFER_TOO_SMALL with the size needed when the buffer is short, and
 * fails for a PDO no unit translates; a fault reaches the handler in the Arm64 arm, naming
 * the device's PDO, its stream ID and the access's direction. */
static void test_A11_F2_arm64(void **state)
{
    (void)state;
    struct sim_config cfg = base_config();
    cfg.arm64 = true;
    use_platform(&cfg);
    DEVICE_OBJECT pdo, unmapped;
    sim_device_object(s, 0, &pdo);
    sim_device_object(s, 2, &unmapped); /* 00:05.0, behind no unit */
    INPUT_MAPPING_ELEMENT buf[4] = {{0xdead}, {0xdead}, {0xdead}, {0xdead}};
    ULONG len = 0;
    OK(v2->QueryInputMappings(&pdo, buf, sizeof buf, &len));
    assert_int_equal(len, sizeof buf[0]);
    assert_int_equal(buf[0].InputMappingId, 0x18); /* 00:03.0 */
    assert_int_equal(buf[1].InputMappingId, 0xdead);
    len = 0;
    assert_int_equal(v2->QueryInputMappings(&pdo, buf, sizeof buf[0] - 1, &len), STATUS_BUFFER_TOO_SMALL);
    assert_int_equal(len, sizeof buf[0]);
    len = 0;
    assert_int_equal(v2->QueryInputMappings(&pdo, NULL, 0, &len), STATUS_BUFFER_TOO_SMALL);
    assert_int_equal(len, sizeof buf[0]);
    assert_int_equal(v2->QueryInputMappings(&unmapped, buf, sizeof buf, &len), STATUS_UNSUCCESSFUL);
    assert_int_equal(v2->QueryInputMappings(NULL, buf, sizeof buf, &len), STATUS_UNSUCCESSFUL);

    PIOMMU_DMA_DOMAIN d;
    OK(v1.CreateDomain(TRUE, &d));
    OK(v1.AttachDevice(d, &pdo, 0, 1));
    DEVICE_FAULT_CONFIGURATION fc = {on_fault, &faults};
    OK(v1.SetDeviceFaultReporting(&pdo, 0, TRUE, &fc));
    faults = 0;
    assert_false(sim_dma(s, 0, 0x9000, true).ok);
    assert_int_equal(DELIVER_FAULTS(), 1);
    assert_int_equal(faults, 1);
    assert_int_equal(last_fault.Type, FaultInformationArm64);
    assert_ptr_equal(last_fault.Arm64.FaultAddress, (PVOID)0x9000);
    assert_ptr_equal(last_fault.Arm64.PhysicalDeviceObject, &pdo);
    assert_int_equal(last_fault.Arm64.InputMappingId, 0x18);
    assert_int_equal(last_fault.Arm64.Flags.FaultAddressValid, 1);
    assert_int_equal(last_fault.Arm64.Flags.WriteNotRead, 1);
    assert_int_equal(last_fault.Arm64.Type, TranslationFault);
    assert_int_equal(last_fault.Arm64.IommuBaseAddress, sim_unit(s, 0)->unit.register_base);
    assert_non_null(last_fault.Arm64.DomainHandle);
    assert_false(sim_dma(s, 0, 0xa000, false).ok);
    assert_int_equal(DELIVER_FAULTS(), 1);
    assert_int_equal(last_fault.Arm64.Flags.WriteNotRead, 0);
    OK(v1.SetDeviceFaultReporting(&pdo, 0, FALSE, NULL));
    OK(v1.DetachDevice(d, &pdo, 0));
    OK(v1.DeleteDomain(d));
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_A1_A2_A7_sizes_and_canary), T(test_A3_A4_A5_A6_bad_requests), T(test_A10_F1_A11_not_on_x64), T(test_A11_F2_arm64),
        T(test_D1_C6_D11_v1_domains), T(test_D2_D5_D6_D8_create_ex_arguments), T(test_D3_D7_types_not_offered),
        T(test_D9_D10_reserved_regions), T(test_D12_D13_D14_delete), T(test_D4_out_of_resources), T(test_C1_C2_C3_C4_C5_C7_configure_and_flush),
        T(test_M1_M2_M16_v1_arguments), T(test_M3_M4_M5_M7_M8_M13_ex_explicit),
        T(test_M6_M9_M10_M11_M12_M15_M17_buddy), T(test_M14_overlap_changes_nothing), T(test_M18_unmap_unmapped_and_part), T(test_M19_permissions),
        T(test_I1_I2_I3_I4_I5_I6_identity), T(test_R1_to_R6_reserve), T(test_R7_to_R18_segments),
        T(test_R19_reserve_out_of_memory), T(test_E1_E2_E3_create_device), T(test_E4_E5_E6_E7_E8_E12_E13_D15_attach),
        T(test_E9_E10_E16_S1_to_S6_S8_callbacks), T(test_E14_v1_attach_ids), T(test_F2_F3_fault_handler),
        T(test_stale_and_forged_handles), T(test_guest_ram_only_logical_maps), T(test_guest_ram_only_identity_maps),
        T(test_guest_ram_only_token_segments), T(test_guest_ram_only_reserved_regions),
        T(test_guest_ram_only_the_platform_list), T(test_M17_one_unmap_gives_back_every_allocation),
        T(test_R11_R14_each_segment_on_its_own),
        T(test_stale_token_refused_for_128_reservations),
        T(test_I7_identity_unmap_takes_only_identity), T(test_statuses_users_had_to_guess),
    };
    return cmocka_run_group_tests_name("ddi_rules", tests, NULL, NULL);
}
