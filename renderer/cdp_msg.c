/* Reading a frame from the browser: cdp_msg_parse checks that it is a
 * well-formed reply or event and names the events the renderer acts on;
 * the size a reply may have, and the id at the head of one being gathered;
 * the member getters the result and event extractors share. Pure
 * functions, run on the browser thread. Memory: a parsed cdp_msg owns its
 * jansson tree (root) until cdp_msg_fini; every pointer in it is borrowed
 * from that tree. */
#include "cdp.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "cdp_int.h"

#define CDP_EVENT_METHOD(id, method) [id] = method,
static const char *const cdp_event_methods[] = { CDP_EVENTS(CDP_EVENT_METHOD) };

/* The download events, sent on the page's own session as Page.* (what a
 * render listens to), are the same events. */
static const struct {
    const char *method;
    enum cdp_event event;
} cdp_event_aliases[] = {
    { "Page.downloadWillBegin", CDP_EVENT_DOWNLOAD_WILL_BEGIN },
    { "Page.downloadProgress", CDP_EVENT_DOWNLOAD_PROGRESS },
};

/* A string member no longer than max; NULL when absent or wrong. Strings
 * from jansson hold no NUL (JSON_ALLOW_NUL is not given), so C-string use is safe. */
const char *cdp_get_str(json_t *obj, const char *key, size_t max)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v) || json_string_length(v) > max)
        return NULL;
    return json_string_value(v);
}

/* A non-empty id-like member. */
const char *cdp_get_id(json_t *obj, const char *key)
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
    for (size_t i = 1; i < sizeof(cdp_event_methods) / sizeof(cdp_event_methods[0]); i++) {
        if (strcmp(m->method, cdp_event_methods[i]) == 0) {
            m->event = (enum cdp_event)i;
            return 0;
        }
    }
    for (size_t i = 0; i < sizeof(cdp_event_aliases) / sizeof(cdp_event_aliases[0]); i++) {
        if (strcmp(m->method, cdp_event_aliases[i].method) == 0) {
            m->event = cdp_event_aliases[i].event;
            return 0;
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
