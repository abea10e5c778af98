/* The renderer's multi-line reports as ingest lines, built in one place from
 * common/names.h, so that tests/unit/test_names.c can run every line they
 * can produce through the exporter's registry. */
#ifndef RV_LINES_H
#define RV_LINES_H

#include "ingest.h"
#include "memory.h"
#include "names.h"

/* Each appends to b and returns 0, or -ENOSPC when a line did not fit
 * (ingest_buf_line). */

/* One step of a render and how long it took. */
int lines_step(struct ingest_buf *b, enum names_step step, double seconds);
/* How long each readiness rule held a render back, one line per rule. */
int lines_rules(struct ingest_buf *b, const double rule_ms[NAMES_RULE_COUNT]);
/* The running totals of page requests refused in the browser, by reason. */
int lines_requests_refused(struct ingest_buf *b, const unsigned long long total[NAMES_REFUSAL_COUNT]);
/* Tracing's dropped spans since the renderer started, by reason. */
int lines_spans_dropped(struct ingest_buf *b, const unsigned long long total[NAMES_SPAN_DROP_COUNT]);
/* The browser's product string, as grafana_image_renderer_browser_info. */
int lines_browser_info(struct ingest_buf *b, const char *product);

/* The figures of the memory report (renderer/jobs.c). */
struct lines_memory {
    struct memory_budget seen; /* available MEMORY_UNLIMITED: no budget lines */
    double reserved;           /* what renders in flight will still take */
    double estimate;           /* what the next render is expected to take */
    unsigned waiting;          /* renders in the queue */
    int mem_blocked;           /* they wait for memory, not for a browser */
    unsigned long long waits, retries;
};
int lines_memory(struct ingest_buf *b, const struct lines_memory *m);

#endif
