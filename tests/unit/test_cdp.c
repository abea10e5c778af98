/* CDP messages: every builder read back as JSON, every extractor on replies
 * and events recorded from Debian's chromium 156 (tests/fixtures/cdp, made
 * by tools/cdp-record.py), and frames that are truncated, garbage, of the
 * wrong types or too large. jansson allocates through cmocka here too, so a
 * json_t left behind fails the test like any other leak. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libwebsockets.h>

#include "buf.h"
#include "cdp.h"

#define SESSION "B0960AA7E444998D5683F17F6038956E"

static void *test_json_malloc(size_t n)
{
    return malloc(n);
}

static void test_json_free(void *p)
{
    free(p);
}

/* A recorded frame, without the newline the file ends with. */
static char *fixture(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/cdp/%s.json", FIXTURES_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open fixture %s", path);
    char *text = malloc(1 << 16);
    size_t n = fread(text, 1, (1 << 16) - 1, f);
    fclose(f);
    assert_true(n > 0 && n < (1 << 16) - 1);
    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        n--;
    text[n] = '\0';
    *len = n;
    return text;
}

static void parse_fixture(const char *name, struct cdp_msg *m)
{
    size_t len;
    char *text = fixture(name, &len);
    int rc = cdp_msg_parse(m, text, len);
    if (rc != 0)
        fail_msg("fixture %s: rc=%d why=%s", name, rc, m->why);
    free(text);
}

static int parse_str(struct cdp_msg *m, const char *text)
{
    return cdp_msg_parse(m, text, strlen(text));
}

/* The command the builder appended from offset `from`, parsed back, checked
 * for id, method and session; returns it (the caller decrefs). */
static json_t *built(const struct buf *b, size_t from, int id, const char *method,
                     const char *session)
{
    json_error_t err;
    assert_true(b->len > from);
    json_t *msg = json_loadb(b->data + from, b->len - from, JSON_REJECT_DUPLICATES, &err);
    if (!msg)
        fail_msg("builder output is not JSON: %s: %s", err.text, b->data + from);
    assert_true(json_is_object(msg));
    assert_true(json_is_integer(json_object_get(msg, "id")));
    assert_int_equal(json_integer_value(json_object_get(msg, "id")), id);
    assert_string_equal(json_string_value(json_object_get(msg, "method")), method);
    json_t *s = json_object_get(msg, "sessionId");
    if (session)
        assert_string_equal(json_string_value(s), session);
    else
        assert_null(s);
    /* nothing else at the top level */
    size_t keys = 2 + (session != NULL) + (json_object_get(msg, "params") != NULL);
    assert_int_equal(json_object_size(msg), keys);
    return msg;
}

static json_t *params_of(json_t *msg)
{
    json_t *p = json_object_get(msg, "params");
    assert_true(json_is_object(p));
    return p;
}

static const char *pstr(json_t *p, const char *key)
{
    json_t *v = json_object_get(p, key);
    if (!json_is_string(v))
        fail_msg("params.%s is not a string", key);
    return json_string_value(v);
}

static int pbool(json_t *p, const char *key)
{
    json_t *v = json_object_get(p, key);
    if (!json_is_boolean(v))
        fail_msg("params.%s is not a boolean", key);
    return json_is_true(v);
}

static double pnum(json_t *p, const char *key)
{
    json_t *v = json_object_get(p, key);
    if (!json_is_number(v))
        fail_msg("params.%s is not a number", key);
    return json_number_value(v);
}

/* Builders. */

static void test_ids_increase_and_wrap(void **state)
{
    (void)state;
    struct cdp c;
    struct buf b;
    cdp_init(&c);
    buf_init(&b);
    assert_int_equal(cdp_browser_get_version(&c, &b), 1);
    assert_int_equal(cdp_browser_get_version(&c, &b), 2);
    assert_int_equal(cdp_page_enable(&c, &b, SESSION), 3);
    c.last_id = INT_MAX - 1;
    assert_int_equal(cdp_browser_get_version(&c, &b), INT_MAX);
    /* 0 and negatives are not ids: wrap to 1 */
    size_t from = b.len;
    assert_int_equal(cdp_browser_get_version(&c, &b), 1);
    json_decref(built(&b, from, 1, "Browser.getVersion", NULL));
    buf_fini(&b);
}

static void test_build_appends_and_failure_leaves_nothing(void **state)
{
    (void)state;
    struct cdp c;
    struct buf b;
    cdp_init(&c);
    buf_init(&b);
    /* room the websocket layer keeps in front (LWS_PRE) survives */
    buf_append(&b, "PRE", 3);
    int id = cdp_browser_get_version(&c, &b);
    assert_int_equal(id, 1);
    assert_memory_equal(b.data, "PRE", 3);
    json_t *m = built(&b, 3, 1, "Browser.getVersion", NULL);
    assert_null(json_object_get(m, "params"));
    json_decref(m);
    size_t len = b.len;
    /* a refused command neither writes nor uses an id */
    assert_int_equal(cdp_page_navigate(&c, &b, SESSION, "http://a/\xff\xfe"), -EINVAL);
    assert_int_equal(cdp_page_navigate(&c, &b, NULL, "http://a/"), -EINVAL);
    assert_int_equal(b.len, len);
    assert_int_equal(strlen(b.data), len);
    assert_int_equal(cdp_browser_get_version(&c, &b), 2);
    buf_fini(&b);
}

static void test_build_browser_commands(void **state)
{
    (void)state;
    struct cdp c;
    struct buf b;
    cdp_init(&c);
    buf_init(&b);
    json_t *m, *p;

    assert_int_equal(cdp_create_browser_context(&c, &b), 1);
    m = built(&b, 0, 1, "Target.createBrowserContext", NULL);
    p = params_of(m);
    assert_true(pbool(p, "disposeOnDetach"));
    json_decref(m);

    buf_reset(&b);
    assert_int_equal(cdp_create_target(&c, &b, "CTX1"), 2);
    m = built(&b, 0, 2, "Target.createTarget", NULL);
    p = params_of(m);
    assert_string_equal(pstr(p, "url"), "about:blank");
    assert_string_equal(pstr(p, "browserContextId"), "CTX1");
    json_decref(m);

    buf_reset(&b);
    assert_int_equal(cdp_attach_to_target(&c, &b, "T1"), 3);
    m = built(&b, 0, 3, "Target.attachToTarget", NULL);
    p = params_of(m);
    assert_string_equal(pstr(p, "targetId"), "T1");
    assert_true(pbool(p, "flatten"));
    json_decref(m);

    buf_reset(&b);
    assert_int_equal(cdp_close_target(&c, &b, "T1"), 4);
    m = built(&b, 0, 4, "Target.closeTarget", NULL);
    assert_string_equal(pstr(params_of(m), "targetId"), "T1");
    json_decref(m);

    buf_reset(&b);
    assert_int_equal(cdp_dispose_browser_context(&c, &b, "CTX1"), 5);
    m = built(&b, 0, 5, "Target.disposeBrowserContext", NULL);
    assert_string_equal(pstr(params_of(m), "browserContextId"), "CTX1");
    json_decref(m);

    buf_reset(&b);
    assert_int_equal(cdp_set_download_behavior(&c, &b, "CTX1", "/run/rv/dl-1"), 6);
    m = built(&b, 0, 6, "Browser.setDownloadBehavior", NULL);
    p = params_of(m);
    assert_string_equal(pstr(p, "behavior"), "allowAndName");
    assert_string_equal(pstr(p, "browserContextId"), "CTX1");
    assert_string_equal(pstr(p, "downloadPath"), "/run/rv/dl-1");
    assert_true(pbool(p, "eventsEnabled"));
    json_decref(m);
    assert_int_equal(cdp_set_download_behavior(&c, &b, "CTX1", "relative/dir"), -EINVAL);
    assert_int_equal(cdp_set_download_behavior(&c, &b, NULL, "/tmp"), -EINVAL);

    assert_int_equal(cdp_create_target(&c, &b, NULL), -EINVAL);
    assert_int_equal(cdp_create_target(&c, &b, ""), -EINVAL);
    assert_int_equal(cdp_attach_to_target(&c, &b, NULL), -EINVAL);
    assert_int_equal(cdp_close_target(&c, &b, ""), -EINVAL);
    assert_int_equal(cdp_dispose_browser_context(&c, &b, NULL), -EINVAL);
    buf_fini(&b);
}

static void test_build_page_commands(void **state)
{
    (void)state;
    struct cdp c;
    struct buf b;
    cdp_init(&c);
    buf_init(&b);
    json_t *m, *p;

    assert_int_equal(cdp_page_enable(&c, &b, SESSION), 1);
    m = built(&b, 0, 1, "Page.enable", SESSION);
    assert_null(json_object_get(m, "params"));
    json_decref(m);

    buf_reset(&b);
    assert_int_equal(cdp_page_set_lifecycle_events(&c, &b, SESSION, 7), 2);
    m = built(&b, 0, 2, "Page.setLifecycleEventsEnabled", SESSION);
    assert_true(pbool(params_of(m), "enabled"));
    json_decref(m);

    /* quotes, backslashes, control characters and UTF-8 come back intact */
    const char *url = "http://grafana:3000/d-solo/x?var=\"a\\b\"&t=\xc3\xa9\t&x=</script>";
    buf_reset(&b);
    assert_int_equal(cdp_page_navigate(&c, &b, SESSION, url), 3);
    m = built(&b, 0, 3, "Page.navigate", SESSION);
    assert_string_equal(pstr(params_of(m), "url"), url);
    json_decref(m);

    buf_reset(&b);
    assert_int_equal(cdp_page_get_layout_metrics(&c, &b, SESSION), 4);
    json_decref(built(&b, 0, 4, "Page.getLayoutMetrics", SESSION));

    buf_reset(&b);
    assert_int_equal(cdp_page_handle_dialog(&c, &b, SESSION, 0), 5);
    m = built(&b, 0, 5, "Page.handleJavaScriptDialog", SESSION);
    assert_false(pbool(params_of(m), "accept"));
    json_decref(m);

    buf_reset(&b);
    assert_int_equal(cdp_runtime_enable(&c, &b, SESSION), 6);
    json_decref(built(&b, 0, 6, "Runtime.enable", SESSION));

    buf_reset(&b);
    assert_int_equal(cdp_runtime_evaluate(&c, &b, SESSION, "1 + '\"'", 1), 7);
    m = built(&b, 0, 7, "Runtime.evaluate", SESSION);
    p = params_of(m);
    assert_string_equal(pstr(p, "expression"), "1 + '\"'");
    assert_true(pbool(p, "returnByValue"));
    assert_true(pbool(p, "awaitPromise"));
    json_decref(m);

    buf_reset(&b);
    assert_int_equal(cdp_runtime_evaluate(&c, &b, SESSION, "x", 0), 8);
    m = built(&b, 0, 8, "Runtime.evaluate", SESSION);
    assert_false(pbool(params_of(m), "awaitPromise"));
    json_decref(m);

    buf_reset(&b);
    assert_int_equal(cdp_inspector_enable(&c, &b, SESSION), 9);
    json_decref(built(&b, 0, 9, "Inspector.enable", SESSION));

    buf_reset(&b);
    assert_int_equal(cdp_network_enable(&c, &b, SESSION), 10);
    json_decref(built(&b, 0, 10, "Network.enable", SESSION));

    /* page commands need a session */
    assert_int_equal(cdp_page_enable(&c, &b, NULL), -EINVAL);
    assert_int_equal(cdp_page_enable(&c, &b, ""), -EINVAL);
    assert_int_equal(cdp_network_enable(&c, &b, NULL), -EINVAL);
    assert_int_equal(cdp_runtime_evaluate(&c, &b, SESSION, "", 0), -EINVAL);
    assert_int_equal(cdp_runtime_evaluate(&c, &b, SESSION, NULL, 0), -EINVAL);
    assert_int_equal(cdp_page_get_layout_metrics(&c, &b, NULL), -EINVAL);
    buf_fini(&b);
}

static void test_build_emulation(void **state)
{
    (void)state;
    struct cdp c;
    struct buf b;
    cdp_init(&c);
    buf_init(&b);
    json_t *m, *p;

    assert_int_equal(cdp_set_device_metrics(&c, &b, SESSION, 1000, 500, 1.5), 1);
    m = built(&b, 0, 1, "Emulation.setDeviceMetricsOverride", SESSION);
    p = params_of(m);
    assert_true(json_is_integer(json_object_get(p, "width")));
    assert_int_equal(pnum(p, "width"), 1000);
    assert_int_equal(pnum(p, "height"), 500);
    assert_true(pnum(p, "deviceScaleFactor") == 1.5);
    assert_false(pbool(p, "mobile"));
    json_decref(m);

    assert_int_equal(cdp_set_device_metrics(&c, &b, SESSION, 0, 500, 1), -EINVAL);
    assert_int_equal(cdp_set_device_metrics(&c, &b, SESSION, 1000, -1, 1), -EINVAL);
    assert_int_equal(cdp_set_device_metrics(&c, &b, SESSION, CDP_VIEWPORT_MAX + 1, 5, 1), -EINVAL);
    assert_int_equal(cdp_set_device_metrics(&c, &b, SESSION, 10, 10, 0), -EINVAL);
    assert_int_equal(cdp_set_device_metrics(&c, &b, SESSION, 10, 10, -2), -EINVAL);
    assert_int_equal(cdp_set_device_metrics(&c, &b, SESSION, 10, 10, NAN), -EINVAL);
    assert_int_equal(cdp_set_device_metrics(&c, &b, SESSION, 10, 10, INFINITY), -EINVAL);
    assert_int_equal(cdp_set_device_metrics(&c, &b, SESSION, 10, 10, CDP_SCALE_MAX * 2), -EINVAL);
    assert_int_equal(cdp_set_device_metrics(&c, &b, NULL, 10, 10, 1), -EINVAL);

    buf_reset(&b);
    assert_int_equal(cdp_set_timezone(&c, &b, SESSION, "Europe/Paris"), 2);
    m = built(&b, 0, 2, "Emulation.setTimezoneOverride", SESSION);
    assert_string_equal(pstr(params_of(m), "timezoneId"), "Europe/Paris");
    json_decref(m);
    assert_int_equal(cdp_set_timezone(&c, &b, SESSION, ""), -EINVAL);
    assert_int_equal(cdp_set_timezone(&c, &b, SESSION, NULL), -EINVAL);
    buf_fini(&b);
}

static void test_build_headers_and_cookie(void **state)
{
    (void)state;
    struct cdp c;
    struct buf b;
    cdp_init(&c);
    buf_init(&b);
    json_t *m, *p;

    const char *one[] = { "Accept-Language", "fr-FR,fr;q=0.9", NULL };
    assert_int_equal(cdp_set_extra_headers(&c, &b, SESSION, one), 1);
    m = built(&b, 0, 1, "Network.setExtraHTTPHeaders", SESSION);
    p = json_object_get(params_of(m), "headers");
    assert_true(json_is_object(p));
    assert_int_equal(json_object_size(p), 1);
    assert_string_equal(pstr(p, "Accept-Language"), "fr-FR,fr;q=0.9");
    json_decref(m);

    const char *two[] = { "Accept-Language", "de", "X-Test", "1", NULL };
    buf_reset(&b);
    assert_int_equal(cdp_set_extra_headers(&c, &b, SESSION, two), 2);
    m = built(&b, 0, 2, "Network.setExtraHTTPHeaders", SESSION);
    p = json_object_get(params_of(m), "headers");
    assert_int_equal(json_object_size(p), 2);
    assert_string_equal(pstr(p, "X-Test"), "1");
    json_decref(m);

    const char *odd[] = { "Accept-Language", NULL };
    const char *none[] = { NULL };
    const char *empty_value[] = { "Accept-Language", "", NULL };
    const char *bad_utf8[] = { "Accept-Language", "\xc3", NULL };
    assert_int_equal(cdp_set_extra_headers(&c, &b, SESSION, odd), -EINVAL);
    assert_int_equal(cdp_set_extra_headers(&c, &b, SESSION, none), -EINVAL);
    assert_int_equal(cdp_set_extra_headers(&c, &b, SESSION, NULL), -EINVAL);
    assert_int_equal(cdp_set_extra_headers(&c, &b, SESSION, empty_value), -EINVAL);
    assert_int_equal(cdp_set_extra_headers(&c, &b, SESSION, bad_utf8), -EINVAL);

    buf_reset(&b);
    assert_int_equal(cdp_set_cookie(&c, &b, SESSION, "renderKey", "k3y", "grafana.local"), 3);
    m = built(&b, 0, 3, "Network.setCookie", SESSION);
    p = params_of(m);
    assert_string_equal(pstr(p, "name"), "renderKey");
    assert_string_equal(pstr(p, "value"), "k3y");
    assert_string_equal(pstr(p, "domain"), "grafana.local");
    assert_string_equal(pstr(p, "path"), "/");
    json_decref(m);
    /* an IPv6 address, with or without brackets: through url, no domain */
    buf_reset(&b);
    const char *v6[][2] = {
        { "[::1]", "http://[::1]/" }, { "::1", "http://[::1]/" }, { "2001:db8::5", "http://[2001:db8::5]/" },
        { "[2001:db8::5]", "http://[2001:db8::5]/" }, { "::ffff:10.0.0.1", "http://[::ffff:10.0.0.1]/" },
    };
    for (size_t i = 0; i < sizeof(v6) / sizeof(v6[0]); i++) {
        int id = cdp_set_cookie(&c, &b, SESSION, "renderKey", "k6", v6[i][0]);
        assert_true(id > 0);
        m = built(&b, 0, id, "Network.setCookie", SESSION);
        p = params_of(m);
        assert_string_equal(pstr(p, "url"), v6[i][1]);
        assert_null(json_object_get(p, "domain"));
        assert_string_equal(pstr(p, "name"), "renderKey");
        assert_string_equal(pstr(p, "value"), "k6");
        assert_string_equal(pstr(p, "path"), "/");
        json_decref(m);
        buf_reset(&b);
    }
    /* an IPv4 address is a domain as a name is */
    int id4 = cdp_set_cookie(&c, &b, SESSION, "renderKey", "k4", "127.0.0.1");
    m = built(&b, 0, id4, "Network.setCookie", SESSION);
    assert_string_equal(pstr(params_of(m), "domain"), "127.0.0.1");
    assert_null(json_object_get(params_of(m), "url"));
    json_decref(m);
    buf_reset(&b);
    const char *broken[] = { "[::1", "::1]", "[]", "::g", "[::1]:80", "1:2:3:4:5:6:7:8:9", "[grafana]" };
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++)
        assert_int_equal(cdp_set_cookie(&c, &b, SESSION, "renderKey", "k", broken[i]), -EINVAL);
    assert_int_equal(b.len, 0);
    assert_int_equal(cdp_set_cookie(&c, &b, SESSION, "renderKey", "k", NULL), -EINVAL);
    assert_int_equal(cdp_set_cookie(&c, &b, SESSION, "renderKey", "", "d"), -EINVAL);
    buf_fini(&b);
}

static void test_build_screenshot(void **state)
{
    (void)state;
    struct cdp c;
    struct buf b;
    cdp_init(&c);
    buf_init(&b);
    json_t *m, *p;

    assert_int_equal(cdp_page_capture_screenshot(&c, &b, SESSION, NULL), 1);
    m = built(&b, 0, 1, "Page.captureScreenshot", SESSION);
    p = params_of(m);
    assert_string_equal(pstr(p, "format"), "png");
    assert_int_equal(json_object_size(p), 1);
    json_decref(m);

    struct cdp_screenshot full = { .full_page = 1, .width = 1000, .height = 4321.5 };
    buf_reset(&b);
    assert_int_equal(cdp_page_capture_screenshot(&c, &b, SESSION, &full), 2);
    m = built(&b, 0, 2, "Page.captureScreenshot", SESSION);
    p = params_of(m);
    assert_string_equal(pstr(p, "format"), "png");
    assert_true(pbool(p, "captureBeyondViewport"));
    assert_null(json_object_get(p, "optimizeForSpeed"));
    json_t *clip = json_object_get(p, "clip");
    assert_true(json_is_object(clip));
    assert_true(pnum(clip, "x") == 0);
    assert_true(pnum(clip, "y") == 0);
    assert_true(pnum(clip, "width") == 1000);
    assert_true(pnum(clip, "height") == 4321.5);
    assert_true(pnum(clip, "scale") == 1);
    json_decref(m);

    struct cdp_screenshot fast = { .optimize_for_speed = 1 };
    buf_reset(&b);
    assert_int_equal(cdp_page_capture_screenshot(&c, &b, SESSION, &fast), 3);
    m = built(&b, 0, 3, "Page.captureScreenshot", SESSION);
    p = params_of(m);
    assert_true(pbool(p, "optimizeForSpeed"));
    assert_null(json_object_get(p, "clip"));
    assert_null(json_object_get(p, "captureBeyondViewport"));
    json_decref(m);

    struct cdp_screenshot bad = { .full_page = 1, .width = 0, .height = 10 };
    assert_int_equal(cdp_page_capture_screenshot(&c, &b, SESSION, &bad), -EINVAL);
    bad.width = 10;
    bad.height = NAN;
    assert_int_equal(cdp_page_capture_screenshot(&c, &b, SESSION, &bad), -EINVAL);
    bad.height = 2.0 * CDP_VIEWPORT_MAX;
    assert_int_equal(cdp_page_capture_screenshot(&c, &b, SESSION, &bad), -EINVAL);
    assert_int_equal(cdp_page_capture_screenshot(&c, &b, NULL, NULL), -EINVAL);
    buf_fini(&b);
}

static void test_build_pdf(void **state)
{
    (void)state;
    struct cdp c;
    struct buf b;
    cdp_init(&c);
    buf_init(&b);
    json_t *m, *p;

    struct cdp_pdf defaults = { 0 };
    assert_int_equal(cdp_page_print_to_pdf(&c, &b, SESSION, &defaults), 1);
    m = built(&b, 0, 1, "Page.printToPDF", SESSION);
    p = params_of(m);
    assert_false(pbool(p, "landscape"));
    assert_false(pbool(p, "printBackground"));
    assert_null(json_object_get(p, "paperWidth"));
    assert_null(json_object_get(p, "paperHeight"));
    assert_null(json_object_get(p, "scale"));
    assert_null(json_object_get(p, "pageRanges"));
    json_decref(m);

    struct cdp_pdf opts = { .landscape = 1, .print_background = 1, .scale = 0.5,
                            .page_ranges = "1-2, 4" };
    assert_int_equal(cdp_pdf_paper("A4", &opts.paper_width, &opts.paper_height), 0);
    buf_reset(&b);
    assert_int_equal(cdp_page_print_to_pdf(&c, &b, SESSION, &opts), 2);
    m = built(&b, 0, 2, "Page.printToPDF", SESSION);
    p = params_of(m);
    assert_true(pbool(p, "landscape"));
    assert_true(pbool(p, "printBackground"));
    assert_true(pnum(p, "paperWidth") == 8.27);
    assert_true(pnum(p, "paperHeight") == 11.7);
    assert_true(pnum(p, "scale") == 0.5);
    assert_string_equal(pstr(p, "pageRanges"), "1-2, 4");
    json_decref(m);

    struct cdp_pdf bad = { .scale = 3 };
    assert_int_equal(cdp_page_print_to_pdf(&c, &b, SESSION, &bad), -EINVAL);
    bad.scale = 0.05;
    assert_int_equal(cdp_page_print_to_pdf(&c, &b, SESSION, &bad), -EINVAL);
    bad.scale = 0;
    bad.paper_width = -8;
    assert_int_equal(cdp_page_print_to_pdf(&c, &b, SESSION, &bad), -EINVAL);
    bad.paper_width = NAN;
    assert_int_equal(cdp_page_print_to_pdf(&c, &b, SESSION, &bad), -EINVAL);
    bad.paper_width = 0;
    bad.page_ranges = "\xff";
    assert_int_equal(cdp_page_print_to_pdf(&c, &b, SESSION, &bad), -EINVAL);
    assert_int_equal(cdp_page_print_to_pdf(&c, &b, SESSION, NULL), -EINVAL);

    double w = 0, h = 0;
    assert_int_equal(cdp_pdf_paper("letter", &w, &h), 0);
    assert_true(w == 8.5 && h == 11);
    assert_int_equal(cdp_pdf_paper("LEDGER", &w, &h), 0);
    assert_true(w == 17 && h == 11);
    assert_int_equal(cdp_pdf_paper("a6", &w, &h), 0);
    assert_true(w == 4.13 && h == 5.83);
    assert_int_equal(cdp_pdf_paper("a7", &w, &h), -EINVAL);
    assert_int_equal(cdp_pdf_paper("", &w, &h), -EINVAL);
    assert_int_equal(cdp_pdf_paper(NULL, &w, &h), -EINVAL);
    buf_fini(&b);
}

static void test_build_rejects_bad_arguments(void **state)
{
    (void)state;
    struct cdp c;
    struct buf b;
    cdp_init(&c);
    buf_init(&b);

    char id[CDP_ID_MAX + 2];
    memset(id, 'A', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    assert_int_equal(cdp_page_enable(&c, &b, id), -EINVAL);
    assert_int_equal(cdp_create_target(&c, &b, id), -EINVAL);
    id[CDP_ID_MAX] = '\0'; /* exactly the bound is fine */
    assert_int_equal(cdp_page_enable(&c, &b, id), 1);

    char *url = malloc(CDP_ARG_MAX + 2);
    memset(url, 'u', CDP_ARG_MAX + 1);
    url[CDP_ARG_MAX + 1] = '\0';
    size_t len = b.len;
    assert_int_equal(cdp_page_navigate(&c, &b, SESSION, url), -EINVAL);
    assert_int_equal(cdp_set_timezone(&c, &b, SESSION, url), -EINVAL);
    url[CDP_ARG_MAX] = '\0';
    assert_int_equal(cdp_page_navigate(&c, &b, SESSION, url), 2);
    assert_true(b.len > len + CDP_ARG_MAX);
    free(url);

    /* the generic builder: a method is needed, params must be an object */
    assert_int_equal(cdp_command(&c, &b, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(cdp_command(&c, &b, NULL, "", NULL), -EINVAL);
    assert_int_equal(cdp_command(&c, &b, NULL, "X.y", json_array()), -EINVAL);
    assert_int_equal(cdp_command(&c, &b, "", "X.y", json_object()), -EINVAL);
    assert_int_equal(cdp_command(&c, &b, NULL, "X.\xff", NULL), -EINVAL);
    size_t from = b.len;
    assert_int_equal(cdp_command(&c, &b, SESSION, "Page.reload",
                                 json_pack("{s:b}", "ignoreCache", 1)), 3);
    json_t *m = built(&b, from, 3, "Page.reload", SESSION);
    assert_true(pbool(params_of(m), "ignoreCache"));
    json_decref(m);
    buf_fini(&b);
}

/* Replies. */

static void test_replies_recorded(void **state)
{
    (void)state;
    struct cdp_msg m;
    const char *s;

    parse_fixture("get_version", &m);
    assert_int_equal(m.type, CDP_MSG_RESULT);
    assert_int_equal(m.id, 1);
    assert_null(m.session);
    assert_int_equal(cdp_result_product(&m, &s), 0);
    assert_string_equal(s, "Chrome/156.0.8078.108");
    cdp_msg_fini(&m);

    parse_fixture("create_browser_context", &m);
    assert_int_equal(m.id, 2);
    assert_int_equal(cdp_result_browser_context_id(&m, &s), 0);
    assert_string_equal(s, "92933E98359CEFBD348EBEADDF0F5615");
    /* the other ids are not there */
    assert_int_equal(cdp_result_target_id(&m, &s), -EBADMSG);
    assert_int_equal(cdp_result_session_id(&m, &s), -EBADMSG);
    assert_int_equal(cdp_result_product(&m, &s), -EBADMSG);
    cdp_msg_fini(&m);

    parse_fixture("create_target", &m);
    assert_int_equal(m.id, 3);
    assert_int_equal(cdp_result_target_id(&m, &s), 0);
    assert_string_equal(s, "CAB9790AA9A900AB058D58775AFEB7BA");
    cdp_msg_fini(&m);

    parse_fixture("attach_to_target", &m);
    assert_int_equal(m.id, 4);
    assert_int_equal(cdp_result_session_id(&m, &s), 0);
    assert_string_equal(s, SESSION);
    cdp_msg_fini(&m);

    parse_fixture("page_enable", &m);
    assert_int_equal(m.type, CDP_MSG_RESULT);
    assert_int_equal(m.id, 5);
    assert_string_equal(m.session, SESSION);
    assert_int_equal(json_object_size(m.result), 0);
    cdp_msg_fini(&m);

    const char *names[] = { "set_cookie", "close_target", "dispose_browser_context",
                            "set_download_behavior", "handle_dialog" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        parse_fixture(names[i], &m);
        assert_int_equal(m.type, CDP_MSG_RESULT);
        assert_true(m.id > 0);
        cdp_msg_fini(&m);
    }

    const char *frame, *loader, *err;
    parse_fixture("navigate", &m);
    assert_int_equal(cdp_result_navigate(&m, &frame, &loader, &err), 0);
    assert_string_equal(frame, "CAB9790AA9A900AB058D58775AFEB7BA");
    assert_string_equal(loader, "0742030AF2611D616DB1396F18140785");
    assert_null(err);
    cdp_msg_fini(&m);

    parse_fixture("navigate_error", &m);
    assert_int_equal(m.type, CDP_MSG_RESULT);
    assert_int_equal(cdp_result_navigate(&m, &frame, &loader, &err), 0);
    assert_string_equal(err, "net::ERR_UNSAFE_PORT");
    assert_int_equal(cdp_result_is_download(&m), 0);
    cdp_msg_fini(&m);

    /* A url served as an attachment: the navigation "fails" into a download. */
    parse_fixture("navigate_download", &m);
    assert_int_equal(cdp_result_navigate(&m, &frame, &loader, &err), 0);
    assert_string_equal(err, "net::ERR_ABORTED");
    assert_int_equal(cdp_result_is_download(&m), 1);
    cdp_msg_fini(&m);
    parse_fixture("navigate", &m);
    assert_int_equal(cdp_result_is_download(&m), 0);
    cdp_msg_fini(&m);
    parse_fixture("error_method", &m);
    assert_int_equal(cdp_result_is_download(&m), 0);
    cdp_msg_fini(&m);
}

static void test_error_replies(void **state)
{
    (void)state;
    struct cdp_msg m;
    const char *s;

    parse_fixture("error_method", &m);
    assert_int_equal(m.type, CDP_MSG_ERROR);
    assert_int_equal(m.id, 46);
    assert_int_equal(m.error_code, -32601);
    assert_string_equal(m.error_message, "'Nope.nothing' wasn't found");
    assert_null(m.error_data);
    assert_string_equal(m.session, SESSION);
    assert_null(m.result);
    /* extractors say it was an error, not that the reply was malformed */
    assert_int_equal(cdp_result_session_id(&m, &s), -EREMOTEIO);
    assert_int_equal(cdp_result_navigate(&m, &s, &s, &s), -EREMOTEIO);
    struct cdp_value v;
    assert_int_equal(cdp_result_evaluate(&m, &v), -EREMOTEIO);
    cdp_msg_fini(&m);

    parse_fixture("error_params", &m);
    assert_int_equal(m.error_code, -32602);
    assert_string_equal(m.error_message, "Invalid parameters");
    assert_non_null(m.error_data);
    assert_non_null(strstr(m.error_data, "params.url"));
    cdp_msg_fini(&m);

    parse_fixture("error_session", &m);
    assert_int_equal(m.type, CDP_MSG_ERROR);
    assert_int_equal(m.error_code, -32001);
    assert_string_equal(m.error_message, "Session with given id not found.");
    assert_null(m.session);
    cdp_msg_fini(&m);

    parse_fixture("error_timezone", &m);
    assert_int_equal(m.error_code, -32602);
    assert_string_equal(m.error_message, "Invalid timezone id");
    cdp_msg_fini(&m);

    /* data of an odd type is dropped, the error still reads */
    assert_int_equal(parse_str(&m, "{\"id\":3,\"error\":{\"code\":-32000,\"message\":\"x\",\"data\":{}}}"), 0);
    assert_int_equal(m.type, CDP_MSG_ERROR);
    assert_null(m.error_data);
    cdp_msg_fini(&m);
}

static void test_layout_metrics(void **state)
{
    (void)state;
    struct cdp_msg m;
    double w = -1, h = -1;

    parse_fixture("layout_metrics", &m);
    assert_int_equal(cdp_result_content_size(&m, &w, &h), 0);
    assert_true(w == 1 && h == 19);
    cdp_msg_fini(&m);

    parse_fixture("layout_metrics_tall", &m);
    assert_int_equal(cdp_result_content_size(&m, &w, &h), 0);
    assert_true(w == 300 && h == 2000);
    cdp_msg_fini(&m);

    /* older Chrome: contentSize only */
    assert_int_equal(parse_str(&m, "{\"id\":1,\"result\":{\"contentSize\":{\"x\":0,\"y\":0,"
                                   "\"width\":640.5,\"height\":7000}}}"), 0);
    assert_int_equal(cdp_result_content_size(&m, &w, &h), 0);
    assert_true(w == 640.5 && h == 7000);
    cdp_msg_fini(&m);

    /* cssContentSize wins over contentSize (device pixels) */
    assert_int_equal(parse_str(&m, "{\"id\":1,\"result\":{\"contentSize\":{\"width\":2,\"height\":2},"
                                   "\"cssContentSize\":{\"width\":1,\"height\":1}}}"), 0);
    assert_int_equal(cdp_result_content_size(&m, &w, &h), 0);
    assert_true(w == 1 && h == 1);
    cdp_msg_fini(&m);

    const char *bad[] = {
        "{\"id\":1,\"result\":{}}",
        "{\"id\":1,\"result\":{\"cssContentSize\":[]}}",
        "{\"id\":1,\"result\":{\"cssContentSize\":{\"width\":\"1\",\"height\":1}}}",
        "{\"id\":1,\"result\":{\"cssContentSize\":{\"width\":1}}}",
        "{\"id\":1,\"result\":{\"cssContentSize\":{\"width\":-1,\"height\":1}}}",
        "{\"id\":1,\"result\":{\"cssContentSize\":{\"width\":1,\"height\":1e999}}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse_str(&m, bad[i]) == 0) {
            if (cdp_result_content_size(&m, &w, &h) != -EBADMSG)
                fail_msg("accepted: %s", bad[i]);
        }
        cdp_msg_fini(&m);
    }
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void test_screenshot_and_pdf_data(void **state)
{
    (void)state;
    struct cdp_msg m;
    const char *data;
    size_t len;
    unsigned char *bytes;
    size_t n;
    static const unsigned char png_sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };

    /* a real 8x8 PNG, kept whole */
    parse_fixture("screenshot", &m);
    assert_int_equal(cdp_result_data(&m, &data, &len), 0);
    assert_int_equal(len, strlen(data));
    assert_int_equal(cdp_decode_base64(data, len, &bytes, &n), 0);
    assert_true(n > 33);
    assert_memory_equal(bytes, png_sig, 8);
    assert_memory_equal(bytes + 12, "IHDR", 4);
    assert_int_equal(be32(bytes + 16), 8);
    assert_int_equal(be32(bytes + 20), 8);
    assert_memory_equal(bytes + n - 8, "IEND", 4);
    free(bytes);
    cdp_msg_fini(&m);

    /* full page, 300x2000 CSS pixels at deviceScaleFactor 2 (cropped after IHDR) */
    parse_fixture("screenshot_full_page", &m);
    assert_int_equal(cdp_result_data(&m, &data, &len), 0);
    assert_int_equal(cdp_decode_base64(data, len, &bytes, &n), 0);
    assert_int_equal(n, 33);
    assert_memory_equal(bytes, png_sig, 8);
    assert_int_equal(be32(bytes + 16), 600);
    assert_int_equal(be32(bytes + 20), 4000);
    free(bytes);
    cdp_msg_fini(&m);

    parse_fixture("print_to_pdf", &m);
    assert_int_equal(cdp_result_data(&m, &data, &len), 0);
    assert_int_equal(cdp_decode_base64(data, len, &bytes, &n), 0);
    assert_memory_equal(bytes, "%PDF-1.4", 8);
    free(bytes);
    cdp_msg_fini(&m);

    assert_int_equal(parse_str(&m, "{\"id\":1,\"result\":{\"data\":\"\"}}"), 0);
    assert_int_equal(cdp_result_data(&m, &data, &len), -ENODATA);
    cdp_msg_fini(&m);
    assert_int_equal(parse_str(&m, "{\"id\":1,\"result\":{\"data\":7}}"), 0);
    assert_int_equal(cdp_result_data(&m, &data, &len), -EBADMSG);
    cdp_msg_fini(&m);
    assert_int_equal(parse_str(&m, "{\"id\":1,\"result\":{\"stream\":\"1\"}}"), 0);
    assert_int_equal(cdp_result_data(&m, &data, &len), -EBADMSG);
    cdp_msg_fini(&m);
}

static void test_evaluate(void **state)
{
    (void)state;
    struct cdp_msg m;
    struct cdp_value v;

    parse_fixture("evaluate_bool", &m);
    assert_int_equal(cdp_result_evaluate(&m, &v), 0);
    assert_int_equal(v.type, CDP_VALUE_BOOLEAN);
    assert_true(v.boolean);
    assert_null(v.exception);
    cdp_msg_fini(&m);

    parse_fixture("evaluate_number", &m);
    assert_int_equal(cdp_result_evaluate(&m, &v), 0);
    assert_int_equal(v.type, CDP_VALUE_NUMBER);
    assert_true(v.number == 42);
    cdp_msg_fini(&m);

    parse_fixture("evaluate_string", &m);
    assert_int_equal(cdp_result_evaluate(&m, &v), 0);
    assert_int_equal(v.type, CDP_VALUE_STRING);
    assert_string_equal(v.string, "hello");
    assert_int_equal(v.len, 5);
    cdp_msg_fini(&m);

    parse_fixture("evaluate_undefined", &m);
    assert_int_equal(cdp_result_evaluate(&m, &v), 0);
    assert_int_equal(v.type, CDP_VALUE_UNDEFINED);
    cdp_msg_fini(&m);

    parse_fixture("evaluate_object", &m);
    assert_int_equal(cdp_result_evaluate(&m, &v), 0);
    assert_int_equal(v.type, CDP_VALUE_JSON);
    assert_true(json_is_true(json_object_get(v.json, "ready")));
    cdp_msg_fini(&m);

    parse_fixture("evaluate_exception", &m);
    assert_int_equal(cdp_result_evaluate(&m, &v), -ENOEXEC);
    assert_non_null(v.exception);
    assert_non_null(strstr(v.exception, "TypeError: Cannot read properties of null"));
    assert_int_equal(v.type, CDP_VALUE_UNDEFINED);
    cdp_msg_fini(&m);

    parse_fixture("evaluate_rejected", &m);
    assert_int_equal(cdp_result_evaluate(&m, &v), -ENOEXEC);
    assert_non_null(strstr(v.exception, "Error: nope"));
    cdp_msg_fini(&m);

    /* exception without description: the details' text */
    assert_int_equal(parse_str(&m, "{\"id\":1,\"result\":{\"result\":{\"type\":\"undefined\"},"
                                   "\"exceptionDetails\":{\"text\":\"Uncaught\"}}}"), 0);
    assert_int_equal(cdp_result_evaluate(&m, &v), -ENOEXEC);
    assert_string_equal(v.exception, "Uncaught");
    cdp_msg_fini(&m);

    struct {
        const char *text;
        int rc;
        enum cdp_value_type type;
        double number;
    } cases[] = {
        { "{\"id\":1,\"result\":{\"result\":{\"type\":\"number\",\"unserializableValue\":\"NaN\"}}}", 0, CDP_VALUE_NUMBER, NAN },
        { "{\"id\":1,\"result\":{\"result\":{\"type\":\"number\",\"unserializableValue\":\"Infinity\"}}}", 0, CDP_VALUE_NUMBER, INFINITY },
        { "{\"id\":1,\"result\":{\"result\":{\"type\":\"number\",\"unserializableValue\":\"-Infinity\"}}}", 0, CDP_VALUE_NUMBER, -INFINITY },
        { "{\"id\":1,\"result\":{\"result\":{\"type\":\"number\",\"unserializableValue\":\"-0\"}}}", 0, CDP_VALUE_NUMBER, 0 },
        { "{\"id\":1,\"result\":{\"result\":{\"type\":\"number\",\"value\":1e300}}}", 0, CDP_VALUE_NUMBER, 1e300 },
        /* an integer jansson could not hold as int64 still reads */
        { "{\"id\":1,\"result\":{\"result\":{\"type\":\"number\",\"value\":100000000000000000000}}}", 0, CDP_VALUE_NUMBER, 1e20 },
        { "{\"id\":1,\"result\":{\"result\":{\"type\":\"object\",\"subtype\":\"null\",\"value\":null}}}", 0, CDP_VALUE_NULL, 0 },
        { "{\"id\":1,\"result\":{\"result\":{\"type\":\"object\",\"value\":[1,2]}}}", 0, CDP_VALUE_JSON, 0 },
        { "{\"id\":1,\"result\":{\"result\":{\"type\":\"bigint\",\"unserializableValue\":\"1n\"}}}", 0, CDP_VALUE_OTHER, 0 },
        { "{\"id\":1,\"result\":{\"result\":{\"type\":\"function\",\"value\":{}}}}", 0, CDP_VALUE_OTHER, 0 },
        { "{\"id\":1,\"result\":{}}", -EBADMSG, 0, 0 },
        { "{\"id\":1,\"result\":{\"result\":7}}", -EBADMSG, 0, 0 },
        { "{\"id\":1,\"result\":{\"result\":{}}}", -EBADMSG, 0, 0 },
        { "{\"id\":1,\"result\":{\"result\":{\"type\":1}}}", -EBADMSG, 0, 0 },
        { "{\"id\":1,\"result\":{\"result\":{\"type\":\"boolean\",\"value\":\"true\"}}}", -EBADMSG, 0, 0 },
        { "{\"id\":1,\"result\":{\"result\":{\"type\":\"boolean\"}}}", -EBADMSG, 0, 0 },
        { "{\"id\":1,\"result\":{\"result\":{\"type\":\"number\",\"value\":\"4\"}}}", -EBADMSG, 0, 0 },
        { "{\"id\":1,\"result\":{\"result\":{\"type\":\"number\",\"unserializableValue\":\"lots\"}}}", -EBADMSG, 0, 0 },
        { "{\"id\":1,\"result\":{\"result\":{\"type\":\"string\",\"value\":4}}}", -EBADMSG, 0, 0 },
        { "{\"id\":1,\"result\":{\"result\":{\"type\":\"object\",\"value\":true}}}", -EBADMSG, 0, 0 },
        { "{\"id\":1,\"result\":{\"result\":{\"type\":\"object\"}}}", -EBADMSG, 0, 0 },
        { "{\"id\":1,\"result\":{\"result\":{\"type\":\"undefined\"},\"exceptionDetails\":1}}", -EBADMSG, 0, 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(parse_str(&m, cases[i].text), 0);
        int rc = cdp_result_evaluate(&m, &v);
        if (rc != cases[i].rc)
            fail_msg("case %zu: rc %d, want %d: %s", i, rc, cases[i].rc, cases[i].text);
        if (rc == 0) {
            assert_int_equal(v.type, cases[i].type);
            if (v.type == CDP_VALUE_NUMBER) {
                if (isnan(cases[i].number))
                    assert_true(isnan(v.number));
                else
                    assert_true(v.number == cases[i].number);
            }
        }
        cdp_msg_fini(&m);
    }
    /* -0 keeps its sign */
    assert_int_equal(parse_str(&m, cases[3].text), 0);
    assert_int_equal(cdp_result_evaluate(&m, &v), 0);
    assert_true(signbit(v.number));
    cdp_msg_fini(&m);
}

/* Events. */

static void test_events_recorded(void **state)
{
    (void)state;
    struct cdp_msg m;

    struct {
        const char *name;
        enum cdp_event event;
    } kinds[] = {
        { "event_attached_to_target", CDP_EVENT_ATTACHED_TO_TARGET },
        { "event_detached_from_target", CDP_EVENT_DETACHED_FROM_TARGET },
        { "event_target_crashed", CDP_EVENT_TARGET_CRASHED },
        { "event_inspector_detached", CDP_EVENT_INSPECTOR_DETACHED },
        { "event_lifecycle_load", CDP_EVENT_LIFECYCLE },
        { "event_lifecycle_network_almost_idle", CDP_EVENT_LIFECYCLE },
        { "event_load_event_fired", CDP_EVENT_LOAD_EVENT_FIRED },
        { "event_dialog_opening", CDP_EVENT_DIALOG_OPENING },
        { "event_request_will_be_sent", CDP_EVENT_REQUEST_WILL_BE_SENT },
        { "event_loading_finished", CDP_EVENT_LOADING_FINISHED },
        { "event_loading_failed", CDP_EVENT_LOADING_FAILED },
        { "event_download_will_begin", CDP_EVENT_DOWNLOAD_WILL_BEGIN },
        { "event_download_completed", CDP_EVENT_DOWNLOAD_PROGRESS },
    };
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        parse_fixture(kinds[i].name, &m);
        assert_int_equal(m.type, CDP_MSG_EVENT);
        assert_int_equal(m.id, 0);
        assert_non_null(m.method);
        assert_true(json_is_object(m.params));
        if (m.event != kinds[i].event)
            fail_msg("%s: event %d, want %d", kinds[i].name, m.event, kinds[i].event);
        cdp_msg_fini(&m);
    }

    assert_int_equal(parse_str(&m, "{\"method\":\"Page.frameNavigated\",\"params\":{}}"), 0);
    assert_int_equal(m.event, CDP_EVENT_OTHER);
    assert_string_equal(m.method, "Page.frameNavigated");
    assert_null(cdp_msg_lost_session(&m));
    cdp_msg_fini(&m);

    /* an event without params parses; extractors then refuse it */
    assert_int_equal(parse_str(&m, "{\"method\":\"Page.lifecycleEvent\"}"), 0);
    assert_null(m.params);
    struct cdp_lifecycle lc;
    assert_int_equal(cdp_event_lifecycle(&m, &lc), -EBADMSG);
    cdp_msg_fini(&m);
}

static void test_lifecycle(void **state)
{
    (void)state;
    struct cdp_msg m;
    struct cdp_lifecycle lc;

    parse_fixture("event_lifecycle_load", &m);
    assert_string_equal(m.session, SESSION);
    assert_int_equal(cdp_event_lifecycle(&m, &lc), 0);
    assert_string_equal(lc.name, "load");
    assert_string_equal(lc.frame_id, "CAB9790AA9A900AB058D58775AFEB7BA");
    assert_string_equal(lc.loader_id, "0742030AF2611D616DB1396F18140785");
    assert_true(lc.timestamp > 10597.76 && lc.timestamp < 10597.77);
    cdp_msg_fini(&m);

    parse_fixture("event_lifecycle_network_almost_idle", &m);
    assert_int_equal(cdp_event_lifecycle(&m, &lc), 0);
    assert_string_equal(lc.name, "networkAlmostIdle");
    cdp_msg_fini(&m);

    /* not a lifecycle event */
    parse_fixture("event_load_event_fired", &m);
    assert_int_equal(cdp_event_lifecycle(&m, &lc), -EINVAL);
    cdp_msg_fini(&m);
    parse_fixture("page_enable", &m);
    assert_int_equal(cdp_event_lifecycle(&m, &lc), -EINVAL);
    cdp_msg_fini(&m);

    const char *bad[] = {
        "{\"method\":\"Page.lifecycleEvent\",\"params\":{\"frameId\":\"F\",\"loaderId\":\"L\",\"timestamp\":1}}",
        "{\"method\":\"Page.lifecycleEvent\",\"params\":{\"frameId\":\"F\",\"loaderId\":\"L\",\"name\":\"\",\"timestamp\":1}}",
        "{\"method\":\"Page.lifecycleEvent\",\"params\":{\"frameId\":1,\"loaderId\":\"L\",\"name\":\"load\",\"timestamp\":1}}",
        "{\"method\":\"Page.lifecycleEvent\",\"params\":{\"frameId\":\"F\",\"name\":\"load\",\"timestamp\":1}}",
        "{\"method\":\"Page.lifecycleEvent\",\"params\":{\"frameId\":\"F\",\"loaderId\":\"L\",\"name\":\"load\"}}",
        "{\"method\":\"Page.lifecycleEvent\",\"params\":{\"frameId\":\"F\",\"loaderId\":\"L\",\"name\":\"load\",\"timestamp\":\"1\"}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse_str(&m, bad[i]), 0);
        if (cdp_event_lifecycle(&m, &lc) != -EBADMSG)
            fail_msg("accepted: %s", bad[i]);
        cdp_msg_fini(&m);
    }
}

static void test_network_events(void **state)
{
    (void)state;
    struct cdp_msg m;
    struct cdp_request r;

    parse_fixture("event_request_will_be_sent", &m);
    assert_int_equal(cdp_event_request(&m, &r), 0);
    assert_string_equal(r.request_id, "3118.2");
    assert_string_equal(r.type, "Image");
    assert_string_equal(r.frame_id, "CAB9790AA9A900AB058D58775AFEB7BA");
    assert_false(r.redirect);
    assert_null(r.error_text);
    assert_true(r.timestamp > 0);
    assert_non_null(r.url);
    assert_true(strncmp(r.url, "http://127.0.0.1:", 17) == 0 && strstr(r.url, "/pixel.png"));
    cdp_msg_fini(&m);
    /* request.url of another type is refused; no request at all is fine */
    assert_int_equal(parse_str(&m, "{\"method\":\"Network.requestWillBeSent\",\"params\":{\"requestId\":\"1\","
                                   "\"timestamp\":1,\"request\":{\"url\":7}}}"), 0);
    assert_int_equal(cdp_event_request(&m, &r), -EBADMSG);
    cdp_msg_fini(&m);
    assert_int_equal(parse_str(&m, "{\"method\":\"Network.requestWillBeSent\",\"params\":{\"requestId\":\"1\","
                                   "\"timestamp\":1}}"), 0);
    assert_int_equal(cdp_event_request(&m, &r), 0);
    assert_null(r.url);
    cdp_msg_fini(&m);

    parse_fixture("event_loading_finished", &m);
    assert_int_equal(cdp_event_request(&m, &r), 0);
    assert_string_equal(r.request_id, "0742030AF2611D616DB1396F18140785");
    assert_null(r.type);
    cdp_msg_fini(&m);

    parse_fixture("event_loading_failed", &m);
    assert_int_equal(cdp_event_request(&m, &r), 0);
    assert_string_equal(r.request_id, "3118.5");
    assert_string_equal(r.type, "Fetch");
    assert_string_equal(r.error_text, "net::ERR_UNSAFE_PORT");
    assert_false(r.canceled);
    cdp_msg_fini(&m);

    /* a redirect is the same request again */
    assert_int_equal(parse_str(&m, "{\"method\":\"Network.requestWillBeSent\",\"params\":{"
                                   "\"requestId\":\"1.1\",\"timestamp\":2,\"redirectResponse\":{}}}"), 0);
    assert_int_equal(cdp_event_request(&m, &r), 0);
    assert_true(r.redirect);
    cdp_msg_fini(&m);

    assert_int_equal(parse_str(&m, "{\"method\":\"Network.loadingFailed\",\"params\":{"
                                   "\"requestId\":\"1.1\",\"timestamp\":2,\"errorText\":\"net::ERR_ABORTED\",\"canceled\":true}}"), 0);
    assert_int_equal(cdp_event_request(&m, &r), 0);
    assert_true(r.canceled);
    assert_null(r.blocked_reason);
    cdp_msg_fini(&m);
    assert_int_equal(parse_str(&m, "{\"method\":\"Network.loadingFailed\",\"params\":{\"requestId\":\"2\","
                                   "\"timestamp\":2,\"errorText\":\"net::ERR_BLOCKED_BY_RESPONSE\",\"blockedReason\":\"csp\"}}"),
                     0);
    assert_int_equal(cdp_event_request(&m, &r), 0);
    assert_string_equal(r.blocked_reason, "csp");
    assert_null(r.cors_error);
    cdp_msg_fini(&m);
    assert_int_equal(parse_str(&m, "{\"method\":\"Network.loadingFailed\",\"params\":{\"requestId\":\"3\","
                                   "\"timestamp\":2,\"errorText\":\"net::ERR_FAILED\",\"corsErrorStatus\":{"
                                   "\"corsError\":\"MissingAllowOriginHeader\",\"failedParameter\":\"\"}}}"),
                     0);
    assert_int_equal(cdp_event_request(&m, &r), 0);
    assert_string_equal(r.cors_error, "MissingAllowOriginHeader");
    cdp_msg_fini(&m);

    const char *bad[] = {
        "{\"method\":\"Network.loadingFailed\",\"params\":{\"requestId\":\"1\",\"timestamp\":2,\"errorText\":\"x\",\"blockedReason\":7}}",
        "{\"method\":\"Network.loadingFailed\",\"params\":{\"requestId\":\"1\",\"timestamp\":2,\"errorText\":\"x\",\"corsErrorStatus\":1}}",
        "{\"method\":\"Network.loadingFailed\",\"params\":{\"requestId\":\"1\",\"timestamp\":2,\"errorText\":\"x\",\"corsErrorStatus\":{\"corsError\":[]}}}",
        "{\"method\":\"Network.requestWillBeSent\",\"params\":{\"timestamp\":2}}",
        "{\"method\":\"Network.requestWillBeSent\",\"params\":{\"requestId\":5,\"timestamp\":2}}",
        "{\"method\":\"Network.requestWillBeSent\",\"params\":{\"requestId\":\"\",\"timestamp\":2}}",
        "{\"method\":\"Network.requestWillBeSent\",\"params\":{\"requestId\":\"1\"}}",
        "{\"method\":\"Network.requestWillBeSent\",\"params\":{\"requestId\":\"1\",\"timestamp\":2,\"type\":3}}",
        "{\"method\":\"Network.requestWillBeSent\",\"params\":{\"requestId\":\"1\",\"timestamp\":2,\"frameId\":[]}}",
        "{\"method\":\"Network.requestWillBeSent\",\"params\":{\"requestId\":\"1\",\"timestamp\":2,\"redirectResponse\":1}}",
        "{\"method\":\"Network.loadingFailed\",\"params\":{\"requestId\":\"1\",\"timestamp\":2}}",
        "{\"method\":\"Network.loadingFailed\",\"params\":{\"requestId\":\"1\",\"timestamp\":2,\"errorText\":\"x\",\"canceled\":\"no\"}}",
        "{\"method\":\"Network.loadingFinished\",\"params\":{\"requestId\":\"1\",\"timestamp\":null}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse_str(&m, bad[i]), 0);
        if (cdp_event_request(&m, &r) != -EBADMSG)
            fail_msg("accepted: %s", bad[i]);
        cdp_msg_fini(&m);
    }

    parse_fixture("event_lifecycle_load", &m);
    assert_int_equal(cdp_event_request(&m, &r), -EINVAL);
    cdp_msg_fini(&m);
}

/* What the page says about itself: console calls (their arguments joined,
 * where they were made), exceptions, the browser's log entries, and a
 * response's status; texts cut at the caller's bound. */
static void test_page_messages(void **state)
{
    (void)state;
    struct cdp_msg m;
    struct cdp_page_message pm;
    struct buf text;
    int cut;
    buf_init(&text);
    assert_int_equal(parse_str(&m, "{\"method\":\"Runtime.consoleAPICalled\",\"params\":{\"type\":\"error\","
                                   "\"args\":[{\"type\":\"string\",\"value\":\"failed:\"},{\"type\":\"number\",\"value\":42},"
                                   "{\"type\":\"object\",\"description\":\"Object\"},{\"type\":\"undefined\"},"
                                   "{\"type\":\"boolean\",\"value\":true}],\"executionContextId\":1,\"timestamp\":1,"
                                   "\"stackTrace\":{\"callFrames\":[{\"functionName\":\"\",\"scriptId\":\"5\","
                                   "\"url\":\"http://g:3000/public/app.js?v=1\",\"lineNumber\":9,\"columnNumber\":2}]}}}"),
                     0);
    assert_int_equal(cdp_event_page_message(&m, &pm, &text, 100, &cut), 0);
    assert_string_equal(pm.source, "console");
    assert_string_equal(pm.level, "error");
    assert_string_equal(text.data, "failed: 42 Object undefined true");
    assert_false(cut);
    assert_string_equal(pm.url, "http://g:3000/public/app.js?v=1");
    assert_int_equal(pm.line, 10);
    buf_reset(&text);
    assert_int_equal(cdp_event_page_message(&m, &pm, &text, 10, &cut), 0);
    assert_string_equal(text.data, "failed: 42");
    assert_true(cut);
    cdp_msg_fini(&m);

    buf_reset(&text);
    assert_int_equal(parse_str(&m, "{\"method\":\"Runtime.exceptionThrown\",\"params\":{\"timestamp\":1,"
                                   "\"exceptionDetails\":{\"exceptionId\":1,\"text\":\"Uncaught\",\"lineNumber\":6,"
                                   "\"columnNumber\":30,\"url\":\"http://g/page.html\",\"exception\":{\"type\":\"object\","
                                   "\"description\":\"Error: boom\\n    at http://g/page.html:7:31\"}}}}"),
                     0);
    assert_int_equal(cdp_event_page_message(&m, &pm, &text, 100, &cut), 0);
    assert_string_equal(pm.source, "exception");
    assert_string_equal(pm.level, "error");
    assert_string_equal(text.data, "Uncaught Error: boom");
    assert_string_equal(pm.url, "http://g/page.html");
    assert_int_equal(pm.line, 7);
    cdp_msg_fini(&m);

    buf_reset(&text);
    assert_int_equal(parse_str(&m, "{\"method\":\"Log.entryAdded\",\"params\":{\"entry\":{\"source\":\"security\","
                                   "\"level\":\"warning\",\"text\":\"Mixed content\",\"timestamp\":1}}}"),
                     0);
    assert_int_equal(cdp_event_page_message(&m, &pm, &text, 100, &cut), 0);
    assert_string_equal(pm.source, "security");
    assert_string_equal(pm.level, "warning");
    assert_string_equal(text.data, "Mixed content");
    assert_null(pm.url);
    assert_int_equal(pm.line, 0);
    cdp_msg_fini(&m);

    const char *bad[] = {
        "{\"method\":\"Runtime.consoleAPICalled\",\"params\":{\"args\":[]}}",
        "{\"method\":\"Runtime.consoleAPICalled\",\"params\":{\"type\":\"log\",\"args\":{}}}",
        "{\"method\":\"Runtime.exceptionThrown\",\"params\":{\"exceptionDetails\":{\"text\":5}}}",
        "{\"method\":\"Log.entryAdded\",\"params\":{\"entry\":{\"source\":\"network\",\"level\":\"error\"}}}",
        "{\"method\":\"Log.entryAdded\",\"params\":{}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        buf_reset(&text);
        assert_int_equal(parse_str(&m, bad[i]), 0);
        if (cdp_event_page_message(&m, &pm, &text, 100, &cut) != -EBADMSG)
            fail_msg("accepted: %s", bad[i]);
        assert_int_equal(text.len, 0);
        cdp_msg_fini(&m);
    }
    parse_fixture("event_lifecycle_load", &m);
    assert_int_equal(cdp_event_page_message(&m, &pm, &text, 100, &cut), -EINVAL);
    cdp_msg_fini(&m);

    struct cdp_response r;
    assert_int_equal(parse_str(&m, "{\"method\":\"Network.responseReceived\",\"params\":{\"requestId\":\"7.2\","
                                   "\"type\":\"Fetch\",\"timestamp\":1,\"response\":{\"url\":\"http://g/api/ds/query\","
                                   "\"status\":502,\"statusText\":\"Bad Gateway\"}}}"),
                     0);
    assert_int_equal(cdp_event_response(&m, &r), 0);
    assert_string_equal(r.request_id, "7.2");
    assert_string_equal(r.type, "Fetch");
    assert_string_equal(r.url, "http://g/api/ds/query");
    assert_int_equal(r.status, 502);
    cdp_msg_fini(&m);
    assert_int_equal(parse_str(&m, "{\"method\":\"Network.responseReceived\",\"params\":{\"requestId\":\"7.2\","
                                   "\"response\":{\"url\":\"http://g/\"}}}"),
                     0);
    assert_int_equal(cdp_event_response(&m, &r), -EBADMSG);
    cdp_msg_fini(&m);
    buf_fini(&text);
}

static void test_download_events(void **state)
{
    (void)state;
    struct cdp_msg m;
    struct cdp_download d;

    parse_fixture("event_download_will_begin", &m);
    assert_null(m.session); /* events of setDownloadBehavior come on the browser session */
    assert_int_equal(cdp_event_download(&m, &d), 0);
    assert_string_equal(d.guid, "9b0b9918-aded-4599-a3c0-dd751ab545ff");
    assert_string_equal(d.suggested_filename, "data.csv");
    assert_string_equal(d.frame_id, "CAB9790AA9A900AB058D58775AFEB7BA");
    assert_non_null(strstr(d.url, "/data.csv"));
    cdp_msg_fini(&m);

    /* The page session's twins, as a render sees them (a blob the page made). */
    parse_fixture("event_page_download_will_begin", &m);
    assert_string_equal(m.session, "48EA8A39D579403A68F1AD87DC460C1C");
    assert_int_equal(cdp_event_download(&m, &d), 0);
    assert_string_equal(d.guid, "0dd545f8-8543-46c8-9e8e-06fcd294f96a");
    assert_string_equal(d.suggested_filename, "panel data.csv");
    assert_string_equal(d.frame_id, "98BC67F432EBE7C1FB811088C886447E");
    cdp_msg_fini(&m);
    parse_fixture("event_page_download_completed", &m);
    assert_int_equal(cdp_event_download(&m, &d), 0);
    assert_int_equal(d.state, CDP_DOWNLOAD_COMPLETED);
    assert_true(d.received == 15 && d.total == 15);
    cdp_msg_fini(&m);

    parse_fixture("event_download_completed", &m);
    assert_int_equal(cdp_event_download(&m, &d), 0);
    assert_string_equal(d.guid, "9b0b9918-aded-4599-a3c0-dd751ab545ff");
    assert_int_equal(d.state, CDP_DOWNLOAD_COMPLETED);
    assert_true(d.received == 15 && d.total == 15);
    cdp_msg_fini(&m);

    assert_int_equal(parse_str(&m, "{\"method\":\"Browser.downloadProgress\",\"params\":{\"guid\":\"g-1\","
                                   "\"totalBytes\":0,\"receivedBytes\":0,\"state\":\"canceled\"}}"), 0);
    assert_int_equal(cdp_event_download(&m, &d), 0);
    assert_int_equal(d.state, CDP_DOWNLOAD_CANCELED);
    cdp_msg_fini(&m);

    assert_int_equal(parse_str(&m, "{\"method\":\"Browser.downloadProgress\",\"params\":{\"guid\":\"g-1\","
                                   "\"totalBytes\":10,\"receivedBytes\":3,\"state\":\"inProgress\"}}"), 0);
    assert_int_equal(cdp_event_download(&m, &d), 0);
    assert_int_equal(d.state, CDP_DOWNLOAD_IN_PROGRESS);
    cdp_msg_fini(&m);

    const char *bad[] = {
        /* a guid that would name another file */
        "{\"method\":\"Browser.downloadProgress\",\"params\":{\"guid\":\"../../etc/passwd\",\"totalBytes\":1,\"receivedBytes\":1,\"state\":\"completed\"}}",
        "{\"method\":\"Browser.downloadProgress\",\"params\":{\"guid\":\"a/b\",\"totalBytes\":1,\"receivedBytes\":1,\"state\":\"completed\"}}",
        "{\"method\":\"Browser.downloadProgress\",\"params\":{\"guid\":\"\",\"totalBytes\":1,\"receivedBytes\":1,\"state\":\"completed\"}}",
        "{\"method\":\"Browser.downloadProgress\",\"params\":{\"guid\":7,\"totalBytes\":1,\"receivedBytes\":1,\"state\":\"completed\"}}",
        "{\"method\":\"Browser.downloadProgress\",\"params\":{\"guid\":\"g\",\"totalBytes\":1,\"receivedBytes\":1,\"state\":\"done\"}}",
        "{\"method\":\"Browser.downloadProgress\",\"params\":{\"guid\":\"g\",\"totalBytes\":1,\"receivedBytes\":1}}",
        "{\"method\":\"Browser.downloadProgress\",\"params\":{\"guid\":\"g\",\"receivedBytes\":1,\"state\":\"completed\"}}",
        "{\"method\":\"Browser.downloadProgress\",\"params\":{\"guid\":\"g\",\"totalBytes\":-1,\"receivedBytes\":1,\"state\":\"completed\"}}",
        "{\"method\":\"Browser.downloadWillBegin\",\"params\":{\"guid\":\"g\",\"url\":\"u\"}}",
        "{\"method\":\"Page.downloadWillBegin\",\"params\":{\"guid\":\"g\",\"url\":\"u\",\"suggestedFilename\":\"f\"}}",
        "{\"method\":\"Browser.downloadWillBegin\",\"params\":{\"guid\":\"g\",\"suggestedFilename\":\"f\"}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse_str(&m, bad[i]), 0);
        if (cdp_event_download(&m, &d) != -EBADMSG)
            fail_msg("accepted: %s", bad[i]);
        cdp_msg_fini(&m);
    }
    char long_guid[CDP_ID_MAX + 100];
    snprintf(long_guid, sizeof(long_guid), "{\"method\":\"Browser.downloadWillBegin\",\"params\":{"
             "\"guid\":\"%0*d\",\"url\":\"u\",\"suggestedFilename\":\"f\"}}", CDP_ID_MAX + 1, 0);
    assert_int_equal(parse_str(&m, long_guid), 0);
    assert_int_equal(cdp_event_download(&m, &d), -EBADMSG);
    cdp_msg_fini(&m);
}

static void test_target_events(void **state)
{
    (void)state;
    struct cdp_msg m;
    const char *s, *t, *reason;

    parse_fixture("event_attached_to_target", &m);
    assert_null(m.session);
    assert_int_equal(cdp_event_target(&m, &s, &t), 0);
    assert_string_equal(s, SESSION);
    assert_string_equal(t, "CAB9790AA9A900AB058D58775AFEB7BA");
    assert_null(cdp_msg_lost_session(&m));
    cdp_msg_fini(&m);

    parse_fixture("event_detached_from_target", &m);
    assert_int_equal(cdp_event_target(&m, &s, &t), 0);
    assert_string_equal(s, SESSION);
    assert_string_equal(t, "CAB9790AA9A900AB058D58775AFEB7BA");
    /* sent on the browser session, naming the page's */
    assert_null(m.session);
    assert_string_equal(cdp_msg_lost_session(&m), SESSION);
    cdp_msg_fini(&m);

    /* targetId is deprecated in detachedFromTarget: its absence is fine */
    assert_int_equal(parse_str(&m, "{\"method\":\"Target.detachedFromTarget\",\"params\":{\"sessionId\":\"S1\"}}"), 0);
    assert_int_equal(cdp_event_target(&m, &s, &t), 0);
    assert_string_equal(s, "S1");
    assert_null(t);
    cdp_msg_fini(&m);

    parse_fixture("event_target_crashed", &m);
    assert_string_equal(cdp_msg_lost_session(&m), SESSION);
    assert_int_equal(cdp_event_target(&m, &s, &t), -EINVAL);
    cdp_msg_fini(&m);

    parse_fixture("event_inspector_detached", &m);
    assert_int_equal(cdp_event_inspector_detached(&m, &reason), 0);
    assert_string_equal(reason, "Render process gone.");
    assert_string_equal(cdp_msg_lost_session(&m), "0173FB0DBE825A08830FA36248B7B297");
    cdp_msg_fini(&m);

    /* replies and other events lose nothing */
    parse_fixture("attach_to_target", &m);
    assert_null(cdp_msg_lost_session(&m));
    assert_int_equal(cdp_event_inspector_detached(&m, &reason), -EINVAL);
    cdp_msg_fini(&m);

    const char *bad[] = {
        "{\"method\":\"Target.attachedToTarget\",\"params\":{\"sessionId\":\"S\"}}",
        "{\"method\":\"Target.attachedToTarget\",\"params\":{\"sessionId\":\"S\",\"targetInfo\":{}}}",
        "{\"method\":\"Target.attachedToTarget\",\"params\":{\"targetInfo\":{\"targetId\":\"T\"}}}",
        "{\"method\":\"Target.detachedFromTarget\",\"params\":{\"sessionId\":1}}",
        "{\"method\":\"Target.detachedFromTarget\",\"params\":{\"sessionId\":\"S\",\"targetId\":1}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse_str(&m, bad[i]), 0);
        if (cdp_event_target(&m, &s, &t) != -EBADMSG)
            fail_msg("accepted: %s", bad[i]);
        cdp_msg_fini(&m);
    }
    /* a detach whose sessionId is unusable loses no known session */
    assert_int_equal(parse_str(&m, bad[3]), 0);
    assert_null(cdp_msg_lost_session(&m));
    cdp_msg_fini(&m);

    assert_int_equal(parse_str(&m, "{\"method\":\"Inspector.detached\",\"params\":{\"reason\":[]}}"), 0);
    assert_int_equal(cdp_event_inspector_detached(&m, &reason), -EBADMSG);
    cdp_msg_fini(&m);
    assert_int_equal(parse_str(&m, "{\"method\":\"Inspector.detached\",\"sessionId\":\"S\"}"), 0);
    assert_int_equal(cdp_event_inspector_detached(&m, &reason), 0);
    assert_null(reason);
    cdp_msg_fini(&m);
}

static void test_result_extractors_refuse_bad_fields(void **state)
{
    (void)state;
    struct cdp_msg m;
    const char *s;

    const char *bad_ids[] = {
        "{\"id\":1,\"result\":{\"browserContextId\":5}}",
        "{\"id\":1,\"result\":{\"browserContextId\":\"\"}}",
        "{\"id\":1,\"result\":{\"browserContextId\":null}}",
        "{\"id\":1,\"result\":{}}",
    };
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        assert_int_equal(parse_str(&m, bad_ids[i]), 0);
        assert_int_equal(cdp_result_browser_context_id(&m, &s), -EBADMSG);
        cdp_msg_fini(&m);
    }
    char text[CDP_ID_MAX + 100];
    snprintf(text, sizeof(text), "{\"id\":1,\"result\":{\"sessionId\":\"%0*d\"}}", CDP_ID_MAX + 1, 0);
    assert_int_equal(parse_str(&m, text), 0);
    assert_int_equal(cdp_result_session_id(&m, &s), -EBADMSG);
    cdp_msg_fini(&m);
    snprintf(text, sizeof(text), "{\"id\":1,\"result\":{\"sessionId\":\"%0*d\"}}", CDP_ID_MAX, 0);
    assert_int_equal(parse_str(&m, text), 0);
    assert_int_equal(cdp_result_session_id(&m, &s), 0);
    assert_int_equal(strlen(s), CDP_ID_MAX);
    cdp_msg_fini(&m);

    const char *bad_products[] = {
        "{\"id\":1,\"result\":{\"product\":\"\"}}",
        "{\"id\":1,\"result\":{\"product\":1}}",
        "{\"id\":1,\"result\":{\"product\":\"Chrome\\n1\"}}",
        "{\"id\":1,\"result\":{\"product\":\"Chrome\\\"1\"}}",
        "{\"id\":1,\"result\":{\"product\":\"Chrome\\\\1\"}}",
        "{\"id\":1,\"result\":{\"product\":\"Chr\xc3\xb4me/1\"}}",
    };
    for (size_t i = 0; i < sizeof(bad_products) / sizeof(bad_products[0]); i++) {
        assert_int_equal(parse_str(&m, bad_products[i]), 0);
        if (cdp_result_product(&m, &s) != -EBADMSG)
            fail_msg("accepted: %s", bad_products[i]);
        cdp_msg_fini(&m);
    }
    snprintf(text, sizeof(text), "{\"id\":1,\"result\":{\"product\":\"%0*d\"}}", CDP_PRODUCT_MAX + 1, 0);
    assert_int_equal(parse_str(&m, text), 0);
    assert_int_equal(cdp_result_product(&m, &s), -EBADMSG);
    cdp_msg_fini(&m);
    assert_int_equal(parse_str(&m, "{\"id\":1,\"result\":{\"product\":\"HeadlessChrome/156.0.8078.108\"}}"), 0);
    assert_int_equal(cdp_result_product(&m, &s), 0);
    assert_string_equal(s, "HeadlessChrome/156.0.8078.108");
    cdp_msg_fini(&m);

    const char *f, *l, *e;
    const char *bad_nav[] = {
        "{\"id\":1,\"result\":{\"loaderId\":\"L\"}}",
        "{\"id\":1,\"result\":{\"frameId\":\"F\",\"loaderId\":3}}",
        "{\"id\":1,\"result\":{\"frameId\":\"F\",\"errorText\":false}}",
    };
    for (size_t i = 0; i < sizeof(bad_nav) / sizeof(bad_nav[0]); i++) {
        assert_int_equal(parse_str(&m, bad_nav[i]), 0);
        assert_int_equal(cdp_result_navigate(&m, &f, &l, &e), -EBADMSG);
        cdp_msg_fini(&m);
    }
    /* same-document navigation: no loaderId; empty errorText is no error */
    assert_int_equal(parse_str(&m, "{\"id\":1,\"result\":{\"frameId\":\"F\",\"errorText\":\"\"}}"), 0);
    assert_int_equal(cdp_result_navigate(&m, &f, &l, &e), 0);
    assert_null(l);
    assert_null(e);
    cdp_msg_fini(&m);

    /* result extractors on an event */
    parse_fixture("event_load_event_fired", &m);
    assert_int_equal(cdp_result_target_id(&m, &s), -EINVAL);
    double w, h;
    assert_int_equal(cdp_result_content_size(&m, &w, &h), -EINVAL);
    size_t len;
    assert_int_equal(cdp_result_data(&m, &s, &len), -EINVAL);
    cdp_msg_fini(&m);
}

/* Frames that are not replies or events. */

/* What a renderer taking pipes over reads: the page targets and the
 * browser contexts an earlier renderer left (as Chromium 156 answers). */
static void test_takeover_lists(void **state)
{
    (void)state;
    struct cdp c;
    struct buf b;
    cdp_init(&c);
    buf_init(&b);
    assert_int_equal(cdp_get_targets(&c, &b), 1);
    json_t *j = built(&b, 0, 1, "Target.getTargets", NULL);
    json_decref(j);
    buf_reset(&b);
    assert_int_equal(cdp_get_browser_contexts(&c, &b), 2);
    j = built(&b, 0, 2, "Target.getBrowserContexts", NULL);
    json_decref(j);
    buf_fini(&b);

    struct cdp_msg m;
    const char *id;
    static const char targets[] =
        "{\"id\":7,\"result\":{\"targetInfos\":["
        "{\"targetId\":\"AAA\",\"type\":\"page\",\"url\":\"about:blank\",\"attached\":false},"
        "{\"targetId\":\"SW1\",\"type\":\"service_worker\",\"url\":\"http://x/\"},"
        "{\"targetId\":\"BBB\",\"type\":\"page\",\"url\":\"http://grafana/d/x\",\"attached\":true}]}}";
    assert_int_equal(cdp_msg_parse(&m, targets, strlen(targets)), 0);
    assert_int_equal(cdp_result_page_target(&m, 0, &id), 0);
    assert_string_equal(id, "AAA");
    assert_int_equal(cdp_result_page_target(&m, 1, &id), 0);
    assert_string_equal(id, "BBB"); /* the service worker is not a page */
    assert_int_equal(cdp_result_page_target(&m, 2, &id), -ENOENT);
    assert_int_equal(cdp_result_browser_context(&m, 0, &id), -EBADMSG);
    cdp_msg_fini(&m);

    static const char contexts[] = "{\"id\":8,\"result\":{\"browserContextIds\":[\"C1\",\"C2\"]}}";
    assert_int_equal(cdp_msg_parse(&m, contexts, strlen(contexts)), 0);
    assert_int_equal(cdp_result_browser_context(&m, 1, &id), 0);
    assert_string_equal(id, "C2");
    assert_int_equal(cdp_result_browser_context(&m, 2, &id), -ENOENT);
    assert_int_equal(cdp_result_page_target(&m, 0, &id), -EBADMSG);
    cdp_msg_fini(&m);

    /* a page without a usable id, an id that is not a string */
    static const char bad_target[] = "{\"id\":9,\"result\":{\"targetInfos\":[{\"type\":\"page\"}]}}";
    assert_int_equal(cdp_msg_parse(&m, bad_target, strlen(bad_target)), 0);
    assert_int_equal(cdp_result_page_target(&m, 0, &id), -EBADMSG);
    cdp_msg_fini(&m);
    static const char bad_context[] = "{\"id\":9,\"result\":{\"browserContextIds\":[5]}}";
    assert_int_equal(cdp_msg_parse(&m, bad_context, strlen(bad_context)), 0);
    assert_int_equal(cdp_result_browser_context(&m, 0, &id), -EBADMSG);
    cdp_msg_fini(&m);
    /* an error reply */
    static const char err[] = "{\"id\":9,\"error\":{\"code\":-32000,\"message\":\"no\"}}";
    assert_int_equal(cdp_msg_parse(&m, err, strlen(err)), 0);
    assert_int_equal(cdp_result_page_target(&m, 0, &id), -EREMOTEIO);
    assert_int_equal(cdp_result_browser_context(&m, 0, &id), -EREMOTEIO);
    cdp_msg_fini(&m);
}

static void expect_bad(const char *text, size_t len)
{
    struct cdp_msg m;
    int rc = cdp_msg_parse(&m, text, len);
    if (rc != -EBADMSG)
        fail_msg("rc %d for: %.*s", rc, (int)len, text);
    assert_non_null(m.why);
    assert_null(m.root);
    assert_null(m.result);
    assert_null(m.params);
    cdp_msg_fini(&m); /* harmless after a failure */
}

static void test_garbage(void **state)
{
    (void)state;
    const char *texts[] = {
        "garbage", "[1,2]", "null", "42", "\"str\"", "{", "}", "{}", "{\"id\":1}",
        "{\"id\":1,\"result\":{}} trailing", "{\"id\":1,\"result\":{\"a\":\"\xff\"}}",
        "{\"id\":1,\"result\":{\"a\":\"\\u0000\"}}", "\xef\xbb\xbf{\"id\":1,\"result\":{}}",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        expect_bad(texts[i], strlen(texts[i]));
    expect_bad("", 0);
    expect_bad(NULL, 0);
    /* a NUL inside the frame */
    static const char nul[] = "{\"id\":1,\"result\":{}}\0{}";
    expect_bad(nul, sizeof(nul) - 1);
    static const char bin[] = { 0x00, 0x01, (char)0xff, '{', 0x7f };
    expect_bad(bin, sizeof(bin));
}

static void test_wrong_types(void **state)
{
    (void)state;
    const char *texts[] = {
        "{\"id\":\"1\",\"result\":{}}",              /* id as a string */
        "{\"id\":0,\"result\":{}}",
        "{\"id\":-4,\"result\":{}}",
        "{\"id\":1.5,\"result\":{}}",
        "{\"id\":1e20,\"result\":{}}",
        "{\"id\":2147483648,\"result\":{}}",
        "{\"id\":null,\"result\":{}}",
        "{\"id\":true,\"result\":{}}",
        "{\"id\":1,\"result\":[]}",
        "{\"id\":1,\"result\":\"ok\"}",
        "{\"id\":1,\"result\":null}",
        "{\"id\":1,\"error\":\"bad\"}",
        "{\"id\":1,\"error\":{\"message\":\"m\"}}",
        "{\"id\":1,\"error\":{\"code\":\"-1\",\"message\":\"m\"}}",
        "{\"id\":1,\"error\":{\"code\":1.5,\"message\":\"m\"}}",
        "{\"id\":1,\"error\":{\"code\":-1}}",
        "{\"id\":1,\"error\":{\"code\":-1,\"message\":5}}",
        "{\"id\":1,\"result\":{},\"error\":{\"code\":-1,\"message\":\"m\"}}",
        "{\"id\":1,\"result\":{},\"sessionId\":5}", /* sessionId not a string */
        "{\"id\":1,\"result\":{},\"sessionId\":\"\"}",
        "{\"id\":1,\"result\":{},\"sessionId\":null}",
        "{\"id\":1,\"method\":\"Page.loadEventFired\",\"params\":{}}",
        "{\"method\":5,\"params\":{}}",
        "{\"method\":\"\",\"params\":{}}",
        "{\"method\":\"Page.loadEventFired\",\"params\":[]}",
        "{\"method\":\"Page.loadEventFired\",\"params\":\"x\"}",
        "{\"method\":\"Page.loadEventFired\",\"params\":{},\"sessionId\":[]}",
        "{\"id\":1,\"id\":2,\"result\":{}}",          /* duplicate keys */
        "{\"params\":{}}",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        expect_bad(texts[i], strlen(texts[i]));

    char text[CDP_ID_MAX + 100];
    snprintf(text, sizeof(text), "{\"id\":1,\"result\":{},\"sessionId\":\"%0*d\"}", CDP_ID_MAX + 1, 0);
    expect_bad(text, strlen(text));
    snprintf(text, sizeof(text), "{\"method\":\"%0*d\"}", CDP_METHOD_MAX + 1, 0);
    expect_bad(text, strlen(text));

    /* the largest id there is, and an id written as 3.0, are fine */
    struct cdp_msg m;
    assert_int_equal(parse_str(&m, "{\"id\":2147483647,\"result\":{}}"), 0);
    assert_int_equal(m.id, INT_MAX);
    cdp_msg_fini(&m);
    assert_int_equal(parse_str(&m, "{\"id\":3.0,\"result\":{}}"), 0);
    assert_int_equal(m.id, 3);
    cdp_msg_fini(&m);
}

/* Every recorded frame, cut short anywhere, is refused, never half-read. */
static void test_truncated(void **state)
{
    (void)state;
    const char *names[] = { "get_version", "screenshot", "error_params", "evaluate_exception",
                            "event_request_will_be_sent", "event_download_completed",
                            "layout_metrics" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t len;
        char *text = fixture(names[i], &len);
        struct cdp_msg m;
        assert_int_equal(cdp_msg_parse(&m, text, len), 0);
        cdp_msg_fini(&m);
        for (size_t cut = 1; cut < len; cut += (cut < 40 || len - cut < 40) ? 1 : 17) {
            if (cdp_msg_parse(&m, text, cut) != -EBADMSG)
                fail_msg("%s cut at %zu accepted", names[i], cut);
            assert_null(m.root);
            cdp_msg_fini(&m);
        }
        free(text);
    }
}

static void test_oversize(void **state)
{
    (void)state;
    struct cdp_msg m;
    /* refused on its length alone: nothing past the first bytes is read */
    static const char small[] = "{\"id\":1,\"result\":{}}";
    assert_int_equal(cdp_msg_parse(&m, small, (size_t)CDP_FRAME_MAX + 1), -EMSGSIZE);
    assert_non_null(m.why);
    assert_null(m.root);
    cdp_msg_fini(&m);
    assert_int_equal(cdp_msg_parse(&m, small, SIZE_MAX), -EMSGSIZE);
    cdp_msg_fini(&m);

    /* exactly CDP_FRAME_MAX is still taken */
    static const char head[] = "{\"id\":9,\"result\":{\"data\":\"";
    static const char tail[] = "\"}}";
    size_t n = CDP_FRAME_MAX;
    char *big = malloc(n);
    memcpy(big, head, sizeof(head) - 1);
    memset(big + sizeof(head) - 1, 'A', n - (sizeof(head) - 1) - (sizeof(tail) - 1));
    memcpy(big + n - (sizeof(tail) - 1), tail, sizeof(tail) - 1);
    assert_int_equal(cdp_msg_parse(&m, big, n), 0);
    const char *data;
    size_t len;
    assert_int_equal(cdp_result_data(&m, &data, &len), 0);
    assert_int_equal(len, n - (sizeof(head) - 1) - (sizeof(tail) - 1));
    cdp_msg_fini(&m);
    free(big);
}

/* Base64. */

static void test_base64_good(void **state)
{
    (void)state;
    unsigned char *out;
    size_t n;
    struct {
        const char *in;
        const char *want;
        size_t len;
    } cases[] = {
        { "aGVsbG8=", "hello", 5 },
        { "aGVsbA==", "hell", 4 },
        { "aGVs", "hel", 3 },
        { "aGVsbG8h", "hello!", 6 },
        { "AA==", "\0", 1 },
        { "+/+/", "\xfb\xff\xbf", 3 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(cdp_decode_base64(cases[i].in, strlen(cases[i].in), &out, &n), 0);
        assert_int_equal(n, cases[i].len);
        assert_memory_equal(out, cases[i].want, n);
        free(out);
    }

    /* every byte value, through libwebsockets' encoder and back */
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    for (size_t len = 0; len <= sizeof(all); len += (len < 8 ? 1 : 61)) {
        char enc[400];
        int e = lws_b64_encode_string((const char *)all, (int)len, enc, sizeof(enc));
        assert_true(e >= 0);
        assert_int_equal(cdp_decode_base64(enc, (size_t)e, &out, &n), 0);
        assert_int_equal(n, len);
        if (len)
            assert_memory_equal(out, all, len);
        free(out);
    }
}

static void test_base64_bad(void **state)
{
    (void)state;
    unsigned char *out = (unsigned char *)"untouched";
    size_t n = 77;
    const char *bad[] = {
        "a", "ab", "abc", "aGVsbG8",   /* not a multiple of 4 */
        "aGV$bG8=",                    /* not in the alphabet */
        "aGVsbG8-", "aGVsbG8_",        /* URL alphabet */
        "aGVs bG8", "aGVs\nbG8=",      /* whitespace */
        "aG=sbG8=",                    /* padding inside */
        "====", "A===", "AA=A",
        "aGVsbA==aGVs",                /* data after padding */
        "\xc3\xa9\xc3\xa9",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (cdp_decode_base64(bad[i], strlen(bad[i]), &out, &n) != -EINVAL)
            fail_msg("accepted: %s", bad[i]);
    }
    /* a NUL inside is not base64 either */
    assert_int_equal(cdp_decode_base64("aG\0s", 4, &out, &n), -EINVAL);
    assert_int_equal(cdp_decode_base64(NULL, 4, &out, &n), -EINVAL);
    /* too big to be a frame's data: refused on the length alone */
    assert_int_equal(cdp_decode_base64("aGVs", (size_t)CDP_FRAME_MAX + 4, &out, &n), -EMSGSIZE);
    /* nothing was handed out */
    assert_string_equal((const char *)out, "untouched");
    assert_int_equal(n, 77);
}

static void test_base64_empty(void **state)
{
    (void)state;
    unsigned char *out = NULL;
    size_t n = 5;
    assert_int_equal(cdp_decode_base64("", 0, &out, &n), 0);
    assert_non_null(out);
    assert_int_equal(n, 0);
    free(out);
}

/* The size a reply may have, from the command the builders wrote: an image
 * or a PDF may be large, anything a page can fill otherwise may not. */
static void test_reply_max(void **state)
{
    (void)state;
    struct cdp c;
    cdp_init(&c);
    struct buf b;

    buf_init(&b);
    assert_true(cdp_page_capture_screenshot(&c, &b, SESSION, NULL) > 0);
    assert_int_equal(cdp_reply_max(b.data, b.len), CDP_FRAME_MAX);
    buf_fini(&b);

    buf_init(&b);
    struct cdp_pdf pdf = { .print_background = 1 };
    assert_true(cdp_page_print_to_pdf(&c, &b, SESSION, &pdf) > 0);
    assert_int_equal(cdp_reply_max(b.data, b.len), CDP_FRAME_MAX);
    buf_fini(&b);

    buf_init(&b);
    assert_true(cdp_runtime_evaluate(&c, &b, SESSION, "'Page.captureScreenshot'", 1) > 0);
    assert_int_equal(cdp_reply_max(b.data, b.len), CDP_MESSAGE_MAX);
    buf_fini(&b);

    buf_init(&b);
    assert_true(cdp_browser_get_version(&c, &b) > 0);
    assert_int_equal(cdp_reply_max(b.data, b.len), CDP_MESSAGE_MAX);
    buf_fini(&b);

    /* A method that only starts like one of them, and text no builder wrote. */
    static const char *const other[] = {
        "{\"id\":3,\"method\":\"Page.captureScreenshotX\"}",
        "{\"id\":3,\"method\":\"Page.printToPDFs\",\"params\":{}}",
        "{\"method\":\"Page.captureScreenshot\",\"id\":3}",
        "{\"id\":3,\"params\":{},\"method\":\"Page.printToPDF\"}",
        "{\"id\":3,\"method\":\"Page.captureScreenshot",
        "",
    };
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        assert_int_equal(cdp_reply_max(other[i], strlen(other[i])), CDP_MESSAGE_MAX);
    assert_int_equal(cdp_reply_max(NULL, 0), CDP_MESSAGE_MAX);
    assert_true(CDP_MESSAGE_MAX < CDP_FRAME_MAX);
}

/* A reply's id from the first bytes of a frame, as Chrome writes replies. */
/* The request check's commands, its events, and the stubs for a paused
 * request or a request's start too large to keep. */
/* A paused request continued with the render's trace headers added to
 * its own: the same names replaced, whatever their case; nothing else
 * changed; a builder that fails leaves the buffer as it was. */
static void test_fetch_continue_headers(void **state)
{
    (void)state;
    struct cdp c;
    cdp_init(&c);
    struct buf b;
    buf_init(&b);
    json_error_t err;
    json_t *own = json_loads("{\"Accept\":\"*/*\",\"TraceParent\":\"00-old\",\"Referer\":\"http://g/d\"}", 0,
                             &err);
    assert_non_null(own);
    const char *add[] = { "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate",
                          "g=1", NULL };
    int id = cdp_fetch_continue_headers(&c, &b, "S1", "interception-job-9.0", own, add);
    assert_true(id > 0);
    json_t *msg = built(&b, 0, id, "Fetch.continueRequest", "S1");
    json_t *p = params_of(msg);
    assert_string_equal(pstr(p, "requestId"), "interception-job-9.0");
    json_t *list = json_object_get(p, "headers");
    assert_int_equal(json_array_size(list), 4);
    const char *want[][2] = { { "Accept", "*/*" }, { "Referer", "http://g/d" },
                              { "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" },
                              { "tracestate", "g=1" } };
    for (size_t i = 0; i < 4; i++) {
        json_t *h = json_array_get(list, i);
        assert_string_equal(pstr(h, "name"), want[i][0]);
        assert_string_equal(pstr(h, "value"), want[i][1]);
    }
    json_decref(msg);

    size_t len = b.len;
    const char *none[] = { NULL };
    const char *empty[] = { "traceparent", "", NULL };
    assert_int_equal(cdp_fetch_continue_headers(&c, &b, "S1", "interception-job-9.0", own, none), -EINVAL);
    assert_int_equal(cdp_fetch_continue_headers(&c, &b, "S1", "interception-job-9.0", own, empty), -EINVAL);
    assert_int_equal(cdp_fetch_continue_headers(&c, &b, "S1", "", own, add), -EINVAL);
    assert_int_equal(cdp_fetch_continue_headers(&c, &b, "", "interception-job-9.0", own, add), -EINVAL);
    assert_int_equal(b.len, len);
    json_decref(own);
    buf_fini(&b);
}

static void test_request_check(void **state)
{
    (void)state;
    struct cdp c;
    cdp_init(&c);
    struct buf b;
    buf_init(&b);
    assert_true(cdp_fetch_enable(&c, &b, "S1") > 0);
    assert_non_null(strstr(b.data, "\"requestStage\":\"Request\""));
    buf_reset(&b);
    assert_true(cdp_fetch_fail(&c, &b, "S1", "interception-job-7.0") > 0);
    assert_non_null(strstr(b.data, "\"errorReason\":\"BlockedByClient\""));
    buf_reset(&b);
    assert_int_equal(cdp_fetch_continue(&c, &b, "S1", ""), -EINVAL);
    assert_int_equal(b.len, 0);

    struct cdp_msg m;
    const char *ev = "{\"method\":\"Fetch.requestPaused\",\"params\":{\"requestId\":\"interception-job-7.0\","
                     "\"request\":{\"url\":\"http://a/x\",\"method\":\"GET\",\"headers\":{}},"
                     "\"frameId\":\"F\",\"resourceType\":\"Image\"},\"sessionId\":\"S1\"}";
    assert_int_equal(cdp_msg_parse(&m, ev, strlen(ev)), 0);
    const char *id, *url;
    size_t len;
    assert_int_equal(cdp_event_paused(&m, &id, &url, &len), 0);
    assert_string_equal(id, "interception-job-7.0");
    assert_int_equal(len, strlen("http://a/x"));
    cdp_msg_fini(&m);

    /* the stub: the first and last bytes of one that was too large */
    size_t evlen = strlen(ev);
    buf_reset(&b);
    assert_int_equal(cdp_event_stub(ev, 90, ev + evlen - 40, 40, &b), 0);
    assert_int_equal(cdp_msg_parse(&m, b.data, b.len), 0);
    assert_string_equal(m.session, "S1");
    assert_int_equal(cdp_event_paused(&m, &id, &url, &len), 0);
    assert_string_equal(id, "interception-job-7.0");
    assert_int_equal(len, 0);
    cdp_msg_fini(&m);
    /* a request's start too large to keep: the same request, for readiness */
    const char *sent = "{\"method\":\"Network.requestWillBeSent\",\"params\":{\"requestId\":\"5686.2\","
                       "\"loaderId\":\"L\",\"request\":{\"url\":\"http://a/x\",\"headers\":{\"X-Big\":\"yyyy\"}},"
                       "\"timestamp\":1.5,\"type\":\"Fetch\",\"frameId\":\"F\"},\"sessionId\":\"S1\"}";
    size_t sentlen = strlen(sent);
    buf_reset(&b);
    assert_int_equal(cdp_event_stub(sent, 80, sent + sentlen - 40, 40, &b), 0);
    assert_int_equal(cdp_msg_parse(&m, b.data, b.len), 0);
    assert_string_equal(m.session, "S1");
    assert_int_equal(m.event, CDP_EVENT_REQUEST_WILL_BE_SENT);
    struct cdp_request rq;
    assert_int_equal(cdp_event_request(&m, &rq), 0);
    assert_string_equal(rq.request_id, "5686.2");
    assert_string_equal(rq.url, "");
    cdp_msg_fini(&m);
    /* anything else is no stub: another event, a cut id, no session */
    const char *other = "{\"method\":\"Network.responseReceived\",\"params\":{\"requestId\":\"1\"";
    buf_reset(&b);
    assert_int_equal(cdp_event_stub(other, strlen(other), ev + evlen - 40, 40, &b), -EINVAL);
    other = "{\"method\":\"Runtime.exceptionThrown\",\"params\":{\"timestamp\":1";
    assert_int_equal(cdp_event_stub(other, strlen(other), ev + evlen - 40, 40, &b), -EINVAL);
    assert_int_equal(cdp_event_stub(ev, 60, ev + evlen - 40, 40, &b), -EINVAL);
    assert_int_equal(cdp_event_stub(sent, 60, sent + sentlen - 40, 40, &b), -EINVAL);
    assert_int_equal(cdp_event_stub(ev, 90, "}}", 2, &b), -EINVAL);
    assert_int_equal(cdp_event_stub(sent, 80, "}}", 2, &b), -EINVAL);
    assert_int_equal(cdp_event_stub(ev, 90, "\"sessionId\":\"S\\\"x\"}", 18, &b), -EINVAL);
    assert_int_equal(b.len, 0);
    buf_fini(&b);
}

static void test_frame_reply_id(void **state)
{
    (void)state;
    size_t len;
    char *text = fixture("screenshot", &len);
    struct cdp_msg m;
    assert_int_equal(cdp_msg_parse(&m, text, len), 0);
    assert_int_equal(cdp_frame_reply_id(text, 24), m.id);
    assert_int_equal(cdp_frame_reply_id(text, len), m.id);
    cdp_msg_fini(&m);
    free(text);

    text = fixture("event_dialog_opening", &len);
    assert_int_equal(cdp_frame_reply_id(text, 32), 0);
    free(text);
    text = fixture("error_session", &len);
    assert_int_equal(cdp_frame_reply_id(text, 32), 48);
    free(text);

    assert_int_equal(cdp_frame_reply_id("{\"id\":7}", 8), 7);
    assert_int_equal(cdp_frame_reply_id("{\"id\":2147483647,", 18), INT_MAX);
    assert_int_equal(cdp_frame_reply_id("{\"id\":2147483648,", 18), 0);
    assert_int_equal(cdp_frame_reply_id("{\"id\":12345678901,", 19), 0);
    assert_int_equal(cdp_frame_reply_id("{\"id\":0,", 8), 0);
    assert_int_equal(cdp_frame_reply_id("{\"id\":-1,", 9), 0);
    assert_int_equal(cdp_frame_reply_id("{\"id\":12", 8), 0); /* cut in the number */
    assert_int_equal(cdp_frame_reply_id("{\"id\":\"1\",", 10), 0);
    assert_int_equal(cdp_frame_reply_id("{ \"id\":1,", 9), 0);
    assert_int_equal(cdp_frame_reply_id("{\"i", 3), 0);
    assert_int_equal(cdp_frame_reply_id(NULL, 0), 0);
}

int main(void)
{
    /* jansson's allocations go through cmocka too: a json_t left behind is a leak. */
    json_set_alloc_funcs(test_json_malloc, test_json_free);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_increase_and_wrap),
        cmocka_unit_test(test_build_appends_and_failure_leaves_nothing),
        cmocka_unit_test(test_build_browser_commands),
        cmocka_unit_test(test_build_page_commands),
        cmocka_unit_test(test_build_emulation),
        cmocka_unit_test(test_build_headers_and_cookie),
        cmocka_unit_test(test_build_screenshot),
        cmocka_unit_test(test_build_pdf),
        cmocka_unit_test(test_build_rejects_bad_arguments),
        cmocka_unit_test(test_replies_recorded),
        cmocka_unit_test(test_error_replies),
        cmocka_unit_test(test_layout_metrics),
        cmocka_unit_test(test_screenshot_and_pdf_data),
        cmocka_unit_test(test_evaluate),
        cmocka_unit_test(test_events_recorded),
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_network_events),
        cmocka_unit_test(test_download_events),
        cmocka_unit_test(test_page_messages),
        cmocka_unit_test(test_target_events),
        cmocka_unit_test(test_result_extractors_refuse_bad_fields),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_base64_good),
        cmocka_unit_test(test_base64_bad),
        cmocka_unit_test(test_base64_empty),
        cmocka_unit_test(test_reply_max),
        cmocka_unit_test(test_frame_reply_id),
        cmocka_unit_test(test_takeover_lists),
        cmocka_unit_test(test_fetch_continue_headers), cmocka_unit_test(test_request_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
