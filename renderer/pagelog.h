/* The page's own log, per render (docs/logging.md, "The page's log"): its
 * console errors and warnings, uncaught exceptions, the browser's errors
 * and warnings about it, its requests that failed or were answered 400 and
 * above, and the ones refused (by allowed_hosts, or by the browser), each a
 * line with the render's id, bounded in number and size, the render key
 * never in it. On when [renderer] log_page is, or the log level is debug;
 * otherwise nothing is enabled in the page and nothing here costs. Runs on
 * the browser thread, beside the render's state machine (render.c feeds it
 * the page's events; intercept.c its refusals). */
#ifndef RV_PAGELOG_H
#define RV_PAGELOG_H

#include "browser.h"
#include "cdp.h"
#include "pagetext.h"
#include "query.h"

/* Lines per render (per try), then one saying how many more there were. */
#define PAGELOG_ENTRIES_MAX 20
/* The longest text of an entry, and of a request's path, in bytes. */
#define PAGELOG_TEXT_MAX 300
#define PAGELOG_PATH_MAX 200
/* Requests whose URL is kept for their loadingFailed (the most recent). */
#define PAGELOG_REQUESTS 256

struct pagelog_request {
    char *id;
    char *url; /* as it came; cleaned only when it fails */
};

/* One render's part. */
struct pagelog {
    struct browser *b;
    int on;                             /* a request has it and page logs are on: logging */
    int enabled;                        /* Runtime.enable and Log.enable sent */
    int claimed;                        /* a request has it (pagelog_begin): render_id is set */
    int counted;                        /* it was on: errors and failed count the page's */
    unsigned long long render_id;
    const char *key;                    /* the render key (borrowed from the request), or NULL */
    char url_host[PAGETEXT_HOST_MAX + 1];
    unsigned logged, more;              /* lines written, lines left out */
    unsigned errors;                    /* console errors and asserts, exceptions, the browser's errors */
    unsigned failed;                    /* requests failed, answered >= 400, refused */
    struct pagelog_request *reqs;       /* a ring of PAGELOG_REQUESTS, allocated when on */
    unsigned nreqs;
};

/* [renderer] log_page, and whether the log level is debug: set before the
 * browser thread starts (or between renders: a render reads it when it
 * begins). */
void pagelog_configure(int log_page, int debug);
/* Whether page logs are on (the domains are enabled in every page). */
int pagelog_wanted(void);

void pagelog_init(struct pagelog *pl, struct browser *b);
void pagelog_fini(struct pagelog *pl);
/* The page's session exists: enable what the log needs (Runtime, Log),
 * when page logs are on. Its replies are not waited for: Page.navigate
 * goes after them on the same session. */
void pagelog_attached(struct pagelog *pl, const char *session);
/* A request has the page now (render_start, render_claim). */
void pagelog_begin(struct pagelog *pl, const struct render_request *req);
/* An event of the page's session: logged when it is one of the page's
 * messages or a failed request. Never consumes it. */
void pagelog_event(struct pagelog *pl, const struct cdp_msg *m);
/* A request allowed_hosts refused (intercept.c): url is len bytes;
 * reason one of names_refusals. */
void pagelog_refused(struct pagelog *pl, const char *url, size_t len, const char *reason);
/* The render is over: the line saying how many were left out, if any. */
void pagelog_end(struct pagelog *pl);
/* Drop the replies still due to its commands. */
void pagelog_forget(struct pagelog *pl);

#endif
