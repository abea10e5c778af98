/* Pure functions over a process table: which child owns which process, and
 * the sums that become rendervisor_child_* figures. No I/O here. */
#ifndef RV_PROCTREE_H
#define RV_PROCTREE_H

#include <stddef.h>
#include <stdint.h>

struct proctree_entry {
    int pid;
    int ppid;
    int sid;
    unsigned long long start_ticks; /* stat: starttime; with pid, names a process uniquely */
    unsigned long long utime_ticks;
    unsigned long long stime_ticks;
    uint64_t rss_bytes;
    uint64_t vsize_bytes;
    /* Filled only for processes that belong to a child (see sampler.c). */
    uint64_t pss_bytes;
    int pss_known;
    unsigned open_fds;
};

/* What one child's tree adds up to. */
struct proctree_figures {
    unsigned processes;
    double cpu_user_seconds;   /* ledger-corrected: never decreases */
    double cpu_system_seconds;
    uint64_t resident_bytes;
    uint64_t proportional_bytes; /* PSS; falls back to RSS where PSS was unreadable */
    uint64_t virtual_bytes;
    uint64_t open_fds;
    uint64_t max_fds; /* soft RLIMIT_NOFILE of the child's root process */
};

/* A child's CPU bookkeeping across samples: the ticks of processes that have
 * gone are kept, so the counters stay monotonic while the tree churns, and
 * across restarts of the child. */
struct proctree_ledger_proc {
    int pid;
    unsigned long long start_ticks;
    unsigned long long utime_ticks;
    unsigned long long stime_ticks;
};

struct proctree_ledger {
    unsigned long long gone_utime_ticks;
    unsigned long long gone_stime_ticks;
    struct proctree_ledger_proc *procs; /* sorted by pid */
    size_t count, cap;
};

void proctree_ledger_init(struct proctree_ledger *l);
void proctree_ledger_fini(struct proctree_ledger *l);

/* owner[i] = index into roots of the child owning entries[i], or -1. A process
 * belongs to root r when its parent chain reaches roots[r]; a process whose
 * parent is self_pid and which is not itself a root belongs to the root whose
 * pid equals its session id (an orphan of that child), else to none. roots[r]
 * may be 0 (child not running). */
void proctree_assign(const struct proctree_entry *entries, size_t n, int self_pid,
                     const int *roots, size_t nroots, int *owner);

/* The pids of entries whose parent is self_pid but which belong to no child
 * (owner -1): orphans of a session that is no longer running, which the
 * supervisor ends. Writes at most max pids; returns how many there are. */
size_t proctree_strays(const struct proctree_entry *entries, size_t n, int self_pid,
                       const int *owner, int *strays, size_t max);

/* Sum the entries owned by root r into out[r] (processes, RSS, PSS, virtual,
 * fds; CPU through ledgers[r], which is updated). ticks_per_s converts CPU
 * ticks to seconds. out[r] is zeroed first; max_fds is left (at 0) for the
 * caller. */
void proctree_aggregate(const struct proctree_entry *entries, size_t n, const int *owner,
                        size_t nroots, struct proctree_ledger *ledgers, double ticks_per_s,
                        struct proctree_figures *out);

#endif
