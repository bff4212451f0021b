/* A remapping unit as the domain core and the DDI use it, whatever its hardware: give a
 * device a translation (or none), invalidate what the unit caches for a domain, and drain
 * its faults into neutral records (iommu/fault.h). The VT-d driver (iommu/vtd.h) is the
 * first implementation: its struct vtd_unit starts with a struct iommu_unit. The calls go
 * through a table of functions; none of them is in a hot loop (each is a register access
 * or a queued command on the unit). */
#ifndef IOMMU_UNIT_H
#define IOMMU_UNIT_H

#include <stdbool.h>
#include <stdint.h>

#include "fault.h"
#include "page_pool.h"
#include "platform.h"
#include "status.h"

enum iommu_translation_kind {
    IOMMU_TRANSLATE,   /* through the domain's tables */
    IOMMU_PASSTHROUGH, /* untranslated (when the unit can) */
};

/* What a device's DMA goes through. */
struct iommu_translation {
    enum iommu_translation_kind type;
    uint16_t domain_id;
    uint64_t table_pa;   /* the tables' root, for IOMMU_TRANSLATE */
    unsigned levels;     /* their depth */
};

struct iommu_unit;
struct pt_format;

struct iommu_unit_ops {
    /* The device's DMA goes through t from now on, or (t NULL) is blocked. */
    enum iommu_status (*set_translation)(struct iommu_unit *u, uint16_t sid, const struct iommu_translation *t);
    /* What the unit caches of the domain's translations for [first, last], or all of them. */
    enum iommu_status (*invalidate_range)(struct iommu_unit *u, uint16_t domain_id, uint64_t first, uint64_t last);
    enum iommu_status (*invalidate_domain)(struct iommu_unit *u, uint16_t domain_id);
    /* Takes the unit's fault records into its log (returns how many); take_fault hands out
     * the oldest logged one. */
    unsigned (*drain_faults)(struct iommu_unit *u);
    bool (*take_fault)(struct iommu_unit *u, struct iommu_fault_record *f);
    /* The unit's name for one of its reason codes. */
    const char *(*fault_reason_name)(uint8_t reason);
    /* Whether the unit's registers still say what its driver set up (translation on, with
     * its tables); *status gets the unit's status register, named status_name. */
    bool (*intact)(const struct iommu_unit *u, uint32_t *status);
    const char *status_name;
    /* Fault injection (may be NULL): the unit's next n invalidation waits time out. False,
     * with nothing changed, when the unit cannot. */
    bool (*inject_wait_timeouts)(struct iommu_unit *u, uint32_t n);
};

struct iommu_unit {
    const struct iommu_unit_ops *ops;
    const char *name;              /* its driver's: log lines say "name[index]" */
    unsigned index;
    uint64_t register_base;        /* where its registers are (fault reports name it) */
    uint16_t segment;              /* the PCI segment whose devices it translates */
    uint32_t domain_ids;           /* domain ids it takes: 0 to domain_ids - 1 */
    uint8_t table_levels;          /* bit n: the unit walks n-level tables (covering its width) */
    uint8_t superpages;            /* SLPT_SUPERPAGE_* its tables may use */
    const struct pt_format *table_format; /* the entries it walks; NULL: VT-d second-level */
    const struct platform *write_back; /* not NULL: the unit does not snoop its table walks, and
                                        * this platform's flush_cache writes the tables back */
    struct iommu_fault_log faults;     /* drain_faults fills it, under the driver's lock */
};

static inline enum iommu_status iommu_unit_set_translation(struct iommu_unit *u, uint16_t sid,
                                                           const struct iommu_translation *t)
{
    return u->ops->set_translation(u, sid, t);
}

static inline enum iommu_status iommu_unit_invalidate_range(struct iommu_unit *u, uint16_t domain_id, uint64_t first,
                                                            uint64_t last)
{
    return u->ops->invalidate_range(u, domain_id, first, last);
}

static inline enum iommu_status iommu_unit_invalidate_domain(struct iommu_unit *u, uint16_t domain_id)
{
    return u->ops->invalidate_domain(u, domain_id);
}

static inline unsigned iommu_unit_drain_faults(struct iommu_unit *u)
{
    return u->ops->drain_faults(u);
}

static inline bool iommu_unit_take_fault(struct iommu_unit *u, struct iommu_fault_record *f)
{
    return u->ops->take_fault(u, f);
}

static inline bool iommu_unit_intact(const struct iommu_unit *u, uint32_t *status)
{
    return u->ops->intact(u, status);
}

static inline bool iommu_unit_inject_wait_timeouts(struct iommu_unit *u, uint32_t n)
{
    return u->ops->inject_wait_timeouts && u->ops->inject_wait_timeouts(u, n);
}

/* For domains that may span units: the deepest tables every unit walks, and the superpage
 * sizes all of them take; 0 if none. */
unsigned iommu_units_common_levels(struct iommu_unit *const *units, unsigned count);
uint8_t iommu_units_common_superpages(struct iommu_unit *const *units, unsigned count);
/* The platform whose flush_cache the tables of domains on these units need, or NULL. */
const struct platform *iommu_units_write_back(struct iommu_unit *const *units, unsigned count);
struct slpt;
/* Empty tables for a domain on these units: their common depth, superpage sizes and table
 * format, and the write-back iommu_units_write_back asks for. IOMMU_ENODEV when they share
 * no depth or walk different formats. */
enum iommu_status iommu_units_tables_init(struct slpt *t, struct page_pool *pool, struct iommu_unit *const *units,
                                          unsigned count);

#endif
