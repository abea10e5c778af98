/* Health probes of the renderer and the browsers (probe.h decides what an
 * answer or a silence means): when each child is due, sending the probe
 * through the renderer, the answer or the deadline, and a restart after
 * health_failures misses in a row. Runs on the supervisor's one thread,
 * from its loop's deadlines and the control socket's lines. A probe's state
 * lives in its struct sv_child; nothing here allocates. */
#include "supervisor_int.h"

#include <stdint.h>

#include "clock.h"
#include "ctl.h"
#include "log.h"
#include "procstat.h"

/* A child that has never answered gets this long before silence counts:
 * a browser the renderer never hears from is broken, not slow. Until its
 * first answer a child that misses is probed this often, so it is watched
 * soon after it is up. */
#define SV_PROBE_GRACE_NS (60 * CLOCK_NS_PER_S)
#define SV_PROBE_FIRST_NS (500 * CLOCK_NS_PER_MS)

int sv_probing(const struct supervisor *sv, const struct sv_child *c)
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

void sv_probe_reset(struct supervisor *sv, struct sv_child *c)
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
    char line[CTL_LINE_MAX];
    ctl_probe_format(line, sizeof(line), c->probe.seq, ms > UINT32_MAX ? UINT32_MAX : (unsigned)ms);
    int rc = sv_ctl_send(sv, line, NULL, 0);
    if (rc < 0) {
        /* A renderer still starting has not bound it yet: say so now,
         * rather than wait out the timeout for an answer that cannot come. */
        log_debug("cannot send a health probe child=%s error=%d", c->spec.name, -rc);
        enum probe_result r = probe_send_failed(c->spec.role == SPEC_ROLE_RENDERER, rc);
        if (r != PROBE_WAIT)
            sv_probe_done(sv, c, r);
    }
}

/* The renderer's answer to probe h->seq. */
void sv_probe_answer(struct supervisor *sv, const struct ctl_health *h)
{
    for (size_t i = 0; i < sv->nchildren; i++) {
        struct sv_child *c = sv->children[i];
        if (!c->probe.pending || c->probe.seq != h->seq || !sv_probing(sv, c))
            continue;
        enum probe_result r = PROBE_WAIT;
        if (c->spec.role == SPEC_ROLE_RENDERER)
            r = probe_renderer_answer(h);
        else if (c->spec.role == SPEC_ROLE_BROWSER)
            r = probe_browser_answer(h, c->spec.index);
        if (r != PROBE_WAIT)
            sv_probe_done(sv, c, r);
        return;
    }
}

/* Due probes start; probes past their deadline end. */
void sv_probe_tick(struct supervisor *sv, int64_t now)
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
