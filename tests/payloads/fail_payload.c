/* A payload that fails: prints a line and returns EFI_ABORTED (0x8000000000000015). The
 * hypervisor reports the status on its channel and its RESULT line says "payload FAILED". */
#include <efi.h>
#include <efilib.h>

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
    InitializeLib(image, systab);
    Print(L"failpay: returning EFI_ABORTED\n");
    return EFI_ABORTED;
}
