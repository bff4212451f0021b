/* DDISHIM.EFI: a boot-service driver that stays resident and gives guest code the wdm DMA
 * IOMMU interface as the iommu_hv_ddi protocol (boot/guest/lib/ddi_protocol.h), over the shim
 * (ddi/shim.c) and the hypercall instruction (VMMCALL, HVC on Arm). The loader starts it on
 * bare metal, before the launch, so it must make no hypercall until it runs as a guest: the
 * timer polls only once the hypervisor shows (x86: CPUID's signature; Arm: the firmware runs
 * at EL1, which it does only under the hypervisor). */
#include <efi.h>
#include <efilib.h>

#if !defined(__aarch64__)
#include "common/cpuid.h"
#endif
#include "ddi/shim.h"
#include "guest/lib/ddi_protocol.h"
#include "guest/lib/guest.h"

static uint64_t hypercall(void *ctx, uint64_t rax, uint64_t rcx, uint64_t rdx)
{
    (void)ctx;
    return guest_hypercall(rax, rcx, rdx);
}

static uint64_t gpa_of(void *ctx, const void *p)
{
    (void)ctx;
    return (uint64_t)(uintptr_t)p; /* UEFI: identity-mapped */
}

static bool under_hypervisor(void)
{
    static bool seen;
    if (!seen) {
#if defined(__aarch64__)
        uint64_t el;
        __asm__ volatile("mrs %0, CurrentEL" : "=r"(el));
        seen = (el >> 2) == 1;
#else
        uint32_t r[4];
        cpuid(0x40000000u, 0, r);
        seen = r[1] == 0x6d6d6f69u && r[2] == 0x76682d75u && r[3] == 0x6964642du; /* "iommu-hv-ddi" */
#endif
    }
    return seen;
}

static UINTN EFIAPI poll(void)
{
    return under_hypervisor() ? shim_poll() : 0;
}

static UINT64 EFIAPI hypercalls(void)
{
    return shim_hypercalls();
}

static VOID EFIAPI on_tick(EFI_EVENT event, VOID *context)
{
    (void)event;
    (void)context;
    poll();
}

static struct iommu_hv_ddi_protocol protocol = {
    IOMMU_HV_DDI_PROTOCOL_REVISION, HC_ABI_VERSION, ShimIoGetIommuInterface, ShimIoGetIommuInterfaceEx, poll,
    hypercalls,
};

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
    InitializeLib(image, systab);
    struct shim_config cfg = {.hypercall = hypercall, .gpa_of = gpa_of};
    shim_init(&cfg);
    EFI_GUID guid = IOMMU_HV_DDI_PROTOCOL_GUID;
    EFI_HANDLE handle = NULL;
    EFI_STATUS st = uefi_call_wrapper(BS->InstallProtocolInterface, 4, &handle, &guid, EFI_NATIVE_INTERFACE, &protocol);
    if (EFI_ERROR(st))
        return st;
    EFI_EVENT tick;
    st = uefi_call_wrapper(BS->CreateEvent, 5, EVT_TIMER | EVT_NOTIFY_SIGNAL, TPL_CALLBACK, on_tick, NULL, &tick);
    if (!EFI_ERROR(st))
        st = uefi_call_wrapper(BS->SetTimer, 3, tick, TimerPeriodic, 100000); /* 10 ms */
    return st;
}
