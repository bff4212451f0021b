#include "iommu/vtd_cap.h"
#include "vtd_regs.h"

static uint64_t bits(uint64_t v, unsigned hi, unsigned lo)
{
    return (v >> lo) & ((2ull << (hi - lo)) - 1);
}

static bool bit(uint64_t v, unsigned n)
{
    return (v >> n) & 1;
}

void vtd_caps_decode(uint32_t ver, uint64_t cap, uint64_t ecap, struct vtd_caps *c)
{
    *c = (struct vtd_caps){.ver = ver, .cap = cap, .ecap = ecap};
    c->nd = (uint8_t)bits(cap, 2, 0);
    c->domains = c->nd <= 6 ? 1u << (4 + 2 * c->nd) : 0; /* 7 is reserved */
    c->afl = bit(cap, 3);
    c->rwbf = bit(cap, 4);
    c->plmr = bit(cap, 5);
    c->phmr = bit(cap, 6);
    c->cm = bit(cap, 7);
    c->sagaw = (uint8_t)bits(cap, 12, 8);
    c->mgaw_bits = (uint8_t)(bits(cap, 21, 16) + 1);
    c->zlr = bit(cap, 22);
    c->fault_reg_offset = (uint32_t)bits(cap, 33, 24) * 16;
    c->sllps = (uint8_t)bits(cap, 37, 34);
    c->psi = bit(cap, 39);
    c->fault_regs = (uint32_t)bits(cap, 47, 40) + 1;
    c->mamv = (uint8_t)bits(cap, 53, 48);
    c->dwd = bit(cap, 54);
    c->drd = bit(cap, 55);
    c->fl1gp = bit(cap, 56);
    c->pi = bit(cap, 59);
    c->fl5lp = bit(cap, 60);
    c->esirtps = bit(cap, 62);
    c->esrtps = bit(cap, 63);

    c->coherent = bit(ecap, 0);
    c->qi = bit(ecap, 1);
    c->dt = bit(ecap, 2);
    c->ir = bit(ecap, 3);
    c->eim = bit(ecap, 4);
    c->pt = bit(ecap, 6);
    c->sc = bit(ecap, 7);
    c->iotlb_reg_offset = (uint32_t)bits(ecap, 17, 8) * 16;
    c->mhmv = (uint8_t)bits(ecap, 23, 20);
    c->nest = bit(ecap, 26);
    c->prs = bit(ecap, 29);
    c->pasid = bit(ecap, 40);
    c->smts = bit(ecap, 43);
    c->slts = bit(ecap, 46);
    c->flts = bit(ecap, 47);
}

bool vtd_caps_read(const struct platform *plat, uint64_t register_base, struct vtd_caps *c)
{
    uint32_t ver = plat->mmio_read32(plat->ctx, register_base + VTD_REG_VER);
    uint64_t cap = plat->mmio_read64(plat->ctx, register_base + VTD_REG_CAP);
    uint64_t ecap = plat->mmio_read64(plat->ctx, register_base + VTD_REG_ECAP);
    vtd_caps_decode(ver, cap, ecap, c);
    return ver != 0xffffffffu && cap != ~0ull;
}

unsigned vtd_sagaw_levels(uint8_t sagaw, unsigned bits_wanted)
{
    static const struct {
        uint8_t sagaw_bit;
        uint8_t levels;
        uint8_t width;
    } agaw[] = {{VTD_SAGAW_39BIT_3LEVEL, 3, 39}, {VTD_SAGAW_48BIT_4LEVEL, 4, 48}, {VTD_SAGAW_57BIT_5LEVEL, 5, 57}};
    for (unsigned i = 0; i < sizeof agaw / sizeof agaw[0]; i++)
        if ((sagaw & agaw[i].sagaw_bit) && agaw[i].width >= bits_wanted)
            return agaw[i].levels;
    return 0;
}

/* Names of the set bits of 'v', space separated, or "none". */
static const char *bit_names(char *buf, size_t size, unsigned v, const char *const names[], unsigned count)
{
    size_t n = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < count; i++)
        if ((v >> i) & 1 && n < size)
            n += fmt_format(buf + n, size - n, "%s%s", n ? " " : "", names[i]);
    return n ? buf : "none";
}

void vtd_caps_report(const struct vtd_caps *c, const char *prefix, const struct sink *out)
{
    static const char *const sagaw_names[] = {"30-bit/2-level", "39-bit/3-level", "48-bit/4-level",
                                              "57-bit/5-level", "64-bit/6-level"};
    static const char *const sllps_names[] = {"2M", "1G", "512G", "1T"};
    char sagaw[80], sllps[32];
    sink_printf(out, "%sVER %u.%u CAP 0x%016lx ECAP 0x%016lx\n", prefix, (c->ver >> 4) & 0xf,
                c->ver & 0xf, c->cap, c->ecap);
    sink_printf(out, "%sCAP ND=%u (%u domains) SAGAW=0x%x (%s) MGAW=%u bits SLLPS=0x%x (%s) PSI=%u MAMV=%u\n",
                prefix, c->nd, c->domains, c->sagaw, bit_names(sagaw, sizeof sagaw, c->sagaw, sagaw_names, 5),
                c->mgaw_bits, c->sllps, bit_names(sllps, sizeof sllps, c->sllps, sllps_names, 4), c->psi,
                c->mamv);
    sink_printf(out, "%sCAP FRO=0x%x NFR=%u CM=%u RWBF=%u AFL=%u PLMR=%u PHMR=%u ZLR=%u DRD=%u DWD=%u PI=%u FL1GP=%u FL5LP=%u ESRTPS=%u ESIRTPS=%u\n",
                prefix, c->fault_reg_offset, c->fault_regs, c->cm, c->rwbf, c->afl, c->plmr, c->phmr,
                c->zlr, c->drd, c->dwd, c->pi, c->fl1gp, c->fl5lp, c->esrtps, c->esirtps);
    sink_printf(out, "%sECAP C=%u QI=%u DT=%u IR=%u EIM=%u PT=%u SC=%u IRO=0x%x MHMV=%u NEST=%u PRS=%u PASID=%u SMTS=%u SLTS=%u FLTS=%u\n",
                prefix, c->coherent, c->qi, c->dt, c->ir, c->eim, c->pt, c->sc, c->iotlb_reg_offset,
                c->mhmv, c->nest, c->prs, c->pasid, c->smts, c->slts, c->flts);
}
