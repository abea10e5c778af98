/* Tracing's pure half (renderer/trace.c): traceparent read by the W3C
 * rules and written back, tracestate passed on or not, the origin the
 * page's traceparent may go to, and the OTLP/JSON of a render's spans (the
 * URL parts a span carries are pagetext_url's: test_pagetext.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "trace.h"

/* jansson's blocks through cmocka's allocator too, as the renderer's go
 * through its own (main.c). */
static void *test_json_malloc(size_t n)
{
    return malloc(n);
}

static void test_json_free(void *p)
{
    free(p);
}

#define TID "4bf92f3577b34da6a3ce929d0e0e4736"
#define SID "00f067aa0ba902b7"

static void test_parent_parse(void **state)
{
    (void)state;
    struct trace_ctx c;
    assert_int_equal(trace_parent_parse("00-" TID "-" SID "-01", &c), 0);
    assert_int_equal(c.trace_id[0], 0x4b);
    assert_int_equal(c.trace_id[15], 0x36);
    assert_int_equal(c.span_id[0], 0x00);
    assert_int_equal(c.span_id[7], 0xb7);
    assert_int_equal(c.flags, 1);
    char out[TRACE_PARENT_LEN + 1];
    trace_parent_format(&c, out);
    assert_string_equal(out, "00-" TID "-" SID "-01");

    assert_int_equal(trace_parent_parse("00-" TID "-" SID "-00", &c), 0);
    assert_int_equal(c.flags, 0);
    /* a later version may be longer, after a '-' */
    assert_int_equal(trace_parent_parse("01-" TID "-" SID "-01-what-comes", &c), 0);
    assert_int_equal(trace_parent_parse("01-" TID "-" SID "-01x", &c), -EINVAL);

    static const char *const bad[] = {
        "",
        "00-" TID "-" SID "-0",                    /* short */
        "00-" TID "-" SID "-01-",                  /* version 00 is exactly 55 */
        "ff-" TID "-" SID "-01",                   /* version ff is invalid */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-" SID "-01", /* upper case */
        "00-00000000000000000000000000000000-" SID "-01", /* zero trace id */
        "00-" TID "-0000000000000000-01",          /* zero parent id */
        "00_" TID "-" SID "-01",
        "00-" TID "_" SID "-01",
        "00-" TID "-" SID "_01",
        "00-" TID "-" SID "-g1",
        "0x-" TID "-" SID "-01",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c.flags = 7;
        assert_int_equal(trace_parent_parse(bad[i], &c), -EINVAL);
        assert_int_equal(c.flags, 7); /* untouched */
    }
    assert_int_equal(trace_parent_parse(NULL, &c), -EINVAL);
}

static void test_state(void **state)
{
    (void)state;
    assert_true(trace_state_ok("grafana=abc,other=1"));
    assert_false(trace_state_ok(""));
    assert_false(trace_state_ok(NULL));
    assert_false(trace_state_ok("a=b\r\nX-Injected: 1"));
    char big[TRACE_STATE_MAX + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_false(trace_state_ok(big)); /* 513 */
    big[TRACE_STATE_MAX] = '\0';
    assert_true(trace_state_ok(big)); /* 512 */
}

static int same(const char *url, const char *origin)
{
    return trace_same_origin(url, strlen(url), origin);
}

static void test_same_origin(void **state)
{
    (void)state;
    const char *g = "http://grafana:3000/d/abc/x?orgId=1&render=1";
    assert_true(same("http://grafana:3000/api/ds/query?x=1", g));
    assert_true(same("HTTP://GRAFANA:3000/public/build/app.js", g));
    assert_true(same("http://grafana:3000", g));
    assert_false(same("http://grafana:3001/api", g));
    assert_false(same("https://grafana:3000/api", g));
    assert_false(same("http://grafana.evil:3000/api", g));
    assert_false(same("http://evil/grafana:3000/", g));
    assert_false(same("http://grafana:3000@evil:3000/", g));
    assert_false(same("data:text/plain,grafana", g));
    assert_false(same("blob:http://grafana:3000/1234", g));
    /* default ports */
    assert_true(same("http://grafana:80/x", "http://grafana/d/abc"));
    assert_true(same("https://grafana/x", "https://grafana:443/d/abc"));
    assert_false(same("http://grafana:443/x", "https://grafana/d/abc"));
    /* IPv6 */
    assert_true(same("http://[::1]:3000/x", "http://[::1]:3000/d/abc"));
    assert_false(same("http://[::2]:3000/x", "http://[::1]:3000/d/abc"));
    /* the length given is the URL's */
    assert_false(trace_same_origin("http://grafana:3000/x", 10, g));
    assert_false(trace_same_origin("http://grafana:3000/x", 21, NULL));
}

static json_t *attr(json_t *attrs, const char *key)
{
    size_t i;
    json_t *a;
    json_array_foreach(attrs, i, a)
        if (strcmp(json_string_value(json_object_get(a, "key")), key) == 0)
            return json_object_get(a, "value");
    return NULL;
}

static void test_otlp_json(void **state)
{
    (void)state;
    struct trace_render r[2];
    memset(r, 0, sizeof(r));
    assert_int_equal(trace_parent_parse("00-" TID "-" SID "-01", &r[0].ctx), 0);
    memcpy(r[0].parent_id, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    snprintf(r[0].state, sizeof(r[0].state), "grafana=1");
    r[0].route = "/render";
    r[0].start_ns = 1700000000000000000;
    r[0].end_ns = 1700000000500000000;
    r[0].status = 200;
    snprintf(r[0].host, sizeof(r[0].host), "grafana:3000");
    snprintf(r[0].path, sizeof(r[0].path), "/d/abc");
    r[0].width = 1000;
    r[0].height = 500;
    r[0].encoding = "png";
    r[0].browser = 1;
    r[0].tries = 1;
    r[0].nsteps = 2;
    r[0].steps[0] = (struct trace_step){ "navigate", 1700000000100000000, 1700000000200000000, { 0xaa, 1 } };
    r[0].steps[1] = (struct trace_step){ "screenshot", 1700000000200000000, 1700000000300000000, { 0xbb, 2 } };
    /* a root span that failed, nothing known of its page */
    trace_random_id(r[1].ctx.trace_id, TRACE_ID_BYTES);
    trace_random_id(r[1].ctx.span_id, TRACE_SPAN_BYTES);
    r[1].route = "/render/csv";
    r[1].status = 500;
    r[1].browser = -1;
    snprintf(r[1].error, sizeof(r[1].error), "lost the connection to the browser");

    size_t len;
    char *text = trace_otlp_json("rendervisor", r, 2, &len);
    assert_int_equal(strlen(text), len);
    json_error_t err;
    json_t *root = json_loads(text, 0, &err);
    assert_non_null(root);
    json_t *rs = json_array_get(json_object_get(root, "resourceSpans"), 0);
    json_t *res_attrs = json_object_get(json_object_get(rs, "resource"), "attributes");
    assert_string_equal(json_string_value(json_object_get(attr(res_attrs, "service.name"), "stringValue")),
                        "rendervisor");
    json_t *ss = json_array_get(json_object_get(rs, "scopeSpans"), 0);
    json_t *spans = json_object_get(ss, "spans");
    assert_int_equal(json_array_size(spans), 4);

    json_t *s = json_array_get(spans, 0);
    assert_string_equal(json_string_value(json_object_get(s, "traceId")), TID);
    assert_string_equal(json_string_value(json_object_get(s, "spanId")), SID);
    assert_string_equal(json_string_value(json_object_get(s, "parentSpanId")), "0102030405060708");
    assert_string_equal(json_string_value(json_object_get(s, "traceState")), "grafana=1");
    assert_string_equal(json_string_value(json_object_get(s, "name")), "render");
    assert_int_equal(json_integer_value(json_object_get(s, "kind")), 2);
    assert_string_equal(json_string_value(json_object_get(s, "startTimeUnixNano")), "1700000000000000000");
    assert_string_equal(json_string_value(json_object_get(s, "endTimeUnixNano")), "1700000000500000000");
    assert_null(json_object_get(s, "status"));
    json_t *a = json_object_get(s, "attributes");
    assert_string_equal(json_string_value(json_object_get(attr(a, "http.response.status_code"), "intValue")), "200");
    assert_string_equal(json_string_value(json_object_get(attr(a, "rendervisor.page.path"), "stringValue")), "/d/abc");
    assert_string_equal(json_string_value(json_object_get(attr(a, "rendervisor.height"), "intValue")), "500");
    assert_string_equal(json_string_value(json_object_get(attr(a, "rendervisor.browser"), "intValue")), "1");

    s = json_array_get(spans, 1);
    assert_string_equal(json_string_value(json_object_get(s, "name")), "navigate");
    assert_string_equal(json_string_value(json_object_get(s, "parentSpanId")), SID);
    assert_string_equal(json_string_value(json_object_get(s, "spanId")), "aa01000000000000");
    assert_int_equal(json_integer_value(json_object_get(s, "kind")), 1);
    assert_string_equal(json_string_value(json_object_get(s, "traceId")), TID);

    s = json_array_get(spans, 3);
    assert_string_equal(json_string_value(json_object_get(s, "name")), "render");
    assert_null(json_object_get(s, "parentSpanId"));
    assert_null(json_object_get(s, "traceState"));
    json_t *st = json_object_get(s, "status");
    assert_int_equal(json_integer_value(json_object_get(st, "code")), 2);
    assert_string_equal(json_string_value(json_object_get(st, "message")), "lost the connection to the browser");
    a = json_object_get(s, "attributes");
    assert_null(attr(a, "rendervisor.page.host"));
    assert_null(attr(a, "rendervisor.browser"));
    assert_string_equal(json_string_value(json_object_get(attr(a, "http.route"), "stringValue")), "/render/csv");
    json_decref(root);
    free(text);
}

static void test_random_id(void **state)
{
    (void)state;
    uint8_t a[TRACE_ID_BYTES], b[TRACE_ID_BYTES];
    trace_random_id(a, sizeof(a));
    trace_random_id(b, sizeof(b));
    assert_memory_not_equal(a, b, sizeof(a));
}

int main(void)
{
    json_set_alloc_funcs(test_json_malloc, test_json_free);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parent_parse), cmocka_unit_test(test_state),     cmocka_unit_test(test_same_origin),
        cmocka_unit_test(test_otlp_json),    cmocka_unit_test(test_random_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
