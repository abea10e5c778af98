/* The /proc files the sampler reads without libproc2, for the children's
 * processes only: smaps_rollup for PSS (libproc2's PIDS_SMAP_PSS would read it
 * for every process on the host, and it is the dearest file in /proc), the
 * fd directory and the NOFILE limit. Parsers are pure so fixtures can test
 * them; readers map a vanished process to -ESRCH. */
#include "procfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* smaps_rollup is about 700 bytes today; room for fields kernels may add. */
#define PROCFS_SMAPS_BUF 4096
/* /proc/PID/limits is about 1.4 KiB. */
#define PROCFS_LIMITS_BUF 4096

/* The fields we take, all required. */
struct procfs_kb_field {
    const char *name; /* with its colon */
    size_t len;
    size_t offset; /* of the uint64_t in struct procfs_smaps_rollup */
};

#define PROCFS_FIELD(name, member)                                                              \
    { name, sizeof(name) - 1, offsetof(struct procfs_smaps_rollup, member) }

static const struct procfs_kb_field procfs_rollup_fields[] = {
    PROCFS_FIELD("Rss:", rss_bytes),
    PROCFS_FIELD("Pss:", pss_bytes),
};
#define PROCFS_NFIELDS (sizeof(procfs_rollup_fields) / sizeof(procfs_rollup_fields[0]))
#define PROCFS_ALL_FIELDS ((1u << PROCFS_NFIELDS) - 1)

static int procfs_is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Parse "   1234 kB\n" starting at p (just past the field name), up to end.
 * The newline is required: a value that runs into the end of the buffer may
 * have been cut, and a cut number is a wrong number. */
static int procfs_parse_kb_value(const char *p, const char *end, uint64_t *bytes)
{
    uint64_t kb = 0;
    int digits = 0;

    while (p < end && procfs_is_blank(*p))
        p++;
    while (p < end && *p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p - '0');
        if (kb > (UINT64_MAX / 1024 - d) / 10)
            return -EINVAL;
        kb = kb * 10 + d;
        digits++;
        p++;
    }
    if (!digits)
        return -EINVAL;
    while (p < end && procfs_is_blank(*p))
        p++;
    if (end - p < 3 || memcmp(p, "kB\n", 3) != 0)
        return -EINVAL;
    *bytes = kb * 1024;
    return 0;
}

int procfs_parse_smaps_rollup(const char *buf, size_t len, struct procfs_smaps_rollup *out)
{
    const char *p = buf, *end = buf + len;
    unsigned seen = 0;

    if (len == 0)
        return -ENODATA;
    memset(out, 0, sizeof(*out));
    /* This runs for every process of every child at every sample: compare
     * a first letter before a name, and stop once every field is in (Rss
     * and Pss are the first two). */
    while (p < end && seen != PROCFS_ALL_FIELDS) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol + 1 : end;
        for (size_t f = 0; f < PROCFS_NFIELDS; f++) {
            const struct procfs_kb_field *fld = &procfs_rollup_fields[f];
            if (*p != fld->name[0] || (size_t)(line_end - p) < fld->len ||
                memcmp(p, fld->name, fld->len) != 0)
                continue;
            if (seen & (1u << f))
                return -EINVAL; /* a field twice: not a rollup we understand */
            uint64_t bytes;
            int r = procfs_parse_kb_value(p + fld->len, line_end, &bytes);
            if (r < 0)
                return r;
            memcpy((char *)out + fld->offset, &bytes, sizeof(bytes));
            seen |= 1u << f;
            break;
        }
        p = line_end;
    }
    return seen == PROCFS_ALL_FIELDS ? 0 : -EINVAL;
}

int procfs_parse_limits_nofile(const char *buf, size_t len, uint64_t *soft)
{
    static const char name[] = "Max open files";
    const char *p = buf, *end = buf + len;

    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        if ((size_t)(line_end - p) > sizeof(name) - 1 && memcmp(p, name, sizeof(name) - 1) == 0 &&
            procfs_is_blank(p[sizeof(name) - 1])) {
            const char *q = p + sizeof(name) - 1;
            while (q < line_end && procfs_is_blank(*q))
                q++;
            if ((size_t)(line_end - q) >= 9 && memcmp(q, "unlimited", 9) == 0 &&
                (q + 9 == line_end || procfs_is_blank(q[9]))) {
                *soft = UINT64_MAX;
                return 0;
            }
            uint64_t v = 0;
            int digits = 0;
            for (; q < line_end && *q >= '0' && *q <= '9'; q++, digits++) {
                unsigned d = (unsigned)(*q - '0');
                if (v > (UINT64_MAX - d) / 10)
                    return -EINVAL;
                v = v * 10 + d;
            }
            /* The soft limit is followed by the hard one: a number ending the
             * buffer may have been cut. */
            if (!digits || q == line_end || !procfs_is_blank(*q))
                return -EINVAL;
            *soft = v;
            return 0;
        }
        p = line_end + 1;
    }
    return -EINVAL;
}

/* "/proc/<pid>/<leaf>" into buf (64 bytes is plenty). Written by hand: it is
 * built three times per process per sample, and snprintf costs more than the
 * parse. */
static void procfs_path(char *buf, size_t size, int pid, const char *leaf)
{
    char digits[12];
    size_t nd = 0, n = 0;
    unsigned v = pid > 0 ? (unsigned)pid : 0;
    do {
        digits[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && nd < sizeof(digits));
    size_t leaf_len = strlen(leaf);
    if (6 + nd + 1 + leaf_len + 1 > size) {
        buf[0] = '\0'; /* cannot happen with the callers' sizes; fail the open */
        return;
    }
    memcpy(buf, "/proc/", 6);
    n = 6;
    while (nd)
        buf[n++] = digits[--nd];
    buf[n++] = '/';
    memcpy(buf + n, leaf, leaf_len + 1);
}

/* A vanished process shows as ENOENT on open and ESRCH on read. */
static int procfs_gone(int err)
{
    return err == ENOENT || err == ESRCH ? -ESRCH : -err;
}

/* Read a whole small /proc file into buf; *len is what was read. A file
 * larger than buf is cut, which the parsers notice where it matters. */
static int procfs_read_small(const char *path, char *buf, size_t size, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return procfs_gone(errno);
    size_t got = 0;
    int r = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            r = procfs_gone(errno);
            break;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    *len = got;
    return r;
}

int procfs_read_smaps_rollup(int pid, struct procfs_smaps_rollup *out)
{
    char path[64], buf[PROCFS_SMAPS_BUF];
    size_t len;

    procfs_path(path, sizeof(path), pid, "smaps_rollup");
    int r = procfs_read_small(path, buf, sizeof(buf), &len);
    if (r < 0)
        return r;
    return procfs_parse_smaps_rollup(buf, len, out);
}

/* getdents64 into a stack buffer rather than opendir(): no allocation behind
 * the allocator wrapper's back, on a path taken once per process. */
int procfs_count_dir_entries(const char *path, unsigned *out)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return procfs_gone(errno);
    union {
        char bytes[4096];
        struct dirent64 align;
    } buf;
    unsigned count = 0;
    int r = 0;
    for (;;) {
        ssize_t n = getdents64(fd, buf.bytes, sizeof(buf.bytes));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            r = procfs_gone(errno);
            break;
        }
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            const struct dirent64 *d = (const struct dirent64 *)(buf.bytes + off);
            if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0)
                count++;
            off += d->d_reclen;
        }
    }
    close(fd);
    if (r == 0)
        *out = count;
    return r;
}

int procfs_count_fds(int pid, unsigned *out)
{
    char path[64];
    struct stat st;

    procfs_path(path, sizeof(path), pid, "fd");
    if (stat(path, &st) < 0)
        return procfs_gone(errno);
    if (st.st_size > 0 && st.st_size <= UINT_MAX) {
        *out = (unsigned)st.st_size;
        return 0;
    }
    /* Before 6.2 the size is 0; 0 is also right for a process without fds,
     * which the count below confirms cheaply. */
    return procfs_count_dir_entries(path, out);
}

int procfs_max_fds(int pid, uint64_t *out)
{
    struct rlimit rl;

    if (prlimit(pid, RLIMIT_NOFILE, NULL, &rl) == 0) {
        *out = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
        return 0;
    }
    if (errno != EPERM)
        return procfs_gone(errno);
    /* prlimit() wants matching credentials or CAP_SYS_RESOURCE; the limits
     * file is world-readable. */
    char path[64], buf[PROCFS_LIMITS_BUF];
    size_t len;
    procfs_path(path, sizeof(path), pid, "limits");
    int r = procfs_read_small(path, buf, sizeof(buf), &len);
    if (r < 0)
        return r;
    return procfs_parse_limits_nofile(buf, len, out);
}

int procfs_parse_loadavg_last_pid(const char *buf, size_t len, int *last_pid)
{
    /* "0.00 0.01 0.05 1/123 4567\n": the number after the last space. */
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
        len--;
    size_t start = len;
    while (start > 0 && buf[start - 1] >= '0' && buf[start - 1] <= '9')
        start--;
    if (start == len || len - start > 9 || start == 0 || buf[start - 1] != ' ')
        return -EINVAL;
    int v = 0;
    for (size_t i = start; i < len; i++)
        v = v * 10 + (buf[i] - '0');
    *last_pid = v;
    return 0;
}

int procfs_last_pid(int *last_pid)
{
    char buf[128];
    size_t len;
    int r = procfs_read_small("/proc/loadavg", buf, sizeof(buf), &len);
    if (r < 0)
        return r;
    return procfs_parse_loadavg_last_pid(buf, len, last_pid);
}
