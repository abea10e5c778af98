/* Child figures as ingest lines. Counters are sent as running totals, so a
 * report the exporter misses costs freshness, never accuracy. */
#include "report.h"

#include <errno.h>

static int report_line(struct ingest_buf *b, const char *family, const char *child,
                       const char *k2, const char *v2, double value)
{
    const char *labels[] = { NAMES_LABEL_CHILD, child, k2, v2, NULL };
    return ingest_buf_line(b, family, labels, value);
}

int report_child_lines(struct ingest_buf *b, const struct report_child *r)
{
    const struct proctree_figures *f = r->fig;
    const char *c = r->name;
    int up = r->state == CHILD_RUNNING;
    int rc = 0;

    rc |= report_line(b, NAMES_FAMILY_CHILD_UP, c, NULL, NULL, up);
    for (int s = CHILD_IDLE; s < CHILD_STATE_COUNT; s++)
        rc |= report_line(b, NAMES_FAMILY_CHILD_STATE, c, NAMES_LABEL_STATE,
                          child_state_name((enum child_state)s), r->state == (enum child_state)s);
    rc |= report_line(b, NAMES_FAMILY_CHILD_PROCESSES, c, NULL, NULL, f->processes);
    rc |= report_line(b, NAMES_FAMILY_CHILD_CPU, c, NAMES_LABEL_MODE, names_modes[NAMES_MODE_USER],
                      f->cpu_user_seconds);
    rc |= report_line(b, NAMES_FAMILY_CHILD_CPU, c, NAMES_LABEL_MODE, names_modes[NAMES_MODE_SYSTEM],
                      f->cpu_system_seconds);
    rc |= report_line(b, NAMES_FAMILY_CHILD_RSS, c, NULL, NULL, (double)f->resident_bytes);
    rc |= report_line(b, NAMES_FAMILY_CHILD_PSS, c, NULL, NULL, (double)f->proportional_bytes);
    rc |= report_line(b, NAMES_FAMILY_CHILD_VIRTUAL, c, NULL, NULL, (double)f->virtual_bytes);
    rc |= report_line(b, NAMES_FAMILY_CHILD_OPEN_FDS, c, NULL, NULL, (double)f->open_fds);
    rc |= report_line(b, NAMES_FAMILY_CHILD_MAX_FDS, c, NULL, NULL, (double)f->max_fds);
    rc |= report_line(b, NAMES_FAMILY_CHILD_MEMORY_LIMIT, c, NULL, NULL, (double)r->memory_limit);
    rc |= report_line(b, NAMES_FAMILY_CHILD_START_TIME, c, NULL, NULL, r->start_time);
    for (int k = 0; k < CHILD_REASON_COUNT; k++)
        rc |= report_line(b, NAMES_FAMILY_CHILD_RESTARTS, c, NAMES_LABEL_REASON,
                          child_reason_name((enum child_reason)k), (double)r->restarts[k]);
    return rc ? -ENOSPC : 0;
}

int report_dropped_line(struct ingest_buf *b, unsigned long long dropped)
{
    const char *labels[] = { NAMES_LABEL_SENDER, names_senders[NAMES_SENDER_SUPERVISOR], NULL };
    return ingest_buf_line(b, NAMES_FAMILY_INGEST_DROPPED, labels, (double)dropped);
}
