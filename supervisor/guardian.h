/* The guardian: a small forked process that outlives the supervisor by design.
 * PR_SET_PDEATHSIG ends a child when the supervisor dies, but not the child's
 * own children; the guardian learns every child's process group over a pipe,
 * and when that pipe closes (the supervisor is gone, however it went) it kills
 * each group, every process still in those sessions, and the processes the
 * last sample found in a child's tree outside its session (setsid). */
#ifndef RV_GUARDIAN_H
#define RV_GUARDIAN_H

#include <stddef.h>

struct guardian {
    int pid;
    int fd; /* write end of the pipe; -1 when there is no guardian */
};

int guardian_start(struct guardian *g);
/* Tell the guardian about a child's group (its leader's pid) or forget it. */
void guardian_watch(struct guardian *g, int pgid);
void guardian_forget(struct guardian *g, int pgid);
/* Replace the list of processes that left their child's session; each is
 * named by pid and start time (clock ticks after boot, /proc/PID/stat). */
void guardian_escaped(struct guardian *g, const int *pids, const unsigned long long *starts, size_t n);
/* Close the pipe: the guardian cleans up what is left and exits. */
void guardian_stop(struct guardian *g);

#endif
