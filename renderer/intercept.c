/* allowed_hosts in the browser, for every request of a render's page: each
 * Fetch.requestPaused answered at once by the matcher (common/hostcheck.h),
 * the page's children (frames in processes of their own, workers) held
 * until their own interception is set up, WebSockets counted (the browsers'
 * resolver rules stop them), and the refusals counted and logged. Beside the
 * render's state machine, not in it: a paused request is answered whatever
 * state the render is in, and the answer changes no state. Runs on the
 * browser pool's thread. */
#include "intercept.h"

#include <ctype.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "hostcheck.h"
#include "lines.h"
#include "log.h"
#include "pagelog.h"
#include "rsm.h"
#include "trace.h"

/* [renderer] allowed_hosts (NULL: any host but link-local ones). Set once
 * before the browser thread starts. */
static const char *const *intercept_allowed;
/* The renderer's refusals since it started. */
static _Atomic unsigned long long intercept_refused_total[NAMES_REFUSAL_COUNT];

void intercept_set_allowed_hosts(const char *const *allowed_hosts)
{
    intercept_allowed = allowed_hosts;
}

void intercept_init(struct intercept *ic, struct browser *b)
{
    memset(ic, 0, sizeof(*ic));
    ic->b = b;
}

static void intercept_child_event(void *arg, const struct cdp_msg *m);

void intercept_set_trace(struct intercept *ic, const char *url, const char *traceparent, const char *tracestate)
{
    int on = url && traceparent && traceparent[0];
    ic->trace_origin = on ? url : NULL;
    ic->traceparent = on ? traceparent : NULL;
    ic->tracestate = on && tracestate && tracestate[0] ? tracestate : NULL;
}

/* Fetch.continueRequest for a request to the page's origin, with the
 * render's trace context added to the request's own headers: the page's
 * origin only, so no third party learns the trace, and no cross-origin
 * request of the page gets a header that would need a CORS preflight.
 * -1 when it is not one (or cannot be made): continue it plainly. */
static int intercept_continue_traced(struct intercept *ic, struct buf *b, const struct cdp_msg *m, const char *id,
                                     const char *url, size_t len)
{
    if (!ic->traceparent || !trace_same_origin(url, len, ic->trace_origin))
        return -1;
    json_t *headers = json_object_get(json_object_get(m->params, "request"), "headers");
    if (!json_is_object(headers))
        return -1;
    const char *add[] = { "traceparent", ic->traceparent, ic->tracestate ? "tracestate" : NULL, ic->tracestate,
                          NULL };
    return cdp_fetch_continue_headers(browser_cdp(ic->b), b, m->session, id, headers, add);
}

static void intercept_send(struct intercept *ic, struct buf *b, int id, browser_reply_fn fn)
{
    if (browser_submit(ic->b, b, id, RSM_CMD_TIMEOUT_MS, fn, ic) < 0)
        buf_fini(b);
}

static void intercept_ignore_reply(void *arg, int id, const struct cdp_msg *m, int err)
{
    (void)arg;
    (void)id;
    (void)m;
    (void)err;
}

/* The answer to a paused request: the browser refusing it (a request
 * gone with its page, or headers it would not take) is only worth a debug
 * line; the page sees the request fail or go on as the browser decides. */
static void intercept_answer_reply(void *arg, int id, const struct cdp_msg *m, int err)
{
    struct intercept *ic = arg;
    (void)id;
    if (err < 0 || (m && m->type == CDP_MSG_ERROR))
        log_debug("browser refused the answer to a paused request browser=%u traced=%d error=\"%s\"",
                  browser_index(ic->b), ic->traceparent != NULL, m ? m->error_message : strerror(-err));
}

static void intercept_note(struct intercept *ic, enum names_refusal why, const struct hostcheck_url *u,
                           const char *url, size_t len)
{
    ic->refused[why]++;
    atomic_fetch_add(&intercept_refused_total[why], 1);
    if (ic->pagelog)
        pagelog_refused(ic->pagelog, url, len, names_refusals[why]);
    if (ic->refused_host[0])
        return;
    /* The host only: never the path or query, which may carry a key. */
    const char *what = "-";
    size_t n = 1;
    if (why == NAMES_REFUSAL_SCHEME) {
        what = url;
        n = u->scheme_len ? u->scheme_len : strcspn(url, ":");
        if (n > len)
            n = len;
    } else if (why != NAMES_REFUSAL_MALFORMED) {
        what = u->auth;
        n = u->auth_len;
    }
    size_t k = 0;
    for (size_t i = 0; i < n && k < INTERCEPT_HOST_LOGGED; i++) {
        unsigned char c = (unsigned char)what[i];
        ic->refused_host[k++] = isalnum(c) || (c && strchr(".-_:[]", c)) ? (char)c : '?';
    }
    ic->refused_host[k] = '\0';
}

/* Fetch.requestPaused, on the page's session or a child's: continue or fail
 * it by allowed_hosts (hostcheck_request). */
static void intercept_paused(struct intercept *ic, const struct cdp_msg *m)
{
    const char *id, *url;
    size_t len;
    if (cdp_event_paused(m, &id, &url, &len) < 0) {
        log_warn("cannot read a paused request browser=%u", browser_index(ic->b));
        return;
    }
    struct hostcheck_url u;
    enum names_refusal why;
    int refuse = hostcheck_request(url, len, intercept_allowed, &u, &why) < 0;
    struct buf b;
    browser_cmd_init(&b);
    struct cdp *c = browser_cdp(ic->b);
    int cid = refuse ? cdp_fetch_fail(c, &b, m->session, id) : intercept_continue_traced(ic, &b, m, id, url, len);
    if (cid < 0 && !refuse) /* a builder that fails leaves b as it was */
        cid = cdp_fetch_continue(c, &b, m->session, id);
    intercept_send(ic, &b, cid, intercept_answer_reply);
    if (refuse)
        intercept_note(ic, why, &u, url, len);
}

/* A WebSocket the page has just made: Fetch never sees it; the browser's
 * resolver rules (hostcheck_resolver_rules, set by the supervisor) stop it
 * when its host is refused, so the same rule, host only, counts it here. */
static void intercept_websocket(struct intercept *ic, const struct cdp_msg *m)
{
    const char *url;
    size_t len;
    struct hostcheck_url u;
    enum names_refusal why;
    if (cdp_event_websocket(m, &url, &len) == 0 && hostcheck_socket(url, len, intercept_allowed, &u, &why) < 0)
        intercept_note(ic, why, &u, url, len);
}

static struct intercept_child *intercept_child_find(struct intercept *ic, const char *session, int id, unsigned *slot)
{
    for (unsigned i = 0; i < ic->nchildren; i++) {
        struct intercept_child *ch = &ic->children[i];
        if (session) {
            if (strcmp(ch->session, session) == 0)
                return ch;
            continue;
        }
        for (unsigned k = 0; k < INTERCEPT_CHILD_CMDS; k++) {
            if (ch->ids[k] == id) {
                *slot = k;
                return ch;
            }
        }
    }
    return NULL;
}

static void intercept_child_run(struct intercept *ic, const char *session)
{
    struct buf b;
    browser_cmd_init(&b);
    intercept_send(ic, &b, cdp_run_if_waiting(browser_cdp(ic->b), &b, session), intercept_ignore_reply);
}

/* A child's Fetch.enable or auto-attach answered (an error too: a target
 * without the Fetch domain still has to run): when both are, let it run. */
static void intercept_child_reply(void *arg, int id, const struct cdp_msg *m, int err)
{
    (void)m;
    (void)err;
    struct intercept *ic = arg;
    unsigned slot;
    struct intercept_child *ch = intercept_child_find(ic, NULL, id, &slot);
    if (!ch)
        return;
    ch->ids[slot] = 0;
    for (unsigned k = 0; k < INTERCEPT_CHILD_CMDS; k++)
        if (ch->ids[k])
            return;
    intercept_child_run(ic, ch->session);
}

/* Target.attachedToTarget on the page's session or a child's: a frame in a
 * process of its own, or a worker, waiting for us. */
static void intercept_child_attached(struct intercept *ic, const struct cdp_msg *m)
{
    const char *session, *target;
    if (cdp_event_target(m, &session, &target) < 0 || strlen(session) > CDP_ID_MAX)
        return;
    if (ic->nchildren == INTERCEPT_CHILDREN_MAX || browser_subscribe(ic->b, session, intercept_child_event, ic) < 0) {
        /* Not ours to check (or no room to track it): it must not run
         * unchecked, so it is left waiting, detached with the context. */
        log_warn("cannot check the requests of a child target browser=%u", browser_index(ic->b));
        return;
    }
    struct intercept_child *ch = &ic->children[ic->nchildren++];
    memcpy(ch->session, session, strlen(session) + 1);
    struct cdp *c = browser_cdp(ic->b);
    int broken = 0;
    for (unsigned k = 0; k < INTERCEPT_CHILD_CMDS; k++) {
        struct buf b;
        browser_cmd_init(&b);
        int id = k == 0 ? cdp_fetch_enable(c, &b, session) : cdp_set_auto_attach(c, &b, session);
        ch->ids[k] = id;
        intercept_send(ic, &b, id, intercept_child_reply);
        broken |= id < 0;
    }
    if (broken)
        /* a builder refused the session id: it cannot be checked, so it
         * stays held (never the case with Chrome's ids) */
        log_warn("cannot check the requests of a child target browser=%u", browser_index(ic->b));
}

static void intercept_child_detached(struct intercept *ic, const char *session)
{
    unsigned slot;
    struct intercept_child *ch = intercept_child_find(ic, session, 0, &slot);
    if (!ch)
        return;
    browser_unsubscribe(ic->b, ch->session);
    *ch = ic->children[--ic->nchildren];
}

/* The events of the interception, on any of the render's sessions: 1 when
 * taken here, 0 for the state machine's. */
static int intercept_event_in(struct intercept *ic, const struct cdp_msg *m)
{
    switch (m->event) {
    case CDP_EVENT_REQUEST_PAUSED:
        intercept_paused(ic, m);
        return 1;
    case CDP_EVENT_ATTACHED_TO_TARGET:
        intercept_child_attached(ic, m);
        return 1;
    case CDP_EVENT_WEBSOCKET_CREATED:
        intercept_websocket(ic, m);
        return 1;
    case CDP_EVENT_DETACHED_FROM_TARGET: {
        /* a child's, sent on its parent's session; the page's own goes on */
        const char *gone = cdp_msg_lost_session(m);
        if (gone && strcmp(gone, ic->page_session) != 0) {
            intercept_child_detached(ic, gone);
            return 1;
        }
        return 0;
    }
    default:
        return 0;
    }
}

/* Events of a child's session: its requests and its own children; the rest
 * (its crash, its console) is no concern of the render's. */
static void intercept_child_event(void *arg, const struct cdp_msg *m)
{
    struct intercept *ic = arg;
    if (m)
        intercept_event_in(ic, m);
}

/* One line per render that had requests refused: how many, by reason, and
 * the first one's host. */
void intercept_log(const struct intercept *ic)
{
    unsigned total = 0;
    for (int i = 0; i < NAMES_REFUSAL_COUNT; i++)
        total += ic->refused[i];
    if (!total)
        return;
    char by[128];
    size_t n = 0;
    by[0] = '\0';
    for (int i = 0; i < NAMES_REFUSAL_COUNT; i++)
        if (ic->refused[i] && n < sizeof(by))
            n += (size_t)snprintf(by + n, sizeof(by) - n, " %s=%u", names_refusals[i], ic->refused[i]);
    char id[40] = "";
    if (ic->pagelog && ic->pagelog->claimed)
        snprintf(id, sizeof(id), " render_id=%llu", ic->pagelog->render_id);
    log_info("render refused requests%s browser=%u refused=%u%s first_host=%s", id, browser_index(ic->b), total,
             by, ic->refused_host);
}

int intercept_event(struct intercept *ic, const char *page_session, const struct cdp_msg *m)
{
    size_t n = strlen(page_session);
    if (n <= CDP_ID_MAX)
        memcpy(ic->page_session, page_session, n + 1);
    return intercept_event_in(ic, m);
}

void intercept_report(struct ingest_buf *ib)
{
    unsigned long long total[NAMES_REFUSAL_COUNT];
    for (int i = 0; i < NAMES_REFUSAL_COUNT; i++)
        total[i] = atomic_load(&intercept_refused_total[i]);
    lines_requests_refused(ib, total);
}

void intercept_forget(struct intercept *ic)
{
    browser_forget(ic->b, ic); /* its commands' replies and its children's subscriptions */
    ic->nchildren = 0;
}
