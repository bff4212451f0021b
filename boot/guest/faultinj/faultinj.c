/* FAULTINJ.EFI: the fault-injection driver. The firmware runs it as the hypervisor's guest;
 * it reads \EFI\BOOT\SCENARIO.TXT (docs/scenarios.md), runs the steps through the DDI
 * protocol (one hypercall per call) and real edu DMA, and prints one line per step:
 *
 *   check: PASS|FAIL step LINE VERB: what happened
 *   dma LINE: sid 0xSID read|write 0xADDR len N expect ok|fault [reason R]: PASS|FAIL, N report(s)
 *
 * (a burst prints one dma line per device, with the same LINE),
 * then "scenario NAME: N steps, M failed; faults expected E, reported R" and the RESULT
 * line. The runner (scripts/fault-inject.sh) checks the dma lines against QEMU's trace. */
#include <efi.h>
#include <efilib.h>

#include "ddi/hypercall.h"
#include "guest/lib/ddi_protocol.h"
#include "common/edu.h"
#include "guest/lib/guest.h"
#include "iommu/fmt.h"
#include "common/mp_services.h"
#include "common/report.h"
#include "scenario/scenario.h"
#include "common/loader_handoff.h"

/* Every hypercall the driver makes itself (the shim counts its own), for the check against
 * QEMU's log of the exits (tests/qemu/arm64_checks.py hvc_exits, on Arm). */
static unsigned hypercalls_made;

static uint64_t hypercall(uint64_t rax, uint64_t rcx, uint64_t rdx)
{
    hypercalls_made++;
    return guest_hypercall(rax, rcx, rdx);
}

static bool read_books(struct hc_stats_block *b)
{
    hypercalls_made++;
    return guest_books(b);
}

#define MAX_OBJECTS SCENARIO_MAX_NAMES

enum object_kind { OBJ_DOMAIN = 1, OBJ_DEVICE, OBJ_BUFFER, OBJ_TOKEN, OBJ_MAPPING };

struct object {
    enum object_kind kind;
    char name[SCENARIO_WORD];
    union {
        struct {
            PIOMMU_DMA_DOMAIN handle;
            bool v1, passthrough;
        } domain;
        struct {
            PIOMMU_DMA_DEVICE handle;
            unsigned edu;
            int domain; /* object index, or -1 */
        } device;
        struct {
            uint8_t *va;
            uint64_t pa;
            unsigned pages;
        } buffer;
        struct {
            PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN token;
            IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT segment;
            int domain;
        } token;
        struct {
            uint64_t iova;
            unsigned pages;
            int domain, buffer;
        } mapping;
    };
};

/* The driver's state while it runs a scenario: the loader's options, the interfaces, the
 * scenario's named objects, what reached the handlers, and the checks. */
static struct {
    const struct loader_handoff *o;
    struct iommu_hv_ddi_protocol *p;
    DMA_IOMMU_INTERFACE_EX ex;
    DMA_IOMMU_INTERFACE v1;
    struct object obj[MAX_OBJECTS];
    unsigned objects;
    unsigned reports, reports_at_last_check, faults_expected;
    uint64_t last_report_address;
    unsigned wrong_arch_reports; /* reports whose FAULT_INFORMATION arm is not this CPU's (F2) */
    /* The types of the reports since the last expect-reports, in order (the first 64). */
    FAULT_INFORMATION_X64_TYPE types[SCENARIO_MAX_TYPES];
    unsigned callbacks, callbacks_at_last_check;
    ULONG last_available; /* AvailableDomainTypes of the latest state change */
    uint32_t overflows_at_last_check;
    uint64_t tsc_per_us;
    struct checks c;
} driver;

/* Every mapping the scenario made (named or not, and whether unmapped since), newest last:
 * where the bytes behind a device's address are. */
static struct mapping_record {
    int domain, buffer; /* object indexes */
    uint64_t iova, pages;
} mappings[SCENARIO_MAX_STEPS];
static unsigned mapping_count;

/* What each edu holds in its buffer, as far as the driver knows: bytes [0, known) are
 * bytes[]. A read that succeeds from a buffer makes them known; a write that succeeds must
 * put exactly them in memory. QEMU's edu fills its buffer with zeroes where a read faults:
 * all of it, or, for a DMA that faults part way, the part from the first unmapped page on
 * (docs/scenarios.md, "A DMA that faults part way"). */
static struct {
    uint8_t bytes[EDU_MAX_TRANSFER];
    uint32_t known;
} device_buffer[2];

/* ---- objects ---- */

static struct object *find(const char *name)
{
    for (unsigned i = 0; i < driver.objects; i++) {
        const char *a = driver.obj[i].name, *b = name;
        while (*a && *a == *b)
            a++, b++;
        if (*a == *b)
            return &driver.obj[i];
    }
    return NULL;
}

static struct object *add(enum object_kind kind, const char *name)
{
    struct object *o = &driver.obj[driver.objects++];
    *o = (struct object){.kind = kind};
    for (unsigned i = 0; name[i] && i + 1 < SCENARIO_WORD; i++)
        o->name[i] = name[i];
    return o;
}

static int index_of(const struct object *o)
{
    return o ? (int)(o - driver.obj) : -1;
}

static void record_mapping(int domain, int buffer, uint64_t iova, uint64_t pages)
{
    if (mapping_count < sizeof mappings / sizeof mappings[0])
        mappings[mapping_count++] = (struct mapping_record){domain, buffer, iova, pages};
}

/* The buffer bytes a device reaches at addr (len bytes), or NULL when that is not a
 * buffer of the scenario: through its domain's mappings when the domain translates, else
 * (the default domain, PassThrough) at that physical address. */
static uint8_t *buffer_behind(const struct object *dev, uint64_t addr, uint64_t len)
{
    int domain = dev->device.domain;
    if (domain >= 0 && !driver.obj[domain].domain.passthrough) {
        for (unsigned i = mapping_count; i-- > 0;) {
            const struct mapping_record *r = &mappings[i];
            if (r->domain == domain && addr >= r->iova && addr - r->iova + len <= r->pages * 4096)
                return driver.obj[r->buffer].buffer.va + (addr - r->iova);
        }
        return NULL;
    }
    for (unsigned i = 0; i < driver.objects; i++) {
        const struct object *b = &driver.obj[i];
        if (b->kind == OBJ_BUFFER && addr >= b->buffer.pa && addr - b->buffer.pa + len <= b->buffer.pages * 4096ull)
            return b->buffer.va + (addr - b->buffer.pa);
    }
    return NULL;
}

static VOID NTAPI on_fault(PVOID context, PFAULT_INFORMATION info)
{
    (void)context;
    /* The arm the architecture fills (F2): Arm64 on Arm, X64 on x86; the types are one enum. */
    bool arm64 = info->Type == FaultInformationArm64;
    unsigned since_check = driver.reports - driver.reports_at_last_check;
    if (since_check < sizeof driver.types / sizeof driver.types[0])
        driver.types[since_check] = arm64 ? (FAULT_INFORMATION_X64_TYPE)info->Arm64.Type : info->X64.Type;
    driver.reports++;
    driver.last_report_address = (uint64_t)(uintptr_t)(arm64 ? info->Arm64.FaultAddress : info->X64.FaultAddress);
#if defined(__aarch64__)
    driver.wrong_arch_reports += !arm64;
#else
    driver.wrong_arch_reports += arm64;
#endif
}

static VOID NTAPI on_state_change(PIOMMU_INTERFACE_STATE_CHANGE change, PVOID context)
{
    (void)context;
    driver.callbacks++;
    driver.last_available = change->AvailableDomainTypes;
}


static ULONG permissions(const struct scenario_step *s)
{
    return (s->v.perm & SCENARIO_PERM_READ ? IOMMU_ACCESS_READ : 0) |
           (s->v.perm & SCENARIO_PERM_WRITE ? IOMMU_ACCESS_WRITE : 0);
}

static IOMMU_MAP_PHYSICAL_ADDRESS range(uint64_t pa, uint64_t pages)
{
    IOMMU_MAP_PHYSICAL_ADDRESS m = {.MapType = MapPhysicalAddressTypeContiguousRange};
    m.ContiguousRange.Base.QuadPart = (LONGLONG)pa;
    m.ContiguousRange.Size = pages * 4096;
    return m;
}

/* ---- the steps ---- */


/* A DDI step's status against the one the scenario wants (success unless it says). */
static void ddi_result(const struct scenario_step *s, NTSTATUS got, const char *what)
{
    uint32_t want = s->v.status; /* 0, success, unless the step says */
    checkf(&driver.c, (uint32_t)got == want, "step %u %s: %s returned 0x%08x, want 0x%08x", s->line,
           scenario_verb(s->kind), what, (uint32_t)got, want);
}

static void run_domain(const struct scenario_step *s, struct object *unused_a, struct object *unused_b)
{
    (void)unused_a;
    (void)unused_b;
    unsigned type = s->word; /* enum scenario_domain_type */
    struct object *o = add(OBJ_DOMAIN, s->arg[0]);
    PIOMMU_DMA_DOMAIN d = NULL;
    NTSTATUS st;
    IOMMU_DMA_DOMAIN_CREATION_FLAGS none = {.AsUlonglong = 0};
    if (type == SCENARIO_V1_OS_MANAGED || type == SCENARIO_V1_CALLER_MANAGED) {
        st = driver.v1.CreateDomain(type == SCENARIO_V1_OS_MANAGED, &d);
        o->domain.v1 = true;
    } else {
        IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG buddy = {
            .LogicalAllocatorType = IommuDmaLogicalAllocatorBuddy,
            .BuddyAllocatorConfig = {.AddressWidth = (ULONG)scenario_value(s, KEY_WIDTH, 39)}};
        IOMMU_DMA_DOMAIN_TYPE t = type == SCENARIO_PASSTHROUGH    ? DomainTypePassThrough
                                : type == SCENARIO_UNMANAGED      ? DomainTypeUnmanaged
                                : type == SCENARIO_TRANSLATE_S1   ? DomainTypeTranslateS1
                                                                  : DomainTypeTranslate;
        st = driver.ex.V2.CreateDomainEx(t, none, type == SCENARIO_TRANSLATE_BUDDY ? &buddy : NULL, NULL, &d);
        o->domain.passthrough = t == DomainTypePassThrough;
    }
    o->domain.handle = NT_SUCCESS(st) ? d : NULL;
    ddi_result(s, st, "CreateDomain");
}

/* One edu transfer of a dma or burst step. */
struct transfer {
    const struct scenario_step *s;
    const struct object *dev;
    const struct handoff_edu *e;
    bool write, expect_fault, started, done;
    uint64_t addr, len;
    uint8_t *target; /* the buffer bytes at addr, when the driver knows them */
    /* A DMA that faults part way (expect=fault with address=A inside it): the bytes before
     * A moved, to or from head (the buffer bytes the device reaches at addr, when known);
     * the rest faulted. 0 for a DMA that faults from its first byte. */
    uint64_t moved;
    uint8_t *head;
    uint8_t before[EDU_MAX_TRANSFER];
};

/* Where the step's at= points, and the buffer bytes there when known: those the device
 * reaches, or else those the scenario named (a write that must fault must leave them as
 * they were, in another domain too). */
static void resolve_target(struct transfer *t)
{
    const struct scenario_target at = t->s->v.at;
    const struct object *o = find(at.name), *named = NULL;
    uint64_t offset = at.kind == TARGET_ADDRESS ? 0 : at.value;
    if (at.kind == TARGET_REGION) {
        t->addr = driver.o->region_base;
    } else if (at.kind == TARGET_BUFFER) {
        t->addr = o->buffer.pa + offset;
        named = o;
    } else if (at.kind == TARGET_MAPPING) {
        t->addr = o->mapping.iova + offset;
        named = &driver.obj[o->mapping.buffer];
    } else {
        t->addr = at.value;
    }
    t->target = buffer_behind(t->dev, t->addr, t->len);
    if (!t->target && named && offset + t->len <= named->buffer.pages * 4096ull)
        t->target = named->buffer.va + offset;
}

static void transfer_prepare(struct transfer *t, const struct scenario_step *s, const struct object *dev, bool write)
{
    t->s = s;
    t->dev = dev;
    t->e = &driver.o->edu[dev->device.edu];
    t->write = write;
    t->expect_fault = s->v.expect_fault;
    t->len = scenario_value(s, KEY_LEN, 0);
    t->started = t->done = false;
    resolve_target(t);
    uint64_t first_fault = scenario_value(s, KEY_ADDRESS, 0);
    t->moved =
        t->expect_fault && scenario_given(s, KEY_ADDRESS) && first_fault > t->addr && first_fault < t->addr + t->len
            ? first_fault - t->addr
            : 0;
    t->head = t->moved ? buffer_behind(dev, t->addr, t->moved) : NULL;
    if (t->target)
        __builtin_memcpy(t->before, t->target, t->len);
}

/* Checks what the transfer did to memory and to the device's buffer, and prints its dma
 * line (for the runner's cross-check with QEMU's trace) and its check. */
static void transfer_finish(struct transfer *t, unsigned reports)
{
    const struct scenario_step *s = t->s;
    unsigned slot = t->dev->device.edu;
    uint16_t sid = (uint16_t)(t->e->bus << 8 | t->e->device << 3 | t->e->function);
    const char *data = "";
    static char partial[160];
    bool data_ok = true;
    if (t->write && t->expect_fault && t->moved) {
        /* The pages before the first unmapped one hold the device's bytes; the rest of the
         * buffer at the address is as it was. */
        bool known = t->head && device_buffer[slot].known >= t->moved;
        bool head_ok = !known || CompareMem(device_buffer[slot].bytes, t->head, t->moved) == 0;
        bool tail_ok = !t->target || CompareMem(t->before + t->moved, t->target + t->moved, t->len - t->moved) == 0;
        data_ok = head_ok && tail_ok;
        fmt_format(partial, sizeof partial, "; the first %lu bytes %s, the other %lu %s", t->moved,
                   !known ? "not checked (the device's bytes or the buffer there are unknown)"
                   : head_ok ? "hold the device's bytes"
                             : "do NOT hold the device's bytes",
                   t->len - t->moved, !t->target ? "not checked (no buffer)" : tail_ok ? "unchanged" : "CHANGED");
        data = partial;
    } else if (t->write && t->expect_fault && t->target) {
        data_ok = CompareMem(t->before, t->target, t->len) == 0;
        data = data_ok ? "; memory unchanged" : "; memory CHANGED";
    } else if (t->write && t->target && device_buffer[slot].known >= t->len) {
        data_ok = CompareMem(device_buffer[slot].bytes, t->target, t->len) == 0;
        data = data_ok ? "; the device's bytes arrived" : "; memory does not hold the device's bytes";
    } else if (t->write) {
        data = t->target ? "; data not checked (the device's bytes are unknown: no read before)"
                         : "; data not checked (no buffer behind the address)";
    } else if (t->expect_fault && t->moved) {
        /* The device got the bytes before the first unmapped page, and zeroes after. */
        if (t->head) {
            __builtin_memcpy(device_buffer[slot].bytes, t->head, t->moved);
            __builtin_memset(device_buffer[slot].bytes + t->moved, 0, t->len - t->moved);
        }
        device_buffer[slot].known = t->head ? (uint32_t)t->len : 0;
        fmt_format(partial, sizeof partial, "; the device got the first %lu bytes%s and zeroes", t->moved,
                   t->head ? "" : " (not known: no buffer there)");
        data = partial;
    } else if (t->expect_fault) {
        __builtin_memset(device_buffer[slot].bytes, 0, t->len);
        device_buffer[slot].known = (uint32_t)t->len;
    } else if (t->target) {
        __builtin_memcpy(device_buffer[slot].bytes, t->target, t->len);
        device_buffer[slot].known = (uint32_t)t->len;
    } else {
        device_buffer[slot].known = 0;
    }
    bool ok = t->done && data_ok;
    if (t->expect_fault)
        driver.faults_expected++;
    /* reason, and address: where the scenario says the first fault is (the runner checks
     * both against QEMU's records of this DMA). */
    static char reason[32], address[40];
    reason[0] = address[0] = 0;
    if (scenario_given(s, KEY_REASON))
        fmt_format(reason, sizeof reason, " reason %lu", s->v.number[KEY_REASON]);
    if (t->expect_fault && scenario_given(s, KEY_ADDRESS))
        fmt_format(address, sizeof address, " address 0x%lx", s->v.number[KEY_ADDRESS]);
    sink_printf(out, "dma %u: sid 0x%04x %s 0x%lx len %lu expect %s%s%s: %s, %u report(s)\n", s->line, sid,
                t->write ? "write" : "read", t->addr, t->len, t->expect_fault ? "fault" : "ok", reason, address,
                ok ? "PASS" : "FAIL", driver.reports - reports);
    checkf(&driver.c, ok, "step %u %s: %s %s 0x%lx %s%s", s->line, scenario_verb(s->kind), t->dev->name,
           t->write ? "write" : "read", t->addr, t->done ? "completed" : "timed out", data);
}

/* Lets the fault reports of the transfers just done arrive: the hypervisor hands them over
 * at the next poll, after it has taken them from the unit. */
static void collect_reports(unsigned reports, bool expect_fault)
{
    for (unsigned i = 0; i < 50 && expect_fault && driver.reports == reports; i++) {
        driver.p->poll();
        uefi_call_wrapper(BS->Stall, 1, 1000);
    }
    driver.p->poll();
}

static void run_dma(const struct scenario_step *s, struct object *device, struct object *unused)
{
    (void)unused;
    static struct transfer t;
    transfer_prepare(&t, s, device, s->word == SCENARIO_WRITE);
    unsigned reports = driver.reports;
    t.done = edu_dma(&guest_platform, t.e->bar, t.addr, (uint32_t)t.len, t.write);
    collect_reports(reports, t.expect_fault);
    transfer_finish(&t, reports);
    if (scenario_given(s, KEY_ADDRESS) && driver.reports > reports) {
        uint64_t a = s->v.number[KEY_ADDRESS];
        checkf(&driver.c, driver.last_report_address == a, "step %u dma: reported address 0x%lx, want 0x%lx", s->line,
               driver.last_report_address, a);
    }
}

/* The devices start their transfers one after the other, with no poll in between, and run
 * at once: their faults reach the unit's single fault record together. */
static void run_burst(const struct scenario_step *s, struct object *unused_a, struct object *unused_b)
{
    (void)unused_a;
    (void)unused_b;
    static struct transfer t[2];
    unsigned n = s->args - 1;
    bool write = s->word == SCENARIO_WRITE;
    for (unsigned i = 0; i < n; i++)
        transfer_prepare(&t[i], s, find(s->arg[1 + i]), write);
    unsigned reports = driver.reports;
    for (unsigned i = 0; i < n; i++)
        t[i].started = edu_dma_start(&guest_platform, t[i].e->bar, t[i].addr, (uint32_t)t[i].len, write);
    for (unsigned i = 0; i < n; i++)
        t[i].done = t[i].started && edu_dma_wait(&guest_platform, t[i].e->bar);
    collect_reports(reports, t[0].expect_fault);
    for (unsigned i = 0; i < n; i++)
        transfer_finish(&t[i], reports);
}

/* ---- DDI calls from every CPU at once ---- */

#define PARALLEL_MAX_CPUS 4

static struct parallel_work {
    DMA_IOMMU_INTERFACE_V2 *v2;
    struct mp_services_protocol *mp;
    PIOMMU_DMA_DOMAIN domain;
    uint64_t buffer_pa, iova;
    unsigned rounds;
    /* The start line: every CPU waits there until all cpus have arrived (or until the
     * deadline), so their rounds begin together and overlap whatever their number. */
    unsigned cpus;
    uint32_t arrived;
    uint64_t start_deadline;
    struct {
        uint32_t going; /* set once its rounds have begun (after first_tsc) */
        uint32_t rounds_done, failures;
        uint32_t first_failure;
        uint64_t first_tsc, last_tsc;
    } cpu[PARALLEL_MAX_CPUS];
} parallel;

static bool all_going(void)
{
    for (unsigned k = 0; k < parallel.cpus; k++)
        if (!__atomic_load_n(&parallel.cpu[k].going, __ATOMIC_SEQ_CST))
            return false;
    return true;
}

/* CPU n maps page n of the buffer at iova + n pages and unmaps it again, rounds times, and
 * then on until it has made a whole round after every CPU began its own (a vCPU the host
 * does not run for a while starts late; the others wait for it by working, until the start
 * deadline): so the CPUs' calls overlap whatever rounds is. */
static void parallel_share(unsigned n)
{
    IOMMU_MAP_PHYSICAL_ADDRESS m = range(parallel.buffer_pa + n * 4096ull, 1);
    IOMMU_DMA_LOGICAL_ADDRESS at = parallel.iova + n * 4096ull, placed = 0;
    __atomic_add_fetch(&parallel.arrived, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&parallel.arrived, __ATOMIC_SEQ_CST) < parallel.cpus && tsc_read() < parallel.start_deadline)
        guest_relax();
    parallel.cpu[n].first_tsc = tsc_read();
    __atomic_store_n(&parallel.cpu[n].going, 1, __ATOMIC_SEQ_CST);
    bool seen_all = false;
    for (unsigned r = 0; r < parallel.rounds || !seen_all; r++) {
        seen_all = seen_all || all_going();
        if (!seen_all && r >= parallel.rounds && tsc_read() > parallel.start_deadline)
            break;
        NTSTATUS st = parallel.v2->MapLogicalRangeEx(parallel.domain, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, &m, &at,
                                                     NULL, NULL, &placed);
        if (NT_SUCCESS(st))
            st = parallel.v2->UnmapLogicalRange(parallel.domain, at, 1);
        if (!NT_SUCCESS(st) && !parallel.cpu[n].failures++)
            parallel.cpu[n].first_failure = (uint32_t)st;
        parallel.cpu[n].rounds_done++;
    }
    parallel.cpu[n].last_tsc = tsc_read();
}

static VOID EFIAPI parallel_ap(VOID *argument)
{
    (void)argument;
    UINTN n = 0;
    if (!EFI_ERROR(parallel.mp->who_am_i(parallel.mp, &n)) && n > 0 && n < PARALLEL_MAX_CPUS)
        parallel_share((unsigned)n);
}

static void run_parallel_map(const struct scenario_step *s, struct object *domain, struct object *buffer)
{
    EFI_GUID guid = MP_SERVICES_PROTOCOL_GUID;
    UINTN total = 0, enabled = 0;
    parallel = (struct parallel_work){.v2 = &driver.ex.V2,
                                      .domain = domain->domain.handle,
                                      .buffer_pa = buffer->buffer.pa,
                                      .iova = scenario_value(s, KEY_IOVA, 0),
                                      .rounds = (unsigned)scenario_value(s, KEY_ROUNDS, 1)};
    bool ready = !EFI_ERROR(uefi_call_wrapper(BS->LocateProtocol, 3, &guid, NULL, (void **)&parallel.mp)) &&
                 !EFI_ERROR(parallel.mp->get_number_of_processors(parallel.mp, &total, &enabled)) && enabled >= 2;
    unsigned cpus = enabled < PARALLEL_MAX_CPUS ? (unsigned)enabled : PARALLEL_MAX_CPUS;
    parallel.cpus = cpus;
    parallel.start_deadline = tsc_read() + 10 * 1000 * 1000 * driver.tsc_per_us; /* 10 s for the APs to start */
    if (!checkf(&driver.c, ready && buffer->buffer.pages >= cpus,
                "step %u parallel-map: %u CPUs, a page of %s for each", s->line, cpus, buffer->name))
        return;
    EFI_EVENT finished = NULL;
    bool started = !EFI_ERROR(uefi_call_wrapper(BS->CreateEvent, 5, 0, 0, NULL, NULL, &finished)) &&
                   !EFI_ERROR(parallel.mp->startup_all_aps(parallel.mp, parallel_ap, FALSE, finished, 60 * 1000 * 1000,
                                                           NULL, NULL));
    if (started)
        parallel_share(0);
    bool all_back = false;
    for (unsigned ms = 0; started && ms < 60000 && !all_back; ms++) {
        all_back = uefi_call_wrapper(BS->CheckEvent, 1, finished) == EFI_SUCCESS;
        if (!all_back)
            uefi_call_wrapper(BS->Stall, 1, 1000);
    }
    if (finished)
        uefi_call_wrapper(BS->CloseEvent, 1, finished);
    uint64_t latest_start = 0, earliest_end = ~0ull;
    bool all_done = true;
    for (unsigned n = 0; n < cpus; n++) {
        checkf(&driver.c, parallel.cpu[n].rounds_done >= parallel.rounds && !parallel.cpu[n].failures,
               "step %u parallel-map: cpu %u made %u map-unmap rounds (at least %u), %u failed (first status 0x%08x)",
               s->line, n, parallel.cpu[n].rounds_done, parallel.rounds, parallel.cpu[n].failures,
               parallel.cpu[n].first_failure);
        all_done = all_done && parallel.cpu[n].rounds_done >= parallel.rounds;
        latest_start = parallel.cpu[n].first_tsc > latest_start ? parallel.cpu[n].first_tsc : latest_start;
        earliest_end = parallel.cpu[n].last_tsc < earliest_end ? parallel.cpu[n].last_tsc : earliest_end;
    }
    checkf(&driver.c, started && all_back && all_done && latest_start < earliest_end,
           "step %u parallel-map: the %u CPUs' calls overlapped in time (%lu us together; %u of %u at the start line)",
           s->line, cpus, earliest_end > latest_start ? (earliest_end - latest_start) / driver.tsc_per_us : 0,
           __atomic_load_n(&parallel.arrived, __ATOMIC_SEQ_CST), cpus);
}

static void run_delete_domain(const struct scenario_step *s, struct object *a, struct object *b)
{
    (void)b;
    DMA_IOMMU_INTERFACE_V2 *v2 = &driver.ex.V2;
    NTSTATUS st = v2->DeleteDomain(a->domain.handle);
    ddi_result(s, st, "DeleteDomain");
}

static void run_device(const struct scenario_step *s, struct object *a, struct object *b)
{
    (void)a;
    (void)b;
    DMA_IOMMU_INTERFACE_V2 *v2 = &driver.ex.V2;
    NTSTATUS st;
    struct object *o = add(OBJ_DEVICE, s->arg[0]);
    o->device.edu = (unsigned)(s->arg[1][3] - '0');
    o->device.domain = -1;
    const struct handoff_edu *e = &driver.o->edu[o->device.edu];
    DEVICE_OBJECT pdo;
    IommuPciDeviceObject(&pdo, e->segment, e->bus, e->device, e->function);
    st = o->device.edu < driver.o->edus ? v2->CreateDevice(&pdo, NULL, &o->device.handle) : STATUS_NOT_FOUND;
    ddi_result(s, st, "CreateDevice");
}

static void run_delete_device(const struct scenario_step *s, struct object *a, struct object *b)
{
    (void)b;
    DMA_IOMMU_INTERFACE_V2 *v2 = &driver.ex.V2;
    ddi_result(s, v2->DeleteDevice(a->device.handle), "DeleteDevice");
}

static void run_attach(const struct scenario_step *s, struct object *a, struct object *b)
{
    DMA_IOMMU_INTERFACE_V2 *v2 = &driver.ex.V2;
    NTSTATUS st = v2->AttachDeviceEx(a->domain.handle, b->device.handle);
    if (NT_SUCCESS(st))
        b->device.domain = index_of(a);
    ddi_result(s, st, "AttachDeviceEx");
}

static void run_detach(const struct scenario_step *s, struct object *a, struct object *b)
{
    (void)b;
    DMA_IOMMU_INTERFACE_V2 *v2 = &driver.ex.V2;
    NTSTATUS st = v2->DetachDeviceEx(a->device.handle);
    if (NT_SUCCESS(st))
        a->device.domain = -1;
    ddi_result(s, st, "DetachDeviceEx");
}

static void run_buffer(const struct scenario_step *s, struct object *a, struct object *b)
{
    (void)a;
    (void)b;
    struct object *o = add(OBJ_BUFFER, s->arg[0]);
    o->buffer.pages = (unsigned)scenario_value(s, KEY_PAGES, 1);
    /* Aligned buffers come from a larger allocation (the firmware aligns only to pages);
     * the slack is not given back: a run is short. */
    uint64_t align = scenario_value(s, KEY_ALIGN, 4096);
    EFI_PHYSICAL_ADDRESS pa = 0xffffffff;
    bool ok = !EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiBootServicesData,
                                           o->buffer.pages + align / 4096 - 1, &pa));
    pa = (pa + align - 1) & ~(align - 1);
    o->buffer.pa = pa;
    o->buffer.va = (uint8_t *)(uintptr_t)pa;
    if (ok)
        __builtin_memset(o->buffer.va, (int)scenario_value(s, KEY_FILL, 0), o->buffer.pages * 4096ull);
    checkf(&driver.c, ok, "step %u buffer: %u pages at 0x%lx", s->line, o->buffer.pages, o->buffer.pa);
}

static void run_map(const struct scenario_step *s, struct object *a, struct object *b)
{
    DMA_IOMMU_INTERFACE_V2 *v2 = &driver.ex.V2;
    NTSTATUS st;
    uint64_t pages = scenario_value(s, KEY_PAGES, b->buffer.pages);
    IOMMU_MAP_PHYSICAL_ADDRESS m = range(b->buffer.pa, pages);
    IOMMU_DMA_LOGICAL_ADDRESS at = scenario_value(s, KEY_IOVA, 0), placed = 0;
    IOMMU_DMA_LOGICAL_ADDRESS min = scenario_value(s, KEY_MIN, 0), max = scenario_value(s, KEY_MAX, ~0ull);
    bool window = scenario_given(s, KEY_MIN) || scenario_given(s, KEY_MAX);
    st = v2->MapLogicalRangeEx(a->domain.handle, permissions(s), &m,
                               s->v.iova_alloc ? NULL : &at, scenario_given(s, KEY_MIN) ? &min : NULL,
                               scenario_given(s, KEY_MAX) ? &max : NULL, &placed);
    if (window && NT_SUCCESS(st))
        checkf(&driver.c, placed >= min && placed + pages * 4096 - 1 <= max,
               "step %u map: IOVA 0x%lx..0x%lx inside the window 0x%lx..0x%lx", s->line, placed,
               placed + pages * 4096 - 1, min, max);
    if (scenario_given(s, KEY_AS)) {
        struct object *o = add(OBJ_MAPPING, s->v.as);
        o->mapping.iova = NT_SUCCESS(st) ? placed : at;
        o->mapping.pages = (unsigned)pages;
        o->mapping.domain = index_of(a);
        o->mapping.buffer = index_of(b);
    }
    ddi_result(s, st, "MapLogicalRangeEx");
    if (NT_SUCCESS(st)) {
        record_mapping(index_of(a), index_of(b), placed, pages);
        sink_printf(out, "step %u map: IOVA 0x%lx, %lu pages\n", s->line, placed, pages);
    }
}

static void run_unmap(const struct scenario_step *s, struct object *a, struct object *b)
{
    (void)b;
    DMA_IOMMU_INTERFACE_V2 *v2 = &driver.ex.V2;
    const struct scenario_target t = s->v.iova;
    const struct object *m = t.kind == TARGET_MAPPING ? find(t.name) : NULL;
    uint64_t at = m && m->kind == OBJ_MAPPING ? m->mapping.iova + t.value : t.value;
    ddi_result(s, v2->UnmapLogicalRange(a->domain.handle, at, scenario_value(s, KEY_PAGES, 1)),
               "UnmapLogicalRange");
}

static void run_map_identity(const struct scenario_step *s, struct object *a, struct object *b)
{
    DMA_IOMMU_INTERFACE_V2 *v2 = &driver.ex.V2;
    NTSTATUS st;
    IOMMU_MAP_PHYSICAL_ADDRESS m = range(b->buffer.pa, b->buffer.pages);
    st = v2->MapIdentityRangeEx(a->domain.handle, permissions(s), &m);
    if (NT_SUCCESS(st))
        record_mapping(index_of(a), index_of(b), b->buffer.pa, b->buffer.pages);
    ddi_result(s, st, "MapIdentityRangeEx");
}

static void run_unmap_identity(const struct scenario_step *s, struct object *a, struct object *b)
{
    DMA_IOMMU_INTERFACE_V2 *v2 = &driver.ex.V2;
    IOMMU_MAP_PHYSICAL_ADDRESS m = range(b->buffer.pa, b->buffer.pages);
    ddi_result(s, v2->UnmapIdentityRangeEx(a->domain.handle, &m), "UnmapIdentityRangeEx");
}

static void run_reserve(const struct scenario_step *s, struct object *a, struct object *b)
{
    (void)a;
    DMA_IOMMU_INTERFACE_V2 *v2 = &driver.ex.V2;
    NTSTATUS st;
    struct object *o = add(OBJ_TOKEN, s->arg[0]);
    IOMMU_DMA_LOGICAL_ADDRESS at = scenario_value(s, KEY_IOVA, 0);
    IOMMU_DMA_LOGICAL_ADDRESS min = scenario_value(s, KEY_MIN, 0), max = scenario_value(s, KEY_MAX, ~0ull);
    uint64_t size = scenario_value(s, KEY_PAGES, 1) * 4096;
    o->token.domain = index_of(b);
    st = v2->ReserveLogicalAddressRange(b->domain.handle, size, scenario_given(s, KEY_IOVA) ? &at : NULL,
                                        scenario_given(s, KEY_MIN) ? &min : NULL,
                                        scenario_given(s, KEY_MAX) ? &max : NULL, &o->token.token);
    ddi_result(s, st, "ReserveLogicalAddressRange");
    if ((scenario_given(s, KEY_MIN) || scenario_given(s, KEY_MAX)) && NT_SUCCESS(st)) {
        uint64_t base = o->token.token->LogicalAddressBase;
        checkf(&driver.c, base >= min && base + size - 1 <= max,
               "step %u reserve: IOVA 0x%lx..0x%lx inside the window 0x%lx..0x%lx", s->line, base,
               base + size - 1, min, max);
    }
}

static void run_map_reserved(const struct scenario_step *s, struct object *a, struct object *b)
{
    DMA_IOMMU_INTERFACE_V2 *v2 = &driver.ex.V2;
    NTSTATUS st;
    uint64_t pages = scenario_value(s, KEY_PAGES, b->buffer.pages), offset = scenario_value(s, KEY_OFFSET, 0);
    IOMMU_MAP_PHYSICAL_ADDRESS m = range(b->buffer.pa, pages);
    st = v2->MapReservedLogicalRange(a->token.token, offset, permissions(s), &m,
                                     &a->token.segment);
    if (NT_SUCCESS(st))
        record_mapping(a->token.domain, index_of(b), a->token.token->LogicalAddressBase + offset, pages);
    ddi_result(s, st, "MapReservedLogicalRange");
}

static void run_unmap_reserved(const struct scenario_step *s, struct object *a, struct object *b)
{
    (void)b;
    DMA_IOMMU_INTERFACE_V2 *v2 = &driver.ex.V2;
    ddi_result(s, v2->UnmapReservedLogicalRange(&a->token.segment), "UnmapReservedLogicalRange");
}

static void run_free_reserved(const struct scenario_step *s, struct object *a, struct object *b)
{
    (void)b;
    DMA_IOMMU_INTERFACE_V2 *v2 = &driver.ex.V2;
    ddi_result(s, v2->FreeReservedLogicalAddressRange(a->token.token), "FreeReservedLogicalAddressRange");
}

static void run_reporting(const struct scenario_step *s, struct object *a, struct object *b)
{
    (void)b;
    const struct handoff_edu *e = &driver.o->edu[a->device.edu];
    DEVICE_OBJECT pdo;
    IommuPciDeviceObject(&pdo, e->segment, e->bus, e->device, e->function);
    DEVICE_FAULT_CONFIGURATION fc = {on_fault, NULL};
    bool on = s->word == SCENARIO_ON;
    ddi_result(s, driver.v1.SetDeviceFaultReporting(&pdo, 0, on, on ? &fc : NULL), "SetDeviceFaultReporting");
}

static void run_guard(const struct scenario_step *s, struct object *a, struct object *b)
{
    (void)a;
    (void)b;
    struct hc_inject_block i = {.kind = HC_INJECT_DMA_GUARD, .value = s->word == SCENARIO_ON};
    uint64_t r = hypercall(hc_rax(HC_INJECT), (uint64_t)(uintptr_t)&i, sizeof i);
    checkf(&driver.c, r == 0, "step %u guard %s: 0x%lx", s->line, s->arg[0], r);
    driver.p->poll(); /* the state changes it causes */
}

static void run_inject(const struct scenario_step *s, struct object *a, struct object *b)
{
    (void)a;
    (void)b;
    bool pool = s->word == SCENARIO_POOL_FAIL;
    struct hc_inject_block i = {.kind = pool ? HC_INJECT_POOL_FAIL : HC_INJECT_INVALIDATION_TIMEOUT,
                                .value = pool ? scenario_value(s, KEY_AT, 1) : 1};
    uint64_t r = hypercall(hc_rax(HC_INJECT), (uint64_t)(uintptr_t)&i, sizeof i);
    checkf(&driver.c, r == 0, "step %u inject %s: status 0x%lx", s->line, s->arg[0], r);
}

static void run_callback(const struct scenario_step *s, struct object *a, struct object *b)
{
    (void)b;
    DMA_IOMMU_INTERFACE_V2 *v2 = &driver.ex.V2;
    IOMMU_INTERFACE_STATE_CHANGE_FIELDS fields = {.AsULONG = 0};
    fields.AvailableDomainTypes = 1;
    if (s->word == SCENARIO_ON)
        ddi_result(s, v2->RegisterInterfaceStateChangeCallback(on_state_change, NULL, a->device.handle, &fields),
                   "RegisterInterfaceStateChangeCallback");
    else
        ddi_result(s, v2->UnregisterInterfaceStateChangeCallback(on_state_change, a->device.handle),
                   "UnregisterInterfaceStateChangeCallback");
}

static void run_expect_callbacks(const struct scenario_step *s, struct object *a, struct object *b)
{
    (void)a;
    (void)b;
    driver.p->poll();
    unsigned got = driver.callbacks - driver.callbacks_at_last_check;
    driver.callbacks_at_last_check = driver.callbacks;
    uint64_t want = scenario_value(s, KEY_COUNT, 0);
    checkf(&driver.c, got == want, "step %u expect-callbacks: %u state changes reached the callback, want %lu",
           s->line, got, want);
    if (scenario_given(s, KEY_AVAILABLE)) {
        uint32_t mask = s->v.available;
        checkf(&driver.c, got && driver.last_available == mask,
               "step %u expect-callbacks: the last change says available 0x%x, want 0x%x (%s)", s->line,
               driver.last_available, mask, scenario_option(s, "available"));
    }
}

static void run_expect_tables(const struct scenario_step *s, struct object *a, struct object *b)
{
    (void)a;
    (void)b;
    struct hc_stats_block stats;
    bool ok = read_books(&stats);
    uint64_t want = scenario_value(s, KEY_PAGES, 0);
    checkf(&driver.c, ok && stats.table_pages == want,
           "step %u expect-tables: the DDI domains hold %u table pages, want %lu", s->line, stats.table_pages, want);
}

static void run_hypercall(const struct scenario_step *s, struct object *a, struct object *b)
{
    (void)a;
    (void)b;
    DMA_IOMMU_INTERFACE_V2 *v2 = &driver.ex.V2;
    uint32_t want = s->v.status;
    uint64_t r;
    if (s->word == SCENARIO_GARBAGE) {
        uint64_t junk[8] = {0xdeadbeef, ~0ull, 7, 0, 0x5a5a5a5a5a5a5a5aull, 1, 2, 3};
        r = hypercall(hc_rax(HC_CALLS + 7), (uint64_t)(uintptr_t)junk, sizeof junk);
    } else if (s->word == SCENARIO_BAD_ADDRESS) {
        r = hypercall(hc_rax(HC_VERSION), driver.o->region_base, sizeof(struct hc_version_block));
    } else {
        r = (uint32_t)v2->DeleteDomain((PIOMMU_DMA_DOMAIN)(uintptr_t)0xd0d0000000770001ull);
    }
    checkf(&driver.c, (uint32_t)r == want, "step %u hypercall %s: 0x%08x, want 0x%08x", s->line, s->arg[0],
           (uint32_t)r, want);
}

static void run_expect_reports(const struct scenario_step *s, struct object *a, struct object *b)
{
    (void)a;
    (void)b;
    driver.p->poll();
    unsigned got = driver.reports - driver.reports_at_last_check;
    uint64_t want = scenario_value(s, KEY_COUNT, 0);
    checkf(&driver.c, got == want && !driver.wrong_arch_reports,
           "step %u expect-reports: %u fault reports reached the handler, want %lu; %u with another "
           "architecture's information", s->line, got, want, driver.wrong_arch_reports);
    if (scenario_given(s, KEY_TYPES)) {
        const int *want = s->v.types;
        bool same = s->v.type_count == got;
        for (unsigned i = 0; same && i < got && i < SCENARIO_MAX_TYPES; i++)
            same = (int)driver.types[i] == want[i];
        static char seen[SCENARIO_VALUE + 16];
        size_t at = 0;
        for (unsigned i = 0; i < got && i < sizeof driver.types / sizeof driver.types[0] && at < sizeof seen; i++)
            at += (size_t)fmt_format(seen + at, sizeof seen - at, "%s%s", i ? "," : "",
                                     scenario_fault_type_name((int)driver.types[i]));
        if (!got)
            fmt_format(seen, sizeof seen, "none");
        checkf(&driver.c, same, "step %u expect-reports: the reports' types are %s (want %s)", s->line, seen,
               scenario_option(s, "types"));
    }
    /* Faults the unit could not record: counted by the hypervisor, never silent. Unless
     * the scenario says otherwise, there must be none. */
    struct hc_stats_block stats;
    bool books = read_books(&stats);
    uint64_t lost = books ? stats.fault_overflows - driver.overflows_at_last_check : 0,
             want_lost = scenario_value(s, KEY_LOST, 0);
    checkf(&driver.c, books && lost == want_lost,
           "step %u expect-reports: the unit lost faults %lu time(s) (its single fault record was full), want %lu",
           s->line, lost, want_lost);
    driver.reports_at_last_check = driver.reports;
    driver.overflows_at_last_check = books ? stats.fault_overflows : driver.overflows_at_last_check;
}

/* Each verb's runner: the step has been checked by the parser (its names exist, with the
 * right kinds; its options are parsed into s->v). a and b: the objects its first two names
 * name, when they do. */
static void (*const runners[STEP_KINDS])(const struct scenario_step *s, struct object *a, struct object *b) = {
    [STEP_DOMAIN] = run_domain,
    [STEP_DELETE_DOMAIN] = run_delete_domain,
    [STEP_DEVICE] = run_device,
    [STEP_DELETE_DEVICE] = run_delete_device,
    [STEP_ATTACH] = run_attach,
    [STEP_DETACH] = run_detach,
    [STEP_BUFFER] = run_buffer,
    [STEP_MAP] = run_map,
    [STEP_UNMAP] = run_unmap,
    [STEP_MAP_IDENTITY] = run_map_identity,
    [STEP_UNMAP_IDENTITY] = run_unmap_identity,
    [STEP_RESERVE] = run_reserve,
    [STEP_MAP_RESERVED] = run_map_reserved,
    [STEP_UNMAP_RESERVED] = run_unmap_reserved,
    [STEP_FREE_RESERVED] = run_free_reserved,
    [STEP_REPORTING] = run_reporting,
    [STEP_GUARD] = run_guard,
    [STEP_DMA] = run_dma,
    [STEP_BURST] = run_burst,
    [STEP_INJECT] = run_inject,
    [STEP_CALLBACK] = run_callback,
    [STEP_EXPECT_CALLBACKS] = run_expect_callbacks,
    [STEP_EXPECT_TABLES] = run_expect_tables,
    [STEP_PARALLEL_MAP] = run_parallel_map,
    [STEP_HYPERCALL] = run_hypercall,
    [STEP_EXPECT_REPORTS] = run_expect_reports,
};

static void run_step(const struct scenario_step *s)
{
    struct object *a = s->args ? find(s->arg[0]) : NULL, *b = s->args > 1 ? find(s->arg[1]) : NULL;
    if (s->kind < STEP_KINDS && runners[s->kind])
        runners[s->kind](s, a, b);
}

static bool read_scenario(EFI_HANDLE image, char *text, UINTN *size)
{
    EFI_LOADED_IMAGE *loaded = NULL;
    EFI_FILE_HANDLE root = NULL, file = NULL;
    if (EFI_ERROR(uefi_call_wrapper(BS->HandleProtocol, 3, image, &LoadedImageProtocol, (void **)&loaded)) ||
        !(root = LibOpenRoot(loaded->DeviceHandle)) ||
        EFI_ERROR(uefi_call_wrapper(root->Open, 5, root, &file, L"\\EFI\\BOOT\\SCENARIO.TXT", EFI_FILE_MODE_READ, 0)))
        return false;
    EFI_STATUS st = uefi_call_wrapper(file->Read, 3, file, size, text);
    uefi_call_wrapper(file->Close, 1, file);
    return !EFI_ERROR(st);
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
    InitializeLib(image, systab);
    sink_printf(out, "--- fault injection (guest) ---\n");
    driver.tsc_per_us = guest_clock_calibrate();
    EFI_LOADED_IMAGE *loaded = NULL;
    uefi_call_wrapper(BS->HandleProtocol, 3, image, &LoadedImageProtocol, (void **)&loaded);
    driver.o = loaded ? loaded->LoadOptions : NULL;
    static char text[65536];
    static struct scenario sc;
    UINTN size = sizeof text - 1;
    char error[160] = "";
    EFI_GUID guid = IOMMU_HV_DDI_PROTOCOL_GUID;
    bool ready =
        check(&driver.c,
              driver.o && loaded->LoadOptionsSize == sizeof *driver.o && driver.o->magic == LOADER_HANDOFF_MAGIC,
              "guest: started by the loader, with its options") &&
        check(&driver.c, read_scenario(image, text, &size) && size < sizeof text - 1, "guest: scenario read") &&
        checkf(&driver.c, scenario_parse(text, size, &sc, error, sizeof error), "guest: scenario parsed%s%s",
               error[0] ? ": " : "", error) &&
        check(&driver.c,
              !EFI_ERROR(uefi_call_wrapper(BS->LocateProtocol, 3, &guid, NULL, (void **)&driver.p)) &&
                  driver.p->get_interface_ex(2, 0, &driver.ex) == STATUS_SUCCESS &&
                  driver.p->get_interface(1, &driver.v1) == STATUS_SUCCESS,
              "guest: DDI protocol");
    unsigned before = driver.c.failed;
    struct hc_stats_block books;
    if (ready && read_books(&books))
        driver.overflows_at_last_check = books.fault_overflows;
    if (ready) {
        sink_printf(out, "scenario %s: %s\n", sc.name, sc.description);
        for (unsigned i = 0; i < sc.steps; i++)
            run_step(&sc.step[i]);
    }
    sink_printf(out, "faultinj: %u hypercalls made, %lu more through the DDI shim\n", hypercalls_made,
                driver.p ? (uint64_t)driver.p->hypercalls() : 0);
    sink_printf(out, "scenario %s: %u steps, %u failed; faults expected %u, reported %u\n", sc.name, sc.steps,
                driver.c.failed - before, driver.faults_expected, driver.reports);
    unsigned run = driver.c.run + (driver.o ? driver.o->loader_checks : 0),
             failed = driver.c.failed + (driver.o ? driver.o->loader_failed : 0);
    if (failed)
        sink_printf(out, "RESULT: FAIL (%u of %u checks failed)\n", failed, run);
    else
        sink_printf(out, "RESULT: PASS (%u checks)\n", run);
    return failed ? EFI_ABORTED : EFI_SUCCESS;
}
