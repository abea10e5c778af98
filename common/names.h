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

/* The index of name in a NULL-terminated list, or -1. */
int names_find(const char *const *list, const char *name);

#endif
