/* The listening sockets of net.h. */
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int net_listen_tcp(const char *hostport, int backlog)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (!colon || colon == hostport || (size_t)(colon - hostport) >= sizeof(host))
        return -EINVAL;
    const char *h = hostport;
    size_t hlen = (size_t)(colon - hostport);
    if (h[0] == '[') {
        if (hlen < 3 || h[hlen - 1] != ']')
            return -EINVAL;
        h++;
        hlen -= 2;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';

    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || !res)
        return -EINVAL;
    int fd = -1, err = EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd >= 0 ? fd : -err;
}

/* The directory path names (opened O_PATH, following links as the
 * operator's own path may) and, in *base, its last component, which every
 * caller handles without following. The fd or -errno. */
static int net_open_parent(const char *path, const char **base)
{
    const char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    if (!**base || strcmp(*base, ".") == 0 || strcmp(*base, "..") == 0)
        return -EINVAL;
    char dir[PATH_MAX];
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else if ((size_t)(slash - path) >= sizeof(dir))
        return -ENAMETOOLONG;
    else {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    }
    int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* File system access as uid/gid (a root caller's fsuid and fsgid), so what
 * is created is theirs from its first moment. 0, or -EPERM when the kernel
 * did not take them (setfsuid says so only through a second call). */
static int net_fs_become(uid_t uid, gid_t gid)
{
    setfsgid(gid);
    setfsuid(uid);
    if ((uid_t)setfsuid((uid_t)-1) != uid || (gid_t)setfsgid((gid_t)-1) != gid) {
        setfsuid(geteuid());
        setfsgid(getegid());
        return -EPERM;
    }
    return 0;
}

int net_listen_unix_as(const char *path, int type, mode_t mode, int backlog, uid_t uid, gid_t gid)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int as_other = uid != (uid_t)-1 && (uid != geteuid() || gid != getegid());

    /* Only a socket file is replaced: a regular file or a link of that name
     * is a mistake in the config or someone else's doing, not ours to
     * delete. Looked at and removed through the directory, never through
     * whatever the name points to. */
    const char *base;
    int dirfd = net_open_parent(path, &base);
    if (dirfd < 0)
        return dirfd;
    struct stat st;
    if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            close(dirfd);
            return -EEXIST;
        }
        unlinkat(dirfd, base, 0); /* if it fails, bind says why */
    }
    close(dirfd);
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    /* Our datagram sockets take lines by their sender's credentials. Set
     * before bind: a datagram sent between bind and this would come with no
     * credentials (uid 65534), and be refused. */
    int one = 1;
    if (type == SOCK_DGRAM && setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    /* Made with the owner and mode it keeps: no window in which others may
     * connect, and nothing to change by path afterwards, when the name may
     * already be someone else's link. bind never follows a link at its last
     * component (it fails with EADDRINUSE). */
    int rc = as_other ? net_fs_become(uid, gid) : 0;
    if (rc == 0) {
        mode_t old = umask((mode_t)(~mode & 0777));
        rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
        umask(old);
    }
    if (as_other) {
        setfsuid(geteuid());
        setfsgid(getegid());
    }
    if (rc == 0 && type == SOCK_STREAM && listen(fd, backlog) < 0)
        rc = -errno;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

int net_listen_unix(const char *path, int type, mode_t mode, int backlog)
{
    return net_listen_unix_as(path, type, mode, backlog, (uid_t)-1, (gid_t)-1);
}

int net_unix_peer_open(const char *path)
{
    const char *base;
    int dirfd = net_open_parent(path, &base);
    if (dirfd < 0)
        return dirfd;
    struct stat dir, st;
    int fd = openat(dirfd, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    int err = fd < 0 ? errno : 0;
    if (!err && (fstat(dirfd, &dir) < 0 || fstat(fd, &st) < 0))
        err = errno;
    close(dirfd);
    if (!err && S_ISLNK(st.st_mode))
        err = ELOOP;
    else if (!err && !S_ISSOCK(st.st_mode))
        err = ENOTSOCK;
    /* In a directory of another user's, a socket of someone else's (a
     * hard link to root's journal, say) is not where root's lines go. */
    else if (!err && geteuid() == 0 && st.st_uid != dir.st_uid)
        err = EPERM;
    if (err) {
        if (fd >= 0)
            close(fd);
        return -err;
    }
    return fd;
}

socklen_t net_unix_peer_addr(int pathfd, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    int n = snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d", pathfd);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
}

const char *net_unix_peer_refusal(int err)
{
    switch (err) {
    case -ELOOP: return "a symbolic link is in the socket's place";
    case -ENOTSOCK: return "what is at the path is not a socket";
    case -EPERM: return "the socket belongs to another user than its directory";
    default: return NULL;
    }
}
