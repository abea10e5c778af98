/* CDP messages without I/O. Building goes through jansson so every string we
 * pass on (URLs, headers from the client) is escaped and checked for UTF-8;
 * parsing checks each field's presence, type and size before the renderer
 * sees it, because a browser under memory pressure or a crashed page can send
 * anything. */
#include "cdp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libwebsockets.h>

#include "xalloc.h"

void cdp_init(struct cdp *c)
{
    c->last_id = 0;
}

/* A string argument: present, not empty, at most max bytes. UTF-8 is checked
 * by jansson when it is packed. */
static int cdp_arg_ok(const char *s, size_t max)
{
    if (!s || !*s)
        return 0;
    return strnlen(s, max + 1) <= max;
}

static int cdp_id_ok(const char *s)
{
    return cdp_arg_ok(s, CDP_ID_MAX);
}

static int cdp_dump_cb(const char *data, size_t len, void *arg)
{
    buf_append(arg, data, len);
    return 0;
}

int cdp_command(struct cdp *c, struct buf *out, const char *session,
                const char *method, json_t *params)
{
    if (!cdp_arg_ok(method, CDP_METHOD_MAX) || (session && !cdp_id_ok(session)) ||
        (params && !json_is_object(params))) {
        json_decref(params);
        return -EINVAL;
    }
    int id = c->last_id == INT_MAX ? 1 : c->last_id + 1;
    json_t *msg = json_pack("{s:i, s:s}", "id", id, "method", method);
    if (!msg) {
        json_decref(params);
        return -EINVAL;
    }
    if (params && json_object_set_new(msg, "params", params) < 0) {
        json_decref(msg);
        return -EINVAL;
    }
    if (session && json_object_set_new(msg, "sessionId", json_string(session)) < 0) {
        json_decref(msg);
        return -EINVAL;
    }
    size_t mark = out->len;
    /* 15 digits keep a scale like 1.1 readable in debug logs. */
    int rc = json_dump_callback(msg, cdp_dump_cb, out,
                                JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    json_decref(msg);
    if (rc < 0) {
        out->len = mark;
        if (out->data)
            out->data[mark] = '\0';
        return -EINVAL;
    }
    c->last_id = id;
    return id;
}

/* json_pack with a NULL result turned into -EINVAL (a string that is not UTF-8). */
static int cdp_packed(struct cdp *c, struct buf *out, const char *session,
                      const char *method, json_t *params)
{
    if (!params)
        return -EINVAL;
    return cdp_command(c, out, session, method, params);
}

int cdp_browser_get_version(struct cdp *c, struct buf *out)
{
    return cdp_command(c, out, NULL, "Browser.getVersion", NULL);
}

int cdp_create_browser_context(struct cdp *c, struct buf *out)
{
    return cdp_packed(c, out, NULL, "Target.createBrowserContext",
                      json_pack("{s:b}", "disposeOnDetach", 1));
}

int cdp_dispose_browser_context(struct cdp *c, struct buf *out, const char *context_id)
{
    if (!cdp_id_ok(context_id))
        return -EINVAL;
    return cdp_packed(c, out, NULL, "Target.disposeBrowserContext",
                      json_pack("{s:s}", "browserContextId", context_id));
}

int cdp_create_target(struct cdp *c, struct buf *out, const char *context_id)
{
    if (!cdp_id_ok(context_id))
        return -EINVAL;
    return cdp_packed(c, out, NULL, "Target.createTarget",
                      json_pack("{s:s, s:s}", "url", "about:blank",
                                "browserContextId", context_id));
}

int cdp_attach_to_target(struct cdp *c, struct buf *out, const char *target_id)
{
    if (!cdp_id_ok(target_id))
        return -EINVAL;
    return cdp_packed(c, out, NULL, "Target.attachToTarget",
                      json_pack("{s:s, s:b}", "targetId", target_id, "flatten", 1));
}

int cdp_get_targets(struct cdp *c, struct buf *out)
{
    return cdp_command(c, out, NULL, "Target.getTargets", NULL);
}

int cdp_get_browser_contexts(struct cdp *c, struct buf *out)
{
    return cdp_command(c, out, NULL, "Target.getBrowserContexts", NULL);
}

int cdp_close_target(struct cdp *c, struct buf *out, const char *target_id)
{
    if (!cdp_id_ok(target_id))
        return -EINVAL;
    return cdp_packed(c, out, NULL, "Target.closeTarget",
                      json_pack("{s:s}", "targetId", target_id));
}

int cdp_set_download_behavior(struct cdp *c, struct buf *out,
                              const char *context_id, const char *path)
{
    /* Chrome resolves a relative path against its own cwd: never what we mean. */
    if (!cdp_id_ok(context_id) || !cdp_arg_ok(path, CDP_ARG_MAX) || path[0] != '/')
        return -EINVAL;
    return cdp_packed(c, out, NULL, "Browser.setDownloadBehavior",
                      json_pack("{s:s, s:s, s:s, s:b}", "behavior", "allowAndName",
                                "browserContextId", context_id, "downloadPath", path,
                                "eventsEnabled", 1));
}

/* Commands for a page's session must name one. */
static int cdp_session_command(struct cdp *c, struct buf *out, const char *session,
                               const char *method, json_t *params)
{
    if (!cdp_id_ok(session)) {
        json_decref(params);
        return -EINVAL;
    }
    return cdp_command(c, out, session, method, params);
}

int cdp_page_enable(struct cdp *c, struct buf *out, const char *session)
{
    return cdp_session_command(c, out, session, "Page.enable", NULL);
}

int cdp_page_set_lifecycle_events(struct cdp *c, struct buf *out,
                                  const char *session, int enabled)
{
    return cdp_session_command(c, out, session, "Page.setLifecycleEventsEnabled",
                               json_pack("{s:b}", "enabled", enabled != 0));
}

int cdp_page_navigate(struct cdp *c, struct buf *out, const char *session, const char *url)
{
    if (!cdp_id_ok(session) || !cdp_arg_ok(url, CDP_ARG_MAX))
        return -EINVAL;
    return cdp_packed(c, out, session, "Page.navigate", json_pack("{s:s}", "url", url));
}

int cdp_page_get_layout_metrics(struct cdp *c, struct buf *out, const char *session)
{
    return cdp_session_command(c, out, session, "Page.getLayoutMetrics", NULL);
}

int cdp_page_handle_dialog(struct cdp *c, struct buf *out, const char *session, int accept)
{
    return cdp_session_command(c, out, session, "Page.handleJavaScriptDialog",
                               json_pack("{s:b}", "accept", accept != 0));
}

static int cdp_size_ok(double v, double max)
{
    return isfinite(v) && v > 0 && v <= max;
}

/* Add a member; a NULL value (a failed pack) or a failed insert is -1. */
static int cdp_set(json_t *obj, const char *key, json_t *v)
{
    return v && json_object_set_new(obj, key, v) == 0 ? 0 : -1;
}

int cdp_page_capture_screenshot(struct cdp *c, struct buf *out, const char *session,
                                const struct cdp_screenshot *shot)
{
    if (!cdp_id_ok(session))
        return -EINVAL;
    if (shot && shot->full_page && (!cdp_size_ok(shot->width, CDP_VIEWPORT_MAX) ||
                                    !cdp_size_ok(shot->height, CDP_VIEWPORT_MAX)))
        return -EINVAL;
    json_t *p = json_pack("{s:s}", "format", "png");
    if (!p)
        return -EINVAL;
    int bad = 0;
    if (shot && shot->full_page) {
        /* scale 1: the clip is in CSS pixels and the image still comes out
         * at deviceScaleFactor (a 300x2000 clip at factor 2 is 600x4000). */
        bad |= cdp_set(p, "captureBeyondViewport", json_true());
        bad |= cdp_set(p, "clip", json_pack("{s:i, s:i, s:f, s:f, s:i}", "x", 0, "y", 0,
                                            "width", shot->width, "height", shot->height,
                                            "scale", 1));
    }
    if (shot && shot->optimize_for_speed)
        bad |= cdp_set(p, "optimizeForSpeed", json_true());
    if (bad) {
        json_decref(p);
        return -EINVAL;
    }
    return cdp_command(c, out, session, "Page.captureScreenshot", p);
}

int cdp_page_print_to_pdf(struct cdp *c, struct buf *out, const char *session,
                          const struct cdp_pdf *pdf)
{
    if (!cdp_id_ok(session) || !pdf)
        return -EINVAL;
    /* Zero means "Chrome's default"; anything else must be a real size. */
    if ((pdf->paper_width != 0 && !cdp_size_ok(pdf->paper_width, 1000)) ||
        (pdf->paper_height != 0 && !cdp_size_ok(pdf->paper_height, 1000)))
        return -EINVAL;
    /* Chrome refuses a scale outside 0.1 .. 2 with an error reply; say so here. */
    if (pdf->scale != 0 && !(isfinite(pdf->scale) && pdf->scale >= 0.1 && pdf->scale <= 2))
        return -EINVAL;
    if (pdf->page_ranges && *pdf->page_ranges && !cdp_arg_ok(pdf->page_ranges, CDP_ARG_MAX))
        return -EINVAL;
    json_t *p = json_pack("{s:b, s:b}", "landscape", pdf->landscape != 0,
                          "printBackground", pdf->print_background != 0);
    if (!p)
        return -EINVAL;
    int bad = 0;
    if (pdf->paper_width != 0)
        bad |= cdp_set(p, "paperWidth", json_real(pdf->paper_width));
    if (pdf->paper_height != 0)
        bad |= cdp_set(p, "paperHeight", json_real(pdf->paper_height));
    if (pdf->scale != 0)
        bad |= cdp_set(p, "scale", json_real(pdf->scale));
    if (pdf->page_ranges && *pdf->page_ranges)
        bad |= cdp_set(p, "pageRanges", json_string(pdf->page_ranges));
    if (bad) {
        json_decref(p);
        return -EINVAL;
    }
    return cdp_command(c, out, session, "Page.printToPDF", p);
}

/* Inches, as Chrome's printToPDF wants them. */
static const struct {
    const char *name;
    double width, height;
} cdp_papers[] = {
    { "letter", 8.5, 11 },      { "legal", 8.5, 14 },      { "tabloid", 11, 17 },
    { "ledger", 17, 11 },       { "a0", 33.1, 46.8 },      { "a1", 23.4, 33.1 },
    { "a2", 16.54, 23.4 },      { "a3", 11.7, 16.54 },     { "a4", 8.27, 11.7 },
    { "a5", 5.83, 8.27 },       { "a6", 4.13, 5.83 },
};

int cdp_pdf_paper(const char *name, double *width, double *height)
{
    if (!name)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(cdp_papers) / sizeof(cdp_papers[0]); i++) {
        if (strcasecmp(name, cdp_papers[i].name) == 0) {
            *width = cdp_papers[i].width;
            *height = cdp_papers[i].height;
            return 0;
        }
    }
    return -EINVAL;
}

int cdp_runtime_enable(struct cdp *c, struct buf *out, const char *session)
{
    return cdp_session_command(c, out, session, "Runtime.enable", NULL);
}

int cdp_runtime_evaluate(struct cdp *c, struct buf *out, const char *session,
                         const char *expression, int await_promise)
{
    if (!cdp_id_ok(session) || !cdp_arg_ok(expression, CDP_EXPRESSION_MAX))
        return -EINVAL;
    return cdp_packed(c, out, session, "Runtime.evaluate",
                      json_pack("{s:s, s:b, s:b}", "expression", expression,
                                "returnByValue", 1, "awaitPromise", await_promise != 0));
}

int cdp_page_add_script(struct cdp *c, struct buf *out, const char *session, const char *source)
{
    if (!cdp_id_ok(session) || !cdp_arg_ok(source, CDP_EXPRESSION_MAX))
        return -EINVAL;
    return cdp_packed(c, out, session, "Page.addScriptToEvaluateOnNewDocument",
                      json_pack("{s:s}", "source", source));
}

int cdp_inspector_enable(struct cdp *c, struct buf *out, const char *session)
{
    return cdp_session_command(c, out, session, "Inspector.enable", NULL);
}

int cdp_set_device_metrics(struct cdp *c, struct buf *out, const char *session,
                           int width, int height, double scale)
{
    if (!cdp_id_ok(session) || width < 1 || width > CDP_VIEWPORT_MAX || height < 1 ||
        height > CDP_VIEWPORT_MAX || !cdp_size_ok(scale, CDP_SCALE_MAX))
        return -EINVAL;
    return cdp_packed(c, out, session, "Emulation.setDeviceMetricsOverride",
                      json_pack("{s:i, s:i, s:f, s:b}", "width", width, "height", height,
                                "deviceScaleFactor", scale, "mobile", 0));
}

int cdp_set_timezone(struct cdp *c, struct buf *out, const char *session, const char *tz)
{
    if (!cdp_id_ok(session) || !cdp_arg_ok(tz, CDP_ARG_MAX))
        return -EINVAL;
    return cdp_packed(c, out, session, "Emulation.setTimezoneOverride",
                      json_pack("{s:s}", "timezoneId", tz));
}

int cdp_network_enable(struct cdp *c, struct buf *out, const char *session)
{
    return cdp_session_command(c, out, session, "Network.enable", NULL);
}

int cdp_fetch_enable(struct cdp *c, struct buf *out, const char *session)
{
    /* Every URL, at the Request stage: redirects come back as requests of
     * their own, so each hop is asked about. */
    return cdp_session_command(c, out, session, "Fetch.enable",
                               json_pack("{s:[{s:s, s:s}]}", "patterns", "urlPattern", "*",
                                         "requestStage", "Request"));
}

int cdp_fetch_continue(struct cdp *c, struct buf *out, const char *session, const char *request_id)
{
    if (!cdp_id_ok(request_id))
        return -EINVAL;
    return cdp_session_command(c, out, session, "Fetch.continueRequest",
                               json_pack("{s:s}", "requestId", request_id));
}

int cdp_fetch_fail(struct cdp *c, struct buf *out, const char *session, const char *request_id)
{
    if (!cdp_id_ok(request_id))
        return -EINVAL;
    return cdp_session_command(c, out, session, "Fetch.failRequest",
                               json_pack("{s:s, s:s}", "requestId", request_id, "errorReason", "BlockedByClient"));
}

int cdp_set_auto_attach(struct cdp *c, struct buf *out, const char *session)
{
    return cdp_session_command(c, out, session, "Target.setAutoAttach",
                               json_pack("{s:b, s:b, s:b}", "autoAttach", 1, "waitForDebuggerOnStart", 1,
                                         "flatten", 1));
}

int cdp_run_if_waiting(struct cdp *c, struct buf *out, const char *session)
{
    return cdp_session_command(c, out, session, "Runtime.runIfWaitingForDebugger", NULL);
}

int cdp_set_extra_headers(struct cdp *c, struct buf *out, const char *session,
                          const char *const *headers)
{
    if (!cdp_id_ok(session) || !headers || !headers[0])
        return -EINVAL;
    json_t *h = json_object();
    if (!h)
        return -EINVAL;
    for (size_t i = 0; headers[i]; i += 2) {
        json_t *v = NULL;
        if (!cdp_arg_ok(headers[i], CDP_ARG_MAX) || !cdp_arg_ok(headers[i + 1], CDP_ARG_MAX) ||
            !(v = json_string(headers[i + 1])) || json_object_set_new(h, headers[i], v) < 0) {
            json_decref(h);
            return -EINVAL;
        }
    }
    return cdp_packed(c, out, session, "Network.setExtraHTTPHeaders",
                      json_pack("{s:o}", "headers", h));
}

/* http://[addr]/ for an IPv6 address, with or without brackets: 1, or 0
 * for anything else (a name, an IPv4 address), -1 for a broken literal. */
static int cdp_cookie_url(const char *domain, char *url, size_t url_len)
{
    size_t len = strlen(domain);
    if (domain[0] != '[' && !strchr(domain, ':'))
        return 0;
    if (domain[0] == '[') {
        if (len < 2 || domain[len - 1] != ']')
            return -1;
        domain++;
        len -= 2;
    }
    char text[INET6_ADDRSTRLEN];
    struct in6_addr addr;
    if (len == 0 || len >= sizeof(text))
        return -1;
    memcpy(text, domain, len);
    text[len] = '\0';
    if (inet_pton(AF_INET6, text, &addr) != 1)
        return -1;
    snprintf(url, url_len, "http://[%s]/", text);
    return 1;
}

int cdp_set_cookie(struct cdp *c, struct buf *out, const char *session,
                   const char *name, const char *value, const char *domain)
{
    if (!cdp_id_ok(session) || !cdp_arg_ok(name, CDP_ARG_MAX) ||
        !cdp_arg_ok(value, CDP_ARG_MAX) || !cdp_arg_ok(domain, CDP_ARG_MAX))
        return -EINVAL;
    char url[INET6_ADDRSTRLEN + 16];
    int v6 = cdp_cookie_url(domain, url, sizeof(url));
    if (v6 < 0)
        return -EINVAL;
    if (v6)
        return cdp_packed(c, out, session, "Network.setCookie",
                          json_pack("{s:s, s:s, s:s, s:s}", "name", name, "value", value,
                                    "url", url, "path", "/"));
    return cdp_packed(c, out, session, "Network.setCookie",
                      json_pack("{s:s, s:s, s:s, s:s}", "name", name, "value", value,
                                "domain", domain, "path", "/"));
}

/* Parsing. */

static const struct {
    const char *method;
    enum cdp_event event;
} cdp_events[] = {
    { "Target.attachedToTarget", CDP_EVENT_ATTACHED_TO_TARGET },
    { "Target.detachedFromTarget", CDP_EVENT_DETACHED_FROM_TARGET },
    { "Inspector.targetCrashed", CDP_EVENT_TARGET_CRASHED },
    { "Inspector.detached", CDP_EVENT_INSPECTOR_DETACHED },
    { "Page.lifecycleEvent", CDP_EVENT_LIFECYCLE },
    { "Page.loadEventFired", CDP_EVENT_LOAD_EVENT_FIRED },
    { "Page.javascriptDialogOpening", CDP_EVENT_DIALOG_OPENING },
    { "Network.requestWillBeSent", CDP_EVENT_REQUEST_WILL_BE_SENT },
    { "Network.responseReceived", CDP_EVENT_RESPONSE_RECEIVED },
    { "Network.loadingFinished", CDP_EVENT_LOADING_FINISHED },
    { "Network.loadingFailed", CDP_EVENT_LOADING_FAILED },
    { "Fetch.requestPaused", CDP_EVENT_REQUEST_PAUSED },
    { "Network.webSocketCreated", CDP_EVENT_WEBSOCKET_CREATED },
    { "Browser.downloadWillBegin", CDP_EVENT_DOWNLOAD_WILL_BEGIN },
    { "Browser.downloadProgress", CDP_EVENT_DOWNLOAD_PROGRESS },
    /* The same, sent on the page's own session (what a render listens to). */
    { "Page.downloadWillBegin", CDP_EVENT_DOWNLOAD_WILL_BEGIN },
    { "Page.downloadProgress", CDP_EVENT_DOWNLOAD_PROGRESS },
};

/* A string member no longer than max; NULL when absent or wrong. Strings
 * from jansson hold no NUL (JSON_ALLOW_NUL is not given), so C-string use is safe. */
static const char *cdp_get_str(json_t *obj, const char *key, size_t max)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v) || json_string_length(v) > max)
        return NULL;
    return json_string_value(v);
}

/* A non-empty id-like member. */
static const char *cdp_get_id(json_t *obj, const char *key)
{
    const char *s = cdp_get_str(obj, key, CDP_ID_MAX);
    return s && *s ? s : NULL;
}

/* Numbers are all parsed as reals (an integer beyond 64 bits in a page's
 * value must not make the whole frame unreadable), so integers are checked
 * here: integral and within int. */
static int cdp_get_int(json_t *v, int *out)
{
    if (!json_is_number(v))
        return -EBADMSG;
    double d = json_number_value(v);
    if (!isfinite(d) || d != floor(d) || d < INT_MIN || d > INT_MAX)
        return -EBADMSG;
    *out = (int)d;
    return 0;
}

static int cdp_fail(struct cdp_msg *m, int rc, const char *why)
{
    json_decref(m->root);
    memset(m, 0, sizeof(*m));
    m->why = why;
    return rc;
}

/* Chrome's reply prefix, and cdp_command's: compact JSON, the id first. */
static int cdp_scan_id(const char *s, size_t len, size_t *used)
{
    static const char pre[] = "{\"id\":";
    size_t i = sizeof(pre) - 1;
    if (len < i || memcmp(s, pre, i) != 0)
        return 0;
    long id = 0;
    size_t start = i;
    while (i < len && s[i] >= '0' && s[i] <= '9' && i - start < 10) {
        id = id * 10 + (s[i] - '0');
        i++;
    }
    if (i == start || i == len || (s[i] != ',' && s[i] != '}') || id < 1 || id > INT_MAX)
        return 0;
    *used = i;
    return (int)id;
}

int cdp_frame_reply_id(const char *head, size_t len)
{
    size_t used;
    return head ? cdp_scan_id(head, len, &used) : 0;
}

size_t cdp_reply_max(const char *command, size_t len)
{
    static const char method[] = ",\"method\":\"";
    static const char *const large[] = { "Page.captureScreenshot", "Page.printToPDF" };
    size_t i;
    if (!command || cdp_scan_id(command, len, &i) == 0 || len - i < sizeof(method) - 1 ||
        memcmp(command + i, method, sizeof(method) - 1) != 0)
        return CDP_MESSAGE_MAX;
    i += sizeof(method) - 1;
    for (size_t k = 0; k < sizeof(large) / sizeof(large[0]); k++) {
        size_t n = strlen(large[k]);
        if (len - i > n && memcmp(command + i, large[k], n) == 0 && command[i + n] == '"')
            return CDP_FRAME_MAX;
    }
    return CDP_MESSAGE_MAX;
}

int cdp_msg_parse(struct cdp_msg *m, const char *text, size_t len)
{
    memset(m, 0, sizeof(*m));
    if (len > CDP_FRAME_MAX)
        return cdp_fail(m, -EMSGSIZE, "frame larger than CDP_FRAME_MAX");
    if (!text || len == 0)
        return cdp_fail(m, -EBADMSG, "empty frame");
    json_error_t err;
    m->root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &err);
    if (!m->root)
        return cdp_fail(m, -EBADMSG, "not JSON (truncated or garbage)");
    if (!json_is_object(m->root))
        return cdp_fail(m, -EBADMSG, "not a JSON object");

    json_t *sess = json_object_get(m->root, "sessionId");
    if (sess) {
        m->session = cdp_get_id(m->root, "sessionId");
        if (!m->session)
            return cdp_fail(m, -EBADMSG, "sessionId is not a string of 1..CDP_ID_MAX bytes");
    }

    json_t *id = json_object_get(m->root, "id");
    json_t *method = json_object_get(m->root, "method");
    if (id && method)
        return cdp_fail(m, -EBADMSG, "both id and method: neither reply nor event");
    if (id) {
        if (cdp_get_int(id, &m->id) < 0 || m->id < 1)
            return cdp_fail(m, -EBADMSG, "id is not a positive integer");
        json_t *result = json_object_get(m->root, "result");
        json_t *error = json_object_get(m->root, "error");
        if (result && error)
            return cdp_fail(m, -EBADMSG, "reply has both result and error");
        if (result) {
            if (!json_is_object(result))
                return cdp_fail(m, -EBADMSG, "result is not an object");
            m->type = CDP_MSG_RESULT;
            m->result = result;
            return 0;
        }
        if (!error)
            return cdp_fail(m, -EBADMSG, "reply has neither result nor error");
        if (!json_is_object(error))
            return cdp_fail(m, -EBADMSG, "error is not an object");
        if (cdp_get_int(json_object_get(error, "code"), &m->error_code) < 0)
            return cdp_fail(m, -EBADMSG, "error.code is not an integer");
        m->error_message = cdp_get_str(error, "message", CDP_ARG_MAX);
        if (!m->error_message)
            return cdp_fail(m, -EBADMSG,
                            "error.message is not a string of at most CDP_ARG_MAX bytes");
        /* data is only for the log: dropped, not refused, when odd. */
        m->error_data = cdp_get_str(error, "data", CDP_ARG_MAX);
        m->type = CDP_MSG_ERROR;
        return 0;
    }
    if (!method)
        return cdp_fail(m, -EBADMSG, "neither id nor method");
    m->method = cdp_get_str(m->root, "method", CDP_METHOD_MAX);
    if (!m->method || !*m->method)
        return cdp_fail(m, -EBADMSG, "method is not a string of 1..CDP_METHOD_MAX bytes");
    json_t *params = json_object_get(m->root, "params");
    if (params && !json_is_object(params))
        return cdp_fail(m, -EBADMSG, "params is not an object");
    m->params = params;
    m->type = CDP_MSG_EVENT;
    m->event = CDP_EVENT_OTHER;
    for (size_t i = 0; i < sizeof(cdp_events) / sizeof(cdp_events[0]); i++) {
        if (strcmp(m->method, cdp_events[i].method) == 0) {
            m->event = cdp_events[i].event;
            break;
        }
    }
    return 0;
}

void cdp_msg_fini(struct cdp_msg *m)
{
    json_decref(m->root);
    memset(m, 0, sizeof(*m));
}

const char *cdp_msg_lost_session(const struct cdp_msg *m)
{
    if (m->type != CDP_MSG_EVENT)
        return NULL;
    switch (m->event) {
    case CDP_EVENT_DETACHED_FROM_TARGET:
        /* Sent on the parent (browser) session, naming the child. */
        return cdp_get_id(m->params, "sessionId");
    case CDP_EVENT_TARGET_CRASHED:
    case CDP_EVENT_INSPECTOR_DETACHED:
        return m->session;
    default:
        return NULL;
    }
}

static int cdp_result_check(const struct cdp_msg *m)
{
    if (m->type == CDP_MSG_ERROR)
        return -EREMOTEIO;
    if (m->type != CDP_MSG_RESULT || !m->result)
        return -EINVAL;
    return 0;
}

static int cdp_result_id(const struct cdp_msg *m, const char *key, const char **id)
{
    int rc = cdp_result_check(m);
    if (rc < 0)
        return rc;
    const char *s = cdp_get_id(m->result, key);
    if (!s)
        return -EBADMSG;
    *id = s;
    return 0;
}

int cdp_result_browser_context_id(const struct cdp_msg *m, const char **id)
{
    return cdp_result_id(m, "browserContextId", id);
}

int cdp_result_target_id(const struct cdp_msg *m, const char **id)
{
    return cdp_result_id(m, "targetId", id);
}

int cdp_result_session_id(const struct cdp_msg *m, const char **id)
{
    return cdp_result_id(m, "sessionId", id);
}

int cdp_result_page_target(const struct cdp_msg *m, size_t i, const char **id)
{
    int rc = cdp_result_check(m);
    if (rc < 0)
        return rc;
    json_t *list = json_object_get(m->result, "targetInfos");
    if (!json_is_array(list))
        return -EBADMSG;
    for (size_t k = 0, pages = 0; k < json_array_size(list); k++) {
        json_t *t = json_array_get(list, k);
        const char *type = json_string_value(json_object_get(t, "type"));
        if (!type || strcmp(type, "page") != 0)
            continue;
        if (pages++ < i)
            continue;
        const char *tid = json_string_value(json_object_get(t, "targetId"));
        if (!tid || !cdp_id_ok(tid))
            return -EBADMSG;
        *id = tid;
        return 0;
    }
    return -ENOENT;
}

int cdp_result_browser_context(const struct cdp_msg *m, size_t i, const char **id)
{
    int rc = cdp_result_check(m);
    if (rc < 0)
        return rc;
    json_t *list = json_object_get(m->result, "browserContextIds");
    if (!json_is_array(list))
        return -EBADMSG;
    if (i >= json_array_size(list))
        return -ENOENT;
    const char *cid = json_string_value(json_array_get(list, i));
    if (!cid || !cdp_id_ok(cid))
        return -EBADMSG;
    *id = cid;
    return 0;
}

int cdp_result_product(const struct cdp_msg *m, const char **product)
{
    int rc = cdp_result_check(m);
    if (rc < 0)
        return rc;
    const char *p = cdp_get_str(m->result, "product", CDP_PRODUCT_MAX);
    if (!p || !*p)
        return -EBADMSG;
    /* It is sent on as a label value: keep it to text a person can read. */
    for (const char *s = p; *s; s++) {
        if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\')
            return -EBADMSG;
    }
    *product = p;
    return 0;
}

int cdp_result_data(const struct cdp_msg *m, const char **data, size_t *len)
{
    int rc = cdp_result_check(m);
    if (rc < 0)
        return rc;
    json_t *v = json_object_get(m->result, "data");
    if (!json_is_string(v))
        return -EBADMSG;
    if (json_string_length(v) == 0)
        return -ENODATA;
    *data = json_string_value(v);
    *len = json_string_length(v);
    return 0;
}

static int cdp_get_size(json_t *rect, double *width, double *height)
{
    json_t *w = json_object_get(rect, "width");
    json_t *h = json_object_get(rect, "height");
    if (!json_is_number(w) || !json_is_number(h))
        return -EBADMSG;
    double dw = json_number_value(w), dh = json_number_value(h);
    if (!isfinite(dw) || !isfinite(dh) || dw < 0 || dh < 0)
        return -EBADMSG;
    *width = dw;
    *height = dh;
    return 0;
}

int cdp_result_content_size(const struct cdp_msg *m, double *width, double *height)
{
    int rc = cdp_result_check(m);
    if (rc < 0)
        return rc;
    /* cssContentSize is in CSS pixels whatever the deviceScaleFactor; the
     * older contentSize is what Chrome before 92 sent. */
    json_t *rect = json_object_get(m->result, "cssContentSize");
    if (!rect)
        rect = json_object_get(m->result, "contentSize");
    if (!json_is_object(rect))
        return -EBADMSG;
    return cdp_get_size(rect, width, height);
}

int cdp_result_navigate(const struct cdp_msg *m, const char **frame_id,
                        const char **loader_id, const char **error_text)
{
    int rc = cdp_result_check(m);
    if (rc < 0)
        return rc;
    const char *f = cdp_get_id(m->result, "frameId");
    if (!f)
        return -EBADMSG;
    /* loaderId is absent for a same-document navigation. */
    json_t *l = json_object_get(m->result, "loaderId");
    const char *lid = cdp_get_id(m->result, "loaderId");
    if (l && !lid)
        return -EBADMSG;
    json_t *e = json_object_get(m->result, "errorText");
    const char *et = cdp_get_str(m->result, "errorText", CDP_ARG_MAX);
    if (e && !et)
        return -EBADMSG;
    *frame_id = f;
    if (loader_id)
        *loader_id = lid;
    if (error_text)
        *error_text = et && *et ? et : NULL;
    return 0;
}

int cdp_result_is_download(const struct cdp_msg *m)
{
    return cdp_result_check(m) == 0 && json_is_true(json_object_get(m->result, "isDownload"));
}

/* The text of a thrown exception: its description ("TypeError: ..."), else
 * the details' own text ("Uncaught"). */
static const char *cdp_exception_text(json_t *details)
{
    const char *s = cdp_get_str(json_object_get(details, "exception"), "description", CDP_ARG_MAX);
    if (!s)
        s = cdp_get_str(details, "text", CDP_ARG_MAX);
    return s ? s : "exception without text";
}

int cdp_result_evaluate(const struct cdp_msg *m, struct cdp_value *v)
{
    memset(v, 0, sizeof(*v));
    int rc = cdp_result_check(m);
    if (rc < 0)
        return rc;
    json_t *details = json_object_get(m->result, "exceptionDetails");
    if (details) {
        if (!json_is_object(details))
            return -EBADMSG;
        v->exception = cdp_exception_text(details);
        return -ENOEXEC;
    }
    json_t *obj = json_object_get(m->result, "result");
    if (!json_is_object(obj))
        return -EBADMSG;
    const char *type = cdp_get_str(obj, "type", 32);
    if (!type)
        return -EBADMSG;
    json_t *val = json_object_get(obj, "value");
    if (strcmp(type, "undefined") == 0) {
        v->type = CDP_VALUE_UNDEFINED;
    } else if (strcmp(type, "boolean") == 0) {
        if (!json_is_boolean(val))
            return -EBADMSG;
        v->type = CDP_VALUE_BOOLEAN;
        v->boolean = json_is_true(val);
    } else if (strcmp(type, "number") == 0) {
        v->type = CDP_VALUE_NUMBER;
        if (json_is_number(val)) {
            v->number = json_number_value(val);
        } else {
            /* What JSON cannot carry comes as text. */
            const char *u = cdp_get_str(obj, "unserializableValue", 32);
            if (!u)
                return -EBADMSG;
            if (strcmp(u, "NaN") == 0)
                v->number = NAN;
            else if (strcmp(u, "Infinity") == 0)
                v->number = INFINITY;
            else if (strcmp(u, "-Infinity") == 0)
                v->number = -INFINITY;
            else if (strcmp(u, "-0") == 0)
                v->number = -0.0;
            else
                return -EBADMSG;
        }
    } else if (strcmp(type, "string") == 0) {
        if (!json_is_string(val))
            return -EBADMSG;
        v->type = CDP_VALUE_STRING;
        v->string = json_string_value(val);
        v->len = json_string_length(val);
    } else if (strcmp(type, "object") == 0) {
        if (json_is_null(val)) {
            v->type = CDP_VALUE_NULL;
        } else if (json_is_object(val) || json_is_array(val)) {
            v->type = CDP_VALUE_JSON;
            v->json = val;
        } else {
            return -EBADMSG;
        }
    } else {
        v->type = CDP_VALUE_OTHER;
    }
    return 0;
}

/* Events. */

static int cdp_event_check(const struct cdp_msg *m, enum cdp_event a, enum cdp_event b)
{
    if (m->type != CDP_MSG_EVENT || (m->event != a && m->event != b))
        return -EINVAL;
    if (!m->params)
        return -EBADMSG;
    return 0;
}

/* A number member that must be there and finite. */
static int cdp_get_num(json_t *obj, const char *key, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return -EBADMSG;
    *out = json_number_value(v);
    return 0;
}

int cdp_event_lifecycle(const struct cdp_msg *m, struct cdp_lifecycle *lc)
{
    int rc = cdp_event_check(m, CDP_EVENT_LIFECYCLE, CDP_EVENT_LIFECYCLE);
    if (rc < 0)
        return rc;
    memset(lc, 0, sizeof(*lc));
    lc->frame_id = cdp_get_id(m->params, "frameId");
    lc->loader_id = cdp_get_id(m->params, "loaderId");
    lc->name = cdp_get_str(m->params, "name", 64);
    if (!lc->frame_id || !lc->loader_id || !lc->name || !*lc->name)
        return -EBADMSG;
    return cdp_get_num(m->params, "timestamp", &lc->timestamp);
}

int cdp_event_request(const struct cdp_msg *m, struct cdp_request *r)
{
    if (m->type != CDP_MSG_EVENT || (m->event != CDP_EVENT_REQUEST_WILL_BE_SENT &&
                                     m->event != CDP_EVENT_RESPONSE_RECEIVED &&
                                     m->event != CDP_EVENT_LOADING_FINISHED &&
                                     m->event != CDP_EVENT_LOADING_FAILED))
        return -EINVAL;
    if (!m->params)
        return -EBADMSG;
    memset(r, 0, sizeof(*r));
    r->request_id = cdp_get_id(m->params, "requestId");
    if (!r->request_id || cdp_get_num(m->params, "timestamp", &r->timestamp) < 0)
        return -EBADMSG;
    /* Optional members: wrong types are refused, absence is fine. */
    json_t *t = json_object_get(m->params, "type");
    r->type = cdp_get_str(m->params, "type", 64);
    json_t *f = json_object_get(m->params, "frameId");
    r->frame_id = cdp_get_id(m->params, "frameId");
    if ((t && !r->type) || (f && !r->frame_id))
        return -EBADMSG;
    if (m->event == CDP_EVENT_REQUEST_WILL_BE_SENT) {
        json_t *redirect = json_object_get(m->params, "redirectResponse");
        if (redirect && !json_is_object(redirect))
            return -EBADMSG;
        r->redirect = redirect != NULL;
        json_t *request = json_object_get(m->params, "request");
        if (request && !json_is_object(request))
            return -EBADMSG;
        if (request && json_object_get(request, "url")) {
            /* Chrome's URLs are at most 2 MiB, and a message 4 MiB */
            r->url = cdp_get_str(request, "url", CDP_MESSAGE_MAX);
            if (!r->url)
                return -EBADMSG;
        }
    } else if (m->event == CDP_EVENT_LOADING_FAILED) {
        r->error_text = cdp_get_str(m->params, "errorText", CDP_ARG_MAX);
        if (!r->error_text)
            return -EBADMSG;
        json_t *canceled = json_object_get(m->params, "canceled");
        if (canceled && !json_is_boolean(canceled))
            return -EBADMSG;
        r->canceled = json_is_true(canceled);
    }
    return 0;
}

/* A download's guid names its file in downloadPath (allowAndName): it must
 * not be able to name anything else. */
static int cdp_guid_ok(const char *g)
{
    if (!g || !*g)
        return 0;
    for (; *g; g++) {
        if (!((*g >= '0' && *g <= '9') || (*g >= 'a' && *g <= 'z') ||
              (*g >= 'A' && *g <= 'Z') || *g == '-'))
            return 0;
    }
    return 1;
}

int cdp_event_download(const struct cdp_msg *m, struct cdp_download *d)
{
    int rc = cdp_event_check(m, CDP_EVENT_DOWNLOAD_WILL_BEGIN, CDP_EVENT_DOWNLOAD_PROGRESS);
    if (rc < 0)
        return rc;
    memset(d, 0, sizeof(*d));
    d->guid = cdp_get_id(m->params, "guid");
    if (!cdp_guid_ok(d->guid))
        return -EBADMSG;
    if (m->event == CDP_EVENT_DOWNLOAD_WILL_BEGIN) {
        d->frame_id = cdp_get_id(m->params, "frameId");
        d->url = cdp_get_str(m->params, "url", CDP_ARG_MAX);
        d->suggested_filename = cdp_get_str(m->params, "suggestedFilename", CDP_ARG_MAX);
        if (!d->frame_id || !d->url || !d->suggested_filename)
            return -EBADMSG;
        return 0;
    }
    const char *state = cdp_get_str(m->params, "state", 32);
    if (!state)
        return -EBADMSG;
    if (strcmp(state, "inProgress") == 0)
        d->state = CDP_DOWNLOAD_IN_PROGRESS;
    else if (strcmp(state, "completed") == 0)
        d->state = CDP_DOWNLOAD_COMPLETED;
    else if (strcmp(state, "canceled") == 0)
        d->state = CDP_DOWNLOAD_CANCELED;
    else
        return -EBADMSG;
    if (cdp_get_num(m->params, "receivedBytes", &d->received) < 0 ||
        cdp_get_num(m->params, "totalBytes", &d->total) < 0 || d->received < 0 || d->total < 0)
        return -EBADMSG;
    return 0;
}

int cdp_event_paused(const struct cdp_msg *m, const char **request_id, const char **url, size_t *url_len)
{
    if (m->type != CDP_MSG_EVENT || m->event != CDP_EVENT_REQUEST_PAUSED)
        return -EINVAL;
    if (!m->params)
        return -EBADMSG;
    *request_id = cdp_get_id(m->params, "requestId");
    json_t *request = json_object_get(m->params, "request");
    json_t *u = json_object_get(request, "url");
    if (!*request_id || !json_is_object(request) || !json_is_string(u))
        return -EBADMSG;
    *url = json_string_value(u);
    *url_len = json_string_length(u);
    return 0;
}

/* An id of Chrome's in text: up to the closing quote, of id characters. */
static size_t cdp_stub_id(const char *s, size_t len, char *out)
{
    size_t n = 0;
    while (n < len && n < CDP_ID_MAX && s[n] != '"' &&
           ((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z') ||
            s[n] == '-' || s[n] == '.' || s[n] == '_')) {
        out[n] = s[n];
        n++;
    }
    if (n == 0 || n == len || s[n] != '"')
        return 0;
    out[n] = '\0';
    return n;
}

int cdp_paused_stub(const char *head, size_t head_len, const char *tail, size_t tail_len, struct buf *out)
{
    static const char start[] = "{\"method\":\"Fetch.requestPaused\",\"params\":{\"requestId\":\"";
    static const char key[] = "\"sessionId\":\"";
    char request_id[CDP_ID_MAX + 1], session[CDP_ID_MAX + 1];
    if (head_len < sizeof(start) - 1 || memcmp(head, start, sizeof(start) - 1) != 0 ||
        !cdp_stub_id(head + sizeof(start) - 1, head_len - (sizeof(start) - 1), request_id))
        return -EINVAL;
    const char *at = NULL;
    for (size_t i = 0; i + sizeof(key) - 1 <= tail_len; i++)
        if (memcmp(tail + i, key, sizeof(key) - 1) == 0)
            at = tail + i + sizeof(key) - 1;
    if (!at || !cdp_stub_id(at, (size_t)(tail + tail_len - at), session))
        return -EINVAL;
    json_t *msg = json_pack("{s:s, s:{s:s, s:{s:s}}, s:s}", "method", "Fetch.requestPaused", "params", "requestId",
                            request_id, "request", "url", "", "sessionId", session);
    if (!msg)
        return -EINVAL;
    int rc = json_dump_callback(msg, cdp_dump_cb, out, JSON_COMPACT) == 0 ? 0 : -EINVAL;
    json_decref(msg);
    return rc;
}

int cdp_event_websocket(const struct cdp_msg *m, const char **url, size_t *url_len)
{
    if (m->type != CDP_MSG_EVENT || m->event != CDP_EVENT_WEBSOCKET_CREATED)
        return -EINVAL;
    json_t *u = json_object_get(m->params, "url");
    if (!json_is_string(u))
        return -EBADMSG;
    *url = json_string_value(u);
    *url_len = json_string_length(u);
    return 0;
}

int cdp_event_target_type(const struct cdp_msg *m, const char **type)
{
    int rc = cdp_event_check(m, CDP_EVENT_ATTACHED_TO_TARGET, CDP_EVENT_ATTACHED_TO_TARGET);
    if (rc < 0)
        return rc;
    *type = cdp_get_str(json_object_get(m->params, "targetInfo"), "type", 64);
    return *type ? 0 : -EBADMSG;
}

int cdp_event_target(const struct cdp_msg *m, const char **session_id, const char **target_id)
{
    int rc = cdp_event_check(m, CDP_EVENT_ATTACHED_TO_TARGET, CDP_EVENT_DETACHED_FROM_TARGET);
    if (rc < 0)
        return rc;
    const char *s = cdp_get_id(m->params, "sessionId");
    if (!s)
        return -EBADMSG;
    const char *t;
    if (m->event == CDP_EVENT_ATTACHED_TO_TARGET) {
        json_t *info = json_object_get(m->params, "targetInfo");
        t = cdp_get_id(info, "targetId");
        if (!json_is_object(info) || !t)
            return -EBADMSG;
    } else {
        /* Deprecated in detachedFromTarget, so it may go away. */
        json_t *tv = json_object_get(m->params, "targetId");
        t = cdp_get_id(m->params, "targetId");
        if (tv && !t)
            return -EBADMSG;
    }
    *session_id = s;
    if (target_id)
        *target_id = t;
    return 0;
}

int cdp_event_inspector_detached(const struct cdp_msg *m, const char **reason)
{
    if (m->type != CDP_MSG_EVENT || m->event != CDP_EVENT_INSPECTOR_DETACHED)
        return -EINVAL;
    json_t *r = json_object_get(m->params, "reason");
    const char *s = cdp_get_str(m->params, "reason", CDP_ARG_MAX);
    if (r && !s)
        return -EBADMSG;
    *reason = s;
    return 0;
}

/* Base64. */

static int cdp_b64_char(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '+' || ch == '/';
}

int cdp_decode_base64(const char *in, size_t len, unsigned char **out, size_t *out_len)
{
    if (len > CDP_FRAME_MAX)
        return -EMSGSIZE;
    if (!in && len)
        return -EINVAL;
    /* libwebsockets' decoder skips characters it does not know, takes the
     * URL alphabet too and cuts silently when out is short: check the text
     * strictly first, so what it decodes is exactly what was sent. */
    if (len % 4)
        return -EINVAL;
    size_t pad = 0;
    if (len && in[len - 1] == '=')
        pad = len >= 2 && in[len - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < len - pad; i++) {
        if (!cdp_b64_char((unsigned char)in[i]))
            return -EINVAL;
    }
    size_t want = len / 4 * 3 - pad;
    /* Room for its last group of three and the NUL it writes. */
    unsigned char *p = xmalloc(want + 4);
    if (len == 0) {
        *out = p;
        *out_len = 0;
        return 0;
    }
    int n = lws_b64_decode_string_len(in, (int)len, (char *)p, (int)(want + 4));
    if (n < 0 || (size_t)n != want) {
        free(p);
        return -EINVAL;
    }
    *out = p;
    *out_len = want;
    return 0;
}
