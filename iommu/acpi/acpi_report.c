#include "iommu/acpi_report.h"

static void header_text(const struct acpi_header *h, const struct sink *out)
{
    sink_printf(out, "%s revision %u, %u bytes, checksum %s, OEM \"%s\" \"%s\"\n", h->signature,
                h->revision, h->length, h->checksum_ok ? "ok" : "WRONG", h->oem_id, h->oem_table_id);
}

static void header_json(const struct acpi_header *h, struct json_writer *w)
{
    json_kv_str(w, "signature", h->signature);
    json_kv_uint(w, "length", h->length);
    json_kv_uint(w, "revision", h->revision);
    json_kv_bool(w, "checksum_ok", h->checksum_ok);
    json_kv_str(w, "oem_id", h->oem_id);
    json_kv_str(w, "oem_table_id", h->oem_table_id);
}

/* ---- DMAR ---- */

void dmar_scope_path_text(const struct dmar_scope *sc, char *buf, size_t size)
{
    size_t n = fmt_format(buf, size, "%02x:", sc->start_bus);
    for (unsigned i = 0; i < sc->hops && n < size; i++)
        n += fmt_format(buf + n, size - n, "%s%02x.%x", i ? "/" : "", sc->path[2 * i],
                        sc->path[2 * i + 1]);
}

static void flag_names(const struct sink *out, unsigned flags, const char *const names[], unsigned count)
{
    for (unsigned bit = 0; bit < count; bit++)
        if (flags & (1u << bit))
            sink_printf(out, " %s", names[bit]);
}

void dmar_report_text(const struct dmar_table *t, const struct sink *out)
{
    static const char *const table_flags[] = {"INTR_REMAP", "X2APIC_OPT_OUT",
                                              "DMA_CTRL_PLATFORM_OPT_IN"};
    header_text(&t->header, out);
    sink_printf(out, "  host address width %u bits, flags 0x%x", t->host_address_width, t->flags);
    flag_names(out, t->flags, table_flags, 3);
    sink_printf(out, "\n");

    struct dmar_struct s;
    for (uint32_t c = 0; dmar_next_struct(t, &c, &s);) {
        sink_printf(out, "  [0x%03x] %-4s", s.offset, dmar_struct_name(s.type));
        switch (s.type) {
        case DMAR_TYPE_DRHD:
            sink_printf(out, " segment %u register base 0x%lx (%u page%s) flags 0x%x%s\n", s.segment,
                        s.register_base, 1u << s.size, s.size ? "s" : "", s.flags,
                        s.flags & DRHD_FLAG_INCLUDE_PCI_ALL ? " INCLUDE_PCI_ALL" : "");
            break;
        case DMAR_TYPE_RMRR:
            sink_printf(out, " segment %u [0x%lx, 0x%lx]\n", s.segment, s.base, s.limit);
            break;
        case DMAR_TYPE_ATSR:
            sink_printf(out, " segment %u flags 0x%x%s\n", s.segment, s.flags,
                        s.flags & ATSR_FLAG_ALL_PORTS ? " ALL_PORTS" : "");
            break;
        case DMAR_TYPE_SATC:
            sink_printf(out, " segment %u flags 0x%x%s\n", s.segment, s.flags,
                        s.flags & SATC_FLAG_ATC_REQUIRED ? " ATC_REQUIRED" : "");
            break;
        case DMAR_TYPE_SIDP:
            sink_printf(out, " segment %u\n", s.segment);
            break;
        case DMAR_TYPE_RHSA:
            sink_printf(out, " register base 0x%lx proximity domain %u\n", s.register_base,
                        s.proximity_domain);
            break;
        case DMAR_TYPE_ANDD:
            sink_printf(out, " ACPI device %u \"%.*s\"\n", s.device_number, (int)s.object_name_len,
                        s.object_name);
            break;
        default:
            sink_printf(out, " type %u, %u bytes skipped\n", s.type, s.length);
            break;
        }
        struct dmar_scope sc;
        for (uint32_t sc_c = 0; dmar_next_scope(t, &s, &sc_c, &sc);) {
            char path[64];
            dmar_scope_path_text(&sc, path, sizeof path);
            sink_printf(out, "           scope [0x%03x] %-14s %s", sc.offset,
                        dmar_scope_type_name(sc.type), path);
            if (sc.type >= DMAR_SCOPE_IOAPIC)
                sink_printf(out, " enumeration id %u", sc.enumeration_id);
            if (sc.flags)
                sink_printf(out, " flags 0x%x", sc.flags);
            sink_printf(out, "\n");
        }
    }
}

static void dmar_scopes_json(const struct dmar_table *t, const struct dmar_struct *s,
                             struct json_writer *w)
{
    json_key(w, "scopes");
    json_begin_array(w);
    struct dmar_scope sc;
    for (uint32_t c = 0; dmar_next_scope(t, s, &c, &sc);) {
        json_begin_object(w);
        json_kv_uint(w, "offset", sc.offset);
        json_kv_uint(w, "type", sc.type);
        json_kv_uint(w, "length", sc.length);
        json_kv_uint(w, "flags", sc.flags);
        json_kv_uint(w, "enumeration_id", sc.enumeration_id);
        json_kv_uint(w, "start_bus", sc.start_bus);
        json_key(w, "path");
        json_begin_array(w);
        for (unsigned i = 0; i < sc.hops; i++) {
            json_begin_array(w);
            json_uint(w, sc.path[2 * i]);
            json_uint(w, sc.path[2 * i + 1]);
            json_end_array(w);
        }
        json_end_array(w);
        json_end_object(w);
    }
    json_end_array(w);
}

void dmar_report_json(const struct dmar_table *t, struct json_writer *w)
{
    json_begin_object(w);
    header_json(&t->header, w);
    json_kv_uint(w, "host_address_width", t->host_address_width);
    json_kv_uint(w, "flags", t->flags);
    json_key(w, "structures");
    json_begin_array(w);
    struct dmar_struct s;
    for (uint32_t c = 0; dmar_next_struct(t, &c, &s);) {
        json_begin_object(w);
        json_kv_uint(w, "offset", s.offset);
        json_kv_str(w, "type", dmar_struct_name(s.type));
        json_kv_uint(w, "length", s.length);
        switch (s.type) {
        case DMAR_TYPE_DRHD:
            json_kv_uint(w, "flags", s.flags);
            json_kv_uint(w, "size", s.size);
            json_kv_uint(w, "segment", s.segment);
            json_kv_uint(w, "register_base", s.register_base);
            break;
        case DMAR_TYPE_RMRR:
            json_kv_uint(w, "segment", s.segment);
            json_kv_uint(w, "base", s.base);
            json_kv_uint(w, "limit", s.limit);
            break;
        case DMAR_TYPE_ATSR:
        case DMAR_TYPE_SATC:
            json_kv_uint(w, "flags", s.flags);
            json_kv_uint(w, "segment", s.segment);
            break;
        case DMAR_TYPE_SIDP:
            json_kv_uint(w, "segment", s.segment);
            break;
        case DMAR_TYPE_RHSA:
            json_kv_uint(w, "register_base", s.register_base);
            json_kv_uint(w, "proximity_domain", s.proximity_domain);
            break;
        case DMAR_TYPE_ANDD:
            json_kv_uint(w, "device_number", s.device_number);
            json_kv_strn(w, "object_name", s.object_name, s.object_name_len);
            break;
        default:
            json_kv_uint(w, "type_id", s.type);
            break;
        }
        if (s.has_scopes)
            dmar_scopes_json(t, &s, w);
        json_end_object(w);
    }
    json_end_array(w);
    json_end_object(w);
}

/* ---- IORT ---- */

void iort_report_text(const struct iort_table *t, const struct sink *out)
{
    header_text(&t->header, out);
    sink_printf(out, "  %u nodes at offset 0x%x\n", t->node_count, t->node_offset);
    struct iort_node n;
    for (struct iort_cursor c = {0}; iort_next_node(t, &c, &n);) {
        sink_printf(out, "  [0x%03x] %-8s revision %u identifier %u", n.offset, iort_node_name(n.type),
                    n.revision, n.identifier);
        switch (n.type) {
        case IORT_NODE_ITS:
            sink_printf(out, ", ITS ids");
            for (uint32_t i = 0; i < n.count; i++)
                sink_printf(out, " %u", iort_its_id(t, &n, i));
            break;
        case IORT_NODE_NC:
            sink_printf(out, " \"%.*s\" flags 0x%x coherency %u address limit %u bits",
                        (int)n.object_name_len, n.object_name, n.node_flags, n.cache_coherency,
                        n.memory_address_limit);
            break;
        case IORT_NODE_RC:
            sink_printf(out, " segment %u ats 0x%x coherency %u", n.segment, n.ats_attribute,
                        n.cache_coherency);
            if (n.has_memory_address_limit)
                sink_printf(out, " address limit %u bits", n.memory_address_limit);
            break;
        case IORT_NODE_SMMUV1V2:
            sink_printf(out, " base 0x%lx span 0x%lx model %u flags 0x%x, %u context and %u PMU interrupts",
                        n.base_address, n.span, n.model, n.node_flags, n.count, n.pmu_count);
            break;
        case IORT_NODE_SMMUV3:
            sink_printf(out, " base 0x%lx model %u flags 0x%x gsiv event %u pri %u gerr %u sync %u",
                        n.base_address, n.model, n.node_flags, n.event_gsiv, n.pri_gsiv, n.gerr_gsiv,
                        n.sync_gsiv);
            break;
        case IORT_NODE_PMCG:
            sink_printf(out, " page 0 0x%lx overflow gsiv %u node 0x%x", n.base_address,
                        n.overflow_gsiv, n.node_reference);
            break;
        case IORT_NODE_RMR:
            sink_printf(out, " flags 0x%x", n.node_flags);
            for (uint32_t i = 0; i < n.count; i++) {
                uint64_t base, length;
                iort_rmr_range(t, &n, i, &base, &length);
                sink_printf(out, " [0x%lx +0x%lx]", base, length);
            }
            break;
        case IORT_NODE_IWB:
            sink_printf(out, " \"%.*s\" base 0x%lx index %u", (int)n.object_name_len, n.object_name,
                        n.base_address, n.iwb_index);
            break;
        default:
            sink_printf(out, " (type %u, %u bytes skipped)", n.type, n.length);
            break;
        }
        sink_printf(out, "\n");
        for (uint32_t i = 0; i < n.mapping_count; i++) {
            struct iort_id_mapping m = iort_id_mapping(t, &n, i);
            sink_printf(out, "           ids 0x%x..0x%x -> 0x%x at node 0x%x%s\n", m.input_base,
                        m.input_base + m.id_count, m.output_base, m.output_reference,
                        m.flags & IORT_MAPPING_SINGLE ? " (single)" : "");
        }
    }
}

static void smmu_interrupts_json(const struct iort_table *t, const struct iort_node *n, bool pmu,
                                 struct json_writer *w)
{
    json_key(w, pmu ? "pmu_interrupts" : "context_interrupts");
    json_begin_array(w);
    for (uint32_t i = 0; i < (pmu ? n->pmu_count : n->count); i++) {
        uint32_t gsiv, flags;
        iort_smmu_interrupt(t, n, pmu, i, &gsiv, &flags);
        json_begin_object(w);
        json_kv_uint(w, "gsiv", gsiv);
        json_kv_uint(w, "flags", flags);
        json_end_object(w);
    }
    json_end_array(w);
}

static void memory_properties_json(const struct iort_node *n, struct json_writer *w)
{
    json_kv_uint(w, "cache_coherency", n->cache_coherency);
    json_kv_uint(w, "allocation_hints", n->allocation_hints);
    json_kv_uint(w, "memory_flags", n->memory_flags);
}

static void iort_node_fields_json(const struct iort_table *t, const struct iort_node *n,
                                  struct json_writer *w)
{
    switch (n->type) {
    case IORT_NODE_ITS:
        json_key(w, "its_ids");
        json_begin_array(w);
        for (uint32_t i = 0; i < n->count; i++)
            json_uint(w, iort_its_id(t, n, i));
        json_end_array(w);
        break;
    case IORT_NODE_NC:
        json_kv_uint(w, "node_flags", n->node_flags);
        memory_properties_json(n, w);
        json_kv_uint(w, "memory_address_limit", n->memory_address_limit);
        json_kv_strn(w, "object_name", n->object_name, n->object_name_len);
        break;
    case IORT_NODE_RC:
        memory_properties_json(n, w);
        json_kv_uint(w, "ats_attribute", n->ats_attribute);
        json_kv_uint(w, "segment", n->segment);
        if (n->has_memory_address_limit)
            json_kv_uint(w, "memory_address_limit", n->memory_address_limit);
        if (n->has_pasid_capabilities)
            json_kv_uint(w, "pasid_capabilities", n->pasid_capabilities);
        if (n->has_rc_flags)
            json_kv_uint(w, "flags", n->node_flags);
        break;
    case IORT_NODE_SMMUV1V2:
        json_kv_uint(w, "base_address", n->base_address);
        json_kv_uint(w, "span", n->span);
        json_kv_uint(w, "model", n->model);
        json_kv_uint(w, "flags", n->node_flags);
        json_kv_uint(w, "nsg_irpt", n->nsg_irpt);
        json_kv_uint(w, "nsg_irpt_flags", n->nsg_irpt_flags);
        json_kv_uint(w, "nsg_cfg_irpt", n->nsg_cfg_irpt);
        json_kv_uint(w, "nsg_cfg_irpt_flags", n->nsg_cfg_irpt_flags);
        smmu_interrupts_json(t, n, false, w);
        smmu_interrupts_json(t, n, true, w);
        break;
    case IORT_NODE_SMMUV3:
        json_kv_uint(w, "base_address", n->base_address);
        json_kv_uint(w, "flags", n->node_flags);
        json_kv_uint(w, "vatos_address", n->vatos_address);
        json_kv_uint(w, "model", n->model);
        json_kv_uint(w, "event_gsiv", n->event_gsiv);
        json_kv_uint(w, "pri_gsiv", n->pri_gsiv);
        json_kv_uint(w, "gerr_gsiv", n->gerr_gsiv);
        json_kv_uint(w, "sync_gsiv", n->sync_gsiv);
        if (n->has_proximity_domain)
            json_kv_uint(w, "proximity_domain", n->proximity_domain);
        if (n->has_device_id_mapping_index)
            json_kv_uint(w, "device_id_mapping_index", n->device_id_mapping_index);
        break;
    case IORT_NODE_PMCG:
        json_kv_uint(w, "page0_base_address", n->base_address);
        json_kv_uint(w, "overflow_gsiv", n->overflow_gsiv);
        json_kv_uint(w, "node_reference", n->node_reference);
        if (n->has_page1)
            json_kv_uint(w, "page1_base_address", n->page1_base_address);
        break;
    case IORT_NODE_RMR:
        json_kv_uint(w, "flags", n->node_flags);
        json_key(w, "memory_ranges");
        json_begin_array(w);
        for (uint32_t i = 0; i < n->count; i++) {
            uint64_t base, length;
            iort_rmr_range(t, n, i, &base, &length);
            json_begin_object(w);
            json_kv_uint(w, "base", base);
            json_kv_uint(w, "length", length);
            json_end_object(w);
        }
        json_end_array(w);
        break;
    case IORT_NODE_IWB:
        json_kv_uint(w, "base_address", n->base_address);
        json_kv_uint(w, "iwb_index", n->iwb_index);
        json_kv_strn(w, "object_name", n->object_name, n->object_name_len);
        break;
    default:
        json_kv_uint(w, "type_id", n->type);
        break;
    }
}

void iort_report_json(const struct iort_table *t, struct json_writer *w)
{
    json_begin_object(w);
    header_json(&t->header, w);
    json_kv_uint(w, "node_count", t->node_count);
    json_kv_uint(w, "node_offset", t->node_offset);
    json_key(w, "nodes");
    json_begin_array(w);
    struct iort_node n;
    for (struct iort_cursor c = {0}; iort_next_node(t, &c, &n);) {
        json_begin_object(w);
        json_kv_uint(w, "offset", n.offset);
        json_kv_str(w, "type", iort_node_name(n.type));
        json_kv_uint(w, "length", n.length);
        json_kv_uint(w, "revision", n.revision);
        json_kv_uint(w, "identifier", n.identifier);
        iort_node_fields_json(t, &n, w);
        json_key(w, "id_mappings");
        json_begin_array(w);
        for (uint32_t i = 0; i < n.mapping_count; i++) {
            struct iort_id_mapping m = iort_id_mapping(t, &n, i);
            json_begin_object(w);
            json_kv_uint(w, "input_base", m.input_base);
            json_kv_uint(w, "id_count", m.id_count);
            json_kv_uint(w, "output_base", m.output_base);
            json_kv_uint(w, "output_reference", m.output_reference);
            json_kv_uint(w, "flags", m.flags);
            json_end_object(w);
        }
        json_end_array(w);
        json_end_object(w);
    }
    json_end_array(w);
    json_end_object(w);
}
