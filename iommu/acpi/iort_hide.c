/* iort_hide_smmus: the IORT a guest sees when the hypervisor owns the SMMUs (iort.h). The
 * guest's drivers then find no SMMU to program, and its PCI devices' MSIs still reach the ITS
 * with the device IDs the SMMU would have passed on. Two passes over the nodes: one sizes the
 * kept nodes (so every node's new offset is known), one writes them. */
#include "iommu/iort.h"

#include "iommu/le.h"

#define IORT_HEADER_NODE_COUNT 36u
#define PMCG_NODE_REFERENCE 28u

static bool is_smmu(uint8_t type)
{
    return type == IORT_NODE_SMMUV1V2 || type == IORT_NODE_SMMUV3;
}

static bool node_at(const struct iort_table *t, uint32_t offset, struct iort_node *n)
{
    for (struct iort_cursor c = {0}; iort_next_node(t, &c, n);)
        if (n->offset == offset)
            return true;
    return false;
}

/* SMMUs go, and what only means something with them: their PMCGs and the reserved memory
 * ranges (RMR) that tell an SMMU driver what to keep mapped. */
static bool removed(const struct iort_table *t, const struct iort_node *n)
{
    struct iort_node ref;
    if (is_smmu(n->type) || n->type == IORT_NODE_RMR)
        return true;
    return n->type == IORT_NODE_PMCG && node_at(t, n->node_reference, &ref) && is_smmu(ref.type);
}

/* Where the node's new ID mappings are counted or written. */
struct emit {
    uint8_t *at;        /* NULL: count only */
    uint32_t count;
    bool failed;
    struct diag *d;
};

static uint32_t new_offset(const struct iort_table *t, uint32_t old);

static void emit_mapping(const struct iort_table *t, struct emit *e, uint32_t input, uint32_t count_minus_one,
                         uint32_t output, uint32_t reference, uint32_t flags)
{
    if (e->at) {
        uint8_t *m = e->at + (size_t)e->count * IORT_ID_MAPPING_LEN;
        put_le32(m, input);
        put_le32(m + 4, count_minus_one);
        put_le32(m + 8, output);
        put_le32(m + 12, new_offset(t, reference));
        put_le32(m + 16, flags);
    }
    e->count++;
}

/* Mapping i of node n, composed with the SMMU it leads to (if it does). */
static void compose(const struct iort_table *t, const struct iort_node *n, uint32_t i, struct emit *e)
{
    struct iort_id_mapping m = iort_id_mapping(t, n, i);
    uint64_t m_last = iort_mapping_last(t, n, i);
    struct iort_node smmu;
    if (!node_at(t, m.output_reference, &smmu) || !is_smmu(smmu.type)) {
        emit_mapping(t, e, m.input_base, (uint32_t)(m_last - m.input_base), m.output_base, m.output_reference, m.flags);
        return;
    }
    bool single = m.flags & IORT_MAPPING_SINGLE;
    uint64_t out_first = m.output_base, out_last = single ? out_first : m.output_base + (m_last - m.input_base);
    for (uint32_t k = 0; k < smmu.mapping_count; k++) {
        struct iort_id_mapping s = iort_id_mapping(t, &smmu, k);
        if (s.flags & IORT_MAPPING_SINGLE) /* the SMMU's own MSIs: no device's IDs */
            continue;
        uint64_t s_last = iort_mapping_last(t, &smmu, k);
        uint64_t a = out_first > s.input_base ? out_first : s.input_base, b = out_last < s_last ? out_last : s_last;
        if (a > b)
            continue;
        struct iort_node next;
        if (node_at(t, s.output_reference, &next) && is_smmu(next.type)) {
            diag_error(e->d, n->offset, "%s node ID mapping %u leads through one SMMU to another: not composed",
                       iort_node_name(n->type), i);
            e->failed = true;
            return;
        }
        uint32_t output = (uint32_t)(s.output_base + (a - s.input_base));
        if (single)
            emit_mapping(t, e, m.input_base, 0, output, s.output_reference, m.flags);
        else
            emit_mapping(t, e, (uint32_t)(m.input_base + (a - out_first)), (uint32_t)(b - a), output,
                         s.output_reference, m.flags);
    }
}

/* The node's ID mappings after composition (counted, or written at 'at'). */
static struct emit node_mappings(const struct iort_table *t, const struct iort_node *n, uint8_t *at, struct diag *d)
{
    struct emit e = {.at = at, .d = d};
    for (uint32_t i = 0; i < n->mapping_count && !e.failed; i++)
        compose(t, n, i, &e);
    return e;
}

/* The kept node's new length: its part before the mappings, then the mappings (which end
 * the node: checked by the caller). */
static uint32_t new_length(const struct iort_table *t, const struct iort_node *n)
{
    if (!n->mapping_count)
        return n->length;
    return n->mapping_offset + node_mappings(t, n, NULL, NULL).count * IORT_ID_MAPPING_LEN;
}

/* Where the node at 'old' starts in the new table: the kept nodes before it, at their new
 * lengths. A reference to a removed node or nowhere keeps its value (the parser warns of
 * the latter; the former does not happen after composition). */
static uint32_t new_offset(const struct iort_table *t, uint32_t old)
{
    uint32_t at = t->node_offset;
    struct iort_node n;
    for (struct iort_cursor c = {0}; iort_next_node(t, &c, &n);) {
        if (n.offset == old)
            return removed(t, &n) ? old : at;
        if (!removed(t, &n))
            at += new_length(t, &n);
    }
    return old;
}

size_t iort_hide_smmus(const struct iort_table *t, uint8_t *out, size_t cap, struct diag *d)
{
    struct iort_node n;
    uint32_t kept = 0;
    size_t total = t->node_offset;
    for (struct iort_cursor c = {0}; iort_next_node(t, &c, &n);) {
        if (removed(t, &n))
            continue;
        if (n.mapping_count && n.mapping_offset + n.mapping_count * IORT_ID_MAPPING_LEN != n.length) {
            diag_error(d, n.offset, "%s node has data after its ID mappings: not rewritten", iort_node_name(n.type));
            return 0;
        }
        struct emit e = node_mappings(t, &n, NULL, d);
        if (e.failed)
            return 0;
        uint64_t length = n.mapping_count ? n.mapping_offset + (uint64_t)e.count * IORT_ID_MAPPING_LEN : n.length;
        if (length > 0xffff) {
            diag_error(d, n.offset, "%s node would be %lu bytes long: more than a node can be", iort_node_name(n.type),
                       (unsigned long)length);
            return 0;
        }
        kept++;
        total += length;
    }
    if (total > cap || total > 0xffffffffu) {
        diag_error(d, 0, "the rewritten IORT (%lu bytes) does not fit in %lu", (unsigned long)total,
                   (unsigned long)cap);
        return 0;
    }
    for (uint32_t i = 0; i < t->node_offset; i++) /* the header and whatever lies before the nodes */
        out[i] = t->data[i];
    size_t at = t->node_offset;
    for (struct iort_cursor c = {0}; iort_next_node(t, &c, &n);) {
        if (removed(t, &n))
            continue;
        uint32_t fixed = n.mapping_count ? n.mapping_offset : n.length;
        for (uint32_t i = 0; i < fixed; i++)
            out[at + i] = t->data[n.offset + i];
        struct emit e = node_mappings(t, &n, out + at + fixed, d);
        uint32_t length = fixed + e.count * IORT_ID_MAPPING_LEN;
        put_le16(out + at + 1, (uint16_t)length);
        put_le32(out + at + 8, e.count);
        if (n.type == IORT_NODE_PMCG)
            put_le32(out + at + PMCG_NODE_REFERENCE, new_offset(t, n.node_reference));
        at += length;
    }
    put_le32(out + 4, (uint32_t)total);
    put_le32(out + IORT_HEADER_NODE_COUNT, kept);
    out[9] = 0;
    out[9] = (uint8_t)(0x100 - acpi_checksum(out, total));
    return total;
}
