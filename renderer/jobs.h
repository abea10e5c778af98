/* Hands render jobs from the HTTP thread to the browser thread: a
 * mutex-protected inbox, a bounded wait list, a per-browser concurrency
 * limit, the least busy connected browser first, and one retry on another
 * browser when the first one goes away under a render. */
#ifndef RV_JOBS_H
#define RV_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "browser.h"
#include "ingest.h"
#include "query.h"

struct render;

/* One /render request. The HTTP side fills the request and deadline, and
 * owns the job again once done() has been called (on the browser thread). */
struct job {
    struct render_request req;
    int64_t deadline_ns;
    void (*done)(struct job *j); /* the last the browser thread does with j */
    void *owner;

    /* The answer, set before done(). */
    unsigned status;
    const char *content_type;
    char *filename;      /* a csv's name, or NULL */
    unsigned char *body; /* the HTTP side frees it (or hands it to MHD) */
    size_t len;
    char *error;

    /* The browser thread's. */
    struct job *next;
    struct render *render;
    int tries;
    lws_sorted_usec_list_t wait_sul;
    struct jobs *jobs;
};

struct jobs;

/* concurrency: renders per browser; waiting: how many jobs may wait for a
 * free browser before a new one is refused. */
struct jobs *jobs_new(unsigned concurrency, unsigned waiting, struct ingest_sender *ingest);
void jobs_set_pool(struct jobs *s, struct browser_pool *p);
void jobs_free(struct jobs *s);

/* HTTP thread: 0 (done() will be called), or -EBUSY when full (answer 429). */
int jobs_submit(struct jobs *s, struct job *j);

/* Browser thread. */
void jobs_wake(void *s);                                /* browser_pool_ops.wake */
void jobs_changed(void *s, struct browser *b, int up);  /* browser_pool_ops.changed */
/* Every job still here is answered 503 (shutting down). */
void jobs_abort_all(struct jobs *s);

#endif
