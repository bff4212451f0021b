/* The wdm DMA IOMMU declarations (ddi/wdm_iommu.h) against the reference's x64 layout:
 * every size and offset it lists, the routine tables slot by slot, enum and status values,
 * and every routine type's parameter list and calling convention. These are compile-time
 * checks, so a wrong layout fails the build rather than a test run. At run time: the MDL
 * helpers, the page-span arithmetic, the PCI device object, bit-field placement, and the
 * registers an ms_abi call really uses. */
#include <string.h>

/* The iommu/ headers define PAGE_SIZE too; the DDI header must sit beside them. */
#include "iommu/page_pool.h"

#include "ddi/hypercall.h"
#include "ddi/wdm_iommu.h"
#include "test_util.h"

_Static_assert(sizeof(void *) == 8, "the layout checks are those of a 64-bit target");

#define ASSERT_SIZE(type, size) _Static_assert(sizeof(type) == (size), "sizeof(" #type ") == " #size)
/* A member: its offset and its type. */
#define ASSERT_MEMBER(type, member, mtype, offset)                                      \
    _Static_assert(offsetof(type, member) == (offset) &&                                \
                       _Generic(((type *)0)->member, mtype: 1, default: 0),             \
                   #type "." #member " is a " #mtype " at " #offset)
#define ASSERT_VALUE(name, value) _Static_assert((name) == (value), #name " == " #value)
/* A status code: an NTSTATUS with this bit pattern. */
#define ASSERT_STATUS(name, bits) \
    _Static_assert(_Generic(name, NTSTATUS: 1, default: 0) && (uint32_t)(name) == (bits), #name " == " #bits)

/* ---- Scalar types ---- */

ASSERT_SIZE(UCHAR, 1);
ASSERT_SIZE(BOOLEAN, 1);
ASSERT_SIZE(USHORT, 2);
ASSERT_SIZE(CSHORT, 2);
ASSERT_SIZE(ULONG, 4);
ASSERT_SIZE(LONG, 4);
ASSERT_SIZE(UINT32, 4);
ASSERT_SIZE(NTSTATUS, 4);
ASSERT_SIZE(ULONGLONG, 8);
ASSERT_SIZE(ULONG64, 8);
ASSERT_SIZE(LONGLONG, 8);
ASSERT_SIZE(SIZE_T, 8);
ASSERT_SIZE(ULONG_PTR, 8);
ASSERT_SIZE(PFN_NUMBER, 8);
ASSERT_SIZE(PVOID, 8);
_Static_assert((NTSTATUS)-1 < 0 && (LONG)-1 < 0 && (CSHORT)-1 < 0 && (LONGLONG)-1 < 0, "signed types");
_Static_assert((ULONG)-1 > 0 && (USHORT)-1 > 0 && (UCHAR)-1 > 0 && (BOOLEAN)-1 > 0 && (SIZE_T)-1 > 0,
               "unsigned types");

ASSERT_SIZE(LARGE_INTEGER, 8);
ASSERT_SIZE(PHYSICAL_ADDRESS, 8);
_Static_assert(_Alignof(PHYSICAL_ADDRESS) == 8, "PHYSICAL_ADDRESS is 8-byte aligned");
ASSERT_MEMBER(LARGE_INTEGER, LowPart, ULONG, 0);
ASSERT_MEMBER(LARGE_INTEGER, HighPart, LONG, 4);
ASSERT_MEMBER(LARGE_INTEGER, u.LowPart, ULONG, 0);
ASSERT_MEMBER(LARGE_INTEGER, u.HighPart, LONG, 4);
ASSERT_MEMBER(LARGE_INTEGER, QuadPart, LONGLONG, 0);
ASSERT_SIZE(LIST_ENTRY, 0x10);
ASSERT_MEMBER(LIST_ENTRY, Flink, PLIST_ENTRY, 0);
ASSERT_MEMBER(LIST_ENTRY, Blink, PLIST_ENTRY, 8);

/* Enumerations are int-sized, as MSVC makes them. */
ASSERT_SIZE(IOMMU_DMA_DOMAIN_TYPE, 4);
ASSERT_SIZE(IOMMU_DEVICE_CREATION_CONFIGURATION_TYPE, 4);
ASSERT_SIZE(IOMMU_PASID_CONFIGURATION_TYPE, 4);
ASSERT_SIZE(IOMMU_MAP_PHYSICAL_ADDRESS_TYPE, 4);
ASSERT_SIZE(IOMMU_DMA_LOGICAL_ALLOCATOR_TYPE, 4);
ASSERT_SIZE(FAULT_INFORMATION_ARCH, 4);
ASSERT_SIZE(FAULT_INFORMATION_ARM64_TYPE, 4);
ASSERT_SIZE(DOMAIN_CONFIGURATION_ARCH, 4);

/* ---- MDL and device object ---- */

ASSERT_SIZE(MDL, 0x30);
ASSERT_MEMBER(MDL, Next, PMDL, 0x00);
ASSERT_MEMBER(MDL, Size, CSHORT, 0x08);
ASSERT_MEMBER(MDL, MdlFlags, CSHORT, 0x0a);
ASSERT_MEMBER(MDL, Process, struct _EPROCESS *, 0x10);
ASSERT_MEMBER(MDL, MappedSystemVa, PVOID, 0x18);
ASSERT_MEMBER(MDL, StartVa, PVOID, 0x20);
ASSERT_MEMBER(MDL, ByteCount, ULONG, 0x28);
ASSERT_MEMBER(MDL, ByteOffset, ULONG, 0x2c);
_Static_assert(sizeof(MDL) % _Alignof(PFN_NUMBER) == 0, "the page array starts right after the MDL");

ASSERT_SIZE(DEVICE_OBJECT, 12);
ASSERT_MEMBER(DEVICE_OBJECT, Type, ULONG, 0);
ASSERT_MEMBER(DEVICE_OBJECT, Segment, USHORT, 4);
ASSERT_MEMBER(DEVICE_OBJECT, Bus, UCHAR, 6);
ASSERT_MEMBER(DEVICE_OBJECT, Device, UCHAR, 7);
ASSERT_MEMBER(DEVICE_OBJECT, Function, UCHAR, 8);
_Static_assert(offsetof(DEVICE_OBJECT, Reserved) == 9 && sizeof(((DEVICE_OBJECT *)0)->Reserved) == 3,
               "DEVICE_OBJECT.Reserved is 3 bytes at 9");

/* ---- Constants ---- */

ASSERT_VALUE(PAGE_SIZE, 4096);
ASSERT_VALUE(PAGE_SHIFT, 12);
ASSERT_VALUE(IOMMU_ACCESS_NONE, 0x00);
ASSERT_VALUE(IOMMU_ACCESS_READ, 0x01);
ASSERT_VALUE(IOMMU_ACCESS_WRITE, 0x02);
ASSERT_VALUE(DMA_IOMMU_INTERFACE_VERSION_1, 1);
ASSERT_VALUE(DMA_IOMMU_INTERFACE_VERSION, 1);
ASSERT_VALUE(DMA_IOMMU_INTERFACE_EX_VERSION_1, 1);
ASSERT_VALUE(DMA_IOMMU_INTERFACE_EX_VERSION_2, 2);
ASSERT_VALUE(DMA_IOMMU_INTERFACE_EX_VERSION_3, 3);
ASSERT_VALUE(DMA_IOMMU_INTERFACE_EX_VERSION_MIN, 1);
ASSERT_VALUE(DMA_IOMMU_INTERFACE_EX_VERSION_MAX, 3);
ASSERT_VALUE(DMA_IOMMU_INTERFACE_EX_VERSION, 3);
_Static_assert(_Generic(DMA_IOMMU_INTERFACE_VERSION_1, ULONG: 1, default: 0) &&
                   _Generic(DMA_IOMMU_INTERFACE_EX_VERSION, ULONG: 1, default: 0),
               "version numbers are ULONGs");
ASSERT_VALUE(FACILITY_HYPERVISOR, 0x35);
ASSERT_VALUE(DMA_IOMMU_INTERFACE_EX_V1_SIZE, 0x78);
ASSERT_VALUE(DMA_IOMMU_INTERFACE_EX_V2_SIZE, 0xc0);
ASSERT_VALUE(DMA_IOMMU_INTERFACE_EX_V3_SIZE, 0xe8);
ASSERT_VALUE(IOMMU_DMA_DEVICE_INFORMATION_SIZE, 3);
ASSERT_VALUE(IOMMU_DMA_DEVICE_INFORMATION_SIZE_MIN, 3);

/* ---- Status codes ---- */

ASSERT_STATUS(STATUS_SUCCESS, 0x00000000u);
ASSERT_STATUS(STATUS_UNSUCCESSFUL, 0xC0000001u);
ASSERT_STATUS(STATUS_NOT_IMPLEMENTED, 0xC0000002u);
ASSERT_STATUS(STATUS_INVALID_PARAMETER, 0xC000000Du);
ASSERT_STATUS(STATUS_INVALID_PARAMETER_1, 0xC00000EFu);
ASSERT_STATUS(STATUS_INVALID_PARAMETER_2, 0xC00000F0u);
ASSERT_STATUS(STATUS_INVALID_PARAMETER_3, 0xC00000F1u);
ASSERT_STATUS(STATUS_INVALID_PARAMETER_4, 0xC00000F2u);
ASSERT_STATUS(STATUS_INVALID_PARAMETER_5, 0xC00000F3u);
ASSERT_STATUS(STATUS_INVALID_PARAMETER_6, 0xC00000F4u);
ASSERT_STATUS(STATUS_INVALID_PARAMETER_7, 0xC00000F5u);
ASSERT_STATUS(STATUS_INVALID_PARAMETER_MIX, 0xC0000030u);
ASSERT_STATUS(STATUS_INSUFFICIENT_RESOURCES, 0xC000009Au);
ASSERT_STATUS(STATUS_NOT_SUPPORTED, 0xC00000BBu);
ASSERT_STATUS(STATUS_ACCESS_DENIED, 0xC0000022u);
ASSERT_STATUS(STATUS_BUFFER_TOO_SMALL, 0xC0000023u);
ASSERT_STATUS(STATUS_NOT_FOUND, 0xC0000225u);
ASSERT_STATUS(STATUS_RESOURCE_IN_USE, 0xC0000708u);
ASSERT_STATUS(STATUS_NONE_MAPPED, 0xC0000073u);
_Static_assert(NT_SUCCESS(STATUS_SUCCESS) && NT_SUCCESS(0x7FFFFFFF) && !NT_SUCCESS(STATUS_UNSUCCESSFUL) &&
                   !NT_SUCCESS(STATUS_RESOURCE_IN_USE) && !NT_SUCCESS(0xC0350005u),
               "NT_SUCCESS is true for severities success and informational only");
#ifdef STATUS_IN_USE
#error "STATUS_IN_USE exists in no Windows header; the DDI returns STATUS_RESOURCE_IN_USE instead"
#endif

/* ---- Enumerations ---- */

ASSERT_VALUE(DomainTypeTranslate, 0);
ASSERT_VALUE(DomainTypePassThrough, 1);
ASSERT_VALUE(DomainTypeUnmanaged, 2);
ASSERT_VALUE(DomainTypeTranslateS1, 3);
ASSERT_VALUE(DomainTypeMax, 4);

ASSERT_VALUE(IommuDeviceCreationConfigTypeNone, 0);
ASSERT_VALUE(IommuDeviceCreationConfigTypeAcpi, 1);
ASSERT_VALUE(IommuDeviceCreationConfigTypeDeviceId, 2);
ASSERT_VALUE(IommuDeviceCreationConfigTypePasid, 3);
ASSERT_VALUE(IommuDeviceCreationConfigTypeMax, 4);

ASSERT_VALUE(PasidConfigTypeDefaultPasidOnly, 0);
ASSERT_VALUE(PasidConfigTypePasidTaggedDma, 1);
ASSERT_VALUE(PasidConfigTypeMax, 2);

ASSERT_VALUE(MapPhysicalAddressTypeMdl, 0);
ASSERT_VALUE(MapPhysicalAddressTypeContiguousRange, 1);
ASSERT_VALUE(MapPhysicalAddressTypePfn, 2);
ASSERT_VALUE(MapPhysicalAddressTypeMax, 3);

ASSERT_VALUE(IommuDmaLogicalAllocatorNone, 0);
ASSERT_VALUE(IommuDmaLogicalAllocatorBuddy, 1);
ASSERT_VALUE(IommuDmaLogicalAllocatorMax, 2);

ASSERT_VALUE(FaultInformationInvalid, 0);
ASSERT_VALUE(FaultInformationArm64, 1);
ASSERT_VALUE(FaultInformationX64, 2);

ASSERT_VALUE(UnsupportedUpstreamTransaction, 0);
ASSERT_VALUE(AddressSizeFault, 1);
ASSERT_VALUE(TlbMatchConflict, 2);
ASSERT_VALUE(ExternalFault, 3);
ASSERT_VALUE(PermissionFault, 4);
ASSERT_VALUE(AccessFlagFault, 5);
ASSERT_VALUE(TranslationFault, 6);
ASSERT_VALUE(MaxFaultType, 7);
_Static_assert(_Generic((FAULT_INFORMATION_X64_TYPE)0, FAULT_INFORMATION_ARM64_TYPE: 1, default: 0),
               "x64 faults use the Arm64 fault codes");

ASSERT_VALUE(DomainConfigurationArm64, 0);
ASSERT_VALUE(DomainConfigurationX64, 1);
ASSERT_VALUE(DomainConfigurationInvalid, 2);

/* ---- Structures (reference 2.4 and 4.11 L2) ---- */

ASSERT_SIZE(IOMMU_DMA_DOMAIN_CREATION_FLAGS, 8);
ASSERT_MEMBER(IOMMU_DMA_DOMAIN_CREATION_FLAGS, AsUlonglong, ULONGLONG, 0);

ASSERT_SIZE(IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG, 8);
ASSERT_MEMBER(IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG, LogicalAllocatorType, IOMMU_DMA_LOGICAL_ALLOCATOR_TYPE, 0);
ASSERT_MEMBER(IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG, BuddyAllocatorConfig.AddressWidth, ULONG, 4);

ASSERT_SIZE(IOMMU_DMA_RESERVED_REGION, 0x20);
ASSERT_MEMBER(IOMMU_DMA_RESERVED_REGION, RegionNext, PIOMMU_DMA_RESERVED_REGION, 0x00);
ASSERT_MEMBER(IOMMU_DMA_RESERVED_REGION, Base, IOMMU_DMA_LOGICAL_ADDRESS, 0x08);
ASSERT_MEMBER(IOMMU_DMA_RESERVED_REGION, NumberOfPages, SIZE_T, 0x10);
ASSERT_MEMBER(IOMMU_DMA_RESERVED_REGION, ShouldMap, BOOLEAN, 0x18);

ASSERT_SIZE(IOMMU_MAP_PHYSICAL_ADDRESS, 0x18);
ASSERT_MEMBER(IOMMU_MAP_PHYSICAL_ADDRESS, MapType, IOMMU_MAP_PHYSICAL_ADDRESS_TYPE, 0x00);
ASSERT_MEMBER(IOMMU_MAP_PHYSICAL_ADDRESS, Mdl.Mdl, PMDL, 0x08);
ASSERT_MEMBER(IOMMU_MAP_PHYSICAL_ADDRESS, ContiguousRange.Base, PHYSICAL_ADDRESS, 0x08);
ASSERT_MEMBER(IOMMU_MAP_PHYSICAL_ADDRESS, ContiguousRange.Size, SIZE_T, 0x10);
ASSERT_MEMBER(IOMMU_MAP_PHYSICAL_ADDRESS, PfnArray.PageFrame, PPFN_NUMBER, 0x08);
ASSERT_MEMBER(IOMMU_MAP_PHYSICAL_ADDRESS, PfnArray.NumberOfPages, SIZE_T, 0x10);

ASSERT_SIZE(IOMMU_DMA_LOGICAL_ADDRESS, 8);
ASSERT_SIZE(IOMMU_DMA_LOGICAL_ADDRESS_TOKEN, 0x10);
ASSERT_MEMBER(IOMMU_DMA_LOGICAL_ADDRESS_TOKEN, LogicalAddressBase, IOMMU_DMA_LOGICAL_ADDRESS, 0x00);
ASSERT_MEMBER(IOMMU_DMA_LOGICAL_ADDRESS_TOKEN, Size, SIZE_T, 0x08);

ASSERT_SIZE(IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT, 0x18);
ASSERT_MEMBER(IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT, OwningToken, PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN, 0x00);
ASSERT_MEMBER(IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT, Offset, SIZE_T, 0x08);
ASSERT_MEMBER(IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT, Size, SIZE_T, 0x10);

ASSERT_SIZE(IOMMU_INTERFACE_STATE_CHANGE_FIELDS, 4);
ASSERT_SIZE(IOMMU_INTERFACE_STATE_CHANGE, 8);
ASSERT_MEMBER(IOMMU_INTERFACE_STATE_CHANGE, PresentFields, IOMMU_INTERFACE_STATE_CHANGE_FIELDS, 0);
ASSERT_MEMBER(IOMMU_INTERFACE_STATE_CHANGE, AvailableDomainTypes, ULONG, 4);

ASSERT_SIZE(IOMMU_DEVICE_CREATION_CONFIGURATION_ACPI, 8);
ASSERT_MEMBER(IOMMU_DEVICE_CREATION_CONFIGURATION_ACPI, InputMappingBase, UINT32, 0);
ASSERT_MEMBER(IOMMU_DEVICE_CREATION_CONFIGURATION_ACPI, MappingsCount, UINT32, 4);

ASSERT_SIZE(IOMMU_DEVICE_CREATION_CONFIGURATION_PASID, 8);
ASSERT_MEMBER(IOMMU_DEVICE_CREATION_CONFIGURATION_PASID, ConfigType, IOMMU_PASID_CONFIGURATION_TYPE, 0);
ASSERT_MEMBER(IOMMU_DEVICE_CREATION_CONFIGURATION_PASID, SuppressPasidFaults, BOOLEAN, 4);

ASSERT_SIZE(IOMMU_DEVICE_CREATION_CONFIGURATION, 0x20);
ASSERT_MEMBER(IOMMU_DEVICE_CREATION_CONFIGURATION, NextConfiguration, LIST_ENTRY, 0x00);
ASSERT_MEMBER(IOMMU_DEVICE_CREATION_CONFIGURATION, ConfigType, IOMMU_DEVICE_CREATION_CONFIGURATION_TYPE, 0x10);
ASSERT_MEMBER(IOMMU_DEVICE_CREATION_CONFIGURATION, Acpi, IOMMU_DEVICE_CREATION_CONFIGURATION_ACPI, 0x18);
ASSERT_MEMBER(IOMMU_DEVICE_CREATION_CONFIGURATION, DeviceId, PVOID, 0x18);
ASSERT_MEMBER(IOMMU_DEVICE_CREATION_CONFIGURATION, Pasid, IOMMU_DEVICE_CREATION_CONFIGURATION_PASID, 0x18);

ASSERT_SIZE(IOMMU_DMA_DEVICE_INFORMATION, 3);
ASSERT_MEMBER(IOMMU_DMA_DEVICE_INFORMATION, DefaultPasidEnabled, BOOLEAN, 0);
ASSERT_MEMBER(IOMMU_DMA_DEVICE_INFORMATION, PasidTaggedDmaEnabled, BOOLEAN, 1);
ASSERT_MEMBER(IOMMU_DMA_DEVICE_INFORMATION, PasidFaultsSuppressed, BOOLEAN, 2);

ASSERT_SIZE(INPUT_MAPPING_ELEMENT, 4);

ASSERT_SIZE(DEVICE_FAULT_CONFIGURATION, 0x10);
ASSERT_MEMBER(DEVICE_FAULT_CONFIGURATION, FaultHandler, PIOMMU_DEVICE_FAULT_HANDLER, 0x00);
ASSERT_MEMBER(DEVICE_FAULT_CONFIGURATION, FaultContext, PVOID, 0x08);

ASSERT_SIZE(FAULT_INFORMATION_X64_FLAGS, 4);
ASSERT_SIZE(FAULT_INFORMATION_ARM64_FLAGS, 4);

ASSERT_SIZE(FAULT_INFORMATION_X64, 0x28);
ASSERT_MEMBER(FAULT_INFORMATION_X64, DomainHandle, PVOID, 0x00);
ASSERT_MEMBER(FAULT_INFORMATION_X64, FaultAddress, PVOID, 0x08);
ASSERT_MEMBER(FAULT_INFORMATION_X64, Flags, FAULT_INFORMATION_X64_FLAGS, 0x10);
ASSERT_MEMBER(FAULT_INFORMATION_X64, Type, FAULT_INFORMATION_X64_TYPE, 0x14);
ASSERT_MEMBER(FAULT_INFORMATION_X64, IommuBaseAddress, ULONG64, 0x18);
ASSERT_MEMBER(FAULT_INFORMATION_X64, PciSegment, ULONG, 0x20);

ASSERT_SIZE(FAULT_INFORMATION_ARM64, 0x30);
ASSERT_MEMBER(FAULT_INFORMATION_ARM64, DomainHandle, PVOID, 0x00);
ASSERT_MEMBER(FAULT_INFORMATION_ARM64, FaultAddress, PVOID, 0x08);
ASSERT_MEMBER(FAULT_INFORMATION_ARM64, PhysicalDeviceObject, PDEVICE_OBJECT, 0x10);
ASSERT_MEMBER(FAULT_INFORMATION_ARM64, InputMappingId, ULONG, 0x18);
ASSERT_MEMBER(FAULT_INFORMATION_ARM64, Flags, FAULT_INFORMATION_ARM64_FLAGS, 0x1c);
ASSERT_MEMBER(FAULT_INFORMATION_ARM64, Type, FAULT_INFORMATION_ARM64_TYPE, 0x20);
ASSERT_MEMBER(FAULT_INFORMATION_ARM64, IommuBaseAddress, ULONG64, 0x28);

ASSERT_SIZE(FAULT_INFORMATION, 0x38);
ASSERT_MEMBER(FAULT_INFORMATION, Type, FAULT_INFORMATION_ARCH, 0x00);
ASSERT_MEMBER(FAULT_INFORMATION, IsStage1, BOOLEAN, 0x04);
ASSERT_MEMBER(FAULT_INFORMATION, Arm64, FAULT_INFORMATION_ARM64, 0x08);
ASSERT_MEMBER(FAULT_INFORMATION, X64, FAULT_INFORMATION_X64, 0x08);

ASSERT_SIZE(DOMAIN_CONFIGURATION_ARM64, 0x20);
ASSERT_MEMBER(DOMAIN_CONFIGURATION_ARM64, Ttbr0, PHYSICAL_ADDRESS, 0x00);
ASSERT_MEMBER(DOMAIN_CONFIGURATION_ARM64, Ttbr1, PHYSICAL_ADDRESS, 0x08);
ASSERT_MEMBER(DOMAIN_CONFIGURATION_ARM64, Mair0, ULONG, 0x10);
ASSERT_MEMBER(DOMAIN_CONFIGURATION_ARM64, Mair1, ULONG, 0x14);
ASSERT_MEMBER(DOMAIN_CONFIGURATION_ARM64, InputSize0, UCHAR, 0x18);
ASSERT_MEMBER(DOMAIN_CONFIGURATION_ARM64, InputSize1, UCHAR, 0x19);
ASSERT_MEMBER(DOMAIN_CONFIGURATION_ARM64, CoherentTableWalks, BOOLEAN, 0x1a);
ASSERT_MEMBER(DOMAIN_CONFIGURATION_ARM64, TranslationEnabled, BOOLEAN, 0x1b);

ASSERT_SIZE(DOMAIN_CONFIGURATION_X64, 0x10);
ASSERT_MEMBER(DOMAIN_CONFIGURATION_X64, FirstLevelPageTableRoot, PHYSICAL_ADDRESS, 0x00);
ASSERT_MEMBER(DOMAIN_CONFIGURATION_X64, TranslationEnabled, BOOLEAN, 0x08);

ASSERT_SIZE(DOMAIN_CONFIGURATION, 0x28);
ASSERT_MEMBER(DOMAIN_CONFIGURATION, Type, DOMAIN_CONFIGURATION_ARCH, 0x00);
ASSERT_MEMBER(DOMAIN_CONFIGURATION, Arm64, DOMAIN_CONFIGURATION_ARM64, 0x08);
ASSERT_MEMBER(DOMAIN_CONFIGURATION, X64, DOMAIN_CONFIGURATION_X64, 0x08);

/* ---- Routine tables (4.11 L1, A7) ---- */

ASSERT_SIZE(DMA_IOMMU_INTERFACE, 0x70);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE, Version, ULONG, 0x00);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE, CreateDomain, PIOMMU_DOMAIN_CREATE, 0x08);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE, DeleteDomain, PIOMMU_DOMAIN_DELETE, 0x10);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE, AttachDevice, PIOMMU_DOMAIN_ATTACH_DEVICE, 0x18);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE, DetachDevice, PIOMMU_DOMAIN_DETACH_DEVICE, 0x20);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE, FlushDomain, PIOMMU_FLUSH_DOMAIN, 0x28);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE, FlushDomainByVaList, PIOMMU_FLUSH_DOMAIN_VA_LIST, 0x30);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE, QueryInputMappings, PIOMMU_QUERY_INPUT_MAPPINGS, 0x38);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE, MapLogicalRange, PIOMMU_MAP_LOGICAL_RANGE, 0x40);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE, UnmapLogicalRange, PIOMMU_UNMAP_LOGICAL_RANGE, 0x48);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE, MapIdentityRange, PIOMMU_MAP_IDENTITY_RANGE, 0x50);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE, UnmapIdentityRange, PIOMMU_UNMAP_IDENTITY_RANGE, 0x58);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE, SetDeviceFaultReporting, PIOMMU_SET_DEVICE_FAULT_REPORTING, 0x60);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE, ConfigureDomain, PIOMMU_DOMAIN_CONFIGURE, 0x68);

/* V1 is the legacy table without Version: every slot 8 bytes lower. */
ASSERT_SIZE(DMA_IOMMU_INTERFACE_V1, 0x68);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE_V1, CreateDomain, PIOMMU_DOMAIN_CREATE, 0x00);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE_V1, DeleteDomain, PIOMMU_DOMAIN_DELETE, 0x08);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE_V1, AttachDevice, PIOMMU_DOMAIN_ATTACH_DEVICE, 0x10);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE_V1, DetachDevice, PIOMMU_DOMAIN_DETACH_DEVICE, 0x18);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE_V1, FlushDomain, PIOMMU_FLUSH_DOMAIN, 0x20);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE_V1, FlushDomainByVaList, PIOMMU_FLUSH_DOMAIN_VA_LIST, 0x28);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE_V1, QueryInputMappings, PIOMMU_QUERY_INPUT_MAPPINGS, 0x30);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE_V1, MapLogicalRange, PIOMMU_MAP_LOGICAL_RANGE, 0x38);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE_V1, UnmapLogicalRange, PIOMMU_UNMAP_LOGICAL_RANGE, 0x40);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE_V1, MapIdentityRange, PIOMMU_MAP_IDENTITY_RANGE, 0x48);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE_V1, UnmapIdentityRange, PIOMMU_UNMAP_IDENTITY_RANGE, 0x50);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE_V1, SetDeviceFaultReporting, PIOMMU_SET_DEVICE_FAULT_REPORTING, 0x58);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE_V1, ConfigureDomain, PIOMMU_DOMAIN_CONFIGURE, 0x60);

/* V2 and V3 share their first 22 slots. */
#define ASSERT_V2_SLOTS(table)                                                                                \
    ASSERT_MEMBER(table, CreateDomainEx, PIOMMU_DOMAIN_CREATE_EX, 0x00);                                        \
    ASSERT_MEMBER(table, DeleteDomain, PIOMMU_DOMAIN_DELETE, 0x08);                                             \
    ASSERT_MEMBER(table, AttachDeviceEx, PIOMMU_DOMAIN_ATTACH_DEVICE_EX, 0x10);                                 \
    ASSERT_MEMBER(table, DetachDeviceEx, PIOMMU_DOMAIN_DETACH_DEVICE_EX, 0x18);                                 \
    ASSERT_MEMBER(table, FlushDomain, PIOMMU_FLUSH_DOMAIN, 0x20);                                               \
    ASSERT_MEMBER(table, FlushDomainByVaList, PIOMMU_FLUSH_DOMAIN_VA_LIST, 0x28);                               \
    ASSERT_MEMBER(table, QueryInputMappings, PIOMMU_QUERY_INPUT_MAPPINGS, 0x30);                                \
    ASSERT_MEMBER(table, MapLogicalRangeEx, PIOMMU_MAP_LOGICAL_RANGE_EX, 0x38);                                 \
    ASSERT_MEMBER(table, UnmapLogicalRange, PIOMMU_UNMAP_LOGICAL_RANGE, 0x40);                                  \
    ASSERT_MEMBER(table, MapIdentityRangeEx, PIOMMU_MAP_IDENTITY_RANGE_EX, 0x48);                               \
    ASSERT_MEMBER(table, UnmapIdentityRangeEx, PIOMMU_UNMAP_IDENTITY_RANGE_EX, 0x50);                           \
    ASSERT_MEMBER(table, SetDeviceFaultReportingEx, PIOMMU_SET_DEVICE_FAULT_REPORTING_EX, 0x58);                \
    ASSERT_MEMBER(table, ConfigureDomain, PIOMMU_DOMAIN_CONFIGURE, 0x60);                                       \
    ASSERT_MEMBER(table, QueryAvailableDomainTypes, PIOMMU_DEVICE_QUERY_DOMAIN_TYPES, 0x68);                    \
    ASSERT_MEMBER(table, RegisterInterfaceStateChangeCallback, PIOMMU_REGISTER_INTERFACE_STATE_CHANGE_CALLBACK, \
                0x70);                                                                                        \
    ASSERT_MEMBER(table, UnregisterInterfaceStateChangeCallback,                                                \
                PIOMMU_UNREGISTER_INTERFACE_STATE_CHANGE_CALLBACK, 0x78);                                     \
    ASSERT_MEMBER(table, ReserveLogicalAddressRange, PIOMMU_RESERVE_LOGICAL_ADDRESS_RANGE, 0x80);               \
    ASSERT_MEMBER(table, FreeReservedLogicalAddressRange, PIOMMU_FREE_RESERVED_LOGICAL_ADDRESS_RANGE, 0x88);    \
    ASSERT_MEMBER(table, MapReservedLogicalRange, PIOMMU_MAP_RESERVED_LOGICAL_RANGE, 0x90);                     \
    ASSERT_MEMBER(table, UnmapReservedLogicalRange, PIOMMU_UNMAP_RESERVED_LOGICAL_RANGE, 0x98);                 \
    ASSERT_MEMBER(table, CreateDevice, PIOMMU_DEVICE_CREATE, 0xa0);                                             \
    ASSERT_MEMBER(table, DeleteDevice, PIOMMU_DEVICE_DELETE, 0xa8)

ASSERT_SIZE(DMA_IOMMU_INTERFACE_V2, 0xb0);
ASSERT_V2_SLOTS(DMA_IOMMU_INTERFACE_V2);

ASSERT_SIZE(DMA_IOMMU_INTERFACE_V3, 0xd8);
ASSERT_V2_SLOTS(DMA_IOMMU_INTERFACE_V3);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE_V3, CreatePasidDevice, PIOMMU_PASID_DEVICE_CREATE, 0xb0);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE_V3, DeletePasidDevice, PIOMMU_PASID_DEVICE_DELETE, 0xb8);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE_V3, AttachPasidDevice, PIOMMU_DOMAIN_ATTACH_PASID_DEVICE, 0xc0);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE_V3, DetachPasidDevice, PIOMMU_DOMAIN_DETACH_PASID_DEVICE, 0xc8);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE_V3, QueryDeviceInfo, PIOMMU_DEVICE_QUERY_INFORMATION, 0xd0);

ASSERT_SIZE(DMA_IOMMU_INTERFACE_EX, 0xe8);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE_EX, Size, SIZE_T, 0x00);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE_EX, Version, ULONG, 0x08);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE_EX, V1, DMA_IOMMU_INTERFACE_V1, 0x10);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE_EX, V2, DMA_IOMMU_INTERFACE_V2, 0x10);
ASSERT_MEMBER(DMA_IOMMU_INTERFACE_EX, V3, DMA_IOMMU_INTERFACE_V3, 0x10);

/* ---- Routine types: parameter lists and calling convention (4.11 L3) ----
 * Each routine type is compared with its signature written out again from the reference,
 * with ms_abi spelt directly rather than through NTAPI, so a typedef without the Microsoft
 * convention, or with one parameter type different, fails the build. */
#if defined(__x86_64__)
#define MS_ABI __attribute__((ms_abi))
#define ASSERT_SIGNATURE(name, ret, params)                                                       \
    _Static_assert(_Generic((P##name)0, ret(MS_ABI *) params: 1, default: 0) &&                   \
                       _Generic((name *)0, P##name: 1, default: 0),                               \
                   #name " is " #ret " ms_abi " #params)

_Static_assert(_Generic((void(NTAPI *)(void))0, void(MS_ABI *)(void): 1, default: 0), "NTAPI means ms_abi");

ASSERT_SIGNATURE(IOMMU_DEVICE_FAULT_HANDLER, void, (PVOID, PFAULT_INFORMATION));
ASSERT_SIGNATURE(IOMMU_INTERFACE_STATE_CHANGE_CALLBACK, void, (PIOMMU_INTERFACE_STATE_CHANGE, PVOID));

ASSERT_SIGNATURE(IOMMU_DOMAIN_CREATE, NTSTATUS, (BOOLEAN, PIOMMU_DMA_DOMAIN *));
ASSERT_SIGNATURE(IOMMU_DOMAIN_DELETE, NTSTATUS, (PIOMMU_DMA_DOMAIN));
ASSERT_SIGNATURE(IOMMU_DOMAIN_ATTACH_DEVICE, NTSTATUS, (PIOMMU_DMA_DOMAIN, PDEVICE_OBJECT, ULONG, ULONG));
ASSERT_SIGNATURE(IOMMU_DOMAIN_DETACH_DEVICE, NTSTATUS, (PIOMMU_DMA_DOMAIN, PDEVICE_OBJECT, ULONG));
ASSERT_SIGNATURE(IOMMU_SET_DEVICE_FAULT_REPORTING, NTSTATUS,
                 (PDEVICE_OBJECT, ULONG, BOOLEAN, PDEVICE_FAULT_CONFIGURATION));
ASSERT_SIGNATURE(IOMMU_DOMAIN_CONFIGURE, NTSTATUS, (PIOMMU_DMA_DOMAIN, PDOMAIN_CONFIGURATION));
ASSERT_SIGNATURE(IOMMU_FLUSH_DOMAIN, NTSTATUS, (PIOMMU_DMA_DOMAIN));
ASSERT_SIGNATURE(IOMMU_FLUSH_DOMAIN_VA_LIST, NTSTATUS, (PIOMMU_DMA_DOMAIN, BOOLEAN, ULONG, PVOID));
ASSERT_SIGNATURE(IOMMU_QUERY_INPUT_MAPPINGS, NTSTATUS, (PDEVICE_OBJECT, PINPUT_MAPPING_ELEMENT, ULONG, PULONG));
ASSERT_SIGNATURE(IOMMU_MAP_LOGICAL_RANGE, NTSTATUS, (PIOMMU_DMA_DOMAIN, ULONG, PMDL, ULONGLONG));
ASSERT_SIGNATURE(IOMMU_UNMAP_LOGICAL_RANGE, NTSTATUS, (PIOMMU_DMA_DOMAIN, ULONGLONG, ULONGLONG));
ASSERT_SIGNATURE(IOMMU_MAP_IDENTITY_RANGE, NTSTATUS, (PIOMMU_DMA_DOMAIN, ULONG, PMDL));
ASSERT_SIGNATURE(IOMMU_UNMAP_IDENTITY_RANGE, NTSTATUS, (PIOMMU_DMA_DOMAIN, PMDL));

ASSERT_SIGNATURE(IOMMU_DOMAIN_CREATE_EX, NTSTATUS,
                 (IOMMU_DMA_DOMAIN_TYPE, IOMMU_DMA_DOMAIN_CREATION_FLAGS, PIOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG,
                  PIOMMU_DMA_RESERVED_REGION, PIOMMU_DMA_DOMAIN *));
ASSERT_SIGNATURE(IOMMU_DOMAIN_ATTACH_DEVICE_EX, NTSTATUS, (PIOMMU_DMA_DOMAIN, PIOMMU_DMA_DEVICE));
ASSERT_SIGNATURE(IOMMU_DOMAIN_DETACH_DEVICE_EX, NTSTATUS, (PIOMMU_DMA_DEVICE));
ASSERT_SIGNATURE(IOMMU_MAP_LOGICAL_RANGE_EX, NTSTATUS,
                 (PIOMMU_DMA_DOMAIN, ULONG, PIOMMU_MAP_PHYSICAL_ADDRESS, PIOMMU_DMA_LOGICAL_ADDRESS,
                  PIOMMU_DMA_LOGICAL_ADDRESS, PIOMMU_DMA_LOGICAL_ADDRESS, PIOMMU_DMA_LOGICAL_ADDRESS));
ASSERT_SIGNATURE(IOMMU_MAP_IDENTITY_RANGE_EX, NTSTATUS, (PIOMMU_DMA_DOMAIN, ULONG, PIOMMU_MAP_PHYSICAL_ADDRESS));
ASSERT_SIGNATURE(IOMMU_UNMAP_IDENTITY_RANGE_EX, NTSTATUS, (PIOMMU_DMA_DOMAIN, PIOMMU_MAP_PHYSICAL_ADDRESS));
ASSERT_SIGNATURE(IOMMU_DEVICE_QUERY_DOMAIN_TYPES, void, (PIOMMU_DMA_DEVICE, PULONG));
ASSERT_SIGNATURE(IOMMU_REGISTER_INTERFACE_STATE_CHANGE_CALLBACK, NTSTATUS,
                 (PIOMMU_INTERFACE_STATE_CHANGE_CALLBACK, PVOID, PIOMMU_DMA_DEVICE,
                  PIOMMU_INTERFACE_STATE_CHANGE_FIELDS));
ASSERT_SIGNATURE(IOMMU_UNREGISTER_INTERFACE_STATE_CHANGE_CALLBACK, NTSTATUS,
                 (PIOMMU_INTERFACE_STATE_CHANGE_CALLBACK, PIOMMU_DMA_DEVICE));
ASSERT_SIGNATURE(IOMMU_RESERVE_LOGICAL_ADDRESS_RANGE, NTSTATUS,
                 (PIOMMU_DMA_DOMAIN, SIZE_T, PIOMMU_DMA_LOGICAL_ADDRESS, PIOMMU_DMA_LOGICAL_ADDRESS,
                  PIOMMU_DMA_LOGICAL_ADDRESS, PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN *));
ASSERT_SIGNATURE(IOMMU_FREE_RESERVED_LOGICAL_ADDRESS_RANGE, NTSTATUS, (PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN));
ASSERT_SIGNATURE(IOMMU_MAP_RESERVED_LOGICAL_RANGE, NTSTATUS,
                 (PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN, SIZE_T, ULONG, PIOMMU_MAP_PHYSICAL_ADDRESS,
                  PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT));
ASSERT_SIGNATURE(IOMMU_UNMAP_RESERVED_LOGICAL_RANGE, NTSTATUS, (PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT));
ASSERT_SIGNATURE(IOMMU_DEVICE_CREATE, NTSTATUS,
                 (PDEVICE_OBJECT, PIOMMU_DEVICE_CREATION_CONFIGURATION, PIOMMU_DMA_DEVICE *));
ASSERT_SIGNATURE(IOMMU_DEVICE_DELETE, NTSTATUS, (PIOMMU_DMA_DEVICE));
ASSERT_SIGNATURE(IOMMU_SET_DEVICE_FAULT_REPORTING_EX, NTSTATUS,
                 (PIOMMU_DMA_DEVICE, ULONG, BOOLEAN, PDEVICE_FAULT_CONFIGURATION));

ASSERT_SIGNATURE(IOMMU_PASID_DEVICE_CREATE, NTSTATUS, (PIOMMU_DMA_DEVICE, PIOMMU_DMA_PASID_DEVICE *, PULONG));
ASSERT_SIGNATURE(IOMMU_PASID_DEVICE_DELETE, NTSTATUS, (PIOMMU_DMA_PASID_DEVICE));
ASSERT_SIGNATURE(IOMMU_DOMAIN_ATTACH_PASID_DEVICE, NTSTATUS, (PIOMMU_DMA_DOMAIN, PIOMMU_DMA_PASID_DEVICE));
ASSERT_SIGNATURE(IOMMU_DOMAIN_DETACH_PASID_DEVICE, NTSTATUS, (PIOMMU_DMA_PASID_DEVICE));
ASSERT_SIGNATURE(IOMMU_DEVICE_QUERY_INFORMATION, NTSTATUS,
                 (PIOMMU_DMA_DEVICE, ULONG, PULONG, PIOMMU_DMA_DEVICE_INFORMATION));

_Static_assert(_Generic(&IoGetIommuInterface, NTSTATUS(MS_ABI *)(ULONG, PDMA_IOMMU_INTERFACE): 1, default: 0),
               "IoGetIommuInterface is NTSTATUS ms_abi (ULONG, PDMA_IOMMU_INTERFACE)");
_Static_assert(_Generic(&IoGetIommuInterfaceEx,
                        NTSTATUS(MS_ABI *)(ULONG, ULONGLONG, PDMA_IOMMU_INTERFACE_EX): 1, default: 0),
               "IoGetIommuInterfaceEx is NTSTATUS ms_abi (ULONG, ULONGLONG, PDMA_IOMMU_INTERFACE_EX)");
#endif

/* ---- Run-time checks ---- */

/* An MDL with room for three page numbers. */
struct mdl3 {
    MDL mdl;
    PFN_NUMBER pfn[3];
};
_Static_assert(offsetof(struct mdl3, pfn) == sizeof(MDL), "no gap between the MDL and its pages");

/* An MDL built by hand as a guest driver's would arrive: a 0x2000-byte buffer starting
 * 0x123 bytes into its first page, so it touches three pages. */
static void test_mdl_helpers(void **state)
{
    (void)state;
    struct mdl3 b;
    memset(&b, 0, sizeof b);
    b.mdl.Size = (CSHORT)sizeof b;
    b.mdl.StartVa = (PVOID)(ULONG_PTR)0x7ff612340000ull;
    b.mdl.ByteOffset = 0x123;
    b.mdl.ByteCount = 0x2000;
    b.pfn[0] = 0x1000;
    b.pfn[1] = 0x1001;
    b.pfn[2] = 0x5000;

    PPFN_NUMBER pfn = MmGetMdlPfnArray(&b.mdl);
    assert_ptr_equal(pfn, b.pfn);
    assert_int_equal(pfn[0], 0x1000);
    assert_int_equal(pfn[1], 0x1001);
    assert_int_equal(pfn[2], 0x5000);
    assert_int_equal(MmGetMdlByteCount(&b.mdl), 0x2000);
    assert_int_equal(MmGetMdlByteOffset(&b.mdl), 0x123);
    assert_ptr_equal(MmGetMdlVirtualAddress(&b.mdl), (PVOID)(ULONG_PTR)0x7ff612340123ull);
    assert_int_equal(ADDRESS_AND_SIZE_TO_SPAN_PAGES(MmGetMdlVirtualAddress(&b.mdl), MmGetMdlByteCount(&b.mdl)), 3);
    assert_int_equal(MmSizeOfMdl(MmGetMdlVirtualAddress(&b.mdl), MmGetMdlByteCount(&b.mdl)), sizeof b);

    /* MmInitializeMdl gives the same description, over garbage, and leaves the pages. */
    struct mdl3 m;
    memset(&m, 0xa5, sizeof m);
    MmInitializeMdl(&m.mdl, MmGetMdlVirtualAddress(&b.mdl), 0x2000);
    assert_null(m.mdl.Next);
    assert_int_equal(m.mdl.Size, sizeof m);
    assert_int_equal(m.mdl.MdlFlags, 0);
    assert_null(m.mdl.Process);
    assert_null(m.mdl.MappedSystemVa);
    assert_ptr_equal(m.mdl.StartVa, b.mdl.StartVa);
    assert_int_equal(m.mdl.ByteOffset, 0x123);
    assert_int_equal(m.mdl.ByteCount, 0x2000);
    assert_int_equal(MmGetMdlPfnArray(&m.mdl)[0], 0xa5a5a5a5a5a5a5a5ull);

    /* A kernel address: the page mask must keep the high half. */
    MmInitializeMdl(&m.mdl, (PVOID)(ULONG_PTR)0xffff800012345678ull, 0x1000);
    assert_ptr_equal(m.mdl.StartVa, (PVOID)(ULONG_PTR)0xffff800012345000ull);
    assert_int_equal(m.mdl.ByteOffset, 0x678);
    assert_int_equal(m.mdl.Size, sizeof(MDL) + 2 * sizeof(PFN_NUMBER));

    /* The shape the map routines accept: page aligned, whole pages. */
    MmInitializeMdl(&m.mdl, (PVOID)(ULONG_PTR)0x200000, 3 * PAGE_SIZE);
    assert_int_equal(MmGetMdlByteOffset(&m.mdl), 0);
    assert_int_equal(MmGetMdlByteCount(&m.mdl) % PAGE_SIZE, 0);
    assert_int_equal(m.mdl.Size, sizeof m);
}

static void test_span_pages(void **state)
{
    (void)state;
    static const struct {
        ULONG_PTR va;
        SIZE_T size;
        ULONG_PTR pages;
    } cases[] = {
        {0, 0, 0},
        {0x1000, 0, 0},
        {0xfff, 0, 1}, /* as in wdm.h: an empty range inside a page counts that page */
        {0, 1, 1},
        {0, 0x1000, 1},
        {0, 0x1001, 2},
        {0xfff, 1, 1},
        {0xfff, 2, 2},
        {0x1000, 0x1000, 1},
        {0x10ff0, 0x20, 2},
        {0x123, 0x2000, 3},
        {0xffff800000000800ull, 0x1000, 2},
        {0, 0x100000000ull, 0x100000},         /* 4 GiB: counted in 64 bits */
        {0xfff, 0xffffffffull, 0x100001},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ULONG_PTR got = ADDRESS_AND_SIZE_TO_SPAN_PAGES(cases[i].va, cases[i].size);
        if (got != cases[i].pages)
            fail_msg("span of (0x%llx, 0x%llx): %llu pages, want %llu", (unsigned long long)cases[i].va,
                     (unsigned long long)cases[i].size, (unsigned long long)got,
                     (unsigned long long)cases[i].pages);
    }
    /* Pointers are accepted as well as integers. */
    char *p = (char *)(ULONG_PTR)0x40000ff8;
    assert_int_equal(ADDRESS_AND_SIZE_TO_SPAN_PAGES(p, 16), 2);
    assert_int_equal(BYTE_OFFSET(p), 0xff8);
    assert_ptr_equal(PAGE_ALIGN(p), (PVOID)(ULONG_PTR)0x40000000);
}

static void test_pci_device_object(void **state)
{
    (void)state;
    DEVICE_OBJECT o;
    memset(&o, 0xff, sizeof o);
    assert_ptr_equal(IommuPciDeviceObject(&o, 0x0001, 0x3a, 0x1f, 7), &o);
    assert_int_equal(o.Type, IOMMU_PCI_DEVICE_OBJECT_TYPE);
    assert_memory_equal(&o, "DPCI", 4);
    assert_int_equal(o.Segment, 1);
    assert_int_equal(o.Bus, 0x3a);
    assert_int_equal(o.Device, 0x1f);
    assert_int_equal(o.Function, 7);
    for (int i = 0; i < 3; i++)
        assert_int_equal(o.Reserved[i], 0);
    /* QEMU's edu device, 0000:00:03.0, as a host test would name it. */
    IommuPciDeviceObject(&o, 0, 0, 3, 0);
    assert_int_equal(o.Segment, 0);
    assert_int_equal(o.Device, 3);
    assert_int_equal(o.Function, 0);
}

/* Bit-fields and unions as MSVC lays them out: first field in the lowest bits. */
static void test_bit_placement(void **state)
{
    (void)state;
    IOMMU_INTERFACE_STATE_CHANGE_FIELDS f = {.AsULONG = 0};
    f.AvailableDomainTypes = 1;
    assert_int_equal(f.AsULONG, 1);
    f.AsULONG = 0xfffffffe;
    assert_int_equal(f.AvailableDomainTypes, 0);
    assert_int_equal(f.Reserved, 0x7fffffff);

    FAULT_INFORMATION_ARM64_FLAGS a;
    ULONG bits;
    static const ULONG want[] = {0x1, 0x2, 0x4, 0x8};
    for (int i = 0; i < 4; i++) {
        memset(&a, 0, sizeof a);
        switch (i) {
        case 0:
            a.WriteNotRead = 1;
            break;
        case 1:
            a.InstructionNotData = 1;
            break;
        case 2:
            a.Privileged = 1;
            break;
        default:
            a.FaultAddressValid = 1;
        }
        memcpy(&bits, &a, sizeof bits);
        assert_int_equal(bits, want[i]);
    }
    FAULT_INFORMATION_X64_FLAGS x;
    memset(&x, 0, sizeof x);
    x.FaultAddressValid = 1;
    memcpy(&bits, &x, sizeof bits);
    assert_int_equal(bits, 1);

    IOMMU_DMA_DOMAIN_CREATION_FLAGS c = {.AsUlonglong = 0x4000000000000001ull};
    assert_int_equal(c.Reserved, 0x4000000000000001ull);

    PHYSICAL_ADDRESS pa = {.QuadPart = 0x1122334455667788ll};
    assert_int_equal(pa.LowPart, 0x55667788);
    assert_int_equal(pa.HighPart, 0x11223344);
    assert_int_equal(pa.u.LowPart, 0x55667788);
    assert_int_equal(pa.u.HighPart, 0x11223344);
}

#if defined(__x86_64__) && defined(__ELF__)
/* A CreateDomainEx that records where its arguments arrived: RCX, RDX, R8, R9, and the
 * fifth one on the stack above the return address and the 32-byte home area. Written in
 * assembly so that nothing but the Microsoft convention can explain what it sees. */
uint64_t ms_abi_seen[5];
IOMMU_DOMAIN_CREATE_EX record_create_domain_ex;
__asm__(".pushsection .text\n"
        ".globl record_create_domain_ex\n"
        ".type record_create_domain_ex, @function\n"
        "record_create_domain_ex:\n"
        "    movq %rcx, ms_abi_seen(%rip)\n"
        "    movq %rdx, ms_abi_seen+8(%rip)\n"
        "    movq %r8, ms_abi_seen+16(%rip)\n"
        "    movq %r9, ms_abi_seen+24(%rip)\n"
        "    movq 40(%rsp), %rax\n"
        "    movq %rax, ms_abi_seen+32(%rip)\n"
        "    movl $0xC00000BB, %eax\n"
        "    ret\n"
        ".size record_create_domain_ex, .-record_create_domain_ex\n"
        ".popsection\n");
#endif

/* 4.11 L3: a call through the routine type passes the creation flags by value in RDX. */
static void test_ms_abi_registers(void **state)
{
    (void)state;
#if defined(__x86_64__) && defined(__ELF__)
    PIOMMU_DOMAIN_CREATE_EX create = record_create_domain_ex;
    IOMMU_DMA_DOMAIN_CREATION_FLAGS flags = {.AsUlonglong = 0x4000000000000001ull};
    IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG config = {.LogicalAllocatorType = IommuDmaLogicalAllocatorBuddy};
    IOMMU_DMA_RESERVED_REGION region = {.NumberOfPages = 1};
    PIOMMU_DMA_DOMAIN domain = NULL;
    memset(ms_abi_seen, 0, sizeof ms_abi_seen);
    assert_int_equal(create(DomainTypeTranslateS1, flags, &config, &region, &domain), STATUS_NOT_SUPPORTED);
    assert_int_equal((uint32_t)ms_abi_seen[0], DomainTypeTranslateS1);
    assert_int_equal(ms_abi_seen[1], 0x4000000000000001ull);
    assert_int_equal(ms_abi_seen[2], (uintptr_t)&config);
    assert_int_equal(ms_abi_seen[3], (uintptr_t)&region);
    assert_int_equal(ms_abi_seen[4], (uintptr_t)&domain);
#else
    skip();
#endif
}

/* The Arm form of the hypercall ABI (docs/hypercall.md): every call's function ID is a fast
 * SMC64 call of owner 6 with bits 23:16 zero, and turns back into the VMMCALL form; another
 * ABI version stays visible (hc_dispatch refuses it); anything outside the range is not ours. */
static void test_hvc_function_ids(void **state)
{
    (void)state;
    for (unsigned c = 0; c < HC_CALLS; c++) {
        uint64_t x0 = hc_smccc_function((enum hc_call)c), rax = 0;
        assert_int_equal(x0 >> 31, 1);        /* fast call */
        assert_int_equal(x0 >> 30 & 1, 1);    /* SMC64 */
        assert_int_equal(x0 >> 24 & 0x3f, 6); /* vendor-specific hypervisor service */
        assert_int_equal(x0 >> 16 & 0xff, 0); /* must be zero */
        assert_true(hc_rax_from_smccc(x0, &rax));
        assert_int_equal(rax, hc_rax((enum hc_call)c));
    }
    uint64_t rax = 0;
    assert_true(hc_rax_from_smccc(0xC6000205u, &rax)); /* version 2, call 5 */
    assert_int_equal(rax, 2u << 16 | 5u);
    assert_false(hc_rax_from_smccc(0x84000000u, &rax));           /* PSCI_VERSION (standard secure service) */
    assert_false(hc_rax_from_smccc(0xC5000100u, &rax));           /* owner 5: standard hypervisor service */
    assert_false(hc_rax_from_smccc(0x86000100u, &rax));           /* SMC32 */
    assert_false(hc_rax_from_smccc(0x46000100u, &rax));           /* yielding */
    assert_false(hc_rax_from_smccc(0xC6010100u, &rax));           /* bits 23:16 set */
    assert_false(hc_rax_from_smccc(0x1C6000100ull, &rax));        /* bits 63:32 set */
    /* The guest's way back from the x86 form: every call, and another version, round-trip;
     * what no function ID carries lands outside the range. */
    for (unsigned c = 0; c < HC_CALLS; c++)
        assert_int_equal(hc_smccc_from_rax(hc_rax((enum hc_call)c)), hc_smccc_function((enum hc_call)c));
    assert_true(hc_rax_from_smccc(hc_smccc_from_rax(7u << 16 | 0x42u), &rax));
    assert_int_equal(rax, 7u << 16 | 0x42u);
    assert_false(hc_rax_from_smccc(hc_smccc_from_rax(1u << 16 | 0x100u), &rax)); /* call 256 */
    assert_false(hc_rax_from_smccc(hc_smccc_from_rax(0x100u << 16), &rax));      /* version 256 */
    assert_false(hc_rax_from_smccc(hc_smccc_from_rax(1ull << 32 | 1u << 16), &rax));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mdl_helpers),
        cmocka_unit_test(test_span_pages),
        cmocka_unit_test(test_pci_device_object),
        cmocka_unit_test(test_bit_placement),
        cmocka_unit_test(test_ms_abi_registers),
        cmocka_unit_test(test_hvc_function_ids),
    };
    return cmocka_run_group_tests_name("ddi_layout", tests, NULL, NULL);
}
