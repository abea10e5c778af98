/* The messages of a browser connection, above the transport: commands
 * queued with a deadline and matched to their reply by id, events handed
 * to the session's subscriber, and a message gathered from its pieces
 * within its size limit. Browser thread only. Memory: a queued command's
 * text (taken from the caller's buf) is freed once written or when the
 * connection goes; a pending command is freed just before its callback is
 * called, and the cdp_msg that callback gets lives only during the call; a
 * subscription keeps its own copy of the session id; the receive buffer is
 * the browser's, kept between messages up to BROWSER_RX_KEEP. */
#include "browser.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "xalloc.h"

#include "browser_int.h"

#define BROWSER_RX_KEEP (1024 * 1024) /* free a bigger receive buffer after use */

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
void browser_rx_piece(struct browser *b, const char *in, size_t len)
{
    if (!b->rx_overflow)
        browser_rx_take(b, in, len);
    else
        browser_rx_tail(b, in, len);
}

/* The end of a message (a websocket's last fragment, a pipe's NUL). */
void browser_rx_end(struct browser *b)
{
    if (!b->rx_overflow && b->rx.len)
        browser_dispatch(b, b->rx.data, b->rx.len);
    if (b->rx_overflow) {
        /* A request's event too large to keep still reaches the render
         * as a stand-in (cdp_event_stub): a paused request is answered
         * (refused), or it would wait for ever; a request's start is
         * counted by readiness, or the page is taken before its answer. */
        struct buf stub;
        buf_init(&stub);
        if (cdp_event_stub(b->rx_head, b->rx_head_len, b->rx_tail, b->rx_tail_len, &stub) == 0)
            browser_dispatch(b, stub.data, stub.len);
        buf_fini(&stub);
    }
    b->rx_overflow = 0;
    if (b->rx.cap > BROWSER_RX_KEEP)
        buf_fini(&b->rx);
    else
        buf_reset(&b->rx);
}
