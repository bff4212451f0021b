/* scenario-check FILE...: checks fault-injection scenarios (docs/scenarios.md) before any
 * QEMU starts. Prints "FILE: NAME, N steps, machine ..." for each good file, and
 * "FILE:LINE: what is wrong" on stderr for a bad one; exit status 2 if any was bad. */
#include <stdio.h>
#include <stdlib.h>

#include "scenario/scenario.h"

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16;
    char *buf = malloc(cap);
    *len = fread(buf, 1, cap, f);
    bool whole = feof(f);
    fclose(f);
    if (!whole) {
        free(buf);
        return NULL;
    }
    return buf;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: scenario-check FILE...\n");
        return 2;
    }
    int status = 0;
    static struct scenario s;
    for (int i = 1; i < argc; i++) {
        size_t len;
        char *text = read_file(argv[i], &len);
        char error[160];
        if (!text) {
            fprintf(stderr, "%s:0: cannot be read (or is over 64 KiB)\n", argv[i]);
            status = 2;
            continue;
        }
        if (!scenario_parse(text, len, &s, error, sizeof error)) {
            fprintf(stderr, "%s:%s\n", argv[i], error);
            status = 2;
        } else {
            printf("%s: %s, %u steps, machine aw-bits=%u cpus=%u memory=%u edus=%u dma_mask=0x%llx arch=%s\n", argv[i],
                   s.name, s.steps, s.machine.aw_bits, s.machine.cpus, s.machine.memory_mib, s.machine.edus,
                   (unsigned long long)s.machine.dma_mask, scenario_arch_name(s.machine.arch));
        }
        free(text);
    }
    return status;
}
