/* Names two binaries must agree on, defined once: the supervisor and the
 * renderer write them into their reports, and the exporter accepts only
 * these (a typo on one side would otherwise show only at run time, as an
 * unknown_family or unknown_label count). tests/unit/test_names.c runs every
 * line the senders can build through the exporter's registry. The families
 * and what they mean: docs/metrics.md. */
#ifndef RV_NAMES_H
#define RV_NAMES_H

/* ---- families ------------------------------------------------------------ */

/* The reference service's, which dashboard 12203 shows; sent by the renderer. */
#define NAMES_FAMILY_REQUEST_DURATION "grafana_image_renderer_service_http_request_duration_seconds"
#define NAMES_FAMILY_IN_FLIGHT "grafana_image_renderer_http_request_in_flight"
#define NAMES_FAMILY_STEP_DURATION "grafana_image_renderer_step_duration_seconds"
/* 1 for the browser's product string (label version). */
#define NAMES_FAMILY_BROWSER_INFO "grafana_image_renderer_browser_info"

/* The supervisor's, one series per child (label child) and more labels
 * where said (supervisor/report.c). */
#define NAMES_FAMILY_CHILD_UP "rendervisor_child_up"
#define NAMES_FAMILY_CHILD_STATE "rendervisor_child_state" /* label state */
#define NAMES_FAMILY_CHILD_PROCESSES "rendervisor_child_processes"
#define NAMES_FAMILY_CHILD_CPU "rendervisor_child_cpu_seconds_total" /* label mode */
#define NAMES_FAMILY_CHILD_RSS "rendervisor_child_resident_memory_bytes"
#define NAMES_FAMILY_CHILD_PSS "rendervisor_child_proportional_memory_bytes"
#define NAMES_FAMILY_CHILD_VIRTUAL "rendervisor_child_virtual_memory_bytes"
#define NAMES_FAMILY_CHILD_OPEN_FDS "rendervisor_child_open_fds"
#define NAMES_FAMILY_CHILD_MAX_FDS "rendervisor_child_max_fds"
#define NAMES_FAMILY_CHILD_MEMORY_LIMIT "rendervisor_child_memory_limit_bytes"
#define NAMES_FAMILY_CHILD_START_TIME "rendervisor_child_start_time_seconds"
#define NAMES_FAMILY_CHILD_RESTARTS "rendervisor_child_restarts_total" /* label reason */
/* Datagrams a sender could not deliver (label sender). */
#define NAMES_FAMILY_INGEST_DROPPED "rendervisor_ingest_dropped_total"

/* Counter: render requests answered 429 (label reason, enum names_refused). */
#define NAMES_FAMILY_REFUSED "rendervisor_renderer_refused_total"
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

/* Counter: spans of renders the renderer's tracing dropped ([tracing];
 * renderer/trace.h), by reason (label reason, enum names_span_drop). */
#define NAMES_FAMILY_SPANS_DROPPED "rendervisor_renderer_spans_dropped_total"

/* Connections the public listener closed before a request was read
 * (label reason, enum names_conn_close; renderer/conns.h). */
#define NAMES_FAMILY_CONNS_CLOSED "rendervisor_renderer_connections_closed_total"

/* ---- label names --------------------------------------------------------- */

#define NAMES_LABEL_CHILD "child"
#define NAMES_LABEL_STATE "state"
#define NAMES_LABEL_MODE "mode"
#define NAMES_LABEL_REASON "reason"
#define NAMES_LABEL_SENDER "sender"
#define NAMES_LABEL_STEP "step"
#define NAMES_LABEL_RULE "rule"
#define NAMES_LABEL_BY "by"
#define NAMES_LABEL_WAITING_FOR "waiting_for"
#define NAMES_LABEL_VERSION "version"
#define NAMES_LABEL_STATUS_CODE "status_code"

/* ---- the children (label child) ------------------------------------------ */

/* The supervisor names its children so (supervisor/spec.c); the exporter
 * expects exactly these, browser-0 .. browser-<count-1>. */
#define NAMES_CHILD_EXPORTER "exporter"
#define NAMES_CHILD_RENDERER "renderer"
#define NAMES_CHILD_BROWSER_FMT "browser-%u"

/* ---- label values ---------------------------------------------------------- */

/* Each set is one list X(ENUM_CONSTANT, "value"), from which names.c builds
 * the NULL-terminated table indexed by the enum: the constant and its
 * string cannot drift apart. */
#define NAMES_ENUM(id, text) id,

/* A child's state (label state; supervisor/child.h, enum child_state). */
#define NAMES_STATES(X)                                                      \
    X(NAMES_STATE_IDLE, "idle")         /* not started yet */                \
    X(NAMES_STATE_RUNNING, "running")   /* its process is alive */           \
    X(NAMES_STATE_STOPPING, "stopping") /* SIGTERM sent, SIGKILL at the deadline */ \
    X(NAMES_STATE_BACKOFF, "backoff")   /* it ended; it starts again later */ \
    X(NAMES_STATE_STOPPED, "stopped")   /* stopped for good */
enum names_state { NAMES_STATES(NAMES_ENUM) NAMES_STATE_COUNT };
extern const char *const names_states[NAMES_STATE_COUNT + 1];

/* Why a child was restarted (label reason; enum child_reason). */
#define NAMES_REASONS(X)                                                     \
    X(NAMES_REASON_EXIT, "exit")                 /* it exited by itself */   \
    X(NAMES_REASON_SIGNAL, "signal")             /* a signal we did not send */ \
    X(NAMES_REASON_MEMORY_LIMIT, "memory_limit") /* its tree outgrew memory_limit */ \
    X(NAMES_REASON_UNHEALTHY, "unhealthy")       /* it stopped answering */  \
    X(NAMES_REASON_REQUESTED, "requested")       /* its configuration changed */
enum names_reason { NAMES_REASONS(NAMES_ENUM) NAMES_REASON_COUNT };
extern const char *const names_reasons[NAMES_REASON_COUNT + 1];

/* CPU time's two halves (label mode). */
#define NAMES_MODES(X) X(NAMES_MODE_USER, "user") X(NAMES_MODE_SYSTEM, "system")
enum names_mode { NAMES_MODES(NAMES_ENUM) NAMES_MODE_COUNT };
extern const char *const names_modes[NAMES_MODE_COUNT + 1];

/* Who could not deliver a datagram (label sender). */
#define NAMES_SENDERS(X) X(NAMES_SENDER_SUPERVISOR, "supervisor") X(NAMES_SENDER_RENDERER, "renderer")
enum names_sender { NAMES_SENDERS(NAMES_ENUM) NAMES_SENDER_COUNT };
extern const char *const names_senders[NAMES_SENDER_COUNT + 1];

/* Why a render request was answered 429 (label reason): the queue was
 * full, or its timeout ran out while it waited for memory. */
#define NAMES_REFUSED_ALL(X) X(NAMES_REFUSED_CAPACITY, "capacity") X(NAMES_REFUSED_MEMORY, "memory")
enum names_refused { NAMES_REFUSED_ALL(NAMES_ENUM) NAMES_REFUSED_COUNT };
extern const char *const names_refused[NAMES_REFUSED_COUNT + 1];

/* Why a page's request was refused (renderer/hostcheck.h). */
#define NAMES_REFUSALS(X)                                                    \
    X(NAMES_REFUSAL_NOT_ALLOWED, "not_allowed") /* the host is not in allowed_hosts */ \
    X(NAMES_REFUSAL_LINK_LOCAL, "link_local")   /* link-local or metadata, not listed */ \
    X(NAMES_REFUSAL_SCHEME, "scheme")           /* not http(s), ws(s), data, blob, about */ \
    X(NAMES_REFUSAL_MALFORMED, "malformed")     /* a URL the matcher cannot read */
enum names_refusal { NAMES_REFUSALS(NAMES_ENUM) NAMES_REFUSAL_COUNT };
extern const char *const names_refusals[NAMES_REFUSAL_COUNT + 1];

/* Why tracing dropped spans: its queue was full, or the export failed. */
#define NAMES_SPAN_DROPS(X) X(NAMES_SPAN_DROP_QUEUE_FULL, "queue_full") X(NAMES_SPAN_DROP_EXPORT_FAILED, "export_failed")
enum names_span_drop { NAMES_SPAN_DROPS(NAMES_ENUM) NAMES_SPAN_DROP_COUNT };
extern const char *const names_span_drops[NAMES_SPAN_DROP_COUNT + 1];

/* What binds the memory budget (the label by). */
#define NAMES_BOUNDS(X)                                                      \
    X(NAMES_BOUND_CGROUP, "cgroup") /* a cgroup limit: ours or one above it */ \
    X(NAMES_BOUND_HOST, "host")     /* the host's MemAvailable */            \
    X(NAMES_BOUND_CONFIG, "config") /* [renderer] memory_budget */
enum names_bound { NAMES_BOUNDS(NAMES_ENUM) NAMES_BOUND_COUNT };
extern const char *const names_bounds[NAMES_BOUND_COUNT + 1];

/* What a queued render waits for (the label waiting_for): room in the
 * memory budget, or a browser with a free slot. */
#define NAMES_WAITS(X) X(NAMES_WAIT_MEMORY, "memory") X(NAMES_WAIT_BROWSER, "browser")
enum names_wait { NAMES_WAITS(NAMES_ENUM) NAMES_WAIT_COUNT };
extern const char *const names_waits[NAMES_WAIT_COUNT + 1];

/* The steps of a render (the label step). The first nine are the reference
 * service's names, which dashboard 12203 shows. */
#define NAMES_STEPS(X)                                                       \
    X(NAMES_STEP_LAUNCH, "launch")                                           \
    X(NAMES_STEP_NEW_PAGE, "newPage")                                        \
    X(NAMES_STEP_PREPARE, "prepare")                                         \
    X(NAMES_STEP_NAVIGATE, "navigate")                                       \
    X(NAMES_STEP_PANELS_RENDERED, "panelsRendered")                          \
    X(NAMES_STEP_SCREENSHOT, "screenshot")                                   \
    X(NAMES_STEP_DASHBOARD_SCROLLING, "dashboardScrolling")                  \
    X(NAMES_STEP_NAVIGATE_CSV, "navigateCSV")                                \
    X(NAMES_STEP_DOWNLOAD_CSV, "downloadCSV")
enum names_step { NAMES_STEPS(NAMES_ENUM) NAMES_STEP_COUNT };
extern const char *const names_steps[NAMES_STEP_COUNT + 1];

/* The readiness rules (the label rule), in the order a wait is charged to
 * them: the first that blocks is the one that held the render back. */
#define NAMES_RULES(X)                                                       \
    X(NAMES_RULE_BOOT, "boot")           /* Grafana's app has not started (its preloader shows) */ \
    X(NAMES_RULE_BINDING, "binding")     /* Grafana's render binding has not sent its message */ \
    X(NAMES_RULE_QUERIES, "queries")     /* __grafanaRunningQueryCount > 0 */ \
    X(NAMES_RULE_VARIABLES, "variables") /* a scene variable is loading */   \
    X(NAMES_RULE_PANELS, "panels")       /* panels not drawn yet */          \
    X(NAMES_RULE_BUSY, "busy")           /* the page's main thread is busy */ \
    X(NAMES_RULE_PAINT, "paint")         /* the DOM changed less than two frames ago */ \
    X(NAMES_RULE_NETWORK, "network")     /* a request in flight or just ended */ \
    X(NAMES_RULE_GRACE, "grace")         /* a page with no signal: its grace */ \
    X(NAMES_RULE_LAZY, "lazy")           /* full page and PDF: panels brought into view */
enum names_rule { NAMES_RULES(NAMES_ENUM) NAMES_RULE_COUNT };
extern const char *const names_rules[NAMES_RULE_COUNT + 1];

/* Why the public listener closed a connection before a request was read:
 * over the connection limits (per address or in all), or without complete
 * headers in time. */
#define NAMES_CONN_CLOSES(X)                                                 \
    X(NAMES_CONN_LIMIT, "connection_limit")          /* refused at accept */ \
    X(NAMES_CONN_HEADER_DEADLINE, "header_deadline") /* headers not complete in time */
enum names_conn_close { NAMES_CONN_CLOSES(NAMES_ENUM) NAMES_CONN_COUNT };
extern const char *const names_conn_closes[NAMES_CONN_COUNT + 1];

/* The index of name in a NULL-terminated list, or -1. */
int names_find(const char *const *list, const char *name);

#endif
