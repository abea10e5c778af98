/* The supervisor: one thread, one epoll loop over a signalfd, a pidfd and two
 * output pipes per child, with the nearest deadline (restart, SIGKILL, sample)
 * as the wait's timeout. */
#ifndef RV_SUPERVISOR_H
#define RV_SUPERVISOR_H

#include <stddef.h>
#include <stdint.h>

#include "child.h"
#include "config.h"
#include "guardian.h"
#include "ingest.h"
#include "log.h"
#include "notify.h"
#include "probe.h"
#include "proctree.h"
#include "spec.h"

/* A line of a child's output longer than this is logged in pieces; any
 * record our own children write fits whole. */
#define SUPERVISOR_LINE_MAX LOG_LINE_MAX

enum sv_watch_kind {
    SV_WATCH_SIGNAL,
    SV_WATCH_PIDFD,
    SV_WATCH_STREAM,
    SV_WATCH_CTL,
};

struct sv_child;

/* What an epoll event points at. */
struct sv_watch {
    enum sv_watch_kind kind;
    struct sv_child *child;
    struct sv_stream *stream;
};

/* One of a child's output pipes, cut into lines for the log. */
struct sv_stream {
    int fd;
    const char *name; /* "stdout" or "stderr" */
    struct sv_watch watch;
    char buf[SUPERVISOR_LINE_MAX];
    size_t len;
};

struct sv_child {
    struct child_spec spec;
    struct child_machine m;
    int pid;   /* 0 when no process */
    int pidfd; /* -1 when no process */
    struct sv_watch pid_watch;
    struct sv_stream out, err;
    double start_wall;
    struct proctree_ledger ledger;
    struct proctree_figures fig;
    /* Health (probe.h): the next probe, or the deadline of the one running. */
    struct probe probe;
    int64_t started_ns;
    int64_t probe_at_ns;
    int64_t probe_started_ns;
    unsigned probe_failures; /* in a row */
    int probe_answered;      /* this run has answered once */
    int64_t drain_since_ns;  /* a browser over its limit the renderer is draining, or 0 */
    /* devtools = pipe: the renderer's ends of this browser's CDP pipes
     * (spawn.h), held while the browser lives so a restarted renderer gets
     * them again; -1 when none. cdp_gen tells this set from older ones. */
    int cdp_w, cdp_r;
    unsigned cdp_gen;
};

struct supervisor {
    struct config *cfg;
    char *config_path; /* the file the children get; NULL until set */
    int config_from_file; /* 0: embedded default, nothing to reload */
    int epfd;
    int sigfd;
    struct sv_watch sig_watch;
    struct guardian guardian;
    struct sampler *sampler;
    struct ingest_sender sender;
    int sender_refused; /* its path holds no socket to send to (said once) */
    /* One child's report, built again for each child and each sample: it
     * keeps the size the largest one needed (a few KiB). */
    struct ingest_buf report;
    struct sv_child **children;
    size_t nchildren;
    int64_t next_sample_ns;
    unsigned long long escaped_sig; /* what the guardian was last told */
    int shutting_down;
    int rest_stopping; /* shutting down, and the children but the renderer told to stop */
    int self_pid;
    int ctl_fd; /* supervisor.ctl: the renderer's "drained N", "hello" and health answers */
    unsigned browser_starts; /* every browser start, for "pipes N G" */
    unsigned probe_seq; /* the last health probe's sequence number */
    struct sv_watch ctl_watch;
    struct notify notify; /* systemd's Type=notify (notify.h) */
};

/* Set up everything (runtime_dir must exist); cfg and config_path are taken
 * over. Returns 0 or a negative errno, having logged why. */
int supervisor_init(struct supervisor *sv, struct config *cfg, char *config_path, int config_from_file);
/* Start the children and run until SIGTERM/SIGINT has stopped them all. */
int supervisor_run(struct supervisor *sv);
void supervisor_fini(struct supervisor *sv);

#endif
