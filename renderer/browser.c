/* One CDP websocket per supervised browser. The supervisor restarts a browser
 * on the same port, so a lost connection is simply retried with backoff;
 * whoever had commands in flight hears -ECONNRESET and decides. */
#include "browser.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "xalloc.h"

#define BROWSER_BACKOFF_MIN_MS 100
#define BROWSER_BACKOFF_MAX_MS 2000
#define BROWSER_HTTP_TIMEOUT_MS 1000
#define BROWSER_HTTP_MAX (64 * 1024)
#define BROWSER_PATH_MAX 256
#define BROWSER_RX_KEEP (1024 * 1024) /* free a bigger receive buffer after use */

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
    char *data; /* LWS_PRE bytes, then the text */
    size_t len; /* of the text */
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
    struct lws *wsi;
    int up;        /* connected and Browser.getVersion answered */
    int connected; /* websocket established */
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
    char product[CDP_PRODUCT_MAX + 1]; /* Browser.getVersion's, or "" */
};

struct browser_pool {
    struct lws_context *lws;
    struct browser *browsers;
    unsigned count;
    atomic_uint up_count;
    _Atomic int64_t heartbeat_ns; /* the browser thread's last turn */
    lws_sorted_usec_list_t heartbeat;
    struct ingest_sender *ingest;
    const struct browser_pool_ops *ops;
    void *arg;
};

static void browser_connect(struct browser *b);

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
    lws_callback_on_writable(b->wsi);

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

/* The websocket is gone: fail what was waiting on it, then retry. */
static void browser_lost(struct browser *b)
{
    int was = b->connected;
    b->wsi = NULL;
    b->connected = 0;
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
    if (was)
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
        log_info("browser connected browser=%u port=%u version=\"%s\"", b->index, b->port, product);
        snprintf(b->product, sizeof(b->product), "%s", product);
        struct ingest_buf *ib = xmalloc(sizeof(*ib));
        ingest_buf_reset(ib);
        const char *labels[] = { "version", product, NULL };
        ingest_buf_line(ib, "grafana_image_renderer_browser_info", labels, 1);
        ingest_send(b->pool->ingest, ib);
        free(ib);
    }
    if (b->connected)
        browser_set_up(b, 1);
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
    struct cdp_msg m;
    int rc = cdp_msg_parse(&m, text, len);
    if (rc < 0) {
        log_warn("browser sent a message we cannot read browser=%u why=\"%s\"", b->index,
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

static int browser_lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    (void)user;
    struct browser *b = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
        struct browser_pool *p = lws_context_user(lws_get_context(wsi));
        if (p && p->ops->wake)
            p->ops->wake(p->arg);
        break;
    }
    case LWS_CALLBACK_CLIENT_ESTABLISHED: {
        if (!b)
            break;
        b->wsi = wsi;
        b->connected = 1;
        b->generation++;
        b->backoff_ms = 0;
        struct buf out;
        browser_cmd_init(&out);
        int id = cdp_browser_get_version(&b->cdp, &out);
        if (browser_submit(b, &out, id, 5000, browser_version_reply, b) < 0)
            browser_set_up(b, 1);
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
        if (!b->rx_overflow)
            browser_rx_take(b, in, len);
        else
            browser_rx_tail(b, in, len);
        if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
            if (!b->rx_overflow && b->rx.len)
                browser_dispatch(b, b->rx.data, b->rx.len);
            if (b->rx_overflow) {
                /* A paused request too large to keep is still answered
                 * (refused), or it would wait for ever. */
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

static void browser_heartbeat(lws_sorted_usec_list_t *sul)
{
    struct browser_pool *p = lws_container_of(sul, struct browser_pool, heartbeat);
    atomic_store(&p->heartbeat_ns, clock_now_ns());
    lws_sul_schedule(p->lws, 0, &p->heartbeat, browser_heartbeat, (lws_usec_t)BROWSER_HEARTBEAT_MS * LWS_US_PER_MS);
}

int64_t browser_pool_stalled_ns(struct browser_pool *p, int64_t now)
{
    int64_t d = now - atomic_load(&p->heartbeat_ns) - (int64_t)BROWSER_HEARTBEAT_MS * CLOCK_NS_PER_MS;
    return d > 0 ? d : 0;
}

struct browser_pool *browser_pool_new(unsigned count, unsigned port_base, struct ingest_sender *ingest,
                                      const struct browser_pool_ops *ops, void *arg)
{
    lws_set_log_level(LLL_ERR | (log_enabled(CONFIG_LOG_DEBUG) ? LLL_WARN : 0), browser_lws_log);
    struct browser_pool *p = xcalloc(1, sizeof(*p));
    p->count = count;
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
     * one websocket per browser, a second while one is being replaced, and
     * lws's own cancel pipe; past this limit a connect fails and is retried. */
    info.fd_limit_per_thread = 2 * count + 8;
    p->lws = lws_create_context(&info);
    if (!p->lws) {
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
        cdp_init(&b->cdp);
        buf_init(&b->rx);
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
