/* The status page's history: which lines it keeps, PSS maxima per step and
 * the gaps between them, the ring's wrap, CPU rates across counter resets,
 * and the last render durations within their window. Time is given, so
 * every case is exact. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "history.h"

#define PSS "rendervisor_child_proportional_memory_bytes"
#define CPU "rendervisor_child_cpu_seconds_total"
#define REQ "grafana_image_renderer_service_http_request_duration_seconds"

struct fixture {
    struct config *cfg;
    struct history *h;
};

static void fixture_init(struct fixture *fx, unsigned browsers, int64_t sample_ns)
{
    fx->cfg = config_load_default();
    assert_non_null(fx->cfg);
    fx->cfg->browsers.count = browsers;
    fx->cfg->supervisor.sample_interval_ns = sample_ns;
    fx->h = history_new(fx->cfg);
    assert_non_null(fx->h);
}

static void fixture_fini(struct fixture *fx)
{
    history_free(fx->h);
    config_free(fx->cfg);
}

static void note(struct fixture *fx, const char *line, double t)
{
    struct ingest_sample s;
    assert_int_equal(ingest_parse_line(line, strlen(line), &s), INGEST_OK);
    history_note(fx->h, &s, t);
}

static void note_pss(struct fixture *fx, const char *child, double bytes, double t)
{
    char line[256];
    snprintf(line, sizeof(line), PSS "{child=\"%s\"} %.0f", child, bytes);
    note(fx, line, t);
}

static void note_cpu(struct fixture *fx, const char *child, double user, double sys, double t)
{
    char line[256];
    snprintf(line, sizeof(line), CPU "{child=\"%s\",mode=\"user\"} %.6f", child, user);
    note(fx, line, t);
    snprintf(line, sizeof(line), CPU "{child=\"%s\",mode=\"system\"} %.6f", child, sys);
    note(fx, line, t);
}

static void test_children_and_step(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 3, 1000000000);
    assert_int_equal(history_children(fx.h), 5);
    assert_string_equal(history_child(fx.h, 0), "exporter");
    assert_string_equal(history_child(fx.h, 1), "browser-0");
    assert_string_equal(history_child(fx.h, 3), "browser-2");
    assert_string_equal(history_child(fx.h, 4), "renderer");
    assert_null(history_child(fx.h, 5));
    /* a step is 5 s, or sample_interval when longer */
    assert_true(history_step(fx.h) == 5.0);
    fixture_fini(&fx);
    fixture_init(&fx, 0, 30LL * 1000000000);
    assert_int_equal(history_children(fx.h), 2);
    assert_string_equal(history_child(fx.h, 1), "renderer");
    assert_true(history_step(fx.h) == 30.0);
    fixture_fini(&fx);
}

static void test_pss_max_per_step_with_gaps(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 2, 1000000000);
    double out[HISTORY_SLOTS];
    /* steps of 5 s: 1000 s is step 200 */
    note_pss(&fx, "browser-1", 100, 1000.0);
    note_pss(&fx, "browser-1", 300, 1002.0);
    note_pss(&fx, "browser-1", 200, 1004.9);
    /* nothing in [1005, 1010) */
    note_pss(&fx, "browser-1", 50, 1011.0);
    note_pss(&fx, "exporter", 7, 1011.0);
    history_pss(fx.h, 2, 1012.0, out); /* browser-1 */
    assert_true(out[HISTORY_SLOTS - 1] == 50);
    assert_true(out[HISTORY_SLOTS - 2] == -1);
    assert_true(out[HISTORY_SLOTS - 3] == 300);
    for (size_t i = 0; i < HISTORY_SLOTS - 3; i++)
        assert_true(out[i] == -1);
    /* another child is not mixed in */
    history_pss(fx.h, 1, 1012.0, out); /* browser-0 */
    for (size_t i = 0; i < HISTORY_SLOTS; i++)
        assert_true(out[i] == -1);
    history_pss(fx.h, 0, 1012.0, out);
    assert_true(out[HISTORY_SLOTS - 1] == 7);

    /* later, the same slots move left; a step without a report is a gap */
    history_pss(fx.h, 2, 1022.0, out);
    assert_true(out[HISTORY_SLOTS - 1] == -1);
    assert_true(out[HISTORY_SLOTS - 3] == 50);
    assert_true(out[HISTORY_SLOTS - 5] == 300);

    /* a whole ring later nothing of it is left, although the ring's slots
     * still hold the old steps */
    history_pss(fx.h, 2, 1011.0 + 5 * HISTORY_SLOTS, out);
    for (size_t i = 0; i < HISTORY_SLOTS; i++)
        assert_true(out[i] == -1);
    note_pss(&fx, "browser-1", 9, 1011.0 + 5 * HISTORY_SLOTS);
    history_pss(fx.h, 2, 1011.0 + 5 * HISTORY_SLOTS, out);
    assert_true(out[HISTORY_SLOTS - 1] == 9); /* the old 50 in this slot is gone */
    for (size_t i = 0; i < HISTORY_SLOTS - 1; i++)
        assert_true(out[i] == -1);
    fixture_fini(&fx);
}

static void test_ignores_other_lines(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 1, 1000000000);
    double out[HISTORY_SLOTS];
    note(&fx, "rendervisor_child_resident_memory_bytes{child=\"renderer\"} 5", 100);
    note(&fx, PSS "{child=\"browser-7\"} 5", 100);  /* not a child of this config */
    note(&fx, PSS "{child=\"renderer\"} -5", 100);  /* a gauge may be negative; not memory */
    note(&fx, CPU "{child=\"renderer\",mode=\"idle\"} 5", 100);
    note(&fx, "rendervisor_child_up{child=\"renderer\"} 1", 100);
    for (size_t c = 0; c < history_children(fx.h); c++) {
        history_pss(fx.h, c, 101, out);
        for (size_t i = 0; i < HISTORY_SLOTS; i++)
            assert_true(out[i] == -1);
        assert_true(history_cpu_rate(fx.h, c, 101) == -1);
    }
    struct history_latency lat[HISTORY_LATENCIES];
    assert_int_equal(history_latencies(fx.h, 101, lat), 0);
    fixture_fini(&fx);
}

static void test_cpu_rate(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 1, 1000000000);
    size_t r = 2; /* renderer */
    /* one report: no rate yet */
    note_cpu(&fx, "renderer", 10, 5, 100.0);
    assert_true(history_cpu_rate(fx.h, r, 100.5) == -1);
    /* 0.5 s later: too short to say */
    note_cpu(&fx, "renderer", 10.1, 5, 100.5);
    assert_true(history_cpu_rate(fx.h, r, 100.5) == -1);
    /* half a core for 10 s, user and system together */
    note_cpu(&fx, "renderer", 12, 8, 110.0);
    assert_true(fabs(history_cpu_rate(fx.h, r, 110.0) - 0.5) < 1e-9);
    /* the counters start again (the sender restarted): 1 s of user in the
     * next 10 s, the drop itself is not a negative rate */
    note_cpu(&fx, "renderer", 1, 0, 120.0);
    assert_true(fabs(history_cpu_rate(fx.h, r, 120.0) - (5 + 1 + 0) / 20.0) < 1e-9);
    /* the window is the last minute: after 2 busy minutes at 2 cores the
     * idle start is forgotten */
    double user = 1;
    for (double t = 125; t <= 240; t += 5) {
        user += 10;
        note_cpu(&fx, "renderer", user, 0, t);
    }
    assert_true(fabs(history_cpu_rate(fx.h, r, 240) - 2.0) < 1e-9);
    /* no report for over a minute: unknown, not the old rate */
    assert_true(history_cpu_rate(fx.h, r, 240 + HISTORY_CPU_WINDOW_S + 1) == -1);
    fixture_fini(&fx);
}

static void test_cpu_rate_with_long_steps(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 1, 120LL * 1000000000); /* a step of 2 min, longer than the window */
    note_cpu(&fx, "exporter", 1, 1, 1200.0);
    note_cpu(&fx, "exporter", 2, 2, 1210.0);
    assert_true(fabs(history_cpu_rate(fx.h, 0, 1210.0) - 0.2) < 1e-9);
    fixture_fini(&fx);
}

static void test_latencies(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 1, 1000000000);
    struct history_latency lat[HISTORY_LATENCIES];
    char line[256];
    /* more than the ring holds: the oldest go */
    for (int i = 0; i < HISTORY_LATENCIES + 10; i++) {
        snprintf(line, sizeof(line), REQ "{status_code=\"%d\"} %d.5", i % 2 ? 500 : 200, i);
        note(&fx, line, 1000.0 + i);
    }
    size_t n = history_latencies(fx.h, 1000.0 + HISTORY_LATENCIES + 10, lat);
    assert_int_equal(n, HISTORY_LATENCIES);
    assert_true(lat[0].seconds == 10.5);
    assert_int_equal(lat[0].status, 200);
    assert_true(lat[1].seconds == 11.5);
    assert_int_equal(lat[1].status, 500);
    assert_true(lat[n - 1].seconds == HISTORY_LATENCIES + 9 + 0.5);
    /* ten minutes on, the older ones no longer count */
    double now = 1000.0 + 20 + HISTORY_LATENCY_WINDOW_S;
    n = history_latencies(fx.h, now, lat);
    assert_int_equal(n, HISTORY_LATENCIES + 10 - 20);
    assert_true(lat[0].seconds == 20.5);
    assert_int_equal(history_latencies(fx.h, 1e9, lat), 0);
    fixture_fini(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_children_and_step),
        cmocka_unit_test(test_pss_max_per_step_with_gaps),
        cmocka_unit_test(test_ignores_other_lines),
        cmocka_unit_test(test_cpu_rate),
        cmocka_unit_test(test_cpu_rate_with_long_steps),
        cmocka_unit_test(test_latencies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
