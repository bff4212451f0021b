/* CAP/ECAP decoding, with the register values QEMU 7.2 reports (platform notes, 1.2). */
#include <string.h>

#include "iommu/vtd_cap.h"
#include "test_util.h"

static void test_qemu_default(void **state)
{
    (void)state;
    struct vtd_caps c;
    vtd_caps_decode(0x10, 0x00D2008C22260206ull, 0xF00F4Aull, &c);
    assert_int_equal(c.nd, 6);
    assert_int_equal(c.domains, 65536);
    assert_int_equal(c.sagaw, VTD_SAGAW_39BIT_3LEVEL);
    assert_int_equal(c.mgaw_bits, 39);
    assert_int_equal(c.fault_reg_offset, 0x220);
    assert_int_equal(c.fault_regs, 1);
    assert_int_equal(c.sllps, 3);
    assert_true(c.psi);
    assert_int_equal(c.mamv, 18);
    assert_true(c.dwd && c.drd);
    assert_false(c.cm || c.rwbf || c.afl || c.plmr || c.phmr || c.zlr);
    assert_false(c.coherent);
    assert_true(c.qi && c.ir && c.pt);
    assert_false(c.dt || c.eim || c.sc || c.smts || c.pasid);
    assert_int_equal(c.iotlb_reg_offset, 0xf0);
    assert_int_equal(c.mhmv, 15);
    assert_int_equal(vtd_sagaw_levels(c.sagaw, c.mgaw_bits), 3);
    assert_int_equal(vtd_sagaw_levels(c.sagaw, 48), 0);
}

static void test_qemu_aw48_and_options(void **state)
{
    (void)state;
    struct vtd_caps c;
    vtd_caps_decode(0x10, 0x00D2008C222F0606ull, 0xF00F4Aull, &c);
    assert_int_equal(c.sagaw, VTD_SAGAW_39BIT_3LEVEL | VTD_SAGAW_48BIT_4LEVEL);
    assert_int_equal(c.mgaw_bits, 48);
    assert_int_equal(vtd_sagaw_levels(c.sagaw, 39), 3);
    assert_int_equal(vtd_sagaw_levels(c.sagaw, 48), 4);
    /* caching-mode=on,device-iotlb=on,snoop-control=on */
    vtd_caps_decode(0x10, 0x00D2008C22260286ull, 0xF00FCEull, &c);
    assert_true(c.cm && c.dt && c.sc);
    /* x-scalable-mode=on,x-pasid-mode=on */
    vtd_caps_decode(0x10, 0x00D2008C22260206ull, 0x490080F00F4Aull, &c);
    assert_true(c.smts && c.pasid && c.slts);
    assert_false(c.flts);
    /* dma-translation=off: no table depth at all */
    vtd_caps_decode(0x10, 0x00D2008C22260006ull, 0xF00F4Aull, &c);
    assert_int_equal(c.sagaw, 0);
    assert_int_equal(vtd_sagaw_levels(c.sagaw, 39), 0);
}

static uint64_t regs[3];
static uint32_t read32(void *ctx, uint64_t pa)
{
    (void)ctx;
    return (uint32_t)regs[(pa & 0xff) / 8];
}
static uint64_t read64(void *ctx, uint64_t pa)
{
    (void)ctx;
    return regs[(pa & 0xff) / 8];
}

static void test_read_and_report(void **state)
{
    (void)state;
    struct platform p = {.mmio_read32 = read32, .mmio_read64 = read64};
    regs[0] = 0x10;
    regs[1] = 0x00D2008C22260206ull;
    regs[2] = 0xF00F4A;
    struct vtd_caps c;
    assert_true(vtd_caps_read(&p, 0xfed90000, &c));
    struct mem_sink m;
    mem_sink_init(&m);
    vtd_caps_report(&c, "u0: ", &m.sink);
    assert_non_null(strstr(m.buf, "u0: VER 1.0 CAP 0x00d2008c22260206 ECAP 0x0000000000f00f4a\n"));
    assert_non_null(strstr(m.buf, "SAGAW=0x2 (39-bit/3-level)"));
    assert_non_null(strstr(m.buf, "MGAW=39 bits SLLPS=0x3 (2M 1G)"));
    assert_non_null(strstr(m.buf, "IRO=0xf0"));
    mem_sink_free(&m);
    regs[0] = 0xffffffff;
    regs[1] = ~0ull;
    assert_false(vtd_caps_read(&p, 0xfed90000, &c));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qemu_default),
        cmocka_unit_test(test_qemu_aw48_and_options),
        cmocka_unit_test(test_read_and_report),
    };
    return cmocka_run_group_tests_name("vtd_cap", tests, NULL, NULL);
}
