/* systemd's notification protocol, kept out of the event loop: the loop says
 * what happened, this module turns it into sd_notify(3) messages and sends
 * only what changed. libsystemd is already mapped (libproc2 links it), so
 * this costs no memory of its own. */
#include "notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "log.h"

void notify_init(struct notify *n)
{
    memset(n, 0, sizeof(*n));
    const char *sock = getenv("NOTIFY_SOCKET");
    n->enabled = sock && sock[0];
    if (n->enabled)
        log_debug("systemd notification socket found path=%s", sock);
}

/* One message; a failure is logged once, the service runs on regardless. */
static void notify_send(struct notify *n, const char *text)
{
    if (!n->enabled)
        return;
    int rc = sd_notify(0, text);
    if (rc < 0 && !n->warned) {
        n->warned = 1;
        log_warn_errno(rc, "cannot notify systemd path=%s", getenv("NOTIFY_SOCKET"));
    }
}

/* Append to buf at *used, as snprintf would, never past len. */
static void notify_append(char *buf, size_t len, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void notify_append(char *buf, size_t len, size_t *used, const char *fmt, ...)
{
    if (*used >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *used, len - *used, fmt, ap);
    va_end(ap);
    *used = w < 0 ? len : *used + (size_t)w;
}

/* A child on its way back: waiting out its backoff, or stopping to restart. */
static int notify_restarting(const struct child_machine *m)
{
    return m->state == CHILD_BACKOFF || (m->state == CHILD_STOPPING && !m->stop_for_good);
}

void notify_status_text(const struct notify_child *kids, size_t count, int ready, int stopping, char *buf,
                        size_t len)
{
    size_t running = 0, restarting = 0, left = 0, used = 0;
    for (size_t i = 0; i < count; i++) {
        enum child_state s = kids[i].m->state;
        running += s == CHILD_RUNNING;
        restarting += notify_restarting(kids[i].m);
        left += s == CHILD_RUNNING || s == CHILD_STOPPING;
    }
    if (!len)
        return;
    buf[0] = '\0';
    if (stopping) {
        notify_append(buf, len, &used, "stopping, %zu of %zu children left", left, count);
        return;
    }
    notify_append(buf, len, &used, "%s%zu of %zu children running, %zu restarting", ready ? "" : "starting, ",
                  running, count, restarting);
    if (!restarting)
        return;
    /* Name the ones that are not running, as far as the text has room. */
    const char *sep = " (";
    for (size_t i = 0; i < count; i++) {
        if (!notify_restarting(kids[i].m))
            continue;
        size_t need = strlen(sep) + strlen(kids[i].name) + 1;
        if (used + need + 4 >= len) {
            notify_append(buf, len, &used, "%s...", sep);
            break;
        }
        notify_append(buf, len, &used, "%s%s", sep, kids[i].name);
        sep = ", ";
    }
    notify_append(buf, len, &used, ")");
}

void notify_children(struct notify *n, const struct notify_child *kids, size_t count, int serving)
{
    if (!n->enabled)
        return;
    int becomes_ready = serving && !n->ready && !n->stopping;
    char status[NOTIFY_STATUS_MAX];
    notify_status_text(kids, count, n->ready || becomes_ready, n->stopping, status, sizeof(status));
    if (becomes_ready) {
        /* Both in one datagram: systemd shows the status the moment the
         * unit turns active. */
        char msg[NOTIFY_STATUS_MAX + 32];
        snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
        notify_send(n, msg);
        n->ready = 1;
        snprintf(n->status, sizeof(n->status), "%s", status);
        log_info("told systemd the service is ready status=\"%s\"", status);
        return;
    }
    if (strcmp(status, n->status) == 0)
        return;
    snprintf(n->status, sizeof(n->status), "%s", status);
    char msg[NOTIFY_STATUS_MAX + 16];
    snprintf(msg, sizeof(msg), "STATUS=%s", status);
    notify_send(n, msg);
}

void notify_reloading(struct notify *n)
{
    if (!n->ready || n->stopping)
        return;
    /* MONOTONIC_USEC lets a systemd that knows Type=notify-reload (253 and
     * later) match this message to the reload it asked for; 252 ignores it. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char msg[96];
    snprintf(msg, sizeof(msg), "RELOADING=1\nSTATUS=reloading the config\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL);
    notify_send(n, msg);
    snprintf(n->status, sizeof(n->status), "reloading the config");
}

void notify_reloaded(struct notify *n)
{
    if (!n->ready || n->stopping)
        return;
    notify_send(n, "READY=1");
    n->status[0] = '\0'; /* the next notify_children() says how things stand */
}

void notify_stopping(struct notify *n)
{
    if (n->stopping)
        return;
    n->stopping = 1;
    notify_send(n, "STOPPING=1");
}
