/* The page of one render (rsm.h): a browser context, a target, a session
 * attached to it, the page prepared (domains, viewport, timezone, headers,
 * cookie, interception) and navigated, and the page's events (loads,
 * network, dialogs, downloads, a crash) while it lives. Pure, like all of
 * the machine: run by rsm_step() on the browser thread; it queues commands
 * in the step's rsm_out and keeps ids in struct rsm, allocating nothing of
 * its own. */
#include "rsm_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int rsm_copy_id(char *dst, const char *src)
{
    size_t n = strlen(src);
    if (n > CDP_ID_MAX)
        return -EBADMSG;
    memcpy(dst, src, n + 1);
    return 0;
}

void rsm_begin(struct rsm *m, struct rsm_ctx *x)
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
void rsm_prepare(struct rsm *m, struct rsm_ctx *x, unsigned parts)
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

void rsm_on_event(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
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

void rsm_on_lost(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    (void)in;
    m->session_id[0] = '\0'; /* the subscription is gone with the connection */
    rsm_lost(m, x);
}

void rsm_on_context(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
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

void rsm_on_target(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
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

void rsm_on_attach(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
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

void rsm_on_prepare(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
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

void rsm_on_navigate(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
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
