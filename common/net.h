/* Listening sockets for the exporter and the renderer: TCP from a config's
 * "host:port", and Unix sockets in runtime_dir. All close-on-exec and
 * non-blocking. */
#ifndef RV_NET_H
#define RV_NET_H

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

/* Bind and listen on "host:port" (IPv4, localhost or [IPv6]). Returns the
 * fd or a negative errno (-EINVAL for a bad address). */
int net_listen_tcp(const char *hostport, int backlog);
/* Bind a Unix socket of type SOCK_STREAM (and listen) or SOCK_DGRAM (with
 * SO_PASSCRED, set before bind) at path, replacing a stale socket file (a
 * link or any other file there is left alone: -EEXIST), made with the given
 * mode by the umask, never changed by path afterwards. Returns the fd or a
 * negative errno. */
int net_listen_unix(const char *path, int type, mode_t mode, int backlog);
/* The same, the socket file made with owner uid and group gid: a root caller
 * binds with them as its fsuid and fsgid (the caller must be
 * single-threaded). (uid_t)-1: ourselves. */
int net_listen_unix_as(const char *path, int type, mode_t mode, int backlog, uid_t uid, gid_t gid);

/* Sending to a socket in a directory another user may write: the socket
 * file at path opened O_PATH without following a link at its last
 * component, and sent to (sendto, connect) through the address
 * net_unix_peer_addr() makes of that fd, so that no link put at the path can
 * redirect a datagram. A root caller takes only a socket that belongs to the
 * owner of its directory. The fd (close-on-exec; close it once sent or
 * connected), or -ELOOP (a symbolic link is there), -ENOTSOCK (not a
 * socket), -EPERM (a socket of another user), or -errno (-ENOENT: nobody
 * there). */
int net_unix_peer_open(const char *path);
/* "/proc/self/fd/N" for that fd in sa; the address's length. */
socklen_t net_unix_peer_addr(int pathfd, struct sockaddr_un *sa);
/* What a refusal of net_unix_peer_open means, for a log line; NULL for an
 * errno that is not one of its refusals. */
const char *net_unix_peer_refusal(int err);

#endif
