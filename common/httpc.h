/* A small HTTP/1.1 client for local peers: one GET on one non-blocking
 * socket, the answer read as it comes. It has no loop of its own and never
 * waits: the caller's loop (the renderer's HTTP thread's epoll, the browser
 * thread's libwebsockets loop) watches the fd for httpc_events() and calls
 * httpc_step() when it is ready, and keeps the deadline. The fd stays the
 * caller's; the request and the answer are the struct's until httpc_fini. */
#ifndef RV_HTTPC_H
#define RV_HTTPC_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define HTTPC_WHY_MAX 128

struct httpc {
    struct buf req; /* the request, sent from req.data + sent */
    size_t sent;
    struct buf resp; /* the answer as read: head, then body */
    size_t max;      /* at most this many bytes of answer, head and body */
    size_t head;     /* the head's length with its blank line; 0 until it is in */
    int64_t length;  /* Content-Length, or -1: the body ends at the close */
    unsigned status; /* the status line's code, once the head is in */
    int err;         /* 0 while it runs or once done, else what httpc_step returned */
    int done;
    char why[HTTPC_WHY_MAX]; /* for a log line: what was wrong, once err is set */
};

/* A GET of path from host (the Host header), "Connection: close", an
 * answer of at most max bytes. */
void httpc_init(struct httpc *c, const char *host, const char *path, size_t max);
void httpc_fini(struct httpc *c);

/* A non-blocking socket connecting to 127.0.0.1:port, or to the Unix
 * socket at path: the fd, or a negative errno. The connect may still be in
 * progress; httpc_step finds out how it went. */
int httpc_connect_loopback(unsigned port);
int httpc_connect_unix(const char *path);

/* What to wait for on the fd before the next httpc_step: POLLOUT while the
 * request goes out, then POLLIN (the same bits as EPOLLOUT and EPOLLIN). */
unsigned httpc_events(const struct httpc *c);

/* Send and read what the fd takes and has now. 0: the answer is complete
 * (any status: the caller judges it); -EAGAIN: wait for httpc_events();
 * else a negative errno, and c->why says what went wrong: the connect's or
 * a socket's own error, -EBADMSG (not an HTTP/1.x answer, or one cut off
 * before its end), -EMSGSIZE (over max), -EPROTONOSUPPORT (a
 * Transfer-Encoding, which a close-delimited request does not need). Once
 * it has returned 0 or an error it returns the same again. */
int httpc_step(struct httpc *c, int fd);

/* The body of a complete answer (not NUL-terminated), and the same handed
 * over to the caller, who frees it (NUL-terminated; c keeps nothing). */
const char *httpc_body(const struct httpc *c, size_t *len);
char *httpc_steal_body(struct httpc *c, size_t *len);

#endif
