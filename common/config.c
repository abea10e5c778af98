/* The one configuration file that all three binaries read: the table of every
 * key, what each value may be, checks across keys, and loading a file, a text
 * or the embedded default. config_ini.c reads the lines (with inih) into one
 * entry per key, config_value.c parses single values; every mistake becomes
 * one error naming the file, the line and the key. Runs on whichever thread
 * loads a config (each binary's main thread, the supervisor's on a reload);
 * the struct config it returns is the caller's, freed by config_free. */
#include "config_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "secretfile.h"
#include "tz.h"
#include "xalloc.h"

#define CONFIG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* A config file this large is a mistake (a log, a binary), not a config. */
#define CONFIG_MAX_FILE (1024 * 1024)
/* runtime_dir + "/" + a socket name must fit in sun_path (108 bytes). */
#define CONFIG_MAX_RUNTIME_DIR 80

/* auth_token_file: a list of tokens, not a database. */
#define CONFIG_MAX_TOKEN_FILE (64 * 1024)
#define CONFIG_MAX_TOKENS 64
/* What every variable the environment gives the config starts with. */
#define CONFIG_ENV_PREFIX "RENDERVISOR_"

#define CONFIG_AT(field) offsetof(struct config, field)

/* Every key there is. Anything else in a file is an error. */
const struct config_key config_keys[] = {
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

    { "exporter", "command", CONFIG_KIND_COMMAND, CONFIG_AT(exporter.command), "rendervisor-exporter", 0, 0 },
    { "exporter", "listen", CONFIG_KIND_LISTEN_OPTIONAL, CONFIG_AT(exporter.listen), "127.0.0.1:9465", 0, 0 },
    { "exporter", "socket", CONFIG_KIND_SOCKET, CONFIG_AT(exporter.socket), "exporter.sock", 0, 0 },
    { "exporter", "ingest", CONFIG_KIND_SOCKET, CONFIG_AT(exporter.ingest), "ingest.sock", 0, 0 },
    { "exporter", "memory_limit", CONFIG_KIND_SIZE, CONFIG_AT(exporter.memory_limit), "0", 0, 0 },
    { "exporter", "request_buckets", CONFIG_KIND_BUCKETS, CONFIG_AT(exporter.request_buckets),
      "0.1 0.25 0.5 1 3 5 7 10 20 30 60", 0, 0 },
    { "exporter", "step_buckets", CONFIG_KIND_BUCKETS, CONFIG_AT(exporter.step_buckets),
      "0.01 0.05 0.1 0.3 0.5 1 3 5 10 20 30", 0, 0 },
    { "exporter", "tls_cert", CONFIG_KIND_FILE, CONFIG_AT(exporter.tls_cert), "", 0, 0 },
    { "exporter", "tls_key", CONFIG_KIND_FILE, CONFIG_AT(exporter.tls_key), "", 0, 0 },

    { "renderer", "command", CONFIG_KIND_COMMAND, CONFIG_AT(renderer.command), "rendervisor-renderer", 0, 0 },
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
    /* 15 s: with stop_timeout twice (the renderer's exit, then the other
     * children's) it fits systemd's 30 s stop, and the manifests' 40 s
     * grace period after a 10 s preStop (docs/supervisor.md, "Shutdown"). */
    { "renderer", "drain_timeout", CONFIG_KIND_DURATION, CONFIG_AT(renderer.drain_timeout_ns), "15s", 0,
      10 * CONFIG_NS_PER_MIN },
    { "renderer", "tls_cert", CONFIG_KIND_FILE, CONFIG_AT(renderer.tls_cert), "", 0, 0 },
    { "renderer", "tls_key", CONFIG_KIND_FILE, CONFIG_AT(renderer.tls_key), "", 0, 0 },
    { "renderer", "auth_token_file", CONFIG_KIND_FILE, CONFIG_AT(renderer.auth_token_file), "", 0, 0 },
    { "renderer", "log_page", CONFIG_KIND_BOOL, CONFIG_AT(renderer.log_page), "false", 0, 0 },

    { "browsers", "count", CONFIG_KIND_UINT, CONFIG_AT(browsers.count), "2", 1, 16 },
    /* NULL: the default file's command line, too long to write twice. */
    { "browsers", "command", CONFIG_KIND_COMMAND, CONFIG_AT(browsers.command), NULL, 0, 0 },
    { "browsers", "port_base", CONFIG_KIND_UINT, CONFIG_AT(browsers.port_base), "9222", 1024, 65535 },
    { "browsers", "devtools", CONFIG_KIND_DEVTOOLS, CONFIG_AT(browsers.devtools), "pipe", 0, 0 },
    { "browsers", "memory_limit", CONFIG_KIND_SIZE, CONFIG_AT(browsers.memory_limit), "0", 0, 0 },
    { "browsers", "drain_timeout", CONFIG_KIND_DURATION, CONFIG_AT(browsers.drain_timeout_ns), "30s",
      0, 10 * CONFIG_NS_PER_MIN },

    { "tracing", "endpoint", CONFIG_KIND_URL, CONFIG_AT(tracing.endpoint), "", 0, 0 },
    { "tracing", "service_name", CONFIG_KIND_NAME, CONFIG_AT(tracing.service_name), "rendervisor", 0, 0 },
    { "tracing", "sample_ratio", CONFIG_KIND_RATIO, CONFIG_AT(tracing.sample_ratio), "1", 0, 0 },
    { "tracing", "timeout", CONFIG_KIND_DURATION, CONFIG_AT(tracing.timeout_ns), "5s", 100 * CONFIG_NS_PER_MS,
      CONFIG_NS_PER_MIN },
};

const size_t config_nkeys = CONFIG_ARRAY_SIZE(config_keys);
#define CONFIG_NKEYS CONFIG_ARRAY_SIZE(config_keys)

static const char *const config_sections[] = { "supervisor", "exporter", "renderer", "browsers", "tracing" };
static const char *const config_log_formats[] = {
    [CONFIG_LOG_TEXT] = "text",
    [CONFIG_LOG_JSON] = "json",
};
static const char *const config_devtools_names[] = {
    [CONFIG_DEVTOOLS_PIPE] = "pipe",
    [CONFIG_DEVTOOLS_PORT] = "port",
};

bool config_section_known(const char *name)
{
    for (size_t i = 0; i < CONFIG_ARRAY_SIZE(config_sections); i++)
        if (strcmp(config_sections[i], name) == 0)
            return true;
    return false;
}

const struct config_key *config_key_find(const char *section, const char *name)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++)
        if (strcmp(config_keys[i].section, section) == 0 && strcmp(config_keys[i].name, name) == 0)
            return &config_keys[i];
    return NULL;
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
    case CONFIG_KIND_FILE:
        /* The children do not run in the supervisor's directory. */
        if (value[0] && value[0] != '/')
            reason = "must be an absolute path, or empty for none";
        else if (strlen(value) >= PATH_MAX)
            reason = "is longer than PATH_MAX";
        else
            *(char **)field = xstrdup(value);
        break;
    case CONFIG_KIND_LOG_LEVEL:
        if (log_level_lookup(value, strlen(value), (enum config_log_level *)field) < 0)
            reason = "expected debug, info, warn or error";
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
    case CONFIG_KIND_TOKEN: {
        /* Several tokens, separated by spaces: a token has none (it did
         * not before there could be several), so any one-token value means
         * what it meant. */
        size_t count = 0;
        for (const char *s = value; *s && !reason; s++) {
            if (iscntrl((unsigned char)*s) && *s != '\t')
                reason = "must not contain control characters";
            else if (!isspace((unsigned char)*s) && (s == value || isspace((unsigned char)s[-1])))
                count++;
        }
        if (!reason && count == 0)
            reason = "must not be empty (Grafana's default token is -)";
        else if (!reason && count > CONFIG_MAX_TOKENS)
            reason = "too many tokens (at most 64)";
        if (!reason)
            *(char **)field = xstrdup(value);
        break;
    }
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
    case CONFIG_KIND_URL:
        if (config_parse_url(value, &reason) == 0)
            *(char **)field = xstrdup(value);
        break;
    case CONFIG_KIND_NAME:
        if (config_parse_name(value, &reason) == 0)
            *(char **)field = xstrdup(value);
        break;
    case CONFIG_KIND_RATIO:
        config_parse_ratio(value, (double *)field, &reason);
        break;
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
    case CONFIG_KIND_BOOL:
        config_parse_bool(value, (int *)field, &reason);
        break;
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
    /* A token is never shown; nor is the value of a key naming a secret's
     * file (a token file, a TLS key) when it is no path: it may well be the
     * secret itself, put where its file goes. */
    bool secret_file = k->kind == CONFIG_KIND_FILE && value[0] != '/' &&
                       (strcmp(k->name, "auth_token_file") == 0 || strcmp(k->name, "tls_key") == 0);
    if (k->kind == CONFIG_KIND_TOKEN || secret_file) {
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

/* ---- ports taken twice ---------------------------------------------------- */

/* One address a TCP listener binds. any: every address of the family. */
struct config_addr {
    int family;
    bool any;
    unsigned char bytes[16];
};

/* Where a listener binds: its port and the addresses it takes. */
struct config_bind {
    const char *section, *name; /* the key that asks for it */
    unsigned port;
    int naddr;
    struct config_addr addr[2];
};

/* A listen value that config_parse_listen accepted. 0.0.0.0 takes every IPv4
 * address; [::] every IPv6 one and, as Linux binds it for both families
 * (net.ipv6.bindv6only = 0), every IPv4 one too; localhost is 127.0.0.1
 * and ::1 (getaddrinfo may give either); [::ffff:a.b.c.d] is a.b.c.d. */
static void config_bind_parse(const char *listen, const char *section, const char *name, struct config_bind *b)
{
    struct config_listen l;
    const char *why;
    if (config_parse_listen_addr(listen, &l, &why) < 0)
        abort(); /* only values config_apply took come here */
    memset(b, 0, sizeof(*b));
    b->section = section;
    b->name = name;
    b->port = l.port;

    struct in6_addr v6;
    memcpy(v6.s6_addr, l.addr, 16);
    if (l.localhost) {
        b->naddr = 2;
        b->addr[0].family = AF_INET;
        inet_pton(AF_INET, "127.0.0.1", b->addr[0].bytes);
        b->addr[1].family = AF_INET6;
        inet_pton(AF_INET6, "::1", b->addr[1].bytes);
    } else if (l.family == AF_INET) {
        b->naddr = 1;
        b->addr[0].family = AF_INET;
        memcpy(b->addr[0].bytes, l.addr, 4);
        b->addr[0].any = memcmp(b->addr[0].bytes, "\0\0\0\0", 4) == 0;
    } else if (IN6_IS_ADDR_V4MAPPED(&v6)) {
        b->naddr = 1;
        b->addr[0].family = AF_INET;
        memcpy(b->addr[0].bytes, v6.s6_addr + 12, 4);
        b->addr[0].any = memcmp(b->addr[0].bytes, "\0\0\0\0", 4) == 0;
    } else {
        b->naddr = 1;
        b->addr[0].family = AF_INET6;
        memcpy(b->addr[0].bytes, v6.s6_addr, 16);
        if (IN6_IS_ADDR_UNSPECIFIED(&v6)) {
            b->addr[0].any = true;
            b->naddr = 2;
            b->addr[1].family = AF_INET;
            b->addr[1].any = true;
        }
    }
}

static bool config_binds_overlap(const struct config_bind *a, const struct config_bind *b)
{
    if (a->port != b->port)
        return false;
    for (int i = 0; i < a->naddr; i++)
        for (int j = 0; j < b->naddr; j++) {
            const struct config_addr *x = &a->addr[i], *y = &b->addr[j];
            size_t n = x->family == AF_INET ? 4 : 16;
            if (x->family == y->family && (x->any || y->any || memcmp(x->bytes, y->bytes, n) == 0))
                return true;
        }
    return false;
}

/* The exporter's and the renderer's listeners, and with devtools = port the
 * browsers' 127.0.0.1:port_base+i, must not want one port on one address:
 * the second bind would fail at start, or undo a reload. The error is on the
 * line of the key written last of the two (a default has no line). */
static void config_check_ports(struct config_parser *p, const struct config *cfg)
{
    struct config_entry *exp = &p->entries[config_key_index("exporter", "listen")];
    struct config_entry *ren = &p->entries[config_key_index("renderer", "listen")];
    struct config_entry *base = &p->entries[config_key_index("browsers", "port_base")];
    struct config_entry *count = &p->entries[config_key_index("browsers", "count")];
    struct config_entry *mode = &p->entries[config_key_index("browsers", "devtools")];

    struct config_bind listeners[2];
    struct config_entry *entries[2];
    const char *values[2];
    int n = 0;
    if (!ren->broken) {
        values[n] = cfg->renderer.listen;
        config_bind_parse(cfg->renderer.listen, "renderer", "listen", &listeners[n]);
        entries[n++] = ren;
    }
    if (!exp->broken && cfg->exporter.listen[0]) {
        values[n] = cfg->exporter.listen;
        config_bind_parse(cfg->exporter.listen, "exporter", "listen", &listeners[n]);
        entries[n++] = exp;
    }
    if (n == 2 && config_binds_overlap(&listeners[0], &listeners[1])) {
        bool on_renderer = ren->line >= exp->line;
        config_error(p, on_renderer ? ren->line : exp->line, on_renderer ? "renderer" : "exporter", "listen",
                     "renderer.listen %s and exporter.listen %s both take port %u", cfg->renderer.listen,
                     cfg->exporter.listen, listeners[0].port);
    }

    if (base->broken || count->broken || mode->broken || cfg->browsers.devtools != CONFIG_DEVTOOLS_PORT)
        return;
    /* The browsers' side is port_base, count and devtools: the one written last. */
    const char *bname = "port_base";
    int bline = base->line;
    if (count->line > bline) {
        bname = "count";
        bline = count->line;
    }
    if (mode->line > bline) {
        bname = "devtools";
        bline = mode->line;
    }
    for (int i = 0; i < n; i++) {
        unsigned port = listeners[i].port;
        if (port < cfg->browsers.port_base || port - cfg->browsers.port_base >= cfg->browsers.count)
            continue;
        struct config_bind browser = { .section = "browsers", .name = bname, .port = port, .naddr = 1,
                                       .addr = { { .family = AF_INET } } };
        inet_pton(AF_INET, "127.0.0.1", browser.addr[0].bytes);
        if (!config_binds_overlap(&listeners[i], &browser))
            continue;
        const struct config_bind *l = bline >= entries[i]->line ? &browser : &listeners[i];
        config_error(p, l == &browser ? bline : entries[i]->line, l->section, l->name,
                     "browsers.port_base %u (count %u, devtools = port) puts browser %u on 127.0.0.1:%u, which "
                     "%s.listen %s also takes",
                     cfg->browsers.port_base, cfg->browsers.count, port - cfg->browsers.port_base, port,
                     listeners[i].section, values[i]);
    }
}

/* A listener's certificate and key come together (common/tls.h reads and
 * checks the files themselves); the error is on the line of the one given. */
static void config_check_tls_pair(struct config_parser *p, const char *section, const char *cert,
                                  const char *key)
{
    struct config_entry *c = &p->entries[config_key_index(section, "tls_cert")];
    struct config_entry *k = &p->entries[config_key_index(section, "tls_key")];
    if (c->broken || k->broken || !cert[0] == !key[0])
        return;
    const char *given = cert[0] ? "tls_cert" : "tls_key", *missing = cert[0] ? "tls_key" : "tls_cert";
    config_error(p, cert[0] ? c->line : k->line, section, given,
                 "%s.%s is set but %s.%s is not: TLS needs both (or neither, for plain HTTP)", section, given,
                 section, missing);
}

/* Checks that involve more than one key, made once every key is known good. */
static void config_cross_check(struct config_parser *p, const struct config *cfg)
{
    config_check_tls_pair(p, "renderer", cfg->renderer.tls_cert, cfg->renderer.tls_key);
    config_check_tls_pair(p, "exporter", cfg->exporter.tls_cert, cfg->exporter.tls_key);
    struct config_entry *ecert = &p->entries[config_key_index("exporter", "tls_cert")];
    struct config_entry *elisten = &p->entries[config_key_index("exporter", "listen")];
    if (!ecert->broken && !elisten->broken && cfg->exporter.tls_cert[0] && !cfg->exporter.listen[0])
        config_error(p, ecert->line, "exporter", "tls_cert",
                     "exporter.listen is empty: there is no TCP listener for TLS (the Unix socket is plain)");
    config_check_devtools(p, cfg);
    config_check_ports(p, cfg);
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

/* The value the embedded default file gives key i: the fallback of a key
 * whose table entry has none (the browsers' command), so that
 * etc/rendervisor.ini is the one place it is written. The caller frees it. */
static char *config_default_value(size_t i)
{
    struct config_parser d = { .name = "(default)", .entries = xcalloc(CONFIG_NKEYS, sizeof(*d.entries)) };
    config_read(&d, config_default_ini, config_default_ini_len);
    if (d.nerrors > 0 || !d.entries[i].line)
        abort(); /* the default file is wrong; a unit test reads it */
    char *value = d.entries[i].value;
    d.entries[i].value = NULL;
    for (size_t j = 0; j < CONFIG_NKEYS; j++)
        free(d.entries[j].value);
    free(d.entries);
    free(d.errors);
    return value;
}

/* ---- tokens ----------------------------------------------------------------- */

void config_tokens_free(char **tokens)
{
    for (size_t i = 0; tokens && tokens[i]; i++)
        free(tokens[i]);
    free(tokens);
}

/* Append the words of text (separated by spaces and tabs) to *list. */
static void config_tokens_add(char ***list, size_t *n, const char *text, size_t len)
{
    const char *s = text, *end = text + len;
    while (s < end) {
        while (s < end && (*s == ' ' || *s == '\t'))
            s++;
        const char *w = s;
        while (s < end && *s != ' ' && *s != '\t')
            s++;
        if (s == w)
            continue;
        *list = xreallocarray(*list, *n + 2, sizeof(**list));
        (*list)[(*n)++] = xstrndup(w, (size_t)(s - w));
        (*list)[*n] = NULL;
    }
}

int config_parse_token_file(const char *text, size_t len, char ***out, char *why, size_t why_len)
{
    char **tokens = NULL;
    size_t n = 0;
    int line = 0;
    *out = NULL;
    for (const char *s = text, *end = text + len; s < end;) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl ? nl : end;
        line++;
        while (s < e && isspace((unsigned char)*s))
            s++;
        while (e > s && isspace((unsigned char)e[-1]))
            e--;
        const char *bad = NULL;
        for (const char *c = s; c < e && !bad && *s != '#'; c++)
            if (isspace((unsigned char)*c) || iscntrl((unsigned char)*c))
                bad = c;
        if (bad) {
            snprintf(why, why_len, "line %d: a token must not contain spaces or control characters (one token a line)",
                     line);
            config_tokens_free(tokens);
            return -EINVAL;
        }
        if (s < e && *s != '#') {
            if (n == CONFIG_MAX_TOKENS) {
                snprintf(why, why_len, "line %d: too many tokens (at most %d)", line, CONFIG_MAX_TOKENS);
                config_tokens_free(tokens);
                return -EINVAL;
            }
            config_tokens_add(&tokens, &n, s, (size_t)(e - s));
        }
        s = nl ? nl + 1 : end;
    }
    *out = tokens;
    return 0;
}

/* Whether auth_token's tokens are accepted. Its default (-, Grafana's own
 * default, also when the embedded default file writes it) stands only when
 * no file is given: an operator who sets a file means its tokens, not
 * theirs and -. Asked by config_check_tokens and config_print alike. */
static bool config_inline_used(const struct config *cfg)
{
    const struct config_source *src = &cfg->sources[config_key_index("renderer", "auth_token")];
    return src->from != CONFIG_FROM_DEFAULT || !cfg->renderer.auth_token_file[0];
}

/* Every token a render may carry: auth_token's (config_inline_used) and
 * the file's. */
static void config_check_tokens(struct config_parser *p, struct config *cfg)
{
    struct config_entry *inl = &p->entries[config_key_index("renderer", "auth_token")];
    struct config_entry *file = &p->entries[config_key_index("renderer", "auth_token_file")];
    if (inl->broken || file->broken)
        return;
    char **tokens = NULL;
    size_t n = 0;
    bool have_file = cfg->renderer.auth_token_file[0] != '\0';
    if (config_inline_used(cfg))
        config_tokens_add(&tokens, &n, cfg->renderer.auth_token, strlen(cfg->renderer.auth_token));
    if (have_file) {
        char why[512], reason[384], *text;
        size_t len;
        char **more = NULL;
        int rc = secretfile_read(cfg->renderer.auth_token_file, 1, CONFIG_MAX_TOKEN_FILE, &text, &len, reason,
                                 sizeof(reason));
        if (rc < 0) /* secretfile says what is wrong, not with which file */
            snprintf(why, sizeof(why), "%.120s: %s", cfg->renderer.auth_token_file, reason);
        if (rc == 0)
            rc = config_parse_token_file(text, len, &more, why, sizeof(why));
        free(text);
        if (rc == 0 && !more) {
            snprintf(why, sizeof(why), "%s holds no token", cfg->renderer.auth_token_file);
            rc = -EINVAL;
        }
        if (rc < 0) {
            config_error(p, file->line, "renderer", "auth_token_file", "%s", why);
            file->broken = true;
        }
        for (size_t i = 0; more && more[i]; i++) {
            tokens = xreallocarray(tokens, n + 2, sizeof(*tokens));
            tokens[n++] = more[i];
            tokens[n] = NULL;
        }
        free(more);
    }
    if (file->broken) {
        config_tokens_free(tokens);
        return;
    }
    cfg->renderer.tokens = tokens;
}

/* ---- the environment ---------------------------------------------------------- */

void config_env_name(const char *section, const char *name, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, CONFIG_ENV_PREFIX "%s_%s", section, name);
    for (size_t i = 0; i < n && i < len; i++)
        buf[i] = (char)toupper((unsigned char)buf[i]);
}

void config_where(const struct config *cfg, const char *section, const char *name, char *buf, size_t len)
{
    if (cfg->sources[config_key_index(section, name)].from == CONFIG_FROM_ENV) {
        char var[128];
        config_env_name(section, name, var, sizeof(var));
        snprintf(buf, len, "env=%s", var);
    } else {
        snprintf(buf, len, "file=%s", cfg->path);
    }
}

/* A RENDERVISOR_ variable that names no key is a mistake, as an unknown key
 * in the file is: a typo would otherwise leave the default in place. */
static void config_env_unknown(struct config_parser *p, const char *var)
{
    const char *rest = var + strlen(CONFIG_ENV_PREFIX);
    const char *us = strchr(rest, '_');
    char section[64] = "";
    if (us && (size_t)(us - rest) < sizeof(section))
        for (size_t i = 0; rest + i < us; i++)
            section[i] = (char)tolower((unsigned char)rest[i]);
    if (!config_section_known(section)) {
        char names[256] = "";
        size_t used = 0;
        for (size_t i = 0; i < CONFIG_ARRAY_SIZE(config_sections) && used < sizeof(names); i++)
            used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s", i ? ", " : "", config_sections[i]);
        for (char *c = names; *c; c++)
            *c = (char)toupper((unsigned char)*c);
        config_error(p, CONFIG_LINE_ENV, NULL, var,
                     "names no section; expected " CONFIG_ENV_PREFIX "<SECTION>_<KEY> with SECTION one of %s",
                     names);
        return;
    }
    char known[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < CONFIG_NKEYS && used < sizeof(known); i++)
        if (strcmp(config_keys[i].section, section) == 0) {
            char name[96];
            config_env_name(section, config_keys[i].name, name, sizeof(name));
            used += (size_t)snprintf(known + used, sizeof(known) - used, "%s%s", used ? ", " : "",
                                     name + strlen(CONFIG_ENV_PREFIX) + strlen(section) + 1);
        }
    config_error(p, CONFIG_LINE_ENV, NULL, var, "unknown key in [%s] (known: %s; upper case)", section, known);
}

/* The environment over the file: each variable replaces the file's value of
 * its key (which is then not checked at all). */
static void config_read_env(struct config_parser *p, char *const *env)
{
    size_t plen = strlen(CONFIG_ENV_PREFIX);
    for (size_t v = 0; env && env[v]; v++) {
        const char *eq = strchr(env[v], '=');
        if (strncmp(env[v], CONFIG_ENV_PREFIX, plen) != 0 || !eq)
            continue;
        size_t nlen = (size_t)(eq - env[v]);
        char var[128];
        if (nlen >= sizeof(var)) {
            snprintf(var, sizeof(var), "%.*s...", (int)(sizeof(var) - 4), env[v]);
            config_error(p, CONFIG_LINE_ENV, NULL, var, "names no key (too long)");
            continue;
        }
        memcpy(var, env[v], nlen);
        var[nlen] = '\0';
        size_t i = 0;
        for (; i < CONFIG_NKEYS; i++) {
            char name[128];
            config_env_name(config_keys[i].section, config_keys[i].name, name, sizeof(name));
            if (strcmp(name, var) == 0)
                break;
        }
        if (i == CONFIG_NKEYS) {
            config_env_unknown(p, var);
            continue;
        }
        struct config_entry *e = &p->entries[i];
        free(e->value);
        e->value = xstrdup(eq + 1);
        e->line = CONFIG_LINE_ENV;
        e->broken = false;
    }
}

/* ---- checking ------------------------------------------------------------------ */

static void config_check(struct config_parser *p, struct config *cfg)
{
    cfg->sources = xcalloc(CONFIG_NKEYS, sizeof(*cfg->sources));
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const struct config_key *k = &config_keys[i];
        struct config_entry *e = &p->entries[i];
        struct config_source *src = &cfg->sources[i];
        char why[256];

        if (!e->line) {
            char *value = k->fallback ? NULL : config_default_value(i);
            if (config_apply(cfg, k, value ? value : k->fallback, why, sizeof(why)) < 0)
                abort(); /* the table above is wrong */
            src->from = CONFIG_FROM_DEFAULT;
            src->text = value ? value : xstrdup(k->fallback);
            continue;
        }
        src->from = e->line == CONFIG_LINE_ENV ? CONFIG_FROM_ENV : p->embedded ? CONFIG_FROM_DEFAULT : CONFIG_FROM_FILE;
        src->line = src->from == CONFIG_FROM_FILE ? e->line : 0;
        src->text = xstrdup(e->value ? e->value : "");
        if (e->broken)
            continue;
        if (config_apply(cfg, k, e->value, why, sizeof(why)) < 0) {
            char shown[80];
            config_quote(k, e->value, shown, sizeof(shown));
            config_error(p, e->line, k->section, k->name, "invalid value%s: %s", shown, why);
            e->broken = true;
        }
    }
    config_check_tokens(p, cfg);
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

static struct config *config_parse(const char *text, size_t len, const char *name, bool embedded,
                                   char *const *env, char **errors)
{
    /* The supervisor without --config writes the embedded default out for
     * its children: that file's values are the defaults for them as well. */
    embedded = embedded || (len == config_default_ini_len && memcmp(text, config_default_ini, len) == 0);
    struct config_parser p = { .name = name, .embedded = embedded,
                               .entries = xcalloc(CONFIG_NKEYS, sizeof(*p.entries)) };
    config_read(&p, text, len);
    config_read_env(&p, env);

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
    free(p.errors);
    for (size_t i = 0; i < CONFIG_NKEYS; i++)
        free(p.entries[i].value);
    free(p.entries);
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
    return config_parse(text, len, name, false, NULL, errors);
}

/* The file's bytes into *buf (*len of them), or NULL with *errors set. */
static char *config_read_file(const char *path, size_t *out_len, char **errors)
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
    *out_len = len;
    return buf;
}

struct config *config_load(const char *path, char *const *env, char **errors)
{
    if (!path)
        return config_parse(config_default_ini, config_default_ini_len, "(default)", true, env, errors);
    size_t len;
    char *buf = config_read_file(path, &len, errors);
    if (!buf)
        return NULL;
    struct config *cfg = config_parse(buf, len, path, false, env, errors);
    free(buf);
    return cfg;
}

struct config *config_load_file(const char *path, char **errors)
{
    return config_load(path, NULL, errors);
}

struct config *config_load_default(void)
{
    char *errors = NULL;
    struct config *cfg = config_parse(config_default_ini, config_default_ini_len, "(default)", true, NULL, &errors);
    if (!cfg) {
        /* A build that ships a broken default cannot do anything sensible. */
        fprintf(stderr, "level=error msg=\"the embedded default config is invalid\"\n%s", errors);
        abort();
    }
    return cfg;
}

/* ---- what --check-config --print shows ----------------------------------------- */

size_t config_key_count(void)
{
    return CONFIG_NKEYS;
}

void config_key_name(size_t i, const char **section, const char **name)
{
    *section = config_keys[i].section;
    *name = config_keys[i].name;
}

static size_t config_count_tokens(char **tokens)
{
    size_t n = 0;
    while (tokens && tokens[n])
        n++;
    return n;
}

/* How many tokens of auth_token's text are in use: none when it is the
 * default beside a token file (config_inline_used). */
static size_t config_inline_tokens(const struct config *cfg, bool *used)
{
    *used = config_inline_used(cfg);
    if (!*used)
        return 0;
    char **words = NULL;
    size_t n = 0;
    config_tokens_add(&words, &n, cfg->renderer.auth_token, strlen(cfg->renderer.auth_token));
    config_tokens_free(words);
    return n;
}

void config_print(const struct config *cfg, FILE *out)
{
    const char *section = NULL;
    size_t token_file = config_key_index("renderer", "auth_token_file");
    bool used;
    size_t n = config_inline_tokens(cfg, &used);
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const struct config_key *k = &config_keys[i];
        const struct config_source *src = &cfg->sources[i];
        if (!section || strcmp(section, k->section) != 0) {
            fprintf(out, "%s[%s]\n", section ? "\n" : "", k->section);
            section = k->section;
        }
        char from[512];
        if (src->from == CONFIG_FROM_ENV) {
            char var[128];
            config_env_name(k->section, k->name, var, sizeof(var));
            snprintf(from, sizeof(from), "env %s", var);
        } else if (src->from == CONFIG_FROM_FILE) {
            snprintf(from, sizeof(from), "%s:%d", cfg->path, src->line);
        } else {
            snprintf(from, sizeof(from), "default");
        }
        if (k->kind == CONFIG_KIND_TOKEN && used) {
            fprintf(out, "%s = (%zu token%s, hidden) ; %s\n", k->name, n, n == 1 ? "" : "s", from);
        } else if (k->kind == CONFIG_KIND_TOKEN) {
            fprintf(out, "%s = (unused: auth_token_file is set) ; %s\n", k->name, from);
        } else if (i == token_file && src->text[0]) {
            size_t in_file = config_count_tokens(cfg->renderer.tokens) - n;
            fprintf(out, "%s = %s ; %s, %zu token%s\n", k->name, src->text, from, in_file, in_file == 1 ? "" : "s");
        } else {
            fprintf(out, "%s = %s ; %s\n", k->name, src->text, from);
        }
    }
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
        case CONFIG_KIND_FILE:
        case CONFIG_KIND_URL:
        case CONFIG_KIND_NAME:
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
    if (cfg->sources)
        for (size_t i = 0; i < CONFIG_NKEYS; i++)
            free(cfg->sources[i].text);
    free(cfg->sources);
    config_tokens_free(cfg->renderer.tokens);
    free(cfg->path);
    free(cfg);
}

