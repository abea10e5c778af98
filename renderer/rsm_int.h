/* What the parts of one render's machine share (rsm.c: the table, the way
 * in and out, commands and steps; rsm_page.c; rsm_ready.c; rsm_csv.c). All
 * of it is pure and runs on whichever thread calls rsm_step() (the
 * browser thread); nothing here is for other modules. */
#ifndef RV_RSM_INT_H
#define RV_RSM_INT_H

#include <stdint.h>

#include "rsm.h"

/* The parts of a page's preparation (rsm_prepare): the domains enabled,
 * which a spare does ahead, and the request's own settings. */
#define RSM_PREPARE_ENABLES 1u
#define RSM_PREPARE_REQUEST 2u

/* What one step works with: the caller's world and what to tell it. */
struct rsm_ctx {
    const struct rsm_env *env;
    struct rsm_out *out;
    int64_t now;
};

/* rsm.c: steps, commands, the way out */
/* The time since the last step's end goes to step (not for a spare). */
void rsm_report(struct rsm *m, struct rsm_ctx *x, enum names_step step);
/* A command's buffer, with the room the caller's transport wants in front. */
void rsm_cmd_init(const struct rsm_ctx *x, struct buf *b);
/* Queue the command a builder just wrote into text (id < 0: the builder
 * refused an argument); wait: the state waits for its reply. 0, or -1 when
 * it cannot go: the render has failed then. */
int rsm_queue(struct rsm *m, struct rsm_ctx *x, struct buf *text, int id, unsigned timeout_ms, int wait);
/* The ms left before the request's deadline (at least 0). */
unsigned rsm_left_ms(const struct rsm *m, const struct rsm_ctx *x);
/* Be woken at at_ns, or in a second at most. */
void rsm_wake(struct rsm_ctx *x, int64_t at_ns);
/* The render ends with this answer (the first one only), then disposes of
 * its browser context. */
void rsm_fail(struct rsm *m, struct rsm_ctx *x, unsigned status, int retryable, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void rsm_lost(struct rsm *m, struct rsm_ctx *x);
/* The way out, after a result or a failure: dispose of the context. */
void rsm_dispose(struct rsm *m, struct rsm_ctx *x);
/* The reply the state waits for: 1 when in is it (and fine to act on);
 * a reply in trouble (a lost connection, a timeout, too large) has failed
 * the render. */
int rsm_awaited(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x);
int rsm_reply_trouble(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x);

/* rsm_page.c: making the page, navigating, the page's events */
/* Copy a CDP id (-EBADMSG when longer than CDP_ID_MAX). */
int rsm_copy_id(char *dst, const char *src);
void rsm_begin(struct rsm *m, struct rsm_ctx *x);
void rsm_prepare(struct rsm *m, struct rsm_ctx *x, unsigned parts);
void rsm_on_event(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x);
void rsm_on_lost(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x);
void rsm_on_context(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x);
void rsm_on_target(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x);
void rsm_on_attach(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x);
void rsm_on_prepare(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x);
void rsm_on_navigate(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x);

/* rsm_ready.c: readiness, the whole page's resize, the capture */
/* Readiness begins (after the load event, or again after the resize). */
void rsm_ready_begin(struct rsm *m, struct rsm_ctx *x);
void rsm_on_ready(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x);
void rsm_on_ready_wake(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x);
void rsm_on_layout(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x);
void rsm_on_resize(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x);
void rsm_on_settle(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x);
void rsm_on_capture(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x);

/* rsm_csv.c: the csv's download */
/* The download is complete and the navigation answered: read its file. */
void rsm_dl_check(struct rsm *m, struct rsm_ctx *x);
void rsm_on_download(struct rsm *m, struct rsm_ctx *x, const struct cdp_msg *msg);
void rsm_on_file(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x);

#endif
