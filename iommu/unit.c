/* See iommu/include/iommu/unit.h: what a domain over several units may use. */
#include "iommu/unit.h"

#include "iommu/slpt.h"

unsigned iommu_units_common_levels(struct iommu_unit *const *units, unsigned count)
{
    uint8_t mask = count ? 0xFF : 0;
    for (unsigned i = 0; i < count; i++)
        mask &= units[i]->table_levels;
    for (unsigned levels = 7; levels >= 1; levels--)
        if (mask & (1u << levels))
            return levels;
    return 0;
}

uint8_t iommu_units_common_superpages(struct iommu_unit *const *units, unsigned count)
{
    uint8_t sp = count ? SLPT_SUPERPAGE_2M | SLPT_SUPERPAGE_1G : 0;
    for (unsigned i = 0; i < count; i++)
        sp &= units[i]->superpages;
    return sp;
}

const struct platform *iommu_units_write_back(struct iommu_unit *const *units, unsigned count)
{
    for (unsigned i = 0; i < count; i++)
        if (units[i]->write_back)
            return units[i]->write_back;
    return NULL;
}

enum iommu_status iommu_units_tables_init(struct slpt *t, struct page_pool *pool, struct iommu_unit *const *units,
                                          unsigned count)
{
    unsigned levels = iommu_units_common_levels(units, count);
    if (!levels)
        return IOMMU_ENODEV;
    for (unsigned i = 1; i < count; i++) /* one table for units that walk different formats: no */
        if (units[i]->table_format != units[0]->table_format)
            return IOMMU_ENODEV;
    enum iommu_status s = slpt_init(t, pool, levels, iommu_units_common_superpages(units, count));
    if (s == IOMMU_OK && units[0]->table_format)
        s = slpt_set_format(t, units[0]->table_format);
    const struct platform *wb = iommu_units_write_back(units, count);
    if (s == IOMMU_OK && wb)
        s = slpt_set_write_back(t, wb->flush_cache, wb->flush_cache_wait, wb->ctx);
    return s;
}

void iommu_fault_log_add(struct iommu_fault_log *log, const struct iommu_fault_record *f)
{
    log->recorded++;
    if (log->count == IOMMU_FAULT_LOG_SIZE) {
        log->first = (log->first + 1) % IOMMU_FAULT_LOG_SIZE; /* keep the newest */
        log->count--;
        log->dropped++;
    }
    log->entry[(log->first + log->count) % IOMMU_FAULT_LOG_SIZE] = *f;
    log->count++;
}

struct iommu_fault_record *iommu_fault_log_newest(struct iommu_fault_log *log)
{
    return log->count ? &log->entry[(log->first + log->count - 1) % IOMMU_FAULT_LOG_SIZE] : NULL;
}

bool iommu_fault_log_take(struct iommu_fault_log *log, struct iommu_fault_record *f)
{
    if (!log->count)
        return false;
    *f = log->entry[log->first];
    log->first = (log->first + 1) % IOMMU_FAULT_LOG_SIZE;
    log->count--;
    return true;
}
