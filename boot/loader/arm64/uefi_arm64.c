#include "loader/arm64/uefi_arm64.h"

#include "common/report.h"
#include "common/tsc.h"

static uint32_t mmio_read32(void *ctx, uint64_t pa)
{
    (void)ctx;
    uint32_t v = *(volatile uint32_t *)(uintptr_t)pa;
    __asm__ volatile("dmb ld" ::: "memory"); /* later memory reads see what the device said */
    return v;
}

static uint64_t mmio_read64(void *ctx, uint64_t pa)
{
    (void)ctx;
    uint64_t v = *(volatile uint64_t *)(uintptr_t)pa;
    __asm__ volatile("dmb ld" ::: "memory");
    return v;
}

/* A register write comes after every earlier memory write (the queue entries and tables the
 * device is about to read): the platform's promise to the drivers. */
static void mmio_write32(void *ctx, uint64_t pa, uint32_t v)
{
    (void)ctx;
    __asm__ volatile("dsb st" ::: "memory");
    *(volatile uint32_t *)(uintptr_t)pa = v;
}

static void mmio_write64(void *ctx, uint64_t pa, uint64_t v)
{
    (void)ctx;
    __asm__ volatile("dsb st" ::: "memory");
    *(volatile uint64_t *)(uintptr_t)pa = v;
}

/* The firmware maps memory one to one. */
static const void *map_phys(void *ctx, uint64_t pa, size_t len)
{
    (void)ctx;
    (void)len;
    return (const void *)(uintptr_t)pa;
}

static void *alloc_pages(void *ctx, size_t pages, uint64_t max_pa, uint64_t *pa)
{
    struct uefi_arm64 *p = ctx;
    uint64_t addr = max_pa - 1;
    if (efi_failed(p->bs->allocate_pages(EFI_ALLOCATE_MAX_ADDRESS, EFI_LOADER_DATA, pages, &addr)))
        return NULL;
    uint8_t *va = (uint8_t *)(uintptr_t)addr;
    for (size_t i = 0; i < pages * 4096; i++)
        va[i] = 0;
    *pa = addr;
    return va;
}

static void free_pages(void *ctx, void *va, size_t pages)
{
    struct uefi_arm64 *p = ctx;
    p->bs->free_pages((uint64_t)(uintptr_t)va, pages);
}

/* For a unit that does not snoop (IDR0.COHACC = 0): clean the lines to the point of
 * coherency, then wait. */
static void flush_cache(void *ctx, const void *va, size_t len)
{
    struct uefi_arm64 *p = ctx;
    uintptr_t line = p->cache_line, a = (uintptr_t)va & ~(line - 1), end = (uintptr_t)va + len;
    for (; a < end; a += line)
        __asm__ volatile("dc cvac, %0" ::"r"(a) : "memory");
    __asm__ volatile("dsb sy" ::: "memory");
}

static uint64_t now_ns(void *ctx)
{
    struct uefi_arm64 *p = ctx;
    uint64_t cnt = tsc_read();
    return cnt / p->timer_hz * 1000000000ull + cnt % p->timer_hz * 1000000000ull / p->timer_hz;
}

static void log_line(void *ctx, const char *line)
{
    (void)ctx;
    sink_printf(out, "%s\n", line);
}

void uefi_arm64_init(struct uefi_arm64 *p, struct efi_system_table *st)
{
    uint64_t frq = tsc_hz(), ctr;
    __asm__ volatile("mrs %0, ctr_el0" : "=r"(ctr));
    *p = (struct uefi_arm64){.st = st, .bs = st->boot_services, .timer_hz = frq ? frq : 1,
                             .cache_line = 4u << ((ctr >> 16) & 0xf)};
    p->ops = (struct platform){.ctx = p, .mmio_read32 = mmio_read32, .mmio_read64 = mmio_read64,
                               .mmio_write32 = mmio_write32, .mmio_write64 = mmio_write64, .map_phys = map_phys,
                               .alloc_pages = alloc_pages, .free_pages = free_pages, .flush_cache = flush_cache,
                               .now_ns = now_ns, .log = log_line};
}

void *uefi_arm64_config_table(const struct uefi_arm64 *p, const struct efi_guid *guid)
{
    for (uint64_t i = 0; i < p->st->table_entries; i++)
        if (efi_guid_equal(&p->st->configuration_table[i].vendor_guid, guid))
            return p->st->configuration_table[i].vendor_table;
    return NULL;
}

bool uefi_arm64_memory_map(const struct uefi_arm64 *p, void *buf, uint64_t bytes, uint64_t *entries,
                           uint64_t *descriptor_size)
{
    uint64_t size = bytes, key = 0;
    uint32_t version = 0;
    if (efi_failed(p->bs->get_memory_map(&size, buf, &key, descriptor_size, &version)) || !*descriptor_size)
        return false;
    *entries = size / *descriptor_size;
    return true;
}

unsigned uefi_arm64_current_el(void)
{
    uint64_t el;
    __asm__ volatile("mrs %0, currentel" : "=r"(el));
    return (unsigned)(el >> 2) & 3;
}

#define DESC_VALID 1ull
#define DESC_TABLE 2ull          /* at levels 0-2: a table; at level 3: a page */
#define DESC_XN (1ull << 54)      /* EL2's execute-never (UXN in two-range regimes) */
#define DESC_PXN (1ull << 53)
#define DESC_XN_TABLE (3ull << 59) /* XNTable, PXNTable */
#define DESC_ADDRESS 0x0000FFFFFFFFF000ull

bool uefi_arm64_make_executable(uint64_t base, uint64_t bytes)
{
    uint64_t tcr, ttbr;
    __asm__ volatile("mrs %0, tcr_el2; mrs %1, ttbr0_el2" : "=r"(tcr), "=r"(ttbr));
    unsigned va_bits = 64 - (unsigned)(tcr & 0x3F);
    if ((tcr >> 14 & 3) != 0 || va_bits < 25 || va_bits > 48) /* TG0 4 KiB */
        return false;
    unsigned levels = (va_bits - 12 + 8) / 9, first = 4 - levels;
    for (uint64_t va = base & ~0xFFFull; va < base + bytes; va += 0x1000) {
        uint64_t *table = (uint64_t *)(uintptr_t)(ttbr & DESC_ADDRESS);
        for (unsigned level = first;; level++) {
            uint64_t *e = &table[va >> (39 - 9 * level) & 0x1FF];
            if (!(*e & DESC_VALID))
                return false;
            if (level < 3 && (*e & DESC_TABLE)) {
                *e &= ~DESC_XN_TABLE;
                table = (uint64_t *)(uintptr_t)(*e & DESC_ADDRESS);
                continue;
            }
            *e &= ~(DESC_XN | DESC_PXN);
            break;
        }
    }
    __asm__ volatile("dsb ishst; tlbi alle2; dsb ish; ic iallu; dsb ish; isb" ::: "memory");
    return true;
}

int64_t uefi_arm64_read_file(const struct uefi_arm64 *p, efi_handle device, const uint16_t *path, void *buf,
                             uint64_t bytes)
{
    static const struct efi_guid fs_guid = EFI_SIMPLE_FILE_SYSTEM_PROTOCOL_GUID;
    struct efi_simple_file_system *fs = NULL;
    struct efi_file *root = NULL, *file = NULL;
    if (efi_failed(p->bs->handle_protocol(device, &fs_guid, (void **)&fs)) || efi_failed(fs->open_volume(fs, &root)))
        return -1;
    efi_status st = root->open(root, &file, path, EFI_FILE_MODE_READ, 0);
    root->close(root);
    if (efi_failed(st))
        return -1;
    uint64_t size = bytes;
    st = file->read(file, &size, buf);
    file->close(file);
    return efi_failed(st) || size >= bytes ? -1 : (int64_t)size;
}

efi_status uefi_arm64_load_image(const struct uefi_arm64 *p, efi_handle parent, efi_handle device,
                                 const uint16_t *path, efi_handle *image)
{
    static const struct efi_guid dp_guid = EFI_DEVICE_PATH_PROTOCOL_GUID;
    const uint8_t *dev = NULL;
    if (efi_failed(p->bs->handle_protocol(device, &dp_guid, (void **)&dev)))
        return EFI_NOT_FOUND;
    /* The device's path up to its end node, bounded: a path is a few nodes. */
    uint64_t dev_bytes = 0;
    for (unsigned nodes = 0; dev[dev_bytes] != EFI_DEVICE_PATH_END; nodes++) {
        uint64_t len = dev[dev_bytes + 2] | (uint64_t)dev[dev_bytes + 3] << 8;
        if (len < 4 || nodes == 64)
            return EFI_NOT_FOUND;
        dev_bytes += len;
    }
    uint64_t chars = 0;
    while (path[chars] && chars < 256)
        chars++;
    uint64_t file_bytes = 4 + 2 * (chars + 1), total = dev_bytes + file_bytes + 4;
    uint8_t *dp = NULL;
    if (efi_failed(p->bs->allocate_pool(EFI_LOADER_DATA, total, (void **)&dp)))
        return EFI_OUT_OF_RESOURCES;
    __builtin_memcpy(dp, dev, dev_bytes);
    uint8_t *node = dp + dev_bytes;
    node[0] = EFI_DEVICE_PATH_MEDIA, node[1] = EFI_DEVICE_PATH_MEDIA_FILE;
    node[2] = (uint8_t)file_bytes, node[3] = (uint8_t)(file_bytes >> 8);
    for (uint64_t i = 0; i <= chars; i++) {
        uint16_t ch = i < chars ? path[i] : 0;
        node[4 + 2 * i] = (uint8_t)ch, node[5 + 2 * i] = (uint8_t)(ch >> 8);
    }
    uint8_t *end = node + file_bytes;
    end[0] = EFI_DEVICE_PATH_END, end[1] = 0xFF, end[2] = 4, end[3] = 0;
    efi_status st = p->bs->load_image(false, parent, dp, NULL, 0, image);
    p->bs->free_pool(dp);
    return st;
}
