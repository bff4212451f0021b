/* The checks Linux runs from its /init when it is the hypervisor's guest (scripts/run.sh
 * --payload linux; built static into the initramfs by scripts/linux_payload.py). Each check
 * prints one line, "linux-check: PASS|FAIL what", and the last line is
 * "linux-checks: N passed, M failed". These are the guest's view: that it booted whole on
 * every CPU, that its disks' data arrives intact through DMA, and that the hypervisor's
 * memory and the IOMMU stay out of its reach. The hypervisor's own verdict is on its
 * channel, not here.
 *
 * Arguments: the number of data disks to find (each written by linux_payload.py: a header,
 * then pseudo-random bytes from its seed), and "bare" when Linux runs without the
 * hypervisor (the baseline run.sh --bare times): then only the CPUs and the disks are
 * checked, and the DMAR is expected. */
#define _GNU_SOURCE
#include <cpuid.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iommu/prng.h"

static unsigned passed, failed;

static void check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("linux-check: %s ", ok ? "PASS" : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    ok ? passed++ : failed++;
}

static int read_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = 0;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = 0;
    return (int)n;
}

/* The hypervisor's CPUID leaves (docs/hypervisor.md): signature, ABI version, region. */
static int hypervisor_region(uint64_t *base, uint64_t *bytes)
{
    unsigned a, b, c, d;
    __cpuid(0x40000000u, a, b, c, d);
    char sig[13] = {0};
    memcpy(sig, &b, 4);
    memcpy(sig + 4, &c, 4);
    memcpy(sig + 8, &d, 4);
    unsigned max = a;
    check(strcmp(sig, "iommu-hv-ddi") == 0, "CPUID 0x40000000: the hypervisor's signature \"%s\"", sig);
    if (max < 0x40000002u) {
        check(0, "CPUID 0x40000000: max leaf 0x%x has no region leaf (0x40000002)", max);
        return -1;
    }
    __cpuid(0x40000002u, a, b, c, d);
    *base = (uint64_t)b << 32 | a;
    *bytes = (uint64_t)d << 32 | c;
    return 0;
}

/* /proc/iomem lists the region as reserved: a "Reserved" line covers it whole. */
static void region_reserved(uint64_t base, uint64_t bytes)
{
    FILE *f = fopen("/proc/iomem", "r");
    char line[256];
    int covered = 0, ram = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long long lo, hi;
        if (line[0] == ' ' || sscanf(line, "%llx-%llx", &lo, &hi) != 2)
            continue; /* top-level entries only */
        if (lo <= base && hi >= base + bytes - 1 && strstr(line, "Reserved"))
            covered = 1;
        if (lo < base + bytes && hi >= base && strstr(line, "System RAM"))
            ram = 1;
    }
    if (f)
        fclose(f);
    check(covered && !ram, "the hypervisor's region [0x%llx, 0x%llx) is reserved in the memory map, none of it RAM",
          (unsigned long long)base, (unsigned long long)(base + bytes));
}

/* Reading the region through /dev/mem: the kernel's copy takes the #GP the hypervisor
 * injects and returns an error; nothing of the region is read. */
static void region_unreadable(uint64_t base, uint64_t bytes)
{
    int fd = open("/dev/mem", O_RDONLY);
    if (fd < 0) {
        check(0, "/dev/mem: %s", strerror(errno));
        return;
    }
    unsigned read_ok = 0, refused = 0;
    uint64_t offsets[] = {0, bytes / 2, bytes - 4096};
    for (unsigned i = 0; i < 3; i++) {
        uint8_t buf[64];
        ssize_t n = pread(fd, buf, sizeof buf, (off_t)(base + offsets[i]));
        if (n > 0)
            read_ok++;
        else
            refused++;
    }
    close(fd);
    check(read_ok == 0, "reading the region through /dev/mem at 3 places: %u refused, %u read", refused, read_ok);
}

static void dmar_hidden(void)
{
    /* The MADT (APIC) shows the tables are there at all. */
    int apic = access("/sys/firmware/acpi/tables/APIC", F_OK) == 0;
    int dmar = access("/sys/firmware/acpi/tables/DMAR", F_OK) == 0;
    check(apic && !dmar, "no DMAR among the ACPI tables (APIC %s, DMAR %s)", apic ? "present" : "ABSENT",
          dmar ? "PRESENT" : "absent");
}

static void every_cpu_online(void)
{
    char present[64], online[64];
    if (read_file("/sys/devices/system/cpu/present", present, sizeof present) < 0 ||
        read_file("/sys/devices/system/cpu/online", online, sizeof online) < 0) {
        check(0, "CPU lists unreadable");
        return;
    }
    check(strcmp(present, online) == 0, "every CPU online: present %s, online %s (%ld)", present, online,
          sysconf(_SC_NPROCESSORS_ONLN));
}

/* A data disk: "iommu-hv data disk\n" then the seed (8 bytes, little endian) in the first
 * 32 bytes, then xorshift64 output (iommu/prng.h) from that seed to the end. */
#define DISK_MAGIC "iommu-hv data disk\n"

/* The highest BAR of the PCI device behind a disk (0: none found): the PCI device is the
 * parent of the disk's device in sysfs, and its "resource" file lists each BAR. */
static unsigned long long disk_bar_top(const char *name)
{
    char link[120], dir[4096];
    snprintf(link, sizeof link, "/sys/block/%.31s/device", name);
    if (!realpath(link, dir))
        return 0;
    char *slash = strrchr(dir, '/');
    if (!slash)
        return 0;
    strcpy(slash, "/resource");
    FILE *f = fopen(dir, "r");
    unsigned long long start, end, flags, top = 0;
    while (f && fscanf(f, "%llx %llx %llx", &start, &end, &flags) == 3)
        if (end > start && start > top)
            top = start;
    if (f)
        fclose(f);
    return top;
}

/* The disks with the header: their names, up to 8. */
static unsigned find_disks(char names[8][32])
{
    DIR *d = opendir("/sys/block");
    struct dirent *e;
    unsigned n = 0;
    while (d && (e = readdir(d)) && n < 8) {
        if (e->d_name[0] == '.' || strlen(e->d_name) >= 32)
            continue;
        char path[80];
        snprintf(path, sizeof path, "/dev/%.31s", e->d_name);
        int fd = open(path, O_RDONLY);
        uint8_t head[32];
        if (fd >= 0 && pread(fd, head, sizeof head, 0) == (ssize_t)sizeof head &&
            !memcmp(head, DISK_MAGIC, strlen(DISK_MAGIC)))
            strcpy(names[n++], e->d_name);
        if (fd >= 0)
            close(fd);
    }
    if (d)
        closedir(d);
    return n;
}

static void data_disks(unsigned want)
{
    /* The drivers probe in the background: wait up to 10 s for the disks to appear. */
    char names[8][32];
    unsigned n = 0;
    for (unsigned tries = 0; (n = find_disks(names)) < want && tries < 100; tries++)
        usleep(100000);
    unsigned found = 0;
    for (unsigned k = 0; k < n; k++) {
        const char *name = names[k];
        char path[96], driver[300] = "?", link[120];
        snprintf(path, sizeof path, "/dev/%.31s", name);
        int fd = open(path, O_RDONLY);
        uint8_t head[32];
        if (fd < 0 || pread(fd, head, sizeof head, 0) != (ssize_t)sizeof head) {
            check(0, "data disk %s: unreadable", name);
            if (fd >= 0)
                close(fd);
            continue;
        }
        snprintf(link, sizeof link, "/sys/block/%.31s/device/driver", name);
        ssize_t n = readlink(link, driver, sizeof driver - 1);
        if (n > 0) {
            driver[n] = 0;
            char *slash = strrchr(driver, '/');
            memmove(driver, slash ? slash + 1 : driver, strlen(slash ? slash + 1 : driver) + 1);
        }
        uint64_t seed;
        memcpy(&seed, head + 24, 8);
        uint64_t s = seed, bytes = 0, wrong = 0;
        static uint64_t buf[1 << 16];
        off_t at = 32;
        ssize_t got;
        /* The header's 32 bytes are followed by whole 8-byte words to the end. */
        while ((got = pread(fd, buf, sizeof buf, at)) > 0) {
            for (ssize_t i = 0; i < got / 8; i++)
                wrong += buf[i] != prng_next(&s);
            bytes += (uint64_t)got;
            at += got;
        }
        close(fd);
        found++;
        char bar[64] = "";
        unsigned long long top = disk_bar_top(name);
        if (top)
            snprintf(bar, sizeof bar, ", its PCI device's highest BAR at 0x%llx", top);
        check(wrong == 0 && bytes > 0, "data disk %s (driver %s%s): %llu bytes read through DMA, %llu words wrong", name,
              driver, bar, (unsigned long long)bytes, (unsigned long long)wrong);
    }
    check(found == want, "%u data disk(s) found, %u expected", found, want);
}

int main(int argc, char **argv)
{
    unsigned disks = argc > 1 ? (unsigned)atoi(argv[1]) : 0;
    int bare = argc > 2 && !strcmp(argv[2], "bare");
    char uptime[64] = "?";
    read_file("/proc/uptime", uptime, sizeof uptime);
    uptime[strcspn(uptime, " ")] = 0; /* the first field: seconds since the kernel started */
    printf("linux-checks: starting, uptime %s s%s\n", uptime, bare ? ", without the hypervisor" : "");
    if (!bare)
        dmar_hidden();
    uint64_t base = 0, bytes = 0;
    if (!bare && hypervisor_region(&base, &bytes) == 0) {
        region_reserved(base, bytes);
        region_unreadable(base, bytes);
    }
    every_cpu_online();
    data_disks(disks);
    printf("linux-checks: %u passed, %u failed\n", passed, failed);
    fflush(stdout);
    return failed ? 1 : 0;
}
