/* libmicrohttpd in "external epoll" mode: MHD keeps its own epoll set of
 * the listening socket and connections, and the exporter's loop watches that
 * one fd. So serving /metrics and taking ingest datagrams happen in one
 * thread, one after the other, and the registry needs no lock. */
#include "http.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "selfstat.h"
#include "status.h"
#include "xalloc.h"

#define HTTP_TEXT_PLAIN "text/plain; charset=utf-8"
#define HTTP_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* The status page loads its script, its style and its figures from the
 * exporter itself and from nowhere else. */
#define HTTP_STATUS_CSP                                                                                   \
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "       \
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
/* A scraper's request is a line and a few headers: MHD answers a longer
 * request line 414 and longer headers 431 (docs/configuration.md, "Limits"). */
#define HTTP_CONNECTION_MEMORY (16 * 1024)
/* No route takes a body: one this short is read and dropped, a longer one
 * (or one of unknown length) refused before it is read. */
#define HTTP_BODY_MAX (64 * 1024)

static enum MHD_Result http_send(struct MHD_Connection *conn, unsigned status, const char *type,
                                 struct MHD_Response *resp)
{
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (strncmp(type, "text/html", 9) == 0)
        MHD_add_response_header(resp, "Content-Security-Policy", HTTP_STATUS_CSP);
    /* The status page's figures change from one request to the next; its
     * script and style change with the binary. */
    if (strncmp(type, "text/html", 9) == 0 || strncmp(type, "application/json", 16) == 0 ||
        strncmp(type, "text/javascript", 15) == 0 || strncmp(type, "text/css", 8) == 0)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* A body built in a buf is handed to MHD, which frees it when sent. */
static enum MHD_Result http_send_buf(struct MHD_Connection *conn, unsigned status, const char *type,
                                     struct buf *b)
{
    size_t len;
    char *data = buf_steal(b, &len);
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, data, free);
    if (!resp)
        free(data);
    return http_send(conn, status, type, resp);
}

static enum MHD_Result http_send_static(struct MHD_Connection *conn, unsigned status, const char *type,
                                        const char *data, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_PERSISTENT);
    return http_send(conn, status, type, resp);
}

static enum MHD_Result http_handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                   const char *version, const char *upload_data, size_t *upload_data_size,
                                   void **req_cls)
{
    struct http_site *site = cls;
    (void)version;
    (void)upload_data;

    /* MHD calls once with the headers, then with each piece of a body, then
     * once more. Nothing here takes a body: a short one is read and dropped
     * and the answer given on the last call; a longer one, or one of unknown
     * length, is answered 413 on the first call, before it is read. (Answering
     * before a body that has been sent is read would close on unread data,
     * and the client could get a reset instead of the answer.) */
    static char http_seen;
    if (!*req_cls) {
        *req_cls = &http_seen;
        const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) ||
            (length && strtoull(length, NULL, 10) > HTTP_BODY_MAX)) {
            static const char msg[] = "request body: longer than 65536 bytes or of unknown length "
                                      "(use GET or HEAD, without a body)\n";
            return http_send_static(conn, MHD_HTTP_CONTENT_TOO_LARGE, HTTP_TEXT_PLAIN, msg, sizeof(msg) - 1);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }

    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        static const char msg[] = "method not allowed: use GET or HEAD\n";
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
        if (resp)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        return http_send(conn, MHD_HTTP_METHOD_NOT_ALLOWED, HTTP_TEXT_PLAIN, resp);
    }

    struct buf b;
    buf_init(&b);
    if (strcmp(url, "/metrics") == 0) {
        registry_write(site->reg, &b);
        selfstat_write(&b);
        return http_send_buf(conn, MHD_HTTP_OK, HTTP_METRICS_TYPE, &b);
    }
    if (strcmp(url, "/dashboard.json") == 0)
        return http_send_static(conn, MHD_HTTP_OK, "application/json", site->dashboard, site->dashboard_len);
    if (strcmp(url, "/alerts.yml") == 0)
        return http_send_static(conn, MHD_HTTP_OK, "application/yaml", site->alerts, site->alerts_len);
    struct status_input in = { site->reg, site->hist, clock_wall_s(), (double)clock_now_ns() / CLOCK_NS_PER_S };
    if (strcmp(url, "/") == 0) {
        unsigned refresh = STATUS_REFRESH_DEFAULT;
        const char *arg = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "refresh");
        if (arg && status_parse_refresh(arg, &refresh) < 0) {
            buf_printf(&b, "refresh: expected whole seconds from 0 (no updates) to %u\n", STATUS_REFRESH_MAX);
            return http_send_buf(conn, MHD_HTTP_BAD_REQUEST, HTTP_TEXT_PLAIN, &b);
        }
        status_html(&in, refresh, &b);
        return http_send_buf(conn, MHD_HTTP_OK, "text/html; charset=utf-8", &b);
    }
    if (strcmp(url, "/status.json") == 0) {
        status_json(&in, &b);
        return http_send_buf(conn, MHD_HTTP_OK, "application/json", &b);
    }
    if (strcmp(url, "/status.js") == 0)
        return http_send_static(conn, MHD_HTTP_OK, "text/javascript; charset=utf-8", site->status_js,
                                site->status_js_len);
    if (strcmp(url, "/status.css") == 0)
        return http_send_static(conn, MHD_HTTP_OK, "text/css; charset=utf-8", site->status_css,
                                site->status_css_len);
    buf_puts(&b, "not found: ");
    buf_puts(&b, url);
    buf_puts(&b, "\n");
    return http_send_buf(conn, MHD_HTTP_NOT_FOUND, HTTP_TEXT_PLAIN, &b);
}

/* MHD's own words into our log; a failed TLS handshake is counted
 * (tls_server_mhd_log): anyone who can connect can make any number. */
static void http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct http_server *srv = cls;
    char text[512];
    vsnprintf(text, sizeof(text), fmt, ap);
    size_t n = strlen(text);
    while (n && text[n - 1] == '\n')
        text[--n] = '\0';
    if (!tls_server_mhd_log(srv->tls, "exporter", text))
        log_warn("libmicrohttpd says=\"%s\"", text);
}

int http_start(struct http_server *srv, int listen_fd, struct http_site *site, struct tls_server *tls)
{
    srv->epoll_fd = -1;
    srv->tls = tls;
    struct MHD_OptionItem tls_opts[] = {
        { tls ? MHD_OPTION_HTTPS_CERT_CALLBACK : MHD_OPTION_END, 0, tls ? tls_server_callback() : NULL },
        { MHD_OPTION_END, 0, NULL },
    };
    srv->daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (tls ? MHD_USE_TLS : 0), 0, NULL, NULL,
                                   http_handle, site, MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, srv,
                                   MHD_OPTION_LISTEN_SOCKET, listen_fd,
                                   MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
                                   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                                   MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONNECTION_MEMORY,
                                   MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        srv->daemon ? MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    if (!info) {
        http_stop(srv);
        return -EIO;
    }
    srv->epoll_fd = info->epoll_fd;
    return 0;
}

void http_run(struct http_server *srv)
{
    if (srv->daemon)
        MHD_run(srv->daemon);
}

int64_t http_timeout_ms(struct http_server *srv)
{
    MHD_UNSIGNED_LONG_LONG ms;
    if (!srv->daemon || MHD_get_timeout(srv->daemon, &ms) != MHD_YES)
        return -1;
    return ms > INT64_MAX ? INT64_MAX : (int64_t)ms;
}

int http_tls_reload(struct http_server *srv, const struct config *cfg, char *why, size_t why_len)
{
    return tls_server_reload(srv->tls, "exporter", cfg->exporter.tls_cert, cfg->exporter.tls_key, why, why_len);
}

void http_stop(struct http_server *srv)
{
    if (srv->daemon)
        MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
    tls_server_free(srv->tls);
    srv->tls = NULL;
    srv->epoll_fd = -1;
}
