/* The ingest line parser: what it takes, what it refuses and why, and that
 * it reads back exactly what ingest_buf_line() writes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"

static enum ingest_reject parse(const char *line, struct ingest_sample *s)
{
    return ingest_parse_line(line, strlen(line), s);
}

/* A line of `n` copies of c, NUL-terminated, in a caller's buffer. */
static char *repeat(char *out, char c, size_t n)
{
    memset(out, c, n);
    out[n] = '\0';
    return out;
}

/* Append s to the line being built in out (size INGEST_MAX_LINE + 64). */
static void put(char *out, size_t *n, const char *s)
{
    size_t len = strlen(s);
    assert_true(*n + len < INGEST_MAX_LINE + 64);
    memcpy(out + *n, s, len + 1);
    *n += len;
}

static void test_reject_names(void **state)
{
    (void)state;
    assert_string_equal(ingest_reject_name(INGEST_OK), "ok");
    assert_string_equal(ingest_reject_name(INGEST_REJECT_PARSE), "parse");
    assert_string_equal(ingest_reject_name(INGEST_REJECT_UNKNOWN_FAMILY), "unknown_family");
    assert_string_equal(ingest_reject_name(INGEST_REJECT_UNKNOWN_LABEL), "unknown_label");
    assert_string_equal(ingest_reject_name(INGEST_REJECT_BAD_VALUE), "bad_value");
    assert_string_equal(ingest_reject_name(INGEST_REJECT_TOO_LONG), "too_long");
    assert_string_equal(ingest_reject_name(INGEST_REJECT_CARDINALITY), "cardinality");
    assert_string_equal(ingest_reject_name(INGEST_REJECT_PEER), "peer");
    assert_string_equal(ingest_reject_name(INGEST_REJECT_TOO_MANY_LINES), "too_many_lines");
    assert_string_equal(ingest_reject_name(INGEST_REJECT_COUNT), "unknown");
    assert_string_equal(ingest_reject_name((enum ingest_reject)-1), "unknown");
}

static void test_lines(void **state)
{
    (void)state;
    struct ingest_sample s;

    assert_int_equal(parse("grafana_image_renderer_http_request_in_flight 3", &s), INGEST_OK);
    assert_string_equal(s.family, "grafana_image_renderer_http_request_in_flight");
    assert_int_equal(s.nlabels, 0);
    assert_true(s.value == 3);

    assert_int_equal(parse("a:b_c9{} -2.5", &s), INGEST_OK);
    assert_string_equal(s.family, "a:b_c9");
    assert_int_equal(s.nlabels, 0);
    assert_true(s.value == -2.5);

    assert_int_equal(parse("_x{step=\"navigate\"} 0.532", &s), INGEST_OK);
    assert_string_equal(s.family, "_x");
    assert_int_equal(s.nlabels, 1);
    assert_string_equal(s.labels[0].name, "step");
    assert_string_equal(s.labels[0].value, "navigate");
    assert_true(s.value == 0.532);

    assert_int_equal(parse("m{a=\"1\",_b=\"\",c9=\"x y\",D=\"=,}{\"} 1e+10", &s), INGEST_OK);
    assert_int_equal(s.nlabels, 4);
    assert_string_equal(s.labels[0].name, "a");
    assert_string_equal(s.labels[0].value, "1");
    assert_string_equal(s.labels[1].name, "_b");
    assert_string_equal(s.labels[1].value, "");
    assert_string_equal(s.labels[2].name, "c9");
    assert_string_equal(s.labels[2].value, "x y");
    assert_string_equal(s.labels[3].name, "D");
    assert_string_equal(s.labels[3].value, "=,}{");
    assert_true(s.value == 1e10);

    /* UTF-8 in label values */
    assert_int_equal(parse("m{v=\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"} 1", &s), INGEST_OK);
    assert_string_equal(s.labels[0].value, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}

static void test_escapes(void **state)
{
    (void)state;
    struct ingest_sample s;
    assert_int_equal(parse("m{v=\"a\\\\b\"} 1", &s), INGEST_OK);
    assert_string_equal(s.labels[0].value, "a\\b");
    assert_int_equal(parse("m{v=\"a\\\"b\"} 1", &s), INGEST_OK);
    assert_string_equal(s.labels[0].value, "a\"b");
    assert_int_equal(parse("m{v=\"a\\nb\"} 1", &s), INGEST_OK);
    assert_string_equal(s.labels[0].value, "a\nb");
    assert_int_equal(parse("m{v=\"\\\\\\\"\\n\\\\n\"} 1", &s), INGEST_OK);
    assert_string_equal(s.labels[0].value, "\\\"\n\\n");

    /* anything else after a backslash */
    const char *bad[] = {
        "m{v=\"\\x41\"} 1", "m{v=\"\\t\"} 1",  "m{v=\"\\'\"} 1",  "m{v=\"\\N\"} 1",
        "m{v=\"\\ \"} 1",   "m{v=\"a\\\"} 1", "m{v=\"a\\",       "m{v=\"\\0\"} 1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        print_message("line %s\n", bad[i]);
        assert_int_equal(parse(bad[i], &s), INGEST_REJECT_PARSE);
    }
}

static void test_values(void **state)
{
    (void)state;
    struct ingest_sample s;
    struct {
        const char *text;
        double value;
    } good[] = {
        { "0", 0 },
        { "-0", -0.0 },
        { "1", 1 },
        { "+1", 1 },
        { "-42", -42 },
        { "0123", 123 },
        { "0.532", 0.532 },
        { "1.", 1 },
        { ".5", 0.5 },
        { "-.5", -0.5 },
        { "1e3", 1000 },
        { "1E3", 1000 },
        { "1e+3", 1000 },
        { "1.5e-3", 1.5e-3 },
        { "1e-400", 0 }, /* underflows to zero, still finite */
        { "5e-324", 5e-324 },
        { "1.7976931348623157e308", 1.7976931348623157e308 },
        { "1795644325.5", 1795644325.5 },
    };
    char line[64];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(line, sizeof(line), "m %s", good[i].text);
        print_message("line %s\n", line);
        assert_int_equal(parse(line, &s), INGEST_OK);
        assert_true(s.value == good[i].value);
        assert_int_equal(signbit(s.value), signbit(good[i].value));
    }

    /* Not a number, or not a finite one. */
    const char *bad[] = {
        "+Inf", "-Inf", "Inf", "inf", "Infinity", "NaN", "nan", "1e999", "-1e999", "0x10", "0x1p-2",
        "1_000", "abc", "1e", "1e+", ".", "+", "-", "--1", "+-1", "1.2.3", "1,5", "1f", "e5", "1e5.5",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(line, sizeof(line), "m{a=\"b\"} %s", bad[i]);
        print_message("line %s\n", line);
        assert_int_equal(parse(line, &s), INGEST_REJECT_BAD_VALUE);
    }
}

static void test_parse_errors(void **state)
{
    (void)state;
    struct ingest_sample s;
    const char *bad[] = {
        "",                       /* nothing */
        " m 1",                   /* leading space */
        "m",                      /* no value */
        "m ",                     /* empty value */
        "m  1",                   /* two spaces */
        "m\t1",                   /* a tab */
        "m 1 ",                   /* trailing space */
        "m 1 1700000000000",      /* a timestamp */
        "m 1\r",                  /* a carriage return */
        "m 1\t",                  /* a trailing tab */
        "1m 1",                   /* name starts with a digit */
        "a-b 1",                  /* '-' in a name */
        "m{",                     /* unterminated label set */
        "m{} ",                   /* empty value after labels */
        "m{}1",                   /* no space before the value */
        "m{a=\"b\"}1",            /* no space before the value */
        "m {a=\"b\"} 1",          /* space before the labels */
        "m{a=\"b\" } 1",          /* space inside */
        "m{ a=\"b\"} 1",          /* space inside */
        "m{a=\"b\", c=\"d\"} 1",  /* space after the comma */
        "m{a = \"b\"} 1",         /* spaces around = */
        "m{a=\"b\",} 1",          /* trailing comma */
        "m{,} 1",                 /* lone comma */
        "m{a=\"b\"c=\"d\"} 1",    /* missing comma */
        "m{a=\"b\"",              /* unterminated label set */
        "m{a=\"b} 1",             /* unterminated quote */
        "m{a=b} 1",               /* unquoted value */
        "m{a='b'} 1",             /* single quotes */
        "m{a} 1",                 /* no = */
        "m{a=} 1",                /* no value */
        "m{=\"b\"} 1",            /* no label name */
        "m{1a=\"b\"} 1",          /* label name starts with a digit */
        "m{a:b=\"c\"} 1",         /* ':' in a label name */
        "m{a=\"1\",a=\"2\"} 1",   /* a repeated label */
        "m{a=\"1\",b=\"2\",a=\"3\"} 1",
        "m{a=\"b\"}} 1",          /* stray brace */
        "m{a=\"b\"} 1 # comment", /* trailing garbage */
        "# HELP m help",          /* exposition comments are not samples */
        "m{a=\"x\ny\"} 1",        /* a raw newline inside a value */
        "m{a=\"\xff\"} 1",        /* not UTF-8 */
        "m{a=\"\x80\"} 1",        /* a lone continuation byte */
        "m{a=\"\xc0\x80\"} 1",    /* overlong NUL */
        "m{a=\"\xe0\x80\x80\"} 1",    /* overlong */
        "m{a=\"\xed\xa0\x80\"} 1",    /* a surrogate */
        "m{a=\"\xf4\x90\x80\x80\"} 1", /* past U+10FFFF */
        "m{a=\"\xe2\x82\"} 1",    /* truncated sequence */
        "m\xc3\xa9 1",            /* non-ASCII in a name */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        print_message("line %zu: %s\n", i, bad[i]);
        assert_int_equal(parse(bad[i], &s), INGEST_REJECT_PARSE);
    }

    /* NUL bytes count as bytes of the line, and are refused. */
    static const char nul_in_value[] = "m{a=\"x\0y\"} 1";
    assert_int_equal(ingest_parse_line(nul_in_value, sizeof(nul_in_value) - 1, &s), INGEST_REJECT_PARSE);
    static const char nul_after[] = "m 1\0";
    assert_int_equal(ingest_parse_line(nul_after, sizeof(nul_after) - 1, &s), INGEST_REJECT_PARSE);
    static const char nul_in_name[] = "m\0 1";
    assert_int_equal(ingest_parse_line(nul_in_name, sizeof(nul_in_name) - 1, &s), INGEST_REJECT_PARSE);
}

static void test_too_long(void **state)
{
    (void)state;
    struct ingest_sample s;
    char name[INGEST_MAX_LINE + 8], line[INGEST_MAX_LINE + 64], value[INGEST_MAX_LINE];

    /* family names: 127 characters fit, 128 do not */
    snprintf(line, sizeof(line), "%s 1", repeat(name, 'n', INGEST_MAX_NAME - 1));
    assert_int_equal(parse(line, &s), INGEST_OK);
    assert_int_equal(strlen(s.family), INGEST_MAX_NAME - 1);
    snprintf(line, sizeof(line), "%s 1", repeat(name, 'n', INGEST_MAX_NAME));
    assert_int_equal(parse(line, &s), INGEST_REJECT_TOO_LONG);
    snprintf(line, sizeof(line), "%s{a=\"b\"} 1", repeat(name, 'n', INGEST_MAX_NAME));
    assert_int_equal(parse(line, &s), INGEST_REJECT_TOO_LONG);

    /* label names */
    snprintf(line, sizeof(line), "m{%s=\"v\"} 1", repeat(name, 'l', INGEST_MAX_NAME - 1));
    assert_int_equal(parse(line, &s), INGEST_OK);
    assert_int_equal(strlen(s.labels[0].name), INGEST_MAX_NAME - 1);
    snprintf(line, sizeof(line), "m{%s=\"v\"} 1", repeat(name, 'l', INGEST_MAX_NAME));
    assert_int_equal(parse(line, &s), INGEST_REJECT_TOO_LONG);

    /* label values count after unescaping: 127 escaped quotes fit */
    snprintf(line, sizeof(line), "m{v=\"%s\"} 1", repeat(value, 'v', INGEST_MAX_LABEL_VALUE - 1));
    assert_int_equal(parse(line, &s), INGEST_OK);
    assert_int_equal(strlen(s.labels[0].value), INGEST_MAX_LABEL_VALUE - 1);
    snprintf(line, sizeof(line), "m{v=\"%s\"} 1", repeat(value, 'v', INGEST_MAX_LABEL_VALUE));
    assert_int_equal(parse(line, &s), INGEST_REJECT_TOO_LONG);
    size_t n = 0;
    put(line, &n, "m{v=\"");
    for (int i = 0; i < INGEST_MAX_LABEL_VALUE - 1; i++)
        put(line, &n, "\\\"");
    size_t body = n;
    put(line, &n, "\"} 1");
    assert_int_equal(parse(line, &s), INGEST_OK);
    assert_int_equal(strlen(s.labels[0].value), INGEST_MAX_LABEL_VALUE - 1);
    assert_int_equal(s.labels[0].value[0], '"');
    n = body;
    put(line, &n, "\\n\"} 1");
    assert_int_equal(parse(line, &s), INGEST_REJECT_TOO_LONG);

    /* four labels, not five */
    assert_int_equal(parse("m{a=\"1\",b=\"2\",c=\"3\",d=\"4\"} 1", &s), INGEST_OK);
    assert_int_equal(s.nlabels, 4);
    assert_int_equal(parse("m{a=\"1\",b=\"2\",c=\"3\",d=\"4\",e=\"5\"} 1", &s), INGEST_REJECT_TOO_LONG);

    /* A line of exactly INGEST_MAX_LINE bytes is taken, one more is not:
     * a name of 105 and four values of 112 escaped backslashes come to
     * 105 + 4 * (4 + 224) + 3 + 2 + 2 = 1024. */
    for (size_t len = INGEST_MAX_LINE; len <= INGEST_MAX_LINE + 1; len++) {
        n = 0;
        put(line, &n, repeat(name, 'n', 105 + len - INGEST_MAX_LINE));
        put(line, &n, "{");
        for (int l = 0; l < 4; l++) {
            char head[8];
            snprintf(head, sizeof(head), "%s%c=\"", l ? "," : "", 'a' + l);
            put(line, &n, head);
            for (int i = 0; i < 112; i++)
                put(line, &n, "\\\\");
            put(line, &n, "\"");
        }
        put(line, &n, "} 1");
        assert_int_equal(n, len);
        assert_int_equal(parse(line, &s), len == INGEST_MAX_LINE ? INGEST_OK : INGEST_REJECT_TOO_LONG);
    }
    assert_int_equal(parse(repeat(line, 'n', INGEST_MAX_LINE + 1), &s), INGEST_REJECT_TOO_LONG);
}

/* The parser reads only the len bytes it is given: the line sits in an
 * array of exactly that size, so the sanitizer build would catch a read past it. */
static void test_reads_only_len(void **state)
{
    (void)state;
    struct ingest_sample s;
    char exact[6];
    memcpy(exact, "m 1234", 6);
    assert_int_equal(ingest_parse_line(exact, sizeof(exact), &s), INGEST_OK);
    assert_true(s.value == 1234);
    assert_int_equal(ingest_parse_line(exact, 4, &s), INGEST_OK);
    assert_true(s.value == 12);
    assert_int_equal(ingest_parse_line(exact, 2, &s), INGEST_REJECT_PARSE);

    char label[8];
    memcpy(label, "m{a=\"b\\\"", 8);
    for (size_t len = 0; len <= sizeof(label); len++)
        assert_int_equal(ingest_parse_line(label, len, &s), INGEST_REJECT_PARSE);
}

/* What ingest_buf_line() writes reads back exactly: names, unescaped
 * label values and the double itself. */
static void test_round_trip(void **state)
{
    (void)state;
    struct ingest_buf b;
    ingest_buf_init(&b);
    char big[INGEST_MAX_LABEL_VALUE];
    repeat(big, '"', sizeof(big) - 1);
    const char *values[] = { "", "plain", "with space", "a\\b", "q\"q", "nl\nnl", "\\\"\n\\n\"\\", "{}=,",
                             "HeadlessChrome/156.0.8078.108", "caf\xc3\xa9", big };
    double nums[] = { 0, -0.0, 1, -42, 0.1, 0.532, 1.0 / 3, 2.0 / 3, 1e-9, 1.2e10, 1795644325.5,
                      123456.789, 1e300, -1e-300, 1.7976931348623157e308, 5e-324, 4.9406564584124654e-324 };
    for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
        for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++) {
            const char *labels[] = { "child", "browser-0", "version", values[v], NULL };
            ingest_buf_reset(&b);
            assert_int_equal(ingest_buf_line(&b, "rendervisor_child_up", labels, nums[k]), 0);
            assert_true(b.len > 0 && b.data[b.len - 1] == '\n');
            struct ingest_sample s;
            assert_int_equal(ingest_parse_line(b.data, b.len - 1, &s), INGEST_OK);
            assert_string_equal(s.family, "rendervisor_child_up");
            assert_int_equal(s.nlabels, 2);
            assert_string_equal(s.labels[0].name, "child");
            assert_string_equal(s.labels[0].value, "browser-0");
            assert_string_equal(s.labels[1].name, "version");
            assert_string_equal(s.labels[1].value, values[v]);
            assert_memory_equal(&s.value, &nums[k], sizeof(double));
        }
    }

    /* no labels */
    ingest_buf_reset(&b);
    assert_int_equal(ingest_buf_line(&b, "grafana_image_renderer_http_request_in_flight", NULL, 3), 0);
    struct ingest_sample s;
    assert_int_equal(ingest_parse_line(b.data, b.len - 1, &s), INGEST_OK);
    assert_int_equal(s.nlabels, 0);
    assert_true(s.value == 3);

    /* The writer's non-finite values are refused by the reader. */
    double inf[] = { INFINITY, -INFINITY, NAN };
    for (size_t k = 0; k < 3; k++) {
        ingest_buf_reset(&b);
        assert_int_equal(ingest_buf_line(&b, "m", NULL, inf[k]), 0);
        assert_int_equal(ingest_parse_line(b.data, b.len - 1, &s), INGEST_REJECT_BAD_VALUE);
    }
    ingest_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reject_names), cmocka_unit_test(test_lines),
        cmocka_unit_test(test_escapes),      cmocka_unit_test(test_values),
        cmocka_unit_test(test_parse_errors), cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_reads_only_len), cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
