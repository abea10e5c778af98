/* The one configuration file all three binaries read (docs/configuration.md,
 * "Syntax" and "Errors"; every key under "Keys"). Parsing is strict: every
 * unknown section or key, bad value or missing required key is an error
 * naming the file, the line and the key, and nothing starts. */
#ifndef RV_CONFIG_H
#define RV_CONFIG_H

#include <stddef.h>
#include <stdint.h>

enum config_log_level {
    CONFIG_LOG_DEBUG,
    CONFIG_LOG_INFO,
    CONFIG_LOG_WARN,
    CONFIG_LOG_ERROR,
};

enum config_log_format {
    CONFIG_LOG_TEXT,
    CONFIG_LOG_JSON,
};

/* How the renderer speaks CDP to the browsers: over pipes the supervisor
 * makes (no port at all), or over a loopback port (any local user can
 * drive the browser: for debugging only). */
enum config_devtools {
    CONFIG_DEVTOOLS_PIPE,
    CONFIG_DEVTOOLS_PORT,
};

/* A command line split into words as a shell would, without expansion. */
struct config_command {
    char **argv; /* argc words, then NULL */
    int argc;
};

#define CONFIG_MAX_BUCKETS 32

struct config_buckets {
    double bounds[CONFIG_MAX_BUCKETS]; /* strictly increasing, finite, > 0 */
    size_t count;
};

struct config {
    char *path; /* file it came from; "(default)" for the embedded one */

    struct {
        char *runtime_dir;
        int64_t sample_interval_ns;
        int64_t stop_timeout_ns;
        int64_t health_interval_ns; /* 0: no health probes */
        int64_t health_timeout_ns;
        unsigned health_failures;   /* in a row, then a restart with reason unhealthy */
        enum config_log_level log_level;
        enum config_log_format log_format;
        char *user; /* the children run as this user; "" = as the supervisor */
    } supervisor;

    struct {
        struct config_command command;
        char *listen; /* "host:port", or "" for no TCP listener */
        char *socket; /* relative names are inside runtime_dir */
        char *ingest;
        uint64_t memory_limit; /* bytes, 0 = none */
        struct config_buckets request_buckets;
        struct config_buckets step_buckets;
    } exporter;

    struct {
        struct config_command command;
        char *listen;
        char *auth_token;
        uint64_t memory_limit;
        unsigned concurrency;
        unsigned connections_per_address; /* open connections from one client address */
        uint64_t render_memory; /* a render's expected memory until measured; 0 = no admission by memory */
        uint64_t memory_budget; /* the most the service may use; 0 = the cgroup's and host's limits only */
        /* Hosts ("name", "name:port", "[v6]", "[v6]:port") the renderer may open;
         * NULL-terminated; NULL = any host. */
        char **allowed_hosts;
        /* The time zone of a render that names none (or says "browser" or
         * "default"), as the id Chromium takes (common/tz.h); "" = the
         * browser's own zone, no override. */
        char *timezone;
        /* On SIGTERM: how long renders in flight and queued may go on while
         * new ones are refused (503); 0 = answer them all 503 at once. */
        int64_t drain_timeout_ns;
    } renderer;

    struct {
        unsigned count;
        struct config_command command;
        unsigned port_base;       /* devtools = port only */
        enum config_devtools devtools;
        uint64_t memory_limit; /* per browser process tree */
        int64_t drain_timeout_ns; /* over its limit: how long its renders may finish; 0: restart at once */
    } browsers;

    /* OpenTelemetry traces of the renderer's renders (renderer/trace.h). */
    struct {
        char *endpoint;     /* the collector's OTLP/HTTP traces URL; "" = no tracing */
        char *service_name; /* the resource's service.name */
        double sample_ratio; /* of the renders that come without a trace parent */
        int64_t timeout_ns; /* of one export to the collector */
    } tracing;
};

/* Parse a file. On failure returns NULL and sets *errors to a malloc'd text of
 * one error per line ("file=F line=N key=section.key: what is wrong"). */
struct config *config_load_file(const char *path, char **errors);
/* Parse text held in memory; name stands for the file in messages. */
struct config *config_load_string(const char *text, const char *name, char **errors);
/* The embedded default (etc/rendervisor.ini); it always parses. */
struct config *config_load_default(void);
void config_free(struct config *cfg);

/* The embedded etc/rendervisor.ini. */
extern const char config_default_ini[];
extern const size_t config_default_ini_len;

/* Resolve a socket name against runtime_dir (absolute names are kept). */
char *config_runtime_path(const struct config *cfg, const char *name);

/* Value parsers, exposed for tests and for other modules' own options.
 * Each returns 0, or -EINVAL/-ERANGE with *why set to a static explanation. */
int config_parse_size(const char *text, uint64_t *bytes, const char **why);
int config_parse_duration(const char *text, int64_t *ns, const char **why);
int config_parse_uint(const char *text, unsigned min, unsigned max, unsigned *out, const char **why);
int config_parse_buckets(const char *text, struct config_buckets *out, const char **why);
int config_parse_listen(const char *text, const char **why);
/* An absolute http:// or https:// URL with a host, or "" (none). */
int config_parse_url(const char *text, const char **why);
/* A name of printable characters, 1 to 128 of them. */
int config_parse_name(const char *text, const char **why);
/* A decimal number from 0 to 1. */
int config_parse_ratio(const char *text, double *out, const char **why);
/* Split a command line; on error returns -EINVAL with *why set. */
int config_split_command(const char *text, struct config_command *out, const char **why);
void config_command_fini(struct config_command *cmd);
void config_command_copy(struct config_command *dst, const struct config_command *src);
/* allowed_hosts: words separated by spaces, each a host name, [IPv6] or a bare
 * IPv6 address, with an optional :port (not on a bare IPv6 address). *out is
 * a NULL-terminated list, or NULL for an empty text. On error returns -EINVAL
 * with why naming the entry. */
int config_parse_hosts(const char *text, char ***out, char *why, size_t why_len);
void config_hosts_free(char **hosts);

#endif
