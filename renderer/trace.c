/* The pure half of tracing: W3C trace context (https://www.w3.org/TR/trace-context/)
 * read and written, the origin the page's traceparent may go to, and the
 * OTLP/HTTP JSON encoding of a render's spans (opentelemetry-proto's
 * ExportTraceServiceRequest, with ids as hex as OTLP/JSON specifies). The
 * page URL's parts a span carries are pagetext_url's (api_trace.c). Runs on
 * any thread. */
#include "trace.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <jansson.h>

#include "xalloc.h"

static int trace_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* upper case too: the spec allows lower case only */
}

/* n bytes from 2n lower-case hex digits; -EINVAL otherwise. */
static int trace_hex_read(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = trace_hex_value(s[2 * i]), lo = trace_hex_value(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static void trace_hex_write(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int trace_all_zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

int trace_parent_parse(const char *text, struct trace_ctx *out)
{
    if (!text)
        return -EINVAL;
    size_t len = strnlen(text, TRACE_PARENT_LEN + 2);
    uint8_t version;
    if (len < TRACE_PARENT_LEN || trace_hex_read(text, &version, 1) < 0 || version == 0xff)
        return -EINVAL;
    if (version == 0 && len != TRACE_PARENT_LEN)
        return -EINVAL;
    if (len > TRACE_PARENT_LEN && text[TRACE_PARENT_LEN] != '-')
        return -EINVAL;
    if (text[2] != '-' || text[35] != '-' || text[52] != '-')
        return -EINVAL;
    struct trace_ctx c;
    if (trace_hex_read(text + 3, c.trace_id, TRACE_ID_BYTES) < 0 ||
        trace_hex_read(text + 36, c.span_id, TRACE_SPAN_BYTES) < 0 || trace_hex_read(text + 53, &c.flags, 1) < 0)
        return -EINVAL;
    if (trace_all_zero(c.trace_id, TRACE_ID_BYTES) || trace_all_zero(c.span_id, TRACE_SPAN_BYTES))
        return -EINVAL;
    *out = c;
    return 0;
}

void trace_parent_format(const struct trace_ctx *c, char *out)
{
    memcpy(out, "00-", 3);
    trace_hex_write(c->trace_id, TRACE_ID_BYTES, out + 3);
    out[35] = '-';
    trace_hex_write(c->span_id, TRACE_SPAN_BYTES, out + 36);
    out[52] = '-';
    trace_hex_write(&c->flags, 1, out + 53);
}

int trace_state_ok(const char *text)
{
    if (!text || !text[0])
        return 0;
    size_t n = 0;
    for (const char *s = text; *s; s++, n++)
        if (n >= TRACE_STATE_MAX || *s < 0x20 || *s > 0x7e)
            return 0;
    return 1;
}

void trace_random_id(uint8_t *buf, size_t len)
{
    do {
        size_t got = 0;
        while (got < len) {
            ssize_t n = getrandom(buf + got, len - got, 0);
            if (n > 0)
                got += (size_t)n;
            else if (errno != EINTR)
                abort(); /* the kernel's random source is gone: nothing sane to do */
        }
    } while (trace_all_zero(buf, len));
}

/* ---- URLs ----------------------------------------------------------------------- */

struct trace_origin {
    int https;
    const char *host;
    size_t host_len;
    unsigned port;
};

/* scheme://host[:port] of url (len bytes); -EINVAL for anything else
 * (data:, blob:, about:, a malformed URL). */
static int trace_origin_read(const char *url, size_t len, struct trace_origin *o)
{
    const char *p;
    if (len >= 7 && strncasecmp(url, "http://", 7) == 0) {
        o->https = 0;
        p = url + 7;
    } else if (len >= 8 && strncasecmp(url, "https://", 8) == 0) {
        o->https = 1;
        p = url + 8;
    } else {
        return -EINVAL;
    }
    const char *end = url + len, *auth_end = p;
    while (auth_end < end && !strchr("/?#", *auth_end))
        auth_end++;
    if (memchr(p, '@', (size_t)(auth_end - p)))
        return -EINVAL; /* never sent credentials: not ours */
    const char *port = NULL;
    if (p < auth_end && *p == '[') {
        const char *close = memchr(p, ']', (size_t)(auth_end - p));
        if (!close)
            return -EINVAL;
        o->host = p;
        o->host_len = (size_t)(close + 1 - p);
        if (close + 1 < auth_end) {
            if (close[1] != ':')
                return -EINVAL;
            port = close + 2;
        }
    } else {
        const char *colon = memchr(p, ':', (size_t)(auth_end - p));
        o->host = p;
        o->host_len = (size_t)((colon ? colon : auth_end) - p);
        if (colon)
            port = colon + 1;
    }
    if (o->host_len == 0)
        return -EINVAL;
    o->port = o->https ? 443 : 80;
    if (port && port < auth_end) {
        unsigned v = 0;
        for (const char *s = port; s < auth_end; s++) {
            if (!isdigit((unsigned char)*s) || v > 65535)
                return -EINVAL;
            v = v * 10 + (unsigned)(*s - '0');
        }
        if (v == 0 || v > 65535)
            return -EINVAL;
        o->port = v;
    }
    return 0;
}

int trace_same_origin(const char *url, size_t len, const char *origin_url)
{
    struct trace_origin a, b;
    if (!url || !origin_url || trace_origin_read(url, len, &a) < 0 ||
        trace_origin_read(origin_url, strlen(origin_url), &b) < 0)
        return 0;
    return a.https == b.https && a.port == b.port && a.host_len == b.host_len &&
           strncasecmp(a.host, b.host, a.host_len) == 0;
}

/* ---- OTLP/JSON ---------------------------------------------------------------- */

/* OTLP's span kinds and status codes (opentelemetry-proto trace.proto). */
#define TRACE_KIND_INTERNAL 1
#define TRACE_KIND_SERVER 2
#define TRACE_STATUS_ERROR 2

static json_t *trace_attr_str(const char *key, const char *value)
{
    return json_pack("{s:s, s:{s:s}}", "key", key, "value", "stringValue", value);
}

/* int64 values are strings in OTLP/JSON (proto3's JSON mapping). */
static json_t *trace_attr_int(const char *key, long long value)
{
    char text[32];
    snprintf(text, sizeof(text), "%lld", value);
    return json_pack("{s:s, s:{s:s}}", "key", key, "value", "intValue", text);
}

static json_t *trace_span(const struct trace_render *r, const uint8_t *span_id, const uint8_t *parent_id,
                          const char *name, int kind, int64_t start_ns, int64_t end_ns, json_t *attrs)
{
    char trace_hex[2 * TRACE_ID_BYTES + 1], span_hex[2 * TRACE_SPAN_BYTES + 1], parent_hex[2 * TRACE_SPAN_BYTES + 1];
    char start[24], end[24];
    trace_hex_write(r->ctx.trace_id, TRACE_ID_BYTES, trace_hex);
    trace_hex_write(span_id, TRACE_SPAN_BYTES, span_hex);
    snprintf(start, sizeof(start), "%" PRId64, start_ns);
    snprintf(end, sizeof(end), "%" PRId64, end_ns);
    json_t *s = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:o}", "traceId", trace_hex, "spanId", span_hex, "name",
                          name, "kind", kind, "startTimeUnixNano", start, "endTimeUnixNano", end, "attributes",
                          attrs);
    if (!s)
        abort();
    if (!trace_all_zero(parent_id, TRACE_SPAN_BYTES)) {
        trace_hex_write(parent_id, TRACE_SPAN_BYTES, parent_hex);
        json_object_set_new(s, "parentSpanId", json_string(parent_hex));
    }
    if (r->state[0])
        json_object_set_new(s, "traceState", json_string(r->state));
    json_object_set_new(s, "flags", json_integer(TRACE_FLAG_SAMPLED));
    return s;
}

static void trace_add(json_t *array, json_t *item)
{
    if (!item || json_array_append_new(array, item) < 0)
        abort();
}

static void trace_render_spans(json_t *spans, const struct trace_render *r)
{
    json_t *attrs = json_array();
    trace_add(attrs, trace_attr_str("http.request.method", "GET"));
    trace_add(attrs, trace_attr_str("http.route", r->route));
    trace_add(attrs, trace_attr_int("http.response.status_code", r->status));
    if (r->host[0]) {
        trace_add(attrs, trace_attr_str("rendervisor.page.host", r->host));
        trace_add(attrs, trace_attr_str("rendervisor.page.path", r->path));
    }
    if (r->width > 0)
        trace_add(attrs, trace_attr_int("rendervisor.width", r->width));
    if (r->height > 0)
        trace_add(attrs, trace_attr_int("rendervisor.height", r->height));
    if (r->encoding)
        trace_add(attrs, trace_attr_str("rendervisor.encoding", r->encoding));
    if (r->browser >= 0)
        trace_add(attrs, trace_attr_int("rendervisor.browser", r->browser));
    if (r->tries)
        trace_add(attrs, trace_attr_int("rendervisor.tries", r->tries));
    json_t *span = trace_span(r, r->ctx.span_id, r->parent_id, "render", TRACE_KIND_SERVER, r->start_ns, r->end_ns,
                              attrs);
    /* OTel's HTTP conventions: a server span is an error for a 5xx only. */
    if (r->status >= 500)
        json_object_set_new(span, "status", json_pack("{s:i, s:s}", "code", TRACE_STATUS_ERROR, "message",
                                                      r->error[0] ? r->error : "render failed"));
    trace_add(spans, span);
    for (unsigned i = 0; i < r->nsteps && i < TRACE_STEPS_MAX; i++) {
        const struct trace_step *st = &r->steps[i];
        json_t *sa = json_array();
        trace_add(sa, trace_attr_str("rendervisor.step", st->name));
        trace_add(spans, trace_span(r, st->span_id, r->ctx.span_id, st->name, TRACE_KIND_INTERNAL, st->start_ns,
                                    st->end_ns, sa));
    }
}

char *trace_otlp_json(const char *service_name, const struct trace_render *r, size_t n, size_t *len)
{
    json_t *spans = json_array();
    for (size_t i = 0; i < n; i++)
        trace_render_spans(spans, &r[i]);
    json_t *resource_attrs = json_array();
    trace_add(resource_attrs, trace_attr_str("service.name", service_name));
    trace_add(resource_attrs, trace_attr_str("service.version", RENDERVISOR_VERSION));
    json_t *root = json_pack("{s:[{s:{s:o}, s:[{s:{s:s, s:s}, s:o}]}]}", "resourceSpans", "resource", "attributes",
                             resource_attrs, "scopeSpans", "scope", "name", "rendervisor-renderer", "version",
                             RENDERVISOR_VERSION, "spans", spans);
    if (!root)
        abort();
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text)
        abort();
    *len = strlen(text);
    return text;
}
