/* libmicrohttpd in "external epoll" mode: MHD keeps its own epoll set of
 * the listening socket and connections, and the exporter's loop watches that
 * one fd. So serving /metrics and taking ingest datagrams happen in one
 * thread, one after the other, and the registry needs no lock. */
#include "http.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "selfstat.h"
#include "xalloc.h"

#define HTTP_TEXT_PLAIN "text/plain; charset=utf-8"
#define HTTP_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
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

static void http_html_escape(struct buf *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': buf_puts(out, "&lt;"); break;
        case '>': buf_puts(out, "&gt;"); break;
        case '&': buf_puts(out, "&amp;"); break;
        case '"': buf_puts(out, "&quot;"); break;
        default: buf_append(out, s, 1);
        }
    }
}

static double http_get(const struct http_site *site, const char *family, const char *child, const char *k2,
                       const char *v2)
{
    const char *labels[] = { "child", child, k2, v2, NULL };
    double v = 0;
    if (registry_get(site->reg, family, labels, &v) < 0)
        return -1;
    return v;
}

static void http_bytes(struct buf *out, double bytes)
{
    if (bytes < 0)
        buf_puts(out, "&ndash;");
    else if (bytes >= 1 << 30)
        buf_printf(out, "%.2f GiB", bytes / (1 << 30));
    else
        buf_printf(out, "%.1f MiB", bytes / (1 << 20));
}

static const char *const http_states[] = { "idle", "running", "stopping", "backoff", "stopped" };
static const char *const http_reasons[] = { "exit", "signal", "memory_limit", "unhealthy", "requested" };

static void http_child_row(const struct http_site *site, struct buf *out, const char *child)
{
    double up = http_get(site, "rendervisor_child_up", child, NULL, NULL);
    const char *state = "unknown";
    for (size_t i = 0; i < sizeof(http_states) / sizeof(http_states[0]); i++)
        if (http_get(site, "rendervisor_child_state", child, "state", http_states[i]) == 1)
            state = http_states[i];
    double pss = http_get(site, "rendervisor_child_proportional_memory_bytes", child, NULL, NULL);
    double rss = http_get(site, "rendervisor_child_resident_memory_bytes", child, NULL, NULL);
    double limit = http_get(site, "rendervisor_child_memory_limit_bytes", child, NULL, NULL);
    double procs = http_get(site, "rendervisor_child_processes", child, NULL, NULL);
    double restarts = 0;
    buf_puts(out, "<tr><td class=name>");
    http_html_escape(out, child);
    buf_printf(out, "</td><td class=\"%s\">%s</td><td>%s</td><td>", up == 1 ? "up" : "down",
               up == 1 ? "up" : up == 0 ? "down" : "no report", state);
    http_bytes(out, pss);
    buf_puts(out, " / ");
    if (limit > 0)
        http_bytes(out, limit);
    else
        buf_puts(out, "no limit");
    if (limit > 0 && pss >= 0)
        buf_printf(out, " (%.0f%%)", 100.0 * pss / limit);
    buf_puts(out, "</td><td>");
    http_bytes(out, rss);
    buf_printf(out, "</td><td>%.0f</td><td>", procs < 0 ? 0 : procs);
    for (size_t i = 0; i < sizeof(http_reasons) / sizeof(http_reasons[0]); i++) {
        double n = http_get(site, "rendervisor_child_restarts_total", child, "reason", http_reasons[i]);
        if (n > 0) {
            buf_printf(out, "%s%s: %.0f", restarts > 0 ? ", " : "", http_reasons[i], n);
            restarts += n;
        }
    }
    if (restarts == 0)
        buf_puts(out, "0");
    buf_puts(out, "</td></tr>\n");
}

void http_status_page(const struct http_site *site, struct buf *out)
{
    buf_puts(out,
             "<!doctype html>\n<html><head><meta charset=utf-8><title>rendervisor</title>\n"
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}"
             ".up{background:#2e7d32;color:#fff}.down{background:#c62828;color:#fff}</style>\n"
             "</head><body>\n<h1>rendervisor</h1>\n"
             "<table>\n<tr><th>child</th><th>up</th><th>state</th><th>memory (PSS) / limit</th>"
             "<th>RSS</th><th>processes</th><th>restarts</th></tr>\n");
    http_child_row(site, out, "exporter");
    for (unsigned i = 0; i < site->cfg->browsers.count; i++) {
        char name[32];
        snprintf(name, sizeof(name), "browser-%u", i);
        http_child_row(site, out, name);
    }
    http_child_row(site, out, "renderer");
    buf_puts(out, "</table>\n<p>Browser: ");
    char version[INGEST_MAX_LABEL_VALUE];
    if (registry_label_value(site->reg, "grafana_image_renderer_browser_info", "version", version,
                             sizeof(version)) == 0)
        http_html_escape(out, version);
    else
        buf_puts(out, "not reported yet");
    buf_puts(out, "</p>\n<p><a href=\"/metrics\">/metrics</a> &middot; <a href=\"/dashboard.json\">"
                  "/dashboard.json</a> &middot; <a href=\"/alerts.yml\">/alerts.yml</a></p>\n"
                  "</body></html>\n");
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
    if (strcmp(url, "/") == 0) {
        http_status_page(site, &b);
        return http_send_buf(conn, MHD_HTTP_OK, "text/html; charset=utf-8", &b);
    }
    buf_puts(&b, "not found: ");
    buf_puts(&b, url);
    buf_puts(&b, "\n");
    return http_send_buf(conn, MHD_HTTP_NOT_FOUND, HTTP_TEXT_PLAIN, &b);
}

int http_start(struct http_server *srv, int listen_fd, struct http_site *site)
{
    srv->epoll_fd = -1;
    srv->daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, http_handle, site,
                                   MHD_OPTION_LISTEN_SOCKET, listen_fd,
                                   MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
                                   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                                   MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONNECTION_MEMORY,
                                   MHD_OPTION_END);
    if (!srv->daemon)
        return -EIO;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info) {
        MHD_stop_daemon(srv->daemon);
        srv->daemon = NULL;
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

void http_stop(struct http_server *srv)
{
    if (srv->daemon)
        MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
    srv->epoll_fd = -1;
}
