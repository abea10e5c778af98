/* Listening sockets for the exporter and the renderer: TCP from a config's
 * "host:port", and Unix sockets in runtime_dir. All close-on-exec and
 * non-blocking. */
#ifndef RV_NET_H
#define RV_NET_H

#include <sys/types.h>

/* Bind and listen on "host:port" (IPv4, localhost or [IPv6]). Returns the
 * fd or a negative errno (-EINVAL for a bad address). */
int net_listen_tcp(const char *hostport, int backlog);
/* Bind a Unix socket of type SOCK_STREAM (and listen) or SOCK_DGRAM (with
 * SO_PASSCRED, set before bind) at path, replacing a stale socket file, with
 * the given mode. Returns the fd or a negative errno. */
int net_listen_unix(const char *path, int type, mode_t mode, int backlog);

#endif
