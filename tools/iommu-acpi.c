/* iommu-acpi: decodes DMAR and IORT tables to text or JSON (docs/iommu-acpi.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iommu/acpi_report.h"

#define MAX_TABLE_BYTES (16u << 20) /* far beyond any real DMAR or IORT */

static const char *const sysfs_tables[] = {"/sys/firmware/acpi/tables/DMAR",
                                           "/sys/firmware/acpi/tables/IORT"};

static void stream_write(void *ctx, const char *s, size_t n)
{
    fwrite(s, 1, n, ctx);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: iommu-acpi [--json] [FILE...]\n"
               "Decodes ACPI DMAR and IORT tables (raw, header included). Without FILE, reads\n"
               "/sys/firmware/acpi/tables/DMAR and IORT. See docs/iommu-acpi.md.\n");
}

/* Reads a whole file; returns NULL and sets errno-style text on failure. The buffer is
 * exactly the file's size, so sanitizers catch any read past the table. */
static unsigned char *read_file(const char *path, size_t *len, const char **why)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *why = strerror(errno);
        return NULL;
    }
    unsigned char *buf = NULL;
    size_t used = 0, cap = 0;
    for (;;) {
        if (used == cap) {
            if (cap >= MAX_TABLE_BYTES) {
                *why = "file larger than 16 MiB";
                goto fail;
            }
            cap = cap ? cap * 2 : 4096;
            unsigned char *grown = realloc(buf, cap);
            if (!grown) {
                *why = "out of memory";
                goto fail;
            }
            buf = grown;
        }
        size_t n = fread(buf + used, 1, cap - used, f);
        used += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        *why = strerror(errno);
        goto fail;
    }
    fclose(f);
    unsigned char *exact = malloc(used ? used : 1);
    if (!exact) {
        free(buf);
        *why = "out of memory";
        return NULL;
    }
    memcpy(exact, buf, used);
    free(buf);
    *len = used;
    return exact;
fail:
    fclose(f);
    free(buf);
    return NULL;
}

/* Decodes one file; returns 0 or 2. */
static int decode(const char *path, int json)
{
    size_t len = 0;
    const char *why = NULL;
    unsigned char *data = read_file(path, &len, &why);
    if (!data) {
        fprintf(stderr, "error: %s: %s\n", path, why);
        return 2;
    }
    struct sink out = {stream_write, stdout};
    struct sink err = {stream_write, stderr};
    struct json_writer w;
    json_init(&w, &out);
    struct diag d;
    diag_clear(&d);
    int rc = 0;
    if (len >= 4 && memcmp(data, "DMAR", 4) == 0) {
        struct dmar_table t;
        if (dmar_parse(&t, data, len, &d)) {
            if (json)
                dmar_report_json(&t, &w);
            else
                dmar_report_text(&t, &out);
        } else {
            rc = 2;
        }
    } else if (len >= 4 && memcmp(data, "IORT", 4) == 0) {
        struct iort_table t;
        if (iort_parse(&t, data, len, &d)) {
            if (json)
                iort_report_json(&t, &w);
            else
                iort_report_text(&t, &out);
        } else {
            rc = 2;
        }
    } else {
        diag_error(&d, 0, "not a DMAR or IORT table (signature \"%.4s\")",
                   len >= 4 ? (const char *)data : "");
        rc = 2;
    }
    diag_print(&d, path, &err);
    if (!rc && json)
        fputc('\n', stdout);
    free(data);
    return rc;
}

int main(int argc, char **argv)
{
    int json = 0, first_file = argc;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--") == 0) {
            first_file = i + 1;
            break;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "iommu-acpi: unknown option %s\n", argv[i]);
            usage(stderr);
            return 1;
        } else {
            first_file = i;
            break;
        }
    }
    int rc = 0;
    if (first_file < argc) {
        for (int i = first_file; i < argc; i++)
            if (decode(argv[i], json))
                rc = 2;
        return rc;
    }
    int found = 0;
    for (size_t i = 0; i < sizeof sysfs_tables / sizeof sysfs_tables[0]; i++) {
        FILE *probe = fopen(sysfs_tables[i], "rb");
        if (!probe)
            continue;
        fclose(probe);
        found++;
        if (decode(sysfs_tables[i], json))
            rc = 2;
    }
    if (!found) {
        fprintf(stderr, "iommu-acpi: no FILE given and no DMAR or IORT in /sys/firmware/acpi/tables\n");
        return 1;
    }
    return rc;
}
