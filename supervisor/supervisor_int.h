/* What the parts of the supervisor share (supervisor.c: the loop, spawning,
 * reaping, signals; supervisor_health.c; supervisor_ctl.c;
 * supervisor_sample.c; supervisor_reload.c). Everything here runs on the
 * supervisor's one thread; nothing is for other modules. */
#ifndef RV_SUPERVISOR_INT_H
#define RV_SUPERVISOR_INT_H

#include <stddef.h>
#include <stdint.h>

#include "ctl.h"
#include "supervisor.h"

/* supervisor.c */
/* Feed one event to a child's machine and carry out what it asks for. */
void sv_step(struct supervisor *sv, struct sv_child *c, enum child_event ev, int arg);
/* The running renderer, or NULL. */
struct sv_child *sv_renderer(struct supervisor *sv);
/* Tell systemd (when it listens) how the children are. */
void sv_notify(struct supervisor *sv);

/* supervisor_health.c */
/* Whether c is probed now: probes on, c probed, running, not shutting down. */
int sv_probing(const struct supervisor *sv, const struct sv_child *c);
/* A new run of c: nothing pending, the first probe soon. */
void sv_probe_reset(struct supervisor *sv, struct sv_child *c);
/* The renderer's answer to probe h->seq. */
void sv_probe_answer(struct supervisor *sv, const struct ctl_health *h);
/* Due probes start; probes past their deadline end. */
void sv_probe_tick(struct supervisor *sv, int64_t now);

/* supervisor_ctl.c */
/* Open supervisor.ctl at path (as [supervisor] user's when we are root). */
int sv_ctl_open(const struct config *cfg, const char *path);
/* Send line to the renderer's control socket, with fds when nfds > 0.
 * Returns 0 or a negative errno (ctl_send, ctl_send_fds). */
int sv_ctl_send(struct supervisor *sv, const char *line, const int *fds, size_t nfds);
void sv_ctl_read(struct supervisor *sv);
void sv_send_pipes(struct supervisor *sv, struct sv_child *c);
void sv_close_pipes(struct sv_child *c);

/* supervisor_sample.c */
/* Send c's report to the exporter. */
void sv_report_child(struct supervisor *sv, struct sv_child *c);
void sv_sample(struct supervisor *sv);

/* supervisor_reload.c */
void sv_child_free(struct sv_child *c);
/* The children of specs (taken over), none of them started. */
void sv_set_children(struct supervisor *sv, struct child_spec *specs, size_t n);
struct child_spec *sv_specs(const struct config *cfg, const char *config_path, size_t *n);
void sv_reload(struct supervisor *sv);
void sv_prune(struct supervisor *sv);
void sv_warn_devtools(const struct config *cfg);

#endif
