/* Turning the config into child specs. Kept apart from the loop so that the
 * question "does this reload restart that child?" is answered by comparing
 * two strings, and can be tested without starting anything. */
#include "spec.h"

#include <errno.h>
#include <stdbool.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "hostcheck.h"
#include "names.h"
#include "xalloc.h"

/* Copy cmd and append extra words (NULL-terminated list). */
static void spec_command(struct config_command *dst, const struct config_command *cmd, ...)
{
    va_list ap;
    int extra = 0;
    va_start(ap, cmd);
    while (va_arg(ap, const char *))
        extra++;
    va_end(ap);

    dst->argc = cmd->argc + extra;
    dst->argv = xcalloc((size_t)dst->argc + 1, sizeof(char *));
    for (int i = 0; i < cmd->argc; i++)
        dst->argv[i] = xstrdup(cmd->argv[i]);
    va_start(ap, cmd);
    for (int i = cmd->argc; i < dst->argc; i++)
        dst->argv[i] = xstrdup(va_arg(ap, const char *));
    va_end(ap);
}

/* One more word at the end of dst. */
static void spec_append_word(struct config_command *dst, char *word)
{
    dst->argv = xrealloc(dst->argv, ((size_t)dst->argc + 2) * sizeof(char *));
    dst->argv[dst->argc++] = word;
    dst->argv[dst->argc] = NULL;
}

/* [renderer] allowed_hosts for every connection of the browser, WebSockets
 * included, which the renderer's Fetch interception never sees: hosts off
 * the list (or link-local ones, with none) do not resolve. Last, so it
 * wins over one in the operator's command (Chromium takes the last). */
static char *spec_browser_resolver(const struct config *cfg)
{
    struct buf rules;
    buf_init(&rules);
    buf_puts(&rules, "--host-resolver-rules=");
    hostcheck_resolver_rules((const char *const *)cfg->renderer.allowed_hosts, &rules);
    return rules.data; /* taken over from the buf */
}

/* Chromium writes every console message of every page to its stderr
 * ("[...:INFO:CONSOLE:5] \"text\", source: URL (5)"), which the supervisor
 * relays: the page's own words, and its URL with the query, where Grafana
 * puts the render key. The renderer's page log says the same with the key
 * redacted (renderer/pagelog.h), so the browsers' copy is turned off, by
 * the feature that makes it (checked with chromium-headless-shell 156: no
 * --log-level stops it). Chromium reads the last --disable-features, so an
 * operator's own list gets the feature added to it rather than replaced. */
#define SPEC_CONSOLE_FEATURE "LogJsConsoleMessages"

static void spec_browser_console_off(struct config_command *cmd)
{
    int last = -1;
    for (int i = 1; i < cmd->argc; i++) {
        const char *w = cmd->argv[i];
        if (w[0] == '-' && w[1] == '-')
            w++;
        if (strncmp(w, "-disable-features=", 18) == 0)
            last = i;
    }
    if (last < 0) {
        spec_append_word(cmd, xstrdup("--disable-features=" SPEC_CONSOLE_FEATURE));
        return;
    }
    const char *list = strchr(cmd->argv[last], '=') + 1;
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        if (n == strlen(SPEC_CONSOLE_FEATURE) && strncmp(p, SPEC_CONSOLE_FEATURE, n) == 0)
            return;
        p += n + (p[n] == ',');
    }
    char *word = xasprintf("%s%s" SPEC_CONSOLE_FEATURE, cmd->argv[last], *list ? "," : "");
    free(cmd->argv[last]);
    cmd->argv[last] = word;
}

/* The fingerprint starts with the command line, one word per line, then the
 * role's other settings. */
static char *spec_fingerprint(const struct config_command *cmd, const char *settings)
{
    size_t len = strlen(settings) + 1;
    for (int i = 0; i < cmd->argc; i++)
        len += strlen(cmd->argv[i]) + 1;
    char *fp = xmalloc(len);
    char *p = fp;
    for (int i = 0; i < cmd->argc; i++) {
        size_t n = strlen(cmd->argv[i]);
        memcpy(p, cmd->argv[i], n);
        p[n] = '\n';
        p += n + 1;
    }
    memcpy(p, settings, strlen(settings) + 1);
    return fp;
}

/* Keys a running child applies in place when the supervisor passes SIGHUP
 * on after a reload (supervisor_reload.c): a change of these alone
 * restarts nobody, so a token, a certificate or the page log changes
 * without a drain.
 * The one list of them; the children's SIGHUP handlers apply them.
 * toggle: only a new value is applied in place; a key going from empty to
 * set or back still restarts the child (TLS on a listener that had none
 * needs a new listener). */
static const struct {
    const char *section, *name;
    bool toggle;
} spec_hot_keys[] = {
    { "renderer", "auth_token", false },
    { "renderer", "auth_token_file", false },
    { "renderer", "log_page", false },
    { "renderer", "tls_cert", true },
    { "renderer", "tls_key", true },
    { "exporter", "tls_cert", true },
    { "exporter", "tls_key", true },
};

/* The entry of section.name in spec_hot_keys, or -1. */
static int spec_hot_index(const char *section, const char *name)
{
    for (size_t i = 0; i < sizeof(spec_hot_keys) / sizeof(spec_hot_keys[0]); i++)
        if (strcmp(spec_hot_keys[i].section, section) == 0 && strcmp(spec_hot_keys[i].name, name) == 0)
            return (int)i;
    return -1;
}

bool spec_key_hot(const char *section, const char *name)
{
    return spec_hot_index(section, name) >= 0;
}

/* Keys of a child's section that are the supervisor's business, not the
 * child's: its command (already first in the fingerprint) and its memory
 * limit, which the supervisor enforces from outside. */
static bool spec_key_own(const char *name)
{
    return strcmp(name, "command") == 0 || strcmp(name, "memory_limit") == 0;
}

/* "key=value" lines of every key of section the child reads at start (not
 * hot, not the supervisor's), as the config gives them, and of the keys of
 * other sections in also (NULL-terminated "section", "key" pairs; key "*":
 * all of that section's). A key added to the section later is in its
 * child's fingerprint by itself. */
static char *spec_settings(const struct config *cfg, const char *section, const char *const *also)
{
    struct buf out;
    buf_init(&out);
    for (size_t i = 0; i < config_key_count(); i++) {
        const char *sec, *name;
        config_key_name(i, &sec, &name);
        int hot = spec_hot_index(sec, name);
        bool wanted = strcmp(sec, section) == 0 && !spec_key_own(name);
        for (size_t j = 0; also[j] && !wanted; j += 2)
            wanted = strcmp(also[j], sec) == 0 && (strcmp(also[j + 1], "*") == 0 || strcmp(also[j + 1], name) == 0);
        if (!wanted || (hot >= 0 && !spec_hot_keys[hot].toggle))
            continue;
        if (hot >= 0) {
            buf_printf(&out, "%s.%s=%s\n", sec, name, cfg->sources[i].text[0] ? "(set)" : "(empty)");
            continue;
        }
        buf_puts(&out, sec);
        buf_puts(&out, ".");
        buf_puts(&out, name);
        buf_puts(&out, "=");
        /* The zone as the renderer takes it: "browser", "default" and ""
         * are one and the same. */
        if (strcmp(sec, "renderer") == 0 && strcmp(name, "timezone") == 0)
            buf_puts(&out, cfg->renderer.timezone);
        else
            buf_puts(&out, cfg->sources[i].text);
        buf_puts(&out, "\n");
    }
    size_t len;
    char *text = buf_steal(&out, &len);
    return text ? text : xstrdup("");
}

struct child_spec *spec_build(const struct config *cfg, const char *config_path, size_t *count)
{
    size_t n = 2 + cfg->browsers.count;
    struct child_spec *specs = xcalloc(n, sizeof(*specs));
    size_t k = 0;
    char *settings;

    /* The exporter: its sockets, buckets and the children it reports on. */
    struct child_spec *s = &specs[k++];
    snprintf(s->name, sizeof(s->name), NAMES_CHILD_EXPORTER);
    s->role = SPEC_ROLE_EXPORTER;
    spec_command(&s->command, &cfg->exporter.command, "--config", config_path, (char *)NULL);
    s->memory_limit = cfg->exporter.memory_limit;
    /* The browsers' count is there because the exporter serves one series
     * per child: a browser that leaves the config leaves /metrics. */
    static const char *const exporter_also[] = { "browsers", "count", NULL };
    settings = spec_settings(cfg, "exporter", exporter_also);
    s->fingerprint = spec_fingerprint(&s->command, settings);
    free(settings);

    for (unsigned i = 0; i < cfg->browsers.count; i++) {
        s = &specs[k++];
        snprintf(s->name, sizeof(s->name), NAMES_CHILD_BROWSER_FMT, i);
        s->role = SPEC_ROLE_BROWSER;
        s->index = i;
        s->fresh_dir = xasprintf("%s/%s.profile", cfg->supervisor.runtime_dir, s->name);
        char *dirarg = xasprintf("--user-data-dir=%s", s->fresh_dir);
        if (cfg->browsers.devtools == CONFIG_DEVTOOLS_PIPE) {
            /* No port at all: CDP on the fds 3 and 4 spawn_child gives it.
             * (Config validation refused a port switch in the command.) */
            s->devtools_pipe = 1;
            spec_command(&s->command, &cfg->browsers.command, "--remote-debugging-pipe", dirarg, (char *)NULL);
        } else {
            char port[48];
            snprintf(port, sizeof(port), "--remote-debugging-port=%u", cfg->browsers.port_base + i);
            /* After the operator's words: Chromium takes the last of a
             * repeated switch, so no command can open DevTools beyond
             * loopback. */
            spec_command(&s->command, &cfg->browsers.command, port, "--remote-debugging-address=127.0.0.1",
                         dirarg, (char *)NULL);
        }
        free(dirarg);
        spec_append_word(&s->command, spec_browser_resolver(cfg));
        spec_browser_console_off(&s->command);
        s->memory_limit = cfg->browsers.memory_limit;
        s->fingerprint = spec_fingerprint(&s->command, "");
        /* Asked of the renderer, which hears from it (or of /proc). */
        s->health = 1;
    }

    /* The renderer finds the browsers and the exporter through the config,
     * so those settings are part of what it depends on. */
    s = &specs[k++];
    snprintf(s->name, sizeof(s->name), NAMES_CHILD_RENDERER);
    s->role = SPEC_ROLE_RENDERER;
    spec_command(&s->command, &cfg->renderer.command, "--config", config_path, (char *)NULL);
    s->memory_limit = cfg->renderer.memory_limit;
    static const char *const renderer_also[] = { "browsers", "count", "browsers", "port_base", "browsers",
                                                  "devtools", "exporter", "socket", "exporter", "ingest",
                                                  /* the renderer's OpenTelemetry export */
                                                  "tracing", "*", NULL };
    settings = spec_settings(cfg, "renderer", renderer_also);
    s->fingerprint = spec_fingerprint(&s->command, settings);
    free(settings);
    s->health = 1;

    /* Every child runs as [supervisor] user; it cannot change while running
     * (the supervisor keeps the first one on a reload). */
    for (size_t i = 0; i < k; i++)
        specs[i].user = cfg->supervisor.user && cfg->supervisor.user[0] ? xstrdup(cfg->supervisor.user) : NULL;
    *count = k;
    return specs;
}

static void spec_fini(struct child_spec *s)
{
    config_command_fini(&s->command);
    free(s->fresh_dir);
    free(s->user);
    free(s->fingerprint);
    memset(s, 0, sizeof(*s));
}

void spec_free(struct child_spec *specs, size_t count)
{
    if (!specs)
        return;
    for (size_t i = 0; i < count; i++)
        spec_fini(&specs[i]);
    free(specs);
}

void spec_move(struct child_spec *dst, struct child_spec *src)
{
    spec_fini(dst);
    *dst = *src;
    memset(src, 0, sizeof(*src));
}

/* Chromium's sandbox: user, pid and net namespaces around its zygote, and
 * seccomp-bpf in its renderers. Chromium will not start as root without
 * --no-sandbox, and as any other user the sandbox needs no help from us. */

/* The word in cmd that turns the sandbox off, or NULL. Chromium takes its
 * switches with one dash or two, and ignores a value after '='. */
static const char *spec_no_sandbox_word(const struct config_command *cmd)
{
    for (int i = 1; i < cmd->argc; i++) {
        const char *w = cmd->argv[i];
        if (w[0] == '-' && w[1] == '-')
            w++;
        if (strncmp(w, "-no-sandbox", 11) == 0 && (w[11] == '\0' || w[11] == '='))
            return cmd->argv[i];
    }
    return NULL;
}

enum spec_sandbox spec_sandbox(const struct config_command *cmd, uid_t browsers_uid)
{
    if (browsers_uid == 0)
        return SPEC_SANDBOX_OFF_ROOT;
    return spec_no_sandbox_word(cmd) ? SPEC_SANDBOX_OFF_COMMAND : SPEC_SANDBOX_ON;
}

int spec_browsers_uid(const struct config *cfg, uid_t euid, uid_t *uid)
{
    const char *user = cfg->supervisor.user;
    *uid = euid;
    /* Not root: the config has checked that user, if set, is us. */
    if (euid != 0 || !user || !user[0])
        return 0;
    struct passwd *pw = getpwnam(user);
    if (!pw)
        return -ENOENT;
    *uid = pw->pw_uid;
    return 0;
}

void spec_sandbox_apply(struct child_spec *specs, size_t count, enum spec_sandbox sandbox)
{
    if (sandbox != SPEC_SANDBOX_OFF_ROOT)
        return;
    for (size_t i = 0; i < count; i++) {
        struct child_spec *s = &specs[i];
        if (s->role != SPEC_ROLE_BROWSER || spec_no_sandbox_word(&s->command))
            continue;
        /* The fingerprint stays: who the browsers run as is fixed for the
         * supervisor's life, so the word is the same before and after any
         * reload. */
        s->command.argv = xreallocarray(s->command.argv, (size_t)s->command.argc + 2, sizeof(char *));
        s->command.argv[s->command.argc++] = xstrdup("--no-sandbox");
        s->command.argv[s->command.argc] = NULL;
    }
}
