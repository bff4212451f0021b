/* IORT parsing of real tables: decoded fields checked against what iasl -d shows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iommu/iort.h"
#include "test_util.h"

static uint8_t *parse_ok(const char *path, struct iort_table *t, struct diag *d)
{
    size_t len;
    uint8_t *bytes = read_fixture(path, &len);
    diag_clear(d);
    if (!iort_parse(t, bytes, len, d))
        fail_msg("%s: %s", path, d->error);
    return bytes;
}

static struct iort_node nth_node(const struct iort_table *t, unsigned n)
{
    struct iort_node node;
    unsigned i = 0;
    for (struct iort_cursor c = {0}; iort_next_node(t, &c, &node); i++)
        if (i == n)
            return node;
    fail_msg("table has only %u nodes", i);
    return node;
}

/* Where an ID ends up from node n, following ID mappings through every node that has them
 * (SMMUs included) until a node without mappings (the ITS): false when no range takes it. */
static bool final_id(const struct iort_table *t, struct iort_node n, uint32_t id, uint32_t *out,
                     struct iort_node *end)
{
    for (unsigned hops = 0; hops < 8; hops++) {
        uint32_t ref;
        if (!n.mapping_count) {
            *out = id;
            *end = n;
            return true;
        }
        if (!iort_map_id(t, &n, id, &id, &ref))
            return false;
        bool found = false;
        struct iort_node next;
        for (struct iort_cursor c = {0}; !found && iort_next_node(t, &c, &next);)
            found = next.offset == ref;
        if (!found)
            return false;
        n = next;
    }
    fail_msg("more than 8 hops");
    return false;
}

static void test_hi1620(void **state)
{
    (void)state;
    struct iort_table t;
    struct diag d;
    uint8_t *b = parse_ok(fixture("iort/hisilicon-Hi1620Iort.iort"), &t, &d);
    assert_int_equal(t.node_count, 0x3b);
    assert_int_equal(t.node_offset, 0x34);
    /* Every reference names a node; the warnings are the count quirk (QEMU's too): its RC
     * ranges of whole buses store the number of IDs, so each claims the next one's first. */
    assert_int_equal(d.warnings, 6);
    for (unsigned i = 0; i < 6; i++)
        assert_non_null(strstr(d.warning[i], "is the number of IDs"));
    assert_string_equal(d.warning[0], "offset 0x334: RC node ID mappings 1 and 2 overlap at ID 0x7b00: count 0x100 is the "
                                      "number of IDs (QEMU's and some firmware's quirk); read as ending at 0x7aff");
    unsigned per_type[8] = {0}, nodes = 0;
    struct iort_node n;
    for (struct iort_cursor c = {0}; iort_next_node(&t, &c, &n); nodes++)
        per_type[n.type < 8 ? n.type : 7]++;
    assert_int_equal(nodes, 59);
    assert_int_equal(per_type[IORT_NODE_ITS], 1);
    assert_int_equal(per_type[IORT_NODE_SMMUV3], 6);
    assert_int_equal(per_type[IORT_NODE_RC], 1);
    assert_int_equal(per_type[IORT_NODE_NC], 51);

    struct iort_node smmu = nth_node(&t, 1);
    assert_int_equal(smmu.type, IORT_NODE_SMMUV3);
    assert_int_equal(smmu.offset, 0x4c);
    assert_int_equal(smmu.length, 0x80);
    assert_int_equal(smmu.revision, 1);
    assert_int_equal(smmu.base_address, 0x148000000);
    assert_int_equal(smmu.node_flags, 9);
    assert_int_equal(smmu.mapping_count, 3);
    assert_true(smmu.has_proximity_domain);
    assert_true(smmu.has_device_id_mapping_index);
    assert_int_equal(smmu.device_id_mapping_index, 2);
    struct iort_id_mapping m = iort_id_mapping(&t, &smmu, 0);
    assert_int_equal(m.output_reference, 0x34); /* the ITS group */
    free(b);
}

static void test_d03_named_components(void **state)
{
    (void)state;
    struct iort_table t;
    struct diag d;
    uint8_t *b = parse_ok(fixture("iort/hisilicon-D03Iort.iort"), &t, &d);
    assert_int_equal(t.header.length, 0x2f4);
    struct iort_node its = nth_node(&t, 0);
    assert_int_equal(its.type, IORT_NODE_ITS);
    assert_int_equal(its.count, 1);
    assert_int_equal(iort_its_id(&t, &its, 0), 0);
    static const uint32_t outputs[] = {0x40080, 0x40000, 0x40040, 0x40800, 0x40b1c};
    for (unsigned i = 0; i < 5; i++) {
        struct iort_node nc = nth_node(&t, 1 + i);
        char name[16];
        snprintf(name, sizeof name, "\\_SB_.MBI%u", i);
        assert_int_equal(nc.type, IORT_NODE_NC);
        assert_int_equal(nc.object_name_len, strlen(name));
        assert_memory_equal(nc.object_name, name, nc.object_name_len);
        struct iort_id_mapping m = iort_id_mapping(&t, &nc, 0);
        assert_int_equal(m.id_count, 1);
        assert_int_equal(m.output_base, outputs[i]);
        assert_int_equal(m.output_reference, 0x34);
    }
    free(b);
}

static void test_template_2020_smmuv1(void **state)
{
    (void)state;
    struct iort_table t;
    struct diag d;
    uint8_t *b = parse_ok(fixture("iort/iasl-template-20200925.iort"), &t, &d);
    assert_int_equal(t.header.revision, 0);
    struct iort_node rc = nth_node(&t, 2);
    assert_int_equal(rc.type, IORT_NODE_RC);
    assert_int_equal(rc.mapping_offset, 0x24);
    assert_true(rc.has_memory_address_limit);  /* byte 32 lies before the mappings at 36 */
    assert_true(rc.has_pasid_capabilities);
    assert_false(rc.has_rc_flags);             /* bytes 36..39 are the first mapping */
    struct iort_node smmu = nth_node(&t, 3);
    assert_int_equal(smmu.type, IORT_NODE_SMMUV1V2);
    assert_int_equal(smmu.length, 0x60);
    assert_int_equal(smmu.count, 0);
    assert_int_equal(smmu.array_offset, 0x4c);
    struct iort_node v3 = nth_node(&t, 4);
    assert_int_equal(v3.type, IORT_NODE_SMMUV3);
    assert_int_equal(v3.revision, 1);
    free(b);
}

static void test_template_2026_rmr_iwb(void **state)
{
    (void)state;
    struct iort_table t;
    struct diag d;
    uint8_t *b = parse_ok(fixture("iort/iasl-template-20260408.iort"), &t, &d);
    assert_int_equal(t.header.revision, 5);
    assert_int_equal(t.node_count, 8);
    struct iort_node rmr = nth_node(&t, 6);
    assert_int_equal(rmr.type, IORT_NODE_RMR);
    assert_int_equal(rmr.revision, 3);
    assert_int_equal(rmr.count, 1);
    assert_int_equal(rmr.array_offset, 0x1c);
    struct iort_node iwb = nth_node(&t, 7);
    assert_int_equal(iwb.type, IORT_NODE_IWB);
    assert_int_equal(iwb.base_address, 0x2f000000);
    assert_int_equal(iwb.object_name_len, strlen("\\_SB_.IWB0"));
    assert_memory_equal(iwb.object_name, "\\_SB_.IWB0", iwb.object_name_len);
    struct iort_node pmcg = nth_node(&t, 5);
    assert_true(pmcg.has_page1);
    free(b);
}

/* The fwts synthetic revision-5 table is GPL-2.0, so it is read from the shared folder. */
static void test_fwts_rev5_shared(void **state)
{
    (void)state;
    const char *dir = shared_fixture_dir();
    if (!dir)
        skip();
    char path[1024];
    snprintf(path, sizeof path, "%s/iort/fwts-synthetic-rev5-badsum.iort", dir);
    struct iort_table t;
    struct diag d;
    uint8_t *b = parse_ok(path, &t, &d);
    assert_false(t.header.checksum_ok);
    assert_non_null(strstr(d.warning[0], "checksum"));
    struct iort_node its = nth_node(&t, 0);
    assert_int_equal(its.count, 3);
    assert_int_equal(iort_its_id(&t, &its, 2), 0x090a0b0c);
    struct iort_node nc = nth_node(&t, 1);
    assert_int_equal(nc.cache_coherency, 1);
    assert_int_equal(nc.allocation_hints, 0xf);
    assert_int_equal(nc.memory_flags, 3);
    assert_int_equal(nc.memory_address_limit, 0x20);
    struct iort_node rc = nth_node(&t, 2);
    assert_int_equal(rc.segment, 0xc0bbeeff);
    assert_int_equal(rc.ats_attribute, 1);
    struct iort_node smmu = nth_node(&t, 3);
    assert_int_equal(smmu.base_address, 0xf01030c020908000);
    assert_int_equal(smmu.span, 0x20000000);
    assert_int_equal(smmu.nsg_irpt, 0xf0);
    assert_int_equal(smmu.nsg_cfg_irpt, 0xf1);
    assert_int_equal(smmu.count, 4);
    uint32_t gsiv, flags;
    iort_smmu_interrupt(&t, &smmu, false, 1, &gsiv, &flags);
    assert_int_equal(gsiv, 0xd0700000);
    assert_int_equal(flags, 1);
    iort_smmu_interrupt(&t, &smmu, true, 3, &gsiv, &flags);
    assert_int_equal(gsiv, 0xf0008000);
    struct iort_node pmcg = nth_node(&t, 5);
    assert_int_equal(pmcg.type, IORT_NODE_PMCG);
    assert_int_equal(pmcg.revision, 2);
    assert_true(pmcg.has_page1);
    assert_int_equal(nth_node(&t, 6).type, IORT_NODE_RMR);
    free(b);
}

/* The layout QEMU 7.2's virt machine publishes with iommu=smmuv3 (the synthetic table
 * qemu-count-quirk.iort): the RC's range of bus 0 stores count 0x100 and so reaches RID
 * 0x100, where the range to the ITS starts. The parser names it, and iort_map_id gives each
 * RID to one range: bus 0 to the SMMU, RID 0x100 on to the ITS. */
static void test_count_quirk(void **state)
{
    (void)state;
    struct iort_table t;
    struct diag d;
    uint8_t *b = parse_ok(fixture("synthetic/qemu-count-quirk.iort"), &t, &d);
    assert_int_equal(t.header.length, 236);
    assert_int_equal(d.warnings, 1);
    assert_string_equal(d.warning[0], "offset 0xc4: RC node ID mappings 0 and 1 overlap at ID 0x100: count 0x100 is the "
                                      "number of IDs (QEMU's and some firmware's quirk); read as ending at 0xff");
    struct iort_node smmu = nth_node(&t, 1), rc = nth_node(&t, 2);
    assert_int_equal(smmu.type, IORT_NODE_SMMUV3);
    assert_int_equal(smmu.base_address, 0x9050000);
    assert_int_equal(rc.type, IORT_NODE_RC);
    uint32_t out = 0, ref = 0;
    static const struct {
        uint32_t rid, out, ref;
    } want[] = {{0x0000, 0x0000, 0x48}, {0x0010, 0x0010, 0x48}, {0x00ff, 0x00ff, 0x48},
                {0x0100, 0x0100, 0x30}, {0x0101, 0x0101, 0x30}, {0xffff, 0xffff, 0x30}};
    for (unsigned i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_true(iort_map_id(&t, &rc, want[i].rid, &out, &ref));
        assert_int_equal(out, want[i].out);
        assert_int_equal(ref, want[i].ref);
    }
    assert_true(iort_map_id(&t, &smmu, 0x18, &out, &ref)); /* stream id 0x18 -> ITS device id 0x18 */
    assert_int_equal(out, 0x18);
    assert_int_equal(ref, 0x30);
    assert_false(iort_map_id(&t, &rc, 0x10000, &out, &ref));

    /* Any other overlap is no quirk: named with its IDs, and the first range listed wins. */
    b[0xc4 + 4] = 0x80; /* mapping 0's count 0x180: RIDs 0..0x180 */
    diag_clear(&d);
    assert_true(iort_parse(&t, b, 236, &d));
    bool named = false;
    for (unsigned i = 0; i < d.warnings && i < DIAG_WARN_MAX; i++)
        named = named || strstr(d.warning[i], "RC node ID mappings 0 and 1 overlap (IDs 0x100..0x180): the first one "
                                              "listed wins") != NULL;
    assert_true(named);
    assert_true(iort_map_id(&t, &rc, 0x100, &out, &ref));
    assert_int_equal(ref, 0x48);
    assert_true(iort_map_id(&t, &rc, 0x181, &out, &ref));
    assert_int_equal(ref, 0x30);
    free(b);
}

static void test_reject_bad_arrays(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = read_fixture(fixture("iort/hisilicon-D03Iort.iort"), &len);
    struct iort_table t;
    struct diag d;

    /* ITS count pushed beyond the node */
    b[0x34 + 16] = 200;
    diag_clear(&d);
    assert_false(iort_parse(&t, b, len, &d));
    assert_non_null(strstr(d.error, "ITS identifier array"));
    b[0x34 + 16] = 1;

    /* A mapping count whose array would wrap a 32-bit multiply */
    b[0x4c + 8] = 0x00;
    b[0x4c + 9] = 0x00;
    b[0x4c + 10] = 0x00;
    b[0x4c + 11] = 0x40;
    diag_clear(&d);
    assert_false(iort_parse(&t, b, len, &d));
    assert_non_null(strstr(d.error, "ID mapping array"));
    b[0x4c + 11] = 0;
    b[0x4c + 8] = 1;

    /* The node array offset pointing into the header */
    b[40] = 0x10;
    diag_clear(&d);
    assert_false(iort_parse(&t, b, len, &d));
    assert_int_equal(d.error_offset, 40);
    b[40] = 0x34;

    diag_clear(&d);
    assert_true(iort_parse(&t, b, len, &d));
    free(b);
}

/* QEMU 7.2 virt's IORT as the guest sees it: no SMMU, the root complex straight to the ITS
 * with the device IDs the SMMU passed on, the count quirk gone, a valid checksum. */
static void test_hide_smmus_qemu(void **state)
{
    (void)state;
    struct iort_table t, g;
    struct diag d;
    uint8_t *b = parse_ok(fixture("synthetic/qemu-count-quirk.iort"), &t, &d);
    uint8_t out[512];
    memset(out, 0xee, sizeof out);
    size_t len = iort_hide_smmus(&t, out, sizeof out, &d);
    assert_int_equal(len, 236 - 0x58); /* the SMMUv3 node's 0x58 bytes gone, the RC's two mappings stay two */
    diag_clear(&d);
    assert_true(iort_parse(&g, out, len, &d));
    assert_int_equal(d.warnings, 0); /* the quirk is written as the specification counts */
    assert_int_equal(acpi_checksum(out, len), 0);
    assert_int_equal(g.node_count, 2);
    struct iort_node its = nth_node(&g, 0), rc = nth_node(&g, 1);
    assert_int_equal(its.type, IORT_NODE_ITS);
    assert_int_equal(rc.type, IORT_NODE_RC);
    assert_int_equal(rc.offset, 0x48);
    assert_int_equal(rc.mapping_count, 2);
    static const struct {
        uint32_t input, count, output;
    } want[] = {{0, 0xff, 0}, {0x100, 0xfeff, 0x100}};
    for (unsigned i = 0; i < 2; i++) {
        struct iort_id_mapping m = iort_id_mapping(&g, &rc, i);
        assert_int_equal(m.input_base, want[i].input);
        assert_int_equal(m.id_count, want[i].count);
        assert_int_equal(m.output_base, want[i].output);
        assert_int_equal(m.output_reference, its.offset);
    }
    /* Too small a buffer: refused. */
    assert_int_equal(iort_hide_smmus(&t, out, len - 1, &d), 0);

    /* Offsets on both hops: RIDs 0..0xff go to stream IDs 0x40..0x13f, and the SMMU sends
     * stream ID s to ITS device ID 0x1000 + s: composed, RID r goes to 0x1040 + r. */
    struct iort_node smmu = nth_node(&t, 1), rc_old = nth_node(&t, 2);
    b[rc_old.offset + rc_old.mapping_offset + 8] = 0x40;
    b[smmu.offset + smmu.mapping_offset + 9] = 0x10;
    b[9] = 0;
    b[9] = (uint8_t)(0x100 - acpi_checksum(b, 236));
    diag_clear(&d);
    assert_true(iort_parse(&t, b, 236, &d));
    len = iort_hide_smmus(&t, out, sizeof out, &d);
    assert_true(len && iort_parse(&g, out, len, &d));
    rc = nth_node(&g, 1);
    struct iort_id_mapping m = iort_id_mapping(&g, &rc, 0);
    assert_int_equal(m.input_base, 0);
    assert_int_equal(m.id_count, 0xff);
    assert_int_equal(m.output_base, 0x1040);
    free(b);
}

/* Every IORT fixture: the rewritten table parses, lists no SMMU (nor its PMCGs or RMRs), and
 * every ID a root complex or named component sends reaches the same ITS with the same device
 * ID as through the SMMU before. */
static void test_hide_smmus_fixtures(void **state)
{
    (void)state;
    static const char *const names[] = {"iort/hisilicon-D03Iort.iort", "iort/hisilicon-D05Iort.iort",
                                        "iort/hisilicon-Hi1620Iort.iort", "iort/iasl-template-20200925.iort",
                                        "iort/iasl-template-20260408.iort", "more/amd-seattle-styx-overdrive_Iort.iort",
                                        "more/arm-sgi-rd-fvp_Iort.iort", "more/phytium-ft2000-4_Iort.iort",
                                        "more/raspberrypi-4_Iort.iort", "more/rockchip-rk3588-pcie3x4_Iort.iort",
                                        "more/socionext-synquacer-developerbox_Iort.iort",
                                        "synthetic/qemu-count-quirk.iort"};
    unsigned rewritten = 0, ids_checked = 0;
    for (unsigned f = 0; f < sizeof names / sizeof names[0]; f++) {
        struct iort_table t, g;
        struct diag d;
        uint8_t *b = parse_ok(fixture(names[f]), &t, &d);
        static uint8_t out[64 * 1024];
        size_t len = iort_hide_smmus(&t, out, sizeof out, &d);
        if (!len) {
            /* Refusals must say why: nested SMMUs or data after the mappings. */
            print_message("# %s: not rewritten: %s\n", names[f], d.error);
            assert_true(d.error[0] != 0);
            free(b);
            continue;
        }
        rewritten++;
        diag_clear(&d);
        if (!iort_parse(&g, out, len, &d))
            fail_msg("%s rewritten: %s", names[f], d.error);
        assert_int_equal(acpi_checksum(out, len), 0);
        struct iort_node n;
        for (struct iort_cursor c = {0}; iort_next_node(&g, &c, &n);)
            assert_false(n.type == IORT_NODE_SMMUV1V2 || n.type == IORT_NODE_SMMUV3 || n.type == IORT_NODE_RMR);
        /* Same sources, in the same order, in both. */
        struct iort_cursor co = {0}, cn = {0};
        struct iort_node o, m;
        while (iort_next_node(&t, &co, &o)) {
            if (o.type != IORT_NODE_RC && o.type != IORT_NODE_NC)
                continue;
            do
                assert_true(iort_next_node(&g, &cn, &m));
            while (m.type != IORT_NODE_RC && m.type != IORT_NODE_NC);
            assert_int_equal(m.type, o.type);
            for (uint32_t i = 0; i < o.mapping_count; i++) {
                struct iort_id_mapping om = iort_id_mapping(&t, &o, i);
                uint64_t last = iort_mapping_last(&t, &o, i);
                uint64_t ids[3] = {om.input_base, om.input_base + (last - om.input_base) / 2, last};
                for (unsigned k = 0; k < 3; k++) {
                    uint32_t before = 0, after = 0;
                    struct iort_node end_before, end_after;
                    bool was = final_id(&t, o, (uint32_t)ids[k], &before, &end_before);
                    if (om.flags & IORT_MAPPING_SINGLE)
                        continue; /* single mappings take no input ID */
                    bool is = final_id(&g, m, (uint32_t)ids[k], &after, &end_after);
                    if (!was || end_before.type != IORT_NODE_ITS)
                        continue; /* an ID that went nowhere, or to a named component */
                    if (!is || after != before || end_after.type != IORT_NODE_ITS ||
                        end_after.identifier != end_before.identifier)
                        fail_msg("%s: node 0x%x ID 0x%llx: ITS %u device 0x%x before, %s %u device 0x%x after", names[f],
                                 o.offset, (unsigned long long)ids[k], end_before.identifier, before,
                                 is ? iort_node_name(end_after.type) : "nothing", is ? end_after.identifier : 0, after);
                    ids_checked++;
                }
            }
        }
        free(b);
    }
    print_message("# %u of %u IORTs rewritten, %u IDs followed to the same ITS device ID\n", rewritten,
                  (unsigned)(sizeof names / sizeof names[0]), ids_checked);
    assert_true(rewritten >= 8);
    assert_true(ids_checked > 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hi1620),
        cmocka_unit_test(test_d03_named_components),
        cmocka_unit_test(test_template_2020_smmuv1),
        cmocka_unit_test(test_template_2026_rmr_iwb),
        cmocka_unit_test(test_fwts_rev5_shared),
        cmocka_unit_test(test_reject_bad_arrays),
        cmocka_unit_test(test_count_quirk),
        cmocka_unit_test(test_hide_smmus_qemu),
        cmocka_unit_test(test_hide_smmus_fixtures),
    };
    return cmocka_run_group_tests_name("iort", tests, NULL, NULL);
}
