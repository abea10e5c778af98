/* Turning the config into child specs. Kept apart from the loop so that the
 * question "does this reload restart that child?" is answered by comparing
 * two strings, and can be tested without starting anything. */
#include "spec.h"

#include <errno.h>
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

static void spec_buckets_text(char *buf, size_t size, const struct config_buckets *b)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < b->count && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%.17g", i ? " " : "", b->bounds[i]);
}

/* settings with the renderer's allowed_hosts appended (settings is freed). */
static char *spec_add_hosts(char *settings, char *const *hosts)
{
    char *out = xasprintf("%sallowed_hosts=", settings);
    free(settings);
    for (size_t i = 0; hosts && hosts[i]; i++) {
        char *more = xasprintf("%s%s%s", out, i ? " " : "", hosts[i]);
        free(out);
        out = more;
    }
    settings = xasprintf("%s\n", out);
    free(out);
    return settings;
}

struct child_spec *spec_build(const struct config *cfg, const char *config_path, size_t *count)
{
    size_t n = 2 + cfg->browsers.count;
    struct child_spec *specs = xcalloc(n, sizeof(*specs));
    size_t k = 0;
    char reqb[512], stepb[512];
    char *settings;

    /* The exporter: its sockets, buckets and the children it reports on. */
    struct child_spec *s = &specs[k++];
    snprintf(s->name, sizeof(s->name), NAMES_CHILD_EXPORTER);
    s->role = SPEC_ROLE_EXPORTER;
    spec_command(&s->command, &cfg->exporter.command, "--config", config_path, (char *)NULL);
    s->memory_limit = cfg->exporter.memory_limit;
    spec_buckets_text(reqb, sizeof(reqb), &cfg->exporter.request_buckets);
    spec_buckets_text(stepb, sizeof(stepb), &cfg->exporter.step_buckets);
    /* The browsers' count is there because the exporter serves one series
     * per child: a browser that leaves the config leaves /metrics. */
    settings = xasprintf("listen=%s\nsocket=%s\ningest=%s\nrequest_buckets=%s\nstep_buckets=%s\nbrowsers=%u\n",
                         cfg->exporter.listen, cfg->exporter.socket, cfg->exporter.ingest, reqb, stepb,
                         cfg->browsers.count);
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
    settings = xasprintf("listen=%s\nauth_token=%s\nconcurrency=%u\nrender_memory=%llu\nmemory_budget=%llu\n"
                         "browsers=%u\nport_base=%u\ndevtools=%d\nsocket=%s\ningest=%s\ntimezone=%s\n",
                         cfg->renderer.listen, cfg->renderer.auth_token, cfg->renderer.concurrency,
                         (unsigned long long)cfg->renderer.render_memory,
                         (unsigned long long)cfg->renderer.memory_budget, cfg->browsers.count,
                         cfg->browsers.port_base, (int)cfg->browsers.devtools, cfg->exporter.socket,
                         cfg->exporter.ingest,
                         cfg->renderer.timezone);
    settings = spec_add_hosts(settings, cfg->renderer.allowed_hosts);
    char *limits = xasprintf("%sconnections_per_address=%u\ndrain_timeout_ms=%lld\n", settings,
                             cfg->renderer.connections_per_address,
                             (long long)(cfg->renderer.drain_timeout_ns / CLOCK_NS_PER_MS));
    free(settings);
    settings = limits;
    /* [tracing]: the renderer's exporter thread reads it at start. */
    char *tracing = xasprintf("%stracing_endpoint=%s\ntracing_service_name=%s\ntracing_sample_ratio=%.17g\n"
                              "tracing_timeout_ms=%lld\n",
                              settings, cfg->tracing.endpoint, cfg->tracing.service_name, cfg->tracing.sample_ratio,
                              (long long)(cfg->tracing.timeout_ns / CLOCK_NS_PER_MS));
    free(settings);
    settings = tracing;
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
