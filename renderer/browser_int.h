/* What the parts of the browser module share (browser.c, browser_devtools.c,
 * browser_msg.c, browser_pipe.c, browser_state.c): the structs of a browser and of the
 * pool, and the calls one part makes into another. Nothing outside
 * renderer/browser*.c includes this; the module's API is browser.h. */
#ifndef RV_BROWSER_INT_H
#define RV_BROWSER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "browser.h"

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
    /* an overflowing message's first and last bytes (cdp_event_stub) */
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
    struct browser_http *http; /* devtools = port: a GET of /json/version in flight */
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

/* browser.c: the connection's life; a descriptor watched by the loop. */
struct lws *browser_adopt_fd(struct browser_pool *p, int fd, const char *protocol, void *opaque);
void browser_schedule_retry(struct browser *b);
void browser_set_live(struct browser *b, int live);
void browser_lost(struct browser *b);
void browser_get_version(struct browser *b);
void browser_attached(struct browser *b);

/* browser_devtools.c: devtools = port, the websocket's path from
 * /json/version, then the websocket's connect; the "devtools-http"
 * protocol's callback; a GET in flight forgotten when the pool goes. */
void browser_connect(struct browser *b);
int browser_http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);
void browser_http_drop(struct browser *b);

/* browser_msg.c: a piece of a message from either transport, and its end. */
void browser_rx_piece(struct browser *b, const char *in, size_t len);
void browser_rx_end(struct browser *b);

/* browser_pipe.c: the pipe transport and taking pipes over. */
void browser_takeover(struct browser *b);
int browser_pipe_read(struct browser *b);
int browser_pipe_write(struct browser *b);
void browser_pipe_drop(struct browser *b);
void browser_pool_take_inbox(struct browser_pool *p);

/* browser_state.c: the browser thread's heartbeat (reschedules itself). */
void browser_heartbeat(lws_sorted_usec_list_t *sul);

#endif
