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
/* The most fds a line carries: "pipes N G" has two. */
#define CTL_FDS_MAX 2

/* The DevTools pipes (devtools = pipe). The renderer says "hello" when its
 * renderer.ctl is bound, and again every few seconds while it lacks some
 * browser's pipes; the supervisor answers with "pipes N G" for each live
 * browser, and sends it unasked whenever a browser starts. N is the
 * browser's index, G its start count (higher is newer: a newer set replaces
 * an older one). Two fds come with it, in this order: the write end of the
 * pipe the browser reads commands from (its fd 3), the read end of the pipe
 * it writes replies and events to (its fd 4). */
#define CTL_HELLO "hello\n"
#define CTL_PIPES "pipes"

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
/* ctl_recv, and the fds that came with the line (close-on-exec): up to max
 * of them in fds, their number in *nfds. Fds past max are closed, so are
 * all of them when the line is refused as too long; the caller closes the
 * ones it does not take. */
int ctl_recv_fds(int fd, char *line, size_t size, pid_t *pid, int *fds, size_t max, size_t *nfds);
/* Send line to the socket at path without blocking: 0 or -errno. A link,
 * a file that is not a socket, or (for root) a socket of another user than
 * its directory's is refused, never followed: -ELOOP, -ENOTSOCK, -EPERM
 * (net_unix_peer_open). */
int ctl_send(int fd, const char *path, const char *line);
/* The same with fds (at most CTL_FDS_MAX) passed along (SCM_RIGHTS); the
 * sender keeps its own copies. */
int ctl_send_fds(int fd, const char *path, const char *line, const int *fds, size_t nfds);
/* "verb N", N a decimal of at most 2^32 - 1 (an optional trailing
 * newline): 0 with *n, or -EINVAL. */
int ctl_parse(const char *line, const char *verb, unsigned *n);
/* "verb A B", each as for ctl_parse: 0 with *a and *b, or -EINVAL. */
int ctl_parse2(const char *line, const char *verb, unsigned *a, unsigned *b);

/* Health (docs/design.md, "Health: how a hang is detected"). The
 * supervisor asks, the renderer's HTTP thread answers on supervisor.ctl:
 *   supervisor -> renderer  "probe S T"
 *       S: the probe's sequence number; T: how long (ms) a browser may have
 *       sent nothing before the renderer calls it silent.
 *   renderer -> supervisor  "alive S B"     the browser thread turns
 *                           "stalled S"     it has not turned for over 5 s
 *       B: one letter per browser, browser-0 first (CTL_BROWSER_*).
 * The longest, "alive 4294967295 ", 16 letters and the newline, is 34 bytes. */
#define CTL_BROWSERS_MAX 16 /* [browsers] count's most */
#define CTL_BROWSER_HEARD 'u'  /* heard from within T (an answer to a ping at least) */
#define CTL_BROWSER_SILENT 's' /* connected, but silent for longer than T */
#define CTL_BROWSER_UNKNOWN '-' /* no connection to it: the renderer cannot tell */

struct ctl_health {
    unsigned seq;
    int stalled;
    unsigned nbrowsers;
    char browsers[CTL_BROWSERS_MAX + 1]; /* NUL-terminated CTL_BROWSER_* letters */
};

/* "probe S T\n" into line (CTL_LINE_MAX bytes): 0. */
int ctl_probe_format(char *line, size_t size, unsigned seq, unsigned silent_ms);
/* 0 with *seq and *silent_ms, or -EINVAL. */
int ctl_probe_parse(const char *line, unsigned *seq, unsigned *silent_ms);
/* The answer to a probe: 0, or -EINVAL for more than CTL_BROWSERS_MAX
 * browsers or a letter that is not a CTL_BROWSER_*. */
int ctl_health_format(char *line, size_t size, const struct ctl_health *h);
/* 0 with *h, or -EINVAL for anything but a line ctl_health_format writes. */
int ctl_health_parse(const char *line, struct ctl_health *h);

#endif
