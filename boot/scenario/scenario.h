/* Fault-injection scenarios (docs/scenarios.md): the plain-text format, parsed into steps.
 * Freestanding: the guest's fault-injection driver runs the steps, and the host tool
 * scenario-check rejects a malformed file with "FILE:LINE: what is wrong" before QEMU starts.
 *
 * A scenario is a header (scenario, machine, description) and then one step per line:
 * a verb, positional names, and key=value options. Names are declared by the steps that
 * make the objects (domain, device, buffer, reserve) and must be declared before use. */
#ifndef BOOT_SCENARIO_H
#define BOOT_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCENARIO_MAX_STEPS 128
#define SCENARIO_MAX_ARGS 3
#define SCENARIO_MAX_OPTIONS 7
#define SCENARIO_WORD 32   /* a name, a verb or an option's key: at most 31 characters */
#define SCENARIO_VALUE 128 /* an option's value (a types= list, say): at most 127 characters */
#define SCENARIO_MAX_NAMES 32

enum step_kind {
    STEP_DOMAIN,          /* domain NAME TYPE [width=N] [status=S] */
    STEP_DELETE_DOMAIN,   /* delete-domain NAME [status=S] */
    STEP_DEVICE,          /* device NAME eduN [status=S] */
    STEP_DELETE_DEVICE,   /* delete-device NAME [status=S] */
    STEP_ATTACH,          /* attach DOMAIN DEVICE [status=S] */
    STEP_DETACH,          /* detach DEVICE [status=S] */
    STEP_BUFFER,          /* buffer NAME pages=N [fill=B] [align=A] */
    STEP_MAP,             /* map DOMAIN BUFFER iova=A|alloc perm=P [pages=N] [min=A] [max=A] [as=NAME] [status=S] */
    STEP_UNMAP,           /* unmap DOMAIN iova=A|NAME[+OFFSET] pages=N [status=S] */
    STEP_MAP_IDENTITY,    /* map-identity DOMAIN BUFFER perm=P [status=S] */
    STEP_UNMAP_IDENTITY,  /* unmap-identity DOMAIN BUFFER [status=S] */
    STEP_RESERVE,         /* reserve NAME DOMAIN pages=N [iova=A] [min=A] [max=A] [status=S] */
    STEP_MAP_RESERVED,    /* map-reserved TOKEN BUFFER offset=N perm=P [pages=N] [status=S] */
    STEP_UNMAP_RESERVED,  /* unmap-reserved TOKEN [status=S] */
    STEP_FREE_RESERVED,   /* free-reserved TOKEN [status=S] */
    STEP_REPORTING,       /* reporting DEVICE on|off [status=S] */
    STEP_GUARD,           /* guard on|off */
    STEP_DMA,             /* dma DEVICE read|write at=T len=N expect=ok|fault [reason=R] [address=A] */
    STEP_BURST,           /* burst read|write DEVICE [DEVICE] at=T len=N expect=ok|fault [reason=R] */
    STEP_INJECT,          /* inject pool-fail at=K | inject invalidation-timeout */
    STEP_HYPERCALL,       /* hypercall garbage|forged-handle|bad-address status=S */
    STEP_EXPECT_REPORTS,  /* expect-reports count=N [types=T,T...] [lost=N] */
    STEP_CALLBACK,        /* callback DEVICE on|off [status=S] */
    STEP_EXPECT_CALLBACKS, /* expect-callbacks count=N [available=TYPE,TYPE...|none] */
    STEP_EXPECT_TABLES,   /* expect-tables pages=N */
    STEP_PARALLEL_MAP,    /* parallel-map DOMAIN BUFFER iova=A rounds=N */
    STEP_KINDS
};

struct scenario_option {
    char key[SCENARIO_WORD], value[SCENARIO_VALUE];
};

/* Every option a step can take (the verbs' table in scenario.c says which step takes which). */
enum scenario_key {
    KEY_STATUS, KEY_PERM, KEY_EXPECT, KEY_AS, KEY_TYPES, KEY_AVAILABLE, KEY_ALIGN, KEY_IOVA, KEY_AT,
    KEY_WIDTH, KEY_PAGES, KEY_FILL, KEY_MIN, KEY_MAX, KEY_OFFSET, KEY_LEN, KEY_REASON, KEY_ADDRESS,
    KEY_COUNT, KEY_LOST, KEY_ROUNDS,
    SCENARIO_KEYS
};

#define SCENARIO_PERM_READ 1u
#define SCENARIO_PERM_WRITE 2u
#define SCENARIO_MAX_TYPES 64

/* What a DMA step's at= (or unmap's iova=) names: a number, "region", a mapping's name or
 * "buffer:NAME", the last two with an optional "+OFFSET" (value). */
enum scenario_target_kind { TARGET_ADDRESS, TARGET_REGION, TARGET_MAPPING, TARGET_BUFFER };
struct scenario_target {
    enum scenario_target_kind kind;
    char name[SCENARIO_WORD];
    uint64_t value; /* the address, or the offset from the named object */
};

/* A step's options, parsed once by scenario_parse: the runner reads these, never the text. */
struct scenario_values {
    uint32_t given;                 /* bit 1 << KEY_* for each option the step has */
    uint64_t number[SCENARIO_KEYS]; /* the value of each numeric option (0 when not given) */
    uint32_t status;                /* status=: the NTSTATUS wanted (0, success, when not given) */
    uint32_t perm;                  /* perm=: SCENARIO_PERM_* bits */
    bool expect_fault;              /* expect=fault (expect=ok: false) */
    bool iova_alloc;                /* map's iova=alloc */
    struct scenario_target iova;    /* unmap's iova=: an address or a mapping's name + offset */
    struct scenario_target at;      /* dma's and burst's at= */
    char as[SCENARIO_WORD];         /* map's as=: the new mapping's name */
    int types[SCENARIO_MAX_TYPES];  /* expect-reports' types=, in order */
    unsigned type_count;
    uint32_t available;             /* expect-callbacks' available=: domain type bits */
};

struct scenario_step {
    enum step_kind kind;
    unsigned line;
    unsigned args, options;
    char arg[SCENARIO_MAX_ARGS][SCENARIO_WORD];
    unsigned word;                  /* which of its verb's words the step's keyword is (below) */
    struct scenario_option option[SCENARIO_MAX_OPTIONS]; /* as written, for messages */
    struct scenario_values v;
};

/* The keywords steps take, as scenario_step.word: domain's type, dma's and burst's
 * direction, on/off, inject's and hypercall's kind. */
enum scenario_domain_type {
    SCENARIO_TRANSLATE, SCENARIO_TRANSLATE_BUDDY, SCENARIO_PASSTHROUGH, SCENARIO_V1_OS_MANAGED,
    SCENARIO_V1_CALLER_MANAGED, SCENARIO_UNMANAGED, SCENARIO_TRANSLATE_S1
};
enum { SCENARIO_OFF, SCENARIO_ON };                       /* reporting, guard, callback */
enum { SCENARIO_READ, SCENARIO_WRITE };                   /* dma, burst */
enum { SCENARIO_POOL_FAIL, SCENARIO_INVALIDATION_TIMEOUT }; /* inject */
enum { SCENARIO_GARBAGE, SCENARIO_FORGED_HANDLE, SCENARIO_BAD_ADDRESS }; /* hypercall */

static inline bool scenario_given(const struct scenario_step *s, enum scenario_key k)
{
    return s->v.given >> k & 1;
}

/* A numeric option's value, or fallback when the step does not have it. */
static inline uint64_t scenario_value(const struct scenario_step *s, enum scenario_key k, uint64_t fallback)
{
    return scenario_given(s, k) ? s->v.number[k] : fallback;
}

/* Which machines a scenario runs on (machine arch=): both, or one where it tests what only
 * that platform has (VT-d's reason codes, the firmware's MP services). */
enum scenario_arch { SCENARIO_ARCH_ANY, SCENARIO_ARCH_X86_64, SCENARIO_ARCH_ARM64 };

struct scenario_machine {
    unsigned aw_bits, cpus, memory_mib, edus;
    uint64_t dma_mask;
    enum scenario_arch arch;
};

/* "any", "x86_64" or "arm64". */
const char *scenario_arch_name(enum scenario_arch a);

struct scenario {
    char name[SCENARIO_WORD];
    char description[160];
    struct scenario_machine machine;
    unsigned steps;
    struct scenario_step step[SCENARIO_MAX_STEPS];
};

/* Parses and checks a whole scenario. False on the first problem, with "LINE: what is wrong"
 * in error; out is then unusable. */
bool scenario_parse(const char *text, size_t len, struct scenario *out, char *error, size_t error_len);

/* An option of a step as written, or NULL. */
const char *scenario_option(const struct scenario_step *s, const char *key);

/* A numeric option's parsed value, or fallback when the step does not have it. */
uint64_t scenario_number(const struct scenario_step *s, const char *key, uint64_t fallback);

/* A number as scenarios write it (decimal or 0x hex). */
bool scenario_parse_number(const char *text, uint64_t *value);

/* Parses what at= or iova= names (struct scenario_target). False when the offset is not a
 * number. */
bool scenario_parse_target(const char *text, struct scenario_target *t);

/* A status as scenarios write it (a name from docs/scenarios.md, or a number). */
bool scenario_status(const char *text, uint32_t *value);

/* expect-reports' types= list: the FAULT_INFORMATION type of each name (translation,
 * permission, address-size, ...), the first max of them into types; count is how many the
 * list has. False for a name that is no type, or an empty one. */
bool scenario_fault_types(const char *list, int *types, unsigned max, unsigned *count);
/* And the other way: the name of a type, "?" for a number that is none. */
const char *scenario_fault_type_name(int type);

/* expect-callbacks' available= list as domain type bits (1 << IOMMU_DMA_DOMAIN_TYPE):
 * translate, passthrough, unmanaged, translate-s1, or "none". False for a name that is none
 * of them. */
bool scenario_available_types(const char *list, uint32_t *mask);

/* The verb of a step kind, as written. */
const char *scenario_verb(enum step_kind kind);

#endif
