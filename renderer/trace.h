/* OpenTelemetry traces of renders ([tracing], docs/operations.md
 * "Tracing"): W3C trace context in (the request's traceparent) and out (the
 * page's own requests to its origin), one SERVER span per render request
 * with a child span per step, exported as OTLP/HTTP JSON by a thread of
 * its own (trace_export.c) that a render never waits on. trace.c is pure:
 * parsing, formatting, the origin check and the OTLP encoding. */
#ifndef RV_TRACE_H
#define RV_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ingest.h"

#define TRACE_ID_BYTES 16
#define TRACE_SPAN_BYTES 8
/* "00-" trace id "-" span id "-" flags */
#define TRACE_PARENT_LEN 55
/* W3C: a tracestate of up to 512 characters must be passed on whole. */
#define TRACE_STATE_MAX 512
#define TRACE_FLAG_SAMPLED 0x01
/* As many as a render has steps (render.h's RENDER_STEPS_MAX). */
#define TRACE_STEPS_MAX 12
#define TRACE_HOST_MAX 127
#define TRACE_PATH_MAX 255
#define TRACE_ERROR_MAX 159

struct trace_ctx {
    uint8_t trace_id[TRACE_ID_BYTES];
    uint8_t span_id[TRACE_SPAN_BYTES];
    uint8_t flags;
};

struct trace_step {
    const char *name; /* a step label value (names.h): a string constant */
    int64_t start_ns, end_ns; /* Unix time */
    uint8_t span_id[TRACE_SPAN_BYTES];
};

/* One render request's spans: what the exporter thread needs, copied. */
struct trace_render {
    struct trace_ctx ctx;               /* the render span's own */
    uint8_t parent_id[TRACE_SPAN_BYTES]; /* all zero: a root span */
    char state[TRACE_STATE_MAX + 1];    /* the incoming tracestate, "" none */
    const char *route;                  /* "/render" or "/render/csv" */
    int64_t start_ns, end_ns;           /* Unix time */
    unsigned status;                    /* the HTTP answer's */
    char host[TRACE_HOST_MAX + 1];      /* the page's host[:port], "" before the query was read */
    char path[TRACE_PATH_MAX + 1];      /* the page's path, never its query */
    int width, height;                  /* 0: not known */
    const char *encoding;               /* NULL: not known */
    int browser;                        /* -1: none */
    unsigned tries;
    char error[TRACE_ERROR_MAX + 1];    /* "" none */
    struct trace_step steps[TRACE_STEPS_MAX];
    unsigned nsteps;
};

/* 0 and *out filled from a traceparent header, or -EINVAL (then the
 * request starts a new trace): version 00 exactly 55 characters, a later
 * version at least that with '-' after, version ff refused, lower-case hex
 * only, trace and parent ids not all zero. */
int trace_parent_parse(const char *text, struct trace_ctx *out);
/* out holds TRACE_PARENT_LEN + 1 bytes. */
void trace_parent_format(const struct trace_ctx *c, char *out);
/* 1 when text may be passed on as tracestate (at most TRACE_STATE_MAX
 * printable ASCII characters, not empty). */
int trace_state_ok(const char *text);
/* 1 when url (len bytes) has the scheme, host and port of origin_url (a
 * URL query_parse accepted), default ports filled in, case ignored. */
int trace_same_origin(const char *url, size_t len, const char *origin_url);
/* Fill buf with random bytes, never all zero (an invalid id). */
void trace_random_id(uint8_t *buf, size_t len);

/* The OTLP/HTTP JSON body (ExportTraceServiceRequest) of n renders' spans,
 * malloc'd and NUL-terminated. */
char *trace_otlp_json(const char *service_name, const struct trace_render *r, size_t n, size_t *len);

struct tracer;

/* NULL when tracing is off ([tracing] endpoint = "") or cannot start
 * (errno set, logged). Starts the exporter thread. */
struct tracer *tracer_new(const struct config *cfg);
/* Sends what is queued (within the export timeout), stops the thread. */
void tracer_free(struct tracer *t);
/* The render span of a request that came with traceparent and tracestate
 * (either NULL): its parent honoured, its sampling decided. Returns 1 when
 * sampled (its spans are to be exported), else 0. Any thread. */
int tracer_begin(struct tracer *t, const char *traceparent, const char *tracestate, struct trace_render *r);
/* Queue a finished render's spans for the exporter thread, or count them
 * dropped when the queue is full. Never blocks on the collector. */
void tracer_submit(struct tracer *t, const struct trace_render *r);
/* Spans dropped so far: queue full, export failed. */
void tracer_dropped(struct tracer *t, unsigned long long *queue_full, unsigned long long *failed);
/* The renderer's tracer's drops as counter lines (nothing when tracing is
 * off), for a render's report. Any thread while the tracer lives. */
void tracer_report(struct ingest_buf *ib);

#endif
