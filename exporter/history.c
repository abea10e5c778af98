/* The status page's short memory (history.h). A slot is found by its step's
 * number modulo the ring's size and carries that number, so a slot left
 * from a lap ago is told from a current one without ever clearing the ring,
 * and a gap in the reports stays a gap. */
#include "history.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "names.h"
#include "xalloc.h"


struct history_slot {
    int64_t step; /* which step it holds; -1: none yet */
    double pss;   /* highest PSS reported in the step; -1: none */
    double t0;    /* the CPU report before the step's first (monotonic s); -1: none */
    double cpu0;  /* the child's CPU total then (our running sum) */
    double t1;    /* the step's last CPU report */
    double cpu1;
};

struct history_child {
    char *name;
    double user, system; /* the sender's counters as last seen; -1: not yet */
    double cpu;          /* running sum of their increases */
    double t;            /* when CPU was last reported; -1: never */
    struct history_slot slots[HISTORY_SLOTS];
};

struct history {
    double step;
    size_t nchildren;
    struct history_child *children;
    struct history_latency latencies[HISTORY_LATENCIES];
    size_t next; /* where the next latency goes */
    size_t nlatencies;
};

static void history_child_init(struct history_child *c, char *name)
{
    c->name = name;
    c->user = c->system = -1;
    c->cpu = 0;
    c->t = -1;
    for (size_t i = 0; i < HISTORY_SLOTS; i++)
        c->slots[i].step = -1;
}

struct history *history_new(const struct config *cfg)
{
    struct history *h = xcalloc(1, sizeof(*h));
    double interval = (double)cfg->supervisor.sample_interval_ns / CLOCK_NS_PER_S;
    h->step = interval > HISTORY_STEP_MIN_S ? interval : HISTORY_STEP_MIN_S;
    h->nchildren = (size_t)cfg->browsers.count + 2;
    h->children = xcalloc(h->nchildren, sizeof(*h->children));
    history_child_init(&h->children[0], xstrdup(NAMES_CHILD_EXPORTER));
    for (unsigned i = 0; i < cfg->browsers.count; i++)
        history_child_init(&h->children[i + 1], xasprintf(NAMES_CHILD_BROWSER_FMT, i));
    history_child_init(&h->children[h->nchildren - 1], xstrdup(NAMES_CHILD_RENDERER));
    return h;
}

void history_free(struct history *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->nchildren; i++)
        free(h->children[i].name);
    free(h->children);
    free(h);
}

size_t history_children(const struct history *h)
{
    return h->nchildren;
}

const char *history_child(const struct history *h, size_t i)
{
    return i < h->nchildren ? h->children[i].name : NULL;
}

double history_step(const struct history *h)
{
    return h->step;
}

static int64_t history_step_of(const struct history *h, double t)
{
    return t > 0 ? (int64_t)(t / h->step) : 0; /* floor, without libm */
}

static struct history_slot *history_slot(struct history_child *c, int64_t step)
{
    struct history_slot *s = &c->slots[step % HISTORY_SLOTS];
    if (s->step != step) {
        s->step = step;
        s->pss = -1;
        s->t0 = s->t1 = -1;
    }
    return s;
}

/* The slot of step, or NULL when the ring holds another step there. */
static const struct history_slot *history_slot_at(const struct history_child *c, int64_t step)
{
    if (step < 0)
        return NULL;
    const struct history_slot *s = &c->slots[step % HISTORY_SLOTS];
    return s->step == step ? s : NULL;
}

static const char *history_label(const struct ingest_sample *s, const char *name)
{
    for (size_t i = 0; i < s->nlabels; i++)
        if (strcmp(s->labels[i].name, name) == 0)
            return s->labels[i].value;
    return NULL;
}

static struct history_child *history_find(struct history *h, const struct ingest_sample *s)
{
    const char *name = history_label(s, NAMES_LABEL_CHILD);
    if (!name)
        return NULL;
    for (size_t i = 0; i < h->nchildren; i++)
        if (strcmp(h->children[i].name, name) == 0)
            return &h->children[i];
    return NULL;
}

/* What a counter went up by since it was last seen; one that went down
 * started again from zero. */
static double history_increase(double *last, double v)
{
    double inc = *last < 0 ? 0 : v >= *last ? v - *last : v;
    *last = v;
    return inc;
}

void history_note(struct history *h, const struct ingest_sample *s, double now)
{
    if (!isfinite(s->value) || s->value < 0)
        return;
    if (strcmp(s->family, NAMES_FAMILY_REQUEST_DURATION) == 0) {
        const char *code = history_label(s, NAMES_LABEL_STATUS_CODE);
        struct history_latency *l = &h->latencies[h->next];
        l->t = now;
        l->seconds = s->value;
        l->status = code ? (unsigned)strtoul(code, NULL, 10) : 0;
        h->next = (h->next + 1) % HISTORY_LATENCIES;
        if (h->nlatencies < HISTORY_LATENCIES)
            h->nlatencies++;
        return;
    }
    int pss = strcmp(s->family, NAMES_FAMILY_CHILD_PSS) == 0;
    if (!pss && strcmp(s->family, NAMES_FAMILY_CHILD_CPU) != 0)
        return;
    struct history_child *c = history_find(h, s);
    if (!c)
        return;
    struct history_slot *slot = history_slot(c, history_step_of(h, now));
    if (pss) {
        if (s->value > slot->pss)
            slot->pss = s->value;
        return;
    }
    const char *m = history_label(s, NAMES_LABEL_MODE);
    int mode = m ? names_find(names_modes, m) : -1;
    double *last = mode == NAMES_MODE_USER ? &c->user : mode == NAMES_MODE_SYSTEM ? &c->system : NULL;
    if (!last)
        return;
    /* A step's CPU starts at the report before its first one, so what was
     * used between two reports is counted once, in the later one's step. */
    if (slot->t0 < 0) {
        slot->t0 = c->t >= 0 ? c->t : now;
        slot->cpu0 = c->cpu;
    }
    c->cpu += history_increase(last, s->value);
    c->t = now;
    slot->t1 = now;
    slot->cpu1 = c->cpu;
}

void history_observe(void *h, const struct ingest_sample *s)
{
    history_note(h, s, (double)clock_now_ns() / CLOCK_NS_PER_S);
}

void history_pss(const struct history *h, size_t child, double now, double *out)
{
    const struct history_child *c = &h->children[child];
    int64_t last = history_step_of(h, now);
    for (size_t i = 0; i < HISTORY_SLOTS; i++) {
        const struct history_slot *s = history_slot_at(c, last - (int64_t)(HISTORY_SLOTS - 1 - i));
        out[i] = s ? s->pss : -1;
    }
}

double history_cpu_rate(const struct history *h, size_t child, double now)
{
    const struct history_child *c = &h->children[child];
    int64_t last = history_step_of(h, now);
    const struct history_slot *newest = NULL, *oldest = NULL;
    for (int64_t k = 0; k < HISTORY_SLOTS && !newest; k++) {
        const struct history_slot *s = history_slot_at(c, last - k);
        if (s && s->t1 >= 0)
            newest = s;
    }
    if (!newest || now - newest->t1 > HISTORY_CPU_WINDOW_S)
        return -1;
    for (int64_t k = HISTORY_SLOTS - 1; k >= 0 && !oldest; k--) {
        const struct history_slot *s = history_slot_at(c, last - k);
        if (s && s->t0 >= 0 && s->t0 >= newest->t1 - HISTORY_CPU_WINDOW_S)
            oldest = s;
    }
    if (!oldest) /* a step longer than the window: the newest step alone */
        oldest = newest;
    double dt = newest->t1 - oldest->t0;
    if (dt < 1)
        return -1;
    return (newest->cpu1 - oldest->cpu0) / dt;
}

size_t history_latencies(const struct history *h, double now, struct history_latency *out)
{
    size_t n = 0;
    for (size_t i = 0; i < h->nlatencies; i++) {
        size_t k = (h->next + HISTORY_LATENCIES - h->nlatencies + i) % HISTORY_LATENCIES;
        if (now - h->latencies[k].t <= HISTORY_LATENCY_WINDOW_S)
            out[n++] = h->latencies[k];
    }
    return n;
}
