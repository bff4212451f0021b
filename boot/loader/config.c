/* See boot/loader/config.h. */
#include "loader/config.h"

#include "iommu/fmt.h"

void config_defaults(struct loader_config *cfg)
{
    *cfg = (struct loader_config){.payload = PAYLOAD_SELFTEST, .region_mib = 16, .smmu_input_bits = 48};
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* [*b, *e) trimmed of spaces at both ends. */
static void trim(const char **b, const char **e)
{
    while (*b < *e && is_space(**b))
        (*b)++;
    while (*e > *b && is_space((*e)[-1]))
        (*e)--;
}

static bool equals(const char *b, const char *e, const char *word)
{
    size_t n = 0;
    while (word[n])
        n++;
    if ((size_t)(e - b) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (b[i] != word[i])
            return false;
    return true;
}

static bool parse_line(struct loader_config *cfg, const char *b, const char *e, const char **why)
{
    for (const char *p = b; p < e; p++)
        if (*p == '#') {
            e = p;
            break;
        }
    trim(&b, &e);
    if (b == e)
        return true;
    const char *eq = b;
    while (eq < e && *eq != '=')
        eq++;
    if (eq == e) {
        *why = "expected key = value";
        return false;
    }
    const char *kb = b, *ke = eq, *vb = eq + 1, *ve = e;
    trim(&kb, &ke);
    trim(&vb, &ve);
    if (vb == ve) {
        *why = "the value is empty";
        return false;
    }
    if (equals(kb, ke, "payload")) {
        if (equals(vb, ve, "selftest"))
            cfg->payload = PAYLOAD_SELFTEST;
        else if (equals(vb, ve, "shell"))
            cfg->payload = PAYLOAD_SHELL;
        else if (equals(vb, ve, "faultinject"))
            cfg->payload = PAYLOAD_FAULTINJECT;
        else if (equals(vb, ve, "hostile"))
            cfg->payload = PAYLOAD_HOSTILE;
        else if (*vb == '\\' && (size_t)(ve - vb) < CONFIG_PATH_MAX) {
            cfg->payload = PAYLOAD_PATH;
            size_t n = (size_t)(ve - vb);
            for (size_t i = 0; i < n; i++)
                cfg->payload_path[i] = vb[i];
            cfg->payload_path[n] = 0;
        } else {
            *why = "payload is selftest, shell, faultinject, hostile, or a path on the boot disk starting with \\ (at most "
                   "127 characters)";
            return false;
        }
        return true;
    }
    if (equals(kb, ke, "payload_options")) {
        size_t n = (size_t)(ve - vb);
        for (const char *p = vb; p < ve; p++)
            if (*p < ' ' || *p > '~') {
                *why = "payload_options is printable text";
                return false;
            }
        if (n >= CONFIG_OPTIONS_MAX) {
            *why = "payload_options has at most 1023 characters";
            return false;
        }
        for (size_t i = 0; i < n; i++)
            cfg->payload_options[i] = vb[i];
        cfg->payload_options[n] = 0;
        return true;
    }
    if (equals(kb, ke, "region_mib")) {
        uint32_t v = 0;
        for (const char *p = vb; p < ve; p++) {
            if (*p < '0' || *p > '9' || v > 100000) {
                *why = "region_mib is a whole number";
                return false;
            }
            v = v * 10 + (uint32_t)(*p - '0');
        }
        if (v < 4 || v > 1024) {
            *why = "region_mib is 4 to 1024";
            return false;
        }
        cfg->region_mib = v;
        return true;
    }
    if (equals(kb, ke, "fault_injection")) {
        if (!equals(vb, ve, "on") && !equals(vb, ve, "off")) {
            *why = "fault_injection is on or off";
            return false;
        }
        cfg->fault_injection = equals(vb, ve, "on");
        return true;
    }
    if (equals(kb, ke, "smmu_input_bits")) {
        if (!equals(vb, ve, "39") && !equals(vb, ve, "48")) {
            *why = "smmu_input_bits is 39 or 48";
            return false;
        }
        cfg->smmu_input_bits = equals(vb, ve, "39") ? 39 : 48;
        return true;
    }
    *why = "unknown key (payload, payload_options, region_mib, fault_injection, smmu_input_bits)";
    return false;
}

bool config_parse(struct loader_config *cfg, const char *text, size_t len, char *error, size_t error_len)
{
    struct loader_config next = *cfg;
    unsigned line = 1;
    for (size_t start = 0; start <= len; line++) {
        size_t end = start;
        while (end < len && text[end] != '\n')
            end++;
        const char *why = NULL;
        if (!parse_line(&next, text + start, text + end, &why)) {
            fmt_format(error, error_len, "line %u: %s", line, why);
            return false;
        }
        start = end + 1;
    }
    *cfg = next;
    return true;
}

size_t config_from_command_line(const uint16_t *options, size_t chars, char *text, size_t cap)
{
    for (size_t i = 0; i < chars && options[i]; i++)
        if (options[i] > 0x7E || (options[i] < 0x20 && options[i] != '\t'))
            return 0;
    size_t len = 0;
    for (size_t i = 0; i < chars && options[i];) {
        while (i < chars && (options[i] == ' ' || options[i] == '\t'))
            i++;
        size_t start = i;
        bool has_equals = false;
        while (i < chars && options[i] && options[i] != ' ' && options[i] != '\t')
            has_equals |= options[i++] == '=';
        if (!has_equals)
            continue;
        if (len + (i - start) + 1 > cap)
            return 0;
        for (size_t k = start; k < i; k++)
            text[len++] = (char)options[k];
        text[len++] = '\n';
    }
    return len;
}
