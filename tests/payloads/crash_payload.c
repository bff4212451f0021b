/* A payload that crashes: prints a line, then executes ud2. The firmware's exception handler
 * prints "!!!! X64 Exception Type - 06(#UD - Invalid Opcode) ..." and a register dump on COM1
 * and never returns; scripts/run.sh must stop the machine and fail within seconds. */
#include <efi.h>
#include <efilib.h>

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
    InitializeLib(image, systab);
    Print(L"crashpay: executing ud2\n");
    __asm__ volatile("ud2");
    return EFI_SUCCESS;
}
