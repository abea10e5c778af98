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
