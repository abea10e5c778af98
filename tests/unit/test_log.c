/* Log records: the message/field split, quoting, and both formats. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "log.h"

/* 2026-11-25T22:05:25.123Z */
#define WHEN 1795644325.123

static char rec[4096];

static void fmt(enum config_log_format f, enum config_log_level l, const char *text, const char *err)
{
    log_format_record(rec, sizeof(rec), f, WHEN, l, "supervisor", text, err);
}

static void test_text_record(void **state)
{
    (void)state;
    fmt(CONFIG_LOG_TEXT, CONFIG_LOG_INFO, "child started child=exporter pid=42", NULL);
    assert_string_equal(rec, "time=2026-11-25T22:05:25.123Z level=info component=supervisor "
                             "msg=\"child started\" child=exporter pid=42\n");
}

static void test_text_quotes_values_with_spaces(void **state)
{
    (void)state;
    fmt(CONFIG_LOG_TEXT, CONFIG_LOG_WARN, "cannot start child=renderer path=\"/a b/c\"", "No such file or directory");
    assert_string_equal(rec, "time=2026-11-25T22:05:25.123Z level=warn component=supervisor "
                             "msg=\"cannot start\" child=renderer path=\"/a b/c\" "
                             "error=\"No such file or directory\"\n");
}

static void test_json_record(void **state)
{
    (void)state;
    fmt(CONFIG_LOG_JSON, CONFIG_LOG_ERROR, "child over its memory limit child=browser-1 pss_bytes=1073741825 ratio=1.5",
        NULL);
    assert_string_equal(rec, "{\"time\":\"2026-11-25T22:05:25.123Z\",\"level\":\"error\","
                             "\"component\":\"supervisor\",\"message\":\"child over its memory limit\","
                             "\"child\":\"browser-1\",\"pss_bytes\":1073741825,\"ratio\":1.5}\n");
}

static void test_json_escapes_and_strings(void **state)
{
    (void)state;
    fmt(CONFIG_LOG_JSON, CONFIG_LOG_DEBUG, "odd path=\"a\\b\" code=007 n=-3 inf=inf", "bad \"thing\"");
    assert_string_equal(rec, "{\"time\":\"2026-11-25T22:05:25.123Z\",\"level\":\"debug\","
                             "\"component\":\"supervisor\",\"message\":\"odd\",\"path\":\"a\\\\b\","
                             "\"code\":\"007\",\"n\":-3,\"inf\":\"inf\",\"error\":\"bad \\\"thing\\\"\"}\n");
}

static void test_message_only_and_stray_words(void **state)
{
    (void)state;
    fmt(CONFIG_LOG_TEXT, CONFIG_LOG_INFO, "all children stopped, exiting", NULL);
    assert_string_equal(rec, "time=2026-11-25T22:05:25.123Z level=info component=supervisor "
                             "msg=\"all children stopped, exiting\"\n");
    fmt(CONFIG_LOG_TEXT, CONFIG_LOG_INFO, "x a=1 loose", NULL);
    assert_string_equal(rec, "time=2026-11-25T22:05:25.123Z level=info component=supervisor "
                             "msg=\"x\" a=1 extra=\"loose\"\n");
}

static void test_control_characters_escaped(void **state)
{
    (void)state;
    fmt(CONFIG_LOG_TEXT, CONFIG_LOG_INFO, "m v=\"a\tb\x01\"", NULL);
    assert_non_null(strstr(rec, "v=\"a\\tb\\x01\""));
    fmt(CONFIG_LOG_JSON, CONFIG_LOG_INFO, "m v=\"a\tb\x01\"", NULL);
    assert_non_null(strstr(rec, "\"v\":\"a\\tb\\u0001\""));
}

static void test_truncation_keeps_newline(void **state)
{
    (void)state;
    char small[64];
    size_t n = log_format_record(small, sizeof(small), CONFIG_LOG_TEXT, WHEN, CONFIG_LOG_INFO, "supervisor",
                                 "a very long message that will not fit k=v", NULL);
    assert_true(n < sizeof(small));
    assert_int_equal(strlen(small), n);
    assert_int_equal(small[n - 1], '\n');
}

static void test_levels(void **state)
{
    (void)state;
    log_init("test", CONFIG_LOG_WARN, CONFIG_LOG_TEXT);
    assert_false(log_enabled(CONFIG_LOG_INFO));
    assert_true(log_enabled(CONFIG_LOG_WARN));
    assert_true(log_enabled(CONFIG_LOG_ERROR));
    log_set(CONFIG_LOG_DEBUG, CONFIG_LOG_JSON);
    assert_true(log_enabled(CONFIG_LOG_DEBUG));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_record),
        cmocka_unit_test(test_text_quotes_values_with_spaces),
        cmocka_unit_test(test_json_record),
        cmocka_unit_test(test_json_escapes_and_strings),
        cmocka_unit_test(test_message_only_and_stray_words),
        cmocka_unit_test(test_control_characters_escaped),
        cmocka_unit_test(test_truncation_keeps_newline),
        cmocka_unit_test(test_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
