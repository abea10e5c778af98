/* A render request's span (trace.h), on the HTTP thread: begun with the
 * request's traceparent when /render is asked, its context handed to the
 * render for the page's requests, and finished with the answer, its steps
 * taken from the job. Only when [tracing] endpoint is set (api.tracer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_int.h"
#include "clock.h"
#include "jobs.h"
#include "pagetext.h"
#include "trace.h"
#include "xalloc.h"

_Static_assert(TRACE_STEPS_MAX == RENDER_STEPS_MAX, "a render's steps fit its trace");
_Static_assert(TRACE_PARENT_LEN == QUERY_TRACEPARENT_LEN, "a traceparent fits a render request");

void api_trace_begin(struct api_req *rq, enum query_route route)
{
    struct api *a = rq->api;
    if (!a->tracer || rq->trace)
        return;
    struct trace_render *r = xcalloc(1, sizeof(*r));
    const char *parent = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "traceparent");
    const char *state = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "tracestate");
    rq->traced = tracer_begin(a->tracer, parent, state, r);
    r->route = route == QUERY_ROUTE_CSV ? "/render/csv" : "/render";
    r->browser = -1;
    rq->trace = r;
}

/* After query_parse: what the render passes on to the page. */
void api_trace_request(struct api_req *rq)
{
    struct trace_render *r = rq->trace;
    if (!r)
        return;
    trace_parent_format(&r->ctx, rq->job.req.traceparent);
    rq->job.req.tracestate = r->state[0] ? r->state : NULL;
}

void api_trace_header(struct api_req *rq, struct MHD_Response *resp)
{
    if (!rq->trace)
        return;
    char tp[TRACE_PARENT_LEN + 1];
    trace_parent_format(&rq->trace->ctx, tp);
    MHD_add_response_header(resp, "traceparent", tp);
}

static int64_t api_trace_unix(int64_t mono_ns, int64_t offset)
{
    return mono_ns + offset;
}

void api_trace_end(struct api_req *rq, unsigned status, int64_t now)
{
    struct trace_render *r = rq->trace;
    if (!r || !rq->traced)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t offset = (int64_t)ts.tv_sec * CLOCK_NS_PER_S + ts.tv_nsec - clock_now_ns();
    const struct job *j = &rq->job;
    int ran = rq->submitted && rq->answered; /* the job's answer fields are ours to read */
    r->start_ns = api_trace_unix(rq->start_ns, offset);
    r->end_ns = api_trace_unix(now, offset);
    r->status = status;
    if (j->req.url) {
        /* pagelog's reading of a URL: no user info, no query, the key
         * redacted in the path */
        pagetext_url(j->req.url, j->req.render_key, r->host, sizeof(r->host), r->path, sizeof(r->path),
                     TRACE_PATH_MAX);
        if (!r->path[0])
            snprintf(r->path, sizeof(r->path), "/");
        r->width = j->req.width;
        r->height = j->req.height > 0 ? j->req.height : 0;
        r->encoding = query_encoding_name(j->req.encoding);
    }
    const char *error = rq->error ? rq->error : rq->gone_ns ? "the client went away" : NULL;
    snprintf(r->error, sizeof(r->error), "%s", error ? error : "");
    if (ran) {
        r->browser = j->browser;
        r->tries = (unsigned)j->tries;
        int64_t at = j->steps_ns;
        for (unsigned i = 0; i < j->nsteps && i < TRACE_STEPS_MAX && at; i++) {
            struct trace_step *st = &r->steps[r->nsteps++];
            int64_t took = (int64_t)(j->steps[i].seconds * CLOCK_NS_PER_S);
            st->name = j->steps[i].name;
            st->start_ns = api_trace_unix(at, offset);
            st->end_ns = api_trace_unix(at + took, offset);
            trace_random_id(st->span_id, TRACE_SPAN_BYTES);
            at += took;
        }
    }
    tracer_submit(rq->api->tracer, r);
}

void api_trace_fini(struct api_req *rq)
{
    free(rq->trace);
    rq->trace = NULL;
}
