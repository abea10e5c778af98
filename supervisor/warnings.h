/* What a valid config still leaves open: the browsers without Chromium's
 * sandbox, Grafana's default token on a listener others can reach. Said
 * once at start in the log, and by --check-config, which passes anyway. */
#ifndef RV_WARNINGS_H
#define RV_WARNINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "config.h"

#define WARNINGS_MAX 4

/* Each text is one log record's text: a sentence that says what to do,
 * then key=value fields. */
struct warnings {
    size_t count;
    char *text[WARNINGS_MAX];
};

/* The warnings for cfg run by a supervisor of effective uid euid. */
void warnings_collect(struct warnings *w, const struct config *cfg, uid_t euid);
void warnings_fini(struct warnings *w);

/* Whether listen (host:port or [IPv6]:port, as the config takes it) binds
 * loopback only: 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104 or localhost. The
 * wildcards 0.0.0.0 and :: are not. */
bool warnings_listen_is_loopback(const char *listen);

/* Whether a file of mode and owner st can be read by uid with its groups
 * (ngroups of them), by the mode bits alone (no ACLs, no capabilities). */
bool warnings_user_can_read(const struct stat *st, uid_t uid, const gid_t *groups, int ngroups);

#endif
