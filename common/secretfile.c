/* Reading a secret from a file: the rules in secretfile.h. Checked on the
 * open fd (fstat), so the file judged is the file read. Runs on whichever
 * thread loads a config. */
#include "secretfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xalloc.h"

int secretfile_read(const char *path, size_t max, char **text, size_t *len, char *why, size_t why_len)
{
    *text = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int err = errno;
        snprintf(why, why_len, "cannot open %s: %s", path, strerror(err));
        return -err;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        snprintf(why, why_len, "cannot stat %s: %s", path, strerror(-rc));
    } else if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        snprintf(why, why_len, "%s is not a regular file", path);
    } else if (st.st_mode & 0007) {
        rc = -EPERM;
        snprintf(why, why_len,
                 "%s has mode %04o: others may read or write it; make it 0600, or 0640 with the group of the "
                 "user the renderer runs as (e.g. root:rendervisor)",
                 path, (unsigned)(st.st_mode & 07777));
    } else if ((uint64_t)st.st_size > max) {
        rc = -EFBIG;
        snprintf(why, why_len, "%s is %lld bytes, more than %zu: not a secret file?", path, (long long)st.st_size,
                 max);
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
            snprintf(why, why_len, "cannot read %s: %s", path, strerror(-rc));
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (rc == 0 && n > max) {
        rc = -EFBIG;
        snprintf(why, why_len, "%s is more than %zu bytes: not a secret file?", path, max);
    }
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}
