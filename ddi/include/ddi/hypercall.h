/* The hypercall ABI between the guest shim and the hypervisor's DDI server: one VMMCALL per
 * wdm routine call. Shared by both sides; docs/hypercall.md describes it for anyone writing
 * another shim.
 *
 * Registers (x86-64, VMMCALL):
 *   RAX = HC_ABI_VERSION << 16 | call number       (bits 32-63 zero)
 *   RCX = guest-physical address of the call's parameter block (8-byte aligned)
 *   RDX = size of the block in bytes: exactly sizeof the call's block
 * On return RAX holds an NTSTATUS (zero-extended); the hypervisor has written the block's
 * output fields; no other register changes.
 *
 * Registers (AArch64, HVC #0, as an SMC Calling Convention fast call):
 *   X0 = hc_smccc_function(call): 0xC6000000 | HC_ABI_VERSION << 8 | call number, a fast
 *        SMC64 function ID of the vendor-specific hypervisor service (owner 6)
 *   X1 = guest-physical address of the block, X2 = its size, as RCX and RDX
 * On return X0 holds the NTSTATUS (zero-extended); X1-X17 are unchanged.
 *
 * Blocks hold only fixed-width integers: no pointer of either side crosses. Guest addresses
 * in a block (frame lists, VA lists, reserved-region arrays, poll buffers) are guest-physical
 * and must lie in guest RAM. Domain, device and token handles are opaque 64-bit values made
 * by the hypervisor. A pointer argument of the wdm routine is carried as a present flag (the
 * routine sees NULL when it is clear) and, for an input, its value. */
#ifndef DDI_HYPERCALL_H
#define DDI_HYPERCALL_H

#include <stdbool.h>

#include "ddi/wdm_iommu.h"

#define HC_ABI_VERSION 1u

/* Errors of the hypercall itself, before any routine runs (real NTSTATUS values). */
#define STATUS_INFO_LENGTH_MISMATCH ((NTSTATUS)0xC0000004u)  /* RDX is not the call's block size */
#define STATUS_ACCESS_VIOLATION ((NTSTATUS)0xC0000005u)      /* a guest address outside guest RAM */
#define STATUS_INVALID_SYSTEM_SERVICE ((NTSTATUS)0xC000001Cu) /* unknown call number */
#define STATUS_REVISION_MISMATCH ((NTSTATUS)0xC0000059u)     /* another ABI version */

/* Limits of one call (the hypervisor copies these lists into its own memory first). */
#define HC_MAX_FRAMES 16384u      /* frames of one physical descriptor: 64 MiB per call */
#define HC_MAX_REGIONS 65u        /* reserved regions of one CreateDomainEx (the DDI takes 64) */
#define HC_MAX_FLUSH_VAS 1024u    /* addresses of one FlushDomainByVaList */
#define HC_MAX_POLL 64u           /* reports collected by one poll */
#define HC_MAX_INPUT_MAPPINGS 16u /* IDs one QueryInputMappings returns */

enum hc_call {
    HC_VERSION = 0,
    HC_GET_INTERFACE,
    /* V1 (and the routines V2 shares with it) */
    HC_CREATE_DOMAIN,
    HC_DELETE_DOMAIN,
    HC_ATTACH_DEVICE,
    HC_DETACH_DEVICE,
    HC_FLUSH_DOMAIN,
    HC_FLUSH_DOMAIN_VA_LIST,
    HC_QUERY_INPUT_MAPPINGS,
    HC_MAP_LOGICAL_RANGE,
    HC_UNMAP_LOGICAL_RANGE,
    HC_MAP_IDENTITY_RANGE,
    HC_UNMAP_IDENTITY_RANGE,
    HC_SET_DEVICE_FAULT_REPORTING,
    HC_CONFIGURE_DOMAIN,
    /* V2 */
    HC_CREATE_DOMAIN_EX,
    HC_ATTACH_DEVICE_EX,
    HC_DETACH_DEVICE_EX,
    HC_MAP_LOGICAL_RANGE_EX,
    HC_MAP_IDENTITY_RANGE_EX,
    HC_UNMAP_IDENTITY_RANGE_EX,
    HC_SET_DEVICE_FAULT_REPORTING_EX,
    HC_QUERY_AVAILABLE_DOMAIN_TYPES,
    HC_REGISTER_STATE_CHANGE,
    HC_UNREGISTER_STATE_CHANGE,
    HC_RESERVE_LOGICAL_RANGE,
    HC_FREE_RESERVED_LOGICAL_RANGE,
    HC_MAP_RESERVED_LOGICAL_RANGE,
    HC_UNMAP_RESERVED_LOGICAL_RANGE,
    HC_CREATE_DEVICE,
    HC_DELETE_DEVICE,
    /* pending fault reports and state changes */
    HC_POLL,
    /* the hypervisor's books, for tests: what exists and what the page pool holds */
    HC_STATS,
    /* failures on purpose, for fault-injection runs; refused unless the loader allows them */
    HC_INJECT,
    /* the hypervisor itself, not the DDI (docs/security.md): served by the host, never by
     * the DDI server, which refuses them as unknown calls */
    HC_AUDIT,         /* the host checks its own integrity now and says so on its channel */
    HC_GUEST_EXIT,    /* the payload has ended with a status: the hypervisor gives its
                       * verdict and powers the machine off */
    HC_CALLS
};

static inline uint64_t hc_rax(enum hc_call call)
{
    return (uint64_t)HC_ABI_VERSION << 16 | (uint64_t)call;
}

/* The Arm form (HVC): a fast (bit 31) SMC64 (bit 30) call of owner 6, the vendor-specific
 * hypervisor service (bits 29:24); bits 23:16 zero as SMCCC requires; the ABI version in
 * bits 15:8 and the call in bits 7:0. */
#define HC_SMCCC_OWNER_BITS 0xC6000000u
#define HC_SMCCC_FIXED_MASK 0xFFFF0000u

static inline uint64_t hc_smccc_function(enum hc_call call)
{
    return (uint64_t)HC_SMCCC_OWNER_BITS | (uint64_t)HC_ABI_VERSION << 8 | (uint64_t)call;
}

/* The x86 form of an Arm function ID, for hc_dispatch (which then judges the version and
 * the call number as for VMMCALL); false when X0 is no function ID of this ABI's range, which
 * the EL2 handler answers with SMCCC's NOT_SUPPORTED (-1) instead. */
static inline bool hc_rax_from_smccc(uint64_t x0, uint64_t *rax)
{
    if (x0 >> 32 || (x0 & HC_SMCCC_FIXED_MASK) != HC_SMCCC_OWNER_BITS)
        return false;
    *rax = (x0 >> 8 & 0xff) << 16 | (x0 & 0xff);
    return true;
}

/* The Arm function ID of an x86-form RAX, for guest code written against hc_rax: the ABI
 * version and the call in their 8 bits each. A RAX no function ID can carry (a version or a
 * call over 0xff) becomes HC_SMCCC_OWNER_BITS | 0x10000 (bits 23:16 set), which
 * hc_rax_from_smccc refuses: the hypervisor answers it NOT_SUPPORTED. */
static inline uint64_t hc_smccc_from_rax(uint64_t rax)
{
    if (rax >> 24 || (rax & 0xff00))
        return (uint64_t)HC_SMCCC_OWNER_BITS | 0x10000u;
    return (uint64_t)HC_SMCCC_OWNER_BITS | (rax >> 16 & 0xff) << 8 | (rax & 0xff);
}

/* ---- pieces of blocks ---- */

/* A PCI function in place of a DEVICE_OBJECT pointer. */
struct hc_device {
    uint8_t present; /* 0: the routine gets NULL */
    uint8_t bus, device, function;
    uint16_t segment;
    uint16_t reserved;
    uint32_t type;   /* DEVICE_OBJECT.Type, passed on (the DDI refuses a wrong one) */
    uint32_t reserved2;
};

/* An optional input value: a pointer argument such as ExplicitLogicalAddress. */
struct hc_opt_u64 {
    uint64_t present;
    uint64_t value;
};

/* Physical memory in place of an MDL pointer (V1) or an IOMMU_MAP_PHYSICAL_ADDRESS pointer (V2). */
#define HC_PHYS_NULL 0xFFFFFFFFu /* map_type: the routine gets a NULL descriptor (or NULL MDL) */
#define HC_PHYS_MDL_NULL 1u      /* flags, with map_type Mdl: the descriptor names a NULL MDL */
struct hc_phys {
    uint32_t map_type;        /* IOMMU_MAP_PHYSICAL_ADDRESS_TYPE, passed on as given, or HC_PHYS_NULL */
    uint32_t flags;
    uint64_t base;            /* ContiguousRange.Base; Pfn and Mdl: guest-physical address of the frame array */
    uint64_t count;           /* ContiguousRange.Size (bytes); Pfn: NumberOfPages */
    uint32_t mdl_byte_count;  /* Mdl: ByteCount and ByteOffset; its frames are */
    uint32_t mdl_byte_offset; /*   ceil((ByteOffset + ByteCount) / 4096) */
};

/* ---- the blocks, one per call ---- */

struct hc_version_block {     /* out */
    _Alignas(8) uint32_t abi_version;
    uint32_t max_frames, max_regions, max_flush_vas;
    uint32_t max_poll, reserved;
};

struct hc_get_interface_block {
    uint32_t version;
    uint8_t ex;               /* 1: IoGetIommuInterfaceEx; 0: IoGetIommuInterface */
    uint8_t out_present;      /* the InterfaceOut pointer was not NULL */
    uint8_t reserved[2];
    uint64_t flags;           /* IoGetIommuInterfaceEx's Flags */
};

struct hc_create_domain_block {
    uint8_t os_managed;
    uint8_t out_present;
    uint8_t reserved[6];
    uint64_t domain;          /* out */
};

struct hc_domain_block {      /* DeleteDomain, FlushDomain */
    uint64_t domain;
};

struct hc_attach_device_block {
    uint64_t domain;
    struct hc_device device;
    uint32_t input_mapping_id_base, mapping_count;
};

struct hc_detach_device_block {
    uint64_t domain;
    struct hc_device device;
    uint32_t input_mapping_id, reserved;
};

struct hc_flush_va_list_block {
    uint64_t domain;
    uint8_t last_level;
    uint8_t list_present;
    uint8_t reserved[2];
    uint32_t number;
    uint64_t list;            /* guest-physical address of Number 64-bit addresses */
};

struct hc_query_input_mappings_block {
    _Alignas(8) struct hc_device device;
    uint32_t buffer_length, reserved; /* in bytes */
    uint64_t buffer;          /* guest-physical address of buffer_length bytes; 0: no buffer */
    uint32_t return_length;   /* out: the bytes the IDs need */
    uint32_t reserved2;
};

struct hc_map_logical_block { /* V1 MapLogicalRange */
    uint64_t domain;
    uint32_t permissions, reserved;
    struct hc_phys mdl;
    uint64_t logical_address;
};

struct hc_unmap_logical_block {
    uint64_t domain;
    uint64_t logical_address;
    uint64_t number_of_pages;
};

struct hc_identity_block {    /* Map/UnmapIdentityRange (MDL) and their Ex forms (descriptor) */
    uint64_t domain;
    uint32_t permissions, reserved; /* unmaps: 0 */
    struct hc_phys phys;
};

struct hc_fault_reporting_block { /* V1 SetDeviceFaultReporting */
    struct hc_device device;
    uint32_t input_mapping_id_base;
    uint8_t enable;
    uint8_t config_present;   /* FaultConfig was not NULL */
    uint8_t handler_present;  /* FaultConfig->FaultHandler was not NULL */
    uint8_t reserved;
    uint64_t cookie;          /* the guest's name for this registration, returned with each fault */
};

struct hc_configure_domain_block {
    uint64_t domain;
    uint32_t config_present;
    uint32_t type;            /* DOMAIN_CONFIGURATION.Type */
};

struct hc_reserved_region {
    uint64_t base, number_of_pages;
    uint8_t should_map;
    uint8_t reserved[7];
};

struct hc_create_domain_ex_block {
    uint32_t domain_type, reserved;
    uint64_t flags;
    uint8_t allocator_present;
    uint8_t out_present;
    uint8_t reserved2[2];
    uint32_t allocator_type, address_width, region_count;
    uint64_t regions;         /* guest-physical address of region_count hc_reserved_region, in list order */
    uint64_t domain;          /* out */
};

struct hc_attach_device_ex_block {
    uint64_t domain, device;
};

struct hc_device_handle_block { /* DetachDeviceEx, DeleteDevice */
    uint64_t device;
};

struct hc_map_logical_ex_block {
    uint64_t domain;
    uint32_t permissions;
    uint32_t out_present;
    struct hc_phys phys;
    struct hc_opt_u64 explicit_address, min_address, max_address;
    uint64_t logical_address; /* out */
};

struct hc_fault_reporting_ex_block {
    uint64_t device;
    uint32_t input_mapping_id_base;
    uint8_t enable, config_present;
    uint8_t reserved[2];
};

struct hc_query_domain_types_block {
    uint64_t device;
    uint32_t out_present;
    uint32_t available;       /* out */
};

struct hc_state_change_block { /* Register and Unregister; the first call of a
                                * registration (S2) arrives as a report, by HC_POLL */
    uint64_t device;
    uint64_t cookie;          /* the guest's name for its callback (0 means NULL) */
    uint32_t fields_present, fields; /* register: StateFields */
};

struct hc_reserve_block {
    uint64_t domain;
    uint64_t size;
    struct hc_opt_u64 explicit_address, min_address, max_address;
    uint32_t out_present, reserved;
    uint64_t token;           /* out */
    uint64_t token_base, token_size; /* out: the token's public fields */
};

struct hc_token_block {       /* FreeReservedLogicalAddressRange */
    uint64_t token;
};

struct hc_map_reserved_block {
    uint64_t token;           /* 0: NULL */
    uint64_t offset;
    uint32_t permissions;
    uint32_t segment_present;
    struct hc_phys phys;
    uint64_t segment_offset, segment_size; /* out */
};

struct hc_unmap_reserved_block {
    uint32_t segment_present, reserved;
    uint64_t token;           /* the segment's OwningToken */
    uint64_t segment_offset, segment_size; /* in, and out (zero once unmapped) */
};

struct hc_create_device_block {
    struct hc_device device;
    uint8_t config_present;
    uint8_t out_present;
    uint8_t reserved[6];
    uint64_t dma_device;      /* out */
};

/* Reports waiting for the guest: faults of devices with reporting on, and state changes of
 * devices with a callback. The hypervisor queues them as they happen (faults are drained on
 * every exit and by this call) and this call moves up to capacity of them to the guest. */
enum hc_report_kind { HC_REPORT_FAULT = 1, HC_REPORT_STATE_CHANGE = 2 };

#define HC_FAULT_ADDRESS_VALID (1u << 0) /* hc_report.flags, for a fault */
#define HC_FAULT_WRITE (1u << 1)         /* the access was a write */
#define HC_FAULT_ARM64 (1u << 2)         /* FAULT_INFORMATION's Arm64 arm (else X64) */
struct hc_report {
    uint32_t kind;
    uint32_t available;       /* state change: AvailableDomainTypes; fault: its FAULT_INFORMATION Type */
    uint64_t cookie;          /* from the registration */
    uint64_t domain;          /* fault: the device's domain handle */
    uint64_t fault_address;   /* fault: page address */
    uint64_t iommu_base;
    uint32_t pci_segment;
    uint32_t flags;           /* state change: PresentFields; fault: HC_FAULT_* */
    uint16_t segment;         /* the PCI function concerned */
    uint8_t bus, device, function;
    uint8_t reserved[3];
    uint32_t input_mapping_id; /* fault, ARM64: the stream ID */
    uint32_t reserved2;
};

struct hc_poll_block {
    uint64_t buffer;          /* guest-physical address of capacity hc_report */
    uint32_t capacity;        /* at most HC_MAX_POLL */
    uint32_t count;           /* out: reports written */
    uint32_t pending;         /* out: reports still waiting */
    uint32_t lost;            /* out: reports dropped since the last poll (queue full) */
};

struct hc_stats_block {        /* out */
    uint32_t domains, devices, tokens, callbacks, mapped_segments;
    uint32_t table_pages;      /* page-table pages of the live DDI domains */
    uint32_t pool_in_use, pool_pages; /* the reserved region's page pool */
    uint32_t reports_queued, reports_lost;
    uint32_t faults_recorded;  /* fault records the hypervisor took from the units */
    uint32_t fault_overflows;  /* times a unit said faults were lost (one record, FSTS.PFO) */
    uint64_t calls, refused;   /* hypercalls so far, and those refused before any routine */
};

enum hc_inject_kind {
    HC_INJECT_POOL_FAIL = 1, /* value K: the table pool fails its K-th allocation from now */
    HC_INJECT_DMA_GUARD = 2, /* value 0 or 1: the DMA-protection policy (PassThrough withdrawn) */
    HC_INJECT_INVALIDATION_TIMEOUT = 3, /* value N (1..16): the next N invalidation waits time out */
};

struct hc_inject_block {
    uint32_t kind, reserved;
    uint64_t value;
};

/* HC_AUDIT: the host checks, and prints on its own channel (the guest cannot write it):
 * whether the region's secret was leaked (claimed_secret is what the guest read where the
 * secret lives; 0 when it read nothing), the canary page beside it and the hypervisor's
 * code are unchanged, every IOMMU unit still translates with the hypervisor's tables, and
 * every CPU made an exit (is still a guest) since the previous audit. */
#define HC_AUDIT_NAME_BYTES 24u
struct hc_audit_block {
    char name[HC_AUDIT_NAME_BYTES];  /* what the guest just tried: printed, [a-z0-9-] only */
    uint64_t claimed_secret;
    uint32_t intact;                 /* out: HC_AUDIT_* bits, all set when nothing broke */
    uint32_t sequence;               /* out: this audit's number, from 1 */
};
#define HC_AUDIT_SECRET_KEPT (1u << 0)
#define HC_AUDIT_CANARY (1u << 1)
#define HC_AUDIT_CODE (1u << 2)
#define HC_AUDIT_IOMMU (1u << 3)
#define HC_AUDIT_CPUS (1u << 4)
#define HC_AUDIT_ALL 0x1Fu

struct hc_guest_exit_block {
    uint64_t status;                 /* the payload's EFI_STATUS */
};

/* Every block is a whole number of 8-byte words and 8-byte aligned (the ABI requires the
 * alignment), so the sizes are the same for any compiler of either side. */
_Static_assert(_Alignof(struct hc_version_block) == 8 && sizeof(struct hc_version_block) % 8 == 0, "hc_version_block");
_Static_assert(_Alignof(struct hc_get_interface_block) == 8 && sizeof(struct hc_get_interface_block) % 8 == 0, "hc_get_interface_block");
_Static_assert(_Alignof(struct hc_create_domain_block) == 8 && sizeof(struct hc_create_domain_block) % 8 == 0, "hc_create_domain_block");
_Static_assert(_Alignof(struct hc_domain_block) == 8 && sizeof(struct hc_domain_block) % 8 == 0, "hc_domain_block");
_Static_assert(_Alignof(struct hc_attach_device_block) == 8 && sizeof(struct hc_attach_device_block) % 8 == 0, "hc_attach_device_block");
_Static_assert(_Alignof(struct hc_detach_device_block) == 8 && sizeof(struct hc_detach_device_block) % 8 == 0, "hc_detach_device_block");
_Static_assert(_Alignof(struct hc_flush_va_list_block) == 8 && sizeof(struct hc_flush_va_list_block) % 8 == 0, "hc_flush_va_list_block");
_Static_assert(_Alignof(struct hc_query_input_mappings_block) == 8 && sizeof(struct hc_query_input_mappings_block) % 8 == 0, "hc_query_input_mappings_block");
_Static_assert(_Alignof(struct hc_map_logical_block) == 8 && sizeof(struct hc_map_logical_block) % 8 == 0, "hc_map_logical_block");
_Static_assert(_Alignof(struct hc_unmap_logical_block) == 8 && sizeof(struct hc_unmap_logical_block) % 8 == 0, "hc_unmap_logical_block");
_Static_assert(_Alignof(struct hc_identity_block) == 8 && sizeof(struct hc_identity_block) % 8 == 0, "hc_identity_block");
_Static_assert(_Alignof(struct hc_fault_reporting_block) == 8 && sizeof(struct hc_fault_reporting_block) % 8 == 0, "hc_fault_reporting_block");
_Static_assert(_Alignof(struct hc_configure_domain_block) == 8 && sizeof(struct hc_configure_domain_block) % 8 == 0, "hc_configure_domain_block");
_Static_assert(_Alignof(struct hc_create_domain_ex_block) == 8 && sizeof(struct hc_create_domain_ex_block) % 8 == 0, "hc_create_domain_ex_block");
_Static_assert(_Alignof(struct hc_attach_device_ex_block) == 8 && sizeof(struct hc_attach_device_ex_block) % 8 == 0, "hc_attach_device_ex_block");
_Static_assert(_Alignof(struct hc_device_handle_block) == 8 && sizeof(struct hc_device_handle_block) % 8 == 0, "hc_device_handle_block");
_Static_assert(_Alignof(struct hc_map_logical_ex_block) == 8 && sizeof(struct hc_map_logical_ex_block) % 8 == 0, "hc_map_logical_ex_block");
_Static_assert(_Alignof(struct hc_fault_reporting_ex_block) == 8 && sizeof(struct hc_fault_reporting_ex_block) % 8 == 0, "hc_fault_reporting_ex_block");
_Static_assert(_Alignof(struct hc_query_domain_types_block) == 8 && sizeof(struct hc_query_domain_types_block) % 8 == 0, "hc_query_domain_types_block");
_Static_assert(_Alignof(struct hc_state_change_block) == 8 && sizeof(struct hc_state_change_block) % 8 == 0, "hc_state_change_block");
_Static_assert(_Alignof(struct hc_reserve_block) == 8 && sizeof(struct hc_reserve_block) % 8 == 0, "hc_reserve_block");
_Static_assert(_Alignof(struct hc_token_block) == 8 && sizeof(struct hc_token_block) % 8 == 0, "hc_token_block");
_Static_assert(_Alignof(struct hc_map_reserved_block) == 8 && sizeof(struct hc_map_reserved_block) % 8 == 0, "hc_map_reserved_block");
_Static_assert(_Alignof(struct hc_unmap_reserved_block) == 8 && sizeof(struct hc_unmap_reserved_block) % 8 == 0, "hc_unmap_reserved_block");
_Static_assert(_Alignof(struct hc_create_device_block) == 8 && sizeof(struct hc_create_device_block) % 8 == 0, "hc_create_device_block");
_Static_assert(_Alignof(struct hc_poll_block) == 8 && sizeof(struct hc_poll_block) % 8 == 0, "hc_poll_block");
_Static_assert(_Alignof(struct hc_audit_block) == 8 && sizeof(struct hc_audit_block) == 40, "hc_audit_block");
_Static_assert(sizeof(struct hc_guest_exit_block) == 8, "hc_guest_exit_block");
_Static_assert(sizeof(struct hc_device) == 16, "hc_device");
_Static_assert(sizeof(struct hc_phys) == 32, "hc_phys");
_Static_assert(sizeof(struct hc_report) == 64, "hc_report");
_Static_assert(sizeof(struct hc_map_logical_ex_block) == 104, "hc_map_logical_ex_block");
_Static_assert(sizeof(struct hc_create_domain_ex_block) == 48, "hc_create_domain_ex_block");
_Static_assert(sizeof(struct hc_reserve_block) == 96, "hc_reserve_block");

/* Every call and its block, in one table: the server's dispatch (ddi/hc_server.c, which
 * serves call X with its function call_X) and the guest shim's typed calls (hc_X in
 * ddi/shim.c) are both made from it, so a call cannot go out with another call's block.
 * X(ID, name, block structure). */
#define HC_CALL_TABLE(X) \
    X(HC_VERSION, version, hc_version_block)                                             \
    X(HC_GET_INTERFACE, get_interface, hc_get_interface_block)                           \
    X(HC_CREATE_DOMAIN, create_domain, hc_create_domain_block)                           \
    X(HC_DELETE_DOMAIN, delete_domain, hc_domain_block)                                  \
    X(HC_ATTACH_DEVICE, attach_device, hc_attach_device_block)                           \
    X(HC_DETACH_DEVICE, detach_device, hc_detach_device_block)                           \
    X(HC_FLUSH_DOMAIN, flush_domain, hc_domain_block)                                    \
    X(HC_FLUSH_DOMAIN_VA_LIST, flush_va_list, hc_flush_va_list_block)                    \
    X(HC_QUERY_INPUT_MAPPINGS, query_input_mappings, hc_query_input_mappings_block)      \
    X(HC_MAP_LOGICAL_RANGE, map_logical, hc_map_logical_block)                           \
    X(HC_UNMAP_LOGICAL_RANGE, unmap_logical, hc_unmap_logical_block)                     \
    X(HC_MAP_IDENTITY_RANGE, map_identity, hc_identity_block)                            \
    X(HC_UNMAP_IDENTITY_RANGE, unmap_identity, hc_identity_block)                        \
    X(HC_SET_DEVICE_FAULT_REPORTING, fault_reporting, hc_fault_reporting_block)          \
    X(HC_CONFIGURE_DOMAIN, configure_domain, hc_configure_domain_block)                  \
    X(HC_CREATE_DOMAIN_EX, create_domain_ex, hc_create_domain_ex_block)                  \
    X(HC_ATTACH_DEVICE_EX, attach_device_ex, hc_attach_device_ex_block)                  \
    X(HC_DETACH_DEVICE_EX, detach_device_ex, hc_device_handle_block)                     \
    X(HC_MAP_LOGICAL_RANGE_EX, map_logical_ex, hc_map_logical_ex_block)                  \
    X(HC_MAP_IDENTITY_RANGE_EX, map_identity_ex, hc_identity_block)                      \
    X(HC_UNMAP_IDENTITY_RANGE_EX, unmap_identity_ex, hc_identity_block)                  \
    X(HC_SET_DEVICE_FAULT_REPORTING_EX, fault_reporting_ex, hc_fault_reporting_ex_block) \
    X(HC_QUERY_AVAILABLE_DOMAIN_TYPES, query_domain_types, hc_query_domain_types_block)  \
    X(HC_REGISTER_STATE_CHANGE, register_state_change, hc_state_change_block)            \
    X(HC_UNREGISTER_STATE_CHANGE, unregister_state_change, hc_state_change_block)        \
    X(HC_RESERVE_LOGICAL_RANGE, reserve, hc_reserve_block)                               \
    X(HC_FREE_RESERVED_LOGICAL_RANGE, free_reserved, hc_token_block)                     \
    X(HC_MAP_RESERVED_LOGICAL_RANGE, map_reserved, hc_map_reserved_block)                \
    X(HC_UNMAP_RESERVED_LOGICAL_RANGE, unmap_reserved, hc_unmap_reserved_block)          \
    X(HC_CREATE_DEVICE, create_device, hc_create_device_block)                           \
    X(HC_DELETE_DEVICE, delete_device, hc_device_handle_block)                           \
    X(HC_POLL, poll, hc_poll_block)                                                      \
    X(HC_STATS, stats, hc_stats_block)                                                   \
    X(HC_INJECT, inject, hc_inject_block)                                                \
    X(HC_AUDIT, audit, hc_audit_block)                                                   \
    X(HC_GUEST_EXIT, guest_exit, hc_guest_exit_block)

#endif
