/* The standard process collector's families (process_*) for the exporter's
 * own process, as every Prometheus client serves them, read at scrape time. */
#ifndef RV_SELFSTAT_H
#define RV_SELFSTAT_H

#include "buf.h"

/* Reads the boot time once; 0 or a negative errno. */
int selfstat_init(void);
/* Append the process_* families for this process. */
void selfstat_write(struct buf *out);

#endif
