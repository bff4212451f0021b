/* Little-endian field reads (and writes) in byte buffers.
 *
 * ACPI tables are little-endian and byte-packed, so fields are read byte by byte rather
 * than through packed structs: no unaligned access, no dependence on host byte order.
 * These helpers do no bounds checking; callers check the range first (acpi_span_ok). */
#ifndef IOMMU_LE_H
#define IOMMU_LE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static inline uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static inline void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
    put_le16(p, (uint16_t)v);
    put_le16(p + 2, (uint16_t)(v >> 16));
}

/* True when [off, off + len) lies inside [0, limit), computed without overflow. */
static inline bool span_ok(uint64_t off, uint64_t len, uint64_t limit)
{
    return off <= limit && len <= limit - off;
}

#endif
