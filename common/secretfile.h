/* Files that hold secrets (a TLS key; a token file): whoever is not the
 * owner or the group must not be able to read or change them. One check,
 * made where the file is opened, so what is checked is what is read. */
#ifndef RV_SECRETFILE_H
#define RV_SECRETFILE_H

#include <stddef.h>

/* The whole of path, at most max bytes, into a malloc'd buffer (NUL
 * added, not counted in *len). secret: refuse a file that others may read
 * or write (mode & 0007) as well. Follows symlinks (Kubernetes mounts
 * Secrets through them): the mode checked is the target's. 0, or -errno
 * with why saying what was wrong with the file (path not repeated). */
int secretfile_read(const char *path, int secret, size_t max, char **data, size_t *len, char *why,
                    size_t why_len);

/* Could user open path for reading? Asked by a root supervisor about a
 * file its children will open as that user: the open is tried with the
 * user's uid, group and groups as the effective ones, then root's are
 * taken back (a single-threaded caller only). 0 when it can, when the
 * caller is not root or the user is root; else -errno with why saying so. */
int secretfile_check_user(const char *path, const char *user, char *why, size_t why_len);

#endif
