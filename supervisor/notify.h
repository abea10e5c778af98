/* Telling systemd how the service is doing, through sd_notify(3) (the unit is
 * Type=notify): READY=1 once the service serves, STATUS= with the children
 * counted by state, RELOADING=1 and READY=1 around a reload, STOPPING=1 at
 * shutdown. Started without NOTIFY_SOCKET, nothing is sent. */
#ifndef RV_NOTIFY_H
#define RV_NOTIFY_H

#include <stddef.h>

#include "child.h"

#define NOTIFY_STATUS_MAX 160

/* One child as notify sees it. */
struct notify_child {
    const char *name;
    const struct child_machine *m;
};

struct notify {
    int enabled;  /* NOTIFY_SOCKET was set at start */
    int ready;    /* READY=1 has been sent */
    int stopping; /* STOPPING=1 has been sent */
    int warned;   /* a failed send has been logged */
    char status[NOTIFY_STATUS_MAX]; /* the STATUS= text last sent */
};

void notify_init(struct notify *n);
/* The children's states have (maybe) changed: send STATUS= when its text
 * changed, and READY=1 the first time serving is true (the caller decides
 * what serving means: docs/install.md, "Readiness"). */
void notify_children(struct notify *n, const struct notify_child *kids, size_t count, int serving);
/* Around a reload (SIGHUP): RELOADING=1 before, READY=1 after, whatever the
 * reload's outcome (a refused file leaves the running config serving). A
 * reload before the service was first ready sends neither. */
void notify_reloading(struct notify *n);
void notify_reloaded(struct notify *n);
/* Shutdown has begun: STOPPING=1, once. */
void notify_stopping(struct notify *n);

/* The STATUS= text for these children (no "STATUS=" prefix), for example
 * "4 of 4 children running, 0 restarting" or "3 of 4 children running,
 * 1 restarting (browser-1)". Pure, so tests can call it. */
void notify_status_text(const struct notify_child *kids, size_t count, int ready, int stopping, char *buf,
                        size_t len);

#endif
