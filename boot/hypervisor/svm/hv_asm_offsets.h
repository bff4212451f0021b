/* Offsets hv_entry.S uses into C structures: defined once here, included by the assembly
 * and checked against the structures by _Static_assert in boot/hypervisor/hv.h (struct hv_cpu) and
 * boot/hypervisor/svm/svm.h (struct vmcb), so a change to either layout fails the build. Only #defines:
 * the assembler reads this file too. */
#ifndef BOOT_HV_ASM_OFFSETS_H
#define BOOT_HV_ASM_OFFSETS_H

#define CPU_VMCB 0
#define CPU_VMCB_PA 8
#define CPU_STACK_TOP 16
#define CPU_RESUME 24
#define CPU_HOST_STATE_PA 32

#define VMCB_SAVE 0x400
#define VMCB_RFLAGS (VMCB_SAVE + 0x170)
#define VMCB_RIP (VMCB_SAVE + 0x178)
#define VMCB_RSP (VMCB_SAVE + 0x1D8)
#define VMCB_RAX (VMCB_SAVE + 0x1F8)

#endif
