/* The one configuration file that all three binaries read. inih splits it into
 * sections and keys; our own line reader tracks what inih keeps to itself (the
 * line number, continuation lines, lines too long for its buffer, lines it
 * skips), so every mistake in the file is reported at once, with file and line. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <ini.h>

#include "tz.h"
#include "xalloc.h"

#define CONFIG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* A config file this large is a mistake (a log, a binary), not a config. */
#define CONFIG_MAX_FILE (1024 * 1024)
#define CONFIG_MAX_WORDS 256
/* allowed_hosts entries: a list, not a database. */
#define CONFIG_MAX_HOSTS 256
#define CONFIG_MAX_HOST_NAME 253
/* runtime_dir + "/" + a socket name must fit in sun_path (108 bytes). */
#define CONFIG_MAX_RUNTIME_DIR 80
#define CONFIG_SUN_PATH sizeof(((struct sockaddr_un *)0)->sun_path)

#define CONFIG_NS_PER_MS INT64_C(1000000)
#define CONFIG_NS_PER_S (1000 * CONFIG_NS_PER_MS)
#define CONFIG_NS_PER_MIN (60 * CONFIG_NS_PER_S)

enum config_kind {
    CONFIG_KIND_DIR,
    CONFIG_KIND_DURATION,
    CONFIG_KIND_LOG_LEVEL,
    CONFIG_KIND_LOG_FORMAT,
    CONFIG_KIND_COMMAND,
    CONFIG_KIND_LISTEN,          /* host:port */
    CONFIG_KIND_LISTEN_OPTIONAL, /* host:port, or empty for none */
    CONFIG_KIND_SOCKET,
    CONFIG_KIND_SIZE,
    CONFIG_KIND_BUCKETS,
    CONFIG_KIND_TOKEN,
    CONFIG_KIND_UINT,
    CONFIG_KIND_USER,  /* a user name, or empty for none */
    CONFIG_KIND_HOSTS, /* host[:port] words, or empty for any host */
    CONFIG_KIND_TIMEZONE, /* what a render's timezone may be, or empty */
    CONFIG_KIND_DEVTOOLS, /* pipe or port */
};

struct config_key {
    const char *section;
    const char *name;
    enum config_kind kind;
    size_t offset;        /* of the field in struct config */
    const char *fallback; /* when the file leaves the key out; NULL: required */
    int64_t min, max;     /* durations in ns, numbers as they are */
};

#define CONFIG_AT(field) offsetof(struct config, field)

/* Every key there is. Anything else in a file is an error. */
static const struct config_key config_keys[] = {
    { "supervisor", "runtime_dir", CONFIG_KIND_DIR, CONFIG_AT(supervisor.runtime_dir), "/run/rendervisor", 0, 0 },
    { "supervisor", "sample_interval", CONFIG_KIND_DURATION, CONFIG_AT(supervisor.sample_interval_ns), "1s",
      100 * CONFIG_NS_PER_MS, 60 * CONFIG_NS_PER_MIN },
    { "supervisor", "stop_timeout", CONFIG_KIND_DURATION, CONFIG_AT(supervisor.stop_timeout_ns), "5s",
      100 * CONFIG_NS_PER_MS, 10 * CONFIG_NS_PER_MIN },
    { "supervisor", "health_interval", CONFIG_KIND_DURATION, CONFIG_AT(supervisor.health_interval_ns), "5s", 0,
      10 * CONFIG_NS_PER_MIN },
    { "supervisor", "health_timeout", CONFIG_KIND_DURATION, CONFIG_AT(supervisor.health_timeout_ns), "3s",
      100 * CONFIG_NS_PER_MS, CONFIG_NS_PER_MIN },
    { "supervisor", "health_failures", CONFIG_KIND_UINT, CONFIG_AT(supervisor.health_failures), "3", 1, 100 },
    { "supervisor", "log_level", CONFIG_KIND_LOG_LEVEL, CONFIG_AT(supervisor.log_level), "info", 0, 0 },
    { "supervisor", "log_format", CONFIG_KIND_LOG_FORMAT, CONFIG_AT(supervisor.log_format), "text", 0, 0 },
    { "supervisor", "user", CONFIG_KIND_USER, CONFIG_AT(supervisor.user), "", 0, 0 },

    { "exporter", "command", CONFIG_KIND_COMMAND, CONFIG_AT(exporter.command), NULL, 0, 0 },
    { "exporter", "listen", CONFIG_KIND_LISTEN_OPTIONAL, CONFIG_AT(exporter.listen), "127.0.0.1:9465", 0, 0 },
    { "exporter", "socket", CONFIG_KIND_SOCKET, CONFIG_AT(exporter.socket), "exporter.sock", 0, 0 },
    { "exporter", "ingest", CONFIG_KIND_SOCKET, CONFIG_AT(exporter.ingest), "ingest.sock", 0, 0 },
    { "exporter", "memory_limit", CONFIG_KIND_SIZE, CONFIG_AT(exporter.memory_limit), "0", 0, 0 },
    { "exporter", "request_buckets", CONFIG_KIND_BUCKETS, CONFIG_AT(exporter.request_buckets),
      "0.1 0.25 0.5 1 3 5 7 10 20 30 60", 0, 0 },
    { "exporter", "step_buckets", CONFIG_KIND_BUCKETS, CONFIG_AT(exporter.step_buckets),
      "0.01 0.05 0.1 0.3 0.5 1 3 5 10 20 30", 0, 0 },

    { "renderer", "command", CONFIG_KIND_COMMAND, CONFIG_AT(renderer.command), NULL, 0, 0 },
    { "renderer", "listen", CONFIG_KIND_LISTEN, CONFIG_AT(renderer.listen), "0.0.0.0:8081", 0, 0 },
    { "renderer", "auth_token", CONFIG_KIND_TOKEN, CONFIG_AT(renderer.auth_token), "-", 0, 0 },
    { "renderer", "memory_limit", CONFIG_KIND_SIZE, CONFIG_AT(renderer.memory_limit), "0", 0, 0 },
    { "renderer", "concurrency", CONFIG_KIND_UINT, CONFIG_AT(renderer.concurrency), "4", 1, 64 },
    /* Of the listener's 512 in all (renderer/api.c). Grafana sends every
     * render from one address, up to concurrent_render_request_limit (30)
     * at once: twice that leaves room for its kept-alive connections. */
    { "renderer", "connections_per_address", CONFIG_KIND_UINT, CONFIG_AT(renderer.connections_per_address), "64",
      1, 512 },
    { "renderer", "render_memory", CONFIG_KIND_SIZE, CONFIG_AT(renderer.render_memory), "256M", 0, 0 },
    { "renderer", "memory_budget", CONFIG_KIND_SIZE, CONFIG_AT(renderer.memory_budget), "0", 0, 0 },
    { "renderer", "allowed_hosts", CONFIG_KIND_HOSTS, CONFIG_AT(renderer.allowed_hosts), "", 0, 0 },
    { "renderer", "timezone", CONFIG_KIND_TIMEZONE, CONFIG_AT(renderer.timezone), "", 0, 0 },

    { "browsers", "count", CONFIG_KIND_UINT, CONFIG_AT(browsers.count), "2", 1, 16 },
    { "browsers", "command", CONFIG_KIND_COMMAND, CONFIG_AT(browsers.command), NULL, 0, 0 },
    { "browsers", "port_base", CONFIG_KIND_UINT, CONFIG_AT(browsers.port_base), "9222", 1024, 65535 },
    { "browsers", "devtools", CONFIG_KIND_DEVTOOLS, CONFIG_AT(browsers.devtools), "pipe", 0, 0 },
    { "browsers", "memory_limit", CONFIG_KIND_SIZE, CONFIG_AT(browsers.memory_limit), "0", 0, 0 },
    { "browsers", "drain_timeout", CONFIG_KIND_DURATION, CONFIG_AT(browsers.drain_timeout_ns), "30s",
      0, 10 * CONFIG_NS_PER_MIN },
};

#define CONFIG_NKEYS CONFIG_ARRAY_SIZE(config_keys)

static const char *const config_sections[] = { "supervisor", "exporter", "renderer", "browsers" };
static const char *const config_log_levels[] = {
    [CONFIG_LOG_DEBUG] = "debug",
    [CONFIG_LOG_INFO] = "info",
    [CONFIG_LOG_WARN] = "warn",
    [CONFIG_LOG_ERROR] = "error",
};
static const char *const config_log_formats[] = {
    [CONFIG_LOG_TEXT] = "text",
    [CONFIG_LOG_JSON] = "json",
};
static const char *const config_devtools_names[] = {
    [CONFIG_DEVTOOLS_PIPE] = "pipe",
    [CONFIG_DEVTOOLS_PORT] = "port",
};

/* ---- value parsers ---------------------------------------------------- */

static bool config_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Leading decimal digits of *text into *n; false if there are none. *overflow
 * is set, not returned, so the caller can still tell a malformed value from a
 * merely large one. */
static bool config_scan_digits(const char **text, uint64_t *n, bool *overflow)
{
    const char *s = *text;
    *n = 0;
    *overflow = false;
    if (!config_is_digit(*s))
        return false;
    for (; config_is_digit(*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (*n > (UINT64_MAX - d) / 10)
            *overflow = true;
        else
            *n = *n * 10 + d;
    }
    *text = s;
    return true;
}

int config_parse_size(const char *text, uint64_t *bytes, const char **why)
{
    static const char form[] = "expected a whole number of bytes, optionally with K, M or G (e.g. 256M)";
    const char *s = text;
    uint64_t n;
    bool overflow;
    unsigned shift = 0;

    if (!config_scan_digits(&s, &n, &overflow)) {
        *why = form;
        return -EINVAL;
    }
    switch (*s) {
    case 'K': case 'k': shift = 10; s++; break;
    case 'M': case 'm': shift = 20; s++; break;
    case 'G': case 'g': shift = 30; s++; break;
    default: break;
    }
    if (*s) {
        *why = form;
        return -EINVAL;
    }
    if (overflow || n > (UINT64_MAX >> shift)) {
        *why = "too large to count in 64-bit bytes";
        return -ERANGE;
    }
    *bytes = n << shift;
    return 0;
}

int config_parse_duration(const char *text, int64_t *ns, const char **why)
{
    static const char form[] = "expected a whole number followed by ms, s or m (e.g. 500ms, 5s, 2m)";
    const char *s = text;
    uint64_t n;
    bool overflow;
    int64_t unit;

    if (!config_scan_digits(&s, &n, &overflow)) {
        *why = form;
        return -EINVAL;
    }
    if (strcmp(s, "ms") == 0)
        unit = CONFIG_NS_PER_MS;
    else if (strcmp(s, "s") == 0)
        unit = CONFIG_NS_PER_S;
    else if (strcmp(s, "m") == 0)
        unit = CONFIG_NS_PER_MIN;
    else {
        *why = form;
        return -EINVAL;
    }
    if (overflow || n > (uint64_t)(INT64_MAX / unit)) {
        *why = "too long to count in 64-bit nanoseconds";
        return -ERANGE;
    }
    *ns = (int64_t)n * unit;
    return 0;
}

int config_parse_uint(const char *text, unsigned min, unsigned max, unsigned *out, const char **why)
{
    const char *s = text;
    uint64_t n;
    bool overflow;

    if (!config_scan_digits(&s, &n, &overflow) || *s) {
        *why = "expected a whole number";
        return -EINVAL;
    }
    if (overflow || n < min || n > max) {
        *why = "out of range";
        return -ERANGE;
    }
    *out = (unsigned)n;
    return 0;
}

int config_parse_buckets(const char *text, struct config_buckets *out, const char **why)
{
    struct config_buckets b = { .count = 0 };
    const char *s = text;

    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            break;
        if (b.count == CONFIG_MAX_BUCKETS) {
            *why = "too many bounds (at most 32)";
            return -EINVAL;
        }
        /* strtod follows LC_NUMERIC; the binaries never call setlocale, so '.' it is. */
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (end == s || (*end && *end != ' ' && *end != '\t')) {
            *why = "expected numbers separated by spaces (e.g. 0.1 0.5 1 5)";
            return -EINVAL;
        }
        if (errno == ERANGE) {
            *why = "a bound is too large or too small to represent";
            return -ERANGE;
        }
        if (!isfinite(v) || v <= 0) {
            *why = "every bound must be a finite number greater than 0";
            return -EINVAL;
        }
        if (b.count > 0 && v <= b.bounds[b.count - 1]) {
            *why = "bounds must be strictly increasing";
            return -EINVAL;
        }
        b.bounds[b.count++] = v;
        s = end;
    }
    if (b.count == 0) {
        *why = "expected at least one bound";
        return -EINVAL;
    }
    *out = b;
    return 0;
}

int config_parse_listen(const char *text, const char **why)
{
    const char *port;
    char host[INET6_ADDRSTRLEN];
    unsigned char addr[sizeof(struct in6_addr)];
    unsigned n;

    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        size_t len = close ? (size_t)(close - text - 1) : 0;
        if (!close || close[1] != ':' || len == 0 || len >= sizeof(host)) {
            *why = "expected [IPv6 address]:port (e.g. [::1]:8081)";
            return -EINVAL;
        }
        memcpy(host, text + 1, len);
        host[len] = '\0';
        if (inet_pton(AF_INET6, host, addr) != 1) {
            *why = "not a valid IPv6 address between the brackets";
            return -EINVAL;
        }
        port = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        size_t len = colon ? (size_t)(colon - text) : 0;
        if (!colon || len == 0) {
            *why = "expected host:port (e.g. 127.0.0.1:9465)";
            return -EINVAL;
        }
        if (len >= sizeof(host)) {
            *why = "the host must be an IPv4 address, localhost or an [IPv6 address]";
            return -EINVAL;
        }
        memcpy(host, text, len);
        host[len] = '\0';
        if (strcmp(host, "localhost") != 0 && inet_pton(AF_INET, host, addr) != 1) {
            *why = "the host must be an IPv4 address, localhost or an [IPv6 address]";
            return -EINVAL;
        }
        port = colon + 1;
    }
    const char *ignored;
    if (config_parse_uint(port, 1, 65535, &n, &ignored) < 0) {
        *why = "the port must be a number from 1 to 65535";
        return -EINVAL;
    }
    return 0;
}

/* A socket name: relative ones live in runtime_dir, so they must not climb out
 * of it or into subdirectories that nobody creates. */
static int config_parse_socket(const char *text, const char **why)
{
    if (!text[0]) {
        *why = "must not be empty";
        return -EINVAL;
    }
    for (const char *s = text; *s; s++) {
        if (isspace((unsigned char)*s) || iscntrl((unsigned char)*s)) {
            *why = "must not contain whitespace";
            return -EINVAL;
        }
    }
    if (text[0] != '/' && (strchr(text, '/') || strcmp(text, ".") == 0 || strcmp(text, "..") == 0)) {
        *why = "must be a plain file name (inside runtime_dir) or an absolute path";
        return -EINVAL;
    }
    if (strlen(text) >= CONFIG_SUN_PATH) {
        *why = "too long for a Unix socket path (at most 107 characters)";
        return -EINVAL;
    }
    return 0;
}

/* One allowed_hosts entry: a host name (letters, digits, '-', '.', '_', as
 * the renderer accepts in a URL), "[IPv6]" or a bare IPv6 address, with an
 * optional ":port" (not on a bare IPv6 address: its colons are its own). */
static int config_parse_host_entry(const char *e, size_t len, const char **why)
{
    char text[INET6_ADDRSTRLEN];
    unsigned char addr[sizeof(struct in6_addr)];
    const char *port = NULL;
    size_t plen = 0;

    if (memchr(e, '/', len) || memchr(e, '@', len)) {
        *why = "expected a host, not a URL: no scheme, user or path";
        return -EINVAL;
    }
    const char *colon = memchr(e, ':', len);
    if (e[0] == '[') {
        const char *close = memchr(e, ']', len);
        size_t hlen = close ? (size_t)(close - e - 1) : 0;
        if (!close || hlen == 0 || hlen >= sizeof(text)) {
            *why = "expected [IPv6 address] or [IPv6 address]:port";
            return -EINVAL;
        }
        memcpy(text, e + 1, hlen);
        text[hlen] = '\0';
        if (inet_pton(AF_INET6, text, addr) != 1) {
            *why = "not a valid IPv6 address between the brackets";
            return -EINVAL;
        }
        if (close + 1 < e + len) {
            if (close[1] != ':') {
                *why = "expected :port after the ]";
                return -EINVAL;
            }
            port = close + 2;
            plen = (size_t)(e + len - port);
        }
    } else if (colon && memchr(colon + 1, ':', (size_t)(e + len - colon - 1))) {
        if (len >= sizeof(text)) {
            *why = "not a valid IPv6 address (write [address]:port to give a port)";
            return -EINVAL;
        }
        memcpy(text, e, len);
        text[len] = '\0';
        if (inet_pton(AF_INET6, text, addr) != 1) {
            *why = "not a valid IPv6 address (write [address]:port to give a port)";
            return -EINVAL;
        }
    } else {
        size_t hlen = colon ? (size_t)(colon - e) : len;
        if (hlen == 0 || hlen > CONFIG_MAX_HOST_NAME) {
            *why = "expected a host name of 1 to 253 characters";
            return -EINVAL;
        }
        for (size_t i = 0; i < hlen; i++) {
            unsigned char c = (unsigned char)e[i];
            if (!isalnum(c) && c != '-' && c != '.' && c != '_') {
                *why = "a host name is letters, digits, '-', '.' and '_' (no scheme, path, '*' or '%')";
                return -EINVAL;
            }
        }
        if (colon) {
            port = colon + 1;
            plen = (size_t)(e + len - port);
        }
    }
    if (port) {
        unsigned n = 0;
        bool ok = plen >= 1 && plen <= 5;
        for (size_t i = 0; ok && i < plen; i++) {
            ok = config_is_digit(port[i]);
            n = n * 10 + (unsigned)(port[i] - '0');
        }
        if (!ok || n < 1 || n > 65535) {
            *why = "the port must be a number from 1 to 65535";
            return -EINVAL;
        }
    }
    return 0;
}

void config_hosts_free(char **hosts)
{
    if (!hosts)
        return;
    for (char **h = hosts; *h; h++)
        free(*h);
    free(hosts);
}

int config_parse_hosts(const char *text, char ***out, char *why, size_t why_len)
{
    char **hosts = NULL;
    size_t n = 0;
    const char *s = text;
    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            break;
        size_t len = strcspn(s, " \t");
        const char *reason;
        if (n == CONFIG_MAX_HOSTS) {
            snprintf(why, why_len, "too many hosts (at most %d)", CONFIG_MAX_HOSTS);
            config_hosts_free(hosts);
            return -EINVAL;
        }
        if (config_parse_host_entry(s, len, &reason) < 0) {
            snprintf(why, why_len, "host \"%.*s%s\": %s", len > 60 ? 60 : (int)len, s, len > 60 ? "..." : "",
                     reason);
            config_hosts_free(hosts);
            return -EINVAL;
        }
        hosts = xreallocarray(hosts, n + 2, sizeof(*hosts));
        hosts[n++] = xstrndup(s, len);
        hosts[n] = NULL;
        s += len;
    }
    *out = hosts;
    return 0;
}

/* The user the children run as: it must exist, and only root can run them as
 * anyone but itself. Checked wherever the file is read, so --check-config and
 * a reload say so before anything is started. */
static int config_check_user(const char *name, char *why, size_t why_len)
{
    errno = 0;
    struct passwd *pw = getpwnam(name);
    if (!pw) {
        /* getpwnam reports "not found" as NULL with errno 0 or one of these. */
        if (errno && errno != ENOENT && errno != ESRCH && errno != EBADF && errno != EPERM)
            snprintf(why, why_len, "cannot look the user up: %s", strerror(errno));
        else
            snprintf(why, why_len, "no such user");
        return -EINVAL;
    }
    uid_t me = geteuid();
    if (me != 0 && pw->pw_uid != me) {
        snprintf(why, why_len,
                 "rendervisor runs as uid %u, not as root, so it cannot run its children as uid %u; "
                 "leave user unset or start rendervisor as root",
                 (unsigned)me, (unsigned)pw->pw_uid);
        return -EPERM;
    }
    return 0;
}

static bool config_is_separator(char c)
{
    return c == ' ' || c == '\t' || c == '\n';
}

static void config_argv_free(char **argv, int argc)
{
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    free(argv);
}

int config_split_command(const char *text, struct config_command *out, const char **why)
{
    /* No word is longer than the text it came from. */
    char *word = xmalloc(strlen(text) + 1);
    char **argv = NULL;
    int argc = 0;
    const char *s = text;
    int r = 0;

    out->argv = NULL;
    out->argc = 0;
    for (;;) {
        while (config_is_separator(*s))
            s++;
        if (!*s)
            break;
        size_t n = 0;
        bool started = false; /* "" is a word even though it is empty */
        while (*s && !config_is_separator(*s)) {
            if (*s == '\'') {
                const char *close = strchr(s + 1, '\'');
                if (!close) {
                    *why = "unterminated single quote";
                    r = -EINVAL;
                    goto out;
                }
                memcpy(word + n, s + 1, (size_t)(close - s - 1));
                n += (size_t)(close - s - 1);
                s = close + 1;
                started = true;
            } else if (*s == '"') {
                for (s++; *s != '"'; ) {
                    if (!*s) {
                        *why = "unterminated double quote";
                        r = -EINVAL;
                        goto out;
                    }
                    /* Inside double quotes a backslash escapes only these, as in sh. */
                    if (*s == '\\' && s[1] && strchr("\"\\$`\n", s[1])) {
                        if (s[1] != '\n')
                            word[n++] = s[1];
                        s += 2;
                    } else {
                        word[n++] = *s++;
                    }
                }
                s++;
                started = true;
            } else if (*s == '\\') {
                if (!s[1]) {
                    *why = "trailing backslash";
                    r = -EINVAL;
                    goto out;
                }
                /* Backslash-newline joins lines and is no character at all. */
                if (s[1] != '\n') {
                    word[n++] = s[1];
                    started = true;
                }
                s += 2;
            } else {
                word[n++] = *s++;
                started = true;
            }
        }
        if (!started)
            continue;
        if (argc == CONFIG_MAX_WORDS) {
            *why = "too many words (at most 256)";
            r = -EINVAL;
            goto out;
        }
        argv = xreallocarray(argv, (size_t)argc + 2, sizeof(*argv));
        argv[argc++] = xstrndup(word, n);
        argv[argc] = NULL;
    }
    if (argc == 0) {
        *why = "empty command";
        r = -EINVAL;
        goto out;
    }
    out->argv = argv;
    out->argc = argc;
    argv = NULL;
out:
    free(word);
    if (argv)
        config_argv_free(argv, argc);
    return r;
}

void config_command_fini(struct config_command *cmd)
{
    if (cmd->argv)
        config_argv_free(cmd->argv, cmd->argc);
    cmd->argv = NULL;
    cmd->argc = 0;
}

/* dst's previous contents are not freed: it is expected to be empty. */
void config_command_copy(struct config_command *dst, const struct config_command *src)
{
    dst->argc = src->argc;
    dst->argv = xcalloc((size_t)src->argc + 1, sizeof(*dst->argv));
    for (int i = 0; i < src->argc; i++)
        dst->argv[i] = xstrdup(src->argv[i]);
}

char *config_runtime_path(const struct config *cfg, const char *name)
{
    if (name[0] == '/')
        return xstrdup(name);
    const char *dir = cfg->supervisor.runtime_dir;
    size_t len = strlen(dir);
    return xasprintf("%s%s%s", dir, len && dir[len - 1] == '/' ? "" : "/", name);
}

/* ---- errors ------------------------------------------------------------- */

struct config_error {
    int line; /* 0: not about one line */
    size_t seq;
    char *text;
};

struct config_entry {
    char *value; /* continuation lines joined with one space */
    int line;    /* 0: the file does not give the key */
    bool broken; /* already reported: do not check the value */
};

enum config_line {
    CONFIG_LINE_BLANK, /* empty or a comment */
    CONFIG_LINE_SECTION,
    CONFIG_LINE_BAD_SECTION,
    CONFIG_LINE_KEY,
    CONFIG_LINE_CONTINUATION,
};

struct config_parser {
    const char *name; /* the file, in messages */
    const char *pos, *end;

    /* The line inih is working on: the reader hands it out, the handler runs
     * for it (or not) before the reader is asked for the next one. */
    int lineno;
    enum config_line kind;
    bool too_long;
    bool handled;
    int max_len;

    int last_size;
    bool gave_full_line;

    bool have_prev;          /* mirrors inih's prev_name, which decides continuations */
    bool in_bad_section;     /* keys after a broken [header] belong nowhere */
    struct config_entry *cur; /* what a continuation extends; NULL drops it */

    struct config_entry entries[CONFIG_NKEYS];
    struct config_error *errors;
    size_t nerrors, cap;
};

static char *config_vasprintf(const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        abort();
    char *s = xmalloc((size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

/* A name from the file as an error message may show it: control bytes
 * (a terminal's escape sequences) become '?'. inih keeps names under 50
 * bytes; a longer one would be cut at size. */
static const char *config_printable(const char *name, char *out, size_t size)
{
    size_t i = 0;
    for (; name[i] && i + 1 < size; i++) {
        unsigned char c = (unsigned char)name[i];
        out[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    out[i] = '\0';
    return out;
}

/* key names the key (section.key, or the bare key outside any section); with
 * no key, section names a [section] line. */
static void config_error(struct config_parser *p, int line, const char *section, const char *key,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void config_error(struct config_parser *p, int line, const char *section, const char *key,
                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = config_vasprintf(fmt, ap);
    va_end(ap);

    char where[32] = "";
    if (line > 0)
        snprintf(where, sizeof(where), " line=%d", line);
    char section_buf[64], key_buf[64];
    if (section)
        section = config_printable(section, section_buf, sizeof(section_buf));
    if (key)
        key = config_printable(key, key_buf, sizeof(key_buf));
    char *text;
    if (key && section && section[0])
        text = xasprintf("file=%s%s key=%s.%s: %s", p->name, where, section, key, msg);
    else if (key)
        text = xasprintf("file=%s%s key=%s: %s", p->name, where, key, msg);
    else if (section)
        text = xasprintf("file=%s%s section=%s: %s", p->name, where, section, msg);
    else
        text = xasprintf("file=%s%s: %s", p->name, where, msg);
    free(msg);

    if (p->nerrors == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 8;
        p->errors = xreallocarray(p->errors, p->cap, sizeof(*p->errors));
    }
    p->errors[p->nerrors] = (struct config_error){ .line = line, .seq = p->nerrors, .text = text };
    p->nerrors++;
}

static int config_error_cmp(const void *a, const void *b)
{
    const struct config_error *x = a, *y = b;
    unsigned lx = x->line > 0 ? (unsigned)x->line : UINT_MAX;
    unsigned ly = y->line > 0 ? (unsigned)y->line : UINT_MAX;
    if (lx != ly)
        return lx < ly ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* All errors in file order, one per line, each ending in a newline. */
static char *config_error_text(struct config_parser *p)
{
    qsort(p->errors, p->nerrors, sizeof(*p->errors), config_error_cmp);
    size_t len = 0;
    for (size_t i = 0; i < p->nerrors; i++)
        len += strlen(p->errors[i].text) + 1;
    char *text = xmalloc(len + 1), *t = text;
    for (size_t i = 0; i < p->nerrors; i++) {
        size_t n = strlen(p->errors[i].text);
        memcpy(t, p->errors[i].text, n);
        t += n;
        *t++ = '\n';
    }
    *t = '\0';
    return text;
}

/* ---- reading lines for inih --------------------------------------------- */

static bool config_section_known(const char *name)
{
    for (size_t i = 0; i < CONFIG_ARRAY_SIZE(config_sections); i++)
        if (strcmp(config_sections[i], name) == 0)
            return true;
    return false;
}

static const struct config_key *config_key_find(const char *section, const char *name)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++)
        if (strcmp(config_keys[i].section, section) == 0 && strcmp(config_keys[i].name, name) == 0)
            return &config_keys[i];
    return NULL;
}

static void config_error_too_long(struct config_parser *p, const char *section, const char *key)
{
    config_error(p, p->lineno, section, key,
                 "line too long (at most %d characters); continue a long value on the next line, indented",
                 p->max_len);
}

/* What inih will make of the line, decided the way inih decides it. */
static void config_classify(struct config_parser *p, const char *line)
{
    const char *s = line;
    if (p->lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3;
    while (*s && isspace((unsigned char)*s))
        s++;
    bool indented = s > line;

    if (*s == '\0' || *s == ';' || *s == '#') {
        p->kind = CONFIG_LINE_BLANK;
    } else if (indented && p->have_prev) {
        p->kind = CONFIG_LINE_CONTINUATION;
    } else if (*s == '[') {
        /* inih ends the name at ']' or at an inline comment (';' after a space). */
        const char *e = s + 1;
        bool was_space = false;
        for (; *e && *e != ']' && !(was_space && *e == ';'); e++)
            was_space = isspace((unsigned char)*e);
        p->cur = NULL;
        if (*e == ']') {
            p->kind = CONFIG_LINE_SECTION;
            p->have_prev = false;
            p->in_bad_section = false;
            int len = (int)(e - s - 1);
            char name[64];
            snprintf(name, sizeof(name), "%.*s", len, s + 1);
            if (!p->too_long && !config_section_known(name))
                config_error(p, p->lineno, name, NULL,
                             "unknown section (expected supervisor, exporter, renderer or browsers)");
        } else {
            p->kind = CONFIG_LINE_BAD_SECTION;
            p->in_bad_section = true;
            if (!p->too_long)
                config_error(p, p->lineno, NULL, NULL, "a [section] header needs its closing ']'");
        }
    } else {
        p->kind = CONFIG_LINE_KEY;
    }
}

/* Report what the handler did not see: a line inih skipped as malformed, or an
 * over-long line that carried no key. */
static void config_finish_line(struct config_parser *p)
{
    if (p->lineno == 0 || p->handled)
        return;
    p->handled = true;
    if (p->too_long) {
        config_error_too_long(p, NULL, NULL);
        p->cur = NULL;
    } else if (p->kind == CONFIG_LINE_KEY) {
        config_error(p, p->lineno, NULL, NULL, "expected key = value, a [section] or a ; comment");
        p->cur = NULL;
    }
}

static char *config_read_line(char *buf, int size, void *stream)
{
    struct config_parser *p = stream;

    /* Newer inih versions read on after a line that fills the buffer, to throw
     * away its rest (with a smaller buffer); our lines are already whole. */
    if (p->gave_full_line) {
        p->gave_full_line = false;
        if (size != p->last_size)
            return NULL;
    }
    p->last_size = size;
    config_finish_line(p);
    if (p->pos >= p->end || size < 2)
        return NULL;

    const char *nl = memchr(p->pos, '\n', (size_t)(p->end - p->pos));
    size_t len = (size_t)((nl ? nl : p->end) - p->pos);
    size_t room = (size_t)size - 1;
    if (len > 0 && p->pos[len - 1] == '\r')
        len--;

    p->lineno++;
    p->handled = false;
    p->max_len = (int)room;
    p->too_long = len > room;
    size_t n = p->too_long ? room : len;
    memcpy(buf, p->pos, n);
    if (n < room)
        buf[n++] = '\n';
    else
        p->gave_full_line = true;
    buf[n] = '\0';
    p->pos = nl ? nl + 1 : p->end;

    config_classify(p, buf);
    return buf;
}

static void config_entry_append(struct config_entry *e, const char *more)
{
    /* inih 55 leaves inline comments on continuation lines (later versions cut
     * them): cut them here, the same way, so both read a file alike. */
    size_t add = 0;
    bool was_space = false;
    for (; more[add] && !(was_space && more[add] == ';'); add++)
        was_space = isspace((unsigned char)more[add]);
    while (add > 0 && isspace((unsigned char)more[add - 1]))
        add--;
    if (add == 0)
        return;

    size_t len = strlen(e->value);
    e->value = xrealloc(e->value, len + add + 2);
    if (len > 0)
        e->value[len++] = ' ';
    memcpy(e->value + len, more, add);
    e->value[len + add] = '\0';
}

static int config_handle(void *user, const char *section, const char *name, const char *value)
{
    struct config_parser *p = user;
    p->handled = true;

    if (p->kind == CONFIG_LINE_CONTINUATION) {
        if (p->too_long) {
            config_error_too_long(p, section, name);
            if (p->cur)
                p->cur->broken = true;
        }
        if (p->cur && !p->cur->broken)
            config_entry_append(p->cur, value);
        return 1;
    }

    p->have_prev = name[0] != '\0';
    p->cur = NULL;
    if (p->too_long)
        config_error_too_long(p, section, name[0] ? name : NULL);
    if (p->in_bad_section)
        return 1;
    if (!name[0]) {
        config_error(p, p->lineno, NULL, NULL, "a key name is missing before '='");
        return 1;
    }
    if (!section[0]) {
        config_error(p, p->lineno, NULL, name,
                     "key outside any section; put it under [supervisor], [exporter], [renderer] or [browsers]");
        return 1;
    }
    if (!config_section_known(section))
        return 1; /* reported once, at its header */

    const struct config_key *k = config_key_find(section, name);
    if (!k) {
        char known[256] = "";
        size_t used = 0;
        for (size_t i = 0; i < CONFIG_NKEYS && used < sizeof(known); i++)
            if (strcmp(config_keys[i].section, section) == 0)
                used += (size_t)snprintf(known + used, sizeof(known) - used, "%s%s", used ? ", " : "",
                                         config_keys[i].name);
        config_error(p, p->lineno, section, name, "unknown key (known in [%s]: %s)", section, known);
        return 1;
    }
    struct config_entry *e = &p->entries[k - config_keys];
    if (e->line) {
        config_error(p, p->lineno, section, name, "given twice (first on line %d)", e->line);
        return 1;
    }
    e->line = p->lineno;
    e->value = xstrdup(value);
    e->broken = p->too_long;
    p->cur = e;
    return 1;
}

/* ---- values into struct config ------------------------------------------ */

static void config_format_duration(int64_t ns, char *buf, size_t len)
{
    if (ns % CONFIG_NS_PER_MIN == 0)
        snprintf(buf, len, "%" PRId64 "m", ns / CONFIG_NS_PER_MIN);
    else if (ns % CONFIG_NS_PER_S == 0)
        snprintf(buf, len, "%" PRId64 "s", ns / CONFIG_NS_PER_S);
    else
        snprintf(buf, len, "%" PRId64 "ms", ns / CONFIG_NS_PER_MS);
}

static int config_lookup_name(const char *const *names, size_t count, const char *value)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(names[i], value) == 0)
            return (int)i;
    return -1;
}

/* Store value in the key's field; on failure, why says what was wrong and the
 * field is left untouched. */
static int config_apply(struct config *cfg, const struct config_key *k, const char *value, char *why,
                        size_t why_len)
{
    void *field = (char *)cfg + k->offset;
    const char *reason = NULL;
    int r = 0;

    switch (k->kind) {
    case CONFIG_KIND_DIR:
        if (value[0] != '/')
            reason = "must be an absolute path";
        else if (strlen(value) >= CONFIG_MAX_RUNTIME_DIR)
            reason = "must be shorter than 80 characters, so the socket paths inside it fit";
        else
            *(char **)field = xstrdup(value);
        break;
    case CONFIG_KIND_DURATION: {
        int64_t ns;
        r = config_parse_duration(value, &ns, &reason);
        if (r == 0 && (ns < k->min || ns > k->max)) {
            char lo[32], hi[32];
            config_format_duration(k->min, lo, sizeof(lo));
            config_format_duration(k->max, hi, sizeof(hi));
            snprintf(why, why_len, "must be between %s and %s", lo, hi);
            return -ERANGE;
        }
        if (r == 0)
            *(int64_t *)field = ns;
        break;
    }
    case CONFIG_KIND_LOG_LEVEL:
        r = config_lookup_name(config_log_levels, CONFIG_ARRAY_SIZE(config_log_levels), value);
        if (r < 0)
            reason = "expected debug, info, warn or error";
        else
            *(enum config_log_level *)field = (enum config_log_level)r;
        break;
    case CONFIG_KIND_LOG_FORMAT:
        r = config_lookup_name(config_log_formats, CONFIG_ARRAY_SIZE(config_log_formats), value);
        if (r < 0)
            reason = "expected text or json";
        else
            *(enum config_log_format *)field = (enum config_log_format)r;
        break;
    case CONFIG_KIND_DEVTOOLS:
        r = config_lookup_name(config_devtools_names, CONFIG_ARRAY_SIZE(config_devtools_names), value);
        if (r < 0)
            reason = "expected pipe or port";
        else
            *(enum config_devtools *)field = (enum config_devtools)r;
        break;
    case CONFIG_KIND_COMMAND: {
        struct config_command cmd;
        if (config_split_command(value, &cmd, &reason) < 0)
            break;
        if (!cmd.argv[0][0]) {
            config_command_fini(&cmd);
            reason = "the program name is empty";
            break;
        }
        *(struct config_command *)field = cmd;
        break;
    }
    case CONFIG_KIND_LISTEN_OPTIONAL:
    case CONFIG_KIND_LISTEN:
        if (!value[0] && k->kind == CONFIG_KIND_LISTEN)
            reason = "must not be empty; expected host:port (e.g. 0.0.0.0:8081)";
        else if (!value[0] || config_parse_listen(value, &reason) == 0)
            *(char **)field = xstrdup(value);
        break;
    case CONFIG_KIND_SOCKET:
        if (config_parse_socket(value, &reason) == 0)
            *(char **)field = xstrdup(value);
        break;
    case CONFIG_KIND_SIZE:
        config_parse_size(value, (uint64_t *)field, &reason);
        break;
    case CONFIG_KIND_BUCKETS:
        config_parse_buckets(value, (struct config_buckets *)field, &reason);
        break;
    case CONFIG_KIND_TOKEN:
        if (!value[0])
            reason = "must not be empty (Grafana's default token is -)";
        for (const char *s = value; *s && !reason; s++)
            if (isspace((unsigned char)*s) || iscntrl((unsigned char)*s))
                reason = "must not contain whitespace";
        if (!reason)
            *(char **)field = xstrdup(value);
        break;
    case CONFIG_KIND_UINT:
        r = config_parse_uint(value, (unsigned)k->min, (unsigned)k->max, (unsigned *)field, &reason);
        if (r == -ERANGE) {
            snprintf(why, why_len, "must be between %" PRId64 " and %" PRId64, k->min, k->max);
            return r;
        }
        break;
    case CONFIG_KIND_USER:
        for (const char *s = value; *s && !reason; s++)
            if (isspace((unsigned char)*s) || iscntrl((unsigned char)*s))
                reason = "expected one user name";
        if (!reason && value[0] && (r = config_check_user(value, why, why_len)) < 0)
            return r;
        if (!reason)
            *(char **)field = xstrdup(value);
        break;
    case CONFIG_KIND_HOSTS:
        return config_parse_hosts(value, (char ***)field, why, why_len);
    case CONFIG_KIND_TIMEZONE: {
        /* the renderer's query reads a request's timezone the same way;
         * "browser" and "default" here mean the browser's own zone */
        char id[TZ_TEXT_MAX + 1] = "";
        if (value[0] && tz_parse(value, strlen(value), id, sizeof(id)) < 0)
            reason = "expected " TZ_EXPECTED ", or empty for the browser's own zone";
        else
            *(char **)field = xstrdup(id);
        break;
    }
    }
    if (reason) {
        snprintf(why, why_len, "%s", reason);
        return -EINVAL;
    }
    return 0;
}

/* The value as it reads in a message: quoted, cut short, never a secret. */
static void config_quote(const struct config_key *k, const char *value, char *buf, size_t len)
{
    size_t n = 0;
    if (k->kind == CONFIG_KIND_TOKEN) {
        buf[0] = '\0';
        return;
    }
    buf[n++] = ' ';
    buf[n++] = '"';
    for (const char *s = value; *s && n + 8 < len; s++) {
        if (*s == '"' || *s == '\\')
            buf[n++] = '\\';
        buf[n++] = iscntrl((unsigned char)*s) ? '?' : *s;
        if (s - value >= 60 && s[1]) {
            memcpy(buf + n, "...", 3);
            n += 3;
            break;
        }
    }
    buf[n++] = '"';
    buf[n] = '\0';
}

static size_t config_key_index(const char *section, const char *name)
{
    const struct config_key *k = config_key_find(section, name);
    if (!k)
        abort();
    return (size_t)(k - config_keys);
}

/* 1 when word is Chromium's switch name (one or two dashes), alone or with
 * "=value". */
static bool config_is_switch(const char *word, const char *name)
{
    if (word[0] != '-')
        return false;
    word += word[1] == '-' ? 2 : 1;
    size_t n = strlen(name);
    return strncmp(word, name, n) == 0 && (word[n] == '\0' || word[n] == '=');
}

/* The supervisor owns how DevTools is reached: a browser command that opens
 * a port of its own would undo devtools = pipe (Chromium serves both). */
static void config_check_devtools(struct config_parser *p, const struct config *cfg)
{
    struct config_entry *cmd = &p->entries[config_key_index("browsers", "command")];
    struct config_entry *mode = &p->entries[config_key_index("browsers", "devtools")];
    if (cmd->broken || mode->broken || !cfg->browsers.command.argv)
        return;
    for (int i = 1; i < cfg->browsers.command.argc; i++) {
        const char *w = cfg->browsers.command.argv[i];
        if (cfg->browsers.devtools == CONFIG_DEVTOOLS_PIPE &&
            (config_is_switch(w, "remote-debugging-port") || config_is_switch(w, "remote-debugging-address")))
            config_error(p, cmd->line, "browsers", "command",
                         "%s opens DevTools on a TCP port, which devtools = pipe is there to avoid; remove it "
                         "(or set devtools = port, for debugging only)",
                         w);
        else if (config_is_switch(w, "remote-debugging-pipe"))
            config_error(p, cmd->line, "browsers", "command",
                         "%s is added by the supervisor itself (devtools = pipe); remove it from the command", w);
    }
}

/* Checks that involve more than one key, made once every key is known good. */
static void config_cross_check(struct config_parser *p, const struct config *cfg)
{
    config_check_devtools(p, cfg);
    struct config_entry *base = &p->entries[config_key_index("browsers", "port_base")];
    struct config_entry *count = &p->entries[config_key_index("browsers", "count")];
    if (!base->broken && !count->broken && cfg->browsers.port_base + cfg->browsers.count - 1 > 65535)
        config_error(p, base->line, "browsers", "port_base",
                     "port_base %u + count %u - 1 is above 65535; browser ports must stay below 65536",
                     cfg->browsers.port_base, cfg->browsers.count);

    if (p->entries[config_key_index("supervisor", "runtime_dir")].broken)
        return;
    static const char *const sockets[] = { "socket", "ingest" };
    for (size_t i = 0; i < CONFIG_ARRAY_SIZE(sockets); i++) {
        struct config_entry *e = &p->entries[config_key_index("exporter", sockets[i])];
        const char *name = i == 0 ? cfg->exporter.socket : cfg->exporter.ingest;
        if (e->broken || !e->line)
            continue;
        char *path = config_runtime_path(cfg, name);
        if (strlen(path) >= CONFIG_SUN_PATH)
            config_error(p, e->line, "exporter", sockets[i],
                         "the socket path %s is %zu characters; a Unix socket path must be under %zu",
                         path, strlen(path), CONFIG_SUN_PATH);
        free(path);
    }
    struct config_entry *ingest = &p->entries[config_key_index("exporter", "ingest")];
    struct config_entry *sock = &p->entries[config_key_index("exporter", "socket")];
    if (!ingest->broken && !sock->broken && strcmp(cfg->exporter.socket, cfg->exporter.ingest) == 0)
        config_error(p, ingest->line ? ingest->line : sock->line, "exporter", ingest->line ? "ingest" : "socket",
                     "exporter.socket and exporter.ingest must be different sockets");
}

static void config_check(struct config_parser *p, struct config *cfg)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const struct config_key *k = &config_keys[i];
        struct config_entry *e = &p->entries[i];
        char why[256];

        if (!e->line) {
            if (!k->fallback) {
                config_error(p, 0, k->section, k->name, "required key is missing");
                e->broken = true;
            } else if (config_apply(cfg, k, k->fallback, why, sizeof(why)) < 0) {
                abort(); /* the table above is wrong */
            }
            continue;
        }
        if (e->broken)
            continue;
        if (config_apply(cfg, k, e->value, why, sizeof(why)) < 0) {
            char shown[80];
            config_quote(k, e->value, shown, sizeof(shown));
            config_error(p, e->line, k->section, k->name, "invalid value%s: %s", shown, why);
            e->broken = true;
        }
    }
    config_cross_check(p, cfg);
}

/* ---- loading ---------------------------------------------------------------- */

static void config_set_errors(char **errors, char *text)
{
    if (errors)
        *errors = text;
    else
        free(text);
}

static struct config *config_parse(const char *text, size_t len, const char *name, char **errors)
{
    struct config_parser p = { .name = name, .pos = text, .end = text + len };

    int r = ini_parse_stream(config_read_line, &p, config_handle, &p);
    config_finish_line(&p);
    /* inih only fails a line we have not already reported if our reading of
     * its rules is wrong; do not let such a line pass unnoticed. */
    if (r != 0 && p.nerrors == 0)
        config_error(&p, r > 0 ? r : 0, NULL, NULL, "cannot parse this line");

    struct config *cfg = xcalloc(1, sizeof(*cfg));
    cfg->path = xstrdup(name);
    config_check(&p, cfg);

    if (p.nerrors > 0) {
        config_set_errors(errors, config_error_text(&p));
        config_free(cfg);
        cfg = NULL;
    } else if (errors) {
        *errors = NULL;
    }
    for (size_t i = 0; i < p.nerrors; i++)
        free(p.errors[i].text);
    free(p.errors);
    for (size_t i = 0; i < CONFIG_NKEYS; i++)
        free(p.entries[i].value);
    return cfg;
}

struct config *config_load_string(const char *text, const char *name, char **errors)
{
    size_t len = strnlen(text, CONFIG_MAX_FILE + 1);
    if (len > CONFIG_MAX_FILE) {
        config_set_errors(errors, xasprintf("file=%s: larger than 1 MiB (%d bytes); not a config file?\n", name,
                                            CONFIG_MAX_FILE));
        return NULL;
    }
    return config_parse(text, len, name, errors);
}

struct config *config_load_file(const char *path, char **errors)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        config_set_errors(errors, xasprintf("file=%s: cannot open: %s\n", path, strerror(errno)));
        return NULL;
    }

    /* Read at most one byte past the limit: enough to know the file is too big,
     * whatever fstat says (a pipe or /proc file has no size). */
    struct stat st;
    size_t cap = 4096, len = 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < CONFIG_MAX_FILE)
        cap = (size_t)st.st_size + 1;
    char *buf = xmalloc(cap);
    while (len <= CONFIG_MAX_FILE) {
        if (len == cap) {
            cap = cap * 2 > CONFIG_MAX_FILE + 1 ? CONFIG_MAX_FILE + 1 : cap * 2;
            buf = xrealloc(buf, cap);
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            config_set_errors(errors, xasprintf("file=%s: cannot read: %s\n", path, strerror(errno)));
            free(buf);
            close(fd);
            return NULL;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);

    char *text = NULL;
    if (len > CONFIG_MAX_FILE) {
        text = xasprintf("file=%s: larger than 1 MiB (%d bytes); not a config file?\n", path, CONFIG_MAX_FILE);
    } else {
        const char *nul = memchr(buf, '\0', len);
        if (nul) {
            int line = 1;
            for (const char *s = buf; s < nul; s++)
                line += *s == '\n';
            text = xasprintf("file=%s line=%d: contains a NUL byte; not a text file?\n", path, line);
        }
    }
    if (text) {
        config_set_errors(errors, text);
        free(buf);
        return NULL;
    }
    struct config *cfg = config_parse(buf, len, path, errors);
    free(buf);
    return cfg;
}

struct config *config_load_default(void)
{
    char *errors = NULL;
    struct config *cfg = config_parse(config_default_ini, config_default_ini_len, "(default)", &errors);
    if (!cfg) {
        /* A build that ships a broken default cannot do anything sensible. */
        fprintf(stderr, "level=error msg=\"the embedded default config is invalid\"\n%s", errors);
        abort();
    }
    return cfg;
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        void *field = (char *)cfg + config_keys[i].offset;
        switch (config_keys[i].kind) {
        case CONFIG_KIND_DIR:
        case CONFIG_KIND_LISTEN:
        case CONFIG_KIND_LISTEN_OPTIONAL:
        case CONFIG_KIND_SOCKET:
        case CONFIG_KIND_TOKEN:
        case CONFIG_KIND_USER:
        case CONFIG_KIND_TIMEZONE:
            free(*(char **)field);
            break;
        case CONFIG_KIND_COMMAND:
            config_command_fini(field);
            break;
        case CONFIG_KIND_HOSTS:
            config_hosts_free(*(char ***)field);
            break;
        default:
            break;
        }
    }
    free(cfg->path);
    free(cfg);
}
