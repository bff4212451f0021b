/* The loader's configuration file, \EFI\BOOT\IOMMUHV.CFG on the boot disk (optional):
 *
 *   # comments and blank lines are ignored
 *   payload = selftest      # selftest (default), shell (the firmware's UEFI shell),
 *                           # faultinject (runs \EFI\BOOT\SCENARIO.TXT, docs/scenarios.md),
 *                           # hostile (HOSTILE.EFI, the attacker of docs/security.md),
 *                           # or the path of an EFI image on the boot disk, e.g. \EFI\BOOT\APP.EFI
 *   payload_options = ...   # the payload's command line (its LoadOptions), e.g. a Linux
 *                           # kernel's: printable ASCII, at most 1023 characters, no '#'
 *   fault_injection = off   # on: the guest may make the hypervisor fail (HC_INJECT), for tests
 *   region_mib = 16         # the hypervisor's reserved region: 4 to 1024 MiB (default 16)
 *   smmu_input_bits = 48    # Arm: the SMMU's stage-1 input width, 39 (3-level tables) or 48
 *                           # (4-level, the default); x86's width is its VT-d unit's own
 *
 * The same settings can come on the loader's command line (its LoadOptions, as the UEFI shell
 * passes them: "BOOTX64.EFI payload=shell region_mib=32"); they win over the file.
 *
 * Freestanding, so the host tests check it. */
#ifndef BOOT_CONFIG_H
#define BOOT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_PATH_MAX 128
#define CONFIG_OPTIONS_MAX 1024

enum payload_kind { PAYLOAD_SELFTEST, PAYLOAD_SHELL, PAYLOAD_PATH, PAYLOAD_FAULTINJECT, PAYLOAD_HOSTILE };

struct loader_config {
    enum payload_kind payload;
    char payload_path[CONFIG_PATH_MAX]; /* PAYLOAD_PATH: as written, backslashes and all */
    char payload_options[CONFIG_OPTIONS_MAX]; /* "": none */
    uint32_t region_mib;
    bool fault_injection; /* HC_INJECT answered (tests only) */
    unsigned smmu_input_bits; /* Arm: 39 or 48 */
};

void config_defaults(struct loader_config *cfg);

/* Parses text (len bytes, not NUL-terminated) over cfg. False on the first bad line, with
 * "line N: what is wrong" in error; cfg is then left as it was. */
bool config_parse(struct loader_config *cfg, const char *text, size_t len, char *error, size_t error_len);

/* The key=value words of a command line (UCS-2, 'chars' characters, as UEFI passes it), one
 * per line into text (at most cap bytes), for config_parse; other words (the program's own
 * name) are skipped. Returns the length written; 0 when there are none, or when the options
 * are not printable text (firmware boot options may carry binary data). */
size_t config_from_command_line(const uint16_t *options, size_t chars, char *text, size_t cap);

#endif
