/* The one definition of every name in names.h. */
#include "names.h"

#include <string.h>

const char *const names_steps[NAMES_STEP_COUNT + 1] = {
    [NAMES_STEP_LAUNCH] = "launch",
    [NAMES_STEP_NEW_PAGE] = "newPage",
    [NAMES_STEP_PREPARE] = "prepare",
    [NAMES_STEP_NAVIGATE] = "navigate",
    [NAMES_STEP_PANELS_RENDERED] = "panelsRendered",
    [NAMES_STEP_SCREENSHOT] = "screenshot",
    [NAMES_STEP_DASHBOARD_SCROLLING] = "dashboardScrolling",
    [NAMES_STEP_NAVIGATE_CSV] = "navigateCSV",
    [NAMES_STEP_DOWNLOAD_CSV] = "downloadCSV",
    [NAMES_STEP_COUNT] = NULL,
};

const char *const names_rules[NAMES_RULE_COUNT + 1] = {
    [NAMES_RULE_BOOT] = "boot",
    [NAMES_RULE_BINDING] = "binding",
    [NAMES_RULE_QUERIES] = "queries",
    [NAMES_RULE_VARIABLES] = "variables",
    [NAMES_RULE_PANELS] = "panels",
    [NAMES_RULE_BUSY] = "busy",
    [NAMES_RULE_PAINT] = "paint",
    [NAMES_RULE_NETWORK] = "network",
    [NAMES_RULE_GRACE] = "grace",
    [NAMES_RULE_LAZY] = "lazy",
    [NAMES_RULE_COUNT] = NULL,
};

const char *const names_bounds[NAMES_BOUND_COUNT + 1] = {
    [NAMES_BOUND_CGROUP] = "cgroup",
    [NAMES_BOUND_HOST] = "host",
    [NAMES_BOUND_CONFIG] = "config",
    [NAMES_BOUND_COUNT] = NULL,
};

const char *const names_conn_closes[NAMES_CONN_COUNT + 1] = {
    [NAMES_CONN_LIMIT] = "connection_limit",
    [NAMES_CONN_HEADER_DEADLINE] = "header_deadline",
    [NAMES_CONN_COUNT] = NULL,
};

const char *const names_waits[NAMES_WAIT_COUNT + 1] = {
    [NAMES_WAIT_MEMORY] = "memory",
    [NAMES_WAIT_BROWSER] = "browser",
    [NAMES_WAIT_COUNT] = NULL,
};

const char *const names_refusals[NAMES_REFUSAL_COUNT + 1] = {
    [NAMES_REFUSAL_NOT_ALLOWED] = "not_allowed",
    [NAMES_REFUSAL_LINK_LOCAL] = "link_local",
    [NAMES_REFUSAL_SCHEME] = "scheme",
    [NAMES_REFUSAL_MALFORMED] = "malformed",
    [NAMES_REFUSAL_COUNT] = NULL,
};

int names_find(const char *const *list, const char *name)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(list[i], name) == 0)
            return i;
    return -1;
}
