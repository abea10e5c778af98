/* The public listener's connections, watched for slow clients: a request's
 * headers must be complete within CONNS_HEADER_DEADLINE_MS of the accept
 * (or of the end of the previous request on a kept-alive connection); a
 * connection past it is shut down, which MHD then sees and closes. One
 * byte a second keeps MHD's own idle timeout from ever firing; this does
 * not. Everything here runs on the HTTP thread, the one that runs MHD, so a
 * connection (and its fd) cannot close under us while we look at it. */
#ifndef RV_CONNS_H
#define RV_CONNS_H

#include <stdint.h>

#include <microhttpd.h>

#define CONNS_HEADER_DEADLINE_MS 10000

struct conns;

struct conns *conns_new(int64_t deadline_ns);
void conns_free(struct conns *cs);
/* MHD_OPTION_NOTIFY_CONNECTION, with cs as its closure. */
void conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                  enum MHD_ConnectionNotificationCode toe);
/* The handler's first call for a request: its headers are complete. */
void conns_headers_done(struct MHD_Connection *conn);
/* MHD_OPTION_NOTIFY_COMPLETED: the next request's deadline starts now. */
void conns_request_done(struct conns *cs, struct MHD_Connection *conn);
/* Shut down the connections past their deadline: how many, and in *next
 * the nearest deadline left (0 for none). */
unsigned conns_cut(struct conns *cs, int64_t now, int64_t *next);
/* Connections waiting for their headers now. */
unsigned conns_waiting(const struct conns *cs);

#endif
