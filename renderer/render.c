/* The steps of one render as states of one machine, so every reply, event
 * and deadline has exactly one place where it is handled, and the way out
 * always passes through Target.disposeBrowserContext. */
#include "render.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "xalloc.h"

#define RENDER_CMD_TIMEOUT_MS 15000u
#define RENDER_DISPOSE_TIMEOUT_MS 5000u
/* A page without Grafana's signals is ready at its load event once no
 * request has been in flight for this long (not the reference's 500 ms). */
#define RENDER_QUIET_MS 75
/* EventSource and long polls never finish: stop waiting for quiet then. */
#define RENDER_QUIET_MAX_MS 3000
/* One readiness evaluation waits in the page at most this long. */
#define RENDER_READY_POLL_MS 10000u
#define RENDER_LOADERS 8
/* A spare is begun this long after it is asked for (when a render has just
 * taken the last one), so that making its context and page does not compete
 * with that render's navigation for the browser's main thread: the bench
 * page navigates in 18 ms with the delay, 32 ms without. A request that
 * claims it sooner begins it at once. */
#define RENDER_SPARE_DELAY_MS 60

/* What a page needs before navigation, in two parts: the domains every
 * render enables (done ahead by a spare), and what the request asks for. */
/* A csv larger than this is refused rather than read into memory. */
#define RENDER_CSV_MAX (64u * 1024 * 1024)

#define PREPARE_ENABLES 1u
#define PREPARE_REQUEST 2u

enum render_state {
    RENDER_CONTEXT,    /* Target.createBrowserContext */
    RENDER_TARGET,     /* Target.createTarget */
    RENDER_ATTACH,     /* Target.attachToTarget */
    RENDER_PREPARE,    /* enables, viewport, timezone, headers, cookie */
    RENDER_PARKED,     /* a spare with its page ready, waiting for a request */
    RENDER_NAVIGATE,   /* Page.navigate and its load event */
    RENDER_READY,      /* readiness evaluation */
    RENDER_QUIET,      /* no Grafana signal: waiting for a quiet network */
    RENDER_LAYOUT,     /* full page: Page.getLayoutMetrics */
    RENDER_RESIZE,     /* full page: the viewport to the content's height */
    RENDER_SETTLE,     /* full page: two frames, so lazy panels see they are in view */
    RENDER_CAPTURE,    /* Page.captureScreenshot / Page.printToPDF */
    RENDER_DOWNLOAD,   /* csv: waiting for the page's download to complete */
    RENDER_DISPOSE,    /* Target.disposeBrowserContext */
    RENDER_DONE,
};

static const char *const render_state_names[] = {
    "launch", "newPage", "newPage", "prepare", "parked", "navigate", "panelsRendered",
    "panelsRendered", "dashboardScrolling", "dashboardScrolling", "dashboardScrolling", "screenshot",
    "downloadCSV", "dispose", "done",
};

struct render {
    struct browser *b;
    const struct render_request *req;
    struct ingest_sender *ingest;
    render_done_fn done;
    void *arg;
    enum render_state state;
    unsigned generation;
    int64_t deadline_ns;
    int64_t step_start_ns;
    int64_t quiet_start_ns;
    int64_t last_activity_ns;
    int wait_id;      /* the one command the state waits for */
    int prepare_left; /* RENDER_PREPARE: replies still to come */
    unsigned prepared; /* PREPARE_* parts sent */
    int spare;        /* made ahead and not claimed by a request yet */
    int counted;      /* counted in its browser's load */
    int context_coming; /* RENDER_DISPOSE: waiting for the context's id to dispose of it */
    int navigated;    /* Page.navigate answered */
    int full_page_h;
    int scrolled;     /* full page: the viewport holds the whole page now */
    char context_id[CDP_ID_MAX + 1];
    char target_id[CDP_ID_MAX + 1];
    char session_id[CDP_ID_MAX + 1];
    char loader_id[CDP_ID_MAX + 1];
    char loaded[RENDER_LOADERS][CDP_ID_MAX + 1]; /* loaders whose load event we saw */
    unsigned nloaded;
    char **inflight; /* request ids */
    size_t ninflight;
    lws_sorted_usec_list_t deadline_sul;
    lws_sorted_usec_list_t wake_sul; /* quiet window, readiness retry, finishing */
    struct render_result result;
    int have_result;
    /* csv: a private folder the browser downloads into, and the download. */
    char *dl_dir;
    char dl_guid[CDP_ID_MAX + 1];
    char dl_name[RENDER_FILENAME_MAX + 1];
    int dl_done;
    unsigned nsent; /* result.steps sent to the exporter (render_send_steps) */
};

static void render_fail(struct render *r, unsigned status, int retryable, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void render_reply(void *arg, const struct cdp_msg *m, int err);
static void render_on_download(struct render *r, const struct cdp_msg *m);

/* A step's time is kept with the render and sent with the others in one
 * datagram when it ends: the exporter's socket queues only a few datagrams
 * (net.unix.max_dgram_qlen, 10 by default), and a datagram per step lost
 * counts under bursts of renders. */
static void render_report_step(struct render *r, const char *step)
{
    if (r->spare)
        return; /* no request is waiting on it */
    int64_t now = clock_now_ns();
    struct render_result *res = &r->result;
    if (res->nsteps < RENDER_STEPS_MAX) {
        res->steps[res->nsteps].name = step;
        res->steps[res->nsteps].seconds = (double)(now - r->step_start_ns) / CLOCK_NS_PER_S;
        res->nsteps++;
    }
    r->step_start_ns = now;
}

static void render_send_steps(struct render *r)
{
    const struct render_result *res = &r->result;
    if (r->nsent == res->nsteps)
        return;
    struct ingest_buf *ib = xmalloc(sizeof(*ib));
    ingest_buf_reset(ib);
    for (unsigned i = r->nsent; i < res->nsteps; i++) {
        const char *labels[] = { "step", res->steps[i].name, NULL };
        ingest_buf_line(ib, "grafana_image_renderer_step_duration_seconds", labels, res->steps[i].seconds);
    }
    /* The browser's version again: an exporter that restarted since the
     * browser connected has it back with the next render. */
    const char *product = browser_product(r->b);
    if (product) {
        const char *labels[] = { "version", product, NULL };
        ingest_buf_line(ib, "grafana_image_renderer_browser_info", labels, 1);
    }
    ingest_send(r->ingest, ib);
    free(ib);
    r->nsent = res->nsteps;
}

static void render_schedule(struct render *r, lws_sorted_usec_list_t *sul, sul_cb_t cb, int64_t ms)
{
    lws_sul_schedule(browser_lws(r->b), 0, sul, cb, ms <= 0 ? 1 : (lws_usec_t)ms * LWS_US_PER_MS);
}

static void render_finish_cb(lws_sorted_usec_list_t *sul)
{
    struct render *r = lws_container_of(sul, struct render, wake_sul);
    r->done(r->arg, r);
}

/* The end of the line: no more commands of ours are wanted. */
static void render_finish(struct render *r)
{
    render_send_steps(r);
    r->state = RENDER_DONE;
    if (r->session_id[0])
        browser_unsubscribe(r->b, r->session_id);
    browser_forget(r->b, r);
    lws_sul_schedule(browser_lws(r->b), 0, &r->deadline_sul, NULL, LWS_SET_TIMER_USEC_CANCEL);
    render_schedule(r, &r->wake_sul, render_finish_cb, 0);
}

static int render_send(struct render *r, struct buf *out, int id, unsigned timeout_ms)
{
    int rc = browser_submit(r->b, out, id, timeout_ms, render_reply, r);
    if (rc < 0)
        return rc;
    r->wait_id = id;
    return 0;
}

static void render_dispose(struct render *r)
{
    /* Ended while Target.createBrowserContext was on its way (a timeout, a
     * client gone): the context will exist, so its reply is still wanted. */
    int context_coming = r->state == RENDER_CONTEXT && r->wait_id > 0 && !r->context_id[0];
    if (!context_coming)
        browser_forget(r->b, r); /* late replies of the old state are not wanted */
    if (r->session_id[0]) {
        browser_unsubscribe(r->b, r->session_id);
        r->session_id[0] = '\0';
    }
    lws_sul_schedule(browser_lws(r->b), 0, &r->wake_sul, NULL, LWS_SET_TIMER_USEC_CANCEL);
    if (browser_generation(r->b) != r->generation || !browser_is_up(r->b)) {
        render_finish(r);
        return;
    }
    if (context_coming) {
        r->state = RENDER_DISPOSE;
        r->context_coming = 1;
        return;
    }
    if (!r->context_id[0]) {
        render_finish(r);
        return;
    }
    r->state = RENDER_DISPOSE;
    struct buf out;
    browser_cmd_init(&out);
    int id = cdp_dispose_browser_context(browser_cdp(r->b), &out, r->context_id);
    if (render_send(r, &out, id, RENDER_DISPOSE_TIMEOUT_MS) < 0)
        render_finish(r);
}

static void render_fail(struct render *r, unsigned status, int retryable, const char *fmt, ...)
{
    if (r->have_result || r->state >= RENDER_DISPOSE)
        return;
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    r->have_result = 1;
    r->result.status = status;
    r->result.retryable = retryable;
    r->result.error = xstrdup(why);
    /* The reason may quote a value: keep the log line one quoted field. */
    char logged[sizeof(why)];
    size_t n = 0;
    for (const char *p = why; *p && n + 1 < sizeof(logged); p++)
        logged[n++] = *p == '"' ? '\'' : *p;
    logged[n] = '\0';
    log_info("%s failed browser=%u step=%s status=%u error=\"%s\"", r->spare ? "spare page" : "render",
             browser_index(r->b), render_state_names[r->state], status, logged);
    render_dispose(r);
}

static void render_deadline_cb(lws_sorted_usec_list_t *sul)
{
    struct render *r = lws_container_of(sul, struct render, deadline_sul);
    render_fail(r, 408, 0, "timed out after %u ms waiting for %s", r->req->timeout_ms,
                render_state_names[r->state]);
}

/* ---- readiness ----------------------------------------------------------- */

static void render_evaluate(struct render *r, unsigned wait_ms)
{
    int64_t left = (r->deadline_ns - clock_now_ns()) / CLOCK_NS_PER_MS;
    if (wait_ms > (unsigned)(left > 0 ? left : 0))
        wait_ms = left > 0 ? (unsigned)left : 0;
    struct buf expr;
    buf_init(&expr);
    cdp_readiness_expression(&expr, wait_ms);
    struct buf out;
    browser_cmd_init(&out);
    int id = cdp_runtime_evaluate(browser_cdp(r->b), &out, r->session_id, expr.data, 1);
    buf_fini(&expr);
    r->state = RENDER_READY;
    if (render_send(r, &out, id, wait_ms + RENDER_CMD_TIMEOUT_MS) < 0)
        render_fail(r, 500, 1, "lost the browser while waiting for the page");
}

static void render_retry_cb(lws_sorted_usec_list_t *sul)
{
    struct render *r = lws_container_of(sul, struct render, wake_sul);
    if (r->state == RENDER_READY)
        render_evaluate(r, RENDER_READY_POLL_MS);
}

static int render_request_index(struct render *r, const char *id)
{
    for (size_t i = 0; i < r->ninflight; i++)
        if (strcmp(r->inflight[i], id) == 0)
            return (int)i;
    return -1;
}

static void render_quiet_cb(lws_sorted_usec_list_t *sul)
{
    struct render *r = lws_container_of(sul, struct render, wake_sul);
    if (r->state != RENDER_QUIET)
        return;
    int64_t now = clock_now_ns();
    int64_t quiet_for = (now - r->last_activity_ns) / CLOCK_NS_PER_MS;
    int64_t waited = (now - r->quiet_start_ns) / CLOCK_NS_PER_MS;
    if ((r->ninflight == 0 && quiet_for >= RENDER_QUIET_MS) || waited >= RENDER_QUIET_MAX_MS) {
        /* Quiet now; a late Grafana app may have started meanwhile: ask once more. */
        r->state = RENDER_READY;
        render_evaluate(r, 0);
        r->quiet_start_ns = -1; /* a second "none" means ready */
        return;
    }
    int64_t next = r->ninflight ? 25 : RENDER_QUIET_MS - quiet_for;
    render_schedule(r, &r->wake_sul, render_quiet_cb, next);
}

static void render_ready(struct render *r);

static void render_on_readiness(struct render *r, const struct cdp_msg *m)
{
    struct cdp_readiness rd;
    int rc = cdp_result_readiness(m, &rd);
    if (rc < 0) {
        /* The page navigated away under the evaluation, or is busy: ask again. */
        log_debug("readiness evaluation failed browser=%u error=%d", browser_index(r->b), -rc);
        render_schedule(r, &r->wake_sul, render_retry_cb, 50);
        return;
    }
    if (rd.ready) {
        render_ready(r);
    } else if (rd.kind == CDP_PAGE_NONE) {
        if (r->quiet_start_ns < 0) {
            render_ready(r);
            return;
        }
        r->state = RENDER_QUIET;
        r->quiet_start_ns = clock_now_ns();
        if (r->last_activity_ns == 0)
            r->last_activity_ns = r->quiet_start_ns;
        render_schedule(r, &r->wake_sul, render_quiet_cb, RENDER_QUIET_MS / 3);
    } else {
        render_evaluate(r, RENDER_READY_POLL_MS);
    }
}

/* ---- capture --------------------------------------------------------------- */

static void render_capture(struct render *r)
{
    struct buf out;
    browser_cmd_init(&out);
    int id;
    if (r->req->encoding == QUERY_ENCODING_PDF) {
        struct cdp_pdf pdf = { .landscape = r->req->pdf.landscape,
                               .print_background = r->req->pdf.print_background,
                               .page_ranges = r->req->pdf.page_ranges };
        query_paper_inches(r->req->pdf.format, &pdf.paper_width, &pdf.paper_height);
        id = cdp_page_print_to_pdf(browser_cdp(r->b), &out, r->session_id, &pdf);
    } else {
        struct cdp_screenshot shot = { .optimize_for_speed = 1 };
        id = cdp_page_capture_screenshot(browser_cdp(r->b), &out, r->session_id, &shot);
    }
    r->state = RENDER_CAPTURE;
    int64_t left = (r->deadline_ns - clock_now_ns()) / CLOCK_NS_PER_MS;
    if (render_send(r, &out, id, left > 0 ? (unsigned)left + 1000 : 1000) < 0)
        render_fail(r, 500, 1, "lost the browser before the capture");
}

/* Full page: the viewport has grown to the whole page, which brings every
 * lazy panel into view (what scrolling through the dashboard does). Let the
 * page run two frames so their intersection observers fire and their
 * queries start, then wait for readiness once more. */
static void render_settle(struct render *r)
{
    static const char expr[] = "new Promise(function(resolve){requestAnimationFrame(function(){"
                               "requestAnimationFrame(function(){resolve(true);});});})";
    struct buf out;
    browser_cmd_init(&out);
    int id = cdp_runtime_evaluate(browser_cdp(r->b), &out, r->session_id, expr, 1);
    r->state = RENDER_SETTLE;
    if (render_send(r, &out, id, RENDER_CMD_TIMEOUT_MS) < 0)
        render_fail(r, 500, 1, "lost the browser while scrolling the page");
}

static void render_ready(struct render *r)
{
    if (r->scrolled) {
        render_report_step(r, "dashboardScrolling");
        render_capture(r);
        return;
    }
    render_report_step(r, "panelsRendered");
    if (r->req->height == QUERY_FULL_PAGE && r->req->encoding == QUERY_ENCODING_PNG) {
        struct buf out;
        browser_cmd_init(&out);
        int id = cdp_page_get_layout_metrics(browser_cdp(r->b), &out, r->session_id);
        r->state = RENDER_LAYOUT;
        if (render_send(r, &out, id, RENDER_CMD_TIMEOUT_MS) < 0)
            render_fail(r, 500, 1, "lost the browser before the capture");
        return;
    }
    render_capture(r);
}

static void render_on_capture(struct render *r, const struct cdp_msg *m)
{
    const char *data;
    size_t len;
    int rc = cdp_result_data(m, &data, &len);
    if (rc < 0) {
        render_fail(r, 500, 0, "the browser did not capture the page: %s",
                    m->type == CDP_MSG_ERROR ? m->error_message : "no data");
        return;
    }
    unsigned char *img;
    size_t img_len;
    rc = cdp_decode_base64(data, len, &img, &img_len);
    if (rc < 0) {
        render_fail(r, 500, 0, "the browser sent an image we cannot decode");
        return;
    }
    render_report_step(r, "screenshot");
    r->have_result = 1;
    r->result.status = 200;
    r->result.content_type = r->req->encoding == QUERY_ENCODING_PDF ? "application/pdf" : "image/png";
    r->result.body = img;
    r->result.len = img_len;
    render_dispose(r);
}

/* ---- events ------------------------------------------------------------------ */

static int render_loaded(const struct render *r, const char *loader)
{
    for (unsigned i = 0; i < r->nloaded && i < RENDER_LOADERS; i++)
        if (strcmp(r->loaded[i], loader) == 0)
            return 1;
    return 0;
}

static void render_check_loaded(struct render *r)
{
    if (r->state == RENDER_NAVIGATE && r->navigated && render_loaded(r, r->loader_id)) {
        render_report_step(r, "navigate");
        render_evaluate(r, 0);
    }
}

static void render_event(void *arg, const struct cdp_msg *m)
{
    struct render *r = arg;
    if (!m) {
        r->session_id[0] = '\0'; /* the subscription is gone with the connection */
        render_fail(r, 500, 1, "lost the connection to the browser");
        return;
    }
    if (cdp_msg_lost_session(m)) {
        render_fail(r, 500, 1, "the page crashed or was closed (%s)", m->method);
        return;
    }
    switch (m->event) {
    case CDP_EVENT_LIFECYCLE: {
        struct cdp_lifecycle lc;
        if (cdp_event_lifecycle(m, &lc) == 0 && strcmp(lc.name, "load") == 0 && strlen(lc.loader_id) <= CDP_ID_MAX) {
            snprintf(r->loaded[r->nloaded % RENDER_LOADERS], CDP_ID_MAX + 1, "%s", lc.loader_id);
            r->nloaded++;
            render_check_loaded(r);
        }
        break;
    }
    case CDP_EVENT_REQUEST_WILL_BE_SENT:
    case CDP_EVENT_LOADING_FINISHED:
    case CDP_EVENT_LOADING_FAILED: {
        struct cdp_request rq;
        if (cdp_event_request(m, &rq) < 0)
            break;
        r->last_activity_ns = clock_now_ns();
        int i = render_request_index(r, rq.request_id);
        if (m->event == CDP_EVENT_REQUEST_WILL_BE_SENT) {
            if (i < 0 && r->ninflight < 4096) {
                r->inflight = xreallocarray(r->inflight, r->ninflight + 1, sizeof(*r->inflight));
                r->inflight[r->ninflight++] = xstrdup(rq.request_id);
            }
        } else if (i >= 0) {
            free(r->inflight[i]);
            r->inflight[i] = r->inflight[--r->ninflight];
        }
        break;
    }
    case CDP_EVENT_DOWNLOAD_WILL_BEGIN:
    case CDP_EVENT_DOWNLOAD_PROGRESS:
        if (r->dl_dir && r->state < RENDER_DISPOSE)
            render_on_download(r, m);
        break;
    case CDP_EVENT_DIALOG_OPENING: {
        struct buf out;
        browser_cmd_init(&out);
        int id = cdp_page_handle_dialog(browser_cdp(r->b), &out, r->session_id, 0);
        /* Its reply is not waited for: wait_id stays on the state's own command. */
        int keep = r->wait_id;
        render_send(r, &out, id, RENDER_CMD_TIMEOUT_MS);
        r->wait_id = keep;
        break;
    }
    default:
        break;
    }
}

/* ---- replies ------------------------------------------------------------------ */

static int render_copy_id(char *dst, const char *src)
{
    size_t n = strlen(src);
    if (n > CDP_ID_MAX)
        return -EBADMSG;
    memcpy(dst, src, n + 1);
    return 0;
}

/* ---- csv ------------------------------------------------------------------------ */

/* A folder of its own, 0700, for the browser to download the csv into. */
static int render_dl_dir_make(struct render *r)
{
    const char *tmp = getenv("TMPDIR");
    struct buf path;
    buf_init(&path);
    buf_printf(&path, "%s/rendervisor-csv.XXXXXX", tmp && tmp[0] == '/' ? tmp : "/tmp");
    if (!mkdtemp(path.data)) {
        int err = errno;
        buf_fini(&path);
        errno = err;
        return -1;
    }
    r->dl_dir = path.data; /* taken over from the buf */
    return 0;
}

/* The folder and whatever the browser left in it (a finished file, or a
 * partial one of a render that failed). */
static void render_dl_dir_remove(struct render *r)
{
    if (!r->dl_dir)
        return;
    DIR *d = opendir(r->dl_dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                unlinkat(dirfd(d), e->d_name, 0);
        closedir(d);
    }
    if (rmdir(r->dl_dir) < 0)
        log_warn_errno(-errno, "cannot remove a download folder path=%s", r->dl_dir);
    free(r->dl_dir);
    r->dl_dir = NULL;
}

/* The page's name for the file, made safe for a Content-Disposition header:
 * its last path part, with anything but letters, digits and " ._()-"
 * replaced. */
static void render_dl_name(struct render *r, const char *suggested)
{
    const char *base = suggested;
    for (const char *p = suggested; *p; p++)
        if (*p == '/' || *p == '\\')
            base = p + 1;
    while (*base == '.' || *base == ' ')
        base++;
    size_t n = 0;
    for (; *base && n < RENDER_FILENAME_MAX; base++) {
        char ch = *base;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 strchr(" ._()-", ch);
        r->dl_name[n++] = ok ? ch : '_';
    }
    r->dl_name[n] = '\0';
    if (n == 0)
        snprintf(r->dl_name, sizeof(r->dl_name), "data.csv");
}

static void render_dl_finish(struct render *r)
{
    if (r->state != RENDER_DOWNLOAD || !r->dl_done)
        return;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", r->dl_dir, r->dl_guid);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        render_fail(r, 500, 0, "the downloaded file is not there: %s", strerror(errno));
        return;
    }
    struct buf body;
    buf_init(&body);
    char chunk[16384];
    ssize_t got;
    while ((got = read(fd, chunk, sizeof(chunk))) > 0 && body.len + (size_t)got <= RENDER_CSV_MAX)
        buf_append(&body, chunk, (size_t)got);
    int err = got < 0 ? errno : 0;
    close(fd);
    if (got != 0) {
        buf_fini(&body);
        if (err)
            render_fail(r, 500, 0, "cannot read the downloaded file: %s", strerror(err));
        else
            render_fail(r, 500, 0, "the csv is larger than %u bytes", RENDER_CSV_MAX);
        return;
    }
    render_report_step(r, "downloadCSV");
    r->have_result = 1;
    r->result.status = 200;
    r->result.content_type = "text/csv";
    r->result.filename = r->dl_name;
    r->result.len = body.len;
    r->result.body = (unsigned char *)body.data;
    if (!r->result.body) /* an empty csv is still an answer */
        r->result.body = xmalloc(1);
    render_dispose(r);
}

static void render_on_download(struct render *r, const struct cdp_msg *m)
{
    struct cdp_download d;
    int rc = cdp_event_download(m, &d);
    if (rc < 0) {
        log_warn("the browser sent a download event we cannot read browser=%u", browser_index(r->b));
        return;
    }
    if (m->event == CDP_EVENT_DOWNLOAD_WILL_BEGIN) {
        if (!r->dl_guid[0] && strlen(d.guid) <= CDP_ID_MAX) {
            snprintf(r->dl_guid, sizeof(r->dl_guid), "%s", d.guid);
            render_dl_name(r, d.suggested_filename);
        }
        return;
    }
    if (strcmp(d.guid, r->dl_guid) != 0)
        return; /* only the page's first download is the answer */
    if (d.state == CDP_DOWNLOAD_CANCELED)
        render_fail(r, 500, 0, "the browser canceled the download");
    else if (d.received > RENDER_CSV_MAX)
        render_fail(r, 500, 0, "the csv is larger than %u bytes", RENDER_CSV_MAX);
    else if (d.state == CDP_DOWNLOAD_COMPLETED) {
        r->dl_done = 1;
        render_dl_finish(r);
    }
}

/* Sends the parts of the preparation asked for, all at once; the state
 * moves on when every reply is in. */
static void render_prepare(struct render *r, unsigned parts)
{
    struct cdp *c = browser_cdp(r->b);
    const char *s = r->session_id;
    const struct render_request *q = r->req;
    int height = !q || q->height == QUERY_FULL_PAGE ? QUERY_HEIGHT_DEFAULT : q->height;
    struct buf out;
    r->state = RENDER_PREPARE;
    r->prepare_left = 0;
    r->prepared |= parts;
    for (int step = 0; step < 9; step++) {
        int request_step = step >= 3;
        if (!(parts & (request_step ? PREPARE_REQUEST : PREPARE_ENABLES)))
            continue;
        int id = 0;
        browser_cmd_init(&out);
        switch (step) {
        case 0: id = cdp_page_enable(c, &out, s); break;
        case 1: id = cdp_page_set_lifecycle_events(c, &out, s, 1); break;
        case 2: id = cdp_network_enable(c, &out, s); break;
        case 3: id = cdp_set_device_metrics(c, &out, s, q->width, height, q->device_scale_factor); break;
        case 4:
            if (q->timezone[0])
                id = cdp_set_timezone(c, &out, s, q->timezone);
            break;
        case 5:
            if (q->accept_language) {
                const char *headers[] = { "Accept-Language", q->accept_language, NULL };
                id = cdp_set_extra_headers(c, &out, s, headers);
            }
            break;
        case 6:
            if (q->render_key && q->domain[0])
                id = cdp_set_cookie(c, &out, s, "renderKey", q->render_key, q->domain);
            break;
        case 7: id = cdp_runtime_enable(c, &out, s); break;
        case 8:
            if (q->encoding == QUERY_ENCODING_CSV) {
                if (render_dl_dir_make(r) < 0) {
                    buf_fini(&out);
                    render_fail(r, 500, 0, "cannot make a folder for the download: %s", strerror(errno));
                    return;
                }
                id = cdp_set_download_behavior(c, &out, r->context_id, r->dl_dir);
            }
            break;
        }
        if (id == 0) {
            buf_fini(&out);
            continue;
        }
        if (id < 0) {
            buf_fini(&out);
            render_fail(r, 400, 0, "a parameter cannot be passed to the browser (step %d)", step);
            return;
        }
        if (browser_submit(r->b, &out, id, RENDER_CMD_TIMEOUT_MS, render_reply, r) < 0) {
            render_fail(r, 500, 1, "lost the connection to the browser");
            return;
        }
        r->prepare_left++;
    }
    r->wait_id = 0;
}

static void render_navigate(struct render *r)
{
    struct buf out;
    browser_cmd_init(&out);
    int id = cdp_page_navigate(browser_cdp(r->b), &out, r->session_id, r->req->url);
    r->state = RENDER_NAVIGATE;
    int64_t left = (r->deadline_ns - clock_now_ns()) / CLOCK_NS_PER_MS;
    if (render_send(r, &out, id, left > 0 ? (unsigned)left + 1000 : 1000) < 0)
        render_fail(r, id < 0 ? 400 : 500, id >= 0, "cannot navigate to the url");
}

static void render_reply(void *arg, const struct cdp_msg *m, int err)
{
    struct render *r = arg;
    if (err == -ECONNRESET) {
        if (r->state == RENDER_DISPOSE) {
            render_finish(r);
            return;
        }
        render_fail(r, 500, 1, "lost the connection to the browser");
        return;
    }
    if (r->state == RENDER_DISPOSE && r->context_coming) {
        r->context_coming = 0;
        const char *id;
        if (err < 0 || cdp_result_browser_context_id(m, &id) < 0 || render_copy_id(r->context_id, id) < 0) {
            render_finish(r);
            return;
        }
        struct buf out;
        browser_cmd_init(&out);
        if (render_send(r, &out, cdp_dispose_browser_context(browser_cdp(r->b), &out, r->context_id),
                        RENDER_DISPOSE_TIMEOUT_MS) < 0)
            render_finish(r);
        return;
    }
    if (r->state == RENDER_DISPOSE) {
        if (err < 0 || m->type == CDP_MSG_ERROR)
            log_warn("cannot dispose of a browser context browser=%u context=%s", browser_index(r->b),
                     r->context_id);
        render_finish(r);
        return;
    }
    if (err == -ETIMEDOUT) {
        render_fail(r, 500, 1, "the browser did not answer during %s", render_state_names[r->state]);
        return;
    }
    if (err < 0) { /* -EMSGSIZE: a retry elsewhere would be as large */
        render_fail(r, 500, 0, "the browser's answer during %s was over the renderer's size limit for it "
                    "(%u MiB for an image or PDF, %u MiB otherwise)", render_state_names[r->state],
                    CDP_FRAME_MAX >> 20, CDP_MESSAGE_MAX >> 20);
        return;
    }
    if (r->state == RENDER_PREPARE) {
        if (m->type == CDP_MSG_ERROR) {
            if (r->req && r->req->timezone[0] && strstr(m->error_message, "imezone"))
                render_fail(r, 400, 0, "timezone: the browser does not know \"%s\"", r->req->timezone);
            else
                render_fail(r, 500, 0, "the browser refused to prepare the page: %s", m->error_message);
            return;
        }
        if (--r->prepare_left > 0)
            return;
        if (!(r->prepared & PREPARE_REQUEST)) {
            /* A spare's page is ready: park it, or go on for the request
             * that claimed it meanwhile. */
            if (r->spare)
                r->state = RENDER_PARKED;
            else
                render_prepare(r, PREPARE_REQUEST);
            return;
        }
        render_report_step(r, "prepare");
        render_navigate(r);
        return;
    }
    if (m->id != r->wait_id)
        return; /* the reply to a command we do not wait for (a dialog) */
    int rc;
    const char *id;
    struct buf out;
    switch (r->state) {
    case RENDER_CONTEXT:
        if ((rc = cdp_result_browser_context_id(m, &id)) < 0 || render_copy_id(r->context_id, id) < 0) {
            render_fail(r, 500, 0, "cannot create a browser context");
            return;
        }
        render_report_step(r, "launch");
        browser_cmd_init(&out);
        r->state = RENDER_TARGET;
        if (render_send(r, &out, cdp_create_target(browser_cdp(r->b), &out, r->context_id),
                        RENDER_CMD_TIMEOUT_MS) < 0)
            render_fail(r, 500, 1, "lost the connection to the browser");
        return;
    case RENDER_TARGET:
        if ((rc = cdp_result_target_id(m, &id)) < 0 || render_copy_id(r->target_id, id) < 0) {
            render_fail(r, 500, 0, "cannot create a page");
            return;
        }
        browser_cmd_init(&out);
        r->state = RENDER_ATTACH;
        if (render_send(r, &out, cdp_attach_to_target(browser_cdp(r->b), &out, r->target_id),
                        RENDER_CMD_TIMEOUT_MS) < 0)
            render_fail(r, 500, 1, "lost the connection to the browser");
        return;
    case RENDER_ATTACH:
        if ((rc = cdp_result_session_id(m, &id)) < 0 || render_copy_id(r->session_id, id) < 0 ||
            browser_subscribe(r->b, r->session_id, render_event, r) < 0) {
            r->session_id[0] = '\0';
            render_fail(r, 500, 0, "cannot attach to the page");
            return;
        }
        render_report_step(r, "newPage");
        render_prepare(r, r->spare ? PREPARE_ENABLES : PREPARE_ENABLES | PREPARE_REQUEST);
        return;
    case RENDER_NAVIGATE: {
        const char *frame, *loader, *error_text;
        rc = cdp_result_navigate(m, &frame, &loader, &error_text);
        if (r->req->encoding == QUERY_ENCODING_CSV) {
            /* The csv comes as the page's download, or the url itself is
             * one (its navigation then "fails" as aborted). */
            if (rc < 0 || (error_text && !cdp_result_is_download(m))) {
                render_fail(r, 500, 0, "cannot load the url: %s",
                            error_text ? error_text : m->type == CDP_MSG_ERROR ? m->error_message : "bad reply");
                return;
            }
            render_report_step(r, "navigateCSV");
            r->state = RENDER_DOWNLOAD;
            render_dl_finish(r);
            return;
        }
        if (rc < 0 || error_text) {
            render_fail(r, 500, 0, "cannot load the url: %s",
                        error_text ? error_text : m->type == CDP_MSG_ERROR ? m->error_message : "bad reply");
            return;
        }
        if (!loader || render_copy_id(r->loader_id, loader) < 0) {
            /* A same-document navigation has no loader: nothing more will load. */
            render_report_step(r, "navigate");
            render_evaluate(r, 0);
            return;
        }
        r->navigated = 1;
        render_check_loaded(r);
        return;
    }
    case RENDER_READY:
        render_on_readiness(r, m);
        return;
    case RENDER_LAYOUT: {
        double w, h;
        if (cdp_result_content_size(m, &w, &h) < 0) {
            render_fail(r, 500, 0, "cannot measure the page");
            return;
        }
        r->full_page_h = h < QUERY_SIZE_MIN ? QUERY_SIZE_MIN : h > QUERY_SIZE_MAX ? QUERY_SIZE_MAX : (int)ceil(h);
        browser_cmd_init(&out);
        r->state = RENDER_RESIZE;
        if (render_send(r, &out,
                        cdp_set_device_metrics(browser_cdp(r->b), &out, r->session_id, r->req->width,
                                               r->full_page_h, r->req->device_scale_factor),
                        RENDER_CMD_TIMEOUT_MS) < 0)
            render_fail(r, 500, 1, "lost the connection to the browser");
        return;
    }
    case RENDER_RESIZE:
        if (m->type == CDP_MSG_ERROR) {
            render_fail(r, 500, 0, "cannot resize the page: %s", m->error_message);
            return;
        }
        r->scrolled = 1;
        render_settle(r);
        return;
    case RENDER_SETTLE:
        /* Whatever the frames said (a page may have navigated meanwhile):
         * readiness again, and a plain page waits for a quiet network again. */
        r->quiet_start_ns = 0;
        render_evaluate(r, 0);
        return;
    case RENDER_CAPTURE:
        render_on_capture(r, m);
        return;
    default:
        return;
    }
}

/* ---- life cycle ------------------------------------------------------------------ */

static void render_begin_cb(lws_sorted_usec_list_t *sul)
{
    struct render *r = lws_container_of(sul, struct render, wake_sul);
    struct buf out;
    browser_cmd_init(&out);
    int id = cdp_create_browser_context(browser_cdp(r->b), &out);
    if (render_send(r, &out, id, RENDER_CMD_TIMEOUT_MS) < 0)
        render_fail(r, 500, 1, "no connection to the browser");
}

static struct render *render_new(struct browser *b, struct ingest_sender *ingest, render_done_fn done, void *arg)
{
    struct render *r = xcalloc(1, sizeof(*r));
    r->b = b;
    r->ingest = ingest;
    r->done = done;
    r->arg = arg;
    r->generation = browser_generation(b);
    r->state = RENDER_CONTEXT;
    r->step_start_ns = clock_now_ns();
    render_schedule(r, &r->wake_sul, render_begin_cb, 0);
    return r;
}

/* The request's part: its deadline, its place in the browser's load. */
static void render_take(struct render *r, const struct render_request *req, int64_t deadline_ns,
                        render_done_fn done, void *arg)
{
    r->req = req;
    r->done = done;
    r->arg = arg;
    r->deadline_ns = deadline_ns;
    r->counted = 1;
    browser_load_add(r->b, 1);
    int64_t left = (deadline_ns - clock_now_ns()) / CLOCK_NS_PER_MS;
    render_schedule(r, &r->deadline_sul, render_deadline_cb, left);
}

struct render *render_start(struct browser *b, const struct render_request *req, int64_t deadline_ns,
                            struct ingest_sender *ingest, render_done_fn done, void *arg)
{
    struct render *r = render_new(b, ingest, done, arg);
    render_take(r, req, deadline_ns, done, arg);
    return r;
}

struct render *render_spare_start(struct browser *b, struct ingest_sender *ingest, render_done_fn done, void *arg)
{
    struct render *r = render_new(b, ingest, done, arg);
    r->spare = 1;
    render_schedule(r, &r->wake_sul, render_begin_cb, RENDER_SPARE_DELAY_MS);
    return r;
}

int render_claim(struct render *r, const struct render_request *req, int64_t deadline_ns, render_done_fn done,
                 void *arg)
{
    if (!r->spare || r->have_result || r->state >= RENDER_DISPOSE || browser_generation(r->b) != r->generation ||
        !browser_is_up(r->b))
        return -ESTALE;
    r->spare = 0;
    r->step_start_ns = clock_now_ns();
    render_take(r, req, deadline_ns, done, arg);
    /* The steps the spare has done took the request no time. */
    if (r->state > RENDER_CONTEXT)
        render_report_step(r, "launch");
    if (r->state > RENDER_ATTACH)
        render_report_step(r, "newPage");
    if (r->state == RENDER_CONTEXT && r->wait_id == 0)
        render_schedule(r, &r->wake_sul, render_begin_cb, 0); /* not begun yet */
    if (r->state == RENDER_PARKED)
        render_prepare(r, PREPARE_REQUEST);
    return 0;
}

const struct render_result *render_result(const struct render *r)
{
    return &r->result;
}

unsigned char *render_take_body(struct render *r, size_t *len)
{
    unsigned char *body = r->result.body;
    *len = r->result.len;
    r->result.body = NULL;
    r->result.len = 0;
    return body;
}

struct browser *render_browser(const struct render *r)
{
    return r->b;
}

void render_free(struct render *r)
{
    if (!r)
        return;
    struct lws_context *lws = browser_lws(r->b);
    lws_sul_schedule(lws, 0, &r->deadline_sul, NULL, LWS_SET_TIMER_USEC_CANCEL);
    lws_sul_schedule(lws, 0, &r->wake_sul, NULL, LWS_SET_TIMER_USEC_CANCEL);
    if (r->session_id[0])
        browser_unsubscribe(r->b, r->session_id);
    browser_forget(r->b, r);
    if (r->counted)
        browser_load_add(r->b, -1);
    for (size_t i = 0; i < r->ninflight; i++)
        free(r->inflight[i]);
    free(r->inflight);
    render_dl_dir_remove(r);
    render_send_steps(r);
    free(r->result.body);
    free((char *)r->result.error);
    free(r);
}

/* The request's client went away. Ends like any other failure, so the
 * browser context is still disposed and done is called (never from in
 * here); nothing happens if the render is already ending. */
void render_cancel(struct render *r)
{
    render_fail(r, 499, 0, "the client went away");
}

void render_abandon(struct render *r, const char *why)
{
    render_fail(r, 500, 0, "%s", why);
}
