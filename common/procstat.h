/* /proc/PID/stat as a struct. A pure parser over a buffer, so tests feed it
 * fixtures; the command name may hold spaces and parentheses, so it ends at
 * the last ')'. Used where libproc2 would be a whole table pass for one
 * process: the guardian's sweep and the exporter's own process figures. */
#ifndef RV_PROCSTAT_H
#define RV_PROCSTAT_H

#include <stddef.h>

struct procstat {
    char state;
    int ppid;
    int pgrp;
    int sid;
    unsigned long long utime_ticks;
    unsigned long long stime_ticks;
    unsigned long long start_ticks; /* after boot */
    unsigned long long vsize_bytes;
    long long rss_pages;
};

/* 0, or -EINVAL when buf is not a stat line (truncated, garbage). */
int procstat_parse(const char *buf, size_t len, struct procstat *out);
/* Read and parse /proc/PID/stat (pid 0: /proc/self/stat). 0, -ESRCH when the
 * process is gone, -EINVAL, or another -errno. */
int procstat_read(int pid, struct procstat *out);

#endif
