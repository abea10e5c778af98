/* What each child is, derived from the config: its name, its full command
 * line (with the arguments its role needs appended), its memory limit, and a
 * fingerprint of the settings that need a restart when they change. */
#ifndef RV_SPEC_H
#define RV_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

enum spec_role {
    SPEC_ROLE_EXPORTER,
    SPEC_ROLE_BROWSER,
    SPEC_ROLE_RENDERER,
};

#define SPEC_NAME_MAX 32

struct child_spec {
    char name[SPEC_NAME_MAX]; /* exporter, browser-0, ..., renderer */
    enum spec_role role;
    unsigned index;    /* a browser's N (browser-N): its port, its pipes, "drain N"; 0 for the others */
    struct config_command command; /* program and arguments, NULL-terminated */
    uint64_t memory_limit;         /* bytes, 0 = none */
    char *fresh_dir;   /* emptied and created before each start (browser profiles), or NULL */
    char *user;        /* [supervisor] user: run as this user (when we are root), or NULL */
    int devtools_pipe; /* a browser speaking CDP on its fds 3 and 4 (spawn_child makes the pipes) */
    int health;        /* probed over the control socket (probe.h); 0: not probed */
    char *fingerprint; /* equal fingerprints: no restart needed on reload */
};

/* The children of cfg in start order: exporter, browsers, renderer.
 * config_path is what the exporter and the renderer get as --config. */
struct child_spec *spec_build(const struct config *cfg, const char *config_path, size_t *count);
void spec_free(struct child_spec *specs, size_t count);
/* Move src into dst (dst's old contents are freed; src is left empty). */
void spec_move(struct child_spec *dst, struct child_spec *src);

/* Whether the browsers get Chromium's sandbox. It cannot work as root
 * (Chromium refuses to start so), and then --no-sandbox is added; as any
 * other user it is on unless the operator's command turns it off. */
enum spec_sandbox {
    SPEC_SANDBOX_ON,
    SPEC_SANDBOX_OFF_ROOT,    /* the browsers run as root: --no-sandbox added */
    SPEC_SANDBOX_OFF_COMMAND, /* not root, but the command says --no-sandbox */
};

/* The decision, for the browsers' command cmd run as browsers_uid. */
enum spec_sandbox spec_sandbox(const struct config_command *cmd, uid_t browsers_uid);
/* The uid the browsers run as when a supervisor of effective uid euid starts
 * cfg: [supervisor] user's when euid is 0 and it is set, else euid. Returns
 * 0, or -ENOENT when that user does not exist. */
int spec_browsers_uid(const struct config *cfg, uid_t euid, uid_t *uid);
/* For SPEC_SANDBOX_OFF_ROOT, append --no-sandbox to every browser's command
 * that does not have it; nothing for the others. */
void spec_sandbox_apply(struct child_spec *specs, size_t count, enum spec_sandbox sandbox);

/* Whether section.name is applied in place by a running child on SIGHUP
 * (tokens, certificates): left out of the fingerprints, so its change
 * restarts no child. */
bool spec_key_hot(const char *section, const char *name);

#endif
