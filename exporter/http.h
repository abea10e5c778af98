/* The exporter's HTTP side (libmicrohttpd, run from the exporter's own epoll
 * loop): /metrics, /dashboard.json, /alerts.yml, and a status page at / with
 * /status.json, /status.js and /status.css (status.h). One
 * daemon per listening socket (the Unix socket, and the TCP listener when
 * configured), sharing one handler. */
#ifndef RV_HTTP_H
#define RV_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "history.h"
#include "registry.h"
#include "tls.h"

struct http_site {
    struct registry *reg;
    const struct history *hist;
    const struct config *cfg;
    const char *dashboard; /* embedded dashboards/rendervisor.json */
    size_t dashboard_len;
    const char *alerts; /* embedded alerts/rendervisor.rules.yml */
    size_t alerts_len;
    const char *status_js; /* embedded exporter/status.js */
    size_t status_js_len;
    const char *status_css; /* embedded exporter/status.css */
    size_t status_css_len;
};

struct http_server {
    struct MHD_Daemon *daemon;
    int epoll_fd; /* MHD's own epoll fd, to be watched by the caller */
    struct tls_server *tls; /* NULL: plain HTTP */
};

/* Serve site on an already listening socket (taken over). tls: serve
 * HTTPS with it (taken over), or NULL. 0 or -errno. */
int http_start(struct http_server *srv, int listen_fd, struct http_site *site, struct tls_server *tls);
/* On SIGHUP: the TCP listener's certificate and key read again from cfg's
 * exporter.tls_cert and tls_key, for new connections (tls_server_reload:
 * on failure the running pair stays, why says what was wrong). */
int http_tls_reload(struct http_server *srv, const struct config *cfg, char *why, size_t why_len);
/* Do the work that is ready; call when epoll_fd is readable or the timeout
 * from http_timeout_ms() has passed. */
void http_run(struct http_server *srv);
/* How long the caller may wait before http_run() must be called (-1: no
 * limit). */
int64_t http_timeout_ms(struct http_server *srv);
void http_stop(struct http_server *srv);

#endif
