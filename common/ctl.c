/* Control datagrams (ctl.h). */
#include "ctl.h"

#include <errno.h>
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

/* Where a datagram to path goes: the one place that addresses the other
 * side. The socket file is opened without following a link
 * (net_unix_peer_open) and sa names that open file, so a link the other
 * side's user puts at path cannot send a root supervisor's line elsewhere.
 * Returns that fd, which the caller closes once the datagram is sent, or
 * -errno (-ELOOP, -ENOTSOCK, -EPERM: refused; -ENOENT: nobody there). */
static int ctl_address(const char *path, struct sockaddr_un *sa)
{
    int dest = net_unix_peer_open(path);
    if (dest >= 0)
        net_unix_peer_addr(dest, sa);
    return dest;
}

int ctl_send(int fd, const char *path, const char *line)
{
    struct sockaddr_un sa;
    int dest = ctl_address(path, &sa);
    if (dest < 0)
        return dest;
    size_t len = strlen(line);
    ssize_t n = sendto(fd, line, len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa, sizeof(sa));
    int err = errno;
    close(dest);
    return n == (ssize_t)len ? 0 : -err;
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
