/* The warnings a valid config gets: the browsers without Chromium's sandbox,
 * and Grafana's default token on a listener beyond loopback. */
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
#include "warnings.h"

static void test_loopback(void **state)
{
    (void)state;
    static const char *const yes[] = {
        "127.0.0.1:8081", "127.1.2.3:1", "localhost:8081", "[::1]:8081", "[::ffff:127.0.0.1]:8081",
        "[0:0:0:0:0:0:0:1]:80",
    };
    static const char *const no[] = {
        "0.0.0.0:8081", "[::]:8081", "10.0.0.1:8081", "192.168.1.5:80", "128.0.0.1:80", "[::2]:80",
        "[::ffff:10.0.0.1]:80", "[fe80::1]:80", "1.127.0.1:80",
        /* not what the config takes: never called loopback */
        "", ":8081", "127.0.0.1", "[::1", "[]:80", "localhost.example:80",
    };
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!warnings_listen_is_loopback(yes[i]))
            fail_msg("%s should be loopback", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (warnings_listen_is_loopback(no[i]))
            fail_msg("%s should not be loopback", no[i]);
}

static struct config *load(const char *renderer, const char *browsers)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "[supervisor]\nruntime_dir = /run/rvtest\n"
             "[exporter]\ncommand = rendervisor-exporter\n"
             "[renderer]\ncommand = rendervisor-renderer\n%s\n"
             "[browsers]\ncommand = %s\n",
             renderer, browsers);
    char *errors = NULL;
    struct config *cfg = config_load_string(text, "test.ini", &errors);
    if (!cfg)
        fail_msg("config did not load: %s", errors);
    return cfg;
}

/* The warnings' texts joined by newlines, for strstr. */
static void collect(const struct config *cfg, uid_t euid, size_t *count, char *out, size_t size)
{
    struct warnings w;
    warnings_collect(&w, cfg, euid);
    *count = w.count;
    out[0] = '\0';
    for (size_t i = 0; i < w.count; i++) {
        strncat(out, w.text[i], size - strlen(out) - 2);
        strcat(out, "\n");
    }
    warnings_fini(&w);
}

static void test_default_config(void **state)
{
    (void)state;
    struct config *cfg = config_load_default();
    char text[2048];
    size_t n;
    /* as root, no user: both, each saying what to do */
    collect(cfg, 0, &n, text, sizeof(text));
    assert_int_equal(n, 2);
    assert_non_null(strstr(text, "browsers run as root: Chromium's sandbox is off"));
    assert_non_null(strstr(text, "set [supervisor] user"));
    assert_non_null(strstr(text, "reason=root"));
    assert_non_null(strstr(text, "Grafana's default auth_token"));
    assert_non_null(strstr(text, "renderer_token"));
    assert_non_null(strstr(text, "listen on 127.0.0.1"));
    assert_non_null(strstr(text, "listen=0.0.0.0:8081"));
    /* not root: the token only (the default command has no --no-sandbox) */
    collect(cfg, 1000, &n, text, sizeof(text));
    assert_int_equal(n, 1);
    assert_null(strstr(text, "sandbox"));
    config_free(cfg);
}

static void test_user_can_read(void **state)
{
    (void)state;
    struct stat st = { .st_uid = 0, .st_gid = 50, .st_mode = S_IFREG | 0640 };
    gid_t in[] = { 100, 50 }, out[] = { 100 };
    assert_true(warnings_user_can_read(&st, 1000, in, 2));   /* the file's group */
    assert_false(warnings_user_can_read(&st, 1000, out, 1)); /* neither owner nor group */
    assert_true(warnings_user_can_read(&st, 0, out, 1));     /* root */
    st.st_mode = S_IFREG | 0600;
    assert_false(warnings_user_can_read(&st, 1000, in, 2));  /* the group may not */
    st.st_uid = 1000;
    assert_true(warnings_user_can_read(&st, 1000, out, 1));  /* the owner may */
    st.st_mode = S_IFREG | 0040;
    assert_false(warnings_user_can_read(&st, 1000, in, 2));  /* the owner's bits count for the owner */
}

static void test_token_and_listen(void **state)
{
    (void)state;
    char text[2048];
    size_t n;
    struct config *cfg = load("listen = 127.0.0.1:8081", "chromium");
    collect(cfg, 1000, &n, text, sizeof(text));
    assert_int_equal(n, 0);
    config_free(cfg);

    cfg = load("listen = [::]:8081\nauth_token = s3cret", "chromium");
    collect(cfg, 1000, &n, text, sizeof(text));
    assert_int_equal(n, 0);
    config_free(cfg);

    cfg = load("listen = [::]:8081", "chromium");
    collect(cfg, 1000, &n, text, sizeof(text));
    assert_int_equal(n, 1);
    assert_non_null(strstr(text, "listen=[::]:8081"));
    config_free(cfg);
}

/* The operator's own --no-sandbox: kept, and said when it need not be. */
static void test_sandbox_off_by_command(void **state)
{
    (void)state;
    char text[2048];
    size_t n;
    struct config *cfg = load("listen = 127.0.0.1:8081", "chromium --headless --no-sandbox");
    collect(cfg, 1000, &n, text, sizeof(text));
    assert_int_equal(n, 1);
    assert_non_null(strstr(text, "the browsers' command has --no-sandbox"));
    assert_non_null(strstr(text, "reason=command uid=1000"));
    /* as root it is needed: the root warning, not this one */
    collect(cfg, 0, &n, text, sizeof(text));
    assert_int_equal(n, 1);
    assert_non_null(strstr(text, "reason=root"));
    config_free(cfg);

    /* root with a user of its own: no sandbox warning (the only user a
     * config may name when we are not root is ourselves) */
    struct passwd *pw = getpwnam("nobody");
    assert_non_null(pw);
    if (geteuid() != 0)
        skip();
    cfg = load("listen = 127.0.0.1:8081", "chromium\n[supervisor]\nuser = nobody");
    collect(cfg, 0, &n, text, sizeof(text));
    assert_int_equal(n, 0);
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_default_config),
        cmocka_unit_test(test_token_and_listen),
        cmocka_unit_test(test_user_can_read),
        cmocka_unit_test(test_sandbox_off_by_command),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
