/* Tests for common/config.c: every value parser, every error the loader can
 * report (with its file, line and key), and the embedded default. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The three command keys and nothing else: what most tests build on. */
#define MIN_INI "[exporter]\ncommand = e\n[renderer]\ncommand = r\n[browsers]\ncommand = b\n"

static char *test_text(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *test_text(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static size_t test_count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Every error line names the file and its line; and either a key or a
 * section. */
static void test_check_error_lines(const char *errors, const char *file)
{
    char *copy = test_text("%s", errors);
    size_t lines = 0;
    char *save = NULL;
    char prefix[256];
    snprintf(prefix, sizeof(prefix), "file=%s ", file);
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lines++;
        assert_memory_equal(line, prefix, strlen(prefix));
        assert_non_null(strstr(line, " line="));
        if (!strstr(line, "line too long") && !strstr(line, "expected key = value") &&
            !strstr(line, "closing ']'") && !strstr(line, "key name is missing"))
            assert_true(strstr(line, " key=") || strstr(line, " section="));
        assert_non_null(strstr(line, ": "));
    }
    free(copy);
    assert_int_equal(lines, test_count_lines(errors));
    assert_int_equal(errors[strlen(errors) - 1], '\n');
}

/* Load text that must fail; returns the errors (caller frees). */
static char *test_fail(const char *text)
{
    char *errors = NULL;
    struct config *cfg = config_load_string(text, "test.ini", &errors);
    if (cfg)
        fail_msg("expected errors, the config loaded:\n%s", text);
    assert_non_null(errors);
    test_check_error_lines(errors, "test.ini");
    return errors;
}

static struct config *test_load(const char *text)
{
    char *errors = NULL;
    struct config *cfg = config_load_string(text, "test.ini", &errors);
    if (!cfg)
        fail_msg("unexpected errors:\n%s", errors ? errors : "(none)");
    assert_null(errors);
    return cfg;
}

static void test_argv_equal(const struct config_command *cmd, const char *const *want, int n)
{
    assert_int_equal(cmd->argc, n);
    for (int i = 0; i < n; i++)
        assert_string_equal(cmd->argv[i], want[i]);
    assert_null(cmd->argv[n]);
}

/* ---- the embedded default --------------------------------------------- */

static void test_default_loads(void **state)
{
    (void)state;
    struct config *cfg = config_load_default();
    assert_non_null(cfg);
    assert_string_equal(cfg->path, "(default)");

    assert_string_equal(cfg->supervisor.runtime_dir, "/run/rendervisor");
    assert_int_equal(cfg->supervisor.sample_interval_ns, 1000000000LL);
    assert_int_equal(cfg->supervisor.stop_timeout_ns, 5000000000LL);
    assert_int_equal(cfg->renderer.drain_timeout_ns, 15000000000LL);
    assert_int_equal(cfg->supervisor.log_level, CONFIG_LOG_INFO);
    assert_int_equal(cfg->supervisor.log_format, CONFIG_LOG_TEXT);

    static const char *const exporter[] = { "rendervisor-exporter" };
    test_argv_equal(&cfg->exporter.command, exporter, 1);
    assert_string_equal(cfg->exporter.listen, "127.0.0.1:9465");
    assert_string_equal(cfg->exporter.socket, "exporter.sock");
    assert_string_equal(cfg->exporter.ingest, "ingest.sock");
    assert_int_equal(cfg->exporter.memory_limit, 64ULL << 20);
    static const double request[] = { 0.1, 0.25, 0.5, 1, 3, 5, 7, 10, 20, 30, 60 };
    assert_int_equal(cfg->exporter.request_buckets.count, ARRAY_SIZE(request));
    for (size_t i = 0; i < ARRAY_SIZE(request); i++)
        assert_true(cfg->exporter.request_buckets.bounds[i] == request[i]);
    static const double step[] = { 0.01, 0.05, 0.1, 0.3, 0.5, 1, 3, 5, 10, 20, 30 };
    assert_int_equal(cfg->exporter.step_buckets.count, ARRAY_SIZE(step));
    for (size_t i = 0; i < ARRAY_SIZE(step); i++)
        assert_true(cfg->exporter.step_buckets.bounds[i] == step[i]);

    static const char *const renderer[] = { "rendervisor-renderer" };
    test_argv_equal(&cfg->renderer.command, renderer, 1);
    assert_string_equal(cfg->renderer.listen, "0.0.0.0:8081");
    assert_string_equal(cfg->renderer.auth_token, "-");
    assert_int_equal(cfg->renderer.memory_limit, 256ULL << 20);
    assert_int_equal(cfg->renderer.concurrency, 4);
    /* Room for Grafana's 30 renders at once from its one address. */
    assert_int_equal(cfg->renderer.connections_per_address, 64);

    assert_int_equal(cfg->browsers.count, 2);
    assert_int_equal(cfg->browsers.port_base, 9222);
    assert_int_equal(cfg->browsers.memory_limit, 1ULL << 30);
    static const char *const chromium[] = {
        "/usr/lib/chromium/chromium-headless-shell", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-quic", "--no-default-browser-check", "--mute-audio",
        "--hide-scrollbars",
    };
    test_argv_equal(&cfg->browsers.command, chromium, (int)ARRAY_SIZE(chromium));
    config_free(cfg);
}

static void test_default_text(void **state)
{
    (void)state;
    assert_int_equal(strlen(config_default_ini), config_default_ini_len);
    /* Every line fits inih's buffer, and the browser command really is
     * written on continuation lines (that is what the default shows off). */
    size_t len = 0;
    for (const char *s = config_default_ini; *s; s++) {
        if (*s == '\n') {
            assert_true(len <= 199);
            len = 0;
        } else {
            len++;
        }
    }
    assert_non_null(strstr(config_default_ini, "\n    --disable-background-networking"));
    assert_non_null(strstr(config_default_ini, "--remote-debugging-port"));
    assert_non_null(strstr(config_default_ini, "--user-data-dir"));

    /* The default parsed as a file gives the same as config_load_default(). */
    struct config *cfg = test_load(config_default_ini);
    assert_string_equal(cfg->path, "test.ini");
    assert_int_equal(cfg->browsers.command.argc, 11);
    config_free(cfg);
}

static void test_minimal_uses_fallbacks(void **state)
{
    (void)state;
    struct config *cfg = test_load(MIN_INI);
    assert_string_equal(cfg->supervisor.runtime_dir, "/run/rendervisor");
    assert_int_equal(cfg->supervisor.sample_interval_ns, 1000000000LL);
    assert_int_equal(cfg->supervisor.stop_timeout_ns, 5000000000LL);
    assert_string_equal(cfg->exporter.listen, "127.0.0.1:9465");
    assert_int_equal(cfg->exporter.memory_limit, 0);
    assert_int_equal(cfg->exporter.request_buckets.count, 11);
    assert_true(cfg->exporter.request_buckets.bounds[10] == 60);
    assert_int_equal(cfg->exporter.step_buckets.count, 11);
    assert_true(cfg->exporter.step_buckets.bounds[0] == 0.01);
    assert_string_equal(cfg->renderer.listen, "0.0.0.0:8081");
    assert_string_equal(cfg->renderer.auth_token, "-");
    assert_int_equal(cfg->renderer.memory_limit, 0);
    assert_int_equal(cfg->renderer.concurrency, 4);
    assert_int_equal(cfg->browsers.count, 2);
    assert_int_equal(cfg->browsers.port_base, 9222);
    assert_int_equal(cfg->browsers.memory_limit, 0);
    static const char *const b[] = { "b" };
    test_argv_equal(&cfg->browsers.command, b, 1);
    config_free(cfg);
}

static void test_every_key_set(void **state)
{
    (void)state;
    struct config *cfg = test_load("[supervisor]\n"
                                   "runtime_dir = /tmp/rv\n"
                                   "sample_interval = 250ms\n"
                                   "stop_timeout = 2m\n"
                                   "log_level = debug\n"
                                   "log_format = json\n"
                                   "[exporter]\n"
                                   "command = /usr/bin/exp --x\n"
                                   "listen =\n"
                                   "socket = /var/run/exp.sock\n"
                                   "ingest = in.sock\n"
                                   "memory_limit = 512k\n"
                                   "request_buckets = 1 2\n"
                                   "step_buckets = 0.5\n"
                                   "[renderer]\n"
                                   "command = r\n"
                                   "listen = [::1]:9000\n"
                                   "auth_token = s3cret\n"
                                   "memory_limit = 2G\n"
                                   "concurrency = 64\n"
                                   "drain_timeout = 0s\n"
                                   "[browsers]\n"
                                   "count = 16\n"
                                   "command = b\n"
                                   "port_base = 1024\n"
                                   "memory_limit = 100\n");
    assert_string_equal(cfg->supervisor.runtime_dir, "/tmp/rv");
    assert_int_equal(cfg->supervisor.sample_interval_ns, 250000000LL);
    assert_int_equal(cfg->supervisor.stop_timeout_ns, 120000000000LL);
    assert_int_equal(cfg->renderer.drain_timeout_ns, 0);
    assert_int_equal(cfg->supervisor.log_level, CONFIG_LOG_DEBUG);
    assert_int_equal(cfg->supervisor.log_format, CONFIG_LOG_JSON);
    static const char *const e[] = { "/usr/bin/exp", "--x" };
    test_argv_equal(&cfg->exporter.command, e, 2);
    assert_string_equal(cfg->exporter.listen, "");
    assert_string_equal(cfg->exporter.socket, "/var/run/exp.sock");
    assert_string_equal(cfg->exporter.ingest, "in.sock");
    assert_int_equal(cfg->exporter.memory_limit, 512 * 1024);
    assert_int_equal(cfg->exporter.request_buckets.count, 2);
    assert_int_equal(cfg->exporter.step_buckets.count, 1);
    assert_string_equal(cfg->renderer.listen, "[::1]:9000");
    assert_string_equal(cfg->renderer.auth_token, "s3cret");
    assert_int_equal(cfg->renderer.memory_limit, 2ULL << 30);
    assert_int_equal(cfg->renderer.concurrency, 64);
    assert_int_equal(cfg->browsers.count, 16);
    assert_int_equal(cfg->browsers.port_base, 1024);
    assert_int_equal(cfg->browsers.memory_limit, 100);
    config_free(cfg);
}

/* ---- sizes, durations, numbers, buckets, listen addresses --------------- */

static void test_size_good(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t bytes;
    } cases[] = {
        { "0", 0 },
        { "1", 1 },
        { "007", 7 },
        { "1K", 1024 },
        { "1k", 1024 },
        { "2M", 2ULL << 20 },
        { "2m", 2ULL << 20 },
        { "3G", 3ULL << 30 },
        { "3g", 3ULL << 30 },
        { "0G", 0 },
        { "18446744073709551615", UINT64_MAX },
        { "17179869183G", 17179869183ULL << 30 },
        { "18014398509481983K", 18014398509481983ULL << 10 },
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        uint64_t bytes = 12345;
        const char *why = NULL;
        if (config_parse_size(cases[i].text, &bytes, &why) != 0)
            fail_msg("size \"%s\" rejected: %s", cases[i].text, why);
        assert_int_equal(bytes, cases[i].bytes);
    }
}

static void test_size_bad(void **state)
{
    (void)state;
    static const char *const invalid[] = {
        "", "K", "-1", "+1", " 1", "1 ", "1KB", "1MiB", "1.5M", "1T", "0x10", "1e3", "1KK", "M1", "1,000",
    };
    for (size_t i = 0; i < ARRAY_SIZE(invalid); i++) {
        uint64_t bytes = 42;
        const char *why = NULL;
        if (config_parse_size(invalid[i], &bytes, &why) != -EINVAL)
            fail_msg("size \"%s\" not rejected as invalid", invalid[i]);
        assert_string_equal(why, "expected a whole number of bytes, optionally with K, M or G (e.g. 256M)");
        assert_int_equal(bytes, 42);
    }
    static const char *const overflow[] = {
        "18446744073709551616", "99999999999999999999999", "17179869184G", "18014398509481984K",
        "17592186044416M",
    };
    for (size_t i = 0; i < ARRAY_SIZE(overflow); i++) {
        uint64_t bytes = 42;
        const char *why = NULL;
        if (config_parse_size(overflow[i], &bytes, &why) != -ERANGE)
            fail_msg("size \"%s\" not rejected as too large", overflow[i]);
        assert_non_null(why);
        assert_int_equal(bytes, 42);
    }
}

static void test_duration_good(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t ns;
    } cases[] = {
        { "0ms", 0 },
        { "0s", 0 },
        { "100ms", 100000000LL },
        { "1s", 1000000000LL },
        { "90s", 90000000000LL },
        { "2m", 120000000000LL },
        { "9223372036854ms", 9223372036854LL * 1000000 },
        { "9223372036s", 9223372036LL * 1000000000 },
        { "153722867m", 153722867LL * 60000000000LL },
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        int64_t ns = -1;
        const char *why = NULL;
        if (config_parse_duration(cases[i].text, &ns, &why) != 0)
            fail_msg("duration \"%s\" rejected: %s", cases[i].text, why);
        assert_int_equal(ns, cases[i].ns);
    }
}

static void test_duration_bad(void **state)
{
    (void)state;
    static const char *const invalid[] = {
        "", "1", "s", "ms", "1h", "1 s", " 1s", "1s ", "1.5s", "-1s", "+1s", "1sec", "1S", "1M", "1mss", "1sm",
        "1ns", "1us", "s1",
    };
    for (size_t i = 0; i < ARRAY_SIZE(invalid); i++) {
        int64_t ns = -7;
        const char *why = NULL;
        if (config_parse_duration(invalid[i], &ns, &why) != -EINVAL)
            fail_msg("duration \"%s\" not rejected as invalid", invalid[i]);
        assert_string_equal(why, "expected a whole number followed by ms, s or m (e.g. 500ms, 5s, 2m)");
        assert_int_equal(ns, -7);
    }
    static const char *const overflow[] = {
        "9223372036855ms", "9223372037s", "153722868m", "99999999999999999999s", "18446744073709551616ms",
    };
    for (size_t i = 0; i < ARRAY_SIZE(overflow); i++) {
        int64_t ns = -7;
        const char *why = NULL;
        if (config_parse_duration(overflow[i], &ns, &why) != -ERANGE)
            fail_msg("duration \"%s\" not rejected as too long", overflow[i]);
        assert_non_null(why);
        assert_int_equal(ns, -7);
    }
}

static void test_uint(void **state)
{
    (void)state;
    unsigned v = 0;
    const char *why = NULL;
    assert_int_equal(config_parse_uint("0", 0, 10, &v, &why), 0);
    assert_int_equal(v, 0);
    assert_int_equal(config_parse_uint("65535", 1024, 65535, &v, &why), 0);
    assert_int_equal(v, 65535);
    assert_int_equal(config_parse_uint("4294967295", 0, UINT32_MAX, &v, &why), 0);
    assert_int_equal(v, 4294967295U);

    static const char *const invalid[] = { "", "a", "-1", "+1", "1a", " 1", "1 ", "0x10", "1.0" };
    for (size_t i = 0; i < ARRAY_SIZE(invalid); i++) {
        v = 99;
        if (config_parse_uint(invalid[i], 0, 100, &v, &why) != -EINVAL)
            fail_msg("number \"%s\" not rejected as invalid", invalid[i]);
        assert_string_equal(why, "expected a whole number");
        assert_int_equal(v, 99);
    }
    static const char *const range[] = { "0", "65", "4294967296", "99999999999999999999999" };
    for (size_t i = 0; i < ARRAY_SIZE(range); i++) {
        v = 99;
        if (config_parse_uint(range[i], 1, 64, &v, &why) != -ERANGE)
            fail_msg("number \"%s\" not rejected as out of range", range[i]);
        assert_int_equal(v, 99);
    }
}

static void test_buckets_good(void **state)
{
    (void)state;
    struct config_buckets b;
    const char *why = NULL;
    assert_int_equal(config_parse_buckets("1", &b, &why), 0);
    assert_int_equal(b.count, 1);
    assert_true(b.bounds[0] == 1.0);
    assert_int_equal(config_parse_buckets("  0.1\t0.5  1e1 ", &b, &why), 0);
    assert_int_equal(b.count, 3);
    assert_true(b.bounds[0] == 0.1 && b.bounds[1] == 0.5 && b.bounds[2] == 10.0);

    char text[512] = "";
    for (int i = 1; i <= CONFIG_MAX_BUCKETS; i++)
        snprintf(text + strlen(text), sizeof(text) - strlen(text), "%d ", i);
    assert_int_equal(config_parse_buckets(text, &b, &why), 0);
    assert_int_equal(b.count, CONFIG_MAX_BUCKETS);
    assert_true(b.bounds[CONFIG_MAX_BUCKETS - 1] == CONFIG_MAX_BUCKETS);
}

static void test_buckets_bad(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *why;
    } cases[] = {
        { "", "expected at least one bound" },
        { "   ", "expected at least one bound" },
        { "0", "every bound must be a finite number greater than 0" },
        { "-1 2", "every bound must be a finite number greater than 0" },
        { "1 inf", "every bound must be a finite number greater than 0" },
        { "nan", "every bound must be a finite number greater than 0" },
        { "1 1", "bounds must be strictly increasing" },
        { "2 1", "bounds must be strictly increasing" },
        { "1,2", "expected numbers separated by spaces (e.g. 0.1 0.5 1 5)" },
        { "1 x", "expected numbers separated by spaces (e.g. 0.1 0.5 1 5)" },
        { "1s", "expected numbers separated by spaces (e.g. 0.1 0.5 1 5)" },
        { "1e400", "a bound is too large or too small to represent" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct config_buckets b = { .count = 77 };
        const char *why = NULL;
        if (config_parse_buckets(cases[i].text, &b, &why) == 0)
            fail_msg("buckets \"%s\" accepted", cases[i].text);
        assert_string_equal(why, cases[i].why);
        assert_int_equal(b.count, 77);
    }
    char text[512] = "";
    for (int i = 1; i <= CONFIG_MAX_BUCKETS + 1; i++)
        snprintf(text + strlen(text), sizeof(text) - strlen(text), "%d ", i);
    struct config_buckets b;
    const char *why = NULL;
    assert_int_equal(config_parse_buckets(text, &b, &why), -EINVAL);
    assert_string_equal(why, "too many bounds (at most 32)");
}

static void test_listen(void **state)
{
    (void)state;
    static const char *const good[] = {
        "127.0.0.1:9465", "0.0.0.0:1", "localhost:65535", "[::1]:8081", "[::]:80", "[fe80::1:2]:443", "10.1.2.3:08081",
    };
    for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
        const char *why = NULL;
        if (config_parse_listen(good[i], &why) != 0)
            fail_msg("listen \"%s\" rejected: %s", good[i], why);
    }
    static const struct {
        const char *text;
        const char *why;
    } bad[] = {
        { "", "expected host:port (e.g. 127.0.0.1:9465)" },
        { "127.0.0.1", "expected host:port (e.g. 127.0.0.1:9465)" },
        { ":80", "expected host:port (e.g. 127.0.0.1:9465)" },
        { "127.0.0.1:", "the port must be a number from 1 to 65535" },
        { "127.0.0.1:0", "the port must be a number from 1 to 65535" },
        { "127.0.0.1:65536", "the port must be a number from 1 to 65535" },
        { "127.0.0.1:8a", "the port must be a number from 1 to 65535" },
        { "127.0.0.1:-1", "the port must be a number from 1 to 65535" },
        { "grafana.example:80", "the host must be an IPv4 address, localhost or an [IPv6 address]" },
        { "::1:80", "the host must be an IPv4 address, localhost or an [IPv6 address]" },
        { "1.2.3:80", "the host must be an IPv4 address, localhost or an [IPv6 address]" },
        { "256.1.1.1:80", "the host must be an IPv4 address, localhost or an [IPv6 address]" },
        { "[::1]", "expected [IPv6 address]:port (e.g. [::1]:8081)" },
        { "[::1]80", "expected [IPv6 address]:port (e.g. [::1]:8081)" },
        { "[]:80", "expected [IPv6 address]:port (e.g. [::1]:8081)" },
        { "[zz]:80", "not a valid IPv6 address between the brackets" },
        { "[127.0.0.1]:80", "not a valid IPv6 address between the brackets" },
        { "[::1]:0", "the port must be a number from 1 to 65535" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        const char *why = NULL;
        if (config_parse_listen(bad[i].text, &why) != -EINVAL)
            fail_msg("listen \"%s\" accepted", bad[i].text);
        assert_string_equal(why, bad[i].why);
    }
}

/* ---- commands ----------------------------------------------------------- */

static void test_split_good(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *argv[5];
        int argc;
    } cases[] = {
        { "a", { "a" }, 1 },
        { "a b  c", { "a", "b", "c" }, 3 },
        { "  a\t b ", { "a", "b" }, 2 },
        { "'a b' c", { "a b", "c" }, 2 },
        { "\"a b\"", { "a b" }, 1 },
        { "a\"b\"'c'", { "abc" }, 1 },
        { "\"\"", { "" }, 1 },
        { "a '' b", { "a", "", "b" }, 3 },
        { "''\"\"", { "" }, 1 },
        { "'\\n $x \"'", { "\\n $x \"" }, 1 },
        { "\"a\\\"b\\\\c\\$d\\`e\\x'\"", { "a\"b\\c$d`e\\x'" }, 1 },
        { "a\\ b", { "a b" }, 1 },
        { "\\'x \\\"y", { "'x", "\"y" }, 2 },
        { "\\\\", { "\\" }, 1 },
        { "$HOME ~ *", { "$HOME", "~", "*" }, 3 },
        { "\"it's\" 'say \"hi\"'", { "it's", "say \"hi\"" }, 2 },
        { "--flag=\"a b\"", { "--flag=a b" }, 1 },
        { "a \\\n b", { "a", "b" }, 2 },
        { "\"a\\\nb\"", { "ab" }, 1 },
        { "a\nb", { "a", "b" }, 2 },
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct config_command cmd;
        const char *why = NULL;
        if (config_split_command(cases[i].text, &cmd, &why) != 0)
            fail_msg("command \"%s\" rejected: %s", cases[i].text, why);
        test_argv_equal(&cmd, cases[i].argv, cases[i].argc);
        config_command_fini(&cmd);
        assert_null(cmd.argv);
        assert_int_equal(cmd.argc, 0);
    }
}

static void test_split_bad(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *why;
    } cases[] = {
        { "", "empty command" },
        { "   \t ", "empty command" },
        { "\\\n", "empty command" },
        { "'abc", "unterminated single quote" },
        { "a 'b c", "unterminated single quote" },
        { "\"abc", "unterminated double quote" },
        { "\"abc\\\"", "unterminated double quote" },
        { "\"abc\\", "unterminated double quote" },
        { "abc\\", "trailing backslash" },
        { "a b \\", "trailing backslash" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct config_command cmd = { .argc = 5 };
        const char *why = NULL;
        if (config_split_command(cases[i].text, &cmd, &why) != -EINVAL)
            fail_msg("command \"%s\" accepted", cases[i].text);
        assert_string_equal(why, cases[i].why);
        assert_null(cmd.argv);
        assert_int_equal(cmd.argc, 0);
    }
}

static void test_split_word_limit(void **state)
{
    (void)state;
    char text[1024] = "";
    for (int i = 0; i < 256; i++)
        strcat(text, "w ");
    struct config_command cmd;
    const char *why = NULL;
    assert_int_equal(config_split_command(text, &cmd, &why), 0);
    assert_int_equal(cmd.argc, 256);
    assert_string_equal(cmd.argv[255], "w");
    assert_null(cmd.argv[256]);
    config_command_fini(&cmd);

    strcat(text, "x");
    assert_int_equal(config_split_command(text, &cmd, &why), -EINVAL);
    assert_string_equal(why, "too many words (at most 256)");
    assert_null(cmd.argv);
}

static void test_command_copy(void **state)
{
    (void)state;
    struct config_command a, b;
    const char *why = NULL;
    assert_int_equal(config_split_command("prog 'x y' \"\"", &a, &why), 0);
    config_command_copy(&b, &a);
    config_command_fini(&a);
    static const char *const want[] = { "prog", "x y", "" };
    test_argv_equal(&b, want, 3);
    config_command_fini(&b);
}

static void test_runtime_path(void **state)
{
    (void)state;
    struct config *cfg = test_load("[supervisor]\nruntime_dir = /tmp/rv\n" MIN_INI);
    char *p = config_runtime_path(cfg, "exporter.sock");
    assert_string_equal(p, "/tmp/rv/exporter.sock");
    free(p);
    p = config_runtime_path(cfg, "/var/run/x.sock");
    assert_string_equal(p, "/var/run/x.sock");
    free(p);
    config_free(cfg);

    cfg = test_load("[supervisor]\nruntime_dir = /tmp/rv/\n" MIN_INI);
    p = config_runtime_path(cfg, cfg->exporter.ingest);
    assert_string_equal(p, "/tmp/rv/ingest.sock");
    free(p);
    config_free(cfg);
}

/* ---- the file format ------------------------------------------------------ */

static void test_continuation_joins(void **state)
{
    (void)state;
    struct config *cfg = test_load("[exporter]\n"
                                   "command = a\n"
                                   "    b c\n"
                                   "\t'd e' ; a comment on a continuation\n"
                                   "\n"
                                   "  ; an indented comment is still a comment\n"
                                   "   f\n"
                                   "[renderer]\n"
                                   "command =\n"
                                   "    prog\n"
                                   "    --x=1\n"
                                   "[browsers]\n"
                                   "command = b ; an inline comment\n"
                                   "count = 3\n");
    static const char *const e[] = { "a", "b", "c", "d e", "f" };
    test_argv_equal(&cfg->exporter.command, e, 5);
    static const char *const r[] = { "prog", "--x=1" };
    test_argv_equal(&cfg->renderer.command, r, 2);
    static const char *const b[] = { "b" };
    test_argv_equal(&cfg->browsers.command, b, 1);
    assert_int_equal(cfg->browsers.count, 3);
    config_free(cfg);

    /* A quote may span a continuation: the join is one space. */
    cfg = test_load("[exporter]\ncommand = x 'a\n  b'\n[renderer]\ncommand = r\n[browsers]\ncommand = b\n");
    static const char *const q[] = { "x", "a b" };
    test_argv_equal(&cfg->exporter.command, q, 2);
    config_free(cfg);

    /* A continuation of another key is a value for that key, checked as one. */
    char *errors = test_fail("[browsers]\ncount = 2\n    3\n[exporter]\ncommand = e\n[renderer]\ncommand = r\n"
                             "[browsers]\ncommand = b\n");
    assert_string_equal(errors, "file=test.ini line=2 key=browsers.count: invalid value \"2 3\": "
                                "expected a whole number\n");
    free(errors);
}

static void test_indented_keys_and_formats(void **state)
{
    (void)state;
    /* Indented keys right after a header are keys (nothing to continue yet);
     * CRLF line ends, a BOM, ':' as separator and '#' comments all parse. */
    struct config *cfg = test_load("\xEF\xBB\xBF# comment\r\n"
                                   "[exporter]\r\n"
                                   "  command = e\r\n"
                                   "memory_limit: 1K\r\n"
                                   "[renderer]\r\n"
                                   "command = r\r\n"
                                   "[browsers]\r\n"
                                   "command = b\r\n"
                                   "count = 5");
    static const char *const e[] = { "e" };
    test_argv_equal(&cfg->exporter.command, e, 1);
    assert_int_equal(cfg->exporter.memory_limit, 1024);
    assert_int_equal(cfg->browsers.count, 5);
    config_free(cfg);
}

static void test_errors_in_order_with_lines(void **state)
{
    (void)state;
    char *errors = test_fail("[supervisor]\n"          /* 1 */
                             "sample_interval = 5x\n"  /* 2 */
                             "log_level = loud\n"      /* 3 */
                             "[exporter]\n"            /* 4 */
                             "command = e\n"           /* 5 */
                             "bogus = 1\n"             /* 6 */
                             "command = again\n"       /* 7 */
                             "[nope]\n"                /* 8 */
                             "x = 1\n"                 /* 9 */
                             "[renderer]\n"            /* 10 */
                             "command = r\n"           /* 11 */
                             "concurrency = 65\n"      /* 12 */
                             "[browsers]\n"            /* 13 */
                             "port_base = 65530\n"     /* 14 */
                             "count = 16\n"            /* 15 */
                             "command = b\n"           /* 16 */
                             "stop_timeout = 1s\n");   /* 17 */
    assert_string_equal(errors,
        "file=test.ini line=2 key=supervisor.sample_interval: invalid value \"5x\": "
        "expected a whole number followed by ms, s or m (e.g. 500ms, 5s, 2m)\n"
        "file=test.ini line=3 key=supervisor.log_level: invalid value \"loud\": expected debug, info, warn or error\n"
        "file=test.ini line=6 key=exporter.bogus: unknown key (known in [exporter]: command, listen, socket, "
        "ingest, memory_limit, request_buckets, step_buckets, tls_cert, tls_key)\n"
        "file=test.ini line=7 key=exporter.command: given twice (first on line 5)\n"
        "file=test.ini line=8 section=nope: unknown section (expected supervisor, exporter, renderer, browsers or tracing)\n"
        "file=test.ini line=12 key=renderer.concurrency: invalid value \"65\": must be between 1 and 64\n"
        "file=test.ini line=14 key=browsers.port_base: port_base 65530 + count 16 - 1 is above 65535; "
        "browser ports must stay below 65536\n"
        "file=test.ini line=17 key=browsers.stop_timeout: unknown key (known in [browsers]: count, command, "
        "port_base, devtools, memory_limit, drain_timeout)\n");
    free(errors);
}

/* Every key has a default: no file, or a file of one key, loads; the
 * commands are the default file's. */
static void test_partial_file_uses_defaults(void **state)
{
    (void)state;
    struct config *def = config_load_default();
    static const char *const texts[] = { "", "[renderer]\nauth_token = x\n" };
    for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
        struct config *cfg = test_load(texts[i]);
        static const char *const e[] = { "rendervisor-exporter" };
        static const char *const r[] = { "rendervisor-renderer" };
        test_argv_equal(&cfg->exporter.command, e, 1);
        test_argv_equal(&cfg->renderer.command, r, 1);
        test_argv_equal(&cfg->browsers.command, (const char *const *)def->browsers.command.argv,
                        def->browsers.command.argc);
        assert_string_equal(cfg->browsers.command.argv[0], "/usr/lib/chromium/chromium-headless-shell");
        assert_string_equal(cfg->renderer.auth_token, i == 0 ? "-" : "x");
        config_free(cfg);
    }
    /* The default file's own command lines are the tables' fallbacks. */
    static const char *const e[] = { "rendervisor-exporter" };
    static const char *const r[] = { "rendervisor-renderer" };
    test_argv_equal(&def->exporter.command, e, 1);
    test_argv_equal(&def->renderer.command, r, 1);
    config_free(def);

    /* The per-address limit is one of the listener's 512. */
    char *errors = test_fail("[renderer]\nconnections_per_address = 513\n");
    assert_string_equal(errors, "file=test.ini line=2 key=renderer.connections_per_address: invalid value \"513\": "
                                "must be between 1 and 512\n");
    free(errors);
    errors = test_fail("[renderer]\nconnections_per_address = 0\n");
    assert_string_equal(errors, "file=test.ini line=2 key=renderer.connections_per_address: invalid value \"0\": "
                                "must be between 1 and 512\n");
    free(errors);
}

/* One bad value of one key, written on line 2, must give exactly one error:
 * on line 2, naming the key, saying why. */
static void test_one_bad_value(const char *section, const char *key, const char *value, const char *why)
{
    char *text = test_text("[%s]\n%s = %s\n" MIN_INI, section, key, value);
    char *errors = test_fail(text);
    char *want = test_text("file=test.ini line=2 key=%s.%s: ", section, key);
    if (strncmp(errors, want, strlen(want)) != 0 || !strstr(errors, why) || test_count_lines(errors) != 1)
        fail_msg("[%s] %s = %s\nwant: %s... %s\ngot:  %s", section, key, value, want, why, errors);
    free(want);
    free(errors);
    free(text);
}

static void test_bad_values(void **state)
{
    (void)state;
    static const struct {
        const char *section, *key, *value, *why;
    } cases[] = {
        { "supervisor", "runtime_dir", "run/rendervisor", "must be an absolute path" },
        { "supervisor", "runtime_dir", "", "must be an absolute path" },
        { "supervisor", "runtime_dir", "/0123456789012345678901234567890123456789012345678901234567890123456789012345678",
          "must be shorter than 80 characters" },
        { "supervisor", "sample_interval", "99ms", "must be between 100ms and 60m" },
        { "supervisor", "sample_interval", "61m", "must be between 100ms and 60m" },
        { "supervisor", "sample_interval", "1", "followed by ms, s or m" },
        { "supervisor", "sample_interval", "1h", "followed by ms, s or m" },
        { "supervisor", "sample_interval", "99999999999999999999m", "too long" },
        { "supervisor", "stop_timeout", "11m", "must be between 100ms and 10m" },
        { "supervisor", "stop_timeout", "50ms", "must be between 100ms and 10m" },
        { "supervisor", "stop_timeout", "", "followed by ms, s or m" },
        { "renderer", "drain_timeout", "11m", "must be between 0m and 10m" },
        { "renderer", "drain_timeout", "-1s", "followed by ms, s or m" },
        { "renderer", "drain_timeout", "soon", "followed by ms, s or m" },
        { "supervisor", "log_level", "INFO", "expected debug, info, warn or error" },
        { "supervisor", "log_level", "", "expected debug, info, warn or error" },
        { "supervisor", "log_format", "xml", "expected text or json" },
        { "exporter", "listen", "127.0.0.1", "expected host:port" },
        { "exporter", "listen", "example.com:80", "the host must be" },
        { "exporter", "listen", "127.0.0.1:0", "the port must be" },
        { "exporter", "socket", "", "must not be empty" },
        { "exporter", "socket", "a/b.sock", "must be a plain file name" },
        { "exporter", "socket", "..", "must be a plain file name" },
        { "exporter", "socket", "a\\ b", "invalid value \"a\\\\ b\"" },
        { "exporter", "ingest", "sub/ingest.sock", "must be a plain file name" },
        { "exporter", "ingest", "in gest", "must not contain whitespace" },
        { "exporter", "ingest", "/0123456789012345678901234567890123456789012345678901234567890123456789"
                                "01234567890123456789012345678901234567890", "too long for a Unix socket path" },
        { "exporter", "memory_limit", "1T", "expected a whole number of bytes, optionally with K, M or G (e.g. 256M)" },
        { "exporter", "memory_limit", "-1", "expected a whole number of bytes" },
        { "exporter", "memory_limit", "18446744073709551616", "too large" },
        { "exporter", "request_buckets", "1 1", "strictly increasing" },
        { "exporter", "request_buckets", "0 1", "greater than 0" },
        { "exporter", "request_buckets", "", "at least one bound" },
        { "exporter", "step_buckets", "x", "separated by spaces" },
        { "exporter", "step_buckets", "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 "
                                      "30 31 32 33", "too many bounds" },
        { "renderer", "listen", "", "must not be empty" },
        { "renderer", "listen", "[::1]", "expected [IPv6 address]:port" },
        { "renderer", "auth_token", "", "must not be empty" },
        { "renderer", "auth_token", "a\x01b", "must not contain control characters" },
        { "renderer", "auth_token_file", "tokens.txt", "must be an absolute path" },
        { "renderer", "memory_limit", "1.5G", "expected a whole number of bytes" },
        { "renderer", "concurrency", "0", "must be between 1 and 64" },
        { "renderer", "concurrency", "65", "must be between 1 and 64" },
        { "renderer", "concurrency", "x", "expected a whole number" },
        { "renderer", "concurrency", "4294967296", "must be between 1 and 64" },
        { "browsers", "count", "0", "must be between 1 and 16" },
        { "browsers", "count", "17", "must be between 1 and 16" },
        { "browsers", "port_base", "1023", "must be between 1024 and 65535" },
        { "browsers", "port_base", "65536", "must be between 1024 and 65535" },
        { "browsers", "port_base", "-1", "expected a whole number" },
        { "browsers", "memory_limit", "1 G", "expected a whole number of bytes" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        test_one_bad_value(cases[i].section, cases[i].key, cases[i].value, cases[i].why);
}

/* A bad command replaces MIN_INI's, which would be a second one. */
static void test_bad_commands(void **state)
{
    (void)state;
    static const struct {
        const char *value, *why;
    } cases[] = {
        { "", "invalid value \"\": empty command" },
        { "'unterminated", "unterminated single quote" },
        { "\"unterminated", "unterminated double quote" },
        { "prog\\", "trailing backslash" },
        { "\"\" --x", "the program name is empty" },
    };
    static const char *const sections[] = { "exporter", "renderer", "browsers" };
    for (size_t s = 0; s < ARRAY_SIZE(sections); s++) {
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
            char *text = test_text("[%s]\ncommand = %s\n%s%s%s", sections[s], cases[i].value,
                             s == 0 ? "" : "[exporter]\ncommand = e\n", s == 1 ? "" : "[renderer]\ncommand = r\n",
                             s == 2 ? "" : "[browsers]\ncommand = b\n");
            char *errors = test_fail(text);
            char *want = test_text("file=test.ini line=2 key=%s.command: ", sections[s]);
            if (strncmp(errors, want, strlen(want)) != 0 || !strstr(errors, cases[i].why) ||
                test_count_lines(errors) != 1)
                fail_msg("command = %s\nwant: %s... %s\ngot:  %s", cases[i].value, want, cases[i].why, errors);
            free(want);
            free(errors);
            free(text);
        }
    }
}

/* devtools: pipe by default; a port of the operator's own is refused over
 * pipes, and the pipe switch is the supervisor's in either mode. */
static void test_devtools(void **state)
{
    (void)state;
    struct config *cfg = test_load(MIN_INI);
    assert_int_equal(cfg->browsers.devtools, CONFIG_DEVTOOLS_PIPE);
    config_free(cfg);
    cfg = test_load(MIN_INI "devtools = port\n");
    assert_int_equal(cfg->browsers.devtools, CONFIG_DEVTOOLS_PORT);
    config_free(cfg);
    /* port mode: the supervisor's own switches come last and win */
    cfg = test_load("[exporter]\ncommand = e\n[renderer]\ncommand = r\n[browsers]\n"
                    "command = b --remote-debugging-port=1\ndevtools = port\n");
    config_free(cfg);

    char *errors = test_fail(MIN_INI "devtools = tcp\n");
    assert_string_equal(errors, "file=test.ini line=7 key=browsers.devtools: invalid value \"tcp\": "
                                "expected pipe or port\n");
    free(errors);
    static const char *const words[] = { "--remote-debugging-port=9222", "-remote-debugging-port=1",
                                         "--remote-debugging-port", "--remote-debugging-address=0.0.0.0" };
    for (size_t i = 0; i < ARRAY_SIZE(words); i++) {
        char *text = test_text("[exporter]\ncommand = e\n[renderer]\ncommand = r\n[browsers]\n"
                               "command = chromium --headless %s\n", words[i]);
        errors = test_fail(text);
        char *want = test_text("file=test.ini line=6 key=browsers.command: %s opens DevTools on a TCP port, "
                               "which devtools = pipe is there to avoid; remove it (or set devtools = port, "
                               "for debugging only)\n", words[i]);
        assert_string_equal(errors, want);
        free(want);
        free(errors);
        free(text);
    }
    /* a different switch that only starts the same */
    cfg = test_load("[exporter]\ncommand = e\n[renderer]\ncommand = r\n[browsers]\n"
                    "command = b --remote-debugging-portal=1\n");
    config_free(cfg);
    for (int port = 0; port < 2; port++) {
        char *text = test_text("[exporter]\ncommand = e\n[renderer]\ncommand = r\n[browsers]\n"
                               "command = b --remote-debugging-pipe\ndevtools = %s\n", port ? "port" : "pipe");
        errors = test_fail(text);
        assert_string_equal(errors, "file=test.ini line=6 key=browsers.command: --remote-debugging-pipe is added "
                                    "by the supervisor itself (devtools = pipe); remove it from the command\n");
        free(errors);
        free(text);
    }
}

static struct config *test_load_env(const char *text, char *const *env, char **errors);

static void test_token_not_echoed(void **state)
{
    (void)state;
    char *errors = test_fail("[renderer]\nauth_token = top\x7fsecret\n" MIN_INI);
    assert_string_equal(errors, "file=test.ini line=2 key=renderer.auth_token: invalid value: "
                                "must not contain control characters\n");
    assert_null(strstr(errors, "secret"));
    free(errors);
    /* a token (or a key) where its file's path goes is not echoed either */
    errors = test_fail("[renderer]\nauth_token_file = s3cret-token\n" MIN_INI);
    assert_string_equal(errors, "file=test.ini line=2 key=renderer.auth_token_file: invalid value: "
                                "must be an absolute path, or empty for none\n");
    free(errors);
    char *env[] = { "RENDERVISOR_EXPORTER_TLS_KEY=-----BEGIN PRIVATE KEY-----", NULL };
    assert_null(test_load_env(MIN_INI, env, &errors));
    assert_null(strstr(errors, "BEGIN"));
    assert_non_null(strstr(errors, "env=RENDERVISOR_EXPORTER_TLS_KEY key=exporter.tls_key: invalid value: "));
    free(errors);
}

static void test_long_values_cut_in_messages(void **state)
{
    (void)state;
    char *errors = test_fail("[exporter]\nlisten = 127.0.0.1:1111111111111111111111111111111111111111111111111111"
                             "11111111111111111111111111111111111111111111\n" MIN_INI);
    assert_non_null(strstr(errors, "...\": the port must be"));
    assert_true(strlen(errors) < 200);
    free(errors);
}

static void test_unknown_section_and_key(void **state)
{
    (void)state;
    /* Keys of an unknown section are not each reported again. */
    char *errors = test_fail("[Exporter]\ncommand = x\nlisten = y\n" MIN_INI);
    assert_string_equal(errors, "file=test.ini line=1 section=Exporter: unknown section "
                                "(expected supervisor, exporter, renderer, browsers or tracing)\n");
    free(errors);

    /* An empty unknown section is still reported. */
    errors = test_fail(MIN_INI "[extra]\n; nothing\n");
    assert_string_equal(errors, "file=test.ini line=7 section=extra: unknown section "
                                "(expected supervisor, exporter, renderer, browsers or tracing)\n");
    free(errors);

    /* memory_limit belongs to the children's sections only. */
    errors = test_fail("[supervisor]\nmemory_limit = 1G\n" MIN_INI);
    assert_string_equal(errors, "file=test.ini line=2 key=supervisor.memory_limit: unknown key (known in "
                                "[supervisor]: runtime_dir, sample_interval, stop_timeout, health_interval, "
                                "health_timeout, health_failures, log_level, log_format, user)\n");
    free(errors);

    /* Keys are case-sensitive; its continuation is dropped with it. */
    errors = test_fail("[exporter]\nCommand = x\n  y\n" MIN_INI);
    assert_non_null(strstr(errors, "file=test.ini line=2 key=exporter.Command: unknown key"));
    assert_int_equal(test_count_lines(errors), 1);
    free(errors);

    errors = test_fail("command = x\n" MIN_INI);
    assert_string_equal(errors, "file=test.ini line=1 key=command: key outside any section; put it under "
                                "[supervisor], [exporter], [renderer], [browsers] or [tracing]\n");
    free(errors);

    /* A name from the file is shown without its control bytes (a terminal
     * escape sequence). */
    errors = test_fail("[exporter]\n\x1b[2Jx = 1\n" MIN_INI);
    assert_non_null(strstr(errors, "file=test.ini line=2 key=exporter.?[2Jx: unknown key"));
    free(errors);
    errors = test_fail("[a\x07" "b]\n" MIN_INI);
    assert_non_null(strstr(errors, "file=test.ini line=1 section=a?b: unknown section"));
    free(errors);
}

static void test_duplicate_key(void **state)
{
    (void)state;
    /* Twice, even under a repeated header, and a continuation is not a repeat. */
    char *errors = test_fail(MIN_INI "\n[browsers]\ncount = 2\n  \n[browsers]\ncount = 3\n    4\n");
    assert_string_equal(errors, "file=test.ini line=12 key=browsers.count: given twice (first on line 9)\n");
    free(errors);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    char *errors = test_fail("[exporter\ncommand = x\n" MIN_INI);
    assert_string_equal(errors, "file=test.ini line=1: a [section] header needs its closing ']'\n");
    free(errors);

    errors = test_fail(MIN_INI "just words\n[renderer] ; comment\n= 5\nconcurrency ; = 3\n");
    assert_string_equal(errors, "file=test.ini line=7: expected key = value, a [section] or a ; comment\n"
                                "file=test.ini line=9: a key name is missing before '='\n"
                                "file=test.ini line=10: expected key = value, a [section] or a ; comment\n");
    free(errors);
}

static char *test_repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void test_long_lines(void **state)
{
    (void)state;
    static const char too_long[] =
        "line too long (at most 199 characters); continue a long value on the next line, indented";

    /* 199 characters is fine, and the whole line is read. */
    char *pad = test_repeat('x', 199 - strlen("command = a "));
    char *text = test_text("[exporter]\ncommand = a %s\n[renderer]\ncommand = r\n[browsers]\ncommand = b\n", pad);
    struct config *cfg = test_load(text);
    assert_int_equal(cfg->exporter.command.argc, 2);
    assert_string_equal(cfg->exporter.command.argv[1], pad);
    config_free(cfg);
    free(text);

    /* 200: one error, and the rest of the line is not read as a line of its own
     * (it would be an unknown key), nor its continuation as a value. */
    free(pad);
    pad = test_repeat('x', 200 - strlen("command = a ") - strlen(" x = 1"));
    text = test_text("[exporter]\ncommand = a %s x = 1\n  --more\n[renderer]\ncommand = r\n[browsers]\n"
                     "command = b\n", pad);
    char *errors = test_fail(text);
    char *want = test_text("file=test.ini line=2 key=exporter.command: %s\n", too_long);
    assert_string_equal(errors, want);
    free(want);
    free(errors);
    free(text);
    free(pad);

    /* A long continuation line is reported with its key; a long comment or
     * header without one; the lines after are still read normally. */
    pad = test_repeat('y', 250);
    text = test_text("[browsers]\n"   /* 1 */
                     "command = b\n"  /* 2 */
                     "  --a\n"        /* 3 */
                     "  --%s\n"       /* 4 */
                     "  --c\n"        /* 5 */
                     "; %s\n"         /* 6 */
                     "[%s]\n"         /* 7 */
                     "count = 98\n"   /* 8: in no section */
                     "[browsers]\n"   /* 9 */
                     "count = 99\n"   /* 10 */
                     "[exporter]\ncommand = e\n[renderer]\ncommand = r\n",
                     pad, pad, pad);
    errors = test_fail(text);
    want = test_text("file=test.ini line=4 key=browsers.command: %s\n"
                     "file=test.ini line=6: %s\n"
                     "file=test.ini line=7: %s\n"
                     "file=test.ini line=10 key=browsers.count: invalid value \"99\": must be between 1 and 16\n",
                     too_long, too_long, too_long);
    assert_string_equal(errors, want);
    free(want);
    free(errors);
    free(text);
    free(pad);
}

static void test_port_range_cross_check(void **state)
{
    (void)state;
    struct config *cfg = test_load(MIN_INI "[browsers]\ncount = 16\nport_base = 65520\n");
    assert_int_equal(cfg->browsers.port_base, 65520);
    config_free(cfg);

    /* Reported against port_base on its line, whichever key comes first. */
    char *errors = test_fail(MIN_INI "[browsers]\nport_base = 65521\ncount = 16\n");
    assert_string_equal(errors, "file=test.ini line=8 key=browsers.port_base: port_base 65521 + count 16 - 1 is "
                                "above 65535; browser ports must stay below 65536\n");
    free(errors);

    /* A default port_base with a big count fits; a bad count is not checked twice. */
    cfg = test_load(MIN_INI "[browsers]\ncount = 16\n");
    config_free(cfg);
    errors = test_fail(MIN_INI "[browsers]\nport_base = 65535\ncount = 17\n");
    assert_int_equal(test_count_lines(errors), 1);
    assert_non_null(strstr(errors, "key=browsers.count"));
    free(errors);
}

/* The exporter's and the renderer's listeners, and the browsers' DevTools
 * ports (devtools = port: 127.0.0.1:port_base+i), may not share a port on an
 * address: refused on the line of the key written last (of port_base, count
 * and devtools for the browsers), naming both sides. */
static void test_port_conflicts(void **state)
{
    (void)state;
    static const struct {
        const char *text, *error; /* NULL: loads */
    } cases[] = {
        /* listener against listener */
        { "[exporter]\nlisten = 127.0.0.1:8081\n",
          "file=test.ini line=2 key=exporter.listen: renderer.listen 0.0.0.0:8081 and exporter.listen "
          "127.0.0.1:8081 both take port 8081\n" },
        { "[renderer]\nlisten = 127.0.0.1:9465\n",
          "file=test.ini line=2 key=renderer.listen: renderer.listen 127.0.0.1:9465 and exporter.listen "
          "127.0.0.1:9465 both take port 9465\n" },
        { "[renderer]\nlisten = 10.1.2.3:7000\n[exporter]\nlisten = 0.0.0.0:7000\n",
          "file=test.ini line=4 key=exporter.listen: renderer.listen 10.1.2.3:7000 and exporter.listen "
          "0.0.0.0:7000 both take port 7000\n" },
        { "[exporter]\nlisten = localhost:7000\n[renderer]\nlisten = [::1]:7000\n",
          "file=test.ini line=4 key=renderer.listen: renderer.listen [::1]:7000 and exporter.listen "
          "localhost:7000 both take port 7000\n" },
        { "[exporter]\nlisten = [::]:7000\n[renderer]\nlisten = [fe80::1]:7000\n",
          "file=test.ini line=4 key=renderer.listen: renderer.listen [fe80::1]:7000 and exporter.listen "
          "[::]:7000 both take port 7000\n" },
        /* [::] is bound for IPv4 too; a mapped address is its IPv4 one */
        { "[exporter]\nlisten = [::]:7000\n[renderer]\nlisten = 127.0.0.1:7000\n",
          "file=test.ini line=4 key=renderer.listen: renderer.listen 127.0.0.1:7000 and exporter.listen "
          "[::]:7000 both take port 7000\n" },
        { "[exporter]\nlisten = [::ffff:127.0.0.1]:7000\n[renderer]\nlisten = localhost:7000\n",
          "file=test.ini line=4 key=renderer.listen: renderer.listen localhost:7000 and exporter.listen "
          "[::ffff:127.0.0.1]:7000 both take port 7000\n" },
        /* not conflicts: other ports, other addresses, no exporter listener */
        { "[exporter]\nlisten = 127.0.0.1:8082\n", NULL },
        { "[exporter]\nlisten = 127.0.0.1:7000\n[renderer]\nlisten = 10.1.2.3:7000\n", NULL },
        { "[exporter]\nlisten = [::1]:7000\n[renderer]\nlisten = 127.0.0.1:7000\n", NULL },
        { "[exporter]\nlisten = 0.0.0.0:7000\n[renderer]\nlisten = [::1]:7000\n", NULL },
        { "[exporter]\nlisten = localhost:7000\n[renderer]\nlisten = 127.0.0.2:7000\n", NULL },
        { "[exporter]\nlisten =\n[renderer]\nlisten = 127.0.0.1:9465\n", NULL },
        /* the browsers' ports count only with devtools = port */
        { "[renderer]\nlisten = 0.0.0.0:9223\n", NULL },
        { "[renderer]\nlisten = 0.0.0.0:9223\n[browsers]\ndevtools = port\n",
          "file=test.ini line=4 key=browsers.devtools: browsers.port_base 9222 (count 2, devtools = port) puts "
          "browser 1 on 127.0.0.1:9223, which renderer.listen 0.0.0.0:9223 also takes\n" },
        { "[browsers]\ndevtools = port\ncount = 3\nport_base = 9000\n[exporter]\nlisten = localhost:9002\n",
          "file=test.ini line=6 key=exporter.listen: browsers.port_base 9000 (count 3, devtools = port) puts "
          "browser 2 on 127.0.0.1:9002, which exporter.listen localhost:9002 also takes\n" },
        { "[browsers]\ndevtools = port\nport_base = 9465\n",
          "file=test.ini line=3 key=browsers.port_base: browsers.port_base 9465 (count 2, devtools = port) puts "
          "browser 0 on 127.0.0.1:9465, which exporter.listen 127.0.0.1:9465 also takes\n" },
        { "[browsers]\ndevtools = port\n[renderer]\nlisten = 0.0.0.0:9224\n", NULL },
        { "[browsers]\ndevtools = port\n[renderer]\nlisten = 10.1.2.3:9222\n", NULL },
        { "[browsers]\ndevtools = port\n[renderer]\nlisten = [::1]:9222\n", NULL },
        { "[browsers]\ndevtools = port\n[renderer]\nlisten = [::]:9222\n",
          "file=test.ini line=4 key=renderer.listen: browsers.port_base 9222 (count 2, devtools = port) puts "
          "browser 0 on 127.0.0.1:9222, which renderer.listen [::]:9222 also takes\n" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char *errors = NULL;
        struct config *cfg = config_load_string(cases[i].text, "test.ini", &errors);
        if (!cases[i].error && !cfg)
            fail_msg("case %zu: unexpected errors:\n%s", i, errors);
        if (cases[i].error && (cfg || strcmp(errors, cases[i].error) != 0))
            fail_msg("case %zu:\nwant: %sgot:  %s", i, cases[i].error, cfg ? "(loaded)\n" : errors);
        config_free(cfg);
        free(errors);
    }
}

static void test_socket_cross_checks(void **state)
{
    (void)state;
    /* 79 characters of runtime_dir leave 27 for a socket name. */
    char *dir = test_repeat('d', 78);
    char *text = test_text("[supervisor]\nruntime_dir = /%s\n[exporter]\nsocket = %s\n" MIN_INI, dir,
                           "012345678901234567890123456");
    struct config *cfg = test_load(text);
    char *path = config_runtime_path(cfg, cfg->exporter.socket);
    assert_int_equal(strlen(path), 107);
    free(path);
    config_free(cfg);
    free(text);

    text = test_text("[supervisor]\nruntime_dir = /%s\n[exporter]\nsocket = %s\n" MIN_INI, dir,
                     "0123456789012345678901234567");
    char *errors = test_fail(text);
    assert_non_null(strstr(errors, "file=test.ini line=4 key=exporter.socket: the socket path /ddd"));
    assert_non_null(strstr(errors, "is 108 characters; a Unix socket path must be under 108\n"));
    assert_int_equal(test_count_lines(errors), 1);
    free(errors);
    free(text);
    free(dir);

    errors = test_fail("[exporter]\ningest = exporter.sock\n" MIN_INI);
    assert_string_equal(errors, "file=test.ini line=2 key=exporter.ingest: exporter.socket and exporter.ingest "
                                "must be different sockets\n");
    free(errors);
}

static void test_every_error_names_file_line_key(void **state)
{
    (void)state;
    /* Many mistakes at once: all reported, each one checked by test_fail(). */
    char *errors = test_fail("[supervisor]\n"
                             "runtime_dir = relative\n"
                             "sample_interval = 0ms\n"
                             "stop_timeout = 1d\n"
                             "log_level = trace\n"
                             "log_format = yaml\n"
                             "[exporter]\n"
                             "command = 'x\n"
                             "listen = nowhere\n"
                             "socket = a b\n"
                             "ingest = \n"
                             "memory_limit = 1 M\n"
                             "request_buckets = 3 2\n"
                             "step_buckets = -1\n"
                             "[renderer]\n"
                             "command = \"\n"
                             "listen =\n"
                             "auth_token =\n"
                             "memory_limit = lots\n"
                             "concurrency = many\n"
                             "[browsers]\n"
                             "count = -2\n"
                             "command = \\\n"
                             "port_base = 80\n"
                             "memory_limit = 1e9\n");
    assert_int_equal(test_count_lines(errors), 21);
    /* in file order: the line numbers go up */
    int last = 0;
    for (const char *s = strstr(errors, " line="); s; s = strstr(s + 1, " line=")) {
        int line = atoi(s + 6);
        assert_true(line > last);
        last = line;
    }
    assert_int_equal(last, 25);
    free(errors);
}

static void test_errors_may_be_null(void **state)
{
    (void)state;
    assert_null(config_load_string("[nope]\n", "test.ini", NULL));
    assert_null(config_load_file("/nonexistent/rendervisor.ini", NULL));
}

/* ---- files ------------------------------------------------------------------ */

static char *test_write_data(const char *data, size_t len)
{
    char tmpl[] = "/tmp/test_config_XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        assert_true(n > 0);
        off += (size_t)n;
    }
    assert_int_equal(close(fd), 0);
    return test_text("%s", tmpl);
}

static char *test_write_file(const char *text)
{
    return test_write_data(text, strlen(text));
}

/* Comment lines up to exactly len bytes, ending in the minimal config. */
static char *test_padded_config(size_t len)
{
    size_t tail = strlen(MIN_INI);
    char *s = malloc(len + 1);
    assert_non_null(s);
    size_t off = 0;
    while (off < len - tail) {
        size_t line = len - tail - off > 100 ? 100 : len - tail - off;
        memset(s + off, ';', line - 1);
        s[off + line - 1] = '\n';
        off += line;
    }
    memcpy(s + off, MIN_INI, tail + 1);
    assert_int_equal(strlen(s), len);
    return s;
}

static void test_file_good(void **state)
{
    (void)state;
    char *path = test_write_file(config_default_ini);
    char *errors = NULL;
    struct config *cfg = config_load_file(path, &errors);
    assert_non_null(cfg);
    assert_null(errors);
    assert_string_equal(cfg->path, path);
    assert_int_equal(cfg->browsers.count, 2);
    config_free(cfg);
    unlink(path);
    free(path);

    /* Exactly 1 MiB is allowed. */
    char *text = test_padded_config(1024 * 1024);
    path = test_write_file(text);
    cfg = config_load_file(path, &errors);
    assert_non_null(cfg);
    config_free(cfg);
    cfg = config_load_string(text, "big.ini", &errors);
    assert_non_null(cfg);
    config_free(cfg);
    unlink(path);
    free(path);
    free(text);
}

static void test_file_errors_name_the_file(void **state)
{
    (void)state;
    char *path = test_write_file("[exporter]\ncommand = e\n[renderer]\ncommand = r\n[browsers]\ncommand = b\n"
                                 "count = 0\n");
    char *errors = NULL;
    assert_null(config_load_file(path, &errors));
    test_check_error_lines(errors, path);
    char *want = test_text("file=%s line=7 key=browsers.count: invalid value \"0\": must be between 1 and 16\n", path);
    assert_string_equal(errors, want);
    free(want);
    free(errors);
    unlink(path);
    free(path);
}

static void test_file_missing(void **state)
{
    (void)state;
    char *errors = NULL;
    assert_null(config_load_file("/tmp/test_config_does_not_exist/x.ini", &errors));
    assert_string_equal(errors, "file=/tmp/test_config_does_not_exist/x.ini: cannot open: No such file or directory\n");
    free(errors);

    /* A directory opens but does not read. */
    assert_null(config_load_file("/tmp", &errors));
    assert_string_equal(errors, "file=/tmp: cannot read: Is a directory\n");
    free(errors);
}

static void test_file_too_big(void **state)
{
    (void)state;
    char *text = test_padded_config(1024 * 1024 + 1);
    char *path = test_write_file(text);
    char *errors = NULL;
    assert_null(config_load_file(path, &errors));
    char *want = test_text("file=%s: larger than 1 MiB (1048576 bytes); not a config file?\n", path);
    assert_string_equal(errors, want);
    free(want);
    free(errors);

    assert_null(config_load_string(text, "big.ini", &errors));
    assert_string_equal(errors, "file=big.ini: larger than 1 MiB (1048576 bytes); not a config file?\n");
    free(errors);
    unlink(path);
    free(path);
    free(text);
}

/* ---- user and allowed_hosts ------------------------------------------------ */

/* [renderer] and [exporter] tls_cert and tls_key: absolute paths, both or
 * neither (the files themselves are common/tls.c's, tests/integration/
 * test_tls.py), plain HTTP by default. */
static void test_tls_keys(void **state)
{
    (void)state;
    char *errors = NULL;
    struct config *cfg = config_load_string(MIN_INI, "test.ini", &errors);
    assert_non_null(cfg);
    assert_string_equal(cfg->renderer.tls_cert, "");
    assert_string_equal(cfg->renderer.tls_key, "");
    assert_string_equal(cfg->exporter.tls_cert, "");
    assert_string_equal(cfg->exporter.tls_key, "");
    config_free(cfg);

    cfg = config_load_string("[exporter]\ntls_cert = /etc/e.pem\ntls_key = /etc/e.key\n"
                             "[renderer]\ntls_key = /etc/r.key\ntls_cert = /etc/r.pem\n",
                             "test.ini", &errors);
    assert_non_null(cfg);
    assert_string_equal(cfg->exporter.tls_cert, "/etc/e.pem");
    assert_string_equal(cfg->exporter.tls_key, "/etc/e.key");
    assert_string_equal(cfg->renderer.tls_cert, "/etc/r.pem");
    assert_string_equal(cfg->renderer.tls_key, "/etc/r.key");
    config_free(cfg);

    static const struct {
        const char *text, *error;
    } bad[] = {
        { "[renderer]\ntls_cert = /etc/r.pem\n",
          "file=test.ini line=2 key=renderer.tls_cert: renderer.tls_cert is set but renderer.tls_key is not: TLS "
          "needs both (or neither, for plain HTTP)\n" },
        { "[exporter]\nlisten = 127.0.0.1:9\ntls_key = /k\n",
          "file=test.ini line=3 key=exporter.tls_key: exporter.tls_key is set but exporter.tls_cert is not: TLS "
          "needs both (or neither, for plain HTTP)\n" },
        { "[renderer]\ntls_cert = r.pem\ntls_key = /k\n",
          "file=test.ini line=2 key=renderer.tls_cert: invalid value \"r.pem\": must be an absolute path, or "
          "empty for none\n" },
        { "[exporter]\nlisten =\ntls_cert = /c\ntls_key = /k\n",
          "file=test.ini line=3 key=exporter.tls_cert: exporter.listen is empty: there is no TCP listener for TLS "
          "(the Unix socket is plain)\n" },
        /* a broken one is not reported again as missing; a key's value
         * that is no path is not echoed (it may be the key itself) */
        { "[renderer]\ntls_cert = /c\ntls_key = k\n",
          "file=test.ini line=3 key=renderer.tls_key: invalid value: must be an absolute path, or empty "
          "for none\n" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        cfg = config_load_string(bad[i].text, "test.ini", &errors);
        assert_null(cfg);
        assert_string_equal(errors, bad[i].error);
        free(errors);
    }
}

static void test_user(void **state)
{
    (void)state;
    struct config *cfg = test_load(MIN_INI);
    assert_string_equal(cfg->supervisor.user, "");
    config_free(cfg);

    /* Our own user is always fine: nothing to switch. */
    struct passwd *me = getpwuid(geteuid());
    assert_non_null(me);
    char *name = test_text("%s", me->pw_name); /* getpwnam reuses its buffer */
    char *text = test_text("[supervisor]\nuser = %s\n" MIN_INI, name);
    cfg = test_load(text);
    assert_string_equal(cfg->supervisor.user, name);
    free(name);
    config_free(cfg);
    free(text);

    char *errors = test_fail("[supervisor]\nuser = no-such-user-rv\n" MIN_INI);
    assert_string_equal(errors, "file=test.ini line=2 key=supervisor.user: invalid value \"no-such-user-rv\": "
                                "no such user\n");
    free(errors);
    errors = test_fail("[supervisor]\nuser = a b\n" MIN_INI);
    assert_string_equal(errors, "file=test.ini line=2 key=supervisor.user: invalid value \"a b\": "
                                "expected one user name\n");
    free(errors);

    /* Another user: only root can run the children as someone else. */
    const char *other = geteuid() == 0 ? "nobody" : "root";
    struct passwd *pw = getpwnam(other);
    if (!pw || pw->pw_uid == geteuid())
        return;
    text = test_text("[supervisor]\nuser = %s\n" MIN_INI, other);
    if (geteuid() == 0) {
        cfg = test_load(text);
        assert_string_equal(cfg->supervisor.user, other);
        config_free(cfg);
    } else {
        errors = test_fail(text);
        assert_non_null(strstr(errors, "key=supervisor.user: invalid value"));
        assert_non_null(strstr(errors, "not as root, so it cannot run its children as uid 0"));
        free(errors);
    }
    free(text);
}

static void test_allowed_hosts(void **state)
{
    (void)state;
    struct config *cfg = test_load(MIN_INI);
    assert_null(cfg->renderer.allowed_hosts);
    config_free(cfg);

    cfg = test_load("[renderer]\ncommand = r\n"
                    "allowed_hosts = grafana.example  Grafana:3000\t[::1]\n"
                    "    [2001:db8::1]:8443 2001:db8::2 10.0.0.1:80 dot.example.\n"
                    "[exporter]\ncommand = e\n[browsers]\ncommand = b\n");
    static const char *const want[] = { "grafana.example", "Grafana:3000", "[::1]", "[2001:db8::1]:8443",
                                        "2001:db8::2", "10.0.0.1:80", "dot.example." };
    char **h = cfg->renderer.allowed_hosts;
    assert_non_null(h);
    for (size_t i = 0; i < ARRAY_SIZE(want); i++)
        assert_string_equal(h[i], want[i]);
    assert_null(h[ARRAY_SIZE(want)]);
    config_free(cfg);

    static const struct {
        const char *value, *why;
    } bad[] = {
        { "http://grafana", "host \"http://grafana\": expected a host, not a URL: no scheme, user or path" },
        { "grafana/d", "host \"grafana/d\": expected a host, not a URL: no scheme, user or path" },
        { "a@grafana", "host \"a@grafana\": expected a host, not a URL: no scheme, user or path" },
        { "ok *.example.com", "host \"*.example.com\": a host name is letters, digits, '-', '.' and '_' "
                              "(no scheme, path, '*' or '%')" },
        { "gr%61fana", "host \"gr%61fana\": a host name is letters, digits, '-', '.' and '_' "
                       "(no scheme, path, '*' or '%')" },
        { "grafana:0", "host \"grafana:0\": the port must be a number from 1 to 65535" },
        { "grafana:65536", "host \"grafana:65536\": the port must be a number from 1 to 65535" },
        { "grafana:", "host \"grafana:\": the port must be a number from 1 to 65535" },
        { ":80", "host \":80\": expected a host name of 1 to 253 characters" },
        { "[::1", "host \"[::1\": expected [IPv6 address] or [IPv6 address]:port" },
        { "[::g]", "host \"[::g]\": not a valid IPv6 address between the brackets" },
        { "[::1]80", "host \"[::1]80\": expected :port after the ]" },
        { "::1:80:x", "host \"::1:80:x\": not a valid IPv6 address (write [address]:port to give a port)" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        char *text = test_text("[renderer]\ncommand = r\nallowed_hosts = %s\n"
                               "[exporter]\ncommand = e\n[browsers]\ncommand = b\n", bad[i].value);
        char *errors = test_fail(text);
        char *shown = test_text("%s", bad[i].value);
        char *expect = test_text("file=test.ini line=3 key=renderer.allowed_hosts: invalid value \"%s\": %s\n",
                                 shown, bad[i].why);
        assert_string_equal(errors, expect);
        free(expect);
        free(shown);
        free(errors);
        free(text);
    }

    /* A long name is fine up to DNS's 253 characters. */
    char name[300];
    memset(name, 'a', 253);
    name[253] = '\0';
    char **hosts = NULL;
    char why[256];
    assert_int_equal(config_parse_hosts(name, &hosts, why, sizeof(why)), 0);
    assert_string_equal(hosts[0], name);
    config_hosts_free(hosts);
    strcat(name, "a");
    assert_int_equal(config_parse_hosts(name, &hosts, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "expected a host name of 1 to 253 characters"));
}

/* [renderer] log_page: a switch, false unless set; a word that is not one
 * is refused naming the key and the words it takes. */
static void test_log_page(void **state)
{
    (void)state;
    struct config *cfg = test_load(MIN_INI);
    assert_int_equal(cfg->renderer.log_page, 0);
    config_free(cfg);

    static const struct {
        const char *value;
        int want;
    } good[] = {
        { "true", 1 }, { "TRUE", 1 }, { "yes", 1 }, { "on", 1 }, { "1", 1 },
        { "false", 0 }, { "No", 0 }, { "off", 0 }, { "0", 0 },
    };
    for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
        char *text = test_text("[renderer]\ncommand = r\nlog_page = %s\n"
                               "[exporter]\ncommand = e\n[browsers]\ncommand = b\n", good[i].value);
        cfg = test_load(text);
        assert_int_equal(cfg->renderer.log_page, good[i].want);
        config_free(cfg);
        free(text);
    }

    const char *bad[] = { "", "2", "truee", "y", "enabled" };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        char *text = test_text("[renderer]\ncommand = r\nlog_page = %s\n"
                               "[exporter]\ncommand = e\n[browsers]\ncommand = b\n", bad[i]);
        char *errors = test_fail(text);
        char *expect = test_text("file=test.ini line=3 key=renderer.log_page: invalid value \"%s\": expected "
                                 "true or false\n", bad[i]);
        assert_string_equal(errors, expect);
        free(expect);
        free(errors);
        free(text);
    }
}

/* [renderer] timezone: what a request's timezone may be, stored as the id
 * Chromium takes; empty, browser and default are the browser's own zone. */
static void test_timezone(void **state)
{
    (void)state;
    struct config *cfg = test_load(MIN_INI);
    assert_string_equal(cfg->renderer.timezone, "");
    config_free(cfg);

    static const struct {
        const char *value, *want;
    } good[] = {
        { "Europe/Stockholm", "Europe/Stockholm" }, { "UTC", "UTC" }, { "utc", "UTC" },
        { "UTC-05:00", "Etc/GMT-5" }, { "GMT+05:30", "GMT+05:30" }, { "+05:30", "GMT+05:30" },
        { "browser", "" }, { "Default", "" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
        char *text = test_text("[renderer]\ncommand = r\ntimezone = %s\n"
                               "[exporter]\ncommand = e\n[browsers]\ncommand = b\n", good[i].value);
        cfg = test_load(text);
        assert_string_equal(cfg->renderer.timezone, good[i].want);
        config_free(cfg);
        free(text);
    }
    cfg = test_load("[renderer]\ncommand = r\ntimezone =\n[exporter]\ncommand = e\n[browsers]\ncommand = b\n");
    assert_string_equal(cfg->renderer.timezone, "");
    config_free(cfg);

    const char *bad[] = { "UTC+24:00", "Europe Stockholm", "-5:3", "../etc/localtime", "UTC%2B05" };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        char *text = test_text("[renderer]\ncommand = r\ntimezone = %s\n"
                               "[exporter]\ncommand = e\n[browsers]\ncommand = b\n", bad[i]);
        char *errors = test_fail(text);
        char *expect = test_text("file=test.ini line=3 key=renderer.timezone: invalid value \"%s\": expected "
                                 "an IANA name such as Europe/Stockholm, UTC, UTC-05:00 (POSIX sign, as Grafana "
                                 "sends it), GMT+05:30, +05:30, browser or default, or empty for the browser's "
                                 "own zone\n", bad[i]);
        assert_string_equal(errors, expect);
        free(expect);
        free(errors);
        free(text);
    }
}

static void test_tracing(void **state)
{
    (void)state;
    /* off by default */
    struct config *cfg = test_load(MIN_INI);
    assert_string_equal(cfg->tracing.endpoint, "");
    assert_string_equal(cfg->tracing.service_name, "rendervisor");
    assert_true(cfg->tracing.sample_ratio == 1.0);
    assert_int_equal(cfg->tracing.timeout_ns, 5000000000LL);
    config_free(cfg);

    cfg = test_load(MIN_INI "[tracing]\nendpoint = https://otel.example:4318/v1/traces\nservice_name = rv eu-1\n"
                            "sample_ratio = 0.25\ntimeout = 500ms\n");
    assert_string_equal(cfg->tracing.endpoint, "https://otel.example:4318/v1/traces");
    assert_string_equal(cfg->tracing.service_name, "rv eu-1");
    assert_true(cfg->tracing.sample_ratio == 0.25);
    assert_int_equal(cfg->tracing.timeout_ns, 500000000LL);
    config_free(cfg);
    cfg = test_load(MIN_INI "[tracing]\nendpoint = http://[::1]:4318/v1/traces\nsample_ratio = 0\n");
    assert_string_equal(cfg->tracing.endpoint, "http://[::1]:4318/v1/traces");
    assert_true(cfg->tracing.sample_ratio == 0.0);
    config_free(cfg);

    static const struct {
        const char *key, *value, *why;
    } bad[] = {
        { "endpoint", "tempo:4318", "expected an http:// or https:// URL" },
        { "endpoint", "grpc://tempo:4317", "expected an http:// or https:// URL" },
        { "endpoint", "http://", "the URL has no host" },
        { "endpoint", "http:///v1/traces", "the URL has no host" },
        { "endpoint", "http://user:pw@tempo/v1/traces", "user info" },
        { "service_name", "a\x01b", "control characters" },
        { "sample_ratio", "1.5", "must be from 0 to 1" },
        { "sample_ratio", "-0.1", "expected a number from 0 to 1" },
        { "sample_ratio", "10%", "expected a number from 0 to 1" },
        { "sample_ratio", "nan", "expected a number from 0 to 1" },
        { "sample_ratio", "", "expected a number from 0 to 1" },
        { "timeout", "10ms", "must be between 100ms and 1m" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        test_one_bad_value("tracing", bad[i].key, bad[i].value, bad[i].why);
    test_one_bad_value("tracing", "service_name", "", "must be 1 to 128 characters");
}

static void test_file_nul_byte(void **state)
{
    (void)state;
    static const char data[] = "[exporter]\ncommand = e\0x\n";
    char *path = test_write_data(data, sizeof(data) - 1);
    char *errors = NULL;
    assert_null(config_load_file(path, &errors));
    char *want = test_text("file=%s line=2: contains a NUL byte; not a text file?\n", path);
    assert_string_equal(errors, want);
    free(want);
    free(errors);
    unlink(path);
    free(path);
}

/* One parser gives the checks and the port-conflict test the same reading. */
static void test_listen_addr(void **state)
{
    (void)state;
    struct config_listen l;
    const char *why;
    assert_int_equal(config_parse_listen_addr("127.0.0.2:8081", &l, &why), 0);
    assert_int_equal(l.family, AF_INET);
    assert_false(l.localhost);
    assert_int_equal(l.port, 8081);
    assert_memory_equal(l.addr, "\x7f\0\0\x02", 4);
    assert_int_equal(config_parse_listen_addr("[::ffff:10.0.0.1]:1", &l, &why), 0);
    assert_int_equal(l.family, AF_INET6);
    assert_int_equal(l.port, 1);
    assert_int_equal(l.addr[15], 1);
    assert_int_equal(config_parse_listen_addr("localhost:65535", &l, &why), 0);
    assert_true(l.localhost);
    assert_int_equal(l.port, 65535);
    assert_int_equal(config_parse_listen_addr("localhost:65536", &l, &why), -EINVAL);
    assert_string_equal(why, "the port must be a number from 1 to 65535");
}

/* ---- the environment ------------------------------------------------------- */

static struct config *test_load_env(const char *text, char *const *env, char **errors)
{
    char *path = test_write_file(text);
    struct config *cfg = config_load(path, env, errors);
    unlink(path);
    free(path);
    return cfg;
}

static const struct config_source *test_source(const struct config *cfg, const char *section, const char *name)
{
    for (size_t i = 0; i < config_key_count(); i++) {
        const char *s, *n;
        config_key_name(i, &s, &n);
        if (strcmp(s, section) == 0 && strcmp(n, name) == 0)
            return &cfg->sources[i];
    }
    fail_msg("no key %s.%s", section, name);
    return NULL;
}

/* env over file over default, each key's source kept */
static void test_env_precedence(void **state)
{
    (void)state;
    char *env[] = { "PATH=/usr/bin", "RENDERVISOR_RENDERER_LISTEN=127.0.0.1:9999",
                    "RENDERVISOR_BROWSERS_PORT_BASE=9400", "RENDERVISOR_EXPORTER_LISTEN=", "RENDERVISORX=1",
                    NULL };
    char *errors = NULL;
    struct config *cfg = test_load_env("[renderer]\nlisten = 127.0.0.1:8888\nconcurrency = 3\n" MIN_INI, env, &errors);
    assert_null(errors);
    assert_non_null(cfg);
    assert_string_equal(cfg->renderer.listen, "127.0.0.1:9999");
    assert_int_equal(cfg->browsers.port_base, 9400);
    assert_string_equal(cfg->exporter.listen, "");          /* set, empty: no TCP listener */
    assert_int_equal(cfg->renderer.concurrency, 3);         /* the file's */
    assert_int_equal(cfg->browsers.count, 2);               /* the default */
    const struct config_source *src = test_source(cfg, "renderer", "listen");
    assert_int_equal(src->from, CONFIG_FROM_ENV);
    assert_string_equal(src->text, "127.0.0.1:9999");
    src = test_source(cfg, "renderer", "concurrency");
    assert_int_equal(src->from, CONFIG_FROM_FILE);
    assert_int_equal(src->line, 3);
    src = test_source(cfg, "browsers", "count");
    assert_int_equal(src->from, CONFIG_FROM_DEFAULT);
    assert_string_equal(src->text, "2");
    /* what an error found after loading (a file a key names) says of it */
    char where[256];
    config_where(cfg, "renderer", "listen", where, sizeof(where));
    assert_string_equal(where, "env=RENDERVISOR_RENDERER_LISTEN");
    config_where(cfg, "renderer", "concurrency", where, sizeof(where));
    char *want = test_text("file=%s", cfg->path);
    assert_string_equal(where, want);
    free(want);
    config_free(cfg);

    /* no file: the embedded default under the environment */
    cfg = config_load(NULL, env, &errors);
    assert_non_null(cfg);
    assert_string_equal(cfg->renderer.listen, "127.0.0.1:9999");
    assert_int_equal(test_source(cfg, "renderer", "concurrency")->from, CONFIG_FROM_DEFAULT);
    config_free(cfg);

    /* without env the file's value stands */
    cfg = test_load_env("[renderer]\nlisten = 127.0.0.1:8888\n" MIN_INI, NULL, &errors);
    assert_string_equal(cfg->renderer.listen, "127.0.0.1:8888");
    config_free(cfg);
}

static void test_env_errors_name_the_variable(void **state)
{
    (void)state;
    char *env[] = { "RENDERVISOR_RENDERER_CONCURRENCY=0", "RENDERVISOR_RENDERER_NOPE=1", "RENDERVISOR_NOPE_X=1",
                    "RENDERVISOR_renderer_listen=127.0.0.1:1", "RENDERVISOR_RENDERER_AUTH_TOKEN=top\x01secret",
                    NULL };
    char *errors = NULL;
    assert_null(test_load_env(MIN_INI, env, &errors));
    assert_non_null(strstr(errors, "env=RENDERVISOR_RENDERER_CONCURRENCY key=renderer.concurrency: invalid value "
                                   "\"0\": must be between 1 and 64\n"));
    assert_non_null(strstr(errors, "env=RENDERVISOR_RENDERER_NOPE: unknown key in [renderer] (known: COMMAND, "));
    /* (a section added later comes after these) */
    assert_non_null(strstr(errors, "env=RENDERVISOR_NOPE_X: names no section; expected "
                                   "RENDERVISOR_<SECTION>_<KEY> with SECTION one of SUPERVISOR, EXPORTER, RENDERER, "
                                   "BROWSERS"));
    assert_non_null(strstr(errors, "env=RENDERVISOR_renderer_listen: unknown key in [renderer] (known: "));
    assert_non_null(strstr(errors, "env=RENDERVISOR_RENDERER_AUTH_TOKEN key=renderer.auth_token: invalid value: "
                                   "must not contain control characters\n"));
    assert_null(strstr(errors, "secret"));
    assert_int_equal(test_count_lines(errors), 5);
    free(errors);

    /* a cross check with the environment's value names the variable */
    char *ports[] = { "RENDERVISOR_EXPORTER_LISTEN=127.0.0.1:8081", NULL };
    assert_null(test_load_env("[renderer]\nlisten = 127.0.0.1:8081\n" MIN_INI, ports, &errors));
    assert_non_null(strstr(errors, "env=RENDERVISOR_EXPORTER_LISTEN key=exporter.listen: renderer.listen "));
    free(errors);
}

static void test_env_name(void **state)
{
    (void)state;
    char buf[64];
    config_env_name("renderer", "auth_token_file", buf, sizeof(buf));
    assert_string_equal(buf, "RENDERVISOR_RENDERER_AUTH_TOKEN_FILE");
    /* every key has one, and no two keys share it */
    for (size_t i = 0; i < config_key_count(); i++)
        for (size_t j = i + 1; j < config_key_count(); j++) {
            const char *s1, *n1, *s2, *n2;
            char a[96], b[96];
            config_key_name(i, &s1, &n1);
            config_key_name(j, &s2, &n2);
            config_env_name(s1, n1, a, sizeof(a));
            config_env_name(s2, n2, b, sizeof(b));
            assert_string_not_equal(a, b);
        }
}

/* ---- tokens ------------------------------------------------------------------ */

static size_t test_ntokens(char **t)
{
    size_t n = 0;
    while (t && t[n])
        n++;
    return n;
}

static void test_tokens_inline(void **state)
{
    (void)state;
    struct config *cfg = test_load("[renderer]\nauth_token = old  new\tthird\n" MIN_INI);
    assert_int_equal(test_ntokens(cfg->renderer.tokens), 3);
    assert_string_equal(cfg->renderer.tokens[0], "old");
    assert_string_equal(cfg->renderer.tokens[1], "new");
    assert_string_equal(cfg->renderer.tokens[2], "third");
    config_free(cfg);
    cfg = test_load(MIN_INI);
    assert_int_equal(test_ntokens(cfg->renderer.tokens), 1);
    assert_string_equal(cfg->renderer.tokens[0], "-");
    config_free(cfg);
    /* a comma is part of a token, as it always was */
    cfg = test_load("[renderer]\nauth_token = a,b\n" MIN_INI);
    assert_int_equal(test_ntokens(cfg->renderer.tokens), 1);
    config_free(cfg);
}

static void test_token_file_parse(void **state)
{
    (void)state;
    char **t = NULL, why[256];
    static const char text[] = "# rotated 2026-12-05\n\n  old  \r\nnew\n#new2\n   \nlast";
    assert_int_equal(config_parse_token_file(text, strlen(text), &t, why, sizeof(why)), 0);
    assert_int_equal(test_ntokens(t), 3);
    assert_string_equal(t[0], "old");
    assert_string_equal(t[1], "new");
    assert_string_equal(t[2], "last");
    config_tokens_free(t);
    static const char bad[] = "ok\ntwo words\n";
    assert_int_equal(config_parse_token_file(bad, strlen(bad), &t, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "line 2:"));
    assert_null(strstr(why, "words"));
    assert_int_equal(config_parse_token_file("", 0, &t, why, sizeof(why)), 0);
    assert_null(t);
}

static void test_token_file(void **state)
{
    (void)state;
    char *tokens = test_write_file("# tokens\nfile1\nfile2\n");
    char *text = test_text("[renderer]\nauth_token_file = %s\n" MIN_INI, tokens);
    /* the file alone: its tokens, not the default - */
    struct config *cfg = test_load(text);
    assert_int_equal(test_ntokens(cfg->renderer.tokens), 2);
    assert_string_equal(cfg->renderer.tokens[0], "file1");
    assert_string_equal(cfg->renderer.auth_token_file, tokens);
    config_free(cfg);
    free(text);
    /* with auth_token: the union */
    text = test_text("[renderer]\nauth_token = inline\nauth_token_file = %s\n" MIN_INI, tokens);
    cfg = test_load(text);
    assert_int_equal(test_ntokens(cfg->renderer.tokens), 3);
    assert_string_equal(cfg->renderer.tokens[0], "inline");
    assert_string_equal(cfg->renderer.tokens[2], "file2");
    config_free(cfg);

    /* others may read it: refused, naming the mode */
    assert_int_equal(chmod(tokens, 0644), 0);
    char *errors = test_fail(text);
    char *want = test_text("file=test.ini line=3 key=renderer.auth_token_file: %s: others may read it (mode 0644): "
                           "a secret must be", tokens);
    assert_memory_equal(errors, want, strlen(want));
    free(want);
    free(errors);
    assert_int_equal(chmod(tokens, 0602), 0);
    errors = test_fail(text);
    assert_non_null(strstr(errors, "others may change it (mode 0602)"));
    free(errors);
    free(text);

    /* group-readable is how the renderer's user reads it */
    assert_int_equal(chmod(tokens, 0640), 0);
    text = test_text("[renderer]\nauth_token_file = %s\n" MIN_INI, tokens);
    cfg = test_load(text);
    config_free(cfg);
    free(text);

    /* missing, a directory, no token at all */
    errors = test_fail("[renderer]\nauth_token_file = /nonexistent/tokens\n" MIN_INI);
    assert_non_null(strstr(errors, "/nonexistent/tokens: cannot open: No such file or directory"));
    free(errors);
    errors = test_fail("[renderer]\nauth_token_file = /tmp\n" MIN_INI);
    assert_non_null(strstr(errors, "/tmp: not a regular file"));
    free(errors);
    unlink(tokens);
    free(tokens);
    tokens = test_write_file("# nothing yet\n");
    text = test_text("[renderer]\nauth_token_file = %s\n" MIN_INI, tokens);
    errors = test_fail(text);
    assert_non_null(strstr(errors, "holds no token"));
    free(errors);
    free(text);
    unlink(tokens);
    free(tokens);
}

/* ---- --print ------------------------------------------------------------------ */

/* What config_print writes (the caller frees it). Through a file, as the
 * memory open_memstream gives is not cmocka's to free. */
static char *test_printed(const struct config *cfg)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    config_print(cfg, f);
    long len = ftell(f);
    assert_true(len > 0);
    char *out = malloc((size_t)len + 1);
    assert_non_null(out);
    rewind(f);
    assert_int_equal(fread(out, 1, (size_t)len, f), (size_t)len);
    out[len] = '\0';
    fclose(f);
    return out;
}

static void test_print(void **state)
{
    (void)state;
    char *tokens = test_write_file("t1\nt2\nt3\n");
    char *text = test_text("[renderer]\nauth_token = s3cret other\nconcurrency = 3\nauth_token_file = %s\n" MIN_INI,
                           tokens);
    char *path = test_write_file(text);
    char *env[] = { "RENDERVISOR_RENDERER_LISTEN=127.0.0.1:9999", NULL };
    char *errors = NULL;
    struct config *cfg = config_load(path, env, &errors);
    assert_non_null(cfg);
    char *out = test_printed(cfg);
    assert_null(strstr(out, "s3cret"));
    assert_null(strstr(out, "t1"));
    assert_non_null(strstr(out, "[supervisor]\nruntime_dir = /run/rendervisor ; default\n"));
    assert_non_null(strstr(out, "\nlisten = 127.0.0.1:9999 ; env RENDERVISOR_RENDERER_LISTEN\n"));
    char *want = test_text("\nconcurrency = 3 ; %s:3\n", path);
    assert_non_null(strstr(out, want));
    free(want);
    want = test_text("\nauth_token = (2 tokens, hidden) ; %s:2\n", path);
    assert_non_null(strstr(out, want));
    free(want);
    want = test_text("\nauth_token_file = %s ; %s:4, 3 tokens\n", tokens, path);
    assert_non_null(strstr(out, want));
    free(want);
    /* every key, once */
    for (size_t i = 0; i < config_key_count(); i++) {
        const char *s, *n;
        config_key_name(i, &s, &n);
        char *line = test_text("\n%s = ", n);
        assert_non_null(strstr(out, line));
        free(line);
    }
    free(out);
    config_free(cfg);

    /* the default token, unused beside a file */
    free(text);
    text = test_text("[renderer]\nauth_token_file = %s\n" MIN_INI, tokens);
    cfg = test_load(text);
    out = test_printed(cfg);
    assert_non_null(strstr(out, "\nauth_token = (unused: auth_token_file is set) ; default\n"));
    free(out);
    config_free(cfg);
    cfg = test_load(MIN_INI);
    out = test_printed(cfg);
    assert_non_null(strstr(out, "\nauth_token = (1 token, hidden) ; default\n"));
    free(out);
    config_free(cfg);
    unlink(path);
    unlink(tokens);
    free(path);
    free(tokens);
    free(text);
}

/* A token file given by the environment over the embedded default, or over
 * the copy of it the supervisor writes for its children: the default's
 * auth_token = - is not taken beside it, and --print says so. */
static void test_token_file_beside_default(void **state)
{
    (void)state;
    char *tokens = test_write_file("file1\n");
    char *var = test_text("RENDERVISOR_RENDERER_AUTH_TOKEN_FILE=%s", tokens);
    char *env[] = { var, NULL };
    char *copy = test_write_data(config_default_ini, config_default_ini_len);
    const char *paths[] = { NULL, copy };
    for (size_t i = 0; i < 2; i++) {
        char *errors = NULL;
        struct config *cfg = config_load(paths[i], env, &errors);
        assert_null(errors);
        assert_non_null(cfg);
        assert_int_equal(test_ntokens(cfg->renderer.tokens), 1);
        assert_string_equal(cfg->renderer.tokens[0], "file1");
        assert_int_equal(test_source(cfg, "renderer", "auth_token")->from, CONFIG_FROM_DEFAULT);
        char *out = test_printed(cfg);
        assert_non_null(strstr(out, "\nauth_token = (unused: auth_token_file is set) ; default\n"));
        char *want = test_text("\nauth_token_file = %s ; env RENDERVISOR_RENDERER_AUTH_TOKEN_FILE, 1 token\n", tokens);
        assert_non_null(strstr(out, want));
        free(want);
        free(out);
        config_free(cfg);
    }
    /* a file that differs from the default is the operator's: its
     * auth_token is taken with the file's tokens */
    char *edited = test_text("%.*s; edited\n", (int)config_default_ini_len, config_default_ini);
    char *path = test_write_file(edited);
    struct config *cfg = config_load(path, env, NULL);
    assert_non_null(cfg);
    assert_int_equal(test_ntokens(cfg->renderer.tokens), 2);
    assert_string_equal(cfg->renderer.tokens[0], "-");
    assert_int_equal(test_source(cfg, "renderer", "auth_token")->from, CONFIG_FROM_FILE);
    config_free(cfg);
    unlink(path);
    free(path);
    free(edited);
    unlink(copy);
    free(copy);
    unlink(tokens);
    free(tokens);
    free(var);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_loads),
        cmocka_unit_test(test_default_text),
        cmocka_unit_test(test_minimal_uses_fallbacks),
        cmocka_unit_test(test_every_key_set),
        cmocka_unit_test(test_size_good),
        cmocka_unit_test(test_size_bad),
        cmocka_unit_test(test_duration_good),
        cmocka_unit_test(test_duration_bad),
        cmocka_unit_test(test_uint),
        cmocka_unit_test(test_buckets_good),
        cmocka_unit_test(test_buckets_bad),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_split_good),
        cmocka_unit_test(test_split_bad),
        cmocka_unit_test(test_split_word_limit),
        cmocka_unit_test(test_command_copy),
        cmocka_unit_test(test_runtime_path),
        cmocka_unit_test(test_continuation_joins),
        cmocka_unit_test(test_indented_keys_and_formats),
        cmocka_unit_test(test_errors_in_order_with_lines),
        cmocka_unit_test(test_partial_file_uses_defaults),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_bad_commands),
        cmocka_unit_test(test_devtools),
        cmocka_unit_test(test_token_not_echoed),
        cmocka_unit_test(test_long_values_cut_in_messages),
        cmocka_unit_test(test_unknown_section_and_key),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_port_range_cross_check),
        cmocka_unit_test(test_port_conflicts),
        cmocka_unit_test(test_socket_cross_checks),
        cmocka_unit_test(test_every_error_names_file_line_key),
        cmocka_unit_test(test_errors_may_be_null),
        cmocka_unit_test(test_file_good),
        cmocka_unit_test(test_file_errors_name_the_file),
        cmocka_unit_test(test_file_missing),
        cmocka_unit_test(test_file_too_big),
        cmocka_unit_test(test_file_nul_byte),
        cmocka_unit_test(test_tls_keys),
        cmocka_unit_test(test_user),
        cmocka_unit_test(test_allowed_hosts),
        cmocka_unit_test(test_timezone),
        cmocka_unit_test(test_listen_addr),
        cmocka_unit_test(test_env_precedence),
        cmocka_unit_test(test_env_errors_name_the_variable),
        cmocka_unit_test(test_env_name),
        cmocka_unit_test(test_tokens_inline),
        cmocka_unit_test(test_token_file_parse),
        cmocka_unit_test(test_token_file),
        cmocka_unit_test(test_token_file_beside_default),
        cmocka_unit_test(test_print),
        cmocka_unit_test(test_log_page),
        cmocka_unit_test(test_tracing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
