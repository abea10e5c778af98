/* Health probes (probe.h). */
#include "probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int probe_addr_from_listen(const char *listen, struct sockaddr_storage *addr, socklen_t *len)
{
    char host[INET6_ADDRSTRLEN];
    const char *port;
    memset(addr, 0, sizeof(*addr));
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        size_t n = close ? (size_t)(close - listen - 1) : 0;
        if (!close || close[1] != ':' || n == 0 || n >= sizeof(host))
            return -EINVAL;
        memcpy(host, listen + 1, n);
        host[n] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(listen, ':');
        size_t n = colon ? (size_t)(colon - listen) : 0;
        if (!colon || n == 0 || n >= sizeof(host))
            return -EINVAL;
        memcpy(host, listen, n);
        host[n] = '\0';
        port = colon + 1;
    }
    char *end;
    unsigned long p = strtoul(port, &end, 10);
    if (*port < '0' || *port > '9' || *end || p == 0 || p > 65535)
        return -EINVAL;

    struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
    if (strcmp(host, "localhost") == 0 || strcmp(host, "0.0.0.0") == 0) {
        v4->sin_family = AF_INET;
        v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        if (IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr))
            v6->sin6_addr = in6addr_loopback;
    } else {
        return -EINVAL;
    }
    if (v4->sin_family == AF_INET) {
        v4->sin_port = htons((uint16_t)p);
        *len = sizeof(*v4);
    } else {
        v6->sin6_port = htons((uint16_t)p);
        *len = sizeof(*v6);
    }
    return 0;
}

int probe_status(const char *buf, size_t len)
{
    static const char head[] = "HTTP/1.";
    size_t n = len < sizeof(head) - 1 ? len : sizeof(head) - 1;
    if (memcmp(buf, head, n) != 0)
        return -EBADMSG;
    /* "HTTP/1.x NNN" and the end of the line, or at least a space after it */
    if (len < 13)
        return -EAGAIN;
    if ((buf[7] != '0' && buf[7] != '1') || buf[8] != ' ')
        return -EBADMSG;
    int code = 0;
    for (int i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -EBADMSG;
        code = code * 10 + (buf[i] - '0');
    }
    if (code < 100 || code > 599 || (buf[12] != ' ' && buf[12] != '\r' && buf[12] != '\n'))
        return -EBADMSG;
    return code;
}

void probe_init(struct probe *p)
{
    memset(p, 0, sizeof(*p));
    p->fd = -1;
}

int probe_start(struct probe *p)
{
    probe_close(p);
    int fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&p->addr, p->addrlen) < 0 && errno != EINPROGRESS) {
        int err = errno;
        close(fd);
        return -err;
    }
    p->fd = fd;
    p->sent = 0;
    p->rxlen = 0;
    return 0;
}

int probe_ready(struct probe *p)
{
    if (!p->sent) {
        int err = 0;
        socklen_t elen = sizeof(err);
        if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
            err = errno;
        if (err) {
            probe_close(p);
            return -err;
        }
        /* HTTP/1.1: Chromium's DevTools server drops an HTTP/1.0 request. */
        char req[PROBE_PATH_MAX + 80];
        int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", p->path);
        /* A few dozen bytes into an empty socket buffer: all or nothing. */
        if (send(p->fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
            int e = errno;
            probe_close(p);
            return -(e ? e : EIO);
        }
        p->sent = 1;
        return 0;
    }
    ssize_t got = recv(p->fd, p->rx + p->rxlen, sizeof(p->rx) - p->rxlen, 0);
    if (got < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (got <= 0) {
        int e = got < 0 ? errno : ECONNRESET;
        probe_close(p);
        return -e;
    }
    p->rxlen += (size_t)got;
    int status = probe_status(p->rx, p->rxlen);
    if (status == -EAGAIN && p->rxlen < sizeof(p->rx))
        return 0;
    probe_close(p);
    if (status == 500)
        return -EPROTO;
    return status > 0 ? 1 : -EBADMSG;
}

void probe_close(struct probe *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
}
