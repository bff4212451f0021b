/* VT-d unit identification: the CAP/ECAP fields (VT-d specification
 * 11.4.2 and 11.4.3), decoded into named fields. */
#ifndef IOMMU_VTD_CAP_H
#define IOMMU_VTD_CAP_H

#include <stdbool.h>
#include <stdint.h>

#include "fmt.h"
#include "platform.h"

/* SAGAW bits: supported adjusted guest address widths, i.e. second-level table depths. */
#define VTD_SAGAW_39BIT_3LEVEL 0x2u
#define VTD_SAGAW_48BIT_4LEVEL 0x4u
#define VTD_SAGAW_57BIT_5LEVEL 0x8u

struct vtd_caps {
    uint32_t ver;
    uint64_t cap, ecap;

    /* CAP */
    uint8_t nd;            /* domain-id field code: 2^(4 + 2*nd) domains */
    uint32_t domains;
    bool afl, rwbf, plmr, phmr, cm;
    uint8_t sagaw;
    uint8_t mgaw_bits;     /* maximum guest address width in bits (field + 1) */
    bool zlr;
    uint32_t fault_reg_offset; /* FRO * 16 */
    uint8_t sllps;         /* bit 0: 2 MiB, bit 1: 1 GiB second-level pages */
    bool psi;
    uint32_t fault_regs;   /* NFR + 1 */
    uint8_t mamv;
    bool dwd, drd, fl1gp, pi, fl5lp, esirtps, esrtps;

    /* ECAP */
    bool coherent, qi, dt, ir, eim, pt, sc;
    uint32_t iotlb_reg_offset; /* IRO * 16: IVA register; the IOTLB register is at +8 */
    uint8_t mhmv;
    bool nest, prs, pasid, smts, slts, flts;
};

void vtd_caps_decode(uint32_t ver, uint64_t cap, uint64_t ecap, struct vtd_caps *c);

/* Reads VER, CAP and ECAP of the unit at register_base and decodes them. Returns false
 * when the registers read as all ones (no device decodes that address). */
bool vtd_caps_read(const struct platform *plat, uint64_t register_base, struct vtd_caps *c);

/* Second-level table depth (3, 4 or 5) that SAGAW allows for an address width of 'bits',
 * or 0 when none does. */
unsigned vtd_sagaw_levels(uint8_t sagaw, unsigned bits);

/* Several lines naming every decoded field, each line starting with 'prefix'. */
void vtd_caps_report(const struct vtd_caps *c, const char *prefix, const struct sink *out);

#endif
