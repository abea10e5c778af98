/* Every line the supervisor's and the renderer's reports can produce, run
 * through the exporter's ingest path (intake_datagram, then registry_apply)
 * with the names of common/names.h: not one may be refused. The lines are
 * built by the senders' own code (supervisor/report.c, renderer/lines.c);
 * only the renderer's one-line reports of renderer/api.c and browser.c are
 * built here, with the same names those calls use. Then the other way:
 * every family the exporter serves must be reached by some line, and be
 * documented under its exact name in docs/metrics.md, so a misspelt name
 * fails here whichever side it is on. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intake.h"
#include "lines.h"
#include "names.h"
#include "registry.h"
#include "report.h"

#define NAMES_BROWSERS 2
#define NAMES_MAX_FAMILIES 64

struct fixture {
    struct config *cfg;
    struct registry *reg;
    struct ingest_buf b;
    unsigned lines;
    char seen[NAMES_MAX_FAMILIES][INGEST_MAX_NAME]; /* families reached, no repeats */
    size_t nseen;
};

static struct fixture fx;

static double ingest_count(const char *family, const char *label, const char *value)
{
    const char *labels[] = { label, value, NULL };
    double v = -1;
    assert_int_equal(registry_get(fx.reg, family, labels, &v), 0);
    return v;
}

static double refused_lines(void)
{
    return ingest_count("rendervisor_ingest_lines_total", "result", "rejected");
}

static void note_family(const char *line, size_t n)
{
    size_t len = strcspn(line, "{ ");
    assert_true(len < n && len < INGEST_MAX_NAME);
    for (size_t i = 0; i < fx.nseen; i++)
        if (strlen(fx.seen[i]) == len && memcmp(fx.seen[i], line, len) == 0)
            return;
    assert_true(fx.nseen < NAMES_MAX_FAMILIES);
    memcpy(fx.seen[fx.nseen], line, len);
    fx.seen[fx.nseen++][len] = '\0';
}

/* Each line of the buffer alone through the exporter's intake: a refused
 * one fails the test, naming the line and why. */
static void run(void)
{
    assert_false(fx.b.overflow);
    assert_true(fx.b.len > 0);
    const char *p = fx.b.data, *end = fx.b.data + fx.b.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        assert_non_null(nl);
        size_t n = (size_t)(nl - p);
        double before = refused_lines();
        intake_datagram(fx.reg, p, n + 1, 1);
        if (refused_lines() != before) {
            struct ingest_sample s;
            enum ingest_reject why = ingest_parse_line(p, n, &s);
            if (why == INGEST_OK)
                why = registry_apply(fx.reg, &s);
            fail_msg("the exporter refused a line (%s): %.*s", ingest_reject_name(why), (int)n, p);
        }
        note_family(p, n);
        fx.lines++;
        p = nl + 1;
    }
    ingest_buf_reset(&fx.b);
}


/* supervisor/report.c: every child, in every state, with every restart
 * reason counted; and the dropped datagrams. */
static void supervisor_lines(void)
{
    struct proctree_figures fig = { 7, 12.5, 3.25, 100 << 20, 80 << 20, 1ull << 32, 42, 1024 };
    unsigned long long restarts[CHILD_REASON_COUNT];
    for (int k = 0; k < CHILD_REASON_COUNT; k++)
        restarts[k] = (unsigned long long)k + 1;
    char names[NAMES_BROWSERS + 2][16];
    snprintf(names[0], sizeof(names[0]), NAMES_CHILD_EXPORTER);
    for (unsigned i = 0; i < NAMES_BROWSERS; i++)
        snprintf(names[i + 1], sizeof(names[i + 1]), NAMES_CHILD_BROWSER_FMT, i);
    snprintf(names[NAMES_BROWSERS + 1], sizeof(names[0]), NAMES_CHILD_RENDERER);
    for (size_t c = 0; c < NAMES_BROWSERS + 2; c++)
        for (int s = 0; s < CHILD_STATE_COUNT; s++) {
            struct report_child r = { names[c], (enum child_state)s, &fig, 1ull << 30, 1.7e9, restarts };
            assert_int_equal(report_child_lines(&fx.b, &r), 0);
            run();
        }
    assert_int_equal(report_dropped_line(&fx.b, 3), 0);
    run();
}

/* renderer/lines.c: a render's steps, its readiness rules, the requests
 * refused in the browser, the browser's version; the memory report with
 * and without a budget, bound by each limit, waiting for each thing. */
static void renderer_lines(void)
{
    for (int i = 0; i < NAMES_STEP_COUNT; i++)
        assert_int_equal(lines_step(&fx.b, (enum names_step)i, 0.25 * i), 0);
    double rule_ms[NAMES_RULE_COUNT];
    for (int i = 0; i < NAMES_RULE_COUNT; i++)
        rule_ms[i] = 10.0 * i;
    assert_int_equal(lines_rules(&fx.b, rule_ms), 0);
    unsigned long long refused[NAMES_REFUSAL_COUNT] = { 4, 3, 2, 1 };
    assert_int_equal(lines_requests_refused(&fx.b, refused), 0);
    unsigned long long dropped[NAMES_SPAN_DROP_COUNT] = { 5, 6 };
    assert_int_equal(lines_spans_dropped(&fx.b, dropped), 0);
    assert_int_equal(lines_browser_info(&fx.b, "HeadlessChrome/131.0.6778.264"), 0);
    run();

    struct lines_memory m = { { 1 << 30, MEMORY_UNLIMITED, MEMORY_UNLIMITED, NAMES_BOUND_HOST }, 0, 256 << 20, 0,
                              0, 0, 0 };
    assert_int_equal(lines_memory(&fx.b, &m), 0);
    run();
    for (int bound = 0; bound < NAMES_BOUND_COUNT; bound++) {
        m.seen = (struct memory_budget){ 1 << 30, 2u << 30, 3u << 30, (enum names_bound)bound };
        m.reserved = 512 << 20;
        m.waiting = 3;
        m.mem_blocked = bound & 1;
        m.waits = 5;
        m.retries = 1;
        assert_int_equal(lines_memory(&fx.b, &m), 0);
        run();
    }
}

/* renderer/api.c and browser.c send one line each time, built where they
 * are sent; these are those lines, with the names those calls use. */
static void renderer_one_line_reports(void)
{
    static const char *const codes[] = { "200", "400", "401", "403", "404", "408", "429", "499", "500", "503", "504" };
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        const char *labels[] = { NAMES_LABEL_STATUS_CODE, codes[i], NULL };
        assert_int_equal(ingest_buf_line(&fx.b, NAMES_FAMILY_REQUEST_DURATION, labels, 0.5 * (double)i), 0);
    }
    assert_int_equal(ingest_buf_line(&fx.b, NAMES_FAMILY_IN_FLIGHT, NULL, 2), 0);
    for (int i = 0; i < NAMES_REFUSED_COUNT; i++) {
        const char *labels[] = { NAMES_LABEL_REASON, names_refused[i], NULL };
        assert_int_equal(ingest_buf_line(&fx.b, NAMES_FAMILY_REFUSED, labels, 1), 0);
    }
    for (int i = 0; i < NAMES_CONN_COUNT; i++) {
        const char *labels[] = { NAMES_LABEL_REASON, names_conn_closes[i], NULL };
        assert_int_equal(ingest_buf_line(&fx.b, NAMES_FAMILY_CONNS_CLOSED, labels, 7), 0);
    }
    const char *labels[] = { NAMES_LABEL_VERSION, "HeadlessChrome/131.0.6778.264", NULL };
    assert_int_equal(ingest_buf_line(&fx.b, NAMES_FAMILY_BROWSER_INFO, labels, 1), 0);
    run();
}

static char *read_docs(void)
{
    FILE *f = fopen(DOCS_DIR "/metrics.md", "r");
    assert_non_null(f);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    assert_true(n > 0 && n < sizeof(text) - 1);
    text[n] = '\0';
    return text;
}

static void test_every_line_is_known(void **state)
{
    (void)state;
    memset(&fx, 0, sizeof(fx));
    fx.cfg = config_load_default();
    assert_non_null(fx.cfg);
    fx.cfg->browsers.count = NAMES_BROWSERS;
    fx.reg = registry_new(fx.cfg);
    ingest_buf_init(&fx.b);
    supervisor_lines();
    renderer_lines();
    renderer_one_line_reports();
    /* 4 children x 5 states x 21 lines, the dropped line, and the renderer's */
    assert_true(fx.lines > 4 * 5 * 21);
    assert_int_equal(ingest_count("rendervisor_ingest_lines_total", "result", "accepted"), fx.lines);
    assert_int_equal(ingest_count("rendervisor_ingest_rejected_total", "reason", "unknown_family"), 0);
    assert_int_equal(ingest_count("rendervisor_ingest_rejected_total", "reason", "unknown_label"), 0);

    /* Every family the exporter serves, but its own two counters, is
     * reached by a line above and documented as a row of docs/metrics.md. */
    struct buf out;
    buf_init(&out);
    registry_write(fx.reg, &out);
    buf_append(&out, "", 1);
    const char *docs = read_docs();
    unsigned families = 0;
    for (const char *p = out.data; (p = strstr(p, "# TYPE ")); p++) {
        p += strlen("# TYPE ");
        int n = (int)strcspn(p, " ");
        char row[160];
        snprintf(row, sizeof(row), "| %.*s |", n, p);
        if (!strstr(docs, row))
            fail_msg("family not in docs/metrics.md: %.*s", n, p);
        families++;
        if (strncmp(p, "rendervisor_ingest_lines_total ", (size_t)n + 1) == 0 ||
            strncmp(p, "rendervisor_ingest_rejected_total ", (size_t)n + 1) == 0)
            continue;
        int reached = 0;
        for (size_t i = 0; i < fx.nseen; i++)
            reached |= strlen(fx.seen[i]) == (size_t)n && strncmp(fx.seen[i], p, (size_t)n) == 0;
        if (!reached)
            fail_msg("no sender's line reaches family %.*s", n, p);
    }
    assert_int_equal(families, fx.nseen + 2);
    buf_fini(&out);
    ingest_buf_fini(&fx.b);
    registry_free(fx.reg);
    config_free(fx.cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_line_is_known),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
