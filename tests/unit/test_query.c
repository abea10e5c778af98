/* The rendering query: every parameter good, bad, missing and at its bounds
 * (exactly, one past, overflowing, negative, hex, trailing garbage, empty),
 * the target URL's scheme, shape and allow-list, and the token comparison.
 * cmocka's allocator is in force, so a parse that fails half-way and leaves
 * its URL copy behind fails here too. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"

#define URL "http://grafana:3000/d-solo/abc/x?orgId=1&panelId=2&render=1"

static struct render_request req;
static char why[512];
/* [renderer] timezone as config.c keeps it; NULL: none */
static const char *default_tz;

/* kv: key, value, key, value, ..., NULL (a value may be NULL: "?key"). */
static int parse_full(enum query_route route, const char *const *kv,
                      const char *accept_language, const char *const *hosts)
{
    struct query_param ps[32];
    size_t n = 0;
    for (; kv[2 * n]; n++) {
        assert_true(n < 32);
        ps[n].key = kv[2 * n];
        ps[n].key_len = strlen(kv[2 * n]);
        ps[n].value = kv[2 * n + 1];
        ps[n].value_len = kv[2 * n + 1] ? strlen(kv[2 * n + 1]) : 0;
    }
    memset(why, 'X', sizeof(why) - 1);
    why[sizeof(why) - 1] = '\0';
    int rc = query_parse(&req, route, ps, n, accept_language, hosts, default_tz, why, sizeof(why));
    if (rc == 0)
        assert_string_equal(why, "");
    else
        assert_true(strlen(why) > 0 && strchr(why, 'X') != why);
    return rc;
}

#define PARSE(...) parse_full(QUERY_ROUTE_RENDER, (const char *const[]){ __VA_ARGS__, NULL }, NULL, NULL)
#define PARSE_CSV(...) parse_full(QUERY_ROUTE_CSV, (const char *const[]){ __VA_ARGS__, NULL }, NULL, NULL)

/* url plus one parameter */
static int one(const char *key, const char *value)
{
    query_fini(&req);
    return PARSE("url", URL, key, value);
}

static void test_defaults(void **state)
{
    (void)state;
    assert_int_equal(PARSE("url", URL), 0);
    assert_string_equal(req.url, URL);
    assert_int_equal(req.width, 1000);
    assert_int_equal(req.height, 500);
    assert_true(req.device_scale_factor == 1.0);
    assert_int_equal(req.timeout_ms, 60000);
    assert_int_equal(req.encoding, QUERY_ENCODING_PNG);
    assert_null(req.render_key);
    assert_string_equal(req.domain, "");
    assert_string_equal(req.timezone, "");
    assert_null(req.accept_language);
    assert_int_equal(req.pdf.format, QUERY_PAPER_A4);
    assert_int_equal(req.pdf.landscape, 0);
    assert_int_equal(req.pdf.print_background, 1);
    assert_string_equal(req.pdf.page_ranges, "");
    query_fini(&req);
    assert_null(req.url);
    query_fini(&req); /* twice is harmless */

    assert_int_equal(PARSE_CSV("url", URL), 0);
    assert_int_equal(req.encoding, QUERY_ENCODING_CSV);
    query_fini(&req);
}

/* What Grafana 10/11 sends for a panel PNG (http_mode.go), byte for byte in
 * the parameter names and value formats. */
static void test_grafana_query(void **state)
{
    (void)state;
    const char *const kv[] = {
        "url", URL, "renderKey", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY",
        "domain", "grafana", "timezone", "Europe/Stockholm", "encoding", "png",
        "timeout", "60", "width", "1000", "height", "500",
        "deviceScaleFactor", "2.000000", NULL,
    };
    assert_int_equal(parse_full(QUERY_ROUTE_RENDER, kv, "en-US,en;q=0.9", NULL), 0);
    assert_string_equal(req.url, URL);
    assert_string_equal(req.render_key, "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY");
    assert_string_equal(req.domain, "grafana");
    assert_string_equal(req.timezone, "Europe/Stockholm");
    assert_int_equal(req.encoding, QUERY_ENCODING_PNG);
    assert_int_equal(req.timeout_ms, 60000);
    assert_int_equal(req.width, 1000);
    assert_int_equal(req.height, 500);
    assert_true(req.device_scale_factor == 2.0);
    assert_string_equal(req.accept_language, "en-US,en;q=0.9");
    query_fini(&req);

    /* what Grafana sends that the reference services clamp or read their own
     * way: an IPv6 callback host without brackets, the POSIX form of the
     * user's UTC+05:30, and sizes, scale and timeout out of range */
    const char *const odd[] = {
        "url", "http://[2001:db8::5]:3000/d-solo/abc/x?orgId=1&render=1", "renderKey", "k",
        "domain", "2001:db8::5", "timezone", "UTC-05:30", "encoding", "png",
        "timeout", "0", "width", "5", "height", "5", "deviceScaleFactor", "5.000000", NULL,
    };
    assert_int_equal(parse_full(QUERY_ROUTE_RENDER, odd, NULL, NULL), 0);
    assert_string_equal(req.domain, "[2001:db8::5]");
    assert_string_equal(req.timezone, "GMT+05:30");
    assert_int_equal(req.timeout_ms, 60000);
    assert_int_equal(req.width, 1000);
    assert_int_equal(req.height, 500);
    assert_true(req.device_scale_factor == 4.0);
    query_fini(&req);

    /* the CSV request: no width, height or scale; an empty timezone */
    const char *const csv[] = {
        "url", URL, "renderKey", "k", "domain", "localhost", "timezone", "",
        "encoding", "csv", "timeout", "30", NULL,
    };
    assert_int_equal(parse_full(QUERY_ROUTE_CSV, csv, NULL, NULL), 0);
    assert_int_equal(req.encoding, QUERY_ENCODING_CSV);
    assert_string_equal(req.timezone, "");
    assert_int_equal(req.timeout_ms, 30000);
    query_fini(&req);
}

static void test_url_missing(void **state)
{
    (void)state;
    assert_int_equal(PARSE("width", "100"), -EINVAL);
    assert_string_equal(why, "url: required");
    assert_int_equal(parse_full(QUERY_ROUTE_RENDER, (const char *const[]){ NULL }, NULL, NULL),
                     -EINVAL);
    assert_string_equal(why, "url: required");
    assert_int_equal(PARSE("url", ""), -EINVAL);
    assert_string_equal(why, "url: required");
    assert_int_equal(PARSE("url", NULL), -EINVAL);
    assert_string_equal(why, "url: required");
    /* names are case-sensitive, as Grafana spells them */
    assert_int_equal(PARSE("URL", URL), -EINVAL);
    assert_string_equal(why, "url: required");
    query_fini(&req);
}

static void test_url_bad(void **state)
{
    (void)state;
    assert_int_equal(PARSE("url", "javascript:alert(1)"), -EACCES);
    assert_non_null(strstr(why, "url: expected an http or https URL"));
    assert_int_equal(PARSE("url", "file:///etc/passwd"), -EACCES);
    assert_int_equal(PARSE("url", "http:/x"), -EINVAL);
    assert_int_equal(PARSE("url", "grafana:3000/d/x"), -EACCES);
    assert_int_equal(PARSE("url", "/d/x"), -EACCES);
    assert_int_equal(PARSE("url", "http://grafana/\tx"), -EINVAL);
    assert_int_equal(PARSE("url", URL, "url", URL), -EINVAL);
    assert_string_equal(why, "url: given more than once");
    /* a NUL from %00 is seen, not silently cutting the URL short */
    struct query_param p = { "url", 3, "http://a/\0b", 11 };
    assert_int_equal(query_parse(&req, QUERY_ROUTE_RENDER, &p, 1, NULL, NULL, NULL, why, sizeof(why)),
                     -EINVAL);
    assert_non_null(strstr(why, "url: expected no control characters"));
    assert_non_null(strstr(why, "\\x00"));
    query_fini(&req);
}

static void test_url_length(void **state)
{
    (void)state;
    char *u = malloc(QUERY_URL_MAX + 2);
    size_t pre = strlen("http://g/");
    memcpy(u, "http://g/", pre);
    memset(u + pre, 'a', QUERY_URL_MAX + 1 - pre);
    u[QUERY_URL_MAX] = '\0'; /* exactly the limit */
    assert_int_equal(PARSE("url", u), 0);
    assert_int_equal(strlen(req.url), QUERY_URL_MAX);
    query_fini(&req);
    u[QUERY_URL_MAX] = 'a';
    u[QUERY_URL_MAX + 1] = '\0'; /* one past */
    assert_int_equal(PARSE("url", u), -EINVAL);
    assert_string_equal(why, "url: longer than 8192 bytes");
    assert_int_equal(query_url_allowed(u, NULL, why, sizeof(why)), -EINVAL);
    free(u);
    query_fini(&req);
}

struct int_case {
    const char *v;
    int ok;
    int want;
};

/* Out of range is rendered at the bound or the default, as the reference
 * services do (query.h); only what is no whole number is refused. */
static const struct int_case width_cases[] = {
    { "10", 1, 10 }, { "10000", 1, 10000 }, { "1000", 1, 1000 }, { "0100", 1, 100 }, { "11", 1, 11 },
    /* below 10: the default, each dimension on its own */
    { "9", 1, 1000 }, { "5", 1, 1000 }, { "0", 1, 1000 }, { "-1", 1, 1000 }, { "-10", 1, 1000 },
    { "-99999999999999999999", 1, 1000 }, { "000", 1, 1000 },
    /* above 10000: 10000, however far */
    { "10001", 1, 10000 }, { "20000", 1, 10000 }, { "4294967306", 1, 10000 },
    { "99999999999999999999", 1, 10000 },
    /* no whole number: 400 */
    { "abc", 0, 0 }, { "0x10", 0, 0 }, { "10abc", 0, 0 }, { " 10", 0, 0 }, { "10 ", 0, 0 }, { "+10", 0, 0 },
    { "1e3", 0, 0 }, { "10.0", 0, 0 }, { "-", 0, 0 }, { "--10", 0, 0 }, { "1-0", 0, 0 },
};

static void test_width(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(width_cases) / sizeof(width_cases[0]); i++) {
        const struct int_case *c = &width_cases[i];
        int rc = one("width", c->v);
        if (c->ok) {
            if (rc != 0 || req.width != c->want)
                fail_msg("width=%s: rc %d, width %d, want %d", c->v, rc, req.width, c->want);
            assert_int_equal(req.height, QUERY_HEIGHT_DEFAULT); /* the other one stays */
        } else {
            assert_int_equal(rc, -EINVAL);
            assert_true(strncmp(why, "width: ", 7) == 0);
        }
    }
    assert_int_equal(one("width", "abc"), -EINVAL);
    assert_string_equal(why, "width: expected a whole number of CSS pixels, got \"abc\"");
    /* empty, or no '=': the default, as the reference service does */
    assert_int_equal(one("width", ""), 0);
    assert_int_equal(req.width, 1000);
    assert_int_equal(one("width", NULL), 0);
    assert_int_equal(req.width, 1000);
    query_fini(&req);
    assert_int_equal(PARSE("url", URL, "width", "100", "width", "100"), -EINVAL);
    assert_string_equal(why, "width: given more than once");
    assert_int_equal(PARSE("url", URL, "width", "", "width", "100"), -EINVAL);
    /* each dimension on its own: a small width leaves a good height */
    assert_int_equal(PARSE("url", URL, "width", "5", "height", "300"), 0);
    assert_int_equal(req.width, 1000);
    assert_int_equal(req.height, 300);
    query_fini(&req);
    assert_int_equal(PARSE("url", URL, "width", "5", "height", "5"), 0);
    assert_int_equal(req.width, 1000);
    assert_int_equal(req.height, 500);
    query_fini(&req);
}

static const struct int_case height_cases[] = {
    { "10", 1, 10 }, { "10000", 1, 10000 }, { "500", 1, 500 }, { "-1", 1, QUERY_FULL_PAGE },
    { "-01", 1, QUERY_FULL_PAGE },
    /* below 10 but -1: the default */
    { "9", 1, 500 }, { "0", 1, 500 }, { "-2", 1, 500 }, { "-10", 1, 500 },
    { "-99999999999999999999", 1, 500 },
    { "10001", 1, 10000 }, { "99999999999999999999", 1, 10000 },
    { "abc", 0, 0 }, { "0x1f4", 0, 0 }, { "500px", 0, 0 }, { "1 ", 0, 0 }, { "-1.0", 0, 0 },
};

static void test_height(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(height_cases) / sizeof(height_cases[0]); i++) {
        const struct int_case *c = &height_cases[i];
        int rc = one("height", c->v);
        if (c->ok) {
            if (rc != 0 || req.height != c->want)
                fail_msg("height=%s: rc %d, height %d, want %d", c->v, rc, req.height, c->want);
            assert_int_equal(req.width, QUERY_WIDTH_DEFAULT);
        } else {
            assert_int_equal(rc, -EINVAL);
            assert_true(strncmp(why, "height: ", 8) == 0);
        }
    }
    assert_int_equal(one("height", "tall"), -EINVAL);
    assert_string_equal(why, "height: expected a whole number of CSS pixels, "
                             "or -1 for the full page, got \"tall\"");
    assert_int_equal(one("height", ""), 0);
    assert_int_equal(req.height, 500);
    query_fini(&req);
}

struct scale_case {
    const char *v;
    int ok;
    double want;
};

static const struct scale_case scale_cases[] = {
    { "1.000000", 1, 1.0 }, { "2.000000", 1, 2.0 }, { "1", 1, 1.0 }, { "2", 1, 2.0 },
    { "0.1", 1, 0.1 }, { ".5", 1, 0.5 }, { "1.5", 1, 1.5 }, { "4", 1, 4.0 },
    { "4.000000", 1, 4.0 }, { "0.100000", 1, 0.1 }, { "1.", 1, 1.0 },
    { "3.99999999999999999999999", 1, 4.0 }, /* rounds to 4 in a double: still in range */
    /* above 4: 4, as the Go reference clamps to its max-page-scale-factor */
    { "5.000000", 1, 4.0 }, { "4.000001", 1, 4.0 }, { "5", 1, 4.0 }, { "1000000", 1, 4.0 },
    { "99999999999999999999", 1, 4.0 }, { "99999999999999999999.5", 1, 4.0 },
    /* 0: the default, as Grafana itself turns 0 into 1 */
    { "0", 1, 1.0 }, { "0.0", 1, 1.0 }, { "0.000000", 1, 1.0 }, { "000", 1, 1.0 }, { ".0", 1, 1.0 },
    /* between 0 and 0.1: 0.1 */
    { "0.09", 1, 0.1 }, { "0.099999", 1, 0.1 }, { "0.000001", 1, 0.1 },
    { "0.0000000000000000000000001", 1, 0.1 },
    /* no plain decimal: 400 */
    { "-1", 0, 0 }, { "-0.5", 0, 0 }, { "-1.000000", 0, 0 }, { "+1", 0, 0 },
    { "abc", 0, 0 }, { "1e0", 0, 0 }, { "0x1", 0, 0 }, { "inf", 0, 0 }, { "nan", 0, 0 },
    { "infinity", 0, 0 }, { ".", 0, 0 }, { "1..2", 0, 0 }, { "1,5", 0, 0 }, { " 1", 0, 0 },
    { "1 ", 0, 0 }, { "2x", 0, 0 },
};

static void test_device_scale_factor(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(scale_cases) / sizeof(scale_cases[0]); i++) {
        const struct scale_case *c = &scale_cases[i];
        int rc = one("deviceScaleFactor", c->v);
        if (c->ok) {
            if (rc != 0 || !(fabs(req.device_scale_factor - c->want) < 1e-12))
                fail_msg("deviceScaleFactor=%s: rc %d, scale %g, want %g", c->v, rc, req.device_scale_factor,
                         c->want);
            assert_true(isfinite(req.device_scale_factor));
        } else {
            assert_int_equal(rc, -EINVAL);
            assert_true(strncmp(why, "deviceScaleFactor: ", 19) == 0);
        }
    }
    assert_int_equal(one("deviceScaleFactor", "-1.000000"), -EINVAL);
    assert_string_equal(why, "deviceScaleFactor: expected a decimal number such as 2 or 1.500000, "
                             "got \"-1.000000\"");
    assert_int_equal(one("deviceScaleFactor", ""), 0);
    assert_true(req.device_scale_factor == 1.0);
    query_fini(&req);
}

struct timeout_case {
    const char *v;
    int ok;
    unsigned want_ms;
};

static const struct timeout_case timeout_cases[] = {
    { "1", 1, 1000 }, { "60", 1, 60000 }, { "300", 1, 300000 }, { "30s", 1, 30000 },
    { "1500ms", 1, 1500 }, { "1000ms", 1, 1000 }, { "2m", 1, 120000 }, { "5m", 1, 300000 },
    { "0300", 1, 300000 },
    /* 0: the default, 60 s */
    { "0", 1, 60000 }, { "0s", 1, 60000 }, { "0ms", 1, 60000 }, { "0m", 1, 60000 }, { "000", 1, 60000 },
    /* above 300 s: 300 s, however far */
    { "301", 1, 300000 }, { "300001ms", 1, 300000 }, { "6m", 1, 300000 }, { "4294968", 1, 300000 },
    { "99999999999999999999", 1, 300000 }, { "99999999999999999999m", 1, 300000 },
    /* under a second: a second */
    { "999ms", 1, 1000 }, { "1ms", 1, 1000 },
    /* no timeout: 400 */
    { "-1", 0, 0 }, { "abc", 0, 0 }, { "0x10", 0, 0 }, { "30 s", 0, 0 }, { "30S", 0, 0 }, { "30h", 0, 0 },
    { "s", 0, 0 }, { "1.5", 0, 0 }, { "+30", 0, 0 }, { "30sec", 0, 0 }, { "1m30s", 0, 0 },
};

static void test_timeout(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(timeout_cases) / sizeof(timeout_cases[0]); i++) {
        const struct timeout_case *c = &timeout_cases[i];
        int rc = one("timeout", c->v);
        if (c->ok) {
            if (rc != 0 || req.timeout_ms != c->want_ms)
                fail_msg("timeout=%s: rc %d, %u ms, want %u", c->v, rc, req.timeout_ms, c->want_ms);
        } else {
            assert_int_equal(rc, -EINVAL);
            assert_true(strncmp(why, "timeout: ", 9) == 0);
        }
    }
    assert_int_equal(one("timeout", "soon"), -EINVAL);
    assert_string_equal(why, "timeout: expected whole seconds, or a number with ms, s or m, got \"soon\"");
    assert_int_equal(one("timeout", ""), 0);
    assert_int_equal(req.timeout_ms, 60000);
    query_fini(&req);
}

static void test_encoding(void **state)
{
    (void)state;
    assert_int_equal(one("encoding", "png"), 0);
    assert_int_equal(req.encoding, QUERY_ENCODING_PNG);
    assert_int_equal(one("encoding", "PNG"), 0);
    assert_int_equal(req.encoding, QUERY_ENCODING_PNG);
    assert_int_equal(one("encoding", "pdf"), 0);
    assert_int_equal(req.encoding, QUERY_ENCODING_PDF);
    assert_int_equal(one("encoding", ""), 0);
    assert_int_equal(req.encoding, QUERY_ENCODING_PNG);
    assert_int_equal(one("encoding", "csv"), -EINVAL);
    assert_string_equal(why, "encoding: expected png or pdf (csv is /render/csv), got \"csv\"");
    assert_int_equal(one("encoding", "gif"), -EINVAL);
    assert_int_equal(one("encoding", "png "), -EINVAL);
    assert_int_equal(one("encoding", "pn"), -EINVAL);
    assert_int_equal(one("encoding", "pngpng"), -EINVAL);
    query_fini(&req);

    assert_int_equal(PARSE_CSV("url", URL, "encoding", "csv"), 0);
    assert_int_equal(req.encoding, QUERY_ENCODING_CSV);
    query_fini(&req);
    assert_int_equal(PARSE_CSV("url", URL, "encoding", "png"), -EINVAL);
    assert_string_equal(why, "encoding: expected csv on /render/csv, got \"png\"");
    assert_int_equal(PARSE_CSV("url", URL, "encoding", "pdf"), -EINVAL);
    query_fini(&req);
}

static void test_render_key(void **state)
{
    (void)state;
    assert_int_equal(one("renderKey", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY"), 0);
    assert_string_equal(req.render_key, "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY");
    /* a signed render key (a JWT) */
    assert_int_equal(one("renderKey", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl-_~+/="), 0);
    assert_non_null(req.render_key);
    assert_int_equal(one("renderKey", ""), 0);
    assert_null(req.render_key);
    assert_int_equal(one("renderKey", "a;b"), -EINVAL);
    assert_true(strncmp(why, "renderKey: ", 11) == 0);
    assert_int_equal(one("renderKey", "a b"), -EINVAL);
    assert_int_equal(one("renderKey", "a,b"), -EINVAL);
    assert_int_equal(one("renderKey", "a\"b"), -EINVAL);
    assert_int_equal(one("renderKey", "k\xc3\xa9"), -EINVAL);
    assert_int_equal(one("renderKey", "a\r\nSet-Cookie: x"), -EINVAL);

    char k[QUERY_RENDER_KEY_MAX + 2];
    memset(k, 'k', sizeof(k) - 1);
    k[QUERY_RENDER_KEY_MAX] = '\0';
    assert_int_equal(one("renderKey", k), 0);
    assert_int_equal(strlen(req.render_key), QUERY_RENDER_KEY_MAX);
    k[QUERY_RENDER_KEY_MAX] = 'k';
    k[QUERY_RENDER_KEY_MAX + 1] = '\0';
    assert_int_equal(one("renderKey", k), -EINVAL);
    /* the echo of a long value is cut short */
    assert_non_null(strstr(why, "kkk...\""));
    assert_true(strlen(why) < 200);
    query_fini(&req);
}

static void test_domain(void **state)
{
    (void)state;
    assert_int_equal(one("domain", "localhost"), 0);
    assert_string_equal(req.domain, "localhost");
    assert_int_equal(one("domain", "grafana.example.com"), 0);
    assert_int_equal(one("domain", "10.0.0.1"), 0);
    assert_int_equal(one("domain", "grafana_1"), 0);
    assert_int_equal(one("domain", ""), 0);
    assert_string_equal(req.domain, "");
    assert_int_equal(one("domain", "a/b"), -EINVAL);
    assert_string_equal(why, "domain: expected a host name of at most 253 letters, digits, '-', '.' and '_', "
                             "or an IPv6 address, got \"a/b\"");
    assert_int_equal(one("domain", "a;b"), -EINVAL);
    assert_int_equal(one("domain", "a b"), -EINVAL);
    assert_int_equal(one("domain", "a:80"), -EINVAL);
    assert_true(strncmp(why, "domain: ", 8) == 0);

    /* IPv6: Grafana sends the host of an IPv6 callback URL without brackets
     * (Go's URL.Hostname); either way it is kept in brackets */
    static const struct {
        const char *v, *want;
    } v6[] = {
        { "2001:db8::5", "[2001:db8::5]" }, { "::1", "[::1]" }, { "[::1]", "[::1]" },
        { "[2001:db8::5]", "[2001:db8::5]" }, { "2001:DB8:0:0:0:0:0:5", "[2001:DB8:0:0:0:0:0:5]" },
        { "::ffff:10.0.0.1", "[::ffff:10.0.0.1]" },
        { "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]" },
    };
    for (size_t i = 0; i < sizeof(v6) / sizeof(v6[0]); i++) {
        assert_int_equal(one("domain", v6[i].v), 0);
        assert_string_equal(req.domain, v6[i].want);
    }
    const char *bad6[] = {
        "[::1", "::1]", "[]", "[", "]", "[::1]:3000", "::1:3000:x", "2001:db8::g", ":::", "fe80::1%eth0",
        "[fe80::1%25eth0]", "[[::1]]", "[::1] ", "1:2:3:4:5:6:7:8:9", "[grafana]", "grafana:",
    };
    for (size_t i = 0; i < sizeof(bad6) / sizeof(bad6[0]); i++) {
        if (one("domain", bad6[i]) != -EINVAL)
            fail_msg("domain=%s was taken as %s", bad6[i], req.domain);
        assert_true(strncmp(why, "domain: ", 8) == 0);
    }

    char d[QUERY_DOMAIN_MAX + 2];
    memset(d, 'd', sizeof(d) - 1);
    d[QUERY_DOMAIN_MAX] = '\0';
    assert_int_equal(one("domain", d), 0);
    assert_int_equal(strlen(req.domain), QUERY_DOMAIN_MAX);
    d[QUERY_DOMAIN_MAX] = 'd';
    d[QUERY_DOMAIN_MAX + 1] = '\0';
    assert_int_equal(one("domain", d), -EINVAL);
    query_fini(&req);
}

static void test_timezone(void **state)
{
    (void)state;
    static const struct {
        const char *v, *want;
    } good[] = {
        /* IANA names pass as written */
        { "Europe/Stockholm", "Europe/Stockholm" }, { "Etc/GMT+5", "Etc/GMT+5" }, { "Etc/GMT-14", "Etc/GMT-14" },
        { "America/Port-au-Prince", "America/Port-au-Prince" },
        { "America/Argentina/ComodRivadavia", "America/Argentina/ComodRivadavia" },
        { "America/North_Dakota/New_Salem", "America/North_Dakota/New_Salem" },
        /* Grafana's POSIX form of the user's UTC+05:00: 5 hours ahead */
        { "UTC-05:00", "Etc/GMT-5" }, { "UTC+03:00", "Etc/GMT+3" }, { "UTC-05:30", "GMT+05:30" },
        { "UTC+00:00", "UTC" }, { "UTC-02:00", "Etc/GMT-2" },
        /* Grafana's utc dashboards, and other offsets */
        { "UTC", "UTC" }, { "utc", "UTC" }, { "GMT+05:30", "GMT+05:30" }, { "+05:30", "GMT+05:30" },
        { "-03:00", "Etc/GMT+3" }, { "UTC-5", "Etc/GMT-5" },
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(one("timezone", good[i].v), 0);
        assert_string_equal(req.timezone, good[i].want);
    }
    const char *bad[] = {
        "../etc/passwd", "/etc/localtime", "Europe Stockholm", "_x", "Europe/Stockholm;",
        "Europe\\Stockholm", "Europe/Stockholm\xc3\xa9", "5", "UTC+24:00", "UTC+05:60", "UTC+530",
        "UTC%2B05%3A00", "05:00",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (one("timezone", bad[i]) != -EINVAL)
            fail_msg("timezone=%s was taken as %s", bad[i], req.timezone);
        assert_true(strncmp(why, "timezone: ", 10) == 0);
    }
    assert_int_equal(one("timezone", "UTC+24:00"), -EINVAL);
    assert_string_equal(why, "timezone: expected an IANA name such as Europe/Stockholm, UTC, UTC-05:00 (POSIX "
                             "sign, as Grafana sends it), GMT+05:30, +05:30, browser or default, got "
                             "\"UTC+24:00\"");
    assert_int_equal(one("timezone", ""), 0);
    assert_string_equal(req.timezone, "");
    /* browser and default without a configured zone: the browser's own */
    assert_int_equal(one("timezone", "browser"), 0);
    assert_string_equal(req.timezone, "");
    assert_int_equal(one("timezone", "Default"), 0);
    assert_string_equal(req.timezone, "");

    char tz[QUERY_TIMEZONE_MAX + 2];
    memset(tz, 'Z', sizeof(tz) - 1);
    tz[QUERY_TIMEZONE_MAX] = '\0';
    assert_int_equal(one("timezone", tz), 0);
    tz[QUERY_TIMEZONE_MAX] = 'Z';
    tz[QUERY_TIMEZONE_MAX + 1] = '\0';
    assert_int_equal(one("timezone", tz), -EINVAL);

    /* the Go reference's spelling is the same parameter */
    assert_int_equal(one("timeZone", "Asia/Tokyo"), 0);
    assert_string_equal(req.timezone, "Asia/Tokyo");
    assert_int_equal(one("timeZone", "Asia Tokyo"), -EINVAL);
    assert_true(strncmp(why, "timeZone: ", 10) == 0);
    assert_int_equal(PARSE("url", URL, "timezone", "UTC", "timeZone", "UTC"), -EINVAL);
    assert_string_equal(why, "timeZone: given more than once");
    query_fini(&req);
}

/* [renderer] timezone: for a request that gives none, an empty one, or
 * browser or default; a zone the request gives wins. */
static void test_timezone_default(void **state)
{
    (void)state;
    default_tz = "Europe/Paris";
    assert_int_equal(PARSE("url", URL), 0);
    assert_string_equal(req.timezone, "Europe/Paris");
    query_fini(&req);
    const char *keep[] = { "", "browser", "default", "BROWSER", "Default", NULL };
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        assert_int_equal(one("timezone", keep[i]), 0);
        assert_string_equal(req.timezone, "Europe/Paris");
    }
    assert_int_equal(one("timezone", "UTC-05:30"), 0);
    assert_string_equal(req.timezone, "GMT+05:30");
    assert_int_equal(one("timeZone", "Asia/Tokyo"), 0);
    assert_string_equal(req.timezone, "Asia/Tokyo");
    /* a bad one is still a 400, not the default */
    assert_int_equal(one("timezone", "Asia Tokyo"), -EINVAL);
    assert_true(strncmp(why, "timezone: ", 10) == 0);
    default_tz = "";
    assert_int_equal(one("timezone", "browser"), 0);
    assert_string_equal(req.timezone, "");
    default_tz = NULL;
    query_fini(&req);
}

static void test_pdf_options(void **state)
{
    (void)state;
    const char *const kv[] = {
        "url", URL, "encoding", "pdf", "pdf.format", "Letter", "pdf.landscape", "true",
        "pdf.printBackground", "false", "pdf.pageRanges", "1-5, 8, 11-13", NULL,
    };
    assert_int_equal(parse_full(QUERY_ROUTE_RENDER, kv, NULL, NULL), 0);
    assert_int_equal(req.encoding, QUERY_ENCODING_PDF);
    assert_int_equal(req.pdf.format, QUERY_PAPER_LETTER);
    assert_int_equal(req.pdf.landscape, 1);
    assert_int_equal(req.pdf.print_background, 0);
    assert_string_equal(req.pdf.page_ranges, "1-5, 8, 11-13");

    const struct { const char *v; enum query_paper p; } papers[] = {
        { "a4", QUERY_PAPER_A4 }, { "A4", QUERY_PAPER_A4 }, { "A0", QUERY_PAPER_A0 },
        { "a6", QUERY_PAPER_A6 }, { "LEDGER", QUERY_PAPER_LEDGER }, { "legal", QUERY_PAPER_LEGAL },
        { "Tabloid", QUERY_PAPER_TABLOID }, { "letter", QUERY_PAPER_LETTER },
    };
    for (size_t i = 0; i < sizeof(papers) / sizeof(papers[0]); i++) {
        assert_int_equal(one("pdf.format", papers[i].v), 0);
        assert_int_equal(req.pdf.format, papers[i].p);
    }
    const char *bad_papers[] = { "A7", "a4 ", "B5", "a", "letters", "0" };
    for (size_t i = 0; i < sizeof(bad_papers) / sizeof(bad_papers[0]); i++) {
        assert_int_equal(one("pdf.format", bad_papers[i]), -EINVAL);
        assert_true(strncmp(why, "pdf.format: ", 12) == 0);
    }

    const struct { const char *v; int b; } bools[] = {
        { "true", 1 }, { "TRUE", 1 }, { "1", 1 }, { "false", 0 }, { "False", 0 }, { "0", 0 },
    };
    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
        assert_int_equal(one("pdf.landscape", bools[i].v), 0);
        assert_int_equal(req.pdf.landscape, bools[i].b);
        assert_int_equal(one("pdf.printBackground", bools[i].v), 0);
        assert_int_equal(req.pdf.print_background, bools[i].b);
    }
    const char *bad_bools[] = { "yes", "2", "truee", "t", "-1" };
    for (size_t i = 0; i < sizeof(bad_bools) / sizeof(bad_bools[0]); i++) {
        assert_int_equal(one("pdf.landscape", bad_bools[i]), -EINVAL);
        assert_true(strncmp(why, "pdf.landscape: ", 15) == 0);
        assert_int_equal(one("pdf.printBackground", bad_bools[i]), -EINVAL);
        assert_true(strncmp(why, "pdf.printBackground: ", 21) == 0);
    }
    query_fini(&req);
}

static void test_pdf_page_ranges(void **state)
{
    (void)state;
    const char *good[] = {
        "1", "1-5", "1-1", "-3", "4-", "1,2,3", "1-5, 8, 11-13", " 1 , 2 ", "999999",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(one("pdf.pageRanges", good[i]), 0);
        assert_string_equal(req.pdf.page_ranges, good[i]);
    }
    const char *bad[] = {
        "5-1", "0", "0-3", "a", "1--2", "-", ",", "1,", ",1", "1-2-3", "1 2", "1000000",
        "1;2", "1-0x5", "+1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(one("pdf.pageRanges", bad[i]), -EINVAL);
        assert_true(strncmp(why, "pdf.pageRanges: ", 16) == 0);
    }
    char r[QUERY_PAGE_RANGES_MAX + 2];
    for (size_t i = 0; i < sizeof(r) - 1; i++)
        r[i] = i % 2 ? ',' : '1';
    r[QUERY_PAGE_RANGES_MAX - 1] = '\0'; /* 127: "1,1,...,1" */
    assert_int_equal(one("pdf.pageRanges", r), 0);
    r[QUERY_PAGE_RANGES_MAX - 1] = ',';
    r[QUERY_PAGE_RANGES_MAX] = '1';
    r[QUERY_PAGE_RANGES_MAX + 1] = '\0'; /* 129 */
    assert_int_equal(one("pdf.pageRanges", r), -EINVAL);
    query_fini(&req);
}

/* The reference service read the pdf options from the target URL itself,
 * where Grafana still puts them. */
static void test_pdf_options_in_url(void **state)
{
    (void)state;
    const char *u = "http://grafana:3000/d/abc/x?orgId=1&pdf.format=Letter&pdf.landscape=true"
                    "&pdf.printBackground=false&pdf.pageRanges=1-2%2C+4&pdf.format=A3&render=1";
    assert_int_equal(PARSE("url", u, "encoding", "pdf"), 0);
    assert_int_equal(req.pdf.format, QUERY_PAPER_LETTER); /* the first one */
    assert_int_equal(req.pdf.landscape, 1);
    assert_int_equal(req.pdf.print_background, 0);
    assert_string_equal(req.pdf.page_ranges, "1-2, 4");
    query_fini(&req);

    /* the render query's own value wins */
    assert_int_equal(PARSE("url", u, "encoding", "pdf", "pdf.format", "a5"), 0);
    assert_int_equal(req.pdf.format, QUERY_PAPER_A5);
    assert_int_equal(req.pdf.landscape, 1);
    query_fini(&req);

    /* not read for a PNG */
    assert_int_equal(PARSE("url", u), 0);
    assert_int_equal(req.pdf.format, QUERY_PAPER_A4);
    assert_int_equal(req.pdf.landscape, 0);
    query_fini(&req);

    /* after '#' is not the query; an encoded key counts */
    assert_int_equal(PARSE("url", "http://g/d?x=1#pdf.format=a3", "encoding", "pdf"), 0);
    assert_int_equal(req.pdf.format, QUERY_PAPER_A4);
    query_fini(&req);
    assert_int_equal(PARSE("url", "http://g/d?pdf%2Eformat=a3&pdf.landscape", "encoding", "pdf"), 0);
    assert_int_equal(req.pdf.format, QUERY_PAPER_A3);
    assert_int_equal(req.pdf.landscape, 0);
    query_fini(&req);

    assert_int_equal(PARSE("url", "http://g/d?pdf.format=A7", "encoding", "pdf"), -EINVAL);
    assert_string_equal(why, "pdf.format (in url): expected letter, legal, tabloid, ledger "
                             "or a0 to a6, got \"A7\"");
    assert_int_equal(PARSE("url", "http://g/d?pdf.format=a%4", "encoding", "pdf"), -EINVAL);
    assert_true(strncmp(why, "pdf.format (in url): ", 21) == 0);
    assert_int_equal(PARSE("url", "http://g/d?pdf.landscape=%0a", "encoding", "pdf"), -EINVAL);
    assert_int_equal(PARSE("url", "http://g/d?pdf.pageRanges=3-1", "encoding", "pdf"), -EINVAL);
    assert_true(strncmp(why, "pdf.pageRanges (in url): ", 25) == 0);
    query_fini(&req);
}

static void test_unknown_ignored(void **state)
{
    (void)state;
    assert_int_equal(PARSE("url", URL, "name", "report", "theme", "\x01\x02", "from", "now-6h",
                           "to", "now", "Width", "abc", "foo", NULL, "filePath", "/etc/passwd",
                           "landscape", "maybe"),
                     0);
    assert_int_equal(req.width, 1000);
    query_fini(&req);
    /* a key is matched whole, NUL and all */
    struct query_param ps[] = {
        { "url", 3, URL, strlen(URL) },
        { "width\0x", 7, "abc", 3 },
        { "widt", 4, "abc", 3 },
    };
    assert_int_equal(query_parse(&req, QUERY_ROUTE_RENDER, ps, 3, NULL, NULL, NULL, why, sizeof(why)), 0);
    assert_int_equal(req.width, 1000);
    query_fini(&req);
    struct query_param nokey[] = { { NULL, 0, "x", 1 }, { "url", 3, URL, strlen(URL) } };
    assert_int_equal(query_parse(&req, QUERY_ROUTE_RENDER, nokey, 2, NULL, NULL, NULL, why, sizeof(why)), 0);
    query_fini(&req);
}

static void test_control_characters(void **state)
{
    (void)state;
    struct query_param ps[] = {
        { "url", 3, URL, strlen(URL) },
        { "width", 5, "100\0" "0", 5 },
    };
    assert_int_equal(query_parse(&req, QUERY_ROUTE_RENDER, ps, 2, NULL, NULL, NULL, why, sizeof(why)),
                     -EINVAL);
    assert_string_equal(why, "width: expected no control characters, got \"100\\x000\"");
    assert_int_equal(one("domain", "grafana\n"), -EINVAL);
    assert_string_equal(why, "domain: expected no control characters, got \"grafana\\x0a\"");
    assert_int_equal(one("timezone", "UTC\x7f"), -EINVAL);
    assert_int_equal(one("renderKey", "\"\\"), -EINVAL);
    assert_non_null(strstr(why, "got \"\\\"\\\\\""));
    query_fini(&req);
}

/* The first bad parameter, in the order given, is the one reported. */
static void test_first_error_wins(void **state)
{
    (void)state;
    assert_int_equal(PARSE("url", URL, "height", "x", "width", "y"), -EINVAL);
    assert_true(strncmp(why, "height: ", 8) == 0);
    assert_int_equal(PARSE("width", "y", "url", "ftp://x/"), -EINVAL);
    assert_true(strncmp(why, "width: ", 7) == 0);
    assert_int_equal(PARSE("url", "ftp://x/", "width", "y"), -EACCES);
    assert_true(strncmp(why, "url: ", 5) == 0);
    /* a failure after the URL was copied leaves nothing behind (cmocka checks) */
    assert_int_equal(PARSE("url", URL, "renderKey", "k", "width", "y"), -EINVAL);
    assert_null(req.url);
    assert_null(req.render_key);
    query_fini(&req);
}

static void test_accept_language(void **state)
{
    (void)state;
    const char *const kv[] = { "url", URL, NULL };
    const char *good[] = { "en-US,en;q=0.9", "*", "de", "fr-CH, fr;q=0.9, en;q=0.8, *;q=0.5" };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(parse_full(QUERY_ROUTE_RENDER, kv, good[i], NULL), 0);
        assert_string_equal(req.accept_language, good[i]);
        query_fini(&req);
    }
    assert_int_equal(parse_full(QUERY_ROUTE_RENDER, kv, "", NULL), 0);
    assert_null(req.accept_language);
    query_fini(&req);
    const char *bad[] = { "en\r\nX-Evil: 1", "en\"", "en<script>", "\xc3\xa9" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse_full(QUERY_ROUTE_RENDER, kv, bad[i], NULL), -EINVAL);
        assert_true(strncmp(why, "Accept-Language: ", 17) == 0);
        assert_null(req.url);
    }
    char al[QUERY_ACCEPT_LANGUAGE_MAX + 2];
    memset(al, 'e', sizeof(al) - 1);
    al[QUERY_ACCEPT_LANGUAGE_MAX] = '\0';
    assert_int_equal(parse_full(QUERY_ROUTE_RENDER, kv, al, NULL), 0);
    query_fini(&req);
    al[QUERY_ACCEPT_LANGUAGE_MAX] = 'e';
    al[QUERY_ACCEPT_LANGUAGE_MAX + 1] = '\0';
    assert_int_equal(parse_full(QUERY_ROUTE_RENDER, kv, al, NULL), -EINVAL);
    query_fini(&req);
}

static void test_why_buffer(void **state)
{
    (void)state;
    struct query_param p = { "width", 5, "abc", 3 };
    /* no room for a message, or a tiny one: still the right code */
    assert_int_equal(query_parse(&req, QUERY_ROUTE_RENDER, &p, 1, NULL, NULL, NULL, NULL, 0), -EINVAL);
    char small[8];
    assert_int_equal(query_parse(&req, QUERY_ROUTE_RENDER, &p, 1, NULL, NULL, NULL, small, sizeof(small)),
                     -EINVAL);
    assert_string_equal(small, "width: ");
    struct query_param u = { "url", 3, URL, strlen(URL) };
    assert_int_equal(query_parse(&req, QUERY_ROUTE_RENDER, &u, 1, NULL, NULL, NULL, NULL, 0), 0);
    query_fini(&req);
    assert_int_equal(query_url_allowed("ftp://x/", NULL, NULL, 0), -EACCES);
    query_fini(&req);
}

struct url_case {
    const char *url;
    int rc;
};

static const struct url_case url_cases[] = {
    { "http://grafana/", 0 },
    { "http://grafana", 0 },
    { "https://grafana.example.com/d/abc?orgId=1&from=now-6h", 0 },
    { "HTTPS://GRAFANA/", 0 },
    { "HtTp://grafana/", 0 },
    { "http://grafana:3000/d-solo/x?panelId=2&render=1", 0 },
    { "http://grafana:1/", 0 },
    { "http://grafana:65535/", 0 },
    { "http://grafana:/", 0 },
    { "http://127.0.0.1:3000/", 0 },
    { "http://grafana_1:3000/", 0 },
    { "http://[::1]/", 0 },
    { "http://[::1]:3000/d", 0 },
    { "http://[2001:db8::7]", 0 },
    { "http://[::ffff:10.0.0.1]/", 0 },
    { "http://grafana/path@x", 0 }, /* '@' past the host is just a path */
    { "http://grafana?x@y", 0 },
    { "http://grafana#@evil", 0 },
    { "http://grafana/%20x", 0 },
    /* schemes */
    { "javascript:alert(1)", -EACCES },
    { "JAVASCRIPT:alert(1)", -EACCES },
    { "file:///etc/passwd", -EACCES },
    { "data:text/html,<b>x</b>", -EACCES },
    { "ftp://grafana/", -EACCES },
    { "ws://grafana/", -EACCES },
    { "chrome://settings", -EACCES },
    { "about:blank", -EACCES },
    { "view-source:http://grafana/", -EACCES },
    { "httpx://grafana/", -EACCES },
    { "http+x://grafana/", -EACCES },
    { "grafana/d/x", -EACCES },
    { "//grafana/d/x", -EACCES },
    { "/d/x", -EACCES },
    { "1http://grafana/", -EACCES },
    { ":http://grafana/", -EACCES },
    /* shape */
    { "http:/x", -EINVAL },
    { "http:x", -EINVAL },
    { "http:", -EINVAL },
    { "https:\\\\evil.example", -EINVAL },
    { "http://", -EINVAL },
    { "http:///evil.example/", -EINVAL },
    { "http://:3000/", -EINVAL },
    { "http://grafana:0/", -EINVAL },
    { "http://grafana:65536/", -EINVAL },
    { "http://grafana:99999999999999999999/", -EINVAL },
    { "http://grafana:abc/", -EINVAL },
    { "http://grafana:-1/", -EINVAL },
    { "http://grafana:3000:3000/", -EINVAL },
    { "http://[::1/", -EINVAL },
    { "http://[zz::1]/", -EINVAL },
    { "http://[]/", -EINVAL },
    { "http://[fe80::1%25eth0]/", -EINVAL },
    { "http://[::1]x/", -EINVAL },
    { "http://::1/", -EINVAL },
    { "http://gra%66ana/", -EINVAL },
    { "http://gra fana/", -EINVAL },
    { "http://grafana/\tx", -EINVAL },
    { "http://gr\nafana/", -EINVAL },
    { "http://grafana\\@evil.example/", -EINVAL },
    { "http://gr\xc3\xa4" "fana/", -EINVAL },
    { "http://grafana!/", -EINVAL },
    { "", -EINVAL },
    /* user info */
    { "http://user@grafana/", -EACCES },
    { "http://user:pw@grafana/", -EACCES },
    { "http://grafana@evil.example/", -EACCES },
    { "http://grafana:3000@evil.example/", -EACCES },
    { "http://@grafana/", -EACCES },
};

static void test_url_allowed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(url_cases) / sizeof(url_cases[0]); i++) {
        const struct url_case *c = &url_cases[i];
        why[0] = '\0';
        int rc = query_url_allowed(c->url, NULL, why, sizeof(why));
        if (rc != c->rc)
            fail_msg("url %s: got %d (%s), expected %d", c->url, rc, why, c->rc);
        if (rc)
            assert_true(strncmp(why, "url: ", 5) == 0);
    }
    assert_int_equal(query_url_allowed(NULL, NULL, why, sizeof(why)), -EINVAL);
    char long_host[300] = "http://";
    memset(long_host + 7, 'h', 254);
    long_host[7 + 254] = '\0';
    assert_int_equal(query_url_allowed(long_host, NULL, why, sizeof(why)), -EINVAL);
    long_host[7 + 253] = '\0';
    assert_int_equal(query_url_allowed(long_host, NULL, why, sizeof(why)), 0);
    assert_int_equal(query_url_allowed("http://user@grafana/", NULL, why, sizeof(why)), -EACCES);
    assert_string_equal(why, "url: expected no user info (user@host), got \"http://user@grafana/\"");
    /* link-local and metadata addresses: refused with no list too, as
     * every request of the page is (renderer/hostcheck.c) */
    assert_int_equal(query_url_allowed("http://169.254.169.254/latest", NULL, why, sizeof(why)), -EACCES);
    assert_string_equal(why, "url: host 169.254.169.254 is a link-local or metadata address "
                             "(list it in allowed_hosts to allow it)");
    assert_int_equal(query_url_allowed("http://[fe80::1]:3000/", NULL, why, sizeof(why)), -EACCES);
    const char *const listed[] = { "169.254.169.254", NULL };
    assert_int_equal(query_url_allowed("http://169.254.169.254/latest", listed, why, sizeof(why)), 0);
    query_fini(&req);
}

static void test_allow_list(void **state)
{
    (void)state;
    const char *const hosts[] = { "grafana", "Grafana.Example.com", "[::1]", "2001:db8::7",
                                  "10.0.0.1", NULL };
    const struct url_case cases[] = {
        { "http://grafana/", 0 },
        { "http://grafana:3000/d/x", 0 },
        { "https://GRAFANA:443/", 0 },
        { "http://grafana.example.COM/x", 0 },
        { "http://[::1]:3000/", 0 },
        { "http://[0:0::1]/", 0 }, /* the same address, written otherwise */
        { "http://[2001:DB8:0::7]/", 0 },
        { "http://10.0.0.1/", 0 },
        { "http://10.0.0.1:8080/", 0 },
        { "http://grafanax/", -EACCES },
        { "http://grafan/", -EACCES },
        { "http://grafana.evil/", -EACCES },
        { "http://evil.example/?grafana", -EACCES },
        { "http://evil.example/grafana", -EACCES },
        { "http://grafana.example.com.evil.net/", -EACCES },
        { "http://example.com/", -EACCES },
        { "http://[::2]/", -EACCES },
        { "http://10.0.0.2/", -EACCES },
        { "http://10.0.0.10/", -EACCES },
        { "http://grafana@evil.example/", -EACCES },
        { "ftp://grafana/", -EACCES },
        { "http:/grafana", -EINVAL },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = query_url_allowed(cases[i].url, hosts, why, sizeof(why));
        if (rc != cases[i].rc)
            fail_msg("url %s: got %d (%s), expected %d", cases[i].url, rc, why, cases[i].rc);
    }
    assert_int_equal(query_url_allowed("http://evil.example:3000/x", hosts, why, sizeof(why)),
                     -EACCES);
    assert_string_equal(why, "url: host evil.example:3000 is not in allowed_hosts");

    /* an empty list allows nothing; NULL allows any host */
    const char *const none[] = { NULL };
    assert_int_equal(query_url_allowed("http://grafana/", none, why, sizeof(why)), -EACCES);
    assert_int_equal(query_url_allowed("http://anything.example/", NULL, why, sizeof(why)), 0);

    /* through query_parse */
    const char *const kv[] = { "url", "http://evil.example/", NULL };
    assert_int_equal(parse_full(QUERY_ROUTE_RENDER, kv, NULL, hosts), -EACCES);
    assert_string_equal(why, "url: host evil.example is not in allowed_hosts");
    const char *const ok[] = { "url", "http://grafana:3000/d/x", NULL };
    assert_int_equal(parse_full(QUERY_ROUTE_RENDER, ok, NULL, hosts), 0);
    query_fini(&req);
}

/* Entries with a port allow the host at that port only: the URL's own, or
 * its scheme's default. */
static void test_allow_list_ports(void **state)
{
    (void)state;
    const char *const hosts[] = { "grafana.example:3000", "[::1]:8080", "secure.example:443",
                                  "web.example:80", "2001:db8::7", NULL };
    const struct url_case cases[] = {
        { "http://grafana.example:3000/d/x", 0 },
        { "https://grafana.example:3000/", 0 }, /* the port, whatever the scheme */
        { "http://grafana.example:03000/", 0 }, /* read as 3000, as a browser does */
        { "http://grafana.example/", -EACCES },  /* port 80 */
        { "http://grafana.example:3001/", -EACCES },
        { "http://grafana.example:/", -EACCES }, /* empty: the default, 80 */
        { "http://[::1]:8080/", 0 },
        { "http://[0::1]:8080/", 0 },
        { "http://[::1]/", -EACCES },
        { "http://[::1]:8081/", -EACCES },
        { "https://secure.example/", 0 },
        { "https://secure.example:443/", 0 },
        { "http://secure.example:443/", 0 },
        { "http://secure.example/", -EACCES },
        { "http://web.example/", 0 },
        { "http://web.example:/", 0 },
        { "https://web.example/", -EACCES },
        { "http://[2001:db8::7]:1234/", 0 }, /* a bare IPv6 entry has no port */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = query_url_allowed(cases[i].url, hosts, why, sizeof(why));
        if (rc != cases[i].rc)
            fail_msg("url %s: got %d (%s), expected %d", cases[i].url, rc, why, cases[i].rc);
    }
    assert_int_equal(query_url_allowed("http://grafana.example/", hosts, why, sizeof(why)), -EACCES);
    assert_string_equal(why, "url: host grafana.example is not in allowed_hosts");
    assert_int_equal(query_url_allowed("http://[::1]:9/", hosts, why, sizeof(why)), -EACCES);
    assert_string_equal(why, "url: host [::1]:9 is not in allowed_hosts");

    /* entries config.c would refuse match nothing */
    const char *const broken[] = { "grafana:", "grafana:0", "grafana:99999", "[::1", "[::1]x", "grafana:x", NULL };
    assert_int_equal(query_url_allowed("http://grafana/", broken, why, sizeof(why)), -EACCES);
    assert_int_equal(query_url_allowed("http://[::1]/", broken, why, sizeof(why)), -EACCES);
}

/* What an attacker writes to make a URL look as if it went to an allowed
 * host while a browser would go elsewhere, or to sneak a host past an exact
 * comparison: each is refused, and the message names the host the browser
 * would really have opened. */
static void test_allow_list_tricks(void **state)
{
    (void)state;
    const char *const hosts[] = { "allowed.example", "127.0.0.1", "[::1]", "dot.example.", NULL };
    const struct url_case cases[] = {
        { "http://allowed.example/", 0 },
        { "HTTPS://ALLOWED.Example/x?y#z", 0 },
        { "http://127.0.0.1:3000/", 0 },
        { "http://dot.example./", 0 },             /* an entry with its dot matches only with it */
        /* user info: the host is what follows the @ */
        { "http://allowed.example@evil.example/", -EACCES },
        { "http://allowed.example:80@evil.example/", -EACCES },
        { "http://allowed.example%40evil.example/", -EINVAL },
        { "http://evil.example?@allowed.example/", -EACCES },
        /* the allowed name elsewhere in the URL */
        { "http://evil.example/?allowed.example", -EACCES },
        { "http://evil.example/allowed.example", -EACCES },
        { "http://evil.example#allowed.example", -EACCES },
        { "http://evil.example/#@allowed.example", -EACCES },
        { "http://allowed.example.evil.example/", -EACCES },
        { "http://evilallowed.example/", -EACCES },
        { "http://evil.example\\@allowed.example/", -EINVAL }, /* a browser reads '\' as '/' */
        { "http://evil.example\\allowed.example/", -EINVAL },
        /* another spelling of an allowed host is another host: refused, never folded */
        { "http://allowed.example./", -EACCES },   /* trailing dot */
        { "http://allowed.example../", -EACCES },
        { "http://dot.example/", -EACCES },
        { "http://127.1/", -EACCES },              /* IPv4 shorthand of 127.0.0.1 */
        { "http://2130706433/", -EACCES },
        { "http://0x7f.0.0.1/", -EACCES },
        { "http://0177.0.0.1/", -EACCES },
        { "http://127.0.0.1.nip.io/", -EACCES },
        { "http://[::ffff:127.0.0.1]/", -EACCES }, /* IPv4-mapped is not 127.0.0.1 */
        { "http://[::2]/", -EACCES },
        /* percent-encoding and bytes a browser would drop or decode */
        { "http://allowed%2Eexample/", -EINVAL },
        { "http://%61llowed.example/", -EINVAL },
        { "http://allowed.example%2F@evil.example/", -EACCES },
        { "http://allo\twed.example/", -EINVAL },
        { "http://allo\nwed.example/", -EINVAL },
        { "http://allowed.exa mple/", -EINVAL },
        { "http://allowed.ex\xc3\xa4mple/", -EINVAL },
        { "http://[fe80::1%25eth0]/", -EINVAL },   /* zone ids */
        { "http://[::1]allowed.example/", -EINVAL },
        /* no host where a browser would still find one */
        { "http:///allowed.example/", -EINVAL },
        { "http:allowed.example/", -EINVAL },
        { "http:/allowed.example/", -EINVAL },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = query_url_allowed(cases[i].url, hosts, why, sizeof(why));
        if (rc != cases[i].rc)
            fail_msg("url %s: got %d (%s), expected %d", cases[i].url, rc, why, cases[i].rc);
    }
    assert_int_equal(query_url_allowed("http://evil.example/?allowed.example", hosts, why, sizeof(why)), -EACCES);
    assert_string_equal(why, "url: host evil.example is not in allowed_hosts");
    assert_int_equal(query_url_allowed("http://evil.example#allowed.example", hosts, why, sizeof(why)), -EACCES);
    assert_string_equal(why, "url: host evil.example is not in allowed_hosts");
    assert_int_equal(query_url_allowed("http://allowed.example./", hosts, why, sizeof(why)), -EACCES);
    assert_string_equal(why, "url: host allowed.example. is not in allowed_hosts");
    assert_int_equal(query_url_allowed("http://allowed.example@evil.example/", hosts, why, sizeof(why)), -EACCES);
    assert_non_null(strstr(why, "user info"));

    /* through query_parse, as MHD hands it over: already percent-decoded, so
     * an encoded NUL or newline arrives as the byte itself */
    const char nul_url[] = "http://allowed.example\0.evil.example/";
    struct query_param p = { "url", 3, nul_url, sizeof(nul_url) - 1 };
    assert_int_equal(query_parse(&req, QUERY_ROUTE_RENDER, &p, 1, NULL, hosts, NULL, why, sizeof(why)), -EINVAL);
    const char *const ok[] = { "url", "http://allowed.example/d/x?var-host=evil.example", NULL };
    assert_int_equal(parse_full(QUERY_ROUTE_RENDER, ok, NULL, hosts), 0);
    query_fini(&req);
}

static void test_token(void **state)
{
    (void)state;
    assert_int_equal(query_token_equal("-", "-"), 1);
    assert_int_equal(query_token_equal("s3cret-token", "s3cret-token"), 1);
    assert_int_equal(query_token_equal("s3cret-tokeN", "s3cret-token"), 0);
    assert_int_equal(query_token_equal("X3cret-token", "s3cret-token"), 0);
    assert_int_equal(query_token_equal("s3cret", "s3cret-token"), 0);      /* prefix */
    assert_int_equal(query_token_equal("s3cret-token-", "s3cret-token"), 0); /* longer */
    assert_int_equal(query_token_equal("s3cret-tokenx", "s3cret-token"), 0);
    assert_int_equal(query_token_equal("", "s3cret-token"), 0);
    assert_int_equal(query_token_equal(NULL, "s3cret-token"), 0);
    assert_int_equal(query_token_equal("x", ""), 0);
    assert_int_equal(query_token_equal("", ""), 1);
    assert_int_equal(query_token_equal(NULL, ""), 1);
    /* a byte that only differs in its high bit, and one past a NUL-like zero */
    assert_int_equal(query_token_equal("\xe1", "a"), 0);
    assert_int_equal(query_token_equal("ab", "a"), 0);
    char a[300], b[300];
    memset(a, 'q', sizeof(a) - 1);
    a[sizeof(a) - 1] = '\0';
    memcpy(b, a, sizeof(a));
    assert_int_equal(query_token_equal(a, b), 1);
    for (size_t i = 0; i < sizeof(a) - 1; i += 37) {
        b[i] = 'r';
        assert_int_equal(query_token_equal(a, b), 0);
        b[i] = 'q';
    }
    query_fini(&req);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(query_encoding_name(QUERY_ENCODING_PNG), "png");
    assert_string_equal(query_encoding_name(QUERY_ENCODING_PDF), "pdf");
    assert_string_equal(query_encoding_name(QUERY_ENCODING_CSV), "csv");
    assert_string_equal(query_paper_name(QUERY_PAPER_A4), "a4");
    assert_string_equal(query_paper_name(QUERY_PAPER_LETTER), "letter");
    assert_string_equal(query_paper_name(QUERY_PAPER_A6), "a6");
    double w, h;
    query_paper_inches(QUERY_PAPER_A4, &w, &h);
    assert_true(fabs(w - 8.2677) < 1e-3 && fabs(h - 11.6929) < 1e-3);
    query_paper_inches(QUERY_PAPER_LETTER, &w, &h);
    assert_true(w == 8.5 && h == 11);
    query_paper_inches(QUERY_PAPER_LEDGER, &w, &h);
    assert_true(w == 17 && h == 11);
    query_paper_inches(QUERY_PAPER_A0, &w, &h);
    assert_true(fabs(w - 33.1102) < 1e-3 && fabs(h - 46.811) < 1e-2);
    query_fini(&req);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_grafana_query),
        cmocka_unit_test(test_url_missing),
        cmocka_unit_test(test_url_bad),
        cmocka_unit_test(test_url_length),
        cmocka_unit_test(test_width),
        cmocka_unit_test(test_height),
        cmocka_unit_test(test_device_scale_factor),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_encoding),
        cmocka_unit_test(test_render_key),
        cmocka_unit_test(test_domain),
        cmocka_unit_test(test_timezone),
        cmocka_unit_test(test_timezone_default),
        cmocka_unit_test(test_pdf_options),
        cmocka_unit_test(test_pdf_page_ranges),
        cmocka_unit_test(test_pdf_options_in_url),
        cmocka_unit_test(test_unknown_ignored),
        cmocka_unit_test(test_control_characters),
        cmocka_unit_test(test_first_error_wins),
        cmocka_unit_test(test_accept_language),
        cmocka_unit_test(test_why_buffer),
        cmocka_unit_test(test_url_allowed),
        cmocka_unit_test(test_allow_list),
        cmocka_unit_test(test_allow_list_ports),
        cmocka_unit_test(test_allow_list_tricks),
        cmocka_unit_test(test_token),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
