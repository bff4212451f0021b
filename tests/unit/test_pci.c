/* PCI enumeration over a fake ECAM and the assignment of functions to DMAR units. */
#include <stdlib.h>
#include <string.h>

#include "iommu/pci.h"
#include "test_util.h"

struct fake_fn {
    uint16_t seg;
    uint8_t bus, dev, fn;
    uint16_t vendor, device;
    bool multi, bridge;
    uint8_t secondary, subordinate;
};

/* Segment 0: a root bus 0 with a three-level bridge chain down to an endpoint on bus 3, a
 * multi-function device, and a second root bus 0x40. Segment 1: two endpoints. */
static const struct fake_fn topology[] = {
    {0, 0x00, 0x00, 0, 0x8086, 0x29c0, false, false, 0, 0},
    {0, 0x00, 0x01, 0, 0x8086, 0x0001, false, true, 1, 3},
    {0, 0x00, 0x02, 0, 0x1234, 0x11e8, true, false, 0, 0},
    {0, 0x00, 0x02, 1, 0x1234, 0x11e9, true, false, 0, 0},
    {0, 0x00, 0x1f, 0, 0x8086, 0x2918, false, false, 0, 0},
    {0, 0x01, 0x00, 0, 0x10b5, 0x8747, false, true, 2, 3},
    {0, 0x02, 0x01, 0, 0x10b5, 0x8747, false, true, 3, 3},
    {0, 0x03, 0x00, 0, 0x144d, 0xa808, false, false, 0, 0},
    {0, 0x40, 0x00, 0, 0x8086, 0x0002, false, false, 0, 0},
    {1, 0x00, 0x05, 0, 0x15b3, 0x1017, false, false, 0, 0},
    {1, 0x00, 0x06, 0, 0x15b3, 0x1018, false, false, 0, 0},
};

#define ECAM0 0xb0000000ull
#define ECAM1 0xc0000000ull
static unsigned config_reads;

static uint32_t ecam_read32(void *ctx, uint64_t pa)
{
    (void)ctx;
    config_reads++;
    uint16_t seg = pa >= ECAM1 ? 1 : 0;
    uint64_t off = pa - (seg ? ECAM1 : ECAM0);
    uint8_t bus = (uint8_t)(off >> 20), dev = (off >> 15) & 31, fn = (off >> 12) & 7;
    uint32_t reg = off & 0xfff;
    for (size_t i = 0; i < sizeof topology / sizeof topology[0]; i++) {
        const struct fake_fn *f = &topology[i];
        if (f->seg != seg || f->bus != bus || f->dev != dev || f->fn != fn)
            continue;
        switch (reg) {
        case 0x00:
            return (uint32_t)f->device << 16 | f->vendor;
        case 0x04:
            return 0x00100007;
        case 0x08:
            return f->bridge ? 0x06040000 : 0x0108020a;
        case 0x0c:
            return (uint32_t)((f->multi ? 0x80 : 0) | (f->bridge ? 1 : 0)) << 16;
        case 0x18:
            return f->bridge ? (uint32_t)f->subordinate << 16 | (uint32_t)f->secondary << 8 | bus : 0;
        /* BARs: a 32-bit memory BAR (11e8), a 64-bit one above 4 GiB (a808), an I/O BAR (2918) */
        case 0x10:
            return f->device == 0x11e8 ? 0xfea00000u : f->device == 0xa808 ? 0xfe00000cu : f->device == 0x2918 ? 0xc001u : 0;
        case 0x14:
            return f->device == 0xa808 ? 0xe0u : 0;
        default:
            return 0;
        }
    }
    return 0xffffffff;
}

static const struct platform plat = {.mmio_read32 = ecam_read32};

static size_t put_scope(uint8_t *p, uint8_t type, uint8_t bus, const uint8_t *path, unsigned hops)
{
    p[0] = type;
    p[1] = (uint8_t)(6 + 2 * hops);
    p[5] = bus;
    memcpy(p + 6, path, 2 * hops);
    return p[1];
}

static size_t begin_drhd(uint8_t *p, uint8_t flags, uint16_t seg, uint32_t base)
{
    p[0] = 0;
    p[4] = flags;
    p[6] = (uint8_t)seg;
    p[8] = (uint8_t)base;
    p[9] = (uint8_t)(base >> 8);
    p[10] = (uint8_t)(base >> 16);
    p[11] = (uint8_t)(base >> 24);
    return 16;
}

/* unit 0: endpoint 00:02.0 and the endpoint 4 hops down (03:00.0)
 * unit 1: bridge scope 00:01.0 (buses 1-3)
 * unit 2: INCLUDE_PCI_ALL on segment 0
 * unit 3: segment 1, endpoint 00:05.0 and a path through a non-bridge (ignored) */
static size_t build_dmar(uint8_t *b)
{
    memset(b, 0, 512);
    memcpy(b, "DMAR", 4);
    b[36] = 38;
    size_t off = 48, start;

    start = off;
    off += begin_drhd(b + off, 0, 0, 0xfed90000);
    off += put_scope(b + off, DMAR_SCOPE_PCI_ENDPOINT, 0, (const uint8_t[]){2, 0}, 1);
    off += put_scope(b + off, DMAR_SCOPE_PCI_ENDPOINT, 0, (const uint8_t[]){1, 0, 0, 0, 1, 0, 0, 0}, 4);
    b[start + 2] = (uint8_t)(off - start);

    start = off;
    off += begin_drhd(b + off, 0, 0, 0xfed91000);
    off += put_scope(b + off, DMAR_SCOPE_PCI_SUBHIERARCHY, 0, (const uint8_t[]){1, 0}, 1);
    off += put_scope(b + off, DMAR_SCOPE_IOAPIC, 0xf0, (const uint8_t[]){0x1f, 0}, 1);
    b[start + 2] = (uint8_t)(off - start);

    start = off;
    off += begin_drhd(b + off, DRHD_FLAG_INCLUDE_PCI_ALL, 0, 0xfed92000);
    b[start + 2] = (uint8_t)(off - start);

    start = off;
    off += begin_drhd(b + off, 0, 1, 0xfed93000);
    off += put_scope(b + off, DMAR_SCOPE_PCI_ENDPOINT, 0, (const uint8_t[]){5, 0}, 1);
    off += put_scope(b + off, DMAR_SCOPE_PCI_ENDPOINT, 0, (const uint8_t[]){6, 0, 0, 0}, 2);
    b[start + 2] = (uint8_t)(off - start);

    b[4] = (uint8_t)off;
    b[5] = (uint8_t)(off >> 8);
    return off;
}

static struct pci_inventory inv;

static const struct pci_function *find(uint16_t seg, uint8_t bus, uint8_t dev, uint8_t fn)
{
    const struct pci_function *f = pci_find(&inv, seg, bus, dev, fn);
    if (!f)
        fail_msg("%x:%02x:%02x.%x not enumerated", seg, bus, dev, fn);
    return f;
}

static void test_enumerate(void **state)
{
    (void)state;
    struct mcfg m = {2, {{ECAM0, 0, 0, 0xff}, {ECAM1, 1, 0, 0x0f}}};
    config_reads = 0;
    pci_enumerate(&plat, &m, &inv);
    assert_int_equal(inv.count, sizeof topology / sizeof topology[0]);
    assert_false(inv.truncated);
    const struct pci_function *f = find(0, 0, 2, 1);
    assert_int_equal(f->vendor, 0x1234);
    assert_int_equal(f->device, 0x11e9);
    assert_int_equal(f->command, 7);
    assert_int_equal(f->config_pa, ECAM0 + (2u << 15) + (1u << 12));
    const struct pci_function *b = find(0, 1, 0, 0);
    assert_int_equal(b->header_type, 1);
    assert_int_equal(b->secondary_bus, 2);
    assert_int_equal(b->subordinate_bus, 3);
    assert_int_equal(find(0, 3, 0, 0)->class_code, 0x010802);
    assert_int_equal(pci_sid(find(0, 3, 0, 0)), 0x0300);
    /* Function 1..7 are only probed for multi-function devices. */
    assert_true(config_reads < (256 + 16) * 32 + 8 * 7 + 64);
}

static void test_memory_bars(void **state)
{
    (void)state;
    struct mcfg m = {2, {{ECAM0, 0, 0, 0xff}, {ECAM1, 1, 0, 0x0f}}};
    pci_enumerate(&plat, &m, &inv);
    assert_int_equal(pci_memory_bar(&plat, find(0, 0x00, 0x02, 0), 0), 0xfea00000u);
    assert_int_equal(pci_memory_bar(&plat, find(0, 0x03, 0x00, 0), 0), 0xe0fe000000ull); /* 64-bit, both halves */
    assert_int_equal(pci_memory_bar(&plat, find(0, 0x00, 0x1f, 0), 0), 0);             /* I/O BAR */
    assert_int_equal(pci_memory_bar(&plat, find(0, 0x00, 0x02, 0), 6), 0);             /* no BAR 6 */
    assert_int_equal(pci_memory_bar(&plat, find(0, 0x00, 0x01, 0), 0), 0);             /* a bridge: not header 0 */
}

static void test_assign_units(void **state)
{
    (void)state;
    uint8_t b[512];
    size_t len = build_dmar(b);
    struct dmar_table t;
    struct diag d;
    diag_clear(&d);
    assert_true(dmar_parse(&t, b, len, &d));
    struct mcfg m = {2, {{ECAM0, 0, 0, 0xff}, {ECAM1, 1, 0, 0x0f}}};
    pci_enumerate(&plat, &m, &inv);
    pci_assign_units(&inv, &t);

    const struct {
        uint16_t seg;
        uint8_t bus, dev, fn;
        int unit;
        enum pci_unit_match match;
    } want[] = {
        {0, 0x00, 0x02, 0, 0, PCI_UNIT_ENDPOINT},
        {0, 0x03, 0x00, 0, 0, PCI_UNIT_ENDPOINT},   /* endpoint scope beats the bridge scope */
        {0, 0x00, 0x01, 0, 1, PCI_UNIT_BRIDGE},     /* the bridge itself */
        {0, 0x01, 0x00, 0, 1, PCI_UNIT_BRIDGE},     /* behind it */
        {0, 0x02, 0x01, 0, 1, PCI_UNIT_BRIDGE},
        {0, 0x00, 0x02, 1, 2, PCI_UNIT_INCLUDE_ALL},/* other function of a named device */
        {0, 0x00, 0x00, 0, 2, PCI_UNIT_INCLUDE_ALL},
        {0, 0x40, 0x00, 0, 2, PCI_UNIT_INCLUDE_ALL},/* second root bus */
        {1, 0x00, 0x05, 0, 3, PCI_UNIT_ENDPOINT},
        {1, 0x00, 0x06, 0, -1, PCI_UNIT_NONE},      /* path through a non-bridge: no match */
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const struct pci_function *f = find(want[i].seg, want[i].bus, want[i].dev, want[i].fn);
        if (f->unit != want[i].unit || f->match != want[i].match)
            fail_msg("%x:%02x:%02x.%x: unit %d (%s), want %d (%s)", f->segment, f->bus, f->dev, f->fn,
                     f->unit, pci_unit_match_name(f->match), want[i].unit,
                     pci_unit_match_name(want[i].match));
    }
}

/* Arm: the same functions under the IORT QEMU 7.2's virt machine publishes (the synthetic
 * qemu-count-quirk.iort): segment 0's bus 0 goes to the SMMUv3 with stream ID = RID, every
 * RID from 0x100 to the ITS (untranslated), RID 0x100 too, which the RC's first range
 * claims only by the count quirk; segment 1 has no root complex node. */
static void test_assign_units_iort(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = read_fixture(fixture("synthetic/qemu-count-quirk.iort"), &len);
    struct iort_table t;
    struct diag d;
    diag_clear(&d);
    assert_true(iort_parse(&t, b, len, &d));
    struct mcfg m = {2, {{ECAM0, 0, 0, 0xff}, {ECAM1, 1, 0, 0x0f}}};
    pci_enumerate(&plat, &m, &inv);
    pci_assign_units_iort(&inv, &t);
    const struct {
        uint16_t seg;
        uint8_t bus, dev, fn;
        int unit;
        uint32_t stream_id;
    } want[] = {
        {0, 0x00, 0x00, 0, 0, 0x00},  {0, 0x00, 0x01, 0, 0, 0x08}, {0, 0x00, 0x02, 0, 0, 0x10},
        {0, 0x00, 0x02, 1, 0, 0x11},  {0, 0x00, 0x1f, 0, 0, 0xf8},
        {0, 0x01, 0x00, 0, -1, 0x100}, /* RID 0x100: the quirk's ID goes to the ITS range */
        {0, 0x03, 0x00, 0, -1, 0x300}, {0, 0x40, 0x00, 0, -1, 0x4000},
        {1, 0x00, 0x05, 0, -1, 0x28},  /* no root complex node for segment 1 */
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const struct pci_function *f = find(want[i].seg, want[i].bus, want[i].dev, want[i].fn);
        enum pci_unit_match match = want[i].unit >= 0 ? PCI_UNIT_IORT : PCI_UNIT_NONE;
        if (f->unit != want[i].unit || f->match != match || f->stream_id != want[i].stream_id)
            fail_msg("%x:%02x:%02x.%x: unit %d (%s) stream 0x%x, want %d stream 0x%x", f->segment, f->bus, f->dev,
                     f->fn, f->unit, pci_unit_match_name(f->match), f->stream_id, want[i].unit, want[i].stream_id);
    }
    free(b);
}

static void test_resolve_paths(void **state)
{
    (void)state;
    struct mcfg m = {1, {{ECAM0, 0, 0, 0xff}}};
    pci_enumerate(&plat, &m, &inv);
    uint8_t path4[] = {1, 0, 0, 0, 1, 0, 0, 0};
    struct dmar_scope sc = {.type = 1, .start_bus = 0, .hops = 4, .path = path4};
    uint8_t bus, dev, fn;
    assert_true(pci_scope_resolve(&inv, 0, &sc, &bus, &dev, &fn));
    assert_int_equal(bus, 3);
    assert_int_equal(dev, 0);
    uint8_t through_endpoint[] = {2, 0, 0, 0};
    sc.path = through_endpoint;
    sc.hops = 2;
    assert_false(pci_scope_resolve(&inv, 0, &sc, &bus, &dev, &fn));
    uint8_t missing[] = {9, 0, 0, 0};
    sc.path = missing;
    assert_false(pci_scope_resolve(&inv, 0, &sc, &bus, &dev, &fn));
    sc.hops = 0;
    assert_false(pci_scope_resolve(&inv, 0, &sc, &bus, &dev, &fn));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enumerate),
        cmocka_unit_test(test_memory_bars),
        cmocka_unit_test(test_assign_units),
        cmocka_unit_test(test_resolve_paths),
        cmocka_unit_test(test_assign_units_iort),
    };
    return cmocka_run_group_tests_name("pci", tests, NULL, NULL);
}
