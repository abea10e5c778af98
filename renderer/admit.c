/* The render cost estimate and the admission sum (admit.h). */
#include "admit.h"

#include <string.h>

void admit_init(struct admit *a, uint64_t initial)
{
    memset(a, 0, sizeof(*a));
    a->initial = initial;
}

static uint64_t admit_largest(const struct admit *a)
{
    uint64_t most = 0;
    for (unsigned i = 0; i < ADMIT_WINDOW; i++)
        if (a->recent[i] > most)
            most = a->recent[i];
    return most;
}

uint64_t admit_estimate(const struct admit *a)
{
    uint64_t most = admit_largest(a);
    most += most * ADMIT_MARGIN_PCT / 100;
    if (a->measured < ADMIT_LEARN && most < a->initial)
        most = a->initial;
    if (a->measured < a->crash_until && most < a->crash_floor)
        most = a->crash_floor;
    return most;
}

void admit_sample(struct admit *a, uint64_t used, struct admit_run *const *runs, unsigned n, unsigned ending)
{
    /* With nothing running the service is at rest: that is the floor the
     * renders grow from. It can only fall while they run (a browser
     * restarted, a cache given back): never below what is used now. */
    if ((n == 0 && ending == 0) || !a->have_idle || used < a->idle) {
        a->idle = used;
        a->have_idle = 1;
    }
    a->grown = used - a->idle;
    a->share = n + ending ? a->grown / (n + ending) : 0;
    for (unsigned i = 0; i < n; i++)
        if (a->share > runs[i]->peak)
            runs[i]->peak = a->share;
}

/* Together, not render by render: a render admitted since the last sample
 * has grown nothing yet, and is reserved whole. The growth counted against
 * it is all of it, the ending renders' part too: their pages are closing
 * and their memory, still in used, is about to come back (in 20 to 80 ms
 * here), before a render admitted now has loaded its page. */
uint64_t admit_reserved(const struct admit *a, struct admit_run *const *runs, unsigned n)
{
    uint64_t expected = 0;
    for (unsigned i = 0; i < n; i++)
        expected += runs[i]->expected;
    return expected > a->grown ? expected - a->grown : 0;
}

int admit_fits(uint64_t budget, uint64_t available, uint64_t reserved, uint64_t need, unsigned running)
{
    if (running == 0)
        return 1;
    uint64_t headroom = budget == UINT64_MAX ? 0 : budget / 100 * ADMIT_HEADROOM_PCT;
    return available >= reserved && available - reserved >= need && available - reserved - need >= headroom;
}

void admit_measured(struct admit *a, const struct admit_run *r)
{
    a->recent[a->measured++ % ADMIT_WINDOW] = r->peak;
}

void admit_crashed(struct admit *a, const struct admit_run *r)
{
    uint64_t now = admit_estimate(a);
    if (r->expected < now)
        return; /* grown since it was admitted: this crash is counted */
    uint64_t grown = now + now * ADMIT_CRASH_PCT / 100;
    a->crash_floor = r->peak > grown ? r->peak : grown;
    if (a->measured < ADMIT_LEARN)
        a->measured = ADMIT_LEARN; /* learned the hard way: no default holds it down */
    a->crash_until = a->measured + ADMIT_WINDOW;
}
