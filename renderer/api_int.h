/* What the parts of the renderer's HTTP API share: api.c (routing, the
 * HTTP thread and its loop), api_render.c (/render), api_metrics.c (the
 * /metrics proxy) and api_ctl.c (the control socket). Everything here runs
 * on the HTTP thread, but for api_job_done (the browser thread's call). */
#ifndef RV_API_INT_H
#define RV_API_INT_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "api.h"
#include "conns.h"
#include "httpc.h"
#include "ingest.h"
#include "names.h"
#include "query.h"
#include "tls.h"

#define API_TEXT "text/plain; charset=utf-8"
#define API_JSON "application/json"
/* /healthz says 500, and the health probe's answer "stalled", when the
 * browser thread has been stuck this long: no render would finish, and the
 * supervisor restarts the renderer. */
#define API_STALLED_MS 5000

struct api_req;
struct trace_render;
struct tracer;

struct api {
    struct MHD_Daemon *daemon;
    struct tls_server *tls; /* NULL: plain HTTP */
    const struct config *cfg;
    struct jobs *jobs;
    struct browser_pool *pool;
    struct ingest_sender ingest; /* this thread's own sender */
    char *exporter_path;
    unsigned in_flight;
    unsigned long long render_seq; /* the last render_request id given */
    unsigned long long refused_memory, refused_capacity; /* 429s */
    int epfd;    /* the HTTP thread's: MHD's epoll fd, wake_fd, watched clients */
    int wake_fd; /* eventfd: a connection was resumed, or api_stop */
    int ctl_fd;  /* renderer.ctl: the supervisor's "drain N", or -1 */
    char *supervisor_ctl; /* where "hello" and health answers go */
    int64_t hello_at_ns;  /* when to say "hello" next while pipes are missing */
    atomic_int stopping;
    atomic_int draining; /* api_drain: no new render, every connection closes */
    /* Slow and greedy clients (conns.h): connections closed before a
     * request was read, by enum names_conn_close, in all and since the
     * last warning about them. */
    struct conns *conns;
    unsigned long long closed[NAMES_CONN_COUNT];
    unsigned long long closed_logged[NAMES_CONN_COUNT];
    int64_t closed_log_ns;
    struct api_req *proxies; /* scrapes waiting for the exporter */
    struct tracer *tracer;   /* NULL: tracing off */
    pthread_t thread;
    /* The tokens a render may carry (NULL-terminated, never empty): set at
     * start and by api_tokens_set on main's SIGHUP, read by the HTTP thread. */
    pthread_mutex_t tokens_lock;
    char **tokens;
};

/* A scrape of /metrics waiting for the exporter (api_metrics.c). */
struct api_proxy {
    int fd; /* the exporter's socket, in the epoll set; -1 when done */
    struct httpc http;
    int64_t deadline_ns;
    unsigned status; /* 200, 502, 503 or 504, once done */
    struct api_req *prev, *next; /* in api.proxies while fd >= 0 */
};

/* One request, from its first handler call to MHD's completion callback. */
struct api_req {
    struct api *api;
    struct MHD_Connection *conn;
    int64_t start_ns;
    int is_render; /* counted in the request metrics */
    unsigned status;
    struct job job;
    int submitted;
    int answered; /* the browser thread is done with job */
    int watched;  /* fd is in the epoll set, for the client's hangup */
    int fd;
    int64_t gone_ns; /* when the client went away, or 0 */
    int proxied;     /* a /metrics scrape; proxy is in use */
    struct api_proxy proxy;
    const char *route; /* "render" or "csv": the request gets its log line (reqlog.h) */
    char *error;       /* the reason of an error answer, for that line */
    struct trace_render *trace; /* its span (api_trace.c), or NULL: tracing off */
    int traced;                 /* sampled: the span is exported */
};

/* api.c: answers, reports, the loop's wake-up. */
void api_report(struct api *a, const char *family, const char *const *labels, double value);
enum MHD_Result api_send(struct api_req *rq, unsigned status, const char *type, struct MHD_Response *resp);
enum MHD_Result api_send_copy(struct api_req *rq, unsigned status, const char *type, const char *text);
/* {"error":why}, with Retry-After when retry_after is not NULL. */
enum MHD_Result api_send_error_retry(struct api_req *rq, unsigned status, const char *why, const char *retry_after);
enum MHD_Result api_send_error(struct api_req *rq, unsigned status, const char *why);
void api_wake(struct api *a);

/* api_render.c: /render and /render/csv, and the request metrics. */
void api_render_begin(struct api_req *rq, const char *url);
enum MHD_Result api_render(struct api_req *rq, enum query_route route);
enum MHD_Result api_render_answer(struct api_req *rq);
void api_render_end(struct api_req *rq, enum MHD_RequestTerminationCode toe);
void api_render_fini(struct api_req *rq);
void api_client_gone(struct api *a, struct api_req *rq);

/* api_trace.c: a render request's span (trace.h). */
void api_trace_begin(struct api_req *rq, enum query_route route);
void api_trace_request(struct api_req *rq);
void api_trace_end(struct api_req *rq, unsigned status, int64_t now);
void api_trace_fini(struct api_req *rq);
/* traceparent on a traced request's answer: the trace to look up. */
void api_trace_header(struct api_req *rq, struct MHD_Response *resp);

/* api_metrics.c: /metrics, proxied to the exporter. */
enum MHD_Result api_metrics(struct api_req *rq);
enum MHD_Result api_metrics_answer(struct api_req *rq);
void api_metrics_event(struct api *a, struct api_req *rq, uint32_t events);
/* Scrapes past their deadline get a 504; the nearest deadline left, or 0. */
int64_t api_metrics_expire(struct api *a, int64_t now);
/* At shutdown: every scrape waiting gets a 503. */
void api_metrics_abort_all(struct api *a);
void api_metrics_fini(struct api_req *rq);

/* api_ctl.c: renderer.ctl, the supervisor's lines. */
int64_t api_hello(struct api *a, int64_t now);
void api_ctl_read(struct api *a);

#endif
