/* One render as states of one machine: every reply, event and deadline has
 * exactly one place where it is handled (the table at the end), and the way
 * out always passes through Target.disposeBrowserContext. Pure: commands
 * and timers are asked for in rsm_out, never done here. This file owns the
 * table, the way in (begin, claim, deadline, cancel), the way out (fail,
 * dispose, finish), commands and step times; the page, readiness and the
 * csv download are in rsm_page.c, rsm_ready.c and rsm_csv.c. It runs on
 * the thread that calls rsm_step() (the browser thread). struct rsm owns
 * its result's body and error (rsm_fini); an rsm_out owns the commands
 * queued in it until the caller takes them (rsm_out_fini). */
#include "rsm_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "xalloc.h"

static const char *const rsm_state_names[RSM_STATE_COUNT] = {
    [RSM_CONTEXT] = "context",   [RSM_TARGET] = "target",     [RSM_ATTACH] = "attach",
    [RSM_PREPARE] = "prepare",   [RSM_PARKED] = "parked",     [RSM_NAVIGATE] = "navigate",
    [RSM_READY] = "ready",       [RSM_LAYOUT] = "layout",     [RSM_RESIZE] = "resize",
    [RSM_SETTLE] = "settle",     [RSM_CAPTURE] = "capture",   [RSM_DOWNLOAD] = "download",
    [RSM_DISPOSE] = "dispose",   [RSM_DONE] = "done",
};

/* The step each state's time goes to (the names Grafana's dashboards know). */
static const int rsm_state_steps[RSM_STATE_COUNT] = {
    [RSM_CONTEXT] = NAMES_STEP_LAUNCH,
    [RSM_TARGET] = NAMES_STEP_NEW_PAGE,
    [RSM_ATTACH] = NAMES_STEP_NEW_PAGE,
    [RSM_PREPARE] = NAMES_STEP_PREPARE,
    [RSM_PARKED] = -1,
    [RSM_NAVIGATE] = NAMES_STEP_NAVIGATE,
    [RSM_READY] = NAMES_STEP_PANELS_RENDERED,
    [RSM_LAYOUT] = NAMES_STEP_DASHBOARD_SCROLLING,
    [RSM_RESIZE] = NAMES_STEP_DASHBOARD_SCROLLING,
    [RSM_SETTLE] = NAMES_STEP_DASHBOARD_SCROLLING,
    [RSM_CAPTURE] = NAMES_STEP_SCREENSHOT,
    [RSM_DOWNLOAD] = NAMES_STEP_DOWNLOAD_CSV,
    [RSM_DISPOSE] = -1,
    [RSM_DONE] = -1,
};

const char *rsm_state_name(enum rsm_state s)
{
    return (unsigned)s < RSM_STATE_COUNT ? rsm_state_names[s] : "?";
}

const char *rsm_state_step(enum rsm_state s)
{
    if ((unsigned)s >= RSM_STATE_COUNT)
        return "?";
    int step = rsm_state_steps[s];
    return step >= 0 ? names_steps[step] : rsm_state_names[s];
}

/* ---- steps and commands ------------------------------------------------------- */

void rsm_report(struct rsm *m, struct rsm_ctx *x, enum names_step step)
{
    if (m->spare)
        return; /* no request is waiting on it */
    struct rsm_result *res = &m->result;
    if (res->nsteps < RSM_STEPS_MAX) {
        res->steps[res->nsteps].step = step;
        res->steps[res->nsteps].seconds = (double)(x->now - m->step_start_ns) / CLOCK_NS_PER_S;
        res->nsteps++;
    }
    m->step_start_ns = x->now;
}

/* A command's buffer, with the room the caller's transport wants in front. */
void rsm_cmd_init(const struct rsm_ctx *x, struct buf *b)
{
    static const char zeros[64];
    buf_init(b);
    for (size_t left = x->env->cmd_reserve; left > 0;) {
        size_t n = left < sizeof(zeros) ? left : sizeof(zeros);
        buf_append(b, zeros, n);
        left -= n;
    }
}

/* Queue the command a builder just wrote (id < 0: the builder refused an
 * argument). 0, or -1 when it cannot go: the render has failed then. */
int rsm_queue(struct rsm *m, struct rsm_ctx *x, struct buf *text, int id, unsigned timeout_ms, int wait)
{
    struct rsm_out *o = x->out;
    if (id < 0 || o->ncmds == RSM_CMDS_MAX) {
        buf_fini(text);
        rsm_fail(m, x, id < 0 ? 400 : 500, 0, "a command for the browser could not be made (%s)",
                 rsm_state_step(m->state));
        return -1;
    }
    o->cmds[o->ncmds++] = (struct rsm_cmd){ .text = *text, .id = id, .timeout_ms = timeout_ms };
    buf_init(text);
    if (wait)
        m->wait_id = id;
    return 0;
}

/* The ms left before the request's deadline (at least 0). */
unsigned rsm_left_ms(const struct rsm *m, const struct rsm_ctx *x)
{
    int64_t left = (m->deadline_ns - x->now) / CLOCK_NS_PER_MS;
    return left > 0 ? (unsigned)left : 0;
}

/* A wait of readiness wakes at at_ns, or in a second at most: a wait for a
 * request's end is woken by its event, the second is a safety net. */
void rsm_wake(struct rsm_ctx *x, int64_t at_ns)
{
    int64_t latest = x->now + CLOCK_NS_PER_S;
    x->out->wake_ns = at_ns < x->now ? x->now : at_ns > latest ? latest : at_ns;
}

/* ---- the way out ---------------------------------------------------------------- */

static void rsm_finish(struct rsm *m, struct rsm_ctx *x)
{
    struct rsm_out *o = x->out;
    m->state = RSM_DONE;
    if (m->session_id[0]) {
        memcpy(o->unsubscribe, m->session_id, sizeof(o->unsubscribe));
        m->session_id[0] = '\0';
    }
    o->forget = 1;
    o->wake_cancel = 1;
    o->wake_ns = 0;
    o->finish = 1;
    m->result.kind = m->ready.kind;
    m->result.ready_seen = m->ready.decided;
    memcpy(m->result.rule_ms, m->ready.rule_ms, sizeof(m->result.rule_ms));
}

void rsm_dispose(struct rsm *m, struct rsm_ctx *x)
{
    struct rsm_out *o = x->out;
    /* Ended while Target.createBrowserContext was on its way (a timeout, a
     * client gone): the context will exist, so its reply is still wanted. */
    int coming = m->state == RSM_CONTEXT && m->wait_id > 0 && !m->context_id[0];
    if (!coming)
        o->forget = 1; /* late replies of the old state are not wanted */
    if (m->session_id[0]) {
        memcpy(o->unsubscribe, m->session_id, sizeof(o->unsubscribe));
        m->session_id[0] = '\0';
    }
    o->wake_cancel = 1;
    o->wake_ns = 0;
    rsm_out_fini(o); /* what the failed state had queued is not wanted */
    if (!x->env->conn_ok) {
        rsm_finish(m, x);
        return;
    }
    if (coming) {
        m->state = RSM_DISPOSE;
        m->context_coming = 1;
        return;
    }
    if (!m->context_id[0]) {
        rsm_finish(m, x);
        return;
    }
    m->state = RSM_DISPOSE;
    struct buf b;
    rsm_cmd_init(x, &b);
    if (rsm_queue(m, x, &b, cdp_dispose_browser_context(x->env->cdp, &b, m->context_id),
                  RSM_DISPOSE_TIMEOUT_MS, 1) < 0)
        rsm_finish(m, x);
}

void rsm_fail(struct rsm *m, struct rsm_ctx *x, unsigned status, int retryable, const char *fmt, ...)
{
    if (m->have_result || m->state >= RSM_DISPOSE)
        return;
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    m->have_result = 1;
    m->result.status = status;
    m->result.retryable = retryable;
    m->result.error = xstrdup(why);
    m->result.failed_step = rsm_state_step(m->state);
    x->out->failed = 1;
    rsm_dispose(m, x);
}

void rsm_lost(struct rsm *m, struct rsm_ctx *x)
{
    rsm_fail(m, x, 500, 1, "lost the connection to the browser");
}

/* ---- replies, by state --------------------------------------------------------------------- */

/* What every state does with a reply before its own handler: the end of
 * the connection, a command that timed out, an answer over the size
 * limit. 1 when the reply was dealt with here. */
int rsm_reply_trouble(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    if (in->err == -ECONNRESET) {
        rsm_lost(m, x);
        return 1;
    }
    if (in->err == -ETIMEDOUT) {
        rsm_fail(m, x, 500, 1, "the browser did not answer during %s", rsm_state_step(m->state));
        return 1;
    }
    if (in->err < 0) { /* -EMSGSIZE: a retry elsewhere would be as large */
        rsm_fail(m, x, 500, 0,
                 "the browser's answer during %s was over the renderer's size limit for it "
                 "(%u MiB for an image or PDF, %u MiB otherwise)",
                 rsm_state_step(m->state), CDP_FRAME_MAX >> 20, CDP_MESSAGE_MAX >> 20);
        return 1;
    }
    return 0;
}

/* The reply the state waits for: 1 when in is it (and fine to act on). */
int rsm_awaited(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    if (in->id != m->wait_id)
        return 0; /* the reply to a command we do not wait for (a dialog) */
    return !rsm_reply_trouble(m, in, x);
}

static void on_dispose(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    if (in->id != m->wait_id)
        return;
    if (m->context_coming) {
        /* The context whose creation was on its way when the render ended. */
        m->context_coming = 0;
        const char *id;
        if (in->err < 0 || cdp_result_browser_context_id(in->msg, &id) < 0 ||
            rsm_copy_id(m->context_id, id) < 0) {
            rsm_finish(m, x);
            return;
        }
        struct buf b;
        rsm_cmd_init(x, &b);
        if (rsm_queue(m, x, &b, cdp_dispose_browser_context(x->env->cdp, &b, m->context_id),
                      RSM_DISPOSE_TIMEOUT_MS, 1) < 0)
            rsm_finish(m, x);
        return;
    }
    if (in->err < 0 || in->msg->type == CDP_MSG_ERROR)
        x->out->dispose_failed = 1;
    rsm_finish(m, x);
}

/* ---- the way in -------------------------------------------------------------------------- */

static void on_begin(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    (void)in;
    rsm_begin(m, x);
}

static void on_claim(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    m->spare = 0;
    m->req = in->req;
    m->deadline_ns = in->deadline_ns;
    m->step_start_ns = x->now;
    m->result.steps_ns = x->now;
    /* The steps the spare has done took the request no time. */
    if (m->state > RSM_CONTEXT)
        rsm_report(m, x, NAMES_STEP_LAUNCH);
    if (m->state > RSM_ATTACH)
        rsm_report(m, x, NAMES_STEP_NEW_PAGE);
    if (m->state == RSM_CONTEXT)
        rsm_begin(m, x); /* not begun yet: at once */
    if (m->state == RSM_PARKED)
        rsm_prepare(m, x, RSM_PREPARE_REQUEST);
}

static void on_deadline(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    (void)in;
    if (!m->req)
        return;
    int rule = m->ready.last_rule;
    if ((m->state == RSM_READY || m->state == RSM_SETTLE) && rule >= 0 && rule < NAMES_RULE_COUNT)
        rsm_fail(m, x, 408, 0, "timed out after %u ms waiting for %s (held by its %s rule)", m->req->timeout_ms,
                 rsm_state_step(m->state), names_rules[rule]);
    else
        rsm_fail(m, x, 408, 0, "timed out after %u ms waiting for %s", m->req->timeout_ms,
                 rsm_state_step(m->state));
}

static void on_cancel(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    (void)in;
    rsm_fail(m, x, 499, 0, "the client went away");
}

static void on_abandon(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    rsm_fail(m, x, 500, 0, "%s", in->why ? in->why : "abandoned");
}

/* ---- the table ------------------------------------------------------------------------------ */

typedef void (*rsm_fn)(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x);

/* Every state's events that end a render the same way. */
#define RSM_ENDS [RSM_EV_DEADLINE] = on_deadline, [RSM_EV_CANCEL] = on_cancel, [RSM_EV_ABANDON] = on_abandon
/* And, once the page's session exists, its events. */
#define RSM_PAGE [RSM_EV_CDP] = rsm_on_event, [RSM_EV_LOST] = rsm_on_lost

/* What each state does with each event; an empty cell ignores it. */
static const rsm_fn rsm_table[RSM_STATE_COUNT][RSM_EV_COUNT] = {
    [RSM_CONTEXT] = { [RSM_EV_BEGIN] = on_begin, [RSM_EV_CLAIM] = on_claim, [RSM_EV_REPLY] = rsm_on_context, RSM_ENDS },
    [RSM_TARGET] = { [RSM_EV_CLAIM] = on_claim, [RSM_EV_REPLY] = rsm_on_target, RSM_ENDS },
    [RSM_ATTACH] = { [RSM_EV_CLAIM] = on_claim, [RSM_EV_REPLY] = rsm_on_attach, RSM_ENDS },
    [RSM_PREPARE] = { [RSM_EV_CLAIM] = on_claim, [RSM_EV_REPLY] = rsm_on_prepare, RSM_PAGE, RSM_ENDS },
    [RSM_PARKED] = { [RSM_EV_CLAIM] = on_claim, RSM_PAGE, RSM_ENDS },
    [RSM_NAVIGATE] = { [RSM_EV_REPLY] = rsm_on_navigate, RSM_PAGE, RSM_ENDS },
    [RSM_READY] = { [RSM_EV_REPLY] = rsm_on_ready, [RSM_EV_WAKE] = rsm_on_ready_wake, RSM_PAGE, RSM_ENDS },
    [RSM_LAYOUT] = { [RSM_EV_REPLY] = rsm_on_layout, RSM_PAGE, RSM_ENDS },
    [RSM_RESIZE] = { [RSM_EV_REPLY] = rsm_on_resize, RSM_PAGE, RSM_ENDS },
    [RSM_SETTLE] = { [RSM_EV_REPLY] = rsm_on_settle, RSM_PAGE, RSM_ENDS },
    [RSM_CAPTURE] = { [RSM_EV_REPLY] = rsm_on_capture, RSM_PAGE, RSM_ENDS },
    [RSM_DOWNLOAD] = { [RSM_EV_FILE] = rsm_on_file, RSM_PAGE, RSM_ENDS },
    [RSM_DISPOSE] = { [RSM_EV_REPLY] = on_dispose },
    [RSM_DONE] = { 0 },
};

void rsm_init(struct rsm *m, const struct render_request *req, int64_t deadline_ns, int64_t now_ns)
{
    memset(m, 0, sizeof(*m));
    m->state = RSM_CONTEXT;
    m->req = req;
    m->spare = req == NULL;
    m->deadline_ns = deadline_ns;
    m->step_start_ns = now_ns;
    m->result.steps_ns = now_ns;
    ready_init(&m->ready);
}

void rsm_fini(struct rsm *m)
{
    ready_fini(&m->ready);
    free(m->result.body);
    free(m->result.error);
    m->result.body = NULL;
    m->result.error = NULL;
}

void rsm_out_fini(struct rsm_out *out)
{
    for (unsigned i = 0; i < out->ncmds; i++)
        buf_fini(&out->cmds[i].text);
    out->ncmds = 0;
}

void rsm_step(struct rsm *m, const struct rsm_env *env, const struct rsm_input *in, int64_t now_ns,
              struct rsm_out *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < RSM_CMDS_MAX; i++)
        buf_init(&out->cmds[i].text);
    if ((unsigned)in->ev >= RSM_EV_COUNT || (unsigned)m->state >= RSM_STATE_COUNT)
        return;
    if (in->ev == RSM_EV_FILE && m->state != RSM_DOWNLOAD)
        free(in->data);
    if ((in->ev == RSM_EV_REPLY || in->ev == RSM_EV_CDP) && !in->msg && in->err == 0)
        return; /* nothing to read */
    rsm_fn fn = rsm_table[m->state][in->ev];
    struct rsm_ctx x = { .env = env, .out = out, .now = now_ns };
    if (fn)
        fn(m, in, &x);
}

int rsm_claimable(const struct rsm *m, const struct rsm_env *env)
{
    return m->spare && !m->have_result && m->state < RSM_DISPOSE && env->conn_ok;
}

const char *rsm_session(const struct rsm *m)
{
    return m->session_id;
}

int rsm_download_path(const struct rsm *m, const char *dir, char *path, size_t size)
{
    if (!dir || !m->dl_guid[0])
        return -ENOENT;
    int n = snprintf(path, size, "%s/%s", dir, m->dl_guid);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}
