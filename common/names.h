/* Names two binaries must agree on, defined once: the renderer writes them
 * into its reports and the exporter accepts only these (a typo on one side
 * would otherwise show only at run time, as an unknown label). */
#ifndef RV_NAMES_H
#define RV_NAMES_H

/* grafana_image_renderer_step_duration_seconds */
#define NAMES_FAMILY_STEP_DURATION "grafana_image_renderer_step_duration_seconds"
/* A histogram: for each render that reached readiness, how long each
 * readiness rule held it back (0 included, so _sum/_count is the mean a
 * rule adds to a render). */
#define NAMES_FAMILY_READY_WAIT "rendervisor_renderer_readiness_wait_seconds"

/* Memory admission (docs/operations.md, "Memory"): the renderer's figures,
 * sent every second while renders run or wait, every 5 s otherwise.
 * budget = used + available. */
#define NAMES_FAMILY_MEM_BUDGET "rendervisor_renderer_memory_budget_bytes"
#define NAMES_FAMILY_MEM_USED "rendervisor_renderer_memory_used_bytes"
#define NAMES_FAMILY_MEM_AVAILABLE "rendervisor_renderer_memory_available_bytes"
/* What the renders in flight are still expected to take. */
#define NAMES_FAMILY_MEM_RESERVED "rendervisor_renderer_memory_reserved_bytes"
/* What the next render is expected to take. */
#define NAMES_FAMILY_MEM_ESTIMATE "rendervisor_renderer_render_memory_estimate_bytes"
/* 1 for the limit that binds the budget now, 0 for the others (label by). */
#define NAMES_FAMILY_MEM_BOUND "rendervisor_renderer_memory_bound"
/* Renders waiting to start, by what they wait for (label waiting_for). */
#define NAMES_FAMILY_QUEUED "rendervisor_renderer_queued_renders"
/* Counters: renders that had to wait for memory before they started; renders
 * whose page crashed and that were queued again until there was room. */
#define NAMES_FAMILY_MEM_WAITS "rendervisor_renderer_memory_waits_total"
#define NAMES_FAMILY_MEM_RETRIES "rendervisor_renderer_memory_retries_total"

/* Counter: requests of rendered pages the renderer refused in the browser
 * (Fetch.failRequest), by reason (label reason, enum names_refusal). */
#define NAMES_FAMILY_REQUESTS_REFUSED "rendervisor_renderer_requests_refused_total"

/* Why a page's request was refused (renderer/hostcheck.h). */
enum names_refusal {
    NAMES_REFUSAL_NOT_ALLOWED, /* the host is not in [renderer] allowed_hosts */
    NAMES_REFUSAL_LINK_LOCAL,  /* a link-local or metadata address, not listed */
    NAMES_REFUSAL_SCHEME,      /* not http(s), ws(s), data, blob or about */
    NAMES_REFUSAL_MALFORMED,   /* a URL the matcher cannot read */
    NAMES_REFUSAL_COUNT,
};
extern const char *const names_refusals[NAMES_REFUSAL_COUNT + 1];

/* What binds the memory budget (the label by). */
enum names_bound {
    NAMES_BOUND_CGROUP, /* a cgroup limit: ours or one above it */
    NAMES_BOUND_HOST,   /* the host's MemAvailable */
    NAMES_BOUND_CONFIG, /* [renderer] memory_budget */
    NAMES_BOUND_COUNT,
};
extern const char *const names_bounds[NAMES_BOUND_COUNT + 1];

/* What a queued render waits for (the label waiting_for). */
enum names_wait {
    NAMES_WAIT_MEMORY,  /* room in the memory budget */
    NAMES_WAIT_BROWSER, /* a browser with a free slot */
    NAMES_WAIT_COUNT,
};
extern const char *const names_waits[NAMES_WAIT_COUNT + 1];

/* The steps of a render (the label step). The first nine are the reference
 * service's names, which dashboard 12203 shows. */
enum names_step {
    NAMES_STEP_LAUNCH,
    NAMES_STEP_NEW_PAGE,
    NAMES_STEP_PREPARE,
    NAMES_STEP_NAVIGATE,
    NAMES_STEP_PANELS_RENDERED,
    NAMES_STEP_SCREENSHOT,
    NAMES_STEP_DASHBOARD_SCROLLING,
    NAMES_STEP_NAVIGATE_CSV,
    NAMES_STEP_DOWNLOAD_CSV,
    NAMES_STEP_COUNT,
};
/* NULL-terminated, indexed by enum names_step. */
extern const char *const names_steps[NAMES_STEP_COUNT + 1];

/* The readiness rules (the label rule), in the order a wait is charged to
 * them: the first that blocks is the one that held the render back. */
enum names_rule {
    NAMES_RULE_BOOT,      /* Grafana's app has not started (its preloader shows) */
    NAMES_RULE_BINDING,   /* Grafana's render binding has not sent its message */
    NAMES_RULE_QUERIES,   /* __grafanaRunningQueryCount > 0 */
    NAMES_RULE_VARIABLES, /* a scene variable is loading */
    NAMES_RULE_PANELS,    /* panels not drawn yet */
    NAMES_RULE_BUSY,      /* the page's main thread is busy */
    NAMES_RULE_PAINT,     /* the DOM changed less than two frames ago */
    NAMES_RULE_NETWORK,   /* a request in flight or just ended */
    NAMES_RULE_GRACE,     /* a page with no signal: its grace */
    NAMES_RULE_LAZY,      /* full page and PDF: panels brought into view */
    NAMES_RULE_COUNT,
};
extern const char *const names_rules[NAMES_RULE_COUNT + 1];

/* Connections the public listener closed before a request was read
 * (label reason): over the connection limits (per address or in all), or
 * without complete headers in time (renderer/conns.h). */
#define NAMES_FAMILY_CONNS_CLOSED "rendervisor_renderer_connections_closed_total"
enum names_conn_close {
    NAMES_CONN_LIMIT,           /* refused at accept: too many connections */
    NAMES_CONN_HEADER_DEADLINE, /* cut: headers not complete in time */
    NAMES_CONN_COUNT,
};
extern const char *const names_conn_closes[NAMES_CONN_COUNT + 1];

/* The index of name in a NULL-terminated list, or -1. */
int names_find(const char *const *list, const char *name);

#endif
