/* What a remapping unit's fault means, whatever the unit: the record the domain core and
 * the DDI read, so that no one outside a unit's driver decodes its fault reasons. */
#ifndef IOMMU_FAULT_H
#define IOMMU_FAULT_H

#include <stdbool.h>
#include <stdint.h>

enum iommu_fault_kind {
    IOMMU_FAULT_TRANSLATION,  /* no translation, or one that does not allow the access */
    IOMMU_FAULT_ADDRESS_SIZE, /* an address beyond what the domain's tables translate */
    IOMMU_FAULT_TABLE,        /* the unit could not read its own tables (a platform error) */
    IOMMU_FAULT_OTHER,        /* the unit's set-up refused the request (a device not given a domain) */
};

/* One fault, as a unit's driver gives it (iommu/unit.h take_fault). */
struct iommu_fault_record {
    uint16_t sid;               /* the requester: PCI bus, device and function */
    uint8_t reason;             /* the unit's own reason code, for its log line */
    enum iommu_fault_kind kind; /* what it means */
    bool write;
    uint64_t address;           /* the faulting page */
    /* The unit's records this fault stands for: 1, or more where the driver merged the
     * records of one transfer (QEMU's SMMUv3 records one event per 4 bytes: smmuv3.c). */
    uint32_t records;
};

/* A unit's faults between its driver's drain and their readers, newest kept. */
#define IOMMU_FAULT_LOG_SIZE 64
struct iommu_fault_log {
    struct iommu_fault_record entry[IOMMU_FAULT_LOG_SIZE];
    uint32_t first;     /* oldest entry */
    uint32_t count;
    uint64_t recorded;  /* fault records drained from the unit */
    uint64_t overflows; /* times the unit reported faults it could not record */
    uint64_t dropped;   /* records lost because the log was full */
};

/* Adds f (counted in recorded), dropping the oldest when full (counted in dropped). */
void iommu_fault_log_add(struct iommu_fault_log *log, const struct iommu_fault_record *f);
/* The newest entry, or NULL when the log is empty (a driver adds to its count of records). */
struct iommu_fault_record *iommu_fault_log_newest(struct iommu_fault_log *log);
/* Takes the oldest; false when there is none. */
bool iommu_fault_log_take(struct iommu_fault_log *log, struct iommu_fault_record *f);

#endif
