#include "iommu/smmuv3.h"
#include "smmuv3_regs.h"

static const unsigned oas_bits[8] = {32, 36, 40, 42, 44, 48, 52, 0};

bool smmuv3_caps_read(const struct platform *p, uint64_t base, struct smmuv3_caps *c)
{
    uint32_t r[6];
    for (unsigned i = 0; i < 6; i++)
        r[i] = p->mmio_read32(p->ctx, base + SMMU_IDR0 + 4 * i);
    *c = (struct smmuv3_caps){.idr0 = r[0], .idr1 = r[1], .idr3 = r[3], .idr5 = r[5],
                              .iidr = p->mmio_read32(p->ctx, base + SMMU_IIDR),
                              .aidr = p->mmio_read32(p->ctx, base + SMMU_AIDR)};
    if (r[0] == 0xffffffffu && r[1] == 0xffffffffu)
        return false;
    c->stage1 = r[0] & IDR0_S1P;
    c->stage2 = r[0] & IDR0_S2P;
    c->aarch64_tables = r[0] & IDR0_TTF_AARCH64;
    c->coherent = r[0] & IDR0_COHACC;
    c->asid16 = r[0] & IDR0_ASID16;
    c->two_level = IDR0_ST_LEVEL(r[0]) == 1;
    c->gran4k = r[5] & IDR5_GRAN4K;
    c->sid_bits = IDR1_SIDSIZE(r[1]);
    c->cmdq_log2 = IDR1_CMDQS(r[1]);
    c->eventq_log2 = IDR1_EVENTQS(r[1]);
    c->oas_field = (uint8_t)IDR5_OAS(r[5]);
    c->oas_bits = oas_bits[c->oas_field];
    return true;
}

void smmuv3_caps_report(const struct smmuv3_caps *c, const char *prefix, const struct sink *out)
{
    sink_printf(out, "%sIDR0 0x%08x: stage 1 %s, stage 2 %s, AArch64 tables %s, coherent %s, %u-bit ASIDs, %s stream table\n",
                prefix, c->idr0, c->stage1 ? "yes" : "no", c->stage2 ? "yes" : "no", c->aarch64_tables ? "yes" : "no",
                c->coherent ? "yes" : "no", c->asid16 ? 16u : 8u, c->two_level ? "2-level" : "linear");
    sink_printf(out, "%sIDR1 0x%08x: %u-bit stream ids, command queue up to 2^%u, event queue up to 2^%u%s%s\n",
                prefix, c->idr1, c->sid_bits, c->cmdq_log2, c->eventq_log2,
                c->idr1 & IDR1_QUEUES_PRESET ? ", queues preset" : "", c->idr1 & IDR1_TABLES_PRESET ? ", tables preset" : "");
    sink_printf(out, "%sIDR5 0x%08x: %u-bit output addresses, granules%s%s%s\n", prefix, c->idr5, c->oas_bits,
                c->idr5 & IDR5_GRAN4K ? " 4K" : "", c->idr5 & IDR5_GRAN16K ? " 16K" : "",
                c->idr5 & IDR5_GRAN64K ? " 64K" : "");
    sink_printf(out, "%sIIDR 0x%08x AIDR 0x%08x (SMMUv3.%u)\n", prefix, c->iidr, c->aidr, c->aidr & 0xfu);
}

const char *smmuv3_caps_unusable(const struct smmuv3_caps *c)
{
    if (!c->stage1)
        return "no stage-1 translation (IDR0.S1P = 0)";
    if (!c->aarch64_tables)
        return "no AArch64 translation tables (IDR0.TTF)";
    if (!c->gran4k)
        return "no 4 KiB translation granule (IDR5.GRAN4K = 0)";
    if (!c->oas_bits || c->oas_bits < 32)
        return "an output address size this driver does not know (IDR5.OAS)";
    if (c->cmdq_log2 < 1 || c->eventq_log2 < 1)
        return "queues too small";
    if (c->idr1 & (IDR1_QUEUES_PRESET | IDR1_TABLES_PRESET))
        return "preset queues or tables (IDR1), which this driver does not use";
    if (!c->two_level && c->sid_bits > 7)
        return "a linear stream table for more than 128 streams, larger than the driver's static block";
    return NULL;
}
