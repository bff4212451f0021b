#include "iommu/pci.h"

#define PCI_VENDOR_NONE 0xffffu

static uint64_t ecam_address(const struct mcfg_window *w, uint8_t bus, uint8_t dev, uint8_t fn,
                             uint32_t reg)
{
    return w->base + ((uint64_t)bus << 20 | (uint64_t)dev << 15 | (uint64_t)fn << 12 | reg);
}

static uint32_t config_read32(const struct platform *plat, const struct mcfg_window *w, uint8_t bus,
                              uint8_t dev, uint8_t fn, uint32_t reg)
{
    return plat->mmio_read32(plat->ctx, ecam_address(w, bus, dev, fn, reg));
}

/* Records the function if it exists; returns whether it exists. */
static bool probe(const struct platform *plat, const struct mcfg_window *w, uint8_t bus, uint8_t dev,
                  uint8_t fn, struct pci_inventory *inv, bool *multifunction)
{
    uint32_t id = config_read32(plat, w, bus, dev, fn, 0x00);
    if ((id & 0xffff) == PCI_VENDOR_NONE || (id & 0xffff) == 0)
        return false;
    uint32_t cmd_status = config_read32(plat, w, bus, dev, fn, 0x04);
    uint32_t class_rev = config_read32(plat, w, bus, dev, fn, 0x08);
    uint32_t bist_header = config_read32(plat, w, bus, dev, fn, 0x0c);
    uint8_t header = (uint8_t)(bist_header >> 16);
    if (multifunction)
        *multifunction = header & 0x80;
    if (inv->count == PCI_MAX_FUNCTIONS) {
        inv->truncated = true;
        return true;
    }
    struct pci_function *f = &inv->fn[inv->count++];
    *f = (struct pci_function){
        .segment = w->segment,
        .bus = bus,
        .dev = dev,
        .fn = fn,
        .vendor = (uint16_t)id,
        .device = (uint16_t)(id >> 16),
        .class_code = class_rev >> 8,
        .header_type = header & 0x7f,
        .command = (uint16_t)cmd_status,
        .config_pa = ecam_address(w, bus, dev, fn, 0),
        .unit = -1,
    };
    if (f->header_type == PCI_HEADER_BRIDGE) {
        uint32_t buses = config_read32(plat, w, bus, dev, fn, 0x18);
        f->secondary_bus = (uint8_t)(buses >> 8);
        f->subordinate_bus = (uint8_t)(buses >> 16);
    }
    return true;
}

void pci_enumerate(const struct platform *plat, const struct mcfg *mcfg, struct pci_inventory *inv)
{
    inv->count = 0;
    inv->truncated = false;
    /* Every bus of each window is probed rather than only those reached through bridges
     * from bus 0: servers have several root buses (the Dell R820 DMAR names 0x40, 0x80 and
     * 0xc0), and a bus whose bridge was left unprogrammed should still show up. */
    for (uint32_t wi = 0; wi < mcfg->count; wi++) {
        const struct mcfg_window *w = &mcfg->window[wi];
        for (unsigned bus = w->start_bus; bus <= w->end_bus; bus++) {
            for (uint8_t dev = 0; dev < 32; dev++) {
                bool multi = false;
                if (!probe(plat, w, (uint8_t)bus, dev, 0, inv, &multi) || !multi)
                    continue;
                for (uint8_t fn = 1; fn < 8; fn++)
                    probe(plat, w, (uint8_t)bus, dev, fn, inv, NULL);
            }
        }
    }
}

#define PCI_BAR0 0x10
#define PCI_BAR_IO 0x1u
#define PCI_BAR_TYPE_64 0x4u /* bits 2:1 = 10b */
#define PCI_BAR_ADDRESS 0xFFFFFFF0u

uint64_t pci_memory_bar(const struct platform *plat, const struct pci_function *f, unsigned n)
{
    if (n > 5 || f->header_type != 0)
        return 0;
    uint32_t lo = plat->mmio_read32(plat->ctx, f->config_pa + PCI_BAR0 + 4 * n);
    if (lo & PCI_BAR_IO)
        return 0;
    uint64_t address = lo & PCI_BAR_ADDRESS;
    if ((lo & 0x6u) == PCI_BAR_TYPE_64 && n < 5)
        address |= (uint64_t)plat->mmio_read32(plat->ctx, f->config_pa + PCI_BAR0 + 4 * (n + 1)) << 32;
    return address;
}

const struct pci_function *pci_find(const struct pci_inventory *inv, uint16_t segment, uint8_t bus,
                                    uint8_t dev, uint8_t fn)
{
    for (uint32_t i = 0; i < inv->count; i++) {
        const struct pci_function *f = &inv->fn[i];
        if (f->segment == segment && f->bus == bus && f->dev == dev && f->fn == fn)
            return f;
    }
    return NULL;
}

bool pci_scope_resolve(const struct pci_inventory *inv, uint16_t segment, const struct dmar_scope *sc,
                       uint8_t *bus, uint8_t *dev, uint8_t *fn)
{
    if (sc->hops == 0)
        return false;
    uint8_t b = sc->start_bus;
    for (unsigned i = 0; i + 1 < sc->hops; i++) {
        const struct pci_function *bridge = pci_find(inv, segment, b, sc->path[2 * i], sc->path[2 * i + 1]);
        if (!bridge || bridge->header_type != PCI_HEADER_BRIDGE)
            return false;
        b = bridge->secondary_bus;
    }
    *bus = b;
    *dev = sc->path[2 * (sc->hops - 1)];
    *fn = sc->path[2 * (sc->hops - 1) + 1];
    return true;
}

const char *pci_unit_match_name(enum pci_unit_match m)
{
    switch (m) {
    case PCI_UNIT_ENDPOINT:
        return "endpoint scope";
    case PCI_UNIT_BRIDGE:
        return "bridge scope";
    case PCI_UNIT_INCLUDE_ALL:
        return "INCLUDE_PCI_ALL";
    case PCI_UNIT_IORT:
        return "IORT ID mapping";
    default:
        return "not translated";
    }
}

/* How closely one scope matches function f; a narrower bridge range wins over a wider one. */
struct scope_match {
    enum pci_unit_match kind;
    unsigned span; /* buses covered, for bridge matches */
};

static struct scope_match match_scope(const struct pci_inventory *inv, const struct pci_function *f,
                                      const struct dmar_scope *sc)
{
    struct scope_match none = {PCI_UNIT_NONE, 0};
    uint8_t bus, dev, fn;
    if (sc->type != DMAR_SCOPE_PCI_ENDPOINT && sc->type != DMAR_SCOPE_PCI_SUBHIERARCHY)
        return none;
    if (!pci_scope_resolve(inv, f->segment, sc, &bus, &dev, &fn))
        return none;
    bool is_f = bus == f->bus && dev == f->dev && fn == f->fn;
    if (sc->type == DMAR_SCOPE_PCI_ENDPOINT)
        return is_f ? (struct scope_match){PCI_UNIT_ENDPOINT, 0} : none;
    if (is_f)
        return (struct scope_match){PCI_UNIT_BRIDGE, 0};
    const struct pci_function *bridge = pci_find(inv, f->segment, bus, dev, fn);
    if (bridge && bridge->header_type == PCI_HEADER_BRIDGE && bridge->secondary_bus &&
        f->bus >= bridge->secondary_bus && f->bus <= bridge->subordinate_bus)
        return (struct scope_match){PCI_UNIT_BRIDGE, 1u + bridge->subordinate_bus - bridge->secondary_bus};
    return none;
}

static bool better(struct scope_match a, struct scope_match b)
{
    if (a.kind == PCI_UNIT_NONE)
        return false;
    if (b.kind == PCI_UNIT_NONE)
        return true;
    if (a.kind != b.kind)
        return a.kind == PCI_UNIT_ENDPOINT;
    return a.span < b.span;
}

void pci_assign_units(struct pci_inventory *inv, const struct dmar_table *dmar)
{
    for (uint32_t i = 0; i < inv->count; i++) {
        struct pci_function *f = &inv->fn[i];
        struct scope_match best = {PCI_UNIT_NONE, 0};
        int best_unit = -1, include_all_unit = -1, unit = -1;
        struct dmar_struct s;
        for (uint32_t c = 0; dmar_next_struct(dmar, &c, &s);) {
            if (s.type != DMAR_TYPE_DRHD)
                continue;
            unit++;
            if (s.segment != f->segment)
                continue;
            if (s.flags & DRHD_FLAG_INCLUDE_PCI_ALL) {
                if (include_all_unit < 0)
                    include_all_unit = unit;
                continue;
            }
            struct dmar_scope sc;
            for (uint32_t sc_c = 0; dmar_next_scope(dmar, &s, &sc_c, &sc);) {
                struct scope_match m = match_scope(inv, f, &sc);
                if (better(m, best)) {
                    best = m;
                    best_unit = unit;
                }
            }
        }
        f->stream_id = pci_sid(f);
        if (best.kind != PCI_UNIT_NONE) {
            f->unit = best_unit;
            f->match = best.kind;
        } else if (include_all_unit >= 0) {
            f->unit = include_all_unit;
            f->match = PCI_UNIT_INCLUDE_ALL;
        } else {
            f->unit = -1;
            f->match = PCI_UNIT_NONE;
        }
    }
}

static bool is_smmu(uint8_t type)
{
    return type == IORT_NODE_SMMUV1V2 || type == IORT_NODE_SMMUV3;
}

void pci_assign_units_iort(struct pci_inventory *inv, const struct iort_table *iort)
{
    for (uint32_t i = 0; i < inv->count; i++) {
        struct pci_function *f = &inv->fn[i];
        f->unit = -1;
        f->match = PCI_UNIT_NONE;
        f->stream_id = pci_sid(f);
        struct iort_node rc;
        bool found = false;
        for (struct iort_cursor c = {0}; !found && iort_next_node(iort, &c, &rc);)
            found = rc.type == IORT_NODE_RC && rc.segment == f->segment;
        uint32_t id, reference;
        if (!found || !iort_map_id(iort, &rc, pci_sid(f), &id, &reference))
            continue;
        int smmu = -1;
        struct iort_node n;
        for (struct iort_cursor c = {0}; iort_next_node(iort, &c, &n);) {
            smmu += is_smmu(n.type);
            if (n.offset == reference && is_smmu(n.type)) {
                f->unit = smmu;
                f->match = PCI_UNIT_IORT;
                f->stream_id = id;
                break;
            }
        }
    }
}
