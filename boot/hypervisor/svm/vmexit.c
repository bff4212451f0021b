/* See boot/hypervisor/svm/vmexit.h. */
#include "hypervisor/svm/vmexit.h"

#include "ddi/hypercall.h"
#include "iommu/lock.h"
#include "hypervisor/svm/mmio_decode.h"

/* Instruction lengths: TCG gives no next-RIP, and these have one encoding each. */
#define LEN_VMMCALL 3 /* 0F 01 D9 */
#define LEN_CPUID 2   /* 0F A2 */
#define LEN_MSR 2     /* 0F 32 / 0F 30 */

#define EFER_LMA (1ull << 10)
/* SCE, LME, LMA, NXE, SVME, LMSLE, FFXSR, TCE: anything else #GPs on hardware. */
#define EFER_VALID 0xFD01ull

static void inject(struct vmcb *vmcb, struct hv_vcpu *v, unsigned vector, bool error_code)
{
    vmcb->control.event_inject = vector | SVM_EVENT_EXCEPTION | SVM_EVENT_VALID | (error_code ? SVM_EVENT_ERROR_VALID : 0);
    v->injected++;
}

static void set_edx_eax(struct vmcb *vmcb, struct guest_regs *regs, uint64_t value)
{
    vmcb->save.rax = (uint32_t)value;
    regs->rdx = value >> 32;
}

static void do_cpuid(struct vmcb *vmcb, struct guest_regs *regs, const struct hv_exit_ops *ops)
{
    uint32_t leaf = (uint32_t)vmcb->save.rax, subleaf = (uint32_t)regs->rcx, r[4] = {0};
    if (leaf == HV_CPUID_SIGNATURE_LEAF) {
        static const char signature[12] = "iommu-hv-ddi";
        r[0] = HV_CPUID_MAX_LEAF;
        __builtin_memcpy(&r[1], signature, 12); /* EBX, ECX, EDX */
    } else if (leaf == HV_CPUID_VERSION_LEAF) {
        r[0] = HC_ABI_VERSION;
    } else if (leaf == HV_CPUID_REGION_LEAF) {
        /* Where the guest must not look, so that a guest can check it cannot (its memory
         * map shows the region reserved anyway: not a secret). */
        r[0] = (uint32_t)ops->region_base, r[1] = (uint32_t)(ops->region_base >> 32);
        r[2] = (uint32_t)ops->region_bytes, r[3] = (uint32_t)(ops->region_bytes >> 32);
    } else if (leaf > HV_CPUID_MAX_LEAF && leaf <= 0x400000FFu) {
        /* nothing there */
    } else {
        ops->cpuid(ops->ctx, leaf, subleaf, r);
        /* No machine-check architecture for the guest (MCE, MCA): the banks are the
         * platform's, their MSRs are not on the pass list, and #MC is the host's. */
        const uint32_t machine_check = 1u << 7 | 1u << 14;
        if (leaf == 1) {
            r[2] = (r[2] | 1u << 31) & ~(1u << 21); /* a hypervisor is present; no x2APIC (see do_msr) */
            r[3] &= ~machine_check;
        } else if (leaf == 0x80000001u) {
            r[2] &= ~(1u << 2); /* no SVM for the guest */
            r[3] &= ~machine_check;
        }
        else if (leaf == 0x8000000Au)
            r[0] = r[1] = r[2] = r[3] = 0;
    }
    vmcb->save.rax = r[0];
    regs->rbx = r[1];
    regs->rcx = r[2];
    regs->rdx = r[3];
    vmcb->save.rip += LEN_CPUID;
}

/* ---- MSRs: deny by default ---- */

/* What the guest may read (write false) or also write without an exit. Each entry's
 * reason is in docs/security.md; in short: state that is the guest's own and that the CPU
 * switches with the VMCB (SYSENTER, the syscall MSRs, FS/GS bases), memory-type controls
 * that cannot grant access to anything (MTRRs, PAT: with nested paging every access is
 * still checked against the nested tables), the CPU's own timer, whose interrupt goes
 * through the LVT the hypervisor filters, speculation controls that only restrict the CPU,
 * and read-only facts. */
static const struct msr_pass {
    uint32_t first, last;
    bool write;
} msr_passes[] = {
    {0x00000010u, 0x00000010u, false}, /* TSC: read (a write would move the host's clock) */
    {0x0000001Bu, 0x0000001Bu, false}, /* IA32_APIC_BASE: read (writes checked, do_msr) */
    {0x00000048u, 0x00000049u, true},  /* SPEC_CTRL, PRED_CMD */
    {0x000000E7u, 0x000000E8u, false}, /* MPERF, APERF */
    {0x000000FEu, 0x000000FEu, false}, /* MTRRCAP */
    {0x00000174u, 0x00000176u, true},  /* SYSENTER_CS, _ESP, _EIP */
    {0x00000200u, 0x0000020Fu, true},  /* variable-range MTRRs */
    {0x00000250u, 0x00000250u, true},  /* fixed-range MTRRs */
    {0x00000258u, 0x00000259u, true},
    {0x00000268u, 0x0000026Fu, true},
    {0x00000277u, 0x00000277u, true},  /* PAT */
    {0x000002FFu, 0x000002FFu, true},  /* MTRR default type */
    {0x000006E0u, 0x000006E0u, true},  /* TSC_DEADLINE */
    {0xC0000081u, 0xC0000084u, true},  /* STAR, LSTAR, CSTAR, SFMASK */
    {0xC0000100u, 0xC0000103u, true},  /* FS_BASE, GS_BASE, KERNEL_GS_BASE, TSC_AUX */
};

bool hv_msr_passes(uint32_t msr, bool write)
{
    for (unsigned i = 0; i < sizeof msr_passes / sizeof msr_passes[0]; i++)
        if (msr >= msr_passes[i].first && msr <= msr_passes[i].last)
            return !write || msr_passes[i].write;
    return false;
}

void hv_msrpm_build(uint8_t *msrpm)
{
    /* Three 2 KiB blocks for the MSR ranges at 0, 0xC0000000 and 0xC0010000, two bits per
     * MSR (read, write); MSRs outside them always exit. */
    static const uint32_t block_base[3] = {0x00000000u, 0xC0000000u, 0xC0010000u};
    for (unsigned i = 0; i < MSRPM_BYTES; i++)
        msrpm[i] = 0xFF;
    for (unsigned b = 0; b < 3; b++)
        for (uint32_t n = 0; n < 0x2000u; n++) {
            uint32_t bit = b * 0x4000u + n * 2;
            if (hv_msr_passes(block_base[b] + n, false))
                msrpm[bit / 8] &= (uint8_t)~(1u << (bit % 8));
            if (hv_msr_passes(block_base[b] + n, true))
                msrpm[(bit + 1) / 8] &= (uint8_t)~(1u << ((bit + 1) % 8));
        }
}

static void refuse(struct hv_vcpu *v, enum hv_refusal kind, uint64_t what, uint64_t value)
{
    v->refusals++;
    v->refused = kind;
    v->refused_what = what;
    v->refused_value = value;
}

static void do_msr(struct vmcb *vmcb, struct guest_regs *regs, struct hv_vcpu *v, const struct hv_exit_ops *ops)
{
    bool write = vmcb->control.exit_info_1 & 1;
    uint32_t msr = (uint32_t)regs->rcx;
    uint64_t value = (uint32_t)vmcb->save.rax | regs->rdx << 32;
    v->msr_exits++;
    if (msr == MSR_VM_CR && !write) {
        /* The guest has no SVM (CPUID hides it): it reads it as disabled and locked. */
        set_edx_eax(vmcb, regs, VM_CR_LOCK | VM_CR_SVMDIS);
        vmcb->save.rip += LEN_MSR;
        return;
    }
    if (msr == MSR_APIC_BASE) {
        /* The APIC stays where the nested tables leave it out, and in xAPIC mode, whose ICR
         * is emulated: x2APIC's ICR is an MSR INIT would pass through. Only writes are
         * intercepted, and one may only say the same again (bit 8, "this is the BSP", is
         * the CPU's own and read-only). */
        if (!write || (value & ~(1ull << 8)) != ops->apic_base_msr) {
            refuse(v, write ? HV_REFUSED_MSR_WRITE : HV_REFUSED_MSR_READ, msr, value);
            inject(vmcb, v, X86_GP, true);
            return;
        }
        vmcb->save.rip += LEN_MSR; /* the same value: nothing to change */
        return;
    }
    if (msr != MSR_EFER) {
        /* Not on the pass-through list, and nothing the hypervisor emulates: the SVM MSRs
         * (VM_HSAVE_PA would hand the guest the host's state at the next exit), SMM and
         * chipset configuration, writes to the TSC, x2APIC, and every MSR not listed. */
        refuse(v, write ? HV_REFUSED_MSR_WRITE : HV_REFUSED_MSR_READ, msr, value);
        inject(vmcb, v, X86_GP, true);
        return;
    }
    if (!write) {
        set_edx_eax(vmcb, regs, v->guest_efer);
    } else {
        if (value & ~EFER_VALID) {
            inject(vmcb, v, X86_GP, true);
            return;
        }
        v->guest_efer = value;
        vmcb->save.efer = (value & ~EFER_LMA) | (vmcb->save.efer & EFER_LMA) | EFER_SVME;
    }
    vmcb->save.rip += LEN_MSR;
}

/* ---- port I/O: the chipset's sensitive controls ---- */

#define PORT_CONFIG_ADDRESS 0xCF8u
#define PORT_RESET_CONTROL 0xCF9u  /* bit 2: reset; also q35's FADT RESET_REG */
#define PORT_CONFIG_DATA 0xCFCu
#define PORT_KBC_DATA 0x60u
#define PORT_KBC_COMMAND 0x64u
#define PORT_FAST_A20_RESET 0x92u  /* bit 0: reset */
#define PORT_APM_CONTROL 0xB2u     /* a write raises an SMI (with SMI_EN.APMC_EN) */
#define PORT_APM_STATUS 0xB3u
#define PORT_FW_CFG_DMA 0x514u     /* QEMU's fw_cfg DMA address: 8 bytes */
#define PORT_HV_CHANNEL 0xE9u      /* the hypervisor's own output (boot/hypervisor/hv_channel.h) */
#define PM1_CNT 0x04u              /* PM1a_CNT, 16 bits */
#define PM1_CNT_SLP_EN (1u << 13)
#define PM_SMI_EN 0x30u            /* SMI_EN and SMI_STS: 8 bytes */
#define PM_TCO 0x60u               /* TCO registers: 32 bytes; the TCO timer can raise an SMI */
#define PORT_RTC_INDEX 0x70u      /* CMOS: index (bit 7 masks NMI) */
#define PORT_RTC_DATA 0x71u
#define CMOS_SHUTDOWN_STATUS 0x0Fu /* what the firmware does after a CPU reset; 0xFE: S3 resume */
#define PORT_CPU_HOTPLUG 0xCD8u    /* QEMU q35's ACPI CPU hotplug block (32 bytes, legacy layout) */
#define PORT_MEMORY_HOTPLUG 0xA00u /* QEMU q35's ACPI memory hotplug block (24 bytes) */

static bool in_range(uint16_t port, uint16_t first, unsigned count)
{
    return port >= first && port < first + count;
}

/* Ports that are not there for the guest: the hypervisor's channel, and DMA engines that
 * write memory without going through the IOMMU (the ISA DMA controllers and their page
 * registers, QEMU's fw_cfg DMA). */
static bool port_withheld(uint16_t port)
{
    return port == PORT_HV_CHANNEL || in_range(port, 0x00, 0x10) || in_range(port, 0xC0, 0x20) ||
           in_range(port, 0x81, 0x0F) || in_range(port, PORT_FW_CFG_DMA, 8);
}

/* Writes refused, reads passed: QEMU's CPU and memory hotplug controls, with which the
 * guest could eject a CPU (taking it out of the hypervisor) or memory. */
static bool port_hotplug(uint16_t port)
{
    return in_range(port, PORT_CPU_HOTPLUG, 32) || in_range(port, PORT_MEMORY_HOTPLUG, 24);
}

/* SMI sources: writes stay with the firmware's settings. */
static bool port_smi_control(uint16_t port, uint16_t pm)
{
    return port == PORT_APM_CONTROL || port == PORT_APM_STATUS ||
           (pm && (in_range(port, pm + PM_SMI_EN, 8) || in_range(port, pm + PM_TCO, 0x20)));
}

bool hv_port_intercepted(uint16_t port, uint16_t pm_base)
{
    return port_withheld(port) || port_smi_control(port, pm_base) || port_hotplug(port) || port == PORT_RTC_INDEX ||
           port == PORT_RTC_DATA || port == PORT_KBC_DATA ||
           port == PORT_KBC_COMMAND || port == PORT_FAST_A20_RESET || in_range(port, PORT_CONFIG_ADDRESS, 8) ||
           (pm_base && in_range(port, pm_base + PM1_CNT, 2));
}

void hv_iopm_build(uint8_t *iopm, uint16_t pm_base)
{
    for (unsigned i = 0; i < IOPM_BYTES; i++)
        iopm[i] = 0;
    for (uint32_t port = 0; port < 0x10000u; port++)
        if (hv_port_intercepted((uint16_t)port, pm_base))
            iopm[port / 8] |= (uint8_t)(1u << (port % 8));
}

enum io_action { IO_PASS, IO_DONE, IO_RESET, IO_POWER_OFF };

/* A write that resets the machine: the reset control register's bit 2, port 0x92's bit 0. */
static bool resets(uint16_t port, unsigned size, uint32_t value)
{
    if (size != 1)
        return false;
    if (port == PORT_RESET_CONTROL)
        return value & 4;
    if (port == PORT_FAST_A20_RESET)
        return value & 1;
    return false;
}

/* The keyboard controller (an 8042) is one device for every CPU: the command whose data
 * byte is pending is its state, not a CPU's, and the host tracks it, and passes each write
 * on, under one lock, so that no order of writes from any CPUs gets a reset past it. It
 * resets the machine on a pulse command with bit 0 clear (0xF0-0xFE, even) and on an
 * output-port write (command 0xD1, then a data byte) with bit 0 clear. Only the commands
 * that take a data byte change which one is pending; any data byte consumes it. */
static struct {
    struct iommu_lock lock;
    uint8_t pending; /* the command whose data byte comes next, or 0 */
} kbc;

/* The CMOS's shutdown status byte tells the firmware, after a CPU reset, whether to resume
 * from sleep through the waking vector in guest memory, with RAM as it was. No CPU reset
 * should ever reach a guest CPU (docs/security.md), but should one, this keeps the firmware
 * from handing the CPU to guest code outside the hypervisor: the byte is not the guest's
 * to write. The index is the device's state, tracked for every CPU under one lock. */
static struct {
    struct iommu_lock lock;
    uint8_t index;
} cmos;

static enum io_action cmos_write(struct hv_vcpu *v, const struct hv_exit_ops *ops, uint16_t port, unsigned size,
                                 uint32_t value)
{
    bool refused = false;
    lock_acquire(&cmos.lock);
    if (port == PORT_RTC_INDEX)
        cmos.index = (uint8_t)(value & 0x7F);
    else
        refused = cmos.index == CMOS_SHUTDOWN_STATUS;
    if (!refused)
        ops->port_out(ops->ctx, port, size, value);
    lock_release(&cmos.lock);
    if (refused)
        refuse(v, HV_REFUSED_PORT_OUT, port, (uint64_t)CMOS_SHUTDOWN_STATUS << 8 | (value & 0xFF));
    return IO_DONE;
}

static enum io_action kbc_write(const struct hv_exit_ops *ops, uint16_t port, unsigned size, uint32_t value)
{
    if (size != 1)
        return IO_PASS;
    bool reset = false;
    lock_acquire(&kbc.lock);
    if (port == PORT_KBC_COMMAND) {
        if (value == 0x60 || (value >= 0xD1 && value <= 0xD4))
            kbc.pending = (uint8_t)value;
        reset = value >= 0xF0 && !(value & 1);
    } else {
        reset = kbc.pending == 0xD1 && !(value & 1);
        kbc.pending = 0;
    }
    if (!reset)
        ops->port_out(ops->ctx, port, size, value);
    lock_release(&kbc.lock);
    return reset ? IO_RESET : IO_DONE;
}

/* PCI configuration through CONFIG_ADDRESS (a per-CPU copy) and CONFIG_DATA. */
static enum io_action pci_config_io(struct hv_vcpu *v, const struct hv_exit_ops *ops, uint16_t port, bool in,
                                    unsigned size, uint32_t value, uint32_t *result)
{
    if (port == PORT_CONFIG_ADDRESS) {
        if (in)
            *result = v->pci_address;
        else
            v->pci_address = value;
        return IO_DONE;
    }
    uint32_t a = v->pci_address;
    unsigned byte = port - PORT_CONFIG_DATA;
    /* No configuration cycle: nothing there. Not passed on, because the one real
     * CONFIG_ADDRESS still holds whatever the host last selected for some CPU's access. */
    if (!(a & 0x80000000u) || byte + size > 4) {
        *result = 0xFFFFFFFFu;
        return IO_DONE;
    }
    uint8_t bus = (uint8_t)(a >> 16), dev = (a >> 11) & 31, fn = (a >> 8) & 7;
    unsigned reg = (a & 0xFC) + byte;
    if (in)
        *result = ops->pci_read(ops->ctx, a, byte, size);
    else if (ops->pci_write_allowed(ops->ctx, bus, dev, fn, reg, size))
        ops->pci_write(ops->ctx, a, byte, size, value);
    else
        refuse(v, HV_REFUSED_PCI_CONFIG, (uint64_t)bus << 16 | (uint64_t)dev << 11 | (uint64_t)fn << 8 | reg, value);
    return IO_DONE;
}

static enum io_action port_io(struct hv_vcpu *v, const struct hv_exit_ops *ops, uint16_t port, bool in,
                              unsigned size, uint32_t value, uint32_t *result)
{
    uint16_t pm = ops->pm_base;
    if (port_withheld(port)) {
        refuse(v, in ? HV_REFUSED_PORT_IN : HV_REFUSED_PORT_OUT, port, value);
        *result = 0xFFFFFFFFu; /* nothing there: reads float high */
        return IO_DONE;
    }
    if ((port == PORT_CONFIG_ADDRESS && size == 4) || in_range(port, PORT_CONFIG_DATA, 4))
        return pci_config_io(v, ops, port, in, size, value, result);
    if (in)
        return IO_PASS;
    if (port == PORT_KBC_COMMAND || port == PORT_KBC_DATA)
        return kbc_write(ops, port, size, value);
    if ((port == PORT_RTC_INDEX || port == PORT_RTC_DATA) && size == 1)
        return cmos_write(v, ops, port, size, value);
    if (resets(port, size, value))
        return IO_RESET;
    if (port_hotplug(port)) {
        refuse(v, HV_REFUSED_PORT_OUT, port, value);
        return IO_DONE;
    }
    if (port_smi_control(port, pm)) {
        refuse(v, HV_REFUSED_PORT_OUT, port, value);
        return IO_DONE;
    }
    if (pm && in_range(port, pm + PM1_CNT, 2)) {
        /* A 16-bit write to PM1a_CNT, or a byte write to its high half. */
        uint32_t cnt = port == pm + PM1_CNT ? value : value << 8;
        if (cnt & PM1_CNT_SLP_EN) {
            if (((cnt >> 10) & 7) == 0)
                return IO_POWER_OFF; /* SLP_TYP 0: q35's S5 */
            /* Sleep states that keep memory reset the CPUs on wake-up, outside the
             * hypervisor: refused. */
            refuse(v, HV_REFUSED_SLEEP, port, value);
            return IO_DONE;
        }
    }
    return IO_PASS;
}

static void do_ioio(struct vmcb *vmcb, struct hv_vcpu *v, const struct hv_exit_ops *ops)
{
    uint64_t info = vmcb->control.exit_info_1;
    uint16_t port = (uint16_t)(info >> 16);
    bool in = info & SVM_IOIO_IN;
    unsigned size = (info >> SVM_IOIO_SIZE_SHIFT) & 4 ? 4 : (info >> SVM_IOIO_SIZE_SHIFT) & 2 ? 2 : 1;
    uint32_t mask = size == 4 ? 0xFFFFFFFFu : (1u << (8 * size)) - 1;
    uint32_t value = (uint32_t)vmcb->save.rax & mask, result = 0;
    v->io_exits++;
    for (unsigned i = 0; i < sizeof v->io_ports / sizeof v->io_ports[0]; i++)
        if (v->io_ports[i].port == port || !v->io_ports[i].exits) {
            v->io_ports[i].port = port;
            v->io_ports[i].exits++;
            break;
        }
    if (info & (SVM_IOIO_STRING | SVM_IOIO_REP)) {
        /* No intercepted port is one a string instruction has a use for. */
        refuse(v, HV_REFUSED_STRING_IO, port, info);
        inject(vmcb, v, X86_GP, true);
        return;
    }
    enum io_action action = port_io(v, ops, port, in, size, value, &result);
    switch (action) {
    case IO_PASS:
        if (in)
            result = ops->port_in(ops->ctx, port, size);
        else
            ops->port_out(ops->ctx, port, size, value);
        break;
    case IO_DONE:
        break;
    case IO_RESET:
    case IO_POWER_OFF:
        ops->machine_off(ops->ctx, v, action == IO_RESET);
        return; /* on the machine, never reached */
    }
    if (in)
        vmcb->save.rax = (vmcb->save.rax & ~(uint64_t)mask) | (result & mask);
    vmcb->save.rip = vmcb->control.exit_info_2; /* TCG gives the next RIP for IOIO */
}

/* General register n (the ModRM numbering) of the guest. */
static uint64_t *guest_reg(struct vmcb *vmcb, struct guest_regs *regs, unsigned n)
{
    uint64_t *gprs[16] = {&vmcb->save.rax, &regs->rcx, &regs->rdx, &regs->rbx, &vmcb->save.rsp, &regs->rbp,
                          &regs->rsi, &regs->rdi, &regs->r8, &regs->r9, &regs->r10, &regs->r11,
                          &regs->r12, &regs->r13, &regs->r14, &regs->r15};
    return gprs[n & 15];
}

#define APIC_LVT_CMCI 0x2F0
#define APIC_LVT_FIRST 0x320 /* timer, thermal, performance, LINT0, LINT1, error */
#define APIC_LVT_LAST 0x370
#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360

enum apic_delivery { DM_FIXED = 0, DM_LOWEST = 1, DM_SMI = 2, DM_NMI = 4, DM_INIT = 5, DM_SIPI = 6, DM_EXTINT = 7 };

/* Whether a guest's write to the APIC register at offset may reach the APIC. SMI in any
 * form is refused (the firmware's SMM handler is guest memory, and SMM runs outside the
 * nested tables); so is INIT from an LVT (it would take the CPU out of guest mode) and
 * ExtINT or a reserved mode in the ICR. INIT and SIPI in the ICR are emulated instead. */
static bool apic_write_allowed(uint32_t offset, uint32_t value)
{
    unsigned mode = (value >> 8) & 7;
    if (offset == APIC_ICR_LOW)
        return mode == DM_FIXED || mode == DM_LOWEST || mode == DM_NMI;
    if (offset == APIC_LVT_CMCI || (offset >= APIC_LVT_FIRST && offset <= APIC_LVT_LAST && !(offset & 0xF))) {
        if (offset == APIC_LVT_LINT0 || offset == APIC_LVT_LINT1)
            return mode == DM_FIXED || mode == DM_NMI || mode == DM_EXTINT; /* virtual wire */
        return mode == DM_FIXED || (offset != 0x320 && mode == DM_NMI);     /* the timer: fixed only */
    }
    /* The other registers a guest writes: TPR, EOI, LDR, DFR, SVR, ESR, ICR high, the
     * timer's initial count and divider. Nothing else: QEMU takes a write to offsets
     * 0x000-0x00F as an interrupt message of the guest's own making (found by an engineer
     * attacking from the docs alone), and the APIC ID is the hypervisor's name for a CPU. */
    return offset == 0x080 || offset == 0x0B0 || offset == 0x0D0 || offset == 0x0E0 || offset == 0x0F0 ||
           offset == 0x280 || offset == APIC_ICR_HIGH || offset == 0x380 || offset == 0x3E0;
}

/* The guest's decoding mode, from its EFER and code segment. */
static enum mmio_cpu_mode guest_mode(const struct vmcb *vmcb)
{
    uint16_t cs = vmcb->save.cs.attrib; /* bit 9: L, bit 10: D/B */
    if ((vmcb->save.efer & EFER_LMA) && (cs & (1u << 9)))
        return MMIO_MODE_64;
    return (vmcb->save.cr0 & 1) && (cs & (1u << 10)) ? MMIO_MODE_32 : MMIO_MODE_16;
}

/* The guest's instruction bytes at CS:RIP, through its own paging: how many of the 15 it
 * could read (the emulations decode from these). */
static unsigned fetch_at_rip(const struct vmcb *vmcb, const struct hv_exit_ops *ops, uint8_t code[15])
{
    return ops->fetch(ops->ctx, vmcb, vmcb->save.cs.base + vmcb->save.rip, code, 15);
}

/* A guest access to the local APIC's page: false when it is not one this emulates. */
static bool emulate_apic(struct vmcb *vmcb, struct guest_regs *regs, struct hv_vcpu *v, const struct hv_exit_ops *ops)
{
    uint8_t code[15];
    struct mmio_access a;
    uint32_t offset = (uint32_t)(vmcb->control.exit_info_2 & 0xFFF);
    unsigned got = fetch_at_rip(vmcb, ops, code);
    if (!mmio_decode(code, got, guest_mode(vmcb), &a) || a.size != 4 || (offset & 3))
        return false;
    uint64_t *r = guest_reg(vmcb, regs, a.reg);
    if (!a.write) {
        *r = ops->apic_read(ops->ctx, offset); /* a 32-bit load clears the upper half */
    } else {
        uint32_t value = a.immediate ? a.value : (uint32_t)*r;
        unsigned mode = (value >> 8) & 7;
        if (offset == APIC_ICR_LOW && (mode == DM_INIT || mode == DM_SIPI))
            ops->init_sipi(ops->ctx, value, ops->apic_read(ops->ctx, APIC_ICR_HIGH));
        else if (apic_write_allowed(offset, value))
            ops->apic_write(ops->ctx, offset, value);
        else
            refuse(v, offset == APIC_ICR_LOW ? HV_REFUSED_APIC_ICR : HV_REFUSED_APIC_REGISTER, offset, value);
    }
    v->apic_accesses++;
    vmcb->save.rip += a.length;
    return true;
}

/* A guest write to a chipset function's ECAM page, which the nested tables map read-only:
 * done for it, unless it is to a register the guest may not write. False when the
 * instruction is not a MOV store this decodes. */
static bool emulate_config_write(struct vmcb *vmcb, struct guest_regs *regs, struct hv_vcpu *v,
                                 const struct hv_exit_ops *ops, uint8_t bus, uint8_t dev, uint8_t fn)
{
    uint8_t code[15];
    struct mmio_access a;
    uint64_t gpa = vmcb->control.exit_info_2;
    unsigned reg = (unsigned)(gpa & 0xFFF);
    unsigned got = fetch_at_rip(vmcb, ops, code);
    if (!mmio_decode_mov(code, got, guest_mode(vmcb), &a) || !a.write || a.size > 4 || (reg & (a.size - 1)))
        return false;
    uint64_t value = mmio_store_value(&a, a.immediate ? 0 : *guest_reg(vmcb, regs, a.reg));
    if (ops->pci_write_allowed(ops->ctx, bus, dev, fn, reg, a.size))
        ops->mmio_write(ops->ctx, gpa, a.size, value);
    else
        refuse(v, HV_REFUSED_PCI_CONFIG, (uint64_t)bus << 16 | (uint64_t)dev << 11 | (uint64_t)fn << 8 | reg, value);
    vmcb->save.rip += a.length;
    return true;
}

bool hv_ioapic_write_allowed(uint32_t select, uint32_t value)
{
    if (select < 0x10 || (select & 1))
        return true; /* ID, version, arbitration, or an entry's destination half */
    unsigned mode = (value >> 8) & 7;
    return mode == DM_FIXED || mode == DM_LOWEST || mode == DM_NMI || mode == DM_EXTINT;
}

/* A guest access to an I/O APIC's page: 32-bit MOVs to IOREGSEL, IOWIN and EOI. False when
 * the instruction is not one this emulates. */
static bool emulate_ioapic(struct vmcb *vmcb, struct guest_regs *regs, struct hv_vcpu *v, const struct hv_exit_ops *ops,
                           unsigned ioapic)
{
    uint8_t code[15];
    struct mmio_access a;
    unsigned offset = (unsigned)(vmcb->control.exit_info_2 & 0xFFF);
    unsigned got = fetch_at_rip(vmcb, ops, code);
    if (!mmio_decode_mov(code, got, guest_mode(vmcb), &a) || a.size != 4 || a.extend != MMIO_EXTEND_NONE ||
        (offset != 0x00 && offset != 0x10 && offset != 0x40))
        return false;
    uint64_t *r = guest_reg(vmcb, regs, a.reg);
    if (!a.write) {
        *r = mmio_load_result(&a, *r, ops->ioapic_read(ops->ctx, ioapic, offset));
    } else {
        uint32_t value = (uint32_t)mmio_store_value(&a, a.immediate ? 0 : *r), select = 0;
        if (!ops->ioapic_write(ops->ctx, ioapic, offset, value, &select))
            refuse(v, HV_REFUSED_IOAPIC_RTE, select, value);
    }
    vmcb->save.rip += a.length;
    return true;
}

void hv_sipi_state(struct vmcb *vmcb, struct guest_regs *regs, struct hv_vcpu *v, uint8_t vector)
{
    struct vmcb_save *s = &vmcb->save;
    const struct vmcb_segment data = {0, 0x93, 0xFFFF, 0};
    s->cs = (struct vmcb_segment){(uint16_t)(vector << 8), 0x9B, 0xFFFF, (uint64_t)vector << 12};
    s->ds = s->es = s->ss = s->fs = s->gs = data;
    s->gdtr = s->idtr = (struct vmcb_segment){0, 0, 0xFFFF, 0};
    s->ldtr = (struct vmcb_segment){0, 0x82, 0xFFFF, 0};
    s->tr = (struct vmcb_segment){0, 0x8B, 0xFFFF, 0};
    s->cr0 = 0x60000010; /* CD, NW, ET */
    s->cr3 = s->cr4 = s->cr2 = 0;
    s->efer = EFER_SVME;
    v->guest_efer = 0;
    s->rflags = 2;
    s->rip = 0;
    s->rsp = s->rax = 0;
    s->dr7 = 0x400, s->dr6 = 0xFFFF0FF0;
    s->cpl = 0;
    s->kernel_gs_base = s->star = s->lstar = s->cstar = s->sfmask = 0;
    s->sysenter_cs = s->sysenter_esp = s->sysenter_eip = 0;
    *regs = (struct guest_regs){0};
    vmcb->control.event_inject = 0;
    v->sipis++;
}

enum hv_exit_result hv_handle_exit(struct vmcb *vmcb, struct guest_regs *regs, struct hv_vcpu *v,
                                   const struct hv_exit_ops *ops)
{
    v->exits++;
    ops->collect_faults(ops->ctx);
    uint32_t code = (uint32_t)vmcb->control.exit_code;
    switch (code) {
    case SVM_EXIT_VMMCALL:
        if (vmcb->save.cpl != 0) {
            inject(vmcb, v, X86_UD, false);
            break;
        }
        v->hypercalls++;
        vmcb->save.rax = ops->hypercall(ops->ctx, vmcb->save.rax, regs->rcx, regs->rdx);
        vmcb->save.rip += LEN_VMMCALL;
        break;
    case SVM_EXIT_CPUID:
        v->cpuids++;
        do_cpuid(vmcb, regs, ops);
        break;
    case SVM_EXIT_MSR:
        do_msr(vmcb, regs, v, ops);
        break;
    case SVM_EXIT_IOIO:
        do_ioio(vmcb, v, ops);
        break;
    case SVM_EXIT_VMRUN:
    case SVM_EXIT_VMLOAD:
    case SVM_EXIT_VMSAVE:
    case SVM_EXIT_STGI:
    case SVM_EXIT_CLGI:
    case SVM_EXIT_SKINIT:
        inject(vmcb, v, X86_UD, false);
        break;
    case SVM_EXIT_NMI:
        if (__atomic_exchange_n(&v->kicks, 0, __ATOMIC_ACQ_REL)) {
            /* another CPU's kick: its emulated INIT-SIPI starts this one at the vector */
            if (__atomic_exchange_n(&v->sipi_pending, false, __ATOMIC_ACQ_REL))
                hv_sipi_state(vmcb, regs, v, v->sipi_vector);
        } else {
            vmcb->control.event_inject = X86_NMI | SVM_EVENT_NMI | SVM_EVENT_VALID;
            v->guest_nmis++;
        }
        break;
    case SVM_EXIT_NPF:
        if (ops->apic_base && (vmcb->control.exit_info_2 & ~0xFFFull) == ops->apic_base &&
            emulate_apic(vmcb, regs, v, ops))
            break;
        unsigned ioapic;
        if (ops->ioapic_page && ops->ioapic_page(ops->ctx, vmcb->control.exit_info_2, &ioapic) &&
            emulate_ioapic(vmcb, regs, v, ops, ioapic))
            break;
        uint8_t bus, dev, fn;
        if ((vmcb->control.exit_info_1 & 2) && ops->config_page &&
            ops->config_page(ops->ctx, vmcb->control.exit_info_2, &bus, &dev, &fn) &&
            emulate_config_write(vmcb, regs, v, ops, bus, dev, fn))
            break;
        /* The guest touched the hypervisor's memory or the IOMMU's registers. */
        v->npf_count++;
        v->npf_gpa = vmcb->control.exit_info_2;
        v->npf_info = vmcb->control.exit_info_1;
        v->npf_rip = vmcb->save.rip;
        inject(vmcb, v, X86_GP, true);
        break;
    default: /* shutdown (a triple fault), VMEXIT_INVALID, an SMI or INIT that reached a CPU
              * in guest mode (no source the guest controls may raise one: docs/security.md),
              * anything not asked for */
        v->stop_code = code;
        return HV_STOP;
    }
    return HV_RESUME;
}
