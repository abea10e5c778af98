/* Health probe decisions (probe.h). */
#include "probe.h"

int probe_is_miss(enum probe_result r)
{
    return r >= PROBE_MISS_TIMEOUT;
}

const char *probe_result_text(enum probe_result r)
{
    switch (r) {
    case PROBE_WAIT:
        return "waiting";
    case PROBE_OK:
        return "ok";
    case PROBE_UNKNOWN:
        return "running, state unknown";
    case PROBE_MISS_TIMEOUT:
        return "no answer in time";
    case PROBE_MISS_UNREACHABLE:
        return "control socket unreachable";
    case PROBE_MISS_STALLED:
        return "browser thread stalled";
    case PROBE_MISS_SILENT:
        return "silent to the renderer";
    case PROBE_MISS_STOPPED:
        return "process stopped";
    }
    return "?";
}

int probe_state_stopped(char state)
{
    return state == 'T' || state == 't';
}

enum probe_result probe_renderer_answer(const struct ctl_health *h)
{
    return h->stalled ? PROBE_MISS_STALLED : PROBE_OK;
}

enum probe_result probe_browser_answer(const struct ctl_health *h, unsigned index)
{
    if (h->stalled || index >= h->nbrowsers)
        return PROBE_WAIT;
    switch (h->browsers[index]) {
    case CTL_BROWSER_HEARD:
        return PROBE_OK;
    case CTL_BROWSER_SILENT:
        return PROBE_MISS_SILENT;
    default:
        return PROBE_WAIT;
    }
}

enum probe_result probe_renderer_deadline(void)
{
    return PROBE_MISS_TIMEOUT;
}

enum probe_result probe_send_failed(int is_renderer, int err)
{
    return is_renderer && err < 0 ? PROBE_MISS_UNREACHABLE : PROBE_WAIT;
}

enum probe_result probe_browser_deadline(int stopped_at_start, int stopped_now)
{
    return stopped_at_start && stopped_now ? PROBE_MISS_STOPPED : PROBE_UNKNOWN;
}
