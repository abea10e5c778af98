/* One sample of every child: libproc2 reads /proc/PID/stat of every process
 * (the only file needed to know the trees), and only the processes that
 * belong to a child cost more: smaps_rollup for PSS and the fd count. */
#include "sampler.h"

#include <errno.h>
#include <libproc2/pids.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procfs.h"
#include "xalloc.h"

/* Every item comes from /proc/PID/stat, so libproc2 opens one file per
 * process (PIDS_ID_PID comes from the directory name). Adding an item from
 * status, statm or cmdline would add an open() per process on the host. */
static enum pids_item sampler_items[] = {
    PIDS_ID_PID,
    PIDS_ID_PPID,
    PIDS_ID_SESSION,
    PIDS_TICS_BEGAN,
    PIDS_TICS_USER,
    PIDS_TICS_SYSTEM,
    PIDS_RSS,
    PIDS_VSIZE_BYTES,
};

enum sampler_rel {
    SAMPLER_PID,
    SAMPLER_PPID,
    SAMPLER_SID,
    SAMPLER_BEGAN,
    SAMPLER_UTIME,
    SAMPLER_STIME,
    SAMPLER_RSS,
    SAMPLER_VSIZE,
};

#define SAMPLER_NITEMS ((int)(sizeof(sampler_items) / sizeof(sampler_items[0])))

struct sampler {
    struct pids_info *info;
    /* Reused from one sample to the next; grown, never shrunk. */
    struct proctree_entry *entries;
    int *owner;
    size_t cap;
    double ticks_per_s;
    uint64_t page_size;
};

struct sampler *sampler_new(void)
{
    long tck = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    if (tck <= 0 || page <= 0) {
        errno = EINVAL;
        return NULL;
    }
    struct sampler *s = xcalloc(1, sizeof(*s));
    int r = procps_pids_new(&s->info, sampler_items, SAMPLER_NITEMS);
    if (r < 0) {
        free(s);
        errno = -r;
        return NULL;
    }
    s->ticks_per_s = (double)tck;
    s->page_size = (uint64_t)page;
    return s;
}

void sampler_free(struct sampler *s)
{
    if (!s)
        return;
    procps_pids_unref(&s->info);
    free(s->entries);
    free(s->owner);
    free(s);
}

static void sampler_reserve(struct sampler *s, size_t n)
{
    if (n <= s->cap)
        return;
    size_t cap = s->cap ? s->cap : 256;
    while (cap < n)
        cap *= 2;
    s->entries = xreallocarray(s->entries, cap, sizeof(*s->entries));
    s->owner = xreallocarray(s->owner, cap, sizeof(*s->owner));
    s->cap = cap;
}

/* PSS and fds of one process of a child. A process that has gone since the
 * stat pass keeps its stat figures (they are this sample's) and no more; one
 * we may not inspect (a non-dumpable process, e.g.) falls back to RSS. */
static void sampler_detail(struct proctree_entry *e)
{
    struct procfs_smaps_rollup roll;
    unsigned fds;

    if (procfs_read_smaps_rollup(e->pid, &roll) == 0) {
        e->pss_bytes = roll.pss_bytes;
        e->pss_known = 1;
    }
    if (procfs_count_fds(e->pid, &fds) == 0)
        e->open_fds = fds;
}

int sampler_run(struct sampler *s, int self_pid, const int *roots, size_t nroots,
                struct proctree_ledger *ledgers, struct proctree_figures *out,
                int *strays, size_t *nstrays)
{
    errno = 0;
    struct pids_fetch *f = procps_pids_reap(s->info, PIDS_FETCH_TASKS_ONLY);
    if (!f)
        return errno ? -errno : -EIO;

    size_t n = f->counts->total > 0 ? (size_t)f->counts->total : 0;
    sampler_reserve(s, n);
    for (size_t i = 0; i < n; i++) {
        const struct pids_stack *st = f->stacks[i];
        struct proctree_entry *e = &s->entries[i];
        memset(e, 0, sizeof(*e));
        e->pid = PIDS_VAL(SAMPLER_PID, s_int, st, s->info);
        e->ppid = PIDS_VAL(SAMPLER_PPID, s_int, st, s->info);
        e->sid = PIDS_VAL(SAMPLER_SID, s_int, st, s->info);
        e->start_ticks = PIDS_VAL(SAMPLER_BEGAN, ull_int, st, s->info);
        e->utime_ticks = PIDS_VAL(SAMPLER_UTIME, ull_int, st, s->info);
        e->stime_ticks = PIDS_VAL(SAMPLER_STIME, ull_int, st, s->info);
        e->rss_bytes = (uint64_t)PIDS_VAL(SAMPLER_RSS, ul_int, st, s->info) * s->page_size;
        e->vsize_bytes = PIDS_VAL(SAMPLER_VSIZE, ul_int, st, s->info);
    }

    proctree_assign(s->entries, n, self_pid, roots, nroots, s->owner);
    for (size_t i = 0; i < n; i++)
        if (s->owner[i] >= 0)
            sampler_detail(&s->entries[i]);
    proctree_aggregate(s->entries, n, s->owner, nroots, ledgers, s->ticks_per_s, out);

    for (size_t r = 0; r < nroots; r++) {
        uint64_t max_fds;
        if (roots[r] > 0 && procfs_max_fds(roots[r], &max_fds) == 0)
            out[r].max_fds = max_fds;
    }

    /* *nstrays becomes the number written; strays beyond the room are
     * found again at the next sample. */
    size_t room = nstrays ? *nstrays : 0;
    size_t found = proctree_strays(s->entries, n, self_pid, s->owner, strays, room);
    if (nstrays)
        *nstrays = found < room ? found : room;
    return 0;
}
