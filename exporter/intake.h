/* The exporter's ingest socket: a Unix datagram socket whose every line is
 * parsed, checked against the registry and applied, or refused and counted.
 * Only datagrams from the exporter's own uid, or root's (the supervisor's
 * when it runs the children as [supervisor] user), are taken
 * (SCM_CREDENTIALS). */
#ifndef RV_INTAKE_H
#define RV_INTAKE_H

#include <stddef.h>
#include <sys/types.h>

#include "ingest.h"
#include "registry.h"

struct intake {
    int fd;
    struct registry *reg;
    uid_t uid; /* our own: with root, the senders we accept */
    /* INGEST_MAX_DATAGRAM bytes, on the heap: a struct intake is zeroed on
     * main()'s stack, which would make all 64 KiB resident for good, while
     * recvmsg() only touches what the datagrams fill. */
    char *buf;
};

/* Bind path (mode 0600) and ask for senders' credentials. 0 or -errno.
 * intake_close() is due either way. */
int intake_open(struct intake *in, const char *path, struct registry *reg);
void intake_close(struct intake *in);
/* Whether a datagram from uid is taken: our own uid, or root. */
int intake_sender_allowed(const struct intake *in, uid_t uid);
/* Take every datagram waiting on the socket; never blocks. */
void intake_drain(struct intake *in);
/* Apply one datagram's lines; from_us says whether its sender is allowed.
 * Every line is counted once, accepted or refused with its reason; the
 * lines past INGEST_MAX_LINES are refused unread (too_many_lines). */
void intake_datagram(struct registry *reg, const char *data, size_t len, int from_us);

#endif
