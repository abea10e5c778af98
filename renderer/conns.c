/* Slow clients cost themselves (conns.h). The connections still waiting
 * for their headers are kept in one list in the order their deadlines come,
 * so a pass looks only at those that are due. */
#include "conns.h"

#include <stdlib.h>
#include <sys/socket.h>

#include "clock.h"
#include "xalloc.h"

struct conns_entry {
    struct conns *cs;
    struct MHD_Connection *conn;
    int64_t since_ns;
    int waiting; /* in the list: its headers are not complete */
    struct conns_entry *prev, *next;
};

struct conns {
    int64_t deadline_ns;
    struct conns_entry *head, *tail;
    unsigned waiting;
};

struct conns *conns_new(int64_t deadline_ns)
{
    struct conns *cs = xcalloc(1, sizeof(*cs));
    cs->deadline_ns = deadline_ns;
    return cs;
}

void conns_free(struct conns *cs)
{
    /* MHD_stop_daemon has said CLOSED for every connection by now. */
    free(cs);
}

static void conns_unlink(struct conns_entry *e)
{
    struct conns *cs = e->cs;
    if (!e->waiting)
        return;
    if (e->prev)
        e->prev->next = e->next;
    else
        cs->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        cs->tail = e->prev;
    e->prev = e->next = NULL;
    e->waiting = 0;
    cs->waiting--;
}

static void conns_append(struct conns_entry *e, int64_t now)
{
    struct conns *cs = e->cs;
    conns_unlink(e);
    e->since_ns = now;
    e->prev = cs->tail;
    e->next = NULL;
    if (cs->tail)
        cs->tail->next = e;
    else
        cs->head = e;
    cs->tail = e;
    e->waiting = 1;
    cs->waiting++;
}

void conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                  enum MHD_ConnectionNotificationCode toe)
{
    struct conns *cs = cls;
    struct conns_entry *e = *socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        e = xcalloc(1, sizeof(*e));
        e->cs = cs;
        e->conn = conn;
        *socket_context = e;
        conns_append(e, clock_now_ns());
    } else if (e) {
        conns_unlink(e);
        free(e);
        *socket_context = NULL;
    }
}

static struct conns_entry *conns_entry_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void conns_headers_done(struct MHD_Connection *conn)
{
    struct conns_entry *e = conns_entry_of(conn);
    if (e)
        conns_unlink(e);
}

void conns_request_done(struct conns *cs, struct MHD_Connection *conn)
{
    (void)cs;
    struct conns_entry *e = conns_entry_of(conn);
    if (e)
        conns_append(e, clock_now_ns());
}

unsigned conns_cut(struct conns *cs, int64_t now, int64_t *next)
{
    unsigned cut = 0;
    while (cs->head && now - cs->head->since_ns >= cs->deadline_ns) {
        struct conns_entry *e = cs->head;
        conns_unlink(e);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(e->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        /* Not close(): the fd stays MHD's until it says CLOSED. */
        if (ci && shutdown(ci->connect_fd, SHUT_RDWR) == 0)
            cut++;
    }
    *next = cs->head ? cs->head->since_ns + cs->deadline_ns : 0;
    return cut;
}

unsigned conns_waiting(const struct conns *cs)
{
    return cs->waiting;
}
