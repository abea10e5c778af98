/* The status page at / and the figures it polls, /status.json, built from
 * the registry and the history. Every text the page shows (cells, the
 * charts as SVG paths) is made here, once, and goes both into the served
 * HTML and into the JSON, so a page updated by its script looks exactly like
 * one served fresh, and the script (status.js) only copies strings into
 * place. Pure: the caller gives the clocks. */
#ifndef RV_STATUS_H
#define RV_STATUS_H

#include "buf.h"
#include "history.h"
#include "registry.h"

/* ?refresh= on /: seconds between polls, 0 for none. */
#define STATUS_REFRESH_DEFAULT 2
#define STATUS_REFRESH_MAX 3600

/* The charts, in SVG user units (= CSS px). Memory: two units per slot. */
#define STATUS_MEM_WIDTH (2 * HISTORY_SLOTS)
#define STATUS_LAT_WIDTH (4 * HISTORY_LATENCIES)
#define STATUS_CHART_HEIGHT 40

struct status_input {
    const struct registry *reg;
    const struct history *hist;
    double wall; /* unix time now */
    double mono; /* monotonic seconds now, the history's clock */
};

/* Whole seconds 0..STATUS_REFRESH_MAX, digits only. 0 or -EINVAL. */
int status_parse_refresh(const char *text, unsigned *refresh);

/* The page, complete without its script; refresh goes to the script. */
void status_html(const struct status_input *in, unsigned refresh, struct buf *out);
/* The same figures and texts as JSON (docs/status-page.md). */
void status_json(const struct status_input *in, struct buf *out);

/* Escaping for text and attribute values: & < > " '. */
void status_html_escape(struct buf *out, const char *s);
/* A JSON string, quotes included: " \ and control characters escaped, and
 * < > & as \u00XX so the text is inert wherever it is pasted. s is UTF-8
 * (the ingest parser has checked it) and passes through otherwise. */
void status_json_string(struct buf *out, const char *s);

#endif
