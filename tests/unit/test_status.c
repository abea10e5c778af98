/* The status page and /status.json: built from a registry and a history fed
 * real ingest lines, the JSON read back with jansson. Checks the figures,
 * the texts both carry (the same in each), the charts, the escaping of
 * what came from the ingest socket, and ?refresh=. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "status.h"

#define T0 10000.0     /* monotonic seconds at the first report */
#define WALL 1.7e9     /* unix time "now" */

struct fixture {
    struct config *cfg;
    struct registry *reg;
    struct history *h;
    struct buf out;
    json_t *json;
};

static void fixture_init(struct fixture *fx)
{
    fx->cfg = config_load_default();
    assert_non_null(fx->cfg);
    fx->cfg->browsers.count = 2;
    fx->reg = registry_new(fx->cfg);
    fx->h = history_new(fx->cfg);
    buf_init(&fx->out);
    fx->json = NULL;
}

static void fixture_fini(struct fixture *fx)
{
    json_decref(fx->json);
    buf_fini(&fx->out);
    history_free(fx->h);
    registry_free(fx->reg);
    config_free(fx->cfg);
}

/* One ingest line into the registry and, as the exporter does, the history. */
static void feed(struct fixture *fx, double t, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void feed(struct fixture *fx, double t, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    struct ingest_sample s;
    assert_int_equal(ingest_parse_line(line, strlen(line), &s), INGEST_OK);
    assert_int_equal(registry_apply(fx->reg, &s), INGEST_OK);
    history_note(fx->h, &s, t);
}

/* What the supervisor reports of a running child. */
static void report(struct fixture *fx, double t, const char *child, const char *state, double pss, double limit,
                   double cpu, double start, int signal_restarts)
{
    feed(fx, t, "rendervisor_child_up{child=\"%s\"} %d", child, strcmp(state, "running") == 0);
    static const char *const states[] = { "idle", "running", "stopping", "backoff", "stopped" };
    for (size_t i = 0; i < 5; i++)
        feed(fx, t, "rendervisor_child_state{child=\"%s\",state=\"%s\"} %d", child, states[i],
             strcmp(states[i], state) == 0);
    feed(fx, t, "rendervisor_child_proportional_memory_bytes{child=\"%s\"} %.0f", child, pss);
    feed(fx, t, "rendervisor_child_resident_memory_bytes{child=\"%s\"} %.0f", child, 2 * pss);
    feed(fx, t, "rendervisor_child_memory_limit_bytes{child=\"%s\"} %.0f", child, limit);
    feed(fx, t, "rendervisor_child_processes{child=\"%s\"} 3", child);
    feed(fx, t, "rendervisor_child_cpu_seconds_total{child=\"%s\",mode=\"user\"} %f", child, cpu);
    feed(fx, t, "rendervisor_child_cpu_seconds_total{child=\"%s\",mode=\"system\"} 0", child);
    feed(fx, t, "rendervisor_child_start_time_seconds{child=\"%s\"} %.0f", child, start);
    static const char *const reasons[] = { "exit", "signal", "memory_limit", "unhealthy", "requested" };
    for (size_t i = 0; i < 5; i++)
        feed(fx, t, "rendervisor_child_restarts_total{child=\"%s\",reason=\"%s\"} %d", child, reasons[i],
             strcmp(reasons[i], "signal") == 0 ? signal_restarts : strcmp(reasons[i], "exit") == 0 ? 1 : 0);
}

static const char *html(struct fixture *fx, unsigned refresh, double mono)
{
    struct status_input in = { fx->reg, fx->h, WALL, mono };
    buf_reset(&fx->out);
    status_html(&in, refresh, &fx->out);
    assert_non_null(fx->out.data);
    return fx->out.data;
}

static json_t *json(struct fixture *fx, double mono)
{
    struct status_input in = { fx->reg, fx->h, WALL, mono };
    buf_reset(&fx->out);
    status_json(&in, &fx->out);
    json_error_t err;
    json_decref(fx->json);
    fx->json = json_loads(fx->out.data, 0, &err);
    if (!fx->json)
        print_message("not JSON (%s at %d): %s\n", err.text, err.position, fx->out.data);
    assert_non_null(fx->json);
    return fx->json;
}

static json_t *child(json_t *j, size_t i)
{
    json_t *c = json_array_get(json_object_get(j, "children"), i);
    assert_non_null(c);
    return c;
}

static const char *cell(json_t *c, const char *key)
{
    const char *s = json_string_value(json_object_get(json_object_get(json_object_get(c, "view"), "cells"), key));
    assert_non_null(s);
    return s;
}

static void assert_contains(const char *hay, const char *needle)
{
    assert_non_null(hay);
    assert_non_null(needle);
    if (!strstr(hay, needle)) {
        print_message("missing: %s\nin: %s\n", needle ? needle : "", hay ? hay : "");
        fail();
    }
}

static void test_refresh(void **state)
{
    (void)state;
    unsigned r = 99;
    assert_int_equal(status_parse_refresh("0", &r), 0);
    assert_int_equal(r, 0);
    assert_int_equal(status_parse_refresh("3", &r), 0);
    assert_int_equal(r, 3);
    assert_int_equal(status_parse_refresh("3600", &r), 0);
    assert_int_equal(r, 3600);
    static const char *const bad[] = { "", "3601", "-1", "+2", "2.5", " 2", "2s", "abc", "99999", "0x10" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = 7;
        assert_int_equal(status_parse_refresh(bad[i], &r), -EINVAL);
        assert_int_equal(r, 7);
    }
    assert_int_equal(status_parse_refresh(NULL, &r), -EINVAL);
}

static void test_escaping(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    status_html_escape(&b, "a<b>&\"c'd\xc3\xa9");
    assert_string_equal(b.data, "a&lt;b&gt;&amp;&quot;c&#39;d\xc3\xa9");
    buf_reset(&b);
    status_json_string(&b, "q\"b\\n\n\t\x01<x>&\x7f\xc3\xa9");
    assert_string_equal(b.data, "\"q\\\"b\\\\n\\n\\u0009\\u0001\\u003cx\\u003e\\u0026\\u007f\xc3\xa9\"");
    /* and jansson reads back the very text */
    json_error_t err;
    json_t *j = json_loads(b.data, JSON_DECODE_ANY, &err);
    assert_non_null(j);
    assert_string_equal(json_string_value(j), "q\"b\\n\n\t\x01<x>&\x7f\xc3\xa9");
    json_decref(j);
    buf_reset(&b);
    status_json_string(&b, "");
    assert_string_equal(b.data, "\"\"");
    buf_fini(&b);
}

/* Nothing reported yet: every child listed, every figure unknown. */
static void test_no_reports(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx);
    json_t *j = json(&fx, T0);
    json_t *children = json_object_get(j, "children");
    assert_int_equal(json_array_size(children), 4);
    static const char *const names[] = { "exporter", "browser-0", "browser-1", "renderer" };
    for (size_t i = 0; i < 4; i++) {
        json_t *c = child(j, i);
        assert_string_equal(json_string_value(json_object_get(c, "name")), names[i]);
        assert_true(json_is_null(json_object_get(c, "up")));
        assert_true(json_is_null(json_object_get(c, "state")));
        assert_true(json_is_null(json_object_get(c, "restarts")));
        assert_true(json_is_null(json_object_get(c, "pss_bytes")));
        assert_true(json_is_null(json_object_get(c, "cpu_cores")));
        assert_string_equal(json_string_value(json_object_get(json_object_get(c, "view"), "class")), "none");
        assert_string_equal(cell(c, "state"), "no report");
        assert_string_equal(cell(c, "restarts"), "\xe2\x80\x93");
        assert_string_equal(json_string_value(json_object_get(
                                json_object_get(json_object_get(c, "view"), "chart"), "pss")), "");
    }
    assert_true(json_is_null(json_object_get(j, "browser")));
    json_t *lat = json_object_get(j, "latency");
    assert_int_equal(json_integer_value(json_object_get(lat, "count")), 0);
    assert_true(json_is_null(json_object_get(lat, "p50_seconds")));
    assert_contains(cell(lat, "latency"), "no render requests");

    const char *page = html(&fx, 2, T0);
    assert_contains(page, "<html lang=en data-refresh=2>");
    assert_contains(page, "<main class=panel-solo>");
    assert_contains(page, "<tr data-child=\"browser-1\" class=none>");
    assert_contains(page, "<span data-cell=state>no report</span>");
    assert_contains(page, "browser: <span data-cell=browser>not reported yet</span>");
    fixture_fini(&fx);
}

static void test_children(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx);
    const double mib = 1 << 20, gib = 1 << 30;
    /* a minute of reports, one a second; browser-0 grows to 512 MiB of its
     * 1 GiB and uses a quarter of a core */
    for (int s = 0; s <= 60; s++) {
        double t = T0 + s;
        report(&fx, t, "exporter", "running", 10 * mib, 64 * mib, 0.01 * s, WALL - 3725, 0);
        report(&fx, t, "browser-0", "running", (256 + 256 * s / 60) * mib, gib, 0.25 * s, WALL - 65, 2);
        report(&fx, t, "browser-1", "backoff", 0, gib, 5, WALL - 100, 3);
    }
    feed(&fx, T0 + 60, "grafana_image_renderer_browser_info{version=\"Headless</td><script>alert('x')</script>\"} 1");
    json_t *j = json(&fx, T0 + 60);

    json_t *b0 = child(j, 1);
    assert_string_equal(json_string_value(json_object_get(b0, "name")), "browser-0");
    assert_true(json_is_true(json_object_get(b0, "up")));
    assert_string_equal(json_string_value(json_object_get(b0, "state")), "running");
    assert_true(json_number_value(json_object_get(b0, "uptime_seconds")) == 65);
    assert_true(json_number_value(json_object_get(b0, "restarts")) == 3);
    assert_true(json_number_value(json_object_get(json_object_get(b0, "restarts_by_reason"), "signal")) == 2);
    assert_true(json_number_value(json_object_get(b0, "pss_bytes")) == 512 * mib);
    assert_true(json_number_value(json_object_get(b0, "memory_limit_bytes")) == gib);
    assert_true(fabs(json_number_value(json_object_get(b0, "cpu_cores")) - 0.25) < 1e-6);
    assert_string_equal(json_string_value(json_object_get(json_object_get(b0, "view"), "class")), "up");
    assert_string_equal(cell(b0, "state"), "running");
    assert_string_equal(cell(b0, "uptime"), "1m 05s");
    assert_string_equal(cell(b0, "restarts"), "3");
    assert_string_equal(cell(b0, "restarts_detail"), "exit 1, signal 2");
    assert_string_equal(cell(b0, "cpu"), "25.0%");
    assert_string_equal(cell(b0, "memory"), "512.0 MiB / 1.00 GiB");
    assert_string_equal(cell(b0, "memory_detail"), "50% \xc2\xb7 RSS 1.00 GiB \xc2\xb7 3 proc");
    /* the chart: 13 steps of 5 s with reports, the last (60 s) on the right;
     * the limit at the top, 2 units below the edge (on the middle of the
     * pixel row below) */
    json_t *chart = json_object_get(json_object_get(b0, "view"), "chart");
    assert_true(json_number_value(json_object_get(chart, "limit_y")) == 2.5);
    const char *d = json_string_value(json_object_get(chart, "pss"));
    assert_non_null(d);
    char start[32];
    snprintf(start, sizeof(start), "M%d,40V", STATUS_MEM_WIDTH - 2 * 13);
    assert_memory_equal(d, start, strlen(start));
    /* 512 of 1024 MiB: halfway up the 38 units */
    char end[32];
    snprintf(end, sizeof(end), "V21H%dV40Z", STATUS_MEM_WIDTH);
    assert_true(strlen(d) > strlen(end));
    assert_string_equal(d + strlen(d) - strlen(end), end);

    json_t *e = child(j, 0);
    assert_string_equal(cell(e, "uptime"), "1h 02m");
    assert_string_equal(cell(e, "restarts"), "1");
    assert_string_equal(cell(e, "restarts_detail"), "exit 1");
    assert_string_equal(cell(e, "memory"), "10.0 MiB / 64.0 MiB");

    json_t *b1 = child(j, 2);
    assert_true(json_is_false(json_object_get(b1, "up")));
    assert_true(json_is_null(json_object_get(b1, "uptime_seconds")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(b1, "view"), "class")), "warn");
    assert_string_equal(cell(b1, "state"), "backoff");
    assert_string_equal(cell(b1, "restarts"), "4");
    assert_string_equal(cell(b1, "cpu"), "0.0%");

    /* reported by nobody yet */
    assert_string_equal(json_string_value(json_object_get(json_object_get(child(j, 3), "view"), "class")), "none");

    /* what came from the ingest socket reaches JSON intact, and HTML escaped */
    assert_string_equal(json_string_value(json_object_get(j, "browser")), "Headless</td><script>alert('x')</script>");
    assert_null(strstr(fx.out.data, "<script>"));
    const char *page = html(&fx, 0, T0 + 60);
    assert_null(strstr(page, "<script>alert"));
    assert_contains(page, "<span data-cell=browser>Headless&lt;/td&gt;&lt;script&gt;alert(&#39;x&#39;)"
                          "&lt;/script&gt;</span>");
    assert_contains(page, "<html lang=en data-refresh=0>");
    assert_contains(page, "not updated (refresh=0)");

    /* the page shows the very texts of the JSON */
    assert_contains(page, "<tr data-child=\"browser-0\" class=up><td class=name><i class=swatch></i>browser-0</td>");
    assert_contains(page, "<b data-cell=restarts>3</b><small data-cell=restarts_detail>exit 1, signal 2</small>");
    assert_contains(page, "<span data-cell=uptime>1m 05s</span>");
    assert_contains(page, "<span data-cell=memory>512.0 MiB / 1.00 GiB</span>");
    assert_contains(page, "<tr data-child=\"browser-1\" class=warn>");
    char path[4096];
    snprintf(path, sizeof(path), "<path class=pss data-chart=pss d=\"%s\"></path>", d);
    assert_contains(page, path);
    assert_contains(page, "<line class=\"limit\" data-limit x1=0 x2=240 y1=2.5 y2=2.5></line>");
    assert_contains(page, "<th class=c-chart>PSS, last 10 min</th>");
    fixture_fini(&fx);
}

static void test_no_limit_and_gaps(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx);
    /* renderer without a limit: the chart's top is 1.25 times its highest */
    feed(&fx, T0, "rendervisor_child_memory_limit_bytes{child=\"renderer\"} 0");
    feed(&fx, T0, "rendervisor_child_proportional_memory_bytes{child=\"renderer\"} 800");
    feed(&fx, T0 + 20, "rendervisor_child_proportional_memory_bytes{child=\"renderer\"} 400");
    json_t *j = json(&fx, T0 + 20);
    json_t *r = child(j, 3);
    json_t *chart = json_object_get(json_object_get(r, "view"), "chart");
    assert_true(json_is_null(json_object_get(chart, "limit_y")));
    /* two runs with a gap of three steps between: 800 of 1000 -> y 9.6,
     * 400 -> y 24.8 */
    char want[128];
    snprintf(want, sizeof(want), "M%d,40V9.6H%dV40ZM%d,40V24.8H%dV40Z", STATUS_MEM_WIDTH - 10, STATUS_MEM_WIDTH - 8,
             STATUS_MEM_WIDTH - 2, STATUS_MEM_WIDTH);
    assert_string_equal(json_string_value(json_object_get(chart, "pss")), want);
    assert_string_equal(cell(r, "memory"), "0.0 MiB / no limit");
    /* a level that lasts is drawn once: the exporter at 100 for three
     * steps, then 50 */
    for (int k = 1; k <= 3; k++)
        feed(&fx, T0 + 5 * k, "rendervisor_child_proportional_memory_bytes{child=\"exporter\"} 100");
    feed(&fx, T0 + 20, "rendervisor_child_proportional_memory_bytes{child=\"exporter\"} 50");
    j = json(&fx, T0 + 20);
    chart = json_object_get(json_object_get(child(j, 0), "view"), "chart");
    snprintf(want, sizeof(want), "M%d,40V9.6H%dV24.8H%dV40Z", STATUS_MEM_WIDTH - 8, STATUS_MEM_WIDTH - 2,
             STATUS_MEM_WIDTH);
    assert_string_equal(json_string_value(json_object_get(chart, "pss")), want);
    const char *page = html(&fx, 5, T0 + 20);
    assert_contains(page, "<line class=\"limit none\" data-limit");
    assert_contains(page, "updated every 5 s");
    fixture_fini(&fx);
}

static void test_latency(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx);
    /* 0.1 .. 1.0 s, then one 500 of 3 s and a 429 */
    for (int i = 1; i <= 10; i++)
        feed(&fx, T0 + i, "grafana_image_renderer_service_http_request_duration_seconds{status_code=\"200\"} %.1f",
             i / 10.0);
    feed(&fx, T0 + 11, "grafana_image_renderer_service_http_request_duration_seconds{status_code=\"500\"} 3");
    feed(&fx, T0 + 12, "grafana_image_renderer_service_http_request_duration_seconds{status_code=\"429\"} 0.001");
    feed(&fx, T0 + 12, "grafana_image_renderer_http_request_in_flight 2");
    json_t *j = json(&fx, T0 + 12);
    json_t *lat = json_object_get(j, "latency");
    assert_int_equal(json_integer_value(json_object_get(lat, "count")), 12);
    assert_true(json_number_value(json_object_get(lat, "in_flight")) == 2);
    /* nearest rank of 0.001 0.1 .. 1.0 3: 6th, 11th, 12th */
    assert_true(fabs(json_number_value(json_object_get(lat, "p50_seconds")) - 0.5) < 1e-9);
    assert_true(fabs(json_number_value(json_object_get(lat, "p90_seconds")) - 1.0) < 1e-9);
    assert_true(json_number_value(json_object_get(lat, "p99_seconds")) == 3);
    json_t *recent = json_object_get(lat, "recent");
    assert_int_equal(json_array_size(recent), 12);
    assert_true(json_number_value(json_array_get(json_array_get(recent, 10), 0)) == 3);
    assert_int_equal(json_integer_value(json_array_get(json_array_get(recent, 10), 1)), 500);
    assert_string_equal(cell(lat, "latency"), "p50 500 ms \xc2\xb7 p90 1.00 s \xc2\xb7 p99 3.00 s");
    assert_string_equal(cell(lat, "latency_detail"),
                        "12 requests in 10 min \xc2\xb7 2 in flight \xc2\xb7 chart top 5.00 s");
    /* one bar each, newest on the right: the 500 second from the right (red),
     * the 429 at the right (orange), the rest ok */
    json_t *chart = json_object_get(json_object_get(lat, "view"), "chart");
    char want[64];
    snprintf(want, sizeof(want), "M%d,40V17.2h3V40Z", STATUS_LAT_WIDTH - 8);
    assert_string_equal(json_string_value(json_object_get(chart, "server")), want);
    snprintf(want, sizeof(want), "M%d,40V39h3V40Z", STATUS_LAT_WIDTH - 4);
    assert_string_equal(json_string_value(json_object_get(chart, "client")), want);
    const char *ok = json_string_value(json_object_get(chart, "ok"));
    snprintf(want, sizeof(want), "M%d,40V", STATUS_LAT_WIDTH - 48);
    assert_memory_equal(ok, want, strlen(want));
    size_t bars = 0;
    for (const char *p = ok; (p = strchr(p, 'M')); p++)
        bars++;
    assert_int_equal(bars, 10);
    const char *page = html(&fx, 2, T0 + 12);
    snprintf(want, sizeof(want), "M%d,40V17.2h3V40Z", STATUS_LAT_WIDTH - 8);
    assert_contains(page, want);
    assert_contains(page, "<span data-cell=latency>p50 500 ms");
    fixture_fini(&fx);
}

/* The memory part: absent until the renderer reports its budget, then the
 * figures, the texts (the same in the page and the JSON) and the bar. */
static void test_memory(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx);
    /* figures without the budget do not show the part */
    feed(&fx, T0, "rendervisor_renderer_memory_available_bytes 301989888");
    feed(&fx, T0, "rendervisor_renderer_queued_renders{waiting_for=\"memory\"} 2");
    json_t *j = json(&fx, T0);
    assert_true(json_is_null(json_object_get(j, "memory")));
    const char *page = html(&fx, 2, T0);
    assert_null(strstr(page, "id=memory"));
    assert_null(strstr(page, "Memory"));

    feed(&fx, T0, "rendervisor_renderer_memory_budget_bytes 734003200"); /* 700 MiB */
    feed(&fx, T0, "rendervisor_renderer_memory_used_bytes 432013312");   /* 412 MiB */
    feed(&fx, T0, "rendervisor_renderer_memory_available_bytes 301989888");
    feed(&fx, T0, "rendervisor_renderer_memory_reserved_bytes 157286400"); /* 150 MiB */
    feed(&fx, T0, "rendervisor_renderer_render_memory_estimate_bytes 125829120"); /* 120 MiB */
    feed(&fx, T0, "rendervisor_renderer_memory_bound{by=\"host\"} 0");
    feed(&fx, T0, "rendervisor_renderer_memory_bound{by=\"cgroup\"} 1");
    feed(&fx, T0, "rendervisor_renderer_memory_bound{by=\"config\"} 0");
    feed(&fx, T0, "rendervisor_renderer_queued_renders{waiting_for=\"browser\"} 1");
    feed(&fx, T0, "rendervisor_renderer_memory_waits_total 17");
    feed(&fx, T0, "rendervisor_renderer_memory_retries_total 3");
    j = json(&fx, T0);
    json_t *m = json_object_get(j, "memory");
    assert_true(json_is_object(m));
    assert_true(json_number_value(json_object_get(m, "budget_bytes")) == 734003200);
    assert_true(json_number_value(json_object_get(m, "used_bytes")) == 432013312);
    assert_true(json_number_value(json_object_get(m, "reserved_bytes")) == 157286400);
    assert_true(json_number_value(json_object_get(m, "available_bytes")) == 301989888);
    assert_true(json_number_value(json_object_get(m, "render_estimate_bytes")) == 125829120);
    assert_string_equal(json_string_value(json_object_get(m, "bound")), "cgroup");
    json_t *q = json_object_get(m, "queued");
    assert_true(json_number_value(json_object_get(q, "memory")) == 2);
    assert_true(json_number_value(json_object_get(q, "browser")) == 1);
    assert_true(json_number_value(json_object_get(m, "waits_total")) == 17);
    assert_true(json_number_value(json_object_get(m, "retries_total")) == 3);
    json_t *view = json_object_get(m, "view");
    assert_string_equal(json_string_value(json_object_get(view, "class")), "warn");
    assert_string_equal(cell(m, "memory"),
                        "used 412 MiB of 700 MiB (cgroup) \xc2\xb7 150 MiB reserved \xc2\xb7 2 waiting for memory");
    assert_string_equal(cell(m, "memory_detail"),
                        "288 MiB available \xc2\xb7 about 120 MiB a render \xc2\xb7 1 waiting for a browser "
                        "\xc2\xb7 17 waited for memory \xc2\xb7 3 retried");
    /* the bar is the budget: used 412/700 of 512 units, then reserved */
    json_t *chart = json_object_get(view, "chart");
    assert_string_equal(json_string_value(json_object_get(chart, "used")), "M0,0H301V12H0Z");
    assert_string_equal(json_string_value(json_object_get(chart, "reserved")), "M301,0H411V12H301Z");
    page = html(&fx, 2, T0);
    assert_contains(page, "<section id=memory class=warn><h2>Memory</h2><p><span data-cell=memory>used 412 MiB of "
                          "700 MiB (cgroup) \xc2\xb7 150 MiB reserved \xc2\xb7 2 waiting for memory</span>");
    assert_contains(page, "<small data-cell=memory_detail>288 MiB available \xc2\xb7 about 120 MiB a render");
    assert_contains(page, "<path class=used data-chart=used d=\"M0,0H301V12H0Z\"></path>");
    assert_contains(page, "<path class=reserved data-chart=reserved d=\"M301,0H411V12H301Z\"></path>");
    /* after the latency part, before the browser line */
    assert_true(strstr(page, "id=latency") < strstr(page, "id=memory"));
    assert_true(strstr(page, "id=memory") < strstr(page, "id=meta"));

    /* nothing waits for memory; the host binds; over the budget the bar
     * ends at its edge and nothing is left for reserved; GiB from 1 GiB */
    feed(&fx, T0, "rendervisor_renderer_queued_renders{waiting_for=\"memory\"} 0");
    feed(&fx, T0, "rendervisor_renderer_memory_bound{by=\"cgroup\"} 0");
    feed(&fx, T0, "rendervisor_renderer_memory_bound{by=\"host\"} 1");
    feed(&fx, T0, "rendervisor_renderer_memory_budget_bytes 2147483648");
    feed(&fx, T0, "rendervisor_renderer_memory_used_bytes 3221225472");
    j = json(&fx, T0);
    m = json_object_get(j, "memory");
    view = json_object_get(m, "view");
    assert_string_equal(json_string_value(json_object_get(view, "class")), "ok");
    assert_string_equal(json_string_value(json_object_get(m, "bound")), "host");
    assert_string_equal(cell(m, "memory"),
                        "used 3.00 GiB of 2.00 GiB (host) \xc2\xb7 150 MiB reserved \xc2\xb7 0 waiting for memory");
    chart = json_object_get(view, "chart");
    assert_string_equal(json_string_value(json_object_get(chart, "used")), "M0,0H512V12H0Z");
    assert_string_equal(json_string_value(json_object_get(chart, "reserved")), "");
    fixture_fini(&fx);

    /* the budget alone: the rest shown as not reported, no bound named */
    fixture_init(&fx);
    feed(&fx, T0, "rendervisor_renderer_memory_budget_bytes 734003200");
    j = json(&fx, T0);
    m = json_object_get(j, "memory");
    assert_true(json_is_null(json_object_get(m, "used_bytes")));
    assert_true(json_is_null(json_object_get(m, "bound")));
    assert_true(json_is_null(json_object_get(json_object_get(m, "queued"), "memory")));
    assert_string_equal(cell(m, "memory"), "used \xe2\x80\x93 of 700 MiB \xc2\xb7 \xe2\x80\x93 reserved \xc2\xb7 "
                                           "\xe2\x80\x93 waiting for memory");
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(m, "view"), "chart"),
                                                          "used")), "");
    fixture_fini(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refresh),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_no_reports),
        cmocka_unit_test(test_children),
        cmocka_unit_test(test_no_limit_and_gaps),
        cmocka_unit_test(test_latency),
        cmocka_unit_test(test_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
