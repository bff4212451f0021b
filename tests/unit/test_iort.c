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
    };
    return cmocka_run_group_tests_name("iort", tests, NULL, NULL);
}
