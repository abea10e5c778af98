/* Child specs from a config: names, start order, appended arguments, and the
 * fingerprints that decide which children a reload restarts. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "spec.h"

static const char *base =
    "[supervisor]\n"
    "runtime_dir = /run/rvtest\n"
    "[exporter]\n"
    "command = rendervisor-exporter --verbose\n"
    "memory_limit = 64M\n"
    "[renderer]\n"
    "command = rendervisor-renderer\n"
    "[browsers]\n"
    "count = 2\n"
    "command = chromium --headless 'a b'\n"
    "port_base = 9300\n"
    "memory_limit = 1G\n";

static struct config *load(const char *text)
{
    char *errors = NULL;
    struct config *cfg = config_load_string(text, "test.ini", &errors);
    if (!cfg)
        fail_msg("config did not load: %s", errors);
    return cfg;
}

/* base with one line replaced */
static char *with(const char *from, const char *to)
{
    const char *at = strstr(base, from);
    assert_non_null(at);
    size_t n = strlen(base) - strlen(from) + strlen(to) + 1;
    char *s = malloc(n);
    memcpy(s, base, (size_t)(at - base));
    strcpy(s + (at - base), to);
    strcat(s, at + strlen(from));
    return s;
}

static void test_order_names_and_arguments(void **state)
{
    (void)state;
    struct config *cfg = load(base);
    size_t n = 0;
    struct child_spec *s = spec_build(cfg, "/etc/rv.ini", &n);
    assert_int_equal(n, 4);
    assert_string_equal(s[0].name, "exporter");
    assert_string_equal(s[1].name, "browser-0");
    assert_string_equal(s[2].name, "browser-1");
    assert_string_equal(s[3].name, "renderer");
    assert_int_equal(s[0].role, SPEC_ROLE_EXPORTER);
    assert_int_equal(s[2].role, SPEC_ROLE_BROWSER);
    assert_int_equal(s[3].role, SPEC_ROLE_RENDERER);
    /* a browser's index is carried, for its pipes, probes and drains */
    assert_int_equal(s[1].index, 0);
    assert_int_equal(s[2].index, 1);

    assert_int_equal(s[0].command.argc, 4);
    assert_string_equal(s[0].command.argv[0], "rendervisor-exporter");
    assert_string_equal(s[0].command.argv[1], "--verbose");
    assert_string_equal(s[0].command.argv[2], "--config");
    assert_string_equal(s[0].command.argv[3], "/etc/rv.ini");
    assert_null(s[0].command.argv[4]);
    assert_int_equal(s[0].memory_limit, 64ULL << 20);
    assert_null(s[0].fresh_dir);

    /* devtools = pipe (the default): the pipe switch, no port */
    assert_int_equal(s[2].command.argc, 7);
    assert_string_equal(s[2].command.argv[2], "a b");
    assert_string_equal(s[2].command.argv[3], "--remote-debugging-pipe");
    assert_string_equal(s[2].command.argv[4], "--user-data-dir=/run/rvtest/browser-1.profile");
    /* no allowed_hosts: link-local and metadata addresses do not resolve */
    assert_string_equal(s[2].command.argv[5],
                        "--host-resolver-rules=MAP 169.254.* ~NOTFOUND, MAP fe8?:* ~NOTFOUND, MAP fe9?:* ~NOTFOUND, "
                        "MAP fea?:* ~NOTFOUND, MAP feb?:* ~NOTFOUND, MAP ::ffff:a9fe:* ~NOTFOUND, "
                        "MAP 64:ff9b::a9fe:* ~NOTFOUND, MAP fd00:ec2::254 ~NOTFOUND");
    /* the browsers do not copy the pages' console to their stderr */
    assert_string_equal(s[2].command.argv[6], "--disable-features=LogJsConsoleMessages");
    assert_null(s[2].command.argv[7]);
    assert_true(s[1].devtools_pipe && s[2].devtools_pipe);
    assert_false(s[0].devtools_pipe || s[3].devtools_pipe);
    /* health over the control socket, whatever the transport */
    assert_true(s[1].health && s[2].health && s[3].health);
    assert_false(s[0].health);
    assert_string_equal(s[2].fresh_dir, "/run/rvtest/browser-1.profile");
    assert_int_equal(s[2].memory_limit, 1ULL << 30);

    assert_string_equal(s[3].command.argv[1], "--config");
    assert_int_equal(s[3].memory_limit, 0);
    for (size_t i = 0; i < n; i++)
        assert_null(s[i].user);
    spec_free(s, n);
    config_free(cfg);
}

/* The console copy off: an operator's own --disable-features (the last,
 * which Chromium reads) gets the feature added, once. */
static void test_browser_console_off(void **state)
{
    (void)state;
    static const struct {
        const char *command, *want;
        int at; /* where the list is, from the end */
    } cases[] = {
        { "command = chromium --disable-features=A,B --x\n", "--disable-features=A,B,LogJsConsoleMessages", 5 },
        { "command = chromium -disable-features=A --disable-features=B\n", "--disable-features=B,LogJsConsoleMessages", 4 },
        { "command = chromium --disable-features=LogJsConsoleMessages,C\n",
          "--disable-features=LogJsConsoleMessages,C", 4 },
        { "command = chromium --disable-features=\n", "--disable-features=LogJsConsoleMessages", 4 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *text = with("command = chromium --headless 'a b'\n", cases[i].command);
        struct config *cfg = load(text);
        size_t n;
        struct child_spec *s = spec_build(cfg, "/etc/rv.ini", &n);
        int argc = s[1].command.argc;
        assert_string_equal(s[1].command.argv[argc - cases[i].at], cases[i].want);
        for (int k = 0; k < argc; k++)
            assert_false(strcmp(s[1].command.argv[k], "--disable-features=LogJsConsoleMessages") == 0 &&
                         strcmp(cases[i].want, "--disable-features=LogJsConsoleMessages") != 0);
        spec_free(s, n);
        config_free(cfg);
        free(text);
    }
}

/* devtools = port: the loopback port switches; probed as over pipes. */
static void test_devtools_port(void **state)
{
    (void)state;
    char *text = with("port_base = 9300\n", "port_base = 9300\ndevtools = port\n");
    struct config *cfg = load(text);
    size_t n = 0;
    struct child_spec *s = spec_build(cfg, "/etc/rv.ini", &n);
    assert_int_equal(s[2].command.argc, 8);
    assert_string_equal(s[2].command.argv[3], "--remote-debugging-port=9301");
    assert_string_equal(s[2].command.argv[4], "--remote-debugging-address=127.0.0.1");
    assert_string_equal(s[2].command.argv[5], "--user-data-dir=/run/rvtest/browser-1.profile");
    assert_true(strncmp(s[2].command.argv[6], "--host-resolver-rules=", 22) == 0);
    assert_string_equal(s[1].command.argv[3], "--remote-debugging-port=9300");
    assert_false(s[1].devtools_pipe || s[2].devtools_pipe);
    assert_true(s[1].health && s[2].health);
    spec_free(s, n);
    config_free(cfg);
    free(text);
}

/* Which children a change of `from` to `to` would restart, as a bit mask in
 * the old start order (exporter, browser-0, browser-1, renderer); children
 * are matched by name, as a reload matches them. */
static unsigned changed_texts(const char *text_a, const char *text_b)
{
    struct config *a = load(text_a);
    struct config *b = load(text_b);
    size_t na, nb;
    struct child_spec *sa = spec_build(a, "/etc/rv.ini", &na);
    struct child_spec *sb = spec_build(b, "/etc/rv.ini", &nb);
    unsigned mask = 0;
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++)
            if (strcmp(sa[i].name, sb[j].name) == 0 && strcmp(sa[i].fingerprint, sb[j].fingerprint) != 0)
                mask |= 1u << i;
    spec_free(sa, na);
    spec_free(sb, nb);
    config_free(a);
    config_free(b);
    return mask;
}

static unsigned changed(const char *from, const char *to)
{
    char *text = with(from, to);
    unsigned mask = changed_texts(base, text);
    free(text);
    return mask;
}

/* TLS on or off restarts the listener's child; other files (a new
 * certificate's path) are re-read on SIGHUP without a restart. */
static void test_tls_on_off_restarts_other_files_do_not(void **state)
{
    (void)state;
    static const char ren[] = "command = rendervisor-renderer\n", exp[] = "memory_limit = 64M\n";
    assert_int_equal(changed(ren, "command = rendervisor-renderer\ntls_cert = /c\ntls_key = /k\n"), 8);
    assert_int_equal(changed(exp, "memory_limit = 64M\ntls_cert = /c\ntls_key = /k\n"), 1);
    char *a = with(ren, "command = rendervisor-renderer\ntls_cert = /c\ntls_key = /k\n");
    char *b = with(ren, "command = rendervisor-renderer\ntls_cert = /c2\ntls_key = /k2\n");
    assert_int_equal(changed_texts(a, b), 0);
    free(a);
    free(b);
    a = with(exp, "memory_limit = 64M\ntls_cert = /c\ntls_key = /k\n");
    b = with(exp, "memory_limit = 64M\ntls_cert = /c2\ntls_key = /k\n");
    assert_int_equal(changed_texts(a, b), 0);
    free(a);
    free(b);
}

static void test_fingerprints(void **state)
{
    (void)state;
    /* nothing changed, or only a memory limit: no restart */
    assert_int_equal(changed("memory_limit = 64M\n", "memory_limit = 64M\n"), 0);
    assert_int_equal(changed("memory_limit = 1G\n", "memory_limit = 2G\n"), 0);
    assert_int_equal(changed("memory_limit = 64M\n", "memory_limit = 128M\n"), 0);
    /* the renderer's command: only the renderer */
    assert_int_equal(changed("command = rendervisor-renderer\n", "command = rendervisor-renderer -v\n"), 8);
    /* the browsers' command: both browsers */
    assert_int_equal(changed("command = chromium --headless 'a b'\n", "command = chromium --headless\n"), 6);
    /* the port base, unused over pipes: the renderer (which reads it) only */
    assert_int_equal(changed("port_base = 9300\n", "port_base = 9400\n"), 8);
    /* pipes or port: the browsers and the renderer that connects to them */
    assert_int_equal(changed("port_base = 9300\n", "port_base = 9300\ndevtools = port\n"), 2 | 4 | 8);
    assert_int_equal(changed("port_base = 9300\n", "port_base = 9300\ndevtools = pipe\n"), 0);
    /* the renderer reads its drain timeout at start: only the renderer */
    assert_int_equal(changed("command = rendervisor-renderer\n", "command = rendervisor-renderer\ndrain_timeout = 0s\n"),
                     8);
    /* the exporter's command */
    assert_int_equal(changed("command = rendervisor-exporter --verbose\n", "command = rendervisor-exporter\n"), 1);
    /* tokens change in place (the renderer re-reads them on SIGHUP): nobody restarts */
    assert_int_equal(changed("command = rendervisor-renderer\n", "command = rendervisor-renderer\nauth_token = a b\n"),
                     0);
    /* any other key of [renderer] restarts the renderer, one added later too */
    assert_int_equal(changed("command = rendervisor-renderer\n",
                             "command = rendervisor-renderer\nconnections_per_address = 3\n"),
                     8);
    /* tracing is the renderer's, read at its start: only the renderer */
    assert_int_equal(changed("memory_limit = 1G\n", "memory_limit = 1G\n[tracing]\nendpoint = http://tempo:4318/v1/traces\n"),
                     8);
    assert_int_equal(changed("memory_limit = 1G\n", "memory_limit = 1G\n[tracing]\nsample_ratio = 0.5\n"), 8);
    assert_int_equal(changed("memory_limit = 1G\n", "memory_limit = 1G\n[tracing]\ntimeout = 2s\n"), 8);
    assert_int_equal(changed("memory_limit = 1G\n", "memory_limit = 1G\n[tracing]\nservice_name = rv-eu\n"), 8);
}

static void test_hot_keys(void **state)
{
    (void)state;
    assert_true(spec_key_hot("renderer", "auth_token"));
    assert_true(spec_key_hot("renderer", "auth_token_file"));
    assert_true(spec_key_hot("renderer", "tls_cert"));
    assert_true(spec_key_hot("exporter", "tls_key"));
    assert_false(spec_key_hot("renderer", "listen"));
    assert_false(spec_key_hot("exporter", "auth_token"));

    /* a token file named or not: no restart either */
    char path[] = "/tmp/test_spec_tokens_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "t\n", 2), 2);
    close(fd);
    char line[128];
    snprintf(line, sizeof(line), "command = rendervisor-renderer\nauth_token_file = %s\n", path);
    assert_int_equal(changed("command = rendervisor-renderer\n", line), 0);
    unlink(path);

    /* the page log is switched in place too */
    assert_true(spec_key_hot("renderer", "log_page"));
    assert_int_equal(changed("command = rendervisor-renderer\n", "command = rendervisor-renderer\nlog_page = true\n"),
                     0);
}

static void test_exporter_settings_restart_exporter_and_renderer(void **state)
{
    (void)state;
    assert_int_equal(changed("memory_limit = 64M\n", "memory_limit = 64M\ningest = other.sock\n"), 1 | 8);
    assert_int_equal(changed("memory_limit = 64M\n", "memory_limit = 64M\nlisten = 127.0.0.1:9999\n"), 1);
}

static void test_browser_count_restarts_exporter_and_renderer(void **state)
{
    (void)state;
    /* browser-0 stays as it is; browser-1 is gone (not compared) */
    assert_int_equal(changed("count = 2\n", "count = 1\n"), 1 | 8);
}

/* The browsers' DevTools stay on loopback whatever the command says: ours
 * comes after it, and Chromium takes the last. */
static void test_devtools_address_last(void **state)
{
    (void)state;
    char *text = with("command = chromium --headless 'a b'\n",
                      "command = chromium --remote-debugging-address=0.0.0.0\ndevtools = port\n");
    struct config *cfg = load(text);
    size_t n;
    struct child_spec *s = spec_build(cfg, "/etc/rv.ini", &n);
    int last = -1, ours = -1;
    for (int i = 0; i < s[1].command.argc; i++)
        if (strncmp(s[1].command.argv[i], "--remote-debugging-address=", 27) == 0) {
            last = i;
            if (strcmp(s[1].command.argv[i], "--remote-debugging-address=127.0.0.1") == 0)
                ours = i;
        }
    assert_true(ours > 1);
    assert_int_equal(last, ours);
    spec_free(s, n);
    config_free(cfg);
    free(text);
}

/* [supervisor] user reaches every child; allowed_hosts restarts the renderer
 * and the browsers. */
static void test_user_and_allowed_hosts(void **state)
{
    (void)state;
    /* our own name: the one user any config may name */
    struct passwd *pw = getpwuid(geteuid());
    assert_non_null(pw);
    char name[64];
    snprintf(name, sizeof(name), "%s", pw->pw_name);
    char line[128];
    snprintf(line, sizeof(line), "runtime_dir = /run/rvtest\nuser = %s\n", name);
    char *text = with("runtime_dir = /run/rvtest\n", line);
    struct config *cfg = load(text);
    size_t n;
    struct child_spec *s = spec_build(cfg, "/etc/rv.ini", &n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(s[i].user, name);
    struct child_spec moved = { 0 };
    spec_move(&moved, &s[0]);
    assert_string_equal(moved.user, name);
    assert_null(s[0].user);
    spec_move(&moved, &s[0]);
    spec_free(s, n);
    config_free(cfg);
    free(text);

    const char *from = "command = rendervisor-renderer\n";
    /* and the browsers, whose resolver rules hold WebSockets to the list */
    assert_int_equal(changed(from, "command = rendervisor-renderer\nallowed_hosts = grafana\n"), 8 | 2 | 4);
    assert_int_equal(changed(from, "command = rendervisor-renderer\nallowed_hosts =\n"), 0);
    /* the renderer reads [renderer] timezone when it starts */
    assert_int_equal(changed(from, "command = rendervisor-renderer\ntimezone = UTC\n"), 8);
    /* browser is no override, as empty is */
    assert_int_equal(changed(from, "command = rendervisor-renderer\ntimezone = browser\n"), 0);
}

static void test_spec_move(void **state)
{
    (void)state;
    struct config *cfg = load(base);
    size_t n;
    struct child_spec *s = spec_build(cfg, "/etc/rv.ini", &n);
    struct child_spec moved = { 0 };
    spec_move(&moved, &s[1]);
    assert_string_equal(moved.name, "browser-0");
    assert_null(s[1].command.argv);
    assert_null(s[1].fingerprint);
    /* moving into a filled spec frees what it held */
    spec_move(&moved, &s[2]);
    assert_int_equal(moved.index, 1);
    assert_string_equal(moved.name, "browser-1");
    struct child_spec none = { 0 };
    spec_move(&moved, &none);
    spec_free(s, n);
    config_free(cfg);
}

/* A command from words (for spec_sandbox, which reads only the words). */
static struct config_command words(const char *text)
{
    struct config_command cmd = { 0 };
    const char *why = NULL;
    if (config_split_command(text, &cmd, &why) < 0)
        fail_msg("cannot split %s: %s", text, why);
    return cmd;
}

static enum spec_sandbox sandbox_of(const char *text, uid_t uid)
{
    struct config_command cmd = words(text);
    enum spec_sandbox sb = spec_sandbox(&cmd, uid);
    config_command_fini(&cmd);
    return sb;
}

/* Chromium's sandbox: off as root whatever the command says; otherwise on
 * unless the command turns it off itself (in any of Chromium's spellings). */
static void test_sandbox_decision(void **state)
{
    (void)state;
    assert_int_equal(sandbox_of("chromium --headless", 0), SPEC_SANDBOX_OFF_ROOT);
    assert_int_equal(sandbox_of("chromium --headless --no-sandbox", 0), SPEC_SANDBOX_OFF_ROOT);
    assert_int_equal(sandbox_of("chromium --headless", 999), SPEC_SANDBOX_ON);
    assert_int_equal(sandbox_of("chromium --headless", 65534), SPEC_SANDBOX_ON);
    assert_int_equal(sandbox_of("chromium --no-sandbox --headless", 999), SPEC_SANDBOX_OFF_COMMAND);
    assert_int_equal(sandbox_of("chromium -no-sandbox", 999), SPEC_SANDBOX_OFF_COMMAND);
    assert_int_equal(sandbox_of("chromium --no-sandbox=1", 999), SPEC_SANDBOX_OFF_COMMAND);
    /* other switches that merely start alike, and the program's own name */
    assert_int_equal(sandbox_of("chromium --no-sandbox-and-exit --no-sandboxes", 999), SPEC_SANDBOX_ON);
    assert_int_equal(sandbox_of("chromium --disable-seccomp-filter-sandbox", 999), SPEC_SANDBOX_ON);
    assert_int_equal(sandbox_of("--no-sandbox", 999), SPEC_SANDBOX_ON);
}

/* A copy through the allocator config_free() frees with (cmocka's). */
static char *copy(const char *text)
{
    char *s = malloc(strlen(text) + 1);
    assert_non_null(s);
    return strcpy(s, text);
}

/* Who the browsers run as: [supervisor] user when the supervisor is root,
 * else the supervisor itself (the config allows no other user then). */
static void test_browsers_uid(void **state)
{
    (void)state;
    struct config *cfg = load(base);
    uid_t uid = 12345;
    assert_int_equal(spec_browsers_uid(cfg, 0, &uid), 0);
    assert_int_equal(uid, 0);
    assert_int_equal(spec_browsers_uid(cfg, 1000, &uid), 0);
    assert_int_equal(uid, 1000);

    struct passwd *pw = getpwnam("nobody");
    assert_non_null(pw);
    uid_t nobody = pw->pw_uid;
    free(cfg->supervisor.user);
    cfg->supervisor.user = copy("nobody");
    assert_int_equal(spec_browsers_uid(cfg, 0, &uid), 0);
    assert_int_equal(uid, nobody);
    /* not root: the supervisor's own uid, whatever user says */
    assert_int_equal(spec_browsers_uid(cfg, 1000, &uid), 0);
    assert_int_equal(uid, 1000);

    free(cfg->supervisor.user);
    cfg->supervisor.user = copy("root");
    assert_int_equal(spec_browsers_uid(cfg, 0, &uid), 0);
    assert_int_equal(uid, 0);

    free(cfg->supervisor.user);
    cfg->supervisor.user = copy("no-such-user-rvunit");
    assert_int_equal(spec_browsers_uid(cfg, 0, &uid), -ENOENT);
    assert_int_equal(uid, 0);
    config_free(cfg);
}

/* As root every browser gets --no-sandbox last, once; nothing else changes. */
static void test_sandbox_apply(void **state)
{
    (void)state;
    char *text = with("command = chromium --headless 'a b'\n", "command = chromium --headless\n");
    struct config *cfg = load(text);
    size_t n;
    struct child_spec *s = spec_build(cfg, "/etc/rv.ini", &n);
    char fp[1024];
    snprintf(fp, sizeof(fp), "%s", s[1].fingerprint);
    int argc = s[1].command.argc;
    int exporter_argc = s[0].command.argc, renderer_argc = s[3].command.argc;

    spec_sandbox_apply(s, n, SPEC_SANDBOX_ON);
    spec_sandbox_apply(s, n, SPEC_SANDBOX_OFF_COMMAND);
    assert_int_equal(s[1].command.argc, argc);

    spec_sandbox_apply(s, n, SPEC_SANDBOX_OFF_ROOT);
    for (size_t i = 1; i <= 2; i++) {
        assert_int_equal(s[i].command.argc, argc + 1);
        assert_string_equal(s[i].command.argv[argc], "--no-sandbox");
        assert_null(s[i].command.argv[argc + 1]);
    }
    assert_int_equal(s[0].command.argc, exporter_argc);
    assert_int_equal(s[3].command.argc, renderer_argc);
    /* a reload's specs get the same word: no restart for it */
    assert_string_equal(s[1].fingerprint, fp);
    /* applied again (a command that has it already): still once */
    spec_sandbox_apply(s, n, SPEC_SANDBOX_OFF_ROOT);
    assert_int_equal(s[1].command.argc, argc + 1);
    spec_free(s, n);
    config_free(cfg);
    free(text);

    /* the operator's own --no-sandbox is not doubled */
    text = with("command = chromium --headless 'a b'\n", "command = chromium --no-sandbox\n");
    cfg = load(text);
    s = spec_build(cfg, "/etc/rv.ini", &n);
    argc = s[1].command.argc;
    spec_sandbox_apply(s, n, spec_sandbox(&cfg->browsers.command, 0));
    assert_int_equal(s[1].command.argc, argc);
    spec_free(s, n);
    config_free(cfg);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_names_and_arguments),
        cmocka_unit_test(test_devtools_port),
        cmocka_unit_test(test_browser_console_off),
        cmocka_unit_test(test_fingerprints),
        cmocka_unit_test(test_tls_on_off_restarts_other_files_do_not),
        cmocka_unit_test(test_hot_keys),
        cmocka_unit_test(test_exporter_settings_restart_exporter_and_renderer),
        cmocka_unit_test(test_browser_count_restarts_exporter_and_renderer),
        cmocka_unit_test(test_spec_move),
        cmocka_unit_test(test_devtools_address_last),
        cmocka_unit_test(test_user_and_allowed_hosts),
        cmocka_unit_test(test_sandbox_decision),
        cmocka_unit_test(test_browsers_uid),
        cmocka_unit_test(test_sandbox_apply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
