/* One line per event on stderr, as logfmt-style key=value text or as JSON
 * lines, so a person can read it and a log pipeline can take it as it is.
 * Messages are written as "words key=value ..." by the caller; the record
 * formatter splits them into a message and fields. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define LOG_MAX_RECORD 8192

static struct {
    const char *component;
    enum config_log_level level;
    enum config_log_format format;
} log_state = { "rendervisor", CONFIG_LOG_INFO, CONFIG_LOG_TEXT };

static const char *const log_level_names[] = { "debug", "info", "warn", "error" };

void log_init(const char *component, enum config_log_level level, enum config_log_format format)
{
    log_state.component = component;
    log_set(level, format);
}

void log_set(enum config_log_level level, enum config_log_format format)
{
    log_state.level = level;
    log_state.format = format;
}

int log_enabled(enum config_log_level level)
{
    return level >= log_state.level;
}

/* A small bounded writer: every append is truncated at the end of the buffer,
 * keeping one byte for the final newline. */
struct log_out {
    char *buf;
    size_t size, len;
};

static void log_putc(struct log_out *o, char c)
{
    if (o->len + 2 < o->size) /* room for the newline and the NUL */
        o->buf[o->len++] = c;
}

static void log_puts(struct log_out *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        log_putc(o, s[i]);
}

static void log_put_escaped(struct log_out *o, const char *s, size_t n, int json)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': log_puts(o, "\\\"", 2); break;
        case '\\': log_puts(o, "\\\\", 2); break;
        case '\n': log_puts(o, "\\n", 2); break;
        case '\r': log_puts(o, "\\r", 2); break;
        case '\t': log_puts(o, "\\t", 2); break;
        default:
            if (c < 0x20 || c == 0x7f) {
                char hex[8];
                int k = snprintf(hex, sizeof(hex), json ? "\\u%04x" : "\\x%02x", c);
                log_puts(o, hex, (size_t)k);
            } else {
                log_putc(o, (char)c);
            }
        }
    }
}

static int log_is_number(const char *s, size_t n)
{
    if (n == 0 || n > 24)
        return 0;
    char tmp[32];
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (tmp[0] == '+' || (tmp[0] == '0' && n > 1 && tmp[1] != '.'))
        return 0;
    char *end;
    errno = 0;
    (void)strtod(tmp, &end);
    /* strtod takes inf, nan and hex, which JSON does not */
    return errno == 0 && *end == '\0' && strspn(tmp, "-0123456789.eE") == n;
}

/* Writes one field; value is raw text (quotes already removed, escapes kept
 * as the caller wrote them are not interpreted). */
static void log_put_field(struct log_out *o, int json, const char *key, size_t klen,
                          const char *val, size_t vlen, int quoted_hint)
{
    if (json) {
        log_puts(o, ",\"", 2);
        log_put_escaped(o, key, klen, 1);
        log_puts(o, "\":", 2);
        if (!quoted_hint && log_is_number(val, vlen)) {
            log_puts(o, val, vlen);
        } else {
            log_putc(o, '"');
            log_put_escaped(o, val, vlen, 1);
            log_putc(o, '"');
        }
        return;
    }
    log_putc(o, ' ');
    log_puts(o, key, klen);
    log_putc(o, '=');
    int needs_quotes = vlen == 0 || quoted_hint;
    for (size_t i = 0; i < vlen && !needs_quotes; i++)
        needs_quotes = val[i] == ' ' || val[i] == '"' || val[i] == '=' || (unsigned char)val[i] < 0x20;
    if (needs_quotes) {
        log_putc(o, '"');
        log_put_escaped(o, val, vlen, 0);
        log_putc(o, '"');
    } else {
        log_puts(o, val, vlen);
    }
}

/* Length of a key at s: [A-Za-z0-9_.] followed by '='; 0 if s is no key. */
static size_t log_key_len(const char *s)
{
    size_t n = 0;
    while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
           (s[n] >= '0' && s[n] <= '9') || s[n] == '_' || s[n] == '.')
        n++;
    return n > 0 && s[n] == '=' ? n : 0;
}

size_t log_format_record(char *buf, size_t size, enum config_log_format format, double wall_s,
                         enum config_log_level level, const char *component, const char *text,
                         const char *error)
{
    struct log_out o = { buf, size, 0 };
    int json = format == CONFIG_LOG_JSON;
    if (size == 0)
        return 0;

    char when[40];
    /* Rounded by hand (wall time is never negative): llround() was the only
     * libm function the binaries called, and libm costs each of them about
     * 300 KiB of resident memory just for being mapped. */
    long long total_ms = (long long)(wall_s * 1000.0 + 0.5);
    time_t secs = (time_t)(total_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t wn = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + wn, sizeof(when) - wn, ".%03dZ", (int)(total_ms % 1000));

    /* The message is the run of words before the first key=value. */
    const char *p = text;
    while (*p == ' ')
        p++;
    const char *msg = p;
    const char *msg_end = p;
    while (*p && !log_key_len(p)) {
        while (*p && *p != ' ')
            p++;
        msg_end = p;
        while (*p == ' ')
            p++;
    }

    const char *lvl = log_level_names[level];
    if (json) {
        log_puts(&o, "{\"time\":\"", 9);
        log_puts(&o, when, strlen(when));
        log_puts(&o, "\",\"level\":\"", 11);
        log_puts(&o, lvl, strlen(lvl));
        log_puts(&o, "\"", 1);
        log_put_field(&o, 1, "component", 9, component, strlen(component), 1);
        log_put_field(&o, 1, "message", 7, msg, (size_t)(msg_end - msg), 1);
    } else {
        log_puts(&o, "time=", 5);
        log_puts(&o, when, strlen(when));
        log_puts(&o, " level=", 7);
        log_puts(&o, lvl, strlen(lvl));
        log_put_field(&o, 0, "component", 9, component, strlen(component), 0);
        log_put_field(&o, 0, "msg", 3, msg, (size_t)(msg_end - msg), 1);
    }

    while (*p) {
        size_t klen = log_key_len(p);
        if (!klen) {
            /* Stray words after the fields: keep them rather than lose them. */
            const char *w = p;
            while (*p && *p != ' ')
                p++;
            log_put_field(&o, json, "extra", 5, w, (size_t)(p - w), 1);
        } else {
            const char *key = p;
            p += klen + 1;
            const char *val = p;
            int quoted = 0;
            if (*p == '"') {
                quoted = 1;
                val = ++p;
                while (*p && *p != '"') {
                    if (*p == '\\' && p[1])
                        p++;
                    p++;
                }
                log_put_field(&o, json, key, klen, val, (size_t)(p - val), quoted);
                if (*p == '"')
                    p++;
            } else {
                while (*p && *p != ' ')
                    p++;
                log_put_field(&o, json, key, klen, val, (size_t)(p - val), quoted);
            }
        }
        while (*p == ' ')
            p++;
    }
    if (error)
        log_put_field(&o, json, "error", 5, error, strlen(error), 1);
    if (json)
        log_putc(&o, '}');
    o.buf[o.len++] = '\n';
    o.buf[o.len] = '\0';
    return o.len;
}

static void log_emit(enum config_log_level level, const char *text, const char *error)
{
    char rec[LOG_MAX_RECORD];
    size_t n = log_format_record(rec, sizeof(rec), log_state.format, clock_wall_s(), level,
                                 log_state.component, text, error);
    /* One write per record, so lines of concurrent writers do not interleave. */
    (void)!write(STDERR_FILENO, rec, n);
}

void log_write(enum config_log_level level, int err, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    int saved = errno;
    char text[LOG_MAX_RECORD / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (err < 0)
        err = -err;
    log_emit(level, text, err ? strerror(err) : NULL);
    errno = saved;
}

void log_child_output(const char *child, const char *stream, const char *line, size_t len)
{
    if (!log_enabled(CONFIG_LOG_INFO))
        return;
    /* The child's text is data: it goes in a field of its own, escaped, and is
     * never parsed for key=value pairs. */
    char rec[LOG_MAX_RECORD];
    struct log_out o = { rec, sizeof(rec), 0 };
    int json = log_state.format == CONFIG_LOG_JSON;
    char head[LOG_MAX_RECORD / 4];
    snprintf(head, sizeof(head), "child output child=%s stream=%s", child, stream);
    size_t n = log_format_record(rec, sizeof(rec), log_state.format, clock_wall_s(), CONFIG_LOG_INFO,
                                 log_state.component, head, NULL);
    /* Reopen the record before its end to add the line field. */
    o.len = n - 1 - (json ? 1 : 0);
    log_put_field(&o, json, "line", 4, line, len, 1);
    if (json)
        log_putc(&o, '}');
    o.buf[o.len++] = '\n';
    (void)!write(STDERR_FILENO, rec, o.len);
}
