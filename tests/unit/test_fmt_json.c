/* The freestanding formatter and the JSON writer. */
#include <stdio.h>
#include <string.h>

#include "iommu/json.h"
#include "test_util.h"

static void test_format_subset(void **state)
{
    (void)state;
    char buf[128];
    /* Compared with the C library's printf for the same arguments. */
    struct {
        const char *fmt;
        unsigned long a;
    } cases[] = {{"%lx", 0xdeadbeefcafef00dul}, {"%016lx", 0x2al}, {"%lu", 18446744073709551615ul},
                 {"%8lu|", 42}, {"%-8lu|", 42}, {"%lX", 0xabcul}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char want[128];
        snprintf(want, sizeof want, cases[i].fmt, cases[i].a);
        fmt_format(buf, sizeof buf, cases[i].fmt, cases[i].a);
        assert_string_equal(buf, want);
    }
    fmt_format(buf, sizeof buf, "%d %i %u %02x %c %s %.3s %5s|%-5s|", -17, 0, 4000000000u, 7, 'z', "str",
               "abcdef", "ab", "cd");
    assert_string_equal(buf, "-17 0 4000000000 07 z str abc    ab|cd   |");
    fmt_format(buf, sizeof buf, "%ld %zu %%", (long)-9223372036854775807L - 1, (size_t)12);
    assert_string_equal(buf, "-9223372036854775808 12 %");
    fmt_format(buf, sizeof buf, "%.*s", 2, "xyz");
    assert_string_equal(buf, "xy");
    fmt_format(buf, sizeof buf, "[%*s][%*u][%-*s]%s", 4, "", 5, 42u, -3, "a", "end");
    assert_string_equal(buf, "[    ][   42][a  ]end");
}

static void test_format_truncates(void **state)
{
    (void)state;
    char buf[8];
    memset(buf, 'X', sizeof buf);
    size_t n = fmt_format(buf, 5, "%s", "abcdefgh");
    assert_int_equal(n, 8);          /* the full length, like snprintf */
    assert_string_equal(buf, "abcd");
    assert_int_equal(buf[5], 'X');   /* nothing written past size */
    assert_int_equal(fmt_format(NULL, 0, "%u", 12345u), 5);
}

static void test_sink_long_output(void **state)
{
    (void)state;
    /* Longer than the formatter's chunk: arrives whole and in order. */
    char name[1000];
    for (size_t i = 0; i < sizeof name - 1; i++)
        name[i] = (char)('a' + i % 26);
    name[sizeof name - 1] = '\0';
    struct mem_sink m;
    mem_sink_init(&m);
    sink_printf(&m.sink, "<%s|%u>", name, 7u);
    assert_int_equal(m.len, sizeof name - 1 + 4);
    assert_int_equal(m.buf[0], '<');
    assert_memory_equal(m.buf + 1, name, sizeof name - 1);
    assert_string_equal(m.buf + sizeof name, "|7>");
    mem_sink_free(&m);

    char small[6];
    struct buffer_sink b;
    buffer_sink_init(&b, small, sizeof small);
    sink_puts(&b.sink, "0123456789");
    assert_string_equal(small, "01234");
    assert_int_equal(b.overflow, 5);
}

/* A sink that records how its writes split the output. */
struct counting_sink {
    struct sink sink;
    unsigned writes;
    size_t first_len;
};

static void counting_write(void *ctx, const char *s, size_t n)
{
    struct counting_sink *c = ctx;
    (void)s;
    if (!c->writes++)
        c->first_len = n;
}

static void test_sink_line_in_one_write(void **state)
{
    (void)state;
    /* The hypervisor's channel locks each write: a line must be one write, however many
     * conversions it has, up to FMT_SINK_ONE_WRITE characters. */
    char pad[FMT_SINK_ONE_WRITE];
    memset(pad, 'p', sizeof pad);
    for (size_t len = 1; len <= FMT_SINK_ONE_WRITE; len++) {
        struct counting_sink c = {{counting_write, &c}, 0, 0};
        /* "hv: cpu N: " (11 characters with one digit) then padding to len. */
        size_t fixed = 11;
        if (len < fixed + 1)
            continue;
        sink_printf(&c.sink, "hv: cpu %u: %.*s\n", 7u, (int)(len - fixed - 1), pad);
        assert_int_equal(c.writes, 1);
        assert_int_equal(c.first_len, len);
    }
    struct counting_sink c = {{counting_write, &c}, 0, 0};
    sink_printf(&c.sink, "%.*s", FMT_SINK_ONE_WRITE, pad);
    sink_printf(&c.sink, "%.*sx", FMT_SINK_ONE_WRITE, pad);
    assert_int_equal(c.writes, 3); /* one, then two pieces */
}

static void test_json_document(void **state)
{
    (void)state;
    struct mem_sink m;
    mem_sink_init(&m);
    struct json_writer w;
    json_init(&w, &m.sink);
    json_begin_object(&w);
    json_kv_uint(&w, "max", UINT64_MAX);
    json_kv_bool(&w, "t", true);
    json_key(&w, "neg");
    json_int(&w, -5);
    json_key(&w, "list");
    json_begin_array(&w);
    json_uint(&w, 1);
    json_begin_array(&w);
    json_end_array(&w);
    json_begin_object(&w);
    json_end_object(&w);
    json_end_array(&w);
    json_kv_str(&w, "s", "q\"b\\c\n\x01");
    json_kv_strn(&w, "hi", "\xff\x80", 2);
    json_end_object(&w);
    assert_true(json_done(&w));
    assert_string_equal(m.buf, "{\"max\":18446744073709551615,\"t\":true,\"neg\":-5,\"list\":[1,[],{}],"
                               "\"s\":\"q\\\"b\\\\c\\u000a\\u0001\",\"hi\":\"\\u00ff\\u0080\"}");
    mem_sink_free(&m);
}

static void test_json_misuse(void **state)
{
    (void)state;
    struct mem_sink m;
    mem_sink_init(&m);
    struct json_writer w;
    json_init(&w, &m.sink);
    assert_false(json_done(&w)); /* empty */
    json_begin_object(&w);
    assert_false(json_done(&w)); /* open */
    json_key(&w, "k");
    json_end_object(&w);         /* key without value */
    assert_false(json_done(&w));

    json_init(&w, &m.sink);
    json_end_array(&w);          /* end without begin */
    assert_false(json_done(&w));

    json_init(&w, &m.sink);
    for (int i = 0; i < JSON_MAX_DEPTH + 2; i++)
        json_begin_array(&w);
    assert_true(w.misuse);
    mem_sink_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_subset),
        cmocka_unit_test(test_format_truncates),
        cmocka_unit_test(test_sink_long_output),
        cmocka_unit_test(test_sink_line_in_one_write),
        cmocka_unit_test(test_json_document),
        cmocka_unit_test(test_json_misuse),
    };
    return cmocka_run_group_tests_name("fmt_json", tests, NULL, NULL);
}
