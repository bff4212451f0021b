/* A payload that hangs: prints a line and spins forever with interrupts on, as a driver
 * polling a device that never answers would. scripts/run.sh must fail once the payload has
 * not returned within --payload-timeout, and name where the CPU was: in this image. */
#include <efi.h>
#include <efilib.h>

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
    InitializeLib(image, systab);
    Print(L"hangpay: waiting for a device that never answers\n");
    for (;;)
        __asm__ volatile("pause" ::: "memory");
}
