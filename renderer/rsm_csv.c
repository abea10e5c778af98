/* The csv of one render (rsm.h): the page's first download taken as the
 * answer, its file name made safe, its size bounded, and its file (read by
 * the caller into the file event) made the result. Pure: run by rsm_step()
 * on the browser thread. The file's bytes handed in with RSM_EV_FILE become
 * the result's body, owned by struct rsm. */
#include "rsm_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static void rsm_dl_name(struct rsm *m, const char *suggested)
{
    const char *base = suggested;
    for (const char *p = suggested; *p; p++)
        if (*p == '/' || *p == '\\')
            base = p + 1;
    while (*base == '.' || *base == ' ')
        base++;
    size_t n = 0;
    for (; *base && n < RSM_FILENAME_MAX; base++) {
        char ch = *base;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 strchr(" ._()-", ch);
        m->dl_name[n++] = ok ? ch : '_';
    }
    m->dl_name[n] = '\0';
    if (n == 0)
        snprintf(m->dl_name, sizeof(m->dl_name), "data.csv");
}

/* The download is complete and the navigation answered: read its file. */
void rsm_dl_check(struct rsm *m, struct rsm_ctx *x)
{
    if (m->state == RSM_DOWNLOAD && m->dl_done && !x->out->read_file)
        x->out->read_file = 1;
}

void rsm_on_download(struct rsm *m, struct rsm_ctx *x, const struct cdp_msg *msg)
{
    struct cdp_download d;
    if (cdp_event_download(msg, &d) < 0)
        return;
    if (msg->event == CDP_EVENT_DOWNLOAD_WILL_BEGIN) {
        if (!m->dl_guid[0] && strlen(d.guid) <= CDP_ID_MAX) {
            memcpy(m->dl_guid, d.guid, strlen(d.guid) + 1);
            rsm_dl_name(m, d.suggested_filename);
        }
        return;
    }
    if (m->dl_done || strcmp(d.guid, m->dl_guid) != 0)
        return; /* only the page's first download is the answer */
    if (d.state == CDP_DOWNLOAD_CANCELED)
        rsm_fail(m, x, 500, 0, "the browser canceled the download");
    else if (d.received > RSM_CSV_MAX)
        rsm_fail(m, x, 500, 0, "the csv is larger than %u bytes", RSM_CSV_MAX);
    else if (d.state == CDP_DOWNLOAD_COMPLETED) {
        m->dl_done = 1;
        rsm_dl_check(m, x);
    }
}

void rsm_on_file(struct rsm *m, const struct rsm_input *in, struct rsm_ctx *x)
{
    if (in->err < 0) {
        free(in->data);
        if (in->err == -EFBIG)
            rsm_fail(m, x, 500, 0, "the csv is larger than %u bytes", RSM_CSV_MAX);
        else
            rsm_fail(m, x, 500, 0, "cannot read the downloaded file: %s", strerror(-in->err));
        return;
    }
    rsm_report(m, x, NAMES_STEP_DOWNLOAD_CSV);
    m->have_result = 1;
    m->result.status = 200;
    m->result.content_type = "text/csv";
    m->result.filename = m->dl_name;
    m->result.len = in->len;
    m->result.body = in->data ? in->data : xmalloc(1); /* an empty csv is still an answer */
    rsm_dispose(m, x);
}
