#include "loader/discovery.h"

void discovery_dump_table(const char *signature, const uint8_t *p, uint32_t len)
{
    for (uint32_t off = 0; off < len; off += 32) {
        sink_printf(out, "dump: %s %04x:", signature, off);
        for (uint32_t i = off; i < len && i < off + 32; i++)
            sink_printf(out, " %02x", p[i]);
        sink_printf(out, "\n");
    }
}

static void report_acpi(const struct acpi_tables *t)
{
    sink_printf(out, "acpi: RSDP at 0x%lx revision %u, XSDT at 0x%lx lists %u tables\n", t->rsdp_pa,
                t->rsdp_revision, t->xsdt_pa, t->xsdt_entries);
    for (uint32_t i = 0; i < t->count; i++) {
        const struct acpi_table_ref *r = &t->table[i];
        sink_printf(out, "acpi: %s at 0x%lx, %u bytes, revision %u, checksum %s\n", r->signature, r->pa,
                    r->length, r->revision, r->checksum_ok ? "ok" : "WRONG");
    }
}

bool discovery_acpi(const struct platform *plat, const void *rsdp, struct acpi_tables *tables, struct checks *c)
{
    if (!check(c, rsdp != NULL, "ACPI 2.0 RSDP in the UEFI configuration table"))
        return false;
    struct diag d;
    diag_clear(&d);
    bool ok = acpi_discover(plat, (uint64_t)(uintptr_t)rsdp, tables, &d);
    diag_print(&d, "acpi", out);
    if (!check(c, ok, "RSDP and XSDT valid"))
        return false;
    report_acpi(tables);
    return true;
}

static void report_pci(const struct pci_inventory *inv, const char *unit_name)
{
    for (uint32_t i = 0; i < inv->count; i++) {
        const struct pci_function *f = &inv->fn[i];
        sink_printf(out, "pci: %04x:%02x:%02x.%x %04x:%04x class %06x%s", f->segment, f->bus, f->dev,
                    f->fn, f->vendor, f->device, f->class_code, f->header_type == PCI_HEADER_BRIDGE ? " bridge" : "");
        if (f->header_type == PCI_HEADER_BRIDGE)
            sink_printf(out, " buses %02x-%02x", f->secondary_bus, f->subordinate_bus);
        if (f->unit < 0)
            sink_printf(out, " -> none (not translated)\n");
        else if (f->match == PCI_UNIT_IORT) /* the stream ID is the IORT's to say */
            sink_printf(out, " -> %s[%d] stream 0x%x (%s)\n", unit_name, f->unit, f->stream_id,
                        pci_unit_match_name(f->match));
        else
            sink_printf(out, " -> %s[%d] (%s)\n", unit_name, f->unit, pci_unit_match_name(f->match));
    }
    if (inv->truncated)
        sink_printf(out, "pci: warning: more than %u functions, the rest are not listed\n", PCI_MAX_FUNCTIONS);
}

const struct pci_inventory *discovery_pci(const struct platform *plat, const struct acpi_tables *tables,
                                          const struct dmar_table *dmar, const struct iort_table *iort,
                                          unsigned units, const char *unit_name, struct checks *c)
{
    sink_printf(out, "--- PCI ---\n");
    const struct acpi_table_ref *ref = acpi_find(tables, "MCFG");
    if (!check(c, ref != NULL, "MCFG table present"))
        return NULL;
    static struct mcfg mcfg;
    struct diag d;
    diag_clear(&d);
    const uint8_t *bytes = acpi_map_table(plat, ref);
    bool ok = bytes && mcfg_parse(bytes, ref->length, &mcfg, &d);
    diag_print(&d, "mcfg", out);
    if (!check(c, ok && mcfg.count > 0, "MCFG parsed, ECAM window present"))
        return NULL;
    for (uint32_t i = 0; i < mcfg.count; i++)
        sink_printf(out, "ecam: segment %u buses %02x-%02x at 0x%lx\n", mcfg.window[i].segment,
                    mcfg.window[i].start_bus, mcfg.window[i].end_bus, mcfg.window[i].base);
    static struct pci_inventory inv;
    pci_enumerate(plat, &mcfg, &inv);
    if (dmar)
        pci_assign_units(&inv, dmar);
    else if (iort)
        pci_assign_units_iort(&inv, iort);
    report_pci(&inv, unit_name);
    check(c, inv.count > 0, "PCI functions found through ECAM");
    if (dmar || iort) {
        bool units_valid = true;
        for (uint32_t i = 0; i < inv.count; i++)
            if (inv.fn[i].unit >= (int)units)
                units_valid = false;
        checkf(c, units_valid, "every assigned unit index names a%s", dmar ? " DRHD" : "n SMMU node");
    }
    return &inv;
}
