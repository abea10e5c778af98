/* The request matcher: what a page may load, by scheme, host, port and
 * list, with the link-local and metadata addresses in every spelling a
 * browser reads as one, IPv6 literals, user info and broken URLs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "hostcheck.h"

#define OK (-1) /* allowed: no reason */

struct req_case {
    const char *url;
    int want; /* OK or an enum names_refusal */
};

static void check(const struct req_case *cases, size_t n, const char *const *allowed)
{
    for (size_t i = 0; i < n; i++) {
        enum names_refusal why = NAMES_REFUSAL_COUNT;
        int rc = hostcheck_request(cases[i].url, strlen(cases[i].url), allowed, NULL, &why);
        int got = rc == 0 ? OK : (int)why;
        if (rc != 0 && rc != -EACCES)
            fail_msg("url %s: rc %d", cases[i].url, rc);
        if (got != cases[i].want)
            fail_msg("url %s: got %s, expected %s", cases[i].url, got == OK ? "allowed" : names_refusals[got],
                     cases[i].want == OK ? "allowed" : names_refusals[cases[i].want]);
    }
}

#define CHECK(cases, allowed) check(cases, sizeof(cases) / sizeof(cases[0]), allowed)

/* No list: anything but link-local and metadata addresses, and the schemes
 * that read the machine (file:) or the browser (chrome:). */
static void test_no_list(void **state)
{
    (void)state;
    static const struct req_case cases[] = {
        { "http://grafana:3000/public/build/app.js", OK },
        { "https://example.com/", OK },
        { "ws://grafana:3000/api/live/ws", OK },
        { "wss://grafana/api/live/ws", OK },
        { "data:font/woff2;base64,d09GMgABAAAA", OK },
        { "blob:http://grafana:3000/4b9c0a8e-0d5e-4a3e-9b0e-4d1b2f0c9a11", OK },
        { "about:blank", OK },
        { "ABOUT:srcdoc", OK },
        { "http://10.0.0.1/", OK },
        { "http://169.253.255.255/", OK },
        { "http://169.255.0.1/", OK },
        { "http://[fec0::1]/", OK },  /* site-local, not fe80::/10 */
        { "http://[fe7f::1]/", OK },
        { "http://169.254.example/", OK }, /* a name */
        /* link-local and metadata, every way the URL standard reads it */
        { "http://169.254.169.254/latest/meta-data/", NAMES_REFUSAL_LINK_LOCAL },
        { "http://169.254.169.254:80/", NAMES_REFUSAL_LINK_LOCAL },
        { "https://169.254.0.1/", NAMES_REFUSAL_LINK_LOCAL },
        { "ws://169.254.1.1/", NAMES_REFUSAL_LINK_LOCAL },
        { "http://169.254.169.254./", NAMES_REFUSAL_LINK_LOCAL },
        { "http://2852039166/", NAMES_REFUSAL_LINK_LOCAL },          /* decimal */
        { "http://0xA9FEA9FE/", NAMES_REFUSAL_LINK_LOCAL },          /* hex */
        { "http://0251.0376.0251.0376/", NAMES_REFUSAL_LINK_LOCAL }, /* octal */
        { "http://0xa9.0xfe.43518/", NAMES_REFUSAL_LINK_LOCAL },     /* three parts */
        { "http://169.16689662/", NAMES_REFUSAL_LINK_LOCAL },        /* two parts */
        { "http://user:pw@169.254.169.254/", NAMES_REFUSAL_LINK_LOCAL },
        { "http://grafana@169.254.169.254/", NAMES_REFUSAL_LINK_LOCAL },
        { "http://[fe80::1]/", NAMES_REFUSAL_LINK_LOCAL },
        { "http://[FEBF:ffff::1]:8080/", NAMES_REFUSAL_LINK_LOCAL },
        { "http://[::ffff:169.254.169.254]/", NAMES_REFUSAL_LINK_LOCAL },
        { "http://[::ffff:a9fe:a9fe]/", NAMES_REFUSAL_LINK_LOCAL },
        { "http://[64:ff9b::169.254.169.254]/", NAMES_REFUSAL_LINK_LOCAL },
        { "http://[fd00:ec2::254]/", NAMES_REFUSAL_LINK_LOCAL },
        /* out of range or not numbers: names, not addresses */
        { "http://169.254.169.256/", OK },
        { "http://4294967296/", OK },
        { "http://1.2.3.4.5/", OK },
        /* schemes */
        { "file:///etc/passwd", NAMES_REFUSAL_SCHEME },
        { "chrome://version", NAMES_REFUSAL_SCHEME },
        { "ftp://grafana/", NAMES_REFUSAL_SCHEME },
        { "filesystem:http://grafana/temporary/x", NAMES_REFUSAL_SCHEME },
        { "javascript:alert(1)", NAMES_REFUSAL_SCHEME },
        { "httpx://grafana/", NAMES_REFUSAL_SCHEME },
        /* broken */
        { "", NAMES_REFUSAL_MALFORMED },
        { "grafana/x", NAMES_REFUSAL_MALFORMED },
        { "http:/grafana", NAMES_REFUSAL_MALFORMED },
        { "http://", NAMES_REFUSAL_MALFORMED },
        { "http://:80/", NAMES_REFUSAL_MALFORMED },
        { "http://[fe80::1/", NAMES_REFUSAL_MALFORMED },
        { "http://[zz]/", NAMES_REFUSAL_MALFORMED },
        { "http://grafana:0/", NAMES_REFUSAL_MALFORMED },
        { "http://grafana:65536/", NAMES_REFUSAL_MALFORMED },
        { "http://grafana:x/", NAMES_REFUSAL_MALFORMED },
        { "http://[::1]x/", NAMES_REFUSAL_MALFORMED },
        /* what a browser reads otherwise than as written: never let through
         * as some other host (Chromium's own URLs never have these) */
        { "http://169.254.169\t.254/", NAMES_REFUSAL_MALFORMED },
        { "http://169.254.169.254\n/", NAMES_REFUSAL_MALFORMED },
        { "http://169.254.169.%32%35%34/", NAMES_REFUSAL_MALFORMED },
        { "http://\xef\xbc\x91\xef\xbc\x96\xef\xbc\x99.254.169.254/", NAMES_REFUSAL_MALFORMED },
        { "http://169.254.169.254\\@example.com/", NAMES_REFUSAL_LINK_LOCAL },
        { "http://grafana/a b", NAMES_REFUSAL_MALFORMED },
        { "data:text/plain,a b", OK }, /* the page's own: not read as a host */
    };
    CHECK(cases, NULL);
}

static void test_list(void **state)
{
    (void)state;
    const char *const hosts[] = { "127.0.0.1:3000", "grafana.example", "[::1]:8080", "169.254.10.10", NULL };
    static const struct req_case cases[] = {
        { "http://127.0.0.1:3000/d/x", OK },
        { "ws://127.0.0.1:3000/api/live/ws", OK },
        { "https://127.0.0.1:3000/", OK },
        { "http://127.0.0.1/", NAMES_REFUSAL_NOT_ALLOWED },
        { "http://127.0.0.1:3001/", NAMES_REFUSAL_NOT_ALLOWED },
        { "http://127.0.0.2:3000/", NAMES_REFUSAL_NOT_ALLOWED },
        { "http://localhost:3000/", NAMES_REFUSAL_NOT_ALLOWED },
        { "http://grafana.example/", OK },
        { "https://GRAFANA.example:8443/", OK },
        { "wss://grafana.example/", OK },
        { "http://grafana.example.evil/", NAMES_REFUSAL_NOT_ALLOWED },
        { "http://evil/?grafana.example", NAMES_REFUSAL_NOT_ALLOWED },
        { "http://evil/#@grafana.example", NAMES_REFUSAL_NOT_ALLOWED },
        /* the host after the user info is the one compared */
        { "http://grafana.example@evil/", NAMES_REFUSAL_NOT_ALLOWED },
        { "http://evil@grafana.example/", OK },
        /* '\\' ends the authority, as a browser reads it */
        { "http://evil.example\\@grafana.example/", NAMES_REFUSAL_NOT_ALLOWED },
        { "http://[::1]:8080/", OK },
        { "http://[0:0::1]:8080/", OK },
        { "http://[::1]/", NAMES_REFUSAL_NOT_ALLOWED },
        /* listed explicitly: allowed; the rest of link-local: refused as such */
        { "http://169.254.10.10/", OK },
        { "http://169.254.169.254/", NAMES_REFUSAL_LINK_LOCAL },
        { "http://[fe80::1]/", NAMES_REFUSAL_LINK_LOCAL },
        /* the page's own schemes need no entry */
        { "data:image/png;base64,iVBORw0KGgo=", OK },
        { "blob:http://evil/uuid", OK },
        { "about:blank", OK },
        { "file:///etc/passwd", NAMES_REFUSAL_SCHEME },
    };
    CHECK(cases, hosts);

    /* an empty list allows none of the hosts */
    const char *const none[] = { NULL };
    static const struct req_case nothing[] = {
        { "http://127.0.0.1:3000/", NAMES_REFUSAL_NOT_ALLOWED },
        { "data:,x", OK },
    };
    CHECK(nothing, none);

    /* the link-local addresses allowed by an entry in another spelling */
    const char *const v6[] = { "fe80::1", NULL };
    static const struct req_case v6cases[] = {
        { "http://[fe80:0::1]:9/", OK },
        { "http://[fe80::2]/", NAMES_REFUSAL_LINK_LOCAL },
    };
    CHECK(v6cases, v6);
}

static void test_parse(void **state)
{
    (void)state;
    struct hostcheck_url u;
    const char *url = "https://user:pw@Grafana.Example:8443/d/x?orgId=1";
    assert_int_equal(hostcheck_parse(url, strlen(url), &u), 0);
    assert_int_equal(u.scheme, HOSTCHECK_SCHEME_HTTP);
    assert_int_equal(u.secure, 1);
    assert_int_equal(u.userinfo, 1);
    assert_int_equal(u.host_len, strlen("Grafana.Example"));
    assert_memory_equal(u.host, "Grafana.Example", u.host_len);
    assert_int_equal(u.auth_len, strlen("Grafana.Example:8443"));
    assert_int_equal(u.port, 8443);

    url = "wss://[2001:db8::5]/ws";
    assert_int_equal(hostcheck_parse(url, strlen(url), &u), 0);
    assert_int_equal(u.v6, 1);
    assert_int_equal(u.port, 443);
    assert_int_equal(u.userinfo, 0);

    url = "ws://grafana:/";
    assert_int_equal(hostcheck_parse(url, strlen(url), &u), 0);
    assert_int_equal(u.port, 80);

    /* the length is the URL's end: no read past it */
    url = "http://grafana:3000/";
    assert_int_equal(hostcheck_parse(url, strlen("http://grafana:30"), &u), 0);
    assert_int_equal(u.port, 30);
    assert_int_equal(hostcheck_parse(url, strlen("http:/"), &u), -EINVAL);
    assert_non_null(u.why);

    url = "data:text/plain,x";
    assert_int_equal(hostcheck_parse(url, strlen(url), &u), 0);
    assert_int_equal(u.scheme, HOSTCHECK_SCHEME_OWN);
    assert_int_equal(hostcheck_link_local(&u), 0);
}

/* WebSockets: the same rule, host only (what the browsers' resolver rules
 * can express). */
static void test_socket(void **state)
{
    (void)state;
    const char *const hosts[] = { "127.0.0.1:3000", "grafana.example", NULL };
    enum names_refusal why;
    const char *ok[] = { "ws://127.0.0.1:3000/api/live/ws", "ws://127.0.0.1:3001/x", "wss://grafana.example:1/" };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (hostcheck_socket(ok[i], strlen(ok[i]), hosts, NULL, &why) != 0)
            fail_msg("%s refused", ok[i]);
    const char *no = "ws://127.0.0.2:3000/";
    assert_int_equal(hostcheck_socket(no, strlen(no), hosts, NULL, &why), -EACCES);
    assert_int_equal(why, NAMES_REFUSAL_NOT_ALLOWED);
    no = "wss://[fe80::1]/";
    assert_int_equal(hostcheck_socket(no, strlen(no), NULL, NULL, &why), -EACCES);
    assert_int_equal(why, NAMES_REFUSAL_LINK_LOCAL);
    /* the request check keeps the port */
    const char *port = "ws://127.0.0.1:3001/x";
    assert_int_equal(hostcheck_request(port, strlen(port), hosts, NULL, &why), -EACCES);
}

static void test_resolver_rules(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    hostcheck_resolver_rules(NULL, &b);
    assert_string_equal(b.data, "MAP 169.254.* ~NOTFOUND, MAP fe8?:* ~NOTFOUND, MAP fe9?:* ~NOTFOUND, "
                                "MAP fea?:* ~NOTFOUND, MAP feb?:* ~NOTFOUND, MAP ::ffff:a9fe:* ~NOTFOUND, "
                                "MAP 64:ff9b::a9fe:* ~NOTFOUND, MAP fd00:ec2::254 ~NOTFOUND");
    buf_reset(&b);
    /* IPv6 compressed and without brackets, as Chromium matches them;
     * ports are not the resolver's; a broken entry is left out */
    const char *const hosts[] = { "grafana.example:3000", "10.0.0.5", "[0:0::1]:8080", "2001:DB8::7",
                                  "[::1", NULL };
    hostcheck_resolver_rules(hosts, &b);
    assert_string_equal(b.data, "MAP * ~NOTFOUND, EXCLUDE grafana.example, EXCLUDE 10.0.0.5, EXCLUDE ::1, "
                                "EXCLUDE 2001:db8::7");
    buf_reset(&b);
    const char *const none[] = { NULL };
    hostcheck_resolver_rules(none, &b);
    assert_string_equal(b.data, "MAP * ~NOTFOUND");
    buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_list),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_socket),
        cmocka_unit_test(test_resolver_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
