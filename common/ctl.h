/* Control datagrams between the supervisor and the renderer, one short line
 * each ("drain 1", "drained 1", "memory_kib 524288"), on Unix datagram sockets in runtime_dir
 * (supervisor.ctl, renderer.ctl; mode 0600). A receiver learns the sender's
 * pid from the kernel (SO_PASSCRED) and takes a line only from the process
 * it expects: the supervisor from its renderer, the renderer from its
 * parent. */
#ifndef RV_CTL_H
#define RV_CTL_H

#include <stddef.h>
#include <sys/types.h>

#define CTL_SUPERVISOR "supervisor.ctl"
#define CTL_RENDERER "renderer.ctl"
#define CTL_LINE_MAX 64

/* Bind path (replacing a stale socket) with credentials passing on. The fd
 * (non-blocking, close-on-exec) or -errno. */
int ctl_open(const char *path);
/* The same, the socket file made with owner uid and group gid from the
 * start (net_listen_unix_as): a root supervisor's socket in the children's
 * runtime_dir. */
int ctl_open_as(const char *path, uid_t uid, gid_t gid);
/* One datagram: its text (NUL-terminated, at most CTL_LINE_MAX - 1 bytes)
 * and the sender's pid. Its length, -EAGAIN when none is waiting, -EMSGSIZE
 * for a datagram too long (dropped), or -errno. */
int ctl_recv(int fd, char *line, size_t size, pid_t *pid);
/* Send line to the socket at path without blocking: 0 or -errno. A link,
 * a file that is not a socket, or (for root) a socket of another user than
 * its directory's is refused, never followed: -ELOOP, -ENOTSOCK, -EPERM
 * (net_unix_peer_open). */
int ctl_send(int fd, const char *path, const char *line);
/* "verb N", N a decimal of at most 2^32 - 1 (an optional trailing
 * newline): 0 with *n, or -EINVAL. */
int ctl_parse(const char *line, const char *verb, unsigned *n);

#endif
