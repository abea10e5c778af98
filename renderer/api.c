/* Grafana's remote-rendering API. MHD runs one internal polling thread, so
 * every handler and completion callback here runs on that one thread: the
 * request metrics need no lock. A render is handed to the browser thread
 * (jobs_submit) and its connection suspended; the browser thread resumes
 * it when the answer is ready, and MHD calls the handler again. */
#include "api.h"

#include <errno.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "clock.h"
#include "ingest.h"
#include "log.h"
#include "render.h"
#include "xalloc.h"

#define API_TEXT "text/plain; charset=utf-8"
#define API_JSON "application/json"
#define API_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define API_MAX_PARAMS 64
#define API_PROXY_TIMEOUT_MS 3000
#define API_PROXY_MAX (16 * 1024 * 1024)

struct api {
    struct MHD_Daemon *daemon;
    const struct config *cfg;
    struct jobs *jobs;
    struct browser_pool *pool;
    struct ingest_sender ingest; /* this thread's own sender */
    char *exporter_path;
    unsigned in_flight;
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

static enum MHD_Result api_send_error(struct api_req *rq, unsigned status, const char *why)
{
    json_t *o = json_pack("{s:s}", "error", why);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    enum MHD_Result rc;
    if (text) {
        size_t len = strlen(text);
        text = xrealloc(text, len + 2);
        memcpy(text + len, "\n", 2);
        rc = api_send_copy(rq, status, API_JSON, text);
        free(text);
    } else {
        rc = api_send_copy(rq, status, API_JSON, "{\"error\":\"unknown\"}\n");
    }
    return rc;
}

/* ---- /metrics: the exporter's answer over its Unix socket ---------------- */

static int api_proxy_metrics(struct api *a, struct buf *body)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(a->exporter_path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, a->exporter_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct timeval tv = { .tv_sec = API_PROXY_TIMEOUT_MS / 1000, .tv_usec = (API_PROXY_TIMEOUT_MS % 1000) * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int rc = 0;
    struct buf resp;
    buf_init(&resp);
    static const char req[] = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(req) - 1)) {
        rc = -errno;
        goto out;
    }
    char chunk[16384];
    for (;;) {
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out;
        }
        if (n == 0)
            break;
        if (resp.len + (size_t)n > API_PROXY_MAX) {
            rc = -EMSGSIZE;
            goto out;
        }
        buf_append(&resp, chunk, (size_t)n);
    }
    const char *sep = resp.len ? strstr(resp.data, "\r\n\r\n") : NULL;
    if (!sep || resp.len < 12 || memcmp(resp.data + 9, "200", 3) != 0) {
        rc = -EBADMSG;
        goto out;
    }
    sep += 4;
    buf_append(body, sep, resp.len - (size_t)(sep - resp.data));
out:
    buf_fini(&resp);
    close(fd);
    return rc;
}

/* ---- /render ------------------------------------------------------------- */

struct api_params {
    struct query_param p[API_MAX_PARAMS];
    size_t n;
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
    return MHD_YES;
}

/* The browser thread: the answer is in rq->job; wake the connection. */
static void api_job_done(struct job *j)
{
    struct api_req *rq = j->owner;
    rq->answered = 1;
    MHD_resume_connection(rq->conn);
}

static enum MHD_Result api_render_answer(struct api_req *rq)
{
    struct job *j = &rq->job;
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
    if (ps.too_many)
        return api_send_error(rq, MHD_HTTP_BAD_REQUEST, "too many query parameters");
    const char *lang = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_LANGUAGE);
    char why[512];
    int rc = query_parse(&rq->job.req, route, ps.p, ps.n, lang, NULL, why, sizeof(why));
    if (rc == -EACCES)
        return api_send_error(rq, MHD_HTTP_FORBIDDEN, why);
    if (rc < 0)
        return api_send_error(rq, MHD_HTTP_BAD_REQUEST, why);

    rq->job.deadline_ns = rq->start_ns + (int64_t)rq->job.req.timeout_ms * CLOCK_NS_PER_MS;
    rq->job.done = api_job_done;
    rq->job.owner = rq;
    /* Suspend first: the browser thread may resume before jobs_submit returns. */
    MHD_suspend_connection(rq->conn);
    if (jobs_submit(a->jobs, &rq->job) < 0) {
        MHD_resume_connection(rq->conn);
        query_fini(&rq->job.req);
        struct MHD_Response *resp = MHD_create_response_from_buffer(
            sizeof("{\"error\":\"too many renders in progress\"}\n") - 1,
            (void *)"{\"error\":\"too many renders in progress\"}\n", MHD_RESPMEM_PERSISTENT);
        if (resp)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
        return api_send(rq, MHD_HTTP_TOO_MANY_REQUESTS, API_JSON, resp);
    }
    rq->submitted = 1;
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
        rq = xcalloc(1, sizeof(*rq));
        rq->api = a;
        rq->conn = conn;
        rq->start_ns = clock_now_ns();
        rq->is_render = strncmp(url, "/render", 7) == 0 && (url[7] == '\0' || url[7] == '/');
        *req_cls = rq;
        if (rq->is_render) {
            a->in_flight++;
            api_report(a, "grafana_image_renderer_http_request_in_flight", NULL, a->in_flight);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (rq->submitted)
        return rq->answered ? api_render_answer(rq) : MHD_YES;

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
        return api_send_copy(rq, 200, API_JSON, "{\"version\":\"" RENDERVISOR_VERSION "\"}\n");
    if (strcmp(url, "/") == 0)
        return api_send_copy(rq, 200, API_TEXT,
                             "rendervisor-renderer " RENDERVISOR_VERSION
                             ": Grafana image rendering (GET /render)\n");
    if (strcmp(url, "/healthz") == 0) {
        unsigned up = browser_pool_up_count(a->pool);
        char text[96];
        snprintf(text, sizeof(text), "%s: %u of %u browsers connected\n", up ? "ok" : "unavailable", up,
                 browser_pool_count(a->pool));
        return api_send_copy(rq, up ? 200 : 503, API_TEXT, text);
    }
    if (strcmp(url, "/metrics") == 0) {
        struct buf body;
        buf_init(&body);
        int rc = api_proxy_metrics(a, &body);
        if (rc < 0) {
            buf_fini(&body);
            log_warn_errno(rc, "cannot read the exporter's metrics path=%s", a->exporter_path);
            return api_send_copy(rq, MHD_HTTP_BAD_GATEWAY, API_TEXT, "the exporter did not answer\n");
        }
        size_t len;
        char *data = buf_steal(&body, &len);
        struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, data, free);
        if (!resp)
            free(data);
        return api_send(rq, 200, API_METRICS_TYPE, resp);
    }
    return api_send_copy(rq, MHD_HTTP_NOT_FOUND, API_TEXT, "not found\n");
}

static void api_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                          enum MHD_RequestTerminationCode toe)
{
    struct api *a = cls;
    (void)conn;
    struct api_req *rq = *req_cls;
    if (!rq)
        return;
    *req_cls = NULL;
    if (rq->is_render) {
        /* Sent in full, or the client went first: 499, as nginx counts it. */
        unsigned status = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && rq->status ? rq->status : 499;
        char code[16];
        snprintf(code, sizeof(code), "%u", status);
        const char *labels[] = { "status_code", code, NULL };
        api_report(a, "grafana_image_renderer_service_http_request_duration_seconds", labels,
                   (double)(clock_now_ns() - rq->start_ns) / CLOCK_NS_PER_S);
        a->in_flight--;
        api_report(a, "grafana_image_renderer_http_request_in_flight", NULL, a->in_flight);
    }
    if (rq->submitted && !rq->answered) {
        /* Cannot happen while suspended; never free what the browser thread holds. */
        log_error("request finished while its render was still running");
        return;
    }
    query_fini(&rq->job.req);
    free(rq->job.body);
    free(rq->job.error);
    free(rq->job.filename);
    free(rq);
}

static void api_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char text[512];
    vsnprintf(text, sizeof(text), fmt, ap);
    size_t n = strlen(text);
    while (n && text[n - 1] == '\n')
        text[--n] = '\0';
    log_warn("libmicrohttpd says=\"%s\"", text);
}

struct api *api_start(int listen_fd, const struct config *cfg, struct jobs *jobs, struct browser_pool *pool)
{
    struct api *a = xcalloc(1, sizeof(*a));
    a->cfg = cfg;
    a->jobs = jobs;
    a->pool = pool;
    a->exporter_path = config_runtime_path(cfg, cfg->exporter.socket);
    char *ingest_path = config_runtime_path(cfg, cfg->exporter.ingest);
    int rc = ingest_sender_init(&a->ingest, ingest_path);
    free(ingest_path);
    if (rc < 0) {
        free(a->exporter_path);
        free(a);
        close(listen_fd);
        errno = -rc;
        return NULL;
    }
    a->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL,
        NULL, api_handle, a, MHD_OPTION_EXTERNAL_LOGGER, api_mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, listen_fd,
        MHD_OPTION_NOTIFY_COMPLETED, api_completed, a, MHD_OPTION_CONNECTION_LIMIT, (unsigned)512,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (!a->daemon) {
        ingest_sender_fini(&a->ingest);
        free(a->exporter_path);
        free(a);
        close(listen_fd);
        errno = EIO;
        return NULL;
    }
    return a;
}

void api_stop(struct api *a)
{
    if (!a)
        return;
    MHD_stop_daemon(a->daemon);
    ingest_sender_fini(&a->ingest);
    free(a->exporter_path);
    free(a);
}
