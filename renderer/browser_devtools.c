/* The browsers' /json/version in devtools = port mode (browser.c keeps the
 * connection's life; this file only finds the websocket's path). Runs on
 * the browser thread, in its libwebsockets loop, and never blocks it: the
 * GET's socket is adopted as a raw descriptor of the "devtools-http"
 * protocol and common/httpc.c sends and reads as lws reports it ready; a
 * timer ends it after BROWSER_HTTP_TIMEOUT_MS. One GET at a time per
 * browser: the browser owns its struct browser_http (freed when the GET
 * ends or the pool goes), lws owns the socket once adopted. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "httpc.h"
#include "log.h"
#include "xalloc.h"

#include "browser_int.h"

#define BROWSER_HTTP_TIMEOUT_MS 1000
#define BROWSER_HTTP_MAX (64 * 1024)
#define BROWSER_PATH_MAX 256

struct browser_http {
    struct browser *b;
    struct httpc http;
    struct lws *wsi;
    int fd;
    lws_sorted_usec_list_t deadline;
};

/* The websocket's path in a complete answer, checked before it is used. */
static int browser_ws_path(struct httpc *http, char *path, size_t size)
{
    if (http->status != 200) {
        snprintf(http->why, sizeof(http->why), "status %u", http->status);
        return -EPROTO;
    }
    size_t len;
    const char *body = httpc_body(http, &len);
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    const char *url = json_string_value(json_object_get(root, "webSocketDebuggerUrl"));
    const char *p = url && strncmp(url, "ws://", 5) == 0 ? strchr(url + 5, '/') : NULL;
    int rc = 0;
    if (!p || strlen(p) >= size || strspn(p, "/-_.abcdefghijklmnopqrstuvwxyz"
                                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != strlen(p)) {
        snprintf(http->why, sizeof(http->why), "%s", !root ? "not JSON" : "no usable webSocketDebuggerUrl");
        rc = -EBADMSG;
    } else {
        memcpy(path, p, strlen(p) + 1);
    }
    json_decref(root);
    return rc;
}

static void browser_ws_connect(struct browser *b, const char *path)
{
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof(ci));
    char host[32];
    snprintf(host, sizeof(host), "127.0.0.1:%u", b->port);
    ci.context = b->pool->lws;
    ci.address = "127.0.0.1";
    ci.port = (int)b->port;
    ci.path = path;
    ci.host = host;
    ci.ietf_version_or_minus_one = -1;
    ci.local_protocol_name = "cdp";
    ci.opaque_user_data = b;
    ci.pwsi = &b->wsi;
    if (!lws_client_connect_via_info(&ci)) {
        /* CLIENT_CONNECTION_ERROR may or may not have been called. */
        if (!b->retry.list.owner)
            browser_schedule_retry(b);
    }
}

/* The GET is over (rc 0: an answer came): connect the websocket, or retry
 * later. Its socket is lws's to close, and no longer ours. */
static void browser_http_end(struct browser_http *h, int rc)
{
    struct browser *b = h->b;
    lws_sul_schedule(b->pool->lws, 0, &h->deadline, NULL, LWS_SET_TIMER_USEC_CANCEL);
    lws_set_opaque_user_data(h->wsi, NULL);
    b->http = NULL;
    char path[BROWSER_PATH_MAX];
    if (rc == 0)
        rc = browser_ws_path(&h->http, path, sizeof(path));
    if (rc < 0)
        log_debug("browser not answering yet browser=%u port=%u error=%d why=\"%s\"", b->index, b->port, -rc,
                  h->http.why);
    httpc_fini(&h->http);
    free(h);
    if (rc < 0)
        browser_schedule_retry(b);
    else
        browser_ws_connect(b, path);
}

static void browser_http_expired(lws_sorted_usec_list_t *sul)
{
    struct browser_http *h = lws_container_of(sul, struct browser_http, deadline);
    lws_set_timeout(h->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    snprintf(h->http.why, sizeof(h->http.why), "no answer within %d ms", BROWSER_HTTP_TIMEOUT_MS);
    browser_http_end(h, -ETIMEDOUT);
}

int browser_http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    (void)user;
    (void)in;
    (void)len;
    struct browser_http *h = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
    case LWS_CALLBACK_RAW_WRITEABLE_FILE: {
        if (!h)
            return -1;
        int rc = httpc_step(&h->http, h->fd);
        if (rc == -EAGAIN) {
            if (httpc_events(&h->http) == POLLOUT)
                lws_callback_on_writable(wsi);
            return 0;
        }
        browser_http_end(h, rc);
        return -1; /* lws closes the socket */
    }
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        /* Closed by lws (a hangup, an error) before the answer was read. */
        if (h) {
            snprintf(h->http.why, sizeof(h->http.why), "the connection closed");
            browser_http_end(h, -ECONNRESET);
        }
        break;
    default:
        break;
    }
    return 0;
}

/* Ask the browser for its websocket's path; the websocket follows. */
void browser_connect(struct browser *b)
{
    if (b->http)
        return;
    int fd = httpc_connect_loopback(b->port);
    if (fd < 0) {
        log_debug("browser not answering yet browser=%u port=%u error=%d", b->index, b->port, -fd);
        browser_schedule_retry(b);
        return;
    }
    struct browser_http *h = xcalloc(1, sizeof(*h));
    char host[32];
    snprintf(host, sizeof(host), "127.0.0.1:%u", b->port);
    httpc_init(&h->http, host, "/json/version", BROWSER_HTTP_MAX);
    h->b = b;
    h->fd = fd;
    h->wsi = browser_adopt_fd(b->pool, fd, "devtools-http", h);
    if (!h->wsi) {
        log_warn("cannot watch the socket of a browser's /json/version browser=%u", b->index);
        httpc_fini(&h->http);
        free(h);
        browser_schedule_retry(b);
        return;
    }
    b->http = h;
    lws_callback_on_writable(h->wsi);
    lws_sul_schedule(b->pool->lws, 0, &h->deadline, browser_http_expired,
                     (lws_usec_t)BROWSER_HTTP_TIMEOUT_MS * LWS_US_PER_MS);
}

/* The pool goes: a GET in flight is forgotten (lws closes its socket). */
void browser_http_drop(struct browser *b)
{
    struct browser_http *h = b->http;
    if (!h)
        return;
    lws_sul_schedule(b->pool->lws, 0, &h->deadline, NULL, LWS_SET_TIMER_USEC_CANCEL);
    lws_set_opaque_user_data(h->wsi, NULL);
    b->http = NULL;
    httpc_fini(&h->http);
    free(h);
}
