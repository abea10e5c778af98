/* One render as states of one machine: every reply, event and deadline has
 * exactly one place where it is handled (the table at the end), and the way
 * out always passes through Target.disposeBrowserContext. Pure: commands
 * and timers are asked for in rsm_out, never done here. */
#include "rsm.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "xalloc.h"

#define RSM_PREPARE_ENABLES 1u
#define RSM_PREPARE_REQUEST 2u

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

/* What one step works with: the caller's world and what to tell it. */
struct rsm_ctx {
    const struct rsm_env *env;
    struct rsm_out *out;
    int64_t now;
};

static void rsm_fail(struct rsm *m, struct rsm_ctx *x, unsigned status, int retryable, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* ---- steps and commands ------------------------------------------------------- */

static void rsm_report(struct rsm *m, struct rsm_ctx *x, enum names_step step)
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
static void rsm_cmd_init(const struct rsm_ctx *x, struct buf *b)
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
static int rsm_queue(struct rsm *m, struct rsm_ctx *x, struct buf *text, int id, unsigned timeout_ms, int wait)
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
static unsigned rsm_left_ms(const struct rsm *m, const struct rsm_ctx *x)
{
    int64_t left = (m->deadline_ns - x->now) / CLOCK_NS_PER_MS;
    return left > 0 ? (unsigned)left : 0;
}

/* A wait of readiness wakes at at_ns, or in a second at most: a wait for a
 * request's end is woken by its event, the second is a safety net. */
static void rsm_wake(struct rsm_ctx *x, int64_t at_ns)
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

static void rsm_dispose(struct rsm *m, struct rsm_ctx *x)
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

static void rsm_fail(struct rsm *m, struct rsm_ctx *x, unsigned status, int retryable, const char *fmt, ...)
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

static void rsm_lost(struct rsm *m, struct rsm_ctx *x)
{
    rsm_fail(m, x, 500, 1, "lost the connection to the browser");
}

/* ---- making the page ------------------------------------------------------------- */

static int rsm_copy_id(char *dst, const char *src)
{
    size_t n = strlen(src);
    if (n > CDP_ID_MAX)
        return -EBADMSG;
    memcpy(dst, src, n + 1);
    return 0;
}

static void rsm_begin(struct rsm *m, struct rsm_ctx *x)
{
    if (m->wait_id || m->context_id[0])
        return; /* begun already */
    struct buf b;
    rsm_cmd_init(x, &b);
    rsm_queue(m, x, &b, cdp_create_browser_context(x->env->cdp, &b), RSM_CMD_TIMEOUT_MS, 1);
}

/* The request's parameters, for the viewport before navigation: a full
 * page (and a pdf) starts at the default height and grows to its content. */
static int rsm_viewport_height(const struct render_request *q)
{
    return !q || q->height == QUERY_FULL_PAGE ? QUERY_HEIGHT_DEFAULT : q->height;
}

/* Sends the parts of the preparation asked for, all at once; the state
 * moves on when every reply is in. */
static void rsm_prepare(struct rsm *m, struct rsm_ctx *x, unsigned parts)
{
    struct cdp *c = x->env->cdp;
    const char *s = m->session_id;
    const struct render_request *q = m->req;
    m->state = RSM_PREPARE;
    m->prepare_left = 0;
    m->prepared |= parts;
    m->wait_id = 0;
    for (int step = 0; step < 12; step++) {
        int request_step = step >= 4 && step < 10;
        if (!(parts & (request_step ? RSM_PREPARE_REQUEST : RSM_PREPARE_ENABLES)))
            continue;
        struct buf b;
        rsm_cmd_init(x, &b);
        int id = 0;
        switch (step) {
        case 0: id = cdp_page_enable(c, &b, s); break;
        case 1: id = cdp_page_set_lifecycle_events(c, &b, s, 1); break;
        case 2: id = cdp_network_enable(c, &b, s); break;
        case 3: id = cdp_page_add_script(c, &b, s, ready_observer_script()); break;
        case 4:
            id = cdp_set_device_metrics(c, &b, s, q->width, rsm_viewport_height(q), q->device_scale_factor);
            break;
        case 5:
            if (q->timezone[0])
                id = cdp_set_timezone(c, &b, s, q->timezone);
            break;
        case 6:
            if (q->accept_language) {
                const char *headers[] = { "Accept-Language", q->accept_language, NULL };
                id = cdp_set_extra_headers(c, &b, s, headers);
            }
            break;
        case 7:
            if (q->render_key && q->domain[0])
                id = cdp_set_cookie(c, &b, s, "renderKey", q->render_key, q->domain);
            break;
        case 8: {
            /* Grafana's render observer sends its message before this runs
             * out, leaving itself a margin (its ReportRenderReadinessObserver). */
            char script[96];
            snprintf(script, sizeof(script), "window.__grafanaImageRendererReadinessTimeoutMs=%u;",
                     rsm_left_ms(m, x));
            id = cdp_page_add_script(c, &b, s, script);
            break;
        }
        case 9:
            if (q->encoding == QUERY_ENCODING_CSV) {
                if (!x->env->dl_dir) {
                    buf_fini(&b);
                    rsm_fail(m, x, 500, 0, "no folder for the download");
                    return;
                }
                id = cdp_set_download_behavior(c, &b, m->context_id, x->env->dl_dir);
            }
            break;
        /* The page's requests checked against allowed_hosts (intercept.c
         * answers Fetch.requestPaused), its frames and workers too: both
         * in place before the page navigates, whose command waits for
         * these replies. */
        case 10:
            if (x->env->intercept)
                id = cdp_fetch_enable(c, &b, s);
            break;
        case 11:
            if (x->env->intercept)
                id = cdp_set_auto_attach(c, &b, s);
            break;
        }
        if (id == 0) {
            buf_fini(&b);
            continue;
        }
        if (id < 0) {
            buf_fini(&b);
            rsm_fail(m, x, 400, 0, "a parameter cannot be passed to the browser (step %d)", step);
            return;
        }
        if (rsm_queue(m, x, &b, id, RSM_CMD_TIMEOUT_MS, 0) < 0)
            return;
        m->prepare_ids[m->prepare_left++] = id;
    }
}

static void rsm_navigate(struct rsm *m, struct rsm_ctx *x)
{
    ready_set_origin(&m->ready, m->req->url);
    struct buf b;
    rsm_cmd_init(x, &b);
    int id = cdp_page_navigate(x->env->cdp, &b, m->session_id, m->req->url);
    m->state = RSM_NAVIGATE;
    rsm_queue(m, x, &b, id, rsm_left_ms(m, x) + 1000, 1);
}

/* ---- readiness --------------------------------------------------------------------- */

static void rsm_probe(struct rsm *m, struct rsm_ctx *x)
{
    ready_wait_end(&m->ready, x->now);
    /* The answer comes back a little before the deadline, so that a 408
     * can say what held the page. */
    unsigned wait = rsm_left_ms(m, x);
    wait = wait > 2 * RSM_PROBE_MARGIN_MS ? wait - RSM_PROBE_MARGIN_MS : wait;
    if (wait > READY_PROBE_MS)
        wait = READY_PROBE_MS;
    struct buf expr, b;
    buf_init(&expr);
    rsm_cmd_init(x, &b);
    ready_probe_expression(&expr, wait);
    int id = cdp_runtime_evaluate(x->env->cdp, &b, m->session_id, expr.data, 1);
    buf_fini(&expr);
    m->state = RSM_READY;
    m->probing = 1;
    rsm_queue(m, x, &b, id, wait + RSM_CMD_TIMEOUT_MS, 1);
}

/* Readiness begins (after the load event, or again after the resize). */
static void rsm_ready_begin(struct rsm *m, struct rsm_ctx *x)
{
    ready_phase(&m->ready, m->scrolled ? NAMES_RULE_LAZY : -1);
    rsm_probe(m, x);
}

/* The page in full: a full-page png, and a pdf, whose lazy panels load
 * only once they are in view (what scrolling through the dashboard does). */
static int rsm_whole_page(const struct rsm *m)
{
    return m->req->encoding == QUERY_ENCODING_PDF ||
           (m->req->height == QUERY_FULL_PAGE && m->req->encoding == QUERY_ENCODING_PNG);
}

static void rsm_capture(struct rsm *m, struct rsm_ctx *x)
{
    struct buf b;
    rsm_cmd_init(x, &b);
    int id;
    const struct render_request *q = m->req;
    if (q->encoding == QUERY_ENCODING_PDF) {
        struct cdp_pdf pdf = { .landscape = q->pdf.landscape,
                               .print_background = q->pdf.print_background,
                               .page_ranges = q->pdf.page_ranges };
        query_paper_inches(q->pdf.format, &pdf.paper_width, &pdf.paper_height);
        /* As the references print: a larger deviceScaleFactor fits more of
         * the dashboard on the paper, at 1/deviceScaleFactor (Chrome takes
         * 0.1 to 2). */
        double scale = 1.0 / q->device_scale_factor;
        pdf.scale = scale < 0.1 ? 0.1 : scale > 2.0 ? 2.0 : scale;
        id = cdp_page_print_to_pdf(x->env->cdp, &b, m->session_id, &pdf);
    } else {
        struct cdp_screenshot shot = { .optimize_for_speed = 1 };
        id = cdp_page_capture_screenshot(x->env->cdp, &b, m->session_id, &shot);
    }
    m->state = RSM_CAPTURE;
    rsm_queue(m, x, &b, id, rsm_left_ms(m, x) + 1000, 1);
}

static void rsm_ready(struct rsm *m, struct rsm_ctx *x)
{
    m->probing = 0;
    m->result.ready_done = 1;
    if (m->scrolled) {
        /* The second phase's waiting was for panels brought into view. */
        rsm_report(m, x, NAMES_STEP_DASHBOARD_SCROLLING);
        rsm_capture(m, x);
        return;
    }
    rsm_report(m, x, NAMES_STEP_PANELS_RENDERED);
    if (rsm_whole_page(m)) {
        /* From here to the capture, the time is the lazy panels'. */
        m->ready.wait_ns = x->now;
        m->ready.wait_rule = NAMES_RULE_LAZY;
        struct buf b;
        rsm_cmd_init(x, &b);
        m->state = RSM_LAYOUT;
        rsm_queue(m, x, &b, cdp_page_get_layout_metrics(x->env->cdp, &b, m->session_id), RSM_CMD_TIMEOUT_MS, 1);
        return;
    }
    rsm_capture(m, x);
}

static void rsm_on_probe(struct rsm *m, struct rsm_ctx *x, const struct cdp_msg *msg)
{
    struct ready_page p;
    if (ready_parse(msg, &p) < 0) {
        /* The page navigated away under the probe: ask again shortly. */
        m->probing = 0;
        rsm_wake(x, x->now + (int64_t)RSM_PROBE_RETRY_MS * CLOCK_NS_PER_MS);
        return;
    }
    int64_t wake;
    switch (ready_decide(&m->ready, &p, x->now, &wake)) {
    case READY_YES:
        rsm_ready(m, x);
        return;
    case READY_PROBE:
        rsm_probe(m, x);
        return;
    case READY_WAIT:
        m->probing = 0;
        rsm_wake(x, wake);
        return;
    }
}

/* ---- events of the page ---------------------------------------------------------------- */

static int rsm_loaded(const struct rsm *m, const char *loader)
{
    for (unsigned i = 0; i < m->nloaded && i < RSM_LOADERS; i++)
        if (strcmp(m->loaded[i], loader) == 0)
            return 1;
    return 0;
}

static void rsm_check_loaded(struct rsm *m, struct rsm_ctx *x)
{
    if (m->state == RSM_NAVIGATE && m->navigated && rsm_loaded(m, m->loader_id)) {
        ready_on_load(&m->ready, x->now);
        rsm_report(m, x, NAMES_STEP_NAVIGATE);
        rsm_ready_begin(m, x);
    }
}

static void rsm_dl_name(struct rsm *m, const char *suggested)
{
    const char *base = suggested;
    for (const char *p = suggested; *p; p++)
        if (*p == '/' || *p == '\\')
            base = p + 1;
    while (*base == '.' || *base == ' ')
        base++;
    size_t n = 0;
    for (; *base && n < RSM_FILENAME_MAX; base++) {
        char ch = *base;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 strchr(" ._()-", ch);
        m->dl_name[n++] = ok ? ch : '_';
    }
    m->dl_name[n] = '\0';
    if (n == 0)
        snprintf(m->dl_name, sizeof(m->dl_name), "data.csv");
}

/* The download is complete and the navigation answered: read its file. */
static void rsm_dl_check(struct rsm *m, struct rsm_ctx *x)
{
    if (m->state == RSM_DOWNLOAD && m->dl_done && !x->out->read_file)
        x->out->read_file = 1;
}

static void rsm_on_download(struct rsm *m, struct rsm_ctx *x, const struct cdp_msg *msg)
{
    struct cdp_download d;
    if (cdp_event_download(msg, &d) < 0)
        return;
    if (msg->event == CDP_EVENT_DOWNLOAD_WILL_BEGIN) {
        if (!m->dl_guid[0] && strlen(d.guid) <= CDP_ID_MAX) {
            memcpy(m->dl_guid, d.guid, strlen(d.guid) + 1);
            rsm_dl_name(m, d.suggested_filename);
        }
        return;
    }
    if (m->dl_done || strcmp(d.guid, m->dl_guid) != 0)
        return; /* only the page's first download is the answer */
    if (d.state == CDP_DOWNLOAD_CANCELED)
        rsm_fail(m, x, 500, 0, "the browser canceled the download");
    else if (d.received > RSM_CSV_MAX)
        rsm_fail(m, x, 500, 0, "the csv is larger than %u bytes", RSM_CSV_MAX);
    else if (d.state == CDP_DOWNLOAD_COMPLETED) {
        m->dl_done = 1;
        rsm_dl_check(m, x);
    }
}

static void on_event(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    const struct cdp_msg *msg = in->msg;
    if (cdp_msg_lost_session(msg)) {
        int first = !m->have_result && m->state < RSM_DISPOSE;
        rsm_fail(m, x, 500, 1, "the page crashed or was closed (%s)", msg->method);
        if (first)
            m->result.crashed = 1;
        return;
    }
    switch (msg->event) {
    case CDP_EVENT_LIFECYCLE: {
        struct cdp_lifecycle lc;
        if (cdp_event_lifecycle(msg, &lc) == 0 && strcmp(lc.name, "load") == 0 &&
            strlen(lc.loader_id) <= CDP_ID_MAX) {
            memcpy(m->loaded[m->nloaded % RSM_LOADERS], lc.loader_id, strlen(lc.loader_id) + 1);
            m->nloaded++;
            rsm_check_loaded(m, x);
        }
        return;
    }
    case CDP_EVENT_REQUEST_WILL_BE_SENT:
    case CDP_EVENT_RESPONSE_RECEIVED:
    case CDP_EVENT_LOADING_FINISHED:
    case CDP_EVENT_LOADING_FAILED:
        ready_on_network(&m->ready, msg, x->now);
        if (m->state == RSM_READY && !m->probing && m->ready.wait_ns)
            rsm_wake(x, ready_rewake(&m->ready, x->now));
        return;
    case CDP_EVENT_DOWNLOAD_WILL_BEGIN:
    case CDP_EVENT_DOWNLOAD_PROGRESS:
        if (m->req && m->req->encoding == QUERY_ENCODING_CSV)
            rsm_on_download(m, x, msg);
        return;
    case CDP_EVENT_DIALOG_OPENING: {
        /* A page blocked in alert() never gets ready: dismiss it. Its reply
         * is not waited for: wait_id stays on the state's own command. */
        struct buf b;
        rsm_cmd_init(x, &b);
        rsm_queue(m, x, &b, cdp_page_handle_dialog(x->env->cdp, &b, m->session_id, 0), RSM_CMD_TIMEOUT_MS, 0);
        return;
    }
    default:
        return;
    }
}

static void on_lost(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    (void)in;
    m->session_id[0] = '\0'; /* the subscription is gone with the connection */
    rsm_lost(m, x);
}

/* ---- replies, by state --------------------------------------------------------------------- */

/* What every state does with a reply before its own handler: the end of
 * the connection, a command that timed out, an answer over the size
 * limit. 1 when the reply was dealt with here. */
static int rsm_reply_trouble(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
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
static int rsm_awaited(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    if (in->id != m->wait_id)
        return 0; /* the reply to a command we do not wait for (a dialog) */
    return !rsm_reply_trouble(m, in, x);
}

static void on_context(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    if (!rsm_awaited(m, in, x))
        return;
    const char *id;
    if (cdp_result_browser_context_id(in->msg, &id) < 0 || rsm_copy_id(m->context_id, id) < 0) {
        rsm_fail(m, x, 500, 0, "cannot create a browser context");
        return;
    }
    rsm_report(m, x, NAMES_STEP_LAUNCH);
    struct buf b;
    rsm_cmd_init(x, &b);
    m->state = RSM_TARGET;
    rsm_queue(m, x, &b, cdp_create_target(x->env->cdp, &b, m->context_id), RSM_CMD_TIMEOUT_MS, 1);
}

static void on_target(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    if (!rsm_awaited(m, in, x))
        return;
    const char *id;
    if (cdp_result_target_id(in->msg, &id) < 0 || rsm_copy_id(m->target_id, id) < 0) {
        rsm_fail(m, x, 500, 0, "cannot create a page");
        return;
    }
    struct buf b;
    rsm_cmd_init(x, &b);
    m->state = RSM_ATTACH;
    rsm_queue(m, x, &b, cdp_attach_to_target(x->env->cdp, &b, m->target_id), RSM_CMD_TIMEOUT_MS, 1);
}

static void on_attach(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    if (!rsm_awaited(m, in, x))
        return;
    const char *id;
    if (cdp_result_session_id(in->msg, &id) < 0 || rsm_copy_id(m->session_id, id) < 0) {
        m->session_id[0] = '\0';
        rsm_fail(m, x, 500, 0, "cannot attach to the page");
        return;
    }
    x->out->subscribe = 1;
    rsm_report(m, x, NAMES_STEP_NEW_PAGE);
    rsm_prepare(m, x, m->spare ? RSM_PREPARE_ENABLES : RSM_PREPARE_ENABLES | RSM_PREPARE_REQUEST);
}

static void on_prepare(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    unsigned i = 0;
    while (i < m->prepare_left && m->prepare_ids[i] != in->id)
        i++;
    if (i == m->prepare_left)
        return; /* not one of the batch (a dialog's reply) */
    if (rsm_reply_trouble(m, in, x))
        return;
    if (in->msg->type == CDP_MSG_ERROR) {
        if (m->req && m->req->timezone[0] && strstr(in->msg->error_message, "imezone"))
            rsm_fail(m, x, 400, 0, "timezone: the browser does not know \"%s\"", m->req->timezone);
        else
            rsm_fail(m, x, 500, 0, "the browser refused to prepare the page: %s", in->msg->error_message);
        return;
    }
    m->prepare_ids[i] = m->prepare_ids[--m->prepare_left];
    if (m->prepare_left > 0)
        return;
    if (!(m->prepared & RSM_PREPARE_REQUEST)) {
        /* A spare's page is ready: park it, or go on for the request that
         * claimed it meanwhile. */
        if (m->spare)
            m->state = RSM_PARKED;
        else
            rsm_prepare(m, x, RSM_PREPARE_REQUEST);
        return;
    }
    rsm_report(m, x, NAMES_STEP_PREPARE);
    rsm_navigate(m, x);
}

static void on_navigate(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    if (!rsm_awaited(m, in, x))
        return;
    const struct cdp_msg *msg = in->msg;
    const char *frame, *loader, *error_text;
    int rc = cdp_result_navigate(msg, &frame, &loader, &error_text);
    const char *why = error_text ? error_text : msg->type == CDP_MSG_ERROR ? msg->error_message : "bad reply";
    if (m->req->encoding == QUERY_ENCODING_CSV) {
        /* The csv comes as the page's download, or the url itself is one
         * (its navigation then "fails" as aborted). */
        if (rc < 0 || (error_text && !cdp_result_is_download(msg))) {
            rsm_fail(m, x, 500, 0, "cannot load the url: %s", why);
            return;
        }
        rsm_report(m, x, NAMES_STEP_NAVIGATE_CSV);
        m->state = RSM_DOWNLOAD;
        m->wait_id = 0;
        rsm_dl_check(m, x);
        return;
    }
    if (rc < 0 || error_text) {
        rsm_fail(m, x, 500, 0, "cannot load the url: %s", why);
        return;
    }
    if (!loader || rsm_copy_id(m->loader_id, loader) < 0) {
        /* A same-document navigation has no loader: nothing more will load. */
        ready_on_load(&m->ready, x->now);
        rsm_report(m, x, NAMES_STEP_NAVIGATE);
        rsm_ready_begin(m, x);
        return;
    }
    m->navigated = 1;
    m->wait_id = 0;
    rsm_check_loaded(m, x);
}

static void on_ready(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    if (!rsm_awaited(m, in, x))
        return;
    m->wait_id = 0;
    rsm_on_probe(m, x, in->msg);
}

static void on_ready_wake(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    (void)in;
    if (!m->probing)
        rsm_probe(m, x);
}

static void on_layout(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    if (!rsm_awaited(m, in, x))
        return;
    double w, h;
    if (cdp_result_content_size(in->msg, &w, &h) < 0) {
        rsm_fail(m, x, 500, 0, "cannot measure the page");
        return;
    }
    m->full_page_h = h < QUERY_SIZE_MIN ? QUERY_SIZE_MIN : h > QUERY_SIZE_MAX ? QUERY_SIZE_MAX : (int)ceil(h);
    struct buf b;
    rsm_cmd_init(x, &b);
    m->state = RSM_RESIZE;
    rsm_queue(m, x, &b,
              cdp_set_device_metrics(x->env->cdp, &b, m->session_id, m->req->width, m->full_page_h,
                                     m->req->device_scale_factor),
              RSM_CMD_TIMEOUT_MS, 1);
}

static void on_resize(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    if (!rsm_awaited(m, in, x))
        return;
    if (in->msg->type == CDP_MSG_ERROR) {
        rsm_fail(m, x, 500, 0, "cannot resize the page: %s", in->msg->error_message);
        return;
    }
    m->scrolled = 1;
    /* Two frames, so the lazy panels' intersection observers see they are
     * in view and their queries start, then readiness once more. */
    static const char expr[] = "new Promise(function(resolve){requestAnimationFrame(function(){"
                               "requestAnimationFrame(function(){resolve(true);});});})";
    struct buf b;
    rsm_cmd_init(x, &b);
    m->state = RSM_SETTLE;
    rsm_queue(m, x, &b, cdp_runtime_evaluate(x->env->cdp, &b, m->session_id, expr, 1), RSM_CMD_TIMEOUT_MS, 1);
}

static void on_settle(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    if (!rsm_awaited(m, in, x))
        return;
    /* Whatever the frames said (a page may have navigated meanwhile):
     * readiness again, all its waiting charged to the lazy panels. */
    ready_wait_end(&m->ready, x->now);
    rsm_ready_begin(m, x);
}

static void on_capture(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    if (!rsm_awaited(m, in, x))
        return;
    const struct cdp_msg *msg = in->msg;
    const char *data;
    size_t len;
    if (cdp_result_data(msg, &data, &len) < 0) {
        rsm_fail(m, x, 500, 0, "the browser did not capture the page: %s",
                 msg->type == CDP_MSG_ERROR ? msg->error_message : "no data");
        return;
    }
    unsigned char *img;
    size_t img_len;
    if (cdp_decode_base64(data, len, &img, &img_len) < 0) {
        rsm_fail(m, x, 500, 0, "the browser sent an image we cannot decode");
        return;
    }
    rsm_report(m, x, NAMES_STEP_SCREENSHOT);
    m->have_result = 1;
    m->result.status = 200;
    m->result.content_type = m->req->encoding == QUERY_ENCODING_PDF ? "application/pdf" : "image/png";
    m->result.body = img;
    m->result.len = img_len;
    rsm_dispose(m, x);
}

static void on_file(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    if (in->err < 0) {
        free(in->data);
        if (in->err == -EFBIG)
            rsm_fail(m, x, 500, 0, "the csv is larger than %u bytes", RSM_CSV_MAX);
        else
            rsm_fail(m, x, 500, 0, "cannot read the downloaded file: %s", strerror(-in->err));
        return;
    }
    rsm_report(m, x, NAMES_STEP_DOWNLOAD_CSV);
    m->have_result = 1;
    m->result.status = 200;
    m->result.content_type = "text/csv";
    m->result.filename = m->dl_name;
    m->result.len = in->len;
    m->result.body = in->data ? in->data : xmalloc(1); /* an empty csv is still an answer */
    rsm_dispose(m, x);
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
#define RSM_PAGE [RSM_EV_CDP] = on_event, [RSM_EV_LOST] = on_lost

/* What each state does with each event; an empty cell ignores it. */
static const rsm_fn rsm_table[RSM_STATE_COUNT][RSM_EV_COUNT] = {
    [RSM_CONTEXT] = { [RSM_EV_BEGIN] = on_begin, [RSM_EV_CLAIM] = on_claim, [RSM_EV_REPLY] = on_context, RSM_ENDS },
    [RSM_TARGET] = { [RSM_EV_CLAIM] = on_claim, [RSM_EV_REPLY] = on_target, RSM_ENDS },
    [RSM_ATTACH] = { [RSM_EV_CLAIM] = on_claim, [RSM_EV_REPLY] = on_attach, RSM_ENDS },
    [RSM_PREPARE] = { [RSM_EV_CLAIM] = on_claim, [RSM_EV_REPLY] = on_prepare, RSM_PAGE, RSM_ENDS },
    [RSM_PARKED] = { [RSM_EV_CLAIM] = on_claim, RSM_PAGE, RSM_ENDS },
    [RSM_NAVIGATE] = { [RSM_EV_REPLY] = on_navigate, RSM_PAGE, RSM_ENDS },
    [RSM_READY] = { [RSM_EV_REPLY] = on_ready, [RSM_EV_WAKE] = on_ready_wake, RSM_PAGE, RSM_ENDS },
    [RSM_LAYOUT] = { [RSM_EV_REPLY] = on_layout, RSM_PAGE, RSM_ENDS },
    [RSM_RESIZE] = { [RSM_EV_REPLY] = on_resize, RSM_PAGE, RSM_ENDS },
    [RSM_SETTLE] = { [RSM_EV_REPLY] = on_settle, RSM_PAGE, RSM_ENDS },
    [RSM_CAPTURE] = { [RSM_EV_REPLY] = on_capture, RSM_PAGE, RSM_ENDS },
    [RSM_DOWNLOAD] = { [RSM_EV_FILE] = on_file, RSM_PAGE, RSM_ENDS },
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
