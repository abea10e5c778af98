/* Writing ingest lines and sending them. Both the supervisor and the renderer
 * report through here, so the format is written in exactly one place. */
#include "ingest.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "xalloc.h"

void ingest_buf_reset(struct ingest_buf *b)
{
    b->len = 0;
    b->overflow = 0;
}

size_t ingest_format_value(char *buf, size_t size, double value)
{
    int n;
    if (isnan(value))
        n = snprintf(buf, size, "NaN");
    else if (isinf(value))
        n = snprintf(buf, size, value > 0 ? "+Inf" : "-Inf");
    else if (value == floor(value) && fabs(value) < 1e15)
        n = snprintf(buf, size, "%.0f", value);
    else {
        /* The shortest precision that reads back to the same double. */
        n = 0;
        for (int prec = 6; prec <= 17; prec++) {
            n = snprintf(buf, size, "%.*g", prec, value);
            if (n > 0 && (size_t)n < size && strtod(buf, NULL) == value)
                break;
        }
    }
    if (n < 0)
        n = 0;
    return (size_t)n < size ? (size_t)n : (size ? size - 1 : 0);
}

/* Appends s to line at *len, escaping as the exposition format escapes label
 * values. Returns -ENOSPC when it does not fit. */
static int ingest_put(char *line, size_t *len, const char *s, int escape)
{
    for (; *s; s++) {
        const char *rep = NULL;
        if (escape) {
            if (*s == '\\')
                rep = "\\\\";
            else if (*s == '"')
                rep = "\\\"";
            else if (*s == '\n')
                rep = "\\n";
        }
        size_t n = rep ? 2 : 1;
        if (*len + n >= INGEST_MAX_LINE)
            return -ENOSPC;
        if (rep)
            memcpy(line + *len, rep, 2);
        else
            line[*len] = *s;
        *len += n;
    }
    return 0;
}

int ingest_buf_line(struct ingest_buf *b, const char *family, const char *const *labels, double value)
{
    char line[INGEST_MAX_LINE];
    size_t len = 0;
    int rc = ingest_put(line, &len, family, 0);
    if (labels && labels[0]) {
        rc = rc ? rc : ingest_put(line, &len, "{", 0);
        for (size_t i = 0; labels[i] && labels[i + 1] && !rc; i += 2) {
            if (i)
                rc = ingest_put(line, &len, ",", 0);
            rc = rc ? rc : ingest_put(line, &len, labels[i], 0);
            rc = rc ? rc : ingest_put(line, &len, "=\"", 0);
            rc = rc ? rc : ingest_put(line, &len, labels[i + 1], 1);
            rc = rc ? rc : ingest_put(line, &len, "\"", 0);
        }
        rc = rc ? rc : ingest_put(line, &len, "}", 0);
    }
    char num[40];
    ingest_format_value(num, sizeof(num), value);
    rc = rc ? rc : ingest_put(line, &len, " ", 0);
    rc = rc ? rc : ingest_put(line, &len, num, 0);
    rc = rc ? rc : ingest_put(line, &len, "\n", 0);
    if (rc || b->len + len > sizeof(b->data)) {
        b->overflow = 1;
        return -ENOSPC;
    }
    memcpy(b->data + b->len, line, len);
    b->len += len;
    return 0;
}

int ingest_sender_init(struct ingest_sender *s, const char *path)
{
    struct sockaddr_un sa;
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        return -errno;
    s->path = xstrdup(path);
    return 0;
}

void ingest_sender_fini(struct ingest_sender *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    free(s->path);
    s->path = NULL;
}

int ingest_send(struct ingest_sender *s, const struct ingest_buf *b)
{
    if (b->len == 0)
        return 0;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    memcpy(sa.sun_path, s->path, strlen(s->path) + 1);
    /* MSG_DONTWAIT as well as O_NONBLOCK: a full receiver queue must cost us a
     * datagram, never a stall of the sender's loop. */
    ssize_t n = sendto(s->fd, b->data, b->len, MSG_DONTWAIT | MSG_NOSIGNAL,
                       (struct sockaddr *)&sa, sizeof(sa));
    if (n < 0) {
        int err = errno;
        s->dropped++;
        return -err;
    }
    s->sent++;
    return 0;
}
