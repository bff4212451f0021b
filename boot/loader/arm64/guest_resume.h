/* The guest's first steps on Arm when the payload is an image (guest_resume.c). */
#ifndef BOOT_LOADER_ARM64_GUEST_RESUME_H
#define BOOT_LOADER_ARM64_GUEST_RESUME_H

#include "common/loader_handoff.h"
#include "loader/arm64/uefi_abi.h"

/* In the firmware's memory: what the guest starts, and with what. */
struct arm64_resume {
    struct efi_boot_services *boot_services;
    efi_handle payload;
    uint32_t cpus;                                 /* the CPUs besides the boot CPU */
    uint64_t mpidr[LOADER_HANDOFF_MAX_CPUS];
};

_Noreturn void arm64_guest_resume(const struct arm64_resume *r);

#endif
