/* QEMU's edu device (docs/specs/edu.txt in QEMU): its DMA engine, driven by the loader's
 * demonstration on bare metal and by the self-test from inside the guest. */
#ifndef BOOT_EDU_H
#define BOOT_EDU_H

#include <stdbool.h>
#include <stdint.h>

#include "iommu/platform.h"

#define EDU_VENDOR 0x1234
#define EDU_DEVICE 0x11e8
#define EDU_ID 0x00 /* reads 0x010000ed */
/* The device's 4 KiB buffer. QEMU 7.2 aborts on a transfer that reaches its last byte
 * (off by one), so at most 4095 bytes per transfer. */
#define EDU_MAX_TRANSFER 4095u

/* Memory space and bus mastering on in the function's command register (at config_pa, its
 * ECAM page), where the firmware left them off (ArmVirtQemu binds no driver to edu); the
 * status bits are written as 0, which leaves them. */
void edu_enable(const struct platform *p, uint64_t config_pa);

/* One transfer of len bytes between the device's buffer and iova (to_ram: from the device
 * to iova). False if the device did not finish within 2 s (a transfer takes about 100 ms of
 * QEMU's time). The device reports no other error: a faulting read yields zeroes, a
 * faulting write is dropped. */
bool edu_dma(const struct platform *p, uint64_t bar, uint64_t iova, uint32_t len, bool to_ram);

/* The same in two halves, so that several devices can transfer at once: start returns false
 * (starting nothing) for a bad len; wait is edu_dma's wait. */
bool edu_dma_start(const struct platform *p, uint64_t bar, uint64_t iova, uint32_t len, bool to_ram);
bool edu_dma_wait(const struct platform *p, uint64_t bar);

/* The demonstrations' buffer contents: len bytes of a pattern that differs per seed, and
 * whether a buffer still (or now) holds it. */
void edu_pattern_fill(uint8_t *p, uint8_t seed, unsigned len);
bool edu_pattern_holds(const uint8_t *p, uint8_t seed, unsigned len);

#endif
