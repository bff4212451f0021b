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
    .read = X86_P,
    .write = X86_RW,
    .leaf_size = X86_PS,
    .table = X86_P | X86_RW,
    .always = 0,
    .address = X86_ADDRESS,
    .perms = 1u << SLPT_READ | 1u << (SLPT_READ | SLPT_WRITE),
};

const struct pt_format pt_amd_nested = {
    .name = "AMD nested",
    .read = X86_P,
    .write = X86_RW,
    .leaf_size = X86_PS,
    .table = X86_P | X86_RW,
    .always = X86_US,
    .address = X86_ADDRESS,
    .perms = 1u << SLPT_READ | 1u << (SLPT_READ | SLPT_WRITE),
};
