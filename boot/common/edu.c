/* See boot/common/edu.h. */
#include "common/edu.h"

#define EDU_DMA_SRC 0x80
#define EDU_DMA_DST 0x88
#define EDU_DMA_COUNT 0x90
#define EDU_DMA_CMD 0x98
#define EDU_CMD_RUN 0x1
#define EDU_CMD_TO_RAM 0x2
#define EDU_BUFFER 0x40000u
#define EDU_DMA_TIMEOUT_NS 2000000000ull

bool edu_dma_start(const struct platform *p, uint64_t bar, uint64_t iova, uint32_t len, bool to_ram)
{
    if (len == 0 || len > EDU_MAX_TRANSFER)
        return false;
    p->mmio_write64(p->ctx, bar + EDU_DMA_SRC, to_ram ? EDU_BUFFER : iova);
    p->mmio_write64(p->ctx, bar + EDU_DMA_DST, to_ram ? iova : EDU_BUFFER);
    p->mmio_write64(p->ctx, bar + EDU_DMA_COUNT, len);
    p->mmio_write32(p->ctx, bar + EDU_DMA_CMD, EDU_CMD_RUN | (to_ram ? EDU_CMD_TO_RAM : 0));
    return true;
}

bool edu_dma_wait(const struct platform *p, uint64_t bar)
{
    uint64_t start = p->now_ns(p->ctx);
    while (p->mmio_read32(p->ctx, bar + EDU_DMA_CMD) & EDU_CMD_RUN)
        if (p->now_ns(p->ctx) - start > EDU_DMA_TIMEOUT_NS)
            return false;
    return true;
}

bool edu_dma(const struct platform *p, uint64_t bar, uint64_t iova, uint32_t len, bool to_ram)
{
    return edu_dma_start(p, bar, iova, len, to_ram) && edu_dma_wait(p, bar);
}

void edu_pattern_fill(uint8_t *p, uint8_t seed, unsigned len)
{
    for (unsigned i = 0; i < len; i++)
        p[i] = (uint8_t)(seed + i * 7);
}

bool edu_pattern_holds(const uint8_t *p, uint8_t seed, unsigned len)
{
    for (unsigned i = 0; i < len; i++)
        if (p[i] != (uint8_t)(seed + i * 7))
            return false;
    return true;
}

void edu_enable(const struct platform *p, uint64_t config_pa)
{
    uint32_t cmd = p->mmio_read32(p->ctx, config_pa + 0x04);
    if ((cmd & 0x6) != 0x6)
        p->mmio_write32(p->ctx, config_pa + 0x04, (cmd & 0xffff) | 0x6);
}
