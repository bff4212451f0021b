/* The SVM half of the host (see boot/hypervisor/hv.h): what each exit needs from the
 * machine (the local APIC, ports, PCI configuration, the I/O APICs, guest memory for the
 * instruction decoder), the exit's bookkeeping, and what hypervisor/arch.h asks of an
 * architecture. Runs only as the host, after launch: no firmware call. */
#include "hypervisor/hv.h"

#include "common/cpuid.h"
#include "common/port_io.h"
#include "ddi/hc_server.h"
#include "hypervisor/arch.h"
#include "hypervisor/svm/guest_walk.h"
#include "hypervisor/svm/svm_host.h"
#include "iommu/lock.h"

/* ---- the host's side of the exit handler ---- */

/* The running CPU's index: the one whose APIC id CPUID reports. */
static unsigned this_cpu(void)
{
    uint32_t r[4];
    cpuid(1, 0, r);
    for (unsigned i = 0; i < the_hv->cpus; i++)
        if (the_hv->cpu[i].apic_id == r[1] >> 24)
            return i;
    return 0;
}

static uint64_t host_hypercall(void *ctx, uint64_t rax, uint64_t rcx, uint64_t rdx)
{
    (void)ctx;
    return hc_dispatch(rax, rcx, rdx);
}

static void host_cpuid(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t out[4])
{
    (void)ctx;
    cpuid(leaf, subleaf, out);
}

/* Every exit takes the units' fault records to the queue, unless another CPU is doing so
 * already: no exit waits for another CPU (hc_server.h). */
static void host_collect_faults(void *ctx)
{
    (void)ctx;
    hc_collect_faults_unless_busy();
}

/* ---- the local APIC, which the guest reaches only through the exit handler ---- */

static uint32_t host_apic_read(void *ctx, uint32_t offset)
{
    (void)ctx;
    return *(volatile uint32_t *)(uintptr_t)(the_hv->arch.apic_base + offset);
}

static void host_apic_write(void *ctx, uint32_t offset, uint32_t value)
{
    (void)ctx;
    *(volatile uint32_t *)(uintptr_t)(the_hv->arch.apic_base + offset) = value;
}

/* Guest memory as the host reads it for the guest's page walks and instruction bytes:
 * guest RAM only, through the host's own page tables, so a read can neither fault nor
 * touch a device's registers or the region (docs/security.md). */
static bool walk_read_entry(void *ctx, uint64_t pa, unsigned size, uint64_t *out)
{
    (void)ctx;
    if (!hc_in_guest_ram(pa, size))
        return false;
    *out = size == 8 ? *(const volatile uint64_t *)(uintptr_t)pa : *(const volatile uint32_t *)(uintptr_t)pa;
    return true;
}

static bool walk_read_bytes(void *ctx, uint64_t pa, void *dst, unsigned len)
{
    (void)ctx;
    if (!hc_in_guest_ram(pa, len))
        return false;
    for (unsigned i = 0; i < len; i++)
        ((uint8_t *)dst)[i] = ((const volatile uint8_t *)(uintptr_t)pa)[i];
    return true;
}

static const struct guest_mem_ops guest_memory = {NULL, walk_read_entry, walk_read_bytes};

/* The guest's instruction bytes at linear, through its own paging mode (boot/hypervisor/svm/guest_walk.h):
 * as many of len as lie in guest RAM, stopping at the first page that does not. */
static unsigned host_fetch(void *ctx, const struct vmcb *vmcb, uint64_t linear, uint8_t *buf, unsigned len)
{
    (void)ctx;
    struct guest_paging p = {.cr0 = vmcb->save.cr0, .cr3 = vmcb->save.cr3, .cr4 = vmcb->save.cr4,
                             .efer = vmcb->save.efer, .maxphyaddr = the_hv->arch.phys_bits,
                             .no_1g_pages = !the_hv->arch.one_gib_pages};
    unsigned first = (unsigned)(4096 - (linear & 4095));
    if (first > len)
        first = len;
    if (!guest_read_linear(&p, &guest_memory, linear, buf, first, NULL))
        return 0;
    if (first < len && guest_read_linear(&p, &guest_memory, linear + first, buf + first, len - first, NULL))
        return len;
    return first;
}

/* An INIT or SIPI the guest sent: the target CPUs are guests, and a real INIT would take
 * them out of guest mode (QEMU's TCG cannot intercept it), so it is emulated. INIT marks
 * them; a SIPI after it is left for them, and an NMI makes them exit and take it. */
/* An NMI to another CPU: wherever its guest is (running, halted, in MWAIT), the NMI
 * intercept makes it exit, and the exit takes what this CPU left for it (hv_vcpu.kicks).
 * ICR high is the guest's too: put back as it was. Bounded waits for the ICR to be free. */
#define APIC_ICR_BUSY (1u << 12)
static void kick(uint32_t apic_id)
{
    for (unsigned i = 0; i < 100000 && (host_apic_read(NULL, APIC_ICR_LOW) & APIC_ICR_BUSY); i++)
        __asm__ volatile("pause");
    uint32_t high = host_apic_read(NULL, APIC_ICR_HIGH);
    host_apic_write(NULL, APIC_ICR_HIGH, apic_id << 24);
    host_apic_write(NULL, APIC_ICR_LOW, 4u << 8 | 1u << 14); /* NMI, physical, assert */
    for (unsigned i = 0; i < 100000 && (host_apic_read(NULL, APIC_ICR_LOW) & APIC_ICR_BUSY); i++)
        __asm__ volatile("pause");
    host_apic_write(NULL, APIC_ICR_HIGH, high);
}

static void host_init_sipi(void *ctx, uint32_t icr_low, uint32_t icr_high)
{
    (void)ctx;
    unsigned mode = (icr_low >> 8) & 7, shorthand = (icr_low >> 18) & 3;
    uint32_t dest = icr_high >> 24, self = (uint32_t)(host_apic_read(NULL, 0x20) >> 24);
    bool assert_level = icr_low & (1u << 14);
    for (unsigned i = 0; i < the_hv->cpus; i++) {
        struct hv_cpu *cpu = &the_hv->cpu[i];
        bool named = shorthand == 0 ? (dest == 0xFF || dest == cpu->apic_id)
                   : shorthand == 1 ? cpu->apic_id == self
                   : shorthand == 2 ? true
                                    : cpu->apic_id != self;
        if (!named || cpu->apic_id == self || !cpu->launched)
            continue;
        if (mode == 5 && assert_level) {
            cpu->vcpu.init_pending = true;
        } else if (mode == 6 && cpu->vcpu.init_pending) {
            cpu->vcpu.sipi_vector = (uint8_t)icr_low;
            cpu->vcpu.init_pending = false;
            __atomic_store_n(&cpu->vcpu.sipi_pending, true, __ATOMIC_RELEASE);
            __atomic_add_fetch(&cpu->vcpu.kicks, 1, __ATOMIC_RELEASE);
            kick(cpu->apic_id);
        }
    }
}

/* ---- port I/O and PCI configuration done for the guest ---- */

static uint32_t host_port_in(void *ctx, uint16_t port, unsigned size)
{
    (void)ctx;
    return size == 1 ? inb(port) : size == 2 ? inw(port) : inl(port);
}

static void host_port_out(void *ctx, uint16_t port, unsigned size, uint32_t value)
{
    (void)ctx;
    if (size == 1)
        outb(port, (uint8_t)value);
    else if (size == 2)
        outw(port, (uint16_t)value);
    else
        outl(port, value);
}

/* The one real CONFIG_ADDRESS is shared by every CPU: each access is the pair, locked. */
static struct iommu_lock pci_config_lock;

static uint32_t host_pci_read(void *ctx, uint32_t address, unsigned byte, unsigned size)
{
    lock_acquire(&pci_config_lock);
    host_port_out(ctx, 0xCF8, 4, address);
    uint32_t v = host_port_in(ctx, (uint16_t)(0xCFC + byte), size);
    lock_release(&pci_config_lock);
    return v;
}

static void host_pci_write(void *ctx, uint32_t address, unsigned byte, unsigned size, uint32_t value)
{
    lock_acquire(&pci_config_lock);
    host_port_out(ctx, 0xCF8, 4, address);
    host_port_out(ctx, (uint16_t)(0xCFC + byte), size, value);
    lock_release(&pci_config_lock);
}

/* The chipset's own functions: the host bridge (class 06 00) and the ISA/LPC bridge
 * (06 01) on bus 0. Their registers past the standard header place ECAM (PCIEXBAR), SMRAM
 * and TSEG, the legacy PAM windows, the ACPI PM and SMI control block (PMBASE) and the root
 * complex register block: the guest may read them, not write them. */
bool svm_chipset_function(uint8_t bus, uint8_t dev, uint8_t fn)
{
    const struct pci_inventory *inv = the_hv->pci;
    for (uint32_t i = 0; inv && i < inv->count; i++) {
        const struct pci_function *f = &inv->fn[i];
        if (f->segment == 0 && f->bus == bus && f->dev == dev && f->fn == fn)
            return bus == 0 && (f->class_code >> 8 == 0x0600 || f->class_code >> 8 == 0x0601);
    }
    return false;
}

static bool host_pci_write_allowed(void *ctx, uint8_t bus, uint8_t dev, uint8_t fn, unsigned reg, unsigned size)
{
    (void)ctx;
    (void)size;
    return !(svm_chipset_function(bus, dev, fn) && reg >= 0x40);
}

/* ---- the I/O APICs, emulated so that no redirection entry asks for SMI or INIT ---- */

static struct iommu_lock ioapic_lock;

static bool host_ioapic_page(void *ctx, uint64_t gpa, unsigned *ioapic)
{
    (void)ctx;
    for (unsigned i = 0; i < the_hv->arch.ioapics.count; i++)
        if ((gpa & ~0xFFFull) == the_hv->arch.ioapics.base[i]) {
            *ioapic = i;
            return true;
        }
    return false;
}

static volatile uint32_t *ioapic_register(unsigned ioapic, unsigned offset)
{
    return (volatile uint32_t *)(uintptr_t)(the_hv->arch.ioapics.base[ioapic] + offset);
}

static uint32_t host_ioapic_read(void *ctx, unsigned ioapic, unsigned offset)
{
    (void)ctx;
    lock_acquire(&ioapic_lock);
    uint32_t v;
    if (offset == 0) {
        v = the_hv->arch.ioapic_select[ioapic];
    } else {
        *ioapic_register(ioapic, 0) = the_hv->arch.ioapic_select[ioapic];
        v = *ioapic_register(ioapic, offset);
    }
    lock_release(&ioapic_lock);
    return v;
}

static bool host_ioapic_write(void *ctx, unsigned ioapic, unsigned offset, uint32_t value, uint32_t *select)
{
    (void)ctx;
    bool allowed = true;
    lock_acquire(&ioapic_lock);
    *select = the_hv->arch.ioapic_select[ioapic];
    if (offset == 0) {
        the_hv->arch.ioapic_select[ioapic] = value & 0xFF;
    } else {
        allowed = offset != 0x10 || hv_ioapic_write_allowed(*select, value);
        if (allowed) {
            *ioapic_register(ioapic, 0) = *select;
            *ioapic_register(ioapic, offset) = value;
        }
    }
    lock_release(&ioapic_lock);
    return allowed;
}

static bool host_config_page(void *ctx, uint64_t gpa, uint8_t *bus, uint8_t *dev, uint8_t *fn)
{
    (void)ctx;
    const struct pci_inventory *inv = the_hv->pci;
    for (uint32_t i = 0; inv && i < inv->count; i++) {
        const struct pci_function *f = &inv->fn[i];
        if ((gpa & ~0xFFFull) == f->config_pa && svm_chipset_function(f->bus, f->dev, f->fn)) {
            *bus = f->bus, *dev = f->dev, *fn = f->fn;
            return true;
        }
    }
    return false;
}

static void host_mmio_write(void *ctx, uint64_t pa, unsigned size, uint64_t value)
{
    (void)ctx;
    if (size == 1)
        *(volatile uint8_t *)(uintptr_t)pa = (uint8_t)value;
    else if (size == 2)
        *(volatile uint16_t *)(uintptr_t)pa = (uint16_t)value;
    else
        *(volatile uint32_t *)(uintptr_t)pa = (uint32_t)value;
}

static void host_machine_off(void *ctx, struct hv_vcpu *v, bool reset)
{
    (void)ctx;
    (void)v;
    hv_verdict(reset ? "the guest reset the machine; the hypervisor does it" :
                    "the guest powered the machine off; the hypervisor does it", true);
    if (reset)
        host_reset();
    host_power_off();
}

static struct hv_exit_ops host_ops = {.hypercall = host_hypercall, .cpuid = host_cpuid,
                                      .collect_faults = host_collect_faults, .apic_read = host_apic_read,
                                      .apic_write = host_apic_write, .fetch = host_fetch,
                                      .init_sipi = host_init_sipi,
                                      .port_in = host_port_in, .port_out = host_port_out,
                                      .pci_read = host_pci_read, .pci_write = host_pci_write,
                                      .pci_write_allowed = host_pci_write_allowed,
                                      .config_page = host_config_page, .mmio_write = host_mmio_write,
                                      .ioapic_page = host_ioapic_page, .ioapic_read = host_ioapic_read,
                                      .ioapic_write = host_ioapic_write,
                                      .machine_off = host_machine_off};

void hv_host_enter(struct hv_cpu *cpu)
{
    host_env_enter(&cpu->arch.env);
}

void svm_host_configure(const struct hv *hv, uint64_t apic_base_msr)
{
    host_ops.pm_base = hv->arch.pm_base;
    host_ops.apic_base = hv->arch.apic_base;
    host_ops.region_base = hv->region_pa;
    host_ops.region_bytes = hv->region_bytes;
    host_ops.apic_base_msr = apic_base_msr;
}

int hv_exit(struct hv_cpu *cpu, struct guest_regs *regs)
{
    uint64_t npf_before = cpu->vcpu.npf_count, sipis = cpu->vcpu.sipis, refusals = cpu->vcpu.refusals;
    __atomic_store_n(&cpu->exit_started_ns, the_hv->plat->now_ns(the_hv->plat->ctx), __ATOMIC_RELAXED);
    __atomic_store_n(&cpu->in_exit, true, __ATOMIC_RELEASE);
    if ((uint32_t)cpu->arch.vmcb->control.exit_code == SVM_EXIT_NMI)
        host_take_nmi();
    enum hv_exit_result r = hv_handle_exit(cpu->arch.vmcb, regs, &cpu->vcpu, &host_ops);
    if (cpu->vcpu.refusals != refusals)
        hv_log_refusal(cpu);
    /* A nested page fault outside the emulated windows: keyed apart from the other refusals
     * by a kind no refusal has (all ones). */
    if (cpu->vcpu.npf_count != npf_before &&
        hv_refusal_shown(cpu, ~0ull << 56 ^ (cpu->vcpu.npf_gpa >> 12) << 16 ^ cpu->vcpu.npf_info, cpu->vcpu.npf_count))
        sink_printf(out, "hv: cpu %u: guest access to 0x%lx (error code 0x%lx) at rip 0x%lx refused: #GP\n",
                    cpu->index, cpu->vcpu.npf_gpa, cpu->vcpu.npf_info, cpu->vcpu.npf_rip);
    if (cpu->vcpu.sipis != sipis)
        sink_printf(out, "hv: cpu %u: emulated INIT-SIPI, starts as a guest at %04x:0000\n", cpu->index,
                    cpu->arch.vmcb->save.cs.selector);
    if (r == HV_STOP) {
        /* A triple fault, an SMI or INIT in guest mode, anything not handled: no CPU may
         * leave guest mode, so the machine ends here, with the verdict. */
        char how[128];
        fmt_format(how, sizeof how, "cpu %u: guest stopped by exit 0x%lx at rip 0x%lx: the machine stops", cpu->index,
                   cpu->vcpu.stop_code, cpu->arch.vmcb->save.rip);
        hv_verdict(how, false);
        host_power_off();
    }
    __atomic_store_n(&cpu->in_exit, false, __ATOMIC_RELEASE);
    return r == HV_STOP;
}

/* ---- what hypervisor/arch.h asks of the architecture ---- */

unsigned hv_arch_this_cpu(void)
{
    return this_cpu();
}

void hv_arch_kick(const struct hv_cpu *cpu)
{
    kick(cpu->apic_id);
}

void hv_arch_print_cpu_counts(const struct hv_cpu *cpu)
{
    const struct hv_vcpu *v = &cpu->vcpu;
    sink_printf(out,
                "hv: cpu %u: %lu exits: %lu hypercalls, %lu CPUID, %lu MSR, %lu I/O, %lu nested page faults "
                "(%lu APIC accesses), %lu refusals\n",
                cpu->index, v->exits, v->hypercalls, v->cpuids, v->msr_exits, v->io_exits, v->npf_count + v->apic_accesses,
                v->apic_accesses, v->refusals);
    char ports[256]; /* 8 ports, each at most " 0xffff:" and 20 digits */
    size_t n = 0;
    for (unsigned k = 0; k < sizeof v->io_ports / sizeof v->io_ports[0] && v->io_ports[k].exits; k++)
        n += fmt_format(ports + n, sizeof ports - n, " 0x%x:%lu", v->io_ports[k].port, v->io_ports[k].exits);
    if (n)
        sink_printf(out, "hv: cpu %u: I/O exits by port (the first 8 ports):%s\n", cpu->index, ports);
}

void hv_arch_power_off(void)
{
    host_power_off();
}
