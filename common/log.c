/* One line per event on stderr, as logfmt-style key=value text or as JSON
 * lines, so a person can read it and a log pipeline can take it as it is.
 * Messages are written as "words key=value ..." by the caller; the record
 * formatter splits them into a message and fields. The supervisor relays its
 * children's output through here: a record of our own goes on with the
 * child's name added, anything else is nested as data. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

/* The longest JSON number written as a number; longer ones are strings. */
#define LOG_NUMBER_MAX 24

static struct {
    const char *component;
    enum config_log_level level;
    enum config_log_format format;
} log_state = { "rendervisor", CONFIG_LOG_INFO, CONFIG_LOG_TEXT };

const char *const log_level_names[LOG_LEVEL_COUNT] = {
    [CONFIG_LOG_DEBUG] = "debug",
    [CONFIG_LOG_INFO] = "info",
    [CONFIG_LOG_WARN] = "warn",
    [CONFIG_LOG_ERROR] = "error",
};

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

/* ---- a bounded writer -------------------------------------------------------
 * A record never ends in the middle of something: text goes in whole units
 * (a character, an escape, a UTF-8 sequence, a field's key), and room is held
 * back for what closes the record (the quote of the value being written, the
 * truncation mark, the brace, the newline). A record that does not fit loses
 * its end, says so, and stays well formed. */

struct log_out {
    char *buf;
    size_t size, len;
    size_t keep; /* bytes held back for the closing */
    int cut;     /* something did not fit: only the closing goes in now */
};

static const char log_json_mark[] = ",\"truncated\":true";
static const char log_text_mark[] = " truncated=true";

static void log_begin(struct log_out *o, char *buf, size_t size, int json)
{
    /* the mark, and in JSON the brace (the mark's NUL counts it) */
    *o = (struct log_out){ .buf = buf, .size = size, .keep = json ? sizeof(log_json_mark) : sizeof(log_text_mark) - 1 };
}

/* n bytes as one unit: all of them, or none and nothing after them. */
static int log_put(struct log_out *o, const char *s, size_t n)
{
    if (o->cut || o->len + n + o->keep + 2 > o->size) { /* 2: the newline and the NUL */
        o->cut = 1;
        return -1;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    return 0;
}

/* n bytes that were held back. */
static void log_put_kept(struct log_out *o, const char *s, size_t n)
{
    o->keep = o->keep > n ? o->keep - n : 0;
    if (o->len + n + 2 <= o->size) {
        memcpy(o->buf + o->len, s, n);
        o->len += n;
    }
}

static size_t log_end(struct log_out *o, int json)
{
    if (o->size < 2) {
        if (o->size)
            o->buf[0] = '\0';
        return 0;
    }
    if (o->cut) {
        if (json)
            log_put_kept(o, log_json_mark, sizeof(log_json_mark) - 1);
        else
            log_put_kept(o, log_text_mark, sizeof(log_text_mark) - 1);
    }
    if (json)
        log_put_kept(o, "}", 1);
    o->buf[o->len++] = '\n';
    o->buf[o->len] = '\0';
    return o->len;
}

/* Length of the well-formed UTF-8 sequence at s (n bytes there), or 0. */
static size_t log_utf8_len(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t len;
    uint32_t cp, min;
    if (u[0] < 0x80)
        return 1;
    if (u[0] >= 0xc2 && u[0] <= 0xdf) {
        len = 2, cp = u[0] & 0x1f, min = 0x80;
    } else if (u[0] >= 0xe0 && u[0] <= 0xef) {
        len = 3, cp = u[0] & 0x0f, min = 0x800;
    } else if (u[0] >= 0xf0 && u[0] <= 0xf4) {
        len = 4, cp = u[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((u[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (u[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Writes s escaped, a unit at a time, until one does not fit; returns how
 * many bytes of s went in. Bytes that are not UTF-8 become U+FFFD in JSON
 * (every JSON record is valid UTF-8) and \xNN in text. */
static size_t log_put_escaped(struct log_out *o, const char *s, size_t n, int json)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        const char *unit = s + i;
        size_t len = 1, step = 1;
        switch (c) {
        case '"': unit = "\\\"", len = 2; break;
        case '\\': unit = "\\\\", len = 2; break;
        case '\n': unit = "\\n", len = 2; break;
        case '\r': unit = "\\r", len = 2; break;
        case '\t': unit = "\\t", len = 2; break;
        default:
            if (c >= 0x80 && (step = log_utf8_len(s + i, n - i)) > 0) {
                len = step;
            } else if (c < 0x20 || c >= 0x7f) {
                step = 1;
                if (json && c >= 0x80)
                    unit = "\\ufffd", len = 6;
                else
                    unit = esc, len = (size_t)snprintf(esc, sizeof(esc), json ? "\\u%04x" : "\\x%02x", c);
            }
        }
        if (log_put(o, unit, len) < 0)
            break;
        i += step;
    }
    return i;
}

/* A JSON number at s: its length, or 0 (RFC 8259's grammar). */
static size_t log_json_number(const char *s, size_t n)
{
    size_t i = 0, d;
    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0')
        i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return 0;
    if (i < n && s[i] == '.') {
        for (d = ++i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            ;
        if (i == d)
            return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            ;
        if (i == d)
            return 0;
    }
    return i;
}

/* Whether s is written as a JSON number: JSON's grammar, not too long, an
 * integer within 64 bits and anything else within a double's range (parsers
 * refuse the rest, or make 1e999 infinite). */
static int log_is_number(const char *s, size_t n)
{
    if (n == 0 || n > LOG_NUMBER_MAX || log_json_number(s, n) != n)
        return 0;
    char tmp[LOG_NUMBER_MAX + 1];
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    errno = 0;
    if (strpbrk(tmp, ".eE"))
        (void)strtod(tmp, NULL);
    else
        (void)strtoll(tmp, NULL, 10);
    return errno == 0;
}

/* A text value goes bare only when a logfmt reader cannot mistake it. */
static int log_needs_quotes(const char *s, size_t n)
{
    if (n == 0)
        return 1;
    for (size_t i = 0, len; i < n; i += len) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == '"' || c == '=' || c == 0x7f || !(len = log_utf8_len(s + i, n - i)))
            return 1;
    }
    return 0;
}

static int log_is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
}

/* Writes one field, whole or not at all, except that a quoted value may lose
 * its end. key is made of key characters; val is raw text (quotes already
 * removed, escapes the caller wrote are not interpreted); quoted: a string
 * even if it reads as a number (JSON), quoted always (text). */
static void log_put_field(struct log_out *o, int json, const char *key, size_t klen, const char *val,
                          size_t vlen, int quoted)
{
    size_t mark = o->len;
    if (json) {
        log_put(o, ",\"", 2);
        log_put(o, key, klen);
        log_put(o, "\":", 2);
        if (!quoted && log_is_number(val, vlen)) {
            if (log_put(o, val, vlen) < 0)
                o->len = mark;
            return;
        }
    } else {
        log_put(o, " ", 1);
        log_put(o, key, klen);
        log_put(o, "=", 1);
        if (!quoted && !log_needs_quotes(val, vlen)) {
            if (log_put(o, val, vlen) < 0)
                o->len = mark;
            return;
        }
    }
    o->keep++; /* the closing quote, held back with the opening one */
    if (log_put(o, "\"", 1) < 0) {
        o->keep--;
        o->len = mark;
        return;
    }
    log_put_escaped(o, val, vlen, json);
    log_put_kept(o, "\"", 1);
}

static int log_key_is(const char *key, size_t n, const char *name)
{
    return strlen(name) == n && memcmp(key, name, n) == 0;
}

/* The keys of the fields every record begins with. */
static int log_is_head_key(const char *key, size_t n)
{
    return log_key_is(key, n, "time") || log_key_is(key, n, "level") || log_key_is(key, n, "component") ||
           log_key_is(key, n, "message") || log_key_is(key, n, "msg");
}

/* Length of a key at s: key characters followed by '='; 0 if s is no key. */
static size_t log_key_len(const char *s)
{
    size_t n = 0;
    while (log_is_key_char(s[n]))
        n++;
    return n > 0 && s[n] == '=' ? n : 0;
}

/* Everything of a record but its end: time, level, component, the message
 * and the fields of text. */
static void log_put_record(struct log_out *o, int json, double wall_s, enum config_log_level level,
                           const char *component, const char *text)
{
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

    char head[96];
    int hn = snprintf(head, sizeof(head), json ? "{\"time\":\"%s\",\"level\":\"%s\"" : "time=%s level=%s", when,
                      log_level_names[level]);
    log_put(o, head, (size_t)hn);
    log_put_field(o, json, "component", 9, component, strlen(component), json);
    if (json)
        log_put_field(o, 1, "message", 7, msg, (size_t)(msg_end - msg), 1);
    else
        log_put_field(o, 0, "msg", 3, msg, (size_t)(msg_end - msg), 1);

    while (*p) {
        size_t klen = log_key_len(p);
        if (!klen) {
            /* Stray words after the fields: keep them rather than lose them. */
            const char *w = p;
            while (*p && *p != ' ')
                p++;
            log_put_field(o, json, "extra", 5, w, (size_t)(p - w), 1);
        } else {
            /* No key twice: a caller's field named like one of the
             * record's own gets a leading underscore. */
            char renamed[16];
            const char *key = p;
            if (log_is_head_key(p, klen) || log_key_is(p, klen, "truncated")) {
                renamed[0] = '_';
                memcpy(renamed + 1, p, klen);
                key = renamed;
            }
            p += klen + 1;
            klen += key == renamed;
            const char *val = p;
            if (*p == '"') {
                val = ++p;
                while (*p && *p != '"') {
                    if (*p == '\\' && p[1])
                        p++;
                    p++;
                }
                log_put_field(o, json, key, klen, val, (size_t)(p - val), 1);
                if (*p == '"')
                    p++;
            } else {
                while (*p && *p != ' ')
                    p++;
                log_put_field(o, json, key, klen, val, (size_t)(p - val), 0);
            }
        }
        while (*p == ' ')
            p++;
    }
}

size_t log_format_record(char *buf, size_t size, enum config_log_format format, double wall_s,
                         enum config_log_level level, const char *component, const char *text,
                         const char *error)
{
    struct log_out o;
    int json = format == CONFIG_LOG_JSON;
    log_begin(&o, buf, size, json);
    log_put_record(&o, json, wall_s, level, component, text);
    if (error)
        log_put_field(&o, json, "error", 5, error, strlen(error), 1);
    return log_end(&o, json);
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

/* ---- a child's output -----------------------------------------------------------
 * A line passes on as a record only when it is exactly what log_format_record
 * writes (checked in full, not by its first bytes), so what is added to it
 * cannot turn it into something else: a broken, cut or foreign line is nested
 * as a string, never passed on and never dropped. */

int log_level_lookup(const char *s, size_t n, enum config_log_level *level)
{
    for (size_t i = 0; i < LOG_LEVEL_COUNT; i++)
        if (strlen(log_level_names[i]) == n && memcmp(s, log_level_names[i], n) == 0) {
            *level = (enum config_log_level)i;
            return 0;
        }
    return -1;
}

static int log_is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A JSON string at s: its length with the quotes, or 0. Stricter than JSON
 * where our writer never goes: no \u0000, no surrogate escapes. */
static size_t log_json_string(const char *s, size_t n)
{
    if (n == 0 || s[0] != '"')
        return 0;
    size_t i = 1;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"')
            return i + 1;
        if (c < 0x20)
            return 0;
        if (c == '\\') {
            char e = i + 1 < n ? s[i + 1] : '\0';
            if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
                i += 2;
                continue;
            }
            if (e != 'u' || n - i < 6)
                return 0;
            unsigned v = 0;
            for (size_t k = i + 2; k < i + 6; k++) {
                if (!log_is_hex(s[k]))
                    return 0;
                v = v * 16 + (unsigned)(s[k] <= '9' ? s[k] - '0' : (s[k] | 0x20) - 'a' + 10);
            }
            if (v == 0 || (v >= 0xd800 && v <= 0xdfff))
                return 0;
            i += 6;
        } else if (c >= 0x80) {
            size_t len = log_utf8_len(s + i, n - i);
            if (!len)
                return 0;
            i += len;
        } else {
            i++;
        }
    }
    return 0;
}

/* A value of one of our JSON records: a string, a number or true. */
static size_t log_json_value(const char *s, size_t n)
{
    if (n && s[0] == '"')
        return log_json_string(s, n);
    if (n >= 4 && memcmp(s, "true", 4) == 0)
        return 4;
    size_t len = 0;
    while (len < n && s[len] != ',' && s[len] != '}')
        len++;
    return log_is_number(s, len) ? len : 0;
}

/* A text value at s, quoted or bare: its length, or 0. */
static size_t log_text_value(const char *s, size_t n)
{
    size_t i = 0;
    if (n && s[0] == '"') {
        for (i = 1; i < n;) {
            unsigned char c = (unsigned char)s[i];
            if (c == '"')
                return i + 1;
            if (c < 0x20 || c == 0x7f)
                return 0;
            if (c == '\\') {
                char e = i + 1 < n ? s[i + 1] : '\0';
                if (e == '"' || e == '\\' || e == 'n' || e == 'r' || e == 't')
                    i += 2;
                else if (e == 'x' && n - i >= 4 && log_is_hex(s[i + 2]) && log_is_hex(s[i + 3]))
                    i += 4;
                else
                    return 0;
            } else {
                size_t len = log_utf8_len(s + i, n - i);
                if (!len)
                    return 0;
                i += len;
            }
        }
        return 0;
    }
    while (i < n && s[i] != ' ') {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '=' || c == 0x7f)
            return 0;
        size_t len = log_utf8_len(s + i, n - i);
        if (!len)
            return 0;
        i += len;
    }
    return i;
}

/* Whether s is a record as log_format_record writes it, in JSON or text,
 * with no child field: the four fields it begins with in their order, then
 * fields of key characters with values of the kind it writes. Sets *level,
 * and *insert to the end of the component field. */
static int log_parse_record(const char *s, size_t n, int json, enum config_log_level *level, size_t *insert)
{
    static const char *const json_heads[] = { "{\"time\":", ",\"level\":", ",\"component\":", ",\"message\":" };
    static const char *const text_heads[] = { "time=", " level=", " component=", " msg=" };
    const char *const *heads = json ? json_heads : text_heads;
    size_t i = 0, len;
    for (int f = 0; f < 4; f++) {
        size_t hl = strlen(heads[f]);
        if (n - i < hl || memcmp(s + i, heads[f], hl) != 0)
            return 0;
        i += hl;
        len = json ? log_json_string(s + i, n - i) : log_text_value(s + i, n - i);
        if (!len)
            return 0;
        if (f == 1 && log_level_lookup(s + i + json, len - 2 * (size_t)json, level) < 0)
            return 0;
        i += len;
        if (f == 2)
            *insert = i;
    }
    while (i < n && s[i] == (json ? ',' : ' ')) {
        i++;
        if (json && (i == n || s[i++] != '"'))
            return 0;
        size_t key = i;
        while (i < n && log_is_key_char(s[i]))
            i++;
        /* A key comes once: what the level filter and a reader see agree. */
        if (i == key || log_is_head_key(s + key, i - key) || log_key_is(s + key, i - key, "child"))
            return 0;
        if (json && (n - i < 2 || s[i] != '"' || s[i + 1] != ':'))
            return 0;
        if (!json && (i == n || s[i] != '='))
            return 0;
        i += json ? 2 : 1;
        len = json ? log_json_value(s + i, n - i) : log_text_value(s + i, n - i);
        if (!len)
            return 0;
        i += len;
    }
    return json ? i + 1 == n && s[i] == '}' : i == n;
}

size_t log_tag_record(char *buf, size_t size, enum config_log_format format, const char *line, size_t len,
                      const char *child, enum config_log_level *level)
{
    int json = format == CONFIG_LOG_JSON;
    size_t insert = 0;
    if (!log_parse_record(line, len, json, level, &insert))
        return 0;
    struct log_out o = { .buf = buf, .size = size }; /* the line brings its own closing */
    log_put(&o, line, insert);
    log_put_field(&o, json, "child", 5, child, strlen(child), json);
    log_put(&o, line + insert, len - insert);
    if (o.cut)
        return 0;
    return log_end(&o, 0);
}

size_t log_format_output(char *buf, size_t size, enum config_log_format format, double wall_s,
                         enum config_log_level level, const char *component, const char *child,
                         const char *stream, const char *line, size_t len)
{
    /* The child's text is data: it goes in a field of its own, escaped, and
     * is never parsed for key=value pairs. */
    struct log_out o;
    int json = format == CONFIG_LOG_JSON;
    char head[128];
    snprintf(head, sizeof(head), "child output child=%s stream=%s", child, stream);
    log_begin(&o, buf, size, json);
    log_put_record(&o, json, wall_s, level, component, head);
    log_put_field(&o, json, "line", 4, line, len, 1);
    return log_end(&o, json);
}

/* What Chromium's headless shell writes at every start where there is no
 * D-Bus, no GPU device and no desktop: seen on Debian 12 with Chromium 156,
 * under the supervisor and under systemd. Matched as the text after
 * Chromium's "[date:LEVEL:file(line)] " prefix begins; nothing else is
 * lowered. */
static const char *const log_browser_noise[] = {
    "Failed to connect to the bus: ",
    "Failed to call method: org.freedesktop.DBus.",
    "drmGetDevices2() has not found any devices",
    "InitializeSandbox() called with multiple threads in process gpu-process.",
    "Floss manager service not available",
};

enum config_log_level log_output_level(const char *line, size_t len)
{
    const char *text = line;
    if (len && line[0] == '[') {
        const char *end = memchr(line, ']', len);
        if (end && (size_t)(end - line) + 1 < len && end[1] == ' ')
            text = end + 2;
    }
    size_t rest = len - (size_t)(text - line);
    for (size_t i = 0; i < sizeof(log_browser_noise) / sizeof(log_browser_noise[0]); i++) {
        size_t n = strlen(log_browser_noise[i]);
        if (rest >= n && memcmp(text, log_browser_noise[i], n) == 0)
            return CONFIG_LOG_DEBUG;
    }
    return CONFIG_LOG_INFO;
}

void log_child_output(const char *child, const char *stream, int ours, const char *line, size_t len)
{
    char rec[LOG_RELAY_MAX];
    enum config_log_level level;
    size_t n = ours ? log_tag_record(rec, sizeof(rec), log_state.format, line, len, child, &level) : 0;
    if (n) {
        /* The child has applied the same log_level; a reload may have
         * changed ours since it started. */
        if (log_enabled(level))
            (void)!write(STDERR_FILENO, rec, n);
        return;
    }
    level = log_output_level(line, len);
    if (!log_enabled(level))
        return;
    n = log_format_output(rec, sizeof(rec), log_state.format, clock_wall_s(), level, log_state.component, child,
                          stream, line, len);
    (void)!write(STDERR_FILENO, rec, n);
}
