/* HOSTILE.EFI's pieces (boot/hostile*.c, boot/guest/hostile/hostile_traps.S): what every attack class
 * shares. The attacker runs as the hypervisor's guest at CPL 0 on every CPU, knows the
 * hypervisor's design and addresses, and after each class asks the hypervisor to audit
 * itself (HC_AUDIT), which answers on its own channel. Everything printed here goes to COM1,
 * the guest's own console, and proves nothing by itself. */
#ifndef BOOT_HOSTILE_H
#define BOOT_HOSTILE_H

#include <efi.h>
#include <efilib.h>
#include <stdbool.h>
#include <stdint.h>

#include "ddi/hypercall.h"
#include "guest/lib/ddi_protocol.h"
#include "common/mp_services.h"
#include "common/loader_handoff.h"

#define HOSTILE_MARKER 0x4b43415454414821ull /* "!HATTACK" little-endian */
#define HOSTILE_APIC 0xFEE00000ull
#define HOSTILE_IOAPIC 0xFEC00000ull
#define HOSTILE_ECAM 0xB0000000ull
#define HOSTILE_PM_BASE_DEFAULT 0x600u

struct hostile {
    const struct loader_handoff *o;
    uint64_t target_pa;   /* canary_pa, or a stand-in page of the region while it is 0 */
    bool canary_known;    /* target_pa is the loader's canary_pa */
    uint16_t pm_base;
    uint64_t region_end;
    /* MP services */
    struct mp_services_protocol *mp;
    UINTN cpus;
    uint32_t apic_id[8];  /* of CPUs 0..7 by MP services number */
    /* the DDI, through DDISHIM.EFI */
    struct iommu_hv_ddi_protocol *ddi;
    DMA_IOMMU_INTERFACE_EX ex;
    DMA_IOMMU_INTERFACE v1;
    bool have_ddi;
    /* pages of ours below 4 GiB */
    uint8_t *page;        /* scratch page */
    uint64_t page_pa;
    uint8_t *dma;         /* edu's staging page */
    uint64_t dma_pa;
    /* tallies for the summary */
    unsigned attempts, refused, got_through, classes;
    uint64_t leaked;      /* the last secret some attack read (0: none) */
    char worked[12][24];  /* classes in which something got through */
    unsigned nworked;
};

/* hostile_traps.S */
extern void hostile_gp_handler(void);
extern void hostile_ud_handler(void);
extern volatile uint64_t hostile_gp_count, hostile_gp_skip;
extern void hostile_nmi_handler(void);
extern volatile uint64_t hostile_nmi_count;
extern void hostile_pf_handler(void);
extern volatile uint64_t hostile_pf_page, hostile_pf_target, hostile_pf_marker, hostile_pf_pte, hostile_pf_pte_value,
    hostile_pf_old, hostile_pf_secret, hostile_pf_ran, hostile_pf_rsp;
extern void hostile_hsave_stub(void);
extern volatile uint64_t hostile_stub_target, hostile_stub_marker, hostile_stub_orig_hsave, hostile_stub_secret,
    hostile_stub_ran, hostile_stub_host_rip, hostile_stub_host_rsp;
extern const uint8_t hostile_smm_start[], hostile_smm_data[], hostile_smm_end[];
extern const uint8_t hostile_blob_start[], hostile_blob_end[];
/* offsets into the blob (a copy in a low page): see hostile_traps.S */
extern const uint8_t hostile_blob_cfg[], hostile_blob_mmio[];
extern uint64_t hostile_apic_load(uint64_t code, uint64_t apic); /* calls code with RAX = apic */

/* The SMM handler's data, at hostile_smm_data in the planted copy. */
struct hostile_smm_data {
    uint32_t ran;        /* incremented by each entry */
    uint32_t target;     /* physical address to read the secret from, and to mark (+8) */
    uint64_t secret;     /* what it read */
    uint64_t marker;     /* what it writes at target + 8 */
    uint32_t mine;       /* a page of the attacker's: gets a marker */
    uint32_t faults;     /* exceptions it took (the nested tables refusing it) */
    uint32_t efer;       /* EFER as the guest sees it: written back first thing */
    uint32_t reserved;
};

/* hostile.c */
extern uint64_t hostile_tsc_per_us;
void hl(struct hostile *h, const char *cls, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* One attempt: counts it as refused or as got through, and prints the line. */
void attempt(struct hostile *h, const char *cls, bool got_through, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void audit(struct hostile *h, const char *cls, uint64_t claimed);
bool every_ap_answers(struct hostile *h, const char *cls, const char *after);
uint8_t *hostile_pages(UINTN n, uint64_t *pa);
void hostile_free(uint64_t pa, UINTN n);
void install_gp(bool on);
uint64_t gp_count(void);
bool edu_move(struct hostile *h, uint64_t iova, uint32_t len, bool to_ram);
uint64_t read_cr(int n);
void stall_us(UINTN us); /* the firmware's Stall */

static inline uint8_t hinb(uint16_t port)
{
    uint8_t v = 0xFF;
    hostile_gp_skip = 1;
    __asm__ volatile("inb %%dx, %%al" : "+a"(v) : "d"(port) : "memory");
    return v;
}
static inline uint16_t hinw(uint16_t port)
{
    uint16_t v = 0xFFFF;
    hostile_gp_skip = 2;
    __asm__ volatile("inw %%dx, %%ax" : "+a"(v) : "d"(port) : "memory");
    return v;
}
static inline uint32_t hinl(uint16_t port)
{
    uint32_t v = 0xFFFFFFFFu;
    hostile_gp_skip = 1;
    __asm__ volatile("inl %%dx, %%eax" : "+a"(v) : "d"(port) : "memory");
    return v;
}
static inline void houtb(uint16_t port, uint8_t v)
{
    hostile_gp_skip = 1;
    __asm__ volatile("outb %%al, %%dx" : : "a"(v), "d"(port) : "memory");
}
static inline void houtw(uint16_t port, uint16_t v)
{
    hostile_gp_skip = 2;
    __asm__ volatile("outw %%ax, %%dx" : : "a"(v), "d"(port) : "memory");
}
static inline void houtl(uint16_t port, uint32_t v)
{
    hostile_gp_skip = 1;
    __asm__ volatile("outl %%eax, %%dx" : : "a"(v), "d"(port) : "memory");
}
/* 32-bit MMIO with two-byte instructions (8B 07 / 89 07), which the #GP handler can skip. */
static inline uint32_t hmmio_read(uint64_t pa)
{
    uint32_t v = 0xFFFFFFFFu;
    hostile_gp_skip = 2;
    __asm__ volatile(".byte 0x8b, 0x07" : "+a"(v) : "D"(pa) : "memory");
    return v;
}
static inline void hmmio_write(uint64_t pa, uint32_t v)
{
    hostile_gp_skip = 2;
    __asm__ volatile(".byte 0x89, 0x07" : : "a"(v), "D"(pa) : "memory");
}
static inline uint64_t hvmcall(uint64_t rax, uint64_t rcx, uint64_t rdx)
{
    __asm__ volatile("vmmcall" : "+a"(rax) : "c"(rcx), "d"(rdx) : "memory");
    return rax;
}
static inline bool irq_save(void)
{
    uint64_t f;
    __asm__ volatile("pushfq; popq %0; cli" : "=r"(f) : : "memory");
    return f & (1u << 9);
}
static inline void irq_restore(bool on)
{
    if (on)
        __asm__ volatile("sti" : : : "memory");
}

/* the classes */
void class_msr(struct hostile *h);
void class_host_state(struct hostile *h);
void class_ddi_map(struct hostile *h);
void class_smi(struct hostile *h);
void class_init(struct hostile *h);
void class_pci_config(struct hostile *h);
void class_ports(struct hostile *h);
void class_hypercall(struct hostile *h);
void class_toctou(struct hostile *h);
void class_dma(struct hostile *h);
void class_flood(struct hostile *h);
void class_nmi(struct hostile *h);

#endif
