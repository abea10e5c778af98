/* The pipe transport (devtools = pipe): the supervisor's pipe ends handed
 * over on the HTTP thread (browser_pool_give_pipes, browser_pool_pipes_missing,
 * under the pool's lock) and adopted on the browser thread, which reads
 * NUL-ended messages from them, writes the queued commands to them, and
 * first clears what an earlier renderer left in the browser. Memory: pipe
 * ends waiting in the inbox are the pool's, closed when replaced or at
 * browser_pool_free; once adopted, lws owns and closes them. Reads go
 * through the pool's one rx_chunk. */
#include "browser.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "xalloc.h"

#include "browser_int.h"

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
void browser_takeover(struct browser *b)
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

/* ---- pipes -------------------------------------------------------------- */

/* Messages on a pipe end with a NUL; one read may hold many, or a piece. */
int browser_pipe_read(struct browser *b)
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
int browser_pipe_write(struct browser *b)
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
void browser_pipe_drop(struct browser *b)
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
    return browser_adopt_fd(b->pool, fd, "cdp", b);
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
void browser_pool_take_inbox(struct browser_pool *p)
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
