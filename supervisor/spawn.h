/* Creating a child process: its own session and process group, a parent-death
 * signal, a clean signal state, stdout/stderr on pipes the supervisor reads. */
#ifndef RV_SPAWN_H
#define RV_SPAWN_H

#include "spec.h"

struct spawn_result {
    int pid;
    int pidfd;  /* close-on-exec; poll it for the child's exit */
    int out_fd; /* read ends, non-blocking, close-on-exec */
    int err_fd;
};

/* Fork and exec spec's command. The child resets its signal mask and
 * dispositions, calls setsid(), asks for SIGKILL when the supervisor dies, and
 * empties spec->fresh_dir if it has one. A failing exec is reported on the
 * child's stderr and ends it with status 127. Returns 0 or a negative errno. */
int spawn_child(const struct child_spec *spec, struct spawn_result *out);

/* Remove a directory tree (used for browser profiles); returns 0 or -errno. */
int spawn_remove_tree(const char *path);

#endif
