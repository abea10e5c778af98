/* The guardian: a small forked process that outlives the supervisor by design.
 * PR_SET_PDEATHSIG ends a child when the supervisor dies, but not the child's
 * own children; the guardian learns every child's process group over a pipe,
 * and when that pipe closes (the supervisor is gone, however it went) it kills
 * each group and every process still in those sessions. */
#ifndef RV_GUARDIAN_H
#define RV_GUARDIAN_H

struct guardian {
    int pid;
    int fd; /* write end of the pipe; -1 when there is no guardian */
};

int guardian_start(struct guardian *g);
/* Tell the guardian about a child's group (its leader's pid) or forget it. */
void guardian_watch(struct guardian *g, int pgid);
void guardian_forget(struct guardian *g, int pgid);
/* Close the pipe: the guardian cleans up what is left and exits. */
void guardian_stop(struct guardian *g);

#endif
