/* One HTTP/1.1 GET on a non-blocking socket, driven by the caller's loop
 * (httpc.h): the renderer's /metrics proxy, on its HTTP thread, and a
 * browser's /json/version, on the browser thread. Runs on whichever thread
 * calls it; struct httpc owns the request and the answer, the caller the fd. */
#include "httpc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define HTTPC_CHUNK 16384

void httpc_init(struct httpc *c, const char *host, const char *path, size_t max)
{
    memset(c, 0, sizeof(*c));
    buf_init(&c->req);
    buf_init(&c->resp);
    buf_printf(&c->req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host);
    c->max = max;
    c->length = -1;
}

void httpc_fini(struct httpc *c)
{
    buf_fini(&c->req);
    buf_fini(&c->resp);
}

static int httpc_connect(int family, const struct sockaddr *sa, socklen_t len)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, sa, len) < 0 && errno != EINPROGRESS) {
        /* A Unix socket connects at once or not at all: EAGAIN is a full
         * backlog, which a stopped server reaches too. */
        int err = errno == EAGAIN ? -ETIMEDOUT : -errno;
        close(fd);
        return err;
    }
    return fd;
}

int httpc_connect_loopback(unsigned port)
{
    if (port == 0 || port > 65535)
        return -EINVAL;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return httpc_connect(AF_INET, (struct sockaddr *)&sa, sizeof(sa));
}

int httpc_connect_unix(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    return httpc_connect(AF_UNIX, (struct sockaddr *)&sa, sizeof(sa));
}

unsigned httpc_events(const struct httpc *c)
{
    return c->sent < c->req.len ? POLLOUT : POLLIN;
}

__attribute__((format(printf, 3, 4))) static int httpc_fail(struct httpc *c, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof(c->why), fmt, ap);
    va_end(ap);
    c->err = err;
    return err;
}

/* A Content-Length value: digits only, and no larger than the answer may be. */
static int httpc_length(struct httpc *c, const char *v, size_t n)
{
    while (n && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n == 0 || n > 18 || strspn(v, "0123456789") < n)
        return httpc_fail(c, -EBADMSG, "Content-Length: not a number");
    int64_t len = 0;
    for (size_t i = 0; i < n; i++)
        len = len * 10 + (v[i] - '0');
    if (c->length >= 0 && c->length != len)
        return httpc_fail(c, -EBADMSG, "Content-Length: two different values");
    c->length = len;
    return 0;
}

/* The status line and the fields we act on; head is c->head bytes long. */
static int httpc_parse_head(struct httpc *c)
{
    const char *p = c->resp.data, *end = p + c->head - 2; /* the last line's CRLF */
    if (c->head < 16 || memcmp(p, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)p[7]) || p[8] != ' ' ||
        !isdigit((unsigned char)p[9]) || !isdigit((unsigned char)p[10]) || !isdigit((unsigned char)p[11]) ||
        (p[12] != ' ' && p[12] != '\r'))
        return httpc_fail(c, -EBADMSG, "not an HTTP/1.x status line");
    c->status = (unsigned)((p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0'));
    if (c->status < 200)
        return httpc_fail(c, -EBADMSG, "status %u: no final answer", c->status);
    p = memchr(p, '\n', (size_t)(end - p)) + 1;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p) + 1);
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (eol == p || eol[-1] != '\r' || !colon || colon == p)
            return httpc_fail(c, -EBADMSG, "a header line without a name and a colon");
        size_t name = (size_t)(colon - p), vlen = (size_t)(eol - 1 - colon - 1);
        if (name == 14 && strncasecmp(p, "Content-Length", 14) == 0 && httpc_length(c, colon + 1, vlen) < 0)
            return c->err;
        if (name == 17 && strncasecmp(p, "Transfer-Encoding", 17) == 0)
            return httpc_fail(c, -EPROTONOSUPPORT, "Transfer-Encoding: not read by this client");
        p = eol + 1;
    }
    if (c->length >= 0 && (uint64_t)c->length > c->max - c->head)
        return httpc_fail(c, -EMSGSIZE, "Content-Length: %lld bytes, more than the %zu this answer may have",
                          (long long)c->length, c->max - c->head);
    return 0;
}

/* Whether what is in completes the answer; the head is parsed once it is in. */
static int httpc_check(struct httpc *c, int eof)
{
    if (!c->head) {
        const char *sep = c->resp.len >= 4 ? memmem(c->resp.data, c->resp.len, "\r\n\r\n", 4) : NULL;
        if (!sep)
            return eof ? httpc_fail(c, -EBADMSG, "closed after %zu bytes, before the end of the head", c->resp.len)
                       : -EAGAIN;
        c->head = (size_t)(sep + 4 - c->resp.data);
        if (httpc_parse_head(c) < 0)
            return c->err;
    }
    size_t body = c->resp.len - c->head;
    if (c->length >= 0 && body >= (uint64_t)c->length) {
        c->resp.len = c->head + (size_t)c->length; /* what follows is not ours to read */
        c->resp.data[c->resp.len] = '\0';
        c->done = 1;
        return 0;
    }
    if (!eof)
        return -EAGAIN;
    if (c->length >= 0)
        return httpc_fail(c, -EBADMSG, "closed after %zu of %lld body bytes", body, (long long)c->length);
    c->done = 1;
    return 0;
}

static int httpc_send(struct httpc *c, int fd)
{
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (c->sent == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr)
        return httpc_fail(c, -soerr, "cannot connect: %s", strerror(soerr));
    while (c->sent < c->req.len) {
        ssize_t n = send(fd, c->req.data + c->sent, c->req.len - c->sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == ENOTCONN))
            return -EAGAIN; /* ENOTCONN: still connecting */
        if (n < 0)
            return httpc_fail(c, -errno, "cannot send the request: %s", strerror(errno));
        c->sent += (size_t)n;
    }
    return 0;
}

int httpc_step(struct httpc *c, int fd)
{
    if (c->err || c->done)
        return c->err;
    if (c->sent < c->req.len) {
        int rc = httpc_send(c, fd);
        if (rc < 0)
            return rc;
    }
    char chunk[HTTPC_CHUNK];
    for (;;) {
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return -EAGAIN;
        if (n < 0)
            return httpc_fail(c, -errno, "cannot read the answer: %s", strerror(errno));
        /* Past Content-Length is no error: stop there. */
        size_t room = c->max - c->resp.len;
        if (c->head && c->length >= 0)
            room = c->head + (size_t)c->length - c->resp.len;
        if ((size_t)n > room && !(c->head && c->length >= 0))
            return httpc_fail(c, -EMSGSIZE, "an answer of more than %zu bytes", c->max);
        buf_append(&c->resp, chunk, (size_t)n > room ? room : (size_t)n);
        int rc = httpc_check(c, n == 0);
        if (rc != -EAGAIN)
            return rc;
    }
}

const char *httpc_body(const struct httpc *c, size_t *len)
{
    *len = c->done ? c->resp.len - c->head : 0;
    return c->done ? c->resp.data + c->head : "";
}

char *httpc_steal_body(struct httpc *c, size_t *len)
{
    size_t n;
    httpc_body(c, &n);
    if (n)
        memmove(c->resp.data, c->resp.data + c->head, n);
    c->resp.len = n;
    if (c->resp.data)
        c->resp.data[n] = '\0';
    c->head = 0;
    c->done = 0;
    httpc_fail(c, -EALREADY, "the body was handed over");
    return buf_steal(&c->resp, len);
}
