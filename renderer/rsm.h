/* The render state machine: one render on one browser, from a fresh browser
 * context to a decoded image, always ending with the context disposed. Its
 * states and events are one table and rsm_step() is the one place a render
 * changes state. It is pure (no I/O, no clock, no timers): the caller
 * (render.c) feeds it replies, events and deadlines with the time, and it
 * answers with the CDP commands to send and what else to do, so every
 * render path and every readiness rule is tested on recorded CDP
 * transcripts without a browser (tests/unit/test_rsm.c). */
#ifndef RV_RSM_H
#define RV_RSM_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "cdp.h"
#include "names.h"
#include "query.h"
#include "ready.h"

#define RSM_CMD_TIMEOUT_MS 15000u
#define RSM_DISPOSE_TIMEOUT_MS 5000u
/* A spare is begun this long after it is asked for (when a render has just
 * taken the last one), so that making its context and page does not compete
 * with that render's navigation for the browser's main thread: the bench
 * page navigates in 18 ms with the delay, 32 ms without. A request that
 * claims it sooner begins it at once. */
#define RSM_SPARE_DELAY_MS 60
/* A probe answers this long before the request's deadline at the latest. */
#define RSM_PROBE_MARGIN_MS 150
/* A probe that failed (the page navigated under it) is sent again after this. */
#define RSM_PROBE_RETRY_MS 50
#define RSM_LOADERS 8
/* The longest csv file name handed to the client. */
#define RSM_FILENAME_MAX 128
/* A csv larger than this is refused rather than read into memory. */
#define RSM_CSV_MAX (64u * 1024 * 1024)
/* More than any render takes (a full-page png: 7). */
#define RSM_STEPS_MAX 12
/* The most commands one step sends (the preparation of a page). */
#define RSM_CMDS_MAX 16

enum rsm_state {
    RSM_CONTEXT,  /* Target.createBrowserContext */
    RSM_TARGET,   /* Target.createTarget */
    RSM_ATTACH,   /* Target.attachToTarget */
    RSM_PREPARE,  /* enables, scripts, viewport, timezone, headers, cookie */
    RSM_PARKED,   /* a spare with its page ready, waiting for a request */
    RSM_NAVIGATE, /* Page.navigate and its load event */
    RSM_READY,    /* readiness: a probe in the page, or a wait on the network */
    RSM_LAYOUT,   /* full page and pdf: Page.getLayoutMetrics */
    RSM_RESIZE,   /* full page and pdf: the viewport to the content's height */
    RSM_SETTLE,   /* full page and pdf: two frames, so lazy panels see they are in view */
    RSM_CAPTURE,  /* Page.captureScreenshot / Page.printToPDF */
    RSM_DOWNLOAD, /* csv: waiting for the page's download, then its file */
    RSM_DISPOSE,  /* Target.disposeBrowserContext */
    RSM_DONE,
    RSM_STATE_COUNT,
};

enum rsm_event {
    RSM_EV_BEGIN,    /* make the context now */
    RSM_EV_CLAIM,    /* a request takes this spare (req, deadline_ns) */
    RSM_EV_REPLY,    /* a reply to a command (msg), or err with id */
    RSM_EV_CDP,      /* an event on the page's session (msg) */
    RSM_EV_LOST,     /* the connection went, and the session with it */
    RSM_EV_WAKE,     /* the wake timer asked for in rsm_out */
    RSM_EV_DEADLINE, /* the request's time is up */
    RSM_EV_CANCEL,   /* the client went away: 499 */
    RSM_EV_ABANDON,  /* end with a 500 saying why */
    RSM_EV_FILE,     /* the downloaded file (data, len) or why not (err) */
    RSM_EV_COUNT,
};

struct rsm_input {
    enum rsm_event ev;
    const struct cdp_msg *msg; /* REPLY, CDP */
    int id;                    /* REPLY: the command's id (also without msg) */
    int err;                   /* REPLY: -ETIMEDOUT, -ECONNRESET, -EMSGSIZE; FILE: -errno */
    const char *why;           /* ABANDON */
    const struct render_request *req; /* CLAIM */
    int64_t deadline_ns;       /* CLAIM */
    unsigned char *data;       /* FILE: taken over */
    size_t len;                /* FILE */
};

/* What the caller knows and the machine does not. */
struct rsm_env {
    struct cdp *cdp;   /* the connection's command ids */
    size_t cmd_reserve; /* bytes to leave in front of each command's text (LWS_PRE) */
    int conn_ok;       /* the browser is up, on the connection the render began on */
    const char *dl_dir; /* csv: the render's private download folder (made by the caller) */
    int intercept;     /* the page's requests are paused for the caller (Fetch.enable, Target.setAutoAttach) */
};

struct rsm_cmd {
    struct buf text;   /* the command from byte cmd_reserve on */
    int id;
    unsigned timeout_ms;
};

/* What to do after a step, in this order. */
struct rsm_out {
    int forget;                 /* drop replies still due and the subscription (browser_forget) */
    char unsubscribe[CDP_ID_MAX + 1]; /* stop events of this session ("" none) */
    int subscribe;              /* send the page session's events (rsm_session) */
    struct rsm_cmd cmds[RSM_CMDS_MAX];
    unsigned ncmds;
    int wake_cancel;            /* cancel the wake timer */
    int64_t wake_ns;            /* then (re)schedule it at this time (0: leave it) */
    int read_file;              /* read rsm_download_path's file, answer RSM_EV_FILE */
    int failed;                 /* the render failed just now: log rsm_result's error */
    int dispose_failed;         /* the browser did not dispose of the context: warn */
    int finish;                 /* the render is over: cancel the deadline, call done */
};

struct rsm_step {
    enum names_step step;
    double seconds;
};

struct rsm_result {
    unsigned status;          /* 200, 400, 408, 499 (cancel), 500 */
    const char *content_type; /* 200 only */
    const char *filename;     /* 200 csv: the page's name for it, safe in a header */
    unsigned char *body;      /* 200: the image, pdf or csv */
    size_t len;
    char *error;              /* otherwise: one line for the client */
    const char *failed_step;  /* otherwise: the step it was in (rsm_state_step) */
    int retryable;            /* the browser or its connection went: another may do */
    int crashed;              /* the page crashed or was closed under the render */
    struct rsm_step steps[RSM_STEPS_MAX];
    unsigned nsteps;
    int64_t steps_ns;         /* when the request's steps began: its start, or its claim */
    int ready_done;           /* readiness was reached (the capture followed) */
    int ready_seen;           /* the page answered a probe: kind and rule_ms say what held it */
    double rule_ms[NAMES_RULE_COUNT]; /* how long each readiness rule held the render */
    enum ready_kind kind;     /* what the page was, by its signals */
};

struct rsm {
    enum rsm_state state;
    const struct render_request *req; /* NULL: a spare not claimed yet */
    int spare;
    int64_t deadline_ns;
    int64_t step_start_ns;
    int wait_id;        /* the one command the state waits for */
    int prepare_ids[RSM_CMDS_MAX];
    unsigned prepare_left;
    unsigned prepared;  /* RSM_PREPARE_* parts sent */
    int context_coming; /* DISPOSE: waiting for the context's id to dispose of it */
    int navigated;
    int scrolled;       /* full page / pdf: the viewport holds the whole page now */
    int probing;        /* READY: a probe is out (else a wait on the network) */
    int full_page_h;
    char context_id[CDP_ID_MAX + 1];
    char target_id[CDP_ID_MAX + 1];
    char session_id[CDP_ID_MAX + 1];
    char loader_id[CDP_ID_MAX + 1];
    char loaded[RSM_LOADERS][CDP_ID_MAX + 1];
    unsigned nloaded;
    struct ready ready;
    char dl_guid[CDP_ID_MAX + 1];
    char dl_name[RSM_FILENAME_MAX + 1];
    int dl_done;
    struct rsm_result result;
    int have_result;
};

/* A render of req (NULL: a spare) begun at now_ns; send RSM_EV_BEGIN when
 * it is to start making its context. */
void rsm_init(struct rsm *m, const struct render_request *req, int64_t deadline_ns, int64_t now_ns);
void rsm_fini(struct rsm *m);
/* The one transition function. out is filled (its commands owned by the
 * caller after, to send or buf_fini). */
void rsm_step(struct rsm *m, const struct rsm_env *env, const struct rsm_input *in, int64_t now_ns,
              struct rsm_out *out);
/* rsm_out's commands not sent: free them. */
void rsm_out_fini(struct rsm_out *out);

/* Whether a spare can still be claimed. */
int rsm_claimable(const struct rsm *m, const struct rsm_env *env);
const char *rsm_session(const struct rsm *m);
/* The step a state belongs to, for messages (also the 408's). */
const char *rsm_state_step(enum rsm_state s);
const char *rsm_state_name(enum rsm_state s);
/* The csv's file in dir: dir/guid. */
int rsm_download_path(const struct rsm *m, const char *dir, char *path, size_t size);

#endif
