/* See status.h. Each child's figures are read once into a struct
 * status_child, with the texts of its cells and its chart, and then written
 * out as HTML or as JSON: the two cannot drift apart. */
#include "status.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memview.h"
#include "names.h"

#define STATUS_DASH "\xe2\x80\x93" /* a figure not reported */
#define STATUS_DOT " \xc2\xb7 "    /* between the parts of a cell */
#define STATUS_TEXT 160


/* One row: NAN for a figure not reported. */
struct status_child {
    const char *name;
    double up, start, uptime, pss, rss, limit, procs, cpu_total, cpu_rate, restarts;
    double by_reason[NAMES_REASON_COUNT];
    const char *state; /* NULL: not reported */
    const char *cls;   /* row class: up, warn, down, none */
    char state_text[32], uptime_text[32], restarts_text[32], cpu_text[32];
    char restarts_detail[STATUS_TEXT], memory_text[STATUS_TEXT], memory_detail[STATUS_TEXT];
    struct buf chart; /* PSS as an SVG path */
    double limit_y;   /* where the limit line is drawn; NAN: no limit */
};

/* The page-wide figures: render latency, browser, time. */
struct status_page {
    char updated[32];
    char browser[INGEST_MAX_LABEL_VALUE];
    int have_browser;
    double in_flight;
    struct history_latency lat[HISTORY_LATENCIES];
    size_t nlat;
    double p50, p90, p99;
    char latency_text[STATUS_TEXT], latency_detail[STATUS_TEXT];
    struct buf ok, client, server; /* bars by status class, SVG paths */
};

/* ---- escaping ------------------------------------------------------------ */

void status_html_escape(struct buf *out, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;"
                        : *s == '"' ? "&quot;" : *s == '\'' ? "&#39;" : NULL;
        if (!rep)
            continue;
        buf_append(out, run, (size_t)(s - run));
        buf_puts(out, rep);
        run = s + 1;
    }
    buf_puts(out, run);
}

void status_json_string(struct buf *out, const char *s)
{
    buf_append(out, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' && c != 0x7f)
            continue;
        buf_append(out, run, (size_t)(s - run));
        if (c == '"' || c == '\\') {
            char esc[2] = { '\\', (char)c };
            buf_append(out, esc, 2);
        } else if (c == '\n') {
            buf_puts(out, "\\n");
        } else {
            buf_printf(out, "\\u%04x", c);
        }
        run = s + 1;
    }
    buf_puts(out, run);
    buf_append(out, "\"", 1);
}

/* ---- numbers as text ----------------------------------------------------- */

int status_parse_refresh(const char *text, unsigned *refresh)
{
    if (!text || !*text || strlen(text) > 4)
        return -EINVAL;
    unsigned v = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v > STATUS_REFRESH_MAX)
        return -EINVAL;
    *refresh = v;
    return 0;
}

/* An uptime, to the second while short: 45s, 12m 03s, 5h 02m, 3d 04h. */
static void status_uptime(char *out, size_t size, double seconds)
{
    if (isnan(seconds)) {
        snprintf(out, size, STATUS_DASH);
        return;
    }
    unsigned long long s = (unsigned long long)seconds;
    if (s < 60)
        snprintf(out, size, "%llus", s);
    else if (s < 3600)
        snprintf(out, size, "%llum %02llus", s / 60, s % 60);
    else if (s < 86400)
        snprintf(out, size, "%lluh %02llum", s / 3600, s % 3600 / 60);
    else
        snprintf(out, size, "%llud %02lluh", s / 86400, s % 86400 / 3600);
}

/* A duration of a render: 420 ms, 1.23 s, 12.3 s. */
static void status_seconds(char *out, size_t size, double seconds)
{
    if (isnan(seconds))
        snprintf(out, size, STATUS_DASH);
    else if (seconds < 1)
        snprintf(out, size, "%.0f ms", seconds * 1000);
    else if (seconds < 10)
        snprintf(out, size, "%.2f s", seconds);
    else
        snprintf(out, size, "%.1f s", seconds);
}

/* Tenths of a chart coordinate (never negative), rounded. By hand: libm
 * would map 380 KiB into a process whose memory is counted (issue 4). */
static long status_tenths(double v)
{
    return (long)(v * 10 + 0.5);
}

/* A chart coordinate: one decimal, without a trailing ".0". */
static void status_coord(struct buf *out, double v)
{
    long tenths = status_tenths(v);
    if (tenths % 10 == 0)
        buf_printf(out, "%ld", tenths / 10);
    else
        buf_printf(out, "%ld.%ld", tenths / 10, tenths % 10);
}

/* The height of v on a chart whose top (less two units of air) is scale. */
static double status_y(double v, double scale)
{
    double y = STATUS_CHART_HEIGHT - (STATUS_CHART_HEIGHT - 2) * v / scale;
    return y < 0 ? 0 : y > STATUS_CHART_HEIGHT ? STATUS_CHART_HEIGHT : y;
}

/* ---- one child --------------------------------------------------------------- */

static double status_get(const struct registry *reg, const char *family, const char *child, const char *k2,
                         const char *v2)
{
    const char *labels[] = { NAMES_LABEL_CHILD, child, k2, v2, NULL };
    double v;
    return registry_get(reg, family, labels, &v) == 0 ? v : NAN;
}

/* PSS per slot as a filled step area, one closed run per stretch of slots
 * with reports; the limit, when there is one, at the top of the scale (or
 * below it when PSS went over). */
static void status_mem_chart(struct status_child *c, const double *pss)
{
    double max = 0;
    for (size_t i = 0; i < HISTORY_SLOTS; i++)
        if (pss[i] > max)
            max = pss[i];
    double limit = c->limit > 0 ? c->limit : 0;
    double scale = limit > 0 ? (max > limit ? max : limit) : max * 1.25;
    if (scale <= 0)
        scale = 1;
    c->limit_y = NAN;
    if (limit > 0) {
        /* on a pixel row's middle, so that the line is one sharp pixel */
        double y = status_y(limit, scale);
        c->limit_y = y < STATUS_CHART_HEIGHT ? (double)(long)y + 0.5 : STATUS_CHART_HEIGHT - 0.5;
    }
    /* A level is drawn once for as many slots as it lasts. */
    int run = 0;
    long level = 0;
    for (size_t i = 0; i < HISTORY_SLOTS; i++) {
        if (pss[i] < 0) {
            if (run)
                buf_printf(&c->chart, "H%zuV%dZ", 2 * i, STATUS_CHART_HEIGHT);
            run = 0;
            continue;
        }
        double y = status_y(pss[i], scale);
        if (pss[i] > 0 && y > STATUS_CHART_HEIGHT - 1)
            y = STATUS_CHART_HEIGHT - 1; /* a small child still shows */
        if (run && status_tenths(y) == level)
            continue;
        if (run)
            buf_printf(&c->chart, "H%zuV", 2 * i);
        else
            buf_printf(&c->chart, "M%zu,%dV", 2 * i, STATUS_CHART_HEIGHT);
        status_coord(&c->chart, y);
        level = status_tenths(y);
        run = 1;
    }
    if (run)
        buf_printf(&c->chart, "H%dV%dZ", STATUS_MEM_WIDTH, STATUS_CHART_HEIGHT);
}

static void status_child_read(const struct status_input *in, size_t i, struct status_child *c)
{
    const struct registry *reg = in->reg;
    const char *name = history_child(in->hist, i);
    memset(c, 0, sizeof(*c));
    buf_init(&c->chart);
    c->name = name;
    c->up = status_get(reg, NAMES_FAMILY_CHILD_UP, name, NULL, NULL);
    int state = -1;
    for (int k = 0; k < NAMES_STATE_COUNT; k++)
        if (status_get(reg, NAMES_FAMILY_CHILD_STATE, name, NAMES_LABEL_STATE, names_states[k]) == 1)
            state = k;
    c->state = state < 0 ? NULL : names_states[state];
    c->start = status_get(reg, NAMES_FAMILY_CHILD_START_TIME, name, NULL, NULL);
    c->pss = status_get(reg, NAMES_FAMILY_CHILD_PSS, name, NULL, NULL);
    c->rss = status_get(reg, NAMES_FAMILY_CHILD_RSS, name, NULL, NULL);
    c->limit = status_get(reg, NAMES_FAMILY_CHILD_MEMORY_LIMIT, name, NULL, NULL);
    c->procs = status_get(reg, NAMES_FAMILY_CHILD_PROCESSES, name, NULL, NULL);
    double user = status_get(reg, NAMES_FAMILY_CHILD_CPU, name, NAMES_LABEL_MODE, names_modes[NAMES_MODE_USER]);
    double sys = status_get(reg, NAMES_FAMILY_CHILD_CPU, name, NAMES_LABEL_MODE, names_modes[NAMES_MODE_SYSTEM]);
    c->cpu_total = isnan(user) || isnan(sys) ? NAN : user + sys;
    double rate = history_cpu_rate(in->hist, i, in->mono);
    c->cpu_rate = rate < 0 ? NAN : rate;
    c->restarts = NAN;
    for (int k = 0; k < NAMES_REASON_COUNT; k++) {
        c->by_reason[k] = status_get(reg, NAMES_FAMILY_CHILD_RESTARTS, name, NAMES_LABEL_REASON, names_reasons[k]);
        if (!isnan(c->by_reason[k]))
            c->restarts = (isnan(c->restarts) ? 0 : c->restarts) + c->by_reason[k];
    }
    c->uptime = c->up == 1 && c->start > 0 ? (in->wall > c->start ? in->wall - c->start : 0) : NAN;

    if (isnan(c->up))
        c->cls = "none";
    else if (state == NAMES_STATE_BACKOFF || state == NAMES_STATE_STOPPING)
        c->cls = "warn";
    else
        c->cls = c->up == 1 ? "up" : "down";
    snprintf(c->state_text, sizeof(c->state_text), "%s",
             c->state ? c->state : isnan(c->up) ? "no report" : c->up == 1 ? "up" : "down");
    status_uptime(c->uptime_text, sizeof(c->uptime_text), c->uptime);

    if (isnan(c->restarts))
        snprintf(c->restarts_text, sizeof(c->restarts_text), STATUS_DASH);
    else
        snprintf(c->restarts_text, sizeof(c->restarts_text), "%.0f", c->restarts);
    size_t len = 0;
    for (int k = 0; k < NAMES_REASON_COUNT && len < sizeof(c->restarts_detail); k++)
        if (c->by_reason[k] > 0)
            len += (size_t)snprintf(c->restarts_detail + len, sizeof(c->restarts_detail) - len, "%s%s %.0f",
                                    len ? ", " : "", names_reasons[k], c->by_reason[k]);

    if (isnan(c->cpu_rate))
        snprintf(c->cpu_text, sizeof(c->cpu_text), STATUS_DASH);
    else
        snprintf(c->cpu_text, sizeof(c->cpu_text), "%.1f%%", 100 * c->cpu_rate);

    char pss[32], limit[32], rss[32];
    memview_bytes(pss, sizeof(pss), c->pss, 1);
    memview_bytes(limit, sizeof(limit), c->limit, 1);
    memview_bytes(rss, sizeof(rss), c->rss, 1);
    snprintf(c->memory_text, sizeof(c->memory_text), "%s / %s", pss, c->limit == 0 ? "no limit" : limit);
    char share[16] = "";
    if (c->limit > 0 && !isnan(c->pss))
        snprintf(share, sizeof(share), "%.0f%%" STATUS_DOT, 100 * c->pss / c->limit);
    char procs[24] = STATUS_DASH;
    if (!isnan(c->procs))
        snprintf(procs, sizeof(procs), "%.0f", c->procs);
    snprintf(c->memory_detail, sizeof(c->memory_detail), "%sRSS %s" STATUS_DOT "%s proc", share, rss, procs);

    double hist[HISTORY_SLOTS];
    history_pss(in->hist, i, in->mono, hist);
    status_mem_chart(c, hist);
}

static void status_child_fini(struct status_child *c)
{
    buf_fini(&c->chart);
}

/* ---- the page-wide figures ------------------------------------------------- */

static int status_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest value with at least q of them at or below it. */
static double status_quantile(const double *sorted, size_t n, double q)
{
    double x = q * (double)n;
    size_t rank = (size_t)x;
    if ((double)rank < x)
        rank++;
    return sorted[rank ? rank - 1 : 0];
}

/* The top of the latency chart: 0.1, 0.2, 0.5, 1, 2, 5 ... seconds, the first
 * at or above the slowest request. */
static double status_nice(double max)
{
    double scale = 0.1;
    for (int i = 0; scale < max && i < 30; i++)
        scale *= i % 3 == 1 ? 2.5 : 2;
    return scale;
}

static void status_page_read(const struct status_input *in, struct status_page *p)
{
    memset(p, 0, sizeof(*p));
    buf_init(&p->ok);
    buf_init(&p->client);
    buf_init(&p->server);
    time_t t = (time_t)in->wall;
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(p->updated, sizeof(p->updated), "%H:%M:%S UTC", &tm);
    p->have_browser = registry_label_value(in->reg, NAMES_FAMILY_BROWSER_INFO, NAMES_LABEL_VERSION, p->browser,
                                           sizeof(p->browser)) == 0;
    if (registry_get(in->reg, NAMES_FAMILY_IN_FLIGHT, NULL, &p->in_flight) < 0)
        p->in_flight = NAN;

    p->nlat = history_latencies(in->hist, in->mono, p->lat);
    p->p50 = p->p90 = p->p99 = NAN;
    unsigned window = (unsigned)(HISTORY_LATENCY_WINDOW_S / 60);
    char flight[24] = STATUS_DASH;
    if (!isnan(p->in_flight))
        snprintf(flight, sizeof(flight), "%.0f", p->in_flight);
    if (p->nlat == 0) {
        snprintf(p->latency_text, sizeof(p->latency_text), "no render requests in the last %u min", window);
        snprintf(p->latency_detail, sizeof(p->latency_detail), "%s in flight", flight);
        return;
    }
    double sorted[HISTORY_LATENCIES];
    for (size_t i = 0; i < p->nlat; i++)
        sorted[i] = p->lat[i].seconds;
    qsort(sorted, p->nlat, sizeof(sorted[0]), status_cmp);
    p->p50 = status_quantile(sorted, p->nlat, 0.5);
    p->p90 = status_quantile(sorted, p->nlat, 0.9);
    p->p99 = status_quantile(sorted, p->nlat, 0.99);
    char a[24], b[24], c[24], top[24];
    status_seconds(a, sizeof(a), p->p50);
    status_seconds(b, sizeof(b), p->p90);
    status_seconds(c, sizeof(c), p->p99);
    snprintf(p->latency_text, sizeof(p->latency_text), "p50 %s" STATUS_DOT "p90 %s" STATUS_DOT "p99 %s", a, b, c);
    double scale = status_nice(sorted[p->nlat - 1]);
    status_seconds(top, sizeof(top), scale);
    char count[48];
    if (p->nlat == HISTORY_LATENCIES)
        snprintf(count, sizeof(count), "the last %zu requests", p->nlat);
    else
        snprintf(count, sizeof(count), "%zu request%s in %u min", p->nlat, p->nlat == 1 ? "" : "s", window);
    snprintf(p->latency_detail, sizeof(p->latency_detail), "%s" STATUS_DOT "%s in flight" STATUS_DOT "chart top %s",
             count, flight, top);

    /* One bar per request, the newest on the right, coloured by status. */
    for (size_t i = 0; i < p->nlat; i++) {
        unsigned status = p->lat[i].status;
        struct buf *path = status >= 500 ? &p->server : status >= 400 ? &p->client : &p->ok;
        size_t x = STATUS_LAT_WIDTH - 4 * (p->nlat - i);
        double y = status_y(p->lat[i].seconds, scale);
        if (y > STATUS_CHART_HEIGHT - 1)
            y = STATUS_CHART_HEIGHT - 1; /* the quickest still shows */
        buf_printf(path, "M%zu,%dV", x, STATUS_CHART_HEIGHT);
        status_coord(path, y);
        buf_printf(path, "h3V%dZ", STATUS_CHART_HEIGHT);
    }
}

static void status_page_fini(struct status_page *p)
{
    buf_fini(&p->ok);
    buf_fini(&p->client);
    buf_fini(&p->server);
}

/* ---- HTML ---------------------------------------------------------------------- */

static void status_html_cell(struct buf *out, const char *tag, const char *key, const char *text)
{
    buf_printf(out, "<%s data-cell=%s>", tag, key);
    status_html_escape(out, text);
    buf_printf(out, "</%s>", tag);
}

static void status_html_child(struct buf *out, const struct status_child *c)
{
    buf_puts(out, "<tr data-child=\"");
    status_html_escape(out, c->name);
    buf_printf(out, "\" class=%s><td class=name><i class=swatch></i>", c->cls);
    status_html_escape(out, c->name);
    buf_puts(out, "</td><td>");
    status_html_cell(out, "span", "state", c->state_text);
    buf_puts(out, "</td><td>");
    status_html_cell(out, "span", "uptime", c->uptime_text);
    buf_puts(out, "</td><td class=restarts>");
    status_html_cell(out, "b", "restarts", c->restarts_text);
    status_html_cell(out, "small", "restarts_detail", c->restarts_detail);
    buf_puts(out, "</td><td>");
    status_html_cell(out, "span", "cpu", c->cpu_text);
    buf_puts(out, "</td><td>");
    status_html_cell(out, "span", "memory", c->memory_text);
    status_html_cell(out, "small", "memory_detail", c->memory_detail);
    buf_printf(out,
               "</td><td class=chart><svg class=mem viewBox=\"0 0 %d %d\" width=%d height=%d>"
               "<rect class=bg width=%d height=%d></rect><path class=pss data-chart=pss d=\"",
               STATUS_MEM_WIDTH, STATUS_CHART_HEIGHT, STATUS_MEM_WIDTH, STATUS_CHART_HEIGHT, STATUS_MEM_WIDTH,
               STATUS_CHART_HEIGHT);
    buf_append(out, c->chart.data ? c->chart.data : "", c->chart.len);
    buf_printf(out, "\"></path><line class=\"limit%s\" data-limit x1=0 x2=%d y1=", isnan(c->limit_y) ? " none" : "",
               STATUS_MEM_WIDTH);
    status_coord(out, isnan(c->limit_y) ? 0 : c->limit_y);
    buf_puts(out, " y2=");
    status_coord(out, isnan(c->limit_y) ? 0 : c->limit_y);
    buf_puts(out, "></line></svg></td></tr>\n");
}

static void status_html_path(struct buf *out, const char *cls, const struct buf *d)
{
    buf_printf(out, "<path class=%s data-chart=%s d=\"", cls, cls);
    buf_append(out, d->data ? d->data : "", d->len);
    buf_puts(out, "\"></path>");
}

/* The memory part, once the renderer has reported its budget. */
static void status_html_memory(struct buf *out, const struct memview *m)
{
    if (!m->shown)
        return;
    buf_printf(out, "<section id=memory class=%s><h2>Memory</h2><p>", m->cls);
    status_html_cell(out, "span", "memory", m->text);
    status_html_cell(out, "small", "memory_detail", m->detail);
    buf_printf(out,
               "</p><svg class=budget viewBox=\"0 0 %d %d\" width=%d height=%d><rect class=bg width=%d height=%d>"
               "</rect><path class=used data-chart=used d=\"%s\"></path><path class=reserved data-chart=reserved "
               "d=\"%s\"></path></svg></section>\n",
               MEMVIEW_BAR_WIDTH, MEMVIEW_BAR_HEIGHT, MEMVIEW_BAR_WIDTH, MEMVIEW_BAR_HEIGHT, MEMVIEW_BAR_WIDTH,
               MEMVIEW_BAR_HEIGHT, m->used_bar, m->reserved_bar);
}

void status_html(const struct status_input *in, unsigned refresh, struct buf *out)
{
    struct status_page p;
    status_page_read(in, &p);
    unsigned span = (unsigned)(history_step(in->hist) * HISTORY_SLOTS / 60 + 0.5);
    buf_printf(out,
               "<!doctype html>\n<html lang=en data-refresh=%u><head><meta charset=utf-8>\n"
               "<meta name=viewport content=\"width=device-width, initial-scale=1\">\n"
               "<title>rendervisor status</title>\n<link rel=stylesheet href=\"status.css\">\n"
               "<script src=\"status.js\" defer></script>\n</head><body>\n"
               "<main class=panel-solo>\n<header><h1>rendervisor</h1><p id=source class=server><i></i>"
               "<span id=source-text>figures of %s",
               refresh, p.updated);
    if (refresh)
        buf_printf(out, ", as served; updated every %u s while the page is open", refresh);
    else
        buf_puts(out, ", as served; not updated (refresh=0)");
    buf_printf(out,
               "</span></p></header>\n<table id=children>\n<thead><tr><th class=c-name>child</th>"
               "<th class=c-state>state</th><th class=c-uptime>uptime</th><th class=c-restarts>restarts</th>"
               "<th class=c-cpu>CPU</th><th class=c-memory>memory (PSS) / limit</th>"
               "<th class=c-chart>PSS, last %u min</th></tr></thead>\n<tbody>\n",
               span);
    for (size_t i = 0; i < history_children(in->hist); i++) {
        struct status_child c;
        status_child_read(in, i, &c);
        status_html_child(out, &c);
        status_child_fini(&c);
    }
    buf_puts(out, "</tbody></table>\n<section id=latency><h2>Render latency</h2><p>");
    status_html_cell(out, "span", "latency", p.latency_text);
    status_html_cell(out, "small", "latency_detail", p.latency_detail);
    buf_printf(out, "</p><svg class=lat viewBox=\"0 0 %d %d\" width=%d height=%d><rect class=bg width=%d height=%d>"
                    "</rect>",
               STATUS_LAT_WIDTH, STATUS_CHART_HEIGHT, STATUS_LAT_WIDTH, STATUS_CHART_HEIGHT, STATUS_LAT_WIDTH,
               STATUS_CHART_HEIGHT);
    status_html_path(out, "ok", &p.ok);
    status_html_path(out, "client", &p.client);
    status_html_path(out, "server", &p.server);
    buf_puts(out, "</svg></section>\n");
    struct memview m;
    memview_read(in->reg, &m);
    status_html_memory(out, &m);
    buf_puts(out, "<p id=meta>browser: ");
    status_html_cell(out, "span", "browser", p.have_browser ? p.browser : "not reported yet");
    buf_puts(out, "<span hidden data-cell=updated>");
    status_html_escape(out, p.updated);
    buf_puts(out, "</span></p>\n<p class=links><a href=\"metrics\">/metrics</a> &middot; "
                  "<a href=\"dashboard.json\">/dashboard.json</a> &middot; <a href=\"alerts.yml\">/alerts.yml</a>"
                  " &middot; <a href=\"status.json\">/status.json</a></p>\n</main>\n</body></html>\n");
    status_page_fini(&p);
}

/* ---- JSON ----------------------------------------------------------------------- */

static void status_json_number(struct buf *out, double v)
{
    if (!isfinite(v)) {
        buf_puts(out, "null");
        return;
    }
    char num[40];
    size_t n = ingest_format_value(num, sizeof(num), v);
    buf_append(out, num, n);
}

/* ,"key": */
static void status_json_key(struct buf *out, const char *key, int first)
{
    if (!first)
        buf_append(out, ",", 1);
    status_json_string(out, key);
    buf_append(out, ":", 1);
}

static void status_json_text(struct buf *out, const char *key, const char *text, int first)
{
    status_json_key(out, key, first);
    status_json_string(out, text);
}

static void status_json_num(struct buf *out, const char *key, double v, int first)
{
    status_json_key(out, key, first);
    status_json_number(out, v);
}

static void status_json_child(struct buf *out, const struct status_child *c)
{
    buf_append(out, "{", 1);
    status_json_text(out, "name", c->name, 1);
    status_json_key(out, "up", 0);
    buf_puts(out, isnan(c->up) ? "null" : c->up == 1 ? "true" : "false");
    status_json_key(out, "state", 0);
    if (c->state)
        status_json_string(out, c->state);
    else
        buf_puts(out, "null");
    status_json_num(out, "start_time_seconds", c->start, 0);
    status_json_num(out, "uptime_seconds", c->uptime, 0);
    status_json_num(out, "restarts", c->restarts, 0);
    status_json_key(out, "restarts_by_reason", 0);
    buf_append(out, "{", 1);
    for (int k = 0; k < NAMES_REASON_COUNT; k++)
        status_json_num(out, names_reasons[k], c->by_reason[k], k == 0);
    buf_append(out, "}", 1);
    status_json_num(out, "pss_bytes", c->pss, 0);
    status_json_num(out, "rss_bytes", c->rss, 0);
    status_json_num(out, "memory_limit_bytes", c->limit, 0);
    status_json_num(out, "processes", c->procs, 0);
    status_json_num(out, "cpu_seconds_total", c->cpu_total, 0);
    status_json_num(out, "cpu_cores", c->cpu_rate, 0);
    status_json_key(out, "view", 0);
    buf_append(out, "{", 1);
    status_json_text(out, "class", c->cls, 1);
    status_json_key(out, "cells", 0);
    buf_append(out, "{", 1);
    status_json_text(out, "state", c->state_text, 1);
    status_json_text(out, "uptime", c->uptime_text, 0);
    status_json_text(out, "restarts", c->restarts_text, 0);
    status_json_text(out, "restarts_detail", c->restarts_detail, 0);
    status_json_text(out, "cpu", c->cpu_text, 0);
    status_json_text(out, "memory", c->memory_text, 0);
    status_json_text(out, "memory_detail", c->memory_detail, 0);
    buf_append(out, "}", 1);
    status_json_key(out, "chart", 0);
    buf_append(out, "{", 1);
    status_json_text(out, "pss", c->chart.data ? c->chart.data : "", 1);
    status_json_num(out, "limit_y", c->limit_y, 0);
    buf_puts(out, "}}}");
}

/* "memory": null until the renderer has reported its budget. */
static void status_json_memory(struct buf *out, const struct memview *m)
{
    status_json_key(out, "memory", 0);
    if (!m->shown) {
        buf_puts(out, "null");
        return;
    }
    buf_append(out, "{", 1);
    status_json_num(out, "budget_bytes", m->budget, 1);
    status_json_num(out, "used_bytes", m->used, 0);
    status_json_num(out, "reserved_bytes", m->reserved, 0);
    status_json_num(out, "available_bytes", m->available, 0);
    status_json_num(out, "render_estimate_bytes", m->estimate, 0);
    status_json_key(out, "bound", 0);
    if (m->bound)
        status_json_string(out, m->bound);
    else
        buf_puts(out, "null");
    status_json_key(out, "queued", 0);
    buf_append(out, "{", 1);
    status_json_num(out, "memory", m->queued_memory, 1);
    status_json_num(out, "browser", m->queued_browser, 0);
    buf_append(out, "}", 1);
    status_json_num(out, "waits_total", m->waits, 0);
    status_json_num(out, "retries_total", m->retries, 0);
    status_json_key(out, "view", 0);
    buf_append(out, "{", 1);
    status_json_text(out, "class", m->cls, 1);
    status_json_key(out, "cells", 0);
    buf_append(out, "{", 1);
    status_json_text(out, "memory", m->text, 1);
    status_json_text(out, "memory_detail", m->detail, 0);
    buf_append(out, "}", 1);
    status_json_key(out, "chart", 0);
    buf_append(out, "{", 1);
    status_json_text(out, "used", m->used_bar, 1);
    status_json_text(out, "reserved", m->reserved_bar, 0);
    buf_puts(out, "}}}");
}

void status_json(const struct status_input *in, struct buf *out)
{
    struct status_page p;
    status_page_read(in, &p);
    buf_append(out, "{", 1);
    status_json_num(out, "time", in->wall, 1);
    status_json_num(out, "history_step_seconds", history_step(in->hist), 0);
    status_json_num(out, "history_slots", HISTORY_SLOTS, 0);
    status_json_key(out, "browser", 0);
    if (p.have_browser)
        status_json_string(out, p.browser);
    else
        buf_puts(out, "null");
    status_json_key(out, "children", 0);
    buf_append(out, "[", 1);
    for (size_t i = 0; i < history_children(in->hist); i++) {
        struct status_child c;
        status_child_read(in, i, &c);
        if (i)
            buf_append(out, ",", 1);
        status_json_child(out, &c);
        status_child_fini(&c);
    }
    buf_append(out, "]", 1);

    status_json_key(out, "latency", 0);
    buf_append(out, "{", 1);
    status_json_num(out, "window_seconds", HISTORY_LATENCY_WINDOW_S, 1);
    status_json_num(out, "count", (double)p.nlat, 0);
    status_json_num(out, "in_flight", p.in_flight, 0);
    status_json_num(out, "p50_seconds", p.p50, 0);
    status_json_num(out, "p90_seconds", p.p90, 0);
    status_json_num(out, "p99_seconds", p.p99, 0);
    status_json_key(out, "recent", 0);
    buf_append(out, "[", 1);
    for (size_t i = 0; i < p.nlat; i++) {
        buf_puts(out, i ? ",[" : "[");
        status_json_number(out, p.lat[i].seconds);
        buf_printf(out, ",%u]", p.lat[i].status);
    }
    buf_append(out, "]", 1);
    status_json_key(out, "view", 0);
    buf_append(out, "{", 1);
    status_json_key(out, "cells", 1);
    buf_append(out, "{", 1);
    status_json_text(out, "latency", p.latency_text, 1);
    status_json_text(out, "latency_detail", p.latency_detail, 0);
    buf_append(out, "}", 1);
    status_json_key(out, "chart", 0);
    buf_append(out, "{", 1);
    status_json_text(out, "ok", p.ok.data ? p.ok.data : "", 1);
    status_json_text(out, "client", p.client.data ? p.client.data : "", 0);
    status_json_text(out, "server", p.server.data ? p.server.data : "", 0);
    buf_puts(out, "}}}");

    struct memview m;
    memview_read(in->reg, &m);
    status_json_memory(out, &m);

    status_json_key(out, "view", 0);
    buf_append(out, "{", 1);
    status_json_key(out, "cells", 1);
    buf_append(out, "{", 1);
    status_json_text(out, "browser", p.have_browser ? p.browser : "not reported yet", 1);
    status_json_text(out, "updated", p.updated, 0);
    buf_puts(out, "}}}\n");
    status_page_fini(&p);
}
