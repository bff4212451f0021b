/* See boot/hv.h. Runs in the loader before launch (UEFI boot services available) and, from
 * hv_exit on, as the host (no firmware calls: only the reserved region, the loader image,
 * the serial port and the IOMMU). */
#include "hv.h"

#include <efilib.h>

#include "cpuid.h"
#include "ddi/hc_server.h"
#include "ddi/provider.h"
#include "guest_walk.h"
#include "hv_channel.h"
#include "iommu/lock.h"
#include "iommu/ranges.h"
#include "mp_services.h"
#include "port_io.h"

#define MAX_RANGES 512
#define NPT_MIN_TOP (64ull << 30) /* when the CPU does not say its physical width */
/* The nested tables map the guest's whole physical address space, up to the CPU's
 * physical width: firmware and OS place PCI windows anywhere in it (OVMF puts q35's 64-bit
 * window at 0xE0_0000_0000 with 40 bits). At most 2^46 (64 TiB): 64 Ki entries of 1 GiB,
 * 512 KiB of tables for the nested and as much for the host's, out of the region. */
#define NPT_MAX_BITS 46u
#define APIC_WINDOW_BYTES (1ull << 20) /* the local APIC's window, the MSI address range */

static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return (uint64_t)hi << 32 | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

/* ---- the host's side of the exit handler ---- */

static struct hv *the_hv;

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

static unsigned host_this_cpu(void *ctx)
{
    (void)ctx;
    return this_cpu();
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
    return *(volatile uint32_t *)(uintptr_t)(the_hv->apic_base + offset);
}

static void host_apic_write(void *ctx, uint32_t offset, uint32_t value)
{
    (void)ctx;
    *(volatile uint32_t *)(uintptr_t)(the_hv->apic_base + offset) = value;
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

/* The guest's instruction bytes at linear, through its own paging mode (boot/guest_walk.h):
 * as many of len as lie in guest RAM, stopping at the first page that does not. */
static unsigned host_fetch(void *ctx, const struct vmcb *vmcb, uint64_t linear, uint8_t *buf, unsigned len)
{
    (void)ctx;
    struct guest_paging p = {.cr0 = vmcb->save.cr0, .cr3 = vmcb->save.cr3, .cr4 = vmcb->save.cr4,
                             .efer = vmcb->save.efer, .maxphyaddr = the_hv->phys_bits,
                             .no_1g_pages = !the_hv->one_gib_pages};
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
static bool chipset_function(uint8_t bus, uint8_t dev, uint8_t fn)
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
    return !(chipset_function(bus, dev, fn) && reg >= 0x40);
}

/* ---- the I/O APICs, emulated so that no redirection entry asks for SMI or INIT ---- */

static struct iommu_lock ioapic_lock;

static bool host_ioapic_page(void *ctx, uint64_t gpa, unsigned *ioapic)
{
    (void)ctx;
    for (unsigned i = 0; i < the_hv->ioapics.count; i++)
        if ((gpa & ~0xFFFull) == the_hv->ioapics.base[i]) {
            *ioapic = i;
            return true;
        }
    return false;
}

static volatile uint32_t *ioapic_register(unsigned ioapic, unsigned offset)
{
    return (volatile uint32_t *)(uintptr_t)(the_hv->ioapics.base[ioapic] + offset);
}

static uint32_t host_ioapic_read(void *ctx, unsigned ioapic, unsigned offset)
{
    (void)ctx;
    lock_acquire(&ioapic_lock);
    uint32_t v;
    if (offset == 0) {
        v = the_hv->ioapic_select[ioapic];
    } else {
        *ioapic_register(ioapic, 0) = the_hv->ioapic_select[ioapic];
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
    *select = the_hv->ioapic_select[ioapic];
    if (offset == 0) {
        the_hv->ioapic_select[ioapic] = value & 0xFF;
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
        if ((gpa & ~0xFFFull) == f->config_pa && chipset_function(f->bus, f->dev, f->fn)) {
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

/* ---- the audit and the verdict (docs/security.md) ---- */

static uint64_t canary_word(unsigned i)
{
    return the_hv->secret ^ (0x9E3779B97F4A7C15ull * (i + 1));
}

static uint64_t code_hash(void)
{
    uint64_t h = 0xCBF29CE484222325ull; /* FNV-1a */
    for (uint64_t i = 0; i < the_hv->code_bytes; i++)
        h = (h ^ the_hv->code[i]) * 0x100000001B3ull;
    return h;
}

/* Checks everything the guest must not have reached and prints one line on the channel;
 * returns the HC_AUDIT_* bits that hold. */
static uint32_t audit(const char *name, uint64_t claimed_secret)
{
    struct hv *hv = the_hv;
    uint32_t intact = 0;
    if (claimed_secret != hv->secret)
        intact |= HC_AUDIT_SECRET_KEPT;
    unsigned changed = 0;
    for (unsigned i = 1; i < PAGE_SIZE / 8; i++)
        changed += hv->canary[i] != canary_word(i);
    if (!changed && hv->canary[0] == hv->secret)
        intact |= HC_AUDIT_CANARY;
    if (code_hash() == hv->code_hash)
        intact |= HC_AUDIT_CODE;
    bool units = true;
    uint32_t gsts = 0;
    for (unsigned i = 0; i < hv->remap->units; i++)
        units = vtd_unit_intact(&hv->remap->unit[i], &gsts) && units;
    if (units)
        intact |= HC_AUDIT_IOMMU;
    /* A CPU still in guest mode exits when kicked (an NMI, which its intercept turns into an
     * exit even while it halts); one taken out of guest mode makes none. Each gets 100 ms
     * to make its next. */
    unsigned guests = 0, launched = 0, self = this_cpu();
    uint64_t since[HV_MAX_CPUS];
    for (unsigned i = 0; i < hv->cpus; i++)
        since[i] = __atomic_load_n(&hv->cpu[i].vcpu.exits, __ATOMIC_RELAXED);
    for (unsigned i = 0; i < hv->cpus; i++)
        if (i != self && hv->cpu[i].launched) {
            __atomic_add_fetch(&hv->cpu[i].vcpu.kicks, 1, __ATOMIC_RELEASE);
            kick(hv->cpu[i].apic_id);
        }
    uint64_t start = hv->plat->now_ns(hv->plat->ctx);
    for (unsigned i = 0; i < hv->cpus; i++) {
        struct hv_cpu *cpu = &hv->cpu[i];
        if (!cpu->launched)
            continue;
        launched++;
        bool exited = i == self;
        while (!exited && hv->plat->now_ns(hv->plat->ctx) - start < 100000000ull) {
            /* One in the middle of a short exit (waiting for this audit's lock, say) is a
             * guest; one that has been in its exit for a second is not (a CPU ejected
             * while in the host stays "in" its exit for ever). */
            uint64_t now = hv->plat->now_ns(hv->plat->ctx);
            exited = __atomic_load_n(&cpu->vcpu.exits, __ATOMIC_RELAXED) != since[i] ||
                     (__atomic_load_n(&cpu->in_exit, __ATOMIC_ACQUIRE) &&
                      now - __atomic_load_n(&cpu->exit_started_ns, __ATOMIC_RELAXED) < 1000000000ull);
            __asm__ volatile("pause");
        }
        guests += exited;
    }
    if (guests == launched)
        intact |= HC_AUDIT_CPUS;
    hv->audits++;
    hv->audits_failed += intact != HC_AUDIT_ALL;
    sink_printf(out,
                "hv: audit %u (%s) on cpu %u: secret %s, canary %s, code %s, iommu %s (vtd[0] GSTS 0x%x), %u of %u "
                "cpus still guests: %s\n",
                hv->audits, name, self, intact & HC_AUDIT_SECRET_KEPT ? "kept" : "LEAKED",
                intact & HC_AUDIT_CANARY ? "intact" : "CHANGED", intact & HC_AUDIT_CODE ? "intact" : "CHANGED",
                units ? "intact" : "CHANGED", gsts, guests, launched, intact == HC_AUDIT_ALL ? "PASS" : "FAIL");
    return intact;
}

/* The machine's end, on the channel: a last audit, then the verdict, which counts the
 * loader's checks, the payload's status (when it reported one) and every audit. */
static void verdict(const char *how, bool payload_ok)
{
    struct hv *hv = the_hv;
    hc_collect_faults(); /* every fault recorded so far is on the channel before the verdict */
    audit("final", 0);
    for (unsigned i = 0; i < hv->cpus; i++) {
        const struct hv_vcpu *v = &hv->cpu[i].vcpu;
        sink_printf(out,
                    "hv: cpu %u: %lu exits: %lu hypercalls, %lu CPUID, %lu MSR, %lu I/O, %lu nested page faults "
                    "(%lu APIC accesses), %lu refusals\n",
                    i, v->exits, v->hypercalls, v->cpuids, v->msr_exits, v->io_exits, v->npf_count + v->apic_accesses,
                    v->apic_accesses, v->refusals);
        char ports[256]; /* 8 ports, each at most " 0xffff:" and 20 digits */
        size_t n = 0;
        for (unsigned k = 0; k < sizeof v->io_ports / sizeof v->io_ports[0] && v->io_ports[k].exits; k++)
            n += fmt_format(ports + n, sizeof ports - n, " 0x%x:%lu", v->io_ports[k].port, v->io_ports[k].exits);
        if (n)
            sink_printf(out, "hv: cpu %u: I/O exits by port (the first 8 ports):%s\n", i, ports);
    }
    bool pass = !hv->loader_failed && payload_ok && !hv->audits_failed;
    sink_printf(out, "hv: %s\n", how);
    sink_printf(out, "RESULT: %s (%u loader checks, %u failed; payload %s; %u audits, %u failed)\n",
                pass ? "PASS" : "FAIL", hv->loader_checks, hv->loader_failed, payload_ok ? "ok" : "FAILED",
                hv->audits, hv->audits_failed);
}

static void host_machine_off(void *ctx, struct hv_vcpu *v, bool reset)
{
    (void)ctx;
    (void)v;
    verdict(reset ? "the guest reset the machine; the hypervisor does it" :
                    "the guest powered the machine off; the hypervisor does it", true);
    if (reset)
        host_reset();
    host_power_off();
}

/* HC_AUDIT and HC_GUEST_EXIT, with their blocks already copied in by the server. */
static NTSTATUS host_call(void *ctx, uint32_t call, void *block)
{
    (void)ctx;
    if (call == HC_AUDIT) {
        struct hc_audit_block *b = block;
        char name[HC_AUDIT_NAME_BYTES + 1];
        unsigned n = 0;
        for (; n < HC_AUDIT_NAME_BYTES && b->name[n]; n++) {
            char ch = b->name[n];
            bool plain = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
            name[n] = plain ? ch : '?'; /* the channel carries no character the guest chose */
        }
        name[n] = 0;
        b->intact = audit(n ? name : "unnamed", b->claimed_secret);
        b->sequence = the_hv->audits;
        return STATUS_SUCCESS;
    }
    if (call == HC_GUEST_EXIT) {
        const struct hc_guest_exit_block *b = block;
        char how[96];
        fmt_format(how, sizeof how, "the payload returned status 0x%lx; the hypervisor powers the machine off",
                   b->status);
        verdict(how, b->status == 0);
        host_power_off();
    }
    return STATUS_INVALID_SYSTEM_SERVICE;
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

static const char *const refusal_names[] = {
    [HV_REFUSED_MSR_READ] = "rdmsr", [HV_REFUSED_MSR_WRITE] = "wrmsr", [HV_REFUSED_PORT_IN] = "in from port",
    [HV_REFUSED_PORT_OUT] = "out to port", [HV_REFUSED_STRING_IO] = "string I/O at port",
    [HV_REFUSED_APIC_ICR] = "APIC ICR delivery mode", [HV_REFUSED_APIC_REGISTER] = "APIC register",
    [HV_REFUSED_PCI_CONFIG] = "PCI configuration write", [HV_REFUSED_SLEEP] = "sleep state",
    [HV_REFUSED_IOAPIC_RTE] = "I/O APIC register",
};

/* Every refusal is counted; each CPU prints the first of each kind, address and value (up
 * to HV_REFUSALS_SHOWN different ones), then every 1000th of that kind of refusal (count),
 * so that what a guest tried is on the channel without the guest being able to flood it. */
static bool refusal_shown(struct hv_cpu *cpu, uint64_t key, uint64_t count)
{
    key *= 0x9E3779B97F4A7C15ull;
    bool seen = false;
    for (unsigned i = 0; i < cpu->refusals_shown && !seen; i++)
        seen = cpu->refusal_shown[i] == key;
    if (!seen && cpu->refusals_shown < HV_REFUSALS_SHOWN) {
        cpu->refusal_shown[cpu->refusals_shown++] = key;
        return true;
    }
    return count % 1000 == 0;
}

static void log_refusal(struct hv_cpu *cpu)
{
    const struct hv_vcpu *v = &cpu->vcpu;
    if (!refusal_shown(cpu, (uint64_t)v->refused << 56 ^ v->refused_what << 16 ^ v->refused_value, v->refusals))
        return;
    const char *what = (unsigned)v->refused < sizeof refusal_names / sizeof refusal_names[0] && refusal_names[v->refused]
                           ? refusal_names[v->refused] : "access";
    sink_printf(out, "hv: cpu %u: %s 0x%lx (value 0x%lx) refused (refusal %lu)\n", cpu->index, what, v->refused_what,
                v->refused_value, v->refusals);
}

void hv_host_enter(struct hv_cpu *cpu)
{
    host_env_enter(&cpu->env);
}

int hv_exit(struct hv_cpu *cpu, struct guest_regs *regs)
{
    uint64_t npf_before = cpu->vcpu.npf_count, sipis = cpu->vcpu.sipis, refusals = cpu->vcpu.refusals;
    __atomic_store_n(&cpu->exit_started_ns, the_hv->plat->now_ns(the_hv->plat->ctx), __ATOMIC_RELAXED);
    __atomic_store_n(&cpu->in_exit, true, __ATOMIC_RELEASE);
    if ((uint32_t)cpu->vmcb->control.exit_code == SVM_EXIT_NMI)
        host_take_nmi();
    enum hv_exit_result r = hv_handle_exit(cpu->vmcb, regs, &cpu->vcpu, &host_ops);
    if (cpu->vcpu.refusals != refusals)
        log_refusal(cpu);
    /* A nested page fault outside the emulated windows: keyed apart from the other refusals
     * by a kind no refusal has (all ones). */
    if (cpu->vcpu.npf_count != npf_before &&
        refusal_shown(cpu, ~0ull << 56 ^ (cpu->vcpu.npf_gpa >> 12) << 16 ^ cpu->vcpu.npf_info, cpu->vcpu.npf_count))
        sink_printf(out, "hv: cpu %u: guest access to 0x%lx (error code 0x%lx) at rip 0x%lx refused: #GP\n",
                    cpu->index, cpu->vcpu.npf_gpa, cpu->vcpu.npf_info, cpu->vcpu.npf_rip);
    if (cpu->vcpu.sipis != sipis)
        sink_printf(out, "hv: cpu %u: emulated INIT-SIPI, starts as a guest at %04x:0000\n", cpu->index,
                    cpu->vmcb->save.cs.selector);
    if (r == HV_STOP) {
        /* A triple fault, an SMI or INIT in guest mode, anything not handled: no CPU may
         * leave guest mode, so the machine ends here, with the verdict. */
        char how[128];
        fmt_format(how, sizeof how, "cpu %u: guest stopped by exit 0x%lx at rip 0x%lx: the machine stops", cpu->index,
                   cpu->vcpu.stop_code, cpu->vmcb->save.rip);
        verdict(how, false);
        host_power_off();
    }
    __atomic_store_n(&cpu->in_exit, false, __ATOMIC_RELEASE);
    return r == HV_STOP;
}

/* ---- preparing ---- */

static bool svm_supported(bool *one_gib, uint8_t *phys_bits)
{
    uint32_t r[4];
    cpuid(0x80000000u, 0, r);
    if (r[0] < 0x8000000Au)
        return false;
    cpuid(0x80000001u, 0, r);
    bool svm = r[2] & (1u << 2);
    *one_gib = r[3] & (1u << 26);
    cpuid(0x80000008u, 0, r);
    *phys_bits = (uint8_t)r[0];
    cpuid(0x8000000Au, 0, r);
    return svm && (r[3] & 1) && r[1] >= 2; /* nested paging, and an ASID besides 0 */
}

static bool is_ram(UINT32 type)
{
    return type == EfiLoaderCode || type == EfiLoaderData || type == EfiBootServicesCode ||
           type == EfiBootServicesData || type == EfiRuntimeServicesCode || type == EfiRuntimeServicesData ||
           type == EfiConventionalMemory || type == EfiACPIReclaimMemory || type == EfiACPIMemoryNVS;
}

/* Guest RAM for the hypercall server: the memory map's RAM without the hypervisor's (the
 * reserved region and the loader image). */
static void guest_ram(struct hc_server_config *cfg, const struct remapping *r, uint64_t image_base,
                      uint64_t image_end, uint64_t *top)
{
    static struct addr_range ranges[MAX_RANGES + 1];
    unsigned n = 0;
    UINTN entries, key, size;
    UINT32 version;
    EFI_MEMORY_DESCRIPTOR *map = LibMemoryMap(&entries, &key, &size, &version);
    *top = 0;
    for (UINTN i = 0; map && i < entries; i++) {
        const EFI_MEMORY_DESCRIPTOR *d = (const EFI_MEMORY_DESCRIPTOR *)((const UINT8 *)map + i * size);
        uint64_t end = d->PhysicalStart + d->NumberOfPages * PAGE_SIZE;
        if (end > *top)
            *top = end;
        if (is_ram(d->Type) && n < MAX_RANGES)
            ranges[n++] = (struct addr_range){d->PhysicalStart, end};
    }
    if (map)
        FreePool(map);
    n = ranges_merge(ranges, n);
    n = ranges_remove(ranges, n, MAX_RANGES + 1, r->region_pa, r->region_pa + r->region_bytes);
    n = ranges_remove(ranges, n, MAX_RANGES + 1, image_base, image_end);
    cfg->ram_count = 0;
    for (unsigned i = 0; i < n && i < MAX_RANGES && cfg->ram_count < HC_MAX_RAM_RANGES; i++)
        cfg->ram[cfg->ram_count++] = (struct hc_ram_range){ranges[i].base, ranges[i].end - ranges[i].base};
}

static void guest_read(void *ctx, uint64_t gpa, void *buf, size_t len)
{
    (void)ctx;
    __builtin_memcpy(buf, (const void *)(uintptr_t)gpa, len);
}

static void guest_write(void *ctx, uint64_t gpa, const void *buf, size_t len)
{
    (void)ctx;
    __builtin_memcpy((void *)(uintptr_t)gpa, buf, len);
}

/* Every DMA fault the host collects goes to the console, reported to the guest or not. */
static void log_fault(void *ctx, const struct vtd_unit *unit, const struct vtd_fault *fault)
{
    (void)ctx;
    remap_print_fault(unit, fault);
}

static bool start_ddi(struct remapping *r, const struct pci_inventory *inv, struct hc_server_config *cfg,
                      struct checks *c)
{
    struct ddi_platform p = {.pool = &r->pool, .unit_count = r->units, .pci = inv, .protected_base = r->region_pa,
                             .protected_size = r->region_bytes, .has_default_context = true,
                             .default_context = {VTD_TRANSLATE, DEFAULT_DOMAIN_ID, r->default_domain.root_pa, r->levels},
                             .first_domain_id = DEFAULT_DOMAIN_ID + 1, .fault_seen = log_fault};
    for (unsigned i = 0; i < r->units; i++)
        p.units[i] = &r->unit[i];
    /* What a DDI domain may map: guest RAM alone (docs/security.md, docs/ddi.md). */
    for (unsigned i = 0; i < cfg->ram_count && i < DDI_MAX_GUEST_RAM_RANGES; i++)
        p.guest_ram[p.guest_ram_count++] =
            (struct addr_range){cfg->ram[i].base, cfg->ram[i].base + cfg->ram[i].size};
    enum iommu_status st = ddi_provider_init(&p);
    if (!checkf(c, st == IOMMU_OK, "DDI provider over %u units (%s)", r->units, iommu_status_name(st)))
        return false;
    cfg->read = guest_read;
    cfg->write = guest_write;
    cfg->pool = &r->pool;
    st = hc_server_init(cfg);
    return checkf(c, st == IOMMU_OK, "hypercall server: %u guest RAM ranges (%s)", cfg->ram_count, iommu_status_name(st));
}

/* The guest's physical address space, one to one, without the hypervisor's region and the
 * IOMMU's registers. */
static bool build_npt(struct hv *hv, struct remapping *r, const struct dmar_table *dmar, uint64_t top,
                      uint64_t image_base, uint64_t image_end, struct checks *c)
{
    unsigned bits = hv->phys_bits; /* svm_supported read it */
    uint64_t space = bits ? 1ull << (bits < NPT_MAX_BITS ? bits : NPT_MAX_BITS) : NPT_MIN_TOP;
    hv->npt_top = top > space ? (top + (1ull << 30) - 1) & ~((1ull << 30) - 1) : space;
    static struct addr_range ranges[2 * REMAP_MAX_UNITS + MADT_MAX_IOAPICS + 8];
    unsigned n = 1, cap = 2 * REMAP_MAX_UNITS + MADT_MAX_IOAPICS + 8;
    ranges[0] = (struct addr_range){0, hv->npt_top};
    n = ranges_remove(ranges, n, cap, r->region_pa, r->region_pa + r->region_bytes);
    /* The loader image is the hypervisor's code and data: the guest never runs it again. */
    n = ranges_remove(ranges, n, cap, image_base, image_end);
    /* The local APIC: every guest access to it is emulated (INIT and SIPI must not reach a
     * CPU that runs as a guest: boot/vmexit.h). */
    /* QEMU's APIC answers the whole 1 MiB from there, and takes a CPU's write past the
     * register page as an interrupt message of the guest's own making (INIT included): all
     * of it is out, and only the register page is emulated. */
    n = ranges_remove(ranges, n, cap, hv->apic_base, hv->apic_base + APIC_WINDOW_BYTES);
    /* The I/O APICs: emulated, so that no redirection entry sends SMI or INIT (QEMU's
     * interrupt remapping lets compatibility-format messages through: docs/security.md). */
    for (unsigned i = 0; i < hv->ioapics.count; i++)
        n = ranges_remove(ranges, n, cap, hv->ioapics.base[i], hv->ioapics.base[i] + PAGE_SIZE);
    /* The chipset functions' configuration pages: read-only, their writes emulated. */
    unsigned config_pages = 0;
    for (uint32_t i = 0; hv->pci && i < hv->pci->count; i++) {
        const struct pci_function *f = &hv->pci->fn[i];
        if (chipset_function(f->bus, f->dev, f->fn)) {
            n = ranges_remove(ranges, n, cap, f->config_pa, f->config_pa + PAGE_SIZE);
            config_pages++;
        }
    }
    struct dmar_struct s;
    unsigned holes = 0;
    for (uint32_t cur = 0; dmar_next_struct(dmar, &cur, &s) && n <= cap;) {
        if (s.type != DMAR_TYPE_DRHD)
            continue;
        uint64_t bytes = (uint64_t)PAGE_SIZE << s.size; /* 2^size pages */
        n = ranges_remove(ranges, n, cap, s.register_base, s.register_base + bytes);
        holes++;
    }
    enum iommu_status st = n <= cap ? slpt_init(&hv->npt, &r->pool, 4, SLPT_SUPERPAGE_2M |
                                                                           (hv->one_gib_pages ? SLPT_SUPERPAGE_1G : 0))
                                    : IOMMU_ERANGE;
    if (st == IOMMU_OK)
        st = slpt_set_format(&hv->npt, &pt_amd_nested);
    if (st == IOMMU_OK)
        st = ranges_identity_map(&hv->npt, ranges, n, SLPT_READ | SLPT_WRITE);
    for (uint32_t i = 0; st == IOMMU_OK && hv->pci && i < hv->pci->count; i++) {
        const struct pci_function *f = &hv->pci->fn[i];
        if (chipset_function(f->bus, f->dev, f->fn))
            st = slpt_map(&hv->npt, f->config_pa, f->config_pa, PAGE_SIZE, SLPT_READ);
    }
    return checkf(c, st == IOMMU_OK,
                  "nested page tables: [0, %lu GiB) (%u-bit physical addresses) in %u pages, less the region and %u "
                  "IOMMU register ranges; %u chipset config pages read-only (%s)",
                  hv->npt_top >> 30, bits, hv->npt.table_pages, holes, config_pages, iommu_status_name(st));
}

static void *region_pages(struct remapping *r, unsigned pages, uint64_t *pa)
{
    /* The pool hands out single pages; these are taken at start-up, in order, so a run of
     * them is contiguous (checked). */
    uint64_t first = 0, got;
    void *va = NULL;
    for (unsigned i = 0; i < pages; i++) {
        void *p = page_pool_alloc(&r->pool, &got);
        if (!p || (i && got != first + (uint64_t)i * PAGE_SIZE))
            return NULL;
        if (!i) {
            first = got;
            va = p;
        }
    }
    *pa = first;
    return va;
}

/* A random 64-bit value: RDRAND where the CPU has it, else the TSC stirred. */
static uint64_t random64(void)
{
    uint32_t r[4];
    cpuid(1, 0, r);
    uint64_t v = 0;
    unsigned char ok = 0;
    for (unsigned i = 0; i < 10 && !ok && (r[2] & (1u << 30)); i++)
        __asm__ volatile("rdrand %0; setc %1" : "=r"(v), "=qm"(ok));
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    uint64_t z = v ^ ((uint64_t)hi << 32 | lo) ^ 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

extern const uint8_t _text[], _etext[]; /* the image's code (gnu-efi's linker script) */

/* What the audit compares against: the secret and canary page, the code's hash. */
static bool prepare_audit(struct hv *hv, struct remapping *r, struct checks *c)
{
    hv->remap = r;
    hv->canary = region_pages(r, 1, &hv->canary_pa);
    if (!check(c, hv->canary != NULL, "audit: a secret and a canary page in the reserved region"))
        return false;
    hv->secret = random64() | 1; /* never 0, which a guest that read nothing claims */
    hv->canary[0] = hv->secret;
    for (unsigned i = 1; i < PAGE_SIZE / 8; i++)
        hv->canary[i] = canary_word(i);
    hv->code = _text;
    hv->code_bytes = (uint64_t)(_etext - _text);
    hv->code_hash = code_hash();
    return checkf(c, hv->code_bytes > 0, "audit: the canary at 0x%lx, %lu bytes of code hashed", hv->canary_pa,
                  hv->code_bytes);
}

bool hv_prepare(struct hv *hv, struct uefi_platform *up, struct remapping *r, const struct pci_inventory *inv,
                const struct dmar_table *dmar, const void *image_base, uint64_t image_bytes, bool fault_injection,
                uint16_t pm_base, const struct madt_ioapics *ioapics, struct checks *c)
{
    if (!check(c, svm_supported(&hv->one_gib_pages, &hv->phys_bits), "CPU has SVM with nested paging and ASIDs"))
        return false;
    uint64_t apic = rdmsr(MSR_APIC_BASE);
    hv->apic_base = apic & 0x000FFFFFFFFFF000ull;
    if (!checkf(c, (apic & (1u << 11)) && !(apic & (1u << 10)), "local APIC enabled in xAPIC mode at 0x%lx",
                hv->apic_base))
        return false;
    hv->region_pa = r->region_pa, hv->region_bytes = r->region_bytes;
    hv->plat = &up->ops;
    hv->pci = inv;
    hv->pm_base = pm_base;
    host_ops.pm_base = pm_base;
    hv->ioapics = *ioapics;
    for (unsigned i = 0; i < ioapics->count; i++)
        hv->ioapic_select[i] = *(volatile uint32_t *)(uintptr_t)ioapics->base[i] & 0xFF;
    the_hv = hv;
    host_ops.apic_base = hv->apic_base;
    host_ops.region_base = hv->region_pa;
    host_ops.region_bytes = hv->region_bytes;
    host_ops.apic_base_msr = apic & ~(1ull << 8); /* without the BSP bit, which differs per CPU */
    struct hc_server_config cfg = {.host_call = host_call, .this_cpu = host_this_cpu};
    uint64_t top, image = (uint64_t)(uintptr_t)image_base & ~(uint64_t)(PAGE_SIZE - 1);
    uint64_t image_end = ((uint64_t)(uintptr_t)image_base + image_bytes + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1);
    guest_ram(&cfg, r, image, image_end, &top);
    cfg.inject_pool = fault_injection ? &r->pool : NULL;
    if (fault_injection)
        sink_printf(out, "hv: fault injection on: the guest may make the hypervisor fail (HC_INJECT)\n");
    if (!start_ddi(r, inv, &cfg, c) || !build_npt(hv, r, dmar, top, image, image_end, c))
        return false;
    hv->msrpm = region_pages(r, MSRPM_BYTES / PAGE_SIZE, &hv->msrpm_pa);
    hv->iopm = region_pages(r, IOPM_BYTES / PAGE_SIZE, &hv->iopm_pa);
    if (!check(c, hv->msrpm && hv->iopm, "MSR and I/O permission maps in the reserved region"))
        return false;
    hv_msrpm_build(hv->msrpm);      /* every MSR exits but a listed few (docs/security.md) */
    hv_iopm_build(hv->iopm, pm_base); /* the chipset's sensitive ports exit */
    if (!checkf(c, pm_base != 0, "chipset PM block at port 0x%x: its SMI and sleep controls are the hypervisor's",
                pm_base) ||
        !checkf(c, ioapics->count > 0, "%u I/O APIC(s), the first at 0x%lx, emulated for the guest", ioapics->count,
                ioapics->count ? ioapics->base[0] : 0) ||
        !prepare_audit(hv, r, c))
        return false;
    if (!checkf(c, host_env_prepare(&r->pool, hv->npt_top, hv->one_gib_pages, (uint16_t)(pm_base + 4)),
                "host page tables ([0, %lu GiB) for the host alone), GDT, TSS and IDT in the reserved region",
                hv->npt_top >> 30))
        return false;
    for (unsigned i = 0; i < r->units; i++) {
        enum iommu_status st = vtd_enable_interrupt_remapping(&r->unit[i]);
        checkf(c, st == IOMMU_OK,
               "vtd[%u]: interrupt remapping on, no entry present, compatibility format blocked (%s)", i,
               iommu_status_name(st));
    }
    /* Every logical CPU the firmware knows (one when it has no MP services). */
    EFI_GUID mp_guid = MP_SERVICES_PROTOCOL_GUID;
    struct mp_services_protocol *mp = NULL;
    UINTN total = 1, enabled = 1;
    if (EFI_ERROR(uefi_call_wrapper(BS->LocateProtocol, 3, &mp_guid, NULL, (void **)&mp)) ||
        EFI_ERROR(mp->get_number_of_processors(mp, &total, &enabled)))
        mp = NULL, total = enabled = 1;
    if (!checkf(c, total <= HV_MAX_CPUS && enabled == total, "%lu logical CPUs, all enabled", (uint64_t)total))
        return false;
    hv->cpus = (unsigned)total;
    hv->mp = mp;
    for (unsigned i = 0; i < hv->cpus; i++) {
        struct hv_cpu *cpu = &hv->cpu[i];
        uint64_t stack_pa;
        cpu->index = i;
        struct mp_processor_information info = {0};
        if (mp && !EFI_ERROR(mp->get_processor_info(mp, i, &info)))
            cpu->apic_id = (uint32_t)info.processor_id;
        cpu->vmcb = region_pages(r, 1, &cpu->vmcb_pa);
        uint8_t *hsave = region_pages(r, 1, &cpu->hsave_pa);
        uint8_t *stack = region_pages(r, HV_STACK_PAGES, &stack_pa);
        uint64_t ist_pa;
        uint8_t *host_state = region_pages(r, 1, &cpu->host_state_pa), *ist = region_pages(r, 1, &ist_pa);
        if (!checkf(c, cpu->vmcb && hsave && stack && host_state && ist,
                    "cpu %u: VMCB, host-save area, host state, stacks", i))
            return false;
        cpu->stack_top = stack + HV_STACK_PAGES * PAGE_SIZE;
        host_env_cpu_init(&cpu->env, ist + PAGE_SIZE, cpu->host_state_pa);
    }
    return true;
}

/* ---- launching ---- */

#define READ_SEG(name, var) __asm__ volatile("mov %%" name ", %0" : "=r"(var))

/* This CPU's VMCB from its state now, all but RIP, RSP, RFLAGS and RAX (hv_entry.S sets
 * those where the guest resumes). */
static void setup_this_cpu(struct hv *hv, struct hv_cpu *cpu)
{
    struct vmcb *v = cpu->vmcb;
    wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SVME);
    wrmsr(MSR_VM_HSAVE_PA, cpu->hsave_pa);

    /* SMI and INIT must never be taken in guest mode (docs/security.md): intercepted, they
     * stop the machine instead. NMIs are the guest's own and are not intercepted. */
    /* NMI: another CPU's kick (an emulated SIPI for this one) comes as an NMI. HLT and
     * MWAIT are not intercepted: an idle guest CPU really waits, and a kick wakes it. */
    v->control.intercept_misc1 = SVM_INTERCEPT1_CPUID | SVM_INTERCEPT1_MSR | SVM_INTERCEPT1_IOIO |
                                 SVM_INTERCEPT1_NMI | SVM_INTERCEPT1_SMI | SVM_INTERCEPT1_INIT |
                                 SVM_INTERCEPT1_SHUTDOWN;
    v->control.intercept_misc2 = SVM_INTERCEPT2_VMRUN | SVM_INTERCEPT2_VMMCALL | SVM_INTERCEPT2_VMLOAD |
                                 SVM_INTERCEPT2_VMSAVE | SVM_INTERCEPT2_STGI | SVM_INTERCEPT2_CLGI |
                                 SVM_INTERCEPT2_SKINIT;
    v->control.msrpm_base_pa = hv->msrpm_pa;
    v->control.iopm_base_pa = hv->iopm_pa;
    v->control.asid = 1;
    v->control.tlb_control = 1; /* flush everything at each VMRUN: edits to the tables show */
    v->control.np_enable = 1;
    v->control.n_cr3 = hv->npt.root_pa;

    struct x86_descriptor_pointer gdt, idt;
    __asm__ volatile("sgdt %0" : "=m"(gdt));
    __asm__ volatile("sidt %0" : "=m"(idt));
    uint16_t cs, ss, ds, es, fs, gs;
    READ_SEG("cs", cs);
    READ_SEG("ss", ss);
    READ_SEG("ds", ds);
    READ_SEG("es", es);
    READ_SEG("fs", fs);
    READ_SEG("gs", gs);
    svm_segment_from_gdt(&v->save.cs, cs, &gdt);
    svm_segment_from_gdt(&v->save.ss, ss, &gdt);
    svm_segment_from_gdt(&v->save.ds, ds, &gdt);
    svm_segment_from_gdt(&v->save.es, es, &gdt);
    v->save.gdtr.base = gdt.base, v->save.gdtr.limit = gdt.limit;
    v->save.idtr.base = idt.base, v->save.idtr.limit = idt.limit;
    uint64_t cr0, cr3, cr4;
    __asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
    __asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
    __asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
    v->save.cr0 = cr0, v->save.cr3 = cr3, v->save.cr4 = cr4;
    v->save.efer = rdmsr(MSR_EFER);
    cpu->vcpu.guest_efer = v->save.efer & ~EFER_SVME;
    v->save.g_pat = rdmsr(MSR_PAT);
    v->save.dr7 = 0x400, v->save.dr6 = 0xFFFF0FF0;
    v->save.cpl = 0;
    /* FS, GS, TR, LDTR and the syscall MSRs: what VMLOAD gives the guest, as they are now. */
    (void)fs;
    (void)gs;
    __asm__ volatile("vmsave %%rax" : : "a"(cpu->vmcb_pa) : "memory");
    cpu->launched = true;
}

void hv_launch_this_cpu(struct hv *hv, unsigned index, uint64_t resume)
{
    setup_this_cpu(hv, &hv->cpu[index]);
    hv_enter(&hv->cpu[index], resume);
}

struct hv_cpu *hv_prepare_this_ap(struct hv *hv)
{
    uint32_t r[4];
    cpuid(1, 0, r);
    uint32_t apic_id = r[1] >> 24;
    for (unsigned i = 1; i < hv->cpus; i++)
        if (hv->cpu[i].apic_id == apic_id && !hv->cpu[i].launched) {
            setup_this_cpu(hv, &hv->cpu[i]);
            return &hv->cpu[i];
        }
    return NULL; /* unknown to the loader: it stays on bare metal, and the check says so */
}

extern void hv_ap_procedure(void *hv);

bool hv_launch_aps(struct hv *hv, uint64_t ap_resume, struct checks *c)
{
    struct mp_services_protocol *mp = hv->mp;
    if (hv->cpus == 1)
        return true;
    for (unsigned i = 1; i < hv->cpus; i++)
        hv->cpu[i].resume = ap_resume;
    /* One at a time; each is back in the firmware's AP loop, as a guest, before the next. */
    EFI_STATUS st = mp->startup_all_aps(mp, (MP_AP_PROCEDURE)hv_ap_procedure, TRUE, NULL, 10 * 1000 * 1000, hv, NULL);
    unsigned launched = 0;
    for (unsigned i = 1; i < hv->cpus; i++)
        launched += hv->cpu[i].launched;
    return checkf(c, !EFI_ERROR(st) && launched == hv->cpus - 1, "%u application processors run as guests (status %lu)",
                  launched, (uint64_t)st);
}
