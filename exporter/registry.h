/* The exporter's metric registry: every family it will ever serve, declared
 * up front with its type, HELP text, label names and the values each label
 * may take, and the series the ingest lines have filled in. Nothing from the
 * ingest socket can create a family or a label value outside these bounds,
 * so /metrics stays small whatever a sender writes. */
#ifndef RV_REGISTRY_H
#define RV_REGISTRY_H

#include <stddef.h>

#include "buf.h"
#include "config.h"
#include "ingest.h"

enum registry_type {
    REGISTRY_COUNTER,
    REGISTRY_GAUGE,
    REGISTRY_HISTOGRAM,
};

struct registry;

/* All families of docs/metrics.md (their names: common/names.h), with
 * bucket bounds from cfg->exporter and the child names cfg implies
 * (exporter, browser-0 .. browser-<count-1>, renderer). */
struct registry *registry_new(const struct config *cfg);
void registry_free(struct registry *reg);

/* Apply one parsed line: a histogram family takes one observation, a gauge
 * or counter is set to the value. Returns INGEST_OK, or why it was refused
 * (UNKNOWN_FAMILY, UNKNOWN_LABEL, BAD_VALUE, CARDINALITY); a refused line
 * changes nothing. */
enum ingest_reject registry_apply(struct registry *reg, const struct ingest_sample *s);

/* Have fn(arg, s) called with every line registry_apply() accepts (the
 * status page keeps a short history of some). NULL: no one. */
void registry_set_observer(struct registry *reg, void (*fn)(void *arg, const struct ingest_sample *s), void *arg);

/* Count a line's fate in rendervisor_ingest_lines_total{result} and, when
 * refused, rendervisor_ingest_rejected_total{reason}. */
void registry_count(struct registry *reg, enum ingest_reject result);

/* Append every family in text exposition format 0.0.4 (HELP and TYPE for
 * each family, even one with no series yet; cumulative buckets with +Inf,
 * _sum and _count; label values escaped; no timestamps). Families come in a
 * fixed order (the reference service's, then rendervisor_*), series sorted
 * by their label values in byte order, labels in the family's order, le last. */
void registry_write(const struct registry *reg, struct buf *out);

/* The current value of one gauge or counter series (labels as k,v,...,NULL,
 * in the family's label order); 0 when found, -ENOENT when not, -EINVAL for
 * a histogram family. For the status page. */
int registry_get(const struct registry *reg, const char *family, const char *const *labels, double *value);

/* The value of `label` in the first series of `family` (exposition order)
 * whose value is 1, or else in its first series: e.g. the browser version of
 * grafana_image_renderer_browser_info. 0 when found, -ENOENT when not,
 * -ENOSPC when it does not fit in size. For the status page. */
int registry_label_value(const struct registry *reg, const char *family, const char *label, char *out,
                         size_t size);

/* Write the exposition format's escaping of a label value (\\ \" \n) and of
 * a HELP text (\\ \n). */
void registry_escape_label_value(struct buf *out, const char *value);
void registry_escape_help(struct buf *out, const char *help);

#endif
