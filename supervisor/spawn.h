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
    /* spec->devtools_pipe: our ends of the CDP pipes (close-on-exec,
     * blocking), for the renderer: cdp_w writes to the browser's fd 3,
     * cdp_r reads from its fd 4. Else both -1. */
    int cdp_w;
    int cdp_r;
};

/* Fork and exec spec's command. The child resets its signal mask and
 * dispositions, calls setsid(), becomes spec->user when there is one and the
 * supervisor is root (initgroups, setgid, setuid; HOME, USER, LOGNAME), asks
 * for SIGKILL when the supervisor dies, and empties spec->fresh_dir if it has
 * one, as that user. A user that cannot be taken on ends the child with
 * status 126 and a message naming the child and the user on its stderr; a
 * failing exec, with status 127. With spec->devtools_pipe the child gets the
 * browser's ends of two pipes as its fds 3 and 4 (--remote-debugging-pipe).
 * Returns 0 or a negative errno. */
int spawn_child(const struct child_spec *spec, struct spawn_result *out);

/* Remove a directory tree (used for browser profiles); returns 0 or -errno. */
int spawn_remove_tree(const char *path);
/* Remove spec->fresh_dir as spec->user: with a user, and the supervisor
 * root, in a short-lived child that becomes the user first, since the tree
 * is in a directory that user can write to. Waits for it; 0 or -errno (-EIO
 * when the child failed). */
int spawn_remove_fresh_dir(const struct child_spec *spec);

#endif
