/* One CDP connection per supervised browser: a pair of pipes the supervisor
 * hands over (devtools = pipe), or a websocket to a loopback port (devtools
 * = port). Both sit in the one libwebsockets loop and share everything above
 * the bytes: the queue, the deadlines, the dispatch. Lost pipes are replaced
 * by the next set the supervisor sends; a lost websocket is retried with
 * backoff; whoever had commands in flight hears -ECONNRESET and decides.
 * This file owns the pool and each connection's life: connecting (the
 * websocket's path and connect are browser_devtools.c's), coming up
 * (Browser.getVersion), going down, the lws callback both transports share. It runs on the browser thread (the one
 * that calls browser_pool_service), but for browser_pool_wake (any thread).
 * It owns the pool's memory: the lws context, the browsers, the per-browser
 * arrays, all freed by browser_pool_free. */
#include "browser.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "ctl.h"
#include "log.h"
#include "names.h"
#include "xalloc.h"

#include "browser_int.h"

#define BROWSER_BACKOFF_MIN_MS 100
#define BROWSER_BACKOFF_MAX_MS 2000

/* ---- connection state ------------------------------------------------ */

static void browser_set_up(struct browser *b, int up)
{
    if (b->up == up)
        return;
    b->up = up;
    if (up)
        atomic_store(&b->heard_ns, clock_now_ns());
    atomic_store(&b->health_up, up);
    if (up)
        atomic_fetch_add(&b->pool->up_count, 1);
    else
        atomic_fetch_sub(&b->pool->up_count, 1);
    if (b->pool->ops->changed)
        b->pool->ops->changed(b->pool->arg, b, up);
}

static void browser_retry_cb(lws_sorted_usec_list_t *sul)
{
    browser_connect(lws_container_of(sul, struct browser, retry));
}

void browser_schedule_retry(struct browser *b)
{
    unsigned ms = b->backoff_ms ? b->backoff_ms : BROWSER_BACKOFF_MIN_MS;
    b->backoff_ms = ms * 2 > BROWSER_BACKOFF_MAX_MS ? BROWSER_BACKOFF_MAX_MS : ms * 2;
    lws_sul_schedule(b->pool->lws, 0, &b->retry, browser_retry_cb, (lws_usec_t)ms * LWS_US_PER_MS);
}

void browser_set_live(struct browser *b, int live)
{
    pthread_mutex_lock(&b->pool->lock);
    b->pool->live[b->index] = (unsigned char)live;
    pthread_mutex_unlock(&b->pool->lock);
}

/* The connection is gone: fail what was waiting on it, then retry the
 * websocket, or wait for the supervisor's next pipes. */
void browser_lost(struct browser *b)
{
    int was = b->connected;
    b->wsi = NULL;
    b->connected = 0;
    b->taking_over = 0;
    buf_fini(&b->rx);
    b->rx_overflow = 0;
    while (b->out_head) {
        struct browser_out *o = b->out_head;
        b->out_head = o->next;
        free(o->data);
        free(o);
    }
    b->out_tail = NULL;
    browser_set_up(b, 0);
    if (b->pool->pipes)
        browser_set_live(b, 0);
    if (was && b->pool->pipes)
        log_warn("browser connection lost browser=%u devtools=pipe generation=%u", b->index, b->pipe_gen);
    else if (was)
        log_warn("browser connection lost browser=%u port=%u", b->index, b->port);
    /* Callbacks may submit (which fails now) or forget: detach the lists first. */
    struct browser_pending *pending = b->pending;
    struct browser_sub *subs = b->subs;
    b->pending = NULL;
    b->subs = NULL;
    while (pending) {
        struct browser_pending *pc = pending;
        pending = pc->next;
        lws_sul_schedule(b->pool->lws, 0, &pc->sul, NULL, LWS_SET_TIMER_USEC_CANCEL);
        browser_reply_fn fn = pc->fn;
        void *arg = pc->arg;
        int pc_id = pc->id;
        free(pc);
        fn(arg, pc_id, NULL, -ECONNRESET);
    }
    while (subs) {
        struct browser_sub *s = subs;
        subs = s->next;
        browser_event_fn fn = s->fn;
        void *arg = s->arg;
        free(s->session);
        free(s);
        fn(arg, NULL);
    }
    if (!b->pool->pipes)
        browser_schedule_retry(b);
}

static void browser_version_reply(void *arg, int id, const struct cdp_msg *m, int err)
{
    (void)id;
    struct browser *b = arg;
    const char *product = NULL;
    int rc = err < 0 ? err : cdp_result_product(m, &product);
    if (rc < 0) {
        log_warn_errno(rc, "Browser.getVersion failed browser=%u", b->index);
        /* Still usable; the version is only for the metric. */
    } else {
        if (b->pool->pipes)
            log_info("browser connected browser=%u devtools=pipe generation=%u version=\"%s\"", b->index,
                     b->pipe_gen, product);
        else
            log_info("browser connected browser=%u port=%u version=\"%s\"", b->index, b->port, product);
        snprintf(b->product, sizeof(b->product), "%s", product);
        const char *labels[] = { NAMES_LABEL_VERSION, product, NULL };
        ingest_send_line(b->pool->ingest, NAMES_FAMILY_BROWSER_INFO, labels, 1);
    }
    if (b->connected)
        browser_set_up(b, 1);
}

void browser_get_version(struct browser *b)
{
    struct buf out;
    browser_cmd_init(&out);
    int id = cdp_browser_get_version(&b->cdp, &out);
    if (browser_submit(b, &out, id, BROWSER_SETUP_MS, browser_version_reply, b) < 0 && b->connected)
        browser_set_up(b, 1);
}

/* A connection is there (websocket established, pipes adopted). */
void browser_attached(struct browser *b)
{
    b->connected = 1;
    b->generation++;
    b->backoff_ms = 0;
    b->last_rx_ns = 0;
    if (b->pool->pipes) {
        /* Ids apart from an earlier renderer's, whose replies may still come. */
        uint32_t r = 0;
        if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
            r = (uint32_t)clock_now_ns();
        b->cdp.last_id = (int)(r & 0x3fffffff);
        browser_takeover(b);
    } else {
        browser_get_version(b);
    }
}

/* A descriptor (a pipe end, a socket) watched by the pool's lws loop as a
 * raw file of the given protocol, with opaque as its user data; NULL when
 * it cannot be, and the fd is closed either way then (lws owns it once
 * adopted). */
struct lws *browser_adopt_fd(struct browser_pool *p, int fd, const char *protocol, void *opaque)
{
    lws_adopt_desc_t d;
    memset(&d, 0, sizeof(d));
    d.vh = lws_get_vhost_by_name(p->lws, "default");
    d.type = LWS_ADOPT_RAW_FILE_DESC;
    d.fd.filefd = fd;
    d.vh_prot_name = protocol;
    d.opaque = opaque;
    if (!d.vh) {
        close(fd);
        return NULL;
    }
    return lws_adopt_descriptor_vhost_via_info(&d); /* closes fd when it fails */
}

static int browser_lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    (void)user;
    struct browser *b = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
        struct browser_pool *p = lws_context_user(lws_get_context(wsi));
        if (p && p->pipes)
            browser_pool_take_inbox(p);
        if (p && p->ops->wake)
            p->ops->wake(p->arg);
        break;
    }
    case LWS_CALLBACK_RAW_RX_FILE:
        if (b && wsi == b->pipe_rx && browser_pipe_read(b) < 0)
            return -1;
        break;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        if (b && wsi == b->pipe_tx && browser_pipe_write(b) < 0)
            return -1;
        break;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        /* One end closed (EOF, a broken pipe): the other goes with it. */
        if (b && (wsi == b->pipe_rx || wsi == b->pipe_tx)) {
            if (wsi == b->pipe_rx)
                b->pipe_rx = NULL;
            else
                b->pipe_tx = NULL;
            browser_pipe_drop(b);
            browser_lost(b);
        }
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED: {
        if (!b)
            break;
        b->wsi = wsi;
        browser_attached(b);
        break;
    }
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (!b)
            break;
        log_debug("browser connection failed browser=%u error=\"%s\"", b->index,
                  in ? (const char *)in : "");
        browser_lost(b);
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (b)
            browser_lost(b);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (!b)
            break;
        browser_rx_piece(b, in, len);
        if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0)
            browser_rx_end(b);
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
        if (!b || !b->out_head)
            break;
        struct browser_out *o = b->out_head;
        b->out_head = o->next;
        if (!b->out_head)
            b->out_tail = NULL;
        int n = lws_write(wsi, (unsigned char *)o->data + LWS_PRE, o->len, LWS_WRITE_TEXT);
        free(o->data);
        free(o);
        if (n < 0)
            return -1;
        if (b->out_head)
            lws_callback_on_writable(wsi);
        break;
    }
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols browser_protocols[] = {
    { "cdp", browser_lws_cb, 0, 64 * 1024, 0, NULL, 0 },
    { "devtools-http", browser_http_cb, 0, 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

static void browser_lws_log(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == ' '))
        n--;
    if (level & LLL_ERR)
        log_warn("libwebsockets error=\"%.*s\"", (int)n, line);
    else
        log_debug("libwebsockets says=\"%.*s\"", (int)n, line);
}

/* ---- the pool ---------------------------------------------------------- */

struct browser_pool *browser_pool_new(unsigned count, unsigned port_base, int pipes, struct ingest_sender *ingest,
                                      const struct browser_pool_ops *ops, void *arg)
{
    lws_set_log_level(LLL_ERR | (log_enabled(CONFIG_LOG_DEBUG) ? LLL_WARN : 0), browser_lws_log);
    struct browser_pool *p = xcalloc(1, sizeof(*p));
    p->count = count;
    p->pipes = pipes;
    pthread_mutex_init(&p->lock, NULL);
    p->inbox = xcalloc(count, sizeof(*p->inbox));
    p->gen_seen = xcalloc(count, sizeof(*p->gen_seen));
    p->live = xcalloc(count, sizeof(*p->live));
    for (unsigned i = 0; i < count; i++)
        p->inbox[i].w = p->inbox[i].r = -1;
    if (pipes)
        p->rx_chunk = xmalloc(BROWSER_PIPE_READ);
    p->ingest = ingest;
    p->ops = ops;
    p->arg = arg;
    atomic_init(&p->up_count, 0);
    atomic_init(&p->heartbeat_ns, clock_now_ns());
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = browser_protocols;
    info.gid = -1;
    info.uid = -1;
    info.user = p;
    /* lws sizes its fd tables (pollfd and fd -> wsi, 16 bytes a slot, all
     * written at creation) by RLIMIT_NOFILE unless told otherwise: 320 KiB
     * resident at a limit of 20000, 16 MiB at a container's 1048576. We hold
     * one websocket or two pipe ends per browser, as many again while they
     * are being replaced, and lws's own cancel pipe; past this limit a
     * connect fails and is retried. */
    info.fd_limit_per_thread = 4 * count + 8;
    p->lws = lws_create_context(&info);
    if (!p->lws) {
        free(p->inbox);
        free(p->gen_seen);
        free(p->live);
        free(p->rx_chunk);
        pthread_mutex_destroy(&p->lock);
        free(p);
        errno = EIO;
        return NULL;
    }
    browser_heartbeat(&p->heartbeat);
    p->browsers = xcalloc(count, sizeof(*p->browsers));
    for (unsigned i = 0; i < count; i++) {
        struct browser *b = &p->browsers[i];
        b->pool = p;
        b->index = i;
        b->port = port_base + i;
        b->pipe_rfd = b->pipe_wfd = -1;
        atomic_init(&b->heard_ns, 0);
        atomic_init(&b->health_up, 0);
        cdp_init(&b->cdp);
        buf_init(&b->rx);
        /* Pipes come from the supervisor (browser_pool_give_pipes). */
        if (!pipes)
            browser_connect(b);
    }
    return p;
}

void browser_pool_free(struct browser_pool *p)
{
    if (!p)
        return;
    /* Destroying the context closes every websocket (CLIENT_CLOSED may come
     * back to us: forget the browsers first). */
    lws_sul_schedule(p->lws, 0, &p->heartbeat, NULL, LWS_SET_TIMER_USEC_CANCEL);
    for (unsigned i = 0; i < p->count; i++) {
        struct browser *b = &p->browsers[i];
        if (b->wsi)
            lws_set_opaque_user_data(b->wsi, NULL);
        if (b->pipe_rx)
            lws_set_opaque_user_data(b->pipe_rx, NULL);
        if (b->pipe_tx)
            lws_set_opaque_user_data(b->pipe_tx, NULL);
        if (p->inbox[i].w >= 0) {
            close(p->inbox[i].w);
            close(p->inbox[i].r);
        }
        lws_sul_schedule(p->lws, 0, &b->retry, NULL, LWS_SET_TIMER_USEC_CANCEL);
        browser_http_drop(b);
        while (b->pending) {
            struct browser_pending *pc = b->pending;
            b->pending = pc->next;
            lws_sul_schedule(p->lws, 0, &pc->sul, NULL, LWS_SET_TIMER_USEC_CANCEL);
            free(pc);
        }
        while (b->subs) {
            struct browser_sub *s = b->subs;
            b->subs = s->next;
            free(s->session);
            free(s);
        }
        while (b->out_head) {
            struct browser_out *o = b->out_head;
            b->out_head = o->next;
            free(o->data);
            free(o);
        }
        buf_fini(&b->rx);
    }
    lws_context_destroy(p->lws);
    free(p->browsers);
    free(p->inbox);
    free(p->gen_seen);
    free(p->live);
    free(p->rx_chunk);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

int browser_pool_service(struct browser_pool *p)
{
    return lws_service(p->lws, 0);
}

void browser_pool_wake(struct browser_pool *p)
{
    lws_cancel_service(p->lws);
}
