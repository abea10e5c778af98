/* The child state machine. Keeping every transition in child_step() makes the
 * supervisor's loop a dispatcher: it turns events (exit, timer, request) into
 * calls here and carries out the one action each call returns. */
#include "child.h"

#include <sys/wait.h>

const char *child_state_name(enum child_state s)
{
    return s < CHILD_STATE_COUNT ? names_states[s] : "unknown";
}

const char *child_reason_name(enum child_reason r)
{
    return r < CHILD_REASON_COUNT ? names_reasons[r] : "unknown";
}

void child_machine_init(struct child_machine *m, int64_t stop_timeout_ns)
{
    *m = (struct child_machine){
        .state = CHILD_IDLE,
        .stop_timeout_ns = stop_timeout_ns,
        .backoff_ns = CHILD_BACKOFF_MIN_NS,
    };
}

unsigned long long child_restarts_total(const struct child_machine *m)
{
    unsigned long long n = 0;
    for (int r = 0; r < CHILD_REASON_COUNT; r++)
        n += m->restarts[r];
    return n;
}

int64_t child_backoff_next(int64_t current_ns)
{
    if (current_ns < CHILD_BACKOFF_MIN_NS)
        return CHILD_BACKOFF_MIN_NS;
    if (current_ns >= CHILD_BACKOFF_MAX_NS / 2)
        return CHILD_BACKOFF_MAX_NS;
    return current_ns * 2;
}

/* The process is gone and will be started again after the current delay. */
static void child_schedule_restart(struct child_machine *m, int64_t now_ns, enum child_reason why)
{
    m->restarts[why]++;
    m->state = CHILD_BACKOFF;
    /* A configuration change is the operator's wish, not a failure: no wait. */
    if (why == CHILD_REASON_REQUESTED) {
        m->deadline_ns = now_ns;
        return;
    }
    m->deadline_ns = now_ns + m->backoff_ns;
    m->backoff_ns = child_backoff_next(m->backoff_ns);
}

static enum child_action child_begin_stop(struct child_machine *m, int64_t now_ns, int for_good,
                                          enum child_reason why)
{
    m->state = CHILD_STOPPING;
    m->stop_for_good = for_good;
    m->stop_reason = why;
    /* An unhealthy child answers nothing: waiting for its drain would only
     * keep the service down longer. */
    m->deadline_ns = now_ns + m->stop_timeout_ns + (why == CHILD_REASON_UNHEALTHY ? 0 : m->drain_ns);
    return CHILD_ACT_TERM;
}

static enum child_action child_on_exit(struct child_machine *m, int64_t now_ns, int status)
{
    m->last_status = status;
    if (m->state == CHILD_STOPPING && m->stop_for_good) {
        m->state = CHILD_STOPPED;
        m->deadline_ns = 0;
        return CHILD_ACT_NONE;
    }
    if (now_ns - m->started_ns >= CHILD_BACKOFF_RESET_NS)
        m->backoff_ns = CHILD_BACKOFF_MIN_NS;
    enum child_reason why;
    if (m->state == CHILD_STOPPING)
        why = m->stop_reason;
    else
        why = WIFSIGNALED(status) ? CHILD_REASON_SIGNAL : CHILD_REASON_EXIT;
    child_schedule_restart(m, now_ns, why);
    return CHILD_ACT_NONE;
}

enum child_action child_step(struct child_machine *m, enum child_event ev, int64_t now_ns, int arg)
{
    switch (ev) {
    case CHILD_EV_START:
        if (m->state != CHILD_IDLE && m->state != CHILD_STOPPED)
            return CHILD_ACT_NONE;
        m->state = CHILD_BACKOFF;
        m->deadline_ns = 0;
        m->spawn_pending = 1;
        return CHILD_ACT_SPAWN;

    case CHILD_EV_SPAWNED:
        if (!m->spawn_pending)
            return CHILD_ACT_NONE;
        m->spawn_pending = 0;
        m->state = CHILD_RUNNING;
        m->started_ns = now_ns;
        m->deadline_ns = 0;
        return CHILD_ACT_NONE;

    case CHILD_EV_SPAWN_FAILED:
        if (!m->spawn_pending)
            return CHILD_ACT_NONE;
        m->spawn_pending = 0;
        m->state = CHILD_BACKOFF;
        m->deadline_ns = now_ns + m->backoff_ns;
        m->backoff_ns = child_backoff_next(m->backoff_ns);
        return CHILD_ACT_NONE;

    case CHILD_EV_EXITED:
        if (m->state != CHILD_RUNNING && m->state != CHILD_STOPPING)
            return CHILD_ACT_NONE;
        return child_on_exit(m, now_ns, arg);

    case CHILD_EV_RESTART:
        if (arg < 0 || arg >= CHILD_REASON_COUNT)
            return CHILD_ACT_NONE;
        if (m->state == CHILD_RUNNING)
            return child_begin_stop(m, now_ns, 0, (enum child_reason)arg);
        /* Waiting to start again anyway: a requested restart need not wait. */
        if (m->state == CHILD_BACKOFF && arg == CHILD_REASON_REQUESTED && !m->spawn_pending)
            m->deadline_ns = now_ns;
        return CHILD_ACT_NONE;

    case CHILD_EV_STOP:
        switch (m->state) {
        case CHILD_RUNNING:
            return child_begin_stop(m, now_ns, 1, CHILD_REASON_REQUESTED);
        case CHILD_STOPPING:
            m->stop_for_good = 1;
            return CHILD_ACT_NONE;
        case CHILD_IDLE:
        case CHILD_BACKOFF:
            m->state = CHILD_STOPPED;
            m->deadline_ns = 0;
            m->spawn_pending = 0;
            return CHILD_ACT_NONE;
        default:
            return CHILD_ACT_NONE;
        }

    case CHILD_EV_TICK:
        if (m->deadline_ns == 0 || now_ns < m->deadline_ns)
            return CHILD_ACT_NONE;
        if (m->state == CHILD_BACKOFF && !m->spawn_pending) {
            m->deadline_ns = 0;
            m->spawn_pending = 1;
            return CHILD_ACT_SPAWN;
        }
        if (m->state == CHILD_STOPPING) {
            /* SIGKILL cannot be refused; the exit will follow. */
            m->deadline_ns = 0;
            return CHILD_ACT_KILL;
        }
        return CHILD_ACT_NONE;
    }
    return CHILD_ACT_NONE;
}
