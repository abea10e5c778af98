/* The render state machine (renderer/rsm.c) without a browser: every path
 * driven by hand-made replies and events (each way a render can end, each
 * way the browser can fail it), then the recorded transcripts of real
 * renders (tests/fixtures/transcripts, made by tools/cdp-transcripts.py)
 * replayed frame by frame at their recorded times: the machine must send
 * the same commands in the same order and end the same way, its readiness
 * decisions taken again on what the real page and network said. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "clock.h"
#include "rsm.h"

#define MS(x) ((int64_t)(x) * CLOCK_NS_PER_MS)
#define T0 MS(5000000)
#define SESSION "5E55105E55105E55105E55105E551055"
#define SENT_MAX 256

/* ---- a browser made of hand-written answers ------------------------------------ */

struct sent {
    int id;
    char method[64];
    json_t *cmd;
    int answered;
};

struct h {
    struct rsm m;
    struct cdp cdp;
    struct rsm_env env;
    struct render_request req;
    int64_t now;
    struct sent sent[SENT_MAX];
    int nsent;
    int64_t wake;     /* the wake timer, 0: none */
    int finished, failed, read_file, subscribed;
};

static void h_init(struct h *h, int spare)
{
    memset(h, 0, sizeof(*h));
    cdp_init(&h->cdp);
    h->env = (struct rsm_env){ .cdp = &h->cdp, .conn_ok = 1, .dl_dir = "/nonexistent/rv-dl" };
    h->req.url = "http://grafana.test/d/x?render=1";
    h->req.width = 1000;
    h->req.height = 500;
    h->req.device_scale_factor = 1;
    h->req.timeout_ms = 10000;
    h->req.pdf.print_background = 1;
    h->now = T0;
    rsm_init(&h->m, spare ? NULL : &h->req, spare ? 0 : T0 + MS(10000), T0);
}

static void h_fini(struct h *h)
{
    for (int i = 0; i < h->nsent; i++)
        json_decref(h->sent[i].cmd);
    rsm_fini(&h->m);
}

static void h_step(struct h *h, const struct rsm_input *in)
{
    struct rsm_out out;
    rsm_step(&h->m, &h->env, in, h->now, &out);
    for (unsigned i = 0; i < out.ncmds; i++) {
        json_error_t err;
        json_t *cmd = json_loadb(out.cmds[i].text.data, out.cmds[i].text.len, 0, &err);
        if (!cmd)
            fail_msg("the machine sent something that is not JSON: %s", err.text);
        assert_true(h->nsent < SENT_MAX);
        struct sent *s = &h->sent[h->nsent++];
        s->id = out.cmds[i].id;
        snprintf(s->method, sizeof(s->method), "%s", json_string_value(json_object_get(cmd, "method")));
        assert_int_equal((int)json_integer_value(json_object_get(cmd, "id")), s->id);
        assert_true(out.cmds[i].timeout_ms > 0);
        s->cmd = cmd;
    }
    rsm_out_fini(&out);
    if (out.wake_cancel)
        h->wake = 0;
    if (out.wake_ns)
        h->wake = out.wake_ns;
    h->finished |= out.finish;
    h->failed |= out.failed;
    h->read_file |= out.read_file;
    h->subscribed |= out.subscribe;
    if (out.unsubscribe[0])
        h->subscribed = 0;
}

static void h_event(struct h *h, enum rsm_event ev)
{
    struct rsm_input in = { .ev = ev };
    h_step(h, &in);
}

/* The newest command of method not answered yet. */
static struct sent *h_sent(struct h *h, const char *method)
{
    for (int i = h->nsent - 1; i >= 0; i--)
        if (!h->sent[i].answered && strcmp(h->sent[i].method, method) == 0)
            return &h->sent[i];
    fail_msg("no %s is waiting for its reply (state %s)", method, rsm_state_name(h->m.state));
    return NULL;
}

/* The newest command of method, answered or not. */
static struct sent *h_last(struct h *h, const char *method)
{
    for (int i = h->nsent - 1; i >= 0; i--)
        if (strcmp(h->sent[i].method, method) == 0)
            return &h->sent[i];
    fail_msg("no %s was sent", method);
    return NULL;
}

static void h_parse(struct cdp_msg *m, const char *text)
{
    if (cdp_msg_parse(m, text, strlen(text)) != 0)
        fail_msg("bad frame %s: %s", text, m->why);
}

static void h_reply_to(struct h *h, struct sent *s, const char *result)
{
    s->answered = 1;
    char text[4096];
    snprintf(text, sizeof(text), "{\"id\":%d,\"result\":%s}", s->id, result);
    struct cdp_msg m;
    h_parse(&m, text);
    struct rsm_input in = { .ev = RSM_EV_REPLY, .msg = &m, .id = s->id };
    h_step(h, &in);
    cdp_msg_fini(&m);
}

/* Answer method's command with result (JSON text), at once. */
static void h_reply(struct h *h, const char *method, const char *result)
{
    h_reply_to(h, h_sent(h, method), result);
}

static void h_reply_error(struct h *h, const char *method, const char *message)
{
    struct sent *s = h_sent(h, method);
    s->answered = 1;
    char text[1024];
    snprintf(text, sizeof(text), "{\"id\":%d,\"error\":{\"code\":-32000,\"message\":\"%s\"}}", s->id, message);
    struct cdp_msg m;
    h_parse(&m, text);
    struct rsm_input in = { .ev = RSM_EV_REPLY, .msg = &m, .id = s->id };
    h_step(h, &in);
    cdp_msg_fini(&m);
}

/* The browser layer's own failure of method's command (no reply frame). */
static void h_fail(struct h *h, const char *method, int err)
{
    struct sent *s = h_sent(h, method);
    s->answered = 1;
    struct rsm_input in = { .ev = RSM_EV_REPLY, .id = s->id, .err = err };
    h_step(h, &in);
}

static void h_cdp(struct h *h, const char *text)
{
    struct cdp_msg m;
    h_parse(&m, text);
    struct rsm_input in = { .ev = RSM_EV_CDP, .msg = &m };
    h_step(h, &in);
    cdp_msg_fini(&m);
}

static void h_answer_all(struct h *h, const char *method)
{
    for (int i = 0; i < h->nsent; i++)
        if (!h->sent[i].answered && strcmp(h->sent[i].method, method) == 0)
            h_reply_to(h, &h->sent[i], "{}");
}

static int h_count(const struct h *h, const char *method)
{
    int n = 0;
    for (int i = 0; i < h->nsent; i++)
        n += strcmp(h->sent[i].method, method) == 0;
    return n;
}

/* Context, target, attach, the preparation: a page ready to navigate. */
static void h_make_page(struct h *h)
{
    h_event(h, RSM_EV_BEGIN);
    h_reply(h, "Target.createBrowserContext", "{\"browserContextId\":\"CTX1\"}");
    h_reply(h, "Target.createTarget", "{\"targetId\":\"TGT1\"}");
    h_reply(h, "Target.attachToTarget", "{\"sessionId\":\"" SESSION "\"}");
    assert_true(h->subscribed);
    const char *prep[] = { "Page.enable", "Page.setLifecycleEventsEnabled", "Network.enable",
                           "Page.addScriptToEvaluateOnNewDocument", "Emulation.setDeviceMetricsOverride",
                           "Emulation.setTimezoneOverride", "Network.setExtraHTTPHeaders", "Network.setCookie",
                           "Browser.setDownloadBehavior" };
    for (size_t i = 0; i < sizeof(prep) / sizeof(prep[0]); i++)
        h_answer_all(h, prep[i]);
    for (int i = 0; i < h->nsent; i++)
        if (!h->sent[i].answered && h->m.state == RSM_PREPARE)
            fail_msg("%s (id %d) not answered", h->sent[i].method, h->sent[i].id);
}

static void h_load(struct h *h)
{
    h_reply(h, "Page.navigate", "{\"frameId\":\"F1\",\"loaderId\":\"L1\"}");
    assert_int_equal(h->m.state, RSM_NAVIGATE);
    h_cdp(h, "{\"method\":\"Page.lifecycleEvent\",\"params\":{\"frameId\":\"F1\",\"loaderId\":\"L1\","
             "\"name\":\"load\",\"timestamp\":2.0},\"sessionId\":\"" SESSION "\"}");
    assert_int_equal(h->m.state, RSM_READY);
}

#define PROBE_READY "{\"result\":{\"type\":\"object\",\"value\":{\"ready\":true,\"kind\":\"panels\",\"rule\":null," \
                    "\"blocked\":{\"panels\":40,\"paint\":20},\"waited\":60}}}"
#define PNG_B64 "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="

/* Dispose of the context and see the render over. */
static void h_dispose(struct h *h)
{
    assert_int_equal(h->m.state, RSM_DISPOSE);
    assert_string_equal(json_string_value(json_object_get(json_object_get(h_sent(h, "Target.disposeBrowserContext")->cmd,
                                                                          "params"),
                                                          "browserContextId")),
                        "CTX1");
    assert_false(h->finished);
    h_reply(h, "Target.disposeBrowserContext", "{}");
    assert_true(h->finished);
    assert_int_equal(h->m.state, RSM_DONE);
    assert_false(h->subscribed);
}

static void test_png(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, 0);
    h.req.timezone[0] = '\0';
    h_make_page(&h);
    /* no timezone, header or cookie asked for: none sent */
    assert_int_equal(h_count(&h, "Emulation.setTimezoneOverride"), 0);
    assert_int_equal(h_count(&h, "Network.setCookie"), 0);
    /* the observer and the advertised budget: two scripts */
    assert_int_equal(h_count(&h, "Page.addScriptToEvaluateOnNewDocument"), 2);
    assert_int_equal(h.m.state, RSM_NAVIGATE);
    h.now += MS(30);
    h_load(&h);
    h.now += MS(60);
    h_reply(&h, "Runtime.evaluate", PROBE_READY);
    assert_int_equal(h.m.state, RSM_CAPTURE);
    h.now += MS(20);
    h_reply(&h, "Page.captureScreenshot", "{\"data\":\"" PNG_B64 "\"}");
    h_dispose(&h);
    const struct rsm_result *res = &h.m.result;
    assert_int_equal(res->status, 200);
    assert_string_equal(res->content_type, "image/png");
    assert_int_equal(res->len, 70);
    assert_memory_equal(res->body, "\x89PNG", 4);
    /* the steps, in order, with their times */
    enum names_step want[] = { NAMES_STEP_LAUNCH, NAMES_STEP_NEW_PAGE, NAMES_STEP_PREPARE, NAMES_STEP_NAVIGATE,
                               NAMES_STEP_PANELS_RENDERED, NAMES_STEP_SCREENSHOT };
    assert_int_equal(res->nsteps, 6);
    for (unsigned i = 0; i < 6; i++)
        assert_int_equal(res->steps[i].step, want[i]);
    assert_true(res->steps[3].seconds > 0.029 && res->steps[3].seconds < 0.031);
    assert_true(res->steps[4].seconds > 0.059 && res->steps[4].seconds < 0.061);
    assert_true(res->ready_done);
    assert_int_equal(res->kind, READY_KIND_PANELS);
    assert_true(res->rule_ms[NAMES_RULE_PANELS] == 40 && res->rule_ms[NAMES_RULE_PAINT] == 20);
    h_fini(&h);
}

/* A spare: made ahead, parked, claimed; the steps it did cost the request
 * nothing, and the request's own preparation follows the claim. */
/* With the interception on (render.c's env), the page's requests are
 * paused and its frames and workers held before it navigates: both
 * commands are part of the preparation, and the navigation waits for their
 * replies like the others'. Without it (the transcripts), neither is sent. */
static void test_intercept(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, 0);
    h.env.intercept = 1;
    h_event(&h, RSM_EV_BEGIN);
    h_reply(&h, "Target.createBrowserContext", "{\"browserContextId\":\"CTX1\"}");
    h_reply(&h, "Target.createTarget", "{\"targetId\":\"TGT1\"}");
    h_reply(&h, "Target.attachToTarget", "{\"sessionId\":\"" SESSION "\"}");
    json_t *fetch = json_object_get(h_sent(&h, "Fetch.enable")->cmd, "params");
    json_t *pattern = json_array_get(json_object_get(fetch, "patterns"), 0);
    assert_string_equal(json_string_value(json_object_get(pattern, "urlPattern")), "*");
    assert_string_equal(json_string_value(json_object_get(pattern, "requestStage")), "Request");
    json_t *aa = json_object_get(h_sent(&h, "Target.setAutoAttach")->cmd, "params");
    assert_true(json_is_true(json_object_get(aa, "waitForDebuggerOnStart")));
    assert_true(json_is_true(json_object_get(aa, "flatten")));
    const char *prep[] = { "Page.enable", "Page.setLifecycleEventsEnabled", "Network.enable",
                           "Page.addScriptToEvaluateOnNewDocument", "Emulation.setDeviceMetricsOverride",
                           "Target.setAutoAttach" };
    for (size_t i = 0; i < sizeof(prep) / sizeof(prep[0]); i++)
        h_answer_all(&h, prep[i]);
    assert_int_equal(h_count(&h, "Page.navigate"), 0); /* Fetch.enable not answered yet */
    h_answer_all(&h, "Fetch.enable");
    assert_int_equal(h_count(&h, "Page.navigate"), 1);
    h_fini(&h);

    h_init(&h, 0);
    h_make_page(&h);
    assert_int_equal(h_count(&h, "Fetch.enable"), 0);
    assert_int_equal(h_count(&h, "Target.setAutoAttach"), 0);
    h_fini(&h);
}

static void test_spare(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, 1);
    assert_true(rsm_claimable(&h.m, &h.env));
    h_event(&h, RSM_EV_BEGIN);
    h_reply(&h, "Target.createBrowserContext", "{\"browserContextId\":\"CTX1\"}");
    h_reply(&h, "Target.createTarget", "{\"targetId\":\"TGT1\"}");
    h_reply(&h, "Target.attachToTarget", "{\"sessionId\":\"" SESSION "\"}");
    /* only the enables: nothing of a request yet */
    assert_int_equal(h_count(&h, "Emulation.setDeviceMetricsOverride"), 0);
    h_answer_all(&h, "Page.enable");
    h_answer_all(&h, "Page.setLifecycleEventsEnabled");
    h_answer_all(&h, "Network.enable");
    h_answer_all(&h, "Page.addScriptToEvaluateOnNewDocument");
    assert_int_equal(h.m.state, RSM_PARKED);
    /* no deadline for a spare */
    h_event(&h, RSM_EV_DEADLINE);
    assert_int_equal(h.m.state, RSM_PARKED);
    h.now += MS(5000);
    struct rsm_input claim = { .ev = RSM_EV_CLAIM, .req = &h.req, .deadline_ns = h.now + MS(10000) };
    h_step(&h, &claim);
    assert_false(rsm_claimable(&h.m, &h.env));
    assert_int_equal(h.m.result.nsteps, 2);
    assert_true(h.m.result.steps[0].seconds == 0 && h.m.result.steps[1].seconds == 0);
    assert_int_equal(h.m.state, RSM_PREPARE);
    h_answer_all(&h, "Emulation.setDeviceMetricsOverride");
    h_answer_all(&h, "Page.addScriptToEvaluateOnNewDocument");
    assert_int_equal(h.m.state, RSM_NAVIGATE);
    h_fini(&h);
}

/* A claim while the spare is still on its way, and one before it began. */
static void test_spare_claimed_early(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, 1);
    h_event(&h, RSM_EV_BEGIN);
    h_reply(&h, "Target.createBrowserContext", "{\"browserContextId\":\"CTX1\"}");
    struct rsm_input claim = { .ev = RSM_EV_CLAIM, .req = &h.req, .deadline_ns = h.now + MS(10000) };
    h_step(&h, &claim);
    h_reply(&h, "Target.createTarget", "{\"targetId\":\"TGT1\"}");
    h_reply(&h, "Target.attachToTarget", "{\"sessionId\":\"" SESSION "\"}");
    /* enables and the request's part at once */
    assert_int_equal(h_count(&h, "Emulation.setDeviceMetricsOverride"), 1);
    h_fini(&h);

    h_init(&h, 1);
    h_step(&h, &claim); /* the spare's delayed begin is not over: the claim begins it */
    assert_int_equal(h_count(&h, "Target.createBrowserContext"), 1);
    h_event(&h, RSM_EV_BEGIN); /* a late begin does not make a second context */
    assert_int_equal(h_count(&h, "Target.createBrowserContext"), 1);
    h_fini(&h);
}

/* A full-page png and a pdf grow the viewport to the page, wait for what
 * came into view, then capture; the pdf at scale 1/deviceScaleFactor. */
static void test_whole_page(void **state)
{
    (void)state;
    for (int pdf = 0; pdf <= 1; pdf++) {
        struct h h;
        h_init(&h, 0);
        if (pdf) {
            h.req.encoding = QUERY_ENCODING_PDF;
            h.req.device_scale_factor = 2;
            h.req.pdf.format = QUERY_PAPER_A4;
        } else {
            h.req.height = QUERY_FULL_PAGE;
        }
        h_make_page(&h);
        /* the viewport starts at the default height */
        json_t *p = json_object_get(h_last(&h, "Emulation.setDeviceMetricsOverride")->cmd, "params");
        assert_int_equal(json_integer_value(json_object_get(p, "height")), 500);
        h_load(&h);
        h.now += MS(100);
        h_reply(&h, "Runtime.evaluate", PROBE_READY);
        assert_int_equal(h.m.state, RSM_LAYOUT);
        h.now += MS(5);
        h_reply(&h, "Page.getLayoutMetrics", "{\"cssContentSize\":{\"x\":0,\"y\":0,\"width\":1000,\"height\":2400.5}}");
        assert_int_equal(h.m.state, RSM_RESIZE);
        p = json_object_get(h_sent(&h, "Emulation.setDeviceMetricsOverride")->cmd, "params");
        assert_int_equal(json_integer_value(json_object_get(p, "height")), 2401);
        h_reply(&h, "Emulation.setDeviceMetricsOverride", "{}");
        assert_int_equal(h.m.state, RSM_SETTLE);
        h.now += MS(35);
        h_reply(&h, "Runtime.evaluate", "{\"result\":{\"type\":\"boolean\",\"value\":true}}");
        assert_int_equal(h.m.state, RSM_READY);
        h.now += MS(300);
        h_reply(&h, "Runtime.evaluate",
                "{\"result\":{\"type\":\"object\",\"value\":{\"ready\":true,\"kind\":\"scenes\",\"rule\":null,"
                "\"blocked\":{\"queries\":280,\"paint\":20},\"waited\":300}}}");
        assert_int_equal(h.m.state, RSM_CAPTURE);
        if (pdf) {
            p = json_object_get(h_sent(&h, "Page.printToPDF")->cmd, "params");
            assert_true(json_real_value(json_object_get(p, "scale")) == 0.5);
            h_reply(&h, "Page.printToPDF", "{\"data\":\"JVBERi0xLjQK\"}");
        } else {
            h_reply(&h, "Page.captureScreenshot", "{\"data\":\"" PNG_B64 "\"}");
        }
        h_dispose(&h);
        const struct rsm_result *res = &h.m.result;
        assert_int_equal(res->status, 200);
        assert_string_equal(res->content_type, pdf ? "application/pdf" : "image/png");
        assert_int_equal(res->steps[5].step, NAMES_STEP_DASHBOARD_SCROLLING);
        assert_int_equal(res->steps[6].step, NAMES_STEP_SCREENSHOT);
        /* layout, resize and settle, then the second readiness: the lazy panels' */
        assert_true(res->rule_ms[NAMES_RULE_LAZY] >= 340 && res->rule_ms[NAMES_RULE_LAZY] <= 341);
        assert_true(res->rule_ms[NAMES_RULE_QUERIES] == 0);
        h_fini(&h);
    }
}

/* A page that is not ready is probed again; a probe whose page went away
 * under it is tried again after RSM_PROBE_RETRY_MS; a page waiting on the
 * network is woken when its request ends. */
static void test_readiness_loop(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, 0);
    h_make_page(&h);
    h_load(&h);
    h.now += MS(10000);
    h_reply(&h, "Runtime.evaluate",
            "{\"result\":{\"type\":\"object\",\"value\":{\"ready\":false,\"kind\":\"scenes\",\"rule\":\"queries\","
            "\"blocked\":{\"queries\":10000},\"waited\":10000}}}");
    assert_int_equal(h_count(&h, "Runtime.evaluate"), 2);
    h_reply_error(&h, "Runtime.evaluate", "Execution context was destroyed.");
    assert_int_equal(h.m.state, RSM_READY);
    assert_true(h.wake == h.now + MS(RSM_PROBE_RETRY_MS));
    assert_int_equal(h_count(&h, "Runtime.evaluate"), 2);
    h.now = h.wake;
    h_event(&h, RSM_EV_WAKE);
    assert_int_equal(h_count(&h, "Runtime.evaluate"), 3);
    /* a request in flight: the page is ready, the network is not */
    h_cdp(&h, "{\"method\":\"Network.requestWillBeSent\",\"params\":{\"requestId\":\"7.1\",\"timestamp\":3,"
              "\"type\":\"Fetch\"},\"sessionId\":\"" SESSION "\"}");
    h.now += MS(60);
    h.wake = 0;
    h_reply(&h, "Runtime.evaluate", PROBE_READY);
    assert_int_equal(h.m.state, RSM_READY);
    assert_true(h.wake > h.now);
    h.now += MS(200);
    h_cdp(&h, "{\"method\":\"Network.loadingFinished\",\"params\":{\"requestId\":\"7.1\",\"timestamp\":3.2},"
              "\"sessionId\":\"" SESSION "\"}");
    assert_true(h.wake == h.now + MS(READY_NET_QUIET_MS));
    h.now = h.wake;
    h_event(&h, RSM_EV_WAKE);
    assert_int_equal(h_count(&h, "Runtime.evaluate"), 4);
    h.now += MS(20);
    h_reply(&h, "Runtime.evaluate", PROBE_READY);
    assert_int_equal(h.m.state, RSM_CAPTURE);
    assert_true(h.m.ready.rule_ms[NAMES_RULE_NETWORK] == 200 + READY_NET_QUIET_MS);
    assert_true(h.m.ready.rule_ms[NAMES_RULE_QUERIES] == 10000);
    h_fini(&h);
}

/* Each way the browser can fail a render: a command timing out (retryable),
 * the connection going (retryable; nothing to dispose of), the page
 * crashing, an answer over the size limit; each ends through dispose. */
static void test_failures(void **state)
{
    (void)state;
    struct h h;
    /* a preparation command times out */
    h_init(&h, 0);
    h_event(&h, RSM_EV_BEGIN);
    h_reply(&h, "Target.createBrowserContext", "{\"browserContextId\":\"CTX1\"}");
    h_reply(&h, "Target.createTarget", "{\"targetId\":\"TGT1\"}");
    h_reply(&h, "Target.attachToTarget", "{\"sessionId\":\"" SESSION "\"}");
    h_fail(&h, "Network.enable", -ETIMEDOUT);
    assert_true(h.failed);
    assert_int_equal(h.m.result.status, 500);
    assert_true(h.m.result.retryable);
    assert_string_equal(h.m.result.error, "the browser did not answer during prepare");
    assert_string_equal(h.m.result.failed_step, "prepare");
    /* the other preparation replies come late: nothing happens */
    h_answer_all(&h, "Page.enable");
    assert_int_equal(h.m.state, RSM_DISPOSE);
    /* the connection goes while disposing: over */
    h_fail(&h, "Target.disposeBrowserContext", -ECONNRESET);
    assert_true(h.finished);
    h_fini(&h);

    /* the connection goes while the probe waits: nothing left to dispose of */
    h_init(&h, 0);
    h_make_page(&h);
    h_load(&h);
    h.env.conn_ok = 0;
    h_fail(&h, "Runtime.evaluate", -ECONNRESET);
    assert_int_equal(h.m.result.status, 500);
    assert_true(h.m.result.retryable);
    assert_true(h.finished);
    assert_int_equal(h_count(&h, "Target.disposeBrowserContext"), 0);
    h_fini(&h);

    /* the session is lost with the connection (no reply at all) */
    h_init(&h, 0);
    h_make_page(&h);
    h.env.conn_ok = 0;
    h_event(&h, RSM_EV_LOST);
    assert_true(h.m.result.retryable);
    assert_true(h.finished);
    h_fini(&h);

    /* the page crashes */
    h_init(&h, 0);
    h_make_page(&h);
    h_load(&h);
    h_cdp(&h, "{\"method\":\"Inspector.targetCrashed\",\"params\":{},\"sessionId\":\"" SESSION "\"}");
    assert_int_equal(h.m.result.status, 500);
    assert_true(h.m.result.retryable);
    assert_non_null(strstr(h.m.result.error, "crashed"));
    h_dispose(&h);
    h_fini(&h);

    /* an image over the size limit: not retried elsewhere */
    h_init(&h, 0);
    h_make_page(&h);
    h_load(&h);
    h_reply(&h, "Runtime.evaluate", PROBE_READY);
    h_fail(&h, "Page.captureScreenshot", -EMSGSIZE);
    assert_false(h.m.result.retryable);
    assert_non_null(strstr(h.m.result.error, "size limit"));
    h_dispose(&h);
    h_fini(&h);

    /* the navigation fails */
    h_init(&h, 0);
    h_make_page(&h);
    h_reply(&h, "Page.navigate", "{\"frameId\":\"F1\",\"loaderId\":\"L1\",\"errorText\":\"net::ERR_CONNECTION_REFUSED\"}");
    assert_string_equal(h.m.result.error, "cannot load the url: net::ERR_CONNECTION_REFUSED");
    h_dispose(&h);
    h_fini(&h);

    /* the browser does not know the time zone: 400 */
    h_init(&h, 0);
    snprintf(h.req.timezone, sizeof(h.req.timezone), "Mars/Olympus");
    h_event(&h, RSM_EV_BEGIN);
    h_reply(&h, "Target.createBrowserContext", "{\"browserContextId\":\"CTX1\"}");
    h_reply(&h, "Target.createTarget", "{\"targetId\":\"TGT1\"}");
    h_reply(&h, "Target.attachToTarget", "{\"sessionId\":\"" SESSION "\"}");
    h_reply_error(&h, "Emulation.setTimezoneOverride", "Invalid timezone ID");
    assert_int_equal(h.m.result.status, 400);
    h_fini(&h);
}

/* The request's time runs out (408), the client goes away (499), the
 * render is abandoned (500); while the context is still being made, its id
 * is awaited so that it can be disposed of. */
static void test_endings(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, 0);
    h_make_page(&h);
    h_load(&h);
    h_event(&h, RSM_EV_DEADLINE);
    assert_int_equal(h.m.result.status, 408);
    assert_string_equal(h.m.result.error, "timed out after 10000 ms waiting for panelsRendered");
    assert_false(h.m.result.retryable);
    /* the probe's late reply is not looked at */
    h_reply(&h, "Runtime.evaluate", PROBE_READY);
    assert_int_equal(h.m.state, RSM_DISPOSE);
    h_dispose(&h);
    h_fini(&h);

    /* A 408 after the page said what held it names that rule; the probe
     * answers RSM_PROBE_MARGIN_MS before the deadline so that it can. */
    h_init(&h, 0);
    h.req.timeout_ms = 3000;
    h.m.deadline_ns = h.now + MS(3000);
    h_make_page(&h);
    h_load(&h);
    const char *expr = json_string_value(json_object_get(json_object_get(h_last(&h, "Runtime.evaluate")->cmd,
                                                                        "params"),
                                                         "expression"));
    assert_non_null(strstr(expr, "({waitMs:2850,"));
    h.now += MS(2850);
    h_reply(&h, "Runtime.evaluate",
            "{\"result\":{\"type\":\"object\",\"value\":{\"ready\":false,\"kind\":\"scenes\",\"rule\":\"queries\","
            "\"blocked\":{\"queries\":2850},\"waited\":2850}}}");
    h.now += MS(150);
    h_event(&h, RSM_EV_DEADLINE);
    assert_int_equal(h.m.result.status, 408);
    assert_string_equal(h.m.result.error, "timed out after 3000 ms waiting for panelsRendered (held by its queries rule)");
    h_dispose(&h);
    assert_true(h.m.result.ready_seen);
    assert_false(h.m.result.ready_done);
    assert_int_equal(h.m.result.kind, READY_KIND_SCENES);
    assert_true(h.m.result.rule_ms[NAMES_RULE_QUERIES] == 2850);
    h_fini(&h);

    h_init(&h, 0);
    h_event(&h, RSM_EV_BEGIN);
    h_event(&h, RSM_EV_CANCEL);
    assert_int_equal(h.m.result.status, 499);
    assert_int_equal(h.m.state, RSM_DISPOSE);
    assert_false(h.finished);
    /* a second ending changes nothing */
    h_event(&h, RSM_EV_DEADLINE);
    assert_int_equal(h.m.result.status, 499);
    h_reply(&h, "Target.createBrowserContext", "{\"browserContextId\":\"CTX1\"}");
    h_dispose(&h);
    h_fini(&h);

    h_init(&h, 1);
    struct rsm_input abandon = { .ev = RSM_EV_ABANDON, .why = "its browser is being drained" };
    h_step(&h, &abandon);
    assert_int_equal(h.m.result.status, 500);
    assert_true(h.finished); /* nothing was begun: nothing to dispose of */
    h_fini(&h);
}

/* A dialog is dismissed without holding the state's own command. */
static void test_dialog(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, 0);
    h_make_page(&h);
    h_load(&h);
    h_cdp(&h, "{\"method\":\"Page.javascriptDialogOpening\",\"params\":{\"url\":\"http://x/\",\"message\":\"hi\","
              "\"type\":\"alert\",\"hasBrowserHandler\":false,\"defaultPrompt\":\"\"},\"sessionId\":\"" SESSION "\"}");
    h_reply(&h, "Page.handleJavaScriptDialog", "{}");
    assert_int_equal(h.m.state, RSM_READY);
    h_reply(&h, "Runtime.evaluate", PROBE_READY);
    assert_int_equal(h.m.state, RSM_CAPTURE);
    h_fini(&h);
}

/* CSV: the page's download, read when complete, with its name made safe. */
static void test_csv(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, 0);
    h.req.encoding = QUERY_ENCODING_CSV;
    h_make_page(&h);
    json_t *p = json_object_get(h_sent(&h, "Page.navigate")->cmd, "params");
    assert_string_equal(json_string_value(json_object_get(p, "url")), h.req.url);
    h_reply(&h, "Page.navigate", "{\"frameId\":\"F1\",\"loaderId\":\"L1\"}");
    assert_int_equal(h.m.state, RSM_DOWNLOAD);
    h_cdp(&h, "{\"method\":\"Page.downloadWillBegin\",\"params\":{\"frameId\":\"F1\",\"guid\":\"g-1\","
              "\"url\":\"blob:x\",\"suggestedFilename\":\"../../etc/Req\\\"s per s.csv\"},\"sessionId\":\"" SESSION "\"}");
    assert_false(h.read_file);
    h_cdp(&h, "{\"method\":\"Page.downloadProgress\",\"params\":{\"guid\":\"g-1\",\"totalBytes\":4,"
              "\"receivedBytes\":4,\"state\":\"completed\"},\"sessionId\":\"" SESSION "\"}");
    assert_true(h.read_file);
    char path[256];
    assert_int_equal(rsm_download_path(&h.m, "/dl", path, sizeof(path)), 0);
    assert_string_equal(path, "/dl/g-1");
    unsigned char *data = malloc(4);
    memcpy(data, "a,b\n", 4);
    struct rsm_input file = { .ev = RSM_EV_FILE, .data = data, .len = 4 };
    h_step(&h, &file);
    h_dispose(&h);
    assert_int_equal(h.m.result.status, 200);
    assert_string_equal(h.m.result.content_type, "text/csv");
    assert_string_equal(h.m.result.filename, "Req_s per s.csv");
    assert_int_equal(h.m.result.nsteps, 5);
    assert_int_equal(h.m.result.steps[3].step, NAMES_STEP_NAVIGATE_CSV);
    assert_int_equal(h.m.result.steps[4].step, NAMES_STEP_DOWNLOAD_CSV);
    h_fini(&h);

    /* a file that cannot be read, or is too large */
    h_init(&h, 0);
    h.req.encoding = QUERY_ENCODING_CSV;
    h_make_page(&h);
    h_reply(&h, "Page.navigate", "{\"frameId\":\"F1\",\"loaderId\":\"L1\"}");
    h_cdp(&h, "{\"method\":\"Page.downloadWillBegin\",\"params\":{\"frameId\":\"F1\",\"guid\":\"g-1\","
              "\"url\":\"blob:x\",\"suggestedFilename\":\"\"},\"sessionId\":\"" SESSION "\"}");
    h_cdp(&h, "{\"method\":\"Page.downloadProgress\",\"params\":{\"guid\":\"g-1\",\"totalBytes\":4,"
              "\"receivedBytes\":4,\"state\":\"completed\"},\"sessionId\":\"" SESSION "\"}");
    struct rsm_input big = { .ev = RSM_EV_FILE, .err = -EFBIG };
    h_step(&h, &big);
    assert_int_equal(h.m.result.status, 500);
    assert_non_null(strstr(h.m.result.error, "larger than"));
    h_fini(&h);
}

/* ---- recorded transcripts --------------------------------------------------------------- */

struct frame {
    int64_t at;
    int out;
    json_t *f;
};

/* A recorded readiness probe (the probe's text begins with its comment). */
static int is_probe(json_t *cmd)
{
    const char *m = json_string_value(json_object_get(cmd, "method"));
    const char *e = json_string_value(json_object_get(json_object_get(cmd, "params"), "expression"));
    return m && e && strcmp(m, "Runtime.evaluate") == 0 && strncmp(e, "(/* rendervisor's", 17) == 0;
}

/* Replays one transcript: the machine is a spare begun when the recording
 * began and claimed when its request's first command went out; every
 * frame from the browser is handed over at its recorded time (a reply not
 * before its command was sent again), every command the machine sends must
 * be the recorded one (same method, same arguments but for what depends on
 * the moment: ids, timeouts, the probe's wait). */
static void replay(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        fail_msg("cannot open %s", path);
    size_t cap = 1 << 20;
    char *line = malloc(cap);
    json_t *head = NULL;
    struct frame *frames = NULL;
    size_t n = 0;
    while (fgets(line, (int)cap, fp)) {
        if (!strchr(line, '\n'))
            fail_msg("%s: a line over %zu bytes", path, cap);
        json_error_t err;
        json_t *j = json_loads(line, 0, &err);
        if (!j)
            fail_msg("%s: %s", path, err.text);
        if (!head) {
            head = j;
            continue;
        }
        frames = realloc(frames, (n + 1) * sizeof(*frames));
        frames[n].at = T0 + (int64_t)(json_number_value(json_object_get(j, "t")) * CLOCK_NS_PER_S);
        frames[n].out = strcmp(json_string_value(json_object_get(j, "d")), "out") == 0;
        frames[n].f = json_incref(json_object_get(j, "f"));
        json_decref(j);
        n++;
    }
    free(line);
    fclose(fp);
    const char *name = json_string_value(json_object_get(head, "case"));
    json_t *q = json_object_get(head, "query");

    /* the request as the query asked for it */
    struct query_param params[16];
    size_t np = 0;
    const char *key;
    json_t *val;
    json_object_foreach(q, key, val) {
        params[np] = (struct query_param){ key, strlen(key), json_string_value(val), json_string_length(val) };
        np++;
    }
    struct render_request req;
    char why[256];
    int csv = json_object_get(q, "width") == NULL;
    if (query_parse(&req, csv ? QUERY_ROUTE_CSV : QUERY_ROUTE_RENDER, params, np, NULL, NULL, NULL, why,
                    sizeof(why)) != 0)
        fail_msg("%s: %s", name, why);

    struct h h;
    h_init(&h, 1);
    h.now = frames[0].at;
    /* recorded command ids by their order; the machine's k-th command is
     * the recording's k-th */
    size_t next_out = 0, next_in = 0;
    int map[SENT_MAX][2];
    int nmap = 0;
    int skipped[SENT_MAX];
    int nskipped = 0;
    int claimed = 0;
    int64_t deadline = 0;
    size_t first_request_cmd = n;
    for (size_t i = 0; i < n; i++) {
        const char *m = frames[i].out ? json_string_value(json_object_get(frames[i].f, "method")) : NULL;
        if (m && strcmp(m, "Emulation.setDeviceMetricsOverride") == 0) {
            first_request_cmd = i;
            break;
        }
    }
    /* the download folder the recorded renderer had made */
    for (size_t i = 0; i < n; i++) {
        json_t *f = frames[i].f;
        if (frames[i].out && strcmp(json_string_value(json_object_get(f, "method")), "Browser.setDownloadBehavior") == 0)
            h.env.dl_dir = json_string_value(json_object_get(json_object_get(f, "params"), "downloadPath"));
    }
    int sent_before = 0;
    h_event(&h, RSM_EV_BEGIN);
    for (int guard = 0; guard < 100000; guard++) {
        /* match what the machine sent since the last look */
        for (; sent_before < h.nsent; sent_before++) {
            while (next_out < n && !frames[next_out].out)
                next_out++;
            if (next_out == n)
                fail_msg("%s: the machine sent %s, the recording has nothing more", name,
                         h.sent[sent_before].method);
            json_t *rec = frames[next_out].f;
            const char *rm = json_string_value(json_object_get(rec, "method"));
            if (strcmp(rm, h.sent[sent_before].method) != 0 && is_probe(rec)) {
                /* The recorded renderer looked once more than this replay
                 * does: the network's events reached it later than the
                 * recording relay saw them (its thread was not scheduled).
                 * That probe and its answer are passed over. */
                assert_true(nskipped < SENT_MAX);
                skipped[nskipped++] = (int)json_integer_value(json_object_get(rec, "id"));
                next_out++;
                sent_before--;
                continue;
            }
            if (strcmp(rm, h.sent[sent_before].method) != 0)
                fail_msg("%s: the machine sent %s where the recording has %s (command %d)", name,
                         h.sent[sent_before].method, rm, sent_before);
            if (strcmp(rm, "Runtime.evaluate") != 0) {
                json_t *a = json_deep_copy(json_object_get(rec, "params"));
                json_t *b = json_deep_copy(json_object_get(h.sent[sent_before].cmd, "params"));
                if (a && b && strcmp(rm, "Page.addScriptToEvaluateOnNewDocument") != 0 &&
                    !json_equal(a, b)) {
                    char *sa = json_dumps(a, JSON_COMPACT), *sb = json_dumps(b, JSON_COMPACT);
                    fail_msg("%s: %s with %s, recorded with %s", name, rm, sb, sa);
                }
                json_decref(a);
                json_decref(b);
            }
            assert_true(nmap < SENT_MAX);
            map[nmap][0] = (int)json_integer_value(json_object_get(rec, "id"));
            map[nmap][1] = h.sent[sent_before].id;
            nmap++;
            next_out++;
        }
        if (h.finished)
            break;
        if (h.read_file) {
            /* the downloaded file, which the recording does not hold */
            h.read_file = 0;
            unsigned char *data = malloc(4);
            memcpy(data, "a,b\n", 4);
            struct rsm_input file = { .ev = RSM_EV_FILE, .data = data, .len = 4 };
            h_step(&h, &file);
            continue;
        }
        /* the next thing to happen: a frame from the browser, the claim,
         * the wake timer */
        while (next_in < n && frames[next_in].out)
            next_in++;
        int64_t t_in = next_in < n ? frames[next_in].at : INT64_MAX;
        int64_t t_claim = !claimed && first_request_cmd < n ? frames[first_request_cmd].at : INT64_MAX;
        /* a reply cannot come before its command went out again */
        int replay_id = 0;
        if (next_in < n && json_object_get(frames[next_in].f, "id")) {
            int rid = (int)json_integer_value(json_object_get(frames[next_in].f, "id"));
            int skip = 0;
            for (int k = 0; k < nskipped; k++)
                skip |= skipped[k] == rid;
            if (skip) { /* the answer to a probe passed over */
                next_in++;
                continue;
            }
            for (int k = 0; k < nmap; k++)
                if (map[k][0] == rid)
                    replay_id = map[k][1];
            if (!replay_id)
                t_in = INT64_MAX; /* waits for the machine to send it */
        }
        int64_t t_wake = h.wake ? h.wake : INT64_MAX;
        int64_t t_deadline = claimed && !h.m.have_result ? deadline : INT64_MAX;
        int64_t t = t_in < t_claim ? t_in : t_claim;
        if (t_wake < t)
            t = t_wake;
        if (t_deadline < t)
            t = t_deadline;
        if (t == INT64_MAX)
            fail_msg("%s: stuck in %s with nothing recorded left to hand over", name, rsm_state_name(h.m.state));
        if (t > h.now)
            h.now = t;
        if (t == t_claim) {
            claimed = 1;
            deadline = h.now + MS(req.timeout_ms);
            struct rsm_input claim = { .ev = RSM_EV_CLAIM, .req = &req, .deadline_ns = deadline };
            h_step(&h, &claim);
        } else if (t == t_deadline) {
            h_event(&h, RSM_EV_DEADLINE);
        } else if (t == t_wake) {
            h.wake = 0;
            h_event(&h, RSM_EV_WAKE);
        } else {
            json_t *f = json_deep_copy(frames[next_in].f);
            if (replay_id)
                json_object_set_new(f, "id", json_integer(replay_id));
            /* jansson's own allocations go back to it: dump into ours */
            size_t need = json_dumpb(f, NULL, 0, JSON_COMPACT);
            char *text = malloc(need + 1);
            json_dumpb(f, text, need, JSON_COMPACT);
            text[need] = '\0';
            struct cdp_msg m;
            h_parse(&m, text);
            struct rsm_input in = { .ev = replay_id ? RSM_EV_REPLY : RSM_EV_CDP, .msg = &m, .id = replay_id };
            if (replay_id)
                for (int k = 0; k < h.nsent; k++)
                    if (h.sent[k].id == replay_id)
                        h.sent[k].answered = 1;
            h_step(&h, &in);
            cdp_msg_fini(&m);
            free(text);
            json_decref(f);
            next_in++;
        }
    }
    if (!h.finished)
        fail_msg("%s: the replay did not end", name);
    int status = (int)json_integer_value(json_object_get(head, "status"));
    if ((int)h.m.result.status != status)
        fail_msg("%s: ended %u, recorded %d (%s)", name, h.m.result.status, status,
                 h.m.result.error ? h.m.result.error : "");
    json_t *steps = json_object_get(head, "steps");
    if (json_array_size(steps) != h.m.result.nsteps)
        fail_msg("%s: %u steps, recorded %zu", name, h.m.result.nsteps, json_array_size(steps));
    for (size_t i = 0; i < json_array_size(steps); i++)
        if (strcmp(names_steps[h.m.result.steps[i].step], json_string_value(json_array_get(steps, i))) != 0)
            fail_msg("%s: step %zu is %s, recorded %s", name, i, names_steps[h.m.result.steps[i].step],
                     json_string_value(json_array_get(steps, i)));
    printf("%s: %u, %u steps, %d commands (%d recorded probes passed over), page %s, readiness", name,
           h.m.result.status, h.m.result.nsteps, h.nsent, nskipped, ready_kind_name(h.m.result.kind));
    for (int i = 0; i < NAMES_RULE_COUNT; i++)
        if (h.m.result.rule_ms[i] >= 0.5)
            printf(" %s=%.0fms", names_rules[i], h.m.result.rule_ms[i]);
    printf("\n");
    h_fini(&h);
    query_fini(&req);
    for (size_t i = 0; i < n; i++)
        json_decref(frames[i].f);
    free(frames);
    json_decref(head);
}

static void test_transcripts(void **state)
{
    (void)state;
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/transcripts", FIXTURES_DIR);
    DIR *d = opendir(dir);
    if (!d)
        fail_msg("cannot open %s", dir);
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 7 || strcmp(e->d_name + len - 6, ".jsonl") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        replay(path);
        count++;
    }
    closedir(d);
    assert_true(count >= 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png),
        cmocka_unit_test(test_intercept),
        cmocka_unit_test(test_spare),
        cmocka_unit_test(test_spare_claimed_early),
        cmocka_unit_test(test_whole_page),
        cmocka_unit_test(test_readiness_loop),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_endings),
        cmocka_unit_test(test_dialog),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_transcripts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
