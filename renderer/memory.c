/* The memory budget (memory.h): cgroup v1 and v2, the host, the config. */
#include "memory.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xalloc.h"

/* v1 writes "no limit" as its page counter's maximum in bytes (just under
 * 2^63, rounded down to a page); anything this large is no limit. */
#define MEMORY_V1_UNLIMITED (1ull << 62)

/* ---- the arithmetic ---------------------------------------------------------- */

void memory_compute(const struct memory_inputs *in, struct memory_budget *out)
{
    uint64_t room = MEMORY_UNLIMITED;
    enum names_bound bound = NAMES_BOUND_HOST;
    for (unsigned i = 0; i < in->nlevels; i++) {
        const struct memory_level *l = &in->levels[i];
        if (l->limit == MEMORY_UNLIMITED)
            continue;
        uint64_t r = l->used < l->limit ? l->limit - l->used : 0;
        if (r < room) {
            room = r;
            bound = NAMES_BOUND_CGROUP;
        }
    }
    if (in->host_available < room) {
        room = in->host_available;
        bound = NAMES_BOUND_HOST;
    }
    if (in->config_budget) {
        uint64_t r = in->used < in->config_budget ? in->config_budget - in->used : 0;
        if (r < room) {
            room = r;
            bound = NAMES_BOUND_CONFIG;
        }
    }
    out->used = in->used;
    out->available = room;
    out->budget = room == MEMORY_UNLIMITED || room > MEMORY_UNLIMITED - in->used ? MEMORY_UNLIMITED : in->used + room;
    out->bound = bound;
}

/* ---- parsing ------------------------------------------------------------------- */

int memory_parse_value(const char *text, uint64_t *bytes)
{
    if (strcmp(text, "max\n") == 0 || strcmp(text, "max") == 0) {
        *bytes = MEMORY_UNLIMITED;
        return 0;
    }
    if (*text < '0' || *text > '9')
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || (*end != '\0' && strcmp(end, "\n") != 0))
        return -EINVAL;
    *bytes = v >= MEMORY_V1_UNLIMITED ? MEMORY_UNLIMITED : v;
    return 0;
}

/* The number after key at the start of a line, followed by sep. */
static int memory_parse_keyed(const char *text, const char *key, const char *sep, uint64_t *value)
{
    size_t klen = strlen(key), slen = strlen(sep);
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, key, klen) != 0 || strncmp(line + klen, sep, slen) != 0)
            continue;
        const char *p = line + klen + slen;
        while (*p == ' ')
            p++;
        if (*p < '0' || *p > '9')
            return -EINVAL;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno)
            return -EINVAL;
        *value = v;
        return (int)(end - line); /* > 0: where the number ended */
    }
    return -ENOENT;
}

int memory_parse_stat(const char *text, const char *key, uint64_t *value)
{
    int rc = memory_parse_keyed(text, key, " ", value);
    return rc < 0 ? rc : 0;
}

int memory_parse_meminfo(const char *text, uint64_t *available)
{
    uint64_t kib;
    int rc = memory_parse_keyed(text, "MemAvailable", ":", &kib);
    if (rc < 0)
        return -EINVAL;
    const char *unit = strstr(text, "MemAvailable:") + rc;
    while (*unit == ' ')
        unit++;
    if (strncmp(unit, "kB", 2) != 0 || kib > UINT64_MAX / 1024)
        return -EINVAL;
    *available = kib * 1024;
    return 0;
}

/* Copy the path field of a /proc/self/cgroup line. */
static int memory_take_path(const char *p, char *out, size_t size)
{
    size_t n = strcspn(p, "\n");
    if (n == 0 || n >= size || *p != '/')
        return -EINVAL;
    for (const char *s = p; s < p + n; s = strchr(s + 1, '/') ? strchr(s + 1, '/') : p + n)
        if (strncmp(s, "/..", 3) == 0 && (s + 3 == p + n || s[3] == '/'))
            return -EINVAL;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

/* Whether the comma-separated list [p, p + n) has memory. */
static int memory_has_controller(const char *p, size_t n)
{
    for (const char *end = p + n; p < end;) {
        size_t k = strcspn(p, ",:");
        if (k == 6 && strncmp(p, "memory", 6) == 0)
            return 1;
        p += k;
        if (*p != ',')
            break;
        p++;
    }
    return 0;
}

int memory_parse_self_cgroup(const char *text, char *v2, char *v1, size_t size)
{
    v2[0] = v1[0] = '\0';
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        const char *c1 = strchr(line, ':');
        const char *nl = strchr(line, '\n');
        if (!c1 || (nl && c1 > nl))
            continue;
        const char *c2 = strchr(c1 + 1, ':');
        if (!c2 || (nl && c2 > nl))
            continue;
        if (strncmp(line, "0::", 3) == 0) {
            if (memory_take_path(c2 + 1, v2, size) < 0)
                return -EINVAL;
        } else if (memory_has_controller(c1 + 1, (size_t)(c2 - c1 - 1))) {
            if (memory_take_path(c2 + 1, v1, size) < 0)
                return -EINVAL;
        }
    }
    return 0;
}

/* Field i (0-based, space-separated) of a line, into out. */
static int memory_field(const char *line, unsigned i, char *out, size_t size)
{
    const char *p = line;
    for (; i > 0; i--) {
        p = strchr(p, ' ');
        if (!p)
            return -EINVAL;
        p++;
    }
    size_t n = strcspn(p, " \n");
    if (n >= size)
        return -EINVAL;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

/* mountinfo: "id parent major:minor root mount-point options [optional...]
 * - fstype source super-options". */
void memory_parse_mountinfo(const char *text, struct memory_mounts *out)
{
    memset(out, 0, sizeof(*out));
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        const char *nl = strchr(line, '\n');
        const char *dash = strstr(line, " - ");
        if (!dash || (nl && dash > nl))
            continue;
        char fstype[32], super[256], root[256], point[256];
        if (memory_field(dash + 3, 0, fstype, sizeof(fstype)) < 0 || memory_field(line, 3, root, sizeof(root)) < 0 ||
            memory_field(line, 4, point, sizeof(point)) < 0)
            continue;
        if (strcmp(fstype, "cgroup2") == 0 && !out->v2[0]) {
            strcpy(out->v2, point);
            strcpy(out->v2_root, root);
        } else if (strcmp(fstype, "cgroup") == 0 && !out->v1[0] &&
                   memory_field(dash + 3, 2, super, sizeof(super)) == 0 &&
                   memory_has_controller(super, strlen(super))) {
            strcpy(out->v1, point);
            strcpy(out->v1_root, root);
        }
    }
}

char *memory_cgroup_dir(const char *mount, const char *root, const char *path)
{
    size_t rlen = strcmp(root, "/") == 0 ? 0 : strlen(root);
    if (strncmp(path, root, rlen) != 0 || (path[rlen] != '/' && path[rlen] != '\0'))
        return NULL;
    const char *rest = path + rlen;
    if (strcmp(rest, "/") == 0)
        rest = "";
    char *dir = xmalloc(strlen(mount) + strlen(rest) + 1);
    sprintf(dir, "%s%s", mount, rest);
    return dir;
}

/* ---- reading ----------------------------------------------------------------- */

/* A small /proc or /sys file, NUL-terminated: its length or -errno. */
static int memory_read_file(const char *path, char *buf, size_t size)
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
    return (int)n;
}

/* A file of any length (a host's mountinfo can run to hundreds of KiB),
 * NUL-terminated, or NULL. */
static char *memory_read_whole(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t size = 16384, len = 0;
    char *text = xmalloc(size);
    ssize_t n;
    while ((n = read(fd, text + len, size - len - 1)) > 0) {
        len += (size_t)n;
        if (size - len - 1 == 0)
            text = xrealloc(text, size *= 2);
    }
    close(fd);
    if (n < 0) {
        free(text);
        return NULL;
    }
    text[len] = '\0';
    return text;
}

static int memory_read_value(const char *dir, const char *name, uint64_t *v)
{
    char path[4096], text[64];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (memory_read_file(path, text, sizeof(text)) < 0)
        return -ENOENT;
    return memory_parse_value(text, v);
}

/* A level's working set: usage less inactive file cache. */
static int memory_level_used(const struct memory *m, const char *dir, uint64_t *used)
{
    uint64_t usage, inactive = 0;
    if (memory_read_value(dir, m->version == 2 ? "memory.current" : "memory.usage_in_bytes", &usage) < 0)
        return -ENOENT;
    char path[4096], text[8192];
    snprintf(path, sizeof(path), "%s/memory.stat", dir);
    if (memory_read_file(path, text, sizeof(text)) >= 0)
        memory_parse_stat(text, m->version == 2 ? "inactive_file" : "total_inactive_file", &inactive);
    *used = inactive < usage ? usage - inactive : 0;
    return 0;
}

/* own: our cgroup's working set when it has been read already (else NULL). */
static void memory_read_level(const struct memory *m, const char *dir, const uint64_t *own, struct memory_level *l)
{
    l->limit = MEMORY_UNLIMITED;
    l->used = 0;
    uint64_t v;
    if (m->version == 2) {
        if (memory_read_value(dir, "memory.max", &v) == 0)
            l->limit = v;
        if (memory_read_value(dir, "memory.high", &v) == 0 && v < l->limit)
            l->limit = v;
    } else if (memory_read_value(dir, "memory.limit_in_bytes", &v) == 0) {
        l->limit = v;
    }
    if (l->limit == MEMORY_UNLIMITED)
        return;
    if (own)
        l->used = *own;
    else if (memory_level_used(m, dir, &l->used) < 0)
        l->limit = MEMORY_UNLIMITED; /* a limit without its usage tells nothing */
}

void memory_init(struct memory *m, uint64_t config_budget, const char *proc)
{
    memset(m, 0, sizeof(*m));
    m->config_budget = config_budget;
    m->proc = xstrdup(proc);
    char path[512], text[8192], v2[1024], v1[1024];
    struct memory_mounts mounts;
    snprintf(path, sizeof(path), "%s/self/cgroup", proc);
    if (memory_read_file(path, text, sizeof(text)) < 0 || memory_parse_self_cgroup(text, v2, v1, sizeof(v2)) < 0)
        return;
    snprintf(path, sizeof(path), "%s/self/mountinfo", proc);
    char *mi = memory_read_whole(path);
    if (!mi)
        return;
    memory_parse_mountinfo(mi, &mounts);
    free(mi);
    /* v2 only where our cgroup has the memory controller (its parent has it
     * in subtree_control: then memory.current is there). */
    if (v2[0] && mounts.v2[0]) {
        char *dir = memory_cgroup_dir(mounts.v2, mounts.v2_root, v2);
        char probe[4096];
        snprintf(probe, sizeof(probe), "%s/memory.current", dir ? dir : "");
        if (dir && access(probe, R_OK) == 0) {
            m->dir = dir;
            m->version = 2;
            m->top_len = strlen(mounts.v2);
            m->own = 1; /* the real root has no memory.current: this is a cgroup */
            return;
        }
        free(dir);
    }
    if (v1[0] && mounts.v1[0]) {
        m->dir = memory_cgroup_dir(mounts.v1, mounts.v1_root, v1);
        if (m->dir) {
            m->version = 1;
            m->top_len = strlen(mounts.v1);
            m->own = strcmp(v1, "/") != 0;
        }
    }
}

void memory_fini(struct memory *m)
{
    free(m->dir);
    free(m->proc);
    m->dir = m->proc = NULL;
}

void memory_set_tree(struct memory *m, uint64_t bytes)
{
    m->tree_used = bytes;
}

void memory_read(struct memory *m, struct memory_budget *out)
{
    struct memory_inputs in = { .host_available = MEMORY_UNLIMITED, .config_budget = m->config_budget };
    char path[4096], text[8192];
    snprintf(path, sizeof(path), "%s/meminfo", m->proc);
    if (memory_read_file(path, text, sizeof(text)) >= 0)
        memory_parse_meminfo(text, &in.host_available);
    in.used = m->tree_used;
    uint64_t own;
    int have_own = m->own && memory_level_used(m, m->dir, &own) == 0;
    if (have_own)
        in.used = own;
    if (m->dir) {
        size_t len = strlen(m->dir);
        memcpy(path, m->dir, len + 1);
        for (;;) {
            memory_read_level(m, path, in.nlevels == 0 && have_own ? &own : NULL, &in.levels[in.nlevels]);
            in.nlevels++;
            if (len <= m->top_len || in.nlevels == MEMORY_LEVELS_MAX)
                break;
            char *slash = strrchr(path, '/');
            if (!slash || (size_t)(slash - path) < m->top_len)
                break;
            *slash = '\0';
            len = (size_t)(slash - path);
        }
    }
    memory_compute(&in, out);
}

const char *memory_describe(const struct memory *m, char *buf, size_t size)
{
    if (!m->dir)
        snprintf(buf, size, "no memory cgroup");
    else
        snprintf(buf, size, "cgroup v%d %s%s", m->version, m->dir, m->own ? "" : " (the hierarchy's root)");
    return buf;
}
