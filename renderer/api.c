/* Grafana's remote-rendering API. This module runs its own HTTP thread,
 * which drives MHD (external epoll mode) from one epoll set, so every
 * handler and completion callback here runs on that one thread: the
 * request metrics need no lock. A render is handed to the browser thread
 * (jobs_submit) and its connection suspended; the browser thread resumes
 * it when the answer is ready, and MHD calls the handler again. While it
 * waits, the client's socket is watched in the same epoll set, so a client
 * that goes away cancels its render (jobs_cancel). */
#include "api.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "clock.h"
#include "conns.h"
#include "ctl.h"
#include "ingest.h"
#include "log.h"
#include "names.h"
#include "render.h"
#include "reqlog.h"
#include "xalloc.h"

#define API_TEXT "text/plain; charset=utf-8"
#define API_JSON "application/json"
/* Memory frees up more slowly than a render slot: ask for a longer wait. */
#define API_RETRY_AFTER_MEMORY "5"
#define API_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* Limits on what a client sends (docs/configuration.md, "Limits"). MHD's
 * per-connection memory bounds a request line and its headers at all (past
 * it, MHD answers 414 or 431 itself); within it, these are checked and
 * answered with JSON that says which one was hit. No endpoint takes a body. */
#define API_CONNECTION_MEMORY (64 * 1024)
#define API_CONNECTIONS_MAX 512 /* in all; [renderer] connections_per_address of them from one address */
#define API_MAX_HEADERS 64
#define API_HEADERS_MAX (16 * 1024) /* names and values, summed */
#define API_MAX_PARAMS 64
#define API_QUERY_MAX (16 * 1024)   /* keys and values, percent-decoded, summed */
#define API_BODY_MAX (64 * 1024)    /* read and dropped; longer is refused unread */
#define API_PROXY_TIMEOUT_MS 3000
#define API_PROXY_MAX (16 * 1024 * 1024)
#define API_EVENTS 32
/* What /render/version answers as "version": Grafana compares it with the
 * reference service's releases to decide what it may ask for (3.4.0 for
 * full-page and scaled images, 3.10.0 for PDF), and we serve that whole API.
 * Our own version goes next to it. */
#define API_COMPAT_VERSION "3.12.0"
/* /healthz says 500, and the health probe's answer "stalled", when the
 * browser thread has been stuck this long: no render would finish, and the
 * supervisor restarts the renderer. */
#define API_STALLED_MS 5000
/* At shutdown, how long the answers of renders in flight (503) may take to go out. */
#define API_DRAIN_MS 2000

struct api {
    struct MHD_Daemon *daemon;
    const struct config *cfg;
    struct jobs *jobs;
    struct browser_pool *pool;
    struct ingest_sender ingest; /* this thread's own sender */
    char *exporter_path;
    unsigned in_flight;
    unsigned long long refused_memory, refused_capacity; /* 429s */
    int epfd;    /* the HTTP thread's: MHD's epoll fd, wake_fd, watched clients */
    int wake_fd; /* eventfd: a connection was resumed, or api_stop */
    int ctl_fd;  /* renderer.ctl: the supervisor's "drain N", or -1 */
    char *supervisor_ctl; /* where "hello" and health answers go */
    int64_t hello_at_ns;  /* when to say "hello" next while pipes are missing */
    atomic_int stopping;
    /* Slow and greedy clients (conns.h): connections closed before a
     * request was read, by enum names_conn_close, in all and since the
     * last warning about them. */
    struct conns *conns;
    unsigned long long closed[NAMES_CONN_COUNT];
    unsigned long long closed_logged[NAMES_CONN_COUNT];
    int64_t closed_log_ns;
    struct api_req *proxies; /* scrapes waiting for the exporter */
    pthread_t thread;
};

struct api_req;

/* A scrape of /metrics waiting for the exporter (api_proxy_start). */
struct api_proxy {
    int fd; /* the exporter's socket, in the epoll set; -1 when done */
    size_t sent;
    struct buf resp;
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
};

static void api_report(struct api *a, const char *family, const char *const *labels, double value)
{
    struct ingest_buf *ib = xmalloc(sizeof(*ib));
    ingest_buf_reset(ib);
    ingest_buf_line(ib, family, labels, value);
    ingest_send(&a->ingest, ib);
    free(ib);
}

static enum MHD_Result api_send(struct api_req *rq, unsigned status, const char *type, struct MHD_Response *resp)
{
    if (!resp)
        return MHD_NO;
    rq->status = status;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    enum MHD_Result rc = MHD_queue_response(rq->conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result api_send_copy(struct api_req *rq, unsigned status, const char *type, const char *text)
{
    size_t len = strlen(text);
    char *data = xmalloc(len + 1);
    memcpy(data, text, len + 1);
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, data, free);
    if (!resp)
        free(data);
    return api_send(rq, status, type, resp);
}

/* {"error":why}, with Retry-After when retry_after is not NULL. */
static enum MHD_Result api_send_error_retry(struct api_req *rq, unsigned status, const char *why,
                                            const char *retry_after)
{
    json_t *o = json_pack("{s:s}", "error", why);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        text = xstrdup("{\"error\":\"unknown\"}");
    size_t len = strlen(text);
    text = xrealloc(text, len + 2);
    memcpy(text + len, "\n", 2);
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len + 1, text, free);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    if (retry_after)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry_after);
    free(rq->error);
    rq->error = xstrdup(why);
    return api_send(rq, status, API_JSON, resp);
}

static enum MHD_Result api_send_error(struct api_req *rq, unsigned status, const char *why)
{
    return api_send_error_retry(rq, status, why, NULL);
}

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

/* ---- /metrics: the exporter's answer over its Unix socket -------------------
 * Fetched without blocking this thread: the connection is suspended, the
 * exporter's socket joins the epoll set, and the answer (or 502/504) is
 * sent on the resume. A stopped exporter costs a scrape API_PROXY_TIMEOUT_MS
 * and costs renders nothing. */

static const char api_proxy_request[] = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";

static void api_proxy_finish(struct api *a, struct api_req *rq, unsigned status, int err)
{
    struct api_proxy *px = &rq->proxy;
    if (px->fd < 0)
        return;
    close(px->fd); /* leaves the epoll set with it */
    px->fd = -1;
    px->status = status;
    if (status == MHD_HTTP_BAD_GATEWAY || status == MHD_HTTP_GATEWAY_TIMEOUT) {
        if (err == -ETIMEDOUT)
            log_warn("the exporter did not answer a scrape in time path=%s timeout_ms=%d", a->exporter_path,
                     API_PROXY_TIMEOUT_MS);
        else
            log_warn_errno(err, "cannot read the exporter's metrics path=%s", a->exporter_path);
    }
    if (px->prev)
        px->prev->proxy.next = px->next;
    else
        a->proxies = px->next;
    if (px->next)
        px->next->proxy.prev = px->prev;
    MHD_resume_connection(rq->conn);
}

/* The exporter's whole answer is in; keep its body if it is a 200. */
static void api_proxy_parse(struct api *a, struct api_req *rq)
{
    struct buf *r = &rq->proxy.resp;
    const char *sep = r->len ? strstr(r->data, "\r\n\r\n") : NULL;
    if (!sep || r->len < 12 || memcmp(r->data, "HTTP/1.", 7) != 0 || memcmp(r->data + 9, "200", 3) != 0) {
        api_proxy_finish(a, rq, MHD_HTTP_BAD_GATEWAY, -EBADMSG);
        return;
    }
    size_t head = (size_t)(sep + 4 - r->data);
    memmove(r->data, r->data + head, r->len - head);
    r->len -= head;
    api_proxy_finish(a, rq, 200, 0);
}

static void api_proxy_event(struct api *a, struct api_req *rq, uint32_t events)
{
    struct api_proxy *px = &rq->proxy;
    if (px->sent < sizeof(api_proxy_request) - 1) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        ssize_t n = send(px->fd, api_proxy_request + px->sent, sizeof(api_proxy_request) - 1 - px->sent,
                         MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            api_proxy_finish(a, rq, MHD_HTTP_BAD_GATEWAY, -errno);
            return;
        }
        if (n > 0)
            px->sent += (size_t)n;
        if (px->sent == sizeof(api_proxy_request) - 1) {
            struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = rq };
            epoll_ctl(a->epfd, EPOLL_CTL_MOD, px->fd, &ev);
        }
        return;
    }
    char chunk[16384];
    for (;;) {
        ssize_t n = recv(px->fd, chunk, sizeof(chunk), 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                api_proxy_finish(a, rq, MHD_HTTP_BAD_GATEWAY, -errno);
            return;
        }
        if (n == 0) {
            api_proxy_parse(a, rq);
            return;
        }
        if (px->resp.len + (size_t)n > API_PROXY_MAX) {
            api_proxy_finish(a, rq, MHD_HTTP_BAD_GATEWAY, -EMSGSIZE);
            return;
        }
        buf_append(&px->resp, chunk, (size_t)n);
    }
}

/* Suspends rq until the exporter answers or API_PROXY_TIMEOUT_MS passes;
 * a negative errno if the exporter cannot even be reached. */
static int api_proxy_start(struct api *a, struct api_req *rq)
{
    struct api_proxy *px = &rq->proxy;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(a->exporter_path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, a->exporter_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    /* A Unix socket connects at once or not at all: EAGAIN is a full
     * backlog, which a stopped exporter reaches too. */
    struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = rq };
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int err = errno == EAGAIN ? -ETIMEDOUT : -errno;
        close(fd);
        return err;
    }
    px->fd = fd;
    px->deadline_ns = clock_now_ns() + (int64_t)API_PROXY_TIMEOUT_MS * CLOCK_NS_PER_MS;
    px->prev = NULL;
    px->next = a->proxies;
    if (a->proxies)
        a->proxies->proxy.prev = rq;
    a->proxies = rq;
    MHD_suspend_connection(rq->conn);
    return 0;
}

/* Scrapes past their deadline get a 504; the nearest deadline left, or 0. */
static int64_t api_proxy_expire(struct api *a, int64_t now)
{
    int64_t nearest = 0;
    for (struct api_req *rq = a->proxies, *next; rq; rq = next) {
        next = rq->proxy.next;
        if (now >= rq->proxy.deadline_ns)
            api_proxy_finish(a, rq, MHD_HTTP_GATEWAY_TIMEOUT, -ETIMEDOUT);
        else if (!nearest || rq->proxy.deadline_ns < nearest)
            nearest = rq->proxy.deadline_ns;
    }
    return nearest;
}

static enum MHD_Result api_proxy_answer(struct api_req *rq)
{
    struct api_proxy *px = &rq->proxy;
    if (px->status == MHD_HTTP_GATEWAY_TIMEOUT)
        return api_send_copy(rq, px->status, API_TEXT, "the exporter did not answer in time\n");
    if (px->status == MHD_HTTP_SERVICE_UNAVAILABLE)
        return api_send_copy(rq, px->status, API_TEXT, "the renderer is shutting down\n");
    if (px->status != 200)
        return api_send_copy(rq, px->status, API_TEXT, "the exporter did not answer\n");
    size_t len;
    char *data = buf_steal(&px->resp, &len);
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, data, free);
    if (!resp)
        free(data);
    return api_send(rq, 200, API_METRICS_TYPE, resp);
}

/* ---- /render ------------------------------------------------------------- */

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

struct api_fields {
    size_t n, bytes;
};

static enum MHD_Result api_header_cb(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_len,
                                     const char *value, size_t value_len)
{
    (void)kind;
    (void)key;
    struct api_fields *f = cls;
    f->n++;
    f->bytes += key_len + (value ? value_len : 0);
    return MHD_YES;
}

/* The request as a whole, before anything reads it: 0 when it is within
 * the limits, else the status to answer, with why naming the limit. */
static unsigned api_check_request(struct MHD_Connection *conn, char *why, size_t why_len)
{
    struct api_fields f = { 0, 0 };
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, api_header_cb, &f);
    if (f.n > API_MAX_HEADERS) {
        snprintf(why, why_len, "request headers: %zu of them, at most %d", f.n, API_MAX_HEADERS);
        return MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE;
    }
    if (f.bytes > API_HEADERS_MAX) {
        snprintf(why, why_len, "request headers: %zu bytes, at most %d", f.bytes, API_HEADERS_MAX);
        return MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE;
    }
    /* A short body is read and dropped (answering before a body that was
     * sent is read would close on unread data: the client could get a reset
     * instead of the answer); a longer one, or one of unknown length, is
     * refused before it is read, so nobody keeps us reading what nothing
     * here wants. */
    const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) ||
        (length && strtoull(length, NULL, 10) > API_BODY_MAX)) {
        snprintf(why, why_len, "request body: longer than %d bytes or of unknown length (every endpoint is GET)",
                 API_BODY_MAX);
        return MHD_HTTP_CONTENT_TOO_LARGE;
    }
    return 0;
}

/* Any thread. MHD's own signal for a resumed connection does not reach an
 * external event loop (MHD_USE_ITC is ignored there): this is ours. */
static void api_wake(struct api *a)
{
    uint64_t one = 1;
    if (write(a->wake_fd, &one, sizeof(one)) < 0) {
        /* EAGAIN: the counter is full, the loop wakes all the same. */
    }
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

static void api_client_gone(struct api *a, struct api_req *rq)
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

static enum MHD_Result api_render_answer(struct api_req *rq)
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

static enum MHD_Result api_render(struct api_req *rq, enum query_route route)
{
    struct api *a = rq->api;
    const char *token = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "X-Auth-Token");
    if (!query_token_equal(token, a->cfg->renderer.auth_token))
        return api_send_error(rq, MHD_HTTP_UNAUTHORIZED, "X-Auth-Token: missing or wrong");

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
            return api_send_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "the renderer is shutting down");
        return api_refuse(rq, 0, "too many renders in progress", "1");
    }
    rq->submitted = 1;
    api_watch(a, rq);
    return MHD_YES;
}

/* ---- routing --------------------------------------------------------------- */

static enum MHD_Result api_handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    struct api *a = cls;
    (void)version;
    (void)upload_data;
    struct api_req *rq = *req_cls;
    if (!rq) {
        conns_headers_done(conn);
        rq = xcalloc(1, sizeof(*rq));
        rq->api = a;
        rq->conn = conn;
        rq->start_ns = clock_now_ns();
        rq->proxy.fd = -1;
        /* The request metrics count renders (any other /render/ path is a
         * 404 a client meant as one), not /render/version (DESIGN.md). */
        rq->is_render = strncmp(url, "/render", 7) == 0 && (url[7] == '\0' || url[7] == '/') &&
                        strcmp(url, "/render/version") != 0;
        rq->route = strcmp(url, "/render") == 0 ? "render" : strcmp(url, "/render/csv") == 0 ? "csv" : NULL;
        *req_cls = rq;
        if (rq->is_render) {
            a->in_flight++;
            api_report(a, NAMES_FAMILY_IN_FLIGHT, NULL, a->in_flight);
        }
        char why[128];
        unsigned status = api_check_request(conn, why, sizeof(why));
        return status ? api_send_error(rq, status, why) : MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (rq->submitted)
        return rq->answered ? api_render_answer(rq) : MHD_YES;
    if (rq->proxied)
        return rq->proxy.fd < 0 ? api_proxy_answer(rq) : MHD_YES;

    int head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && !head) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(
            sizeof("method not allowed: use GET\n") - 1, (void *)"method not allowed: use GET\n",
            MHD_RESPMEM_PERSISTENT);
        if (resp)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        return api_send(rq, MHD_HTTP_METHOD_NOT_ALLOWED, API_TEXT, resp);
    }
    if (strcmp(url, "/render") == 0)
        return api_render(rq, QUERY_ROUTE_RENDER);
    if (strcmp(url, "/render/csv") == 0)
        return api_render(rq, QUERY_ROUTE_CSV);
    if (strcmp(url, "/render/version") == 0)
        return api_send_copy(rq, 200, API_JSON,
                             "{\"version\":\"" API_COMPAT_VERSION "\",\"rendervisor\":\"" RENDERVISOR_VERSION "\"}\n");
    if (strcmp(url, "/") == 0)
        return api_send_copy(rq, 200, API_TEXT,
                             "rendervisor-renderer " RENDERVISOR_VERSION
                             ": Grafana image rendering (GET /render)\n");
    if (strcmp(url, "/healthz") == 0) {
        unsigned up = browser_pool_up_count(a->pool);
        char text[128];
        int64_t stalled = browser_pool_stalled_ns(a->pool, clock_now_ns());
        if (stalled > API_STALLED_MS * CLOCK_NS_PER_MS) {
            /* 500, not 503: the supervisor restarts a renderer that says so. */
            snprintf(text, sizeof(text), "broken: the browser thread has not turned for %lld ms\n",
                     (long long)(stalled / CLOCK_NS_PER_MS));
            return api_send_copy(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, API_TEXT, text);
        }
        snprintf(text, sizeof(text), "%s: %u of %u browsers connected\n", up ? "ok" : "unavailable", up,
                 browser_pool_count(a->pool));
        return api_send_copy(rq, up ? 200 : 503, API_TEXT, text);
    }
    if (strcmp(url, "/metrics") == 0) {
        if (atomic_load(&a->stopping))
            return api_send_copy(rq, MHD_HTTP_SERVICE_UNAVAILABLE, API_TEXT, "the renderer is shutting down\n");
        buf_init(&rq->proxy.resp);
        rq->proxied = 1;
        int rc = api_proxy_start(a, rq);
        if (rc < 0) {
            rq->proxied = 0;
            log_warn_errno(rc, "cannot reach the exporter for a scrape path=%s", a->exporter_path);
            return api_send_copy(rq, rc == -ETIMEDOUT ? MHD_HTTP_GATEWAY_TIMEOUT : MHD_HTTP_BAD_GATEWAY,
                                 API_TEXT, "the exporter did not answer\n");
        }
        return MHD_YES;
    }
    return api_send_copy(rq, MHD_HTTP_NOT_FOUND, API_TEXT, "not found\n");
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

static void api_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                          enum MHD_RequestTerminationCode toe)
{
    struct api *a = cls;
    struct api_req *rq = *req_cls;
    conns_request_done(a->conns, conn);
    if (!rq)
        return;
    *req_cls = NULL;
    api_unwatch(a, rq);
    if (rq->is_render) {
        /* Sent in full, or the client went first: 499, as nginx counts it. */
        unsigned status = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && rq->status ? rq->status : 499;
        if (rq->gone_ns)
            status = 499;
        int64_t now = clock_now_ns();
        if (rq->route)
            api_log_request(rq, status, now);
        char code[16];
        snprintf(code, sizeof(code), "%u", status);
        const char *labels[] = { NAMES_LABEL_STATUS_CODE, code, NULL };
        api_report(a, NAMES_FAMILY_REQUEST_DURATION, labels,
                   (double)(now - rq->start_ns) / CLOCK_NS_PER_S);
        a->in_flight--;
        api_report(a, NAMES_FAMILY_IN_FLIGHT, NULL, a->in_flight);
    }
    if (rq->submitted && !rq->answered) {
        /* Cannot happen while suspended; never free what the browser thread holds. */
        log_error("request finished while its render was still running");
        return;
    }
    if (rq->proxied)
        buf_fini(&rq->proxy.resp);
    query_fini(&rq->job.req);
    free(rq->job.body);
    free(rq->job.error);
    free(rq->job.filename);
    free(rq->error);
    free(rq);
}

/* ---- slow and greedy clients ------------------------------------------------ */

#define API_CLOSED_LOG_NS (10 * CLOCK_NS_PER_S)

/* Counted in /metrics at once; a warning at most every 10 s, so a flood of
 * them costs the log one line. */
static void api_conns_closed(struct api *a, enum names_conn_close why, unsigned n)
{
    if (!n)
        return;
    a->closed[why] += n;
    const char *labels[] = { NAMES_LABEL_REASON, names_conn_closes[why], NULL };
    api_report(a, NAMES_FAMILY_CONNS_CLOSED, labels, (double)a->closed[why]);
    int64_t now = clock_now_ns();
    if (now < a->closed_log_ns)
        return;
    a->closed_log_ns = now + API_CLOSED_LOG_NS;
    log_warn("connections closed before a request, since the last warning connection_limit=%llu "
             "header_deadline=%llu per_address=%u header_deadline_ms=%d",
             a->closed[NAMES_CONN_LIMIT] - a->closed_logged[NAMES_CONN_LIMIT],
             a->closed[NAMES_CONN_HEADER_DEADLINE] - a->closed_logged[NAMES_CONN_HEADER_DEADLINE],
             a->cfg->renderer.connections_per_address, CONNS_HEADER_DEADLINE_MS);
    for (int i = 0; i < NAMES_CONN_COUNT; i++)
        a->closed_logged[i] = a->closed[i];
}

/* MHD's own words, except the refusal at a connection limit (per address
 * or in all), which is counted instead: a client can make any number. */
static void api_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct api *a = cls;
    char text[512];
    vsnprintf(text, sizeof(text), fmt, ap);
    size_t n = strlen(text);
    while (n && text[n - 1] == '\n')
        text[--n] = '\0';
    if (strncmp(text, "Server reached connection limit", 31) == 0) {
        api_conns_closed(a, NAMES_CONN_LIMIT, 1);
        return;
    }
    log_warn("libmicrohttpd says=\"%s\"", text);
}

/* ---- the HTTP thread -------------------------------------------------------- */

/* The epoll timeout: MHD's own, the drain's end, a scrape's deadline, the
 * next "hello", a connection's header deadline. */
static int api_wait_ms(struct api *a, int64_t drain_end, int64_t proxy_end, int64_t hello_end,
                       int64_t header_end)
{
    MHD_UNSIGNED_LONG_LONG mhd_ms;
    int64_t ms = -1;
    if (MHD_get_timeout(a->daemon, &mhd_ms) == MHD_YES)
        ms = mhd_ms > INT_MAX ? INT_MAX : (int64_t)mhd_ms;
    int64_t now = clock_now_ns();
    int64_t ends[] = { drain_end, proxy_end, hello_end, header_end };
    for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
        if (!ends[i])
            continue;
        int64_t left = (ends[i] - now) / CLOCK_NS_PER_MS + 1;
        if (ms < 0 || left < ms)
            ms = left > 0 ? left : 0;
    }
    return (int)ms;
}

/* devtools = pipe: "hello" to the supervisor while some browser's pipes are
 * missing (at start, after a browser went), every API_HELLO_MS; the
 * supervisor answers with "pipes N G". Returns when to call again, or 0. */
#define API_HELLO_MS 2000
static int64_t api_hello(struct api *a, int64_t now)
{
    if (a->ctl_fd < 0 || !browser_pool_pipes_missing(a->pool))
        return 0;
    if (now >= a->hello_at_ns) {
        int rc = ctl_send(a->ctl_fd, a->supervisor_ctl, CTL_HELLO);
        if (rc < 0)
            log_debug("cannot say hello to the supervisor path=%s error=%d", a->supervisor_ctl, -rc);
        a->hello_at_ns = now + API_HELLO_MS * CLOCK_NS_PER_MS;
    }
    return a->hello_at_ns;
}

static void api_ctl_close(const int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

/* "pipes N G" from the supervisor, with browser N's pipe ends: 1 when the
 * line was that (the fds are taken over or closed), 0 when not. */
static int api_ctl_pipes(struct api *a, pid_t pid, const char *line, int *fds, size_t nfds)
{
    unsigned index, gen;
    if (ctl_parse2(line, CTL_PIPES, &index, &gen) < 0)
        return 0;
    if (pid != getppid() || nfds != 2) {
        log_warn("control line refused pid=%d line=pipes fds=%zu", (int)pid, nfds);
        api_ctl_close(fds, nfds);
        return 1;
    }
    int rc = browser_pool_give_pipes(a->pool, index, gen, fds[0], fds[1]);
    if (rc == -EINVAL)
        log_warn("control line refused pid=%d line=pipes browser=%u", (int)pid, index);
    else if (rc == 0)
        log_debug("browser pipes received browser=%u generation=%u", index, gen);
    return 1;
}

/* The supervisor's health probe ("probe S T"), answered from this thread
 * as /healthz is: alive unless the browser thread has stalled, with what
 * the browser thread has heard from each browser (common/ctl.h). A browser
 * is silent past T, and never before 2 s: the heartbeat asks it every 1 s. */
#define API_SILENT_MIN_MS 2000

static void api_health_answer(struct api *a, unsigned seq, unsigned silent_ms)
{
    int64_t now = clock_now_ns();
    struct ctl_health h = { .seq = seq };
    h.stalled = browser_pool_stalled_ns(a->pool, now) > API_STALLED_MS * CLOCK_NS_PER_MS;
    if (!h.stalled) {
        int64_t silent = (int64_t)(silent_ms > API_SILENT_MIN_MS ? silent_ms : API_SILENT_MIN_MS) * CLOCK_NS_PER_MS;
        unsigned n = browser_pool_count(a->pool);
        h.nbrowsers = n < CTL_BROWSERS_MAX ? n : CTL_BROWSERS_MAX;
        for (unsigned i = 0; i < h.nbrowsers; i++)
            h.browsers[i] = browser_pool_health(a->pool, i, now, silent);
    }
    char line[CTL_LINE_MAX];
    int rc = ctl_health_format(line, sizeof(line), &h);
    if (rc == 0)
        rc = ctl_send(a->ctl_fd, a->supervisor_ctl, line);
    if (rc < 0)
        log_debug("cannot answer a health probe seq=%u error=%d", seq, -rc);
}

/* The supervisor (our parent, and no one else) asks for a browser over its
 * memory limit to be drained before it restarts it ("drain N"), tells what
 * its children use in all ("memory_kib N"), hands over the browsers' pipes
 * ("pipes N G") and probes our health ("probe S T"). */
static void api_ctl_read(struct api *a)
{
    char line[CTL_LINE_MAX];
    pid_t pid;
    int n, fds[CTL_FDS_MAX];
    size_t nfds;
    while ((n = ctl_recv_fds(a->ctl_fd, line, sizeof(line), &pid, fds, CTL_FDS_MAX, &nfds)) != -EAGAIN) {
        if (n == -EMSGSIZE)
            continue;
        if (n < 0)
            return;
        if (api_ctl_pipes(a, pid, line, fds, nfds))
            continue;
        api_ctl_close(fds, nfds); /* no other line carries any */
        unsigned index, kib, seq, silent_ms;
        if (pid == getppid() && ctl_probe_parse(line, &seq, &silent_ms) == 0) {
            api_health_answer(a, seq, silent_ms);
            continue;
        }
        if (pid == getppid() && ctl_parse(line, "memory_kib", &kib) == 0) {
            jobs_set_tree_memory(a->jobs, (uint64_t)kib * 1024);
            continue;
        }
        if (pid != getppid() || ctl_parse(line, "drain", &index) < 0 ||
            index >= browser_pool_count(a->pool)) {
            log_warn("control line refused pid=%d line_bytes=%d", (int)pid, n);
            continue;
        }
        jobs_drain(a->jobs, index);
    }
}

static void *api_loop(void *arg)
{
    struct api *a = arg;
    int64_t drain_end = 0;
    pthread_setname_np(pthread_self(), "rv-http");
    for (;;) {
        if (!drain_end && atomic_load(&a->stopping)) {
            /* Take no new connections; let the answers in flight go out. */
            MHD_socket l = MHD_quiesce_daemon(a->daemon);
            if (l != MHD_INVALID_SOCKET)
                close(l);
            drain_end = clock_now_ns() + API_DRAIN_MS * CLOCK_NS_PER_MS;
            while (a->proxies)
                api_proxy_finish(a, a->proxies, MHD_HTTP_SERVICE_UNAVAILABLE, -ESHUTDOWN);
        }
        if (drain_end && (a->in_flight == 0 || clock_now_ns() >= drain_end))
            break;
        struct epoll_event ev[API_EVENTS];
        int64_t proxy_end = api_proxy_expire(a, clock_now_ns());
        int64_t hello_end = drain_end ? 0 : api_hello(a, clock_now_ns());
        int64_t header_end;
        api_conns_closed(a, NAMES_CONN_HEADER_DEADLINE, conns_cut(a->conns, clock_now_ns(), &header_end));
        int n = epoll_wait(a->epfd, ev, API_EVENTS, api_wait_ms(a, drain_end, proxy_end, hello_end, header_end));
        if (n < 0 && errno != EINTR) {
            log_error_errno(-errno, "the HTTP thread cannot wait for events");
            break;
        }
        /* Hangups and scrapes first: a request is freed only inside
         * MHD_run, which also takes its socket out of the set, and a
         * scrape's socket leaves the set when it is done, so each rq here
         * is alive. */
        for (int i = 0; i < n; i++) {
            void *p = ev[i].data.ptr;
            if (p == &a->wake_fd) {
                uint64_t v;
                if (read(a->wake_fd, &v, sizeof(v)) < 0) {
                    /* EAGAIN: another event read it already. */
                }
            } else if (p == &a->ctl_fd) {
                api_ctl_read(a);
            } else if (p != a) {
                struct api_req *rq = p;
                if (rq->proxy.fd >= 0)
                    api_proxy_event(a, rq, ev[i].events);
                else
                    api_client_gone(a, rq);
            }
        }
        MHD_run(a->daemon);
    }
    return NULL;
}

static void api_free(struct api *a)
{
    if (a->daemon)
        MHD_stop_daemon(a->daemon);
    if (a->conns)
        conns_free(a->conns);
    if (a->epfd >= 0)
        close(a->epfd);
    if (a->wake_fd >= 0)
        close(a->wake_fd);
    if (a->ctl_fd >= 0)
        close(a->ctl_fd);
    ingest_sender_fini(&a->ingest);
    free(a->exporter_path);
    free(a->supervisor_ctl);
    free(a);
}

struct api *api_start(int listen_fd, const struct config *cfg, struct jobs *jobs, struct browser_pool *pool)
{
    struct api *a = xcalloc(1, sizeof(*a));
    a->cfg = cfg;
    a->jobs = jobs;
    a->pool = pool;
    a->ingest.fd = -1;
    a->epfd = epoll_create1(EPOLL_CLOEXEC);
    int err = a->epfd < 0 ? errno : 0;
    a->ctl_fd = -1;
    a->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!err && a->wake_fd < 0)
        err = errno;
    atomic_init(&a->stopping, 0);
    a->exporter_path = config_runtime_path(cfg, cfg->exporter.socket);
    a->supervisor_ctl = config_runtime_path(cfg, CTL_SUPERVISOR);
    char *ingest_path = config_runtime_path(cfg, cfg->exporter.ingest);
    int rc = ingest_sender_init(&a->ingest, ingest_path);
    free(ingest_path);
    if (rc == 0 && err)
        rc = -err;
    if (rc < 0) {
        api_free(a);
        close(listen_fd);
        errno = -rc;
        return NULL;
    }
    a->conns = conns_new((int64_t)CONNS_HEADER_DEADLINE_MS * CLOCK_NS_PER_MS);
    /* Slow clients cost themselves: a limit per address (of the 512 in
     * all), and the header deadline (conns.h) under MHD's idle timeout. */
    a->daemon = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL, api_handle, a,
        MHD_OPTION_EXTERNAL_LOGGER, api_mhd_log, a, MHD_OPTION_LISTEN_SOCKET, listen_fd,
        MHD_OPTION_NOTIFY_COMPLETED, api_completed, a, MHD_OPTION_NOTIFY_CONNECTION, conns_notify, a->conns,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_CONNECTIONS_MAX, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        cfg->renderer.connections_per_address, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)API_CONNECTION_MEMORY, MHD_OPTION_END);
    if (!a->daemon) {
        api_free(a);
        close(listen_fd);
        errno = EIO;
        return NULL;
    }
    /* From here on the daemon owns listen_fd. */
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    struct epoll_event mhd_ev = { .events = EPOLLIN, .data.ptr = a };
    struct epoll_event wake_ev = { .events = EPOLLIN, .data.ptr = &a->wake_fd };
    if (!di || epoll_ctl(a->epfd, EPOLL_CTL_ADD, di->epoll_fd, &mhd_ev) < 0 ||
        epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->wake_fd, &wake_ev) < 0) {
        rc = di ? errno : EIO;
        api_free(a);
        errno = rc;
        return NULL;
    }
    /* Without it a browser over its limit restarts at once, renders and all. */
    char *ctl = config_runtime_path(cfg, CTL_RENDERER);
    a->ctl_fd = ctl_open(ctl);
    struct epoll_event ctl_ev = { .events = EPOLLIN, .data.ptr = &a->ctl_fd };
    if (a->ctl_fd < 0 || epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->ctl_fd, &ctl_ev) < 0)
        log_warn_errno(a->ctl_fd < 0 ? a->ctl_fd : -errno, "cannot open the control socket path=%s", ctl);
    free(ctl);
    if ((rc = pthread_create(&a->thread, NULL, api_loop, a)) != 0) {
        api_free(a);
        errno = rc;
        return NULL;
    }
    return a;
}

/* The renders must have been answered (jobs_abort_all): MHD cannot stop
 * with a connection suspended. */
void api_stop(struct api *a)
{
    if (!a)
        return;
    atomic_store(&a->stopping, 1);
    api_wake(a);
    pthread_join(a->thread, NULL);
    api_free(a);
}
