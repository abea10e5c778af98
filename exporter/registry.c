/* The metric registry of registry.h. Each label value maps to a small index
 * (its place in a fixed set, or in the bounded set seen so far), so a
 * family's series sit in one dense array: applying a line costs a name hash
 * and a few short scans, never a search over all series. */
#include "registry.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "xalloc.h"

/* No family has more labels than this (rendervisor_child_state has two). */
#define REGISTRY_MAX_LABELS 2
/* Open-addressing table for family names; a power of two, over twice the
 * number of families. */
#define REGISTRY_TABLE_SIZE 128

enum registry_values {
    REGISTRY_VALUES_FIXED,    /* spec->values */
    REGISTRY_VALUES_CHILDREN, /* the children the config implies */
    REGISTRY_VALUES_REASONS,  /* ingest_reject_name() of every refusal */
    REGISTRY_VALUES_BOUNDED,  /* whatever spec->valid accepts, up to spec->max values */
};

struct registry_label_spec {
    const char *name;
    enum registry_values kind;
    const char *const *values; /* NULL-terminated; REGISTRY_VALUES_FIXED */
    size_t max;                /* REGISTRY_VALUES_BOUNDED */
    int (*valid)(const char *value);
};

enum registry_bounds {
    REGISTRY_BOUNDS_NONE,
    REGISTRY_BOUNDS_REQUEST,
    REGISTRY_BOUNDS_STEP,
};

struct registry_spec {
    const char *name;
    enum registry_type type;
    const char *help;
    const struct registry_label_spec *labels[REGISTRY_MAX_LABELS];
    enum registry_bounds bounds;
    int own; /* the exporter's own counters: registry_count() only */
};

struct registry_label {
    const struct registry_label_spec *spec;
    char **values;  /* fixed: all of them; bounded: those seen so far */
    size_t nvalues;
    size_t cap;     /* how many values it may ever hold */
    size_t *order;  /* indices into values, in byte order of the values */
};

struct registry_series {
    double value;   /* gauge and counter value; histogram sum */
    uint64_t count; /* histogram observations */
    int present;
};

struct registry_family {
    const struct registry_spec *spec;
    size_t nlabels;
    struct registry_label labels[REGISTRY_MAX_LABELS];
    size_t nslots; /* product of the labels' caps */
    struct registry_series *series;
    /* histograms */
    size_t nbounds;
    double *bounds;
    char **le;        /* bounds as the le label shows them, then "+Inf" */
    uint64_t *counts; /* per slot, nbounds + 1 non-cumulative bucket counts */
};

struct registry {
    struct registry_family *families;
    size_t nfamilies;
    struct registry_family *table[REGISTRY_TABLE_SIZE];
    struct registry_family *lines; /* rendervisor_ingest_lines_total */
    struct registry_family *rejected;
    void (*observer)(void *arg, const struct ingest_sample *s);
    void *observer_arg;
};

/* ---- the families ---------------------------------------------------- */

static int registry_valid_status_code(const char *v)
{
    return v[0] >= '1' && v[0] <= '5' && v[1] >= '0' && v[1] <= '9' && v[2] >= '0' && v[2] <= '9' &&
           v[3] == '\0';
}

/* Printable: no control characters (the parser has already checked the
 * UTF-8), and not empty, which Prometheus would read as no label at all. */
static int registry_valid_printable(const char *v)
{
    if (!*v)
        return 0;
    for (const unsigned char *s = (const unsigned char *)v; *s; s++)
        if (*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* The exporter's own: no one else sends these. */
#define REGISTRY_LINES "rendervisor_ingest_lines_total"
#define REGISTRY_REJECTED "rendervisor_ingest_rejected_total"
static const char *const registry_results[] = { "accepted", "rejected", NULL };

#define REGISTRY_FIXED(n, v) { .name = n, .kind = REGISTRY_VALUES_FIXED, .values = v }

static const struct registry_label_spec registry_l_status_code = {
    .name = NAMES_LABEL_STATUS_CODE, .kind = REGISTRY_VALUES_BOUNDED, .max = 32, .valid = registry_valid_status_code,
};
static const struct registry_label_spec registry_l_version = {
    .name = NAMES_LABEL_VERSION, .kind = REGISTRY_VALUES_BOUNDED, .max = 8, .valid = registry_valid_printable,
};
static const struct registry_label_spec registry_l_child = { .name = NAMES_LABEL_CHILD,
                                                          .kind = REGISTRY_VALUES_CHILDREN };
static const struct registry_label_spec registry_l_reject = { .name = NAMES_LABEL_REASON,
                                                           .kind = REGISTRY_VALUES_REASONS };
static const struct registry_label_spec registry_l_step = REGISTRY_FIXED(NAMES_LABEL_STEP, names_steps);
static const struct registry_label_spec registry_l_state = REGISTRY_FIXED(NAMES_LABEL_STATE, names_states);
static const struct registry_label_spec registry_l_mode = REGISTRY_FIXED(NAMES_LABEL_MODE, names_modes);
static const struct registry_label_spec registry_l_reason = REGISTRY_FIXED(NAMES_LABEL_REASON, names_reasons);
static const struct registry_label_spec registry_l_sender = REGISTRY_FIXED(NAMES_LABEL_SENDER, names_senders);
static const struct registry_label_spec registry_l_result = REGISTRY_FIXED("result", registry_results);
static const struct registry_label_spec registry_l_refusal = REGISTRY_FIXED(NAMES_LABEL_REASON, names_refused);
static const struct registry_label_spec registry_l_rule = REGISTRY_FIXED(NAMES_LABEL_RULE, names_rules);
static const struct registry_label_spec registry_l_by = REGISTRY_FIXED(NAMES_LABEL_BY, names_bounds);
static const struct registry_label_spec registry_l_waiting = REGISTRY_FIXED(NAMES_LABEL_WAITING_FOR, names_waits);
static const struct registry_label_spec registry_l_conn_close =
    REGISTRY_FIXED(NAMES_LABEL_REASON, names_conn_closes);
static const struct registry_label_spec registry_l_request_refusal =
    REGISTRY_FIXED(NAMES_LABEL_REASON, names_refusals);
static const struct registry_label_spec registry_l_span_drop = REGISTRY_FIXED(NAMES_LABEL_REASON, names_span_drops);

#define REGISTRY_GAUGE_PER_CHILD(n, h) \
    { n, REGISTRY_GAUGE, h, { &registry_l_child, NULL }, REGISTRY_BOUNDS_NONE, 0 }
#define REGISTRY_BY(n, t, l, h) { n, t, h, { &l, NULL }, REGISTRY_BOUNDS_NONE, 0 }
#define REGISTRY_PLAIN(n, t, h) { n, t, h, { NULL, NULL }, REGISTRY_BOUNDS_NONE, 0 }

/* In exposition order: the reference service's families, then ours. */
static const struct registry_spec registry_specs[] = {
    { NAMES_FAMILY_REQUEST_DURATION, REGISTRY_HISTOGRAM,
      "Duration of /render requests in seconds, by HTTP status code.",
      { &registry_l_status_code, NULL }, REGISTRY_BOUNDS_REQUEST, 0 },
    { NAMES_FAMILY_IN_FLIGHT, REGISTRY_GAUGE,
      "Render requests currently being served.", { NULL, NULL }, REGISTRY_BOUNDS_NONE, 0 },
    { NAMES_FAMILY_STEP_DURATION, REGISTRY_HISTOGRAM,
      "Duration of each step of a render in seconds.", { &registry_l_step, NULL }, REGISTRY_BOUNDS_STEP, 0 },
    { NAMES_FAMILY_BROWSER_INFO, REGISTRY_GAUGE,
      "The browser's product string; the value is 1 for the browser in use.", { &registry_l_version, NULL },
      REGISTRY_BOUNDS_NONE, 0 },
    REGISTRY_GAUGE_PER_CHILD(NAMES_FAMILY_CHILD_UP, "1 while the child's process is running, 0 otherwise."),
    { NAMES_FAMILY_CHILD_STATE, REGISTRY_GAUGE, "1 for the child's current state, 0 for the others.",
      { &registry_l_child, &registry_l_state }, REGISTRY_BOUNDS_NONE, 0 },
    REGISTRY_GAUGE_PER_CHILD(NAMES_FAMILY_CHILD_PROCESSES, "Processes in the child's process tree."),
    { NAMES_FAMILY_CHILD_CPU, REGISTRY_COUNTER,
      "CPU time used by the child's process tree in seconds, including processes that have gone.",
      { &registry_l_child, &registry_l_mode }, REGISTRY_BOUNDS_NONE, 0 },
    REGISTRY_GAUGE_PER_CHILD(NAMES_FAMILY_CHILD_RSS,
                             "Resident memory (RSS) of the child's process tree in bytes."),
    REGISTRY_GAUGE_PER_CHILD(NAMES_FAMILY_CHILD_PSS,
                             "Proportional memory (PSS) of the child's process tree in bytes; "
                             "what the memory limit is checked against."),
    REGISTRY_GAUGE_PER_CHILD(NAMES_FAMILY_CHILD_VIRTUAL,
                             "Virtual memory of the child's process tree in bytes."),
    REGISTRY_GAUGE_PER_CHILD(NAMES_FAMILY_CHILD_OPEN_FDS, "Open file descriptors in the child's process tree."),
    REGISTRY_GAUGE_PER_CHILD(NAMES_FAMILY_CHILD_MAX_FDS,
                             "Soft limit on open file descriptors of the child's own process."),
    REGISTRY_GAUGE_PER_CHILD(NAMES_FAMILY_CHILD_MEMORY_LIMIT,
                             "The child's configured memory limit in bytes; 0 for none."),
    REGISTRY_GAUGE_PER_CHILD(NAMES_FAMILY_CHILD_START_TIME,
                             "Start time of the child's current or last run since the unix epoch in seconds."),
    { NAMES_FAMILY_CHILD_RESTARTS, REGISTRY_COUNTER, "Restarts of the child, by reason.",
      { &registry_l_child, &registry_l_reason }, REGISTRY_BOUNDS_NONE, 0 },
    REGISTRY_BY(NAMES_FAMILY_REFUSED, REGISTRY_COUNTER, registry_l_refusal,
      "Render requests answered 429: the queue was full (capacity), or the render's timeout ran out while it "
      "waited in the queue for memory (memory)."),
    REGISTRY_BY(NAMES_FAMILY_CONNS_CLOSED, REGISTRY_COUNTER, registry_l_conn_close,
      "Connections the renderer's listener closed before it read a request: over the connection limits, per "
      "address or in all (connection_limit), or without complete request headers within 10 s (header_deadline)."),
    { NAMES_FAMILY_READY_WAIT, REGISTRY_HISTOGRAM,
      "How long each readiness rule held a render back in seconds (0 when it did not), one observation per "
      "rule for each render that reached readiness.",
      { &registry_l_rule, NULL }, REGISTRY_BOUNDS_STEP, 0 },
    /* Memory admission (common/names.h). */
    REGISTRY_PLAIN(NAMES_FAMILY_MEM_BUDGET, REGISTRY_GAUGE,
                   "Memory the service may use now in bytes: used plus available."),
    REGISTRY_PLAIN(NAMES_FAMILY_MEM_USED, REGISTRY_GAUGE,
                   "Memory the service uses in bytes: its cgroup's usage less inactive file cache, or, where it "
                   "has no cgroup of its own, the supervisor's sum of its children's PSS."),
    REGISTRY_PLAIN(NAMES_FAMILY_MEM_AVAILABLE, REGISTRY_GAUGE,
                   "Memory still available to the service in bytes: the budget less what is used."),
    REGISTRY_PLAIN(NAMES_FAMILY_MEM_RESERVED, REGISTRY_GAUGE,
                   "Memory the renders in flight are still expected to take in bytes."),
    REGISTRY_PLAIN(NAMES_FAMILY_MEM_ESTIMATE, REGISTRY_GAUGE,
                   "Memory the next render is expected to take in bytes."),
    REGISTRY_BY(NAMES_FAMILY_MEM_BOUND, REGISTRY_GAUGE, registry_l_by,
      "1 for the limit that binds the memory budget now (a cgroup's, the host's MemAvailable, or [renderer] "
      "memory_budget), 0 for the others."),
    REGISTRY_BY(NAMES_FAMILY_QUEUED, REGISTRY_GAUGE, registry_l_waiting,
      "Renders waiting in the queue to start, by what they wait for: room in the memory budget, or a browser "
      "with a free slot."),
    REGISTRY_PLAIN(NAMES_FAMILY_MEM_WAITS, REGISTRY_COUNTER,
                   "Renders that had to wait in the queue for memory before they started."),
    REGISTRY_PLAIN(NAMES_FAMILY_MEM_RETRIES, REGISTRY_COUNTER,
                   "Renders whose page crashed and that were queued again until there was room in the memory "
                   "budget."),
    REGISTRY_BY(NAMES_FAMILY_REQUESTS_REFUSED, REGISTRY_COUNTER, registry_l_request_refusal,
      "Requests of rendered pages refused in the browser, by reason: a host not in allowed_hosts (not_allowed), "
      "a link-local or metadata address not listed (link_local), a scheme other than http(s), ws(s), data, blob "
      "and about (scheme), a URL that could not be read (malformed)."),
    REGISTRY_BY(NAMES_FAMILY_SPANS_DROPPED, REGISTRY_COUNTER, registry_l_span_drop,
      "Spans of renders that tracing dropped: its queue was full (queue_full), or the export to the collector "
      "failed (export_failed). Reported only with [tracing] endpoint set."),
    { REGISTRY_LINES, REGISTRY_COUNTER, "Ingest lines the exporter accepted or rejected.",
      { &registry_l_result, NULL }, REGISTRY_BOUNDS_NONE, 1 },
    { REGISTRY_REJECTED, REGISTRY_COUNTER, "Ingest lines the exporter rejected, by reason.",
      { &registry_l_reject, NULL }, REGISTRY_BOUNDS_NONE, 1 },
    REGISTRY_BY(NAMES_FAMILY_INGEST_DROPPED, REGISTRY_COUNTER, registry_l_sender,
      "Ingest datagrams a sender could not deliver (no receiver, or its queue full)."),
};

#define REGISTRY_NSPECS (sizeof(registry_specs) / sizeof(registry_specs[0]))
_Static_assert(2 * REGISTRY_NSPECS <= REGISTRY_TABLE_SIZE, "the family table must stay sparse");

/* ---- helpers ---------------------------------------------------------- */

static size_t registry_hash(const char *s)
{
    /* FNV-1a */
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h & (REGISTRY_TABLE_SIZE - 1);
}

static struct registry_family *registry_find(const struct registry *reg, const char *name)
{
    for (size_t i = registry_hash(name);; i = (i + 1) & (REGISTRY_TABLE_SIZE - 1)) {
        struct registry_family *f = reg->table[i];
        if (!f || strcmp(f->spec->name, name) == 0)
            return f;
    }
}

/* Append value to the label's set, keeping order sorted. The caller has
 * checked there is room. */
static size_t registry_label_add(struct registry_label *l, const char *value)
{
    size_t idx = l->nvalues++;
    l->values[idx] = xstrdup(value);
    size_t k = idx;
    while (k > 0 && strcmp(l->values[l->order[k - 1]], value) > 0) {
        l->order[k] = l->order[k - 1];
        k--;
    }
    l->order[k] = idx;
    return idx;
}

static void registry_label_init(struct registry_label *l, const struct registry_label_spec *spec,
                                 const struct config *cfg)
{
    l->spec = spec;
    l->nvalues = 0;
    switch (spec->kind) {
    case REGISTRY_VALUES_FIXED:
        for (l->cap = 0; spec->values[l->cap]; l->cap++)
            ;
        break;
    case REGISTRY_VALUES_CHILDREN:
        l->cap = (size_t)cfg->browsers.count + 2;
        break;
    case REGISTRY_VALUES_REASONS:
        l->cap = INGEST_REJECT_COUNT - 1;
        break;
    case REGISTRY_VALUES_BOUNDED:
        l->cap = spec->max;
        break;
    }
    l->values = xcalloc(l->cap, sizeof(*l->values));
    l->order = xcalloc(l->cap, sizeof(*l->order));
    switch (spec->kind) {
    case REGISTRY_VALUES_FIXED:
        for (size_t i = 0; i < l->cap; i++)
            registry_label_add(l, spec->values[i]);
        break;
    case REGISTRY_VALUES_CHILDREN:
        registry_label_add(l, NAMES_CHILD_EXPORTER);
        for (unsigned i = 0; i < cfg->browsers.count; i++) {
            char name[32];
            snprintf(name, sizeof(name), NAMES_CHILD_BROWSER_FMT, i);
            registry_label_add(l, name);
        }
        registry_label_add(l, NAMES_CHILD_RENDERER);
        break;
    case REGISTRY_VALUES_REASONS:
        for (int r = INGEST_OK + 1; r < INGEST_REJECT_COUNT; r++)
            registry_label_add(l, ingest_reject_name((enum ingest_reject)r));
        break;
    case REGISTRY_VALUES_BOUNDED:
        break;
    }
}

static void registry_label_fini(struct registry_label *l)
{
    for (size_t i = 0; i < l->nvalues; i++)
        free(l->values[i]);
    free(l->values);
    free(l->order);
}

/* The index of value in the label's set; -1 when it is not there. */
static long registry_label_index(const struct registry_label *l, const char *value)
{
    for (size_t i = 0; i < l->nvalues; i++)
        if (strcmp(l->values[i], value) == 0)
            return (long)i;
    return -1;
}

/* A bound as Go's strconv.FormatFloat(v, 'g', -1, 64) writes it, which is
 * how Prometheus clients write le: the shortest digits that read back,
 * in exponent form below 1e-4 and from 1e6 up ("0.1", "60", "1e+06"). */
static char *registry_format_le(double v)
{
    char e[40];
    int digits = 1;
    for (; digits < 17; digits++) {
        snprintf(e, sizeof(e), "%.*e", digits - 1, v);
        if (strtod(e, NULL) == v)
            break;
    }
    snprintf(e, sizeof(e), "%.*e", digits - 1, v);
    int exp = atoi(strchr(e, 'e') + 1);
    if (exp < -4 || exp >= 6)
        return xstrdup(e);
    int decimals = digits - 1 - exp;
    return xasprintf("%.*f", decimals > 0 ? decimals : 0, v);
}

static void registry_family_init(struct registry_family *f, const struct registry_spec *spec,
                                  const struct config *cfg)
{
    memset(f, 0, sizeof(*f));
    f->spec = spec;
    f->nslots = 1;
    for (size_t i = 0; i < REGISTRY_MAX_LABELS && spec->labels[i]; i++) {
        registry_label_init(&f->labels[i], spec->labels[i], cfg);
        f->nslots *= f->labels[i].cap;
        f->nlabels++;
    }
    f->series = xcalloc(f->nslots, sizeof(*f->series));
    if (spec->type != REGISTRY_HISTOGRAM)
        return;
    const struct config_buckets *b =
        spec->bounds == REGISTRY_BOUNDS_REQUEST ? &cfg->exporter.request_buckets : &cfg->exporter.step_buckets;
    f->nbounds = b->count;
    f->bounds = xcalloc(f->nbounds + 1, sizeof(*f->bounds));
    memcpy(f->bounds, b->bounds, f->nbounds * sizeof(*f->bounds));
    f->le = xcalloc(f->nbounds + 1, sizeof(*f->le));
    for (size_t i = 0; i < f->nbounds; i++)
        f->le[i] = registry_format_le(f->bounds[i]);
    f->le[f->nbounds] = xstrdup("+Inf");
    f->counts = xcalloc(f->nslots * (f->nbounds + 1), sizeof(*f->counts));
}

static void registry_family_fini(struct registry_family *f)
{
    for (size_t i = 0; i < f->nlabels; i++)
        registry_label_fini(&f->labels[i]);
    free(f->series);
    if (f->le)
        for (size_t i = 0; i <= f->nbounds; i++)
            free(f->le[i]);
    free(f->le);
    free(f->bounds);
    free(f->counts);
}

/* ---- the registry ------------------------------------------------------ */

struct registry *registry_new(const struct config *cfg)
{
    struct registry *reg = xcalloc(1, sizeof(*reg));
    reg->nfamilies = REGISTRY_NSPECS;
    reg->families = xcalloc(reg->nfamilies, sizeof(*reg->families));
    for (size_t i = 0; i < reg->nfamilies; i++) {
        struct registry_family *f = &reg->families[i];
        registry_family_init(f, &registry_specs[i], cfg);
        size_t h = registry_hash(f->spec->name);
        while (reg->table[h])
            h = (h + 1) & (REGISTRY_TABLE_SIZE - 1);
        reg->table[h] = f;
    }
    reg->lines = registry_find(reg, REGISTRY_LINES);
    reg->rejected = registry_find(reg, REGISTRY_REJECTED);
    /* Their series show from the start, so a rate over them never lacks a
     * first sample. */
    for (size_t i = 0; i < reg->lines->nslots; i++)
        reg->lines->series[i].present = 1;
    for (size_t i = 0; i < reg->rejected->nslots; i++)
        reg->rejected->series[i].present = 1;
    return reg;
}

void registry_free(struct registry *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->nfamilies; i++)
        registry_family_fini(&reg->families[i]);
    free(reg->families);
    free(reg);
}

/* The slot of the series the labels name, in the family's own label order.
 * A value of a bounded label not seen yet gets index nvalues (*is_new set);
 * nothing is stored here, so a refused line changes nothing. */
static enum ingest_reject registry_resolve(const struct registry_family *f, const char *const *values,
                                           int may_add, size_t *slot, int *is_new)
{
    size_t s = 0;
    for (size_t i = 0; i < f->nlabels; i++) {
        const struct registry_label *l = &f->labels[i];
        long idx = registry_label_index(l, values[i]);
        is_new[i] = 0;
        if (idx < 0) {
            if (l->spec->kind != REGISTRY_VALUES_BOUNDED || !may_add || !l->spec->valid(values[i]))
                return INGEST_REJECT_UNKNOWN_LABEL;
            if (l->nvalues == l->cap)
                return INGEST_REJECT_CARDINALITY;
            idx = (long)l->nvalues;
            is_new[i] = 1;
        }
        s = s * l->cap + (size_t)idx;
    }
    *slot = s;
    return INGEST_OK;
}

enum ingest_reject registry_apply(struct registry *reg, const struct ingest_sample *s)
{
    struct registry_family *f = registry_find(reg, s->family);
    if (!f || f->spec->own)
        return INGEST_REJECT_UNKNOWN_FAMILY;
    if (s->nlabels != f->nlabels)
        return INGEST_REJECT_UNKNOWN_LABEL;
    /* The line's labels in the family's order; the parser has refused a
     * repeated name, so equal counts and every name found mean an exact match. */
    const char *values[REGISTRY_MAX_LABELS];
    for (size_t i = 0; i < f->nlabels; i++) {
        values[i] = NULL;
        for (size_t k = 0; k < s->nlabels; k++)
            if (strcmp(s->labels[k].name, f->labels[i].spec->name) == 0)
                values[i] = s->labels[k].value;
        if (!values[i])
            return INGEST_REJECT_UNKNOWN_LABEL;
    }
    size_t slot;
    int is_new[REGISTRY_MAX_LABELS];
    enum ingest_reject r = registry_resolve(f, values, 1, &slot, is_new);
    if (r != INGEST_OK)
        return r;

    double v = s->value;
    if (!isfinite(v))
        return INGEST_REJECT_BAD_VALUE;
    if (f->spec->type != REGISTRY_GAUGE && v < 0)
        return INGEST_REJECT_BAD_VALUE;

    for (size_t i = 0; i < f->nlabels; i++)
        if (is_new[i])
            registry_label_add(&f->labels[i], values[i]);
    if (reg->observer)
        reg->observer(reg->observer_arg, s);
    struct registry_series *se = &f->series[slot];
    se->present = 1;
    if (f->spec->type != REGISTRY_HISTOGRAM) {
        se->value = v;
        return INGEST_OK;
    }
    /* le is inclusive: the first bound not below v. */
    size_t lo = 0, hi = f->nbounds;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->bounds[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    f->counts[slot * (f->nbounds + 1) + lo]++;
    se->count++;
    se->value += v;
    return INGEST_OK;
}

void registry_set_observer(struct registry *reg, void (*fn)(void *arg, const struct ingest_sample *s), void *arg)
{
    reg->observer = fn;
    reg->observer_arg = arg;
}

void registry_count(struct registry *reg, enum ingest_reject result)
{
    /* Slots are the order registry_label_init() added the values in:
     * accepted 0, rejected 1; reason r at r - 1. */
    reg->lines->series[result == INGEST_OK ? 0 : 1].value += 1;
    if (result > INGEST_OK && result < INGEST_REJECT_COUNT)
        reg->rejected->series[result - 1].value += 1;
}

/* ---- exposition ---------------------------------------------------------- */

/* The exposition format escapes \ and newline everywhere, and " inside
 * label values only. */
static void registry_escape(struct buf *out, const char *text, int quotes)
{
    const char *run = text;
    for (const char *s = text; *s; s++) {
        const char *rep = *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" : quotes && *s == '"' ? "\\\"" : NULL;
        if (!rep)
            continue;
        buf_append(out, run, (size_t)(s - run));
        buf_append(out, rep, 2);
        run = s + 1;
    }
    buf_puts(out, run);
}

void registry_escape_label_value(struct buf *out, const char *value)
{
    registry_escape(out, value, 1);
}

void registry_escape_help(struct buf *out, const char *help)
{
    registry_escape(out, help, 0);
}

static void registry_put_value(struct buf *out, double v)
{
    char num[40];
    size_t n = ingest_format_value(num, sizeof(num), v);
    buf_append(out, num, n);
}

/* `name suffix{k="v",...,le="x"} ` for one series. */
static void registry_put_series(struct buf *out, const struct registry_family *f, const size_t *idx,
                                const char *suffix, const char *le)
{
    buf_puts(out, f->spec->name);
    buf_puts(out, suffix);
    if (f->nlabels || le) {
        buf_append(out, "{", 1);
        for (size_t i = 0; i < f->nlabels; i++) {
            if (i)
                buf_append(out, ",", 1);
            buf_puts(out, f->labels[i].spec->name);
            buf_append(out, "=\"", 2);
            registry_escape_label_value(out, f->labels[i].values[idx[i]]);
            buf_append(out, "\"", 1);
        }
        if (le) {
            if (f->nlabels)
                buf_append(out, ",", 1);
            buf_append(out, "le=\"", 4);
            buf_puts(out, le);
            buf_append(out, "\"", 1);
        }
        buf_append(out, "}", 1);
    }
    buf_append(out, " ", 1);
}

static void registry_write_series(struct buf *out, const struct registry_family *f, const size_t *idx)
{
    size_t slot = 0;
    for (size_t i = 0; i < f->nlabels; i++)
        slot = slot * f->labels[i].cap + idx[i];
    const struct registry_series *se = &f->series[slot];
    if (!se->present)
        return;
    if (f->spec->type != REGISTRY_HISTOGRAM) {
        registry_put_series(out, f, idx, "", NULL);
        registry_put_value(out, se->value);
        buf_append(out, "\n", 1);
        return;
    }
    const uint64_t *c = &f->counts[slot * (f->nbounds + 1)];
    uint64_t cum = 0;
    for (size_t b = 0; b <= f->nbounds; b++) {
        cum += c[b];
        registry_put_series(out, f, idx, "_bucket", f->le[b]);
        registry_put_value(out, (double)cum);
        buf_append(out, "\n", 1);
    }
    registry_put_series(out, f, idx, "_sum", NULL);
    registry_put_value(out, se->value);
    buf_append(out, "\n", 1);
    registry_put_series(out, f, idx, "_count", NULL);
    registry_put_value(out, (double)se->count);
    buf_append(out, "\n", 1);
}

static const char *registry_type_name(enum registry_type t)
{
    switch (t) {
    case REGISTRY_COUNTER: return "counter";
    case REGISTRY_GAUGE: return "gauge";
    case REGISTRY_HISTOGRAM: return "histogram";
    }
    return "untyped";
}

/* Calls fn for every possible series of f in the order of its label values
 * (each label's values in byte order, labels in the family's order). */
static void registry_each(const struct registry_family *f, void (*fn)(const struct registry_family *f,
                                                                        const size_t *idx, void *arg),
                          void *arg)
{
    size_t idx[REGISTRY_MAX_LABELS] = { 0 };
    if (f->nlabels == 0) {
        fn(f, idx, arg);
        return;
    }
    const struct registry_label *l0 = &f->labels[0];
    for (size_t a = 0; a < l0->nvalues; a++) {
        idx[0] = l0->order[a];
        if (f->nlabels == 1) {
            fn(f, idx, arg);
            continue;
        }
        const struct registry_label *l1 = &f->labels[1];
        for (size_t b = 0; b < l1->nvalues; b++) {
            idx[1] = l1->order[b];
            fn(f, idx, arg);
        }
    }
}

static void registry_write_one(const struct registry_family *f, const size_t *idx, void *arg)
{
    registry_write_series(arg, f, idx);
}

void registry_write(const struct registry *reg, struct buf *out)
{
    for (size_t i = 0; i < reg->nfamilies; i++) {
        const struct registry_family *f = &reg->families[i];
        buf_puts(out, "# HELP ");
        buf_puts(out, f->spec->name);
        buf_append(out, " ", 1);
        registry_escape_help(out, f->spec->help);
        buf_puts(out, "\n# TYPE ");
        buf_puts(out, f->spec->name);
        buf_append(out, " ", 1);
        buf_puts(out, registry_type_name(f->spec->type));
        buf_append(out, "\n", 1);
        registry_each(f, registry_write_one, out);
    }
}

/* ---- lookups for the status page ------------------------------------------ */

int registry_get(const struct registry *reg, const char *family, const char *const *labels, double *value)
{
    const struct registry_family *f = registry_find(reg, family);
    if (!f)
        return -ENOENT;
    if (f->spec->type == REGISTRY_HISTOGRAM)
        return -EINVAL;
    const char *values[REGISTRY_MAX_LABELS];
    size_t n = 0;
    for (; labels && labels[2 * n]; n++) {
        if (n == f->nlabels || !labels[2 * n + 1] || strcmp(labels[2 * n], f->labels[n].spec->name) != 0)
            return -ENOENT;
        values[n] = labels[2 * n + 1];
    }
    if (n != f->nlabels)
        return -ENOENT;
    size_t slot;
    int is_new[REGISTRY_MAX_LABELS];
    if (registry_resolve(f, values, 0, &slot, is_new) != INGEST_OK || !f->series[slot].present)
        return -ENOENT;
    *value = f->series[slot].value;
    return 0;
}

struct registry_pick {
    long label;
    const char *first; /* the first series present */
    const char *one;   /* the first series whose value is 1 */
};

static void registry_pick_one(const struct registry_family *f, const size_t *idx, void *arg)
{
    struct registry_pick *p = arg;
    size_t slot = 0;
    for (size_t i = 0; i < f->nlabels; i++)
        slot = slot * f->labels[i].cap + idx[i];
    const struct registry_series *se = &f->series[slot];
    if (!se->present)
        return;
    const char *v = f->labels[p->label].values[idx[p->label]];
    if (!p->first)
        p->first = v;
    if (!p->one && se->value == 1)
        p->one = v;
}

int registry_label_value(const struct registry *reg, const char *family, const char *label, char *out,
                         size_t size)
{
    const struct registry_family *f = registry_find(reg, family);
    if (!f)
        return -ENOENT;
    struct registry_pick p = { -1, NULL, NULL };
    for (size_t i = 0; i < f->nlabels; i++)
        if (strcmp(f->labels[i].spec->name, label) == 0)
            p.label = (long)i;
    if (p.label < 0)
        return -ENOENT;
    registry_each(f, registry_pick_one, &p);
    const char *v = p.one ? p.one : p.first;
    if (!v)
        return -ENOENT;
    size_t n = strlen(v);
    if (n >= size)
        return -ENOSPC;
    memcpy(out, v, n + 1);
    return 0;
}
