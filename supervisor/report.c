/* Child figures as ingest lines. Counters are sent as running totals, so a
 * report the exporter misses costs freshness, never accuracy. */
#include "report.h"

#include <errno.h>

static int report_line(struct ingest_buf *b, const char *family, const char *child,
                       const char *k2, const char *v2, double value)
{
    const char *labels[] = { "child", child, k2, v2, NULL };
    return ingest_buf_line(b, family, labels, value);
}

int report_child_lines(struct ingest_buf *b, const struct report_child *r)
{
    const struct proctree_figures *f = r->fig;
    int up = r->state == CHILD_RUNNING;
    int rc = 0;

    rc |= report_line(b, "rendervisor_child_up", r->name, NULL, NULL, up);
    for (int s = CHILD_IDLE; s < CHILD_STATE_COUNT; s++)
        rc |= report_line(b, "rendervisor_child_state", r->name, "state",
                          child_state_name((enum child_state)s), r->state == (enum child_state)s);
    rc |= report_line(b, "rendervisor_child_processes", r->name, NULL, NULL, f->processes);
    rc |= report_line(b, "rendervisor_child_cpu_seconds_total", r->name, "mode", "user", f->cpu_user_seconds);
    rc |= report_line(b, "rendervisor_child_cpu_seconds_total", r->name, "mode", "system", f->cpu_system_seconds);
    rc |= report_line(b, "rendervisor_child_resident_memory_bytes", r->name, NULL, NULL, (double)f->resident_bytes);
    rc |= report_line(b, "rendervisor_child_proportional_memory_bytes", r->name, NULL, NULL,
                      (double)f->proportional_bytes);
    rc |= report_line(b, "rendervisor_child_virtual_memory_bytes", r->name, NULL, NULL, (double)f->virtual_bytes);
    rc |= report_line(b, "rendervisor_child_open_fds", r->name, NULL, NULL, (double)f->open_fds);
    rc |= report_line(b, "rendervisor_child_max_fds", r->name, NULL, NULL, (double)f->max_fds);
    rc |= report_line(b, "rendervisor_child_memory_limit_bytes", r->name, NULL, NULL, (double)r->memory_limit);
    rc |= report_line(b, "rendervisor_child_start_time_seconds", r->name, NULL, NULL, r->start_time);
    for (int k = 0; k < CHILD_REASON_COUNT; k++)
        rc |= report_line(b, "rendervisor_child_restarts_total", r->name, "reason",
                          child_reason_name((enum child_reason)k), (double)r->restarts[k]);
    return rc ? -ENOSPC : 0;
}

int report_dropped_line(struct ingest_buf *b, unsigned long long dropped)
{
    const char *labels[] = { "sender", "supervisor", NULL };
    return ingest_buf_line(b, "rendervisor_ingest_dropped_total", labels, (double)dropped);
}
