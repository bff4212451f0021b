/* See boot/scenario/scenario.h and docs/scenarios.md. */
#include "scenario/scenario.h"

#include "iommu/fmt.h"

/* Namespaces of names. */
enum ns { NS_NONE, NS_DOMAIN, NS_DEVICE, NS_BUFFER, NS_TOKEN, NS_IOVA };

/* One verb's whole grammar: its names, its options, its keyword. */
struct spec {
    const char *verb;
    unsigned min_args, max_args;
    enum ns arg_ns[SCENARIO_MAX_ARGS]; /* what each positional names (NS_NONE: a word) */
    int declares;                      /* the positional that declares a new name, or -1 */
    const char *keys;                  /* allowed options, space-separated */
    const char *required;              /* of those, the ones that must be there */
    int keyword;                       /* the positional that is a keyword, or -1 */
    const char *const *words;          /* its words, in the order of scenario.h's enums */
    const char *wrong_word;            /* what to say when it is none of them */
};

static const char *const domain_types[] = {"translate", "translate-buddy", "passthrough", "v1-os-managed",
                                           "v1-caller-managed", "unmanaged", "translate-s1", NULL};
static const char *const off_on[] = {"off", "on", NULL};
static const char *const directions[] = {"read", "write", NULL};
static const char *const injections[] = {"pool-fail", "invalidation-timeout", NULL};
static const char *const hypercalls[] = {"garbage", "forged-handle", "bad-address", NULL};
static const char *const edus[] = {"edu0", "edu1", NULL};
#define ON_OFF 1, off_on, "on or off"
#define DIRECTION(arg) arg, directions, "a DMA is a read or a write"

static const struct spec specs[STEP_KINDS] = {
    [STEP_DOMAIN] = {"domain", 2, 2, {NS_DOMAIN, NS_NONE}, 0, "width status", "", 1, domain_types,
                     "the domain type is translate, translate-buddy, passthrough, v1-os-managed, v1-caller-managed, "
                     "unmanaged or translate-s1"},
    [STEP_DELETE_DOMAIN] = {"delete-domain", 1, 1, {NS_DOMAIN}, -1, "status", "", -1, NULL, NULL},
    [STEP_DEVICE] = {"device", 2, 2, {NS_DEVICE, NS_NONE}, 0, "status", "", 1, edus,
                     "the device is edu0 (or edu1 when the machine has two)"},
    [STEP_DELETE_DEVICE] = {"delete-device", 1, 1, {NS_DEVICE}, -1, "status", "", -1, NULL, NULL},
    [STEP_ATTACH] = {"attach", 2, 2, {NS_DOMAIN, NS_DEVICE}, -1, "status", "", -1, NULL, NULL},
    [STEP_DETACH] = {"detach", 1, 1, {NS_DEVICE}, -1, "status", "", -1, NULL, NULL},
    [STEP_BUFFER] = {"buffer", 1, 1, {NS_BUFFER}, 0, "pages fill align", "pages", -1, NULL, NULL},
    [STEP_MAP] = {"map", 2, 2, {NS_DOMAIN, NS_BUFFER}, -1, "iova perm pages min max as status", "iova perm", -1, NULL,
                  NULL},
    [STEP_UNMAP] = {"unmap", 1, 1, {NS_DOMAIN}, -1, "iova pages status", "iova pages", -1, NULL, NULL},
    [STEP_MAP_IDENTITY] = {"map-identity", 2, 2, {NS_DOMAIN, NS_BUFFER}, -1, "perm status", "perm", -1, NULL, NULL},
    [STEP_UNMAP_IDENTITY] = {"unmap-identity", 2, 2, {NS_DOMAIN, NS_BUFFER}, -1, "status", "", -1, NULL, NULL},
    [STEP_RESERVE] = {"reserve", 2, 2, {NS_TOKEN, NS_DOMAIN}, 0, "pages iova min max status", "pages", -1, NULL, NULL},
    [STEP_MAP_RESERVED] = {"map-reserved", 2, 2, {NS_TOKEN, NS_BUFFER}, -1, "offset perm pages status", "offset perm",
                           -1, NULL, NULL},
    [STEP_UNMAP_RESERVED] = {"unmap-reserved", 1, 1, {NS_TOKEN}, -1, "status", "", -1, NULL, NULL},
    [STEP_FREE_RESERVED] = {"free-reserved", 1, 1, {NS_TOKEN}, -1, "status", "", -1, NULL, NULL},
    [STEP_REPORTING] = {"reporting", 2, 2, {NS_DEVICE, NS_NONE}, -1, "status", "", ON_OFF},
    [STEP_GUARD] = {"guard", 1, 1, {NS_NONE}, -1, "", "", 0, off_on, "on or off"},
    [STEP_DMA] = {"dma", 2, 2, {NS_DEVICE, NS_NONE}, -1, "at len expect reason address", "at len expect", DIRECTION(1)},
    [STEP_INJECT] = {"inject", 1, 1, {NS_NONE}, -1, "at", "", 0, injections,
                     "inject pool-fail at=K, or inject invalidation-timeout"},
    [STEP_HYPERCALL] = {"hypercall", 1, 1, {NS_NONE}, -1, "status", "status", 0, hypercalls,
                        "hypercall garbage, forged-handle or bad-address"},
    [STEP_BURST] = {"burst", 2, 3, {NS_NONE, NS_DEVICE, NS_DEVICE}, -1, "at len expect reason", "at len expect",
                    DIRECTION(0)},
    [STEP_EXPECT_REPORTS] = {"expect-reports", 0, 0, {NS_NONE}, -1, "count types lost", "count", -1, NULL, NULL},
    [STEP_CALLBACK] = {"callback", 2, 2, {NS_DEVICE, NS_NONE}, -1, "status", "", ON_OFF},
    [STEP_EXPECT_CALLBACKS] = {"expect-callbacks", 0, 0, {NS_NONE}, -1, "count available", "count", -1, NULL, NULL},
    [STEP_EXPECT_TABLES] = {"expect-tables", 0, 0, {NS_NONE}, -1, "pages", "pages", -1, NULL, NULL},
    [STEP_PARALLEL_MAP] = {"parallel-map", 2, 2, {NS_DOMAIN, NS_BUFFER}, -1, "iova rounds", "iova rounds", -1, NULL,
                           NULL},
};

/* How each option's value is written, and so parsed (once, into struct scenario_values). */
enum value_kind { V_NUMBER, V_STATUS, V_PERM, V_EXPECT, V_NEW_NAME, V_TYPES, V_AVAILABLE, V_ALIGN, V_IOVA, V_TARGET };
static const struct {
    const char *name;
    enum value_kind kind;
} keys[SCENARIO_KEYS] = {
    [KEY_STATUS] = {"status", V_STATUS},     [KEY_PERM] = {"perm", V_PERM},
    [KEY_EXPECT] = {"expect", V_EXPECT},     [KEY_AS] = {"as", V_NEW_NAME},
    [KEY_TYPES] = {"types", V_TYPES},        [KEY_AVAILABLE] = {"available", V_AVAILABLE},
    [KEY_ALIGN] = {"align", V_ALIGN},        [KEY_IOVA] = {"iova", V_IOVA},
    [KEY_AT] = {"at", V_TARGET},             [KEY_WIDTH] = {"width", V_NUMBER},
    [KEY_PAGES] = {"pages", V_NUMBER},       [KEY_FILL] = {"fill", V_NUMBER},
    [KEY_MIN] = {"min", V_NUMBER},           [KEY_MAX] = {"max", V_NUMBER},
    [KEY_OFFSET] = {"offset", V_NUMBER},     [KEY_LEN] = {"len", V_NUMBER},
    [KEY_REASON] = {"reason", V_NUMBER},     [KEY_ADDRESS] = {"address", V_NUMBER},
    [KEY_COUNT] = {"count", V_NUMBER},       [KEY_LOST] = {"lost", V_NUMBER},
    [KEY_ROUNDS] = {"rounds", V_NUMBER},
};

/* The names of FAULT_INFORMATION's types, in the order of FAULT_INFORMATION_ARM64_TYPE. */
static const char *const fault_types[] = {"unsupported", "address-size", "tlb-conflict", "external",
                                          "permission", "access-flag", "translation"};
/* The domain types a state change can list, by IOMMU_DMA_DOMAIN_TYPE. */
static const char *const available_types[] = {"translate", "passthrough", "unmanaged", "translate-s1"};

static const struct {
    const char *name;
    uint32_t value;
} statuses[] = {
    {"success", 0},
    {"unsuccessful", 0xC0000001u},
    {"not-implemented", 0xC0000002u},
    {"invalid-parameter", 0xC000000Du},
    {"access-denied", 0xC0000022u},
    {"invalid-parameter-mix", 0xC0000030u},
    {"insufficient-resources", 0xC000009Au},
    {"not-supported", 0xC00000BBu},
    {"invalid-parameter-1", 0xC00000EFu},
    {"invalid-parameter-2", 0xC00000F0u},
    {"invalid-parameter-3", 0xC00000F1u},
    {"invalid-parameter-4", 0xC00000F2u},
    {"invalid-parameter-5", 0xC00000F3u},
    {"invalid-parameter-6", 0xC00000F4u},
    {"invalid-parameter-7", 0xC00000F5u},
    {"not-found", 0xC0000225u},
    {"resource-in-use", 0xC0000708u},
    {"access-violation", 0xC0000005u},
    {"invalid-system-service", 0xC000001Cu},
    {"revision-mismatch", 0xC0000059u},
    {"info-length-mismatch", 0xC0000004u},
};

const char *scenario_verb(enum step_kind kind)
{
    return kind < STEP_KINDS ? specs[kind].verb : "?";
}

/* ---- small text helpers ---- */

static bool same_n(const char *a, size_t len, const char *b)
{
    size_t i = 0;
    while (i < len && b[i] && a[i] == b[i])
        i++;
    return i == len && !b[i];
}

static int fault_type(const char *name, size_t len)
{
    for (unsigned i = 0; i < sizeof fault_types / sizeof fault_types[0]; i++)
        if (same_n(name, len, fault_types[i]))
            return (int)i;
    return -1;
}

const char *scenario_fault_type_name(int type)
{
    return type >= 0 && (unsigned)type < sizeof fault_types / sizeof fault_types[0] ? fault_types[type] : "?";
}

static uint32_t domain_type_bit(const char *name, size_t len)
{
    for (unsigned i = 0; i < sizeof available_types / sizeof available_types[0]; i++)
        if (same_n(name, len, available_types[i]))
            return 1u << i;
    return 0;
}

/* The next item of a comma-separated list at *cursor, and its length; NULL at the end. An
 * empty item (",," or a trailing comma) is returned as one of length 0. */
static const char *next_item(const char **cursor, size_t *len)
{
    const char *item = *cursor;
    if (!item)
        return NULL;
    const char *e = item;
    while (*e && *e != ',')
        e++;
    *len = (size_t)(e - item);
    *cursor = *e ? e + 1 : NULL;
    return item;
}

bool scenario_fault_types(const char *list, int *types, unsigned max, unsigned *count)
{
    size_t len;
    *count = 0;
    for (const char *cursor = list, *item; (item = next_item(&cursor, &len)) != NULL; (*count)++) {
        int t = fault_type(item, len);
        if (t < 0)
            return false;
        if (*count < max)
            types[*count] = t;
    }
    return true;
}

bool scenario_available_types(const char *list, uint32_t *mask)
{
    size_t len;
    *mask = 0;
    if (same_n(list, 4, "none") && !list[4])
        return true;
    for (const char *cursor = list, *item; (item = next_item(&cursor, &len)) != NULL;) {
        uint32_t bit = domain_type_bit(item, len);
        if (!bit)
            return false;
        *mask |= bit;
    }
    return true;
}

static bool same(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

/* Whether word is one of the space-separated words of list. */
static bool in_list(const char *word, const char *list)
{
    while (*list) {
        const char *w = word;
        while (*list && *list != ' ' && *w == *list)
            w++, list++;
        if (!*w && (!*list || *list == ' '))
            return true;
        while (*list && *list != ' ')
            list++;
        while (*list == ' ')
            list++;
    }
    return false;
}

static bool parse_number(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    unsigned base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        base = 16, s += 2;
    if (!*s)
        return false;
    for (; *s; s++) {
        unsigned d = *s >= '0' && *s <= '9' ? (unsigned)(*s - '0')
                   : *s >= 'a' && *s <= 'f' ? (unsigned)(*s - 'a' + 10)
                   : *s >= 'A' && *s <= 'F' ? (unsigned)(*s - 'A' + 10)
                                            : 99;
        if (d >= base || v > (UINT64_MAX - d) / base)
            return false;
        v = v * base + d;
    }
    *out = v;
    return true;
}

bool scenario_parse_number(const char *text, uint64_t *value)
{
    return parse_number(text, value);
}

bool scenario_status(const char *text, uint32_t *value)
{
    for (unsigned i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        if (same(text, statuses[i].name)) {
            *value = statuses[i].value;
            return true;
        }
    uint64_t n;
    if (!parse_number(text, &n) || n > 0xFFFFFFFFu)
        return false;
    *value = (uint32_t)n;
    return true;
}

const char *scenario_option(const struct scenario_step *s, const char *key)
{
    for (unsigned i = 0; i < s->options; i++)
        if (same(s->option[i].key, key))
            return s->option[i].value;
    return NULL;
}

bool scenario_parse_target(const char *text, struct scenario_target *t)
{
    *t = (struct scenario_target){.kind = TARGET_MAPPING};
    if (same(text, "region")) {
        t->kind = TARGET_REGION;
        return true;
    }
    if (parse_number(text, &t->value)) {
        t->kind = TARGET_ADDRESS;
        return true;
    }
    static const char buffer_prefix[] = "buffer:";
    unsigned p = 0;
    while (p < sizeof buffer_prefix - 1 && text[p] == buffer_prefix[p])
        p++;
    if (p == sizeof buffer_prefix - 1) {
        t->kind = TARGET_BUFFER;
        text += p;
    }
    unsigned i = 0;
    for (; text[i] && text[i] != '+' && i + 1 < SCENARIO_WORD; i++)
        t->name[i] = text[i];
    t->name[i] = 0;
    return text[i] != '+' || parse_number(text + i + 1, &t->value);
}

/* ---- the parser ---- */

struct names {
    char name[SCENARIO_MAX_NAMES][SCENARIO_WORD];
    enum ns ns[SCENARIO_MAX_NAMES];
    unsigned count;
};

static enum ns lookup(const struct names *n, const char *name)
{
    for (unsigned i = 0; i < n->count; i++)
        if (same(n->name[i], name))
            return n->ns[i];
    return NS_NONE;
}

/* Splits a line into words (at most max, each < SCENARIO_VALUE); NULL when fine, else what
 * is wrong (a word too long, too many words). Names and keys are held to SCENARIO_WORD by
 * their callers. */
static const char *split(const char *b, const char *e, char words[][SCENARIO_VALUE], unsigned max, unsigned *n)
{
    *n = 0;
    while (b < e) {
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        if (b == e)
            break;
        if (*n == max)
            return "the line has too many words";
        unsigned len = 0;
        while (b < e && *b != ' ' && *b != '\t') {
            if (len + 1 == SCENARIO_VALUE)
                return "a word is too long (127 characters at most)";
            words[*n][len++] = *b++;
        }
        words[(*n)++][len] = 0;
    }
    return NULL;
}

static size_t length(const char *w)
{
    size_t n = 0;
    while (w[n])
        n++;
    return n;
}

/* The option key's index, or SCENARIO_KEYS for none. */
static enum scenario_key key_of(const char *name)
{
    for (unsigned k = 0; k < SCENARIO_KEYS; k++)
        if (same(name, keys[k].name))
            return (enum scenario_key)k;
    return SCENARIO_KEYS;
}

/* Parses one option's value into v: NULL when fine, else what is wrong. */
static const char *parse_option(enum step_kind kind, enum scenario_key key, const char *value,
                                const struct names *names, struct scenario_values *v)
{
    uint64_t n = 0;
    v->given |= 1u << key;
    switch (keys[key].kind) {
    case V_STATUS:
        return scenario_status(value, &v->status)
                   ? NULL
                   : "status is a status name (success, access-denied, resource-in-use, invalid-parameter-N, ...) "
                     "or a hex NTSTATUS";
    case V_PERM:
        v->perm = same(value, "r") ? SCENARIO_PERM_READ : same(value, "w") ? SCENARIO_PERM_WRITE
                : same(value, "rw") ? SCENARIO_PERM_READ | SCENARIO_PERM_WRITE : 0;
        return v->perm || same(value, "none") ? NULL : "perm is r, w, rw or none";
    case V_EXPECT:
        v->expect_fault = same(value, "fault");
        return v->expect_fault || same(value, "ok") ? NULL : "expect is ok or fault";
    case V_NEW_NAME:
        if (lookup(names, value) != NS_NONE)
            return "as names a new mapping";
        for (unsigned i = 0; i + 1 < SCENARIO_WORD && value[i]; i++)
            v->as[i] = value[i], v->as[i + 1] = 0;
        return NULL;
    case V_TYPES:
        return scenario_fault_types(value, v->types, SCENARIO_MAX_TYPES, &v->type_count)
                   ? NULL
                   : "types is a list of fault types as drivers get them: translation, permission, address-size, "
                     "external, unsupported, tlb-conflict, access-flag";
    case V_AVAILABLE:
        return scenario_available_types(value, &v->available)
                   ? NULL
                   : "available is none or a list of translate, passthrough, unmanaged, translate-s1";
    case V_ALIGN:
        if (!parse_number(value, &n) || n < 4096 || n > 0x40000000 || (n & (n - 1)))
            return "align is a power of two from 4096 to 0x40000000";
        v->number[key] = n;
        return NULL;
    case V_IOVA:
        if (kind == STEP_MAP && same(value, "alloc")) {
            v->iova_alloc = true;
            return NULL;
        }
        if (parse_number(value, &v->number[key])) {
            v->iova = (struct scenario_target){.kind = TARGET_ADDRESS, .value = v->number[key]};
            return NULL;
        }
        if (kind == STEP_UNMAP)
            return scenario_parse_target(value, &v->iova) && v->iova.kind == TARGET_MAPPING &&
                           lookup(names, v->iova.name) == NS_IOVA
                       ? NULL
                       : "iova is a number or a mapping's name (as=) with an optional +OFFSET";
        return "the value is a number (decimal or 0x hex)";
    case V_TARGET:
        if (kind == STEP_DMA || kind == STEP_BURST) {
            if (!scenario_parse_target(value, &v->at))
                return "at=NAME+OFFSET takes a number after +";
            if (v->at.kind == TARGET_ADDRESS)
                v->number[key] = v->at.value;
            if (v->at.kind == TARGET_BUFFER)
                return lookup(names, v->at.name) == NS_BUFFER ? NULL : "at=buffer:NAME names a buffer declared before";
            if (v->at.kind == TARGET_MAPPING)
                return lookup(names, v->at.name) == NS_IOVA
                           ? NULL
                           : "at is an IOVA, a mapping's name (+offset), buffer:NAME or region";
            return NULL;
        }
        break; /* inject's at=K: a number */
    case V_NUMBER:
        break;
    }
    return parse_number(value, &v->number[key]) ? NULL : "the value is a number (decimal or 0x hex)";
}

uint64_t scenario_number(const struct scenario_step *s, const char *key, uint64_t fallback)
{
    enum scenario_key k = key_of(key);
    if (k < SCENARIO_KEYS && (keys[k].kind == V_NUMBER || keys[k].kind == V_ALIGN))
        return scenario_value(s, k, fallback);
    /* the others as their text reads: a number, or not one */
    const char *v = scenario_option(s, key);
    uint64_t n;
    return v && parse_number(v, &n) ? n : fallback;
}

/* The index of word in a NULL-terminated list, or -1. */
static int word_index(const char *word, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (same(word, list[i]))
            return i;
    return -1;
}

static bool step_line(struct scenario *s, struct names *names, char words[][SCENARIO_VALUE], unsigned n,
                      unsigned line, const char **why)
{
    enum step_kind kind = STEP_KINDS;
    for (unsigned k = 0; k < STEP_KINDS; k++)
        if (same(words[0], specs[k].verb))
            kind = (enum step_kind)k;
    if (kind == STEP_KINDS) {
        *why = "unknown step (see docs/scenarios.md)";
        return false;
    }
    if (s->steps == SCENARIO_MAX_STEPS) {
        *why = "too many steps (at most 128)";
        return false;
    }
    const struct spec *sp = &specs[kind];
    struct scenario_step *st = &s->step[s->steps];
    *st = (struct scenario_step){.kind = kind, .line = line};
    for (unsigned i = 1; i < n; i++) {
        const char *eq = words[i];
        while (*eq && *eq != '=')
            eq++;
        if (!*eq) {
            if (st->options) {
                *why = "names come before key=value options";
                return false;
            }
            if (st->args == sp->max_args) {
                *why = "too many names for this step";
                return false;
            }
            if (length(words[i]) >= SCENARIO_WORD) {
                *why = "a name is too long (31 characters at most)";
                return false;
            }
            unsigned len = 0;
            for (; words[i][len]; len++)
                st->arg[st->args][len] = words[i][len];
            st->arg[st->args][len] = 0;
            st->args++;
            continue;
        }
        if (st->options == SCENARIO_MAX_OPTIONS) {
            *why = "too many options";
            return false;
        }
        struct scenario_option *o = &st->option[st->options];
        if (eq - words[i] >= SCENARIO_WORD) {
            *why = "an option's name is too long (31 characters at most)";
            return false;
        }
        unsigned k = 0;
        for (const char *p = words[i]; p < eq; p++)
            o->key[k++] = *p;
        o->key[k] = 0;
        k = 0;
        for (const char *p = eq + 1; *p; p++)
            o->value[k++] = *p;
        o->value[k] = 0;
        enum scenario_key key = key_of(o->key);
        if (key == SCENARIO_KEYS || !in_list(o->key, sp->keys)) {
            *why = "an option this step does not take";
            return false;
        }
        if (!o->value[0]) {
            *why = "an option without a value";
            return false;
        }
        /* A repeated option is checked like the first, but the first one counts. */
        struct scenario_values repeated = st->v;
        if ((*why = parse_option(kind, key, o->value, names, scenario_given(st, key) ? &repeated : &st->v)) != NULL)
            return false;
        st->options++;
    }
    if (st->args < sp->min_args) {
        *why = "too few names for this step";
        return false;
    }
    for (const char *r = sp->required; *r;) {
        char key[SCENARIO_WORD];
        unsigned k = 0;
        while (*r && *r != ' ')
            key[k++] = *r++;
        key[k] = 0;
        while (*r == ' ')
            r++;
        if (!scenario_option(st, key)) {
            *why = "a required option is missing (see docs/scenarios.md)";
            return false;
        }
    }
    /* names: declared ones new, referenced ones declared before with the right kind */
    for (unsigned i = 0; i < st->args; i++) {
        enum ns want = sp->arg_ns[i], have = lookup(names, st->arg[i]);
        if (want == NS_NONE)
            continue;
        if ((int)i == sp->declares) {
            if (have != NS_NONE) {
                *why = "this name is taken already";
                return false;
            }
            if (names->count == SCENARIO_MAX_NAMES) {
                *why = "too many names (at most 32)";
                return false;
            }
            unsigned len = 0;
            for (; st->arg[i][len]; len++)
                names->name[names->count][len] = st->arg[i][len];
            names->name[names->count][len] = 0;
            names->ns[names->count++] = want;
        } else if (have != want) {
            *why = want == NS_DOMAIN   ? "not a domain declared before"
                 : want == NS_DEVICE   ? "not a device declared before"
                 : want == NS_BUFFER   ? "not a buffer declared before"
                                       : "not a token declared before";
            return false;
        }
    }
    /* the keyword some steps take */
    if (sp->keyword >= 0) {
        int w = (unsigned)sp->keyword < st->args ? word_index(st->arg[sp->keyword], sp->words) : -1;
        bool fits = w >= 0 && (kind != STEP_DEVICE || (unsigned)w < s->machine.edus) &&
                    (kind != STEP_INJECT || w != SCENARIO_POOL_FAIL || scenario_given(st, KEY_AT));
        if (!fits) {
            *why = sp->wrong_word;
            return false;
        }
        st->word = (unsigned)w;
    }
    if ((kind == STEP_DMA || kind == STEP_BURST) && st->v.number[KEY_LEN] - 1 >= 4095) {
        *why = "len is 1 to 4095 (edu's buffer)";
        return false;
    }
    if (kind == STEP_BURST && st->args == 3 && same(st->arg[1], st->arg[2])) {
        *why = "a burst names each device once";
        return false;
    }
    if ((kind == STEP_MAP || kind == STEP_RESERVE) && scenario_given(st, KEY_MIN) && scenario_given(st, KEY_MAX) &&
        st->v.number[KEY_MIN] > st->v.number[KEY_MAX]) {
        *why = "min is at most max";
        return false;
    }
    if (kind == STEP_PARALLEL_MAP && s->machine.cpus < 2) {
        *why = "parallel-map needs a machine with cpus=2 or more";
        return false;
    }
    if (kind == STEP_PARALLEL_MAP && st->v.number[KEY_ROUNDS] - 1 >= 10000) {
        *why = "rounds is 1 to 10000";
        return false;
    }
    const char *as = scenario_option(st, "as");
    if (as && length(as) >= SCENARIO_WORD) { /* (st->v.as holds its first 31 characters) */
        *why = "a name is too long (31 characters at most)";
        return false;
    }
    if (as) {
        if (names->count == SCENARIO_MAX_NAMES) {
            *why = "too many names (at most 32)";
            return false;
        }
        unsigned len = 0;
        for (; as[len]; len++)
            names->name[names->count][len] = as[len];
        names->name[names->count][len] = 0;
        names->ns[names->count++] = NS_IOVA;
    }
    s->steps++;
    return true;
}

const char *scenario_arch_name(enum scenario_arch a)
{
    return a == SCENARIO_ARCH_X86_64 ? "x86_64" : a == SCENARIO_ARCH_ARM64 ? "arm64" : "any";
}

static bool header_line(struct scenario *s, char words[][SCENARIO_VALUE], unsigned n, const char **why)
{
    for (unsigned i = 1; i < n; i++) {
        bool arch_any = same(words[i], "arch=any"), arch_x86 = same(words[i], "arch=x86_64"),
             arch_arm = same(words[i], "arch=arm64");
        if (arch_any || arch_x86 || arch_arm) {
            s->machine.arch = arch_x86 ? SCENARIO_ARCH_X86_64 : arch_arm ? SCENARIO_ARCH_ARM64 : SCENARIO_ARCH_ANY;
            continue;
        }
        const char *eq = words[i];
        while (*eq && *eq != '=')
            eq++;
        uint64_t v;
        if (!*eq || !parse_number(eq + 1, &v) || eq - words[i] >= SCENARIO_WORD) {
            *why = "machine takes aw-bits=, cpus=, memory=, edus= and dma_mask= with numbers, and arch=any|x86_64|arm64";
            return false;
        }
        char key[SCENARIO_WORD];
        unsigned k = 0;
        for (const char *p = words[i]; p < eq; p++)
            key[k++] = *p;
        key[k] = 0;
        if (same(key, "aw-bits") && (v == 39 || v == 48))
            s->machine.aw_bits = (unsigned)v;
        else if (same(key, "cpus") && v >= 1 && v <= 4)
            s->machine.cpus = (unsigned)v;
        else if (same(key, "memory") && v >= 256 && v <= 4096)
            s->machine.memory_mib = (unsigned)v;
        else if (same(key, "edus") && v >= 1 && v <= 2)
            s->machine.edus = (unsigned)v;
        else if (same(key, "dma_mask") && v >= 0xFFFFFFFFull)
            s->machine.dma_mask = v;
        else {
            *why = "machine: aw-bits=39|48, cpus=1..4, memory=256..4096 (MiB), edus=1..2, dma_mask>=0xffffffff";
            return false;
        }
    }
    return true;
}

bool scenario_parse(const char *text, size_t len, struct scenario *out, char *error, size_t error_len)
{
    static struct names names;
    names.count = 0;
    *out = (struct scenario){.machine = {39, 1, 512, 1, ~0ull}};
    bool named = false;
    unsigned line = 1;
    for (size_t start = 0; start < len || line == 1; line++) {
        size_t end = start;
        while (end < len && text[end] != '\n')
            end++;
        const char *b = text + start, *e = text + end, *why = NULL;
        for (const char *p = b; p < e; p++)
            if (*p == '#') {
                e = p;
                break;
            }
        while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
            e--;
        static char words[SCENARIO_MAX_ARGS + SCENARIO_MAX_OPTIONS + 1][SCENARIO_VALUE];
        unsigned n = 0;
        bool ok = true;
        if (e - b >= 12 && b[0] == 'd' && b[1] == 'e' && b[2] == 's' && b[3] == 'c' && b[4] == 'r' && b[5] == 'i' &&
            b[6] == 'p' && b[7] == 't' && b[8] == 'i' && b[9] == 'o' && b[10] == 'n' && b[11] == ' ') {
            size_t d = 0;
            for (const char *p = b + 12; p < e && d + 1 < sizeof out->description; p++)
                out->description[d++] = *p;
            out->description[d] = 0;
        } else if ((why = split(b, e, words, sizeof words / sizeof words[0], &n)) != NULL) {
            ok = false;
        } else if (n == 0) {
            /* blank or comment */
        } else if (same(words[0], "scenario")) {
            if (named || n != 2)
                ok = false, why = "one line \"scenario NAME\", first";
            else if (length(words[1]) >= SCENARIO_WORD)
                ok = false, why = "a name is too long (31 characters at most)";
            else {
                named = true;
                unsigned k = 0;
                for (; words[1][k]; k++)
                    out->name[k] = words[1][k];
                out->name[k] = 0;
            }
        } else if (!named) {
            ok = false, why = "the file starts with \"scenario NAME\"";
        } else if (same(words[0], "machine")) {
            ok = header_line(out, words, n, &why);
        } else {
            ok = step_line(out, &names, words, n, line, &why);
        }
        if (!ok) {
            fmt_format(error, error_len, "%u: %s", line, why);
            return false;
        }
        if (end >= len)
            break;
        start = end + 1;
    }
    if (!named || !out->steps) {
        fmt_format(error, error_len, "%u: a scenario needs \"scenario NAME\" and at least one step", line);
        return false;
    }
    return true;
}
