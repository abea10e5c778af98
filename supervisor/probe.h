/* Health probes: is a browser or the renderer still working? Not through
 * any port: the supervisor sends "probe S T" on renderer.ctl and the
 * renderer's HTTP thread answers on supervisor.ctl with its own state and
 * what it has heard from each browser (common/ctl.h). Where the renderer
 * cannot tell about a browser (it is not running, does not answer, or has
 * no connection to that browser), /proc can: a browser whose main process
 * was stopped from the start of a probe to its end has missed it. The
 * decisions are pure functions here; the supervisor's loop carries them
 * out. */
#ifndef RV_PROBE_H
#define RV_PROBE_H

#include "ctl.h"

enum probe_result {
    PROBE_WAIT,          /* no verdict yet: wait for the deadline */
    PROBE_OK,            /* answered, and well */
    PROBE_UNKNOWN,       /* the renderer could not tell, and /proc sees it run */
    PROBE_MISS_TIMEOUT,  /* renderer: no answer in time */
    PROBE_MISS_UNREACHABLE, /* renderer: its control socket took no probe (not bound yet, gone) */
    PROBE_MISS_STALLED,  /* renderer: its browser thread does not turn */
    PROBE_MISS_SILENT,   /* browser: connected, but it has not answered the renderer */
    PROBE_MISS_STOPPED,  /* browser: its process was stopped for the whole probe */
};

/* What a probe of one child has learnt so far. */
struct probe {
    unsigned seq;         /* sent as "probe seq" */
    int pending;          /* a probe is in flight */
    int stopped_at_start; /* browser: its main process was stopped (T, t) when it began */
};

/* A miss? (PROBE_UNKNOWN is not one: with nothing better to go by, a
 * running process is given the benefit of the doubt.) */
int probe_is_miss(enum probe_result r);
/* Why, for the log. */
const char *probe_result_text(enum probe_result r);
/* A /proc/PID/stat state letter of a stopped process (SIGSTOP, a tracer). */
int probe_state_stopped(char state);

/* The renderer's answer, for the renderer. */
enum probe_result probe_renderer_answer(const struct ctl_health *h);
/* The renderer's answer, for browser-index: PROBE_WAIT when it cannot tell
 * (stalled, no connection, no such browser), so /proc decides at the end. */
enum probe_result probe_browser_answer(const struct ctl_health *h, unsigned index);
/* The probe's deadline came without a verdict. A renderer has missed it;
 * a browser has if its process was stopped at the start and still is. */
enum probe_result probe_renderer_deadline(void);
/* The probe could not be sent: err the -errno of the send. For the renderer
 * that is a miss at once (no answer can come); for a browser PROBE_WAIT,
 * and /proc decides at the deadline. */
enum probe_result probe_send_failed(int is_renderer, int err);
enum probe_result probe_browser_deadline(int stopped_at_start, int stopped_now);

#endif
