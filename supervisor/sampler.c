/* One sample of every child: libproc2 reads /proc/PID/stat of every process
 * (the only file needed to know the trees), and only the processes that
 * belong to a child cost more: smaps_rollup for PSS and the fd count. */
#include "sampler.h"

#include <errno.h>
#include <libproc2/pids.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "procfs.h"
#include "procstat.h"
#include "xalloc.h"

/* PSS is what a memory limit is checked against, and reading it
 * (smaps_rollup: the kernel walks every page table) is the most expensive
 * part of a sample by far. A process's PSS is read again when its RSS has
 * moved by more than 1/SAMPLER_PSS_DRIFT since the last read, or when that
 * read is older than SAMPLER_PSS_MAX_AGE_NS; in between, the last PSS is
 * carried forward with the RSS change added (new pages counted as private,
 * the pessimistic guess). A tree whose estimate is over its limit is read
 * exactly before anyone acts on it. */
#define SAMPLER_PSS_DRIFT 16
#define SAMPLER_PSS_MAX_AGE_NS (10 * CLOCK_NS_PER_S)

/* The full pass reads /proc/PID/stat of every process on the host, most of
 * which are not ours. When no process has been created since the last
 * sample (/proc/loadavg's last pid has not moved), the same roots are
 * supervised, and every process the last sample kept (the children's trees
 * and our direct children) still exists, the trees cannot have changed:
 * only those processes are read again. Any change falls back to the full
 * pass. At most this many processes are remembered for that. */
#define SAMPLER_SELECT_MAX 255

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

/* The last exact PSS read of one process. */
struct sampler_pss {
    int pid;
    unsigned long long start_ticks;
    uint64_t pss_bytes;
    uint64_t rss_bytes; /* RSS (from stat) when PSS was read */
    int64_t read_ns;
};

struct sampler {
    struct pids_info *info;
    /* Sorted by pid: the PSS reads of the processes of the last sample. */
    struct sampler_pss *pss, *pss_next;
    size_t npss, npss_next, pss_cap;
    /* Reused from one sample to the next; grown, never shrunk. */
    struct proctree_entry *entries;
    int *owner;
    unsigned char *estimated; /* entry i's PSS was carried forward */
    size_t cap;
    size_t nentries; /* of the last sample */
    /* What the quick path needs to know about the last sample. */
    unsigned known[SAMPLER_SELECT_MAX];
    size_t nknown;
    int known_valid;
    int last_pid;
    int *last_roots;
    size_t nlast_roots;
    size_t table_size; /* processes read by the last sample */
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
    free(s->pss);
    free(s->pss_next);
    free(s->entries);
    free(s->owner);
    free(s->estimated);
    free(s->last_roots);
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
    s->estimated = xreallocarray(s->estimated, cap, sizeof(*s->estimated));
    s->cap = cap;
}

static const struct sampler_pss *sampler_pss_find(const struct sampler *s, int pid)
{
    size_t lo = 0, hi = s->npss;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->pss[mid].pid == pid)
            return &s->pss[mid];
        if (s->pss[mid].pid < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int sampler_pss_cmp(const void *a, const void *b)
{
    const struct sampler_pss *x = a, *y = b;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

/* Exact PSS of one process; 0 when it was read. A process we may not
 * inspect (non-dumpable) or that has just gone keeps pss_known = 0 and
 * counts with its RSS. */
static int sampler_read_pss(struct proctree_entry *e)
{
    struct procfs_smaps_rollup roll;
    if (procfs_read_smaps_rollup(e->pid, &roll) < 0)
        return -1;
    e->pss_bytes = roll.pss_bytes;
    e->pss_known = 1;
    return 0;
}

/* PSS (read or carried forward, see SAMPLER_PSS_DRIFT) and fds of one
 * process of a child; remembers the read in pss_next. Returns 1 when the
 * PSS is an estimate. */
static int sampler_detail(struct sampler *s, struct proctree_entry *e, int64_t now)
{
    unsigned fds;
    if (procfs_count_fds(e->pid, &fds) == 0)
        e->open_fds = fds;

    const struct sampler_pss *old = sampler_pss_find(s, e->pid);
    struct sampler_pss rec;
    int estimate = 0;
    if (old && old->start_ticks == e->start_ticks && now - old->read_ns < SAMPLER_PSS_MAX_AGE_NS &&
        e->rss_bytes <= old->rss_bytes + old->rss_bytes / SAMPLER_PSS_DRIFT &&
        e->rss_bytes + old->rss_bytes / SAMPLER_PSS_DRIFT >= old->rss_bytes) {
        int64_t pss = (int64_t)old->pss_bytes + ((int64_t)e->rss_bytes - (int64_t)old->rss_bytes);
        e->pss_bytes = pss > 0 ? (uint64_t)pss : 0;
        e->pss_known = 1;
        rec = *old;
        estimate = 1;
    } else if (sampler_read_pss(e) == 0) {
        rec = (struct sampler_pss){ e->pid, e->start_ticks, e->pss_bytes, e->rss_bytes, now };
    } else {
        return 0;
    }
    if (s->npss_next == s->pss_cap) {
        s->pss_cap = s->pss_cap ? s->pss_cap * 2 : 64;
        s->pss = xreallocarray(s->pss, s->pss_cap, sizeof(*s->pss));
        s->pss_next = xreallocarray(s->pss_next, s->pss_cap, sizeof(*s->pss_next));
    }
    s->pss_next[s->npss_next++] = rec;
    return estimate;
}

/* Read exactly every process of tree r whose PSS was carried forward, and
 * sum its memory again. */
static void sampler_exact_tree(struct sampler *s, size_t n, int r, struct proctree_figures *out)
{
    uint64_t pss = 0;
    for (size_t i = 0; i < n; i++) {
        struct proctree_entry *e = &s->entries[i];
        if (s->owner[i] != r)
            continue;
        if (s->estimated[i])
            sampler_read_pss(e);
        pss += e->pss_known ? e->pss_bytes : e->rss_bytes;
    }
    out->proportional_bytes = pss;
}

static size_t sampler_fill(struct sampler *s, const struct pids_fetch *f)
{
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
    return n;
}

static int sampler_same_roots(const struct sampler *s, const int *roots, size_t nroots)
{
    return s->last_roots && s->nlast_roots == nroots &&
           memcmp(s->last_roots, roots, nroots * sizeof(*roots)) == 0;
}

/* The quick path: read /proc/PID/stat of each known process directly (one
 * open, read and close each, parsed by common/procstat.c); libproc2's select
 * would add a stat() of /proc/PID per process and a generic sscanf. Any
 * process gone (its orphans may have moved) sends us to the full pass. */
static int sampler_reread(struct sampler *s, size_t *n)
{
    sampler_reserve(s, s->nknown);
    for (size_t i = 0; i < s->nknown; i++) {
        struct procstat st;
        if (procstat_read((int)s->known[i], &st) < 0 || st.state == 'Z')
            return -ESRCH;
        s->entries[i] = (struct proctree_entry){
            .pid = (int)s->known[i],
            .ppid = st.ppid,
            .sid = st.sid,
            .start_ticks = st.start_ticks,
            .utime_ticks = st.utime_ticks,
            .stime_ticks = st.stime_ticks,
            .rss_bytes = st.rss_pages > 0 ? (uint64_t)st.rss_pages * s->page_size : 0,
            .vsize_bytes = st.vsize_bytes,
        };
    }
    *n = s->nknown;
    return 0;
}

/* Read the process table: the known processes alone when nothing can have
 * changed, else libproc2's full pass. Sets *n to the entry count. */
static int sampler_read_table(struct sampler *s, const int *roots, size_t nroots, size_t *n)
{
    int last_pid = -1;
    int have_last = procfs_last_pid(&last_pid) == 0;

    if (have_last && s->known_valid && last_pid == s->last_pid && s->nknown > 0 &&
        sampler_same_roots(s, roots, nroots) && sampler_reread(s, n) == 0)
        return 0;

    errno = 0;
    struct pids_fetch *f = procps_pids_reap(s->info, PIDS_FETCH_TASKS_ONLY);
    if (!f)
        return errno ? -errno : -EIO;
    *n = sampler_fill(s, f);
    /* Taken before the read, so a process born during it forces a full
     * pass next time. */
    s->last_pid = last_pid;
    s->known_valid = have_last;
    return 0;
}

/* Remember which processes the next sample may read alone: the children's
 * trees and our direct children (the guardian, orphans). */
static void sampler_remember(struct sampler *s, size_t n, int self_pid, const int *roots, size_t nroots)
{
    s->nknown = 0;
    for (size_t i = 0; i < n; i++) {
        if (s->owner[i] < 0 && s->entries[i].ppid != self_pid)
            continue;
        if (s->nknown == SAMPLER_SELECT_MAX) {
            s->known_valid = 0;
            break;
        }
        s->known[s->nknown++] = (unsigned)s->entries[i].pid;
    }
    s->last_roots = xreallocarray(s->last_roots, nroots + 1, sizeof(*roots));
    memcpy(s->last_roots, roots, nroots * sizeof(*roots));
    s->nlast_roots = nroots;
    s->table_size = n;
}

size_t sampler_table_size(const struct sampler *s)
{
    return s->table_size;
}

int sampler_run(struct sampler *s, int self_pid, const int *roots, const uint64_t *limits,
                size_t nroots, struct proctree_ledger *ledgers, struct proctree_figures *out,
                int *strays, size_t *nstrays)
{
    size_t n = 0;
    int rc = sampler_read_table(s, roots, nroots, &n);
    if (rc < 0)
        return rc;

    proctree_assign(s->entries, n, self_pid, roots, nroots, s->owner);
    sampler_remember(s, n, self_pid, roots, nroots);
    int64_t now = clock_now_ns();
    s->npss_next = 0;
    for (size_t i = 0; i < n; i++)
        s->estimated[i] = s->owner[i] >= 0 && sampler_detail(s, &s->entries[i], now);
    /* This sample's reads become the ones the next sample looks up. */
    struct sampler_pss *swap = s->pss;
    s->pss = s->pss_next;
    s->pss_next = swap;
    s->npss = s->npss_next;
    qsort(s->pss, s->npss, sizeof(*s->pss), sampler_pss_cmp);

    proctree_aggregate(s->entries, n, s->owner, nroots, ledgers, s->ticks_per_s, out);
    for (size_t r = 0; limits && r < nroots; r++)
        if (limits[r] && out[r].proportional_bytes > limits[r])
            sampler_exact_tree(s, n, (int)r, &out[r]);
    s->nentries = n;

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

size_t sampler_escaped(const struct sampler *s, const int *roots, size_t nroots, int *pids,
                       unsigned long long *starts, size_t room)
{
    size_t k = 0;
    for (size_t i = 0; i < s->nentries && k < room; i++) {
        int r = s->owner[i];
        if (r < 0 || (size_t)r >= nroots || s->entries[i].sid == roots[r])
            continue;
        pids[k] = s->entries[i].pid;
        starts[k] = s->entries[i].start_ticks;
        k++;
    }
    return k;
}
