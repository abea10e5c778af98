/* Control datagrams (ctl.h). */
#include "ctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "net.h"

int ctl_open(const char *path)
{
    /* SO_PASSCRED is set before bind (net_listen_unix). */
    return net_listen_unix(path, SOCK_DGRAM, 0600, 0);
}

int ctl_recv(int fd, char *line, size_t size, pid_t *pid)
{
    union {
        char buf[CMSG_SPACE(sizeof(struct ucred))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = { line, size - 1 };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                          .msg_controllen = sizeof(ctl.buf) };
    ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    if (msg.msg_flags & MSG_TRUNC)
        return -EMSGSIZE;
    line[n] = '\0';
    *pid = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
            struct ucred cred;
            memcpy(&cred, CMSG_DATA(c), sizeof(cred));
            *pid = cred.pid;
        }
    }
    return (int)n;
}

int ctl_send(int fd, const char *path, const char *line)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    size_t len = strlen(line);
    if (sendto(fd, line, len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa, sizeof(sa)) != (ssize_t)len)
        return -errno;
    return 0;
}

int ctl_parse(const char *line, const char *verb, unsigned *n)
{
    size_t vlen = strlen(verb);
    if (strncmp(line, verb, vlen) != 0 || line[vlen] != ' ')
        return -EINVAL;
    const char *p = line + vlen + 1;
    unsigned long long v = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        v = v * 10 + (unsigned)(*p - '0');
        if (v > UINT32_MAX)
            return -EINVAL;
    }
    if (!digits || (*p && strcmp(p, "\n") != 0))
        return -EINVAL;
    *n = (unsigned)v;
    return 0;
}

/* ---- health (probe S T, alive S B, stalled S) ------------------------- */

/* A decimal of at most 2^32 - 1 at *p, which is moved past it. */
static int ctl_number(const char **p, unsigned *n)
{
    unsigned long long v = 0;
    int digits = 0;
    for (; **p >= '0' && **p <= '9'; (*p)++, digits++) {
        v = v * 10 + (unsigned)(**p - '0');
        if (v > UINT32_MAX)
            return -EINVAL;
    }
    if (!digits)
        return -EINVAL;
    *n = (unsigned)v;
    return 0;
}

static int ctl_line_end(const char *p)
{
    return !*p || strcmp(p, "\n") == 0;
}

int ctl_probe_format(char *line, size_t size, unsigned seq, unsigned silent_ms)
{
    int n = snprintf(line, size, "probe %u %u\n", seq, silent_ms);
    return n < 0 || (size_t)n >= size ? -EINVAL : 0;
}

int ctl_probe_parse(const char *line, unsigned *seq, unsigned *silent_ms)
{
    if (strncmp(line, "probe ", 6) != 0)
        return -EINVAL;
    const char *p = line + 6;
    unsigned s, t;
    if (ctl_number(&p, &s) < 0 || *p++ != ' ' || ctl_number(&p, &t) < 0 || !ctl_line_end(p))
        return -EINVAL;
    *seq = s;
    *silent_ms = t;
    return 0;
}

static int ctl_browser_letter(char c)
{
    return c == CTL_BROWSER_HEARD || c == CTL_BROWSER_SILENT || c == CTL_BROWSER_UNKNOWN;
}

int ctl_health_format(char *line, size_t size, const struct ctl_health *h)
{
    if (h->stalled) {
        int n = snprintf(line, size, "stalled %u\n", h->seq);
        return n < 0 || (size_t)n >= size ? -EINVAL : 0;
    }
    if (h->nbrowsers == 0 || h->nbrowsers > CTL_BROWSERS_MAX)
        return -EINVAL;
    for (unsigned i = 0; i < h->nbrowsers; i++)
        if (!ctl_browser_letter(h->browsers[i]))
            return -EINVAL;
    int n = snprintf(line, size, "alive %u %.*s\n", h->seq, (int)h->nbrowsers, h->browsers);
    return n < 0 || (size_t)n >= size ? -EINVAL : 0;
}

int ctl_health_parse(const char *line, struct ctl_health *h)
{
    struct ctl_health out = { 0 };
    const char *p;
    if (strncmp(line, "stalled ", 8) == 0) {
        p = line + 8;
        if (ctl_number(&p, &out.seq) < 0 || !ctl_line_end(p))
            return -EINVAL;
        out.stalled = 1;
        *h = out;
        return 0;
    }
    if (strncmp(line, "alive ", 6) != 0)
        return -EINVAL;
    p = line + 6;
    if (ctl_number(&p, &out.seq) < 0 || *p++ != ' ')
        return -EINVAL;
    while (ctl_browser_letter(*p)) {
        if (out.nbrowsers == CTL_BROWSERS_MAX)
            return -EINVAL;
        out.browsers[out.nbrowsers++] = *p++;
    }
    if (!out.nbrowsers || !ctl_line_end(p))
        return -EINVAL;
    *h = out;
    return 0;
}
