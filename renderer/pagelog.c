/* The page's own log: what its console, its scripts and the browser said
 * about it, and which of its requests failed, one line each, tied to the
 * render by its id. The domains it needs (Runtime, Log) are enabled only
 * when page logs are on; Network is the render's already. Every text the
 * page wrote goes through pagetext_clean (the render key redacted, cut),
 * every URL through pagetext_url (host and path). Runs on the browser
 * thread. */
#include "pagelog.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rsm.h"
#include "xalloc.h"

/* How much of a page's message is read before it is cleaned: room for
 * render keys to be redacted ahead of the text that is kept. */
#define PAGELOG_READ_MAX 4096
/* The longest URL kept for a request's failure (a longer one is logged by
 * its start only). */
#define PAGELOG_URL_KEEP 2048

static atomic_int pagelog_log_page, pagelog_debug;

void pagelog_configure(int log_page, int debug)
{
    atomic_store(&pagelog_log_page, log_page != 0);
    atomic_store(&pagelog_debug, debug != 0);
}

int pagelog_wanted(void)
{
    return atomic_load(&pagelog_log_page) || atomic_load(&pagelog_debug);
}

/* info when asked for by log_page, debug when only the level says so. */
static enum config_log_level pagelog_level(void)
{
    return atomic_load(&pagelog_log_page) ? CONFIG_LOG_INFO : CONFIG_LOG_DEBUG;
}

void pagelog_init(struct pagelog *pl, struct browser *b)
{
    memset(pl, 0, sizeof(*pl));
    pl->b = b;
}

void pagelog_fini(struct pagelog *pl)
{
    if (pl->reqs) {
        for (unsigned i = 0; i < PAGELOG_REQUESTS; i++) {
            free(pl->reqs[i].id);
            free(pl->reqs[i].url);
        }
        free(pl->reqs);
        pl->reqs = NULL;
    }
}

static void pagelog_ignore_reply(void *arg, int id, const struct cdp_msg *m, int err)
{
    (void)arg;
    (void)id;
    (void)m;
    (void)err;
}

/* Logging begins once both the page's domains are enabled and a request
 * has it (in either order: a spare is attached before it is claimed). */
static void pagelog_switch_on(struct pagelog *pl)
{
    if (pl->on || !pl->enabled || !pl->claimed || pl->counted)
        return;
    pl->on = 1;
    pl->counted = 1;
    if (!pl->reqs)
        pl->reqs = xcalloc(PAGELOG_REQUESTS, sizeof(*pl->reqs));
}

void pagelog_attached(struct pagelog *pl, const char *session)
{
    if (pl->enabled || !pagelog_wanted())
        return;
    pl->enabled = 1;
    struct cdp *c = browser_cdp(pl->b);
    for (int k = 0; k < 2; k++) {
        struct buf b;
        browser_cmd_init(&b);
        int id = k == 0 ? cdp_runtime_enable(c, &b, session) : cdp_log_enable(c, &b, session);
        if (id < 0 || browser_submit(pl->b, &b, id, RSM_CMD_TIMEOUT_MS, pagelog_ignore_reply, pl) < 0)
            buf_fini(&b);
    }
    pagelog_switch_on(pl);
}

/* Also when page logs are off: intercept.c's line names the render too. */
void pagelog_begin(struct pagelog *pl, const struct render_request *req)
{
    if (!req || pl->claimed)
        return;
    pl->claimed = 1;
    pl->render_id = req->id;
    pl->key = req->render_key && req->render_key[0] ? req->render_key : NULL;
    char path[2];
    pagetext_url(req->url, pl->key, pl->url_host, sizeof(pl->url_host), path, sizeof(path), 0);
    pagelog_switch_on(pl);
}

/* A name Chromium gives (a type, a source, a reason): letters, digits, '-'
 * and '_' only, so it is one bare log value. */
static void pagelog_word(char *out, size_t size, const char *s)
{
    size_t k = 0;
    for (; s && *s && k + 1 < size; s++) {
        char c = *s;
        out[k++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'
                       ? c
                       : '?';
    }
    if (k == 0 && size > 1)
        out[k++] = '-';
    out[k] = '\0';
}

/* One more line, or one more left out: 1 when it may be written. */
static int pagelog_room(struct pagelog *pl)
{
    if (pl->logged < PAGELOG_ENTRIES_MAX) {
        pl->logged++;
        return 1;
    }
    pl->more++;
    return 0;
}

/* ---- the page's messages ---------------------------------------------------------------- */

/* Errors and warnings; not the browser's "Failed to load resource" for
 * each failed request, which its request line says already. */
static int pagelog_message_wanted(const struct cdp_page_message *pm, const char *text, int *error)
{
    const char *l = pm->level;
    *error = 0;
    if (strcmp(pm->source, "network") == 0 && strncmp(text, "Failed to load resource", 23) == 0)
        return 0;
    *error = strcmp(l, "error") == 0 || strcmp(l, "assert") == 0;
    return *error || strcmp(l, "warning") == 0;
}

static void pagelog_message(struct pagelog *pl, const struct cdp_msg *m)
{
    struct cdp_page_message pm;
    struct buf raw;
    buf_init(&raw);
    int more = 0, error;
    if (cdp_event_page_message(m, &pm, &raw, PAGELOG_READ_MAX, &more) < 0 ||
        !pagelog_message_wanted(&pm, raw.data ? raw.data : "", &error)) {
        buf_fini(&raw);
        return;
    }
    pl->errors += error;
    if (!pagelog_room(pl)) {
        buf_fini(&raw);
        return;
    }
    char text[PAGELOG_TEXT_MAX + 1];
    int cut = pagetext_clean(text, sizeof(text), PAGELOG_TEXT_MAX, raw.data ? raw.data : "", raw.len, more, pl->key);
    buf_fini(&raw);
    char source[33], type[33];
    pagelog_word(source, sizeof(source), pm.source);
    pagelog_word(type, sizeof(type), pm.level);
    char at[PAGETEXT_HOST_MAX + PAGELOG_PATH_MAX + 32] = "";
    if (pm.url) {
        char host[PAGETEXT_HOST_MAX + 1], path[PAGELOG_PATH_MAX + 1];
        pagetext_url(pm.url, pl->key, host, sizeof(host), path, sizeof(path), PAGELOG_PATH_MAX);
        if (pm.line > 0)
            snprintf(at, sizeof(at), " at=\"%s%s:%d\"", host, path, pm.line);
        else
            snprintf(at, sizeof(at), " at=\"%s%s\"", host, path);
    }
    log_write(pagelog_level(), 0, "page message render_id=%llu browser=%u url_host=\"%s\" source=%s type=%s text=\"%s\"%s%s",
              pl->render_id, browser_index(pl->b), pl->url_host, source, type, text, cut ? " cut=true" : "", at);
}

/* ---- its requests ------------------------------------------------------------------------- */

static struct pagelog_request *pagelog_request_find(struct pagelog *pl, const char *id)
{
    unsigned n = pl->nreqs < PAGELOG_REQUESTS ? pl->nreqs : PAGELOG_REQUESTS;
    for (unsigned i = 0; i < n; i++) {
        struct pagelog_request *q = &pl->reqs[(pl->nreqs - 1 - i) % PAGELOG_REQUESTS];
        if (q->id && strcmp(q->id, id) == 0)
            return q;
    }
    return NULL;
}

static void pagelog_request_start(struct pagelog *pl, const struct cdp_msg *m)
{
    struct cdp_request rq;
    if (cdp_event_request(m, &rq) < 0 || !rq.url)
        return;
    struct pagelog_request *q = pagelog_request_find(pl, rq.request_id);
    if (!q) {
        q = &pl->reqs[pl->nreqs++ % PAGELOG_REQUESTS];
        free(q->id);
        q->id = xstrdup(rq.request_id);
    }
    free(q->url); /* a redirect: the request goes on to its new URL */
    size_t n = strnlen(rq.url, PAGELOG_URL_KEEP);
    q->url = xmalloc(n + 1);
    memcpy(q->url, rq.url, n);
    q->url[n] = '\0';
}

/* The common part of a request's line, then what is its own. */
static void pagelog_request_line(struct pagelog *pl, const char *what, const char *url, const char *fields)
{
    char host[PAGETEXT_HOST_MAX + 1] = "-", path[PAGELOG_PATH_MAX + 1] = "";
    if (url)
        pagetext_url(url, pl->key, host, sizeof(host), path, sizeof(path), PAGELOG_PATH_MAX);
    log_write(pagelog_level(), 0,
              "%s render_id=%llu browser=%u url_host=\"%s\" request_host=\"%s\" request_path=\"%s\"%s", what,
              pl->render_id, browser_index(pl->b), pl->url_host, host, path, fields);
}

static void pagelog_response(struct pagelog *pl, const struct cdp_msg *m)
{
    struct cdp_response r;
    if (cdp_event_response(m, &r) < 0 || r.status < 400)
        return;
    pl->failed++;
    if (!pagelog_room(pl))
        return;
    char type[33], fields[96];
    pagelog_word(type, sizeof(type), r.type);
    snprintf(fields, sizeof(fields), " type=%s status=%d", type, r.status);
    pagelog_request_line(pl, "page request failed", r.url, fields);
}

static void pagelog_failed(struct pagelog *pl, const struct cdp_msg *m)
{
    struct cdp_request rq;
    if (cdp_event_request(m, &rq) < 0)
        return;
    /* Given up by the page or the render (a navigation away, the context
     * disposed): not a failure of the request. */
    if (rq.canceled && !rq.blocked_reason)
        return;
    /* Refused by allowed_hosts (Fetch.failRequest, which Chromium reports
     * as blocked by the inspector): logged as such when it was paused. */
    if (rq.blocked_reason ? strcmp(rq.blocked_reason, "inspector") == 0
                          : strncmp(rq.error_text, "net::ERR_BLOCKED_BY_CLIENT", 26) == 0)
        return;
    pl->failed++;
    if (!pagelog_room(pl))
        return;
    struct pagelog_request *q = pagelog_request_find(pl, rq.request_id);
    char type[33], error[101], fields[256];
    pagelog_word(type, sizeof(type), rq.type);
    pagetext_clean(error, sizeof(error), 100, rq.error_text, strlen(rq.error_text), 0, pl->key);
    if (rq.blocked_reason) {
        char reason[33];
        pagelog_word(reason, sizeof(reason), rq.blocked_reason);
        snprintf(fields, sizeof(fields), " type=%s by=browser reason=%s error=\"%s\"", type, reason, error);
        pagelog_request_line(pl, "page request blocked", q ? q->url : NULL, fields);
    } else if (rq.cors_error) {
        /* the answer came, and the page may not read it */
        char cors[65];
        pagelog_word(cors, sizeof(cors), rq.cors_error);
        snprintf(fields, sizeof(fields), " type=%s error=\"%s\" cors=%s", type, error, cors);
        pagelog_request_line(pl, "page request failed", q ? q->url : NULL, fields);
    } else {
        snprintf(fields, sizeof(fields), " type=%s error=\"%s\"", type, error);
        pagelog_request_line(pl, "page request failed", q ? q->url : NULL, fields);
    }
}

void pagelog_refused(struct pagelog *pl, const char *url, size_t len, const char *reason)
{
    if (!pl || !pl->on)
        return;
    pl->failed++;
    if (!pagelog_room(pl))
        return;
    if (len > PAGELOG_URL_KEEP)
        len = PAGELOG_URL_KEEP;
    char *copy = xmalloc(len + 1);
    memcpy(copy, url, len);
    copy[len] = '\0';
    char fields[96];
    snprintf(fields, sizeof(fields), " by=allowed_hosts reason=%s", reason);
    pagelog_request_line(pl, "page request blocked", copy, fields);
    free(copy);
}

void pagelog_event(struct pagelog *pl, const struct cdp_msg *m)
{
    if (!pl->on)
        return;
    switch (m->event) {
    case CDP_EVENT_CONSOLE_API_CALLED:
    case CDP_EVENT_EXCEPTION_THROWN:
    case CDP_EVENT_LOG_ENTRY_ADDED:
        pagelog_message(pl, m);
        return;
    case CDP_EVENT_REQUEST_WILL_BE_SENT:
        pagelog_request_start(pl, m);
        return;
    case CDP_EVENT_RESPONSE_RECEIVED:
        pagelog_response(pl, m);
        return;
    case CDP_EVENT_LOADING_FAILED:
        pagelog_failed(pl, m);
        return;
    default:
        return;
    }
}

void pagelog_end(struct pagelog *pl)
{
    if (!pl->on)
        return;
    if (pl->more)
        log_write(pagelog_level(), 0, "page log limit render_id=%llu browser=%u url_host=\"%s\" logged=%u more=%u",
                  pl->render_id, browser_index(pl->b), pl->url_host, pl->logged, pl->more);
    pl->on = 0;
}

void pagelog_forget(struct pagelog *pl)
{
    browser_forget(pl->b, pl);
}
