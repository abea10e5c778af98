/* What the replies say: the checked fields of each command's result
 * (ids, lists, version, content size, navigation, an evaluation's value)
 * and the base64 of a screenshot or PDF decoded. Pure functions, run on the
 * browser thread. Memory: strings returned are borrowed from the cdp_msg
 * and live until cdp_msg_fini; cdp_decode_base64's bytes are xmalloc'd for
 * the caller to free. */
#include "cdp.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "xalloc.h"

#include "cdp_int.h"

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
