/* libFuzzer target for the config parser: the input is a config file, read
 * both through config_load_file (from a memfd, so the real reader with its NUL
 * and size checks runs) and as text through config_load_string. Beyond the
 * sanitizers, it checks that both readings agree, that "\r\n" line ends read
 * as "\n" ones, that every error line names the file, and that a config that
 * loads keeps every value within the bounds docs/configuration.md gives it. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"

#define FUZZ_NAME "fuzz_config"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NS_PER_MS INT64_C(1000000)
#define FUZZ_SUN_PATH sizeof(((struct sockaddr_un *)0)->sun_path)

/* What config_parse_socket accepts, and its path inside runtime_dir fits. */
static void fuzz_check_socket(const struct config *cfg, const char *name)
{
    FUZZ_CHECK(name && name[0], name);
    for (const char *s = name; *s; s++)
        FUZZ_CHECK((unsigned char)*s > ' ' && *s != 0x7f, name);
    if (name[0] != '/')
        FUZZ_CHECK(!strchr(name, '/') && strcmp(name, ".") != 0 && strcmp(name, "..") != 0, name);
    char *path = config_runtime_path(cfg, name);
    FUZZ_CHECK(strlen(path) < FUZZ_SUN_PATH, path);
    free(path);
}

static void fuzz_check_command(const struct config_command *cmd)
{
    FUZZ_CHECK(cmd->argv && cmd->argc >= 1 && cmd->argc <= 256, NULL);
    FUZZ_CHECK(cmd->argv[0][0] != '\0', NULL);
    for (int i = 0; i < cmd->argc; i++)
        FUZZ_CHECK(cmd->argv[i] != NULL, NULL);
    FUZZ_CHECK(cmd->argv[cmd->argc] == NULL, NULL);

    struct config_command copy;
    config_command_copy(&copy, cmd);
    FUZZ_CHECK(copy.argc == cmd->argc && copy.argv[copy.argc] == NULL, NULL);
    for (int i = 0; i < cmd->argc; i++)
        FUZZ_CHECK(strcmp(copy.argv[i], cmd->argv[i]) == 0, cmd->argv[i]);
    config_command_fini(&copy);
    FUZZ_CHECK(copy.argv == NULL && copy.argc == 0, NULL);
}

static void fuzz_check_buckets(const struct config_buckets *b)
{
    FUZZ_CHECK(b->count >= 1 && b->count <= CONFIG_MAX_BUCKETS, NULL);
    for (size_t i = 0; i < b->count; i++) {
        FUZZ_CHECK(isfinite(b->bounds[i]) && b->bounds[i] > 0, NULL);
        if (i > 0)
            FUZZ_CHECK(b->bounds[i] > b->bounds[i - 1], NULL);
    }
}

static void fuzz_check_listen(const char *listen, int optional)
{
    const char *why;
    FUZZ_CHECK(listen != NULL, NULL);
    if (optional && !listen[0])
        return;
    FUZZ_CHECK(config_parse_listen(listen, &why) == 0, listen);
}

/* NULL (any host), or 1 to 256 words that read back the same. */
static void fuzz_check_hosts(char **hosts)
{
    if (!hosts)
        return;
    size_t n = 0, len = 0;
    for (; hosts[n]; n++) {
        FUZZ_CHECK(hosts[n][0] && !strpbrk(hosts[n], " \t"), hosts[n]);
        len += strlen(hosts[n]) + 1;
    }
    FUZZ_CHECK(n >= 1 && n <= 256, NULL);
    char *text = malloc(len), *t = text;
    for (size_t i = 0; i < n; i++)
        t += sprintf(t, "%s%s", i ? " " : "", hosts[i]);
    char **again = NULL;
    char why[256];
    FUZZ_CHECK(config_parse_hosts(text, &again, why, sizeof(why)) == 0 && again, text);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(again[i] && strcmp(again[i], hosts[i]) == 0, hosts[i]);
    FUZZ_CHECK(again[n] == NULL, text);
    config_hosts_free(again);
    free(text);
}

/* tls_cert and tls_key: both absolute paths, or both empty. */
static void fuzz_check_tls(const char *cert, const char *key)
{
    FUZZ_CHECK(cert && key, NULL);
    FUZZ_CHECK(!cert[0] == !key[0], cert);
    FUZZ_CHECK(!cert[0] || (cert[0] == '/' && key[0] == '/'), cert);
}

/* Every field of a config that loaded, against its documented range. */
static void fuzz_check_config(const struct config *cfg, const char *name)
{
    FUZZ_CHECK(cfg->path && strcmp(cfg->path, name) == 0, cfg->path);

    const char *dir = cfg->supervisor.runtime_dir;
    FUZZ_CHECK(dir && dir[0] == '/' && strlen(dir) < 80, dir);
    FUZZ_CHECK(cfg->supervisor.sample_interval_ns >= 100 * FUZZ_NS_PER_MS &&
               cfg->supervisor.sample_interval_ns <= 60 * 60000 * FUZZ_NS_PER_MS, NULL);
    FUZZ_CHECK(cfg->supervisor.stop_timeout_ns >= 100 * FUZZ_NS_PER_MS &&
               cfg->supervisor.stop_timeout_ns <= 10 * 60000 * FUZZ_NS_PER_MS, NULL);
    FUZZ_CHECK(cfg->supervisor.health_interval_ns >= 0 &&
               cfg->supervisor.health_interval_ns <= 10 * 60000 * FUZZ_NS_PER_MS, NULL);
    FUZZ_CHECK(cfg->supervisor.health_timeout_ns >= 100 * FUZZ_NS_PER_MS &&
               cfg->supervisor.health_timeout_ns <= 60000 * FUZZ_NS_PER_MS, NULL);
    FUZZ_CHECK(cfg->supervisor.health_failures >= 1 && cfg->supervisor.health_failures <= 100, NULL);
    FUZZ_CHECK(cfg->supervisor.user != NULL, NULL);
    for (const char *s = cfg->supervisor.user; *s; s++)
        FUZZ_CHECK((unsigned char)*s > ' ' && *s != 0x7f, cfg->supervisor.user);
    FUZZ_CHECK(cfg->supervisor.log_level >= CONFIG_LOG_DEBUG && cfg->supervisor.log_level <= CONFIG_LOG_ERROR,
               NULL);
    FUZZ_CHECK(cfg->supervisor.log_format == CONFIG_LOG_TEXT || cfg->supervisor.log_format == CONFIG_LOG_JSON,
               NULL);

    fuzz_check_command(&cfg->exporter.command);
    fuzz_check_listen(cfg->exporter.listen, 1);
    fuzz_check_socket(cfg, cfg->exporter.socket);
    fuzz_check_socket(cfg, cfg->exporter.ingest);
    FUZZ_CHECK(strcmp(cfg->exporter.socket, cfg->exporter.ingest) != 0, cfg->exporter.socket);
    fuzz_check_buckets(&cfg->exporter.request_buckets);
    fuzz_check_buckets(&cfg->exporter.step_buckets);

    fuzz_check_command(&cfg->renderer.command);
    fuzz_check_listen(cfg->renderer.listen, 0);
    /* auth_token: words separated by spaces or tabs, at least one, no
     * other control byte; the tokens a render may carry: each a word */
    const char *token = cfg->renderer.auth_token;
    FUZZ_CHECK(token && token[strspn(token, " \t")], NULL);
    for (const char *s = token; *s; s++)
        FUZZ_CHECK((unsigned char)*s >= ' ' || *s == '\t', NULL);
    FUZZ_CHECK(cfg->renderer.tokens && cfg->renderer.tokens[0], NULL);
    for (size_t i = 0; cfg->renderer.tokens[i]; i++) {
        FUZZ_CHECK(cfg->renderer.tokens[i][0], NULL);
        for (const char *s = cfg->renderer.tokens[i]; *s; s++)
            FUZZ_CHECK((unsigned char)*s > ' ' && *s != 0x7f, NULL);
    }
    FUZZ_CHECK(cfg->renderer.concurrency >= 1 && cfg->renderer.concurrency <= 64, NULL);
    FUZZ_CHECK(cfg->renderer.connections_per_address >= 1 && cfg->renderer.connections_per_address <= 512, NULL);
    fuzz_check_hosts(cfg->renderer.allowed_hosts);
    fuzz_check_tls(cfg->renderer.tls_cert, cfg->renderer.tls_key);
    fuzz_check_tls(cfg->exporter.tls_cert, cfg->exporter.tls_key);
    FUZZ_CHECK(!cfg->exporter.tls_cert[0] || cfg->exporter.listen[0], cfg->exporter.tls_cert);

    FUZZ_CHECK(cfg->browsers.count >= 1 && cfg->browsers.count <= 16, NULL);
    fuzz_check_command(&cfg->browsers.command);
    FUZZ_CHECK(cfg->browsers.port_base >= 1024 && cfg->browsers.port_base + cfg->browsers.count - 1 <= 65535,
               NULL);
    FUZZ_CHECK(cfg->browsers.drain_timeout_ns >= 0 && cfg->browsers.drain_timeout_ns <= 10 * 60000 * FUZZ_NS_PER_MS,
               NULL);
}

/* One error per line, each naming the file (config.h) and, when it names a
 * line, one the file has. */
static void fuzz_check_errors(const char *errors, const char *name, int nlines)
{
    FUZZ_CHECK(errors && errors[0], NULL);
    size_t len = strlen(errors);
    FUZZ_CHECK(errors[len - 1] == '\n', errors);
    char prefix[64];
    int plen = snprintf(prefix, sizeof(prefix), "file=%s", name);
    for (const char *l = errors; *l;) {
        const char *e = strchr(l, '\n');
        FUZZ_CHECK(strncmp(l, prefix, (size_t)plen) == 0 && (l[plen] == ' ' || l[plen] == ':'), l);
        FUZZ_CHECK(memmem(l, (size_t)(e - l), ": ", 2) != NULL, l);
        int line;
        if (strncmp(l + plen, " line=", 6) == 0)
            FUZZ_CHECK(sscanf(l + plen + 6, "%d", &line) == 1 && line >= 1 && line <= nlines, l);
        l = e + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char name[64];
    if (fd < 0) {
        fd = memfd_create("fuzz_config", MFD_CLOEXEC);
        if (fd < 0)
            fuzz_fail("memfd_create", NULL);
        snprintf(name, sizeof(name), "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        fuzz_fail("cannot write the memfd", NULL);
    int nlines = 1;
    for (size_t i = 0; i < size; i++)
        nlines += data[i] == '\n';

    char *file_errors = NULL;
    struct config *from_file = config_load_file(name, &file_errors);
    if (from_file) {
        FUZZ_CHECK(file_errors == NULL, file_errors);
        fuzz_check_config(from_file, name);
    } else {
        fuzz_check_errors(file_errors, name, nlines);
    }

    /* The text as config_load_string sees it: up to its first NUL. */
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    char *string_errors = NULL;
    struct config *from_string = config_load_string(text, name, &string_errors);
    if (from_string) {
        FUZZ_CHECK(string_errors == NULL, string_errors);
        fuzz_check_config(from_string, name);
    } else {
        fuzz_check_errors(string_errors, name, nlines);
    }

    const char *nul = memchr(data, '\0', size);
    if (nul) {
        FUZZ_CHECK(!from_file && strstr(file_errors, "contains a NUL byte"), file_errors);
    } else {
        /* Without a NUL, a file and the same text read alike. */
        FUZZ_CHECK(!from_file == !from_string, from_file ? string_errors : file_errors);
        if (!from_file)
            FUZZ_CHECK(strcmp(file_errors, string_errors) == 0, string_errors);
    }

    /* Line ends are "\n" or "\r\n", and which makes no difference. */
    if (!nul && !memchr(data, '\r', size)) {
        char *crlf = malloc(2 * size + 1), *o = crlf;
        for (size_t i = 0; i < size; i++) {
            if (data[i] == '\n')
                *o++ = '\r';
            *o++ = (char)data[i];
        }
        *o = '\0';
        char *crlf_errors = NULL;
        struct config *from_crlf = config_load_string(crlf, name, &crlf_errors);
        FUZZ_CHECK(!from_crlf == !from_string, from_crlf ? string_errors : crlf_errors);
        if (!from_crlf)
            FUZZ_CHECK(strcmp(crlf_errors, string_errors) == 0, crlf_errors);
        free(crlf);
        free(crlf_errors);
        config_free(from_crlf);
    }

    free(text);
    free(file_errors);
    free(string_errors);
    config_free(from_file);
    config_free(from_string);
    return 0;
}
