/* The fault-injection scenario format (boot/scenario/scenario.c, docs/scenarios.md). */
#include <string.h>

#include "scenario/scenario.h"
#include "test_util.h"

static struct scenario s;

static bool parse(const char *text, char *error)
{
    return scenario_parse(text, strlen(text), &s, error, 160);
}

static void test_a_whole_scenario(void **state)
{
    (void)state;
    char error[160] = "";
    const char *text = "# a comment\n"
                       "scenario stale-translation   # names it\n"
                       "machine aw-bits=48 cpus=2 memory=1024 edus=2 dma_mask=0xffffffffff arch=x86_64\n"
                       "description unmap, then DMA to where it was\n"
                       "\n"
                       "domain d translate-buddy width=39\n"
                       "device e edu1\n"
                       "buffer b pages=4 fill=0x5a\n"
                       "attach d e\n"
                       "map d b iova=alloc perm=rw as=m\n"
                       "dma e write at=m+0x100 len=256 expect=ok\n"
                       "unmap d iova=m pages=4\n"
                       "dma e write at=m len=16 expect=fault reason=5 address=0x0\n"
                       "dma e read at=buffer:b+0x800 len=16 expect=fault\n"
                       "dma e read at=region len=16 expect=fault\n"
                       "reserve t d pages=2 status=success\n"
                       "map-reserved t b offset=0x1000 perm=r pages=1\n"
                       "inject pool-fail at=3\n"
                       "hypercall forged-handle status=invalid-parameter-1\n"
                       "expect-reports count=2 types=translation,address-size lost=0\n"
                       "device f edu0\n"
                       "burst write e f at=m len=64 expect=fault reason=5\n"
                       "callback e on\n"
                       "expect-callbacks count=1 available=translate,passthrough\n"
                       "buffer big pages=512 align=0x200000\n"
                       "expect-tables pages=3\n"
                       "parallel-map d big iova=0x40000000 rounds=50\n";
    assert_true(parse(text, error));
    assert_string_equal(s.name, "stale-translation");
    assert_string_equal(s.description, "unmap, then DMA to where it was");
    assert_int_equal(s.machine.aw_bits, 48);
    assert_int_equal(s.machine.cpus, 2);
    assert_int_equal(s.machine.memory_mib, 1024);
    assert_int_equal(s.machine.edus, 2);
    assert_int_equal(s.machine.dma_mask, 0xffffffffffull);
    assert_int_equal(s.machine.arch, SCENARIO_ARCH_X86_64);
    assert_int_equal(s.steps, 22);
    const struct scenario_step *burst = &s.step[16];
    assert_int_equal(burst->kind, STEP_BURST);
    assert_int_equal(burst->args, 3);
    assert_string_equal(burst->arg[0], "write");
    assert_string_equal(burst->arg[2], "f");
    assert_int_equal(s.step[21].kind, STEP_PARALLEL_MAP);
    assert_int_equal(scenario_number(&s.step[21], "rounds", 0), 50);
    assert_int_equal(scenario_number(&s.step[19], "align", 0), 0x200000);
    const struct scenario_step *map = &s.step[4];
    assert_int_equal(map->kind, STEP_MAP);
    assert_int_equal(map->line, 10);
    assert_string_equal(map->arg[0], "d");
    assert_string_equal(map->arg[1], "b");
    assert_string_equal(scenario_option(map, "iova"), "alloc");
    assert_null(scenario_option(map, "status"));
    const struct scenario_step *dma = &s.step[7];
    assert_int_equal(dma->kind, STEP_DMA);
    assert_int_equal(scenario_number(dma, "reason", 0), 5);
    assert_int_equal(scenario_number(dma, "len", 0), 16);
    assert_int_equal(scenario_number(dma, "missing", 77), 77);
    assert_string_equal(scenario_verb(STEP_EXPECT_REPORTS), "expect-reports");
    int types[2] = {-1, -1};
    unsigned count = 0;
    assert_true(scenario_fault_types("translation,address-size,translation", types, 2, &count));
    assert_int_equal(count, 3);
    assert_int_equal(types[0], 6);
    assert_int_equal(types[1], 1);
    assert_false(scenario_fault_types("translatio", types, 2, &count));
    assert_false(scenario_fault_types("translation,", types, 2, &count));
    struct scenario_target at;
    assert_true(scenario_parse_target("buffer:b+0x800", &at));
    assert_int_equal(at.kind, TARGET_BUFFER);
    assert_string_equal(at.name, "b");
    assert_int_equal(at.value, 0x800);
    assert_true(scenario_parse_target("m", &at));
    assert_int_equal(at.kind, TARGET_MAPPING);
    assert_int_equal(at.value, 0);
    assert_true(scenario_parse_target("0x8000000000", &at));
    assert_int_equal(at.kind, TARGET_ADDRESS);
    assert_int_equal(at.value, 0x8000000000ull);
    assert_true(scenario_parse_target("region", &at));
    assert_int_equal(at.kind, TARGET_REGION);
    assert_false(scenario_parse_target("m+zz", &at));
    assert_string_equal(scenario_fault_type_name(6), "translation");
    assert_string_equal(scenario_fault_type_name(7), "?");
    uint32_t mask = 99;
    assert_true(scenario_available_types("translate,passthrough", &mask));
    assert_int_equal(mask, 3);
    assert_true(scenario_available_types("none", &mask));
    assert_int_equal(mask, 0);
    assert_false(scenario_available_types("none,translate", &mask));
}

static void test_errors_name_the_line(void **state)
{
    (void)state;
    static const struct {
        const char *text, *error;
    } bad[] = {
        {"", "1: a scenario needs"},
        {"domain d translate\n", "1: the file starts with \"scenario NAME\""},
        {"scenario a\nscenario b\n", "2: one line \"scenario NAME\", first"},
        {"scenario a\nmachine aw-bits=40\n", "2: machine: aw-bits=39|48"},
        {"scenario a\nmachine arch=riscv\n", "2: machine takes aw-bits=, cpus=, memory=, edus= and dma_mask= with numbers, and arch=any|x86_64|arm64"},
        {"scenario a\nmachine arch=ARM64\n", "2: machine takes"},
        {"scenario a\nfly away\n", "2: unknown step"},
        {"scenario a\ndomain d purple\n", "2: the domain type is"},
        {"scenario a\ndomain d translate\ndomain d passthrough\n", "3: this name is taken already"},
        {"scenario a\ndevice e edu1\n", "2: the device is edu0"},
        {"scenario a\nattach d e\n", "2: not a domain declared before"},
        {"scenario a\ndomain d translate\nbuffer b\n", "3: a required option is missing"},
        {"scenario a\ndomain d translate\nbuffer b pages=x\n", "3: the value is a number"},
        {"scenario a\ndomain d translate\nbuffer b pages=1 colour=red\n", "3: an option this step does not take"},
        {"scenario a\ndevice e edu0\ndma e write at=nowhere len=4 expect=ok\n", "3: at is an IOVA"},
        {"scenario a\ndevice e edu0\ndma e write at=buffer:e len=4 expect=ok\n", "3: at=buffer:NAME names a buffer"},
        {"scenario a\nbuffer b pages=1\ndevice e edu0\ndma e write at=buffer:b+x len=4 expect=ok\n",
         "4: at=NAME+OFFSET takes a number"},
        {"scenario a\ndevice e edu0\ndma e write at=0x1000 len=4096 expect=ok\n", "3: len is 1 to 4095"},
        {"scenario a\ndevice e edu0\ndma e fly at=0x1000 len=4 expect=ok\n", "3: a DMA is a read or a write"},
        {"scenario a\ndevice e edu0\ndma e read at=0x1000 len=4 expect=maybe\n", "3: expect is ok or fault"},
        {"scenario a\ninject pool-fail\n", "2: inject pool-fail at=K"},
        {"scenario a\nhypercall garbage status=sometimes\n", "2: status is a status name"},
        {"scenario a\nexpect-reports count=1 types=translation,five\n", "2: types is a list"},
        {"scenario a\nexpect-reports count=1 types=translation,\n", "2: types is a list"},
        {"scenario a\nexpect-callbacks count=1 available=translate,bogus\n", "2: available is none or a list"},
        {"scenario a\nbuffer b pages=1 align=0x3000\n", "2: align is a power of two"},
        {"scenario a\ndevice e edu0\nburst e write at=0x1000 len=4 expect=ok\n", "3: not a device declared"},
        {"scenario a\ndevice e edu0\nburst write e e at=0x1000 len=4 expect=ok\n", "3: a burst names each device once"},
        {"scenario a\ndevice e edu0\ncallback e maybe\n", "3: on or off"},
        {"scenario a\ndomain d translate\nbuffer b pages=2\nparallel-map d b iova=0 rounds=5\n",
         "4: parallel-map needs a machine with cpus=2"},
        {"scenario a\nmachine cpus=2\ndomain d translate\nbuffer b pages=2\nparallel-map d b iova=0 rounds=0\n",
         "5: rounds is 1 to 10000"},
        {"scenario a\ndomain d translate extra words here\n", "2: too many names"},
        {"scenario a\nbuffer b pages=1 =x\n", "2: an option this step does not take"},
        {"scenario a\nguard maybe\n", "2: on or off"},
        {"scenario a\ndomain d translate\nunmap d iova=m pages=1\n", "3: iova is a number or a mapping's name"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char error[160] = "";
        assert_false(parse(bad[i].text, error));
        if (strncmp(error, bad[i].error, strlen(bad[i].error)) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s...\"", i, error, bad[i].error);
    }
}

/* Issue 11 item 7: a Min/Max window on map and reserve, unmap at NAME+OFFSET, and a types=
 * list longer than a name may be. */
/* What the runner reads: every option parsed once into the step's typed values, and the
 * keyword into its index. A repeated option is checked, but the first one counts. */
static void test_typed_values(void **state)
{
    (void)state;
    char error[160] = "";
    const char *text = "scenario typed\n"
                       "domain d v1-caller-managed status=access-denied\n"
                       "buffer b pages=3 pages=5 fill=0x5a\n"
                       "map d b iova=alloc perm=w as=m\n"
                       "unmap d iova=m+0x2000 pages=1 status=0xC0000001\n"
                       "device e edu0\n"
                       "dma e write at=buffer:b+16 len=64 expect=fault reason=0x5\n"
                       "expect-reports count=2 types=permission,translation\n"
                       "expect-callbacks count=1 available=translate,passthrough\n"
                       "inject pool-fail at=3\n";
    assert_true(parse(text, error));
    const struct scenario_step *domain = &s.step[0], *buffer = &s.step[1], *map = &s.step[2], *unmap = &s.step[3];
    const struct scenario_step *dma = &s.step[5], *reports = &s.step[6], *callbacks = &s.step[7], *inject = &s.step[8];
    assert_int_equal(domain->word, SCENARIO_V1_CALLER_MANAGED);
    assert_int_equal(domain->v.status, 0xC0000022u);
    assert_true(scenario_given(buffer, KEY_PAGES));
    assert_int_equal(scenario_value(buffer, KEY_PAGES, 0), 3);
    assert_int_equal(scenario_value(buffer, KEY_FILL, 0), 0x5a);
    assert_false(scenario_given(buffer, KEY_ALIGN));
    assert_int_equal(scenario_value(buffer, KEY_ALIGN, 4096), 4096);
    assert_true(map->v.iova_alloc);
    assert_int_equal(map->v.perm, SCENARIO_PERM_WRITE);
    assert_string_equal(map->v.as, "m");
    assert_int_equal(map->v.status, 0);
    assert_int_equal(unmap->v.iova.kind, TARGET_MAPPING);
    assert_string_equal(unmap->v.iova.name, "m");
    assert_int_equal(unmap->v.iova.value, 0x2000);
    assert_int_equal(unmap->v.status, 0xC0000001u);
    assert_int_equal(dma->word, SCENARIO_WRITE);
    assert_int_equal(dma->v.at.kind, TARGET_BUFFER);
    assert_int_equal(dma->v.at.value, 16);
    assert_true(dma->v.expect_fault);
    assert_int_equal(scenario_value(dma, KEY_REASON, 0), 5);
    assert_int_equal(reports->v.type_count, 2);
    assert_int_equal(reports->v.types[0], 4); /* permission */
    assert_int_equal(reports->v.types[1], 6); /* translation */
    assert_int_equal(callbacks->v.available, 1u << 0 | 1u << 1);
    assert_int_equal(inject->word, SCENARIO_POOL_FAIL);
    assert_int_equal(scenario_value(inject, KEY_AT, 0), 3);
}

static void test_windows_offsets_and_long_lists(void **state)
{
    (void)state;
    char error[160] = "";
    const char *text = "scenario gaps\n"
                       "domain d translate-buddy\n"
                       "buffer b pages=4\n"
                       "map d b iova=alloc perm=rw pages=2 min=0x100000 max=0x1fffff as=m\n"
                       "reserve t d pages=2 min=0x200000 max=0x2fffff\n"
                       "unmap d iova=m+0x1000 pages=1\n"
                       "unmap d iova=m pages=1\n"
                       "expect-reports count=5 "
                       "types=translation,translation,address-size,translation,permission,external\n";
    assert_true(parse(text, error));
    assert_int_equal(s.steps, 7);
    assert_int_equal(scenario_number(&s.step[2], "min", 0), 0x100000);
    assert_int_equal(scenario_number(&s.step[2], "max", 0), 0x1fffff);
    assert_int_equal(scenario_number(&s.step[3], "min", 0), 0x200000);
    assert_int_equal(scenario_number(&s.step[3], "max", 0), 0x2fffff);
    struct scenario_target at;
    assert_true(scenario_parse_target(scenario_option(&s.step[4], "iova"), &at));
    assert_int_equal(at.kind, TARGET_MAPPING);
    assert_string_equal(at.name, "m");
    assert_int_equal(at.value, 0x1000);
    const char *types = scenario_option(&s.step[6], "types");
    assert_string_equal(types, "translation,translation,address-size,translation,permission,external");
    int t[8];
    unsigned count = 0;
    assert_true(scenario_fault_types(types, t, 8, &count));
    assert_int_equal(count, 6);
    assert_int_equal(t[5], 3);
    /* parallel-map: one round is enough (the driver makes the CPUs overlap whatever N is). */
    assert_true(parse("scenario p\nmachine cpus=2\ndomain d translate\nbuffer b pages=2\n"
                      "parallel-map d b iova=0 rounds=1\n",
                      error));
    assert_int_equal(scenario_number(&s.step[2], "rounds", 0), 1);
    assert_int_equal(s.machine.arch, SCENARIO_ARCH_ANY); /* a machine line without arch= runs on both */

    static const struct {
        const char *text, *error;
    } bad[] = {
        {"scenario a\ndomain d translate-buddy\nbuffer b pages=1\nmap d b iova=alloc perm=rw min=0x2000 max=0x1000\n",
         "4: min is at most max"},
        {"scenario a\ndomain d translate-buddy\nreserve t d pages=1 min=0x9000 max=0x1000\n", "3: min is at most max"},
        {"scenario a\ndomain d translate-buddy\nreserve t d pages=1 min=low\n", "3: the value is a number"},
        {"scenario a\ndomain d translate\nunmap d iova=m+0x1000 pages=1\n", "3: iova is a number or a mapping's name"},
        {"scenario a\ndomain d translate\nbuffer b pages=1\nmap d b iova=0 perm=rw as=m\nunmap d iova=m+x pages=1\n",
         "5: iova is a number or a mapping's name"},
        {"scenario a\ndomain a-domain-whose-name-is-32-charsX translate\n", "2: a name is too long (31 characters"},
        {"scenario a-scenario-whose-name-is-32-chars\n", "1: a name is too long (31 characters"},
        {"scenario a\ndomain d translate\nbuffer b pages=1\nmap d b iova=0 perm=rw as=a-mapping-whose-name-is-32-chars\n",
         "4: a name is too long (31 characters"},
        {"scenario a\nexpect-reports count=9 types=translation,translation,translation,translation,translation,"
         "translation,translation,translation,translation,translation,translation\n",
         "2: a word is too long (127 characters at most)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char why[160] = "";
        assert_false(parse(bad[i].text, why));
        if (strncmp(why, bad[i].error, strlen(bad[i].error)) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s...\"", i, why, bad[i].error);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_whole_scenario),
        cmocka_unit_test(test_errors_name_the_line),
        cmocka_unit_test(test_windows_offsets_and_long_lists),
        cmocka_unit_test(test_typed_values),
    };
    return cmocka_run_group_tests_name("scenario", tests, NULL, NULL);
}
