/* Admission by memory (admission.h). Runs on the HTTP thread only. */
#include "admission.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xalloc.h"

#define ADMISSION_CGROUP_ROOT "/sys/fs/cgroup"

int admission_parse_meminfo(const char *text, uint64_t *bytes)
{
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, "MemAvailable:", 13) != 0)
            continue;
        char *end;
        errno = 0;
        unsigned long long kib = strtoull(line + 13, &end, 10);
        while (*end == ' ')
            end++;
        if (errno || end == line + 13 || strncmp(end, "kB", 2) != 0 || kib > UINT64_MAX / 1024)
            return -EINVAL;
        *bytes = (uint64_t)kib * 1024;
        return 0;
    }
    return -EINVAL;
}

int admission_parse_cgroup_value(const char *text, uint64_t *bytes)
{
    if (strcmp(text, "max\n") == 0 || strcmp(text, "max") == 0) {
        *bytes = UINT64_MAX;
        return 0;
    }
    if (*text < '0' || *text > '9')
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || (*end != '\0' && strcmp(end, "\n") != 0))
        return -EINVAL;
    *bytes = v;
    return 0;
}

int admission_parse_cgroup_path(const char *text, char *path, size_t size)
{
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, "0::/", 4) != 0)
            continue;
        const char *p = line + 3;
        size_t n = strcspn(p, "\n");
        if (n >= size || memmem(p, n, "/..", 3))
            return -EINVAL;
        memcpy(path, p, n);
        path[n] = '\0';
        return 0;
    }
    return -EINVAL;
}

/* A small /proc or /sys file, NUL-terminated. */
static int admission_read(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, size - 1);
    int err = errno;
    close(fd);
    if (n < 0)
        return -err;
    buf[n] = '\0';
    return 0;
}

void admission_init(struct admission *a, uint64_t need)
{
    memset(a, 0, sizeof(*a));
    a->need = need;
    a->available = UINT64_MAX;
    char text[4096], path[1024];
    if (admission_read("/proc/self/cgroup", text, sizeof(text)) == 0 &&
        admission_parse_cgroup_path(text, path, sizeof(path)) == 0) {
        char *dir = xmalloc(sizeof(ADMISSION_CGROUP_ROOT) + strlen(path));
        sprintf(dir, "%s%s", ADMISSION_CGROUP_ROOT, strcmp(path, "/") == 0 ? "" : path);
        a->cgroup_dir = dir;
    }
}

void admission_fini(struct admission *a)
{
    free(a->cgroup_dir);
    a->cgroup_dir = NULL;
}

/* The least headroom of our cgroup and those above it; UINT64_MAX when none
 * of them has a limit (or cgroup v2 is not there). */
static uint64_t admission_cgroup_headroom(const char *dir)
{
    uint64_t least = UINT64_MAX;
    char path[4096], text[64];
    size_t len = strlen(dir);
    if (len >= sizeof(path))
        return least;
    memcpy(path, dir, len + 1);
    while (len > sizeof(ADMISSION_CGROUP_ROOT) - 1) {
        uint64_t max, current;
        snprintf(path + len, sizeof(path) - len, "/memory.max");
        int ok = admission_read(path, text, sizeof(text)) == 0 && admission_parse_cgroup_value(text, &max) == 0;
        snprintf(path + len, sizeof(path) - len, "/memory.current");
        if (ok && max != UINT64_MAX && admission_read(path, text, sizeof(text)) == 0 &&
            admission_parse_cgroup_value(text, &current) == 0) {
            uint64_t room = current < max ? max - current : 0;
            if (room < least)
                least = room;
        }
        path[len] = '\0';
        char *slash = strrchr(path, '/');
        if (!slash)
            break;
        *slash = '\0';
        len = (size_t)(slash - path);
    }
    return least;
}

int admission_check(struct admission *a, int64_t now_ns, uint64_t *available)
{
    if (a->read_ns == 0 || now_ns - a->read_ns >= ADMISSION_CACHE_NS) {
        uint64_t avail = UINT64_MAX, host;
        char text[8192];
        if (admission_read("/proc/meminfo", text, sizeof(text)) == 0 && admission_parse_meminfo(text, &host) == 0)
            avail = host;
        if (a->cgroup_dir) {
            uint64_t room = admission_cgroup_headroom(a->cgroup_dir);
            if (room < avail)
                avail = room;
        }
        a->available = avail;
        a->read_ns = now_ns;
    }
    *available = a->available;
    return a->need == 0 || a->available >= a->need;
}
