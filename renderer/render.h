/* One render on one browser: the I/O around its state machine (rsm.h),
 * from a fresh browser context to a decoded image, always ending with the
 * context disposed. Runs on the browser pool's thread. */
#ifndef RV_RENDER_H
#define RV_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include "browser.h"
#include "ingest.h"
#include "names.h"
#include "query.h"

struct render;

/* The longest csv file name handed to the client. */
#define RENDER_FILENAME_MAX 128
/* More than any render takes (a full-page png: 7). */
#define RENDER_STEPS_MAX 12
/* The render is over (the context is disposed, or the connection gone);
 * read the result with render_result, then render_free. */
typedef void (*render_done_fn)(void *arg, struct render *r);

/* One step of a render and how long it took: name is one of the step
 * label values of grafana_image_renderer_step_duration_seconds (a string
 * constant, good on any thread). */
struct render_step {
    const char *name;
    double seconds;
};

struct render_result {
    unsigned status;          /* 200, 400, 408, 499 (render_cancel), 500 */
    const char *content_type; /* 200 only */
    const char *filename;     /* 200 csv: the page's name for it, safe in a header */
    unsigned char *body;      /* 200: the image; taken with render_take_body */
    size_t len;
    const char *error;        /* otherwise: one line for the client */
    int retryable;            /* the browser or its connection went: another may do */
    int crashed;              /* the page crashed or was closed under the render */
    struct render_step steps[RENDER_STEPS_MAX]; /* the steps done for the request, in order */
    unsigned nsteps;
    const char *failed_step;  /* the step a failed render was in */
    int64_t steps_ns;         /* when the first of steps began (CLOCK_MONOTONIC) */
    int ready_done;           /* readiness was reached */
    int ready_seen;           /* the page answered a probe: kind and rule_ms say what held it */
    const char *kind;         /* what the page was by its signals: scenes, panels, binding, boot, none */
    double rule_ms[NAMES_RULE_COUNT]; /* how long each readiness rule held the render back */
    int page_log;             /* the page's log was on: the two below count */
    unsigned page_errors;     /* console errors and asserts, uncaught exceptions, the browser's errors */
    unsigned page_failed;     /* requests failed, answered 400 and above, or refused */
};

/* Start rendering req (borrowed until done) on b, giving up at deadline_ns
 * (CLOCK_MONOTONIC). Step timings go to ingest. done is called once, never
 * from inside render_start. */
struct render *render_start(struct browser *b, const struct render_request *req, int64_t deadline_ns,
                            struct ingest_sender *ingest, render_done_fn done, void *arg);
/* A spare: a context and page made ahead on b, with the domains every
 * render needs enabled, parked until render_claim. Its done is called only
 * if it fails or its browser goes before it is claimed. */
struct render *render_spare_start(struct browser *b, struct ingest_sender *ingest, render_done_fn done,
                                  void *arg);
/* Makes the spare r the render of req, from wherever its preparation has
 * got to (as render_start, with done and arg replacing the spare's). -ESTALE
 * when it cannot serve: it failed or its browser changed; it then still ends
 * through its own done. */
int render_claim(struct render *r, const struct render_request *req, int64_t deadline_ns, render_done_fn done,
                 void *arg);
const struct render_result *render_result(struct render *r);
/* Hands the image over to the caller (who frees it). */
unsigned char *render_take_body(struct render *r, size_t *len);
struct browser *render_browser(const struct render *r);
void render_free(struct render *r);
/* Stop r because its client went away: it ends with 499 through done, as
 * any failure does, after its context is disposed. */
void render_cancel(struct render *r);
/* End r (a spare, usually) with a 500 saying why, through the same path:
 * its context is disposed and done is called. */
void render_abandon(struct render *r, const char *why);

#endif
