/* IORT (IO Remapping Table) parser, Arm DEN 0049. It does not depend on the table revision
 * (the fixtures cover revisions 0 to 5).
 *
 * Same scheme as the DMAR parser: iort_parse validates every node, its fixed fields, its
 * ID mappings and its arrays once, with the decode function the iterators use later.
 * Fields that later revisions appended to a node are decoded when the node's fixed part
 * (the bytes before its ID-mapping array, or the whole node without mappings) holds
 * them; the has_* flags say which were. */
#ifndef IOMMU_IORT_H
#define IOMMU_IORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acpi.h"
#include "diag.h"

#define IORT_FIXED_LEN 48u
#define IORT_NODE_HEADER_LEN 16u
#define IORT_ID_MAPPING_LEN 20u
#define IORT_RMR_RANGE_LEN 20u
#define IORT_SMMU_INTERRUPT_LEN 8u

enum iort_node_type {
    IORT_NODE_ITS = 0,
    IORT_NODE_NC = 1,      /* named component */
    IORT_NODE_RC = 2,      /* PCI root complex */
    IORT_NODE_SMMUV1V2 = 3,
    IORT_NODE_SMMUV3 = 4,
    IORT_NODE_PMCG = 5,    /* SMMUv3 performance monitor counter group */
    IORT_NODE_RMR = 6,     /* reserved memory ranges */
    IORT_NODE_IWB = 7,     /* interrupt wire bridge */
};

#define IORT_MAPPING_SINGLE 1u /* ID mapping flags: the node's own single ID, no input range */

struct iort_id_mapping {
    uint32_t input_base;
    uint32_t id_count;     /* as stored: the number of IDs minus one */
    uint32_t output_base;
    uint32_t output_reference;
    uint32_t flags;
};

struct iort_node {
    uint32_t offset;
    uint8_t type;
    uint16_t length;
    uint8_t revision;
    uint32_t identifier;
    uint32_t mapping_count;
    uint32_t mapping_offset;  /* from the node start, as stored */
    uint32_t fixed_end;       /* node-relative end of the fixed part */

    /* Memory access properties (NC, RC). */
    uint32_t cache_coherency;
    uint8_t allocation_hints;
    uint8_t memory_flags;

    uint32_t count;           /* ITS: identifiers; RMR: ranges; SMMUv1v2: context interrupts */
    uint32_t array_offset;    /* node-relative start of that array */
    uint32_t pmu_count;       /* SMMUv1v2 */
    uint32_t pmu_offset;

    uint32_t node_flags;      /* NC node flags; RC, SMMU, RMR flags */
    uint64_t base_address;    /* SMMUv1v2, SMMUv3, IWB; PMCG page 0 */
    uint64_t span;            /* SMMUv1v2 */
    uint32_t model;           /* SMMUv1v2, SMMUv3 */
    uint32_t nsg_irpt, nsg_irpt_flags, nsg_cfg_irpt, nsg_cfg_irpt_flags; /* SMMUv1v2 */
    uint64_t vatos_address;   /* SMMUv3 */
    uint32_t event_gsiv, pri_gsiv, gerr_gsiv, sync_gsiv;
    bool has_proximity_domain;
    uint32_t proximity_domain;
    bool has_device_id_mapping_index;
    uint32_t device_id_mapping_index;
    uint32_t overflow_gsiv;   /* PMCG */
    uint32_t node_reference;  /* PMCG */
    bool has_page1;
    uint64_t page1_base_address;
    uint32_t ats_attribute;   /* RC */
    uint32_t segment;         /* RC */
    bool has_memory_address_limit;
    uint8_t memory_address_limit; /* NC, RC */
    bool has_pasid_capabilities;
    uint16_t pasid_capabilities;
    bool has_rc_flags;
    uint16_t iwb_index;       /* IWB */
    const char *object_name;  /* NC, IWB: up to the first NUL inside the fixed part */
    uint32_t object_name_len;
};

struct iort_table {
    const uint8_t *data;
    struct acpi_header header;
    uint32_t node_count;
    uint32_t node_offset;
};

bool iort_parse(struct iort_table *t, const uint8_t *data, size_t avail, struct diag *d);

/* Iteration over the node_count nodes in table order:
 *   for (struct iort_cursor c = {0}; iort_next_node(t, &c, &n);) ... */
struct iort_cursor {
    uint32_t index;
    uint32_t next_offset;
};
bool iort_next_node(const struct iort_table *t, struct iort_cursor *c, struct iort_node *n);

/* Element i of a node's arrays; i must be below the node's count for that array. */
struct iort_id_mapping iort_id_mapping(const struct iort_table *t, const struct iort_node *n,
                                       uint32_t i);
uint32_t iort_its_id(const struct iort_table *t, const struct iort_node *n, uint32_t i);
void iort_rmr_range(const struct iort_table *t, const struct iort_node *n, uint32_t i,
                    uint64_t *base, uint64_t *length);
/* SMMUv1/v2 context (pmu = false) or PMU interrupt i: GSIV and flags. */
void iort_smmu_interrupt(const struct iort_table *t, const struct iort_node *n, bool pmu,
                         uint32_t i, uint32_t *gsiv, uint32_t *flags);

const char *iort_node_name(uint8_t type); /* "ITS", "NC", ..., or "unknown" */

/* The last input ID mapping i of node n covers: input_base + id_count, or one less where the
 * count quirk made it reach the first ID of another range. */
uint64_t iort_mapping_last(const struct iort_table *t, const struct iort_node *n, uint32_t i);

/* The IORT as a guest that must not program the SMMUs should see it: t without its SMMU
 * nodes (v1/v2 and v3) and their PMCGs, every ID mapping that went through an SMMU composed
 * with the SMMU's own mapping so it goes straight to where the SMMU sent the IDs (the ITS),
 * the node references moved with the nodes, the count quirk written as the specification
 * counts, and the length and checksum fixed. Written to out (cap bytes); returns its length,
 * or 0 (with an error in d, out unspecified) when it does not fit, when a mapping through an
 * SMMU leads to another SMMU, or when a node has data after its ID mappings. */
size_t iort_hide_smmus(const struct iort_table *t, uint8_t *out, size_t cap, struct diag *d);

/* Where node n sends input ID id (a root complex's requester ID, an SMMU's stream ID): the
 * range that covers it gives *out_id and the node it goes to (*out_reference, an offset).
 * Single mappings are not ranges. When ranges overlap, the first listed wins, except at an
 * ID a range reaches only by the count quirk of QEMU and some firmware (a count of a whole
 * number of buses that ends where the next range starts: the parser warns of it), which
 * goes to the range that starts there. False when no range covers id. */
bool iort_map_id(const struct iort_table *t, const struct iort_node *n, uint32_t id, uint32_t *out_id,
                 uint32_t *out_reference);

#endif
