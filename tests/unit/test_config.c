/* The loader's configuration file (boot/config.c). */
#include <string.h>

#include "config.h"
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
    assert_true(parse(&c, "payload = selftest", error)); /* no final newline */
    assert_int_equal(c.payload, PAYLOAD_SELFTEST);
}

static void test_errors_change_nothing(void **state)
{
    (void)state;
    static const struct {
        const char *text, *error;
    } bad[] = {
        {"payload shell\n", "line 1: expected key = value"},
        {"\n\npayload =\n", "line 3: the value is empty"},
        {"payload = linux\n", "line 1: payload is selftest, shell, or a path"},
        {"region_mib = 3\n", "line 1: region_mib is 4 to 1024"},
        {"region_mib = 2048\n", "line 1: region_mib is 4 to 1024"},
        {"region_mib = 16k\n", "line 1: region_mib is a whole number"},
        {"region_mib = 99999999999999999999\n", "line 1: region_mib is a whole number"},
        {"payload = selftest\ncolour = blue\n", "line 2: unknown key"},
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
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_values),
        cmocka_unit_test(test_errors_change_nothing),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
