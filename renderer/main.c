/* rendervisor-renderer: Grafana's remote-rendering API in front of the
 * browsers the supervisor runs. Three threads: main waits for signals, the
 * HTTP thread (api.c) serves HTTP, and the browser thread runs libwebsockets, the
 * CDP connections and every render. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "api.h"
#include "browser.h"
#include "cli.h"
#include "clock.h"
#include "config.h"
#include "ctl.h"
#include "ingest.h"
#include "log.h"
#include "net.h"
#include "jobs.h"
#include "intercept.h"
#include "pagelog.h"
#include "trace.h"
#include "xalloc.h"

struct main_state {
    struct browser_pool *pool;
    atomic_int stop;
};

static const char main_about[] =
    "Serves Grafana's remote-rendering API (GET /render) using the browsers the\n"
    "supervisor runs. Normally started by rendervisor, which passes --config.\n";

static void *main_json_alloc(size_t size)
{
    return xmalloc(size);
}

static void main_json_free(void *ptr)
{
    free(ptr);
}

/* How often the drain looks whether the renders are over: they end on the
 * browser thread, and main's one wait stays the one for signals. */
#define MAIN_DRAIN_POLL_NS (50 * CLOCK_NS_PER_MS)

/* On SIGTERM: no new render, and the ones submitted (running or queued)
 * go on until they are answered or drain_ns has passed. What is left is
 * answered 503 afterwards. More SIGTERMs do not cut the drain short: the
 * supervisor signals the renderer's pidfd and its process group, so one
 * stop can arrive as two. */
static void main_drain(struct api *api, struct jobs *sched, const sigset_t *set, int64_t drain_ns)
{
    int64_t start = clock_now_ns(), end = start + drain_ns;
    api_drain(api);
    unsigned left = jobs_active(sched);
    log_info("renderer draining renders=%u drain_timeout_ms=%lld", left, (long long)(drain_ns / CLOCK_NS_PER_MS));
    int64_t now = start;
    while (left > 0 && now < end) {
        int64_t wait = end - now < MAIN_DRAIN_POLL_NS ? end - now : MAIN_DRAIN_POLL_NS;
        struct timespec ts = { .tv_sec = wait / CLOCK_NS_PER_S, .tv_nsec = wait % CLOCK_NS_PER_S };
        (void)sigtimedwait(set, NULL, &ts);
        left = jobs_active(sched);
        now = clock_now_ns();
    }
    left = jobs_active(sched);
    if (left)
        log_warn("renderer drain over with renders left, they are answered 503 renders=%u waited_ms=%lld", left,
                 (long long)((clock_now_ns() - start) / CLOCK_NS_PER_MS));
    else
        log_info("renderer drained waited_ms=%lld", (long long)((clock_now_ns() - start) / CLOCK_NS_PER_MS));
}

/* SIGHUP: the supervisor has reloaded the config and kept us running (a
 * change of our other settings restarts us instead). The file and the
 * environment are read again and what can change in place is applied, each
 * on its own: the tokens (auth_token, auth_token_file) and log_page for
 * renders that start from then on, then the TLS certificate and key for
 * new connections. A config that does not load keeps everything as it
 * was, with an error naming what is wrong; a bad certificate pair keeps
 * the running one. */
static void main_reload(struct api *api, const char *config_path)
{
    struct config *next = cli_child_reload(config_path, "tokens and certificate");
    if (!next)
        return;
    size_t ntokens = 0;
    while (next->renderer.tokens[ntokens])
        ntokens++;
    api_tokens_set(api, next->renderer.tokens);
    next->renderer.tokens = NULL;
    /* The level is the running logger's: a new log_level takes effect at
     * our next start (docs/configuration.md, "Reloading"), and page lines
     * at debug are for a logger that writes them. */
    pagelog_configure(next->renderer.log_page, log_enabled(CONFIG_LOG_DEBUG));
    log_info("renderer config reloaded path=%s tokens=%zu log_page=%s", config_path, ntokens,
             next->renderer.log_page ? "true" : "false");
    char why[768];
    if (api_tls_reload(api, next, why, sizeof(why)) < 0)
        log_error("renderer tls reload refused, keeping the running certificate reason=\"%s\"", why);
    else if (next->renderer.tls_cert[0])
        log_info("renderer tls reloaded %s", api_tls_describe(api));
    config_free(next);
}

static void *main_browser_thread(void *arg)
{
    struct main_state *ms = arg;
    pthread_setname_np(pthread_self(), "rv-browsers");
    while (!atomic_load(&ms->stop))
        if (browser_pool_service(ms->pool) < 0)
            break;
    return NULL;
}

int main(int argc, char **argv)
{
    /* Every thread inherits this mask; main takes the signals with sigwait.
     * Blocked before the config is read: a SIGHUP from then on is waiting
     * for us, and one before found the file already changed. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int exit_code;
    const char *config_path;
    struct config *cfg = cli_child_config(argc, argv, "rendervisor-renderer", main_about, &exit_code, &config_path);
    if (!cfg)
        return exit_code;
    log_init("renderer", cfg->supervisor.log_level, cfg->supervisor.log_format);
    /* One malloc arena, not one per thread: the HTTP thread and the browser
     * thread each kept their own free memory after a burst of renders
     * (about 130 KiB between them), for a lock that is rarely contended. */
    mallopt(M_ARENA_MAX, 1);
    json_set_alloc_funcs(main_json_alloc, main_json_free);

    int rc = 1;
    struct main_state ms = { .pool = NULL };
    atomic_init(&ms.stop, 0);
    struct api *api = NULL;
    pthread_t thread;
    int thread_started = 0;
    struct ingest_sender ingest = { .fd = -1 };
    struct tracer *tracer = NULL;
    char *ingest_path = config_runtime_path(cfg, cfg->exporter.ingest);
    int err = ingest_sender_init(&ingest, ingest_path);
    if (err < 0) {
        log_error_errno(err, "cannot open the ingest socket path=%s", ingest_path);
        goto out;
    }
    /* Up to one more render per browser slot may wait for a free browser. */
    struct jobs_limits lim = {
        .concurrency = cfg->renderer.concurrency,
        .waiting = cfg->renderer.concurrency * cfg->browsers.count,
        .render_memory = cfg->renderer.render_memory,
        .memory_budget = cfg->renderer.memory_budget,
    };
    intercept_set_allowed_hosts((const char *const *)cfg->renderer.allowed_hosts);
    pagelog_configure(cfg->renderer.log_page, cfg->supervisor.log_level == CONFIG_LOG_DEBUG);
    /* Before the other threads: libcurl's global setup is not thread-safe.
     * Tracing that cannot start is logged; renders go on without it. */
    tracer = tracer_new(cfg);
    struct jobs *sched = jobs_new(&lim, &ingest);
    char *ctl_path = config_runtime_path(cfg, CTL_SUPERVISOR);
    jobs_set_control(sched, ctl_path);
    free(ctl_path);
    static const struct browser_pool_ops ops = { jobs_wake, jobs_changed };
    ms.pool = browser_pool_new(cfg->browsers.count, cfg->browsers.port_base,
                               cfg->browsers.devtools == CONFIG_DEVTOOLS_PIPE, &ingest, &ops, sched);
    if (!ms.pool) {
        log_error("cannot create the libwebsockets context");
        jobs_free(sched);
        goto out;
    }
    jobs_set_pool(sched, ms.pool);

    int fd = net_listen_tcp(cfg->renderer.listen, 128);
    if (fd < 0) {
        log_error_errno(fd, "cannot listen listen=%s", cfg->renderer.listen);
        goto out_pool;
    }
    if ((err = pthread_create(&thread, NULL, main_browser_thread, &ms)) != 0) {
        close(fd);
        log_error_errno(err, "cannot start the browser thread");
        goto out_pool;
    }
    thread_started = 1;
    api = api_start(fd, cfg, sched, ms.pool, tracer);
    if (!api) {
        log_error_errno(errno, "cannot serve HTTP listen=%s", cfg->renderer.listen);
        goto out_thread;
    }
    log_info("renderer ready listen=%s tls=%s browsers=%u devtools=%s port_base=%u concurrency=%u",
             cfg->renderer.listen, cfg->renderer.tls_cert[0] ? "on" : "off", cfg->browsers.count,
             cfg->browsers.devtools == CONFIG_DEVTOOLS_PIPE ? "pipe" : "port", cfg->browsers.port_base,
             cfg->renderer.concurrency);
    log_info("renderer api api_level=%s version=%s", API_COMPAT_VERSION, RENDERVISOR_VERSION);

    for (;;) {
        int sig;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGTERM || sig == SIGINT) {
            log_info("renderer stopping signal=%s", sig == SIGTERM ? "TERM" : "INT");
            if (cfg->renderer.drain_timeout_ns > 0)
                main_drain(api, sched, &set, cfg->renderer.drain_timeout_ns);
            rc = 0;
            break;
        }
        if (sig == SIGHUP)
            main_reload(api, config_path);
    }

out_thread:
    atomic_store(&ms.stop, 1);
    browser_pool_wake(ms.pool);
    if (thread_started)
        pthread_join(thread, NULL);
    /* The browser thread is gone: answer what is left (resuming those
     * connections) before MHD stops, which it cannot do with any suspended. */
    jobs_abort_all(sched);
    api_stop(api);
out_pool:
    browser_pool_free(ms.pool);
    jobs_free(sched);
out:
    tracer_free(tracer);
    ingest_sender_fini(&ingest);
    free(ingest_path);
    config_free(cfg);
    return rc;
}
