/* Which child owns which process, and what each child's tree adds up to.
 * Pure and linear in the size of the process table: a host running Chromium
 * has hundreds of processes, sampled every second, and this must not become
 * the part that costs. */
#include "proctree.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* owner[] values while assigning; final values are >= -1. */
#define PROCTREE_NONE (-1)
#define PROCTREE_UNSEEN (-2)
#define PROCTREE_WALKING (-3)

/* pid -> entry index, open addressing with linear probing. Slots hold
 * index + 1 so that zeroed memory means empty. */
struct proctree_index {
    size_t *slots;
    size_t mask;
    unsigned shift;
};

/* Fibonacci hashing: the top bits of pid times 2^64/phi, so runs of
 * sequential pids spread over the table. */
static size_t proctree_hash(const struct proctree_index *ix, int pid)
{
    return (size_t)(((uint64_t)(uint32_t)pid * 0x9E3779B97F4A7C15ull) >> ix->shift);
}

static void proctree_index_build(struct proctree_index *ix, const struct proctree_entry *e,
                                 size_t n)
{
    size_t cap = 16;
    unsigned bits = 4;
    while (cap < 2 * n) {
        cap *= 2;
        bits++;
    }
    ix->slots = xcalloc(cap, sizeof(*ix->slots));
    ix->mask = cap - 1;
    ix->shift = 64 - bits;
    for (size_t i = 0; i < n; i++) {
        size_t h = proctree_hash(ix, e[i].pid);
        for (;; h = (h + 1) & ix->mask) {
            if (ix->slots[h] == 0) {
                ix->slots[h] = i + 1;
                break;
            }
            if (e[ix->slots[h] - 1].pid == e[i].pid)
                break; /* a pid twice in one table: the first one stands */
        }
    }
}

/* Index of pid in e, or -1. */
static long proctree_index_find(const struct proctree_index *ix, const struct proctree_entry *e,
                                int pid)
{
    for (size_t h = proctree_hash(ix, pid);; h = (h + 1) & ix->mask) {
        size_t s = ix->slots[h];
        if (s == 0)
            return -1;
        if (e[s - 1].pid == pid)
            return (long)(s - 1);
    }
}

static int proctree_root_of_session(const int *roots, size_t nroots, int sid)
{
    for (size_t r = 0; r < nroots; r++)
        if (roots[r] > 0 && roots[r] == sid)
            return (int)r;
    return PROCTREE_NONE;
}

void proctree_assign(const struct proctree_entry *entries, size_t n, int self_pid,
                     const int *roots, size_t nroots, int *owner)
{
    if (n == 0)
        return;
    struct proctree_index ix;
    proctree_index_build(&ix, entries, n);

    for (size_t i = 0; i < n; i++)
        owner[i] = PROCTREE_UNSEEN;
    for (size_t r = 0; r < nroots; r++) {
        if (roots[r] <= 0)
            continue;
        long k = proctree_index_find(&ix, entries, roots[r]);
        if (k >= 0 && owner[k] == PROCTREE_UNSEEN)
            owner[k] = (int)r;
    }

    /* Walk up from each unresolved entry until an answer is known, pushing
     * the path on an explicit stack (a chain can be as long as the table, so
     * no recursion), then give every entry on the path that answer. Marking
     * the path as WALKING turns a parent cycle, which a table read while
     * processes come and go could show, into "no owner" instead of a hang. */
    size_t *path = xmalloc(n * sizeof(*path));
    for (size_t i = 0; i < n; i++) {
        size_t depth = 0;
        size_t cur = i;
        int answer;
        for (;;) {
            if (owner[cur] >= PROCTREE_NONE) {
                answer = owner[cur];
                break;
            }
            if (owner[cur] == PROCTREE_WALKING) {
                answer = PROCTREE_NONE;
                break;
            }
            const struct proctree_entry *e = &entries[cur];
            if (e->ppid == self_pid && self_pid > 0) {
                /* Reparented to us, the subreaper, and not a root: an orphan
                 * of the child whose session it is in. */
                owner[cur] = PROCTREE_WALKING;
                path[depth++] = cur;
                answer = proctree_root_of_session(roots, nroots, e->sid);
                break;
            }
            long parent = -1;
            if (e->ppid > 0 && e->ppid != e->pid)
                parent = proctree_index_find(&ix, entries, e->ppid);
            owner[cur] = PROCTREE_WALKING;
            path[depth++] = cur;
            if (parent < 0) {
                answer = PROCTREE_NONE;
                break;
            }
            cur = (size_t)parent;
        }
        while (depth > 0)
            owner[path[--depth]] = answer;
    }
    free(path);
    free(ix.slots);
}

size_t proctree_strays(const struct proctree_entry *entries, size_t n, int self_pid,
                       const int *owner, int *strays, size_t max)
{
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        if (entries[i].ppid != self_pid || owner[i] != PROCTREE_NONE || entries[i].pid == self_pid)
            continue;
        if (found < max)
            strays[found] = entries[i].pid;
        found++;
    }
    return found;
}

void proctree_ledger_init(struct proctree_ledger *l)
{
    memset(l, 0, sizeof(*l));
}

void proctree_ledger_fini(struct proctree_ledger *l)
{
    free(l->procs);
    memset(l, 0, sizeof(*l));
}

static int proctree_ledger_cmp(const void *a, const void *b)
{
    const struct proctree_ledger_proc *x = a, *y = b;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    /* Only a table read across a pid reuse has a pid twice; order it anyway. */
    return x->start_ticks < y->start_ticks ? -1 : x->start_ticks > y->start_ticks;
}

/* The live processes of this sample have been appended after the previous
 * sample's (procs[count .. count + fresh)). Everything of the previous sample
 * that is not live now, same pid and same start time, has gone: its last
 * ticks move into gone_*. Then the live list becomes the ledger. */
static void proctree_ledger_settle(struct proctree_ledger *l, size_t fresh)
{
    struct proctree_ledger_proc *old = l->procs, *cur = l->procs + l->count;
    size_t i = 0, j = 0;

    if (l->count == 0 && fresh == 0)
        return; /* possibly nothing allocated yet */
    qsort(cur, fresh, sizeof(*cur), proctree_ledger_cmp);
    while (i < l->count) {
        while (j < fresh && cur[j].pid < old[i].pid)
            j++;
        if (j < fresh && cur[j].pid == old[i].pid && cur[j].start_ticks == old[i].start_ticks) {
            /* The kernel never lowers a live process's ticks; should a
             * reading ever do so, keep the counter from going back. */
            if (cur[j].utime_ticks < old[i].utime_ticks)
                cur[j].utime_ticks = old[i].utime_ticks;
            if (cur[j].stime_ticks < old[i].stime_ticks)
                cur[j].stime_ticks = old[i].stime_ticks;
        } else {
            l->gone_utime_ticks += old[i].utime_ticks;
            l->gone_stime_ticks += old[i].stime_ticks;
        }
        i++;
    }
    memmove(l->procs, cur, fresh * sizeof(*cur));
    l->count = fresh;
}

static void proctree_ledger_push(struct proctree_ledger *l, size_t fresh,
                                 const struct proctree_entry *e)
{
    size_t need = l->count + fresh + 1;
    if (need > l->cap) {
        size_t cap = l->cap ? l->cap : 16;
        while (cap < need)
            cap *= 2;
        l->procs = xreallocarray(l->procs, cap, sizeof(*l->procs));
        l->cap = cap;
    }
    struct proctree_ledger_proc *p = &l->procs[l->count + fresh];
    p->pid = e->pid;
    p->start_ticks = e->start_ticks;
    p->utime_ticks = e->utime_ticks;
    p->stime_ticks = e->stime_ticks;
}

void proctree_aggregate(const struct proctree_entry *entries, size_t n, const int *owner,
                        size_t nroots, struct proctree_ledger *ledgers, double ticks_per_s,
                        struct proctree_figures *out)
{
    memset(out, 0, nroots * sizeof(*out));

    /* One pass: out[r].processes doubles as the count of live processes
     * appended to ledger r so far. */
    for (size_t i = 0; i < n; i++) {
        int r = owner[i];
        if (r < 0 || (size_t)r >= nroots)
            continue;
        const struct proctree_entry *e = &entries[i];
        struct proctree_figures *f = &out[r];
        proctree_ledger_push(&ledgers[r], f->processes, e);
        f->processes++;
        f->resident_bytes += e->rss_bytes;
        f->proportional_bytes += e->pss_known ? e->pss_bytes : e->rss_bytes;
        f->virtual_bytes += e->vsize_bytes;
        f->open_fds += e->open_fds;
    }

    for (size_t r = 0; r < nroots; r++) {
        struct proctree_ledger *l = &ledgers[r];
        proctree_ledger_settle(l, out[r].processes);
        unsigned long long user = l->gone_utime_ticks, sys = l->gone_stime_ticks;
        for (size_t k = 0; k < l->count; k++) {
            user += l->procs[k].utime_ticks;
            sys += l->procs[k].stime_ticks;
        }
        out[r].cpu_user_seconds = (double)user / ticks_per_s;
        out[r].cpu_system_seconds = (double)sys / ticks_per_s;
    }
}
