/* A short, bounded memory of what the ingest socket said, for the status
 * page: per child, the highest PSS of each step of the last HISTORY_SLOTS
 * steps and its CPU seconds, and the durations of the last HISTORY_LATENCIES
 * render requests. /metrics keeps no history (Prometheus does); this is only
 * what a person looking at / wants to see without a Prometheus. Fixed-size
 * rings: the memory it takes is known when the exporter starts. */
#ifndef RV_HISTORY_H
#define RV_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ingest.h"

/* 120 steps of 5 s (or of sample_interval, when that is longer): 10 minutes. */
#define HISTORY_SLOTS 120
#define HISTORY_STEP_MIN_S 5.0
/* CPU is shown as an average over this long (or over what is known, when
 * less). */
#define HISTORY_CPU_WINDOW_S 60.0
/* Render durations kept, and how old one may be to count. */
#define HISTORY_LATENCIES 64
#define HISTORY_LATENCY_WINDOW_S 600.0

struct history;

struct history_latency {
    double t;       /* monotonic seconds it was reported at */
    double seconds; /* the request's duration */
    unsigned status;
};

/* The children cfg implies: exporter, browser-0 .. browser-<count-1>,
 * renderer, in that order. */
struct history *history_new(const struct config *cfg);
void history_free(struct history *h);

size_t history_children(const struct history *h);
const char *history_child(const struct history *h, size_t i);
/* The length of one slot in seconds. */
double history_step(const struct history *h);

/* Take one accepted ingest line seen at now (monotonic seconds): PSS, CPU
 * seconds and request durations are kept, other families ignored. */
void history_note(struct history *h, const struct ingest_sample *s, double now);
/* history_note() at the monotonic clock's now; a registry observer. */
void history_observe(void *h, const struct ingest_sample *s);

/* The highest PSS of each of the last HISTORY_SLOTS slots up to now, oldest
 * first, in out[HISTORY_SLOTS]; -1 for a slot without a report. */
void history_pss(const struct history *h, size_t child, double now, double *out);
/* CPU seconds per second (user + system, 1 = one core busy) over the last
 * HISTORY_CPU_WINDOW_S; a counter that went down (an exporter restart of
 * the sender's, or a reset) counts from its new value. -1 when fewer than
 * two reports a second apart are known. */
double history_cpu_rate(const struct history *h, size_t child, double now);
/* The requests reported within HISTORY_LATENCY_WINDOW_S of now, oldest first,
 * into out[HISTORY_LATENCIES]; returns how many. */
size_t history_latencies(const struct history *h, double now, struct history_latency *out);

#endif
