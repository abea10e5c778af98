/* The meeting point of the HTTP thread and the browser thread. Only the
 * inbox, the job count and the cancellation marks are shared (under one
 * mutex); the wait list, the renders and the browsers belong to the browser
 * thread alone. */
#include "jobs.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "ctl.h"
#include "lines.h"
#include "log.h"
#include "memory.h"
#include "names.h"
#include "render.h"
#include "xalloc.h"

/* Memory is read this often while renders run or wait (a render's growth
 * and its end show within it), and reported to the exporter at most this
 * often; every JOBS_MEM_IDLE_NS when nothing happens. */
#define JOBS_MEM_BUSY_NS (50 * CLOCK_NS_PER_MS)
#define JOBS_MEM_REPORT_NS CLOCK_NS_PER_S
#define JOBS_MEM_IDLE_NS (5 * CLOCK_NS_PER_S)
/* A reading this recent is good enough to admit by. */
#define JOBS_MEM_FRESH_NS (25 * CLOCK_NS_PER_MS)
/* A crashed page's memory takes a moment to be given back: its render is
 * not tried again before this, and then only when there is room. */
#define JOBS_CRASH_PAUSE_NS (500 * CLOCK_NS_PER_MS)
#define JOBS_CRASH_TRIES 2
/* The renders that answered lately, whose memory may not be back yet. */
#define JOBS_ENDED_MAX 64

struct jobs {
    pthread_mutex_t lock;
    struct job *inbox, *inbox_tail; /* under lock */
    unsigned active;                /* under lock: submitted and not yet done */
    int cancels;                    /* under lock: a job was marked cancelled */
    unsigned concurrency;
    unsigned waiting_max;
    struct browser_pool *pool;
    struct ingest_sender *ingest;
    struct job *wait_head, *wait_tail; /* waiting for a browser */
    struct job *running;               /* linked through next */
    struct render **spares;            /* per browser: a page made ahead, or NULL */
    uint32_t drain_requests;           /* under lock: a bit per browser the supervisor asked to drain */
    unsigned char *draining;           /* per browser: 1 no new render, 2 and "drained" was sent */
    char *supervisor_ctl;              /* where "drained N" goes, or NULL */
    int ctl_fd;                        /* what it is sent with, or -1 */
    int stopping; /* set under lock once the browser thread is gone */
    int closed;   /* under lock: draining at shutdown, no new job */

    /* Admission by memory: the browser thread's, but tree_bytes. */
    _Atomic uint64_t tree_bytes; /* from the supervisor: 0 none yet */
    int mem_on;                  /* render_memory > 0 */
    struct memory mem;
    struct admit adm;
    struct memory_budget seen;  /* the last reading */
    int64_t read_ns;            /* when; 0: never */
    int64_t reported_ns;        /* when it last went to the exporter */
    int mem_blocked;            /* the head of the queue waits for memory */
    int mem_pressed;            /* the renders in flight may not fit: no spare pages */
    int mem_timer;              /* mem_sul is scheduled: 1 at the idle pace, 2 busy */
    lws_sorted_usec_list_t mem_sul;
    unsigned long long mem_waits, mem_retries;
    struct admit_run **runs; /* scratch: the running jobs' runs */
    unsigned runs_max;
    int64_t ended_ns[JOBS_ENDED_MAX]; /* when the last renders answered */
    unsigned ended_next;
    struct ingest_buf report; /* reused: it keeps the size the report needs */
};

struct jobs *jobs_new(const struct jobs_limits *lim, struct ingest_sender *ingest)
{
    struct jobs *s = xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->concurrency = lim->concurrency ? lim->concurrency : 1;
    s->waiting_max = lim->waiting;
    s->ingest = ingest;
    s->ctl_fd = -1;
    s->mem_on = lim->render_memory > 0;
    memory_init(&s->mem, lim->memory_budget, "/proc");
    admit_init(&s->adm, lim->render_memory);
    ingest_buf_init(&s->report);
    char where[512];
    log_info("memory budget from %s render_memory_mib=%llu memory_budget_mib=%llu%s",
             memory_describe(&s->mem, where, sizeof(where)), (unsigned long long)(lim->render_memory >> 20),
             (unsigned long long)(lim->memory_budget >> 20), s->mem_on ? "" : " admission=off");
    return s;
}

void jobs_set_pool(struct jobs *s, struct browser_pool *p)
{
    s->pool = p;
    s->spares = xcalloc(browser_pool_count(p), sizeof(*s->spares));
    s->draining = xcalloc(browser_pool_count(p), sizeof(*s->draining));
    s->runs_max = browser_pool_count(p) * s->concurrency;
    s->runs = xcalloc(s->runs_max, sizeof(*s->runs));
}

void jobs_free(struct jobs *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->lock);
    free(s->spares);
    free(s->draining);
    free(s->supervisor_ctl);
    free(s->runs);
    ingest_buf_fini(&s->report);
    memory_fini(&s->mem);
    if (s->ctl_fd >= 0)
        close(s->ctl_fd);
    free(s);
}

int jobs_submit(struct jobs *s, struct job *j)
{
    unsigned browsers = browser_pool_count(s->pool);
    pthread_mutex_lock(&s->lock);
    if (s->stopping || s->closed || s->active >= s->concurrency * browsers + s->waiting_max) {
        int rc = s->stopping || s->closed ? -ESHUTDOWN : -EBUSY;
        pthread_mutex_unlock(&s->lock);
        return rc;
    }
    s->active++;
    j->held = 1;
    j->browser = -1;
    atomic_store(&j->cancelled, 0);
    j->jobs = s;
    j->next = NULL;
    if (s->inbox_tail)
        s->inbox_tail->next = j;
    else
        s->inbox = j;
    s->inbox_tail = j;
    pthread_mutex_unlock(&s->lock);
    browser_pool_wake(s->pool);
    return 0;
}

void jobs_close(struct jobs *s)
{
    pthread_mutex_lock(&s->lock);
    s->closed = 1;
    pthread_mutex_unlock(&s->lock);
}

unsigned jobs_active(struct jobs *s)
{
    pthread_mutex_lock(&s->lock);
    unsigned n = s->active;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* Only marks the job: the browser thread alone knows where it is (inbox,
 * wait list, a render) and acts at its next wake. The mark is set only
 * while the job is held, so the browser thread never looks at a job the
 * HTTP side may have freed: a job leaves the lists before jobs_answer
 * releases it, under this same lock. */
int jobs_cancel(struct jobs *s, struct job *j)
{
    pthread_mutex_lock(&s->lock);
    int held = j->held;
    if (held) {
        atomic_store(&j->cancelled, 1);
        s->cancels = 1;
    }
    pthread_mutex_unlock(&s->lock);
    if (!held)
        return -EALREADY;
    browser_pool_wake(s->pool);
    return 0;
}

/* ---- the browser thread ------------------------------------------------ */

static void jobs_dispatch(struct jobs *s);

static void jobs_answer(struct jobs *s, struct job *j)
{
    pthread_mutex_lock(&s->lock);
    s->active--;
    j->held = 0;
    pthread_mutex_unlock(&s->lock);
    j->done(j); /* j may be freed from here on */
}

static void jobs_fail(struct jobs *s, struct job *j, unsigned status, const char *why)
{
    j->status = status;
    j->error = xstrdup(why);
    jobs_answer(s, j);
}

static void jobs_unlink(struct job **head, struct job **tail, struct job *j)
{
    struct job *prev = NULL;
    for (struct job *x = *head; x; prev = x, x = x->next) {
        if (x == j) {
            if (prev)
                prev->next = j->next;
            else
                *head = j->next;
            if (tail && *tail == j)
                *tail = prev;
            j->next = NULL;
            return;
        }
    }
}

static uint64_t jobs_reserved(struct jobs *s);

static void jobs_wait_expired(lws_sorted_usec_list_t *sul)
{
    struct job *j = lws_container_of(sul, struct job, wait_sul);
    struct jobs *s = j->jobs;
    jobs_unlink(&s->wait_head, &s->wait_tail, j);
    if (browser_pool_up_count(s->pool) == 0) {
        jobs_fail(s, j, 500, "no browser is available");
    } else if (j->mem_waited && s->mem_blocked) {
        /* 429, so the client knows to come back (api.c adds Retry-After). */
        char why[256];
        snprintf(why, sizeof(why),
                 "not enough memory for this render within its timeout: a render is expected to take %llu MiB, "
                 "%llu MiB of the %llu MiB budget are free and %llu MiB are held for the renders in flight",
                 (unsigned long long)(admit_estimate(&s->adm) >> 20), (unsigned long long)(s->seen.available >> 20),
                 (unsigned long long)(s->seen.budget >> 20),
                 (unsigned long long)(jobs_reserved(s) >> 20));
        jobs_fail(s, j, 429, why);
    } else {
        jobs_fail(s, j, 408, "timed out waiting for a free browser");
    }
}

static void jobs_enqueue(struct jobs *s, struct job *j, int front)
{
    j->next = NULL;
    if (front) {
        j->next = s->wait_head;
        s->wait_head = j;
        if (!s->wait_tail)
            s->wait_tail = j;
    } else {
        if (s->wait_tail)
            s->wait_tail->next = j;
        else
            s->wait_head = j;
        s->wait_tail = j;
    }
    int64_t left = (j->deadline_ns - clock_now_ns()) / 1000;
    lws_sul_schedule(browser_pool_lws(s->pool), 0, &j->wait_sul, jobs_wait_expired,
                     left > 0 ? left : 1);
}

/* ---- spares: a context and page kept ready per browser ------------------- */

static void jobs_spare_done(void *arg, struct render *r)
{
    struct jobs *s = arg;
    unsigned i = browser_index(render_browser(r));
    if (s->spares[i] == r)
        s->spares[i] = NULL;
    render_free(r);
    /* Not made again at once: a browser that cannot make one would spin.
     * The next render done or the next connection makes the next one. */
}

/* Made when the browser comes up and whenever a render takes the last one
 * (or has to start without one), so the next request finds its page ready
 * or on its way. */
static void jobs_spare_ensure(struct jobs *s, struct browser *b)
{
    unsigned i = browser_index(b);
    if (!s->stopping && !s->spares[i] && !s->draining[i] && !s->mem_pressed && browser_is_up(b))
        s->spares[i] = render_spare_start(b, s->ingest, jobs_spare_done, s);
}

static void jobs_spare_give_up(struct jobs *s)
{
    for (unsigned i = 0; i < browser_pool_count(s->pool); i++) {
        struct render *spare = s->spares[i];
        if (!spare)
            continue;
        s->spares[i] = NULL;
        log_info("spare page given up for memory browser=%u", i);
        render_abandon(spare, "memory is short"); /* ends through jobs_spare_done */
    }
}

/* ---- draining: a browser over its memory limit ----------------------------- */

void jobs_set_control(struct jobs *s, const char *supervisor_ctl)
{
    free(s->supervisor_ctl);
    s->supervisor_ctl = xstrdup(supervisor_ctl);
}

/* HTTP thread: the supervisor asked for browser index to be drained. */
void jobs_drain(struct jobs *s, unsigned index)
{
    pthread_mutex_lock(&s->lock);
    if (index < 32)
        s->drain_requests |= 1u << index;
    pthread_mutex_unlock(&s->lock);
    browser_pool_wake(s->pool);
}

/* Once a draining browser has no render left, the supervisor may restart it. */
static void jobs_check_drained(struct jobs *s, struct browser *b)
{
    unsigned i = browser_index(b);
    if (s->draining[i] != 1 || browser_load(b) > 0)
        return;
    s->draining[i] = 2;
    if (s->ctl_fd < 0)
        s->ctl_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    char line[CTL_LINE_MAX];
    snprintf(line, sizeof(line), "drained %u\n", i);
    int rc = s->ctl_fd < 0 ? -errno : s->supervisor_ctl ? ctl_send(s->ctl_fd, s->supervisor_ctl, line) : -ENOENT;
    if (rc < 0)
        log_warn_errno(rc, "cannot tell the supervisor a browser is drained browser=%u", i);
    else
        log_info("browser drained browser=%u", i);
}

static void jobs_start_drain(struct jobs *s, unsigned i)
{
    if (i >= browser_pool_count(s->pool) || s->draining[i])
        return;
    struct browser *b = browser_pool_get(s->pool, i);
    s->draining[i] = 1;
    log_info("draining browser: no new renders until it restarts browser=%u renders=%u", i, browser_load(b));
    struct render *spare = s->spares[i];
    s->spares[i] = NULL;
    if (spare)
        render_abandon(spare, "its browser is being drained"); /* ends through jobs_spare_done */
    jobs_check_drained(s, b);
}

/* ---- admission by memory ---------------------------------------------------- */

void jobs_set_tree_memory(struct jobs *s, uint64_t bytes)
{
    atomic_store(&s->tree_bytes, bytes);
}

/* The running jobs' runs into s->runs: how many. */
static unsigned jobs_runs(struct jobs *s)
{
    unsigned n = 0;
    for (struct job *j = s->running; j && n < s->runs_max; j = j->next)
        s->runs[n++] = &j->run;
    return n;
}

static uint64_t jobs_reserved(struct jobs *s)
{
    return admit_reserved(&s->adm, s->runs, jobs_runs(s));
}

static unsigned jobs_waiting(const struct jobs *s)
{
    unsigned n = 0;
    for (const struct job *j = s->wait_head; j; j = j->next)
        n++;
    return n;
}

static void jobs_mem_report(struct jobs *s, int64_t now)
{
    struct ingest_buf *b = &s->report;
    const struct lines_memory m = {
        .seen = s->seen,
        .reserved = s->mem_on ? (double)jobs_reserved(s) : 0,
        .estimate = s->mem_on ? (double)admit_estimate(&s->adm) : 0,
        .waiting = jobs_waiting(s),
        .mem_blocked = s->mem_blocked,
        .waits = s->mem_waits,
        .retries = s->mem_retries,
    };
    ingest_buf_reset(b);
    lines_memory(b, &m);
    ingest_send(s->ingest, b);
    s->reported_ns = now;
}

/* Read the memory now, and let the renders in flight know their share. */
static void jobs_mem_read(struct jobs *s, int64_t now)
{
    memory_set_tree(&s->mem, atomic_load(&s->tree_bytes));
    memory_read(&s->mem, &s->seen);
    s->read_ns = now;
    unsigned ending = 0;
    for (unsigned i = 0; i < JOBS_ENDED_MAX; i++)
        ending += s->ended_ns[i] && now - s->ended_ns[i] < ADMIT_ENDING_NS;
    unsigned n = jobs_runs(s);
    admit_sample(&s->adm, s->seen.used, s->runs, n, ending);
    s->mem_pressed = s->mem_on && s->seen.available < admit_reserved(&s->adm, s->runs, n);
}

static void jobs_dispatch(struct jobs *s);
static void jobs_mem_tick(lws_sorted_usec_list_t *sul);

static void jobs_mem_arm(struct jobs *s, int busy)
{
    s->mem_timer = busy ? 2 : 1;
    lws_sul_schedule(browser_pool_lws(s->pool), 0, &s->mem_sul, jobs_mem_tick,
                     (busy ? JOBS_MEM_BUSY_NS : JOBS_MEM_IDLE_NS) / 1000);
}

static void jobs_mem_tick(lws_sorted_usec_list_t *sul)
{
    struct jobs *s = lws_container_of(sul, struct jobs, mem_sul);
    s->mem_timer = 0;
    if (s->stopping)
        return;
    int64_t now = clock_now_ns();
    jobs_mem_read(s, now);
    int busy = s->running || s->wait_head;
    if (now - s->reported_ns >= (busy ? JOBS_MEM_REPORT_NS : JOBS_MEM_IDLE_NS))
        jobs_mem_report(s, now);
    if (s->wait_head)
        jobs_dispatch(s);
    /* One tick more at the busy pace after the last render: the idle
     * figure is taken as the pages it closed give their memory back. */
    jobs_mem_arm(s, busy || s->running || s->wait_head);
}

/* Something started or waits: the busy pace, if not already. */
static void jobs_mem_busy(struct jobs *s)
{
    if (s->mem_timer != 2 && !s->stopping)
        jobs_mem_arm(s, 1);
}

static void jobs_spare_give_up(struct jobs *s);

/* Whether the memory has room for j now (always, with admission off). */
static int jobs_mem_admits(struct jobs *s, struct job *j)
{
    if (!s->mem_on)
        return 1;
    int64_t now = clock_now_ns();
    if (now < j->not_before_ns) {
        s->mem_blocked = 1;
        return 0; /* the tick dispatches again */
    }
    if (now - s->read_ns >= JOBS_MEM_FRESH_NS)
        jobs_mem_read(s, now);
    unsigned n = jobs_runs(s);
    uint64_t need = admit_estimate(&s->adm), reserved = admit_reserved(&s->adm, s->runs, n);
    if (admit_fits(s->seen.budget, s->seen.available, reserved, need, n)) {
        s->mem_blocked = 0;
        return 1;
    }
    if (!j->mem_waited) {
        j->mem_waited = 1;
        s->mem_waits++;
        log_info("render waits for memory need_mib=%llu available_mib=%llu reserved_mib=%llu running=%u",
                 (unsigned long long)(need >> 20), (unsigned long long)(s->seen.available >> 20),
                 (unsigned long long)(reserved >> 20), n);
    }
    s->mem_blocked = 1;
    /* Under pressure (the renders in flight may not fit either), the pages
     * kept ready go first, and none is made until it is over. */
    if (s->mem_pressed)
        jobs_spare_give_up(s);
    return 0;
}

static struct render *jobs_render_start(struct jobs *s, struct browser *b, struct job *j);

/* The steps of the render that answers go with the answer, for the log:
 * each step once (its times summed, should one ever come twice). */
static void jobs_keep_steps(struct job *j, const struct render_result *res)
{
    j->nsteps = 0;
    for (unsigned i = 0; i < res->nsteps; i++) {
        unsigned k = 0;
        while (k < j->nsteps && strcmp(j->steps[k].name, res->steps[i].name) != 0)
            k++;
        if (k == j->nsteps)
            j->steps[j->nsteps++] = (struct render_step){ res->steps[i].name, 0 };
        j->steps[k].seconds += res->steps[i].seconds;
    }
}

static void jobs_render_done(void *arg, struct render *r)
{
    struct job *j = arg;
    struct jobs *s = j->jobs;
    const struct render_result *res = render_result(r);
    struct browser *b = render_browser(r);
    jobs_unlink(&s->running, NULL, j);
    j->render = NULL;
    int64_t now = clock_now_ns();
    s->ended_ns[s->ended_next++ % JOBS_ENDED_MAX] = now;
    /* A page that crashed in a browser that is still up. */
    int page_crash = res->status != 200 && res->crashed && s->mem_on && browser_is_up(b);
    if (page_crash && j->crashes < JOBS_CRASH_TRIES && now < j->deadline_ns && !atomic_load(&j->cancelled)) {
        /* Most likely the kernel ended the page for memory: it took more
         * than it was given. Tried again, first in the queue, once its
         * memory is back and there is room for it by the grown estimate. */
        admit_crashed(&s->adm, &j->run);
        j->crashes++;
        s->mem_retries++;
        log_warn("render's page crashed; it is tried again when there is memory for it browser=%u "
                 "peak_mib=%llu estimate_mib=%llu error=\"%s\"",
                 browser_index(b), (unsigned long long)(j->run.peak >> 20),
                 (unsigned long long)(admit_estimate(&s->adm) >> 20), res->error);
        j->not_before_ns = now + JOBS_CRASH_PAUSE_NS;
        j->failed_on = NULL;
        render_free(r);
        jobs_check_drained(s, b);
        jobs_enqueue(s, j, 1);
        jobs_dispatch(s);
        return;
    }
    if (res->status != 200 && res->retryable && !page_crash && j->tries < 2 + j->crashes && now < j->deadline_ns &&
        !atomic_load(&j->cancelled)) {
        log_info("render retried on another browser browser=%u error=\"%s\"", browser_index(b), res->error);
        j->failed_on = b;
        render_free(r);
        jobs_spare_ensure(s, b);
        jobs_check_drained(s, b);
        jobs_enqueue(s, j, 1);
        jobs_dispatch(s);
        return;
    }
    j->status = res->status;
    j->browser = (int)browser_index(b);
    jobs_keep_steps(j, res);
    j->steps_ns = res->steps_ns;
    j->page_kind = res->ready_seen ? res->kind : NULL;
    memcpy(j->rule_ms, res->rule_ms, sizeof(j->rule_ms));
    j->page_log = res->page_log;
    j->page_errors = res->page_errors;
    j->page_failed = res->page_failed;
    if (res->status == 200 && s->mem_on) {
        admit_measured(&s->adm, &j->run);
        log_debug("render memory measured peak_mib=%llu expected_mib=%llu estimate_mib=%llu",
                  (unsigned long long)(j->run.peak >> 20), (unsigned long long)(j->run.expected >> 20),
                  (unsigned long long)(admit_estimate(&s->adm) >> 20));
    }
    if (res->status == 200) {
        j->content_type = res->content_type;
        j->filename = res->filename ? xstrdup(res->filename) : NULL;
        j->body = render_take_body(r, &j->len);
    } else {
        j->error = xstrdup(res->error ? res->error : "render failed");
    }
    render_free(r);
    jobs_answer(s, j);
    jobs_spare_ensure(s, b);
    jobs_check_drained(s, b);
    jobs_dispatch(s);
}

/* The browser's spare if it can still serve, else a render from scratch. */
static struct render *jobs_render_start(struct jobs *s, struct browser *b, struct job *j)
{
    unsigned i = browser_index(b);
    struct render *spare = s->spares[i];
    if (spare) {
        s->spares[i] = NULL;
        if (render_claim(spare, &j->req, j->deadline_ns, jobs_render_done, j) == 0) {
            /* The next one gets made while this render waits on its page. */
            jobs_spare_ensure(s, b);
            return spare;
        }
        /* It ends through jobs_spare_done, which frees it. */
    }
    struct render *r = render_start(b, &j->req, j->deadline_ns, s->ingest, jobs_render_done, j);
    jobs_spare_ensure(s, b);
    return r;
}

/* A browser silent this long with commands waiting is passed over while
 * another can take the render (the supervisor's probe will restart it if
 * it is hung). */
#define JOBS_SILENT_NS (2 * CLOCK_NS_PER_S)

/* The least loaded browser that can take a render: one that is answering
 * and is not avoid (where the job failed) first, any other after that. */
static struct browser *jobs_pick(struct jobs *s, struct browser *avoid)
{
    int64_t now = clock_now_ns();
    for (int pass = 0; pass < 2; pass++) {
        struct browser *best = NULL;
        for (unsigned i = 0; i < browser_pool_count(s->pool); i++) {
            struct browser *b = browser_pool_get(s->pool, i);
            if (!browser_is_up(b) || browser_load(b) >= s->concurrency || s->draining[i])
                continue;
            if (pass == 0 && (b == avoid || browser_silent_ns(b, now) > JOBS_SILENT_NS))
                continue;
            if (!best || browser_load(b) < browser_load(best))
                best = b;
        }
        if (best)
            return best;
    }
    return NULL;
}

/* First come, first served: while the head of the queue waits for memory,
 * the jobs behind it wait too (a small render would otherwise pass a large
 * one for ever). */
static void jobs_dispatch(struct jobs *s)
{
    if (s->wait_head)
        jobs_mem_busy(s);
    while (!s->stopping && s->wait_head) {
        struct job *j = s->wait_head;
        struct browser *b = jobs_pick(s, j->failed_on);
        if (!b) {
            s->mem_blocked = 0; /* it waits for a browser */
            return;
        }
        if (!atomic_load(&j->cancelled) && !jobs_mem_admits(s, j))
            return;
        jobs_unlink(&s->wait_head, &s->wait_tail, j);
        lws_sul_schedule(browser_pool_lws(s->pool), 0, &j->wait_sul, NULL, LWS_SET_TIMER_USEC_CANCEL);
        if (atomic_load(&j->cancelled)) {
            jobs_fail(s, j, 499, "the client went away");
            continue;
        }
        if (j->tries++ == 0)
            j->began_ns = clock_now_ns();
        j->run = (struct admit_run){ .expected = admit_estimate(&s->adm) };
        j->next = s->running;
        s->running = j;
        j->render = jobs_render_start(s, b, j);
    }
    if (!s->wait_head)
        s->mem_blocked = 0;
}

/* A waiting job is answered 499 at once; a running one is stopped through
 * its render's failure path (so its context is still disposed) and answered
 * when that ends. render_cancel never calls back from inside, so the
 * running list stays as it is while we walk it. */
static void jobs_stop_cancelled(struct jobs *s)
{
    for (struct job *j = s->wait_head, *next; j; j = next) {
        next = j->next;
        if (!atomic_load(&j->cancelled))
            continue;
        jobs_unlink(&s->wait_head, &s->wait_tail, j);
        lws_sul_schedule(browser_pool_lws(s->pool), 0, &j->wait_sul, NULL, LWS_SET_TIMER_USEC_CANCEL);
        jobs_fail(s, j, 499, "the client went away");
    }
    for (struct job *j = s->running; j; j = j->next)
        if (atomic_load(&j->cancelled))
            render_cancel(j->render);
}

void jobs_wake(void *arg)
{
    struct jobs *s = arg;
    pthread_mutex_lock(&s->lock);
    struct job *in = s->inbox;
    s->inbox = s->inbox_tail = NULL;
    int cancels = s->cancels;
    s->cancels = 0;
    uint32_t drains = s->drain_requests;
    s->drain_requests = 0;
    pthread_mutex_unlock(&s->lock);
    for (unsigned i = 0; drains; i++, drains >>= 1)
        if (drains & 1)
            jobs_start_drain(s, i);
    while (in) {
        struct job *j = in;
        in = j->next;
        jobs_enqueue(s, j, 0);
    }
    if (cancels)
        jobs_stop_cancelled(s);
    jobs_dispatch(s);
}

void jobs_changed(void *arg, struct browser *b, int up)
{
    struct jobs *s = arg;
    if (!up)
        return; /* its spare, if any, fails with the connection */
    s->draining[browser_index(b)] = 0; /* a new browser: restarted, or never drained */
    if (!s->mem_timer)
        jobs_mem_arm(s, 0);
    jobs_dispatch(s);
    jobs_spare_ensure(s, b);
}

void jobs_abort_all(struct jobs *s)
{
    pthread_mutex_lock(&s->lock);
    s->stopping = 1; /* jobs_submit refuses from now on */
    pthread_mutex_unlock(&s->lock);
    lws_sul_cancel(&s->mem_sul);
    jobs_wake(s); /* take the inbox in */
    for (unsigned i = 0; s->spares && i < browser_pool_count(s->pool); i++) {
        render_free(s->spares[i]);
        s->spares[i] = NULL;
    }
    while (s->running) {
        struct job *j = s->running;
        s->running = j->next;
        render_free(j->render);
        j->render = NULL;
        jobs_fail(s, j, 503, "the renderer is shutting down");
    }
    while (s->wait_head) {
        struct job *j = s->wait_head;
        jobs_unlink(&s->wait_head, &s->wait_tail, j);
        lws_sul_schedule(browser_pool_lws(s->pool), 0, &j->wait_sul, NULL, LWS_SET_TIMER_USEC_CANCEL);
        jobs_fail(s, j, 503, "the renderer is shutting down");
    }
}
