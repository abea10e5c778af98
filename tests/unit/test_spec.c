/* Child specs from a config: names, start order, appended arguments, and the
 * fingerprints that decide which children a reload restarts. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

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

    assert_int_equal(s[0].command.argc, 4);
    assert_string_equal(s[0].command.argv[0], "rendervisor-exporter");
    assert_string_equal(s[0].command.argv[1], "--verbose");
    assert_string_equal(s[0].command.argv[2], "--config");
    assert_string_equal(s[0].command.argv[3], "/etc/rv.ini");
    assert_null(s[0].command.argv[4]);
    assert_int_equal(s[0].memory_limit, 64ULL << 20);
    assert_null(s[0].fresh_dir);

    assert_int_equal(s[2].command.argc, 7);
    assert_string_equal(s[2].command.argv[2], "a b");
    assert_string_equal(s[2].command.argv[3], "--remote-debugging-port=9301");
    assert_string_equal(s[2].command.argv[4], "--remote-debugging-address=127.0.0.1");
    assert_string_equal(s[2].command.argv[5], "--user-data-dir=/run/rvtest/browser-1.profile");
    /* no allowed_hosts: link-local and metadata addresses do not resolve */
    assert_string_equal(s[2].command.argv[6],
                        "--host-resolver-rules=MAP 169.254.* ~NOTFOUND, MAP fe8?:* ~NOTFOUND, MAP fe9?:* ~NOTFOUND, "
                        "MAP fea?:* ~NOTFOUND, MAP feb?:* ~NOTFOUND, MAP ::ffff:a9fe:* ~NOTFOUND, "
                        "MAP 64:ff9b::a9fe:* ~NOTFOUND, MAP fd00:ec2::254 ~NOTFOUND");
    assert_null(s[2].command.argv[7]);
    assert_string_equal(s[2].fresh_dir, "/run/rvtest/browser-1.profile");
    assert_int_equal(s[2].memory_limit, 1ULL << 30);
    assert_string_equal(s[1].command.argv[3], "--remote-debugging-port=9300");

    assert_string_equal(s[3].command.argv[1], "--config");
    assert_int_equal(s[3].memory_limit, 0);
    for (size_t i = 0; i < n; i++)
        assert_null(s[i].user);
    spec_free(s, n);
    config_free(cfg);
}

/* Which children a change of `from` to `to` would restart, as a bit mask in
 * the old start order (exporter, browser-0, browser-1, renderer); children
 * are matched by name, as a reload matches them. */
static unsigned changed(const char *from, const char *to)
{
    struct config *a = load(base);
    char *text = with(from, to);
    struct config *b = load(text);
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
    free(text);
    return mask;
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
    /* the port base: the browsers and the renderer that connects to them */
    assert_int_equal(changed("port_base = 9300\n", "port_base = 9400\n"), 2 | 4 | 8);
    /* the exporter's command */
    assert_int_equal(changed("command = rendervisor-exporter --verbose\n", "command = rendervisor-exporter\n"), 1);
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
                      "command = chromium --remote-debugging-address=0.0.0.0\n");
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
    assert_string_equal(moved.name, "browser-1");
    struct child_spec none = { 0 };
    spec_move(&moved, &none);
    spec_free(s, n);
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_names_and_arguments),
        cmocka_unit_test(test_fingerprints),
        cmocka_unit_test(test_exporter_settings_restart_exporter_and_renderer),
        cmocka_unit_test(test_browser_count_restarts_exporter_and_renderer),
        cmocka_unit_test(test_spec_move),
        cmocka_unit_test(test_devtools_address_last),
        cmocka_unit_test(test_user_and_allowed_hosts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
