/* Samples and reports: every sample_interval the process table is read
 * (sampler.h) into each child's figures, strays are ended, the guardian
 * hears of escaped processes, a child over its memory limit is drained or
 * restarted, and each child's report goes to the exporter (report.h) and
 * the service's total PSS to the renderer. Runs on the supervisor's one
 * thread, from its loop. The figures and ledgers are the children's; the
 * report buffer is struct supervisor's, reused for every report. */
#include "supervisor_int.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "clock.h"
#include "ctl.h"
#include "log.h"
#include "net.h"
#include "report.h"
#include "sampler.h"

#define SV_MAX_STRAYS 256

void sv_report_child(struct supervisor *sv, struct sv_child *c)
{
    struct report_child r = {
        .name = c->spec.name,
        .state = c->m.state,
        .fig = &c->fig,
        .memory_limit = c->spec.memory_limit,
        .start_time = c->start_wall,
        .restarts = c->m.restarts,
    };
    ingest_buf_reset(&sv->report);
    report_child_lines(&sv->report, &r);
    report_dropped_line(&sv->report, sv->sender.dropped);
    /* A missing or full socket drops this report; the next one catches up. */
    int rc = ingest_send(&sv->sender, &sv->report);
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

/* What the service uses in all (its children's PSS), for the renderer's
 * admission by memory where it has no cgroup of its own to read. */
static void sv_tell_renderer_memory(struct supervisor *sv)
{
    if (!sv_renderer(sv) || sv->ctl_fd < 0)
        return;
    unsigned long long kib = 0;
    for (size_t i = 0; i < sv->nchildren; i++)
        kib += sv->children[i]->fig.proportional_bytes / 1024;
    char line[CTL_LINE_MAX];
    snprintf(line, sizeof(line), "memory_kib %llu\n", kib > UINT32_MAX ? (unsigned long long)UINT32_MAX : kib);
    sv_ctl_send(sv, line, NULL, 0); /* the next sample tells again */
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
    if (c->spec.role == SPEC_ROLE_BROWSER && drain > 0 && r && sv->ctl_fd >= 0) {
        char line[CTL_LINE_MAX];
        snprintf(line, sizeof(line), "drain %u\n", c->spec.index);
        int rc = sv_ctl_send(sv, line, NULL, 0);
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

void sv_sample(struct supervisor *sv)
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
