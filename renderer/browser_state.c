/* What the rest of the renderer reads about the browsers: the heartbeat
 * that says the browser thread still turns and pings each browser, the
 * health answers and counts the HTTP thread reads (atomics, any thread),
 * and the getters the renders use on the browser thread. Allocates
 * nothing; a ping's command is browser_msg.c's. */
#include "browser.h"

#include <stdatomic.h>

#include "clock.h"
#include "ctl.h"

#include "browser_int.h"

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

void browser_heartbeat(lws_sorted_usec_list_t *sul)
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
