/* The CDP connections to the supervised browsers: one websocket per browser
 * (libwebsockets, client mode), found through /json/version and reconnected
 * with backoff when the supervisor restarts the browser. Commands carry a
 * deadline and are matched to their reply by id; events are dispatched by
 * sessionId. Everything here runs on the one thread that calls
 * browser_pool_service(), except browser_pool_wake() and
 * browser_pool_up_count(). */
#ifndef RV_BROWSER_H
#define RV_BROWSER_H

#include <stdint.h>

#include <libwebsockets.h>

#include "buf.h"
#include "cdp.h"
#include "ingest.h"

struct browser;
struct browser_pool;

/* The reply to command id: err 0 and m the reply (a result or an error
 * reply, to be read with cdp_result_*), or with m NULL err -ETIMEDOUT (no
 * reply by the deadline), -ECONNRESET (the connection went) or -EMSGSIZE
 * (the reply was larger than cdp_reply_max() allows for the command, and
 * was dropped). */
typedef void (*browser_reply_fn)(void *arg, int id, const struct cdp_msg *m, int err);
/* An event on a session; m NULL means the connection is gone (the session
 * with it), and the subscription has been removed. */
typedef void (*browser_event_fn)(void *arg, const struct cdp_msg *m);

struct browser_pool_ops {
    /* browser_pool_wake() was called (from any thread). */
    void (*wake)(void *arg);
    /* A browser's connection came up (after Browser.getVersion) or went. */
    void (*changed)(void *arg, struct browser *b, int up);
};

/* pipes: devtools = pipe, the connections come from
 * browser_pool_give_pipes(); else websockets to port_base + i. */
struct browser_pool *browser_pool_new(unsigned count, unsigned port_base, int pipes, struct ingest_sender *ingest,
                                      const struct browser_pool_ops *ops, void *arg);
void browser_pool_free(struct browser_pool *p);
/* Runs the loop once (waits for sockets or timers); < 0 when it broke. */
int browser_pool_service(struct browser_pool *p);
/* Any thread: make the service thread call ops->wake soon. */
void browser_pool_wake(struct browser_pool *p);
/* Any thread (the HTTP thread, from the supervisor's "pipes N G"): browser
 * index's pipe ends, w to its fd 3 and r from its fd 4, of its start gen.
 * Taken over (the browser thread adopts them soon, replacing an older set,
 * and first clears what an earlier renderer left in that browser): 0.
 * Refused and closed: -EALREADY for a gen not newer than one given before,
 * -EINVAL for an index out of range or a pool without pipes. */
int browser_pool_give_pipes(struct browser_pool *p, unsigned index, unsigned gen, int w, int r);
/* Any thread: how many browsers have no pipes in use or on their way (0
 * without pipes): while any has none, the renderer says "hello". */
unsigned browser_pool_pipes_missing(struct browser_pool *p);
/* Any thread: how many browsers have a working connection. */
unsigned browser_pool_up_count(struct browser_pool *p);
/* How long the browser thread has gone without turning, past its 1 s
 * heartbeat: 0 while it is well. Any thread. */
int64_t browser_pool_stalled_ns(struct browser_pool *p, int64_t now);
/* Any thread: browser i as a health probe's answer tells it (common/ctl.h):
 * CTL_BROWSER_UNKNOWN without a connection, CTL_BROWSER_SILENT when it has
 * sent nothing for longer than silent_max_ns (the heartbeat asks it for
 * its version every second), else CTL_BROWSER_HEARD. */
char browser_pool_health(struct browser_pool *p, unsigned i, int64_t now, int64_t silent_max_ns);
unsigned browser_pool_count(const struct browser_pool *p);
struct browser *browser_pool_get(struct browser_pool *p, unsigned i);
struct lws_context *browser_pool_lws(struct browser_pool *p);

unsigned browser_index(const struct browser *b);
struct lws_context *browser_lws(struct browser *b);
int browser_is_up(const struct browser *b);
/* Bumped at every new connection: a render notices its browser changed. */
unsigned browser_generation(const struct browser *b);
/* Work the caller has placed on this browser (renders), for load balancing. */
unsigned browser_load(const struct browser *b);
void browser_load_add(struct browser *b, int delta);
/* How long the browser has sent nothing while commands wait on it; 0 when
 * none waits. A stopped or wedged browser grows this; a working one keeps
 * answering (a readiness wait in a page can be quiet for seconds, too). */
int64_t browser_silent_ns(const struct browser *b, int64_t now_ns);
/* The browser's product ("HeadlessChrome/156.0.8078.108"), or NULL before
 * Browser.getVersion has answered. */
const char *browser_product(const struct browser *b);

/* A command: browser_cmd_init(&out), then a cdp_* builder with
 * browser_cdp(b) and &out, then browser_submit with its id. */
void browser_cmd_init(struct buf *out);
struct cdp *browser_cdp(struct browser *b);
/* Queue the command in out (taken over, left empty) with a deadline
 * timeout_ms from now; fn is called exactly once unless this returns < 0
 * (-ENOTCONN: no connection, -EINVAL: id < 0 from a builder) or the owner
 * calls browser_forget(). */
int browser_submit(struct browser *b, struct buf *out, int id, unsigned timeout_ms, browser_reply_fn fn,
                   void *arg);
/* Drop every pending command and subscription whose arg is arg, without
 * calling them: its owner is going away. */
void browser_forget(struct browser *b, void *arg);

/* Events whose sessionId is session (and the lost-session events naming it)
 * go to fn. -EEXIST when the session already has a subscriber. */
int browser_subscribe(struct browser *b, const char *session, browser_event_fn fn, void *arg);
void browser_unsubscribe(struct browser *b, const char *session);

#endif
