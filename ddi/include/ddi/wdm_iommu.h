/* The Windows kernel's DMA IOMMU interface (wdm.h), as this project provides it to guest
 * drivers: DMA_IOMMU_INTERFACE_EX with its V1, V2 and V3 routine tables, the legacy
 * DMA_IOMMU_INTERFACE, and the types, constants and status codes they use.
 *
 * Names, field order, enum values and status values are those of wdm.h from WDK
 * 10.0.26100 at NTDDI_WIN10_NI and later, so the newest form of everything is declared:
 * V3 and the PASID types are present and the "...Max" enumerators have their NI values.
 * The layouts are the x64 ones (tests/unit/test_ddi_layout.c checks every size and offset
 * the reference gives). Semantics are in docs/ and in the project's DDI reference.
 *
 * A guest driver calls these routines with the Microsoft x64 calling convention whatever
 * compiler built it, so every routine and callback type here carries NTAPI (ms_abi): a
 * provider built with GCC or clang gets the right convention by declaring its routines
 * with these types.
 *
 * Freestanding C11: only <stddef.h> and <stdint.h>. */
#ifndef DDI_WDM_IOMMU_H
#define DDI_WDM_IOMMU_H

#include <stddef.h>
#include <stdint.h>

/* ---- Basic types -------------------------------------------------------------------------
 * The scalar and list types the declarations below are written in, with their Windows
 * widths on an LP64 compiler: ULONG is 32 bits (not unsigned long), pointers, SIZE_T and
 * ULONG_PTR are 64 bits. Windows declares them in ntdef.h, whose guard is _NTDEF_, and
 * headers that need a few of them test that guard before declaring their own; this block
 * sits under the same guard, so a later header that follows the convention does not
 * collide with it. */
#ifndef _NTDEF_
#define _NTDEF_

#ifndef VOID
#define VOID void
#endif

typedef uint8_t UCHAR, *PUCHAR;
typedef uint16_t USHORT, *PUSHORT;
typedef int16_t CSHORT;
typedef uint32_t ULONG, *PULONG;
typedef int32_t LONG;
typedef uint32_t UINT32;
typedef int64_t LONGLONG;
typedef uint64_t ULONGLONG, *PULONGLONG;
typedef uint64_t ULONG64;
typedef uintptr_t ULONG_PTR;
typedef size_t SIZE_T;
typedef void *PVOID;

/* A byte, as in Windows (not C's bool): it sits inside structures the guest lays out. */
typedef uint8_t BOOLEAN, *PBOOLEAN;
#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

/* Negative values are errors; the high two bits give the severity. */
typedef int32_t NTSTATUS;
#define NT_SUCCESS(Status) (((NTSTATUS)(Status)) >= 0)

/* A 64-bit integer that 32-bit code can also reach in halves (little-endian). */
typedef union _LARGE_INTEGER {
    struct {
        ULONG LowPart;
        LONG HighPart;
    };
    struct {
        ULONG LowPart;
        LONG HighPart;
    } u;
    LONGLONG QuadPart;
} LARGE_INTEGER, *PLARGE_INTEGER;

typedef LARGE_INTEGER PHYSICAL_ADDRESS, *PPHYSICAL_ADDRESS;

/* A node of a circular doubly linked list; an empty list's head points at itself.
 * gnu-efi's efilink.h declares the same struct _LIST_ENTRY, without a guard, so a file
 * that needs both includes <efi.h> first and this header then uses its declaration. */
#ifndef _EFI_LINK_H
typedef struct _LIST_ENTRY {
    struct _LIST_ENTRY *Flink;
    struct _LIST_ENTRY *Blink;
} LIST_ENTRY, *PLIST_ENTRY;
#else
typedef LIST_ENTRY *PLIST_ENTRY;
#endif

#endif /* _NTDEF_ */

/* If another header supplied the types above, they must still have the widths the
 * layouts below depend on. */
_Static_assert(sizeof(ULONG) == 4 && sizeof(LONG) == 4, "ULONG and LONG are 32 bits");
_Static_assert(sizeof(BOOLEAN) == 1, "BOOLEAN is one byte");
_Static_assert(sizeof(NTSTATUS) == 4 && (NTSTATUS)-1 < 0, "NTSTATUS is a signed 32-bit value");
_Static_assert(sizeof(ULONG_PTR) == sizeof(PVOID) && sizeof(SIZE_T) == sizeof(PVOID),
               "ULONG_PTR and SIZE_T are pointer sized");
_Static_assert(sizeof(PHYSICAL_ADDRESS) == 8, "PHYSICAL_ADDRESS is 64 bits");

/* ---- Calling convention ------------------------------------------------------------------
 * Windows x64 has one calling convention and wdm.h names none; GCC and clang on x86-64
 * default to the System V one, so the convention must be asked for explicitly. */
#ifndef NTAPI
#if defined(__x86_64__) && defined(__GNUC__)
#define NTAPI __attribute__((ms_abi))
#else
#define NTAPI
#endif
#endif

/* ---- Status codes ------------------------------------------------------------------------
 * The ntstatus.h codes the interface's routines are documented (or observed) to return.
 *
 * The documentation also names STATUS_IN_USE for "already mapped or reserved", but no
 * Windows header defines it. Those cases return STATUS_RESOURCE_IN_USE, which is what
 * Windows itself returns for the reserved-range routines; nothing named STATUS_IN_USE is
 * defined, so code written against the documentation fails to build instead of guessing. */
#ifndef FACILITY_HYPERVISOR
#define FACILITY_HYPERVISOR 0x35 /* errors passed on from the hypervisor: 0xC035xxxx */
#endif
#ifndef STATUS_SUCCESS
#define STATUS_SUCCESS ((NTSTATUS)0x00000000u)
#endif
#ifndef STATUS_UNSUCCESSFUL
#define STATUS_UNSUCCESSFUL ((NTSTATUS)0xC0000001u)
#endif
#ifndef STATUS_NOT_IMPLEMENTED
#define STATUS_NOT_IMPLEMENTED ((NTSTATUS)0xC0000002u)
#endif
#ifndef STATUS_INVALID_PARAMETER
#define STATUS_INVALID_PARAMETER ((NTSTATUS)0xC000000Du)
#endif
#ifndef STATUS_ACCESS_DENIED
#define STATUS_ACCESS_DENIED ((NTSTATUS)0xC0000022u)
#endif
#ifndef STATUS_BUFFER_TOO_SMALL
#define STATUS_BUFFER_TOO_SMALL ((NTSTATUS)0xC0000023u)
#endif
#ifndef STATUS_INVALID_PARAMETER_MIX
#define STATUS_INVALID_PARAMETER_MIX ((NTSTATUS)0xC0000030u)
#endif
#ifndef STATUS_NONE_MAPPED
#define STATUS_NONE_MAPPED ((NTSTATUS)0xC0000073u)
#endif
#ifndef STATUS_INSUFFICIENT_RESOURCES
#define STATUS_INSUFFICIENT_RESOURCES ((NTSTATUS)0xC000009Au)
#endif
#ifndef STATUS_NOT_SUPPORTED
#define STATUS_NOT_SUPPORTED ((NTSTATUS)0xC00000BBu)
#endif
#ifndef STATUS_INVALID_PARAMETER_1
#define STATUS_INVALID_PARAMETER_1 ((NTSTATUS)0xC00000EFu)
#endif
#ifndef STATUS_INVALID_PARAMETER_2
#define STATUS_INVALID_PARAMETER_2 ((NTSTATUS)0xC00000F0u)
#endif
#ifndef STATUS_INVALID_PARAMETER_3
#define STATUS_INVALID_PARAMETER_3 ((NTSTATUS)0xC00000F1u)
#endif
#ifndef STATUS_INVALID_PARAMETER_4
#define STATUS_INVALID_PARAMETER_4 ((NTSTATUS)0xC00000F2u)
#endif
#ifndef STATUS_INVALID_PARAMETER_5
#define STATUS_INVALID_PARAMETER_5 ((NTSTATUS)0xC00000F3u)
#endif
/* Not in the reference's list, but the Ex routines have up to seven parameters and a
 * provider reports a bad one by its position, as Windows does. */
#ifndef STATUS_INVALID_PARAMETER_6
#define STATUS_INVALID_PARAMETER_6 ((NTSTATUS)0xC00000F4u)
#endif
#ifndef STATUS_INVALID_PARAMETER_7
#define STATUS_INVALID_PARAMETER_7 ((NTSTATUS)0xC00000F5u)
#endif
#ifndef STATUS_NOT_FOUND
#define STATUS_NOT_FOUND ((NTSTATUS)0xC0000225u)
#endif
#ifndef STATUS_RESOURCE_IN_USE
#define STATUS_RESOURCE_IN_USE ((NTSTATUS)0xC0000708u)
#endif

/* ---- Pages and MDLs ----------------------------------------------------------------------
 * The interface counts in 4 KiB pages. PAGE_SHIFT and PAGE_SIZE are spelt exactly as
 * iommu/page_pool.h spells them, so the two headers can be included in either order (an
 * identical redefinition is allowed). */
#ifndef PAGE_SHIFT
#define PAGE_SHIFT 12u
#endif
#ifndef PAGE_SIZE
#define PAGE_SIZE (1u << PAGE_SHIFT)
#endif

/* A physical page number (physical address >> PAGE_SHIFT). */
typedef ULONG_PTR PFN_NUMBER, *PPFN_NUMBER;

/* The offset of an address within its page, and the address of its page. The mask is
 * widened first: ~(PAGE_SIZE - 1) alone is a 32-bit value and would clear the high half. */
#define BYTE_OFFSET(Va) ((ULONG)((ULONG_PTR)(Va) & ((ULONG_PTR)PAGE_SIZE - 1)))
#define PAGE_ALIGN(Va) ((PVOID)((ULONG_PTR)(Va) & ~((ULONG_PTR)PAGE_SIZE - 1)))

/* The number of pages that [Va, Va + Size) touches. Computed in 64 bits: wdm.h truncates
 * Size to a ULONG first, which miscounts sizes of 4 GiB and more. */
#define ADDRESS_AND_SIZE_TO_SPAN_PAGES(Va, Size) \
    (((ULONG_PTR)BYTE_OFFSET(Va) + (ULONG_PTR)(Size) + (PAGE_SIZE - 1)) >> PAGE_SHIFT)

/* A memory descriptor list: a buffer that starts ByteOffset bytes into the page StartVa,
 * ByteCount bytes long, followed in memory by the physical page number of every page it
 * touches. A guest driver hands MDLs to the map routines; only the buffer's placement and
 * its page numbers matter to this interface (the map routines want ByteOffset 0 and a
 * whole number of pages). */
typedef struct _MDL {
    struct _MDL *Next;         /* the next MDL of a chain */
    CSHORT Size;               /* bytes of the MDL and its page array together */
    CSHORT MdlFlags;
    struct _EPROCESS *Process; /* owner of the virtual range; opaque here */
    PVOID MappedSystemVa;
    PVOID StartVa;             /* page-aligned virtual address of the first page */
    ULONG ByteCount;
    ULONG ByteOffset;
} MDL, *PMDL;

/* The helpers read an MDL without changing it, so they take a const one (the wdm macros
 * accept either); the page array is handed back writable, as the macro does. */

/* The page numbers that follow the MDL. */
static inline PPFN_NUMBER MmGetMdlPfnArray(const MDL *Mdl)
{
    return (PPFN_NUMBER)(ULONG_PTR)(Mdl + 1);
}

static inline ULONG MmGetMdlByteCount(const MDL *Mdl)
{
    return Mdl->ByteCount;
}

static inline ULONG MmGetMdlByteOffset(const MDL *Mdl)
{
    return Mdl->ByteOffset;
}

/* The virtual address of the buffer's first byte. */
static inline PVOID MmGetMdlVirtualAddress(const MDL *Mdl)
{
    return (UCHAR *)Mdl->StartVa + Mdl->ByteOffset;
}

/* Bytes needed for an MDL describing [Base, Base + Length), page array included. */
static inline SIZE_T MmSizeOfMdl(PVOID Base, SIZE_T Length)
{
    return sizeof(MDL) + ADDRESS_AND_SIZE_TO_SPAN_PAGES(Base, Length) * sizeof(PFN_NUMBER);
}

/* Describes [BaseVa, BaseVa + Length) in memory of at least MmSizeOfMdl bytes; the page
 * numbers are left for the caller to fill. */
static inline VOID MmInitializeMdl(PMDL MemoryDescriptorList, PVOID BaseVa, SIZE_T Length)
{
    MemoryDescriptorList->Next = NULL;
    MemoryDescriptorList->Size = (CSHORT)MmSizeOfMdl(BaseVa, Length);
    MemoryDescriptorList->MdlFlags = 0;
    MemoryDescriptorList->Process = NULL;
    MemoryDescriptorList->MappedSystemVa = NULL;
    MemoryDescriptorList->StartVa = PAGE_ALIGN(BaseVa);
    MemoryDescriptorList->ByteCount = (ULONG)Length;
    MemoryDescriptorList->ByteOffset = BYTE_OFFSET(BaseVa);
}

/* ---- Device objects ----------------------------------------------------------------------
 * In Windows a PDEVICE_OBJECT names a device by its physical device object (PDO). Here it
 * names a PCI function by its location, which is all the provider needs to find the
 * remapping unit and the source id. A guest driver does not build one itself: the guest
 * shim, which holds the real PDO, reads the function's segment, bus, device and function
 * numbers and fills a DEVICE_OBJECT with IommuPciDeviceObject before passing it on; host
 * tests build theirs with the same helper. Type (the first field of Windows' own
 * DEVICE_OBJECT too) holds a value unlikely to be there by chance, so a provider can refuse
 * a pointer to anything else. The layout has no implicit padding, as it crosses from guest
 * to provider. */
#define IOMMU_PCI_DEVICE_OBJECT_TYPE 0x49435044u /* the bytes "DPCI" in memory */

typedef struct _DEVICE_OBJECT {
    ULONG Type;        /* IOMMU_PCI_DEVICE_OBJECT_TYPE */
    USHORT Segment;    /* PCI segment group */
    UCHAR Bus;
    UCHAR Device;      /* 0-31 */
    UCHAR Function;    /* 0-7 */
    UCHAR Reserved[3]; /* zero */
} DEVICE_OBJECT, *PDEVICE_OBJECT;

/* Fills obj for the PCI function segment:bus:device.function and returns it. The numbers
 * are stored as given: a device above 31 or a function above 7 names no function, and
 * refusing it is the provider's job. */
static inline PDEVICE_OBJECT IommuPciDeviceObject(PDEVICE_OBJECT obj, USHORT segment, UCHAR bus,
                                                  UCHAR device, UCHAR function)
{
    obj->Type = IOMMU_PCI_DEVICE_OBJECT_TYPE;
    obj->Segment = segment;
    obj->Bus = bus;
    obj->Device = device;
    obj->Function = function;
    obj->Reserved[0] = obj->Reserved[1] = obj->Reserved[2] = 0;
    return obj;
}

/* ---- Interface constants ------------------------------------------------------------------ */

/* Permissions of a mapping: what the device may do. Other bits are reserved (zero). */
#define IOMMU_ACCESS_NONE 0x00u
#define IOMMU_ACCESS_READ 0x01u
#define IOMMU_ACCESS_WRITE 0x02u

/* Version numbers, typed as ULONG (wdm.h writes 1UL, which is 64 bits on LP64). The
 * "default" EX version is the newest at NI; before NI wdm.h made it 1, not 2. */
#define DMA_IOMMU_INTERFACE_VERSION_1 (1u)
#define DMA_IOMMU_INTERFACE_VERSION DMA_IOMMU_INTERFACE_VERSION_1
#define DMA_IOMMU_INTERFACE_EX_VERSION_1 (1u)
#define DMA_IOMMU_INTERFACE_EX_VERSION_2 (2u)
#define DMA_IOMMU_INTERFACE_EX_VERSION_3 (3u)
#define DMA_IOMMU_INTERFACE_EX_VERSION_MIN DMA_IOMMU_INTERFACE_EX_VERSION_1
#define DMA_IOMMU_INTERFACE_EX_VERSION_MAX DMA_IOMMU_INTERFACE_EX_VERSION_3
#define DMA_IOMMU_INTERFACE_EX_VERSION DMA_IOMMU_INTERFACE_EX_VERSION_3

/* ---- Opaque handles ----------------------------------------------------------------------
 * A domain (page tables and optionally a logical address allocator), a DMA device, and a
 * PASID sub-device. Callers never see inside them; the provider defines the structs. */
typedef struct _IOMMU_DMA_DOMAIN IOMMU_DMA_DOMAIN, *PIOMMU_DMA_DOMAIN;
typedef struct _IOMMU_DMA_DEVICE IOMMU_DMA_DEVICE, *PIOMMU_DMA_DEVICE;
typedef struct _IOMMU_DMA_PASID_DEVICE IOMMU_DMA_PASID_DEVICE, *PIOMMU_DMA_PASID_DEVICE;

/* An address as the device sees it (an IOVA). */
typedef ULONGLONG IOMMU_DMA_LOGICAL_ADDRESS, *PIOMMU_DMA_LOGICAL_ADDRESS;

/* ---- Enumerations ------------------------------------------------------------------------ */

/* What a V2/V3 domain does with DMA. Bit (1 << type) of a device's available-types mask
 * says whether the device may join a domain of that type now. */
typedef enum _IOMMU_DMA_DOMAIN_TYPE {
    DomainTypeTranslate,   /* the provider's page tables (stage 2) */
    DomainTypePassThrough, /* no translation */
    DomainTypeUnmanaged,   /* the caller's page tables */
    DomainTypeTranslateS1, /* the provider's page tables, stage 1 */
    DomainTypeMax          /* 4 here; 3 in builds before TranslateS1 */
} IOMMU_DMA_DOMAIN_TYPE, *PIOMMU_DMA_DOMAIN_TYPE;

/* Which arm of IOMMU_DEVICE_CREATION_CONFIGURATION is in use. */
typedef enum _IOMMU_DEVICE_CREATION_CONFIGURATION_TYPE {
    IommuDeviceCreationConfigTypeNone,
    IommuDeviceCreationConfigTypeAcpi,
    IommuDeviceCreationConfigTypeDeviceId,
    IommuDeviceCreationConfigTypePasid,
    IommuDeviceCreationConfigTypeMax /* 4 here; 3 before Pasid was added */
} IOMMU_DEVICE_CREATION_CONFIGURATION_TYPE, *PIOMMU_DEVICE_CREATION_CONFIGURATION_TYPE;

/* How a DMA device uses PASIDs (V3). */
typedef enum _IOMMU_PASID_CONFIGURATION_TYPE {
    PasidConfigTypeDefaultPasidOnly, /* untagged DMA only, through the default PASID */
    PasidConfigTypePasidTaggedDma,   /* tagged DMA too: PASID sub-devices can be created */
    PasidConfigTypeMax
} IOMMU_PASID_CONFIGURATION_TYPE, *PIOMMU_PASID_CONFIGURATION_TYPE;

/* How IOMMU_MAP_PHYSICAL_ADDRESS describes the physical pages. */
typedef enum _IOMMU_MAP_PHYSICAL_ADDRESS_TYPE {
    MapPhysicalAddressTypeMdl,
    MapPhysicalAddressTypeContiguousRange,
    MapPhysicalAddressTypePfn,
    MapPhysicalAddressTypeMax
} IOMMU_MAP_PHYSICAL_ADDRESS_TYPE, *PIOMMU_MAP_PHYSICAL_ADDRESS_TYPE;

/* Whether a domain picks logical addresses itself, and how. */
typedef enum _IOMMU_DMA_LOGICAL_ALLOCATOR_TYPE {
    IommuDmaLogicalAllocatorNone,  /* callers give every address */
    IommuDmaLogicalAllocatorBuddy, /* power-of-two blocks, lowest first; no explicit addresses */
    IommuDmaLogicalAllocatorMax
} IOMMU_DMA_LOGICAL_ALLOCATOR_TYPE, *PIOMMU_DMA_LOGICAL_ALLOCATOR_TYPE;

/* Which arm of FAULT_INFORMATION is valid. Invalid comes first here, unlike in
 * DOMAIN_CONFIGURATION_ARCH. */
typedef enum _FAULT_INFORMATION_ARCH {
    FaultInformationInvalid,
    FaultInformationArm64,
    FaultInformationX64
} FAULT_INFORMATION_ARCH, *PFAULT_INFORMATION_ARCH;

/* The kind of a translation fault; x64 faults use the same codes. */
typedef enum _FAULT_INFORMATION_ARM64_TYPE {
    UnsupportedUpstreamTransaction,
    AddressSizeFault,
    TlbMatchConflict,
    ExternalFault,
    PermissionFault,
    AccessFlagFault,
    TranslationFault,
    MaxFaultType
} FAULT_INFORMATION_ARM64_TYPE, *PFAULT_INFORMATION_ARM64_TYPE;

typedef enum _FAULT_INFORMATION_ARM64_TYPE FAULT_INFORMATION_X64_TYPE, *PFAULT_INFORMATION_X64_TYPE;

/* Which arm of DOMAIN_CONFIGURATION is valid. Invalid comes last here. */
typedef enum _DOMAIN_CONFIGURATION_ARCH {
    DomainConfigurationArm64,
    DomainConfigurationX64, /* reserved for the system */
    DomainConfigurationInvalid
} DOMAIN_CONFIGURATION_ARCH, *PDOMAIN_CONFIGURATION_ARCH;

/* ---- Domain creation (V2) ---------------------------------------------------------------- */

/* Passed by value to CreateDomainEx. Every bit is reserved: callers pass 0. */
typedef union _IOMMU_DMA_DOMAIN_CREATION_FLAGS {
    struct {
        ULONGLONG Reserved : 64;
    };
    ULONGLONG AsUlonglong;
} IOMMU_DMA_DOMAIN_CREATION_FLAGS, *PIOMMU_DMA_DOMAIN_CREATION_FLAGS;

/* The allocator a domain gets; AddressWidth bounds its addresses to [0, 2^AddressWidth). */
typedef struct _IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG {
    IOMMU_DMA_LOGICAL_ALLOCATOR_TYPE LogicalAllocatorType;
    union {
        struct {
            ULONG AddressWidth;
        } BuddyAllocatorConfig;
    };
} IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG, *PIOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG;

/* A list of logical ranges set aside when a domain is created; the allocator never hands
 * them out, and ShouldMap ones are identity-mapped read/write. */
typedef struct _IOMMU_DMA_RESERVED_REGION {
    struct _IOMMU_DMA_RESERVED_REGION *RegionNext; /* NULL ends the list */
    IOMMU_DMA_LOGICAL_ADDRESS Base;                /* page aligned */
    SIZE_T NumberOfPages;
    BOOLEAN ShouldMap;
} IOMMU_DMA_RESERVED_REGION, *PIOMMU_DMA_RESERVED_REGION;

/* ---- Physical memory to map (V2) ----------------------------------------------------------
 * Whole 4 KiB pages given one of three ways; MapType selects the arm. */
typedef struct _IOMMU_MAP_PHYSICAL_ADDRESS {
    IOMMU_MAP_PHYSICAL_ADDRESS_TYPE MapType;
    union {
        struct {
            PMDL Mdl;
        } Mdl;
        struct {
            PHYSICAL_ADDRESS Base;
            SIZE_T Size; /* bytes */
        } ContiguousRange;
        struct {
            PPFN_NUMBER PageFrame;
            SIZE_T NumberOfPages;
        } PfnArray;
    };
} IOMMU_MAP_PHYSICAL_ADDRESS, *PIOMMU_MAP_PHYSICAL_ADDRESS;

/* ---- Reserved logical ranges (V2) ---------------------------------------------------------
 * A token is a logical range whose page tables exist in advance, so mapping into it later
 * allocates nothing. The provider allocates the token (it may keep private fields after
 * these); the caller owns the segment records it passes to MapReservedLogicalRange. */
typedef struct _IOMMU_DMA_LOGICAL_ADDRESS_TOKEN {
    IOMMU_DMA_LOGICAL_ADDRESS LogicalAddressBase;
    SIZE_T Size; /* bytes */
} IOMMU_DMA_LOGICAL_ADDRESS_TOKEN, *PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN;

typedef struct _IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT {
    PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN OwningToken;
    SIZE_T Offset; /* bytes from the token's base */
    SIZE_T Size;   /* bytes */
} IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT, *PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT;

/* ---- State-change notifications (V2) ------------------------------------------------------
 * At registration the fields say what to watch; in a notification, what changed. */
typedef union _IOMMU_INTERFACE_STATE_CHANGE_FIELDS {
    struct {
        ULONG AvailableDomainTypes : 1;
        ULONG Reserved : 31;
    };
    ULONG AsULONG;
} IOMMU_INTERFACE_STATE_CHANGE_FIELDS, *PIOMMU_INTERFACE_STATE_CHANGE_FIELDS;

typedef struct _IOMMU_INTERFACE_STATE_CHANGE {
    IOMMU_INTERFACE_STATE_CHANGE_FIELDS PresentFields;
    ULONG AvailableDomainTypes; /* bit (1 << IOMMU_DMA_DOMAIN_TYPE) per usable type */
} IOMMU_INTERFACE_STATE_CHANGE, *PIOMMU_INTERFACE_STATE_CHANGE;

/* ---- DMA device creation (V2, V3) --------------------------------------------------------- */

/* The stream ids of an ACPI-described device (Arm SMMU). */
typedef struct _IOMMU_DEVICE_CREATION_CONFIGURATION_ACPI {
    UINT32 InputMappingBase;
    UINT32 MappingsCount;
} IOMMU_DEVICE_CREATION_CONFIGURATION_ACPI, *PIOMMU_DEVICE_CREATION_CONFIGURATION_ACPI;

typedef struct _IOMMU_DEVICE_CREATION_CONFIGURATION_PASID {
    IOMMU_PASID_CONFIGURATION_TYPE ConfigType;
    BOOLEAN SuppressPasidFaults; /* FALSE (default): PASID-tagged DMA faults are fatal and reported */
} IOMMU_DEVICE_CREATION_CONFIGURATION_PASID, *PIOMMU_DEVICE_CREATION_CONFIGURATION_PASID;

typedef struct _IOMMU_DEVICE_CREATION_CONFIGURATION {
    LIST_ENTRY NextConfiguration; /* further configurations for the same device */
    IOMMU_DEVICE_CREATION_CONFIGURATION_TYPE ConfigType;
    union {
        IOMMU_DEVICE_CREATION_CONFIGURATION_ACPI Acpi;
        PVOID DeviceId;
        IOMMU_DEVICE_CREATION_CONFIGURATION_PASID Pasid;
    };
} IOMMU_DEVICE_CREATION_CONFIGURATION, *PIOMMU_DEVICE_CREATION_CONFIGURATION;

/* What QueryDeviceInfo reports (V3). Later versions may append fields: callers pass their
 * buffer size, and at least IOMMU_DMA_DEVICE_INFORMATION_SIZE_MIN bytes. */
typedef struct _IOMMU_DMA_DEVICE_INFORMATION {
    BOOLEAN DefaultPasidEnabled;
    BOOLEAN PasidTaggedDmaEnabled;
    BOOLEAN PasidFaultsSuppressed;
} IOMMU_DMA_DEVICE_INFORMATION, *PIOMMU_DMA_DEVICE_INFORMATION;

#define IOMMU_DMA_DEVICE_INFORMATION_SIZE sizeof(IOMMU_DMA_DEVICE_INFORMATION)
#define IOMMU_DMA_DEVICE_INFORMATION_SIZE_MIN                        \
    (offsetof(IOMMU_DMA_DEVICE_INFORMATION, PasidFaultsSuppressed) + \
     sizeof(((IOMMU_DMA_DEVICE_INFORMATION *)0)->PasidFaultsSuppressed))

/* One input mapping (stream) id, as QueryInputMappings returns them (Arm only). */
typedef struct _INPUT_MAPPING_ELEMENT {
    ULONG InputMappingId;
} INPUT_MAPPING_ELEMENT, *PINPUT_MAPPING_ELEMENT;

/* ---- Fault reports (V1) -------------------------------------------------------------------
 * What a driver's fault handler receives; Type says which architecture's arm is valid. */
typedef struct _FAULT_INFORMATION_X64_FLAGS {
    ULONG FaultAddressValid : 1;
    ULONG Reserved : 31;
} FAULT_INFORMATION_X64_FLAGS, *PFAULT_INFORMATION_X64_FLAGS;

typedef struct _FAULT_INFORMATION_ARM64_FLAGS {
    ULONG WriteNotRead : 1;
    ULONG InstructionNotData : 1;
    ULONG Privileged : 1;
    ULONG FaultAddressValid : 1; /* FaultAddress may be trusted only when set */
    ULONG Reserved : 28;
} FAULT_INFORMATION_ARM64_FLAGS, *PFAULT_INFORMATION_ARM64_FLAGS;

typedef struct _FAULT_INFORMATION_X64 {
    PVOID DomainHandle;
    PVOID FaultAddress;
    FAULT_INFORMATION_X64_FLAGS Flags;
    FAULT_INFORMATION_X64_TYPE Type;
    ULONG64 IommuBaseAddress;
    ULONG PciSegment;
} FAULT_INFORMATION_X64, *PFAULT_INFORMATION_X64;

typedef struct _FAULT_INFORMATION_ARM64 {
    PVOID DomainHandle;
    PVOID FaultAddress;
    PDEVICE_OBJECT PhysicalDeviceObject;
    ULONG InputMappingId;
    FAULT_INFORMATION_ARM64_FLAGS Flags;
    FAULT_INFORMATION_ARM64_TYPE Type;
    ULONG64 IommuBaseAddress;
} FAULT_INFORMATION_ARM64, *PFAULT_INFORMATION_ARM64;

typedef struct _FAULT_INFORMATION {
    FAULT_INFORMATION_ARCH Type;
    BOOLEAN IsStage1;
    union {
        FAULT_INFORMATION_ARM64 Arm64;
        FAULT_INFORMATION_X64 X64;
    };
} FAULT_INFORMATION, *PFAULT_INFORMATION;

/* Implemented by the driver; called at PASSIVE_LEVEL for each fault of its device. */
typedef VOID NTAPI IOMMU_DEVICE_FAULT_HANDLER(PVOID Context, PFAULT_INFORMATION FaultInformation);
typedef IOMMU_DEVICE_FAULT_HANDLER *PIOMMU_DEVICE_FAULT_HANDLER;

typedef struct _DEVICE_FAULT_CONFIGURATION {
    PIOMMU_DEVICE_FAULT_HANDLER FaultHandler;
    PVOID FaultContext; /* the handler's Context */
} DEVICE_FAULT_CONFIGURATION, *PDEVICE_FAULT_CONFIGURATION;

/* ---- Caller-managed page tables (V1 ConfigureDomain) --------------------------------------
 * The roots and attributes a caller installs in a domain whose tables it owns. */
typedef struct _DOMAIN_CONFIGURATION_ARM64 {
    PHYSICAL_ADDRESS Ttbr0;
    PHYSICAL_ADDRESS Ttbr1;
    ULONG Mair0;
    ULONG Mair1;
    UCHAR InputSize0; /* input address width for Ttbr0 */
    UCHAR InputSize1; /* input address width for Ttbr1 */
    BOOLEAN CoherentTableWalks;
    BOOLEAN TranslationEnabled; /* FALSE: stage-1 translation is bypassed */
} DOMAIN_CONFIGURATION_ARM64, *PDOMAIN_CONFIGURATION_ARM64;

typedef struct _DOMAIN_CONFIGURATION_X64 {
    PHYSICAL_ADDRESS FirstLevelPageTableRoot;
    BOOLEAN TranslationEnabled;
} DOMAIN_CONFIGURATION_X64, *PDOMAIN_CONFIGURATION_X64;

typedef struct _DOMAIN_CONFIGURATION {
    DOMAIN_CONFIGURATION_ARCH Type;
    union {
        DOMAIN_CONFIGURATION_ARM64 Arm64;
        DOMAIN_CONFIGURATION_X64 X64;
    };
} DOMAIN_CONFIGURATION, *PDOMAIN_CONFIGURATION;

/* ---- V1 routines --------------------------------------------------------------------------
 * The legacy set, naming devices by device object and input mapping id (0 with a count of
 * 1 everywhere but Arm ACPI devices). Maps run at up to DISPATCH_LEVEL, FlushDomain at any
 * IRQL, domain and device changes at PASSIVE_LEVEL. */
typedef NTSTATUS NTAPI IOMMU_DOMAIN_CREATE(BOOLEAN OsManagedPageTable, PIOMMU_DMA_DOMAIN *DomainOut);
typedef IOMMU_DOMAIN_CREATE *PIOMMU_DOMAIN_CREATE;

typedef NTSTATUS NTAPI IOMMU_DOMAIN_DELETE(PIOMMU_DMA_DOMAIN Domain);
typedef IOMMU_DOMAIN_DELETE *PIOMMU_DOMAIN_DELETE;

typedef NTSTATUS NTAPI IOMMU_DOMAIN_ATTACH_DEVICE(PIOMMU_DMA_DOMAIN Domain, PDEVICE_OBJECT PhysicalDeviceObject,
                                                  ULONG InputMappingIdBase, ULONG MappingCount);
typedef IOMMU_DOMAIN_ATTACH_DEVICE *PIOMMU_DOMAIN_ATTACH_DEVICE;

typedef NTSTATUS NTAPI IOMMU_DOMAIN_DETACH_DEVICE(PIOMMU_DMA_DOMAIN Domain, PDEVICE_OBJECT PhysicalDeviceObject,
                                                  ULONG InputMappingId);
typedef IOMMU_DOMAIN_DETACH_DEVICE *PIOMMU_DOMAIN_DETACH_DEVICE;

typedef NTSTATUS NTAPI IOMMU_SET_DEVICE_FAULT_REPORTING(PDEVICE_OBJECT PhysicalDeviceObject,
                                                        ULONG InputMappingIdBase, BOOLEAN Enable,
                                                        PDEVICE_FAULT_CONFIGURATION FaultConfig);
typedef IOMMU_SET_DEVICE_FAULT_REPORTING *PIOMMU_SET_DEVICE_FAULT_REPORTING;

typedef NTSTATUS NTAPI IOMMU_DOMAIN_CONFIGURE(PIOMMU_DMA_DOMAIN Domain, PDOMAIN_CONFIGURATION Configuration);
typedef IOMMU_DOMAIN_CONFIGURE *PIOMMU_DOMAIN_CONFIGURE;

typedef NTSTATUS NTAPI IOMMU_FLUSH_DOMAIN(PIOMMU_DMA_DOMAIN Domain);
typedef IOMMU_FLUSH_DOMAIN *PIOMMU_FLUSH_DOMAIN;

typedef NTSTATUS NTAPI IOMMU_FLUSH_DOMAIN_VA_LIST(PIOMMU_DMA_DOMAIN Domain, BOOLEAN LastLevel, ULONG Number,
                                                  PVOID VaList);
typedef IOMMU_FLUSH_DOMAIN_VA_LIST *PIOMMU_FLUSH_DOMAIN_VA_LIST;

typedef NTSTATUS NTAPI IOMMU_QUERY_INPUT_MAPPINGS(PDEVICE_OBJECT PhysicalDeviceObject,
                                                  PINPUT_MAPPING_ELEMENT Buffer, ULONG BufferLength,
                                                  PULONG ReturnLength);
typedef IOMMU_QUERY_INPUT_MAPPINGS *PIOMMU_QUERY_INPUT_MAPPINGS;

typedef NTSTATUS NTAPI IOMMU_MAP_LOGICAL_RANGE(PIOMMU_DMA_DOMAIN Domain, ULONG Permissions, PMDL Mdl,
                                               ULONGLONG LogicalAddress);
typedef IOMMU_MAP_LOGICAL_RANGE *PIOMMU_MAP_LOGICAL_RANGE;

/* Also the unmap for V2's MapLogicalRangeEx: there is no Ex form. */
typedef NTSTATUS NTAPI IOMMU_UNMAP_LOGICAL_RANGE(PIOMMU_DMA_DOMAIN Domain, ULONGLONG LogicalAddress,
                                                 ULONGLONG NumberOfPages);
typedef IOMMU_UNMAP_LOGICAL_RANGE *PIOMMU_UNMAP_LOGICAL_RANGE;

typedef NTSTATUS NTAPI IOMMU_MAP_IDENTITY_RANGE(PIOMMU_DMA_DOMAIN Domain, ULONG Permissions, PMDL Mdl);
typedef IOMMU_MAP_IDENTITY_RANGE *PIOMMU_MAP_IDENTITY_RANGE;

typedef NTSTATUS NTAPI IOMMU_UNMAP_IDENTITY_RANGE(PIOMMU_DMA_DOMAIN Domain, PMDL Mdl);
typedef IOMMU_UNMAP_IDENTITY_RANGE *PIOMMU_UNMAP_IDENTITY_RANGE;

/* ---- V2 routines --------------------------------------------------------------------------
 * DMA devices as tokens, typed domains with an optional allocator, reserved ranges and
 * state-change callbacks. */

/* Implemented by the driver; called once at registration and on every watched change, at
 * PASSIVE_LEVEL. */
typedef VOID NTAPI IOMMU_INTERFACE_STATE_CHANGE_CALLBACK(PIOMMU_INTERFACE_STATE_CHANGE StateChange,
                                                         PVOID Context);
typedef IOMMU_INTERFACE_STATE_CHANGE_CALLBACK *PIOMMU_INTERFACE_STATE_CHANGE_CALLBACK;

typedef NTSTATUS NTAPI IOMMU_DOMAIN_CREATE_EX(IOMMU_DMA_DOMAIN_TYPE DomainType, IOMMU_DMA_DOMAIN_CREATION_FLAGS Flags,
                                              PIOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG LogicalAllocatorConfig,
                                              PIOMMU_DMA_RESERVED_REGION ReservedRegions,
                                              PIOMMU_DMA_DOMAIN *DomainOut);
typedef IOMMU_DOMAIN_CREATE_EX *PIOMMU_DOMAIN_CREATE_EX;

typedef NTSTATUS NTAPI IOMMU_DOMAIN_ATTACH_DEVICE_EX(PIOMMU_DMA_DOMAIN Domain, PIOMMU_DMA_DEVICE DmaDevice);
typedef IOMMU_DOMAIN_ATTACH_DEVICE_EX *PIOMMU_DOMAIN_ATTACH_DEVICE_EX;

typedef NTSTATUS NTAPI IOMMU_DOMAIN_DETACH_DEVICE_EX(PIOMMU_DMA_DEVICE DmaDevice);
typedef IOMMU_DOMAIN_DETACH_DEVICE_EX *PIOMMU_DOMAIN_DETACH_DEVICE_EX;

typedef NTSTATUS NTAPI IOMMU_MAP_LOGICAL_RANGE_EX(PIOMMU_DMA_DOMAIN Domain, ULONG Permissions,
                                                  PIOMMU_MAP_PHYSICAL_ADDRESS PhysicalAddressToMap,
                                                  PIOMMU_DMA_LOGICAL_ADDRESS ExplicitLogicalAddress,
                                                  PIOMMU_DMA_LOGICAL_ADDRESS MinLogicalAddress,
                                                  PIOMMU_DMA_LOGICAL_ADDRESS MaxLogicalAddress,
                                                  PIOMMU_DMA_LOGICAL_ADDRESS LogicalAddressOut);
typedef IOMMU_MAP_LOGICAL_RANGE_EX *PIOMMU_MAP_LOGICAL_RANGE_EX;

typedef NTSTATUS NTAPI IOMMU_MAP_IDENTITY_RANGE_EX(PIOMMU_DMA_DOMAIN Domain, ULONG Permissions,
                                                   PIOMMU_MAP_PHYSICAL_ADDRESS PhysicalAddressToMap);
typedef IOMMU_MAP_IDENTITY_RANGE_EX *PIOMMU_MAP_IDENTITY_RANGE_EX;

typedef NTSTATUS NTAPI IOMMU_UNMAP_IDENTITY_RANGE_EX(PIOMMU_DMA_DOMAIN Domain,
                                                     PIOMMU_MAP_PHYSICAL_ADDRESS MappedPhysicalAddress);
typedef IOMMU_UNMAP_IDENTITY_RANGE_EX *PIOMMU_UNMAP_IDENTITY_RANGE_EX;

typedef VOID NTAPI IOMMU_DEVICE_QUERY_DOMAIN_TYPES(PIOMMU_DMA_DEVICE DmaDevice, PULONG AvailableDomains);
typedef IOMMU_DEVICE_QUERY_DOMAIN_TYPES *PIOMMU_DEVICE_QUERY_DOMAIN_TYPES;

typedef NTSTATUS NTAPI IOMMU_REGISTER_INTERFACE_STATE_CHANGE_CALLBACK(
    PIOMMU_INTERFACE_STATE_CHANGE_CALLBACK StateChangeCallback, PVOID Context, PIOMMU_DMA_DEVICE DmaDevice,
    PIOMMU_INTERFACE_STATE_CHANGE_FIELDS StateFields);
typedef IOMMU_REGISTER_INTERFACE_STATE_CHANGE_CALLBACK *PIOMMU_REGISTER_INTERFACE_STATE_CHANGE_CALLBACK;

typedef NTSTATUS NTAPI IOMMU_UNREGISTER_INTERFACE_STATE_CHANGE_CALLBACK(
    PIOMMU_INTERFACE_STATE_CHANGE_CALLBACK StateChangeCallback, PIOMMU_DMA_DEVICE DmaDevice);
typedef IOMMU_UNREGISTER_INTERFACE_STATE_CHANGE_CALLBACK *PIOMMU_UNREGISTER_INTERFACE_STATE_CHANGE_CALLBACK;

typedef NTSTATUS NTAPI IOMMU_RESERVE_LOGICAL_ADDRESS_RANGE(PIOMMU_DMA_DOMAIN Domain, SIZE_T Size,
                                                           PIOMMU_DMA_LOGICAL_ADDRESS ExplicitLogicalAddress,
                                                           PIOMMU_DMA_LOGICAL_ADDRESS MinLogicalAddress,
                                                           PIOMMU_DMA_LOGICAL_ADDRESS MaxLogicalAddress,
                                                           PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN *LogicalAddressToken);
typedef IOMMU_RESERVE_LOGICAL_ADDRESS_RANGE *PIOMMU_RESERVE_LOGICAL_ADDRESS_RANGE;

typedef NTSTATUS NTAPI IOMMU_FREE_RESERVED_LOGICAL_ADDRESS_RANGE(PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN LogicalAddressToken);
typedef IOMMU_FREE_RESERVED_LOGICAL_ADDRESS_RANGE *PIOMMU_FREE_RESERVED_LOGICAL_ADDRESS_RANGE;

/* Map and unmap inside a token allocate and free nothing. */
typedef NTSTATUS NTAPI IOMMU_MAP_RESERVED_LOGICAL_RANGE(
    PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN LogicalAddressToken, SIZE_T Offset, ULONG Permissions,
    PIOMMU_MAP_PHYSICAL_ADDRESS PhysicalAddressToMap, PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT MappedSegment);
typedef IOMMU_MAP_RESERVED_LOGICAL_RANGE *PIOMMU_MAP_RESERVED_LOGICAL_RANGE;

typedef NTSTATUS NTAPI IOMMU_UNMAP_RESERVED_LOGICAL_RANGE(
    PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT MappedSegment);
typedef IOMMU_UNMAP_RESERVED_LOGICAL_RANGE *PIOMMU_UNMAP_RESERVED_LOGICAL_RANGE;

typedef NTSTATUS NTAPI IOMMU_DEVICE_CREATE(PDEVICE_OBJECT DeviceObject,
                                           PIOMMU_DEVICE_CREATION_CONFIGURATION DeviceConfig,
                                           PIOMMU_DMA_DEVICE *DmaDeviceOut);
typedef IOMMU_DEVICE_CREATE *PIOMMU_DEVICE_CREATE;

typedef NTSTATUS NTAPI IOMMU_DEVICE_DELETE(PIOMMU_DMA_DEVICE DmaDevice);
typedef IOMMU_DEVICE_DELETE *PIOMMU_DEVICE_DELETE;

/* Not implemented in Windows: always STATUS_NOT_IMPLEMENTED. */
typedef NTSTATUS NTAPI IOMMU_SET_DEVICE_FAULT_REPORTING_EX(PIOMMU_DMA_DEVICE DmaDevice, ULONG InputMappingIdBase,
                                                           BOOLEAN Enable, PDEVICE_FAULT_CONFIGURATION FaultConfig);
typedef IOMMU_SET_DEVICE_FAULT_REPORTING_EX *PIOMMU_SET_DEVICE_FAULT_REPORTING_EX;

/* ---- V3 routines --------------------------------------------------------------------------
 * PASID sub-devices and the device information query; all at PASSIVE_LEVEL. */
typedef NTSTATUS NTAPI IOMMU_PASID_DEVICE_CREATE(PIOMMU_DMA_DEVICE DmaDevice, PIOMMU_DMA_PASID_DEVICE *PasidDeviceOut,
                                                 PULONG AsidOut);
typedef IOMMU_PASID_DEVICE_CREATE *PIOMMU_PASID_DEVICE_CREATE;

typedef NTSTATUS NTAPI IOMMU_PASID_DEVICE_DELETE(PIOMMU_DMA_PASID_DEVICE PasidDevice);
typedef IOMMU_PASID_DEVICE_DELETE *PIOMMU_PASID_DEVICE_DELETE;

typedef NTSTATUS NTAPI IOMMU_DOMAIN_ATTACH_PASID_DEVICE(PIOMMU_DMA_DOMAIN Domain, PIOMMU_DMA_PASID_DEVICE PasidDevice);
typedef IOMMU_DOMAIN_ATTACH_PASID_DEVICE *PIOMMU_DOMAIN_ATTACH_PASID_DEVICE;

typedef NTSTATUS NTAPI IOMMU_DOMAIN_DETACH_PASID_DEVICE(PIOMMU_DMA_PASID_DEVICE PasidDevice);
typedef IOMMU_DOMAIN_DETACH_PASID_DEVICE *PIOMMU_DOMAIN_DETACH_PASID_DEVICE;

typedef NTSTATUS NTAPI IOMMU_DEVICE_QUERY_INFORMATION(PIOMMU_DMA_DEVICE DmaDevice, ULONG Size, PULONG BytesWritten,
                                                      PIOMMU_DMA_DEVICE_INFORMATION Buffer);
typedef IOMMU_DEVICE_QUERY_INFORMATION *PIOMMU_DEVICE_QUERY_INFORMATION;

/* ---- Routine tables ------------------------------------------------------------------------
 * What the retrieval routines fill in. V1 is the legacy table without its Version field;
 * V2 replaces seven V1 routines by their Ex forms and adds nine; V3 is V2 with five more
 * appended, so a V3 table can be read as a V2 one. */
typedef struct _DMA_IOMMU_INTERFACE {
    ULONG Version;
    PIOMMU_DOMAIN_CREATE CreateDomain;
    PIOMMU_DOMAIN_DELETE DeleteDomain;
    PIOMMU_DOMAIN_ATTACH_DEVICE AttachDevice;
    PIOMMU_DOMAIN_DETACH_DEVICE DetachDevice;
    PIOMMU_FLUSH_DOMAIN FlushDomain;
    PIOMMU_FLUSH_DOMAIN_VA_LIST FlushDomainByVaList;
    PIOMMU_QUERY_INPUT_MAPPINGS QueryInputMappings;
    PIOMMU_MAP_LOGICAL_RANGE MapLogicalRange;
    PIOMMU_UNMAP_LOGICAL_RANGE UnmapLogicalRange;
    PIOMMU_MAP_IDENTITY_RANGE MapIdentityRange;
    PIOMMU_UNMAP_IDENTITY_RANGE UnmapIdentityRange;
    PIOMMU_SET_DEVICE_FAULT_REPORTING SetDeviceFaultReporting;
    PIOMMU_DOMAIN_CONFIGURE ConfigureDomain; /* last, whatever the documentation's list says */
} DMA_IOMMU_INTERFACE, *PDMA_IOMMU_INTERFACE;

typedef struct _DMA_IOMMU_INTERFACE_V1 {
    PIOMMU_DOMAIN_CREATE CreateDomain;
    PIOMMU_DOMAIN_DELETE DeleteDomain;
    PIOMMU_DOMAIN_ATTACH_DEVICE AttachDevice;
    PIOMMU_DOMAIN_DETACH_DEVICE DetachDevice;
    PIOMMU_FLUSH_DOMAIN FlushDomain;
    PIOMMU_FLUSH_DOMAIN_VA_LIST FlushDomainByVaList;
    PIOMMU_QUERY_INPUT_MAPPINGS QueryInputMappings;
    PIOMMU_MAP_LOGICAL_RANGE MapLogicalRange;
    PIOMMU_UNMAP_LOGICAL_RANGE UnmapLogicalRange;
    PIOMMU_MAP_IDENTITY_RANGE MapIdentityRange;
    PIOMMU_UNMAP_IDENTITY_RANGE UnmapIdentityRange;
    PIOMMU_SET_DEVICE_FAULT_REPORTING SetDeviceFaultReporting;
    PIOMMU_DOMAIN_CONFIGURE ConfigureDomain;
} DMA_IOMMU_INTERFACE_V1, *PDMA_IOMMU_INTERFACE_V1;

typedef struct _DMA_IOMMU_INTERFACE_V2 {
    PIOMMU_DOMAIN_CREATE_EX CreateDomainEx;
    PIOMMU_DOMAIN_DELETE DeleteDomain;
    PIOMMU_DOMAIN_ATTACH_DEVICE_EX AttachDeviceEx;
    PIOMMU_DOMAIN_DETACH_DEVICE_EX DetachDeviceEx;
    PIOMMU_FLUSH_DOMAIN FlushDomain;
    PIOMMU_FLUSH_DOMAIN_VA_LIST FlushDomainByVaList;
    PIOMMU_QUERY_INPUT_MAPPINGS QueryInputMappings;
    PIOMMU_MAP_LOGICAL_RANGE_EX MapLogicalRangeEx;
    PIOMMU_UNMAP_LOGICAL_RANGE UnmapLogicalRange;
    PIOMMU_MAP_IDENTITY_RANGE_EX MapIdentityRangeEx;
    PIOMMU_UNMAP_IDENTITY_RANGE_EX UnmapIdentityRangeEx;
    PIOMMU_SET_DEVICE_FAULT_REPORTING_EX SetDeviceFaultReportingEx;
    PIOMMU_DOMAIN_CONFIGURE ConfigureDomain;
    PIOMMU_DEVICE_QUERY_DOMAIN_TYPES QueryAvailableDomainTypes;
    PIOMMU_REGISTER_INTERFACE_STATE_CHANGE_CALLBACK RegisterInterfaceStateChangeCallback;
    PIOMMU_UNREGISTER_INTERFACE_STATE_CHANGE_CALLBACK UnregisterInterfaceStateChangeCallback;
    PIOMMU_RESERVE_LOGICAL_ADDRESS_RANGE ReserveLogicalAddressRange;
    PIOMMU_FREE_RESERVED_LOGICAL_ADDRESS_RANGE FreeReservedLogicalAddressRange;
    PIOMMU_MAP_RESERVED_LOGICAL_RANGE MapReservedLogicalRange;
    PIOMMU_UNMAP_RESERVED_LOGICAL_RANGE UnmapReservedLogicalRange;
    PIOMMU_DEVICE_CREATE CreateDevice;
    PIOMMU_DEVICE_DELETE DeleteDevice;
} DMA_IOMMU_INTERFACE_V2, *PDMA_IOMMU_INTERFACE_V2;

typedef struct _DMA_IOMMU_INTERFACE_V3 {
    PIOMMU_DOMAIN_CREATE_EX CreateDomainEx;
    PIOMMU_DOMAIN_DELETE DeleteDomain;
    PIOMMU_DOMAIN_ATTACH_DEVICE_EX AttachDeviceEx;
    PIOMMU_DOMAIN_DETACH_DEVICE_EX DetachDeviceEx;
    PIOMMU_FLUSH_DOMAIN FlushDomain;
    PIOMMU_FLUSH_DOMAIN_VA_LIST FlushDomainByVaList;
    PIOMMU_QUERY_INPUT_MAPPINGS QueryInputMappings;
    PIOMMU_MAP_LOGICAL_RANGE_EX MapLogicalRangeEx;
    PIOMMU_UNMAP_LOGICAL_RANGE UnmapLogicalRange;
    PIOMMU_MAP_IDENTITY_RANGE_EX MapIdentityRangeEx;
    PIOMMU_UNMAP_IDENTITY_RANGE_EX UnmapIdentityRangeEx;
    PIOMMU_SET_DEVICE_FAULT_REPORTING_EX SetDeviceFaultReportingEx;
    PIOMMU_DOMAIN_CONFIGURE ConfigureDomain;
    PIOMMU_DEVICE_QUERY_DOMAIN_TYPES QueryAvailableDomainTypes;
    PIOMMU_REGISTER_INTERFACE_STATE_CHANGE_CALLBACK RegisterInterfaceStateChangeCallback;
    PIOMMU_UNREGISTER_INTERFACE_STATE_CHANGE_CALLBACK UnregisterInterfaceStateChangeCallback;
    PIOMMU_RESERVE_LOGICAL_ADDRESS_RANGE ReserveLogicalAddressRange;
    PIOMMU_FREE_RESERVED_LOGICAL_ADDRESS_RANGE FreeReservedLogicalAddressRange;
    PIOMMU_MAP_RESERVED_LOGICAL_RANGE MapReservedLogicalRange;
    PIOMMU_UNMAP_RESERVED_LOGICAL_RANGE UnmapReservedLogicalRange;
    PIOMMU_DEVICE_CREATE CreateDevice;
    PIOMMU_DEVICE_DELETE DeleteDevice;
    PIOMMU_PASID_DEVICE_CREATE CreatePasidDevice;
    PIOMMU_PASID_DEVICE_DELETE DeletePasidDevice;
    PIOMMU_DOMAIN_ATTACH_PASID_DEVICE AttachPasidDevice;
    PIOMMU_DOMAIN_DETACH_PASID_DEVICE DetachPasidDevice;
    PIOMMU_DEVICE_QUERY_INFORMATION QueryDeviceInfo;
} DMA_IOMMU_INTERFACE_V3, *PDMA_IOMMU_INTERFACE_V3;

/* Version says which table is valid and Size how many bytes of the structure are in use;
 * the provider sets both, whatever the caller put there. */
typedef struct _DMA_IOMMU_INTERFACE_EX {
    SIZE_T Size;
    ULONG Version;
    union {
        DMA_IOMMU_INTERFACE_V1 V1;
        DMA_IOMMU_INTERFACE_V2 V2;
        DMA_IOMMU_INTERFACE_V3 V3;
    };
} DMA_IOMMU_INTERFACE_EX, *PDMA_IOMMU_INTERFACE_EX;

/* The size of DMA_IOMMU_INTERFACE_EX as a caller built for version n declares it. A driver
 * built against an older wdm.h has a smaller structure, so the provider writes no more
 * than the size of the version asked for. */
#define DMA_IOMMU_INTERFACE_EX_V1_SIZE (offsetof(DMA_IOMMU_INTERFACE_EX, V1) + sizeof(DMA_IOMMU_INTERFACE_V1))
#define DMA_IOMMU_INTERFACE_EX_V2_SIZE (offsetof(DMA_IOMMU_INTERFACE_EX, V2) + sizeof(DMA_IOMMU_INTERFACE_V2))
#define DMA_IOMMU_INTERFACE_EX_V3_SIZE (offsetof(DMA_IOMMU_INTERFACE_EX, V3) + sizeof(DMA_IOMMU_INTERFACE_V3))

/* ---- Retrieval ----------------------------------------------------------------------------
 * How a driver gets the routine tables, at PASSIVE_LEVEL. IoGetIommuInterface gives the
 * legacy table (Version must be DMA_IOMMU_INTERFACE_VERSION_1); IoGetIommuInterfaceEx gives
 * the table of version 1, 2 or 3, with Flags 0. Implemented by the project's provider. */
NTSTATUS NTAPI IoGetIommuInterface(ULONG Version, PDMA_IOMMU_INTERFACE InterfaceOut);
NTSTATUS NTAPI IoGetIommuInterfaceEx(ULONG Version, ULONGLONG Flags, PDMA_IOMMU_INTERFACE_EX InterfaceOut);

#endif /* DDI_WDM_IOMMU_H */
