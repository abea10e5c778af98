/* The memory budget: how much more the service may take now, and which limit
 * says so (docs/design.md, "Admission by memory").
 *
 * Three limits, the least of which binds:
 * - cgroup: for the service's memory cgroup and each one above it, up to
 *   the root of the mount, its limit minus its working set. Version 2:
 *   memory.max, or memory.high where that is lower (the kernel throttles
 *   and reclaims hard past it), and memory.current; version 1:
 *   memory.limit_in_bytes and memory.usage_in_bytes. The working set is the
 *   usage less the inactive file cache of memory.stat, which the kernel
 *   gives back before it kills anything.
 * - host: MemAvailable of /proc/meminfo.
 * - config: [renderer] memory_budget minus what the service uses.
 * What the service uses ("used") is its own cgroup's working set when it is
 * in a cgroup of its own (not the root of the hierarchy), else the sum of
 * its children's PSS that the supervisor sends (memory_set_tree). */
#ifndef RV_MEMORY_H
#define RV_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include "names.h"

#define MEMORY_UNLIMITED UINT64_MAX
#define MEMORY_LEVELS_MAX 16

/* ---- the arithmetic (pure) ------------------------------------------------ */

struct memory_level {
    uint64_t limit; /* MEMORY_UNLIMITED: none */
    uint64_t used;  /* working set */
};

struct memory_inputs {
    struct memory_level levels[MEMORY_LEVELS_MAX]; /* ours first, then upwards */
    unsigned nlevels;
    uint64_t host_available; /* MEMORY_UNLIMITED: unknown */
    uint64_t config_budget;  /* 0: none */
    uint64_t used;           /* the service's */
};

struct memory_budget {
    uint64_t used;      /* what the service uses */
    uint64_t available; /* what it may still take; MEMORY_UNLIMITED: no limit known */
    uint64_t budget;    /* used + available (MEMORY_UNLIMITED when that is) */
    enum names_bound bound;
};

void memory_compute(const struct memory_inputs *in, struct memory_budget *out);

/* ---- the files (pure parsers, for tests) ------------------------------------ */

/* A limit or usage file's text: a number, or "max" (v2) or a v1 figure of
 * 2^62 or more ("no limit": v1 writes its page counter maximum), both
 * MEMORY_UNLIMITED. 0 or -EINVAL. */
int memory_parse_value(const char *text, uint64_t *bytes);
/* The value of "key N" in a memory.stat or "Key: N kB" in /proc/meminfo
 * (scaled to bytes): 0, or -ENOENT when key is absent, -EINVAL when its
 * value is not a number. */
int memory_parse_stat(const char *text, const char *key, uint64_t *value);
int memory_parse_meminfo(const char *text, uint64_t *available);
/* /proc/self/cgroup: the v2 path ("0::/a/b") and the path in the v1
 * hierarchy whose controllers include memory ("4:memory:/a"). Each "" when
 * absent. 0, or -EINVAL for a path that does not fit or climbs (".."). */
int memory_parse_self_cgroup(const char *text, char *v2, char *v1, size_t size);
/* /proc/self/mountinfo: where the cgroup2 hierarchy and the v1 hierarchy
 * with the memory controller are mounted, and the path within the
 * hierarchy each mount shows as its root ("/" but for a container's
 * bind mount). Each "" when absent. Mount points with escapes (\040) are
 * taken as they are written: they do not match, and the level is unread. */
struct memory_mounts {
    char v2[256], v2_root[256];
    char v1[256], v1_root[256];
};
void memory_parse_mountinfo(const char *text, struct memory_mounts *out);
/* The directory of cgroup path within a hierarchy mounted at mount showing
 * root: mount + (path less root). NULL when path is not under root. */
char *memory_cgroup_dir(const char *mount, const char *root, const char *path);

/* ---- reading them ----------------------------------------------------------- */

struct memory {
    char *dir;      /* our cgroup's directory, or NULL: no cgroup found */
    size_t top_len; /* the mount point's length in dir: the walk stops there */
    int version;    /* 1 or 2; 0 without a cgroup */
    int own;        /* dir is not the hierarchy's root: its usage is ours */
    uint64_t config_budget;
    uint64_t tree_used; /* from the supervisor; 0: none yet */
    char *proc;         /* "/proc" (tests point it elsewhere) */
};

/* Finds the cgroup through proc/self/cgroup and proc/self/mountinfo: v2
 * when it has a memory controller for us, else v1's memory hierarchy. */
void memory_init(struct memory *m, uint64_t config_budget, const char *proc);
void memory_fini(struct memory *m);
void memory_set_tree(struct memory *m, uint64_t bytes);
/* Reads every file now (about 20 small reads). */
void memory_read(struct memory *m, struct memory_budget *out);
/* "cgroup v2 /sys/fs/cgroup/x", "cgroup v1 …" or "no cgroup", for the log. */
const char *memory_describe(const struct memory *m, char *buf, size_t size);

#endif
