/* The request's log line, built apart from the HTTP code so that a test can
 * read it: one "render request" record per /render or /render/csv request,
 * in the key=value form log_write turns into text or JSON (every figure a
 * number there). */
#include "reqlog.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "names.h"

/* The longest reason kept from an error answer. */
#define REQLOG_ERROR_MAX 200

struct reqlog_out {
    char *buf;
    size_t size, len;
};

static void reqlog_add(struct reqlog_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void reqlog_add(struct reqlog_out *o, const char *fmt, ...)
{
    if (o->len + 1 >= o->size)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n < o->size - o->len ? (size_t)n : o->size - o->len - 1;
}

static long long reqlog_ms(int64_t ns)
{
    return (long long)((ns + CLOCK_NS_PER_MS / 2) / CLOCK_NS_PER_MS);
}

/* The reason of an error answer, made safe for one quoted log value: the
 * value a client sent, which query.c quotes after ", got " and which may be
 * a token, a render key or a URL, is left out; quotes become apostrophes,
 * backslashes slashes, control characters go. */
static void reqlog_reason(char *out, size_t size, const char *why)
{
    const char *end = strstr(why, ", got \"");
    size_t n = end ? (size_t)(end - why) : strlen(why);
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < size; i++) {
        unsigned char c = (unsigned char)why[i];
        if (c < 0x20 || c == 0x7f)
            continue;
        out[o++] = c == '"' ? '\'' : c == '\\' ? '/' : (char)c;
    }
    out[o] = '\0';
}

size_t reqlog_format(char *buf, size_t size, const struct reqlog *e)
{
    struct reqlog_out o = { buf, size, 0 };
    if (size == 0)
        return 0;
    buf[0] = '\0';
    reqlog_add(&o, "render request route=%s status=%u", e->route, e->status);
    if (e->render_id)
        reqlog_add(&o, " render_id=%llu", e->render_id);
    if (e->url_host)
        reqlog_add(&o, " url_host=\"%s\"", e->url_host);
    if (e->req) {
        reqlog_add(&o, " encoding=%s", query_encoding_name(e->req->encoding));
        if (e->req->encoding != QUERY_ENCODING_CSV)
            reqlog_add(&o, " width=%d height=%d", e->req->width, e->req->height);
    }
    reqlog_add(&o, " bytes=%zu duration_ms=%lld", e->bytes, reqlog_ms(e->duration_ns));
    if (e->submitted) {
        if (e->queue_ns >= 0)
            reqlog_add(&o, " queue_ms=%lld", reqlog_ms(e->queue_ns));
        if (e->browser >= 0)
            reqlog_add(&o, " browser=%d", e->browser);
        reqlog_add(&o, " tries=%u", e->tries);
        for (unsigned i = 0; i < e->nsteps; i++)
            reqlog_add(&o, " step_%s_ms=%lld", e->steps[i].name,
                       reqlog_ms((int64_t)(e->steps[i].seconds * CLOCK_NS_PER_S)));
        if (e->page) {
            reqlog_add(&o, " page=%s", e->page);
            for (int i = 0; i < NAMES_RULE_COUNT; i++)
                if (e->rule_ms && e->rule_ms[i] >= 0.5)
                    reqlog_add(&o, " wait_%s_ms=%lld", names_rules[i],
                               reqlog_ms((int64_t)(e->rule_ms[i] * CLOCK_NS_PER_MS)));
        }
        if (e->page_log)
            reqlog_add(&o, " page_errors=%u page_failed=%u", e->page_errors, e->page_failed);
    }
    if (e->gone)
        reqlog_add(&o, " ran_ms=%lld stop_ms=%lld render_status=%u", reqlog_ms(e->ran_ns), reqlog_ms(e->stop_ns),
                   e->render_status);
    if (e->error && e->status != 200) {
        char why[REQLOG_ERROR_MAX + 1];
        reqlog_reason(why, sizeof(why), e->error);
        reqlog_add(&o, " error=\"%s\"", why);
    }
    return o.len;
}
