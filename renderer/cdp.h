/* Chrome DevTools Protocol messages, without I/O: building the commands the
 * renderer sends and checking every reply and event before anything acts on
 * it. The websocket client feeds frames in and sends the text it gets out. */
#ifndef RV_CDP_H
#define RV_CDP_H

#include <stddef.h>

#include <jansson.h>

#include "buf.h"

/* The largest frame accepted: the reply to Page.captureScreenshot or
 * Page.printToPDF, which carries the image or the PDF. A full-page PNG at
 * deviceScaleFactor 2 is a few MiB, base64 adds a third; 64 MiB leaves room
 * and still bounds what one reply can cost (the text, its parsed copy and
 * the decoded image). */
#define CDP_FRAME_MAX (64u * 1024 * 1024)
/* The largest message of every other kind: events and the other replies
 * (Runtime.evaluate's above all, whose value or exception text the page
 * writes). Ours are a few KiB; Chrome's longest URL is 2 MiB, so an event
 * naming one still fits. A page cannot make the renderer hold more. */
#define CDP_MESSAGE_MAX (4u * 1024 * 1024)
/* Chrome's ids (contexts, targets, sessions, frames, requests, download
 * guids) are 32 hex digits, uuids or "123.4"; far longer is not Chrome. */
#define CDP_ID_MAX 128
#define CDP_METHOD_MAX 128
/* Browser.getVersion's product becomes a Prometheus label value. */
#define CDP_PRODUCT_MAX 128
/* Strings we put into commands (URL, header, cookie, timezone, path). */
#define CDP_ARG_MAX (64u * 1024)
#define CDP_EXPRESSION_MAX (1024u * 1024)
/* Chrome's own bound for emulated viewport sizes, in CSS pixels. */
#define CDP_VIEWPORT_MAX 10000000
#define CDP_SCALE_MAX 100.0
/* Longest a readiness probe may wait inside the page. */
#define CDP_READINESS_WAIT_MAX 600000u

/* Command ids of one connection: positive, increasing, wrapping to 1. */
struct cdp {
    int last_id;
};

void cdp_init(struct cdp *c);

/* Builders. Each appends one command, serialized as compact JSON, to out (so
 * the caller may reserve LWS_PRE bytes in front) and returns its id (> 0), or
 * -EINVAL for a missing, empty, oversized or non-UTF-8 argument, leaving out
 * and the id counter untouched. session is the flattened session the command
 * goes to (sessionId on the message); NULL means the browser itself. */

/* Any command; params (may be NULL) is consumed whatever happens. */
int cdp_command(struct cdp *c, struct buf *out, const char *session,
                const char *method, json_t *params);

int cdp_browser_get_version(struct cdp *c, struct buf *out);
/* Disposed by Chrome when a websocket goes, so a dead renderer leaks nothing;
 * over pipes, which outlive a renderer, by the next one when it takes them
 * over (browser_pipe.c). */
int cdp_create_browser_context(struct cdp *c, struct buf *out);
int cdp_dispose_browser_context(struct cdp *c, struct buf *out, const char *context_id);
/* An about:blank page in the context. */
int cdp_create_target(struct cdp *c, struct buf *out, const char *context_id);
/* flatten: the page's session speaks over this connection. */
int cdp_attach_to_target(struct cdp *c, struct buf *out, const char *target_id);
int cdp_close_target(struct cdp *c, struct buf *out, const char *target_id);
/* What a renderer taking over pipes from a dead one clears away: every
 * target, and the browser contexts beside the default one. */
int cdp_get_targets(struct cdp *c, struct buf *out);
int cdp_get_browser_contexts(struct cdp *c, struct buf *out);
/* allowAndName: files land in path (absolute) named by the download's guid;
 * events on the browser session. */
int cdp_set_download_behavior(struct cdp *c, struct buf *out,
                              const char *context_id, const char *path);

int cdp_page_enable(struct cdp *c, struct buf *out, const char *session);
int cdp_page_set_lifecycle_events(struct cdp *c, struct buf *out,
                                  const char *session, int enabled);
int cdp_page_navigate(struct cdp *c, struct buf *out, const char *session, const char *url);
int cdp_page_get_layout_metrics(struct cdp *c, struct buf *out, const char *session);
/* A page blocked in alert()/confirm() never becomes ready: dismiss it. */
int cdp_page_handle_dialog(struct cdp *c, struct buf *out, const char *session, int accept);

struct cdp_screenshot {
    int full_page;          /* capture beyond the viewport, clipped to width x height at 0,0 */
    double width, height;   /* the clip in CSS pixels (full_page only) */
    int optimize_for_speed; /* cheaper PNG encoding, larger file */
};
/* PNG of the viewport, or per shot (NULL: the viewport, default encoding). */
int cdp_page_capture_screenshot(struct cdp *c, struct buf *out, const char *session,
                                const struct cdp_screenshot *shot);

struct cdp_pdf {
    double paper_width, paper_height; /* inches; 0: Chrome's default (Letter) */
    int landscape;
    int print_background;
    double scale;                     /* 0: default (1); else 0.1 .. 2 */
    const char *page_ranges;          /* "1-5, 8"; NULL or "": all pages */
};
int cdp_page_print_to_pdf(struct cdp *c, struct buf *out, const char *session,
                          const struct cdp_pdf *pdf);
/* Paper size of a pdf.format name (letter, legal, tabloid, ledger, a0..a6,
 * any case) in inches; -EINVAL for an unknown name. */
int cdp_pdf_paper(const char *name, double *width, double *height);

/* Not needed for Runtime.evaluate; only for Runtime's events. */
int cdp_runtime_enable(struct cdp *c, struct buf *out, const char *session);
/* returnByValue, so the value itself comes back; with await_promise the
 * reply waits for a returned promise to settle. */
int cdp_runtime_evaluate(struct cdp *c, struct buf *out, const char *session,
                         const char *expression, int await_promise);
int cdp_inspector_enable(struct cdp *c, struct buf *out, const char *session);
/* The browser's own messages about the page (Log.entryAdded): network,
 * security, deprecation, intervention ... */
int cdp_log_enable(struct cdp *c, struct buf *out, const char *session);
/* Run source in every document the page loads from now on, before the
 * document's own scripts (in the page's main world). */
int cdp_page_add_script(struct cdp *c, struct buf *out, const char *session, const char *source);

/* mobile false; width and height in CSS pixels, 1 .. CDP_VIEWPORT_MAX;
 * scale > 0 .. CDP_SCALE_MAX. */
int cdp_set_device_metrics(struct cdp *c, struct buf *out, const char *session,
                           int width, int height, double scale);
/* An IANA name ("Europe/Paris") or an ICU custom id ("GMT+05:30", what
 * common/tz.c writes for an offset without an IANA zone); Chrome answers an
 * error ("Invalid timezone id") for one it does not know, "UTC+05:00" and
 * "+05:30" among them. */
int cdp_set_timezone(struct cdp *c, struct buf *out, const char *session, const char *tz);

int cdp_network_enable(struct cdp *c, struct buf *out, const char *session);
/* Pause every request of the session's target at the Request stage
 * (Fetch.requestPaused); each then waits for one of the two below. */
int cdp_fetch_enable(struct cdp *c, struct buf *out, const char *session);
int cdp_fetch_continue(struct cdp *c, struct buf *out, const char *session, const char *request_id);
/* Continue it with request_headers (the paused request's own, an object)
 * and add (name, value, ..., NULL: at least one pair), which replace any
 * header of the same name. */
int cdp_fetch_continue_headers(struct cdp *c, struct buf *out, const char *session, const char *request_id,
                               json_t *request_headers, const char *const *add);
/* errorReason BlockedByClient: the page sees net::ERR_BLOCKED_BY_CLIENT. */
int cdp_fetch_fail(struct cdp *c, struct buf *out, const char *session, const char *request_id);
/* Attach to the session's child targets (out-of-process frames, workers)
 * as they start, flattened, each held until Runtime.runIfWaitingForDebugger. */
int cdp_set_auto_attach(struct cdp *c, struct buf *out, const char *session);
int cdp_run_if_waiting(struct cdp *c, struct buf *out, const char *session);
/* headers: name, value, name, value, ..., NULL (at least one pair). */
int cdp_set_extra_headers(struct cdp *c, struct buf *out, const char *session,
                          const char *const *headers);
/* A cookie for domain, path "/" (Grafana's renderKey). domain is a host
 * name, an IPv4 address, or an IPv6 address with or without brackets.
 * Chromium refuses a bare IPv6 address as a cookie's domain ("Sanitizing
 * cookie failed"), so for one the cookie is set through url
 * "http://[addr]/" instead: host-only, as a cookie for an address is, and
 * sent to that address at any port and over https too (checked with
 * Chromium 156). -EINVAL for a broken IPv6 literal. */
int cdp_set_cookie(struct cdp *c, struct buf *out, const char *session,
                   const char *name, const char *value, const char *domain);

/* What a frame from the browser is. */
enum cdp_msg_type {
    CDP_MSG_RESULT, /* a reply carrying result */
    CDP_MSG_ERROR,  /* a reply carrying error {code, message} */
    CDP_MSG_EVENT,
};

/* The events the renderer acts on; anything else is CDP_EVENT_OTHER. */
/* The events a render or a browser acts on, each with its CDP method: one
 * list X(constant, method) builds the enum and cdp_msg.c's table. */
#define CDP_EVENTS(X)                                                     \
    X(CDP_EVENT_ATTACHED_TO_TARGET, "Target.attachedToTarget")            \
    X(CDP_EVENT_DETACHED_FROM_TARGET, "Target.detachedFromTarget")        \
    X(CDP_EVENT_TARGET_CRASHED, "Inspector.targetCrashed")                \
    X(CDP_EVENT_INSPECTOR_DETACHED, "Inspector.detached")                 \
    X(CDP_EVENT_LIFECYCLE, "Page.lifecycleEvent")                         \
    X(CDP_EVENT_LOAD_EVENT_FIRED, "Page.loadEventFired")                  \
    X(CDP_EVENT_DIALOG_OPENING, "Page.javascriptDialogOpening")           \
    X(CDP_EVENT_REQUEST_WILL_BE_SENT, "Network.requestWillBeSent")        \
    X(CDP_EVENT_RESPONSE_RECEIVED, "Network.responseReceived")            \
    X(CDP_EVENT_LOADING_FINISHED, "Network.loadingFinished")              \
    X(CDP_EVENT_LOADING_FAILED, "Network.loadingFailed")                  \
    X(CDP_EVENT_REQUEST_PAUSED, "Fetch.requestPaused")                    \
    X(CDP_EVENT_WEBSOCKET_CREATED, "Network.webSocketCreated")            \
    X(CDP_EVENT_DOWNLOAD_WILL_BEGIN, "Browser.downloadWillBegin")         \
    X(CDP_EVENT_DOWNLOAD_PROGRESS, "Browser.downloadProgress")             \
    X(CDP_EVENT_CONSOLE_API_CALLED, "Runtime.consoleAPICalled")           \
    X(CDP_EVENT_EXCEPTION_THROWN, "Runtime.exceptionThrown")              \
    X(CDP_EVENT_LOG_ENTRY_ADDED, "Log.entryAdded")
#define CDP_EVENT_ENUM(id, method) id,
enum cdp_event {
    CDP_EVENT_OTHER, /* any method not listed */
    CDP_EVENTS(CDP_EVENT_ENUM)
};

/* One parsed frame. Every pointer is borrowed from root and lives until
 * cdp_msg_fini. */
struct cdp_msg {
    enum cdp_msg_type type;
    int id;                    /* replies: the command's id */
    const char *session;       /* NULL: the browser's own session */
    json_t *result;            /* RESULT: an object */
    int error_code;            /* ERROR */
    const char *error_message; /* ERROR: never NULL */
    const char *error_data;    /* ERROR: details, or NULL */
    const char *method;        /* EVENT */
    enum cdp_event event;      /* EVENT */
    json_t *params;            /* EVENT: an object, or NULL when absent */
    json_t *root;              /* owned */
    const char *why;           /* after a failed parse: what was wrong (static text) */
};

/* The size the reply to a command may have: command is its text as a
 * cdp_* builder wrote it ({"id":N,"method":"...", ...}). CDP_FRAME_MAX for
 * Page.captureScreenshot and Page.printToPDF, CDP_MESSAGE_MAX for the rest
 * (and for text no builder wrote). */
size_t cdp_reply_max(const char *command, size_t len);
/* The id of the reply whose text begins with head (Chrome writes the id
 * first: {"id":N,...}), or 0 when head does not begin like a reply (an event,
 * or no CDP at all). Reads at most len bytes; 24 are enough. The websocket
 * layer asks this once a message outgrows CDP_MESSAGE_MAX, to learn whether
 * the reply it is reading may be larger. */
int cdp_frame_reply_id(const char *head, size_t len);

/* Parse and check one text frame (need not be NUL-terminated). 0, or
 * -EMSGSIZE for a frame over CDP_FRAME_MAX, -EBADMSG for anything that is not
 * a well-formed reply or event (m->why says what); m holds nothing then and
 * cdp_msg_fini is harmless. */
int cdp_msg_parse(struct cdp_msg *m, const char *text, size_t len);
void cdp_msg_fini(struct cdp_msg *m);

/* The session an event says is gone (detached, crashed), so the caller can
 * fail its pending commands; NULL for any other message. */
const char *cdp_msg_lost_session(const struct cdp_msg *m);

/* Result extractors: 0, -EREMOTEIO when m is an error reply (its message says
 * why), -EINVAL when it is an event, -EBADMSG when a field is missing, of the
 * wrong type or out of bounds. Strings live until cdp_msg_fini. */
int cdp_result_browser_context_id(const struct cdp_msg *m, const char **id);
int cdp_result_target_id(const struct cdp_msg *m, const char **id);
int cdp_result_session_id(const struct cdp_msg *m, const char **id);
/* Target.getTargets: the id of the i-th target of type "page" (from 0);
 * -ENOENT past the last. */
int cdp_result_page_target(const struct cdp_msg *m, size_t i, const char **id);
/* Target.getBrowserContexts: the i-th id; -ENOENT past the last. */
int cdp_result_browser_context(const struct cdp_msg *m, size_t i, const char **id);
/* "HeadlessChrome/…" or "Chrome/…": printable ASCII, no quote or backslash. */
int cdp_result_product(const struct cdp_msg *m, const char **product);
/* The base64 text of a screenshot or PDF; -ENODATA when empty. */
int cdp_result_data(const struct cdp_msg *m, const char **data, size_t *len);
/* The page's content size in CSS pixels (cssContentSize, else contentSize). */
int cdp_result_content_size(const struct cdp_msg *m, double *width, double *height);
/* Page.navigate: error_text is NULL unless the navigation failed
 * ("net::ERR_NAME_NOT_RESOLVED"), which Chrome reports as a result. */
int cdp_result_navigate(const struct cdp_msg *m, const char **frame_id,
                        const char **loader_id, const char **error_text);
/* 1 when Page.navigate's reply says the url was a download, not a page. */
int cdp_result_is_download(const struct cdp_msg *m);

enum cdp_value_type {
    CDP_VALUE_UNDEFINED,
    CDP_VALUE_NULL,
    CDP_VALUE_BOOLEAN,
    CDP_VALUE_NUMBER,
    CDP_VALUE_STRING,
    CDP_VALUE_JSON,  /* an object or array, returned by value */
    CDP_VALUE_OTHER, /* function, symbol, bigint: nothing usable by value */
};

struct cdp_value {
    enum cdp_value_type type;
    int boolean;
    double number;        /* NaN and the infinities too */
    const char *string;   /* STRING */
    size_t len;           /* STRING */
    json_t *json;         /* JSON: borrowed */
    const char *exception; /* set when the expression threw: the text to log */
};
/* Runtime.evaluate's value. -ENOEXEC when the expression threw or its
 * promise was rejected (v->exception says what, v->type is UNDEFINED). */
int cdp_result_evaluate(const struct cdp_msg *m, struct cdp_value *v);

/* Event extractors: 0, -EINVAL when m is not that event, -EBADMSG when a
 * field is missing or wrong. */
struct cdp_lifecycle {
    const char *frame_id;
    const char *loader_id;
    const char *name;     /* init, DOMContentLoaded, load, networkAlmostIdle, networkIdle, ... */
    double timestamp;     /* seconds, monotonic, browser's clock */
};
int cdp_event_lifecycle(const struct cdp_msg *m, struct cdp_lifecycle *lc);

/* Network.requestWillBeSent, responseReceived, loadingFinished,
 * loadingFailed: enough to keep a set of requests in flight for a
 * network-quiet window. */
struct cdp_request {
    const char *request_id;
    const char *type;       /* Document, XHR, Fetch, EventSource, ... or NULL */
    const char *frame_id;   /* or NULL */
    int redirect;           /* requestWillBeSent again for a redirect: same request */
    const char *url;        /* requestWillBeSent: request.url (absent: NULL) */
    const char *error_text; /* loadingFailed */
    int canceled;           /* loadingFailed */
    const char *blocked_reason; /* loadingFailed: Chromium's blockedReason (csp, mixed-content, ...) or NULL */
    const char *cors_error; /* loadingFailed: corsErrorStatus.corsError (MissingAllowOriginHeader, ...) or NULL */
    double timestamp;
};
int cdp_event_request(const struct cdp_msg *m, struct cdp_request *r);

enum cdp_download_state {
    CDP_DOWNLOAD_IN_PROGRESS,
    CDP_DOWNLOAD_COMPLETED,
    CDP_DOWNLOAD_CANCELED,
};
struct cdp_download {
    const char *guid;     /* [0-9A-Za-z-] only: safe as a file name in downloadPath */
    enum cdp_download_state state; /* progress events */
    double received, total;        /* progress events, bytes */
    const char *frame_id;          /* downloadWillBegin: the frame that started it */
    const char *url;               /* downloadWillBegin */
    const char *suggested_filename; /* downloadWillBegin: untrusted, not a path */
};
/* Browser.downloadWillBegin or Browser.downloadProgress, or their Page.*
 * twins on the page's session (sent when the page's context has a download
 * behaviour with events enabled). */
int cdp_event_download(const struct cdp_msg *m, struct cdp_download *d);

/* Target.attachedToTarget, Target.detachedFromTarget: the session and its
 * target (target_id may be NULL for a detach). */
int cdp_event_target(const struct cdp_msg *m, const char **session_id, const char **target_id);
/* Inspector.detached's reason, or NULL when it gave none. */
int cdp_event_inspector_detached(const struct cdp_msg *m, const char **reason);

/* Fetch.requestPaused: the request's id and its URL (url_len bytes; a URL
 * holds no NUL). Strings live until cdp_msg_fini. */
int cdp_event_paused(const struct cdp_msg *m, const char **request_id, const char **url, size_t *url_len);
/* A request's event too large to keep (a page's request with a header of
 * megabytes) that the render must still see. A Fetch.requestPaused must
 * be answered, or the request waits for ever; a Network.requestWillBeSent
 * is the request's start, which readiness must count in flight until its
 * loadingFinished or loadingFailed, or the page is captured before it
 * could use the answer. From the first bytes of the message (Chrome writes
 * the method, then params with requestId first) and its last ones
 * (sessionId last), writes to out a small event of the same method with
 * the same requestId and session and an empty URL (which the matcher
 * refuses as malformed). 0, or -EINVAL when head and tail do not read as
 * one of these events. */
#define CDP_STUB_EDGE 192
int cdp_event_stub(const char *head, size_t head_len, const char *tail, size_t tail_len, struct buf *out);

/* Network.webSocketCreated: the socket's URL. */
int cdp_event_websocket(const struct cdp_msg *m, const char **url, size_t *url_len);
/* Target.attachedToTarget's targetInfo.type: page, iframe, worker, ... */
int cdp_event_target_type(const struct cdp_msg *m, const char **type);

/* What the page said about itself (renderer/pagelog.c): a console call
 * (Runtime.consoleAPICalled), an uncaught exception
 * (Runtime.exceptionThrown) or the browser's message about the page
 * (Log.entryAdded). Its text, at most max bytes of it, is appended to text:
 * a console call's arguments joined by spaces (strings as they are, other
 * values by their description), an exception's text and the first line of
 * its description, a log entry's text; *cut is set when there was more. */
struct cdp_page_message {
    const char *source; /* "console", "exception", or the log entry's source (network, security, ...) */
    const char *level;  /* console: its type (log, error, warning, assert, ...); exception: "error";
                           log entry: verbose, info, warning or error */
    const char *url;    /* the script or document it came from, or NULL */
    int line;           /* there, 1-based; 0: not known */
};
int cdp_event_page_message(const struct cdp_msg *m, struct cdp_page_message *pm, struct buf *text, size_t max,
                           int *cut);
/* Network.responseReceived: the request's id, its URL and the status. */
struct cdp_response {
    const char *request_id;
    const char *type; /* Document, XHR, Fetch, Image, ... or NULL */
    const char *url;
    int status;
};
int cdp_event_response(const struct cdp_msg *m, struct cdp_response *r);

/* Base64 (standard alphabet, padded, as Chrome sends it) to bytes, through
 * libwebsockets' decoder after a strict check of the text: 0 with *out
 * (xmalloc'd, the caller frees; never NULL, even for no bytes) and *out_len,
 * -EINVAL for text that is not base64, -EMSGSIZE above CDP_FRAME_MAX. */
int cdp_decode_base64(const char *in, size_t len, unsigned char **out, size_t *out_len);

#endif
