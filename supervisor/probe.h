/* Health probes: is a browser or the renderer still answering? One
 * non-blocking HTTP/1.1 GET at a time per child, driven by the supervisor's
 * epoll loop: connect, send, read the status line, close. Any complete
 * status line is an answer (the renderer's /healthz says 503 while no
 * browser is connected, and it is still alive) except 500, a child saying
 * it is broken (the renderer's browser thread has stopped turning); a
 * refused connection, a reset or no status line by the deadline is not. */
#ifndef RV_PROBE_H
#define RV_PROBE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROBE_PATH_MAX 64
#define PROBE_RX_MAX 64 /* enough for any status line we accept */

struct probe {
    int fd; /* -1: no probe in progress */
    int sent;
    char rx[PROBE_RX_MAX];
    size_t rxlen;
    struct sockaddr_storage addr;
    socklen_t addrlen; /* 0: this child has nothing to probe */
    char path[PROBE_PATH_MAX];
};

/* Where to probe a listener configured as "host:port" (IPv4, localhost or
 * [IPv6]): a wildcard address is reached through loopback. 0 or -EINVAL. */
int probe_addr_from_listen(const char *listen, struct sockaddr_storage *addr, socklen_t *len);

/* The status code of a response that starts with buf: 100..599 once the
 * whole status line is there, -EAGAIN while it may still come, -EBADMSG
 * when it is not HTTP. */
int probe_status(const char *buf, size_t len);

void probe_init(struct probe *p);
/* Starts one probe: a non-blocking connect. The caller watches p->fd for
 * EPOLLOUT | EPOLLIN. 0, or -errno (nothing to watch then). */
int probe_start(struct probe *p);
/* The fd is ready: 1 answered, 0 not yet (keep watching), < 0 failed
 * (-EPROTO: it answered 500). The
 * probe is closed unless 0 is returned. */
int probe_ready(struct probe *p);
void probe_close(struct probe *p);

#endif
