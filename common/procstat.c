/* The /proc/PID/stat parser of procstat.h. Fields are counted from the state,
 * which follows the command name's closing parenthesis. */
#include "procstat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One field from p: its text, how far it goes; 0 at the end of buf. */
static size_t procstat_field(const char **p, const char *end, const char **start)
{
    while (*p < end && **p == ' ')
        (*p)++;
    *start = *p;
    while (*p < end && **p != ' ' && **p != '\n')
        (*p)++;
    return (size_t)(*p - *start);
}

static int procstat_num(const char *s, size_t n, long long *out, int allow_negative)
{
    char tmp[32];
    if (n == 0 || n >= sizeof(tmp))
        return -EINVAL;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (!allow_negative && tmp[0] == '-')
        return -EINVAL;
    char *endp;
    errno = 0;
    long long v = strtoll(tmp, &endp, 10);
    if (errno || *endp)
        return -EINVAL;
    *out = v;
    return 0;
}

int procstat_parse(const char *buf, size_t len, struct procstat *out)
{
    const char *close = NULL;
    for (size_t i = len; i > 0; i--)
        if (buf[i - 1] == ')') {
            close = buf + i - 1;
            break;
        }
    if (!close || !memchr(buf, '(', (size_t)(close - buf)))
        return -EINVAL;

    /* Field numbers as proc(5) gives them: 3 is the state. */
    const char *p = close + 1, *end = buf + len, *f;
    memset(out, 0, sizeof(*out));
    for (int field = 3; field <= 24; field++) {
        size_t n = procstat_field(&p, end, &f);
        if (n == 0)
            return -EINVAL;
        long long v = 0;
        if (field == 3) {
            if (n != 1)
                return -EINVAL;
            out->state = f[0];
            continue;
        }
        if (procstat_num(f, n, &v, 1) < 0)
            return -EINVAL;
        switch (field) {
        case 4: out->ppid = (int)v; break;
        case 5: out->pgrp = (int)v; break;
        case 6: out->sid = (int)v; break;
        case 14: out->utime_ticks = (unsigned long long)v; break;
        case 15: out->stime_ticks = (unsigned long long)v; break;
        case 22: out->start_ticks = (unsigned long long)v; break;
        case 23: out->vsize_bytes = (unsigned long long)v; break;
        case 24: out->rss_pages = v; break;
        default: break;
        }
    }
    return 0;
}

int procstat_read(int pid, struct procstat *out)
{
    char path[48], buf[1024];
    if (pid > 0)
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    else
        snprintf(path, sizeof(path), "/proc/self/stat");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -ESRCH : -errno;
    ssize_t n = read(fd, buf, sizeof(buf));
    int err = errno;
    close(fd);
    if (n < 0)
        return err == ESRCH ? -ESRCH : -err;
    return procstat_parse(buf, (size_t)n, out);
}
