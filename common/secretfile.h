/* Files that hold secrets (auth_token_file; TLS keys): read whole, and
 * refused unless they are regular files closed to others. One check, so
 * every secret the service reads is held to the same rule. */
#ifndef RV_SECRETFILE_H
#define RV_SECRETFILE_H

#include <stddef.h>

/* Read path (links followed: Kubernetes mounts a Secret's files through
 * them) into *text (malloc'd, NUL-terminated, *len bytes before the NUL).
 * Refused, with why saying what is wrong and what to do, when it is not a
 * regular file, when others may read or write it (mode & 0007), or when
 * it is larger than max bytes. Returns 0 or a negative errno. */
int secretfile_read(const char *path, size_t max, char **text, size_t *len, char *why, size_t why_len);

#endif
