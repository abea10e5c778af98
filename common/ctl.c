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
    return ctl_open_as(path, (uid_t)-1, (gid_t)-1);
}

int ctl_open_as(const char *path, uid_t uid, gid_t gid)
{
    /* SO_PASSCRED is set before bind (net_listen_unix). */
    return net_listen_unix_as(path, SOCK_DGRAM, 0600, 0, uid, gid);
}

static void ctl_close_all(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

int ctl_recv_fds(int fd, char *line, size_t size, pid_t *pid, int *fds, size_t max, size_t *nfds)
{
    union {
        char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * CTL_FDS_MAX)];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = { line, size - 1 };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                          .msg_controllen = sizeof(ctl.buf) };
    *nfds = 0;
    ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    /* Every fd that arrived is ours to close, whatever becomes of the line
     * (the kernel closed those that did not fit: MSG_CTRUNC). */
    int got[CTL_FDS_MAX];
    size_t ngot = 0;
    *pid = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET)
            continue;
        if (c->cmsg_type == SCM_CREDENTIALS) {
            struct ucred cred;
            memcpy(&cred, CMSG_DATA(c), sizeof(cred));
            *pid = cred.pid;
        } else if (c->cmsg_type == SCM_RIGHTS) {
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                int one;
                memcpy(&one, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                if (ngot < CTL_FDS_MAX)
                    got[ngot++] = one;
                else
                    close(one);
            }
        }
    }
    if (msg.msg_flags & MSG_TRUNC) {
        ctl_close_all(got, ngot);
        return -EMSGSIZE;
    }
    for (size_t i = 0; i < ngot; i++) {
        if (i < max)
            fds[(*nfds)++] = got[i];
        else
            close(got[i]);
    }
    line[n] = '\0';
    return (int)n;
}

int ctl_recv(int fd, char *line, size_t size, pid_t *pid)
{
    size_t nfds;
    return ctl_recv_fds(fd, line, size, pid, NULL, 0, &nfds);
}

/* Where a datagram to path goes: the one place that addresses the other
 * side, for lines with fds and without. The socket file is opened without
 * following a link (net_unix_peer_open) and sa names that open file, so a
 * link the other side's user puts at path cannot send a root supervisor's
 * line elsewhere. Returns that fd, which the caller closes once the
 * datagram is sent, or -errno (-ELOOP, -ENOTSOCK, -EPERM: refused;
 * -ENOENT: nobody there). */
static int ctl_address(const char *path, struct sockaddr_un *sa)
{
    int dest = net_unix_peer_open(path);
    if (dest >= 0)
        net_unix_peer_addr(dest, sa);
    return dest;
}

int ctl_send_fds(int fd, const char *path, const char *line, const int *fds, size_t nfds)
{
    if (nfds > CTL_FDS_MAX)
        return -EINVAL;
    struct sockaddr_un sa;
    int dest = ctl_address(path, &sa);
    if (dest < 0)
        return dest;
    size_t len = strlen(line);
    struct iovec iov = { (void *)line, len };
    union {
        char buf[CMSG_SPACE(sizeof(int) * CTL_FDS_MAX)];
        struct cmsghdr align;
    } ctl;
    struct msghdr msg = { .msg_name = &sa, .msg_namelen = sizeof(sa), .msg_iov = &iov, .msg_iovlen = 1 };
    if (nfds) {
        memset(&ctl, 0, sizeof(ctl));
        msg.msg_control = ctl.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    ssize_t n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    int err = errno;
    close(dest);
    return n == (ssize_t)len ? 0 : -err;
}

int ctl_send(int fd, const char *path, const char *line)
{
    return ctl_send_fds(fd, path, line, NULL, 0);
}

/* One decimal of at most 2^32 - 1 at *p; advances *p past it. */
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

static int ctl_verb(const char *line, const char *verb, const char **p)
{
    size_t vlen = strlen(verb);
    if (strncmp(line, verb, vlen) != 0 || line[vlen] != ' ')
        return -EINVAL;
    *p = line + vlen + 1;
    return 0;
}

static int ctl_end(const char *p)
{
    return *p && strcmp(p, "\n") != 0 ? -EINVAL : 0;
}

int ctl_parse(const char *line, const char *verb, unsigned *n)
{
    const char *p;
    unsigned v;
    if (ctl_verb(line, verb, &p) < 0 || ctl_number(&p, &v) < 0 || ctl_end(p) < 0)
        return -EINVAL;
    *n = v;
    return 0;
}

int ctl_parse2(const char *line, const char *verb, unsigned *a, unsigned *b)
{
    const char *p;
    unsigned va, vb;
    if (ctl_verb(line, verb, &p) < 0 || ctl_number(&p, &va) < 0 || *p++ != ' ' || ctl_number(&p, &vb) < 0 ||
        ctl_end(p) < 0)
        return -EINVAL;
    *a = va;
    *b = vb;
    return 0;
}

/* ---- health (probe S T, alive S B, stalled S) ------------------------- */

int ctl_probe_format(char *line, size_t size, unsigned seq, unsigned silent_ms)
{
    int n = snprintf(line, size, "probe %u %u\n", seq, silent_ms);
    return n < 0 || (size_t)n >= size ? -EINVAL : 0;
}

int ctl_probe_parse(const char *line, unsigned *seq, unsigned *silent_ms)
{
    return ctl_parse2(line, "probe", seq, silent_ms);
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
    if (ctl_parse(line, "stalled", &out.seq) == 0) {
        out.stalled = 1;
        *h = out;
        return 0;
    }
    if (ctl_verb(line, "alive", &p) < 0 || ctl_number(&p, &out.seq) < 0 || *p++ != ' ')
        return -EINVAL;
    while (ctl_browser_letter(*p)) {
        if (out.nbrowsers == CTL_BROWSERS_MAX)
            return -EINVAL;
        out.browsers[out.nbrowsers++] = *p++;
    }
    if (!out.nbrowsers || ctl_end(p) < 0)
        return -EINVAL;
    *h = out;
    return 0;
}
