/* The render request's log line: its fields in each case (an image, a csv,
 * refusals before and after the query is read, a client gone), what it
 * never carries (the URL beyond its host, a value the client sent in an
 * error), and its JSON form, where the figures are numbers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <jansson.h>

#include "clock.h"
#include "log.h"
#include "reqlog.h"

#define MS CLOCK_NS_PER_MS

static char line[1024];
static char rec[LOG_MAX_RECORD];

static const struct render_step png_steps[] = {
    { "launch", 0.0002 }, { "newPage", 0.0 }, { "prepare", 0.0031 },
    { "navigate", 0.1204 }, { "panelsRendered", 0.6 }, { "screenshot", 0.0806 },
};

static struct render_request png_req(void)
{
    struct render_request req = { 0 };
    req.url = (char *)"https://grafana.example:3000/d-solo/abc?orgId=1&auth_token=secret";
    req.width = 1000;
    req.height = -1;
    req.encoding = QUERY_ENCODING_PNG;
    return req;
}

static json_t *as_json(void)
{
    size_t n = log_format_record(rec, sizeof(rec), CONFIG_LOG_JSON, 1795644325.123, CONFIG_LOG_INFO, "renderer",
                                 line, NULL);
    json_error_t err;
    json_t *o = json_loadb(rec, n - 1, 0, &err);
    if (!o)
        print_error("not JSON: %s: %s\n", err.text, rec);
    assert_non_null(o);
    return o;
}

static void test_png_answered(void **state)
{
    (void)state;
    struct render_request req = png_req();
    struct reqlog e = {
        .route = "render", .status = 200, .url_host = "grafana.example:3000", .req = &req,
        .bytes = 53211, .duration_ns = 812 * MS + 400000, .error = NULL,
        .submitted = 1, .queue_ns = 2 * MS, .browser = 1, .tries = 1,
        .steps = png_steps, .nsteps = 6,
    };
    size_t n = reqlog_format(line, sizeof(line), &e);
    assert_int_equal(n, strlen(line));
    assert_string_equal(line, "render request route=render status=200 url_host=\"grafana.example:3000\" "
                              "encoding=png width=1000 height=-1 bytes=53211 duration_ms=812 queue_ms=2 "
                              "browser=1 tries=1 step_launch_ms=0 step_newPage_ms=0 step_prepare_ms=3 "
                              "step_navigate_ms=120 step_panelsRendered_ms=600 step_screenshot_ms=81");
    assert_null(strstr(line, "secret"));
    assert_null(strstr(line, "d-solo"));

    json_t *o = as_json();
    assert_string_equal(json_string_value(json_object_get(o, "message")), "render request");
    assert_string_equal(json_string_value(json_object_get(o, "route")), "render");
    assert_int_equal(json_integer_value(json_object_get(o, "status")), 200);
    assert_true(json_is_integer(json_object_get(o, "status")));
    assert_string_equal(json_string_value(json_object_get(o, "url_host")), "grafana.example:3000");
    assert_int_equal(json_integer_value(json_object_get(o, "bytes")), 53211);
    assert_int_equal(json_integer_value(json_object_get(o, "height")), -1);
    assert_int_equal(json_integer_value(json_object_get(o, "step_navigate_ms")), 120);
    assert_true(json_is_integer(json_object_get(o, "duration_ms")));
    assert_null(json_object_get(o, "error"));
    json_decref(o);
}

/* What held the render's readiness back: the page's kind, and each rule
 * that held it at least 1 ms (rounded), as numbers in JSON. */
static void test_readiness_waits(void **state)
{
    (void)state;
    struct render_request req = png_req();
    double rules[NAMES_RULE_COUNT] = { 0 };
    rules[NAMES_RULE_QUERIES] = 412.4;
    rules[NAMES_RULE_PAINT] = 20.6;
    rules[NAMES_RULE_NETWORK] = 0.4; /* under 1 ms: left out */
    struct reqlog e = {
        .route = "render", .status = 200, .url_host = "grafana:3000", .req = &req, .bytes = 10,
        .duration_ns = 700 * MS, .submitted = 1, .queue_ns = 0, .browser = 0, .tries = 1,
        .steps = png_steps, .nsteps = 2, .page = "scenes", .rule_ms = rules,
    };
    reqlog_format(line, sizeof(line), &e);
    assert_non_null(strstr(line, " step_newPage_ms=0 page=scenes wait_queries_ms=412 wait_paint_ms=21"));
    assert_null(strstr(line, "wait_network"));
    json_t *o = as_json();
    assert_string_equal(json_string_value(json_object_get(o, "page")), "scenes");
    assert_int_equal(json_integer_value(json_object_get(o, "wait_queries_ms")), 412);
    json_decref(o);
    /* no readiness reached (a 408 in navigate): no page, no waits */
    e.page = NULL;
    reqlog_format(line, sizeof(line), &e);
    assert_null(strstr(line, "page="));
    assert_null(strstr(line, "wait_"));
}

/* The request's id, and the page's counts when its page log was on: on a
 * 408 too, where they say why the panel stayed blank. */
static void test_id_and_page_counts(void **state)
{
    (void)state;
    struct render_request req = png_req();
    struct reqlog e = {
        .route = "render", .status = 408, .render_id = 17, .url_host = "grafana:3000", .req = &req,
        .duration_ns = 2000 * MS, .error = "timed out after 2000 ms waiting for panelsRendered",
        .submitted = 1, .queue_ns = 0, .browser = 0, .tries = 1, .steps = png_steps, .nsteps = 5,
        .page = "panels", .page_log = 1, .page_errors = 3, .page_failed = 2,
    };
    reqlog_format(line, sizeof(line), &e);
    assert_true(strncmp(line, "render request route=render status=408 render_id=17 url_host=", 61) == 0);
    assert_non_null(strstr(line, " page=panels page_errors=3 page_failed=2 error="));
    json_t *o = as_json();
    assert_int_equal(json_integer_value(json_object_get(o, "render_id")), 17);
    assert_int_equal(json_integer_value(json_object_get(o, "page_errors")), 3);
    assert_int_equal(json_integer_value(json_object_get(o, "page_failed")), 2);
    json_decref(o);
    /* page log off: no counts; no id (a refusal before the query): none */
    e.page_log = 0;
    e.render_id = 0;
    reqlog_format(line, sizeof(line), &e);
    assert_null(strstr(line, "page_errors"));
    assert_null(strstr(line, "render_id"));
}

static void test_csv_answered(void **state)
{
    (void)state;
    struct render_request req = png_req();
    req.encoding = QUERY_ENCODING_CSV;
    static const struct render_step steps[] = { { "launch", 0.001 }, { "navigateCSV", 0.05 }, { "downloadCSV", 0.2 } };
    struct reqlog e = {
        .route = "csv", .status = 200, .url_host = "127.0.0.1:8080", .req = &req, .bytes = 17,
        .duration_ns = 260 * MS, .submitted = 1, .queue_ns = 0, .browser = 0, .tries = 1, .steps = steps,
        .nsteps = 3,
    };
    reqlog_format(line, sizeof(line), &e);
    assert_string_equal(line, "render request route=csv status=200 url_host=\"127.0.0.1:8080\" encoding=csv "
                              "bytes=17 duration_ms=260 queue_ms=0 browser=0 tries=1 step_launch_ms=1 "
                              "step_navigateCSV_ms=50 step_downloadCSV_ms=200");
}

static void test_refused_before_the_query(void **state)
{
    (void)state;
    struct reqlog e = { .route = "render", .status = 401, .duration_ns = 1 * MS,
                        .error = "X-Auth-Token: missing or wrong", .queue_ns = -1, .browser = -1 };
    reqlog_format(line, sizeof(line), &e);
    assert_string_equal(line, "render request route=render status=401 bytes=0 duration_ms=1 "
                              "error=\"X-Auth-Token: missing or wrong\"");
    json_t *o = as_json();
    assert_int_equal(json_integer_value(json_object_get(o, "status")), 401);
    assert_null(json_object_get(o, "url_host"));
    json_decref(o);
}

static void test_error_leaves_out_what_the_client_sent(void **state)
{
    (void)state;
    struct reqlog e = { .route = "render", .status = 400,
                        .error = "renderKey: expected at most 2048 bytes, got \"eyJhbGciOi-secret...\"" };
    reqlog_format(line, sizeof(line), &e);
    assert_string_equal(line, "render request route=render status=400 bytes=0 duration_ms=0 "
                              "error=\"renderKey: expected at most 2048 bytes\"");
    /* quotes, backslashes and control characters cannot break the field */
    e.error = "cannot load the url: \"net\\ERR\"\x01\\";
    reqlog_format(line, sizeof(line), &e);
    assert_non_null(strstr(line, " error=\"cannot load the url: 'net/ERR'/\""));
    json_t *o = as_json();
    assert_string_equal(json_string_value(json_object_get(o, "error")), "cannot load the url: 'net/ERR'/");
    json_decref(o);
    /* an answer of 200 has no error even if one was set on the way */
    e.status = 200;
    reqlog_format(line, sizeof(line), &e);
    assert_null(strstr(line, "error"));
}

static void test_refused_after_the_query(void **state)
{
    (void)state;
    struct render_request req = png_req();
    req.height = 500;
    req.encoding = QUERY_ENCODING_PDF;
    struct reqlog e = { .route = "render", .status = 429, .url_host = "1234", .req = &req, .duration_ns = 0,
                        .error = "too many renders in progress" };
    reqlog_format(line, sizeof(line), &e);
    assert_string_equal(line, "render request route=render status=429 url_host=\"1234\" encoding=pdf width=1000 "
                              "height=500 bytes=0 duration_ms=0 error=\"too many renders in progress\"");
    json_t *o = as_json();
    /* a host of digits is still a string */
    assert_true(json_is_string(json_object_get(o, "url_host")));
    json_decref(o);
}

static void test_client_gone(void **state)
{
    (void)state;
    struct render_request req = png_req();
    struct reqlog e = {
        .route = "render", .status = 499, .url_host = "h", .req = &req, .duration_ns = 15016 * MS,
        .error = "the client went away", .submitted = 1, .queue_ns = 1 * MS, .browser = 0, .tries = 1,
        .steps = png_steps, .nsteps = 3, .gone = 1, .ran_ns = 15012 * MS, .stop_ns = 4 * MS, .render_status = 499,
    };
    reqlog_format(line, sizeof(line), &e);
    assert_string_equal(line, "render request route=render status=499 url_host=\"h\" encoding=png width=1000 "
                              "height=-1 bytes=0 duration_ms=15016 queue_ms=1 browser=0 tries=1 step_launch_ms=0 "
                              "step_newPage_ms=0 step_prepare_ms=3 ran_ms=15012 stop_ms=4 render_status=499 "
                              "error=\"the client went away\"");
    /* waited and never began: no queue time, no browser */
    e.queue_ns = -1;
    e.browser = -1;
    e.nsteps = 0;
    e.tries = 0;
    reqlog_format(line, sizeof(line), &e);
    assert_non_null(strstr(line, " duration_ms=15016 tries=0 ran_ms=15012"));
}

static void test_cut_to_the_buffer(void **state)
{
    (void)state;
    struct reqlog e = { .route = "render", .status = 500, .error = "x" };
    char small[16];
    size_t n = reqlog_format(small, sizeof(small), &e);
    assert_int_equal(n, strlen(small));
    assert_true(n < sizeof(small));
    assert_int_equal(reqlog_format(small, 0, &e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_answered),
        cmocka_unit_test(test_readiness_waits),
        cmocka_unit_test(test_id_and_page_counts),
        cmocka_unit_test(test_csv_answered),
        cmocka_unit_test(test_refused_before_the_query),
        cmocka_unit_test(test_error_leaves_out_what_the_client_sent),
        cmocka_unit_test(test_refused_after_the_query),
        cmocka_unit_test(test_client_gone),
        cmocka_unit_test(test_cut_to_the_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
