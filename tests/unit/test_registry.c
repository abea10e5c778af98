/* The exporter's registry: which lines it takes and why it refuses the
 * others, the exposition text it writes, histogram bucketing at the bounds,
 * its cardinality limits and its own counters. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "intake.h"
#include "names.h"
#include "registry.h"

#define REQ "grafana_image_renderer_service_http_request_duration_seconds"
#define STEP "grafana_image_renderer_step_duration_seconds"
#define INFO "grafana_image_renderer_browser_info"

struct fixture {
    struct config *cfg;
    struct registry *reg;
    struct buf out;
};

/* The default config, with `browsers` browsers and request buckets
 * 0.25 1 2.5 so that a histogram's text stays short. */
static void fixture_init(struct fixture *fx, unsigned browsers)
{
    fx->cfg = config_load_default();
    assert_non_null(fx->cfg);
    fx->cfg->browsers.count = browsers;
    fx->cfg->exporter.request_buckets.count = 3;
    fx->cfg->exporter.request_buckets.bounds[0] = 0.25;
    fx->cfg->exporter.request_buckets.bounds[1] = 1;
    fx->cfg->exporter.request_buckets.bounds[2] = 2.5;
    fx->reg = registry_new(fx->cfg);
    assert_non_null(fx->reg);
    buf_init(&fx->out);
}

static void fixture_fini(struct fixture *fx)
{
    buf_fini(&fx->out);
    registry_free(fx->reg);
    config_free(fx->cfg);
}

/* Parse a line (it must parse) and apply it. */
static enum ingest_reject apply(struct fixture *fx, const char *line)
{
    struct ingest_sample s;
    enum ingest_reject r = ingest_parse_line(line, strlen(line), &s);
    if (r != INGEST_OK) {
        print_message("does not parse (%s): %s\n", ingest_reject_name(r), line);
        fail();
    }
    return registry_apply(fx->reg, &s);
}

/* Each of lines answered want, the line named when one is not. */
static void apply_each(struct fixture *fx, const char *const *lines, size_t n, enum ingest_reject want)
{
    for (size_t i = 0; i < n; i++) {
        print_message("%s\n", lines[i]);
        assert_int_equal(apply(fx, lines[i]), want);
    }
}

static const char *render(struct fixture *fx)
{
    buf_reset(&fx->out);
    registry_write(fx->reg, &fx->out);
    assert_non_null(fx->out.data);
    return fx->out.data;
}

/* The exposition text of one family: from its HELP line to the next HELP. */
static void assert_family(struct fixture *fx, const char *family, const char *expected)
{
    const char *all = render(fx);
    char head[256];
    snprintf(head, sizeof(head), "# HELP %s ", family);
    const char *start = strstr(all, head);
    assert_non_null(start);
    const char *end = strstr(start + 1, "# HELP ");
    size_t len = end ? (size_t)(end - start) : strlen(start);
    char *got = test_malloc(len + 1);
    memcpy(got, start, len);
    got[len] = '\0';
    /* Only the series lines are compared: the HELP text is the registry's prose. */
    const char *type = strstr(got, "# TYPE ");
    assert_non_null(type);
    assert_string_equal(type, expected);
    test_free(got);
}

static void test_families(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 2);
    const char *all = render(&fx);
    static const char *const expected[] = {
        REQ " histogram",
        "grafana_image_renderer_http_request_in_flight gauge",
        STEP " histogram",
        INFO " gauge",
        "rendervisor_child_up gauge",
        "rendervisor_child_state gauge",
        "rendervisor_child_processes gauge",
        "rendervisor_child_cpu_seconds_total counter",
        "rendervisor_child_resident_memory_bytes gauge",
        "rendervisor_child_proportional_memory_bytes gauge",
        "rendervisor_child_virtual_memory_bytes gauge",
        "rendervisor_child_open_fds gauge",
        "rendervisor_child_max_fds gauge",
        "rendervisor_child_memory_limit_bytes gauge",
        "rendervisor_child_start_time_seconds gauge",
        "rendervisor_child_restarts_total counter",
        "rendervisor_renderer_refused_total counter",
        "rendervisor_renderer_connections_closed_total counter",
        "rendervisor_renderer_readiness_wait_seconds histogram",
        "rendervisor_renderer_memory_budget_bytes gauge",
        "rendervisor_renderer_memory_used_bytes gauge",
        "rendervisor_renderer_memory_available_bytes gauge",
        "rendervisor_renderer_memory_reserved_bytes gauge",
        "rendervisor_renderer_render_memory_estimate_bytes gauge",
        "rendervisor_renderer_memory_bound gauge",
        "rendervisor_renderer_queued_renders gauge",
        "rendervisor_renderer_memory_waits_total counter",
        "rendervisor_renderer_memory_retries_total counter",
        "rendervisor_renderer_requests_refused_total counter",
        "rendervisor_renderer_spans_dropped_total counter",
        "rendervisor_ingest_lines_total counter",
        "rendervisor_ingest_rejected_total counter",
        "rendervisor_ingest_dropped_total counter",
    };
    /* Every family in this order, each with a non-empty HELP line just
     * before its TYPE line, and nothing else but the own counters' series. */
    const char *p = all;
    size_t i = 0;
    while (*p) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        if (strncmp(p, "# HELP ", 7) == 0) {
            assert_true(i < sizeof(expected) / sizeof(expected[0]));
            size_t name_len = strcspn(expected[i], " ");
            assert_memory_equal(p + 7, expected[i], name_len);
            assert_int_equal(p[7 + name_len], ' ');
            assert_true(nl - (p + 8 + name_len) > 10);
            const char *t = nl + 1;
            assert_memory_equal(t, "# TYPE ", 7);
            assert_memory_equal(t + 7, expected[i], strlen(expected[i]));
            assert_int_equal(t[7 + strlen(expected[i])], '\n');
            p = strchr(t, '\n') + 1;
            i++;
            continue;
        }
        assert_true(strncmp(p, "rendervisor_ingest_lines_total{", 31) == 0 ||
                    strncmp(p, "rendervisor_ingest_rejected_total{", 34) == 0);
        p = nl + 1;
    }
    assert_int_equal(i, sizeof(expected) / sizeof(expected[0]));
    fixture_fini(&fx);
}

static void test_fresh_registry(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 2);
    /* The own counters show at 0 before any line; the rest are empty. */
    assert_family(&fx, "rendervisor_ingest_lines_total",
                  "# TYPE rendervisor_ingest_lines_total counter\n"
                  "rendervisor_ingest_lines_total{result=\"accepted\"} 0\n"
                  "rendervisor_ingest_lines_total{result=\"rejected\"} 0\n");
    assert_family(&fx, "rendervisor_ingest_rejected_total",
                  "# TYPE rendervisor_ingest_rejected_total counter\n"
                  "rendervisor_ingest_rejected_total{reason=\"bad_value\"} 0\n"
                  "rendervisor_ingest_rejected_total{reason=\"cardinality\"} 0\n"
                  "rendervisor_ingest_rejected_total{reason=\"parse\"} 0\n"
                  "rendervisor_ingest_rejected_total{reason=\"peer\"} 0\n"
                  "rendervisor_ingest_rejected_total{reason=\"too_long\"} 0\n"
                  "rendervisor_ingest_rejected_total{reason=\"too_many_lines\"} 0\n"
                  "rendervisor_ingest_rejected_total{reason=\"unknown_family\"} 0\n"
                  "rendervisor_ingest_rejected_total{reason=\"unknown_label\"} 0\n");
    assert_family(&fx, "rendervisor_child_up", "# TYPE rendervisor_child_up gauge\n");
    assert_family(&fx, REQ, "# TYPE " REQ " histogram\n");
    fixture_fini(&fx);
}

static void test_gauges_and_counters(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 2);
    assert_int_equal(apply(&fx, "rendervisor_child_up{child=\"renderer\"} 1"), INGEST_OK);
    assert_int_equal(apply(&fx, "rendervisor_child_up{child=\"exporter\"} 1"), INGEST_OK);
    assert_int_equal(apply(&fx, "rendervisor_child_up{child=\"browser-1\"} 1"), INGEST_OK);
    assert_int_equal(apply(&fx, "rendervisor_child_up{child=\"browser-1\"} 0"), INGEST_OK); /* set, not added */
    assert_family(&fx, "rendervisor_child_up",
                  "# TYPE rendervisor_child_up gauge\n"
                  "rendervisor_child_up{child=\"browser-1\"} 0\n"
                  "rendervisor_child_up{child=\"exporter\"} 1\n"
                  "rendervisor_child_up{child=\"renderer\"} 1\n");

    /* The renderer's refusals (429s), by reason, and the memory it saw. */
    assert_int_equal(apply(&fx, "rendervisor_renderer_refused_total{reason=\"memory\"} 3"), INGEST_OK);
    assert_int_equal(apply(&fx, "rendervisor_renderer_refused_total{reason=\"capacity\"} 1"), INGEST_OK);
    assert_int_equal(apply(&fx, "rendervisor_renderer_refused_total{reason=\"disk\"} 1"),
                     INGEST_REJECT_UNKNOWN_LABEL);
    assert_int_equal(apply(&fx, "rendervisor_renderer_memory_available_bytes 2147483648"), INGEST_OK);
    assert_family(&fx, "rendervisor_renderer_refused_total",
                  "# TYPE rendervisor_renderer_refused_total counter\n"
                  "rendervisor_renderer_refused_total{reason=\"capacity\"} 1\n"
                  "rendervisor_renderer_refused_total{reason=\"memory\"} 3\n");
    /* the page's requests refused in the browser, by the renderer's reasons */
    for (int i = 0; names_refusals[i]; i++) {
        char line[128];
        snprintf(line, sizeof(line), "rendervisor_renderer_requests_refused_total{reason=\"%s\"} %d",
                 names_refusals[i], i + 1);
        assert_int_equal(apply(&fx, line), INGEST_OK);
    }
    assert_int_equal(apply(&fx, "rendervisor_renderer_requests_refused_total{reason=\"capacity\"} 1"),
                     INGEST_REJECT_UNKNOWN_LABEL);
    assert_family(&fx, "rendervisor_renderer_requests_refused_total",
                  "# TYPE rendervisor_renderer_requests_refused_total counter\n"
                  "rendervisor_renderer_requests_refused_total{reason=\"link_local\"} 2\n"
                  "rendervisor_renderer_requests_refused_total{reason=\"malformed\"} 4\n"
                  "rendervisor_renderer_requests_refused_total{reason=\"not_allowed\"} 1\n"
                  "rendervisor_renderer_requests_refused_total{reason=\"scheme\"} 3\n");
    assert_family(&fx, "rendervisor_renderer_memory_available_bytes",
                  "# TYPE rendervisor_renderer_memory_available_bytes gauge\n"
                  "rendervisor_renderer_memory_available_bytes 2147483648\n");

    /* Connections the listener closed before a request: each of
     * names_conn_closes, as the renderer sends them, and nothing else. */
    for (int i = 0; names_conn_closes[i]; i++) {
        char line[160];
        snprintf(line, sizeof(line), NAMES_FAMILY_CONNS_CLOSED "{reason=\"%s\"} %d", names_conn_closes[i], 10 + i);
        assert_int_equal(apply(&fx, line), INGEST_OK);
    }
    assert_int_equal(apply(&fx, NAMES_FAMILY_CONNS_CLOSED "{reason=\"capacity\"} 1"), INGEST_REJECT_UNKNOWN_LABEL);
    assert_family(&fx, NAMES_FAMILY_CONNS_CLOSED,
                  "# TYPE rendervisor_renderer_connections_closed_total counter\n"
                  "rendervisor_renderer_connections_closed_total{reason=\"connection_limit\"} 10\n"
                  "rendervisor_renderer_connections_closed_total{reason=\"header_deadline\"} 11\n");

    /* Two labels, in any order in the line; series sorted by value. */
    assert_int_equal(apply(&fx, "rendervisor_child_state{child=\"renderer\",state=\"running\"} 1"), INGEST_OK);
    assert_int_equal(apply(&fx, "rendervisor_child_state{state=\"idle\",child=\"renderer\"} 0"), INGEST_OK);
    assert_int_equal(apply(&fx, "rendervisor_child_state{child=\"browser-0\",state=\"stopped\"} 1"), INGEST_OK);
    assert_family(&fx, "rendervisor_child_state",
                  "# TYPE rendervisor_child_state gauge\n"
                  "rendervisor_child_state{child=\"browser-0\",state=\"stopped\"} 1\n"
                  "rendervisor_child_state{child=\"renderer\",state=\"idle\"} 0\n"
                  "rendervisor_child_state{child=\"renderer\",state=\"running\"} 1\n");

    /* A gauge takes any finite value; values read back exactly. */
    assert_int_equal(apply(&fx, "grafana_image_renderer_http_request_in_flight -3.5"), INGEST_OK);
    assert_family(&fx, "grafana_image_renderer_http_request_in_flight",
                  "# TYPE grafana_image_renderer_http_request_in_flight gauge\n"
                  "grafana_image_renderer_http_request_in_flight -3.5\n");
    assert_int_equal(apply(&fx, "rendervisor_child_virtual_memory_bytes{child=\"browser-0\"} 1.2e+10"), INGEST_OK);
    assert_int_equal(apply(&fx, "rendervisor_child_start_time_seconds{child=\"browser-0\"} 0.3333333333333333"),
                     INGEST_OK);
    assert_family(&fx, "rendervisor_child_virtual_memory_bytes",
                  "# TYPE rendervisor_child_virtual_memory_bytes gauge\n"
                  "rendervisor_child_virtual_memory_bytes{child=\"browser-0\"} 12000000000\n");
    assert_family(&fx, "rendervisor_child_start_time_seconds",
                  "# TYPE rendervisor_child_start_time_seconds gauge\n"
                  "rendervisor_child_start_time_seconds{child=\"browser-0\"} 0.3333333333333333\n");

    /* Counters are set to the sender's running total, and refuse negatives. */
    assert_int_equal(apply(&fx, "rendervisor_child_cpu_seconds_total{child=\"exporter\",mode=\"user\"} 12.5"),
                     INGEST_OK);
    assert_int_equal(apply(&fx, "rendervisor_child_cpu_seconds_total{child=\"exporter\",mode=\"system\"} 1.25"),
                     INGEST_OK);
    assert_int_equal(apply(&fx, "rendervisor_child_cpu_seconds_total{child=\"exporter\",mode=\"user\"} 13"),
                     INGEST_OK);
    assert_int_equal(apply(&fx, "rendervisor_child_cpu_seconds_total{child=\"exporter\",mode=\"user\"} -1"),
                     INGEST_REJECT_BAD_VALUE);
    assert_int_equal(apply(&fx, "rendervisor_child_restarts_total{child=\"browser-0\",reason=\"memory_limit\"} 0"),
                     INGEST_OK);
    assert_int_equal(apply(&fx, "rendervisor_child_restarts_total{child=\"browser-0\",reason=\"exit\"} -0.5"),
                     INGEST_REJECT_BAD_VALUE);
    assert_int_equal(apply(&fx, "rendervisor_ingest_dropped_total{sender=\"renderer\"} 7"), INGEST_OK);
    assert_int_equal(apply(&fx, "rendervisor_ingest_dropped_total{sender=\"supervisor\"} -7"),
                     INGEST_REJECT_BAD_VALUE);
    assert_family(&fx, "rendervisor_child_cpu_seconds_total",
                  "# TYPE rendervisor_child_cpu_seconds_total counter\n"
                  "rendervisor_child_cpu_seconds_total{child=\"exporter\",mode=\"system\"} 1.25\n"
                  "rendervisor_child_cpu_seconds_total{child=\"exporter\",mode=\"user\"} 13\n");
    assert_family(&fx, "rendervisor_child_restarts_total",
                  "# TYPE rendervisor_child_restarts_total counter\n"
                  "rendervisor_child_restarts_total{child=\"browser-0\",reason=\"memory_limit\"} 0\n");
    assert_family(&fx, "rendervisor_ingest_dropped_total",
                  "# TYPE rendervisor_ingest_dropped_total counter\n"
                  "rendervisor_ingest_dropped_total{sender=\"renderer\"} 7\n");

    /* Every family of the supervisor's reports takes its lines. */
    static const char *const per_child[] = {
        "rendervisor_child_processes", "rendervisor_child_resident_memory_bytes",
        "rendervisor_child_proportional_memory_bytes", "rendervisor_child_open_fds", "rendervisor_child_max_fds",
        "rendervisor_child_memory_limit_bytes",
    };
    for (size_t i = 0; i < sizeof(per_child) / sizeof(per_child[0]); i++) {
        char line[160];
        snprintf(line, sizeof(line), "%s{child=\"browser-1\"} 42", per_child[i]);
        assert_int_equal(apply(&fx, line), INGEST_OK);
        char expected[320];
        snprintf(expected, sizeof(expected), "# TYPE %s gauge\n%s{child=\"browser-1\"} 42\n", per_child[i],
                 per_child[i]);
        assert_family(&fx, per_child[i], expected);
    }
    fixture_fini(&fx);
}

static void test_histogram(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 2);
    /* Bounds 0.25 1 2.5: a value equal to a bound goes in that bucket. */
    const char *lines[] = {
        REQ "{status_code=\"500\"} 0",   REQ "{status_code=\"500\"} 0.25", REQ "{status_code=\"500\"} 0.5",
        REQ "{status_code=\"500\"} 1",   REQ "{status_code=\"500\"} 2.5",  REQ "{status_code=\"500\"} 3",
        REQ "{status_code=\"500\"} 1e9", REQ "{status_code=\"200\"} 2",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        assert_int_equal(apply(&fx, lines[i]), INGEST_OK);
    /* Observations must not be negative; -0 is zero. */
    assert_int_equal(apply(&fx, REQ "{status_code=\"500\"} -0.001"), INGEST_REJECT_BAD_VALUE);
    assert_int_equal(apply(&fx, REQ "{status_code=\"404\"} -1"), INGEST_REJECT_BAD_VALUE);
    assert_int_equal(apply(&fx, REQ "{status_code=\"200\"} -0"), INGEST_OK);
    assert_family(&fx, REQ,
                  "# TYPE " REQ " histogram\n"
                  REQ "_bucket{status_code=\"200\",le=\"0.25\"} 1\n"
                  REQ "_bucket{status_code=\"200\",le=\"1\"} 1\n"
                  REQ "_bucket{status_code=\"200\",le=\"2.5\"} 2\n"
                  REQ "_bucket{status_code=\"200\",le=\"+Inf\"} 2\n"
                  REQ "_sum{status_code=\"200\"} 2\n"
                  REQ "_count{status_code=\"200\"} 2\n"
                  REQ "_bucket{status_code=\"500\",le=\"0.25\"} 2\n"
                  REQ "_bucket{status_code=\"500\",le=\"1\"} 4\n"
                  REQ "_bucket{status_code=\"500\",le=\"2.5\"} 5\n"
                  REQ "_bucket{status_code=\"500\",le=\"+Inf\"} 7\n"
                  REQ "_sum{status_code=\"500\"} 1000000007.25\n"
                  REQ "_count{status_code=\"500\"} 7\n");

    /* The smallest value above a bound goes in the next bucket. */
    struct ingest_sample s = { .family = STEP, .nlabels = 1, .labels = { { "step", "launch" } } };
    s.value = nextafter(0.01, 1);
    assert_int_equal(registry_apply(fx.reg, &s), INGEST_OK);
    s.value = 0.01;
    assert_int_equal(registry_apply(fx.reg, &s), INGEST_OK);
    s.value = nextafter(30, 0);
    assert_int_equal(registry_apply(fx.reg, &s), INGEST_OK);
    s.value = nextafter(30, 31);
    assert_int_equal(registry_apply(fx.reg, &s), INGEST_OK);
    const char *all = render(&fx);
    assert_non_null(strstr(all, STEP "_bucket{step=\"launch\",le=\"0.01\"} 1\n"
                                STEP "_bucket{step=\"launch\",le=\"0.05\"} 2\n"));
    assert_non_null(strstr(all, STEP "_bucket{step=\"launch\",le=\"20\"} 2\n"
                                STEP "_bucket{step=\"launch\",le=\"30\"} 3\n"
                                STEP "_bucket{step=\"launch\",le=\"+Inf\"} 4\n"));
    assert_non_null(strstr(all, STEP "_count{step=\"launch\"} 4\n"));
    /* Every step the renderer reports. */
    static const char *const steps[] = { "launch", "newPage", "prepare", "navigate", "panelsRendered",
                                         "screenshot", "dashboardScrolling", "navigateCSV", "downloadCSV" };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        char line[160];
        snprintf(line, sizeof(line), STEP "{step=\"%s\"} 0.5", steps[i]);
        assert_int_equal(apply(&fx, line), INGEST_OK);
    }
    assert_int_equal(apply(&fx, STEP "{step=\"render\"} 0.5"), INGEST_REJECT_UNKNOWN_LABEL);
    fixture_fini(&fx);
}

/* Memory admission: the renderer's budget, use, reservations and queue
 * (common/names.h). The literal names here are what a dashboard or an
 * alert would query: a renamed macro must show up as a failing test. */
static void test_memory_admission(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 2);
    static const char *const plain_gauges[] = {
        "rendervisor_renderer_memory_budget_bytes", "rendervisor_renderer_memory_used_bytes",
        "rendervisor_renderer_memory_available_bytes", "rendervisor_renderer_memory_reserved_bytes",
        "rendervisor_renderer_render_memory_estimate_bytes",
    };
    assert_string_equal(plain_gauges[0], NAMES_FAMILY_MEM_BUDGET);
    assert_string_equal(plain_gauges[1], NAMES_FAMILY_MEM_USED);
    assert_string_equal(plain_gauges[2], NAMES_FAMILY_MEM_AVAILABLE);
    assert_string_equal(plain_gauges[3], NAMES_FAMILY_MEM_RESERVED);
    assert_string_equal(plain_gauges[4], NAMES_FAMILY_MEM_ESTIMATE);
    for (size_t i = 0; i < sizeof(plain_gauges) / sizeof(plain_gauges[0]); i++) {
        char line[160], expected[320];
        snprintf(line, sizeof(line), "%s 734003200", plain_gauges[i]);
        assert_int_equal(apply(&fx, line), INGEST_OK);
        /* a gauge is set, not added; 0 is a value like any other */
        snprintf(line, sizeof(line), "%s 0", plain_gauges[i]);
        assert_int_equal(apply(&fx, line), INGEST_OK);
        snprintf(line, sizeof(line), "%s 432013312", plain_gauges[i]);
        assert_int_equal(apply(&fx, line), INGEST_OK);
        snprintf(expected, sizeof(expected), "# TYPE %s gauge\n%s 432013312\n", plain_gauges[i], plain_gauges[i]);
        assert_family(&fx, plain_gauges[i], expected);
        /* they take no label */
        snprintf(line, sizeof(line), "%s{by=\"cgroup\"} 1", plain_gauges[i]);
        assert_int_equal(apply(&fx, line), INGEST_REJECT_UNKNOWN_LABEL);
    }

    /* What binds: one of names_bounds, nothing else. */
    for (int i = 0; names_bounds[i]; i++) {
        char line[160];
        snprintf(line, sizeof(line), NAMES_FAMILY_MEM_BOUND "{by=\"%s\"} %d", names_bounds[i],
                 i == NAMES_BOUND_CGROUP);
        assert_int_equal(apply(&fx, line), INGEST_OK);
    }
    assert_family(&fx, NAMES_FAMILY_MEM_BOUND,
                  "# TYPE rendervisor_renderer_memory_bound gauge\n"
                  "rendervisor_renderer_memory_bound{by=\"cgroup\"} 1\n"
                  "rendervisor_renderer_memory_bound{by=\"config\"} 0\n"
                  "rendervisor_renderer_memory_bound{by=\"host\"} 0\n");
    static const char *const bad_bound[] = {
        NAMES_FAMILY_MEM_BOUND "{by=\"swap\"} 1",
        NAMES_FAMILY_MEM_BOUND "{by=\"Cgroup\"} 1",
        NAMES_FAMILY_MEM_BOUND "{by=\"\"} 1",
        NAMES_FAMILY_MEM_BOUND "{limit=\"cgroup\"} 1",
        NAMES_FAMILY_MEM_BOUND " 1",
    };
    apply_each(&fx, bad_bound, sizeof(bad_bound) / sizeof(bad_bound[0]), INGEST_REJECT_UNKNOWN_LABEL);

    /* The queue, by what a render waits for: one of names_waits. */
    assert_int_equal(apply(&fx, NAMES_FAMILY_QUEUED "{waiting_for=\"memory\"} 2"), INGEST_OK);
    assert_int_equal(apply(&fx, NAMES_FAMILY_QUEUED "{waiting_for=\"browser\"} 0"), INGEST_OK);
    assert_int_equal(apply(&fx, NAMES_FAMILY_QUEUED "{waiting_for=\"disk\"} 1"), INGEST_REJECT_UNKNOWN_LABEL);
    assert_int_equal(apply(&fx, NAMES_FAMILY_QUEUED "{waiting_for=\"memory\",by=\"host\"} 1"),
                     INGEST_REJECT_UNKNOWN_LABEL);
    assert_int_equal(apply(&fx, NAMES_FAMILY_QUEUED " 3"), INGEST_REJECT_UNKNOWN_LABEL);
    assert_family(&fx, NAMES_FAMILY_QUEUED,
                  "# TYPE rendervisor_renderer_queued_renders gauge\n"
                  "rendervisor_renderer_queued_renders{waiting_for=\"browser\"} 0\n"
                  "rendervisor_renderer_queued_renders{waiting_for=\"memory\"} 2\n");

    /* Counters: the sender's running total, never negative, no labels. */
    assert_int_equal(apply(&fx, NAMES_FAMILY_MEM_WAITS " 17"), INGEST_OK);
    assert_int_equal(apply(&fx, NAMES_FAMILY_MEM_WAITS " -1"), INGEST_REJECT_BAD_VALUE);
    assert_int_equal(apply(&fx, NAMES_FAMILY_MEM_RETRIES " 3"), INGEST_OK);
    assert_int_equal(apply(&fx, NAMES_FAMILY_MEM_RETRIES "{waiting_for=\"memory\"} 3"),
                     INGEST_REJECT_UNKNOWN_LABEL);
    assert_family(&fx, NAMES_FAMILY_MEM_WAITS,
                  "# TYPE rendervisor_renderer_memory_waits_total counter\n"
                  "rendervisor_renderer_memory_waits_total 17\n");
    assert_family(&fx, NAMES_FAMILY_MEM_RETRIES,
                  "# TYPE rendervisor_renderer_memory_retries_total counter\n"
                  "rendervisor_renderer_memory_retries_total 3\n");

    /* Read back as the status page reads them. */
    double v = -1;
    const char *mem[] = { "waiting_for", "memory", NULL };
    assert_int_equal(registry_get(fx.reg, NAMES_FAMILY_QUEUED, mem, &v), 0);
    assert_true(v == 2);
    char by[16];
    assert_int_equal(registry_label_value(fx.reg, NAMES_FAMILY_MEM_BOUND, "by", by, sizeof(by)), 0);
    assert_string_equal(by, "cgroup");
    fixture_fini(&fx);
}

/* le shows a bound as Prometheus clients do (Go's shortest 'g' form). */
static void test_le_format(void **state)
{
    (void)state;
    struct fixture fx;
    fx.cfg = config_load_default();
    struct config_buckets *b = &fx.cfg->exporter.step_buckets;
    const double bounds[] = { 0.000015, 0.0001, 0.1, 0.3, 1, 2.5, 60, 100000, 1e6, 1234567 };
    const char *expected[] = { "1.5e-05", "0.0001", "0.1", "0.3", "1", "2.5", "60", "100000", "1e+06",
                               "1.234567e+06" };
    b->count = sizeof(bounds) / sizeof(bounds[0]);
    memcpy(b->bounds, bounds, sizeof(bounds));
    fx.reg = registry_new(fx.cfg);
    buf_init(&fx.out);
    assert_int_equal(apply(&fx, STEP "{step=\"navigate\"} 1"), INGEST_OK);
    const char *all = render(&fx);
    for (size_t i = 0; i < b->count; i++) {
        char want[200];
        snprintf(want, sizeof(want), STEP "_bucket{step=\"navigate\",le=\"%s\"} %d\n", expected[i],
                 bounds[i] >= 1 ? 1 : 0);
        print_message("%s", want);
        assert_non_null(strstr(all, want));
    }
    fixture_fini(&fx);
}

static void test_unknown_family(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 2);
    const char *lines[] = {
        "nope 1",
        "rendervisor_child_upp{child=\"exporter\"} 1",
        "rendervisor_child_u{child=\"exporter\"} 1",
        "Rendervisor_child_up{child=\"exporter\"} 1",
        REQ "_bucket{status_code=\"200\",le=\"1\"} 1",
        REQ "_count{status_code=\"200\"} 1",
        "process_cpu_seconds_total 1", /* the exporter's own process: not from a line */
        /* the exporter's own counters are not for senders */
        "rendervisor_ingest_lines_total{result=\"accepted\"} 5",
        "rendervisor_ingest_rejected_total{reason=\"parse\"} 0",
    };
    apply_each(&fx, lines, sizeof(lines) / sizeof(lines[0]), INGEST_REJECT_UNKNOWN_FAMILY);
    fixture_fini(&fx);
}

static void test_unknown_label(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 2);
    const char *lines[] = {
        "rendervisor_child_up 1",                                             /* missing */
        "rendervisor_child_up{} 1",                                           /* missing */
        "rendervisor_child_up{name=\"exporter\"} 1",                          /* wrong name */
        "rendervisor_child_up{child=\"exporter\",mode=\"user\"} 1",           /* extra */
        "rendervisor_child_state{child=\"exporter\"} 1",                      /* missing */
        "rendervisor_child_state{child=\"exporter\",status=\"running\"} 1",   /* wrong name */
        "rendervisor_child_state{child=\"exporter\",state=\"running\",x=\"1\"} 1",
        "rendervisor_child_up{child=\"browser-2\"} 1",                        /* count is 2 */
        "rendervisor_child_up{child=\"browser-01\"} 1",
        "rendervisor_child_up{child=\"Exporter\"} 1",
        "rendervisor_child_up{child=\"\"} 1",
        "rendervisor_child_state{child=\"exporter\",state=\"zombie\"} 1",
        "rendervisor_child_cpu_seconds_total{child=\"exporter\",mode=\"idle\"} 1",
        "rendervisor_child_restarts_total{child=\"exporter\",reason=\"oom\"} 1",
        "rendervisor_ingest_dropped_total{sender=\"exporter\"} 1",
        "grafana_image_renderer_http_request_in_flight{child=\"exporter\"} 1",
        STEP "{step=\"Navigate\"} 1",
        STEP " 1",
        REQ "{status_code=\"200\",le=\"1\"} 1",
        REQ "{code=\"200\"} 1",
        /* status codes: three digits, 100..599 */
        REQ "{status_code=\"99\"} 1",
        REQ "{status_code=\"099\"} 1",
        REQ "{status_code=\"600\"} 1",
        REQ "{status_code=\"2000\"} 1",
        REQ "{status_code=\"20a\"} 1",
        REQ "{status_code=\" 200\"} 1",
        REQ "{status_code=\"\"} 1",
        /* versions: printable and not empty */
        INFO "{version=\"\"} 1",
        INFO "{version=\"a\\nb\"} 1",
        INFO "{version=\"tab\there\"} 1",
        INFO "{version=\"del\x7f\"} 1",
    };
    apply_each(&fx, lines, sizeof(lines) / sizeof(lines[0]), INGEST_REJECT_UNKNOWN_LABEL);
    /* The edges that are allowed. */
    assert_int_equal(apply(&fx, REQ "{status_code=\"100\"} 1"), INGEST_OK);
    assert_int_equal(apply(&fx, REQ "{status_code=\"599\"} 1"), INGEST_OK);
    assert_int_equal(apply(&fx, INFO "{version=\"HeadlessChrome/156.0.8078.108 (caf\xc3\xa9) \\\"q\\\\\"} 1"),
                     INGEST_OK);
    fixture_fini(&fx);
}

static void test_children_from_config(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 12);
    assert_int_equal(apply(&fx, "rendervisor_child_up{child=\"browser-11\"} 1"), INGEST_OK);
    assert_int_equal(apply(&fx, "rendervisor_child_up{child=\"browser-2\"} 1"), INGEST_OK);
    assert_int_equal(apply(&fx, "rendervisor_child_up{child=\"browser-12\"} 1"), INGEST_REJECT_UNKNOWN_LABEL);
    /* byte order of the values */
    assert_family(&fx, "rendervisor_child_up",
                  "# TYPE rendervisor_child_up gauge\n"
                  "rendervisor_child_up{child=\"browser-11\"} 1\n"
                  "rendervisor_child_up{child=\"browser-2\"} 1\n");
    fixture_fini(&fx);

    fixture_init(&fx, 1);
    assert_int_equal(apply(&fx, "rendervisor_child_up{child=\"browser-0\"} 1"), INGEST_OK);
    assert_int_equal(apply(&fx, "rendervisor_child_up{child=\"browser-1\"} 1"), INGEST_REJECT_UNKNOWN_LABEL);
    assert_int_equal(apply(&fx, "rendervisor_child_up{child=\"renderer\"} 1"), INGEST_OK);
    assert_int_equal(apply(&fx, "rendervisor_child_up{child=\"exporter\"} 1"), INGEST_OK);
    fixture_fini(&fx);
}

static void test_cardinality(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 2);
    char line[200];
    for (int code = 100; code < 132; code++) {
        snprintf(line, sizeof(line), REQ "{status_code=\"%d\"} 0.1", code);
        assert_int_equal(apply(&fx, line), INGEST_OK);
    }
    const char *before = render(&fx);
    char *copy = test_malloc(strlen(before) + 1);
    strcpy(copy, before);
    /* a 33rd code is refused; the known ones still count; a code that is
     * not one stays unknown_label even when the set is full */
    assert_int_equal(apply(&fx, REQ "{status_code=\"200\"} 0.1"), INGEST_REJECT_CARDINALITY);
    assert_int_equal(apply(&fx, REQ "{status_code=\"999\"} 0.1"), INGEST_REJECT_UNKNOWN_LABEL);
    assert_string_equal(render(&fx), copy);
    assert_null(strstr(copy, "status_code=\"200\""));
    assert_int_equal(apply(&fx, REQ "{status_code=\"131\"} 0.1"), INGEST_OK);
    assert_int_equal(apply(&fx, REQ "{status_code=\"100\"} 0.1"), INGEST_OK);
    assert_non_null(strstr(render(&fx), REQ "_count{status_code=\"131\"} 2\n"));
    test_free(copy);

    for (int v = 0; v < 8; v++) {
        snprintf(line, sizeof(line), INFO "{version=\"Chrome/%d\"} %d", v, v == 7);
        assert_int_equal(apply(&fx, line), INGEST_OK);
    }
    assert_int_equal(apply(&fx, INFO "{version=\"Chrome/8\"} 1"), INGEST_REJECT_CARDINALITY);
    assert_int_equal(apply(&fx, INFO "{version=\"Chrome/0\"} 0"), INGEST_OK);
    assert_null(strstr(render(&fx), "Chrome/8"));
    assert_non_null(strstr(render(&fx), INFO "{version=\"Chrome/7\"} 1\n"));
    fixture_fini(&fx);
}

/* A refused line changes nothing, and a bad value on a new bounded value
 * does not take up a place in the set. */
static void test_refused_changes_nothing(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 2);
    assert_int_equal(apply(&fx, REQ "{status_code=\"200\"} 1"), INGEST_OK);
    char *before = test_malloc(strlen(render(&fx)) + 1);
    strcpy(before, fx.out.data);
    assert_int_equal(apply(&fx, REQ "{status_code=\"201\"} -1"), INGEST_REJECT_BAD_VALUE);
    assert_int_equal(apply(&fx, "rendervisor_child_cpu_seconds_total{child=\"exporter\",mode=\"user\"} -1"),
                     INGEST_REJECT_BAD_VALUE);
    assert_int_equal(apply(&fx, "rendervisor_child_up{child=\"nobody\"} 1"), INGEST_REJECT_UNKNOWN_LABEL);
    /* values that do not parse never reach the registry, but a sample built
     * by hand might carry one */
    struct ingest_sample s = { .family = "rendervisor_child_up", .nlabels = 1,
                               .labels = { { "child", "exporter" } } };
    s.value = INFINITY;
    assert_int_equal(registry_apply(fx.reg, &s), INGEST_REJECT_BAD_VALUE);
    s.value = NAN;
    assert_int_equal(registry_apply(fx.reg, &s), INGEST_REJECT_BAD_VALUE);
    struct ingest_sample h = { .family = REQ, .nlabels = 1, .labels = { { "status_code", "202" } } };
    h.value = INFINITY;
    assert_int_equal(registry_apply(fx.reg, &h), INGEST_REJECT_BAD_VALUE);
    assert_string_equal(render(&fx), before);
    test_free(before);
    /* 31 more codes still fit: the refused 201 and 202 took no place */
    char line[200];
    for (int code = 300; code < 331; code++) {
        snprintf(line, sizeof(line), REQ "{status_code=\"%d\"} 1", code);
        assert_int_equal(apply(&fx, line), INGEST_OK);
    }
    assert_int_equal(apply(&fx, REQ "{status_code=\"331\"} 1"), INGEST_REJECT_CARDINALITY);
    fixture_fini(&fx);
}

/* exporter/intake.c: one datagram's lines, each counted; past
 * INGEST_MAX_LINES they are refused unread. */
static void test_intake_lines_per_datagram(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 2);
    struct buf d;
    buf_init(&d);
    for (int i = 0; i < INGEST_MAX_LINES + 6; i++)
        buf_printf(&d, "rendervisor_child_up{child=\"exporter\"} %d\n", i % 2);
    buf_puts(&d, "\n\r\n"); /* empty lines are no lines */
    intake_datagram(fx.reg, d.data, d.len, 1);
    const char *accepted[] = { "result", "accepted", NULL };
    const char *rejected[] = { "result", "rejected", NULL };
    const char *too_many[] = { "reason", "too_many_lines", NULL };
    double v = -1;
    assert_int_equal(registry_get(fx.reg, "rendervisor_ingest_lines_total", accepted, &v), 0);
    assert_true(v == INGEST_MAX_LINES);
    assert_int_equal(registry_get(fx.reg, "rendervisor_ingest_lines_total", rejected, &v), 0);
    assert_true(v == 6);
    assert_int_equal(registry_get(fx.reg, "rendervisor_ingest_rejected_total", too_many, &v), 0);
    assert_true(v == 6);
    /* the last line applied is the 1024th: i = 1023, odd */
    const char *exporter[] = { "child", "exporter", NULL };
    assert_int_equal(registry_get(fx.reg, "rendervisor_child_up", exporter, &v), 0);
    assert_true(v == 1);

    /* A datagram from another user counts each of its lines as peer. */
    intake_datagram(fx.reg, "rendervisor_child_up{child=\"exporter\"} 0\nx 1\n", 42, 0);
    const char *peer[] = { "reason", "peer", NULL };
    assert_int_equal(registry_get(fx.reg, "rendervisor_ingest_rejected_total", peer, &v), 0);
    assert_true(v == 2);
    assert_int_equal(registry_get(fx.reg, "rendervisor_child_up", exporter, &v), 0);
    assert_true(v == 1);
    buf_fini(&d);
    fixture_fini(&fx);
}

/* Our own uid and root, nobody else (the supervisor is root when the
 * children run as [supervisor] user). */
static void test_intake_senders(void **state)
{
    (void)state;
    struct intake in = { .fd = -1, .uid = 1000 };
    assert_true(intake_sender_allowed(&in, 1000));
    assert_true(intake_sender_allowed(&in, 0));
    assert_false(intake_sender_allowed(&in, 1001));
    assert_false(intake_sender_allowed(&in, 65534));
    in.uid = 0;
    assert_true(intake_sender_allowed(&in, 0));
    assert_false(intake_sender_allowed(&in, 1000));
}

static void test_own_counters(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 2);
    for (int i = 0; i < 3; i++)
        registry_count(fx.reg, INGEST_OK);
    for (int r = INGEST_REJECT_PARSE; r < INGEST_REJECT_COUNT; r++)
        for (int i = 0; i < r; i++)
            registry_count(fx.reg, (enum ingest_reject)r);
    assert_family(&fx, "rendervisor_ingest_lines_total",
                  "# TYPE rendervisor_ingest_lines_total counter\n"
                  "rendervisor_ingest_lines_total{result=\"accepted\"} 3\n"
                  "rendervisor_ingest_lines_total{result=\"rejected\"} 36\n");
    assert_family(&fx, "rendervisor_ingest_rejected_total",
                  "# TYPE rendervisor_ingest_rejected_total counter\n"
                  "rendervisor_ingest_rejected_total{reason=\"bad_value\"} 4\n"
                  "rendervisor_ingest_rejected_total{reason=\"cardinality\"} 6\n"
                  "rendervisor_ingest_rejected_total{reason=\"parse\"} 1\n"
                  "rendervisor_ingest_rejected_total{reason=\"peer\"} 7\n"
                  "rendervisor_ingest_rejected_total{reason=\"too_long\"} 5\n"
                  "rendervisor_ingest_rejected_total{reason=\"too_many_lines\"} 8\n"
                  "rendervisor_ingest_rejected_total{reason=\"unknown_family\"} 2\n"
                  "rendervisor_ingest_rejected_total{reason=\"unknown_label\"} 3\n");
    /* registry_apply never counts: that is the caller's registry_count */
    assert_int_equal(apply(&fx, "rendervisor_child_up{child=\"exporter\"} 1"), INGEST_OK);
    assert_int_equal(apply(&fx, "nope 1"), INGEST_REJECT_UNKNOWN_FAMILY);
    const char *labels[] = { "result", "accepted", NULL };
    double v = -1;
    assert_int_equal(registry_get(fx.reg, "rendervisor_ingest_lines_total", labels, &v), 0);
    assert_true(v == 3);
    /* a reason past the enum is still a rejected line */
    registry_count(fx.reg, INGEST_REJECT_COUNT);
    labels[1] = "rejected";
    assert_int_equal(registry_get(fx.reg, "rendervisor_ingest_lines_total", labels, &v), 0);
    assert_true(v == 37);
    fixture_fini(&fx);
}

struct observed {
    int calls;
    char family[INGEST_MAX_NAME];
    double value;
};

static void observe(void *arg, const struct ingest_sample *s)
{
    struct observed *o = arg;
    o->calls++;
    snprintf(o->family, sizeof(o->family), "%s", s->family);
    o->value = s->value;
}

/* The observer (the status page's history) sees the lines that were taken,
 * and only those. */
static void test_observer(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 1);
    struct observed o = { 0 };
    registry_set_observer(fx.reg, observe, &o);
    assert_int_equal(apply(&fx, REQ "{status_code=\"200\"} 0.5"), INGEST_OK);
    assert_int_equal(o.calls, 1);
    assert_string_equal(o.family, REQ);
    assert_true(o.value == 0.5);
    assert_int_equal(apply(&fx, "rendervisor_child_up{child=\"browser-7\"} 1"), INGEST_REJECT_UNKNOWN_LABEL);
    assert_int_equal(apply(&fx, "rendervisor_child_cpu_seconds_total{child=\"renderer\",mode=\"user\"} -1"),
                     INGEST_REJECT_BAD_VALUE);
    assert_int_equal(apply(&fx, "no_such_family 1"), INGEST_REJECT_UNKNOWN_FAMILY);
    assert_int_equal(o.calls, 1);
    assert_int_equal(apply(&fx, "rendervisor_child_up{child=\"renderer\"} 1"), INGEST_OK);
    assert_int_equal(o.calls, 2);
    registry_set_observer(fx.reg, NULL, NULL);
    assert_int_equal(apply(&fx, "rendervisor_child_up{child=\"renderer\"} 0"), INGEST_OK);
    assert_int_equal(o.calls, 2);
    fixture_fini(&fx);
}

static void test_get(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 2);
    double v = -1;
    const char *child[] = { "child", "browser-0", NULL };
    assert_int_equal(registry_get(fx.reg, "rendervisor_child_proportional_memory_bytes", child, &v), -ENOENT);
    assert_int_equal(apply(&fx, "rendervisor_child_proportional_memory_bytes{child=\"browser-0\"} 201326592"),
                     INGEST_OK);
    assert_int_equal(registry_get(fx.reg, "rendervisor_child_proportional_memory_bytes", child, &v), 0);
    assert_true(v == 201326592);

    const char *state_labels[] = { "child", "browser-0", "state", "running", NULL };
    assert_int_equal(apply(&fx, "rendervisor_child_state{state=\"running\",child=\"browser-0\"} 1"), INGEST_OK);
    assert_int_equal(registry_get(fx.reg, "rendervisor_child_state", state_labels, &v), 0);
    assert_true(v == 1);
    const char *swapped[] = { "state", "running", "child", "browser-0", NULL };
    assert_int_equal(registry_get(fx.reg, "rendervisor_child_state", swapped, &v), -ENOENT);
    const char *short_labels[] = { "child", "browser-0", NULL };
    assert_int_equal(registry_get(fx.reg, "rendervisor_child_state", short_labels, &v), -ENOENT);
    const char *other[] = { "child", "browser-0", "state", "idle", NULL };
    assert_int_equal(registry_get(fx.reg, "rendervisor_child_state", other, &v), -ENOENT);
    const char *unknown[] = { "child", "browser-9", "state", "running", NULL };
    assert_int_equal(registry_get(fx.reg, "rendervisor_child_state", unknown, &v), -ENOENT);
    /* a trailing NULL key ends the list, as the status page passes them */
    const char *trailing[] = { "child", "browser-0", NULL, NULL, NULL };
    assert_int_equal(registry_get(fx.reg, "rendervisor_child_proportional_memory_bytes", trailing, &v), 0);

    assert_int_equal(registry_get(fx.reg, "grafana_image_renderer_http_request_in_flight", NULL, &v), -ENOENT);
    assert_int_equal(apply(&fx, "grafana_image_renderer_http_request_in_flight 2"), INGEST_OK);
    assert_int_equal(registry_get(fx.reg, "grafana_image_renderer_http_request_in_flight", NULL, &v), 0);
    assert_true(v == 2);
    assert_int_equal(registry_get(fx.reg, "nope", NULL, &v), -ENOENT);
    assert_int_equal(apply(&fx, REQ "{status_code=\"200\"} 1"), INGEST_OK);
    const char *code[] = { "status_code", "200", NULL };
    assert_int_equal(registry_get(fx.reg, REQ, code, &v), -EINVAL);
    /* bounded labels are looked up, never added */
    const char *version[] = { "version", "Chrome/1", NULL };
    assert_int_equal(registry_get(fx.reg, INFO, version, &v), -ENOENT);
    assert_int_equal(apply(&fx, INFO "{version=\"Chrome/1\"} 1"), INGEST_OK);
    assert_int_equal(registry_get(fx.reg, INFO, version, &v), 0);
    assert_true(v == 1);
    fixture_fini(&fx);
}

static void test_label_value(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 2);
    char out[INGEST_MAX_LABEL_VALUE];
    assert_int_equal(registry_label_value(fx.reg, INFO, "version", out, sizeof(out)), -ENOENT);
    assert_int_equal(apply(&fx, INFO "{version=\"A/1\"} 0"), INGEST_OK);
    assert_int_equal(registry_label_value(fx.reg, INFO, "version", out, sizeof(out)), 0);
    assert_string_equal(out, "A/1"); /* none is 1: the first */
    assert_int_equal(apply(&fx, INFO "{version=\"C/3\"} 1"), INGEST_OK);
    assert_int_equal(apply(&fx, INFO "{version=\"B/2\"} 0"), INGEST_OK);
    assert_int_equal(registry_label_value(fx.reg, INFO, "version", out, sizeof(out)), 0);
    assert_string_equal(out, "C/3"); /* the one whose value is 1 */
    assert_int_equal(registry_label_value(fx.reg, INFO, "version", out, 3), -ENOSPC);
    assert_int_equal(registry_label_value(fx.reg, INFO, "nope", out, sizeof(out)), -ENOENT);
    assert_int_equal(registry_label_value(fx.reg, "nope", "version", out, sizeof(out)), -ENOENT);
    assert_int_equal(apply(&fx, "rendervisor_child_state{child=\"renderer\",state=\"backoff\"} 1"), INGEST_OK);
    assert_int_equal(registry_label_value(fx.reg, "rendervisor_child_state", "state", out, sizeof(out)), 0);
    assert_string_equal(out, "backoff");
    fixture_fini(&fx);
}

static void test_escaping(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 2);
    /* \ and " are escaped on the way out as they were on the way in */
    assert_int_equal(apply(&fx, INFO "{version=\"a\\\\b \\\"q\\\"\"} 1"), INGEST_OK);
    assert_family(&fx, INFO, "# TYPE " INFO " gauge\n" INFO "{version=\"a\\\\b \\\"q\\\"\"} 1\n");

    buf_reset(&fx.out);
    registry_escape_label_value(&fx.out, "x\\y\"z\nw");
    assert_string_equal(fx.out.data, "x\\\\y\\\"z\\nw");
    buf_reset(&fx.out);
    registry_escape_label_value(&fx.out, "");
    assert_string_equal(fx.out.data, "");
    buf_reset(&fx.out);
    registry_escape_help(&fx.out, "x\\y\"z\nw");
    assert_string_equal(fx.out.data, "x\\\\y\"z\\nw");
    fixture_fini(&fx);
}

/* A realistic scrape: every family with series, as the supervisor and the
 * renderer send them through ingest_buf_line(). */
static void fill_realistic(struct fixture *fx)
{
    struct ingest_buf b;
    ingest_buf_init(&b);
    static const char *const children[] = { "exporter", "browser-0", "browser-1", "renderer" };
    static const char *const states[] = { "idle", "running", "stopping", "backoff", "stopped" };
    static const char *const reasons[] = { "exit", "signal", "memory_limit", "unhealthy", "requested" };
    static const char *const gauges[] = {
        "rendervisor_child_up", "rendervisor_child_processes", "rendervisor_child_resident_memory_bytes",
        "rendervisor_child_proportional_memory_bytes", "rendervisor_child_virtual_memory_bytes",
        "rendervisor_child_open_fds", "rendervisor_child_max_fds", "rendervisor_child_memory_limit_bytes",
        "rendervisor_child_start_time_seconds",
    };
    for (size_t c = 0; c < 4; c++) {
        ingest_buf_reset(&b);
        for (size_t g = 0; g < sizeof(gauges) / sizeof(gauges[0]); g++) {
            const char *l[] = { "child", children[c], NULL };
            assert_int_equal(ingest_buf_line(&b, gauges[g], l, g == 8 ? 1795644325.5 : 1000.0 * (double)(g + c)), 0);
        }
        for (size_t s = 0; s < 5; s++) {
            const char *l[] = { "child", children[c], "state", states[s], NULL };
            assert_int_equal(ingest_buf_line(&b, "rendervisor_child_state", l, s == 1), 0);
        }
        for (size_t r = 0; r < 5; r++) {
            const char *l[] = { "child", children[c], "reason", reasons[r], NULL };
            assert_int_equal(ingest_buf_line(&b, "rendervisor_child_restarts_total", l, (double)r), 0);
        }
        const char *u[] = { "child", children[c], "mode", "user", NULL };
        const char *s[] = { "child", children[c], "mode", "system", NULL };
        assert_int_equal(ingest_buf_line(&b, "rendervisor_child_cpu_seconds_total", u, 12.37 + (double)c), 0);
        assert_int_equal(ingest_buf_line(&b, "rendervisor_child_cpu_seconds_total", s, 1.0 / 3), 0);
        const char *d[] = { "sender", "supervisor", NULL };
        assert_int_equal(ingest_buf_line(&b, "rendervisor_ingest_dropped_total", d, 2), 0);
        /* the datagram's lines, as the intake splits them */
        for (const char *p = b.data; p < b.data + b.len;) {
            const char *nl = memchr(p, '\n', (size_t)(b.data + b.len - p));
            assert_non_null(nl);
            struct ingest_sample smp;
            enum ingest_reject r = ingest_parse_line(p, (size_t)(nl - p), &smp);
            if (r == INGEST_OK)
                r = registry_apply(fx->reg, &smp);
            assert_int_equal(r, INGEST_OK);
            registry_count(fx->reg, r);
            p = nl + 1;
        }
    }
    static const char *const steps[] = { "launch", "newPage", "prepare", "navigate", "panelsRendered", "screenshot" };
    for (size_t i = 0; i < 6; i++) {
        char line[160];
        snprintf(line, sizeof(line), STEP "{step=\"%s\"} %g", steps[i], 0.0123 * (double)(i + 1));
        assert_int_equal(apply(fx, line), INGEST_OK);
    }
    assert_int_equal(apply(fx, REQ "{status_code=\"200\"} 1.734"), INGEST_OK);
    assert_int_equal(apply(fx, REQ "{status_code=\"499\"} 0.2"), INGEST_OK);
    assert_int_equal(apply(fx, "grafana_image_renderer_http_request_in_flight 1"), INGEST_OK);
    assert_int_equal(apply(fx, INFO "{version=\"HeadlessChrome/156.0.8078.108\"} 1"), INGEST_OK);
    /* memory admission: 5 plain gauges, 3 bounds, 2 waits, 2 counters */
    assert_int_equal(apply(fx, NAMES_FAMILY_MEM_BUDGET " 734003200"), INGEST_OK);
    assert_int_equal(apply(fx, NAMES_FAMILY_MEM_USED " 432013312"), INGEST_OK);
    assert_int_equal(apply(fx, NAMES_FAMILY_MEM_AVAILABLE " 301989888"), INGEST_OK);
    assert_int_equal(apply(fx, NAMES_FAMILY_MEM_RESERVED " 157286400"), INGEST_OK);
    assert_int_equal(apply(fx, NAMES_FAMILY_MEM_ESTIMATE " 125829120"), INGEST_OK);
    for (int i = 0; names_bounds[i]; i++) {
        /* as the renderer writes them */
        const char *l[] = { "by", names_bounds[i], NULL };
        ingest_buf_reset(&b);
        assert_int_equal(ingest_buf_line(&b, NAMES_FAMILY_MEM_BOUND, l, i == NAMES_BOUND_HOST), 0);
        struct ingest_sample smp;
        assert_int_equal(ingest_parse_line(b.data, b.len - 1, &smp), INGEST_OK);
        assert_int_equal(registry_apply(fx->reg, &smp), INGEST_OK);
    }
    for (int i = 0; names_waits[i]; i++) {
        char line[160];
        snprintf(line, sizeof(line), NAMES_FAMILY_QUEUED "{waiting_for=\"%s\"} %d", names_waits[i], i + 1);
        assert_int_equal(apply(fx, line), INGEST_OK);
    }
    assert_int_equal(apply(fx, NAMES_FAMILY_MEM_WAITS " 40"), INGEST_OK);
    assert_int_equal(apply(fx, NAMES_FAMILY_MEM_RETRIES " 1"), INGEST_OK);
    registry_count(fx->reg, INGEST_REJECT_PARSE);
    ingest_buf_fini(&b);
}

/* Every sample line the registry writes reads back through the ingest
 * parser: names and labels are well formed, values are finite and exact. */
static void test_output_reads_back(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 2);
    fill_realistic(&fx);
    const char *all = render(&fx);
    size_t samples = 0;
    for (const char *p = all; *p;) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        if (*p != '#') {
            struct ingest_sample s;
            assert_int_equal(ingest_parse_line(p, (size_t)(nl - p), &s), INGEST_OK);
            samples++;
        }
        p = nl + 1;
    }
    /* 4 children x (9 + 5 + 5 + 2), dropped 1, lines 2, rejected 8,
     * 6 steps x (11 + 1 + 2), 2 codes x (3 + 1 + 2), in flight 1, info 1,
     * memory 5 + 3 + 2 + 2 */
    assert_int_equal(samples, 4 * 21 + 1 + 2 + 8 + 6 * 14 + 2 * 6 + 1 + 1 + 12);
    const char *labels[] = { "child", "browser-1", "mode", "system", NULL };
    double v;
    assert_int_equal(registry_get(fx.reg, "rendervisor_child_cpu_seconds_total", labels, &v), 0);
    assert_true(v == 1.0 / 3);
    fixture_fini(&fx);
}

/* promtool, Prometheus's own checker, has nothing to say about the output. */
static void test_promtool(void **state)
{
    (void)state;
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        print_message("promtool is not installed (Debian: prometheus)\n");
        skip();
    }
    struct fixture fx;
    fixture_init(&fx, 2);
    fill_realistic(&fx);
    const char *all = render(&fx);
    char path[] = "/tmp/rv-test-registry-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, all, strlen(all)), (ssize_t)strlen(all));
    close(fd);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char said[4096];
    size_t n = fread(said, 1, sizeof(said) - 1, p);
    said[n] = '\0';
    int status = pclose(p);
    unlink(path);
    assert_string_equal(said, "");
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    fixture_fini(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_families),
        cmocka_unit_test(test_fresh_registry),
        cmocka_unit_test(test_gauges_and_counters),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_memory_admission),
        cmocka_unit_test(test_le_format),
        cmocka_unit_test(test_unknown_family),
        cmocka_unit_test(test_unknown_label),
        cmocka_unit_test(test_children_from_config),
        cmocka_unit_test(test_cardinality),
        cmocka_unit_test(test_refused_changes_nothing),
        cmocka_unit_test(test_own_counters),
        cmocka_unit_test(test_intake_lines_per_datagram),
        cmocka_unit_test(test_intake_senders),
        cmocka_unit_test(test_observer),
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_label_value),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_output_reads_back),
        cmocka_unit_test(test_promtool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
