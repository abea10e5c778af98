/* The supervisor's event loop. Everything that happens to a child arrives here
 * as an event (a readable pidfd or pipe, a signal, a deadline), is turned into
 * a child_step() call, and the action it returns is carried out. Reaping
 * happens in one place, sv_reap(), for children and adopted orphans alike.
 * This file owns the loop, spawning and signalling children, their output
 * pipes, reaping, signals, systemd's notifications, and set-up and
 * tear-down; health probes, the control socket, samples and reloads are in
 * supervisor_{health,ctl,sample,reload}.c. All of it runs on the
 * supervisor's one thread. struct supervisor (on main()'s stack) owns the
 * config, every fd in the epoll set, and the children. */
#include "supervisor_int.h"

#include <errno.h>
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
#include "log.h"
#include "sampler.h"
#include "spawn.h"

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
void sv_step(struct supervisor *sv, struct sv_child *c, enum child_event ev, int arg)
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
                 (long long)((c->m.deadline_ns - now) / CLOCK_NS_PER_MS));
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

struct sv_child *sv_renderer(struct supervisor *sv)
{
    for (size_t i = 0; i < sv->nchildren; i++)
        if (sv->children[i]->spec.role == SPEC_ROLE_RENDERER && sv->children[i]->pid > 0 &&
            sv->children[i]->m.state == CHILD_RUNNING)
            return sv->children[i];
    return NULL;
}

/* ---- systemd ------------------------------------------------------------- */

/* The service serves once the exporter and the renderer run and, with health
 * probes on, the renderer has answered one (its HTTP API is listening). The
 * browsers are not waited for: the renderer's /healthz tells about them. */
void sv_notify(struct supervisor *sv)
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

/* The renderer drains on SIGTERM: it refuses new renders and finishes the
 * ones it has, which need the browsers (and their reports the exporter).
 * So they stop only once it has exited, or once it has been sent SIGKILL. */
static int sv_renderer_draining(const struct supervisor *sv)
{
    for (size_t i = 0; i < sv->nchildren; i++) {
        const struct sv_child *c = sv->children[i];
        if (c->spec.role == SPEC_ROLE_RENDERER && c->m.state == CHILD_STOPPING && c->m.deadline_ns)
            return 1;
    }
    return 0;
}

/* The rest of the children, once the renderer is done. The exporter last
 * in the list, so reports of the others' ending can still be taken; all
 * of them get the signal at once. */
static void sv_stop_the_rest(struct supervisor *sv)
{
    if (!sv->shutting_down || sv->rest_stopping || sv_renderer_draining(sv))
        return;
    sv->rest_stopping = 1;
    for (size_t i = sv->nchildren; i-- > 0;)
        sv_step(sv, sv->children[i], CHILD_EV_STOP, 0);
}

static void sv_shutdown(struct supervisor *sv, const char *why)
{
    if (sv->shutting_down)
        return;
    sv->shutting_down = 1;
    log_info("stopping all children signal=%s renderer_drain_ms=%lld", why,
             (long long)(sv->cfg->renderer.drain_timeout_ns / CLOCK_NS_PER_MS));
    notify_stopping(&sv->notify);
    for (size_t i = 0; i < sv->nchildren; i++)
        if (sv->children[i]->spec.role == SPEC_ROLE_RENDERER)
            sv_step(sv, sv->children[i], CHILD_EV_STOP, 0);
    sv_stop_the_rest(sv);
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
        sv_stop_the_rest(sv);
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
    ingest_buf_init(&sv->report);
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
    ingest_buf_fini(&sv->report);
    sv_close_watched(sv, &sv->ctl_fd);
    if (sv->sigfd >= 0)
        close(sv->sigfd);
    if (sv->epfd >= 0)
        close(sv->epfd);
    config_free(sv->cfg);
    free(sv->config_path);
}
