/* What the provider's parts share: its state, its object types and the helpers one part
 * calls in another. The parts are the files of ddi/provider/, one per section of the wdm
 * interface (handles, policy, domains and devices, maps, tokens, events, the interface
 * tables); nothing outside ddi/provider/ includes this. The interface itself is
 * ddi/include/ddi/provider.h; the design (handles, locking) is at the top of handles.c. */
#ifndef DDI_PROVIDER_INTERNAL_H
#define DDI_PROVIDER_INTERNAL_H

#include "ddi/provider.h"
#include "ddi/interface_tables.h"
#include "iommu/domain.h"
#include "iommu/iova.h"
#include "iommu/lock.h"
#include "iommu/ranges.h"
#include "iommu/slpt.h"

#define ALLOCATOR_BYTES (32u << 10) /* per domain: 768 live allocations, 512 free blocks */
#define HANDLE_TAG_SHIFT 48
#define TAG_DOMAIN 0xd0d0ull
#define TAG_DEVICE 0xde71ull
#define TAG_TOKEN 0x70c3ull


enum domain_kind {
    KIND_V1_OS_MANAGED,     /* CreateDomain(TRUE): like Translate */
    KIND_V1_CALLER_MANAGED, /* CreateDomain(FALSE): can never be configured here, blocks DMA */
    KIND_TRANSLATE,
    KIND_PASSTHROUGH,
};

struct ddi_domain {
    bool in_use;
    uint16_t generation;
    enum domain_kind kind;
    unsigned busy;                /* routines working on it right now */
    unsigned devices;             /* attached */
    unsigned tokens;              /* live */
    bool has_allocator;
    struct iova_allocator iova;
    struct iommu_domain core;     /* tables (caller-managed: empty, so every DMA faults) */
    /* Held by the routines that decide which logical addresses a map or unmap may touch
     * (explicit and identity maps, unmaps, reserving and freeing tokens), so that "no token
     * covers this range" and the change that relies on it are one step. Ranks above the
     * domain core's lock; the provider lock is taken inside it. */
    struct iommu_lock layout_lock;
};

struct ddi_device {
    bool in_use;
    uint16_t generation;
    bool from_v1;                 /* made by a V1 attach: no handle was given out */
    uint16_t segment, sid;
    unsigned unit;
    int domain;                   /* index, or -1 */
    PIOMMU_INTERFACE_STATE_CHANGE_CALLBACK callback;
    PVOID callback_context;
    ULONG watched;
    ULONG last_types;             /* the mask callbacks were last told about */
    bool fault_reporting;
    DEVICE_FAULT_CONFIGURATION fault_config;
    PDEVICE_OBJECT pdo;           /* the caller's PDO when reporting was turned on (ARM64 reports) */
};

/* A segment mapped into a token, in pages from the token's base. */
struct ddi_segment {
    uint32_t first, pages;
};

struct ddi_token {
    IOMMU_DMA_LOGICAL_ADDRESS_TOKEN pub; /* first: callers read it */
    bool in_use;
    uint16_t generation;          /* for ddi_token_id */
    bool from_allocator;
    int domain;
    unsigned segments;            /* mapped now: seg[0 .. segments) */
    struct ddi_segment seg[DDI_MAX_TOKEN_SEGMENTS];
};

/* Token slots: twice as many as live tokens, reused in the order they were freed (below). */
#define TOKEN_SLOTS (2 * DDI_MAX_TOKENS)

/* The provider's state: the platform, the object tables, the token slots. */
struct provider {
    struct iommu_lock lock;
    bool ready;
    bool dma_guard;
    struct ddi_platform plat;
    unsigned levels;
    uint8_t superpages;
    const struct pt_format *table_format;     /* the units' entries (NULL: VT-d second-level) */
    const struct platform *tables_write_back; /* NULL: every unit snoops its table walks */
    uint16_t max_domain_id;
    struct ddi_domain domain[DDI_MAX_DOMAINS];
    struct ddi_device device[DDI_MAX_DEVICES];
    /* A token handle is a pointer callers read, so it cannot carry a generation. There are
     * TOKEN_SLOTS slots for at most DDI_MAX_TOKENS live tokens, and free slots are queued in
     * the order they were freed (free_slot, a ring of free_count indices from free_head).
     * When a token is freed at least TOKEN_SLOTS - DDI_MAX_TOKENS = DDI_MAX_TOKENS other
     * slots are free, all queued ahead of it, so its pointer is refused for the next
     * DDI_MAX_TOKENS successful reservations at least, however many tokens are live. */
    struct ddi_token token[TOKEN_SLOTS];
    uint16_t free_slot[TOKEN_SLOTS];
    unsigned free_head, free_count;
    unsigned live_tokens;
    uint64_t allocator_mem[DDI_MAX_DOMAINS][ALLOCATOR_BYTES / 8];
    /* The platform's guest RAM in whole pages, sorted and merged (set at init, then only
     * read), so that memory that is RAM throughout lies in exactly one range. */
    struct addr_range ram[DDI_MAX_GUEST_RAM_RANGES];
    unsigned ram_count;
};
extern struct provider provider;

/* What a caller asked to map: one contiguous range, or a list of page frames. */
struct phys {
    bool contiguous;
    uint64_t base;          /* contiguous */
    const uint64_t *frames; /* otherwise */
    uint64_t pages;
};

/* handles.c */
bool pdo_location(const DEVICE_OBJECT *pdo, uint16_t *segment, uint16_t *sid);
void *make_handle(uint64_t tag, uint16_t generation, unsigned index);
struct ddi_domain *domain_of(PIOMMU_DMA_DOMAIN h);
struct ddi_device *device_of(PIOMMU_DMA_DEVICE h);
struct ddi_token *token_of(const void *p);
unsigned domain_index(const struct ddi_domain *d);
uint16_t domain_id(const struct ddi_domain *d);
struct ddi_domain *domain_get(PIOMMU_DMA_DOMAIN h);
void domain_put(struct ddi_domain *d);

/* policy.c */
ULONG available_types(const struct ddi_device *dev);
ULONG domain_type_bit(const struct ddi_domain *d);
bool may_map(uint64_t pa, uint64_t size);
bool os_managed(const struct ddi_domain *d);
bool perm_valid(ULONG perm);
bool phys_from_mdl(const MDL *mdl, struct phys *out);
bool phys_from_descriptor(const IOMMU_MAP_PHYSICAL_ADDRESS *d, struct phys *out);
bool phys_may_map(const struct phys *ph);
NTSTATUS status_of(enum iommu_status s);
bool any_mapped(const struct ddi_domain *d, uint64_t base, uint64_t size);
bool range_has_token(const struct ddi_domain *d, uint64_t base, uint64_t size);
bool phys_has_token(const struct ddi_domain *d, const struct phys *ph);
enum iommu_status map_phys(struct ddi_domain *d, uint64_t iova, const struct phys *ph, ULONG perm);
enum iommu_status map_identity(struct ddi_domain *d, const struct phys *ph, ULONG perm);
bool phys_maps_other(const struct ddi_domain *d, const struct phys *ph);
void unmap_identity(struct ddi_domain *d, const struct phys *ph);

/* domains.c */
void destroy_domain(struct ddi_domain *d);
NTSTATUS NTAPI provider_CreateDomain(BOOLEAN OsManagedPageTable, PIOMMU_DMA_DOMAIN *DomainOut);
NTSTATUS NTAPI provider_CreateDomainEx(IOMMU_DMA_DOMAIN_TYPE DomainType, IOMMU_DMA_DOMAIN_CREATION_FLAGS Flags,
                                       PIOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG LogicalAllocatorConfig,
                                       PIOMMU_DMA_RESERVED_REGION ReservedRegions, PIOMMU_DMA_DOMAIN *DomainOut);
NTSTATUS NTAPI provider_DeleteDomain(PIOMMU_DMA_DOMAIN Domain);
struct ddi_device *device_at(uint16_t segment, uint16_t sid);
NTSTATUS NTAPI provider_CreateDevice(PDEVICE_OBJECT DeviceObject, PIOMMU_DEVICE_CREATION_CONFIGURATION DeviceConfig,
                                     PIOMMU_DMA_DEVICE *DmaDeviceOut);
NTSTATUS NTAPI provider_DeleteDevice(PIOMMU_DMA_DEVICE DmaDevice);
void detach_locked(struct ddi_device *dev);
NTSTATUS NTAPI provider_AttachDeviceEx(PIOMMU_DMA_DOMAIN Domain, PIOMMU_DMA_DEVICE DmaDevice);
NTSTATUS NTAPI provider_DetachDeviceEx(PIOMMU_DMA_DEVICE DmaDevice);
NTSTATUS NTAPI provider_AttachDevice(PIOMMU_DMA_DOMAIN Domain, PDEVICE_OBJECT PhysicalDeviceObject,
                                     ULONG InputMappingIdBase, ULONG MappingCount);
NTSTATUS NTAPI provider_DetachDevice(PIOMMU_DMA_DOMAIN Domain, PDEVICE_OBJECT PhysicalDeviceObject, ULONG InputMappingId);
VOID NTAPI provider_QueryAvailableDomainTypes(PIOMMU_DMA_DEVICE DmaDevice, PULONG AvailableDomains);
NTSTATUS NTAPI provider_RegisterInterfaceStateChangeCallback(PIOMMU_INTERFACE_STATE_CHANGE_CALLBACK StateChangeCallback,
                                                             PVOID Context, PIOMMU_DMA_DEVICE DmaDevice,
                                                             PIOMMU_INTERFACE_STATE_CHANGE_FIELDS StateFields);
NTSTATUS NTAPI provider_UnregisterInterfaceStateChangeCallback(PIOMMU_INTERFACE_STATE_CHANGE_CALLBACK StateChangeCallback,
                                                               PIOMMU_DMA_DEVICE DmaDevice);

/* maps.c */
NTSTATUS NTAPI provider_MapLogicalRange(PIOMMU_DMA_DOMAIN Domain, ULONG Permissions, PMDL Mdl, ULONGLONG LogicalAddress);
NTSTATUS NTAPI provider_MapLogicalRangeEx(PIOMMU_DMA_DOMAIN Domain, ULONG Permissions,
                                          PIOMMU_MAP_PHYSICAL_ADDRESS PhysicalAddressToMap,
                                          PIOMMU_DMA_LOGICAL_ADDRESS ExplicitLogicalAddress,
                                          PIOMMU_DMA_LOGICAL_ADDRESS MinLogicalAddress,
                                          PIOMMU_DMA_LOGICAL_ADDRESS MaxLogicalAddress,
                                          PIOMMU_DMA_LOGICAL_ADDRESS LogicalAddressOut);
NTSTATUS NTAPI provider_UnmapLogicalRange(PIOMMU_DMA_DOMAIN Domain, ULONGLONG LogicalAddress, ULONGLONG NumberOfPages);
NTSTATUS NTAPI provider_MapIdentityRange(PIOMMU_DMA_DOMAIN Domain, ULONG Permissions, PMDL Mdl);
NTSTATUS NTAPI provider_UnmapIdentityRange(PIOMMU_DMA_DOMAIN Domain, PMDL Mdl);
NTSTATUS NTAPI provider_MapIdentityRangeEx(PIOMMU_DMA_DOMAIN Domain, ULONG Permissions,
                                           PIOMMU_MAP_PHYSICAL_ADDRESS PhysicalAddressToMap);
NTSTATUS NTAPI provider_UnmapIdentityRangeEx(PIOMMU_DMA_DOMAIN Domain, PIOMMU_MAP_PHYSICAL_ADDRESS MappedPhysicalAddress);

/* tokens.c */
NTSTATUS NTAPI provider_ReserveLogicalAddressRange(PIOMMU_DMA_DOMAIN Domain, SIZE_T Size,
                                                   PIOMMU_DMA_LOGICAL_ADDRESS ExplicitLogicalAddress,
                                                   PIOMMU_DMA_LOGICAL_ADDRESS MinLogicalAddress,
                                                   PIOMMU_DMA_LOGICAL_ADDRESS MaxLogicalAddress,
                                                   PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN *LogicalAddressToken);
NTSTATUS NTAPI provider_FreeReservedLogicalAddressRange(PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN LogicalAddressToken);
NTSTATUS NTAPI provider_MapReservedLogicalRange(PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN LogicalAddressToken, SIZE_T Offset,
                                                ULONG Permissions, PIOMMU_MAP_PHYSICAL_ADDRESS PhysicalAddressToMap,
                                                PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT MappedSegment);
NTSTATUS NTAPI provider_UnmapReservedLogicalRange(PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT MappedSegment);

/* events.c */
NTSTATUS NTAPI provider_ConfigureDomain(PIOMMU_DMA_DOMAIN Domain, PDOMAIN_CONFIGURATION Configuration);
NTSTATUS NTAPI provider_FlushDomain(PIOMMU_DMA_DOMAIN Domain);
NTSTATUS NTAPI provider_FlushDomainByVaList(PIOMMU_DMA_DOMAIN Domain, BOOLEAN LastLevel, ULONG Number, PVOID VaList);
NTSTATUS NTAPI provider_QueryInputMappings(PDEVICE_OBJECT PhysicalDeviceObject, PINPUT_MAPPING_ELEMENT Buffer,
                                           ULONG BufferLength, PULONG ReturnLength);
NTSTATUS NTAPI provider_SetDeviceFaultReportingEx(PIOMMU_DMA_DEVICE DmaDevice, ULONG InputMappingIdBase, BOOLEAN Enable,
                                                  PDEVICE_FAULT_CONFIGURATION FaultConfig);
NTSTATUS NTAPI provider_SetDeviceFaultReporting(PDEVICE_OBJECT PhysicalDeviceObject, ULONG InputMappingIdBase,
                                                BOOLEAN Enable, PDEVICE_FAULT_CONFIGURATION FaultConfig);

#endif
