/* Readiness, decided from what the page and CDP each saw: the page's probe
 * says whether Grafana's signals, the main thread and the DOM have settled;
 * CDP's network events say whether a request is still on its way. Pure:
 * the render machine feeds it events and times and asks for a verdict. */
#include "ready.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "xalloc.h"

extern const char renderer_ready_js[];
extern const char renderer_probe_js[];

/* NULL-terminated, for names_find. */
static const char *const ready_kinds[] = {
    [READY_KIND_NONE] = "none",     [READY_KIND_BOOT] = "boot",       [READY_KIND_PANELS] = "panels",
    [READY_KIND_SCENES] = "scenes", [READY_KIND_BINDING] = "binding", [READY_KIND_BINDING + 1] = NULL,
};

const char *ready_kind_name(enum ready_kind k)
{
    return (unsigned)k <= READY_KIND_BINDING ? ready_kinds[k] : "none";
}

void ready_init(struct ready *r)
{
    memset(r, 0, sizeof(*r));
    r->wait_rule = -1;
    r->charge_to = -1;
    r->last_rule = -1;
}

void ready_fini(struct ready *r)
{
    free(r->reqs);
    r->reqs = NULL;
    r->nreqs = r->cap = 0;
}

void ready_phase(struct ready *r, int charge_to)
{
    r->settle_ns = 0;
    r->wait_ns = 0;
    r->wait_rule = -1;
    r->charge_to = charge_to;
}

/* Where a wait or a page-side block of rule is charged. */
static int ready_charge(const struct ready *r, int rule)
{
    return r->charge_to >= 0 ? r->charge_to : rule;
}

/* ---- the network, as CDP reports it ---------------------------------------- */

static struct ready_request *ready_find(struct ready *r, const char *id)
{
    for (size_t i = 0; i < r->nreqs; i++)
        if (strcmp(r->reqs[i].id, id) == 0)
            return &r->reqs[i];
    return NULL;
}

/* The length of url's origin (scheme://authority, up to the path), or 0
 * for a url without one. */
static size_t ready_origin_len(const char *url)
{
    const char *sep = strstr(url, "://");
    if (!sep || sep == url)
        return 0;
    const char *end = sep + 3 + strcspn(sep + 3, "/?#");
    return (size_t)(end - url);
}

void ready_set_origin(struct ready *r, const char *url)
{
    size_t n = url ? ready_origin_len(url) : 0;
    if (n == 0 || n > READY_ORIGIN_MAX)
        n = 0;
    for (size_t i = 0; i < n; i++)
        r->origin[i] = (char)(url[i] >= 'A' && url[i] <= 'Z' ? url[i] - 'A' + 'a' : url[i]);
    r->origin[n] = '\0';
}

static int ready_is_own(const struct ready *r, const char *url)
{
    size_t n = strlen(r->origin);
    if (!n || !url || ready_origin_len(url) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = url[i] >= 'A' && url[i] <= 'Z' ? url[i] - 'A' + 'a' : url[i];
        if (c != r->origin[i])
            return 0;
    }
    return 1;
}

/* A page may start many requests; past this many in flight, new ones are
 * not tracked (their start and end still move the quiet window). */
#define READY_REQUESTS_MAX 4096

void ready_on_network(struct ready *r, const struct cdp_msg *m, int64_t now_ns)
{
    struct cdp_request rq;
    if (cdp_event_request(m, &rq) < 0 || strlen(rq.request_id) > CDP_ID_MAX)
        return;
    struct ready_request *q = ready_find(r, rq.request_id);
    switch (m->event) {
    case CDP_EVENT_REQUEST_WILL_BE_SENT: {
        int stream = rq.type && strcmp(rq.type, "EventSource") == 0;
        if (!stream)
            r->net_ns = now_ns;
        if (q) /* a redirect: the same request goes on */
            return;
        if (r->nreqs == READY_REQUESTS_MAX)
            return;
        if (r->nreqs == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 16;
            r->reqs = xreallocarray(r->reqs, r->cap, sizeof(*r->reqs));
        }
        q = &r->reqs[r->nreqs++];
        memset(q, 0, sizeof(*q));
        memcpy(q->id, rq.request_id, strlen(rq.request_id) + 1);
        q->start_ns = now_ns;
        q->stream = stream;
        q->own = ready_is_own(r, rq.url);
        return;
    }
    case CDP_EVENT_RESPONSE_RECEIVED:
        if (q && !q->response_ns)
            q->response_ns = now_ns;
        return;
    case CDP_EVENT_LOADING_FINISHED:
    case CDP_EVENT_LOADING_FAILED:
        /* One never seen to begin (past READY_REQUESTS_MAX, or its start
         * could not be read) ended all the same: the page may act on it. */
        if (!q) {
            r->net_ns = now_ns;
            return;
        }
        if (!q->stream)
            r->net_ns = now_ns;
        *q = r->reqs[--r->nreqs];
        return;
    default:
        return;
    }
}

void ready_on_load(struct ready *r, int64_t now_ns)
{
    if (!r->load_ns)
        r->load_ns = now_ns;
}

/* In flight and still worth waiting for: not a stream (an EventSource, or a
 * response that keeps coming for READY_STREAM_MS) and not older than
 * READY_REQUEST_MAX_MS (a long poll). The earliest time one of them stops
 * counting goes to *until; *awaited says whether one is awaited whatever
 * it takes (a Grafana page's own request with no answer yet). */
static size_t ready_counted_awaited(const struct ready *r, int64_t now_ns, int64_t *until, int *awaited)
{
    size_t n = 0;
    int64_t soonest = 0;
    for (size_t i = 0; i < r->nreqs; i++) {
        const struct ready_request *q = &r->reqs[i];
        if (q->stream)
            continue;
        /* A Grafana page's request to its own origin with no answer yet is
         * its dashboard, a query, a plugin: awaited whatever it takes (its
         * own long-lived connections are WebSockets, not requests). Another
         * host's (a CDN, an image, analytics) is not Grafana's to hold. */
        int wait_all = r->grafana && q->own && !q->response_ns;
        int64_t end = wait_all ? INT64_MAX : q->start_ns + (int64_t)READY_REQUEST_MAX_MS * CLOCK_NS_PER_MS;
        if (q->response_ns) {
            int64_t s = q->response_ns + (int64_t)READY_STREAM_MS * CLOCK_NS_PER_MS;
            if (s < end)
                end = s;
        }
        if (end <= now_ns)
            continue;
        n++;
        if (wait_all && awaited)
            *awaited = 1;
        if (!soonest || end < soonest)
            soonest = end;
    }
    if (until)
        *until = soonest;
    return n;
}

size_t ready_inflight(const struct ready *r, int64_t now_ns)
{
    return ready_counted_awaited(r, now_ns, NULL, NULL);
}

/* ---- the page, through its probe ------------------------------------------------ */

const char *ready_observer_script(void)
{
    return renderer_ready_js;
}

int ready_probe_expression(struct buf *out, unsigned wait_ms)
{
    if (wait_ms > CDP_READINESS_WAIT_MAX)
        return -EINVAL;
    buf_printf(out,
               "(%s)({waitMs:%u,quietMs:%d,pollMs:%d,busyMs:%d,lagMs:%d,mountMs:%d,bootQuietMs:%d,"
               "settleMaxMs:%d})",
               renderer_probe_js, wait_ms, READY_QUIET_MS, READY_POLL_MS, READY_BUSY_MS, READY_LAG_MS,
               READY_MOUNT_MS, READY_BOOT_QUIET_MS, READY_SETTLE_MAX_MS);
    return 0;
}

/* A time in ms the page reported: a finite number from 0 up to a day. */
static int ready_ms(json_t *v, double *out)
{
    if (!json_is_number(v))
        return -1;
    double d = json_number_value(v);
    if (!(d >= 0 && d <= 86400000.0))
        return -1;
    *out = d;
    return 0;
}

int ready_parse(const struct cdp_msg *m, struct ready_page *p)
{
    struct cdp_value v;
    int rc = cdp_result_evaluate(m, &v);
    if (rc < 0)
        return rc;
    if (v.type != CDP_VALUE_JSON || !json_is_object(v.json))
        return -EBADMSG;
    memset(p, 0, sizeof(*p));
    json_t *ready = json_object_get(v.json, "ready");
    json_t *kind = json_object_get(v.json, "kind");
    json_t *rule = json_object_get(v.json, "rule");
    json_t *blocked = json_object_get(v.json, "blocked");
    if (!json_is_boolean(ready) || !json_is_string(kind) || !json_is_object(blocked) ||
        ready_ms(json_object_get(v.json, "waited"), &p->waited_ms) < 0)
        return -EBADMSG;
    p->ready = json_is_true(ready);
    json_t *grafana = json_object_get(v.json, "grafana");
    if (grafana && !json_is_boolean(grafana))
        return -EBADMSG;
    p->grafana = json_is_true(grafana);
    int k = names_find(ready_kinds, json_string_value(kind));
    if (k < 0)
        return -EBADMSG;
    p->kind = (enum ready_kind)k;
    p->rule = -1;
    if (json_is_string(rule)) {
        p->rule = names_find(names_rules, json_string_value(rule));
        if (p->rule < 0)
            return -EBADMSG;
    } else if (!json_is_null(rule) || !p->ready) {
        return -EBADMSG;
    }
    const char *key;
    json_t *val;
    json_object_foreach(blocked, key, val) {
        int i = names_find(names_rules, key);
        double ms;
        if (i < 0 || ready_ms(val, &ms) < 0)
            return -EBADMSG;
        p->blocked_ms[i] = ms;
    }
    return 0;
}

/* ---- the verdict ---------------------------------------------------------------- */

void ready_wait_end(struct ready *r, int64_t now_ns)
{
    if (r->wait_ns && r->wait_rule >= 0 && now_ns > r->wait_ns)
        r->rule_ms[ready_charge(r, r->wait_rule)] += (double)(now_ns - r->wait_ns) / CLOCK_NS_PER_MS;
    r->wait_ns = 0;
    r->wait_rule = -1;
}

/* The CDP side: 1 when nothing holds the capture back at now_ns; else 0
 * with the rule that does and when to look again (*until). */
static int ready_cdp_side(const struct ready *r, int64_t now_ns, int *rule, int64_t *until)
{
    int64_t ms = CLOCK_NS_PER_MS;
    int signal = r->kind != READY_KIND_NONE;
    /* A page that never settles is taken as it is, at most this long after
     * its page side first said ready. */
    int64_t cap = r->settle_ns + (int64_t)READY_SETTLE_MAX_MS * ms;
    int64_t soonest;
    int awaited = 0;
    if (ready_counted_awaited(r, now_ns, &soonest, &awaited) > 0 && (awaited || now_ns < cap)) {
        /* Grafana's own unanswered requests are awaited past the cap. */
        *rule = NAMES_RULE_NETWORK;
        *until = awaited || soonest < cap ? soonest : cap;
        return 0;
    }
    if (now_ns >= cap)
        return 1;
    int64_t quiet = r->net_ns + (int64_t)(signal ? READY_NET_QUIET_MS : READY_GRACE_MS) * ms;
    if (r->net_ns && now_ns < quiet) {
        *rule = signal ? NAMES_RULE_NETWORK : NAMES_RULE_GRACE;
        *until = quiet;
        return 0;
    }
    if (!signal) {
        /* No request since the load event: the grace runs from it. */
        int64_t grace = r->load_ns + (int64_t)READY_GRACE_MS * ms;
        if (r->load_ns > r->net_ns && now_ns < grace) {
            *rule = NAMES_RULE_GRACE;
            *until = grace;
            return 0;
        }
    }
    return 1;
}

enum ready_verdict ready_decide(struct ready *r, const struct ready_page *p, int64_t now_ns, int64_t *wake_ns)
{
    ready_wait_end(r, now_ns);
    for (int i = 0; i < NAMES_RULE_COUNT; i++)
        r->rule_ms[ready_charge(r, i)] += p->blocked_ms[i];
    r->kind = p->kind;
    r->grafana = p->grafana;
    r->decided = 1;
    r->last_rule = p->rule;
    *wake_ns = 0;
    if (!p->ready) {
        r->settle_ns = 0;
        return READY_PROBE;
    }
    if (!r->settle_ns)
        r->settle_ns = now_ns;
    int rule;
    int64_t until;
    if (ready_cdp_side(r, now_ns, &rule, &until))
        return READY_YES;
    r->wait_ns = now_ns;
    r->wait_rule = rule;
    r->last_rule = rule;
    *wake_ns = until;
    return READY_WAIT;
}

int64_t ready_rewake(struct ready *r, int64_t now_ns)
{
    int rule;
    int64_t until;
    if (ready_cdp_side(r, now_ns, &rule, &until))
        return now_ns;
    if (rule != r->wait_rule && r->wait_ns) {
        /* Charge the wait so far to what held it, the rest to the new rule. */
        ready_wait_end(r, now_ns);
        r->wait_ns = now_ns;
    }
    r->wait_rule = rule;
    r->last_rule = rule;
    return until;
}
