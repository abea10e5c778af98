/* The supervisor's reports: each child's figures, state and restart counts as
 * ingest lines (the rendervisor_child_* families of docs/metrics.md, named
 * in common/names.h). */
#ifndef RV_REPORT_H
#define RV_REPORT_H

#include <stdint.h>

#include "child.h"
#include "ingest.h"
#include "proctree.h"

struct report_child {
    const char *name;
    enum child_state state;
    const struct proctree_figures *fig;
    uint64_t memory_limit;
    double start_time; /* unix seconds of the current or last start; 0 = never */
    const unsigned long long *restarts; /* CHILD_REASON_COUNT entries */
};

/* Append one child's lines to b. Returns 0 or -ENOSPC. */
int report_child_lines(struct ingest_buf *b, const struct report_child *r);
/* Append the supervisor's own line: datagrams it could not deliver. */
int report_dropped_line(struct ingest_buf *b, unsigned long long dropped);

#endif
