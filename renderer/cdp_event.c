/* What the events say: the checked fields of the events the renderer acts
 * on (lifecycle, network requests, downloads, targets, paused requests,
 * websockets), and the stand-in for a request's event too large to keep.
 * Pure functions, run on the browser thread. Memory: strings returned are
 * borrowed from the cdp_msg and live until cdp_msg_fini; cdp_event_stub
 * writes into the caller's buf. */
#include "cdp.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "cdp_int.h"

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
        json_t *blocked = json_object_get(m->params, "blockedReason");
        r->blocked_reason = cdp_get_str(m->params, "blockedReason", 64);
        if (blocked && !r->blocked_reason)
            return -EBADMSG;
        json_t *cors = json_object_get(m->params, "corsErrorStatus");
        if (cors && !json_is_object(cors))
            return -EBADMSG;
        r->cors_error = cors ? cdp_get_str(cors, "corsError", 64) : NULL;
        if (cors && json_object_get(cors, "corsError") && !r->cors_error)
            return -EBADMSG;
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

/* The events a stand-in is made for. Chrome begins each with its method,
 * then params with requestId first. */
static const char *const cdp_stub_methods[] = { "Fetch.requestPaused", "Network.requestWillBeSent" };

/* Which of them head begins as, its requestId copied to id; NULL for none. */
static const char *cdp_stub_method(const char *head, size_t len, char *id)
{
    static const char open[] = "{\"method\":\"", params[] = "\",\"params\":{\"requestId\":\"";
    if (len < sizeof(open) - 1 || memcmp(head, open, sizeof(open) - 1) != 0)
        return NULL;
    head += sizeof(open) - 1;
    len -= sizeof(open) - 1;
    for (size_t i = 0; i < sizeof(cdp_stub_methods) / sizeof(cdp_stub_methods[0]); i++) {
        size_t m = strlen(cdp_stub_methods[i]), start = m + sizeof(params) - 1;
        if (len >= start && memcmp(head, cdp_stub_methods[i], m) == 0 &&
            memcmp(head + m, params, sizeof(params) - 1) == 0 && cdp_stub_id(head + start, len - start, id))
            return cdp_stub_methods[i];
    }
    return NULL;
}

int cdp_event_stub(const char *head, size_t head_len, const char *tail, size_t tail_len, struct buf *out)
{
    static const char key[] = "\"sessionId\":\"";
    char request_id[CDP_ID_MAX + 1], session[CDP_ID_MAX + 1];
    const char *method = cdp_stub_method(head, head_len, request_id);
    if (!method)
        return -EINVAL;
    const char *at = NULL;
    for (size_t i = 0; i + sizeof(key) - 1 <= tail_len; i++)
        if (memcmp(tail + i, key, sizeof(key) - 1) == 0)
            at = tail + i + sizeof(key) - 1;
    if (!at || !cdp_stub_id(at, (size_t)(tail + tail_len - at), session))
        return -EINVAL;
    /* The URL is left empty: the matcher refuses it as malformed, and
     * readiness takes the request as another host's (bounded in time).
     * cdp_event_request wants a timestamp; its value is not known, and
     * nothing reads it: 0. */
    json_t *msg = json_pack("{s:s, s:{s:s, s:i, s:{s:s}}, s:s}", "method", method, "params", "requestId",
                            request_id, "timestamp", 0, "request", "url", "", "sessionId", session);
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
