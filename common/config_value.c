/* The config file's values, one at a time: sizes, durations, numbers, bucket
 * bounds, listen addresses, socket names, allowed hosts, the user and command
 * lines split as a shell would. Pure functions of their text (but
 * config_check_user, which asks the user database), run by whichever thread
 * loads a config; what they return is the caller's to free. */
#include "config_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "xalloc.h"

#define CONFIG_MAX_WORDS 256
/* allowed_hosts entries: a list, not a database. */
#define CONFIG_MAX_HOSTS 256
#define CONFIG_MAX_HOST_NAME 253

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

int config_parse_bool(const char *text, int *out, const char **why)
{
    static const char *const yes[] = { "true", "yes", "on", "1" }, *const no[] = { "false", "no", "off", "0" };
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(text, yes[i]) == 0 || strcasecmp(text, no[i]) == 0) {
            *out = strcasecmp(text, yes[i]) == 0;
            return 0;
        }
    }
    *why = "expected true or false";
    return -EINVAL;
}

/* The next word of a list separated by spaces and tabs: *s moved to its
 * start, its length returned (0: the list has ended). */
static size_t config_word(const char **s)
{
    *s += strspn(*s, " \t");
    return strcspn(*s, " \t");
}

int config_parse_buckets(const char *text, struct config_buckets *out, const char **why)
{
    struct config_buckets b = { .count = 0 };
    const char *s = text;
    size_t len;

    while ((len = config_word(&s)) > 0) {
        if (b.count == CONFIG_MAX_BUCKETS) {
            *why = "too many bounds (at most 32)";
            return -EINVAL;
        }
        /* strtod follows LC_NUMERIC; the binaries never call setlocale, so '.' it is. */
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (end != s + len) {
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
        s += len;
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
    struct config_listen l;
    return config_parse_listen_addr(text, &l, why);
}

int config_parse_listen_addr(const char *text, struct config_listen *out, const char **why)
{
    const char *port;
    char host[INET6_ADDRSTRLEN];
    unsigned char addr[sizeof(struct in6_addr)] = { 0 };
    unsigned n;
    int family = AF_INET, localhost = 0;

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
        family = AF_INET6;
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
        localhost = strcmp(host, "localhost") == 0;
        if (!localhost && inet_pton(AF_INET, host, addr) != 1) {
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
    out->family = family;
    out->localhost = localhost;
    memcpy(out->addr, addr, sizeof(out->addr));
    out->port = n;
    return 0;
}

/* [tracing] endpoint: where spans are posted. Only the form is checked
 * here; whether anything answers there is the exporter thread's business. */
int config_parse_url(const char *text, const char **why)
{
    if (!text[0])
        return 0;
    size_t len = strlen(text);
    if (len > 1024) {
        *why = "longer than 1024 characters";
        return -EINVAL;
    }
    for (const char *s = text; *s; s++) {
        if (isspace((unsigned char)*s) || iscntrl((unsigned char)*s) || (unsigned char)*s >= 0x7f) {
            *why = "must not contain spaces or control characters";
            return -EINVAL;
        }
    }
    const char *host;
    if (strncasecmp(text, "http://", 7) == 0)
        host = text + 7;
    else if (strncasecmp(text, "https://", 8) == 0)
        host = text + 8;
    else {
        *why = "expected an http:// or https:// URL (e.g. http://tempo:4318/v1/traces), or empty for none";
        return -EINVAL;
    }
    size_t auth = strcspn(host, "/?#");
    if (auth == 0 || host[0] == ':') {
        *why = "the URL has no host (e.g. http://tempo:4318/v1/traces)";
        return -EINVAL;
    }
    if (memchr(host, '@', auth)) {
        *why = "user info in the URL is not supported";
        return -EINVAL;
    }
    return 0;
}

int config_parse_name(const char *text, const char **why)
{
    size_t len = strlen(text);
    if (len == 0 || len > 128) {
        *why = "must be 1 to 128 characters";
        return -EINVAL;
    }
    for (const char *s = text; *s; s++) {
        if (iscntrl((unsigned char)*s)) {
            *why = "must not contain control characters";
            return -EINVAL;
        }
    }
    return 0;
}

int config_parse_ratio(const char *text, double *out, const char **why)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (!text[0] || end == text || *end || errno || !isfinite(v) || !isdigit((unsigned char)text[0])) {
        *why = "expected a number from 0 to 1 (e.g. 0.1)";
        return -EINVAL;
    }
    if (v < 0 || v > 1) {
        *why = "must be from 0 to 1";
        return -ERANGE;
    }
    *out = v;
    return 0;
}

/* A socket name: relative ones live in runtime_dir, so they must not climb out
 * of it or into subdirectories that nobody creates. */
int config_parse_socket(const char *text, const char **why)
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
    size_t len;
    while ((len = config_word(&s)) > 0) {
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
int config_check_user(const char *name, char *why, size_t why_len)
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
