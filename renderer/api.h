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
/* On SIGHUP, from any one thread: the listener's certificate and key read
 * again from cfg's renderer.tls_cert and tls_key (the files may have been
 * replaced, or the keys name others) and used for new connections; the
 * listener and the connections open stay. 0, or -errno with why naming the
 * key and what was wrong, and the running pair kept. TLS cannot be turned
 * on or off here: that is a restart. cfg is not kept. */
int api_tls_reload(struct api *a, const struct config *cfg, char *why, size_t why_len);
/* The pair served, for the log ("subject=... serial=..."), or "off". */
const char *api_tls_describe(const struct api *a);
void api_stop(struct api *a);
/* Any thread: renders from now on must carry one of tokens (NULL-terminated,
 * not empty; taken over). The ones in flight are not asked again. */
void api_tokens_set(struct api *a, char **tokens);

#endif
