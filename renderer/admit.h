/* What a render costs, and whether the next one fits (docs/design.md,
 * "Admission by memory"). Pure: the caller reads the memory (memory.h) and
 * says what runs.
 *
 * A render's cost is measured as its share of the service's growth: while
 * renders run, (used - idle) / running, where idle is what the service used
 * when none ran (spare pages and browsers included). Each render keeps the
 * largest share seen while it ran, and when it has answered that peak is
 * kept with the last ADMIT_WINDOW others; the estimate is the largest of
 * them and ADMIT_MARGIN_PCT more. A share is an average over the renders
 * that overlap, so one render's figure can come out low (its neighbours had
 * let go of their memory) or high (one that ended had not yet: its page's
 * process takes a moment to go, so for ADMIT_ENDING_NS after its answer a
 * render still counts among the running for the shares); the largest of the
 * recent ones covers the first. The margin covers a peak that fell between
 * two samples. Until ADMIT_LEARN renders
 * have been measured the estimate is never below the configured default.
 *
 * What the renders in flight are still expected to take (reserved) is what
 * they were admitted with, together, less what the service has grown by
 * since it was at rest (the part of renders that have just answered
 * included: it is about to come back). A render is admitted when available - reserved -
 * estimate leaves ADMIT_HEADROOM_PCT of the budget (the kernel starts to
 * reclaim, and to kill, at the limit itself). One render is always admitted
 * when none runs, so a render larger than the budget still gets its try,
 * alone. */
#ifndef RV_ADMIT_H
#define RV_ADMIT_H

#include <stdint.h>

#define ADMIT_LEARN 3
#define ADMIT_WINDOW 12
#define ADMIT_MARGIN_PCT 10
#define ADMIT_HEADROOM_PCT 3
#define ADMIT_ENDING_NS (300 * 1000 * 1000)
/* A crash grows the estimate by this much (once for crashes together). */
#define ADMIT_CRASH_PCT 25

struct admit {
    uint64_t initial;               /* the default until measured ([renderer] render_memory) */
    uint64_t recent[ADMIT_WINDOW];  /* the last renders' peaks, 0 for none */
    unsigned measured;              /* renders measured */
    uint64_t idle;                  /* used when no render ran */
    int have_idle;
    uint64_t grown; /* used - idle at the last sample */
    uint64_t share; /* grown / (running + ending) at the last sample */
    uint64_t crash_floor; /* the estimate is at least this after a crash ... */
    unsigned crash_until; /* ... until this many renders have been measured */
};

/* One render in flight. */
struct admit_run {
    uint64_t expected; /* the estimate it was admitted with */
    uint64_t peak;     /* the largest share it has had */
};

void admit_init(struct admit *a, uint64_t initial);
/* What the next render is expected to take. */
uint64_t admit_estimate(const struct admit *a);
/* A sample of what the service uses with these renders running, and ending
 * more that answered in the last ADMIT_ENDING_NS: updates the idle figure,
 * the growth, the share and each run's peak. */
void admit_sample(struct admit *a, uint64_t used, struct admit_run *const *runs, unsigned n, unsigned ending);
/* What the runs are still expected to take. */
uint64_t admit_reserved(const struct admit *a, struct admit_run *const *runs, unsigned n);
/* 1 when a render expected to take need fits: available less reserved,
 * less the headroom of budget (UINT64_MAX: no limit known, no headroom). */
int admit_fits(uint64_t budget, uint64_t available, uint64_t reserved, uint64_t need, unsigned running);
/* A render answered: its peak share goes into the estimate. */
void admit_measured(struct admit *a, const struct admit_run *r);
/* A render's page crashed (the kernel's OOM killer, most likely): it took
 * more than it was given. Unless the estimate has grown since the render
 * was admitted (several crash together: they count once), the estimate
 * grows by ADMIT_CRASH_PCT, at least to the run's peak, for the next
 * ADMIT_WINDOW renders. */
void admit_crashed(struct admit *a, const struct admit_run *r);

#endif
