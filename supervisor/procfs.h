/* The /proc files the sampler reads itself, beyond what libproc2 gives it:
 * pure parsers from a buffer to a struct (so tests feed them fixtures), and
 * small readers for one pid. A reader returns -ESRCH when the process is gone:
 * that is an event the caller skips, not an error. */
#ifndef RV_PROCFS_H
#define RV_PROCFS_H

#include <stddef.h>
#include <stdint.h>

/* What we take from /proc/PID/smaps_rollup, in bytes. */
struct procfs_smaps_rollup {
    uint64_t rss_bytes;
    uint64_t pss_bytes;
};

/* Parse the text of /proc/PID/smaps_rollup. Rss and Pss are required; the
 * rest is ignored, and not read past them (this runs for every process of
 * every child at every sample). Returns 0, -ENODATA for an empty buffer (a
 * kernel thread; a zombie's read fails with ESRCH instead), or -EINVAL when
 * the text is malformed or truncated (a field we use must be a whole line:
 * digits, "kB", newline). */
int procfs_parse_smaps_rollup(const char *buf, size_t len, struct procfs_smaps_rollup *out);

/* Parse the text of /proc/PID/limits for the soft "Max open files" limit.
 * "unlimited" gives UINT64_MAX. Returns 0 or -EINVAL. */
int procfs_parse_limits_nofile(const char *buf, size_t len, uint64_t *soft);

/* Read and parse /proc/PID/smaps_rollup. Returns 0, -ESRCH when the process
 * is gone, or another negative errno (-EACCES for a process we may not
 * inspect, the parser's errors). */
int procfs_read_smaps_rollup(int pid, struct procfs_smaps_rollup *out);

/* Number of open file descriptors of pid. On Linux >= 6.2 the size of the
 * /proc/PID/fd directory is that number, one stat(); where it reads 0 the
 * entries are counted. Returns 0, -ESRCH, or another negative errno. */
int procfs_count_fds(int pid, unsigned *out);

/* Count the entries of a directory other than "." and "..", without
 * allocating: the fallback of procfs_count_fds(). Returns 0, -ESRCH when the
 * directory is gone, or another negative errno. */
int procfs_count_dir_entries(const char *path, unsigned *out);

/* Soft RLIMIT_NOFILE of pid, through prlimit(); where that is refused, from
 * /proc/PID/limits. RLIM_INFINITY gives UINT64_MAX (what Prometheus' process
 * collectors report for "unlimited"; Linux caps RLIMIT_NOFILE at
 * fs.nr_open, so it does not happen in practice). Returns 0, -ESRCH, or
 * another negative errno. */
int procfs_max_fds(int pid, uint64_t *out);

/* The last field of /proc/loadavg: the pid (or thread id) the kernel handed
 * out most recently. While it stays the same, no process was created. */
int procfs_parse_loadavg_last_pid(const char *buf, size_t len, int *last_pid);
int procfs_last_pid(int *last_pid);

#endif
