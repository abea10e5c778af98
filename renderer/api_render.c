/* /render and /render/csv: the token, the request's limits, the query,
 * the hand-over to the browser thread (jobs_submit) with the connection
 * suspended until the answer, a client that goes away meanwhile, the 429s,
 * and the request metrics and log line of every /render* request. Runs on
 * the HTTP thread, but api_job_done (the browser thread's). A request's job
 * is the browser thread's from jobs_submit to api_job_done, the HTTP
 * thread's before and after; api_render_fini frees what it holds. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "api_int.h"
#include "clock.h"
#include "jobs.h"
#include "log.h"
#include "render.h"
#include "reqlog.h"
#include "xalloc.h"

/* Memory frees up more slowly than a render slot: ask for a longer wait. */
#define API_RETRY_AFTER_MEMORY "5"
/* Draining at shutdown: another instance can take it at once. */
#define API_RETRY_AFTER_DRAINING "1"
/* Limits on the query (docs/configuration.md, "Limits"). */
#define API_MAX_PARAMS 64
#define API_QUERY_MAX (16 * 1024)   /* keys and values, percent-decoded, summed */

/* A 429: refused for want of capacity or of memory, counted by reason. */
static enum MHD_Result api_refuse(struct api_req *rq, int memory, const char *why, const char *retry_after)
{
    struct api *a = rq->api;
    unsigned long long *n = memory ? &a->refused_memory : &a->refused_capacity;
    (*n)++;
    const char *labels[] = { NAMES_LABEL_REASON, names_refused[memory ? NAMES_REFUSED_MEMORY : NAMES_REFUSED_CAPACITY],
                             NULL };
    api_report(a, NAMES_FAMILY_REFUSED, labels, (double)*n);
    return api_send_error_retry(rq, MHD_HTTP_TOO_MANY_REQUESTS, why, retry_after);
}

struct api_params {
    struct query_param p[API_MAX_PARAMS];
    size_t n;
    size_t bytes;
    int too_many;
};

static enum MHD_Result api_param_cb(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_len,
                                    const char *value, size_t value_len)
{
    (void)kind;
    struct api_params *ps = cls;
    if (ps->n == API_MAX_PARAMS) {
        ps->too_many = 1;
        return MHD_NO;
    }
    ps->p[ps->n++] = (struct query_param){ key, key_len, value, value_len };
    ps->bytes += key_len + (value ? value_len : 0);
    return MHD_YES;
}

/* The browser thread: the answer is in rq->job; wake the connection. */
static void api_job_done(struct job *j)
{
    struct api_req *rq = j->owner;
    struct api *a = rq->api;
    rq->answered = 1;
    MHD_resume_connection(rq->conn);
    /* rq is the HTTP thread's again, and may be freed any time now. */
    api_wake(a);
}

/* ---- a client that goes away ------------------------------------------------
 * While its render runs the connection is suspended, and libmicrohttpd
 * 0.9.75 does not look at a suspended connection's socket at all: neither
 * NOTIFY_COMPLETED nor NOTIFY_CONNECTION fires when its client closes (both
 * come only after the resume), and it never times out. So the HTTP thread
 * watches the socket itself, in its own epoll set, for the peer's hangup:
 * EPOLLRDHUP (closed, or shut down its sending side, which nginx takes for
 * a client gone too) and EPOLLHUP/EPOLLERR (reset), with no EPOLLIN, so a
 * pipelined request is no hangup. No periodic peeking is needed. The fd
 * stays MHD's: it is watched from the submit to the handler's call after
 * the resume (or the completion), and MHD closes it only inside MHD_run,
 * on this same thread, after both. */
static void api_watch(struct api *a, struct api_req *rq)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return;
    struct epoll_event ev = { .events = EPOLLRDHUP, .data.ptr = rq };
    if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, ci->connect_fd, &ev) < 0) {
        log_warn_errno(-errno, "cannot watch the client of a render; it is not cancelled if it goes");
        return;
    }
    rq->fd = ci->connect_fd;
    rq->watched = 1;
}

static void api_unwatch(struct api *a, struct api_req *rq)
{
    if (!rq->watched)
        return;
    epoll_ctl(a->epfd, EPOLL_CTL_DEL, rq->fd, NULL);
    rq->watched = 0;
}

void api_client_gone(struct api *a, struct api_req *rq)
{
    api_unwatch(a, rq);
    rq->gone_ns = clock_now_ns();
    /* -EALREADY: the answer is on its way; it is counted as 499 all the same. */
    jobs_cancel(a->jobs, &rq->job);
}

/* host[:port] of a URL query_parse accepted (no user info), for the log. */
static void api_url_host(const char *url, char *out, size_t size)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    snprintf(out, size, "%.*s", (int)strcspn(p, "/?#"), p);
}

enum MHD_Result api_render_answer(struct api_req *rq)
{
    struct job *j = &rq->job;
    api_unwatch(rq->api, rq);
    /* Nobody reads it: an answer to close the request quietly, and a
     * client that only shut down its sending side learns why. */
    if (rq->gone_ns)
        return api_send_error(rq, 499, "the client went away");
    if (j->status == 200) {
        struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(j->len, j->body, free);
        if (!resp)
            return MHD_NO;
        j->body = NULL;
        if (j->filename) {
            /* render.c kept only " ._()-", letters and digits: safe to quote. */
            char disposition[64 + RENDER_FILENAME_MAX];
            snprintf(disposition, sizeof(disposition), "attachment; filename=\"%s\"", j->filename);
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition);
        }
        return api_send(rq, 200, j->content_type, resp);
    }
    /* Its timeout ran out while it waited for memory: come back later. */
    if (j->status == MHD_HTTP_TOO_MANY_REQUESTS)
        return api_refuse(rq, 1, j->error ? j->error : "not enough memory", API_RETRY_AFTER_MEMORY);
    return api_send_error(rq, j->status, j->error ? j->error : "render failed");
}

void api_tokens_set(struct api *a, char **tokens)
{
    pthread_mutex_lock(&a->tokens_lock);
    char **old = a->tokens;
    a->tokens = tokens;
    pthread_mutex_unlock(&a->tokens_lock);
    config_tokens_free(old);
}

/* Compared with every token, in constant time each and without stopping at
 * a match: the time taken tells how many tokens there are, not which one
 * (or how much of one) matched. */
static bool api_token_valid(struct api *a, const char *given)
{
    int ok = 0;
    pthread_mutex_lock(&a->tokens_lock);
    for (size_t i = 0; a->tokens[i]; i++)
        ok |= query_token_equal(given, a->tokens[i]);
    pthread_mutex_unlock(&a->tokens_lock);
    return ok != 0;
}

enum MHD_Result api_render(struct api_req *rq, enum query_route route)
{
    struct api *a = rq->api;
    const char *token = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "X-Auth-Token");
    if (!api_token_valid(a, token))
        return api_send_error(rq, MHD_HTTP_UNAUTHORIZED, "X-Auth-Token: missing or wrong");
    /* After the token: a client without it cannot fill the span queue. */
    api_trace_begin(rq, route);

    struct api_params ps = { .n = 0 };
    MHD_get_connection_values_n(rq->conn, MHD_GET_ARGUMENT_KIND, api_param_cb, &ps);
    char why[512];
    if (ps.too_many) {
        snprintf(why, sizeof(why), "query: more than %d parameters", API_MAX_PARAMS);
        return api_send_error(rq, MHD_HTTP_BAD_REQUEST, why);
    }
    if (ps.bytes > API_QUERY_MAX) {
        snprintf(why, sizeof(why), "query: %zu bytes of parameters (decoded), at most %d", ps.bytes, API_QUERY_MAX);
        return api_send_error(rq, MHD_HTTP_URI_TOO_LONG, why);
    }
    const char *lang = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_LANGUAGE);
    int rc = query_parse(&rq->job.req, route, ps.p, ps.n, lang,
                         (const char *const *)a->cfg->renderer.allowed_hosts, a->cfg->renderer.timezone,
                         why, sizeof(why));
    if (rc == -EACCES)
        return api_send_error(rq, MHD_HTTP_FORBIDDEN, why);
    if (rc < 0)
        return api_send_error(rq, MHD_HTTP_BAD_REQUEST, why);
    api_trace_request(rq);

    rq->job.req.id = ++a->render_seq;
    /* Admission by memory happens in the queue (jobs.c): a render waits
     * there, within its timeout, until the budget has room for it. */
    rq->job.deadline_ns = rq->start_ns + (int64_t)rq->job.req.timeout_ms * CLOCK_NS_PER_MS;
    rq->job.done = api_job_done;
    rq->job.owner = rq;
    /* Suspend first: the browser thread may resume before jobs_submit returns. */
    MHD_suspend_connection(rq->conn);
    if ((rc = jobs_submit(a->jobs, &rq->job)) < 0) {
        MHD_resume_connection(rq->conn);
        if (rc == -ESHUTDOWN)
            return api_send_error_retry(rq, MHD_HTTP_SERVICE_UNAVAILABLE,
                                        "the renderer is shutting down and takes no new render",
                                        API_RETRY_AFTER_DRAINING);
        return api_refuse(rq, 0, "too many renders in progress", "1");
    }
    rq->submitted = 1;
    api_watch(a, rq);
    return MHD_YES;
}

/* The request's one log line (reqlog.h), as it is counted in the metrics. */
static void api_log_request(struct api_req *rq, unsigned status, int64_t now)
{
    const struct job *j = &rq->job;
    int ran = rq->submitted && rq->answered; /* the job's answer fields are ours to read */
    struct reqlog e = {
        .route = rq->route,
        .status = status,
        .req = j->req.url ? &j->req : NULL,
        .bytes = status == 200 && ran ? j->len : 0,
        .duration_ns = now - rq->start_ns,
        /* A client gone before its answer was even tried has none set. */
        .error = rq->error ? rq->error : rq->gone_ns ? "the client went away" : NULL,
        .submitted = ran,
        .queue_ns = ran && j->began_ns ? j->began_ns - rq->start_ns : -1,
        .browser = ran ? j->browser : -1,
        .tries = ran ? (unsigned)j->tries : 0,
        .steps = j->steps,
        .nsteps = ran ? j->nsteps : 0,
        .page = ran ? j->page_kind : NULL,
        .rule_ms = j->rule_ms,
        .render_id = j->req.url ? j->req.id : 0,
        .page_log = ran && j->page_log,
        .page_errors = j->page_errors,
        .page_failed = j->page_failed,
        .gone = rq->gone_ns != 0,
        .ran_ns = rq->gone_ns - rq->start_ns,
        .stop_ns = now - rq->gone_ns,
        .render_status = ran ? j->status : 0,
    };
    char host[128];
    if (e.req) {
        api_url_host(j->req.url, host, sizeof(host));
        e.url_host = host;
    }
    char line[1024];
    reqlog_format(line, sizeof(line), &e);
    log_info("%s", line);
}

/* The first handler call of any request: is it one the request metrics count? */
void api_render_begin(struct api_req *rq, const char *url)
{
    struct api *a = rq->api;
    /* The request metrics count renders (any other /render/ path is a
     * 404 a client meant as one), not /render/version (docs/metrics.md). */
    rq->is_render = strncmp(url, "/render", 7) == 0 && (url[7] == '\0' || url[7] == '/') &&
                    strcmp(url, "/render/version") != 0;
    rq->route = strcmp(url, "/render") == 0 ? "render" : strcmp(url, "/render/csv") == 0 ? "csv" : NULL;
    if (rq->is_render) {
        a->in_flight++;
        api_report(a, NAMES_FAMILY_IN_FLIGHT, NULL, a->in_flight);
    }
}

/* MHD's completion of any request: its log line and metrics if it was a render. */
void api_render_end(struct api_req *rq, enum MHD_RequestTerminationCode toe)
{
    struct api *a = rq->api;
    api_unwatch(a, rq);
    if (!rq->is_render)
        return;
    /* Sent in full, or the client went first: 499, as nginx counts it. */
    unsigned status = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && rq->status ? rq->status : 499;
    if (rq->gone_ns)
        status = 499;
    int64_t now = clock_now_ns();
    if (rq->route) {
        api_log_request(rq, status, now);
        api_trace_end(rq, status, now);
    }
    char code[16];
    snprintf(code, sizeof(code), "%u", status);
    const char *labels[] = { NAMES_LABEL_STATUS_CODE, code, NULL };
    api_report(a, NAMES_FAMILY_REQUEST_DURATION, labels,
               (double)(now - rq->start_ns) / CLOCK_NS_PER_S);
    a->in_flight--;
    api_report(a, NAMES_FAMILY_IN_FLIGHT, NULL, a->in_flight);
}

void api_render_fini(struct api_req *rq)
{
    query_fini(&rq->job.req);
    api_trace_fini(rq);
    free(rq->job.body);
    free(rq->job.error);
    free(rq->job.filename);
}
