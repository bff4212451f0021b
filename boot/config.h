/* The loader's configuration file, \EFI\BOOT\IOMMUHV.CFG on the boot disk (optional):
 *
 *   # comments and blank lines are ignored
 *   payload = selftest      # selftest (default), shell (the firmware's UEFI shell), or the
 *                           # path of an EFI image on the boot disk, e.g. \EFI\BOOT\APP.EFI
 *   region_mib = 16         # the hypervisor's reserved region: 4 to 1024 MiB (default 16)
 *
 * Freestanding, so the host tests check it. */
#ifndef BOOT_CONFIG_H
#define BOOT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_PATH_MAX 128

enum payload_kind { PAYLOAD_SELFTEST, PAYLOAD_SHELL, PAYLOAD_PATH };

struct loader_config {
    enum payload_kind payload;
    char payload_path[CONFIG_PATH_MAX]; /* PAYLOAD_PATH: as written, backslashes and all */
    uint32_t region_mib;
};

void config_defaults(struct loader_config *cfg);

/* Parses text (len bytes, not NUL-terminated) over cfg. False on the first bad line, with
 * "line N: what is wrong" in error; cfg is then left as it was. */
bool config_parse(struct loader_config *cfg, const char *text, size_t len, char *error, size_t error_len);

#endif
