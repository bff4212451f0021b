/* Arm SMMUv3 registers and in-memory structures (Arm IHI 0070, "SMMU architecture version
 * 3"), as this driver uses them. Private to iommu/smmuv3/: everything outside talks to the
 * unit through iommu/smmuv3.h and iommu/unit.h. */
#ifndef IOMMU_SMMUV3_REGS_H
#define IOMMU_SMMUV3_REGS_H

#include <stdint.h>

/* Register page 0 */
#define SMMU_IDR0 0x00u
#define SMMU_IDR1 0x04u
#define SMMU_IDR3 0x0cu
#define SMMU_IDR5 0x14u
#define SMMU_IIDR 0x18u
#define SMMU_AIDR 0x1cu
#define SMMU_CR0 0x20u
#define SMMU_CR0ACK 0x24u
#define SMMU_CR1 0x28u
#define SMMU_CR2 0x2cu
#define SMMU_GBPA 0x44u
#define SMMU_IRQ_CTRL 0x50u
#define SMMU_IRQ_CTRLACK 0x54u
#define SMMU_GERROR 0x60u
#define SMMU_GERRORN 0x64u
#define SMMU_STRTAB_BASE 0x80u     /* 64-bit */
#define SMMU_STRTAB_BASE_CFG 0x88u
#define SMMU_CMDQ_BASE 0x90u       /* 64-bit */
#define SMMU_CMDQ_PROD 0x98u
#define SMMU_CMDQ_CONS 0x9cu
#define SMMU_EVENTQ_BASE 0xa0u     /* 64-bit */
/* Register page 1 (base + 64 KiB) */
#define SMMU_EVENTQ_PROD 0x100a8u
#define SMMU_EVENTQ_CONS 0x100acu

#define IDR0_S2P (1u << 0)
#define IDR0_S1P (1u << 1)
#define IDR0_TTF_AARCH64 (1u << 3) /* TTF[3:2] = 0b10 or 0b11 */
#define IDR0_COHACC (1u << 4)
#define IDR0_HYP (1u << 9)
#define IDR0_ASID16 (1u << 12)
#define IDR0_ST_LEVEL(x) (((x) >> 27) & 3u) /* 1: 2-level stream table */

#define IDR1_SIDSIZE(x) ((x)&0x3fu)
#define IDR1_EVENTQS(x) (((x) >> 16) & 0x1fu)
#define IDR1_CMDQS(x) (((x) >> 21) & 0x1fu)
#define IDR1_QUEUES_PRESET (1u << 29)
#define IDR1_TABLES_PRESET (1u << 30)

#define IDR5_OAS(x) ((x)&7u)
#define IDR5_GRAN4K (1u << 4)
#define IDR5_GRAN16K (1u << 5)
#define IDR5_GRAN64K (1u << 6)

#define CR0_SMMUEN (1u << 0)
#define CR0_EVENTQEN (1u << 2)
#define CR0_CMDQEN (1u << 3)

/* CR1: the unit's own table and queue accesses are write-back cacheable, inner shareable. */
#define CR1_WB_INNER_SHAREABLE (1u << 0 | 1u << 2 | 3u << 4 | 1u << 6 | 1u << 8 | 3u << 10)
#define CR2_RECINVSID (1u << 1) /* record an event for a stream ID beyond the table */

#define GBPA_ABORT (1u << 20)
#define GBPA_UPDATE (1u << 31)

#define GERROR_CMDQ_ERR (1u << 0)
#define GERROR_EVENTQ_ABT_ERR (1u << 2) /* an event write aborted (QEMU: also a full queue) */
#define GERROR_ALL 0x1fdu               /* bits 0, 2-8 */

#define STRTAB_BASE_RA (1ull << 62)
#define STRTAB_BASE_ADDR 0x000fffffffffffc0ull
#define STRTAB_CFG_LOG2SIZE(n) ((uint32_t)(n))
#define STRTAB_CFG_SPLIT(n) ((uint32_t)(n) << 6)
#define STRTAB_CFG_FMT_2LEVEL (1u << 16)

#define Q_BASE_ALLOCATE (1ull << 62) /* RA for the command queue, WA for the event queue */
#define Q_BASE_ADDR 0x000fffffffffffe0ull
#define CMDQ_CONS_ERR(x) (((x) >> 24) & 0x7fu)
#define EVENTQ_OVFLG (1u << 31) /* PROD: the queue overflowed; CONS.OVACKFLG acknowledges */

/* Level-1 stream table descriptor: the level-2 table's address and how many STEs it holds
 * (Span = log2(STEs) + 1). */
#define L1_DESC_SPAN(n) ((uint64_t)(n))
#define L1_DESC_ADDR 0x000fffffffffffc0ull

/* Stream table entry, 8 double words */
#define STE_DWORDS 8u
#define STE0_V (1ull << 0)
#define STE0_CONFIG_MASK (7ull << 1)
#define STE0_CONFIG_ABORT (0ull << 1)
#define STE0_CONFIG_BYPASS (4ull << 1)
#define STE0_CONFIG_S1 (5ull << 1)
#define STE0_S1CTXPTR 0x000fffffffffffc0ull
#define STE1_S1CIR_WB (1ull << 2)   /* the CD fetch is write-back cacheable ... */
#define STE1_S1COR_WB (1ull << 4)
#define STE1_S1CSH_INNER (3ull << 6) /* ... and inner shareable */
#define STE1_SHCFG_INCOMING (1ull << 44)

/* Context descriptor, 8 double words */
#define CD_DWORDS 8u
#define CD0_T0SZ(n) ((uint64_t)(n))
#define CD0_TG0_4K (0ull << 6)
#define CD0_IR0_WB (1ull << 8)
#define CD0_OR0_WB (1ull << 10)
#define CD0_SH0_INNER (3ull << 12)
#define CD0_EPD1 (1ull << 30)      /* no walks through TTB1 */
#define CD0_V (1ull << 31)
#define CD0_IPS(n) ((uint64_t)(n) << 32)
#define CD0_AA64 (1ull << 41)
#define CD0_R (1ull << 45)         /* record faults in the event queue */
#define CD0_A (1ull << 46)         /* terminate a faulting transaction with an abort */
#define CD0_ASET (1ull << 47)      /* the ASID is not shared with the CPUs' TLB broadcasts */
#define CD0_ASID(n) ((uint64_t)(n) << 48)
#define CD1_TTB0 0x000ffffffffffff0ull
#define CD3_MAIR_NORMAL_WB 0xffull /* attribute 0: Normal, write-back, what pt_arm_stage1 leaves use */

/* Commands, two double words each: the opcodes (OP_*) and their fields */
#define CMD_BYTES 16u
#define OP_CFGI_STE 0x03u
#define OP_CFGI_STE_RANGE 0x04u
#define OP_CFGI_CD_ALL 0x06u
#define OP_TLBI_NH_ASID 0x11u
#define OP_TLBI_NH_VA 0x12u
#define OP_TLBI_EL2_ALL 0x20u
#define OP_TLBI_NSNH_ALL 0x30u
#define OP_SYNC 0x46u
#define CMD_SID(sid) ((uint64_t)(sid) << 32)
#define CMD_ASID(asid) ((uint64_t)(asid) << 48)
#define CMD1_LEAF 1ull
#define CMD1_RANGE_ALL 31ull        /* CFGI_STE_RANGE over every stream: CFGI_ALL */

/* Event records, four double words each */
#define EVENT_BYTES 32u
#define EVENT0_TYPE(x) ((uint8_t)((x)&0xffu))
#define EVENT0_SID(x) ((uint32_t)((x) >> 32))
#define EVENT1_RNW (1ull << 35)     /* 1: the access was a read */

#endif
