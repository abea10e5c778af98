/* A supervised child as an explicit state machine. child_step() is the one
 * place a child changes state; it is pure (no syscalls) and tells the caller
 * what to do next, so every transition can be tested without processes. */
#ifndef RV_CHILD_H
#define RV_CHILD_H

#include <stdint.h>

#include "clock.h"
#include "names.h"

#define CHILD_BACKOFF_MIN_NS (100 * CLOCK_NS_PER_MS)
#define CHILD_BACKOFF_MAX_NS (30 * CLOCK_NS_PER_S)
/* A child that ran this long before it exited starts again from the minimum. */
#define CHILD_BACKOFF_RESET_NS (60 * CLOCK_NS_PER_S)

/* The states and reasons are the exporter's too: their names, and so
 * their order, are common/names.h's. */
enum child_state {
    CHILD_IDLE = NAMES_STATE_IDLE,         /* not started yet */
    CHILD_RUNNING = NAMES_STATE_RUNNING,   /* its process is alive */
    CHILD_STOPPING = NAMES_STATE_STOPPING, /* SIGTERM sent to its group; SIGKILL at the deadline */
    CHILD_BACKOFF = NAMES_STATE_BACKOFF,   /* it ended; it starts again at the deadline */
    CHILD_STOPPED = NAMES_STATE_STOPPED,   /* stopped for good (shutdown, or gone from the config) */
    CHILD_STATE_COUNT = NAMES_STATE_COUNT,
};

enum child_reason {
    CHILD_REASON_EXIT = NAMES_REASON_EXIT,                 /* it exited by itself */
    CHILD_REASON_SIGNAL = NAMES_REASON_SIGNAL,             /* a signal we did not send ended it */
    CHILD_REASON_MEMORY_LIMIT = NAMES_REASON_MEMORY_LIMIT, /* its tree outgrew memory_limit */
    CHILD_REASON_UNHEALTHY = NAMES_REASON_UNHEALTHY,       /* it stopped answering */
    CHILD_REASON_REQUESTED = NAMES_REASON_REQUESTED,       /* its configuration changed */
    CHILD_REASON_COUNT = NAMES_REASON_COUNT,
};

enum child_event {
    CHILD_EV_START,        /* supervise it: start it now */
    CHILD_EV_SPAWNED,      /* the process was created */
    CHILD_EV_SPAWN_FAILED, /* the process could not be created */
    CHILD_EV_EXITED,       /* the process was reaped; arg = wait status */
    CHILD_EV_RESTART,      /* stop it and start it again; arg = enum child_reason */
    CHILD_EV_STOP,         /* stop it for good */
    CHILD_EV_TICK,         /* time has passed: act on a deadline that is due */
};

enum child_action {
    CHILD_ACT_NONE,
    CHILD_ACT_SPAWN, /* create the process, then send SPAWNED or SPAWN_FAILED */
    CHILD_ACT_TERM,  /* SIGTERM to the child's process group */
    CHILD_ACT_KILL,  /* SIGKILL to the child's process group */
};

struct child_machine {
    enum child_state state;
    int64_t stop_timeout_ns;
    /* More time before SIGKILL for a child that drains on SIGTERM (the
     * renderer's drain_timeout); not given when it stops as unhealthy. */
    int64_t drain_ns;
    int64_t deadline_ns;    /* restart (BACKOFF) or SIGKILL (STOPPING); 0 = none */
    int64_t backoff_ns;     /* the delay before the next restart */
    int64_t started_ns;     /* when the running process was created */
    int stop_for_good;      /* STOPPING: end in STOPPED rather than BACKOFF */
    int spawn_pending;      /* SPAWN was asked for and not yet answered */
    enum child_reason stop_reason;
    unsigned long long restarts[CHILD_REASON_COUNT];
    int last_status;        /* wait status of the last exit */
};

void child_machine_init(struct child_machine *m, int64_t stop_timeout_ns);
enum child_action child_step(struct child_machine *m, enum child_event ev, int64_t now_ns, int arg);

/* Restarts for every reason together. */
unsigned long long child_restarts_total(const struct child_machine *m);

/* The delay after `current`: doubled, capped at CHILD_BACKOFF_MAX_NS. */
int64_t child_backoff_next(int64_t current_ns);

const char *child_state_name(enum child_state s);
const char *child_reason_name(enum child_reason r);

#endif
