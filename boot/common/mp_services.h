/* The firmware's MP Services protocol (UEFI Platform Initialization specification, volume 2,
 * MP Services Protocol), which gnu-efi does not declare: the loader uses it to run the
 * hypervisor's launch on every application processor, and the self-test to make a
 * hypercall from each. Only what those two need. */
#ifndef BOOT_MP_SERVICES_H
#define BOOT_MP_SERVICES_H

#include <efi.h>

#define MP_SERVICES_PROTOCOL_GUID                                                                                    \
    {                                                                                                                \
        0x3fdda605, 0xa76e, 0x4f46, { 0xad, 0x29, 0x12, 0xf4, 0x53, 0x1b, 0x3d, 0x08 }                              \
    }

typedef VOID(EFIAPI *MP_AP_PROCEDURE)(VOID *argument);

struct mp_processor_information {
    UINT64 processor_id;  /* the local APIC id */
    UINT32 status_flag;   /* bit 0: the BSP, bit 1: enabled, bit 2: healthy */
    UINT32 package, core, thread;
    UINT32 extended[6];   /* newer firmware's extended location; room for it */
};

struct mp_services_protocol {
    EFI_STATUS(EFIAPI *get_number_of_processors)(struct mp_services_protocol *self, UINTN *processors, UINTN *enabled);
    EFI_STATUS(EFIAPI *get_processor_info)(struct mp_services_protocol *self, UINTN number,
                                           struct mp_processor_information *info);
    EFI_STATUS(EFIAPI *startup_all_aps)(struct mp_services_protocol *self, MP_AP_PROCEDURE procedure,
                                        BOOLEAN single_thread, EFI_EVENT wait_event, UINTN timeout_us, VOID *argument,
                                        UINTN **failed_cpu_list);
    EFI_STATUS(EFIAPI *startup_this_ap)(struct mp_services_protocol *self, MP_AP_PROCEDURE procedure, UINTN number,
                                        EFI_EVENT wait_event, UINTN timeout_us, VOID *argument, BOOLEAN *finished);
    EFI_STATUS(EFIAPI *switch_bsp)(struct mp_services_protocol *self, UINTN number, BOOLEAN enable_old_bsp);
    EFI_STATUS(EFIAPI *enable_disable_ap)(struct mp_services_protocol *self, UINTN number, BOOLEAN enable,
                                          UINT32 *health);
    EFI_STATUS(EFIAPI *who_am_i)(struct mp_services_protocol *self, UINTN *number);
};

#endif
