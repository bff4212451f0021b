/* HOSTILE.EFI: the attacker of docs/security.md, run as the hypervisor's guest
 * (scripts/run.sh --payload hostile). Placeholder until the attack classes land. */
#include <efi.h>
#include <efilib.h>

#include "guest.h"
#include "report.h"
#include "selftest.h"

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
    InitializeLib(image, systab);
    sink_printf(out, "--- hostile payload (guest) ---\n");
    (void)image;
    return EFI_SUCCESS;
}
