#include "iommu/dmar.h"

#include "iommu/le.h"

#define STRUCT_HEADER_LEN 4u

/* Fixed part of each remapping structure before its device scopes (or its whole minimum
 * length for the structures without scopes), from the VT-d specification. */
static const struct {
    uint16_t min_len;
    bool has_scopes;
} struct_layout[] = {
    [DMAR_TYPE_DRHD] = {16, true},
    [DMAR_TYPE_RMRR] = {24, true},
    [DMAR_TYPE_ATSR] = {8, true},
    [DMAR_TYPE_RHSA] = {20, false},
    [DMAR_TYPE_ANDD] = {8, false},
    [DMAR_TYPE_SATC] = {8, true},
    [DMAR_TYPE_SIDP] = {8, true},
};

#define KNOWN_TYPES (sizeof struct_layout / sizeof struct_layout[0])

const char *dmar_struct_name(uint16_t type)
{
    static const char *const names[] = {"DRHD", "RMRR", "ATSR", "RHSA", "ANDD", "SATC", "SIDP"};
    return type < KNOWN_TYPES ? names[type] : "unknown";
}

const char *dmar_scope_type_name(uint8_t type)
{
    static const char *const names[] = {"reserved", "endpoint", "bridge", "ioapic", "hpet",
                                        "acpi-namespace"};
    return type < sizeof names / sizeof names[0] ? names[type] : "unknown";
}

/* Decodes the scope at 'off', which must lie inside [s->scopes_offset, end). */
static bool decode_scope(const uint8_t *data, uint32_t off, uint32_t end, struct dmar_scope *sc,
                         struct diag *d)
{
    if (!span_ok(off, 2, end)) {
        diag_error(d, off, "device scope header needs 2 bytes, %u left in the structure",
                   end - off);
        return false;
    }
    const uint8_t *p = data + off;
    uint8_t len = p[1];
    if (len < DMAR_SCOPE_HEADER_LEN) {
        diag_error(d, off + 1, "device scope length %u is shorter than its %u-byte header", len,
                   DMAR_SCOPE_HEADER_LEN);
        return false;
    }
    if (!span_ok(off, len, end)) {
        diag_error(d, off + 1, "device scope length %u runs past its structure (%u bytes left)",
                   len, end - off);
        return false;
    }
    if ((len - DMAR_SCOPE_HEADER_LEN) % 2) {
        diag_error(d, off + 1, "device scope length %u leaves half a (device, function) path entry",
                   len);
        return false;
    }
    sc->offset = off;
    sc->type = p[0];
    sc->length = len;
    sc->flags = p[2];
    sc->enumeration_id = p[4];
    sc->start_bus = p[5];
    sc->hops = (uint8_t)((len - DMAR_SCOPE_HEADER_LEN) / 2);
    sc->path = p + DMAR_SCOPE_HEADER_LEN;
    return true;
}

/* Decodes the structure at 'off' (and, when 'check_scopes', every scope in it). */
static bool decode_struct(const struct dmar_table *t, uint32_t off, struct dmar_struct *s,
                          bool check_scopes, struct diag *d)
{
    const uint32_t end = t->header.length;
    if (!span_ok(off, STRUCT_HEADER_LEN, end)) {
        diag_error(d, off, "remapping structure header needs 4 bytes, %u left in the table",
                   end - off);
        return false;
    }
    const uint8_t *p = t->data + off;
    uint16_t type = le16(p);
    uint16_t len = le16(p + 2);
    uint16_t min_len = type < KNOWN_TYPES ? struct_layout[type].min_len : STRUCT_HEADER_LEN;
    if (len < min_len) {
        diag_error(d, off + 2, "%s structure length %u is shorter than its %u-byte fixed part",
                   dmar_struct_name(type), len, min_len);
        return false;
    }
    if (!span_ok(off, len, end)) {
        diag_error(d, off + 2, "%s structure length %u runs past the table end (%u bytes left)",
                   dmar_struct_name(type), len, end - off);
        return false;
    }

    *s = (struct dmar_struct){.offset = off, .type = type, .length = len};
    switch (type) {
    case DMAR_TYPE_DRHD:
        s->flags = p[4];
        s->size = p[5] & 0xf;
        s->segment = le16(p + 6);
        s->register_base = le64(p + 8);
        break;
    case DMAR_TYPE_RMRR:
        s->segment = le16(p + 6);
        s->base = le64(p + 8);
        s->limit = le64(p + 16);
        break;
    case DMAR_TYPE_ATSR:
    case DMAR_TYPE_SATC:
        s->flags = p[4];
        s->segment = le16(p + 6);
        break;
    case DMAR_TYPE_SIDP:
        s->segment = le16(p + 6);
        break;
    case DMAR_TYPE_RHSA:
        s->register_base = le64(p + 8);
        s->proximity_domain = le32(p + 16);
        break;
    case DMAR_TYPE_ANDD: {
        s->device_number = p[7];
        s->object_name = (const char *)p + 8;
        uint32_t n = 0;
        while (n < len - 8u && s->object_name[n])
            n++;
        s->object_name_len = n;
        break;
    }
    default:
        break;
    }

    if (type < KNOWN_TYPES && struct_layout[type].has_scopes) {
        s->has_scopes = true;
        s->scopes_offset = off + min_len;
        if (check_scopes) {
            struct dmar_scope sc;
            for (uint32_t so = s->scopes_offset; so < off + len; so += sc.length)
                if (!decode_scope(t->data, so, off + len, &sc, d))
                    return false;
        }
    }
    return true;
}

static void warn_about_struct(const struct dmar_struct *s, struct diag *d)
{
    switch (s->type) {
    case DMAR_TYPE_DRHD:
        if (s->register_base & 0xfff)
            diag_warn(d, s->offset + 8, "DRHD register base 0x%lx is not 4 KiB aligned",
                      s->register_base);
        break;
    case DMAR_TYPE_RMRR:
        /* Linux and Xen accept such regions after a warning; so does this parser. The
         * identity map rounds them out to whole pages. */
        if ((s->base & 0xfff) || ((s->limit + 1) & 0xfff))
            diag_warn(d, s->offset + 8, "RMRR [0x%lx, 0x%lx] is not 4 KiB aligned", s->base,
                      s->limit);
        if (s->limit < s->base)
            diag_warn(d, s->offset + 16, "RMRR limit 0x%lx is below its base 0x%lx", s->limit,
                      s->base);
        break;
    default:
        if (s->type >= KNOWN_TYPES)
            diag_warn(d, s->offset, "unknown remapping structure type %u skipped", s->type);
        break;
    }
}

bool dmar_parse(struct dmar_table *t, const uint8_t *data, size_t avail, struct diag *d)
{
    struct dmar_table tmp = {.data = data};
    if (!acpi_header_parse(data, avail, "DMAR", &tmp.header, d))
        return false;
    if (tmp.header.length < DMAR_STRUCTS_OFF) {
        diag_error(d, 4, "DMAR length %u is shorter than its %u-byte fixed part",
                   tmp.header.length, DMAR_STRUCTS_OFF);
        return false;
    }
    tmp.host_address_width = (uint8_t)(data[36] + 1);
    tmp.flags = data[37];

    struct dmar_struct s;
    for (uint32_t off = DMAR_STRUCTS_OFF; off < tmp.header.length; off += s.length) {
        if (!decode_struct(&tmp, off, &s, true, d))
            return false;
        warn_about_struct(&s, d);
        tmp.structs++;
        if (s.type == DMAR_TYPE_DRHD)
            tmp.drhd_count++;
    }
    *t = tmp;
    return true;
}

bool dmar_next_struct(const struct dmar_table *t, uint32_t *cursor, struct dmar_struct *s)
{
    uint32_t off = *cursor ? *cursor : DMAR_STRUCTS_OFF;
    if (off >= t->header.length)
        return false;
    if (!decode_struct(t, off, s, false, NULL))
        return false; /* unreachable after a successful dmar_parse */
    *cursor = off + s->length;
    return true;
}

bool dmar_next_scope(const struct dmar_table *t, const struct dmar_struct *s, uint32_t *cursor,
                     struct dmar_scope *scope)
{
    if (!s->has_scopes)
        return false;
    uint32_t off = *cursor ? *cursor : s->scopes_offset;
    uint32_t end = s->offset + s->length;
    if (off >= end)
        return false;
    if (!decode_scope(t->data, off, end, scope, NULL))
        return false;
    *cursor = off + scope->length;
    return true;
}
