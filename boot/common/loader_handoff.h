/* What the loader tells its payloads (SELFTEST.EFI, FAULTINJ.EFI), through their LoadOptions:
 * the loader's own check counts, so that the self-test's RESULT line covers the whole
 * run, and the addresses the security checks must find refused. */
#ifndef BOOT_COMMON_LOADER_HANDOFF_H
#define BOOT_COMMON_LOADER_HANDOFF_H

#include <stdint.h>

#define LOADER_HANDOFF_MAGIC 0x54534c48u /* "HLST" */
#define LOADER_HANDOFF_MAX_CPUS 8

struct loader_handoff {
    uint32_t magic;
    uint32_t loader_checks, loader_failed;
    uint32_t iommu_units;
    uint64_t region_base, region_bytes;   /* the hypervisor's reserved region */
    uint64_t iommu_base[4];               /* register pages of the first units */
    uint64_t image_base, image_bytes;     /* the loader image (the hypervisor's code) */
    uint32_t edus;                        /* edu devices behind a unit (at most 2) */
    uint32_t reserved;
    struct handoff_edu {
        uint64_t bar;
        uint16_t segment;
        uint8_t bus, device, function;
        uint8_t reserved[3];
    } edu[2];
    uint64_t canary_pa;                   /* the region's audited page: the secret's 8 bytes at
                                           * its start, then the canary (docs/security.md) */
    uint64_t pm_base;                     /* the chipset's ACPI PM I/O base (PM1a_EVT_BLK) */
    uint32_t cpus;                        /* Arm: the CPUs besides the boot CPU, for PSCI CPU_ON */
    uint32_t reserved2;
    uint64_t secondary_mpidr[LOADER_HANDOFF_MAX_CPUS];
};

#if defined(__aarch64__)
/* The Arm self-test (boot/guest/selftest/selftest_arm64.c): BOOTAA64.EFI's image, as the
 * firmware loaded it, runs it at EL1 once the hypervisor runs, with the handoff in the
 * firmware's memory. Its end is the hypervisor's verdict (HC_GUEST_EXIT). */
_Noreturn void selftest_arm64_main(const struct loader_handoff *handoff);
#endif

#endif
