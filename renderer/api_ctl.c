/* The renderer's end of renderer.ctl, the control socket (common/ctl.h):
 * the supervisor's lines ("drain N", "memory_kib N", "pipes N G" with the
 * browser's pipe ends, "probe S T") read and acted on, and "hello" and the
 * health answers sent back. Runs on the HTTP thread, in its epoll set; the
 * fds a line carries are handed to the browser pool or closed here. */
#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include "api_int.h"
#include "clock.h"
#include "ctl.h"
#include "log.h"

/* devtools = pipe: "hello" to the supervisor while some browser's pipes are
 * missing (at start, after a browser went), every API_HELLO_MS; the
 * supervisor answers with "pipes N G". Returns when to call again, or 0. */
#define API_HELLO_MS 2000
int64_t api_hello(struct api *a, int64_t now)
{
    if (a->ctl_fd < 0 || !browser_pool_pipes_missing(a->pool))
        return 0;
    if (now >= a->hello_at_ns) {
        int rc = ctl_send(a->ctl_fd, a->supervisor_ctl, CTL_HELLO);
        if (rc < 0)
            log_debug("cannot say hello to the supervisor path=%s error=%d", a->supervisor_ctl, -rc);
        a->hello_at_ns = now + API_HELLO_MS * CLOCK_NS_PER_MS;
    }
    return a->hello_at_ns;
}

static void api_ctl_close(const int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

/* "pipes N G" from the supervisor, with browser N's pipe ends: 1 when the
 * line was that (the fds are taken over or closed), 0 when not. */
static int api_ctl_pipes(struct api *a, pid_t pid, const char *line, int *fds, size_t nfds)
{
    unsigned index, gen;
    if (ctl_parse2(line, CTL_PIPES, &index, &gen) < 0)
        return 0;
    if (pid != getppid() || nfds != 2) {
        log_warn("control line refused pid=%d line=pipes fds=%zu", (int)pid, nfds);
        api_ctl_close(fds, nfds);
        return 1;
    }
    int rc = browser_pool_give_pipes(a->pool, index, gen, fds[0], fds[1]);
    if (rc == -EINVAL)
        log_warn("control line refused pid=%d line=pipes browser=%u", (int)pid, index);
    else if (rc == 0)
        log_debug("browser pipes received browser=%u generation=%u", index, gen);
    return 1;
}

/* The supervisor's health probe ("probe S T"), answered from this thread
 * as /healthz is: alive unless the browser thread has stalled, with what
 * the browser thread has heard from each browser (common/ctl.h). A browser
 * is silent past T, and never before 2 s: the heartbeat asks it every 1 s. */
#define API_SILENT_MIN_MS 2000

static void api_health_answer(struct api *a, unsigned seq, unsigned silent_ms)
{
    int64_t now = clock_now_ns();
    struct ctl_health h = { .seq = seq };
    h.stalled = browser_pool_stalled_ns(a->pool, now) > API_STALLED_MS * CLOCK_NS_PER_MS;
    if (!h.stalled) {
        int64_t silent = (int64_t)(silent_ms > API_SILENT_MIN_MS ? silent_ms : API_SILENT_MIN_MS) * CLOCK_NS_PER_MS;
        unsigned n = browser_pool_count(a->pool);
        h.nbrowsers = n < CTL_BROWSERS_MAX ? n : CTL_BROWSERS_MAX;
        for (unsigned i = 0; i < h.nbrowsers; i++)
            h.browsers[i] = browser_pool_health(a->pool, i, now, silent);
    }
    char line[CTL_LINE_MAX];
    int rc = ctl_health_format(line, sizeof(line), &h);
    if (rc == 0)
        rc = ctl_send(a->ctl_fd, a->supervisor_ctl, line);
    if (rc < 0)
        log_debug("cannot answer a health probe seq=%u error=%d", seq, -rc);
}

/* The supervisor (our parent, and no one else) asks for a browser over its
 * memory limit to be drained before it restarts it ("drain N"), tells what
 * its children use in all ("memory_kib N"), hands over the browsers' pipes
 * ("pipes N G") and probes our health ("probe S T"). */
void api_ctl_read(struct api *a)
{
    char line[CTL_LINE_MAX];
    pid_t pid;
    int n, fds[CTL_FDS_MAX];
    size_t nfds;
    while ((n = ctl_recv_fds(a->ctl_fd, line, sizeof(line), &pid, fds, CTL_FDS_MAX, &nfds)) != -EAGAIN) {
        if (n == -EMSGSIZE)
            continue;
        if (n < 0)
            return;
        if (api_ctl_pipes(a, pid, line, fds, nfds))
            continue;
        api_ctl_close(fds, nfds); /* no other line carries any */
        unsigned index, kib, seq, silent_ms;
        if (pid == getppid() && ctl_probe_parse(line, &seq, &silent_ms) == 0) {
            api_health_answer(a, seq, silent_ms);
            continue;
        }
        if (pid == getppid() && ctl_parse(line, "memory_kib", &kib) == 0) {
            jobs_set_tree_memory(a->jobs, (uint64_t)kib * 1024);
            continue;
        }
        if (pid != getppid() || ctl_parse(line, "drain", &index) < 0 ||
            index >= browser_pool_count(a->pool)) {
            log_warn("control line refused pid=%d line_bytes=%d", (int)pid, n);
            continue;
        }
        jobs_drain(a->jobs, index);
    }
}
