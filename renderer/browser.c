/* One CDP connection per supervised browser: a pair of pipes the supervisor
 * hands over (devtools = pipe), or a websocket to a loopback port (devtools
 * = port). Both sit in the one libwebsockets loop and share everything above
 * the bytes: the queue, the deadlines, the dispatch. Lost pipes are replaced
 * by the next set the supervisor sends; a lost websocket is retried with
 * backoff; whoever had commands in flight hears -ECONNRESET and decides. */
#include "browser.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <netinet/in.h>
#include <poll.h>
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

#define BROWSER_BACKOFF_MIN_MS 100
#define BROWSER_BACKOFF_MAX_MS 2000
#define BROWSER_HTTP_TIMEOUT_MS 1000
#define BROWSER_HTTP_MAX (64 * 1024)
#define BROWSER_PATH_MAX 256
#define BROWSER_RX_KEEP (1024 * 1024) /* free a bigger receive buffer after use */
#define BROWSER_PIPE_READ (64 * 1024)    /* one read from a pipe */
#define BROWSER_SETUP_MS 5000            /* the commands that bring a connection up */

struct browser_pending {
    lws_sorted_usec_list_t sul; /* first: the deadline */
    struct browser_pending *next;
    struct browser *b;
    int id;
    size_t reply_max; /* cdp_reply_max() of the command */
    browser_reply_fn fn;
    void *arg;
};

struct browser_out {
    struct browser_out *next;
    char *data; /* LWS_PRE bytes, then the text and a NUL */
    size_t len; /* of the text */
    size_t sent; /* pipes: bytes of the text and its NUL written so far */
};

struct browser_sub {
    struct browser_sub *next;
    char *session;
    browser_event_fn fn;
    void *arg;
};

struct browser {
    struct browser_pool *pool;
    unsigned index;
    unsigned port;
    struct lws *wsi;               /* websocket */
    struct lws *pipe_rx, *pipe_tx; /* pipes: from the browser's fd 4, to its fd 3 */
    int pipe_rfd, pipe_wfd;
    unsigned pipe_gen; /* the supervisor's start count of the set in use */
    int taking_over;   /* pipes: clearing what an earlier renderer left; the
                        * first read may start mid-message */
    unsigned cleared_contexts, cleared_targets;
    int up;        /* connected and Browser.getVersion answered */
    int connected; /* websocket established, or pipes adopted */
    unsigned generation;
    unsigned load;
    unsigned backoff_ms;
    lws_sorted_usec_list_t retry;
    struct cdp cdp;
    struct buf rx;
    int rx_overflow;
    /* an overflowing message's first and last bytes (cdp_paused_stub) */
    char rx_head[CDP_STUB_EDGE], rx_tail[CDP_STUB_EDGE];
    size_t rx_head_len, rx_tail_len;
    struct browser_out *out_head, *out_tail;
    struct browser_pending *pending;
    struct browser_sub *subs;
    int64_t last_rx_ns; /* when the browser last sent anything */
    /* The same, and "up", for the HTTP thread's answers to health probes
     * (browser_pool_health). */
    _Atomic int64_t heard_ns;
    atomic_int health_up;
    int pinging; /* a Browser.getVersion of the heartbeat is waiting */
    char product[CDP_PRODUCT_MAX + 1]; /* Browser.getVersion's, or "" */
};

/* Pipes handed over on the HTTP thread, for the browser thread to adopt. */
struct browser_inbox {
    int w, r; /* -1: empty */
    unsigned gen;
};

struct browser_pool {
    struct lws_context *lws;
    struct browser *browsers;
    unsigned count;
    int pipes; /* devtools = pipe */
    pthread_mutex_t lock; /* the three arrays below */
    struct browser_inbox *inbox;
    unsigned *gen_seen; /* per browser: the newest set handed over */
    unsigned char *live; /* per browser: pipes in use */
    char *rx_chunk;      /* BROWSER_PIPE_READ bytes */
    atomic_uint up_count;
    _Atomic int64_t heartbeat_ns; /* the browser thread's last turn */
    lws_sorted_usec_list_t heartbeat;
    struct ingest_sender *ingest;
    const struct browser_pool_ops *ops;
    void *arg;
};

static void browser_connect(struct browser *b);
static void browser_get_version(struct browser *b);

/* ---- /json/version --------------------------------------------------- */

static int browser_poll(int fd, short events, int64_t deadline)
{
    int64_t left = (deadline - clock_now_ns()) / CLOCK_NS_PER_MS;
    if (left <= 0)
        return -ETIMEDOUT;
    struct pollfd p = { .fd = fd, .events = events };
    int n = poll(&p, 1, (int)left);
    if (n < 0)
        return -errno;
    return n == 0 ? -ETIMEDOUT : 0;
}

/* A blocking GET of http://127.0.0.1:port/json/version with a short
 * deadline: at connect time only, on a loopback port we were told about. */
static int browser_ws_path(unsigned port, char *path, size_t size)
{
    int64_t deadline = clock_now_ns() + BROWSER_HTTP_TIMEOUT_MS * CLOCK_NS_PER_MS;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = 0;
    char *resp = NULL;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
            goto out;
        }
        if ((rc = browser_poll(fd, POLLOUT, deadline)) < 0)
            goto out;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr) {
            rc = -soerr;
            goto out;
        }
    }
    char req[128];
    int reqlen = snprintf(req, sizeof(req), "GET /json/version HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n\r\n", port);
    if (send(fd, req, (size_t)reqlen, MSG_NOSIGNAL) != reqlen) {
        rc = -EIO;
        goto out;
    }
    resp = xmalloc(BROWSER_HTTP_MAX + 1);
    size_t len = 0;
    for (;;) {
        if ((rc = browser_poll(fd, POLLIN, deadline)) < 0)
            goto out;
        ssize_t n = recv(fd, resp + len, BROWSER_HTTP_MAX - len, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            rc = -errno;
            goto out;
        }
        len += (size_t)n;
        resp[len] = '\0';
        char *body = strstr(resp, "\r\n\r\n");
        if (body) {
            /* Chrome sends Content-Length; stop there rather than wait for a close. */
            const char *cl = strcasestr(resp, "\r\nContent-Length:");
            if (cl && cl < body && (size_t)(body + 4 - resp) + strtoul(cl + 17, NULL, 10) <= len)
                break;
        }
        if (n == 0 || len == BROWSER_HTTP_MAX)
            break;
    }
    char *body = strstr(resp, "\r\n\r\n");
    if (strncmp(resp, "HTTP/1.1 200", 12) != 0 && strncmp(resp, "HTTP/1.0 200", 12) != 0) {
        rc = -EPROTO;
        goto out;
    }
    if (!body) {
        rc = -EBADMSG;
        goto out;
    }
    body += 4;
    json_t *root = json_loadb(body, len - (size_t)(body - resp), 0, NULL);
    const char *url = json_string_value(json_object_get(root, "webSocketDebuggerUrl"));
    const char *p = url && strncmp(url, "ws://", 5) == 0 ? strchr(url + 5, '/') : NULL;
    if (!p || strlen(p) >= size || strspn(p, "/-_.abcdefghijklmnopqrstuvwxyz"
                                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != strlen(p))
        rc = -EBADMSG;
    else
        memcpy(path, p, strlen(p) + 1);
    json_decref(root);
out:
    free(resp);
    close(fd);
    return rc;
}

/* ---- commands -------------------------------------------------------- */

void browser_cmd_init(struct buf *out)
{
    static const char pre[LWS_PRE];
    buf_init(out);
    buf_append(out, pre, LWS_PRE);
}

struct cdp *browser_cdp(struct browser *b)
{
    return &b->cdp;
}

static void browser_pending_unlink(struct browser_pending *pc)
{
    struct browser_pending **pp = &pc->b->pending;
    while (*pp && *pp != pc)
        pp = &(*pp)->next;
    if (*pp)
        *pp = pc->next;
    lws_sul_schedule(pc->b->pool->lws, 0, &pc->sul, NULL, LWS_SET_TIMER_USEC_CANCEL);
}

static void browser_pending_expired(lws_sorted_usec_list_t *sul)
{
    struct browser_pending *pc = lws_container_of(sul, struct browser_pending, sul);
    browser_pending_unlink(pc);
    log_warn("browser command timed out browser=%u id=%d", pc->b->index, pc->id);
    browser_reply_fn fn = pc->fn;
    void *arg = pc->arg;
    int pc_id = pc->id;
    free(pc);
    fn(arg, pc_id, NULL, -ETIMEDOUT);
}

int browser_submit(struct browser *b, struct buf *out, int id, unsigned timeout_ms, browser_reply_fn fn,
                   void *arg)
{
    if (id < 0) {
        buf_fini(out);
        return -EINVAL;
    }
    if (!b->connected) {
        buf_fini(out);
        return -ENOTCONN;
    }
    struct browser_out *o = xcalloc(1, sizeof(*o));
    o->len = out->len - LWS_PRE;
    size_t total;
    o->data = buf_steal(out, &total);
    size_t reply_max = cdp_reply_max(o->data + LWS_PRE, o->len);
    if (b->out_tail)
        b->out_tail->next = o;
    else
        b->out_head = o;
    b->out_tail = o;
    lws_callback_on_writable(b->pool->pipes ? b->pipe_tx : b->wsi);

    struct browser_pending *pc = xcalloc(1, sizeof(*pc));
    pc->b = b;
    pc->id = id;
    pc->reply_max = reply_max;
    pc->fn = fn;
    pc->arg = arg;
    pc->next = b->pending;
    b->pending = pc;
    lws_sul_schedule(b->pool->lws, 0, &pc->sul, browser_pending_expired,
                     (lws_usec_t)timeout_ms * LWS_US_PER_MS);
    return 0;
}

void browser_forget(struct browser *b, void *arg)
{
    for (struct browser_pending **pp = &b->pending; *pp;) {
        struct browser_pending *pc = *pp;
        if (pc->arg == arg) {
            *pp = pc->next;
            lws_sul_schedule(b->pool->lws, 0, &pc->sul, NULL, LWS_SET_TIMER_USEC_CANCEL);
            free(pc);
        } else {
            pp = &pc->next;
        }
    }
    for (struct browser_sub **sp = &b->subs; *sp;) {
        struct browser_sub *s = *sp;
        if (s->arg == arg) {
            *sp = s->next;
            free(s->session);
            free(s);
        } else {
            sp = &s->next;
        }
    }
}

int browser_subscribe(struct browser *b, const char *session, browser_event_fn fn, void *arg)
{
    for (struct browser_sub *s = b->subs; s; s = s->next)
        if (strcmp(s->session, session) == 0)
            return -EEXIST;
    struct browser_sub *s = xcalloc(1, sizeof(*s));
    s->session = xstrdup(session);
    s->fn = fn;
    s->arg = arg;
    s->next = b->subs;
    b->subs = s;
    return 0;
}

void browser_unsubscribe(struct browser *b, const char *session)
{
    for (struct browser_sub **sp = &b->subs; *sp; sp = &(*sp)->next) {
        struct browser_sub *s = *sp;
        if (strcmp(s->session, session) == 0) {
            *sp = s->next;
            free(s->session);
            free(s);
            return;
        }
    }
}

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

static void browser_schedule_retry(struct browser *b)
{
    unsigned ms = b->backoff_ms ? b->backoff_ms : BROWSER_BACKOFF_MIN_MS;
    b->backoff_ms = ms * 2 > BROWSER_BACKOFF_MAX_MS ? BROWSER_BACKOFF_MAX_MS : ms * 2;
    lws_sul_schedule(b->pool->lws, 0, &b->retry, browser_retry_cb, (lws_usec_t)ms * LWS_US_PER_MS);
}

static void browser_set_live(struct browser *b, int live)
{
    pthread_mutex_lock(&b->pool->lock);
    b->pool->live[b->index] = (unsigned char)live;
    pthread_mutex_unlock(&b->pool->lock);
}

/* The connection is gone: fail what was waiting on it, then retry the
 * websocket, or wait for the supervisor's next pipes. */
static void browser_lost(struct browser *b)
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
        struct ingest_buf *ib = xmalloc(sizeof(*ib));
        ingest_buf_reset(ib);
        const char *labels[] = { NAMES_LABEL_VERSION, product, NULL };
        ingest_buf_line(ib, NAMES_FAMILY_BROWSER_INFO, labels, 1);
        ingest_send(b->pool->ingest, ib);
        free(ib);
    }
    if (b->connected)
        browser_set_up(b, 1);
}

static void browser_get_version(struct browser *b)
{
    struct buf out;
    browser_cmd_init(&out);
    int id = cdp_browser_get_version(&b->cdp, &out);
    if (browser_submit(b, &out, id, BROWSER_SETUP_MS, browser_version_reply, b) < 0 && b->connected)
        browser_set_up(b, 1);
}

/* ---- taking over pipes ------------------------------------------------- */

/* Pipes outlive a renderer (the supervisor holds them while the browser
 * lives), and so does whatever a dead renderer opened: its browser contexts
 * (cookies, the renderKey among them) and pages. A renderer that takes
 * pipes over disposes of every context, then closes every page, before it
 * counts the browser as up. A fresh browser's about:blank goes too: the
 * renders make their own. */

static void browser_cleared(void *arg, int id, const struct cdp_msg *m, int err)
{
    (void)id;
    struct browser *b = arg;
    if (err < 0 || m->type == CDP_MSG_ERROR)
        log_debug("cannot clear what an earlier renderer left browser=%u error=\"%s\"", b->index,
                  err < 0 ? strerror(-err) : m->error_message);
}

static void browser_takeover_submit(struct browser *b, int (*build)(struct cdp *, struct buf *, const char *),
                                    const char *what)
{
    struct buf out;
    browser_cmd_init(&out);
    int id = build(&b->cdp, &out, what);
    browser_submit(b, &out, id, BROWSER_SETUP_MS, browser_cleared, b);
}

static void browser_takeover_targets(void *arg, int id, const struct cdp_msg *m, int err)
{
    (void)id;
    struct browser *b = arg;
    const char *tid;
    int rc = 0;
    if (!b->connected)
        return; /* the pipes went meanwhile */
    if (err < 0)
        rc = err;
    else
        for (size_t i = 0; (rc = cdp_result_page_target(m, i, &tid)) == 0; i++, b->cleared_targets++)
            browser_takeover_submit(b, cdp_close_target, tid);
    if (rc < 0 && rc != -ENOENT)
        log_warn_errno(rc, "cannot list the browser's targets browser=%u", b->index);
    log_info("browser pipes taken over browser=%u generation=%u disposed_contexts=%u closed_targets=%u", b->index,
             b->pipe_gen, b->cleared_contexts, b->cleared_targets);
    /* Anything still arriving from before is a reply to nobody now. */
    b->taking_over = 0;
    browser_get_version(b);
}

static void browser_takeover_contexts(void *arg, int id, const struct cdp_msg *m, int err)
{
    (void)id;
    struct browser *b = arg;
    const char *cid;
    int rc = 0;
    if (err < 0)
        rc = err;
    else
        for (size_t i = 0; (rc = cdp_result_browser_context(m, i, &cid)) == 0; i++, b->cleared_contexts++)
            browser_takeover_submit(b, cdp_dispose_browser_context, cid);
    if (rc < 0 && rc != -ENOENT)
        log_warn_errno(rc, "cannot list the browser's contexts browser=%u", b->index);
    if (!b->connected)
        return;
    struct buf out;
    browser_cmd_init(&out);
    int tid = cdp_get_targets(&b->cdp, &out);
    browser_submit(b, &out, tid, BROWSER_SETUP_MS, browser_takeover_targets, b);
}

/* What comes first on pipes taken over: a lone NUL ends any command an
 * earlier renderer left half written (Chrome answers it with an error
 * without an id, dropped like the rest while taking_over). */
static void browser_takeover(struct browser *b)
{
    struct buf out;
    browser_cmd_init(&out);
    struct browser_out *o = xcalloc(1, sizeof(*o));
    size_t total;
    o->data = buf_steal(&out, &total);
    o->len = 0;
    b->out_head = b->out_tail = o;
    b->taking_over = 1;
    b->cleared_contexts = b->cleared_targets = 0;
    browser_cmd_init(&out);
    int id = cdp_get_browser_contexts(&b->cdp, &out);
    browser_submit(b, &out, id, BROWSER_SETUP_MS, browser_takeover_contexts, b);
}

/* A connection is there (websocket established, pipes adopted). */
static void browser_attached(struct browser *b)
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

static void browser_connect(struct browser *b)
{
    char path[BROWSER_PATH_MAX];
    int rc = browser_ws_path(b->port, path, sizeof(path));
    if (rc < 0) {
        log_debug("browser not answering yet browser=%u port=%u error=%d", b->index, b->port, -rc);
        browser_schedule_retry(b);
        return;
    }
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof(ci));
    char host[32];
    snprintf(host, sizeof(host), "127.0.0.1:%u", b->port);
    ci.context = b->pool->lws;
    ci.address = "127.0.0.1";
    ci.port = (int)b->port;
    ci.path = path;
    ci.host = host;
    ci.ietf_version_or_minus_one = -1;
    ci.local_protocol_name = "cdp";
    ci.opaque_user_data = b;
    ci.pwsi = &b->wsi;
    if (!lws_client_connect_via_info(&ci)) {
        /* CLIENT_CONNECTION_ERROR may or may not have been called. */
        if (!b->retry.list.owner)
            browser_schedule_retry(b);
    }
}

/* ---- frames ------------------------------------------------------------ */

static void browser_dispatch(struct browser *b, const char *text, size_t len)
{
    b->last_rx_ns = clock_now_ns();
    atomic_store(&b->heard_ns, b->last_rx_ns);
    struct cdp_msg m;
    int rc = cdp_msg_parse(&m, text, len);
    if (rc < 0) {
        /* While taking pipes over, the first bytes may be a message's tail
         * and the answer to our NUL an error without an id. */
        log_write(b->taking_over ? CONFIG_LOG_DEBUG : CONFIG_LOG_WARN, 0,
                  "browser sent a message we cannot read browser=%u why=\"%s\"", b->index,
                  m.why ? m.why : "too large");
        return;
    }
    if (m.type != CDP_MSG_EVENT) {
        for (struct browser_pending *pc = b->pending; pc; pc = pc->next) {
            if (pc->id == m.id) {
                browser_pending_unlink(pc);
                browser_reply_fn fn = pc->fn;
                void *arg = pc->arg;
                int pc_id = pc->id;
                free(pc);
                fn(arg, pc_id, &m, 0);
                break;
            }
        }
    } else {
        const char *session = m.session ? m.session : cdp_msg_lost_session(&m);
        if (session) {
            for (struct browser_sub *s = b->subs; s; s = s->next) {
                if (strcmp(s->session, session) == 0) {
                    s->fn(s->arg, &m);
                    break;
                }
            }
        }
    }
    cdp_msg_fini(&m);
}

/* Gather a message's fragments within the limit of its kind (cdp.h): the
 * reply to a screenshot or a PDF up to CDP_FRAME_MAX, anything else up to
 * CDP_MESSAGE_MAX, so a page cannot make us hold more (a huge evaluate
 * result or exception, dialog or console text). Past it the rest of the
 * message is dropped, and a reply's command fails at once with -EMSGSIZE
 * rather than at its deadline. */
/* The last bytes of a message being dropped. */
static void browser_rx_tail(struct browser *b, const char *in, size_t len)
{
    size_t cap = sizeof(b->rx_tail);
    if (len >= cap) {
        memcpy(b->rx_tail, in + len - cap, cap);
        b->rx_tail_len = cap;
        return;
    }
    size_t keep = b->rx_tail_len + len > cap ? cap - len : b->rx_tail_len;
    memmove(b->rx_tail, b->rx_tail + b->rx_tail_len - keep, keep);
    memcpy(b->rx_tail + keep, in, len);
    b->rx_tail_len = keep + len;
}

static void browser_rx_take(struct browser *b, const char *in, size_t len)
{
    if (b->rx.len + len > CDP_MESSAGE_MAX) {
        /* Only now is the kind worth asking: Chrome writes a reply's id first. */
        char head[32];
        size_t n = b->rx.len < sizeof(head) ? b->rx.len : sizeof(head);
        if (n)
            memcpy(head, b->rx.data, n);
        size_t more = len < sizeof(head) - n ? len : sizeof(head) - n;
        memcpy(head + n, in, more);
        int id = cdp_frame_reply_id(head, n + more);
        struct browser_pending *pc = b->pending;
        while (pc && (id <= 0 || pc->id != id))
            pc = pc->next;
        size_t max = pc ? pc->reply_max : CDP_MESSAGE_MAX;
        if (b->rx.len + len > max) {
            log_warn("browser message over its size limit, dropped browser=%u kind=%s id=%d limit=%zu",
                     b->index, id > 0 ? "reply" : "event", id, max);
            b->rx_overflow = 1;
            b->rx_head_len = b->rx.len < sizeof(b->rx_head) ? b->rx.len : sizeof(b->rx_head);
            memcpy(b->rx_head, b->rx.data, b->rx_head_len);
            size_t from_in = sizeof(b->rx_head) - b->rx_head_len < len ? sizeof(b->rx_head) - b->rx_head_len : len;
            memcpy(b->rx_head + b->rx_head_len, in, from_in);
            b->rx_head_len += from_in;
            b->rx_tail_len = 0;
            browser_rx_tail(b, in, len);
            buf_fini(&b->rx);
            if (pc) {
                browser_pending_unlink(pc);
                browser_reply_fn fn = pc->fn;
                void *arg = pc->arg;
                int pc_id = pc->id;
                free(pc);
                fn(arg, pc_id, NULL, -EMSGSIZE);
            }
            return;
        }
    }
    buf_append(&b->rx, in, len);
}

/* A piece of a message, whichever transport brought it: kept, or past the
 * limit only its last bytes (for browser_rx_end's stand-in). */
static void browser_rx_piece(struct browser *b, const char *in, size_t len)
{
    if (!b->rx_overflow)
        browser_rx_take(b, in, len);
    else
        browser_rx_tail(b, in, len);
}

/* The end of a message (a websocket's last fragment, a pipe's NUL). */
static void browser_rx_end(struct browser *b)
{
    if (!b->rx_overflow && b->rx.len)
        browser_dispatch(b, b->rx.data, b->rx.len);
    if (b->rx_overflow) {
        /* A paused request too large to keep is still answered (refused),
         * or it would wait for ever. */
        struct buf stub;
        buf_init(&stub);
        if (cdp_paused_stub(b->rx_head, b->rx_head_len, b->rx_tail, b->rx_tail_len, &stub) == 0)
            browser_dispatch(b, stub.data, stub.len);
        buf_fini(&stub);
    }
    b->rx_overflow = 0;
    if (b->rx.cap > BROWSER_RX_KEEP)
        buf_fini(&b->rx);
    else
        buf_reset(&b->rx);
}

/* ---- pipes -------------------------------------------------------------- */

/* Messages on a pipe end with a NUL; one read may hold many, or a piece. */
static int browser_pipe_read(struct browser *b)
{
    ssize_t n = read(b->pipe_rfd, b->pool->rx_chunk, BROWSER_PIPE_READ);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -errno;
    if (n == 0)
        return -EPIPE; /* every write end is gone: so is the browser */
    struct lws *rx = b->pipe_rx;
    const char *p = b->pool->rx_chunk, *end = p + n;
    while (p < end && b->pipe_rx == rx) {
        const char *nul = memchr(p, '\0', (size_t)(end - p));
        size_t len = (size_t)((nul ? nul : end) - p);
        if (len)
            browser_rx_piece(b, p, len);
        if (!nul)
            break;
        browser_rx_end(b);
        p = nul + 1;
    }
    return 0;
}

/* Write what is queued, text and NUL, as far as the pipe takes it. */
static int browser_pipe_write(struct browser *b)
{
    while (b->out_head) {
        struct browser_out *o = b->out_head;
        while (o->sent < o->len + 1) {
            ssize_t n = write(b->pipe_wfd, o->data + LWS_PRE + o->sent, o->len + 1 - o->sent);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno == EAGAIN) {
                lws_callback_on_writable(b->pipe_tx);
                return 0;
            }
            if (n < 0)
                return -errno;
            o->sent += (size_t)n;
        }
        b->out_head = o->next;
        if (!b->out_head)
            b->out_tail = NULL;
        free(o->data);
        free(o);
    }
    return 0;
}

/* Let go of the pipes in use: lws closes them; the other end of either pipe
 * is the browser's. */
static void browser_pipe_drop(struct browser *b)
{
    struct lws *ends[2] = { b->pipe_rx, b->pipe_tx };
    b->pipe_rx = b->pipe_tx = NULL;
    b->pipe_rfd = b->pipe_wfd = -1;
    for (int i = 0; i < 2; i++) {
        if (!ends[i])
            continue;
        lws_set_opaque_user_data(ends[i], NULL);
        lws_set_timeout(ends[i], PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
}

static struct lws *browser_pipe_adopt_end(struct browser *b, int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        close(fd);
        return NULL;
    }
    lws_adopt_desc_t d;
    memset(&d, 0, sizeof(d));
    d.vh = lws_get_vhost_by_name(b->pool->lws, "default");
    d.type = LWS_ADOPT_RAW_FILE_DESC;
    d.fd.filefd = fd;
    d.vh_prot_name = "cdp";
    d.opaque = b;
    if (!d.vh) {
        close(fd);
        return NULL;
    }
    return lws_adopt_descriptor_vhost_via_info(&d); /* closes fd when it fails */
}

/* Pipes that could not be adopted: the same set may come again (the
 * supervisor sends it on the next "hello"). */
static void browser_pipe_unseen(struct browser *b, unsigned gen)
{
    pthread_mutex_lock(&b->pool->lock);
    if (b->pool->gen_seen[b->index] == gen)
        b->pool->gen_seen[b->index] = gen - 1;
    pthread_mutex_unlock(&b->pool->lock);
}

/* A set of pipes from the supervisor: it replaces the set in use. */
static void browser_pipe_adopt(struct browser *b, int w, int r, unsigned gen)
{
    if (b->pipe_rx || b->pipe_tx) {
        log_info("browser pipes replaced browser=%u generation=%u new_generation=%u", b->index, b->pipe_gen, gen);
        browser_pipe_drop(b);
        browser_lost(b);
    }
    b->pipe_gen = gen;
    b->pipe_rx = browser_pipe_adopt_end(b, r);
    if (!b->pipe_rx) {
        close(w);
        browser_pipe_unseen(b, gen);
        log_warn("cannot watch the browser's pipes browser=%u generation=%u", b->index, gen);
        return;
    }
    b->pipe_tx = browser_pipe_adopt_end(b, w);
    if (!b->pipe_tx) {
        lws_set_opaque_user_data(b->pipe_rx, NULL);
        lws_set_timeout(b->pipe_rx, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        b->pipe_rx = NULL;
        browser_pipe_unseen(b, gen);
        log_warn("cannot watch the browser's pipes browser=%u generation=%u", b->index, gen);
        return;
    }
    b->pipe_rfd = r;
    b->pipe_wfd = w;
    browser_set_live(b, 1);
    browser_attached(b);
    lws_callback_on_writable(b->pipe_tx);
}

/* Browser thread: adopt what the HTTP thread left in the inbox. */
static void browser_pool_take_inbox(struct browser_pool *p)
{
    for (unsigned i = 0; i < p->count; i++) {
        pthread_mutex_lock(&p->lock);
        struct browser_inbox in = p->inbox[i];
        p->inbox[i].w = p->inbox[i].r = -1;
        pthread_mutex_unlock(&p->lock);
        if (in.w >= 0)
            browser_pipe_adopt(&p->browsers[i], in.w, in.r, in.gen);
    }
}

int browser_pool_give_pipes(struct browser_pool *p, unsigned index, unsigned gen, int w, int r)
{
    if (!p->pipes || index >= p->count) {
        close(w);
        close(r);
        return -EINVAL;
    }
    pthread_mutex_lock(&p->lock);
    if (gen <= p->gen_seen[index]) {
        pthread_mutex_unlock(&p->lock);
        close(w);
        close(r);
        return -EALREADY;
    }
    p->gen_seen[index] = gen;
    struct browser_inbox old = p->inbox[index];
    p->inbox[index] = (struct browser_inbox){ .w = w, .r = r, .gen = gen };
    pthread_mutex_unlock(&p->lock);
    if (old.w >= 0) {
        close(old.w);
        close(old.r);
    }
    lws_cancel_service(p->lws);
    return 0;
}

unsigned browser_pool_pipes_missing(struct browser_pool *p)
{
    if (!p->pipes)
        return 0;
    unsigned n = 0;
    pthread_mutex_lock(&p->lock);
    for (unsigned i = 0; i < p->count; i++)
        if (!p->live[i] && p->inbox[i].w < 0)
            n++;
    pthread_mutex_unlock(&p->lock);
    return n;
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

/* A timer that only says the browser thread still turns: /healthz, on the
 * HTTP thread, answers 500 when it has not for a while, and the supervisor
 * restarts a renderer whose browser thread is stuck. */
#define BROWSER_HEARTBEAT_MS 1000

/* The heartbeat also asks each browser that is up for its version, one
 * ask at a time: any answer (any message) is the renderer hearing from it,
 * which the supervisor's health probe asks about. A stopped browser takes
 * this long to fail the ask; the probe has called it silent long before. */
#define BROWSER_PING_TIMEOUT_MS 10000

static void browser_ping_reply(void *arg, int id, const struct cdp_msg *m, int err)
{
    (void)id;
    (void)m;
    (void)err;
    struct browser *b = arg;
    b->pinging = 0;
}

static void browser_ping(struct browser *b)
{
    if (!b->up || !b->connected || b->pinging)
        return;
    struct buf out;
    browser_cmd_init(&out);
    int id = cdp_browser_get_version(&b->cdp, &out);
    if (browser_submit(b, &out, id, BROWSER_PING_TIMEOUT_MS, browser_ping_reply, b) == 0)
        b->pinging = 1;
}

static void browser_heartbeat(lws_sorted_usec_list_t *sul)
{
    struct browser_pool *p = lws_container_of(sul, struct browser_pool, heartbeat);
    atomic_store(&p->heartbeat_ns, clock_now_ns());
    for (unsigned i = 0; p->browsers && i < p->count; i++)
        browser_ping(&p->browsers[i]);
    lws_sul_schedule(p->lws, 0, &p->heartbeat, browser_heartbeat, (lws_usec_t)BROWSER_HEARTBEAT_MS * LWS_US_PER_MS);
}

char browser_pool_health(struct browser_pool *p, unsigned i, int64_t now, int64_t silent_max_ns)
{
    struct browser *b = &p->browsers[i];
    if (!atomic_load(&b->health_up))
        return CTL_BROWSER_UNKNOWN;
    return now - atomic_load(&b->heard_ns) > silent_max_ns ? CTL_BROWSER_SILENT : CTL_BROWSER_HEARD;
}

int64_t browser_pool_stalled_ns(struct browser_pool *p, int64_t now)
{
    int64_t d = now - atomic_load(&p->heartbeat_ns) - (int64_t)BROWSER_HEARTBEAT_MS * CLOCK_NS_PER_MS;
    return d > 0 ? d : 0;
}

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

unsigned browser_pool_up_count(struct browser_pool *p)
{
    return atomic_load(&p->up_count);
}

unsigned browser_pool_count(const struct browser_pool *p)
{
    return p->count;
}

struct browser *browser_pool_get(struct browser_pool *p, unsigned i)
{
    return i < p->count ? &p->browsers[i] : NULL;
}

struct lws_context *browser_pool_lws(struct browser_pool *p)
{
    return p->lws;
}

struct lws_context *browser_lws(struct browser *b)
{
    return b->pool->lws;
}

unsigned browser_index(const struct browser *b)
{
    return b->index;
}

int browser_is_up(const struct browser *b)
{
    return b->up;
}

unsigned browser_generation(const struct browser *b)
{
    return b->generation;
}

unsigned browser_load(const struct browser *b)
{
    return b->load;
}

const char *browser_product(const struct browser *b)
{
    return b->product[0] ? b->product : NULL;
}

int64_t browser_silent_ns(const struct browser *b, int64_t now_ns)
{
    return b->pending && b->last_rx_ns ? now_ns - b->last_rx_ns : 0;
}

void browser_load_add(struct browser *b, int delta)
{
    b->load = (unsigned)((int)b->load + delta);
}
