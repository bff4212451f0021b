/* Where the firmware goes on as the hypervisor's guest at EL1 when the payload is an image:
 * this runs in the firmware's image of the loader (the copy in the region is the
 * hypervisor's), starts the payload the loader loaded, and ends the machine with the
 * payload's status through HC_GUEST_EXIT, whose verdict the hypervisor gives. What x86's
 * guest_trampoline.S does. */
#include "ddi/hypercall.h"
#include "loader/arm64/guest_resume.h"

_Noreturn void arm64_guest_resume(const struct arm64_resume *r)
{
    efi_status st = r->boot_services->start_image(r->payload, NULL, NULL);
    struct hc_guest_exit_block b = {.status = st};
    register uint64_t x0 __asm__("x0") = hc_smccc_function(HC_GUEST_EXIT);
    register uint64_t x1 __asm__("x1") = (uint64_t)(uintptr_t)&b, x2 __asm__("x2") = sizeof b;
    __asm__ volatile("hvc #0" : "+r"(x0), "+r"(x1), "+r"(x2) : : "x3", "memory");
    for (;;) /* the hypervisor refused the exit: nothing more to run */
        __asm__ volatile("wfi");
}
