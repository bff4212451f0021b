/* x86 long-mode paging entries (AMD64 architecture manual, volume 2, 5.3): bit 0 present,
 * bit 1 read/write, bit 2 user, bit 7 page size, bits 51:12 the address. Present also means
 * readable, so a write-only mapping cannot be written. AMD's nested page tables are this
 * format walked as user accesses: every entry needs the user bit. */
#include "iommu/pt_format.h"

#include "iommu/slpt.h"

#define X86_P 0x1ull
#define X86_RW 0x2ull
#define X86_US 0x4ull
#define X86_PS 0x80ull
#define X86_ADDRESS 0x000ffffffffff000ull

const struct pt_format pt_x86_supervisor = {
    .name = "x86 (supervisor)",
    .perm = {[SLPT_READ] = X86_P, [SLPT_READ | SLPT_WRITE] = X86_P | X86_RW},
    .perms = 1u << SLPT_READ | 1u << (SLPT_READ | SLPT_WRITE),
    .page = 0,
    .block = X86_PS,
    .leaf_mask = X86_PS,
    .leaf_value = X86_PS,
    .table = X86_P | X86_RW,
    .address = X86_ADDRESS,
};

const struct pt_format pt_amd_nested = {
    .name = "AMD nested",
    .perm = {[SLPT_READ] = X86_P, [SLPT_READ | SLPT_WRITE] = X86_P | X86_RW},
    .perms = 1u << SLPT_READ | 1u << (SLPT_READ | SLPT_WRITE),
    .page = X86_US,
    .block = X86_PS | X86_US,
    .leaf_mask = X86_PS,
    .leaf_value = X86_PS,
    .table = X86_P | X86_RW | X86_US,
    .address = X86_ADDRESS,
};
