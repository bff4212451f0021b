/* The guest SDK's sample driver: the smallest complete payload that uses the hypervisor's wdm
 * DMA IOMMU interface. Copy it to start your own (docs/guest-sdk.md).
 *
 * It finds QEMU's edu device through the UEFI PCI I/O protocol, gets the V2 and V1 interface
 * tables through the DDI protocol, creates a DMA device and a Translate domain, attaches,
 * maps one page, has edu copy 256 bytes in from the mapped IOVA and back out to another
 * offset of it, checks the bytes, unmaps, then makes edu write to the unmapped IOVA: the DMA
 * faults and the fault reaches the V1 handler registered with SetDeviceFaultReporting. Every
 * step prints one "sample:" line (Print goes to COM1: serial.log); efi_main returns
 * EFI_SUCCESS only if every step worked, and that status is the hypervisor's verdict. */
#include <efi.h>
#include <efilib.h>

#include "iommu_hv/ddi_protocol.h"

/* QEMU's edu (docs/specs/edu.txt in QEMU): BAR 0 registers and its 4 KiB buffer. */
#define EDU_ID 0x11e81234u /* device << 16 | vendor */
#define EDU_DMA_SRC 0x80
#define EDU_DMA_DST 0x88
#define EDU_DMA_COUNT 0x90
#define EDU_DMA_CMD 0x98
#define EDU_CMD_RUN 0x1
#define EDU_CMD_TO_RAM 0x2 /* device buffer -> RAM; clear: RAM -> device buffer */
#define EDU_BUFFER 0x40000 /* the buffer's address on the device's side */
#define LEN 256            /* per transfer: edu takes at most 4095 bytes */

static int failed;

static void step(BOOLEAN ok, CHAR16 *what)
{
    Print(L"sample: %s: %s\n", ok ? L"ok" : L"FAILED", what);
    if (!ok)
        failed++;
}

/* ---- edu through its PCI I/O protocol ---- */

static EFI_PCI_IO_PROTOCOL *find_edu(UINTN *seg, UINTN *bus, UINTN *dev, UINTN *fn)
{
    UINTN n = 0;
    EFI_HANDLE *handles = NULL;
    EFI_PCI_IO_PROTOCOL *found = NULL;
    if (EFI_ERROR(uefi_call_wrapper(BS->LocateHandleBuffer, 5, ByProtocol, &PciIoProtocol, NULL, &n, &handles)))
        return NULL;
    for (UINTN i = 0; i < n && !found; i++) {
        EFI_PCI_IO_PROTOCOL *pci = NULL;
        UINT32 id = 0;
        if (EFI_ERROR(uefi_call_wrapper(BS->HandleProtocol, 3, handles[i], &PciIoProtocol, (void **)&pci)) ||
            EFI_ERROR(uefi_call_wrapper(pci->Pci.Read, 5, pci, EfiPciIoWidthUint32, 0, 1, &id)) || id != EDU_ID)
            continue;
        uefi_call_wrapper(pci->GetLocation, 5, pci, seg, bus, dev, fn);
        /* Memory decoding for BAR 0 and bus mastering for its DMA. */
        uefi_call_wrapper(pci->Attributes, 4, pci, EfiPciIoAttributeOperationEnable,
                          EFI_PCI_IO_ATTRIBUTE_MEMORY | EFI_PCI_IO_ATTRIBUTE_BUS_MASTER, NULL);
        found = pci;
    }
    FreePool(handles);
    return found;
}

static void edu_write(EFI_PCI_IO_PROTOCOL *pci, UINT64 reg, UINT64 value)
{
    uefi_call_wrapper(pci->Mem.Write, 6, pci, EfiPciIoWidthUint64, 0, reg, 1, &value);
}

/* One transfer of len bytes between edu's buffer and iova; to_ram: from the device to iova.
 * edu starts it on a timer (about 100 ms of QEMU's time); wait up to 2 s. A faulting
 * transfer still completes: edu reports no error, the IOMMU does. */
static BOOLEAN edu_dma(EFI_PCI_IO_PROTOCOL *pci, UINT64 iova, UINT32 len, BOOLEAN to_ram)
{
    edu_write(pci, EDU_DMA_SRC, to_ram ? EDU_BUFFER : iova);
    edu_write(pci, EDU_DMA_DST, to_ram ? iova : EDU_BUFFER);
    edu_write(pci, EDU_DMA_COUNT, len);
    UINT32 cmd = EDU_CMD_RUN | (to_ram ? EDU_CMD_TO_RAM : 0);
    uefi_call_wrapper(pci->Mem.Write, 6, pci, EfiPciIoWidthUint32, 0, (UINT64)EDU_DMA_CMD, 1, &cmd);
    for (int ms = 0; ms < 2000; ms++) {
        uefi_call_wrapper(pci->Mem.Read, 6, pci, EfiPciIoWidthUint32, 0, (UINT64)EDU_DMA_CMD, 1, &cmd);
        if (!(cmd & EDU_CMD_RUN))
            return TRUE;
        uefi_call_wrapper(BS->Stall, 1, 1000);
    }
    return FALSE;
}

/* ---- the V1 fault handler (ms_abi, as NTAPI says) ---- */

static volatile int faults;
static FAULT_INFORMATION last_fault;

static VOID NTAPI on_fault(PVOID context, PFAULT_INFORMATION info)
{
    (void)context;
    last_fault = *info;
    faults++;
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
    InitializeLib(image, systab);
    Print(L"sample: the guest SDK's edu DMA driver\n");

    /* 1. The DDI protocol, and through it the V2 and V1 tables. */
    EFI_GUID guid = IOMMU_HV_DDI_PROTOCOL_GUID;
    struct iommu_hv_ddi_protocol *ddi = NULL;
    DMA_IOMMU_INTERFACE_EX ex;
    DMA_IOMMU_INTERFACE v1;
    BOOLEAN ok = !EFI_ERROR(uefi_call_wrapper(BS->LocateProtocol, 3, &guid, NULL, (void **)&ddi)) && ddi &&
                 ddi->revision == IOMMU_HV_DDI_PROTOCOL_REVISION && ddi->get_interface_ex(2, 0, &ex) == STATUS_SUCCESS &&
                 ddi->get_interface(1, &v1) == STATUS_SUCCESS;
    step(ok, L"DDI protocol found; IoGetIommuInterfaceEx(2) and IoGetIommuInterface(1) through it");
    if (!ok)
        return EFI_NOT_FOUND;
    DMA_IOMMU_INTERFACE_V2 *v2 = &ex.V2;

    /* 2. edu on PCI, and the DEVICE_OBJECT that names it: its PCI location. */
    UINTN seg = 0, bus = 0, dev = 0, fn = 0;
    EFI_PCI_IO_PROTOCOL *pci = find_edu(&seg, &bus, &dev, &fn);
    Print(L"sample: %s: edu found at %04x:%02x:%02x.%x\n", pci ? L"ok" : L"FAILED", seg, bus, dev, fn);
    if (!pci)
        return EFI_NOT_FOUND;
    DEVICE_OBJECT pdo;
    IommuPciDeviceObject(&pdo, (USHORT)seg, (UCHAR)bus, (UCHAR)dev, (UCHAR)fn);

    /* 3. A DMA device, a Translate domain, attach; V1 fault reporting (V2 has none). */
    PIOMMU_DMA_DEVICE dma_dev = NULL;
    PIOMMU_DMA_DOMAIN domain = NULL;
    IOMMU_DMA_DOMAIN_CREATION_FLAGS flags = {.AsUlonglong = 0};
    IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG alloc = {.LogicalAllocatorType = IommuDmaLogicalAllocatorBuddy,
                                                .BuddyAllocatorConfig = {.AddressWidth = 39}};
    DEVICE_FAULT_CONFIGURATION fault_config = {on_fault, NULL};
    NTSTATUS st = v2->CreateDevice(&pdo, NULL, &dma_dev);
    step(NT_SUCCESS(st), L"CreateDevice");
    if (NT_SUCCESS(st)) {
        st = v2->CreateDomainEx(DomainTypeTranslate, flags, &alloc, NULL, &domain);
        step(NT_SUCCESS(st), L"CreateDomainEx(DomainTypeTranslate, Buddy allocator)");
    }
    if (NT_SUCCESS(st)) {
        st = v2->AttachDeviceEx(domain, dma_dev);
        step(NT_SUCCESS(st), L"AttachDeviceEx");
    }
    if (NT_SUCCESS(st)) {
        st = v1.SetDeviceFaultReporting(&pdo, 0, TRUE, &fault_config);
        step(NT_SUCCESS(st), L"SetDeviceFaultReporting (V1) with the DEVICE_OBJECT");
    }

    /* 4. One page of RAM mapped read/write; edu copies its first 256 bytes in and writes
     *    them back at offset 0x800, all through the IOVA. */
    EFI_PHYSICAL_ADDRESS pa = 0xffffffff;
    UINT8 *page = NULL;
    IOMMU_DMA_LOGICAL_ADDRESS iova = 0;
    BOOLEAN mapped = FALSE;
    if (NT_SUCCESS(st) &&
        !EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiBootServicesData, 1, &pa))) {
        page = (UINT8 *)(UINTN)pa;
        IOMMU_MAP_PHYSICAL_ADDRESS range = {.MapType = MapPhysicalAddressTypeContiguousRange};
        range.ContiguousRange.Base.QuadPart = (LONGLONG)pa;
        range.ContiguousRange.Size = EFI_PAGE_SIZE;
        st = v2->MapLogicalRangeEx(domain, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, &range, NULL, NULL, NULL, &iova);
        mapped = NT_SUCCESS(st);
        Print(L"sample: %s: MapLogicalRangeEx: RAM 0x%lx at IOVA 0x%lx\n", mapped ? L"ok" : L"FAILED", pa, iova);
        if (!mapped)
            failed++;
    } else {
        step(FALSE, L"a page of RAM for DMA");
    }
    if (mapped) {
        for (int i = 0; i < EFI_PAGE_SIZE; i++)
            page[i] = i < LEN ? (UINT8)(i * 7 + 1) : 0;
        ok = edu_dma(pci, iova, LEN, FALSE) && edu_dma(pci, iova + 0x800, LEN, TRUE);
        for (int i = 0; ok && i < LEN; i++)
            ok = page[0x800 + i] == page[i];
        step(ok && faults == 0, L"edu DMA in from the IOVA and out to IOVA+0x800: the 256 bytes arrived");

        /* 5. Unmapped: edu's write to the IOVA faults, and the V1 handler gets it. */
        st = v2->UnmapLogicalRange(domain, iova, 1);
        step(NT_SUCCESS(st), L"UnmapLogicalRange");
        page[0] = 0x5a;
        ok = NT_SUCCESS(st) && edu_dma(pci, iova, LEN, TRUE);
        for (int i = 0; i < 100 && faults == 0; i++) { /* the shim's timer delivers it; poll hurries it */
            ddi->poll();
            uefi_call_wrapper(BS->Stall, 1, 1000);
        }
        ok = ok && faults == 1 && (UINT64)(UINTN)last_fault.X64.FaultAddress == iova && page[0] == 0x5a;
        Print(L"sample: %s: DMA to the unmapped IOVA 0x%lx faulted; handler called %d time(s), address 0x%lx, "
              L"type %d; memory unchanged\n",
              ok ? L"ok" : L"FAILED", iova, faults, (UINT64)(UINTN)last_fault.X64.FaultAddress,
              (int)last_fault.X64.Type);
        if (!ok)
            failed++;
    }

    /* 6. Give everything back. */
    if (domain && dma_dev) {
        NTSTATUS r = v1.SetDeviceFaultReporting(&pdo, 0, FALSE, NULL);
        NTSTATUS d = v2->DetachDeviceEx(dma_dev);
        step(NT_SUCCESS(r) && NT_SUCCESS(d), L"fault reporting off, DetachDeviceEx");
    }
    if (domain)
        step(NT_SUCCESS(v2->DeleteDomain(domain)), L"DeleteDomain");
    if (dma_dev)
        step(NT_SUCCESS(v2->DeleteDevice(dma_dev)), L"DeleteDevice");
    if (page)
        uefi_call_wrapper(BS->FreePages, 2, pa, 1);

    Print(L"sample: %s (%d step(s) failed, %ld hypercalls)\n", failed ? L"FAILED" : L"PASS", failed,
          ddi->hypercalls());
    return failed ? EFI_ABORTED : EFI_SUCCESS;
}
