/* rendervisor-exporter: takes the supervisor's and the renderer's reports on
 * the ingest socket and serves them, with its own process figures, as
 * Prometheus metrics; also the dashboard, the alert rules and a status page.
 * One thread, one epoll loop: signals, the ingest socket, MHD's epoll fds. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "history.h"
#include "http.h"
#include "intake.h"
#include "log.h"
#include "net.h"
#include "registry.h"
#include "selfstat.h"
#include "tls.h"
#include "xalloc.h"

extern const char exporter_dashboard_json[];
extern const size_t exporter_dashboard_json_len;
extern const char exporter_alerts_yml[];
extern const size_t exporter_alerts_yml_len;
extern const char exporter_status_js[];
extern const size_t exporter_status_js_len;
extern const char exporter_status_css[];
extern const size_t exporter_status_css_len;

enum main_watch { MAIN_SIGNALS, MAIN_INTAKE, MAIN_HTTP_UNIX, MAIN_HTTP_TCP };

static const char main_about[] =
    "Serves the reports sent to the ingest socket as Prometheus metrics, with\n"
    "/dashboard.json, /alerts.yml and a status page at /. Normally started by\n"
    "rendervisor, which passes --config.\n";

static int main_watch(int epfd, int fd, enum main_watch what)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = what };
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* SIGHUP: the supervisor has reloaded the config and kept us running (a
 * change of our other settings restarts us instead). The file and the
 * environment are read again and the TCP listener's certificate and key
 * taken for new connections; anything wrong keeps what runs. */
static void main_reload(const char *config_path, struct http_server *tcp)
{
    struct config *cfg = cli_child_reload(config_path, "config");
    if (!cfg)
        return;
    log_info("exporter config reloaded path=%s", config_path);
    /* Without a TCP listener there is nothing to reload: a new listen is
     * a restart. */
    char why[768];
    if (tcp->daemon && http_tls_reload(tcp, cfg, why, sizeof(why)) < 0)
        log_error("exporter tls reload refused, keeping the running certificate reason=\"%s\"", why);
    else if (tcp->tls)
        log_info("exporter tls reloaded %s", tls_pair_describe(tls_server_current(tcp->tls)));
    config_free(cfg);
}

int main(int argc, char **argv)
{
    /* Blocked before the config is read: a SIGHUP from then on waits in
     * the signalfd, and one before found the file already changed. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int exit_code;
    const char *config_path;
    struct config *cfg = cli_child_config(argc, argv, "rendervisor-exporter", main_about, &exit_code, &config_path);
    if (!cfg)
        return exit_code;
    log_init("exporter", cfg->supervisor.log_level, cfg->supervisor.log_format);

    int rc = 1;
    struct registry *reg = registry_new(cfg);
    struct history *hist = history_new(cfg);
    registry_set_observer(reg, history_observe, hist);
    struct intake in = { .fd = -1 };
    struct http_server unix_srv = { NULL, -1, NULL }, tcp_srv = { NULL, -1, NULL };
    struct http_site site = {
        .reg = reg,
        .hist = hist,
        .cfg = cfg,
        .dashboard = exporter_dashboard_json,
        .dashboard_len = exporter_dashboard_json_len,
        .alerts = exporter_alerts_yml,
        .alerts_len = exporter_alerts_yml_len,
        .status_js = exporter_status_js,
        .status_js_len = exporter_status_js_len,
        .status_css = exporter_status_css,
        .status_css_len = exporter_status_css_len,
    };
    char *ingest_path = config_runtime_path(cfg, cfg->exporter.ingest);
    char *http_path = config_runtime_path(cfg, cfg->exporter.socket);
    int sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (sigfd < 0 || epfd < 0) {
        log_error_errno(errno, "cannot create the event loop");
        goto out;
    }
    if (selfstat_init() < 0)
        log_warn("cannot read the boot time: process_start_time_seconds will be off");

    int err = intake_open(&in, ingest_path, reg);
    if (err < 0) {
        log_error_errno(err, "cannot open the ingest socket path=%s", ingest_path);
        goto out;
    }
    int ufd = net_listen_unix(http_path, SOCK_STREAM, 0600, 64);
    if (ufd < 0 || (err = http_start(&unix_srv, ufd, &site, NULL)) < 0) {
        log_error_errno(ufd < 0 ? ufd : err, "cannot serve HTTP on the Unix socket path=%s", http_path);
        goto out;
    }
    if (cfg->exporter.listen[0]) {
        struct tls_server *tls = NULL;
        if (cfg->exporter.tls_cert[0] &&
            !(tls = tls_server_open("exporter", cfg->exporter.tls_cert, cfg->exporter.tls_key)))
            goto out;
        int tfd = net_listen_tcp(cfg->exporter.listen, 64);
        if (tfd < 0)
            tls_server_free(tls);
        if (tfd < 0 || (err = http_start(&tcp_srv, tfd, &site, tls)) < 0) {
            log_error_errno(tfd < 0 ? tfd : err, "cannot listen listen=%s", cfg->exporter.listen);
            goto out;
        }
    }
    if (main_watch(epfd, sigfd, MAIN_SIGNALS) < 0 || main_watch(epfd, in.fd, MAIN_INTAKE) < 0 ||
        main_watch(epfd, unix_srv.epoll_fd, MAIN_HTTP_UNIX) < 0 ||
        (tcp_srv.daemon && main_watch(epfd, tcp_srv.epoll_fd, MAIN_HTTP_TCP) < 0)) {
        log_error_errno(errno, "cannot watch the sockets");
        goto out;
    }
    log_info("exporter ready ingest=%s socket=%s listen=%s tls=%s", ingest_path, http_path,
             cfg->exporter.listen[0] ? cfg->exporter.listen : "none", tcp_srv.tls ? "on" : "off");

    for (;;) {
        int64_t t1 = http_timeout_ms(&unix_srv), t2 = http_timeout_ms(&tcp_srv);
        int64_t t = t1 < 0 ? t2 : t2 < 0 ? t1 : (t1 < t2 ? t1 : t2);
        struct epoll_event evs[16];
        int n = epoll_wait(epfd, evs, 16, t < 0 ? -1 : t > 60000 ? 60000 : (int)t);
        if (n < 0 && errno != EINTR) {
            log_error_errno(errno, "epoll_wait failed");
            goto out;
        }
        for (int i = 0; i < n; i++) {
            switch (evs[i].data.u32) {
            case MAIN_SIGNALS: {
                struct signalfd_siginfo si;
                while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                    if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
                        log_info("exporter stopping signal=%s", si.ssi_signo == SIGTERM ? "TERM" : "INT");
                        rc = 0;
                        goto out;
                    }
                    if (si.ssi_signo == SIGHUP)
                        main_reload(config_path, &tcp_srv);
                }
                break;
            }
            case MAIN_INTAKE:
                intake_drain(&in);
                break;
            }
        }
        /* MHD decides for itself what is ready; calling it when nothing is
         * costs one epoll_wait with a zero timeout. */
        http_run(&unix_srv);
        http_run(&tcp_srv);
    }

out:
    http_stop(&tcp_srv);
    http_stop(&unix_srv);
    intake_close(&in);
    if (sigfd >= 0)
        close(sigfd);
    if (epfd >= 0)
        close(epfd);
    free(ingest_path);
    free(http_path);
    registry_free(reg);
    history_free(hist);
    config_free(cfg);
    return rc;
}
