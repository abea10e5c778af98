/* See lines.h. Pure functions over the caller's buffer, which the caller
 * owns and sends; they keep no state. Today every caller is on the browser
 * thread: a render's lines (render.c, intercept.c) and the memory report
 * (jobs.c's lws timer). */
#include "lines.h"

#include <errno.h>

/* One line with at most one label. */
static int lines_one(struct ingest_buf *b, const char *family, const char *label, const char *value, double v)
{
    const char *labels[] = { label, value, NULL };
    return ingest_buf_line(b, family, label ? labels : NULL, v);
}

int lines_step(struct ingest_buf *b, enum names_step step, double seconds)
{
    return lines_one(b, NAMES_FAMILY_STEP_DURATION, NAMES_LABEL_STEP, names_steps[step], seconds);
}

int lines_rules(struct ingest_buf *b, const double rule_ms[NAMES_RULE_COUNT])
{
    int rc = 0;
    for (int i = 0; i < NAMES_RULE_COUNT; i++)
        rc |= lines_one(b, NAMES_FAMILY_READY_WAIT, NAMES_LABEL_RULE, names_rules[i], rule_ms[i] / 1000.0);
    return rc ? -ENOSPC : 0;
}

int lines_requests_refused(struct ingest_buf *b, const unsigned long long total[NAMES_REFUSAL_COUNT])
{
    int rc = 0;
    for (int i = 0; i < NAMES_REFUSAL_COUNT; i++)
        rc |= lines_one(b, NAMES_FAMILY_REQUESTS_REFUSED, NAMES_LABEL_REASON, names_refusals[i],
                        (double)total[i]);
    return rc ? -ENOSPC : 0;
}

int lines_spans_dropped(struct ingest_buf *b, const unsigned long long total[NAMES_SPAN_DROP_COUNT])
{
    int rc = 0;
    for (int i = 0; i < NAMES_SPAN_DROP_COUNT; i++)
        rc |= lines_one(b, NAMES_FAMILY_SPANS_DROPPED, NAMES_LABEL_REASON, names_span_drops[i], (double)total[i]);
    return rc ? -ENOSPC : 0;
}

int lines_browser_info(struct ingest_buf *b, const char *product)
{
    return lines_one(b, NAMES_FAMILY_BROWSER_INFO, NAMES_LABEL_VERSION, product, 1);
}

int lines_memory(struct ingest_buf *b, const struct lines_memory *m)
{
    const struct memory_budget *mb = &m->seen;
    int rc = lines_one(b, NAMES_FAMILY_MEM_USED, NULL, NULL, (double)mb->used);
    if (mb->available != MEMORY_UNLIMITED) {
        rc |= lines_one(b, NAMES_FAMILY_MEM_AVAILABLE, NULL, NULL, (double)mb->available);
        rc |= lines_one(b, NAMES_FAMILY_MEM_BUDGET, NULL, NULL, (double)mb->budget);
        for (int i = 0; i < NAMES_BOUND_COUNT; i++)
            rc |= lines_one(b, NAMES_FAMILY_MEM_BOUND, NAMES_LABEL_BY, names_bounds[i],
                            mb->bound == (enum names_bound)i);
    }
    rc |= lines_one(b, NAMES_FAMILY_MEM_RESERVED, NULL, NULL, m->reserved);
    rc |= lines_one(b, NAMES_FAMILY_MEM_ESTIMATE, NULL, NULL, m->estimate);
    rc |= lines_one(b, NAMES_FAMILY_QUEUED, NAMES_LABEL_WAITING_FOR, names_waits[NAMES_WAIT_MEMORY],
                    m->mem_blocked ? m->waiting : 0);
    rc |= lines_one(b, NAMES_FAMILY_QUEUED, NAMES_LABEL_WAITING_FOR, names_waits[NAMES_WAIT_BROWSER],
                    m->mem_blocked ? 0 : m->waiting);
    rc |= lines_one(b, NAMES_FAMILY_MEM_WAITS, NULL, NULL, (double)m->waits);
    rc |= lines_one(b, NAMES_FAMILY_MEM_RETRIES, NULL, NULL, (double)m->retries);
    return rc ? -ENOSPC : 0;
}
