/* See intake.h. A datagram is split into lines here; each line stands or
 * falls alone, so one bad line never costs the good ones beside it. */
#include "intake.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"
#include "xalloc.h"

int intake_open(struct intake *in, const char *path, struct registry *reg)
{
    in->reg = reg;
    in->uid = geteuid();
    in->buf = xmalloc(INGEST_MAX_DATAGRAM);
    in->fd = net_listen_unix(path, SOCK_DGRAM, 0600, 0);
    if (in->fd < 0)
        return in->fd;
    /* Room for a burst of reports while a scrape is being written. */
    int rcvbuf = 1 << 20;
    setsockopt(in->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    return 0;
}

/* Our own uid, and root. With [supervisor] user set, the supervisor runs as
 * root and its children as that user: its reports come from uid 0. Taking
 * root's datagrams gives nobody anything new: a root process can already
 * write to the socket whatever its mode, and to this process's memory. Any
 * other uid is another user's process, and is refused. */
int intake_sender_allowed(const struct intake *in, uid_t uid)
{
    return uid == in->uid || uid == 0;
}

void intake_close(struct intake *in)
{
    if (in->fd >= 0)
        close(in->fd);
    in->fd = -1;
    free(in->buf);
    in->buf = NULL;
}

void intake_datagram(struct registry *reg, const char *data, size_t len, int from_us)
{
    const char *p = data, *end = data + len;
    size_t lines = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        size_t n = (size_t)(line_end - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n > 0) {
            enum ingest_reject why;
            struct ingest_sample s;
            if (!from_us)
                why = INGEST_REJECT_PEER;
            else if (++lines > INGEST_MAX_LINES)
                why = INGEST_REJECT_TOO_MANY_LINES;
            else if ((why = ingest_parse_line(p, n, &s)) == INGEST_OK)
                why = registry_apply(reg, &s);
            registry_count(reg, why);
        }
        p = nl ? nl + 1 : end;
    }
}

void intake_drain(struct intake *in)
{
    for (;;) {
        union {
            char buf[CMSG_SPACE(sizeof(struct ucred))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = { in->buf, INGEST_MAX_DATAGRAM };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                              .msg_controllen = sizeof(ctl.buf) };
        ssize_t n = recvmsg(in->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0)
            return; /* EAGAIN: all taken; anything else: try again on the next event */

        int from_us = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
                c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
                struct ucred cred;
                memcpy(&cred, CMSG_DATA(c), sizeof(cred));
                from_us = intake_sender_allowed(in, cred.uid);
            }
        }
        if (msg.msg_flags & MSG_TRUNC) {
            /* Larger than any sender may send: refused whole, counted once. */
            registry_count(in->reg, from_us ? INGEST_REJECT_TOO_LONG : INGEST_REJECT_PEER);
            continue;
        }
        intake_datagram(in->reg, in->buf, (size_t)n, from_us);
    }
}
