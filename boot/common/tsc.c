/* See boot/common/tsc.h. */
#include <efi.h>
#include <efilib.h>

#include "common/tsc.h"

#define TSC_CALIBRATION_US 10000u

uint64_t tsc_ticks_per_us(void)
{
    uint64_t t0 = tsc_read();
    uefi_call_wrapper(BS->Stall, 1, TSC_CALIBRATION_US);
    uint64_t per_us = (tsc_read() - t0) / TSC_CALIBRATION_US;
    return per_us ? per_us : 1;
}
