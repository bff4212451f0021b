/* Status codes of the IOMMU core. Zero is success; every failure leaves the state it was
 * asked to change as it was, unless the function's comment says otherwise. */
#ifndef IOMMU_STATUS_H
#define IOMMU_STATUS_H

enum iommu_status {
    IOMMU_OK = 0,
    IOMMU_EINVAL,    /* an argument is malformed: unaligned, zero length, unknown bits */
    IOMMU_ERANGE,    /* an address lies outside what the unit or table supports */
    IOMMU_EEXIST,    /* the range overlaps an existing mapping */
    IOMMU_ENOMEM,    /* no table memory left in the pool */
    IOMMU_ETIMEDOUT, /* the hardware did not complete within the poll bound */
    IOMMU_ENODEV,    /* no such unit, device or domain */
    IOMMU_EBUSY,     /* the object is in use */
    IOMMU_EHW,       /* the hardware reported an error (e.g. invalidation queue error) */
    IOMMU_EWINDOW,   /* a [min, max] window too small or misaligned for the aligned block asked for */
};

const char *iommu_status_name(enum iommu_status s);

#endif
