/* What each child is, derived from the config: its name, its full command
 * line (with the arguments its role needs appended), its memory limit, and a
 * fingerprint of the settings that need a restart when they change. */
#ifndef RV_SPEC_H
#define RV_SPEC_H

#include <stddef.h>
#include <stdint.h>

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
    struct config_command command; /* program and arguments, NULL-terminated */
    uint64_t memory_limit;         /* bytes, 0 = none */
    char *fresh_dir;   /* emptied and created before each start (browser profiles), or NULL */
    char *user;        /* [supervisor] user: run as this user (when we are root), or NULL */
    int health;        /* probed over the control socket (probe.h); 0: not probed */
    char *fingerprint; /* equal fingerprints: no restart needed on reload */
};

/* The children of cfg in start order: exporter, browsers, renderer.
 * config_path is what the exporter and the renderer get as --config. */
struct child_spec *spec_build(const struct config *cfg, const char *config_path, size_t *count);
void spec_free(struct child_spec *specs, size_t count);
/* Move src into dst (dst's old contents are freed; src is left empty). */
void spec_move(struct child_spec *dst, struct child_spec *src);

#endif
