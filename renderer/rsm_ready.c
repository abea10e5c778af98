/* Readiness and the capture of one render (rsm.h, ready.h decides): the
 * page probed until it is ready, woken by its network events; for a whole
 * page (a full-page png, a pdf) its layout measured, the viewport grown to
 * it, two frames let run and readiness once more for the lazy panels; then
 * the screenshot or the pdf. Pure: run by rsm_step() on the browser thread.
 * The decoded image becomes the result's body, owned by struct rsm. */
#include "rsm_int.h"

#include <math.h>

#include "clock.h"

static void rsm_probe(struct rsm *m, struct rsm_ctx *x)
{
    ready_wait_end(&m->ready, x->now);
    /* The answer comes back a little before the deadline, so that a 408
     * can say what held the page. */
    unsigned wait = rsm_left_ms(m, x);
    wait = wait > 2 * RSM_PROBE_MARGIN_MS ? wait - RSM_PROBE_MARGIN_MS : wait;
    if (wait > READY_PROBE_MS)
        wait = READY_PROBE_MS;
    struct buf expr, b;
    buf_init(&expr);
    rsm_cmd_init(x, &b);
    ready_probe_expression(&expr, wait);
    int id = cdp_runtime_evaluate(x->env->cdp, &b, m->session_id, expr.data, 1);
    buf_fini(&expr);
    m->state = RSM_READY;
    m->probing = 1;
    rsm_queue(m, x, &b, id, wait + RSM_CMD_TIMEOUT_MS, 1);
}

/* Readiness begins (after the load event, or again after the resize). */
void rsm_ready_begin(struct rsm *m, struct rsm_ctx *x)
{
    ready_phase(&m->ready, m->scrolled ? NAMES_RULE_LAZY : -1);
    rsm_probe(m, x);
}

/* The page in full: a full-page png, and a pdf, whose lazy panels load
 * only once they are in view (what scrolling through the dashboard does). */
static int rsm_whole_page(const struct rsm *m)
{
    return m->req->encoding == QUERY_ENCODING_PDF ||
           (m->req->height == QUERY_FULL_PAGE && m->req->encoding == QUERY_ENCODING_PNG);
}

static void rsm_capture(struct rsm *m, struct rsm_ctx *x)
{
    struct buf b;
    rsm_cmd_init(x, &b);
    int id;
    const struct render_request *q = m->req;
    if (q->encoding == QUERY_ENCODING_PDF) {
        struct cdp_pdf pdf = { .landscape = q->pdf.landscape,
                               .print_background = q->pdf.print_background,
                               .page_ranges = q->pdf.page_ranges };
        query_paper_inches(q->pdf.format, &pdf.paper_width, &pdf.paper_height);
        /* As the references print: a larger deviceScaleFactor fits more of
         * the dashboard on the paper, at 1/deviceScaleFactor (Chrome takes
         * 0.1 to 2). */
        double scale = 1.0 / q->device_scale_factor;
        pdf.scale = scale < 0.1 ? 0.1 : scale > 2.0 ? 2.0 : scale;
        id = cdp_page_print_to_pdf(x->env->cdp, &b, m->session_id, &pdf);
    } else {
        struct cdp_screenshot shot = { .optimize_for_speed = 1 };
        id = cdp_page_capture_screenshot(x->env->cdp, &b, m->session_id, &shot);
    }
    m->state = RSM_CAPTURE;
    rsm_queue(m, x, &b, id, rsm_left_ms(m, x) + 1000, 1);
}

static void rsm_ready(struct rsm *m, struct rsm_ctx *x)
{
    m->probing = 0;
    m->result.ready_done = 1;
    if (m->scrolled) {
        /* The second phase's waiting was for panels brought into view. */
        rsm_report(m, x, NAMES_STEP_DASHBOARD_SCROLLING);
        rsm_capture(m, x);
        return;
    }
    rsm_report(m, x, NAMES_STEP_PANELS_RENDERED);
    if (rsm_whole_page(m)) {
        /* From here to the capture, the time is the lazy panels'. */
        m->ready.wait_ns = x->now;
        m->ready.wait_rule = NAMES_RULE_LAZY;
        struct buf b;
        rsm_cmd_init(x, &b);
        m->state = RSM_LAYOUT;
        rsm_queue(m, x, &b, cdp_page_get_layout_metrics(x->env->cdp, &b, m->session_id), RSM_CMD_TIMEOUT_MS, 1);
        return;
    }
    rsm_capture(m, x);
}

static void rsm_on_probe(struct rsm *m, struct rsm_ctx *x, const struct cdp_msg *msg)
{
    struct ready_page p;
    if (ready_parse(msg, &p) < 0) {
        /* The page navigated away under the probe: ask again shortly. */
        m->probing = 0;
        rsm_wake(x, x->now + (int64_t)RSM_PROBE_RETRY_MS * CLOCK_NS_PER_MS);
        return;
    }
    int64_t wake;
    switch (ready_decide(&m->ready, &p, x->now, &wake)) {
    case READY_YES:
        rsm_ready(m, x);
        return;
    case READY_PROBE:
        rsm_probe(m, x);
        return;
    case READY_WAIT:
        m->probing = 0;
        rsm_wake(x, wake);
        return;
    }
}

void rsm_on_ready(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    if (!rsm_awaited(m, in, x))
        return;
    m->wait_id = 0;
    rsm_on_probe(m, x, in->msg);
}

void rsm_on_ready_wake(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    (void)in;
    if (!m->probing)
        rsm_probe(m, x);
}

void rsm_on_layout(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    if (!rsm_awaited(m, in, x))
        return;
    double w, h;
    if (cdp_result_content_size(in->msg, &w, &h) < 0) {
        rsm_fail(m, x, 500, 0, "cannot measure the page");
        return;
    }
    m->full_page_h = h < QUERY_SIZE_MIN ? QUERY_SIZE_MIN : h > QUERY_SIZE_MAX ? QUERY_SIZE_MAX : (int)ceil(h);
    struct buf b;
    rsm_cmd_init(x, &b);
    m->state = RSM_RESIZE;
    rsm_queue(m, x, &b,
              cdp_set_device_metrics(x->env->cdp, &b, m->session_id, m->req->width, m->full_page_h,
                                     m->req->device_scale_factor),
              RSM_CMD_TIMEOUT_MS, 1);
}

void rsm_on_resize(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    if (!rsm_awaited(m, in, x))
        return;
    if (in->msg->type == CDP_MSG_ERROR) {
        rsm_fail(m, x, 500, 0, "cannot resize the page: %s", in->msg->error_message);
        return;
    }
    m->scrolled = 1;
    /* Two frames, so the lazy panels' intersection observers see they are
     * in view and their queries start, then readiness once more. */
    static const char expr[] = "new Promise(function(resolve){requestAnimationFrame(function(){"
                               "requestAnimationFrame(function(){resolve(true);});});})";
    struct buf b;
    rsm_cmd_init(x, &b);
    m->state = RSM_SETTLE;
    rsm_queue(m, x, &b, cdp_runtime_evaluate(x->env->cdp, &b, m->session_id, expr, 1), RSM_CMD_TIMEOUT_MS, 1);
}

void rsm_on_settle(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    if (!rsm_awaited(m, in, x))
        return;
    /* Whatever the frames said (a page may have navigated meanwhile):
     * readiness again, all its waiting charged to the lazy panels. */
    ready_wait_end(&m->ready, x->now);
    rsm_ready_begin(m, x);
}

void rsm_on_capture(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    if (!rsm_awaited(m, in, x))
        return;
    const struct cdp_msg *msg = in->msg;
    const char *data;
    size_t len;
    if (cdp_result_data(msg, &data, &len) < 0) {
        rsm_fail(m, x, 500, 0, "the browser did not capture the page: %s",
                 msg->type == CDP_MSG_ERROR ? msg->error_message : "no data");
        return;
    }
    unsigned char *img;
    size_t img_len;
    if (cdp_decode_base64(data, len, &img, &img_len) < 0) {
        rsm_fail(m, x, 500, 0, "the browser sent an image we cannot decode");
        return;
    }
    rsm_report(m, x, NAMES_STEP_SCREENSHOT);
    m->have_result = 1;
    m->result.status = 200;
    m->result.content_type = m->req->encoding == QUERY_ENCODING_PDF ? "application/pdf" : "image/png";
    m->result.body = img;
    m->result.len = img_len;
    rsm_dispose(m, x);
}
