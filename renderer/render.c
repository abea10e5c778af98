/* One render's I/O around its state machine (rsm.c): replies, events and
 * timers of the browser thread go in as events; the commands, timers, file
 * reads and the end that the machine asks for are done here. Runs on the
 * browser pool's thread. */
#include "render.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "intercept.h"
#include "lines.h"
#include "log.h"
#include "pagelog.h"
#include "rsm.h"
#include "trace.h"
#include "xalloc.h"

_Static_assert(RENDER_STEPS_MAX == RSM_STEPS_MAX, "a render's steps fit its result");
_Static_assert(RENDER_FILENAME_MAX == RSM_FILENAME_MAX, "a csv's name fits its result");

struct render {
    struct rsm m;
    struct browser *b;
    struct ingest_sender *ingest;
    render_done_fn done;
    void *arg;
    unsigned generation;
    int counted;     /* counted in its browser's load */
    int subscribed;  /* to its page's session */
    int finished;    /* done is called, or is on its way */
    char *dl_dir;    /* csv: a private folder the browser downloads into */
    unsigned nsent;  /* steps sent to the exporter (render_send_steps) */
    struct render_result result;
    struct intercept icpt; /* allowed_hosts on the page's requests */
    struct pagelog pl;     /* the page's console and failed requests, when on */
    lws_sorted_usec_list_t deadline_sul;
    lws_sorted_usec_list_t wake_sul;
    lws_sorted_usec_list_t finish_sul;
};

static void render_run(struct render *r, struct rsm_input *in);

static struct rsm_env render_env(struct render *r)
{
    return (struct rsm_env){
        .cdp = browser_cdp(r->b),
        .cmd_reserve = LWS_PRE,
        .conn_ok = browser_generation(r->b) == r->generation && browser_is_up(r->b),
        .dl_dir = r->dl_dir,
        .intercept = 1,
    };
}

/* ---- reports ----------------------------------------------------------------------- */

/* A render's step times (and what held its readiness back) go out in one
 * datagram when it ends: the exporter's socket queues only a few datagrams
 * (net.unix.max_dgram_qlen, 10 by default), and a datagram per step lost
 * counts under bursts of renders. */
static void render_send_steps(struct render *r)
{
    const struct rsm_result *res = &r->m.result;
    if (r->nsent == res->nsteps)
        return;
    struct ingest_buf buf, *ib = &buf;
    ingest_buf_init(ib);
    for (unsigned i = r->nsent; i < res->nsteps; i++)
        lines_step(ib, res->steps[i].step, res->steps[i].seconds);
    if (res->ready_done && r->nsent == 0)
        lines_rules(ib, res->rule_ms);
    intercept_report(ib);
    tracer_report(ib);
    /* The browser's version again: an exporter that restarted since the
     * browser connected has it back with the next render. */
    const char *product = browser_product(r->b);
    if (product)
        lines_browser_info(ib, product);
    ingest_send(r->ingest, ib);
    ingest_buf_fini(ib);
    r->nsent = res->nsteps;
}

/* ---- csv: the download folder --------------------------------------------------- */

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

/* The downloaded file, whole, or why not (-EFBIG past RSM_CSV_MAX). */
static void render_dl_read(struct render *r, struct rsm_input *in)
{
    char path[PATH_MAX];
    in->ev = RSM_EV_FILE;
    if (rsm_download_path(&r->m, r->dl_dir, path, sizeof(path)) < 0) {
        in->err = -ENOENT;
        return;
    }
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        in->err = -errno;
        return;
    }
    struct buf body;
    buf_init(&body);
    char chunk[16384];
    ssize_t got;
    while ((got = read(fd, chunk, sizeof(chunk))) > 0 && body.len + (size_t)got <= RSM_CSV_MAX)
        buf_append(&body, chunk, (size_t)got);
    int err = got < 0 ? errno : 0;
    close(fd);
    if (got != 0) {
        buf_fini(&body);
        in->err = err ? -err : -EFBIG;
        return;
    }
    in->data = (unsigned char *)body.data;
    in->len = body.len;
}

/* ---- carrying out what the machine asks -------------------------------------- */

static void render_reply(void *arg, int id, const struct cdp_msg *m, int err);
static void render_event(void *arg, const struct cdp_msg *m);

static void render_finish_cb(lws_sorted_usec_list_t *sul)
{
    struct render *r = lws_container_of(sul, struct render, finish_sul);
    r->done(r->arg, r);
}

static void render_wake_cb(lws_sorted_usec_list_t *sul)
{
    struct render *r = lws_container_of(sul, struct render, wake_sul);
    struct rsm_input in = { .ev = RSM_EV_WAKE };
    render_run(r, &in);
}

static void render_deadline_cb(lws_sorted_usec_list_t *sul)
{
    struct render *r = lws_container_of(sul, struct render, deadline_sul);
    struct rsm_input in = { .ev = RSM_EV_DEADLINE };
    render_run(r, &in);
}

static void render_schedule(struct render *r, lws_sorted_usec_list_t *sul, sul_cb_t cb, int64_t us)
{
    lws_sul_schedule(browser_lws(r->b), 0, sul, cb, us <= 0 ? 1 : (lws_usec_t)us);
}

static void render_cancel_timer(struct render *r, lws_sorted_usec_list_t *sul)
{
    lws_sul_schedule(browser_lws(r->b), 0, sul, NULL, LWS_SET_TIMER_USEC_CANCEL);
}

static void render_log_failure(struct render *r)
{
    const struct rsm_result *res = &r->m.result;
    /* The reason may quote a value: keep the log line one quoted field. */
    char logged[512];
    size_t n = 0;
    for (const char *p = res->error ? res->error : ""; *p && n + 1 < sizeof(logged); p++)
        logged[n++] = *p == '"' ? '\'' : *p;
    logged[n] = '\0';
    if (r->m.spare || !r->m.req)
        log_info("spare page failed browser=%u step=%s status=%u error=\"%s\"", browser_index(r->b),
                 res->failed_step, res->status, logged);
    else
        log_info("render failed render_id=%llu browser=%u step=%s status=%u error=\"%s\"", r->m.req->id,
                 browser_index(r->b), res->failed_step, res->status, logged);
}

/* Step the machine with in, then do what it says; a command that cannot be
 * sent comes back as its reply's failure, until nothing more is asked. */
static void render_run(struct render *r, struct rsm_input *in)
{
    struct rsm_input next;
    for (;;) {
        struct rsm_env env = render_env(r);
        struct rsm_out out;
        rsm_step(&r->m, &env, in, clock_now_ns(), &out);
        if (out.failed)
            render_log_failure(r);
        if (out.dispose_failed)
            log_warn("cannot dispose of a browser context browser=%u context=%s", browser_index(r->b),
                     r->m.context_id);
        if (out.forget) {
            browser_forget(r->b, r);
            intercept_forget(&r->icpt);
            pagelog_forget(&r->pl);
            r->subscribed = 0; /* forget drops the subscription too */
        }
        if (out.unsubscribe[0])
            browser_unsubscribe(r->b, out.unsubscribe);
        int again = 0;
        if (out.subscribe && !r->subscribed) {
            if (browser_subscribe(r->b, rsm_session(&r->m), render_event, r) == 0) {
                r->subscribed = 1;
                /* before the preparation's commands: enabled before the
                 * page navigates, which waits for those */
                pagelog_attached(&r->pl, rsm_session(&r->m));
            } else {
                next = (struct rsm_input){ .ev = RSM_EV_ABANDON, .why = "cannot attach to the page" };
                again = 1;
            }
        }
        for (unsigned i = 0; i < out.ncmds; i++) {
            struct rsm_cmd *c = &out.cmds[i];
            if (again || browser_submit(r->b, &c->text, c->id, c->timeout_ms, render_reply, r) < 0) {
                buf_fini(&c->text);
                if (!again) {
                    next = (struct rsm_input){ .ev = RSM_EV_REPLY, .id = c->id, .err = -ECONNRESET };
                    again = 1;
                }
            }
        }
        if (out.wake_cancel)
            render_cancel_timer(r, &r->wake_sul);
        if (out.wake_ns)
            render_schedule(r, &r->wake_sul, render_wake_cb, (out.wake_ns - clock_now_ns()) / 1000);
        if (out.finish && !r->finished) {
            r->finished = 1;
            intercept_log(&r->icpt);
            pagelog_end(&r->pl);
            render_send_steps(r);
            render_cancel_timer(r, &r->deadline_sul);
            render_schedule(r, &r->finish_sul, render_finish_cb, 0);
        }
        if (!again && out.read_file) {
            next = (struct rsm_input){ 0 };
            render_dl_read(r, &next);
            again = 1;
        }
        if (!again)
            return;
        in = &next;
    }
}

static void render_reply(void *arg, int id, const struct cdp_msg *m, int err)
{
    struct render *r = arg;
    struct rsm_input in = { .ev = RSM_EV_REPLY, .msg = m, .err = err, .id = id };
    if (!m && err == 0)
        return;
    render_run(r, &in);
}

static void render_event(void *arg, const struct cdp_msg *m)
{
    struct render *r = arg;
    if (!m) {
        r->subscribed = 0; /* gone with the connection */
        struct rsm_input in = { .ev = RSM_EV_LOST };
        render_run(r, &in);
        return;
    }
    pagelog_event(&r->pl, m);
    if (intercept_event(&r->icpt, rsm_session(&r->m), m))
        return;
    struct rsm_input in = { .ev = RSM_EV_CDP, .msg = m };
    render_run(r, &in);
}

/* ---- life cycle ------------------------------------------------------------------ */

static void render_begin_cb(lws_sorted_usec_list_t *sul)
{
    struct render *r = lws_container_of(sul, struct render, wake_sul);
    struct rsm_input in = { .ev = RSM_EV_BEGIN };
    render_run(r, &in);
}

static struct render *render_new(struct browser *b, const struct render_request *req, int64_t deadline_ns,
                                 struct ingest_sender *ingest, render_done_fn done, void *arg)
{
    struct render *r = xcalloc(1, sizeof(*r));
    r->b = b;
    r->ingest = ingest;
    r->done = done;
    r->arg = arg;
    r->generation = browser_generation(b);
    rsm_init(&r->m, req, deadline_ns, clock_now_ns());
    intercept_init(&r->icpt, b);
    pagelog_init(&r->pl, b);
    r->icpt.pagelog = &r->pl;
    return r;
}

/* The request's part: its deadline, its place in the browser's load, and
 * for a csv its download folder (when it cannot be made, the machine fails
 * the render when it gets to the download). */
static void render_take(struct render *r, const struct render_request *req, int64_t deadline_ns,
                        render_done_fn done, void *arg)
{
    r->done = done;
    r->arg = arg;
    r->counted = 1;
    browser_load_add(r->b, 1);
    intercept_set_trace(&r->icpt, req->url, req->traceparent, req->tracestate);
    render_schedule(r, &r->deadline_sul, render_deadline_cb, (deadline_ns - clock_now_ns()) / 1000);
    if (req->encoding == QUERY_ENCODING_CSV && render_dl_dir_make(r) < 0)
        log_warn_errno(-errno, "cannot make a folder for the download");
}

struct render *render_start(struct browser *b, const struct render_request *req, int64_t deadline_ns,
                            struct ingest_sender *ingest, render_done_fn done, void *arg)
{
    struct render *r = render_new(b, req, deadline_ns, ingest, done, arg);
    render_take(r, req, deadline_ns, done, arg);
    pagelog_begin(&r->pl, req);
    render_schedule(r, &r->wake_sul, render_begin_cb, 0);
    return r;
}

struct render *render_spare_start(struct browser *b, struct ingest_sender *ingest, render_done_fn done, void *arg)
{
    struct render *r = render_new(b, NULL, 0, ingest, done, arg);
    render_schedule(r, &r->wake_sul, render_begin_cb, (int64_t)RSM_SPARE_DELAY_MS * 1000);
    return r;
}

int render_claim(struct render *r, const struct render_request *req, int64_t deadline_ns, render_done_fn done,
                 void *arg)
{
    struct rsm_env env = render_env(r);
    if (!rsm_claimable(&r->m, &env))
        return -ESTALE;
    if (r->m.state == RSM_CONTEXT && !r->m.wait_id)
        render_cancel_timer(r, &r->wake_sul); /* its delayed begin: the claim begins it */
    render_take(r, req, deadline_ns, done, arg);
    pagelog_begin(&r->pl, req);
    /* A spare attached while page logs were off, turned on by a reload
     * since: its domains now, still before the claim's navigation. */
    if (r->subscribed)
        pagelog_attached(&r->pl, rsm_session(&r->m));
    struct rsm_input in = { .ev = RSM_EV_CLAIM, .req = req, .deadline_ns = deadline_ns };
    render_run(r, &in);
    return 0;
}

/* The machine's result in the form jobs.c reads, the step names resolved. */
const struct render_result *render_result(struct render *r)
{
    const struct rsm_result *res = &r->m.result;
    struct render_result *out = &r->result;
    out->status = res->status;
    out->content_type = res->content_type;
    out->filename = res->filename;
    out->body = res->body;
    out->len = res->len;
    out->error = res->error;
    out->retryable = res->retryable;
    out->crashed = res->crashed;
    out->failed_step = res->failed_step;
    out->nsteps = res->nsteps;
    out->steps_ns = res->steps_ns;
    for (unsigned i = 0; i < res->nsteps; i++)
        out->steps[i] = (struct render_step){ names_steps[res->steps[i].step], res->steps[i].seconds };
    out->kind = ready_kind_name(res->kind);
    out->ready_done = res->ready_done;
    out->ready_seen = res->ready_seen;
    for (int i = 0; i < NAMES_RULE_COUNT; i++)
        out->rule_ms[i] = res->rule_ms[i];
    out->page_log = r->pl.counted;
    out->page_errors = r->pl.errors;
    out->page_failed = r->pl.failed;
    return out;
}

unsigned char *render_take_body(struct render *r, size_t *len)
{
    unsigned char *body = r->m.result.body;
    *len = r->m.result.len;
    r->m.result.body = NULL;
    r->m.result.len = 0;
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
    render_cancel_timer(r, &r->deadline_sul);
    render_cancel_timer(r, &r->wake_sul);
    render_cancel_timer(r, &r->finish_sul);
    const char *session = rsm_session(&r->m);
    if (session[0])
        browser_unsubscribe(r->b, session);
    intercept_forget(&r->icpt);
    pagelog_forget(&r->pl);
    pagelog_fini(&r->pl);
    browser_forget(r->b, r);
    if (r->counted)
        browser_load_add(r->b, -1);
    render_dl_dir_remove(r);
    render_send_steps(r);
    rsm_fini(&r->m);
    free(r);
}

/* The request's client went away. Ends like any other failure, so the
 * browser context is still disposed and done is called (never from in
 * here); nothing happens if the render is already ending. */
void render_cancel(struct render *r)
{
    struct rsm_input in = { .ev = RSM_EV_CANCEL };
    render_run(r, &in);
}

void render_abandon(struct render *r, const char *why)
{
    struct rsm_input in = { .ev = RSM_EV_ABANDON, .why = why };
    render_run(r, &in);
}
