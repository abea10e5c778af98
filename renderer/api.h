/* The renderer's HTTP API (docs/renderer.md, "API") on libmicrohttpd
 * with its own polling thread: /render suspends the connection until the
 * browser thread has the answer. */
#ifndef RV_API_H
#define RV_API_H

#include "browser.h"
#include "config.h"
#include "jobs.h"

struct api;

/* Serves on listen_fd (taken over). NULL with errno set on failure. */
struct api *api_start(int listen_fd, const struct config *cfg, struct jobs *jobs, struct browser_pool *pool);
/* Any thread: the drain at shutdown begins. New renders are answered 503
 * with Retry-After, /healthz 503, and every answer closes its connection;
 * the renders already submitted go on (jobs_close). */
void api_drain(struct api *a);
void api_stop(struct api *a);

#endif
