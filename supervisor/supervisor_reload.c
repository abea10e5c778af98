/* The children as the config says: made from their specs at start, and on
 * SIGHUP the config read again and the children matched by name: those
 * that stay keep their state, changed ones restart, new ones start,
 * removed ones stop and are forgotten once stopped. Runs on the
 * supervisor's one thread. struct supervisor owns the array of children
 * and each struct sv_child (sv_child_free); a child owns its spec. */
#include "supervisor_int.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

#include "log.h"
#include "tls.h"
#include "xalloc.h"

/* The renderer drains on SIGTERM: its SIGKILL waits for that too. */
static void sv_child_timeouts(struct sv_child *c, const struct config *cfg)
{
    c->m.stop_timeout_ns = cfg->supervisor.stop_timeout_ns;
    c->m.drain_ns = c->spec.role == SPEC_ROLE_RENDERER ? cfg->renderer.drain_timeout_ns : 0;
}

static struct sv_child *sv_child_new(struct supervisor *sv, struct child_spec *spec)
{
    struct sv_child *c = xcalloc(1, sizeof(*c));
    spec_move(&c->spec, spec);
    child_machine_init(&c->m, sv->cfg->supervisor.stop_timeout_ns);
    sv_child_timeouts(c, sv->cfg);
    c->pidfd = -1;
    c->cdp_w = c->cdp_r = -1;
    c->out = (struct sv_stream){ .fd = -1, .name = "stdout" };
    c->err = (struct sv_stream){ .fd = -1, .name = "stderr" };
    proctree_ledger_init(&c->ledger);
    return c;
}

void sv_child_free(struct sv_child *c)
{
    sv_close_pipes(c);
    struct child_spec none = { 0 };
    spec_move(&c->spec, &none);
    proctree_ledger_fini(&c->ledger);
    free(c);
}

void sv_set_children(struct supervisor *sv, struct child_spec *specs, size_t n)
{
    sv->children = xreallocarray(NULL, n, sizeof(*sv->children));
    sv->nchildren = n;
    for (size_t i = 0; i < n; i++)
        sv->children[i] = sv_child_new(sv, &specs[i]);
}

/* The children of cfg, the browsers with --no-sandbox where Chromium's
 * sandbox cannot work: as root (spec.h). An unknown user leaves euid: the
 * start fails and says so anyway. */
struct child_spec *sv_specs(const struct config *cfg, const char *config_path, size_t *n)
{
    struct child_spec *specs = spec_build(cfg, config_path, n);
    uid_t uid;
    (void)spec_browsers_uid(cfg, geteuid(), &uid);
    spec_sandbox_apply(specs, *n, spec_sandbox(&cfg->browsers.command, uid));
    return specs;
}

/* A child that stays re-reads the config on SIGHUP and applies what can
 * change in place (spec_key_hot: tokens, certificates). Only the leader
 * gets it, through its pidfd: it is no signal for the rest of its group.
 * A child not running has nothing to apply: it reads the config when it
 * starts. One just forked may not have blocked SIGHUP yet: spawn.c starts
 * these two with it ignored, so it is lost rather than fatal, and the
 * config they read after blocking it is the new one already. */
static void sv_pass_reload(struct sv_child *c)
{
    if ((c->spec.role != SPEC_ROLE_RENDERER && c->spec.role != SPEC_ROLE_EXPORTER) || c->m.state != CHILD_RUNNING ||
        c->pid <= 0 || c->pidfd < 0)
        return;
    if (syscall(SYS_pidfd_send_signal, c->pidfd, SIGHUP, NULL, 0) < 0)
        log_warn_errno(errno, "cannot pass the reload on child=%s", c->spec.name);
    else
        log_info("reload passed on child=%s signal=HUP", c->spec.name);
}

void sv_reload(struct supervisor *sv)
{
    if (!sv->config_from_file) {
        log_info("reload asked for, but the config is the embedded default: nothing to re-read");
        return;
    }
    char *errors = NULL;
    /* The environment is the one we started with: its variables stay
     * over the file, as they were at start. */
    struct config *cfg = config_load(sv->config_path, environ, &errors);
    if (cfg && tls_config_check_files(cfg, &errors) < 0) {
        config_free(cfg);
        cfg = NULL;
    }
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
        int changed = strcmp(c->spec.fingerprint, specs[i].fingerprint) != 0;
        spec_move(&c->spec, &specs[i]);
        sv_child_timeouts(c, cfg);
        if (!changed)
            sv_pass_reload(c);
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
void sv_prune(struct supervisor *sv)
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

void sv_warn_devtools(const struct config *cfg)
{
    if (cfg->browsers.devtools == CONFIG_DEVTOOLS_PORT)
        log_warn("devtools = port: each browser's DevTools listens on 127.0.0.1, where any local user can drive "
                 "it and read every render; use it for debugging only port_base=%u",
                 cfg->browsers.port_base);
}
