/* Hands render jobs from the HTTP thread to the browser thread: a
 * mutex-protected inbox, a bounded wait list, admission by memory (a render
 * starts only when the memory budget has room for what it is expected to
 * take: admit.h, memory.h), a per-browser concurrency limit, the least busy
 * connected browser first, one retry on another browser when the first one
 * goes away under a render, and up to two when its page crashes, each once
 * there is room again. */
#ifndef RV_JOBS_H
#define RV_JOBS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "admit.h"
#include "browser.h"
#include "ingest.h"
#include "query.h"
#include "render.h"

struct render;

/* One /render request. The HTTP side allocates it, fills the request and
 * deadline, and owns the job again once done() has been called (on the
 * browser thread): only then may it free it. In between, the HTTP side
 * touches the job only through jobs_cancel. */
struct job {
    struct render_request req;
    int64_t deadline_ns;
    void (*done)(struct job *j); /* the last the browser thread does with j */
    void *owner;

    /* Shared: held under the jobs lock; cancelled set under it, read on the
     * browser thread without it. */
    int held; /* submitted and done() not called yet */
    atomic_int cancelled;

    /* The answer, set before done(). */
    unsigned status;
    const char *content_type;
    char *filename;      /* a csv's name, or NULL */
    unsigned char *body; /* the HTTP side frees it (or hands it to MHD) */
    size_t len;
    char *error;
    /* For the request's log line: the steps of the render that answered
     * (each step once), the browser it ran on (-1: none), and when its
     * first try began (0: it never began). */
    struct render_step steps[RENDER_STEPS_MAX];
    unsigned nsteps;
    int64_t steps_ns; /* when the first of steps began (CLOCK_MONOTONIC) */
    const char *page_kind;            /* by its signals; NULL: no probe answered */
    double rule_ms[NAMES_RULE_COUNT]; /* what held its readiness back */
    int browser;
    int64_t began_ns;
    int page_log;          /* the page's log was on: its counts below */
    unsigned page_errors;  /* console errors, exceptions, the browser's errors */
    unsigned page_failed;  /* requests failed or refused */

    /* The browser thread's. */
    struct job *next;
    struct render *render;
    int tries; /* the HTTP side may read it once done() has been called */
    int crashes;               /* tries whose page crashed */
    struct browser *failed_on; /* where its last try failed: another first */
    struct admit_run run;      /* what it was admitted with, and has grown to */
    int mem_waited;            /* it has waited for memory (counted once) */
    int64_t not_before_ns;     /* a crashed try's next waits for a fresh reading */
    lws_sorted_usec_list_t wait_sul;
    struct jobs *jobs;
};

struct jobs;

/* What jobs_new needs to know. */
struct jobs_limits {
    unsigned concurrency;   /* renders per browser */
    unsigned waiting;       /* how many jobs may wait before a new one is refused */
    uint64_t render_memory; /* the estimate of a render until measured; 0: no admission by memory */
    uint64_t memory_budget; /* [renderer] memory_budget; 0: none */
};

struct jobs *jobs_new(const struct jobs_limits *lim, struct ingest_sender *ingest);
void jobs_set_pool(struct jobs *s, struct browser_pool *p);
void jobs_free(struct jobs *s);

/* HTTP thread: 0 (done() will be called), -EBUSY when full (answer 429),
 * or -ESHUTDOWN once jobs_close or jobs_abort_all has run (answer 503). */
int jobs_submit(struct jobs *s, struct job *j);
/* Any thread: the drain at shutdown begins; jobs_submit refuses from now
 * on, and the jobs already submitted go on. */
void jobs_close(struct jobs *s);
/* Any thread: jobs submitted and not answered yet (running or queued). */
unsigned jobs_active(struct jobs *s);
/* HTTP thread: the client of j went away. 0: the browser thread will drop
 * j or stop its render, and done() follows (status 499 unless the render
 * ended first); -EALREADY: done() has been called, or is being called,
 * with the answer as it was. */
int jobs_cancel(struct jobs *s, struct job *j);
/* Where "drained N" goes: the supervisor's control socket. */
void jobs_set_control(struct jobs *s, const char *supervisor_ctl);
/* HTTP thread: browser index is over its memory limit; give it no new
 * render, drop its spare, and once its renders are over tell the
 * supervisor, which restarts it. Undone when the browser reconnects. */
void jobs_drain(struct jobs *s, unsigned index);

/* HTTP thread: the supervisor's sum of its children's PSS, what the
 * service uses where it has no cgroup of its own. */
void jobs_set_tree_memory(struct jobs *s, uint64_t bytes);

/* Browser thread. */
void jobs_wake(void *s);                                /* browser_pool_ops.wake */
void jobs_changed(void *s, struct browser *b, int up);  /* browser_pool_ops.changed */
/* Every job still here is answered 503 (shutting down). */
void jobs_abort_all(struct jobs *s);

#endif
