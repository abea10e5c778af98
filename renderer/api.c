/* Grafana's remote-rendering API: routing, the answers' common forms, and
 * the HTTP thread with its loop. The thread drives MHD (external epoll
 * mode) from one epoll set, so every handler and completion callback of
 * the api_*.c files runs on that one thread: the request metrics need no
 * lock. The set also holds the wake-up eventfd, renderer.ctl (api_ctl.c),
 * the clients of renders in flight (api_render.c) and the exporter's
 * sockets of scrapes (api_metrics.c). A request's struct api_req is
 * allocated at its first handler call and freed in MHD's completion
 * callback; struct api is api_start's until api_stop. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <jansson.h>

#include "api_int.h"
#include "clock.h"
#include "conns.h"
#include "ctl.h"
#include "ingest.h"
#include "log.h"
#include "names.h"
#include "xalloc.h"

/* Limits on what a client sends (docs/configuration.md, "Limits"). MHD's
 * per-connection memory bounds a request line and its headers at all (past
 * it, MHD answers 414 or 431 itself); within it, these are checked and
 * answered with JSON that says which one was hit (the query's, in
 * api_render.c). No endpoint takes a body. */
#define API_CONNECTION_MEMORY (64 * 1024)
#define API_CONNECTIONS_MAX 512 /* in all; [renderer] connections_per_address of them from one address */
#define API_MAX_HEADERS 64
#define API_HEADERS_MAX (16 * 1024) /* names and values, summed */
#define API_BODY_MAX (64 * 1024)    /* read and dropped; longer is refused unread */
#define API_EVENTS 32
/* At shutdown, how long the answers of renders in flight (503) may take to go out. */
#define API_DRAIN_MS 2000

void api_report(struct api *a, const char *family, const char *const *labels, double value)
{
    ingest_send_line(&a->ingest, family, labels, value);
}

enum MHD_Result api_send(struct api_req *rq, unsigned status, const char *type, struct MHD_Response *resp)
{
    if (!resp)
        return MHD_NO;
    rq->status = status;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    api_trace_header(rq, resp);
    /* Draining: the client's next request must open a new connection,
     * which a load balancer sends to an instance that stays. */
    if (atomic_load(&rq->api->draining))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result rc = MHD_queue_response(rq->conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

enum MHD_Result api_send_copy(struct api_req *rq, unsigned status, const char *type, const char *text)
{
    size_t len = strlen(text);
    char *data = xmalloc(len + 1);
    memcpy(data, text, len + 1);
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, data, free);
    if (!resp)
        free(data);
    return api_send(rq, status, type, resp);
}

enum MHD_Result api_send_error_retry(struct api_req *rq, unsigned status, const char *why, const char *retry_after)
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

enum MHD_Result api_send_error(struct api_req *rq, unsigned status, const char *why)
{
    return api_send_error_retry(rq, status, why, NULL);
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
void api_wake(struct api *a)
{
    uint64_t one = 1;
    if (write(a->wake_fd, &one, sizeof(one)) < 0) {
        /* EAGAIN: the counter is full, the loop wakes all the same. */
    }
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
        *req_cls = rq;
        api_render_begin(rq, url);
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
        return rq->proxy.fd < 0 ? api_metrics_answer(rq) : MHD_YES;

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
        if (atomic_load(&a->draining)) {
            /* Out of a load balancer's rotation: this instance is going away. */
            snprintf(text, sizeof(text), "draining: shutting down, %u renders still in progress\n",
                     jobs_active(a->jobs));
            return api_send_copy(rq, MHD_HTTP_SERVICE_UNAVAILABLE, API_TEXT, text);
        }
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
    if (strcmp(url, "/metrics") == 0)
        return api_metrics(rq);
    return api_send_copy(rq, MHD_HTTP_NOT_FOUND, API_TEXT, "not found\n");
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
    api_render_end(rq, toe);
    if (rq->submitted && !rq->answered) {
        /* Cannot happen while suspended; never free what the browser thread holds. */
        log_error("request finished while its render was still running");
        return;
    }
    api_metrics_fini(rq);
    api_render_fini(rq);
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
 * or in all) and a failed TLS handshake, which are counted instead: a
 * client can make any number. */
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
    if (tls_server_mhd_log(a->tls, "renderer", text))
        return;
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
            api_metrics_abort_all(a);
        }
        if (drain_end && (a->in_flight == 0 || clock_now_ns() >= drain_end))
            break;
        struct epoll_event ev[API_EVENTS];
        int64_t proxy_end = api_metrics_expire(a, clock_now_ns());
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
                    api_metrics_event(a, rq, ev[i].events);
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
    tls_server_free(a->tls);
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
    config_tokens_free(a->tokens);
    pthread_mutex_destroy(&a->tokens_lock);
    free(a);
}

struct api *api_start(int listen_fd, const struct config *cfg, struct jobs *jobs, struct browser_pool *pool,
                      struct tracer *tracer)
{
    struct api *a = xcalloc(1, sizeof(*a));
    a->cfg = cfg;
    pthread_mutex_init(&a->tokens_lock, NULL);
    size_t ntokens = 0;
    while (cfg->renderer.tokens[ntokens])
        ntokens++;
    a->tokens = xcalloc(ntokens + 1, sizeof(*a->tokens));
    for (size_t i = 0; i < ntokens; i++)
        a->tokens[i] = xstrdup(cfg->renderer.tokens[i]);
    a->tracer = tracer;
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
    atomic_init(&a->draining, 0);
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
    unsigned tls_flag = 0;
    struct MHD_OptionItem tls_opts[] = { { MHD_OPTION_END, 0, NULL }, { MHD_OPTION_END, 0, NULL } };
    if (cfg->renderer.tls_cert[0]) {
        if (!(a->tls = tls_server_open("renderer", cfg->renderer.tls_cert, cfg->renderer.tls_key))) {
            api_free(a);
            close(listen_fd);
            errno = EINVAL;
            return NULL;
        }
        tls_flag = MHD_USE_TLS;
        tls_opts[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_CERT_CALLBACK, 0, tls_server_callback() };
    }
    a->conns = conns_new((int64_t)CONNS_HEADER_DEADLINE_MS * CLOCK_NS_PER_MS);
    /* Slow clients cost themselves: a limit per address (of the 512 in
     * all), and the header deadline (conns.h) under MHD's idle timeout. */
    a->daemon = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | tls_flag, 0, NULL, NULL, api_handle, a,
        MHD_OPTION_EXTERNAL_LOGGER, api_mhd_log, a, MHD_OPTION_LISTEN_SOCKET, listen_fd,
        MHD_OPTION_NOTIFY_COMPLETED, api_completed, a, MHD_OPTION_NOTIFY_CONNECTION, conns_notify, a->conns,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_CONNECTIONS_MAX, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        cfg->renderer.connections_per_address, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)API_CONNECTION_MEMORY, MHD_OPTION_ARRAY, tls_opts,
        MHD_OPTION_END);
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

int api_tls_reload(struct api *a, const struct config *cfg, char *why, size_t why_len)
{
    return tls_server_reload(a->tls, "renderer", cfg->renderer.tls_cert, cfg->renderer.tls_key, why, why_len);
}

const char *api_tls_describe(const struct api *a)
{
    return a->tls ? tls_pair_describe(tls_server_current(a->tls)) : "off";
}

void api_drain(struct api *a)
{
    jobs_close(a->jobs);
    atomic_store(&a->draining, 1);
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
