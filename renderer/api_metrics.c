/* The renderer's /metrics: the exporter's answer over its Unix socket,
 * fetched with httpc on the HTTP thread without blocking it. The connection
 * is suspended, the exporter's socket joins the thread's epoll set, and the
 * answer (or 502/504) is sent on the resume: a stopped exporter costs a
 * scrape API_PROXY_TIMEOUT_MS and costs renders nothing (docs/design.md,
 * "The renderer's /metrics"). The scrape's request and answer live in its
 * struct api_req until MHD's completion callback (api_metrics_fini). */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "api_int.h"
#include "clock.h"
#include "log.h"

#define API_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define API_PROXY_TIMEOUT_MS 3000
#define API_PROXY_MAX (16 * 1024 * 1024)

static void api_metrics_finish(struct api *a, struct api_req *rq, unsigned status, int err)
{
    struct api_proxy *px = &rq->proxy;
    if (px->fd < 0)
        return;
    close(px->fd); /* leaves the epoll set with it */
    px->fd = -1;
    px->status = status;
    if (err == -ETIMEDOUT)
        log_warn("the exporter did not answer a scrape in time path=%s timeout_ms=%d", a->exporter_path,
                 API_PROXY_TIMEOUT_MS);
    else if (err && px->http.err)
        log_warn("cannot read the exporter's metrics path=%s error=%d why=\"%s\"", a->exporter_path, -err,
                 px->http.why);
    else if (err && err != -ESHUTDOWN)
        log_warn_errno(err, "cannot read the exporter's metrics path=%s", a->exporter_path);
    if (px->prev)
        px->prev->proxy.next = px->next;
    else
        a->proxies = px->next;
    if (px->next)
        px->next->proxy.prev = px->prev;
    MHD_resume_connection(rq->conn);
}

void api_metrics_event(struct api *a, struct api_req *rq, uint32_t events)
{
    (void)events; /* httpc tries, and finds out */
    struct api_proxy *px = &rq->proxy;
    unsigned want = httpc_events(&px->http);
    int rc = httpc_step(&px->http, px->fd);
    if (rc == -EAGAIN) {
        if (httpc_events(&px->http) != want) {
            struct epoll_event ev = { .events = httpc_events(&px->http) | EPOLLRDHUP, .data.ptr = rq };
            epoll_ctl(a->epfd, EPOLL_CTL_MOD, px->fd, &ev);
        }
        return;
    }
    if (rc < 0) {
        api_metrics_finish(a, rq, MHD_HTTP_BAD_GATEWAY, rc);
        return;
    }
    if (px->http.status != 200) {
        log_warn("the exporter answered a scrape with an error path=%s status=%u", a->exporter_path,
                 px->http.status);
        api_metrics_finish(a, rq, MHD_HTTP_BAD_GATEWAY, 0);
        return;
    }
    api_metrics_finish(a, rq, 200, 0);
}

/* Suspends rq until the exporter answers or API_PROXY_TIMEOUT_MS passes;
 * a negative errno if the exporter cannot even be reached. */
static int api_metrics_start(struct api *a, struct api_req *rq)
{
    struct api_proxy *px = &rq->proxy;
    int fd = httpc_connect_unix(a->exporter_path);
    if (fd < 0)
        return fd;
    struct epoll_event ev = { .events = httpc_events(&px->http), .data.ptr = rq };
    if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int err = -errno;
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

enum MHD_Result api_metrics(struct api_req *rq)
{
    struct api *a = rq->api;
    if (atomic_load(&a->stopping))
        return api_send_copy(rq, MHD_HTTP_SERVICE_UNAVAILABLE, API_TEXT, "the renderer is shutting down\n");
    httpc_init(&rq->proxy.http, "localhost", "/metrics", API_PROXY_MAX);
    rq->proxied = 1;
    int rc = api_metrics_start(a, rq);
    if (rc < 0) {
        log_warn_errno(rc, "cannot reach the exporter for a scrape path=%s", a->exporter_path);
        return api_send_copy(rq, rc == -ETIMEDOUT ? MHD_HTTP_GATEWAY_TIMEOUT : MHD_HTTP_BAD_GATEWAY, API_TEXT,
                             "the exporter did not answer\n");
    }
    return MHD_YES;
}

int64_t api_metrics_expire(struct api *a, int64_t now)
{
    int64_t nearest = 0;
    for (struct api_req *rq = a->proxies, *next; rq; rq = next) {
        next = rq->proxy.next;
        if (now >= rq->proxy.deadline_ns)
            api_metrics_finish(a, rq, MHD_HTTP_GATEWAY_TIMEOUT, -ETIMEDOUT);
        else if (!nearest || rq->proxy.deadline_ns < nearest)
            nearest = rq->proxy.deadline_ns;
    }
    return nearest;
}

void api_metrics_abort_all(struct api *a)
{
    while (a->proxies)
        api_metrics_finish(a, a->proxies, MHD_HTTP_SERVICE_UNAVAILABLE, -ESHUTDOWN);
}

enum MHD_Result api_metrics_answer(struct api_req *rq)
{
    struct api_proxy *px = &rq->proxy;
    if (px->status == MHD_HTTP_GATEWAY_TIMEOUT)
        return api_send_copy(rq, px->status, API_TEXT, "the exporter did not answer in time\n");
    if (px->status == MHD_HTTP_SERVICE_UNAVAILABLE)
        return api_send_copy(rq, px->status, API_TEXT, "the renderer is shutting down\n");
    if (px->status != 200)
        return api_send_copy(rq, px->status, API_TEXT, "the exporter did not answer\n");
    size_t len;
    char *data = httpc_steal_body(&px->http, &len);
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, data, free);
    if (!resp)
        free(data);
    return api_send(rq, 200, API_METRICS_TYPE, resp);
}

void api_metrics_fini(struct api_req *rq)
{
    if (rq->proxied)
        httpc_fini(&rq->proxy.http);
}
