/* CDP messages without I/O. Building goes through jansson so every string we
 * pass on (URLs, headers from the client) is escaped and checked for UTF-8;
 * parsing checks each field's presence, type and size before the renderer
 * sees it, because a browser under memory pressure or a crashed page can send
 * anything. This file owns the builders: one command's text appended to
 * the caller's buf, and the connection's id counter (struct cdp, the
 * caller's). Pure functions, run on the browser thread; they allocate only
 * inside the call. */
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

#include "cdp_int.h"

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

int cdp_id_ok(const char *s)
{
    return cdp_arg_ok(s, CDP_ID_MAX);
}

int cdp_dump_cb(const char *data, size_t len, void *arg)
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

int cdp_log_enable(struct cdp *c, struct buf *out, const char *session)
{
    return cdp_session_command(c, out, session, "Log.enable", NULL);
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

int cdp_fetch_continue_headers(struct cdp *c, struct buf *out, const char *session, const char *request_id,
                               json_t *request_headers, const char *const *add)
{
    if (!cdp_id_ok(request_id) || !add || !add[0])
        return -EINVAL;
    json_t *list = json_array();
    if (!list)
        return -EINVAL;
    const char *name;
    json_t *value;
    /* The request's own headers, but for those replaced. */
    json_object_foreach(request_headers, name, value) {
        int replaced = 0;
        for (size_t i = 0; add[i] && !replaced; i += 2)
            replaced = strcasecmp(name, add[i]) == 0;
        if (replaced || !json_is_string(value))
            continue;
        if (json_array_append_new(list, json_pack("{s:s, s:O}", "name", name, "value", value)) < 0) {
            json_decref(list);
            return -EINVAL;
        }
    }
    for (size_t i = 0; add[i]; i += 2) {
        if (!cdp_arg_ok(add[i], CDP_ARG_MAX) || !cdp_arg_ok(add[i + 1], CDP_ARG_MAX) ||
            json_array_append_new(list, json_pack("{s:s, s:s}", "name", add[i], "value", add[i + 1])) < 0) {
            json_decref(list);
            return -EINVAL;
        }
    }
    json_t *params = json_pack("{s:s, s:o}", "requestId", request_id, "headers", list);
    if (!params)
        return -EINVAL; /* list is gone with it */
    return cdp_session_command(c, out, session, "Fetch.continueRequest", params);
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
