/* Readiness: when a page shows what Grafana asked for. The evidence comes
 * from two sides: the page (renderer/probe.js, reading Grafana's signals,
 * DOM changes, long tasks and timers that renderer/ready.js keeps) and CDP
 * (requests in flight, the load event). This module is pure: it keeps the
 * CDP side, builds the probe, reads its answer, decides, and adds up how
 * long each rule held the render back. docs/renderer.md, "Readiness". */
#ifndef RV_READY_H
#define RV_READY_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "cdp.h"
#include "names.h"

/* The windows, each justified by a measurement in docs/benchmarks.md,
 * "Readiness windows" (bench/readiness-windows.py). */
/* The DOM and its layout unchanged this long, longer than a frame at
 * 60 Hz (16.7 ms): a page changing its DOM frame after frame is not taken
 * between two frames. */
#define READY_QUIET_MS 20
/* The probe looks at the page this often while it waits. */
#define READY_POLL_MS 10
/* A long task (>= 50 ms, the browser's own measure) ended this recently. */
#define READY_BUSY_MS 20
/* The probe's own timer this much later than asked: the main thread was
 * busy (work cut in tasks too short for the longtask observer). An idle
 * page's poll is at most 4 ms late, and 2.1 ms at p99 under load; work
 * chained with setTimeout(0) leaves 4 ms gaps the poll falls into. */
#define READY_LAG_MS 3
/* A Grafana dashboard route with no dashboard yet (its page loader: the
 * dashboard fetched, its scene built) holds the render until the page has
 * been still this long: a route that shows no dashboard (not found, no
 * permission) is then taken as it is. */
#define READY_BOOT_QUIET_MS 1500
/* Quiet after the last request of a page with Grafana's signal ended: a
 * request its answer chains to starts within this. */
#define READY_NET_QUIET_MS 25
/* A page with no signal at all: its network quiet this long (the grace). */
#define READY_GRACE_MS 75
/* No request in flight: streams and long polls do not end, so a request
 * that has had its response for this long, or is this old, stops counting. */
#define READY_STREAM_MS 500
#define READY_REQUEST_MAX_MS 3000
/* A page that never settles (a clock, an animation, a busy loop) is
 * captured this long after its signals (or, without any, its network) say
 * ready: the settling rules are bounded. */
#define READY_SETTLE_MAX_MS 3000
/* A scene whose panels have not mounted is waited for at most this long (a
 * dashboard of collapsed rows mounts no panel). */
#define READY_MOUNT_MS 3000
/* One probe waits in the page at most this long before it answers. */
#define READY_PROBE_MS 10000u

enum ready_kind {
    READY_KIND_NONE,    /* no signal: not Grafana, or not a dashboard */
    READY_KIND_BOOT,    /* Grafana whose app has not started */
    READY_KIND_PANELS,  /* window.panelsRendered against the panels */
    READY_KIND_SCENES,  /* window.__grafanaSceneContext */
    READY_KIND_BINDING, /* Grafana's render binding message */
};

/* The page's answer to one probe. */
struct ready_page {
    int ready;
    enum ready_kind kind;
    int rule;                          /* enum names_rule blocking at the end, or -1 */
    double blocked_ms[NAMES_RULE_COUNT]; /* page-side time each rule blocked */
    double waited_ms;
    int grafana;                       /* window.grafanaBootData: a Grafana page */
};

struct ready_request {
    char id[CDP_ID_MAX + 1];
    int64_t start_ns;
    int64_t response_ns; /* 0: no response yet */
    int stream;          /* EventSource: never ends */
    int own;             /* to the page's own origin (Grafana's API, on a Grafana page) */
};

/* scheme://host[:port] of a URL, lower case, as the origin requests are
 * compared with. */
#define READY_ORIGIN_MAX 300

struct ready {
    struct ready_request *reqs;
    size_t nreqs, cap;
    int64_t net_ns;     /* the last time a counted request began or ended */
    int64_t load_ns;    /* the page's load event; 0 before it */
    int64_t settle_ns;  /* when the page side first said ready this phase; 0 before */
    int64_t wait_ns;    /* the C-side wait in progress began here; 0: none */
    int wait_rule;      /* and what it waits for (names_rule) */
    int charge_to;      /* ready_phase's */
    enum ready_kind kind;
    int grafana;        /* the page is Grafana's: its own requests without an answer are awaited */
    int decided;        /* a probe has answered since the render began */
    int last_rule;      /* what held the page at its last answer or wait (names_rule), or -1 */
    char origin[READY_ORIGIN_MAX + 1]; /* the page's ("" none) */
    double rule_ms[NAMES_RULE_COUNT]; /* the render's total per rule */
};

void ready_init(struct ready *r);
void ready_fini(struct ready *r);
/* A new readiness phase (after the load event; after the full page's
 * resize): the settling restarts, totals stay. charge_to >= 0 charges every
 * wait of the phase to that rule (the lazy panels'), -1 to each its own. */
void ready_phase(struct ready *r, int charge_to);

/* Network events of the page's session (requestWillBeSent, responseReceived,
 * loadingFinished, loadingFailed); anything else is ignored. */
void ready_on_network(struct ready *r, const struct cdp_msg *m, int64_t now_ns);
void ready_on_load(struct ready *r, int64_t now_ns);
/* The page's URL, whose origin its own requests share (the render's url:
 * Grafana's callback URL). */
void ready_set_origin(struct ready *r, const char *url);

/* The script to install before the page's own (Page.addScriptToEvaluateOnNewDocument). */
const char *ready_observer_script(void);
/* The probe for Runtime.evaluate (await_promise), waiting at most wait_ms
 * in the page; -EINVAL for a wait over CDP_READINESS_WAIT_MAX. */
int ready_probe_expression(struct buf *out, unsigned wait_ms);
/* The probe's answer: cdp_result_evaluate's codes, -EBADMSG when the value
 * is not what the probe returns. */
int ready_parse(const struct cdp_msg *m, struct ready_page *p);

enum ready_verdict {
    READY_YES,   /* capture now */
    READY_PROBE, /* the page is not ready: probe again (at once) */
    READY_WAIT,  /* the page is, the network or the grace is not: probe again at *wake_ns */
};
/* Take the page's answer at now_ns (its blocked times are added up) and
 * decide with what CDP saw. */
enum ready_verdict ready_decide(struct ready *r, const struct ready_page *p, int64_t now_ns,
                                int64_t *wake_ns);
/* Time spent in a wait of the CDP side ends at now_ns (a probe goes out). */
void ready_wait_end(struct ready *r, int64_t now_ns);
/* During a READY_WAIT, after a network event: when to look again (now_ns
 * when nothing on the CDP side holds the capture back any more). */
int64_t ready_rewake(struct ready *r, int64_t now_ns);
/* Requests counted as in flight at now_ns. */
size_t ready_inflight(const struct ready *r, int64_t now_ns);

const char *ready_kind_name(enum ready_kind k);

#endif
