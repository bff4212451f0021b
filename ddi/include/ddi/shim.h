/* The guest side of the DDI hypercalls: the wdm routine tables a driver gets from
 * IoGetIommuInterface(Ex), each routine turning its arguments into one hypercall
 * (ddi/include/ddi/hypercall.h). Freestanding: the UEFI glue gives it the VMMCALL and the
 * guest-physical address of a pointer; host tests give it a direct call into the server.
 *
 * What cannot cross stays here: the driver's callbacks and fault handlers with their
 * contexts (the hypervisor knows them by a cookie), and the token structures drivers read
 * (the hypervisor knows tokens by an opaque id). Reports the hypervisor queues (faults, state
 * changes) reach the drivers' handlers from shim_poll, which the UEFI glue calls from a
 * periodic timer event, and which the shim also calls right after a registration so that
 * the first state-change call (S2) happens before RegisterInterfaceStateChangeCallback
 * returns.
 *
 * Callers: one thread, as under UEFI. shim_poll may interrupt a routine (the UEFI glue calls
 * it from a timer): a registration is complete before its hypercall, and a poll that finds
 * another poll running returns at once. */
#ifndef DDI_SHIM_H
#define DDI_SHIM_H

#include <stdbool.h>
#include <stdint.h>

#include "ddi/hypercall.h"

struct shim_config {
    void *ctx;
    /* VMMCALL with these registers; returns RAX. */
    uint64_t (*hypercall)(void *ctx, uint64_t rax, uint64_t rcx, uint64_t rdx);
    /* The guest-physical address of a guest object (identity under UEFI). */
    uint64_t (*gpa_of)(void *ctx, const void *p);
};

/* Forgets every token and registration the shim held. */
void shim_init(const struct shim_config *cfg);

/* The driver's entry points: the same contract as the provider's IoGetIommuInterface(Ex). */
NTSTATUS NTAPI ShimIoGetIommuInterface(ULONG Version, PDMA_IOMMU_INTERFACE InterfaceOut);
NTSTATUS NTAPI ShimIoGetIommuInterfaceEx(ULONG Version, ULONGLONG Flags, PDMA_IOMMU_INTERFACE_EX InterfaceOut);

/* Hypercalls made so far (one per routine call, plus polls). */
uint64_t shim_hypercalls(void);

/* Collects the reports waiting in the hypervisor and calls the drivers' handlers; returns
 * how many handler calls it made. */
unsigned shim_poll(void);

#define SHIM_MAX_TOKENS 128
#define SHIM_TOKEN_SLOTS (2 * SHIM_MAX_TOKENS)
#define SHIM_MAX_REGISTRATIONS 128

#endif
