/* Every fixture, mutated: truncated at every length, length fields pushed past the end,
 * scope lengths of 0 and 5, and seeded random byte flips. Each mutant must parse or be
 * rejected with an error that names an offset; the buffers are exactly the mutant's size,
 * so under AddressSanitizer any read outside the table fails the test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iommu/acpi_report.h"
#include "iommu/dmar.h"
#include "iommu/iort.h"
#include "iommu/le.h"
#include "test_util.h"

struct counts {
    unsigned parsed, rejected;
};

static void null_write(void *ctx, const char *s, size_t n)
{
    (void)ctx;
    (void)s;
    (void)n;
}

/* Parses a private copy of exactly len bytes; a parsed table is also rendered both ways,
 * which walks every structure, scope and array again through the iterators. */
static void parse_mutant(const uint8_t *bytes, size_t len, bool iort, struct counts *c, const char *what)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, bytes, len);
    struct diag d;
    diag_clear(&d);
    struct sink null_sink = {null_write, NULL};
    struct json_writer w;
    json_init(&w, &null_sink);
    bool ok;
    if (iort) {
        struct iort_table t;
        ok = iort_parse(&t, copy, len, &d);
        if (ok) {
            iort_report_text(&t, &null_sink);
            iort_report_json(&t, &w);
        }
    } else {
        struct dmar_table t;
        ok = dmar_parse(&t, copy, len, &d);
        if (ok) {
            dmar_report_text(&t, &null_sink);
            dmar_report_json(&t, &w);
        }
    }
    if (ok) {
        c->parsed++;
        if (!json_done(&w))
            fail_msg("%s: JSON document incomplete", what);
    } else {
        c->rejected++;
        if (strncmp(d.error, "offset 0x", 9) != 0)
            fail_msg("%s: rejection without an offset: \"%s\"", what, d.error);
    }
    free(copy);
}

static void truncations(const uint8_t *b, size_t len, bool iort, struct counts *c, const char *name)
{
    for (size_t cut = 0; cut < len; cut++) {
        parse_mutant(b, cut, iort, c, name);
        /* Also with the header's length field telling the truth about the cut. */
        if (cut >= 8) {
            uint8_t *m = malloc(cut);
            memcpy(m, b, cut);
            m[4] = (uint8_t)cut;
            m[5] = (uint8_t)(cut >> 8);
            m[6] = m[7] = 0;
            parse_mutant(m, cut, iort, c, name);
            free(m);
        }
    }
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* Offsets of every DMAR structure and scope, found by walking the unmutated table. */
static void dmar_lengths(const uint8_t *b, size_t len, struct counts *c, const char *name)
{
    struct dmar_table t;
    assert_true(dmar_parse(&t, b, len, NULL));
    uint8_t *m = malloc(len);
    struct dmar_struct s;
    for (uint32_t cur = 0; dmar_next_struct(&t, &cur, &s);) {
        const uint16_t lengths[] = {0, 1, 3, (uint16_t)(s.length + 1), (uint16_t)(len - s.offset + 1), 0xffff};
        for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
            memcpy(m, b, len);
            put16(m + s.offset + 2, lengths[i]);
            parse_mutant(m, len, false, c, name);
        }
        struct dmar_scope sc;
        for (uint32_t sc_c = 0; dmar_next_scope(&t, &s, &sc_c, &sc);) {
            const uint8_t scope_lengths[] = {0, 5, 7, (uint8_t)(sc.length + 2), 0xff};
            for (size_t i = 0; i < sizeof scope_lengths; i++) {
                memcpy(m, b, len);
                m[sc.offset + 1] = scope_lengths[i];
                parse_mutant(m, len, false, c, name);
            }
        }
    }
    free(m);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)v);
    put16(p + 2, (uint16_t)(v >> 16));
}

static void iort_lengths(const uint8_t *b, size_t len, struct counts *c, const char *name)
{
    struct iort_table t;
    assert_true(iort_parse(&t, b, len, NULL));
    uint8_t *m = malloc(len);
    /* header: node count and node offset */
    const uint32_t header_values[] = {0, 1, 47, (uint32_t)len, 0xffffffffu, t.node_count + 1};
    for (size_t i = 0; i < sizeof header_values / sizeof header_values[0]; i++) {
        for (unsigned field = 36; field <= 40; field += 4) {
            memcpy(m, b, len);
            put32(m + field, header_values[i]);
            parse_mutant(m, len, true, c, name);
        }
    }
    struct iort_node n;
    for (struct iort_cursor cur = {0}; iort_next_node(&t, &cur, &n);) {
        const uint16_t lengths[] = {0, 15, (uint16_t)(n.length + 1), (uint16_t)(len - n.offset + 1), 0xffff};
        for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
            memcpy(m, b, len);
            put16(m + n.offset + 1, lengths[i]);
            parse_mutant(m, len, true, c, name);
        }
        /* mapping count and offset; per-type counts and array references */
        const uint32_t values[] = {0, 1, 0x0ccccccd, 0xffffffffu, n.length, (uint32_t)n.length - 1};
        const unsigned fields[] = {8, 12, 16, 20, 24, 40, 44, 48, 52, 56};
        for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
            if (fields[f] + 4 > n.length)
                continue;
            for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
                memcpy(m, b, len);
                put32(m + n.offset + fields[f], values[i]);
                parse_mutant(m, len, true, c, name);
            }
        }
    }
    free(m);
}

static void byte_flips(const uint8_t *b, size_t len, bool iort, struct counts *c, const char *name)
{
    uint8_t *m = malloc(len);
    uint64_t rng = 0x9e3779b97f4a7c15ull ^ len;
    for (unsigned round = 0; round < 2000; round++) {
        memcpy(m, b, len);
        for (unsigned k = 0; k < 1 + round % 4; k++) {
            test_rand(&rng);
            size_t at = 36 + (size_t)(rng % (len - 36)); /* keep the signature */
            m[at] = (uint8_t)(rng >> 32);
        }
        parse_mutant(m, len, iort, c, name);
    }
    free(m);
}

static void mutate_dir(const char *dir, const char *ext, bool iort, unsigned *files)
{
    char **paths;
    size_t n = list_files(dir, ext, &paths);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        uint8_t *b = read_fixture(paths[i], &len);
        struct counts c = {0, 0};
        truncations(b, len, iort, &c, paths[i]);
        if (iort)
            iort_lengths(b, len, &c, paths[i]);
        else
            dmar_lengths(b, len, &c, paths[i]);
        byte_flips(b, len, iort, &c, paths[i]);
        /* Every strict truncation below the header length must be rejected. */
        assert_true(c.rejected >= len);
        print_message("%-70s %6u parsed %6u rejected\n", paths[i], c.parsed, c.rejected);
        free(b);
        (*files)++;
    }
    free_list(paths, n);
}

static void test_local_fixtures(void **state)
{
    (void)state;
    unsigned files = 0;
    mutate_dir(fixture("dmar"), ".dmar", false, &files);
    mutate_dir(fixture("synthetic"), ".dmar", false, &files);
    mutate_dir(fixture("iort"), ".iort", true, &files);
    mutate_dir(fixture("synthetic"), ".iort", true, &files);
    mutate_dir(fixture("more"), ".dmar", false, &files);
    mutate_dir(fixture("more"), ".iort", true, &files);
    assert_true(files >= 30);
}

static void test_shared_fixtures(void **state)
{
    (void)state;
    const char *dir = shared_fixture_dir();
    if (!dir)
        skip();
    char sub[1024];
    unsigned files = 0;
    snprintf(sub, sizeof sub, "%s/dmar", dir);
    mutate_dir(sub, ".dmar", false, &files);
    snprintf(sub, sizeof sub, "%s/iort", dir);
    mutate_dir(sub, ".iort", true, &files);
    assert_true(files > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_fixtures),
        cmocka_unit_test(test_shared_fixtures),
    };
    return cmocka_run_group_tests_name("mutations", tests, NULL, NULL);
}
