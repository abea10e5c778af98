/* The exporting half of tracing: a bounded queue of finished renders'
 * spans that the HTTP thread fills without waiting, and a thread of its own
 * that posts them in batches to the collector with libcurl (OTLP/HTTP,
 * JSON). A full queue or a collector that fails or hangs costs spans, which
 * are counted and logged at most once a minute, never a render's time.
 * libcurl is loaded (dlopen) only when tracing is on: linked, it and what
 * it links cost every renderer 1.2 MiB of memory with tracing off. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "clock.h"
#include "lines.h"
#include "log.h"
#include "trace.h"
#include "xalloc.h"

/* libcurl's functions this file calls, from the library loaded at the
 * first tracer_new (never unloaded: libcurl's global state stays valid). */
struct tracer_curl {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *curl, CURLoption option, ...);
    CURLcode (*easy_perform)(CURL *curl);
    CURLcode (*easy_getinfo)(CURL *curl, CURLINFO info, ...);
    const char *(*easy_strerror)(CURLcode code);
    void (*easy_cleanup)(CURL *curl);
    struct curl_slist *(*slist_append)(struct curl_slist *list, const char *text);
    void (*slist_free_all)(struct curl_slist *list);
};
static struct tracer_curl tc;

/* Debian's libcurl4-gnutls-dev builds against libcurl-gnutls.so.4; any
 * libcurl of ABI 4 has these functions. */
static const char *const tracer_curl_libs[] = { "libcurl-gnutls.so.4", "libcurl.so.4" };

/* 0, or -ENOENT with why naming what is missing. */
static int tracer_curl_load(char *why, size_t why_len)
{
    if (tc.easy_init)
        return 0;
    void *lib = NULL;
    for (size_t i = 0; !lib && i < sizeof(tracer_curl_libs) / sizeof(tracer_curl_libs[0]); i++)
        lib = dlopen(tracer_curl_libs[i], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(why, why_len, "cannot load libcurl (libcurl-gnutls.so.4 or libcurl.so.4: install libcurl3-gnutls): %s",
                 dlerror());
        return -ENOENT;
    }
    struct {
        const char *name;
        void **fn;
    } syms[] = {
        { "curl_global_init", (void **)&tc.global_init },     { "curl_easy_init", (void **)&tc.easy_init },
        { "curl_easy_setopt", (void **)&tc.easy_setopt },     { "curl_easy_perform", (void **)&tc.easy_perform },
        { "curl_easy_getinfo", (void **)&tc.easy_getinfo },   { "curl_easy_strerror", (void **)&tc.easy_strerror },
        { "curl_easy_cleanup", (void **)&tc.easy_cleanup },   { "curl_slist_append", (void **)&tc.slist_append },
        { "curl_slist_free_all", (void **)&tc.slist_free_all },
    };
    for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
        if (!(*syms[i].fn = dlsym(lib, syms[i].name))) {
            snprintf(why, why_len, "libcurl has no %s", syms[i].name);
            memset(&tc, 0, sizeof(tc));
            dlclose(lib);
            return -ENOENT;
        }
    }
    return 0;
}

/* Renders queued at most (each one span and its steps', about 2 KiB):
 * twenty seconds of a busy renderer's renders. */
#define TRACER_QUEUE_MAX 256
/* Renders in one export. */
#define TRACER_BATCH_MAX 64
/* A batch waits this long for more renders before it goes. */
#define TRACER_BATCH_DELAY_NS (1000 * CLOCK_NS_PER_MS)
/* Drops are logged at most this often. */
#define TRACER_LOG_EVERY_NS (60 * CLOCK_NS_PER_S)
/* At shutdown, what is left gets at most this long. */
#define TRACER_FLUSH_MAX_MS 2000

struct tracer {
    char *endpoint;
    char *service_name;
    double sample_ratio;
    long timeout_ms;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct trace_render *queue; /* a ring of TRACER_QUEUE_MAX */
    size_t head, count;
    int64_t first_ns;           /* when the oldest queued render came */
    int stopping;
    pthread_t thread;
    /* The exporter thread's own. */
    CURL *curl;
    struct curl_slist *headers;
    struct trace_render batch[TRACER_BATCH_MAX];
    int64_t logged_ns;
    unsigned long long logged_full, logged_failed;
    /* Any thread. */
    atomic_ullong dropped_full, dropped_failed, exported;
    atomic_llong give_up_ns; /* set at shutdown: an export still going then ends by this time */
};

/* The renderer's one tracer, for the render reports of the browser
 * thread: set before that thread starts, cleared after it has ended. */
static struct tracer *tracer_active;

static size_t tracer_discard(char *data, size_t size, size_t n, void *arg)
{
    (void)data;
    (void)arg;
    return size * n;
}

/* A post under way at shutdown ends by give_up_ns: the renderer's stop
 * must not wait for a collector's timeout. */
static int tracer_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    struct tracer *t = arg;
    int64_t give_up = atomic_load(&t->give_up_ns);
    return give_up && clock_now_ns() > give_up;
}

/* One POST of n renders' spans: 0, or -EIO with why set. */
static int tracer_post(struct tracer *t, size_t n, long timeout_ms, char *why, size_t why_len)
{
    size_t len;
    char *body = trace_otlp_json(t->service_name, t->batch, n, &len);
    tc.easy_setopt(t->curl, CURLOPT_POSTFIELDS, body);
    tc.easy_setopt(t->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    tc.easy_setopt(t->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    tc.easy_setopt(t->curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    CURLcode rc = tc.easy_perform(t->curl);
    free(body);
    long status = 0;
    tc.easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) {
        snprintf(why, why_len, "%s", tc.easy_strerror(rc));
        return -EIO;
    }
    if (status < 200 || status > 299) {
        snprintf(why, why_len, "the collector answered HTTP %ld", status);
        return -EIO;
    }
    return 0;
}

/* What was dropped since the last line, at most once a minute; the first
 * failure of a quiet collector at once, so a wrong endpoint shows at start. */
static void tracer_log_drops(struct tracer *t, const char *why, int64_t now)
{
    unsigned long long full = atomic_load(&t->dropped_full), failed = atomic_load(&t->dropped_failed);
    if (full == t->logged_full && failed == t->logged_failed)
        return;
    if (t->logged_ns && now - t->logged_ns < TRACER_LOG_EVERY_NS)
        return;
    log_warn("tracing dropped spans of renders endpoint=%s queue_full=%llu export_failed=%llu "
             "total_queue_full=%llu total_export_failed=%llu error=\"%s\"",
             t->endpoint, full - t->logged_full, failed - t->logged_failed, full, failed, why ? why : "");
    t->logged_ns = now;
    t->logged_full = full;
    t->logged_failed = failed;
}

static void *tracer_main(void *arg)
{
    struct tracer *t = arg;
    pthread_setname_np(pthread_self(), "rv-tracing");
    char why[256] = "";
    pthread_mutex_lock(&t->lock);
    for (;;) {
        /* Wait for a batch: full, old enough, or the end. */
        while (!t->stopping) {
            if (t->count >= TRACER_BATCH_MAX)
                break;
            int64_t now = clock_now_ns();
            if (t->count && now - t->first_ns >= TRACER_BATCH_DELAY_NS)
                break;
            /* clock_now_ns is CLOCK_MONOTONIC, the condition's clock */
            int64_t until = t->count ? t->first_ns + TRACER_BATCH_DELAY_NS : now + TRACER_LOG_EVERY_NS;
            struct timespec ts = { .tv_sec = until / CLOCK_NS_PER_S, .tv_nsec = until % CLOCK_NS_PER_S };
            pthread_cond_timedwait(&t->cond, &t->lock, &ts);
            pthread_mutex_unlock(&t->lock);
            tracer_log_drops(t, why, clock_now_ns());
            pthread_mutex_lock(&t->lock);
        }
        if (t->stopping && t->count == 0)
            break;
        size_t n = t->count < TRACER_BATCH_MAX ? t->count : TRACER_BATCH_MAX;
        for (size_t i = 0; i < n; i++)
            t->batch[i] = t->queue[(t->head + i) % TRACER_QUEUE_MAX];
        t->head = (t->head + n) % TRACER_QUEUE_MAX;
        t->count -= n;
        /* What is left came before now, yet waits a batch delay of its own
         * from here (or until it fills a batch): a burst goes as full
         * batches, its tail within the delay after them. */
        t->first_ns = clock_now_ns();
        int last = t->stopping;
        pthread_mutex_unlock(&t->lock);

        unsigned long long spans = 0;
        for (size_t i = 0; i < n; i++)
            spans += 1 + t->batch[i].nsteps;
        long timeout = t->timeout_ms;
        if (last) {
            int64_t left = (atomic_load(&t->give_up_ns) - clock_now_ns()) / CLOCK_NS_PER_MS;
            timeout = left < 1 ? 1 : left < timeout ? (long)left : timeout;
        }
        int failed = tracer_post(t, n, timeout, why, sizeof(why)) < 0;
        atomic_fetch_add(failed ? &t->dropped_failed : &t->exported, spans);
        tracer_log_drops(t, why, clock_now_ns());

        pthread_mutex_lock(&t->lock);
        if (last && t->count && (failed || clock_now_ns() >= atomic_load(&t->give_up_ns))) {
            /* At shutdown the rest goes while the collector takes it, and
             * within the time given; otherwise it is dropped. */
            for (size_t i = 0; i < t->count; i++)
                atomic_fetch_add(&t->dropped_failed, 1 + t->queue[(t->head + i) % TRACER_QUEUE_MAX].nsteps);
            t->count = 0;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

struct tracer *tracer_new(const struct config *cfg)
{
    if (!cfg->tracing.endpoint || !cfg->tracing.endpoint[0])
        return NULL;
    char why[256];
    if (tracer_curl_load(why, sizeof(why)) < 0) {
        log_error("cannot start tracing, renders go on without it endpoint=%s error=\"%s\"", cfg->tracing.endpoint,
                  why);
        errno = ENOENT;
        return NULL;
    }
    CURLcode crc = tc.global_init(CURL_GLOBAL_DEFAULT);
    if (crc != CURLE_OK) {
        log_error("cannot start tracing, renders go on without it endpoint=%s error=\"libcurl: %s\"",
                  cfg->tracing.endpoint, tc.easy_strerror(crc));
        errno = EIO;
        return NULL;
    }
    struct tracer *t = xcalloc(1, sizeof(*t));
    t->endpoint = xstrdup(cfg->tracing.endpoint);
    t->service_name = xstrdup(cfg->tracing.service_name);
    t->sample_ratio = cfg->tracing.sample_ratio;
    t->timeout_ms = (long)(cfg->tracing.timeout_ns / CLOCK_NS_PER_MS);
    t->queue = xcalloc(TRACER_QUEUE_MAX, sizeof(*t->queue));
    atomic_init(&t->dropped_full, 0);
    atomic_init(&t->dropped_failed, 0);
    atomic_init(&t->exported, 0);
    atomic_init(&t->give_up_ns, 0);
    pthread_mutex_init(&t->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cond, &ca);
    pthread_condattr_destroy(&ca);
    t->curl = tc.easy_init();
    if (!t->curl)
        abort(); /* out of memory */
    t->headers = tc.slist_append(NULL, "Content-Type: application/json");
    tc.easy_setopt(t->curl, CURLOPT_URL, t->endpoint);
    tc.easy_setopt(t->curl, CURLOPT_HTTPHEADER, t->headers);
    tc.easy_setopt(t->curl, CURLOPT_USERAGENT, "rendervisor/" RENDERVISOR_VERSION);
    tc.easy_setopt(t->curl, CURLOPT_NOSIGNAL, 1L);
    tc.easy_setopt(t->curl, CURLOPT_WRITEFUNCTION, tracer_discard);
    tc.easy_setopt(t->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    tc.easy_setopt(t->curl, CURLOPT_XFERINFOFUNCTION, tracer_progress);
    tc.easy_setopt(t->curl, CURLOPT_XFERINFODATA, t);
    tc.easy_setopt(t->curl, CURLOPT_NOPROGRESS, 0L);
    int err = pthread_create(&t->thread, NULL, tracer_main, t);
    if (err) {
        log_error_errno(-err, "cannot start the tracing thread");
        tc.slist_free_all(t->headers);
        tc.easy_cleanup(t->curl);
        free(t->queue);
        free(t->endpoint);
        free(t->service_name);
        free(t);
        errno = err;
        return NULL;
    }
    tracer_active = t;
    log_info("tracing on endpoint=%s service_name=\"%s\" sample_ratio=%g timeout_ms=%ld", t->endpoint,
             t->service_name, t->sample_ratio, t->timeout_ms);
    return t;
}

void tracer_free(struct tracer *t)
{
    if (!t)
        return;
    atomic_store(&t->give_up_ns, clock_now_ns() + (int64_t)TRACER_FLUSH_MAX_MS * CLOCK_NS_PER_MS);
    pthread_mutex_lock(&t->lock);
    t->stopping = 1;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    if (tracer_active == t)
        tracer_active = NULL;
    t->logged_ns = 0;
    tracer_log_drops(t, "at shutdown", clock_now_ns());
    tc.slist_free_all(t->headers);
    tc.easy_cleanup(t->curl);
    /* no curl_global_cleanup: libcurl stays loaded and set up */
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->lock);
    free(t->queue);
    free(t->endpoint);
    free(t->service_name);
    free(t);
}

int tracer_begin(struct tracer *t, const char *traceparent, const char *tracestate, struct trace_render *r)
{
    struct trace_ctx parent;
    if (trace_parent_parse(traceparent, &parent) == 0) {
        memcpy(r->ctx.trace_id, parent.trace_id, TRACE_ID_BYTES);
        memcpy(r->parent_id, parent.span_id, TRACE_SPAN_BYTES);
        r->ctx.flags = parent.flags & TRACE_FLAG_SAMPLED; /* the parent's decision holds */
        /* tracestate goes with a valid traceparent only (W3C) */
        if (trace_state_ok(tracestate))
            snprintf(r->state, sizeof(r->state), "%s", tracestate);
    } else {
        trace_random_id(r->ctx.trace_id, TRACE_ID_BYTES);
        memset(r->parent_id, 0, TRACE_SPAN_BYTES);
        uint32_t draw;
        trace_random_id((uint8_t *)&draw, sizeof(draw));
        /* draw is 1..2^32-1: a ratio of 1 samples all, 0 none */
        r->ctx.flags = (double)draw <= t->sample_ratio * 4294967295.0 ? TRACE_FLAG_SAMPLED : 0;
    }
    trace_random_id(r->ctx.span_id, TRACE_SPAN_BYTES);
    return r->ctx.flags & TRACE_FLAG_SAMPLED;
}

void tracer_submit(struct tracer *t, const struct trace_render *r)
{
    pthread_mutex_lock(&t->lock);
    if (t->count == TRACER_QUEUE_MAX || t->stopping) {
        pthread_mutex_unlock(&t->lock);
        atomic_fetch_add(&t->dropped_full, 1 + r->nsteps);
        return;
    }
    if (t->count == 0)
        t->first_ns = clock_now_ns();
    t->queue[(t->head + t->count) % TRACER_QUEUE_MAX] = *r;
    t->count++;
    /* The thread waits for the first of a batch, then for it to be full. */
    if (t->count == 1 || t->count == TRACER_BATCH_MAX)
        pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

void tracer_dropped(struct tracer *t, unsigned long long *queue_full, unsigned long long *failed)
{
    *queue_full = atomic_load(&t->dropped_full);
    *failed = atomic_load(&t->dropped_failed);
}

void tracer_report(struct ingest_buf *ib)
{
    struct tracer *t = tracer_active;
    if (!t)
        return;
    unsigned long long total[NAMES_SPAN_DROP_COUNT];
    tracer_dropped(t, &total[NAMES_SPAN_DROP_QUEUE_FULL], &total[NAMES_SPAN_DROP_EXPORT_FAILED]);
    lines_spans_dropped(ib, total);
}
