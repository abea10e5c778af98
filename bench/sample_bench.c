/* What one supervisor sample costs: three process trees of real, exec'd
 * processes (50 in all by default) are measured with sampler_run() many times,
 * and, in the same run, the reference peer (prometheus-process-exporter,
 * grouping the same trees) is scraped as many times, so the two can be
 * compared as a ratio on the same machine at the same moment.
 * bench/sample.sh runs it; docs/benchmarks.md has the results. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libproc2/pids.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "procfs.h"
#include "sampler.h"
#include "xalloc.h"

#define BENCH_TREES 3
#define BENCH_FANOUT 3
/* The peer's group names are the trees' root command names (comm). */
#define BENCH_ROOT_NAME "rvb-tree%d"
#define BENCH_NODE_NAME "rvb-node"

struct bench_opts {
    int samples;
    int warmup;
    int procs;
    const char *peer; /* host:port, or NULL */
    int peer_scrapes;
    int peer_warmup;
    int breakdown; /* repetitions of each part, 0 = none */
};

static char bench_exe[PATH_MAX];

static int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void bench_die(const char *what)
{
    fprintf(stderr, "sample_bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Start a node of count processes (itself included) under the calling
 * process: fork, die with the parent, exec ourselves in node mode. */
static pid_t bench_spawn_node(const char *name, int count, int ready_fd, int new_session)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork");
    if (pid > 0)
        return pid;
    if (new_session)
        setsid(); /* as the supervisor starts a child */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(0);
    char cnt[16], fd[16];
    snprintf(cnt, sizeof(cnt), "%d", count);
    snprintf(fd, sizeof(fd), "%d", ready_fd);
    execl(bench_exe, "sample_bench", "--node", name, cnt, fd, (char *)NULL);
    _exit(127);
}

/* Node mode: take the name, start the subtree, say ready, wait to be killed. */
static int bench_node(const char *name, int count, int ready_fd)
{
    prctl(PR_SET_NAME, name);
    int rest = count - 1;
    for (int k = 0; k < BENCH_FANOUT && rest > 0; k++) {
        int share = (count - 1) / BENCH_FANOUT + (k < (count - 1) % BENCH_FANOUT);
        if (share > rest)
            share = rest;
        if (share == 0)
            continue;
        bench_spawn_node(BENCH_NODE_NAME, share, ready_fd, 0);
        rest -= share;
    }
    /* Our pid says we are up (4 bytes: one atomic pipe write). */
    int32_t me = getpid();
    if (write(ready_fd, &me, sizeof(me)) != (ssize_t)sizeof(me))
        return 1;
    close(ready_fd);
    for (;;)
        pause();
}

static int bench_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

struct bench_stats {
    double p50_us, p99_us, mean_us, min_us;
};

static struct bench_stats bench_stats(int64_t *ns, int n)
{
    struct bench_stats st = { 0, 0, 0, 0 };
    if (n <= 0)
        return st;
    qsort(ns, (size_t)n, sizeof(*ns), bench_cmp_i64);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (double)ns[i];
    st.min_us = (double)ns[0] / 1e3;
    st.p50_us = (double)ns[n / 2] / 1e3;
    st.p99_us = (double)ns[(int)((double)(n - 1) * 0.99)] / 1e3;
    st.mean_us = sum / n / 1e3;
    return st;
}

static int bench_peer_connect(const char *peer)
{
    char host[256];
    const char *colon = strrchr(peer, ':');
    if (!colon || (size_t)(colon - peer) >= sizeof(host)) {
        fprintf(stderr, "sample_bench: --peer wants host:port\n");
        exit(2);
    }
    memcpy(host, peer, (size_t)(colon - peer));
    host[colon - peer] = '\0';
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai;
    int r = getaddrinfo(host, colon + 1, &hints, &ai);
    if (r != 0) {
        fprintf(stderr, "sample_bench: %s: %s\n", peer, gai_strerror(r));
        exit(2);
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        bench_die("connect to peer");
    freeaddrinfo(ai);
    return fd;
}

/* One scrape: a new connection, GET /metrics, read to the end. HTTP/1.0 so
 * the body comes unchunked and can be checked as it is. */
static size_t bench_scrape(const char *peer, char **buf, size_t *cap)
{
    static const char req[] = "GET /metrics HTTP/1.0\r\nHost: bench\r\n"
                              "Accept: text/plain\r\n\r\n";
    int fd = bench_peer_connect(peer);
    if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1))
        bench_die("write to peer");
    size_t len = 0;
    for (;;) {
        if (*cap - len < 65536) {
            *cap = *cap ? *cap * 2 : 1 << 20;
            *buf = xrealloc(*buf, *cap);
        }
        ssize_t n = read(fd, *buf + len, *cap - len - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            bench_die("read from peer");
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    (*buf)[len] = '\0';
    if (strncmp(*buf, "HTTP/1.0 200", 12) != 0 && strncmp(*buf, "HTTP/1.1 200", 12) != 0) {
        fprintf(stderr, "sample_bench: peer answered: %.80s\n", *buf);
        exit(1);
    }
    return len;
}

/* How many processes the peer puts in our groups: it must be measuring the
 * same trees for the comparison to mean anything. */
static long bench_peer_procs(const char *body)
{
    static const char key[] = "namedprocess_namegroup_num_procs{groupname=\"rvb-tree";
    long total = 0;
    for (const char *p = strstr(body, key); p; p = strstr(p + 1, key)) {
        const char *sp = strchr(p, ' ');
        if (sp)
            total += strtol(sp + 1, NULL, 10);
    }
    return total;
}

static void bench_usage(void)
{
    fprintf(stderr,
            "usage: sample_bench [--samples N] [--warmup W] [--procs P] [--breakdown R]\n"
            "                    [--peer HOST:PORT [--peer-scrapes M] [--peer-warmup W]]\n"
            "  Starts 3 process trees of P processes in all (default 50), takes W\n"
            "  untimed and N timed samples of them (defaults 20, 1000), and scrapes\n"
            "  the peer W and M times (defaults 3, 200), interleaved with samples.\n"
            "  Then times each part of a sample R times (default 200; 0 skips it).\n");
    exit(2);
}

static void bench_parse(int argc, char **argv, struct bench_opts *o)
{
    *o = (struct bench_opts){ .samples = 1000, .warmup = 20, .procs = 50, .peer = NULL,
                              .peer_scrapes = 200, .peer_warmup = 3, .breakdown = 200 };
    /* Options come in pairs: a name and its value. */
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            bench_usage();
        if (strcmp(a, "--samples") == 0)
            o->samples = atoi(v);
        else if (strcmp(a, "--warmup") == 0)
            o->warmup = atoi(v);
        else if (strcmp(a, "--procs") == 0)
            o->procs = atoi(v);
        else if (strcmp(a, "--peer") == 0)
            o->peer = v;
        else if (strcmp(a, "--peer-scrapes") == 0)
            o->peer_scrapes = atoi(v);
        else if (strcmp(a, "--peer-warmup") == 0)
            o->peer_warmup = atoi(v);
        else if (strcmp(a, "--breakdown") == 0)
            o->breakdown = atoi(v);
        else
            bench_usage();
    }
    if (o->samples < 0 || o->warmup < 0 || o->procs < BENCH_TREES || o->peer_scrapes < 0 ||
        o->peer_warmup < 0 || o->breakdown < 0)
        bench_usage();
}

/* Collect the pids of all the tree processes as they say they are up. */
static void bench_wait_ready(int fd, int32_t *pids, int want)
{
    size_t got = 0, need = (size_t)want * sizeof(*pids);
    int64_t deadline = bench_now_ns() + 20 * 1000000000LL;
    while (got < need) {
        int64_t left = (deadline - bench_now_ns()) / 1000000;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
            fprintf(stderr, "sample_bench: only %zu of %d processes started\n",
                    got / sizeof(*pids), want);
            exit(1);
        }
        ssize_t n = read(fd, (char *)pids + got, need - got);
        if (n <= 0)
            bench_die("read ready pipe");
        got += (size_t)n;
    }
}

/* Processes on the host: what the libproc2 pass reads, ours or not. */
static int bench_count_processes(void)
{
    DIR *d = opendir("/proc");
    if (!d)
        bench_die("opendir /proc");
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] >= '1' && e->d_name[0] <= '9';
    closedir(d);
    return n;
}

static double bench_tv_us(const struct timeval *tv)
{
    return (double)tv->tv_sec * 1e6 + (double)tv->tv_usec;
}

/* Where a sample's time goes, part by part, over the same processes: the
 * libproc2 stat pass over the whole table, then per process of a child the
 * raw stat read, smaps_rollup, and the fd count. Each part runs reps times. */
static void bench_breakdown(const int32_t *pids, int npids, int reps)
{
    enum pids_item items[] = { PIDS_ID_PID, PIDS_ID_PPID, PIDS_ID_SESSION, PIDS_TICS_BEGAN,
                               PIDS_TICS_USER, PIDS_TICS_SYSTEM, PIDS_RSS, PIDS_VSIZE_BYTES };
    struct pids_info *info = NULL;
    if (procps_pids_new(&info, items, (int)(sizeof(items) / sizeof(items[0]))) < 0)
        bench_die("procps_pids_new");
    int table = 0;
    int64_t t0 = bench_now_ns();
    for (int r = 0; r < reps; r++) {
        struct pids_fetch *f = procps_pids_reap(info, PIDS_FETCH_TASKS_ONLY);
        if (!f)
            bench_die("procps_pids_reap");
        table = f->counts->total;
    }
    double reap_us = (double)(bench_now_ns() - t0) / 1e3 / reps;
    procps_pids_unref(&info);

    char path[64], buf[1024];
    t0 = bench_now_ns();
    for (int r = 0; r < reps; r++)
        for (int i = 0; i < npids; i++) {
            snprintf(path, sizeof(path), "/proc/%d/stat", (int)pids[i]);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0 || read(fd, buf, sizeof(buf)) <= 0)
                bench_die("read stat");
            close(fd);
        }
    double stat_us = (double)(bench_now_ns() - t0) / 1e3 / reps / npids;

    struct procfs_smaps_rollup roll;
    t0 = bench_now_ns();
    for (int r = 0; r < reps; r++)
        for (int i = 0; i < npids; i++)
            if (procfs_read_smaps_rollup(pids[i], &roll) < 0)
                bench_die("smaps_rollup");
    double pss_us = (double)(bench_now_ns() - t0) / 1e3 / reps / npids;

    unsigned fds;
    t0 = bench_now_ns();
    for (int r = 0; r < reps; r++)
        for (int i = 0; i < npids; i++)
            if (procfs_count_fds(pids[i], &fds) < 0)
                bench_die("count fds");
    double fds_us = (double)(bench_now_ns() - t0) / 1e3 / reps / npids;

    printf("breakdown reps=%d table_processes=%d libproc2_pass_us=%.1f "
           "libproc2_us_per_table_process=%.2f stat_read_us_per_process=%.2f "
           "smaps_rollup_us_per_process=%.2f fd_count_us_per_process=%.2f\n",
           reps, table, reap_us, reap_us / table, stat_us, pss_us, fds_us);
}

int main(int argc, char **argv)
{
    ssize_t el = readlink("/proc/self/exe", bench_exe, sizeof(bench_exe) - 1);
    if (el <= 0)
        bench_die("readlink /proc/self/exe");
    bench_exe[el] = '\0';
    if (argc == 5 && strcmp(argv[1], "--node") == 0)
        return bench_node(argv[2], atoi(argv[3]), atoi(argv[4]));

    struct bench_opts o;
    bench_parse(argc, argv, &o);

    /* Like the supervisor: orphans of the trees come back to us. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    int ready[2];
    if (pipe(ready) < 0)
        bench_die("pipe");
    fcntl(ready[0], F_SETFD, FD_CLOEXEC);

    int roots[BENCH_TREES];
    for (int t = 0; t < BENCH_TREES; t++) {
        char name[16];
        snprintf(name, sizeof(name), BENCH_ROOT_NAME, t);
        int count = o.procs / BENCH_TREES + (t < o.procs % BENCH_TREES);
        roots[t] = bench_spawn_node(name, count, ready[1], 1);
    }
    close(ready[1]);
    int32_t *pids = xcalloc((size_t)o.procs, sizeof(*pids));
    bench_wait_ready(ready[0], pids, o.procs);
    close(ready[0]);

    struct sampler *s = sampler_new();
    if (!s)
        bench_die("sampler_new");
    struct proctree_ledger ledgers[BENCH_TREES];
    struct proctree_figures out[BENCH_TREES];
    for (int t = 0; t < BENCH_TREES; t++)
        proctree_ledger_init(&ledgers[t]);
    int strays[16];
    size_t nstrays;
    int self = getpid();

    /* Untimed: the first sample sizes the buffers, the rest warm the caches. */
    for (int i = 0; i < o.warmup; i++) {
        nstrays = sizeof(strays) / sizeof(strays[0]);
        if (sampler_run(s, self, roots, NULL, BENCH_TREES, ledgers, out, strays, &nstrays) < 0)
            bench_die("sampler_run");
    }

    char *body = NULL;
    size_t body_cap = 0, body_len = 0;
    long peer_procs = -1;
    if (o.peer) {
        for (int i = 0; i < o.peer_warmup; i++)
            body_len = bench_scrape(o.peer, &body, &body_cap);
    }

    int64_t *ours = xcalloc((size_t)o.samples + 1, sizeof(*ours));
    int64_t *theirs = xcalloc((size_t)o.peer_scrapes + 1, sizeof(*theirs));
    int rounds = o.samples > o.peer_scrapes || !o.peer ? o.samples : o.peer_scrapes;
    int nours = 0, ntheirs = 0;
    double user_us = 0, sys_us = 0; /* our CPU time inside sampler_run */
    double read_sum = 0; /* processes each sample read from the table */
    for (int i = 0; i < rounds; i++) {
        if (i < o.samples) {
            struct rusage ru0, ru1;
            nstrays = sizeof(strays) / sizeof(strays[0]);
            getrusage(RUSAGE_SELF, &ru0);
            int64_t t0 = bench_now_ns();
            int r = sampler_run(s, self, roots, NULL, BENCH_TREES, ledgers, out, strays, &nstrays);
            ours[nours++] = bench_now_ns() - t0;
            getrusage(RUSAGE_SELF, &ru1);
            read_sum += (double)sampler_table_size(s);
            if (r < 0)
                bench_die("sampler_run");
            user_us += bench_tv_us(&ru1.ru_utime) - bench_tv_us(&ru0.ru_utime);
            sys_us += bench_tv_us(&ru1.ru_stime) - bench_tv_us(&ru0.ru_stime);
        }
        if (o.peer && i < o.peer_scrapes) {
            int64_t t0 = bench_now_ns();
            body_len = bench_scrape(o.peer, &body, &body_cap);
            theirs[ntheirs++] = bench_now_ns() - t0;
        }
    }
    if (o.peer && body)
        peer_procs = bench_peer_procs(body);

    unsigned measured = 0;
    for (int t = 0; t < BENCH_TREES; t++) {
        measured += out[t].processes;
        printf("tree=%d root=%d processes=%u rss_bytes=%llu pss_bytes=%llu vsize_bytes=%llu "
               "open_fds=%llu max_fds=%llu cpu_user_s=%.2f cpu_system_s=%.2f\n",
               t, roots[t], out[t].processes, (unsigned long long)out[t].resident_bytes,
               (unsigned long long)out[t].proportional_bytes,
               (unsigned long long)out[t].virtual_bytes, (unsigned long long)out[t].open_fds,
               (unsigned long long)out[t].max_fds, out[t].cpu_user_seconds,
               out[t].cpu_system_seconds);
    }
    if (o.warmup + o.samples > 0 && measured != (unsigned)o.procs) {
        fprintf(stderr, "sample_bench: measured %u processes, started %d\n", measured, o.procs);
        return 1;
    }
    if (nours > 0) {
        struct bench_stats st = bench_stats(ours, nours);
        printf("ours samples=%d processes=%u table_processes=%d p50_us=%.1f p99_us=%.1f "
               "mean_us=%.1f min_us=%.1f p50_us_per_process=%.2f p99_us_per_process=%.2f "
               "cpu_user_us=%.1f cpu_system_us=%.1f mean_processes_read=%.1f\n",
               nours, measured, bench_count_processes(), st.p50_us, st.p99_us, st.mean_us,
               st.min_us, st.p50_us / measured, st.p99_us / measured, user_us / nours,
               sys_us / nours, read_sum / nours);
        if (ntheirs > 0) {
            struct bench_stats pt = bench_stats(theirs, ntheirs);
            printf("peer scrapes=%d processes=%ld body_bytes=%zu p50_us=%.1f p99_us=%.1f "
                   "mean_us=%.1f min_us=%.1f p50_us_per_process=%.2f p99_us_per_process=%.2f\n",
                   ntheirs, peer_procs, body_len, pt.p50_us, pt.p99_us, pt.mean_us, pt.min_us,
                   pt.p50_us / measured, pt.p99_us / measured);
            printf("ratio ours/peer p50=%.3f p99=%.3f mean=%.3f\n", st.p50_us / pt.p50_us,
                   st.p99_us / pt.p99_us, st.mean_us / pt.mean_us);
            if (peer_procs != (long)measured)
                fprintf(stderr, "sample_bench: warning: the peer grouped %ld processes, we %u\n",
                        peer_procs, measured);
        }
    }

    if (o.breakdown > 0)
        bench_breakdown(pids, o.procs, o.breakdown);

    free(body);
    free(pids);
    free(ours);
    free(theirs);
    for (int t = 0; t < BENCH_TREES; t++)
        proctree_ledger_fini(&ledgers[t]);
    sampler_free(s);

    /* Each tree is its own process group; whatever was orphaned is ours to reap. */
    for (int t = 0; t < BENCH_TREES; t++)
        kill(-roots[t], SIGKILL);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    return 0;
}
