/* The one configuration file all three binaries read (docs/configuration.md,
 * "Syntax" and "Errors"; every key under "Keys"). Parsing is strict: every
 * unknown section or key, bad value or missing required key is an error
 * naming the file, the line and the key, and nothing starts. */
#ifndef RV_CONFIG_H
#define RV_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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

/* Where a key's value came from (rendervisor --check-config --print). */
enum config_from {
    /* the table's, or the embedded default file's: also a file that is
     * that default byte for byte (what the supervisor without --config
     * writes out for its children) */
    CONFIG_FROM_DEFAULT,
    CONFIG_FROM_FILE,
    CONFIG_FROM_ENV, /* RENDERVISOR_<SECTION>_<KEY> */
};

struct config_source {
    enum config_from from;
    int line;   /* CONFIG_FROM_FILE */
    char *text; /* the value as given (continuation lines joined) */
};

struct config {
    char *path; /* file it came from; "(default)" for the embedded one */
    /* One per key of the table (config_key_count, config_key_name), in its
     * order: the value each key took and where it came from. */
    struct config_source *sources;

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
        /* PEM files: TLS on the TCP listener; both "" = plain HTTP. */
        char *tls_cert;
        char *tls_key;
    } exporter;

    struct {
        struct config_command command;
        char *listen;
        char *auth_token;      /* the tokens written inline, separated by spaces */
        char *auth_token_file; /* "" or an absolute path: one token a line */
        /* Every token a render may carry: auth_token's and the file's
         * together, NULL-terminated, never empty. */
        char **tokens;
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
        /* PEM files: the certificate (chain) and its key; both "" = plain
         * HTTP. Replaced files take effect on SIGHUP (common/tls.h). */
        char *tls_cert;
        char *tls_key;
        /* Each render's page: its console errors and warnings, failed and
         * blocked requests, logged at info (renderer/pagelog.h); at
         * log_level debug they are logged (at debug) whatever this says. */
        int log_page;
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
/* Parse path, NULL for the embedded default, with the RENDERVISOR_<SECTION>_<KEY>
 * variables of env ("NAME=value" strings, NULL-terminated, e.g. environ;
 * NULL for none) over the file's values. Errors as config_load_file's; one
 * about a variable names it ("env=RENDERVISOR_RENDERER_LISTEN key=...: ..."). */
struct config *config_load(const char *path, char *const *env, char **errors);
/* The embedded default (etc/rendervisor.ini); it always parses. */
struct config *config_load_default(void);
void config_free(struct config *cfg);

/* The embedded etc/rendervisor.ini. */
extern const char config_default_ini[];
extern const size_t config_default_ini_len;

/* The keys of the table, in its order: "section" and "key" of key i < count. */
size_t config_key_count(void);
void config_key_name(size_t i, const char **section, const char **name);
/* The environment variable that sets section.name (RENDERVISOR_SECTION_NAME). */
void config_env_name(const char *section, const char *name, char *buf, size_t len);
/* Where section.name's value came from, for an error about it found after
 * loading (a file it names): "env=RENDERVISOR_SECTION_NAME" when the
 * environment set it, else "file=<cfg->path>". */
void config_where(const struct config *cfg, const char *section, const char *name, char *buf, size_t len);
/* Every key, its value and where it came from, one "name = value ; source"
 * line each under its [section]; secrets show as a count of tokens. */
void config_print(const struct config *cfg, FILE *out);
/* The tokens of an auth_token_file's text: one a line, blank lines and
 * lines starting with # skipped, space around a token ignored. *out is
 * NULL-terminated; on error returns -EINVAL with why naming the line. */
int config_parse_token_file(const char *text, size_t len, char ***out, char *why, size_t why_len);
void config_tokens_free(char **tokens);

/* Resolve a socket name against runtime_dir (absolute names are kept). */
char *config_runtime_path(const struct config *cfg, const char *name);

/* Value parsers, exposed for tests and for other modules' own options.
 * Each returns 0, or -EINVAL/-ERANGE with *why set to a static explanation. */
int config_parse_size(const char *text, uint64_t *bytes, const char **why);
int config_parse_duration(const char *text, int64_t *ns, const char **why);
int config_parse_uint(const char *text, unsigned min, unsigned max, unsigned *out, const char **why);
int config_parse_buckets(const char *text, struct config_buckets *out, const char **why);
int config_parse_listen(const char *text, const char **why);
/* A listen value as config_parse_listen reads it: the address (AF_INET,
 * or AF_INET6 for a bracketed one; localhost names none) and the port. */
struct config_listen {
    int family;
    int localhost; /* "localhost": 127.0.0.1 or ::1, as getaddrinfo gives */
    unsigned char addr[16];
    unsigned port;
};
int config_parse_listen_addr(const char *text, struct config_listen *out, const char **why);
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
