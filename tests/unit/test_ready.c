/* Readiness (renderer/ready.c): the probe's answer read and checked, the
 * network as CDP reports it (streams, long polls, redirects), and the
 * verdict with the time each rule held a render back. Times are made up,
 * in ms from 0; the events are CDP's own shapes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "clock.h"
#include "ready.h"

#define MS(x) ((int64_t)(x) * CLOCK_NS_PER_MS)
#define T0 MS(1000000) /* a monotonic clock is never near 0 */

static void parse(struct cdp_msg *m, const char *text)
{
    int rc = cdp_msg_parse(m, text, strlen(text));
    if (rc != 0)
        fail_msg("cannot parse %s: %s", text, m->why);
}

/* A probe's answer as Runtime.evaluate brings it back by value. */
static int answer(struct ready_page *p, const char *value)
{
    char text[2048];
    snprintf(text, sizeof(text), "{\"id\":7,\"result\":{\"result\":{\"type\":\"object\",\"value\":%s}}}", value);
    struct cdp_msg m;
    parse(&m, text);
    int rc = ready_parse(&m, p);
    cdp_msg_fini(&m);
    return rc;
}

static void net(struct ready *r, const char *method, const char *id, const char *extra, int64_t at)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "{\"method\":\"%s\",\"params\":{\"requestId\":\"%s\",\"timestamp\":1.5%s},\"sessionId\":\"S\"}", method,
             id, extra);
    struct cdp_msg m;
    parse(&m, text);
    ready_on_network(r, &m, at);
    cdp_msg_fini(&m);
}

#define SENT(r, id, at) net(r, "Network.requestWillBeSent", id, ",\"type\":\"Fetch\"", at)
#define DONE(r, id, at) net(r, "Network.loadingFinished", id, "", at)

static const char *const ready_panels =
    "{\"ready\":true,\"kind\":\"panels\",\"rule\":null,\"blocked\":{\"panels\":80,\"paint\":21},\"waited\":101}";
static const char *const ready_none =
    "{\"ready\":true,\"kind\":\"none\",\"rule\":null,\"blocked\":{\"paint\":20},\"waited\":20,\"grafana\":false}";

static void test_parse(void **state)
{
    (void)state;
    struct ready_page p;
    assert_int_equal(answer(&p, ready_panels), 0);
    assert_true(p.ready);
    assert_int_equal(p.kind, READY_KIND_PANELS);
    assert_int_equal(p.rule, -1);
    assert_true(p.blocked_ms[NAMES_RULE_PANELS] == 80 && p.blocked_ms[NAMES_RULE_PAINT] == 21);
    assert_true(p.waited_ms == 101);
    assert_false(p.grafana);
    assert_int_equal(answer(&p, "{\"ready\":false,\"kind\":\"scenes\",\"rule\":\"variables\",\"blocked\":{},"
                                "\"waited\":10000,\"grafana\":true}"), 0);
    assert_false(p.ready);
    assert_int_equal(p.kind, READY_KIND_SCENES);
    assert_int_equal(p.rule, NAMES_RULE_VARIABLES);
    assert_true(p.grafana);
    /* Every kind the probe names. */
    const char *kinds[] = { "none", "boot", "panels", "scenes", "binding" };
    for (int k = 0; k < 5; k++) {
        char v[256];
        snprintf(v, sizeof(v), "{\"ready\":true,\"kind\":\"%s\",\"rule\":null,\"blocked\":{},\"waited\":0}", kinds[k]);
        assert_int_equal(answer(&p, v), 0);
        assert_int_equal(p.kind, k);
    }
}

/* Anything but the probe's own shape is refused, so a page cannot feed the
 * verdict: the probe builds its answer itself. */
static void test_parse_refuses(void **state)
{
    (void)state;
    struct ready_page p;
    const char *bad[] = {
        "true",
        "[true]",
        "{}",
        "{\"ready\":true,\"kind\":\"panels\",\"rule\":null,\"blocked\":{}}",               /* no waited */
        "{\"ready\":1,\"kind\":\"panels\",\"rule\":null,\"blocked\":{},\"waited\":0}",      /* not a boolean */
        "{\"ready\":true,\"kind\":\"Panels\",\"rule\":null,\"blocked\":{},\"waited\":0}",   /* unknown kind */
        "{\"ready\":true,\"kind\":\"panels\",\"rule\":null,\"blocked\":[],\"waited\":0}",   /* blocked a list */
        "{\"ready\":true,\"kind\":\"panels\",\"rule\":null,\"blocked\":{\"css\":1},\"waited\":0}", /* unknown rule */
        "{\"ready\":true,\"kind\":\"panels\",\"rule\":null,\"blocked\":{\"paint\":-1},\"waited\":0}",
        "{\"ready\":true,\"kind\":\"panels\",\"rule\":null,\"blocked\":{\"paint\":\"5\"},\"waited\":0}",
        "{\"ready\":true,\"kind\":\"panels\",\"rule\":null,\"blocked\":{},\"waited\":1e12}",
        "{\"ready\":false,\"kind\":\"panels\",\"rule\":null,\"blocked\":{},\"waited\":0}",  /* not ready, no rule */
        "{\"ready\":false,\"kind\":\"panels\",\"rule\":\"nope\",\"blocked\":{},\"waited\":0}",
        "{\"ready\":true,\"kind\":\"panels\",\"rule\":null,\"blocked\":{},\"waited\":0,\"grafana\":1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (answer(&p, bad[i]) != -EBADMSG)
            fail_msg("accepted: %s", bad[i]);
    /* The probe threw (its promise was rejected): not a verdict. */
    struct cdp_msg m;
    parse(&m, "{\"id\":7,\"result\":{\"result\":{\"type\":\"object\",\"subtype\":\"error\"},"
              "\"exceptionDetails\":{\"exceptionId\":1,\"text\":\"Uncaught\",\"lineNumber\":0,\"columnNumber\":0}}}");
    assert_int_equal(ready_parse(&m, &p), -ENOEXEC);
    cdp_msg_fini(&m);
    parse(&m, "{\"id\":7,\"error\":{\"code\":-32000,\"message\":\"Execution context was destroyed.\"}}");
    assert_int_equal(ready_parse(&m, &p), -EREMOTEIO);
    cdp_msg_fini(&m);
}

static void test_probe_expression(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    assert_int_equal(ready_probe_expression(&b, 2500), 0);
    /* The probe called with its options, every window passed in. */
    assert_non_null(strstr(b.data, "__grafanaSceneContext"));
    char opts[256];
    snprintf(opts, sizeof(opts), "({waitMs:2500,quietMs:%d,pollMs:%d,busyMs:%d,lagMs:%d,mountMs:%d,bootQuietMs:%d,"
                                 "settleMaxMs:%d})",
             READY_QUIET_MS, READY_POLL_MS, READY_BUSY_MS, READY_LAG_MS, READY_MOUNT_MS, READY_BOOT_QUIET_MS,
             READY_SETTLE_MAX_MS);
    assert_string_equal(b.data + b.len - strlen(opts), opts);
    size_t len = b.len;
    assert_int_equal(ready_probe_expression(&b, CDP_READINESS_WAIT_MAX + 1), -EINVAL);
    assert_int_equal(b.len, len);
    buf_fini(&b);
    /* The observer is the script of ready.js. */
    assert_non_null(strstr(ready_observer_script(), "__rendervisorReadiness"));
    assert_non_null(strstr(ready_observer_script(), "__grafanaImageRendererMessageChannel"));
}

/* A page with Grafana's signal, ready, nothing on the network: at once. */
static void test_ready_at_once(void **state)
{
    (void)state;
    struct ready r;
    ready_init(&r);
    ready_phase(&r, -1);
    ready_on_load(&r, T0);
    struct ready_page p;
    assert_int_equal(answer(&p, ready_panels), 0);
    int64_t wake;
    assert_int_equal(ready_decide(&r, &p, T0 + MS(101), &wake), READY_YES);
    assert_true(r.rule_ms[NAMES_RULE_PANELS] == 80 && r.rule_ms[NAMES_RULE_PAINT] == 21);
    ready_fini(&r);
}

/* A request in flight holds the capture; when it ends, the quiet window of
 * a signalled page (READY_NET_QUIET_MS) runs from its end, and the wait is
 * charged to the network. */
static void test_network_in_flight(void **state)
{
    (void)state;
    struct ready r;
    ready_init(&r);
    ready_phase(&r, -1);
    ready_on_load(&r, T0);
    SENT(&r, "1.1", T0 + MS(90));
    assert_int_equal(ready_inflight(&r, T0 + MS(100)), 1);
    struct ready_page p;
    assert_int_equal(answer(&p, ready_panels), 0);
    int64_t wake;
    assert_int_equal(ready_decide(&r, &p, T0 + MS(101), &wake), READY_WAIT);
    assert_true(wake > T0 + MS(101));
    /* A redirect is the same request. */
    net(&r, "Network.requestWillBeSent", "1.1", ",\"redirectResponse\":{}", T0 + MS(120));
    assert_int_equal(ready_inflight(&r, T0 + MS(121)), 1);
    assert_true(ready_rewake(&r, T0 + MS(121)) > T0 + MS(121));
    DONE(&r, "1.1", T0 + MS(150));
    assert_int_equal(ready_inflight(&r, T0 + MS(151)), 0);
    int64_t again = ready_rewake(&r, T0 + MS(151));
    assert_true(again == T0 + MS(150 + READY_NET_QUIET_MS));
    /* The page says ready again when woken: now it is. */
    assert_int_equal(answer(&p, "{\"ready\":true,\"kind\":\"panels\",\"rule\":null,\"blocked\":{\"paint\":20},"
                                "\"waited\":20}"), 0);
    assert_int_equal(ready_decide(&r, &p, T0 + MS(200), &wake), READY_YES);
    /* 101..200 waited for the network (99 ms), the paint 21 + 20 ms. */
    assert_true(r.rule_ms[NAMES_RULE_NETWORK] == 99);
    assert_true(r.rule_ms[NAMES_RULE_PAINT] == 41);
    ready_fini(&r);
}

/* Streams do not end: an EventSource never counts, a response that keeps
 * coming stops counting READY_STREAM_MS after it began, and on a page that
 * is not Grafana a request with no answer stops counting after
 * READY_REQUEST_MAX_MS (a long poll). On a Grafana page that last one is
 * awaited when it goes to the page's own origin (the dashboard, a query, a
 * plugin), not when it goes to another host. */
static void test_streams_and_long_polls(void **state)
{
    (void)state;
    struct ready r;
    ready_init(&r);
    ready_phase(&r, -1);
    ready_on_load(&r, T0);
    net(&r, "Network.requestWillBeSent", "es", ",\"type\":\"EventSource\"", T0 + MS(10));
    assert_int_equal(ready_inflight(&r, T0 + MS(11)), 0);
    SENT(&r, "stream", T0 + MS(20));
    net(&r, "Network.responseReceived", "stream", "", T0 + MS(30));
    assert_int_equal(ready_inflight(&r, T0 + MS(30 + READY_STREAM_MS - 1)), 1);
    assert_int_equal(ready_inflight(&r, T0 + MS(30 + READY_STREAM_MS)), 0);
    ready_set_origin(&r, "http://Grafana.example:3000/d/abc/x?orgId=1&render=1");
    assert_string_equal(r.origin, "http://grafana.example:3000");
    net(&r, "Network.requestWillBeSent", "poll",
        ",\"type\":\"Fetch\",\"request\":{\"url\":\"http://grafana.example:3000/api/dashboards/uid/abc\"}",
        T0 + MS(40));
    net(&r, "Network.requestWillBeSent", "cdn",
        ",\"type\":\"Script\",\"request\":{\"url\":\"https://cdn.example/plugin.js\"}", T0 + MS(40));
    /* the same host at another port is another origin */
    net(&r, "Network.requestWillBeSent", "other",
        ",\"type\":\"Fetch\",\"request\":{\"url\":\"http://grafana.example:3001/x\"}", T0 + MS(40));
    assert_int_equal(ready_inflight(&r, T0 + MS(40 + READY_REQUEST_MAX_MS - 1)), 3);
    assert_int_equal(ready_inflight(&r, T0 + MS(40 + READY_REQUEST_MAX_MS)), 0);
    /* The same, on a Grafana page: its own unanswered request is awaited,
     * the other hosts' are not. */
    struct ready_page p;
    assert_int_equal(answer(&p, "{\"ready\":true,\"kind\":\"scenes\",\"rule\":null,\"blocked\":{},\"waited\":0,"
                                "\"grafana\":true}"), 0);
    int64_t wake;
    assert_int_equal(ready_decide(&r, &p, T0 + MS(5000), &wake), READY_WAIT);
    assert_int_equal(ready_inflight(&r, T0 + MS(5000)), 1);
    /* ... past the settle cap too. */
    assert_int_equal(ready_decide(&r, &p, T0 + MS(5000 + READY_SETTLE_MAX_MS + 1), &wake), READY_WAIT);
    DONE(&r, "poll", T0 + MS(9000));
    assert_int_equal(ready_decide(&r, &p, T0 + MS(9000 + READY_NET_QUIET_MS), &wake), READY_YES);
    ready_fini(&r);

    /* A Grafana page whose only request in flight is another host's that
     * never answers is taken at the settle cap. */
    ready_init(&r);
    ready_phase(&r, -1);
    ready_set_origin(&r, "http://grafana.example:3000/d/abc");
    net(&r, "Network.requestWillBeSent", "img",
        ",\"type\":\"Image\",\"request\":{\"url\":\"http://10.9.9.9/logo.png\"}", T0);
    assert_int_equal(ready_decide(&r, &p, T0 + MS(100), &wake), READY_WAIT);
    assert_int_equal(ready_decide(&r, &p, T0 + MS(100 + READY_SETTLE_MAX_MS), &wake), READY_YES);
    ready_fini(&r);
}

/* A page with no signal: its grace runs from the load event, or from its
 * last request's end if that is later. */
static void test_grace(void **state)
{
    (void)state;
    struct ready r;
    ready_init(&r);
    ready_phase(&r, -1);
    ready_on_load(&r, T0);
    struct ready_page p;
    assert_int_equal(answer(&p, ready_none), 0);
    int64_t wake;
    assert_int_equal(ready_decide(&r, &p, T0 + MS(20), &wake), READY_WAIT);
    assert_true(wake == T0 + MS(READY_GRACE_MS));
    SENT(&r, "2.1", T0 + MS(30));
    DONE(&r, "2.1", T0 + MS(60));
    assert_true(ready_rewake(&r, T0 + MS(61)) == T0 + MS(60 + READY_GRACE_MS));
    assert_int_equal(ready_decide(&r, &p, T0 + MS(60 + READY_GRACE_MS), &wake), READY_YES);
    assert_true(r.rule_ms[NAMES_RULE_GRACE] == 60 + READY_GRACE_MS - 20);
    ready_fini(&r);
}

/* A page that never settles (a request always in flight) is taken
 * READY_SETTLE_MAX_MS after its page side first said ready. */
static void test_settle_cap(void **state)
{
    (void)state;
    struct ready r;
    ready_init(&r);
    ready_phase(&r, -1);
    SENT(&r, "3.1", T0);
    struct ready_page p;
    assert_int_equal(answer(&p, ready_none), 0);
    int64_t wake;
    assert_int_equal(ready_decide(&r, &p, T0 + MS(100), &wake), READY_WAIT);
    for (int i = 1; i <= 3; i++) {
        SENT(&r, i == 1 ? "3.2" : i == 2 ? "3.3" : "3.4", T0 + MS(i * 900));
        assert_int_equal(ready_decide(&r, &p, T0 + MS(i * 900 + 1), &wake), READY_WAIT);
    }
    assert_int_equal(ready_decide(&r, &p, T0 + MS(100 + READY_SETTLE_MAX_MS), &wake), READY_YES);
    ready_fini(&r);
}

/* A page that is not ready is probed again; its blocked times add up, and
 * the second phase (the full page's lazy panels) charges everything to
 * the lazy rule. */
static void test_not_ready_and_lazy(void **state)
{
    (void)state;
    struct ready r;
    ready_init(&r);
    ready_phase(&r, -1);
    struct ready_page p;
    assert_int_equal(answer(&p, "{\"ready\":false,\"kind\":\"scenes\",\"rule\":\"queries\",\"blocked\":"
                                "{\"boot\":300,\"queries\":9700},\"waited\":10000}"), 0);
    int64_t wake;
    assert_int_equal(ready_decide(&r, &p, T0 + MS(10000), &wake), READY_PROBE);
    assert_int_equal(answer(&p, "{\"ready\":true,\"kind\":\"scenes\",\"rule\":null,\"blocked\":"
                                "{\"queries\":50,\"panels\":10,\"paint\":20},\"waited\":80}"), 0);
    assert_int_equal(ready_decide(&r, &p, T0 + MS(10080), &wake), READY_YES);
    assert_true(r.rule_ms[NAMES_RULE_BOOT] == 300 && r.rule_ms[NAMES_RULE_QUERIES] == 9750 &&
                r.rule_ms[NAMES_RULE_PANELS] == 10 && r.rule_ms[NAMES_RULE_PAINT] == 20);
    ready_phase(&r, NAMES_RULE_LAZY);
    assert_int_equal(answer(&p, "{\"ready\":true,\"kind\":\"scenes\",\"rule\":null,\"blocked\":"
                                "{\"queries\":300,\"paint\":20},\"waited\":320}"), 0);
    assert_int_equal(ready_decide(&r, &p, T0 + MS(10500), &wake), READY_YES);
    assert_true(r.rule_ms[NAMES_RULE_LAZY] == 320);
    assert_true(r.rule_ms[NAMES_RULE_QUERIES] == 9750);
    ready_fini(&r);
}

/* Events that are not the network's, or malformed ones, change nothing. */
static void test_other_events(void **state)
{
    (void)state;
    struct ready r;
    ready_init(&r);
    struct cdp_msg m;
    parse(&m, "{\"method\":\"Page.lifecycleEvent\",\"params\":{\"frameId\":\"F\",\"loaderId\":\"L\","
              "\"name\":\"load\",\"timestamp\":1},\"sessionId\":\"S\"}");
    ready_on_network(&r, &m, T0);
    cdp_msg_fini(&m);
    parse(&m, "{\"method\":\"Network.requestWillBeSent\",\"params\":{\"timestamp\":1},\"sessionId\":\"S\"}");
    ready_on_network(&r, &m, T0);
    cdp_msg_fini(&m);
    assert_int_equal(r.nreqs, 0);
    assert_true(r.net_ns == 0);
    /* An end for a request never seen begin: nothing to track, but the
     * page may act on it, so the quiet window runs from it. */
    DONE(&r, "9.9", T0);
    assert_int_equal(r.nreqs, 0);
    assert_true(r.net_ns == T0);
    net(&r, "Network.loadingFailed", "9.8", ",\"errorText\":\"net::ERR_FAILED\"", T0 + MS(5));
    assert_true(r.net_ns == T0 + MS(5));
    ready_fini(&r);
}

/* A page's request whose requestWillBeSent was too large to keep (a header
 * of megabytes): the browser connection hands on a stand-in made from its
 * first and last bytes (cdp_event_stub), and the request holds the capture
 * until it fails, then the grace runs from its end. Before, the page was
 * taken while the request was on its way, before the page could paint
 * what it does when the request fails. */
static void test_oversized_request(void **state)
{
    (void)state;
    const char *sent = "{\"method\":\"Network.requestWillBeSent\",\"params\":{\"requestId\":\"5686.2\","
                       "\"loaderId\":\"L\",\"request\":{\"url\":\"http://a/x\",\"headers\":{\"X-Big\":\"yyyyyyyy\"}},"
                       "\"timestamp\":1.5,\"type\":\"Fetch\",\"frameId\":\"F\"},\"sessionId\":\"S\"}";
    size_t len = strlen(sent);
    struct buf stub;
    buf_init(&stub);
    assert_int_equal(cdp_event_stub(sent, 70, sent + len - 30, 30, &stub), 0);
    struct ready r;
    ready_init(&r);
    ready_phase(&r, -1);
    struct cdp_msg m;
    assert_int_equal(cdp_msg_parse(&m, stub.data, stub.len), 0);
    ready_on_network(&r, &m, T0 - MS(50));
    cdp_msg_fini(&m);
    buf_fini(&stub);
    ready_on_load(&r, T0);
    /* the page says ready long after its grace from the load event */
    struct ready_page p;
    assert_int_equal(answer(&p, ready_none), 0);
    int64_t wake;
    assert_int_equal(ready_decide(&r, &p, T0 + MS(100), &wake), READY_WAIT);
    assert_int_equal(r.wait_rule, NAMES_RULE_NETWORK);
    /* refused by the interception: the request fails */
    net(&r, "Network.loadingFailed", "5686.2", ",\"errorText\":\"net::ERR_BLOCKED_BY_CLIENT\"", T0 + MS(105));
    assert_int_equal(ready_inflight(&r, T0 + MS(105)), 0);
    assert_true(ready_rewake(&r, T0 + MS(105)) == T0 + MS(105 + READY_GRACE_MS));
    assert_int_equal(ready_decide(&r, &p, T0 + MS(104 + READY_GRACE_MS), &wake), READY_WAIT);
    assert_int_equal(ready_decide(&r, &p, T0 + MS(105 + READY_GRACE_MS), &wake), READY_YES);
    ready_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_refuses),
        cmocka_unit_test(test_probe_expression),
        cmocka_unit_test(test_ready_at_once),
        cmocka_unit_test(test_network_in_flight),
        cmocka_unit_test(test_streams_and_long_polls),
        cmocka_unit_test(test_grace),
        cmocka_unit_test(test_settle_cap),
        cmocka_unit_test(test_not_ready_and_lazy),
        cmocka_unit_test(test_other_events),
        cmocka_unit_test(test_oversized_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
