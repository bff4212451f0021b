/* The VT-d unit's registers and their bits (VT-d specification 11.4): the driver's alone.
 * This folder is on no include path but the driver's and its unit test's, so code elsewhere
 * that names a register does not build; it uses the driver's functions (iommu/vtd.h). */
#ifndef IOMMU_VTD_VTD_REGS_H
#define IOMMU_VTD_VTD_REGS_H

#define VTD_REG_VER 0x00u  /* 32-bit */
#define VTD_REG_CAP 0x08u  /* 64-bit */
#define VTD_REG_ECAP 0x10u /* 64-bit */
#define VTD_REG_GCMD 0x18u
#define VTD_REG_GSTS 0x1cu
#define VTD_REG_RTADDR 0x20u
#define VTD_REG_CCMD 0x28u
#define VTD_REG_FSTS 0x34u
#define VTD_REG_FECTL 0x38u
#define VTD_REG_IQH 0x80u
#define VTD_REG_IQT 0x88u
#define VTD_REG_IQA 0x90u
#define VTD_REG_ICS 0x9cu
#define VTD_REG_IRTA 0xb8u

#define VTD_GCMD_TE (1u << 31)
#define VTD_GCMD_SRTP (1u << 30)
#define VTD_GCMD_WBF (1u << 27)
#define VTD_GCMD_QIE (1u << 26)
#define VTD_GCMD_IRE (1u << 25)
#define VTD_GCMD_SIRTP (1u << 24)
#define VTD_GSTS_TES (1u << 31)
#define VTD_GSTS_RTPS (1u << 30)
#define VTD_GSTS_WBFS (1u << 27)
#define VTD_GSTS_QIES (1u << 26)
#define VTD_GSTS_IRES (1u << 25)
#define VTD_GSTS_IRTPS (1u << 24)
#define VTD_GSTS_CFIS (1u << 23)
/* GSTS bits that stand for enables; GCMD writes carry them so nothing is switched off by
 * accident (the one-shot SRTP, SFL, WBF and SIRTP bits are left out). */
#define VTD_GSTS_PERSISTENT 0x96ffffffu

#define VTD_FSTS_PFO (1u << 0)
#define VTD_FSTS_PPF (1u << 1)
#define VTD_FSTS_IQE (1u << 4)

#endif
