#include "iommu/acpi.h"

#include "iommu/le.h"

#define RSDP_V1_LEN 20u
#define RSDP_V2_LEN 36u
#define MCFG_ENTRIES_OFF 44u
#define MCFG_ENTRY_LEN 16u

uint8_t acpi_checksum(const uint8_t *p, size_t len)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum = (uint8_t)(sum + p[i]);
    return sum;
}

static void copy_chars(char *dst, const uint8_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)src[i];
    dst[n] = '\0';
}

static bool same_chars(const uint8_t *p, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (uint8_t)s[i])
            return false;
    return true;
}

bool acpi_header_parse(const uint8_t *data, size_t avail, const char *signature,
                       struct acpi_header *hdr, struct diag *d)
{
    if (avail < ACPI_HEADER_LEN) {
        diag_error(d, 0, "table is %zu bytes, shorter than the %u-byte ACPI header", avail,
                   ACPI_HEADER_LEN);
        return false;
    }
    if (signature && !same_chars(data, signature, 4)) {
        char found[5];
        copy_chars(found, data, 4);
        for (int i = 0; i < 4; i++)
            if (found[i] < 0x20 || found[i] > 0x7e)
                found[i] = '?';
        diag_error(d, 0, "signature is \"%s\", expected \"%s\"", found, signature);
        return false;
    }
    uint32_t length = le32(data + 4);
    if (length < ACPI_HEADER_LEN) {
        diag_error(d, 4, "table length %u is shorter than the %u-byte ACPI header", length,
                   ACPI_HEADER_LEN);
        return false;
    }
    if (length > avail) {
        diag_error(d, 4, "table length %u exceeds the %zu bytes available", length, avail);
        return false;
    }
    copy_chars(hdr->signature, data, 4);
    hdr->length = length;
    hdr->revision = data[8];
    hdr->checksum = data[9];
    hdr->checksum_ok = acpi_checksum(data, length) == 0;
    copy_chars(hdr->oem_id, data + 10, 6);
    copy_chars(hdr->oem_table_id, data + 16, 8);
    hdr->oem_revision = le32(data + 24);
    copy_chars(hdr->creator_id, data + 28, 4);
    hdr->creator_revision = le32(data + 32);
    if (!hdr->checksum_ok)
        diag_warn(d, 9, "%s checksum 0x%02x is wrong (bytes sum to 0x%02x, not 0)", hdr->signature,
                  hdr->checksum, acpi_checksum(data, length));
    if (avail > length)
        diag_warn(d, length, "%zu bytes after the table's length of %u are ignored", avail - length,
                  length);
    return true;
}

static const uint8_t *map(const struct platform *plat, uint64_t pa, size_t len)
{
    return plat->map_phys(plat->ctx, pa, len);
}

/* Maps a table's header, then the whole table once its length is known and sane. */
static const uint8_t *map_sdt(const struct platform *plat, uint64_t pa, const char *signature,
                              struct acpi_header *hdr, struct diag *d)
{
    const uint8_t *p = map(plat, pa, ACPI_HEADER_LEN);
    if (!p) {
        diag_error(d, 0, "table at 0x%lx is not in mapped memory", pa);
        return NULL;
    }
    uint32_t length = le32(p + 4);
    if (length < ACPI_HEADER_LEN) {
        diag_error(d, 4, "table at 0x%lx has length %u, shorter than its header", pa, length);
        return NULL;
    }
    p = map(plat, pa, length);
    if (!p) {
        diag_error(d, 4, "table at 0x%lx with length %u runs past mapped memory", pa, length);
        return NULL;
    }
    return acpi_header_parse(p, length, signature, hdr, d) ? p : NULL;
}

bool acpi_discover(const struct platform *plat, uint64_t rsdp_pa, struct acpi_tables *out,
                   struct diag *d)
{
    out->rsdp_pa = rsdp_pa;
    out->count = 0;
    out->xsdt_entries = 0;

    const uint8_t *rsdp = map(plat, rsdp_pa, RSDP_V1_LEN);
    if (!rsdp) {
        diag_error(d, 0, "RSDP at 0x%lx is not in mapped memory", rsdp_pa);
        return false;
    }
    if (!same_chars(rsdp, "RSD PTR ", 8)) {
        diag_error(d, 0, "RSDP at 0x%lx has no \"RSD PTR \" signature", rsdp_pa);
        return false;
    }
    if (acpi_checksum(rsdp, RSDP_V1_LEN) != 0)
        diag_warn(d, 8, "RSDP checksum over the first 20 bytes is wrong");
    out->rsdp_revision = rsdp[15];
    if (rsdp[15] < 2) {
        diag_error(d, 15, "RSDP revision %u has no XSDT (ACPI 2.0 or later needed)", rsdp[15]);
        return false;
    }
    rsdp = map(plat, rsdp_pa, RSDP_V2_LEN);
    if (!rsdp) {
        diag_error(d, 0, "RSDP at 0x%lx: its 36-byte ACPI 2.0 form is not mapped", rsdp_pa);
        return false;
    }
    uint32_t rsdp_len = le32(rsdp + 20);
    if (rsdp_len < RSDP_V2_LEN) {
        diag_error(d, 20, "RSDP length %u is shorter than 36 bytes", rsdp_len);
        return false;
    }
    if (acpi_checksum(rsdp, RSDP_V2_LEN) != 0)
        diag_warn(d, 32, "RSDP extended checksum is wrong");
    out->xsdt_pa = le64(rsdp + 24);

    struct acpi_header xh;
    const uint8_t *xsdt = map_sdt(plat, out->xsdt_pa, "XSDT", &xh, d);
    if (!xsdt)
        return false;
    uint32_t body = xh.length - ACPI_HEADER_LEN;
    if (body % 8)
        diag_warn(d, 4, "XSDT length %u leaves a partial %u-byte entry, ignored", xh.length,
                  body % 8);
    out->xsdt_entries = body / 8;

    for (uint32_t i = 0; i < out->xsdt_entries; i++) {
        uint32_t entry_off = ACPI_HEADER_LEN + 8 * i;
        uint64_t pa = le64(xsdt + entry_off);
        const uint8_t *hdr = pa ? map(plat, pa, ACPI_HEADER_LEN) : NULL;
        if (!hdr) {
            diag_warn(d, entry_off, "XSDT entry %u points at 0x%lx, which is not mapped", i, pa);
            continue;
        }
        uint32_t length = le32(hdr + 4);
        const uint8_t *whole = length >= ACPI_HEADER_LEN ? map(plat, pa, length) : NULL;
        if (!whole) {
            diag_warn(d, entry_off, "XSDT entry %u: table at 0x%lx has unusable length %u", i, pa,
                      length);
            continue;
        }
        if (out->count == ACPI_MAX_TABLES) {
            diag_warn(d, entry_off, "XSDT lists %u tables; only the first %u are kept",
                      out->xsdt_entries, ACPI_MAX_TABLES);
            break;
        }
        struct acpi_table_ref *ref = &out->table[out->count++];
        copy_chars(ref->signature, whole, 4);
        ref->pa = pa;
        ref->length = length;
        ref->revision = whole[8];
        ref->checksum_ok = acpi_checksum(whole, length) == 0;
        if (!ref->checksum_ok)
            diag_warn(d, entry_off, "%s at 0x%lx: checksum is wrong", ref->signature, pa);
    }
    return true;
}

const struct acpi_table_ref *acpi_find(const struct acpi_tables *t, const char *signature)
{
    for (uint32_t i = 0; i < t->count; i++)
        if (same_chars((const uint8_t *)t->table[i].signature, signature, 4))
            return &t->table[i];
    return NULL;
}

int acpi_root_remove(uint8_t *root, size_t avail, unsigned entry_size, const struct platform *plat,
                     const char *signature, struct diag *d)
{
    struct acpi_header hdr;
    if ((entry_size != 4 && entry_size != 8) || !acpi_header_parse(root, avail, NULL, &hdr, d))
        return -1;
    uint32_t n = (hdr.length - ACPI_HEADER_LEN) / entry_size, kept = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = root + ACPI_HEADER_LEN + (size_t)i * entry_size;
        uint64_t pa = entry_size == 8 ? le64(e) : le32(e);
        const uint8_t *t = map(plat, pa, ACPI_HEADER_LEN);
        if (t && same_chars(t, signature, 4))
            continue;
        uint8_t *to = root + ACPI_HEADER_LEN + (size_t)kept * entry_size;
        for (unsigned b = 0; b < entry_size; b++)
            to[b] = e[b]; /* forward, never past the entry read */
        kept++;
    }
    uint32_t length = ACPI_HEADER_LEN + kept * entry_size;
    for (uint32_t b = length; b < hdr.length; b++)
        root[b] = 0;
    for (unsigned b = 0; b < 4; b++)
        root[4 + b] = (uint8_t)(length >> (8 * b));
    root[9] = 0;
    root[9] = (uint8_t)(0x100 - acpi_checksum(root, length));
    return (int)(n - kept);
}

const uint8_t *acpi_map_table(const struct platform *plat, const struct acpi_table_ref *ref)
{
    return map(plat, ref->pa, ref->length);
}

bool mcfg_parse(const uint8_t *data, size_t avail, struct mcfg *out, struct diag *d)
{
    struct acpi_header h;
    if (!acpi_header_parse(data, avail, "MCFG", &h, d))
        return false;
    if (h.length < MCFG_ENTRIES_OFF) {
        diag_error(d, 4, "MCFG length %u is shorter than its %u-byte fixed part", h.length,
                   MCFG_ENTRIES_OFF);
        return false;
    }
    uint32_t body = h.length - MCFG_ENTRIES_OFF;
    if (body % MCFG_ENTRY_LEN)
        diag_warn(d, 4, "MCFG length %u leaves a partial entry, ignored", h.length);
    uint32_t entries = body / MCFG_ENTRY_LEN;
    if (entries > MCFG_MAX_WINDOWS) {
        diag_warn(d, MCFG_ENTRIES_OFF, "MCFG has %u entries; only the first %u are used", entries,
                  MCFG_MAX_WINDOWS);
        entries = MCFG_MAX_WINDOWS;
    }
    out->count = 0;
    for (uint32_t i = 0; i < entries; i++) {
        const uint8_t *e = data + MCFG_ENTRIES_OFF + i * MCFG_ENTRY_LEN;
        struct mcfg_window w = {
            .base = le64(e), .segment = le16(e + 8), .start_bus = e[10], .end_bus = e[11]};
        if (w.end_bus < w.start_bus) {
            diag_error(d, MCFG_ENTRIES_OFF + i * MCFG_ENTRY_LEN + 10,
                       "MCFG entry %u: end bus %u is below start bus %u", i, w.end_bus,
                       w.start_bus);
            return false;
        }
        out->window[out->count++] = w;
    }
    return true;
}

#define MADT_ENTRIES_OFF 44u /* header, local APIC address, flags */
#define MADT_TYPE_IOAPIC 1u
#define MADT_IOAPIC_LEN 12u
#define MADT_TYPE_GICC 0xBu
#define MADT_GICC_LEN 76u        /* ACPI 6.0's GICC reaches the MPIDR's end (68 + 8) */
#define MADT_GICC_MPIDR_OFF 68u
#define MADT_GICC_ENABLED 1u     /* flags bit 0 */
#define MADT_TYPE_GIC_ITS 0xFu
#define MADT_GIC_ITS_LEN 20u     /* type, length, reserved, ITS ID, base address, reserved */

/* Calls visit for every interrupt controller structure (type, bytes, its length), after
 * checking that each one's length fits; false (visit's or a bad length) ends the walk. */
static bool madt_walk(const uint8_t *data, size_t avail, bool (*visit)(void *ctx, const uint8_t *e, uint32_t off,
                                                                     struct diag *d),
                      void *ctx, struct diag *d)
{
    struct acpi_header h;
    if (!acpi_header_parse(data, avail, "APIC", &h, d))
        return false;
    if (h.length < MADT_ENTRIES_OFF) {
        diag_error(d, 4, "MADT length %u is shorter than its %u-byte fixed part", h.length, MADT_ENTRIES_OFF);
        return false;
    }
    for (uint32_t off = MADT_ENTRIES_OFF; off < h.length;) {
        if (h.length - off < 2 || data[off + 1] < 2 || data[off + 1] > h.length - off) {
            diag_error(d, off, "MADT entry at offset %u: length %u does not fit", off,
                       h.length - off < 2 ? 0u : data[off + 1]);
            return false;
        }
        if (!visit(ctx, data + off, off, d))
            return false;
        off += data[off + 1];
    }
    return true;
}

static bool visit_ioapic(void *ctx, const uint8_t *e, uint32_t off, struct diag *d)
{
    struct madt_ioapics *found = ctx;
    if (e[0] != MADT_TYPE_IOAPIC)
        return true;
    if (e[1] < MADT_IOAPIC_LEN) {
        diag_error(d, off + 1, "MADT I/O APIC entry of %u bytes, not %u", e[1], MADT_IOAPIC_LEN);
        return false;
    }
    if (found->count < MADT_MAX_IOAPICS)
        found->base[found->count++] = le32(e + 4);
    else
        diag_warn(d, off, "more than %u I/O APICs; the rest are not used", MADT_MAX_IOAPICS);
    return true;
}

bool madt_ioapics_parse(const uint8_t *data, size_t avail, struct madt_ioapics *out, struct diag *d)
{
    struct madt_ioapics found = {0};
    if (!madt_walk(data, avail, visit_ioapic, &found, d))
        return false;
    *out = found;
    return true;
}

static bool visit_gicc(void *ctx, const uint8_t *e, uint32_t off, struct diag *d)
{
    struct madt_giccs *found = ctx;
    if (e[0] == MADT_TYPE_GIC_ITS) {
        if (e[1] < MADT_GIC_ITS_LEN) {
            diag_error(d, off + 1, "MADT GIC ITS entry of %u bytes, under %u", e[1], MADT_GIC_ITS_LEN);
            return false;
        }
        if (found->its_count < MADT_MAX_ITS)
            found->its_base[found->its_count++] = le64(e + 8);
        else
            diag_warn(d, off, "more than %u GIC ITSs; the rest are not used", MADT_MAX_ITS);
        return true;
    }
    if (e[0] != MADT_TYPE_GICC)
        return true;
    if (e[1] < MADT_GICC_LEN) {
        diag_error(d, off + 1, "MADT GICC entry of %u bytes, under %u", e[1], MADT_GICC_LEN);
        return false;
    }
    if (!(le32(e + 12) & MADT_GICC_ENABLED))
        return true;
    if (found->count < MADT_MAX_GICCS)
        found->mpidr[found->count++] = le64(e + MADT_GICC_MPIDR_OFF);
    else
        diag_warn(d, off, "more than %u enabled GICCs; the rest are not used", MADT_MAX_GICCS);
    return true;
}

bool madt_giccs_parse(const uint8_t *data, size_t avail, struct madt_giccs *out, struct diag *d)
{
    struct madt_giccs found = {0};
    if (!madt_walk(data, avail, visit_gicc, &found, d))
        return false;
    *out = found;
    return true;
}

int madt_remove_type(uint8_t *madt, size_t avail, uint8_t type)
{
    if (avail < MADT_ENTRIES_OFF)
        return -1;
    uint32_t length = le32(madt + 4);
    if (length < MADT_ENTRIES_OFF || length > avail)
        return -1;
    for (uint32_t off = MADT_ENTRIES_OFF; off < length;) { /* every length checked first */
        if (length - off < 2 || madt[off + 1] < 2 || madt[off + 1] > length - off)
            return -1;
        off += madt[off + 1];
    }
    int removed = 0;
    uint32_t end = length;
    for (uint32_t off = MADT_ENTRIES_OFF; off < end;) {
        uint8_t len = madt[off + 1];
        if (madt[off] != type) {
            off += len;
            continue;
        }
        for (uint32_t i = off; i + len < end; i++)
            madt[i] = madt[i + len];
        end -= len;
        for (uint32_t i = end; i < end + len; i++)
            madt[i] = 0;
        removed++;
    }
    madt[4] = (uint8_t)end, madt[5] = (uint8_t)(end >> 8), madt[6] = (uint8_t)(end >> 16), madt[7] = (uint8_t)(end >> 24);
    madt[9] = 0;
    madt[9] = (uint8_t)(0x100 - acpi_checksum(madt, end));
    return removed;
}
