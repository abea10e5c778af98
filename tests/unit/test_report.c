/* The supervisor's report lines for one child. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "report.h"

static struct ingest_buf buf;

static int has_line(const char *line)
{
    static char text[INGEST_MAX_DATAGRAM + 1];
    memcpy(text, buf.data, buf.len);
    text[buf.len] = '\0';
    const char *p = text;
    size_t n = strlen(line);
    while ((p = strstr(p, line))) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
        p++;
    }
    return 0;
}

static int count_lines(void)
{
    int n = 0;
    for (size_t i = 0; i < buf.len; i++)
        n += buf.data[i] == '\n';
    return n;
}

static void test_running_child(void **state)
{
    (void)state;
    struct proctree_figures f = {
        .processes = 7,
        .cpu_user_seconds = 12.5,
        .cpu_system_seconds = 0.25,
        .resident_bytes = 104857600,
        .proportional_bytes = 52428800,
        .virtual_bytes = 2147483648ULL,
        .open_fds = 31,
        .max_fds = 1024,
    };
    unsigned long long restarts[CHILD_REASON_COUNT] = { 1, 2, 3, 4, 5 };
    struct report_child r = {
        .name = "browser-1",
        .state = CHILD_RUNNING,
        .fig = &f,
        .memory_limit = 1073741824,
        .start_time = 1795644325.5,
        .restarts = restarts,
    };
    ingest_buf_reset(&buf);
    assert_int_equal(report_child_lines(&buf, &r), 0);
    assert_true(has_line("rendervisor_child_up{child=\"browser-1\"} 1"));
    assert_true(has_line("rendervisor_child_state{child=\"browser-1\",state=\"running\"} 1"));
    assert_true(has_line("rendervisor_child_state{child=\"browser-1\",state=\"backoff\"} 0"));
    assert_true(has_line("rendervisor_child_processes{child=\"browser-1\"} 7"));
    assert_true(has_line("rendervisor_child_cpu_seconds_total{child=\"browser-1\",mode=\"user\"} 12.5"));
    assert_true(has_line("rendervisor_child_cpu_seconds_total{child=\"browser-1\",mode=\"system\"} 0.25"));
    assert_true(has_line("rendervisor_child_resident_memory_bytes{child=\"browser-1\"} 104857600"));
    assert_true(has_line("rendervisor_child_proportional_memory_bytes{child=\"browser-1\"} 52428800"));
    assert_true(has_line("rendervisor_child_virtual_memory_bytes{child=\"browser-1\"} 2147483648"));
    assert_true(has_line("rendervisor_child_open_fds{child=\"browser-1\"} 31"));
    assert_true(has_line("rendervisor_child_max_fds{child=\"browser-1\"} 1024"));
    assert_true(has_line("rendervisor_child_memory_limit_bytes{child=\"browser-1\"} 1073741824"));
    assert_true(has_line("rendervisor_child_start_time_seconds{child=\"browser-1\"} 1795644325.5"));
    assert_true(has_line("rendervisor_child_restarts_total{child=\"browser-1\",reason=\"exit\"} 1"));
    assert_true(has_line("rendervisor_child_restarts_total{child=\"browser-1\",reason=\"signal\"} 2"));
    assert_true(has_line("rendervisor_child_restarts_total{child=\"browser-1\",reason=\"memory_limit\"} 3"));
    assert_true(has_line("rendervisor_child_restarts_total{child=\"browser-1\",reason=\"unhealthy\"} 4"));
    assert_true(has_line("rendervisor_child_restarts_total{child=\"browser-1\",reason=\"requested\"} 5"));
    /* up, 5 states, processes, 2 cpu, rss, pss, virtual, fds, max fds, limit, start, 5 reasons */
    assert_int_equal(count_lines(), 1 + CHILD_STATE_COUNT + 1 + 2 + 3 + 2 + 2 + CHILD_REASON_COUNT);
    ingest_buf_fini(&buf);
}

static void test_child_in_backoff_is_down(void **state)
{
    (void)state;
    struct proctree_figures f = { 0 };
    unsigned long long restarts[CHILD_REASON_COUNT] = { 0 };
    struct report_child r = { .name = "renderer", .state = CHILD_BACKOFF, .fig = &f, .restarts = restarts };
    ingest_buf_reset(&buf);
    assert_int_equal(report_child_lines(&buf, &r), 0);
    assert_true(has_line("rendervisor_child_up{child=\"renderer\"} 0"));
    assert_true(has_line("rendervisor_child_state{child=\"renderer\",state=\"backoff\"} 1"));
    assert_true(has_line("rendervisor_child_state{child=\"renderer\",state=\"running\"} 0"));
    assert_true(has_line("rendervisor_child_memory_limit_bytes{child=\"renderer\"} 0"));

    ingest_buf_reset(&buf);
    r.state = CHILD_STOPPING;
    report_child_lines(&buf, &r);
    assert_true(has_line("rendervisor_child_up{child=\"renderer\"} 0"));
    assert_true(has_line("rendervisor_child_state{child=\"renderer\",state=\"stopping\"} 1"));
    ingest_buf_fini(&buf);
}

static void test_dropped_line(void **state)
{
    (void)state;
    ingest_buf_reset(&buf);
    assert_int_equal(report_dropped_line(&buf, 17), 0);
    assert_true(has_line("rendervisor_ingest_dropped_total{sender=\"supervisor\"} 17"));
    ingest_buf_fini(&buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_running_child),
        cmocka_unit_test(test_child_in_backoff_is_down),
        cmocka_unit_test(test_dropped_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
