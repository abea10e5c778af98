/* allowed_hosts on every request of a render's page, in the browser: the
 * answers to Fetch.requestPaused, the page's child targets, the count and
 * the log line of what was refused (docs/renderer.md, "Every request of the
 * page is checked"). The render (render.c) passes its page's events here
 * first; rsm.c's preparation enables the interception before navigating. */
#ifndef RV_INTERCEPT_H
#define RV_INTERCEPT_H

#include "browser.h"
#include "cdp.h"
#include "ingest.h"
#include "names.h"

/* A page's children tracked at once; one more is left held, unchecked. */
#define INTERCEPT_CHILDREN_MAX 64
/* The first refused host, for the render's log line. */
#define INTERCEPT_HOST_LOGGED 64
#define INTERCEPT_CHILD_CMDS 2

struct intercept_child {
    char session[CDP_ID_MAX + 1];
    int ids[INTERCEPT_CHILD_CMDS]; /* Fetch.enable, Target.setAutoAttach until answered (0: answered) */
};

/* One render's part. Commands and subscriptions are the browser's with
 * this struct as their owner (intercept_forget drops them). */
struct pagelog;

struct intercept {
    struct browser *b;
    struct pagelog *pagelog; /* the render's, told of each refusal (NULL: none) */
    char page_session[CDP_ID_MAX + 1];
    unsigned refused[NAMES_REFUSAL_COUNT];
    char refused_host[INTERCEPT_HOST_LOGGED + 1];
    struct intercept_child children[INTERCEPT_CHILDREN_MAX];
    unsigned nchildren;
    /* Tracing (trace.h): the render's traceparent for the requests to its
     * page's origin; NULL when it has none. Borrowed from the request. */
    const char *trace_origin;
    const char *traceparent;
    const char *tracestate;
};

/* [renderer] allowed_hosts (NULL-terminated; NULL: any host but link-local
 * ones), checked against every request of every page. The list must
 * outlive the renders; set it before the browser thread starts. */
void intercept_set_allowed_hosts(const char *const *allowed_hosts);

void intercept_init(struct intercept *ic, struct browser *b);
/* The page's requests to the origin of url (scheme, host and port) go on
 * with traceparent (and tracestate, when not NULL or "") added, so that
 * Grafana's backend continues the render's trace; requests to any other
 * origin are left as they are. traceparent NULL or "": none. The strings
 * must outlive the render (they are its request's). */
void intercept_set_trace(struct intercept *ic, const char *url, const char *traceparent, const char *tracestate);
/* An event of the page's session (page_session): 1 when it was the
 * interception's (a paused request, a child attached or detached, a
 * WebSocket made), 0 when it is the state machine's. */
int intercept_event(struct intercept *ic, const char *page_session, const struct cdp_msg *m);
/* One info line when the render refused anything: the count by reason and
 * the first refused host (never a path or query). */
void intercept_log(const struct intercept *ic);
/* The renderer's refusals since it started, by reason, as counter lines. */
void intercept_report(struct ingest_buf *ib);
/* Drop the pending replies and the children's subscriptions. */
void intercept_forget(struct intercept *ic);

#endif
