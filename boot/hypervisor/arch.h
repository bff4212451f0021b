/* What the hypervisor's architecture-neutral half (hypervisor/core.c) needs from the
 * architecture's half, and what the loader asks of it: AMD SVM implements these in
 * hypervisor/svm/, the Arm EL2 half in hypervisor/el2/. Freestanding. */
#ifndef BOOT_HYPERVISOR_ARCH_H
#define BOOT_HYPERVISOR_ARCH_H

#include <stdbool.h>
#include <stdint.h>

#include "common/report.h"

struct hv;
struct hv_cpu;
struct hv_setup;

/* The index of the CPU this runs on (in struct hv's cpu[]). */
unsigned hv_arch_this_cpu(void);

/* Makes another CPU's guest exit soon, wherever it is (running, halted), so that it takes
 * what was left for it (the audit's liveness check, an emulated SIPI). */
void hv_arch_kick(const struct hv_cpu *cpu);

/* The CPU's exit counts, for the verdict: "hv: cpu N: ... exits: ..." lines. */
void hv_arch_print_cpu_counts(const struct hv_cpu *cpu);

/* What a kind of refusal (struct hv_vcpu's refused) is called in the log. */
const char *hv_arch_refusal_name(unsigned kind);

/* In a spin-wait: lets the CPU's sibling, or QEMU, get on. */
void hv_arch_relax(void);

/* A random 64-bit value from the CPU, for the audit's secret. */
uint64_t hv_arch_random64(void);

/* Ends the machine (after the verdict). */
_Noreturn void hv_arch_power_off(void);

/* Before launch, on the boot CPU, after hv_init: checks the CPU, sets up the DDI (hv_start_ddi), the
 * guest's second-stage tables, the permission maps, the audit and the host's environment.
 * False, after the failing check, when the guest cannot be run. */
bool hv_arch_prepare(struct hv *hv, const struct hv_setup *s, struct checks *c);

/* Before launch: one CPU's own state (control block, stacks) out of the region. */
bool hv_arch_prepare_cpu(struct hv *hv, struct hv_cpu *cpu, struct checks *c);

#endif
