/* The one log line of a /render or /render/csv request, written when the
 * request ends, however it ends: what was asked (of the URL only its host:
 * the rest may carry tokens), how it was answered, and where the time went,
 * step by step. docs/logging.md lists the fields. */
#ifndef RV_REQLOG_H
#define RV_REQLOG_H

#include <stddef.h>
#include <stdint.h>

#include "query.h"
#include "render.h"

struct reqlog {
    const char *route;                 /* "render" or "csv" */
    unsigned status;                   /* as the request metrics count it: 499 for a client gone */
    const char *url_host;              /* host[:port] of the url; NULL when the query was not read */
    const struct render_request *req;  /* NULL when the query was not read */
    unsigned long long render_id;      /* the request's id (req->id); 0: none given */
    size_t bytes;                      /* the answer's image, pdf or csv; 0 for none */
    int64_t duration_ns;               /* from the request's arrival to its end */
    const char *error;                 /* why the answer is not a 200, or NULL */
    /* Once handed to the browser thread (submitted is 0 otherwise): */
    int submitted;
    int64_t queue_ns;                  /* until its render began; -1: it never began */
    int browser;                       /* where the render that answered ran; -1: none */
    unsigned tries;
    const struct render_step *steps;
    unsigned nsteps;
    const char *page;                  /* what the page was by its signals; NULL: not decided */
    const double *rule_ms;             /* with page: ms each readiness rule held it back */
    int page_log;                      /* the page's log was on: its counts below */
    unsigned page_errors, page_failed;
    /* A client that went away (gone is 0 otherwise): */
    int gone;
    int64_t ran_ns;                    /* from the arrival until the client left */
    int64_t stop_ns;                   /* from then until the render let go */
    unsigned render_status;            /* how the render ended: 499 stopped, else it was over first */
};

/* The line, as a log_write text ("render request key=value ..."), into buf;
 * returns its length (cut at size - 1). */
size_t reqlog_format(char *buf, size_t size, const struct reqlog *e);

#endif
