#include "iommu/iort.h"

#include "iommu/le.h"

/* Node-relative length of the fields every revision of each node type has. */
static const uint8_t mandatory_len[] = {
    [IORT_NODE_ITS] = 20,      /* count of ITS identifiers */
    [IORT_NODE_NC] = 29,       /* through the memory address size limit; the name follows */
    [IORT_NODE_RC] = 32,       /* through the PCI segment number */
    [IORT_NODE_SMMUV1V2] = 60, /* through the PMU interrupt array reference */
    [IORT_NODE_SMMUV3] = 60,   /* through the Sync GSIV */
    [IORT_NODE_PMCG] = 32,     /* through the node reference */
    [IORT_NODE_RMR] = 28,      /* through the memory range array reference */
    [IORT_NODE_IWB] = 26,      /* base address and index; the name follows */
};

#define KNOWN_TYPES (sizeof mandatory_len / sizeof mandatory_len[0])

const char *iort_node_name(uint8_t type)
{
    static const char *const names[] = {"ITS", "NC", "RC", "SMMUv1v2", "SMMUv3", "PMCG", "RMR",
                                        "IWB"};
    return type < KNOWN_TYPES ? names[type] : "unknown";
}

/* An array of count elements of elem_len bytes at node-relative 'start' must lie inside
 * the node. */
static bool array_fits(const struct iort_node *n, uint32_t start, uint64_t count, uint32_t elem_len,
                       const char *what, struct diag *d)
{
    if (span_ok(start, count * elem_len, n->length))
        return true;
    diag_error(d, n->offset + 8u,
               "%s node: %s (%lu x %u bytes at node offset 0x%x) runs past the node's %u bytes",
               iort_node_name(n->type), what, count, elem_len, start, n->length);
    return false;
}

static uint32_t bounded_strlen(const uint8_t *p, uint32_t max)
{
    uint32_t i = 0;
    while (i < max && p[i])
        i++;
    return i;
}

static bool decode_node(const struct iort_table *t, uint32_t off, struct iort_node *n, struct diag *d)
{
    const uint32_t end = t->header.length;
    if (!span_ok(off, IORT_NODE_HEADER_LEN, end)) {
        diag_error(d, off, "IORT node header needs %u bytes, %u left in the table",
                   IORT_NODE_HEADER_LEN, end - off);
        return false;
    }
    const uint8_t *p = t->data + off;
    *n = (struct iort_node){
        .offset = off,
        .type = p[0],
        .length = le16(p + 1),
        .revision = p[3],
        .identifier = le32(p + 4),
        .mapping_count = le32(p + 8),
        .mapping_offset = le32(p + 12),
    };
    uint32_t min_len = n->type < KNOWN_TYPES ? mandatory_len[n->type] : IORT_NODE_HEADER_LEN;
    if (n->length < min_len) {
        diag_error(d, off + 1, "%s node length %u is shorter than its %u-byte fixed part",
                   iort_node_name(n->type), n->length, min_len);
        return false;
    }
    if (!span_ok(off, n->length, end)) {
        diag_error(d, off + 1, "%s node length %u runs past the table end (%u bytes left)",
                   iort_node_name(n->type), n->length, end - off);
        return false;
    }
    n->fixed_end = n->length;
    if (n->mapping_count) {
        if (n->mapping_offset < min_len) {
            diag_error(d, off + 12, "%s node: ID mapping array at node offset 0x%x overlaps its %u-byte fixed part",
                       iort_node_name(n->type), n->mapping_offset, min_len);
            return false;
        }
        if (!array_fits(n, n->mapping_offset, n->mapping_count, IORT_ID_MAPPING_LEN, "ID mapping array", d))
            return false;
        n->fixed_end = n->mapping_offset;
    }
    /* A field appended by a later revision: present when the fixed part holds it. */
#define HAS(field_off, field_len) ((field_off) + (field_len) <= n->fixed_end)

    switch (n->type) {
    case IORT_NODE_ITS:
        n->count = le32(p + 16);
        n->array_offset = 20;
        if (!array_fits(n, 20, n->count, 4, "ITS identifier array", d))
            return false;
        break;
    case IORT_NODE_NC:
        n->node_flags = le32(p + 16);
        n->cache_coherency = le32(p + 20);
        n->allocation_hints = p[24];
        n->memory_flags = p[27];
        n->has_memory_address_limit = true;
        n->memory_address_limit = p[28];
        n->object_name = (const char *)p + 29;
        n->object_name_len = bounded_strlen(p + 29, n->fixed_end > 29 ? n->fixed_end - 29 : 0);
        break;
    case IORT_NODE_RC:
        n->cache_coherency = le32(p + 16);
        n->allocation_hints = p[20];
        n->memory_flags = p[23];
        n->ats_attribute = le32(p + 24);
        n->segment = le32(p + 28);
        if ((n->has_memory_address_limit = HAS(32, 1)))
            n->memory_address_limit = p[32];
        if ((n->has_pasid_capabilities = HAS(33, 2)))
            n->pasid_capabilities = le16(p + 33);
        if ((n->has_rc_flags = HAS(36, 4)))
            n->node_flags = le32(p + 36);
        break;
    case IORT_NODE_SMMUV1V2: {
        n->base_address = le64(p + 16);
        n->span = le64(p + 24);
        n->model = le32(p + 32);
        n->node_flags = le32(p + 36);
        uint32_t global_ref = le32(p + 40);
        n->count = le32(p + 44);
        n->array_offset = le32(p + 48);
        n->pmu_count = le32(p + 52);
        n->pmu_offset = le32(p + 56);
        if (!array_fits(n, global_ref, 1, 16, "global interrupt array", d) ||
            !array_fits(n, n->array_offset, n->count, IORT_SMMU_INTERRUPT_LEN, "context interrupt array", d) ||
            !array_fits(n, n->pmu_offset, n->pmu_count, IORT_SMMU_INTERRUPT_LEN, "PMU interrupt array", d))
            return false;
        n->nsg_irpt = le32(p + global_ref);
        n->nsg_irpt_flags = le32(p + global_ref + 4);
        n->nsg_cfg_irpt = le32(p + global_ref + 8);
        n->nsg_cfg_irpt_flags = le32(p + global_ref + 12);
        break;
    }
    case IORT_NODE_SMMUV3:
        n->base_address = le64(p + 16);
        n->node_flags = le32(p + 24);
        n->vatos_address = le64(p + 32);
        n->model = le32(p + 40);
        n->event_gsiv = le32(p + 44);
        n->pri_gsiv = le32(p + 48);
        n->gerr_gsiv = le32(p + 52);
        n->sync_gsiv = le32(p + 56);
        if ((n->has_proximity_domain = HAS(60, 4)))
            n->proximity_domain = le32(p + 60);
        if ((n->has_device_id_mapping_index = HAS(64, 4)))
            n->device_id_mapping_index = le32(p + 64);
        break;
    case IORT_NODE_PMCG:
        n->base_address = le64(p + 16);
        n->overflow_gsiv = le32(p + 24);
        n->node_reference = le32(p + 28);
        if ((n->has_page1 = HAS(32, 8)))
            n->page1_base_address = le64(p + 32);
        break;
    case IORT_NODE_RMR:
        n->node_flags = le32(p + 16);
        n->count = le32(p + 20);
        n->array_offset = le32(p + 24);
        if (!array_fits(n, n->array_offset, n->count, IORT_RMR_RANGE_LEN, "memory range array", d))
            return false;
        break;
    case IORT_NODE_IWB:
        n->base_address = le64(p + 16);
        n->iwb_index = le16(p + 24);
        n->object_name = (const char *)p + 26;
        n->object_name_len = bounded_strlen(p + 26, n->fixed_end > 26 ? n->fixed_end - 26 : 0);
        break;
    default:
        break;
    }
#undef HAS
    return true;
}

static bool is_node_offset(const struct iort_table *t, uint32_t ref)
{
    struct iort_node n;
    for (struct iort_cursor c = {0}; iort_next_node(t, &c, &n);)
        if (n.offset == ref)
            return true;
    return false;
}

static uint64_t mapping_last(const struct iort_id_mapping *m)
{
    return (uint64_t)m->input_base + m->id_count;
}

/* The count quirk: a range that ends exactly where another starts, with a count of a whole
 * number of buses (0x100, 0x200, ...). QEMU (7.2 among others) and some firmware (HiSilicon
 * Hi1620's) store the number of IDs there, where the specification stores one less, so the
 * range claims one ID too many: the first ID of the range after it. */
static bool count_quirk(const struct iort_id_mapping *m, const struct iort_id_mapping *next)
{
    return m->id_count && m->id_count % 0x100 == 0 && mapping_last(m) == next->input_base;
}

/* Two ranges of one node that claim the same IDs: the count quirk is named and resolved (the
 * ID goes to the range that starts there: iort_map_id); any other overlap is a warning and
 * the first range listed wins. */
static void check_overlaps(const struct iort_table *t, const struct iort_node *n, struct diag *d)
{
    for (uint32_t i = 0; i < n->mapping_count; i++) {
        struct iort_id_mapping a = iort_id_mapping(t, n, i);
        for (uint32_t j = i + 1; j < n->mapping_count && !(a.flags & IORT_MAPPING_SINGLE); j++) {
            struct iort_id_mapping b = iort_id_mapping(t, n, j);
            if ((b.flags & IORT_MAPPING_SINGLE) || a.input_base > mapping_last(&b) || b.input_base > mapping_last(&a))
                continue;
            uint32_t at = n->offset + n->mapping_offset + i * IORT_ID_MAPPING_LEN;
            const struct iort_id_mapping *q = count_quirk(&a, &b) ? &a : count_quirk(&b, &a) ? &b : NULL;
            if (q)
                diag_warn(d, at, "%s node ID mappings %u and %u overlap at ID 0x%x: count 0x%x is the number of IDs "
                          "(QEMU's and some firmware's quirk); read as ending at 0x%x",
                          iort_node_name(n->type), i, j, (uint32_t)mapping_last(q), q->id_count,
                          (uint32_t)mapping_last(q) - 1);
            else
                diag_warn(d, at, "%s node ID mappings %u and %u overlap (IDs 0x%x..0x%x): the first one listed wins",
                          iort_node_name(n->type), i, j, a.input_base > b.input_base ? a.input_base : b.input_base,
                          (uint32_t)(mapping_last(&a) < mapping_last(&b) ? mapping_last(&a) : mapping_last(&b)));
        }
    }
}

uint64_t iort_mapping_last(const struct iort_table *t, const struct iort_node *n, uint32_t i)
{
    struct iort_id_mapping m = iort_id_mapping(t, n, i);
    if (m.flags & IORT_MAPPING_SINGLE)
        return m.input_base;
    for (uint32_t j = 0; j < n->mapping_count; j++) {
        struct iort_id_mapping next = iort_id_mapping(t, n, j);
        if (j != i && !(next.flags & IORT_MAPPING_SINGLE) && count_quirk(&m, &next))
            return mapping_last(&m) - 1;
    }
    return mapping_last(&m);
}

bool iort_map_id(const struct iort_table *t, const struct iort_node *n, uint32_t id, uint32_t *out_id,
                 uint32_t *out_reference)
{
    for (uint32_t i = 0; i < n->mapping_count; i++) {
        struct iort_id_mapping m = iort_id_mapping(t, n, i);
        if ((m.flags & IORT_MAPPING_SINGLE) || id < m.input_base || id > mapping_last(&m))
            continue;
        /* the first range listed, unless it reaches this ID only by the count quirk */
        bool quirk_end = false;
        for (uint32_t j = 0; j < n->mapping_count && !quirk_end; j++) {
            struct iort_id_mapping next = iort_id_mapping(t, n, j);
            quirk_end = j != i && !(next.flags & IORT_MAPPING_SINGLE) && next.input_base == id && count_quirk(&m, &next);
        }
        if (!quirk_end) {
            *out_id = m.output_base + (id - m.input_base);
            *out_reference = m.output_reference;
            return true;
        }
    }
    return false;
}

/* References between nodes are checked after every node is known to be well formed. A
 * reference to nowhere is a warning: the table still describes its other nodes. */
static void check_references(const struct iort_table *t, struct diag *d)
{
    struct iort_node n;
    for (struct iort_cursor c = {0}; iort_next_node(t, &c, &n);) {
        for (uint32_t i = 0; i < n.mapping_count; i++) {
            struct iort_id_mapping m = iort_id_mapping(t, &n, i);
            if (!is_node_offset(t, m.output_reference))
                diag_warn(d, n.offset + n.mapping_offset + i * IORT_ID_MAPPING_LEN + 12,
                          "%s node ID mapping %u: output reference 0x%x is not a node",
                          iort_node_name(n.type), i, m.output_reference);
        }
        check_overlaps(t, &n, d);
        if (n.type == IORT_NODE_PMCG && !is_node_offset(t, n.node_reference))
            diag_warn(d, n.offset + 28, "PMCG node reference 0x%x is not a node", n.node_reference);
        if (n.type >= KNOWN_TYPES)
            diag_warn(d, n.offset, "unknown IORT node type %u skipped", n.type);
    }
}

bool iort_parse(struct iort_table *t, const uint8_t *data, size_t avail, struct diag *d)
{
    struct iort_table tmp = {.data = data};
    if (!acpi_header_parse(data, avail, "IORT", &tmp.header, d))
        return false;
    if (tmp.header.length < IORT_FIXED_LEN) {
        diag_error(d, 4, "IORT length %u is shorter than its %u-byte fixed part", tmp.header.length,
                   IORT_FIXED_LEN);
        return false;
    }
    tmp.node_count = le32(data + 36);
    tmp.node_offset = le32(data + 40);
    if (tmp.node_count && (tmp.node_offset < IORT_FIXED_LEN || tmp.node_offset >= tmp.header.length)) {
        diag_error(d, 40, "node array offset 0x%x is outside the table body [0x%x, 0x%x)",
                   tmp.node_offset, IORT_FIXED_LEN, tmp.header.length);
        return false;
    }
    uint32_t off = tmp.node_offset;
    struct iort_node n;
    for (uint32_t i = 0; i < tmp.node_count; i++, off += n.length)
        if (!decode_node(&tmp, off, &n, d))
            return false;
    if (tmp.node_count && off < tmp.header.length)
        diag_warn(d, off, "%u bytes after the last of %u nodes are ignored", tmp.header.length - off,
                  tmp.node_count);
    check_references(&tmp, d);
    *t = tmp;
    return true;
}

bool iort_next_node(const struct iort_table *t, struct iort_cursor *c, struct iort_node *n)
{
    if (c->index >= t->node_count)
        return false;
    uint32_t off = c->index ? c->next_offset : t->node_offset;
    if (!decode_node(t, off, n, NULL))
        return false; /* unreachable after a successful iort_parse */
    c->index++;
    c->next_offset = off + n->length;
    return true;
}

struct iort_id_mapping iort_id_mapping(const struct iort_table *t, const struct iort_node *n, uint32_t i)
{
    const uint8_t *m = t->data + n->offset + n->mapping_offset + i * IORT_ID_MAPPING_LEN;
    return (struct iort_id_mapping){le32(m), le32(m + 4), le32(m + 8), le32(m + 12), le32(m + 16)};
}

uint32_t iort_its_id(const struct iort_table *t, const struct iort_node *n, uint32_t i)
{
    return le32(t->data + n->offset + n->array_offset + 4 * i);
}

void iort_rmr_range(const struct iort_table *t, const struct iort_node *n, uint32_t i, uint64_t *base,
                    uint64_t *length)
{
    const uint8_t *r = t->data + n->offset + n->array_offset + i * IORT_RMR_RANGE_LEN;
    *base = le64(r);
    *length = le64(r + 8);
}

void iort_smmu_interrupt(const struct iort_table *t, const struct iort_node *n, bool pmu, uint32_t i,
                         uint32_t *gsiv, uint32_t *flags)
{
    const uint8_t *r = t->data + n->offset + (pmu ? n->pmu_offset : n->array_offset) +
                       i * IORT_SMMU_INTERRUPT_LEN;
    *gsiv = le32(r);
    *flags = le32(r + 4);
}
