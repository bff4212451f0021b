/* The loader's configuration file (boot/loader/config.c). */
#include <string.h>

#include "loader/config.h"
#include "test_util.h"

static bool parse(struct loader_config *c, const char *text, char *error)
{
    return config_parse(c, text, strlen(text), error, 96);
}

static void test_defaults_and_values(void **state)
{
    (void)state;
    struct loader_config c;
    char error[96] = "";
    config_defaults(&c);
    assert_int_equal(c.payload, PAYLOAD_SELFTEST);
    assert_int_equal(c.region_mib, 16);
    assert_true(parse(&c, "", error));
    assert_true(parse(&c, "# nothing\n\n   \r\n", error));
    assert_int_equal(c.region_mib, 16);
    assert_true(parse(&c, "payload = shell\r\nregion_mib=64   # more room\n", error));
    assert_int_equal(c.payload, PAYLOAD_SHELL);
    assert_int_equal(c.region_mib, 64);
    assert_true(parse(&c, "  payload =\t\\EFI\\BOOT\\APP.EFI  \n", error));
    assert_int_equal(c.payload, PAYLOAD_PATH);
    assert_string_equal(c.payload_path, "\\EFI\\BOOT\\APP.EFI");
    assert_true(parse(&c, "payload = faultinject\nfault_injection = on\n", error));
    assert_int_equal(c.payload, PAYLOAD_FAULTINJECT);
    assert_true(c.fault_injection);
    assert_false(parse(&c, "fault_injection = yes\n", error));
    assert_string_equal(error, "line 1: fault_injection is on or off");
    assert_int_equal(c.smmu_input_bits, 48);
    assert_true(parse(&c, "smmu_input_bits = 39\n", error));
    assert_int_equal(c.smmu_input_bits, 39);
    assert_false(parse(&c, "smmu_input_bits = 40\n", error));
    assert_string_equal(error, "line 1: smmu_input_bits is 39 or 48");
    assert_int_equal(c.smmu_input_bits, 39); /* a bad file leaves the configuration as it was */
    assert_true(parse(&c, "payload = selftest", error)); /* no final newline */
    assert_int_equal(c.payload, PAYLOAD_SELFTEST);
    /* the payload's command line: everything after the first '=', trimmed, '=' and '\' kept */
    assert_string_equal(c.payload_options, "");
    assert_true(parse(&c, "payload_options =  initrd=\\EFI\\BOOT\\INITRD.IMG console=ttyS0  quiet \n", error));
    assert_string_equal(c.payload_options, "initrd=\\EFI\\BOOT\\INITRD.IMG console=ttyS0  quiet");
}

static void test_errors_change_nothing(void **state)
{
    (void)state;
    static const struct {
        const char *text, *error;
    } bad[] = {
        {"payload shell\n", "line 1: expected key = value"},
        {"\n\npayload =\n", "line 3: the value is empty"},
        {"payload = linux\n", "line 1: payload is selftest, shell, faultinject, hostile, or a path"},
        {"region_mib = 3\n", "line 1: region_mib is 4 to 1024"},
        {"region_mib = 2048\n", "line 1: region_mib is 4 to 1024"},
        {"region_mib = 16k\n", "line 1: region_mib is a whole number"},
        {"region_mib = 99999999999999999999\n", "line 1: region_mib is a whole number"},
        {"payload = selftest\ncolour = blue\n", "line 2: unknown key"},
        {"payload_options = a\tb\n", "line 1: payload_options is printable text"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct loader_config c;
        config_defaults(&c);
        c.region_mib = 32;
        char error[96] = "";
        assert_false(parse(&c, bad[i].text, error));
        if (strncmp(error, bad[i].error, strlen(bad[i].error)) != 0)
            fail_msg("%s: got \"%s\", want \"%s...\"", bad[i].text, error, bad[i].error);
        assert_int_equal(c.region_mib, 32);
        assert_int_equal(c.payload, PAYLOAD_SELFTEST);
    }
    /* a path that does not fit */
    char longer[200] = "payload = \\";
    memset(longer + 11, 'A', 150);
    struct loader_config c;
    config_defaults(&c);
    char error[96];
    assert_false(parse(&c, longer, error));
    /* options that do not fit: refused, the old ones kept */
    char options[1200] = "payload_options = ";
    memset(options + 18, 'o', 1100);
    assert_true(parse(&c, "payload_options = keep", error));
    assert_false(parse(&c, options, error));
    assert_string_equal(error, "line 1: payload_options has at most 1023 characters");
    assert_string_equal(c.payload_options, "keep");
}

static size_t from(const char *line, char *text, size_t cap)
{
    uint16_t wide[128];
    size_t n = strlen(line);
    for (size_t i = 0; i < n; i++)
        wide[i] = (uint16_t)(unsigned char)line[i];
    wide[n] = 0;
    return config_from_command_line(wide, n + 1, text, cap);
}

static void test_command_line(void **state)
{
    (void)state;
    char text[128];
    size_t n = from("BOOTX64.EFI  payload=shell\tregion_mib=32 -v", text, sizeof text);
    assert_int_equal(n, strlen("payload=shell\nregion_mib=32\n"));
    assert_memory_equal(text, "payload=shell\nregion_mib=32\n", n);
    struct loader_config c;
    config_defaults(&c);
    char error[96];
    assert_true(config_parse(&c, text, n, error, sizeof error));
    assert_int_equal(c.payload, PAYLOAD_SHELL);
    assert_int_equal(c.region_mib, 32);
    assert_int_equal(from("BOOTX64.EFI", text, sizeof text), 0);
    assert_int_equal(from("payload=shell", text, 10), 0); /* does not fit */
    uint16_t binary[] = {0x0004, 0x1234, 'a', '=', 'b', 0};
    assert_int_equal(config_from_command_line(binary, 6, text, sizeof text), 0);
    uint16_t wide_char[] = {'p', '=', 0x263A, 0};
    assert_int_equal(config_from_command_line(wide_char, 4, text, sizeof text), 0);
    assert_int_equal(config_from_command_line(binary, 0, text, sizeof text), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_values),
        cmocka_unit_test(test_errors_change_nothing),
        cmocka_unit_test(test_command_line),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
