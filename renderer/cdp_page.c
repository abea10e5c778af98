/* What a page says about itself, for its log (renderer/pagelog.c): console
 * calls, uncaught exceptions, the browser's log entries and the responses
 * of its requests, each checked before anything reads it. The page writes
 * these texts, so they are read by length and cut at the caller's bound,
 * never copied whole. Pure functions, run on the browser thread. */
#include "cdp.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cdp_int.h"

/* Append at most what is left of max; 1 when s did not fit. */
static int cdp_page_put(struct buf *text, size_t start, size_t max, const char *s, size_t n)
{
    size_t used = text->len - start, room = used < max ? max - used : 0;
    buf_append(text, s, n < room ? n : room);
    return n > room;
}

/* A line number the page reported (0-based), as 1-based; 0 when absent. */
static int cdp_page_line(json_t *obj)
{
    /* numbers arrive as reals (cdp_msg_parse decodes them so) */
    json_t *v = json_object_get(obj, "lineNumber");
    double n = json_is_number(v) ? json_number_value(v) : -1;
    if (!(n >= 0 && n < 1e9) || n != (double)(int)n)
        return 0;
    return (int)n + 1;
}

/* The text of one of a console call's arguments (a RemoteObject): a string
 * as it is, a number or boolean by its value, anything else by its
 * description, or its type when it has none. */
static int cdp_page_arg(json_t *arg, struct buf *text, size_t start, size_t max)
{
    if (!json_is_object(arg))
        return 0;
    json_t *value = json_object_get(arg, "value");
    if (json_is_string(value))
        return cdp_page_put(text, start, max, json_string_value(value), json_string_length(value));
    json_t *desc = json_object_get(arg, "description");
    if (!json_is_string(desc))
        desc = json_object_get(arg, "unserializableValue");
    if (json_is_string(desc))
        return cdp_page_put(text, start, max, json_string_value(desc), json_string_length(desc));
    if (json_is_boolean(value) || json_is_number(value) || json_is_null(value)) {
        char num[64];
        if (json_is_number(value))
            snprintf(num, sizeof(num), "%.17g", json_number_value(value));
        else
            snprintf(num, sizeof(num), "%s", json_is_null(value) ? "null" : json_is_true(value) ? "true" : "false");
        return cdp_page_put(text, start, max, num, strlen(num));
    }
    json_t *type = json_object_get(arg, "type");
    if (json_is_string(type))
        return cdp_page_put(text, start, max, json_string_value(type), json_string_length(type));
    return 0;
}

/* The first frame of a stack trace: where a console call was made. */
static void cdp_page_where(json_t *stack, struct cdp_page_message *pm)
{
    json_t *frames = json_is_object(stack) ? json_object_get(stack, "callFrames") : NULL;
    json_t *top = json_is_array(frames) ? json_array_get(frames, 0) : NULL;
    if (!json_is_object(top))
        return;
    pm->url = cdp_get_str(top, "url", CDP_MESSAGE_MAX);
    if (pm->url && !*pm->url)
        pm->url = NULL;
    pm->line = cdp_page_line(top);
}

static int cdp_page_console(const struct cdp_msg *m, struct cdp_page_message *pm, struct buf *text, size_t max,
                            int *cut)
{
    size_t start = text->len;
    pm->source = "console";
    pm->level = cdp_get_str(m->params, "type", 64);
    json_t *args = json_object_get(m->params, "args");
    if (!pm->level || !json_is_array(args))
        return -EBADMSG;
    size_t i;
    json_t *arg;
    json_array_foreach(args, i, arg) {
        if (i > 0)
            *cut |= cdp_page_put(text, start, max, " ", 1);
        *cut |= cdp_page_arg(arg, text, start, max);
    }
    cdp_page_where(json_object_get(m->params, "stackTrace"), pm);
    return 0;
}

static int cdp_page_exception(const struct cdp_msg *m, struct cdp_page_message *pm, struct buf *text, size_t max,
                              int *cut)
{
    size_t start = text->len;
    json_t *d = json_object_get(m->params, "exceptionDetails");
    if (!json_is_object(d))
        return -EBADMSG;
    pm->source = "exception";
    pm->level = "error";
    json_t *t = json_object_get(d, "text");
    if (!json_is_string(t))
        return -EBADMSG;
    *cut |= cdp_page_put(text, start, max, json_string_value(t), json_string_length(t));
    /* "Uncaught" and then what was thrown: its description's first line
     * ("Error: boom"; the stack follows it) */
    json_t *ex = json_object_get(d, "exception");
    json_t *desc = json_is_object(ex) ? json_object_get(ex, "description") : NULL;
    if (!json_is_string(desc) && json_is_object(ex))
        desc = json_object_get(ex, "value");
    if (json_is_string(desc)) {
        const char *s = json_string_value(desc);
        size_t n = strcspn(s, "\n");
        *cut |= cdp_page_put(text, start, max, " ", 1);
        *cut |= cdp_page_put(text, start, max, s, n);
    }
    pm->url = cdp_get_str(d, "url", CDP_MESSAGE_MAX);
    if (pm->url && !*pm->url)
        pm->url = NULL;
    pm->line = cdp_page_line(d);
    if (!pm->url)
        cdp_page_where(json_object_get(d, "stackTrace"), pm);
    return 0;
}

static int cdp_page_log_entry(const struct cdp_msg *m, struct cdp_page_message *pm, struct buf *text, size_t max,
                              int *cut)
{
    json_t *e = json_object_get(m->params, "entry");
    if (!json_is_object(e))
        return -EBADMSG;
    pm->source = cdp_get_str(e, "source", 64);
    pm->level = cdp_get_str(e, "level", 64);
    json_t *t = json_object_get(e, "text");
    if (!pm->source || !pm->level || !json_is_string(t))
        return -EBADMSG;
    *cut |= cdp_page_put(text, text->len, max, json_string_value(t), json_string_length(t));
    pm->url = cdp_get_str(e, "url", CDP_MESSAGE_MAX);
    if (pm->url && !*pm->url)
        pm->url = NULL;
    pm->line = cdp_page_line(e);
    return 0;
}

int cdp_event_page_message(const struct cdp_msg *m, struct cdp_page_message *pm, struct buf *text, size_t max,
                           int *cut)
{
    if (m->type != CDP_MSG_EVENT)
        return -EINVAL;
    memset(pm, 0, sizeof(*pm));
    *cut = 0;
    size_t start = text->len;
    int rc;
    switch (m->event) {
    case CDP_EVENT_CONSOLE_API_CALLED:
        rc = m->params ? cdp_page_console(m, pm, text, max, cut) : -EBADMSG;
        break;
    case CDP_EVENT_EXCEPTION_THROWN:
        rc = m->params ? cdp_page_exception(m, pm, text, max, cut) : -EBADMSG;
        break;
    case CDP_EVENT_LOG_ENTRY_ADDED:
        rc = m->params ? cdp_page_log_entry(m, pm, text, max, cut) : -EBADMSG;
        break;
    default:
        return -EINVAL;
    }
    if (rc < 0) {
        text->len = start; /* nothing half-written */
        if (text->data)
            text->data[start] = '\0';
    }
    return rc;
}

int cdp_event_response(const struct cdp_msg *m, struct cdp_response *r)
{
    if (m->type != CDP_MSG_EVENT || m->event != CDP_EVENT_RESPONSE_RECEIVED)
        return -EINVAL;
    if (!m->params)
        return -EBADMSG;
    memset(r, 0, sizeof(*r));
    r->request_id = cdp_get_id(m->params, "requestId");
    json_t *t = json_object_get(m->params, "type");
    r->type = cdp_get_str(m->params, "type", 64);
    json_t *resp = json_object_get(m->params, "response");
    if (!r->request_id || (t && !r->type) || !json_is_object(resp))
        return -EBADMSG;
    r->url = cdp_get_str(resp, "url", CDP_MESSAGE_MAX);
    json_t *status = json_object_get(resp, "status");
    if (!r->url || !json_is_number(status) || !isfinite(json_number_value(status)))
        return -EBADMSG;
    double s = json_number_value(status);
    r->status = s >= 0 && s <= 999 ? (int)s : 0;
    return 0;
}
