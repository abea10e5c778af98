/* The supervisor's side of its control socket with the renderer
 * (supervisor.ctl, ctl.h): opening it as the children's user, sending the
 * renderer its lines (health probes, "drain N", "memory_kib N", and the
 * browsers' DevTools pipes with "pipes N G"), and reading what the renderer
 * says back ("drained N", "hello", probe answers). Runs on the supervisor's
 * one thread. The socket is struct supervisor's (ctl_fd, closed by
 * supervisor_fini); a browser's pipe ends are its struct sv_child's, closed
 * here when it ends or goes. */
#include "supervisor_int.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "ctl.h"
#include "log.h"

/* supervisor.ctl. The renderer runs as [supervisor] user when we are root,
 * and must reach it: the socket is made as that user's from the start
 * (bound with their fsuid and fsgid), because runtime_dir is theirs and a
 * chown by path afterwards would follow whatever link they put there. */
int sv_ctl_open(const struct config *cfg, const char *path)
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

int sv_ctl_send(struct supervisor *sv, const char *line, const int *fds, size_t nfds)
{
    char *path = config_runtime_path(sv->cfg, CTL_RENDERER);
    int rc = nfds ? ctl_send_fds(sv->ctl_fd, path, line, fds, nfds) : ctl_send(sv->ctl_fd, path, line);
    free(path);
    return rc;
}

/* ---- DevTools pipes (devtools = pipe) ---------------------------------- */

void sv_close_pipes(struct sv_child *c)
{
    if (c->cdp_w >= 0)
        close(c->cdp_w);
    if (c->cdp_r >= 0)
        close(c->cdp_r);
    c->cdp_w = c->cdp_r = -1;
}

/* Hand the renderer its ends of browser c's pipes ("pipes N G", ctl.h). A
 * renderer that misses this says "hello" again and gets them then. */
void sv_send_pipes(struct supervisor *sv, struct sv_child *c)
{
    if (c->cdp_w < 0 || c->cdp_r < 0 || sv->ctl_fd < 0 || !sv_renderer(sv) || c->spec.role != SPEC_ROLE_BROWSER)
        return;
    char line[CTL_LINE_MAX];
    snprintf(line, sizeof(line), CTL_PIPES " %u %u\n", c->spec.index, c->cdp_gen);
    int fds[2] = { c->cdp_w, c->cdp_r };
    int rc = sv_ctl_send(sv, line, fds, 2);
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
void sv_ctl_read(struct supervisor *sv)
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
        for (size_t i = 0; i < sv->nchildren; i++) {
            struct sv_child *c = sv->children[i];
            if (c->spec.role == SPEC_ROLE_BROWSER && c->spec.index == index && c->drain_since_ns &&
                c->m.state == CHILD_RUNNING) {
                log_info("child drained, restarting child=%s drained_ms=%lld", c->spec.name,
                         (long long)((clock_now_ns() - c->drain_since_ns) / CLOCK_NS_PER_MS));
                sv_step(sv, c, CHILD_EV_RESTART, CHILD_REASON_MEMORY_LIMIT);
            }
        }
    }
}
