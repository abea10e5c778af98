/* libFuzzer target for the log records and the supervisor's relay of its
 * children's lines (common/log.c). The input is one line a child wrote. In
 * each format it is either passed on (log_tag_record), and then it must be
 * the input with exactly the child field inserted after component, and in
 * JSON both must be one JSON object to jansson, with the level it reported;
 * or nested (log_format_output), and then the record must be one JSON
 * object (one line in text) holding the whole line. The input is also the
 * text of a log call: the record log_format_record writes from it, in
 * buffers of several sizes, must be one JSON object, and a record of ours
 * must always be passed on. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"

#define FUZZ_NAME "fuzz_log"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const levels[] = { "debug", "info", "warn", "error" };
static char out[LOG_RELAY_MAX];

static json_t *fuzz_json(const char *s, size_t n, size_t flags)
{
    json_error_t err;
    return json_loadb(s, n, flags, &err);
}

/* A line passed on is the line with the child field after component. */
static void fuzz_check_tagged(enum config_log_format f, const char *line, size_t len, size_t n,
                              enum config_log_level level)
{
    int json = f == CONFIG_LOG_JSON;
    const char *tag = json ? ",\"child\":\"renderer\"" : " child=renderer";
    size_t tlen = strlen(tag);
    FUZZ_CHECK(n == len + tlen + 1 && out[n - 1] == '\n', "length");
    int found = 0;
    for (const char *at = out; !found && (at = strstr(at, tag)); at++) {
        size_t pre = (size_t)(at - out);
        found = memcmp(out, line, pre) == 0 && memcmp(out + pre + tlen, line + pre, len - pre) == 0;
    }
    FUZZ_CHECK(found, "not the line with the child field inserted");
    if (!json)
        return;
    json_t *in = fuzz_json(line, len, 0);
    FUZZ_CHECK(json_is_object(in), "passed on, but not JSON");
    json_t *o = fuzz_json(out, n - 1, 0);
    FUZZ_CHECK(json_is_object(o), "tagged, not JSON");
    FUZZ_CHECK(json_is_string(json_object_get(o, "child")) &&
                   strcmp(json_string_value(json_object_get(o, "child")), "renderer") == 0,
               "child");
    json_t *lv = json_object_get(o, "level");
    FUZZ_CHECK(json_is_string(lv) && strcmp(json_string_value(lv), levels[level]) == 0, "level");
    for (const char *k = "time"; k; k = strcmp(k, "time") == 0 ? "component" : strcmp(k, "component") == 0 ? "message" : NULL)
        FUZZ_CHECK(json_is_string(json_object_get(o, k)), k);
    json_decref(in);
    json_decref(o);
}

static void fuzz_check_nested(enum config_log_format f, const char *line, size_t len)
{
    size_t n = log_format_output(out, sizeof(out), f, 1795644325.123, CONFIG_LOG_INFO, "supervisor", "renderer",
                                 "stderr", line, len);
    FUZZ_CHECK(n > 0 && n < sizeof(out) && out[n - 1] == '\n', "end");
    FUZZ_CHECK(!memchr(out, '\n', n - 1), "one line");
    if (f != CONFIG_LOG_JSON)
        return;
    json_t *o = fuzz_json(out, n - 1, JSON_ALLOW_NUL);
    FUZZ_CHECK(json_is_object(o), "nested, not JSON");
    json_t *v = json_object_get(o, "line");
    FUZZ_CHECK(json_is_string(v), "line");
    FUZZ_CHECK(!json_object_get(o, "truncated"), "a line the supervisor hands over fits whole");
    int ascii = 1;
    for (size_t i = 0; i < len; i++)
        ascii &= (unsigned char)line[i] < 0x80;
    if (ascii)
        FUZZ_CHECK(json_string_length(v) == len && memcmp(json_string_value(v), line, len) == 0, "line changed");
    json_decref(o);
}

static void fuzz_relay(enum config_log_format f, const char *line, size_t len)
{
    enum config_log_level level = CONFIG_LOG_INFO;
    size_t n = log_tag_record(out, sizeof(out), f, line, len, "renderer", &level);
    if (n)
        fuzz_check_tagged(f, line, len, n, level);
    else
        fuzz_check_nested(f, line, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > LOG_LINE_MAX)
        return 0;
    const char *line = (const char *)data;
    fuzz_relay(CONFIG_LOG_JSON, line, size);
    fuzz_relay(CONFIG_LOG_TEXT, line, size);

    /* As the text of a log call: a record, passed on whole. */
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    static char rec[LOG_MAX_RECORD];
    static const size_t sizes[] = { LOG_RECORD_MIN, LOG_RECORD_MIN + 57, 1024, LOG_MAX_RECORD };
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        for (int json = 0; json < 2; json++) {
            enum config_log_format f = json ? CONFIG_LOG_JSON : CONFIG_LOG_TEXT;
            enum config_log_level want = (enum config_log_level)((size + s) % 4);
            size_t n = log_format_record(rec, sizes[s], f, 1795644325.123, want, "renderer", text,
                                         size % 3 ? NULL : "No such file or directory");
            FUZZ_CHECK(n > 0 && n < sizes[s] && rec[n - 1] == '\n' && !memchr(rec, '\n', n - 1), "record end");
            if (json) {
                json_t *o = fuzz_json(rec, n - 1, 0);
                FUZZ_CHECK(json_is_object(o), "record, not JSON");
                json_decref(o);
            }
            enum config_log_level level;
            size_t m = log_tag_record(out, sizeof(out), f, rec, n - 1, "renderer", &level);
            if (!m && strstr(text, "child="))
                continue; /* it has a child field already: nested, rightly */
            FUZZ_CHECK(m > 0, "a record of ours is not passed on");
            FUZZ_CHECK(level == want, "level");
            fuzz_check_tagged(f, rec, n - 1, m, level);
        }
    }
    free(text);
    return 0;
}
