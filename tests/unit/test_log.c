/* Log records: the message/field split, quoting, and both formats. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

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

static json_t *parse_json(const char *text, size_t len)
{
    json_error_t err;
    json_t *v = json_loadb(text, len, JSON_ALLOW_NUL, &err);
    if (!v)
        print_error("not JSON (%s at %d): %.*s\n", err.text, err.position, (int)len, text);
    return v;
}

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void test_truncated_json_stays_json(void **state)
{
    (void)state;
    char text[3000];
    memset(text, 'x', sizeof(text));
    memcpy(text, "big v=\"", 7);
    for (size_t i = 7; i < sizeof(text) - 2; i += 3)
        text[i] = '\x01'; /* six bytes each in JSON */
    text[sizeof(text) - 2] = '"';
    text[sizeof(text) - 1] = '\0';
    for (size_t size = LOG_RECORD_MIN; size < 2500; size += 37) {
        char *out = malloc(size);
        size_t n = log_format_record(out, size, CONFIG_LOG_JSON, WHEN, CONFIG_LOG_INFO, "supervisor", text, "err");
        assert_true(n < size);
        assert_int_equal(out[n - 1], '\n');
        json_t *o = parse_json(out, n - 1);
        assert_non_null(o);
        assert_true(json_is_true(json_object_get(o, "truncated")));
        assert_string_equal(jstr(o, "level"), "info");
        json_decref(o);
        n = log_format_record(out, size, CONFIG_LOG_TEXT, WHEN, CONFIG_LOG_INFO, "supervisor", text, "err");
        assert_true(n < size);
        assert_non_null(strstr(out, " truncated=true\n"));
        /* a quoted value cut short is still closed */
        const char *v = strstr(out, " v=\"");
        if (v)
            assert_ptr_equal(strstr(out, "\" truncated=true\n"), out + n - 17);
        free(out);
    }
    /* what fits is not marked */
    size_t n = log_format_record(rec, sizeof(rec), CONFIG_LOG_JSON, WHEN, CONFIG_LOG_INFO, "supervisor", "small", NULL);
    assert_null(strstr(rec, "truncated"));
    assert_int_equal(strlen(rec), n);
}

static void test_utf8_kept_and_bad_bytes_escaped(void **state)
{
    (void)state;
    fmt(CONFIG_LOG_JSON, CONFIG_LOG_INFO, "m v=\"caf\xc3\xa9 \xff\xc3\" w=\xe2\x82", NULL);
    assert_non_null(strstr(rec, "\"v\":\"caf\xc3\xa9 \\ufffd\\ufffd\""));
    assert_non_null(strstr(rec, "\"w\":\"\\ufffd\\ufffd\""));
    json_t *o = parse_json(rec, strlen(rec) - 1);
    assert_non_null(o);
    json_decref(o);
    fmt(CONFIG_LOG_TEXT, CONFIG_LOG_INFO, "m v=caf\xc3\xa9 w=\xe2\x82 x=\xed\xa0\x80", NULL);
    assert_non_null(strstr(rec, " v=caf\xc3\xa9 w=\"\\xe2\\x82\" x=\"\\xed\\xa0\\x80\"\n"));
}

static void test_numbers_only_when_json_numbers(void **state)
{
    (void)state;
    fmt(CONFIG_LOG_JSON, CONFIG_LOG_INFO, "m a=1. b=.5 c=-01 d=1e999 e=-0.5e-3 f=0 g=1e g2=- h=12345678901234567890123456 "
        "i=9223372036854775807 j=9223372036854775808 k=1.5e300", NULL);
    assert_non_null(strstr(rec, "\"a\":\"1.\",\"b\":\".5\",\"c\":\"-01\",\"d\":\"1e999\",\"e\":-0.5e-3,\"f\":0,"
                                "\"g\":\"1e\",\"g2\":\"-\",\"h\":\"12345678901234567890123456\","
                                "\"i\":9223372036854775807,\"j\":\"9223372036854775808\",\"k\":1.5e300"));
    json_t *o = parse_json(rec, strlen(rec) - 1);
    assert_non_null(o);
    json_decref(o);
}

static void test_no_key_comes_twice(void **state)
{
    (void)state;
    fmt(CONFIG_LOG_JSON, CONFIG_LOG_INFO, "m time=1 level=error component=x message=y msg=z truncated=1 child=c", NULL);
    assert_string_equal(rec, "{\"time\":\"2026-11-25T22:05:25.123Z\",\"level\":\"info\",\"component\":\"supervisor\","
                             "\"message\":\"m\",\"_time\":1,\"_level\":\"error\",\"_component\":\"x\","
                             "\"_message\":\"y\",\"_msg\":\"z\",\"_truncated\":1,\"child\":\"c\"}\n");
    fmt(CONFIG_LOG_TEXT, CONFIG_LOG_INFO, "m level=error", NULL);
    assert_non_null(strstr(rec, " msg=\"m\" _level=error\n"));
}

/* ---- relaying a child's lines ------------------------------------------------- */

static char out[LOG_RELAY_MAX];

static void test_tag_json_record(void **state)
{
    (void)state;
    fmt(CONFIG_LOG_JSON, CONFIG_LOG_WARN, "render failed browser=1 status=500 error=\"a \\\"b\\\" \tc\"", NULL);
    enum config_log_level level = CONFIG_LOG_DEBUG;
    size_t n = log_tag_record(out, sizeof(out), CONFIG_LOG_JSON, rec, strlen(rec) - 1, "renderer", &level);
    assert_int_equal(n, strlen(out));
    assert_int_equal(level, CONFIG_LOG_WARN);
    assert_string_equal(out, "{\"time\":\"2026-11-25T22:05:25.123Z\",\"level\":\"warn\",\"component\":\"supervisor\","
                             "\"child\":\"renderer\",\"message\":\"render failed\",\"browser\":1,\"status\":500,"
                             "\"error\":\"a \\\\\\\"b\\\\\\\" \\tc\"}\n");
    json_t *o = parse_json(out, n - 1);
    assert_string_equal(jstr(o, "child"), "renderer");
    /* the caller's escapes are kept as written (test_json_escapes_and_strings) */
    assert_string_equal(jstr(o, "error"), "a \\\"b\\\" \tc");
    json_decref(o);
}

static void test_tag_text_record(void **state)
{
    (void)state;
    fmt(CONFIG_LOG_TEXT, CONFIG_LOG_ERROR, "cannot x path=\"/a b\" n=3 odd=\"\x01\\\\\"", "Broken pipe");
    enum config_log_level level = CONFIG_LOG_DEBUG;
    size_t n = log_tag_record(out, sizeof(out), CONFIG_LOG_TEXT, rec, strlen(rec) - 1, "exporter", &level);
    assert_int_equal(n, strlen(out));
    assert_int_equal(level, CONFIG_LOG_ERROR);
    assert_string_equal(out, "time=2026-11-25T22:05:25.123Z level=error component=supervisor child=exporter "
                             "msg=\"cannot x\" path=\"/a b\" n=3 odd=\"\\x01\\\\\\\\\" error=\"Broken pipe\"\n");
}

/* Not passed on: each of these is nested whole, and the result is one record. */
static void assert_nested(enum config_log_format f, const char *line, size_t len)
{
    enum config_log_level level;
    assert_int_equal(log_tag_record(out, sizeof(out), f, line, len, "renderer", &level), 0);
    size_t n = log_format_output(out, sizeof(out), f, WHEN, CONFIG_LOG_INFO, "supervisor", "renderer", "stderr", line,
                                 len);
    assert_int_equal(out[n - 1], '\n');
    assert_null(memchr(out, '\n', n - 1));
    if (f == CONFIG_LOG_JSON) {
        json_t *o = parse_json(out, n - 1);
        assert_non_null(o);
        assert_null(json_object_get(o, "truncated"));
        assert_string_equal(jstr(o, "message"), "child output");
        assert_string_equal(jstr(o, "child"), "renderer");
        assert_string_equal(jstr(o, "stream"), "stderr");
        int ascii = 1;
        for (size_t i = 0; i < len; i++)
            ascii &= (unsigned char)line[i] < 0x80;
        if (ascii) {
            json_t *v = json_object_get(o, "line");
            assert_int_equal(json_string_length(v), len);
            assert_memory_equal(json_string_value(v), line, len);
        }
        json_decref(o);
    } else {
        assert_non_null(strstr(out, " msg=\"child output\" child=renderer stream=stderr line=\""));
        assert_memory_equal(out + n - 2, "\"\n", 2);
        assert_true(n < 16 || memcmp(out + n - 16, " truncated=true\n", 16) != 0);
    }
}

static void test_malformed_records_are_nested(void **state)
{
    (void)state;
    static const char *const json_lines[] = {
        "",
        "{",
        "{}",
        "plain chromium output",
        "{\"time\":\"t\",\"level\":\"info\",\"component\":\"renderer\",\"message\":\"m\"",    /* cut */
        "{\"time\":\"t\",\"level\":\"info\",\"component\":\"renderer\",\"message\":\"m\"}x",  /* trailing */
        "{\"time\":\"t\",\"level\":\"info\",\"component\":\"renderer\",\"message\":\"m\"} ",
        "{\"time\": \"t\",\"level\":\"info\",\"component\":\"renderer\",\"message\":\"m\"}",  /* spaced */
        "{\"level\":\"info\",\"time\":\"t\",\"component\":\"renderer\",\"message\":\"m\"}",   /* order */
        "{\"time\":\"t\",\"level\":\"loud\",\"component\":\"renderer\",\"message\":\"m\"}",   /* level */
        "{\"time\":\"t\",\"level\":\"info\",\"component\":\"renderer\",\"message\":\"\\q\"}", /* escape */
        "{\"time\":\"t\",\"level\":\"info\",\"component\":\"renderer\",\"message\":\"\\u00\"}",
        "{\"time\":\"t\",\"level\":\"info\",\"component\":\"renderer\",\"message\":\"\\ud800\"}",
        "{\"time\":\"t\",\"level\":\"info\",\"component\":\"renderer\",\"message\":\"a\tb\"}", /* raw tab */
        "{\"time\":\"t\",\"level\":\"info\",\"component\":\"renderer\",\"message\":\"\xc3(\"}", /* not UTF-8 */
        "{\"time\":\"t\",\"level\":\"info\",\"component\":\"renderer\",\"message\":\"m\",\"child\":\"x\"}",
        "{\"time\":\"t\",\"level\":\"info\",\"component\":\"renderer\",\"message\":\"m\",\"level\":\"error\"}",
        "{\"time\":\"t\",\"level\":\"info\",\"component\":\"renderer\",\"message\":\"m\",\"message\":\"n\"}",
        "{\"time\":\"t\",\"level\":\"info\",\"component\":\"renderer\",\"message\":\"m\",\"n\":01}",
        "{\"time\":\"t\",\"level\":\"info\",\"component\":\"renderer\",\"message\":\"m\",\"n\":1e999}",
        "{\"time\":\"t\",\"level\":\"info\",\"component\":\"renderer\",\"message\":\"m\",\"n\":{}}",
        "{\"time\":\"t\",\"level\":\"info\",\"component\":\"renderer\",\"message\":\"m\",\"n\":null}",
        "{\"time\":\"t\",\"level\":\"info\",\"component\":\"renderer\",\"message\":\"m\",\"a b\":1}",
        "{\"time\":\"t\",\"level\":\"info\",\"component\":\"renderer\",\"message\":\"m\",}",
        "{\"time\":\"t\",\"level\":\"info\",\"component\":\"renderer\",\"message\":\"m\",\"n\":truex}",
        "{\"time\":\"a \\\"quoted\\\" \x01 line\x7f\",\"level\":\"info\",\"component\":\"r\"",
        "time=t level=info component=renderer msg=m", /* text, in json */
    };
    for (size_t i = 0; i < sizeof(json_lines) / sizeof(json_lines[0]); i++)
        assert_nested(CONFIG_LOG_JSON, json_lines[i], strlen(json_lines[i]));
    /* a NUL inside */
    assert_nested(CONFIG_LOG_JSON, "{\"time\":\"t\",\"level\":\"info\"\0}", 29);

    static const char *const text_lines[] = {
        "",
        "time=t",
        "level=info time=t component=r msg=m",
        "time=t level=info component=r",
        "time=t level=info component=r msg=m ",
        "time=t level=info component=r msg=m  n=1",
        "time=t level=loud component=r msg=m",
        "time=t level=\"info\" component=r msg=m",
        "time=t level=info component=r msg=\"m",
        "time=t level=info component=r msg=\"m\\q\"",
        "time=t level=info component=r msg=\"a\tb\"",
        "time=t level=info component=r msg=m child=x",
        "time=t level=info component=r msg=m level=error",
        "time=t level=info component=r msg=m n=",
        "time=t level=info component=r msg=m n=a=b",
        "time=t level=info component=r msg=m n=\xc3(",
        "time=t level=info component=r msg=m loose",
        "{\"time\":\"t\",\"level\":\"info\",\"component\":\"renderer\",\"message\":\"m\"}", /* json, in text */
        "[1126/041500.123:ERROR:gpu_init.cc(523)] \"quoted\" \x01",
    };
    for (size_t i = 0; i < sizeof(text_lines) / sizeof(text_lines[0]); i++)
        assert_nested(CONFIG_LOG_TEXT, text_lines[i], strlen(text_lines[i]));

    /* and well-formed ones of both kinds pass, true included */
    static const char *const good[] = {
        "{\"time\":\"t\",\"level\":\"debug\",\"component\":\"r\",\"message\":\"\"}",
        "{\"time\":\"t\",\"level\":\"info\",\"component\":\"r\",\"message\":\"\\u00e9\\/\",\"truncated\":true}",
        "time=t level=info component=r msg=m truncated=true",
    };
    enum config_log_level level;
    assert_int_not_equal(log_tag_record(out, sizeof(out), CONFIG_LOG_JSON, good[0], strlen(good[0]), "c", &level), 0);
    assert_int_equal(level, CONFIG_LOG_DEBUG);
    assert_int_not_equal(log_tag_record(out, sizeof(out), CONFIG_LOG_JSON, good[1], strlen(good[1]), "c", &level), 0);
    assert_int_not_equal(log_tag_record(out, sizeof(out), CONFIG_LOG_TEXT, good[2], strlen(good[2]), "c", &level), 0);
}

static void test_nested_line_quotes_and_controls(void **state)
{
    (void)state;
    const char line[] = "a \"quoted\" line\x01\x1b[0m\\ end";
    size_t n = log_format_output(out, sizeof(out), CONFIG_LOG_TEXT, WHEN, CONFIG_LOG_INFO, "supervisor", "browser-0",
                                 "stdout", line, sizeof(line) - 1);
    assert_int_equal(n, strlen(out));
    assert_string_equal(out, "time=2026-11-25T22:05:25.123Z level=info component=supervisor msg=\"child output\" "
                             "child=browser-0 stream=stdout line=\"a \\\"quoted\\\" line\\x01\\x1b[0m\\\\ end\"\n");
    n = log_format_output(out, sizeof(out), CONFIG_LOG_JSON, WHEN, CONFIG_LOG_INFO, "supervisor", "browser-0",
                          "stdout", line, sizeof(line) - 1);
    assert_string_equal(out, "{\"time\":\"2026-11-25T22:05:25.123Z\",\"level\":\"info\",\"component\":\"supervisor\","
                             "\"message\":\"child output\",\"child\":\"browser-0\",\"stream\":\"stdout\","
                             "\"line\":\"a \\\"quoted\\\" line\\u0001\\u001b[0m\\\\ end\"}\n");
}

static void test_oversized_lines(void **state)
{
    (void)state;
    /* The longest line the supervisor hands over, every byte escaped: whole. */
    char *line = malloc(LOG_LINE_MAX + 100);
    memset(line, '\x01', LOG_LINE_MAX + 100);
    assert_nested(CONFIG_LOG_JSON, line, LOG_LINE_MAX);
    assert_nested(CONFIG_LOG_TEXT, line, LOG_LINE_MAX);
    /* Longer (not from the supervisor): cut, marked, still one object. */
    size_t n = log_format_output(out, sizeof(out), CONFIG_LOG_JSON, WHEN, CONFIG_LOG_INFO, "supervisor", "renderer",
                                 "stderr", line, LOG_LINE_MAX + 100);
    json_t *o = parse_json(out, n - 1);
    assert_non_null(o);
    assert_true(json_is_true(json_object_get(o, "truncated")));
    assert_true(json_string_length(json_object_get(o, "line")) < LOG_LINE_MAX + 100);
    json_decref(o);
    /* A record of ours as long as a record gets is passed on whole. */
    memset(line, 'y', LOG_LINE_MAX);
    memcpy(line, "long v=\"", 8);
    line[LOG_MAX_RECORD / 2 - 2] = '"';
    line[LOG_MAX_RECORD / 2 - 1] = '\0';
    char *big = malloc(LOG_MAX_RECORD);
    n = log_format_record(big, LOG_MAX_RECORD, CONFIG_LOG_JSON, WHEN, CONFIG_LOG_INFO, "renderer", line, NULL);
    enum config_log_level level;
    assert_int_equal(log_tag_record(out, sizeof(out), CONFIG_LOG_JSON, big, n - 1, "renderer", &level),
                     n + strlen(",\"child\":\"renderer\""));
    free(big);
    free(line);
}

/* Whatever a record of ours holds, it passes; whatever is done to it, the
 * result is one JSON object, and a line passed on was one already. */
static void test_relay_cross_checked_with_jansson(void **state)
{
    (void)state;
    static const char alphabet[] = "ab =\"\\\x01\t\n\x7f\xc3\xa9\xff.-e0123456789{}:,";
    srand(20261125);
    char text[200];
    char *line = malloc(LOG_MAX_RECORD);
    unsigned passed = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t tn = (size_t)rand() % (sizeof(text) - 1);
        for (size_t i = 0; i < tn; i++)
            text[i] = alphabet[rand() % (int)(sizeof(alphabet) - 1)];
        text[tn] = '\0';
        enum config_log_format f = iter % 2 ? CONFIG_LOG_JSON : CONFIG_LOG_TEXT;
        size_t size = iter % 7 == 0 ? LOG_RECORD_MIN + (size_t)(rand() % 100) : LOG_MAX_RECORD;
        size_t n = log_format_record(line, size, f, WHEN, (enum config_log_level)(iter % 4), "renderer", text, NULL);
        n--; /* the newline */
        enum config_log_level level;
        size_t m = log_tag_record(out, sizeof(out), f, line, n, "renderer", &level);
        if (!m)
            print_error("not passed on: %.*s\n", (int)n, line);
        assert_int_not_equal(m, 0);
        assert_int_equal((int)level, iter % 4);
        if (f == CONFIG_LOG_JSON) {
            json_t *o = parse_json(out, m - 1);
            assert_non_null(o);
            assert_string_equal(jstr(o, "child"), "renderer");
            json_decref(o);
        }
        /* then break it: flip, drop, insert or cut */
        for (int k = 0; k < 1 + rand() % 3; k++) {
            size_t at = n ? (size_t)rand() % n : 0;
            switch (rand() % 4) {
            case 0:
                if (n)
                    line[at] = alphabet[rand() % (int)(sizeof(alphabet) - 1)];
                break;
            case 1:
                if (n) {
                    memmove(line + at, line + at + 1, n - at - 1);
                    n--;
                }
                break;
            case 2:
                if (n + 1 < LOG_MAX_RECORD) {
                    memmove(line + at + 1, line + at, n - at);
                    line[at] = alphabet[rand() % (int)(sizeof(alphabet) - 1)];
                    n++;
                }
                break;
            default:
                n = at;
            }
        }
        if (f != CONFIG_LOG_JSON)
            continue;
        m = log_tag_record(out, sizeof(out), f, line, n, "renderer", &level);
        if (m) {
            passed++;
            json_t *in = parse_json(line, n);
            assert_non_null(in);
            json_decref(in);
            json_t *o = parse_json(out, m - 1);
            assert_non_null(o);
            assert_string_equal(jstr(o, "child"), "renderer");
            json_decref(o);
        } else {
            assert_nested(f, line, n);
        }
    }
    /* some changes leave a valid record (a letter for a letter) */
    assert_true(passed > 100);
    free(line);
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

/* Chromium's start-up lines on a host without D-Bus, GPU or desktop are
 * debug; everything else a browser writes stays info. */
static void test_browser_noise_is_debug(void **state)
{
    (void)state;
    const char *noise[] = {
        "[1205/031913.123456:ERROR:dbus/bus.cc:405] Failed to connect to the bus: Failed to connect to socket "
        "/run/dbus/system_bus_socket: No such file or directory",
        "[1205/031913.2:ERROR:dbus/object_proxy.cc:572] Failed to call method: org.freedesktop.DBus.NameHasOwner: "
        "object_path= /org/freedesktop/DBus: unknown error type: ",
        "[1205/031913.3:WARNING:ui/gfx/linux/gbm_wrapper.cc:79] drmGetDevices2() has not found any devices",
        "[1205/031913.4:ERROR:sandbox/linux/services/thread_helpers.cc:70] InitializeSandbox() called with multiple "
        "threads in process gpu-process.",
        "[1205/031913.5:ERROR:device/bluetooth/floss/floss_manager_client.cc:12] Floss manager service not available, "
        "cannot set Floss enable/disable.",
        "Failed to connect to the bus: no prefix",
    };
    for (size_t i = 0; i < sizeof(noise) / sizeof(noise[0]); i++)
        assert_int_equal(log_output_level(noise[i], strlen(noise[i])), CONFIG_LOG_DEBUG);
    const char *kept[] = {
        "DevTools listening on ws://127.0.0.1:9222/devtools/browser/x",
        "[1205/031913.6:ERROR:content/browser/zygote_host/zygote_host_impl_linux.cc:103] Running as root without "
        "--no-sandbox is not supported.",
        "[1205/031913.7:FATAL:x.cc:1] oops: Failed to connect to the bus: later in the line",
        "[1205/031913.8:ERROR:dbus/bus.cc:405]Failed to connect to the bus: no space after the prefix",
        "[unclosed prefix Failed to connect to the bus: ",
        "",
        "Failed to connect to the bu",
    };
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        assert_int_equal(log_output_level(kept[i], strlen(kept[i])), CONFIG_LOG_INFO);
    /* and the record says so */
    size_t n = log_format_output(out, sizeof(out), CONFIG_LOG_TEXT, WHEN, CONFIG_LOG_DEBUG, "supervisor", "browser-0",
                                 "stderr", noise[0], strlen(noise[0]));
    assert_true(n > 0);
    assert_non_null(strstr(out, " level=debug "));
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
        cmocka_unit_test(test_truncated_json_stays_json),
        cmocka_unit_test(test_utf8_kept_and_bad_bytes_escaped),
        cmocka_unit_test(test_numbers_only_when_json_numbers),
        cmocka_unit_test(test_no_key_comes_twice),
        cmocka_unit_test(test_tag_json_record),
        cmocka_unit_test(test_tag_text_record),
        cmocka_unit_test(test_malformed_records_are_nested),
        cmocka_unit_test(test_nested_line_quotes_and_controls),
        cmocka_unit_test(test_oversized_lines),
        cmocka_unit_test(test_relay_cross_checked_with_jansson),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_browser_noise_is_debug),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
