/* The page's words made fit for the log: the render key redacted wherever
 * it is (also as a renderKey= value, percent-encoded too, cut in two by
 * the end of what was read), texts cut at the bound on a character
 * boundary, quotes and a final backslash made safe for one quoted value;
 * of a URL its host and path only. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "pagetext.h"

#define KEY "rk7Hq2ZpW9sLx4Vb8NcT1yUe5RaD3fGk"

static char out[512];

static int clean(const char *in, size_t max, int more, const char *key)
{
    return pagetext_clean(out, sizeof(out), max, in, strlen(in), more, key);
}

static void test_key_redacted(void **state)
{
    (void)state;
    assert_int_equal(clean("key " KEY " twice " KEY, 300, 0, KEY), 0);
    assert_string_equal(out, "key [redacted] twice [redacted]");
    /* renderKey= values, whatever they are (another render's key) */
    clean("GET /api?renderKey=other123&orgId=1 renderkey=x; RENDERKEY%3Dabc%26y", 300, 0, KEY);
    assert_string_equal(out, "GET /api?renderKey=[redacted]&orgId=1 renderkey=[redacted]; RENDERKEY%3D[redacted]");
    /* no key known: the parameter's values still go */
    clean("a renderKey=" KEY, 300, 0, NULL);
    assert_string_equal(out, "a renderKey=[redacted]");
    clean("plain", 300, 0, "");
    assert_string_equal(out, "plain");
}

/* Redacted before it is cut: a key across the bound is not half kept. */
static void test_cut_after_redaction(void **state)
{
    (void)state;
    char in[400];
    memset(in, 'a', 290);
    strcpy(in + 290, KEY " tail");
    assert_int_equal(clean(in, 300, 0, KEY), 1);
    assert_int_equal(strlen(out), 300);
    assert_true(memcmp(out + 290, "[redacted]", 10) == 0);
    assert_null(strstr(out, "rk7Hq"));
    /* what was read was itself cut (more): a key cut in two at its end is
     * left out, not kept as a prefix */
    memset(in, 'b', 100);
    strcpy(in + 100, "rk7Hq2ZpW9sLx4Vb");
    assert_int_equal(clean(in, 300, 1, KEY), 1);
    assert_null(strstr(out, "rk7Hq2"));
    assert_true(strlen(out) <= 100);
}

static void test_characters(void **state)
{
    (void)state;
    /* a double quote would end the log value; a final backslash escape it */
    clean("say \"hi\" \\n ends \\", 300, 0, NULL);
    assert_string_equal(out, "say 'hi' \\n ends /");
    /* cut on a character boundary: "é" is two bytes, "€" three */
    assert_int_equal(clean("abcé", 4, 0, NULL), 1);
    assert_string_equal(out, "abc");
    assert_int_equal(clean("ab€", 4, 0, NULL), 1);
    assert_string_equal(out, "ab");
    assert_int_equal(clean("ab€", 5, 0, NULL), 0);
    assert_string_equal(out, "ab€");
    /* the bound never goes past the buffer */
    char small[8];
    assert_int_equal(pagetext_clean(small, sizeof(small), 300, "0123456789", 10, 0, NULL), 1);
    assert_string_equal(small, "0123456");
}

static void test_url(void **state)
{
    (void)state;
    char host[PAGETEXT_HOST_MAX + 1], path[64];
    pagetext_url("https://user:pw@grafana.example:3000/d/abc/" KEY "/x?renderKey=" KEY "&a=1#frag", KEY, host,
                 sizeof(host), path, sizeof(path), 40);
    assert_string_equal(host, "grafana.example:3000");
    assert_string_equal(path, "/d/abc/[redacted]/x");
    pagetext_url("http://[::1]:8080?q=" KEY, KEY, host, sizeof(host), path, sizeof(path), 40);
    assert_string_equal(host, "[::1]:8080");
    assert_string_equal(path, "");
    /* a span's host and path (api_trace.c): the query and fragment never */
    pagetext_url("http://grafana:3000/d-solo/abc/x?orgId=1&renderKey=secret#frag", NULL, host, sizeof(host), path,
                 sizeof(path), 40);
    assert_string_equal(host, "grafana:3000");
    assert_string_equal(path, "/d-solo/abc/x");
    pagetext_url("https://grafana?renderKey=secret", "secret", host, sizeof(host), path, sizeof(path), 40);
    assert_string_equal(host, "grafana");
    assert_string_equal(path, "");
    /* a host cut to the caller's buffer */
    char small[8];
    pagetext_url("http://grafana.example/p", NULL, small, sizeof(small), path, sizeof(path), 40);
    assert_string_equal(small, "grafana");
    pagetext_url("http://h/" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL, host, sizeof(host), path,
                 sizeof(path), 10);
    assert_string_equal(path, "/aaaaaaaaa");
    /* no authority: the scheme only, never the data */
    pagetext_url("data:text/html," KEY, KEY, host, sizeof(host), path, sizeof(path), 40);
    assert_string_equal(host, "data:");
    assert_string_equal(path, "");
    pagetext_url("blob:http://h/uuid", NULL, host, sizeof(host), path, sizeof(path), 40);
    assert_string_equal(host, "blob:");
    /* a host with odd characters: shown, not trusted */
    pagetext_url("http://a\"b c/p", NULL, host, sizeof(host), path, sizeof(path), 40);
    assert_string_equal(host, "a?b?c");
    assert_string_equal(path, "/p");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_redacted),
        cmocka_unit_test(test_cut_after_redaction),
        cmocka_unit_test(test_characters),
        cmocka_unit_test(test_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
