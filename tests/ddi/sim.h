/* A simulated platform for testing code against the wdm DMA IOMMU interface on the host,
 * with no QEMU: VT-d units (the software model, tests/model) with the CAP/ECAP you choose,
 * PCI functions behind them, RAM, and the project's provider of the interface on top.
 *
 *   struct sim_config cfg = sim_default_config();      // one unit, QEMU's capabilities
 *   struct sim *s = sim_create(&cfg);
 *   DMA_IOMMU_INTERFACE_EX ex;
 *   IoGetIommuInterfaceEx(2, 0, &ex);                 // then call ex.V2.* as a driver would
 *   DEVICE_OBJECT pdo;
 *   sim_device_object(s, 0, &pdo);                    // the PDO of PCI function 0
 *   struct vtd_model_result r = sim_dma(s, 0, iova, true);   // function 0 writes at iova
 *   sim_destroy(s);
 *
 * See docs/ddi.md for the whole API and an example test. */
#ifndef SIM_H
#define SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "ddi/provider.h"
#include "iommu/vtd.h"
#include "ddi/wdm_iommu.h"
#include "vtd_model.h"

#define SIM_MAX_UNITS 4
#define SIM_MAX_FUNCTIONS 32
#define SIM_RAM_BASE 0x100000000ull   /* simulated RAM: 16 MiB of pages for DMA */
#define SIM_RAM_PAGES 4096u
#define SIM_RAM_END (SIM_RAM_BASE + (uint64_t)SIM_RAM_PAGES * PAGE_SIZE) /* the first byte past it */
#define SIM_POOL_BYTES (8u << 20)      /* the project's memory: tables (protected) */

/* The simulated physical address space, as on QEMU's q35: RAM above is the only guest RAM
 * the provider is told of (unless the configuration says otherwise); everything else is
 * what a DMA map must never reach. */
#define SIM_UNIT_BASE 0xfed90000ull    /* VT-d registers: unit u at SIM_UNIT_BASE + u * 0x1000 */
#define SIM_ECAM_BASE 0xb0000000ull    /* PCI configuration space (MMCONFIG) */
#define SIM_BAR_BASE 0xfe000000ull     /* PCI BARs: another device's registers (peer to peer) */
#define SIM_IOAPIC_BASE 0xfec00000ull
#define SIM_MSI_BASE 0xfee00000ull     /* the local APIC and the MSI window */
#define SIM_MAX_GUEST_RAM 8

struct sim_function {
    uint16_t segment;
    uint8_t bus, dev, fn;
    int unit;                          /* -1: behind no remapping unit */
};

struct sim_config {
    unsigned units;
    struct vtd_model_config unit[SIM_MAX_UNITS];
    unsigned functions;
    struct sim_function function[SIM_MAX_FUNCTIONS];
    bool default_domain;               /* detached devices go to an identity domain of RAM */
    /* The guest RAM the provider is told of (ddi_platform.guest_ram): with custom_guest_ram
     * false, the simulated RAM [SIM_RAM_BASE, SIM_RAM_END); otherwise these ranges, passed on
     * as they are (any order, none at all), for tests of the rule itself. */
    bool custom_guest_ram;
    unsigned guest_ram_count;
    struct addr_range guest_ram[SIM_MAX_GUEST_RAM];
    /* Models the CPU's caches for units that do not snoop their table walks (ECAP.C = 0,
     * as QEMU's): such a unit reads the project's memory (the pool) only as it was written
     * back, and memory starts as garbage (0xA5 bytes), not zeroes. The platform then writes
     * back through flush_cache, which only starts a write-back of each line, and
     * flush_cache_wait, which completes those started. A unit with ECAP.C = 1 reads what
     * the CPU wrote. Off: every unit reads what the CPU wrote, and the platform has no
     * flush_cache. */
    bool cache_model;
    /* The provider follows ARM64's rules (ddi_platform.arch): FAULT_INFORMATION's Arm64 arm,
     * QueryInputMappings (each function's stream ID is its requester ID, as QEMU's IORT
     * maps them). */
    bool arm64;
};

/* One unit with QEMU 7.2's capabilities (aw-bits 39, queued invalidation), two PCI
 * functions behind it (00:03.0 and 00:04.0) and one behind none (00:05.0). */
struct sim_config sim_default_config(void);

struct sim;
/* Builds the platform, enables the units and sets the provider up. NULL on a bad config. */
struct sim *sim_create(const struct sim_config *cfg);
void sim_destroy(struct sim *s);

/* The PDO a driver would pass for PCI function i of the config. */
void sim_device_object(const struct sim *s, unsigned function, DEVICE_OBJECT *pdo);

/* Function i reads or writes one byte at iova, through its unit (or straight to memory when
 * it is behind none). Faults are recorded by the unit as hardware would. */
struct vtd_model_result sim_dma(struct sim *s, unsigned function, uint64_t iova, bool write);

/* Page n of simulated RAM (physical address), and its contents. */
uint64_t sim_ram_page(const struct sim *s, unsigned n);
uint8_t *sim_ram(struct sim *s, uint64_t pa);

/* The memory the provider must never let a domain map (where the tables live). */
uint64_t sim_protected_base(const struct sim *s);
/* The physical address of unit u's register page. */
uint64_t sim_unit_registers(const struct sim *s, unsigned u);

/* An MDL over 'count' pages of simulated RAM given by page number; free with free(). */
MDL *sim_mdl(const struct sim *s, const unsigned *pages, unsigned count);

/* The software model of unit u, for inspection (invalidations done, misuse). */
struct vtd_model *sim_unit_model(struct sim *s, unsigned u);
struct vtd_unit *sim_unit(struct sim *s, unsigned u);
struct page_pool *sim_pool(struct sim *s);

/* Routes calls through the hypercall path instead: the hypervisor's server
 * (ddi/hc_server.h) over the provider, and the guest shim (ddi/shim.h), with the test's own
 * memory as guest memory. Then ShimIoGetIommuInterface(Ex) hands out the tables a guest
 * driver gets, each call one hypercall; shim_poll delivers faults and state changes to the
 * handlers, and hc_set_dma_guard changes the policy. */
void sim_use_hypercalls(struct sim *s);
uint64_t sim_hypercalls(const struct sim *s);  /* made so far */
/* The CPU the calling thread stands for (0 unless set): the server serves each CPU's calls
 * from its own staging, at once, as the hypervisor does. */
void sim_set_cpu(unsigned cpu);
/* Lets HC_INJECT act on the simulated pool (as the loader's fault_injection = on). */
void sim_allow_injection(struct sim *s);
/* Restarts the server with the hypervisor's own calls (HC_AUDIT, HC_GUEST_EXIT) served by
 * host_call, as the hypervisor serves them; NULL refuses them again. */
void sim_set_host_call(struct sim *s, NTSTATUS (*host_call)(void *ctx, uint32_t call, void *block), void *ctx);
/* With cache_model: lines of the pool whose write-back was started and not waited for, and
 * lines written back in all. */
uint64_t sim_lines_pending(const struct sim *s);
uint64_t sim_lines_written_back(const struct sim *s);

/* Memory the guest may not name in a hypercall (the pool stands for the hypervisor's). */
const void *sim_hypervisor_memory(const struct sim *s);

#endif
