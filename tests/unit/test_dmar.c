/* DMAR parsing of real tables: decoded fields checked against what iasl -d shows. */
#include <stdlib.h>
#include <string.h>

#include "iommu/dmar.h"
#include "test_util.h"

struct parsed {
    uint8_t *bytes;
    size_t len;
    struct dmar_table t;
    struct diag d;
};

static void parse_ok(struct parsed *p, const char *rel)
{
    p->bytes = read_fixture(fixture(rel), &p->len);
    diag_clear(&p->d);
    if (!dmar_parse(&p->t, p->bytes, p->len, &p->d))
        fail_msg("%s: %s", rel, p->d.error);
}

/* The n-th structure (0-based) of the table. */
static struct dmar_struct nth_struct(const struct dmar_table *t, unsigned n)
{
    struct dmar_struct s;
    unsigned i = 0;
    for (uint32_t c = 0; dmar_next_struct(t, &c, &s); i++)
        if (i == n)
            return s;
    fail_msg("table has only %u structures", i);
    return s;
}

static unsigned count_scopes(const struct dmar_table *t, const struct dmar_struct *s, uint8_t type)
{
    struct dmar_scope sc;
    unsigned n = 0;
    for (uint32_t c = 0; dmar_next_scope(t, s, &c, &sc);)
        n += sc.type == type;
    return n;
}

static struct dmar_scope nth_scope(const struct dmar_table *t, const struct dmar_struct *s, unsigned n)
{
    struct dmar_scope sc;
    unsigned i = 0;
    for (uint32_t c = 0; dmar_next_scope(t, s, &c, &sc); i++)
        if (i == n)
            return sc;
    fail_msg("structure has only %u scopes", i);
    return sc;
}

static void test_dell_r820(void **state)
{
    (void)state;
    struct parsed p;
    parse_ok(&p, "dmar/dell-poweredge-r820_E5985CCBA349.dmar");
    assert_int_equal(p.t.header.length, 400);
    assert_true(p.t.header.checksum_ok);
    assert_int_equal(p.t.host_address_width, 0x2d + 1);
    assert_int_equal(p.t.flags, 0x3);
    assert_int_equal(p.t.structs, 8);
    assert_int_equal(p.t.drhd_count, 4);
    assert_int_equal(p.d.warnings, 0);

    static const uint64_t bases[] = {0xCF000000, 0xC8000000, 0xC4000000, 0xDF100000};
    for (unsigned i = 0; i < 4; i++) {
        struct dmar_struct s = nth_struct(&p.t, i);
        assert_int_equal(s.type, DMAR_TYPE_DRHD);
        assert_int_equal(s.register_base, bases[i]);
        assert_int_equal(s.segment, 0);
        assert_int_equal(s.flags & DRHD_FLAG_INCLUDE_PCI_ALL, i == 3);
    }
    struct dmar_struct drhd0 = nth_struct(&p.t, 0);
    assert_int_equal(drhd0.offset, 0x30);
    assert_int_equal(drhd0.length, 0x48);
    assert_int_equal(count_scopes(&p.t, &drhd0, DMAR_SCOPE_PCI_SUBHIERARCHY), 4);
    assert_int_equal(count_scopes(&p.t, &drhd0, DMAR_SCOPE_PCI_ENDPOINT), 2);
    struct dmar_scope ioapic = nth_scope(&p.t, &drhd0, 0);
    assert_int_equal(ioapic.type, DMAR_SCOPE_IOAPIC);
    assert_int_equal(ioapic.offset, 0x40);
    assert_int_equal(ioapic.enumeration_id, 2);
    assert_int_equal(ioapic.start_bus, 0x40);
    assert_int_equal(ioapic.hops, 1);
    assert_int_equal(ioapic.path[0], 0x05);
    assert_int_equal(ioapic.path[1], 0x04);

    struct dmar_struct rmrr = nth_struct(&p.t, 4);
    assert_int_equal(rmrr.type, DMAR_TYPE_RMRR);
    assert_int_equal(rmrr.base, 0xbf458000);
    assert_int_equal(rmrr.limit, 0xbf46ffff);
    assert_int_equal(count_scopes(&p.t, &rmrr, DMAR_SCOPE_PCI_ENDPOINT), 2);
    struct dmar_struct atsr = nth_struct(&p.t, 7);
    assert_int_equal(atsr.type, DMAR_TYPE_ATSR);
    assert_int_equal(atsr.flags, 0);
    assert_int_equal(count_scopes(&p.t, &atsr, DMAR_SCOPE_PCI_SUBHIERARCHY), 8);
    free(p.bytes);
}

static void test_supermicro_rhsa(void **state)
{
    (void)state;
    struct parsed p;
    parse_ok(&p, "dmar/supermicro-x10dai_4A64A6094FE3.dmar");
    assert_int_equal(p.t.host_address_width, 46);
    assert_int_equal(p.t.drhd_count, 3);
    struct dmar_struct first = nth_struct(&p.t, 0);
    assert_int_equal(first.register_base, 0xFBFFC000);
    assert_int_equal(count_scopes(&p.t, &first, DMAR_SCOPE_PCI_ENDPOINT), 8);
    struct dmar_struct all = nth_struct(&p.t, 2);
    assert_int_equal(all.register_base, 0xF3FFC000);
    assert_true(all.flags & DRHD_FLAG_INCLUDE_PCI_ALL);
    assert_int_equal(count_scopes(&p.t, &all, DMAR_SCOPE_HPET), 1);
    unsigned rhsa = 0;
    struct dmar_struct s;
    for (uint32_t c = 0; dmar_next_struct(&p.t, &c, &s);)
        if (s.type == DMAR_TYPE_RHSA) {
            rhsa++;
            assert_true(s.register_base == 0xFBFFC000 || s.register_base == 0xF3FFD000 ||
                        s.register_base == 0xF3FFC000);
        }
    assert_int_equal(rhsa, 2);
    free(p.bytes);
}

static void test_surface_andd(void **state)
{
    (void)state;
    struct parsed p;
    parse_ok(&p, "dmar/microsoft-surface-pro_773032238BB5.dmar");
    static const char *const names[] = {"\\_SB.PCI0.I2C0", "\\_SB.PCI0.I2C1", "\\_SB.PCI0.I2C2",
                                        "\\_SB.PCI0.I2C3", "\\_SB.PCI0.UA00"};
    static const uint8_t numbers[] = {1, 2, 3, 4, 9};
    unsigned andd = 0;
    struct dmar_struct s;
    for (uint32_t c = 0; dmar_next_struct(&p.t, &c, &s);) {
        if (s.type != DMAR_TYPE_ANDD)
            continue;
        assert_true(andd < 5);
        assert_int_equal(s.device_number, numbers[andd]);
        assert_int_equal(s.object_name_len, strlen(names[andd]));
        assert_memory_equal(s.object_name, names[andd], s.object_name_len);
        andd++;
    }
    assert_int_equal(andd, 5);
    /* The ANDD device numbers are what the namespace scopes of the second DRHD name. */
    struct dmar_struct drhd1 = nth_struct(&p.t, 1);
    assert_int_equal(count_scopes(&p.t, &drhd1, DMAR_SCOPE_ACPI_NAMESPACE), 5);
    assert_int_equal(nth_scope(&p.t, &drhd1, 6).enumeration_id, 9);
    free(p.bytes);
}

static void test_framework_satc_sidp(void **state)
{
    (void)state;
    struct parsed p;
    parse_ok(&p, "dmar/framework-laptop-13_717EDB7C4975.dmar");
    assert_int_equal(p.t.flags, 0x5);
    assert_int_equal(p.t.host_address_width, 42);
    struct dmar_struct satc = nth_struct(&p.t, 2), sidp = nth_struct(&p.t, 3);
    assert_int_equal(satc.type, DMAR_TYPE_SATC);
    assert_int_equal(satc.offset, 0x68);
    assert_int_equal(satc.flags, SATC_FLAG_ATC_REQUIRED);
    assert_int_equal(count_scopes(&p.t, &satc, DMAR_SCOPE_PCI_ENDPOINT), 2);
    assert_int_equal(sidp.type, DMAR_TYPE_SIDP);
    struct dmar_scope sc0 = nth_scope(&p.t, &sidp, 0), sc1 = nth_scope(&p.t, &sidp, 1);
    assert_int_equal(sc0.flags, 0x1f);
    assert_int_equal(sc1.flags, 0x1c);
    assert_int_equal(sc1.path[0], 0x0b);
    free(p.bytes);
}

static void test_asus_rmrr(void **state)
{
    (void)state;
    struct parsed p;
    parse_ok(&p, "dmar/asus-vivobook-x509ja_0F1460CA682D.dmar");
    assert_int_equal(p.t.header.revision, 2);
    assert_int_equal(p.t.flags, 0x7);
    assert_int_equal(p.t.host_address_width, 0x26 + 1);
    struct dmar_struct r0 = nth_struct(&p.t, 2), r1 = nth_struct(&p.t, 3);
    assert_int_equal(r0.base, 0x75BAE000);
    assert_int_equal(r0.limit, 0x75DF7FFF);
    assert_int_equal(r1.base, 0x7B800000);
    assert_int_equal(r1.limit, 0x7FFFFFFF);
    assert_int_equal(nth_scope(&p.t, &r1, 0).path[0], 0x02);
    free(p.bytes);
}

/* A DMAR built in memory: multi-hop paths, a non-zero Size field, two segments and a wrong
 * checksum, which none of the real fixtures combine. */
static size_t build_dmar(uint8_t *b, bool fix_checksum)
{
    memset(b, 0, 256);
    memcpy(b, "DMAR", 4);
    b[8] = 1;
    b[36] = 47;  /* 48-bit */
    size_t off = 48;
    /* DRHD, segment 3, size 2 (four pages), two scopes: 3 hops (12 bytes), 1 hop (8 bytes) */
    uint8_t drhd[16 + 12 + 8] = {0, 0, sizeof drhd, 0, 0, 2, 3, 0, 0x00, 0x10, 0xd0, 0xfe, 0, 0, 0, 0,
                                 1, 12, 0, 0, 0, 0x20, 0x1c, 0x4, 0x00, 0x0, 0x03, 0x1,
                                 2, 8, 0, 0, 0, 0x21, 0x02, 0x0};
    memcpy(b + off, drhd, sizeof drhd);
    off += sizeof drhd;
    /* DRHD segment 0 INCLUDE_PCI_ALL, no scopes */
    uint8_t all[16] = {0, 0, 16, 0, 1, 0, 0, 0, 0x00, 0x20, 0xd0, 0xfe};
    memcpy(b + off, all, sizeof all);
    off += sizeof all;
    b[4] = (uint8_t)off;
    if (fix_checksum)
        b[9] = (uint8_t)(0x100 - acpi_checksum(b, off));
    return off;
}

static void test_built_multihop_segments(void **state)
{
    (void)state;
    uint8_t b[256];
    size_t len = build_dmar(b, false);
    struct dmar_table t;
    struct diag d;
    diag_clear(&d);
    assert_true(dmar_parse(&t, b, len, &d));
    assert_false(t.header.checksum_ok);
    assert_int_equal(d.warnings, 1);
    assert_non_null(strstr(d.warning[0], "checksum"));
    assert_int_equal(t.host_address_width, 48);
    struct dmar_struct s = nth_struct(&t, 0);
    assert_int_equal(s.segment, 3);
    assert_int_equal(s.size, 2);
    assert_int_equal(s.register_base, 0xfed01000);
    struct dmar_scope deep = nth_scope(&t, &s, 0);
    assert_int_equal(deep.length, 12);
    assert_int_equal(deep.hops, 3);
    assert_int_equal(deep.start_bus, 0x20);
    assert_memory_equal(deep.path, ((uint8_t[]){0x1c, 0x4, 0x00, 0x0, 0x03, 0x1}), 6);
    struct dmar_scope bridge = nth_scope(&t, &s, 1);
    assert_int_equal(bridge.type, DMAR_SCOPE_PCI_SUBHIERARCHY);
    assert_int_equal(bridge.start_bus, 0x21);
    struct dmar_struct all = nth_struct(&t, 1);
    assert_int_equal(all.flags, DRHD_FLAG_INCLUDE_PCI_ALL);
    assert_int_equal(all.segment, 0);

    len = build_dmar(b, true);
    diag_clear(&d);
    assert_true(dmar_parse(&t, b, len, &d));
    assert_true(t.header.checksum_ok);
    assert_int_equal(d.warnings, 0);
}

/* Failure leaves the output untouched and names the offset. */
static void test_reject_keeps_output(void **state)
{
    (void)state;
    uint8_t b[256];
    size_t len = build_dmar(b, true);
    b[48 + 16 + 1] = 5; /* first scope length 5: shorter than a scope header */
    struct dmar_table t;
    memset(&t, 0xa5, sizeof t);
    struct dmar_table before = t;
    struct diag d;
    diag_clear(&d);
    assert_false(dmar_parse(&t, b, len, &d));
    assert_memory_equal(&t, &before, sizeof t);
    assert_true(d.failed);
    assert_int_equal(d.error_offset, 48 + 16 + 1);
    assert_string_equal(d.error, "offset 0x41: device scope length 5 is shorter than its 6-byte header");

    b[48 + 16 + 1] = 0; /* length 0 must not loop */
    diag_clear(&d);
    assert_false(dmar_parse(&t, b, len, &d));
    assert_non_null(strstr(d.error, "length 0"));

    b[48 + 16 + 1] = 12;
    b[48 + 2] = 0xff; /* DRHD length past the table */
    diag_clear(&d);
    assert_false(dmar_parse(&t, b, len, &d));
    assert_string_equal(d.error, "offset 0x32: DRHD structure length 255 runs past the table end (52 bytes left)");
}

static void test_unknown_structure_skipped(void **state)
{
    (void)state;
    uint8_t b[256];
    size_t len = build_dmar(b, false);
    /* append an unknown type 9 of 12 bytes */
    uint8_t unknown[12] = {9, 0, 12, 0};
    memcpy(b + len, unknown, sizeof unknown);
    len += sizeof unknown;
    b[4] = (uint8_t)len;
    struct dmar_table t;
    struct diag d;
    diag_clear(&d);
    assert_true(dmar_parse(&t, b, len, &d));
    assert_int_equal(t.structs, 3);
    struct dmar_struct s = nth_struct(&t, 2);
    assert_int_equal(s.type, 9);
    assert_string_equal(dmar_struct_name(s.type), "unknown");
    assert_false(s.has_scopes);
    assert_int_equal(d.warnings, 2); /* checksum, unknown type */
}

/* The project's own tables written in iasl's source language (tests/fixtures/acpi/synthetic);
 * the expected values are those in the .asl sources. */
static void test_synthetic_multisegment(void **state)
{
    (void)state;
    struct parsed p;
    parse_ok(&p, "synthetic/multi-segment-multihop.dmar");
    assert_int_equal(p.t.host_address_width, 46);
    assert_int_equal(p.t.drhd_count, 3);
    assert_int_equal(p.t.structs, 8);
    assert_int_equal(p.d.warnings, 0);
    struct dmar_struct a = nth_struct(&p.t, 0), b = nth_struct(&p.t, 1), c = nth_struct(&p.t, 2);
    assert_int_equal(a.register_base, 0x2B3C4D5E6000);
    assert_int_equal(a.flags, 0);
    struct dmar_scope two = nth_scope(&p.t, &a, 1), three = nth_scope(&p.t, &a, 2), ns = nth_scope(&p.t, &a, 4);
    assert_int_equal(two.length, 10);
    assert_int_equal(two.enumeration_id, 0x12);
    assert_int_equal(two.start_bus, 0x3a);
    assert_memory_equal(two.path, ((uint8_t[]){0x03, 0x02, 0x00, 0x01}), 4);
    assert_int_equal(three.length, 12);
    assert_int_equal(three.hops, 3);
    assert_int_equal(three.start_bus, 0x5d);
    assert_memory_equal(three.path, ((uint8_t[]){0x1d, 0x07, 0x0a, 0x01, 0x13, 0x06}), 6);
    assert_int_equal(nth_scope(&p.t, &a, 3).type, DMAR_SCOPE_PCI_SUBHIERARCHY);
    assert_int_equal(ns.type, DMAR_SCOPE_ACPI_NAMESPACE);
    assert_int_equal(ns.enumeration_id, 0x2c);
    assert_int_equal(b.segment, 1);
    assert_int_equal(b.flags, DRHD_FLAG_INCLUDE_PCI_ALL);
    assert_int_equal(b.register_base, 0x3A5B7C9DE000);
    assert_int_equal(c.segment, 0);
    assert_int_equal(c.flags, DRHD_FLAG_INCLUDE_PCI_ALL);
    assert_int_equal(count_scopes(&p.t, &c, DMAR_SCOPE_HPET), 1);
    struct dmar_struct rmrr2 = nth_struct(&p.t, 4);
    assert_int_equal(rmrr2.segment, 1);
    assert_int_equal(rmrr2.base, 0x123456000);
    assert_int_equal(rmrr2.limit, 0x123465FFF);
    assert_int_equal(nth_scope(&p.t, &rmrr2, 0).hops, 2);
    struct dmar_struct rhsa = nth_struct(&p.t, 6), andd = nth_struct(&p.t, 7);
    assert_int_equal(rhsa.register_base, b.register_base);
    assert_int_equal(rhsa.proximity_domain, 0xa7);
    assert_int_equal(andd.device_number, 0x2c);
    assert_int_equal(andd.object_name_len, strlen("\\_SB.SIO0.UAR3"));
    assert_memory_equal(andd.object_name, "\\_SB.SIO0.UAR3", andd.object_name_len);
    free(p.bytes);
}

static void test_synthetic_warnings(void **state)
{
    (void)state;
    struct parsed p;
    parse_ok(&p, "synthetic/rmrr-unaligned.dmar");
    assert_int_equal(p.d.warnings, 2); /* RMRR 2 (base) and RMRR 3 (limit + 1), not RMRR 1 */
    assert_non_null(strstr(p.d.warning[0], "0x7a5b3800"));
    assert_non_null(strstr(p.d.warning[1], "0xde017bff"));
    assert_int_equal(nth_struct(&p.t, 2).base, 0x7A5B3800);
    free(p.bytes);

    parse_ok(&p, "synthetic/bad-checksum.dmar");
    assert_false(p.t.header.checksum_ok);
    assert_int_equal(p.t.header.checksum, 0x8b);
    assert_int_equal(p.d.warnings, 1);
    assert_int_equal(p.t.structs, 2);
    free(p.bytes);
}

/* Bytes after the table's own length (a padded dump) are ignored, with a warning. */
static void test_trailing_bytes(void **state)
{
    (void)state;
    uint8_t b[256];
    size_t len = build_dmar(b, true);
    struct dmar_table t;
    struct diag d;
    diag_clear(&d);
    assert_true(dmar_parse(&t, b, len + 16, &d));
    assert_int_equal(t.header.length, len);
    assert_int_equal(d.warnings, 1);
    assert_non_null(strstr(d.warning[0], "16 bytes after"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dell_r820),
        cmocka_unit_test(test_supermicro_rhsa),
        cmocka_unit_test(test_surface_andd),
        cmocka_unit_test(test_framework_satc_sidp),
        cmocka_unit_test(test_asus_rmrr),
        cmocka_unit_test(test_built_multihop_segments),
        cmocka_unit_test(test_reject_keeps_output),
        cmocka_unit_test(test_unknown_structure_skipped),
        cmocka_unit_test(test_synthetic_multisegment),
        cmocka_unit_test(test_synthetic_warnings),
        cmocka_unit_test(test_trailing_bytes),
    };
    return cmocka_run_group_tests_name("dmar", tests, NULL, NULL);
}
