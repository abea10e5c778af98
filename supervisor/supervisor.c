/* The supervisor's event loop. Everything that happens to a child arrives here
 * as an event (a readable pidfd or pipe, a signal, a deadline), is turned into
 * a child_step() call, and the action it returns is carried out. Reaping
 * happens in one place, sv_reap(), for children and adopted orphans alike. */
#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "ctl.h"
#include "log.h"
#include "net.h"
#include "procstat.h"
#include "report.h"
#include "sampler.h"
#include "spawn.h"
#include "xalloc.h"

#define SV_MAX_STRAYS 256

static void sv_report_child(struct supervisor *sv, struct sv_child *c);
static void sv_step(struct supervisor *sv, struct sv_child *c, enum child_event ev, int arg);
static void sv_over_limit(struct supervisor *sv, struct sv_child *c);
static void sv_notify(struct supervisor *sv);
static void sv_send_pipes(struct supervisor *sv, struct sv_child *c);
static void sv_close_pipes(struct sv_child *c);
static void sv_warn_devtools(const struct config *cfg);

static int sv_epoll_add(struct supervisor *sv, int fd, struct sv_watch *w)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = w };
    return epoll_ctl(sv->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void sv_close_watched(struct supervisor *sv, int *fd)
{
    if (*fd < 0)
        return;
    epoll_ctl(sv->epfd, EPOLL_CTL_DEL, *fd, NULL);
    close(*fd);
    *fd = -1;
}

/* ---- output pipes ---------------------------------------------------- */

/* The exporter and the renderer log in our own record format: their records
 * are passed on, tagged, rather than nested (log_child_output). */
static int sv_child_is_ours(const struct sv_child *c)
{
    return c->spec.role == SPEC_ROLE_EXPORTER || c->spec.role == SPEC_ROLE_RENDERER;
}

static void sv_stream_flush(struct sv_child *c, struct sv_stream *s)
{
    if (s->len)
        log_child_output(c->spec.name, s->name, sv_child_is_ours(c), s->buf, s->len);
    s->len = 0;
}

/* Read what is there and log each complete line; a line longer than the
 * buffer is logged in pieces rather than growing without bound. */
static void sv_stream_read(struct supervisor *sv, struct sv_child *c, struct sv_stream *s)
{
    for (;;) {
        ssize_t n = read(s->fd, s->buf + s->len, sizeof(s->buf) - s->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            sv_stream_flush(c, s);
            sv_close_watched(sv, &s->fd);
            return;
        }
        s->len += (size_t)n;
        char *start = s->buf, *nl;
        while ((nl = memchr(start, '\n', (size_t)(s->buf + s->len - start)))) {
            log_child_output(c->spec.name, s->name, sv_child_is_ours(c), start, (size_t)(nl - start));
            start = nl + 1;
        }
        s->len = (size_t)(s->buf + s->len - start);
        memmove(s->buf, start, s->len);
        if (s->len == sizeof(s->buf))
            sv_stream_flush(c, s);
    }
}

static void sv_stream_open(struct supervisor *sv, struct sv_child *c, struct sv_stream *s, int fd)
{
    s->fd = fd;
    s->len = 0;
    s->watch = (struct sv_watch){ .kind = SV_WATCH_STREAM, .child = c, .stream = s };
    if (sv_epoll_add(sv, fd, &s->watch) < 0) {
        log_warn_errno(errno, "cannot watch child output child=%s stream=%s", c->spec.name, s->name);
        close(fd);
        s->fd = -1;
    }
}

/* ---- carrying out the state machine's actions ------------------------ */

static void sv_signal_group(struct sv_child *c, int sig)
{
    if (c->pid <= 0)
        return;
    /* The pidfd names the leader without any chance of a reused pid; the
     * group id is safe too, because the leader is not reaped yet (we only
     * get here while it is ours to wait for). */
    if (c->pidfd >= 0)
        syscall(SYS_pidfd_send_signal, c->pidfd, sig, NULL, 0);
    kill(-c->pid, sig);
    /* A stopped process (SIGSTOP, a debugger) acts on SIGTERM only once it
     * runs again: let it, so it can end the polite way. */
    if (sig == SIGTERM) {
        if (c->pidfd >= 0)
            syscall(SYS_pidfd_send_signal, c->pidfd, SIGCONT, NULL, 0);
        kill(-c->pid, SIGCONT);
    }
}

/* ---- health probes ------------------------------------------------------ */

/* A child that has never answered gets this long before silence counts:
 * a browser the renderer never hears from is broken, not slow. Until its
 * first answer a child that misses is probed this often, so it is watched
 * soon after it is up. */
#define SV_PROBE_GRACE_NS (60 * CLOCK_NS_PER_S)
#define SV_PROBE_FIRST_NS (500 * CLOCK_NS_PER_MS)

static struct sv_child *sv_renderer(struct supervisor *sv);

static int sv_probing(const struct supervisor *sv, const struct sv_child *c)
{
    return sv->cfg->supervisor.health_interval_ns > 0 && c->spec.health && c->pid > 0 &&
           c->m.state == CHILD_RUNNING && !sv->shutting_down;
}

/* Its main process is stopped (SIGSTOP, a tracer). It is ours and not
 * reaped yet, so the pid cannot name another process. */
static int sv_child_stopped(const struct sv_child *c)
{
    struct procstat st;
    return c->pid > 0 && procstat_read(c->pid, &st) == 0 && probe_state_stopped(st.state);
}

static void sv_probe_reset(struct supervisor *sv, struct sv_child *c)
{
    (void)sv;
    c->probe.pending = 0;
    c->probe_failures = 0;
    c->probe_answered = 0;
    c->started_ns = clock_now_ns();
    c->probe_at_ns = c->started_ns + SV_PROBE_FIRST_NS;
}

static void sv_probe_done(struct supervisor *sv, struct sv_child *c, enum probe_result r)
{
    const struct config *cfg = sv->cfg;
    int64_t now = clock_now_ns();
    c->probe.pending = 0;
    /* Probes start every interval, however long the last one waited. */
    c->probe_at_ns = c->probe_started_ns + cfg->supervisor.health_interval_ns;
    if (c->probe_at_ns < now)
        c->probe_at_ns = now;
    if (!probe_is_miss(r)) {
        int first = r == PROBE_OK && !c->probe_answered;
        if (first)
            log_debug("child answers its health probe child=%s", c->spec.name);
        if (c->probe_failures)
            log_info("child passes its health probe again child=%s result=\"%s\"", c->spec.name,
                     probe_result_text(r));
        c->probe_failures = 0;
        if (r == PROBE_OK)
            c->probe_answered = 1;
        if (first)
            sv_notify(sv); /* the renderer's first answer may make the service ready */
        return;
    }
    if (!c->probe_answered && now - c->started_ns < SV_PROBE_GRACE_NS) {
        c->probe_at_ns = now + SV_PROBE_FIRST_NS; /* still starting */
        log_debug("child not answering its health probe yet child=%s why=\"%s\"", c->spec.name,
                  probe_result_text(r));
        return;
    }
    c->probe_failures++;
    log_warn("child failed its health probe child=%s failures=%u of=%u why=\"%s\"", c->spec.name,
             c->probe_failures, cfg->supervisor.health_failures, probe_result_text(r));
    if (c->probe_failures >= cfg->supervisor.health_failures) {
        c->probe_failures = 0;
        sv_step(sv, c, CHILD_EV_RESTART, CHILD_REASON_UNHEALTHY);
    }
}

/* Every probe asks the renderer (when there is one to ask) with its own
 * sequence number; the answer goes to the child that asked. */
static void sv_probe_start(struct supervisor *sv, struct sv_child *c)
{
    const struct config *cfg = sv->cfg;
    c->probe_started_ns = clock_now_ns();
    c->probe_at_ns = c->probe_started_ns + cfg->supervisor.health_timeout_ns;
    c->probe.pending = 1;
    if (++sv->probe_seq == 0)
        sv->probe_seq = 1;
    c->probe.seq = sv->probe_seq;
    c->probe.stopped_at_start = c->spec.role == SPEC_ROLE_BROWSER && sv_child_stopped(c);
    if (!sv_renderer(sv) || sv->ctl_fd < 0)
        return; /* the deadline decides (a browser by /proc) */
    int64_t ms = cfg->supervisor.health_timeout_ns / CLOCK_NS_PER_MS;
    char line[CTL_LINE_MAX], *path = config_runtime_path(cfg, CTL_RENDERER);
    ctl_probe_format(line, sizeof(line), c->probe.seq, ms > UINT32_MAX ? UINT32_MAX : (unsigned)ms);
    int rc = ctl_send(sv->ctl_fd, path, line);
    free(path);
    if (rc < 0) {
        /* A renderer still starting has not bound it yet: say so now,
         * rather than wait out the timeout for an answer that cannot come. */
        log_debug("cannot send a health probe child=%s error=%d", c->spec.name, -rc);
        enum probe_result r = probe_send_failed(c->spec.role == SPEC_ROLE_RENDERER, rc);
        if (r != PROBE_WAIT)
            sv_probe_done(sv, c, r);
    }
}

static int sv_browser_index(const struct sv_child *c, unsigned *index)
{
    return c->spec.role == SPEC_ROLE_BROWSER && sscanf(c->spec.name, NAMES_CHILD_BROWSER_FMT, index) == 1;
}

/* The renderer's answer to probe h->seq. */
static void sv_probe_answer(struct supervisor *sv, const struct ctl_health *h)
{
    for (size_t i = 0; i < sv->nchildren; i++) {
        struct sv_child *c = sv->children[i];
        if (!c->probe.pending || c->probe.seq != h->seq || !sv_probing(sv, c))
            continue;
        unsigned index;
        enum probe_result r = PROBE_WAIT;
        if (c->spec.role == SPEC_ROLE_RENDERER)
            r = probe_renderer_answer(h);
        else if (sv_browser_index(c, &index))
            r = probe_browser_answer(h, index);
        if (r != PROBE_WAIT)
            sv_probe_done(sv, c, r);
        return;
    }
}

/* Due probes start; probes past their deadline end. */
static void sv_probe_tick(struct supervisor *sv, int64_t now)
{
    for (size_t i = 0; i < sv->nchildren; i++) {
        struct sv_child *c = sv->children[i];
        if (!sv_probing(sv, c)) {
            c->probe.pending = 0;
            continue;
        }
        if (!c->probe_at_ns) /* probes were turned on by a reload */
            c->probe_at_ns = now + SV_PROBE_FIRST_NS;
        if (now < c->probe_at_ns)
            continue;
        if (!c->probe.pending)
            sv_probe_start(sv, c);
        else if (c->spec.role == SPEC_ROLE_BROWSER)
            sv_probe_done(sv, c, probe_browser_deadline(c->probe.stopped_at_start, sv_child_stopped(c)));
        else
            sv_probe_done(sv, c, probe_renderer_deadline());
    }
}

static int sv_spawn(struct supervisor *sv, struct sv_child *c)
{
    struct spawn_result r;
    int rc = spawn_child(&c->spec, &r);
    if (rc < 0) {
        log_error_errno(rc, "cannot start child child=%s program=%s", c->spec.name, c->spec.command.argv[0]);
        return rc;
    }
    c->pid = r.pid;
    c->pidfd = r.pidfd;
    c->start_wall = clock_wall_s();
    c->pid_watch = (struct sv_watch){ .kind = SV_WATCH_PIDFD, .child = c };
    if (sv_epoll_add(sv, c->pidfd, &c->pid_watch) < 0)
        log_warn_errno(errno, "cannot watch child pidfd child=%s", c->spec.name);
    sv_stream_open(sv, c, &c->out, r.out_fd);
    sv_stream_open(sv, c, &c->err, r.err_fd);
    sv_close_pipes(c);
    c->cdp_w = r.cdp_w;
    c->cdp_r = r.cdp_r;
    if (c->cdp_w >= 0)
        c->cdp_gen = ++sv->browser_starts;
    guardian_watch(&sv->guardian, c->pid);
    sv_probe_reset(sv, c);
    c->drain_since_ns = 0;
    log_info("child started child=%s pid=%d program=%s", c->spec.name, c->pid, c->spec.command.argv[0]);
    sv_send_pipes(sv, c);
    return 0;
}

/* Feed one event to a child's machine and carry out what it asks for. */
static void sv_step(struct supervisor *sv, struct sv_child *c, enum child_event ev, int arg)
{
    int64_t now = clock_now_ns();
    enum child_state before = c->m.state;
    enum child_action act = child_step(&c->m, ev, now, arg);

    switch (act) {
    case CHILD_ACT_SPAWN:
        if (sv_spawn(sv, c) == 0)
            child_step(&c->m, CHILD_EV_SPAWNED, clock_now_ns(), 0);
        else
            child_step(&c->m, CHILD_EV_SPAWN_FAILED, clock_now_ns(), 0);
        break;
    case CHILD_ACT_TERM:
        log_info("stopping child child=%s pid=%d reason=%s timeout_ms=%lld", c->spec.name, c->pid,
                 c->m.stop_for_good ? "shutdown" : child_reason_name(c->m.stop_reason),
                 (long long)(c->m.stop_timeout_ns / CLOCK_NS_PER_MS));
        sv_signal_group(c, SIGTERM);
        break;
    case CHILD_ACT_KILL:
        log_warn("child did not stop in time, killing child=%s pid=%d", c->spec.name, c->pid);
        sv_signal_group(c, SIGKILL);
        break;
    case CHILD_ACT_NONE:
        break;
    }
    if (c->m.state != before || act == CHILD_ACT_SPAWN) {
        sv_report_child(sv, c);
        sv_notify(sv);
    }
}

/* ---- exits and reaping ----------------------------------------------- */

static void sv_child_exited(struct supervisor *sv, struct sv_child *c, int status)
{
    int pid = c->pid;
    double ran = clock_wall_s() - c->start_wall;
    /* An end we asked for is news; one we did not is a warning. */
    enum config_log_level level = c->m.state == CHILD_STOPPING ? CONFIG_LOG_INFO : CONFIG_LOG_WARN;
    if (WIFSIGNALED(status)) {
        const char *sig = sigabbrev_np(WTERMSIG(status));
        log_write(level, 0, "child killed child=%s pid=%d signal=%s ran_s=%.3f", c->spec.name, pid,
                  sig ? sig : "?", ran);
    } else {
        log_write(level, 0, "child exited child=%s pid=%d code=%d ran_s=%.3f", c->spec.name, pid,
                  WEXITSTATUS(status), ran);
    }

    /* Whatever the child left behind in its group goes with it. */
    kill(-pid, SIGKILL);
    guardian_forget(&sv->guardian, pid);
    sv_close_watched(sv, &c->pidfd);
    if (c->out.fd >= 0)
        sv_stream_read(sv, c, &c->out);
    if (c->err.fd >= 0)
        sv_stream_read(sv, c, &c->err);
    sv_stream_flush(c, &c->out);
    sv_stream_flush(c, &c->err);
    sv_close_watched(sv, &c->out.fd);
    sv_close_watched(sv, &c->err.fd);
    /* The renderer sees the end of the browser as EOF on its read end, once
     * the browser's processes are gone; ours go now. */
    sv_close_pipes(c);
    c->pid = 0;

    sv_step(sv, c, CHILD_EV_EXITED, status);
    if (c->m.state == CHILD_BACKOFF)
        log_info("child will restart child=%s in_ms=%lld restarts=%llu", c->spec.name,
                 (long long)((c->m.deadline_ns - clock_now_ns()) / CLOCK_NS_PER_MS),
                 child_restarts_total(&c->m));
}

static void sv_reap(struct supervisor *sv)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        struct sv_child *owner = NULL;
        for (size_t i = 0; i < sv->nchildren && !owner; i++)
            if (sv->children[i]->pid == pid)
                owner = sv->children[i];
        if (owner) {
            sv_child_exited(sv, owner, status);
        } else if (pid == sv->guardian.pid) {
            log_warn("guardian exited, starting a new one pid=%d", pid);
            guardian_stop(&sv->guardian);
            sv->escaped_sig = 0;
            if (!sv->shutting_down && guardian_start(&sv->guardian) == 0)
                for (size_t i = 0; i < sv->nchildren; i++)
                    if (sv->children[i]->pid > 0)
                        guardian_watch(&sv->guardian, sv->children[i]->pid);
        } else {
            log_debug("reaped orphan pid=%d", pid);
        }
    }
}

/* ---- reports and samples --------------------------------------------- */

static void sv_report_child(struct supervisor *sv, struct sv_child *c)
{
    struct report_child r = {
        .name = c->spec.name,
        .state = c->m.state,
        .fig = &c->fig,
        .memory_limit = c->spec.memory_limit,
        .start_time = c->start_wall,
        .restarts = c->m.restarts,
    };
    ingest_buf_reset(sv->report);
    report_child_lines(sv->report, &r);
    report_dropped_line(sv->report, sv->sender.dropped);
    /* A missing or full socket drops this report; the next one catches up. */
    int rc = ingest_send(&sv->sender, sv->report);
    /* Something other than the exporter's socket at its path is said once,
     * each time it starts to be so. */
    const char *why = net_unix_peer_refusal(rc);
    if (why && !sv->sender_refused)
        log_warn("reports not sent: %s path=%s", why, sv->sender.path);
    sv->sender_refused = why != NULL;
}

/* Processes that left their child's session escape the guardian's session
 * sweep; it is told about them whenever that set changes. */
static void sv_tell_guardian_escaped(struct supervisor *sv, const int *roots)
{
    int pids[SV_MAX_STRAYS];
    unsigned long long starts[SV_MAX_STRAYS];
    size_t n = sampler_escaped(sv->sampler, roots, sv->nchildren, pids, starts, SV_MAX_STRAYS);
    unsigned long long sig = n;
    for (size_t i = 0; i < n; i++)
        sig = sig * 1000003ULL + (unsigned long long)pids[i] * 31ULL + starts[i];
    if (sig == sv->escaped_sig)
        return;
    sv->escaped_sig = sig;
    guardian_escaped(&sv->guardian, pids, starts, n);
}

static struct sv_child *sv_renderer(struct supervisor *sv)
{
    for (size_t i = 0; i < sv->nchildren; i++)
        if (sv->children[i]->spec.role == SPEC_ROLE_RENDERER && sv->children[i]->pid > 0 &&
            sv->children[i]->m.state == CHILD_RUNNING)
            return sv->children[i];
    return NULL;
}

/* What the service uses in all (its children's PSS), for the renderer's
 * admission by memory where it has no cgroup of its own to read. */
static void sv_tell_renderer_memory(struct supervisor *sv)
{
    if (!sv_renderer(sv) || sv->ctl_fd < 0)
        return;
    unsigned long long kib = 0;
    for (size_t i = 0; i < sv->nchildren; i++)
        kib += sv->children[i]->fig.proportional_bytes / 1024;
    char line[CTL_LINE_MAX], *path = config_runtime_path(sv->cfg, CTL_RENDERER);
    snprintf(line, sizeof(line), "memory_kib %llu\n", kib > UINT32_MAX ? (unsigned long long)UINT32_MAX : kib);
    ctl_send(sv->ctl_fd, path, line); /* the next sample tells again */
    free(path);
}

static void sv_sample(struct supervisor *sv)
{
    int roots[sv->nchildren + 1];
    uint64_t limits[sv->nchildren + 1];
    struct proctree_ledger ledgers[sv->nchildren + 1];
    struct proctree_figures figs[sv->nchildren + 1];
    int strays[SV_MAX_STRAYS];
    size_t nstrays = SV_MAX_STRAYS;

    for (size_t i = 0; i < sv->nchildren; i++) {
        roots[i] = sv->children[i]->pid;
        limits[i] = sv->children[i]->spec.memory_limit;
        ledgers[i] = sv->children[i]->ledger;
    }
    int rc = sampler_run(sv->sampler, sv->self_pid, roots, limits, sv->nchildren, ledgers, figs, strays,
                         &nstrays);
    for (size_t i = 0; i < sv->nchildren; i++)
        sv->children[i]->ledger = ledgers[i];
    if (rc < 0) {
        log_warn_errno(rc, "cannot sample the process table");
        return;
    }

    sv_tell_guardian_escaped(sv, roots);

    for (size_t i = 0; i < nstrays; i++) {
        /* The guardian is our own child, not an orphan. */
        if (strays[i] == sv->guardian.pid)
            continue;
        log_warn("ending orphan that belongs to no child pid=%d", strays[i]);
        kill(strays[i], SIGKILL);
    }

    for (size_t i = 0; i < sv->nchildren; i++) {
        struct sv_child *c = sv->children[i];
        c->fig = figs[i];
        uint64_t limit = c->spec.memory_limit;
        /* A child being drained is looked at every sample until it restarts,
         * whatever its memory says now: the renderer holds it idle. */
        if (c->m.state == CHILD_RUNNING && ((limit && c->fig.proportional_bytes > limit) || c->drain_since_ns))
            sv_over_limit(sv, c);
        sv_report_child(sv, c);
    }
    sv_tell_renderer_memory(sv);
}


/* A browser over its limit is first drained: the renderer gives it no new
 * render and says "drained" when its renders in flight are over; then it
 * restarts. It restarts at once when there is no renderer to ask, when it
 * has had drain_timeout, or when it has grown to half as much again as its
 * limit meanwhile. Other children restart at once. */
static void sv_over_limit(struct supervisor *sv, struct sv_child *c)
{
    uint64_t limit = c->spec.memory_limit;
    int64_t now = clock_now_ns();
    int64_t drain = sv->cfg->browsers.drain_timeout_ns;
    if (c->drain_since_ns) {
        if (now - c->drain_since_ns < drain && c->fig.proportional_bytes <= limit + limit / 2)
            return; /* its renders may still finish */
        log_warn("child not drained in time, restarting child=%s pss_bytes=%llu limit_bytes=%llu drained_ms=%lld",
                 c->spec.name, (unsigned long long)c->fig.proportional_bytes, (unsigned long long)limit,
                 (long long)((now - c->drain_since_ns) / CLOCK_NS_PER_MS));
        sv_step(sv, c, CHILD_EV_RESTART, CHILD_REASON_MEMORY_LIMIT);
        return;
    }
    log_warn("child over its memory limit child=%s pss_bytes=%llu rss_bytes=%llu limit_bytes=%llu processes=%u",
             c->spec.name, (unsigned long long)c->fig.proportional_bytes, (unsigned long long)c->fig.resident_bytes,
             (unsigned long long)limit, c->fig.processes);
    struct sv_child *r = sv_renderer(sv);
    unsigned index;
    if (c->spec.role == SPEC_ROLE_BROWSER && drain > 0 && r && sv->ctl_fd >= 0 &&
        sscanf(c->spec.name, NAMES_CHILD_BROWSER_FMT, &index) == 1) {
        char line[CTL_LINE_MAX], *path = config_runtime_path(sv->cfg, CTL_RENDERER);
        snprintf(line, sizeof(line), "drain %u\n", index);
        int rc = ctl_send(sv->ctl_fd, path, line);
        free(path);
        if (rc == 0) {
            c->drain_since_ns = now;
            log_info("draining child before its restart child=%s timeout_ms=%lld", c->spec.name,
                     (long long)(drain / CLOCK_NS_PER_MS));
            return;
        }
        log_warn_errno(rc, "cannot ask the renderer to drain child=%s", c->spec.name);
    }
    sv_step(sv, c, CHILD_EV_RESTART, CHILD_REASON_MEMORY_LIMIT);
}

/* ---- DevTools pipes (devtools = pipe) ---------------------------------- */

static void sv_close_pipes(struct sv_child *c)
{
    if (c->cdp_w >= 0)
        close(c->cdp_w);
    if (c->cdp_r >= 0)
        close(c->cdp_r);
    c->cdp_w = c->cdp_r = -1;
}

/* Hand the renderer its ends of browser c's pipes ("pipes N G", ctl.h). A
 * renderer that misses this says "hello" again and gets them then. */
static void sv_send_pipes(struct supervisor *sv, struct sv_child *c)
{
    unsigned index;
    if (c->cdp_w < 0 || c->cdp_r < 0 || sv->ctl_fd < 0 || !sv_renderer(sv) ||
        sscanf(c->spec.name, NAMES_CHILD_BROWSER_FMT, &index) != 1)
        return;
    char line[CTL_LINE_MAX], *path = config_runtime_path(sv->cfg, CTL_RENDERER);
    snprintf(line, sizeof(line), CTL_PIPES " %u %u\n", index, c->cdp_gen);
    int fds[2] = { c->cdp_w, c->cdp_r };
    int rc = ctl_send_fds(sv->ctl_fd, path, line, fds, 2);
    free(path);
    if (rc < 0)
        log_debug("cannot hand the renderer its DevTools pipes yet child=%s generation=%u error=%d", c->spec.name,
                  c->cdp_gen, -rc);
    else
        log_debug("DevTools pipes handed to the renderer child=%s generation=%u", c->spec.name, c->cdp_gen);
}

/* The renderer's "hello": it is listening, and lacks some browser's pipes. */
static void sv_ctl_hello(struct supervisor *sv)
{
    for (size_t i = 0; i < sv->nchildren; i++)
        if (sv->children[i]->spec.role == SPEC_ROLE_BROWSER && sv->children[i]->pid > 0)
            sv_send_pipes(sv, sv->children[i]);
}

/* The renderer's "drained N" (browser-N has no render left; restart it),
 * its "hello" (it wants the browsers' pipes) and its answers to health
 * probes. */
static void sv_ctl_read(struct supervisor *sv)
{
    char line[CTL_LINE_MAX];
    pid_t pid;
    int n;
    while ((n = ctl_recv(sv->ctl_fd, line, sizeof(line), &pid)) != -EAGAIN) {
        if (n < 0) {
            if (n == -EMSGSIZE)
                continue;
            log_warn_errno(n, "cannot read the control socket");
            return;
        }
        struct sv_child *r = sv_renderer(sv);
        unsigned index;
        struct ctl_health h;
        if (r && pid == r->pid && ctl_health_parse(line, &h) == 0) {
            sv_probe_answer(sv, &h);
            continue;
        }
        if (r && pid == r->pid && strcmp(line, CTL_HELLO) == 0) {
            sv_ctl_hello(sv);
            continue;
        }
        if (!r || pid != r->pid || ctl_parse(line, "drained", &index) < 0) {
            log_warn("control line refused pid=%d line_bytes=%d", (int)pid, n);
            continue;
        }
        char name[SPEC_NAME_MAX];
        snprintf(name, sizeof(name), NAMES_CHILD_BROWSER_FMT, index);
        for (size_t i = 0; i < sv->nchildren; i++) {
            struct sv_child *c = sv->children[i];
            if (strcmp(c->spec.name, name) == 0 && c->drain_since_ns && c->m.state == CHILD_RUNNING) {
                log_info("child drained, restarting child=%s drained_ms=%lld", c->spec.name,
                         (long long)((clock_now_ns() - c->drain_since_ns) / CLOCK_NS_PER_MS));
                sv_step(sv, c, CHILD_EV_RESTART, CHILD_REASON_MEMORY_LIMIT);
            }
        }
    }
}

/* ---- children come and go with the config ---------------------------- */

static struct sv_child *sv_child_new(struct supervisor *sv, struct child_spec *spec)
{
    struct sv_child *c = xcalloc(1, sizeof(*c));
    spec_move(&c->spec, spec);
    child_machine_init(&c->m, sv->cfg->supervisor.stop_timeout_ns);
    c->pidfd = -1;
    c->cdp_w = c->cdp_r = -1;
    c->out = (struct sv_stream){ .fd = -1, .name = "stdout" };
    c->err = (struct sv_stream){ .fd = -1, .name = "stderr" };
    proctree_ledger_init(&c->ledger);
    return c;
}

static void sv_child_free(struct sv_child *c)
{
    sv_close_pipes(c);
    struct child_spec none = { 0 };
    spec_move(&c->spec, &none);
    proctree_ledger_fini(&c->ledger);
    free(c);
}

static void sv_set_children(struct supervisor *sv, struct child_spec *specs, size_t n)
{
    sv->children = xreallocarray(NULL, n, sizeof(*sv->children));
    sv->nchildren = n;
    for (size_t i = 0; i < n; i++)
        sv->children[i] = sv_child_new(sv, &specs[i]);
}

/* The children of cfg, the browsers with --no-sandbox where Chromium's
 * sandbox cannot work: as root (spec.h). An unknown user leaves euid: the
 * start fails and says so anyway. */
static struct child_spec *sv_specs(const struct config *cfg, const char *config_path, size_t *n)
{
    struct child_spec *specs = spec_build(cfg, config_path, n);
    uid_t uid;
    (void)spec_browsers_uid(cfg, geteuid(), &uid);
    spec_sandbox_apply(specs, *n, spec_sandbox(&cfg->browsers.command, uid));
    return specs;
}

static void sv_reload(struct supervisor *sv)
{
    if (!sv->config_from_file) {
        log_info("reload asked for, but the config is the embedded default: nothing to re-read");
        return;
    }
    char *errors = NULL;
    struct config *cfg = config_load_file(sv->config_path, &errors);
    if (!cfg) {
        for (char *line = strtok(errors, "\n"); line; line = strtok(NULL, "\n"))
            log_error("config reload refused, keeping the running config reason=\"%s\"", line);
        free(errors);
        return;
    }
    if (strcmp(cfg->supervisor.runtime_dir, sv->cfg->supervisor.runtime_dir) != 0) {
        log_warn("runtime_dir changes take effect when rendervisor restarts runtime_dir=%s",
                 sv->cfg->supervisor.runtime_dir);
        free(cfg->supervisor.runtime_dir);
        cfg->supervisor.runtime_dir = xstrdup(sv->cfg->supervisor.runtime_dir);
    }
    /* runtime_dir was handed to the first user at start: it stays theirs. */
    if (strcmp(cfg->supervisor.user, sv->cfg->supervisor.user) != 0) {
        log_warn("user changes take effect when rendervisor restarts user=%s", sv->cfg->supervisor.user);
        free(cfg->supervisor.user);
        cfg->supervisor.user = xstrdup(sv->cfg->supervisor.user);
    }
    log_set(cfg->supervisor.log_level, cfg->supervisor.log_format);
    sv_warn_devtools(cfg);

    size_t n;
    struct child_spec *specs = sv_specs(cfg, sv->config_path, &n);
    char *ingest = config_runtime_path(cfg, cfg->exporter.ingest);
    if (strcmp(ingest, sv->sender.path) != 0) {
        ingest_sender_fini(&sv->sender);
        if (ingest_sender_init(&sv->sender, ingest) < 0)
            log_error("cannot send reports path=%s", ingest);
    }
    free(ingest);

    config_free(sv->cfg);
    sv->cfg = cfg;

    /* Children that stay keep their state; changed ones restart; the rest go. */
    struct sv_child **next = xreallocarray(NULL, n + sv->nchildren, sizeof(*next));
    size_t nnext = 0;
    int *kept = xcalloc(sv->nchildren + 1, sizeof(int));
    for (size_t i = 0; i < n; i++) {
        struct sv_child *c = NULL;
        for (size_t j = 0; j < sv->nchildren && !c; j++)
            if (!kept[j] && strcmp(sv->children[j]->spec.name, specs[i].name) == 0) {
                c = sv->children[j];
                kept[j] = 1;
            }
        if (!c) {
            c = sv_child_new(sv, &specs[i]);
            next[nnext++] = c;
            log_info("child added child=%s", c->spec.name);
            sv_step(sv, c, CHILD_EV_START, 0);
            continue;
        }
        next[nnext++] = c;
        c->m.stop_timeout_ns = cfg->supervisor.stop_timeout_ns;
        int changed = strcmp(c->spec.fingerprint, specs[i].fingerprint) != 0;
        spec_move(&c->spec, &specs[i]);
        if (changed) {
            log_info("child settings changed, restarting child=%s", c->spec.name);
            if (c->m.state == CHILD_STOPPED)
                sv_step(sv, c, CHILD_EV_START, 0);
            else
                sv_step(sv, c, CHILD_EV_RESTART, CHILD_REASON_REQUESTED);
        }
    }
    /* Removed children stay in the list until they have stopped. */
    for (size_t j = 0; j < sv->nchildren; j++) {
        if (kept[j])
            continue;
        struct sv_child *c = sv->children[j];
        log_info("child removed from the config child=%s", c->spec.name);
        sv_step(sv, c, CHILD_EV_STOP, 0);
        next[nnext++] = c;
    }
    free(kept);
    spec_free(specs, n);
    free(sv->children);
    sv->children = next;
    sv->nchildren = nnext;
    log_info("config reloaded path=%s children=%zu", sv->config_path, n);
}

/* Forget children that are stopped for good and are no longer configured. */
static void sv_prune(struct supervisor *sv)
{
    if (sv->shutting_down)
        return;
    size_t n = 0;
    for (size_t i = 0; i < sv->nchildren; i++) {
        struct sv_child *c = sv->children[i];
        if (c->m.state == CHILD_STOPPED && c->pid == 0) {
            sv_child_free(c);
            continue;
        }
        sv->children[n++] = c;
    }
    sv->nchildren = n;
}

/* ---- systemd ------------------------------------------------------------- */

/* The service serves once the exporter and the renderer run and, with health
 * probes on, the renderer has answered one (its HTTP API is listening). The
 * browsers are not waited for: the renderer's /healthz tells about them. */
static void sv_notify(struct supervisor *sv)
{
    if (!sv->notify.enabled)
        return;
    struct notify_child kids[sv->nchildren + 1];
    int serving = 1;
    for (size_t i = 0; i < sv->nchildren; i++) {
        const struct sv_child *c = sv->children[i];
        kids[i] = (struct notify_child){ .name = c->spec.name, .m = &c->m };
        if (c->spec.role == SPEC_ROLE_BROWSER)
            continue;
        if (c->m.state != CHILD_RUNNING)
            serving = 0;
        else if (c->spec.role == SPEC_ROLE_RENDERER && sv_probing(sv, c) && !c->probe_answered)
            serving = 0;
    }
    notify_children(&sv->notify, kids, sv->nchildren, serving);
}

/* ---- signals ---------------------------------------------------------- */

static void sv_shutdown(struct supervisor *sv, const char *why)
{
    if (sv->shutting_down)
        return;
    sv->shutting_down = 1;
    log_info("stopping all children signal=%s", why);
    notify_stopping(&sv->notify);
    /* The renderer first, the exporter last, so reports of the others'
     * ending can still be taken. All of them get the signal at once. */
    for (size_t i = sv->nchildren; i-- > 0;)
        sv_step(sv, sv->children[i], CHILD_EV_STOP, 0);
}

static void sv_read_signals(struct supervisor *sv)
{
    struct signalfd_siginfo si;
    while (read(sv->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGCHLD:
            sv_reap(sv);
            break;
        case SIGTERM:
            sv_shutdown(sv, "TERM");
            break;
        case SIGINT:
            sv_shutdown(sv, "INT");
            break;
        case SIGHUP:
            if (sv->shutting_down)
                break;
            notify_reloading(&sv->notify);
            sv_reload(sv);
            notify_reloaded(&sv->notify);
            sv_notify(sv);
            break;
        }
    }
}

/* ---- the loop ---------------------------------------------------------- */

static int sv_all_stopped(const struct supervisor *sv)
{
    for (size_t i = 0; i < sv->nchildren; i++)
        if (sv->children[i]->m.state != CHILD_STOPPED || sv->children[i]->pid != 0)
            return 0;
    return 1;
}

static int64_t sv_next_deadline(const struct supervisor *sv)
{
    int64_t next = sv->shutting_down ? 0 : sv->next_sample_ns;
    for (size_t i = 0; i < sv->nchildren; i++) {
        int64_t d = sv->children[i]->m.deadline_ns;
        if (d && (!next || d < next))
            next = d;
        if (sv_probing(sv, sv->children[i])) {
            d = sv->children[i]->probe_at_ns;
            if (d && (!next || d < next))
                next = d;
        }
    }
    return next;
}

static void sv_dispatch(struct supervisor *sv, struct sv_watch *w)
{
    switch (w->kind) {
    case SV_WATCH_SIGNAL:
        sv_read_signals(sv);
        break;
    case SV_WATCH_PIDFD:
        /* The pidfd says the process ended; reaping stays in one place. */
        sv_reap(sv);
        break;
    case SV_WATCH_STREAM:
        sv_stream_read(sv, w->child, w->stream);
        break;
    case SV_WATCH_CTL:
        sv_ctl_read(sv);
        break;
    }
}

int supervisor_run(struct supervisor *sv)
{
    for (size_t i = 0; i < sv->nchildren; i++)
        sv_step(sv, sv->children[i], CHILD_EV_START, 0);
    sv->next_sample_ns = clock_now_ns();

    while (!(sv->shutting_down && sv_all_stopped(sv))) {
        int64_t now = clock_now_ns();
        int64_t next = sv_next_deadline(sv);
        struct timespec ts, *tsp = NULL;
        if (next) {
            int64_t wait = next > now ? next - now : 0;
            ts.tv_sec = wait / CLOCK_NS_PER_S;
            ts.tv_nsec = wait % CLOCK_NS_PER_S;
            tsp = &ts;
        }
        struct epoll_event evs[32];
        int n = epoll_pwait2(sv->epfd, evs, 32, tsp, NULL);
        if (n < 0 && errno != EINTR) {
            log_error_errno(errno, "epoll_pwait2 failed");
            return -errno;
        }
        for (int i = 0; i < n; i++)
            sv_dispatch(sv, evs[i].data.ptr);

        now = clock_now_ns();
        for (size_t i = 0; i < sv->nchildren; i++) {
            struct sv_child *c = sv->children[i];
            if (c->m.deadline_ns && c->m.deadline_ns <= now)
                sv_step(sv, c, CHILD_EV_TICK, 0);
        }
        sv_probe_tick(sv, now);
        if (!sv->shutting_down && now >= sv->next_sample_ns) {
            sv_sample(sv);
            sv->next_sample_ns = now + sv->cfg->supervisor.sample_interval_ns;
        }
        sv_prune(sv);
    }
    log_info("all children stopped, exiting");
    return 0;
}

/* ---- set-up and tear-down -------------------------------------------- */

/* supervisor.ctl. The renderer runs as [supervisor] user when we are root,
 * and must reach it: the socket is made as that user's from the start
 * (bound with their fsuid and fsgid), because runtime_dir is theirs and a
 * chown by path afterwards would follow whatever link they put there. */
static int sv_ctl_open(const struct config *cfg, const char *path)
{
    if (!cfg->supervisor.user || !cfg->supervisor.user[0] || geteuid() != 0)
        return ctl_open(path);
    struct passwd *pw = getpwnam(cfg->supervisor.user);
    if (!pw) {
        log_warn("cannot make the control socket the children's user's path=%s user=%s", path,
                 cfg->supervisor.user);
        return -ENOENT;
    }
    return ctl_open_as(path, pw->pw_uid, pw->pw_gid);
}

static void sv_warn_devtools(const struct config *cfg)
{
    if (cfg->browsers.devtools == CONFIG_DEVTOOLS_PORT)
        log_warn("devtools = port: each browser's DevTools listens on 127.0.0.1, where any local user can drive "
                 "it and read every render; use it for debugging only port_base=%u",
                 cfg->browsers.port_base);
}

int supervisor_init(struct supervisor *sv, struct config *cfg, char *config_path, int config_from_file)
{
    memset(sv, 0, sizeof(*sv));
    sv->cfg = cfg;
    sv->config_path = config_path;
    sv->config_from_file = config_from_file;
    sv->epfd = -1;
    sv->sigfd = -1;
    sv->guardian.fd = -1;
    sv->self_pid = getpid();
    sv->sender.fd = -1;
    sv->ctl_fd = -1;
    sv->report = xmalloc(sizeof(*sv->report));
    notify_init(&sv->notify);

    /* Signals are blocked before anything is spawned, so none is lost
     * between fork and the first epoll_wait. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = guardian_start(&sv->guardian);
    if (rc < 0) {
        log_error_errno(rc, "cannot start the guardian process");
        return rc;
    }
    sv->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    sv->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (sv->sigfd < 0 || sv->epfd < 0) {
        rc = -errno;
        log_error_errno(rc, "cannot create the event loop");
        return rc;
    }
    sv->sig_watch = (struct sv_watch){ .kind = SV_WATCH_SIGNAL };
    if ((rc = sv_epoll_add(sv, sv->sigfd, &sv->sig_watch)) < 0) {
        log_error_errno(rc, "cannot watch signals");
        return rc;
    }

    sv->sampler = sampler_new();
    if (!sv->sampler) {
        rc = -errno;
        log_error_errno(rc, "cannot read the process table (libproc2)");
        return rc;
    }
    char *ingest = config_runtime_path(cfg, cfg->exporter.ingest);
    rc = ingest_sender_init(&sv->sender, ingest);
    if (rc < 0)
        log_error_errno(rc, "cannot create the report socket path=%s", ingest);
    free(ingest);
    if (rc < 0)
        return rc;

    /* Without it memory limits still work, only not gracefully. */
    char *ctl = config_runtime_path(cfg, CTL_SUPERVISOR);
    sv->ctl_fd = sv_ctl_open(cfg, ctl);
    sv->ctl_watch = (struct sv_watch){ .kind = SV_WATCH_CTL };
    if (sv->ctl_fd < 0 || sv_epoll_add(sv, sv->ctl_fd, &sv->ctl_watch) < 0)
        log_warn_errno(sv->ctl_fd < 0 ? sv->ctl_fd : -errno, "cannot open the control socket path=%s", ctl);
    free(ctl);

    sv_warn_devtools(cfg);
    size_t n;
    struct child_spec *specs = sv_specs(cfg, config_path, &n);
    sv_set_children(sv, specs, n);
    spec_free(specs, n);
    return 0;
}

void supervisor_fini(struct supervisor *sv)
{
    for (size_t i = 0; i < sv->nchildren; i++) {
        struct sv_child *c = sv->children[i];
        sv_close_watched(sv, &c->pidfd);
        sv_close_watched(sv, &c->out.fd);
        sv_close_watched(sv, &c->err.fd);
        if (c->spec.fresh_dir)
            spawn_remove_fresh_dir(&c->spec);
        sv_child_free(c);
    }
    free(sv->children);
    sv->children = NULL;
    sv->nchildren = 0;
    guardian_stop(&sv->guardian);
    if (sv->sampler)
        sampler_free(sv->sampler);
    ingest_sender_fini(&sv->sender);
    free(sv->report);
    sv_close_watched(sv, &sv->ctl_fd);
    if (sv->sigfd >= 0)
        close(sv->sigfd);
    if (sv->epfd >= 0)
        close(sv->epfd);
    config_free(sv->cfg);
    free(sv->config_path);
}
