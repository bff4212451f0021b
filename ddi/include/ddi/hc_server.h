/* The hypervisor's side of the DDI hypercalls (ddi/include/ddi/hypercall.h): takes one
 * VMMCALL's registers, copies and checks the parameter block and everything it points to,
 * calls the provider's routine, and writes the outputs back.
 *
 * Guest memory is reached only through the copy functions of the configuration, and only
 * after the server has checked that the whole range lies in guest RAM (the ranges given,
 * which leave out the hypervisor's region and device MMIO). Nothing is read from the guest
 * twice: a block or list is copied once and then checked, so the guest cannot change it in
 * between. Calls are serialised by one lock: a handle looked up is the one used, and the
 * queue of reports needs no lock of its own. */
#ifndef DDI_HC_SERVER_H
#define DDI_HC_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ddi/hypercall.h"
#include "iommu/status.h"

struct page_pool;

#define HC_MAX_RAM_RANGES 64
#define HC_REPORT_QUEUE 256 /* reports waiting for a poll; more are counted as lost */

struct hc_ram_range {
    uint64_t base, size;
};

struct hc_server_config {
    void *ctx;
    /* Copy len bytes from or to guest-physical gpa; only ever called for ranges inside
     * ram[], so they cannot fail. */
    void (*read)(void *ctx, uint64_t gpa, void *buf, size_t len);
    void (*write)(void *ctx, uint64_t gpa, const void *buf, size_t len);
    struct hc_ram_range ram[HC_MAX_RAM_RANGES]; /* guest RAM, sorted or not */
    unsigned ram_count;
    const struct page_pool *pool; /* for HC_STATS; may be NULL */
    /* HC_INJECT acts on this pool; NULL (the default) refuses it with STATUS_ACCESS_DENIED. */
    struct page_pool *inject_pool;
    /* The hypervisor's own calls (HC_AUDIT, HC_GUEST_EXIT): the server checks the version,
     * the size and that the block is in guest RAM, copies it in, calls this with the copy
     * and writes it back; NULL refuses them as unknown calls. */
    NTSTATUS (*host_call)(void *ctx, uint32_t call, void *block);
    /* The calling CPU's index, below HC_MAX_CPUS: each CPU's call is copied into and served
     * from its own staging, so calls from different CPUs run at once (the provider has its
     * own locks). NULL: one call at a time, the whole call under one lock. */
    unsigned (*this_cpu)(void *ctx);
};

#define HC_MAX_CPUS 16

/* Over a provider already set up (ddi_provider_init). */
enum iommu_status hc_server_init(const struct hc_server_config *cfg);

/* One hypercall: RAX, RCX, RDX as the guest left them; returns the new RAX (an NTSTATUS). */
uint64_t hc_dispatch(uint64_t rax, uint64_t rcx, uint64_t rdx);

/* Whether [gpa, gpa + len) lies wholly in one of the guest-RAM ranges the server was given:
 * the one test of what guest memory is, for the server's copies and for the hypervisor's own
 * reads of guest memory (its walk of the guest's page tables). */
bool hc_in_guest_ram(uint64_t gpa, uint64_t len);

/* Moves the units' recorded faults to the report queue (for devices with reporting on).
 * HC_POLL does, waiting for another CPU's collection to end; the hypervisor calls
 * hc_collect_faults_unless_busy on every exit, which does nothing while another CPU collects
 * (that one takes what is there), so no exit waits on another CPU's DDI call. */
void hc_collect_faults(void);
void hc_collect_faults_unless_busy(void);

/* DMA-Guard policy changes go through here, so that the state-change reports they cause
 * are queued under the server's lock. */
void hc_set_dma_guard(bool blocking);

struct hc_server_stats {
    uint64_t calls, refused_before_routine; /* the latter: bad version, call, size or address */
    unsigned queued, lost;
    unsigned fault_registrations, callback_registrations;
};
struct hc_server_stats hc_server_stats(void);

#endif
