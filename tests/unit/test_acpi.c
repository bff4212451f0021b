/* RSDP/XSDT discovery and MCFG, over a fake physical memory. */
#include <string.h>

#include "iommu/acpi.h"
#include "iommu/le.h"
#include "test_util.h"

#define MEM_BASE 0x7f000000ull
#define MEM_SIZE 0x10000u
#define RSDP_PA (MEM_BASE + 0x100)
#define XSDT_PA (MEM_BASE + 0x1000)

static uint8_t mem[MEM_SIZE];

static const void *map_phys(void *ctx, uint64_t pa, size_t len)
{
    (void)ctx;
    if (pa < MEM_BASE || !span_ok(pa - MEM_BASE, len, MEM_SIZE))
        return NULL;
    return mem + (pa - MEM_BASE);
}

static const struct platform plat = {.map_phys = map_phys};

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static void seal(uint8_t *table)
{
    table[9] = 0;
    table[9] = (uint8_t)(0x100 - acpi_checksum(table, le32(table + 4)));
}

static void make_table(uint64_t pa, const char *sig, uint32_t len)
{
    uint8_t *t = mem + (pa - MEM_BASE);
    memset(t, 0, len);
    memcpy(t, sig, 4);
    put32(t + 4, len);
    t[8] = 1;
    memcpy(t + 10, "OEMID ", 6);
    seal(t);
}

/* RSDP, then an XSDT listing the given physical addresses. */
static void make_rsdp_xsdt(const uint64_t *entries, unsigned n)
{
    memset(mem, 0, sizeof mem);
    uint8_t *r = mem + (RSDP_PA - MEM_BASE);
    memcpy(r, "RSD PTR ", 8);
    r[15] = 2;
    put32(r + 20, 36);
    put64(r + 24, XSDT_PA);
    r[8] = (uint8_t)(0x100 - acpi_checksum(r, 20));
    r[32] = (uint8_t)(0x100 - acpi_checksum(r, 36));
    make_table(XSDT_PA, "XSDT", 36 + 8 * n);
    uint8_t *x = mem + (XSDT_PA - MEM_BASE);
    for (unsigned i = 0; i < n; i++)
        put64(x + 36 + 8 * i, entries[i]);
    seal(x);
}

static void test_discovers_tables(void **state)
{
    (void)state;
    const uint64_t entries[] = {MEM_BASE + 0x2000, MEM_BASE + 0x3000, MEM_BASE + 0x4000};
    make_rsdp_xsdt(entries, 3);
    make_table(entries[0], "FACP", 244);
    make_table(entries[1], "DMAR", 80);
    make_table(entries[2], "MCFG", 60);
    mem[0x4000 + 40] ^= 1; /* MCFG checksum now wrong */
    struct acpi_tables t;
    struct diag d;
    diag_clear(&d);
    assert_true(acpi_discover(&plat, RSDP_PA, &t, &d));
    assert_int_equal(t.count, 3);
    assert_int_equal(t.xsdt_pa, XSDT_PA);
    assert_int_equal(t.rsdp_revision, 2);
    const struct acpi_table_ref *dmar = acpi_find(&t, "DMAR");
    assert_non_null(dmar);
    assert_int_equal(dmar->pa, entries[1]);
    assert_int_equal(dmar->length, 80);
    assert_true(dmar->checksum_ok);
    assert_false(acpi_find(&t, "MCFG")->checksum_ok);
    assert_int_equal(d.warnings, 1);
    assert_null(acpi_find(&t, "IORT"));
    assert_ptr_equal(acpi_map_table(&plat, dmar), mem + 0x3000);
}

static void test_bad_entries_are_skipped(void **state)
{
    (void)state;
    const uint64_t entries[] = {0, 0xdead0000, MEM_BASE + MEM_SIZE - 16, MEM_BASE + 0x2000,
                                MEM_BASE + 0x3000};
    make_rsdp_xsdt(entries, 5);
    make_table(entries[3], "DMAR", 48);
    make_table(entries[4], "TINY", 36);
    put32(mem + 0x3000 + 4, 20); /* length below the header */
    struct acpi_tables t;
    struct diag d;
    diag_clear(&d);
    assert_true(acpi_discover(&plat, RSDP_PA, &t, &d));
    assert_int_equal(t.xsdt_entries, 5);
    assert_int_equal(t.count, 1);
    assert_string_equal(t.table[0].signature, "DMAR");
    assert_int_equal(d.warnings, 4);
}

static void test_bad_rsdp_and_xsdt(void **state)
{
    (void)state;
    const uint64_t entries[] = {MEM_BASE + 0x2000};
    struct acpi_tables t;
    struct diag d;

    make_rsdp_xsdt(entries, 1);
    mem[0x100] = 'X';
    diag_clear(&d);
    assert_false(acpi_discover(&plat, RSDP_PA, &t, &d));
    assert_non_null(strstr(d.error, "RSD PTR"));

    make_rsdp_xsdt(entries, 1);
    mem[0x100 + 15] = 0; /* ACPI 1.0: no XSDT */
    diag_clear(&d);
    assert_false(acpi_discover(&plat, RSDP_PA, &t, &d));
    assert_non_null(strstr(d.error, "revision 0"));

    diag_clear(&d);
    assert_false(acpi_discover(&plat, 0x1000, &t, &d)); /* unmapped */

    make_rsdp_xsdt(entries, 1);
    put32(mem + 0x1000 + 4, 0x00100000); /* XSDT longer than memory */
    diag_clear(&d);
    assert_false(acpi_discover(&plat, RSDP_PA, &t, &d));
    assert_non_null(strstr(d.error, "runs past mapped memory"));

    make_rsdp_xsdt(entries, 1);
    memcpy(mem + 0x1000, "RSDT", 4);
    diag_clear(&d);
    assert_false(acpi_discover(&plat, RSDP_PA, &t, &d));
    assert_non_null(strstr(d.error, "expected \"XSDT\""));

    make_rsdp_xsdt(entries, 1);
    make_table(entries[0], "APIC", 40);
    put32(mem + 0x1000 + 4, 36 + 8 + 3); /* partial entry */
    seal(mem + 0x1000);
    mem[0x100 + 8] ^= 0xff; /* RSDP checksum wrong: warn, go on */
    diag_clear(&d);
    assert_true(acpi_discover(&plat, RSDP_PA, &t, &d));
    assert_int_equal(t.count, 1);
    /* byte 8 lies under both RSDP checksums; plus the partial XSDT entry */
    assert_int_equal(d.warnings, 3);
}

/* The DMAR taken out of the XSDT (and the RSDT): the list shortened, the checksum right,
 * the table itself where it was. */
static void test_root_remove(void **state)
{
    (void)state;
    const uint64_t entries[] = {MEM_BASE + 0x2000, MEM_BASE + 0x3000, MEM_BASE + 0x4000, MEM_BASE + 0x5000,
                                MEM_BASE + 0xF000 + 0x10000};
    make_rsdp_xsdt(entries, 5); /* the last entry points outside memory: it stays */
    make_table(entries[0], "DMAR", 80);
    make_table(entries[1], "FACP", 244);
    make_table(entries[2], "DMAR", 48);
    make_table(entries[3], "MCFG", 60);
    uint8_t *x = mem + (XSDT_PA - MEM_BASE);
    struct diag d;
    diag_clear(&d);
    assert_int_equal(acpi_root_remove(x, 36 + 8 * 5, 8, &plat, "DMAR", &d), 2);
    assert_int_equal(le32(x + 4), 36 + 8 * 3);
    assert_int_equal(acpi_checksum(x, 36 + 8 * 3), 0);
    assert_int_equal(le64(x + 36), entries[1]);
    assert_int_equal(le64(x + 44), entries[3]);
    assert_int_equal(le64(x + 52), entries[4]);
    assert_int_equal(le64(x + 60), 0); /* the freed tail */
    assert_memory_equal(mem + 0x2000, "DMAR", 4);
    struct acpi_tables t;
    assert_true(acpi_discover(&plat, RSDP_PA, &t, &d));
    assert_null(acpi_find(&t, "DMAR"));
    assert_non_null(acpi_find(&t, "MCFG"));
    assert_true(acpi_find(&t, "FACP")->checksum_ok);
    /* again: nothing more to take */
    assert_int_equal(acpi_root_remove(x, 36 + 8 * 3, 8, &plat, "DMAR", &d), 0);
    assert_int_equal(le32(x + 4), 36 + 8 * 3);
    /* an RSDT, 4-byte entries */
    uint8_t *rsdt = mem + 0x6000;
    make_table(MEM_BASE + 0x6000, "RSDT", 36 + 4 * 2);
    put32(rsdt + 36, (uint32_t)entries[2]);
    put32(rsdt + 40, (uint32_t)entries[3]);
    seal(rsdt);
    assert_int_equal(acpi_root_remove(rsdt, 44, 4, &plat, "DMAR", &d), 1);
    assert_int_equal(le32(rsdt + 4), 40);
    assert_int_equal(le32(rsdt + 36), (uint32_t)entries[3]);
    assert_int_equal(acpi_checksum(rsdt, 40), 0);
    /* a root table whose length does not fit: refused, unchanged */
    uint8_t before[48];
    memcpy(before, rsdt, sizeof before);
    assert_int_equal(acpi_root_remove(rsdt, 36, 4, &plat, "DMAR", &d), -1);
    assert_memory_equal(rsdt, before, sizeof before);
}

static void test_mcfg(void **state)
{
    (void)state;
    uint8_t b[44 + 3 * 16 + 5];
    memset(b, 0, sizeof b);
    memcpy(b, "MCFG", 4);
    put32(b + 4, 44 + 2 * 16);
    put64(b + 44, 0xb0000000);
    b[44 + 11] = 0xff;
    put64(b + 60, 0xc0000000);
    b[60 + 8] = 1;
    b[60 + 10] = 0x10;
    b[60 + 11] = 0x1f;
    b[9] = (uint8_t)(0x100 - acpi_checksum(b, 44 + 32));
    struct mcfg m;
    struct diag d;
    diag_clear(&d);
    assert_true(mcfg_parse(b, 44 + 32, &m, &d));
    assert_int_equal(m.count, 2);
    assert_int_equal(m.window[0].base, 0xb0000000);
    assert_int_equal(m.window[0].end_bus, 0xff);
    assert_int_equal(m.window[1].segment, 1);
    assert_int_equal(m.window[1].start_bus, 0x10);
    assert_int_equal(d.warnings, 0);

    put32(b + 4, 44 + 2 * 16 + 5); /* partial third entry */
    diag_clear(&d);
    assert_true(mcfg_parse(b, sizeof b, &m, &d));
    assert_int_equal(m.count, 2);
    assert_true(d.warnings >= 1);

    b[60 + 11] = 0x0f; /* end bus below start bus */
    diag_clear(&d);
    assert_false(mcfg_parse(b, sizeof b, &m, &d));
    assert_int_equal(d.error_offset, 60 + 10);

    diag_clear(&d);
    assert_false(mcfg_parse(b, 30, &m, &d)); /* shorter than a header */
}

static void test_madt_ioapics(void **state)
{
    (void)state;
    /* a local APIC (8 bytes), an I/O APIC at 0xfec00000, an override (10), another I/O APIC */
    uint8_t b[44 + 8 + 12 + 10 + 12];
    memset(b, 0, sizeof b);
    memcpy(b, "APIC", 4);
    put32(b + 4, sizeof b);
    uint8_t *e = b + 44;
    e[0] = 0, e[1] = 8;
    e += 8;
    e[0] = 1, e[1] = 12, e[2] = 0;
    put32(e + 4, 0xfec00000);
    e += 12;
    e[0] = 2, e[1] = 10;
    e += 10;
    e[0] = 1, e[1] = 12, e[2] = 1;
    put32(e + 4, 0xfec01000);
    put32(e + 8, 24);
    b[9] = (uint8_t)(0x100 - acpi_checksum(b, sizeof b));
    struct madt_ioapics m = {.count = 99};
    struct diag d;
    diag_clear(&d);
    assert_true(madt_ioapics_parse(b, sizeof b, &m, &d));
    assert_int_equal(m.count, 2);
    assert_int_equal(m.base[0], 0xfec00000);
    assert_int_equal(m.base[1], 0xfec01000);

    e[1] = 11; /* an I/O APIC entry too short */
    diag_clear(&d);
    m.count = 99;
    assert_false(madt_ioapics_parse(b, sizeof b, &m, &d));
    assert_int_equal(m.count, 99); /* untouched */
    assert_int_equal(d.error_offset, 44 + 8 + 12 + 10 + 1);
    e[1] = 13; /* runs past the table */
    diag_clear(&d);
    assert_false(madt_ioapics_parse(b, sizeof b, &m, &d));
    assert_int_equal(d.error_offset, 44 + 8 + 12 + 10);
    e[1] = 0; /* would never advance */
    diag_clear(&d);
    assert_false(madt_ioapics_parse(b, sizeof b, &m, &d));
    diag_clear(&d);
    assert_false(madt_ioapics_parse(b, 30, &m, &d)); /* shorter than a header */
}

/* The GICC entries of an Arm MADT: each enabled one's MPIDR in table order; a disabled one
 * left out; a GICC too short to hold its MPIDR an error, with the list untouched. */
static void test_madt_giccs(void **state)
{
    (void)state;
    /* a GICD (24 bytes), GICCs for MPIDR 0, 0x100 (disabled), 0x80000001, a GICR (16), an ITS (20) */
    uint8_t b[44 + 24 + 3 * 80 + 16 + 20];
    memset(b, 0, sizeof b);
    memcpy(b, "APIC", 4);
    put32(b + 4, sizeof b);
    uint8_t *e = b + 44;
    e[0] = 0xC, e[1] = 24;
    e += 24;
    const uint64_t mpidr[3] = {0, 0x100, 0x80000001ull};
    for (unsigned i = 0; i < 3; i++, e += 80) {
        e[0] = 0xB, e[1] = 80;
        put32(e + 4, i);                   /* CPU interface number */
        put32(e + 12, i == 1 ? 0 : 1);     /* flags: enabled */
        put32(e + 68, (uint32_t)mpidr[i]);
        put32(e + 72, (uint32_t)(mpidr[i] >> 32));
    }
    e[0] = 0xE, e[1] = 16;
    e += 16;
    e[0] = 0xF, e[1] = 20;
    put32(e + 8, 0x08080000);
    b[9] = (uint8_t)(0x100 - acpi_checksum(b, sizeof b));
    struct madt_giccs m = {.count = 99};
    struct diag d;
    diag_clear(&d);
    assert_true(madt_giccs_parse(b, sizeof b, &m, &d));
    assert_int_equal(m.count, 2);
    assert_int_equal(m.mpidr[0], 0);
    assert_int_equal(m.mpidr[1], 0x80000001ull);
    assert_int_equal(m.its_count, 1);
    assert_int_equal(m.its_base[0], 0x08080000);
    /* The guest's copy without the ITS: 20 bytes shorter, still summing to 0, the same CPUs. */
    uint8_t g[sizeof b];
    memcpy(g, b, sizeof b);
    assert_int_equal(madt_remove_type(g, sizeof g, 0xF), 1);
    assert_int_equal(g[4] | g[5] << 8, sizeof b - 20);
    assert_int_equal(acpi_checksum(g, sizeof b - 20), 0);
    struct madt_giccs again;
    assert_true(madt_giccs_parse(g, sizeof g, &again, &d));
    assert_int_equal(again.count, 2);
    assert_int_equal(again.its_count, 0);
    assert_int_equal(madt_remove_type(g, sizeof g, 0xF), 0);
    g[44 + 1] = 200; /* a length past the end: refused, nothing changed */
    uint8_t before[sizeof g];
    memcpy(before, g, sizeof g);
    assert_int_equal(madt_remove_type(g, sizeof g, 0xB), -1);
    assert_memory_equal(before, g, sizeof g);
    /* The same table has no I/O APIC. */
    struct madt_ioapics io = {.count = 99};
    assert_true(madt_ioapics_parse(b, sizeof b, &io, &d));
    assert_int_equal(io.count, 0);

    b[44 + 24 + 80 + 1] = 75; /* the second GICC ends before its MPIDR does */
    b[44 + 24 + 80 + 75] = 0xB, b[44 + 24 + 80 + 76] = 5; /* a filler entry keeps the walk on track */
    diag_clear(&d);
    m.count = 99;
    assert_false(madt_giccs_parse(b, sizeof b, &m, &d));
    assert_int_equal(m.count, 99);
    assert_int_equal(d.error_offset, 44 + 24 + 80 + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discovers_tables),
        cmocka_unit_test(test_bad_entries_are_skipped),
        cmocka_unit_test(test_bad_rsdp_and_xsdt),
        cmocka_unit_test(test_mcfg),
        cmocka_unit_test(test_madt_ioapics),
        cmocka_unit_test(test_madt_giccs),
        cmocka_unit_test(test_root_remove),
    };
    return cmocka_run_group_tests_name("acpi", tests, NULL, NULL);
}
