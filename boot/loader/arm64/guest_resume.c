/* Where the firmware goes on as the hypervisor's guest at EL1 when the payload is an image:
 * this runs in the firmware's image of the loader (the copy in the region is the
 * hypervisor's). Every other CPU is started once through PSCI, so that each has run as a
 * guest (common/arm64_cpus.h; it is off again after, for an OS to start), then the payload
 * the loader loaded runs, and its status ends the machine through HC_GUEST_EXIT, whose
 * verdict the hypervisor gives. What x86's guest_trampoline.S does. */
#include "common/arm64_cpus.h"
#include "common/report.h"
#include "ddi/hypercall.h"
#include "loader/arm64/guest_resume.h"

_Noreturn void arm64_guest_resume(const struct arm64_resume *r)
{
    for (unsigned i = 0; i < r->cpus && i < LOADER_HANDOFF_MAX_CPUS; i++) {
        struct arm64_cpu_cycle cpu;
        bool ok = arm64_cpu_cycle(r->mpidr[i], &cpu);
        sink_printf(out, "cpu with mpidr 0x%lx %s: CPU_ON 0x%lx, EL%lu, its hypercall answered 0x%lx, "
                    "AFFINITY_INFO %lu\n", r->mpidr[i], ok ? "ran as a guest and is off again" : "DID NOT run as a guest",
                    cpu.cpu_on, cpu.el, cpu.status, cpu.affinity);
    }
    efi_status st = r->boot_services->start_image(r->payload, NULL, NULL);
    struct hc_guest_exit_block b = {.status = st};
    register uint64_t x0 __asm__("x0") = hc_smccc_function(HC_GUEST_EXIT);
    register uint64_t x1 __asm__("x1") = (uint64_t)(uintptr_t)&b, x2 __asm__("x2") = sizeof b;
    __asm__ volatile("hvc #0" : "+r"(x0), "+r"(x1), "+r"(x2) : : "x3", "memory");
    for (;;) /* the hypervisor refused the exit: nothing more to run */
        __asm__ volatile("wfi");
}
