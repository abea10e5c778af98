/* Admission by memory: before a render is started, is there memory for it?
 * "Available" is the smaller of the host's MemAvailable (/proc/meminfo) and
 * the headroom (memory.max - memory.current) of the service's cgroup and of
 * each cgroup above it (cgroup v2; none when unlimited or not mounted).
 * Reads are cached for a short while: a burst of requests costs one read. */
#ifndef RV_ADMISSION_H
#define RV_ADMISSION_H

#include <stddef.h>
#include <stdint.h>

#define ADMISSION_CACHE_NS (100 * 1000 * 1000) /* 100 ms */

struct admission {
    uint64_t need;        /* bytes a render needs; 0: never refuse */
    char *cgroup_dir;     /* /sys/fs/cgroup/<our cgroup>, or NULL */
    int64_t read_ns;      /* when available was last read; 0: never */
    uint64_t available;   /* bytes, UINT64_MAX when nothing could be read */
};

/* need in bytes. Finds the cgroup through /proc/self/cgroup. */
void admission_init(struct admission *a, uint64_t need);
void admission_fini(struct admission *a);
/* 1 when a render may start now, 0 when it would not fit; *available is
 * what was seen (UINT64_MAX: unknown, which admits). */
int admission_check(struct admission *a, int64_t now_ns, uint64_t *available);

/* Pure parsers, for tests: MemAvailable of a /proc/meminfo text in bytes;
 * a cgroup v2 memory.max ("max" is UINT64_MAX) or memory.current text; the
 * v2 path ("0::/a/b") of a /proc/self/cgroup text. 0 or -EINVAL. */
int admission_parse_meminfo(const char *text, uint64_t *bytes);
int admission_parse_cgroup_value(const char *text, uint64_t *bytes);
int admission_parse_cgroup_path(const char *text, char *path, size_t size);

#endif
