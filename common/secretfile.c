/* Reading a file that holds a secret, or one that goes with it (a
 * certificate next to its key): checked on the open fd (no race between
 * the check and the read), bounded in size. See secretfile.h. */
#include "secretfile.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xalloc.h"

int secretfile_read(const char *path, int secret, size_t max, char **data, size_t *len, char *why,
                    size_t why_len)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int err = errno;
        snprintf(why, why_len, "cannot open: %s", strerror(err));
        return -err;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        snprintf(why, why_len, "cannot stat: %s", strerror(-rc));
    } else if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        snprintf(why, why_len, "not a regular file");
    } else if (secret && (st.st_mode & 0007)) {
        rc = -EPERM;
        snprintf(why, why_len,
                 "others may %s it (mode %04o): a secret must be readable by its owner and group only, "
                 "e.g. chmod 0640 with group rendervisor",
                 (st.st_mode & 0002) ? "change" : "read", (unsigned)(st.st_mode & 07777));
    } else if ((size_t)st.st_size > max) {
        rc = -EFBIG;
        snprintf(why, why_len, "%lld bytes, more than the %zu such a file may have", (long long)st.st_size, max);
    }
    if (rc < 0) {
        close(fd);
        return rc;
    }
    /* One byte past max tells a file that grew since fstat. */
    char *buf = xmalloc(max + 2);
    size_t n = 0;
    while (n <= max) {
        ssize_t r = read(fd, buf + n, max + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            snprintf(why, why_len, "cannot read: %s", strerror(-rc));
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (rc == 0 && n > max) {
        rc = -EFBIG;
        snprintf(why, why_len, "more than the %zu bytes such a file may have", max);
    }
    if (rc < 0) {
        if (secret)
            explicit_bzero(buf, max + 2);
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

int secretfile_check_user(const char *path, const char *user, char *why, size_t why_len)
{
    if (geteuid() != 0 || !user || !user[0])
        return 0;
    errno = 0;
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        snprintf(why, why_len, "the children's user %s does not exist", user);
        return -ENOENT;
    }
    if (pw->pw_uid == 0)
        return 0;
    int n = 0;
    getgrouplist(pw->pw_name, pw->pw_gid, NULL, &n);
    gid_t *groups = xcalloc((size_t)n + 1, sizeof(*groups));
    if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
        n = 0;
    int nsaved = getgroups(0, NULL);
    gid_t *saved = xcalloc((size_t)(nsaved > 0 ? nsaved : 0) + 1, sizeof(*saved));
    nsaved = nsaved > 0 ? getgroups(nsaved, saved) : 0;
    gid_t egid = getegid();
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;

    int rc = 0;
    if (nsaved < 0 || setgroups((size_t)n, groups) < 0 || setegid(gid) < 0 || seteuid(uid) < 0) {
        rc = -errno;
        snprintf(why, why_len, "cannot take the user %s's ids to try: %s", user, strerror(-rc));
    } else {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
            rc = -errno;
            snprintf(why, why_len,
                     "the children's user %s cannot read it (%s): give it that user's group and mode 0640, "
                     "and let the user through the directories above it",
                     user, strerror(-rc));
        } else {
            close(fd);
        }
    }
    /* Root again, or nothing after this could be trusted. */
    if (seteuid(0) < 0 || setegid(egid) < 0 || setgroups((size_t)(nsaved > 0 ? nsaved : 0), saved) < 0)
        abort();
    free(groups);
    free(saved);
    return rc;
}
