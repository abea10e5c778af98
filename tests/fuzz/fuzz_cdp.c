/* libFuzzer target for what the renderer reads from a browser: the input is
 * one websocket text frame, parsed with cdp_msg_parse and then read with
 * every cdp_result_* and cdp_event_* extractor, as if it answered any
 * command; its head goes through cdp_frame_reply_id (as the websocket layer
 * asks it of a message that outgrows CDP_MESSAGE_MAX), and the input and
 * every screenshot's data through cdp_decode_base64. Beyond the sanitizers
 * (and libFuzzer's leak check, which covers cdp_msg_fini), it checks cdp.h's
 * promises: each code is one the header lists, every string handed out is a
 * string of the message itself, ids are 1..CDP_ID_MAX bytes, no extractor
 * keeps a reference, the id read from the head is the reply's own, the
 * base64 decoder gives exactly the bytes the text spells, and an id taken
 * from a reply can always be sent back in a command (whose own head and
 * reply size cdp_frame_reply_id and cdp_reply_max then read right). */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "cdp.h"
#include "ready.h"

#define FUZZ_NAME "fuzz_cdp"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every node of the parsed message, so a pointer can be traced to it. */
struct fuzz_nodes {
    json_t **v;
    size_t n, cap;
};

static void fuzz_collect(struct fuzz_nodes *ns, json_t *j)
{
    if (ns->n == ns->cap) {
        ns->cap = ns->cap ? 2 * ns->cap : 64;
        ns->v = realloc(ns->v, ns->cap * sizeof(*ns->v));
        if (!ns->v)
            abort();
    }
    ns->v[ns->n++] = j;
    const char *key;
    json_t *child;
    size_t i;
    if (json_is_object(j)) {
        json_object_foreach(j, key, child)
            fuzz_collect(ns, child);
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, child)
            fuzz_collect(ns, child);
    }
}

static int fuzz_is_node(const struct fuzz_nodes *ns, const json_t *j)
{
    for (size_t i = 0; i < ns->n; i++)
        if (ns->v[i] == j)
            return 1;
    return 0;
}

/* s is the value of one of the message's strings (not a copy, not a
 * pointer into the middle of one); returns its length. */
static size_t fuzz_msg_string(const struct fuzz_nodes *ns, const char *s)
{
    FUZZ_CHECK(s != NULL, NULL);
    for (size_t i = 0; i < ns->n; i++) {
        if (json_is_string(ns->v[i]) && json_string_value(ns->v[i]) == s) {
            FUZZ_CHECK(strlen(s) == json_string_length(ns->v[i]), s);
            return json_string_length(ns->v[i]);
        }
    }
    fuzz_fail("a string that is not the message's", s);
    return 0;
}

static void fuzz_check_id(const struct fuzz_nodes *ns, const char *id)
{
    size_t len = fuzz_msg_string(ns, id);
    FUZZ_CHECK(len >= 1 && len <= CDP_ID_MAX, id);
}

static void fuzz_check_opt_id(const struct fuzz_nodes *ns, const char *id)
{
    if (id)
        fuzz_check_id(ns, id);
}

static void fuzz_check_str(const struct fuzz_nodes *ns, const char *s, size_t max)
{
    FUZZ_CHECK(fuzz_msg_string(ns, s) <= max, s);
}

/* An id that came from a reply goes back to the browser in a command: it
 * must always be accepted and arrive unchanged. */
static void fuzz_send_back(const char *id, const char *field)
{
    struct cdp c;
    struct buf out;
    cdp_init(&c);
    buf_init(&out);
    int rc;
    if (strcmp(field, "browserContextId") == 0)
        rc = cdp_dispose_browser_context(&c, &out, id);
    else if (strcmp(field, "targetId") == 0)
        rc = cdp_close_target(&c, &out, id);
    else
        rc = cdp_page_enable(&c, &out, id);
    FUZZ_CHECK(rc == 1, id);
    FUZZ_CHECK(cdp_frame_reply_id(out.data, out.len) == rc, out.data);
    FUZZ_CHECK(cdp_reply_max(out.data, out.len) == CDP_MESSAGE_MAX, out.data);
    json_error_t err;
    json_t *cmd = json_loadb(out.data, out.len, JSON_REJECT_DUPLICATES, &err);
    FUZZ_CHECK(cmd != NULL, out.data);
    json_t *where = strcmp(field, "sessionId") == 0 ? cmd : json_object_get(cmd, "params");
    FUZZ_CHECK(json_is_string(json_object_get(where, field)) &&
                   strcmp(json_string_value(json_object_get(where, field)), id) == 0, out.data);
    json_decref(cmd);

    /* A capture's reply may be as large as a frame gets. */
    if (strcmp(field, "sessionId") == 0) {
        buf_reset(&out);
        rc = cdp_page_capture_screenshot(&c, &out, id, NULL);
        FUZZ_CHECK(rc == 2 && cdp_frame_reply_id(out.data, out.len) == 2, out.data);
        FUZZ_CHECK(cdp_reply_max(out.data, out.len) == CDP_FRAME_MAX, out.data);
    }
    buf_fini(&out);
}

/* The codes of a result extractor (cdp.h) before it looks at the result. */
static void fuzz_check_result_rc(const struct cdp_msg *m, int rc)
{
    if (m->type == CDP_MSG_ERROR)
        FUZZ_CHECK(rc == -EREMOTEIO, NULL);
    else if (m->type == CDP_MSG_EVENT)
        FUZZ_CHECK(rc == -EINVAL, NULL);
    else
        FUZZ_CHECK(rc == 0 || rc == -EBADMSG, NULL);
}

static void fuzz_check_event_rc(const struct cdp_msg *m, int rc, enum cdp_event a, enum cdp_event b,
                                enum cdp_event c)
{
    if (m->type != CDP_MSG_EVENT || (m->event != a && m->event != b && m->event != c))
        FUZZ_CHECK(rc == -EINVAL, NULL);
    else
        FUZZ_CHECK(rc == 0 || rc == -EBADMSG, NULL);
}

static int fuzz_b64_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

/* RFC 4648 base64, padded, standard alphabet, decoded by the book: the
 * reference cdp_decode_base64 must agree with. -1 for text that is not. */
static long fuzz_b64_reference(const char *in, size_t len, unsigned char *out)
{
    if (len % 4)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int last = i + 4 == len;
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            if (in[i + k] == '=' && last && k >= 2 && (k == 3 || in[i + 3] == '=')) {
                v[k] = 0;
                pad++;
                continue;
            }
            if ((v[k] = fuzz_b64_value((unsigned char)in[i + k])) < 0)
                return -1;
        }
        unsigned long bits = (unsigned long)v[0] << 18 | (unsigned long)v[1] << 12 | (unsigned long)v[2] << 6 |
                             (unsigned long)v[3];
        out[o++] = (unsigned char)(bits >> 16);
        if (pad < 2)
            out[o++] = (unsigned char)(bits >> 8);
        if (pad < 1)
            out[o++] = (unsigned char)bits;
    }
    return (long)o;
}

static void fuzz_check_base64(const char *in, size_t len)
{
    unsigned char *ref = malloc(len / 4 * 3 + 1);
    long want = fuzz_b64_reference(in, len, ref);
    unsigned char *out = NULL;
    size_t out_len = 0;
    int rc = cdp_decode_base64(in, len, &out, &out_len);
    if (want < 0) {
        FUZZ_CHECK(rc == -EINVAL, NULL);
    } else {
        FUZZ_CHECK(rc == 0 && out != NULL, NULL);
        FUZZ_CHECK(out_len == (size_t)want && memcmp(out, ref, out_len) == 0, NULL);
        free(out);
    }
    free(ref);
}

static void fuzz_check_results(const struct cdp_msg *m, const struct fuzz_nodes *ns)
{
    static const char *const id_fields[] = { "browserContextId", "targetId", "sessionId" };
    int (*const id_getters[])(const struct cdp_msg *, const char **) = {
        cdp_result_browser_context_id, cdp_result_target_id, cdp_result_session_id,
    };
    for (size_t i = 0; i < 3; i++) {
        const char *id = NULL;
        int rc = id_getters[i](m, &id);
        fuzz_check_result_rc(m, rc);
        if (rc == 0) {
            fuzz_check_id(ns, id);
            fuzz_send_back(id, id_fields[i]);
        }
    }

    const char *product;
    int rc = cdp_result_product(m, &product);
    fuzz_check_result_rc(m, rc);
    if (rc == 0) {
        size_t len = fuzz_msg_string(ns, product);
        FUZZ_CHECK(len >= 1 && len <= CDP_PRODUCT_MAX, product);
        for (const char *s = product; *s; s++)
            FUZZ_CHECK(*s >= 0x20 && *s <= 0x7e && *s != '"' && *s != '\\', product);
    }

    const char *b64;
    size_t b64_len;
    rc = cdp_result_data(m, &b64, &b64_len);
    if (rc != -ENODATA)
        fuzz_check_result_rc(m, rc);
    else
        FUZZ_CHECK(m->type == CDP_MSG_RESULT, NULL);
    if (rc == 0) {
        FUZZ_CHECK(fuzz_msg_string(ns, b64) == b64_len && b64_len > 0, b64);
        fuzz_check_base64(b64, b64_len);
    }

    double w, h;
    rc = cdp_result_content_size(m, &w, &h);
    fuzz_check_result_rc(m, rc);
    if (rc == 0)
        FUZZ_CHECK(isfinite(w) && isfinite(h) && w >= 0 && h >= 0, NULL);

    const char *frame, *loader, *error_text;
    rc = cdp_result_navigate(m, &frame, &loader, &error_text);
    fuzz_check_result_rc(m, rc);
    if (rc == 0) {
        fuzz_check_id(ns, frame);
        fuzz_check_opt_id(ns, loader);
        if (error_text)
            FUZZ_CHECK(error_text[0] && fuzz_msg_string(ns, error_text) <= CDP_ARG_MAX, error_text);
    }
    FUZZ_CHECK(cdp_result_navigate(m, &frame, NULL, NULL) == rc, NULL);

    int download = cdp_result_is_download(m);
    FUZZ_CHECK(download == 0 || (download == 1 && m->type == CDP_MSG_RESULT), NULL);

    struct cdp_value v;
    rc = cdp_result_evaluate(m, &v);
    if (rc == -ENOEXEC) {
        FUZZ_CHECK(m->type == CDP_MSG_RESULT && v.type == CDP_VALUE_UNDEFINED && v.exception, NULL);
        if (strcmp(v.exception, "exception without text") != 0)
            fuzz_check_str(ns, v.exception, CDP_ARG_MAX);
    } else {
        fuzz_check_result_rc(m, rc);
        FUZZ_CHECK(v.exception == NULL, v.exception);
    }
    if (rc == 0) {
        FUZZ_CHECK(v.type >= CDP_VALUE_UNDEFINED && v.type <= CDP_VALUE_OTHER, NULL);
        if (v.type == CDP_VALUE_STRING)
            FUZZ_CHECK(fuzz_msg_string(ns, v.string) == v.len, v.string);
        if (v.type == CDP_VALUE_BOOLEAN)
            FUZZ_CHECK(v.boolean == 0 || v.boolean == 1, NULL);
        if (v.type == CDP_VALUE_JSON)
            FUZZ_CHECK(fuzz_is_node(ns, v.json) && (json_is_object(v.json) || json_is_array(v.json)), NULL);
        else
            FUZZ_CHECK(v.json == NULL, NULL);
    }

    /* The readiness probe's answer (ready.c): only what the probe returns. */
    struct ready_page p;
    int rr = ready_parse(m, &p);
    FUZZ_CHECK(rr == rc || (rc == 0 && rr == -EBADMSG), NULL);
    if (rr == 0) {
        FUZZ_CHECK(v.type == CDP_VALUE_JSON && (p.ready == 0 || p.ready == 1), NULL);
        FUZZ_CHECK(p.kind >= READY_KIND_NONE && p.kind <= READY_KIND_BINDING, NULL);
        FUZZ_CHECK(p.rule >= -1 && p.rule < NAMES_RULE_COUNT && (p.ready || p.rule >= 0), NULL);
        FUZZ_CHECK(p.waited_ms >= 0 && p.waited_ms <= 86400000.0, NULL);
        for (int i = 0; i < NAMES_RULE_COUNT; i++)
            FUZZ_CHECK(p.blocked_ms[i] >= 0 && p.blocked_ms[i] <= 86400000.0, NULL);
    }
}

static void fuzz_check_events(const struct cdp_msg *m, const struct fuzz_nodes *ns)
{
    struct cdp_lifecycle lc;
    int rc = cdp_event_lifecycle(m, &lc);
    fuzz_check_event_rc(m, rc, CDP_EVENT_LIFECYCLE, CDP_EVENT_LIFECYCLE, CDP_EVENT_LIFECYCLE);
    if (rc == 0) {
        fuzz_check_id(ns, lc.frame_id);
        fuzz_check_id(ns, lc.loader_id);
        FUZZ_CHECK(lc.name[0] && fuzz_msg_string(ns, lc.name) <= 64, lc.name);
        FUZZ_CHECK(isfinite(lc.timestamp), NULL);
    }

    struct cdp_request req;
    rc = cdp_event_request(m, &req);
    if (m->type == CDP_MSG_EVENT && m->event == CDP_EVENT_RESPONSE_RECEIVED)
        FUZZ_CHECK(rc == 0 || rc == -EBADMSG, NULL);
    else
        fuzz_check_event_rc(m, rc, CDP_EVENT_REQUEST_WILL_BE_SENT, CDP_EVENT_LOADING_FINISHED,
                            CDP_EVENT_LOADING_FAILED);
    if (rc == 0) {
        fuzz_check_id(ns, req.request_id);
        if (req.type)
            fuzz_check_str(ns, req.type, 64);
        fuzz_check_opt_id(ns, req.frame_id);
        if (req.url)
            fuzz_check_str(ns, req.url, CDP_MESSAGE_MAX);
        FUZZ_CHECK(req.url == NULL || m->event == CDP_EVENT_REQUEST_WILL_BE_SENT, NULL);
        FUZZ_CHECK(isfinite(req.timestamp), NULL);
        FUZZ_CHECK(req.redirect == 0 || (req.redirect == 1 && m->event == CDP_EVENT_REQUEST_WILL_BE_SENT), NULL);
        FUZZ_CHECK(req.canceled == 0 || (req.canceled == 1 && m->event == CDP_EVENT_LOADING_FAILED), NULL);
        if (m->event == CDP_EVENT_LOADING_FAILED)
            fuzz_check_str(ns, req.error_text, CDP_ARG_MAX);
        else
            FUZZ_CHECK(req.error_text == NULL, NULL);
        if (req.blocked_reason)
            FUZZ_CHECK(m->event == CDP_EVENT_LOADING_FAILED && fuzz_msg_string(ns, req.blocked_reason) <= 64, NULL);
        if (req.cors_error)
            FUZZ_CHECK(m->event == CDP_EVENT_LOADING_FAILED && fuzz_msg_string(ns, req.cors_error) <= 64, NULL);
    }

    /* the page's messages: the text never past the bound, whatever the
     * page wrote; nothing half-written on a refusal */
    struct cdp_page_message pm;
    struct buf text;
    buf_init(&text);
    buf_append(&text, "x", 1);
    int cut = -1;
    rc = cdp_event_page_message(m, &pm, &text, 40, &cut);
    fuzz_check_event_rc(m, rc, CDP_EVENT_CONSOLE_API_CALLED, CDP_EVENT_EXCEPTION_THROWN, CDP_EVENT_LOG_ENTRY_ADDED);
    if (rc == 0) {
        FUZZ_CHECK(text.len <= 41 && (cut == 0 || cut == 1), NULL);
        FUZZ_CHECK(pm.source && pm.level && pm.line >= 0, NULL);
        if (pm.url)
            fuzz_check_str(ns, pm.url, CDP_MESSAGE_MAX);
    } else {
        FUZZ_CHECK(text.len == 1, NULL);
    }
    buf_fini(&text);

    struct cdp_response resp;
    rc = cdp_event_response(m, &resp);
    fuzz_check_event_rc(m, rc, CDP_EVENT_RESPONSE_RECEIVED, CDP_EVENT_RESPONSE_RECEIVED,
                        CDP_EVENT_RESPONSE_RECEIVED);
    if (rc == 0) {
        fuzz_check_id(ns, resp.request_id);
        fuzz_check_str(ns, resp.url, CDP_MESSAGE_MAX);
        FUZZ_CHECK(resp.status >= 0 && resp.status <= 999, NULL);
    }

    struct cdp_download d;
    rc = cdp_event_download(m, &d);
    fuzz_check_event_rc(m, rc, CDP_EVENT_DOWNLOAD_WILL_BEGIN, CDP_EVENT_DOWNLOAD_PROGRESS,
                        CDP_EVENT_DOWNLOAD_PROGRESS);
    if (rc == 0) {
        fuzz_check_id(ns, d.guid);
        for (const char *s = d.guid; *s; s++)
            FUZZ_CHECK((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                           *s == '-', d.guid);
        if (m->event == CDP_EVENT_DOWNLOAD_WILL_BEGIN) {
            fuzz_check_id(ns, d.frame_id);
            fuzz_check_str(ns, d.url, CDP_ARG_MAX);
            fuzz_check_str(ns, d.suggested_filename, CDP_ARG_MAX);
        } else {
            FUZZ_CHECK(d.state == CDP_DOWNLOAD_IN_PROGRESS || d.state == CDP_DOWNLOAD_COMPLETED ||
                           d.state == CDP_DOWNLOAD_CANCELED, NULL);
            FUZZ_CHECK(isfinite(d.received) && isfinite(d.total) && d.received >= 0 && d.total >= 0, NULL);
        }
    }

    const char *session = NULL, *target = NULL;
    rc = cdp_event_target(m, &session, &target);
    fuzz_check_event_rc(m, rc, CDP_EVENT_ATTACHED_TO_TARGET, CDP_EVENT_DETACHED_FROM_TARGET,
                        CDP_EVENT_DETACHED_FROM_TARGET);
    if (rc == 0) {
        fuzz_check_id(ns, session);
        fuzz_send_back(session, "sessionId");
        if (m->event == CDP_EVENT_ATTACHED_TO_TARGET)
            fuzz_check_id(ns, target);
        else
            fuzz_check_opt_id(ns, target);
    }
    FUZZ_CHECK(cdp_event_target(m, &session, NULL) == rc, NULL);

    const char *reason = NULL;
    rc = cdp_event_inspector_detached(m, &reason);
    fuzz_check_event_rc(m, rc, CDP_EVENT_INSPECTOR_DETACHED, CDP_EVENT_INSPECTOR_DETACHED,
                        CDP_EVENT_INSPECTOR_DETACHED);
    if (rc == 0 && reason)
        fuzz_check_str(ns, reason, CDP_ARG_MAX);

    const char *lost = cdp_msg_lost_session(m);
    if (lost) {
        FUZZ_CHECK(m->type == CDP_MSG_EVENT, lost);
        fuzz_check_id(ns, lost);
    }
}

static void fuzz_check_msg(const struct cdp_msg *m)
{
    FUZZ_CHECK(json_is_object(m->root), NULL);
    struct fuzz_nodes ns = { NULL, 0, 0 };
    fuzz_collect(&ns, m->root);

    fuzz_check_opt_id(&ns, m->session);
    switch (m->type) {
    case CDP_MSG_RESULT:
        FUZZ_CHECK(m->id >= 1 && json_is_object(m->result) && fuzz_is_node(&ns, m->result), NULL);
        break;
    case CDP_MSG_ERROR:
        FUZZ_CHECK(m->id >= 1 && !m->result, NULL);
        fuzz_check_str(&ns, m->error_message, CDP_ARG_MAX);
        if (m->error_data)
            fuzz_check_str(&ns, m->error_data, CDP_ARG_MAX);
        break;
    case CDP_MSG_EVENT: {
        size_t len = fuzz_msg_string(&ns, m->method);
        FUZZ_CHECK(len >= 1 && len <= CDP_METHOD_MAX, m->method);
        FUZZ_CHECK(!m->params || (json_is_object(m->params) && fuzz_is_node(&ns, m->params)), NULL);
        FUZZ_CHECK(m->event >= CDP_EVENT_OTHER && m->event <= CDP_EVENT_LOG_ENTRY_ADDED, NULL);
        break;
    }
    default:
        fuzz_fail("unknown message type", NULL);
    }

    fuzz_check_results(m, &ns);
    fuzz_check_events(m, &ns);
    /* Borrowed, all of it: nothing took a reference of its own. */
    FUZZ_CHECK(m->root->refcount == 1, NULL);
    free(ns.v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The head as the websocket layer has it: 24 bytes ("24 are enough"),
     * in a buffer of its own so a read past them is caught; then the whole
     * frame, which must give the same id. */
    size_t head_len = size < 24 ? size : 24;
    char *head = malloc(head_len ? head_len : 1);
    memcpy(head, data, head_len);
    int head_id = cdp_frame_reply_id(head, head_len);
    free(head);
    int reply_id = cdp_frame_reply_id((const char *)data, size);
    FUZZ_CHECK(reply_id >= 0 && head_id == reply_id, NULL);
    size_t max = cdp_reply_max((const char *)data, size);
    FUZZ_CHECK(max == CDP_MESSAGE_MAX || max == CDP_FRAME_MAX, NULL);

    struct cdp_msg m;
    int rc = cdp_msg_parse(&m, (const char *)data, size);
    if (rc == 0) {
        FUZZ_CHECK(m.why == NULL, m.why);
        fuzz_check_msg(&m);
        if (reply_id)
            FUZZ_CHECK(m.type != CDP_MSG_EVENT && m.id == reply_id, NULL);
    } else {
        FUZZ_CHECK(rc == -EBADMSG || rc == -EMSGSIZE, NULL);
        FUZZ_CHECK(m.root == NULL && m.why != NULL, NULL);
    }
    cdp_msg_fini(&m);
    FUZZ_CHECK(m.root == NULL, NULL);
    cdp_msg_fini(&m); /* harmless twice */

    /* Any text, as a screenshot's data would be. */
    fuzz_check_base64((const char *)data, size);
    return 0;
}
