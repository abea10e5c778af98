/* The renderer's HTTP API (docs/renderer.md, "API") on libmicrohttpd
 * with its own polling thread: /render suspends the connection until the
 * browser thread has the answer. */
#ifndef RV_API_H
#define RV_API_H

#include "browser.h"
#include "config.h"
#include "jobs.h"

/* What /render/version answers as "version": Grafana compares it with the
 * reference service's releases to decide what it may ask for (3.4.0 for
 * full-page and scaled images, 3.10.0 for PDF), and we serve that whole API
 * (docs/versions.md has the gates and when this is raised). Our own version,
 * RENDERVISOR_VERSION, goes next to it. */
#define API_COMPAT_VERSION "3.12.0"

struct api;
struct tracer;

/* Serves on listen_fd (taken over). NULL with errno set on failure. */
/* tracer: NULL when tracing is off; it must outlive the api. */
struct api *api_start(int listen_fd, const struct config *cfg, struct jobs *jobs, struct browser_pool *pool,
                      struct tracer *tracer);
/* Any thread: the drain at shutdown begins. New renders are answered 503
 * with Retry-After, /healthz 503, and every answer closes its connection;
 * the renders already submitted go on (jobs_close). */
void api_drain(struct api *a);
void api_stop(struct api *a);

#endif
